"""The anterior cortex of the ala refined from CT intensity.

``{side}.ala_anterior`` is the anterior surface of the ala on the pedicle-level section (frame
z = ``ALA_LEVEL_MM``), at :data:`alarscrew.anatomy.landmarks.ALA_ANTERIOR_FRACTION` of the
section's lateral extent (:mod:`alarscrew.anatomy.landmarks`). On coarse voxels the mask gets
both coordinates wrong (phantom, 2.5 mm voxels: 2.4-3.9 mm):

- the lateral extent: in front of the ala the enclosure fill of the CT-only mask reaches
  across the pelvic soft tissue towards the ilium, so the section reads 3-5 mm too wide and the
  67 % point lies about 2.5 mm too lateral;
- the surface: the mask point is moved half a voxel into the mask (``surface_bias_mm``), which
  on a thin (about 1 mm) anterior cortex blurred over a 2.5 mm voxel leaves it 1.5-2 mm behind
  the bone surface.

:func:`refine_ala_anterior` re-reads both from the CT:

1. the lateral extent is the most lateral point of the sacral face of the SI joint, read with
   :func:`alarscrew.anatomy.sijoint.refine_ala_lateral` on lateral rays of the section, from
   the ``ala_lateral`` ray forward in :data:`FACE_STEP_MM` steps (the joint runs from
   posteromedial to anterolateral, so the section is widest at its anterior end). The walk
   stops where the bundle would reach past the anterior surface, where no joint band is seen,
   or where the face jumps laterally by more than the steepest face angle allows (the bundle
   then reads the ilium across the pelvic soft tissue in front of the sacrum). A ray whose
   joint band the CT does not resolve gives only an interval that holds the face and is
   passed over (at 3 mm with 40 HU noise, taking its clamped point for the face put the
   extent 4.5 mm medial). Only a walk that reaches its last ray with at least
   :data:`MIN_RESOLVED_RAYS` resolved faces gives the extent; otherwise the mask point's x is
   kept;
2. the anterior surface is read at 67 % of that extent on a bundle of anteroposterior CT
   profiles (:data:`BUNDLE_X_HALF_MM` x :data:`BUNDLE_Z_HALF_MM`): the brightest point near
   the mask surface is the anterior cortex, the soft tissue in front is the median
   :data:`OUTSIDE_WINDOW_VOXELS` beyond it, and the surface is where the averaged profile falls
   to half-way between them (the half-level edge of the blurred cortex). It is accepted only
   when the cortex stands at least :data:`MIN_CORTEX_CONTRAST_HU` (and four standard errors of
   the averaged profile) above the soft tissue; otherwise the mask point is kept with a lower
   confidence.

Frames: S1 frame (x right, y anterior, z cranial). The ``method`` text says which case applied
and what was measured.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy import ndimage as ndi

from alarscrew.anatomy.ctsample import check_ct, sample_frame_points
from alarscrew.anatomy.landmarks import ALA_ANTERIOR_FRACTION, ALA_LEVEL_MM
from alarscrew.anatomy.model import Landmark
from alarscrew.anatomy.sijoint import FACE_ANGLES_DEG, refine_ala_lateral
from alarscrew.spatial.frame import S1Frame

#: Anteroposterior profile extent (mm, relative to the mask point, + anterior) and step.
PROFILE_MM, PROFILE_STEP_MM = (-12.0, 12.0), 0.25
#: The anterior cortex is the brightest point of the averaged profile this close (mm) to the
#: mask point: the mask surface lies within a voxel or two of the cortex.
CORTEX_WINDOW_MM = 6.0
#: Half-widths (mm) of the bundle across the profile: along x (the anterior alar surface is
#: nearly flat mediolaterally at mid-ala) and along z (narrower: the ala's anterior surface
#: curves in the sagittal plane) with the bundle step.
BUNDLE_X_HALF_MM, BUNDLE_Z_HALF_MM, BUNDLE_STEP_MM = 3.0, 1.5, 0.5
#: Soft tissue in front of the cortex: the median of the averaged profile between these many
#: voxels beyond the cortical peak (out of the blur of the cortex) and 3 mm further.
OUTSIDE_WINDOW_VOXELS = 2.0
OUTSIDE_WINDOW_MM = 3.0
#: Smallest rise (HU) of the anterior cortex over the soft tissue in front of it. A 1 mm cortex
#: of 850 HU blurred over a 3 mm voxel still stands a few hundred HU above muscle (40-60 HU);
#: fat (-100 HU) only adds to it.
MIN_CORTEX_CONTRAST_HU = 100.0
#: Step (mm, along y) of the lateral rays that trace the SI face forward.
FACE_STEP_MM = 1.0
#: Largest lateral change of the sacral face per mm forward: the steepest candidate face angle
#: of :mod:`alarscrew.anatomy.sijoint`, plus 1 mm of reading scatter. A larger jump is the
#: bundle reading the ilium across the soft tissue in front of the sacrum, or (coarse grids) an
#: oblique face read in voxel-sized steps: either way the walk stops and the extent is unknown.
MAX_FACE_SLOPE = float(np.tan(np.radians(FACE_ANGLES_DEG.max())))
FACE_SCATTER_MM = 1.0
#: Fewest rays with a resolved joint space (sacral face read, not an interval) for the walk to
#: give the extent: one or two faces near its start say little about the most lateral one
#: (3 mm tilt +15: one face, 2.9 mm medial of the section's extent).
MIN_RESOLVED_RAYS = 3
#: Half-extent (mm) of the SI-joint bundles of :mod:`alarscrew.anatomy.sijoint` along the face:
#: a ray this close to the anterior surface lets its bundle read the soft tissue in front.
SIJOINT_BUNDLE_HALF_MM = 4.0
#: Confidence factor for a point the CT could not confirm.
UNCONFIRMED_FACTOR = 0.7
#: Smoothing of the averaged profile (Gaussian sigma, mm).
SMOOTH_MM = 0.5


@dataclass(frozen=True)
class CortexReading:
    """What an averaged anteroposterior profile shows (positions in mm along it).

    Attributes
    ----------
    edge_mm : float or None
        Half-level edge between the cortical peak and the soft tissue in front; None when the
        contrast is below ``required_hu``.
    peak_mm : float
        Position of the cortical peak.
    contrast_hu : float
        Cortical peak minus the soft-tissue level.
    required_hu : float
        Contrast needed to accept the edge.
    """

    edge_mm: float | None
    peak_mm: float
    contrast_hu: float
    required_hu: float


def read_anterior_cortex(s_mm: np.ndarray, profiles: np.ndarray, *, voxel_mm: float
                         ) -> CortexReading | None:
    """Read the anterior cortex on a bundle of profiles running from the bone forward.

    Parameters
    ----------
    s_mm : (S,) ndarray
        Increasing, evenly spaced positions (mm) along the anterior direction, 0 at the mask
        point.
    profiles : (R, S) ndarray
        HU profiles (NaN outside the image; rays with NaN are dropped).
    voxel_mm : float
        Mean voxel size (mm): the cortex blurs over about one voxel.

    Returns
    -------
    CortexReading or None
        None when fewer than three complete profiles remain.
    """
    prof = np.asarray(profiles, float)
    prof = prof[np.all(np.isfinite(prof), axis=1)]
    if len(prof) < 3:
        return None
    step = float(s_mm[1] - s_mm[0])
    mean = ndi.gaussian_filter1d(prof.mean(axis=0), SMOOTH_MM / step)
    near = np.nonzero(np.abs(s_mm) <= CORTEX_WINDOW_MM)[0]
    ip = int(near[np.argmax(mean[near])])
    lo = s_mm[ip] + OUTSIDE_WINDOW_VOXELS * voxel_mm
    out = (s_mm >= lo) & (s_mm <= lo + OUTSIDE_WINDOW_MM)
    if not out.any():
        return CortexReading(None, float(s_mm[ip]), float("nan"), MIN_CORTEX_CONTRAST_HU)
    outside = float(np.median(mean[out]))
    contrast = float(mean[ip] - outside)
    # noise of the bundle mean: spread across rays in the soft tissue over the number of
    # independent voxels the bundle covers
    window = prof[:, out]
    spread = 1.4826 * float(np.median(np.abs(window - np.median(window, axis=0))))
    n_indep = min(len(prof), max(1.0, (2 * BUNDLE_X_HALF_MM + BUNDLE_STEP_MM)
                                 * (2 * BUNDLE_Z_HALF_MM + BUNDLE_STEP_MM) / voxel_mm ** 2))
    required = max(MIN_CORTEX_CONTRAST_HU, 4.0 * spread / np.sqrt(n_indep))
    if contrast < required:
        return CortexReading(None, float(s_mm[ip]), contrast, required)
    level = 0.5 * (float(mean[ip]) + outside)
    tail = mean[ip:]
    k = int(np.argmax(tail < level))
    a, b = tail[k - 1] - level, tail[k] - level
    edge = float(s_mm[ip + k - 1] + a / (a - b) * step)
    return CortexReading(edge, float(s_mm[ip]), contrast, required)


def _bundle(hu: np.ndarray, affine: np.ndarray, frame: S1Frame, center_frame_mm: np.ndarray
            ) -> tuple[np.ndarray, np.ndarray]:
    """Anteroposterior (+y) profiles about ``center_frame_mm`` on an x-z bundle (trilinear)."""
    s_mm = np.arange(PROFILE_MM[0], PROFILE_MM[1] + 1e-9, PROFILE_STEP_MM)
    u = np.arange(-BUNDLE_X_HALF_MM, BUNDLE_X_HALF_MM + 1e-9, BUNDLE_STEP_MM)
    w = np.arange(-BUNDLE_Z_HALF_MM, BUNDLE_Z_HALF_MM + 1e-9, BUNDLE_STEP_MM)
    uu, ww = (g.ravel() for g in np.meshgrid(u, w, indexing="ij"))
    base = center_frame_mm + np.column_stack([uu, np.zeros_like(uu), ww])  # (R, 3)
    pts = base[:, None, :] + s_mm[None, :, None] * np.array([0.0, 1.0, 0.0])
    return s_mm, sample_frame_points(hu, affine, frame, pts)


def section_extent_mm(hu: np.ndarray, affine: np.ndarray, frame: S1Frame, side: str,
                      ala_lateral: Landmark, front_y_mm: float
                      ) -> tuple[float, int, bool] | None:
    """Lateral extent |x| (mm) of the sacral section from the SI face traced forward.

    Parameters
    ----------
    hu, affine, frame
        CT (HU), its voxel -> world RAS mm affine, and the S1 frame.
    side : {"left", "right"}
    ala_lateral : Landmark
        A point near the sacral face on the section; the walk starts at its frame y.
    front_y_mm : float
        Frame y of the anterior alar surface; rays stop :data:`SIJOINT_BUNDLE_HALF_MM` behind.

    Returns
    -------
    (float, int, bool) or None
        The largest |x| of the faces read, the number of rays used, and whether the walk
        reached its last ray (False: it stopped at a jump or a ray without a joint band, so the
        extent is only a lower bound); None when no ray shows an SI joint band.
    """
    s = -1.0 if side == "left" else 1.0
    lat = replace(ala_lateral, supplied=False)
    y0 = float(frame.to_frame_mm(np.asarray(lat.xyz_ras_mm, float)[None])[0][1])
    xs: list[float] = []
    complete = True
    for y in np.arange(y0, front_y_mm - SIJOINT_BUNDLE_HALF_MM + 1e-9, FACE_STEP_MM):
        # the sijoint ray runs at frame y midway between pedicle and ala_anterior: put both at y
        at_y = Landmark("ray", frame.to_world_mm(np.array([[0.0, y, ALA_LEVEL_MM]]))[0], 1.0,
                        "ray level")
        r = refine_ala_lateral(hu, affine, frame, {f"{side}.ala_lateral": lat,
                                                   f"{side}.pedicle": at_y,
                                                   f"{side}.ala_anterior": at_y})
        face = r[f"{side}.ala_lateral"]
        if "no SI joint band" in face.method:
            complete = False
            break
        if "sacral half-level edge" not in face.method:
            # a band whose joint space the CT does not resolve: the reading is only an
            # interval that holds the face (sijoint), not the face; the walk goes on
            continue
        x = float(s * frame.to_frame_mm(np.asarray(face.xyz_ras_mm, float)[None])[0][0])
        if xs and x - xs[-1] > MAX_FACE_SLOPE * FACE_STEP_MM + FACE_SCATTER_MM:
            break
        xs.append(x)
    if not xs:
        return None
    return max(xs), len(xs), complete


def refine_ala_anterior(hu: np.ndarray, affine: np.ndarray, frame: S1Frame,
                        found: dict[str, Landmark]) -> dict[str, Landmark]:
    """Re-place ``{side}.ala_anterior`` from the CT: section extent and anterior cortex.

    Parameters
    ----------
    hu : (I, J, K) ndarray
        CT in HU on its own grid.
    affine : (4, 4) ndarray
        Voxel -> world RAS mm of ``hu``.
    frame : S1Frame
        The S1 frame of the landmarks.
    found : dict of str to Landmark
        Landmarks (world RAS mm). ``{side}.ala_anterior`` is refined when present and not
        supplied; ``{side}.ala_lateral`` (mask-based or refined) starts the SI-face walk for
        the section extent; without it the mask point's x is kept. Not modified.

    Returns
    -------
    dict of str to Landmark
        A new dict: ala_anterior at frame z = ``ALA_LEVEL_MM``, x at the fraction of the CT
        extent, y at the half-level edge of the anterior cortex, when the cortex is clear;
        else the mask point with :data:`UNCONFIRMED_FACTOR` times its confidence. The method
        text says which and what was measured.

    Raises
    ------
    GeometryError
        ``hu`` is not 3D or ``affine`` is not 4 x 4.
    """
    hu, aff, voxel_mm = check_ct(hu, affine)
    out = dict(found)
    for side, s in (("left", -1.0), ("right", 1.0)):
        lm = found.get(f"{side}.ala_anterior")
        if lm is None or lm.supplied:
            continue
        p_mask = frame.to_frame_mm(np.asarray(lm.xyz_ras_mm, float)[None])[0]
        # first the surface at the mask x: where the front is, for the extent walk
        first = read_anterior_cortex(*_bundle(hu, aff, frame, np.array(
            [p_mask[0], p_mask[1], ALA_LEVEL_MM])), voxel_mm=voxel_mm)
        front_y = p_mask[1] + (first.edge_mm if first is not None and first.edge_mm is not None
                               else 0.0)
        x = float(p_mask[0])
        how_x = "x of the mask point kept (no ala_lateral landmark)"
        lat = found.get(f"{side}.ala_lateral")
        if lat is not None:
            ext = section_extent_mm(hu, aff, frame, side, lat, front_y)
            if ext is None:
                how_x = ("x of the mask point kept (no SI joint band, or none resolved, on the "
                         "section in the CT)")
            elif ext[1] < MIN_RESOLVED_RAYS:
                how_x = (f"x of the mask point kept (the CT resolves the SI joint on only "
                         f"{ext[1]} lateral rays, fewer than {MIN_RESOLVED_RAYS})")
            elif not ext[2]:
                how_x = (f"x of the mask point kept (the SI face traced forward in the CT "
                         f"broke off after {ext[1]} lateral rays at {ext[0]:.1f} mm: a jump or "
                         f"no joint band, so the extent is not known)")
            else:
                x = s * ALA_ANTERIOR_FRACTION * ext[0]
                how_x = (f"x at {ALA_ANTERIOR_FRACTION:.0%} of the section's extent "
                         f"{ext[0]:.1f} mm, the most lateral sacral face of the SI joint in "
                         f"the CT ({ext[1]} lateral rays)")
        r = read_anterior_cortex(*_bundle(hu, aff, frame, np.array(
            [x, p_mask[1], ALA_LEVEL_MM])), voxel_mm=voxel_mm)
        if r is None or r.edge_mm is None:
            seen = ("profiles outside the image" if r is None else
                    f"cortex {r.contrast_hu:.0f} HU above the soft tissue, "
                    f"{r.required_hu:.0f} needed")
            out[lm.name] = replace(lm, confidence=UNCONFIRMED_FACTOR * lm.confidence,
                                   method=f"{lm.method}; kept: anterior cortex not clear in "
                                          f"the CT ({seen})")
            continue
        p = np.array([x, p_mask[1] + r.edge_mm, ALA_LEVEL_MM])
        how = (f"{how_x}; y at the half-level edge of the anterior cortex in the CT "
               f"(anteroposterior profile bundle; cortex {r.contrast_hu:.0f} HU above the "
               f"soft tissue in front; {np.linalg.norm(p - p_mask):.1f} mm from the mask point)")
        out[lm.name] = replace(lm, xyz_ras_mm=frame.to_world_mm(p[None])[0],
                               method=f"{lm.method}; {how}")
    return out

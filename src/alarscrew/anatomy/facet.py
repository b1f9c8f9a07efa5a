"""The S1 superior facet refined from CT intensity across the L5-S1 facet joint.

The mask-based facet (:mod:`alarscrew.anatomy.landmarks`) sits on the surface of a threshold
segmentation. At the L5-S1 facet joint that surface is unreliable once the 1-3 mm joint space
is not much wider than a voxel: the joint then reads only a little darker than the cortices on
either side, and the mask either keeps part of the L5 inferior articular process or is cut
inside the S1 superior articular process (phantom, 2 mm voxels: the facet 1-4 mm off along its
normal). The CT itself still shows the joint as a shallow dip between two cortical peaks.

:func:`refine_facets` samples the CT on a bundle of parallel profiles along the facet normal
around each mask-based facet point (``{side}.sap_facet`` and ``{side}.entry``), averages them,
and reads the profile from the inside out:

1. the S1 marrow: the darkest point :data:`MARROW_WINDOW_MM` deep to the mask point;
2. the S1 cortex: the first peak outward of it above half-way from the marrow to the
   brightest cortex of the profile;
3. the joint space: the first dip after that peak, followed by a second peak (the L5
   inferior articular process cortex) at most :func:`max_peak_separation_mm` from the first;
4. the S1 articular surface: where the profile falls to half-way between the S1 cortical
   peak and the joint minimum (the S1-side half-maximum edge).

When the darkest point of step 1 shows no clear joint outward of it, the mask point may be
far off the joint: where the threshold mask does not resolve the joint (2 mm voxels) the
CT-only split between the S1 and the L5 process follows the competing segmentation regions,
leaving the mask point inside the S1 process or on the far surface of the L5 process
(phantom, 2 mm, tilt +10 / +20: 6 and 8 mm along the normal). :func:`search_joint_edge`
then takes the S1 marrow from a wider window (:data:`WIDE_MARROW_WINDOW_MM`): the darkest
marrow dip, since the thick S1 process reads darker than the thin L5 process.

The point is moved along the normal to that edge only when the joint is clear: the dip lies
at least :data:`MIN_JOINT_CONTRAST_HU` (and four standard errors of the averaged profile)
below both peaks. Otherwise (a free facet surface with no L5 process opposite, or a joint the
voxels do not resolve) the mask-based point is kept and its confidence lowered. The method
text of each landmark says which happened and the contrast measured.

Frames: the facet normal is the posteromedial direction at 45 degrees to the sagittal plane
in the S1 frame (x right, y anterior, z cranial), as in the mask-based detector (lumbosacral
facet orientation, Masharawi et al., Spine 2004;29:1755-1763).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy import ndimage as ndi
from scipy.signal import find_peaks

from alarscrew.anatomy.ctsample import check_ct, sample_frame_points
from alarscrew.anatomy.model import Landmark
from alarscrew.anatomy.sacrum import bone_thresholds_hu
from alarscrew.errors import GeometryError
from alarscrew.spatial.frame import S1Frame

#: Angle of the facet normal to the sagittal plane (deg), as in the mask-based detector.
FACET_ANGLE_DEG = 45.0
#: Half-width (mm) of the square bundle of profiles across the facet plane, and its step.
BUNDLE_HALF_MM, BUNDLE_STEP_MM = 4.0, 1.0
#: Profile extent along the normal (mm, relative to the mask point) and sampling step.
PROFILE_IN_MM, PROFILE_OUT_MM, PROFILE_STEP_MM = -9.0, 9.0, 0.25
#: The S1 marrow anchor is the darkest point this far inside (mm, along -normal): the mask
#: point is at most a few mm off the articular surface, and the S1 superior articular
#: process is about 10 mm thick.
MARROW_WINDOW_MM = (-8.0, -3.0)
#: Where the S1 marrow is searched (mm along the normal from the mask point) when
#: :data:`MARROW_WINDOW_MM` finds no clear joint (:func:`search_joint_edge`): the mask point
#: may lie inside the S1 process (up to about half its 10-12 mm thickness outward of the S1
#: marrow) or on the far surface of the 5-8 mm thick L5 inferior articular process (the S1
#: marrow then 12-16 mm deep).
WIDE_MARROW_WINDOW_MM = (-16.0, 2.0)
#: Profile extent (mm) for that search: the window plus the joint outward of its end.
WIDE_PROFILE_MM = (-20.0, 12.0)
#: Smallest dip (HU) below both cortical peaks accepted as a joint space, whatever the noise:
#: about the CT-number ripple of beam hardening and reconstruction next to cortical bone.
MIN_JOINT_CONTRAST_HU = 10.0
#: Mean voxel size (mm) from which the joint is not refined: at 3 mm the 2 mm joint and both
#: cortices merge into one peak, and the first dip outward is the marrow of the L5 process
#: (analytic two-plate CT, 3 mm: the "edge" 3.8 mm outside the S1 surface; 2.5 mm: no joint
#: found). The pipeline's coarse-grid limit (alarscrew.anatomy.sacrum.COARSE_MM) is the same.
MAX_VOXEL_MM = 2.5
#: Confidence factor for a mask-based point the CT profiles could not confirm.
UNCONFIRMED_FACTOR = 0.7


def max_peak_separation_mm(voxel_mm: float) -> float:
    """Largest distance (mm) between the two cortical peaks of a facet joint.

    A joint space of at most 3 mm plus one cortical thickness on each side, widened by the
    blur of about 1.5 voxels along an oblique profile: ``4 + 1.5 * voxel_mm``. The S1 marrow
    between the two cortices of the superior articular process (about 10 mm) is wider.
    """
    return 4.0 + 1.5 * float(voxel_mm)


def facet_axes(side: str) -> tuple[np.ndarray, np.ndarray]:
    """(outward posteromedial normal, lateral tangent) of the ``side`` facet, frame axes."""
    if side not in ("left", "right"):
        raise GeometryError(f"side must be 'left' or 'right', got {side!r}")
    s = 1.0 if side == "right" else -1.0
    a = np.radians(FACET_ANGLE_DEG)
    return (np.array([-s * np.sin(a), -np.cos(a), 0.0]),
            np.array([s * np.cos(a), -np.sin(a), 0.0]))


def sample_profiles(hu: np.ndarray, affine: np.ndarray, frame: S1Frame, center_frame_mm:
                    np.ndarray, normal: np.ndarray, tangent: np.ndarray, *,
                    extent_mm: tuple[float, float] = (PROFILE_IN_MM, PROFILE_OUT_MM)
                    ) -> tuple[np.ndarray, np.ndarray]:
    """CT profiles along ``normal`` on a square bundle across the facet plane.

    Parameters
    ----------
    hu : (I, J, K) ndarray
        CT in HU.
    affine : (4, 4) ndarray
        Voxel -> world RAS mm of ``hu``.
    frame : S1Frame
    center_frame_mm : (3,) ndarray
        Bundle centre (frame mm).
    normal, tangent : (3,) ndarray
        Unit profile direction and in-plane tangent (frame axes); the bundle's second in-plane
        axis is ``normal x tangent``.
    extent_mm : (float, float)
        First and last position along the normal (mm from the centre).

    Returns
    -------
    s_mm : (S,) ndarray
        Position along the normal relative to the centre (mm).
    profiles : (R, S) ndarray
        Trilinear HU; NaN where a sample falls outside the image.
    """
    s_mm = np.arange(extent_mm[0], extent_mm[1] + 1e-9, PROFILE_STEP_MM)
    u = np.arange(-BUNDLE_HALF_MM, BUNDLE_HALF_MM + 1e-9, BUNDLE_STEP_MM)
    uu, ww = (g.ravel() for g in np.meshgrid(u, u, indexing="ij"))
    w_axis = np.cross(normal, tangent)
    base = center_frame_mm + uu[:, None] * tangent + ww[:, None] * w_axis  # (R, 3)
    pts = base[:, None, :] + s_mm[None, :, None] * normal  # (R, S, 3)
    return s_mm, sample_frame_points(hu, affine, frame, pts)


def _mean_profile(s_mm: np.ndarray, profiles: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Rays without NaN and their mean smoothed over 0.5 mm; None with fewer than 3 rays."""
    prof = np.asarray(profiles, float)
    ok = np.all(np.isfinite(prof), axis=1)
    if ok.sum() < 3:
        return None
    prof = prof[ok]
    step = float(s_mm[1] - s_mm[0])
    return prof, ndi.gaussian_filter1d(prof.mean(axis=0), 0.5 / step)


@dataclass(frozen=True)
class JointProfile:
    """A facet joint read on an averaged profile bundle (positions along the facet normal).

    Attributes
    ----------
    edge_mm : float or None
        S1-side half-level edge (the articular surface); None without a clear joint.
    contrast_hu, required_hu : float
        Depth of the joint dip below the lower cortical peak (NaN when no peak-dip-peak was
        found) and the depth a clear joint needs.
    cortex_mm, dip_mm, far_mm : float
        Positions of the S1 cortical peak, the joint dip and the L5 cortical peak (NaN when
        not found).
    sigma_hu : float
        Robust spread of single rays in the S1 marrow (noise and trabecular texture).
    """

    edge_mm: float | None
    contrast_hu: float
    required_hu: float
    cortex_mm: float = float("nan")
    dip_mm: float = float("nan")
    far_mm: float = float("nan")
    sigma_hu: float = float("nan")

    def as_tuple(self) -> tuple[float | None, float, float]:
        """(edge_mm, contrast_hu, required_hu)."""
        return self.edge_mm, self.contrast_hu, self.required_hu


_NO_JOINT = JointProfile(None, float("nan"), MIN_JOINT_CONTRAST_HU)


def _edge_outward_of(i0: int, s_mm: np.ndarray, prof: np.ndarray, mean: np.ndarray,
                     window: tuple[int, int], *, voxel_mm: float) -> JointProfile:
    """Steps 2-4 of the module docstring from the S1 marrow anchor at index ``i0``.

    ``window`` (index range) holds the marrow samples whose spread across rays gives the
    standard error of the mean profile.
    """
    step = float(s_mm[1] - s_mm[0])
    lo, hi = window
    # standard error of the mean profile: the spread across rays in the S1 marrow (image
    # noise and trabecular texture; median absolute deviation, so that the few rays leaving
    # the process at the bundle's edge do not count), over the independent voxels in the bundle
    n_eff = min(len(prof), max(1.0, (2.0 * BUNDLE_HALF_MM + BUNDLE_STEP_MM) ** 2
                               / float(voxel_mm) ** 2))
    marrow = prof[:, lo:hi]
    mad = np.median(np.abs(marrow - np.median(marrow, axis=0)), axis=0)
    sigma = 1.4826 * float(np.median(mad))
    sem = sigma / np.sqrt(n_eff)
    peaks, _ = find_peaks(mean[i0:], prominence=MIN_JOINT_CONTRAST_HU / 3.0)
    dips, _ = find_peaks(-mean[i0:], prominence=MIN_JOINT_CONTRAST_HU / 3.0)
    peaks, dips = peaks + i0, dips + i0
    required = MIN_JOINT_CONTRAST_HU
    if len(peaks) < 2:
        return replace(_NO_JOINT, sigma_hu=sigma)
    # the S1 cortex: the first peak above half-way from the marrow to the brightest cortex
    # outward of it (texture and noise bumps in the marrow stay below)
    cortex = peaks[mean[peaks] >= 0.5 * (mean[i0] + mean[i0:].max())]
    if len(cortex) == 0:
        return replace(_NO_JOINT, sigma_hu=sigma)
    p1 = int(cortex[0])
    later_dips = dips[dips > p1]
    if len(later_dips) == 0:
        return replace(_NO_JOINT, sigma_hu=sigma)
    j = int(later_dips[0])
    later_peaks = peaks[peaks > j]
    if len(later_peaks) == 0 or s_mm[later_peaks[0]] - s_mm[p1] > max_peak_separation_mm(
            voxel_mm):
        return replace(_NO_JOINT, sigma_hu=sigma)
    p2 = int(later_peaks[0])
    contrast = float(min(mean[p1], mean[p2]) - mean[j])
    required = max(MIN_JOINT_CONTRAST_HU, 4.0 * sem)
    where = {"cortex_mm": float(s_mm[p1]), "dip_mm": float(s_mm[j]),
             "far_mm": float(s_mm[p2]), "sigma_hu": sigma}
    if contrast < required:
        return JointProfile(None, contrast, required, **where)
    level = 0.5 * (mean[p1] + mean[j])
    seg = mean[p1:j + 1]
    k = int(np.argmax(seg < level))  # first sample below the half level (seg[0] is above)
    a, b = seg[k - 1] - level, seg[k] - level
    f = a / (a - b) if a != b else 0.5
    return JointProfile(float(s_mm[p1 + k - 1] + f * step), contrast, required, **where)


def _joint_near(s_mm: np.ndarray, profiles: np.ndarray, *, voxel_mm: float) -> JointProfile:
    got = _mean_profile(s_mm, profiles)
    if got is None:
        return _NO_JOINT
    prof, mean = got
    lo = int(np.searchsorted(s_mm, MARROW_WINDOW_MM[0]))
    hi = int(np.searchsorted(s_mm, MARROW_WINDOW_MM[1]))
    i0 = lo + int(np.argmin(mean[lo:hi]))
    return _edge_outward_of(i0, s_mm, prof, mean, (lo, hi), voxel_mm=voxel_mm)


def joint_edge(s_mm: np.ndarray, profiles: np.ndarray, *, voxel_mm: float
               ) -> tuple[float | None, float, float]:
    """S1-side articular surface on averaged profiles across a facet joint (module docstring).

    Parameters
    ----------
    s_mm : (S,) ndarray
        Increasing positions along the outward facet normal (mm); the S1 bone lies at low
        ``s``.
    profiles : (R, S) ndarray
        HU profiles (NaN outside the image).
    voxel_mm : float
        Mean voxel size (mm), for :func:`max_peak_separation_mm`.

    Returns
    -------
    edge_mm : float or None
        Position of the S1 articular surface along ``s_mm``; None without a clear joint.
    contrast_hu : float
        Depth of the joint dip below the lower of its two cortical peaks (NaN when no
        peak-dip-peak was found).
    required_hu : float
        The contrast a clear joint needs: ``max(MIN_JOINT_CONTRAST_HU, 4 * standard error)``.
    """
    return _joint_near(s_mm, profiles, voxel_mm=voxel_mm).as_tuple()


def _joint_wide(s_mm: np.ndarray, profiles: np.ndarray, *, voxel_mm: float,
                min_marrow_hu: float) -> JointProfile:
    got = _mean_profile(s_mm, profiles)
    if got is None:
        return _NO_JOINT
    prof, mean = got
    lo = int(np.searchsorted(s_mm, WIDE_MARROW_WINDOW_MM[0]))
    hi = int(np.searchsorted(s_mm, WIDE_MARROW_WINDOW_MM[1]))
    # dips of the whole profile (a window edge would cut a flat marrow dip's prominence)
    dips, _ = find_peaks(-mean, prominence=MIN_JOINT_CONTRAST_HU / 3.0)
    dips = dips[(dips >= lo) & (dips < hi)]
    half = round(0.5 * (MARROW_WINDOW_MM[1] - MARROW_WINDOW_MM[0]) / float(s_mm[1] - s_mm[0]))
    dips = dips[mean[dips] >= min_marrow_hu]
    if len(dips) == 0:
        return _NO_JOINT
    i0 = int(dips[np.argmin(mean[dips])])
    win = (max(0, i0 - half), min(len(s_mm), i0 + half + 1))
    return _edge_outward_of(i0, s_mm, prof, mean, win, voxel_mm=voxel_mm)


def search_joint_edge(s_mm: np.ndarray, profiles: np.ndarray, *, voxel_mm: float,
                      min_marrow_hu: float) -> tuple[float | None, float, float]:
    """S1-side articular surface when the mask point may lie far off the joint.

    Where the threshold mask does not resolve the joint (voxels about as wide as the 1-3 mm
    joint space), the CT-only split between the S1 superior and the L5 inferior articular
    process follows the competing regions, not the joint: the mask point then lies inside the
    S1 process or on the far (posteromedial) surface of the L5 process, up to about one
    process thickness off, beyond :data:`MARROW_WINDOW_MM`. The S1 marrow anchor of
    :func:`joint_edge`'s steps 2-4 is then the darkest dip of the averaged profile within
    :data:`WIDE_MARROW_WINDOW_MM` that is still bone (at least ``min_marrow_hu``): the 10-12
    mm wide marrow of the S1 process reads darker than the 2-5 mm marrow of the L5 process or
    the joint space, which partial volume with their cortices brightens. An anchor in deeper
    sacral marrow finds no joint (the next cortex pair is farther apart than
    :func:`max_peak_separation_mm`), so the point is then kept. Where the joint is resolved
    (about 1 mm voxels) it reads as dark as marrow and may be taken for the anchor; the mask
    is then within :data:`MARROW_WINDOW_MM` of the joint and this search is not reached
    unless :func:`joint_edge` saw no joint.

    Parameters
    ----------
    s_mm, profiles, voxel_mm
        As in :func:`joint_edge`.
    min_marrow_hu : float
        Lowest HU of an anchor: the segmentation's low bone threshold (an anchor in the soft
        tissue in front of the process would take the process's own marrow for a joint).

    Returns
    -------
    edge_mm, contrast_hu, required_hu
        As in :func:`joint_edge`.
    """
    return _joint_wide(s_mm, profiles, voxel_mm=voxel_mm,
                       min_marrow_hu=min_marrow_hu).as_tuple()


def refine_facets(hu: np.ndarray, affine: np.ndarray, frame: S1Frame,
                  landmarks: dict[str, Landmark], *,
                  max_voxel_mm: float = MAX_VOXEL_MM) -> dict[str, Landmark]:
    """Move the S1 facet and entry points onto the articular surface seen in the CT.

    As :func:`refine_facets_judged`, without the per-side verdicts.

    Returns
    -------
    dict of str to Landmark
        A new dict: the same landmarks with the facet points moved along the facet normal to
        the S1-side edge of a clear joint space, or kept with
        :data:`UNCONFIRMED_FACTOR` times their confidence; the method text says which.
    """
    return refine_facets_judged(hu, affine, frame, landmarks, max_voxel_mm=max_voxel_mm)[0]


def refine_facets_judged(hu: np.ndarray, affine: np.ndarray, frame: S1Frame,
                         landmarks: dict[str, Landmark], *,
                         max_voxel_mm: float = MAX_VOXEL_MM
                         ) -> tuple[dict[str, Landmark], dict[str, str]]:
    """Refine the S1 facet and entry points and say per side whether the CT resolves the joint.

    Each detected ``{side}.sap_facet`` and ``{side}.entry`` is moved along the facet normal
    to the S1-side edge of the joint space measured on a profile bundle (module docstring).
    A side's two points are *resolved* when the joint is measured in the CT at both of them
    from the mask point itself: a dip at least ``max(MIN_JOINT_CONTRAST_HU, 4 standard
    errors)`` below both cortical peaks within :data:`MARROW_WINDOW_MM` of the mask point.
    Otherwise the side's points are not resolved and the verdict says why:

    - the voxels are at least ``max_voxel_mm``: the 2 mm joint space and its two cortices
      merge into one peak; the first dip outward is the L5 process's marrow (analytic
      two-plate CT at 3 mm: an edge 3.8 mm outside the S1 surface);
    - no clear joint at a point (the dip measured and the dip needed), or no
      peak-dip-peak;
    - the joint was found only by the wide search (:func:`search_joint_edge`): the mask
      point was off the joint, so the segmentation did not follow the joint there and the
      point's position across the facet plane, which only the mask gives, is unverified
      (phantom, CT-only, 2 mm, tilt +10: 4.9 mm off across the facet after the move).

    The verdict speaks for the CT profiles only; with an S1 or L5 label the mask patch itself
    is drawn at the joint and a caller may use the points whatever the verdict.

    Parameters
    ----------
    hu : (I, J, K) ndarray
        CT in HU on its own grid.
    affine : (4, 4) ndarray
        Voxel -> world RAS mm of ``hu``.
    frame : S1Frame
        The S1 frame in which the facet normals are defined.
    landmarks : dict of str to Landmark
        Detected landmarks (world RAS mm); ``{side}.sap_facet`` and ``{side}.entry`` are
        refined when present and not supplied by the user. Not modified.
    max_voxel_mm : float
        On grids with a mean voxel size at or above this the landmarks are returned as given
        and judged not resolved (:data:`MAX_VOXEL_MM`).

    Returns
    -------
    landmarks : dict of str to Landmark
        A new dict: the same landmarks with the facet points moved along the facet normal to
        the S1-side edge of a clear joint space, or kept with
        :data:`UNCONFIRMED_FACTOR` times their confidence; the method text says which.
    unresolved : dict of str to str
        For each side whose detected points are not resolved, ``{side}.sap_facet`` and
        ``{side}.entry`` mapped to one sentence saying why (both names, whether or not the
        point was detected). Supplied points are never judged; a side with both points
        supplied is absent.

    Raises
    ------
    GeometryError
        ``hu`` is not 3D or ``affine`` is not 4 x 4.
    """
    hu, aff, voxel_mm = check_ct(hu, affine)
    out = dict(landmarks)
    unresolved: dict[str, str] = {}
    kinds = ("sap_facet", "entry")
    if voxel_mm >= max_voxel_mm:
        reason = (f"at {voxel_mm:.1f} mm CT voxels (>= {max_voxel_mm:.1f} mm) the L5-S1 facet "
                  "joint space and its two cortices merge into one peak in the CT")
        for side in ("left", "right"):
            if not all(_supplied(landmarks, f"{side}.{k}") for k in kinds):
                unresolved.update({f"{side}.{k}": reason for k in kinds})
        return out, unresolved
    min_marrow_hu = bone_thresholds_hu(np.full(3, voxel_mm))[0]
    for side in ("left", "right"):
        normal, tangent = facet_axes(side)
        why: list[str] = []
        for kind in kinds:
            lm = landmarks.get(f"{side}.{kind}")
            if lm is None:
                if not _supplied(landmarks, f"{side}.{kind}"):
                    why.append(f"{kind} not found on the mask")
                continue
            if lm.supplied:
                continue
            c = frame.to_frame_mm(np.asarray(lm.xyz_ras_mm, float)[None])[0]
            s_wide, prof_wide = sample_profiles(hu, aff, frame, c, normal, tangent,
                                                extent_mm=WIDE_PROFILE_MM)
            near = (s_wide >= PROFILE_IN_MM - 1e-9) & (s_wide <= PROFILE_OUT_MM + 1e-9)
            joint = _joint_near(s_wide[near], prof_wide[:, near], voxel_mm=voxel_mm)
            how = "the S1-side half-level edge of the L5-S1 joint space in the CT"
            if joint.edge_mm is None:
                seen = (f"dip {joint.contrast_hu:.0f} HU < {joint.required_hu:.0f} HU"
                        if np.isfinite(joint.contrast_hu) else "no peak-dip-peak")
                wide = _joint_wide(s_wide, prof_wide, voxel_mm=voxel_mm,
                                   min_marrow_hu=min_marrow_hu)
                if wide.edge_mm is not None:
                    why.append(f"{kind}: the mask point is off the joint ({seen} at it; "
                               "the joint found "
                               f"{wide.edge_mm:+.1f} mm along the facet normal)")
                    joint = wide
                    how += (" (the S1 marrow searched "
                            f"{WIDE_MARROW_WINDOW_MM[0]:.0f} to {WIDE_MARROW_WINDOW_MM[1]:+.0f}"
                            " mm along the normal: the mask point was off the joint)")
                else:
                    why.append(f"{kind}: no clear joint space ({seen})")
            if joint.edge_mm is None:
                out[lm.name] = replace(
                    lm, confidence=UNCONFIRMED_FACTOR * lm.confidence,
                    method=f"{lm.method}; kept: CT profiles along the facet normal show no "
                           f"clear L5-S1 joint space ({why[-1].split('(', 1)[1]}")
                continue
            edge = float(joint.edge_mm)
            xyz = frame.to_world_mm((c + edge * normal)[None])[0]
            out[lm.name] = replace(
                lm, xyz_ras_mm=xyz,
                method=f"{lm.method}; moved {edge:+.1f} mm along the facet normal to {how} "
                       f"(dip {joint.contrast_hu:.0f} HU below the cortices)")
        if why:
            reason = ("the CT does not resolve the L5-S1 facet joint at the mask's facet "
                      f"points ({'; '.join(why)})")
            unresolved.update({f"{side}.{k}": reason for k in kinds})
    return out, unresolved


def _supplied(landmarks: dict[str, Landmark], name: str) -> bool:
    lm = landmarks.get(name)
    return lm is not None and lm.supplied

"""The lateral boundary of the ala (sacral face of the SI joint) refined from CT intensity.

``{side}.ala_lateral`` is where a lateral ray at the pedicle level leaves the sacrum
(:mod:`alarscrew.anatomy.landmarks`). On a threshold mask that exit is unreliable at the
sacroiliac joint: on coarse voxels the sacral cortex, the 2-4 mm joint space and the iliac
cortex blur into one band, and the mask edge falls a few mm either side of the sacral face
(phantom, 2.5-3 mm voxels: 2-6 mm), or, where the alar marrow is fatty and below the bone
threshold, stops in the marrow short of the joint (real 3 mm scan: about 10 mm medial).

:func:`refine_ala_lateral` re-reads the CT along that ray. The ray meets the joint obliquely
(22 degrees from the face normal in the phantom), so the CT is sampled on bundles of profiles
parallel to the ray whose starts lie on a candidate face plane (turned 0-40 degrees from
sagittal, anterior end lateral: the SI joint runs from posteromedial to anterolateral in axial
section; 9 x 9 mm across), through the point where the ray meets the mask edge. Every profile
of a bundle aligned with the face crosses it at the same distance along the ray, so the
average keeps the joint's contrast and positions are read directly along the ray. Each
averaged profile is read from the sacrum outward:

1. the sacral marrow: the darkest point 8-15 mm medial of the mask edge;
2. the first cortical crest outward of it (above half-way from the marrow to the brightest
   point of the profile);
3. resolved joint: a dip after that crest and a second (iliac) crest at most
   :func:`alarscrew.anatomy.facet.max_peak_separation_mm` from the first, the dip at least
   :data:`MIN_JOINT_CONTRAST_HU` (and four standard errors of the averaged profile) below
   both crests. The sacral face is the half-level edge between the sacral crest and the dip,
   on the dip's side;
4. unresolved joint: the crest is the merged joint band (or, where a dip too shallow to
   accept separates two crests, the outer crest bounds it). Its sacral-side half-level edge
   (half-way from the marrow to the first crest) lies medial of the sacral face, and the
   outer crest lies lateral of it (at the joint centre, or further out where the iliac side
   is sclerotic), so the face lies in that interval. The joint width, which would place the
   face inside the interval, is not measurable; the mask point is kept when it lies in the
   interval and otherwise moved to its nearer end. Projecting onto an interval that holds the
   face never moves the point further from it.

The face angle whose bundle shows the clearest joint (deepest dip, else the highest band
above the marrow) is used. The landmark keeps its definition (a point of the lateral ray); the
method text says which case applied and what was measured.

Frames: S1 frame (x right, y anterior, z cranial), the ray at frame z = ``ALA_LEVEL_MM``
from the pedicle landmark's x, midway in y between the pedicle and ``ala_anterior``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy import ndimage as ndi
from scipy.signal import find_peaks

from alarscrew.anatomy.ctsample import check_ct
from alarscrew.anatomy.facet import (
    BUNDLE_HALF_MM,
    BUNDLE_STEP_MM,
    PROFILE_IN_MM,
    PROFILE_OUT_MM,
    max_peak_separation_mm,
    sample_profiles,
)
from alarscrew.anatomy.landmarks import ALA_LEVEL_MM
from alarscrew.anatomy.model import Landmark
from alarscrew.spatial.frame import S1Frame

#: Candidate angles (deg) of the SI-joint face from the sagittal plane, anterior end lateral:
#: the sacral auricular surface faces laterally and somewhat posteriorly in axial section (the
#: phantom's joint: 22 degrees); the angle is chosen per side from the CT.
FACE_ANGLES_DEG = np.arange(0.0, 40.1, 5.0)
#: Extent (mm, along the normal, relative to the mask edge) searched for the joint: the mask
#: edge has been measured up to 6 mm lateral (phantom) and 10 mm medial (real scan, fatty
#: alar marrow) of the joint.
SEARCH_IN_MM, SEARCH_OUT_MM = -15.0, 18.0
#: The sacral marrow anchor is the darkest point of the averaged profile in this window (mm):
#: medial of the sacral cortex even when the mask edge lies 6 mm lateral of the face (in the
#: joint or the ilium, where the joint space itself would be the darkest point), and not so
#: deep that the bundle leaves the ala.
MARROW_WINDOW_MM = (-15.0, -8.0)
#: Smallest dip (HU) below both crests accepted as a resolved joint space, whatever the noise.
MIN_JOINT_CONTRAST_HU = 10.0
#: Smallest rise (HU) of an unresolved joint band above the sacral marrow. A 1 mm cortex of
#: 850 HU in a 3 mm voxel over 100-200 HU marrow adds about 200 HU; half of that keeps a band
#: at the coarsest voxels while a streak or trabecular bump (tens of HU) stays below.
MIN_BAND_RISE_HU = 50.0
#: Confidence factor for a point the CT could not place on a resolved joint.
UNRESOLVED_FACTOR = 0.7
#: Smoothing of the averaged profile (Gaussian sigma, mm): the noise of single samples.
SMOOTH_MM = 0.5


@dataclass(frozen=True)
class JointReading:
    """What an averaged profile across the SI joint shows (positions in mm along it).

    Attributes
    ----------
    resolved : bool
        A dip between two crests deeper than ``required_hu``.
    face_mm : float or None
        Sacral face (resolved joint only).
    band_mm : tuple of float or None
        (sacral-side half-level edge, crest) of the first bony band outward of the marrow;
        None when no band rises :data:`MIN_BAND_RISE_HU` above the marrow.
    contrast_hu : float
        Dip depth below the lower crest (NaN without crest-dip-crest).
    required_hu : float
        Dip depth a resolved joint needs.
    rise_hu : float
        Height of the first crest above the marrow (NaN without a crest).
    """

    resolved: bool
    face_mm: float | None
    band_mm: tuple[float, float] | None
    contrast_hu: float
    required_hu: float
    rise_hu: float


def _falls_below(s_mm: np.ndarray, values: np.ndarray, level: float) -> float:
    """Position where ``values`` (starting above ``level``) first fall below it, linear."""
    k = int(np.argmax(values < level))
    a, b = values[k - 1] - level, values[k] - level
    f = a / (a - b) if a != b else 0.5
    return float(s_mm[k - 1] + f * (s_mm[k] - s_mm[k - 1]))


def read_joint(s_mm: np.ndarray, profiles: np.ndarray, *, voxel_mm: float) -> JointReading:
    """Read the SI joint on a bundle of CT profiles running from the sacrum outward.

    Parameters
    ----------
    s_mm : (S,) ndarray
        Increasing, evenly spaced positions along the lateral joint normal (mm); the sacral
        marrow lies in :data:`MARROW_WINDOW_MM`.
    profiles : (R, S) ndarray
        HU profiles (NaN outside the image; rays with NaN are dropped).
    voxel_mm : float
        Mean voxel size (mm), for the largest crest separation of a joint.

    Returns
    -------
    JointReading
        See the module docstring for the reading.
    """
    prof = np.asarray(profiles, float)
    prof = prof[np.all(np.isfinite(prof), axis=1)]
    none = JointReading(False, None, None, float("nan"), MIN_JOINT_CONTRAST_HU, float("nan"))
    if len(prof) < 3:
        return none
    step = float(s_mm[1] - s_mm[0])
    mean = ndi.gaussian_filter1d(prof.mean(axis=0), SMOOTH_MM / step)
    lo, hi = np.searchsorted(s_mm, MARROW_WINDOW_MM)
    i0 = lo + int(np.argmin(mean[lo:hi]))
    # noise of the bundle mean: spread across rays in the marrow window (median absolute
    # deviation, robust to rays leaving the ala at the bundle edge) over the number of
    # independent voxels the bundle covers
    window = prof[:, lo:hi]
    spread = 1.4826 * float(np.median(np.abs(window - np.median(window, axis=0))))
    n_indep = min(len(prof), max(1.0, (2.0 * BUNDLE_HALF_MM + BUNDLE_STEP_MM) ** 2
                                 / float(voxel_mm) ** 2))
    required = max(MIN_JOINT_CONTRAST_HU, 4.0 * spread / np.sqrt(n_indep))
    tail = mean[i0:]
    peaks = find_peaks(tail, prominence=MIN_JOINT_CONTRAST_HU / 3.0)[0] + i0
    dips = find_peaks(-tail, prominence=MIN_JOINT_CONTRAST_HU / 3.0)[0] + i0
    crests = peaks[mean[peaks] >= 0.5 * (mean[i0] + tail.max())]
    if len(crests) == 0:
        return replace(none, required_hu=required)
    p1 = int(crests[0])
    floor = float(mean[i0:p1 + 1].min())
    rise = float(mean[p1] - floor)
    band = None
    if rise >= MIN_BAND_RISE_HU:
        # sacral-side half-level edge: the last upward crossing of the level before the crest
        seg = mean[i0:p1 + 1]
        level = 0.5 * (floor + float(mean[p1]))
        k = int(np.nonzero(seg < level)[0][-1])
        f = (level - seg[k]) / (seg[k + 1] - seg[k])
        band = (float(s_mm[i0 + k] + f * step), float(s_mm[p1]))
    contrast = float("nan")
    later = dips[dips > p1]
    iliac = False
    if len(later):
        j = int(later[0])
        after = peaks[peaks > j]
        if len(after) and s_mm[after[0]] - s_mm[p1] <= max_peak_separation_mm(voxel_mm):
            p2 = int(after[0])
            iliac = True
            contrast = float(min(mean[p1], mean[p2]) - mean[j])
            if band is not None:
                # an unresolved dip still separates the sacral and the iliac crest: the
                # face lies medial of the iliac one
                band = (band[0], float(s_mm[p2]))
            if contrast >= required:
                face = _falls_below(s_mm[p1:j + 1], mean[p1:j + 1], 0.5 * (mean[p1] + mean[j]))
                return JointReading(True, face, band, contrast, required, rise)
    if band is not None and not iliac:
        # no iliac crest beyond the sacral one: a joint whose plates have merged continues
        # into iliac bone (its first low beyond the crest is iliac marrow), a free alar
        # surface into soft tissue (fat, muscle, vessels: darker than the sacral marrow).
        # The latter is no joint band: its crest is the sacral cortex, the face lies outside
        low = float(mean[later[0]]) if len(later) else float(mean[p1:].min())
        if low < floor - MIN_BAND_RISE_HU:
            band = None
    return JointReading(False, None, band, contrast, required, rise)


def _profiles(hu: np.ndarray, affine: np.ndarray, frame: S1Frame, center_frame_mm: np.ndarray,
              ray: np.ndarray, tangent: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bundle profiles along ``ray`` over :data:`SEARCH_IN_MM`..:data:`SEARCH_OUT_MM`.

    The bundle's rays start on a plane through ``center_frame_mm`` spanned by ``tangent``
    and the cranial-ish axis ``ray x tangent``. :func:`alarscrew.anatomy.facet.sample_profiles`
    samples a fixed extent about its centre; the search extent is covered by sampling about
    shifted centres and joining the pieces.
    """
    shifts = np.arange(SEARCH_IN_MM - PROFILE_IN_MM, SEARCH_OUT_MM - PROFILE_IN_MM,
                       PROFILE_OUT_MM - PROFILE_IN_MM)
    pieces = [sample_profiles(hu, affine, frame, center_frame_mm + d * ray, ray, tangent)
              for d in shifts]
    s_all = np.concatenate([s_mm + d for (s_mm, _), d in zip(pieces, shifts, strict=True)])
    p_all = np.concatenate([prof for _, prof in pieces], axis=1)
    s_mm, first = np.unique(np.round(s_all, 6), return_index=True)
    keep = s_mm <= SEARCH_OUT_MM + 1e-9
    return s_mm[keep], p_all[:, first[keep]]


def refine_ala_lateral(hu: np.ndarray, affine: np.ndarray, frame: S1Frame,
                       found: dict[str, Landmark]) -> dict[str, Landmark]:
    """Move ``{side}.ala_lateral`` along its lateral ray to the sacral face seen in the CT.

    Parameters
    ----------
    hu : (I, J, K) ndarray
        CT in HU on its own grid.
    affine : (4, 4) ndarray
        Voxel -> world RAS mm of ``hu``.
    frame : S1Frame
        The S1 frame of the landmarks.
    found : dict of str to Landmark
        Landmarks (world RAS mm). ``{side}.ala_lateral`` is refined when present and not
        supplied; the ray runs laterally at frame z = ``ALA_LEVEL_MM`` from the x of
        ``{side}.pedicle``, midway in y between it and ``{side}.ala_anterior`` (as they are in
        ``found``), or through the ala_lateral point itself when either is missing. Not
        modified.

    Returns
    -------
    dict of str to Landmark
        A new dict: ala_lateral moved to the sacral face of a resolved joint, moved to the
        nearer end of an unresolved joint band that does not contain it, or kept; the latter
        two with :data:`UNRESOLVED_FACTOR` times its confidence. The method text says which.

    Raises
    ------
    GeometryError
        ``hu`` is not 3D or ``affine`` is not 4 x 4.
    """
    hu, aff, voxel_mm = check_ct(hu, affine)
    out = dict(found)
    for side, s in (("left", -1.0), ("right", 1.0)):
        lm = found.get(f"{side}.ala_lateral")
        if lm is None or lm.supplied:
            continue
        p_mask = frame.to_frame_mm(np.asarray(lm.xyz_ras_mm, float)[None])[0]
        ped, ant = found.get(f"{side}.pedicle"), found.get(f"{side}.ala_anterior")
        if ped is not None and ant is not None:
            y_ped, y_ant = (frame.to_frame_mm(np.asarray(x.xyz_ras_mm, float)[None])[0][1]
                            for x in (ped, ant))
            anchor = np.array([p_mask[0], 0.5 * (y_ped + y_ant), ALA_LEVEL_MM])
        else:
            anchor = p_mask
        lateral = np.array([s, 0.0, 0.0])
        best = None
        for ang in np.radians(FACE_ANGLES_DEG):
            # rays along the lateral ray, started on a face turned ``ang`` from sagittal
            # (anterior end lateral): every ray of the bundle meets such a face at the same s
            face_tangent = np.array([s * np.sin(ang), np.cos(ang), 0.0])
            s_mm, prof = _profiles(hu, aff, frame, anchor, lateral, face_tangent)
            r = read_joint(s_mm, prof, voxel_mm=voxel_mm)
            score = ((1, r.contrast_hu) if r.resolved
                     else (0, r.rise_hu if r.band_mm is not None else -np.inf))
            if best is None or score > best[0]:
                best = (score, r, ang)
        _, r, ang = best
        ang_deg = float(np.degrees(ang))
        if r.resolved:
            along = r.face_mm
            how = (f"moved {along:+.1f} mm along the ray to the sacral half-level edge of the "
                   f"SI joint space in the CT (bundle across a face {ang_deg:.0f} deg from "
                   f"sagittal; dip {r.contrast_hu:.0f} HU below the cortices)")
            conf = lm.confidence
        elif r.band_mm is not None:
            edge, crest = r.band_mm
            target = float(np.clip(0.0, edge, crest))
            along = target
            seen = (f"joint space not resolved (dip {r.contrast_hu:.0f} < "
                    f"{r.required_hu:.0f} HU)" if np.isfinite(r.contrast_hu)
                    else "joint space not resolved")
            where = ("kept: inside" if target == 0.0 else
                     f"moved {along:+.1f} mm along the ray to the nearer end of")
            how = (f"{where} the SI joint band of the CT ({edge:+.1f} to {crest:+.1f} mm "
                   f"along the ray: sacral-side half-level edge to the outer crest, bundle "
                   f"across a face {ang_deg:.0f} deg from sagittal; {seen})")
            conf = UNRESOLVED_FACTOR * lm.confidence
        else:
            along = 0.0
            how = ("kept: no SI joint band in the CT profiles (no crest "
                   f"{MIN_BAND_RISE_HU:.0f} HU above the sacral marrow, or soft tissue "
                   "beyond it: a free surface)")
            conf = UNRESOLVED_FACTOR * lm.confidence
        xyz = frame.to_world_mm((anchor + along * lateral)[None])[0]
        out[lm.name] = replace(lm, xyz_ras_mm=xyz, confidence=conf,
                               method=f"{lm.method}; {how}")
    return out

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
   :data:`MIN_JOINT_CONTRAST_HU` and :data:`DIP_SIGMAS` standard errors of the averaged
   profile below both crests. The standard error is the CT's voxel noise, measured in the
   soft tissue around the joint (:func:`soft_tissue_noise_hu`), times the exact white-noise
   gain of the bundle average (:func:`bundle_noise_gain`); the spread of the profiles near
   the joint is no noise measure at coarse voxels, as it mixes in the anatomy that differs
   from ray to ray (3 mm phantom, 20 HU noise: 23-33 HU, a dip of 27 HU refused). The
   sacral face is the half-level edge between the sacral crest and the dip, on the dip's
   side;
4. unresolved joint: the crest is the merged joint band (or, where a dip too shallow to
   accept separates two crests, the outer crest bounds it). Its sacral-side half-level edge
   (half-way from the marrow to the first crest) lies medial of the sacral face, and the
   outer crest lies lateral of it (at the joint centre, or further out where the iliac side
   is sclerotic), so the face lies in that interval. The joint width, which would place the
   face inside the interval, is not measurable; the point is moved to the interval's middle,
   which is never more than half its width from the face (the estimate with the smallest
   worst-case error; the mask point inside the interval is 2-5 mm off at 3 mm voxels, which
   place the mask edge by the fill, not by the joint). Physically the middle lies close to
   the face: medial of it, the sacral cortex plus half the blur; lateral, the joint space
   plus half the iliac cortex, both 3-4 mm at 3 mm voxels.

The face angle whose bundle shows the clearest joint (a resolved dip, else the deepest dip,
else the highest band above the marrow) is used. The landmark keeps its definition (a point
of the lateral ray); the method text says which case applied and what was measured.

Frames: S1 frame (x right, y anterior, z cranial), the ray at frame z = ``ALA_LEVEL_MM``
from the pedicle landmark's x, midway in y between the pedicle and ``ala_anterior``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy import ndimage as ndi
from scipy.signal import find_peaks

from alarscrew.anatomy.ctsample import check_ct, sample_ijk
from alarscrew.anatomy.facet import (
    BUNDLE_HALF_MM,
    BUNDLE_STEP_MM,
    PROFILE_STEP_MM,
    max_peak_separation_mm,
)
from alarscrew.anatomy.landmarks import ALA_LEVEL_MM
from alarscrew.anatomy.model import Landmark
from alarscrew.spatial.frame import S1Frame, matmul_rows

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
#: Tissue this much darker (HU) than the sacral marrow between the marrow and the first crest
#: is outside the sacrum (fat, muscle, an open joint space): the crest is then the ilium's. The
#: same margin as a band's rise: marrow's own variation (tens of HU) stays below it.
GAP_BELOW_MARROW_HU = MIN_BAND_RISE_HU
#: Confidence factor for a point the CT could not place on a resolved joint.
UNRESOLVED_FACTOR = 0.7
#: Smoothing of the averaged profile (Gaussian sigma, mm): the noise of single samples.
SMOOTH_MM = 0.5
#: A resolved joint's dip must lie this many standard errors of the averaged profile below
#: both crests.
DIP_SIGMAS = 4.0
#: Soft tissue for the CT noise estimate: voxels whose six face neighbours average within this
#: band (HU; muscle, vessels, water-like tissue about 20-80 HU). Fat (-100 HU) and bone are
#: left out, so that few voxels sit on a tissue edge.
NOISE_TISSUE_HU = (-30.0, 120.0)
#: Half-size (mm) of the box about each side's ray anchor read for the noise estimate: the
#: gluteal, iliacus and psoas muscles around the joint, the noise where the profiles are read.
NOISE_BOX_HALF_MM = 40.0
#: Most voxels read for the noise estimate (the box is subsampled beyond), and fewest needed.
NOISE_MAX_VOXELS, NOISE_MIN_VOXELS = 60000, 200


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


def soft_tissue_noise_hu(hu: np.ndarray, affine: np.ndarray, center_ras_mm: np.ndarray
                         ) -> float | None:
    """Standard deviation (HU) of the CT's voxel noise in the soft tissue about a point.

    Parameters
    ----------
    hu : (I, J, K) ndarray
        CT in HU.
    affine : (4, 4) ndarray
        Voxel -> world RAS mm.
    center_ras_mm : (3,) ndarray
        Centre of the box of half-size :data:`NOISE_BOX_HALF_MM` that is read (world RAS mm).

    Returns
    -------
    float or None
        The estimate; None with fewer than :data:`NOISE_MIN_VOXELS` soft-tissue voxels.

    Notes
    -----
    The residual of a voxel against the mean of its six face neighbours,
    ``r = v - mean(n_1..n_6)``, has variance ``sigma**2 * (1 + 1/6)`` under white noise of
    variance ``sigma**2`` where the tissue is homogeneous. It is read only where the
    neighbours' mean lies in :data:`NOISE_TISSUE_HU` (soft tissue, whose regions are wide
    and even), and its spread is taken as the median absolute deviation (x 1.4826), robust to
    the minority of voxels on a tissue edge, which otherwise dominate at coarse voxels: the
    spread of the profiles themselves near the joint mixes noise with the anatomy (on the
    3 mm phantom with 20 HU noise, 23-33 HU across the bundle's rays against 24-26 HU here).
    Correlated noise (smooth reconstruction kernels) reads lower than its voxel standard
    deviation.
    """
    inv = np.linalg.inv(np.asarray(affine, float))
    ijk = inv[:3, :3] @ np.asarray(center_ras_mm, float) + inv[:3, 3]
    vox_mm = np.sqrt((np.asarray(affine, float)[:3, :3] ** 2).sum(axis=0))
    shape = np.asarray(hu.shape)
    half = np.ceil(NOISE_BOX_HALF_MM / vox_mm).astype(int)
    lo = np.clip(np.round(ijk).astype(int) - half, 1, shape - 2)
    hi = np.clip(np.round(ijk).astype(int) + half + 1, lo, shape - 1)
    stride = max(1, int(np.ceil((float(np.prod(hi - lo)) / NOISE_MAX_VOXELS) ** (1.0 / 3.0))))
    if np.any(hi <= lo):
        return None

    def shifted(d: tuple[int, int, int]) -> np.ndarray:
        # the voxels of the strided box moved by d, in the box's C order (a strided slice:
        # the same values as indexing with the raveled index grid, without building it)
        return np.asarray(hu[tuple(slice(a + o, b + o, stride) for a, b, o
                                   in zip(lo, hi, d, strict=True))], float).ravel()

    neigh = sum(shifted(d) for d in ((-1, 0, 0), (1, 0, 0), (0, -1, 0), (0, 1, 0),
                                     (0, 0, -1), (0, 0, 1))) / 6.0
    soft = (neigh >= NOISE_TISSUE_HU[0]) & (neigh <= NOISE_TISSUE_HU[1])
    if soft.sum() < NOISE_MIN_VOXELS:
        return None
    r = shifted((0, 0, 0))[soft] - neigh[soft]
    return float(1.4826 * np.median(np.abs(r - np.median(r))) / np.sqrt(7.0 / 6.0))


def bundle_noise_gain(affine: np.ndarray, frame: S1Frame, center_frame_mm: np.ndarray,
                      ray: np.ndarray, tangents: np.ndarray) -> np.ndarray:
    """Standard error of the smoothed bundle mean per HU of white voxel noise.

    Parameters
    ----------
    affine : (4, 4) ndarray
        Voxel -> world RAS mm of the CT.
    frame : S1Frame
        Frame of the points.
    center_frame_mm, ray : (3,) ndarray
        Bundle centre (frame mm) and the unit direction of its rays, as in
        :func:`alarscrew.anatomy.facet.sample_profiles`.
    tangents : (A, 3) ndarray
        Unit tangents of the planes the rays start on, one bundle each.

    Returns
    -------
    (A,) ndarray
        ``sqrt(sum_v w_v**2)`` per bundle, averaged over four positions along the ray a
        quarter voxel apart, where ``w_v`` is the weight of voxel ``v`` in one value of the
        averaged profile (trilinear sampling of every ray, the mean over the rays, the
        :data:`SMOOTH_MM` Gaussian along them).

    Notes
    -----
    The averaged profile is linear in the voxel values, so under independent voxel noise of
    standard deviation ``sigma`` its standard error is ``sigma * sqrt(sum_v w_v**2)``. Rays
    1 mm apart share voxels when these are coarser, so the number of rays overstates the
    number of independent samples; the weights count the sharing exactly (3 mm voxels:
    0.22-0.25, where 81 independent rays would give 0.11).
    """
    aff = np.asarray(affine, float)
    tangents = np.atleast_2d(np.asarray(tangents, float))
    vox_mm = float(np.mean(np.sqrt((aff[:3, :3] ** 2).sum(axis=0))))
    sig = SMOOTH_MM / PROFILE_STEP_MM
    taps = np.arange(-int(4.0 * sig + 0.5), int(4.0 * sig + 0.5) + 1)  # gaussian_filter1d's
    g = np.exp(-0.5 * (taps / sig) ** 2)
    g /= g.sum()
    u = np.arange(-BUNDLE_HALF_MM, BUNDLE_HALF_MM + 1e-9, BUNDLE_STEP_MM)
    uu, ww = (a.ravel() for a in np.meshgrid(u, u, indexing="ij"))
    w_axes = np.cross(ray, tangents)  # (A, 3)
    base = (center_frame_mm + uu[None, :, None] * tangents[:, None, :]
            + ww[None, :, None] * w_axes[:, None, :])  # (A, R, 3)
    along = (np.arange(4)[:, None] * vox_mm / 4.0 + taps[None, :] * PROFILE_STEP_MM)  # (4, T)
    ijk_base, d_ijk = _ray_ijk(aff, frame, base, np.asarray(ray, float))
    # voxel indices of every sample, one (A, 4, R, T) plane per voxel axis
    ijk = (np.moveaxis(ijk_base, -1, 0)[:, :, None, :, None]
           + d_ijk[:, None, None, None, None] * along[None, None, :, None, :])
    i0 = np.floor(ijk)
    frac = ijk - i0
    i0 = i0.astype(np.int64)
    n_bundles = len(tangents) * 4
    i0 -= i0.reshape(3, -1).min(axis=1)[:, None, None, None, None]
    dims = i0.reshape(3, -1).max(axis=1) + 2
    strides = np.array([dims[1] * dims[2], dims[2], 1])
    n_vox = int(np.prod(dims))
    # flat voxel index per sample (bundle b's voxels at b * n_vox + index)
    key0 = (i0[0] * strides[0] + i0[1] * strides[1] + i0[2]).reshape(n_bundles, -1) + (
        np.arange(n_bundles) * n_vox)[:, None]
    # linear weights per axis and corner; the sample's weight in the averaged profile first
    w_x = [np.broadcast_to(g / len(uu), frac.shape[1:]) * lin
           for lin in (1.0 - frac[0], frac[0])]
    w_xy = [w_x[a] * lin for a in range(2) for lin in (1.0 - frac[1], frac[1])]
    w_vox = np.zeros(n_bundles * n_vox)
    for a, b, c in np.ndindex(2, 2, 2):
        # trilinear weight of corner (a, b, c) of every sample, summed per voxel
        w_vox += np.bincount((key0 + (a * strides[0] + b * strides[1] + c)).ravel(),
                             weights=(w_xy[2 * a + b] * (frac[2] if c else 1.0 - frac[2])
                                      ).ravel(),
                             minlength=n_bundles * n_vox)
    var = (w_vox.reshape(len(tangents), 4, -1) ** 2).sum(axis=2)
    return np.sqrt(var.mean(axis=1))


def read_joint(s_mm: np.ndarray, profiles: np.ndarray, *, voxel_mm: float,
               noise_se_hu: float | None = None) -> JointReading:
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
    noise_se_hu : float, optional
        Standard error (HU) of the averaged profile from the CT's noise
        (:func:`soft_tissue_noise_hu` x :func:`bundle_noise_gain`). Without it, the spread
        across the rays in the marrow window over the number of voxels the bundle covers
        stands in, which also counts the anatomy that differs between rays (larger).

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
    if noise_se_hu is None:
        # no noise estimate from the CT's soft tissue: spread across rays in the marrow
        # window (median absolute deviation, robust to rays leaving the ala at the bundle
        # edge) over the number of independent voxels the bundle covers
        window = prof[:, lo:hi]
        spread = 1.4826 * float(np.median(np.abs(window - np.median(window, axis=0))))
        n_indep = min(len(prof), max(1.0, (2.0 * BUNDLE_HALF_MM + BUNDLE_STEP_MM) ** 2
                                     / float(voxel_mm) ** 2))
        noise_se_hu = spread / np.sqrt(n_indep)
    required = max(MIN_JOINT_CONTRAST_HU, DIP_SIGMAS * float(noise_se_hu))
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
        j_floor = i0 + int(np.argmin(seg))
        if (float(mean[i0]) - floor >= GAP_BELOW_MARROW_HU
                and s_mm[p1] - s_mm[j_floor] > max_peak_separation_mm(voxel_mm)):
            # tissue darker than the sacral marrow, and the crest farther from it than a
            # joint's two cortices and gap: the sacrum ended at a free surface or an open
            # joint space and the crest is the ilium's (atlas s31 at 2 mm, bundle 40 deg from
            # sagittal: a 112 HU gap after 311 HU marrow, the iliac crest 11.5 mm beyond it,
            # read as a joint band 8-16 mm lateral of the face; 2026-12-04). A joint band
            # follows fatty marrow within a joint's width (phantom at 2.5 mm: <= 4 mm)
            return replace(none, required_hu=required, rise_hu=rise)
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


def _ray_ijk(affine: np.ndarray, frame: S1Frame, base_frame_mm: np.ndarray, ray: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray]:
    """Voxel indices of ray starts (frame mm) and the index step per mm along ``ray``.

    A point ``base + s * ray`` lies at ``ijk_base + s * d_ijk``: frame and affine are affine
    maps, so the profiles of a bundle need only their starts transformed, not every sample.

    Returns
    -------
    ijk_base : (..., 3) ndarray
        Voxel indices of ``base_frame_mm``.
    d_ijk : (3,) ndarray
        Change of the voxel indices per mm along the frame direction ``ray``.
    """
    inv = np.linalg.inv(np.asarray(affine, float))
    ijk_base = matmul_rows(frame.to_world_mm(base_frame_mm), inv[:3, :3].T, inv[:3, 3])
    return ijk_base, inv[:3, :3] @ (np.asarray(ray, float) @ frame.rotation)


def _sample_rays(hu: np.ndarray, affine: np.ndarray, frame: S1Frame, base_frame_mm: np.ndarray,
                 ray: np.ndarray, s_mm: np.ndarray) -> np.ndarray:
    """Trilinear HU at ``base + s * ray`` for every start and position (NaN outside the image).

    The same values as :func:`alarscrew.anatomy.ctsample.sample_frame_points` on those
    points (to rounding), with the voxel indices of the samples formed from the starts' and
    the step's (:func:`_ray_ijk`) instead of two matrix products per sample.

    Parameters
    ----------
    hu : (I, J, K) ndarray
        CT in HU.
    affine : (4, 4) ndarray
        Voxel -> world RAS mm.
    frame : S1Frame
    base_frame_mm : (M, 3) ndarray
        Ray starts (frame mm).
    ray : (3,) ndarray
        Unit frame direction of the rays.
    s_mm : (S,) ndarray
        Positions along the rays (mm).

    Returns
    -------
    (M, S) float32 ndarray
    """
    ijk_base, d_ijk = _ray_ijk(affine, frame, np.asarray(base_frame_mm, float), ray)
    # (3, M, S): one contiguous plane per voxel axis
    coords = ijk_base.T[:, :, None] + d_ijk[:, None, None] * np.asarray(s_mm, float)
    return sample_ijk(hu, coords)


def _bundle_profiles(hu: np.ndarray, affine: np.ndarray, frame: S1Frame,
                     center_frame_mm: np.ndarray, ray: np.ndarray, tangents: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Profiles along ``ray`` over :data:`SEARCH_IN_MM`..:data:`SEARCH_OUT_MM`, one bundle per
    tangent, sampled in one call.

    Bundle ``a``'s rays start on the plane through ``center_frame_mm`` spanned by
    ``tangents[a]`` and ``ray x tangents[a]``, on the square grid of
    :func:`alarscrew.anatomy.facet.sample_profiles` (:data:`BUNDLE_HALF_MM`,
    :data:`BUNDLE_STEP_MM`, :data:`PROFILE_STEP_MM`).

    Returns
    -------
    s_mm : (S,) ndarray
        Positions along the ray (mm from the centre).
    profiles : (A, R, S) ndarray
        Trilinear HU; NaN outside the image.
    """
    s_mm = np.arange(SEARCH_IN_MM, SEARCH_OUT_MM + 1e-9, PROFILE_STEP_MM)
    u = np.arange(-BUNDLE_HALF_MM, BUNDLE_HALF_MM + 1e-9, BUNDLE_STEP_MM)
    uu, ww = (g.ravel() for g in np.meshgrid(u, u, indexing="ij"))
    tangents = np.atleast_2d(np.asarray(tangents, float))
    w_axes = np.cross(ray, tangents)  # (A, 3)
    base = (center_frame_mm + uu[None, :, None] * tangents[:, None, :]
            + ww[None, :, None] * w_axes[:, None, :])  # (A, R, 3)
    prof = _sample_rays(hu, affine, frame, base.reshape(-1, 3), np.asarray(ray, float), s_mm)
    return s_mm, prof.reshape(*base.shape[:2], len(s_mm))


@dataclass(frozen=True, eq=False)
class FaceReading:
    """The sacral face of the SI joint read on one lateral ray (S1 frame, mm).

    Attributes
    ----------
    anchor_frame_mm : (3,) ndarray
        Start of the ray; positions along it are mm from here, positive laterally.
    lateral : (3,) ndarray
        Unit direction of the ray in the frame: (-1, 0, 0) left, (1, 0, 0) right.
    joint : JointReading
        Reading of the bundle across the clearest face angle (see :func:`read_si_face`).
    angle_deg : float
        That face angle from sagittal (anterior end lateral).
    noise_hu : float or None
        Soft-tissue voxel noise of the CT the dip was compared with; None where the spread
        across the rays stood in (:func:`read_joint`).
    """

    anchor_frame_mm: np.ndarray
    lateral: np.ndarray
    joint: JointReading
    angle_deg: float
    noise_hu: float | None

    @property
    def kind(self) -> str:
        """``"resolved"`` (face read), ``"band"`` (an interval holds it) or ``"none"``."""
        if self.joint.resolved:
            return "resolved"
        return "band" if self.joint.band_mm is not None else "none"

    @property
    def interval_mm(self) -> tuple[float, float] | None:
        """Interval along the ray (mm from the anchor) that holds the sacral face.

        The face twice where the joint is resolved; the unresolved band's sacral-side
        half-level edge and outer crest; None without a joint band.
        """
        if self.joint.resolved and self.joint.face_mm is not None:
            return self.joint.face_mm, self.joint.face_mm
        return self.joint.band_mm

    @property
    def along_mm(self) -> float:
        """Where the point goes along the ray: the face, the band's middle, or 0 (kept)."""
        iv = self.interval_mm
        return 0.0 if iv is None else 0.5 * (iv[0] + iv[1])

    def at_mm(self, along_mm: float) -> np.ndarray:
        """(3,) frame point ``along_mm`` along the ray from the anchor."""
        return self.anchor_frame_mm + along_mm * self.lateral


def read_si_face(hu: np.ndarray, affine: np.ndarray, frame: S1Frame,
                 anchor_frame_mm: np.ndarray, side: str) -> FaceReading:
    """Read the sacral face of the SI joint on the lateral ray from a point.

    Parameters
    ----------
    hu : (I, J, K) ndarray
        CT in HU.
    affine : (4, 4) ndarray
        Voxel -> world RAS mm of ``hu``.
    frame : S1Frame
        Frame of ``anchor_frame_mm``.
    anchor_frame_mm : (3,) ndarray
        Start of the ray (frame mm), near the mask's exit from the sacrum.
    side : {"left", "right"}
        The ray runs along frame -x (left) or +x (right).

    Returns
    -------
    FaceReading
        The reading of the face angle (:data:`FACE_ANGLES_DEG`) whose bundle shows the
        clearest joint: a resolved dip, else a dip too shallow to accept (deepest where the
        bundle lies along the face), else the highest band above the marrow.

    Raises
    ------
    GeometryError
        ``hu`` is not 3D or ``affine`` is not 4 x 4.
    """
    hu, aff, voxel_mm = check_ct(hu, affine)
    s = -1.0 if side == "left" else 1.0
    anchor = np.asarray(anchor_frame_mm, float)
    lateral = np.array([s, 0.0, 0.0])
    # rays along the lateral ray, started on a face turned ``ang`` from sagittal (anterior
    # end lateral): every ray of the bundle meets such a face at the same s
    angles = np.radians(FACE_ANGLES_DEG)
    tangents = np.stack([s * np.sin(angles), np.cos(angles), np.zeros_like(angles)], 1)
    noise_hu = soft_tissue_noise_hu(hu, aff, frame.to_world_mm(anchor[None])[0])
    se_hu = (np.full(len(angles), None) if noise_hu is None else
             noise_hu * bundle_noise_gain(aff, frame, anchor, lateral, tangents))
    s_mm, profiles = _bundle_profiles(hu, aff, frame, anchor, lateral, tangents)
    best = None
    for ang, prof, se in zip(angles, profiles, se_hu, strict=True):
        r = read_joint(s_mm, prof, voxel_mm=voxel_mm, noise_se_hu=se)
        if r.resolved:
            score = (2.0, r.contrast_hu)
        elif r.band_mm is not None and np.isfinite(r.contrast_hu):
            score = (1.0, r.contrast_hu)
        else:
            score = (0.0, r.rise_hu if r.band_mm is not None else -np.inf)
        if best is None or score > best[0]:
            best = (score, r, ang)
    _, r, ang = best
    return FaceReading(anchor, lateral, r, float(np.degrees(ang)), noise_hu)


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
        middle of an unresolved joint band, or kept; the latter two with
        :data:`UNRESOLVED_FACTOR` times its confidence. The method text says which, with
        the noise the dip was compared with.

    Raises
    ------
    GeometryError
        ``hu`` is not 3D or ``affine`` is not 4 x 4.
    """
    hu, aff, _ = check_ct(hu, affine)
    out = dict(found)
    for side in ("left", "right"):
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
        face = read_si_face(hu, aff, frame, anchor, side)
        r, ang_deg, noise_hu = face.joint, face.angle_deg, face.noise_hu
        noise_txt = ("noise from the ray spread" if noise_hu is None
                     else f"soft-tissue noise {noise_hu:.0f} HU")
        along = face.along_mm
        if face.kind == "resolved":
            how = (f"moved {along:+.1f} mm along the ray to the sacral half-level edge of the "
                   f"SI joint space in the CT (bundle across a face {ang_deg:.0f} deg from "
                   f"sagittal; dip {r.contrast_hu:.0f} HU below the cortices, "
                   f">= {r.required_hu:.0f} HU needed; {noise_txt})")
            conf = lm.confidence
        elif face.kind == "band":
            edge, crest = face.interval_mm
            seen = (f"joint space not resolved (dip {r.contrast_hu:.0f} < "
                    f"{r.required_hu:.0f} HU; {noise_txt})" if np.isfinite(r.contrast_hu)
                    else "joint space not resolved")
            how = (f"moved {along:+.1f} mm along the ray to the middle of the SI joint band "
                   f"of the CT ({edge:+.1f} to {crest:+.1f} mm along the ray: sacral-side "
                   f"half-level edge to the outer crest, which hold the sacral face; the "
                   f"middle is at most {0.5 * (crest - edge):.1f} mm from it; bundle across "
                   f"a face {ang_deg:.0f} deg from sagittal; {seen})")
            conf = UNRESOLVED_FACTOR * lm.confidence
        else:
            how = ("kept: no SI joint band in the CT profiles (no crest "
                   f"{MIN_BAND_RISE_HU:.0f} HU above the sacral marrow, or soft tissue "
                   "beyond it: a free surface)")
            conf = UNRESOLVED_FACTOR * lm.confidence
        xyz = frame.to_world_mm(face.at_mm(along)[None])[0]
        out[lm.name] = replace(lm, xyz_ras_mm=xyz, confidence=conf,
                               method=f"{lm.method}; {how}")
    return out

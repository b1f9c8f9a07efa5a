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
   :func:`alarscrew.anatomy.sijoint.read_si_face` on lateral rays of the section, from
   the ``ala_lateral`` ray forward in :data:`FACE_STEP_MM` steps (the joint runs from
   posteromedial to anterolateral, so the section is widest at its anterior end). The walk
   stops where the bundle would reach past the anterior surface, where no joint band is seen,
   or where the face jumps laterally by more than the steepest face angle allows (the bundle
   then reads the ilium across the pelvic soft tissue in front of the sacrum). A ray whose
   joint band the CT does not resolve gives only an interval that holds the face and is
   passed over (at 3 mm with 40 HU noise, taking its clamped point for the face put the
   extent 4.5 mm medial). Only a walk that reaches its last ray with at least
   :data:`MIN_RESOLVED_RAYS` resolved faces gives the extent. Otherwise the mask's extent is
   kept, unless it lies outside the interval the bands give: every band's sacral-side
   half-level edge lies medial of the face, so the extent is at least the largest of them
   (and, on a complete walk, at most the largest outer crest); the mask's extent is then
   moved to that bound. On the real 3 mm scan the CT-only mask stops in the fatty alar
   marrow about 10 mm short of the joint (extent 51-53 mm; the marrow reaches the merged
   joint band at 62 mm), which put ala_anterior 6-7 mm medial;
2. the anterior surface is read at 67 % of that extent on a bundle of anteroposterior CT
   profiles (:data:`BUNDLE_X_HALF_MM` x :data:`BUNDLE_Z_HALF_MM`): the brightest point near
   the mask surface is the anterior cortex, the soft tissue in front is the median
   :data:`OUTSIDE_WINDOW_VOXELS` beyond it. It is accepted only when the cortex stands at
   least :data:`MIN_CORTEX_CONTRAST_HU` (and four standard errors of the averaged profile)
   above the soft tissue; otherwise the mask point is kept with a lower confidence. The
   surface is then read by :func:`fit_plate`: marrow | cortical plate | soft tissue blurred
   by the voxels' point-spread function along the profile (the voxel box projected on the
   profile direction and the sampler's linear-interpolation kernel, plus a fitted extra
   blur), the plate's thickness bounded by :data:`PLATE_MM`. The half-level edge, where
   the averaged profile falls half-way from the cortical peak to the soft tissue, is only
   the start of the search (and the answer when no plate fits): under a blur wider than the
   cortex the peak is lowered and the half-level edge moves outward. Measured 2026-12-04 on
   the phantom (CT-only, along the bundle against the analytic surface, 2 x 22 cases): at
   2.5-3 mm voxels the half-level edge lies +0.35 to +2.34 mm outside, the plate fit -0.65
   to +1.32 mm; at 1-2 mm +0.56 to +1.09 and -0.43 to +0.29 mm. On four atlas CTs (shared
   data ``atlas``, s02 s14 s31 s45, 1 mm blocked to 2 mm with 30 HU noise, CT-only) against
   the 1 mm sacrum label's anterior surface along the same bundle: half-level edge +0.74 to
   +1.33 mm outside, plate fit -0.12 to +0.32 mm.

The same cortex reading re-places the ``promontory``'s anteroposterior position when the sacrum
mask is the union of a supplied S1 label and the CT mask (:func:`refine_promontory`).

Frames: S1 frame (x right, y anterior, z cranial). The ``method`` text says which case applied
and what was measured.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy import ndimage as ndi

from alarscrew.anatomy.ctsample import check_ct, sample_frame_points
from alarscrew.anatomy.landmarks import (
    ALA_ANTERIOR_FRACTION,
    ALA_LEVEL_MM,
    PROMONTORY_RAY_Z_MM,
)
from alarscrew.anatomy.model import Landmark
from alarscrew.anatomy.sijoint import FACE_ANGLES_DEG, read_si_face
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
#: give the extent: one face near its start says little about the most lateral one (3 mm tilt
#: +15: one face, 2.9 mm medial of the section's extent). Two were enough wherever they
#: occurred (measured 2026-12-04, 3 mm phantom: with S1 + L5 labels and 40 HU noise the mask's
#: extent, widened by a watershed spur across the joint to 58 mm against the true 53 mm, put
#: x 3.4 mm lateral, the two faces 0.6 mm; CT-only tilt +20 / noise 40 x errors 1.7 / 1.35 ->
#: 0.5 / 1.1 mm; 2 mm atlas s45 / s63 (CT-only, 30 HU noise) x moved 0.04 / 0.41 mm, within
#: the 1 mm label's extent; the real 3 mm scan has no walk with two faces: unchanged).
MIN_RESOLVED_RAYS = 2
#: Half-extent (mm) of the SI-joint bundles of :mod:`alarscrew.anatomy.sijoint` along the face:
#: a ray this close to the anterior surface lets its bundle read the soft tissue in front.
SIJOINT_BUNDLE_HALF_MM = 4.0
#: Confidence factor for a point the CT could not confirm.
UNCONFIRMED_FACTOR = 0.7
#: Smoothing of the averaged profile (Gaussian sigma, mm).
SMOOTH_MM = 0.5
#: Thickness range (mm) of the anterior alar cortex allowed in the plate fit: the ala's
#: anterior surface is a thin cortical shell over cancellous bone, about 0.5-2 mm thick;
#: searched in this step.
PLATE_MM, PLATE_STEP_MM = (0.5, 2.0), 0.1
#: Search step (mm) of the plate's surface position, and how far it is searched about the
#: half-level edge (the half-level edge of a blurred thin plate lies outward of the surface by
#: at most about the PSF half-width; phantom, 3 mm oblique voxels: measured up to 2.3 mm).
SURFACE_STEP_MM, SURFACE_SEARCH_MM = 0.05, 3.0
#: Brightest cortex allowed in the fit (HU): dense cortical bone reads about 1800-2000 HU;
#: a plate fitted brighter than this is a thinner plate than bone can be.
CORTEX_MAX_HU = 2000.0
#: Marrow (mm) the plate fit takes behind the cortical peak, beyond the blur's full width.
FIT_MARROW_MM = 2.0
#: Extra Gaussian blur (sigma, mm) the fit may add to the voxel PSF: none, and the scanner's
#: own in-plane PSF (sigma about 0.3-0.8 mm for standard kernels) with the spread of a
#: surface slanted across the bundle.
EXTRA_BLUR_MM = (0.0, 0.5, 1.0, 1.5)
#: Fine step (mm) on which the profile's point-spread function is built.
PSF_STEP_MM = 0.02
#: Largest move (mean CT voxels) of the promontory from the mask's edge to the anterior cortex
#: read in the CT: the mask's surface lies about half a voxel outside the bone, plus up to a
#: voxel of staircase; an edge farther away is another structure (the rim of a lytic defect,
#: the disc), and the mask point is kept.
PROMONTORY_MAX_MOVE_VOXELS = 1.5


@dataclass(frozen=True)
class CortexReading:
    """What an averaged anteroposterior profile shows (positions in mm along it).

    Attributes
    ----------
    edge_mm : float or None
        The anterior surface: the plate fit's surface when ``plate_mm`` is set, else the
        half-level edge; None when the contrast is below ``required_hu``.
    peak_mm : float
        Position of the cortical peak.
    contrast_hu : float
        Cortical peak minus the soft-tissue level.
    required_hu : float
        Contrast needed to accept the edge.
    half_level_mm : float or None
        Half-level edge between the cortical peak and the soft tissue in front.
    plate_mm : float or None
        Cortex thickness of the plate fit, a weighted mean over the allowed range that the
        profile hardly narrows (None: no fit, ``edge_mm`` is the half-level edge).
    """

    edge_mm: float | None
    peak_mm: float
    contrast_hu: float
    required_hu: float
    half_level_mm: float | None = None
    plate_mm: float | None = None


def profile_axis_widths_mm(affine: np.ndarray, direction_ras: np.ndarray) -> np.ndarray:
    """Widths (mm) of the voxel box projected on a profile direction, one per voxel axis.

    A voxel of spacing ``s_i`` along its axes ``e_i`` averages the tissue over a box; along a
    unit direction ``d`` that box projects to the convolution of boxes of widths
    ``|d . e_i| s_i`` (the profile's partial-volume blur).

    Parameters
    ----------
    affine : (4, 4) ndarray
        Voxel -> world RAS mm.
    direction_ras : (3,) ndarray
        Profile direction (world RAS, normalised here).

    Returns
    -------
    (3,) ndarray
        ``|d . e_i| s_i`` (mm).
    """
    cols = np.asarray(affine, float)[:3, :3]
    spacing = np.sqrt((cols ** 2).sum(axis=0))
    d = np.asarray(direction_ras, float)
    d = d / np.linalg.norm(d)
    return np.abs(d @ (cols / spacing)) * spacing


def edge_response(axis_widths_mm: np.ndarray, blur_mm: float = 0.0,
                  step_mm: float = PSF_STEP_MM) -> tuple[np.ndarray, np.ndarray]:
    """Step response of a trilinearly sampled voxel grid along a profile.

    The point-spread function along the profile is, per voxel axis, the voxel box of width
    ``w_i`` (:func:`profile_axis_widths_mm`) and the linear-interpolation tent of the sampler
    (a box of ``w_i`` convolved with itself, averaged over the grid phase), all convolved,
    and optionally a Gaussian for the blur the voxels do not explain (the scanner's own PSF,
    a surface slanted across the profile bundle).

    Parameters
    ----------
    axis_widths_mm : (3,) ndarray
        Projected voxel widths (mm).
    blur_mm : float
        Sigma (mm) of the extra Gaussian blur (0: none).
    step_mm : float
        Grid step of the returned response.

    Returns
    -------
    x_mm : (N,) ndarray
        Positions (mm) about the step, symmetric.
    response : (N,) ndarray
        Fraction of a unit step at ``x`` (0 far below, 1 far above, 0.5 at 0).
    """
    kern = np.ones(1)
    for w in np.asarray(axis_widths_mm, float):
        n = round(float(w) / step_mm)
        if n < 2:
            continue
        box = np.full(n, 1.0 / n)
        kern = np.convolve(np.convolve(np.convolve(kern, box), box), box)
    if blur_mm > 0.0:
        g = np.arange(-4.0 * blur_mm, 4.0 * blur_mm + step_mm / 2, step_mm)
        kern = np.convolve(kern, np.exp(-0.5 * (g / blur_mm) ** 2))
        kern /= kern.sum()
    kern = np.pad(kern, 2)
    x_mm = (np.arange(len(kern)) - (len(kern) - 1) / 2.0) * step_mm
    cdf = np.cumsum(kern) - 0.5 * kern  # the step sits at the middle of a sample
    return x_mm, cdf / cdf[-1]


def fit_plate(s_mm: np.ndarray, profile: np.ndarray, axis_widths_mm: np.ndarray,
              guess_mm: float) -> tuple[float, float] | None:
    """Surface of a blurred thin cortical plate fitted by least squares.

    Model along the profile (+ anterior): marrow ``M`` behind, a cortical plate ``C`` of
    thickness ``w`` from ``s0 - w`` to the surface ``s0``, soft tissue ``T`` in front, each
    blurred by the known point-spread function (:func:`edge_response`). For each candidate
    ``(s0, w)`` on a grid (``s0`` within :data:`SURFACE_SEARCH_MM` of ``guess_mm``, ``w`` in
    :data:`PLATE_MM`, and an extra blur from :data:`EXTRA_BLUR_MM`) the levels ``(T, C, M)``
    are the linear least-squares fit. Candidates with ``C`` above both other levels and at
    most :data:`CORTEX_MAX_HU` are averaged with weights ``exp(-(RSS - RSS_min) / 2t)``:
    under a blur wider than the cortex only the plate's centre and its mass (``(C - M) w``)
    are well determined, thickness and extra blur trade against each other, and the average
    takes the surface from all fits about as good as the best instead of the one that noise
    or model error favours (phantom, 2.5-3 mm voxels: the best single fit often sat on a
    thickness bound, -1.0 to +1.4 mm from the surface). In effect the profile hardly tells
    the thickness: the averaged thickness came out 1.25-1.35 mm on every phantom case (1-3
    mm voxels), near the middle of :data:`PLATE_MM`, so the surface is the fitted plate's
    centre plus about half the middle of the allowed thickness. ``t`` is the best fit's
    residual per degree of
    freedom (the window's length over the blur width, less five fitted values) times the
    samples one blur width holds: it is chosen, not derived, and widens the average beyond
    a noise-only likelihood because the residual is mostly model error (PSF shape, a surface
    slanted across the bundle); with the noise-only width the 2 mm phantom cases were up to
    0.09 mm worse, one of them 0.21 mm worse than the half-level edge (measured 2026-12-04).

    Parameters
    ----------
    s_mm : (S,) ndarray
        Positions (mm) of the profile samples.
    profile : (S,) ndarray
        HU along the profile (the bundle mean), over a window that holds marrow, cortex and
        soft tissue.
    axis_widths_mm : (3,) ndarray
        Projected voxel widths (:func:`profile_axis_widths_mm`).
    guess_mm : float
        Centre of the search (the half-level edge).

    Returns
    -------
    (surface_mm, thickness_mm) or None
        Weighted means of the surface position and plate thickness; None when no candidate
        gives a cortex brighter than marrow and soft tissue.
    """
    y = np.asarray(profile, float)
    n_s = len(y)
    # candidate surfaces s0 and plate backs s0 - w on one grid of SURFACE_STEP_MM steps
    n0 = round(SURFACE_SEARCH_MM / SURFACE_STEP_MM)
    k_w = np.round(np.arange(PLATE_MM[0], PLATE_MM[1] + 1e-9, PLATE_STEP_MM)
                   / SURFACE_STEP_MM).astype(int)
    k = np.arange(-n0 - k_w.max(), n0 + 1)
    pos = guess_mm + k * SURFACE_STEP_MM
    k0, kw = (g.ravel() for g in np.meshgrid(np.arange(-n0, n0 + 1), k_w, indexing="ij"))
    i_t, i_m = k0 - k[0], k0 - kw - k[0]  # rows of pos at s0 and at s0 - w
    s0g, wg, lev, res = [], [], [], []
    sum_y, yy = float(y.sum()), float(y @ y)
    for blur in EXTRA_BLUR_MM:
        # r[p, s]: blurred indicator of "in front of pos[p]" at s. Soft tissue is r at s0,
        # marrow 1 - r at s0 - w, the cortex the rest: the normal equations from sums of r
        x_mm, resp = edge_response(axis_widths_mm, blur)
        r = np.interp(s_mm[None, :] - pos[:, None], x_mm, resp)
        sr, srr, sry = r.sum(axis=1), (r * r).sum(axis=1), r @ y
        st, sm = sr[i_t], n_s - sr[i_m]
        stt, smm = srr[i_t], n_s - 2.0 * sr[i_m] + srr[i_m]
        stm = st - (r[i_t] * r[i_m]).sum(axis=1)
        sty, smy = sry[i_t], sum_y - sry[i_m]
        scc = n_s - 2.0 * (st + sm) + stt + smm + 2.0 * stm
        stc, smc = st - stt - stm, sm - stm - smm
        gram = np.stack([np.stack([stt, stc, stm], -1), np.stack([stc, scc, smc], -1),
                         np.stack([stm, smc, smm], -1)], -2)  # order T, C, M
        rhs = np.stack([sty, sum_y - sty - smy, smy], -1)
        ok = np.abs(np.linalg.det(gram)) > 1e-9 * n_s ** 3
        levels = np.full((len(k0), 3), np.nan)
        levels[ok] = np.linalg.solve(gram[ok], rhs[ok][..., None])[..., 0]
        s0g.append(guess_mm + k0 * SURFACE_STEP_MM)
        wg.append(kw * SURFACE_STEP_MM)
        lev.append(levels)
        res.append(yy - (levels * rhs).sum(axis=1))  # residual of the least-squares levels
    s0g, wg, levels, resid = (np.concatenate(a) for a in (s0g, wg, lev, res))
    ok = np.isfinite(resid)
    t_hu, c_hu, m_hu = levels.T
    valid = ok & (c_hu > t_hu) & (c_hu > m_hu) & (c_hu <= CORTEX_MAX_HU)
    if not valid.any():
        return None
    # candidates as plausible as the best (the thin-plate fit is nearly degenerate in
    # thickness and blur) are averaged, weighted exp(-(RSS - RSS_min) / (2 t)); t is the best
    # fit's residual per degree of freedom (independent samples: window over blur width,
    # less the five fitted values) times the samples one blur width holds
    rss = np.where(valid, resid, np.inf)
    rss_min = float(rss.min())
    width_mm = max(float(np.sum(axis_widths_mm)), 1.0)
    step_mm = float(s_mm[1] - s_mm[0])
    dof = max(len(s_mm) * step_mm / width_mm - 5.0, 1.0)
    t = max(rss_min, 1e-9) / dof * width_mm / step_mm
    wt = np.exp(-(rss - rss_min) / (2.0 * t))
    return float((wt * s0g).sum() / wt.sum()), float((wt * wg).sum() / wt.sum())


def read_anterior_cortex(s_mm: np.ndarray, profiles: np.ndarray, *, voxel_mm: float,
                         axis_widths_mm: np.ndarray | None = None) -> CortexReading | None:
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
    axis_widths_mm : (3,) ndarray, optional
        Voxel widths projected on the profile (:func:`profile_axis_widths_mm`). Given, the
        surface is the plate fit of :func:`fit_plate` (the half-level edge when it fails);
        else the half-level edge.

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
    if axis_widths_mm is None:
        return CortexReading(edge, float(s_mm[ip]), contrast, required, edge)
    # the plate fit on the unsmoothed mean, from marrow behind the blurred cortex to the end
    # of the soft-tissue window
    back = float(np.sum(axis_widths_mm)) + FIT_MARROW_MM
    win = (s_mm >= s_mm[ip] - back) & (s_mm <= lo + OUTSIDE_WINDOW_MM)
    fit = fit_plate(s_mm[win], prof.mean(axis=0)[win], axis_widths_mm, edge)
    if fit is None:
        return CortexReading(edge, float(s_mm[ip]), contrast, required, edge)
    return CortexReading(fit[0], float(s_mm[ip]), contrast, required, edge, fit[1])


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


@dataclass(frozen=True)
class FaceWalk:
    """The sacral face of the SI joint traced forward on the section (|x|, mm).

    Attributes
    ----------
    extent_mm : float or None
        Most lateral resolved sacral face; None when no ray resolves the joint space.
    n_resolved : int
        Rays whose joint space the CT resolves (faces read before the walk stopped).
    complete : bool
        The walk reached its last ray (False: it stopped at a jump or at a ray without a
        joint band, so more lateral faces may lie beyond).
    lower_mm : float or None
        The section's extent is at least this: the largest resolved face or sacral-side
        half-level edge of an unresolved joint band (that edge lies medial of the face);
        None when no ray shows a band.
    upper_mm : float or None
        The section's extent is at most this (complete walks only): the largest resolved
        face or outer crest of an unresolved band (that crest lies lateral of the face).
    """

    extent_mm: float | None
    n_resolved: int
    complete: bool
    lower_mm: float | None
    upper_mm: float | None


def section_extent_mm(hu: np.ndarray, affine: np.ndarray, frame: S1Frame, side: str,
                      ala_lateral: Landmark, front_y_mm: float) -> FaceWalk:
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
    FaceWalk
        The most lateral resolved face, and the interval that holds the section's extent
        from the resolved faces and the unresolved joint bands.

    Notes
    -----
    A ray with an unresolved band gives an interval ``[a, b]`` (|x|) that holds the face at
    that ray; the extent, the largest face over the rays, is then at least the largest ``a``
    and, when the walk reached its last ray, at most the largest ``b``. A jump by more than
    :data:`MAX_FACE_SLOPE` per mm plus :data:`FACE_SCATTER_MM` stops the walk (a face, from
    the last face) or is passed over (a band's inner edge, from the last band's; no upper
    bound then): the bundle reads the ilium across the soft tissue in front.
    """
    s = -1.0 if side == "left" else 1.0
    x0, y0 = frame.to_frame_mm(np.asarray(ala_lateral.xyz_ras_mm, float)[None])[0][:2]
    faces: list[float] = []
    lows: list[float] = []
    band_lows: list[float] = []
    highs: list[float] = []
    complete, jumped, jumped_band = True, False, False
    for y in np.arange(y0, front_y_mm - SIJOINT_BUNDLE_HALF_MM + 1e-9, FACE_STEP_MM):
        # the SI-joint ray at this y, from the ala_lateral point's x at the pedicle level
        face = read_si_face(hu, affine, frame, np.array([x0, y, ALA_LEVEL_MM]), side)
        interval = face.interval_mm
        if interval is None:
            complete = False
            break
        # |x| of the face (resolved) or of the interval that holds it (unresolved band:
        # sacral-side half-level edge to outer crest); x is the point's |x|
        lo, hi = (s * float(face.at_mm(a)[0]) for a in interval)
        x = s * float(face.at_mm(face.along_mm)[0])
        jump = MAX_FACE_SLOPE * FACE_STEP_MM + FACE_SCATTER_MM
        if face.kind == "resolved" and faces and x - faces[-1] > jump:
            jumped = True
            break
        if face.kind == "resolved":
            faces.append(x)
        elif band_lows and lo - band_lows[-1] > jump:
            # a band far lateral of the last one: likely the ilium read across the soft
            # tissue in front; not used, and the walk's upper bound is no longer sure
            jumped_band = True
            continue
        else:
            band_lows.append(lo)
        lows.append(lo)
        highs.append(hi)
    return FaceWalk(max(faces) if faces else None, len(faces), complete,
                    max(lows) if lows else None,
                    max(highs) if highs and complete and not (jumped or jumped_band) else None)


def _x_from_walk(walk: FaceWalk, x_mask_mm: float, sign: float) -> tuple[float, str]:
    """Frame x of ala_anterior from the face walk, and the method text for it.

    With :data:`MIN_RESOLVED_RAYS` resolved faces on a complete walk the most lateral face is
    the extent. Otherwise the mask's extent (``|x_mask_mm| / ALA_ANTERIOR_FRACTION``) is
    kept, but moved into the interval the joint bands give when it lies outside: a CT-only
    mask that stops in fatty alar marrow short of the joint (real 3 mm scan: 10 mm medial),
    or whose fill reaches across the joint, is then at most at the interval's end from the
    extent. Projecting onto an interval that holds the extent never moves it further away.
    """
    frac = ALA_ANTERIOR_FRACTION
    if walk.extent_mm is not None and walk.complete and walk.n_resolved >= MIN_RESOLVED_RAYS:
        return sign * frac * walk.extent_mm, (
            f"x at {frac:.0%} of the section's extent {walk.extent_mm:.1f} mm, the most "
            f"lateral sacral face of the SI joint in the CT ({walk.n_resolved} lateral rays)")
    if walk.extent_mm is None:
        why = "the CT resolves the SI joint space on no lateral ray"
    elif walk.n_resolved < MIN_RESOLVED_RAYS:
        why = (f"the CT resolves the SI joint on only {walk.n_resolved} lateral rays, fewer "
               f"than {MIN_RESOLVED_RAYS}")
    else:
        why = (f"the SI face traced forward in the CT broke off after {walk.n_resolved} "
               f"lateral rays at {walk.extent_mm:.1f} mm, so the extent is not known")
    mask_extent = abs(x_mask_mm) / frac
    lo = walk.lower_mm if walk.lower_mm is not None else -np.inf
    hi = walk.upper_mm if walk.upper_mm is not None else np.inf
    if lo <= mask_extent <= hi:
        return x_mask_mm, f"x of the mask point kept ({why}; its extent within the joint bands)"
    ext = float(np.clip(mask_extent, lo, hi))
    bound = ("inner edge" if ext == lo else "outer crest")
    return sign * frac * ext, (
        f"x at {frac:.0%} of the section's extent {ext:.1f} mm: the mask's extent "
        f"{mask_extent:.1f} mm moved to the {bound} of the SI-joint bands traced forward in "
        f"the CT (the extent lies in {lo:.1f} to {hi:.1f} mm; {why})")


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
        extent, y at the anterior surface of the cortex (:func:`fit_plate`; the half-level
        edge when no plate fits), when the cortex is clear;
        else the mask point with :data:`UNCONFIRMED_FACTOR` times its confidence. The method
        text says which and what was measured.

    Raises
    ------
    GeometryError
        ``hu`` is not 3D or ``affine`` is not 4 x 4.
    """
    hu, aff, voxel_mm = check_ct(hu, affine)
    out = dict(found)
    widths = profile_axis_widths_mm(aff, frame.anterior_ras)
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
            walk = section_extent_mm(hu, aff, frame, side, lat, front_y)
            x, how_x = _x_from_walk(walk, float(p_mask[0]), s)
        r = read_anterior_cortex(*_bundle(hu, aff, frame, np.array(
            [x, p_mask[1], ALA_LEVEL_MM])), voxel_mm=voxel_mm, axis_widths_mm=widths)
        if r is None or r.edge_mm is None:
            out[lm.name] = _kept_unclear(lm, _unclear_reason(r))
            continue
        p = np.array([x, p_mask[1] + r.edge_mm, ALA_LEVEL_MM])
        how = (f"{how_x}; y at "
               + _surface_text(r, f"{np.linalg.norm(p - p_mask):.1f} mm from the mask point"))
        out[lm.name] = replace(lm, xyz_ras_mm=frame.to_world_mm(p[None])[0],
                               method=f"{lm.method}; {how}")
    return out


def refine_promontory(hu: np.ndarray, affine: np.ndarray, frame: S1Frame,
                      found: dict[str, Landmark]) -> dict[str, Landmark]:
    """Re-place the ``promontory``'s frame y at the anterior cortex of the S1 body in the CT.

    For a run with a supplied S1 label and no sacrum label: the promontory is then read on the
    union of the label and the CT watershed mask (:func:`alarscrew.anatomy.landmarks.
    detect_landmarks`), whose surface lies about half a voxel outside the bone, and no point
    of a label run is moved by the mask's surface bias. The anterior surface is read as for
    the ala (:func:`read_anterior_cortex` with the plate fit) on an anteroposterior bundle
    about the mask point at the ray's level (:data:`~alarscrew.anatomy.landmarks.
    PROMONTORY_RAY_Z_MM`); x and z (on the endplate plane) are kept.

    Measured 2026-12-04, phantom with S1 + L5 labels (neutral, tilt +-15, noise 40, asymmetry
    +0.3), frame y minus the true promontory's: the union's edge +0.80 to +2.46 mm at 2.5 mm
    voxels and +1.47 to +2.62 mm at 3 mm; the CT plate fit -0.18 to +0.17 and +0.11 to
    +0.68 mm. Reading y on the S1 label alone instead gave -0.88 to +0.46 mm on the phantom
    but put the real 3 mm scan's promontory 5 mm behind the union's edge (TotalSegmentator's
    S1 label stops short of the anterior rim just below the endplate: 2.81 -> 7.72 mm from
    the run on the v1 sacrum label); the CT reading there lies 0.04 mm from the union's edge.

    Parameters
    ----------
    hu : (I, J, K) ndarray
        CT in HU on its own grid.
    affine : (4, 4) ndarray
        Voxel -> world RAS mm of ``hu``.
    frame : S1Frame
        The S1 frame of the landmarks.
    found : dict of str to Landmark
        Landmarks (world RAS mm); ``promontory`` is refined when present and not supplied.
        Not modified.

    Returns
    -------
    dict of str to Landmark
        A new dict. The promontory moved to the CT's anterior surface when the cortex is clear
        and lies within :data:`PROMONTORY_MAX_MOVE_VOXELS` of the mask point; else the mask
        point with :data:`UNCONFIRMED_FACTOR` times its confidence. The method says which.

    Raises
    ------
    GeometryError
        ``hu`` is not 3D or ``affine`` is not 4 x 4.
    """
    hu, aff, voxel_mm = check_ct(hu, affine)
    out = dict(found)
    lm = found.get("promontory")
    if lm is None or lm.supplied:
        return out
    p = frame.to_frame_mm(np.asarray(lm.xyz_ras_mm, float)[None])[0]
    r = read_anterior_cortex(*_bundle(hu, aff, frame, np.array([p[0], p[1],
                                                                PROMONTORY_RAY_Z_MM])),
                             voxel_mm=voxel_mm,
                             axis_widths_mm=profile_axis_widths_mm(aff, frame.anterior_ras))
    max_move_mm = PROMONTORY_MAX_MOVE_VOXELS * voxel_mm
    if r is None or r.edge_mm is None:
        out["promontory"] = _kept_unclear(lm, _unclear_reason(r))
    elif abs(r.edge_mm) > max_move_mm:
        out["promontory"] = _kept_unclear(lm, f"its surface {r.edge_mm:+.1f} mm from the "
                                              f"mask's edge, more than {max_move_mm:.1f} mm")
    else:
        q = np.array([p[0], p[1] + r.edge_mm, p[2]])
        out["promontory"] = replace(
            lm, xyz_ras_mm=frame.to_world_mm(q[None])[0],
            method=f"{lm.method}; y at " + _surface_text(
                r, f"{r.edge_mm:+.1f} mm from the edge of the S1 label united with the CT mask"))
    return out


def _unclear_reason(r: CortexReading | None) -> str:
    """Why an anterior-cortex reading gave no surface (no profiles, or too little contrast)."""
    if r is None:
        return "profiles outside the image"
    return f"cortex {r.contrast_hu:.0f} HU above the soft tissue, {r.required_hu:.0f} needed"


def _kept_unclear(lm: Landmark, reason: str) -> Landmark:
    """``lm`` kept with :data:`UNCONFIRMED_FACTOR` times its confidence and the reason."""
    return replace(lm, confidence=UNCONFIRMED_FACTOR * lm.confidence,
                   method=f"{lm.method}; kept: anterior cortex not clear in the CT ({reason})")


def _surface_text(r: CortexReading, moved: str) -> str:
    """How the anterior surface was read, and ``moved`` (how far from the mask), for a method."""
    if r.plate_mm is None:
        where = "the half-level edge of the anterior cortex in the CT"
    else:
        where = (f"the anterior surface of a thin cortical plate fitted to the CT under the "
                 f"voxels' blur (thickness {PLATE_MM[0]:.1f}-{PLATE_MM[1]:.1f} mm; the "
                 f"half-level edge lies {r.half_level_mm - r.edge_mm:+.1f} mm from it)")
    return (f"{where} (anteroposterior profile bundle; cortex {r.contrast_hu:.0f} HU above "
            f"the soft tissue in front; {moved})")

"""The S1 spinal canal and pedicles refined from CT intensity at the pedicle level.

The mask-based canal (:mod:`alarscrew.anatomy.landmarks`) is the dark space the sacrum mask
encloses in the midline: midway between the posterior wall of the body and the dorsal roof,
and between the lateral walls. On coarse grids (2.5-3 mm) the enclosure fill that makes the
mask solid also closes part of the dorsal canal, so the roof and with it the canal centre
move anteriorly (phantom: 3-5.5 mm), and the pedicles, placed from the canal, follow. The CT
itself still shows the canal clearly: epidural fat and cerebrospinal fluid (-100 to +15 HU)
between cortical walls of several hundred HU.

:func:`refine_canal` samples the CT on bundles of parallel profiles in the S1 frame at the
pedicle level (:data:`~alarscrew.anatomy.landmarks.PEDICLE_LEVEL_MM`), averages each bundle,
and reads it from the canal outward (:func:`canal_walls`):

1. the canal: the darkest point of the averaged profile within :data:`ANCHOR_WINDOW_MM` of
   the starting point; it must be darker than :data:`CANAL_MAX_HU`;
2. each wall: it starts where the profile first rises :data:`MIN_WALL_CONTRAST_HU` above the
   canal (more than any canal content: fat, CSF, nerve roots); its level is the highest
   value within :data:`CORTEX_REACH_VOXELS` voxels from there (the peak of a thin cortex
   blurred by the voxels, or the bone behind a faint cortex);
3. the wall's position: where the profile first reaches half-way from the canal minimum to
   that level (the half-maximum edge, as in :mod:`alarscrew.anatomy.facet`).

The profiles are, in order: anteroposterior through the mask-based centre (body wall and
dorsal roof), lateral through the AP centre found, anteroposterior again through the lateral
centre, and lateral through the final AP centre; the canal point is the centre of these
walls. The pedicles use the mask-based rule on the measured walls: half a nominal S1 pedicle
width (:data:`~alarscrew.anatomy.landmarks.PEDICLE_HALF_WIDTH_MM`) lateral to the canal wall,
midway in AP between the canal centre and the body's posterior wall. The canal wall is that
of the widest lateral section between the canal centre and the body: an S1 canal is
triangular, its laminae converge dorsally and its pedicles bound the wide anterior part
(for the phantom's elliptic canal the widest section is the centre one).

The CT result is accepted only when every wall stands out from the canal by
:data:`MIN_WALL_CONTRAST_HU` (and four standard errors of the averaged profile), the canal's
depth and width are those of an adult S1 canal (:data:`DEPTH_RANGE_MM`,
:data:`WIDTH_RANGE_MM`), and the centre lies within :data:`MAX_SHIFT_MM` of the mask-based
one. Otherwise the mask-based points are kept with their confidence lowered. The method text
of each landmark says which happened and the contrasts measured.

Frames: the S1 frame (x right, y anterior, z cranial, origin at the endplate centre).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy import ndimage as ndi

from alarscrew.anatomy.ctsample import check_ct, sample_frame_points
from alarscrew.anatomy.landmarks import PEDICLE_HALF_WIDTH_MM, PEDICLE_LEVEL_MM
from alarscrew.anatomy.model import Landmark
from alarscrew.spatial.frame import S1Frame

#: Sampling step along the profiles (mm).
PROFILE_STEP_MM = 0.25
#: AP profile extent relative to its start (mm): anterior into the body, posterior through
#: the dorsal roof (adult S1 canal depth 10-20 mm, roof with the median crest about 10 mm).
AP_FRONT_MM, AP_BACK_MM = 30.0, 32.0
#: Lateral profile extent on each side of its start (mm): canal half-width 9-16 mm plus
#: the pedicle.
LATERAL_HALF_MM = 32.0
#: Bundle half-widths (mm) across each profile, step :data:`BUNDLE_STEP_MM`: a few mm in z
#: (the S1 canal's walls are nearly parallel to the frame's z axis over the pedicle height);
#: across the AP profile 3 mm in x, across the lateral profile 1.5 mm in y (the lateral walls
#: curve).
BUNDLE_Z_HALF_MM, BUNDLE_X_HALF_MM, BUNDLE_Y_HALF_MM = 3.0, 3.0, 1.5
BUNDLE_STEP_MM = 0.75
#: The canal minimum is searched within this distance (mm) of the profile's start: the
#: mask-based centre is at most about 6 mm off (phantom, 2.5-3 mm voxels), while the canal is
#: at least 10 mm deep.
ANCHOR_WINDOW_MM = 8.0
#: The averaged canal must be darker than this (HU): epidural fat (-100 to -50 HU) and CSF
#: (0-15 HU), with partial volume of the walls at 3 mm voxels.
CANAL_MAX_HU = 100.0
#: Smallest rise (HU) from the canal to a wall, whatever the noise: more than the spread of
#: the canal's contents (epidural fat about -100 HU to CSF about +15 HU), less than the peak
#: of a 1 mm cortex blurred by 3 mm voxels (several hundred HU). A ligamentum flavum (about
#: 50 HU) facing epidural fat may just reach it; it does bound the canal.
MIN_WALL_CONTRAST_HU = 150.0
#: The wall's level is the highest value within this many voxels (plus 1 mm) of where the
#: profile first rises :data:`MIN_WALL_CONTRAST_HU` above the canal: the peak of a thin
#: cortex blurred by the voxels, or the bone just behind a faint cortex (a step edge, as the
#: posterior wall of a low-density S1 body).
CORTEX_REACH_VOXELS = 1.5
#: Plausible AP depth and transverse width (mm) of the S1 canal at the pedicle level: wide
#: bounds around adult values (transverse about 25-32 mm, sagittal 12-20 mm).
DEPTH_RANGE_MM = (8.0, 30.0)
WIDTH_RANGE_MM = (14.0, 45.0)
#: The pedicles' lateral walls: the widest of lateral bundles every
#: ``PEDICLE_SEARCH_STEP_MM`` from the canal centre forward to this clearance (mm, beyond the
#: bundle's own half-width) from the body's posterior wall, whose cortex would blur into them.
PEDICLE_SEARCH_STEP_MM, PEDICLE_SEARCH_CLEARANCE_MM = 1.5, 1.5
#: Largest accepted move (mm) of the canal centre from the mask-based one.
MAX_SHIFT_MM = 10.0
#: Confidence of a canal measured between CT walls, and of pedicles placed from it (the
#: pedicle's width stays nominal).
CANAL_CONFIDENCE, PEDICLE_CONFIDENCE = 0.85, 0.6
#: Confidence factor for mask-based points the CT could not confirm.
UNCONFIRMED_FACTOR = 0.7


@dataclass(frozen=True)
class Walls:
    """Two walls of a dark channel on an averaged profile (positions along the profile).

    ``low_mm`` / ``high_mm`` are the half-level edges on the low-``s`` and high-``s`` side
    (None where no wall was found); ``canal_hu`` the averaged canal minimum;
    ``low_contrast_hu`` / ``high_contrast_hu`` the rise from it to each wall's level (without
    a wall: the largest rise on that side); ``required_hu`` the contrast a wall needs
    (:data:`MIN_WALL_CONTRAST_HU`, or four standard errors of the averaged profile).
    """

    low_mm: float | None
    high_mm: float | None
    canal_hu: float
    low_contrast_hu: float
    high_contrast_hu: float
    required_hu: float

    @property
    def ok(self) -> bool:
        """Both walls found with enough contrast, in a dark enough canal."""
        return (self.low_mm is not None and self.high_mm is not None
                and self.canal_hu <= CANAL_MAX_HU
                and min(self.low_contrast_hu, self.high_contrast_hu) >= self.required_hu)

    def describe(self) -> str:
        """Short text of the measured contrasts."""
        return (f"canal {self.canal_hu:.0f} HU, walls +{self.low_contrast_hu:.0f} / "
                f"+{self.high_contrast_hu:.0f} HU, required +{self.required_hu:.0f}")


def sample_bundle(hu: np.ndarray, affine: np.ndarray, frame: S1Frame, start_frame_mm:
                  np.ndarray, direction: np.ndarray, s_mm: np.ndarray, offsets_frame_mm:
                  np.ndarray) -> np.ndarray:
    """Trilinear CT profiles along ``direction`` from ``start + offset`` (frame mm).

    Parameters
    ----------
    hu : (I, J, K) ndarray
        CT in HU.
    affine : (4, 4) ndarray
        Voxel -> world RAS mm of ``hu``.
    frame : S1Frame
    start_frame_mm : (3,) ndarray
        Profile start (frame mm).
    direction : (3,) ndarray
        Unit profile direction (frame axes).
    s_mm : (S,) ndarray
        Positions along ``direction`` (mm).
    offsets_frame_mm : (R, 3) ndarray
        Offsets of the bundle's rays from ``start_frame_mm`` (frame mm).

    Returns
    -------
    (R, S) ndarray
        HU; NaN where a sample falls outside the image.
    """
    pts = (np.asarray(start_frame_mm, float) + np.asarray(offsets_frame_mm, float)[:, None, :]
           + np.asarray(s_mm, float)[None, :, None] * np.asarray(direction, float))
    return sample_frame_points(hu, affine, frame, pts)


def canal_walls(s_mm: np.ndarray, profiles: np.ndarray, *, voxel_mm: float,
                window_mm: float = ANCHOR_WINDOW_MM) -> Walls:
    """The two walls of the canal on a bundle of profiles through it (module docstring).

    Parameters
    ----------
    s_mm : (S,) ndarray
        Increasing, evenly spaced positions along the profiles (mm); 0 is the starting point,
        which must lie within ``window_mm`` of the canal's darkest point.
    profiles : (R, S) ndarray
        HU profiles (NaN outside the image; such rays are dropped).
    voxel_mm : float
        Mean voxel size (mm): the number of independent voxels in the bundle, for the
        standard error of the averaged profile.
    window_mm : float
        Half-width of the search window for the canal minimum around ``s = 0``.

    Returns
    -------
    Walls
        Half-level edges of the first wall on each side of the canal minimum.
    """
    nan = float("nan")
    prof = np.asarray(profiles, float)
    prof = prof[np.all(np.isfinite(prof), axis=1)]
    if len(prof) < 3:
        return Walls(None, None, nan, nan, nan, MIN_WALL_CONTRAST_HU)
    step = float(s_mm[1] - s_mm[0])
    mean = ndi.gaussian_filter1d(prof.mean(axis=0), 0.5 / step)
    win = np.nonzero(np.abs(s_mm) <= window_mm)[0]
    i0 = int(win[np.argmin(mean[win])])
    # standard error of the averaged profile from the spread across rays in the canal
    # (median absolute deviation), over the independent voxels of the bundle
    near = slice(max(i0 - round(2.0 / step), 0), i0 + round(2.0 / step) + 1)
    window = prof[:, near]
    mad = float(np.median(np.abs(window - np.median(window, axis=0))))
    n_eff = min(len(prof), max(1.0, len(prof) * BUNDLE_STEP_MM ** 2 / float(voxel_mm) ** 2))
    required = max(MIN_WALL_CONTRAST_HU, 4.0 * 1.4826 * mad / np.sqrt(n_eff))
    reach = round((CORTEX_REACH_VOXELS * float(voxel_mm) + 1.0) / step)
    edges, contrasts = [], []
    for side in (-1, 1):
        seg = mean[i0::side]
        edge, contrast = _first_wall(seg, reach=reach)
        contrasts.append(contrast)
        edges.append(None if edge is None else float(s_mm[i0] + side * edge * step))
    return Walls(edges[0], edges[1], float(mean[i0]), contrasts[0], contrasts[1], required)


def _first_wall(seg: np.ndarray, *, reach: int) -> tuple[float | None, float]:
    """Half-level edge (in samples from ``seg[0]``, the canal minimum) of the first wall.

    The wall starts where the profile first rises :data:`MIN_WALL_CONTRAST_HU` above the
    canal; its level is the highest value within ``reach`` samples from there (the peak of a
    thin blurred cortex, or the bone behind a step edge). Returns (edge, level - canal).
    """
    above = np.nonzero(seg >= seg[0] + MIN_WALL_CONTRAST_HU)[0]
    if len(above) == 0:
        return None, float(np.max(seg) - seg[0])
    t = int(above[0])
    p = t + int(np.argmax(seg[t:t + reach + 1]))
    level = 0.5 * (seg[0] + seg[p])
    k = int(np.argmax(seg[:p + 1] >= level))  # first sample at or above the half level
    a, b = seg[k - 1] - level, seg[k] - level
    f = a / (a - b) if a != b else 0.5
    return float(k - 1 + f), float(seg[p] - seg[0])


def _bundle(a_half_mm: float, b_half_mm: float, a_axis: int, b_axis: int) -> np.ndarray:
    """Ray offsets (R, 3) on a rectangle spanned by two frame axes."""
    a = np.arange(-a_half_mm, a_half_mm + 1e-9, BUNDLE_STEP_MM)
    b = np.arange(-b_half_mm, b_half_mm + 1e-9, BUNDLE_STEP_MM)
    aa, bb = (g.ravel() for g in np.meshgrid(a, b, indexing="ij"))
    off = np.zeros((len(aa), 3))
    off[:, a_axis], off[:, b_axis] = aa, bb
    return off


def measure_canal(hu: np.ndarray, affine: np.ndarray, frame: S1Frame,
                  start_frame_mm: np.ndarray) -> tuple[dict[str, float] | None, str]:
    """Canal walls at the level of ``start_frame_mm`` from CT profiles (module docstring).

    Parameters
    ----------
    hu : (I, J, K) ndarray
        CT in HU.
    affine : (4, 4) ndarray
        Voxel -> world RAS mm of ``hu``.
    frame : S1Frame
    start_frame_mm : (3,) ndarray
        A point in the canal (frame mm), e.g. the mask-based canal centre.

    Returns
    -------
    walls_mm : dict of str to float or None
        Frame coordinates of the walls, ``body_y``, ``roof_y``, ``left_x``, ``right_x``, and
        the centre ``x``, ``y``, ``z``; None when a wall is missing or unclear.
    note : str
        The contrasts measured, or why the CT was not used.
    """
    hu, aff, voxel_mm = check_ct(hu, affine)
    x0, y0, z0 = (float(v) for v in start_frame_mm)
    ant, right = np.array([0.0, 1.0, 0.0]), np.array([1.0, 0.0, 0.0])
    s_ap = np.arange(-AP_BACK_MM, AP_FRONT_MM + 1e-9, PROFILE_STEP_MM)
    s_lat = np.arange(-LATERAL_HALF_MM, LATERAL_HALF_MM + 1e-9, PROFILE_STEP_MM)
    off_ap = _bundle(BUNDLE_X_HALF_MM, BUNDLE_Z_HALF_MM, 0, 2)
    off_lat = _bundle(BUNDLE_Y_HALF_MM, BUNDLE_Z_HALF_MM, 1, 2)

    def ap(x: float, y: float) -> Walls:
        return canal_walls(s_ap, sample_bundle(hu, aff, frame, np.array([x, y, z0]), ant, s_ap,
                                               off_ap), voxel_mm=voxel_mm)

    w = ap(x0, y0)
    if not w.ok:
        return None, f"AP profile: {w.describe()}"
    yc = y0 + 0.5 * (w.low_mm + w.high_mm)

    def lateral(y: float) -> Walls:
        return canal_walls(s_lat, sample_bundle(hu, aff, frame, np.array([x0, y, z0]), right,
                                                s_lat, off_lat), voxel_mm=voxel_mm)

    lat = lateral(yc)
    if not lat.ok:
        return None, f"lateral profile: {lat.describe()}"
    w = ap(x0 + 0.5 * (lat.low_mm + lat.high_mm), yc)
    if not w.ok:
        return None, f"AP profile: {w.describe()}"
    out = {"roof_y": yc + w.low_mm, "body_y": yc + w.high_mm, "z": z0}
    out["y"] = 0.5 * (out["roof_y"] + out["body_y"])
    lat = lateral(out["y"])
    if not lat.ok:
        return None, f"lateral profile: {lat.describe()}"
    out["x"] = x0 + 0.5 * (lat.low_mm + lat.high_mm)
    # the widest section between the canal centre and the body: where the pedicles form the
    # lateral walls (an S1 canal is triangular, widest anteriorly; the laminae converge
    # dorsally)
    widest = lat
    stop_y = out["body_y"] - BUNDLE_Y_HALF_MM - PEDICLE_SEARCH_CLEARANCE_MM
    for y in np.arange(out["y"] + PEDICLE_SEARCH_STEP_MM, stop_y + 1e-9, PEDICLE_SEARCH_STEP_MM):
        cand = lateral(float(y))
        if cand.ok and cand.high_mm - cand.low_mm > widest.high_mm - widest.low_mm:
            widest = cand
    out["left_x"], out["right_x"] = x0 + widest.low_mm, x0 + widest.high_mm
    depth, width = out["body_y"] - out["roof_y"], out["right_x"] - out["left_x"]
    note = (f"AP {w.describe()}; lateral {lat.describe()}; depth {depth:.1f} mm, "
            f"widest {width:.1f} mm")
    if not (DEPTH_RANGE_MM[0] <= depth <= DEPTH_RANGE_MM[1]
            and WIDTH_RANGE_MM[0] <= width <= WIDTH_RANGE_MM[1]):
        return None, f"implausible canal ({note})"
    return out, note


def refine_canal(hu: np.ndarray, affine: np.ndarray, frame: S1Frame,
                 landmarks: dict[str, Landmark]) -> dict[str, Landmark]:
    """Move the canal and pedicle landmarks to the canal walls seen in the CT.

    Parameters
    ----------
    hu : (I, J, K) ndarray
        CT in HU on its own grid.
    affine : (4, 4) ndarray
        Voxel -> world RAS mm of ``hu``.
    frame : S1Frame
        The S1 frame of the landmarks.
    landmarks : dict of str to Landmark
        Detected landmarks (world RAS mm). ``canal`` (when present and not supplied by the
        user) is the starting point; ``canal`` and ``{side}.pedicle`` are replaced. Not
        modified.

    Returns
    -------
    dict of str to Landmark
        A new dict: ``canal`` at the centre of the CT walls at its level and the pedicles
        placed from those walls, or the given points kept with :data:`UNCONFIRMED_FACTOR`
        times their confidence; the method text says which.

    Raises
    ------
    GeometryError
        ``hu`` is not 3D or ``affine`` is not 4 x 4.
    """
    hu, aff, _ = check_ct(hu, affine)
    out = dict(landmarks)
    canal = landmarks.get("canal")
    if canal is None or canal.supplied:
        return out
    c0 = frame.to_frame_mm(np.asarray(canal.xyz_ras_mm, float)[None])[0]
    c0[2] = PEDICLE_LEVEL_MM  # the mask-based canal's level; the pedicles' level
    walls, note = measure_canal(hu, aff, frame, c0)
    if walls is not None:
        shift = float(np.hypot(walls["x"] - c0[0], walls["y"] - c0[1]))
        if shift > MAX_SHIFT_MM:
            walls, note = None, f"{shift:.1f} mm from the mask-based centre ({note})"
    names = ["canal", *(f"{side}.pedicle" for side in ("left", "right"))]
    if walls is None:
        for name in names:
            lm = landmarks.get(name)
            if lm is not None and not lm.supplied:
                out[name] = replace(lm, confidence=UNCONFIRMED_FACTOR * lm.confidence,
                                    method=f"{lm.method}; kept: no clear canal walls in the "
                                           f"CT profiles ({note})")
        return out
    z = walls["z"]
    out["canal"] = replace(
        canal, xyz_ras_mm=frame.to_world_mm(np.array([[walls["x"], walls["y"], z]]))[0],
        confidence=CANAL_CONFIDENCE,
        method=f"CT profiles at the pedicle level (frame z = {z:.1f} mm): midway between the "
               f"half-level edges of the body's posterior wall and the dorsal roof, and between "
               f"the lateral walls ({note})")
    for side, s in (("left", -1.0), ("right", 1.0)):
        name = f"{side}.pedicle"
        lm = landmarks.get(name)
        if lm is not None and lm.supplied:
            continue
        wall_x = walls["right_x"] if s > 0 else walls["left_x"]
        p = np.array([wall_x + s * PEDICLE_HALF_WIDTH_MM,
                      0.5 * (walls["y"] + walls["body_y"]), z])
        out[name] = Landmark(
            name, frame.to_world_mm(p[None])[0], PEDICLE_CONFIDENCE,
            f"CT canal wall + half a nominal pedicle width ({PEDICLE_HALF_WIDTH_MM:g} mm), "
            f"midway between the canal centre and the body's posterior wall, pedicle level "
            f"(frame z = {z:.1f} mm)")
    return out

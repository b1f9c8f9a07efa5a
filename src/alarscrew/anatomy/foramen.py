"""The first dorsal sacral (S1) foramen found as a dark hole in the CT under the dorsal surface.

The mask-based detector (:mod:`alarscrew.anatomy.landmarks`) looks for pits in the dorsal
surface of the sacrum mask. On coarse grids (2.5-3 mm voxels) the enclosure fill closes the
foramina in the mask, so the surface has no pit, and on a tilted 2 mm grid the most cranial pit
it keeps can be the S2 foramen. The CT itself still shows the dorsal S1 foramen (about 10 x 8 mm,
filled with the dorsal ramus of the S1 root and fat) as a dark tunnel through the dorsal sacral
plate.

:func:`find_s1_foramina` works in the S1 frame (x right, y anterior, z cranial, mm) on a
:data:`GRID_MM` grid:

1. the dorsal hull: the posterior-most sacrum-mask point of every (x, z) column, closed with a
   :data:`HULL_FOOTPRINT_MM` square (grey closing of the dorsal height), so that the surface
   bridges foramen openings, open or filled;
2. the plate map ``D(x, z)``: the CT averaged over :data:`PLATE_DEPTH_MM` anterior to that hull,
   the dorsal plate where a foramen crosses it;
3. the darkness ``r = (C - D) / (C - S)``, with ``C`` the plate around (grey closing of ``D``
   over the same footprint) and ``S`` the soft tissue behind the sacrum (median CT
   :data:`SOFT_TISSUE_DEPTH_MM` posterior to the hull); a column that misses the sacrum inside
   its outline (a foramen open right through the mask) counts as ``r = 1``. A tunnel at least
   a voxel wide reads darker than half-way at its centre whatever the voxel size (partial
   volume); a plate of trabecular bone does not;
4. holes: connected regions with ``r`` above each of :data:`HOLE_LEVELS` (from the half level
   up, so that the core of a foramen that sits in a wider dark groove on a real sacrum still
   separates) that are compact (no longer than the footprint: a longer strip is a groove
   beside a crest), enclosed by the sacrum (not touching a column off it), centred inside the
   search window (:data:`WINDOW_X_MM`, :data:`WINDOW_Z_MM`) and of at least
   :data:`MIN_AREA_MM2`, measured above the level or, at the half level where that is
   smaller, at half the hole's own peak darkness (full width at half maximum: a 10 x 8 mm
   foramen in 3 mm voxels peaks at 0.7-0.8 and keeps only 10 mm2 above 0.5, but about 20 mm2
   inside its half-peak contour, which follows the blurred hole's edge whatever the peak; the
   higher levels separate a core from a wider groove and count the core's own area);
5. per side the most cranial hole over all levels is the S1 foramen (the S2 foramen lies one
   sacral segment further caudal); its centre is the darkness-weighted centroid of the hole in
   (x, z). Its depth (frame y) is the dorsal bone surface bridged over the opening, read from
   the CT (:func:`dorsal_surface_y_mm`): the half-level edge of the dorsal cortex on averaged
   profiles in :data:`RING_SECTORS` sectors of a ring around the hole, a plane through the
   sector edges evaluated at the centre. The mask's surface is no measure of depth here: a
   threshold mask takes in noise and partial volume behind the plate (3 mm voxels, 40 HU
   noise on the phantom: the closed surface lay up to 6 mm dorsal of the bone over the hole).
   Where fewer than :data:`MIN_RING_SECTORS` sectors show an edge (real sacra: crests and
   grooves around the opening, a faint plate), the point is put on the hull surface moved
   half a voxel into the bone (the mask surface lies about half a voxel outside the bone, as
   for the other ray landmarks), and the method text says which;
6. the pair: where both sides have a hole and the one side's hole mirrored through the
   midsagittal plane (x -> -x) lies more than :data:`MAX_MIRROR_MISMATCH_MM` (about one
   foramen's width) from the other's, the two are not one pair of first dorsal foramina - one
   side has taken an S2 foramen, a groove, or a dark patch read under a mask surface that
   reaches past the bone into the fat of the dorsal grooves (a supplied S1 label merged into
   the mask does, on the shared 3 mm scan). Before giving up, each side is searched again for
   a dark region centred near the other side's hole mirrored, whatever its length (a foramen
   merged with its groove is longer than the hull footprint: the shared 3 mm scan's right S1
   foramen, 6 x 18 mm, in the frame fitted on the CT endplate); only a region cranial of the
   side's first pick counts (the long opening was passed over for a caudal hole), and where
   both sides find one the more cranial pair is taken (step 5). Otherwise, as the CT does not say
   which side is wrong, neither is reported. A hole found on one side only is reported
   without this check.

Rule towards the mask-based landmarks: a foramen found here replaces ``{side}.s1_foramen``. Where
the CT gives no foramen on a side (no hole, or the pair check failed), that side's mask-surface
pit is kept only if the two mask pits are themselves a mirror pair (the same
:data:`MAX_MIRROR_MISMATCH_MM`), with :data:`UNCONFIRMED_FACTOR` times its confidence and a
method text saying so; otherwise the landmark is absent. A pit sits on the dorsal surface's
depression, which on a real sacrum is the cranial rim of the oblique opening (shared 3 mm
scan: 6-8 mm cranial of the label's through-hole) - the safe side for the planner's ala zone,
whose caudal limit is this point. A landmark supplied by the user is never changed, and stands
for its side in the pair check.

References
----------
Saluja S, Agarwal S, Tuli A, et al. Morphometric analysis of the sacrum and its surgical
implications. J Clin Diagn Res. 2018;12(6):AC01-AC06 (first dorsal foramen 10.4 x 7.7 mm).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from scipy import ndimage as ndi

from alarscrew.anatomy.ctsample import check_ct, sample_frame_grid, sample_frame_points
from alarscrew.anatomy.model import Landmark
from alarscrew.errors import GeometryError
from alarscrew.spatial.frame import SIDES, S1Frame

#: Sampling step (mm) of the frame grid.
GRID_MM = 1.0
#: Frame box (mm) sampled: lateral, anteroposterior and craniocaudal extent.
BOX_X_MM, BOX_Y_MM, BOX_Z_MM = (-50.0, 50.0), (-90.0, 30.0), (-65.0, 5.0)
#: Side of the square (mm) closing the dorsal height map and the plate map: wider than a
#: dorsal foramen (10.4 x 7.7 mm, Saluja et al. 2018), narrower than the gap between the S1 and
#: S2 foramina.
HULL_FOOTPRINT_MM = 15.0
#: Depth range (mm anterior to the hull) averaged into the plate map: the dorsal plate a
#: foramen crosses is 5-10 mm thick.
PLATE_DEPTH_MM = (1.0, 5.0)
#: Depth range (mm posterior to the hull) whose median CT is the soft-tissue reference.
SOFT_TISSUE_DEPTH_MM = (3.0, 8.0)
#: Search window: |x| (mm from the midline) and z (mm from the endplate) of the S1 dorsal
#: foramen's centre: lateral of the median crest, caudal to the S1 pedicle (about 20 mm high
#: from just below the endplate), cranial to the S2 foramen; the mask-based detector's window
#: (alarscrew.anatomy.landmarks) with its medial edge moved off the median crest's groove.
WINDOW_X_MM, WINDOW_Z_MM = (10.0, 38.0), (-50.0, -15.0)
#: Darkness levels (fraction of the way from the plate to soft tissue) at which holes are
#: sought, from the half level up.
HOLE_LEVELS = (0.5, 0.6, 0.7, 0.8, 0.9)
#: Smallest hole area (mm2) in the plate map counted as a foramen (a 4 mm disc).
MIN_AREA_MM2 = 12.0
#: Smallest plate-minus-soft-tissue contrast (HU) around a hole: below this the plate is no
#: bone the CT can tell from soft tissue.
MIN_PLATE_CONTRAST_HU = 100.0
#: Largest distance (mm, in x and z) between one side's hole and the other side's hole mirrored
#: through the midsagittal plane: about one foramen's width (10.4 mm, Saluja et al. 2018). The
#: two first dorsal foramina are mirror images to within a few mm; two holes further apart
#: than one foramen are not one pair, and nothing in the CT says which side is wrong.
MAX_MIRROR_MISMATCH_MM = 10.0
#: Confidence factor for a mask-surface pit kept where the CT shows no foramen.
UNCONFIRMED_FACTOR = 0.6
#: Half-width (mm) of the first dorsal foramen's opening (10.4 mm, Saluja et al. 2018): the
#: dorsal surface is read outside it, beyond one more voxel of partial-volume blur.
FORAMEN_HALF_WIDTH_MM = 5.2
#: Radial width (mm) of the ring of dorsal profiles around the hole.
RING_WIDTH_MM = 4.0
#: Number of angular sectors of the ring; each sector's profiles are averaged into one edge.
RING_SECTORS = 8
#: Fewest sectors with a clear edge needed to put the foramen on the CT's dorsal surface.
MIN_RING_SECTORS = 5
#: Profile span (mm along frame y, relative to the closed mask surface; + anterior, into bone).
SURFACE_PROFILE_MM = (-8.0, 10.0)
#: Profile sampling step (mm).
SURFACE_STEP_MM = 0.5


def _sample(vol: np.ndarray, affine: np.ndarray, frame: S1Frame, pts_frame_mm: np.ndarray,
            *, cval: float) -> np.ndarray:
    """Trilinear ``vol`` at frame points (..., 3)."""
    return sample_frame_points(vol, affine, frame, pts_frame_mm, cval=cval)


def plate_maps(hu: np.ndarray, affine: np.ndarray, frame: S1Frame, sacrum: np.ndarray
               ) -> dict[str, np.ndarray]:
    """Dorsal hull and CT plate map of the sacrum on a frame (x, z) grid.

    Parameters
    ----------
    hu : (I, J, K) ndarray
        CT in HU.
    affine : (4, 4) ndarray
        Voxel -> world RAS mm of ``hu`` and ``sacrum``.
    frame : S1Frame
    sacrum : (I, J, K) bool ndarray
        Sacrum mask on the CT grid.

    Returns
    -------
    dict of str to ndarray
        ``x_mm`` (X,), ``z_mm`` (Z,): grid axes (frame mm); ``has`` (X, Z) bool: columns that
        meet the sacrum; ``hull_y_mm`` (X, Z): frame y of the closed dorsal surface (NaN off
        the sacrum); ``plate_hu`` (X, Z): CT mean over :data:`PLATE_DEPTH_MM` anterior to the
        hull; ``around_hu`` (X, Z): its grey closing (the plate around a hole); ``soft_hu``:
        0-d array, median CT :data:`SOFT_TISSUE_DEPTH_MM` posterior to the hull.
    """
    x = np.arange(BOX_X_MM[0], BOX_X_MM[1] + 1e-9, GRID_MM)
    y = np.arange(BOX_Y_MM[0], BOX_Y_MM[1] + 1e-9, GRID_MM)
    z = np.arange(BOX_Z_MM[0], BOX_Z_MM[1] + 1e-9, GRID_MM)
    inside = sample_frame_grid(sacrum, affine, frame, (x, y, z), cval=0.0) >= 0.5
    has = inside.any(axis=1)
    dorsal_y = np.where(has, y[np.argmax(inside, axis=1)], y[-1])
    size = max(3, round(HULL_FOOTPRINT_MM / GRID_MM) | 1)
    # closing of the dorsal height (-y) = opening of y: bridges pits narrower than the footprint
    hull = ndi.grey_opening(dorsal_y, size=(size, size))
    xx, zz = np.meshgrid(x, z, indexing="ij")

    def at_depth(depths_mm: np.ndarray) -> np.ndarray:
        p = np.stack([np.broadcast_to(xx[..., None], xx.shape + depths_mm.shape),
                      hull[..., None] + depths_mm,
                      np.broadcast_to(zz[..., None], zz.shape + depths_mm.shape)], axis=-1)
        return _sample(hu, affine, frame, p, cval=np.nan)

    deep = at_depth(np.arange(PLATE_DEPTH_MM[0], PLATE_DEPTH_MM[1] + 1e-9, GRID_MM))
    seen = np.isfinite(deep).sum(axis=-1)
    plate = np.where(seen > 0, np.nansum(deep, axis=-1) / np.maximum(seen, 1), np.nan)
    behind = at_depth(-np.arange(SOFT_TISSUE_DEPTH_MM[0], SOFT_TISSUE_DEPTH_MM[1] + 1e-9,
                                 GRID_MM))[has]
    soft = np.nanmedian(behind) if np.isfinite(behind).any() else np.nan
    filled = np.where(has & np.isfinite(plate), plate, soft)
    around = ndi.grey_closing(filled, size=(size, size))
    return {"x_mm": x, "z_mm": z, "has": has, "hull_y_mm": np.where(has, hull, np.nan),
            "plate_hu": np.where(has, plate, np.nan), "around_hu": around,
            "soft_hu": np.asarray(soft)}


def find_s1_foramina(hu: np.ndarray, affine: np.ndarray, frame: S1Frame,
                     landmarks: dict[str, Landmark], *, sacrum: np.ndarray
                     ) -> dict[str, Landmark]:
    """Find the dorsal S1 foramina as dark holes in the CT under the dorsal hull.

    Parameters
    ----------
    hu : (I, J, K) ndarray
        CT in HU.
    affine : (4, 4) ndarray
        Voxel -> world RAS mm of ``hu`` and ``sacrum``.
    frame : S1Frame
        The S1 frame (x right, y anterior, z cranial).
    landmarks : dict of str to Landmark
        Landmarks found so far (world RAS mm); not modified.
    sacrum : (I, J, K) bool ndarray
        Sacrum mask on the CT grid.

    Returns
    -------
    dict of str to Landmark
        A new dict: ``{side}.s1_foramen`` set from the CT where a hole was found (and the two
        sides' holes are mirror images, module docstring), removed otherwise, left alone where
        the user supplied it.

    Raises
    ------
    GeometryError
        ``hu`` is not 3D, ``affine`` not 4 x 4, or ``sacrum`` not on the grid of ``hu``.
    """
    hu, aff, voxel_mm = check_ct(hu, affine)
    sac = np.asarray(sacrum)
    if sac.shape != hu.shape:
        raise GeometryError(f"sacrum mask shape {sac.shape} differs from the CT shape "
                            f"{hu.shape}; both must be on the CT grid")
    out = dict(landmarks)
    todo = [s for s in SIDES if not (f"{s}.s1_foramen" in landmarks
                                     and landmarks[f"{s}.s1_foramen"].supplied)]
    if not todo:
        return out
    maps = plate_maps(hu, aff, frame, sac.astype(bool))
    bias_mm = 0.5 * voxel_mm
    holes = {side: _hole(maps, side) if side in todo else None for side in SIDES}
    for side in SIDES:
        if side not in todo:  # a supplied foramen stands for that side in the pair check
            p = frame.to_frame_mm(landmarks[f"{side}.s1_foramen"].xyz_ras_mm[None])[0]
            holes[side] = (float(p[0]), float(p[2]), 1.0, 0.0)
    left, right = holes["left"], holes["right"]
    mismatch_mm = (None if left is None or right is None
                   else float(np.hypot(left[0] + right[0], left[1] - right[1])))
    if mismatch_mm is not None and mismatch_mm > MAX_MIRROR_MISMATCH_MM:
        # one side may have passed over its foramen because the opening, merged with its
        # groove, is longer than the hull footprint: look for a dark region near the other
        # side's hole mirrored. Where both sides find one, the more cranial pair is the S1
        # foramina (the S2 pair lies one segment caudal, as in step 5)
        rescued = {}
        for side, other in (("left", right), ("right", left)):
            if side in todo and other is not None:
                alt = _hole(maps, side, through_xz_mm=(-other[0], other[1]))
                # only a hole cranial of the one taken: the long opening was passed over for
                # a more caudal one (never a step down to a caudal pair)
                if alt is not None and alt[1] > holes[side][1] + 1.0 and np.hypot(
                        alt[0] + other[0], alt[1] - other[1]) <= MAX_MIRROR_MISMATCH_MM:
                    rescued[side] = alt
        if rescued:
            # the pair's mean z: the rescued side's hole and the other side's original one
            side = max(rescued, key=lambda k: rescued[k][1] + holes[
                "right" if k == "left" else "left"][1])
            holes[side] = rescued[side]
            left, right = holes["left"], holes["right"]
            mismatch_mm = float(np.hypot(left[0] + right[0], left[1] - right[1]))
    pits = {side: landmarks.get(f"{side}.s1_foramen") for side in SIDES}
    pits_paired = _mirror_mismatch_mm(frame, pits) <= MAX_MIRROR_MISMATCH_MM
    for side in todo:
        name = f"{side}.s1_foramen"
        out.pop(name, None)
        found = holes[side]
        if found is None or (mismatch_mm is not None
                             and mismatch_mm > MAX_MIRROR_MISMATCH_MM):
            pit = pits[side]
            if pit is not None and pits_paired:
                why = ("no hole" if found is None else
                       f"the CT holes are no mirror pair ({mismatch_mm:.1f} mm)")
                out[name] = replace(
                    pit, confidence=UNCONFIRMED_FACTOR * pit.confidence,
                    method=f"{pit.method}; not confirmed by the CT ({why}): kept as the two "
                           "mask pits are a mirror pair (a pit may sit at the foramen's "
                           "cranial rim)")
            continue
        x_mm, z_mm, contrast, area = found
        y_ct_mm, n_sectors = dorsal_surface_y_mm(hu, aff, frame, maps, x_mm, z_mm,
                                                 voxel_mm=voxel_mm)
        if y_ct_mm is not None:
            y_mm = y_ct_mm
            depth = (f"y at the CT's half-level dorsal surface read on a ring of profiles "
                     f"around the hole ({n_sectors} of {RING_SECTORS} sectors, plane fit)")
        else:
            y_mm = float(ndi.map_coordinates(
                np.nan_to_num(maps["hull_y_mm"], nan=BOX_Y_MM[1]),
                [[(x_mm - maps["x_mm"][0]) / GRID_MM], [(z_mm - maps["z_mm"][0]) / GRID_MM]],
                order=1)[0]) + bias_mm
            depth = (f"y on that surface {bias_mm:.1f} mm into the bone (the CT's dorsal "
                     f"surface was clear in only {n_sectors} of {RING_SECTORS} sectors)")
        xyz = frame.to_world_mm(np.array([[x_mm, y_mm, z_mm]]))[0]
        conf = float(np.clip(0.4 + 0.4 * contrast, 0.3, 0.8) * min(1.0, area / 30.0))
        prev = landmarks.get(name)
        moved = ("" if prev is None else
                 f"; {np.linalg.norm(xyz - prev.xyz_ras_mm):.1f} mm from the mask-surface pit")
        if mismatch_mm is not None:
            moved += f"; the other side's hole mirrored lies {mismatch_mm:.1f} mm away"
        out[name] = Landmark(
            name, xyz, max(conf, 0.2),
            f"most cranial dark hole ({area:.0f} mm2, {100 * contrast:.0f}% of the way from "
            f"the plate to soft tissue) in the CT {PLATE_DEPTH_MM[0]:g}-{PLATE_DEPTH_MM[1]:g} mm "
            f"under the closed dorsal surface (first dorsal foramen); {depth}{moved}")
    return out


def dorsal_surface_y_mm(hu: np.ndarray, affine: np.ndarray, frame: S1Frame,
                        maps: dict[str, np.ndarray], x_mm: float, z_mm: float, *,
                        voxel_mm: float) -> tuple[float | None, int]:
    """Frame y (mm) of the dorsal bone surface bridged over a hole, read from the CT.

    Parameters
    ----------
    hu : (I, J, K) ndarray
        CT in HU.
    affine : (4, 4) ndarray
        Voxel -> world RAS mm of ``hu``.
    frame : S1Frame
    maps : dict of str to ndarray
        Output of :func:`plate_maps` (grid axes, ``has``, ``hull_y_mm``, ``soft_hu``).
    x_mm, z_mm : float
        Frame x and z (mm) of the hole's centre.
    voxel_mm : float
        Mean voxel size (mm) of the CT.

    Returns
    -------
    y_mm : float or None
        Frame y (mm) of the surface at (``x_mm``, ``z_mm``); None when fewer than
        :data:`MIN_RING_SECTORS` sectors show a clear edge.
    n_sectors : int
        Number of sectors that did.

    Notes
    -----
    The sacrum columns of a ring around the hole (radii ``FORAMEN_HALF_WIDTH_MM + voxel_mm``
    to that plus :data:`RING_WIDTH_MM`) are split into :data:`RING_SECTORS` angular sectors.
    Each column gives a frame-y CT profile aligned on its closed mask surface; a sector's
    profiles are averaged, so the noise of its edge falls as one over the square root of the
    voxels it covers. On the mean profile the dorsal cortex is the brightest point within
    one voxel outside to two voxels plus 1 mm inside the mask surface, and the edge is where
    the profile, going dorsally from that peak, falls to half-way between the peak and the
    soft tissue behind the sacrum (``soft_hu``): the half-level edge of the blurred cortex,
    which, unlike the mask surface, is not quantised to voxels or pushed out by the noise a
    threshold mask takes in. A sector counts when its peak stands at least
    :data:`MIN_PLATE_CONTRAST_HU` above the soft tissue. A plane ``y = a + b dx + c dz``
    fitted through the sector edges (at their columns' mean offsets) gives ``y = a`` at
    the hole's centre: the opening is bridged by the surrounding plate, as the foramen
    landmark is defined (where the tunnel's axis leaves the sacrum's outer surface). While a
    sector lies more than a voxel off the plane it is taken for another structure (a crest,
    a groove, the neighbouring hole) and dropped; too few sectors left gives None.
    """
    soft = float(maps["soft_hu"])
    if not np.isfinite(soft):
        return None, 0
    xx, zz = np.meshgrid(maps["x_mm"] - x_mm, maps["z_mm"] - z_mm, indexing="ij")
    r_mm = np.hypot(xx, zz)
    r_in = FORAMEN_HALF_WIDTH_MM + voxel_mm
    cols = maps["has"] & (r_mm >= r_in) & (r_mm <= r_in + RING_WIDTH_MM)
    if not cols.any():
        return None, 0
    dx, dz, hull = xx[cols], zz[cols], maps["hull_y_mm"][cols]
    sector = (np.floor((np.arctan2(dz, dx) + np.pi) / (2 * np.pi) * RING_SECTORS)
              .astype(int) % RING_SECTORS)
    t_mm = np.arange(SURFACE_PROFILE_MM[0], SURFACE_PROFILE_MM[1] + 1e-9, SURFACE_STEP_MM)
    pts = np.stack([np.broadcast_to((dx + x_mm)[:, None], (len(dx), len(t_mm))),
                    hull[:, None] + t_mm[None, :],
                    np.broadcast_to((dz + z_mm)[:, None], (len(dx), len(t_mm)))], axis=-1)
    prof = _sample(hu, affine, frame, pts, cval=np.nan).astype(float)
    ok = np.all(np.isfinite(prof), axis=1)
    sector, dx, dz, hull, prof = sector[ok], dx[ok], dz[ok], hull[ok], prof[ok]
    count = np.bincount(sector, minlength=RING_SECTORS).astype(float)
    used = count > 0
    n = np.maximum(count, 1.0)
    mean = np.zeros((RING_SECTORS, len(t_mm)))
    np.add.at(mean, sector, prof)
    mean /= n[:, None]
    sec_dx = np.bincount(sector, dx, RING_SECTORS) / n
    sec_dz = np.bincount(sector, dz, RING_SECTORS) / n
    sec_hull = np.bincount(sector, hull, RING_SECTORS) / n
    # the dorsal cortex: the brightest point near the mask surface
    near = (t_mm >= -voxel_mm) & (t_mm <= 2.0 * voxel_mm + 1.0)
    masked = np.where(near[None, :], mean, -np.inf)
    ip = np.argmax(masked, axis=1)
    peak = mean[np.arange(RING_SECTORS), ip]
    level = 0.5 * (peak + soft)
    # going dorsally from the peak: the last sample still above the level, and the next one
    below = (mean < level[:, None]) & (np.arange(len(t_mm))[None, :] < ip[:, None])
    has_below = below.any(axis=1)
    k = len(t_mm) - 1 - np.argmax(below[:, ::-1], axis=1)  # last below-level index before ip
    k1 = np.minimum(k + 1, len(t_mm) - 1)
    rows = np.arange(RING_SECTORS)
    a, b = mean[rows, k] - level, mean[rows, k1] - level
    with np.errstate(invalid="ignore", divide="ignore"):
        t_edge = t_mm[k] + np.where(b != a, a / (a - b), 0.5) * SURFACE_STEP_MM
    good = used & has_below & (peak - soft >= MIN_PLATE_CONTRAST_HU)
    n_good = int(good.sum())
    if n_good < MIN_RING_SECTORS:
        return None, n_good
    design = np.column_stack([np.ones(RING_SECTORS), sec_dx, sec_dz])
    edge_y = sec_hull + np.where(good, t_edge, 0.0)
    while True:
        coef, *_ = np.linalg.lstsq(design[good], edge_y[good], rcond=None)
        resid = np.where(good, np.abs(edge_y - design @ coef), 0.0)
        if resid.max() <= voxel_mm:
            return float(coef[0]), int(good.sum())
        # a sector off the plate's plane by more than a voxel reads another structure (a
        # crest, a groove, the neighbouring hole): drop the worst and fit again
        good[np.argmax(resid)] = False
        if good.sum() < MIN_RING_SECTORS:
            return None, int(good.sum())


def _mirror_mismatch_mm(frame: S1Frame, pts: dict[str, Landmark | None]) -> float:
    """Distance (mm, frame x and z) between one side's point mirrored and the other's; inf
    when either is missing."""
    if pts["left"] is None or pts["right"] is None:
        return float("inf")
    lp, rp = frame.to_frame_mm(np.array([pts["left"].xyz_ras_mm, pts["right"].xyz_ras_mm]))
    return float(np.hypot(lp[0] + rp[0], lp[2] - rp[2]))


def _half_peak_area_mm2(rel: np.ndarray, cols: np.ndarray, off: np.ndarray,
                        region: np.ndarray, level: float) -> float:
    """Area (mm2) of ``region`` measured at half its own peak darkness.

    A hole blurred by coarse voxels keeps about its true area inside its half-peak contour
    (full width at half maximum), while the part above a fixed ``level`` shrinks towards
    nothing as the peak nears that level. The half-peak region counts only where it stays a
    compact opening enclosed by the sacrum (no longer than :data:`HULL_FOOTPRINT_MM`, not
    touching a column off it); otherwise, or where half the peak is not below ``level``, the
    area of ``region`` itself is returned.
    """
    area = float(region.sum()) * GRID_MM ** 2
    half = 0.5 * float(rel[region].max())
    if half >= level:
        return area
    lab, _ = ndi.label(cols & (rel > half))
    wide = lab == lab[region][0]
    sl = ndi.find_objects(wide.astype(np.uint8))[0]
    if (max(x.stop - x.start for x in sl) * GRID_MM > HULL_FOOTPRINT_MM
            or (wide & off).any()):
        return area
    return float(wide.sum()) * GRID_MM ** 2


def _hole(maps: dict[str, np.ndarray], side: str, *,
          through_xz_mm: tuple[float, float] | None = None
          ) -> tuple[float, float, float, float] | None:
    """(x_mm, z_mm, relative contrast, area_mm2) of the most cranial hole on ``side``.

    With ``through_xz_mm`` (the other side's hole mirrored) only dark regions centred within
    :data:`MAX_MIRROR_MISMATCH_MM` of that point are candidates, and one longer than the hull
    footprint is accepted: a foramen merged with its groove, the pair itself being the
    evidence that it is the foramen."""
    soft = float(maps["soft_hu"])
    plate, around, has = maps["plate_hu"], maps["around_hu"], maps["has"]
    if not np.isfinite(soft):
        return None
    span = around - soft
    with np.errstate(invalid="ignore", divide="ignore"):
        rel = np.where(span > MIN_PLATE_CONTRAST_HU, (around - plate) / span, 0.0)
    xx, zz = np.meshgrid(maps["x_mm"], maps["z_mm"], indexing="ij")
    # columns that miss the sacrum inside its outline are foramina open right through it
    cols = ndi.binary_fill_holes(has)
    rel = np.nan_to_num(np.where(has, rel, np.where(cols, 1.0, 0.0)))
    s = 1.0 if side == "right" else -1.0
    off = ndi.binary_dilation(~cols)
    best: tuple[float, float, float, float] | None = None
    for level in HOLE_LEVELS:
        lab, n = ndi.label(cols & (rel > level))
        if n == 0:
            continue
        idx = np.arange(1, n + 1)
        area = ndi.sum(np.ones_like(rel), lab, idx) * GRID_MM ** 2
        w = np.clip(rel - level, 0.0, None)
        wsum = ndi.sum(w, lab, idx)
        xc, zc = ndi.sum(w * xx, lab, idx) / wsum, ndi.sum(w * zz, lab, idx) / wsum
        # a foramen is a compact opening enclosed by the sacrum: a dark strip longer than the
        # hull footprint is a groove (beside the median or intermediate crest), and a dark
        # region touching a column off the sacrum is the sacrum's edge
        extent = np.array([[sl.stop - sl.start for sl in sls]
                           for sls in ndi.find_objects(lab)])
        touches = ndi.maximum(off.astype(np.uint8), lab, idx) > 0
        if through_xz_mm is None:
            compact = extent.max(axis=1) * GRID_MM <= HULL_FOOTPRINT_MM
        else:
            compact = (np.hypot(xc - through_xz_mm[0], zc - through_xz_mm[1])
                       <= MAX_MIRROR_MISMATCH_MM)
        shape_ok = (~touches & compact
                    & (s * xc >= WINDOW_X_MM[0]) & (s * xc <= WINDOW_X_MM[1])
                    & (zc >= WINDOW_Z_MM[0]) & (zc <= WINDOW_Z_MM[1]))
        if level == HOLE_LEVELS[0]:
            # a hole only just darker than the half level: its size at half its own peak
            for c in np.nonzero(shape_ok & (area < MIN_AREA_MM2))[0]:
                area[c] = _half_peak_area_mm2(rel, cols, off, lab == c + 1, level)
        ok = np.nonzero(shape_ok & (area >= MIN_AREA_MM2))[0]
        if len(ok) == 0:
            continue
        k = int(ok[np.argmax(zc[ok])])
        if best is None or zc[k] > best[1] + 1.0:
            best = (float(xc[k]), float(zc[k]), float(ndi.maximum(rel, lab, k + 1)),
                    float(area[k]))
    if best is None:
        return None
    return best[0], best[1], min(best[2], 1.0), best[3]

"""S1 landmarks measured on the sacrum mask in S1-frame coordinates, and landmark files.

All detection happens on :class:`~alarscrew.anatomy.s1frame.FrameVolume` (the mask resampled
on a 1 mm grid in the S1 frame: x right, y anterior, z cranial, origin at the endplate
centre), with sub-millimetre edges found by trilinear sampling along rays. Definitions (frame mm;
``s`` = +1 right, -1 left):

- ``promontory``: anterior edge of the endplate in the midline (ray +y at z = -1.5 mm, put
  on the endplate plane).
- ``canal``: at the pedicle level (:data:`PEDICLE_LEVEL_MM`), midway between the posterior
  wall of the body and the dorsal roof in the midline, and midway between the canal's
  lateral walls.
- ``{side}.pedicle``: at the pedicle level, half a nominal S1 pedicle width
  (:data:`PEDICLE_HALF_WIDTH_MM`) lateral to the canal wall, midway between the canal centre
  and the posterior wall of the body.
- ``{side}.sap_facet``: centroid of the mask's surface points whose outward normal is within
  35 degrees of the posteromedial direction at 45 degrees to the sagittal plane (lumbosacral
  facet orientation, Masharawi et al., Spine 2004), 13-45 mm from the midline, posterior to the
  body, within :data:`FACET_MAX_LATERAL_OF_PEDICLE_MM` lateral of the pedicle landmark; of
  the connected patches, the one with most points in contact with the L5 mask
  (:data:`FACET_L5_CONTACT_MM`, the L5 inferior articular process; the L5 label, or without
  one the lumbar bone region of the CT segmentation) when L5 is given, else
  the largest. With a supplied S1 label but no sacrum label the surface is the S1 label's
  (see :func:`detect_landmarks`), with no limit lateral of the pedicle.
  ``{side}.entry``: Fang et al. 2022 enter at the "lateral-inferior part of the
  inferior half of the S1 superior articular surface": the inferior half is the facet surface
  caudal to its centroid, its lateral-inferior part the points of that half caudal to and
  lateral of the half's own centroid; the entry is their centroid.
- ``{side}.ala_lateral``: lateral boundary of the ala (its SI-joint face) where a lateral ray
  at the pedicle level leaves the sacrum; the ray starts at the pedicle landmark's x, midway in
  y between the pedicle landmark and ``ala_anterior`` (the middle of the ala's depth: at the
  pedicle's own y, posterior, a real ala may end well before the SI joint). The ray crosses
  the oblique SI face at a steep angle, so the point is well conditioned in all three axes
  (the most lateral point of the section, used before, slid along the nearly sagittal face).
  The point is the ray's outermost exit from the section's main component, not its first
  exit: a CT-only mask has holes in fatty alar marrow, and a ray near the ragged dorsal
  surface leaves and re-enters it (the real 3 mm scan: first exits at 20-29 mm, the face at
  about 60 mm).
  Without a pedicle landmark or ``ala_anterior``, or when the ray misses the sacrum, it starts
  at :data:`NOMINAL_PEDICLE_X_MM` in the AP middle of the pedicle-level section.
- ``{side}.ala_anterior``: anterior surface of the ala at the pedicle level, at
  :data:`ALA_ANTERIOR_FRACTION` of the lateral extent of the pedicle-level section.
- ``{side}.s1_foramen``: centre of the first dorsal foramen opening: the largest pit of the
  dorsal surface height map (depth > 4 mm below its 15 mm morphological closing) that lies
  most cranially between 15 and 50 mm below the endplate, on the closed (hull) surface.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi
from scipy.spatial import cKDTree

from alarscrew.anatomy.model import Landmark
from alarscrew.anatomy.s1frame import FrameVolume
from alarscrew.errors import GeometryError, InputError
from alarscrew.io.orientation import LPS_TO_RAS
from alarscrew.spatial.frame import SIDES

#: Frame z (mm) of the promontory's anterior ray: just below the endplate, clear of the disc
#: above it and of the endplate's own rounded rim.
PROMONTORY_RAY_Z_MM = -1.5
#: Frame z of the pedicle level (mm below the endplate): S1 pedicles are about 18-20 mm high
#: and start just below the endplate (Saluja et al. 2018; Mirkovic et al. 1991).
PEDICLE_LEVEL_MM = -10.0
#: Half of a mean S1 pedicle width (about 14 mm; Mirkovic et al., Spine 1991).
PEDICLE_HALF_WIDTH_MM = 7.0
#: Frame z of the section in which the ala is measured (the pedicle-level section).
ALA_LEVEL_MM = PEDICLE_LEVEL_MM
#: Frame |x| of the lateral ray for ``ala_lateral`` when no pedicle landmark was found: a canal
#: half-width (about 12 mm) plus half a pedicle width.
NOMINAL_PEDICLE_X_MM = 19.0
#: Where along the ala (fraction of the midline-to-lateral-edge distance) its anterior cortex is
#: sampled: the lateral sacral ala targeted by alar screws.
ALA_ANTERIOR_FRACTION = 0.67
#: Lateral window (mm from the midline) searched for the S1 superior facet.
FACET_MIN_X_MM, FACET_MAX_X_MM = 13.0, 45.0
#: Facet surface normals within this angle of the posteromedial 45-degree direction.
FACET_CONE_DEG = 35.0
#: The S1 superior facet lies at most this far lateral of the pedicle landmark: the facet
#: joint sits dorsal to the pedicle, a few mm lateral of its axis (Fang et al. 2022 entry; the
#: L5-S1 facet joints of the shared real CT lie 0-5 mm lateral of its pedicle landmarks, the
#: posteromedial surfaces beyond are the lateral sacral mass by the SI joints).
FACET_MAX_LATERAL_OF_PEDICLE_MM = 10.0
#: A facet patch is "in contact" with the L5 inferior articular process when its surface points
#: lie within this distance of the L5 mask (two 3 mm voxels: the joint space and label edge).
FACET_L5_CONTACT_MM = 6.0
#: ... with at least this fraction of their points.
FACET_L5_CONTACT_FRACTION = 0.5

POINT_NAMES: tuple[str, ...] = (
    "promontory", "canal", "endplate_center",
    *(f"{side}.{n}" for side in SIDES
      for n in ("sap_facet", "entry", "pedicle", "ala_lateral", "ala_anterior", "s1_foramen")))


def _sampler(fv: FrameVolume) -> np.ndarray:
    return fv.mask.astype(np.float32)


def _inside(vol: np.ndarray, fv: FrameVolume, pts: np.ndarray) -> np.ndarray:
    """Trilinear mask value at frame points (N, 3)."""
    ijk = np.stack([pts[:, 0] - fv.x_mm[0], pts[:, 1] - fv.y_mm[0], pts[:, 2] - fv.z_mm[0]])
    return ndi.map_coordinates(vol, ijk, order=1, mode="constant", cval=0.0)


def ray_crossing(vol: np.ndarray, fv: FrameVolume, start: np.ndarray, direction: np.ndarray,
                 *, max_mm: float = 80.0, exit_: bool = True, step: float = 0.25,
                 last: bool = False) -> np.ndarray | None:
    """First (or last) crossing of the 0.5 level along a ray (frame mm), sub-step interpolated.

    Parameters
    ----------
    vol : (nx, ny, nz) float ndarray
        Mask values on the grid of ``fv`` (``nz`` may be 1 for a single section, whose frame
        z is then ``fv.z_mm[0]``).
    fv : FrameVolume
        Supplies the grid's frame coordinates (1 mm steps).
    start, direction : (3,) array_like
        Ray origin and direction, frame mm.
    max_mm : float
        Length of the ray searched.
    exit_ : bool
        True: an inside -> outside crossing (after having been inside); False: outside ->
        inside.
    step : float
        Sampling step along the ray, mm.
    last : bool
        With ``exit_``, the last inside -> outside crossing within ``max_mm`` (the outer
        boundary of what the ray passes through) instead of the first.

    Returns
    -------
    (3,) ndarray or None
        The crossing (frame mm), or None when there is none within ``max_mm``.
    """
    d = np.asarray(direction, float)
    d = d / np.linalg.norm(d)
    t = np.arange(0.0, max_mm, step)
    pts = np.asarray(start, float) + t[:, None] * d
    v = _inside(vol, fv, pts) - 0.5
    if exit_:
        inside = v >= 0
        if not inside.any():
            return None
        first_in = int(np.argmax(inside))
        after = np.nonzero(inside[first_in:-1] & ~inside[first_in + 1:])[0]
        if len(after) == 0:
            return None
        k = first_in + int(after[-1] if last else after[0]) + 1
    else:
        hits = np.nonzero(v >= 0)[0]
        if len(hits) == 0 or hits[0] == 0:
            return None if len(hits) == 0 else pts[0]
        k = int(hits[0])
    a, b = v[k - 1], v[k]
    f = a / (a - b) if a != b else 0.5
    return pts[k - 1] + f * (pts[k] - pts[k - 1])


#: Margin (frame voxels) kept around the mask's bounding box by :func:`_surface_normals`: the
#: gradient's neighbour (1) plus the sigma-1 Gaussian's radius (4 = truncate 4 x sigma), so
#: that no value it reads comes from the crop's edge handling.
_NORMALS_MARGIN_VOX = 5


def _surface_normals(fv: FrameVolume) -> tuple[np.ndarray, np.ndarray]:
    """Boundary voxel indices (N, 3) and outward unit normals (N, 3) of the frame mask.

    The normal is the negated gradient (central differences, :func:`numpy.gradient`) of the
    mask blurred by a 1-voxel Gaussian, at the boundary voxels. Both are computed on the mask's
    bounding box plus :data:`_NORMALS_MARGIN_VOX` only: every value read at a boundary voxel
    depends on voxels within that margin, and each filter pass is zero wherever the mask is
    empty across the axes not yet filtered, so the values are bit-identical to filtering the
    whole frame volume (which is mostly empty: 191 x 131 x 116 voxels).
    """
    mask = fv.mask
    if not mask.any():
        return np.zeros((0, 3), int), np.zeros((0, 3), np.float32)
    lo = np.zeros(3, int)
    hi = np.zeros(3, int)
    for ax in range(3):
        hit = np.flatnonzero(mask.any(axis=tuple(a for a in range(3) if a != ax)))
        lo[ax] = max(int(hit[0]) - _NORMALS_MARGIN_VOX, 0)
        hi[ax] = min(int(hit[-1]) + 1 + _NORMALS_MARGIN_VOX, mask.shape[ax])
    sub = mask[tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))]
    sm = ndi.gaussian_filter(sub.astype(np.float32), 1.0)
    surf = sub & ~ndi.binary_erosion(sub)
    idx = np.argwhere(surf)
    g = np.stack([_gradient_at(sm, idx, a) for a in range(3)], axis=1)
    n = -g / np.maximum(np.linalg.norm(g, axis=1, keepdims=True), 1e-9)
    return idx + lo, n


def _gradient_at(f: np.ndarray, idx: np.ndarray, axis: int) -> np.ndarray:
    """``numpy.gradient(f, axis=axis)[tuple(idx.T)]`` (unit spacing, first-order edges),
    computed at those points only, with the same operations and dtype."""
    i = idx[:, axis]
    n = f.shape[axis]
    up, down = idx.copy(), idx.copy()
    up[:, axis] = np.minimum(i + 1, n - 1)
    down[:, axis] = np.maximum(i - 1, 0)
    diff = f[tuple(up.T)] - f[tuple(down.T)]
    return np.where((i > 0) & (i < n - 1), diff / 2.0, diff / 1.0)


def _on_bone(p: np.ndarray | None, direction: np.ndarray, bias_mm: float, *,
             exit_: bool = True) -> np.ndarray | None:
    """A :func:`ray_crossing` point moved ``bias_mm`` into the mask along the ray."""
    if p is None or bias_mm == 0:
        return p
    d = np.asarray(direction, float) / np.linalg.norm(direction)
    return p - bias_mm * d if exit_ else p + bias_mm * d


def detect_landmarks(fv: FrameVolume, *, endplate_rms_mm: float,
                     l5: np.ndarray | None = None,
                     s1: np.ndarray | None = None,
                     surface_bias_mm: float = 0.0) -> dict[str, Landmark]:
    """Detect the model.py landmarks on a frame volume (see the module docstring).

    Parameters
    ----------
    fv : FrameVolume
    endplate_rms_mm : float
        RMS residual of the endplate fit; lowers the confidence of endplate-based points.
    l5 : (nx, ny, nz) bool ndarray, optional
        The L5 vertebra (label, or the lumbar region of the CT segmentation) on the frame grid
        of ``fv`` (same shape as ``fv.mask``). When given,
        the S1 superior facet is the posteromedial patch that meets the L5 inferior articular
        process (the L5-S1 facet joint).
    s1 : (nx, ny, nz) bool ndarray, optional
        A supplied S1 vertebra label on the frame grid of ``fv``, given when the sacrum mask
        is the CT watershed's (no sacrum label). The S1 facet and entry are then found on this
        label's surface instead of the mask's: the label is the user's statement of where S1
        ends at the facet joint, while on coarse voxels the watershed between the S1 and L5
        label markers decides the one-voxel joint itself (it gave the L5 inferior articular
        process to the sacrum). The facet is then not limited to the pedicle's neighbourhood
        (:data:`FACET_MAX_LATERAL_OF_PEDICLE_MM`). Measured 2026-12-04 on the phantom with
        S1 + L5 labels (neutral, tilt +-15, noise 40, asymmetry +0.3), mask -> label surface:
        2.5 mm voxels facet 1.9-3.9 -> 0.55-0.72 mm, entry 2.5-6.4 -> 0.25-1.53 mm; 3 mm
        voxels facet 4.1-5.3 -> 0.50-1.88 mm, entry 5.3-9.1 -> 1.03-2.53 mm (the voxelised
        sacrum label: entries up to 2.5 mm at 3 mm too); 2 mm, tilt +-15: facet 0.13-1.4 ->
        0.45-0.56 mm, entry 3.7-4.7 -> 0.74-1.33 mm. Real 3 mm scan, distance to the run on
        the v1 sacrum label: facets 3.46 / 4.55 -> 3.41 / 3.22 mm, entries 3.88 / 5.99 ->
        1.97 / 3.97 mm (the points 2-2.8 mm deeper along the facet normal than on v1's
        generously drawn label).
    surface_bias_mm : float
        How far the mask's surface lies outside the bone (a CT threshold mask: about half a
        voxel; a drawn label: 0). Points found on the surface are moved that far into the
        mask: along the ray for ray crossings, along the inward normal for the facet.

    Returns
    -------
    dict of str to Landmark
        Landmarks found (world RAS mm); a landmark that cannot be found is absent.

    Raises
    ------
    GeometryError
        ``l5`` is not on the grid of ``fv``.
    """
    vol = _sampler(fv)
    out: dict[str, Landmark] = {}
    ep_conf = float(np.clip(1.0 - endplate_rms_mm / 3.0, 0.2, 0.95))

    def add(name: str, p_frame: np.ndarray, conf: float, method: str) -> None:
        out[name] = Landmark(name, fv.to_world(np.asarray(p_frame, float)), float(conf), method)

    add("endplate_center", np.zeros(3), ep_conf,
        "midpoint of the line fitted to the top of the S1 body in the midsagittal section")
    b = float(surface_bias_mm)
    ant, post = np.array([0.0, 1.0, 0.0]), np.array([0.0, -1.0, 0.0])
    p = _on_bone(ray_crossing(vol, fv, np.array([0.0, 0.0, PROMONTORY_RAY_Z_MM]), ant), ant, b)
    if p is not None:
        add("promontory", np.array([0.0, p[1], 0.0]), ep_conf,
            "anterior edge of the endplate in the midline (ray at 1.5 mm below the endplate)")

    z = PEDICLE_LEVEL_MM
    wall_seg = ray_crossing(vol, fv, np.array([0.0, 0.0, z]), post)
    canal = None
    pedicles: dict[str, np.ndarray] = {}
    if wall_seg is not None:
        wall = _on_bone(wall_seg, post, b)
        roof = _on_bone(ray_crossing(vol, fv, wall_seg + np.array([0.0, -0.5, 0.0]), post,
                                     max_mm=35.0, exit_=False), post, b, exit_=False)
        if roof is not None:
            yc = 0.5 * (wall[1] + roof[1])
            conf, how = 0.8, "midway between body and dorsal roof"
        else:
            yc = wall[1] - 8.5
            conf, how = 0.3, "no dorsal roof found: 8.5 mm behind the body (nominal)"
        lw, rw = (_on_bone(ray_crossing(vol, fv, np.array([0.0, yc, z]), d, max_mm=30.0,
                                        exit_=False), d, b, exit_=False)
                  for d in (np.array([-1.0, 0.0, 0.0]), np.array([1.0, 0.0, 0.0])))
        if lw is not None and rw is not None:
            xc, half = 0.5 * (lw[0] + rw[0]), 0.5 * (rw[0] - lw[0])
        else:
            xc, half, conf = 0.0, 12.0, min(conf, 0.3)
        canal = (xc, yc, half, wall[1])
        add("canal", np.array([xc, yc, z]), conf, f"pedicle level: {how}, between the walls")
        for side, s in (("left", -1.0), ("right", 1.0)):
            pedicles[side] = np.array([xc + s * (half + PEDICLE_HALF_WIDTH_MM),
                                       0.5 * (yc + wall[1]), z])
            add(f"{side}.pedicle", pedicles[side], 0.6 * conf,
                "canal wall + half a nominal pedicle width (7 mm), pedicle level")

    for name, m in (("l5", l5), ("s1", s1)):
        if m is not None and np.shape(m) != fv.mask.shape:
            raise GeometryError(f"{name}: mask shape {np.shape(m)} differs from the frame grid "
                                f"{fv.mask.shape}; resample it with frame_volume first")
    if s1 is not None and np.any(s1):
        # no pedicle limit on the label's surface: the limit keeps the CT mask's lateral
        # sacral mass by the SI joints out, which an S1 label (without the ala) does not hold;
        # on a 3 mm mask the pedicle landmark is a voxel off and the limit cut the facet
        # (phantom, 3 mm, tilt -15: the right facet 3.9 mm, entry 5.1 mm off with it; 1.9 /
        # 2.0 mm without; real 3 mm scan: the same points with and without)
        fv_s1 = FrameVolume(np.asarray(s1, bool), fv.x_mm, fv.y_mm, fv.z_mm, fv.frame)
        _facets(fv_s1, out, canal, add, l5=l5, bias_mm=b, pedicle_limit=False)
    else:
        _facets(fv, out, canal, add, l5=l5, bias_mm=b)
    _alae(vol, fv, add, pedicles, bias_mm=b)
    _foramina(fv, add)
    return out


def _facets(fv: FrameVolume, out: dict, canal: tuple | None, add, *,
            l5: np.ndarray | None = None, bias_mm: float = 0.0,
            pedicle_limit: bool = True) -> None:
    idx, nrm = _surface_normals(fv)
    pts = np.column_stack([fv.x_mm[idx[:, 0]], fv.y_mm[idx[:, 1]], fv.z_mm[idx[:, 2]]])
    # boundary voxel centres lie half a frame voxel (0.5 mm) inside the mask's surface
    inward_mm = max(float(bias_mm) - 0.5, 0.0)
    y_body = canal[3] if canal is not None else -16.0
    cos_cone = np.cos(np.radians(FACET_CONE_DEG))
    l5_tree = None
    if l5 is not None and l5.any():
        i5 = np.argwhere(l5)
        l5_tree = cKDTree(np.column_stack([fv.x_mm[i5[:, 0]], fv.y_mm[i5[:, 1]],
                                           fv.z_mm[i5[:, 2]]]))
    for side, s in (("left", -1.0), ("right", 1.0)):
        max_x = FACET_MAX_X_MM
        if canal is not None and pedicle_limit:
            max_x = min(max_x, s * (canal[0] + s * (canal[2] + PEDICLE_HALF_WIDTH_MM))
                        + FACET_MAX_LATERAL_OF_PEDICLE_MM)
        a = np.radians(45.0)
        n_pm = np.array([-s * np.sin(a), -np.cos(a), 0.0])
        t_lat = np.array([s * np.cos(a), -np.sin(a), 0.0])
        sel = ((s * pts[:, 0] >= FACET_MIN_X_MM) & (s * pts[:, 0] <= max_x)
               & (pts[:, 1] <= y_body) & (pts[:, 1] >= y_body - 40.0)
               & (pts[:, 2] >= -8.0) & (pts[:, 2] <= 30.0) & (nrm @ n_pm >= cos_cone))
        if sel.sum() < 10:
            continue
        fp = pts[sel]
        # the facet is a connected patch of such points: the one meeting L5 (the L5-S1 facet
        # joint) when L5 is known, else the largest
        lab, n = ndi.label(_scatter(fv, fp), structure=np.ones((3, 3, 3)))
        vals = lab[tuple(_to_idx(fv, fp).T)]
        sizes = np.bincount(vals, minlength=n + 1)[1:]
        keep = np.arange(1, n + 1) == int(sizes.argmax()) + 1
        how = "largest patch"
        if l5_tree is not None:
            d_mm, _ = l5_tree.query(fp, distance_upper_bound=FACET_L5_CONTACT_MM + 1e-6)
            touch = np.bincount(vals[np.isfinite(d_mm)], minlength=n + 1)[1:]
            # at 3 mm the joint surface breaks into patches: keep all mostly in contact
            joint = touch >= FACET_L5_CONTACT_FRACTION * sizes
            if joint.any():
                keep = joint
                how = "patches meeting the L5 inferior articular process"
            else:
                how = "largest patch (none meets the L5 label)"
        fp = fp[keep[vals - 1]] - inward_mm * nrm[sel][keep[vals - 1]]
        c = fp.mean(axis=0)
        conf = float(np.clip(len(fp) / 150.0, 0.3, 0.85))
        where = (f"<= {FACET_MAX_LATERAL_OF_PEDICLE_MM:.0f} mm lateral of the pedicle"
                 if pedicle_limit else "on the supplied S1 label's surface")
        add(f"{side}.sap_facet", c, conf,
            "centroid of the posteromedially facing surface of the superior articular process "
            f"({how}, {where})")
        # entry: the inferior half is the facet surface caudal to its centroid; its
        # lateral-inferior part the points of that half caudal to and lateral of the half's
        # own centroid
        half = fp[fp[:, 2] < c[2]]
        if len(half) < 3:
            continue
        c_half = half.mean(axis=0)
        low = half[(half[:, 2] < c_half[2]) & ((half - c_half) @ t_lat > 0)]
        if len(low) >= 3:
            add(f"{side}.entry", low.mean(axis=0), 0.8 * conf,
                "centroid of the lateral-inferior part of the inferior half of the S1 superior "
                "facet surface (Fang et al. 2022 entry point)")


def _to_idx(fv: FrameVolume, p: np.ndarray) -> np.ndarray:
    return np.column_stack([np.rint(p[:, 0] - fv.x_mm[0]), np.rint(p[:, 1] - fv.y_mm[0]),
                            np.rint(p[:, 2] - fv.z_mm[0])]).astype(int)


def _scatter(fv: FrameVolume, p: np.ndarray) -> np.ndarray:
    m = np.zeros(fv.mask.shape, bool)
    m[tuple(_to_idx(fv, p).T)] = True
    return m


def _alae(vol: np.ndarray, fv: FrameVolume, add, pedicles: dict[str, np.ndarray], *,
          bias_mm: float = 0.0) -> None:
    ant = np.array([0.0, 1.0, 0.0])
    k = int(np.argmin(np.abs(fv.z_mm - ALA_LEVEL_MM)))
    sl = fv.mask[:, :, k]
    # the lateral ray's target: the outer boundary of the section's sacral component (see
    # _sacral_section); a single-section grid at frame z = fv.z_mm[k]
    sec = _sacral_section(sl)
    fv_sec = FrameVolume(sec[:, :, None], fv.x_mm, fv.y_mm, fv.z_mm[k:k + 1], fv.frame)
    vol_sec = sec[:, :, None].astype(np.float32)
    for side, s in (("left", -1.0), ("right", 1.0)):
        cols = fv.x_mm * s > 0
        half = sl[cols]
        if not half.any():
            continue
        # anterior cortex at a fraction of the section's lateral extent (to the voxel)
        extent = float(np.abs(fv.x_mm[cols])[half.any(axis=1)].max())
        xa = ALA_ANTERIOR_FRACTION * extent
        col = sl[int(np.argmin(np.abs(fv.x_mm - s * xa)))]
        front = None
        if col.any():
            y_front = fv.y_mm[np.nonzero(col)[0].max()]
            front = _on_bone(ray_crossing(vol, fv, np.array([s * xa, y_front - 2.0,
                                                            ALA_LEVEL_MM]), ant, max_mm=10.0),
                             ant, bias_mm)
        if front is not None:
            add(f"{side}.ala_anterior", front, 0.7,
                f"anterior cortex of the ala at {ALA_ANTERIOR_FRACTION:.0%} of the section's "
                "lateral extent, pedicle level")
        # lateral ray midway (AP) between the pedicle and the anterior alar cortex
        starts = []
        if side in pedicles and front is not None:
            ped = pedicles[side]
            starts.append((np.array([ped[0], 0.5 * (ped[1] + front[1]), ALA_LEVEL_MM]), 0.7,
                           "lateral ray from the pedicle landmark, midway between it and the "
                           "anterior alar cortex"))
        # fallback: the AP middle of the section at a nominal pedicle x
        col = sl[int(np.argmin(np.abs(fv.x_mm - s * NOMINAL_PEDICLE_X_MM)))]
        if col.any():
            starts.append((np.array([s * NOMINAL_PEDICLE_X_MM, float(fv.y_mm[col].mean()),
                                     ALA_LEVEL_MM]), 0.4,
                           f"lateral ray at x = {NOMINAL_PEDICLE_X_MM:g} mm through the AP "
                           "middle of the section"))
        for start, conf, how in starts:
            lat = np.array([s, 0.0, 0.0])
            p = ray_crossing(vol_sec, fv_sec, np.array([start[0], start[1], fv.z_mm[k]]), lat,
                             max_mm=90.0, last=True)
            if p is not None and abs(p[0]) > abs(start[0]):
                p = _on_bone(p, lat, bias_mm)
                add(f"{side}.ala_lateral", p, conf,
                    "lateral boundary of the ala (SI-joint face): outermost exit of the "
                    f"pedicle-level section on the {how}")
                break


def _sacral_section(section: np.ndarray) -> np.ndarray:
    """The largest 8-connected component of a mask section: the sacrum's.

    Parameters
    ----------
    section : (nx, ny) bool ndarray
        One frame-z section of the sacrum mask.

    Returns
    -------
    (nx, ny) bool ndarray
        The largest component (empty when the section is).

    Notes
    -----
    The lateral alar ray takes the outermost exit of this component, not its first exit.
    The mask holds the isolated sacrum only (the ilia are cut at the SI joints), and at the
    pedicle level the ala is solid bone from the pedicle to its SI-joint face (the S1 foramina
    lie caudal to it): a gap on the ray inside the section is a hole of the mask (fatty alar
    marrow under the bone threshold of a CT-only mask) or the ray grazing the ragged dorsal or
    ventral surface, never the end of the ala. Fragments the section does not connect
    (osteophytes, remnants of the joint cut) are left out.
    """
    lab, n = ndi.label(section, structure=np.ones((3, 3)))
    if n <= 1:
        return section.copy()
    sizes = np.bincount(lab.ravel())[1:]
    return lab == int(sizes.argmax()) + 1


def _foramina(fv: FrameVolume, add) -> None:
    m = fv.mask
    has = m.any(axis=1)  # (x, z)
    first = np.argmax(m, axis=1)  # posterior-most inside index along y
    h = np.where(has, -fv.y_mm[first], np.nan)  # dorsal surface height (posterior = high)
    floor = np.nanmin(h) if np.isfinite(h).any() else 0.0
    hf = np.where(np.isfinite(h), h, floor)
    closed = ndi.grey_closing(hf, footprint=np.ones((15, 15)))
    pit = (closed - hf) > 4.0
    X, Z = np.meshgrid(fv.x_mm, fv.z_mm, indexing="ij")
    for side, s in (("left", -1.0), ("right", 1.0)):
        region = pit & (s * X >= 6.0) & (s * X <= 35.0) & (Z <= -15.0) & (Z >= -50.0) & has
        lab, n = ndi.label(region)
        if n == 0:
            continue
        # the first dorsal foramen is the most cranial pit of at least 12 mm2 below the SAP
        sizes = np.bincount(lab.ravel())
        zs = ndi.mean(Z, lab, index=np.arange(1, n + 1))
        ok = np.nonzero(sizes[1:] >= 12)[0]
        if len(ok) == 0:
            continue
        comp = lab == int(ok[np.argmax(zs[ok])] + 1)
        xc, zc = float(X[comp].mean()), float(Z[comp].mean())
        i = int(np.argmin(np.abs(fv.x_mm - xc)))
        j = int(np.argmin(np.abs(fv.z_mm - zc)))
        yc = -float(closed[i, j])
        conf = float(np.clip(comp.sum() / 40.0, 0.3, 0.8))
        add(f"{side}.s1_foramen", np.array([xc, yc, zc]), conf,
            "centre of the largest pit of the dorsal surface (first dorsal foramen), on the "
            "closed dorsal surface")


def load_landmarks_file(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Read user landmarks: 3D Slicer markups (.mrk.json) or plain JSON ``{name: [x, y, z]}``.

    Slicer files may declare ``coordinateSystem`` ``LPS`` (converted to RAS through
    :data:`alarscrew.io.orientation.LPS_TO_RAS`) or ``RAS``; plain JSON is RAS mm. Control
    point labels must be model.py landmark names.

    Returns
    -------
    dict of str to (3,) ndarray
        RAS mm.

    Raises
    ------
    InputError
        Unreadable JSON, unknown landmark names, non-numeric or non-finite coordinates.
    """
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError("landmarks file not found", path=str(p)) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"not a readable JSON file ({exc})", path=str(p)) from None
    pts: dict[str, tuple[object, str]] = {}
    if isinstance(data, dict) and "markups" in data:
        for mk in data.get("markups") or []:
            system = str(mk.get("coordinateSystem", "LPS")).upper()
            if system not in ("LPS", "RAS"):
                raise InputError(f"coordinateSystem must be LPS or RAS, got {system!r}",
                                 path=str(p), column="coordinateSystem")
            for cp in mk.get("controlPoints") or []:
                pts[str(cp.get("label", ""))] = (cp.get("position"), system)
    elif isinstance(data, dict):
        pts = {str(k): (v, "RAS") for k, v in data.items()}
    else:
        raise InputError("expected a JSON object {name: [x, y, z]} or Slicer markups",
                         path=str(p))
    out: dict[str, np.ndarray] = {}
    for name, (pos, system) in pts.items():
        if name not in POINT_NAMES:
            raise InputError(f"unknown landmark name {name!r}; expected one of "
                             f"{', '.join(POINT_NAMES)}", path=str(p), column=name)
        try:
            v = np.asarray(pos, dtype=float)
        except (TypeError, ValueError):
            v = np.full(1, np.nan)
        if v.shape != (3,) or not np.all(np.isfinite(v)):
            raise InputError(f"position must be 3 finite numbers (mm), got {pos!r}",
                             path=str(p), column=name)
        if system == "LPS":
            v = LPS_TO_RAS[:3, :3] @ v
        out[name] = v
    if not out:
        raise InputError("no landmarks in the file", path=str(p))
    return out

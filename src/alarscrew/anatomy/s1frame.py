"""The S1 anatomical frame from a sacrum mask: midsagittal plane, superior endplate, origin.

1. Midsagittal plane: the plane that best maps the central sacrum (within 35 mm of the
   provisional midline: body, canal, pedicles, superior articular processes; the alae are left
   out so that an asymmetric ala does not pull the plane) onto itself by reflection. The cost is
   the mean distance from reflected surface points to the mask (distance transform), minimised
   over two tilt angles and the offset (Powell).
2. Superior endplate: in the midsagittal section the S1-S5 bodies form one column anterior to the
   canal; the top points of that column within 12 mm of its highest point, with outliers over
   2 mm removed, are fitted by a line (total least squares). The cranial axis is the line's
   normal within the midsagittal plane (so the frame is symmetric by construction); the
   anterior axis is the line direction; the origin is the midpoint of the fitted endplate.
3. CT-only, :func:`refine_endplate_ct` then fits the endplate to the CT voxels themselves:
   a partial-volume model of disc over cortical plate over marrow, blurred by the scanner and
   the voxel, evaluated at every voxel centre near the plate (no interpolation), so the plane
   is free of the voxel staircase that tips the mask's top line at coarse voxels.
4. The mask is then resampled on a 1 mm grid in frame coordinates
   (:class:`FrameVolume`), on which landmarks are measured.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi
from scipy.optimize import least_squares, minimize
from scipy.special import ndtr

from alarscrew.errors import AnatomyNotFoundError, GeometryError
from alarscrew.spatial.frame import S1Frame, matmul_rows, unit

#: Extent (frame mm) of the resampled frame volume: right, anterior, cranial.
FRAME_BOX_MM = ((-95.0, 95.0), (-75.0, 55.0), (-80.0, 35.0))
#: Half-width of the central part used for the symmetry fit.
SYMMETRY_HALF_WIDTH_MM = 35.0
#: Top points lower than this below the highest body point are not endplate.
ENDPLATE_WINDOW_MM = 12.0
#: A flat top face shorter than this (AP, mm) is not taken for the S1 endplate.
MIN_ENDPLATE_DEPTH_MM = 15.0
#: Residual beyond which a top point is dropped from the endplate line.
ENDPLATE_OUTLIER_MM = 2.0
#: Half-width (mm, left-right) of the slab of CT voxels fitted by :func:`refine_endplate_ct`.
CT_PLATE_HALF_WIDTH_MM = 8.0
#: Extent of that slab along the cranial axis, from the mask's endplate (mm): the marrow
#: below and the lower disc above. It stops short of the L5 endplate, which comes within
#: about 5 mm of S1 at the back of a lordotic L5-S1 disc.
CT_PLATE_RANGE_MM = (-7.0, 3.5)
#: Thickness of the endplate's cortical plate in the model (mm): a thin plate, below the
#: resolution of clinical CT, so that only its product with the excess HU is resolved.
CT_PLATE_CORTEX_MM = 1.0
#: Robust-loss scale (HU): voxels off the model by much more (trabecular texture, a vessel,
#: an osteophyte) weigh less.
CT_PLATE_LOSS_HU = 50.0
#: The CT fit is refused if it turns the cranial axis by more than this (deg) from the mask's.
CT_PLATE_MAX_TURN_DEG = 10.0
#: Minimum contrast (HU) of the cortical plate over the disc for the CT fit to be used.
CT_PLATE_MIN_CONTRAST_HU = 100.0


@dataclass(frozen=True)
class MaskSampler:
    """A bool mask on a grid with a voxel->RAS affine, sampled at world points (trilinear).

    Only the mask's bounding box, with one empty voxel around it, is kept as float32, and only
    points whose trilinear neighbourhood meets that box are interpolated: a trilinear value
    away from every set voxel is exactly 0 (``mode="constant"``, ``cval=0``), and inside the
    box the block's values and the points' fractional offsets are those of the whole grid
    (subtracting the block's whole-voxel origin from a voxel coordinate at least as large is
    exact in floating point), so the values are bit-identical to interpolating the whole mask.
    On the 0.8 mm 512 x 512 x 400 bench the whole-grid conversion alone cost 1.2 s.
    """

    mask: np.ndarray
    affine: np.ndarray

    def __post_init__(self) -> None:
        mask = np.asarray(self.mask, bool)
        lo = np.zeros(3, int)
        hi = np.zeros(3, int)  # empty box for an empty mask
        if mask.ndim == 3 and mask.any():
            for ax in range(3):
                hit = np.flatnonzero(mask.any(axis=tuple(a for a in range(3) if a != ax)))
                lo[ax] = max(int(hit[0]) - 1, 0)
                hi[ax] = min(int(hit[-1]) + 2, mask.shape[ax])
        box = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
        object.__setattr__(self, "_lo_ijk", lo)
        object.__setattr__(self, "_hi_ijk", hi)
        object.__setattr__(self, "_values", np.asarray(mask[box], np.float32))
        object.__setattr__(self, "_inv", np.linalg.inv(self.affine))

    def support_ras_mm(self) -> np.ndarray:
        """(8, 3) world corners of the voxel box outside which every sample is exactly 0."""
        lo = self._lo_ijk.astype(float) - 1.0  # type: ignore[attr-defined]
        hi = self._hi_ijk.astype(float)  # type: ignore[attr-defined]
        corners = np.array([[(lo, hi)[b >> k & 1][k] for k in range(3)] for b in range(8)])
        aff = np.asarray(self.affine, float)
        return corners @ aff[:3, :3].T + aff[:3, 3]

    def sample(self, xyz_ras_mm: np.ndarray, *, order: int = 1) -> np.ndarray:
        """Mask value (0..1) at world points (..., 3).

        ``order`` > 1 (spline) interpolates the whole mask, whose prefilter reaches beyond
        the box.
        """
        pts = np.asarray(xyz_ras_mm, float)
        inv = self._inv  # type: ignore[attr-defined]
        flat = matmul_rows(pts.reshape(-1, 3), inv[:3, :3].T, inv[:3, 3]).T
        if order > 1:
            vals = ndi.map_coordinates(np.asarray(self.mask, np.float32), flat, order=order,
                                       mode="constant", cval=0.0)
            return vals.reshape(pts.shape[:-1])
        lo = self._lo_ijk  # type: ignore[attr-defined]
        block = self._values  # type: ignore[attr-defined]
        vals = np.zeros(flat.shape[1], np.float32)
        rel = flat - lo[:, None]
        near = np.all((rel > -1.0) & (rel < np.asarray(block.shape)[:, None]), axis=0)
        if near.any() and block.size:
            vals[near] = ndi.map_coordinates(block, rel[:, near], order=order,
                                             mode="constant", cval=0.0)
        return vals.reshape(pts.shape[:-1])

    def sample_lattice(self, origin_ras_mm: np.ndarray, steps_ras_mm: np.ndarray,
                       shape: tuple[int, int, int]) -> np.ndarray:
        """Trilinear mask value (0..1) on a regular lattice of world points.

        Point ``(a, b, c)`` is ``origin + a * steps[0] + b * steps[1] + c * steps[2]``: the same
        values as :meth:`sample` at those points, computed by one
        :func:`scipy.ndimage.affine_transform` of the box, which maps each lattice index to
        voxel coordinates itself instead of reading them from arrays of world points and of
        voxel coordinates (three float64 arrays per point, and a selection, for :meth:`sample`).

        The voxel coordinates are summed in another order than :meth:`sample`'s two products,
        so they can differ by a few units in the last place (~1e-14 voxel); the float32 values
        then differ only where a double value lies that close to a float32 rounding boundary.
        Measured 2026-12-04: the S1 frame, frame volumes and anatomy.json identical on the
        real 3 mm scan (CT-only and labelled) and the 3 mm and 2 mm phantoms.

        Parameters
        ----------
        origin_ras_mm : (3,) ndarray
            World point of lattice index (0, 0, 0).
        steps_ras_mm : (3, 3) ndarray
            Row ``n``: the world step (mm) of lattice axis ``n``.
        shape : tuple of 3 int
            Lattice size.

        Returns
        -------
        (shape) float32 ndarray
        """
        inv = self._inv  # type: ignore[attr-defined]
        lo = self._lo_ijk  # type: ignore[attr-defined]
        block = self._values  # type: ignore[attr-defined]
        if not block.size:
            return np.zeros(shape, np.float32)
        steps = np.asarray(steps_ras_mm, float)
        origin = np.asarray(origin_ras_mm, float)
        # voxel (block) coordinates of index (a, b, c): offset + matrix @ (a, b, c)
        matrix = inv[:3, :3] @ steps.T
        offset = inv[:3, :3] @ origin + inv[:3, 3] - lo
        out = np.zeros(shape, np.float32)
        # only the indices whose voxel coordinates can fall within the box's open extent
        # (-1, n) per axis are interpolated (every other value is exactly 0): the box's
        # corners mapped to lattice indices, one index of margin for rounding
        box = np.array([[(-1.0, float(n))[b >> ax & 1] for ax, n in enumerate(block.shape)]
                        for b in range(8)])
        try:
            idx = np.linalg.solve(matrix, (box - offset).T).T
        except np.linalg.LinAlgError:  # a flat lattice: no restriction
            idx = np.array([[0.0, 0.0, 0.0], np.asarray(shape, float)])
        a0 = np.clip(np.floor(idx.min(axis=0)).astype(int) - 1, 0, shape)
        a1 = np.clip(np.ceil(idx.max(axis=0)).astype(int) + 2, a0, shape)
        if np.any(a1 <= a0):
            return out
        out[a0[0]:a1[0], a0[1]:a1[1], a0[2]:a1[2]] = ndi.affine_transform(
            block, matrix, offset + matrix @ a0, output_shape=tuple(int(n) for n in a1 - a0),
            output=np.float32, order=1, mode="constant", cval=0.0)
        return out


@dataclass(frozen=True)
class FrameVolume:
    """The sacrum mask resampled in S1-frame coordinates on a 1 mm grid.

    ``mask[i, j, k]`` is the sacrum at frame point ``(x[i], y[j], z[k])`` (right, anterior,
    cranial, mm).
    """

    mask: np.ndarray
    x_mm: np.ndarray
    y_mm: np.ndarray
    z_mm: np.ndarray
    frame: S1Frame

    def index(self, x: float, y: float, z: float) -> tuple[int, int, int]:
        """Nearest grid index of a frame point (clipped to the grid)."""
        return (int(np.clip(np.rint(x - self.x_mm[0]), 0, len(self.x_mm) - 1)),
                int(np.clip(np.rint(y - self.y_mm[0]), 0, len(self.y_mm) - 1)),
                int(np.clip(np.rint(z - self.z_mm[0]), 0, len(self.z_mm) - 1)))

    def frame_sample(self, xyz_frame_mm: np.ndarray) -> np.ndarray:
        """Trilinear mask value (0..1) at frame points (N, 3)."""
        p = np.asarray(xyz_frame_mm, float)
        ijk = np.stack([p[:, 0] - self.x_mm[0], p[:, 1] - self.y_mm[0], p[:, 2] - self.z_mm[0]])
        return ndi.map_coordinates(self.mask.astype(np.float32), ijk, order=1, mode="constant",
                                   cval=0.0)

    def to_world(self, xyz_frame_mm: np.ndarray) -> np.ndarray:
        """Frame mm -> world RAS mm."""
        return self.frame.to_world_mm(xyz_frame_mm)


def _surface_points(mask: np.ndarray, affine: np.ndarray, max_points: int) -> np.ndarray:
    """World coordinates of (a subsample of) the mask's boundary voxels."""
    surf = mask & ~ndi.binary_erosion(mask)
    ijk = np.argwhere(surf)
    if len(ijk) > max_points:
        step = int(np.ceil(len(ijk) / max_points))
        ijk = ijk[::step]
    return ijk @ affine[:3, :3].T + affine[:3, 3]


def midsagittal_plane(mask: np.ndarray, affine: np.ndarray, *, midline_x_mm: float
                      ) -> tuple[np.ndarray, float]:
    """Fit the midsagittal (symmetry) plane of a sacrum mask.

    Parameters
    ----------
    mask : (I, J, K) bool ndarray
        Sacrum on a grid whose axes are (approximately) RAS-ordered.
    affine : (4, 4) ndarray
        Voxel -> RAS mm of ``mask``.
    midline_x_mm : float
        Provisional RAS x of the midline.

    Returns
    -------
    normal_ras : (3,) ndarray
        Unit normal pointing to patient right (+x).
    offset_mm : float
        Plane ``normal . p = offset``.
    """
    pts = _surface_points(mask, affine, 6000)
    central = np.abs(pts[:, 0] - midline_x_mm) <= SYMMETRY_HALF_WIDTH_MM
    if central.sum() < 50:
        raise AnatomyNotFoundError("sacrum mask too small to find its midsagittal plane "
                                   f"({int(central.sum())} surface voxels near the midline)")
    pts = pts[central]
    outside_mm = ndi.distance_transform_edt(~mask, sampling=np.sqrt((affine[:3, :3] ** 2)
                                                                    .sum(axis=0)))
    inv = np.linalg.inv(affine)

    def normal_of(params: np.ndarray) -> np.ndarray:
        yaw, roll = np.radians(params[:2])
        return np.array([np.cos(yaw) * np.cos(roll), np.sin(yaw) * np.cos(roll), np.sin(roll)])

    def cost(params: np.ndarray) -> float:
        n = normal_of(params)
        d = (pts @ n) - params[2]
        refl = pts - 2.0 * d[:, None] * n
        ijk = refl @ inv[:3, :3].T + inv[:3, 3]
        dist = ndi.map_coordinates(outside_mm, ijk.T, order=1, mode="nearest")
        return float(np.mean(np.minimum(dist, 15.0)))

    results = [minimize(cost, np.array([yaw0, 0.0, midline_x_mm]), method="Powell",
                        options={"xtol": 0.05, "ftol": 1e-4, "maxiter": 2000})
               for yaw0 in (-8.0, 0.0, 8.0)]
    best = min(results, key=lambda r: float(r.fun))
    n = normal_of(best.x)
    return n, float(best.x[2])


def fit_endplate(sampler: MaskSampler, normal_ras: np.ndarray, offset_mm: float,
                 centre_hint_ras_mm: np.ndarray) -> tuple[S1Frame, dict]:
    """Fit the S1 superior endplate in the midsagittal section and build the S1 frame.

    Parameters
    ----------
    sampler : MaskSampler
        The sacrum mask.
    normal_ras : (3,) ndarray
        Midsagittal plane normal (pointing right).
    offset_mm : float
        Midsagittal plane offset.
    centre_hint_ras_mm : (3,) ndarray
        A point inside the S1 body (seed); projected on the plane.

    Returns
    -------
    frame : S1Frame
    info : dict
        ``rms_mm`` of the endplate line fit, ``n_points``, ``depth_mm`` (endplate AP length),
        ``promontory_ras_mm`` (anterior end of the fitted endplate).
    """
    r = unit(normal_ras)
    c0 = np.asarray(centre_hint_ras_mm, float)
    c0 = c0 - ((c0 @ r) - offset_mm) * r
    up = np.array([0.0, 0.0, 1.0])
    up = unit(up - (up @ r) * r)
    fwd = np.cross(up, r)
    # search the sagittal tilt: the endplate is the flat top face, so at the right tilt the
    # line fitted to the top points is level with the section (self-consistent)
    best = None
    for theta in np.arange(-20.0, 85.0, 5.0):
        th = np.radians(theta)
        u = np.cos(th) * up + np.sin(th) * fwd
        try:
            res = _endplate_pass(sampler, r, c0, u, ENDPLATE_WINDOW_MM)
        except AnatomyNotFoundError:
            continue
        new_u, _, _, _, rms, npts, depth = res
        if depth < MIN_ENDPLATE_DEPTH_MM:
            continue
        tilt = float(np.degrees(np.arccos(np.clip(new_u @ u, -1.0, 1.0))))
        score = tilt + 2.0 * rms
        if best is None or score < best[0]:
            best = (score, new_u, res)
    if best is None:
        raise AnatomyNotFoundError(
            "S1 superior endplate not found: no flat top face at least "
            f"{MIN_ENDPLATE_DEPTH_MM:g} mm deep on the sacral body column at any sagittal tilt")
    cranial = best[1]
    origin = best[2][2]
    for _ in range(2):
        c0 = origin - 10.0 * cranial
        cranial, anterior, origin, prom, rms, npts, depth = _endplate_pass(
            sampler, r, c0, cranial, ENDPLATE_WINDOW_MM)
    frame = S1Frame.from_axes(origin, cranial_ras=cranial, anterior_ras=anterior)
    info = {"rms_mm": rms, "n_points": npts, "depth_mm": depth, "promontory_ras_mm": prom}
    return frame, info


def _endplate_pass(sampler: MaskSampler, r: np.ndarray, c0: np.ndarray, cranial: np.ndarray,
                   window_mm: float) -> tuple:
    """One endplate fit in the midsagittal section spanned by ``cranial`` and anterior."""
    u = cranial
    v = np.cross(u, r)  # anterior = cranial x right
    step = 0.5
    vv = np.arange(-70.0, 70.0 + step, step)
    uu = np.arange(-60.0, 60.0 + step, step)
    # average over +-2 mm across the plane (three sections, summed in this order in float32)
    widths = (-2.0, 0.0, 2.0)
    layers = sampler.sample_lattice(c0 + vv[0] * v + uu[0] * u + widths[0] * r,
                                    np.stack([step * v, step * u, 2.0 * r]),
                                    (len(vv), len(uu), len(widths)))
    sec = np.zeros(layers.shape[:2], np.float32)
    for n in range(len(widths)):
        sec += layers[..., n]
    sec = sec / 3.0 >= 0.5
    lab, n = ndi.label(sec)
    if n == 0:
        raise AnatomyNotFoundError("no sacrum in the midsagittal section: the sacral mask "
                                   "does not cross its own symmetry plane")
    # the body column: the component under the seed, else the largest
    i0, j0 = int(np.argmin(np.abs(vv))), int(np.argmin(np.abs(uu)))
    comp = lab[i0, j0]
    if comp == 0:
        sizes = np.bincount(lab.ravel())
        sizes[0] = 0
        comp = int(np.argmax(sizes))
    body = lab == comp
    has = body.any(axis=1)
    top_j = np.where(has, body.shape[1] - 1 - np.argmax(body[:, ::-1], axis=1), -1)
    cols = np.nonzero(has)[0]
    tops_u = uu[top_j[cols]] + step / 2.0  # the surface lies half a pixel above the centre
    keep = tops_u >= tops_u.max() - window_mm
    pts2 = np.column_stack([vv[cols][keep], tops_u[keep]])
    direction = normal2 = centre = None
    for _ in range(6):
        if len(pts2) < 5:
            break
        centre = pts2.mean(axis=0)
        _, _, vt = np.linalg.svd(pts2 - centre, full_matrices=False)
        direction, normal2 = vt[0], vt[1]
        resid = (pts2 - centre) @ normal2
        good = np.abs(resid) <= max(ENDPLATE_OUTLIER_MM, 2.5 * float(np.std(resid)))
        if good.all():
            break
        pts2 = pts2[good]
    if len(pts2) < 5 or direction is None or normal2 is None or centre is None:
        raise AnatomyNotFoundError("S1 superior endplate not found: fewer than 5 points on "
                                   "the top of the sacral body column")
    rms = float(np.sqrt(np.mean(((pts2 - centre) @ normal2) ** 2)))
    if direction[0] < 0:
        direction = -direction
    if normal2[1] < 0:
        normal2 = -normal2
    t = (pts2 - centre) @ direction
    mid2 = centre + 0.5 * (t.min() + t.max()) * direction
    ant2 = centre + t.max() * direction
    new_cranial = unit(normal2[0] * v + normal2[1] * u)
    anterior = unit(direction[0] * v + direction[1] * u)
    origin = c0 + mid2[0] * v + mid2[1] * u
    prom = c0 + ant2[0] * v + ant2[1] * u
    return new_cranial, anterior, origin, prom, rms, len(pts2), float(t.max() - t.min())


def refine_endplate_ct(hu: np.ndarray, affine: np.ndarray, frame: S1Frame, info: dict
                       ) -> tuple[S1Frame, dict]:
    """Refit the S1 endplate plane to the CT's voxels around the mask's endplate.

    Parameters
    ----------
    hu : (I, J, K) ndarray
        CT in HU.
    affine : (4, 4) ndarray
        Voxel -> world RAS mm of ``hu``.
    frame : S1Frame
        Frame from :func:`fit_endplate` on a mask segmented from this CT (origin on the mask's
        endplate, which lies about half a voxel above the bone).
    info : dict
        Its ``info``; ``depth_mm`` (AP length of the fitted endplate) sets the slab.

    Returns
    -------
    frame : S1Frame
        Cranial axis normal to the fitted plane within the midsagittal plane (the right axis is
        kept), origin on the fitted bone surface below the input origin. The input frame when
        the fit is refused.
    info : dict
        A copy of ``info`` with ``ct_plate``: None when refused (``ct_plate_refused`` says
        why), else ``{"turn_deg", "height_mm", "blur_mm", "disc_hu", "marrow_hu",
        "plate_hu", "n_voxels"}`` (``height_mm``: origin shift along the cranial axis).

    Notes
    -----
    The voxels within :data:`CT_PLATE_HALF_WIDTH_MM` of the midsagittal plane, between 1 voxel
    (at least 3 mm) inside both rims of the plate and within :data:`CT_PLATE_RANGE_MM` of
    the mask's endplate, are fitted (robust least squares) by a plane ``z = a + b y`` (frame
    mm) carrying the profile, with ``d = z - a - b y`` and ``Phi`` the normal CDF,

    ``HU(d) = D + (M - D) Phi(-d / s) + K [Phi(-d / s) - Phi(-(d + c) / s)]``:

    disc ``D`` above, marrow ``M`` below, a cortical plate ``c`` thick with excess ``K``, all
    blurred by one Gaussian ``s`` standing for the scanner's point spread and the voxel's
    extent. The model is evaluated at each voxel centre, so that where the plate crosses the
    grid obliquely, each voxel is compared with the partial volume it actually holds; a line
    through per-column half-level crossings of interpolated profiles, or through the top of
    a thresholded mask, follows the voxel staircase instead (on the phantom at 3 mm voxels,
    the mask's line was tipped by 2.3 deg with 15 deg pelvic tilt, the profile crossings
    by up to 1.5 deg without noise). The plane is refused, and the mask's kept, when its
    plate is not brighter than the disc by :data:`CT_PLATE_MIN_CONTRAST_HU`, the blur is
    wider than 1.5 voxels, or it turns the axis by more than :data:`CT_PLATE_MAX_TURN_DEG`
    or lies more than 1.5 voxels + 2 mm from the mask's endplate (something other than the
    endplate was fitted: a lesion, a Schmorl node, a fused disc).
    """
    hu = np.asarray(hu)
    aff = np.asarray(affine, float)
    if hu.ndim != 3 or aff.shape != (4, 4):
        raise GeometryError(f"expected a 3D CT array and a 4 x 4 affine, got shapes "
                            f"{hu.shape} and {aff.shape}")
    out = dict(info)
    voxel_mm = float(np.mean(np.sqrt((aff[:3, :3] ** 2).sum(axis=0))))
    half_depth_mm = 0.5 * float(info["depth_mm"]) - max(3.0, voxel_mm)
    z_lo, z_hi = CT_PLATE_RANGE_MM
    hx = CT_PLATE_HALF_WIDTH_MM

    def refuse(why: str) -> tuple[S1Frame, dict]:
        out["ct_plate"] = None
        out["ct_plate_refused"] = why
        return frame, out

    if half_depth_mm < 5.0:
        return refuse(f"endplate only {float(info['depth_mm']):.0f} mm deep")
    corners = np.array([[x, y, z] for x in (-hx, hx) for y in (-half_depth_mm, half_depth_mm)
                        for z in (z_lo, z_hi)])
    inv = np.linalg.inv(aff)
    ijk = frame.to_world_mm(corners) @ inv[:3, :3].T + inv[:3, 3]
    lo = np.clip(np.floor(ijk.min(axis=0)).astype(int), 0, np.array(hu.shape))
    hi = np.clip(np.ceil(ijk.max(axis=0)).astype(int) + 1, 0, np.array(hu.shape))
    if np.any(hi - lo < 1):
        return refuse("the endplate lies outside the CT")
    grid = np.stack(np.meshgrid(*(np.arange(a, b) for a, b in zip(lo, hi, strict=True)),
                                indexing="ij"), axis=-1).reshape(-1, 3)
    xyz = frame.to_frame_mm(grid @ aff[:3, :3].T + aff[:3, 3])
    keep = ((np.abs(xyz[:, 0]) <= hx) & (np.abs(xyz[:, 1]) <= half_depth_mm)
            & (xyz[:, 2] >= z_lo) & (xyz[:, 2] <= z_hi))
    if keep.sum() < 30:
        return refuse(f"only {int(keep.sum())} CT voxels around the endplate")
    ijk_in = grid[keep]
    vals = np.asarray(hu[ijk_in[:, 0], ijk_in[:, 1], ijk_in[:, 2]], float)
    y_mm, z_mm = xyz[keep, 1], xyz[keep, 2]
    c_mm = CT_PLATE_CORTEX_MM

    def resid(p: np.ndarray) -> np.ndarray:
        a, b, disc, marrow, plate, blur = p
        d = z_mm - (a + b * y_mm)
        s = abs(blur) + 0.2
        below = ndtr(-d / s)
        return disc + (marrow - disc) * below + plate * (below - ndtr(-(d + c_mm) / s)) - vals

    above, deep = vals[z_mm >= 1.5], vals[z_mm <= z_lo + 2.0]
    p0 = np.array([-0.5 * voxel_mm, 0.0,
                   float(np.median(above)) if len(above) else 50.0,
                   float(np.median(deep)) if len(deep) else 200.0, 300.0, 0.5 * voxel_mm])
    fit = least_squares(resid, p0, loss="soft_l1", f_scale=CT_PLATE_LOSS_HU)
    a, b, disc, marrow, plate, blur = (float(v) for v in fit.x)
    blur = abs(blur) + 0.2
    turn_deg = float(np.degrees(np.arctan(abs(b))))
    contrast = marrow + plate - disc
    if not fit.success or contrast < CT_PLATE_MIN_CONTRAST_HU:
        return refuse(f"no cortical plate over the disc in the CT ({contrast:.0f} HU)")
    if blur > 1.5 * voxel_mm:
        return refuse(f"the plate's edge is blurred over {blur:.1f} mm")
    if turn_deg > CT_PLATE_MAX_TURN_DEG or abs(a) > 1.5 * voxel_mm + 2.0:
        return refuse(f"the CT plane ({turn_deg:.1f} deg, {a:+.1f} mm) is not the mask's "
                      "endplate")
    cranial = unit(frame.cranial_ras - b * frame.anterior_ras)
    anterior = unit(frame.anterior_ras + b * frame.cranial_ras)
    new = S1Frame.from_axes(frame.origin_ras_mm + a * frame.cranial_ras, cranial_ras=cranial,
                            anterior_ras=anterior)
    out["ct_plate"] = {"turn_deg": turn_deg, "height_mm": a, "blur_mm": blur,
                       "disc_hu": disc, "marrow_hu": marrow, "plate_hu": marrow + plate,
                       "n_voxels": len(vals)}
    out["ct_plate_refused"] = None
    return new, out


def frame_volume(sampler: MaskSampler, frame: S1Frame, *, step_mm: float = 1.0
                 ) -> FrameVolume:
    """Resample the sacrum mask in S1-frame coordinates (see :data:`FRAME_BOX_MM`).

    Only the grid points within the frame-axis box around the mask's support (one step of
    margin) are sampled; every other point samples exactly 0 (outside the mask).
    """
    axes = [np.arange(lo, hi + step_mm / 2, step_mm) for lo, hi in FRAME_BOX_MM]
    support = frame.to_frame_mm(sampler.support_ras_mm())
    sub = []
    for ax, a in enumerate(axes):
        i0 = np.searchsorted(a, support[:, ax].min() - step_mm, side="left")
        i1 = np.searchsorted(a, support[:, ax].max() + step_mm, side="right")
        sub.append(slice(int(i0), int(i1)))
    m = np.zeros(tuple(len(a) for a in axes), bool)
    if all(s.stop > s.start for s in sub):
        corner_frame_mm = np.array([a[s.start] for a, s in zip(axes, sub, strict=True)])
        m[tuple(sub)] = sampler.sample_lattice(
            frame.to_world_mm(corner_frame_mm), step_mm * frame.rotation,
            tuple(s.stop - s.start for s in sub)) >= 0.5
    return FrameVolume(m, axes[0], axes[1], axes[2], frame)

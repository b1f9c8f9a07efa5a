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
3. The mask is then resampled on a 1 mm grid in frame coordinates
   (:class:`FrameVolume`), on which landmarks are measured.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi
from scipy.optimize import minimize

from alarscrew.errors import AnatomyNotFoundError
from alarscrew.spatial.frame import S1Frame, unit

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


@dataclass(frozen=True)
class MaskSampler:
    """A bool mask on a grid with a voxel->RAS affine, sampled at world points (trilinear)."""

    mask: np.ndarray
    affine: np.ndarray

    def __post_init__(self) -> None:
        object.__setattr__(self, "_values", np.asarray(self.mask, np.float32))
        object.__setattr__(self, "_inv", np.linalg.inv(self.affine))

    def sample(self, xyz_ras_mm: np.ndarray, *, order: int = 1) -> np.ndarray:
        """Mask value (0..1) at world points (..., 3)."""
        pts = np.asarray(xyz_ras_mm, float)
        inv = self._inv  # type: ignore[attr-defined]
        ijk = pts @ inv[:3, :3].T + inv[:3, 3]
        flat = ijk.reshape(-1, 3).T
        vals = ndi.map_coordinates(self._values, flat, order=order,  # type: ignore[attr-defined]
                                   mode="constant", cval=0.0)
        return vals.reshape(pts.shape[:-1])


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
    V, U = np.meshgrid(vv, uu, indexing="ij")
    sec = np.zeros(V.shape, np.float32)
    for w in (-2.0, 0.0, 2.0):  # average over +-2 mm across the plane
        pts = c0 + V[..., None] * v + U[..., None] * u + w * r
        sec += sampler.sample(pts)
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


def frame_volume(sampler: MaskSampler, frame: S1Frame, *, step_mm: float = 1.0
                 ) -> FrameVolume:
    """Resample the sacrum mask in S1-frame coordinates (see :data:`FRAME_BOX_MM`)."""
    axes = [np.arange(lo, hi + step_mm / 2, step_mm) for lo, hi in FRAME_BOX_MM]
    X, Y, Z = np.meshgrid(*axes, indexing="ij")
    world = frame.to_world_mm(np.stack([X, Y, Z], axis=-1))
    m = sampler.sample(world) >= 0.5
    return FrameVolume(m, axes[0], axes[1], axes[2], frame)

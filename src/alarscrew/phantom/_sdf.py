"""Signed-distance-like primitives and their composition, evaluated on frame coordinates.

Every primitive is a small frozen dataclass with ``sdf(x, y, z)`` (arrays of any common
shape, millimetres in the S1 frame: right, anterior, cranial) returning a float array that
is negative inside, zero on the surface and positive outside, and ``bbox()`` returning the
axis-aligned frame box ``(lo, hi)`` that contains the solid. Ellipsoids use the first-order
distance bound of Quilez (exact on the surface, close to the true distance near it), which
is all the cortical shell and the partial-volume rendering need.

A :class:`Shape` is an ordered list of operations (smooth union, cut, clip by a half-space)
applied to a running field. Each operation only touches points inside its primitive's box
(grown by a margin), elsewhere the primitive counts as "far" (:data:`FAR_MM`); the same rule
is used for whole grids and for single points, so voxel labels and ground-truth landmarks
come from one and the same function.

References
----------
.. [1] Quilez I. "Ellipsoid SDF" and "smooth minimum", iquilezles.org articles (distance
   bound ``k0 (k0 - 1) / k1`` and the polynomial smooth minimum).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

#: Value of a primitive's field outside its (grown) bounding box, in mm.
FAR_MM = 1.0e3

Array = np.ndarray


def _local(x: Array, y: Array, z: Array, center: Array, rot: Array) -> tuple[Array, ...]:
    """Frame coords -> primitive-local coords; ``rot`` rows are the local axes in the frame."""
    # Python floats keep float32 inputs in float32 (NumPy 2 promotion rules)
    c = [float(v) for v in center]
    r = [[float(v) for v in row] for row in rot]
    dx, dy, dz = x - c[0], y - c[1], z - c[2]
    return tuple(r[i][0] * dx + r[i][1] * dy + r[i][2] * dz for i in range(3))


def rotation_z(angle_deg: float) -> Array:
    """Rows = local axes of a frame rotated by ``angle_deg`` about the cranial (z) axis."""
    a = np.radians(angle_deg)
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, s, 0.0], [-s, c, 0.0], [0.0, 0.0, 1.0]])


def rotation_x(angle_deg: float) -> Array:
    """Rows = local axes of a frame rotated by ``angle_deg`` about the right (x) axis."""
    a = np.radians(angle_deg)
    c, s = np.cos(a), np.sin(a)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, s], [0.0, -s, c]])


def _box_of(center: Array, rot: Array, half: Array) -> tuple[Array, Array]:
    ext = np.abs(rot).T @ np.asarray(half, float)
    return center - ext, center + ext


@dataclass(frozen=True)
class Ellipsoid:
    """Ellipsoid with semi-axes ``semi_mm`` along the local axes (rows of ``rot``)."""

    center: Array
    semi_mm: Array
    rot: Array = field(default_factory=lambda: np.eye(3))

    def sdf(self, x: Array, y: Array, z: Array) -> Array:
        """Distance bound (mm): ``k0 (k0 - 1) / k1`` with ``k0 = |p/r|``, ``k1 = |p/r^2|``."""
        lx, ly, lz = _local(x, y, z, np.asarray(self.center, float), self.rot)
        a, b, c = (float(v) for v in self.semi_mm)
        k0 = np.sqrt((lx / a) ** 2 + (ly / b) ** 2 + (lz / c) ** 2)
        k1 = np.sqrt((lx / a**2) ** 2 + (ly / b**2) ** 2 + (lz / c**2) ** 2)
        return k0 * (k0 - 1.0) / np.maximum(k1, 1e-9)

    def bbox(self) -> tuple[Array, Array]:
        """Frame box containing the solid."""
        return _box_of(np.asarray(self.center, float), self.rot, self.semi_mm)


@dataclass(frozen=True)
class RoundBox:
    """Box with half-extents ``half_mm`` (local axes) whose edges are rounded by ``radius_mm``."""

    center: Array
    half_mm: Array
    radius_mm: float = 1.0
    rot: Array = field(default_factory=lambda: np.eye(3))

    def sdf(self, x: Array, y: Array, z: Array) -> Array:
        """Exact signed distance of the rounded box (mm)."""
        loc = _local(x, y, z, np.asarray(self.center, float), self.rot)
        r = float(self.radius_mm)
        q = [np.abs(p) - (float(h) - r) for p, h in zip(loc, self.half_mm, strict=True)]
        outside = np.sqrt(sum(np.maximum(qi, 0.0) ** 2 for qi in q))
        inside = np.minimum(np.maximum(np.maximum(q[0], q[1]), q[2]), 0.0)
        return outside + inside - r

    def bbox(self) -> tuple[Array, Array]:
        """Frame box containing the solid."""
        return _box_of(np.asarray(self.center, float), self.rot, self.half_mm)


@dataclass(frozen=True)
class EllipticCylinder:
    """Cylinder along local z: elliptic section ``semi_mm[:2]``, half height ``semi_mm[2]``.

    The section uses the 2D ellipse bound; flat ends are exact. Inside-ness is exact, which
    the body-loss ground truth relies on (the S1 body is one of these).
    """

    center: Array
    semi_mm: Array
    rot: Array = field(default_factory=lambda: np.eye(3))

    def sdf(self, x: Array, y: Array, z: Array) -> Array:
        """Signed distance bound (mm)."""
        lx, ly, lz = _local(x, y, z, np.asarray(self.center, float), self.rot)
        a, b, h = (float(v) for v in self.semi_mm)
        k0 = np.sqrt((lx / a) ** 2 + (ly / b) ** 2)
        k1 = np.sqrt((lx / a**2) ** 2 + (ly / b**2) ** 2)
        d2 = k0 * (k0 - 1.0) / np.maximum(k1, 1e-9)
        dz = np.abs(lz) - h
        outside = np.sqrt(np.maximum(d2, 0.0) ** 2 + np.maximum(dz, 0.0) ** 2)
        return outside + np.minimum(np.maximum(d2, dz), 0.0)

    def bbox(self) -> tuple[Array, Array]:
        """Frame box containing the solid."""
        return _box_of(np.asarray(self.center, float), self.rot, self.semi_mm)


@dataclass(frozen=True)
class Capsule:
    """Tube of radius ``radius_mm`` around the segment ``a`` -> ``b`` (frame mm)."""

    a: Array
    b: Array
    radius_mm: float

    def sdf(self, x: Array, y: Array, z: Array) -> Array:
        """Exact signed distance (mm)."""
        a = [float(v) for v in self.a]
        ab = [float(q) - p for q, p in zip(self.b, a, strict=True)]
        px, py, pz = x - a[0], y - a[1], z - a[2]
        t = np.clip((px * ab[0] + py * ab[1] + pz * ab[2])
                    / (ab[0] ** 2 + ab[1] ** 2 + ab[2] ** 2), 0.0, 1.0)
        return np.sqrt((px - t * ab[0]) ** 2 + (py - t * ab[1]) ** 2
                       + (pz - t * ab[2]) ** 2) - float(self.radius_mm)

    def bbox(self) -> tuple[Array, Array]:
        """Frame box containing the solid."""
        pts = np.stack([np.asarray(self.a, float), np.asarray(self.b, float)])
        return pts.min(0) - self.radius_mm, pts.max(0) + self.radius_mm


@dataclass(frozen=True)
class HalfSpace:
    """The half-space ``normal . p <= offset_mm`` (normal normalised here)."""

    normal: Array
    offset_mm: float

    def sdf(self, x: Array, y: Array, z: Array) -> Array:
        """Exact signed distance to the plane (mm)."""
        n = [float(v) for v in np.asarray(self.normal, float) / np.linalg.norm(self.normal)]
        return n[0] * x + n[1] * y + n[2] * z - float(self.offset_mm)

    def bbox(self) -> tuple[Array, Array]:
        """Unbounded."""
        return np.full(3, -np.inf), np.full(3, np.inf)


Primitive = Ellipsoid | RoundBox | EllipticCylinder | Capsule | HalfSpace
OpKind = Literal["union", "cut", "clip"]


def smooth_min(a: Array, b: Array, k_mm: float) -> Array:
    """Polynomial smooth minimum (fillet radius about ``k_mm``); plain min when ``k_mm`` is 0."""
    if k_mm <= 0:
        return np.minimum(a, b)
    h = np.maximum(k_mm - np.abs(a - b), 0.0) / k_mm
    return np.minimum(a, b) - h * h * k_mm * 0.25


@dataclass(frozen=True)
class Op:
    """One step of a :class:`Shape`: ``union`` (smooth, fillet ``k_mm``), ``cut`` or ``clip``.

    ``cut`` removes the primitive's solid; ``clip`` keeps only the part inside it.
    """

    kind: OpKind
    prim: Primitive
    k_mm: float = 0.0


@dataclass(frozen=True)
class Shape:
    """A solid built from ordered operations on primitives (see module docstring)."""

    ops: tuple[Op, ...]
    margin_mm: float = 6.0

    def bbox(self) -> tuple[Array, Array]:
        """Frame box of the union parts (cuts and clips only remove)."""
        boxes = [op.prim.bbox() for op in self.ops if op.kind == "union"]
        lo = np.min([b[0] for b in boxes], axis=0)
        hi = np.max([b[1] for b in boxes], axis=0)
        return lo, hi

    def _mask(self, op: Op, x: Array, y: Array, z: Array) -> Array | None:
        lo, hi = op.prim.bbox()
        if not np.all(np.isfinite(lo)):
            return None
        m = self.margin_mm + op.k_mm
        lo, hi = lo - m, hi + m
        return ((x >= lo[0]) & (x <= hi[0]) & (y >= lo[1]) & (y <= hi[1])
                & (z >= lo[2]) & (z <= hi[2]))

    def _apply(self, op: Op, cur: Array, d: Array) -> Array:
        if op.kind == "union":
            return smooth_min(cur, d, op.k_mm)
        if op.kind == "cut":
            return np.maximum(cur, -d)
        return np.maximum(cur, d)  # clip

    def sdf_grid(self, grid: FrameGrid) -> tuple[tuple[slice, ...], Array]:
        """Field of the solid on the voxel centres of ``grid`` around the solid.

        Returns
        -------
        slices : tuple of slice
            The block of the grid that holds the solid (grown by the margins); outside it
            the field is :data:`FAR_MM`.
        field : ndarray, float32
            Field on that block: the same values as :meth:`sdf` at those voxel centres. Each
            operation only visits the voxels in its primitive's (grown) box.
        """
        slo, shi = self.bbox()
        grow = self.margin_mm + max(op.k_mm for op in self.ops)
        whole = grid.slices_for_frame_box(slo - grow, shi + grow)
        if whole is None:
            return (slice(0, 1),) * 3, np.full((1, 1, 1), FAR_MM, dtype=np.float32)
        start = np.array([s.start for s in whole])
        out = np.full(tuple(s.stop - s.start for s in whole), FAR_MM, dtype=np.float32)
        for op in self.ops:
            lo, hi = op.prim.bbox()
            finite = bool(np.all(np.isfinite(lo)))
            m_mm = self.margin_mm + op.k_mm
            sl = grid.slices_for_frame_box(lo - m_mm, hi + m_mm) if finite else whole
            if sl is None:
                continue
            sl = tuple(slice(max(a.start, w.start), min(a.stop, w.stop))
                       for a, w in zip(sl, whole, strict=True))
            if any(s.stop <= s.start for s in sl):
                continue
            x, y, z = grid.frame_coords(sl)
            d = op.prim.sdf(x, y, z).astype(np.float32)
            loc = tuple(slice(s.start - o, s.stop - o) for s, o in zip(sl, start, strict=True))
            cur = out[loc]
            new = self._apply(op, cur, d)
            if finite:
                lo, hi = lo - m_mm, hi + m_mm
                inside = ((x >= lo[0]) & (x <= hi[0]) & (y >= lo[1]) & (y <= hi[1])
                          & (z >= lo[2]) & (z <= hi[2]))
                new = np.where(inside, new, cur)
            out[loc] = new
        return whole, out

    def sdf(self, x: Array, y: Array, z: Array) -> Array:
        """Field of the solid at frame points (any common shape; mm)."""
        x, y, z = np.broadcast_arrays(*(np.asarray(v, dtype=np.float32) for v in (x, y, z)))
        out = np.full(x.shape, FAR_MM, dtype=np.float32)
        for op in self.ops:
            m = self._mask(op, x, y, z)
            if m is None:
                sel: tuple | Array = (...,)
                px, py, pz = x, y, z
            else:
                if not m.any():
                    continue
                sel = m
                px, py, pz = x[m], y[m], z[m]
            d = op.prim.sdf(px, py, pz).astype(np.float32)
            out[sel] = self._apply(op, out[sel], d)
        return out


@dataclass(frozen=True)
class FrameGrid:
    """An axis-aligned world voxel grid seen from the S1 frame.

    Parameters
    ----------
    origin_ras_mm : (3,) ndarray
        World position of voxel (0, 0, 0).
    spacing_mm : (3,) ndarray
        Voxel size along i, j, k (world x, y, z).
    shape : tuple of int
    frame_origin_ras_mm : (3,) ndarray
        S1 frame origin in world RAS.
    frame_rotation : (3, 3) ndarray
        Rows: right, anterior, cranial axes in world RAS (world -> frame).
    """

    origin_ras_mm: Array
    spacing_mm: Array
    shape: tuple[int, int, int]
    frame_origin_ras_mm: Array
    frame_rotation: Array

    @property
    def affine(self) -> Array:
        """(4, 4) voxel -> world RAS mm."""
        aff = np.eye(4)
        aff[:3, :3] = np.diag(np.asarray(self.spacing_mm, float))
        aff[:3, 3] = self.origin_ras_mm
        return aff

    def slices_for_frame_box(self, lo: Array, hi: Array) -> tuple[slice, ...] | None:
        """Index slices covering a frame box (None when it misses the grid)."""
        lo, hi = np.asarray(lo, float), np.asarray(hi, float)
        corners = np.stack(np.meshgrid(*zip(lo, hi, strict=True), indexing="ij"),
                           -1).reshape(-1, 3)
        world = corners @ self.frame_rotation + self.frame_origin_ras_mm
        sp = np.asarray(self.spacing_mm, float)
        ijk_lo = np.floor((world.min(0) - self.origin_ras_mm) / sp).astype(int)
        ijk_hi = np.ceil((world.max(0) - self.origin_ras_mm) / sp).astype(int) + 1
        ijk_lo = np.clip(ijk_lo, 0, self.shape)
        ijk_hi = np.clip(ijk_hi, 0, self.shape)
        if np.any(ijk_hi <= ijk_lo):
            return None
        return tuple(slice(int(a), int(b)) for a, b in zip(ijk_lo, ijk_hi, strict=True))

    def frame_coords(self, sl: tuple[slice, ...] | None = None) -> tuple[Array, Array, Array]:
        """Frame coordinates (right, anterior, cranial; mm, float32) of voxel centres in ``sl``."""
        sl = sl or tuple(slice(0, n) for n in self.shape)
        axes = [(np.arange(s.start, s.stop, dtype=np.float64) * float(self.spacing_mm[a])
                 + self.origin_ras_mm[a] - self.frame_origin_ras_mm[a]).astype(np.float32)
                for a, s in enumerate(sl)]
        w = (axes[0][:, None, None], axes[1][None, :, None], axes[2][None, None, :])
        r = [[float(v) for v in row] for row in self.frame_rotation]
        return tuple(r[i][0] * w[0] + r[i][1] * w[1] + r[i][2] * w[2]
                     for i in range(3))  # type: ignore[return-value]


def surface_along_ray(shape: Shape, start_mm: Array, direction: Array, *,
                      max_mm: float = 80.0, step_mm: float = 0.25, tol_mm: float = 1e-4
                      ) -> Array:
    """First point where ``shape`` leaves the solid along a ray from an inside point.

    Parameters
    ----------
    shape : Shape
    start_mm : (3,) ndarray
        Frame point inside the solid (field < 0).
    direction : (3,) ndarray
        Ray direction in the frame (normalised here).

    Returns
    -------
    (3,) ndarray
        Frame point on the surface (field = 0 to ``tol_mm``), found by marching then bisection.
    """
    p0 = np.asarray(start_mm, float)
    d = np.asarray(direction, float) / np.linalg.norm(direction)
    t = np.arange(0.0, max_mm + step_mm, step_mm)
    pts = p0 + t[:, None] * d
    f = shape.sdf(pts[:, 0], pts[:, 1], pts[:, 2])
    if f[0] >= 0:
        raise ValueError(f"ray start {p0.round(2).tolist()} is not inside the shape")
    out = np.nonzero(f >= 0)[0]
    if out.size == 0:
        raise ValueError(f"no surface within {max_mm} mm from {p0.round(2).tolist()}")
    lo, hi = t[out[0] - 1], t[out[0]]
    while hi - lo > tol_mm:
        mid = 0.5 * (lo + hi)
        p = p0 + mid * d
        if shape.sdf(p[0], p[1], p[2]) < 0:
            lo = mid
        else:
            hi = mid
    return p0 + 0.5 * (lo + hi) * d

"""The S1 anatomical frame and the screw-angle convention used everywhere in alarscrew.

Frame
-----
Origin at the centre of the S1 superior endplate. Three orthonormal axes in world RAS:
``right_ras`` (patient right), ``anterior_ras``, ``cranial_ras`` (normal of the superior
endplate, pointing cranially). (right, anterior, cranial) is right-handed, like RAS itself.

Screw angles (per side; ``lateral`` is ``+right`` on the right side, ``-right`` on the left)
----------------------------------------------------------------------------------------
Let ``d`` be the unit screw direction (entry -> tip), ``c`` the cranial axis.

- sagittal angle (deg) = caudal tilt below the endplate plane = ``asin(-d . c)``;
  positive when the tip lies caudal to the entry.
- transverse angle (deg) = lateral deviation from the anterior axis measured in the
  endplate plane = ``atan2(p . lateral, p . anterior)`` where ``p`` is ``d`` projected on the
  plane; positive when the tip lies lateral to the entry.

The paper's nominal S1 alar trajectory is transverse 30, sagittal 45 ("30 degrees lateral and
45 degrees inferior"). The inverse is :func:`direction_from_angles`:
``d = cos(s) (cos(t) anterior + sin(t) lateral) - sin(s) cranial``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from alarscrew.errors import GeometryError

Side = Literal["left", "right"]
SIDES: tuple[Side, Side] = ("left", "right")

#: Rows per BLAS call in :func:`matmul_rows`. OpenBLAS splits a product over threads once
#: M * N * K exceeds 262144 (65536 x its GEMM_MULTITHREAD_THRESHOLD of 4), i.e. from about
#: 29000 points for an (M, 3) @ (3, 3) product, whose arithmetic is far too small to pay for it:
#: measured on the 2-core development machine under load, 1.4 M points took 253 ms of CPU time
#: in one threaded call and 16 ms in blocks of 8192 rows (bit-identical results, the same kernel
#: per row). The real 3 mm scan's anatomy transforms about 10 M points in all.
MATMUL_BLOCK_ROWS = 16384


def matmul_rows(pts: np.ndarray, right: np.ndarray, offset: np.ndarray | None = None
                ) -> np.ndarray:
    """``pts @ right + offset`` for many points, in blocks of rows that keep BLAS on one thread.

    Parameters
    ----------
    pts : (..., K) array_like
        Points (rows), e.g. ``(N, 3)`` voxel indices or mm coordinates; converted to float64.
    right : (K, M) ndarray
        Right-hand matrix, e.g. the transpose of a 3 x 3 linear part (a transposed view is
        passed to BLAS as such).
    offset : (M,) ndarray, optional
        Added to every row (translation).

    Returns
    -------
    (..., M) float64 ndarray
        The same values as ``pts @ right + offset`` (see :data:`MATMUL_BLOCK_ROWS`).
    """
    pts = np.asarray(pts, float)
    right = np.asarray(right, float)
    flat = pts.reshape(-1, pts.shape[-1])
    out = np.empty((flat.shape[0], right.shape[1]))
    # a loop over blocks of rows (not over points): each block is one BLAS call
    for start in range(0, flat.shape[0], MATMUL_BLOCK_ROWS):
        stop = start + MATMUL_BLOCK_ROWS
        np.matmul(flat[start:stop], right, out=out[start:stop])
    if offset is not None:
        out += np.asarray(offset, float)
    return out.reshape(*pts.shape[:-1], right.shape[1])


def unit(v: np.ndarray, *, name: str = "vector") -> np.ndarray:
    """Normalise ``v`` (..., 3); refuse zero or non-finite vectors."""
    v = np.asarray(v, dtype=float)
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    if not np.all(np.isfinite(v)) or np.any(n < 1e-12):
        raise GeometryError(f"{name} must be a finite non-zero 3-vector, got {v.tolist()}")
    return v / n


@dataclass(frozen=True)
class S1Frame:
    """S1 anatomical frame in world RAS mm.

    Attributes
    ----------
    origin_ras_mm : (3,) ndarray
        Centre of the S1 superior endplate.
    right_ras, anterior_ras, cranial_ras : (3,) ndarray
        Orthonormal, right-handed unit axes in world RAS.
    """

    origin_ras_mm: np.ndarray
    right_ras: np.ndarray
    anterior_ras: np.ndarray
    cranial_ras: np.ndarray

    def __post_init__(self) -> None:
        m = np.stack([self.right_ras, self.anterior_ras, self.cranial_ras])
        if not np.allclose(m @ m.T, np.eye(3), atol=1e-6):
            raise GeometryError("S1 frame axes must be orthonormal")
        if np.linalg.det(m) < 0:
            raise GeometryError("S1 frame axes (right, anterior, cranial) must be right-handed")

    @classmethod
    def from_axes(cls, origin_ras_mm: np.ndarray, *, cranial_ras: np.ndarray,
                  anterior_ras: np.ndarray) -> S1Frame:
        """Build an orthonormal frame from a cranial normal and an approximate anterior axis.

        The cranial axis is kept; the anterior axis is made orthogonal to it (Gram-Schmidt);
        right = anterior x cranial.
        """
        c = unit(cranial_ras, name="cranial axis")
        a = np.asarray(anterior_ras, dtype=float)
        a = unit(a - (a @ c) * c, name="anterior axis (parallel to cranial?)")
        r = np.cross(a, c)
        return cls(np.asarray(origin_ras_mm, float), r, a, c)

    @property
    def rotation(self) -> np.ndarray:
        """(3, 3) matrix whose rows are right, anterior, cranial (world -> frame)."""
        return np.stack([self.right_ras, self.anterior_ras, self.cranial_ras])

    def lateral_ras(self, side: Side) -> np.ndarray:
        """Unit vector pointing lateral on ``side``."""
        if side not in SIDES:
            raise GeometryError(f"side must be 'left' or 'right', not {side!r}")
        return self.right_ras if side == "right" else -self.right_ras

    def to_frame_mm(self, xyz_ras_mm: np.ndarray) -> np.ndarray:
        """World RAS mm (..., 3) -> frame coordinates (right, anterior, cranial) in mm."""
        return matmul_rows(np.asarray(xyz_ras_mm, float) - self.origin_ras_mm, self.rotation.T)

    def to_world_mm(self, xyz_frame_mm: np.ndarray) -> np.ndarray:
        """Frame coordinates (right, anterior, cranial) mm -> world RAS mm."""
        return matmul_rows(xyz_frame_mm, self.rotation, self.origin_ras_mm)

    def to_dict(self) -> dict:
        """JSON-ready dict (lists of floats)."""
        return {
            "origin_ras_mm": [float(v) for v in self.origin_ras_mm],
            "right_ras": [float(v) for v in self.right_ras],
            "anterior_ras": [float(v) for v in self.anterior_ras],
            "cranial_ras": [float(v) for v in self.cranial_ras],
        }

    @classmethod
    def from_dict(cls, d: dict) -> S1Frame:
        """Inverse of :meth:`to_dict`."""
        return cls(*(np.asarray(d[k], float) for k in
                     ("origin_ras_mm", "right_ras", "anterior_ras", "cranial_ras")))


def screw_angles_deg(direction_ras: np.ndarray, frame: S1Frame, side: Side
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Transverse and sagittal angles (deg) of screw directions in the S1 frame.

    Parameters
    ----------
    direction_ras : (..., 3) ndarray
        Screw directions (entry -> tip) in world RAS; normalised here.
    frame : S1Frame
    side : {'left', 'right'}

    Returns
    -------
    transverse_deg, sagittal_deg : ndarray of shape (...)
        See the module docstring for the convention.
    """
    d = unit(direction_ras, name="screw direction")
    lat = frame.lateral_ras(side)
    sag = np.degrees(np.arcsin(np.clip(-(d @ frame.cranial_ras), -1.0, 1.0)))
    trans = np.degrees(np.arctan2(d @ lat, d @ frame.anterior_ras))
    return trans, sag


def direction_from_angles(frame: S1Frame, side: Side, transverse_deg: np.ndarray,
                          sagittal_deg: np.ndarray) -> np.ndarray:
    """Unit world-RAS directions (..., 3) for transverse/sagittal angles (deg) on ``side``."""
    t = np.radians(np.asarray(transverse_deg, float))[..., None]
    s = np.radians(np.asarray(sagittal_deg, float))[..., None]
    lat = frame.lateral_ras(side)
    return (np.cos(s) * (np.cos(t) * frame.anterior_ras + np.sin(t) * lat)
            - np.sin(s) * frame.cranial_ras)


def scanner_angles_deg(direction_ras: np.ndarray, side: Side) -> tuple[np.ndarray, np.ndarray]:
    """The same angles measured in the scanner frame (axial plane, +A anterior, +S cranial)."""
    scanner = S1Frame(np.zeros(3), np.array([1.0, 0, 0]), np.array([0, 1.0, 0]),
                      np.array([0, 0, 1.0]))
    return screw_angles_deg(direction_ras, scanner, side)

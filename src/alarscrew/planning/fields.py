"""Scalar fields on a voxel grid for planning: signed distances (mm) and HU, sampled trilinearly.

Everything the planner asks about a point (how deep in bone, how far from a vessel, which HU)
is a trilinear sample of a precomputed field. Distances come from the exact Euclidean distance
transform (``scipy.ndimage.distance_transform_edt`` with ``sampling=`` the voxel size, so
anisotropic scans are measured in mm), computed once per scan on a crop around the sacrum.

Sign convention: a signed distance is positive inside the mask and negative outside; its zero
level is the voxel faces between mask and background (each voxel centre's EDT value minus half
the smallest voxel size).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from alarscrew.errors import AnatomyNotFoundError, GeometryError
from alarscrew.io.image import Image

#: Lipschitz constant (mm per mm) of a trilinear interpolant of a 1-Lipschitz grid function:
#: each partial derivative is an interpolation of neighbour differences (each <= 1), so the
#: gradient norm is at most sqrt(3). Used by the search's provable pruning bound.
TRILINEAR_LIPSCHITZ = float(np.sqrt(3.0))


@dataclass(frozen=True, eq=False)
class GridField:
    """A scalar field on a voxel grid, sampled trilinearly in world RAS mm.

    Parameters
    ----------
    values : (I, J, K) ndarray of float64
        Field values (mm for distances, HU for CT).
    affine : (4, 4) ndarray
        Voxel ``ijk`` -> world RAS mm.

    Notes
    -----
    Outside the grid the nearest edge value is used (``mode='nearest'``); the planner crops
    with a background margin so that edge values are 'outside bone'.
    """

    values: np.ndarray
    affine: np.ndarray

    @property
    def inv_affine(self) -> np.ndarray:
        """World RAS mm -> voxel ``ijk``."""
        return np.linalg.inv(self.affine)

    def to_ijk(self, xyz_ras_mm: np.ndarray) -> np.ndarray:
        """Points (..., 3) RAS mm -> continuous voxel indices (..., 3)."""
        inv = self.inv_affine
        return np.asarray(xyz_ras_mm, float) @ inv[:3, :3].T + inv[:3, 3]

    def dir_to_ijk(self, direction_ras: np.ndarray) -> np.ndarray:
        """Vectors (..., 3) in RAS mm -> voxel-index displacement per mm of travel (..., 3)."""
        return np.asarray(direction_ras, float) @ self.inv_affine[:3, :3].T

    def sample_ijk(self, ijk: np.ndarray) -> np.ndarray:
        """Trilinear samples at voxel coordinates ``ijk`` (..., 3) -> (...)."""
        ijk = np.asarray(ijk, float)
        flat = ijk.reshape(-1, 3).T
        out = ndimage.map_coordinates(self.values, flat, order=1, mode="nearest",
                                      prefilter=False)
        return out.reshape(ijk.shape[:-1])

    def sample(self, xyz_ras_mm: np.ndarray) -> np.ndarray:
        """Trilinear samples at world points (..., 3) RAS mm -> (...)."""
        return self.sample_ijk(self.to_ijk(xyz_ras_mm))


def signed_distance_mm(mask: np.ndarray, spacing_mm: np.ndarray) -> np.ndarray:
    """Signed Euclidean distance (mm) to the surface of a boolean mask.

    Parameters
    ----------
    mask : (I, J, K) bool ndarray
        Must hold at least one True and one False voxel.
    spacing_mm : (3,) array
        Voxel size along i, j, k.

    Returns
    -------
    (I, J, K) float64 ndarray
        Positive inside, negative outside; ``edt - h/2`` inside and ``-(edt - h/2)`` outside
        with ``h`` the smallest voxel size, so the zero level lies on the voxel faces.

    Notes
    -----
    The mask is padded by one background voxel first so a mask touching the array border is
    treated as ending there (scipy's EDT ignores the outside of the array otherwise).
    """
    mask = np.asarray(mask, bool)
    if not mask.any():
        raise AnatomyNotFoundError("mask is empty: no voxel to measure distances to")
    sp = np.asarray(spacing_mm, float)
    padded = np.pad(mask, 1, constant_values=False)
    inside = ndimage.distance_transform_edt(padded, sampling=sp)[1:-1, 1:-1, 1:-1]
    outside = ndimage.distance_transform_edt(~padded, sampling=sp)[1:-1, 1:-1, 1:-1]
    half = 0.5 * float(sp.min())
    return np.where(mask, inside - half, -(outside - half))


def unsigned_distance_mm(mask: np.ndarray, spacing_mm: np.ndarray) -> np.ndarray:
    """Euclidean distance (mm) from every voxel centre to the nearest voxel of ``mask``."""
    mask = np.asarray(mask, bool)
    if not mask.any():
        raise AnatomyNotFoundError("mask is empty: no voxel to measure distances to")
    return ndimage.distance_transform_edt(~mask, sampling=np.asarray(spacing_mm, float))


def crop_slices(mask: np.ndarray, spacing_mm: np.ndarray, pad_mm: float
                ) -> tuple[slice, slice, slice]:
    """Bounding box of ``mask`` grown by ``pad_mm`` on every side, clipped to the array."""
    idx = np.nonzero(mask)
    if idx[0].size == 0:
        raise AnatomyNotFoundError("the sacrum mask is empty: no sacrum in this scan")
    pad = np.ceil(pad_mm / np.asarray(spacing_mm, float)).astype(int)
    lo = [max(int(i.min()) - p, 0) for i, p in zip(idx, pad, strict=True)]
    hi = [min(int(i.max()) + p + 1, n) for i, p, n in zip(idx, pad, mask.shape, strict=True)]
    return tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))  # type: ignore[return-value]


def cropped_affine(affine: np.ndarray, slices: tuple[slice, slice, slice]) -> np.ndarray:
    """Affine of a crop starting at ``slices``' start indices."""
    shift = np.eye(4)
    shift[:3, 3] = [s.start for s in slices]
    return np.asarray(affine, float) @ shift


def check_mask_grid(mask: Image, ct: Image, name: str) -> np.ndarray:
    """Return ``mask`` as a bool array, refusing one that is not on the CT grid."""
    if not mask.same_grid(ct):
        raise GeometryError(
            f"mask '{name}' ({mask.grid_description()}) is not on the CT grid "
            f"({ct.grid_description()}); resample it nearest-neighbour first"
        )
    return np.asarray(mask.array).astype(bool)

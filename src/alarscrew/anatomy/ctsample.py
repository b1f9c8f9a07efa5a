"""Trilinear sampling of a CT (or mask) at points given in the S1 frame.

The CT-profile refinements (:mod:`~alarscrew.anatomy.facet`, :mod:`~alarscrew.anatomy.canal`,
:mod:`~alarscrew.anatomy.alaant`, :mod:`~alarscrew.anatomy.sijoint`,
:mod:`~alarscrew.anatomy.foramen`) read a few thousand to a million samples each, many times
per scan, from volumes of up to ~100 M voxels (512 x 512 x 400 at 0.8 mm). Converting the whole
volume to floating point for every bundle cost more than the rest of the anatomy on such a scan,
so :func:`sample_frame_points` converts only the block that holds the samples.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from alarscrew.errors import GeometryError
from alarscrew.spatial.frame import S1Frame, matmul_rows


def check_ct(hu: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """The CT array and affine as arrays, and the mean voxel size (mm).

    Raises
    ------
    GeometryError
        ``hu`` is not 3D or ``affine`` is not 4 x 4.
    """
    hu = np.asarray(hu)
    aff = np.asarray(affine, float)
    if hu.ndim != 3 or aff.shape != (4, 4):
        raise GeometryError(f"expected a 3D CT array and a 4 x 4 affine, got shapes "
                            f"{hu.shape} and {aff.shape}")
    return hu, aff, float(np.mean(np.sqrt((aff[:3, :3] ** 2).sum(axis=0))))


def sample_frame_points(vol: np.ndarray, affine: np.ndarray, frame: S1Frame,
                        pts_frame_mm: np.ndarray, *, cval: float = np.nan) -> np.ndarray:
    """Trilinear values of ``vol`` at frame points; ``cval`` outside the volume.

    Parameters
    ----------
    vol : (I, J, K) ndarray
        CT in HU, or a mask (sampled as 0/1).
    affine : (4, 4) ndarray
        Voxel -> world RAS mm of ``vol``.
    frame : S1Frame
        Frame of the points.
    pts_frame_mm : (..., 3) ndarray
        Points in the frame (mm: x right, y anterior, z cranial).
    cval : float
        Value for points outside the volume (beyond the outermost voxel centres).

    Returns
    -------
    (...) float32 ndarray
        The sampled values, shaped as the points without their last axis.
    """
    pts = np.asarray(pts_frame_mm, float)
    out_shape = pts.shape[:-1]
    ras = frame.to_world_mm(pts.reshape(-1, 3))
    inv = np.linalg.inv(np.asarray(affine, float))
    # one contiguous row per voxel axis: the reductions and selections below then run along
    # contiguous memory (on the transposed view they cost more than the interpolation)
    ijk = np.ascontiguousarray(matmul_rows(ras, inv[:3, :3].T, inv[:3, 3]).T)
    return sample_ijk(vol, ijk, cval=cval).reshape(out_shape)


def sample_ijk(vol: np.ndarray, ijk: np.ndarray, *, cval: float = np.nan) -> np.ndarray:
    """Trilinear values of ``vol`` at continuous voxel indices; ``cval`` outside the volume.

    Only the block of ``vol`` that holds the points is converted to float32 (the CT-profile
    refinements sample a few thousand points of a volume that can hold 100 M voxels).

    Parameters
    ----------
    vol : (I, J, K) ndarray
        CT in HU, or a mask (sampled as 0/1).
    ijk : (3, ...) ndarray
        Voxel indices, one plane per axis (contiguous planes keep the reductions fast).
    cval : float
        Value for points outside the volume (beyond the outermost voxel centres).

    Returns
    -------
    (...) float32 ndarray
        The sampled values, shaped as ``ijk`` without its first axis.
    """
    shape = np.asarray(vol.shape)
    inside = (ijk[0] >= -1e-6) & (ijk[0] <= shape[0] - 1 + 1e-6)
    for ax in (1, 2):
        inside &= (ijk[ax] >= -1e-6) & (ijk[ax] <= shape[ax] - 1 + 1e-6)
    vals = np.full(ijk.shape[1:], cval, np.float32)
    if inside.any():
        sel = ijk.reshape(3, -1) if inside.all() else ijk[:, inside]
        lo = np.clip(np.floor(sel.min(axis=1)).astype(int), 0, shape - 1)
        hi = np.clip(np.floor(sel.max(axis=1)).astype(int) + 2, lo + 1, shape)
        block = np.asarray(vol[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]], np.float32)
        vals[inside] = ndi.map_coordinates(block, sel - lo[:, None], order=1, mode="nearest")
    return vals

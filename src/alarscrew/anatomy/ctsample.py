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


def sample_frame_grid(vol: np.ndarray, affine: np.ndarray, frame: S1Frame,
                      axes_frame_mm: tuple[np.ndarray, np.ndarray, np.ndarray], *,
                      cval: float = np.nan) -> np.ndarray:
    """Trilinear values of ``vol`` on the frame grid ``axes[0] x axes[1] x axes[2]``.

    The values of :func:`sample_frame_points` on the grid's points. Where that is exact
    without reading the points' coordinates, one :func:`scipy.ndimage.affine_transform` of the
    block that holds the grid maps each grid index to voxel coordinates itself: when ``cval``
    is 0, the volume is 0 on its six outer faces (a mask away from the image's edge: then the
    nearest-voxel reading at the faces and the ``cval`` beyond both read 0, as the constant
    extension does) and every axis is evenly spaced. Otherwise the points are built and
    sampled. The voxel coordinates are summed in another order, so they can differ by a few
    units in the last place (~1e-14 voxel), and a float32 value by one unit where the double
    lies that close to a float32 rounding boundary.

    Parameters
    ----------
    vol : (I, J, K) ndarray
        CT in HU, or a mask (sampled as 0/1).
    affine : (4, 4) ndarray
        Voxel -> world RAS mm of ``vol``.
    frame : S1Frame
        Frame of the grid.
    axes_frame_mm : tuple of three 1-D ndarrays
        Grid coordinates along the frame's x (right), y (anterior), z (cranial), mm.
    cval : float
        Value for points outside the volume.

    Returns
    -------
    (X, Y, Z) float32 ndarray
    """
    axes = [np.asarray(a, float) for a in axes_frame_mm]
    shape = tuple(len(a) for a in axes)
    steps = np.array([a[1] - a[0] if len(a) > 1 else 1.0 for a in axes])
    even = all(len(a) < 2 or np.array_equal(a, a[0] + np.arange(len(a)) * s)
               for a, s in zip(axes, steps, strict=True))
    if cval == 0.0 and even and min(shape) > 0 and not _any_on_faces(vol):
        aff = np.asarray(affine, float)
        inv = np.linalg.inv(aff)
        origin_ras = frame.to_world_mm(np.array([a[0] for a in axes]))
        matrix = inv[:3, :3] @ (steps[:, None] * frame.rotation).T  # grid index -> voxel
        offset = inv[:3, :3] @ origin_ras + inv[:3, 3]
        corners = np.array([[(0, n - 1)[b >> ax & 1] for ax, n in enumerate(shape)]
                            for b in range(8)], float) @ matrix.T + offset
        vshape = np.asarray(vol.shape)
        lo = np.clip(np.floor(corners.min(axis=0)).astype(int) - 1, 0, vshape)
        hi = np.clip(np.floor(corners.max(axis=0)).astype(int) + 3, lo, vshape)
        if np.any(hi <= lo):  # the grid lies outside the volume
            return np.zeros(shape, np.float32)
        block = np.asarray(vol[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]], np.float32)
        return ndi.affine_transform(block, matrix, offset - lo, output_shape=shape,
                                    output=np.float32, order=1, mode="constant", cval=0.0)
    pts = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1)
    return sample_frame_points(vol, affine, frame, pts, cval=cval)


def _any_on_faces(vol: np.ndarray) -> bool:
    """Whether ``vol`` is non-zero anywhere on its six outer faces."""
    return any(np.any(vol[tuple(slice(None) if a != ax else end for a in range(3))])
               for ax in range(3) for end in (0, -1))

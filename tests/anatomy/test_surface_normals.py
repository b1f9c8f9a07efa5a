"""landmarks._surface_normals on the mask's bounding box against its whole-volume definition.

Reference: the 1-voxel Gaussian of the whole frame mask and ``numpy.gradient`` of it at the
boundary voxels (mask minus its erosion), as computed before the crop (2026-12-04).
Tolerance 0: the crop keeps every voxel the values depend on (bit-identical).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from alarscrew.anatomy.landmarks import _surface_normals
from alarscrew.anatomy.s1frame import FrameVolume
from alarscrew.spatial.frame import S1Frame


def _reference(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    sm = ndi.gaussian_filter(mask.astype(np.float32), 1.0)
    idx = np.argwhere(mask & ~ndi.binary_erosion(mask))
    g = np.stack([np.gradient(sm, axis=a)[tuple(idx.T)] for a in range(3)], axis=1)
    return idx, -g / np.maximum(np.linalg.norm(g, axis=1, keepdims=True), 1e-9)


def _fv(mask: np.ndarray) -> FrameVolume:
    frame = S1Frame(np.zeros(3), np.array([1.0, 0, 0]), np.array([0, 1.0, 0]),
                    np.array([0, 0, 1.0]))
    return FrameVolume(mask, *(np.arange(n, dtype=float) for n in mask.shape), frame)


@pytest.mark.parametrize("case", ["blob", "touches_faces", "one_voxel"])
def test_surface_normals_equal_whole_volume(case: str) -> None:
    rng = np.random.default_rng(7)
    shape = (70, 60, 50)
    mask = ndi.gaussian_filter(rng.random(shape), 2.0) > 0.53
    mask[:, :, :12] = False  # a wide empty margin on one side: the crop is smaller
    mask[:8] = False
    if case == "touches_faces":
        mask[0, 10:30, 20:40] = True
        mask[20:40, -1, 15:30] = True
    elif case == "one_voxel":
        mask[:] = False
        mask[30, 20, 25] = True
    idx, n = _surface_normals(_fv(mask))
    ref_idx, ref_n = _reference(mask)
    assert len(ref_idx) > 0
    np.testing.assert_array_equal(idx, ref_idx)
    np.testing.assert_array_equal(n, ref_n)
    assert n.dtype == ref_n.dtype


def test_surface_normals_of_empty_mask() -> None:
    idx, n = _surface_normals(_fv(np.zeros((10, 9, 8), bool)))
    assert idx.shape == (0, 3)
    assert n.shape == (0, 3)

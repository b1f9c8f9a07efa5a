"""MaskSampler's cropped block and frame_volume's sub-box against their whole-grid definitions.

Reference: ``scipy.ndimage.map_coordinates`` on the whole mask as float32 (trilinear,
``mode="constant"``, ``cval=0``) at the same voxel coordinates, and the frame volume sampled
over the whole :data:`~alarscrew.anatomy.s1frame.FRAME_BOX_MM` grid. Tolerance 0: the crop only
skips points whose value is exactly 0 and subtracts a whole-voxel origin.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from alarscrew.anatomy.s1frame import FRAME_BOX_MM, MaskSampler, frame_volume
from alarscrew.spatial.frame import S1Frame, matmul_rows


def _mask_and_affine(touch_edge: bool) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    mask = np.zeros((60, 50, 40), bool)
    i, j, k = np.indices(mask.shape)
    mask |= ((i - 30) / 14.0) ** 2 + ((j - 22) / 9.0) ** 2 + ((k - 20) / 11.0) ** 2 <= 1.0
    mask |= rng.random(mask.shape) > 0.995  # scattered voxels widen the box
    mask[:, :, :3] = False
    if touch_edge:
        mask[0, 10:20, 5:9] = True
    # oblique grid: 1.5 x 2 x 2.5 mm voxels turned 20 degrees about the cranial axis
    c, s = np.cos(np.radians(20.0)), np.sin(np.radians(20.0))
    aff = np.eye(4)
    aff[:3, :3] = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]]) @ np.diag([1.5, 2.0, 2.5])
    aff[:3, 3] = [-40.0, -30.0, -50.0]
    return mask, aff


@pytest.mark.parametrize("touch_edge", [False, True])
def test_sample_equals_whole_grid(touch_edge: bool) -> None:
    mask, aff = _mask_and_affine(touch_edge)
    rng = np.random.default_rng(5)
    # points over and well beyond the grid, plus points on voxel centres and half-voxels
    centres = np.indices(mask.shape).reshape(3, -1).T[::8].astype(float)
    ijk = np.concatenate([rng.uniform(-8, 70, (20000, 3)), centres, centres + 0.5])
    ras = matmul_rows(ijk, aff[:3, :3].T, aff[:3, 3])
    sampler = MaskSampler(mask, aff)
    got = sampler.sample(ras.reshape(-1, 4, 3))
    inv = np.linalg.inv(aff)
    ref = ndi.map_coordinates(mask.astype(np.float32), matmul_rows(ras, inv[:3, :3].T,
                                                                   inv[:3, 3]).T,
                              order=1, mode="constant", cval=0.0)
    assert got.dtype == np.float32
    assert got.shape == (len(ijk) // 4, 4)
    np.testing.assert_array_equal(got.ravel(), ref)
    assert (ref > 0).sum() > 1000  # the test samples the mask, not only its outside


def test_empty_mask_samples_zero() -> None:
    sampler = MaskSampler(np.zeros((5, 6, 7), bool), np.eye(4))
    np.testing.assert_array_equal(sampler.sample(np.array([[2.0, 3.0, 3.0], [9.0, 0, 0]])), 0)


def test_frame_volume_equals_whole_box() -> None:
    mask, aff = _mask_and_affine(False)
    centre = aff[:3, :3] @ np.array([30.0, 22.0, 20.0]) + aff[:3, 3]
    frame = S1Frame.from_axes(centre + np.array([0.0, 0.0, 12.0]), cranial_ras=[0.1, -0.3, 1.0],
                              anterior_ras=[0.0, 1.0, 0.3])
    sampler = MaskSampler(mask, aff)
    fv = frame_volume(sampler, frame)
    axes = [np.arange(lo, hi + 0.5, 1.0) for lo, hi in FRAME_BOX_MM]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1)
    ref = sampler.sample(frame.to_world_mm(grid)) >= 0.5
    assert ref.sum() > 10000
    np.testing.assert_array_equal(fv.mask, ref)


@pytest.mark.parametrize("touch_edge", [False, True])
def test_sample_lattice_equals_sample(touch_edge: bool) -> None:
    # reference: sample() at the lattice's world points, built point by point. The lattice's
    # voxel coordinates are summed in another order (a few ulp, ~1e-14 voxel), so a value may
    # differ where it is that close to a float32 rounding boundary: tolerance 1e-6, and nearly
    # all values must be bit-identical (measured 2026-12-04: 272 of 8.5 M differed on the real
    # 3 mm scan's endplate sections, by at most 7e-12)
    mask, aff = _mask_and_affine(touch_edge)
    sampler = MaskSampler(mask, aff)
    origin = aff[:3, :3] @ np.array([-6.0, -5.0, -4.0]) + aff[:3, 3] + np.array([0.3, -0.2, 0.1])
    c, s = np.cos(np.radians(35.0)), np.sin(np.radians(35.0))
    steps = np.array([[0.7 * c, 0.7 * s, 0.1], [-0.9 * s, 0.9 * c, 0.2], [0.0, -0.3, 1.1]])
    shape = (150, 120, 70)
    a, b, k = np.indices(shape)
    pts = (origin + a[..., None] * steps[0] + b[..., None] * steps[1]
           + k[..., None] * steps[2])
    ref = sampler.sample(pts)
    got = sampler.sample_lattice(origin, steps, shape)
    assert got.dtype == np.float32
    assert got.shape == shape
    np.testing.assert_allclose(got, ref, rtol=0.0, atol=1e-6)
    assert np.mean(got == ref) > 0.999
    # inside and outside the box (the lattice is cut to the box's extent)
    assert (ref > 0).sum() > 10000
    assert (ref == 0).sum() > 10000


def test_sample_lattice_of_empty_mask_is_zero() -> None:
    sampler = MaskSampler(np.zeros((5, 6, 7), bool), np.eye(4))
    got = sampler.sample_lattice(np.zeros(3), np.eye(3), (4, 3, 2))
    assert got.shape == (4, 3, 2)
    assert not got.any()


def test_sample_lattice_flat_lattice() -> None:
    # a zero step (singular lattice matrix): no cut to the box, the same values as sample()
    mask, aff = _mask_and_affine(False)
    sampler = MaskSampler(mask, aff)
    origin = aff[:3, :3] @ np.array([30.0, 22.0, 20.0]) + aff[:3, 3]
    steps = np.array([[0.8, 0.1, 0.0], [0.0, 0.0, 0.0], [0.1, 0.2, 0.9]])
    a, b, k = np.indices((40, 2, 30))
    pts = origin + a[..., None] * steps[0] + b[..., None] * steps[1] + k[..., None] * steps[2]
    got = sampler.sample_lattice(origin, steps, (40, 2, 30))
    np.testing.assert_allclose(got, sampler.sample(pts), rtol=0.0, atol=1e-6)
    assert got.any()

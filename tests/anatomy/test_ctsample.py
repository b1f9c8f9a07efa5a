"""Frame-point sampling on a cropped block (alarscrew.anatomy.ctsample).

Reference: a linear field ``v = 2 i - 3 j + k + 7`` (int16, as a CT) on the voxel grid, which
trilinear interpolation reproduces exactly (to float32 rounding) anywhere inside the volume.
"""

from __future__ import annotations

import numpy as np

from alarscrew.anatomy.ctsample import sample_frame_grid, sample_frame_points
from alarscrew.spatial.frame import S1Frame


def _frame() -> S1Frame:
    cranial = np.array([0.0, np.sin(0.5), np.cos(0.5)])
    anterior = np.array([0.0, np.cos(0.5), -np.sin(0.5)])
    return S1Frame.from_axes(np.array([10.0, 12.0, 9.0]), cranial_ras=cranial,
                             anterior_ras=anterior)


def test_linear_field_exact_inside_and_cval_outside() -> None:
    shape = (20, 24, 18)
    i, j, k = np.indices(shape)
    vol = (2 * i - 3 * j + k + 7).astype(np.int16)
    affine = np.diag([1.5, 1.0, 2.0, 1.0])
    affine[:3, 3] = [-1.0, 2.0, 0.5]
    frame = _frame()
    rng = np.random.default_rng(0)
    ijk_ref = rng.uniform(0.0, np.asarray(shape) - 1.0, size=(7, 5, 3))
    ras = ijk_ref @ affine[:3, :3].T + affine[:3, 3]
    pts = frame.to_frame_mm(ras.reshape(-1, 3)).reshape(7, 5, 3)
    got = sample_frame_points(vol, affine, frame, pts)
    want = 2.0 * ijk_ref[..., 0] - 3.0 * ijk_ref[..., 1] + ijk_ref[..., 2] + 7.0
    assert got.shape == (7, 5)
    np.testing.assert_allclose(got, want, atol=1e-3)
    outside = frame.to_frame_mm(np.array([[-5.0, 2.0, 0.5], [100.0, 100.0, 100.0]]))
    assert np.isnan(sample_frame_points(vol, affine, frame, outside)).all()
    assert (sample_frame_points(vol > 0, affine, frame, outside, cval=0.0) == 0.0).all()


def test_block_equals_whole_volume_interpolation() -> None:
    # reference: scipy's trilinear interpolation of the whole volume as float32 at the same
    # voxel coordinates (tolerance 0: the block only shifts a whole-voxel origin); a random
    # CT-like volume so that no linear identity hides an indexing error; points partly outside
    from scipy import ndimage as ndi

    from alarscrew.spatial.frame import matmul_rows

    rng = np.random.default_rng(1)
    vol = rng.integers(-1000, 1500, size=(30, 26, 22)).astype(np.int16)
    affine = np.diag([0.8, 1.2, 3.0, 1.0])
    affine[:3, 3] = [-4.0, 1.0, -2.0]
    frame = _frame()
    for lo, hi in (((4.0, 3.0, 2.0), (12.0, 20.0, 9.0)), ((-3.0, -3.0, -3.0), (33.0, 29.0, 25.0))):
        ijk = rng.uniform(lo, hi, size=(4000, 3))
        ras = matmul_rows(ijk, affine[:3, :3].T, affine[:3, 3])
        got = sample_frame_points(vol, affine, frame, frame.to_frame_mm(ras))
        ijk_back = matmul_rows(frame.to_world_mm(frame.to_frame_mm(ras)),
                               np.linalg.inv(affine)[:3, :3].T, np.linalg.inv(affine)[:3, 3])
        inside = np.all((ijk_back >= -1e-6) & (ijk_back <= np.asarray(vol.shape) - 1 + 1e-6),
                        axis=1)
        want = np.full(len(ijk), np.nan, np.float32)
        want[inside] = ndi.map_coordinates(vol.astype(np.float32), ijk_back[inside].T, order=1,
                                           mode="nearest")
        np.testing.assert_array_equal(got, want)
        assert np.isfinite(got).sum() > 1000


def _blob(shape: tuple[int, int, int], *, on_face: bool) -> np.ndarray:
    i, j, k = np.indices(shape)
    mask = ((i - 14) / 9.0) ** 2 + ((j - 12) / 7.0) ** 2 + ((k - 11) / 8.0) ** 2 <= 1.0
    if on_face:
        mask[0, 3:8, 4:9] = True
    return mask


def test_frame_grid_equals_frame_points() -> None:
    """sample_frame_grid against sample_frame_points on the grid's points (reference): a mask
    away from the volume's faces (affine_transform path; voxel coordinates summed in another
    order, so tolerance 1e-6 and the >= 0.5 mask identical), a mask on a face and a CT with
    NaN outside (the points path: bit-identical)."""
    shape = (30, 26, 24)
    affine = np.diag([1.5, 1.0, 2.0, 1.0])
    affine[:3, 3] = [-1.0, 2.0, 0.5]
    frame = _frame()
    # a grid reaching beyond the volume on every side
    axes = (np.arange(-40.0, 40.0 + 1e-9, 1.0), np.arange(-30.0, 45.0 + 1e-9, 0.5),
            np.arange(-45.0, 30.0 + 1e-9, 1.0))
    pts = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1)
    mask = _blob(shape, on_face=False)
    got = sample_frame_grid(mask, affine, frame, axes, cval=0.0)
    ref = sample_frame_points(mask, affine, frame, pts, cval=0.0)
    assert got.shape == ref.shape
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, ref, rtol=0.0, atol=1e-6)
    np.testing.assert_array_equal(got >= 0.5, ref >= 0.5)
    assert (ref >= 0.5).sum() > 1000
    on_face = _blob(shape, on_face=True)
    np.testing.assert_array_equal(sample_frame_grid(on_face, affine, frame, axes, cval=0.0),
                                  sample_frame_points(on_face, affine, frame, pts, cval=0.0))
    i, j, k = np.indices(shape)
    hu = (2 * i - 3 * j + k + 7).astype(np.int16)
    np.testing.assert_array_equal(sample_frame_grid(hu, affine, frame, axes),
                                  sample_frame_points(hu, affine, frame, pts))

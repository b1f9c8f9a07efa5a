"""The canonical working grid: axis reordering, block means and their world coordinates.

References are computed independently here: explicit per-block numpy means and the CT affine
applied to the block's voxel centres (exact to 1e-9).
"""

from __future__ import annotations

import numpy as np
import pytest

from alarscrew.anatomy.grid import bounding_box, make_work_grid
from alarscrew.io.image import Image

AFFINES = {
    "ras_1mm": np.diag([1.0, 1.0, 1.0, 1.0]),
    "lps_flipped": np.array([[-0.8, 0, 0, 50.0], [0, -0.8, 0, 20.0], [0, 0, 2.5, -7.0],
                             [0, 0, 0, 1]]),
    "permuted": np.array([[0, 0, -1.0, 5.0], [-0.5, 0, 0, 3.0], [0, 1.0, 0, 7.0],
                          [0, 0, 0, 1]]),
}


@pytest.mark.parametrize("name", list(AFFINES))
def test_block_mean_and_coordinates(name: str) -> None:
    rng = np.random.default_rng(0)
    arr = rng.normal(size=(11, 13, 9)).astype(np.float32)
    img = Image(arr, AFFINES[name])
    g = make_work_grid(img, target_mm=2.0)
    canon = g.to_canon(arr)
    assert canon.shape == g.canon_shape
    np.testing.assert_array_equal(g.from_canon(canon), arr)
    # the canonical affine points its axes to +R, +A, +S
    assert np.all(np.diag(g.canon_affine)[:3] > 0)
    work = g.downsample_mean(canon)
    f = g.factor
    last = np.asarray(work.shape) - 1
    for ijk in [(0, 0, 0), tuple(last), tuple(np.minimum([1, 2, 1], last))]:
        i, j, k = (int(v) for v in ijk)
        block = canon[i * f[0]:(i + 1) * f[0], j * f[1]:(j + 1) * f[1], k * f[2]:(k + 1) * f[2]]
        assert work[i, j, k] == pytest.approx(float(block.mean()), abs=1e-5)
        # world position of the block centre = mean of its voxel centres through the CT affine
        corner = np.array([i * f[0], j * f[1], k * f[2]], float)
        centres = corner + np.stack(np.meshgrid(*[np.arange(n) for n in f], indexing="ij"),
                                    axis=-1).reshape(-1, 3)
        world = (centres @ g.canon_affine[:3, :3].T + g.canon_affine[:3, 3]).mean(axis=0)
        np.testing.assert_allclose(g.ijk_to_ras(np.array([i, j, k])), world, atol=1e-9)
        # and the same point through the original CT affine
        ct_ijk = np.linalg.inv(img.affine) @ np.r_[world, 1.0]
        np.testing.assert_allclose(img.ijk_to_ras(ct_ijk[:3]), world, atol=1e-9)


def test_fraction_and_bounding_box() -> None:
    m = np.zeros((20, 20, 20), bool)
    m[3:9, 4:5, 10:17] = True
    img = Image(m.astype(np.uint8), np.eye(4), is_label=True)
    g = make_work_grid(img, target_mm=2.0)
    frac = g.downsample_fraction(g.to_canon(m))
    np.testing.assert_allclose(frac, g.downsample_mean(g.to_canon(m).astype(np.float32)))
    lo, hi = bounding_box(m)
    np.testing.assert_array_equal(lo, [3, 4, 10])
    np.testing.assert_array_equal(hi, [9, 5, 17])
    assert bounding_box(np.zeros((3, 3, 3), bool)) is None

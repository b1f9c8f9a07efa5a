"""``matmul_rows`` (blocked point transforms) against numpy's one-call product.

Reference: ``pts @ right + offset`` in a single numpy call; the blocked version must give the
same numbers (tolerance 1e-9 mm, far below any voxel; in practice bit-identical) for point
counts on both sides of a block boundary, for any leading shape, and the frame round trip
world -> frame -> world must return the input (1e-9 mm).
"""

from __future__ import annotations

import numpy as np
import pytest

from alarscrew.anatomy.grid import make_work_grid
from alarscrew.io.image import Image
from alarscrew.spatial.frame import MATMUL_BLOCK_ROWS, S1Frame, matmul_rows

B = MATMUL_BLOCK_ROWS


@pytest.mark.parametrize("n", [0, 1, 5, B - 1, B, B + 1, 2 * B + 7])
def test_matches_single_product(n: int) -> None:
    rng = np.random.default_rng(n)
    pts = rng.normal(scale=200.0, size=(n, 3))
    m = rng.normal(size=(3, 3))
    off = rng.normal(scale=50.0, size=3)
    np.testing.assert_allclose(matmul_rows(pts, m.T, off), pts @ m.T + off, rtol=0, atol=1e-9)
    np.testing.assert_allclose(matmul_rows(pts, m), pts @ m, rtol=0, atol=1e-9)


def test_leading_shape_and_int_input() -> None:
    ijk = np.indices((40, 30, 20)).transpose(1, 2, 3, 0)  # int (40, 30, 20, 3), 24000 points
    aff = np.array([[0.0, -0.8, 0, 10], [0.9, 0, 0, -5], [0, 0, 2.5, 30], [0, 0, 0, 1]])
    out = matmul_rows(ijk, aff[:3, :3].T, aff[:3, 3])
    assert out.shape == (40, 30, 20, 3)
    assert out.dtype == np.float64
    np.testing.assert_allclose(out, ijk.astype(float) @ aff[:3, :3].T + aff[:3, 3], atol=1e-9)
    one = matmul_rows(np.array([1, 2, 3]), aff[:3, :3].T, aff[:3, 3])
    np.testing.assert_allclose(one, aff[:3, :3] @ [1, 2, 3] + aff[:3, 3], atol=1e-12)


def test_frame_and_grid_round_trip() -> None:
    frame = S1Frame.from_axes(np.array([3.0, -40.0, 120.0]), cranial_ras=np.array([0.1, 0.3, 1.0]),
                              anterior_ras=np.array([0.0, 1.0, -0.2]))
    rng = np.random.default_rng(0)
    world = rng.uniform(-150, 150, size=(3 * B + 11, 3))
    back = frame.to_world_mm(frame.to_frame_mm(world))
    np.testing.assert_allclose(back, world, rtol=0, atol=1e-9)
    # the frame coordinates are the projections on the axes (definition)
    f = frame.to_frame_mm(world)
    np.testing.assert_allclose(f[:, 2], (world - frame.origin_ras_mm) @ frame.cranial_ras,
                               atol=1e-9)
    aff = np.diag([0.8, 0.8, 1.0, 1.0])
    aff[:3, 3] = [-100.0, -90.0, 40.0]
    grid = make_work_grid(Image(np.zeros((60, 50, 40), np.int16), aff))
    ijk = rng.uniform(0, 20, size=(B + 3, 3))
    np.testing.assert_allclose(grid.ras_to_ijk(grid.ijk_to_ras(ijk)), ijk, rtol=0, atol=1e-9)

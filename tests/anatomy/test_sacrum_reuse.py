"""``isolate_sacrum(previous=...)`` reuses the first pass's markers and elevation exactly.

Reference: the same call without ``previous`` (everything recomputed). The second pass of the
pipeline adds a cranial hint (bone above a plane as L5); with and without reuse the regions,
sacrum, bone and method must be identical (tolerance 0), on the 3 mm phantom (coarse path) and
the 1.5 mm phantom (fine path with the joint-space depth).
"""

from __future__ import annotations

import numpy as np
import pytest

from alarscrew.anatomy.grid import make_work_grid
from alarscrew.anatomy.sacrum import isolate_sacrum
from alarscrew.phantom import make_phantom


@pytest.mark.parametrize("voxel_mm", [3.0, 1.5])
def test_second_pass_reuse_is_identical(voxel_mm: float) -> None:
    ph = make_phantom(voxel_mm=voxel_mm, noise_hu=20.0)
    grid = make_work_grid(ph.ct)
    hu = grid.downsample_mean(grid.to_canon(ph.ct.array))
    resolved = voxel_mm < 2.0
    first = isolate_sacrum(hu, grid, joint_resolved=resolved)
    assert first.prepared is not None
    # a cranial hint as in the pipeline: working voxels 18 mm above the seed
    z_ras = grid.ijk_to_ras(np.indices(hu.shape).reshape(3, -1).T)[:, 2].reshape(hu.shape)
    hint = z_ras > first.seed_ras_mm[2] + 18.0
    fresh = isolate_sacrum(hu, grid, cranial_hint=hint, joint_resolved=resolved)
    reused = isolate_sacrum(hu, grid, cranial_hint=hint, joint_resolved=resolved,
                            previous=first)
    assert reused.prepared is first.prepared
    np.testing.assert_array_equal(reused.regions, fresh.regions)
    np.testing.assert_array_equal(reused.sacrum, fresh.sacrum)
    np.testing.assert_array_equal(reused.bone, fresh.bone)
    assert reused.method == fresh.method
    assert "second pass" in reused.method
    # a previous result from other inputs is not reused
    other = isolate_sacrum(hu + 1.0, grid, cranial_hint=hint, joint_resolved=resolved,
                           previous=first)
    assert other.prepared is not first.prepared

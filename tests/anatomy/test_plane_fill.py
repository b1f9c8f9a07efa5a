"""Slice-wise hole filling of the coarse fill (alarscrew.anatomy.fill) against scipy.

Reference: ``scipy.ndimage.binary_fill_holes`` with the in-plane 4-connected structure, on
random shells with holes, one enclosed ring per plane touching the array's border and a hole
in the first slice; tolerance 0 (the same set, computed by labelling).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from alarscrew.anatomy.fill import _holes_in_planes, _plane_structure


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_holes_in_planes_equal_binary_fill_holes(axis: int) -> None:
    rng = np.random.default_rng(axis)
    blobs = ndi.binary_dilation(rng.random((40, 34, 28)) > 0.99, iterations=3)
    mask = ndi.binary_dilation(rng.random(blobs.shape) > 0.93) & ~ndi.binary_erosion(blobs)
    ring = np.zeros((7, 7), bool)
    ring[0, :] = ring[-1, :] = ring[:, 0] = ring[:, -1] = True
    idx: list[slice | int] = [slice(0, 7)] * 3
    idx[axis] = 0  # a ring in the first plane, against the array's corner
    mask[tuple(idx)] = ring
    want = ndi.binary_fill_holes(mask, structure=_plane_structure(axis)) & ~mask
    got = _holes_in_planes(mask, axis)
    assert want.sum() > 300  # many holes, not only the ring
    assert want[tuple(idx)].sum() == 25  # the first plane's ring encloses its 5 x 5 inside
    np.testing.assert_array_equal(got, want)

"""Bounding-box versions of whole-grid operations give the whole-grid result exactly.

Reference: scipy.ndimage run on the whole array (``distance_transform_edt``,
``binary_fill_holes``) and ``bone_mask``'s definition (hysteresis threshold, components of at
least ``min_volume_mm3``, holes filled) written out on the whole array; compared for equality
(tolerance 0) on random blobs with anisotropic voxels, in the middle of the array and touching
its edges, where the box is clipped.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi
from skimage.filters import apply_hysteresis_threshold

from alarscrew.anatomy.grid import bounding_box, padded_box
from alarscrew.anatomy.sacrum import bone_mask, edt_in_box, fill_holes_in_box

SP = np.array([0.8, 1.1, 2.5])


def _blobs(seed: int, *, at_edge: bool) -> np.ndarray:
    rng = np.random.default_rng(seed)
    field = ndi.gaussian_filter(rng.normal(size=(40, 36, 30)), 2.0)
    mask = field > 0.05
    if not at_edge:
        mask[:6] = mask[-5:] = False
        mask[:, :4] = mask[:, -7:] = False
        mask[:, :, :3] = mask[:, :, -3:] = False
    else:
        mask[:, :, :3] = False  # touches five faces, not the sixth
    return mask


@pytest.mark.parametrize("at_edge", [False, True])
@pytest.mark.parametrize("seed", [0, 1])
def test_edt_and_fill_holes_equal_whole_grid(seed: int, at_edge: bool) -> None:
    mask = _blobs(seed, at_edge=at_edge)
    # a closed shell with a cavity, so that fill_holes has something to fill
    shell = np.zeros_like(mask)
    shell[10:20, 10:20, 10:20] = True
    shell[12:18, 12:18, 12:18] = False
    mask |= shell
    np.testing.assert_array_equal(edt_in_box(mask, SP),
                                  ndi.distance_transform_edt(mask, sampling=SP))
    filled = fill_holes_in_box(mask)
    np.testing.assert_array_equal(filled, ndi.binary_fill_holes(mask))
    assert filled[15, 15, 15]


def test_empty_mask() -> None:
    empty = np.zeros((8, 9, 10), bool)
    assert padded_box(empty, 2) is None
    assert not edt_in_box(empty, SP).any()
    assert not fill_holes_in_box(empty).any()


def test_padded_box_clipped() -> None:
    mask = np.zeros((10, 10, 10), bool)
    mask[0, 4, 8:] = True
    assert padded_box(mask, 2) == (slice(0, 3), slice(2, 7), slice(6, 10))
    lo, hi = bounding_box(mask)  # type: ignore[misc]
    assert lo.tolist() == [0, 4, 8]
    assert hi.tolist() == [1, 5, 10]


@pytest.mark.parametrize("at_edge", [False, True])
def test_bone_mask_equals_whole_grid_definition(at_edge: bool) -> None:
    rng = np.random.default_rng(3)
    hu = np.where(_blobs(4, at_edge=at_edge), 400.0, -50.0) + rng.normal(0, 80, (40, 36, 30))
    hu[18:21, 3:6, 20:23] = 700.0  # a small bright speck (removed unless at least 50 mm3)
    ref = apply_hysteresis_threshold(hu, 150.0, 300.0)
    lab, _ = ndi.label(ref)
    sizes = np.bincount(lab.ravel()) * float(np.prod(SP))
    keep = sizes >= 50.0
    keep[0] = False
    ref = ndi.binary_fill_holes(keep[lab])
    got = bone_mask(hu, SP, min_volume_mm3=50.0, thresholds_hu=(150.0, 300.0))
    np.testing.assert_array_equal(got, ref)
    assert got.any()

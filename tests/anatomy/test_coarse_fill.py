"""fill_coarse_sacrum on an analytic 3 mm box model (known marrow, canal and iliac marrow).

Model (RAS mm, 3 mm voxels, x left-right): a sacral shell of cortex only, as thresholds leave it
at 3 mm with fatty marrow: an anterior plate (y 27-30), a solid body (|x| < 15), a posterior
plate with a 15 mm gap on each side (open dorsal cortex), and top/bottom plates; two ilia, each
a closed cortical ring with its own marrow, 3 mm lateral of the alae (the SI joint gap); a canal
(|x| < 6, y 6-12) running through the whole height, open at both ends.
Expected, by construction: the alar marrow (15 < |x| < 42, 3 < y < 27) becomes sacrum; no
iliac voxel and no iliac marrow does; the canal stays open.
"""

from __future__ import annotations

import numpy as np

from alarscrew.anatomy.fill import fill_coarse_sacrum, redecide_joint
from alarscrew.anatomy.regions import ILIUM_LEFT, ILIUM_RIGHT, SACRUM

SP = np.array([3.0, 3.0, 3.0])


def _model() -> tuple[np.ndarray, dict[str, np.ndarray]]:
    x = np.arange(-75.0, 76.0, 3.0)[:, None, None]
    y = np.arange(-15.0, 46.0, 3.0)[None, :, None]
    z = np.arange(-15.0, 46.0, 3.0)[None, None, :]
    shape = np.broadcast_shapes(x.shape, y.shape, z.shape)
    inside = (np.abs(x) < 42) & (y > 0) & (y < 30) & (z > 0) & (z < 30)
    cortex = inside & ((y >= 27) | (np.abs(x) >= 39) | (z <= 3) | (z >= 27))
    posterior = inside & (y <= 3) & ((np.abs(x) < 15) | (np.abs(x) > 30))
    body = inside & (np.abs(x) < 15)
    canal = (np.abs(x) < 6) & (y > 6) & (y < 12)
    sac = np.broadcast_to((cortex | posterior | body) & ~canal, shape).copy()
    marrow = np.broadcast_to(inside & ~sac & ~canal & (np.abs(x) > 15) & (np.abs(x) < 39)
                             & (y > 3) & (y < 27) & (z > 3) & (z < 27), shape).copy()
    ring = (np.abs(x) > 44) & (np.abs(x) < 60) & (y > -6) & (y < 33) & (z > -6) & (z < 36)
    ring_in = (np.abs(x) > 47) & (np.abs(x) < 57) & (y > -3) & (y < 30) & (z > -6) & (z < 36)
    il_shell = np.broadcast_to(ring & ~ring_in, shape)
    il_marrow = np.broadcast_to(ring_in, shape)
    regions = np.zeros(shape, np.int32)
    regions[sac] = SACRUM
    regions[il_shell & np.broadcast_to(x < 0, shape)] = ILIUM_LEFT
    regions[il_shell & np.broadcast_to(x > 0, shape)] = ILIUM_RIGHT
    return regions, {"marrow": marrow, "il_marrow": il_marrow,
                     "canal": np.broadcast_to(canal & inside, shape),
                     "ilia": il_shell}


def test_alar_marrow_filled_ilia_and_canal_left_out() -> None:
    regions, truth = _model()
    sac = regions == SACRUM
    out = fill_coarse_sacrum(sac, regions, SP)
    assert (out >= sac).all()  # never removes the watershed sacrum
    assert out[truth["marrow"]].mean() >= 0.95
    assert not out[truth["ilia"]].any()
    assert not out[truth["il_marrow"]].any()
    assert not out[truth["canal"]].any()


def test_input_not_modified_and_empty_passes_through() -> None:
    regions, _ = _model()
    sac = regions == SACRUM
    before = sac.copy()
    fill_coarse_sacrum(sac, regions, SP)
    np.testing.assert_array_equal(sac, before)
    empty = np.zeros_like(sac)
    assert not fill_coarse_sacrum(empty, regions, SP).any()


def test_joint_gap_keeps_the_marrow_up_to_the_sacroiliac_joint() -> None:
    """The lateral alar cortex went to the ilium (as the coarse watershed does where the joint
    is not resolved and the marrow is below the bone threshold): the marrow between the body
    (|x| < 15 mm) and that plate (|x| = 39 mm) is sacral. By construction: with
    ``joint_gap_mm=3`` every marrow voxel more than 3 mm from the iliac region (|x| <= 33 mm)
    is filled, and the 3 mm layer at the plate (|x| = 36 mm, the joint) and all iliac voxels
    stay out."""
    regions, truth = _model()
    x = np.broadcast_to(np.arange(-75.0, 76.0, 3.0)[:, None, None], regions.shape)
    plate = (regions == SACRUM) & (np.abs(x) >= 39.0) & truth["marrow"].any(axis=0)[None]
    regions[plate & (x < 0)] = ILIUM_LEFT
    regions[plate & (x > 0)] = ILIUM_RIGHT
    sac = regions == SACRUM
    inner = truth["marrow"] & (np.abs(x) <= 33.0)
    joint = truth["marrow"] & (np.abs(x) > 33.0)
    out = fill_coarse_sacrum(sac, regions, SP, joint_gap_mm=3.0)
    assert (out >= sac).all()
    assert out[inner].mean() >= 0.95
    assert not out[joint].any()
    assert not out[np.isin(regions, (ILIUM_LEFT, ILIUM_RIGHT))].any()
    assert not out[truth["il_marrow"]].any()
    assert not out[truth["canal"]].any()


def _hu(regions: np.ndarray, truth: dict[str, np.ndarray]) -> np.ndarray:
    """HU of the box model as a coarse CT shows it with fatty marrow: soft tissue and alar
    marrow 40, sacral cortex 400, iliac cortex 600, iliac marrow 150, canal 0; the 3 mm
    joint voxel between the plates (background) is left at 150 by partial volume."""
    hu = np.full(regions.shape, 40.0, np.float32)
    hu[regions == SACRUM] = 400.0
    hu[truth["ilia"]] = 600.0
    hu[truth["il_marrow"]] = 150.0
    hu[truth["canal"]] = 0.0
    x = np.broadcast_to(np.arange(-75.0, 76.0, 3.0)[:, None, None], regions.shape)
    hu[(np.abs(x) == 42.0) & truth["marrow"].any(axis=0)[None]] = 150.0
    return hu


def test_joint_redecided_on_the_ct_returns_the_lateral_alar_cortex() -> None:
    """As in the joint-gap test, the lateral alar cortex (|x| = 39 mm) went to the ilium.
    With the CT (``hu``), the boundary is re-decided on the joint-space depth: the 3 mm joint
    voxel (|x| = 42 mm, 150 HU between plates of 400 and 600 HU, beside the alar marrow) is
    the seam, so by construction the plate is sacrum again and the joint voxel, the iliac
    cortex and marrow and the canal are not; the marrow (below the bone threshold: no
    watershed region) is sacral as without ``hu``: beyond 3 mm of the iliac region the
    watershed left (|x| <= 33 mm), not in the 3 mm layer next to it (|x| = 36 mm)."""
    regions, truth = _model()
    hu = _hu(regions, truth)
    x = np.broadcast_to(np.arange(-75.0, 76.0, 3.0)[:, None, None], regions.shape)
    plate = (regions == SACRUM) & (np.abs(x) >= 39.0) & truth["marrow"].any(axis=0)[None]
    regions[plate & (x < 0)] = ILIUM_LEFT
    regions[plate & (x > 0)] = ILIUM_RIGHT
    sac = regions == SACRUM
    out = fill_coarse_sacrum(sac, regions, SP, joint_gap_mm=3.0, hu=hu)
    assert (out >= sac).all()
    assert out[plate].all()
    assert out[truth["marrow"] & (np.abs(x) <= 33.0)].mean() >= 0.95
    assert not out[truth["marrow"] & (np.abs(x) > 33.0)].any()
    assert not out[np.abs(x) == 42.0].any()
    assert not out[truth["ilia"]].any()
    assert not out[truth["il_marrow"]].any()
    assert not out[truth["canal"]].any()


def test_redecide_joint_never_adds_outside_the_two_structures() -> None:
    """redecide_joint returns a subset of sacral | ilia; without ilia it is the identity."""
    regions, truth = _model()
    hu = _hu(regions, truth)
    sac = regions == SACRUM
    ilia = truth["ilia"] | truth["il_marrow"]
    out = redecide_joint(sac, ilia, hu, SP)
    assert not (out & ~(sac | ilia)).any()
    np.testing.assert_array_equal(redecide_joint(sac, np.zeros_like(sac), hu, SP), sac)


def test_lateral_axial_holes_open_through_a_leak_are_alar_marrow() -> None:
    """The posterior plate is closed (the alar marrow is enclosed in every axial slice) and
    the top plate has a leak over the left ala (15 < -x < 39 mm, one slice): the left alar
    marrow is an axial hole open in 3D, like the canal. Without ``dx_mm`` it is left out;
    with it (holes open in 3D kept open only within ALA_MEDIAL_MM = 20 mm of the midline)
    it is filled lateral of 20 mm (by construction; the column at x = -18 mm stays open), and
    the canal (|x| < 6 mm) stays open either way."""
    regions, truth = _model()
    x = np.broadcast_to(np.arange(-75.0, 76.0, 3.0)[:, None, None], regions.shape)
    y = np.broadcast_to(np.arange(-15.0, 46.0, 3.0)[None, :, None], regions.shape)
    z = np.broadcast_to(np.arange(-15.0, 46.0, 3.0)[None, None, :], regions.shape)
    inside = (np.abs(x) < 42) & (y > 0) & (y < 30) & (z > 0) & (z < 30)
    regions[inside & (y <= 3) & ~truth["canal"]] = SACRUM
    leak = (x < -15) & (x > -39) & (y > 3) & (y < 27) & (z == 27.0)
    regions[leak] = 0
    sac = regions == SACRUM
    left = truth["marrow"] & (x < -20.0) & (z < 27)
    assert fill_coarse_sacrum(sac, regions, SP)[left].mean() < 0.5
    dx = np.arange(-75.0, 76.0, 3.0)
    out = fill_coarse_sacrum(sac, regions, SP, dx_mm=dx)
    assert out[left].mean() >= 0.95
    assert not out[truth["canal"]].any()
    assert not out[truth["il_marrow"]].any()

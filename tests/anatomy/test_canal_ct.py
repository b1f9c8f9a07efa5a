"""The S1 canal and pedicles refined from CT wall profiles (alarscrew.anatomy.canal).

Provenance of the references:
- analytic canal: a CT built here (identity S1 frame = world) of a bone block (200 HU marrow)
  with a rectangular channel along z (epidural fat, -80 HU) lined by a 1.2 mm cortex of
  850 HU, 3 x 3 supersampled in-plane per voxel for partial volume (tissue values of
  ``alarscrew.phantom.HU``). The channel's walls, centre and width are known exactly; the
  pedicles follow from the rule in the module docstring (wall + 7 mm, midway in AP between
  the canal centre and the anterior wall).
- phantom: ``make_phantom(...).truth`` (canal (0, -26, -10) and pedicles (+-19, -22, -10)
  in the S1 frame, _anatomy.py), CT-only ``analyze_anatomy`` then :func:`refine_canal`.

Tolerances: analytic, see test_channel_centre_and_pedicles (at 3 mm voxels the 1.2 mm cortex
makes the interpolated edge depend on the grid phase by up to 2.3 mm). Phantom, 1.5 mm
for canal and pedicles (issue 3 asks 2 mm): measured after refinement at 3 mm neutral 0.83 /
1.00 / 0.83 mm and at 1.5 mm with 20 deg pelvic tilt 0.70 / 0.94 / 0.98 mm (before, mask
only: 3.2 / 3.1 / 3.1 and 1.2 / 2.3 / 1.8 mm). The residual 0.7 mm in AP is definitional:
the CT canal runs from the body's posterior wall (y = -16) to the roof (-34.5), the
phantom's canal cylinder from -17.5.
"""

from __future__ import annotations

import numpy as np
import pytest

from alarscrew.anatomy import analyze_anatomy
from alarscrew.anatomy.canal import canal_walls, refine_canal
from alarscrew.anatomy.landmarks import PEDICLE_HALF_WIDTH_MM, PEDICLE_LEVEL_MM
from alarscrew.anatomy.model import Landmark
from alarscrew.errors import GeometryError
from alarscrew.phantom import make_phantom
from alarscrew.spatial.frame import S1Frame

FRAME = S1Frame(np.zeros(3), np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0]),
                np.array([0.0, 0.0, 1.0]))
#: Analytic channel: centre (frame mm) and half-width (x) / half-depth (y).
CANAL_XY_MM = np.array([1.3, -25.4])
HALF_X_MM, HALF_Y_MM = 12.5, 8.5


def _channel_ct(voxel_mm: float, *, centre_xy_mm: np.ndarray = CANAL_XY_MM,
                with_canal: bool = True, noise_hu: float = 20.0
                ) -> tuple[np.ndarray, np.ndarray]:
    """(array, affine) of the analytic channel CT on a fixed grid (80 x 80 x 30 mm)."""
    n_xy, n_z = round(80.0 / voxel_mm), round(30.0 / voxel_mm)
    origin = np.array([-40.0, -66.0, PEDICLE_LEVEL_MM - 15.0])
    ii, jj = np.meshgrid(np.arange(n_xy), np.arange(n_xy), indexing="ij")
    hu2d = np.zeros((n_xy, n_xy))
    sub = (np.arange(3) - 1.0) / 3.0 * voxel_mm
    for dx in sub:
        for dy in sub:
            x = origin[0] + ii * voxel_mm + dx - centre_xy_mm[0]
            y = origin[1] + jj * voxel_mm + dy - centre_xy_mm[1]
            # signed distance outside the rectangular channel (exact along the axes)
            d = np.maximum(np.abs(x) - HALF_X_MM, np.abs(y) - HALF_Y_MM)
            hu = np.full(d.shape, 200.0)
            if with_canal:
                hu[d < 0.0] = -80.0
                hu[(d >= 0.0) & (d < 1.2)] = 850.0
            hu2d += hu
    hu3d = np.repeat((hu2d / 9.0)[:, :, None], n_z, axis=2)
    hu3d += np.random.default_rng(1).normal(0.0, noise_hu, hu3d.shape)
    affine = np.diag([voxel_mm, voxel_mm, voxel_mm, 1.0])
    affine[:3, 3] = origin
    return hu3d, affine


def _mask_landmarks(centre_xy_mm: np.ndarray) -> dict[str, Landmark]:
    c = np.array([*centre_xy_mm, PEDICLE_LEVEL_MM])
    dx = np.array([19.0, 0.0, 0.0])
    return {"canal": Landmark("canal", c, 0.8, "mask"),
            "left.pedicle": Landmark("left.pedicle", c - dx, 0.48, "mask"),
            "right.pedicle": Landmark("right.pedicle", c + dx, 0.48, "mask")}


@pytest.mark.parametrize(("voxel_mm", "canal_tol_mm", "pedicle_tol_mm"),
                         [(1.0, 0.3, 0.5), (2.0, 0.8, 1.2), (3.0, 1.3, 2.5)])
@pytest.mark.parametrize(("shift_mm", "start_offset_mm"),
                         [(0.0, (0.0, 0.0)), (0.5, (2.0, 5.5)), (1.5, (-1.5, -4.0))])
def test_channel_centre_and_pedicles(voxel_mm: float, canal_tol_mm: float,
                                     pedicle_tol_mm: float, shift_mm: float,
                                     start_offset_mm: tuple[float, float]) -> None:
    """The walls' half-level edges give the channel's centre and the pedicle rule's points.

    ``shift_mm`` moves the channel against the voxel grid (partial-volume phase); the mask
    point starts up to 5.5 mm off. At 3 mm the 1.2 mm cortex is a third of a voxel and the
    interpolated edge depends on the phase (a voxel two-thirds canal and one-third cortex
    already reads about 230 HU, so the half level falls in the canal): measured centre errors
    up to 1.2 mm and wall (pedicle) errors up to 2.3 mm; at 2 mm 0.5 / 1.0 mm; at 1 mm
    0.1 / 0.4 mm. This is a limit of 3 mm sampling, not of the phantom.
    """
    centre = CANAL_XY_MM + shift_mm * np.array([1.0, 0.7])
    hu, affine = _channel_ct(voxel_mm, centre_xy_mm=centre)
    lms = _mask_landmarks(centre + np.asarray(start_offset_mm))
    out = refine_canal(hu, affine, FRAME, lms)
    canal = out["canal"]
    assert canal.method.startswith("CT profiles"), canal.method
    np.testing.assert_allclose(canal.xyz_ras_mm, [*centre, PEDICLE_LEVEL_MM], atol=canal_tol_mm)
    body_y = centre[1] + HALF_Y_MM
    for side, s in (("left", -1.0), ("right", 1.0)):
        expected = [centre[0] + s * (HALF_X_MM + PEDICLE_HALF_WIDTH_MM),
                    0.5 * (centre[1] + body_y), PEDICLE_LEVEL_MM]
        np.testing.assert_allclose(out[f"{side}.pedicle"].xyz_ras_mm, expected,
                                   atol=pedicle_tol_mm)
    # the input is not modified
    assert lms["canal"].method == "mask"


def test_wall_edge_of_a_step_without_cortex() -> None:
    """A faint wall (a step from -80 to 250 HU, no cortical peak) has its edge at the step.

    The sampled channel covers s = -7.75 ... 9.75 mm, so its steps lie midway to the next
    samples, at -7.875 and 9.875 mm; the blur is symmetric, so the half level is the step.
    """
    s_mm = np.arange(-20.0, 20.0 + 1e-9, 0.25)
    step = np.where(np.abs(s_mm - 1.0) < 9.0, -80.0, 250.0)
    kernel = np.exp(-0.5 * (np.arange(-12, 13) * 0.25 / 1.2) ** 2)
    blurred = np.convolve(np.pad(step, 12, mode="edge"), kernel / kernel.sum(), mode="valid")
    walls = canal_walls(s_mm, np.tile(blurred, (9, 1)), voxel_mm=3.0)
    assert walls.ok
    assert walls.low_mm == pytest.approx(-7.875, abs=0.05)
    assert walls.high_mm == pytest.approx(9.875, abs=0.05)


def test_no_canal_keeps_the_mask_points_with_lower_confidence() -> None:
    hu, affine = _channel_ct(3.0, with_canal=False)
    lms = _mask_landmarks(CANAL_XY_MM)
    out = refine_canal(hu, affine, FRAME, lms)
    for name, lm in lms.items():
        np.testing.assert_allclose(out[name].xyz_ras_mm, lm.xyz_ras_mm)
        assert out[name].confidence < lm.confidence
        assert "kept: no clear canal walls" in out[name].method


def test_supplied_or_missing_canal_is_left_alone() -> None:
    hu, affine = _channel_ct(3.0)
    lm = Landmark("canal", np.array([0.0, -20.0, -10.0]), 1.0, "user", supplied=True)
    assert refine_canal(hu, affine, FRAME, {"canal": lm}) == {"canal": lm}
    assert refine_canal(hu, affine, FRAME, {}) == {}


def test_bad_geometry_is_refused() -> None:
    with pytest.raises(GeometryError, match="3D CT array"):
        refine_canal(np.zeros((4, 4)), np.eye(4), FRAME, {})


@pytest.fixture(scope="module", params=[{"voxel_mm": 3.0},
                                        {"voxel_mm": 1.5, "pelvic_tilt_deg": 20.0}],
                ids=["3mm", "1.5mm-tilt20"])
def phantom_run(request: pytest.FixtureRequest) -> tuple[dict, dict[str, Landmark]]:
    ph = make_phantom(**request.param)
    an = analyze_anatomy(ph.ct)
    return ph.truth, refine_canal(ph.ct.array, ph.ct.affine, an.frame, an.landmarks)


@pytest.mark.parametrize("name", ["canal", "left.pedicle", "right.pedicle"])
def test_phantom_canal_and_pedicles_within_tolerance(
        phantom_run: tuple[dict, dict[str, Landmark]], name: str) -> None:
    truth, lms = phantom_run
    err_mm = float(np.linalg.norm(lms[name].xyz_ras_mm - np.asarray(truth["landmarks"][name])))
    assert err_mm <= 1.5, (name, err_mm, lms[name].method)
    assert lms[name].method.startswith("CT"), lms[name].method

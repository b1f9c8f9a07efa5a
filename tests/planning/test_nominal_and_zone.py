"""The two readings of the paper's 30/45 trajectory and the optional ala tip zone.

References
----------
- Fang et al., BMC Musculoskeletal Disorders 2022, Methods: "30 degrees lateral and 45 degrees
  inferior"; the reference plane of "inferior" is not stated (docs/angles.md).
- Expected directions below are hand-computed from
  ``d = cos(s) (cos(t) anterior + sin(t) lateral) - sin(s) cranial`` with t = 30, s = 45:
  in the scanner frame (axial reading) d = (+-0.35355, 0.61237, -0.70711) whatever the
  sacral slope; in an S1 frame tilted by a sacral slope of 50 deg (cranial = (0, sin 50,
  cos 50), anterior = (0, cos 50, -sin 50)) d = (+-0.35355, -0.14805, -0.92362): pointing
  posteriorly as well as caudally.
"""

from __future__ import annotations

import numpy as np
import pytest

from alarscrew.errors import InputError, NoSafeTrajectoryError
from alarscrew.planning.plan import (
    NOMINAL_READINGS,
    ala_zone_context,
    nominal_direction,
    optimal_trajectory,
    plan_side,
)
from alarscrew.planning.screw import SafetySettings
from alarscrew.planning.search import AngleGrid, entry_candidates, optimize_side
from alarscrew.spatial.frame import S1Frame, scanner_angles_deg, screw_angles_deg
from tests.planning.phantoms import context_from_mask, grid
from tests.planning.test_search import exhaustive

SLOPE = np.radians(50.0)
SLOPED = S1Frame.from_axes(np.zeros(3), cranial_ras=[0, np.sin(SLOPE), np.cos(SLOPE)],
                           anterior_ras=[0, 1.0, 0])


@pytest.mark.parametrize(("side", "sign"), [("left", -1.0), ("right", 1.0)])
def test_nominal_readings_hand_computed(side, sign):
    d_axial = nominal_direction(SLOPED, side, "nominal_axial")
    d_frame = nominal_direction(SLOPED, side, "nominal")
    # hand-computed (module docstring), 1e-5
    assert d_axial == pytest.approx([sign * 0.35355, 0.61237, -0.70711], abs=1e-5)
    assert d_frame == pytest.approx([sign * 0.35355, -0.14805, -0.92362], abs=1e-5)
    # each reading is 30/45 in its own frame (alarscrew.spatial.frame), to round-off
    assert np.array(scanner_angles_deg(d_axial, side)) == pytest.approx([30.0, 45.0], abs=1e-9)
    assert np.array(screw_angles_deg(d_frame, SLOPED, side)) == pytest.approx([30.0, 45.0],
                                                                              abs=1e-9)
    # the axial reading lies close to the sloped endplate: sagittal = -asin(d . cranial)
    _, sag = screw_angles_deg(d_axial, SLOPED, side)
    expect = -np.degrees(np.arcsin(0.61237 * np.sin(SLOPE) - 0.70711 * np.cos(SLOPE)))
    assert float(sag) == pytest.approx(expect, abs=1e-3)


def test_nominal_reading_unknown():
    with pytest.raises(InputError, match="nominal reading"):
        nominal_direction(SLOPED, "left", "endplate")


def column_case():
    """A dorsal 'lateral mass' column, 20 mm deep (y 0..20), 20 mm wide, from z = 5 down to -80.

    Identity S1 frame (anterior +y, cranial +z); entry on the dorsal face at the origin; the
    right s1_foramen landmark at z = -20. For a 7 mm screw with a 1 mm margin (4.5 mm
    clearance) and transverse 0, the axis must keep y <= 15.5 and, in the ala zone,
    z >= -15.5. Longest safe axis:

    - whole cone: L cos(s) <= 15.5, best at the steepest admissible angle. The insertion
      ramp (SafetySettings: clearance 4.5 (d - 1) / 9 at depth d in 1-10 mm) against the
      dorsal face y = 0 needs d cos(s) >= 0.5 (d - 1), binding at d = 10: cos(s) >= 0.45,
      s <= 63.26 deg, i.e. 63.0 on the 0.5-degree grid: L = 15.5 / cos(63 deg) = 34.142 mm;
    - ala zone: also L sin(s) <= 15.5, best where both bind, s = 45 deg:
      L = 15.5 * sqrt(2) = 21.920 mm.
    """
    aff, xyz = grid((60, 60, 120), origin=(-29.5, -19.5, -99.5))
    x, y, z = xyz[..., 0], xyz[..., 1], xyz[..., 2]
    mask = (np.abs(x) < 10) & (y > 0) & (y < 20) & (z > -80) & (z < 5)
    lms = {"right.entry": np.zeros(3), "right.s1_foramen": np.array([0.0, -5.0, -20.0])}
    return context_from_mask(mask, aff, landmarks=lms)


def test_ala_zone_known_answer():
    ctx = column_case()
    st = SafetySettings()
    g = AngleGrid(np.array([0.0]), np.round(np.arange(0.0, 75.0 + 1e-9, 0.5), 6))
    entries = np.zeros((1, 3))
    free = optimize_side(ctx, "right", entries, diameter_mm=7.0, settings=st, grid=g)
    assert free.sagittal_deg == 63.0
    assert free.safe_length_mm == pytest.approx(15.5 / np.cos(np.radians(63.0)), abs=0.01)
    zone = ala_zone_context(ctx, "right")
    res = optimize_side(zone, "right", entries, diameter_mm=7.0, settings=st, grid=g)
    assert res.sagittal_deg == 45.0
    # analytic 21.920 mm. Both limits bind at the tip, where the field is the minimum of two
    # planes: its trilinear interpolant lies below the true minimum there (the minimum is
    # concave), by at most a quarter voxel (0.25 mm on a 1 mm grid), and the clearance falls
    # at sin(45 deg) per mm along the axis, so the planner may be short by up to
    # 0.25 / 0.707 = 0.354 mm, never long (conservative).
    expect = 15.5 * np.sqrt(2.0)
    assert expect - 0.36 <= res.safe_length_mm <= expect + 0.01
    # the zone leaves the bone term alone: cranial to the plane it equals the clearance
    p = np.array([[0.0, 10.0, -5.0]])
    assert zone.clearance.sample(p) == pytest.approx(ctx.clearance.sample(p), abs=1e-9)
    assert zone.clearance.sample(np.array([[0.0, 10.0, -30.0]]))[0] == pytest.approx(-10.0)


def test_ala_zone_branch_and_bound_equals_exhaustive():
    """The zone's plane term keeps the pruning bound valid: same optimum as exhaustive."""
    ctx = column_case()
    zone = ala_zone_context(ctx, "right")
    st = SafetySettings()
    g = AngleGrid.regular((0, 60), (0, 75), 1.5)
    entries = entry_candidates(zone, "right", np.array([0.0, -3.0, 0.0]), radius_mm=2.0)
    res = optimize_side(zone, "right", entries, diameter_mm=7.0, settings=st, grid=g)
    lengths, clears = exhaustive(zone, "right", entries, g, 7.0, st)
    assert res.safe_length_mm == pytest.approx(lengths.max(), abs=1e-6)
    best = lengths >= lengths.max() - 1e-6
    assert res.clearance_mm == pytest.approx(clears[best].max(), abs=1e-6)
    assert best[res.entry_index, res.sagittal_index, res.transverse_index]


def test_ala_zone_needs_foramen_landmark_and_valid_name():
    ctx = column_case()
    bare = context_from_mask(np.asarray(ctx.ct.array) > 100, ctx.ct.affine,
                             landmarks={"right.entry": np.zeros(3)})
    with pytest.raises(NoSafeTrajectoryError, match="s1_foramen"):
        optimal_trajectory(bare, "right", tip_zone="ala")
    with pytest.raises(InputError, match="tip_zone"):
        optimal_trajectory(ctx, "right", tip_zone="caudal")
    out = plan_side(bare, "right", tip_zone="ala", grid=AngleGrid.regular((0, 60), (0, 75), 3))
    assert out["status"] == "refused"
    assert "s1_foramen" in out["reason"]
    assert out["nominal"] is not None
    assert out["nominal_axial"] is not None


def test_plan_side_carries_both_readings():
    ctx = column_case()
    out = plan_side(ctx, "right", grid=AngleGrid.regular((0, 60), (0, 75), 3))
    for kind in NOMINAL_READINGS:
        sc = out[kind]
        assert sc["reading"] == NOMINAL_READINGS[kind]
        assert sc["entry_ras_mm"] == [0.0, 0.0, 0.0]
        assert sc["screw_length_mm"] == 40.0
    assert out["nominal"]["transverse_angle_deg"] == pytest.approx(30.0, abs=1e-6)
    assert out["nominal_axial"]["scanner_transverse_angle_deg"] == pytest.approx(30.0, abs=1e-6)
    assert out["nominal_axial"]["scanner_sagittal_angle_deg"] == pytest.approx(45.0, abs=1e-6)
    assert out["optimal"]["search"]["tip_zone"] == "any"


def test_entry_warning_lateral_of_pedicle():
    """Offset measured along the side's lateral axis (S1 frame): 12 mm passes, 12.5 warns."""
    from dataclasses import replace

    ctx = column_case()
    ok = replace(ctx, landmarks={**ctx.landmarks, "right.pedicle": np.array([-12.0, 5.0, 0.0])})
    assert plan_side(ok, "right", grid=AngleGrid.regular((0, 60), (0, 75), 3))["warnings"] == []
    far = replace(ctx, landmarks={**ctx.landmarks, "right.pedicle": np.array([-12.5, 5.0, 0.0])})
    w = plan_side(far, "right", grid=AngleGrid.regular((0, 60), (0, 75), 3))["warnings"]
    assert len(w) == 1
    assert "12.5 mm lateral of the right.pedicle" in w[0]

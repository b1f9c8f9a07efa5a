"""Full bilateral plans on the synthetic phantom (exact frame, landmarks and body loss)."""

from __future__ import annotations

import numpy as np
import pytest

from alarscrew.errors import NoSafeTrajectoryError
from alarscrew.phantom import LESION_LABEL, make_phantom
from alarscrew.planning.catalog import ScrewCatalog
from alarscrew.planning.plan import (
    context_from_anatomy,
    make_plan,
    optimal_trajectory,
    plan_from_anatomy,
    plan_to_json,
    s1_body_model_mask,
)
from alarscrew.spatial.frame import S1Frame
from tests.planning.phantom_anatomy import anatomy_from_phantom, s1_body_mask


@pytest.fixture(scope="module")
def destroyed():
    """S1 body 60 % destroyed at the pedicle level (paper's indication: > 50 %)."""
    ph = make_phantom(voxel_mm=1.5, noise_hu=0.0, body_destruction_percent=60.0)
    anat = anatomy_from_phantom(ph)
    return ph, anat, context_from_anatomy(anat)


def test_plan_is_safe_deterministic_and_indicated(destroyed):
    ph, anat, ctx = destroyed
    plan = make_plan(ctx, body_loss=anat.body_loss, levels=1)
    again = plan_from_anatomy(anat, levels=1)
    assert plan_to_json(plan) == plan_to_json(again)  # byte-identical, fields rebuilt
    assert plan["body_loss_percent"] == pytest.approx(60.0, abs=0.5)
    crit = {c["criterion"]: c["met"] for c in plan["decision"]["criteria"]}
    assert crit["S1 body loss > 50 %"] is True
    assert crit["1-2 levels fused to the sacrum"] is True
    lab = np.asarray(ph.labels.array)
    inv = np.linalg.inv(ph.ct.affine)
    bone = np.isin(lab, [25, 26])  # lesion excluded: destroyed bone holds nothing
    for side in ("left", "right"):
        s = plan["sides"][side]
        assert s["status"] == "safe", s["reason"]
        opt = s["optimal"]
        assert opt["contained"]
        assert opt["gertzbein_robbins_grade"] == "A"
        # independent: the screw axis (from 3 mm deep; 1.5 mm voxels) is in the labelled
        # bone and never in the lesion
        e, d = np.array(opt["entry_ras_mm"]), np.array(opt["direction_ras"])
        pts = e + np.arange(3.0, opt["recommended_screw"]["length_mm"], 0.5)[:, None] * d
        ijk = np.rint(pts @ inv[:3, :3].T + inv[:3, 3]).astype(int)
        assert bone[tuple(ijk.T)].all()
        assert not (lab[tuple(ijk.T)] == LESION_LABEL).any()
        assert opt["vessel_distance_source"] == "label"
        assert plan["sides"][side]["nominal"]["transverse_angle_deg"] == pytest.approx(30.0)


def test_refusal_is_reasoned(destroyed):
    _, _anat, ctx = destroyed
    only_long = ScrewCatalog.grid([7.0], [90.0], "long-only")
    with pytest.raises(NoSafeTrajectoryError, match=r"left ala too narrow: longest safe axis"):
        optimal_trajectory(ctx, "left", catalog=only_long)
    plan = make_plan(ctx, catalog=only_long)
    for side in ("left", "right"):
        s = plan["sides"][side]
        assert s["status"] == "refused"
        assert s["optimal"] is None
        assert "too narrow" in s["reason"]
        assert "90 mm" in s["reason"]
    assert plan["decision"]["verdict"] == "alar screws not indicated"


def test_body_model_mask_matches_phantom_truth(destroyed):
    """The anatomy body model (semi axes, height) rasterised in a box equals the full-grid
    rasterisation of the phantom's truth cylinder (tests/planning/phantom_anatomy.py)."""
    ph, _, _ = destroyed
    b = ph.truth["body_loss"]["s1_body_frame_mm"]
    model = {"semi_x_mm": b["semi_x"], "semi_y_mm": b["semi_y"], "height_mm": -b["z_min"]}
    got = s1_body_model_mask(ph.ct, S1Frame.from_dict(ph.truth["frame"]), model)
    assert got.sum() > 1000
    assert np.array_equal(got, s1_body_mask(ph))
    assert s1_body_model_mask(ph.ct, S1Frame.from_dict(ph.truth["frame"]), {"semi_x_mm": 1}) \
        is None


@pytest.mark.parametrize(("t_deg", "s_deg", "surface"), [
    (60, 0, "si_joint_ilium"),           # straight lateral: through the ala into the SI joint
    (30, -40, "superior_endplate_disc"),  # aimed cranially: out through the endplate
    (-60, 20, "spinal_canal"),           # steeply medial: into the canal (labelled)
    (30, 45, "anterior_cortex"),         # nominal 30/45 but 70 mm long: out the front
])
def test_breach_surfaces_named(destroyed, t_deg, s_deg, surface):
    """Phantom anatomy is analytic (alarscrew.phantom): these axes from the right entry
    leave the bone through the named structure first."""
    from alarscrew.planning.evaluate import evaluate_screw
    from alarscrew.planning.screw import Screw
    from alarscrew.spatial.frame import direction_from_angles

    _, _, ctx = destroyed
    d = direction_from_angles(ctx.frame, "right", np.asarray(t_deg), np.asarray(s_deg))
    ev = evaluate_screw(ctx, Screw(ctx.point("right.entry"), d, 70.0, 7.0), side="right")
    deepest = max(ev.breaches, key=lambda b: b.depth_mm)
    assert deepest.surface == surface
    assert ev.grade == "E"


def test_plan_json_has_contract_keys(destroyed):
    """Keys required by issue 4 and docs/DEVELOPING.md (the plan.json contract)."""
    import json

    _, anat, ctx = destroyed
    plan = json.loads(plan_to_json(make_plan(ctx, body_loss=anat.body_loss)))
    for key in ("sides", "body_loss_percent", "frame", "alternatives", "timing_s", "inputs",
                "disclaimer", "decision"):
        assert key in plan
    assert set(plan["inputs"]) == {"ct", "seg", "landmarks", "lesion"}
    screw_keys = {"entry_ras_mm", "direction_ras", "length_mm", "axis_in_bone_mm",
                  "diameter_mm", "transverse_angle_deg", "sagittal_angle_deg", "breaches",
                  "min_vessel_distance_mm", "mean_hu", "recommended_screw", "reason"}
    for side in ("left", "right"):
        s = plan["sides"][side]
        for kind in ("nominal", "optimal"):
            assert screw_keys <= set(s[kind]), screw_keys - set(s[kind])
        assert set(s["safe_length_map"]) >= {"transverse_deg", "sagittal_deg", "length_mm"}
        assert len(s["safe_length_map"]["length_mm"]) == len(s["safe_length_map"]["sagittal_deg"])
        assert "radius_deg" in s["safe_window_deg"]
        assert set(plan["alternatives"][side]) == {"pedicle_standard", "pedicle_tricortical",
                                                   "s2ai"}
    # the right S1 body holds the lesion: its pedicle screw has less bone than the left one
    alt = plan["alternatives"]
    assert alt["right"]["pedicle_standard"]["length_mm"] < alt["left"]["pedicle_standard"][
        "length_mm"]


def test_entry_falls_back_to_facet_centre(destroyed):
    """Without '{side}.entry' the entry region is centred on '{side}.sap_facet', and says so;
    without both the side is refused with the reason."""
    import dataclasses

    from alarscrew.planning.plan import plan_side

    _, _, ctx = destroyed
    lms = {k: v for k, v in ctx.landmarks.items() if k != "left.entry"}
    ctx2 = dataclasses.replace(ctx, landmarks=lms)
    out = plan_side(ctx2, "left")
    assert out["entry_source"].startswith("left.sap_facet landmark")
    assert out["status"] == "safe"
    lms3 = {k: v for k, v in lms.items() if k != "left.sap_facet"}
    out3 = plan_side(dataclasses.replace(ctx, landmarks=lms3), "left")
    assert out3["status"] == "refused"
    assert "no 'left.entry' or 'left.sap_facet' landmark" in out3["reason"]

"""End to end on the real CT with the real anatomy stage (``alarscrew.anatomy.run_anatomy``).

../shared/data/ct/totalseg-example: 3 mm CT + TotalSegmentator v1 labels (sacrum, hips, iliac
vessels). Expected (Fang et al., BMC Musculoskeletal Disorders 2022, Methods: 7.0-7.5 x 35-45
mm screws, 30 deg lateral / 45 deg inferior, about 40 mm deep; Discussion: 30 deg distal and
45 deg lateral variants): both sides a safe screw of 35-55 mm, 6.5-8 mm, sagittal 15-50 deg.
"""

from __future__ import annotations

import json

import pytest

from alarscrew.anatomy import run_anatomy
from alarscrew.anatomy.labels import load_labels
from alarscrew.planning.plan import context_from_anatomy, make_plan
from tests.conftest import run_cli


@pytest.fixture(scope="module")
def pipeline_plan(real_ct_dir):
    ct, seg = real_ct_dir / "ct.nii.gz", real_ct_dir / "total_v1.nii.gz"
    anat = run_anatomy(ct, seg_paths=(seg,))
    ctx = context_from_anatomy(anat, labels=load_labels([seg], anat.ct))
    return make_plan(ctx, body_loss=anat.body_loss, bone_quality=anat.bone_quality)


@pytest.mark.parametrize("side", ["left", "right"])
def test_both_sides_safe_with_labelled_vessels(pipeline_plan, side):
    s = pipeline_plan["sides"][side]
    assert s["status"] == "safe", s["reason"]
    opt = s["optimal"]
    assert opt["contained"]
    assert 35.0 <= opt["recommended_screw"]["length_mm"] <= 55.0
    assert 6.5 <= opt["recommended_screw"]["diameter_mm"] <= 8.0
    assert 15.0 <= opt["sagittal_angle_deg"] <= 50.0
    assert opt["vessel_distance_source"] == "label"
    assert opt["min_vessel_distance_mm"] > 0
    assert pipeline_plan["sources"]["ilium"] == "label"
    # the paper's 30/45 axis is evaluated and reported with its breaches
    nom = s["nominal"]
    assert nom["transverse_angle_deg"] == pytest.approx(30.0, abs=1e-6)
    assert isinstance(nom["breaches"], list)


@pytest.mark.xfail(strict=True, reason=(
    "known: with the anatomy stage's frame (sacral slope ~50 deg) and entry on the S1 facet, "
    "the longest safe axis runs caudally down the lateral mass at 10-12 deg transverse, "
    "below the paper's 30 deg; see docs/angles.md"))
@pytest.mark.parametrize("side", ["left", "right"])
def test_transverse_angle_within_paper_range(pipeline_plan, side):
    assert 25.0 <= pipeline_plan["sides"][side]["optimal"]["transverse_angle_deg"] <= 55.0


def test_cli_plan_real_ct_byte_identical(real_ct_dir, tmp_path, capsys):
    args = ["plan", str(real_ct_dir / "ct.nii.gz"), "--seg",
            str(real_ct_dir / "total_v1.nii.gz")]
    code, _out, err = run_cli([*args, "--out", str(tmp_path / "A")], capsys)
    assert code == 0, err
    code, _out, err = run_cli([*args, "--out", str(tmp_path / "B")], capsys)
    assert code == 0, err
    a = (tmp_path / "A" / "plan.json").read_bytes()
    assert a == (tmp_path / "B" / "plan.json").read_bytes()
    plan = json.loads(a)
    assert plan["inputs"]["seg"] == [str(real_ct_dir / "total_v1.nii.gz")]
    assert (tmp_path / "A" / "anatomy.json").exists()
    assert (tmp_path / "A" / "sacrum_mask.nii.gz").exists()


def test_cli_check_agrees_with_plan(real_ct_dir, pipeline_plan, tmp_path, capsys):
    """`alarscrew check` on the plan's own optimal screw: contained (exit 0), same numbers."""
    opt = pipeline_plan["sides"]["left"]["optimal"]
    rec = opt["recommended_screw"]
    out = tmp_path / "left.json"
    code, _, err = run_cli(
        ["check", str(real_ct_dir / "ct.nii.gz"), "--seg", str(real_ct_dir / "total_v1.nii.gz"),
         "--entry", ",".join(repr(v) for v in opt["entry_ras_mm"]),
         "--direction", ",".join(repr(v) for v in opt["direction_ras"]),
         "--length", str(rec["length_mm"]), "--diameter", str(rec["diameter_mm"]),
         "--json", str(out)], capsys)
    assert code == 0, err
    got = json.loads(out.read_text())
    assert got["contained"] is True
    assert got["length_mm"] == pytest.approx(opt["length_mm"], abs=0.01)
    assert got["axis_in_bone_mm"] == pytest.approx(opt["axis_in_bone_mm"], abs=0.01)
    assert got["transverse_angle_deg"] == pytest.approx(opt["transverse_angle_deg"], abs=0.01)


def test_cli_plan_scan_without_sacrum(real_ct_dir, tmp_path, capsys):
    """The DICOM series of the upper abdomen (no sacrum): exit 2, a reason, nothing written."""
    out = tmp_path / "NOSACRUM"
    code, _, err = run_cli(["plan", str(real_ct_dir / "dicom"), "--out", str(out)], capsys)
    assert code == 2
    assert "sacrum" in err
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []

"""``alarscrew plan`` and ``alarscrew check`` run in-process on the phantom.

The anatomy stage is replaced by the phantom's exact truth (tests/planning/phantom_anatomy.py)
so that these tests exercise the planning CLI alone: outputs, byte-identical plan.json,
--force, --timing, exit codes and 'nothing written' on bad input.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import alarscrew.anatomy as anatomy_pkg
from alarscrew.io.nifti import save_nifti
from alarscrew.phantom import make_phantom, write_phantom
from tests.conftest import run_cli
from tests.planning.phantom_anatomy import anatomy_from_phantom


@pytest.fixture(scope="module")
def phantom_dir(tmp_path_factory):
    ph = make_phantom(voxel_mm=2.0, noise_hu=0.0, body_destruction_percent=60.0)
    out = tmp_path_factory.mktemp("ph") / "phantom"
    write_phantom(ph, out)
    return ph, out


@pytest.fixture
def fake_anatomy(monkeypatch, phantom_dir):
    ph, _ = phantom_dir
    state = {"empty": False}

    def run_anatomy(ct_path, *, seg_paths=(), landmarks_path=None, lesion_path=None,
                    progress=None):
        return anatomy_from_phantom(ph, empty_sacrum=state["empty"])

    def save_anatomy(anatomy, out_dir, *, force=False):
        (out_dir / "anatomy.json").write_text(json.dumps({"frame": anatomy.frame.to_dict()}))
        save_nifti(anatomy.sacrum, out_dir / "sacrum_mask.nii.gz", force=force)

    monkeypatch.setattr(anatomy_pkg, "run_anatomy", run_anatomy, raising=False)
    if not hasattr(anatomy_pkg, "save_anatomy"):
        monkeypatch.setattr(anatomy_pkg, "save_anatomy", save_anatomy, raising=False)
    return state


def test_plan_writes_plan_dir_reproducibly(fake_anatomy, phantom_dir, tmp_path, capsys):
    _, ph_dir = phantom_dir
    ct = str(ph_dir / "ct.nii.gz")
    out = tmp_path / "PLAN"
    code, stdout, err = run_cli(["plan", ct, "--out", str(out), "--levels", "1"], capsys)
    assert code == 0, err
    assert {p.name for p in out.iterdir()} >= {"plan.json", "anatomy.json",
                                               "sacrum_mask.nii.gz", "timing.json"}
    first = (out / "plan.json").read_bytes()
    plan = json.loads(first)
    assert plan["timing_s"] is None
    assert plan["inputs"]["ct"] == ct
    assert plan["sides"]["left"]["status"] == "safe"
    assert "decision" in stdout
    # existing output without --force: exit 2, untouched
    code, _, err = run_cli(["plan", ct, "--out", str(out)], capsys)
    assert code == 2
    assert "--force" in err
    assert (out / "plan.json").read_bytes() == first
    code, _, err = run_cli(["plan", ct, "--out", str(out), "--levels", "1", "--force"], capsys)
    assert code == 0, err
    assert (out / "plan.json").read_bytes() == first  # byte-identical
    code, stdout, err = run_cli(["plan", ct, "--out", str(tmp_path / "T"), "--timing",
                                 "--json", "--png"], capsys)
    assert code == 0, err
    assert json.loads(stdout)["timing_s"]["planning"] > 0
    assert (tmp_path / "T" / "plan.png").read_bytes()[:4] == b"\x89PNG"


def test_plan_bad_objective_exit_2(fake_anatomy, phantom_dir, tmp_path, capsys):
    out = tmp_path / "OBJ"
    code, _, err = run_cli(["plan", str(phantom_dir[1] / "ct.nii.gz"), "--out", str(out),
                            "--objective", "speed"], capsys)
    assert code == 2
    assert "--objective" in err
    assert not out.exists()


def test_plan_bad_tip_zone_exit_2(fake_anatomy, phantom_dir, tmp_path, capsys):
    out = tmp_path / "ZONE"
    code, _, err = run_cli(["plan", str(phantom_dir[1] / "ct.nii.gz"), "--out", str(out),
                            "--tip-zone", "caudal"], capsys)
    assert code == 2
    assert "--tip-zone" in err
    assert not out.exists()


def test_plan_tip_zone_ala_keeps_screw_above_foramen(fake_anatomy, phantom_dir, tmp_path,
                                                     capsys):
    """--tip-zone ala: recorded in plan.json; each optimal screw (axis plus radius and the
    1 mm margin, i.e. 4.5 mm for 7 mm) stays cranial to its s1_foramen level (truth landmark,
    S1 frame), checked on the axis end points to 1e-6 mm; both nominal readings present."""
    ph, ph_dir = phantom_dir
    out = tmp_path / "ALA"
    code, _, err = run_cli(["plan", str(ph_dir / "ct.nii.gz"), "--out", str(out),
                            "--tip-zone", "ala"], capsys)
    assert code == 0, err
    plan = json.loads((out / "plan.json").read_text())
    assert plan["settings"]["tip_zone"] == "ala"
    frame = plan["frame"]
    cranial = np.asarray(frame["cranial_ras"])
    for side in ("left", "right"):
        s = plan["sides"][side]
        assert s["nominal"] is not None
        assert s["nominal_axial"] is not None
        if s["status"] != "safe":
            assert "foramen" in s["reason"] or "narrow" in s["reason"]
            continue
        opt = s["optimal"]
        assert opt["search"]["tip_zone"] == "ala"
        floor = np.asarray(ph.truth["landmarks"][f"{side}.s1_foramen"]) @ cranial
        tip = (np.asarray(opt["entry_ras_mm"])
               + opt["recommended_screw"]["length_mm"] * np.asarray(opt["direction_ras"]))
        need = 0.5 * opt["recommended_screw"]["diameter_mm"] + plan["settings"]["margin_mm"]
        assert tip @ cranial - floor >= need - 1e-6


def test_plan_without_sacrum_writes_nothing(fake_anatomy, phantom_dir, tmp_path, capsys):
    fake_anatomy["empty"] = True
    out = tmp_path / "NONE"
    code, _, err = run_cli(["plan", str(phantom_dir[1] / "ct.nii.gz"), "--out", str(out)],
                           capsys)
    assert code == 2
    assert "sacrum" in err
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".NONE")]


def test_check_reports_and_writes_json(fake_anatomy, phantom_dir, tmp_path, capsys):
    ph, ph_dir = phantom_dir
    ct = str(ph_dir / "ct.nii.gz")
    entry = ph.truth["landmarks"]["right.entry"]
    from alarscrew.spatial.frame import S1Frame, direction_from_angles

    d = direction_from_angles(S1Frame.from_dict(ph.truth["frame"]), "right", 30, 45)
    out = tmp_path / "screw.json"
    code, stdout, err = run_cli(
        ["check", ct, "--entry", ",".join(f"{v:.4f}" for v in entry),
         "--direction", ",".join(f"{v:.6f}" for v in d), "--length", "40", "--diameter", "7",
         "--json", str(out)], capsys)
    screw = json.loads(out.read_text())
    assert code == (0 if screw["contained"] else 1), err
    assert screw["transverse_angle_deg"] == pytest.approx(30.0, abs=0.01)
    assert screw["sagittal_angle_deg"] == pytest.approx(45.0, abs=0.01)
    assert screw["screw_length_mm"] == pytest.approx(40.0)
    assert "Gertzbein-Robbins" in stdout
    # --target gives the same axis
    tip = np.asarray(entry) + 40.0 * d
    code2, _, _ = run_cli(["check", ct, "--entry", ",".join(f"{v:.4f}" for v in entry),
                           "--target", ",".join(f"{v:.4f}" for v in tip), "--diameter", "7"],
                          capsys)
    assert code2 == code


@pytest.mark.parametrize(("args", "match"), [
    (["--entry", "900,0,0", "--direction", "0,1,0", "--length", "40", "--diameter", "7"],
     "outside the image"),
    (["--entry", "0,0,0", "--direction", "0,0,0", "--length", "40", "--diameter", "7"],
     "non-zero"),
    (["--entry", "0,0,0", "--direction", "0,1,0", "--length", "40", "--diameter", "-7"],
     "diameter_mm must be a positive"),
    (["--entry", "0,0,0", "--direction", "0,1,0", "--target", "1,2,3", "--diameter", "7"],
     "exactly one of"),
    (["--entry", "0,0", "--direction", "0,1,0", "--length", "40", "--diameter", "7"],
     "three"),
])
def test_check_bad_input_exit_2_nothing_written(fake_anatomy, phantom_dir, tmp_path, capsys,
                                                args, match):
    out = tmp_path / "bad.json"
    code, _, err = run_cli(["check", str(phantom_dir[1] / "ct.nii.gz"), *args,
                            "--json", str(out)], capsys)
    assert code == 2
    assert match in err
    assert not out.exists()


def test_plan_passes_lesion_to_anatomy(fake_anatomy, phantom_dir, tmp_path, capsys,
                                       monkeypatch):
    import alarscrew.anatomy as anatomy_pkg

    seen = {}
    real = anatomy_pkg.run_anatomy

    def spy(ct_path, **kw):
        seen.update(kw)
        return real(ct_path, **kw)

    monkeypatch.setattr(anatomy_pkg, "run_anatomy", spy)
    lesion = phantom_dir[1] / "lesion.nii.gz"
    out = tmp_path / "L"
    code, _, err = run_cli(["plan", str(phantom_dir[1] / "ct.nii.gz"), "--lesion", str(lesion),
                            "--out", str(out)], capsys)
    assert code == 0, err
    assert str(seen["lesion_path"]) == str(lesion)
    assert json.loads((out / "plan.json").read_text())["inputs"]["lesion"] == str(lesion)


def test_summary_table_one_row_per_refused_side_without_entry():
    """A side refused before any axis exists (no entry point) is one row with no axis name;
    a side whose optimum was refused but whose nominal axes exist keeps them plus an 'opt' row."""
    from alarscrew.cli.plan import _summary_table

    nominal = {"recommended_screw": None, "contained": False, "length_mm": 20.0,
               "axis_in_bone_mm": 30.0, "transverse_angle_deg": 30.0,
               "sagittal_angle_deg": 45.0, "gertzbein_robbins_grade": "C"}
    plan = {"sides": {"left": {"status": "refused"},
                      "right": {"status": "refused", "nominal": nominal}}}
    table = _summary_table(plan)
    sides = list(table.columns[0].cells)
    axes = list(table.columns[1].cells)
    assert sides == ["left", "right", "right"]
    assert axes == ["-", "opt", "nom"]

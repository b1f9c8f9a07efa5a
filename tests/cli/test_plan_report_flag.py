"""`alarscrew plan --report` writes the plan, the planning report and the exports in one go."""

from __future__ import annotations

import json

from tests.conftest import run_cli


def test_plan_with_report_on_real_ct(real_ct_dir, tmp_path, capsys):
    out = tmp_path / "plan"
    code, _, err = run_cli(["plan", str(real_ct_dir / "ct.nii.gz"), "--seg",
                            str(real_ct_dir / "total_v1.nii.gz"), "--out", str(out),
                            "--report"], capsys)
    assert code == 0, err
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "not a medical device" in html
    exports = json.loads((out / "exports" / "exports.json").read_text())
    assert exports  # the export index lists what was written
    for side in ("left", "right"):
        assert (out / "exports" / f"{side}_optimal.mrk.json").is_file()
        assert (out / "exports" / f"{side}_optimal.stl").is_file()


def test_pdf_without_report_is_refused_and_writes_nothing_more(real_ct_dir, tmp_path, capsys):
    out = tmp_path / "plan"
    code, _, err = run_cli(["plan", str(real_ct_dir / "ct.nii.gz"), "--out", str(out),
                            "--pdf"], capsys)
    assert code == 2
    assert "--pdf needs --report" in err
    assert err.count("\n") == 1  # one line
    assert not out.exists()

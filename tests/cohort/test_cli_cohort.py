"""CLI: cohort validate / eligibility / odi / mcid, run in-process; errors are one line, exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_cli


def test_validate_embedded(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out_json = tmp_path / "v.json"
    code, out, err = run_cli(["cohort", "validate", "fang2022", "--json", str(out_json)], capsys)
    assert code == 0, err
    assert "7 cases" in out
    doc = json.loads(out_json.read_text())
    assert doc["n"] == 7
    assert doc["timepoints"] == ["pre", "post_3d", "post_9m"]
    assert doc["scores_present"]["odi"] == {"pre": 7, "post_3d": 7, "post_9m": 7}
    # no overwrite without --force
    code, _, err = run_cli(["cohort", "validate", "fang2022", "--json", str(out_json)], capsys)
    assert code == 2
    assert "--force" in err


@pytest.mark.parametrize(
    ("text", "expect"),
    [
        ("id,vas_pre\nA,11\n", "row 1, column 'vas_pre': VAS must be within 0-10, got 11"),
        ("id,odi_pre\nA,104\n", "row 1, column 'odi_pre': ODI must be within 0-100, got 104"),
        ("id,vas_pre\nA,1\nA,2\n", "row 2, column 'id': duplicate id 'A'"),
    ],
)
def test_validate_bad_file_one_line_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, text: str, expect: str
) -> None:
    p = tmp_path / "bad.csv"
    p.write_text(text, encoding="utf-8")
    code, _, err = run_cli(["cohort", "validate", str(p)], capsys)
    assert code == 2
    assert err.count("\n") == 1
    assert err.startswith(f"error: {p}, {expect}")


def test_eligibility_json(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out_json = tmp_path / "e.json"
    code, out, err = run_cli(["cohort", "eligibility", "fang2022", "--json", str(out_json)],
                             capsys)
    assert code == 0, err
    doc = json.loads(out_json.read_text())
    assert doc["summary"] == {"eligible": 0, "ineligible": 0, "unknown": 7}
    assert doc["verdicts"][0]["rules"][5]["rule_id"] == "osteoporosis"
    assert "unknown 7" in out


def test_eligibility_bad_rules_exit_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    p = tmp_path / "r.yaml"
    p.write_text("rules:\n  - id: a\n", encoding="utf-8")
    code, _, err = run_cli(["cohort", "eligibility", "fang2022", "--rules", str(p)], capsys)
    assert code == 2
    assert f"error: {p}, column 'rules[0]': missing required key 'kind'" in err


def test_odi_command(capsys: pytest.CaptureFixture[str]) -> None:
    # 3+2+1+0+4+3+1+1+2 = 17 of 45 (one unanswered, double mark 2,3 -> 3) = 37.8 %
    code, out, _ = run_cli(["cohort", "odi", "3", "2", "1", "0", "-", "4", "2,3", "1", "1", "2"],
                           capsys)
    assert code == 0
    assert out.startswith("ODI 37.8% (moderate)")
    code, _, err = run_cli(["cohort", "odi", "3", "2", "1", "0", "-", "-", "1", "1", "1", "x"],
                           capsys)
    assert code == 2
    assert "section 10" in err


def test_mcid_command(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out_json = tmp_path / "m.json"
    code, out, err = run_cli(["cohort", "mcid", "fang2022", "--json", str(out_json)], capsys)
    assert code == 0, err
    rows = json.loads(out_json.read_text())["rows"]
    assert len(rows) == 28
    assert all(r["attained"] for r in rows)  # smallest improvement: VAS 4 >= 1.2, ODI 38 >= 12.8
    assert "Copay" in out


@pytest.mark.parametrize("layout", ["wide", "long", "redcap"])
def test_template_round_trip(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                             layout: str) -> None:
    import csv

    from alarscrew.cohort import read_cohort

    out = tmp_path / f"{layout}.csv"
    code, _, err = run_cli(["cohort", "template", str(out), "--layout", layout, "--odi-items"],
                           capsys)
    assert code == 0, err
    header = next(csv.reader(out.open()))
    row = dict.fromkeys(header, "")
    row.update({"id": "P1", "record_id": "P1", "timepoint": "pre",
                "redcap_event_name": "pre_arm_1", "sex": "F", "fused_segments": "L5/S1",
                "vas": "7", "vas_pre": "7"})
    for k in range(1, 11):  # every section answered 1 -> ODI 20 %
        for name in (f"odi_q{k}", f"odi_pre_q{k}"):
            if name in row:
                row[name] = "1"
    with out.open("a", newline="") as fh:
        csv.writer(fh).writerow([row[h] for h in header])
    case = read_cohort(out).case("P1")
    assert case.score("vas", "pre") == 7.0
    assert case.score("odi", "pre") == pytest.approx(20.0, abs=1e-12)
    assert case.fused_segments == ("L5/S1",)
    assert read_cohort(out).ignored_columns == ()
    code, _, err = run_cli(["cohort", "template", str(out)], capsys)
    assert code == 2
    assert "--force" in err

"""The consistency audit: the exact set of findings on Fang et al. 2022, derived by hand first.

HAND DERIVATION (n = 7 throughout; data = Tables 1-2 as printed; "prints" = rounded to the
reported decimals; GRIM: means k/7; GRIMMER: Q = 6 s^2 + k^2/7 integer with Q = k mod 2;
SD bounds for 7 values with min a, max b: max = sqrt(12/42)(b-a), min = (b-a)/sqrt(12);
mean bounds: [(6a+b)/7, (a+6b)/7]).

 quantity               reported  data (hand)                         verdict
 vas.pre.mean           7.3       50/7 = 7.1429 -> 7.1                MISMATCH
                                  GRIM: 51/7 = 7.2857 -> 7.3          ok
                                  range 6-8: mean in [6.29, 7.71]     ok
 vas.pre.sd             1.3       sumsq 360: sqrt((360-2500/7)/6)=0.690 MISMATCH
                                  GRIMMER k=51: Q in [380.9, 382.5], odd -> 381 (sd 1.254) ok
                                  max SD in 6-8: sqrt(12/42)*2 = 1.069 < 1.25   SD_BOUND
 vas.pre.min/max        6 / 8     6 / 8                               ok
 vas.post_3d.mean       2.6       18/7 = 2.571 -> 2.6                 ok (GRIM ok: 18/7)
 vas.post_3d.sd         0.8       4x3, 3x2: sqrt(12/42) = 0.5345      MISMATCH
                                  GRIMMER k=18: Q in [49.7, 50.6] -> 50 even ok
                                  max SD in 2-3: 0.5345 < 0.75        SD_BOUND
 vas.post_3d.min/max    2 / 3     2 / 3                               ok (mean 2.6 in [2.14, 2.86])
 vas.post_9m.mean       2.1       15/7 = 2.143 -> 2.1                 ok (GRIM ok)
 vas.post_9m.sd         0.8       sumsq 35: sqrt((35-225/7)/6) = 0.690 MISMATCH
                                  GRIMMER k=15: Q in [35.52, 36.48] -> 36, even but k odd  GRIMMER
 odi.pre.mean           73.8      506/7 = 72.286 -> 72.3              MISMATCH
                                  GRIM: 516/7=73.714, 517/7=73.857    GRIM
                                  range 68-75: mean in [69, 74]       ok
 odi.pre.sd             4.3       2.870                               MISMATCH
                                  GRIMMER: not tested (mean fails GRIM; a note says so)
                                  max SD in 68-75: sqrt(12/42)*7 = 3.742 < 4.25  SD_BOUND
 odi.pre.min            68        68                                  ok
 odi.pre.max            75        76 (case 6)                         RANGE
 odi.post_3d.mean       33.6      229/7 = 32.714 -> 32.7              MISMATCH (GRIM ok: 235/7)
 odi.post_3d.sd         2.9       2.8115 -> 2.8                       MISMATCH
                                  GRIMMER k=235: Q in [7938.0, 7941.5], odd 7939/7941 ok
                                  SD in 30-37: [2.02, 3.74]           ok
 odi.post_3d.min/max    30 / 37   30 / 37                             ok
 odi.post_9m.mean       29.2      176/7 = 25.143 -> 25.1              MISMATCH
                                  GRIM: 204/7=29.143, 205/7=29.286    GRIM
 odi.post_9m.sd         2.3       1.9518 -> 2.0                       MISMATCH (GRIMMER not tested)
 age_years.mean         63.57     445/7 = 63.5714 -> 63.57            ok (GRIM ok)
 age_years.min/max      52 / 78   52 / 78                             ok
 follow_up_months.mean  14.57     106/7 = 15.143 -> 15.14             MISMATCH (GRIM ok: 102/7)
 follow_up_months.min   12        12                                  ok
 follow_up_months.max   18        19 (case 1)                         RANGE
 fusion_time_months.mean 6.8      54/7 = 7.714 -> 7.7                 MISMATCH
                                  GRIM: 47/7=6.714, 48/7=6.857        GRIM
                                  range 6-12: mean >= 48/7 = 6.857 > 6.85  RANGE
 fusion_time_months.sd  1.3       sqrt(33.43/6) = 2.360               MISMATCH
                                  min SD in 6-12: 6/sqrt(12) = 1.732 > 1.35   SD_BOUND
 fusion_time_months.min/max 6/12  6 / 12                              ok
 vas.post_3d.p          <0.001    paired t p = 4.9e-7, Student t p = 9.6e-9   ok (both t tests)
 odi.post_3d.p          <0.05     paired t p = 4.4e-11, Student t p = 6.2e-12 ok (both t tests)
   rank tests at n=7: signed-rank min p = 2/128 = 0.0156 (> 0.001), Mann-Whitney min p =
   2/C(14,7) = 5.8e-4: informational notes only (the stated test is a t test).
 Bhatia-Davis SD bound sqrt(7/6 (hi-m)(m-lo)), m at the mean's rounding end nearest the middle:
   odi.post_3d 30-37, m=33.55: 3.78 >= 2.85 ok; vas.post_9m scale 0-10, m=2.15: 4.44 ok;
   odi.post_9m scale 0-100, m=29.25: 49.1 ok; the others with a range are flagged above already.
 ODI granularity: odd values (75, 71, 31, 37, 33, 25, 27) need unanswered sections and
   rounding; possible, so notes only. Range ends 68, 75, 30, 37 are all producible ODIs.

Total: 24 findings = 13 mismatch + 3 range + 3 grim + 1 grimmer + 4 sd_bound.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from alarscrew.errors import InputError
from alarscrew.stats import FINDING_KINDS, audit, audit_report, load_reported
from tests.conftest import run_cli

REPORTED = Path(__file__).resolve().parents[2] / "src/alarscrew/data/fang2022/reported.yaml"

EXPECTED = {
    ("vas.pre.mean", "mismatch"), ("vas.pre.sd", "mismatch"), ("vas.pre.sd", "sd_bound"),
    ("vas.post_3d.sd", "mismatch"), ("vas.post_3d.sd", "sd_bound"),
    ("vas.post_9m.sd", "mismatch"), ("vas.post_9m.sd", "grimmer"),
    ("odi.pre.mean", "mismatch"), ("odi.pre.mean", "grim"), ("odi.pre.sd", "mismatch"),
    ("odi.pre.sd", "sd_bound"), ("odi.pre.max", "range"),
    ("odi.post_3d.mean", "mismatch"), ("odi.post_3d.sd", "mismatch"),
    ("odi.post_9m.mean", "mismatch"), ("odi.post_9m.mean", "grim"),
    ("odi.post_9m.sd", "mismatch"),
    ("follow_up_months.mean", "mismatch"), ("follow_up_months.max", "range"),
    ("fusion_time_months.mean", "mismatch"), ("fusion_time_months.mean", "grim"),
    ("fusion_time_months.mean", "range"), ("fusion_time_months.sd", "mismatch"),
    ("fusion_time_months.sd", "sd_bound"),
}

# recomputed values from the hand table (tolerance 1e-6)
HAND_RECOMPUTED = {
    ("vas.pre.mean", "mismatch"): 50 / 7,
    ("vas.pre.sd", "sd_bound"): (12 / 42) ** 0.5 * 2,
    ("odi.pre.max", "range"): 76.0,
    ("odi.pre.mean", "grim"): 517 / 7,
    ("follow_up_months.mean", "mismatch"): 106 / 7,
    ("follow_up_months.max", "range"): 19.0,
    ("fusion_time_months.mean", "range"): 48 / 7,
    ("fusion_time_months.sd", "sd_bound"): 6 / 12**0.5,
}


@pytest.fixture(scope="module")
def paper_audit():  # type: ignore[no-untyped-def]
    from alarscrew.cohort import load_cohort

    return audit_report(load_cohort("fang2022"), load_reported(REPORTED))


def test_paper_audit_exact_set(paper_audit) -> None:  # type: ignore[no-untyped-def]
    got = [(f.quantity, f.kind) for f in paper_audit.findings]
    assert len(got) == len(set(got)), "a finding is listed twice"
    assert set(got) == EXPECTED
    for f in paper_audit.findings:
        assert f.kind in FINDING_KINDS
        assert f.detail
        if (f.quantity, f.kind) in HAND_RECOMPUTED:
            assert f.recomputed == pytest.approx(HAND_RECOMPUTED[(f.quantity, f.kind)],
                                                 abs=1e-6)


def test_paper_audit_notes(paper_audit) -> None:  # type: ignore[no-untyped-def]
    text = " ".join(n["detail"] for n in paper_audit.notes)
    assert "reproduced by paired t and Student's independent t" in text
    assert "signed-rank cannot, Mann-Whitney can give p <0.001" in text
    assert "odd ODI value" in text
    # prose, not a number: the ODI "increased significantly" while it fell 73.8 -> 33.6
    (odi_dir,) = [n for n in paper_audit.notes if n["quantity"] == "odi.post_3d.direction"]
    assert odi_dir["detail"].endswith("the wording contradicts the numbers")


def _consistent_yaml(tmp_path: Path) -> Path:
    """Reported numbers that DO follow from the Table 2 data (hand-rounded): no finding."""
    p = tmp_path / "ok.yaml"
    p.write_text(
        "n: 7\n"
        "variables:\n"
        "  vas:\n"
        "    integer: true\n"
        "    scale: [0, 10]\n"
        "    timepoints:\n"
        "      pre: {mean: '7.1', sd: '0.7', min: '6', max: '8'}\n"
        "      post_3d: {mean: '2.6', sd: '0.5', min: '2', max: '3'}\n"
        "      post_9m: {mean: '2.1', sd: '0.7', min: '1', max: '3'}\n"
        "    comparisons:\n"
        "      - {from: pre, to: post_3d, p: '<0.001', test: paired_t}\n"
        "  odi:\n"
        "    integer: true\n"
        "    scale: [0, 100]\n"
        "    timepoints:\n"
        "      pre: {n: 7, mean: '72.3', sd: '2.9', min: '68', max: '76'}\n"
        "      post_9m: {mean: '25.14', sd: '1.95', min: '22', max: '28'}\n"
        "  age_years: {integer: true, mean: '63.57', min: '52', max: '78'}\n"
        "  follow_up_months: {integer: true, mean: '15.14', min: '12', max: '19'}\n"
        "  fusion_time_months: {integer: true, mean: '7.7', sd: '2.4', min: '6', max: '12'}\n",
        encoding="utf-8")
    return p


def test_consistent_report_gives_no_finding(tmp_path: Path) -> None:
    from alarscrew.cohort import load_cohort

    findings = audit(load_cohort("fang2022"), _consistent_yaml(tmp_path))  # a path works too
    assert findings == []


@pytest.mark.parametrize(("yaml_line", "quantity", "kind"), [
    ("      pre: {n: 6, mean: '7.1', sd: '0.7', min: '6', max: '8'}", "vas.pre.n", "mismatch"),
    ("      pre: {mean: '7.1', sd: '0.7', min: '6', max: '11'}", "vas.pre.max", "range"),
    ("      pre: {mean: '7.1', sd: '0.7', min: '6', max: '8.5'}", "vas.pre.max", "granularity"),
    ("      - {from: pre, to: post_3d, p: '0.2', test: paired_t}", "vas.post_3d.p", "p_value"),
    ("      - {from: pre, to: post_3d, p: '<0.001', test: wilcoxon}", "vas.post_3d.p",
     "p_value"),
])
def test_each_injected_error_is_found(tmp_path: Path, yaml_line: str, quantity: str,
                                      kind: str) -> None:
    from alarscrew.cohort import load_cohort

    text = _consistent_yaml(tmp_path).read_text(encoding="utf-8").splitlines()
    key = yaml_line.split(":")[0]
    idx = next(i for i, line in enumerate(text) if line.startswith(key))
    text[idx] = yaml_line
    p = tmp_path / "bad.yaml"
    p.write_text("\n".join(text) + "\n", encoding="utf-8")
    got = {(f.quantity, f.kind) for f in audit(load_cohort("fang2022"), load_reported(p))}
    assert (quantity, kind) in got


def test_odi_range_end_no_questionnaire_gives(tmp_path: Path) -> None:
    p = tmp_path / "odi.yaml"
    p.write_text("variables:\n  odi:\n    timepoints:\n      pre: {n: 7, min: '1', max: '99'}\n",
                 encoding="utf-8")
    got = {(f.quantity, f.kind) for f in audit(None, load_reported(p))}
    assert got == {("odi.pre.min", "granularity"), ("odi.pre.max", "granularity")}


@pytest.mark.parametrize(("content", "key"), [
    ("variables:\n  vas:\n    timepoints:\n      pre: {mean: 'seven'}\n",
     "variables.vas.timepoints.pre.mean"),
    ("variables:\n  vas:\n    timepoints:\n      pre: {median: '7'}\n",
     "variables.vas.timepoints.pre"),
    ("variables:\n  vas:\n    comparisons:\n      - {from: pre, to: post, p: '<0.05'}\n",
     "variables.vas.comparisons[0].test"),
    ("variables:\n  vas:\n    comparisons:\n      - {from: pre, to: post, p: 'small', "
     "test: paired_t}\n", "variables.vas.comparisons[0].p"),
    ("n: 7\n", "variables"),
    ("variables:\n  vas:\n    timepoints:\n      pre: {sd: '-1'}\n",
     "variables.vas.timepoints.pre.sd"),
])
def test_bad_yaml_names_the_key(tmp_path: Path, content: str, key: str) -> None:
    p = tmp_path / "bad.yaml"
    p.write_text(content, encoding="utf-8")
    with pytest.raises(InputError, match=r"bad\.yaml.*'" + re.escape(key)):
        load_reported(p)


def test_cli_audit_json_and_tables(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "audit.json"
    code, _, err = run_cli(["audit", "fang2022", "--json", str(out)], capsys)
    assert code == 0, err
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert {(f["quantity"], f["kind"]) for f in doc["findings"]} == EXPECTED
    for f in doc["findings"]:
        assert set(f) >= {"quantity", "reported", "recomputed", "kind", "detail"}
    # same with the file named explicitly, printed as tables
    code, stdout, _ = run_cli(["audit", "fang2022", "--reported", str(REPORTED)], capsys)
    assert code == 0
    assert "24 finding(s)" in stdout
    assert "fusion_time_months.mean" in stdout
    # no overwrite without --force
    code, _, err = run_cli(["audit", "fang2022", "--json", str(out)], capsys)
    assert code == 2
    assert "exists" in err


def test_cli_audit_bad_input_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(["audit", "fang2022", "--reported", str(tmp_path / "no.yaml")],
                           capsys)
    assert code == 2
    assert "no.yaml" in err
    assert "not found" in err
    bad = tmp_path / "bad.yaml"
    bad.write_text("variables:\n  vas:\n    integer: maybe\n", encoding="utf-8")
    code, _, err = run_cli(["audit", "fang2022", "--reported", str(bad)], capsys)
    assert code == 2
    assert "variables.vas.integer" in err
    assert len(err.strip().splitlines()) == 1


def test_sd_bound_from_scale_and_mean(tmp_path: Path) -> None:
    # Hand (Bhatia-Davis): mean 0.3 -> true mean in [0.25, 0.35]; on the 0-10 scale the bound
    # (10 - mu)(mu - 0) is largest at mu = 0.35: 9.65 * 0.35 = 3.3775; x 7/6 -> SD <= 1.98504.
    p = tmp_path / "bd.yaml"
    p.write_text("n: 7\nvariables:\n  vas:\n    scale: [0, 10]\n    timepoints:\n"
                 "      pre: {mean: '0.3', sd: '3.0'}\n      post: {mean: '5.0', sd: '3.0'}\n",
                 encoding="utf-8")
    findings = audit(None, load_reported(p))
    assert [(f.quantity, f.kind) for f in findings] == [("vas.pre.sd", "sd_bound")]
    assert findings[0].recomputed == pytest.approx((9.65 * 0.35 * 7 / 6) ** 0.5, abs=1e-9)


def test_cli_audit_user_file_needs_reported(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    import shutil

    from alarscrew.cohort.embedded import dataset_dir

    csv = tmp_path / "cases.csv"
    shutil.copyfile(dataset_dir("fang2022") / "cases.csv", csv)
    code, _, err = run_cli(["audit", str(csv)], capsys)
    assert code == 2
    assert "--reported" in err
    out = tmp_path / "a.json"
    code, _, err = run_cli(["audit", str(csv), "--reported", str(REPORTED), "--json", str(out)],
                           capsys)
    assert code == 0, err
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert {(f["quantity"], f["kind"]) for f in doc["findings"]} == EXPECTED

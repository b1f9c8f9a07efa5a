"""Eligibility rule sets: verdicts with reasons, unknown when a field is missing, bad YAML."""

from __future__ import annotations

from pathlib import Path

import pytest

from alarscrew.cohort import load_cohort, read_cohort
from alarscrew.cohort.eligibility import (
    evaluate_eligibility,
    load_rules,
    verdicts_table,
)
from alarscrew.errors import ValidationError

CASES = """id,fused_segments,follow_up_months,bmd_value,bmd_kind,sacral_destruction,vas_pre
ok,L5/S1,12,-1.0,t_score,moderate,7
two,L4/L5+L5/S1,24,-2.4,t_score,none,7
three,L3/L4;L4/L5;L5/S1,30,-1.0,t_score,none,7
short,L5/S1,11.9,-1.0,t_score,none,7
osteo,L5/S1,20,-2.5,t_score,none,7
sacrum,L5/S1,20,-1.0,t_score,severe,7
nos1,L4/L5,20,-1.0,t_score,none,7
upper,L3/L4;L4/L5,20,-1.0,t_score,none,7
gram,L5/S1,20,0.8,g_cm2,none,7
blank,,20,-1.0,t_score,none,7
"""

EXPECTED = {
    "ok": ("eligible", set(), set()),
    "two": ("eligible", set(), set()),
    "three": ("ineligible", {"one_or_two_levels", "l4l5_l5s1_only", "three_or_more_levels"},
              set()),
    "short": ("ineligible", {"follow_up_12m"}, set()),
    "osteo": ("ineligible", {"osteoporosis"}, set()),
    "sacrum": ("ineligible", {"severe_sacral_destruction"}, set()),
    "nos1": ("ineligible", {"fused_to_sacrum"}, set()),
    "upper": ("ineligible", {"l4l5_l5s1_only", "fused_to_sacrum"}, set()),
    "gram": ("unknown", set(), {"osteoporosis"}),
    "blank": ("unknown", set(),
              {"one_or_two_levels", "l4l5_l5s1_only", "fused_to_sacrum",
               "three_or_more_levels"}),
}


@pytest.fixture
def cohort(tmp_path: Path):
    p = tmp_path / "cases.csv"
    p.write_text(CASES, encoding="utf-8")
    return read_cohort(p)


def test_fang2022_rules_per_case(cohort) -> None:
    verdicts = evaluate_eligibility(cohort)
    assert len(verdicts) == len(EXPECTED)
    for v in verdicts:
        verdict, failed, unknown = EXPECTED[v.id]
        assert v.verdict == verdict, v.reason
        assert {r.rule_id for r in v.results if r.status == "fail"} == failed
        assert {r.rule_id for r in v.results if r.status == "unknown"} == unknown
        assert v.reason  # every verdict says why
        assert all(r.reason for r in v.results)


def test_unknown_is_never_a_silent_pass(cohort) -> None:
    v = {x.id: x for x in evaluate_eligibility(cohort)}
    gram = {r.rule_id: r for r in v["gram"].results}["osteoporosis"]
    assert gram.status == "unknown"
    assert "not a T-score" in gram.reason


def test_fang2022_verdicts() -> None:
    # the paper's BMD has no stated kind and sacral damage is not graded per case: unknown,
    # while the segment and follow-up criteria pass for all 7 (case 1: L4/L5 + L5/S1, 19 m)
    verdicts = evaluate_eligibility(load_cohort("fang2022"))
    assert [v.verdict for v in verdicts] == ["unknown"] * 7
    for v in verdicts:
        status = {r.rule_id: r.status for r in v.results}
        assert status == {"one_or_two_levels": "pass", "l4l5_l5s1_only": "pass",
                          "fused_to_sacrum": "pass", "follow_up_12m": "pass",
                          "three_or_more_levels": "pass", "osteoporosis": "unknown",
                          "severe_sacral_destruction": "unknown"}
    table = verdicts_table(verdicts)
    assert list(table.columns[:2]) == ["id", "verdict"]


def test_user_rule_set(tmp_path: Path, cohort) -> None:
    p = tmp_path / "rules.yaml"
    p.write_text("name: mine\nrules:\n  - id: long_fu\n    kind: include\n"
                 "    field: follow_up_months\n    op: '>'\n    value: 20\n", encoding="utf-8")
    rs = load_rules(p)
    got = {v.id: v.verdict for v in evaluate_eligibility(cohort, rs)}
    assert got["two"] == "eligible"
    assert got["three"] == "eligible"
    assert got["ok"] == "ineligible"
    assert got["osteo"] == "ineligible"  # 20 is not > 20


@pytest.mark.parametrize(
    ("body", "column", "match"),
    [
        ("rules: []\n", "rules", "non-empty 'rules'"),
        ("rules:\n  - id: a\n    kind: maybe\n    field: sex\n    op: '=='\n    value: F\n",
         "rules[0].kind", "include or exclude"),
        ("rules:\n  - id: a\n    kind: include\n    field: height\n    op: '=='\n    value: 1\n",
         "rules[0].field", "unknown field 'height'"),
        ("rules:\n  - id: a\n    kind: include\n    field: sex\n    op: '~'\n    value: F\n",
         "rules[0].op", "unknown op"),
        ("rules:\n  - id: a\n    kind: include\n    field: sex\n    op: '=='\n",
         "rules[0]", "missing required key 'value'"),
        ("rules:\n  - id: a\n    kind: include\n    field: age_years\n    op: between\n"
         "    value: 3\n", "rules[0].value", "between needs"),
    ],
)
def test_bad_rule_sets_name_the_rule(tmp_path: Path, body: str, column: str, match: str) -> None:
    p = tmp_path / "r.yaml"
    p.write_text(body, encoding="utf-8")
    with pytest.raises(ValidationError, match=match) as info:
        load_rules(p)
    assert info.value.column == column
    assert info.value.path == str(p)

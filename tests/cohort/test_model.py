"""Case model vocabularies: segments, time-point order, derived fields; more reader paths."""

from __future__ import annotations

from pathlib import Path

import pytest

from alarscrew.cohort import Case, parse_segments, read_cohort, sort_timepoints
from alarscrew.errors import ValidationError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("L4/L5L5/S1", ("L4/L5", "L5/S1")),  # as printed in Fang et al. 2022 Table 1, case 1
        ("L5/S1; L4/L5", ("L4/L5", "L5/S1")),
        ("l4-l5, l5-s1", ("L4/L5", "L5/S1")),
        ("L4L5 and L5S1", ("L4/L5", "L5/S1")),
        ("T12/L1", ("T12/L1",)),
    ],
)
def test_parse_segments(text: str, expected: tuple[str, ...]) -> None:
    assert parse_segments(text) == expected


@pytest.mark.parametrize("text", ["L5/S2", "L3/L5", "L5", "S1/S2", "L4/L5 junk", ""])
def test_parse_segments_rejects(text: str) -> None:
    with pytest.raises(ValueError, match=r"segment"):
        parse_segments(text)


def test_timepoint_order() -> None:
    assert sort_timepoints(["final", "post_12m", "post_3d", "pre", "post_9m", "post_2w",
                            "post_1y"]) == ("pre", "post_3d", "post_2w", "post_9m", "post_12m",
                                            "post_1y", "final")
    with pytest.raises(ValueError, match="unknown time point"):
        sort_timepoints(["pre", "postop"])


def test_derived_fields() -> None:
    assert Case("a", fused_segments=("L4/L5", "L5/S1")).fused_to_sacrum is True
    assert Case("a", fused_segments=("L3/L4", "L5/S1")).fused_to_sacrum is False  # gap
    assert Case("a", fused_segments=("L4/L5",)).fused_to_sacrum is False
    assert Case("a").fused_to_sacrum is None
    assert Case("a").n_fused_levels is None
    assert Case("a", bmd_value=-2.6, bmd_kind="t_score").t_score == -2.6
    assert Case("a", bmd_value=2.6, bmd_kind="unspecified").t_score is None


def test_redcap_checkboxes_and_complications(tmp_path: Path) -> None:
    p = tmp_path / "r.csv"
    p.write_text(
        "record_id,redcap_event_name,symptoms___back_pain,symptoms___leg_pain,"
        "complications___local_pain,complications___wound_infection,complications___none,vas\n"
        "1,pre_arm_1,1,1,0,0,0,7\n"
        "1,post_3d_arm_1,,,Checked,Unchecked,Unchecked,3\n"
        "2,pre_arm_1,1,0,0,0,0,6\n"
        "3,pre_arm_1,1,0,0,0,1,6\n", encoding="utf-8")
    c = read_cohort(p)
    assert c.case("1").symptoms == ("back_pain", "leg_pain")
    assert [x.category for x in c.case("1").complications] == ["local_pain"]
    # REDCap exports 0 for a form never filled in: all unchecked is "not recorded", not "none"
    assert c.case("2").complications is None
    assert c.case("3").complications == ()  # the explicit 'none' option
    assert c.case("2").symptoms == ("back_pain",)


def test_wide_complications_text(tmp_path: Path) -> None:
    p = tmp_path / "w.csv"
    p.write_text("id,complications,vas_pre\n1,local pain: relieved by analgesics; dural tear,7\n"
                 "2,none,6\n3,,5\n", encoding="utf-8")
    c = read_cohort(p)
    first = c.case("1").complications
    assert [(x.category, x.text) for x in first] == [("local_pain", "relieved by analgesics"),
                                                      ("dural_tear", "")]
    assert c.case("2").complications == ()
    assert c.case("3").complications is None  # not recorded is not "none"


def test_long_odi_items_and_disagreement(tmp_path: Path) -> None:
    items = ",".join(f"odi_q{k}" for k in range(1, 11))
    p = tmp_path / "l.csv"
    p.write_text(f"id,timepoint,odi,{items}\nA,pre,40,2,2,2,2,2,2,2,2,2,2\n", encoding="utf-8")
    s = read_cohort(p).case("A").scores[0]
    assert (s.value, s.items) == (40.0, (2,) * 10)
    p.write_text(f"id,timepoint,odi,{items}\nA,pre,46,2,2,2,2,2,2,2,2,2,2\n", encoding="utf-8")
    with pytest.raises(ValidationError, match=r"ODI 46 disagrees with 40\.00") as info:
        read_cohort(p)
    assert (info.value.row, info.value.column) == (1, "odi")

"""The embedded dataset fang2022 against the paper's printed tables.

Reference: the full text at ../shared/reference/fang2022-s1-alar-screws.txt. Table rows are parsed
from that text here with a regex, independently of the CSV transcription, and compared exactly.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from alarscrew.cohort import load_cohort
from tests.conftest import SHARED_DATA, _need

PAPER = SHARED_DATA.parent / "reference" / "fang2022-s1-alar-screws.txt"

_T1 = re.compile(r"^([1-7]) (\d+) ([FM]) (.+?Spondylitis) (Back pain(?: and leg pain)?) "
                 r"(\d\.\d) ((?:L\d/[LS]\d)+) (\d+)$")
_T2 = re.compile(r"^([1-7])((?: \d+){7})$")


@pytest.fixture(scope="module")
def paper_tables() -> tuple[dict, dict]:
    text = _need(PAPER).read_text(encoding="utf-8")
    t1 = {m.group(1): m.groups()[1:] for line in text.splitlines()
          if (m := _T1.match(line.strip()))}
    t2 = {m.group(1): [int(x) for x in m.group(2).split()] for line in text.splitlines()
          if (m := _T2.match(line.strip()))}
    assert len(t1) == 7
    assert len(t2) == 7
    return t1, t2


def test_table1_matches_paper(paper_tables: tuple[dict, dict]) -> None:
    t1, _ = paper_tables
    base = load_cohort("fang2022").baseline().set_index("id")
    for cid, (age, sex, problem, symptoms, bmd, levels, follow) in t1.items():
        row = base.loc[cid]
        assert row["age_years"] == float(age)
        assert row["sex"] == sex
        assert row["bmd_value"] == float(bmd)
        assert row["bmd_kind"] == "unspecified"
        assert row["follow_up_months"] == float(follow)
        assert row["fused_segments"] == "; ".join(re.findall(r"L\d/[LS]\d", levels))
        assert row["symptoms"] == ("back_pain; leg_pain" if "leg" in symptoms else "back_pain")
        expected_dx = {"Chronic Pyogenic Spondylitis": "chronic_pyogenic",
                       "Postoperative Pyogenic Spondylitis": "postoperative_pyogenic",
                       "Tuberculotic Spondylitis": "tuberculous"}[problem]
        assert row["diagnosis"] == expected_dx


def test_table2_matches_paper(paper_tables: tuple[dict, dict]) -> None:
    _, t2 = paper_tables
    cohort = load_cohort("fang2022")
    assert cohort.timepoints == ("pre", "post_3d", "post_9m")
    vas = cohort.outcomes_wide("vas")
    odi = cohort.outcomes_wide("odi")
    base = cohort.baseline().set_index("id")
    for cid, nums in t2.items():
        np.testing.assert_array_equal(vas.loc[cid].to_numpy(), nums[0:3])
        np.testing.assert_array_equal(odi.loc[cid].to_numpy(), nums[3:6])
        assert base.loc[cid, "fusion_time_months"] == nums[6]


def test_kept_as_printed_and_cohort_level_facts() -> None:
    cohort = load_cohort("fang2022")
    # case 1 follow-up printed as 19 although the text says range 12-18: kept as printed
    assert cohort.case("1").follow_up_months == 19.0
    # complications are not attributed to patients: None per case, 2/7 at cohort level
    assert all(c.complications is None for c in cohort.cases)
    pain = [n for n in cohort.notes if n.topic == "complication.postoperative_local_pain"]
    assert len(pain) == 1
    assert (pain[0].count, pain[0].of) == (2, 7)
    assert "10.1186/s12891-022-05824-6" in (cohort.citation or "")


def test_outcomes_long_contract() -> None:
    long = load_cohort("fang2022").outcomes_long()
    assert list(long.columns) == ["id", "variable", "timepoint", "value"]
    assert len(long) == 7 * 2 * 3
    assert list(long["timepoint"].cat.categories) == ["pre", "post_3d", "post_9m"]
    assert long["value"].dtype == float
    # hand sum of Table 2, ODI pre column: 75+68+71+70+72+76+74 = 506
    pre = long[(long["variable"] == "odi") & (long["timepoint"] == "pre")]["value"]
    assert pre.sum() == 506.0

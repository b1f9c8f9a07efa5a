"""The reference paper's 7 cases as plain DataFrames, for the cohort report tests.

Provenance: Fang et al., BMC Musculoskeletal Disorders 2022, Tables 1 and 2, transcribed by
hand; :func:`test_transcription_matches_paper_text` checks the transcription against the
full text in ../shared/reference (skips when it is absent). The frames follow the formats of
``Cohort.baseline()`` and ``Cohort.outcomes_long()`` in docs/DEVELOPING.md, so the report
code can be tested before and independently of ``alarscrew.cohort``.
"""

from __future__ import annotations

import re

import pandas as pd
import pytest

from tests.conftest import SHARED_DATA

#: case, age, sex, diagnosis, bmd, fused segments, follow-up (months) -- paper Table 1
TABLE1 = (
    ("1", 63, "F", "chronic_pyogenic", 2.3, "L4/L5;L5/S1", 19),
    ("2", 52, "F", "postoperative_pyogenic", 2.4, "L5/S1", 15),
    ("3", 78, "F", "tuberculous", 1.8, "L5/S1", 18),
    ("4", 61, "M", "postoperative_pyogenic", 2.1, "L5/S1", 12),
    ("5", 57, "M", "chronic_pyogenic", 1.6, "L5/S1", 12),
    ("6", 69, "F", "postoperative_pyogenic", 1.9, "L5/S1", 15),
    ("7", 65, "M", "chronic_pyogenic", 2.2, "L5/S1", 15),
)
#: case, VAS pre/3 d/9 m, ODI pre/3 d/9 m, fusion time (months) -- paper Table 2
TABLE2 = (
    ("1", 8, 3, 2, 75, 36, 28, 9),
    ("2", 7, 2, 2, 68, 30, 25, 9),
    ("3", 7, 3, 3, 71, 31, 22, 6),
    ("4", 6, 2, 2, 70, 30, 25, 12),
    ("5", 7, 3, 1, 72, 32, 24, 6),
    ("6", 8, 3, 2, 76, 37, 27, 6),
    ("7", 7, 2, 3, 74, 33, 25, 6),
)
TIMEPOINTS = ("pre", "post_3d", "post_9m")


def paper_baseline() -> pd.DataFrame:
    """Table 1 (+ fusion time of Table 2) in ``Cohort.baseline()`` format."""
    rows = []
    for (case, age, sex, dx, bmd, seg, fu), t2 in zip(TABLE1, TABLE2, strict=True):
        rows.append({"id": case, "age_years": float(age), "sex": sex, "diagnosis": dx,
                     "bmd_value": bmd, "bmd_kind": "unknown", "fused_segments": seg,
                     "follow_up_months": float(fu), "fusion_time_months": float(t2[7])})
    return pd.DataFrame(rows)


def paper_outcomes_long() -> pd.DataFrame:
    """Table 2 scores in ``Cohort.outcomes_long()`` format."""
    rows = []
    for case, *scores, _fusion in TABLE2:
        for k, tp in enumerate(TIMEPOINTS):
            rows.append({"id": case, "variable": "vas", "timepoint": tp,
                         "value": float(scores[k])})
    for case, *scores, _fusion in TABLE2:
        for k, tp in enumerate(TIMEPOINTS):
            rows.append({"id": case, "variable": "odi", "timepoint": tp,
                         "value": float(scores[3 + k])})
    return pd.DataFrame(rows)


def test_transcription_matches_paper_text() -> None:
    """Every case row of the two tables appears verbatim in the paper's full text."""
    ref = SHARED_DATA.parent / "reference" / "fang2022-s1-alar-screws.txt"
    if not ref.exists():
        pytest.skip(f"reference paper not found at {ref}")
    text = ref.read_text(encoding="utf-8")
    for case, *vals in TABLE2:
        line = " ".join(str(v) for v in (case, *vals))
        assert re.search(rf"^{re.escape(line)}\s*$", text, flags=re.M), line
    for case, age, sex, _dx, bmd, seg, fu in TABLE1:
        pattern = (rf"^{case} {age} {sex} .* {bmd} {re.escape(seg.replace(';', ''))} {fu}\s*$")
        assert re.search(pattern, text, flags=re.M), pattern

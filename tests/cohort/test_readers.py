"""Cohort readers: the same patients in wide, long, XLSX and REDCap layouts, and every error kind.

The reference for the layout tests is the wide CSV written below; the other layouts encode the
same hand-written values, so every reader must give the identical long table.
"""

from __future__ import annotations

import re
from pathlib import Path

import openpyxl
import pandas as pd
import pytest

from alarscrew.cohort import load_cohort, read_cohort
from alarscrew.errors import InputError, ValidationError

WIDE = """\
id,age_years,sex,diagnosis,fused_segments,bmd_value,bmd_kind,follow_up_months,\
vas_pre,vas_post_3m,odi_pre,odi_post_3m
A,60,F,Tuberculous spondylitis,L5/S1,-1.2,t_score,14,7,2,70,30
B,71,m,other,"L4/L5, L5/S1",,,12,8,3,64,22
"""

LONG = """\
id,timepoint,age_years,sex,diagnosis,fused_segments,bmd_value,bmd_kind,follow_up_months,vas,odi
A,pre,60,F,Tuberculous spondylitis,L5/S1,-1.2,t_score,14,7,70
A,post_3m,,,,,,,,2,30
B,pre,71,M,other,L4/L5;L5/S1,,,12,8,64
B,post_3m,71,M,other,L4/L5;L5/S1,,,12,3,22
"""


def _write(tmp_path: Path, text: str, name: str = "c.csv") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def _xlsx(tmp_path: Path, text: str, name: str = "c.xlsx") -> Path:
    """Write CSV text to an XLSX sheet with numbers stored as numbers (as Excel would)."""
    import csv
    import io

    wb = openpyxl.Workbook()
    ws = wb.active
    for rec in csv.reader(io.StringIO(text)):
        cells: list[object] = []
        for c in rec:
            try:
                cells.append(float(c) if c else None)
            except ValueError:
                cells.append(c)
        ws.append(cells)
    p = tmp_path / name
    wb.save(p)
    return p


def _long_table(path: Path) -> pd.DataFrame:
    return load_cohort(path).outcomes_long()


def test_wide_reads_values(tmp_path: Path) -> None:
    c = read_cohort(_write(tmp_path, WIDE))
    assert c.timepoints == ("pre", "post_3m")
    a, b = c.cases
    assert (a.age_years, a.sex, a.diagnosis, a.fused_segments) == (60, "F", "tuberculous",
                                                                   ("L5/S1",))
    assert (a.bmd_value, a.bmd_kind, a.t_score) == (-1.2, "t_score", -1.2)
    assert b.sex == "M"
    assert b.fused_segments == ("L4/L5", "L5/S1")
    assert b.bmd_value is None
    assert b.bmd_kind is None
    assert b.score("odi", "post_3m") == 22.0


@pytest.mark.parametrize("maker", ["long_csv", "wide_xlsx", "long_xlsx", "redcap"])
def test_layouts_agree_with_wide(tmp_path: Path, maker: str) -> None:
    ref = _long_table(_write(tmp_path, WIDE, "ref.csv"))
    if maker == "long_csv":
        p = _write(tmp_path, LONG)
    elif maker == "wide_xlsx":
        p = _xlsx(tmp_path, WIDE)
    elif maker == "long_xlsx":
        p = _xlsx(tmp_path, LONG)
    else:
        p = _write(tmp_path, (
            "record_id,redcap_event_name,age_years,sex,diagnosis,fused_segments___l4l5,"
            "fused_segments___l5s1,bmd_value,bmd_kind,follow_up_months,vas,odi,baseline_complete\n"
            "A,baseline_arm_1,60,F,Tuberculous spondylitis,0,1,-1.2,t_score,14,,,2\n"
            "A,pre_arm_1,,,,,,,,,7,70,2\n"
            "A,post_3m_arm_1,,,,,,,,,2,30,2\n"
            "B,baseline_arm_1,71,M,other,Checked,Checked,,,12,,,2\n"
            "B,pre_arm_1,,,,,,,,,8,64,2\n"
            "B,post_3m_arm_1,,,,,,,,,3,22,2\n"))
    got = _long_table(p)
    pd.testing.assert_frame_equal(got, ref)
    base = load_cohort(p).baseline()
    ref_base = load_cohort(tmp_path / "ref.csv").baseline()
    pd.testing.assert_frame_equal(base, ref_base)


def test_vas_mm_is_normalised(tmp_path: Path) -> None:
    c = read_cohort(_write(tmp_path, "id,vas_mm_pre,vas_mm_post_6w\nA,73,12\n"))
    assert c.case("A").score("vas", "pre") == pytest.approx(7.3, abs=1e-12)
    assert c.timepoints == ("pre", "post_6w")


def test_odi_from_items_wide_with_double_mark_and_missing(tmp_path: Path) -> None:
    # sections: 3 2 1 0 (missing) 4 "2;3" 1 1 2 -> double mark counts 3; sum 17 of 45 -> 37.78 %
    items = ["3", "2", "1", "0", "", "4", "2;3", "1", "1", "2"]
    header = ",".join(f"odi_pre_q{k}" for k in range(1, 11))
    c = read_cohort(_write(tmp_path, f"id,{header}\nA,{','.join(items)}\n"))
    s = c.case("A").scores[0]
    assert s.value == pytest.approx(100 * 17 / 45, abs=1e-12)
    assert s.items == (3, 2, 1, 0, None, 4, 3, 1, 1, 2)


def test_odi_redcap_checkboxes_take_higher_mark(tmp_path: Path) -> None:
    cols = [f"odi_q{k}___{m}" for k in range(1, 11) for m in range(6)]
    row = ["0"] * len(cols)
    for k in range(1, 11):  # every section statement 2 marked; section 1 also statement 4
        row[cols.index(f"odi_q{k}___2")] = "1"
    row[cols.index("odi_q1___4")] = "1"
    text = ("record_id,redcap_event_name," + ",".join(cols) + "\n"
            + "A,pre_arm_1," + ",".join(row) + "\n")
    c = read_cohort(_write(tmp_path, text))
    # 4 + 9*2 = 22 of 50 -> 44 %
    assert c.case("A").score("odi", "pre") == pytest.approx(44.0, abs=1e-12)


def _err(tmp_path: Path, text: str, *, xlsx: bool = False) -> tuple[ValidationError, Path]:
    p = _xlsx(tmp_path, text) if xlsx else _write(tmp_path, text)
    with pytest.raises(ValidationError) as info:
        read_cohort(p)
    return info.value, p


@pytest.mark.parametrize(
    ("text", "row", "column", "match"),
    [
        ("id,vas_pre\nA,5\nB,11\n", 2, "vas_pre", r"VAS must be within 0-10, got 11 \(a 0-100 mm"),
        ("id,odi_pre\nA,104\n", 1, "odi_pre", r"ODI must be within 0-100, got 104"),
        ("id,vas_pre\nA,5\nB,6\nA,7\n", 3, "id", r"duplicate id 'A' \(first in row 1\)"),
        ("id,age_years,vas_pre\nA,sixty,5\n", 1, "age_years", r"text in a numeric column"),
        ("id,fused_segments,vas_pre\nA,L5/S2,5\n", 1, "fused_segments", r"unknown segment"),
        ("id,fused_segments,vas_pre\nA,L3/L5,5\n", 1, "fused_segments", r"unknown segment"),
        ("id,vas_pre,vas_post6\nA,5,3\n", None, "vas_post6", r"unknown time point 'post6'"),
        ("id,vas_pre\nA,5\n,6\n", 2, "id", r"missing required field 'id'"),
        ("id,timepoint,vas\nA,pre,5\nA,later,3\n", 2, "timepoint", r"unknown time point"),
        ("id,timepoint,vas\nA,pre,5\nA,pre,3\n", 2, "id", r"duplicate id 'A' at time point"),
        ("id,timepoint,sex,vas\nA,pre,F,5\nA,post_3d,M,3\n", 2, "sex", r"conflicting values"),
        ("id,sex,vas_pre\nA,2,5\n", 1, "sex", r"unknown sex '2'"),
        ("id,vas_pre,,odi_pre\nA,5,,50\nB,5,x,50\n", 2, "#3", r"column without a name"),
        ("id,diagnosis,vas_pre\nA,Tuberclous spondylitis,5\n", 1, "diagnosis",
         r"unknown diagnosis 'Tuberclous spondylitis'"),
        ("id,bmd_value,bmd_kind,vas_pre\nA,-1,z_score,5\n", 1, "bmd_kind", r"unknown BMD kind"),
        ("id,odi_pre_q1,odi_pre_q2,odi_pre_q3,odi_pre_q4,odi_pre_q5,odi_pre_q6,odi_pre_q7,"
         "odi_pre_q8,odi_pre_q9,odi_pre_q10\nA,1,2,6,1,1,1,1,1,1,1\n", 1, "odi_pre_q3",
         r"ODI section answer must be within 0-5, got 6"),
        ("id,odi_pre_q1,odi_pre_q2,odi_pre_q3,odi_pre_q4,odi_pre_q5,odi_pre_q6,odi_pre_q7,"
         "odi_pre_q8,odi_pre_q9,odi_pre_q10\nA,1,2,3,,,1,1,1,1,1\n", 1, "odi_pre_q1",
         r"2 sections unanswered, more than the 1 allowed"),
        ("record_id,redcap_event_name,vas\nA,week_two_arm_1,5\n", 1, "redcap_event_name",
         r"unknown time point 'week_two'"),
        ("record_id,redcap_event_name,vas\nA,baseline_arm_1,5\n", 1, "vas",
         r"outcome value in event 'baseline'"),
        ("record_id,redcap_event_name,symptoms___back_pain,vas\nA,pre_arm_1,maybe,5\n", 1,
         "symptoms___back_pain", r"checkbox value must be 1/0"),
    ],
)
def test_validation_errors_name_file_row_column(
    tmp_path: Path, text: str, row: int | None, column: str, match: str
) -> None:
    err, p = _err(tmp_path, text)
    assert err.path == str(p)
    assert err.row == row
    assert err.column == column
    assert re.search(match, err.reason)
    # the one-line message carries the location
    assert str(p) in str(err)
    assert f"column '{column}'" in str(err)
    if row is not None:
        assert f"row {row}" in str(err)


def test_xlsx_errors_name_row_and_column(tmp_path: Path) -> None:
    err, p = _err(tmp_path, "id,vas_pre\nA,5\nB,11\n", xlsx=True)
    assert (err.path, err.row, err.column) == (str(p), 2, "vas_pre")
    err, p = _err(tmp_path, "id,odi_pre\nA,text\n", xlsx=True)
    assert (err.row, err.column) == (1, "odi_pre")
    assert "text in a numeric column" in str(err)


def test_missing_id_column_and_empty_and_unknown_format(tmp_path: Path) -> None:
    err, _ = _err(tmp_path, "name,vas_pre\nA,5\n")
    assert err.column == "id"
    assert "missing required column" in str(err)
    with pytest.raises(ValidationError, match="empty file"):
        read_cohort(_write(tmp_path, "", "e.csv"))
    with pytest.raises(InputError, match="unsupported table format"):
        read_cohort(_write(tmp_path, "x", "c.json"))
    with pytest.raises(InputError, match="unknown embedded dataset"):
        load_cohort("fang2023")


def test_inputs_not_modified_and_unused_columns_reported(tmp_path: Path) -> None:
    p = _write(tmp_path, "id,remarks,vas_pre\nA,note,5\n")
    before = p.read_bytes()
    c = read_cohort(p)
    assert p.read_bytes() == before
    assert c.ignored_columns == ("remarks",)


def test_two_columns_for_one_field(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="columns 'age' and 'Age_Years' both give") as info:
        read_cohort(_write(tmp_path, "id,age,Age_Years,vas_pre\nA,60,61,5\n"))
    assert info.value.column == "Age_Years"
    with pytest.raises(ValidationError, match="duplicate column name") as info:
        read_cohort(_write(tmp_path, "id,vas_pre,VAS_pre\nA,5,6\n"))
    assert info.value.column == "VAS_pre"

# ruff: noqa: RUF001  (table cells print ranges with the en dash of manuscripts)
"""Tables 1 and 2 of the cohort report, checked against hand-computed statistics.

Reference values are computed by hand from the paper's case rows (Fang et al. 2022, Tables 1
and 2; see tests/report/test_cohort_data.py) with the working shown in each comment, so they
do not depend on pandas/numpy. Printed cells are compared exactly (they are rounded text);
unrounded numbers to 1e-9.
"""

from __future__ import annotations

import csv
import io
import math
import zipfile

import pandas as pd
import pytest

from alarscrew.errors import InputError
from alarscrew.report.cohort_tables import (
    COMPARISON_COLUMNS,
    CohortTable,
    baseline_table,
    comparisons_from_analysis,
    comparisons_table,
    data_decimals,
    eligibility_table,
    fmt_df,
    fmt_p,
    mcid_table,
    outcomes_table,
    p_phrase,
    results_sentences,
    timepoint_label,
    to_csv,
    to_html,
    to_markdown,
    write_docx,
    write_table_files,
)
from tests.report.test_cohort_data import TIMEPOINTS, paper_baseline, paper_outcomes_long


def _cells(table: CohortTable) -> dict[tuple[str, str], str]:
    """(characteristic carried down, category) -> value."""
    out, current = {}, ""
    for char, cat, value in table.rows:
        current = char or current
        out[(current, cat)] = value
    return out


def test_table1_matches_hand_computation() -> None:
    base = paper_baseline()
    before = base.copy(deep=True)
    cells = _cells(baseline_table(base))
    pd.testing.assert_frame_equal(base, before)  # input not modified
    assert cells[("Patients, n", "")] == "7"
    # Age: sum 445, mean 445/7 = 63.571; sum of squares 28713 - 445^2/7 = 423.714,
    # SD = sqrt(423.714/6) = 8.4035 -> "63.6 ± 8.4"; whole years -> range without decimals.
    assert cells[("Age, years, mean ± SD", "")] == "63.6 ± 8.4"
    assert cells[("Age, years, range", "")] == "52–78"
    # Sex: F in cases 1, 2, 3, 6 -> 4/7 = 57.1 %; M 3/7 = 42.9 %.
    assert cells[("Sex, n (%)", "Female")] == "4 (57.1)"
    assert cells[("Sex, n (%)", "Male")] == "3 (42.9)"
    assert cells[("Diagnosis, n (%)", "Chronic pyogenic spondylitis")] == "3 (42.9)"
    assert cells[("Diagnosis, n (%)", "Postoperative pyogenic spondylitis")] == "3 (42.9)"
    assert cells[("Diagnosis, n (%)", "Tuberculous spondylitis")] == "1 (14.3)"
    # BMD: sum 14.3, mean 2.042857; SS 29.71 - 14.3^2/7 = 0.497143, SD sqrt(0.497143/6) =
    # 0.28785 -> one decimal more than the data's one: "2.04 ± 0.29".
    assert cells[("BMD (kind not stated), mean ± SD", "")] == "2.04 ± 0.29"
    assert cells[("BMD (kind not stated), range", "")] == "1.6–2.4"
    assert cells[("Fused levels, n (%)", "L5/S1 (1 level)")] == "6 (85.7)"
    assert cells[("Fused levels, n (%)", "L4/L5 + L5/S1 (2 levels)")] == "1 (14.3)"
    # Follow-up: sum 106 -> 15.142857; SS 1648 - 106^2/7 = 42.857, SD sqrt(42.857/6) = 2.6726.
    assert cells[("Follow-up, months, mean ± SD", "")] == "15.1 ± 2.7"
    assert cells[("Follow-up, months, range", "")] == "12–19"
    # Fusion time: 9, 9, 6, 12, 6, 6, 6: sum 54 -> 7.714; SS 450 - 54^2/7 = 33.43, SD 2.3604.
    assert cells[("Time to fusion, months, mean ± SD", "")] == "7.7 ± 2.4"


def test_table1_never_pools_bmd_kinds_and_counts_missing() -> None:
    base = paper_baseline()
    base["bmd_kind"] = ["t_score"] * 3 + ["g_cm2"] * 4
    base.loc[0, "sex"] = None
    cells = _cells(baseline_table(base))
    # T-scores 2.3, 2.4, 1.8: mean 6.5/3 = 2.1667, SD sqrt((14.29 - 6.5^2/3)/2) = 0.3215.
    assert cells[("BMD (T-score), mean ± SD", "")] == "2.17 ± 0.32 [n = 3]"
    # g/cm2 2.1, 1.6, 1.9, 2.2: mean 1.95, SD sqrt((15.42 - 7.8^2/4)/3) = 0.2646.
    assert cells[("BMD (g/cm²), mean ± SD", "")] == "1.95 ± 0.26 [n = 4]"
    # Percentages of the 6 cases with a recorded sex: F 3/6, M 3/6.
    assert cells[("Sex, n (%)", "Female")] == "3 (50.0)"
    assert cells[("Sex, n (%)", "Missing")] == "1"


def test_table1_negative_range_and_unrecorded_fields() -> None:
    base = paper_baseline()
    base["bmd_value"] = [-1.2, -2.1, -0.5, None, -1.0, -1.5, -0.8]
    base["bmd_kind"] = "t_score"
    base["fusion_time_months"] = float("nan")
    table = baseline_table(base)
    cells = _cells(table)
    # 6 T-scores: sum -7.1 -> -1.1833; a dash between negatives would read as a minus.
    assert cells[("BMD (T-score), range", "")] == "\u2212" + "2.1 to \u2212" + "0.5"
    assert cells[("BMD (T-score), mean ± SD", "")].startswith("-1.18 ± ")
    assert not any(r[0].startswith("Time to fusion") for r in table.rows)
    assert "Not recorded for any case: Time to fusion, months." in table.notes


def test_table1_errors_name_row_and_column() -> None:
    base = paper_baseline()
    base["age_years"] = base["age_years"].astype(object)
    base.loc[2, "age_years"] = "seventy"
    with pytest.raises(InputError, match=r"row 3, column 'age_years': expected a number"):
        baseline_table(base)
    with pytest.raises(InputError, match="column 'sex'"):
        baseline_table(paper_baseline().drop(columns="sex"))
    dup = paper_baseline()
    dup.loc[1, "id"] = "1"
    with pytest.raises(InputError, match="duplicate case id '1'"):
        baseline_table(dup)


def test_table2a_matches_hand_computation() -> None:
    rows = outcomes_table(paper_outcomes_long(), TIMEPOINTS).rows
    assert len(rows) == 6
    # VAS pre: 8,7,7,6,7,8,7: sum 50 -> 7.142857; SS 360 - 2500/7 = 2.857143, SD 0.690066.
    # Sorted 6,7,7,7,7,8,8: type-7 quartiles at positions 1.5 and 4.5 -> 7.0 and 7.5.
    assert rows[0] == ("VAS (0-10)", "Pre-op", "7", "7.1 ± 0.7", "7.0 [7.0, 7.5]", "6–8")
    # VAS 3 d: 3,2,3,2,3,3,2: sum 18 -> 2.571; SS 48 - 324/7 = 1.714, SD 0.5345.
    assert rows[1][1:] == ("Post-op 3 d", "7", "2.6 ± 0.5", "3.0 [2.0, 3.0]", "2–3")
    # ODI pre: 75,68,71,70,72,76,74: sum 506 -> 72.2857; SS 36626 - 506^2/7 = 49.43,
    # SD 2.8702; sorted 68,70,71,72,74,75,76 -> quartiles 70.5 and 74.5.
    assert rows[3] == ("ODI (%)", "Pre-op", "7", "72.3 ± 2.9", "72.0 [70.5, 74.5]", "68–76")
    # ODI 9 m: 28,25,22,25,24,27,25: sum 176 -> 25.1429; SS 4448 - 176^2/7 = 22.857, SD 1.9518.
    assert rows[5][1:] == ("Post-op 9 mo", "7", "25.1 ± 2.0", "25.0 [24.5, 26.0]", "22–28")


def test_table2a_keeps_study_order_of_categorical_timepoints() -> None:
    long = paper_outcomes_long().iloc[::-1].reset_index(drop=True)  # reversed rows
    long["timepoint"] = pd.Categorical(long["timepoint"], categories=list(TIMEPOINTS),
                                       ordered=True)
    rows = outcomes_table(long).rows
    assert [r[1] for r in rows[:3]] == ["Pre-op", "Post-op 3 d", "Post-op 9 mo"]


def _paper_analysis() -> dict:
    from alarscrew.stats import analyze_outcomes

    return analyze_outcomes(paper_outcomes_long(), timepoints=TIMEPOINTS).to_json_dict()


def test_table2b_paired_t_matches_hand_computation() -> None:
    comps = comparisons_from_analysis(_paper_analysis())
    assert tuple(comps.columns) == COMPARISON_COLUMNS
    row = comps[(comps["variable"] == "vas") & (comps["to"] == "post_3d")
                & (comps["test"] == "Paired t test")].iloc[0]
    # Differences 3d - pre: -5,-5,-4,-4,-4,-5,-5. Mean -32/7 = -4.5714286; SD of the
    # differences sqrt((4*(3/7)^2 + 3*(4/7)^2)/6) = sqrt(2/7) = 0.5345225;
    # t = mean / (SD/sqrt 7) = -22.627417; d_z = mean/SD = -8.5523597.
    mean = -32 / 7
    sd = math.sqrt(2 / 7)
    assert row["mean_diff"] == pytest.approx(mean, abs=1e-9)
    assert row["statistic"] == pytest.approx(mean / (sd / math.sqrt(7)), abs=1e-9)
    assert row["cohen_dz"] == pytest.approx(mean / sd, abs=1e-9)
    assert row["df"] == 6
    table = comparisons_table(comps)
    first = table.rows[0]
    # 95% CI: mean ± t(0.975, 6) * SD/sqrt(7), t(0.975, 6) = 2.4469119 (t table):
    # -4.5714 ± 0.4943 -> [-5.07, -4.08].
    assert first == ("VAS (0-10)", "Pre-op → Post-op 3 d", "Paired t test", "-22.63", "6",
                     "<0.001", "<0.001", "-4.57 [-5.07, -4.08]", "-8.55")
    tests = [r[2] for r in table.rows[:5]]
    assert tests == ["Paired t test", "Wilcoxon signed-rank (exact)",
                     "Wilcoxon signed-rank (exact, ties)", "Student t test (independent)",
                     "Shapiro-Wilk (differences)"]
    # Wilcoxon: all 7 differences negative, no zeros -> W = 0, exact two-sided p = 2/2^7.
    assert table.rows[1][3] == "0.00"
    assert table.rows[1][5] == "0.016"


def test_results_sentence_matches_hand_values() -> None:
    lines = results_sentences(_paper_analysis(), decimals={"vas": 0, "odi": 0})
    # VAS pre 50/7 = 7.14 ± 0.69, 3 d 18/7 = 2.57 ± 0.53; change and test as in Table 2b.
    assert lines[0] == (
        "VAS (0-10): 7.1 ± 0.7 pre-op and 2.6 ± 0.5 at post-op 3 d (n = 7 pairs); mean change "
        "-4.57 (95% CI -5.07 to -4.08), paired t(6) = -22.63, p < 0.001 (Holm p < 0.001), "
        "d_z = -8.55; exact Wilcoxon signed-rank p = 0.016.")
    assert len(lines) == 4


def test_table2b_rejects_incomplete_analysis() -> None:
    analysis = {"outcomes": {"vas": {"comparisons": [{"from": "pre", "to": "post_3d",
                                                      "paired_t": {"df": 6, "p": 0.01}}]}}}
    with pytest.raises(InputError, match=r"lacks 'paired_t.t'"):
        comparisons_from_analysis(analysis)
    with pytest.raises(InputError, match="'outcomes'"):
        comparisons_from_analysis({})


def test_mcid_table_counts_attainment() -> None:
    # Improvements (pre - later) of 4 patients, one missing; MCID 12.8 ODI points.
    att = pd.DataFrame({
        "id": ["a", "b", "c", "d"] * 2, "variable": ["odi"] * 4 + ["vas"] * 4,
        "from": "pre", "to": "post_3m",
        "improvement": [20.0, 12.8, 5.0, float("nan"), 2.0, 1.0, 3.0, 1.2],
        "mcid_points": [12.8] * 4 + [1.2] * 4,
        "attained": pd.array([True, True, False, None, True, False, True, True],
                             dtype="boolean"),
        "mcid_citation": "Copay 2008",
    })
    table = mcid_table(att, variables=["vas", "odi"])
    # VAS: 3 of 4 reach 1.2 (1.0 does not); improvements 2, 1, 3, 1.2: mean 7.2/4 = 1.8,
    # SD sqrt((4+1+9+1.44 - 7.2^2/4)/3) = sqrt(2.48/3) = 0.9092; data have 1 decimal -> 2.
    assert table.rows[0] == ("VAS (0-10)", "Pre-op → Post-op 3 mo", "1.2", "3/4 (75.0)",
                             "1.80 ± 0.91")
    # ODI: the missing patient is left out of N: 2 of 3 (12.8 counts as reached).
    assert table.rows[1][:4] == ("ODI (%)", "Pre-op → Post-op 3 mo", "12.8", "2/3 (66.7)")
    assert "MCID source: Copay 2008." in table.notes


def test_eligibility_table_counts_rules_and_verdicts() -> None:
    from types import SimpleNamespace as NS

    def verdict(cid: str, overall: str, *statuses: str) -> NS:
        kinds = ("include", "exclude")
        return NS(id=cid, verdict=overall, reason="", results=tuple(
            NS(rule_id=f"r{i}", kind=kinds[i], status=st) for i, st in enumerate(statuses)))

    verdicts = [verdict("1", "eligible", "pass", "pass"),
                verdict("2", "ineligible", "fail", "unknown"),
                verdict("3", "unknown", "pass", "unknown")]
    table = eligibility_table(verdicts, {"r0": "follow-up >= 12 m", "r1": "osteoporosis"},
                              rule_set="custom")
    assert table.title == "Table 4. Eligibility (rule set: custom)"
    assert table.rows == (("follow-up >= 12 m", "include", "2", "1", "0"),
                          ("osteoporosis", "exclude", "1", "0", "2"),
                          ("Overall verdict (eligible / ineligible / unknown)", "", "1", "1",
                           "1"))
    with pytest.raises(InputError, match="rule 'r0' status 'pass' is not one of"):
        eligibility_table([verdict("4", "eligible", "pass")], {"r9": "x"}, rule_set="c")


@pytest.mark.parametrize(("p", "text"), [(0.0004, "<0.001"), (0.001, "0.001"),
                                         (0.0494, "0.049"), (1.0, "1.000"), (None, "—"),
                                         (float("nan"), "—")])
def test_fmt_p(p: float | None, text: str) -> None:
    assert fmt_p(p) == text


def test_small_formatters() -> None:
    with pytest.raises(InputError, match="p value must lie in"):
        fmt_p(1.2)
    assert p_phrase(0.0001) == "p < 0.001"
    assert p_phrase(0.02) == "p = 0.020"
    assert fmt_df(6.0) == "6"
    assert fmt_df(10.5432) == "10.54"
    assert data_decimals([1.0, 2.5, 3.25]) == 2
    assert data_decimals([7, 8]) == 0
    assert [timepoint_label(t) for t in ("pre", "post_3d", "post_9m", "post_2y", "final")] \
        == ["Pre-op", "Post-op 3 d", "Post-op 9 mo", "Post-op 2 yr", "Final follow-up"]


def test_renderers_agree_and_escape() -> None:
    table = CohortTable(key="t", title="T <1> | x", header=("a|b", "c"),
                        rows=(("<b>", "1 ± 2"), ("x,y", 'q"z')), notes=("n1",))
    md = to_markdown(table)
    assert "| a\\|b | c |" in md
    assert "T <1> \\| x" in md
    html = to_html(table)
    assert "&lt;b&gt;" in html
    assert "<b>" not in html
    assert "<thead><tr><th scope=\"col\">a|b</th>" in html
    parsed = list(csv.reader(io.StringIO(to_csv(table))))
    assert parsed == [["a|b", "c"], ["<b>", "1 ± 2"], ["x,y", 'q"z']]
    with pytest.raises(InputError, match="row 1 has 1 cells"):
        CohortTable(key="bad", title="", header=("a", "b"), rows=(("x",),))


def test_docx_holds_real_word_tables(tmp_path) -> None:
    import docx
    from docx.oxml.ns import qn

    t1 = baseline_table(paper_baseline())
    t2 = outcomes_table(paper_outcomes_long(), TIMEPOINTS)
    path = write_docx([t1, t2], tmp_path / "tables.docx", heading="Cohort",
                      disclaimer="research only")
    doc = docx.Document(str(path))
    assert len(doc.tables) == 2
    for table, wt in zip((t1, t2), doc.tables, strict=True):
        assert [c.text for c in wt.rows[0].cells] == list(table.header)
        header_pr = wt.rows[0]._tr.trPr
        assert header_pr is not None
        assert header_pr.find(qn("w:tblHeader")) is not None
        assert all(run.bold for c in wt.rows[0].cells for run in c.paragraphs[0].runs)
        body = [tuple(c.text for c in row.cells) for row in wt.rows[1:]]
        assert body == list(table.rows)
    # Entries carry the zip epoch, not the time of saving: same tables, same bytes.
    with zipfile.ZipFile(path) as zf:
        assert {i.date_time for i in zf.infolist()} == {(1980, 1, 1, 0, 0, 0)}
    texts = [p.text for p in doc.paragraphs]
    assert t1.title in texts
    assert "research only" in texts


def test_docx_puts_wide_tables_on_landscape_pages(tmp_path) -> None:
    import docx
    from docx.enum.section import WD_ORIENT

    narrow = outcomes_table(paper_outcomes_long(), TIMEPOINTS)  # 6 columns
    wide = comparisons_table(comparisons_from_analysis(_paper_analysis()))  # 9 columns
    doc = docx.Document(str(write_docx([narrow, wide, narrow], tmp_path / "t.docx",
                                       heading="H")))
    orient = [s.orientation for s in doc.sections]
    assert orient == [WD_ORIENT.PORTRAIT, WD_ORIENT.LANDSCAPE, WD_ORIENT.PORTRAIT]
    assert doc.sections[1].page_width > doc.sections[1].page_height
    assert doc.sections[2].page_width < doc.sections[2].page_height
    only_wide = docx.Document(str(write_docx([wide], tmp_path / "w.docx")))
    assert [s.orientation for s in only_wide.sections] == [WD_ORIENT.LANDSCAPE]


def test_write_table_files_all_formats(tmp_path) -> None:
    table = outcomes_table(paper_outcomes_long(), TIMEPOINTS)
    paths = write_table_files(table, tmp_path)
    assert sorted(p.name for p in paths.values()) == [
        "table2_outcomes.csv", "table2_outcomes.docx", "table2_outcomes.html",
        "table2_outcomes.md"]
    frame = pd.read_csv(paths["csv"], dtype=str, keep_default_na=False)
    assert [tuple(r) for r in frame.itertuples(index=False)] == list(table.rows)
    assert "7.1 ± 0.7" in paths["md"].read_text(encoding="utf-8")

"""Manuscript tables for a cohort: Table 1 (baseline), Table 2a/2b (outcomes per time point,
comparisons with the pre-operative value), Table 3 (MCID attainment), Table 4 (eligibility),
and the results in words.

The tables are built from plain pandas DataFrames in the formats documented in
``docs/DEVELOPING.md`` (``Cohort.baseline()``, ``Cohort.outcomes_long()``) and from a tidy
comparisons frame (:data:`COMPARISON_COLUMNS`) that :func:`comparisons_from_analysis` derives
from the issue-2 JSON contract of ``alarscrew.stats.analyze_outcomes``. A table is a small
frozen :class:`CohortTable` of formatted text cells, rendered to Markdown, HTML, CSV and DOCX
by the ``to_*`` functions, so that every format shows exactly the same numbers.

Formatting conventions (stated in each table's notes): SD with ``ddof=1`` (sample SD, as SPSS),
quartiles by linear interpolation (Hyndman-Fan type 7, pandas/numpy default), percentages of
the non-missing count, p values to three decimals and ``<0.001`` below that (APA style).
"""

from __future__ import annotations

import csv
import html
import io
import math
import os
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from alarscrew.cohort.model import DIAGNOSES
from alarscrew.errors import InputError
from alarscrew.io.atomic import write_bytes, write_text

#: Columns of the tidy comparisons frame consumed by :func:`comparisons_table`.
COMPARISON_COLUMNS: tuple[str, ...] = (
    "variable", "from", "to", "test", "statistic", "df", "p", "p_holm",
    "mean_diff", "ci_low", "ci_high", "cohen_dz",
)

#: Display names of known outcome variables (others are shown upper-cased).
VARIABLE_LABELS: dict[str, str] = {
    "vas": "VAS (0-10)",
    "odi": "ODI (%)",
}

#: Display names of diagnosis codes: the cohort model's vocabulary, the single source of truth
#: (unknown codes: underscores to spaces, capitalised).
DIAGNOSIS_LABELS: dict[str, str] = dict(DIAGNOSES)

#: Display names of bone-density kinds.
BMD_KIND_LABELS: dict[str, str] = {
    "t_score": "T-score",
    "t-score": "T-score",
    "tscore": "T-score",
    "g_cm2": "g/cm²",
    "g/cm2": "g/cm²",
    "g/cm²": "g/cm²",
    "unknown": "kind not stated",
    "unspecified": "kind not stated",
}

#: Typographic characters of manuscript tables (named, so that no dash is ambiguous).
EN_DASH = "\u2013"  # ranges: 52-78 printed with an en dash
MINUS = "\u2212"  # minus sign in ranges with negative bounds
SD_NOTE = "SD: sample standard deviation (n \u2212 1)."

_SEX_LABELS = {"f": "Female", "female": "Female", "m": "Male", "male": "Male"}


@dataclass(frozen=True)
class CohortTable:
    """A rendered-ready table: text cells only, identical in every output format.

    Attributes
    ----------
    key : str
        File stem, e.g. ``"table1_baseline"``.
    title : str
        Caption, e.g. ``"Table 1. Baseline characteristics"``.
    header : tuple of str
        Column names.
    rows : tuple of tuple of str
        Body cells; every row has ``len(header)`` cells.
    notes : tuple of str
        Footnotes (abbreviations, conventions, which test was run).
    """

    key: str
    title: str
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    notes: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        width = len(self.header)
        for i, row in enumerate(self.rows, start=1):
            if len(row) != width:
                raise InputError(
                    f"table '{self.key}' row {i} has {len(row)} cells, header has {width}"
                )

    def to_frame(self) -> pd.DataFrame:
        """Return the cells as a DataFrame of strings (columns = header)."""
        return pd.DataFrame(list(self.rows), columns=list(self.header), dtype=object)


# --------------------------------------------------------------------------- number formatting


def _is_missing(x: Any) -> bool:
    if x is None:
        return True
    try:
        return bool(pd.isna(x))
    except (TypeError, ValueError):
        return False


def fmt_num(x: Any, decimals: int) -> str:
    """Format a number with fixed decimals; missing values as an em dash."""
    if _is_missing(x):
        return "—"
    return f"{float(x):.{decimals}f}"


def fmt_p(p: Any) -> str:
    """Format a p value: three decimals, ``<0.001`` below 0.001 (APA); missing as a dash."""
    if _is_missing(p):
        return "—"
    p = float(p)
    if not 0.0 <= p <= 1.0:
        raise InputError(f"p value must lie in [0, 1], got {p!r}")
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def p_phrase(p: Any) -> str:
    """``p = 0.002`` or ``p < 0.001`` for running text."""
    text = fmt_p(p)
    if text.startswith("<"):
        return f"p < {text[1:]}"
    return f"p = {text}"


def fmt_df(df: Any) -> str:
    """Format degrees of freedom: integers plain, fractional (Welch, GG) to 2 decimals."""
    if _is_missing(df):
        return "—"
    df = float(df)
    return f"{df:.0f}" if math.isclose(df, round(df), abs_tol=1e-9) else f"{df:.2f}"


def _mean_sd(values: np.ndarray, decimals: int) -> str:
    if values.size == 0:
        return "—"
    sd = float(np.std(values, ddof=1)) if values.size > 1 else float("nan")
    return f"{fmt_num(values.mean(), decimals)} ± {fmt_num(sd, decimals)}"


def fmt_range(lo: Any, hi: Any, decimals: int) -> str:
    """Range text: en dash between bounds; ``a to b`` with minus signs if a bound is negative.

    A dash between negative numbers would read as a minus (``-2.1--0.5``).
    """
    a, b = fmt_num(lo, decimals), fmt_num(hi, decimals)
    if a.startswith("-") or b.startswith("-"):
        return f"{a.replace('-', MINUS)} to {b.replace('-', MINUS)}"
    return f"{a}{EN_DASH}{b}"


def _range(values: np.ndarray, decimals: int) -> str:
    if values.size == 0:
        return "—"
    return fmt_range(values.min(), values.max(), decimals)


def _count_pct(count: int, total: int) -> str:
    return f"{count} ({100.0 * count / total:.1f})" if total else "0 (—)"


def _label(code: Any, labels: Mapping[str, str]) -> str:
    text = str(code).strip()
    return labels.get(text.lower(), text.replace("_", " ").capitalize() if text.islower()
                      else text)


def variable_label(variable: str) -> str:
    """Display name of an outcome variable (``vas`` -> ``VAS (0-10)``)."""
    return VARIABLE_LABELS.get(variable, variable.upper())


def timepoint_label(tp: str) -> str:
    """Display name of a time point: ``pre`` -> ``Pre-op``, ``post_3d`` -> ``Post-op 3 d``.

    Unknown names are returned with underscores replaced by spaces.
    """
    units = {"d": "d", "w": "wk", "m": "mo", "y": "yr"}
    t = tp.strip()
    if t.lower() in {"pre", "preop", "pre_op", "baseline"}:
        return "Pre-op"
    if t.lower() == "final":
        return "Final follow-up"
    if t.lower().startswith("post_"):
        rest = t[5:]
        if rest[:-1].isdigit() and rest[-1:].lower() in units:
            return f"Post-op {int(rest[:-1])} {units[rest[-1].lower()]}"
        return f"Post-op {rest.replace('_', ' ')}"
    return t.replace("_", " ")


# --------------------------------------------------------------------------- Table 1


def _require(frame: pd.DataFrame, columns: Iterable[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InputError(
            f"{what} lacks column(s) {missing}; got {list(frame.columns)}",
            column=missing[0],
        )


def _numeric(frame: pd.DataFrame, column: str) -> np.ndarray:
    """Non-missing values of a numeric column as float; text is an error naming the row."""
    col = frame[column]
    values = pd.to_numeric(col, errors="coerce")
    bad = values.isna() & col.notna()
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0]) + 1
        raise InputError(
            f"expected a number, got {col[bad].iloc[0]!r}", row=row, column=column
        )
    return values.dropna().to_numpy(dtype=float)


def _segments_key(value: Any) -> str | None:
    """Normalise a fused-segments cell (list/tuple or ``;``/``,``/``+`` separated text)."""
    if isinstance(value, list | tuple | np.ndarray):
        parts = [str(v).strip() for v in value]
    elif _is_missing(value):
        return None
    else:
        text = str(value)
        for sep in (";", ",", "+", " "):
            text = text.replace(sep, "|")
        parts = [p.strip() for p in text.split("|")]
    parts = [p.upper() for p in parts if p]
    if not parts:
        return None
    levels = f"{len(parts)} level" + ("s" if len(parts) > 1 else "")
    return f"{' + '.join(parts)} ({levels})"


def _multi_response(column: pd.Series, name: str,
                    not_recorded: list[str]) -> list[tuple[str, str, str]]:
    """Rows of a ``;``-separated multi-response field: each code, n (%) of cases with any."""
    recorded = column.map(lambda v: None if _is_missing(v) or not str(v).strip()
                          else [c.strip() for c in str(v).split(";") if c.strip()])
    recorded = recorded.dropna()
    if recorded.empty:
        not_recorded.append(name)
        return []
    counts: dict[str, int] = {}
    for codes in recorded:
        for code in dict.fromkeys(codes):
            counts[code] = counts.get(code, 0) + 1
    order = sorted(counts, key=lambda k: -counts[k])
    return [(f"{name}, n (%)" if i == 0 else "", _label(code, {}),
             _count_pct(counts[code], int(recorded.size))) for i, code in enumerate(order)]


def baseline_table(baseline: pd.DataFrame, *, title: str | None = None) -> CohortTable:
    """Table 1: baseline characteristics of a cohort.

    Parameters
    ----------
    baseline : DataFrame
        One row per case, as ``Cohort.baseline()``: required ``id``, ``age_years``, ``sex``;
        optional ``diagnosis``, ``symptoms`` (``;``-separated codes, several per case),
        ``bmd_value`` + ``bmd_kind``, ``fused_segments`` (list or ``;``-separated text),
        ``follow_up_months``, ``fusion_time_months``. Not modified.
    title : str, optional
        Caption; default ``"Table 1. Baseline characteristics (n = N)"``.

    Returns
    -------
    CohortTable
        Columns ``Characteristic``, ``Category``, ``Value``. Continuous variables as
        mean ± SD and range; categorical ones as n (%) of the non-missing cases. BMD is
        summarised separately per stated kind (T-score and g/cm² are never pooled).
    """
    _require(baseline, ("id", "age_years", "sex"), "baseline table")
    if baseline["id"].duplicated().any():
        dup = baseline.loc[baseline["id"].duplicated(), "id"].iloc[0]
        raise InputError(f"duplicate case id {dup!r}", column="id")
    n = len(baseline)
    rows: list[tuple[str, str, str]] = [("Patients, n", "", str(n))]
    notes: list[str] = []
    not_recorded: list[str] = []

    def continuous(column: str, name: str) -> None:
        if column not in baseline.columns:
            return
        values = _numeric(baseline, column)
        if values.size == 0:
            not_recorded.append(name)
            return
        missing = n - values.size
        suffix = f" [missing {missing}]" if missing else ""
        d = data_decimals(values)
        rows.append((f"{name}, mean ± SD", "", _mean_sd(values, d + 1) + suffix))
        rows.append((f"{name}, range", "", _range(values, d)))

    def categorical(column: str, name: str, labels: Mapping[str, str],
                    keyfunc: Any = None) -> None:
        if column not in baseline.columns:
            return
        raw = baseline[column]
        keys = raw.map(keyfunc) if keyfunc is not None else raw.where(raw.notna(), None)
        keys = keys.map(lambda v: None if _is_missing(v) or str(v).strip() == "" else v)
        present = keys.dropna()
        total = int(present.size)
        if total == 0:
            not_recorded.append(name)
            return
        counts = present.map(lambda v: _label(v, labels)).value_counts(sort=False)
        # Most frequent first, ties in order of first appearance (stable).
        order = sorted(counts.index, key=lambda k: -int(counts[k]))
        for i, level in enumerate(order):
            rows.append((f"{name}, n (%)" if i == 0 else "", level,
                         _count_pct(int(counts[level]), total)))
        if total < n:
            rows.append(("" if order else f"{name}, n (%)", "Missing", str(n - total)))

    continuous("age_years", "Age, years")
    categorical("sex", "Sex", _SEX_LABELS)
    categorical("diagnosis", "Diagnosis", DIAGNOSIS_LABELS)
    if "symptoms" in baseline.columns:
        rows.extend(_multi_response(baseline["symptoms"], "Symptoms", not_recorded))
    if "bmd_value" in baseline.columns:
        kinds = (baseline["bmd_kind"] if "bmd_kind" in baseline.columns
                 else pd.Series(["unknown"] * n, index=baseline.index))
        kinds = kinds.map(lambda k: "unknown" if _is_missing(k) else str(k).strip().lower())
        for kind in dict.fromkeys(kinds):
            sub = baseline.loc[kinds == kind]
            values = _numeric(sub.reset_index(drop=True), "bmd_value")
            if values.size == 0:
                continue
            label = BMD_KIND_LABELS.get(kind, kind)
            d = data_decimals(values)
            rows.append((f"BMD ({label}), mean ± SD", "", _mean_sd(values, d + 1)
                         + (f" [n = {values.size}]" if values.size != n else "")))
            rows.append((f"BMD ({label}), range", "", _range(values, d)))
            if label == "kind not stated":
                notes.append("BMD: the source gives the values without saying whether they "
                             "are T-scores or g/cm²; they are summarised as printed.")
    if "fused_segments" in baseline.columns:
        categorical("fused_segments", "Fused levels", {}, keyfunc=_segments_key)
    continuous("follow_up_months", "Follow-up, months")
    continuous("fusion_time_months", "Time to fusion, months")

    if "bmd_value" in baseline.columns and pd.to_numeric(
            baseline["bmd_value"], errors="coerce").isna().all():
        not_recorded.append("BMD")
    if not_recorded:
        notes.append(f"Not recorded for any case: {', '.join(not_recorded)}.")
    notes.append(f"{SD_NOTE} Percentages of non-missing cases.")
    return CohortTable(
        key="table1_baseline",
        title=title or f"Table 1. Baseline characteristics (n = {n})",
        header=("Characteristic", "Category", "Value"),
        rows=tuple(rows),
        notes=tuple(notes),
    )


# --------------------------------------------------------------------------- Table 2


def default_timepoints(outcomes_long: pd.DataFrame) -> list[str]:
    """Study order of time points: the categories of an ordered categorical column (as
    ``Cohort.outcomes_long()`` returns), else the order of first appearance."""
    col = outcomes_long["timepoint"]
    if isinstance(col.dtype, pd.CategoricalDtype):
        present = set(col.dropna().astype(str))
        return [str(c) for c in col.cat.categories if str(c) in present]
    return [str(t) for t in dict.fromkeys(col)]


def data_decimals(values: np.ndarray | pd.Series, *, max_decimals: int = 4) -> int:
    """Recorded precision of data: the fewest decimals that represent every value exactly.

    Summaries are printed with one decimal more than the data (mean, SD, median) and ranges
    at the data's own precision, so integer scores give ``7.1 ± 0.7`` and ``6-8``.
    """
    v = np.asarray(pd.to_numeric(pd.Series(values), errors="coerce").dropna(), dtype=float)
    for k in range(max_decimals + 1):
        scaled = v * 10.0**k
        if np.allclose(scaled, np.round(scaled), rtol=0.0, atol=1e-6):
            return k
    return max_decimals


def outcomes_table(outcomes_long: pd.DataFrame, timepoints: Sequence[str] | None = None,
                   *, title: str = "Table 2a. Outcomes per time point") -> CohortTable:
    """Table 2a: per variable and time point n, mean ± SD, median [IQR] and range.

    Parameters
    ----------
    outcomes_long : DataFrame
        ``Cohort.outcomes_long()`` format (``id, variable, timepoint, value``).
    timepoints : sequence of str, optional
        Study order of the time points.
    title : str
        Caption.

    Returns
    -------
    CohortTable
        Columns ``Outcome``, ``Time point``, ``n``, ``Mean ± SD``, ``Median [IQR]``, ``Range``.
    """
    from alarscrew.stats.descriptive import describe_outcomes

    order = list(timepoints) if timepoints is not None else default_timepoints(outcomes_long)
    data = outcomes_long.copy()
    data["timepoint"] = data["timepoint"].astype(str)
    data["variable"] = data["variable"].astype(str)
    desc = describe_outcomes(data, timepoints=order)
    rows = []
    previous: str | None = None
    for rec in desc.itertuples(index=False):
        variable, timepoint = str(rec.variable), str(rec.timepoint)
        raw = data.loc[data["variable"] == variable, "value"]
        range_d = data_decimals(raw)
        stat_d = range_d + 1
        rows.append((
            variable_label(variable) if variable != previous else "",
            timepoint_label(timepoint),
            str(rec.n),
            f"{fmt_num(rec.mean, stat_d)} ± {fmt_num(rec.sd, stat_d)}",
            f"{fmt_num(rec.median, stat_d)} "
            f"[{fmt_num(rec.q1, stat_d)}, {fmt_num(rec.q3, stat_d)}]",
            fmt_range(rec.min, rec.max, range_d),
        ))
        previous = variable
    notes = (
        f"{SD_NOTE} IQR: first and third quartiles "
        "(linear interpolation, Hyndman-Fan type 7).",
        "VAS: visual analogue scale for pain, 0-10. ODI: Oswestry disability index, %.",
    )
    return CohortTable(key="table2_outcomes", title=title,
                       header=("Outcome", "Time point", "n", "Mean ± SD", "Median [IQR]",
                               "Range"),
                       rows=tuple(rows), notes=notes)


def comparisons_from_analysis(analysis: Mapping[str, Any]) -> pd.DataFrame:
    """Tidy comparisons frame from the issue-2 JSON contract of ``analyze_outcomes``.

    Parameters
    ----------
    analysis : mapping
        ``OutcomeAnalysis.to_json_dict()``: ``{"outcomes": {VAR: {"comparisons": [{"from",
        "to", "paired_t": {"t","df","p","p_holm"}, "independent_t": {"t","df","p"},
        "mean_diff", "ci95", "cohen_dz", "wilcoxon": {"statistic","p","p_holm",
        "p_permutation"}, "shapiro": {"w","p"}}]}}}``. Optional keys may be absent.

    Returns
    -------
    DataFrame
        Columns :data:`COMPARISON_COLUMNS`, one row per comparison and test, in the order:
        paired t test, Wilcoxon signed-rank (scipy exact p), Wilcoxon signed-rank by full
        enumeration of sign flips (exact also with ties; only when given), independent
        two-sample t test, Shapiro-Wilk on the differences.
    """
    outcomes = analysis.get("outcomes")
    if not isinstance(outcomes, Mapping):
        raise InputError("analysis result lacks an 'outcomes' mapping", column="outcomes")
    # (key in comparison, display name, statistic key, p key)
    tests = (("paired_t", "Paired t test", "t", "p"),
             ("wilcoxon", "Wilcoxon signed-rank (exact)", "statistic", "p"),
             ("wilcoxon", "Wilcoxon signed-rank (exact, ties)", "statistic", "p_permutation"),
             ("independent_t", "Student t test (independent)", "t", "p"),
             ("shapiro", "Shapiro-Wilk (differences)", "w", "p"))
    records = []
    for variable, block in outcomes.items():
        for i, comp in enumerate(block.get("comparisons", [])):
            for key, name, stat_key, p_key in tests:
                res = comp.get(key)
                if not isinstance(res, Mapping):
                    continue
                if p_key != "p" and p_key not in res:
                    continue  # optional variant not supplied
                for needed in (stat_key, p_key):
                    if needed not in res:
                        raise InputError(
                            f"comparison {i} of '{variable}' lacks '{key}.{needed}'",
                            column=f"outcomes.{variable}.comparisons.{key}")
                paired = key == "paired_t"
                ci = comp.get("ci95") if paired else None
                records.append({
                    "variable": variable, "from": comp.get("from"), "to": comp.get("to"),
                    "test": name, "statistic": res.get(stat_key),
                    "df": res.get("df"), "p": res.get(p_key),
                    "p_holm": res.get("p_holm") if p_key == "p" else None,
                    "mean_diff": comp.get("mean_diff") if paired else None,
                    "ci_low": ci[0] if ci else None, "ci_high": ci[1] if ci else None,
                    "cohen_dz": comp.get("cohen_dz") if paired else None,
                })
    return pd.DataFrame.from_records(records, columns=list(COMPARISON_COLUMNS))


def analysis_notes(analysis: Mapping[str, Any]) -> list[str]:
    """Footnotes an analysis carries: the Holm family and each distinct Wilcoxon note.

    A Wilcoxon note shared by several comparisons is given once, listing them.
    """
    notes: list[str] = []
    if analysis.get("holm_family"):
        notes.append(f"Holm family: {analysis['holm_family']}.")
    by_note: dict[str, list[str]] = {}
    for variable, block in analysis.get("outcomes", {}).items():
        for comp in block.get("comparisons", []):
            note = (comp.get("wilcoxon") or {}).get("note")
            if note and note != "exact (no ties, no zeros)":
                by_note.setdefault(str(note), []).append(
                    f"{str(variable).upper()} {timepoint_label(str(comp.get('from')))} → "
                    f"{timepoint_label(str(comp.get('to')))}")
    for note, where in by_note.items():
        notes.append(f"Wilcoxon ({'; '.join(where)}): {note}.")
    return notes


def comparisons_table(comparisons: pd.DataFrame, *,
                      title: str = "Table 2b. Comparisons with the pre-operative value",
                      notes: Sequence[str] = ()) -> CohortTable:
    """Table 2b: tests of each later time point against the first.

    Parameters
    ----------
    comparisons : DataFrame
        Columns :data:`COMPARISON_COLUMNS` (see :func:`comparisons_from_analysis`).
        ``mean_diff`` is ``to`` minus ``from``; missing cells print as a dash.
    title : str
        Caption.
    notes : sequence of str
        Extra footnotes (e.g. which t test reproduces the paper).

    Returns
    -------
    CohortTable
        Columns ``Outcome``, ``Comparison``, ``Test``, ``Statistic``, ``df``, ``p``,
        ``Holm p``, ``Mean difference [95% CI]``, ``d_z``.
    """
    _require(comparisons, COMPARISON_COLUMNS, "comparisons table")
    rows = []
    prev_var, prev_pair = None, None
    for rec in comparisons.to_dict("records"):
        pair = (rec["variable"], rec["from"], rec["to"])
        d = 2
        diff = "—"
        if not _is_missing(rec["mean_diff"]):
            diff = (f"{fmt_num(rec['mean_diff'], d)} [{fmt_num(rec['ci_low'], d)}, "
                    f"{fmt_num(rec['ci_high'], d)}]")
        rows.append((
            variable_label(str(rec["variable"])) if rec["variable"] != prev_var else "",
            (f"{timepoint_label(str(rec['from']))} → {timepoint_label(str(rec['to']))}"
             if pair != prev_pair else ""),
            str(rec["test"]),
            fmt_num(rec["statistic"], 2),
            fmt_df(rec["df"]),
            fmt_p(rec["p"]),
            fmt_p(rec["p_holm"]),
            diff,
            fmt_num(rec["cohen_dz"], 2),
        ))
        prev_var, prev_pair = rec["variable"], pair
    base = (
        "Mean difference: later minus pre-operative value, with the 95% CI of the paired t "
        "test. d_z: mean of the differences divided by their SD (Cohen's d_z).",
        "Holm p: Holm-Bonferroni adjusted across the comparisons of the analysis; "
        "p values two-tailed.",
        "Wilcoxon signed-rank (exact): scipy's exact p, whose null distribution assumes no "
        "tied |differences|; (exact, ties): all sign flips enumerated, exact also with ties. "
        "Student t test (independent): pooled-variance two-sample test, shown because the "
        "paper's \"Student's t test\" does not say whether it was paired.",
    )
    return CohortTable(key="table2_comparisons", title=title,
                       header=("Outcome", "Comparison", "Test", "Statistic", "df", "p",
                               "Holm p", "Mean difference [95% CI]", "d_z"),
                       rows=tuple(rows), notes=base + tuple(notes))


def mcid_table(attainment: pd.DataFrame, *, variables: Sequence[str] | None = None,
               notes: Sequence[str] = (),
               title: str = "Table 3. Minimal clinically important difference (MCID) "
                            "attained") -> CohortTable:
    """Table 3: per variable and later time point, patients reaching the MCID.

    Parameters
    ----------
    attainment : DataFrame
        ``alarscrew.cohort.mcid_attainment(cohort)``: columns ``id``, ``variable``, ``from``,
        ``to``, ``improvement`` (baseline minus later; positive = better), ``mcid_points``,
        ``attained`` (nullable boolean, NA when a score is missing), ``mcid_citation``.
    variables : sequence of str, optional
        Row order of the variables (default: order of first appearance); others follow.
    notes : sequence of str
        Extra footnotes (e.g. how an MCID was chosen for this variable).
    title : str
        Caption.

    Returns
    -------
    CohortTable
        Columns ``Outcome``, ``Comparison``, ``MCID, points``, ``Attained, n/N (%)``,
        ``Improvement, mean ± SD``; N counts the patients with both scores.
    """
    _require(attainment, ("id", "variable", "from", "to", "improvement", "mcid_points",
                          "attained", "mcid_citation"), "MCID table")
    rows = []
    previous = None
    present = list(dict.fromkeys(attainment["variable"].astype(str)))
    first = [v for v in (variables or ()) if v in present]
    rank = {v: i for i, v in enumerate(first + [v for v in present if v not in first])}
    ordered = attainment.assign(_rank=attainment["variable"].astype(str).map(rank))
    ordered = ordered.sort_values("_rank", kind="stable")
    groups = ordered.groupby(["variable", "from", "to"], sort=False, observed=True)
    for (variable, frm, to), g in groups:
        known = g["attained"].dropna().astype(bool)
        total = int(known.size)
        hit = int(known.sum())
        imp = pd.to_numeric(g["improvement"], errors="coerce").dropna().to_numpy(float)
        d = data_decimals(imp) + 1 if imp.size else 1
        points = pd.unique(g["mcid_points"])
        if points.size != 1:
            raise InputError(f"'{variable}' has several MCIDs {points.tolist()} in one "
                             "comparison", column="mcid_points")
        rows.append((
            variable_label(str(variable)) if variable != previous else "",
            f"{timepoint_label(str(frm))} → {timepoint_label(str(to))}",
            fmt_num(points[0], 1),
            f"{hit}/{total} ({100.0 * hit / total:.1f})" if total else "—",
            _mean_sd(imp, d),
        ))
        previous = variable
    citations = sorted({str(c) for c in attainment["mcid_citation"].dropna()})
    all_notes = ("Attained: improvement (pre-operative minus later score) at least the MCID; "
                 "N: patients with both scores.",
                 *(f"MCID source: {c}." for c in citations), *notes)
    return CohortTable(key="table3_mcid", title=title,
                       header=("Outcome", "Comparison", "MCID, points", "Attained, n/N (%)",
                               "Improvement, mean ± SD"),
                       rows=tuple(rows), notes=all_notes)


def eligibility_table(verdicts: Sequence[Any], rule_texts: Mapping[str, str], *,
                      rule_set: str,
                      title: str | None = None) -> CohortTable:
    """Table 4: how many cases pass, fail or cannot be checked on each eligibility rule.

    Parameters
    ----------
    verdicts : sequence
        ``alarscrew.cohort.eligibility.Verdict`` objects (``id``, ``verdict`` in
        ``eligible`` / ``ineligible`` / ``unknown``, ``results`` with ``rule_id``, ``kind``,
        ``status`` in ``pass`` / ``fail`` / ``unknown``).
    rule_texts : mapping
        Rule id -> the criterion in words (``RuleSet.rules[i].text``), in rule order.
    rule_set : str
        Name of the rule set, for the caption.
    title : str, optional
        Caption; default ``"Table 4. Eligibility (rule set: NAME)"``.

    Returns
    -------
    CohortTable
        Columns ``Criterion``, ``Kind``, ``Pass``, ``Fail``, ``Unknown``; one row per rule,
        then the overall verdicts (eligible / ineligible / unknown).
    """
    counts: dict[str, dict[str, int]] = {rid: {"pass": 0, "fail": 0, "unknown": 0}
                                         for rid in rule_texts}
    kinds: dict[str, str] = {}
    overall = {"eligible": 0, "ineligible": 0, "unknown": 0}
    for v in verdicts:
        if v.verdict not in overall:
            raise InputError(f"case {v.id!r}: unknown verdict {v.verdict!r}", column="verdict")
        overall[v.verdict] += 1
        for r in v.results:
            if r.rule_id not in counts or r.status not in counts[r.rule_id]:
                raise InputError(f"case {v.id!r}: rule {r.rule_id!r} status {r.status!r} is "
                                 "not one of the rule set's rules / pass, fail, unknown",
                                 column="results")
            counts[r.rule_id][r.status] += 1
            kinds[r.rule_id] = r.kind
    rows = [(text, kinds.get(rid, "—"), str(counts[rid]["pass"]), str(counts[rid]["fail"]),
             str(counts[rid]["unknown"])) for rid, text in rule_texts.items()]
    rows.append(("Overall verdict (eligible / ineligible / unknown)", "",
                 str(overall["eligible"]), str(overall["ineligible"]),
                 str(overall["unknown"])))
    notes = ("Pass: an inclusion criterion holds, or an exclusion criterion does not. "
             "Unknown: the field is not recorded or not of the kind the rule needs (never "
             "counted as a pass). A case is ineligible if any rule fails, else unknown if any "
             "rule is unknown.",)
    return CohortTable(key="table4_eligibility",
                       title=title or f"Table 4. Eligibility (rule set: {rule_set})",
                       header=("Criterion", "Kind", "Pass", "Fail", "Unknown"),
                       rows=tuple(rows), notes=notes)


def results_sentences(analysis: Mapping[str, Any], *,
                      decimals: Mapping[str, int] | None = None) -> list[str]:
    """Manuscript-style sentences, one per comparison, from the analysis contract.

    Parameters
    ----------
    analysis : mapping
        ``OutcomeAnalysis.to_json_dict()`` (descriptives under ``timepoints``, comparisons).
    decimals : mapping, optional
        Variable -> decimals of the recorded data (:func:`data_decimals`); means and SDs are
        printed with one more. Default 0 (whole-number scores).

    Returns
    -------
    list of str
        E.g. ``"VAS (0-10): 7.1 ± 0.7 pre-op and 2.6 ± 0.5 at post-op 3 d (n = 7 pairs);
        mean change -4.57 (95% CI -5.07 to -4.08), paired t(6) = -22.63, p < 0.001
        (Holm p < 0.001), d_z = -8.55; exact Wilcoxon signed-rank p = 0.016."``
    """
    out = []
    for variable, block in analysis.get("outcomes", {}).items():
        d = (decimals or {}).get(str(variable), 0) + 1
        tps = block.get("timepoints", {})
        for comp in block.get("comparisons", []):
            a, b = tps.get(comp.get("from"), {}), tps.get(comp.get("to"), {})
            pt = comp.get("paired_t") or {}
            ci = comp.get("ci95") or [None, None]
            wil = comp.get("wilcoxon") or {}
            holm = f" (Holm {p_phrase(pt['p_holm'])})" if pt.get("p_holm") is not None else ""
            wil_text = (f"; exact Wilcoxon signed-rank {p_phrase(wil['p'])}"
                        if wil.get("p") is not None else "")
            pairs = comp.get("n_pairs")
            counts = (f"n = {pairs} pairs" if a.get("n") == pairs == b.get("n") else
                      f"means of all available cases, n = {a.get('n')} and {b.get('n')}; "
                      f"{pairs} complete pairs")
            out.append(
                f"{variable_label(str(variable))}: "
                f"{fmt_num(a.get('mean'), d)} ± {fmt_num(a.get('sd'), d)} "
                f"{timepoint_label(str(comp.get('from'))).lower()} and "
                f"{fmt_num(b.get('mean'), d)} ± {fmt_num(b.get('sd'), d)} at "
                f"{timepoint_label(str(comp.get('to'))).lower()} "
                f"({counts}); mean change "
                f"{fmt_num(comp.get('mean_diff'), 2)} (95% CI {fmt_num(ci[0], 2)} to "
                f"{fmt_num(ci[1], 2)}), paired t({fmt_df(pt.get('df'))}) = "
                f"{fmt_num(pt.get('t'), 2)}, {p_phrase(pt.get('p'))}{holm}, "
                f"d_z = {fmt_num(comp.get('cohen_dz'), 2)}{wil_text}.")
    return out


# --------------------------------------------------------------------------- renderers


def to_markdown(table: CohortTable) -> str:
    """Render as a GitHub-flavoured Markdown pipe table with caption and notes."""
    def cell(text: str) -> str:
        return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")

    lines = [f"**{cell(table.title)}**", ""]
    lines.append("| " + " | ".join(cell(h) for h in table.header) + " |")
    lines.append("|" + "|".join("---" for _ in table.header) + "|")
    lines.extend("| " + " | ".join(cell(c) for c in row) + " |" for row in table.rows)
    if table.notes:
        lines.append("")
        lines.extend(f"{cell(n)}  " for n in table.notes)
    return "\n".join(lines).rstrip() + "\n"


def to_html(table: CohortTable, *, table_id: str | None = None) -> str:
    """Render as an HTML fragment: ``<table>`` with caption, ``<thead>`` and a notes footer."""
    esc = html.escape
    tid = f' id="{esc(table_id)}"' if table_id else ""
    parts = [f'<table class="cohort-table"{tid}>', f"<caption>{esc(table.title)}</caption>",
             "<thead><tr>" + "".join(f'<th scope="col">{esc(h)}</th>' for h in table.header)
             + "</tr></thead>", "<tbody>"]
    for row in table.rows:
        cls = ' class="group-start"' if row[0] else ""
        parts.append(f"<tr{cls}>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>")
    parts.append("</tbody>")
    if table.notes:
        parts.append(f'<tfoot><tr><td colspan="{len(table.header)}">'
                     + "<br>".join(esc(n) for n in table.notes) + "</td></tr></tfoot>")
    parts.append("</table>")
    return "\n".join(parts) + "\n"


def to_csv(table: CohortTable) -> str:
    """Render the header and body as CSV text (RFC 4180 quoting, ``\\n`` line ends)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(table.header)
    writer.writerows(table.rows)
    return buf.getvalue()


#: Tables with more columns than this go on a landscape page in Word documents.
LANDSCAPE_ABOVE_COLUMNS = 6


def _orient_for(document: Any, *, landscape: bool, first: bool) -> None:
    """Switch the page orientation for the next table, starting a new section if needed.

    The first table of a document without heading re-orients the initial section instead.
    """
    from docx.enum.section import WD_ORIENT, WD_SECTION

    section = document.sections[-1]
    want = WD_ORIENT.LANDSCAPE if landscape else WD_ORIENT.PORTRAIT
    if section.orientation == want:
        return
    if not first:
        section = document.add_section(WD_SECTION.NEW_PAGE)
    width, height = section.page_width, section.page_height
    section.orientation = want
    if (want == WD_ORIENT.LANDSCAPE) != (width > height):
        section.page_width, section.page_height = height, width


def write_docx(tables: Sequence[CohortTable], path: str | os.PathLike[str], *,
               heading: str | None = None, disclaimer: str | None = None,
               force: bool = True) -> Path:
    """Write tables into one Word document as real Word tables (header row repeated).

    Parameters
    ----------
    tables : sequence of CohortTable
        Each becomes a caption paragraph, a table with a bold header row marked as a
        repeating header (``w:tblHeader``), and its notes in small type. Tables wider than
        :data:`LANDSCAPE_ABOVE_COLUMNS` columns go into a landscape section.
    path : path
        Output ``.docx``; written atomically.
    heading : str, optional
        Document heading.
    disclaimer : str, optional
        Paragraph at the end.
    force : bool
        Overwrite an existing file.

    Returns
    -------
    Path
        ``path``.
    """
    import docx
    from docx.enum.table import WD_TABLE_ALIGNMENT
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn
    from docx.shared import Pt

    document = docx.Document()
    document.core_properties.author = "alarscrew"
    document.core_properties.title = heading or (tables[0].title if tables else "")
    if heading:
        document.add_heading(heading, level=1)
    for k, table in enumerate(tables):
        _orient_for(document, landscape=len(table.header) > LANDSCAPE_ABOVE_COLUMNS,
                    first=(k == 0 and not heading))
        caption = document.add_paragraph()
        caption.add_run(table.title).bold = True
        wt = document.add_table(rows=1 + len(table.rows), cols=len(table.header))
        wt.style = "Table Grid"
        wt.alignment = WD_TABLE_ALIGNMENT.CENTER
        header_row = wt.rows[0]
        tr_pr = header_row._tr.get_or_add_trPr()
        flag = OxmlElement("w:tblHeader")
        flag.set(qn("w:val"), "true")
        tr_pr.append(flag)
        for j, text in enumerate(table.header):
            cell = header_row.cells[j]  # a new cell: one empty paragraph, no runs
            run = cell.paragraphs[0].add_run(text)
            run.bold = True
        for i, row in enumerate(table.rows, start=1):
            cells = wt.rows[i].cells
            for j, text in enumerate(row):
                cells[j].text = text
        for row in wt.rows:
            for cell in row.cells:
                for para in cell.paragraphs:
                    for run in para.runs:
                        run.font.size = Pt(9)
        for note in table.notes:
            p = document.add_paragraph()
            r = p.add_run(note)
            r.font.size = Pt(8)
            r.italic = True
    if disclaimer:
        p = document.add_paragraph()
        p.add_run(disclaimer).italic = True
    buf = io.BytesIO()
    document.save(buf)
    write_bytes(path, _reproducible_zip(buf.getvalue()), force=force)
    return Path(path)


def _reproducible_zip(data: bytes) -> bytes:
    """Rewrite a zip (a .docx) with every entry dated 1980-01-01, the zip epoch.

    python-docx stamps entries with the time of saving; fixed dates make the same tables
    give the same bytes, so reports can be compared and cached.
    """
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            fixed = zipfile.ZipInfo(info.filename, date_time=(1980, 1, 1, 0, 0, 0))
            fixed.compress_type = zipfile.ZIP_DEFLATED
            fixed.external_attr = 0o644 << 16
            dst.writestr(fixed, src.read(info.filename))
    return out.getvalue()


def write_table_files(table: CohortTable, out_dir: str | os.PathLike[str], *,
                      disclaimer: str | None = None, force: bool = True) -> dict[str, Path]:
    """Write ``KEY.md``, ``KEY.html``, ``KEY.csv`` and ``KEY.docx`` into ``out_dir``.

    Returns
    -------
    dict
        Format name -> path written.
    """
    out = Path(out_dir)
    stem = out / table.key
    paths = {
        "md": write_text(stem.with_suffix(".md"), to_markdown(table), force=force),
        "html": write_text(stem.with_suffix(".html"), to_html(table), force=force),
        "csv": write_text(stem.with_suffix(".csv"), to_csv(table), force=force),
        "docx": write_docx([table], stem.with_suffix(".docx"), disclaimer=disclaimer,
                           force=force),
    }
    return paths

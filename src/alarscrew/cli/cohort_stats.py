"""``alarscrew cohort analyze DATA [--json OUT] [--force]``: outcome statistics of a cohort."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated

import typer


def _f(x: object, digits: int = 3) -> str:
    """Format a number for the console (JSON output stays unrounded)."""
    if x is None:
        return "-"
    v = float(x)  # type: ignore[arg-type]
    if not math.isfinite(v):
        return "-"
    if v != 0 and abs(v) < 10 ** -digits:
        return f"{v:.2e}"
    return f"{v:.{digits}f}"


def analyze(
    data: Annotated[str, typer.Argument(
        help="Cohort file (CSV/XLSX/REDCap) or embedded name (fang2022).")],
    json_out: Annotated[Path | None, typer.Option(
        "--json", help="Write the results as JSON.")] = None,
    baseline: Annotated[str, typer.Option("--baseline", help="Reference time point.")] = "pre",
    counts: Annotated[list[str] | None, typer.Option(
        "--counts", help="Count test of two baseline columns, ROW:COL (e.g. sex:diagnosis); "
                         "chi-square or Fisher's exact by the expected-count rule. "
                         "Repeatable.")] = None,
    force: Annotated[bool, typer.Option(
        "--force", help="Overwrite an existing --json file.")] = False,
) -> None:
    """Descriptives, baseline vs later time points (paired and Student t, 95% CI, d_z, exact
    Wilcoxon, Shapiro-Wilk, Holm), repeated-measures ANOVA (Greenhouse-Geisser) and Friedman.
    """
    from rich.console import Console
    from rich.table import Table

    from alarscrew import DISCLAIMER
    from alarscrew.cohort import load_cohort
    from alarscrew.errors import InputError
    from alarscrew.io.atomic import check_overwrite, write_text
    from alarscrew.stats import analyze_outcomes, compare_counts

    if json_out is not None:
        check_overwrite(json_out, force=force)
    cohort = load_cohort(data)
    result = analyze_outcomes(cohort, baseline=baseline)
    count_rows = []
    for spec in counts or []:
        row_var, sep, col_var = spec.partition(":")
        if not sep or not row_var or not col_var:
            raise InputError(f"expected ROW:COL such as sex:diagnosis, got {spec!r}",
                             column="--counts")
        count_rows.extend(compare_counts(cohort.baseline(), row_var, col_var).to_dict("records"))
    if json_out is not None:
        doc = result.to_json_dict()
        doc["counts"] = [{k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                          for k, v in r.items()} for r in count_rows]
        doc["source"] = data
        doc["disclaimer"] = DISCLAIMER
        write_text(json_out, json.dumps(doc, indent=2, allow_nan=False) + "\n", force=force)
        typer.echo(f"wrote {json_out}")
        return
    con = Console(width=160)
    t = Table(title=f"Outcomes of {data} (n={result.n})")
    for col in ("variable", "time point", "n", "mean", "SD", "median [IQR]", "range"):
        t.add_column(col)
    for d in result.descriptives.to_dict("records"):
        t.add_row(str(d["variable"]), str(d["timepoint"]), str(d["n"]), _f(d["mean"], 2),
                  _f(d["sd"], 2), f"{_f(d['median'], 1)} [{_f(d['q1'], 1)}, {_f(d['q3'], 1)}]",
                  f"{_f(d['min'], 0)}-{_f(d['max'], 0)}")
    con.print(t)
    c = Table(title=f"{baseline} vs later time points (difference = later - {baseline})")
    for col in ("variable", "to", "mean diff [95% CI]", "paired t (df)", "p", "p Holm",
                "Student t (df)", "p", "d_z", "Wilcoxon exact p", "Shapiro p"):
        c.add_column(col)
    for r in result.comparisons.to_dict("records"):
        c.add_row(str(r["variable"]), str(r["to"]),
                  f"{_f(r['mean_diff'], 2)} [{_f(r['ci95_low'], 2)}, {_f(r['ci95_high'], 2)}]",
                  f"{_f(r['paired_t'], 2)} ({r['paired_df']:g})", _f(r["paired_p"]),
                  _f(r["paired_p_holm"]),
                  f"{_f(r['independent_t'], 2)} ({r['independent_df']:g})",
                  _f(r["independent_p"]), _f(r["cohen_dz"], 2), _f(r["wilcoxon_p"], 4),
                  _f(r["shapiro_p"]))
    con.print(c)
    notes = sorted({r["wilcoxon_note"] for r in result.comparisons.to_dict("records")})
    for n in notes:
        con.print(f"Wilcoxon: {n}")
    o = Table(title="Across all time points")
    for col in ("variable", "n", "RM-ANOVA F (df)", "p", "GG epsilon", "p (GG)",
                "Friedman chi2 (df)", "p"):
        o.add_column(col)
    for om in result.omnibus.to_dict("records"):
        o.add_row(str(om["variable"]), str(om["n_subjects"]),
                  f"{_f(om['rm_f'], 2)} ({_f(om['rm_df1'], 0)}, {_f(om['rm_df2'], 0)})",
                  _f(om["rm_p"]), _f(om["gg_epsilon"]), _f(om["rm_p_gg"]),
                  f"{_f(om['friedman_chi2'], 2)} ({_f(om['friedman_df'], 0)})",
                  _f(om["friedman_p"]))
    con.print(o)
    if count_rows:
        ct = Table(title="Counts (test chosen by the expected-count rule)")
        for col in ("rows", "columns", "test", "statistic", "df", "p", "min expected"):
            ct.add_column(col)
        for cr in count_rows:
            ct.add_row(str(cr["row_variable"]), str(cr["column_variable"]), str(cr["test"]),
                       _f(cr["statistic"]), _f(cr["df"], 0), _f(cr["p"]),
                       _f(cr["min_expected"], 2))
        con.print(ct)
    con.print(DISCLAIMER)


def register(app: typer.Typer) -> None:
    """Add ``analyze`` to the ``cohort`` group (the root ``app`` is not used)."""
    from alarscrew.cli.cohort import cohort_app

    cohort_app.command("analyze")(analyze)

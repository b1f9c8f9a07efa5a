"""``alarscrew cohort ...``: the command group for cohort data, statistics and reports.

Other modules add their commands to :data:`cohort_app` in their own ``register``. This module
defines the data commands: ``validate``, ``eligibility``, ``odi`` and ``mcid``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated, Any

import typer

cohort_app = typer.Typer(
    name="cohort",
    help="Clinical cohort data: validate, eligibility, statistics, reports.",
    no_args_is_help=True,
)

DataArg = Annotated[str, typer.Argument(
    help="Cohort table (CSV/TSV/XLSX; wide, long or REDCap export) or embedded dataset name.")]
ForceOpt = Annotated[bool, typer.Option("--force", help="Overwrite an existing --json output.")]


def register(app: typer.Typer) -> None:
    """Attach the ``cohort`` group to the root app."""
    app.add_typer(cohort_app, name="cohort")


def _write_json(path: Path, doc: dict[str, Any], *, force: bool) -> None:
    from alarscrew.io.atomic import write_text

    write_text(path, json.dumps(doc, indent=2, ensure_ascii=False, allow_nan=False) + "\n",
               force=force)


def _none_if_nan(v: Any) -> Any:
    return None if isinstance(v, float) and math.isnan(v) else v


@cohort_app.command("validate")
def validate_cmd(
    data: DataArg,
    json_out: Annotated[Path | None, typer.Option(
        "--json", help="Write a JSON summary here.")] = None,
    odi_max_missing: Annotated[int, typer.Option(
        "--odi-max-missing", min=0, max=9, help="Unanswered ODI sections tolerated.")] = 1,
    force: ForceOpt = False,
) -> None:
    """Read and validate cohort data; print what was found. Exit 2 on the first broken rule."""
    from rich.console import Console
    from rich.table import Table

    from alarscrew.cohort import load_cohort

    cohort = load_cohort(data, odi_max_missing=odi_max_missing)
    long = cohort.outcomes_long()
    console = Console()
    console.print(f"[bold]{cohort.name}[/bold]: {len(cohort)} cases, time points "
                  f"{', '.join(cohort.timepoints)}; source {cohort.source}")
    table = Table("variable", *cohort.timepoints, title="scores present (n of cases)")
    counts: dict[str, dict[str, int]] = {}
    for var in cohort.variables:
        sub = long[long["variable"] == var]
        counts[var] = {str(tp): int(sub[sub["timepoint"] == tp]["value"].notna().sum())
                       for tp in cohort.timepoints}
        table.add_row(var, *(str(counts[var][tp]) for tp in cohort.timepoints))
    console.print(table)
    if cohort.ignored_columns:
        console.print(f"[yellow]columns not used:[/yellow] {', '.join(cohort.ignored_columns)}")
    for note in cohort.notes:
        console.print(f"note ({note.topic}): {note.text}")
    if cohort.citation:
        console.print(f"citation: {cohort.citation}")
    console.print("valid")
    if json_out is not None:
        _write_json(json_out, {
            "name": cohort.name, "source": cohort.source, "n": len(cohort),
            "timepoints": list(cohort.timepoints), "variables": list(cohort.variables),
            "scores_present": counts, "ignored_columns": list(cohort.ignored_columns),
            "notes": [n.__dict__ for n in cohort.notes], "citation": cohort.citation,
            "valid": True,
        }, force=force)


@cohort_app.command("eligibility")
def eligibility_cmd(
    data: DataArg,
    rules: Annotated[Path | None, typer.Option(
        "--rules", help="YAML rule set (default: Fang et al. 2022 criteria).")] = None,
    json_out: Annotated[Path | None, typer.Option(
        "--json", help="Write the verdicts as JSON.")] = None,
    force: ForceOpt = False,
) -> None:
    """Apply inclusion/exclusion criteria per case: eligible, ineligible or unknown, why."""
    from rich.console import Console
    from rich.table import Table

    from alarscrew.cohort import load_cohort
    from alarscrew.cohort.eligibility import evaluate_eligibility, load_rules

    cohort = load_cohort(data)
    ruleset = load_rules(rules)
    verdicts = evaluate_eligibility(cohort, ruleset)
    console = Console()
    console.print(f"rule set [bold]{ruleset.name}[/bold] ({ruleset.path}); source: "
                  f"{ruleset.source}")
    table = Table("id", "verdict", "passed", "failed", "unknown")
    for v in verdicts:
        by = {k: [r.rule_id for r in v.results if r.status == k]
              for k in ("pass", "fail", "unknown")}
        table.add_row(v.id, v.verdict, f"{len(by['pass'])}/{len(v.results)}",
                      ", ".join(by["fail"]) or "-", ", ".join(by["unknown"]) or "-")
    console.print(table)
    for v in verdicts:
        if v.verdict != "eligible":
            console.print(f"{v.id}: {v.verdict}: {v.reason}", soft_wrap=True)
    summary = {k: sum(v.verdict == k for v in verdicts)
               for k in ("eligible", "ineligible", "unknown")}
    console.print(", ".join(f"{k} {n}" for k, n in summary.items()))
    if json_out is not None:
        _write_json(json_out, {
            "cohort": cohort.name,
            "ruleset": {"name": ruleset.name, "path": ruleset.path, "source": ruleset.source,
                        "rules": [r.__dict__ for r in ruleset.rules]},
            "summary": summary,
            "verdicts": [v.to_dict() for v in verdicts],
        }, force=force)


@cohort_app.command("odi")
def odi_cmd(
    answers: Annotated[list[str], typer.Argument(
        help="10 section answers 0-5 in questionnaire order; '-' = unanswered; "
             "'2,3' = two statements marked (the higher counts).")],
    max_missing: Annotated[int, typer.Option(
        "--max-missing", min=0, max=9, help="Unanswered sections tolerated.")] = 1,
) -> None:
    """Score one Oswestry Disability Index v2.1a questionnaire from its section answers."""
    from alarscrew.cohort.instruments import odi_score
    from alarscrew.errors import ValidationError

    parsed: list[list[int] | None] = []
    for i, a in enumerate(answers, start=1):
        if a.strip() in {"-", ""}:
            parsed.append(None)
            continue
        try:
            marks = [int(x) for x in a.split(",")]
        except ValueError:
            raise ValidationError(f"expected 0-5, '-' or e.g. '2,3', got {a!r}",
                                  column=f"section {i}") from None
        parsed.append(marks)
    try:
        res = odi_score(parsed, max_missing=max_missing)
    except ValueError as exc:
        raise ValidationError(str(exc), column="answers") from None
    if res.percent is None:
        raise ValidationError(f"{10 - res.n_answered} sections unanswered, more than the "
                              f"{max_missing} allowed (--max-missing)", column="answers")
    typer.echo(f"ODI {res.percent:.1f}% ({res.band}); {res.n_answered} of 10 sections answered; "
               f"items {['-' if x is None else x for x in res.items]}")


@cohort_app.command("mcid")
def mcid_cmd(
    data: DataArg,
    baseline: Annotated[str, typer.Option("--baseline", help="Reference time point.")] = "pre",
    mcid_odi: Annotated[float | None, typer.Option(
        "--mcid-odi", help="ODI MCID in points (default 12.8, Copay 2008).")] = None,
    mcid_vas: Annotated[float | None, typer.Option(
        "--mcid-vas", help="VAS MCID in 0-10 points (default 1.2, Copay 2008).")] = None,
    json_out: Annotated[Path | None, typer.Option(
        "--json", help="Write the table as JSON.")] = None,
    force: ForceOpt = False,
) -> None:
    """Per-patient attainment of the minimal clinically important difference (MCID)."""
    import pandas as pd
    from rich.console import Console
    from rich.table import Table

    from alarscrew.cohort import load_cohort
    from alarscrew.cohort.instruments import mcid_attainment

    overrides = {k: v for k, v in (("odi", mcid_odi), ("vas", mcid_vas)) if v is not None}
    cohort = load_cohort(data)
    df = mcid_attainment(cohort, baseline=baseline, mcid=overrides)
    console = Console()
    table = Table("id", "variable", "from", "to", "improvement", "MCID", "attained")
    for rec in df.to_dict(orient="records"):
        att = "n/a" if rec["attained"] is pd.NA else ("yes" if rec["attained"] else "no")
        table.add_row(str(rec["id"]), rec["variable"], rec["from"], rec["to"],
                      f"{rec['improvement']:g}", f"{rec['mcid_points']:g}", att)
    console.print(table)
    for var, cit in df.groupby("variable")["mcid_citation"].first().items():
        console.print(f"{var} MCID: {cit}")
    if json_out is not None:
        rows = [{k: None if v is pd.NA else _none_if_nan(v) for k, v in rec.items()}
                for rec in df.to_dict(orient="records")]
        _write_json(json_out, {"cohort": cohort.name, "baseline": baseline, "rows": rows},
                    force=force)


@cohort_app.command("template")
def template_cmd(
    out: Annotated[Path, typer.Argument(help="CSV file to write (header only).")],
    layout: Annotated[str, typer.Option("--layout", help="wide, long or redcap.")] = "wide",
    timepoints: Annotated[str, typer.Option(
        "--timepoints", help="Comma-separated time points (wide).")] = "pre,post_3d,post_9m",
    odi_items: Annotated[bool, typer.Option(
        "--odi-items", help="Add ODI section columns q1-q10.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Write an empty cohort table with the columns the readers understand."""
    import csv
    import io

    from alarscrew.cohort.template import template_columns
    from alarscrew.io.atomic import write_text

    cols = template_columns(layout, [t.strip() for t in timepoints.split(",") if t.strip()],
                            odi_items=odi_items)
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(cols)
    write_text(out, buf.getvalue(), force=force)
    typer.echo(f"wrote {out} ({layout} layout, {len(cols)} columns)")

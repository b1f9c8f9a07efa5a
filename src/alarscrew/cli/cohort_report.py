"""``alarscrew cohort report DATA --out DIR [--reported F] [--rules F] [--force]``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def report(
    data: Annotated[str, typer.Argument(help="Cohort file (CSV/XLSX/REDCap) or embedded "
                                             "name (fang2022).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Report folder to create.")],
    reported: Annotated[Path | None, typer.Option(
        "--reported", help="YAML of reported summary numbers to audit (implied for an "
                           "embedded dataset).")] = None,
    rules: Annotated[Path | None, typer.Option(
        "--rules", help="Eligibility rule set YAML (default: Fang et al. 2022 criteria).")] = None,
    force: Annotated[bool, typer.Option("--force",
                                        help="Replace an existing report folder.")] = False,
) -> None:
    """Tables 1-4 (baseline, outcomes and tests, MCID, eligibility) as Markdown, HTML, CSV and
    DOCX, VAS/ODI trajectory plots (PNG, SVG) and one self-contained offline HTML report with
    the tests and the audit findings.
    """
    from rich.console import Console

    from alarscrew import DISCLAIMER
    from alarscrew.report.cohort_report import build_cohort_report

    err = Console(stderr=True)
    with err.status(f"building the cohort report of {data}"):
        html = build_cohort_report(data, out, reported=reported, rules=rules, force=force)
    typer.echo(f"wrote {html}")
    typer.echo(f"tables in {out / 'tables'}, figures in {out / 'figures'}")
    typer.echo(DISCLAIMER)


def register(app: typer.Typer) -> None:
    """Add ``report`` to the ``cohort`` group (the root ``app`` is not used)."""
    from alarscrew.cli.cohort import cohort_app

    cohort_app.command("report")(report)

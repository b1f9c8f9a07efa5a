"""``alarscrew report PLAN_DIR``: the planning report (HTML, optional PDF) and the exports."""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from alarscrew.cli._progress import step_progress


def _progress(enabled: bool, total: int) -> contextlib.AbstractContextManager[
        Callable[[str], None]]:
    return step_progress(enabled, total, label="report")


def report(
    plan_dir: Annotated[Path, typer.Argument(help="PLAN_DIR written by `alarscrew plan`.")],
    pdf: Annotated[bool, typer.Option("--pdf", help="Also print the report to PDF (Chromium).")
                   ] = False,
    show_identifiers: Annotated[bool, typer.Option(
        "--show-identifiers",
        help="Include patient identifiers and input paths (de-identified by default).")
    ] = False,
    force: Annotated[bool, typer.Option("--force", "-f", help="Overwrite an existing report.")
                     ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar, no summary.")
                     ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON summary on stdout.")
                       ] = False,
) -> None:
    """Write PLAN_DIR/report.html (offline, self-contained) and PLAN_DIR/exports/.

    Exports: 3D Slicer line markups (.mrk.json), screw meshes (STL, OBJ, world RAS mm), a screw
    label map on the CT grid, copies of plan.json and the sacrum mask.
    """
    from alarscrew.errors import OutputExistsError
    from alarscrew.report.exports import EXPORT_DIR, write_exports
    from alarscrew.report.plan_data import load_plan_dir
    from alarscrew.report.plan_report import build_plan_report

    exports_dir = plan_dir / EXPORT_DIR
    if exports_dir.exists() and not force:  # refuse before writing anything
        raise OutputExistsError(f"{exports_dir}: exports exist already; pass --force to "
                                "overwrite")
    t0 = time.perf_counter()
    steps = 5 + (1 if pdf else 0) + 4  # report steps (+ PDF) + export steps
    with _progress(not (quiet or as_json), steps) as step:
        html = build_plan_report(plan_dir, pdf=pdf, show_identifiers=show_identifiers,
                                 force=force, progress=step)
        exports = write_exports(plan_dir, force=force, progress=step,
                                plan=load_plan_dir(plan_dir))
    elapsed = time.perf_counter() - t0
    pdf_path = html.with_suffix(".pdf") if pdf else None
    summary = {
        "report_html": str(html),
        "report_pdf": None if pdf_path is None else str(pdf_path),
        "html_bytes": html.stat().st_size,
        "exports_dir": str(exports.folder),
        "exports": [str(p) for p in exports.files] + [str(exports.manifest)],
        "elapsed_s": round(elapsed, 3),
    }
    if as_json:
        sys.stdout.write(json.dumps(summary, indent=2) + "\n")
    elif not quiet:
        typer.echo(f"report:  {html} ({html.stat().st_size / 1e6:.1f} MB)")
        if pdf_path is not None:
            typer.echo(f"pdf:     {pdf_path}")
        typer.echo(f"exports: {exports.folder} ({len(exports.files)} files)")
        typer.echo(f"time:    {elapsed:.1f} s")


def register(app: typer.Typer) -> None:
    """Attach ``report`` to the root app."""
    app.command(name="report")(report)

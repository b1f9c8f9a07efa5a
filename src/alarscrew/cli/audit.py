"""``alarscrew audit DATA [--reported FILE] [--json OUT] [--force]``: consistency audit.

Exit code 0 even with findings (findings are results); 2 for bad input.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer


def audit(
    data: Annotated[str, typer.Argument(help="Cohort file or embedded name (fang2022).")],
    reported: Annotated[Path | None, typer.Option(
        "--reported", help="YAML of the reported numbers (implied for an embedded dataset: "
                           "its reported.yaml).")] = None,
    json_out: Annotated[Path | None, typer.Option(
        "--json", help="Write findings as JSON.")] = None,
    force: Annotated[bool, typer.Option(
        "--force", help="Overwrite an existing --json file.")] = False,
) -> None:
    """Check reported means, SDs, ranges, n and p values against the data and arithmetic
    (GRIM, GRIMMER, SD bounds, granularity, p recomputation).
    """
    from rich.console import Console
    from rich.table import Table

    from alarscrew.cohort import load_cohort
    from alarscrew.cohort.embedded import EMBEDDED_DATASETS, dataset_dir
    from alarscrew.errors import InputError
    from alarscrew.io.atomic import check_overwrite, write_text
    from alarscrew.stats import audit_report, load_reported

    if json_out is not None:
        check_overwrite(json_out, force=force)
    if reported is None:
        if data in EMBEDDED_DATASETS and not Path(data).exists():
            reported = dataset_dir(data) / "reported.yaml"
        else:
            raise InputError(f"{data}: --reported FILE is required unless DATA is an embedded "
                             f"dataset ({', '.join(EMBEDDED_DATASETS)})", column="--reported")
    rep = load_reported(reported)
    result = audit_report(load_cohort(data), rep)
    if json_out is not None:
        doc = result.to_json_dict()
        doc = {"source": data, "reported": str(reported), **doc}
        write_text(json_out, json.dumps(doc, indent=2, allow_nan=False) + "\n", force=force)
        typer.echo(f"wrote {json_out}: {len(result.findings)} finding(s)")
        return
    con = Console(width=200)
    t = Table(title=f"Audit of {reported} against {data}: {len(result.findings)} finding(s)")
    for col in ("quantity", "kind", "reported", "recomputed", "why"):
        t.add_column(col, overflow="fold")
    for f in result.findings:
        rec = "-" if f.recomputed is None else f"{f.recomputed:.6g}"
        rep_txt = f.reported if isinstance(f.reported, str) else f"{f.reported:g}"
        t.add_row(f.quantity, f.kind, rep_txt, rec, f.detail)
    con.print(t)
    if result.notes:
        n = Table(title="Notes (informational, not findings)")
        n.add_column("quantity")
        n.add_column("note", overflow="fold")
        for note in result.notes:
            n.add_row(note["quantity"], note["detail"])
        con.print(n)


def register(app: typer.Typer) -> None:
    """Add ``audit`` to the root app."""
    app.command("audit")(audit)

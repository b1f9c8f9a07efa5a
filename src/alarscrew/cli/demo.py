"""``alarscrew demo``: the whole story on shipped and shared data, as ``make demo`` runs it.

1. Cohort: the embedded Fang et al. 2022 cases are analysed, audited and reported.
2. Planning: both S1 alar screws are planned on the shared real CT
   (``../shared/data/ct/totalseg-example``) when it is there, else on a generated phantom with
   60 % S1 body destruction, then the planning report and exports are written.

Each step runs the same code as the corresponding command (``cohort report``, ``phantom``,
``plan``, ``report``), so the demo is what a user would type.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from alarscrew.errors import AlarscrewError, OutputExistsError


def _run(argv: list[str]) -> None:
    from alarscrew.cli.main import main

    code = main(argv)
    if code != 0:
        raise AlarscrewError(f"demo step 'alarscrew {' '.join(argv)}' failed (exit {code})")


def demo(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for everything the demo "
                                                         "writes.")] = Path("demo-out"),
    shared: Annotated[Path, typer.Option("--shared", help="The shared folder holding "
                                                          "data/ct/totalseg-example.")
                      ] = Path("../shared"),
    force: Annotated[bool, typer.Option("--force", "-f", help="Replace earlier demo output."
                                        )] = False,
) -> None:
    """Analyse the embedded cohort and plan S1 alar screws on the shared CT (or a phantom)."""
    from rich.console import Console

    from alarscrew import DISCLAIMER
    from alarscrew.report.cohort_report import build_cohort_report

    console = Console()
    if out.exists() and any(out.iterdir()) and not force:
        raise OutputExistsError(f"{out}: demo output exists already; pass --force")
    out.mkdir(parents=True, exist_ok=True)

    console.rule("1. cohort: Fang et al. 2022, 7 cases")
    with console.status("analysing and auditing the embedded cohort"):
        cohort_html = build_cohort_report("fang2022", out / "cohort", force=True)
    console.print(f"cohort report: {cohort_html}")

    console.rule("2. planning: S1 alar screws")
    ct_dir = shared / "data" / "ct" / "totalseg-example"
    if (ct_dir / "ct.nii.gz").exists():
        ct = ct_dir / "ct.nii.gz"
        seg = ct_dir / "total_v1.nii.gz"
        console.print(f"planning on the shared real CT {ct} (labels {seg.name})")
    else:
        console.print(f"{ct_dir} not found: planning on a generated phantom instead")
        _run(["phantom", str(out / "phantom"), "--body-destruction-percent", "60", "--force"])
        ct = out / "phantom" / "ct.nii.gz"
        seg = out / "phantom" / "labels.nii.gz"
    plan_dir = out / "plan"
    _run(["plan", str(ct), "--seg", str(seg), "--out", str(plan_dir), "--force", "--report"])

    console.rule("where to look")
    console.print(f"cohort report:   {cohort_html.resolve()}")
    console.print(f"planning report: {(plan_dir / 'report.html').resolve()}")
    console.print(f"plan:            {(plan_dir / 'plan.json').resolve()}")
    console.print(DISCLAIMER)


def register(app: typer.Typer) -> None:
    """Add ``demo`` to the root app."""
    app.command("demo")(demo)

"""``alarscrew cohort ...``: the command group for cohort data, statistics and reports.

Other modules add their commands to :data:`cohort_app` in their own ``register``.
"""

from __future__ import annotations

import typer

cohort_app = typer.Typer(
    name="cohort",
    help="Clinical cohort data: validate, eligibility, statistics, reports.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    """Attach the ``cohort`` group to the root app."""
    app.add_typer(cohort_app, name="cohort")

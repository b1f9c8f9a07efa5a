"""The ``alarscrew`` command line: parses arguments and calls the library, nothing else.

Each subcommand lives in its own module of this package and exposes ``register(app)``.
Any :class:`~alarscrew.errors.AlarscrewError` becomes a one-line ``error: ...`` on stderr
and exit code 2; usage errors keep click's exit code 2 as well.
"""

from __future__ import annotations

import importlib
import sys

import typer

from alarscrew import DISCLAIMER, __version__
from alarscrew.errors import AlarscrewError

#: Modules of ``alarscrew.cli`` that register commands (in help order).
COMMAND_MODULES: tuple[str, ...] = (
    "cohort",
    "cohort_report",
    "cohort_stats",
    "audit",
    "report",
    "phantom",
    "plan",
    "anatomy",
    "demo",
)

app = typer.Typer(
    name="alarscrew",
    help=f"S1 alar screw planning and outcome analysis. {DISCLAIMER}",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"alarscrew {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    """alarscrew: research software, not a medical device."""


for _name in COMMAND_MODULES:
    importlib.import_module(f"alarscrew.cli.{_name}").register(app)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return the exit code (0 success, 1 finding/failed check, 2 bad input)."""
    args = sys.argv[1:] if argv is None else list(argv)
    try:
        app(args=args, prog_name="alarscrew")  # standalone: usage errors raise SystemExit(2)
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    except AlarscrewError as exc:
        msg = " ".join(str(exc).split())
        typer.echo(f"error: {msg}", err=True)
        return 2
    return 0

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

"""Shared fixtures: where the real data lives, and how its absence is handled.

Tests that need ../shared/data skip with a reason when it is missing, but fail under CI=true
(CI always has it beside the checkout).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("ALARSCREW_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


def _need(path: Path) -> Path:
    if path.exists():
        return path
    reason = f"real data not found at {path} (expected ../shared/data beside the checkout)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Root of ../shared/data."""
    return _need(SHARED_DATA)


@pytest.fixture(scope="session")
def real_ct_dir(shared_data: Path) -> Path:
    """../shared/data/ct/totalseg-example (3 mm abdomen-pelvis CT with labels, DICOM series)."""
    return _need(shared_data / "ct" / "totalseg-example")


@pytest.fixture(scope="session")
def atlas_dir(shared_data: Path) -> Path:
    """../shared/data/atlas (20 sacrum + hip shapes with synthetic CT, 1 mm)."""
    return _need(shared_data / "atlas")


ATLAS_CASES = ("s02", "s04", "s06", "s09", "s11", "s14", "s16", "s22", "s25", "s28",
               "s31", "s34", "s37", "s40", "s43", "s45", "s47", "s51", "s55", "s63")


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Run ``alarscrew`` in-process; return (exit code, stdout, stderr)."""
    from alarscrew.cli.main import main

    code = main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err

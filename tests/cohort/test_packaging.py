"""The embedded dataset files ship inside the wheel (hatchling, pyproject's wheel target)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

FILES = ("cases.csv", "dataset.yaml", "eligibility.yaml", "README.md")


def test_wheel_contains_fang2022_data(tmp_path: Path) -> None:
    builders = pytest.importorskip("hatchling.builders.wheel")
    wheel = Path(next(iter(builders.WheelBuilder(str(REPO_ROOT)).build(
        directory=str(tmp_path), versions=["standard"]))))
    names = set(zipfile.ZipFile(wheel).namelist())
    for f in FILES:
        assert f"alarscrew/data/fang2022/{f}" in names

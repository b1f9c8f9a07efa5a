"""``alarscrew cohort analyze``: JSON contract, tables, exit codes (in-process CLI)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import run_cli

# Table 2 of Fang et al. 2022, transcribed independently of the embedded dataset.
VAS_PRE = np.array([8, 7, 7, 6, 7, 8, 7], float)
VAS_3D = np.array([3, 2, 3, 2, 3, 3, 2], float)


def test_analyze_json_contract(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "stats.json"
    code, _, err = run_cli(["cohort", "analyze", "fang2022", "--json", str(out)], capsys)
    assert code == 0, err
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert doc["n"] == 7
    assert set(doc["outcomes"]) == {"vas", "odi"}
    assert set(doc["outcomes"]["odi"]["timepoints"]) == {"pre", "post_3d", "post_9m"}
    comp = doc["outcomes"]["vas"]["comparisons"][0]
    assert (comp["from"], comp["to"]) == ("pre", "post_3d")
    d = VAS_3D - VAS_PRE
    se = d.std(ddof=1) / math.sqrt(7)
    assert comp["paired_t"]["t"] == pytest.approx(d.mean() / se, abs=1e-6)
    assert comp["paired_t"]["df"] == 6
    assert comp["cohen_dz"] == pytest.approx(d.mean() / d.std(ddof=1), abs=1e-6)
    assert comp["wilcoxon"]["p"] == pytest.approx(2 / 2**7, abs=1e-12)
    # unrounded: the mean keeps full float precision
    assert doc["outcomes"]["vas"]["timepoints"]["pre"]["mean"] == pytest.approx(50 / 7,
                                                                                abs=1e-12)
    assert "not a medical device" in doc["disclaimer"]
    code, _, err = run_cli(["cohort", "analyze", "fang2022", "--json", str(out)], capsys)
    assert code == 2
    assert "--force" in err
    code, _, err = run_cli(["cohort", "analyze", "fang2022", "--json", str(out), "--force"],
                           capsys)
    assert code == 0, err


def test_analyze_prints_tables(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(["cohort", "analyze", "fang2022"], capsys)
    assert code == 0
    assert "RM-ANOVA" in out
    assert "Wilcoxon" in out
    assert "72.29" in out


def test_analyze_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(["cohort", "analyze", str(tmp_path / "none.csv")], capsys)
    assert code == 2
    assert "none.csv" in err


def test_analyze_counts_option(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "s.json"
    code, _, err = run_cli(["cohort", "analyze", "fang2022", "--counts", "sex:n_fused_levels",
                            "--json", str(out)], capsys)
    assert code == 0, err
    (row,) = json.loads(out.read_text(encoding="utf-8"))["counts"]
    # 7 cases, expected counts far below 5 -> Fisher's exact, named in the output
    assert row["test"] == "Fisher's exact (2x2)"
    assert row["p"] == pytest.approx(1.0)
    code, _, err = run_cli(["cohort", "analyze", "fang2022", "--counts", "sex"], capsys)
    assert code == 2
    assert "ROW:COL" in err

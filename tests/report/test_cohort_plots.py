"""Trajectory plots: the drawn mean ± SD against hand-computed values, reproducible bytes.

Hand values from the paper's Table 2 (Fang et al. 2022; see test_cohort_data.py):
VAS pre 8,7,7,6,7,8,7 -> mean 50/7, SD sqrt((360 - 2500/7)/6) = 0.690066;
VAS 3 d 3,2,3,2,3,3,2 -> mean 18/7, SD sqrt((48 - 324/7)/6) = 0.534522;
VAS 9 m 2,2,3,2,1,2,3 -> mean 15/7, SD sqrt((35 - 225/7)/6) = 0.690066.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from alarscrew.errors import InputError
from alarscrew.report.cohort_plots import (
    figure_bytes,
    spread_labels,
    trajectory_figure,
    write_trajectory_plots,
)
from tests.report.test_cohort_data import TIMEPOINTS, paper_outcomes_long

VAS_MEAN = (50 / 7, 18 / 7, 15 / 7)
VAS_SD = (math.sqrt((360 - 2500 / 7) / 6), math.sqrt((48 - 324 / 7) / 6),
          math.sqrt((35 - 225 / 7) / 6))


def test_mean_and_sd_drawn_match_hand_values() -> None:
    fig = trajectory_figure(paper_outcomes_long(), "vas", timepoints=TIMEPOINTS)
    ax = fig.axes[0]
    (container,) = ax.containers
    data_line, _caps, (bars,) = container.lines[0], container.lines[1], container.lines[2]
    np.testing.assert_allclose(data_line.get_ydata(), VAS_MEAN, atol=1e-12)
    segs = np.array(bars.get_segments())  # (3 time points, 2 ends, xy)
    np.testing.assert_allclose(segs[:, 0, 1], np.subtract(VAS_MEAN, VAS_SD), atol=1e-12)
    np.testing.assert_allclose(segs[:, 1, 1], np.add(VAS_MEAN, VAS_SD), atol=1e-12)
    # One grey line per case, carrying the case's values; case ids are the only labels.
    case_lines = {ln.get_gid(): ln for ln in ax.lines if str(ln.get_gid()).startswith("case-")}
    assert sorted(case_lines) == [f"case-{i}" for i in range(1, 8)]
    np.testing.assert_array_equal(case_lines["case-5"].get_ydata(), [7, 3, 1])
    labels = sorted(t.get_text() for t in ax.texts)
    assert labels == [str(i) for i in range(1, 8)]
    assert ax.get_ylim() == (0.0, 10.0)


def test_missing_value_breaks_line_and_shrinks_n() -> None:
    long = paper_outcomes_long()
    drop = (long["id"] == "5") & (long["variable"] == "odi") & (long["timepoint"] == "post_3d")
    long.loc[drop, "value"] = np.nan
    fig = trajectory_figure(long, "odi", timepoints=TIMEPOINTS)
    ax = fig.axes[0]
    ticks = [t.get_text() for t in ax.get_xticklabels()]
    assert ticks == ["Pre-op\n(n = 7)", "Post-op 3 d\n(n = 6)", "Post-op 9 mo\n(n = 7)"]
    # ODI 3 d without case 5: 36,30,31,30,37,33 -> mean 197/6.
    mean_line = ax.containers[0].lines[0]
    assert mean_line.get_ydata()[1] == pytest.approx(197 / 6, abs=1e-12)
    assert np.isnan(next(ln for ln in ax.lines if ln.get_gid() == "case-5").get_ydata()[1])


def test_output_is_byte_reproducible(tmp_path) -> None:
    a = write_trajectory_plots(paper_outcomes_long(), tmp_path / "a", timepoints=TIMEPOINTS)
    b = write_trajectory_plots(paper_outcomes_long(), tmp_path / "b", timepoints=TIMEPOINTS)
    for var in ("vas", "odi"):
        for fmt in ("png", "svg"):
            assert a[var][fmt].read_bytes() == b[var][fmt].read_bytes(), (var, fmt)
    svg = a["vas"]["svg"].read_text(encoding="utf-8")
    assert "<dc:date>" not in svg
    assert "<svg" in svg
    assert a["vas"]["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("seed", range(5))
def test_spread_labels_is_the_constrained_least_squares_answer(seed: int) -> None:
    """Against scipy's isotonic regression of y - k*gap (independent PAV implementation)."""
    from scipy.optimize import isotonic_regression

    rng = np.random.default_rng(seed)
    y = np.sort(rng.integers(0, 6, size=12).astype(float))
    gap = 0.45
    k = np.arange(y.size)
    got = spread_labels(y, gap=gap)
    np.testing.assert_allclose(got, isotonic_regression(y - gap * k).x + gap * k, atol=1e-12)
    assert np.all(np.diff(got) >= gap - 1e-12)


def test_errors() -> None:
    long = paper_outcomes_long()
    with pytest.raises(InputError, match="no values for variable 'pain'"):
        trajectory_figure(long, "pain")
    dup = long.copy()
    dup.loc[1, "timepoint"] = "pre"
    with pytest.raises(InputError, match="case '1' has two 'vas' values"):
        trajectory_figure(dup, "vas")
    with pytest.raises(InputError, match="'png' or 'svg'"):
        figure_bytes(trajectory_figure(long, "vas"), "pdf")

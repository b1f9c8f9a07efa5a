"""Per-patient trajectory plots of outcome scores (VAS, ODI) with the cohort mean ± SD.

One figure per variable: a thin line per case (labelled with its case id only), and the
mean ± SD (sample SD, n - 1) per time point drawn over them. Time points are equally spaced
categories in study order (pre-op, 3 days, 9 months are not on a linear time axis).
Cases with identical trajectories would hide each other, so each case is shifted
horizontally by a small fixed offset (at most ±``jitter``; deterministic, no random numbers).

Output is reproducible byte for byte: the SVG uses a fixed ``svg.hashsalt`` and no date,
and the PNG carries no software/date metadata.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from alarscrew.errors import InputError
from alarscrew.io.atomic import write_bytes
from alarscrew.report.cohort_tables import default_timepoints, timepoint_label, variable_label

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

#: Largest sideways shift of a case's line, in category widths (deterministic spread).
JITTER = 0.08

#: Score range shown on the y axis for known instruments (others: data range).
Y_LIMITS: dict[str, tuple[float, float]] = {"vas": (0.0, 10.0), "odi": (0.0, 100.0)}

_RC: dict[str, Any] = {
    "svg.hashsalt": "alarscrew",
    "svg.fonttype": "path",
    "font.family": "DejaVu Sans",
    "font.size": 10.0,
    "axes.spines.top": False,
    "axes.spines.right": False,
}


def trajectory_figure(outcomes_long: pd.DataFrame, variable: str, *,
                      timepoints: Sequence[str] | None = None, jitter: float = JITTER,
                      width_in: float = 6.0, height_in: float = 4.0,
                      max_labels: int = 20) -> Figure:
    """Draw per-case trajectories of one variable with mean ± SD.

    Parameters
    ----------
    outcomes_long : DataFrame
        Columns ``id``, ``variable``, ``timepoint``, ``value`` (``Cohort.outcomes_long()``).
        Not modified. Missing values break a case's line at that time point.
    variable : str
        Variable to plot, e.g. ``"vas"``.
    timepoints : sequence of str, optional
        Study order of time points; default order of first appearance.
    jitter : float
        Largest horizontal shift of a case line, in category units (0 disables it).
    width_in, height_in : float
        Figure size in inches.
    max_labels : int
        Case ids are written beside the last point when there are at most this many cases.

    Returns
    -------
    matplotlib.figure.Figure
        A figure not attached to pyplot (close it by dropping the reference).
    """
    from matplotlib.figure import Figure

    for col in ("id", "variable", "timepoint", "value"):
        if col not in outcomes_long.columns:
            raise InputError(f"outcomes table lacks column '{col}'", column=col)
    data = outcomes_long.loc[outcomes_long["variable"].astype(str) == variable].copy()
    data["timepoint"] = data["timepoint"].astype(str)
    data["value"] = pd.to_numeric(data["value"], errors="coerce").astype(float)
    if data.empty:
        known = sorted(set(outcomes_long["variable"]))
        raise InputError(f"no values for variable '{variable}'; variables present: {known}",
                         column="variable")
    order = list(timepoints) if timepoints is not None else default_timepoints(outcomes_long)
    dup = data.duplicated(["id", "timepoint"])
    if dup.any():
        first = int(np.flatnonzero(dup.to_numpy())[0])
        raise InputError(f"case {data['id'].iloc[first]!r} has two '{variable}' values at "
                         f"time point {data['timepoint'].iloc[first]!r}", column="timepoint")
    wide = data.pivot(index="id", columns="timepoint", values="value")
    wide = wide.reindex(index=list(dict.fromkeys(data["id"])))
    wide = wide.reindex(columns=order).astype(float)
    values = wide.to_numpy()  # (n_cases, n_timepoints)
    n_cases, n_tp = values.shape
    x = np.arange(n_tp, dtype=float)
    offsets = (np.linspace(-jitter, jitter, n_cases) if n_cases > 1 and jitter > 0
               else np.zeros(n_cases))

    with _rc_context():
        fig = Figure(figsize=(width_in, height_in), dpi=100)
        ax = fig.add_subplot(1, 1, 1)
        grey = "0.55"
        for i, case in enumerate(wide.index):
            xs = x + offsets[i]
            ax.plot(xs, values[i], color=grey, linewidth=0.9, marker="o", markersize=3,
                    alpha=0.8, zorder=2, gid=f"case-{case}")
        counts = np.sum(~np.isnan(values), axis=0)
        # Mean and sample SD (n - 1) per time point over the cases with a value there.
        sums = np.nansum(values, axis=0)
        mean = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
        squares = np.nansum((values - mean) ** 2, axis=0)
        sd = np.where(counts > 1, np.sqrt(squares / np.maximum(counts - 1, 1)), np.nan)
        ax.errorbar(x, mean, yerr=sd, color="#b2182b", linewidth=2.2, marker="s",
                    markersize=6, capsize=5, capthick=1.6, elinewidth=1.6, zorder=4,
                    label="Mean ± SD")
        ax.plot([], [], color=grey, marker="o", markersize=3, linewidth=0.9,
                label="Individual cases")
        ax.set_xticks(x)
        ax.set_xticklabels([f"{timepoint_label(t)}\n(n = {c})" for t, c in
                            zip(order, counts, strict=True)])
        ax.set_xlim(-0.4, n_tp - 1 + 0.6)
        if variable in Y_LIMITS:
            lo, hi = Y_LIMITS[variable]
            ax.set_ylim(lo, hi)
        ax.set_ylabel(variable_label(variable))
        ax.set_title(f"{variable_label(variable)}: individual trajectories and mean ± SD",
                     fontsize=10)
        if 0 < n_cases <= max_labels:
            _label_cases(ax, wide.index, values, x, offsets)
        ax.grid(axis="y", color="0.9", linewidth=0.6, zorder=0)
        ax.legend(loc="best", frameon=False, fontsize=8)
        fig.tight_layout()
    return fig


def spread_labels(y_sorted: np.ndarray, *, gap: float) -> np.ndarray:
    """Label heights nearest (least squares) to ``y_sorted`` with neighbours ``gap`` apart.

    Parameters
    ----------
    y_sorted : (N,) ndarray
        Target heights, ascending.
    gap : float
        Smallest distance between consecutive labels (same units).

    Returns
    -------
    (N,) ndarray
        Heights ``h`` minimising ``sum((h - y)^2)`` subject to ``h[k+1] - h[k] >= gap``.

    Notes
    -----
    With ``z = y - k*gap`` the constraint becomes ``z`` non-decreasing, so the answer is the
    isotonic regression of ``z`` (pool-adjacent-violators, Ayer et al. 1955) plus ``k*gap``.
    """
    y = np.asarray(y_sorted, dtype=float)
    k = np.arange(y.size, dtype=float)
    z = y - gap * k
    # Pool adjacent violators: blocks of (mean, weight), merged while decreasing.
    means: list[float] = []
    weights: list[int] = []
    for v in z:
        means.append(float(v))
        weights.append(1)
        while len(means) > 1 and means[-2] > means[-1]:
            w = weights[-2] + weights[-1]
            means[-2] = (means[-2] * weights[-2] + means[-1] * weights[-1]) / w
            weights[-2] = w
            means.pop()
            weights.pop()
    fitted = np.repeat(means, weights)
    return fitted + gap * k


def _label_cases(ax: Axes, ids: pd.Index, values: np.ndarray, x: np.ndarray,
                 offsets: np.ndarray) -> None:
    """Write each case id in a column right of the last time point, spread so none overlap.

    Labels sit as close as possible to the height of the case's last value while keeping a
    gap of 4.5 % of the y range (:func:`spread_labels`), with a thin leader line to the point.
    """
    lo, hi = ax.get_ylim()
    gap = 0.045 * (hi - lo)
    has = ~np.isnan(values)
    last = np.where(has.any(axis=1), has.shape[1] - 1 - np.argmax(has[:, ::-1], axis=1), -1)
    keep = np.flatnonzero(last >= 0)
    y_pt = values[keep, last[keep]]
    x_pt = x[last[keep]] + offsets[keep]
    order = np.argsort(y_pt, kind="stable")
    y_lab = spread_labels(y_pt[order], gap=gap)
    if y_lab.size and y_lab[0] < lo + gap / 2:  # keep the stack inside the axes
        y_lab += lo + gap / 2 - y_lab[0]
    elif y_lab.size and y_lab[-1] > hi - gap / 2:
        y_lab -= y_lab[-1] - (hi - gap / 2)
    x_lab = x.max() + 0.3
    for k, idx in enumerate(keep[order]):
        ax.annotate(
            str(ids[idx]), xy=(x_pt[order][k], y_pt[order][k]), xytext=(x_lab, y_lab[k]),
            textcoords="data", fontsize=7, color="0.3", va="center", ha="left",
            arrowprops={"arrowstyle": "-", "color": "0.75", "linewidth": 0.5,
                        "shrinkA": 0, "shrinkB": 2},
        )


def _rc_context() -> AbstractContextManager[None]:
    import matplotlib

    return matplotlib.rc_context(_RC)  # type: ignore[arg-type]


def figure_bytes(fig: Figure, fmt: str, *, dpi: int = 300) -> bytes:
    """Render a figure to PNG or SVG bytes, reproducibly (no date, fixed hash salt).

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure.
    fmt : {"png", "svg"}
        Output format.
    dpi : int
        Resolution of the PNG.

    Returns
    -------
    bytes
        The encoded image.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    if fmt not in {"png", "svg"}:
        raise InputError(f"figure format must be 'png' or 'svg', got {fmt!r}")
    metadata: dict[str, None] = ({"Date": None, "Creator": None} if fmt == "svg"
                                 else {"Software": None})
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    with _rc_context():
        fig.savefig(buf, format=fmt, dpi=dpi, metadata=metadata)
    return buf.getvalue()


def write_trajectory_plots(outcomes_long: pd.DataFrame, out_dir: str | os.PathLike[str], *,
                           timepoints: Sequence[str] | None = None,
                           variables: Sequence[str] | None = None,
                           force: bool = True) -> dict[str, dict[str, Path]]:
    """Write ``VAR_trajectories.png`` and ``.svg`` for each variable into ``out_dir``.

    Parameters
    ----------
    outcomes_long : DataFrame
        ``Cohort.outcomes_long()`` format.
    out_dir : path
        Output folder (created if missing).
    timepoints : sequence of str, optional
        Study order of time points.
    variables : sequence of str, optional
        Variables to plot; default all, in order of first appearance.
    force : bool
        Overwrite existing files.

    Returns
    -------
    dict
        variable -> {"png": path, "svg": path}.
    """
    out = Path(out_dir)
    names = list(variables) if variables is not None else list(
        dict.fromkeys(outcomes_long["variable"].astype(str)))
    written: dict[str, dict[str, Path]] = {}
    for var in names:
        fig = trajectory_figure(outcomes_long, var, timepoints=timepoints)
        written[var] = {
            fmt: write_bytes(out / f"{var}_trajectories.{fmt}", figure_bytes(fig, fmt),
                             force=force)
            for fmt in ("png", "svg")
        }
    return written

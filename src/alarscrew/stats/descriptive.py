"""Descriptive statistics of outcome scores per variable and time point.

Input is the long table of :meth:`alarscrew.cohort.Cohort.outcomes_long`
(columns ``id, variable, timepoint, value``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from alarscrew.errors import InputError

__all__ = ["DESCRIPTIVE_COLUMNS", "LONG_COLUMNS", "check_long", "describe_outcomes"]

#: Columns of the long outcome table.
LONG_COLUMNS: tuple[str, ...] = ("id", "variable", "timepoint", "value")

#: Columns of :func:`describe_outcomes`, in order.
DESCRIPTIVE_COLUMNS: tuple[str, ...] = (
    "variable", "timepoint", "n", "mean", "sd", "median", "q1", "q3", "iqr", "min", "max",
)


def check_long(long_df: pd.DataFrame, *, source: str = "outcomes") -> pd.DataFrame:
    """Validate a long outcome table and return a clean copy (value as float, NaN rows dropped).

    Parameters
    ----------
    long_df : DataFrame
        Columns ``id, variable, timepoint, value``.
    source : str
        Name used in error messages.

    Raises
    ------
    InputError
        Missing column, non-numeric value, or an ``(id, variable, timepoint)`` given twice.
    """
    missing = [c for c in LONG_COLUMNS if c not in long_df.columns]
    if missing:
        raise InputError(f"long outcome table lacks column(s) {missing}; "
                         f"expected {list(LONG_COLUMNS)}", path=source)
    df = long_df.loc[:, list(LONG_COLUMNS)].copy()
    values = pd.to_numeric(df["value"], errors="coerce")
    bad = values.isna() & df["value"].notna()
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise InputError(f"value {df['value'].iloc[row]!r} is not a number", path=source,
                         row=row + 1, column="value")
    df["value"] = values.astype(float)
    dup = df.duplicated(["id", "variable", "timepoint"], keep=False)
    if dup.any():
        row = int(np.flatnonzero(dup.to_numpy())[0])
        raise InputError(
            f"id {df['id'].iloc[row]!r} has two values for {df['variable'].iloc[row]} at "
            f"{df['timepoint'].iloc[row]}", path=source, row=row + 1, column="id")
    return df.dropna(subset=["value"]).reset_index(drop=True)


def _ordered(values: pd.Series, order: Sequence[str] | None) -> list[str]:
    seen = list(dict.fromkeys(values.tolist()))
    if order is None:
        return seen
    return [t for t in order if t in set(seen)] + [t for t in seen if t not in set(order)]


def describe_outcomes(long_df: pd.DataFrame, *,
                      timepoints: Sequence[str] | None = None) -> pd.DataFrame:
    """n, mean, SD (ddof=1), median, quartiles, IQR, min and max per variable and time point.

    Parameters
    ----------
    long_df : DataFrame
        Columns ``id, variable, timepoint, value``; missing values (NaN) are left out.
    timepoints : sequence of str, optional
        Study order of the time points (default: order of first appearance).

    Returns
    -------
    DataFrame
        Columns :data:`DESCRIPTIVE_COLUMNS`, one row per variable and time point. ``sd`` is
        NaN when ``n < 2``. Quartiles use linear interpolation (numpy's default, the same as
        R type 7); SPSS's default (weighted average, type 6) can differ at small n.
    """
    df = check_long(long_df)
    rows = []
    for var in _ordered(df["variable"], None):
        sub = df[df["variable"] == var]
        for tp in _ordered(sub["timepoint"], timepoints):
            x = sub.loc[sub["timepoint"] == tp, "value"].to_numpy(dtype=float)
            q1, med, q3 = np.percentile(x, [25, 50, 75])
            rows.append({
                "variable": var, "timepoint": tp, "n": int(x.size),
                "mean": float(np.mean(x)),
                "sd": float(np.std(x, ddof=1)) if x.size > 1 else float("nan"),
                "median": float(med), "q1": float(q1), "q3": float(q3),
                "iqr": float(q3 - q1), "min": float(np.min(x)), "max": float(np.max(x)),
            })
    return pd.DataFrame(rows, columns=list(DESCRIPTIVE_COLUMNS))

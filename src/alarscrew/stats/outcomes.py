"""The outcome analysis of a cohort: descriptives, baseline comparisons, omnibus tests.

:func:`analyze_outcomes` bundles :func:`~alarscrew.stats.descriptive.describe_outcomes`,
:func:`~alarscrew.stats.inference.compare_timepoints` and
:func:`~alarscrew.stats.inference.omnibus_tests` into one :class:`OutcomeAnalysis` whose
:meth:`~OutcomeAnalysis.to_json_dict` is the issue-2 JSON contract (numbers unrounded).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import pandas as pd

from alarscrew.stats.descriptive import check_long, describe_outcomes
from alarscrew.stats.inference import compare_timepoints, omnibus_tests

__all__ = ["CohortLike", "OutcomeAnalysis", "analyze_outcomes"]


class CohortLike(Protocol):
    """What the statistics need from :class:`alarscrew.cohort.Cohort`."""

    @property
    def timepoints(self) -> tuple[str, ...]: ...

    def outcomes_long(self) -> pd.DataFrame: ...


def _num(x: Any) -> float | int | None:
    """A JSON-safe number: NaN/inf become null, numpy scalars plain Python."""
    if x is None:
        return None
    if isinstance(x, int) and not isinstance(x, bool):
        return x
    f = float(x)
    return f if math.isfinite(f) else None


@dataclass(frozen=True)
class OutcomeAnalysis:
    """Result of :func:`analyze_outcomes`.

    Attributes
    ----------
    n : int
        Number of distinct case ids with any outcome value.
    timepoints : tuple of str
        Time points in study order.
    baseline : str
        The reference time point of the comparisons.
    descriptives : DataFrame
        :data:`~alarscrew.stats.descriptive.DESCRIPTIVE_COLUMNS`.
    comparisons : DataFrame
        :data:`~alarscrew.stats.inference.COMPARISON_COLUMNS`.
    omnibus : DataFrame
        :data:`~alarscrew.stats.inference.OMNIBUS_COLUMNS`.
    """

    n: int
    timepoints: tuple[str, ...]
    baseline: str
    descriptives: pd.DataFrame
    comparisons: pd.DataFrame
    omnibus: pd.DataFrame

    def to_json_dict(self) -> dict[str, Any]:
        """The issue-2 contract, numbers unrounded, NaN as null.

        Returns
        -------
        dict
            ``{"n", "baseline", "diff_definition", "timepoint_order", "outcomes": {VAR:
            {"timepoints": {TP: {n, mean, sd, median, q1, q3, iqr, min, max}},
            "comparisons": [{from, to, n_pairs, paired_t: {t, df, p, p_holm},
            independent_t: {t, df, p}, mean_diff, sd_diff, ci95: [lo, hi], cohen_dz,
            wilcoxon: {statistic, p, p_holm, p_permutation, note},
            shapiro: {w, p}, t_note}], "omnibus": {rm_anova: {...}, friedman: {...}}}}}``.
            ``mean_diff`` and ``ci95`` are of ``to - from``.
        """
        outcomes: dict[str, Any] = {}
        for var in dict.fromkeys(self.descriptives["variable"]):
            d = self.descriptives[self.descriptives["variable"] == var]
            tps = {
                r.timepoint: {k: _num(getattr(r, k)) for k in
                              ("n", "mean", "sd", "median", "q1", "q3", "iqr", "min", "max")}
                for r in d.itertuples(index=False)
            }
            comps = []
            c = self.comparisons[self.comparisons["variable"] == var]
            for r in c.to_dict("records"):
                comps.append({
                    "from": r["from"], "to": r["to"], "n_pairs": int(r["n_pairs"]),
                    "paired_t": {"t": _num(r["paired_t"]), "df": _num(r["paired_df"]),
                                 "p": _num(r["paired_p"]), "p_holm": _num(r["paired_p_holm"])},
                    "independent_t": {"t": _num(r["independent_t"]),
                                      "df": _num(r["independent_df"]),
                                      "p": _num(r["independent_p"])},
                    "mean_diff": _num(r["mean_diff"]), "sd_diff": _num(r["sd_diff"]),
                    "ci95": [_num(r["ci95_low"]), _num(r["ci95_high"])],
                    "cohen_dz": _num(r["cohen_dz"]),
                    "wilcoxon": {"statistic": _num(r["wilcoxon_statistic"]),
                                 "p": _num(r["wilcoxon_p"]),
                                 "p_holm": _num(r["wilcoxon_p_holm"]),
                                 "p_permutation": _num(r["wilcoxon_p_permutation"]),
                                 "note": r["wilcoxon_note"]},
                    "shapiro": {"w": _num(r["shapiro_w"]), "p": _num(r["shapiro_p"])},
                    "t_note": r["t_note"],
                })
            om = self.omnibus[self.omnibus["variable"] == var].to_dict("records")
            omnibus: dict[str, Any] = {}
            if om:
                o = om[0]
                omnibus = {
                    "n_subjects": int(o["n_subjects"]),
                    "rm_anova": {"F": _num(o["rm_f"]), "df1": _num(o["rm_df1"]),
                                 "df2": _num(o["rm_df2"]), "p": _num(o["rm_p"]),
                                 "gg_epsilon": _num(o["gg_epsilon"]),
                                 "p_gg": _num(o["rm_p_gg"]),
                                 "sphericity_w": _num(o["sphericity_w"]),
                                 "sphericity_p": _num(o["sphericity_p"])},
                    "friedman": {"chi2": _num(o["friedman_chi2"]),
                                 "df": _num(o["friedman_df"]), "p": _num(o["friedman_p"])},
                }
            outcomes[var] = {"timepoints": tps, "comparisons": comps, "omnibus": omnibus}
        return {
            "n": self.n,
            "baseline": self.baseline,
            "diff_definition": "to - from",
            "timepoint_order": list(self.timepoints),
            "holm_family": "all baseline comparisons of all variables (paired t; Wilcoxon "
                           "separately)",
            "outcomes": outcomes,
        }


def analyze_outcomes(cohort: CohortLike | pd.DataFrame, *, baseline: str = "pre",
                     timepoints: Sequence[str] | None = None) -> OutcomeAnalysis:
    """Analyse the outcome scores of a cohort.

    Parameters
    ----------
    cohort : Cohort or DataFrame
        A :class:`alarscrew.cohort.Cohort` (its ``outcomes_long()`` and ``timepoints``
        are used) or a long table ``id, variable, timepoint, value``.
    baseline : str
        Reference time point of the comparisons.
    timepoints : sequence of str, optional
        Study order (default: the cohort's, else order of appearance).

    Returns
    -------
    OutcomeAnalysis
    """
    if isinstance(cohort, pd.DataFrame):
        long_df = cohort
        order = tuple(timepoints) if timepoints is not None else tuple(
            dict.fromkeys(check_long(cohort)["timepoint"]))
    else:
        long_df = cohort.outcomes_long()
        order = tuple(timepoints) if timepoints is not None else tuple(cohort.timepoints)
    clean = check_long(long_df)
    return OutcomeAnalysis(
        n=int(clean["id"].nunique()),
        timepoints=order,
        baseline=baseline,
        descriptives=describe_outcomes(clean, timepoints=order),
        comparisons=compare_timepoints(clean, baseline=baseline, timepoints=order),
        omnibus=omnibus_tests(clean, timepoints=order),
    )

"""Hypothesis tests of outcome scores: baseline vs each later time point, omnibus tests, counts.

Every function returns a tidy table with fixed, documented columns that name the test
actually run. Computations use scipy, pingouin and statsmodels; the tests of this package
recompute them with plain numpy formulas.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
import pingouin as pg
from scipy import stats as st
from statsmodels.stats.multitest import multipletests

from alarscrew.errors import InputError
from alarscrew.stats.descriptive import _ordered, check_long

__all__ = [
    "COMPARISON_COLUMNS",
    "COUNT_COLUMNS",
    "OMNIBUS_COLUMNS",
    "compare_counts",
    "compare_timepoints",
    "omnibus_tests",
]

#: Columns of :func:`compare_timepoints`. Differences are ``to - from`` (change from baseline;
#: negative = the score fell).
COMPARISON_COLUMNS: tuple[str, ...] = (
    "variable", "from", "to", "n_pairs", "mean_from", "mean_to", "mean_diff", "sd_diff",
    "ci95_low", "ci95_high", "paired_t", "paired_df", "paired_p", "paired_p_holm",
    "independent_t", "independent_df", "independent_p", "cohen_dz",
    "wilcoxon_statistic", "wilcoxon_p", "wilcoxon_p_holm", "wilcoxon_p_permutation",
    "wilcoxon_note", "shapiro_w", "shapiro_p", "t_note",
)

#: Columns of :func:`omnibus_tests`.
OMNIBUS_COLUMNS: tuple[str, ...] = (
    "variable", "n_subjects", "k_timepoints", "rm_f", "rm_df1", "rm_df2", "rm_p",
    "gg_epsilon", "rm_p_gg", "sphericity_w", "sphericity_p", "friedman_chi2", "friedman_df",
    "friedman_p",
)

#: Columns of :func:`compare_counts`.
COUNT_COLUMNS: tuple[str, ...] = (
    "row_variable", "column_variable", "test", "statistic", "df", "p", "min_expected", "rule",
)


_MAX_ENUMERATED_PAIRS = 16


def _paired(df: pd.DataFrame, var: str, tp_from: str, tp_to: str) -> pd.DataFrame:
    sub = df[(df["variable"] == var) & df["timepoint"].isin([tp_from, tp_to])]
    wide = sub.pivot(index="id", columns="timepoint", values="value")
    return wide.reindex(columns=[tp_from, tp_to]).dropna()


def _wilcoxon(diff: np.ndarray) -> tuple[float, float, float, str]:
    """Exact signed-rank test of ``diff``; returns (statistic, p_exact, p_permutation, note)."""
    n_zero = int(np.sum(diff == 0))
    nonzero = diff[diff != 0]
    if nonzero.size == 0:
        return float("nan"), float("nan"), float("nan"), "all differences are zero: no test"
    notes = []
    if n_zero:
        notes.append(f"{n_zero} zero difference(s) dropped (Wilcoxon's zero_method)")
    _, counts = np.unique(np.abs(nonzero), return_counts=True)
    if np.any(counts > 1):
        notes.append("tied |differences| get mid-ranks; scipy's 'exact' p uses the no-ties "
                     "null distribution, wilcoxon_p_permutation is exact with the ties")
    res = st.wilcoxon(diff, zero_method="wilcox", method="exact")
    if nonzero.size <= _MAX_ENUMERATED_PAIRS:  # all 2^n sign flips: an exact p
        perm_p = float(st.wilcoxon(nonzero, method=st.PermutationMethod(
            n_resamples=2**nonzero.size)).pvalue)
    else:
        perm_p = float("nan")
        notes.append(f"more than {_MAX_ENUMERATED_PAIRS} non-zero pairs: no enumerated p")
    note = "; ".join(notes) if notes else "exact (no ties, no zeros)"
    return float(res.statistic), float(res.pvalue), perm_p, note


def compare_timepoints(long_df: pd.DataFrame, *, baseline: str = "pre",
                       timepoints: Sequence[str] | None = None) -> pd.DataFrame:
    """Baseline vs each later time point, per variable, with Holm correction across all rows.

    Parameters
    ----------
    long_df : DataFrame
        Columns ``id, variable, timepoint, value``.
    baseline : str
        The reference time point (default ``pre``).
    timepoints : sequence of str, optional
        Study order of the time points.

    Returns
    -------
    DataFrame
        Columns :data:`COMPARISON_COLUMNS`, one row per variable and later time point:

        - ``paired_*``: paired t test (scipy ``ttest_rel``), two-sided, ``df = n-1``;
        - ``ci95_low/high``: 95% CI of the mean difference ``to - from`` (t distribution);
        - ``independent_*``: Student's two-sample t test with pooled variance
          (``ttest_ind(equal_var=True)``), ``df = n_from + n_to - 2``, on the complete pairs;
        - ``cohen_dz``: mean difference / SD of the differences (ddof=1) — not pingouin's
          paired ``cohen_d``, which is d_av;
        - ``wilcoxon_*``: signed-rank statistic (smaller rank sum) and scipy's exact p
          (``method='exact'``, zeros dropped); ``wilcoxon_p_permutation`` enumerates all
          sign flips (exact also with ties); ``wilcoxon_note`` states ties/zeros;
        - ``shapiro_*``: Shapiro-Wilk on the differences (NaN if n < 3 or all equal);
        - ``t_note``: why a t test is NaN (constant differences or data), else empty;
        - ``*_holm``: Holm-adjusted p over every row of the table (statsmodels).

    Raises
    ------
    InputError
        If the baseline time point is absent or a comparison has fewer than 2 pairs.
    """
    df = check_long(long_df)
    rows = []
    for var in _ordered(df["variable"], None):
        tps = _ordered(df.loc[df["variable"] == var, "timepoint"], timepoints)
        if baseline not in tps:
            raise InputError(f"variable {var!r} has no {baseline!r} time point; found {tps}",
                             column="timepoint")
        for tp in [t for t in tps if t != baseline]:
            pairs = _paired(df, var, baseline, tp)
            x0 = pairs[baseline].to_numpy(float)
            x1 = pairs[tp].to_numpy(float)
            if x0.size < 2:
                raise InputError(f"{var} {baseline} vs {tp}: {x0.size} complete pair(s), "
                                 "need at least 2", column="timepoint")
            diff = x1 - x0
            sd_diff = float(np.std(diff, ddof=1))
            nan = float("nan")
            t_notes = []
            if np.ptp(diff) > 0:
                rel = st.ttest_rel(x1, x0)
                ci = rel.confidence_interval(0.95)
                paired = (float(rel.statistic), float(rel.df), float(rel.pvalue),
                          float(ci.low), float(ci.high))
            else:
                paired = (nan, float(diff.size - 1), nan, nan, nan)
                t_notes.append("all differences are equal (SD 0): paired t undefined")
            if np.ptp(x0) > 0 or np.ptp(x1) > 0:
                with warnings.catch_warnings():
                    # scipy warns about "catastrophic cancellation" when one group is
                    # constant; its variance is then exactly 0 and the pooled t is right.
                    warnings.filterwarnings("ignore", message="Precision loss occurred",
                                            category=RuntimeWarning)
                    ind = st.ttest_ind(x1, x0, equal_var=True)
                independent = (float(ind.statistic), float(ind.df), float(ind.pvalue))
            else:
                independent = (nan, float(2 * diff.size - 2), nan)
                t_notes.append("both time points are constant: Student t undefined")
            w_stat, w_p, w_perm, w_note = _wilcoxon(diff)
            if diff.size >= 3 and np.ptp(diff) > 0:
                sw = st.shapiro(diff)
                sw_w, sw_p = float(sw.statistic), float(sw.pvalue)
            else:
                sw_w = sw_p = float("nan")
            rows.append({
                "variable": var, "from": baseline, "to": tp, "n_pairs": int(diff.size),
                "mean_from": float(x0.mean()), "mean_to": float(x1.mean()),
                "mean_diff": float(diff.mean()), "sd_diff": sd_diff,
                "ci95_low": paired[3], "ci95_high": paired[4],
                "paired_t": paired[0], "paired_df": paired[1], "paired_p": paired[2],
                "independent_t": independent[0], "independent_df": independent[1],
                "independent_p": independent[2], "t_note": "; ".join(t_notes),
                "cohen_dz": float(diff.mean() / sd_diff) if sd_diff > 0 else float("nan"),
                "wilcoxon_statistic": w_stat, "wilcoxon_p": w_p,
                "wilcoxon_p_permutation": w_perm, "wilcoxon_note": w_note,
                "shapiro_w": sw_w, "shapiro_p": sw_p,
            })
    out = pd.DataFrame(rows, columns=list(COMPARISON_COLUMNS))
    for col in ("paired_p", "wilcoxon_p"):
        p = out[col].to_numpy(float)
        ok = np.isfinite(p)
        adj = np.full(p.shape, np.nan)
        if ok.any():
            adj[ok] = multipletests(p[ok], method="holm")[1]
        out[f"{col}_holm"] = adj
    return out


def omnibus_tests(long_df: pd.DataFrame, *,
                  timepoints: Sequence[str] | None = None) -> pd.DataFrame:
    """Repeated-measures ANOVA (Greenhouse-Geisser) and Friedman test across all time points.

    Parameters
    ----------
    long_df : DataFrame
        Columns ``id, variable, timepoint, value``. Only subjects with a value at every
        time point of a variable enter (listwise deletion, as SPSS's GLM repeated measures).
    timepoints : sequence of str, optional
        Study order of the time points.

    Returns
    -------
    DataFrame
        Columns :data:`OMNIBUS_COLUMNS`: pingouin ``rm_anova(correction=True)`` F, df, p,
        Greenhouse-Geisser epsilon, GG-corrected p, Mauchly's W and its p; scipy
        ``friedmanchisquare`` chi-square (df = k-1) and p. Variables with fewer than 3
        time points get NaN (Friedman needs k >= 3).
    """
    df = check_long(long_df)
    rows = []
    for var in _ordered(df["variable"], None):
        sub = df[df["variable"] == var]
        tps = _ordered(sub["timepoint"], timepoints)
        wide = sub.pivot(index="id", columns="timepoint", values="value").reindex(
            columns=tps).dropna()
        row: dict[str, object] = {"variable": var, "n_subjects": len(wide),
                                  "k_timepoints": len(tps)}
        if len(tps) >= 3 and len(wide) >= 3:
            longc = wide.reset_index().melt(id_vars="id", var_name="timepoint",
                                            value_name="value")
            aov = pg.rm_anova(data=longc, dv="value", within="timepoint", subject="id",
                              correction=True, detailed=False).iloc[0]
            fr = st.friedmanchisquare(*(wide[t].to_numpy(float) for t in tps))
            row.update({
                "rm_f": float(aov["F"]), "rm_df1": float(aov["ddof1"]),
                "rm_df2": float(aov["ddof2"]), "rm_p": float(aov["p_unc"]),
                "gg_epsilon": float(aov["eps"]), "rm_p_gg": float(aov["p_GG_corr"]),
                "sphericity_w": float(aov["W_spher"]), "sphericity_p": float(aov["p_spher"]),
                "friedman_chi2": float(fr.statistic), "friedman_df": float(len(tps) - 1),
                "friedman_p": float(fr.pvalue),
            })
        rows.append(row)
    return pd.DataFrame(rows, columns=list(OMNIBUS_COLUMNS))


def compare_counts(table: pd.DataFrame, row_variable: str, column_variable: str, *,
                   seed: int = 0) -> pd.DataFrame:
    """Association of two categorical columns: Pearson chi-square or Fisher's exact test.

    Parameters
    ----------
    table : DataFrame
        One row per case.
    row_variable, column_variable : str
        Column names of the two categorical variables.
    seed : int
        Seed of the Monte Carlo Fisher-Freeman-Halton test (tables larger than 2x2).

    Returns
    -------
    DataFrame
        One row, columns :data:`COUNT_COLUMNS`. Rule: if every expected count is >= 5,
        Pearson's chi-square without continuity correction (SPSS's "Pearson Chi-Square");
        otherwise Fisher's exact test (2x2: scipy ``fisher_exact``; larger tables: the
        Fisher-Freeman-Halton test by Monte Carlo with 99,999 tables, seeded). ``test``
        names the test actually run. ``statistic`` is the chi-square (Pearson), the sample
        odds ratio (Fisher 2x2), or the null probability of the observed table
        (Fisher-Freeman-Halton); ``df`` is NaN for the exact tests.
    """
    for c in (row_variable, column_variable):
        if c not in table.columns:
            raise InputError(f"no column {c!r}; columns are {list(table.columns)}", column=c)
    ct = pd.crosstab(table[row_variable], table[column_variable])
    if ct.shape[0] < 2 or ct.shape[1] < 2:
        raise InputError(f"{row_variable} x {column_variable}: need at least 2 categories "
                         f"each, got a {ct.shape[0]}x{ct.shape[1]} table")
    obs = ct.to_numpy()
    chi = st.chi2_contingency(obs, correction=False)
    min_exp = float(np.min(chi.expected_freq))
    if min_exp >= 5:
        test, stat, dof, p = ("Pearson chi-square", float(chi.statistic), float(chi.dof),
                              float(chi.pvalue))
        rule = "all expected counts >= 5"
    elif obs.shape == (2, 2):
        fe = st.fisher_exact(obs)
        test, stat, dof, p = "Fisher's exact (2x2)", float(fe.statistic), float("nan"), float(
            fe.pvalue)
        rule = f"an expected count < 5 (min {min_exp:.3g})"
    else:
        mc = st.MonteCarloMethod(n_resamples=99_999, rng=np.random.default_rng(seed))
        fe = st.fisher_exact(obs, method=mc)
        test = "Fisher-Freeman-Halton exact (Monte Carlo, 99,999 tables)"
        stat, dof, p = float(fe.statistic), float("nan"), float(fe.pvalue)
        rule = f"an expected count < 5 (min {min_exp:.3g})"
    return pd.DataFrame([{
        "row_variable": row_variable, "column_variable": column_variable, "test": test,
        "statistic": stat, "df": dof, "p": p, "min_expected": min_exp, "rule": rule,
    }], columns=list(COUNT_COLUMNS))

"""Outcome statistics against hand formulas (numpy), on Fang et al. 2022 Table 2.

Independent reference: every number is recomputed here with plain numpy formulas (textbook
definitions written out below); only distribution functions (t, F, chi-square CDFs/quantiles)
come from scipy.special / scipy.stats distributions, never a test function. Tolerance 1e-6
(relative for tiny p values), as the issue requires.

The Table 2 values are transcribed here a second time, independently of the embedded dataset,
from /work/shared/reference/fang2022-s1-alar-screws.txt ("Table 2 Clinical data of patients").
"""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import special
from scipy import stats as st

from alarscrew.errors import InputError
from alarscrew.stats import (
    COMPARISON_COLUMNS,
    DESCRIPTIVE_COLUMNS,
    analyze_outcomes,
    compare_counts,
    compare_timepoints,
    describe_outcomes,
)

TABLE2 = {
    "vas": {"pre": [8, 7, 7, 6, 7, 8, 7], "post_3d": [3, 2, 3, 2, 3, 3, 2],
            "post_9m": [2, 2, 3, 2, 1, 2, 3]},
    "odi": {"pre": [75, 68, 71, 70, 72, 76, 74], "post_3d": [36, 30, 31, 30, 32, 37, 33],
            "post_9m": [28, 25, 22, 25, 24, 27, 25]},
}
TPS = ("pre", "post_3d", "post_9m")
TOL = 1e-6


def _long(table: dict[str, dict[str, list[float]]]) -> pd.DataFrame:
    rows = [(str(i + 1), var, tp, float(v)) for var, d in table.items() for tp, xs in d.items()
            for i, v in enumerate(xs)]
    return pd.DataFrame(rows, columns=["id", "variable", "timepoint", "value"])


def _t_p(t: float, df: float) -> float:
    """Two-sided p of Student's t via the regularised incomplete beta function."""
    return float(special.betainc(df / 2, 0.5, df / (df + t * t)))


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=TOL, abs_tol=TOL if abs(b) > 1e-3 else 0.0)


def _wilcoxon_exact_enumerated(d: np.ndarray) -> float:
    """Two-sided exact signed-rank p by enumerating all 2^n sign patterns (mid-ranks)."""
    d = d[d != 0]
    ranks = st.rankdata(np.abs(d))  # mid-ranks: only the ranking helper, not a test
    w_obs = ranks[d > 0].sum()
    signs = np.array(list(itertools.product([0, 1], repeat=d.size)))
    w_all = signs @ ranks
    lo = np.mean(w_all <= w_obs + 1e-9)
    hi = np.mean(w_all >= w_obs - 1e-9)
    return float(min(1.0, 2 * min(lo, hi)))


def test_descriptives_by_hand() -> None:
    desc = describe_outcomes(_long(TABLE2), timepoints=TPS)
    assert tuple(desc.columns) == DESCRIPTIVE_COLUMNS
    for r in desc.itertuples(index=False):
        x = np.array(TABLE2[r.variable][r.timepoint], float)
        n = x.size
        mean = x.sum() / n
        sd = math.sqrt(((x - mean) ** 2).sum() / (n - 1))
        xs = np.sort(x)
        # type-7 quantile: h = (n-1) p, linear between order statistics
        def q(p: float, xs: np.ndarray = xs) -> float:
            h = (xs.size - 1) * p
            lo = math.floor(h)
            return float(xs[lo] + (h - lo) * (xs[min(lo + 1, xs.size - 1)] - xs[lo]))
        assert r.n == n
        assert _close(r.mean, mean)
        assert _close(r.sd, sd)
        assert _close(r.median, q(0.5))
        assert _close(r.q1, q(0.25))
        assert _close(r.q3, q(0.75))
        assert _close(r.iqr, q(0.75) - q(0.25))
        assert r.min == xs[0]
        assert r.max == xs[-1]
    # Hand values quoted in the audit test: VAS pre mean 50/7, ODI post_9m SD 1.951800...
    vas_pre = desc[(desc.variable == "vas") & (desc.timepoint == "pre")].iloc[0]
    assert vas_pre["mean"] == pytest.approx(50 / 7, abs=1e-12)


def test_comparisons_by_hand() -> None:
    comp = compare_timepoints(_long(TABLE2), timepoints=TPS)
    assert tuple(comp.columns) == COMPARISON_COLUMNS
    assert len(comp) == 4
    raw_p = []
    for r in comp.to_dict("records"):
        x0 = np.array(TABLE2[r["variable"]][r["from"]], float)
        x1 = np.array(TABLE2[r["variable"]][r["to"]], float)
        d = x1 - x0
        n = d.size
        md = d.sum() / n
        sdd = math.sqrt(((d - md) ** 2).sum() / (n - 1))
        se = sdd / math.sqrt(n)
        t = md / se
        tcrit = st.t.ppf(0.975, n - 1)
        # Student pooled two-sample t
        m0, m1 = x0.mean(), x1.mean()
        sp2 = (((x0 - m0) ** 2).sum() + ((x1 - m1) ** 2).sum()) / (2 * n - 2)
        ti = (m1 - m0) / math.sqrt(sp2 * (2 / n))
        assert _close(r["mean_diff"], md)
        assert _close(r["sd_diff"], sdd)
        assert _close(r["paired_t"], t)
        assert r["paired_df"] == n - 1
        assert _close(r["paired_p"], _t_p(t, n - 1))
        assert _close(r["ci95_low"], md - tcrit * se)
        assert _close(r["ci95_high"], md + tcrit * se)
        assert _close(r["independent_t"], ti)
        assert r["independent_df"] == 2 * n - 2
        assert _close(r["independent_p"], _t_p(ti, 2 * n - 2))
        assert _close(r["cohen_dz"], md / sdd)
        assert _close(r["wilcoxon_p_permutation"], _wilcoxon_exact_enumerated(d))
        # every difference in Table 2 has one sign: the exact p is 2/2^7 with or without ties
        assert _close(r["wilcoxon_p"], 2 / 2**7)
        assert "tied" in r["wilcoxon_note"]
        assert 0 < r["shapiro_w"] <= 1
        raw_p.append(r["paired_p"])
    # Holm by hand: sort, multiply by (m - rank), cumulative max, cap at 1
    p = np.array(raw_p)
    order = np.argsort(p)
    adj_sorted = np.minimum(1, np.maximum.accumulate(p[order] * (len(p) - np.arange(len(p)))))
    adj = np.empty_like(p)
    adj[order] = adj_sorted
    assert np.allclose(comp["paired_p_holm"], adj, rtol=TOL, atol=0)
    assert np.allclose(comp["wilcoxon_p_holm"], np.minimum(1, 4 * 2 / 2**7), rtol=TOL)


def test_wilcoxon_exact_without_ties_and_with_zeros() -> None:
    # No ties, no zeros: scipy exact equals full enumeration.
    table = {"x": {"pre": [1, 2, 3, 4, 5, 6, 7], "post": [2.5, 1.0, 6.5, 8.0, 4.2, 12.0, 9.6]}}
    r = compare_timepoints(_long(table)).iloc[0]
    d = np.array(table["x"]["post"]) - np.array(table["x"]["pre"])
    assert r["wilcoxon_note"] == "exact (no ties, no zeros)"
    assert _close(r["wilcoxon_p"], _wilcoxon_exact_enumerated(d))
    # One zero difference is dropped (Wilcoxon's method) and said so.
    table = {"x": {"pre": [1, 2, 3, 4, 5, 6, 7], "post": [1, 1.0, 6.5, 8.0, 4.2, 12.0, 9.6]}}
    r = compare_timepoints(_long(table)).iloc[0]
    assert "1 zero difference(s) dropped" in r["wilcoxon_note"]
    d = np.array(table["x"]["post"]) - np.array(table["x"]["pre"])
    assert _close(r["wilcoxon_p"], _wilcoxon_exact_enumerated(d))
    assert _close(r["wilcoxon_p_permutation"], _wilcoxon_exact_enumerated(d))
    # Zero and tie together: the enumerated p is exact with mid-ranks (hand: 2^4 patterns).
    table = {"x": {"pre": [3, 3, 3, 3, 3], "post": [0, 1, 2, 3, 4]}}
    r = compare_timepoints(_long(table)).iloc[0]
    d = np.array([-3.0, -2.0, -1.0, 0.0, 1.0])
    assert _close(r["wilcoxon_p_permutation"], _wilcoxon_exact_enumerated(d))
    assert r["wilcoxon_p_permutation"] * 16 == pytest.approx(round(
        r["wilcoxon_p_permutation"] * 16), abs=1e-9)  # a multiple of 1/16: enumerated


def _gg_epsilon(y: np.ndarray) -> float:
    """Greenhouse-Geisser epsilon from the covariance of orthonormal contrasts."""
    k = y.shape[1]
    # Helmert-type orthonormal contrasts (k-1, k), rows orthogonal to the ones vector
    c = np.zeros((k - 1, k))
    for i in range(1, k):
        c[i - 1, :i] = 1
        c[i - 1, i] = -i
        c[i - 1] /= np.linalg.norm(c[i - 1])
    s = c @ np.cov(y, rowvar=False) @ c.T
    return float(np.trace(s) ** 2 / ((k - 1) * np.trace(s @ s)))


def _friedman(y: np.ndarray) -> tuple[float, float]:
    n, k = y.shape
    r = np.apply_along_axis(st.rankdata, 1, y)
    rj = r.sum(axis=0)
    chi = 12 / (n * k * (k + 1)) * (rj**2).sum() - 3 * n * (k + 1)
    ties = sum(((np.unique(row, return_counts=True)[1] ** 3) - np.unique(
        row, return_counts=True)[1]).sum() for row in y)
    chi /= 1 - ties / (n * (k**3 - k))
    return chi, float(st.chi2.sf(chi, k - 1))


def test_omnibus_by_hand() -> None:
    res = analyze_outcomes(_long(TABLE2), timepoints=TPS)
    for r in res.omnibus.to_dict("records"):
        y = np.array([TABLE2[r["variable"]][tp] for tp in TPS], float).T  # (n, k)
        n, k = y.shape
        grand = y.mean()
        ss_time = n * ((y.mean(axis=0) - grand) ** 2).sum()
        ss_subj = k * ((y.mean(axis=1) - grand) ** 2).sum()
        ss_err = ((y - grand) ** 2).sum() - ss_time - ss_subj
        df1, df2 = k - 1, (k - 1) * (n - 1)
        f = (ss_time / df1) / (ss_err / df2)
        eps = _gg_epsilon(y)
        assert _close(r["rm_f"], f)
        assert r["rm_df1"] == df1
        assert r["rm_df2"] == df2
        assert _close(r["rm_p"], float(st.f.sf(f, df1, df2)))
        assert _close(r["gg_epsilon"], eps)
        assert _close(r["rm_p_gg"], float(st.f.sf(f, eps * df1, eps * df2)))
        chi, p = _friedman(y)
        assert _close(r["friedman_chi2"], chi)
        assert _close(r["friedman_p"], p)
        assert r["friedman_df"] == k - 1


def test_json_contract_on_embedded_cohort() -> None:
    from alarscrew.cohort import load_cohort

    doc = json.loads(json.dumps(analyze_outcomes(load_cohort("fang2022")).to_json_dict()))
    assert doc["n"] == 7
    assert set(doc["outcomes"]) == {"vas", "odi"}
    for var, block in doc["outcomes"].items():
        assert list(block["timepoints"]) == list(TPS)
        for tp, s in block["timepoints"].items():
            x = np.array(TABLE2[var][tp], float)
            assert {"n", "mean", "sd", "median", "min", "max"} <= set(s)
            assert s["n"] == 7
            assert _close(s["mean"], x.mean())
            assert _close(s["sd"], x.std(ddof=1))
        assert [(c["from"], c["to"]) for c in block["comparisons"]] == [
            ("pre", "post_3d"), ("pre", "post_9m")]
        for c in block["comparisons"]:
            assert set(c) >= {"from", "to", "paired_t", "independent_t", "mean_diff", "ci95",
                              "cohen_dz", "wilcoxon"}
            assert set(c["paired_t"]) >= {"t", "df", "p"}
            assert set(c["independent_t"]) >= {"t", "df", "p"}
            assert set(c["wilcoxon"]) >= {"statistic", "p"}
            d = np.array(TABLE2[var][c["to"]], float) - np.array(TABLE2[var]["pre"], float)
            assert _close(c["mean_diff"], d.mean())
            assert _close(c["paired_t"]["t"], d.mean() / (d.std(ddof=1) / math.sqrt(7)))


def test_paper_p_statements_reproduced_by_both_t_tests() -> None:
    # Paper: VAS pre vs post "P < 0.001", ODI "P < 0.05" (Student's t, two-tailed).
    comp = compare_timepoints(_long(TABLE2), timepoints=TPS).set_index(["variable", "to"])
    for var, bound in (("vas", 0.001), ("odi", 0.05)):
        assert comp.loc[(var, "post_3d"), "paired_p"] < bound
        assert comp.loc[(var, "post_3d"), "independent_p"] < bound


def test_bad_long_table_errors() -> None:
    df = _long(TABLE2)
    df["value"] = df["value"].astype(object)
    df.loc[3, "value"] = "seven"
    with pytest.raises(InputError, match=r"row 4.*column 'value'"):
        describe_outcomes(df)
    dup = pd.concat([_long(TABLE2), _long(TABLE2).iloc[:1]])
    with pytest.raises(InputError, match="two values"):
        compare_timepoints(dup)
    with pytest.raises(InputError, match="no 'pre' time point"):
        compare_timepoints(_long({"x": {"a": [1, 2], "b": [2, 3]}}))


def test_counts_rule_and_hand_values() -> None:
    # 2x2 with small expected counts -> Fisher; hand: hypergeometric enumeration.
    df = pd.DataFrame({"sex": list("FFFFMMM"), "levels": ["2", "1", "1", "1", "1", "1", "1"]})
    r = compare_counts(df, "sex", "levels").iloc[0]
    assert r["test"].startswith("Fisher")
    table = np.array([[3, 1], [3, 0]])  # rows F, M; cols "1", "2"
    rows, cols, n = table.sum(1), table.sum(0), table.sum()
    def prob(a: int) -> float:
        return math.comb(cols[0], a) * math.comb(cols[1], rows[0] - a) / math.comb(n, rows[0])
    p_obs = prob(table[0, 0])
    support = range(max(0, rows[0] - cols[1]), min(rows[0], cols[0]) + 1)
    p_hand = sum(prob(a) for a in support if prob(a) <= p_obs * (1 + 1e-7))
    assert _close(r["p"], p_hand)
    # Large counts -> Pearson chi-square without continuity correction; hand formula.
    big = pd.DataFrame({"a": ["x"] * 30 + ["y"] * 30, "b": ["u"] * 20 + ["v"] * 10 +
                        ["u"] * 8 + ["v"] * 22})
    r = compare_counts(big, "a", "b").iloc[0]
    obs = np.array([[20, 10], [8, 22]], float)
    exp = obs.sum(1, keepdims=True) * obs.sum(0, keepdims=True) / obs.sum()
    chi = ((obs - exp) ** 2 / exp).sum()
    assert r["test"] == "Pearson chi-square"
    assert _close(r["statistic"], chi)
    assert _close(r["p"], float(st.chi2.sf(chi, 1)))


def test_degenerate_comparisons_are_nan_and_explained() -> None:
    table = {"x": {"pre": [3, 3, 3, 3, 3], "post": [3, 3, 3, 3, 3], "late": [0, 1, 2, 3, 4]}}
    res = analyze_outcomes(_long(table))
    c = res.comparisons.set_index("to")
    assert np.isnan(c.loc["post", "paired_p"])
    assert np.isnan(c.loc["post", "independent_p"])
    assert "paired t undefined" in c.loc["post", "t_note"]
    assert c.loc["post", "wilcoxon_note"] == "all differences are zero: no test"
    # one constant group: Student t is defined (pooled variance > 0); hand value
    x0, x1 = np.full(5, 3.0), np.arange(5.0)
    sp2 = ((x1 - x1.mean()) ** 2).sum() / 8
    assert _close(c.loc["late", "independent_t"], (x1.mean() - x0.mean()) / math.sqrt(sp2 * 0.4))
    doc = json.dumps(res.to_json_dict(), allow_nan=False)  # NaN -> null, still valid JSON
    assert '"p": null' in doc


def test_shapiro_on_differences_matches_published_example() -> None:
    # Shapiro & Wilk, Biometrika 1965;52:591-611, worked example: weights (lb) of 11 men,
    # W = 0.79 (printed to 2 decimals; tolerance 0.005). Used here as the differences.
    weights = [148, 154, 158, 160, 161, 162, 166, 170, 182, 195, 236]
    table = {"w": {"pre": [0] * 11, "post": weights}}
    r = compare_timepoints(_long(table)).iloc[0]
    assert r["shapiro_w"] == pytest.approx(0.79, abs=0.005)
    assert r["shapiro_p"] < 0.01  # W below the tabled 1 % point for n = 11 (0.792)

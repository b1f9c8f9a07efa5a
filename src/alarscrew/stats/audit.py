"""Consistency audit: reported summary numbers against the raw data and against what is possible.

Finding kinds (each finding names the quantity ``VAR.TP.STAT`` or ``VAR.STAT``, the reported
value, the recomputed value and why they are inconsistent):

``mismatch``
    A reported n, mean or SD differs from the data after rounding to the printed decimals
    (both rounding directions of a trailing 5 accepted).
``range``
    A reported min/max differs from the data; or a reported mean (or min/max) is impossible
    for the reported range or for the instrument's scale at that n.
``grim``
    The mean of ``n`` whole numbers cannot print as the reported mean (Brown & Heathers 2017).
``grimmer``
    No ``n`` whole numbers have the reported mean and SD (Anaya 2016; Allard 2018). Only
    tested when the mean passes GRIM (otherwise the GRIM finding already says it).
``sd_bound``
    The reported SD is larger than any ``n`` values inside the reported range allow, or
    smaller than any ``n`` values with that min and max allow; or larger than the
    Bhatia-Davis bound ``sqrt(n/(n-1)·(hi-mean)(mean-lo))`` on the range (or, without a
    range, on the instrument's scale).
``granularity``
    A reported min/max is not a value the instrument can produce (a fractional whole-number
    score; an ODI of 1 or 99 %, which no ODI v2.1a with any number of answered sections gives).
``p_value``
    The recomputed p of the stated test does not satisfy the stated p; or a stated rank test
    cannot reach the stated p at that n at all.

Informational notes (no finding) say what was not testable and why, which t test reproduces
a stated p, whether any rank test could reach it, and what odd ODI values imply (a complete
10-section ODI is always even; an odd printed ODI needs unanswered sections and rounding, so it
is possible and is not flagged).
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as st

from alarscrew.stats.consistency import (
    ReportedNumber,
    grim_sums,
    grimmer,
    mean_bounds_from_range,
    min_p_rank_test,
    odi_min_missing_sections,
    sd_bounds_from_range,
)
from alarscrew.stats.reported import Reported, ReportedStats, ReportedVariable, load_reported

__all__ = ["FINDING_KINDS", "AuditReport", "Finding", "audit", "audit_report"]

#: The kinds a finding can have.
FINDING_KINDS: tuple[str, ...] = (
    "grim", "grimmer", "sd_bound", "granularity", "mismatch", "range", "p_value",
)
_EPS = 1e-9


@dataclass(frozen=True)
class Finding:
    """One inconsistency.

    Attributes
    ----------
    quantity : str
        ``VAR.TP.STAT`` (``odi.pre.mean``; ``vas.post_3d.p`` for the p of pre vs post_3d) or
        ``VAR.STAT`` (``age_years.mean``).
    reported : float or str
        The reported value (a p statement stays text, e.g. ``"<0.001"``).
    recomputed : float or None
        What the data (or the arithmetic) give: the data value for ``mismatch``/``range``,
        the nearest possible mean for ``grim``, the nearest possible SD for ``grimmer``, the
        violated bound for ``sd_bound`` and for an impossible mean, the recomputed p.
    kind : str
        One of :data:`FINDING_KINDS`.
    detail : str
        Why it is inconsistent, in words, with the numbers used.
    """

    quantity: str
    reported: float | str
    recomputed: float | None
    kind: str
    detail: str


@dataclass(frozen=True)
class AuditReport:
    """Findings plus informational notes (``{"quantity", "detail"}``)."""

    findings: tuple[Finding, ...]
    notes: tuple[dict[str, str], ...]

    def to_json_dict(self) -> dict[str, Any]:
        """``{"findings": [{quantity, reported, recomputed, kind, detail}], "notes": [...]}``."""
        return {"findings": [asdict(f) for f in self.findings],
                "notes": [dict(n) for n in self.notes]}


def _fmt(x: float) -> str:
    return f"{x:.6g}"


def _rep(x: ReportedNumber) -> float:
    return float(x.value)


def _bhatia_davis_sd(mean: ReportedNumber, low: float, high: float, n: int) -> float | None:
    """Largest sample SD of n values in [low, high] whose mean rounds to ``mean``.

    Bhatia & Davis 2000: population variance <= (high - mu)(mu - low); the sample variance is
    n/(n-1) times that, maximised over the mean's rounding interval. None if that interval
    misses [low, high] (the range check reports it).
    """
    m_lo, m_hi = max(float(mean.lower), low), min(float(mean.upper), high)
    if m_lo > m_hi:
        return None
    mu = min(max((low + high) / 2, m_lo), m_hi)
    return math.sqrt(n / (n - 1) * (high - mu) * (mu - low))


def _nearest_sd(mean: ReportedNumber, sd: ReportedNumber, n: int) -> float | None:
    """SD of n whole numbers (mean passing GRIM) nearest to the reported SD."""
    best: float | None = None
    target = _rep(sd)
    for k in grim_sums(mean, n):
        base = k * k / n
        q_mid = (n - 1) * target**2 + base
        for q in range(math.floor(q_mid) - 3, math.ceil(q_mid) + 4):
            if (q - k) % 2 or q < base:
                continue
            cand = math.sqrt((q - base) / (n - 1))
            if best is None or abs(cand - target) < abs(best - target):
                best = cand
    return best


def _grimmer_detail(mean: ReportedNumber, sd: ReportedNumber, n: int, reason: str) -> str:
    """Why a GRIMMER test failed, with the sums used."""
    sums = grim_sums(mean, n)
    why = ("no integer sum of squares gives an SD that prints as " + sd.text
           if reason == "sum_of_squares" else
           "the only sums of squares that give an SD printing as " + sd.text +
           " have the wrong parity (whole numbers x satisfy x² ≡ x mod 2, so the sum of "
           "squares has the parity of the sum)")
    return (f"{n} whole numbers with mean {mean.text} sum to "
            f"{' or '.join(map(str, sums))}; {why}")


class _Auditor:
    def __init__(self, reported: Reported, long_df: pd.DataFrame | None,
                 baseline_df: pd.DataFrame | None) -> None:
        self.reported = reported
        self.long_df = long_df
        self.baseline_df = baseline_df
        self.findings: list[Finding] = []
        self.notes: list[dict[str, str]] = []

    # -- helpers ---------------------------------------------------------------------
    def add(self, quantity: str, reported: float | str, recomputed: float | None, kind: str,
            detail: str) -> None:
        self.findings.append(Finding(quantity, reported, recomputed, kind, detail))

    def note(self, quantity: str, detail: str) -> None:
        self.notes.append({"quantity": quantity, "detail": detail})

    def data(self, var: str, tp: str | None) -> np.ndarray | None:
        if tp is None:
            if self.baseline_df is None or var not in self.baseline_df.columns:
                return None
            vals = pd.to_numeric(self.baseline_df[var], errors="coerce")
            return vals.dropna().to_numpy(float)
        if self.long_df is None:
            return None
        sub = self.long_df[(self.long_df["variable"] == var) & (self.long_df["timepoint"] == tp)]
        if sub.empty:
            return None
        return pd.to_numeric(sub["value"], errors="coerce").dropna().to_numpy(float)

    # -- one block of statistics (a variable at a time point, or overall) -----------------
    def check_stats(self, v: ReportedVariable, tp: str | None, s: ReportedStats) -> None:
        q = v.name if tp is None else f"{v.name}.{tp}"
        x = self.data(v.name, tp)
        if x is None and (self.long_df is not None or self.baseline_df is not None):
            self.note(q, "no data for this variable/time point: compared with nothing")
        n = s.n or (v.overall.n if v.overall and v.overall.n else None) or self.reported.n
        if n is None and x is not None:
            n = int(x.size)
            self.note(q, f"no reported n: the data's n={n} is used for GRIM/GRIMMER/bounds")
        if s.n is None and n is not None and x is not None and x.size != n:
            self.note(q, f"the study n={n} is used for the arithmetic checks, but the data hold "
                      f"{x.size} value(s) here (missing values?); state n per time point to "
                      "check it")
        self._vs_data(v, q, s, x)
        if n is None:
            self.note(q, "no n reported or in the data: GRIM, GRIMMER and bounds not tested")
            return
        self._possible(v, q, s, n)
        if v.name == "odi" and x is not None and x.size:
            self._odi_note(q, x)

    def _vs_data(self, v: ReportedVariable, q: str, s: ReportedStats,
                 x: np.ndarray | None) -> None:
        if x is None:
            return
        if s.n is not None and s.n != x.size:
            self.add(f"{q}.n", float(s.n), float(x.size), "mismatch",
                     f"reported n={s.n} but the data hold {x.size} values")
        if x.size == 0:
            return
        mean = float(np.mean(x))
        if s.mean is not None and not s.mean.covers(mean):
            self.add(f"{q}.mean", _rep(s.mean), mean, "mismatch",
                     f"the data's mean is {_fmt(mean)} (prints as "
                     f"{mean:.{s.mean.decimals}f}), not {s.mean.text}")
        if s.sd is not None and x.size > 1:
            sd = float(np.std(x, ddof=1))
            if not s.sd.covers(sd):
                self.add(f"{q}.sd", _rep(s.sd), sd, "mismatch",
                         f"the data's SD (n-1) is {_fmt(sd)} (prints as "
                         f"{sd:.{s.sd.decimals}f}), not {s.sd.text}")
        for stat, val in (("min", float(np.min(x))), ("max", float(np.max(x)))):
            r = getattr(s, stat)
            if r is not None and not r.covers(val):
                self.add(f"{q}.{stat}", _rep(r), val, "range",
                         f"the data's {stat}imum is {_fmt(val)}, not {r.text}")

    def _possible(self, v: ReportedVariable, q: str, s: ReportedStats, n: int) -> None:
        # instrument scale and granularity of the range ends
        for stat in ("mean", "min", "max"):
            r = getattr(s, stat)
            if r is None:
                continue
            if v.scale is not None and (float(r.upper) < v.scale[0] - _EPS
                                        or float(r.lower) > v.scale[1] + _EPS):
                self.add(f"{q}.{stat}", _rep(r), None, "range",
                         f"{r.text} lies outside the scale {v.scale[0]:g}-{v.scale[1]:g}")
            if stat != "mean" and v.integer and not grim_sums(r, 1):
                self.add(f"{q}.{stat}", _rep(r), None, "granularity",
                         f"{r.text} cannot be a single whole-number score")
            elif stat != "mean" and v.name == "odi" and odi_min_missing_sections(
                    _rep(r), decimals=r.decimals) is None:
                self.add(f"{q}.{stat}", _rep(r), None, "granularity",
                         f"no ODI v2.1a (any number of answered sections, rounded to "
                         f"{r.decimals} decimals) scores {r.text} %")
        # mean within what the range allows
        if s.mean is not None and s.min is not None and s.max is not None:
            lo, hi = mean_bounds_from_range(_rep(s.min), _rep(s.max), n)
            if float(s.mean.upper) < lo - _EPS or float(s.mean.lower) > hi + _EPS:
                bound = lo if float(s.mean.upper) < lo else hi
                self.add(f"{q}.mean", _rep(s.mean), bound, "range",
                         f"{n} values with min {s.min.text} and max {s.max.text} have a mean "
                         f"in [{_fmt(lo)}, {_fmt(hi)}]; {s.mean.text} is outside")
        # GRIM / GRIMMER
        if v.integer and s.mean is not None:
            if not grim_sums(s.mean, n):
                target = _rep(s.mean)
                k = round(target * n)
                near = sorted({(k - 1) / n, k / n, (k + 1) / n},
                              key=lambda m: abs(m - target))
                self.add(f"{q}.mean", _rep(s.mean), near[0], "grim",
                         f"a mean of {n} whole numbers is k/{n}; the nearest are "
                         f"{', '.join(f'{m:.{s.mean.decimals + 3}f}' for m in sorted(near[:2]))}"
                         f", none prints as {s.mean.text}")
                if s.sd is not None:
                    self.note(f"{q}.sd", "GRIMMER not tested: the mean already fails GRIM")
            elif s.sd is not None and n >= 2:
                res = grimmer(s.mean, s.sd, n)
                if not res.consistent:
                    self.add(f"{q}.sd", _rep(s.sd), _nearest_sd(s.mean, s.sd, n), "grimmer",
                             _grimmer_detail(s.mean, s.sd, n, res.reason))
        elif s.mean is not None and not v.integer:
            self.note(f"{q}.mean", "scores not declared whole numbers (integer: true): GRIM and "
                      "GRIMMER not applicable")
        # SD bounds from the range (and, with a mean, Bhatia-Davis on the range or the scale)
        if s.sd is None or n < 2:
            return
        sd_lo = float(s.sd.lower)
        if s.min is not None and s.max is not None:
            sd_min, sd_max = sd_bounds_from_range(_rep(s.min), _rep(s.max), n)
            if sd_lo > sd_max + _EPS:
                self.add(f"{q}.sd", _rep(s.sd), sd_max, "sd_bound",
                         f"{n} values within {s.min.text}-{s.max.text} have an SD of at most "
                         f"{_fmt(sd_max)} (half at each end); {s.sd.text} is larger")
                return
            if float(s.sd.upper) < sd_min - _EPS:
                self.add(f"{q}.sd", _rep(s.sd), sd_min, "sd_bound",
                         f"{n} values whose min is {s.min.text} and max {s.max.text} have an SD "
                         f"of at least {_fmt(sd_min)} (one at each end, the rest at the "
                         f"midpoint); {s.sd.text} is smaller")
                return
            lo_end, hi_end, what = _rep(s.min), _rep(s.max), f"range {s.min.text}-{s.max.text}"
        elif v.scale is not None:
            lo_end, hi_end, what = v.scale[0], v.scale[1], f"scale {v.scale[0]:g}-{v.scale[1]:g}"
        else:
            return
        if s.mean is None:
            return
        bd = _bhatia_davis_sd(s.mean, lo_end, hi_end, n)
        if bd is not None and sd_lo > bd + _EPS:
            self.add(f"{q}.sd", _rep(s.sd), bd, "sd_bound",
                     f"{n} values in the {what} with a mean printing as {s.mean.text} have an "
                     f"SD of at most {_fmt(bd)} (Bhatia-Davis); {s.sd.text} is larger")

    def _odi_note(self, q: str, x: np.ndarray) -> None:
        odd = [float(v) for v in x if float(v).is_integer() and int(v) % 2]
        if not odd:
            return
        parts = []
        for val in sorted(set(odd)):
            k = odi_min_missing_sections(val)
            parts.append(f"{val:g} (needs >= {k} unanswered section(s))" if k is not None
                         else f"{val:g} (impossible)")
        self.note(q, f"{len(odd)} odd ODI value(s): {', '.join(parts)}. A complete "
                  "10-section ODI is always even; odd values imply unanswered sections and "
                  "rounding, which is possible, so they are not flagged")

    # -- stated p values ------------------------------------------------------------------
    def check_comparison(self, v: ReportedVariable, c: Any) -> None:
        q = f"{v.name}.{c.to_tp}.p"
        n = self.reported.n
        tps = v.timepoints
        if c.from_tp in tps and tps[c.from_tp].n:
            n = tps[c.from_tp].n
        x0, x1 = self.data(v.name, c.from_tp), self.data(v.name, c.to_tp)
        if n is None and x0 is not None:
            n = int(x0.size)
        self._summary_t_note(q, c, tps.get(c.from_tp), tps.get(c.to_tp), n)
        self._direction_note(v, c, x0, x1)
        if n is not None:
            paired_min = min_p_rank_test(n)
            mw_min = min_p_rank_test(n, n)
            rank_note = (f"at n={n} the smallest two-sided exact p is {_fmt(paired_min)} for "
                         f"the Wilcoxon signed-rank test and {_fmt(mw_min)} for Mann-Whitney U "
                         f"({n} vs {n})")
            if c.test in ("wilcoxon", "mann_whitney"):
                own = paired_min if c.test == "wilcoxon" else mw_min
                b = float(c.p.bound)
                impossible = ((c.p.relation == "<" and own >= b)
                              or (c.p.relation == "<=" and own > b)
                              or (c.p.relation == "=" and own > float(c.p.bound.upper)))
                if impossible:
                    self.add(q, c.p.text, own, "p_value",
                             f"the stated test ({c.test}) cannot give p {c.p.text}: {rank_note}")
                    return  # the data cannot do better than the test's smallest p
            else:
                verdict = (f"signed-rank {'can' if c.p.holds(paired_min) else 'cannot'}, "
                           f"Mann-Whitney {'can' if c.p.holds(mw_min) else 'cannot'} give p "
                           f"{c.p.text}")
                self.note(q, f"{rank_note}: {verdict} (informational: the stated test is "
                          f"{c.test})")
        if x0 is None or x1 is None or self.long_df is None:
            return
        sub = self.long_df[self.long_df["variable"] == v.name]
        pairs = sub.pivot(index="id", columns="timepoint", values="value").reindex(
            columns=[c.from_tp, c.to_tp]).dropna()
        pairs.columns = ["a", "b"]
        x_from, x_to = pairs["a"].to_numpy(float), pairs["b"].to_numpy(float)
        candidates: dict[str, float] = {}
        if c.test in ("student_t", "paired_t"):
            candidates["paired t"] = float(st.ttest_rel(x_from, x_to).pvalue)
        if c.test in ("student_t", "independent_t"):
            candidates["Student's independent t"] = float(st.ttest_ind(x_from, x_to).pvalue)
        if c.test == "wilcoxon":
            candidates["Wilcoxon signed-rank (exact)"] = float(
                st.wilcoxon(x_to - x_from, method="exact").pvalue)
        if c.test == "mann_whitney":
            candidates["Mann-Whitney U (exact)"] = float(
                st.mannwhitneyu(x_from, x_to, method="exact").pvalue)
        ok = [k for k, p in candidates.items() if c.p.holds(p)]
        listing = ", ".join(f"{k} p={_fmt(p)}" for k, p in candidates.items())
        if ok:
            self.note(q, f"stated p {c.p.text} ({c.test}); data: {listing}; reproduced by "
                      f"{' and '.join(ok)}"
                      + ("; the statement cannot tell which t test was run"
                         if len(ok) > 1 else ""))
        else:
            best = min(candidates.values(), key=lambda p: abs(p - float(c.p.bound)))
            self.add(q, c.p.text, best, "p_value",
                     f"stated p {c.p.text} ({c.test}) but the data give {listing}")

    def _direction_note(self, v: ReportedVariable, c: Any, x0: np.ndarray | None,
                        x1: np.ndarray | None) -> None:
        """Words ('increased') against numbers: informational (no finding kind covers prose)."""
        if c.direction is None:
            return
        s0, s1 = v.timepoints.get(c.from_tp), v.timepoints.get(c.to_tp)
        said = []
        if s0 is not None and s1 is not None and s0.mean is not None and s1.mean is not None:
            rep_dir = "increase" if s1.mean.value > s0.mean.value else "decrease"
            said.append(f"the reported means ({s0.mean.text} -> {s1.mean.text}) {rep_dir}")
        if x0 is not None and x1 is not None and x0.size and x1.size:
            dat_dir = "increase" if float(np.mean(x1)) > float(np.mean(x0)) else "decrease"
            said.append(f"the data's means {dat_dir}")
        if said:
            contradicted = any(not part.endswith(c.direction) for part in said)
            worded = "increased" if c.direction == "increase" else "decreased"
            self.note(f"{v.name}.{c.to_tp}.direction",
                      f"the text says the score {worded} from {c.from_tp} to {c.to_tp}; "
                      f"{'; '.join(said)}"
                      + (": the wording contradicts the numbers" if contradicted else ""))

    def _summary_t_note(self, q: str, c: Any, s0: ReportedStats | None,
                        s1: ReportedStats | None, n: int | None) -> None:
        """Student's t from the reported means and SDs (the paired t needs the correlation)."""
        if (n is None or s0 is None or s1 is None or s0.mean is None or s1.mean is None
                or s0.sd is None or s1.sd is None or c.test not in ("student_t", "independent_t")):
            return
        n0 = s0.n or n
        n1 = s1.n or n
        res = st.ttest_ind_from_stats(_rep(s0.mean), _rep(s0.sd), n0, _rep(s1.mean),
                                      _rep(s1.sd), n1, equal_var=True)
        p = float(res.pvalue)
        self.note(q, f"from the reported means and SDs alone, Student's independent t = "
                  f"{float(res.statistic):.4g} (df {n0 + n1 - 2}), p = {_fmt(p)}: "
                  f"{'satisfies' if c.p.holds(p) else 'does not satisfy'} p {c.p.text} "
                  "(informational: the summary numbers themselves are audited above)")

    def run(self) -> AuditReport:
        for v in self.reported.variables.values():
            if v.overall is not None:
                self.check_stats(v, None, v.overall)
            for tp, s in v.timepoints.items():
                self.check_stats(v, tp, s)
            for c in v.comparisons:
                self.check_comparison(v, c)
        return AuditReport(findings=tuple(self.findings), notes=tuple(self.notes))


def audit_report(cohort: Any, reported: Reported | str | os.PathLike[str]) -> AuditReport:
    """Audit reported numbers against a cohort's data and against arithmetic.

    Parameters
    ----------
    cohort : Cohort or None
        :class:`alarscrew.cohort.Cohort` (``outcomes_long()`` for variables with time
        points, ``baseline()`` columns for single-time variables such as ``age_years``), or
        None to test only what is possible at all (GRIM, GRIMMER, bounds).
    reported : Reported or path
        From :func:`alarscrew.stats.load_reported`, or the YAML file itself.

    Returns
    -------
    AuditReport
        Findings in the order of the YAML file, and informational notes.
    """
    if not isinstance(reported, Reported):
        reported = load_reported(reported)
    long_df = cohort.outcomes_long() if cohort is not None else None
    base_df = cohort.baseline() if cohort is not None else None
    return _Auditor(reported, long_df, base_df).run()


def audit(cohort: Any, reported: Reported | str | os.PathLike[str]) -> list[Finding]:
    """The findings of :func:`audit_report` (the public contract of docs/DEVELOPING.md)."""
    return list(audit_report(cohort, reported).findings)

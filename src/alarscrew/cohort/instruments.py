"""Outcome instruments: ODI v2.1a from item answers, VAS normalisation, MCID attainment.

References
----------
.. [1] Fairbank JCT, Pynsent PB. The Oswestry Disability Index. Spine. 2000;25(22):2940-2953.
   (Version 2.1a questionnaire, scoring and interpretation bands.)
.. [2] Copay AG, Glassman SD, Subach BR, Berven S, Schuler TC, Carreon LY. Minimum clinically
   important difference in lumbar spine surgery patients: a choice of methods using the
   Oswestry Disability Index, Medical Outcomes Study questionnaire Short Form 36, and pain
   scales. Spine J. 2008;8(6):968-974.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from alarscrew.errors import ValidationError

#: Number of ODI sections and the maximum score of each.
ODI_SECTIONS = 10
ODI_SECTION_MAX = 5

#: Default number of unanswered ODI sections tolerated. Fairbank & Pynsent 2000 [1]_ give the
#: rule for one missed section (denominator 45); with more missing we refuse by default.
ODI_DEFAULT_MAX_MISSING = 1

#: ODI disability bands (inclusive upper bounds in percent), Fairbank & Pynsent 2000 [1]_.
ODI_BANDS: tuple[tuple[float, str], ...] = (
    (20.0, "minimal"),
    (40.0, "moderate"),
    (60.0, "severe"),
    (80.0, "crippled"),
    (100.0, "bed-bound"),
)


@dataclass(frozen=True)
class MCID:
    """A minimal clinically important difference (improvement = decrease of the score).

    Attributes
    ----------
    variable : str
        Outcome variable it applies to.
    points : float
        Threshold on the score's own scale (ODI percent points, VAS 0-10 points).
    citation : str
        Where the number comes from.
    note : str
        How it was derived or why it is applied to this variable.
    """

    variable: str
    points: float
    citation: str
    note: str = ""


_COPAY = (
    "Copay AG et al. Minimum clinically important difference in lumbar spine surgery patients. "
    "Spine J. 2008;8(6):968-974"
)

#: Default MCIDs for lumbar spine surgery (Copay et al. 2008 [2]_, 1-year outcomes, n=454).
#: ``vas`` defaults to the back-pain value because the reference cohort's VAS is not specified
#: as back or leg pain and all patients had back pain; pass ``mcid={"vas": 1.6}`` for leg pain.
MCID_DEFAULTS: dict[str, MCID] = {
    "odi": MCID("odi", 12.8, _COPAY, "ODI, percent points"),
    "back_pain": MCID("back_pain", 1.2, _COPAY, "back-pain numeric rating scale 0-10"),
    "leg_pain": MCID("leg_pain", 1.6, _COPAY, "leg-pain numeric rating scale 0-10"),
    "vas": MCID("vas", 1.2, _COPAY, "back-pain value applied to an unspecified pain VAS 0-10"),
}


@dataclass(frozen=True)
class ODIResult:
    """An ODI score computed from its section answers.

    Attributes
    ----------
    percent : float or None
        ODI in percent (0-100); None when too many sections are unanswered.
    items : tuple of (int or None)
        The 10 section answers used (0-5; None = unanswered), after resolving double marks.
    n_answered : int
    band : str or None
        Disability band (:data:`ODI_BANDS`).
    """

    percent: float | None
    items: tuple[int | None, ...]
    n_answered: int
    band: str | None


def resolve_marks(marks: Sequence[int] | int | None) -> int | None:
    """One section's answer from the statements marked: the higher when two or more are marked.

    Parameters
    ----------
    marks : int, sequence of int, or None
        Marked statement score(s) 0-5; None or an empty sequence = unanswered.

    Notes
    -----
    "If a patient marks two statements, the highest scoring statement is recorded"
    (Fairbank & Pynsent 2000 [1]_, scoring instructions).
    """
    if marks is None:
        return None
    if isinstance(marks, int | np.integer):
        return int(marks)
    vals = [int(m) for m in marks]
    return max(vals) if vals else None


def odi_score(
    items: Sequence[int | Sequence[int] | None],
    *,
    max_missing: int = ODI_DEFAULT_MAX_MISSING,
) -> ODIResult:
    """Score the Oswestry Disability Index v2.1a from its 10 section answers.

    Parameters
    ----------
    items : sequence of 10 (int, sequence of int, or None)
        Section scores 0-5 in questionnaire order; None = unanswered; a sequence = several
        statements marked (the higher is used).
    max_missing : int, keyword-only
        Most unanswered sections tolerated (default 1, :data:`ODI_DEFAULT_MAX_MISSING`).

    Returns
    -------
    ODIResult

    Raises
    ------
    ValueError
        Wrong number of sections or an answer outside 0-5 (readers add file/row/column).

    Notes
    -----
    ``percent = 100 * sum(answered) / (5 * n_answered)``: each unanswered section shrinks the
    denominator by 5 (Fairbank & Pynsent 2000 [1]_).
    """
    if len(items) != ODI_SECTIONS:
        raise ValueError(f"ODI needs {ODI_SECTIONS} sections, got {len(items)}")
    resolved = tuple(resolve_marks(m) for m in items)
    answered = np.array([v for v in resolved if v is not None], dtype=float)
    if np.any((answered < 0) | (answered > ODI_SECTION_MAX) | (answered != np.round(answered))):
        raise ValueError(f"ODI section answers must be integers 0-{ODI_SECTION_MAX}, "
                         f"got {list(resolved)}")
    n = int(answered.size)
    if ODI_SECTIONS - n > max_missing:
        return ODIResult(None, resolved, n, None)
    percent = float(100.0 * answered.sum() / (ODI_SECTION_MAX * n))
    return ODIResult(percent, resolved, n, odi_band(percent))


def odi_band(percent: float | None) -> str | None:
    """Disability band of an ODI percentage (Fairbank & Pynsent 2000 [1]_).

    0-20 minimal, 21-40 moderate, 41-60 severe, 61-80 crippled, 81-100 bed-bound. The bands
    are printed for integer percentages; a non-integer score between two bands (e.g. 20.5)
    belongs to the higher band (bounds are inclusive upper limits). None for None/NaN.
    """
    if percent is None or not np.isfinite(percent):
        return None
    if percent < 0 or percent > 100:
        raise ValueError(f"ODI must be within 0-100 percent, got {percent}")
    for upper, name in ODI_BANDS:
        if percent <= upper:
            return name
    raise AssertionError("unreachable")  # pragma: no cover


def normalise_vas(values: np.ndarray | Sequence[float], *, scale_max: float) -> np.ndarray:
    """Convert VAS readings to the 0-10 scale.

    Parameters
    ----------
    values : array_like of float
        Readings on a 0-``scale_max`` scale (NaN = missing).
    scale_max : float, keyword-only
        10 for a 0-10 scale, 100 for a 100 mm line.

    Returns
    -------
    ndarray of float
        ``values * 10 / scale_max``.

    Raises
    ------
    ValueError
        A reading outside ``[0, scale_max]`` or an unsupported scale.
    """
    if scale_max not in (10, 100):
        raise ValueError(f"VAS scale must be 0-10 or 0-100 mm, got 0-{scale_max}")
    arr = np.asarray(values, dtype=float)
    bad = np.isfinite(arr) & ((arr < 0) | (arr > scale_max))
    if np.any(bad):
        raise ValueError(f"VAS readings must be within 0-{scale_max}, got {arr[bad].tolist()}")
    return arr * (10.0 / scale_max)


def mcid_attainment(
    cohort: object,
    *,
    baseline: str = "pre",
    mcid: Mapping[str, float | MCID] | None = None,
) -> pd.DataFrame:
    """Per-patient MCID attainment: improvement from ``baseline`` to each later time point.

    Parameters
    ----------
    cohort : Cohort
        The cohort (``alarscrew.cohort.Cohort``).
    baseline : str, keyword-only
        Reference time point (default ``pre``).
    mcid : mapping, keyword-only
        Variable -> threshold (points) or :class:`MCID`, overriding :data:`MCID_DEFAULTS`.

    Returns
    -------
    DataFrame
        Columns ``id``, ``variable``, ``from``, ``to``, ``baseline_value``, ``value``,
        ``improvement`` (baseline - value; positive = better), ``mcid_points``,
        ``attained`` (nullable boolean: ``improvement >= mcid_points``; NA when a score is
        missing), ``mcid_citation``.

    Raises
    ------
    ValidationError
        If the baseline time point is absent or a variable has no MCID.
    """
    table = {**MCID_DEFAULTS}
    for k, v in (mcid or {}).items():
        table[k] = v if isinstance(v, MCID) else MCID(k, float(v), "user-supplied")
    long = cohort.outcomes_long()  # type: ignore[attr-defined]
    tps = [str(t) for t in cohort.timepoints]  # type: ignore[attr-defined]
    if baseline not in tps:
        raise ValidationError(f"baseline time point {baseline!r} not in the cohort "
                              f"(has {', '.join(tps)})", column="timepoint")
    later = tps[tps.index(baseline) + 1:]
    frames = []
    for var in long["variable"].unique():
        if var not in table:
            raise ValidationError(f"no MCID known for variable {var!r}; pass mcid={{{var!r}: "
                                  f"points}}", column=var)
        m = table[var]
        wide = long[long["variable"] == var].pivot(index="id", columns="timepoint",
                                                   values="value")
        wide.columns = [str(c) for c in wide.columns]
        for tp in later:
            if tp not in wide.columns:
                continue
            imp = wide[baseline] - wide[tp]
            att = pd.array([None if np.isnan(x) else bool(x >= m.points) for x in imp],
                           dtype="boolean")
            frames.append(pd.DataFrame({
                "id": wide.index, "variable": var, "from": baseline, "to": tp,
                "baseline_value": wide[baseline].to_numpy(), "value": wide[tp].to_numpy(),
                "improvement": imp.to_numpy(), "mcid_points": m.points, "attained": att,
                "mcid_citation": m.citation,
            }))
    if not frames:
        return pd.DataFrame(columns=["id", "variable", "from", "to", "baseline_value", "value",
                                     "improvement", "mcid_points", "attained",
                                     "mcid_citation"])
    out = pd.concat(frames, ignore_index=True)
    order = {c.id: i for i, c in enumerate(cohort.cases)}  # type: ignore[attr-defined]
    keys = {"id": order, "to": {t: i for i, t in enumerate(tps)}}
    out = out.sort_values(["variable", "to", "id"],
                          key=lambda s: s.map(keys[s.name]) if s.name in keys else s,
                          kind="stable").reset_index(drop=True)
    return out


def odi_bands(cohort: object) -> pd.DataFrame:
    """ODI disability band of every ODI score of a cohort (Fairbank & Pynsent 2000 [1]_).

    Returns
    -------
    DataFrame
        Columns ``id``, ``timepoint``, ``odi`` (percent, NaN when missing), ``band`` (None when
        missing), in the row order of ``outcomes_long()``.
    """
    long = cohort.outcomes_long()  # type: ignore[attr-defined]
    odi = long[long["variable"] == "odi"].reset_index(drop=True)
    return pd.DataFrame({
        "id": odi["id"], "timepoint": odi["timepoint"], "odi": odi["value"],
        "band": [odi_band(v) for v in odi["value"]],
    })

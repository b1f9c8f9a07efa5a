"""Typed model of a clinical case series: cases, scores at named time points, the cohort.

Everything here is a small frozen dataclass; tables (``DataFrame``) are derived on demand
and never cached, so a :class:`Cohort` cannot drift from the cases it holds.

Vocabularies (the single source of truth used by readers, validation and the CLI):

- diagnosis codes: :data:`DIAGNOSES`;
- sex codes: :data:`SEXES`;
- bone-density kinds: :data:`BMD_KINDS` (``t_score``, ``g_cm2``, ``unspecified`` when the
  source prints a number without saying what it is, as Fang et al. 2022 do);
- motion segments: two adjacent vertebrae from T1 to S1 (``L4/L5``, ``L5/S1``), see
  :func:`parse_segments`;
- time points: ``pre``, ``post_<n><unit>`` (unit ``d``, ``w``, ``m``, ``y``), ``final``, see
  :func:`timepoint_sort_key`.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import pandas as pd

#: Diagnosis codes and their printed labels.
DIAGNOSES: dict[str, str] = {
    "chronic_pyogenic": "Chronic pyogenic spondylitis",
    "postoperative_pyogenic": "Postoperative pyogenic spondylitis",
    "tuberculous": "Tuberculous spondylitis",
    "other": "Other",
}

#: Accepted spellings (lower case, single spaces) -> diagnosis code.
DIAGNOSIS_SYNONYMS: dict[str, str] = {
    "chronic pyogenic spondylitis": "chronic_pyogenic",
    "chronic pyogenic": "chronic_pyogenic",
    "postoperative pyogenic spondylitis": "postoperative_pyogenic",
    "postoperative pyogenic": "postoperative_pyogenic",
    "tuberculous spondylitis": "tuberculous",
    "tuberculotic spondylitis": "tuberculous",  # the spelling printed by Fang et al. 2022
    "tuberculosis": "tuberculous",
    "spinal tuberculosis": "tuberculous",
}

#: Sex codes.
SEXES: dict[str, str] = {"F": "female", "M": "male"}

#: Kinds of bone-density value.
BMD_KINDS: dict[str, str] = {
    "t_score": "DXA T-score (SD units, negative = below young-adult mean)",
    "g_cm2": "areal bone mineral density in g/cm^2",
    "unspecified": "value printed without unit or sign; its kind is not stated by the source",
}

#: Known outcome variables: name -> (minimum, maximum) of the stored value.
OUTCOME_RANGES: dict[str, tuple[float, float]] = {"vas": (0.0, 10.0), "odi": (0.0, 100.0)}

#: Sacral destruction grades (ordered).
SACRAL_DESTRUCTION_GRADES: tuple[str, ...] = ("none", "mild", "moderate", "severe")

_VERTEBRAE: tuple[str, ...] = (
    *(f"T{i}" for i in range(1, 13)),
    *(f"L{i}" for i in range(1, 6)),
    "S1",
)
#: Every valid motion segment, cranial to caudal.
SEGMENTS: tuple[str, ...] = tuple(
    f"{a}/{b}" for a, b in itertools.pairwise(_VERTEBRAE)
)

_SEGMENT_TOKEN = re.compile(r"([TLS])\s*(\d{1,2})\s*[/\-]?\s*([TLS])\s*(\d{1,2})", re.IGNORECASE)
_TIMEPOINT = re.compile(r"^(?:pre|final|post_(\d+)(d|w|m|y))$")
_UNIT_DAYS = {"d": 1.0, "w": 7.0, "m": 30.4375, "y": 365.25}


def parse_segments(text: str) -> tuple[str, ...]:
    """Parse fused motion segments from free text.

    Accepts ``"L4/L5; L5/S1"``, ``"L4-L5, L5-S1"``, ``"L4L5 L5S1"`` and the run-together form
    printed in Fang et al. 2022 Table 1 (``"L4/L5L5/S1"``).

    Parameters
    ----------
    text : str
        The cell text.

    Returns
    -------
    tuple of str
        Canonical segments (``"L4/L5"``) sorted cranial to caudal, without duplicates.

    Raises
    ------
    ValueError
        If a token is not a segment of two adjacent vertebrae between T1 and S1, or if text
        other than separators remains. Callers turn it into a ValidationError with the location.
    """
    s = str(text).strip()
    if not s:
        raise ValueError("empty segment list")
    found: list[str] = []
    pos = 0
    for m in _SEGMENT_TOKEN.finditer(s):
        gap = s[pos:m.start()]
        if gap.strip(" ,;+&") and gap.strip(" ,;+&").lower() not in {"and"}:
            raise ValueError(f"cannot read {gap.strip()!r} as a segment")
        seg = f"{m.group(1).upper()}{int(m.group(2))}/{m.group(3).upper()}{int(m.group(4))}"
        if seg not in SEGMENTS:
            raise ValueError(
                f"unknown segment {m.group(0)!r}: expected two adjacent vertebrae between "
                f"T1 and S1 such as L4/L5 or L5/S1"
            )
        found.append(seg)
        pos = m.end()
    rest = s[pos:].strip(" ,;+&")
    if rest or not found:
        raise ValueError(f"cannot read {rest or s!r} as a segment (expected e.g. L4/L5; L5/S1)")
    return tuple(sorted(set(found), key=SEGMENTS.index))


def is_timepoint(name: str) -> bool:
    """Whether ``name`` is a valid time-point name (``pre``, ``post_3d``, ``final``...)."""
    return bool(_TIMEPOINT.match(name))


def timepoint_sort_key(name: str) -> tuple[int, float]:
    """Study-order key: ``pre`` first, ``post_*`` by duration (months = 30.4375 d), ``final`` last.

    Raises
    ------
    ValueError
        If ``name`` is not a valid time-point name.
    """
    m = _TIMEPOINT.match(name)
    if m is None:
        raise ValueError(
            f"unknown time point {name!r}: expected 'pre', 'post_<n><d|w|m|y>' (e.g. post_3d, "
            f"post_9m) or 'final'"
        )
    if name == "pre":
        return (0, 0.0)
    if name == "final":
        return (2, 0.0)
    return (1, int(m.group(1)) * _UNIT_DAYS[m.group(2)])


def sort_timepoints(names: Iterable[str]) -> tuple[str, ...]:
    """Unique time points in study order (see :func:`timepoint_sort_key`); ties by name."""
    return tuple(sorted(set(names), key=lambda n: (*timepoint_sort_key(n), n)))


@dataclass(frozen=True)
class Score:
    """One outcome score of one case at one time point.

    Attributes
    ----------
    variable : str
        ``vas`` (0-10) or ``odi`` (percent, 0-100).
    timepoint : str
        Time-point name, e.g. ``pre``.
    value : float or None
        The score; None when the score is missing (or not computable from its items).
    items : tuple of (int or None), optional
        ODI section answers (0-5, None = unanswered) when the score was computed from them.
    """

    variable: str
    timepoint: str
    value: float | None
    items: tuple[int | None, ...] | None = None


@dataclass(frozen=True)
class Complication:
    """A complication: a category code and optional free text."""

    category: str
    text: str = ""


@dataclass(frozen=True)
class Case:
    """One patient of a case series.

    Missing values are ``None`` (never 0, never an empty string).

    Attributes
    ----------
    id : str
        Case identifier (de-identified).
    age_years : float or None
    sex : str or None
        ``F`` or ``M``.
    diagnosis : str or None
        A key of :data:`DIAGNOSES`.
    diagnosis_text : str or None
        The diagnosis as written in the source.
    symptoms : tuple of str
        Symptom codes, e.g. ``("back_pain", "leg_pain")``; empty when none recorded.
    bmd_value : float or None
        Bone-density value as given by the source.
    bmd_kind : str or None
        A key of :data:`BMD_KINDS`; ``unspecified`` when the source does not say.
    fused_segments : tuple of str or None
        Canonical segments (``L4/L5``) cranial to caudal; None if not recorded.
    follow_up_months : float or None
    fusion_time_months : float or None
        Time to radiological bony fusion.
    sacral_destruction : str or None
        One of :data:`SACRAL_DESTRUCTION_GRADES`; None if not recorded.
    complications : tuple of Complication or None
        None = not reported per patient; empty tuple = recorded as none.
    scores : tuple of Score
    """

    id: str
    age_years: float | None = None
    sex: str | None = None
    diagnosis: str | None = None
    diagnosis_text: str | None = None
    symptoms: tuple[str, ...] = ()
    bmd_value: float | None = None
    bmd_kind: str | None = None
    fused_segments: tuple[str, ...] | None = None
    follow_up_months: float | None = None
    fusion_time_months: float | None = None
    sacral_destruction: str | None = None
    complications: tuple[Complication, ...] | None = None
    scores: tuple[Score, ...] = ()

    @property
    def n_fused_levels(self) -> int | None:
        """Number of fused motion segments, None if not recorded."""
        return None if self.fused_segments is None else len(self.fused_segments)

    @property
    def fused_to_sacrum(self) -> bool | None:
        """Whether the fusion is one contiguous block ending at L5/S1 (None if not recorded)."""
        if not self.fused_segments:
            return None
        idx = [SEGMENTS.index(s) for s in self.fused_segments]
        contiguous = idx == list(range(idx[0], idx[0] + len(idx)))
        return contiguous and self.fused_segments[-1] == "L5/S1"

    @property
    def t_score(self) -> float | None:
        """The bone-density value if it is a stated T-score, else None (kind unknown or other)."""
        return self.bmd_value if self.bmd_kind == "t_score" else None

    def score(self, variable: str, timepoint: str) -> float | None:
        """The score of ``variable`` at ``timepoint`` (None if absent)."""
        for s in self.scores:
            if s.variable == variable and s.timepoint == timepoint:
                return s.value
        return None


@dataclass(frozen=True)
class CohortNote:
    """A cohort-level fact that the source does not attribute to individual patients.

    Example: Fang et al. 2022 report 2 of 7 patients with transient postoperative local pain
    without saying which ones.
    """

    topic: str
    text: str
    count: int | None = None
    of: int | None = None


@dataclass(frozen=True)
class Cohort:
    """A case series.

    Attributes
    ----------
    name : str
        Dataset name or file name.
    cases : tuple of Case
    timepoints : tuple of str
        All time points in study order.
    source : str
        Where the data came from (path or ``embedded:<name>``).
    citation : str or None
        Citation of the source publication, for embedded datasets.
    notes : tuple of CohortNote
        Cohort-level facts (e.g. complications not attributed to patients).
    ignored_columns : tuple of str
        Columns of the source table that no field uses (reported by ``cohort validate``).
    """

    name: str
    cases: tuple[Case, ...]
    timepoints: tuple[str, ...]
    source: str = ""
    citation: str | None = None
    notes: tuple[CohortNote, ...] = field(default_factory=tuple)
    ignored_columns: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.cases)

    @property
    def variables(self) -> tuple[str, ...]:
        """Outcome variables present, in the order of :data:`OUTCOME_RANGES`, then others."""
        seen = {s.variable for c in self.cases for s in c.scores}
        known = [v for v in OUTCOME_RANGES if v in seen]
        return (*known, *sorted(seen - set(known)))

    def case(self, case_id: str) -> Case:
        """The case with this id (KeyError if absent)."""
        for c in self.cases:
            if c.id == case_id:
                return c
        raise KeyError(case_id)

    def outcomes_long(self) -> pd.DataFrame:
        """Outcome scores as a long table.

        Returns
        -------
        DataFrame
            Columns ``id`` (str), ``variable`` (str), ``timepoint`` (ordered categorical in
            study order), ``value`` (float, NaN when missing). Rows sorted by variable, case
            order, time point. Every (case, variable, time point) combination with at least
            one score in the cohort is present.
        """
        variables = self.variables
        lookup: Mapping[tuple[str, str, str], float | None] = {
            (c.id, s.variable, s.timepoint): s.value for c in self.cases for s in c.scores
        }
        present = {(k[1], k[2]) for k in lookup}
        rows = [
            (c.id, v, tp, lookup.get((c.id, v, tp)))
            for v in variables
            for c in self.cases
            for tp in self.timepoints
            if (v, tp) in present
        ]
        df = pd.DataFrame(rows, columns=["id", "variable", "timepoint", "value"])
        df["value"] = pd.to_numeric(df["value"], errors="raise").astype(float)
        df["timepoint"] = pd.Categorical(df["timepoint"], categories=list(self.timepoints),
                                         ordered=True)
        return df

    def outcomes_wide(self, variable: str) -> pd.DataFrame:
        """One variable as a case x time-point table (index ``id``, float, NaN when missing)."""
        df = self.outcomes_long()
        df = df[df["variable"] == variable]
        wide = df.pivot(index="id", columns="timepoint", values="value")
        wide = wide.reindex(index=[c.id for c in self.cases])
        wide.columns = [str(c) for c in wide.columns]
        return wide

    def baseline(self) -> pd.DataFrame:
        """One row per case with the baseline fields.

        Returns
        -------
        DataFrame
            Columns ``id``, ``age_years``, ``sex``, ``diagnosis``, ``symptoms`` (``"; "``-joined
            codes), ``bmd_value``, ``bmd_kind``, ``fused_segments`` (``"; "``-joined, e.g.
            ``"L4/L5; L5/S1"``), ``n_fused_levels`` (nullable Int64), ``follow_up_months``,
            ``fusion_time_months``, ``sacral_destruction``, ``complications`` (``"; "``-joined
            categories; None when not reported per patient). Missing numbers are NaN,
            missing text None.
        """
        rows = []
        for c in self.cases:
            rows.append({
                "id": c.id,
                "age_years": c.age_years,
                "sex": c.sex,
                "diagnosis": c.diagnosis,
                "symptoms": "; ".join(c.symptoms) if c.symptoms else None,
                "bmd_value": c.bmd_value,
                "bmd_kind": c.bmd_kind,
                "fused_segments": None if c.fused_segments is None
                else "; ".join(c.fused_segments),
                "n_fused_levels": c.n_fused_levels,
                "follow_up_months": c.follow_up_months,
                "fusion_time_months": c.fusion_time_months,
                "sacral_destruction": c.sacral_destruction,
                "complications": None if c.complications is None
                else "; ".join(x.category for x in c.complications),
            })
        df = pd.DataFrame(rows)
        for col in ("age_years", "bmd_value", "follow_up_months", "fusion_time_months"):
            df[col] = pd.to_numeric(df[col]).astype(float)
        df["n_fused_levels"] = pd.array(df["n_fused_levels"].tolist(), dtype="Int64")
        return df

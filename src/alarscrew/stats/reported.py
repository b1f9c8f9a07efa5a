"""What a paper reports: summary numbers per variable and time point, read from YAML.

Format (see ``alarscrew/data/fang2022/reported.yaml`` for a complete, annotated example)::

    source: "Fang et al. 2022"          # free text, optional
    n: 7                                # study sample size, optional default for every variable
    variables:
      vas:                              # outcome variable: statistics per time point
        integer: true                   # scores are whole numbers (enables GRIM/GRIMMER)
        scale: [0, 10]                  # possible range of one score, optional
        timepoints:
          pre: {n: 7, mean: "7.3", sd: "1.3", min: "6", max: "8"}
        comparisons:
          - {from: pre, to: post_3d, p: "<0.001", test: student_t}
      age_years:                        # single-time variable: statistics at the top
        integer: true
        mean: "63.57"

Numbers should be quoted strings as printed, so that trailing zeros count (``"2.30"``).
Statistics: ``n``, ``mean``, ``sd``, ``min``, ``max``. Comparison tests: ``student_t``
(paired or independent, not stated), ``paired_t``, ``independent_t``, ``wilcoxon``,
``mann_whitney``; optional ``direction`` (``increase``/``decrease``) as the text words it.
p statements: ``"<0.001"``, ``"<=0.05"``, ``">0.05"``, ``"0.032"``
(or ``"=0.032"``).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from alarscrew.errors import InputError
from alarscrew.stats.consistency import ReportedNumber, parse_reported

__all__ = [
    "STATS",
    "TESTS",
    "PStatement",
    "Reported",
    "ReportedComparison",
    "ReportedStats",
    "ReportedVariable",
    "load_reported",
    "parse_p_statement",
]

#: Statistics a YAML entry may give.
STATS: tuple[str, ...] = ("n", "mean", "sd", "min", "max")
#: Tests a reported comparison may name.
TESTS: tuple[str, ...] = ("student_t", "paired_t", "independent_t", "wilcoxon", "mann_whitney")

_P_RE = re.compile(r"^\s*(<=|>=|<|>|=|≤|≥)?\s*([0-9]*\.?[0-9]+(?:[eE]-?[0-9]+)?)\s*$")


@dataclass(frozen=True)
class PStatement:
    """A stated p value: ``relation`` (``<``, ``<=``, ``>``, ``>=``, ``=``) and bound."""

    text: str
    relation: str
    bound: ReportedNumber

    def holds(self, p: float) -> bool:
        """Whether the recomputed ``p`` satisfies the statement (``=`` allows rounding)."""
        b = float(self.bound)
        if self.relation == "<":
            return p < b
        if self.relation == "<=":
            return p <= b
        if self.relation == ">":
            return p > b
        if self.relation == ">=":
            return p >= b
        return self.bound.covers(p, tol=1e-12)


def parse_p_statement(value: object, *, key: str = "p", path: str | None = None) -> PStatement:
    """Parse ``"<0.001"``, ``"=0.03"`` or ``"0.03"`` into a :class:`PStatement`."""
    text = str(value)
    m = _P_RE.match(text.replace("P", "").replace("p", ""))
    if not m:
        raise InputError(f"expected a p statement such as \"<0.001\" or \"0.032\", got {value!r}",
                         path=path, column=key)
    rel = {"≤": "<=", "≥": ">=", None: "="}.get(m.group(1), m.group(1))
    bound = parse_reported(m.group(2), field=key)
    if not 0 <= bound.value <= 1:
        raise InputError(f"a p value lies in [0, 1], got {value!r}", path=path, column=key)
    return PStatement(text=text.strip(), relation=rel, bound=bound)


@dataclass(frozen=True)
class ReportedStats:
    """Reported statistics of one variable (at one time point, or overall)."""

    n: int | None = None
    mean: ReportedNumber | None = None
    sd: ReportedNumber | None = None
    min: ReportedNumber | None = None
    max: ReportedNumber | None = None


@dataclass(frozen=True)
class ReportedComparison:
    """A reported test of ``from`` vs ``to``."""

    from_tp: str
    to_tp: str
    p: PStatement
    test: str
    direction: str | None = None


@dataclass(frozen=True)
class ReportedVariable:
    """Everything reported about one variable."""

    name: str
    integer: bool
    scale: tuple[float, float] | None
    overall: ReportedStats | None
    timepoints: dict[str, ReportedStats] = field(default_factory=dict)
    comparisons: tuple[ReportedComparison, ...] = ()


@dataclass(frozen=True)
class Reported:
    """A paper's reported numbers (:func:`load_reported`)."""

    path: str
    n: int | None
    source: str
    variables: dict[str, ReportedVariable]


def _mapping(obj: Any, key: str, path: str) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise InputError(f"expected a mapping, got {type(obj).__name__}", path=path, column=key)
    return obj


def _n(obj: Any, key: str, path: str) -> int | None:
    if obj is None:
        return None
    if isinstance(obj, bool) or not isinstance(obj, int | str) or not str(obj).isdigit() \
            or int(obj) < 1:
        raise InputError(f"expected a whole number >= 1, got {obj!r}", path=path, column=key)
    return int(obj)


def _stats(obj: dict[str, Any], key: str, path: str) -> ReportedStats:
    unknown = set(obj) - set(STATS)
    if unknown:
        raise InputError(f"unknown statistic(s) {sorted(unknown)}; allowed {list(STATS)}",
                         path=path, column=key)
    vals: dict[str, Any] = {"n": _n(obj.get("n"), f"{key}.n", path)}
    for s in ("mean", "sd", "min", "max"):
        if obj.get(s) is not None:
            try:
                vals[s] = parse_reported(obj[s], field=f"{key}.{s}")
            except InputError as exc:
                raise InputError(exc.reason, path=path, column=f"{key}.{s}") from None
    if vals.get("sd") is not None and vals["sd"].value < 0:
        raise InputError(f"an SD cannot be negative, got {obj['sd']!r}", path=path,
                         column=f"{key}.sd")
    if vals.get("min") is not None and vals.get("max") is not None \
            and vals["min"].value > vals["max"].value:
        raise InputError(f"min {obj['min']!r} exceeds max {obj['max']!r}", path=path,
                         column=f"{key}.min")
    return ReportedStats(**vals)


def load_reported(path: str | os.PathLike[str]) -> Reported:
    """Read and validate a reported-numbers YAML file.

    Parameters
    ----------
    path : path
        The YAML file (format in the module docstring).

    Returns
    -------
    Reported

    Raises
    ------
    InputError
        Missing file, invalid YAML, or a bad key; the message names the file and the key
        path (e.g. ``variables.vas.timepoints.pre.sd``).
    """
    p = Path(path)
    ps = str(p)
    if not p.is_file():
        raise InputError("reported-numbers file not found", path=ps)
    try:
        doc = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise InputError(f"invalid YAML: {' '.join(str(exc).split())}", path=ps) from None
    doc = _mapping(doc, "(top level)", ps)
    unknown = set(doc) - {"source", "doi", "n", "variables", "notes"}
    if unknown:
        raise InputError(f"unknown top-level key(s) {sorted(unknown)}; allowed: source, doi, "
                         "n, variables, notes", path=ps, column=sorted(unknown)[0])
    if "variables" not in doc:
        raise InputError("missing required key", path=ps, column="variables")
    variables: dict[str, ReportedVariable] = {}
    for name, vdoc in _mapping(doc["variables"], "variables", ps).items():
        key = f"variables.{name}"
        vdoc = _mapping(vdoc, key, ps)
        allowed = {"integer", "scale", "timepoints", "comparisons", *STATS}
        unknown = set(vdoc) - allowed
        if unknown:
            raise InputError(f"unknown key(s) {sorted(unknown)}; allowed {sorted(allowed)}",
                             path=ps, column=f"{key}.{sorted(unknown)[0]}")
        integer = vdoc.get("integer", False)
        if not isinstance(integer, bool):
            raise InputError(f"expected true or false, got {integer!r}", path=ps,
                             column=f"{key}.integer")
        scale = vdoc.get("scale")
        if scale is not None:
            if not (isinstance(scale, list) and len(scale) == 2
                    and all(isinstance(v, int | float) for v in scale) and scale[0] < scale[1]):
                raise InputError(f"expected [low, high], got {scale!r}", path=ps,
                                 column=f"{key}.scale")
            scale = (float(scale[0]), float(scale[1]))
        top = {k: vdoc[k] for k in STATS if k in vdoc}
        overall = _stats(top, key, ps) if top else None
        tps = {
            tp: _stats(_mapping(tdoc, f"{key}.timepoints.{tp}", ps),
                       f"{key}.timepoints.{tp}", ps)
            for tp, tdoc in _mapping(vdoc.get("timepoints", {}), f"{key}.timepoints",
                                     ps).items()
        }
        comps = []
        clist = vdoc.get("comparisons", [])
        if not isinstance(clist, list):
            raise InputError("expected a list", path=ps, column=f"{key}.comparisons")
        for i, cdoc in enumerate(clist):
            ck = f"{key}.comparisons[{i}]"
            cdoc = _mapping(cdoc, ck, ps)
            for req in ("from", "to", "p", "test"):
                if req not in cdoc:
                    raise InputError("missing required key", path=ps, column=f"{ck}.{req}")
            unknown = set(cdoc) - {"from", "to", "p", "test", "direction"}
            if unknown:
                raise InputError(f"unknown key(s) {sorted(unknown)}; allowed from, to, p, test, "
                                 "direction", path=ps, column=f"{ck}.{sorted(unknown)[0]}")
            direction = cdoc.get("direction")
            if direction not in (None, "increase", "decrease"):
                raise InputError(f"expected increase or decrease, got {direction!r}", path=ps,
                                 column=f"{ck}.direction")
            if cdoc["test"] not in TESTS:
                raise InputError(f"unknown test {cdoc['test']!r}; allowed {list(TESTS)}",
                                 path=ps, column=f"{ck}.test")
            comps.append(ReportedComparison(
                from_tp=str(cdoc["from"]), to_tp=str(cdoc["to"]),
                p=parse_p_statement(cdoc["p"], key=f"{ck}.p", path=ps), test=cdoc["test"],
                direction=direction))
        variables[str(name)] = ReportedVariable(
            name=str(name), integer=integer, scale=scale, overall=overall, timepoints=tps,
            comparisons=tuple(comps))
    return Reported(path=ps, n=_n(doc.get("n"), "n", ps), source=str(doc.get("source", "")),
                    variables=variables)

"""Eligibility: inclusion and exclusion criteria as a readable YAML rule set, checked per case.

A rule set is a YAML file::

    name: fang2022
    description: ...
    source: <citation>
    rules:
      - id: follow_up_12m
        kind: include          # include: must hold; exclude: must not hold
        text: Minimum follow-up of 12 months
        field: follow_up_months
        op: ">="
        value: 12

Fields (:data:`RULE_FIELDS`) are case attributes. Operators (:data:`OPERATORS`): ``<``,
``<=``, ``>``, ``>=``, ``==``, ``!=``, ``in``, ``not_in``, ``between`` (inclusive ``[lo, hi]``),
``subset_of`` and ``contains`` (for segment lists).

Each rule gives ``pass``, ``fail`` or ``unknown`` (the field is not recorded: never a silent
pass). A case is ``ineligible`` if any rule fails, else ``unknown`` if any rule is unknown,
else ``eligible``; the verdict carries the reason of every rule.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from alarscrew.cohort.model import Case, Cohort
from alarscrew.errors import InputError, ValidationError

#: Fields a rule may test, with what they mean.
RULE_FIELDS: dict[str, str] = {
    "age_years": "age in years",
    "sex": "F or M",
    "diagnosis": "diagnosis code",
    "bmd_value": "bone-density value as given (kind in bmd_kind)",
    "bmd_kind": "t_score, g_cm2 or unspecified",
    "t_score": "bmd_value when bmd_kind is t_score; unknown otherwise",
    "fused_segments": "list of fused segments (L4/L5, L5/S1)",
    "n_fused_levels": "number of fused segments",
    "fused_to_sacrum": "true when the fusion is one block ending at L5/S1",
    "follow_up_months": "follow-up in months",
    "fusion_time_months": "time to bony fusion in months",
    "sacral_destruction": "none, mild, moderate or severe",
}


def _between(x: Any, v: Sequence[Any]) -> bool:
    return bool(v[0] <= x <= v[1])


#: Operators: name -> (function(field value, rule value) -> bool, printed form).
OPERATORS: dict[str, tuple[Callable[[Any, Any], bool], str]] = {
    "<": (operator.lt, "<"),
    "<=": (operator.le, "<="),
    ">": (operator.gt, ">"),
    ">=": (operator.ge, ">="),
    "==": (operator.eq, "="),
    "!=": (operator.ne, "!="),
    "in": (lambda x, v: x in v, "in"),
    "not_in": (lambda x, v: x not in v, "not in"),
    "between": (_between, "between"),
    "subset_of": (lambda x, v: set(x) <= set(v), "all within"),
    "contains": (lambda x, v: v in x, "contains"),
}


@dataclass(frozen=True)
class Rule:
    """One criterion.

    Attributes
    ----------
    id : str
    kind : str
        ``include`` (the condition must hold) or ``exclude`` (it must not hold).
    text : str
        The criterion in words, as the source states it.
    field : str
        A key of :data:`RULE_FIELDS`.
    op : str
        A key of :data:`OPERATORS`.
    value : Any
        The comparison value.
    """

    id: str
    kind: str
    text: str
    field: str
    op: str
    value: Any


@dataclass(frozen=True)
class RuleSet:
    """A named set of rules with its source."""

    name: str
    description: str
    source: str
    rules: tuple[Rule, ...]
    path: str = ""


@dataclass(frozen=True)
class RuleResult:
    """Outcome of one rule for one case: ``pass``, ``fail`` or ``unknown``, with the reason."""

    rule_id: str
    kind: str
    status: str
    reason: str


@dataclass(frozen=True)
class Verdict:
    """Eligibility of one case: ``eligible``, ``ineligible`` or ``unknown``, with reasons."""

    id: str
    verdict: str
    reason: str
    results: tuple[RuleResult, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"id": self.id, "verdict": self.verdict, "reason": self.reason,
                "rules": [r.__dict__ for r in self.results]}


def default_rules_path(name: str = "fang2022") -> Path:
    """Path of an embedded dataset's rule set (``data/<name>/eligibility.yaml``)."""
    from alarscrew.cohort.embedded import dataset_dir

    return dataset_dir(name) / "eligibility.yaml"


def load_rules(path: str | Path | None = None) -> RuleSet:
    """Load and check a YAML rule set (default: the criteria of Fang et al. 2022).

    Raises
    ------
    ValidationError
        Naming the file, the rule (as ``rules[i]``) and the key that is wrong.
    """
    p = Path(path) if path is not None else default_rules_path()
    if not p.is_file():
        raise InputError("rule set file not found", path=str(p))
    try:
        doc = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ValidationError(f"not valid YAML: {' '.join(str(exc).split())}",
                              path=str(p)) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("rules"), list) or not doc["rules"]:
        raise ValidationError("expected a mapping with a non-empty 'rules' list", path=str(p),
                              column="rules")
    rules = []
    seen: set[str] = set()
    for i, r in enumerate(doc["rules"]):
        where = f"rules[{i}]"
        if not isinstance(r, dict):
            raise ValidationError("each rule must be a mapping", path=str(p), column=where)
        for key in ("id", "kind", "field", "op", "value"):
            if key not in r:
                raise ValidationError(f"missing required key {key!r}", path=str(p),
                                      column=where)
        rid = str(r["id"])
        if rid in seen:
            raise ValidationError(f"duplicate rule id {rid!r}", path=str(p),
                                  column=f"{where}.id")
        seen.add(rid)
        if r["kind"] not in ("include", "exclude"):
            raise ValidationError(f"kind must be include or exclude, got {r['kind']!r}",
                                  path=str(p), column=f"{where}.kind")
        if r["field"] not in RULE_FIELDS:
            raise ValidationError(f"unknown field {r['field']!r}: expected one of "
                                  f"{', '.join(RULE_FIELDS)}", path=str(p),
                                  column=f"{where}.field")
        if r["op"] not in OPERATORS:
            raise ValidationError(f"unknown op {r['op']!r}: expected one of "
                                  f"{', '.join(OPERATORS)}", path=str(p), column=f"{where}.op")
        v = r["value"]
        if r["op"] == "between" and not (isinstance(v, list) and len(v) == 2):
            raise ValidationError("between needs value: [low, high]", path=str(p),
                                  column=f"{where}.value")
        if r["op"] in ("in", "not_in", "subset_of") and not isinstance(v, list):
            raise ValidationError(f"{r['op']} needs a list value", path=str(p),
                                  column=f"{where}.value")
        rules.append(Rule(rid, r["kind"], " ".join(str(r.get("text", rid)).split()),
                          r["field"], r["op"], v))
    return RuleSet(str(doc.get("name", p.stem)),
                   " ".join(str(doc.get("description", "")).split()),
                   " ".join(str(doc.get("source", "")).split()), tuple(rules), str(p))


def _field_value(case: Case, name: str) -> tuple[Any, str | None]:
    """(value, reason-if-unknown)."""
    if name == "t_score":
        if case.bmd_value is None:
            return None, "no bone-density value recorded"
        if case.bmd_kind != "t_score":
            return None, (f"bone-density value {case.bmd_value:g} is of kind "
                          f"'{case.bmd_kind}', not a T-score")
        return case.bmd_value, None
    value = getattr(case, name)
    if value is None:
        return None, f"{name} not recorded"
    return value, None


def _show(v: Any) -> str:
    if isinstance(v, tuple | list):
        return "[" + ", ".join(_show(x) for x in v) + "]"
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def evaluate_case(case: Case, rules: RuleSet) -> Verdict:
    """Apply every rule to one case."""
    results = []
    for r in rules.rules:
        value, missing = _field_value(case, r.field)
        fn, shown = OPERATORS[r.op]
        if missing is not None:
            results.append(RuleResult(r.id, r.kind, "unknown",
                                      f"{r.text}: cannot be checked, {missing}"))
            continue
        try:
            holds = bool(fn(value, r.value))
        except TypeError:
            raise ValidationError(
                f"rule {r.id!r} compares {r.field}={_show(value)} with {_show(r.value)} using "
                f"{r.op!r}: incompatible types", path=rules.path or None, column=r.id) from None
        ok = holds if r.kind == "include" else not holds
        cond = f"{r.field} = {_show(value)} ({'' if holds else 'not '}{shown} {_show(r.value)})"
        results.append(RuleResult(r.id, r.kind, "pass" if ok else "fail",
                                  f"{r.text}: {cond}"))
    failed = [x for x in results if x.status == "fail"]
    unknown = [x for x in results if x.status == "unknown"]
    if failed:
        verdict = "ineligible"
        reason = "; ".join(f"{x.rule_id} failed ({x.reason})" for x in failed)
    elif unknown:
        verdict = "unknown"
        reason = "; ".join(f"{x.rule_id} unknown ({x.reason})" for x in unknown)
    else:
        verdict = "eligible"
        reason = f"all {len(results)} rules met"
    return Verdict(case.id, verdict, reason, tuple(results))


def evaluate_eligibility(cohort: Cohort, rules: RuleSet | None = None) -> tuple[Verdict, ...]:
    """Apply a rule set (default: Fang et al. 2022 criteria) to every case of a cohort."""
    rs = rules if rules is not None else load_rules()
    return tuple(evaluate_case(c, rs) for c in cohort.cases)


def verdicts_table(verdicts: Sequence[Verdict]) -> pd.DataFrame:
    """Case x rule table: columns ``id``, ``verdict``, one status column per rule, ``reason``."""
    rows = []
    for v in verdicts:
        row: dict[str, str] = {"id": v.id, "verdict": v.verdict}
        row.update({r.rule_id: r.status for r in v.results})
        row["reason"] = v.reason
        rows.append(row)
    return pd.DataFrame(rows)

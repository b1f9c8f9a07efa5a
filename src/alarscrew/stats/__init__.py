"""Outcome statistics and the consistency audit of reported numbers.

- :func:`analyze_outcomes` -> :class:`OutcomeAnalysis` (descriptives, baseline comparisons,
  repeated-measures ANOVA and Friedman; ``to_json_dict()`` is the issue-2 JSON contract);
- :func:`describe_outcomes`, :func:`compare_timepoints`, :func:`omnibus_tests`,
  :func:`compare_counts`: the tidy tables behind it;
- :func:`load_reported` reads what a paper states (YAML); :func:`audit` /
  :func:`audit_report` check it against the data and against arithmetic (GRIM, GRIMMER,
  SD bounds, ranges, granularity, p values).
"""

from __future__ import annotations

from alarscrew.stats.audit import FINDING_KINDS, AuditReport, Finding, audit, audit_report
from alarscrew.stats.consistency import (
    grim,
    grimmer,
    mean_bounds_from_range,
    min_p_rank_test,
    odi_min_missing_sections,
    parse_reported,
    sd_bounds_from_range,
)
from alarscrew.stats.descriptive import DESCRIPTIVE_COLUMNS, describe_outcomes
from alarscrew.stats.inference import (
    COMPARISON_COLUMNS,
    COUNT_COLUMNS,
    OMNIBUS_COLUMNS,
    compare_counts,
    compare_timepoints,
    omnibus_tests,
)
from alarscrew.stats.outcomes import OutcomeAnalysis, analyze_outcomes
from alarscrew.stats.reported import Reported, load_reported

__all__ = [
    "COMPARISON_COLUMNS",
    "COUNT_COLUMNS",
    "DESCRIPTIVE_COLUMNS",
    "FINDING_KINDS",
    "OMNIBUS_COLUMNS",
    "AuditReport",
    "Finding",
    "OutcomeAnalysis",
    "Reported",
    "analyze_outcomes",
    "audit",
    "audit_report",
    "compare_counts",
    "compare_timepoints",
    "describe_outcomes",
    "grim",
    "grimmer",
    "load_reported",
    "mean_bounds_from_range",
    "min_p_rank_test",
    "odi_min_missing_sections",
    "omnibus_tests",
    "parse_reported",
    "sd_bounds_from_range",
]

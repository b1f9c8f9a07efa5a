"""S1 alar screw planning: evaluate any screw, find the best one per side, compare alternatives.

Pure geometry on arrays: :func:`build_context` precomputes distance fields once per scan, then
:func:`evaluate_screw` measures one screw and :func:`optimize_side` searches entries x angles
exactly on its grid. :func:`make_plan` assembles the plan.json contract (docs/plan-json.md).
"""

from __future__ import annotations

from alarscrew.planning.alternatives import pedicle_alternatives, s2ai_alternative
from alarscrew.planning.catalog import (
    DEFAULT_CATALOG,
    ScrewCatalog,
    ScrewChoice,
    choose_screw,
    load_catalog,
)
from alarscrew.planning.context import PlanningContext, build_context
from alarscrew.planning.decision import decide
from alarscrew.planning.evaluate import Breach, ScrewEvaluation, classify_surface, evaluate_screw
from alarscrew.planning.march import MarchResult, march_safe_length
from alarscrew.planning.plan import (
    NOMINAL_READINGS,
    TIP_ZONES,
    ala_zone_context,
    context_from_anatomy,
    entry_warnings,
    make_plan,
    nominal_direction,
    optimal_trajectory,
    plan_from_anatomy,
    plan_side,
    plan_to_json,
)
from alarscrew.planning.screw import SafetySettings, Screw, gertzbein_robbins
from alarscrew.planning.search import (
    AngleGrid,
    SafeWindow,
    SearchResult,
    entry_candidates,
    optimize_side,
    safe_length_map,
    safe_window,
)

__all__ = [
    "DEFAULT_CATALOG",
    "NOMINAL_READINGS",
    "TIP_ZONES",
    "AngleGrid",
    "Breach",
    "MarchResult",
    "PlanningContext",
    "SafeWindow",
    "SafetySettings",
    "Screw",
    "ScrewCatalog",
    "ScrewChoice",
    "ScrewEvaluation",
    "SearchResult",
    "ala_zone_context",
    "build_context",
    "choose_screw",
    "classify_surface",
    "context_from_anatomy",
    "decide",
    "entry_candidates",
    "entry_warnings",
    "evaluate_screw",
    "gertzbein_robbins",
    "load_catalog",
    "make_plan",
    "march_safe_length",
    "nominal_direction",
    "optimal_trajectory",
    "optimize_side",
    "pedicle_alternatives",
    "plan_from_anatomy",
    "plan_side",
    "plan_to_json",
    "s2ai_alternative",
    "safe_length_map",
    "safe_window",
]

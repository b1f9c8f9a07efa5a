"""alarscrew.cohort: case-series data model, readers, validation, instruments, eligibility.

``load_cohort(source)`` is the entry point: ``source`` is a CSV/TSV/XLSX file (wide, long or
REDCap longitudinal layout) or the name of an embedded dataset (``fang2022``).
"""

from __future__ import annotations

from pathlib import Path

from alarscrew.cohort.eligibility import (
    RuleSet,
    Verdict,
    evaluate_eligibility,
    load_rules,
    verdicts_table,
)
from alarscrew.cohort.embedded import EMBEDDED_DATASETS, dataset_dir, load_embedded
from alarscrew.cohort.instruments import (
    MCID,
    MCID_DEFAULTS,
    ODIResult,
    mcid_attainment,
    normalise_vas,
    odi_band,
    odi_bands,
    odi_score,
)
from alarscrew.cohort.model import (
    DIAGNOSES,
    SEGMENTS,
    Case,
    Cohort,
    CohortNote,
    Complication,
    Score,
    parse_segments,
    sort_timepoints,
)
from alarscrew.cohort.readers import read_cohort


def load_cohort(source: str | Path, *, odi_max_missing: int = 1) -> Cohort:
    """Load a cohort from a file or an embedded dataset name.

    Parameters
    ----------
    source : str or Path
        Path to a CSV/TSV/XLSX cohort table, or an embedded dataset name
        (:data:`EMBEDDED_DATASETS`, e.g. ``"fang2022"``).
    odi_max_missing : int, keyword-only
        Unanswered ODI sections tolerated when scoring ODI from its items.

    Returns
    -------
    Cohort

    Raises
    ------
    ValidationError
        The file breaks a validation rule (message names file, row and column).
    InputError
        The file does not exist and ``source`` is no embedded dataset name.
    """
    if isinstance(source, str) and source in EMBEDDED_DATASETS and not Path(source).exists():
        return load_embedded(source)
    p = Path(source)
    if not p.exists() and isinstance(source, str) and "/" not in source and not p.suffix:
        dataset_dir(source)  # not a file and not a known name: raises, listing the names
    return read_cohort(p, odi_max_missing=odi_max_missing)


__all__ = [
    "DIAGNOSES",
    "EMBEDDED_DATASETS",
    "MCID",
    "MCID_DEFAULTS",
    "SEGMENTS",
    "Case",
    "Cohort",
    "CohortNote",
    "Complication",
    "ODIResult",
    "RuleSet",
    "Score",
    "Verdict",
    "evaluate_eligibility",
    "load_cohort",
    "load_embedded",
    "load_rules",
    "mcid_attainment",
    "normalise_vas",
    "odi_band",
    "odi_bands",
    "odi_score",
    "parse_segments",
    "read_cohort",
    "sort_timepoints",
    "verdicts_table",
]

"""Datasets shipped with alarscrew (``src/alarscrew/data/<name>/``).

Each dataset folder holds ``cases.csv`` (wide layout, read by the ordinary reader so the
embedded data pass the same validation as users' files), ``dataset.yaml`` (citation, time
points, cohort-level notes) and a README with the provenance.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import yaml

from alarscrew.cohort.model import Cohort, CohortNote
from alarscrew.cohort.readers import read_cohort
from alarscrew.errors import InputError

#: Names of the embedded datasets.
EMBEDDED_DATASETS: tuple[str, ...] = ("fang2022",)


def dataset_dir(name: str) -> Path:
    """Folder of an embedded dataset.

    Raises
    ------
    InputError
        If ``name`` is not an embedded dataset.
    """
    if name not in EMBEDDED_DATASETS:
        raise InputError(f"unknown embedded dataset {name!r}: expected one of "
                         f"{', '.join(EMBEDDED_DATASETS)} or a path to a CSV/XLSX file")
    return Path(str(resources.files("alarscrew") / "data" / name))


def load_embedded(name: str) -> Cohort:
    """Load an embedded dataset with its citation and cohort-level notes."""
    folder = dataset_dir(name)
    meta_path = folder / "dataset.yaml"
    meta = yaml.safe_load(meta_path.read_text(encoding="utf-8"))
    cohort = read_cohort(folder / "cases.csv", name=name)
    declared = tuple(meta.get("timepoints", {}))
    if declared and tuple(cohort.timepoints) != declared:
        raise InputError(f"time points {cohort.timepoints} of cases.csv differ from the "
                         f"declared {declared}", path=str(meta_path))
    notes = tuple(CohortNote(n["topic"], " ".join(str(n["text"]).split()), n.get("count"),
                             n.get("of")) for n in meta.get("cohort_notes", []))
    return Cohort(name=name, cases=cohort.cases, timepoints=cohort.timepoints,
                  source=f"embedded:{name}", citation=" ".join(str(meta["citation"]).split()),
                  notes=notes, ignored_columns=cohort.ignored_columns)

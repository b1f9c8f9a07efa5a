"""alarscrew.io: load CTs and label maps as :class:`~alarscrew.io.image.Image` (RAS mm), save them.

Public API
----------
load_image, load_ct, save_image
    NIfTI / NRRD / DICOM-series folder, dispatched by name; ``load_ct`` adds the CT rule;
    ``save_image`` writes NIfTI or NRRD by file name, atomically, refusing to overwrite.
load_nifti, save_nifti, load_nrrd, save_nrrd
    Single formats.
load_dicom_series, list_dicom_series, write_dicom_series
    DICOM series folders (reading, listing, writing de-identified synthetic copies).
resample_labels
    Nearest-neighbour resampling of a label map onto a CT grid (refuses misfits).
"""

from __future__ import annotations

from typing import Any

from alarscrew.io.image import Image
from alarscrew.io.loading import load_ct, load_image, save_image
from alarscrew.io.nifti import load_nifti, save_nifti
from alarscrew.io.orientation import LPS_TO_RAS

__all__ = [
    "LPS_TO_RAS",
    "Image",
    "list_dicom_series",
    "load_ct",
    "load_dicom_series",
    "load_image",
    "load_nifti",
    "load_nrrd",
    "resample_labels",
    "save_image",
    "save_nifti",
    "save_nrrd",
    "write_dicom_series",
]

_LAZY = {
    "load_nrrd": "alarscrew.io.nrrd",
    "save_nrrd": "alarscrew.io.nrrd",
    "load_dicom_series": "alarscrew.io.dicom",
    "list_dicom_series": "alarscrew.io.dicom",
    "write_dicom_series": "alarscrew.io.dicom",
    "resample_labels": "alarscrew.io.resample",
}


def __getattr__(name: str) -> Any:
    """Import the NRRD and DICOM modules (pynrrd, pydicom) only when first used."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'alarscrew.io' has no attribute '{name}'")

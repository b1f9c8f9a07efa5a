"""alarscrew: S1 alar screw planning and outcome analysis for lumbosacral fixation.

Research software, not a medical device. See README.md.
"""

from __future__ import annotations

from alarscrew._version import __version__
from alarscrew.errors import (
    AlarscrewError,
    AnatomyNotFoundError,
    GeometryError,
    ImageError,
    InputError,
    LabelMapError,
    NoSafeTrajectoryError,
    OutputExistsError,
    ValidationError,
)

DISCLAIMER = (
    "alarscrew is research software, not a medical device: it is not approved for clinical "
    "decisions. Every plan must be checked by a qualified surgeon on the original images."
)

REFERENCE_CITATION = (
    "Fang W, Liu W, Li Q, Cai L, Wang W, Yi X, Jiao H, Yao Z. Clinical evaluation of S1 alar "
    "screws application in short-segment lumbosacral fixation and fusion for spine infection "
    "with severe S1 vertebral body loss. BMC Musculoskeletal Disorders 2022. "
    "doi:10.1186/s12891-022-05824-6"
)

__all__ = [
    "DISCLAIMER",
    "REFERENCE_CITATION",
    "AlarscrewError",
    "AnatomyNotFoundError",
    "GeometryError",
    "ImageError",
    "InputError",
    "LabelMapError",
    "NoSafeTrajectoryError",
    "OutputExistsError",
    "ValidationError",
    "__version__",
]

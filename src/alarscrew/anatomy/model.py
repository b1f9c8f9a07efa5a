"""Typed results of the anatomy stage, shared by planning and reports.

Landmark names (world RAS mm), fixed so that planning and reports can rely on them:

=========================  ============================================================
``promontory``             anterior-superior edge of S1 endplate, midline
``canal``                  centre of the spinal canal at the S1 level
``endplate_center``        centre of the S1 superior endplate (= frame origin)
``{side}.sap_facet``       centre of the S1 superior articular facet surface
``{side}.entry``           paper's entry: lateral-inferior part of the inferior half of
                           the S1 superior articular surface
``{side}.pedicle``         S1 pedicle centre
``{side}.ala_lateral``     lateral ala boundary (SI-joint face) on a lateral ray at the
                           pedicle level, from the pedicle, midway to the anterior cortex
``{side}.ala_anterior``    anterior cortex of the ala (L5 root / iliac vessels lie in front)
``{side}.s1_foramen``      centre of the first (dorsal) sacral foramen
=========================  ============================================================

``side`` is ``left`` or ``right``. Mask names in :attr:`Anatomy.masks` (bool arrays on the CT
grid, as :class:`~alarscrew.io.image.Image` with ``is_label=True``): ``sacrum`` (required,
whole sacrum with both alae), ``s1_body``, ``l5``, ``ilium_left``, ``ilium_right``,
``canal``, ``iliac_vessels``, ``lesion`` -- each optional except ``sacrum``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from alarscrew.io.image import Image
from alarscrew.spatial.frame import S1Frame


@dataclass(frozen=True)
class Landmark:
    """One anatomical point in world RAS mm, with how it was found."""

    name: str
    xyz_ras_mm: np.ndarray
    confidence: float
    method: str
    supplied: bool = False

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        return {
            "xyz_ras_mm": [float(v) for v in self.xyz_ras_mm],
            "confidence": float(self.confidence),
            "method": self.method,
            "supplied": bool(self.supplied),
        }


@dataclass(frozen=True)
class BodyLoss:
    """S1 vertebral body loss."""

    pedicle_level_percent: float | None
    volume_percent: float | None
    method: str
    indication_met: bool | None  # paper: alar screws indicated when loss > 50 %

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        return {
            "pedicle_level_percent": self.pedicle_level_percent,
            "volume_percent": self.volume_percent,
            "method": self.method,
            "indication_over_50_percent": self.indication_met,
        }


@dataclass(frozen=True)
class BoneQuality:
    """Trabecular attenuation (HU) per vertebra, with the threshold verdicts applied."""

    trabecular_hu: dict[str, float]
    verdicts: dict[str, str]
    references: tuple[str, ...]

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        return {
            "trabecular_hu": {k: float(v) for k, v in self.trabecular_hu.items()},
            "verdicts": dict(self.verdicts),
            "references": list(self.references),
        }


@dataclass(frozen=True)
class Anatomy:
    """Everything planning needs to know about one scan."""

    ct: Image
    frame: S1Frame
    landmarks: dict[str, Landmark]
    masks: dict[str, Image]
    body_loss: BodyLoss | None = None
    bone_quality: BoneQuality | None = None
    provenance: dict = field(default_factory=dict)

    @property
    def sacrum(self) -> Image:
        """The whole-sacrum mask (required)."""
        return self.masks["sacrum"]

    def point(self, name: str) -> np.ndarray | None:
        """A landmark's RAS mm position, or None when not found."""
        lm = self.landmarks.get(name)
        return None if lm is None else np.asarray(lm.xyz_ras_mm, float)

"""Shared helpers of the phantom anatomy tests: one CT-only analysis per phantom parameter set.

Provenance: ``alarscrew.phantom.make_phantom`` (analytic truth); the analysis is
``analyze_anatomy(ph.ct)`` with no labels. Cached for the session, as the cases are slow.
"""

from __future__ import annotations

import functools

import numpy as np

from alarscrew.anatomy import analyze_anatomy
from alarscrew.anatomy.model import Anatomy
from alarscrew.phantom import Phantom, make_phantom


@functools.cache
def _solve_key(key: tuple) -> tuple[Phantom, Anatomy]:
    ph = make_phantom(**dict(key))
    return ph, analyze_anatomy(ph.ct)


def solve_phantom(params: dict) -> tuple[Phantom, Anatomy]:
    """``(phantom, CT-only anatomy)`` for ``make_phantom(**params)``, computed once."""
    return _solve_key(tuple(sorted(params.items())))


def angle_deg(a: np.ndarray, b: np.ndarray) -> float:
    """Angle between two unit vectors (deg)."""
    return float(np.degrees(np.arccos(np.clip(np.dot(a, b), -1.0, 1.0))))

"""The screw model and the safety settings shared by evaluation and search."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from alarscrew.errors import GeometryError, InputError
from alarscrew.spatial.frame import unit


@dataclass(frozen=True, eq=False)
class Screw:
    """A screw as a cylinder: entry point, unit direction (entry -> tip), length, diameter.

    Parameters
    ----------
    entry_ras_mm : (3,) array
        Entry point on the dorsal cortex, world RAS mm.
    direction_ras : (3,) array
        Direction (normalised here; zero or non-finite is refused).
    length_mm, diameter_mm : float
        Positive and finite.
    """

    entry_ras_mm: np.ndarray
    direction_ras: np.ndarray
    length_mm: float
    diameter_mm: float

    def __post_init__(self) -> None:
        e = np.asarray(self.entry_ras_mm, float).reshape(-1)
        if e.shape != (3,) or not np.all(np.isfinite(e)):
            raise GeometryError(f"entry must be 3 finite RAS mm coordinates, got {e.tolist()}")
        d = np.asarray(self.direction_ras, float).reshape(-1)
        if d.shape != (3,):
            raise GeometryError(f"direction must have 3 components, got {d.tolist()}")
        object.__setattr__(self, "entry_ras_mm", e)
        object.__setattr__(self, "direction_ras", unit(d, name="screw direction"))
        for name in ("length_mm", "diameter_mm"):
            v = float(getattr(self, name))
            if not np.isfinite(v) or v <= 0:
                raise InputError(f"{name} must be a positive number of mm, got {v}",
                                 column=name)
            object.__setattr__(self, name, v)

    @property
    def radius_mm(self) -> float:
        """Half the diameter."""
        return 0.5 * self.diameter_mm

    @property
    def tip_ras_mm(self) -> np.ndarray:
        """Tip point (entry + length * direction), RAS mm."""
        return self.entry_ras_mm + self.length_mm * self.direction_ras


@dataclass(frozen=True)
class SafetySettings:
    """What 'safe' means; every number is in mm.

    Attributes
    ----------
    margin_mm : float
        Bone required between the thread and the bone surface (default 1.0).
    insertion_mm : float
        Axial depth of the insertion zone at the entry, where the screw crosses the dorsal
        cortex. The required distance of the axis to the bone surface grows linearly from 0
        at ``seat_mm`` to ``radius + margin`` at ``insertion_mm`` (so a screw must dive into
        the bone at least at ``atan(clearance / insertion)`` to a flat surface) and stays there
        beyond.
    seat_mm : float
        First axial sample (the entry point itself lies on the surface).
    step_mm : float
        Axial sampling step.
    max_length_mm : float
        Longest axis explored (safe lengths are capped here).

    Notes
    -----
    Containment uses the capsule test: a cylinder of radius ``r`` around the axis segment is
    inside the bone when every axis point is at least ``r`` from the surface. The test also
    covers a hemispherical tip, i.e. it is conservative by at most ``r`` at the tip, which
    suits tapered screw tips.
    """

    margin_mm: float = 1.0
    insertion_mm: float = 10.0
    seat_mm: float = 1.0
    step_mm: float = 0.5
    max_length_mm: float = 60.0

    def __post_init__(self) -> None:
        for name in ("margin_mm", "insertion_mm", "seat_mm"):
            if not np.isfinite(getattr(self, name)) or getattr(self, name) < 0:
                raise InputError(f"{name} must be >= 0, got {getattr(self, name)}", column=name)
        if not (0 < self.step_mm <= 2.0):
            raise InputError(f"step_mm must be in (0, 2], got {self.step_mm}", column="step_mm")
        if self.insertion_mm < self.seat_mm:
            raise InputError("insertion_mm must be >= seat_mm", column="insertion_mm")
        if self.max_length_mm <= self.seat_mm:
            raise InputError("max_length_mm must exceed seat_mm", column="max_length_mm")

    def samples_mm(self, stop_mm: float | None = None) -> np.ndarray:
        """Axial sample positions from ``seat_mm`` to ``stop_mm`` (default max length)."""
        from alarscrew.planning.march import axial_samples

        stop = self.max_length_mm if stop_mm is None else stop_mm
        return axial_samples(start_mm=self.seat_mm, stop_mm=max(stop, self.seat_mm),
                             step_mm=self.step_mm)

    def threshold_mm(self, s_mm: np.ndarray, diameter_mm: float) -> np.ndarray:
        """Required clearance at axial positions ``s_mm`` for a screw of ``diameter_mm``."""
        return self.ramp(s_mm) * (0.5 * diameter_mm + self.margin_mm)

    def ramp(self, s_mm: np.ndarray) -> np.ndarray:
        """Fraction (0-1) of the full clearance required at axial positions ``s_mm``."""
        s = np.asarray(s_mm, float)
        span = max(self.insertion_mm - self.seat_mm, 1e-9)
        return np.clip((s - self.seat_mm) / span, 0.0, 1.0)


def gertzbein_robbins(depth_mm: float | None) -> str:
    """Gertzbein-Robbins grade of a breach depth (mm): A none, B < 2, C 2-4, D 4-6, E >= 6.

    References
    ----------
    Gertzbein SD, Robbins SE. Accuracy of pedicular screw placement in vivo. Spine 1990;
    15(1):11-14.
    """
    if depth_mm is None or depth_mm <= 0:
        return "A"
    if depth_mm < 2.0:
        return "B"
    if depth_mm < 4.0:
        return "C"
    if depth_mm < 6.0:
        return "D"
    return "E"

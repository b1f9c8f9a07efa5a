"""Screw catalogs (the sizes a hospital stocks) and the choice of a screw on a given axis."""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from alarscrew.errors import InputError
from alarscrew.planning.context import PlanningContext
from alarscrew.planning.fields import GridField
from alarscrew.planning.march import march_safe_length
from alarscrew.planning.screw import SafetySettings


@dataclass(frozen=True)
class ScrewCatalog:
    """Available screws as (diameter_mm, length_mm) pairs, sorted.

    Attributes
    ----------
    sizes : tuple of (float, float)
    name : str
    """

    sizes: tuple[tuple[float, float], ...]
    name: str = "custom"

    def __post_init__(self) -> None:
        if not self.sizes:
            raise InputError("screw catalog is empty", path=self.name)
        for d, length in self.sizes:
            if not (np.isfinite(d) and np.isfinite(length) and d > 0 and length > 0):
                raise InputError(f"screw size ({d}, {length}) must be positive mm",
                                 path=self.name)
        object.__setattr__(self, "sizes", tuple(sorted({(float(d), float(x))
                                                        for d, x in self.sizes})))

    @classmethod
    def grid(cls, diameters_mm: list[float], lengths_mm: list[float], name: str) -> ScrewCatalog:
        """Every diameter in every length."""
        return cls(tuple((float(d), float(x)) for d in diameters_mm for x in lengths_mm), name)

    @property
    def diameters_mm(self) -> tuple[float, ...]:
        """Distinct diameters, ascending."""
        return tuple(sorted({d for d, _ in self.sizes}))

    @property
    def min_length_mm(self) -> float:
        """Shortest screw in the catalog."""
        return min(x for _, x in self.sizes)

    def lengths_for(self, diameter_mm: float) -> tuple[float, ...]:
        """Lengths stocked in ``diameter_mm``, ascending."""
        return tuple(x for d, x in self.sizes if abs(d - diameter_mm) < 1e-9)

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        return {"name": self.name,
                "sizes": [{"diameter_mm": d, "length_mm": x} for d, x in self.sizes]}


#: Default catalog: 6.5/7.0/7.5/8.0 mm x 30-55 mm in 5 mm steps (the paper used 7.0-7.5 x
#: 35-45 mm, Fang et al. 2022).
DEFAULT_CATALOG = ScrewCatalog.grid([6.5, 7.0, 7.5, 8.0], [30, 35, 40, 45, 50, 55], "default")


def _num(value: object, *, path: str, row: int | None, column: str) -> float:
    try:
        v = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InputError(f"expected a number of mm, got {value!r}", path=path, row=row,
                         column=column) from None
    if not np.isfinite(v) or v <= 0:
        raise InputError(f"expected a positive number of mm, got {value!r}", path=path,
                         row=row, column=column)
    return v


def load_catalog(path: str | os.PathLike[str]) -> ScrewCatalog:
    """Load a catalog from YAML or CSV.

    Formats
    -------
    YAML: either ``{diameters_mm: [...], lengths_mm: [...]}`` (every combination) or
    ``{screws: [{diameter_mm: 7.0, length_mm: 40}, ...]}``.
    CSV: a header with ``diameter_mm`` and ``length_mm``, one stocked screw per row.
    """
    p = Path(path)
    if not p.is_file():
        raise InputError("screw catalog file not found", path=str(p))
    where = str(p)
    if p.suffix.lower() in (".yaml", ".yml"):
        try:
            data = yaml.safe_load(p.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise InputError(f"not valid YAML ({exc})", path=where) from exc
        if not isinstance(data, dict):
            raise InputError("expected a mapping with 'diameters_mm'/'lengths_mm' or 'screws'",
                             path=where)
        if "screws" in data:
            sizes = []
            for i, item in enumerate(data["screws"] or [], start=1):
                if not isinstance(item, dict):
                    raise InputError("each screw must be a mapping", path=where, row=i)
                sizes.append((_num(item.get("diameter_mm"), path=where, row=i,
                                   column="diameter_mm"),
                              _num(item.get("length_mm"), path=where, row=i,
                                   column="length_mm")))
            return ScrewCatalog(tuple(sizes), where)
        for key in ("diameters_mm", "lengths_mm"):
            if not isinstance(data.get(key), list) or not data[key]:
                raise InputError("expected a non-empty list", path=where, column=key)
        ds = [_num(v, path=where, row=None, column="diameters_mm") for v in data["diameters_mm"]]
        ls = [_num(v, path=where, row=None, column="lengths_mm") for v in data["lengths_mm"]]
        return ScrewCatalog.grid(ds, ls, where)
    if p.suffix.lower() == ".csv":
        with p.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            missing = {"diameter_mm", "length_mm"} - set(reader.fieldnames or [])
            if missing:
                raise InputError(f"missing column(s) {sorted(missing)}; header is "
                                 f"{reader.fieldnames}", path=where)
            sizes = [(_num(r["diameter_mm"], path=where, row=i, column="diameter_mm"),
                      _num(r["length_mm"], path=where, row=i, column="length_mm"))
                     for i, r in enumerate(reader, start=1)]
        return ScrewCatalog(tuple(sizes), where)
    raise InputError(f"unknown catalog format '{p.suffix}'; use .yaml, .yml or .csv", path=where)


@dataclass(frozen=True)
class ScrewChoice:
    """Result of :func:`choose_screw`: a catalog screw, or None with the reason."""

    diameter_mm: float | None
    length_mm: float | None
    safe_length_by_diameter_mm: dict[float, float]
    reason: str

    def to_dict(self) -> dict | None:
        """``{diameter_mm, length_mm}`` or None."""
        if self.diameter_mm is None:
            return None
        return {"diameter_mm": self.diameter_mm, "length_mm": self.length_mm}


def choose_screw(ctx: PlanningContext, entry_ras_mm: np.ndarray, direction_ras: np.ndarray, *,
                 catalog: ScrewCatalog = DEFAULT_CATALOG, settings: SafetySettings | None = None,
                 field: GridField | None = None, label: str = "axis") -> ScrewChoice:
    """The largest stocked diameter that fits with margin, then the longest safe length.

    For each diameter the safe length along the axis is computed (one ray each); the first
    diameter, from the largest, for which a stocked length fits is chosen with its longest
    fitting length.
    """
    st = settings or SafetySettings()
    fld = field or ctx.clearance
    s = st.samples_mm()
    diams = catalog.diameters_mm
    safe = {}
    for d in diams:
        res = march_safe_length(fld, np.asarray(entry_ras_mm, float)[None],
                                np.asarray(direction_ras, float)[None], s, st.threshold_mm(s, d))
        safe[d] = float(res.length_mm[0])
    for d in reversed(diams):
        fits = [x for x in catalog.lengths_for(d) if x <= safe[d] + 1e-9]
        if fits:
            return ScrewChoice(d, max(fits), safe,
                               f"largest stocked diameter that fits with {st.margin_mm:g} mm "
                               f"margin; longest stocked length within the safe "
                               f"{safe[d]:.1f} mm")
    d0 = diams[0]
    shortest = min(catalog.lengths_for(d0))
    return ScrewChoice(None, None, safe,
                       f"{label} too narrow: longest safe axis {safe[d0]:.1f} mm for a "
                       f"{d0:g} mm screw, shorter than the shortest stocked {shortest:g} mm")

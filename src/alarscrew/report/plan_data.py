"""Read a PLAN_DIR (plan.json, anatomy.json, sacrum_mask.nii.gz) for reports and exports.

The plan.json contract is issue 4 / ``docs/plan-json.md``: ``sides.left`` and ``sides.right``
each hold ``nominal``, ``nominal_axial`` (the two readings of the paper's 30/45 trajectory,
docs/angles.md) and ``optimal`` screws (``entry_ras_mm``, ``direction_ras``, ``length_mm``,
``axis_in_bone_mm``, ``diameter_mm``, angles, ``breaches``, ``min_vessel_distance_mm``,
``mean_hu``, ``recommended_screw`` or null with ``reason``), ``safe_length_map`` and
``safe_window_deg``; the top level holds ``frame``, ``body_loss_percent``, ``alternatives``,
``decision``, ``inputs`` and ``disclaimer``. This module checks the fields the report and the
exports rely on and names the file and field when one is wrong; everything else is passed on
as read, so that a richer plan.json still renders.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from alarscrew.errors import InputError
from alarscrew.io.image import Image
from alarscrew.io.nifti import load_nifti
from alarscrew.spatial.frame import SIDES, S1Frame

PLAN_FILE = "plan.json"
ANATOMY_FILE = "anatomy.json"
SACRUM_MASK_FILE = "sacrum_mask.nii.gz"
#: Screw objects of ``sides.{side}`` that are drawn, tabulated and exported (absent ones are
#: skipped, so plans written before ``nominal_axial`` existed still load).
SCREW_KINDS: tuple[str, ...] = ("nominal", "nominal_axial", "optimal")


@dataclass(frozen=True)
class ScrewGeometry:
    """One screw as a solid cylinder in world RAS mm, as drawn and exported.

    Attributes
    ----------
    name : str
        ``"{side}_{kind}"``, e.g. ``left_optimal``.
    side, kind : str
        ``left``/``right`` and one of :data:`SCREW_KINDS`.
    entry_ras_mm, tip_ras_mm : (3,) ndarray
        Axis end points (entry on the dorsal cortex, tip = entry + length * direction).
    direction_ras : (3,) ndarray
        Unit direction entry -> tip.
    length_mm, diameter_mm : float
        Cylinder length and diameter.
    length_source : str
        Which plan.json field gave the length (see :func:`screw_geometry`).
    """

    name: str
    side: str
    kind: str
    entry_ras_mm: np.ndarray
    tip_ras_mm: np.ndarray
    direction_ras: np.ndarray
    length_mm: float
    diameter_mm: float
    length_source: str

    @property
    def radius_mm(self) -> float:
        """Half the diameter (mm)."""
        return 0.5 * self.diameter_mm


@dataclass(frozen=True)
class PlanDir:
    """The content of a PLAN_DIR, validated where reports and exports depend on it."""

    path: Path
    plan: dict[str, Any]
    anatomy: dict[str, Any]
    sacrum: Image
    frame: S1Frame | None
    screws: tuple[ScrewGeometry, ...] = field(default_factory=tuple)

    def side(self, side: str) -> dict[str, Any]:
        """The plan.json ``sides[side]`` object."""
        return self.plan["sides"][side]


def _finite_vec(value: Any, *, path: Path, fld: str) -> np.ndarray:
    arr = np.asarray(value, dtype=float) if isinstance(value, list) else None
    if arr is None or arr.shape != (3,) or not np.all(np.isfinite(arr)):
        raise InputError(f"expected a list of 3 finite numbers, got {value!r}", path=str(path),
                         column=fld)
    return arr


def _positive(value: Any, *, path: Path, fld: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InputError(f"expected a number or null, got {value!r}", path=str(path), column=fld)
    if value <= 0:
        return None
    return float(value)


def screw_geometry(screw: dict[str, Any], *, side: str, kind: str, path: Path
                   ) -> ScrewGeometry | None:
    """The cylinder drawn and exported for one plan.json screw object.

    Length and diameter come from ``recommended_screw`` when the planner recommends an
    implant. Otherwise the diameter is ``diameter_mm`` and the length the first positive of
    ``screw_length_mm`` (the screw that was evaluated, e.g. the paper's 40 mm nominal screw,
    so that its breach shows), ``length_mm`` (safe length) and ``axis_in_bone_mm``.
    Returns None when none of them is a positive length.

    Parameters
    ----------
    screw : dict
        A plan.json screw object.
    side, kind : str
        Where it sits in plan.json (used in names and messages).
    path : Path
        plan.json, for messages.

    Returns
    -------
    ScrewGeometry or None
    """
    where = f"sides.{side}.{kind}"
    entry = _finite_vec(screw.get("entry_ras_mm"), path=path, fld=f"{where}.entry_ras_mm")
    d = _finite_vec(screw.get("direction_ras"), path=path, fld=f"{where}.direction_ras")
    norm = float(np.linalg.norm(d))
    if abs(norm - 1.0) > 1e-3:
        raise InputError(f"direction must be a unit vector, its norm is {norm:.6f}",
                         path=str(path), column=f"{where}.direction_ras")
    d = d / norm
    rec = screw.get("recommended_screw")
    length = diameter = None
    source = ""
    if isinstance(rec, dict):
        length = _positive(rec.get("length_mm"), path=path,
                           fld=f"{where}.recommended_screw.length_mm")
        diameter = _positive(rec.get("diameter_mm"), path=path,
                             fld=f"{where}.recommended_screw.diameter_mm")
        source = "recommended_screw"
    if length is None or diameter is None:
        diameter = _positive(screw.get("diameter_mm"), path=path, fld=f"{where}.diameter_mm")
        length = None
        for key in ("screw_length_mm", "length_mm", "axis_in_bone_mm"):
            length = _positive(screw.get(key), path=path, fld=f"{where}.{key}")
            if length is not None:
                source = key
                break
    if length is None or diameter is None:
        return None
    return ScrewGeometry(
        name=f"{side}_{kind}", side=side, kind=kind, entry_ras_mm=entry,
        tip_ras_mm=entry + length * d, direction_ras=d, length_mm=length,
        diameter_mm=diameter, length_source=source,
    )


def _read_json(path: Path, *, required: bool) -> dict[str, Any]:
    if not path.exists():
        if required:
            raise InputError("file not found (is this a PLAN_DIR written by `alarscrew plan`?)",
                             path=str(path))
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"not valid JSON ({exc})", path=str(path)) from exc
    if not isinstance(data, dict):
        raise InputError(f"expected a JSON object, got {type(data).__name__}", path=str(path))
    return data


def load_plan_dir(plan_dir: str | Path) -> PlanDir:
    """Read and check a PLAN_DIR.

    Parameters
    ----------
    plan_dir : path
        Folder with ``plan.json``, ``sacrum_mask.nii.gz`` and (optionally) ``anatomy.json``.

    Returns
    -------
    PlanDir

    Raises
    ------
    InputError
        A file is missing or a field the report relies on is malformed (file and field named).
    """
    root = Path(plan_dir)
    if not root.is_dir():
        raise InputError("PLAN_DIR is not a folder", path=str(root))
    plan_path = root / PLAN_FILE
    plan = _read_json(plan_path, required=True)
    anatomy = _read_json(root / ANATOMY_FILE, required=False)
    sides = plan.get("sides")
    if not isinstance(sides, dict) or any(s not in sides for s in SIDES):
        raise InputError("expected an object with 'left' and 'right'", path=str(plan_path),
                         column="sides")
    screws: list[ScrewGeometry] = []
    for side in SIDES:
        entry = sides[side]
        if not isinstance(entry, dict):
            raise InputError("expected an object", path=str(plan_path), column=f"sides.{side}")
        for kind in SCREW_KINDS:
            screw = entry.get(kind)
            if screw is None:
                continue  # a reasoned refusal: the side carries its reason
            if not isinstance(screw, dict):
                raise InputError("expected a screw object or null", path=str(plan_path),
                                 column=f"sides.{side}.{kind}")
            geom = screw_geometry(screw, side=side, kind=kind, path=plan_path)
            if geom is not None:
                screws.append(geom)
    frame = None
    frame_dict = plan.get("frame") or anatomy.get("frame")
    if frame_dict:
        try:
            frame = S1Frame.from_dict(frame_dict)
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"not an S1 frame ({exc})", path=str(plan_path),
                             column="frame") from exc
    mask_path = root / SACRUM_MASK_FILE
    sacrum = load_nifti(mask_path, is_label=True)
    sacrum = sacrum.with_array(sacrum.array > 0, is_label=True)
    return PlanDir(path=root, plan=plan, anatomy=anatomy, sacrum=sacrum, frame=frame,
                   screws=tuple(screws))


def resolve_input(plan_dir: PlanDir, value: str | None) -> Path | None:
    """Find an input path recorded in plan.json: as given, else relative to PLAN_DIR."""
    if not value:
        return None
    p = Path(value)
    if p.exists():
        return p
    q = plan_dir.path / p
    if q.exists():
        return q
    return None

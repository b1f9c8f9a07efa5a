"""Alternatives on the same scan: S1 pedicle (standard, tricortical) and S2-alar-iliac.

They show why an alar screw is chosen when the S1 body is lost: a pedicle screw needs the body.

Trajectories (S1 frame; negative transverse = medial, negative sagittal = cranial tilt):

- S1 pedicle, standard: 25 deg medial, parallel to the endplate, through ``{side}.pedicle``
  (entry where that axis leaves the dorsal cortex; ``{side}.entry`` without a pedicle
  landmark); feasible when a stocked
  length stays safe inside the sacrum (the S1 body is allowed; a lesion is not bone).
- S1 pedicle, tricortical (promontory): from the same entry towards the ``promontory``
  landmark (or 30 deg medial, 10 deg cranial without it); the tip is meant to engage the
  anterior cortex, so it is judged with zero margin.
- S2-alar-iliac (S2AI): entry midway between the S1 and S2 dorsal foramina on the lateral
  border of the S1 foramen (estimated 2 mm lateral and 15 mm caudal of
  ``{side}.s1_foramen``, or 20 mm lateral and 35 mm caudal of the frame origin), searched at
  2 deg over 20-70 deg lateral and -40 to 40 deg sagittal (S1 frame; the frame is tilted by
  the sacral slope, so a scanner-caudal S2AI axis is near 0) inside sacrum + ilium, 8 mm,
  feasible at 65 mm or more (usual S2AI lengths 65-100 mm).

References
----------
Chang TL, Sponseller PD, Kebaish KM, Fishman EK. Low profile pelvic fixation: anatomic
parameters for sacral alar-iliac fixation versus traditional iliac fixation. Spine 2009;
34(5):436-440.
"""

from __future__ import annotations

import numpy as np

from alarscrew.errors import AlarscrewError
from alarscrew.planning.catalog import DEFAULT_CATALOG, ScrewCatalog, choose_screw
from alarscrew.planning.context import PlanningContext
from alarscrew.planning.evaluate import evaluate_screw
from alarscrew.planning.screw import SafetySettings, Screw
from alarscrew.planning.search import AngleGrid, entry_candidates, optimize_side
from alarscrew.spatial.frame import Side, direction_from_angles, unit

S2AI_MIN_LENGTH_MM = 65.0
S2AI_DIAMETER_MM = 8.0


def pedicle_entry(ctx: PlanningContext, side: Side, direction: np.ndarray) -> np.ndarray | None:
    """Dorsal entry of a pedicle screw: walk back from ``{side}.pedicle`` along the axis.

    Without a pedicle landmark the alar entry ``{side}.entry`` is used (the S1 superior
    articular process base, next to the pedicle entry).
    """
    ped = ctx.point(f"{side}.pedicle")
    if ped is None:
        return ctx.point(f"{side}.entry")
    s = np.arange(0.0, 60.0, 0.25)
    pts = ped - s[:, None] * np.asarray(direction, float)
    outside = ctx.bone.sample(pts) < 0
    if not outside.any():
        return ctx.point(f"{side}.entry")
    return pts[max(int(np.argmax(outside)) - 1, 0)]


def _pedicle(ctx: PlanningContext, side: Side, direction: np.ndarray, kind: str, *,
             catalog: ScrewCatalog, settings: SafetySettings) -> dict:
    entry = pedicle_entry(ctx, side, direction)
    if entry is None:
        return {"kind": kind, "feasible": None, "reason": f"no {side}.entry landmark"}
    choice = choose_screw(ctx, entry, direction, catalog=catalog, settings=settings,
                          field=ctx.bone, label=f"{side} S1 pedicle")
    length = choice.length_mm or catalog.min_length_mm
    ev = evaluate_screw(ctx, Screw(entry, direction, length, choice.diameter_mm or
                                   catalog.diameters_mm[0]), side=side, settings=settings,
                        avoid_body=False)
    out = ev.to_dict()
    out.update({"kind": kind, "feasible": choice.diameter_mm is not None,
                "recommended_screw": choice.to_dict(), "reason": choice.reason})
    return out


def pedicle_alternatives(ctx: PlanningContext, side: Side, *,
                         catalog: ScrewCatalog = DEFAULT_CATALOG,
                         settings: SafetySettings | None = None) -> dict:
    """Standard and tricortical S1 pedicle screws on ``side`` (see module docstring)."""
    st = settings or SafetySettings()
    std = direction_from_angles(ctx.frame, side, np.asarray(-25.0), np.asarray(0.0))
    out = {"pedicle_standard": _pedicle(ctx, side, std, "S1 pedicle, standard (25 deg medial)",
                                        catalog=catalog, settings=st)}
    entry, prom = pedicle_entry(ctx, side, std), ctx.point("promontory")
    if entry is not None and prom is not None and np.linalg.norm(prom - entry) > 1.0:
        tri, how = unit(prom - entry), "towards the promontory landmark"
    else:
        tri = direction_from_angles(ctx.frame, side, np.asarray(-30.0), np.asarray(-10.0))
        how = "30 deg medial, 10 up"
    st0 = SafetySettings(margin_mm=0.0, insertion_mm=st.insertion_mm, seat_mm=st.seat_mm,
                         step_mm=st.step_mm, max_length_mm=st.max_length_mm)
    out["pedicle_tricortical"] = _pedicle(ctx, side, tri, f"S1 pedicle, tricortical ({how})",
                                          catalog=catalog, settings=st0)
    return out


def s2ai_alternative(ctx: PlanningContext, side: Side, *,
                     settings: SafetySettings | None = None) -> dict:
    """S2-alar-iliac feasibility and longest safe length on ``side`` (see module docstring)."""
    kind = "S2-alar-iliac"
    if ctx.sacroiliac is None:
        return {"kind": kind, "feasible": None,
                "reason": "no ilium label: the S2AI corridor crosses the SI joint into the "
                          "ilium, which must be segmented"}
    st = settings or SafetySettings()
    st = SafetySettings(margin_mm=st.margin_mm, insertion_mm=st.insertion_mm,
                        seat_mm=st.seat_mm, step_mm=max(st.step_mm, 1.0), max_length_mm=110.0)
    fr = ctx.frame
    lat = fr.lateral_ras(side)
    foramen = ctx.point(f"{side}.s1_foramen")
    if foramen is not None:
        center, how = foramen + 2.0 * lat - 15.0 * fr.cranial_ras, "from the S1 foramen"
    else:
        center = fr.origin_ras_mm + 20.0 * lat - 35.0 * fr.cranial_ras
        how = "estimated from the S1 frame (no foramen landmark)"
    try:
        entries = entry_candidates(ctx, side, center, radius_mm=3.0, spacing_mm=1.0,
                                   snap_mm=40.0)
        res = optimize_side(ctx, side, entries, diameter_mm=S2AI_DIAMETER_MM, settings=st,
                            grid=AngleGrid.regular((20, 70), (-40, 40), 2.0),
                            field=ctx.sacroiliac)
    except AlarscrewError as exc:
        return {"kind": kind, "feasible": False, "reason": str(exc)}
    feasible = res.safe_length_mm >= S2AI_MIN_LENGTH_MM
    return {
        "kind": kind, "feasible": bool(feasible),
        "entry_ras_mm": [round(float(v), 3) for v in res.entry_ras_mm],
        "direction_ras": [round(float(v), 6) for v in res.direction_ras],
        "length_mm": round(res.safe_length_mm, 3), "diameter_mm": S2AI_DIAMETER_MM,
        "transverse_angle_deg": res.transverse_deg, "sagittal_angle_deg": res.sagittal_deg,
        "reason": (f"longest safe {S2AI_DIAMETER_MM:g} mm S2AI axis {res.safe_length_mm:.1f} mm "
                   f"(entry {how}; feasible at >= {S2AI_MIN_LENGTH_MM:g} mm)"),
    }

"""Assemble a full bilateral plan (the plan.json contract, see docs/plan-json.md)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np

from alarscrew import DISCLAIMER, REFERENCE_CITATION, __version__
from alarscrew.anatomy.model import Anatomy, BodyLoss, BoneQuality
from alarscrew.errors import AlarscrewError, InputError, NoSafeTrajectoryError
from alarscrew.io.image import Image
from alarscrew.planning.alternatives import pedicle_alternatives, s2ai_alternative
from alarscrew.planning.catalog import DEFAULT_CATALOG, ScrewCatalog, choose_screw
from alarscrew.planning.context import PlanningContext, build_context
from alarscrew.planning.decision import body_loss_percent, decide
from alarscrew.planning.evaluate import evaluate_screw
from alarscrew.planning.fields import GridField
from alarscrew.planning.screw import SafetySettings, Screw
from alarscrew.planning.search import (
    AngleGrid,
    SearchResult,
    entry_candidates,
    optimize_side,
    optimize_side_density,
    safe_length_map,
    safe_window,
)
from alarscrew.spatial.frame import SIDES, S1Frame, Side, direction_from_angles

#: The paper's technique: 30 deg lateral, 45 deg inferior, about 40 mm deep, 7.0 mm screw.
NOMINAL_TRANSVERSE_DEG = 30.0
NOMINAL_SAGITTAL_DEG = 45.0
NOMINAL_LENGTH_MM = 40.0
DESIGN_DIAMETER_MM = 7.0
PLAN_SCHEMA_VERSION = 1

#: The scanner (body) frame: axial plane = scanner x-y plane, +A anterior, +S cranial; the
#: same axes :func:`alarscrew.spatial.frame.scanner_angles_deg` measures against.
SCANNER_FRAME = S1Frame(np.zeros(3), np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0]),
                        np.array([0.0, 0.0, 1.0]))

#: The two readings of the paper's "30 degrees lateral and 45 degrees inferior" (Fang et al.
#: 2022, Methods; the paper does not say from which plane "inferior" is measured):
#: ``nominal`` = angles in the S1 frame (45 deg below the sloped S1 endplate, the issue's
#: convention); ``nominal_axial`` = angles in the scanner frame (45 deg below the body's axial
#: plane, 30 deg lateral from the anterior axis in the axial plane). See docs/angles.md.
NOMINAL_READINGS: dict[str, str] = {
    "nominal": "30 deg lateral, 45 deg caudal to the S1 endplate plane (S1 frame)",
    "nominal_axial": "30 deg lateral, 45 deg caudal to the body's axial plane (scanner frame)",
}

#: Largest plausible lateral offset (mm, S1 frame) of the entry from the ``{side}.pedicle``
#: landmark: the paper's entry is on the S1 superior articular process, dorsal to the pedicle;
#: about one S1 pedicle width. A heuristic: on the 20 atlas sacra (anatomy stage) the offset is
#: at most 8.1 mm; on the shared real CT the anatomy stage's entry lies 20 mm lateral of it.
ENTRY_PEDICLE_MAX_LATERAL_MM = 12.0

#: ``tip_zone`` choices of the optimal search (see :func:`ala_zone_context`).
TIP_ZONES = ("any", "ala")


def nominal_direction(frame: S1Frame, side: Side, reading: str = "nominal") -> np.ndarray:
    """Unit RAS direction of the paper's 30/45 trajectory in one of :data:`NOMINAL_READINGS`.

    Parameters
    ----------
    frame : S1Frame
    side : {'left', 'right'}
    reading : {'nominal', 'nominal_axial'}
        ``nominal``: ``direction_from_angles(frame, side, 30, 45)``; ``nominal_axial``: the same
        formula with :data:`SCANNER_FRAME`, so that
        ``scanner_angles_deg(d, side) == (30, 45)``.

    Returns
    -------
    (3,) ndarray
    """
    if reading not in NOMINAL_READINGS:
        raise InputError(f"nominal reading must be one of {sorted(NOMINAL_READINGS)}, not "
                         f"{reading!r}", column="reading")
    ref = frame if reading == "nominal" else SCANNER_FRAME
    return direction_from_angles(ref, side, np.asarray(NOMINAL_TRANSVERSE_DEG),
                                 np.asarray(NOMINAL_SAGITTAL_DEG))


def ala_zone_context(ctx: PlanningContext, side: Side) -> PlanningContext:
    """``ctx`` with the clearance field restricted to the ala above the first sacral foramen.

    The paper aims "about 40 mm into the lateral sacral ala", an "upper anterior-lateral
    trajectory ... upper and lateral in the sacrum" (Fang et al. 2022, Methods and
    Discussion); the ala's narrowest section, the sacral pedicle, lies directly cephalad to the
    first sacral foramen (CT model of the sacral ala, PubMed 10630800). This zone keeps the
    whole screw (radius + margin, as every clearance) cranial to the plane through the
    ``{side}.s1_foramen`` landmark parallel to the S1 endplate, i.e. it refuses screws that run
    down the lateral mass to the S2 level, as the unrestricted optimum does on a steep sacrum.

    Notes
    -----
    ``clearance_zone(x) = min(clearance(x), (x - foramen) . cranial)``. The plane term is
    linear, so its trilinear interpolant is exact and 1-Lipschitz: the search's pruning bound
    (:data:`~alarscrew.planning.fields.TRILINEAR_LIPSCHITZ`) still holds and the optimum still
    equals the exhaustive search of the grid.

    Raises
    ------
    NoSafeTrajectoryError
        Without the ``{side}.s1_foramen`` landmark.

    References
    ----------
    Fang et al., BMC Musculoskeletal Disorders 2022 (S1 alar screws).
    "Cross-sectional geometry of the sacral ala for safe insertion of iliosacral lag screws: a
    computed tomography model" (PubMed 10630800; 13 adult pelvic CTs): the narrowest alar
    section lies directly cephalad to the first sacral foramen, mean height 27.8 mm, width
    28.1 mm, alar slope 45 deg (25-65).
    """
    foramen = ctx.point(f"{side}.s1_foramen")
    if foramen is None:
        raise NoSafeTrajectoryError(
            f"{side}: tip zone 'ala' needs the '{side}.s1_foramen' landmark (the zone's caudal "
            "limit); none was found or supplied")
    fld = ctx.clearance
    # (x(ijk) - foramen) . cranial, separable in i, j, k (no (I, J, K, 3) temporary)
    per_index = fld.affine[:3, :3].T @ ctx.frame.cranial_ras  # mm per voxel step along i, j, k
    ni, nj, nk = fld.values.shape
    above_mm = (np.arange(ni)[:, None, None] * per_index[0]
                + np.arange(nj)[None, :, None] * per_index[1]
                + np.arange(nk)[None, None, :] * per_index[2]
                + float((fld.affine[:3, 3] - foramen) @ ctx.frame.cranial_ras))
    zone = GridField(np.minimum(fld.values, above_mm), fld.affine)
    return replace(ctx, clearance=zone)

Progress = Callable[[str], None]


#: Canonical label names (``alarscrew.anatomy.labels``) -> planning mask names; used for
#: structures the anatomy stage does not pass on.
LABEL_TO_MASK: dict[str, str] = {
    "hip_left": "ilium_left",
    "hip_right": "ilium_right",
    "iliac_artery_left": "iliac_vessels",
    "iliac_artery_right": "iliac_vessels",
    "iliac_vena_left": "iliac_vessels",
    "iliac_vena_right": "iliac_vessels",
}


def s1_body_model_mask(ct: Image, frame: S1Frame, model: dict) -> np.ndarray | None:
    """The anatomy stage's S1 body model as a mask: elliptic cylinder in the S1 frame.

    Centred on the frame origin, semi-axes ``semi_x_mm`` (right) and ``semi_y_mm``
    (anterior), from the endplate (z = 0) down to ``-height_mm`` (see
    ``alarscrew.anatomy.bodyloss``). None when the model is incomplete.
    """
    try:
        a, b, h = (float(model[k]) for k in ("semi_x_mm", "semi_y_mm", "height_mm"))
    except (KeyError, TypeError, ValueError):
        return None
    if not all(np.isfinite(v) and v > 0 for v in (a, b, h)):
        return None
    # only a box around the origin holds the body: evaluate there (memory on fine scans)
    reach = float(np.sqrt(a * a + b * b + h * h)) + 2.0
    corners = frame.origin_ras_mm + reach * np.array(
        [[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)], float)
    cijk = ct.ras_to_ijk(corners)
    lo = np.clip(np.floor(cijk.min(axis=0)).astype(int), 0, np.array(ct.shape))
    hi = np.clip(np.ceil(cijk.max(axis=0)).astype(int) + 1, 0, np.array(ct.shape))
    out = np.zeros(ct.shape, bool)
    if np.any(hi <= lo):
        return out
    ijk = np.stack(np.meshgrid(*[np.arange(u, v) for u, v in zip(lo, hi, strict=True)],
                               indexing="ij"), -1)
    f = frame.to_frame_mm(ijk @ ct.affine[:3, :3].T + ct.affine[:3, 3])
    out[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]] = (
        ((f[..., 0] / a) ** 2 + (f[..., 1] / b) ** 2 <= 1.0) & (f[..., 2] <= 0)
        & (f[..., 2] >= -h))
    return out


def context_from_anatomy(anatomy: Anatomy, *, labels: dict[str, Image] | None = None
                         ) -> PlanningContext:
    """Build the planning fields from an :class:`~alarscrew.anatomy.model.Anatomy`.

    Masks the anatomy stage does not provide are completed from ``labels`` (canonical names
    from ``alarscrew.anatomy.load_labels``: hips -> ilium, iliac arteries and veins ->
    iliac_vessels) and the S1 body from the anatomy's body model (provenance
    ``s1_body_model``), so that alar screws are kept out of the S1 body as the paper intends.
    """
    lms = {k: np.asarray(v.xyz_ras_mm, float) for k, v in anatomy.landmarks.items()}
    masks = dict(anatomy.masks)
    merged: dict[str, np.ndarray] = {}
    for name, img in (labels or {}).items():
        target = LABEL_TO_MASK.get(name)
        if target is None or target in masks or not img.same_grid(anatomy.ct):
            continue
        arr = np.asarray(img.array).astype(bool)
        merged[target] = merged[target] | arr if target in merged else arr
    for name, arr in merged.items():
        if arr.any():
            masks[name] = anatomy.ct.with_array(arr, is_label=True, source=f"labels ({name})")
    if "s1_body" not in masks:
        model = (anatomy.provenance or {}).get("s1_body_model")
        body = None if model is None else s1_body_model_mask(anatomy.ct, anatomy.frame, model)
        if body is not None and body.any():
            masks["s1_body"] = anatomy.ct.with_array(body & np.asarray(
                masks["sacrum"].array, bool), is_label=True, source="anatomy S1 body model")
    return build_context(anatomy.ct, masks, anatomy.frame, lms)


def entry_landmark(ctx: PlanningContext, side: Side) -> tuple[np.ndarray | None, str]:
    """The entry region centre and where it came from.

    ``{side}.entry`` (the paper's entry: lateral-inferior part of the inferior half of the S1
    superior articular surface); without it ``{side}.sap_facet`` (centre of that surface, a
    few mm away); else None.
    """
    for name in (f"{side}.entry", f"{side}.sap_facet"):
        p = ctx.point(name)
        if p is not None:
            how = f"{name} landmark" + ("" if name.endswith(".entry") else
                                      " (no entry landmark; facet centre used)")
            return p, how
    return None, f"no '{side}.entry' or '{side}.sap_facet' landmark"


def entry_warnings(ctx: PlanningContext, side: Side, entry_ras_mm: np.ndarray) -> list[str]:
    """Plausibility warnings about the entry point (empty when none or when unverifiable).

    Flags an entry more than :data:`ENTRY_PEDICLE_MAX_LATERAL_MM` lateral of the
    ``{side}.pedicle`` landmark (S1 frame): such an entry lies on the lateral sacral mass
    rather than the S1 superior articular process, and every trajectory from it (nominal and
    optimal) is judged from the wrong place.
    """
    ped = ctx.point(f"{side}.pedicle")
    if ped is None:
        return []
    lat = ctx.frame.lateral_ras(side)
    offset_mm = float((np.asarray(entry_ras_mm, float) - ped) @ lat)
    if offset_mm <= ENTRY_PEDICLE_MAX_LATERAL_MM:
        return []
    return [f"{side} entry lies {offset_mm:.1f} mm lateral of the {side}.pedicle landmark "
            f"(plausible: <= {ENTRY_PEDICLE_MAX_LATERAL_MM:g} mm): it may sit on the lateral "
            "sacral mass instead of the S1 superior articular process; check the entry "
            "landmark (supply it with --landmarks) before using this plan"]


def optimal_trajectory(ctx: PlanningContext, side: Side, *,
                       catalog: ScrewCatalog = DEFAULT_CATALOG,
                       settings: SafetySettings | None = None, grid: AngleGrid | None = None,
                       design_diameter_mm: float = DESIGN_DIAMETER_MM,
                       entry_radius_mm: float = 4.0, objective: str = "length",
                       tip_zone: str = "any") -> SearchResult:
    """Longest safe trajectory on ``side``; raises NoSafeTrajectoryError with the reason.

    ``tip_zone='ala'`` searches in :func:`ala_zone_context` (screw cranial to the first sacral
    foramen level) instead of the whole cone; ``'any'`` (default) is the issue's cone.

    ``objective='density'`` instead maximises the integrated HU along the safe length among
    trajectories at least as long as the shortest stocked screw
    (:func:`~alarscrew.planning.search.optimize_side_density`; 1-degree grid by default).

    Raises
    ------
    NoSafeTrajectoryError
        When no entry landmark exists or the longest safe axis is shorter than the shortest
        stocked screw ("left ala too narrow: longest safe axis 18.0 mm ...").
    """
    if tip_zone not in TIP_ZONES:
        raise InputError(f"tip_zone must be one of {list(TIP_ZONES)}, not {tip_zone!r}",
                         column="tip_zone")
    entry, how = entry_landmark(ctx, side)
    if entry is None:
        raise NoSafeTrajectoryError(f"{side}: {how} to start from")
    if tip_zone == "ala":
        ctx = ala_zone_context(ctx, side)
    try:
        entries = entry_candidates(ctx, side, entry, radius_mm=entry_radius_mm)
    except AlarscrewError as exc:
        raise NoSafeTrajectoryError(str(exc)) from exc
    if objective == "length":
        res = optimize_side(ctx, side, entries, diameter_mm=design_diameter_mm,
                            settings=settings, grid=grid)
    elif objective == "density":
        res = optimize_side_density(ctx, side, entries, diameter_mm=design_diameter_mm,
                                    min_length_mm=catalog.min_length_mm, settings=settings,
                                    grid=grid)
    else:
        raise InputError(f"objective must be 'length' or 'density', not {objective!r}",
                         column="objective")
    if res.safe_length_mm < catalog.min_length_mm:
        where = "" if tip_zone == "any" else " above the first sacral foramen level"
        raise NoSafeTrajectoryError(
            f"{side} ala too narrow: longest safe axis{where} {res.safe_length_mm:.1f} mm for "
            f"a {design_diameter_mm:g} mm screw (shortest stocked {catalog.min_length_mm:g} mm)")
    return res


def _screw_entry(ev_dict: dict, choice_dict: dict | None, reason: str) -> dict:
    ev_dict["recommended_screw"] = choice_dict
    ev_dict["reason"] = reason
    return ev_dict


def plan_side(ctx: PlanningContext, side: Side, *, catalog: ScrewCatalog = DEFAULT_CATALOG,
              settings: SafetySettings | None = None, grid: AngleGrid | None = None,
              design_diameter_mm: float = DESIGN_DIAMETER_MM, objective: str = "length",
              tip_zone: str = "any") -> dict:
    """Nominal (paper, both readings) and optimal screw of one side, with map and window.

    The nominal screws (``nominal``, ``nominal_axial``: :data:`NOMINAL_READINGS`) are judged
    against the whole sacrum (outside the S1 body), whatever ``tip_zone``; the optimal screw,
    its map and safe window within the ``tip_zone`` (:func:`optimal_trajectory`).
    """
    st = settings or SafetySettings()
    g = grid or (AngleGrid() if objective == "length"
                 else AngleGrid.regular((0, 60), (0, 75), 1.0))
    out: dict[str, Any] = {"side": side}
    entry, how = entry_landmark(ctx, side)
    out["entry_source"] = how
    if entry is None:
        reason = f"{how}: cannot place the paper's entry point"
        return {"side": side, "entry_source": how, "warnings": [], "nominal": None,
                "nominal_axial": None, "optimal": None, "status": "refused", "reason": reason,
                "safe_length_map": None, "safe_window_deg": None}
    out["warnings"] = entry_warnings(ctx, side, entry)

    for kind in NOMINAL_READINGS:
        d_nom = nominal_direction(ctx.frame, side, kind)
        nominal = evaluate_screw(ctx, Screw(entry, d_nom, NOMINAL_LENGTH_MM,
                                            design_diameter_mm), side=side, settings=st)
        ch = choose_screw(ctx, entry, d_nom, catalog=catalog, settings=st,
                          label=f"{side} {kind.replace('_', ' ')} 30/45 axis")
        out[kind] = {**_screw_entry(nominal.to_dict(), ch.to_dict(), ch.reason),
                     "reading": NOMINAL_READINGS[kind]}

    try:
        res = optimal_trajectory(ctx, side, catalog=catalog, settings=st, grid=g,
                                 design_diameter_mm=design_diameter_mm, objective=objective,
                                 tip_zone=tip_zone)
    except NoSafeTrajectoryError as exc:
        out.update({"optimal": None, "status": "refused", "reason": str(exc),
                    "safe_length_map": None, "safe_window_deg": None})
        return out
    if tip_zone == "ala":
        ctx = ala_zone_context(ctx, side)  # the optimum's screw, map and window in the zone
    choice = choose_screw(ctx, res.entry_ras_mm, res.direction_ras, catalog=catalog, settings=st,
                          label=f"{side} optimal axis")
    if choice.diameter_mm is None or choice.length_mm is None:
        out.update({"optimal": None, "status": "refused", "reason": choice.reason,
                    "safe_length_map": None, "safe_window_deg": None})
        return out
    ev = evaluate_screw(ctx, Screw(res.entry_ras_mm, res.direction_ras, choice.length_mm,
                                   choice.diameter_mm), side=side, settings=st)
    opt = _screw_entry(ev.to_dict(), choice.to_dict(), choice.reason)
    opt["search"] = {"objective": objective, "tip_zone": tip_zone,
                     "design_diameter_mm": design_diameter_mm,
                     "design_safe_length_mm": round(res.safe_length_mm, 3),
                     ("clearance_mm" if objective == "length" else "integrated_hu_mm"):
                         round(res.clearance_mm, 3),
                     "transverse_step_deg": float(np.diff(g.transverse_deg).max()),
                     "sagittal_step_deg": float(np.diff(g.sagittal_deg).max()),
                     "transverse_range_deg": [float(g.transverse_deg[0]),
                                              float(g.transverse_deg[-1])],
                     "sagittal_range_deg": [float(g.sagittal_deg[0]), float(g.sagittal_deg[-1])],
                     "trajectories_marched": int(res.rays)}
    out["optimal"] = opt
    out["status"] = "safe"
    out["reason"] = choice.reason

    mgrid = AngleGrid.regular((0, 60), (0, 75), 1.0)
    lmap = safe_length_map(ctx, side, res.entry_ras_mm, diameter_mm=choice.diameter_mm,
                           settings=st, grid=mgrid)
    out["safe_length_map"] = {
        "entry_ras_mm": opt["entry_ras_mm"], "diameter_mm": choice.diameter_mm,
        "transverse_deg": [float(v) for v in mgrid.transverse_deg],
        "sagittal_deg": [float(v) for v in mgrid.sagittal_deg],
        "length_mm": [[None if v < catalog.min_length_mm else round(float(v), 2) for v in row]
                      for row in lmap],
    }
    win = safe_window(ctx, side, res.entry_ras_mm, res.transverse_deg, res.sagittal_deg,
                      length_mm=choice.length_mm, diameter_mm=choice.diameter_mm, settings=st)
    out["safe_window_deg"] = win.to_dict()
    return out


def make_plan(ctx: PlanningContext, *, body_loss: BodyLoss | None = None,
              bone_quality: BoneQuality | None = None, catalog: ScrewCatalog = DEFAULT_CATALOG,
              settings: SafetySettings | None = None, grid: AngleGrid | None = None,
              levels: int | None = None, inputs: dict | None = None,
              progress: Progress | None = None, timing: bool = False,
              objective: str = "length", timings_out: dict[str, float] | None = None,
              tip_zone: str = "any") -> dict:
    """The bilateral plan as a JSON-ready dict (contract: docs/plan-json.md).

    ``timing_s`` is None unless ``timing`` is True, so the same input gives the same dict;
    pass a dict as ``timings_out`` to receive the step wall times (s) in any case.
    """
    st = settings or SafetySettings()
    say = progress or (lambda _msg: None)
    times: dict[str, float] = {}
    sides: dict[str, Any] = {}
    alts: dict[str, Any] = {}
    for side in SIDES:
        say(f"{side}: optimal trajectory")
        t0 = time.perf_counter()
        sides[side] = plan_side(ctx, side, catalog=catalog, settings=st, grid=grid,
                                objective=objective, tip_zone=tip_zone)
        times[f"{side}_plan"] = time.perf_counter() - t0
        say(f"{side}: alternatives")
        t0 = time.perf_counter()
        alts[side] = {**pedicle_alternatives(ctx, side, catalog=catalog, settings=st),
                      "s2ai": s2ai_alternative(ctx, side, settings=st)}
        times[f"{side}_alternatives"] = time.perf_counter() - t0
    decision = decide(body_loss=body_loss, bone_quality=bone_quality, levels=levels,
                      sides_safe={s: sides[s]["status"] == "safe" for s in SIDES})
    times = {k: round(v, 4) for k, v in times.items()}
    if timings_out is not None:
        timings_out.update(times)
    return {
        "schema_version": PLAN_SCHEMA_VERSION,
        "alarscrew_version": __version__,
        "disclaimer": DISCLAIMER,
        "reference": REFERENCE_CITATION,
        "inputs": inputs or {"ct": None, "seg": [], "landmarks": None, "lesion": None},
        "frame": ctx.frame.to_dict(),
        "body_loss_percent": body_loss_percent(body_loss),
        "body_loss": None if body_loss is None else body_loss.to_dict(),
        "bone_quality": None if bone_quality is None else bone_quality.to_dict(),
        "sources": dict(sorted(ctx.sources.items())),
        "settings": {"objective": objective, "tip_zone": tip_zone, "margin_mm": st.margin_mm,
                     "insertion_mm": st.insertion_mm,
                     "seat_mm": st.seat_mm, "step_mm": st.step_mm,
                     "max_length_mm": st.max_length_mm},
        "catalog": catalog.to_dict(),
        "nominal_technique": {"transverse_angle_deg": NOMINAL_TRANSVERSE_DEG,
                              "sagittal_angle_deg": NOMINAL_SAGITTAL_DEG,
                              "length_mm": NOMINAL_LENGTH_MM,
                              "diameter_mm": DESIGN_DIAMETER_MM,
                              "readings": dict(NOMINAL_READINGS)},
        "sides": sides,
        "alternatives": alts,
        "decision": decision,
        "timing_s": dict(times) if timing else None,
    }


def plan_from_anatomy(anatomy: Anatomy, **kwargs: Any) -> dict:
    """:func:`make_plan` on an Anatomy (frame, landmarks, masks, body loss, bone quality)."""
    ctx = context_from_anatomy(anatomy)
    return make_plan(ctx, body_loss=anatomy.body_loss, bone_quality=anatomy.bone_quality,
                     **kwargs)


def _clean(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float):
        return None if not np.isfinite(obj) else obj
    return obj


def plan_to_json(plan: dict) -> str:
    """Deterministic JSON text (2-space indent, key order as built, NaN -> null)."""
    return json.dumps(_clean(plan), indent=2, allow_nan=False) + "\n"

"""Evaluate one screw: in-bone length, containment, breaches, corridor, distances, HU."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from alarscrew.errors import GeometryError
from alarscrew.planning.context import PlanningContext
from alarscrew.planning.march import axial_samples, march_safe_length
from alarscrew.planning.screw import SafetySettings, Screw, gertzbein_robbins
from alarscrew.spatial.frame import Side, scanner_angles_deg, screw_angles_deg

#: HU above which bone counts as cortical for tip engagement.
CORTICAL_HU = 400.0
#: Tip engagement window along the axis: from 2 mm before to 1 mm beyond the tip.
TIP_WINDOW_MM = (-2.0, 1.0)
#: Axial extent (mm) explored beyond the screw to find where the axis leaves the bone.
AXIS_EXPLORE_MM = 120.0

SURFACES = ("anterior_cortex", "superior_endplate_disc", "spinal_canal", "foramen",
            "si_joint_ilium", "posterior_cortex", "caudal_cortex", "lateral_cortex",
            "medial_cortex")


@dataclass(frozen=True)
class Breach:
    """One stretch of the screw where the cylinder leaves the bone.

    Attributes
    ----------
    axial_start_mm, axial_end_mm : float
        Stretch along the axis (mm from the entry).
    position_ras_mm : (3,) ndarray
        Bone-surface point crossed at the deepest breach, world RAS mm.
    depth_mm : float
        How far the cylinder reaches beyond the bone surface there (radius - distance of
        the axis to the surface; in the insertion zone the radius ramps up from 0, see
        :class:`SafetySettings`).
    surface : str
        One of :data:`SURFACES`.
    """

    axial_start_mm: float
    axial_end_mm: float
    position_ras_mm: np.ndarray
    depth_mm: float
    surface: str

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        return {
            "axial_start_mm": round(float(self.axial_start_mm), 3),
            "axial_end_mm": round(float(self.axial_end_mm), 3),
            "position_ras_mm": [round(float(v), 3) for v in self.position_ras_mm],
            "depth_mm": round(float(self.depth_mm), 3),
            "surface": self.surface,
            "grade": gertzbein_robbins(self.depth_mm),
        }


@dataclass(frozen=True, eq=False)
class ScrewEvaluation:
    """Everything measured about one screw (see :func:`evaluate_screw`)."""

    screw: Screw
    side: Side
    safe_length_mm: float
    axis_in_bone_mm: float
    transverse_angle_deg: float
    sagittal_angle_deg: float
    scanner_transverse_angle_deg: float
    scanner_sagittal_angle_deg: float
    contained: bool
    breaches: tuple[Breach, ...]
    corridor_diameter_mm: float | None
    min_vessel_distance_mm: float | None
    vessel_source: str
    min_l5_root_distance_mm: float | None
    l5_root_source: str
    mean_hu: float | None
    integrated_hu_mm: float | None
    tip_max_hu: float | None
    tip_engages_cortex: bool | None

    @property
    def grade(self) -> str:
        """Gertzbein-Robbins grade of the worst breach."""
        return gertzbein_robbins(max((b.depth_mm for b in self.breaches), default=None))

    def to_dict(self) -> dict:
        """JSON-ready screw object of the plan.json contract (without recommendation)."""
        def r3(v):
            return (None if v is None or not np.isfinite(v) else round(float(v), 3))
        return {
            "entry_ras_mm": [round(float(v), 3) for v in self.screw.entry_ras_mm],
            "direction_ras": [round(float(v), 6) for v in self.screw.direction_ras],
            "length_mm": r3(self.safe_length_mm),
            "screw_length_mm": r3(self.screw.length_mm),
            "axis_in_bone_mm": r3(self.axis_in_bone_mm),
            "diameter_mm": r3(self.screw.diameter_mm),
            "transverse_angle_deg": r3(self.transverse_angle_deg),
            "sagittal_angle_deg": r3(self.sagittal_angle_deg),
            "scanner_transverse_angle_deg": r3(self.scanner_transverse_angle_deg),
            "scanner_sagittal_angle_deg": r3(self.scanner_sagittal_angle_deg),
            "contained": bool(self.contained),
            "breaches": [b.to_dict() for b in self.breaches],
            "gertzbein_robbins_grade": self.grade,
            "corridor_diameter_mm": r3(self.corridor_diameter_mm),
            "min_vessel_distance_mm": r3(self.min_vessel_distance_mm),
            "vessel_distance_source": self.vessel_source,
            "min_l5_root_distance_mm": r3(self.min_l5_root_distance_mm),
            "l5_root_distance_source": self.l5_root_source,
            "mean_hu": r3(self.mean_hu),
            "integrated_hu_mm": r3(self.integrated_hu_mm),
            "tip_max_hu": r3(self.tip_max_hu),
            "tip_engages_cortex": self.tip_engages_cortex,
        }


def side_of(ctx: PlanningContext, xyz_ras_mm: np.ndarray) -> Side:
    """'right' when the point lies right of the S1 midsagittal plane, else 'left'."""
    return "right" if float(ctx.frame.to_frame_mm(xyz_ras_mm)[0]) >= 0 else "left"


def classify_surface(ctx: PlanningContext, point_ras_mm: np.ndarray, normal_ras: np.ndarray,
                     side: Side) -> str:
    """Name the bone surface at ``point_ras_mm`` with outward normal ``normal_ras``.

    Notes
    -----
    Checked in order: ilium / SI joint (within 3 mm of an ilium label, else lateral of the
    ``{side}.ala_lateral`` landmark), spinal canal (label within 3 mm, else within 12 mm of
    the ``canal`` landmark in the transverse plane and no more than 8 mm anterior to it),
    dorsal foramen (within 8 mm of ``{side}.s1_foramen``), then by the outward normal in the
    S1 frame: cranial (> 0.5) superior endplate / L5-S1 disc, anterior (> 0.4) anterior
    cortex, posterior (< -0.5), caudal (< -0.5), else lateral or medial.
    """
    fr = ctx.frame
    p = np.asarray(point_ras_mm, float)
    pf = fr.to_frame_mm(p)
    lat_sign = 1.0 if side == "right" else -1.0
    if ctx.ilium is not None:
        if float(ctx.ilium.distance_mm(p)) < 3.0:
            return "si_joint_ilium"
    else:
        ala = ctx.point(f"{side}.ala_lateral")
        if ala is not None and lat_sign * pf[0] > lat_sign * fr.to_frame_mm(ala)[0] - 3.0:
            return "si_joint_ilium"
    if ctx.canal is not None:
        if float(ctx.canal.distance_mm(p)) < 3.0:
            return "spinal_canal"
    else:
        canal = ctx.point("canal")
        if canal is not None:
            cf = fr.to_frame_mm(canal)
            if np.hypot(pf[0] - cf[0], pf[1] - cf[1]) < 12.0 and pf[1] < cf[1] + 8.0:
                return "spinal_canal"
    foramen = ctx.point(f"{side}.s1_foramen")
    if foramen is not None and np.linalg.norm(p - foramen) < 8.0:
        return "foramen"
    nf = fr.rotation @ np.asarray(normal_ras, float)
    if nf[2] > 0.5:
        return "superior_endplate_disc"
    if nf[1] > 0.4:
        return "anterior_cortex"
    if nf[1] < -0.5:
        return "posterior_cortex"
    if nf[2] < -0.5:
        return "caudal_cortex"
    return "lateral_cortex" if lat_sign * nf[0] > 0 else "medial_cortex"


def _first_exit_mm(s: np.ndarray, sd: np.ndarray) -> float:
    """Axial position where the axis first leaves bone after having entered it."""
    inside = sd >= 0
    if not inside.any():
        return 0.0
    k_in = int(np.argmax(inside))
    out = ~inside[k_in:]
    if not out.any():
        return float(s[-1])
    k = k_in + int(np.argmax(out))
    a, b = sd[k - 1], sd[k]
    return float(s[k - 1] + (s[k] - s[k - 1]) * a / (a - b))


def evaluate_screw(ctx: PlanningContext, screw: Screw, *, side: Side | None = None,
                   settings: SafetySettings | None = None, avoid_body: bool = True
                   ) -> ScrewEvaluation:
    """Measure one screw against the scan.

    Parameters
    ----------
    ctx : PlanningContext
    screw : Screw
    side : {'left', 'right'}, optional
        Side for the angle convention; from the entry's position when omitted.
    settings : SafetySettings, optional
    avoid_body : bool
        Count entering the S1 body (when labelled) as unsafe (alar screws); False for
        pedicle screws.

    Returns
    -------
    ScrewEvaluation

    Notes
    -----
    - safe length: first axial position where ``field < threshold`` (see
      :class:`SafetySettings`), ``field`` the clearance (bone and S1 body) or bone distance.
    - axis in bone: from the entry to where the axis first leaves the sacrum after entering.
    - breaches: stretches of ``[seat, length]`` where the cylinder (no margin) leaves bone.
    - corridor diameter: ``2 x min`` distance to the surface along ``[insertion,
      length]``: the widest screw of this length that fits on this axis (None when none).
    """
    st = settings or SafetySettings()
    if not ctx.ct.contains_ras(screw.entry_ras_mm):
        raise GeometryError(
            f"entry {np.round(screw.entry_ras_mm, 2).tolist()} mm lies outside the image "
            f"({ctx.ct.grid_description()})")
    side = side or side_of(ctx, screw.entry_ras_mm)
    e, d, r = screw.entry_ras_mm, screw.direction_ras, screw.radius_mm
    field = ctx.clearance if avoid_body else ctx.bone

    s_safe = st.samples_mm()
    res = march_safe_length(field, e[None], d[None], s_safe,
                            st.threshold_mm(s_safe, screw.diameter_mm))
    safe_len = float(res.length_mm[0])

    s_axis = axial_samples(start_mm=0.0, stop_mm=max(AXIS_EXPLORE_MM, screw.length_mm),
                           step_mm=st.step_mm)
    pts_axis = e + s_axis[:, None] * d
    sd_axis = ctx.bone.sample(pts_axis)
    in_bone = _first_exit_mm(s_axis, sd_axis)

    # breaches along the screw
    s = st.samples_mm(screw.length_mm)
    pts = e + s[:, None] * d
    sd = ctx.bone.sample(pts)
    need = st.ramp(s) * r
    depth = need - sd
    out = depth > 1e-6
    breaches = []
    if out.any():
        edges = np.flatnonzero(np.diff(np.concatenate([[0], out.astype(int), [0]])))
        for a, b in zip(edges[::2], edges[1::2], strict=True):
            k = a + int(np.argmax(depth[a:b]))
            n = ctx.outward_normal(pts[k])
            surf_pt = pts[k] + sd[k] * n
            breaches.append(Breach(float(s[a]), float(s[b - 1]), surf_pt, float(depth[k]),
                                   classify_surface(ctx, surf_pt, n, side)))

    seg = s >= st.insertion_mm
    corridor = float(2.0 * sd[seg].min()) if seg.any() else None
    corridor = None if corridor is not None and corridor <= 0 else corridor

    s_all = axial_samples(start_mm=0.0, stop_mm=screw.length_mm, step_mm=st.step_mm)
    p_all = e + s_all[:, None] * d
    vessel = float(ctx.vessel_distance_mm(p_all).min() - r)
    root = ctx.root_distance_mm(p_all)
    root_min = float(root.min() - r) if np.all(np.isfinite(root)) else None
    hu = ctx.hu.sample(p_all)
    mean_hu = float(hu.mean())
    integrated = float(np.trapezoid(hu, s_all))
    s_tip = axial_samples(start_mm=screw.length_mm + TIP_WINDOW_MM[0],
                          stop_mm=screw.length_mm + TIP_WINDOW_MM[1], step_mm=0.25)
    tip_hu = float(ctx.hu.sample(e + s_tip[:, None] * d).max())

    t_deg, s_deg = screw_angles_deg(d, ctx.frame, side)
    st_deg, ss_deg = scanner_angles_deg(d, side)
    return ScrewEvaluation(
        screw=screw, side=side, safe_length_mm=safe_len, axis_in_bone_mm=in_bone,
        transverse_angle_deg=float(t_deg), sagittal_angle_deg=float(s_deg),
        scanner_transverse_angle_deg=float(st_deg), scanner_sagittal_angle_deg=float(ss_deg),
        contained=bool(safe_len >= screw.length_mm - 1e-9 and not breaches),
        breaches=tuple(breaches), corridor_diameter_mm=corridor,
        min_vessel_distance_mm=vessel, vessel_source=ctx.sources.get("iliac_vessels", ""),
        min_l5_root_distance_mm=root_min, l5_root_source=ctx.sources.get("l5_root", ""),
        mean_hu=mean_hu, integrated_hu_mm=integrated, tip_max_hu=tip_hu,
        tip_engages_cortex=bool(tip_hu >= CORTICAL_HU),
    )

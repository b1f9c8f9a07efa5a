"""PNG overlay of the sacrum mask and every S1 landmark on CT slices, for checking at a glance.

Layout
------
Six panels, each a CT plane resampled on a world-aligned grid (axes in world RAS mm, so an
oblique scan is shown in true world orientation), shown in the radiological convention
(patient right on the image left; sagittal views with anterior on the left):

====  ==========================================  ==========================================
row   panel                                       plane through (mean of)
====  ==========================================  ==========================================
1     axial: S1 facets and entry points           both ``sap_facet`` and ``entry``
1     axial: pedicle level                        both ``pedicle``, ``canal``, ``s1_foramen``
1     coronal: alae                               both ``ala_lateral`` and ``ala_anterior``
2     sagittal through the right entry point      ``right.entry`` (else facet, pedicle)
2     midsagittal                                 ``endplate_center`` (frame origin)
2     sagittal through the left entry point       ``left.entry`` (else facet, pedicle)
====  ==========================================  ==========================================

Every landmark is drawn on its *home* panel, the panel whose plane is nearest to it, and on
any other panel whose plane passes within :data:`NEAR_MM`; its label gives the side, the name
and, when it lies off the plane by more than 0.5 mm, how far and in which direction. A table
under the panels lists every landmark with its RAS coordinates, confidence, origin (detected
or supplied) and home panel, and names the landmarks that were not found. Contours: sacrum
(lime), ilia (cyan), L5 (light blue), lesion (red), and the S1 body model used for body loss
(dashed gold). The midsagittal panel shows the S1 frame (cranial and anterior axes, endplate
plane). The disclaimer is printed in the figure.
"""

from __future__ import annotations

import os
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage as ndi

from alarscrew import DISCLAIMER
from alarscrew.anatomy.grid import bounding_box
from alarscrew.anatomy.model import Anatomy
from alarscrew.io.atomic import atomic_path
from alarscrew.io.image import Image

#: Output resolution (dots per inch), figure size (inches; the PNG is 2100 x 1150 pixels) and
#: the side of each square panel (inches).
DPI = 100
FIGSIZE_IN = (21.0, 11.5)
PANEL_IN = 4.4
#: Side of the square field shown in the top-row (axial, coronal) and bottom-row (sagittal)
#: panels (mm), and the resampling step (mm).
FIELD_MM = (140.0, 120.0)
STEP_MM = 0.4
#: A landmark is also drawn on a panel that is not its home when its plane is this close (mm).
NEAR_MM = 3.0
#: CT display window (HU): bone window.
WINDOW_HU = (-250.0, 1100.0)

#: Marker shape, face colour (RGB, 0-1) and legend text per landmark kind.
LANDMARK_STYLE: dict[str, tuple[str, tuple[float, float, float], str]] = {
    "ala_lateral": ("p", (0.0, 0.6, 1.0), "ala, lateral extent"),
    "ala_anterior": ("^", (0.55, 0.35, 1.0), "ala, anterior cortex"),
    "s1_foramen": ("h", (1.0, 0.45, 0.6), "S1 dorsal foramen"),
    "promontory": ("P", (1.0, 1.0, 1.0), "promontory"),
    "canal": ("v", (0.6, 1.0, 0.3), "spinal canal"),
    "endplate_center": ("X", (1.0, 0.25, 0.25), "endplate centre (frame origin)"),
    "pedicle": ("D", (1.0, 1.0, 0.0), "pedicle centre"),
    "sap_facet": ("s", (1.0, 0.55, 0.0), "S1 superior facet"),
    "entry": ("o", (1.0, 0.0, 1.0), "entry point (paper)"),
}
#: Marker size (points); kinds are drawn in :data:`LANDMARK_STYLE` order, so the entry point
#: (smallest) lies on top of the facet it sits on.
MARKER_PT = {"entry": 7.0, "sap_facet": 10.0}
#: Label offsets tried in turn (points; x towards the preferred side), the first one whose
#: text overlaps no marker and no earlier label is kept.
LABEL_OFFSETS_PT = ((8, 5), (8, -9), (8, 18), (8, -22), (-8, 5), (-8, -9), (-8, 18),
                    (-8, -22), (8, 31), (8, -35), (-8, 31), (-8, -35))
#: Mask contours drawn: (mask names, colour, legend text).
CONTOURS: tuple[tuple[tuple[str, ...], str, str], ...] = (
    (("sacrum",), "lime", "sacrum mask"),
    (("ilium_left", "ilium_right"), "cyan", "ilia"),
    (("l5",), "#7fbfff", "L5"),
    (("lesion",), "red", "lesion"),
)
#: The landmarks the anatomy stage looks for (model.py names); those absent are listed.
EXPECTED_LANDMARKS: tuple[str, ...] = (
    "promontory", "canal", "endplate_center",
    *(f"{side}.{kind}" for side in ("left", "right")
      for kind in ("sap_facet", "entry", "pedicle", "ala_lateral", "ala_anterior", "s1_foramen")),
)
#: Outline colour of the S1 body model used for body loss (dashed).
BODY_MODEL_COLOUR = "gold"
_AXIS_NAMES = "xyz"
#: Direction words for positive / negative offsets along RAS x, y, z.
_DIRECTION = (("R", "L"), ("A", "P"), ("S", "I"))


@dataclass(frozen=True)
class Panel:
    """One CT plane of the overlay.

    Attributes
    ----------
    title : str
    normal_axis : int
        RAS axis (0 x, 1 y, 2 z) normal to the plane.
    position_mm : float
        World coordinate of the plane along ``normal_axis``.
    h_axis, v_axis : int
        RAS axes shown horizontally and vertically (data coordinates of ``axes`` are these
        world coordinates in mm).
    axes : matplotlib Axes
    """

    title: str
    normal_axis: int
    position_mm: float
    h_axis: int
    v_axis: int
    axes: Any


@dataclass(frozen=True)
class Placement:
    """Where a landmark was drawn: panel index, data coordinates (mm) and face colour."""

    name: str
    panel: int
    h_mm: float
    v_mm: float
    offset_mm: float
    rgb: tuple[float, float, float]


@dataclass(frozen=True)
class OverlayFigure:
    """The drawn (not yet saved) overlay: the figure, its panels and the landmark placements."""

    figure: Any
    panels: tuple[Panel, ...]
    placements: tuple[Placement, ...]


def _body_model_field(anatomy: Anatomy, world_ras_mm: np.ndarray) -> np.ndarray | None:
    """Signed inside-ness of the S1 body model (elliptic cylinder) at world points (..., 3).

    Positive inside: ``min(1 - (x/a)^2 - (y/b)^2, scaled distance to the top and bottom
    faces)``, so its zero contour is the model's outline. None when there is no model.
    """
    model = (anatomy.provenance or {}).get("s1_body_model")
    if not model:
        return None
    try:
        a, b, h = (float(model[k]) for k in ("semi_x_mm", "semi_y_mm", "height_mm"))
    except (KeyError, TypeError, ValueError):
        return None
    if not (a > 0 and b > 0 and h > 0):
        return None
    top = float(model.get("top_mm", 0.0))
    f = anatomy.frame.to_frame_mm(world_ras_mm)
    radial = 1.0 - (f[..., 0] / a) ** 2 - (f[..., 1] / b) ** 2
    axial = np.minimum(top - f[..., 2], f[..., 2] - (top - h)) / min(a, b)
    return np.minimum(radial, axial)


def _kind_side(name: str) -> tuple[str, str]:
    side, _, kind = name.rpartition(".")
    return kind, side


def _short_label(name: str) -> str:
    kind, side = _kind_side(name)
    short = {"sap_facet": "facet", "ala_lateral": "ala lat", "ala_anterior": "ala ant",
             "s1_foramen": "foramen", "endplate_center": "endplate ctr"}.get(kind, kind)
    return f"{side[0].upper()} {short}" if side else short


def _sample_plane(arr: np.ndarray, ijk: np.ndarray, *, order: int, cval: float) -> np.ndarray:
    """Interpolate ``arr`` at continuous voxel indices (N, 3), converting only the block needed."""
    shape = np.asarray(arr.shape)
    lo = np.clip(np.floor(ijk.min(axis=0)).astype(int) - 2, 0, shape)
    hi = np.clip(np.ceil(ijk.max(axis=0)).astype(int) + 3, 0, shape)
    if np.any(hi - lo < 2):
        return np.full(len(ijk), cval, np.float32)
    sub = np.asarray(arr[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]], np.float32)
    inside = np.all((ijk >= -0.5) & (ijk <= shape - 0.5), axis=1)
    out = ndi.map_coordinates(sub, (ijk - lo).T, order=order, mode="nearest")
    return np.where(inside, out, np.float32(cval))


def _world_bbox(mask: Image) -> tuple[np.ndarray, np.ndarray] | None:
    """World RAS bounding box (lo, hi) of a bool mask."""
    bb = bounding_box(np.asarray(mask.array, bool))
    if bb is None:
        return None
    lo, hi = (np.asarray(v, float) for v in bb)
    corners = np.array([[a, b, c] for a in (lo[0], hi[0] - 1) for b in (lo[1], hi[1] - 1)
                        for c in (lo[2], hi[2] - 1)])
    w = mask.ijk_to_ras(corners)
    return w.min(axis=0), w.max(axis=0)


def _plane_specs(anatomy: Anatomy) -> list[tuple[str, int, float, int, int]]:
    """(title, normal axis, position mm, horizontal axis, vertical axis) of the seven panels."""
    origin = np.asarray(anatomy.frame.origin_ras_mm, float)

    def mean_of(names: tuple[str, ...], axis: int, fallback: float) -> float:
        pts = [p for p in (anatomy.point(n) for n in names) if p is not None]
        return float(np.mean([p[axis] for p in pts])) if pts else fallback

    both = ("left", "right")
    z_facet = mean_of(tuple(f"{s}.{k}" for s in both for k in ("sap_facet", "entry")), 2,
                      origin[2])
    z_ped = mean_of(("canal", *(f"{s}.{k}" for s in both for k in ("pedicle", "s1_foramen"))),
                    2, origin[2])
    y_lat = mean_of(tuple(f"{s}.ala_lateral" for s in both), 1, origin[1])
    y_ant = mean_of(tuple(f"{s}.ala_anterior" for s in both), 1, origin[1])

    def side_x(side: str) -> tuple[float, str]:
        for kind in ("entry", "sap_facet", "pedicle"):
            p = anatomy.point(f"{side}.{kind}")
            if p is not None:
                return float(p[0]), kind
        lat = anatomy.frame.lateral_ras(side)  # type: ignore[arg-type]
        return float((origin + 20.0 * lat)[0]), "20 mm lateral of the origin"

    x_r, via_r = side_x("right")
    x_l, via_l = side_x("left")
    return [
        (f"axial z = {z_facet:.1f} mm: S1 facets and entry points", 2, z_facet, 0, 1),
        (f"axial z = {z_ped:.1f} mm: pedicles, canal, S1 foramina", 2, z_ped, 0, 1),
        (f"coronal y = {y_lat:.1f} mm: alae, lateral extent", 1, y_lat, 0, 2),
        (f"coronal y = {y_ant:.1f} mm: alae, anterior cortex", 1, y_ant, 0, 2),
        (f"sagittal x = {x_r:.1f} mm: right {via_r.replace('_', ' ')}", 0, x_r, 1, 2),
        (f"midsagittal x = {origin[0]:.1f} mm: endplate, promontory, canal", 0,
         float(origin[0]), 1, 2),
        (f"sagittal x = {x_l:.1f} mm: left {via_l.replace('_', ' ')}", 0, x_l, 1, 2),
    ]


def _field_center(spec: tuple[str, int, float, int, int], home_pts: list[np.ndarray],
                  sac_box: tuple[np.ndarray, np.ndarray] | None,
                  origin: np.ndarray, field_mm: float) -> np.ndarray:
    """In-plane centre (h, v) of a panel's field: the sacrum, shifted to hold its landmarks."""
    _, _, _, h, v = spec
    axes = [h, v]
    c = (0.5 * (sac_box[0] + sac_box[1]))[axes] if sac_box is not None else origin[axes]
    half, margin = field_mm / 2.0, 18.0
    for k, ax in enumerate(axes):
        if not home_pts:
            continue
        vals = np.array([p[ax] for p in home_pts])
        lo, hi = vals.min() - margin, vals.max() + margin
        if c[k] + half < hi:
            c[k] = hi - half
        if c[k] - half > lo:
            c[k] = lo + half
    return c


def _annotate(ax: Any, text: str, xy: tuple[float, float], rgb: tuple[float, float, float],
              offset_pt: tuple[float, float]) -> Any:
    """One landmark label at ``offset_pt`` from ``xy``, with a leader line when far below/above."""
    dx, dy = offset_pt
    return ax.annotate(
        text, xy, xytext=(dx, dy), textcoords="offset points",
        ha="right" if dx < 0 else "left", va="center", color=rgb, fontsize=7.5, zorder=8,
        bbox={"boxstyle": "round,pad=0.15", "fc": "black", "ec": "none", "alpha": 0.55},
        arrowprops=None if abs(dy) < 10 else {"arrowstyle": "-", "color": rgb, "lw": 0.7,
                                              "shrinkA": 0, "shrinkB": 4})


def _place_labels(ax: Any, labels: list[tuple[str, float, float, tuple[float, float, float],
                                              bool]], taken: list[Any]) -> None:
    """Annotate each point with the first offset of :data:`LABEL_OFFSETS_PT` that is free.

    Overlap is tested on the rendered text boxes (display pixels, 3 px margin) against
    ``taken`` (marker boxes and the labels placed so far) and the panel's edges; a label that
    finds no free place keeps the first offset.
    """
    from matplotlib.text import Text
    from matplotlib.transforms import Bbox

    renderer = ax.figure.canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    for text, ph, pv, rgb, to_left in labels:
        sign = -1 if to_left else 1
        for k, (dx, dy) in enumerate(LABEL_OFFSETS_PT):
            ann = _annotate(ax, text, (ph, pv), rgb, (sign * dx, dy))
            ann.update_positions(renderer)
            tb = Text.get_window_extent(ann, renderer)  # the text alone, not the leader
            bb = Bbox.from_extents(tb.x0 - 3, tb.y0 - 3, tb.x1 + 3, tb.y1 + 3)
            free = (frame.x0 <= bb.x0 and bb.x1 <= frame.x1 and frame.y0 <= bb.y0
                    and bb.y1 <= frame.y1 and not any(bb.overlaps(t) for t in taken))
            if free:
                taken.append(bb)
                break
            ann.remove()
            if k == len(LABEL_OFFSETS_PT) - 1:  # nowhere free: the first offset
                d0 = LABEL_OFFSETS_PT[0]
                _annotate(ax, text, (ph, pv), rgb, (sign * d0[0], d0[1]))


def build_overlay(anatomy: Anatomy, *, title: str | None = None) -> OverlayFigure:
    """Draw the overlay figure (see the module docstring); the caller saves or closes it.

    Parameters
    ----------
    anatomy : Anatomy
    title : str, optional
        First line of the figure title (e.g. the CT file name).

    Returns
    -------
    OverlayFigure
        The matplotlib figure (Agg, :data:`FIGSIZE_IN` at :data:`DPI`, already drawn so that
        its transforms are final), its panels, and every landmark placement.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.transforms import Bbox

    ct = anatomy.ct
    origin = np.asarray(anatomy.frame.origin_ras_mm, float)
    specs = _plane_specs(anatomy)
    names = sorted(anatomy.landmarks)
    pts = {n: np.asarray(anatomy.landmarks[n].xyz_ras_mm, float) for n in names}
    dist = {n: np.array([abs(pts[n][s[1]] - s[2]) for s in specs]) for n in names}
    home = {n: int(np.argmin(dist[n])) for n in names}
    sac_box = _world_bbox(anatomy.sacrum)

    fig = Figure(figsize=FIGSIZE_IN, dpi=DPI)
    FigureCanvasAgg(fig)  # no pyplot: nothing global, nothing to close
    fig_w, fig_h = FIGSIZE_IN
    size, left, gap_x, top, gap_y = PANEL_IN, 0.75, 0.75, 1.2, 0.85
    panels: list[Panel] = []
    placements: list[Placement] = []
    for idx, spec in enumerate(specs):
        ptitle, normal, pos, h, v = spec
        row, col = divmod(idx, 4)
        x0 = left + col * (size + gap_x)
        y0 = fig_h - top - size - row * (size + gap_y)
        ax = fig.add_axes((x0 / fig_w, y0 / fig_h, size / fig_w, size / fig_h))
        field = FIELD_MM[row]
        c = _field_center(spec, [pts[n] for n in names if home[n] == idx], sac_box, origin,
                          field)
        grid_1d = np.arange(-field / 2, field / 2 + STEP_MM / 2, STEP_MM)
        hs, vs = c[0] + grid_1d, c[1] + grid_1d
        H, V = np.meshgrid(hs, vs)  # rows: v, columns: h
        world = np.empty((*H.shape, 3))
        world[..., normal], world[..., h], world[..., v] = pos, H, V
        ijk = ct.ras_to_ijk(world.reshape(-1, 3))
        img = _sample_plane(ct.array, ijk, order=1, cval=-1024.0).reshape(H.shape)
        ext = (hs[0] - STEP_MM / 2, hs[-1] + STEP_MM / 2, vs[0] - STEP_MM / 2,
               vs[-1] + STEP_MM / 2)
        ax.imshow(img, origin="lower", cmap="gray", vmin=WINDOW_HU[0], vmax=WINDOW_HU[1],
                  extent=ext, interpolation="bilinear")
        for mask_names, colour, _ in CONTOURS:
            prob = np.zeros(H.shape, np.float32)
            for mname in mask_names:
                if mname in anatomy.masks:
                    m = anatomy.masks[mname]
                    mijk = m.ras_to_ijk(world.reshape(-1, 3))
                    prob = np.maximum(prob, _sample_plane(
                        np.asarray(m.array, bool), mijk, order=1, cval=0.0).reshape(H.shape))
            if prob.max() > 0.5 > prob.min():
                ax.contour(H, V, prob, [0.5], colors=colour,
                           linewidths=1.4 if mask_names == ("sacrum",) else 1.0)
        body = _body_model_field(anatomy, world)
        if body is not None and body.max() > 0.0 > body.min():
            ax.contour(H, V, body, [0.0], colors=BODY_MODEL_COLOUR, linewidths=1.0,
                       linestyles="dashed")
        if idx == 5:  # the S1 frame in the midsagittal plane
            f = anatomy.frame
            for vec, col_, lab in ((f.cranial_ras, "red", "cranial"),
                                   (f.anterior_ras, "orange", "anterior")):
                q = origin + 25.0 * vec
                ax.annotate("", xy=(q[h], q[v]), xytext=(origin[h], origin[v]),
                            arrowprops={"arrowstyle": "->", "color": col_, "lw": 1.6},
                            zorder=6)
                ax.text(q[h], q[v], " " + lab, color=col_, fontsize=7, zorder=6)
            ep = origin + np.outer([-30.0, 30.0], f.anterior_ras)
            ax.plot(ep[:, h], ep[:, v], "--", color="red", lw=0.9, zorder=5)
        # radiological display: patient right (+x) on the left; sagittal: anterior on the left
        ax.set_xlim(ext[1], ext[0])
        ax.set_ylim(ext[2], ext[3])
        ax.set_aspect("equal")
        ax.apply_aspect()
        # landmarks: markers first (entry last, on top), then labels placed where free
        order = list(LANDMARK_STYLE)
        labels: list[tuple[str, float, float, tuple[float, float, float], bool]] = []
        taken = []
        for n in sorted(names, key=lambda n: (order.index(_kind_side(n)[0])
                                              if _kind_side(n)[0] in order else -1, n)):
            d = pts[n][normal] - pos
            if home[n] != idx and abs(d) > NEAR_MM:
                continue
            kind, side = _kind_side(n)
            marker, rgb, _ = LANDMARK_STYLE.get(kind, ("o", (1.0, 1.0, 1.0), kind))
            lm = anatomy.landmarks[n]
            ph, pv = float(pts[n][h]), float(pts[n][v])
            ms = MARKER_PT.get(kind, 8.0)
            ax.plot([ph], [pv], linestyle="none", marker=marker, ms=ms, mfc=rgb,
                    mec="white" if lm.supplied else "black", mew=1.6 if lm.supplied else 0.8,
                    zorder=10)
            cx, cy = ax.transData.transform((ph, pv))
            r_px = ms * DPI / 144  # marker half-width in pixels
            taken.append(Bbox.from_extents(cx - r_px, cy - r_px, cx + r_px, cy + r_px))
            text = _short_label(n)
            if abs(d) > 0.5:
                text += f" ({abs(d):.0f} mm {_DIRECTION[normal][0 if d > 0 else 1]})"
            # axial/coronal: labels away from the midline, except at the alae's lateral tips
            # (the image edges); sagittal: towards posterior
            to_left = h == 0 and side == ("left" if kind == "ala_lateral" else "right")
            labels.append((text, ph, pv, rgb, to_left))
            placements.append(Placement(n, idx, ph, pv, float(d), rgb))
        _place_labels(ax, labels, taken)
        neg, pos_word = _DIRECTION[h][1], _DIRECTION[h][0]
        for xy, txt in (((0.02, 0.5), pos_word), ((0.98, 0.5), neg),
                        ((0.5, 0.97), _DIRECTION[v][0]), ((0.5, 0.03), _DIRECTION[v][1])):
            ax.text(*xy, txt, transform=ax.transAxes, ha="center", va="center",
                    color="white", fontsize=11, fontweight="bold", zorder=12,
                    bbox={"boxstyle": "round,pad=0.2", "fc": "black", "ec": "none",
                          "alpha": 0.6})
        ax.set_title(f"[{idx + 1}] {ptitle}", fontsize=9.5)
        ax.set_xlabel(f"RAS {_AXIS_NAMES[h]} (mm)", fontsize=8)
        ax.set_ylabel(f"RAS {_AXIS_NAMES[v]} (mm)", fontsize=8)
        ax.tick_params(labelsize=7)
        panels.append(Panel(ptitle, normal, float(pos), h, v, ax))

    # legend (marker kinds present + contours) and the landmark table
    handles = [Line2D([], [], linestyle="none", marker=m, ms=8, mfc=rgb, mec="black",
                      label=txt)
               for kind, (m, rgb, txt) in LANDMARK_STYLE.items()
               if any(_kind_side(n)[0] == kind for n in names)]
    handles += [Line2D([], [], color=colour, lw=1.5, label=txt)
                for mask_names, colour, txt in CONTOURS
                if any(m in anatomy.masks for m in mask_names)]
    if _body_model_field(anatomy, origin[None, :]) is not None:
        handles.append(Line2D([], [], color=BODY_MODEL_COLOUR, lw=1.2, linestyle="dashed",
                              label="S1 body model (body loss)"))
    handles.append(Line2D([], [], linestyle="none", marker="o", ms=8, mfc="grey",
                          mec="white", mew=1.6, label="white rim: supplied by the user"))
    # the eighth slot (bottom right) holds the legend and the landmark table
    x0 = (left + 3 * (size + gap_x)) / fig_w
    y0 = (fig_h - top - 2 * size - gap_y) / fig_h
    fig.legend(handles=handles, loc="upper left", bbox_to_anchor=(x0, y0 + size / fig_h),
               ncol=2, fontsize=7.5, frameon=True, title="markers and contours",
               title_fontsize=8)
    rows = [f"{'landmark':<12s} {'RAS x, y, z (mm)':^23s} conf  {'':8s} panel"]
    for n in names:
        lm = anatomy.landmarks[n]
        p = pts[n]
        rows.append(f"{_short_label(n):<12s} ({p[0]:6.1f},{p[1]:6.1f},{p[2]:6.1f}) "
                    f"{lm.confidence:4.2f}  {'supplied' if lm.supplied else 'detected'} "
                    f"{home[n] + 1:3d}")
    missing = sorted(set(EXPECTED_LANDMARKS) - set(names))
    rows += (textwrap.wrap("not found: " + ", ".join(missing), 62) if missing
             else [f"all {len(EXPECTED_LANDMARKS)} landmarks found"])
    fig.text(x0, y0 + 0.56 * size / fig_h, "\n".join(rows), family="monospace",
             fontsize=7, va="top", color="black")
    head = (title or "alarscrew anatomy") + ": sacrum mask and S1 landmarks on CT, world RAS " \
        "mm, radiological view (patient right on the image left; sagittal: anterior left)"
    fig.text(0.5, 1.0 - 0.3 / fig_h, head, ha="center", va="top", fontsize=12,
             fontweight="bold")
    fig.text(0.5, 1.0 - 0.65 / fig_h, DISCLAIMER, ha="center", va="top", fontsize=9.5,
             color="darkred")
    fig.canvas.draw()  # fixes every transform (tests map RAS points to PNG pixels)
    return OverlayFigure(fig, tuple(panels), tuple(placements))


def render_overlay(anatomy: Anatomy, path: str | os.PathLike[str], *, force: bool = False,
                   title: str | None = None) -> Path:
    """Write the landmark overlay PNG (see the module docstring), atomically.

    Parameters
    ----------
    anatomy : Anatomy
    path : path-like
        Output PNG (:data:`FIGSIZE_IN` x :data:`DPI` pixels).
    force : bool
        Overwrite an existing file.
    title : str, optional
        First line of the figure title (e.g. the CT file name).

    Returns
    -------
    Path

    Raises
    ------
    OutputExistsError
        When ``path`` exists and ``force`` is False.
    """
    from alarscrew.io.atomic import check_overwrite

    check_overwrite(path, force=force)  # refuse before drawing
    ov = build_overlay(anatomy, title=title)
    with atomic_path(path, force=force) as tmp:
        ov.figure.savefig(tmp, dpi=DPI, format="png", metadata={"Software": None})
    return Path(path)

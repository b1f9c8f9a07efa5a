"""Static figures of the planning report (matplotlib, Agg): safe-length maps and screw slice views.

Slice views are oblique reformats through each screw: for each of the axial, sagittal and coronal
planes of the S1 frame, the plane through the screw's midpoint that contains the screw axis and is
closest to that anatomical plane (normal ``n - (n.d) d``). When the axis is nearly perpendicular to
the anatomical plane (``|n.d| > 0.95``) the plane itself is used and the screw shows in cross
section. The screw outline is the exact section of its cylinder by the displayed plane (zero level
of the cylinder's distance function), drawn on the CT resampled at :data:`PIXEL_MM`.
"""

from __future__ import annotations

import io
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from scipy import ndimage

from alarscrew.io.image import Image
from alarscrew.report.plan_data import ScrewGeometry
from alarscrew.spatial.frame import S1Frame

#: Pixel size (mm) of the reformatted slices: finer than any clinical CT, so figures stay sharp.
PIXEL_MM = 0.25
#: Half width of the field of view (mm) around the screw midpoint.
HALF_FOV_MM = 45.0
#: CT display window (HU): bone window.
WINDOW_HU = (-250.0, 1250.0)
NOMINAL_DEG = (30.0, 45.0)

# view name -> (plane normal, image-right axis, image-up axis, edge letters left/right/top/bottom)
_VIEWS: dict[str, tuple[str, str, str, tuple[str, str, str, str]]] = {
    "axial": ("cranial", "-right", "anterior", ("R", "L", "A", "P")),
    "sagittal": ("right", "-anterior", "cranial", ("A", "P", "S", "I")),
    "coronal": ("anterior", "-right", "cranial", ("R", "L", "S", "I")),
}


def _png(fig: plt.Figure, *, dpi: int, tight: bool = True) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight" if tight else None)
    plt.close(fig)
    return buf.getvalue()


def safe_length_map_png(side_name: str, side: dict[str, Any], *, dpi: int = 110) -> bytes | None:
    """Heat map of the safe length (mm) over transverse x sagittal angle for one side.

    The optimum (plan.json ``optimal`` angles) is marked with a star, the paper's nominal 30/45
    trajectory with a cross. Returns None when the side carries no ``safe_length_map``.
    """
    smap = side.get("safe_length_map")
    if not isinstance(smap, dict) or not smap.get("length_mm"):
        return None
    t = np.asarray(smap["transverse_deg"], dtype=float)
    s = np.asarray(smap["sagittal_deg"], dtype=float)
    z = np.array([[np.nan if v is None else float(v) for v in row] for row in smap["length_mm"]])
    fig, ax = plt.subplots(figsize=(5.2, 4.2))
    if z.shape != (s.size, t.size):
        raise ValueError(f"sides.{side_name}.safe_length_map: length_mm is {z.shape}, "
                         f"expected (sagittal {s.size}, transverse {t.size})")
    cmap = plt.get_cmap("viridis").with_extremes(bad="#d9d9d9")
    mesh = ax.pcolormesh(t, s, np.ma.masked_invalid(z), cmap=cmap, shading="nearest")
    fig.colorbar(mesh, ax=ax, label="safe length (mm)")
    opt = side.get("optimal")
    if isinstance(opt, dict) and opt.get("transverse_angle_deg") is not None:
        ax.plot(opt["transverse_angle_deg"], opt["sagittal_angle_deg"], marker="*", ms=16,
                mfc="#e31a1c", mec="white", ls="none", label="optimum")
    ax.plot(*NOMINAL_DEG, marker="X", ms=11, mfc="#ff7f00", mec="black", ls="none",
            label="nominal 30/45 (Fang 2022)")
    ax.set_xlabel("transverse angle (deg, + lateral)")
    ax.set_ylabel("sagittal angle (deg, + caudal)")
    ax.set_title(f"{side_name.capitalize()} side: safe length (grey = unsafe)")
    ax.legend(loc="upper right", fontsize=8, framealpha=0.85)
    return _png(fig, dpi=dpi)


def _axis(frame: S1Frame, name: str) -> np.ndarray:
    sign = -1.0 if name.startswith("-") else 1.0
    return sign * {"right": frame.right_ras, "anterior": frame.anterior_ras,
                   "cranial": frame.cranial_ras}[name.lstrip("-")]


def _plane_basis(frame: S1Frame, view: str, d: np.ndarray) -> tuple[np.ndarray, np.ndarray,
                                                                      bool]:
    n_name, h_name, v_name, _ = _VIEWS[view]
    n = _axis(frame, n_name)
    contains = abs(float(n @ d)) <= 0.95
    if contains:
        n = n - (n @ d) * d
        n /= np.linalg.norm(n)
    h = _axis(frame, h_name)
    h = h - (h @ n) * n
    h /= np.linalg.norm(h)
    v = np.cross(n, h)
    if v @ _axis(frame, v_name) < 0:
        v = -v
    return h, v, contains


def reformat(ct: Image, centre_ras_mm: np.ndarray, h: np.ndarray, v: np.ndarray, *,
             half_fov_mm: float = HALF_FOV_MM, pixel_mm: float = PIXEL_MM,
             order: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Sample ``ct`` on the plane ``centre + a h + b v`` (a, b in [-half_fov, half_fov] mm).

    Returns
    -------
    values : (N, N) ndarray
        Rows go from +v (top) to -v, columns from -h to +h; outside the scan is NaN.
    pts_ras_mm : (N, N, 3) ndarray
        World position of each pixel.
    """
    ax = np.arange(-half_fov_mm, half_fov_mm + 1e-9, pixel_mm)
    a, b = np.meshgrid(ax, ax[::-1])
    pts = centre_ras_mm + a[..., None] * h + b[..., None] * v
    ijk = ct.ras_to_ijk(pts)
    # sample only the sub-volume the plane passes through (a 0.8 mm scan has ~50 M voxels)
    shape = np.asarray(ct.shape)
    lo = np.clip(np.floor(ijk.reshape(-1, 3).min(axis=0)).astype(int) - 1, 0, shape)
    hi = np.clip(np.ceil(ijk.reshape(-1, 3).max(axis=0)).astype(int) + 2, 0, shape)
    if np.any(hi - lo < 1):
        return np.full(ijk.shape[:2], np.nan), pts
    sub = np.asarray(ct.array[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]], dtype=np.float32)
    local = np.moveaxis(ijk - lo, -1, 0)
    vals = ndimage.map_coordinates(sub, local, order=order, mode="nearest")
    # outside the scan (beyond half a voxel of its border) is NaN, as the docstring says
    outside = np.any((ijk < -0.5) | (ijk > shape - 0.5), axis=-1)
    vals[outside] = np.nan
    return vals, pts


def _cylinder_sdf(pts: np.ndarray, s: ScrewGeometry) -> np.ndarray:
    rel = pts - s.entry_ras_mm
    t = rel @ s.direction_ras
    radial = np.linalg.norm(rel - t[..., None] * s.direction_ras, axis=-1)
    return np.maximum.reduce([radial - s.radius_mm, -t, t - s.length_mm])


def screw_slices_png(ct: Image, sacrum: Image | None, screw: ScrewGeometry,
                     frame: S1Frame, *, title: str, dpi: int = 100) -> bytes:
    """Three oblique reformats (axial, sagittal, coronal) through one screw, outline drawn.

    Parameters
    ----------
    ct : Image
        The CT (HU).
    sacrum : Image or None
        Sacrum mask on the CT grid; its outline is drawn thin in cyan when given.
    screw : ScrewGeometry
    frame : S1Frame
        Defines the anatomical planes and the image orientation (letters on the edges).
    title : str
    dpi : int

    Returns
    -------
    bytes
        PNG.
    """
    mid = screw.entry_ras_mm + 0.5 * screw.length_mm * screw.direction_ras
    fig, axes = plt.subplots(1, 3, figsize=(13.5, 4.9), layout="constrained")
    extent = (-HALF_FOV_MM, HALF_FOV_MM, -HALF_FOV_MM, HALF_FOV_MM)
    color = "#33dd55" if screw.kind == "optimal" else "#ff9900"
    for ax, view in zip(axes, _VIEWS, strict=True):
        h, v, contains = _plane_basis(frame, view, screw.direction_ras)
        img, pts = reformat(ct, mid, h, v)
        ax.imshow(img, cmap="gray", vmin=WINDOW_HU[0], vmax=WINDOW_HU[1], extent=extent,
                  interpolation="nearest")
        if sacrum is not None:
            sm, _ = reformat(sacrum.with_array(sacrum.array.astype(np.float32)), mid, h, v,
                             order=1)
            if np.nanmax(np.nan_to_num(sm)) > 0.5:
                ax.contour(np.nan_to_num(sm), levels=[0.5], colors="#22c6e0", linewidths=0.7,
                           extent=extent, origin="upper")
        sdf = _cylinder_sdf(pts, screw)
        ax.contour(sdf, levels=[0.0], colors=color, linewidths=1.6, extent=extent,
                   origin="upper")
        if contains:
            e = (screw.entry_ras_mm - mid) @ np.stack([h, v]).T
            ax.plot(*e, marker="o", ms=5, mfc="white", mec=color, ls="none")
        left, right, top, bottom = _VIEWS[view][3]
        for txt, xy in ((left, (0.02, 0.5)), (right, (0.98, 0.5)), (top, (0.5, 0.97)),
                        (bottom, (0.5, 0.03))):
            ax.text(*xy, txt, transform=ax.transAxes, color="yellow", fontsize=10,
                    ha="center", va="center", fontweight="bold")
        kind = "oblique, contains the screw axis" if contains else "cross-section"
        ax.set_title(f"{view} ({kind})", fontsize=10)
        ax.set_xlabel("mm")
        ax.tick_params(labelsize=7)
    fig.suptitle(title, fontsize=12)
    return _png(fig, dpi=dpi, tight=False)

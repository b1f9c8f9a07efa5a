"""Figures of the planning module: the angle convention, and planned screws on the CT.

Both are drawn from the same functions the planner uses (``direction_from_angles``,
``screw_angles_deg``), so a figure that looks right is a check of the code, not only of the
drawing.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from alarscrew.io.atomic import atomic_path
from alarscrew.io.image import Image
from alarscrew.spatial.frame import S1Frame, direction_from_angles, screw_angles_deg


def draw_angle_convention(path: str | os.PathLike[str], *, transverse_deg: float = 30.0,
                          sagittal_deg: float = 45.0, force: bool = True) -> Path:
    """Two views of a right-side screw at (transverse, sagittal) in the S1 frame -> PNG.

    Left: projection on the endplate plane (lateral x anterior) showing the transverse angle.
    Right: the plane through the cranial axis and the screw, showing the sagittal angle below
    the endplate plane. The screw vector comes from :func:`direction_from_angles` and the
    angles printed are recomputed from it with :func:`screw_angles_deg`.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    frame = S1Frame(np.zeros(3), np.array([1.0, 0, 0]), np.array([0, 1.0, 0]),
                    np.array([0, 0, 1.0]))
    d = direction_from_angles(frame, "right", np.asarray(transverse_deg),
                              np.asarray(sagittal_deg))
    t_back, s_back = screw_angles_deg(d, frame, "right")
    lat, ant, cra = d @ frame.right_ras, d @ frame.anterior_ras, d @ frame.cranial_ras
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4.8))

    # endplate plane (top view): x = lateral (patient right for a right screw), y = anterior
    a1.axhline(0, color="0.7", lw=0.8)
    a1.axvline(0, color="0.7", lw=0.8)
    a1.annotate("", xy=(0, 1.1), xytext=(0, 0), arrowprops={"arrowstyle": "->", "lw": 2})
    a1.text(0.03, 1.12, "anterior", fontsize=10)
    a1.annotate("", xy=(1.1, 0), xytext=(0, 0), arrowprops={"arrowstyle": "->", "lw": 2})
    a1.text(0.9, -0.12, "lateral\n(+right on the right side)", fontsize=9)
    p = np.array([lat, ant]) / np.hypot(lat, ant)
    a1.annotate("", xy=tuple(p), xytext=(0, 0),
                arrowprops={"arrowstyle": "->", "lw": 2.5, "color": "tab:red"})
    arc = np.linspace(np.pi / 2, np.pi / 2 - np.radians(transverse_deg), 30)
    a1.plot(0.45 * np.cos(arc), 0.45 * np.sin(arc), color="tab:red")
    a1.text(-0.38, 0.5, f"transverse {float(t_back):.0f}\N{DEGREE SIGN}", color="tab:red")
    a1.set_title("S1 endplate plane, seen from cranial\n"
                 "transverse = atan2(p\u00b7lateral, p\u00b7anterior)")
    a1.set_xlim(-0.4, 1.3)
    a1.set_ylim(-0.3, 1.3)
    a1.set_aspect("equal")
    a1.axis("off")

    # vertical plane through the screw: x = horizontal component, y = cranial
    h = np.hypot(lat, ant)
    a2.axhline(0, color="0.5", lw=1.5)
    a2.text(0.75, 0.04, "endplate plane", color="0.4", fontsize=9)
    a2.annotate("", xy=(0, 1.0), xytext=(0, 0), arrowprops={"arrowstyle": "->", "lw": 2})
    a2.text(0.03, 1.0, "cranial (endplate normal)", fontsize=9)
    a2.annotate("", xy=(h, cra), xytext=(0, 0),
                arrowprops={"arrowstyle": "->", "lw": 2.5, "color": "tab:red"})
    arc = np.linspace(0, -np.radians(sagittal_deg), 30)
    a2.plot(0.45 * np.cos(arc), 0.45 * np.sin(arc), color="tab:red")
    a2.text(0.5, -0.28, f"sagittal {float(s_back):.0f}\N{DEGREE SIGN} (caudal)", color="tab:red")
    a2.set_title("plane of the screw and the cranial axis\nsagittal = asin(-d\u00b7cranial)")
    a2.set_xlim(-0.3, 1.3)
    a2.set_ylim(-1.0, 1.15)
    a2.set_aspect("equal")
    a2.axis("off")
    fig.suptitle(f"alarscrew screw angles (right side; d = direction_from_angles("
                 f"{transverse_deg:g}, {sagittal_deg:g}) = "
                 f"[{d[0]:.3f}, {d[1]:.3f}, {d[2]:.3f}] in (right, anterior, cranial))",
                 fontsize=9)
    fig.tight_layout()
    with atomic_path(path, force=force) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return Path(path)


def draw_plan_on_ct(ct: Image, plan: dict, path: str | os.PathLike[str], *,
                    force: bool = True) -> Path:
    """Nominal (dashed) and optimal (solid) screws of both sides on CT slabs -> PNG.

    Three maximum-intensity projections, axial, coronal and sagittal in voxel axes (the atlas
    and test CTs are RAS-aligned), each over the slab that contains all screws plus 4 mm.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    inv = np.linalg.inv(ct.affine)
    arr = np.asarray(ct.array, float)
    screws = []
    for side, color in (("left", "lime"), ("right", "orange")):
        for kind, style in (("nominal", "--"), ("nominal_axial", ":"), ("optimal", "-")):
            sc = (plan["sides"][side] or {}).get(kind)
            if sc is None:
                continue
            e, d = np.array(sc["entry_ras_mm"]), np.array(sc["direction_ras"])
            length = sc.get("screw_length_mm") or sc["length_mm"]
            ijk = np.array([e, e + length * d]) @ inv[:3, :3].T + inv[:3, 3]
            screws.append((ijk, color, style, f"{side} {kind}"))
    # each view projects the slab that holds the screws (their extent along the projection
    # axis, plus 4 mm), so the screws lie inside what is shown
    shape = np.array(arr.shape)
    if screws:
        pts = np.vstack([s[0] for s in screws])
        pad = np.rint(4.0 / ct.spacing_mm).astype(int)
        lo = np.clip(np.floor(pts.min(axis=0)).astype(int) - pad, 0, shape - 1)
        hi = np.clip(np.ceil(pts.max(axis=0)).astype(int) + pad + 1, 1, shape)
    else:
        lo, hi = np.zeros(3, int), shape
    views = [
        ("axial (i, j)", arr[:, :, lo[2]:hi[2]].max(2), (0, 1), 2),
        ("coronal (i, k)", arr[:, lo[1]:hi[1], :].max(1), (0, 2), 1),
        ("sagittal (j, k)", arr[lo[0]:hi[0]].max(0), (1, 2), 0),
    ]
    fig, axes = plt.subplots(1, 3, figsize=(15, 5))
    for ax, (title, img, (u, v), w) in zip(axes, views, strict=True):
        ax.imshow(img.T, origin="lower", cmap="gray", vmin=-200, vmax=1200)
        for ijk, color, style, label in screws:
            ax.plot(ijk[:, u], ijk[:, v], style, color=color, lw=2, label=label)
            ax.plot(ijk[0, u], ijk[0, v], "o", color=color, ms=4)
        thick = (hi[w] - lo[w]) * ct.spacing_mm[w]
        ax.set_title(f"{title}, MIP of a {thick:.0f} mm slab around the screws")
    axes[0].legend(loc="lower left", fontsize=8)
    fig.suptitle("planned screws (solid: optimal, recommended length; dashed: nominal 30/45 "
                 "in the S1 frame; dotted: nominal 30/45 from the axial plane)")
    fig.tight_layout()
    with atomic_path(path, force=force) as tmp:
        fig.savefig(tmp, dpi=90, format="png")
    plt.close(fig)
    return Path(path)

"""PNG overlay of the sacrum mask, the S1 frame and the landmarks on the CT (for checking)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from nibabel.orientations import apply_orientation, io_orientation

from alarscrew import DISCLAIMER
from alarscrew.anatomy.model import Anatomy
from alarscrew.io.atomic import atomic_path


def _canonical(anatomy: Anatomy) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """CT and sacrum in RAS axis order, the canonical affine, and other masks' union."""
    ct = anatomy.ct
    ornt = io_orientation(ct.affine)
    hu = apply_orientation(np.asarray(ct.array), ornt)
    sac = apply_orientation(np.asarray(anatomy.sacrum.array, bool), ornt)
    ilia = np.zeros(sac.shape, bool)
    for name in ("ilium_left", "ilium_right"):
        if name in anatomy.masks:
            ilia |= apply_orientation(np.asarray(anatomy.masks[name].array, bool), ornt)
    shape = np.asarray(ct.shape)
    m = np.zeros((4, 4))
    m[3, 3] = 1.0
    for in_ax, (out_ax, flip) in enumerate(ornt):
        m[in_ax, int(out_ax)] = 1.0 if flip > 0 else -1.0
        if flip < 0:
            m[in_ax, 3] = shape[in_ax] - 1
    return hu, sac, ilia, ct.affine @ m


def render_overlay(anatomy: Anatomy, path: str | os.PathLike[str], *, force: bool = False,
                   title: str | None = None) -> Path:
    """Write a PNG with axial, coronal and sagittal CT slices through the S1 frame origin.

    The sacrum mask is outlined in green, the watershed ilia (when detected) in cyan, the
    landmarks are marked (detected: yellow, supplied: magenta) with their names, and the
    frame's anterior and cranial axes are drawn from the origin.

    Parameters
    ----------
    anatomy : Anatomy
    path : path-like
        Output PNG.
    force : bool
        Overwrite an existing file.
    title : str, optional

    Returns
    -------
    Path
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    hu, sac, ilia, aff = _canonical(anatomy)
    sp = np.sqrt((aff[:3, :3] ** 2).sum(axis=0))
    inv = np.linalg.inv(aff)
    to_ijk = lambda p: np.asarray(p, float) @ inv[:3, :3].T + inv[:3, 3]  # noqa: E731
    o = to_ijk(anatomy.frame.origin_ras_mm)
    oi = np.clip(np.rint(o).astype(int), 0, np.asarray(hu.shape) - 1)
    # (name, slice taker, horizontal axis, vertical axis)
    views = [("axial (z = %.0f mm)", lambda a: a[:, :, oi[2]], 0, 1, 2),
             ("coronal (y = %.0f mm)", lambda a: a[:, oi[1], :], 0, 2, 1),
             ("sagittal (x = %.0f mm)", lambda a: a[oi[0], :, :], 1, 2, 0)]
    world_o = anatomy.frame.origin_ras_mm
    fig, axes = plt.subplots(1, 3, figsize=(18, 7))
    for ax, (name, take, h, v, cut) in zip(axes, views, strict=True):
        img = take(hu).T
        ext = (-0.5, img.shape[1] - 0.5, -0.5, img.shape[0] - 0.5)
        ax.imshow(img, origin="lower", cmap="gray", vmin=-200, vmax=1000, extent=ext,
                  aspect=sp[v] / sp[h], interpolation="nearest")
        if take(sac).any():
            ax.contour(take(sac).T.astype(float), [0.5], colors="lime", linewidths=1.2)
        if take(ilia).any():
            ax.contour(take(ilia).T.astype(float), [0.5], colors="cyan", linewidths=0.8)
        for lm in anatomy.landmarks.values():
            p = to_ijk(lm.xyz_ras_mm)
            near = abs(p[cut] - o[cut]) * sp[cut] <= 12.0
            color = "magenta" if lm.supplied else "yellow"
            ax.plot(p[h], p[v], "+" if near else ".", color=color, ms=10 if near else 4,
                    mew=1.5)
            if near:
                ax.annotate(lm.name, (p[h], p[v]), color=color, fontsize=7,
                            xytext=(3, 3), textcoords="offset points")
        for vec, col in ((anatomy.frame.anterior_ras, "orange"),
                         (anatomy.frame.cranial_ras, "red"), (anatomy.frame.right_ras, "blue")):
            q = to_ijk(anatomy.frame.origin_ras_mm + 30.0 * vec)
            ax.annotate("", xy=(q[h], q[v]), xytext=(o[h], o[v]),
                        arrowprops={"arrowstyle": "->", "color": col, "lw": 1.5})
        ax.set_title(name % world_o[cut], fontsize=10)
        ax.set_xlabel("RAS " + "xyz"[h] + " (voxels)")
        ax.set_ylabel("RAS " + "xyz"[v] + " (voxels)")
        lo = np.argwhere(take(sac))
        if len(lo):
            c = lo.mean(axis=0)
            half = max(70.0 / sp[h], 70.0 / sp[v])
            ax.set_xlim(max(c[0] - half, ext[0]), min(c[0] + half, ext[1]))
            ax.set_ylim(max(c[1] - half, ext[2]), min(c[1] + half, ext[3]))
    fig.suptitle((title or "alarscrew anatomy") + "  |  green: sacrum, cyan: ilia, "
                 "yellow +: landmarks, arrows: S1 frame (red cranial, orange anterior, "
                 "blue right)\n" + DISCLAIMER, fontsize=9)
    fig.tight_layout()
    with atomic_path(path, force=force) as tmp:
        fig.savefig(tmp, dpi=90, format="png")
    plt.close(fig)
    return Path(path)

"""Interactive 3D view of the plan (plotly Mesh3d): sacrum, L5, ilia, vessels and screws.

Surfaces come from :func:`skimage.measure.marching_cubes` on masks downsampled to about
:data:`MESH_VOXEL_MM` (block mean, iso-level 0.5), mapped to world RAS mm through the image
affine, so the screws (cylinders in world RAS mm) sit where the plan puts them.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import plotly.graph_objects as go
from skimage.measure import marching_cubes

from alarscrew.io.image import Image
from alarscrew.report.exports import SCREW_COLORS_RGB, screw_mesh
from alarscrew.report.plan_data import ScrewGeometry

#: Target voxel size (mm) of the meshed masks: keeps the report small and the view responsive.
MESH_VOXEL_MM = 2.0

STRUCTURE_STYLE: dict[str, tuple[str, float]] = {
    "sacrum": ("#e8dcc0", 0.45),
    "l5": ("#c9b98f", 0.35),
    "hip_left": ("#d8cbb0", 0.22),
    "hip_right": ("#d8cbb0", 0.22),
    "iliac_artery_left": ("#d62728", 0.8),
    "iliac_artery_right": ("#d62728", 0.8),
    "iliac_vena_left": ("#1f5fbf", 0.7),
    "iliac_vena_right": ("#1f5fbf", 0.7),
}


def mask_mesh_ras(mask: Image, *, voxel_mm: float = MESH_VOXEL_MM
                  ) -> tuple[np.ndarray, np.ndarray] | None:
    """Surface of a bool mask in world RAS mm.

    Parameters
    ----------
    mask : Image
        Bool (or 0/1) mask.
    voxel_mm : float
        Target voxel size after block-mean downsampling (per axis factor
        ``max(1, round(voxel_mm / spacing))``).

    Returns
    -------
    (verts_ras_mm (V, 3), faces (F, 3)) or None when the mask is empty.
    """
    arr = np.asarray(mask.array) > 0
    if not arr.any():
        return None
    # bounding box from per-axis projections (np.argwhere on a 50 M-voxel mask costs seconds)
    spans = [np.flatnonzero(arr.any(axis=tuple(a for a in range(3) if a != ax)))
             for ax in range(3)]
    lo = np.maximum(np.array([s[0] for s in spans]) - 1, 0)
    hi = np.array([s[-1] for s in spans]) + 2
    sub = arr[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]].astype(np.float32)
    f = np.maximum(1, np.rint(voxel_mm / mask.spacing_mm)).astype(int)
    pad = (-np.asarray(sub.shape)) % f
    sub = np.pad(sub, [(0, p) for p in pad])
    blocks = sub.reshape(sub.shape[0] // f[0], f[0], sub.shape[1] // f[1], f[1],
                         sub.shape[2] // f[2], f[2]).mean(axis=(1, 3, 5))
    blocks = np.pad(blocks, 1)  # closed surfaces at the crop border
    if blocks.max() <= 0.5:
        return None
    verts, faces, _, _ = marching_cubes(blocks, level=0.5)
    # block index b covers voxels b*f .. b*f+f-1: its centre is b*f + (f-1)/2 (minus the pad)
    ijk = (verts - 1.0) * f + (f - 1) / 2.0 + lo
    return mask.ijk_to_ras(ijk), faces.astype(np.int32)


def _mesh_trace(verts: np.ndarray, faces: np.ndarray, *, name: str, color: str,
                opacity: float) -> go.Mesh3d:
    v = np.round(verts, 2)
    return go.Mesh3d(x=v[:, 0], y=v[:, 1], z=v[:, 2], i=faces[:, 0], j=faces[:, 1],
                     k=faces[:, 2], name=name, color=color, opacity=opacity,
                     showlegend=True, flatshading=False, hoverinfo="name",
                     lighting={"ambient": 0.45, "diffuse": 0.8, "specular": 0.15})


def plan_figure(masks: Mapping[str, Image], screws: tuple[ScrewGeometry, ...], *,
                voxel_mm: float = MESH_VOXEL_MM) -> go.Figure:
    """The plotly figure of the 3D view (world RAS mm axes).

    Parameters
    ----------
    masks : mapping of structure name -> Image
        Names as in :data:`STRUCTURE_STYLE` (others are drawn grey).
    screws : tuple of ScrewGeometry
    voxel_mm : float
        Mesh resolution.
    """
    fig = go.Figure()
    for name, mask in masks.items():
        mesh = mask_mesh_ras(mask, voxel_mm=voxel_mm)
        if mesh is None:
            continue
        color, opacity = STRUCTURE_STYLE.get(name, ("#aaaaaa", 0.3))
        fig.add_trace(_mesh_trace(*mesh, name=name.replace("_", " "), color=color,
                                  opacity=opacity))
    for s in screws:
        m = screw_mesh(s, sections=24)
        rgb = SCREW_COLORS_RGB[s.kind]
        color = "#{:02x}{:02x}{:02x}".format(*(int(255 * c) for c in rgb))
        fig.add_trace(_mesh_trace(np.asarray(m.vertices), np.asarray(m.faces),
                                  name=f"screw {s.side} {s.kind} ({s.diameter_mm:.1f} x "
                                       f"{s.length_mm:.0f} mm)", color=color, opacity=1.0))
    fig.update_layout(
        scene={"aspectmode": "data",
               "xaxis": {"title": "R (mm)"}, "yaxis": {"title": "A (mm)"},
               "zaxis": {"title": "S (mm)"},
               # look from posterior-superior-right, as at the operating table (prone)
               "camera": {"eye": {"x": 0.5, "y": -1.6, "z": 0.9}, "up": {"x": 0, "y": 0, "z": 1}}},
        margin={"l": 0, "r": 0, "t": 30, "b": 0}, height=640,
        legend={"itemsizing": "constant", "bgcolor": "rgba(255,255,255,0.7)", "x": 0.01, "y": 0.99,
                "xanchor": "left", "yanchor": "top"},
        paper_bgcolor="white",
    )
    return fig


def plan_figure_html(fig: go.Figure, *, div_id: str = "scene3d-plot") -> str:
    """HTML fragment with plotly.js inlined (works offline; no CDN, no MathJax)."""
    return fig.to_html(full_html=False, include_plotlyjs=True, include_mathjax=False,
                       div_id=div_id, config={"displaylogo": False, "responsive": True})

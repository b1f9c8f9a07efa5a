"""A deliberately simple S1 frame and entry landmarks from a sacrum mask, for planning tests.

Independent of ``alarscrew.anatomy`` (written in parallel): planning is tested on real sacrum
shapes with a frame derived here in a few transparent steps.

1. Midline x = median x of the sacrum voxels.
2. S1 body = sacrum voxels within 12 mm of the midline, in the cranial 30 mm, anterior 40 %.
3. Superior endplate = the top voxel of each (x, y) column of the body; a least-squares plane
   z = a x + b y + c through them gives the cranial normal; the origin is their centroid.
4. ``{side}.entry`` = first bone met when walking anteriorly from 60 mm behind the origin,
   22 mm lateral and 10 mm caudal (S1 frame): the dorsal surface next to the S1 superior
   articular process.
"""

from __future__ import annotations

import numpy as np

from alarscrew.spatial.frame import S1Frame


def frame_and_landmarks(mask: np.ndarray, affine: np.ndarray
                        ) -> tuple[S1Frame, dict[str, np.ndarray]]:
    """S1 frame and ``{side}.entry`` landmarks from a bool sacrum mask (RAS-aligned grid)."""
    ijk = np.argwhere(mask)
    xyz = ijk @ affine[:3, :3].T + affine[:3, 3]
    xc = float(np.median(xyz[:, 0]))
    mid = np.abs(xyz[:, 0] - xc) < 12.0
    top = xyz[mid, 2].max()
    body = mid & (xyz[:, 2] > top - 30.0)
    body &= xyz[:, 1] > np.percentile(xyz[body, 1], 60)
    pts = xyz[body]
    keys = np.round(pts[:, :2], 3)
    order = np.lexsort((-pts[:, 2], keys[:, 1], keys[:, 0]))
    _, first = np.unique(keys[order], axis=0, return_index=True)
    surf = pts[order][first]
    a = np.c_[surf[:, 0], surf[:, 1], np.ones(len(surf))]
    coef, *_ = np.linalg.lstsq(a, surf[:, 2], rcond=None)
    cranial = np.array([-coef[0], -coef[1], 1.0])
    origin = surf.mean(axis=0)
    frame = S1Frame.from_axes(origin, cranial_ras=cranial, anterior_ras=np.array([0, 1.0, 0]))
    lms: dict[str, np.ndarray] = {}
    inv = np.linalg.inv(affine)
    for side in ("left", "right"):
        lat = frame.lateral_ras(side)
        start = origin + 22.0 * lat - 10.0 * frame.cranial_ras - 60.0 * frame.anterior_ras
        s = np.arange(0.0, 120.0, 0.25)
        p = start + s[:, None] * frame.anterior_ras
        idx = np.round(p @ inv[:3, :3].T + inv[:3, 3]).astype(int)
        ok = np.all((idx >= 0) & (idx < mask.shape), axis=1)
        hit = np.zeros(len(s), bool)
        hit[ok] = mask[tuple(idx[ok].T)]
        if hit.any():
            lms[f"{side}.entry"] = p[int(np.argmax(hit))]
    lms["endplate_center"] = origin
    return frame, lms

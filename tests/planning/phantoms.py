"""Analytic phantoms for planning tests: boxes and cylinders of 'bone' with known geometry.

Voxel centres sit at half-integer mm so that the mask surfaces (voxel faces) fall on whole mm:
a slab of voxels with centres 0.5..29.5 mm has its faces at exactly 0 and 30 mm.
"""

from __future__ import annotations

import numpy as np

from alarscrew.io.image import Image
from alarscrew.planning.context import PlanningContext, build_context
from alarscrew.spatial.frame import S1Frame

IDENTITY_FRAME = S1Frame(np.zeros(3), np.array([1.0, 0, 0]), np.array([0, 1.0, 0]),
                         np.array([0, 0, 1.0]))


def grid(shape=(120, 120, 120), *, spacing=(1.0, 1.0, 1.0), origin=(-59.5, -59.5, -59.5),
         rotation: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Affine and the RAS coordinates (I, J, K, 3) of every voxel centre."""
    aff = np.eye(4)
    r = np.eye(3) if rotation is None else np.asarray(rotation, float)
    aff[:3, :3] = r * np.asarray(spacing, float)
    aff[:3, 3] = origin
    ijk = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), -1)
    return aff, ijk @ aff[:3, :3].T + aff[:3, 3]


def context_from_mask(mask: np.ndarray, affine: np.ndarray, *, frame: S1Frame = IDENTITY_FRAME,
                      extra: dict[str, np.ndarray] | None = None,
                      landmarks: dict[str, np.ndarray] | None = None) -> PlanningContext:
    """A PlanningContext whose CT is 220 HU in the mask and 40 HU outside."""
    ct = Image(np.where(mask, 220.0, 40.0), affine, source="phantom")
    masks = {"sacrum": ct.with_array(mask, is_label=True)}
    for k, v in (extra or {}).items():
        masks[k] = ct.with_array(v, is_label=True)
    return build_context(ct, masks, frame, landmarks or {}, pad_mm=20.0)

"""seam_depth_hu on analytic plates: a joint space between two cortices in any orientation.

Reference by construction: two 1000 HU slabs with a gap of 0 HU between them. A gap narrower
than twice the probe reach is "deep" by the full 1000 HU whatever the slab orientation (axis,
face-diagonal, body-diagonal normals: the 13 line probes cover them); a gap wider than that, and
bone itself, are not deep (<= 0).
"""

from __future__ import annotations

import numpy as np
import pytest

from alarscrew.anatomy.refine import seam_depth_hu

SP = np.array([1.0, 1.0, 1.0])


def _slabs(normal: tuple[int, int, int], gap_vox: float) -> tuple[np.ndarray, np.ndarray]:
    n = np.asarray(normal, float)
    n /= np.linalg.norm(n)
    g = np.indices((21, 21, 21)).reshape(3, -1).T - 10.0
    s = (g @ n).reshape(21, 21, 21)  # signed distance from the centre plane (voxels)
    half = gap_vox / 2.0
    bone = (np.abs(s) > half) & (np.abs(s) <= half + 4.0)
    gap = np.abs(s) <= half - 0.25
    return np.where(bone, 1000.0, 0.0).astype(np.float32), gap


@pytest.mark.parametrize("normal", [(1, 0, 0), (0, 1, 1), (1, 1, 1), (1, -1, 0)])
def test_thin_gap_is_deep_in_any_orientation(normal) -> None:
    hu, gap = _slabs(normal, 1.2)
    depth = seam_depth_hu(hu, SP)
    inner = np.zeros_like(gap)
    inner[5:16, 5:16, 5:16] = True  # away from the array border
    assert gap[inner].any()
    assert depth[gap & inner].min() == pytest.approx(1000.0)
    assert depth[(hu > 0) & inner].max() <= 0.0


def test_wide_gap_is_not_a_seam() -> None:
    hu, gap = _slabs((1, 0, 0), 7.0)  # 7 mm apart, probes reach 2 mm on each side
    depth = seam_depth_hu(hu, SP)
    centre = gap & (np.abs(np.indices(hu.shape)[0] - 10) <= 1)
    assert depth[centre].max() <= 0.0

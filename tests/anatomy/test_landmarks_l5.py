"""Argument checks of :func:`alarscrew.anatomy.landmarks.detect_landmarks`."""

from __future__ import annotations

import numpy as np
import pytest

from alarscrew.anatomy.landmarks import detect_landmarks
from alarscrew.anatomy.s1frame import FrameVolume
from alarscrew.errors import GeometryError
from alarscrew.spatial.frame import S1Frame


def test_l5_mask_off_the_frame_grid_is_refused() -> None:
    axes = [np.arange(-5.0, 6.0)] * 3
    frame = S1Frame(np.zeros(3), np.array([1.0, 0, 0]), np.array([0, 1.0, 0]),
                    np.array([0, 0, 1.0]))
    fv = FrameVolume(np.zeros((11, 11, 11), bool), *axes, frame)
    with pytest.raises(GeometryError, match=r"l5: mask shape \(4, 4, 4\) differs"):
        detect_landmarks(fv, endplate_rms_mm=0.5, l5=np.zeros((4, 4, 4), bool))

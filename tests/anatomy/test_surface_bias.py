"""Landmarks on a mask whose surface lies outside the bone (``surface_bias_mm``).

Provenance: the analytic S1 + S2 column of ``test_bodyloss._column`` (elliptic S1 body,
semi-axes ``A_MM`` x ``B_MM``), grown by ``dilate_mm`` on every side as a CT threshold mask is
(about half a voxel outside the bone), measured in the frame whose origin is on the bony
endplate. The promontory (anterior edge of the endplate in the midline) is then at frame
``y = B_MM`` on the bone and at ``B_MM + dilate_mm`` on the dilated surface. Tolerance 0.3 mm:
the 0.25 mm ray step and the 0.7 mm voxelisation of the mask.
"""

from __future__ import annotations

import numpy as np
import pytest

from alarscrew.anatomy.landmarks import detect_landmarks
from alarscrew.anatomy.s1frame import MaskSampler, frame_volume
from alarscrew.spatial.frame import S1Frame
from tests.anatomy.test_bodyloss import B_MM, _column, _tilted_frame

TOL_MM = 0.3


@pytest.mark.parametrize("dilate_mm", [0.5, 1.5])
def test_promontory_moves_onto_the_bone(dilate_mm: float) -> None:
    frame = _tilted_frame()
    seg_frame = S1Frame(frame.origin_ras_mm + dilate_mm * frame.cranial_ras, frame.right_ras,
                        frame.anterior_ras, frame.cranial_ras)
    mask, _ = _column(seg_frame, dilate_mm=dilate_mm)
    fv = frame_volume(MaskSampler(np.asarray(mask.array, bool), mask.affine), frame)
    y = {}
    for bias in (0.0, dilate_mm):
        found = detect_landmarks(fv, endplate_rms_mm=0.0, surface_bias_mm=bias)
        y[bias] = frame.to_frame_mm(found["promontory"].xyz_ras_mm[None])[0, 1]
    assert y[0.0] == pytest.approx(B_MM + dilate_mm, abs=TOL_MM)
    assert y[dilate_mm] == pytest.approx(B_MM, abs=TOL_MM)

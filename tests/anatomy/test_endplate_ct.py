"""CT fit of the S1 endplate plane (alarscrew.anatomy.s1frame.refine_endplate_ct).

Reference: the phantom's analytic S1 frame (origin at the endplate centre, cranial axis
normal to the flat endplate; alarscrew.phantom). The fit starts from that frame tipped and
lifted as a voxel-staircase mask fit leaves it, and must come back.
"""

from __future__ import annotations

import numpy as np
import pytest

from alarscrew.anatomy.s1frame import refine_endplate_ct
from alarscrew.errors import GeometryError
from alarscrew.phantom import make_phantom
from alarscrew.spatial.frame import S1Frame, unit


def _angle_deg(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.degrees(np.arccos(np.clip(a @ b, -1.0, 1.0))))


def _tipped(frame: S1Frame, tip_deg: float, lift_mm: float) -> S1Frame:
    """The frame turned ``tip_deg`` in its sagittal plane and moved ``lift_mm`` cranially."""
    th = np.radians(tip_deg)
    cranial = unit(np.cos(th) * frame.cranial_ras + np.sin(th) * frame.anterior_ras)
    anterior = unit(np.cos(th) * frame.anterior_ras - np.sin(th) * frame.cranial_ras)
    return S1Frame.from_axes(frame.origin_ras_mm + lift_mm * frame.cranial_ras,
                             cranial_ras=cranial, anterior_ras=anterior)


@pytest.mark.parametrize(("params", "tip_deg"), [
    ({"voxel_mm": 3.0, "pelvic_tilt_deg": -15.0}, 2.5),
    ({"voxel_mm": 3.0, "noise_hu": 40.0}, -2.5),
    ({"voxel_mm": 1.0}, 3.0),
])
def test_plane_from_tipped_start(params: dict, tip_deg: float) -> None:
    ph = make_phantom(**params)
    truth = S1Frame.from_dict(ph.truth["frame"])
    vox = float(np.mean(ph.ct.spacing_mm))
    # a mask fit: half a voxel above the bone, tipped by the staircase (2.3 deg measured at
    # 3 mm); the endplate is 32 mm deep (alarscrew.phantom._anatomy.S1_BODY_SEMI_Y_MM)
    start = _tipped(truth, tip_deg, 0.5 * vox)
    frame, info = refine_endplate_ct(ph.ct.array, ph.ct.affine, start, {"depth_mm": 32.0})
    assert info["ct_plate"] is not None, info["ct_plate_refused"]
    # tolerance: 1.5 deg, against the 2 deg of issue 3 (measured 0.03-1.03 deg here, the
    # largest with 40 HU noise at 3 mm)
    assert _angle_deg(frame.cranial_ras, truth.cranial_ras) < 1.5
    # the frame stays symmetric: the right axis is the start's
    assert _angle_deg(frame.right_ras, start.right_ras) < 1e-6
    # origin on the bone: within 0.6 mm of the true endplate along the cranial axis
    # (the model's 1 mm plate against the phantom's 1.2 mm cortex; measured -0.2..-0.5 mm)
    height_mm = float((frame.origin_ras_mm - truth.origin_ras_mm) @ truth.cranial_ras)
    assert abs(height_mm) < 0.6


def test_refused_without_a_plate() -> None:
    ph = make_phantom(voxel_mm=3.0)
    truth = S1Frame.from_dict(ph.truth["frame"])
    flat = np.full(ph.ct.shape, 40, np.int16)  # soft tissue only: nothing to fit
    frame, info = refine_endplate_ct(flat, ph.ct.affine, truth, {"depth_mm": 32.0})
    assert info["ct_plate"] is None
    assert "cortical plate" in info["ct_plate_refused"]
    assert frame is truth


def test_bad_input() -> None:
    frame = S1Frame.from_axes(np.zeros(3), cranial_ras=np.array([0.0, 0.0, 1.0]),
                              anterior_ras=np.array([0.0, 1.0, 0.0]))
    with pytest.raises(GeometryError, match="3D CT array"):
        refine_endplate_ct(np.zeros((4, 4)), np.eye(4), frame, {"depth_mm": 32.0})

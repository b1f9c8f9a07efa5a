"""Checks of :func:`alarscrew.anatomy.landmarks.detect_landmarks`: arguments, and the
ala_lateral definition on an analytic block."""

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


def test_ala_lateral_on_the_mid_ala_ray_of_an_oblique_block() -> None:
    """``ala_lateral`` is where the lateral ray from the pedicle x, midway in y between the
    pedicle and the anterior alar cortex, leaves the sacrum (landmarks module docstring).

    Analytic block in the S1 frame (1 mm grid): bone where ``|x| <= 50 + 0.4 (y + 10)``,
    -35 <= y <= 15, -30 <= z <= 0, with a canal x in [-12, 12], y in [-30, -20]. By hand: the
    canal walls give the pedicle at x = +-(12 + 7) = +-19, y = (-25 - 20) / 2 = -22.5; the
    anterior cortex is at y = 15 (+-0.5 mm voxel boundary), so the ray runs at y = -3.75 and
    leaves the block at |x| = 50 + 0.4 * 6.25 = 52.5 mm. Tolerance 1 mm: the mask's surface lies
    within half a voxel of the analytic one, the anterior cortex's y moves the ray by half of
    that (0.2 mm along x through the 0.4 slope).
    """
    xs, ys, zs = np.arange(-70.0, 71.0), np.arange(-45.0, 26.0), np.arange(-40.0, 11.0)
    x, y, z = np.meshgrid(xs, ys, zs, indexing="ij")
    bone = ((np.abs(x) <= 50.0 + 0.4 * (y + 10.0)) & (y >= -35.0) & (y <= 15.0)
            & (z >= -30.0) & (z <= 0.0))
    canal = (np.abs(x) <= 12.0) & (y >= -30.0) & (y <= -20.0)
    frame = S1Frame(np.zeros(3), np.array([1.0, 0, 0]), np.array([0, 1.0, 0]),
                    np.array([0, 0, 1.0]))
    fv = FrameVolume(bone & ~canal, xs, ys, zs, frame)
    found = detect_landmarks(fv, endplate_rms_mm=0.5)
    for side, s in (("left", -1.0), ("right", 1.0)):
        ped = found[f"{side}.pedicle"].xyz_ras_mm
        np.testing.assert_allclose(ped, [s * 19.0, -22.5, -10.0], atol=1.0)
        p = found[f"{side}.ala_lateral"].xyz_ras_mm
        y_ray = 0.5 * (ped[1] + found[f"{side}.ala_anterior"].xyz_ras_mm[1])
        assert p[1] == pytest.approx(y_ray, abs=1e-9)
        assert p[2] == pytest.approx(-10.0, abs=1e-9)
        assert s * p[0] == pytest.approx(52.5, abs=1.0)

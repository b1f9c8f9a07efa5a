"""``ala_lateral`` on masks with holes: the lateral ray's outermost exit of the pedicle-level
section (:func:`alarscrew.anatomy.landmarks.detect_landmarks`, module docstring).

Provenance of the geometry: the oblique analytic block of ``test_landmarks_l5.py`` (bone where
``|x| <= 50 + 0.4 (y + 10)``, -35 <= y <= 15, -30 <= z <= 0, canal x in [-12, 12],
y in [-30, -20]; frame = world). By hand there: pedicles at x = +-19, y = -22.5, the lateral ray
at y = -3.75, leaving the block at |x| = 50 + 0.4 * 6.25 = 52.5 mm.
"""

from __future__ import annotations

import numpy as np
import pytest

from alarscrew.anatomy.landmarks import detect_landmarks, ray_crossing
from alarscrew.anatomy.s1frame import FrameVolume
from alarscrew.spatial.frame import S1Frame

FRAME = S1Frame(np.zeros(3), np.array([1.0, 0, 0]), np.array([0, 1.0, 0]),
                np.array([0, 0, 1.0]))
XS, YS, ZS = np.arange(-70.0, 71.0), np.arange(-45.0, 26.0), np.arange(-40.0, 11.0)


def _block() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    x, y, z = np.meshgrid(XS, YS, ZS, indexing="ij")
    bone = ((np.abs(x) <= 50.0 + 0.4 * (y + 10.0)) & (y >= -35.0) & (y <= 15.0)
            & (z >= -30.0) & (z <= 0.0))
    canal = (np.abs(x) <= 12.0) & (y >= -30.0) & (y <= -20.0)
    return bone & ~canal, x, y, z


def test_ray_crossing_first_and_last_exit_on_two_segments() -> None:
    """Bone at x in [0, 10] and [15, 30] (1 mm grid): the 0.5 level of the trilinear mask lies
    half a voxel outside each segment, so the first exit is at x = 10.5 and the last at 30.5
    (exact: the interpolation is linear between the ray's 0.25 mm samples)."""
    xs = np.arange(-5.0, 41.0)
    mask = np.zeros((xs.size, 3, 3), bool)
    mask[((xs >= 0) & (xs <= 10)) | ((xs >= 15) & (xs <= 30)), :, :] = True
    fv = FrameVolume(mask, xs, np.arange(-1.0, 2.0), np.arange(-1.0, 2.0), FRAME)
    vol = mask.astype(np.float32)
    start, d = np.array([2.0, 0.0, 0.0]), np.array([1.0, 0.0, 0.0])
    assert ray_crossing(vol, fv, start, d)[0] == pytest.approx(10.5, abs=1e-9)
    assert ray_crossing(vol, fv, start, d, last=True)[0] == pytest.approx(30.5, abs=1e-9)
    # entries are not affected by ``last``; no exit within max_mm gives None
    assert ray_crossing(vol, fv, np.array([-4.0, 0, 0]), d, exit_=False)[0] == pytest.approx(
        -0.5, abs=1e-9)
    assert ray_crossing(vol, fv, start, d, max_mm=5.0, last=True) is None


@pytest.mark.parametrize("bias_mm", [0.0, 1.5])
def test_ala_lateral_passes_marrow_holes_and_dorsal_notches(bias_mm: float) -> None:
    """Left: a closed marrow hole x in [-40, -30], y in [-8, 0], z in [-14, -6] on the ray (a
    CT-only mask's fatty alar marrow); right: a notch from the dorsal surface up to y = -2 over
    x in [25, 33] (the ray grazing a ragged dorsal edge). The ray's first exits are at the
    holes (x = -29.5 / 24.5, checked), the ala's lateral face stays at |x| = 52.5 - bias
    (tolerance 1 mm as in test_landmarks_l5: half a voxel of surface, 0.2 mm from the ray's y).
    """
    bone, x, y, z = _block()
    hole = (x >= -40) & (x <= -30) & (y >= -8) & (y <= 0) & (z >= -14) & (z <= -6)
    notch = (x >= 25) & (x <= 33) & (y <= -2)
    fv = FrameVolume(bone & ~hole & ~notch, XS, YS, ZS, FRAME)
    found = detect_landmarks(fv, endplate_rms_mm=0.5, surface_bias_mm=bias_mm)
    vol = fv.mask.astype(np.float32)
    for side, s, first_x in (("left", -1.0, -29.5), ("right", 1.0, 24.5)):
        p = found[f"{side}.ala_lateral"].xyz_ras_mm
        ped = found[f"{side}.pedicle"].xyz_ras_mm
        first = ray_crossing(vol, fv, np.array([ped[0], p[1], -10.0]), np.array([s, 0, 0]),
                             max_mm=90.0)
        assert first[0] == pytest.approx(first_x, abs=0.5)
        assert s * p[0] == pytest.approx(52.5 - bias_mm, abs=1.0)
        assert p[2] == pytest.approx(-10.0, abs=1e-9)
        assert "outermost exit" in found[f"{side}.ala_lateral"].method


def test_ala_lateral_ignores_fragments_the_section_does_not_connect() -> None:
    """A separate bone fragment lateral of the right ala on the ray (x in [57, 62],
    -12 <= y <= -4, at least 4 mm from the block; e.g. a remnant of the SI-joint cut) is not
    the ala's face: ala_lateral stays at 52.5 mm (tolerance 1 mm, as above); on the left,
    without a fragment, it is the same by symmetry."""
    bone, x, y, z = _block()
    frag = (x >= 57) & (x <= 62) & (y >= -12) & (y <= -4) & (z >= -20) & (z <= 0)
    fv = FrameVolume(bone | frag, XS, YS, ZS, FRAME)
    found = detect_landmarks(fv, endplate_rms_mm=0.5)
    right = found["right.ala_lateral"].xyz_ras_mm
    left = found["left.ala_lateral"].xyz_ras_mm
    assert right[0] == pytest.approx(52.5, abs=1.0)
    assert right[0] == pytest.approx(-left[0], abs=1e-9)

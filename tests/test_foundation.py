"""Foundation: the Image type, atomic writes, the frame/angle convention, the CLI shell."""

from __future__ import annotations

import numpy as np
import pytest

from alarscrew.errors import GeometryError, ImageError, OutputExistsError
from alarscrew.io.atomic import atomic_dir, write_text
from alarscrew.io.image import Image
from alarscrew.spatial.frame import (
    S1Frame,
    direction_from_angles,
    scanner_angles_deg,
    screw_angles_deg,
)
from tests.conftest import run_cli


def test_image_refuses_2d_and_bad_affine():
    with pytest.raises(ImageError, match="3D"):
        Image(np.zeros((4, 4)), np.eye(4), source="x.nii")
    with pytest.raises(GeometryError, match="singular"):
        Image(np.zeros((2, 2, 2)), np.diag([1.0, 0.0, 1.0, 1.0]))
    with pytest.raises(ImageError, match="absurd voxel spacing"):
        Image(np.zeros((2, 2, 2)), np.diag([1000.0, 1.0, 1.0, 1.0]))


def test_image_round_trip_world_voxel():
    aff = np.array([[0, 0, 2.0, 10], [-0.5, 0, 0, 20], [0, 3.0, 0, -5], [0, 0, 0, 1]])
    img = Image(np.zeros((5, 6, 7)), aff)
    ijk = np.array([[1.0, 2.0, 3.0], [4.0, 0.0, 6.0]])
    np.testing.assert_allclose(img.ras_to_ijk(img.ijk_to_ras(ijk)), ijk, atol=1e-12)
    np.testing.assert_allclose(img.spacing_mm, [0.5, 3.0, 2.0])
    assert img.voxel_volume_mm3 == pytest.approx(3.0)


def test_atomic_write_keeps_target_on_failure(tmp_path):
    target = tmp_path / "out.txt"
    write_text(target, "first")
    with pytest.raises(OutputExistsError):
        write_text(target, "second", force=False)
    assert target.read_text() == "first"

    def write_half_then_fail() -> None:
        with atomic_dir(tmp_path / "d") as d:
            (d / "half.json").write_text("{")
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        write_half_then_fail()
    assert not (tmp_path / "d").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


@pytest.mark.parametrize("side", ["left", "right"])
def test_angle_round_trip_and_nominal(side):
    # A tilted frame: rotate 20 deg about x (pelvic tilt) and 10 deg about z.
    rx = np.radians(20)
    rz = np.radians(10)
    rot_x = np.array([[1, 0, 0], [0, np.cos(rx), -np.sin(rx)], [0, np.sin(rx), np.cos(rx)]])
    rot_z = np.array([[np.cos(rz), -np.sin(rz), 0], [np.sin(rz), np.cos(rz), 0], [0, 0, 1]])
    r = rot_z @ rot_x
    frame = S1Frame(np.array([1.0, 2, 3]), r[:, 0], r[:, 1], r[:, 2])
    t = np.array([0.0, 30.0, 59.5])
    s = np.array([0.0, 45.0, 74.0])
    d = direction_from_angles(frame, side, t, s)
    np.testing.assert_allclose(np.linalg.norm(d, axis=-1), 1.0)
    t2, s2 = screw_angles_deg(d, frame, side)
    np.testing.assert_allclose(t2, t, atol=1e-9)
    np.testing.assert_allclose(s2, s, atol=1e-9)


def test_nominal_direction_in_scanner_frame_by_hand():
    # Hand computation: 30 deg lateral, 45 deg caudal on the right side of an axis-aligned
    # frame: d = (cos45 sin30, cos45 cos30, -sin45) = (0.35355, 0.61237, -0.70711).
    frame = S1Frame(np.zeros(3), np.array([1.0, 0, 0]), np.array([0, 1.0, 0]),
                    np.array([0, 0, 1.0]))
    d = direction_from_angles(frame, "right", 30.0, 45.0)
    np.testing.assert_allclose(d, [0.35355339, 0.61237244, -0.70710678], atol=1e-8)
    t, s = scanner_angles_deg(np.array([-0.35355339, 0.61237244, -0.70710678]), "left")
    assert float(t) == pytest.approx(30.0, abs=1e-6)
    assert float(s) == pytest.approx(45.0, abs=1e-6)


def test_frame_refuses_left_handed_axes():
    with pytest.raises(GeometryError, match="right-handed"):
        S1Frame(np.zeros(3), np.array([-1.0, 0, 0]), np.array([0, 1.0, 0]),
                np.array([0, 0, 1.0]))


def test_cli_version(capsys):
    code, out, _ = run_cli(["--version"], capsys)
    assert code == 0
    assert out.startswith("alarscrew ")


def test_atomic_outputs_get_ordinary_permissions(tmp_path):
    import os
    import stat

    mask = os.umask(0o022)
    try:
        f = write_text(tmp_path / "plan.json", "{}")
        with atomic_dir(tmp_path / "report") as d:
            (d / "x.txt").write_text("x")
    finally:
        os.umask(mask)
    assert stat.S_IMODE(f.stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "report").stat().st_mode) == 0o755

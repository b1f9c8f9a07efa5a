"""NRRD reading/writing in 3D Slicer's convention.

Independent references: SimpleITK/ITK's NRRD IO (the library 3D Slicer uses to read and write
.nrrd volumes: LPS ``space``, ``space directions`` as column vectors per axis, ``space origin``),
and NIfTI copies read by nibabel.
"""

from __future__ import annotations

from pathlib import Path

import nrrd
import numpy as np
import pytest
import SimpleITK as sitk

from alarscrew.errors import ImageError
from alarscrew.io import LPS_TO_RAS, load_image, save_nrrd
from alarscrew.io.image import Image


def _sitk_affine_ras(s: sitk.Image) -> np.ndarray:
    aff = np.eye(4)
    aff[:3, :3] = np.asarray(s.GetDirection()).reshape(3, 3) * np.asarray(s.GetSpacing())
    aff[:3, 3] = s.GetOrigin()
    return LPS_TO_RAS @ aff


def _oblique(flip: tuple[int, int, int], angle_deg: float) -> np.ndarray:
    a = np.radians(angle_deg)
    rot = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    aff = np.eye(4)
    aff[:3, :3] = rot @ np.diag(np.asarray(flip, float) * [0.7, 0.9, 2.0])
    aff[:3, 3] = [12.5, -40.0, 220.0]
    return aff


def test_real_ct_nrrd_roundtrip_and_itk_agrees(real_ct_dir: Path, tmp_path: Path) -> None:
    ct = load_image(real_ct_dir / "ct.nii.gz")
    path = save_nrrd(ct, tmp_path / "ct.nrrd")
    back = load_image(path)
    np.testing.assert_array_equal(back.array, ct.array)
    np.testing.assert_allclose(back.affine, ct.affine, atol=1e-3)  # brief: 1e-3 mm
    # ITK (as in 3D Slicer) reads our file to the same world geometry and voxel values
    s = sitk.ReadImage(str(path))
    np.testing.assert_allclose(_sitk_affine_ras(s), ct.affine, atol=1e-6)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(s).transpose(2, 1, 0), ct.array)
    hdr = nrrd.read_header(str(path))
    assert hdr["space"] == "left-posterior-superior"
    assert hdr["kinds"] == ["domain", "domain", "domain"]


def test_nrrd_written_by_itk_reads_like_the_nifti(real_ct_dir: Path, tmp_path: Path) -> None:
    src = real_ct_dir / "ct.nii.gz"
    out = tmp_path / "itk.nrrd"
    sitk.WriteImage(sitk.ReadImage(str(src)), str(out), True)
    a, b = load_image(src), load_image(out)
    np.testing.assert_array_equal(a.array, b.array)
    np.testing.assert_allclose(a.affine, b.affine, atol=1e-3)


@pytest.mark.parametrize("flip", [(1, 1, 1), (-1, 1, 1), (1, -1, -1)])
@pytest.mark.parametrize("angle_deg", [0.0, 17.0])
def test_oblique_and_flipped_grids_roundtrip(tmp_path: Path, flip: tuple[int, int, int],
                                              angle_deg: float) -> None:
    rng = np.random.default_rng(3)
    img = Image(rng.normal(0, 300, (9, 8, 6)).astype(np.float32), _oblique(flip, angle_deg))
    path = save_nrrd(img, tmp_path / "o.nrrd")
    back = load_image(path)
    np.testing.assert_array_equal(back.array, img.array)
    np.testing.assert_allclose(back.affine, img.affine, atol=1e-9)
    np.testing.assert_allclose(_sitk_affine_ras(sitk.ReadImage(str(path))), img.affine,
                               atol=1e-5)


def test_ras_space_header_is_taken_as_is(tmp_path: Path) -> None:
    dirs = np.diag([0.5, 0.5, 1.5])
    hdr = {"space": "right-anterior-superior", "space directions": dirs,
           "space origin": np.array([1.0, 2.0, 3.0])}
    nrrd.write(str(tmp_path / "ras.nrrd"), np.zeros((4, 5, 6), np.int16), hdr)
    img = load_image(tmp_path / "ras.nrrd")
    expected = np.eye(4)
    expected[:3, :3] = dirs
    expected[:3, 3] = [1.0, 2.0, 3.0]
    np.testing.assert_allclose(img.affine, expected)


def test_label_nrrd_float_whole_numbers(tmp_path: Path) -> None:
    arr = np.zeros((4, 4, 4))
    arr[1, 2, 3] = 92.0
    hdr = {"space": "left-posterior-superior", "space directions": np.eye(3)}
    nrrd.write(str(tmp_path / "lab.nrrd"), arr, hdr)
    lab = load_image(tmp_path / "lab.nrrd", is_label=True)
    assert lab.array.dtype == np.uint8  # smallest integer type holding code 92
    assert lab.array[1, 2, 3] == 92


@pytest.mark.parametrize(
    ("header", "shape", "match"),
    [
        ({"space": "scanner-xyz", "space directions": np.eye(3)}, (4, 4, 4),
         "unsupported NRRD space 'scanner-xyz'"),
        ({}, (4, 4, 4), "no 'space' field"),
        ({"space": "left-posterior-superior", "space directions": np.eye(2)}, (4, 4),
         "3D volume"),
    ],
)
def test_bad_nrrd_headers_are_refused(tmp_path: Path, header: dict, shape: tuple,
                                      match: str) -> None:
    path = tmp_path / "bad.nrrd"
    nrrd.write(str(path), np.zeros(shape, np.int16), header)
    with pytest.raises(ImageError, match=match):
        load_image(path)


def test_corrupt_and_empty_nrrd(tmp_path: Path) -> None:
    bad = tmp_path / "corrupt.nrrd"
    bad.write_bytes(b"NRRD0004\ntype: short\ndimension: banana\n\n")
    with pytest.raises(ImageError, match=r"corrupt\.nrrd: not a readable NRRD"):
        load_image(bad)
    empty = tmp_path / "empty.nrrd"
    empty.write_bytes(b"")
    with pytest.raises(ImageError, match="empty"):
        load_image(empty)


def test_detached_header_nhdr(tmp_path: Path) -> None:
    arr = np.arange(4 * 5 * 6, dtype=np.int16).reshape(4, 5, 6) - 1000
    hdr = {"space": "left-posterior-superior", "space directions": np.diag([0.5, 0.6, 2.0]),
           "space origin": np.array([10.0, 20.0, 30.0])}
    nrrd.write(str(tmp_path / "vol.nhdr"), arr, hdr, detached_header=True)
    img = load_image(tmp_path / "vol.nhdr")
    np.testing.assert_array_equal(img.array, arr)
    # LPS (10, 20, 30) is RAS (-10, -20, 30); LPS axis steps flip sign in x and y
    np.testing.assert_allclose(img.ijk_to_ras(np.array([1.0, 1.0, 1.0])), [-10.5, -20.6, 32.0])

"""load_image / load_ct on NIfTI: real scans, the CT plausibility rule, and bad input.

Independent references: SimpleITK (ITK's NIfTI reader, LPS) for the affine; the SOURCE.md of
the shared data for shapes and spacing; synthetic volumes with known intensities for the CT rule.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk

from alarscrew.errors import ImageError
from alarscrew.io import LPS_TO_RAS, load_ct, load_image, save_image
from alarscrew.io.ct import check_ct_intensities
from alarscrew.io.image import Image
from alarscrew.io.nifti import save_nifti


def _sitk_affine_ras(path: Path) -> np.ndarray:
    """Voxel -> RAS affine from SimpleITK's origin/spacing/direction (LPS)."""
    s = sitk.ReadImage(str(path))
    aff = np.eye(4)
    aff[:3, :3] = np.asarray(s.GetDirection()).reshape(3, 3) * np.asarray(s.GetSpacing())
    aff[:3, 3] = s.GetOrigin()
    return LPS_TO_RAS @ aff


def _write_nifti(path: Path, array: np.ndarray, affine: np.ndarray | None = None) -> Path:
    nib.save(nib.Nifti1Image(array, np.diag([1.0, 1.0, 1.0, 1.0]) if affine is None else affine),
             str(path))
    return path


def _mr_like(shape: tuple[int, int, int] = (40, 40, 30), seed: int = 0) -> np.ndarray:
    """T1-like MR: background 0, fat 900, muscle 350, cortical bone dark 60, marrow 700."""
    rng = np.random.default_rng(seed)
    i, j, _k = np.indices(shape)
    c = (np.asarray(shape) - 1) / 2
    r = np.sqrt(((i - c[0]) / 18) ** 2 + ((j - c[1]) / 18) ** 2)
    vol = np.zeros(shape)
    vol[r < 1.0] = 900.0  # subcutaneous fat
    vol[r < 0.85] = 350.0  # muscle
    vol[r < 0.3] = 60.0  # cortical bone (dark on MR)
    vol[r < 0.25] = 700.0  # marrow
    vol += np.abs(rng.normal(0, 5, shape))  # Rician-like: never negative
    return vol.astype(np.float32)


def test_real_ct_shape_spacing_and_affine(real_ct_dir: Path) -> None:
    path = real_ct_dir / "ct.nii.gz"
    ct = load_ct(path)
    # SOURCE.md: 122 x 101 x 112 voxels, 3.0 mm isotropic, RAS
    assert ct.shape == (122, 101, 112)
    np.testing.assert_allclose(ct.spacing_mm, [3.0, 3.0, 3.0], atol=1e-6)
    # ITK reads NIfTI independently of nibabel; agreement to 1e-4 mm (float32 header storage)
    np.testing.assert_allclose(ct.affine, _sitk_affine_ras(path), atol=1e-4)
    assert ct.meta["format"] == "nifti"
    assert ct.meta["hu_summary"].air_fat_fraction > 0.1  # an abdomen CT is full of air and fat


def test_real_ct_values_match_raw_nibabel(real_ct_dir: Path) -> None:
    path = real_ct_dir / "ct.nii.gz"
    raw = np.asarray(nib.load(str(path)).dataobj)
    np.testing.assert_array_equal(load_image(path).array, raw)


def test_atlas_synthetic_ct_without_air_is_accepted(atlas_dir: Path) -> None:
    # the atlas CT holds only 40 / 220 / 750 HU (SOURCE.md): no air, but bone and no MR background
    ct = load_ct(atlas_dir / "s02_ct.nii.gz")
    assert ct.meta["hu_summary"].air_fat_fraction == 0.0


def test_mr_like_volume_is_refused(tmp_path: Path) -> None:
    path = _write_nifti(tmp_path / "t1.nii.gz", _mr_like())
    with pytest.raises(ImageError, match=r"t1\.nii\.gz.*does not look like a CT"):
        load_ct(path)
    # ... but load_image (no CT rule) reads it
    assert load_image(path).shape == (40, 40, 30)


def test_mr_like_crop_without_background_and_bone_range_is_refused() -> None:
    vol = _mr_like()[12:28, 12:28, :]  # inside the body: no zero background
    vol = vol / vol.max() * 250.0  # scaled so that no value reaches bone range
    with pytest.raises(ImageError, match="no bone-range values"):
        check_ct_intensities(vol, source="crop")


def test_ct_without_rescale_intercept_is_refused(real_ct_dir: Path) -> None:
    raw = load_image(real_ct_dir / "ct.nii.gz").array
    shifted = np.clip(raw + 1024, 0, None)  # as stored before RescaleIntercept -1024
    with pytest.raises(ImageError, match="rescale intercept"):
        check_ct_intensities(shifted, source="raw")


@pytest.mark.parametrize(
    ("array", "match"),
    [
        (np.full((5, 5, 5), 40.0), "constant"),
        (np.where(np.indices((5, 5, 5))[0] == 2, np.nan, 0.0), "NaN"),
        (np.linspace(0, 60000, 125).reshape(5, 5, 5), "outside any Hounsfield"),
        (np.ones((5, 5, 5), bool), "boolean mask"),
    ],
)
def test_ct_rule_refuses_non_hu(array: np.ndarray, match: str) -> None:
    with pytest.raises(ImageError, match=match):
        check_ct_intensities(array, source="x")


def test_missing_empty_corrupt_files(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="not found"):
        load_image(tmp_path / "nope.nii.gz")
    empty = tmp_path / "empty.nii.gz"
    empty.write_bytes(b"")
    with pytest.raises(ImageError, match=r"empty\.nii\.gz: file is empty"):
        load_ct(empty)
    corrupt = tmp_path / "corrupt.nii.gz"
    corrupt.write_bytes(gzip.compress(b"not a nifti header" * 50))
    with pytest.raises(ImageError, match=r"corrupt\.nii\.gz: not a readable NIfTI"):
        load_ct(corrupt)
    truncated = tmp_path / "truncated.nii.gz"
    good = _write_nifti(tmp_path / "good.nii.gz", np.zeros((30, 30, 30), np.int16))
    truncated.write_bytes(good.read_bytes()[:200])
    with pytest.raises(ImageError, match="truncated"):
        load_ct(truncated)


def test_2d_and_absurd_spacing_are_refused(tmp_path: Path) -> None:
    flat = _write_nifti(tmp_path / "slice.nii", np.zeros((64, 64), np.int16))
    with pytest.raises(ImageError, match=r"slice\.nii.*3D"):
        load_ct(flat)
    huge = _write_nifti(tmp_path / "huge.nii.gz", np.zeros((8, 8, 8), np.int16),
                        np.diag([1.0, 1.0, 500.0, 1.0]))
    with pytest.raises(ImageError, match=r"huge\.nii\.gz: absurd voxel spacing"):
        load_ct(huge)


def test_unknown_format_single_dicom_file_and_series_on_nifti(tmp_path: Path,
                                                               real_ct_dir: Path) -> None:
    other = tmp_path / "scan.mha"
    other.write_bytes(b"x")
    with pytest.raises(ImageError, match=r"unknown image format.*\.nrrd"):
        load_image(other)
    one = tmp_path / "IM0001.dcm"
    one.write_bytes(b"x")
    with pytest.raises(ImageError, match="single DICOM file"):
        load_image(one)
    with pytest.raises(ImageError, match="only applies to DICOM"):
        load_image(real_ct_dir / "ct.nii.gz", series=3)


def test_float_label_map_must_hold_whole_numbers(tmp_path: Path) -> None:
    arr = np.zeros((6, 6, 6))
    arr[2, 3, 4] = 25.0
    ok = load_image(_write_nifti(tmp_path / "ok.nii.gz", arr), is_label=True)
    assert ok.array.dtype == np.uint8  # smallest integer type holding code 25
    assert ok.array[2, 3, 4] == 25
    arr[1, 1, 1] = 2.5
    with pytest.raises(ImageError, match=r"non-integer value 2\.5 at voxel \(1, 1, 1\)"):
        load_image(_write_nifti(tmp_path / "bad.nii.gz", arr), is_label=True)


def test_save_nifti_roundtrip_oblique(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    ang = np.radians(25.0)
    rot = np.array([[np.cos(ang), -np.sin(ang), 0], [np.sin(ang), np.cos(ang), 0], [0, 0, 1]])
    aff = np.eye(4)
    aff[:3, :3] = rot @ np.diag([0.8, 0.8, 2.5])
    aff[:3, 3] = [-100.0, 20.0, 300.0]
    img = Image(rng.integers(-1000, 1500, (10, 12, 7)).astype(np.int16), aff)
    back = load_image(save_nifti(img, tmp_path / "o.nii.gz"))
    np.testing.assert_array_equal(back.array, img.array)
    np.testing.assert_allclose(back.affine, aff, atol=1e-4)


def test_nifti_without_sform_or_qform_is_refused(tmp_path: Path) -> None:
    nii = nib.Nifti1Image(np.zeros((8, 8, 8), np.int16), None)
    nii.set_sform(None, code=0)
    nii.set_qform(None, code=0)
    nib.save(nii, str(tmp_path / "noorient.nii.gz"))
    with pytest.raises(ImageError, match="neither an sform nor a qform"):
        load_image(tmp_path / "noorient.nii.gz")


def test_ct_given_as_label_map_is_refused(real_ct_dir: Path) -> None:
    with pytest.raises(ImageError, match="is this a CT rather than a label map"):
        load_image(real_ct_dir / "ct.nii.gz", is_label=True)


@pytest.mark.parametrize("name", ["copy.nii.gz", "copy.nii", "copy.nrrd"])
def test_save_image_by_name_roundtrip_and_no_overwrite(real_ct_dir: Path, tmp_path: Path,
                                                       name: str) -> None:
    ct = load_ct(real_ct_dir / "ct.nii.gz")
    path = save_image(ct, tmp_path / name)
    back = load_ct(path)
    np.testing.assert_array_equal(back.array, ct.array)
    np.testing.assert_allclose(back.affine, ct.affine, atol=1e-3)
    with pytest.raises(FileExistsError, match="--force"):
        save_image(ct, path)
    with pytest.raises(ImageError, match="cannot tell the output format"):
        save_image(ct, tmp_path / "copy.mha")

"""DICOM series folders: real series vs ITK, NIfTI/NRRD/DICOM copies agree, selection, refusals.

Independent references: SimpleITK's GDCM series reader (sorting, rescale, LPS geometry) on the
real 20-slice series and on our written copies; the NIfTI original read by nibabel.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from alarscrew.errors import ImageError
from alarscrew.io import (
    LPS_TO_RAS,
    list_dicom_series,
    load_ct,
    load_image,
    save_nrrd,
    write_dicom_series,
)
from alarscrew.io.image import Image

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"


def _itk_series(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
    s = reader.Execute()
    aff = np.eye(4)
    aff[:3, :3] = np.asarray(s.GetDirection()).reshape(3, 3) * np.asarray(s.GetSpacing())
    aff[:3, 3] = s.GetOrigin()
    return sitk.GetArrayFromImage(s).transpose(2, 1, 0), LPS_TO_RAS @ aff


def _small_ct(shape: tuple[int, int, int] = (16, 12, 6), seed: int = 0) -> Image:
    rng = np.random.default_rng(seed)
    arr = rng.integers(-1000, 1600, shape).astype(np.int16)
    aff = np.diag([-0.8, -0.8, 2.5, 1.0])
    aff[:3, 3] = [60.0, 40.0, -300.0]
    return Image(arr, aff)


def _edit(folder: Path, fn: Callable[[pydicom.Dataset], object]) -> None:
    for f in sorted(folder.iterdir()):
        ds = pydicom.dcmread(f)
        fn(ds)
        ds.save_as(f)


def test_real_series_matches_itk(real_ct_dir: Path) -> None:
    img = load_ct(real_ct_dir / "dicom")
    ref_arr, ref_aff = _itk_series(real_ct_dir / "dicom")
    assert img.shape == (512, 512, 20)
    np.testing.assert_array_equal(img.array, ref_arr)  # same sorting and RescaleIntercept -1024
    np.testing.assert_allclose(img.affine, ref_aff, atol=1e-4)
    # positions are 2 mm apart along z (ImagePositionPatient); pixels 0.977 mm (SOURCE.md)
    np.testing.assert_allclose(img.spacing_mm, [0.9765625, 0.9765625, 2.0], atol=1e-6)
    assert img.meta["modality"] == "CT"
    assert int(img.array.min()) == -1024  # stored 0 + intercept -1024


def test_nifti_nrrd_dicom_copies_agree(real_ct_dir: Path, tmp_path: Path) -> None:
    ct = load_ct(real_ct_dir / "ct.nii.gz")
    save_nrrd(ct, tmp_path / "ct.nrrd")
    write_dicom_series(ct, tmp_path / "dcm")
    for copy in (load_ct(tmp_path / "ct.nrrd"), load_ct(tmp_path / "dcm")):
        np.testing.assert_array_equal(copy.array, ct.array)
        np.testing.assert_allclose(copy.affine, ct.affine, atol=1e-3)  # brief: 1e-3 mm
    arr, aff = _itk_series(tmp_path / "dcm")  # ITK reads our DICOM copy the same way
    np.testing.assert_array_equal(arr, ct.array)
    np.testing.assert_allclose(aff, ct.affine, atol=1e-3)


def test_written_files_are_deidentified_ct_image_storage(tmp_path: Path) -> None:
    write_dicom_series(_small_ct(), tmp_path / "dcm")
    files = sorted((tmp_path / "dcm").iterdir())
    assert len(files) == 6
    uids = set()
    for f in files:
        ds = pydicom.dcmread(f)  # raises on a file without preamble/meta
        assert ds.file_meta.MediaStorageSOPClassUID == CT_IMAGE_STORAGE
        assert ds.SOPClassUID == CT_IMAGE_STORAGE
        assert ds.Modality == "CT"
        assert ds.PatientName == ""
        assert ds.PatientID == ""
        assert ds.PatientIdentityRemoved == "YES"
        uids.add(ds.SOPInstanceUID)
    assert len(uids) == 6


@pytest.mark.parametrize("angle_deg", [0.0, 30.0])
def test_shuffled_files_oblique_and_float_rescale(tmp_path: Path, angle_deg: float) -> None:
    a = np.radians(angle_deg)
    rot = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])
    aff = np.eye(4)
    aff[:3, :3] = rot @ np.diag([0.7, 0.7, 1.25])
    aff[:3, 3] = [-20.0, 15.0, 80.0]
    rng = np.random.default_rng(5)
    arr = rng.normal(0.0, 400.0, (10, 9, 7)).astype(np.float32)  # fractional HU: slope != 1
    img = Image(arr, aff)
    order = rng.permutation(7)
    write_dicom_series(img, tmp_path / "dcm", slice_order=order)
    back = load_image(tmp_path / "dcm")
    np.testing.assert_allclose(back.affine, aff, atol=1e-5)
    slope = float(pydicom.dcmread(next((tmp_path / "dcm").iterdir())).RescaleSlope)
    assert slope != 1.0
    np.testing.assert_allclose(back.array, arr, atol=slope / 2 + 1e-4)  # quantisation


def test_several_series_listed_without_identifiers(tmp_path: Path,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    folder = tmp_path / "mixed"
    folder.mkdir()
    for number in (3, 7):
        write_dicom_series(_small_ct(seed=number), tmp_path / f"s{number}", series_number=number)
        _edit(tmp_path / f"s{number}", lambda ds: setattr(ds, "PatientName", "DOE^JANE") or
              setattr(ds, "PatientID", "ID-998877") or setattr(ds, "PatientBirthDate", "19510203"))
        for f in (tmp_path / f"s{number}").iterdir():
            shutil.copy(f, folder / f"{number}_{f.name}")
    (folder / "README.txt").write_text("not dicom")
    caplog.set_level(logging.DEBUG)
    with pytest.raises(ImageError, match="2 series") as err:
        load_image(folder)
    msg = str(err.value)
    assert "SeriesNumber 3" in msg
    assert "SeriesNumber 7" in msg
    series = list_dicom_series(folder)
    for secret in ("DOE", "ID-998877", "19510203", series[0].uid, series[1].uid):
        assert secret not in msg
        assert secret not in caplog.text
    by_number = load_image(folder, series=7)
    np.testing.assert_array_equal(by_number.array, _small_ct(seed=7).array)
    by_uid = load_image(folder, series=series[0].uid)
    np.testing.assert_array_equal(by_uid.array, _small_ct(seed=3).array)
    assert "DOE" not in repr(by_uid.meta)
    with pytest.raises(ImageError, match="no series matches '5'"):
        load_image(folder, series=5)


def test_uneven_spacing_is_refused(tmp_path: Path) -> None:
    write_dicom_series(_small_ct(), tmp_path / "dcm")
    (tmp_path / "dcm" / "slice_0003.dcm").unlink()  # a missing slice
    with pytest.raises(ImageError, match=r"uneven slice spacing \(found 2\.5 mm x3, 5 mm x1\)"):
        load_image(tmp_path / "dcm")


def test_gantry_tilt_is_refused(tmp_path: Path) -> None:
    write_dicom_series(_small_ct(), tmp_path / "dcm")

    def tilt(ds: pydicom.Dataset) -> None:  # shift each slice along y: 15 deg tilt
        x, y, z = (float(v) for v in ds.ImagePositionPatient)
        k = int(ds.InstanceNumber) - 1
        ds.ImagePositionPatient = [x, y + k * 2.5 * np.tan(np.radians(15.0)), z]

    _edit(tmp_path / "dcm", tilt)
    with pytest.raises(ImageError, match=r"gantry tilt detected.*15\.0 deg.*dcm2niix"):
        load_image(tmp_path / "dcm")


def test_duplicate_positions_single_slice_and_mixed_orientation(tmp_path: Path) -> None:
    write_dicom_series(_small_ct(), tmp_path / "dup")
    shutil.copy(tmp_path / "dup" / "slice_0002.dcm", tmp_path / "dup" / "copy.dcm")
    with pytest.raises(ImageError, match="share position"):
        load_image(tmp_path / "dup")
    write_dicom_series(_small_ct(shape=(8, 8, 1)), tmp_path / "one")
    with pytest.raises(ImageError, match="single slice: a 2D image"):
        load_image(tmp_path / "one")
    write_dicom_series(_small_ct(), tmp_path / "mixed")
    ds = pydicom.dcmread(tmp_path / "mixed" / "slice_0000.dcm")
    ds.ImageOrientationPatient = [1, 0, 0, 0, 0, -1]
    ds.save_as(tmp_path / "mixed" / "slice_0000.dcm")
    with pytest.raises(ImageError, match="different ImageOrientationPatient"):
        load_image(tmp_path / "mixed")


def test_not_dicom_and_mr_modality(tmp_path: Path) -> None:
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "a.txt").write_text("hello")
    with pytest.raises(ImageError, match="no DICOM image files"):
        load_image(tmp_path / "junk")
    write_dicom_series(_small_ct(), tmp_path / "mr")
    _edit(tmp_path / "mr", lambda ds: setattr(ds, "Modality", "MR"))
    with pytest.raises(ImageError, match="Modality is 'MR', expected 'CT'"):
        load_ct(tmp_path / "mr")


def test_writer_refuses_existing_folder(tmp_path: Path) -> None:
    write_dicom_series(_small_ct(), tmp_path / "dcm")
    with pytest.raises(FileExistsError, match="--force"):
        write_dicom_series(_small_ct(), tmp_path / "dcm")


def test_nested_export_folders_are_searched(tmp_path: Path) -> None:
    write_dicom_series(_small_ct(), tmp_path / "export" / "PATIENT" / "STUDY" / "SERIES1")
    img = load_image(tmp_path / "export")
    np.testing.assert_array_equal(img.array, _small_ct().array)

"""DICOM series folders through pydicom: list series, read one as an :class:`Image`, write copies.

Reading (:func:`load_dicom_series`)
    Files are grouped by SeriesInstanceUID; with several series one must be chosen (by UID or
    SeriesNumber). Slices are sorted by their position along the slice normal
    ``n = row_cosine x column_cosine`` (from ImageOrientationPatient), RescaleSlope/Intercept are
    applied per slice, and the voxel -> LPS affine is built from ImagePositionPatient,
    ImageOrientationPatient and PixelSpacing, then turned into RAS through
    :data:`~alarscrew.io.orientation.LPS_TO_RAS`.

Refused, with what was found and how to fix it (no silent resampling, so that every voxel
keeps the scanner's geometry):

* gantry tilt -- consecutive slice origins shifted off the slice normal by more than
  ``TILT_TOLERANCE_MM``; fix: de-tilt the series (dcm2niix does; or resample in 3D Slicer);
* uneven slice spacing -- spacings differing by more than ``SPACING_TOLERANCE_MM`` (a missing
  slice, or mixed reconstructions); fix: export a complete, evenly spaced series;
* duplicate positions, mixed orientations, mixed matrix sizes or pixel spacings.

Patient identifiers (PatientName, PatientID, PatientBirthDate...) are never read into messages,
logs or ``Image.meta``.

Writing (:func:`write_dicom_series`) makes de-identified, synthetic CT Image Storage files so
that tests can compare DICOM, NIfTI and NRRD copies of one scan.
"""

from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from alarscrew.errors import ImageError
from alarscrew.io.atomic import atomic_dir
from alarscrew.io.image import Image
from alarscrew.io.nifti import labels_to_int
from alarscrew.io.orientation import lps_to_ras_affine, ras_to_lps_affine

#: Largest off-normal shift (mm) between consecutive slice origins before a series is
#: declared gantry-tilted.
TILT_TOLERANCE_MM = 0.01
#: Largest difference (mm) between slice spacings before a series is declared uneven.
SPACING_TOLERANCE_MM = 0.01
#: Largest difference between direction cosines of two slices of one series.
ORIENTATION_TOLERANCE = 1e-4

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
_NO_UID = "(no SeriesInstanceUID)"


@dataclass(frozen=True)
class DicomSeries:
    """One series found in a folder (no patient identifiers are kept).

    Attributes
    ----------
    uid : str
        SeriesInstanceUID (empty when the files lack it).
    number : int or None
        SeriesNumber.
    description : str
        SeriesDescription.
    modality : str
        Modality (CT, MR...).
    files : tuple of Path
        The files of the series, unsorted.
    """

    uid: str
    number: int | None
    description: str
    modality: str
    files: tuple[Path, ...]

    def summary(self) -> str:
        """One line without identifiers: number, modality, slice count, description."""
        num = "no SeriesNumber" if self.number is None else f"SeriesNumber {self.number}"
        desc = f" '{self.description}'" if self.description else ""
        return f"{num}: {self.modality or '?'} {len(self.files)} files{desc}"


def _pydicom() -> ModuleType:
    """pydicom, imported on first use (it is slow to import)."""
    import pydicom

    return pydicom


def _candidate_files(folder: Path) -> list[Path]:
    """Files under ``folder``, subfolders included (PACS exports nest them), hidden ones and
    DICOMDIR excluded."""
    return sorted(f for f in folder.rglob("*")
                  if f.is_file() and not any(part.startswith(".") for part in
                                             f.relative_to(folder).parts)
                  and f.name.upper() != "DICOMDIR")


def list_dicom_series(folder: str | os.PathLike[str]) -> list[DicomSeries]:
    """List the image series in a folder (headers only; non-DICOM files are skipped).

    Raises
    ------
    ImageError
        When the folder does not exist or holds no DICOM image file.
    """
    pydicom = _pydicom()
    d = Path(folder)
    if not d.is_dir():
        raise ImageError("DICOM folder not found", path=str(d))
    groups: dict[str, dict] = {}
    for f in _candidate_files(d):
        try:
            ds = pydicom.dcmread(f, stop_before_pixels=True)
        except Exception:  # not DICOM (README, thumbnails, raw files without preamble): skip
            continue
        if "ImagePositionPatient" not in ds and "Rows" not in ds:
            continue  # not an image (structured report, presentation state...)
        uid = str(ds.get("SeriesInstanceUID", "") or "")
        g = groups.setdefault(uid, {"files": [], "number": None, "desc": "", "mod": ""})
        g["files"].append(f)
        num = ds.get("SeriesNumber")
        if g["number"] is None and num not in (None, ""):
            g["number"] = int(num)
        g["desc"] = g["desc"] or str(ds.get("SeriesDescription", "") or "")
        g["mod"] = g["mod"] or str(ds.get("Modality", "") or "")
    if not groups:
        raise ImageError("folder holds no DICOM image files", path=str(d))
    return [DicomSeries(uid, g["number"], g["desc"], g["mod"], tuple(g["files"]))
            for uid, g in sorted(groups.items(), key=lambda kv: (kv[1]["number"] or 0, kv[0]))]


def _select(series: list[DicomSeries], choice: str | int | None, folder: Path) -> DicomSeries:
    listing = "; ".join(s.summary() for s in series)
    if choice is None:
        if len(series) == 1:
            return series[0]
        raise ImageError(
            f"folder holds {len(series)} series ({listing}); choose one by SeriesNumber or "
            "SeriesInstanceUID (--series)", path=str(folder))
    text = str(choice).strip()
    by_uid = [s for s in series if s.uid and s.uid == text]
    if by_uid:
        return by_uid[0]
    if text.lstrip("-").isdigit():
        by_num = [s for s in series if s.number == int(text)]
        if len(by_num) == 1:
            return by_num[0]
        if len(by_num) > 1:
            raise ImageError(f"SeriesNumber {text} is shared by {len(by_num)} series; choose by "
                             "SeriesInstanceUID instead (see list_dicom_series)", path=str(folder))
    raise ImageError(f"no series matches {text!r}; the folder holds: {listing}", path=str(folder))


def _vec(ds: Any, keyword: str, n: int, f: Path) -> np.ndarray:
    """A numeric multi-valued header field as a float array, or an error naming it."""
    val = ds.get(keyword)
    try:
        arr = np.asarray([float(v) for v in val], dtype=float)
    except (TypeError, ValueError) as exc:
        raise ImageError(f"missing or malformed {keyword}", path=str(f), column=keyword) from exc
    if arr.shape != (n,) or not np.all(np.isfinite(arr)):
        raise ImageError(f"{keyword} must hold {n} numbers, got {val!r}", path=str(f),
                         column=keyword)
    return arr


def _geometry(
    headers: list[Any], files: list[Path], folder: Path
) -> tuple[np.ndarray, np.ndarray]:
    """Sort order and voxel -> LPS affine of a series; refuse tilt and uneven spacing."""
    iop = np.array([_vec(h, "ImageOrientationPatient", 6, f) for h, f in zip(headers, files,
                                                                           strict=True)])
    if np.abs(iop - iop[0]).max() > ORIENTATION_TOLERANCE:
        raise ImageError("slices have different ImageOrientationPatient (a localizer or a "
                         "multi-planar series?); select a single axial/oblique stack",
                         path=str(folder), column="ImageOrientationPatient")
    row_cos, col_cos = iop[0, :3], iop[0, 3:]
    if abs(np.linalg.norm(row_cos) - 1) > 1e-3 or abs(np.linalg.norm(col_cos) - 1) > 1e-3 or \
            abs(row_cos @ col_cos) > 1e-3:
        raise ImageError(f"ImageOrientationPatient {iop[0].tolist()} is not two orthonormal "
                         "direction cosines", path=str(files[0]), column="ImageOrientationPatient")
    normal = np.cross(row_cos, col_cos)
    ipp = np.array([_vec(h, "ImagePositionPatient", 3, f) for h, f in zip(headers, files,
                                                                        strict=True)])
    pos_mm = ipp @ normal
    order = np.argsort(pos_mm, kind="stable")
    ipp, pos_mm = ipp[order], pos_mm[order]
    if len(order) < 2:
        raise ImageError("series has a single slice: a 2D image, not a 3D CT volume",
                         path=str(folder))
    gaps_mm = np.diff(pos_mm)
    if gaps_mm.min() < 1e-3:
        k = int(np.argmin(gaps_mm))
        raise ImageError(
            f"two slices share position {pos_mm[k]:.2f} mm along the slice normal (several "
            "acquisitions, phases or echoes in one series?); export one volume per series",
            path=str(folder))
    if gaps_mm.max() - gaps_mm.min() > SPACING_TOLERANCE_MM:
        vals, counts = np.unique(np.round(gaps_mm, 2), return_counts=True)
        found = ", ".join(f"{v:g} mm x{c}" for v, c in zip(vals, counts, strict=True))
        raise ImageError(
            f"uneven slice spacing (found {found}): a missing slice or mixed reconstructions. "
            "alarscrew does not interpolate scanner data silently; export a complete, evenly "
            "spaced series or resample it first (e.g. 3D Slicer 'Resample Scalar Volume')",
            path=str(folder))
    steps = np.diff(ipp, axis=0)
    off_normal = steps - np.outer(steps @ normal, normal)
    shift_mm = np.linalg.norm(off_normal, axis=1)
    if shift_mm.max() > TILT_TOLERANCE_MM:
        tilt_deg = float(np.degrees(np.arctan2(shift_mm.max(), gaps_mm.mean())))
        raise ImageError(
            f"gantry tilt detected: slice origins move {shift_mm.max():.3f} mm sideways per "
            f"slice ({tilt_deg:.1f} deg off the slice normal; GantryDetectorTilt "
            f"{headers[0].get('GantryDetectorTilt', 'not given')}). Correct the tilt first, "
            "e.g. with dcm2niix (writes a de-tilted NIfTI) or 3D Slicer's DICOM import with "
            "'acquisition geometry regularization'", path=str(folder))
    pix = _vec(headers[0], "PixelSpacing", 2, files[0])
    for h, f in zip(headers, files, strict=True):
        if np.abs(_vec(h, "PixelSpacing", 2, f) - pix).max() > 1e-4 or \
                (int(h.Rows), int(h.Columns)) != (int(headers[0].Rows), int(headers[0].Columns)):
            raise ImageError("slices differ in PixelSpacing or matrix size", path=str(f))
    aff = np.eye(4)
    aff[:3, 0] = row_cos * pix[1]  # i runs along a row: column spacing is PixelSpacing[1]
    aff[:3, 1] = col_cos * pix[0]  # j runs down the columns: row spacing is PixelSpacing[0]
    aff[:3, 2] = (ipp[-1] - ipp[0]) / (len(ipp) - 1)
    aff[:3, 3] = ipp[0]
    return order, aff


def load_dicom_series(
    folder: str | os.PathLike[str],
    *,
    series: str | int | None = None,
    is_label: bool = False,
) -> Image:
    """Read one DICOM series folder as an :class:`Image` in RAS mm.

    Parameters
    ----------
    folder : path-like
        Folder holding the slice files (subfolders are searched too; series are told apart by
        SeriesInstanceUID).
    series : str or int, optional
        SeriesInstanceUID or SeriesNumber; required when the folder holds several series.
    is_label : bool
        Return integer labels (rescaled values must be whole numbers).

    Returns
    -------
    Image
        Array ``(columns, rows, slices)`` of rescaled values (float32 when a slope/intercept is
        fractional, else int16/int32), ``meta`` with ``format``, ``modality``, ``series_number``,
        ``n_slices`` -- no patient identifiers.
    """
    pydicom = _pydicom()
    d = Path(folder)
    chosen = _select(list_dicom_series(d), series, d)
    files = list(chosen.files)
    datasets = []
    for f in files:
        try:
            datasets.append(pydicom.dcmread(f))
        except Exception as exc:
            raise ImageError(f"unreadable DICOM file ({type(exc).__name__})", path=str(f)) from exc
    order, aff_lps = _geometry(datasets, files, d)
    slopes = np.array([float(ds.get("RescaleSlope", 1) or 1) for ds in datasets])
    inters = np.array([float(ds.get("RescaleIntercept", 0) or 0) for ds in datasets])
    integral = np.all(slopes == np.round(slopes)) and np.all(inters == np.round(inters))
    rows, cols = int(datasets[0].Rows), int(datasets[0].Columns)
    buf = np.empty((len(order), rows, cols), dtype=np.int32 if integral else np.float32)
    for n, k in enumerate(order):
        try:
            px = datasets[k].pixel_array
        except Exception as exc:
            raise ImageError(f"cannot decode pixel data ({type(exc).__name__}: {exc}); a "
                             "codec plugin may be missing (pylibjpeg, gdcm)",
                             path=str(files[k])) from exc
        if px.shape != (rows, cols):
            raise ImageError(f"expected one {rows} x {cols} frame per file, got shape {px.shape} "
                             "(multi-frame or colour images are not supported)",
                             path=str(files[k]))
        out = buf[n]
        out[...] = px
        if slopes[k] != 1:
            out *= buf.dtype.type(slopes[k])
        if inters[k] != 0:
            out += buf.dtype.type(inters[k])
    if integral and buf.min() >= np.iinfo(np.int16).min and buf.max() <= np.iinfo(np.int16).max:
        buf = buf.astype(np.int16)
    vol = buf.transpose(2, 1, 0)  # (k, rows, cols) -> (i=col, j=row, k): Fortran-contiguous
    if is_label:
        vol = labels_to_int(vol, source=str(d))
    meta = {"format": "dicom", "modality": chosen.modality, "series_number": chosen.number,
            "n_slices": len(files)}
    return Image(vol, lps_to_ras_affine(aff_lps), is_label=is_label,
                 source=str(d), meta=meta)


def _dicom_storage(array: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Stored int16 values and (slope, intercept) that represent ``array`` (HU)."""
    a = np.asarray(array)
    lo, hi = float(a.min()), float(a.max())
    if np.issubdtype(a.dtype, np.integer) or a.dtype == bool or np.all(a == np.round(a)):
        if lo >= -32768 and hi <= 32767:
            return a.astype(np.int16), 1.0, 0.0
        if hi - lo <= 65535:
            return (a - lo - 32768).astype(np.int16), 1.0, lo + 32768.0
    slope = max(abs(lo), abs(hi)) / 32000.0 or 1.0
    return np.round(a / slope).astype(np.int16), slope, 0.0


def write_dicom_series(
    image: Image,
    folder: str | os.PathLike[str],
    *,
    force: bool = False,
    series_number: int = 1,
    series_description: str = "alarscrew synthetic copy",
    slice_order: Sequence[int] | None = None,
) -> Path:
    """Write ``image`` as a de-identified, synthetic CT Image Storage series (one file per slice).

    Parameters
    ----------
    image : Image
        Values in HU; axes 0 and 1 must be orthogonal and axis 2 along their cross product
        (either sign), i.e. no shear.
    folder : path-like
        Output folder, built atomically.
    force : bool
        Replace an existing folder.
    series_number, series_description : int, str
        Written as given.
    slice_order : sequence of int, optional
        File-name order of the slices (tests shuffle it to check sorting by position).

    Returns
    -------
    Path
        The folder. Files are Explicit VR Little Endian, no patient identifiers
        (PatientIdentityRemoved YES), fresh UIDs.
    """
    pydicom = _pydicom()
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    aff = ras_to_lps_affine(image.affine)
    sp = image.spacing_mm
    u = aff[:3, :3] / sp
    row_cos, col_cos, k_dir = u[:, 0], u[:, 1], u[:, 2]
    normal = np.cross(row_cos, col_cos)
    if abs(row_cos @ col_cos) > 1e-6 or abs(abs(k_dir @ normal) - 1) > 1e-6:
        raise ImageError("cannot write a sheared grid as DICOM: axes must be orthogonal",
                         path=image.source or "image")
    stored, slope, intercept = _dicom_storage(image.array)
    study_uid, series_uid, frame_uid = generate_uid(), generate_uid(), generate_uid()
    today = _dt.date.today().strftime("%Y%m%d")
    nk = image.shape[2]
    order = list(range(nk)) if slice_order is None else [int(k) for k in slice_order]
    if sorted(order) != list(range(nk)):
        raise ImageError(f"slice_order must be a permutation of 0..{nk - 1}")
    with atomic_dir(folder, force=force) as tmp:
        for n, k in enumerate(order):
            meta = FileMetaDataset()
            meta.MediaStorageSOPClassUID = CT_IMAGE_STORAGE
            meta.MediaStorageSOPInstanceUID = generate_uid()
            meta.TransferSyntaxUID = ExplicitVRLittleEndian
            ds = Dataset()
            ds.file_meta = meta
            ds.SOPClassUID = CT_IMAGE_STORAGE
            ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
            ds.PatientName = ""
            ds.PatientID = ""
            ds.PatientBirthDate = ""
            ds.PatientSex = ""
            ds.PatientIdentityRemoved = "YES"
            ds.DeidentificationMethod = "synthetic copy written by alarscrew; no patient data"
            ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, series_uid
            ds.FrameOfReferenceUID = frame_uid
            ds.StudyDate = ds.SeriesDate = ds.ContentDate = today
            ds.StudyTime = ds.SeriesTime = ds.ContentTime = "000000"
            ds.StudyID = ds.AccessionNumber = ds.ReferringPhysicianName = ""
            ds.Modality = "CT"
            ds.Manufacturer = "alarscrew"
            ds.SeriesNumber = series_number
            ds.SeriesDescription = series_description
            ds.InstanceNumber = k + 1
            ds.AcquisitionNumber = 1
            ds.ImageType = ["DERIVED", "SECONDARY", "AXIAL"]
            ds.KVP = ""
            ds.PositionReferenceIndicator = ""
            pos = aff[:3, :3] @ np.array([0.0, 0.0, k]) + aff[:3, 3]
            ds.ImagePositionPatient = [f"{v:.6f}" for v in pos]
            ds.ImageOrientationPatient = [f"{v:.8f}" for v in (*row_cos, *col_cos)]
            ds.PixelSpacing = [f"{sp[1]:.8f}", f"{sp[0]:.8f}"]
            ds.SliceThickness = f"{sp[2]:.6f}"
            ds.SliceLocation = f"{pos @ normal:.6f}"
            ds.SamplesPerPixel = 1
            ds.PhotometricInterpretation = "MONOCHROME2"
            ds.Rows, ds.Columns = image.shape[1], image.shape[0]
            ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
            ds.PixelRepresentation = 1
            ds.RescaleSlope = f"{slope:.10g}"
            ds.RescaleIntercept = f"{intercept:.10g}"
            ds.RescaleType = "HU"
            ds.PixelData = np.ascontiguousarray(stored[:, :, k].T).astype("<i2").tobytes()
            path = tmp / f"slice_{n:04d}.dcm"
            try:
                pydicom.dcmwrite(path, ds, enforce_file_format=True)
            except TypeError:  # pydicom 2.x
                pydicom.dcmwrite(path, ds, write_like_original=False)
    return Path(folder)

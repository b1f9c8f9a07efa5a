"""Load any supported image (NIfTI, NRRD, DICOM series folder) as an :class:`Image`.

Dispatch is by name: a folder is read as a DICOM series, ``.nii``/``.nii.gz`` as NIfTI,
``.nrrd``/``.nhdr`` as NRRD. :func:`load_ct` adds the CT plausibility rule of
:mod:`alarscrew.io.ct`.
"""

from __future__ import annotations

import os
from pathlib import Path

from alarscrew.errors import ImageError
from alarscrew.io.ct import check_ct_intensities
from alarscrew.io.image import Image

#: File-name endings recognised by :func:`load_image`, by format.
SUPPORTED_SUFFIXES: dict[str, tuple[str, ...]] = {
    "nifti": (".nii", ".nii.gz"),
    "nrrd": (".nrrd", ".nhdr"),
}


def image_format(path: str | os.PathLike[str]) -> str:
    """Name the format of ``path``: ``'dicom'`` (a folder), ``'nifti'`` or ``'nrrd'``.

    Raises
    ------
    ImageError
        When the path does not exist or its name is not one of :data:`SUPPORTED_SUFFIXES`.
    """
    p = Path(path)
    if not p.exists():
        raise ImageError("file or folder not found", path=str(p))
    if p.is_dir():
        return "dicom"
    name = p.name.lower()
    for fmt, suffixes in SUPPORTED_SUFFIXES.items():
        if name.endswith(suffixes):
            return fmt
    if name.endswith(".dcm") or name.startswith(("ct.", "im")):
        raise ImageError("a single DICOM file was given; pass the folder holding the whole "
                         "series instead", path=str(p))
    known = ", ".join(s for ss in SUPPORTED_SUFFIXES.values() for s in ss)
    raise ImageError(f"unknown image format; expected a DICOM series folder or a file ending in "
                     f"{known}", path=str(p))


def load_image(
    path: str | os.PathLike[str],
    *,
    is_label: bool = False,
    series: str | int | None = None,
) -> Image:
    """Load a 3D image with its voxel -> RAS-mm affine.

    Parameters
    ----------
    path : path-like
        A ``.nii``/``.nii.gz`` or ``.nrrd``/``.nhdr`` file, or a folder holding a DICOM series.
    is_label : bool
        Read as a label map: float values must be whole numbers; returned as int32.
    series : str or int, optional
        DICOM only: the SeriesInstanceUID or SeriesNumber to read when the folder holds
        several series.

    Returns
    -------
    Image
        ``meta['format']`` names the format read.

    Raises
    ------
    ImageError
        Missing, empty, corrupt, 2D or absurd-spacing input; the message names the file.
    """
    fmt = image_format(path)
    if series is not None and fmt != "dicom":
        raise ImageError(f"series={series!r} only applies to DICOM folders, not {fmt} files",
                         path=str(path))
    if fmt == "nifti":
        from alarscrew.io.nifti import load_nifti

        img = load_nifti(path, is_label=is_label)
    elif fmt == "nrrd":
        from alarscrew.io.nrrd import load_nrrd

        img = load_nrrd(path, is_label=is_label)
    else:
        from alarscrew.io.dicom import load_dicom_series

        img = load_dicom_series(path, series=series, is_label=is_label)
    meta = dict(img.meta)
    meta.setdefault("format", fmt)
    return Image(img.array, img.affine, is_label=img.is_label, source=img.source, meta=meta)


def load_ct(path: str | os.PathLike[str], *, series: str | int | None = None) -> Image:
    """Load a CT in Hounsfield units and check that it is one.

    As :func:`load_image`, then :func:`alarscrew.io.ct.check_ct_intensities` refuses
    MR-like, constant or non-HU volumes,
    and DICOM series whose Modality is not CT. The figures it decided on are in
    ``meta['hu_summary']``.

    Raises
    ------
    ImageError
        As :func:`load_image`, or when the intensities are not those of a CT in HU.
    """
    img = load_image(path, series=series)
    modality = img.meta.get("modality")
    if modality and modality != "CT":
        raise ImageError(f"DICOM Modality is '{modality}', expected 'CT'", path=img.source,
                         column="Modality")
    summary = check_ct_intensities(img.array, source=img.source)
    meta = dict(img.meta)
    meta["hu_summary"] = summary
    return Image(img.array, img.affine, is_label=False, source=img.source, meta=meta)


def save_image(image: Image, path: str | os.PathLike[str], *, force: bool = False) -> Path:
    """Write ``image`` atomically as NIfTI or NRRD, chosen by the file name.

    Parameters
    ----------
    image : Image
        Any image; bool masks are written as uint8.
    path : path-like
        Ends in ``.nii``, ``.nii.gz`` or ``.nrrd`` (DICOM: see
        :func:`alarscrew.io.dicom.write_dicom_series`).
    force : bool
        Overwrite an existing file (otherwise :class:`~alarscrew.errors.OutputExistsError`).
    """
    name = Path(path).name.lower()
    if name.endswith(SUPPORTED_SUFFIXES["nifti"]):
        from alarscrew.io.nifti import save_nifti

        return save_nifti(image, path, force=force)
    if name.endswith(".nrrd"):
        from alarscrew.io.nrrd import save_nrrd

        return save_nrrd(image, path, force=force)
    raise ImageError("cannot tell the output format; use a name ending in .nii.gz, .nii or "
                     ".nrrd", path=str(path))

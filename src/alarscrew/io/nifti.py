"""NIfTI reading and writing through nibabel (no hand-written parsing)."""

from __future__ import annotations

import os
from pathlib import Path

import nibabel as nib
import numpy as np

from alarscrew.errors import ImageError
from alarscrew.io.atomic import atomic_path
from alarscrew.io.image import Image


def labels_to_int(data: np.ndarray, *, source: str) -> np.ndarray:
    """Return label codes as an unsigned/int32 integer array, refusing non-whole numbers.

    Parameters
    ----------
    data : ndarray
        Label codes; floats (as published TotalSegmentator v1 files) are accepted when every
        value is within 1e-3 of a whole number.
    source : str
        File name for messages.

    Returns
    -------
    ndarray
        Integer codes in the smallest of uint8 / uint16 / int32 that holds them (an integer
        input that already fits is returned without a copy), so that a 512 x 512 x 400 label
        map stays at 100 MB rather than 400 MB.

    Raises
    ------
    ImageError
        NaN/inf, a non-integer value, a negative value or one beyond int32 (the message gives
        the offending value and, for non-integers, its voxel index).
    """
    if data.dtype == bool:
        return data.astype(np.uint8)
    if np.issubdtype(data.dtype, np.floating):
        if not np.all(np.isfinite(data)):
            raise ImageError("label map contains NaN or infinite values", path=source)
        frac = np.abs(data - np.round(data))
        worst = int(np.argmax(frac))
        if frac.flat[worst] > 1e-3:
            ijk = tuple(int(v) for v in np.unravel_index(worst, data.shape))
            raise ImageError(
                f"label map holds non-integer value {float(data.flat[worst])} at voxel {ijk}; "
                "expected whole-number labels", path=source)
        data = np.round(data)
    elif not np.issubdtype(data.dtype, np.integer):
        raise ImageError(f"label map has non-numeric type {data.dtype}", path=source)
    lo, hi = (data.min(), data.max()) if data.size else (0, 0)
    if lo < 0 or hi > np.iinfo(np.int32).max:
        hint = " (is this a CT rather than a label map?)" if lo < 0 else ""
        raise ImageError(f"label values must be 0..2^31-1, got {lo}..{hi}{hint}", path=source)
    for dtype in (np.uint8, np.uint16, np.int32):
        if hi <= np.iinfo(dtype).max:
            if np.issubdtype(data.dtype, np.integer) and data.dtype.itemsize <= 4:
                return data  # already a compact integer type
            return data.astype(dtype)
    return data.astype(np.int32)  # unreachable: hi <= int32 max was checked


def load_nifti(path: str | os.PathLike[str], *, is_label: bool = False) -> Image:
    """Load a .nii / .nii.gz file as an :class:`Image` (affine from the sform/qform).

    Label maps stored as floats are accepted when every value is a whole number and are
    returned as compact integers (see :func:`labels_to_int`); otherwise :class:`ImageError`
    names the file and the offending value.
    """
    p = Path(path)
    if not p.exists():
        raise ImageError("file not found", path=str(p))
    if p.is_file() and p.stat().st_size == 0:
        raise ImageError("file is empty (0 bytes)", path=str(p))
    try:
        img = nib.load(str(p))
        data = np.asanyarray(img.dataobj)
    except Exception as exc:  # nibabel raises many types for corrupt files
        raise ImageError(f"not a readable NIfTI file ({type(exc).__name__}: {exc})",
                         path=str(p)) from exc
    hdr = img.header
    if int(hdr["sform_code"]) == 0 and int(hdr["qform_code"]) == 0:
        raise ImageError("NIfTI header has neither an sform nor a qform (both codes 0), so the "
                         "image's position and orientation in the patient are unknown; rewrite "
                         "it with its affine (e.g. nibabel set_sform, or 3D Slicer)", path=str(p))
    data = np.squeeze(data) if data.ndim > 3 and all(s == 1 for s in data.shape[3:]) else data
    if data.ndim != 3:
        raise ImageError(f"expected a 3D volume, got shape {data.shape}", path=str(p))
    if is_label:
        data = labels_to_int(data, source=str(p))
    return Image(data, img.affine, is_label=is_label, source=str(p))


def save_nifti(image: Image, path: str | os.PathLike[str], *, force: bool = True) -> Path:
    """Write ``image`` atomically as NIfTI with its affine in both sform and qform."""
    arr = image.array
    if arr.dtype == bool:
        arr = arr.astype(np.uint8)
    nii = nib.Nifti1Image(arr, image.affine)
    nii.set_sform(image.affine, code=1)
    nii.set_qform(image.affine, code=1)
    with atomic_path(path, force=force) as tmp:
        nib.save(nii, str(tmp))
    return Path(path)

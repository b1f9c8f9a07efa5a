"""NIfTI reading and writing through nibabel (no hand-written parsing)."""

from __future__ import annotations

import os
from pathlib import Path

import nibabel as nib
import numpy as np

from alarscrew.errors import ImageError
from alarscrew.io.atomic import atomic_path
from alarscrew.io.image import Image


def load_nifti(path: str | os.PathLike[str], *, is_label: bool = False) -> Image:
    """Load a .nii / .nii.gz file as an :class:`Image` (affine from the sform/qform).

    Label maps stored as floats are accepted when every value is a whole number and are
    returned as int32; otherwise :class:`ImageError` names the file and the offending value.
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
    data = np.squeeze(data) if data.ndim > 3 and all(s == 1 for s in data.shape[3:]) else data
    if data.ndim != 3:
        raise ImageError(f"expected a 3D volume, got shape {data.shape}", path=str(p))
    if is_label:
        if np.issubdtype(data.dtype, np.floating):
            finite = np.isfinite(data)
            if not finite.all():
                raise ImageError("label map contains NaN or infinite values", path=str(p))
            frac = np.abs(data - np.round(data))
            if frac.max(initial=0.0) > 1e-3:
                bad = float(data.flat[int(np.argmax(frac))])
                raise ImageError(
                    f"label map holds non-integer value {bad}; expected whole-number labels",
                    path=str(p),
                )
            data = np.round(data)
        data = data.astype(np.int32, copy=False)
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

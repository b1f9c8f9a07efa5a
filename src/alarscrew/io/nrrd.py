"""NRRD reading and writing through pynrrd, in 3D Slicer's conventions.

A NRRD header places voxels in the world with ``space`` (e.g. ``left-posterior-superior``),
``space directions`` (one column vector per axis, in mm, including the voxel size) and
``space origin`` (world position of voxel 0). The voxel -> world affine is therefore
``[[directions, origin], [0, 0, 0, 1]]`` in that space; it is converted to RAS through
:data:`alarscrew.io.orientation.NRRD_SPACE_TO_RAS`. Writing follows 3D Slicer: ``space``
``left-posterior-superior``, ``kinds`` ``domain domain domain``, gzip encoding (level 1: fast,
still lossless).

References
----------
Teem NRRD format definition 0004, "space", "space directions", "space origin"
(https://teem.sourceforge.net/nrrd/format.html). 3D Slicer coordinate systems
(slicer.readthedocs.io, user_guide/coordinate_systems): Slicer works in RAS internally but
stores images in files in LPS, with the origin at the centre of the first voxel.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import nrrd
import numpy as np

from alarscrew.errors import ImageError
from alarscrew.io.atomic import atomic_path
from alarscrew.io.image import Image
from alarscrew.io.nifti import labels_to_int
from alarscrew.io.orientation import NRRD_SPACE_TO_RAS, ras_to_lps_affine


def nrrd_header_affine(header: dict, *, source: str = "NRRD") -> np.ndarray:
    """The voxel -> RAS-mm affine described by a pynrrd header.

    Parameters
    ----------
    header : dict
        As returned by :func:`nrrd.read` (``space``, ``space directions``, ``space origin``).
    source : str
        File name for messages.

    Returns
    -------
    (4, 4) ndarray
        Voxel -> RAS mm.
    """
    space = header.get("space")
    if space is None:
        raise ImageError("NRRD header has no 'space' field, so its world orientation is "
                         "unknown; expected e.g. 'left-posterior-superior' (3D Slicer)",
                         path=source)
    to_ras = NRRD_SPACE_TO_RAS.get(str(space).lower())
    if to_ras is None:
        known = ", ".join(sorted(NRRD_SPACE_TO_RAS))
        raise ImageError(f"unsupported NRRD space '{space}'; expected one of {known}",
                         path=source)
    directions = header.get("space directions")
    if directions is None:
        raise ImageError("NRRD header has no 'space directions' field", path=source)
    dirs = np.asarray(directions, dtype=float)
    if dirs.shape != (3, 3) or not np.all(np.isfinite(dirs)):
        raise ImageError(f"expected 3 spatial 'space directions' of 3 components, got "
                         f"{np.asarray(directions).tolist()}", path=source)
    origin = np.asarray(header.get("space origin", np.zeros(3)), dtype=float)
    if origin.shape != (3,) or not np.all(np.isfinite(origin)):
        raise ImageError(f"'space origin' must hold 3 numbers, got {origin.tolist()}",
                         path=source)
    aff = np.eye(4)
    aff[:3, :3] = dirs.T  # pynrrd stores one row per axis; the affine has one column per axis
    aff[:3, 3] = origin
    return to_ras @ aff


_SEGMENT_NAME = re.compile(r"^Segment(\d+)_Name$")


def slicer_segments(header: dict, *, source: str = "NRRD") -> dict[int, str]:
    """Label value -> segment name from a 3D Slicer ``.seg.nrrd`` header (empty if none).

    Slicer stores each segment as ``SegmentN_Name``, ``SegmentN_LabelValue`` and
    ``SegmentN_Layer`` key/value fields. Only single-layer segmentations (all layers 0, a 3D
    array) can be read as one label map.
    """
    out: dict[int, str] = {}
    for key, name in header.items():
        m = _SEGMENT_NAME.match(str(key))
        if m is None:
            continue
        n = m.group(1)
        layer = str(header.get(f"Segment{n}_Layer", "0")).strip()
        if layer not in ("", "0"):
            raise ImageError(f"segment '{name}' lies in layer {layer}: overlapping segments "
                             "cannot be read as one label map; export a labelmap volume from "
                             "3D Slicer",
                             path=source, column=f"Segment{n}_Layer")
        raw = str(header.get(f"Segment{n}_LabelValue", int(n) + 1)).strip()
        try:
            value = int(raw)
        except ValueError as exc:
            raise ImageError(f"label value {raw!r} is not an integer", path=source,
                             column=f"Segment{n}_LabelValue") from exc
        out[value] = str(name)
    return out


def load_nrrd(path: str | os.PathLike[str], *, is_label: bool = False) -> Image:
    """Load a 3D ``.nrrd``/``.nhdr`` file as an :class:`Image` in RAS mm.

    For a 3D Slicer segmentation (``.seg.nrrd``) ``meta['segments']`` maps label values to
    segment names (see :func:`slicer_segments`).
    """
    p = Path(path)
    if not p.exists():
        raise ImageError("file not found", path=str(p))
    if p.is_file() and p.stat().st_size == 0:
        raise ImageError("file is empty (0 bytes)", path=str(p))
    try:
        data, header = nrrd.read(str(p), index_order="F")
    except Exception as exc:  # pynrrd raises NRRDError, ValueError, OSError, zlib errors
        raise ImageError(f"not a readable NRRD file ({type(exc).__name__}: {exc})",
                         path=str(p)) from exc
    if data.ndim != 3:
        hint = (" (a multi-layer 3D Slicer segmentation: export it as a labelmap volume)"
                if data.ndim == 4 and slicer_segments_present(header) else "")
        raise ImageError(f"expected a 3D volume, got shape {data.shape}{hint}", path=str(p))
    affine = nrrd_header_affine(header, source=str(p))
    if is_label:
        data = labels_to_int(data, source=str(p))
    meta: dict = {"format": "nrrd", "nrrd_space": str(header.get("space"))}
    segments = slicer_segments(header, source=str(p))
    if segments:
        meta["segments"] = segments
    return Image(data, affine, is_label=is_label, source=str(p), meta=meta)


def slicer_segments_present(header: dict) -> bool:
    """Whether a NRRD header carries 3D Slicer segment fields."""
    return any(_SEGMENT_NAME.match(str(k)) for k in header)


def save_nrrd(image: Image, path: str | os.PathLike[str], *, force: bool = True) -> Path:
    """Write ``image`` atomically as a gzip NRRD in 3D Slicer's LPS convention.

    Parameters
    ----------
    image : Image
        Bool arrays are written as uint8.
    path : path-like
        Target ``.nrrd`` file.
    force : bool
        Overwrite an existing file.
    """
    arr = image.array.astype(np.uint8) if image.array.dtype == bool else image.array
    aff_lps = ras_to_lps_affine(image.affine)
    header = {
        "space": "left-posterior-superior",
        "space directions": aff_lps[:3, :3].T,
        "space origin": aff_lps[:3, 3],
        "kinds": ["domain", "domain", "domain"],
        "encoding": "gzip",
    }
    with atomic_path(path, force=force) as tmp:
        nrrd.write(str(tmp), np.asarray(arr), header, index_order="F", compression_level=1)
    return Path(path)

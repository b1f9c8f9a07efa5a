"""Complete a sacrum whose alar marrow is darker than the bone threshold, by enclosure.

At coarse voxels (>= 2.5 mm) fatty or osteoporotic alar marrow averages to soft-tissue values,
so an HU threshold keeps only the cortical shell of the ala; the marrow is recovered as the
space enclosed between the sacral cortex and the ilia (:func:`fill_coarse_sacrum`).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from skimage.segmentation import expand_labels

from alarscrew.anatomy.regions import CRANIAL, ILIUM_LEFT, ILIUM_RIGHT, SACRUM

#: In-plane closing radius (mm) that completes a coarse-voxel sacrum (:func:`fill_coarse_sacrum`).
COARSE_CLOSE_MM = 12.0


def _plane_structure(axis: int) -> np.ndarray:
    """3x3x3 structuring element connecting voxels only within planes normal to ``axis``."""
    s = np.zeros((3, 3, 3), bool)
    idx: list[slice | int] = [slice(None)] * 3
    idx[axis] = 1
    s[tuple(idx)] = ndi.generate_binary_structure(2, 1)
    return s


def _plane_disk(axis: int, radius_mm: float, spacing_mm: np.ndarray) -> np.ndarray:
    """Disk of ``radius_mm`` in the planes normal to ``axis`` (thickness one voxel)."""
    in_plane = [a for a in range(3) if a != axis]
    r_vox = [max(1, int(np.floor(radius_mm / float(spacing_mm[a])))) for a in in_plane]
    shape = [1, 1, 1]
    for a, r in zip(in_plane, r_vox, strict=True):
        shape[a] = 2 * r + 1
    grids = np.ogrid[tuple(slice(-(n // 2), n // 2 + 1) for n in shape)]
    d2 = sum((g * float(spacing_mm[a])) ** 2 for a, g in enumerate(grids) if a != axis)
    return np.asarray(d2 <= radius_mm**2 + 1e-6)


def _fill_in_planes(mask: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """Union over ``axes`` of the holes filled slice by slice in planes normal to each axis."""
    out = mask.copy()
    for ax in axes:
        out |= ndi.binary_fill_holes(mask, structure=_plane_structure(ax))
    return out


def _close_in_planes(mask: np.ndarray, axis: int, radius_mm: float,
                     spacing_mm: np.ndarray) -> np.ndarray:
    """Binary closing with an in-plane disk; padded so the image border does not erode."""
    disk = _plane_disk(axis, radius_mm, spacing_mm)
    pad = max(disk.shape) // 2 + 1
    closed = ndi.binary_closing(np.pad(mask, pad), structure=disk)
    return closed[pad:-pad, pad:-pad, pad:-pad]


def fill_coarse_sacrum(sac: np.ndarray, regions: np.ndarray, spacing_mm: np.ndarray, *,
                       radius_mm: float = COARSE_CLOSE_MM) -> np.ndarray:
    """Complete a coarse-voxel sacrum whose marrow is below the bone threshold.

    At >= 2.5 mm, fatty or osteoporotic marrow of the alae averages to soft-tissue values
    (median ~40 HU on the shared 3 mm scan, the same as muscle), so thresholds keep only the
    cortex and the watershed sacrum is a thin shell: anterior alar cortex, body, posterior
    elements. The marrow is recovered by enclosure, not intensity:

    1. The sacrum region is united with the iliac regions (each closed and filled on its own,
       so the iliac marrow stays iliac) and closed with a disk of ``radius_mm`` in axial and
       in coronal planes; holes are filled slice by slice in both orientations. The ilia close
       the ala laterally, so the alar marrow between the anterior cortex, the body and the
       SI joint becomes enclosed.
    2. Each filled voxel goes to the nearest watershed region (Euclidean, on the working
       grid): voxels nearer an ilium or the lumbar bone than the sacrum are not sacrum.
    3. Holes that are enclosed in axial slices but open in 3D (spinal canal, foramina) are
       kept open; marrow enclosed in 3D is kept.

    Parameters
    ----------
    sac : (I, J, K) bool ndarray
        Watershed sacrum on the working grid.
    regions : (I, J, K) int ndarray
        Watershed regions (codes of this module).
    spacing_mm : (3,) ndarray
        Working voxel size.
    radius_mm : float
        In-plane closing radius: gaps in the sacral shell up to about twice this are bridged.

    Returns
    -------
    (I, J, K) bool ndarray
        The completed sacrum (largest connected piece holding the input sacrum).
    """
    if not sac.any():
        return sac
    ilia = np.zeros(sac.shape, bool)
    for code in (ILIUM_LEFT, ILIUM_RIGHT):
        one = _close_in_planes(regions == code, 2, float(np.max(spacing_mm)), spacing_mm)
        ilia |= _fill_in_planes(one, (2, 1))
    union = sac | ilia
    filled = np.zeros(sac.shape, bool)
    for ax in (2, 1):
        filled |= _fill_in_planes(_close_in_planes(union, ax, radius_mm, spacing_mm), (ax,))
    seeds = np.where(np.isin(regions, (SACRUM, ILIUM_LEFT, ILIUM_RIGHT, CRANIAL)), regions, 0)
    reach_vox = int(np.ceil(2.0 * radius_mm / float(np.min(spacing_mm))))
    nearest = expand_labels(seeds, distance=reach_vox)
    axial_holes = _fill_in_planes(sac, (2,)) & ~sac
    enclosed_3d = ndi.binary_fill_holes(sac)
    open_holes = axial_holes & ~enclosed_3d
    out = (filled & (nearest == SACRUM) & ~ilia & ~open_holes) | sac
    lab, _ = ndi.label(out)
    keep = np.bincount(lab[sac].ravel())
    keep[0] = 0
    return lab == int(np.argmax(keep))

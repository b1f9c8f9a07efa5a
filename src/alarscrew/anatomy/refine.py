"""Carry a working-grid sacrum to the CT's full resolution, cutting it at joint spaces."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from skimage.segmentation import expand_labels, watershed

from alarscrew.anatomy.grid import WorkGrid, block_repeat
from alarscrew.anatomy.regions import CRANIAL, ILIUM_LEFT, ILIUM_RIGHT, SACRUM
from alarscrew.anatomy.sacrum import (
    COARSE_MM,
    CORTEX_HU,
    SEAM_HU,
    SURFACE_HIGH_HU,
    SURFACE_LOW_HU,
    UNSURE_BAND_VOX,
    SacrumResult,
    bone_mask,
)

#: Half-length (mm) of the line probes of :func:`seam_depth_hu`: a joint space up to about twice
#: this wide between two cortices is found (lumbosacral facet joints are 1-3 mm wide).
SEAM_REACH_MM = 2.0
#: Sacrum voxels this close (mm) to the lumbar region on the working grid are re-decided at
#: full resolution: the L5 inferior articular processes lie on the S1 facets across a joint
#: space of 1-3 mm, which a 2 mm working grid does not resolve.
CRANIAL_UNSURE_BAND_MM = 6.0


#: Full-resolution watershed elevation: joint-space depth (HU, :func:`seam_depth_hu`) divided
#: by SEAM_ELEVATION_HU minus cortex-free bone thickness (mm) divided by EDT_ELEVATION_MM, so
#: basins meet in joint spaces where the CT shows them and at the narrowest bone elsewhere.
SEAM_ELEVATION_HU, EDT_ELEVATION_MM = 100.0, 3.0


def seam_depth_hu(hu: np.ndarray, spacing_mm: np.ndarray, *,
                  reach_mm: float = SEAM_REACH_MM) -> np.ndarray:
    """How much darker each voxel is than the plates on both sides of it (HU), any orientation.

    Along each of the 13 line directions of the 3x3x3 neighbourhood, a voxel is compared with
    the brightest voxel within ``reach_mm`` on either side; its depth is the darker of the two
    maxima minus its own value, taken in the direction where that is largest (a grey closing
    with line segments). A thin dark gap between two cortices (a joint space) is deep.

    Parameters
    ----------
    hu : (I, J, K) ndarray
        CT values.
    spacing_mm : (3,) ndarray
        Voxel size per axis.
    reach_mm : float
        Half-length of the line probes.

    Returns
    -------
    (I, J, K) float32 ndarray
    """
    hu = np.asarray(hu, np.float32)
    shape = np.asarray(hu.shape)
    steps = [np.array(d) - 1 for d in np.ndindex(3, 3, 3)]
    steps = [d for d in steps if tuple(d) > (0, 0, 0)]  # one of each +-d pair
    k_max = max(1, int(np.floor(reach_mm / float(np.min(spacing_mm)) + 1e-6)))
    padded = np.pad(hu, k_max, mode="edge")

    def shifted(offset: np.ndarray) -> np.ndarray:
        return padded[tuple(slice(k_max + int(o), k_max + int(o) + int(n))
                            for o, n in zip(offset, shape, strict=True))]

    lift = np.full(hu.shape, -np.inf, np.float32)
    for d in steps:
        k = max(1, int(np.floor(reach_mm / float(np.linalg.norm(d * spacing_mm)) + 1e-6)))
        ahead = np.maximum.reduce([shifted(d * i) for i in range(1, k + 1)])
        behind = np.maximum.reduce([shifted(-d * i) for i in range(1, k + 1)])
        np.maximum(lift, np.minimum(ahead, behind) - hu, out=lift)
    return lift


def refine_full_resolution(result: SacrumResult, hu_canon: np.ndarray, grid: WorkGrid, *,
                           margin_vox: int = 2) -> np.ndarray:
    """Sacrum mask on the canonical full-resolution grid.

    The working regions are grown by one working voxel into background (so the full-resolution
    bone surface is not clipped by block rounding), upsampled by block repetition, and
    intersected with a full-resolution bone mask computed inside the sacrum's bounding box,
    from which joint spaces (:func:`seam_depth_hu` above :data:`SEAM_HU`) are removed. Voxels
    near another region (one working voxel; :data:`CRANIAL_UNSURE_BAND_MM` against the lumbar
    region, for the L5-S1 facet joints) are re-decided by a watershed at full resolution on
    joint-space depth and bone thickness (:data:`SEAM_ELEVATION_HU`, :data:`EDT_ELEVATION_MM`);
    the largest sacral piece is kept and its enclosed cavities filled. Coarse grids
    (>= :data:`COARSE_MM`, completed by enclosure in :func:`isolate_sacrum`) and supplied
    sacrum labels are returned as they are.
    """
    canon_sp = np.sqrt((grid.canon_affine[:3, :3] ** 2).sum(axis=0))
    if result.method.startswith("supplied sacrum") or float(np.max(canon_sp)) >= COARSE_MM:
        return grid.upsample(result.sacrum) if not np.all(grid.factor == 1) else result.sacrum
    idx = np.argwhere(result.sacrum)
    lo = np.maximum(idx.min(axis=0) - margin_vox - 1, 0)
    hi = np.minimum(idx.max(axis=0) + margin_vox + 2, np.asarray(result.sacrum.shape))
    box = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))
    # grow the regions by one working voxel into background, inside the box only
    regions = np.zeros(result.regions.shape, np.int32)
    regions[box] = expand_labels(np.where(result.bone[box], result.regions[box], 0), distance=1)
    f = grid.factor
    lo_c, hi_c = lo * f, np.minimum(hi * f, np.asarray(grid.canon_shape))
    sl_c = tuple(slice(int(a), int(b)) for a, b in zip(lo_c, hi_c, strict=True))
    sub_hu = np.asarray(hu_canon[sl_c], np.float32)
    bone_sub = bone_mask(sub_hu, canon_sp, min_volume_mm3=0.0,
                         thresholds_hu=(SURFACE_LOW_HU, SURFACE_HIGH_HU))
    depth_hu = seam_depth_hu(sub_hu, canon_sp)
    bone_sub &= ~(depth_hu > SEAM_HU)  # joint spaces
    # working voxels next to another structure are re-decided at full resolution (thin joint
    # gaps such as the 2 mm facet joints are not resolved on the working grid)
    reg_sub = regions[tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))]
    unsure = np.zeros(reg_sub.shape, bool)
    band_cranial = max(1, int(np.ceil(CRANIAL_UNSURE_BAND_MM / float(np.min(grid.spacing_mm)))))
    for code in (SACRUM, ILIUM_LEFT, ILIUM_RIGHT, CRANIAL):
        here = reg_sub == code
        others = (reg_sub > 0) & ~here
        unsure |= here & ndi.binary_dilation(others, iterations=UNSURE_BAND_VOX)
    # sacral voxels near the lumbar region; on a coarsened working grid also lumbar voxels
    # near the sacrum (its blocks straddle the facet joint), while on a native working grid
    # the lumbar region already rests on the native voxels
    pairs = [(SACRUM, CRANIAL)] + ([(CRANIAL, SACRUM)] if np.any(f > 1) else [])
    for code, other in pairs:
        unsure |= (reg_sub == code) & ndi.binary_dilation(reg_sub == other,
                                                          iterations=band_cranial)
    markers_work = np.where(unsure, 0, reg_sub).astype(np.int32)
    markers = block_repeat(markers_work, f, sub_hu.shape)
    regions_up = block_repeat(reg_sub, f, sub_hu.shape)
    markers = np.where(bone_sub, markers, 0)
    core = bone_sub & (sub_hu < CORTEX_HU)
    edt = ndi.distance_transform_edt(core, sampling=canon_sp)
    seam = ndi.gaussian_filter(np.maximum(depth_hu, 0.0), 0.5)
    elevation = seam / SEAM_ELEVATION_HU - edt / EDT_ELEVATION_MM
    mask = bone_sub & (regions_up > 0)
    ws = watershed(elevation, markers, mask=mask)
    sac_sub = ws == SACRUM
    lab, n = ndi.label(sac_sub)
    if n > 1:
        sizes = np.bincount(lab.ravel())
        sizes[0] = 0
        sac_sub = lab == int(np.argmax(sizes))
    # seams inside thin bone (marrow between two close cortices) leave enclosed holes
    sac_sub = ndi.binary_fill_holes(sac_sub)
    out = np.zeros(grid.canon_shape, bool)
    out[sl_c] = sac_sub
    return out

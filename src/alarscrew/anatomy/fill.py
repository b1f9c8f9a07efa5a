"""Complete a sacrum whose alar marrow is darker than the bone threshold, by enclosure.

At coarse voxels (>= 2.5 mm) fatty or osteoporotic alar marrow averages to soft-tissue values,
so an HU threshold keeps only the cortical shell of the ala; the marrow is recovered as the
space enclosed between the sacral cortex and the ilia (:func:`fill_coarse_sacrum`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from scipy import ndimage as ndi
from skimage.filters import apply_hysteresis_threshold
from skimage.segmentation import expand_labels, watershed

from alarscrew.anatomy.grid import WorkGrid, block_repeat, bounding_box, padded_box
from alarscrew.anatomy.regions import CRANIAL, ILIUM_LEFT, ILIUM_RIGHT, SACRUM

if TYPE_CHECKING:
    from alarscrew.anatomy.sacrum import SacrumResult

#: In-plane closing radius (mm) that completes a coarse-voxel sacrum (:func:`fill_coarse_sacrum`).
COARSE_CLOSE_MM = 12.0
#: Sacroiliac joint space (mm) left out next to the ilia by the coarse enclosure
#: (:func:`fill_coarse_sacrum` ``joint_gap_mm``): the adult joint space is 2-4 mm wide, one
#: voxel at >= 2.5 mm, so the voxels touching the closed iliac region (3 mm away on a 3 mm
#: grid) are the joint and those farther out are sacral marrow. The midpoint rule it replaces
#: on coarse grids gave the ilia half of the fatty alar marrow that lies between the sacral
#: cortex found by the threshold and the iliac cortex (real 3 mm scan: 13 ml of the v1
#: sacrum label, Dice 0.658 -> 0.692).
JOINT_GAP_MM = 3.0
#: Only voxels at least this far (mm, left-right) from the midline are added: the alae, not the
#: canal (half-width about 10-15 mm at S1) or the notches between the posterior elements. On
#: coarse grids, axial holes open in 3D are kept open only nearer the midline than this.
ALA_MEDIAL_MM = 20.0
#: Half-width (mm) of the band about the enclosure's sacrum-ilium boundary that
#: :func:`redecide_joint` re-decides on the CT: two 3 mm voxels. Measured 2026-12-04 on the
#: real 3 mm scan (S1-label run) where TotalSegmentator v1's sacrum label meets its hip label:
#: the coarse watershed's iliac region held 1-2 voxels of the label's sacrum on 90 of 133 rows
#: (left) and 83 of 124 (right), 3-6 voxels on 29 and 37 rows, and the 3 mm joint-gap layer
#: took one more: the mask began 2-4 voxels medial of the label's edge.
JOINT_BAND_MM = 6.0


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


def _holes_in_planes(mask: np.ndarray, axis: int) -> np.ndarray:
    """Background enclosed by ``mask`` within each plane normal to ``axis`` (4-connected).

    The same set as ``ndi.binary_fill_holes(mask, structure=_plane_structure(axis)) & ~mask``
    (background not connected in its plane to the array's in-plane border), found with one
    labelling pass instead of a dilation iterated from the border (2-3 times less CPU on the
    3 mm scan's boxes).
    """
    lab, n = ndi.label(~mask, structure=_plane_structure(axis))
    open_label = np.zeros(n + 1, bool)
    open_label[0] = True  # the mask itself
    for ax in range(3):
        if ax != axis:
            for end in (0, -1):
                open_label[np.take(lab, end, axis=ax)] = True
    return ~open_label[lab]


def _fill_in_planes(mask: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """Union over ``axes`` of the holes filled slice by slice in planes normal to each axis."""
    out = mask.copy()
    for ax in axes:
        out |= _holes_in_planes(mask, ax)
    return out


def _close_in_planes(mask: np.ndarray, axis: int, radius_mm: float,
                     spacing_mm: np.ndarray) -> np.ndarray:
    """Binary closing with an in-plane disk; padded so the image border does not erode."""
    disk = _plane_disk(axis, radius_mm, spacing_mm)
    pad = max(disk.shape) // 2 + 1
    closed = ndi.binary_closing(np.pad(mask, pad), structure=disk)
    return closed[pad:-pad, pad:-pad, pad:-pad]


def fill_coarse_sacrum(sac: np.ndarray, regions: np.ndarray, spacing_mm: np.ndarray, *,
                       radius_mm: float = COARSE_CLOSE_MM, seal_vox: int = 0,
                       joint_gap_mm: float | None = None, hu: np.ndarray | None = None,
                       dx_mm: np.ndarray | None = None) -> np.ndarray:
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
       With ``joint_gap_mm``, the ilia do not compete in this rule: an ilium's own marrow is
       already the closed and filled iliac region, so enclosed space outside it lies across
       the sacroiliac joint, in the sacrum, except within ``joint_gap_mm`` of the ilium (the
       joint space itself).
    3. Holes that are enclosed in axial slices but open in 3D (spinal canal, foramina) are
       kept open (with ``dx_mm``, only within :data:`ALA_MEDIAL_MM` of the midline); marrow
       enclosed in 3D is kept.
    4. With ``hu`` and ``joint_gap_mm``: the bone on both sides of the sacrum-ilium boundary
       is re-decided on the CT (:func:`redecide_joint`): the sacral cortex that the coarse
       watershed gave the ilium returns. Voxels below the bone threshold within
       ``joint_gap_mm`` of the iliac region stay out, as without ``hu``.

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
    seal_vox : int
        Before the 3D enclosure test of step 3, the sacrum is closed by this many voxels
        (3D cross): a shell with small 3D leaks (a few missing cortex blocks) then still
        encloses its marrow, while the canal and foramina (several voxels wide) stay open.
    joint_gap_mm : float, optional
        Width of the sacroiliac joint space (mm). None: filled voxels nearer an ilium than the
        sacrum are left out (the midpoint rule). Given: only filled voxels within this distance
        of the closed iliac regions are left out; see step 2 and :data:`JOINT_GAP_MM`.
    hu : (I, J, K) ndarray, optional
        CT (HU) on the same grid. With ``joint_gap_mm``, bone at the boundary between the
        completed sacrum and the ilia is split at the joint space the CT shows (step 4).
    dx_mm : (I,) ndarray, optional
        Signed left-right distance (mm) of each first-axis index from the midline. Given,
        axial holes open in 3D are kept open only within :data:`ALA_MEDIAL_MM` of it (the
        canal and the foramina next to it): lateral of that, a hole that is open in 3D only
        through leaks of the coarse shell is alar marrow (real 3 mm scan, S1-label run,
        measured 2026-12-04: a 1.2 ml piece of the left ala 27-42 mm lateral, 73-84 HU,
        10 mm inside the v1 sacrum label, was left out and cut every left screw axis at
        7.7 mm; no voxel outside the label was added by the rule).

    Returns
    -------
    (I, J, K) bool ndarray
        The completed sacrum (largest connected piece holding the input sacrum).
    """
    if not sac.any():
        return sac
    # work in the sacrum's bounding box grown by the closing's full reach (dilation then
    # erosion, 2 radii) plus the nearest-region reach, so the result is that of the whole
    # volume at a fraction of the cost
    margin = int(np.ceil(4.0 * radius_mm / float(np.min(spacing_mm)))) + seal_vox + 2
    idx = np.argwhere(sac)
    lo = np.maximum(idx.min(axis=0) - margin, 0)
    hi = np.minimum(idx.max(axis=0) + margin + 1, np.asarray(sac.shape))
    box = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))
    out = np.zeros(sac.shape, bool)
    out[box] = _fill_coarse_box(sac[box], regions[box], spacing_mm, radius_mm, seal_vox,
                                joint_gap_mm, None if hu is None else np.asarray(hu[box]),
                                None if dx_mm is None else np.asarray(dx_mm)[box[0]])
    return out


def _fill_coarse_box(sac: np.ndarray, regions: np.ndarray, spacing_mm: np.ndarray,
                     radius_mm: float, seal_vox: int, joint_gap_mm: float | None,
                     hu: np.ndarray | None = None, dx_mm: np.ndarray | None = None
                     ) -> np.ndarray:
    """:func:`fill_coarse_sacrum` inside a box around the sacrum (see there)."""
    ilia = np.zeros(sac.shape, bool)
    for code in (ILIUM_LEFT, ILIUM_RIGHT):
        one = _close_in_planes(regions == code, 2, float(np.max(spacing_mm)), spacing_mm)
        ilia |= _fill_in_planes(one, (2, 1))
    union = sac | ilia
    filled = np.zeros(sac.shape, bool)
    for ax in (2, 1):
        filled |= _fill_in_planes(_close_in_planes(union, ax, radius_mm, spacing_mm), (ax,))
    competing = (SACRUM, CRANIAL) if joint_gap_mm is not None else (
        SACRUM, ILIUM_LEFT, ILIUM_RIGHT, CRANIAL)
    seeds = np.where(np.isin(regions, competing), regions, 0)
    reach_vox = int(np.ceil(2.0 * radius_mm / float(np.min(spacing_mm))))
    sacral = expand_labels(seeds, distance=reach_vox) == SACRUM
    if joint_gap_mm is not None and hu is None:
        # the joint space: within joint_gap_mm of the closed ilium (a voxel touching it is at
        # one voxel size); beyond it, enclosed space is sacral
        sacral &= ndi.distance_transform_edt(~ilia, sampling=spacing_mm) > joint_gap_mm
    axial_holes = _fill_in_planes(sac, (2,)) & ~sac
    sealed = sac
    if seal_vox > 0:
        sealed = ndi.binary_closing(np.pad(sac, seal_vox + 1), iterations=seal_vox)
        sealed = sealed[(slice(seal_vox + 1, -(seal_vox + 1)),) * 3] | sac
    enclosed_3d = ndi.binary_fill_holes(sealed)
    open_holes = axial_holes & ~enclosed_3d
    if dx_mm is not None:
        open_holes &= (np.abs(dx_mm) < ALA_MEDIAL_MM)[:, None, None]
    out = (filled & sacral & ~ilia & ~open_holes) | sac
    if joint_gap_mm is not None and hu is not None:
        # bone across the joint is re-decided on the CT; below the bone threshold, the
        # joint-gap layer next to the ilium (and the iliac region's closing) stays out as
        # before: joint space, or the fat of the dorsal sacroiliac groove that the closing
        # fills (real 3 mm scan, S1-label run, 2026-12-04: re-deciding those too added 163
        # voxels outside the v1 sacrum label, median -24 HU, 4.4 ml, dorsal, 39 mm lateral)
        out = redecide_joint(out, ilia, hu, spacing_mm)
        joint_layer = ndi.distance_transform_edt(~ilia, sampling=spacing_mm) <= joint_gap_mm
        out = (out & ~(joint_layer & (regions == 0))) | sac
    lab, _ = ndi.label(out)
    keep = np.bincount(lab[sac].ravel())
    keep[0] = 0
    return lab == int(np.argmax(keep))


def redecide_joint(sacral: np.ndarray, ilia: np.ndarray, hu: np.ndarray,
                   spacing_mm: np.ndarray, *, band_mm: float = JOINT_BAND_MM) -> np.ndarray:
    """Move the boundary between a completed coarse sacrum and the ilia onto the joint space.

    On coarse voxels the sacroiliac joint (2-4 mm) is one voxel between the iliac and the
    sacral subchondral cortex, and partial volume leaves it only a little darker than them;
    the alar marrow behind the sacral cortex is darker still where it is fatty. Measured
    2026-12-04 on the real 3 mm scan across the edge of TotalSegmentator v1's sacrum label
    (median HU, hip side first): 283 (iliac cortex), 183 (joint), 211 (sacral cortex), 111,
    69, 54 (alar marrow). The coarse watershed on HU and thickness reaches the sacral cortex
    across the joint before the sacral basin reaches it through the marrow, and gives it to
    the ilium. Here the marrow is already sacral (completed by enclosure), so the question is
    only where the joint is: the voxels within ``band_mm`` of the boundary are flooded again
    from the sacrum and the ilia farther from it, on the joint-space depth
    (:func:`~alarscrew.anatomy.refine.seam_depth_hu`: how much darker a voxel is than the
    brightest voxels on both sides of it along a line), so that the two meet in the joint
    space where the CT shows one, and at the nearest marker elsewhere.

    Parameters
    ----------
    sacral : (I, J, K) bool ndarray
        The completed sacrum.
    ilia : (I, J, K) bool ndarray
        The closed and filled iliac regions (disjoint from ``sacral``).
    hu : (I, J, K) ndarray
        CT in HU on the same grid.
    spacing_mm : (3,) ndarray
        Voxel size.
    band_mm : float
        See :data:`JOINT_BAND_MM`.

    Returns
    -------
    (I, J, K) bool ndarray
        The sacrum: ``sacral`` with the band re-decided (voxels outside ``sacral | ilia`` are
        never added).
    """
    from alarscrew.anatomy.refine import SEAM_REACH_MM, seam_depth_hu  # cycle (via sacrum)

    if not sacral.any() or not ilia.any():
        return sacral
    band = ((sacral & (ndi.distance_transform_edt(~ilia, sampling=spacing_mm) <= band_mm))
            | (ilia & (ndi.distance_transform_edt(~sacral, sampling=spacing_mm) <= band_mm)))
    if not band.any():
        return sacral
    markers = np.zeros(sacral.shape, np.int32)
    markers[sacral & ~band] = 1
    markers[ilia & ~band] = 2
    # the joint-space depth only on the band, in its box grown by the probes' reach (there
    # the same as on the whole grid); the markers are flooded first, whatever their elevation
    pad = max(1, int(np.floor(SEAM_REACH_MM / float(np.min(spacing_mm)) + 1e-6)))
    sub = padded_box(band, pad)
    elevation = np.full(sacral.shape, -1.0, np.float32)
    elevation[sub] = np.maximum(seam_depth_hu(np.asarray(hu[sub], np.float32), spacing_mm),
                                0.0)
    elevation[markers > 0] = -1.0
    return watershed(elevation, markers, mask=sacral | ilia) == 1


#: Closing radius (mm) of the enclosure step of :func:`fill_fine_sacrum` on the working grid:
#: bridges a sacroiliac joint gap and partial-volume holes in a resolved cortex. With the
#: coarse path's 12 mm, soft tissue in notches of the bone surface of the default 1 mm phantom
#: (bright marrow) joins the sacrum (Dice 0.946 -> 0.918); at 4 and 8 mm it is unchanged.
FINE_CLOSE_MM = 4.0
#: Added marrow pieces smaller than this (ml) are dropped: the marrow of one sacral ala is
#: some 15-40 ml (about 40 x 30 x 30 mm; 14 ml recovered in one ala of the fatty 1 mm phantom
#: of tests/anatomy/test_fine_fill.py), while soft tissue caught in notches of the bone surface
#: came in pieces of 0.1-1.3 ml there.
MIN_MARROW_ML = 5.0
#: Reach (mm) around the working sacrum searched for alar cortex and the ilia.
FINE_REACH_MM = 25.0


def _block_any(mask: np.ndarray, factor: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Block 'any' of a full-resolution sub-array onto a working sub-grid of ``shape``."""
    f = [int(v) for v in factor]
    crop = mask[: shape[0] * f[0], : shape[1] * f[1], : shape[2] * f[2]]
    return np.asarray(crop.reshape(shape[0], f[0], shape[1], f[1], shape[2], f[2])
                      .any(axis=(1, 3, 5)))


def fill_fine_sacrum(sac_canon: np.ndarray, hu_canon: np.ndarray, result: SacrumResult,
                     grid: WorkGrid, *, radius_mm: float = FINE_CLOSE_MM,
                     reach_mm: float = FINE_REACH_MM,
                     ala_medial_mm: float = ALA_MEDIAL_MM,
                     min_marrow_ml: float = MIN_MARROW_ML) -> np.ndarray:
    """Complete a full-resolution sacrum whose alar marrow is darker than the bone threshold.

    On fine scans (< 2.5 mm voxels) the sacrum is segmented on the ~2 mm working grid and
    refined against a full-resolution bone mask (:func:`~alarscrew.anatomy.refine.
    refine_full_resolution`). Fatty or osteoporotic alar marrow (about 40 HU, like muscle)
    is below the bone thresholds at both resolutions, and a 2 mm block mean of a thin alar
    cortex with that marrow is too, so the ala is lost or kept as a hollow shell. It is
    recovered by enclosure, as on coarse scans (:func:`fill_coarse_sacrum`):

    1. Within ``reach_mm`` of the working sacrum, full-resolution bone (the surface
       hysteresis thresholds of :mod:`~alarscrew.anatomy.sacrum`) is carried to the working
       grid by block 'any', so that a 1 mm cortex marks its 2 mm block. Before that, the
       bone is split by a watershed on HU (brightest first, so that regions meet in the dim
       voxels of a joint space) from the refined sacrum, the bone of the working iliac and
       lumbar regions, and, as lumbar, the bone of the working sacral region that the
       refinement left out (an L5 body the working region had taken). The alar cortex,
       unseen on the working grid but connected to the sacrum, joins it; the iliac cortex
       an ilium.
    2. :func:`fill_coarse_sacrum` on that working shell: the space enclosed between the
       sacral cortex and the ilia becomes sacrum; canal and foramina open in 3D stay open
       (one-voxel leaks of the shell are sealed for that test); nothing nearer an ilium or
       the lumbar bone is taken.
    3. The added blocks are cut to the CT's resolution by a watershed on the HU, flooded from
       the marrow (dark voxels of added blocks that hold no bone and do not touch the
       outside) and from outside the completed sacrum: the two meet on the cortex, the
       brightest line between them. Only voxels at least ``ala_medial_mm`` from the midline
       are added (the alae; the canal and the notches between the posterior elements are
       medial), in connected pieces of at least ``min_marrow_ml`` (an ala's marrow, not soft
       tissue caught in a notch of the bone surface), with the sacral cortex that bounds
       them; full-resolution bone of another structure never is.

    Where the marrow is above the bone threshold the refined sacrum is already solid and the
    enclosure adds only what lies within the sacral cortex.

    Parameters
    ----------
    sac_canon : (I, J, K) bool ndarray
        Refined sacrum on the canonical full-resolution grid (``grid.canon_shape``).
    hu_canon : (I, J, K) ndarray
        CT in HU on the same grid.
    result : SacrumResult
        The working-grid segmentation that ``sac_canon`` was refined from.
    grid : WorkGrid
        The working grid.
    radius_mm : float
        In-plane closing radius of the enclosure (see :func:`fill_coarse_sacrum`).
    reach_mm : float
        Margin around the working sacrum in which cortex and ilia are looked for.
    ala_medial_mm : float
        Voxels nearer the midline than this (left-right, mm) are never added.
    min_marrow_ml : float
        Connected pieces of added marrow smaller than this are dropped.

    Returns
    -------
    (I, J, K) bool ndarray
        The completed sacrum; it contains ``sac_canon``. Inputs are not modified.
        ``sac_canon`` itself is returned on coarse grids (>= 2.5 mm, completed by
        :func:`fill_coarse_sacrum` in :func:`~alarscrew.anatomy.sacrum.isolate_sacrum`), for a
        supplied sacrum label, and when it is empty.
    """
    from alarscrew.anatomy.sacrum import COARSE_MM, SURFACE_HIGH_HU, SURFACE_LOW_HU  # cycle

    canon_sp = np.sqrt((grid.canon_affine[:3, :3] ** 2).sum(axis=0))
    if (not sac_canon.any() or not result.sacrum.any() or float(np.max(canon_sp)) >= COARSE_MM
            or result.method.startswith("supplied sacrum")):
        return sac_canon
    f = np.asarray(grid.factor, int)
    sp_w = grid.spacing_mm
    box = bounding_box(result.sacrum)
    pad = np.ceil(reach_mm / sp_w).astype(int)
    lo = np.maximum(box[0] - pad, 0)  # type: ignore[index]
    hi = np.minimum(box[1] + pad, np.asarray(result.sacrum.shape))  # type: ignore[index]
    sl_w = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))
    sl_c = tuple(slice(int(a * n), int(b * n)) for a, b, n in zip(lo, hi, f, strict=True))
    shape_w = tuple(int(b - a) for a, b in zip(lo, hi, strict=True))
    hu = np.asarray(hu_canon[sl_c], np.float32)
    sac = np.asarray(sac_canon[sl_c], bool)
    low_hu = SURFACE_LOW_HU
    bone = apply_hysteresis_threshold(hu, low_hu, SURFACE_HIGH_HU) | sac

    # 1. the working shell. Full-resolution bone is split by a watershed (brightest bone
    # first, so regions meet at the dim partial-volume voxels of a joint space) from the
    # refined sacrum and from the bone of the working iliac and lumbar regions; bone of the
    # working sacral region that the refinement left out of the sacrum counts as lumbar (the
    # working region can hold the L5 body, which the full-resolution watershed hands to the
    # lumbar region). Each label is carried to the working grid by block 'any', the sacrum
    # winning a block it shares.
    reg_w = np.asarray(result.regions[sl_w])
    reg_up = block_repeat(reg_w, f, hu.shape)
    markers = np.where(reg_up == SACRUM, CRANIAL, reg_up).astype(np.int32)
    markers[~bone] = 0
    markers[sac] = SACRUM
    labelled = watershed(-hu, markers, mask=bone)
    sac_w = _block_any(labelled == SACRUM, f, shape_w)
    shell = np.zeros(shape_w, np.int32)
    for code in (CRANIAL, ILIUM_LEFT, ILIUM_RIGHT):
        shell[_block_any(labelled == code, f, shape_w)] = code
    shell[sac_w] = SACRUM
    bone_w = _block_any(bone, f, shape_w)

    # 2. enclosure on the working grid
    filled_w = fill_coarse_sacrum(shell == SACRUM, shell, sp_w, radius_mm=radius_mm,
                                  seal_vox=1)

    # 3. native-resolution surface of what was added: a watershed on the HU, flooded from the
    # marrow (dark voxels of completed blocks that hold no bone and lie inside the completed
    # sacrum) and from outside it, meets on the cortex, the brightest line between them
    filled = block_repeat(filled_w, f, hu.shape)
    not_sacral = bone & ~sac & block_repeat(np.isin(shell, (ILIUM_LEFT, ILIUM_RIGHT, CRANIAL)),
                                       f, hu.shape)
    core_w = ndi.binary_erosion(filled_w) & ~bone_w & ~sac_w
    outside_w = ~ndi.binary_dilation(filled_w)
    mask = block_repeat(ndi.binary_dilation(filled_w, iterations=2), f, hu.shape) & ~not_sacral
    markers = np.zeros(hu.shape, np.int32)
    markers[block_repeat(core_w, f, hu.shape) & (hu < low_hu)] = 1
    markers[block_repeat(outside_w, f, hu.shape)] = 2
    markers[~mask] = 0
    ws = watershed(ndi.gaussian_filter(hu, 0.5), markers, mask=mask)
    x_mm = grid.canon_affine[0, 0] * np.arange(sl_c[0].start, sl_c[0].stop) \
        + grid.canon_affine[0, 3]
    alar = (np.abs(x_mm - result.midline_x_mm) >= ala_medial_mm)[:, None, None]
    marrow = filled & (ws == 1) & alar & ~sac
    lab, n = ndi.label(marrow)
    if n:
        vox_mm3 = float(np.prod(canon_sp))
        big = np.bincount(lab.ravel()) * vox_mm3 >= min_marrow_ml * 1000.0
        big[0] = False
        marrow = big[lab]
    # sacral bone that the refinement had not kept (alar cortex) joins where it bounds marrow
    cortex = filled & bone & ~not_sacral & ndi.binary_dilation(marrow, iterations=2)
    keep = marrow | cortex
    out_sub = sac | keep
    lab, n = ndi.label(out_sub)
    if n > 1:
        count = np.bincount(lab[sac].ravel(), minlength=n + 1)
        count[0] = 0
        out_sub = (count > 0)[lab]
    out = np.array(sac_canon, bool, copy=True)
    out[sl_c] = out_sub
    return out

"""Isolate the sacrum (with both alae) from a CT, with or without label maps.

Method (all on the canonical ~2 mm working grid of :mod:`alarscrew.anatomy.grid`):

1. Bone by HU with hysteresis: voxels above ``low`` HU connected to voxels above ``high`` HU
   (cortex), then enclosed cavities filled in 3D. The low threshold drops for coarse voxels
   because partial-volume averaging pulls thin cortex and fatty trabecular bone toward soft
   tissue (the shared 3 mm scan has a median sacral HU of ~120).
2. Markers. Sacrum: the supplied ``s1`` label (or ``sacrum`` label, used as the answer when
   present), otherwise found automatically: the thickest midline bone (maximum of the distance
   transform within +-15 mm of the midsagittal plane) at levels where bone lies on both sides
   far laterally (ilia), in the posterior part of the pelvis. Not sacrum: supplied L5/lumbar,
   hip and femur labels, bone more than 75 mm lateral of the midline (iliac wings), and midline
   bone more than 45 mm cranial to the seed (lumbar column). Without labels, the L5-S1 disc
   (:func:`find_lumbosacral_disc`: the plane patch cranial to the seed that is darkest between
   two endplates) bounds the automatic marker, and the bone above it in the body column marks
   L5; on coarse fatty scans the disc is barely darker than the marrow and an unbounded
   sacral region floods the lower L5 body.
3. Marker-controlled watershed on the negated Euclidean distance transform of the bone: basins
   meet at the narrowest bone bridges, i.e. at the sacroiliac joints (thin or absent joint gap)
   and at the L5-S1 disc/facets. On coarse voxels the two cortical plates of a joint and its gap
   average to one band darker than a cortex; bright bands with marrow on both sides
   (:func:`inner_plates`) are removed from the cortex-free bone so the distance map still has
   a neck at the joint.
4. Working voxels of 2.5 mm or more: fatty marrow averages to soft-tissue values, so the
   watershed sacrum is a cortical shell; its alar marrow is recovered by enclosure between
   the sacral cortex and the ilia (:func:`~alarscrew.anatomy.fill.fill_coarse_sacrum`); the
   shell before that completion is kept (``SacrumResult.shell``) for the endplate fit.
5. The sacrum region is upsampled to the CT grid and intersected with a full-resolution bone
   mask computed in its bounding box, so the surface follows the CT at native resolution
   (:func:`~alarscrew.anatomy.refine.refine_full_resolution`).

Limits: a fused (ankylosed) SI joint with no narrowing, or an L5-S1 bridge as thick as the
bodies, moves the cut; the automatic seed assumes the pelvis is in the field of view.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage as ndi
from skimage.filters import apply_hysteresis_threshold
from skimage.segmentation import watershed

from alarscrew.anatomy.fill import JOINT_GAP_MM, fill_coarse_sacrum
from alarscrew.anatomy.grid import WorkGrid, padded_box
from alarscrew.anatomy.regions import CRANIAL, ILIUM_LEFT, ILIUM_RIGHT, SACRUM
from alarscrew.errors import AnatomyNotFoundError

#: Bone hysteresis thresholds (HU) for fine (< 2.5 mm) and coarse working voxels.
BONE_LOW_HU_FINE, BONE_HIGH_HU_FINE = 150.0, 300.0
#: Full-resolution surface thresholds (HU): nearer the half-maximum of a cortex edge, so the
#: surface does not sit half a voxel outside the bone; enclosed marrow is filled in 3D.
SURFACE_LOW_HU, SURFACE_HIGH_HU = 150.0, 300.0
BONE_LOW_HU_COARSE, BONE_HIGH_HU_COARSE = 110.0, 250.0
#: Cortex (HU above this) is removed before the distance transform, so that the cortical
#: plates on both sides of a sacroiliac joint act as a barrier between the basins.
CORTEX_HU = 450.0
#: The same on coarse working voxels (>= 2.5 mm). A voxel holding a fraction f of a cortical
#: plate (C HU) and marrow (M HU) reads M + f (C - M) by partial volume: a 1-1.5 mm plate
#: (C ~ 850 HU) spread over one or two 3 mm voxels of 200 HU marrow reads ~330-460 HU, and the
#: two facing plates of a sacroiliac joint with its 2-4 mm gap read ~290-390 HU (measured on
#: the analytic phantom at 3 mm), under :data:`CORTEX_HU`, so the joint would stay inside the
#: cortex-free bone and the distance map would have no neck there. At this threshold a plate
#: filling about a tenth of a voxel already breaks the cortex-free bone; marrow (150-250 HU in
#: healthy adults, ~40-150 HU on the shared osteoporotic 3 mm scan) stays below it.
CORTEX_HU_COARSE = 270.0
#: Reach (mm) on either side of a bright voxel within which marrow must lie for the voxel to
#: count as a plate inside bone (:func:`inner_plates`): two coarse voxels, as the facing plates
#: of a joint blur over up to three 3 mm voxels.
PLATE_REACH_MM = 6.0
PLATE_MARROW_HU = 150.0
#: Gaussian sigma (voxels) of the HU map used as watershed elevation on coarse grids.
COARSE_SMOOTH_VOX = 0.7
#: Scales that weigh smoothed HU against cortex-free thickness in the coarse elevation.
COARSE_HU_SCALE = 300.0
COARSE_EDT_SCALE_MM = 3.0
#: A voxel darker by this much than the cortices either side of it lies in a joint space
#: (HU; :func:`seam_depth_hu`).
SEAM_HU = 200.0
#: Working voxels this close to another structure are re-decided at full resolution.
UNSURE_BAND_VOX = 1
#: Working voxels at least this large (mm) take the coarse path.
COARSE_MM = 2.5
#: Bone more lateral than this from the midline is never sacrum (sacral half-width ~45-65 mm).
ILIUM_LATERAL_MM = 75.0
#: Half-width of the midline band searched for the sacral seed.
MIDLINE_BAND_MM = 15.0
#: Midline bone (at least LUMBAR_CHECK_VOLUME_MM3) within this distance below an automatic
#: region means the region was a lumbar vertebra, not the sacrum.
LUMBAR_CHECK_MM = 20.0
LUMBAR_CHECK_VOLUME_MM3 = 3000.0
#: Midline bone this far cranial to the seed belongs to the lumbar column.
CRANIAL_MARKER_MM = 45.0


@dataclass(frozen=True)
class SacrumResult:
    """Sacrum isolation on the working grid.

    Attributes
    ----------
    sacrum : (I, J, K) bool ndarray
        Sacrum on the working grid (canonical RAS axis order).
    regions : (I, J, K) int ndarray
        Watershed regions (0 background, 1 sacrum, 2 left ilium, 3 right ilium, 4 cranial).
    bone : (I, J, K) bool ndarray
        Bone mask on the working grid.
    seed_ras_mm : (3,) ndarray
        Where the sacrum marker was centred.
    midline_x_mm : float
        RAS x of the pelvic midline used to place markers.
    method : str
        How the sacrum was found (label used, automatic seed...).
    shell : (I, J, K) bool ndarray or None
        On coarse grids, the sacrum as the CT shows it before its marrow was completed by
        enclosure (:func:`~alarscrew.anatomy.fill.fill_coarse_sacrum`): cortex and bright
        marrow only. The closing that completes the alae can also bridge the spinal canal, so
        the S1 frame is fitted on this measured shell. None on fine grids.
    """

    sacrum: np.ndarray
    regions: np.ndarray
    bone: np.ndarray
    seed_ras_mm: np.ndarray
    midline_x_mm: float
    method: str
    shell: np.ndarray | None = None
    prepared: _Prepared | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class _Prepared:
    """What :func:`isolate_sacrum` computes before a cranial hint is applied.

    The watershed markers (without the hint), the bone mask the watershed floods, its
    elevation and the method text: a second pass on the same working CT and labels that only
    adds a cranial hint reuses them instead of recomputing the bone mask, distance maps,
    automatic seed, L5-S1 disc search and joint-space depth.
    """

    key: tuple
    markers: np.ndarray
    bone: np.ndarray
    elevation: np.ndarray
    seed_ras_mm: np.ndarray
    midline_x_mm: float
    dx_mm: np.ndarray
    coarse: bool
    method: str
    elevation_method: str


def _prepared_key(hu: np.ndarray, grid: WorkGrid, labels: dict[str, np.ndarray],
                  joint_resolved: bool) -> tuple:
    """What must match for a :class:`_Prepared` to be reused (shape, grid, labels, HU sum)."""
    return (hu.shape, grid.affine.tobytes(), tuple(sorted(labels)),
            tuple(int(np.count_nonzero(labels[k])) for k in sorted(labels)), joint_resolved,
            float(np.sum(hu, dtype=np.float64)))


def edt_in_box(mask: np.ndarray, spacing_mm: np.ndarray) -> np.ndarray:
    """``ndi.distance_transform_edt(mask, sampling=spacing_mm)``, computed in the mask's box.

    The transform runs on the bounding box of ``mask`` grown by one voxel (clipped to the
    array); voxels outside it are background (0). The values are those of the whole-grid
    transform: for a foreground voxel p and any background voxel q outside the grown box,
    clamping q's coordinates to the box gives a voxel on its background rim at most as far
    from p along every axis. On the 0.8 mm bench (256 x 256 x 200 working grid, bone in a
    quarter of it) this is several times faster.

    Returns
    -------
    (I, J, K) float64 ndarray
        Distance (mm) to the nearest background voxel.
    """
    out = np.zeros(mask.shape)
    box = padded_box(mask, 1)
    if box is not None:
        out[box] = ndi.distance_transform_edt(mask[box], sampling=spacing_mm)
    return out


def fill_holes_in_box(mask: np.ndarray) -> np.ndarray:
    """``ndi.binary_fill_holes(mask)`` computed in the mask's bounding box grown by one voxel.

    Background inside the box is connected to the box's edge exactly when it is connected to
    the array's edge in the whole grid (the one-voxel rim of the box is background and wraps
    the mask wherever the box does not meet the array's edge), so the result is the same.
    """
    out = np.zeros(mask.shape, bool)
    box = padded_box(mask, 1)
    if box is not None:
        out[box] = ndi.binary_fill_holes(mask[box])
    return out


def bone_thresholds_hu(spacing_mm: np.ndarray) -> tuple[float, float]:
    """(low, high) hysteresis thresholds in HU for a working voxel size."""
    if float(np.max(spacing_mm)) >= 2.5:
        return BONE_LOW_HU_COARSE, BONE_HIGH_HU_COARSE
    return BONE_LOW_HU_FINE, BONE_HIGH_HU_FINE


def bone_mask(hu: np.ndarray, spacing_mm: np.ndarray, *, min_volume_mm3: float = 2000.0,
              thresholds_hu: tuple[float, float] | None = None) -> np.ndarray:
    """Solid bone mask: hysteresis threshold, small specks removed, enclosed cavities filled.

    Parameters
    ----------
    hu : (I, J, K) ndarray
        CT values in HU.
    spacing_mm : (3,) ndarray
        Voxel size along each axis.
    min_volume_mm3 : float
        Connected components smaller than this are dropped (noise, calcified vessels).
    """
    low, high = thresholds_hu or bone_thresholds_hu(spacing_mm)
    out = np.zeros(hu.shape, bool)
    # every step below acts on the connected components above ``low``: computed inside their
    # bounding box (the hole filling inside the kept bone's box grown by one voxel), the same
    # as on the whole grid, where the bone is often a fraction of a padded scan
    box = padded_box(np.asarray(hu) > min(low, high), 0)
    if box is None:
        return out
    bone = apply_hysteresis_threshold(np.asarray(hu[box]), low, high)
    lab, n = ndi.label(bone)
    if n == 0:
        return out
    sizes = np.bincount(lab.ravel())
    keep = sizes * float(np.prod(spacing_mm)) >= min_volume_mm3
    keep[0] = False
    out[box] = keep[lab]
    return fill_holes_in_box(out)


#: Inner plates (:func:`inner_plates`) are removed only this far (mm) or farther from the
#: midline: the sacroiliac joints lie 40-60 mm out (sacral half-width at S1 45-65 mm), the
#: canal and the S1 pedicles within about 30 mm.
PLATE_LATERAL_MM = 35.0


def inner_plates(hu: np.ndarray, bone: np.ndarray, spacing_mm: np.ndarray, *,
                 plate_hu: float = CORTEX_HU_COARSE,
                 marrow_hu: float = PLATE_MARROW_HU,
                 reach_mm: float = PLATE_REACH_MM) -> np.ndarray:
    """Bright plates inside bone: voxels of at least ``plate_hu`` with marrow on both sides.

    A cortex normally bounds a bone, with soft tissue on its outer side. A bright band with
    marrow (bone darker than ``plate_hu``) on both sides, within ``reach_mm`` along one of the
    13 line directions of the 3x3x3 neighbourhood, is two cortices facing each other across a
    joint whose gap partial volume hides on coarse voxels (sacroiliac joint, endplates at a
    disc), or a septum. Removing these voxels from the cortex-free bone gives the distance map
    a neck at the joint.

    Parameters
    ----------
    hu : (I, J, K) ndarray
        CT in HU on the working grid.
    bone : (I, J, K) bool ndarray
        Bone mask on the same grid.
    spacing_mm : (3,) ndarray
        Voxel size per axis.
    plate_hu, reach_mm : float
        See :data:`CORTEX_HU_COARSE` and :data:`PLATE_REACH_MM`.

    Returns
    -------
    (I, J, K) bool ndarray
    """
    bright = bone & (hu >= plate_hu)
    # marrow away from the bone surface: the partial-volume rim of an outer cortex is not marrow
    marrow = ndi.binary_erosion(bone) & (hu >= marrow_hu) & (hu < plate_hu)
    shape = np.asarray(hu.shape)
    steps = [np.array(d) - 1 for d in np.ndindex(3, 3, 3)]
    steps = [d for d in steps if tuple(d) > (0, 0, 0)]  # one of each +-d pair
    k_max = max(1, int(np.floor(reach_mm / float(np.min(spacing_mm)) + 1e-6)))
    padded = np.pad(marrow, k_max)

    def shifted(offset: np.ndarray) -> np.ndarray:
        return padded[tuple(slice(k_max + int(o), k_max + int(o) + int(n))
                            for o, n in zip(offset, shape, strict=True))]

    between = np.zeros(hu.shape, bool)
    for d in steps:
        k = max(1, int(np.floor(reach_mm / float(np.linalg.norm(d * spacing_mm)) + 1e-6)))
        ahead = np.logical_or.reduce([shifted(d * i) for i in range(1, k + 1)])
        behind = np.logical_or.reduce([shifted(-d * i) for i in range(1, k + 1)])
        between |= ahead & behind
    return bright & between


def _coords_mm(shape: tuple[int, ...], affine: np.ndarray, axis: int) -> np.ndarray:
    """RAS coordinate along ``axis`` of each index of a canonical (diagonal-ish) grid."""
    idx = np.arange(shape[axis], dtype=float)
    return affine[axis, axis] * idx + affine[axis, 3]


def find_midline_x_mm(bone: np.ndarray, grid: WorkGrid) -> float:
    """RAS x of the pelvic midline: median over axial slices of the centre of the bone's x-extent.

    Only slices whose bone spans more than 150 mm (pelvic ring) vote; otherwise all bone does.
    """
    x_mm = _coords_mm(bone.shape, grid.affine, 0)
    present = bone.any(axis=1)  # (I, K)
    any_k: np.ndarray = np.asarray(present.any(axis=0))
    if not any_k.any():
        raise AnatomyNotFoundError("no bone above the HU threshold in the image: is this a CT "
                                   "of the pelvis?")
    first = np.argmax(present, axis=0)
    last = present.shape[0] - 1 - np.argmax(np.asarray(present)[::-1], axis=0)
    width = (last - first) * grid.spacing_mm[0]
    centre = (x_mm[first] + x_mm[last]) / 2.0
    wide = any_k & (width > 150.0)
    sel = wide if wide.sum() >= 3 else any_k
    return float(np.median(centre[sel]))


def _ilium_levels(bone: np.ndarray, dx_mm: np.ndarray) -> np.ndarray:
    """Axial levels (bool per k) spanned by the largest lateral bone component on each side.

    The ilia (with the femora) are by far the largest bones lateral of the sacrum; ribs and
    transverse processes are small separate components, so thoracic levels drop out.
    """
    levels = np.ones(bone.shape[2], bool)
    for side in (dx_mm < -ILIUM_LATERAL_MM, dx_mm > ILIUM_LATERAL_MM):
        lat = bone & side[:, None, None]
        lab, n = ndi.label(lat)
        if n == 0:
            return np.zeros(bone.shape[2], bool)
        sizes = np.bincount(lab.ravel())
        sizes[0] = 0
        levels &= (lab == int(np.argmax(sizes))).any(axis=(0, 1))
    return levels


def auto_sacrum_seed(bone: np.ndarray, edt_mm: np.ndarray, grid: WorkGrid,
                     midline_x_mm: float) -> np.ndarray:
    """Working-grid index of the automatic sacral seed (see module docstring).

    Raises
    ------
    AnatomyNotFoundError
        When no midline bone lies between bilateral lateral bone (ilia): the sacrum is not in
        the field of view.
    """
    x_mm = _coords_mm(bone.shape, grid.affine, 0)
    dx = x_mm - midline_x_mm
    lat_left = bone[dx < -ILIUM_LATERAL_MM + 15.0].any(axis=(0, 1)) if np.any(
        dx < -ILIUM_LATERAL_MM + 15.0) else np.zeros(bone.shape[2], bool)
    lat_right = bone[dx > ILIUM_LATERAL_MM - 15.0].any(axis=(0, 1)) if np.any(
        dx > ILIUM_LATERAL_MM - 15.0) else np.zeros(bone.shape[2], bool)
    both = lat_left & lat_right & _ilium_levels(bone, dx)
    band = np.abs(dx) <= MIDLINE_BAND_MM
    cand = bone & band[:, None, None] & both[None, None, :]
    # posterior part of the pelvis: within the posterior 60 % of each slice's bone y-extent
    y_present = bone.any(axis=0)  # (J, K)
    ny = bone.shape[1]
    has: np.ndarray = np.asarray(y_present.any(axis=0))
    first = np.argmax(y_present, axis=0)
    last = ny - 1 - np.argmax(np.asarray(y_present)[::-1], axis=0)
    ylim = np.where(has, first + 0.6 * (last - first), -1)
    jj = np.arange(ny)[:, None]
    cand &= (jj <= ylim[None, :])[None, :, :]
    if not cand.any():
        raise AnatomyNotFoundError(
            "sacrum not found: no midline bone between the two iliac bones (is the sacrum in "
            "the field of view? the scan must cover the pelvis from the iliac crests to S3)")
    score = np.where(cand, edt_mm, -1.0)
    return np.asarray(np.unravel_index(int(np.argmax(score)), bone.shape))


#: Search for the lumbosacral disc (:func:`find_lumbosacral_disc`): disc-centre distances from
#: the S1 seed along the candidate normal (mm), normal tilts from the RAS superior axis toward
#: anterior (sagittal, deg) and toward patient left/right (coronal, deg).
DISC_OFFSETS_MM = (4.0, 36.0)
DISC_SAGITTAL_TILT_DEG = (-10.0, 80.0)
DISC_CORONAL_TILT_DEG = (-15.0, 15.0)
DISC_STEP_DEG = 2.5
#: Radius (mm) of the disc-plane patch that must be darker than the bone on both sides: wider
#: than the spinal canal and the nutrient foramina (which otherwise mimic a joint space), well
#: inside a lumbosacral disc (~35 x 50 mm).
DISC_PATCH_RADIUS_MM = 16.0
#: How far (mm) above and below the patch the bounding endplates are looked for.
DISC_REACH_MM = 8.0
#: A disc must be darker than both bounding endplates by at least this much on average (HU).
#: Measured: 125 HU at the L5-S1 disc of the shared 3 mm scan (osteoporotic, fatty marrow).
DISC_MIN_DEPTH_HU = 60.0
#: Bone this far (mm) above the disc centre plane, within DISC_COLUMN_RADIUS_MM of the disc
#: axis, is marked as L5.
DISC_HALF_HEIGHT_MM = 4.0
DISC_COLUMN_RADIUS_MM = 28.0


@dataclass(frozen=True)
class DiscPlane:
    """The lumbosacral (L5-S1) disc found from the CT (:func:`find_lumbosacral_disc`).

    Attributes
    ----------
    centre_ras_mm : (3,) ndarray
        Centre of the disc patch (RAS mm).
    normal_ras : (3,) ndarray
        Unit normal of the disc plane, pointing cranially (toward L5).
    depth_hu : float
        Mean amount by which the patch is darker than the endplates on both sides (HU).
    """

    centre_ras_mm: np.ndarray
    normal_ras: np.ndarray
    depth_hu: float


def _unit_normals(sagittal_deg: np.ndarray, coronal_deg: np.ndarray) -> np.ndarray:
    """Unit vectors tilted from RAS superior toward anterior (sagittal) and right (coronal)."""
    th, ph = np.radians(sagittal_deg), np.radians(coronal_deg)
    return np.stack([np.sin(ph), np.sin(th) * np.cos(ph), np.cos(th) * np.cos(ph)], axis=-1)


def find_lumbosacral_disc(hu: np.ndarray, grid: WorkGrid, seed_ras_mm: np.ndarray, *,
                          patch_radius_mm: float = DISC_PATCH_RADIUS_MM,
                          reach_mm: float = DISC_REACH_MM,
                          min_depth_hu: float = DISC_MIN_DEPTH_HU) -> DiscPlane | None:
    """The L5-S1 disc: the plane patch cranial to the S1 seed darkest between two endplates.

    Candidate planes are centred on rays from the seed (in the S1 body) along candidate normals
    (sagittal tilt :data:`DISC_SAGITTAL_TILT_DEG`, coronal tilt :data:`DISC_CORONAL_TILT_DEG`, at
    :data:`DISC_OFFSETS_MM` along the ray). For each, a disk of ``patch_radius_mm`` in the plane
    is sampled (trilinear), and every point of the disk is compared with the brightest value
    within ``reach_mm`` above and below it along the normal: its depth is the darker of those
    two maxima minus its own value. The disc is the candidate with the largest mean depth: a
    10 mm intervertebral disc between two cortical endplates, wide enough that the spinal canal
    or a foramen (narrower than the disk) does not qualify. Disc and marrow differ by only
    ~25-60 HU on coarse scans of fatty bone (the shared 3 mm scan: disc 88 HU, S1/L5 marrow
    111-148 HU), but the endplates either side of the disc are 200-240 HU.

    Parameters
    ----------
    hu : (I, J, K) ndarray
        CT in HU on the working grid.
    grid : WorkGrid
    seed_ras_mm : (3,) ndarray
        A point inside the S1 body (RAS mm).
    patch_radius_mm, reach_mm, min_depth_hu : float
        See :data:`DISC_PATCH_RADIUS_MM`, :data:`DISC_REACH_MM`, :data:`DISC_MIN_DEPTH_HU`.

    Returns
    -------
    DiscPlane or None
        None when no candidate is darker than its endplates by ``min_depth_hu`` (no disc cranial
        to the seed in the field of view, e.g. a scan that starts at the sacrum).
    """
    seed = np.asarray(seed_ras_mm, float)
    hu32 = np.asarray(hu, np.float32)
    step_mm = float(np.min(grid.spacing_mm))
    offsets_mm = np.arange(DISC_OFFSETS_MM[0], DISC_OFFSETS_MM[1] + 1e-6, 1.0)
    sag = np.arange(DISC_SAGITTAL_TILT_DEG[0], DISC_SAGITTAL_TILT_DEG[1] + 1e-6, DISC_STEP_DEG)
    cor = np.arange(DISC_CORONAL_TILT_DEG[0], DISC_CORONAL_TILT_DEG[1] + 1e-6, 2 * DISC_STEP_DEG)
    best = _best_disc(hu32, grid, seed, sag, cor, offsets_mm, patch_radius_mm, reach_mm, step_mm)
    if best.depth_hu < min_depth_hu:
        return None
    # refine around the best candidate on a grid five times finer
    th, ph, t0 = best.sagittal_deg, best.coronal_deg, best.offset_mm
    fine = DISC_STEP_DEG / 5.0
    return _best_disc(hu32, grid, seed, np.arange(th - DISC_STEP_DEG, th + DISC_STEP_DEG + 1e-6,
                                                  fine),
                      np.arange(ph - 2 * DISC_STEP_DEG, ph + 2 * DISC_STEP_DEG + 1e-6, 2 * fine),
                      np.arange(t0 - 1.0, t0 + 1.0 + 1e-6, 0.25), patch_radius_mm, reach_mm,
                      step_mm).plane


@dataclass(frozen=True)
class _Candidate:
    plane: DiscPlane
    sagittal_deg: float
    coronal_deg: float
    offset_mm: float

    @property
    def depth_hu(self) -> float:
        return self.plane.depth_hu


def _best_disc(hu: np.ndarray, grid: WorkGrid, seed: np.ndarray, sag_deg: np.ndarray,
               cor_deg: np.ndarray, offsets_mm: np.ndarray, patch_radius_mm: float,
               reach_mm: float, step_mm: float) -> _Candidate:
    """The (tilt, offset) candidate of :func:`find_lumbosacral_disc` with the deepest patch."""
    sag_g, cor_g = (a.ravel() for a in np.meshgrid(sag_deg, cor_deg, indexing="ij"))
    normals = _unit_normals(sag_g, cor_g)
    u = np.cross(normals, [1.0, 0.0, 0.0])
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    v = np.cross(normals, u)
    radii = np.arange(0.0, patch_radius_mm + 1e-6, step_mm)
    angles = np.radians(np.arange(0.0, 360.0, 30.0))
    r = np.concatenate([[0.0], np.repeat(radii[1:], angles.size)])
    a = np.concatenate([[0.0], np.tile(angles, radii.size - 1)])
    disk = (r * np.cos(a))[:, None, None] * u[None] + (r * np.sin(a))[:, None, None] * v[None]
    # profiles along each normal at the offsets' step, reaching past them on both sides
    dt_mm = float(offsets_mm[1] - offsets_mm[0]) if offsets_mm.size > 1 else 1.0
    n_reach = max(1, round(reach_mm / dt_mm))
    t_mm = offsets_mm[0] + dt_mm * np.arange(-n_reach, offsets_mm.size + n_reach)
    pts = seed + t_mm[:, None, None, None] * normals[None, None] + disk[None]  # (T, P, N, 3)
    ijk = grid.ras_to_ijk(pts.reshape(-1, 3))
    vals = ndi.map_coordinates(hu, ijk.T, order=1, mode="nearest").reshape(pts.shape[:3])
    # brightest value within reach below (t - reach .. t - dt) and above (t + dt .. t + reach)
    windows = np.lib.stride_tricks.sliding_window_view(vals, n_reach, axis=0).max(axis=-1)
    below, above = windows[:-n_reach - 1], windows[n_reach + 1:]
    depth = (np.minimum(below, above) - vals[n_reach:-n_reach]).mean(axis=1)  # (T, N)
    it, jn = np.unravel_index(int(np.argmax(depth)), depth.shape)
    t_best = float(offsets_mm[it])
    plane = DiscPlane(seed + t_best * normals[jn], normals[jn], float(depth[it, jn]))
    return _Candidate(plane, float(sag_g[jn]), float(cor_g[jn]), t_best)


def _markers_and_elevation(hu: np.ndarray, grid: WorkGrid, labels: dict[str, np.ndarray],
                           bone: np.ndarray, *, joint_resolved: bool) -> _Prepared:
    """The markers (without a cranial hint) and the elevation of :func:`isolate_sacrum`."""
    sp = grid.spacing_mm
    x_mm = _coords_mm(bone.shape, grid.affine, 0)
    coarse = float(np.max(sp)) >= COARSE_MM
    core = bone & (hu < CORTEX_HU)
    pelvic_mid = find_midline_x_mm(bone, grid) if coarse or "s1" not in labels else None
    if coarse:
        # only lateral, where the sacroiliac joints are: in the midline posterior elements the
        # walls of the canal and of the pedicles also lie between marrow, and removing them
        # moved the pedicles and canal of the real 3 mm scan CT-only 16-19 mm from the v1-label
        # run's (6-10 mm without the rule; the same with it beyond PLATE_LATERAL_MM)
        lateral = np.abs(x_mm - pelvic_mid) >= PLATE_LATERAL_MM
        core &= ~(inner_plates(hu, bone, sp) & lateral[:, None, None])
    edt = edt_in_box(core, sp)
    markers = np.zeros(bone.shape, np.int32)
    disc_l5: np.ndarray | None = None
    disc: DiscPlane | None = None
    if "s1" in labels:
        s1 = labels["s1"]
        mid = float(np.median(x_mm[np.nonzero(s1)[0]]))
        core = s1 & bone
        if not core.any():
            core = s1
        markers[core] = SACRUM
        seed_ijk = np.argwhere(s1).mean(axis=0)
        method = "watershed from the supplied S1 label"
        bone = bone | s1  # the S1 body interior may be below the bone threshold
    else:
        mid = pelvic_mid if pelvic_mid is not None else find_midline_x_mm(bone, grid)
        # closing in the bone's box grown by two voxels (the dilation reaches one voxel out,
        # and the erosion then sees the same background as on the whole grid)
        closed = np.zeros(bone.shape, bool)
        box = padded_box(bone, 2)
        if box is not None:
            closed[box] = ndi.binary_closing(bone[box], iterations=1)
        solid = fill_holes_in_box(closed)
        edt_solid = edt_in_box(solid, sp)
        seed_ijk = auto_sacrum_seed(solid, edt_solid, grid, mid)
        # the marker is a ball in the vertebral body (its marrow may be below the bone threshold)
        r_mm = float(np.clip(edt_solid[tuple(seed_ijk)], 2.0 * sp.max(), 15.0))
        ii, jj, kk = np.ogrid[tuple(slice(0, n) for n in bone.shape)]
        ball_m = (((ii - seed_ijk[0]) * sp[0]) ** 2 + ((jj - seed_ijk[1]) * sp[1]) ** 2
                  + ((kk - seed_ijk[2]) * sp[2]) ** 2) <= r_mm**2
        ball_m &= solid
        if float(np.max(sp)) >= 2.5:
            # coarse voxels: the marrow is dark, so the marker must reach the midline cortex
            # (a slab of the S1 segment) to compete with the bright ilia and lumbar column
            x_c = _coords_mm(bone.shape, grid.affine, 0)
            z_c = _coords_mm(bone.shape, grid.affine, 2)
            zs = z_c[seed_ijk[2]]
            slab = ((np.abs(x_c - mid) <= 20.0)[:, None, None]
                    & ((z_c >= zs - 10.0) & (z_c <= zs + 15.0))[None, None, :])
            ball_m |= slab & bone
        method = ("watershed from an automatic seed (thickest midline bone between the ilia)")
        disc = find_lumbosacral_disc(hu, grid, grid.ijk_to_ras(seed_ijk))
        if disc is not None:
            # the L5-S1 disc bounds the sacral marker, and the bone above it in the body
            # column is L5 (on coarse fatty scans the disc is barely darker than the marrow,
            # so an unbounded sacral region floods the lower L5 body)
            # heights above the disc plane and distances from its axis, computed only where
            # they are used (bone and the ball marker), not on the whole grid
            cand = bone | ball_m
            idx = np.nonzero(cand)
            rel = grid.ijk_to_ras(np.column_stack(idx).astype(float)) - disc.centre_ras_mm
            h = rel @ disc.normal_ras
            r = np.linalg.norm(rel - h[:, None] * disc.normal_ras, axis=1)
            height = np.zeros(bone.shape, np.float32)
            height[idx] = h
            radial = np.full(bone.shape, np.inf, np.float32)
            radial[idx] = r
            ball_m &= height < -DISC_HALF_HEIGHT_MM
            disc_l5 = bone & ~ball_m & (height > DISC_HALF_HEIGHT_MM) & (
                radial <= DISC_COLUMN_RADIUS_MM)
            method += (f"; L5-S1 disc found at RAS {np.round(disc.centre_ras_mm, 1).tolist()} mm "
                       f"(darker than its endplates by {disc.depth_hu:.0f} HU) bounds it")
        markers[ball_m] = SACRUM
        bone = bone | ball_m
    seed_ras = grid.ijk_to_ras(seed_ijk)

    dx = x_mm - mid
    not_sac = markers != SACRUM
    lat_l = (dx < -ILIUM_LATERAL_MM)[:, None, None] & bone & not_sac
    lat_r = (dx > ILIUM_LATERAL_MM)[:, None, None] & bone & not_sac
    markers[lat_l] = ILIUM_LEFT
    markers[lat_r] = ILIUM_RIGHT
    near_sac = ndi.binary_dilation(markers == SACRUM, iterations=2)
    for name, code in (("hip_left", ILIUM_LEFT), ("femur_left", ILIUM_LEFT),
                       ("hip_right", ILIUM_RIGHT), ("femur_right", ILIUM_RIGHT)):
        if name in labels:
            m = ndi.binary_erosion(labels[name], iterations=1) & bone & ~near_sac
            markers[m] = code
    lumbar = [n for n in ("l5", "l4", "l3", "l2", "l1") if n in labels]
    if lumbar:
        m = np.zeros(bone.shape, bool)
        for n in lumbar:
            m |= labels[n]
        markers[m & bone & ~near_sac] = CRANIAL
    else:
        # "cranial" along the spine: the L5-S1 disc normal where the disc was found. Along
        # RAS z the sacral slope (30-60 deg to the axial plane) lifts the S1 posterior
        # elements: with the seed in the S1 body, the superior articular processes 35-40 mm
        # posterior of it rise 20-35 mm higher in RAS z than in the S1 frame, past
        # CRANIAL_MARKER_MM (phantom, 2 mm, pelvic tilt -10: the process tips marked as L5
        # and the S1 facet given to L5)
        band = (np.abs(dx) <= 2 * MIDLINE_BAND_MM)[:, None, None]
        cand = bone & band & not_sac
        idx = np.nonzero(cand)
        axis_ras = (disc.normal_ras if disc is not None and joint_resolved
                    else np.array([0.0, 0.0, 1.0]))
        rel = grid.ijk_to_ras(np.column_stack(idx).astype(float)) - seed_ras
        up = np.zeros(bone.shape, bool)
        up[idx] = rel @ axis_ras > CRANIAL_MARKER_MM
        markers[up] = CRANIAL
    if disc_l5 is not None:
        markers[disc_l5 & (markers != SACRUM)] = CRANIAL
    elev_method = ""
    if coarse:
        # at >= 2.5 mm the two cortical plates of an SI joint merge into one bright band and the
        # distance map has no neck there; the joint gap survives as a dark seam in the HU
        elevation = (-ndi.gaussian_filter(hu.astype(np.float32), COARSE_SMOOTH_VOX)
                     / COARSE_HU_SCALE - edt / COARSE_EDT_SCALE_MM)
        elev_method += ("; coarse voxels: watershed on smoothed HU plus thickness "
                   "(joint gap = dark seam)")
    elif not joint_resolved:
        elevation = -edt
    else:
        # fine voxels (< 2.5 mm): a joint space one or two voxels wide between two cortices
        # (the 2 mm L5-S1 facet joints, the SI joints) is still a dark seam in the CT, but the
        # bone mask bridges it; on the distance map alone the basins then meet at the
        # narrowest bone, e.g. across the base of the S1 superior articular process when the
        # L5 inferior process lies on it, and L5 takes the S1 facet. The joint-space depth
        # raises the elevation along the seam, as at full resolution
        # (alarscrew.anatomy.refine), so the basins meet in the joint where the CT shows one.
        from alarscrew.anatomy.refine import (  # cycle: refine imports this module
            EDT_ELEVATION_MM,
            SEAM_ELEVATION_HU,
            SEAM_REACH_MM,
            seam_depth_hu,
        )
        # the joint-space depth only where the watershed floods (bone): in the bone's box
        # grown by the probes' reach plus the smoothing kernel's radius (2 voxels), inside
        # which it equals the whole-grid computation; zero elsewhere
        seam = np.zeros(hu.shape, np.float32)
        reach_vox = int(np.floor(SEAM_REACH_MM / float(np.min(sp)) + 1e-6))
        box = padded_box(bone, reach_vox + 4)
        if box is not None:
            seam[box] = ndi.gaussian_filter(np.maximum(seam_depth_hu(hu[box], sp), 0.0), 0.5)
        elevation = seam / SEAM_ELEVATION_HU - edt / EDT_ELEVATION_MM
    return _Prepared(_prepared_key(hu, grid, labels, joint_resolved), markers, bone,
                     elevation, seed_ras, mid, dx, coarse, method, elev_method)


def isolate_sacrum(hu: np.ndarray, grid: WorkGrid, *,
                   labels: dict[str, np.ndarray] | None = None,
                   cranial_hint: np.ndarray | None = None,
                   joint_resolved: bool = True,
                   previous: SacrumResult | None = None) -> SacrumResult:
    """Segment the sacrum on the working grid.

    Parameters
    ----------
    hu : (I, J, K) float ndarray
        CT in HU on the working grid (canonical RAS axis order).
    grid : WorkGrid
    labels : dict of str to (I, J, K) bool ndarray, optional
        Supplied structures on the working grid under canonical names (``sacrum``, ``s1``,
        ``l5``..., ``hip_left``, ``hip_right``, ``femur_left``, ``femur_right``).
    cranial_hint : (I, J, K) bool ndarray, optional
        Working-grid voxels known to lie above the sacrum (e.g. above a first-pass endplate);
        they join the lumbar (L5) marker.
    joint_resolved : bool
        Whether the CT's own voxels are finer than the L5-S1 facet joint space (the pipeline:
        largest CT voxel side < 2 mm). Only then, on fine working grids, does the watershed
        follow the joint-space depth and the automatic lumbar marker go by the disc normal;
        otherwise the joint is no dark seam to follow (2 mm phantom: the process's own marrow
        reads as deep, and with 40 HU noise, tilt -15 and asymmetry the S1 endplate came out
        3.1 mm rms and the anatomy was refused) and the distance map alone splits the bone.
    previous : SacrumResult, optional
        A result of this function on the same ``hu``, ``grid``, ``labels`` and
        ``joint_resolved`` (a first pass, before a ``cranial_hint`` is known): its markers,
        bone mask and watershed elevation are reused, which gives the same result as
        recomputing them. Ignored when those inputs differ (shape, grid, label names and
        sizes, joint_resolved or the sum of ``hu``) or it holds none.

    Returns
    -------
    SacrumResult
    """
    labels = {k: v for k, v in (labels or {}).items() if v is not None and v.any()}
    sp = grid.spacing_mm
    prep = None if previous is None else previous.prepared
    if prep is not None and ("sacrum" in labels
                             or prep.key != _prepared_key(hu, grid, labels, joint_resolved)):
        prep = None
    bone = bone_mask(hu, sp) if prep is None else prep.bone

    if "sacrum" in labels:
        sac = labels["sacrum"].copy()
        c = np.argwhere(sac).mean(axis=0)
        seed = grid.ijk_to_ras(c)
        mid = float(seed[0])
        regions = np.where(sac, SACRUM, 0).astype(np.int32)
        return SacrumResult(sac, regions, bone | sac, seed, mid,
                            "supplied sacrum label used as the sacrum mask")

    if prep is None:
        prep = _markers_and_elevation(hu, grid, labels, bone, joint_resolved=joint_resolved)
    markers = prep.markers.copy()
    bone, elevation, coarse = prep.bone, prep.elevation, prep.coarse
    seed_ras, mid, dx, method = prep.seed_ras_mm, prep.midline_x_mm, prep.dx_mm, prep.method
    if cranial_hint is not None:
        markers[cranial_hint & bone & (markers != SACRUM)] = CRANIAL
        method += "; second pass with the bone above the fitted endplate as L5 marker"

    method += prep.elevation_method
    shell: np.ndarray | None = None
    regions = watershed(elevation, markers, mask=bone)
    sac = regions == SACRUM
    if coarse:
        shell = sac
        sac = fill_coarse_sacrum(sac, regions, sp, joint_gap_mm=JOINT_GAP_MM, hu=hu,
                                 dx_mm=dx)
        regions = np.where(sac, SACRUM, regions)
    lab, n = ndi.label(sac)
    if n == 0:
        raise AnatomyNotFoundError("sacrum not found: the sacral marker lies outside bone")
    if n > 1:
        sizes = np.bincount(lab.ravel())
        sizes[0] = 0
        sac = lab == int(np.argmax(sizes))
    if not labels:
        # the automatic seed lands in L5 when the S1 body is destroyed (the clinical case of the
        # reference paper); the sacrum is the lowest vertebra, so substantial midline bone just
        # caudal to the region means the region is a lumbar vertebra. The frame found from a
        # re-seed would rest on a destroyed endplate, so refuse instead of guessing.
        z_idx = np.nonzero(sac.any(axis=(0, 1)))[0]
        k_lo = int(z_idx.min())
        n_below = round(LUMBAR_CHECK_MM / float(sp[2]))
        y_idx = np.nonzero(sac.any(axis=(0, 2)))[0]
        n_y = round(10.0 / float(sp[1]))
        yy = np.arange(bone.shape[1])
        band = (np.abs(dx) <= MIDLINE_BAND_MM)[:, None] & (
            (yy >= y_idx.min() - n_y) & (yy <= y_idx.max() + n_y))[None, :]
        slab = bone[:, :, max(0, k_lo - n_below):k_lo] & band[:, :, None]
        if slab.sum() * float(np.prod(sp)) >= LUMBAR_CHECK_VOLUME_MM3:
            raise AnatomyNotFoundError(
                "the automatic sacral seed fell in a vertebra with more midline bone below it "
                f"(seed at RAS {np.round(seed_ras, 1).tolist()} mm): the S1 body may be "
                "destroyed or the lumbosacral junction atypical; supply an S1 or sacrum label "
                "with --seg")
    if shell is not None:
        shell = shell & sac
    return SacrumResult(sac, regions, bone, seed_ras, mid, method, shell, prepared=prep)

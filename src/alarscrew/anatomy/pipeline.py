"""The anatomy stage end to end: analyze_anatomy, run_anatomy, save_anatomy.

``analyze_anatomy`` takes a CT (and optionally label maps and user landmarks), finds the
sacrum, the S1 frame, the landmarks, S1 body loss and bone quality, and returns an
:class:`~alarscrew.anatomy.model.Anatomy`. ``run_anatomy`` adds loading from files;
``save_anatomy`` writes ``anatomy.json`` and ``sacrum_mask.nii.gz``.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from alarscrew import DISCLAIMER, REFERENCE_CITATION, __version__
from alarscrew.anatomy.alaant import refine_ala_anterior, refine_promontory
from alarscrew.anatomy.bodyloss import body_model, measure_body_loss, measure_bone_quality
from alarscrew.anatomy.canal import refine_canal
from alarscrew.anatomy.facet import refine_facets_judged
from alarscrew.anatomy.fill import fill_fine_sacrum
from alarscrew.anatomy.foramen import find_s1_foramina
from alarscrew.anatomy.grid import bounding_box, make_work_grid
from alarscrew.anatomy.landmarks import POINT_NAMES, detect_landmarks
from alarscrew.anatomy.model import Anatomy, Landmark
from alarscrew.anatomy.refine import refine_full_resolution
from alarscrew.anatomy.regions import CRANIAL, ILIUM_LEFT, ILIUM_RIGHT
from alarscrew.anatomy.s1frame import (
    MaskSampler,
    fit_endplate,
    frame_volume,
    midsagittal_plane,
    refine_endplate_ct,
)
from alarscrew.anatomy.sacrum import SacrumResult, isolate_sacrum
from alarscrew.anatomy.sijoint import refine_ala_lateral
from alarscrew.errors import AnatomyNotFoundError, GeometryError, InputError
from alarscrew.io.atomic import atomic_path, check_overwrite
from alarscrew.io.image import Image
from alarscrew.spatial.frame import S1Frame

#: ``progress(description, completed, total)``, called before each step.
ProgressFn = Callable[[str, int, int], None]

STEPS: tuple[str, ...] = ("working grid", "sacrum", "midsagittal plane", "S1 endplate",
                          "landmarks", "body loss and bone quality")

#: Label structures used as watershed markers or measurements (others are ignored here).
_USED_LABELS = ("sacrum", "s1", "l5", "l4", "l3", "l2", "l1", "hip_left", "hip_right",
                "femur_left", "femur_right")



def _crop(mask: np.ndarray, affine: np.ndarray, *, pad_vox: int
          ) -> tuple[np.ndarray, np.ndarray]:
    """Crop ``mask`` to its bounding box plus ``pad_vox``; return it and its shifted affine."""
    lo, hi = bounding_box(mask)  # type: ignore[misc]
    lo = np.maximum(lo - pad_vox, 0)
    hi = np.minimum(hi + pad_vox, np.asarray(mask.shape))
    aff = affine.copy()
    aff[:3, 3] = affine[:3, :3] @ lo + affine[:3, 3]
    return mask[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]], aff

def _step(progress: ProgressFn | None, i: int) -> None:
    if progress is not None:
        progress(STEPS[i], i, len(STEPS))


def _check_labels(ct: Image, labels: dict[str, Image]) -> None:
    for name, img in labels.items():
        if not img.same_grid(ct):
            raise GeometryError(f"label '{name}' ({img.source}) is not on the CT grid "
                                f"({img.grid_description()} vs {ct.grid_description()}); load "
                                "labels with alarscrew.anatomy.labels.load_labels")


#: Bone this far above the first-pass endplate (frame mm) is L5 in the second pass.
L5_MARKER_MM = 18.0
#: A sacrum with both alae is wider than this and narrower than the next (mm, left-right).
MIN_SACRUM_WIDTH_MM, MAX_SACRUM_WIDTH_MM = 70.0, 180.0


def _check_field_of_view(sac_canon: np.ndarray, canon_affine: np.ndarray, ct: Image) -> None:
    """Refuse a sacrum cut by the top of the scan or with an implausible width."""
    where = ct.source or "CT"
    if sac_canon[:, :, -1].any():
        raise AnatomyNotFoundError(
            f"{where}: sacrum not found in the field of view: the bone taken for the sacrum "
            "reaches the superior edge of the scan, so the S1 endplate is not in view (the "
            "scan must cover L5 to S3)")
    sp = np.sqrt((canon_affine[:3, :3] ** 2).sum(axis=0))
    lo, hi = bounding_box(sac_canon)  # type: ignore[misc]
    width = (hi[0] - lo[0]) * sp[0]
    if not MIN_SACRUM_WIDTH_MM <= width <= MAX_SACRUM_WIDTH_MM:
        raise AnatomyNotFoundError(
            f"{where}: sacrum not found: the bone found is {width:.0f} mm wide, a sacrum with "
            f"both alae is {MIN_SACRUM_WIDTH_MM:g}-{MAX_SACRUM_WIDTH_MM:g} mm (is the pelvis in "
            "the field of view? supply an S1 or sacrum label with --seg)")


#: A detected sacrum must reach at least this far either side of the midline at the pedicle
#: level (sacral alae; the S1 body alone is about 25 mm wide per side).
MIN_ALA_HALF_WIDTH_MM = 35.0


def _check_alae(found: dict[str, Landmark], frame: S1Frame, ct: Image, *,
                has_s1_label: bool = False) -> None:
    """Refuse a CT-detected sacrum without both alae (the segmentation has failed)."""
    ask = "a whole-sacrum label" if has_s1_label else "an S1 or sacrum label"
    for side in ("left", "right"):
        lm = found.get(f"{side}.ala_lateral")
        half = None if lm is None else abs(float(frame.to_frame_mm(lm.xyz_ras_mm)[0]))
        if half is None or half < MIN_ALA_HALF_WIDTH_MM:
            got = "none" if half is None else f"{half:.0f} mm"
            raise AnatomyNotFoundError(
                f"{ct.source or 'CT'}: the sacrum segmented from the CT has no {side} ala "
                f"(lateral extent at the pedicle level {got}, expected >= "
                f"{MIN_ALA_HALF_WIDTH_MM:g} mm): the automatic segmentation failed; supply "
                f"{ask} with --seg")


#: An intact S1 endplate fits a line within this (mm, rms). Measured: 0.43-0.78 mm on the 20
#: atlas sacra (2 mm), 0.78 mm on the real 3 mm scan, 0.3 mm on the phantom; 3.6-3.9 mm on
#: the phantom with 50-70 % of the S1 body destroyed and no lesion mask (frame tilted 41-50 deg).
MAX_ENDPLATE_RMS_MM = 2.0


#: An S1 superior endplate is no deeper (anteroposterior, mm) than this: the fitted depth is
#: 36 mm on the intact phantom and 37-38 mm on the real 3 mm scan (v1 sacrum label, S1 label);
#: on the 3 mm phantom with S1 and L5 labels the fit on the label united with the CT mask,
#: whose coarse enclosure fill closes the spinal canal, ran 71.5 mm onto the laminae (frame
#: 7.5-9 deg off, measured 2026-12-04).
MAX_ENDPLATE_DEPTH_MM = 60.0


def _check_endplate(info: dict, ct: Image) -> None:
    """Refuse a frame fitted to an endplate that is not flat (destroyed S1 body) or deeper than
    an S1 endplate (a mask joined to the posterior elements)."""
    if info["rms_mm"] > MAX_ENDPLATE_RMS_MM:
        raise AnatomyNotFoundError(
            f"{ct.source or 'CT'}: the S1 superior endplate found is not flat (line-fit rms "
            f"{info['rms_mm']:.1f} mm, an intact endplate fits within {MAX_ENDPLATE_RMS_MM:g} "
            "mm): the S1 body is probably destroyed, so the S1 frame and every angle would be "
            "wrong; supply the defect with --lesion, or an S1 label that covers the whole "
            "vertebra including the destroyed body")
    if info["depth_mm"] > MAX_ENDPLATE_DEPTH_MM:
        raise AnatomyNotFoundError(
            f"{ct.source or 'CT'}: the flat top face found for the S1 superior endplate is "
            f"{info['depth_mm']:.0f} mm deep from front to back, more than the "
            f"{MAX_ENDPLATE_DEPTH_MM:g} mm of any S1 endplate: the sacral mask joins the body to "
            "the posterior elements and the S1 frame would be wrong; supply a sacrum label "
            "with --seg")


#: A sacrum reaches at least this far below its S1 endplate in the midline (S1 body about
#: 27 mm high, S2 below it). Measured on the frame grid (midline |x| <= 15 mm, to its 80 mm
#: box): 54-80 on the 20 atlas sacra, 80 on the real 3 mm scan and the intact phantom; 29 mm
#: for L5 taken for the sacrum above an 85 % destroyed S1 body (phantom, 1.5 mm, CT-only,
#: with or without its lesion mask; the check runs on the CT bone alone).
#: CT voxel size (largest side, mm) from which the L5-S1 facet joint (1-3 mm wide) is no
#: seam for the sacrum isolation to follow (``isolate_sacrum(joint_resolved=...)``), and
#: from which CT-only S1 facets and entries are withheld: there the CT can still show the
#: joint's dip across the facet, but the point's place along the facet comes from the mask
#: patch alone (phantom, 2 mm, tilt +15: joint dip significant, facet / entry 4.2 / 5.6 mm off).
#: On finer CT voxels each side is judged from the CT profiles across the joint
#: (:func:`alarscrew.anatomy.facet.refine_facets_judged`).
FACET_MIN_UNRESOLVED_MM = 2.0
MIN_SACRAL_DEPTH_MM = 45.0
#: ... and a lumbar vertebra taken for it has the sacrum below: bone (>= BONE_BELOW_HU) in
#: the midline (|x| <= 15 mm, frame y -60..40 mm) within 40 mm below the mask. Measured:
#: 20 cm3 in that L5 case; 0-9.7 cm3 below the 20 atlas sacra and the real scan, where the
#: sacrum reaches the frame box (coccyx, or sacrum beyond the box).
BONE_BELOW_CM3 = 5.0
BONE_BELOW_HU = 200.0


def _check_not_lumbar(mask: np.ndarray, affine: np.ndarray, frame: S1Frame, ct: Image) -> None:
    """Refuse a CT-detected "sacrum" that ends like a lumbar vertebra with bone below it.

    ``mask`` is the bone segmented from the CT alone (without a lesion mask or label, which
    would carry it down across the disc), on a grid with voxel->RAS ``affine``.
    """
    ijk = np.argwhere(mask)
    if len(ijk) == 0:
        return
    p = frame.to_frame_mm(ijk @ affine[:3, :3].T + affine[:3, 3])
    mid = p[np.abs(p[:, 0]) <= 15.0]
    if len(mid) == 0:
        return
    depth = -float(mid[:, 2].min())
    if depth >= MIN_SACRAL_DEPTH_MM:
        return
    step = 2.0
    axes = (np.arange(-15.0, 15.0 + step / 2, step), np.arange(-60.0, 40.0 + step / 2, step),
            np.arange(-depth - 40.0, -depth, step))
    pts = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    inv = np.linalg.inv(ct.affine)
    world = frame.to_world_mm(pts)
    hu = ndi.map_coordinates(np.asarray(ct.array, np.float32),
                             (world @ inv[:3, :3].T + inv[:3, 3]).T, order=1, cval=-1000.0)
    below_cm3 = float((hu >= BONE_BELOW_HU).sum()) * step ** 3 / 1000.0
    if below_cm3 >= BONE_BELOW_CM3:
        raise AnatomyNotFoundError(
            f"{ct.source or 'CT'}: the bone taken for the sacrum ends {depth:.0f} mm below the "
            f"endplate found (a sacrum reaches at least {MIN_SACRAL_DEPTH_MM:g} mm: S1 and S2) "
            f"and {below_cm3:.0f} cm3 of midline bone lies in the 40 mm below it: it is "
            "probably L5 above a destroyed S1 body; supply an S1 or sacrum label with --seg")


def analyze_anatomy(ct: Image, *, labels: dict[str, Image] | None = None,
                    landmarks: dict[str, np.ndarray] | None = None,
                    progress: ProgressFn | None = None) -> Anatomy:
    """Find the sacrum, S1 frame, landmarks, S1 body loss and bone quality in a CT.

    Parameters
    ----------
    ct : Image
        CT in HU.
    labels : dict of str to Image, optional
        Bool masks on the CT grid under canonical names (``load_labels``): ``sacrum``, ``s1``,
        ``l5``..``l1``, ``hip_left``/``hip_right``, ``femur_*`` guide the segmentation;
        ``lesion`` is the S1 defect for body loss.
    landmarks : dict of str to (3,) ndarray, optional
        User landmarks (RAS mm, model.py names); they replace detected ones (``supplied``).
        A supplied ``endplate_center`` also moves the frame origin.
    progress : callable, optional
        ``progress(description, completed, total)``.

    Returns
    -------
    Anatomy

    Raises
    ------
    AnatomyNotFoundError
        No sacrum, endplate or midsagittal plane could be found (the message says which).
    """
    t0 = time.perf_counter()
    labels = dict(labels or {})
    _check_labels(ct, labels)
    timings: dict[str, float] = {}
    _step(progress, 0)
    grid = make_work_grid(ct)
    canon_hu = grid.to_canon(ct.array)
    hu_work = grid.downsample_mean(canon_hu)
    label_work: dict[str, np.ndarray] = {}
    for name in _USED_LABELS:
        if name in labels:
            frac = grid.downsample_fraction(grid.to_canon(np.asarray(labels[name].array, bool)))
            label_work[name] = frac >= 0.5
    timings["grid_s"] = time.perf_counter() - t0

    _step(progress, 1)
    t = time.perf_counter()
    # the L5-S1 facet joint space (1-3 mm) is a seam to follow only on finer CT voxels
    joint_resolved = float(np.max(ct.spacing_mm)) < FACET_MIN_UNRESOLVED_MM
    if "sacrum" in labels:
        full_sac = np.asarray(labels["sacrum"].array, bool)
        if "s1" in labels:
            full_sac = full_sac | np.asarray(labels["s1"].array, bool)
        if not full_sac.any():
            raise AnatomyNotFoundError(f"the supplied sacrum label is empty "
                                       f"({labels['sacrum'].source})")
        label_work["sacrum"] = grid.downsample_any(grid.to_canon(full_sac))
        result = isolate_sacrum(hu_work, grid, labels=label_work,
                                joint_resolved=joint_resolved)
        sac_canon = grid.to_canon(full_sac)
        sacrum_how = "supplied sacrum label" + (" united with the S1 label" if "s1" in labels
                                                else "")
    else:
        result = isolate_sacrum(hu_work, grid, labels=label_work,
                                joint_resolved=joint_resolved)
        sac_canon = refine_full_resolution(result, canon_hu, grid)
        if any(k in labels for k in ("l5", "l4", "l3")):
            # no second pass follows: complete hollow alae now (fine grids only). Before a
            # second pass the working region may still hold part of L5, whose body the
            # enclosure would complete and the endplate be fitted on.
            sac_canon = fill_fine_sacrum(sac_canon, canon_hu, result, grid)
        sacrum_how = "detected from CT: " + result.method
    if not sac_canon.any():
        raise AnatomyNotFoundError("sacrum not found: the segmentation is empty")
    _check_field_of_view(sac_canon, grid.canon_affine, ct)
    lesion = labels.get("lesion")
    # the intact shape defines the frame and the body model: a supplied S1 label outlines the
    # vertebra even where its body is destroyed (the clinical case of the reference paper),
    # while the bone mask loses the lytic part and the endplate fit would tilt onto the
    # defect; a lesion mask is grown by one voxel to close partial-volume seams against bone
    intact_extra = [grid.to_canon(np.asarray(labels["s1"].array, bool))] if "s1" in labels \
        else []
    if lesion is not None:
        intact_extra.append(ndi.binary_dilation(grid.to_canon(np.asarray(lesion.array, bool))))

    extra_boxes = [box for box in map(bounding_box, intact_extra) if box is not None]

    def intact_crop(sac: np.ndarray, pad_vox: int = 3) -> tuple[np.ndarray, np.ndarray]:
        # the intact shape cropped to its bounding box plus pad_vox, and the crop's affine:
        # the same as _crop of the full-grid union, whose copy and ORs cost 1-2 s on a
        # 512 x 512 x 400 grid (the union's box is the union of the boxes)
        boxes = [box for box in (bounding_box(sac), *extra_boxes) if box is not None]
        lo = np.maximum(np.min([b[0] for b in boxes], axis=0) - pad_vox, 0)
        hi = np.minimum(np.max([b[1] for b in boxes], axis=0) + pad_vox, np.asarray(sac.shape))
        box = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
        sub = sac[box].copy()
        for extra in intact_extra:
            sub |= extra[box]
        aff = grid.canon_affine.copy()
        aff[:3, 3] = grid.canon_affine[:3, :3] @ lo + grid.canon_affine[:3, 3]
        return sub, aff

    def endplate_sampler(result: SacrumResult, geo_sub: np.ndarray, geo_aff: np.ndarray
                         ) -> MaskSampler:
        # the S1 endplate is a cortical surface: CT-only on coarse grids it is fitted on the
        # measured shell, not on the marrow completed by enclosure, whose closing can bridge
        # the spinal canal and lift the posterior top of the midsagittal section (a supplied
        # S1 label outlines the body itself)
        if result.shell is None or "sacrum" in labels or "s1" in labels:
            return MaskSampler(geo_sub, geo_aff)
        return MaskSampler(*intact_crop(grid.upsample(result.shell)))

    # the segmented surface lies about half a voxel outside the bone (hysteresis threshold
    # below the cortex half-maximum); a supplied label is taken as drawn. When the whole
    # surface comes from the CT, the frame origin is put on the bony endplate and every
    # landmark found on a surface is moved in by the bias (measured on the phantom without
    # this: the fitted endplate and so every landmark lay 0.7 / 1.1 / 1.7 mm too cranial at
    # 1 / 2 / 2.5-3 mm voxels). A supplied S1 label draws the endplate, body and pedicles.
    bias = 0.0 if sacrum_how.startswith("supplied") else 0.5 * float(np.mean(ct.spacing_mm))
    frame_bias = 0.0 if "s1" in labels else bias

    def on_bone(frame: S1Frame) -> S1Frame:
        return S1Frame(frame.origin_ras_mm - frame_bias * frame.cranial_ras, frame.right_ras,
                       frame.anterior_ras, frame.cranial_ras)

    timings["sacrum_s"] = time.perf_counter() - t

    _step(progress, 2)
    t = time.perf_counter()
    sub, aff = intact_crop(sac_canon)
    # symmetry fit on a <= 2 mm copy (speed); geometry is in world mm either way
    step = np.maximum(1, np.floor(2.0 / np.sqrt((aff[:3, :3] ** 2).sum(axis=0)))).astype(int)
    sub_c = sub[::step[0], ::step[1], ::step[2]]
    aff_c = aff.copy()
    aff_c[:3, :3] = aff[:3, :3] * step
    normal, offset = midsagittal_plane(sub_c, aff_c, midline_x_mm=result.midline_x_mm)
    timings["midsagittal_s"] = time.perf_counter() - t

    _step(progress, 3)
    t = time.perf_counter()
    def fit(result: SacrumResult, sub: np.ndarray, aff: np.ndarray) -> tuple[S1Frame, dict]:
        frame, info = fit_endplate(endplate_sampler(result, sub, aff), normal, offset,
                                   result.seed_ras_mm)
        if info["depth_mm"] > MAX_ENDPLATE_DEPTH_MM and "s1" in labels:
            # the CT mask's additions joined the posterior elements to the body's top (the
            # coarse enclosure fill closes the spinal canal): fit the supplied S1 label alone
            too_deep = info["depth_mm"]
            label_only = intact_crop(np.zeros(sac_canon.shape, bool))
            frame, info = fit_endplate(MaskSampler(*label_only), normal, offset,
                                       result.seed_ras_mm)
            info["fitted_on"] = (f"the supplied S1 label alone (with the CT mask the top face "
                                 f"was {too_deep:.0f} mm deep: not an S1 endplate)")
        return frame, info

    sampler = MaskSampler(sub, aff)
    frame, info = fit(result, sub, aff)
    if "sacrum" not in labels and not any(k in labels for k in ("l5", "l4", "l3")):
        # second pass: without lumbar labels, bone more than L5_MARKER_MM above the fitted
        # endplate (above the S1 facet tips) is L5; it competes for the L5 inferior articular
        # processes, which the first pass can attach to the S1 facets
        # frame z is affine in the voxel indices: summed per axis, not a transform per voxel
        first = on_bone(frame)
        z_per_ijk = first.cranial_ras @ grid.affine[:3, :3]
        z0 = float(first.cranial_ras @ (grid.affine[:3, 3] - first.origin_ras_mm))
        i, j, k = (np.arange(n, dtype=float) * g for n, g in zip(hu_work.shape, z_per_ijk,
                                                                   strict=True))
        z_frame = z0 + i[:, None, None] + j[None, :, None] + k[None, None, :]
        result = isolate_sacrum(hu_work, grid, labels=label_work,
                                cranial_hint=z_frame > L5_MARKER_MM,
                                joint_resolved=joint_resolved, previous=result)
        sac_canon = refine_full_resolution(result, canon_hu, grid)
        sac_canon = fill_fine_sacrum(sac_canon, canon_hu, result, grid)
        _check_field_of_view(sac_canon, grid.canon_affine, ct)
        sacrum_how = "detected from CT: " + result.method
        sub, aff = intact_crop(sac_canon)
        sampler = MaskSampler(sub, aff)
        frame, info = fit(result, sub, aff)
    _check_endplate(info, ct)
    if frame_bias > 0.0:
        # CT-only the endplate's tilt is taken from the CT voxels, not the mask's top: at 3 mm
        # the thresholded top follows the voxel staircase (phantom: the axis 2.1-2.3 deg off
        # with tilt -15 or 40 HU noise, 0.01-0.94 deg from the CT fit; real 3 mm scan 1.87 ->
        # 0.10 deg from the run on the v1 sacrum label). Only the tilt: the origin stays the
        # mask's moved onto the bone (the fitted plate height put the real scan's pedicle
        # level 0.6 mm further from the label run's). A supplied S1 label is taken as drawn.
        tilted, info = refine_endplate_ct(ct.array, ct.affine, frame, info)
        if info["ct_plate"] is not None:
            frame = S1Frame(frame.origin_ras_mm, tilted.right_ras, tilted.anterior_ras,
                            tilted.cranial_ras)
    frame = on_bone(frame)
    supplied = {k: np.asarray(v, float) for k, v in (landmarks or {}).items()}
    bad = sorted(set(supplied) - set(POINT_NAMES))
    if bad:
        raise InputError(f"unknown landmark names {bad}; expected {list(POINT_NAMES)}",
                         column="landmarks")
    if "endplate_center" in supplied:
        frame = S1Frame(supplied["endplate_center"], frame.right_ras, frame.anterior_ras,
                        frame.cranial_ras)
    timings["endplate_s"] = time.perf_counter() - t

    _step(progress, 4)
    t = time.perf_counter()
    fv = frame_volume(sampler, frame)
    if not sacrum_how.startswith("supplied"):
        _check_not_lumbar(*_crop(sac_canon, grid.canon_affine, pad_vox=0), frame, ct)
    l5_frame = None
    if "l5" in labels:
        # the L5 label on the frame grid: the S1 facet is the patch meeting its inferior
        # articular process (L5-S1 facet joint)
        l5_img = labels["l5"]
        l5_frame = frame_volume(MaskSampler(np.asarray(l5_img.array, bool), l5_img.affine),
                                frame).mask
    elif (result.regions == CRANIAL).any():
        # no L5 label: the lumbar bone region of the segmentation (working grid) stands in
        # for it when choosing the facet patch that meets L5
        l5_frame = frame_volume(MaskSampler(result.regions == CRANIAL, grid.affine), frame).mask
    s1_frame = None
    if "s1" in labels and "sacrum" not in labels:
        s1_img = labels["s1"]
        s1_frame = frame_volume(MaskSampler(np.asarray(s1_img.array, bool), s1_img.affine),
                                frame).mask
    found = detect_landmarks(fv, endplate_rms_mm=info["rms_mm"], l5=l5_frame, s1=s1_frame,
                             surface_bias_mm=frame_bias)
    if s1_frame is not None:
        # with an S1 label (no sacrum label) the promontory is the edge of the label united
        # with the CT mask, whose surface lies about half a voxel outside the bone, and a label
        # run moves no point in: its y is re-read at the anterior cortex in the CT
        # (alarscrew.anatomy.alaant.refine_promontory; phantom 2.5-3 mm: 0.8-2.6 mm anterior
        # before, -0.2 to +0.7 mm after)
        found = refine_promontory(ct.array, ct.affine, frame, found)
    # the mask is unreliable at the L5-S1 facet joint: move the facet points to the joint
    # space seen in the CT itself where it is clear (alarscrew.anatomy.facet)
    found, facet_unresolved = refine_facets_judged(ct.array, ct.affine, frame, found)
    # and at the canal, which the coarse fill can close dorsally: the canal and pedicles are
    # put between the canal walls seen in the CT (alarscrew.anatomy.canal)
    found = refine_canal(ct.array, ct.affine, frame, found)
    # the anterior alar cortex: its x from the SI-joint face traced forward in the CT (the
    # coarse fill can reach the ilium in front of the ala), its y at the cortex's CT edge
    # (alarscrew.anatomy.alaant); before the SI-joint face, whose ray runs midway between the
    # pedicle and this point
    found = refine_ala_anterior(ct.array, ct.affine, frame, found)
    # likewise the mask's edge at the sacroiliac joint: the lateral alar point is moved to the
    # sacral face of the joint seen in the CT, or into the band where the joint is blurred
    # (alarscrew.anatomy.sijoint)
    found = refine_ala_lateral(ct.array, ct.affine, frame, found)
    if not sacrum_how.startswith("supplied"):
        # the dorsal S1 foramina as dark holes in the CT under the dorsal surface: the fill
        # closes them in a coarse mask (alarscrew.anatomy.foramen). A supplied sacrum label
        # keeps its own through-holes (the CT rule picked other pits on the real scan's v1 label)
        found = find_s1_foramina(canon_hu, grid.canon_affine, frame, found, sacrum=sac_canon)
        _check_alae(found, frame, ct, has_s1_label="s1" in labels)
    withheld: dict[str, str] = {}
    lumbar_only = any(k in labels for k in ("l5", "l4", "l3", "l2", "l1"))
    if not any(k in labels for k in ("sacrum", "s1")) and not (lumbar_only and joint_resolved):
        # CT-only, the mask's split between the S1 superior and the L5 inferior articular
        # process is trusted only where the CT shows the joint space at the mask's facet and
        # entry (measured on the phantom without this rule: 5-12 mm facet/entry errors at
        # 2.5-3 mm voxels, 2-12 mm at 2 mm with tilt or asymmetry; the real 3 mm scan's
        # superior articular processes went to L5). An entry point from a guess would
        # mislead a plan. A lumbar label marks the joint where the CT resolves it (< 2 mm
        # voxels); on coarser voxels it does not help: with only the L5 label the phantom's
        # facets at 2.5-3 mm lay 0.8-10.6 mm off and three of six sides had no entry
        # (2026-12-04). An S1 or sacrum label places the facet on the label's surface.
        if lumbar_only:
            facet_unresolved = {}
        if not joint_resolved:
            coarse = (f"at {float(np.max(ct.spacing_mm)):.1f} mm CT voxels the point's place "
                      "along the facet comes from the mask alone")
            for name in (f"{side}.{kind}" for side in ("left", "right")
                         for kind in ("sap_facet", "entry")):
                facet_unresolved.setdefault(name, coarse)
        who = "with only a lumbar label" if lumbar_only else "CT-only"
        labels_help = "an S1 or L5 label" if joint_resolved else "an S1 or sacrum label"
        for name, why in facet_unresolved.items():
            found.pop(name, None)
            withheld[name] = (f"{who} the S1 facet is not resolved: {why}; supply {labels_help} "
                              "(--seg) or the points (--landmarks)")
    lms: dict[str, Landmark] = dict(found)
    for name, xyz in supplied.items():
        lms[name] = Landmark(name, xyz, 1.0, "supplied by the user (landmarks file)",
                             supplied=True)
    timings["landmarks_s"] = time.perf_counter() - t

    _step(progress, 5)
    t = time.perf_counter()
    model = body_model(fv, depth_mm=info["depth_mm"], surface_bias_mm=bias,
                       endplate_z_mm=frame_bias - bias)
    intact = None
    if lesion is not None:
        intact = ct.with_array(grid.from_canon(sac_canon) | np.asarray(lesion.array, bool),
                               is_label=True, source="sacrum + lesion")
    loss = measure_body_loss(ct, fv, model, lesion=lesion, intact=intact)
    quality = measure_bone_quality(ct, fv, model, labels=labels, lesion=lesion)
    timings["body_s"] = time.perf_counter() - t

    masks: dict[str, Image] = {
        "sacrum": ct.with_array(grid.from_canon(sac_canon), is_label=True,
                                source="alarscrew sacrum mask"),
    }
    # neighbours: supplied labels where given, else the watershed regions (working grid,
    # block-repeated; "l5" is then all lumbar bone cranial to the sacrum)
    for name, label_name, code in (("ilium_left", "hip_left", ILIUM_LEFT),
                                   ("ilium_right", "hip_right", ILIUM_RIGHT),
                                   ("l5", "l5", CRANIAL)):
        if label_name in labels:
            masks[name] = labels[label_name]
            continue
        reg = result.regions == code
        if reg.any():
            masks[name] = ct.with_array(grid.from_canon(grid.upsample(reg)), is_label=True,
                                        source=f"alarscrew {name} region (working grid)")
    if lesion is not None:
        masks["lesion"] = lesion
    timings["total_s"] = time.perf_counter() - t0
    s_lo, s_hi = bounding_box(sac_canon)  # type: ignore[misc]
    extent = (s_hi - s_lo) * np.sqrt((grid.canon_affine[:3, :3] ** 2).sum(axis=0))
    provenance = {
        "sacrum_mask": sacrum_how,
        "labels_used": sorted(k for k in labels if k in (*_USED_LABELS, "lesion")),
        "seed_ras_mm": [float(v) for v in result.seed_ras_mm],
        "working_spacing_mm": [float(v) for v in grid.spacing_mm],
        "midsagittal_plane": {"normal_ras": [float(v) for v in normal],
                              "offset_mm": float(offset)},
        "endplate_fit": {"rms_mm": info["rms_mm"], "n_points": info["n_points"],
                         "depth_mm": info["depth_mm"],
                         "ct_plate": info.get("ct_plate"),
                         "ct_plate_refused": info.get("ct_plate_refused"),
                         "fitted_on": info.get("fitted_on", "the sacral mask")},
        "frame_origin": ("supplied endplate_center" if "endplate_center" in supplied
                         else "detected endplate centre"),
        "s1_body_model": model,
        "sacrum_volume_ml": float(sac_canon.sum() * ct.voxel_volume_mm3 / 1000.0),
        "sacrum_extent_mm": {"left_right": float(extent[0]), "anterior_posterior":
                             float(extent[1]), "cranio_caudal": float(extent[2])},
        "landmarks_detected": sorted(k for k, v in lms.items() if not v.supplied),
        "landmarks_supplied": sorted(k for k, v in lms.items() if v.supplied),
        "landmarks_missing": sorted(set(POINT_NAMES) - set(lms)),
        "landmarks_withheld": {k: v for k, v in withheld.items() if k not in lms},
        "timings_s": {k: round(v, 3) for k, v in timings.items()},
    }
    return Anatomy(ct, frame, lms, masks, loss, quality, provenance)


def run_anatomy(ct_path: str | os.PathLike[str], *, seg_paths: Sequence[str | os.PathLike[str]]
                = (), landmarks_path: str | os.PathLike[str] | None = None,
                lesion_path: str | os.PathLike[str] | None = None,
                progress: ProgressFn | None = None) -> Anatomy:
    """Load a CT (NIfTI, NRRD or DICOM folder), its labels, landmarks and lesion; analyse it.

    Parameters
    ----------
    ct_path : path-like
        The CT.
    seg_paths : sequence of path-like
        Label maps for :func:`alarscrew.anatomy.labels.load_labels` (scheme auto-detected).
    landmarks_path : path-like, optional
        Slicer ``.mrk.json`` or plain JSON landmarks (RAS mm) overriding detected ones.
    lesion_path : path-like, optional
        A binary lesion/defect mask (any non-zero voxel is lesion), resampled onto the CT
        grid like a label map.
    progress : callable, optional

    Returns
    -------
    Anatomy
        ``provenance['inputs']`` holds the file names given.
    """
    from alarscrew.anatomy.labels import load_labels, resample_labels
    from alarscrew.anatomy.landmarks import load_landmarks_file
    from alarscrew.io import load_ct, load_image

    ct = load_ct(ct_path)
    labels = dict(load_labels(list(seg_paths), ct)) if seg_paths else {}
    if lesion_path is not None:
        raw = load_image(lesion_path, is_label=True)
        les = resample_labels(raw, ct)
        labels["lesion"] = les.with_array(np.asarray(les.array) != 0, is_label=True,
                                          source=str(lesion_path))
    lms = load_landmarks_file(landmarks_path) if landmarks_path is not None else None
    anat = analyze_anatomy(ct, labels=labels, landmarks=lms, progress=progress)
    anat.provenance["inputs"] = {
        "ct": Path(ct_path).name,
        "seg": [Path(p).name for p in seg_paths],
        "landmarks": None if landmarks_path is None else Path(landmarks_path).name,
        "lesion": None if lesion_path is None else Path(lesion_path).name,
    }
    return anat


def anatomy_to_dict(anatomy: Anatomy) -> dict:
    """The JSON-ready content of ``anatomy.json``."""
    ct = anatomy.ct
    return {
        "alarscrew_version": __version__,
        "disclaimer": DISCLAIMER,
        "reference": REFERENCE_CITATION,
        "coordinates": "world RAS millimetres (x right, y anterior, z superior)",
        "ct": {"shape": list(ct.shape), "spacing_mm": [float(v) for v in ct.spacing_mm],
               "affine": [[float(v) for v in row] for row in ct.affine]},
        "frame": anatomy.frame.to_dict(),
        "landmarks": {k: anatomy.landmarks[k].to_dict()
                      for k in POINT_NAMES if k in anatomy.landmarks},
        "body_loss": None if anatomy.body_loss is None else anatomy.body_loss.to_dict(),
        "bone_quality": None if anatomy.bone_quality is None
        else anatomy.bone_quality.to_dict(),
        "findings": findings(anatomy),
        "masks": {"sacrum": "sacrum_mask.nii.gz"},
        "provenance": anatomy.provenance,
    }


def findings(anatomy: Anatomy) -> list[str]:
    """Plain-language findings (body-loss indication, bone quality, missing landmarks)."""
    out = []
    bl = anatomy.body_loss
    if bl is not None and bl.pedicle_level_percent is not None:
        est = "" if bl.method.startswith("supplied") else " (estimated from CT, indicative)"
        verdict = "meets" if bl.indication_met else "does not meet"
        out.append(f"S1 body loss at the pedicle level {bl.pedicle_level_percent:.1f} %{est}: "
                   f"{verdict} the reference paper's indication for S1 alar screws (> 50 %).")
    if anatomy.bone_quality is not None:
        for k, v in anatomy.bone_quality.verdicts.items():
            hu = anatomy.bone_quality.trabecular_hu[k]
            out.append(f"{k.upper()} trabecular attenuation {hu:.0f} HU: {v}.")
    withheld = anatomy.provenance.get("landmarks_withheld") or {}
    missing = [k for k in anatomy.provenance.get("landmarks_missing") or [] if k not in withheld]
    if missing:
        out.append(f"Landmarks not found: {', '.join(missing)} (supply them in a landmarks "
                   "file).")
    by_reason: dict[str, list[str]] = {}
    for name in sorted(withheld):
        by_reason.setdefault(withheld[name], []).append(name)
    for reason, names in by_reason.items():
        out.append(f"Landmarks not reported: {', '.join(names)}: {reason}.")
    return out


def save_anatomy(anatomy: Anatomy, out_dir: str | os.PathLike[str], *, force: bool = False
                 ) -> Path:
    """Write ``anatomy.json`` and ``sacrum_mask.nii.gz`` into ``out_dir`` (atomically).

    Raises
    ------
    OutputExistsError
        One of the files exists and ``force`` is False (nothing is written then).
    """
    from alarscrew.io.nifti import save_nifti

    out = Path(out_dir)
    j, m = out / "anatomy.json", out / "sacrum_mask.nii.gz"
    for f in (j, m):
        check_overwrite(f, force=force)
    out.mkdir(parents=True, exist_ok=True)
    sac = anatomy.sacrum
    text = json.dumps(anatomy_to_dict(anatomy), indent=2, allow_nan=False) + "\n"
    # both files are built under temporary names and renamed only when both are complete
    with atomic_path(m, force=True) as tmp_m, atomic_path(j, force=True) as tmp_j:
        save_nifti(sac.with_array(np.asarray(sac.array, np.uint8)), tmp_m, force=True)
        tmp_j.write_text(text, encoding="utf-8")
    return out

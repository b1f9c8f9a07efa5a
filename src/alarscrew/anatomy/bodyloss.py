"""S1 vertebral body loss and trabecular bone quality, measured in the S1 frame.

S1 body model
-------------
An elliptic cylinder in the S1 frame: centred on the endplate centre, semi-axes
``a`` (left-right) and ``b`` (anterior-posterior), from the endplate (z = 0) down to the S1-S2
junction (z = -height). ``b`` is half the fitted endplate depth; ``a`` is the lateral exit of
the body 1.5 mm below the endplate along the frame's right axis (falling back to ``1.5 b``, the
mean width/depth ratio of the S1 endplate, when the body merges with the alae there); the height
is where the midline anterior wall first falls 1 mm behind its S1 level (S1-S2 waist),
else 27 mm (mean S1 body height).

Body loss
---------
Percentages of the body cross-section at the pedicle level
(:data:`~alarscrew.anatomy.landmarks.PEDICLE_LEVEL_MM`) and of the body volume that are
destroyed. With a lesion/defect mask: the fraction of the model inside the mask. Without it,
estimated from the CT: the fraction whose locally smoothed attenuation is below
:data:`LOSS_HU` (soft tissue, pus, air). The estimate cannot tell destroyed bone from very
osteoporotic or fatty marrow, sclerotic margins count as bone, and the body model itself comes
from the remaining endplate; treat it as indicative and supply a lesion mask for decisions.

Fang et al. (BMC Musculoskelet Disord 2022) chose S1 alar screws when more than 50 % of the S1
body was lost at the pedicle level on 3D CT; ``indication_met`` states that finding.

Bone quality
------------
Mean attenuation of trabecular bone: in S1 the body model shrunk by 5 mm on every side
(lesion excluded); in L5 and L1, when labelled, the label eroded by 3 mm. Verdicts use the L1
thresholds of Pickhardt et al. 2013 (<= 110 HU: osteoporosis likely, specificity about 90 %;
> 160 HU: normal, sensitivity about 90 %), which were validated at L1 only; at S1 and L5 they
are indicative.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from alarscrew.anatomy.grid import bounding_box
from alarscrew.anatomy.landmarks import PEDICLE_LEVEL_MM, ray_crossing
from alarscrew.anatomy.model import BodyLoss, BoneQuality
from alarscrew.anatomy.s1frame import FrameVolume
from alarscrew.io.image import Image

#: Below this smoothed attenuation (HU) the S1 body counts as destroyed in the CT estimate.
LOSS_HU = 100.0
#: Paper's indication for S1 alar screws: loss above this percentage at the pedicle level.
INDICATION_PERCENT = 50.0
#: Mean S1 body height (mm) used when the S1-S2 waist is not visible.
NOMINAL_S1_HEIGHT_MM = 27.0
#: The S1-S2 waist is searched no higher than this below the endplate (mm).
MIN_S1_HEIGHT_MM = 18.0
#: The anterior wall stepping back this far (mm) marks the S1-S2 junction.
WAIST_DROP_MM = 1.0
#: Mean S1 endplate width / depth ratio (48 x 32 mm; Mirkovic et al., Spine 1991).
WIDTH_DEPTH_RATIO = 1.5
#: Opportunistic CT thresholds at L1 (HU), Pickhardt et al. 2013.
OSTEOPOROSIS_HU = 110.0
NORMAL_HU = 160.0
BONE_QUALITY_REFERENCES: tuple[str, ...] = (
    "Pickhardt PJ, Pooler BD, Lauder T, et al. Opportunistic screening for osteoporosis using "
    "abdominal computed tomography scans obtained for other indications. Ann Intern Med. "
    "2013;158(8):588-595 (L1 trabecular HU <= 110: specificity about 90 % for osteoporosis; "
    "> 160: sensitivity about 90 % to exclude it).",
    "Schreiber JJ, Anderson PA, Rosas HG, et al. Hounsfield units for assessing bone mineral "
    "density and strength: a tool for osteoporosis management. J Bone Joint Surg Am. "
    "2011;93(11):1057-1063.",
)


def body_model(fv: FrameVolume, *, depth_mm: float, surface_bias_mm: float = 0.0) -> dict:
    """Measure the S1 body elliptic cylinder (see the module docstring).

    Parameters
    ----------
    fv : FrameVolume
    depth_mm : float
        Fitted endplate depth (anterior-posterior).
    surface_bias_mm : float
        How far the segmented surface lies outside the bone (partial volume at the bone
        threshold, about half a CT voxel); subtracted from both semi-axes.

    Returns
    -------
    dict
        ``semi_x_mm``, ``semi_y_mm``, ``height_mm`` and ``notes`` (list of str).
    """
    vol = fv.mask.astype(np.float32)
    notes: list[str] = []
    b = depth_mm / 2.0
    exits = [ray_crossing(vol, fv, np.array([0.0, 0.0, -1.5]), np.array([s, 0.0, 0.0]),
                          max_mm=90.0) for s in (-1.0, 1.0)]
    e_left, e_right = exits
    if e_left is not None and e_right is not None:
        a = 0.5 * (abs(e_left[0]) + abs(e_right[0]))
    else:
        a = np.inf
    if not (0.9 * b <= a <= 1.9 * b):
        a = WIDTH_DEPTH_RATIO * b
        notes.append(f"body width not separable from the alae: {WIDTH_DEPTH_RATIO} x depth")
    a, b = a - surface_bias_mm, b - surface_bias_mm
    zs = np.arange(-3.0, -50.0, -1.0)
    ant = []
    for z in zs:
        e = ray_crossing(vol, fv, np.array([0.0, -5.0, z]), np.array([0.0, 1.0, 0.0]),
                         max_mm=60.0)
        ant.append(np.nan if e is None else e[1])
    ant_arr = np.asarray(ant)
    ref = np.nanmedian(ant_arr[(zs <= -3.0) & (zs >= -12.0)]) if np.isfinite(ant_arr[:10]).any() \
        else np.nan
    waist = (zs <= -MIN_S1_HEIGHT_MM) & (ant_arr < ref - WAIST_DROP_MM)
    below: np.ndarray | list[int] = np.nonzero(waist)[0] if np.isfinite(ref) else []
    if len(below):
        height = float(-zs[below[0]])
    else:
        height = NOMINAL_S1_HEIGHT_MM
        notes.append(f"S1-S2 waist not found: nominal height {NOMINAL_S1_HEIGHT_MM} mm")
    return {"semi_x_mm": float(a), "semi_y_mm": float(b), "height_mm": height, "notes": notes}


def _ellipse_points(a: float, b: float, z: float, step: float) -> np.ndarray:
    xs = np.arange(-a, a + step / 2, step)
    ys = np.arange(-b, b + step / 2, step)
    X, Y = np.meshgrid(xs, ys, indexing="ij")
    inside = (X / a) ** 2 + (Y / b) ** 2 <= 1.0
    return np.column_stack([X[inside], Y[inside], np.full(int(inside.sum()), z)])


def _sample(img: Image, xyz_ras_mm: np.ndarray, *, order: int = 1,
            data: np.ndarray | None = None) -> np.ndarray:
    arr = img.array if data is None else data
    ijk = img.ras_to_ijk(xyz_ras_mm)
    return ndi.map_coordinates(np.asarray(arr, np.float32), ijk.T, order=order,
                               mode="nearest")


def _sample_smoothed(ct: Image, xyz_ras_mm: np.ndarray, *, sigma_mm: float = 1.0
                     ) -> np.ndarray:
    """CT values at world points after Gaussian smoothing (computed in their bounding box)."""
    ijk = ct.ras_to_ijk(xyz_ras_mm)
    lo = np.maximum(np.floor(ijk.min(axis=0)).astype(int) - 5, 0)
    hi = np.minimum(np.ceil(ijk.max(axis=0)).astype(int) + 6, np.asarray(ct.shape))
    if np.any(hi <= lo):
        return np.full(len(ijk), np.nan)
    sub = np.asarray(ct.array[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]], np.float32)
    sub = ndi.gaussian_filter(sub, sigma_mm / np.asarray(ct.spacing_mm))
    return ndi.map_coordinates(sub, (ijk - lo).T, order=1, mode="nearest")


def measure_body_loss(ct: Image, fv: FrameVolume, model: dict, *,
                      lesion: Image | None = None, intact: Image | None = None) -> BodyLoss:
    """S1 body loss at the pedicle level and by volume (see the module docstring).

    Parameters
    ----------
    ct : Image
    fv : FrameVolume
        The sacrum in the S1 frame.
    model : dict
        From :func:`body_model`.
    lesion : Image, optional
        Bool lesion mask on the CT grid; without it the loss is estimated from HU.
    intact : Image, optional
        Sacrum plus lesion on the CT grid: the denominator (the body model is cut to it).
    """
    a, b, h = model["semi_x_mm"], model["semi_y_mm"], model["height_mm"]
    sec = _ellipse_points(a, b, PEDICLE_LEVEL_MM, 0.25)
    vol_pts = np.concatenate([_ellipse_points(a, b, z, 0.5)
                              for z in np.arange(-0.25, -h, -0.5)])
    to_w = fv.frame.to_world_mm
    if lesion is not None:
        lm = np.asarray(lesion.array, bool)

        def frac(pts: np.ndarray) -> float:
            # the denominator is the model inside the intact bone (sacrum or lesion), so a model
            # slightly larger than the body does not dilute the loss
            les = _sample(lesion, to_w(pts), data=lm) >= 0.5
            if intact is not None:
                bone = _sample(intact, to_w(pts), data=np.asarray(intact.array, bool)) >= 0.5
            else:
                bone = fv.frame_sample(pts) >= 0.5
            bone |= les
            return float(les.sum() / max(int(bone.sum()), 1))

        f_sec, f_vol = frac(sec), frac(vol_pts)
        method = (f"supplied lesion mask ({lesion.source or 'mask'}) inside the S1 body model "
                  f"(elliptic cylinder {2 * a:.1f} x {2 * b:.1f} mm, {h:.1f} mm high)")
    else:
        # a 1 mm rim of the model is left out: it straddles the body surface (partial volume)
        sec_i = _ellipse_points(a - 1.0, b - 1.0, PEDICLE_LEVEL_MM, 0.25)
        vol_i = np.concatenate([_ellipse_points(a - 1.0, b - 1.0, z, 0.5)
                                for z in np.arange(-1.25, -h + 1.0, -0.5)])
        f_sec = float(np.mean(_sample_smoothed(ct, to_w(sec_i)) < LOSS_HU))
        f_vol = float(np.mean(_sample_smoothed(ct, to_w(vol_i)) < LOSS_HU))
        method = (f"estimated from CT: fraction of the S1 body model (elliptic cylinder "
                  f"{2 * a:.1f} x {2 * b:.1f} mm, {h:.1f} mm high) below {LOSS_HU:g} HU after "
                  "1 mm smoothing; cannot tell destruction from fatty/osteoporotic marrow - "
                  "supply a lesion mask for decisions")
    if model["notes"]:
        method += "; " + "; ".join(model["notes"])
    pct, vpct = 100.0 * f_sec, 100.0 * f_vol
    return BodyLoss(round(pct, 2), round(vpct, 2), method, bool(pct > INDICATION_PERCENT))


def _verdict(hu: float, level: str) -> str:
    if not np.isfinite(hu):
        return "not measured"
    where = "" if level == "l1" else " (L1 thresholds applied outside L1: indicative only)"
    if hu <= OSTEOPOROSIS_HU:
        return f"osteoporosis likely: <= {OSTEOPOROSIS_HU:g} HU{where}"
    if hu > NORMAL_HU:
        return f"normal: > {NORMAL_HU:g} HU{where}"
    return f"indeterminate (osteopenia range {OSTEOPOROSIS_HU:g}-{NORMAL_HU:g} HU){where}"


def measure_bone_quality(ct: Image, fv: FrameVolume, model: dict, *,
                         labels: dict[str, Image] | None = None,
                         lesion: Image | None = None) -> BoneQuality:
    """Trabecular HU of S1 (and L5, L1 when labelled) with threshold verdicts."""
    hu: dict[str, float] = {}
    a, b, h = model["semi_x_mm"] - 5.0, model["semi_y_mm"] - 5.0, model["height_mm"] - 10.0
    if a > 2 and b > 2 and h > 2:
        pts = np.concatenate([_ellipse_points(a, b, z, 1.0) for z in np.arange(-5.0, -5.0 - h,
                                                                                 -1.0)])
        world = fv.frame.to_world_mm(pts)
        vals = _sample(ct, world)
        if lesion is not None:
            keep = _sample(lesion, world, data=np.asarray(lesion.array, bool)) < 0.5
            vals = vals[keep]
        if len(vals) >= 20:
            hu["s1"] = float(np.mean(vals))
    for name in ("l5", "l1"):
        if labels and name in labels:
            m = np.asarray(labels[name].array, bool)
            bb = bounding_box(m)
            if bb is None:
                continue
            lo, hi = bb
            box = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))
            it = max(1, int(np.ceil(3.0 / float(np.min(ct.spacing_mm)))))
            core = ndi.binary_erosion(np.pad(m[box], 1), iterations=it)[1:-1, 1:-1, 1:-1]
            if core.sum() >= 20:
                hu[name] = float(np.mean(np.asarray(ct.array[box], float)[core]))
    verdicts = {k: _verdict(v, k) for k, v in hu.items()}
    return BoneQuality(hu, verdicts, BONE_QUALITY_REFERENCES)

"""S1 vertebral body loss and trabecular bone quality, measured in the S1 frame.

S1 body model
-------------
An elliptic cylinder in the S1 frame: centred on the endplate centre, semi-axes
``a`` (left-right) and ``b`` (anterior-posterior), from the bony endplate (``top_mm``) down to
the S1-S2 junction (``top_mm - height``). The segmented surface lies ``surface_bias_mm`` (about
half a CT voxel) outside the bone, so every boundary is moved back by it: the bony endplate
lies at frame ``z = endplate_z_mm`` (0 where ``analyze_anatomy`` has already moved the frame
origin onto the bone, ``-bias`` where the origin sits on a segmented endplate); ``b`` is half the
fitted endplate depth less the bias; ``a`` is fitted to the lateral exits of the body's
anterior half just under the endplate (above the alae; falling back to ``1.5 b``, the mean
width/depth ratio of the S1 endplate, when the body merges with the alae there), less the
bias. The S1-S2 junction is where the anterior wall steps back from its S1 level to its S2
level, located at half the step (an edge's half-way point) and moved up by the bias (the step
is the underside of the S1 anterior lip); where the wall only recedes gradually, the first
level 1 mm behind the S1 level is used and a note says so; without any waist, 27 mm (mean S1
body height). Measurements run along rows of the 1 mm frame grid: between two rows the
interpolated boolean mask would side with the wider row.

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
#: Columns (frame x, mm; nodes of the frame grid) of the anterior wall profile.
WALL_COLUMNS_MM = (-5.0, 0.0, 5.0)
#: A step of the anterior wall at the S1-S2 junction is completed within this depth (mm).
STEP_SPAN_MM = 3.0
#: The body width is fitted on rows from the midline to this fraction of the semi-depth
#: anteriorly (the posterior half merges with the pedicles).
WIDTH_ROWS_MAX = 0.6
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


def _anterior_wall_mm(vol: np.ndarray, fv: FrameVolume, zs: np.ndarray) -> np.ndarray:
    """Anterior body wall (frame y, mm) per level ``zs``: median over x = -5, 0, 5 mm.

    The median keeps one destroyed or osteophytic column from moving the profile. NaN where
    no wall is found.
    """
    walls = np.full((len(zs), len(WALL_COLUMNS_MM)), np.nan)
    for i, z in enumerate(zs):
        for j, x in enumerate(WALL_COLUMNS_MM):
            e = ray_crossing(vol, fv, np.array([x, -5.0, z]), np.array([0.0, 1.0, 0.0]),
                             max_mm=60.0)
            if e is not None:
                walls[i, j] = e[1]
    out = np.full(len(zs), np.nan)
    ok = np.isfinite(walls).any(axis=1)
    out[ok] = np.nanmedian(walls[ok], axis=1)
    return out


def _junction_depth_mm(zs: np.ndarray, wall: np.ndarray, *, top_mm: float = 0.0
                       ) -> tuple[float, bool] | None:
    """Frame z (mm) of the S1-S2 junction on the anterior wall profile, or None.

    Parameters
    ----------
    zs : (N,) ndarray
        Levels (frame z, mm), descending from the endplate, one per millimetre.
    wall : (N,) ndarray
        Anterior wall (frame y, mm) at each level; NaN where none.
    top_mm : float
        Frame z of the bony endplate.

    Returns
    -------
    (z_mm, stepped) or None
        None when no S1 level (median wall 3-12 mm below the endplate) or no waist is found.
        The waist is the first level, at least :data:`MIN_S1_HEIGHT_MM` below the endplate,
        from which the wall stays :data:`WAIST_DROP_MM` behind the S1 level for two levels
        (one jagged level of a coarse or tilted mask is not a waist). When the wall crosses
        half the step there (S1 level to the median of the 4 mm below the waist) between two
        levels within :data:`STEP_SPAN_MM` above to 4 mm below the waist, the junction is that
        crossing (linear interpolation, the crossing nearest the waist) and ``stepped`` is
        True; when the wall only recedes gradually, the waist level is returned with
        ``stepped`` False.
    """
    rel = zs - top_mm
    top = (rel <= -3.0) & (rel >= -12.0)
    if not np.isfinite(wall[top]).any():
        return None
    ref = float(np.nanmedian(wall[top]))
    behind = wall < ref - WAIST_DROP_MM  # NaN compares False
    waist = (rel[:-1] <= -MIN_S1_HEIGHT_MM) & behind[:-1] & behind[1:]
    if not waist.any():
        return None
    i = int(np.argmax(waist))
    s2 = float(np.nanmedian(wall[i:][zs[i:] >= zs[i] - 4.0]))
    half = 0.5 * (ref + s2)
    window = (zs[:-1] <= zs[i] + STEP_SPAN_MM) & (zs[1:] >= zs[i] - 4.0)
    cross = np.nonzero(window & (wall[:-1] >= half) & (wall[1:] < half))[0]
    if len(cross) == 0:
        return float(zs[i]), False
    j = int(cross[np.argmin(np.abs(cross - i))])
    f = (wall[j] - half) / (wall[j] - wall[j + 1])
    return float(zs[j] + f * (zs[j + 1] - zs[j])), True


def body_model(fv: FrameVolume, *, depth_mm: float, surface_bias_mm: float = 0.0,
               endplate_z_mm: float | None = None) -> dict:
    """Measure the S1 body elliptic cylinder (see the module docstring).

    Parameters
    ----------
    fv : FrameVolume
    depth_mm : float
        Fitted endplate depth (anterior-posterior), measured on the segmented surface.
    surface_bias_mm : float
        How far the segmented surface lies outside the bone (partial volume at the bone
        threshold, about half a CT voxel). Every boundary measured here is moved back by it:
        both semi-axes and the underside of the S1 anterior lip at the S1-S2 junction.
    endplate_z_mm : float, optional
        Frame z of the bony endplate: 0 when the frame origin lies on the bone; by default
        ``-surface_bias_mm`` (the origin lies on the segmented endplate surface).

    Returns
    -------
    dict
        ``semi_x_mm``, ``semi_y_mm``, ``top_mm`` (frame z of the bony endplate, ``endplate_z_mm``),
        ``height_mm`` (from ``top_mm`` down to the S1-S2 junction) and
        ``notes`` (list of str).

    Notes
    -----
    Width: rays along the right axis on the frame-grid row just under the bony endplate
    (above the alae), from every grid row ``y`` between the midline and
    :data:`WIDTH_ROWS_MAX` of the semi-depth anteriorly (the posterior half merges with the
    pedicles); each exit ``x`` gives ``x / sqrt(1 - (y / b)^2)`` for the ellipse through it
    and the median over both sides is the segmented semi-width. Rows lie on grid nodes
    because between two rows the interpolated boolean mask sides with the wider one.
    Height: :func:`_junction_depth_mm` on the anterior wall, one grid row per millimetre.
    """
    vol = fv.mask.astype(np.float32)
    notes: list[str] = []
    bias = float(surface_bias_mm)
    b_seg = depth_mm / 2.0
    top = -bias if endplate_z_mm is None else float(endplate_z_mm)
    # rays run along rows of the frame grid (nodes every 1 mm): between rows the interpolated
    # boolean mask would side with the wider row and bias every exit outwards
    z_w = float(fv.z_mm[fv.z_mm <= top - 0.5].max())
    # anterior half only: posterolaterally the body merges with the pedicles
    ys = fv.y_mm[(fv.y_mm >= 0.0) & (fv.y_mm <= WIDTH_ROWS_MAX * b_seg)]
    per_side = []
    for s in (-1.0, 1.0):
        vals = []
        for y in ys:
            e = ray_crossing(vol, fv, np.array([0.0, y, z_w]), np.array([s, 0.0, 0.0]),
                             max_mm=90.0)
            if e is not None:
                vals.append(abs(e[0]) / np.sqrt(1.0 - (y / b_seg) ** 2))
        per_side.append(float(np.median(vals)) if len(vals) >= 5 else np.inf)
    a_seg = 0.5 * (per_side[0] + per_side[1])
    if not (0.9 * b_seg <= a_seg <= 1.9 * b_seg):
        a_seg = WIDTH_DEPTH_RATIO * b_seg
        notes.append(f"body width not separable from the alae: {WIDTH_DEPTH_RATIO} x depth")
    zs = fv.z_mm[(fv.z_mm <= top - 2.0) & (fv.z_mm >= top - 50.0)][::-1]
    found = _junction_depth_mm(zs, _anterior_wall_mm(vol, fv, zs), top_mm=top)
    if found is not None:
        # the junction lies on the underside of the S1 anterior lip: a surface facing
        # caudally, so its segmented position lies ``bias`` below the bone
        height = top - (found[0] + bias)
        if not found[1]:
            notes.append("S1-S2 junction: the anterior wall recedes gradually (no step); "
                         f"height taken where it first lies {WAIST_DROP_MM:g} mm behind the "
                         "S1 level")
    else:
        height = NOMINAL_S1_HEIGHT_MM
        notes.append(f"S1-S2 waist not found: nominal height {NOMINAL_S1_HEIGHT_MM} mm")
    return {"semi_x_mm": float(a_seg - bias), "semi_y_mm": float(b_seg - bias),
            "top_mm": float(top), "height_mm": float(height), "notes": notes}


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
    top = float(model.get("top_mm", 0.0))
    sec = _ellipse_points(a, b, PEDICLE_LEVEL_MM, 0.25)
    vol_pts = np.concatenate([_ellipse_points(a, b, z, 0.5)
                              for z in np.arange(top - 0.25, top - h, -0.5)])
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
                                for z in np.arange(top - 1.25, top - h + 1.0, -0.5)])
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
        top = float(model.get("top_mm", 0.0))
        pts = np.concatenate([_ellipse_points(a, b, z, 1.0)
                              for z in np.arange(top - 5.0, top - 5.0 - h, -1.0)])
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

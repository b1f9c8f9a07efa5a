"""Synthetic lumbosacral CT with exact answers: L5, sacrum, ilia, iliac vessels, canal.

The anatomy is defined analytically in the S1 frame (:mod:`alarscrew.phantom._anatomy`)
and placed in world RAS by a rigid rotation about the left-right axis (sacral slope minus
pelvic tilt), so landmarks, the frame and the S1 body loss are known exactly and stay exact
under every parameter. Labels use TotalSegmentator v2 codes (25 sacrum without S1,
26 vertebrae_S1 = S1 body, pedicles, superior articular processes and lamina, 27
vertebrae_L5, 65/66 iliac_artery_left/right, 67/68 iliac_vena_left/right, 77/78
hip_left/right, 79 spinal_cord = thecal sac) plus :data:`LESION_LABEL` for the destroyed
part of the S1 body in memory. Files: ``labels.nii.gz`` keeps TotalSegmentator v2 codes only
(lesion voxels as S1) and the lesion goes to ``lesion.nii.gz``.

``truth.json`` (and :attr:`Phantom.truth`):

``frame``
    :meth:`S1Frame.to_dict` (origin = S1 endplate centre; right, anterior, cranial axes).
``landmarks`` / ``landmarks_frame_mm``
    The landmark names of :mod:`alarscrew.anatomy.model`, in world RAS mm / in the S1 frame.
    ``sap_facet`` is the area centroid of the S1 superior facet surface (the sacral surface
    facing within 35 degrees of the facet's posteromedial normal, connected to the articular
    face; :func:`alarscrew.phantom._anatomy.facet_surface`), by quadrature on the exact
    surface; ``entry`` the area centroid of the lateral-inferior part of the inferior half of
    that surface (Fang et al. 2022; the inferior half lies caudal to ``sap_facet``, its
    lateral-inferior part caudal to and lateral of the half's own centroid); ``pedicle`` and
    ``canal`` are centres at the pedicle level (frame z = -10 mm); ``ala_lateral`` is where
    the lateral ray from ``pedicle``, moved forward midway to ``ala_anterior``, leaves the
    sacrum (the SI-joint face of the ala); ``ala_anterior`` the anterior alar cortex at mid-ala
    on the pedicle-level section; ``s1_foramen`` the centre of the dorsal S1 foramen's
    opening.
``body_loss``
    ``pedicle_level_percent`` (exact by construction) and ``volume_percent`` (quadrature),
    the S1 body cylinder, lesion centre and radius.
``parameters``, ``sacral_slope_deg``, ``labels``, ``hu``, ``dimensions_mm``,
``facet_normal_ras``, ``s1_foramen_axis_ras``
    The inputs, the pose, the codes, the tissue HU, the nominal sizes and unit vectors.

Research software, not a medical device; the phantom is for testing software only.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import ndimage

from alarscrew.errors import InputError
from alarscrew.io.atomic import atomic_dir
from alarscrew.io.image import Image
from alarscrew.phantom import _anatomy as A
from alarscrew.phantom._lesion import lesion_fractions, solve_radius_mm
from alarscrew.phantom._sdf import FrameGrid, Shape
from alarscrew.spatial.frame import S1Frame

#: Label code of the lesion (destroyed S1 body), outside the TotalSegmentator v2 range 1-117.
LESION_LABEL = 200

#: Label codes written by the phantom (TotalSegmentator v2 "total" task + the lesion).
LABELS: dict[int, str] = {
    25: "sacrum",
    26: "vertebrae_S1",
    27: "vertebrae_L5",
    65: "iliac_artery_left",
    66: "iliac_artery_right",
    67: "iliac_vena_left",
    68: "iliac_vena_right",
    77: "hip_left",
    78: "hip_right",
    79: "spinal_cord",
    LESION_LABEL: "lesion",
}

#: Attenuation of each tissue (HU). Cortical and cancellous values: Schreiber et al. 2011
#: (JBJS Am 93:1057) and common CT practice; fat, muscle, fluid and air are textbook values.
HU: dict[str, float] = {
    "air": -1000.0,
    "fat": -100.0,
    "muscle": 45.0,
    "epidural_fat": -80.0,
    "thecal_sac": 10.0,
    "disc": 85.0,
    "artery": 45.0,
    "vein": 40.0,
    "vessel_sheath_fat": -90.0,
    "cortical_bone": 850.0,
    "cancellous_bone": 200.0,
    "lesion": 30.0,
}

#: Neutral sacral slope (deg), Legaye et al. 1998 (mean about 41 degrees).
NEUTRAL_SACRAL_SLOPE_DEG = 40.0
#: World RAS position of the S1 frame origin (arbitrary, not round, so nothing relies on 0).
FRAME_ORIGIN_RAS_MM = np.array([1.7, -8.3, 12.6])
#: Blur of the rendered CT (Gaussian sigma, mm): a CT's point-spread function, slight.
BLUR_SIGMA_MM = 0.5
#: Lesion centre in the S1 frame (mm): anterior right part of the body at the pedicle level.
LESION_CENTER_FRAME_MM = np.array([6.0, 4.8, A.PEDICLE_LEVEL_Z_MM])

LANDMARK_NAMES: tuple[str, ...] = (
    "promontory", "canal", "endplate_center",
    *(f"{side}.{n}" for side in A.SIDES
      for n in ("sap_facet", "entry", "pedicle", "ala_lateral", "ala_anterior", "s1_foramen")),
)


@dataclass(frozen=True, eq=False)
class Phantom:
    """A synthetic CT with its labels and exact ground truth.

    Attributes
    ----------
    ct : Image
        HU, int16, axis-aligned RAS grid (diagonal affine, spacing ``voxel_mm``).
    labels : Image
        uint8 label map on the same grid (codes in :data:`LABELS`).
    truth : dict
        JSON-ready ground truth: ``frame`` (:meth:`S1Frame.to_dict`), ``landmarks`` (world
        RAS mm, model.py names), ``landmarks_frame_mm``, ``body_loss``, ``parameters``,
        ``labels``, ``hu``, ``dimensions_mm``, ``sacral_slope_deg``, ``facet_normal_ras`` and
        ``s1_foramen_axis_ras`` (unit vectors pointing out of the bone).
    frame : S1Frame
    masks : dict[str, Image]
        Extra bool masks on the CT grid that the label map cannot hold: ``canal`` (the whole
        bony spinal canal: thecal sac and epidural fat), ``disc`` (L5/S1 disc) and
        ``s1_body`` (voxel centres inside the exact S1 body cylinder of the body-loss truth).
    """

    ct: Image
    labels: Image
    truth: dict
    frame: S1Frame
    masks: dict[str, Image] = field(default_factory=dict)

    @property
    def totalseg_labels(self) -> Image:
        """The label map with TotalSegmentator v2 codes only (what ``labels.nii.gz`` holds).

        Lesion voxels get the S1 code 26, as a segmentation with a shape prior outlines the
        intact vertebra; the lesion itself is :attr:`lesion` (``lesion.nii.gz``). This keeps
        the file readable by any TotalSegmentator v2 reader (code 200 is not in its map).
        """
        arr = np.where(self.labels.array == LESION_LABEL, np.uint8(26), self.labels.array)
        return self.labels.with_array(arr.astype(np.uint8), is_label=True)

    @property
    def lesion(self) -> Image:
        """Bool lesion mask on the CT grid (empty without destruction)."""
        return self.labels.with_array(self.labels.array == LESION_LABEL, is_label=True,
                                      source="phantom lesion")


def _opt(name: str) -> str:
    return f"phantom parameter {name} (--{name.replace('_', '-')})"


def _check(name: str, value: float, lo: float, hi: float, unit: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{_opt(name)}: expected a number, got {value!r}") from None
    if not np.isfinite(v) or not (lo <= v <= hi):
        raise InputError(f"{_opt(name)}: expected {lo:g} to {hi:g} {unit}, got {value!r}")
    return v


def phantom_frame(pelvic_tilt_deg: float) -> S1Frame:
    """The phantom's S1 frame in world RAS for a pelvic tilt (deg).

    The endplate faces anterosuperiorly at the sacral slope ``ss = 40 - pelvic_tilt_deg``
    (pelvic incidence = pelvic tilt + sacral slope, so a posterior pelvic tilt lowers the
    slope by the same angle): ``cranial = (0, sin ss, cos ss)``, ``anterior = (0, cos ss,
    -sin ss)``, ``right = (1, 0, 0)``.
    """
    ss = np.radians(NEUTRAL_SACRAL_SLOPE_DEG - pelvic_tilt_deg)
    return S1Frame(FRAME_ORIGIN_RAS_MM.copy(), np.array([1.0, 0.0, 0.0]),
                   np.array([0.0, np.cos(ss), -np.sin(ss)]),
                   np.array([0.0, np.sin(ss), np.cos(ss)]))


def _grid(frame: S1Frame, anat: A.PhantomAnatomy, spacing_mm: np.ndarray) -> FrameGrid:
    xr = A._lat(A.SI_X_MM, anat.scale["right"]) + 62.0
    xl = A._lat(A.SI_X_MM, anat.scale["left"]) + 62.0
    lo, hi = np.array([-xl, -72.0, -104.0]), np.array([xr, 66.0, 52.0])
    corners = np.array(np.meshgrid(*zip(lo, hi, strict=True), indexing="ij")).reshape(3, -1).T
    world = frame.to_world_mm(corners)
    w_lo, w_hi = world.min(0), world.max(0)
    n = np.ceil((w_hi - w_lo) / spacing_mm).astype(int) + 1
    shape = (int(n[0]), int(n[1]), int(n[2]))
    return FrameGrid(w_lo, spacing_mm, shape, frame.origin_ras_mm, frame.rotation)


def _bone_hu(hu: np.ndarray, field_mm: np.ndarray, spacing_mm: np.ndarray) -> None:
    """Blend cortex and cancellous bone into ``hu`` by partial volume (in place).

    A voxel (box of edges ``spacing_mm``) crossed by a surface of unit normal ``n`` spans
    ``w = sum_i |n_i| s_i`` along ``n``; its bone fraction is taken as the linear ramp
    ``clip(0.5 - field / w, 0, 1)``, and likewise for the cancellous core (field + cortex).
    ``n`` is the normalised gradient of the field, so thick slices blend along z as a CT
    slice integrates over its thickness.
    """
    reach = 2.0 * float(np.sum(spacing_mm)) + A.CORTEX_MM  # beyond it: all in or all out
    near = np.abs(field_mm) < reach
    hu[field_mm <= -reach] = HU["cancellous_bone"]
    if not near.any():
        return
    grad = np.gradient(field_mm, *spacing_mm)
    gnorm = np.sqrt(sum(g * g for g in grad))
    width = sum(np.abs(g) * float(s) for g, s in zip(grad, spacing_mm, strict=True))
    width = np.where(gnorm > 1e-6, width / np.maximum(gnorm, 1e-6), float(np.mean(spacing_mm)))
    w = width[near]
    f = field_mm[near]
    f_bone = np.clip(0.5 - f / w, 0.0, 1.0)
    f_core = np.clip(0.5 - (f + A.CORTEX_MM) / w, 0.0, 1.0)
    hu[near] = (hu[near] * (1.0 - f_bone) + HU["cortical_bone"] * (f_bone - f_core)
                + HU["cancellous_bone"] * f_core)


def _spacing(voxel_mm: float | Sequence[float]) -> np.ndarray:
    """Validate ``voxel_mm`` (one value or three) -> (3,) spacing in mm."""
    if isinstance(voxel_mm, (str, bytes)) or not np.ndim(voxel_mm):
        v = _check("voxel_mm", voxel_mm, 0.5, 3.0, "mm")  # type: ignore[arg-type]
        return np.full(3, v)
    vals = list(voxel_mm)  # type: ignore[arg-type]
    if len(vals) != 3:
        raise InputError(f"{_opt('voxel_mm')}: expected one value or three (x, y, z), "
                         f"got {len(vals)}: {vals!r}")
    return np.array([_check("voxel_mm", v, 0.5, 3.0, "mm") for v in vals])


def make_phantom(*, voxel_mm: float | Sequence[float] = 1.0, noise_hu: float = 20.0,
                 asymmetry: float = 0.0, pelvic_tilt_deg: float = 0.0,
                 body_destruction_percent: float = 0.0, seed: int = 0) -> Phantom:
    """Build the lumbosacral phantom.

    Parameters
    ----------
    voxel_mm : float or sequence of 3 floats
        Voxel size, 0.5 to 3 mm: one value (isotropic) or the spacing along world x, y, z
        (e.g. ``(0.8, 0.8, 3.0)`` for thick axial slices).
    noise_hu : float
        Standard deviation of the added Gaussian noise (HU), 0 to 200.
    asymmetry : float
        -0.3 to 0.3. Positive: right ala (and right ilium with it) ``1 + asymmetry`` times as
        wide as the left, laterally from the ala root; negative: the left one ``1 - asymmetry``
        times as wide as the right. The smaller side keeps the nominal size.
    pelvic_tilt_deg : float
        Posterior pelvic tilt relative to the neutral pose (sacral slope 40 deg); -30 to 30.
        Rotates the whole pelvis about the left-right axis through the endplate centre.
    body_destruction_percent : float
        Percentage (0-100) of the S1 body cross-section at the pedicle level replaced by
        soft tissue (lesion). The lesion is a ball centred at the pedicle level in the
        anterior right body, clipped to the body; its radius is solved so the area fraction
        at the pedicle level is exact; the volume fraction is then integrated.
    seed : int
        Seed of the noise generator (same seed, same CT).

    Returns
    -------
    Phantom

    Raises
    ------
    InputError
        A parameter is not a number or is out of range (the message names it).
    """
    spacing = _spacing(voxel_mm)
    noise_hu = _check("noise_hu", noise_hu, 0.0, 200.0, "HU")
    asymmetry = _check("asymmetry", asymmetry, -0.3, 0.3, "(fraction)")
    pelvic_tilt_deg = _check("pelvic_tilt_deg", pelvic_tilt_deg, -30.0, 30.0, "deg")
    destruction = _check("body_destruction_percent", body_destruction_percent, 0.0, 100.0, "%")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InputError(f"{_opt('seed')}: expected a non-negative integer, got {seed!r}")

    anat = A.build_anatomy(asymmetry)
    frame = phantom_frame(pelvic_tilt_deg)
    grid = _grid(frame, anat, spacing)

    def sdf_block(shape: Shape) -> tuple[tuple[slice, ...], np.ndarray]:
        return shape.sdf_grid(grid)

    # ---------------------------------------------------------------- soft tissue
    ijk_axes = [np.arange(n) * spacing[a] + grid.origin_ras_mm[a]
                for a, n in enumerate(grid.shape)]
    wx = ijk_axes[0][:, None] - frame.origin_ras_mm[0]
    wy = ijk_axes[1][None, :] - frame.origin_ras_mm[1]
    # body outline: elliptic cylinder along world z, skin about 30 mm behind the sacrum
    skin = (wx / 180.0) ** 2 + ((wy - 45.0) / 125.0) ** 2
    inner = (wx / 166.0) ** 2 + ((wy - 45.0) / 111.0) ** 2
    hu2d = np.where(skin <= 1.0, HU["fat"], HU["air"])
    hu2d = np.where(inner <= 1.0, HU["muscle"], hu2d).astype(np.float32)
    hu = np.repeat(hu2d[:, :, None], grid.shape[2], axis=2)
    labels = np.zeros(grid.shape, dtype=np.uint8)

    vessels = [(kind, side, sdf_block(shapes[side])) for kind, shapes in
               (("artery", anat.arteries), ("vein", anat.veins)) for side in A.SIDES]
    for _, _, (sl, f) in vessels:
        hu[sl][f <= 3.0] = HU["vessel_sheath_fat"]
    for kind, side, (sl, f) in vessels:
        hu[sl][f <= 0.0] = HU[kind]
        labels[sl][f <= 0.0] = {"artery": 65, "vein": 67}[kind] + (side == "right")
    del vessels
    extra = {}
    for name, shape, value in (("disc", anat.disc, HU["disc"]),
                               ("canal", anat.canal, HU["epidural_fat"])):
        sl, f = sdf_block(shape)
        hu[sl][f <= 0.0] = value
        extra[name] = np.zeros(grid.shape, dtype=bool)
        extra[name][sl] = f <= 0.0
    sl, f = sdf_block(anat.thecal_sac)
    sac = (f <= 0.0) & extra["canal"][sl]  # the dural sac stays inside the bony canal
    hu[sl][sac] = HU["thecal_sac"]
    labels[sl][sac] = 79

    # ---------------------------------------------------------------- bone
    for shape, code in ((anat.l5, 27), (anat.ilium["left"], 77), (anat.ilium["right"], 78)):
        sl, f = sdf_block(shape)
        _bone_hu(hu[sl], f, spacing)
        labels[sl][f <= 0.0] = code
    sl, f = sdf_block(anat.sacrum)
    _bone_hu(hu[sl], f, spacing)
    sac_ijk = np.argwhere(f <= 0.0) + np.array([s.start for s in sl])
    del f
    xyz = frame.to_frame_mm(sac_ijk * spacing + grid.origin_ras_mm)
    s1 = xyz[:, 2] >= -A.S1_BODY_HEIGHT_MM - 1.0
    s1 &= (np.abs(xyz[:, 0]) <= 26.0) | (xyz[:, 1] <= -27.0) & (np.abs(xyz[:, 0]) <= 34.0)
    labels[tuple(sac_ijk.T)] = np.where(s1, 26, 25).astype(np.uint8)

    # ---------------------------------------------------------------- lesion
    a, b, h = A.S1_BODY_SEMI_X_MM, A.S1_BODY_SEMI_Y_MM, A.S1_BODY_HEIGHT_MM
    center = LESION_CENTER_FRAME_MM
    radius = solve_radius_mm(destruction / 100.0, a, b, center[:2])
    area_frac, vol_frac = lesion_fractions(a, b, h, center, radius,
                                           level_z_mm=A.PEDICLE_LEVEL_Z_MM)
    # the body is the elliptic cylinder; the lesion a ball clipped to it (exact predicates)
    body_lo, body_hi = np.array([-a, -b, -h]), np.array([a, b, 0.0])
    box = grid.slices_for_frame_box(body_lo - 1.0, body_hi + 1.0)
    if box is None:  # pragma: no cover - the grid is built around the anatomy
        raise RuntimeError("phantom grid misses the S1 body")
    x, y, z = grid.frame_coords(box)
    in_body = ((x / a) ** 2 + (y / b) ** 2 <= 1.0) & (z <= 0.0) & (z >= -h)
    extra["s1_body"] = np.zeros(grid.shape, dtype=bool)
    extra["s1_body"][box] = in_body
    if radius > 0:
        in_ball = ((x - center[0]) ** 2 + (y - center[1]) ** 2 + (z - center[2]) ** 2
                   <= radius**2)
        les = in_body & in_ball
        hu[box][les] = HU["lesion"]
        labels[box][les] = LESION_LABEL

    # ---------------------------------------------------------------- blur + noise
    hu = ndimage.gaussian_filter(hu, sigma=tuple(BLUR_SIGMA_MM / spacing), mode="nearest")
    if noise_hu > 0:
        rng = np.random.default_rng(int(seed))
        hu += rng.standard_normal(hu.shape, dtype=np.float32) * np.float32(noise_hu)
    ct_arr = np.clip(np.rint(hu), -1024, 3071).astype(np.int16)

    affine = grid.affine
    vox: float | list[float] = (float(spacing[0]) if np.all(spacing == spacing[0])
                                else [float(v) for v in spacing])
    params = {"voxel_mm": vox, "noise_hu": noise_hu, "asymmetry": asymmetry,
              "pelvic_tilt_deg": pelvic_tilt_deg, "body_destruction_percent": destruction,
              "seed": int(seed)}
    ct = Image(ct_arr, affine, source="alarscrew phantom", meta={"phantom": params})
    lab = Image(labels, affine, is_label=True, source="alarscrew phantom labels")
    truth = _truth(anat, frame, params, area_frac, vol_frac, radius)
    bone = np.isin(labels, (25, 26, 27, 77, 78, LESION_LABEL))
    for name in ("canal", "disc"):  # soft-tissue masks end where bone begins
        extra[name] &= ~bone
    masks = {k: lab.with_array(v, is_label=True, source=f"phantom {k}")
             for k, v in sorted(extra.items())}
    return Phantom(ct, lab, truth, frame, masks)


def _truth(anat: A.PhantomAnatomy, frame: S1Frame, params: dict, area_frac: float,
           vol_frac: float, radius_mm: float) -> dict:
    lm_f = anat.landmarks_frame_mm
    missing = set(LANDMARK_NAMES) - set(lm_f)
    if missing:  # pragma: no cover - guards the anatomy definition itself
        raise RuntimeError(f"phantom anatomy lacks landmarks {sorted(missing)}")
    lat = {s: lm_f[f"{s}.ala_lateral"] for s in A.SIDES}
    return {
        "frame": frame.to_dict(),
        "landmarks": {n: [float(v) for v in frame.to_world_mm(lm_f[n])] for n in LANDMARK_NAMES},
        "landmarks_frame_mm": {n: [float(v) for v in lm_f[n]] for n in LANDMARK_NAMES},
        "body_loss": {
            "pedicle_level_percent": 100.0 * area_frac,
            "volume_percent": 100.0 * vol_frac,
            "pedicle_level_z_frame_mm": A.PEDICLE_LEVEL_Z_MM,
            "s1_body_frame_mm": {"semi_x": A.S1_BODY_SEMI_X_MM, "semi_y": A.S1_BODY_SEMI_Y_MM,
                                 "z_min": -A.S1_BODY_HEIGHT_MM, "z_max": 0.0},
            "lesion_center_frame_mm": [float(v) for v in LESION_CENTER_FRAME_MM],
            "lesion_radius_mm": float(radius_mm),
            "method": "analytic: ball clipped to the elliptic-cylinder S1 body, areas and "
                      "volume by dense quadrature",
        },
        "parameters": dict(params),
        "sacral_slope_deg": NEUTRAL_SACRAL_SLOPE_DEG - params["pelvic_tilt_deg"],
        "labels": {str(k): v for k, v in LABELS.items()},
        "hu": dict(HU),
        "dimensions_mm": {
            "s1_endplate_width": 2 * A.S1_BODY_SEMI_X_MM,
            "s1_endplate_depth": 2 * A.S1_BODY_SEMI_Y_MM,
            "s1_body_height": A.S1_BODY_HEIGHT_MM,
            # between the two ala_lateral landmarks (SI-joint faces on the pedicle rays)
            "width_between_ala_lateral": float(lat["right"][0] - lat["left"][0]),
            "si_joint_gap": A.SI_GAP_MM,
            "facet_joint_gap": A.FACET_GAP_MM,
            "cortex": A.CORTEX_MM,
        },
        "facet_normal_ras": {s: [float(v) for v in anat.facet_normal[s] @ frame.rotation]
                             for s in A.SIDES},
        "s1_foramen_axis_ras": {s: [float(v) for v in anat.foramen_axis[s] @ frame.rotation]
                                for s in A.SIDES},
    }


def write_phantom(phantom: Phantom, out_dir: str | os.PathLike[str], *,
                  force: bool = False) -> Path:
    """Write ``ct.nii.gz``, ``labels.nii.gz``, ``lesion.nii.gz`` and ``truth.json``.

    ``labels.nii.gz`` holds TotalSegmentator v2 codes only (:attr:`Phantom.totalseg_labels`:
    the lesion is labelled S1 there); ``lesion.nii.gz`` is the lesion mask (uint8 0/1).

    The folder is built in a temporary sibling and moved into place, so nothing
    half-written appears. An existing non-empty ``out_dir`` is replaced only with ``force``.

    Returns
    -------
    Path
        ``out_dir``.
    """
    from alarscrew.io.nifti import save_nifti

    out = Path(out_dir)
    if out.is_dir() and not any(out.iterdir()):
        force = True  # an empty folder holds nothing to lose
    with atomic_dir(out, force=force) as tmp:
        save_nifti(phantom.ct, tmp / "ct.nii.gz")
        save_nifti(phantom.totalseg_labels, tmp / "labels.nii.gz")
        save_nifti(phantom.lesion.with_array(phantom.lesion.array.astype(np.uint8)),
                   tmp / "lesion.nii.gz")
        (tmp / "truth.json").write_text(json.dumps(phantom.truth, indent=2) + "\n",
                                        encoding="utf-8")
    return out


__all__ = ["HU", "LABELS", "LANDMARK_NAMES", "LESION_LABEL", "Phantom", "make_phantom",
           "phantom_frame", "write_phantom"]

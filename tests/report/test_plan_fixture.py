"""A PLAN_DIR fixture built from the shared real CT, for the report and export tests.

The planning module writes real plans; these tests must not depend on it, so this module builds
a PLAN_DIR in the plan.json format (issue 4 contract) from the real 3 mm CT
(../shared/data/ct/totalseg-example, TotalSegmentator v1 labels: 92 sacrum, 18 L5, 90/91 hips,
51-54 iliac vessels) with hand-made screws: an entry on the dorsal sacrum lateral to the midline,
the paper's nominal 30/45 trajectory, and as "optimal" the longest axis inside the sacrum label
over a 5-degree grid (a plain exhaustive search, not the planner's algorithm).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from alarscrew import DISCLAIMER
from alarscrew.spatial.frame import S1Frame, direction_from_angles

TOTALSEG_V1 = {"sacrum": 92, "l5": 18, "hip_left": 90, "hip_right": 91,
               "iliac_artery_left": 51, "iliac_artery_right": 52,
               "iliac_vena_left": 53, "iliac_vena_right": 54}
STEP_MM = 0.25
MAX_MM = 90.0


def axis_length_in_mask_mm(mask: np.ndarray, affine: np.ndarray, entry_ras_mm: np.ndarray,
                           dirs_ras: np.ndarray) -> np.ndarray:
    """Length (mm) from the entry along each direction until the first sample outside the mask.

    Nearest-voxel sampling every 0.25 mm (so the answer is exact to 0.25 mm for the label map).
    """
    t = np.arange(0.0, MAX_MM, STEP_MM)
    pts = entry_ras_mm + t[:, None, None] * dirs_ras[None]  # (T, N, 3)
    ijk = np.rint(nib.affines.apply_affine(np.linalg.inv(affine), pts)).astype(int)
    ok = np.all((ijk >= 0) & (ijk < np.array(mask.shape)), axis=-1)
    ijk = np.where(ok[..., None], ijk, 0)
    inside = ok & mask[ijk[..., 0], ijk[..., 1], ijk[..., 2]]
    first_out = np.argmax(~inside, axis=0)
    first_out[inside.all(axis=0)] = len(t)
    return first_out * STEP_MM


def _screw(entry, d, length, frame_angles, mask, ct, affine, diameter=7.0):
    t = np.arange(0, max(length, STEP_MM), 1.0)
    pts = entry + t[:, None] * d
    ijk = np.rint(nib.affines.apply_affine(np.linalg.inv(affine), pts)).astype(int)
    mean_hu = float(ct[ijk[:, 0], ijk[:, 1], ijk[:, 2]].mean())
    safe = max(length - 2.0, 0.0)  # 2 mm margin at the tip
    catalog = [x for x in range(30, 60, 5) if x <= safe]
    rec = ({"diameter_mm": diameter, "length_mm": float(max(catalog))} if catalog else None)
    return {
        "entry_ras_mm": [float(v) for v in entry],
        "direction_ras": [float(v) for v in d],
        "length_mm": float(safe),
        "axis_in_bone_mm": float(length),
        "diameter_mm": diameter,
        "transverse_angle_deg": float(frame_angles[0]),
        "sagittal_angle_deg": float(frame_angles[1]),
        "breaches": [] if rec else [{"surface": "anterior cortex", "depth_mm": 2.5,
                                     "grade": "C"}],
        "min_vessel_distance_mm": None,
        "mean_hu": mean_hu,
        "recommended_screw": rec,
        "reason": None if rec else f"longest safe length {safe:.1f} mm is below 30 mm",
    }


def build_plan_dir(out: Path, ct_path: Path, seg_path: Path, *, name: str = "plan",
                   sacrum_code: int = TOTALSEG_V1["sacrum"]) -> Path:
    """Write a PLAN_DIR (plan.json, anatomy.json, sacrum_mask.nii.gz) under ``out``.

    ``sacrum_code`` is the sacrum's value in ``seg_path`` (92 in TotalSegmentator v1, 25 in v2
    and the atlas).
    """
    ct_img = nib.load(str(ct_path))
    seg = np.asarray(nib.load(str(seg_path)).dataobj).round().astype(np.int32)
    ct = np.asarray(ct_img.dataobj)
    aff = ct_img.affine
    sac = seg == sacrum_code
    ijk = np.argwhere(sac)
    ras = nib.affines.apply_affine(aff, ijk)
    z_top = ras[:, 2].max()
    top = ras[ras[:, 2] > z_top - 6.0]
    origin = top.mean(axis=0)
    frame = S1Frame.from_axes(origin, cranial_ras=np.array([0, 0, 1.0]),
                              anterior_ras=np.array([0, 1.0, 0]))
    trans = np.arange(0.0, 60.1, 5.0)
    sagi = np.arange(0.0, 75.1, 5.0)
    tt, ss = np.meshgrid(trans, sagi)  # rows = sagittal, cols = transverse
    sides = {}
    for side, sign in (("left", -1.0), ("right", 1.0)):
        band = ras[(ras[:, 2] > z_top - 30) & (ras[:, 2] < z_top - 8)
                   & (np.abs(ras[:, 0] - origin[0] - sign * 22.0) < 6.0)]
        entry = band[np.argmin(band[:, 1])] + np.array([0, 1.5, 0])
        dirs = direction_from_angles(frame, side, tt.ravel(), ss.ravel())
        lengths = axis_length_in_mask_mm(sac, aff, entry, dirs).reshape(tt.shape)
        safe = np.maximum(lengths - 2.0, 0.0)
        best = np.unravel_index(np.argmax(safe), safe.shape)
        opt_angles = (trans[best[1]], sagi[best[0]])
        nominal_d = direction_from_angles(frame, side, 30.0, 45.0)
        nominal_len = float(axis_length_in_mask_mm(sac, aff, entry, nominal_d[None])[0])
        good = safe >= 30.0
        sides[side] = {
            "nominal": _screw(entry, nominal_d, nominal_len, (30.0, 45.0), sac, ct, aff),
            "optimal": _screw(entry, dirs.reshape(*tt.shape, 3)[best], float(lengths[best]),
                              opt_angles, sac, ct, aff),
            "safe_length_map": {
                "transverse_deg": trans.tolist(), "sagittal_deg": sagi.tolist(),
                "length_mm": [[float(v) if g else None for v, g in zip(r, gr, strict=True)]
                              for r, gr in zip(safe, good, strict=True)],
            },
            "safe_window_deg": 5.0,
        }
    plan = {
        "disclaimer": DISCLAIMER,
        "inputs": {"ct": str(ct_path), "seg": [str(seg_path)], "landmarks": None},
        "frame": frame.to_dict(),
        "body_loss_percent": None,
        "decision": {"alar_screws_indicated": None,
                     "reasons": ["S1 body loss not measured in this test fixture"]},
        "alternatives": {"s1_pedicle": {"feasible": True, "safe_length_mm": 38.0},
                         "s2_alar_iliac": {"feasible": False, "reason": "fixture"}},
        "sides": sides,
        "timing_s": None,
    }
    d = out / name
    d.mkdir(parents=True, exist_ok=True)
    (d / "plan.json").write_text(json.dumps(plan, indent=2), encoding="utf-8")
    inner = np.asarray(sac, dtype=bool)
    anatomy = {
        "frame": frame.to_dict(),
        "body_loss": {"pedicle_level_percent": None, "volume_percent": None,
                      "method": "not measured (test fixture)",
                      "indication_over_50_percent": None},
        "bone_quality": {"trabecular_hu": {"sacrum": float(np.median(ct[inner]))},
                         "verdicts": {"sacrum": "median HU in the sacrum label (fixture)"},
                         "references": []},
    }
    (d / "anatomy.json").write_text(json.dumps(anatomy, indent=2), encoding="utf-8")
    nii = nib.Nifti1Image(sac.astype(np.uint8), aff)
    nib.save(nii, str(d / "sacrum_mask.nii.gz"))
    return d


@pytest.fixture(scope="module")
def real_plan_dir(real_ct_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """PLAN_DIR on the shared real CT (3 mm) with hand-made screws."""
    out = tmp_path_factory.mktemp("planfix")
    return build_plan_dir(out, real_ct_dir / "ct.nii.gz", real_ct_dir / "total_v1.nii.gz")


def build_planner_plan_dir(fixture_dir: Path, out: Path) -> Path:
    """Same scan, but plan.json written by ``alarscrew.planning`` (the real contract).

    The Anatomy is assembled from the fixture (frame, the two entry landmarks) and the
    TotalSegmentator v1 labels loaded through ``alarscrew.anatomy.labels``; planning then runs
    its own search. Skips when those modules are not importable in this checkout.
    """
    plan_mod = pytest.importorskip("alarscrew.planning.plan")
    labels_mod = pytest.importorskip("alarscrew.anatomy.labels")
    from alarscrew.anatomy.model import Anatomy, Landmark
    from alarscrew.io.loading import load_ct

    fix = json.loads((fixture_dir / "plan.json").read_text())
    ct = load_ct(fix["inputs"]["ct"])
    labels = labels_mod.load_labels(fix["inputs"]["seg"], ct)
    masks = _planner_masks(labels)
    frame = S1Frame.from_dict(fix["frame"])
    lms = {f"{s}.entry": Landmark(f"{s}.entry",
                                  np.asarray(fix["sides"][s]["nominal"]["entry_ras_mm"]),
                                  1.0, "test fixture", True) for s in ("left", "right")}
    anatomy = Anatomy(ct=ct, frame=frame, landmarks=lms, masks=masks)
    plan = plan_mod.plan_from_anatomy(anatomy, inputs=fix["inputs"])
    out.mkdir(parents=True)
    for name in ("anatomy.json", "sacrum_mask.nii.gz"):
        shutil.copy(fixture_dir / name, out / name)
    (out / "plan.json").write_text(plan_mod.plan_to_json(plan), encoding="utf-8")
    return out


def _planner_masks(labels: dict) -> dict:
    masks = {"sacrum": labels["sacrum"]}
    if "l5" in labels:
        masks["l5"] = labels["l5"]
    for side in ("left", "right"):
        if f"hip_{side}" in labels:
            masks[f"ilium_{side}"] = labels[f"hip_{side}"]
    vessels = [labels[k].array for k in labels if k.startswith("iliac_")]
    if vessels:
        masks["iliac_vessels"] = labels["sacrum"].with_array(np.any(vessels, axis=0))
    return masks


def build_phantom_plan_dir(out: Path, *, body_destruction_percent: float = 60.0) -> Path:
    """PLAN_DIR on the synthetic phantom (alarscrew.phantom), planned by alarscrew.planning
    from the phantom's true frame and landmarks. Skips when those modules are missing."""
    phantom_mod = pytest.importorskip("alarscrew.phantom")
    plan_mod = pytest.importorskip("alarscrew.planning.plan")
    labels_mod = pytest.importorskip("alarscrew.anatomy.labels")
    from alarscrew.anatomy.model import Anatomy, BodyLoss, Landmark
    from alarscrew.io.loading import load_ct

    ph_dir = phantom_mod.write_phantom(
        phantom_mod.make_phantom(voxel_mm=1.0, body_destruction_percent=body_destruction_percent),
        out / "phantom")
    truth = json.loads((ph_dir / "truth.json").read_text())
    ct = load_ct(ph_dir / "ct.nii.gz")
    seg = [str(ph_dir / "labels.nii.gz")]
    labels = labels_mod.load_labels(seg, ct)
    lms = {k: Landmark(k, np.asarray(v, float), 1.0, "phantom truth", True)
           for k, v in truth["landmarks"].items()}
    bl = truth["body_loss"]
    body_loss = BodyLoss(pedicle_level_percent=bl["pedicle_level_percent"],
                         volume_percent=bl["volume_percent"], method="phantom truth",
                         indication_met=bl["pedicle_level_percent"] > 50.0)
    anatomy = Anatomy(ct=ct, frame=S1Frame.from_dict(truth["frame"]), landmarks=lms,
                      masks=_planner_masks(labels), body_loss=body_loss)
    plan = plan_mod.plan_from_anatomy(
        anatomy, inputs={"ct": str(ph_dir / "ct.nii.gz"), "seg": seg, "landmarks": None})
    d = out / "plan"
    d.mkdir(parents=True)
    (d / "plan.json").write_text(plan_mod.plan_to_json(plan), encoding="utf-8")
    (d / "anatomy.json").write_text(json.dumps({"frame": truth["frame"],
                                                "body_loss": truth["body_loss"]}, indent=2))
    sac = labels["sacrum"]
    nib.save(nib.Nifti1Image(sac.array.astype(np.uint8), sac.affine),
             str(d / "sacrum_mask.nii.gz"))
    return d


def copy_plan_dir(src: Path, dst: Path) -> Path:
    """A fresh copy of a PLAN_DIR (tests that write into it must not share one)."""
    shutil.copytree(src, dst)
    return dst


def test_fixture_screws_inside_sacrum(real_plan_dir: Path) -> None:
    """The hand-made optimal screw axis lies in the sacrum label over its in-bone length.

    Independent check: sample the axis every 0.1 mm (finer than the builder's 0.25 mm) up to
    axis_in_bone_mm - 0.25 mm; every sample's nearest voxel must be sacrum.
    """
    plan = json.loads((real_plan_dir / "plan.json").read_text())
    img = nib.load(str(real_plan_dir / "sacrum_mask.nii.gz"))
    mask = np.asarray(img.dataobj) > 0
    for side in ("left", "right"):
        s = plan["sides"][side]["optimal"]
        assert s["axis_in_bone_mm"] > 20.0, side
        t = np.arange(0, s["axis_in_bone_mm"] - 0.25, 0.1)
        pts = np.asarray(s["entry_ras_mm"]) + t[:, None] * np.asarray(s["direction_ras"])
        ijk = np.rint(nib.affines.apply_affine(np.linalg.inv(img.affine), pts)).astype(int)
        assert mask[ijk[:, 0], ijk[:, 1], ijk[:, 2]].all(), side

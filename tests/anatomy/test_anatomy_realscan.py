"""Anatomy on the shared real 3 mm CT (../shared/data/ct/totalseg-example) and the CLI.

References: total_v1.nii.gz (TotalSegmentator v1 prediction: 90/91 hip_left/right, 92 sacrum)
is used only to check the result, never as input; vertebrae.nii.gz (v2 vertebra labels: S1
without the ala, L5...) is the input label map.
Checks (issue 3 "done when"): the sacrum mask holds both alae (its most lateral points at the
pedicle level lie at least 35 mm either side of the midline) and not the ilia (left-right extent
90-130 mm; on every axial slice no sacrum voxel lies inside the v1 hip labels and the mask stays
medial to them); the frame is plausible (sacral slope 25-65 deg, endplate 25-45 mm deep); the
landmarks are plausible (promontory anterior to the canal, entries posterior and lateral,
left/right symmetric within 10 mm); NIfTI, NRRD and DICOM copies agree within a voxel (3 mm).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from alarscrew.anatomy import (
    analyze_anatomy,
    load_landmarks_file,
    render_overlay,
    run_anatomy,
    save_anatomy,
)
from alarscrew.errors import AnatomyNotFoundError, InputError, OutputExistsError
from alarscrew.io import load_nifti
from tests.conftest import run_cli

pytestmark = pytest.mark.realdata


@pytest.fixture(scope="module")
def real(real_ct_dir: Path):
    return run_anatomy(real_ct_dir / "ct.nii.gz", seg_paths=[real_ct_dir / "vertebrae.nii.gz"])


def _check_alae_and_no_ilium(real, real_ct_dir: Path) -> None:
    v1 = load_nifti(real_ct_dir / "total_v1.nii.gz", is_label=True).array
    hip_l, hip_r = v1 == 90, v1 == 91
    m = real.sacrum.array
    assert m.sum() > 0
    width = real.provenance["sacrum_extent_mm"]["left_right"]
    assert 90.0 <= width <= 130.0, width
    assert not (m & (hip_l | hip_r)).any()
    # medial to both hips on every axial slice (RAS grid: axis 0 is x, left = low x)
    xs = np.arange(m.shape[0])[:, None]
    for k in range(m.shape[2]):
        s = m[:, :, k]
        if not s.any():
            continue
        sx = np.nonzero(s.any(axis=1))[0]
        if hip_l[:, :, k].any():
            rows = s.any(axis=0) & hip_l[:, :, k].any(axis=0)
            for j in np.nonzero(rows)[0]:
                assert np.nonzero(s[:, j])[0].min() > np.nonzero(hip_l[:, j, k])[0].min()
        if hip_r[:, :, k].any():
            rows = s.any(axis=0) & hip_r[:, :, k].any(axis=0)
            for j in np.nonzero(rows)[0]:
                assert np.nonzero(s[:, j])[0].max() < np.nonzero(hip_r[:, j, k])[0].max()
        assert len(sx) * 3.0 <= 130.0 + 3.0
    del xs
    f = real.frame
    xl = f.to_frame_mm(real.landmarks["left.ala_lateral"].xyz_ras_mm)[0]
    xr = f.to_frame_mm(real.landmarks["right.ala_lateral"].xyz_ras_mm)[0]
    assert xl <= -35.0, xl
    assert xr >= 35.0, xr


def test_sacrum_has_both_alae_and_no_ilium(real, real_ct_dir: Path) -> None:
    _check_alae_and_no_ilium(real, real_ct_dir)


def test_frame_and_landmarks_plausible(real) -> None:
    f = real.frame
    slope = np.degrees(np.arctan2(f.cranial_ras[1], f.cranial_ras[2]))
    assert 25.0 <= slope <= 65.0, slope
    assert 25.0 <= real.provenance["endplate_fit"]["depth_mm"] <= 45.0
    fr = {k: f.to_frame_mm(v.xyz_ras_mm) for k, v in real.landmarks.items()}
    assert fr["promontory"][1] > fr["canal"][1] + 20.0
    for side, s in (("left", -1.0), ("right", 1.0)):
        e = fr[f"{side}.entry"]
        assert e[1] < -10.0, (side, e)
        assert s * e[0] > 15.0, (side, e)
        assert fr[f"{side}.ala_anterior"][1] > fr[f"{side}.pedicle"][1]
    for name in ("pedicle", "sap_facet", "ala_anterior"):
        left, right = fr[f"left.{name}"], fr[f"right.{name}"]
        mirrored = left * np.array([-1.0, 1.0, 1.0])
        assert np.linalg.norm(mirrored - right) <= 12.0, (name, left, right)
    bq = real.bone_quality
    assert set(bq.trabecular_hu) >= {"s1", "l5", "l1"}
    assert all(50.0 < v < 400.0 for v in bq.trabecular_hu.values())
    assert any("Pickhardt" in r for r in bq.references)


def test_total_v1_sacrum_label_is_used_as_is(real, real_ct_dir: Path) -> None:
    """With the v1 whole-sacrum label the mask is that label; the frame found on it agrees with
    the frame found on our CT segmentation (S1 label only) within 3 mm and 5 deg: two masks
    from different sources (TotalSegmentator v1 vs bone threshold + watershed)."""
    an = run_anatomy(real_ct_dir / "ct.nii.gz", seg_paths=[real_ct_dir / "total_v1.nii.gz"])
    ref = load_nifti(real_ct_dir / "total_v1.nii.gz", is_label=True).array == 92
    assert np.array_equal(an.sacrum.array, ref)
    assert an.provenance["sacrum_mask"].startswith("supplied sacrum label")
    assert 25.0 <= an.provenance["endplate_fit"]["depth_mm"] <= 45.0
    assert np.linalg.norm(an.frame.origin_ras_mm - real.frame.origin_ras_mm) <= 3.0
    cos = float(np.clip(an.frame.cranial_ras @ real.frame.cranial_ras, -1.0, 1.0))
    assert np.degrees(np.arccos(cos)) <= 5.0


def test_nifti_nrrd_dicom_copies_agree(real, real_ct_dir: Path, tmp_path: Path) -> None:
    from alarscrew.io import load_ct, save_nrrd, write_dicom_series

    ct = load_ct(real_ct_dir / "ct.nii.gz")
    save_nrrd(ct, tmp_path / "ct.nrrd")
    write_dicom_series(ct.with_array(np.asarray(ct.array, np.int16)), tmp_path / "dicom")
    base = save_anatomy(real, tmp_path / "nifti")
    ref = json.loads((base / "anatomy.json").read_text())
    for src in (tmp_path / "ct.nrrd", tmp_path / "dicom"):
        an = run_anatomy(src, seg_paths=[real_ct_dir / "vertebrae.nii.gz"])
        out = json.loads((save_anatomy(an, tmp_path / src.stem) / "anatomy.json").read_text())
        for key in ("origin_ras_mm",):
            np.testing.assert_allclose(out["frame"][key], ref["frame"][key], atol=3.0)
        for key in ("right_ras", "anterior_ras", "cranial_ras"):
            np.testing.assert_allclose(out["frame"][key], ref["frame"][key], atol=0.05)
        assert set(out["landmarks"]) == set(ref["landmarks"])
        for name, lm in ref["landmarks"].items():
            np.testing.assert_allclose(out["landmarks"][name]["xyz_ras_mm"], lm["xyz_ras_mm"],
                                       atol=3.0, err_msg=f"{src.name}: {name}")
        assert out["body_loss"]["pedicle_level_percent"] == pytest.approx(
            ref["body_loss"]["pedicle_level_percent"], abs=2.0)


def test_save_refuses_overwrite_and_writes_json(real, tmp_path: Path) -> None:
    out = save_anatomy(real, tmp_path / "a")
    data = json.loads((out / "anatomy.json").read_text())
    assert "not a medical device" in data["disclaimer"]
    assert set(data) >= {"frame", "landmarks", "body_loss", "bone_quality", "provenance",
                         "findings"}
    assert all(not v["supplied"] for v in data["landmarks"].values())
    mask = load_nifti(out / "sacrum_mask.nii.gz", is_label=True)
    assert np.array_equal(mask.array.astype(bool), real.sacrum.array)
    np.testing.assert_allclose(mask.affine, real.ct.affine)
    with pytest.raises(OutputExistsError):
        save_anatomy(real, out)
    save_anatomy(real, out, force=True)


def test_overlay_png(real, tmp_path: Path) -> None:
    p = render_overlay(real, tmp_path / "overlay.png")
    assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(OutputExistsError):
        render_overlay(real, p)


def test_slicer_landmarks_lps_are_converted(real_ct_dir: Path, tmp_path: Path) -> None:
    f = tmp_path / "points.mrk.json"
    f.write_text(json.dumps({"markups": [{"type": "Fiducial", "coordinateSystem": "LPS",
                                          "controlPoints": [{"label": "left.entry",
                                                             "position": [30.0, -95.0, 240.0]}]}
                                         ]}))
    pts = load_landmarks_file(f)
    np.testing.assert_allclose(pts["left.entry"], [-30.0, 95.0, 240.0])
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"left.entri": [0, 0, 0]}))
    with pytest.raises(InputError, match=r"unknown landmark name 'left\.entri'"):
        load_landmarks_file(bad)
    bad.write_text(json.dumps({"left.entry": [0, "a", 0]}))
    with pytest.raises(InputError, match="3 finite numbers"):
        load_landmarks_file(bad)


def test_cli_anatomy(real_ct_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
                     ) -> None:
    lm = tmp_path / "lm.json"
    lm.write_text(json.dumps({"right.entry": [25.0, 100.0, 243.0]}))
    out = tmp_path / "out"
    argv = ["anatomy", str(real_ct_dir / "ct.nii.gz"), "--seg",
            str(real_ct_dir / "vertebrae.nii.gz"), "--landmarks", str(lm), "--out", str(out)]
    code, stdout, _ = run_cli(argv, capsys)
    assert code == 0
    assert "landmarks: 14 detected, 1 supplied" in stdout
    data = json.loads((out / "anatomy.json").read_text())
    assert data["landmarks"]["right.entry"]["supplied"] is True
    assert (out / "sacrum_mask.nii.gz").exists()
    assert (out / "anatomy_overlay.png").exists()
    code, _, err = run_cli(argv, capsys)
    assert code == 2
    assert "exists already" in err
    code, _, _ = run_cli([*argv, "--force", "--no-png"], capsys)
    assert code == 0


def test_cli_sacrum_outside_fov(real_ct_dir: Path, tmp_path: Path,
                                capsys: pytest.CaptureFixture[str]) -> None:
    """The DICOM series is the upper abdomen: no sacrum -> one-line error, nothing written."""
    out = tmp_path / "none"
    code, _, err = run_cli(["anatomy", str(real_ct_dir / "dicom"), "--out", str(out)], capsys)
    assert code == 2
    assert err.startswith("error: ")
    assert "sacrum" in err
    assert len(err.strip().splitlines()) == 1
    assert not (out / "anatomy.json").exists()


def test_analyze_refuses_labels_on_another_grid(real, real_ct_dir: Path) -> None:
    from alarscrew.errors import GeometryError

    ct = real.ct
    other = ct.with_array(np.zeros(ct.shape, bool), is_label=True)
    shifted = other.__class__(other.array, ct.affine + np.array(
        [[0, 0, 0, 5.0], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]), is_label=True)
    with pytest.raises(GeometryError, match="not on the CT grid"):
        analyze_anatomy(ct, labels={"s1": shifted})


def test_empty_supplied_sacrum_label(real) -> None:
    ct = real.ct
    empty = ct.with_array(np.zeros(ct.shape, bool), is_label=True)
    with pytest.raises(AnatomyNotFoundError, match="empty"):
        analyze_anatomy(ct, labels={"sacrum": empty})


@pytest.fixture(scope="module")
def ct_only(real_ct_dir: Path):
    return run_anatomy(real_ct_dir / "ct.nii.gz")


@pytest.fixture(scope="module")
def v1_run(real_ct_dir: Path):
    """Reference: the anatomy on TotalSegmentator v1's own sacrum label (an independent
    segmentation of the same scan), used only to check the CT-only result."""
    return run_anatomy(real_ct_dir / "ct.nii.gz", seg_paths=[real_ct_dir / "total_v1.nii.gz"])


def test_ct_only_real_scan_sacrum_and_frame(ct_only, v1_run, real_ct_dir: Path) -> None:
    """No labels at all (issue 3 item 3). The L5-S1 disc (88 HU between 200-240 HU endplates,
    marrow 111-148 HU) is found by ``find_lumbosacral_disc`` and bounds the automatic region.
    Measured (2026-11-23): frame origin 2.6 mm and cranial axis 1.9 deg from the v1-label
    run (1.4 mm before the CT-only origin was moved onto the bone, half a voxel down; the v1
    label is taken as drawn, and the CT's own half-maximum endplate edge lies between the
    two). Dice against the v1 sacrum 0.692 (159 ml vs v1's 210 ml) since the coarse enclosure
    keeps the fatty alar marrow up to the SI joint space (``fill.JOINT_GAP_MM``); 0.658 with
    the midpoint rule before. Tolerances 3 mm / 3 deg / Dice 0.66."""
    _check_alae_and_no_ilium(ct_only, real_ct_dir)
    assert "L5-S1 disc found" in ct_only.provenance["sacrum_mask"]
    f, ref = ct_only.frame, v1_run.frame
    assert np.linalg.norm(f.origin_ras_mm - ref.origin_ras_mm) <= 3.0
    cos = float(np.clip(f.cranial_ras @ ref.cranial_ras, -1.0, 1.0))
    assert np.degrees(np.arccos(cos)) <= 3.0
    assert ct_only.provenance["endplate_fit"]["rms_mm"] <= 1.0
    v1 = load_nifti(real_ct_dir / "total_v1.nii.gz", is_label=True).array == 92
    m = ct_only.sacrum.array
    assert 2.0 * (m & v1).sum() / (m.sum() + v1.sum()) >= 0.66
    # posterior landmarks (measured 6.3 mm canal, 6.9 / 9.6 mm pedicles from the v1 run; with
    # the S1 label 7.3 / 3.7 / 6.1 mm): tolerance 12 mm, a plate rule applied in the midline
    # had moved them 16-19 mm
    for name in ("canal", "left.pedicle", "right.pedicle"):
        d = ct_only.landmarks[name].xyz_ras_mm - v1_run.landmarks[name].xyz_ras_mm
        assert np.linalg.norm(d) <= 12.0, (name, d)


def test_ct_only_real_scan_withholds_facets_and_entries(ct_only) -> None:
    """At 3 mm without labels the L5-S1 facet joint is not resolved (measured: the S1 superior
    articular processes go to L5), so the facets and entries are withheld with the reason and
    the way out (--seg / --landmarks), never guessed; the CLI findings say so."""
    from alarscrew.anatomy.pipeline import findings

    withheld = ct_only.provenance["landmarks_withheld"]
    for side in ("left", "right"):
        for name in (f"{side}.sap_facet", f"{side}.entry"):
            assert name not in ct_only.landmarks
            assert name in ct_only.provenance["landmarks_missing"]
            assert "--seg" in withheld[name]
    assert any("not reported" in f and "facet is not resolved" in f
               for f in findings(ct_only))
    assert {"left.pedicle", "right.pedicle", "promontory"} <= set(ct_only.landmarks)


def l5_iap_tips_frame_mm(label_path: Path, code: int, frame) -> dict[str, np.ndarray]:
    """Tip of each L5 inferior articular process (frame mm), from the L5 label alone.

    L5 voxels behind the S1 endplate's posterior edge (frame y < -15 mm: posterior elements,
    not the body), per side (more than 5 mm from the midline), the caudal-most 4 mm of them,
    and of these the most lateral quarter: their mean. Only the frame's axes and origin come
    from the anatomy stage (checked by ``test_frame_and_landmarks_plausible``).
    """
    img = load_nifti(label_path, is_label=True)
    ijk = np.argwhere(np.asarray(img.array) == code)
    p = frame.to_frame_mm(ijk @ img.affine[:3, :3].T + img.affine[:3, 3])
    tips = {}
    for side, s in (("left", -1.0), ("right", 1.0)):
        q = p[(p[:, 1] < -15.0) & (s * p[:, 0] > 5.0)]
        q = q[q[:, 2] <= q[:, 2].min() + 4.0]
        tips[side] = q[s * q[:, 0] >= np.percentile(s * q[:, 0], 75)].mean(axis=0)
    return tips


@pytest.mark.parametrize(("seg", "l5_code"), [("vertebrae.nii.gz", 27), ("total_v1.nii.gz", 18)])
def test_entry_on_the_s1_facet_next_to_the_l5_iap(real, real_ct_dir: Path, seg: str,
                                                 l5_code: int) -> None:
    """The facet and entry land on the S1 superior articular process, at the L5-S1 facet joint.

    Reference: the L5 inferior articular process tip from the L5 label
    (:func:`l5_iap_tips_frame_mm`). Tolerances: the entry within 10 mm laterally of the tip
    (the paper's entry is at the lateral-inferior facet, i.e. at the joint; 10 mm = about
    3 voxels of this 3 mm scan), within 12 mm of it in 3D, and posterior to the pedicle
    landmark. Before the fix the entry lay on the lateral sacral mass by the SI joint,
    18-19 mm lateral of the tip with the total_v1 sacrum label (x = -42 / +42 mm RAS).
    Measured: vertebrae -0.2 / 1.4 mm lateral (5.1 / 2.3 mm in 3D; 3.1 / 2.5 mm lateral before
    the facet was read on the S1 label's surface, 2026-12-04), total_v1 -0.6 / -1.4 mm.
    """
    an = real if seg == "vertebrae.nii.gz" else run_anatomy(
        real_ct_dir / "ct.nii.gz", seg_paths=[real_ct_dir / seg])
    f = an.frame
    tips = l5_iap_tips_frame_mm(real_ct_dir / seg, l5_code, f)
    for side, s in (("left", -1.0), ("right", 1.0)):
        e = f.to_frame_mm(an.landmarks[f"{side}.entry"].xyz_ras_mm)
        c = f.to_frame_mm(an.landmarks[f"{side}.sap_facet"].xyz_ras_mm)
        ped = f.to_frame_mm(an.landmarks[f"{side}.pedicle"].xyz_ras_mm)
        tip = tips[side]
        assert abs(s * e[0] - s * tip[0]) <= 10.0, (side, e, tip)
        assert np.linalg.norm(e - tip) <= 12.0, (side, e, tip)
        assert abs(s * c[0] - s * tip[0]) <= 10.0, (side, c, tip)
        assert e[1] < ped[1], (side, e, ped)
        assert "L5 inferior articular process" in an.landmarks[f"{side}.sap_facet"].method


def test_entry_on_the_s1_facet_without_an_l5_label(real_ct_dir: Path, tmp_path: Path) -> None:
    """Without L5 in the labels the pedicle limit alone keeps the facet off the lateral mass.

    Input: total_v1.nii.gz reduced to its sacrum and hip labels (92, 90, 91), so no L5 label
    reaches the anatomy stage; reference and tolerance as in
    ``test_entry_on_the_s1_facet_next_to_the_l5_iap`` (L5 tip from the full v1 file).
    Measured: entry 0.6 / 1.4 mm medial of the tip, as with L5.
    """
    import nibabel as nib

    src = nib.load(str(real_ct_dir / "total_v1.nii.gz"))
    lab = np.rint(np.asarray(src.dataobj)).astype(np.int16)
    lab[~np.isin(lab, [90, 91, 92])] = 0
    seg = tmp_path / "sacrum_hips_v1.nii.gz"
    nib.save(nib.Nifti1Image(lab, src.affine), str(seg))
    an = run_anatomy(real_ct_dir / "ct.nii.gz", seg_paths=[seg])
    f = an.frame
    tips = l5_iap_tips_frame_mm(real_ct_dir / "total_v1.nii.gz", 18, f)
    for side, s in (("left", -1.0), ("right", 1.0)):
        e = f.to_frame_mm(an.landmarks[f"{side}.entry"].xyz_ras_mm)
        ped = f.to_frame_mm(an.landmarks[f"{side}.pedicle"].xyz_ras_mm)
        assert abs(s * e[0] - s * tips[side][0]) <= 10.0, (side, e, tips[side])
        assert e[1] < ped[1], (side, e, ped)
        assert "largest patch" in an.landmarks[f"{side}.sap_facet"].method


def test_s1_label_only_agrees_with_the_whole_sacrum_label(real, real_ct_dir: Path) -> None:
    """With S1 labelled but not the ala, the CT-completed sacrum matches the v1 sacrum run.

    Reference: the same pipeline given total_v1's whole-sacrum label (another model version,
    used as drawn). Tolerances at 3 mm voxels: Dice >= 0.70 (v1's label is drawn generously,
    209 ml); frame origin within 3 mm and cranial axis within 3 deg; pedicles and entries
    within 8 mm (under three voxels); S1 dorsal foramina within 15 mm (a pit in the dorsal
    surface, poorly defined at 3 mm: the two label runs differ by 7-13 mm). Before the coarse
    alar marrow was completed by enclosure (fill_coarse_sacrum): Dice 0.645, frame origin
    1.2 mm / 2 deg, pedicles 9 mm off.
    """
    ref = run_anatomy(real_ct_dir / "ct.nii.gz", seg_paths=[real_ct_dir / "total_v1.nii.gz"])
    a, b = real.sacrum.array, ref.sacrum.array
    assert 2.0 * (a & b).sum() / (a.sum() + b.sum()) >= 0.70
    assert np.linalg.norm(real.frame.origin_ras_mm - ref.frame.origin_ras_mm) <= 3.0
    cos = float(np.clip(real.frame.cranial_ras @ ref.frame.cranial_ras, -1.0, 1.0))
    assert np.degrees(np.arccos(cos)) <= 3.0
    tol_mm = {"pedicle": 8.0, "entry": 8.0, "s1_foramen": 15.0}
    for side in ("left", "right"):
        for kind, tol in tol_mm.items():
            name = f"{side}.{kind}"
            d = np.linalg.norm(real.landmarks[name].xyz_ras_mm - ref.landmarks[name].xyz_ras_mm)
            assert d <= tol, (name, d)


def test_s1_label_run_keeps_the_alae_up_to_the_sacroiliac_joints(real, real_ct_dir: Path
                                                                  ) -> None:
    """Each ala of the S1-label run's mask holds most of v1's ala, and none of v1's hips.

    Reference: total_v1's sacrum (92) and hip (90/91) labels, the alae taken as the sacrum
    voxels more than 25 mm from the label's median x. Measured 2026-12-04: 57 % (left, low x)
    and 51 % (right) of v1's alae, Dice 0.769, no hip voxel and 1456 voxels outside v1's
    sacrum, since the coarse watershed's sacrum-ilium boundary is re-decided on the CT's
    joint-space depth for bone (``fill.redecide_joint``) and a lateral alar hole open through
    a shell leak is filled; 49 % / 48 %, Dice 0.751 and 1469 outside before (the watershed
    gave the sacral cortex at the joint to the ilia). Tolerances: 50 % per side, Dice 0.76,
    zero hip voxels, no more voxels outside v1's sacrum than before.
    """
    v1 = load_nifti(real_ct_dir / "total_v1.nii.gz", is_label=True).array
    ref, hips = v1 == 92, (v1 == 90) | (v1 == 91)
    m = real.sacrum.array
    aff = real.sacrum.affine
    x_mm = aff[0, 0] * np.arange(m.shape[0]) + aff[0, 3]  # RAS grid
    mid = float(np.median(x_mm[np.nonzero(ref)[0]]))
    for side in (x_mm - mid < -25.0, x_mm - mid > 25.0):
        ala = ref & side[:, None, None]
        assert (ala & m).sum() / ala.sum() >= 0.50
    assert 2.0 * (m & ref).sum() / (m.sum() + ref.sum()) >= 0.76
    assert not (m & hips).any()
    assert (m & ~ref).sum() <= 1469

"""Anatomy stage against the analytic phantom (alarscrew.phantom): known frame, landmarks, loss.

Provenance of the references: ``make_phantom(...).truth`` (exact analytic landmarks and frame in
world RAS, body loss by quadrature of a ball clipped to the elliptic-cylinder S1 body; the facet
and entry by area quadrature of the exact posteromedially facing facet surface, ala_lateral by
bisection of the lateral ray through the pedicle centre). The CT is segmented without labels
unless a test says otherwise.

Tolerances (stated per quantity):
- frame axes within 2 deg, origin within 2 mm (issue 3 "done when");
- every landmark within 2 mm in 3D (issue 3 "done when") on all five cases, 1-2 mm voxels.
  Measured maxima (this code, 2026-11-23): 1.8 mm (asym-0.2_1.5mm right.ala_lateral, which
  carries the frame's error at the pedicle level and the segmented surface's outward half
  voxel); sap_facet 1.7 mm and entry 1.6 mm (2 mm voxels with 40 HU noise, where the 2 mm
  facet joint space is one voxel wide).
- beyond the five cases (measured 2026-11-23, sap_facet): 1 mm voxels with tilt +10, tilt
  -10 / asymmetry +0.2, 40 HU noise: <= 0.9 mm; 1.5 mm: <= 1.6 mm, but 3.1 mm (right) at
  tilt -10; 2 mm with 20 HU noise: 2.1-2.7 mm neutral, 5.2-7.6 mm at tilt +15 (entry not
  found or 5+ mm), 5.2-5.7 mm at tilt -15 (entry 5.4-5.6 mm), 9.0-9.3 mm at tilt +20,
  2.7-3.4 mm at tilt -20. With the CT refinement's wide marrow search (2026-11-24, 2 mm):
  tilt +20 8.5 / 8.5 -> 1.7 / 2.5 mm, tilt +10 right 7.8 -> 4.9 mm (normal error 0.0-0.2 mm;
  the rest is along the surface, tests/anatomy/test_facet_ct.py); tilt -10 right (7.8 mm),
  tilt +15 left (7.2 mm) and asymmetry -0.3 right (7.6 mm) unchanged: there the mask patch
  is off along the surface (too caudal or cranial), which profiles along the normal cannot
  correct.
- why 2 mm voxels fail (measured 2026-11-23, noise-free phantom): the voxels between the
  S1 facet and the L5 inferior articular process (label 0 touching both bones) read only
  90-110 HU below the facet cortex next to them at 2 mm (about 360 HU at 1 mm, 235 HU at
  1.5 mm): a voxel's extent along the 45-degree facet normal (2.8-3.4 mm) exceeds the 2 mm
  joint space, so no voxel is mostly joint (tests/test_phantom.py checks this contrast). The
  marrow of the 6 mm thick process (about 260 HU) reads darker than the joint (290-310 HU),
  so the joint-space depth of refine.seam_depth_hu is larger inside the process than in the
  joint, and the CT-only mask keeps part of the process. The detector itself is not
  the limit: on the voxelised sacrum label at 2 mm, tilt +-15, sap_facet is within 0.7 mm and
  the entry within 1.0 mm (test below).
- CT refinement (alarscrew.anatomy.facet, measured 2026-11-23, 2 mm, 20 HU noise): where the
  CT profiles show the joint, the facet is moved onto the S1 articular surface along its
  normal (normal error 2.3 / 1.2 mm -> 0.0 mm neutral, 4.2 / 3.7 -> 0.0-0.1 mm tilt -15,
  right 2.7 -> 0.0 mm tilt +15). What remains is the mask patch's extent along the surface:
  neutral 3.0 / 2.3 -> 2.0 / 1.9 mm, tilt -15 4.8 / 4.0 -> 2.2 / 1.5 mm, tilt +15 7.2 / 5.0 ->
  7.2 (no clear joint at a patch 7 mm too cranial) / 4.3 mm. A deeper marrow search
  (commit 2203284) and a watershed weighted by joint-space depth with the lumbar marker
  measured along the disc normal (commit f5d82a3) fixed 1.5 mm (tilt -10 / -20 facet 3.0 /
  2.0 -> 0.3 / 0.5 mm, entries 3.3 -> 0.8 / 0.9 mm) and 2 mm tilt +20, but 2 mm stays
  arbitrary (tilt -10 facet 8.6 / entry 12.5 mm, asymmetry -0.3 11.6 / 8.5 mm): CT-only the
  pipeline withholds a side's facet and entry unless the CT shows the joint space at both
  (``alarscrew.anatomy.facet.refine_facets_judged``: none of the 2-3 mm sides do, all 1.5 mm
  sides do); with a label they are kept (test below).
- body loss at the pedicle level and by volume within 5 percentage points (issue 3; the body
  model is corrected for the segmented surface's half-voxel bias at every boundary, measured
  errors 0.2-1.6 points, tests/anatomy/test_bodyloss.py).
"""

from __future__ import annotations

import numpy as np
import pytest

from alarscrew.anatomy import analyze_anatomy
from alarscrew.errors import AnatomyNotFoundError
from alarscrew.phantom import make_phantom
from alarscrew.spatial.frame import S1Frame
from tests.anatomy.phantom_solve import angle_deg, solve_phantom

CASES = {
    "neutral_1mm": {},
    "tilt+20": {"pelvic_tilt_deg": 20.0},
    "tilt-20_asym+0.3": {"pelvic_tilt_deg": -20.0, "asymmetry": 0.3},
    "asym-0.2_1.5mm": {"asymmetry": -0.2, "voxel_mm": 1.5},
    "noise40_2mm": {"voxel_mm": 2.0, "noise_hu": 40.0},
}


def _solve(case: str) -> tuple:
    return solve_phantom(CASES[case])


@pytest.fixture(params=list(CASES), ids=list(CASES))
def solved(request: pytest.FixtureRequest) -> tuple:
    return _solve(request.param)


def test_frame_matches_truth(solved) -> None:
    ph, an = solved
    truth = S1Frame.from_dict(ph.truth["frame"])
    for axis in ("cranial_ras", "anterior_ras", "right_ras"):
        assert angle_deg(getattr(an.frame, axis), getattr(truth, axis)) <= 2.0, axis
    assert np.linalg.norm(an.frame.origin_ras_mm - truth.origin_ras_mm) <= 2.0


def _errors(ph, an) -> dict[str, float]:
    errors = {}
    withheld = an.provenance["landmarks_withheld"]
    for name, xyz in ph.truth["landmarks"].items():
        if name in withheld:  # CT-only at >= 2 mm voxels: facets and entries (test below)
            continue
        assert name in an.landmarks, f"{name} not found"
        lm = an.landmarks[name]
        assert not lm.supplied
        assert 0.0 < lm.confidence <= 1.0
        assert lm.method
        errors[name] = float(np.linalg.norm(lm.xyz_ras_mm - np.asarray(xyz)))
    return errors


#: Issue 3 "done when": landmarks within 2 mm of the truth.
LANDMARK_TOL_MM = 2.0


@pytest.mark.parametrize("case", list(CASES))
def test_landmarks_match_truth(case: str) -> None:
    ph, an = _solve(case)
    errors = _errors(ph, an)
    for name, err in errors.items():
        assert err <= LANDMARK_TOL_MM, (name, err)


@pytest.mark.parametrize("params", [{"pelvic_tilt_deg": 15.0}, {"pelvic_tilt_deg": -15.0},
                                    {"noise_hu": 40.0}])
def test_facets_withheld_ct_only_at_2mm_voxels(params: dict) -> None:
    """CT-only at 2 mm the facet and entry are withheld with the reason, never guessed: the
    2 mm joint is no wider than a voxel and the S1-L5 split is arbitrary there (module
    docstring: 2-12 mm facet/entry errors with tilt or asymmetry, before and after the
    joint-space watershed of alarscrew.anatomy.sacrum)."""
    ph = make_phantom(voxel_mm=2.0, **params)
    an = analyze_anatomy(ph.ct)
    for side in ("left", "right"):
        for kind in ("sap_facet", "entry"):
            assert f"{side}.{kind}" not in an.landmarks
            assert "not resolved" in an.provenance["landmarks_withheld"][f"{side}.{kind}"]


def test_2mm_noisy_tilted_asymmetric_endplate_is_flat() -> None:
    """2 mm, 40 HU noise, tilt -15, asymmetry 0.2, CT-only: the split follows the distance map
    (alarscrew.anatomy.sacrum, ``joint_resolved=False`` from 2 mm CT voxels). With the
    joint-space watershed at 2 mm the S1 region took L5 bone, its endplate fit 3.1 mm rms, and
    the intact phantom was refused as destroyed; now 0.45 mm and the frame within 2 deg."""
    ph = make_phantom(voxel_mm=2.0, noise_hu=40.0, pelvic_tilt_deg=-15.0, asymmetry=0.2)
    an = analyze_anatomy(ph.ct)
    assert an.provenance["endplate_fit"]["rms_mm"] <= 1.0
    truth = S1Frame.from_dict(ph.truth["frame"])
    assert angle_deg(an.frame.cranial_ras, truth.cranial_ras) <= 2.0


@pytest.mark.parametrize("tilt_deg", [15.0, -15.0])
def test_facet_and_entry_at_2mm_voxels_on_the_voxelised_sacrum(tilt_deg: float) -> None:
    """The facet detector is not what fails at 2 mm: given the voxelised sacrum label (and the
    L5 label to pick the patch meeting L5), facet and entry are within the issue's 2 mm.

    Reference: ``truth`` (area quadrature of the analytic facet surface). Measured
    2026-11-23: sap_facet 0.7 mm, entry 1.0 mm (tilt +15) and 0.6 mm (tilt -15).
    """
    ph = make_phantom(voxel_mm=2.0, pelvic_tilt_deg=tilt_deg)
    lab = ph.labels
    labels = {"sacrum": lab.with_array(np.isin(lab.array, (25, 26)), is_label=True),
              "l5": lab.with_array(lab.array == 27, is_label=True)}
    errors = _errors(ph, analyze_anatomy(ph.ct, labels=labels))
    for side in ("left", "right"):
        for name in ("sap_facet", "entry"):
            assert errors[f"{side}.{name}"] <= LANDMARK_TOL_MM, (side, name, errors)


def test_sacrum_mask_matches_phantom_labels(solved) -> None:
    ph, an = solved
    ref = np.isin(ph.labels.array, (25, 26))
    m = an.sacrum.array
    dice = 2.0 * (m & ref).sum() / (m.sum() + ref.sum())
    assert dice >= 0.9
    assert an.body_loss is not None
    assert an.body_loss.pedicle_level_percent is not None
    # an intact body: the CT estimate finds (almost) no loss and no indication
    assert an.body_loss.pedicle_level_percent <= 5.0
    assert an.body_loss.indication_met is False


@pytest.mark.parametrize("percent", [30.0, 70.0])
def test_body_loss_with_lesion_mask(percent: float) -> None:
    ph = make_phantom(body_destruction_percent=percent)
    lab = ph.labels
    labels = {"s1": lab.with_array(lab.array == 26, is_label=True),
              "l5": lab.with_array(lab.array == 27, is_label=True),
              "lesion": ph.lesion}
    an = analyze_anatomy(ph.ct, labels=labels)
    truth = ph.truth["body_loss"]
    assert an.body_loss.pedicle_level_percent == pytest.approx(
        truth["pedicle_level_percent"], abs=5.0)
    assert an.body_loss.volume_percent == pytest.approx(truth["volume_percent"], abs=5.0)
    assert an.body_loss.indication_met is (percent > 50.0)
    assert an.body_loss.method.startswith("supplied lesion mask")
    frame = S1Frame.from_dict(ph.truth["frame"])
    assert angle_deg(an.frame.cranial_ras, frame.cranial_ras) <= 2.0


def test_body_loss_estimated_from_ct() -> None:
    """Without a lesion mask the loss is estimated from HU (30 % destruction, 1.5 mm)."""
    ph = make_phantom(body_destruction_percent=30.0, voxel_mm=1.5)
    lab = ph.labels
    an = analyze_anatomy(ph.ct, labels={"s1": lab.with_array(lab.array == 26, is_label=True),
                                        "l5": lab.with_array(lab.array == 27, is_label=True)})
    assert an.body_loss.method.startswith("estimated from CT")
    assert an.body_loss.pedicle_level_percent == pytest.approx(
        ph.truth["body_loss"]["pedicle_level_percent"], abs=5.0)


def test_supplied_landmarks_override_and_move_origin() -> None:
    ph = make_phantom(voxel_mm=2.0)
    moved = np.asarray(ph.truth["landmarks"]["endplate_center"]) + np.array([0.0, 1.0, 0.0])
    entry = np.asarray(ph.truth["landmarks"]["left.entry"])
    an = analyze_anatomy(ph.ct, landmarks={"endplate_center": moved, "left.entry": entry})
    assert an.landmarks["left.entry"].supplied is True
    np.testing.assert_allclose(an.landmarks["left.entry"].xyz_ras_mm, entry)
    np.testing.assert_allclose(an.frame.origin_ras_mm, moved)
    assert "left.entry" in an.provenance["landmarks_supplied"]
    # CT-only at 2 mm the other entry is withheld (the joint is not resolved), not guessed
    assert "right.entry" in an.provenance["landmarks_withheld"]
    assert "left.entry" not in an.provenance["landmarks_withheld"]


def test_rigid_flip_of_axes_changes_nothing() -> None:
    """Flipping and permuting the voxel axes (same world geometry) gives the same frame."""
    ph = make_phantom(voxel_mm=2.0, noise_hu=0.0)
    a = analyze_anatomy(ph.ct)
    arr = np.transpose(ph.ct.array[::-1, :, ::-1], (2, 0, 1))
    aff = ph.ct.affine.copy()
    n = np.asarray(ph.ct.shape)
    flip = np.eye(4)
    flip[0, 0], flip[0, 3] = -1.0, n[0] - 1
    flip[2, 2], flip[2, 3] = -1.0, n[2] - 1
    perm = np.zeros((4, 4))
    perm[3, 3] = 1.0
    perm[2, 0] = perm[0, 1] = perm[1, 2] = 1.0  # new (k', i', j') -> old (i, j, k)
    new_aff = aff @ flip @ perm
    b = analyze_anatomy(ph.ct.__class__(arr, new_aff, source="flipped"))
    assert np.linalg.norm(a.frame.origin_ras_mm - b.frame.origin_ras_mm) <= 0.5
    assert angle_deg(a.frame.cranial_ras, b.frame.cranial_ras) <= 0.5


def test_no_sacrum_is_a_clear_error() -> None:
    """A CT without bone between two ilia (soft tissue only) says why it failed."""
    ph = make_phantom(voxel_mm=3.0, noise_hu=0.0)
    soft = ph.ct.with_array(np.full(ph.ct.shape, 40, dtype=np.int16))
    with pytest.raises(AnatomyNotFoundError, match=r"bone|sacrum"):
        analyze_anatomy(soft)


def test_destroyed_body_without_labels_is_refused() -> None:
    """With 70 % of the S1 body destroyed the thickest midline bone is L5: the automatic seed
    would build the frame on the wrong vertebra, so analysis refuses and asks for a label."""
    ph = make_phantom(body_destruction_percent=70.0, voxel_mm=2.0)
    with pytest.raises(AnatomyNotFoundError, match=r"supply an S1 or sacrum label"):
        analyze_anatomy(ph.ct)


@pytest.mark.parametrize("tilt_deg", [0.0, -15.0])
def test_s1_and_l5_labels_at_3mm_voxels(tilt_deg: float) -> None:
    """S1 and L5 labels without a sacrum label (TotalSegmentator's ``vertebrae`` output) at
    3 mm: the frame and the landmarks off the facet hold (the facet and entry, found on the S1
    label's surface: tests/anatomy/test_facet_labels.py).

    Reference: ``truth``. Before 2026-12-04 the endplate was fitted on the S1 label united with
    the CT mask, whose coarse enclosure fill closes the spinal canal: the top face ran 71.5 mm
    onto the laminae and the frame was 7.5-9 deg off (landmarks up to 37 mm), or the anatomy
    was refused as "not flat" (tilt -15). Measured now: axes 0.03-0.54 deg, origin 0.6 / 1.0 mm;
    canal, pedicles, ala_lateral, foramina <= 1.5 mm; promontory 1.7 / 2.7 mm and ala_anterior
    1.2-2.2 mm (tolerance 3 mm).
    """
    ph = make_phantom(voxel_mm=3.0, pelvic_tilt_deg=tilt_deg)
    lab = ph.labels
    an = analyze_anatomy(ph.ct, labels={"s1": lab.with_array(lab.array == 26, is_label=True),
                                        "l5": lab.with_array(lab.array == 27, is_label=True)})
    truth = S1Frame.from_dict(ph.truth["frame"])
    for axis in ("cranial_ras", "anterior_ras", "right_ras"):
        assert angle_deg(getattr(an.frame, axis), getattr(truth, axis)) <= 2.0
    assert np.linalg.norm(an.frame.origin_ras_mm - truth.origin_ras_mm) <= 2.0
    assert "S1 label alone" in an.provenance["endplate_fit"]["fitted_on"]
    assert an.provenance["landmarks_withheld"] == {}
    for name, err in _errors(ph, an).items():
        if name.endswith((".sap_facet", ".entry")):
            continue
        tol = 3.0 if name == "promontory" or name.endswith(".ala_anterior") else 2.0
        assert err <= tol, (name, err)


def test_an_l5_label_alone_does_not_place_the_facets_on_coarse_voxels() -> None:
    """With only the L5 label at 3 mm the facet comes from the CT mask's split at a joint the
    voxels do not resolve (measured 2026-12-04, 2.5-3 mm, tilt 0 / +-15: facets 0.8-10.6 mm
    off, three of six sides without an entry): withheld with the reason, as CT-only."""
    ph = make_phantom(voxel_mm=3.0)
    lab = ph.labels
    an = analyze_anatomy(ph.ct, labels={"l5": lab.with_array(lab.array == 27, is_label=True)})
    withheld = an.provenance["landmarks_withheld"]
    for side in ("left", "right"):
        for kind in ("sap_facet", "entry"):
            assert f"{side}.{kind}" not in an.landmarks
            assert withheld[f"{side}.{kind}"].startswith("with only a lumbar label the S1 facet "
                                                         "is not resolved: at 3.0 mm CT voxels")
            assert "an S1 or sacrum label (--seg)" in withheld[f"{side}.{kind}"]


def test_an_endplate_deeper_than_any_s1_endplate_is_refused() -> None:
    """The fitted top face's depth is checked like its flatness (pipeline._check_endplate)."""
    from alarscrew.anatomy.pipeline import MAX_ENDPLATE_DEPTH_MM, _check_endplate
    from alarscrew.io.image import Image

    ct = Image(np.zeros((2, 2, 2)), np.eye(4), source="scan.nii.gz")
    _check_endplate({"rms_mm": 0.5, "depth_mm": MAX_ENDPLATE_DEPTH_MM - 1.0}, ct)
    with pytest.raises(AnatomyNotFoundError, match=r"scan.nii.gz: .* 72 mm deep"):
        _check_endplate({"rms_mm": 0.5, "depth_mm": 71.5}, ct)

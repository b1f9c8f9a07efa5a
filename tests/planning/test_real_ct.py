"""Planning on the real CT of ../shared/data/ct/totalseg-example (3 mm, TotalSegmentator v1
labels: 92 sacrum, 90/91 hips, 51-54 iliac arteries and veins).

Frame and entries come from tests/planning/simple_anatomy.py. Published ranges checked (the
reference paper, CT-planned): Fang et al., BMC Musculoskeletal Disorders 2022, Methods: S1
alar screws 7.0-7.5 mm x 35-45 mm, about 40 mm deep, directed 30 deg lateral and 45 deg
inferior; its Discussion cites alternative trajectories of 30 deg lateral / 30 deg distal and
45 deg lateral. Accepted here: recommended length 35-55 mm (the optimiser seeks the longest
safe screw, up to the 55 mm catalog maximum), diameter 6.5-8.0 mm, transverse angle 25-55 deg,
sagittal angle 15-50 deg (S1 frame). The same ranges, with the CT-morphometry sources behind
them (Xu et al., World Neurosurg 2019;126:e1542, sacral alar trajectories on 3D CT: transverse
29.8 +- 4.1 / 33.7 +- 6.0 deg, length 43.4 +- 4.0 / 40.8 +- 4.3 mm; the sacral-ala CT model of
PubMed 10630800), are listed in tests/planning/test_pipeline_real.py.
"""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from alarscrew.io.image import Image
from alarscrew.planning.context import build_context
from alarscrew.planning.plan import make_plan
from tests.planning.simple_anatomy import frame_and_landmarks


@pytest.fixture(scope="module")
def real_plan(real_ct_dir):
    ctn = nib.load(str(real_ct_dir / "ct.nii.gz"))
    lab = np.rint(np.asarray(nib.load(str(real_ct_dir / "total_v1.nii.gz")).dataobj)).astype(int)
    ct = Image(np.asarray(ctn.dataobj, float), ctn.affine, source="totalseg-example")
    frame, lms = frame_and_landmarks(lab == 92, ctn.affine)
    m = {"sacrum": lab == 92, "ilium_left": lab == 90, "ilium_right": lab == 91,
         "iliac_vessels": np.isin(lab, [51, 52, 53, 54])}
    ctx = build_context(ct, {k: ct.with_array(v, is_label=True) for k, v in m.items()},
                        frame, lms)
    return make_plan(ctx), lab, ctn.affine


@pytest.mark.parametrize("side", ["left", "right"])
def test_real_ct_safe_plan_within_published_ranges(real_plan, side):
    plan, lab, affine = real_plan
    s = plan["sides"][side]
    assert s["status"] == "safe", s["reason"]
    opt = s["optimal"]
    rec = opt["recommended_screw"]
    assert 35.0 <= rec["length_mm"] <= 55.0
    assert 6.5 <= rec["diameter_mm"] <= 8.0
    assert 25.0 <= opt["transverse_angle_deg"] <= 55.0
    assert 15.0 <= opt["sagittal_angle_deg"] <= 50.0
    assert opt["gertzbein_robbins_grade"] == "A"
    assert opt["contained"]
    assert opt["vessel_distance_source"] == "label"
    assert opt["min_vessel_distance_mm"] > 0
    # the nominal 30/45 technique is evaluated on the same scan
    nom = s["nominal"]
    assert nom["transverse_angle_deg"] == pytest.approx(30.0, abs=1e-6)
    assert nom["sagittal_angle_deg"] == pytest.approx(45.0, abs=1e-6)
    assert nom["axis_in_bone_mm"] > 0
    # independent: the recommended screw's axis samples lie in the sacrum label (nearest voxel,
    # from 2 mm deep; 3 mm voxels)
    e, d = np.array(opt["entry_ras_mm"]), np.array(opt["direction_ras"])
    pts = e + np.arange(2.0, rec["length_mm"], 0.5)[:, None] * d
    inv = np.linalg.inv(affine)
    ijk = np.rint(pts @ inv[:3, :3].T + inv[:3, 3]).astype(int)
    assert np.all(lab[tuple(ijk.T)] == 92)


def test_real_ct_map_window_and_decision(real_plan):
    plan, _, _ = real_plan
    for side in ("left", "right"):
        s = plan["sides"][side]
        m = s["safe_length_map"]
        assert len(m["length_mm"]) == len(m["sagittal_deg"])
        assert all(len(row) == len(m["transverse_deg"]) for row in m["length_mm"])
        best = max(v for row in m["length_mm"] for v in row if v is not None)
        assert best <= s["optimal"]["search"]["design_safe_length_mm"] + 0.5 + 1e-6 or \
            s["optimal"]["diameter_mm"] < 7.0
        assert s["safe_window_deg"]["required_length_mm"] == s["optimal"]["recommended_screw"][
            "length_mm"]
    assert plan["decision"]["verdict"] == "undetermined"  # no body loss, levels or HU given
    assert plan["timing_s"] is None

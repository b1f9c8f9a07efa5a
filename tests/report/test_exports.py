"""Exports of a plan: Slicer markups, STL/OBJ screw meshes, screw label map (issue 5).

References are independent of the exporter: screw end points recomputed from plan.json
(entry + length * direction, length from recommended_screw), the Slicer markups facts shipped in
alarscrew/data/slicer (cited in its SOURCE.md), and the analytic volume of a regular-prism
cylinder, (n / 2) r^2 sin(2 pi / n) L.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import jsonschema
import nibabel as nib
import numpy as np
import pytest
import trimesh

from alarscrew.errors import InputError, OutputExistsError
from alarscrew.io.image import Image
from alarscrew.report.exports import (
    MESH_SECTIONS,
    RAS_TO_LPS,
    SCREW_LABEL_CODES,
    markups_line,
    markups_schema_facts,
    screw_label_map,
    write_exports,
)
from alarscrew.report.plan_data import ScrewGeometry
from tests.report.test_plan_fixture import (  # noqa: F401
    build_planner_plan_dir,
    copy_plan_dir,
    real_plan_dir,
)

SCREWS = ("left_nominal", "left_optimal", "right_nominal", "right_optimal")


@pytest.fixture(scope="module")
def exported(real_plan_dir: Path, tmp_path_factory: pytest.TempPathFactory  # noqa: F811
             ) -> Path:
    d = copy_plan_dir(real_plan_dir, tmp_path_factory.mktemp("exp") / "plan")
    write_exports(d)
    return d


def _expected_axis(plan: dict, name: str) -> tuple[np.ndarray, np.ndarray, float, float]:
    side, kind = name.split("_")
    s = plan["sides"][side][kind]
    rec = s["recommended_screw"]
    # documented rule: recommended implant, else the evaluated screw, else the safe length
    length = rec["length_mm"] if rec else (s.get("screw_length_mm") or s["length_mm"])
    diameter = rec["diameter_mm"] if rec else s["diameter_mm"]
    entry = np.asarray(s["entry_ras_mm"])
    tip = entry + length * np.asarray(s["direction_ras"])
    return entry, tip, length, diameter


def _axis_from_mesh(mesh: trimesh.Trimesh) -> tuple[np.ndarray, np.ndarray]:
    """Cap centres of a cylinder mesh: principal axis by SVD, rim vertices at both extremes."""
    v = np.asarray(mesh.vertices)
    c = v.mean(axis=0)
    axis = np.linalg.svd(v - c)[2][0]
    t = (v - c) @ axis
    lo = v[t < t.min() + 1e-3].mean(axis=0)  # STL stores float32: ~1e-5 mm jitter
    hi = v[t > t.max() - 1e-3].mean(axis=0)
    return lo, hi


@pytest.mark.parametrize("ext", ["stl", "obj"])
def test_mesh_axis_and_length_match_plan(exported: Path, ext: str) -> None:
    """Read back with trimesh: end-cap centres = entry and tip of plan.json within 0.1 mm."""
    plan = json.loads((exported / "plan.json").read_text())
    for name in SCREWS:
        entry, tip, length, diameter = _expected_axis(plan, name)
        mesh = trimesh.load(exported / "exports" / f"{name}.{ext}", force="mesh")
        assert mesh.is_watertight, name
        a, b = _axis_from_mesh(mesh)
        if np.linalg.norm(a - entry) > np.linalg.norm(b - entry):
            a, b = b, a
        assert np.linalg.norm(a - entry) < 0.1, name
        assert np.linalg.norm(b - tip) < 0.1, name
        assert abs(np.linalg.norm(b - a) - length) < 0.1, name
        # analytic volume of a regular n-gon prism of circumradius r
        r = diameter / 2
        vol = MESH_SECTIONS / 2 * r**2 * math.sin(2 * math.pi / MESH_SECTIONS) * length
        assert mesh.volume == pytest.approx(vol, rel=1e-4), name


def test_mesh_files_declare_ras_for_slicer(exported: Path) -> None:
    """3D Slicer reads 'SPACE=RAS' from the STL header / OBJ comment (data/slicer/SOURCE.md);
    without it the RAS meshes would load mirrored in x and y."""
    for name in SCREWS:
        stl = (exported / "exports" / f"{name}.stl").read_bytes()
        assert b"SPACE=RAS" in stl[:80]
        assert not stl.startswith(b"solid")  # binary STL, not mistaken for ASCII
        n_tri = int.from_bytes(stl[80:84], "little")
        assert len(stl) == 84 + 50 * n_tri
        obj = (exported / "exports" / f"{name}.obj").read_text().splitlines()
        assert obj[0].startswith("#")
        assert "SPACE=RAS" in obj[0]


def test_markups_validate_against_slicer_schema_facts(exported: Path) -> None:
    schema = markups_schema_facts()
    validator = jsonschema.Draft7Validator(schema)
    plan = json.loads((exported / "plan.json").read_text())
    for name in SCREWS:
        doc = json.loads((exported / "exports" / f"{name}.mrk.json").read_text())
        validator.validate(doc)
        m = doc["markups"][0]
        assert m["type"] == "Line"
        assert m["coordinateSystem"] == "LPS"
        entry, tip, length, _ = _expected_axis(plan, name)
        pos = np.array([p["position"] for p in m["controlPoints"]])
        # LPS = (-R, -A, S): hand-applied, not through the exporter's matrix
        assert np.allclose(pos[0], [-entry[0], -entry[1], entry[2]], atol=1e-3)
        assert np.allclose(pos[1], [-tip[0], -tip[1], tip[2]], atol=1e-3)
        assert m["measurements"][0]["value"] == pytest.approx(length, abs=1e-3)


def test_schema_facts_reject_bad_markups() -> None:
    """The validation can fail: wrong coordinate system, 2-D position, unknown type."""
    validator = jsonschema.Draft7Validator(markups_schema_facts())
    s = ScrewGeometry("left_optimal", "left", "optimal", np.zeros(3), np.array([0, 40.0, 0]),
                      np.array([0, 1.0, 0]), 40.0, 7.0, "length_mm")
    good = markups_line(s)
    validator.validate(good)
    for path, bad in ((("coordinateSystem",), "IJK"), (("type",), "Screw")):
        doc = json.loads(json.dumps(good))
        doc["markups"][0][path[0]] = bad
        assert not validator.is_valid(doc)
    doc = json.loads(json.dumps(good))
    doc["markups"][0]["controlPoints"][0]["position"] = [1.0, 2.0]
    assert not validator.is_valid(doc)
    doc = json.loads(json.dumps(good))
    doc["@schema"] = "https://example.org/other-schema.json"
    assert not validator.is_valid(doc)
    assert np.allclose(RAS_TO_LPS @ RAS_TO_LPS, np.eye(3))


def test_label_map_volume_matches_cylinder() -> None:
    """On a 0.5 mm oblique grid, the labelled volume equals pi r^2 L within 3 %."""
    rot = np.array([[0.8, -0.6, 0], [0.6, 0.8, 0], [0, 0, 1.0]])
    aff = np.eye(4)
    aff[:3, :3] = rot * 0.5
    aff[:3, 3] = [-20.0, -10.0, -30.0]
    grid = Image(np.zeros((160, 160, 160), np.uint8), aff, is_label=True)
    d = np.array([0.3, 0.5, 0.81])
    d /= np.linalg.norm(d)
    entry = grid.ijk_to_ras(np.array([40.0, 60.0, 30.0]))
    s = ScrewGeometry("left_optimal", "left", "optimal", entry, entry + 40 * d, d, 40.0, 7.0,
                      "length_mm")
    lab = screw_label_map((s,), grid)
    assert lab.same_grid(grid)
    vol = (lab.array == SCREW_LABEL_CODES["left_optimal"]).sum() * grid.voxel_volume_mm3
    assert vol == pytest.approx(math.pi * 3.5**2 * 40.0, rel=0.03)


def test_label_map_on_ct_grid(exported: Path) -> None:
    lab = nib.load(str(exported / "exports" / "screw_labels.nii.gz"))
    ref = nib.load(str(exported / "sacrum_mask.nii.gz"))
    assert lab.shape == ref.shape
    assert np.allclose(lab.affine, ref.affine)
    codes = set(np.unique(np.asarray(lab.dataobj)).tolist())
    assert {1, 2} <= codes  # both optimal screws are drawn
    manifest = json.loads((exported / "exports" / "exports.json").read_text())
    assert manifest["screw_label_codes"]["left_optimal"] == 1
    assert (exported / "exports" / "plan.json").read_bytes() == \
        (exported / "plan.json").read_bytes()


def test_no_overwrite_without_force(exported: Path) -> None:
    with pytest.raises(OutputExistsError, match="--force"):
        write_exports(exported)
    res = write_exports(exported, force=True)
    assert all(p.exists() for p in res.files)


def test_bad_direction_is_named(real_plan_dir: Path, tmp_path: Path) -> None:  # noqa: F811
    d = copy_plan_dir(real_plan_dir, tmp_path / "plan")
    plan = json.loads((d / "plan.json").read_text())
    plan["sides"]["right"]["optimal"]["direction_ras"] = [0.0, 2.0, 0.0]
    (d / "plan.json").write_text(json.dumps(plan))
    with pytest.raises(InputError, match=r"sides\.right\.optimal\.direction_ras"):
        write_exports(d)
    assert not (d / "exports").exists()


def test_exports_of_a_planner_plan(real_plan_dir: Path, tmp_path: Path) -> None:  # noqa: F811
    """On plan.json written by alarscrew.planning: every screw it plans is exported, and the
    STL end caps match entry and entry + length * direction of plan.json within 0.1 mm."""
    d = build_planner_plan_dir(real_plan_dir, tmp_path / "plan")
    res = write_exports(d)
    plan = json.loads((d / "plan.json").read_text())
    validator = jsonschema.Draft7Validator(markups_schema_facts())
    planned = [f"{side}_{kind}" for side in ("left", "right") for kind in ("nominal", "optimal")
               if plan["sides"][side][kind] is not None]
    assert planned
    for name in planned:
        validator.validate(json.loads((res.folder / f"{name}.mrk.json").read_text()))
        entry, tip, _, _ = _expected_axis(plan, name)
        a, b = _axis_from_mesh(trimesh.load(res.folder / f"{name}.stl", force="mesh"))
        if np.linalg.norm(a - entry) > np.linalg.norm(b - entry):
            a, b = b, a
        assert np.linalg.norm(a - entry) < 0.1, name
        assert np.linalg.norm(b - tip) < 0.1, name

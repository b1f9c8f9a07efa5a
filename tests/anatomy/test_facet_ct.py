"""The S1 facet refined from CT profiles across the L5-S1 joint (alarscrew.anatomy.facet).

Provenance of the references:
- analytic two-plate joint: a CT built here from the signed distance to a plane (the S1
  articular surface, known exactly), 3 x 3 x 3 supersampled per voxel for partial volume:
  S1 bone (200 HU marrow, 1.2 mm cortex of 850 HU) on one side, a 2 mm joint space of
  40 HU, then a 6 mm L5 process (1.2 mm cortices, 200 HU marrow) and soft tissue (40 HU);
  the tissue values of ``alarscrew.phantom.HU``. The S1 surface is the plane itself.
- phantom: ``make_phantom(voxel_mm=2.0).truth`` (facet by area quadrature of the analytic
  facet surface), CT-only ``analyze_anatomy``.

Tolerances: 0.3 mm along the normal at 1 mm voxels (the joint is resolved; half-maximum edge
of a symmetric blur), 0.6 mm at 2 mm voxels (the 2 mm joint is sub-voxel along the oblique
normal, so the half-level edge between the S1 peak and the joint minimum carries part of the
blur; measured 0.0-0.4 mm). Phantom 2 mm neutral: the refined facet within 0.5 mm of the
truth along the facet normal (measured 0.00 / 0.02 mm; the mask-based point was 2.3 / 1.2 mm
inside the process).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from alarscrew.anatomy import analyze_anatomy, pipeline
from alarscrew.anatomy.facet import (
    facet_axes,
    joint_edge,
    refine_facets,
    refine_facets_judged,
    sample_profiles,
)
from alarscrew.anatomy.model import Landmark
from alarscrew.errors import GeometryError
from alarscrew.phantom import make_phantom
from alarscrew.spatial.frame import S1Frame

#: A point of the S1 articular surface (frame mm = world mm: identity frame).
FACE_MM = np.array([20.0, -30.0, 0.0])
FRAME = S1Frame(np.zeros(3), np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0]),
                np.array([0.0, 0.0, 1.0]))


def _tissue_hu(d_mm: np.ndarray, *, with_l5: bool, s1_thick_mm: float | None = None
               ) -> np.ndarray:
    """HU at signed distance ``d_mm`` along the outward normal from the S1 surface.

    ``s1_thick_mm``: the S1 process as a plate of that thickness (cortex on both faces, soft
    tissue in front) instead of bone filling the half-space.
    """
    hu = np.full(d_mm.shape, 40.0)
    hu[d_mm < 0.0] = 200.0
    hu[(d_mm >= -1.2) & (d_mm < 0.0)] = 850.0
    if s1_thick_mm is not None:
        hu[(d_mm < -s1_thick_mm + 1.2) & (d_mm >= -s1_thick_mm)] = 850.0
        hu[d_mm < -s1_thick_mm] = 40.0
    if with_l5:
        l5 = (d_mm >= 2.0) & (d_mm < 8.0)
        hu[l5] = 200.0
        hu[l5 & ((d_mm < 3.2) | (d_mm >= 6.8))] = 850.0
    return hu


def _two_plate_ct(voxel_mm: float, *, side: str = "right", with_l5: bool = True,
                  noise_hu: float = 0.0, s1_thick_mm: float | None = None,
                  cube_mm: float = 40.0) -> tuple[np.ndarray, np.ndarray]:
    """A CT (array, affine) of the analytic joint around ``FACE_MM``, a ``cube_mm`` cube."""
    n, _ = facet_axes(side)
    s = 1.0 if side == "right" else -1.0
    face = FACE_MM * np.array([s, 1.0, 1.0])
    size = round(cube_mm / voxel_mm)
    origin = face - 0.5 * cube_mm
    sub = (np.arange(3) - 1.0) / 3.0 * voxel_mm
    ijk = np.indices((size,) * 3).reshape(3, -1).T * voxel_mm + origin
    hu = np.zeros(len(ijk))
    for dx in sub:
        for dy in sub:
            for dz in sub:
                d = (ijk + np.array([dx, dy, dz]) - face) @ n
                hu += _tissue_hu(d, with_l5=with_l5, s1_thick_mm=s1_thick_mm)
    hu = (hu / 27.0).reshape((size,) * 3)
    hu += np.random.default_rng(0).normal(0.0, noise_hu, hu.shape)
    affine = np.diag([voxel_mm, voxel_mm, voxel_mm, 1.0])
    affine[:3, 3] = origin
    return hu, affine


def _landmark(side: str, offset_mm: float) -> Landmark:
    n, _ = facet_axes(side)
    s = 1.0 if side == "right" else -1.0
    return Landmark(f"{side}.sap_facet", FACE_MM * np.array([s, 1.0, 1.0]) + offset_mm * n,
                    0.8, "mask")


@pytest.mark.parametrize(("voxel_mm", "tol_mm"), [(1.0, 0.3), (2.0, 0.6)])
@pytest.mark.parametrize("offset_mm", [-2.5, 0.0, 3.5])
@pytest.mark.parametrize("side", ["left", "right"])
def test_two_plate_joint_edge_is_the_s1_surface(voxel_mm: float, tol_mm: float,
                                               offset_mm: float, side: str) -> None:
    hu, affine = _two_plate_ct(voxel_mm, side=side, noise_hu=20.0)
    lms = {f"{side}.sap_facet": _landmark(side, offset_mm)}
    out = refine_facets(hu, affine, FRAME, lms)
    lm = out[f"{side}.sap_facet"]
    n, _ = facet_axes(side)
    s = 1.0 if side == "right" else -1.0
    along_mm = float((lm.xyz_ras_mm - FACE_MM * np.array([s, 1.0, 1.0])) @ n)
    assert abs(along_mm) <= tol_mm, (along_mm, lm.method)
    assert "moved" in lm.method
    assert lm.confidence == pytest.approx(0.8)
    # the input is not modified
    assert lms[f"{side}.sap_facet"].method == "mask"


@pytest.mark.parametrize(("voxel_mm", "tol_mm", "offset_mm"),
                         [(1.0, 0.3, -6.0), (2.0, 0.6, -6.0), (2.0, 0.6, 8.0)])
def test_joint_found_from_a_mask_point_far_off(voxel_mm: float, tol_mm: float,
                                               offset_mm: float) -> None:
    """The CT-only mask can put the facet inside the S1 process (-6 mm: its 12 mm thick
    marrow) or, at 2 mm where the joint is not resolved, on the far surface of the L5 process
    (+8 mm): the wide search anchors on the S1 marrow, the darkest bone dip, and finds the
    joint outward of it. Same tolerances as the two-plate test above. (At 1 mm the resolved
    joint reads as dark as the marrow and a point +8 mm off is taken to the L5 process's
    inner face; the threshold mask resolves the joint there, so the case does not arise.)"""
    hu, affine = _two_plate_ct(voxel_mm, noise_hu=20.0, s1_thick_mm=12.0, cube_mm=64.0)
    out = refine_facets(hu, affine, FRAME, {"right.sap_facet": _landmark("right", offset_mm)})
    lm = out["right.sap_facet"]
    along_mm = float((lm.xyz_ras_mm - FACE_MM) @ facet_axes("right")[0])
    assert abs(along_mm) <= tol_mm, (along_mm, lm.method)
    assert "the mask point was off the joint" in lm.method


def test_free_surface_is_kept_with_lower_confidence() -> None:
    """No L5 process opposite: no joint, the mask point is kept and flagged."""
    hu, affine = _two_plate_ct(2.0, with_l5=False, noise_hu=20.0)
    lm0 = _landmark("right", 1.0)
    out = refine_facets(hu, affine, FRAME, {"right.sap_facet": lm0})
    lm = out["right.sap_facet"]
    np.testing.assert_allclose(lm.xyz_ras_mm, lm0.xyz_ras_mm)
    assert lm.confidence < lm0.confidence
    assert "no clear L5-S1 joint space" in lm.method


def test_coarse_grid_is_left_alone() -> None:
    """3 mm voxels: the joint is sub-voxel and the first dip outward is the L5 process's
    marrow (edge 3.8 mm off when forced), so the landmarks are returned as given."""
    hu, affine = _two_plate_ct(3.0, noise_hu=20.0)
    lms = {"right.sap_facet": _landmark("right", 0.0)}
    assert refine_facets(hu, affine, FRAME, lms) == lms
    n, t = facet_axes("right")
    s_mm, prof = sample_profiles(hu, affine, FRAME, FACE_MM, n, t)
    edge, _, _ = joint_edge(s_mm, prof, voxel_mm=3.0)
    assert edge is not None
    assert edge > 2.0  # what the guard prevents


def test_bad_input_raises() -> None:
    with pytest.raises(GeometryError, match="3D CT array"):
        refine_facets(np.zeros((4, 4)), np.eye(4), FRAME, {})
    with pytest.raises(GeometryError, match="side"):
        facet_axes("middle")


def _lift_withholding(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run the pipeline at 2 mm as if the facet joint were resolved: the joint-space
    watershed on (``FACET_MIN_UNRESOLVED_MM``) and every side's facet points reported
    whatever the CT verdict of :func:`refine_facets_judged`, so that the refinement itself
    is measured."""
    monkeypatch.setattr(pipeline, "FACET_MIN_UNRESOLVED_MM", float("inf"))
    judged = pipeline.refine_facets_judged
    monkeypatch.setattr(pipeline, "refine_facets_judged",
                        lambda *a, **k: (judged(*a, **k)[0], {}))


def test_phantom_2mm_facet_on_the_joint(monkeypatch: pytest.MonkeyPatch) -> None:
    """CT-only, 2 mm neutral phantom: the facet lies on the S1 articular surface along its
    normal (the remaining error is along the surface: the mask patch's extent). The pipeline
    withholds these CT-only facets at 2 mm (the joint is not measured at the entry:
    ``refine_facets_judged``); the refinement itself is tested here with that lifted."""
    _lift_withholding(monkeypatch)
    ph = make_phantom(voxel_mm=2.0)
    an = analyze_anatomy(ph.ct)
    truth = S1Frame.from_dict(ph.truth["frame"])
    for side in ("left", "right"):
        lm = an.landmarks[f"{side}.sap_facet"]
        assert "moved" in lm.method, lm.method
        d = (truth.to_frame_mm(lm.xyz_ras_mm[None])[0]
             - truth.to_frame_mm(np.asarray(ph.truth["landmarks"][f"{side}.sap_facet"])[None])[0])
        assert abs(float(d @ facet_axes(side)[0])) <= 0.5, (side, d)


def test_phantom_2mm_tilt20_facet_and_entry_on_the_s1_process(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """CT-only, 2 mm, pelvic tilt +20: the working-grid watershed used to give the S1 superior
    articular process the L5 inferior articular process (the mask bridges the 2 mm joint, and
    the distance map alone splits at the narrowest bone), leaving the mask facet on the L5
    process's far surface (8.5 mm in 3D; the wide search brought it to 1.7 / 2.5 mm). With the
    joint-space depth in the watershed elevation (alarscrew.anatomy.sacrum.isolate_sacrum) the
    split follows the joint: measured 2026-11-24 sap_facet 0.97 / 0.58 mm, entry 1.59 / 1.02
    mm (left / right). Bounds: the issue's 2 mm in 3D; 0.5 mm along the facet normal. The
    pipeline's CT-only withholding at 2 mm is lifted (previous test), and with it the switch
    that keeps the joint-space watershed to finer CT voxels (``joint_resolved``)."""
    _lift_withholding(monkeypatch)
    ph = make_phantom(voxel_mm=2.0, pelvic_tilt_deg=20.0)
    an = analyze_anatomy(ph.ct)
    truth = S1Frame.from_dict(ph.truth["frame"])
    for side in ("left", "right"):
        for kind in ("sap_facet", "entry"):
            lm = an.landmarks[f"{side}.{kind}"]
            d = (truth.to_frame_mm(lm.xyz_ras_mm[None])[0]
                 - truth.to_frame_mm(np.asarray(ph.truth["landmarks"][f"{side}.{kind}"])[None])[0])
            if kind == "sap_facet":
                assert abs(float(d @ facet_axes(side)[0])) <= 0.5, (side, d)
            assert np.linalg.norm(d) <= 2.0, (side, kind, d)


def _side_points(side: str, offset_mm: float) -> dict[str, Landmark]:
    """The facet and an entry point 4 mm caudal to it on the analytic S1 surface."""
    lm = _landmark(side, offset_mm)
    entry = Landmark(f"{side}.entry", lm.xyz_ras_mm - np.array([0.0, 0.0, 4.0]), 0.6, "mask")
    return {lm.name: lm, entry.name: entry}


@pytest.mark.parametrize("voxel_mm", [1.0, 2.0])
def test_verdict_resolved_where_the_joint_is_measured(voxel_mm: float) -> None:
    """Two-plate joint (2 mm space), 20 HU noise, mask points 1.5 mm off the joint: the
    joint is measured at both points from the mask point itself, so the side is resolved."""
    hu, affine = _two_plate_ct(voxel_mm, noise_hu=20.0)
    out, unresolved = refine_facets_judged(hu, affine, FRAME, _side_points("right", 1.5))
    assert set(unresolved) == {"left.sap_facet", "left.entry"}  # no points on that side
    assert all("moved" in out[k].method for k in ("right.sap_facet", "right.entry"))


def test_verdict_free_surface_is_not_resolved() -> None:
    """No L5 process opposite: no joint is measured, both points of the side are judged
    unresolved with the reason, and the points are kept (as refine_facets keeps them)."""
    hu, affine = _two_plate_ct(2.0, with_l5=False, noise_hu=20.0)
    lms = _side_points("right", 1.0)
    out, unresolved = refine_facets_judged(hu, affine, FRAME, lms)
    assert {"right.sap_facet", "right.entry"} <= set(unresolved)
    assert "no clear joint space" in unresolved["right.entry"]
    np.testing.assert_allclose(out["right.entry"].xyz_ras_mm, lms["right.entry"].xyz_ras_mm)
    assert out == refine_facets(hu, affine, FRAME, lms)


def test_verdict_off_joint_mask_point_is_not_resolved() -> None:
    """A mask point 8 mm outward (on the far face of the L5 process, as CT-only at 2 mm): the
    wide search moves it onto the joint along the normal, but the side is judged unresolved
    (the mask did not follow the joint, so the point's place across the facet is unverified)."""
    hu, affine = _two_plate_ct(2.0, noise_hu=20.0, s1_thick_mm=12.0, cube_mm=64.0)
    lms = _side_points("right", 8.0)
    out, unresolved = refine_facets_judged(hu, affine, FRAME, lms)
    assert "the mask point is off the joint" in unresolved["right.sap_facet"]
    assert "off the joint" in out["right.sap_facet"].method


def test_verdict_coarse_grid_and_supplied() -> None:
    """3 mm voxels: not resolved, with the reason; a side whose points are both supplied is
    not judged; a side with no detected points is unresolved ('not found on the mask')."""
    hu, affine = _two_plate_ct(3.0, noise_hu=20.0)
    lms = _side_points("right", 0.0)
    out, unresolved = refine_facets_judged(hu, affine, FRAME, lms)
    assert out == lms
    assert "merge into one peak" in unresolved["right.sap_facet"]
    assert "left.entry" in unresolved
    supplied = {k: replace(v, supplied=True) for k, v in lms.items()}
    hu1, affine1 = _two_plate_ct(1.0, noise_hu=20.0)
    _, unresolved1 = refine_facets_judged(hu1, affine1, FRAME, supplied)
    assert "right.sap_facet" not in unresolved1
    assert "not found on the mask" in unresolved1["left.sap_facet"]

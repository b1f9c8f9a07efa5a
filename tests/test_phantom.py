"""Tests of the synthetic lumbosacral phantom (alarscrew.phantom).

References used here are independent of the code under test: landmarks are checked against
the voxelised label map and the rendered HU (not against the analytic solids), body loss is
re-measured by counting voxels and by Monte Carlo sampling, the frame by linear algebra.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from alarscrew.errors import InputError, OutputExistsError
from alarscrew.io.nifti import load_nifti
from alarscrew.phantom import (
    LANDMARK_NAMES,
    LESION_LABEL,
    make_phantom,
    write_phantom,
)
from alarscrew.spatial.frame import S1Frame
from tests.conftest import run_cli

BONE_CODES = (25, 26, 27, 77, 78, LESION_LABEL)
SACRUM_CODES = (25, 26, LESION_LABEL)


@pytest.fixture(scope="module")
def ph1():
    """1 mm phantom, noise-free, 40 % destruction."""
    return make_phantom(voxel_mm=1.0, noise_hu=0.0, body_destruction_percent=40.0)


def label_at(ph, xyz_ras_mm):
    """Label of the voxel nearest to each world point."""
    ijk = np.rint(ph.labels.ras_to_ijk(np.asarray(xyz_ras_mm, float))).astype(int)
    return ph.labels.array[tuple(np.moveaxis(ijk, -1, 0))]


def hu_at(ph, xyz_ras_mm):
    """HU of the voxel nearest to each world point."""
    ijk = np.rint(ph.ct.ras_to_ijk(np.asarray(xyz_ras_mm, float))).astype(int)
    return ph.ct.array[tuple(np.moveaxis(ijk, -1, 0))].astype(float)


def frame_block(ph, lo_mm, hi_mm):
    """Index slices of the grid block covering a frame box, and frame coords (mm) there."""
    lo, hi = np.asarray(lo_mm, float), np.asarray(hi_mm, float)
    corners = np.stack(np.meshgrid(*zip(lo, hi, strict=True), indexing="ij"), -1).reshape(-1, 3)
    ijk = ph.ct.ras_to_ijk(ph.frame.to_world_mm(corners))
    a = np.clip(np.floor(ijk.min(0)).astype(int), 0, ph.ct.shape)
    b = np.clip(np.ceil(ijk.max(0)).astype(int) + 1, 0, ph.ct.shape)
    sl = tuple(slice(int(i), int(j)) for i, j in zip(a, b, strict=True))
    idx = np.stack(np.meshgrid(*(np.arange(x.start, x.stop) for x in sl), indexing="ij"), -1)
    xyz = ph.frame.to_frame_mm(ph.ct.ijk_to_ras(idx.reshape(-1, 3))).reshape(idx.shape)
    return sl, xyz


# ------------------------------------------------------------------------------- frame
def test_frame_orthonormal_and_matches_truth(ph1):
    fr = S1Frame.from_dict(ph1.truth["frame"])
    m = fr.rotation
    np.testing.assert_allclose(m @ m.T, np.eye(3), atol=1e-12)
    assert np.linalg.det(m) == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(fr.origin_ras_mm, ph1.truth["landmarks"]["endplate_center"])
    # neutral sacral slope 40 deg: angle between the endplate normal and world superior
    slope = np.degrees(np.arccos(fr.cranial_ras @ np.array([0.0, 0.0, 1.0])))
    assert slope == pytest.approx(40.0, abs=1e-9)
    assert ph1.truth["sacral_slope_deg"] == pytest.approx(40.0)


def test_all_landmarks_present_and_in_image(ph1):
    lms = ph1.truth["landmarks"]
    assert set(lms) == set(LANDMARK_NAMES)
    pts = np.array([lms[n] for n in LANDMARK_NAMES])
    assert ph1.ct.contains_ras(pts).all()
    # frame coordinates in the truth agree with the world ones through the frame
    fr = np.array([ph1.truth["landmarks_frame_mm"][n] for n in LANDMARK_NAMES])
    np.testing.assert_allclose(ph1.frame.to_frame_mm(pts), fr, atol=1e-9)


# --------------------------------------------------------------------------- landmarks
@pytest.mark.parametrize("side", ["left", "right"])
def test_landmarks_sit_on_their_structures(ph1, side):
    """Checked on the voxel labels (1 mm): 2 mm inside / 2 mm outside each surface point."""
    t, fr = ph1.truth, ph1.frame
    lm = {k: np.asarray(v) for k, v in t["landmarks"].items()}
    lat = fr.lateral_ras(side)
    n_facet = np.asarray(t["facet_normal_ras"][side])
    # facet centre and entry: bone of S1 behind the surface, joint space in front of it
    for name in ("sap_facet", "entry"):
        p = lm[f"{side}.{name}"]
        assert label_at(ph1, p - 2.0 * n_facet) == 26, name
        assert label_at(ph1, p + 1.0 * n_facet) not in BONE_CODES, name
    # entry lies caudal and lateral to the facet centre (paper: lateral-inferior part of the
    # inferior half of the superior articular surface)
    d = lm[f"{side}.entry"] - lm[f"{side}.sap_facet"]
    assert d @ fr.cranial_ras < -2.0
    assert d @ lat > 1.0
    # pedicle centre is S1 bone; canal centre is not bone and is medial to both pedicles
    assert label_at(ph1, lm[f"{side}.pedicle"]) == 26
    assert label_at(ph1, lm["canal"]) not in BONE_CODES
    assert hu_at(ph1, lm["canal"]) < 60
    # ala lateral: where the lateral ray from the pedicle centre, moved forward midway to the
    # anterior alar cortex, leaves the sacrum (the SI-joint face of the ala), the ilium 3 mm
    # away
    p = lm[f"{side}.ala_lateral"]
    ped = lm[f"{side}.pedicle"]
    ped = ped + 0.5 * ((lm[f"{side}.ala_anterior"] - ped) @ fr.anterior_ras) * fr.anterior_ras
    np.testing.assert_allclose((p - ped) / np.linalg.norm(p - ped), lat, atol=1e-9)
    assert label_at(ph1, p - 1.5 * lat) == 25
    assert label_at(ph1, p + 1.5 * lat) == 0
    steps_mm = np.arange(0.0, np.linalg.norm(p - ped) + 3.0, 0.25)
    on_ray = np.isin(label_at(ph1, ped + steps_mm[:, None] * lat), SACRUM_CODES)
    first_out_mm = steps_mm[np.argmin(on_ray)]  # first sample off the sacrum voxels
    assert first_out_mm == pytest.approx(np.linalg.norm(p - ped), abs=1.0)
    hip = 77 if side == "left" else 78
    hip_pts = ph1.ct.ijk_to_ras(np.argwhere(ph1.labels.array == hip))
    assert 2.0 <= np.linalg.norm(hip_pts - p, axis=1).min() <= 4.5
    # ala anterior: sacrum behind, soft tissue in front
    p = lm[f"{side}.ala_anterior"]
    assert label_at(ph1, p - 2.0 * fr.anterior_ras) == 25
    assert label_at(ph1, p + 2.0 * fr.anterior_ras) not in BONE_CODES
    # dorsal S1 foramen: a hole in the sacrum, ringed by sacral bone
    p = lm[f"{side}.s1_foramen"]
    axis = np.asarray(t["s1_foramen_axis_ras"][side])
    assert label_at(ph1, p - 3.0 * axis) not in BONE_CODES
    u = np.cross(axis, fr.right_ras)
    u /= np.linalg.norm(u)
    v = np.cross(axis, u)
    ang = np.linspace(0, 2 * np.pi, 36, endpoint=False)
    ring = p - 3.0 * axis + 6.0 * (np.cos(ang)[:, None] * u + np.sin(ang)[:, None] * v)
    assert np.isin(label_at(ph1, ring), SACRUM_CODES).mean() > 0.7


def test_midline_landmarks(ph1):
    fr = ph1.frame
    lm = {k: np.asarray(v) for k, v in ph1.truth["landmarks"].items()}
    c = fr.cranial_ras
    # endplate centre: S1 body below (or lesion), disc (not bone) above
    assert label_at(ph1, lm["endplate_center"] - 2.0 * c) in (26, LESION_LABEL)
    assert label_at(ph1, lm["endplate_center"] + 2.0 * c) not in BONE_CODES
    # promontory: anterior-superior corner of the body
    inward = -(c + fr.anterior_ras) / np.sqrt(2)
    assert label_at(ph1, lm["promontory"] + 2.5 * inward) == 26
    assert label_at(ph1, lm["promontory"] - 2.0 * inward) not in BONE_CODES
    # midline landmarks lie in the midsagittal plane
    for n in ("promontory", "canal", "endplate_center"):
        assert fr.to_frame_mm(lm[n])[0] == pytest.approx(0.0, abs=1e-9)


def test_left_right_mirror_symmetry_without_asymmetry(ph1):
    f = ph1.truth["landmarks_frame_mm"]
    for n in ("sap_facet", "entry", "pedicle", "ala_lateral", "ala_anterior", "s1_foramen"):
        left, right = np.asarray(f[f"left.{n}"]), np.asarray(f[f"right.{n}"])
        np.testing.assert_allclose(left * [-1, 1, 1], right, atol=1e-3)


# ------------------------------------------------------------------------- morphometry
def test_morphometry_from_voxels_is_a_sacrum(ph1):
    """Sizes measured on the 1 mm labels fall in published adult ranges (see _anatomy)."""
    sl, xyz = frame_block(ph1, [-80, -60, -40], [80, 40, 5])
    lab = ph1.labels.array[sl]
    sac = np.isin(lab, SACRUM_CODES)
    # S1 endplate 1 mm under its surface: contiguous bone run through the midline
    slab = (np.abs(xyz[..., 2] + 1.0) <= 0.5) & sac

    def run_through_zero(v):
        v = np.sort(v)
        gaps = np.nonzero(np.diff(v) > 1.5)[0]
        starts = np.r_[v[0], v[gaps + 1]]
        ends = np.r_[v[gaps], v[-1]]
        i = np.nonzero((starts <= 0) & (ends >= 0))[0][0]
        return ends[i] - starts[i] + 1.0  # + one voxel: centres -> extent

    width = run_through_zero(xyz[..., 0][slab & (np.abs(xyz[..., 1]) < 1.0)])
    depth = run_through_zero(xyz[..., 1][slab & (np.abs(xyz[..., 0]) < 1.0)])
    assert 45.0 <= width <= 51.0
    assert 30.0 <= depth <= 35.0
    # sacral width at S1 (pedicle level): 100-115 mm
    lvl = (np.abs(xyz[..., 2] - (-12.0)) < 0.5) & sac
    assert 95.0 <= np.ptp(xyz[..., 0][lvl]) + 1.0 <= 115.0
    # SI joint gap: no sacrum voxel within 1.5 mm of an ilium voxel (gap 3 mm)
    from scipy import ndimage

    hip = np.isin(lab, (77, 78))
    dist_to_hip = ndimage.distance_transform_edt(~hip, sampling=ph1.ct.spacing_mm)
    assert hip.any()
    gap = dist_to_hip[sac].min()
    assert 2.0 <= gap <= 4.5


def test_hu_values(ph1):
    from scipy import ndimage

    sl, xyz = frame_block(ph1, [-40, -50, -60], [40, 60, 5])
    lab, ct = ph1.labels.array[sl], ph1.ct.array[sl].astype(float)
    # cancellous S1 bone away from cortex and lesion (left posterior body)
    core = (np.abs(xyz[..., 0] + 12) < 3) & (np.abs(xyz[..., 1] + 6) < 3) & \
        (np.abs(xyz[..., 2] + 14) < 3)
    assert (lab[core] == 26).all()
    assert ct[core].mean() == pytest.approx(200.0, abs=10.0)
    # lesion ~30 HU inside
    les_core = ndimage.binary_erosion(lab == LESION_LABEL, iterations=3)
    assert les_core.sum() > 100
    assert ct[les_core].mean() == pytest.approx(30.0, abs=10.0)
    # cortex: bright shell on the bone surface (700-1000 HU before partial volume)
    bone = np.isin(lab, BONE_CODES)
    shell = bone & ~ndimage.binary_erosion(bone)
    assert 600.0 < np.percentile(ct[shell], 90) <= 1000.0
    # soft tissue in front of the sacrum
    soft = (lab == 0) & (np.abs(xyz[..., 0]) < 10) & (xyz[..., 1] > 25) & (xyz[..., 2] < -20)
    assert np.median(ct[soft]) == pytest.approx(45.0, abs=10.0)


def test_noise_level_measured_in_muscle():
    a = make_phantom(voxel_mm=2.0, noise_hu=0.0)
    b = make_phantom(voxel_mm=2.0, noise_hu=25.0, seed=3)
    body = a.ct.array > -900  # air is clipped at -1024 HU, which trims its noise
    diff = b.ct.array[body].astype(float) - a.ct.array[body].astype(float)
    # rounding to integer HU adds 1/12 HU^2 of variance: negligible against 25^2
    assert diff.std() == pytest.approx(25.0, rel=0.03)


# --------------------------------------------------------------------------- body loss
def _measured_loss(ph):
    bl = ph.truth["body_loss"]
    body = bl["s1_body_frame_mm"]
    sl, xyz = frame_block(ph, [-body["semi_x"], -body["semi_y"], body["z_min"]],
                          [body["semi_x"], body["semi_y"], body["z_max"]])
    lab = ph.labels.array[sl]
    in_body = ((xyz[..., 0] / body["semi_x"]) ** 2 + (xyz[..., 1] / body["semi_y"]) ** 2 <= 1) \
        & (xyz[..., 2] >= body["z_min"]) & (xyz[..., 2] <= body["z_max"])
    les = lab == LESION_LABEL
    half = 0.5 * float(np.prod(ph.ct.spacing_mm) ** (1 / 3))
    level = in_body & (np.abs(xyz[..., 2] - bl["pedicle_level_z_frame_mm"]) <= half)
    # every body voxel is S1 bone or lesion (the body is solid)
    assert np.isin(lab[in_body], (26, LESION_LABEL)).all()
    return 100.0 * les[level].sum() / level.sum(), 100.0 * les[in_body].sum() / in_body.sum()


@pytest.mark.parametrize(("percent", "voxel_mm", "tilt"),
                         [(0.0, 2.0, 0.0), (30.0, 1.0, 0.0), (55.0, 1.0, 15.0),
                          (80.0, 1.0, -10.0), (100.0, 1.5, 0.0),
                          (50.0, (0.8, 0.8, 2.0), 0.0)])
def test_body_loss_measured_from_voxels(percent, voxel_mm, tilt):
    ph = make_phantom(voxel_mm=voxel_mm, noise_hu=0.0, body_destruction_percent=percent,
                      pelvic_tilt_deg=tilt)
    bl = ph.truth["body_loss"]
    assert bl["pedicle_level_percent"] == pytest.approx(percent, abs=1e-5)
    level, vol = _measured_loss(ph)
    assert level == pytest.approx(bl["pedicle_level_percent"], abs=2.0)
    assert vol == pytest.approx(bl["volume_percent"], abs=2.0)
    assert bl["volume_percent"] <= bl["pedicle_level_percent"] + 1e-9


def test_body_loss_quadrature_against_monte_carlo():
    """The analytic volume fraction agrees with 2e6 uniform random points (3 SE < 0.1 pp)."""
    ph = make_phantom(voxel_mm=3.0, noise_hu=0.0, body_destruction_percent=65.0)
    bl = ph.truth["body_loss"]
    body = bl["s1_body_frame_mm"]
    rng = np.random.default_rng(12345)
    n = 2_000_000
    a, b = body["semi_x"], body["semi_y"]
    p = rng.uniform([-a, -b, body["z_min"]], [a, b, body["z_max"]], size=(n, 3))
    inside = (p[:, 0] / a) ** 2 + (p[:, 1] / b) ** 2 <= 1
    c, r = np.asarray(bl["lesion_center_frame_mm"]), bl["lesion_radius_mm"]
    hit = inside & (((p - c) ** 2).sum(1) <= r**2)
    assert 100.0 * hit.sum() / inside.sum() == pytest.approx(bl["volume_percent"], abs=0.15)
    # pedicle level: points on the level plane
    q = p[:, :2]
    ins = (q[:, 0] / a) ** 2 + (q[:, 1] / b) ** 2 <= 1
    dz = bl["pedicle_level_z_frame_mm"] - c[2]
    hit2 = ins & (((q - c[:2]) ** 2).sum(1) + dz**2 <= r**2)
    assert 100.0 * hit2.sum() / ins.sum() == pytest.approx(65.0, abs=0.15)


# ----------------------------------------------------------------------- tilt, asymmetry
def test_pelvic_tilt_rotates_the_truth():
    a = make_phantom(voxel_mm=2.0, noise_hu=0.0)
    b = make_phantom(voxel_mm=2.0, noise_hu=0.0, pelvic_tilt_deg=20.0)
    assert b.truth["sacral_slope_deg"] == pytest.approx(20.0)
    # the same anatomy in the frame ...
    for n in LANDMARK_NAMES:
        np.testing.assert_allclose(a.truth["landmarks_frame_mm"][n],
                                   b.truth["landmarks_frame_mm"][n], atol=1e-9)
    # ... turned 20 deg about the left-right axis through the endplate centre in the world
    o = np.asarray(a.truth["landmarks"]["endplate_center"])
    th = np.radians(20.0)
    # the sacral slope falls by 20 deg: the endplate normal turns from anterior toward
    # superior, a right-handed rotation of +20 deg about +x (R)
    rot = np.array([[1, 0, 0], [0, np.cos(th), -np.sin(th)], [0, np.sin(th), np.cos(th)]])
    for n in LANDMARK_NAMES:
        pa, pb = np.asarray(a.truth["landmarks"][n]), np.asarray(b.truth["landmarks"][n])
        np.testing.assert_allclose(rot @ (pa - o) + o, pb, atol=1e-9)
        assert np.linalg.norm(pa - o) == pytest.approx(np.linalg.norm(pb - o), abs=1e-9)
    # the voxels follow: pedicles are S1 bone in both
    for ph in (a, b):
        for side in ("left", "right"):
            assert label_at(ph, ph.truth["landmarks"][f"{side}.pedicle"]) == 26
    cos = np.dot(a.frame.cranial_ras, b.frame.cranial_ras)
    assert np.degrees(np.arccos(cos)) == pytest.approx(20.0, abs=1e-9)


@pytest.mark.parametrize("asym", [0.2, -0.2])
def test_asymmetry_widens_one_ala(asym):
    ph = make_phantom(voxel_mm=2.0, noise_hu=0.0, asymmetry=asym)
    f = ph.truth["landmarks_frame_mm"]
    root = 14.0  # ala root (documented in alarscrew.phantom._anatomy)
    left = -f["left.ala_lateral"][0] - root
    right = f["right.ala_lateral"][0] - root
    nominal = -make_phantom(voxel_mm=3.0).truth["landmarks_frame_mm"]["left.ala_lateral"][0] \
        - root
    big, small = (right, left) if asym > 0 else (left, right)
    # the alar solids and the SI joint move out by 1.2x from the root (the joint passes
    # 50 mm from the midline: documented in alarscrew.phantom._anatomy); the lateral ray
    # through the pedicle does not move, so ala_lateral moves out by 0.2 x (50 - 14) mm
    assert big - small == pytest.approx(0.2 * (50.0 - root), abs=1e-3)
    assert small == pytest.approx(nominal, abs=1e-3)
    # measured on voxels: the right half of the sacrum reaches further out
    sl, xyz = frame_block(ph, [-90, -60, -14], [90, 40, -10])
    lvl = (np.abs(xyz[..., 2] + 12.0) < 1.0) & np.isin(ph.labels.array[sl], SACRUM_CODES)
    x = xyz[..., 0][lvl]
    ratio = (x.max() - root) / (-x.min() - root)
    assert ratio == pytest.approx(1.2 if asym > 0 else 1 / 1.2, abs=0.06)


@pytest.mark.parametrize(("tilt", "asym", "voxel"), [(30.0, 0.3, 2.0), (-30.0, -0.3, 3.0)])
def test_extreme_parameters_keep_the_anatomy_in_view(tilt, asym, voxel):
    ph = make_phantom(voxel_mm=voxel, noise_hu=0.0, asymmetry=asym, pelvic_tilt_deg=tilt,
                      body_destruction_percent=50.0)
    lab = ph.labels.array
    border = np.ones(lab.shape, bool)
    border[1:-1, 1:-1, 1:-1] = False
    # sacrum, L5, canal content and vessels lie wholly inside the grid (iliac wings may not)
    assert not np.isin(lab[border], (25, 26, 27, 65, 66, 67, 68, 79, LESION_LABEL)).any()
    for side in ("left", "right"):
        assert label_at(ph, ph.truth["landmarks"][f"{side}.pedicle"]) == 26


# ------------------------------------------------------------------ determinism, params
def test_determinism_and_seed():
    a = make_phantom(voxel_mm=3.0, seed=7)
    b = make_phantom(voxel_mm=3.0, seed=7)
    c = make_phantom(voxel_mm=3.0, seed=8)
    np.testing.assert_array_equal(a.ct.array, b.ct.array)
    np.testing.assert_array_equal(a.labels.array, b.labels.array)
    np.testing.assert_allclose(a.ct.affine, b.ct.affine)
    assert a.truth == b.truth
    assert not np.array_equal(a.ct.array, c.ct.array)
    np.testing.assert_array_equal(a.labels.array, c.labels.array)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"voxel_mm": 0.2}, "voxel_mm"), ({"voxel_mm": 5.0}, "voxel_mm"),
    ({"voxel_mm": (1.0, 1.0)}, "three"), ({"voxel_mm": (1.0, 1.0, 4.0)}, "voxel_mm"),
    ({"voxel_mm": float("nan")}, "voxel_mm"), ({"voxel_mm": "abc"}, "voxel_mm"),
    ({"noise_hu": -1.0}, "noise_hu"), ({"asymmetry": 0.5}, "asymmetry"),
    ({"pelvic_tilt_deg": 90.0}, "pelvic_tilt_deg"),
    ({"body_destruction_percent": 101.0}, "body_destruction_percent"),
    ({"body_destruction_percent": -1.0}, "body_destruction_percent"),
    ({"seed": -1}, "seed"), ({"seed": 1.5}, "seed"), ({"seed": True}, "seed"),
])
def test_bad_parameters_raise(kwargs, match):
    with pytest.raises(InputError, match=match):
        make_phantom(**kwargs)


def test_extra_masks(ph1):
    m = ph1.masks
    assert set(m) == {"canal", "disc", "s1_body"}
    for img in m.values():
        assert img.same_grid(ph1.ct)
        assert img.array.dtype == bool
    lab = ph1.labels.array
    # the bony canal holds the thecal sac and no bone; the canal landmark is in it
    assert m["canal"].array[lab == 79].all()
    assert not np.isin(lab[m["canal"].array], BONE_CODES).any()
    ijk = np.rint(ph1.ct.ras_to_ijk(np.asarray(ph1.truth["landmarks"]["canal"]))).astype(int)
    assert m["canal"].array[tuple(ijk)]
    # s1_body: exact cylinder volume pi a b h within 1 % (1 mm voxels)
    body = ph1.truth["body_loss"]["s1_body_frame_mm"]
    vol = np.pi * body["semi_x"] * body["semi_y"] * (body["z_max"] - body["z_min"])
    assert m["s1_body"].array.sum() * ph1.ct.voxel_volume_mm3 == pytest.approx(vol, rel=0.01)
    assert np.isin(lab[m["s1_body"].array], (26, LESION_LABEL)).all()
    # the disc lies between L5 and S1: no bone in it
    assert m["disc"].array.sum() > 0
    assert not np.isin(lab[m["disc"].array], BONE_CODES).any()


def test_labels_and_ct_share_the_grid(ph1):
    assert ph1.ct.same_grid(ph1.labels)
    assert ph1.labels.is_label
    assert not ph1.ct.is_label
    assert ph1.ct.array.dtype == np.int16
    present = set(np.unique(ph1.labels.array).tolist())
    assert present == {0, 25, 26, 27, 65, 66, 67, 68, 77, 78, 79, LESION_LABEL}


# ------------------------------------------------------------------------- files, CLI
def test_write_phantom_roundtrip(tmp_path):
    ph = make_phantom(voxel_mm=3.0, body_destruction_percent=60.0)
    out = write_phantom(ph, tmp_path / "ph")
    ct = load_nifti(out / "ct.nii.gz")
    lab = load_nifti(out / "labels.nii.gz", is_label=True)
    les = load_nifti(out / "lesion.nii.gz", is_label=True)
    np.testing.assert_array_equal(ct.array, ph.ct.array)
    # the file holds TotalSegmentator v2 codes only: the lesion is S1 there
    expected = np.where(ph.labels.array == LESION_LABEL, 26, ph.labels.array)
    np.testing.assert_array_equal(lab.array, expected)
    assert LESION_LABEL not in np.unique(lab.array)
    assert (les.array > 0).sum() > 0
    np.testing.assert_array_equal(les.array > 0, ph.labels.array == LESION_LABEL)
    np.testing.assert_allclose(ct.affine, ph.ct.affine)
    truth = json.loads((out / "truth.json").read_text())
    assert truth == json.loads(json.dumps(ph.truth))
    S1Frame.from_dict(truth["frame"])
    with pytest.raises(OutputExistsError):
        write_phantom(ph, out)
    write_phantom(ph, out, force=True)


def test_cli_phantom(tmp_path, capsys):
    out = tmp_path / "cli"
    code, stdout, _ = run_cli(["phantom", str(out), "--voxel-mm", "3",
                               "--body-destruction-percent", "55", "--seed", "2"], capsys)
    assert code == 0
    assert "55.0% at the pedicle level" in stdout
    truth = json.loads((out / "truth.json").read_text())
    assert truth["parameters"]["seed"] == 2
    assert truth["body_loss"]["pedicle_level_percent"] == pytest.approx(55.0)
    code, _, err = run_cli(["phantom", str(out)], capsys)
    assert code == 2
    assert "--force" in err
    for bad in ("9", "1,x,2", "1,1"):
        code, _, err = run_cli(["phantom", str(tmp_path / "bad"), "--voxel-mm", bad], capsys)
        assert code == 2, bad
        assert "--voxel-mm" in err
    assert not (tmp_path / "bad").exists()
    code, _, _ = run_cli(["phantom", str(tmp_path / "aniso"), "--voxel-mm", "0.9,0.9,3",
                          "--noise-hu", "0"], capsys)
    assert code == 0
    ct = load_nifti(tmp_path / "aniso" / "ct.nii.gz")
    np.testing.assert_allclose(ct.spacing_mm, [0.9, 0.9, 3.0])


def test_written_phantom_reads_through_the_io_and_label_contracts(tmp_path):
    """The files meet the contracts of DEVELOPING.md: load_ct accepts the CT, load_labels
    detects TotalSegmentator v2 and returns the structures, lesion.nii.gz reads as 'lesion'."""
    from alarscrew.anatomy.labels import detect_scheme, load_labels
    from alarscrew.io import load_ct

    ph = make_phantom(voxel_mm=3.0, body_destruction_percent=70.0)
    out = write_phantom(ph, tmp_path / "ph")
    ct = load_ct(out / "ct.nii.gz")
    assert ct.same_grid(ph.ct)
    lab = load_nifti(out / "labels.nii.gz", is_label=True)
    assert detect_scheme(lab).scheme == "totalseg_v2"
    masks = load_labels([out / "labels.nii.gz", out / "lesion.nii.gz"], ct)
    assert {"sacrum", "s1", "l5", "hip_left", "hip_right", "iliac_artery_left",
            "iliac_artery_right", "iliac_vena_left", "iliac_vena_right", "spinal_cord",
            "lesion"} <= set(masks)
    np.testing.assert_array_equal(masks["lesion"].array, ph.labels.array == LESION_LABEL)
    np.testing.assert_array_equal(masks["hip_left"].array, ph.labels.array == 77)


def test_truth_does_not_depend_on_voxel_size_or_noise():
    """The answers are analytic: only the image changes with voxel size, noise and seed."""
    a = make_phantom(voxel_mm=3.0, noise_hu=0.0, body_destruction_percent=45.0)
    b = make_phantom(voxel_mm=2.5, noise_hu=40.0, seed=5, body_destruction_percent=45.0)
    for key in ("landmarks", "frame", "body_loss", "dimensions_mm"):
        assert a.truth[key] == b.truth[key], key
    assert a.ct.shape != b.ct.shape


def _facet_joint_contrast_hu(ph) -> float:
    """Median HU of the facet cortex minus median HU of the L5-S1 facet joint space.

    Joint-space voxels: unlabelled voxels touching both the sacrum and L5 labels
    (26-neighbourhood; the L5/S1 disc keeps the bodies apart, so these are the facet joints);
    cortex voxels: sacrum voxels touching them. Measured on the label map and the rendered HU.
    """
    from scipy import ndimage as ndi

    lab = ph.labels.array
    hu = ph.ct.array.astype(float)
    st = np.ones((3, 3, 3), bool)
    sacrum = np.isin(lab, SACRUM_CODES)
    joint = ((lab == 0) & ndi.binary_dilation(sacrum, st)
             & ndi.binary_dilation(lab == 27, st))
    cortex = sacrum & ndi.binary_dilation(joint, st)
    assert joint.sum() >= 50
    return float(np.median(hu[cortex]) - np.median(hu[joint]))


def test_facet_joint_space_contrast_falls_with_voxel_size(ph1):
    """The 2 mm facet joint space is resolved at 1 mm voxels and nearly lost at 2 mm.

    Reference (partial-volume model of ``_bone_hu``): a voxel spans ``w = sum_i |n_i| s_i``
    along the surface normal ``n``; for the facet (45 degrees to the sagittal plane, the
    sacrum sloped 40 +- 15 degrees) that is 1.4-1.7 mm at 1 mm voxels, so voxels in the joint
    hold soft tissue only, but 2.8-3.4 mm at 2 mm voxels, wider than the 2 mm joint: every
    voxel there also holds cortex of both bones. Measured 2026-11-23 (noise-free): 356 HU at
    1 mm (tilt 0), 90-108 HU at 2 mm (tilt 0 / +-15). This is the limit behind the strict
    xfail of tests/anatomy/test_anatomy_phantom.py at 2 mm with tilt.
    """
    assert _facet_joint_contrast_hu(ph1) >= 300.0
    ph2 = make_phantom(voxel_mm=2.0, noise_hu=0.0, pelvic_tilt_deg=15.0)
    assert _facet_joint_contrast_hu(ph2) <= 150.0

"""The dorsal S1 foramen found as a dark hole in the CT (alarscrew.anatomy.foramen).

References: the analytic plate below (hole centres known by construction) and the phantom's
exact landmark ``{side}.s1_foramen`` (alarscrew.phantom._anatomy: where the dorsal tunnel's
axis leaves the sacral hull). Tolerance 2 mm: the issue's landmark tolerance; measured
0.4-1.1 mm on the phantom at 1-3 mm voxels (3 mm: 0.4 / 0.8 mm, 2 mm tilt +10: 0.6 / 0.6 mm),
where the mask-based pit detector found none at 3 mm and the S2 pit (18.9 mm off) at 2 mm
with tilt +10. 3 mm tilt -15: the right hole peaks at 0.8 of the plate-to-soft-tissue way and
keeps only 10 mm2 above the half level (was NOT FOUND); its half-peak area (19 mm2) counts.
3 mm with 40 HU noise: the noisy mask's closed surface lay up to 6 mm dorsal of the bone over
the left hole (4.2 mm depth error); the depth read from the CT's half-level surface on the
ring of profiles around the hole puts it 0.7 / 1.1 mm from the truth.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from alarscrew.anatomy import analyze_anatomy, run_anatomy
from alarscrew.anatomy.foramen import (
    MIN_RING_SECTORS,
    RING_SECTORS,
    UNCONFIRMED_FACTOR,
    WINDOW_X_MM,
    WINDOW_Z_MM,
    dorsal_surface_y_mm,
    find_s1_foramina,
    plate_maps,
)
from alarscrew.anatomy.model import Landmark
from alarscrew.errors import GeometryError
from alarscrew.io import load_nifti
from alarscrew.phantom import make_phantom
from alarscrew.spatial.frame import S1Frame

VOXEL_MM = 3.0
#: Analytic plate: bone for y in [PLATE_Y_MM, 0], the dorsal surface at y = PLATE_Y_MM.
PLATE_Y_MM = -45.0
BONE_HU, SOFT_HU = 700.0, 40.0
#: Dorsal foramina (x, z, radius) in frame mm: S1 at z = -30 (10 x 8 mm class), S2 at -53.
S1_HOLES = ((-18.0, -30.0, 4.0), (18.0, -30.0, 4.0))
S2_HOLES = ((-16.0, -53.0, 3.5), (16.0, -53.0, 3.5))


def _plate_ct(holes: tuple[tuple[float, float, float], ...], *, noise_hu: float = 15.0,
              mask_out_mm: float = 0.0, slope: float = 0.0):
    """3 mm CT of a bone plate pierced by AP tunnels, its closed mask, affine and frame.

    The plate's dorsal surface is ``y = PLATE_Y_MM + slope * (z + 30)`` (through PLATE_Y_MM at
    the S1 holes' level); the mask reaches ``mask_out_mm`` dorsal of it (a threshold mask
    that took in noise or partial volume)."""
    n = (34, 30, 30)
    origin = np.array([-50.0, -75.0, -75.0])
    aff = np.diag([VOXEL_MM, VOXEL_MM, VOXEL_MM, 1.0])
    aff[:3, 3] = origin
    # supersample by 3 per axis, then average: partial volume of the 3 mm voxels
    f = 3
    g = [origin[a] + (np.arange(n[a] * f) + 0.5) * VOXEL_MM / f - VOXEL_MM / 2 for a in range(3)]
    x, y, z = np.meshgrid(*g, indexing="ij")
    bone = ((np.abs(x) <= 40.0) & (y >= PLATE_Y_MM + slope * (z + 30.0)) & (y <= 0.0)
            & (z >= -70.0) & (z <= 0.0))
    for hx, hz, r in holes:
        bone &= (x - hx) ** 2 + (z - hz) ** 2 > r * r
    fine = np.where(bone, BONE_HU, SOFT_HU).astype(np.float32)
    hu = fine.reshape(n[0], f, n[1], f, n[2], f).mean(axis=(1, 3, 5))
    hu = ndi.gaussian_filter(hu, 0.5) + np.random.default_rng(0).normal(0.0, noise_hu, hu.shape)
    # the mask of a coarse enclosure fill: the plate with its foramina closed
    ijk = np.indices(n).astype(float)
    cx, cy, cz = (origin[a] + VOXEL_MM * ijk[a] for a in range(3))
    mask = ((np.abs(cx) <= 40.0) & (cy >= PLATE_Y_MM + slope * (cz + 30.0) - mask_out_mm)
            & (cy <= 0.0) & (cz >= -70.0) & (cz <= 0.0))
    frame = S1Frame.from_axes(np.zeros(3), cranial_ras=np.array([0.0, 0.0, 1.0]),
                              anterior_ras=np.array([0.0, 1.0, 0.0]))
    return hu, aff, mask, frame


def test_analytic_plate_s1_not_s2():
    hu, aff, mask, frame = _plate_ct(S1_HOLES + S2_HOLES)
    out = find_s1_foramina(hu, aff, frame, {}, sacrum=mask)
    for side, (hx, hz, _) in zip(("left", "right"), S1_HOLES, strict=True):
        lm = out[f"{side}.s1_foramen"]
        p = frame.to_frame_mm(lm.xyz_ras_mm[None])[0]
        # x, z: the hole centre to 1 mm; y: the dorsal surface to about half a voxel
        assert abs(p[0] - hx) < 1.0, (side, p)
        assert abs(p[2] - hz) < 1.0, (side, p)
        assert abs(p[1] - PLATE_Y_MM) < 0.6 * VOXEL_MM, (side, p)
        assert "dark hole" in lm.method
        assert 0.2 <= lm.confidence <= 0.8


@pytest.mark.parametrize(("noise_hu", "slope"), [(15.0, 0.0), (40.0, 0.0), (40.0, 0.4)],
                         ids=["flat", "noise40", "noise40-inclined"])
def test_depth_from_the_ct_surface_not_the_mask(noise_hu, slope):
    """The mask reaches one voxel dorsal of the bone (a threshold mask that took in noise):
    the foramen's depth is the CT's half-level surface of the plate around the hole, not the
    mask surface moved half a voxel in (which lies 1.5 mm dorsal here). Reference: the
    plate's analytic surface, y = PLATE_Y_MM at the holes (the inclined plate rises 0.4 mm
    per mm of z: the ring's plane fit, not its mean, gives the centre). The flat plate's
    sampled surface lies 0.5 mm dorsal of that: its 1 mm sub-samples sit on whole mm and the
    one at y = -45 counts as bone, so the edge falls midway between -46 and -45 (on the
    inclined plate the sub-samples' offsets average out along z). Tolerance 0.5 mm: one sixth
    of a voxel, for 40 HU noise averaged over each sector's about 4 voxels and the trilinear
    reading of a partial-volume ramp (measured: flat -0.2 / -0.3 mm, inclined -0.2 / -0.2 mm;
    the mask surface moved half a voxel in is 2.5 mm off in all three)."""
    hu, aff, mask, frame = _plate_ct(S1_HOLES + S2_HOLES, noise_hu=noise_hu,
                                     mask_out_mm=VOXEL_MM, slope=slope)
    out = find_s1_foramina(hu, aff, frame, {}, sacrum=mask)
    for side, (hx, hz, _) in zip(("left", "right"), S1_HOLES, strict=True):
        lm = out[f"{side}.s1_foramen"]
        p = frame.to_frame_mm(lm.xyz_ras_mm[None])[0]
        assert abs(p[0] - hx) < 1.0, (side, p)
        assert abs(p[2] - hz) < 1.0, (side, p)
        sampled_y_mm = PLATE_Y_MM + slope * (p[2] + 30.0) - (0.5 if slope == 0.0 else 0.0)
        assert abs(p[1] - sampled_y_mm) < 0.5, (side, p)
        assert "half-level dorsal surface" in lm.method


def test_ring_reads_no_surface_without_a_plate():
    """Where fewer than MIN_RING_SECTORS sectors around the hole show a bone edge (here the
    ring has only soft tissue: the surface is not the CT's to read), no depth is read from
    the CT (find_s1_foramina then keeps the mask's closed surface moved half a voxel in);
    with the plate there, all sectors read it."""
    hu, aff, mask, frame = _plate_ct(S1_HOLES)
    maps = plate_maps(hu, aff, frame, mask)
    soft = np.full_like(hu, SOFT_HU)
    y_mm, n = dorsal_surface_y_mm(soft, aff, frame, maps, 18.0, -30.0, voxel_mm=VOXEL_MM)
    assert y_mm is None
    assert n < MIN_RING_SECTORS
    y_mm, n = dorsal_surface_y_mm(hu, aff, frame, maps, 18.0, -30.0, voxel_mm=VOXEL_MM)
    assert n == RING_SECTORS
    assert abs(y_mm - (PLATE_Y_MM - 0.5)) < 0.5  # the sampled surface (previous test)


def test_no_s1_hole_means_absent_and_drops_the_mask_point():
    hu, aff, mask, frame = _plate_ct(S2_HOLES)  # only S2 holes, below the S1 window
    stale = Landmark("left.s1_foramen", np.array([-18.0, -45.0, -53.0]), 0.8, "mask pit")
    out = find_s1_foramina(hu, aff, frame, {"left.s1_foramen": stale}, sacrum=mask)
    assert "left.s1_foramen" not in out
    assert "right.s1_foramen" not in out


def test_paired_mask_pits_kept_unconfirmed_where_the_ct_shows_no_hole():
    """No S1 hole in the CT: two mask pits that mirror each other (within 10 mm) stay, with a
    lowered confidence and a method that says the CT did not confirm them; an unpaired one
    does not (previous test)."""
    hu, aff, mask, frame = _plate_ct(S2_HOLES)
    pits = {f"{side}.s1_foramen": Landmark(f"{side}.s1_foramen",
                                           np.array([s * 20.0, -45.0, z]), 0.8, "mask pit")
            for side, s, z in (("left", -1.0, -28.0), ("right", 1.0, -31.0))}
    out = find_s1_foramina(hu, aff, frame, pits, sacrum=mask)
    for name, pit in pits.items():
        assert np.allclose(out[name].xyz_ras_mm, pit.xyz_ras_mm)
        assert out[name].confidence == pytest.approx(0.8 * UNCONFIRMED_FACTOR)
        assert "not confirmed by the CT (no hole)" in out[name].method
    far = dict(pits)
    far["right.s1_foramen"] = Landmark("right.s1_foramen", np.array([20.0, -45.0, -45.0]),
                                       0.8, "mask pit")  # 17 mm lower: no pair
    out = find_s1_foramina(hu, aff, frame, far, sacrum=mask)
    assert "left.s1_foramen" not in out
    assert "right.s1_foramen" not in out


def test_supplied_landmark_kept_and_errors():
    hu, aff, mask, frame = _plate_ct(S1_HOLES)
    # the user's right foramen, 2 mm off the CT's hole, stands for that side in the pair check
    user_xyz = frame.to_world_mm(np.array([[20.0, PLATE_Y_MM, -30.0]]))[0]
    user = Landmark("right.s1_foramen", user_xyz, 1.0, "user", supplied=True)
    out = find_s1_foramina(hu, aff, frame, {"right.s1_foramen": user}, sacrum=mask)
    assert out["right.s1_foramen"] is user
    assert "left.s1_foramen" in out
    # a supplied foramen one segment lower than the left CT hole: the pair is no pair
    far = Landmark("right.s1_foramen", frame.to_world_mm(np.array([[18.0, PLATE_Y_MM, -48.0]]))[0],
                   1.0, "user", supplied=True)
    out = find_s1_foramina(hu, aff, frame, {"right.s1_foramen": far}, sacrum=mask)
    assert out["right.s1_foramen"] is far
    assert "left.s1_foramen" not in out
    with pytest.raises(GeometryError, match="sacrum mask shape"):
        find_s1_foramina(hu, aff, frame, {}, sacrum=mask[:-1])
    with pytest.raises(GeometryError, match="3D CT"):
        find_s1_foramina(hu[0], aff, frame, {}, sacrum=mask)


def test_holes_that_are_no_mirror_pair_are_withheld():
    # right hole 15 mm caudal of the left one (more than one foramen's width): which side took
    # the wrong hole is unknown, so neither is reported
    hu, aff, mask, frame = _plate_ct(((-18.0, -30.0, 4.0), (18.0, -45.0, 4.0)))
    out = find_s1_foramina(hu, aff, frame, {}, sacrum=mask)
    assert "left.s1_foramen" not in out
    assert "right.s1_foramen" not in out
    # an asymmetry of 2 mm lateral and 3 mm caudal (3.6 mm mirrored) is one pair
    hu, aff, mask, frame = _plate_ct(((-18.0, -30.0, 4.0), (20.0, -33.0, 4.0)))
    out = find_s1_foramina(hu, aff, frame, {}, sacrum=mask)
    for name, hx, hz in (("left.s1_foramen", -18.0, -30.0), ("right.s1_foramen", 20.0, -33.0)):
        p = frame.to_frame_mm(out[name].xyz_ras_mm[None])[0]
        assert abs(p[0] - hx) < 1.0, (name, p)
        assert abs(p[2] - hz) < 1.0, (name, p)
        assert "mirrored lies" in out[name].method


@pytest.fixture(scope="module", params=[{"voxel_mm": 3.0},
                                        {"voxel_mm": 3.0, "pelvic_tilt_deg": -15.0},
                                        {"voxel_mm": 3.0, "noise_hu": 40.0},
                                        {"voxel_mm": 2.0, "pelvic_tilt_deg": 10.0}],
                ids=["3mm", "3mm-tilt-15", "3mm-noise40", "2mm-tilt+10"])
def phantom_case(request):
    ph = make_phantom(**request.param)
    an = analyze_anatomy(ph.ct)
    out = find_s1_foramina(ph.ct.array, ph.ct.affine, an.frame, an.landmarks,
                           sacrum=np.asarray(an.sacrum.array, bool))
    return ph, an, out


@pytest.mark.parametrize("side", ["left", "right"])
def test_phantom_foramen_within_2mm(phantom_case, side):
    ph, an, out = phantom_case
    name = f"{side}.s1_foramen"
    truth = np.asarray(ph.truth["landmarks"][name], float)
    assert name in out, f"{name} not found"
    err = float(np.linalg.norm(out[name].xyz_ras_mm - truth))
    assert err < 2.0, f"{name} {err:.1f} mm from the phantom truth"
    # the other landmarks are passed through unchanged
    assert all(out[k] is v for k, v in an.landmarks.items() if not k.endswith("s1_foramen"))


# ---- the shared real 3 mm scan --------------------------------------------------------------
#: Tolerance (mm, in frame x and z) to the label's through-hole: one voxel of the 3 mm scan.
#: Measured CT-only: 1.1 mm (left) and 0.6 mm (right).
REAL_TOL_MM = 3.0


def _label_s1_holes(an, v1_sacrum: np.ndarray, ct) -> dict[str, np.ndarray]:
    """Per side (x, z) frame mm of the most cranial through-hole of the v1 sacrum label."""
    maps = plate_maps(ct.array, ct.affine, an.frame, v1_sacrum)
    lab, n = ndi.label(ndi.binary_fill_holes(maps["has"]) & ~maps["has"])
    xx, zz = np.meshgrid(maps["x_mm"], maps["z_mm"], indexing="ij")
    found: dict[str, np.ndarray] = {}
    for k in range(1, n + 1):
        c = lab == k
        x_mm, z_mm = float(xx[c].mean()), float(zz[c].mean())
        if c.sum() < 10 or not (WINDOW_X_MM[0] <= abs(x_mm) <= WINDOW_X_MM[1]
                                and WINDOW_Z_MM[0] <= z_mm <= WINDOW_Z_MM[1]):
            continue
        side = "right" if x_mm > 0 else "left"
        if side not in found or z_mm > found[side][1]:
            found[side] = np.array([x_mm, z_mm])
    return found


#: A mask pit kept unconfirmed lies on the rim of the opening: cranial of the hole by at most
#: this (mm, frame z) and within this of it in x (measured on the S1-label run, dx / dz:
#: left -1.6 / +7.9 mm, right +8.8 / +4.6 mm).
RIM_MAX_MM = 10.0


@pytest.mark.realdata
@pytest.mark.parametrize("seg", [(), ("vertebrae.nii.gz",)], ids=["ct-only", "s1-label"])
def test_real_scan_foramina_at_the_label_holes_or_on_their_rim(real_ct_dir, seg):
    """References: the through-holes of the TotalSegmentator-v1 sacrum label (code 92) at the S1
    level (the label is used only to check). CT-only both foramina are CT holes within
    REAL_TOL_MM of the label's. With the S1 label as seed the mask reaches into the fat of the
    dorsal grooves, the CT picks no pair (left lost, right an S2-level hole 13 mm off before the
    pair check): the pipeline then keeps the two paired mask pits, unconfirmed, which must lie
    on the cranial rim of the label's holes (the planner's safe side), never caudal to them."""
    ct = load_nifti(real_ct_dir / "ct.nii.gz")
    an = run_anatomy(real_ct_dir / "ct.nii.gz", seg_paths=[real_ct_dir / s for s in seg])
    v1 = load_nifti(real_ct_dir / "total_v1.nii.gz", is_label=True).array == 92
    ref = _label_s1_holes(an, v1, ct)
    assert set(ref) == {"left", "right"}, ref
    for side in ("left", "right"):
        lm = an.landmarks[f"{side}.s1_foramen"]
        p = an.frame.to_frame_mm(lm.xyz_ras_mm[None])[0]
        dx, dz = p[[0, 2]] - ref[side]
        if "not confirmed by the CT" not in lm.method:
            assert np.hypot(dx, dz) < REAL_TOL_MM, (lm.name, dx, dz)
        else:
            assert seg, f"{lm.name}: CT-only the CT hole is expected, got {lm.method}"
            assert abs(dx) <= RIM_MAX_MM, (lm.name, dx, dz)
            assert 0.0 <= dz <= RIM_MAX_MM, (lm.name, dx, dz)

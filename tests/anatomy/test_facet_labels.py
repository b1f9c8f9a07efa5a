"""S1 facet and entry with S1 (+ L5) labels but no sacrum label, on coarse CT voxels.

TotalSegmentator v2's ``vertebrae`` output (S1, L5... but no sacrum) is the common real input.
The sacrum mask is then the CT watershed's between the label markers, which on 2.5-3 mm voxels
decides the one-voxel L5-S1 facet joint itself; the facet and entry are found on the S1 label's
surface instead (:func:`alarscrew.anatomy.landmarks.detect_landmarks`, ``s1=``).

Reference: the analytic phantom's ``truth`` (area quadrature of the analytic facet surface).
Measured 2026-12-04, before (facet on the CT mask) -> now (on the S1 label's surface), S1 + L5
labels:

- 2.5 mm (neutral, tilt +-15, noise 40, asymmetry +0.3): facet 1.9-3.9 -> 0.55-0.72 mm,
  entry 2.5-6.4 -> 0.25-1.53 mm;
- 3 mm (same cases): facet 4.1-5.3 -> 0.50-1.88 mm, entry 5.3-9.1 -> 1.03-2.53 mm (the
  voxelised sacrum label gives entries up to 2.5 mm at 3 mm too: the detector's limit there);
- 2 mm, tilt +-15: facet 0.13-1.4 -> 0.45-0.56 mm, entry 3.7-4.7 -> 0.74-1.33 mm;
- S1 label alone, 3 mm neutral / tilt -15: facet 10.3-10.5 -> 0.6-1.9 mm, entry 10.3-10.8 ->
  1.0-2.5 mm.

Tolerances: facet 2.5 mm and entry 3.0 mm at 2.5-3 mm voxels (under one 3 mm voxel, about
0.6 mm above the largest error measured); 2.0 mm (the issue's landmark tolerance) at 2 mm.
"""

from __future__ import annotations

import numpy as np
import pytest

from alarscrew.anatomy import analyze_anatomy
from alarscrew.anatomy.landmarks import detect_landmarks
from alarscrew.anatomy.s1frame import FrameVolume
from alarscrew.errors import GeometryError
from alarscrew.phantom import make_phantom
from alarscrew.spatial.frame import S1Frame

#: Phantom codes (alarscrew.phantom): 26 vertebrae_S1, 27 vertebrae_L5.
S1_CODE, L5_CODE = 26, 27

COARSE_CASES = {
    "3mm_neutral": {"voxel_mm": 3.0},
    "3mm_tilt-15": {"voxel_mm": 3.0, "pelvic_tilt_deg": -15.0},
    "3mm_asym+0.3": {"voxel_mm": 3.0, "asymmetry": 0.3},
    "2.5mm_tilt+15": {"voxel_mm": 2.5, "pelvic_tilt_deg": 15.0},
    "2.5mm_noise40": {"voxel_mm": 2.5, "noise_hu": 40.0},
}
FACET_TOL_MM, ENTRY_TOL_MM = 2.5, 3.0
FINE_TOL_MM = 2.0


def _facet_errors(params: dict, names: tuple[str, ...] = ("s1", "l5")) -> dict[str, float]:
    ph = make_phantom(**params)
    lab = ph.labels
    codes = {"s1": S1_CODE, "l5": L5_CODE}
    an = analyze_anatomy(ph.ct, labels={n: lab.with_array(lab.array == codes[n], is_label=True)
                                        for n in names})
    out = {}
    for side in ("left", "right"):
        for kind in ("sap_facet", "entry"):
            name = f"{side}.{kind}"
            assert name in an.landmarks, name
            out[name] = float(np.linalg.norm(an.landmarks[name].xyz_ras_mm
                                             - np.asarray(ph.truth["landmarks"][name])))
        assert "S1 label's surface" in an.landmarks[f"{side}.sap_facet"].method
    return out


@pytest.mark.parametrize("case", list(COARSE_CASES))
def test_facet_and_entry_with_s1_and_l5_labels_on_coarse_voxels(case: str) -> None:
    errors = _facet_errors(COARSE_CASES[case])
    for name, err in errors.items():
        tol = FACET_TOL_MM if name.endswith("sap_facet") else ENTRY_TOL_MM
        assert err <= tol, (name, err, errors)


@pytest.mark.parametrize("tilt_deg", [15.0, -15.0])
def test_facet_and_entry_with_s1_and_l5_labels_at_2mm(tilt_deg: float) -> None:
    errors = _facet_errors({"voxel_mm": 2.0, "pelvic_tilt_deg": tilt_deg})
    for name, err in errors.items():
        assert err <= FINE_TOL_MM, (name, err, errors)


def test_facet_and_entry_with_the_s1_label_alone_at_3mm() -> None:
    errors = _facet_errors({"voxel_mm": 3.0, "pelvic_tilt_deg": -15.0}, names=("s1",))
    for name, err in errors.items():
        tol = FACET_TOL_MM if name.endswith("sap_facet") else ENTRY_TOL_MM
        assert err <= tol, (name, err, errors)


def _block_volume() -> tuple[FrameVolume, np.ndarray, np.ndarray]:
    """A frame volume whose mask is an S1-like block (body in front, two posterior processes
    with posteromedial faces) plus an extra slab glued onto each process's posteromedial face
    (an L5 inferior articular process the CT mask took), and the label without the slabs."""
    x = np.arange(-50.0, 51.0)
    y = np.arange(-60.0, 41.0)
    z = np.arange(-30.0, 31.0)
    X, Y, Z = np.meshgrid(x, y, z, indexing="ij")
    frame = S1Frame(np.zeros(3), np.array([1.0, 0, 0]), np.array([0, 1.0, 0]),
                    np.array([0, 0, 1.0]))
    body = (np.abs(X) <= 25) & (Y >= -15) & (Y <= 20) & (Z <= 0) & (Z >= -25)
    u = np.abs(X) * np.sin(np.radians(45.0)) + Y * np.cos(np.radians(45.0))  # along -normal
    process = ((np.abs(X) >= 14) & (np.abs(X) <= 34) & (Y <= -15) & (Y >= -45)
               & (Z >= -20) & (Z <= 12))
    s1 = body | (process & (u >= -5.0))
    glued = process & (u >= -9.0) & (u < -5.0)
    return FrameVolume(s1 | glued, x, y, z, frame), s1, glued


def test_facet_is_found_on_the_s1_label_surface_not_the_mask() -> None:
    """Reference: the label's posteromedial face is the plane u = -5 mm (u = |x| sin 45 +
    y cos 45); the mask's is u = -9 mm. With ``s1`` the facet lies on the label's face (within
    1 mm: the 1 mm frame voxels' staircase), without it on the mask's."""
    fv, s1, _ = _block_volume()
    s = np.sin(np.radians(45.0))
    with_label = detect_landmarks(fv, endplate_rms_mm=0.5, s1=s1)
    mask_only = detect_landmarks(fv, endplate_rms_mm=0.5)
    for side in ("left", "right"):
        p = fv.frame.to_frame_mm(with_label[f"{side}.sap_facet"].xyz_ras_mm)
        q = fv.frame.to_frame_mm(mask_only[f"{side}.sap_facet"].xyz_ras_mm)
        assert abs(abs(p[0]) * s + p[1] * s - (-5.0)) <= 1.0, (side, p)
        assert abs(abs(q[0]) * s + q[1] * s - (-9.0)) <= 1.0, (side, q)


def test_s1_mask_on_another_grid_is_refused() -> None:
    fv, s1, _ = _block_volume()
    with pytest.raises(GeometryError, match="s1: mask shape"):
        detect_landmarks(fv, endplate_rms_mm=0.5, s1=s1[:-1])

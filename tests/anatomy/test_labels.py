"""Label maps: scheme registry, detection, union, resampling onto the CT grid, bad input.

Independent references: voxel counts taken straight from the files with nibabel and the codes
stated in the data's SOURCE.md and in issue 3; the two published forms of the same prediction
(v1 multilabel and folder of masks) must agree; a label map upsampled to 1.5 mm by repetition
must come back exactly onto the 3 mm grid.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from alarscrew.anatomy.labels import (
    CANONICAL_STRUCTURES,
    available_schemes,
    describe_labels,
    detect_scheme,
    get_scheme,
    load_labels,
    resample_labels,
)
from alarscrew.errors import InputError, LabelMapError
from alarscrew.io import load_ct, load_image
from alarscrew.io.image import Image
from alarscrew.io.nifti import save_nifti
from tests.conftest import ATLAS_CASES


@pytest.fixture(scope="module")
def ct(real_ct_dir: Path) -> Image:
    return load_ct(real_ct_dir / "ct.nii.gz")


def _raw(path: Path) -> np.ndarray:
    return np.asarray(nib.load(str(path)).dataobj)


def test_registry_codes_match_the_published_class_maps() -> None:
    assert set(available_schemes()) >= {"totalseg_v2", "totalseg_v1", "totalseg_masks",
                                        "verse", "atlas"}
    v2, v1, verse = get_scheme("totalseg_v2"), get_scheme("totalseg_v1"), get_scheme("verse")
    # issue 3 / SOURCE.md: v2 25 sacrum, 26 S1, 27 L5, 65-68 iliac vessels, 77/78 hips, 79 cord
    assert v2.structures["sacrum"] == (25,)
    assert v2.structures["s1"] == (26,)
    assert v2.structures["l5"] == (27,)
    assert v2.structures["spinal_cord"] == (79,)
    assert [v2.structures[f"iliac_{k}"] for k in ("artery_left", "artery_right", "vena_left",
                                                  "vena_right")] == [(65,), (66,), (67,), (68,)]
    assert (v2.structures["hip_left"], v2.structures["hip_right"]) == ((77,), (78,))
    # v1: 92 sacrum, 18 L5, 51-54 iliac vessels, 90/91 hips, 88/89 femurs
    assert v1.structures["sacrum"] == (92,)
    assert v1.structures["l5"] == (18,)
    assert (v1.structures["hip_left"], v1.structures["femur_right"]) == ((90,), (89,))
    assert len(v1.labels) == 104
    assert len(v2.labels) == 117
    # VerSe: 20-24 L1-L5, 25 L6 (not mapped), 26 sacrum, 28 T13
    assert verse.structures["l1"] == (20,)
    assert verse.structures["l5"] == (24,)
    assert verse.structures["sacrum"] == (26,)
    assert verse.labels[28] == "T13"
    assert get_scheme("atlas").structures == v2.structures
    for name in available_schemes():
        s = get_scheme(name)
        assert set(s.structures) | set(s.files) <= set(CANONICAL_STRUCTURES)
    with pytest.raises(InputError, match=r"unknown label scheme 'v3'.*totalseg_v2"):
        get_scheme("v3")


def test_totalseg_v2_real(real_ct_dir: Path, ct: Image,
                          caplog: pytest.LogCaptureFixture) -> None:
    path = real_ct_dir / "vertebrae.nii.gz"
    caplog.set_level(logging.INFO)
    masks = load_labels([path], ct)
    assert list(masks) == ["s1", "l5", "l4", "l3", "l2", "l1"]
    raw = _raw(path)
    for name, code in [("s1", 26), ("l5", 27), ("l1", 31)]:
        assert masks[name].array.dtype == bool
        assert masks[name].is_label
        np.testing.assert_array_equal(masks[name].array, raw == code)
        assert masks[name].same_grid(ct)
    assert masks["s1"].meta["schemes"] == {str(path): "totalseg_v2"}
    assert masks["s1"].meta["scheme_detected"] == {str(path): True}
    assert "label scheme totalseg_v2 (detected)" in caplog.text
    (line,) = describe_labels(masks)
    assert line.startswith(f"{path}: scheme totalseg_v2 detected (6 structures")
    assert line.endswith("structures: s1, l5, l4, l3, l2, l1")


def test_totalseg_v1_float64_and_folder_of_masks_agree(real_ct_dir: Path, ct: Image) -> None:
    v1_path = real_ct_dir / "total_v1.nii.gz"
    raw = _raw(v1_path)
    assert raw.dtype == np.float64  # published as float64 (SOURCE.md)
    multi = load_labels([v1_path], ct)
    assert multi["sacrum"].meta["schemes"] == {str(v1_path): "totalseg_v1"}
    np.testing.assert_array_equal(multi["sacrum"].array, raw == 92)
    np.testing.assert_array_equal(multi["hip_right"].array, raw == 91)
    assert "s1" not in multi
    assert "spinal_cord" not in multi
    folder = load_labels([real_ct_dir / "total_v1_masks"], ct)
    assert set(folder) == {"sacrum", "l5", "l4", "hip_left", "hip_right", "iliac_artery_left",
                           "iliac_artery_right", "iliac_vena_left", "iliac_vena_right",
                           "femur_left", "femur_right"}
    for name, mask in folder.items():  # the two published forms of one prediction agree
        np.testing.assert_array_equal(mask.array, multi[name].array, err_msg=name)


@pytest.mark.parametrize("case", ["s02", "s31", "s63"])
def test_atlas_cases(atlas_dir: Path, case: str) -> None:
    ct = load_ct(atlas_dir / f"{case}_ct.nii.gz")
    path = atlas_dir / f"{case}_labels.nii.gz"
    raw = _raw(path)
    for scheme in (None, "atlas"):
        masks = load_labels([path], ct, scheme=scheme)
        assert list(masks) == ["sacrum", "hip_left", "hip_right"]
        np.testing.assert_array_equal(masks["sacrum"].array, raw == 25)
    # RAS: the left hip lies at smaller x than the right hip
    lx = ct.ijk_to_ras(np.argwhere(raw == 77).mean(axis=0))[0]
    rx = ct.ijk_to_ras(np.argwhere(raw == 78).mean(axis=0))[0]
    assert lx < rx


def test_several_files_are_united_by_structure(real_ct_dir: Path, ct: Image) -> None:
    a, b = real_ct_dir / "vertebrae.nii.gz", real_ct_dir / "total_v1.nii.gz"
    masks = load_labels([a, b], ct)
    np.testing.assert_array_equal(masks["l5"].array, (_raw(a) == 27) | (_raw(b) == 18))
    assert masks["l5"].meta["schemes"] == {str(a): "totalseg_v2", str(b): "totalseg_v1"}
    assert masks["sacrum"].meta["sources"] == [str(b)]
    assert masks["s1"].meta["sources"] == [str(a)]


def test_verse_numbering_is_detected(real_ct_dir: Path, ct: Image, tmp_path: Path) -> None:
    v2 = _raw(real_ct_dir / "vertebrae.nii.gz")
    verse = np.zeros_like(v2)
    for v2_code, verse_code in [(27, 24), (28, 23), (29, 22), (30, 21), (31, 20), (26, 26),
                                (32, 19)]:  # L5..L1, S1 -> sacrum, T12
        verse[v2 == v2_code] = verse_code
    path = save_nifti(ct.with_array(verse, is_label=True), tmp_path / "verse_seg.nii.gz")
    det = detect_scheme(load_image(path, is_label=True))
    assert det.scheme == "verse"
    masks = load_labels([path], ct)
    np.testing.assert_array_equal(masks["l5"].array, v2 == 27)
    np.testing.assert_array_equal(masks["sacrum"].array, v2 == 26)
    assert masks["l5"].meta["warnings"] == []
    # a transitional L6 (VerSe 25) between L5 and the sacrum is reported, not hidden
    verse[(v2 == 26) & (np.indices(v2.shape)[2] == np.argwhere(v2 == 26)[:, 2].max())] = 25
    path6 = save_nifti(ct.with_array(verse, is_label=True), tmp_path / "verse_l6.nii.gz")
    masks6 = load_labels([path6], ct, scheme="verse")
    assert "L6" in masks6["l5"].meta["warnings"][0]
    assert any(line.startswith("warning:") and "L6" in line for line in describe_labels(masks6))


def test_custom_mapping(real_ct_dir: Path, ct: Image, tmp_path: Path) -> None:
    mapping = tmp_path / "map.json"
    mapping.write_text(json.dumps({"s1": 26, "l5": [27, 28]}))
    masks = load_labels([real_ct_dir / "vertebrae.nii.gz"], ct, mapping=mapping)
    raw = _raw(real_ct_dir / "vertebrae.nii.gz")
    assert list(masks) == ["s1", "l5"]
    np.testing.assert_array_equal(masks["l5"].array, np.isin(raw, [27, 28]))
    bad_cases = {
        "unknown.json": ({"pelvis": [1]}, "column 'pelvis'.*unknown structure"),
        "nonint.json": ({"sacrum": ["25"]}, "column 'sacrum'.*positive integer"),
    }
    for name, (content, match) in bad_cases.items():
        (tmp_path / name).write_text(json.dumps(content))
        with pytest.raises(InputError, match=match):
            load_labels([real_ct_dir / "vertebrae.nii.gz"], ct, mapping=tmp_path / name)
    (tmp_path / "broken.json").write_text("{sacrum: 25")
    with pytest.raises(InputError, match=r"broken\.json: not a readable JSON"):
        load_labels([real_ct_dir / "vertebrae.nii.gz"], ct, mapping=tmp_path / "broken.json")
    with pytest.raises(InputError, match="not both"):
        load_labels([real_ct_dir / "vertebrae.nii.gz"], ct, scheme="verse", mapping=mapping)


def test_1p5mm_label_map_is_resampled_onto_the_3mm_ct(real_ct_dir: Path, ct: Image,
                                                      tmp_path: Path) -> None:
    raw = _raw(real_ct_dir / "vertebrae.nii.gz")
    fine = np.repeat(np.repeat(np.repeat(raw, 2, 0), 2, 1), 2, 2)
    aff = ct.affine.copy()
    aff[:3, :3] = ct.affine[:3, :3] / 2
    aff[:3, 3] = ct.ijk_to_ras(np.array([-0.25, -0.25, -0.25]))  # sub-voxel centres
    path = save_nifti(Image(fine, aff, is_label=True), tmp_path / "fine.nii.gz")
    masks = load_labels([path], ct)
    np.testing.assert_array_equal(masks["l5"].array, raw == 27)  # exact: NN of a repetition
    assert masks["l5"].same_grid(ct)


def test_flipped_orientation_label_map(real_ct_dir: Path, ct: Image, tmp_path: Path) -> None:
    raw = _raw(real_ct_dir / "vertebrae.nii.gz")
    flipped = raw[::-1, ::-1, :]  # stored LPS-like: i and j reversed
    aff = ct.affine.copy()
    aff[:3, 0] *= -1
    aff[:3, 1] *= -1
    aff[:3, 3] = ct.ijk_to_ras(np.array([raw.shape[0] - 1, raw.shape[1] - 1, 0]))
    path = save_nifti(Image(flipped, aff, is_label=True), tmp_path / "flip.nii.gz")
    np.testing.assert_array_equal(load_labels([path], ct)["s1"].array, raw == 26)


def test_label_map_of_another_scan_is_refused(real_ct_dir: Path, ct: Image,
                                              tmp_path: Path) -> None:
    raw = _raw(real_ct_dir / "vertebrae.nii.gz")
    aff = ct.affine.copy()
    aff[:3, 3] += [0.0, 0.0, 400.0]  # 400 mm higher: no overlap
    path = save_nifti(Image(raw, aff, is_label=True), tmp_path / "other.nii.gz")
    with pytest.raises(LabelMapError, match=r"other\.nii\.gz: label map does not fit the CT: "
                                            r"only 0% .*Label map: shape .*CT .*shape"):
        load_labels([path], ct)
    with pytest.raises(LabelMapError, match="does not fit"):
        resample_labels(load_image(path, is_label=True), ct)


def test_whole_scan_labels_fit_a_cropped_ct(real_ct_dir: Path, ct: Image) -> None:
    crop_ijk = (slice(30, 90), slice(20, 80), slice(0, 40))  # a pelvis crop of the CT
    aff = ct.affine.copy()
    aff[:3, 3] = ct.ijk_to_ras(np.array([30, 20, 0]))
    small = Image(ct.array[crop_ijk], aff)
    raw = _raw(real_ct_dir / "total_v1.nii.gz")
    masks = load_labels([real_ct_dir / "total_v1.nii.gz"], small)
    np.testing.assert_array_equal(masks["sacrum"].array, raw[crop_ijk] == 92)


def test_bad_label_inputs(real_ct_dir: Path, ct: Image, tmp_path: Path) -> None:
    zeros = save_nifti(ct.with_array(np.zeros(ct.shape, np.uint8), is_label=True),
                       tmp_path / "zeros.nii.gz")
    with pytest.raises(LabelMapError, match="all zeros"):
        load_labels([zeros], ct)
    frac = np.zeros(ct.shape)
    frac[5, 5, 5] = 25.5
    path = tmp_path / "frac.nii.gz"
    nib.save(nib.Nifti1Image(frac, ct.affine), str(path))
    with pytest.raises(LabelMapError, match=r"non-integer value 25\.5"):
        load_labels([path], ct)
    odd = np.zeros(ct.shape, np.int16)
    odd[10:12, 10:12, 10:12] = 200  # a code no scheme defines
    path = save_nifti(ct.with_array(odd, is_label=True), tmp_path / "odd.nii.gz")
    with pytest.raises(LabelMapError, match=r"no known label scheme explains codes \[200\]"):
        load_labels([path], ct)
    with pytest.raises(LabelMapError, match="not defined by scheme 'verse'"):
        load_labels([real_ct_dir / "total_v1.nii.gz"], ct, scheme="verse")
    with pytest.raises(LabelMapError, match="not found"):
        load_labels([tmp_path / "missing.nii.gz"], ct)
    with pytest.raises(LabelMapError, match="no structure mask found"):
        load_labels([tmp_path], ct)  # a folder holding no structure-named mask
    with pytest.raises(InputError, match="no label file"):
        load_labels([], ct)


def test_single_binary_mask_named_by_structure(ct: Image, tmp_path: Path) -> None:
    lesion = np.zeros(ct.shape, np.uint8)
    lesion[60:64, 50:53, 20:22] = 1
    path = save_nifti(ct.with_array(lesion, is_label=True), tmp_path / "lesion.nii.gz")
    masks = load_labels(path, ct)
    assert list(masks) == ["lesion"]
    assert int(masks["lesion"].array.sum()) == 4 * 3 * 2


@pytest.mark.parametrize("rotate", [False, True])
def test_resampling_matches_brute_force_nearest_neighbour(rotate: bool) -> None:
    """Both paths (axis-aligned indexing, scipy for rotated grids) against a per-voxel
    reference: CT voxel centre -> RAS -> label voxel index, rounded, looked up."""
    rng = np.random.default_rng(7)
    src = rng.integers(0, 5, (20, 18, 16)).astype(np.uint8)
    lab_aff = np.diag([1.5, 1.5, 1.5, 1.0])
    lab_aff[:3, 3] = [0.3, -0.2, 0.1]
    ct_aff = np.diag([2.9, -3.1, 2.7, 1.0])
    ct_aff[:3, 3] = [-4.0, 30.0, -2.0]
    if rotate:
        a = np.radians(10.0)
        rot = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
        ct_aff[:3, :3] = rot @ ct_aff[:3, :3]
    ct = Image(np.zeros((12, 11, 13), np.int16), ct_aff)
    out = resample_labels(Image(src, lab_aff, is_label=True), ct)
    ijk_ct = np.indices(ct.shape).reshape(3, -1).T
    ras = ijk_ct @ ct_aff[:3, :3].T + ct_aff[:3, 3]
    ijk_lab = np.linalg.solve(lab_aff[:3, :3], (ras - lab_aff[:3, 3]).T).T
    near = np.floor(ijk_lab + 0.5).astype(int)
    inside = np.all((near >= 0) & (near < src.shape), axis=1)
    ref = np.zeros(len(near), np.uint8)
    ref[inside] = src[tuple(near[inside].T)]
    frac = np.abs(ijk_lab - np.round(ijk_lab))
    tie = np.any(np.abs(frac - 0.5) < 1e-6, axis=1)  # exact half-way: either neighbour is NN
    assert not tie.any()  # the offsets above avoid ties, so every voxel is compared
    np.testing.assert_array_equal(out.array.reshape(-1), ref)


@pytest.mark.slow
@pytest.mark.parametrize("case", ATLAS_CASES)
def test_every_atlas_case_is_detected_as_v2_numbering(atlas_dir: Path, case: str) -> None:
    lab = load_image(atlas_dir / f"{case}_labels.nii.gz", is_label=True)
    det = detect_scheme(lab)
    # SOURCE.md: TotalSegmentator v2 numbering, 25 sacrum, 77 hip_left, 78 hip_right; the
    # left/right check of the detector passes only when hip_left lies at smaller RAS x
    assert det.scheme == "totalseg_v2"
    assert "0 order violations" in det.reason


def test_slicer_seg_nrrd_matched_by_segment_names(real_ct_dir: Path, ct: Image,
                                                  tmp_path: Path) -> None:
    import nrrd

    from alarscrew.io.orientation import ras_to_lps_affine

    raw = _raw(real_ct_dir / "total_v1.nii.gz")
    seg = np.zeros(raw.shape, np.uint8)
    for value, code in [(1, 92), (2, 18), (3, 90), (4, 5)]:  # sacrum, L5, hip_left, liver
        seg[raw == code] = value
    aff = ras_to_lps_affine(ct.affine)
    header = {"space": "left-posterior-superior", "space directions": aff[:3, :3].T,
              "space origin": aff[:3, 3]}
    for n, name in enumerate(["Sacrum", "L5 vertebra", "Left hip", "Liver"]):
        header |= {f"Segment{n}_Name": name, f"Segment{n}_LabelValue": str(n + 1),
                   f"Segment{n}_Layer": "0"}
    path = tmp_path / "Segmentation.seg.nrrd"
    nrrd.write(str(path), seg, header, index_order="F")
    masks = load_labels([path], ct)
    assert list(masks) == ["sacrum", "l5", "hip_left"]  # "Liver" is not a structure we use
    np.testing.assert_array_equal(masks["sacrum"].array, raw == 92)
    np.testing.assert_array_equal(masks["hip_left"].array, raw == 90)
    assert masks["l5"].meta["schemes"] == {str(path): "slicer_segments"}
    header["Segment0_Name"], header["Segment1_Name"], header["Segment2_Name"] = "a", "b", "c"
    nrrd.write(str(tmp_path / "unnamed.seg.nrrd"), seg, header, index_order="F")
    with pytest.raises(LabelMapError, match=r"no segment name matches.*Liver"):
        load_labels([tmp_path / "unnamed.seg.nrrd"], ct)
    header["Segment3_Layer"] = "1"
    nrrd.write(str(tmp_path / "layers.seg.nrrd"), seg, header, index_order="F")
    with pytest.raises(LabelMapError, match="layer 1: overlapping segments"):
        load_labels([tmp_path / "layers.seg.nrrd"], ct)

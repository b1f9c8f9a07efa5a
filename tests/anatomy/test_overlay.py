"""The anatomy overlay PNG (alarscrew.anatomy.overlay): every landmark visible where it is.

References, independent of the drawing code:
- landmark positions: the phantom's analytic truth for the supplied ``right.entry`` and the
  anatomy result for the others, mapped to PNG pixels through each panel's matplotlib data
  transform (world RAS mm -> display pixels; PNG row = height - display y);
- the panel a landmark belongs to: recomputed here as the panel whose plane (world axis and
  position) is nearest to the landmark;
- colours: ``LANDMARK_STYLE`` face colours, compared with a tolerance of 6/255 per channel in a
  7 x 7 pixel window around the projected centre (the smallest marker is 7 pt = 9.7 px wide).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

from alarscrew import DISCLAIMER
from alarscrew.anatomy import analyze_anatomy, render_overlay, run_anatomy
from alarscrew.anatomy.overlay import DPI, FIGSIZE_IN, LANDMARK_STYLE, build_overlay
from alarscrew.errors import OutputExistsError
from alarscrew.phantom import make_phantom, write_phantom
from tests.conftest import run_cli

PNG_SHAPE = (round(FIGSIZE_IN[1] * DPI), round(FIGSIZE_IN[0] * DPI))
COLOUR_TOL = 6  # per channel, 0-255
HALF_WINDOW_PX = 3


@pytest.fixture(scope="module")
def phantom_anatomy():
    """2 mm phantom with 30 % S1 destruction, S1/L5 labels, lesion and one supplied landmark."""
    ph = make_phantom(voxel_mm=2.0, body_destruction_percent=30.0)
    lab = ph.labels
    labels = {"s1": lab.with_array(lab.array == 26, is_label=True),
              "l5": lab.with_array(lab.array == 27, is_label=True), "lesion": ph.lesion}
    supplied = {"right.entry": np.asarray(ph.truth["landmarks"]["right.entry"], float)}
    return ph, analyze_anatomy(ph.ct, labels=labels, landmarks=supplied)


def _rgb(path: Path) -> np.ndarray:
    return np.asarray(PILImage.open(path).convert("RGB"), dtype=int)


def _check_markers(anatomy, png: Path, *, title: str | None = None) -> dict[str, tuple]:
    """Every landmark: its colour at its projected pixel on its nearest panel.

    Returns the pixel (column, row) per landmark on that panel.
    """
    ov = build_overlay(anatomy, title=title)
    rgb = _rgb(png)
    assert rgb.shape[:2] == PNG_SHAPE
    height = rgb.shape[0]
    where = {}
    for name, lm in anatomy.landmarks.items():
        p = np.asarray(lm.xyz_ras_mm, float)
        dist = [abs(p[pan.normal_axis] - pan.position_mm) for pan in ov.panels]
        k = int(np.argmin(dist))
        pan = ov.panels[k]
        col, y = pan.axes.transData.transform((p[pan.h_axis], p[pan.v_axis]))
        c, r = round(col), round(height - y)
        kind = name.rpartition(".")[2]
        want = np.array(LANDMARK_STYLE[kind][1]) * 255
        win = rgb[r - HALF_WINDOW_PX:r + HALF_WINDOW_PX + 1,
                  c - HALF_WINDOW_PX:c + HALF_WINDOW_PX + 1]
        hit = np.all(np.abs(win - want) <= COLOUR_TOL, axis=-1)
        assert hit.any(), (name, k, (c, r), win[HALF_WINDOW_PX, HALF_WINDOW_PX])
        # the figure records the same home panel and the same point
        placed = [pl for pl in ov.placements if pl.name == name and pl.panel == k]
        assert len(placed) == 1, name
        assert placed[0].h_mm == pytest.approx(p[pan.h_axis])
        where[name] = (k, c, r)
    return where


def test_png_size_reproducible_and_every_landmark_visible(phantom_anatomy, tmp_path) -> None:
    ph, an = phantom_anatomy
    assert len(an.landmarks) == 15
    assert an.landmarks["right.entry"].supplied
    a = render_overlay(an, tmp_path / "a.png", title="phantom")
    b = render_overlay(an, tmp_path / "b.png", title="phantom")
    assert a.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert a.read_bytes() == b.read_bytes()
    where = _check_markers(an, a, title="phantom")
    assert set(where) == set(an.landmarks)
    # radiological convention: on the axial facet panel [1] the patient's right entry maps
    # left of the left entry; on the midsagittal panel [6] the (anterior) promontory maps left
    # of the canal. Positions from the truth, pixels from the panels' transforms.
    truth = {k: np.asarray(v, float) for k, v in ph.truth["landmarks"].items()}
    ov = build_overlay(an)

    def column(panel: int, name: str) -> float:
        pan = ov.panels[panel]
        return pan.axes.transData.transform((truth[name][pan.h_axis],
                                             truth[name][pan.v_axis]))[0]

    assert truth["right.entry"][0] > truth["left.entry"][0]
    assert column(0, "right.entry") < column(0, "left.entry")
    assert truth["promontory"][1] > truth["canal"][1]
    assert column(5, "promontory") < column(5, "canal")


def test_panels_carry_world_axes_orientation_and_disclaimer(phantom_anatomy) -> None:
    _, an = phantom_anatomy
    ov = build_overlay(an)
    texts = [t.get_text() for t in ov.figure.texts]
    assert DISCLAIMER in texts
    assert any("all 15 landmarks found" in t for t in texts)
    for pan in ov.panels:
        ax = pan.axes
        assert ax.get_xlabel() == f"RAS {'xyz'[pan.h_axis]} (mm)"
        assert ax.get_ylabel() == f"RAS {'xyz'[pan.v_axis]} (mm)"
        x0, x1 = ax.get_xlim()
        assert x0 > x1  # R (+x) / A (+y) on the image left
        letters = {t.get_text() for t in ax.texts if len(t.get_text()) == 1}
        want = {0: {"R", "L"}, 1: {"A", "P"}, 2: {"S", "I"}}
        assert want[pan.h_axis] | want[pan.v_axis] <= letters
    # the landmark planes pass through their landmarks: the facet/entry panel through the mean
    # height of the four, the side panels through each entry (world mm)
    p = {n: an.point(n) for n in an.landmarks}
    z_facet = np.mean([p[f"{s}.{k}"][2] for s in ("left", "right")
                       for k in ("sap_facet", "entry")])
    assert ov.panels[0].position_mm == pytest.approx(z_facet)
    assert ov.panels[4].position_mm == pytest.approx(p["right.entry"][0])
    assert ov.panels[6].position_mm == pytest.approx(p["left.entry"][0])


def test_missing_landmarks_are_named_and_planes_fall_back(phantom_anatomy) -> None:
    """Without the right entry/facet the right sagittal plane goes through the pedicle."""
    _, an = phantom_anatomy
    gone = ("right.entry", "right.sap_facet", "left.s1_foramen")
    kept = {k: v for k, v in an.landmarks.items() if k not in gone}
    ov = build_overlay(dataclasses.replace(an, landmarks=kept))
    assert ov.panels[4].position_mm == pytest.approx(an.point("right.pedicle")[0])
    assert {pl.name for pl in ov.placements} == set(kept)
    table = next(t.get_text() for t in ov.figure.texts if "not found:" in t.get_text())
    assert all(g in table for g in gone)


def test_body_model_outline_lies_on_the_model(phantom_anatomy) -> None:
    """The dashed S1 body model outline (midsagittal panel [6]) follows the model's faces.

    Each contour vertex, lifted back to world RAS (the panel's plane) and into the S1 frame,
    lies within 0.6 mm (sampling step 0.4 mm) of the elliptic wall or the top/bottom face.
    """
    from matplotlib.colors import to_rgba

    from alarscrew.anatomy.overlay import BODY_MODEL_COLOUR

    _, an = phantom_anatomy
    model = an.provenance["s1_body_model"]
    a, b, h = model["semi_x_mm"], model["semi_y_mm"], model["height_mm"]
    top = model.get("top_mm", 0.0)
    ov = build_overlay(an)
    pan = ov.panels[5]
    gold = np.array(to_rgba(BODY_MODEL_COLOUR))
    verts = [p.vertices for c in pan.axes.collections
             if hasattr(c, "get_paths") and len(c.get_edgecolor())
             and np.allclose(c.get_edgecolor()[0], gold) for p in c.get_paths()]
    assert verts, "no body model outline on the midsagittal panel"
    hv = np.concatenate(verts)
    world = np.zeros((len(hv), 3))
    world[:, pan.normal_axis] = pan.position_mm
    world[:, pan.h_axis], world[:, pan.v_axis] = hv[:, 0], hv[:, 1]
    f = an.frame.to_frame_mm(world)
    r = np.sqrt((f[:, 0] / a) ** 2 + (f[:, 1] / b) ** 2)
    wall_mm = np.abs(r - 1.0) * min(a, b)
    face_mm = np.minimum(np.abs(f[:, 2] - top), np.abs(f[:, 2] - (top - h)))
    assert np.all(np.minimum(wall_mm, face_mm) <= 0.6)
    assert any("S1 body model" in t.get_text() for t in ov.figure.legends[0].get_texts())


def test_refuses_to_overwrite(phantom_anatomy, tmp_path) -> None:
    _, an = phantom_anatomy
    out = render_overlay(an, tmp_path / "o.png")
    before = out.read_bytes()
    with pytest.raises(OutputExistsError):
        render_overlay(an, out)
    assert out.read_bytes() == before
    assert sorted(q.name for q in tmp_path.iterdir()) == ["o.png"]


def test_cli_png_on_phantom(tmp_path, capsys) -> None:
    ph = make_phantom(voxel_mm=2.0)
    write_phantom(ph, tmp_path / "ph")
    out = tmp_path / "out"
    code, _, err = run_cli(["anatomy", str(tmp_path / "ph" / "ct.nii.gz"), "--seg",
                            str(tmp_path / "ph" / "labels.nii.gz"), "--out", str(out),
                            "--png"], capsys)
    assert code == 0, err
    assert _rgb(out / "anatomy_overlay.png").shape[:2] == PNG_SHAPE


@pytest.mark.realdata
@pytest.mark.parametrize("seg", ["total_v1.nii.gz", "vertebrae.nii.gz"])
def test_real_scan_every_landmark_visible(real_ct_dir: Path, tmp_path, seg: str) -> None:
    an = run_anatomy(real_ct_dir / "ct.nii.gz", seg_paths=[real_ct_dir / seg])
    png = render_overlay(an, tmp_path / "overlay.png", title=seg)
    where = _check_markers(an, png, title=seg)
    assert len(where) == len(an.landmarks) >= 13

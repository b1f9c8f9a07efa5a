"""The planning report (issue 5): content, de-identification, offline 3D view in real Chromium.

Browser tests need Debian's ``chromium`` (``make system-deps``): they skip when it is missing
and fail under CI=true. Chromium runs offline (see alarscrew.report.browser); its net log is
checked for requests started by the page, with a control page that does make such requests so
that the check is shown to be able to fail.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import markupsafe
import numpy as np
import pytest

from alarscrew import DISCLAIMER
from alarscrew.errors import InputError, OutputExistsError
from alarscrew.io.image import Image
from alarscrew.report.browser import find_chromium, net_requests, run_chromium
from alarscrew.report.plan_data import load_plan_dir
from alarscrew.report.plan_figures import reformat
from alarscrew.report.plan_report import build_plan_report, render_plan_report
from alarscrew.report.plan_scene import mask_mesh_ras
from tests.conftest import run_cli
from tests.report.test_plan_fixture import (  # noqa: F401
    build_phantom_plan_dir,
    build_planner_plan_dir,
    copy_plan_dir,
    real_plan_dir,
)

MAX_HTML_BYTES = 15 * 1024 * 1024


def _need_chromium() -> str:
    exe = find_chromium()
    if exe is None:
        msg = "chromium not installed (make system-deps installs Debian's chromium)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but {msg}")
        pytest.skip(msg)
    return exe


@pytest.fixture(scope="module")
def report_dir(real_plan_dir: Path, tmp_path_factory: pytest.TempPathFactory  # noqa: F811
               ) -> Path:
    d = copy_plan_dir(real_plan_dir, tmp_path_factory.mktemp("rep") / "plan")
    build_plan_report(d)
    return d


def test_report_content_and_size(report_dir: Path) -> None:
    html_path = report_dir / "report.html"
    html = html_path.read_text(encoding="utf-8")
    assert html_path.stat().st_size < MAX_HTML_BYTES
    assert html.count(DISCLAIMER) >= 2  # banner and closing section
    # markup outside scripts fetches nothing from outside (plotly.js holds URL strings for its
    # optional links; what the page actually requests is checked in Chromium's net log below)
    markup = re.sub(r"<script\b[^>]*>.*?</script>", "", html, flags=re.S | re.I)
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:|//)""", markup, re.I)
    assert "<script src" not in html
    assert markup.count("data:image/png;base64,") == 2 + 4  # two maps, four screw figures
    assert 'id="scene3d-plot"' in html
    for word in ("Left side", "Right side", "nominal", "optimal", "Safe-length maps",
                 "Alternatives", "Decision summary", "7.0 x 55 mm"):
        assert word in html, word
    # de-identified by default: no input path in the page
    plan = json.loads((report_dir / "plan.json").read_text())
    assert plan["inputs"]["ct"] not in html
    assert "ct.nii.gz" not in html


def test_show_identifiers(report_dir: Path) -> None:
    pdir = load_plan_dir(report_dir)
    from alarscrew.report.plan_report import _load_ct

    html = render_plan_report(pdir, _load_ct(pdir), show_identifiers=True)
    assert json.loads((report_dir / "plan.json").read_text())["inputs"]["ct"] in html


def test_no_overwrite_without_force(report_dir: Path) -> None:
    with pytest.raises(OutputExistsError, match="--force"):
        build_plan_report(report_dir)


def test_missing_ct_is_named(real_plan_dir: Path, tmp_path: Path) -> None:  # noqa: F811
    d = copy_plan_dir(real_plan_dir, tmp_path / "plan")
    plan = json.loads((d / "plan.json").read_text())
    plan["inputs"]["ct"] = str(tmp_path / "nowhere" / "ct.nii.gz")
    (d / "plan.json").write_text(json.dumps(plan))
    with pytest.raises(InputError, match=r"inputs\.ct"):
        build_plan_report(d)
    assert not (d / "report.html").exists()


@pytest.mark.parametrize("flip", [False, True])
def test_reformat_samples_world_positions(flip: bool) -> None:
    """CT = linear function of world position (HU = 2x - y + 3z) on an oblique grid:
    trilinear sampling is exact for it, so every pixel must equal the function at its
    world position, whatever the plane (independent of the affine handling)."""
    rot = np.array([[0.9, -0.3, 0.316227766], [0.3, 0.95, 0.0], [-0.3, 0.1, 0.948683298]])
    q, _ = np.linalg.qr(rot)
    aff = np.eye(4)
    aff[:3, :3] = q @ np.diag([0.7, 0.8, 1.1]) * (np.array([-1, 1, 1]) if flip else 1)
    aff[:3, 3] = [5.0, -3.0, 2.0]
    shape = (90, 90, 80)
    ijk = np.stack(np.meshgrid(*(np.arange(s) for s in shape), indexing="ij"), axis=-1)
    img0 = Image(np.zeros(shape, np.float32), aff)
    ras = img0.ijk_to_ras(ijk)
    ct = img0.with_array((2 * ras[..., 0] - ras[..., 1] + 3 * ras[..., 2]).astype(np.float32))
    centre = img0.ijk_to_ras(np.array([45.0, 45.0, 40.0]))
    h = np.array([0.6, 0.8, 0.0])
    v = np.array([0.0, 0.0, 1.0])
    vals, pts = reformat(ct, centre, h, v, half_fov_mm=20.0, pixel_mm=0.5)
    expect = 2 * pts[..., 0] - pts[..., 1] + 3 * pts[..., 2]
    ok = np.isfinite(vals)
    assert ok.mean() > 0.9
    assert np.allclose(vals[ok], expect[ok], atol=1e-2)
    # orientation: row 0 is +v (top), column 0 is -h (left)
    assert pts[0, 0] @ v > pts[-1, 0] @ v
    assert pts[0, 0] @ h < pts[0, -1] @ h


def test_mask_mesh_lands_in_world_mm() -> None:
    """A sphere mask (radius 20 mm) on an oblique 0.8 mm grid: mesh vertices lie 20 mm from
    the sphere's world centre within the 2 mm mesh voxel."""
    aff = np.eye(4)
    c, s = np.cos(0.4), np.sin(0.4)
    aff[:3, :3] = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]]) * 0.8
    aff[:3, 3] = [-30.0, 12.0, 100.0]
    shape = (70, 70, 70)
    grid = Image(np.zeros(shape, bool), aff, is_label=True)
    ijk = np.stack(np.meshgrid(*(np.arange(n) for n in shape), indexing="ij"), axis=-1)
    centre = grid.ijk_to_ras(np.array([34.0, 36.0, 33.0]))
    mask = np.linalg.norm(grid.ijk_to_ras(ijk) - centre, axis=-1) <= 20.0
    verts, faces = mask_mesh_ras(grid.with_array(mask))
    r = np.linalg.norm(verts - centre, axis=1)
    assert abs(np.median(r) - 20.0) < 1.0
    assert np.abs(r - 20.0).max() < 2.0
    assert faces.max() < len(verts)


def test_cli_report_json(real_plan_dir: Path, tmp_path: Path,  # noqa: F811
                         capsys: pytest.CaptureFixture[str]) -> None:
    d = copy_plan_dir(real_plan_dir, tmp_path / "plan")
    code, out, err = run_cli(["report", str(d), "--json"], capsys)
    assert code == 0, err
    res = json.loads(out)
    assert Path(res["report_html"]).exists()
    assert res["report_pdf"] is None
    assert any(p.endswith("left_optimal.mrk.json") for p in res["exports"])
    code, out, err = run_cli(["report", str(d), "--quiet"], capsys)
    assert code == 2
    assert "--force" in err
    assert out == ""
    (d / "report.html").unlink()  # exports alone also block a run without --force
    code, _, err = run_cli(["report", str(d), "-q"], capsys)
    assert code == 2
    assert "exports" in err
    assert not (d / "report.html").exists()
    code, _, err = run_cli(["report", str(tmp_path / "missing"), "-q"], capsys)
    assert code == 2
    assert "PLAN_DIR" in err


def test_browser_3d_view_renders_offline(report_dir: Path, tmp_path: Path) -> None:
    """Real headless Chromium, offline: the 3D view (WebGL via SwiftShader) is not blank, the
    screws are drawn, and the page starts no request to the network."""
    _need_chromium()
    shot = tmp_path / "view3d.png"
    log = tmp_path / "net.json"
    url = (report_dir / "report.html").resolve().as_uri() + "#view3d"
    run_chromium(url, screenshot=shot, window_px=(1320, 800), wait_ms=8000, net_log=log)
    from PIL import Image as PILImage

    px = np.asarray(PILImage.open(shot).convert("RGB")).astype(int)
    region = px[60:680, 20:1300]  # the plot area below the section heading
    assert region.std() > 15.0
    assert len(np.unique(region.reshape(-1, 3), axis=0)) > 500
    # optimal screws are green (0.10, 0.75, 0.20): shaded green pixels must be present
    green = (region[..., 1] > region[..., 0] + 50) & (region[..., 1] > region[..., 2] + 50)
    assert green.sum() > 100
    page = [r for r in net_requests(log) if r.from_page and r.external]
    assert page == []


def test_net_log_check_can_fail(tmp_path: Path) -> None:
    """Control: a page with an external image and script shows both as page requests."""
    _need_chromium()
    page = tmp_path / "control.html"
    page.write_text('<html><body><img src="https://example.com/x.png">'
                    '<script src="http://cdn.example.org/a.js"></script>hi</body></html>')
    log = tmp_path / "net.json"
    run_chromium(page.as_uri(), screenshot=tmp_path / "c.png", wait_ms=1500, net_log=log)
    urls = {r.url for r in net_requests(log) if r.from_page and r.external}
    assert urls == {"https://example.com/x.png", "http://cdn.example.org/a.js"}


def test_pdf(real_plan_dir: Path, tmp_path: Path) -> None:  # noqa: F811
    _need_chromium()
    d = copy_plan_dir(real_plan_dir, tmp_path / "plan")
    build_plan_report(d, pdf=True)
    data = (d / "report.pdf").read_bytes()
    assert data.startswith(b"%PDF")
    assert len(re.findall(rb"/Type\s*/Page[^s]", data)) >= 3


def test_report_of_a_planner_plan(real_plan_dir: Path, tmp_path: Path) -> None:  # noqa: F811
    """plan.json written by alarscrew.planning renders: its angles and recommended screws
    appear in the per-side table, and refusals show their reason."""
    d = build_planner_plan_dir(real_plan_dir, tmp_path / "plan")
    html = build_plan_report(d).read_text(encoding="utf-8")
    plan = json.loads((d / "plan.json").read_text())
    for side in ("left", "right"):
        sd = plan["sides"][side]
        opt = sd["optimal"]
        if opt is None:
            assert str(markupsafe.escape(sd["reason"])) in html  # as jinja2 escapes it
            continue
        assert f"{opt['transverse_angle_deg']:.1f}" in html
        rec = opt["recommended_screw"]
        assert f"{rec['diameter_mm']:.1f} x {rec['length_mm']:.0f} mm" in html


@pytest.mark.slow
def test_report_on_phantom(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """End to end on the synthetic phantom (60 % S1 body destruction): planner plan.json ->
    `alarscrew report` -> HTML with the phantom's body loss and both sides' screws."""
    d = build_phantom_plan_dir(tmp_path)
    code, out, err = run_cli(["report", str(d), "--json"], capsys)
    assert code == 0, err
    html = Path(json.loads(out)["report_html"]).read_text(encoding="utf-8")
    plan = json.loads((d / "plan.json").read_text())
    assert plan["body_loss_percent"] > 50.0
    assert f"{plan['body_loss_percent']:.1f}" in html
    for side in ("left", "right"):
        assert f"{side.capitalize()} side" in html
    markup = re.sub(r"<script\b[^>]*>.*?</script>", "", html, flags=re.S | re.I)
    n_figs = sum(plan["sides"][s][k] is not None for s in ("left", "right")
                 for k in ("nominal", "optimal"))
    n_maps = sum(bool(plan["sides"][s]["safe_length_map"]) for s in ("left", "right"))
    assert markup.count("data:image/png;base64,") == n_maps + n_figs


def test_refused_side_and_no_segmentation(real_plan_dir: Path, tmp_path: Path  # noqa: F811
                                          ) -> None:
    """A refused side shows its reason (no figure, no export for it); without segmentations
    the 3D view says that only the sacrum and screws are shown."""
    d = copy_plan_dir(real_plan_dir, tmp_path / "plan")
    plan = json.loads((d / "plan.json").read_text())
    reason = "right ala too narrow: longest safe axis 18.0 mm for a 7 mm screw"
    plan["sides"]["right"].update({"optimal": None, "status": "refused", "reason": reason,
                                   "safe_length_map": None, "safe_window_deg": None})
    plan["inputs"]["seg"] = []
    (d / "plan.json").write_text(json.dumps(plan))
    html = build_plan_report(d).read_text(encoding="utf-8")
    assert f"Status: refused. {reason}" in html
    assert "only the sacrum and screws are shown" in html
    markup = re.sub(r"<script\b[^>]*>.*?</script>", "", html, flags=re.S | re.I)
    assert markup.count("data:image/png;base64,") == 1 + 3  # left map; 3 screws
    from alarscrew.report.exports import write_exports

    names = {p.name for p in write_exports(d).files}
    assert "right_optimal.stl" not in names
    assert "right_nominal.stl" in names

"""The cohort report folder and its self-contained HTML page; the ``cohort report`` command.

The embedded fang2022 cohort is the paper's 7 cases (Fang et al. 2022, Tables 1-2); its
report is checked against the hand transcription in test_cohort_data.py and against the
audit findings the paper's own numbers must produce (e.g. Table 2 prints the pre-operative
VAS mean as 7.3 while the 7 listed values average 50/7 = 7.14).
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from alarscrew import DISCLAIMER, REFERENCE_CITATION
from alarscrew.errors import InputError, OutputExistsError
from alarscrew.report.cohort_report import (
    AuditSummary,
    build_cohort_report,
    omnibus_rows,
    render_cohort_report,
)
from tests.conftest import run_cli
from tests.report.test_cohort_data import TIMEPOINTS, paper_baseline, paper_outcomes_long

EXPECTED_FILES = sorted([
    "cohort_report.html",
    "analysis.json",
    "audit.json",
    "results.md",
    *(f"figures/{v}_trajectories.{f}" for v in ("vas", "odi") for f in ("png", "svg")),
    *(f"tables/{t}.{f}" for t in ("table1_baseline", "table2_outcomes", "table2_comparisons",
                                  "table3_mcid", "table4_eligibility")
      for f in ("md", "html", "csv", "docx")),
    "tables/cohort_tables.docx",
])


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def _assert_offline(html: str) -> None:
    """No resource the browser would fetch: no scripts, links, remote src/href, @import."""
    assert "<script" not in html
    assert "<link" not in html
    assert "@import" not in html
    assert not re.search(r"""(src|href)\s*=\s*["'](?!data:)""", html)
    assert "default-src 'none'" in html  # CSP: the browser refuses any request


@pytest.fixture(scope="module")
def fang_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("rep") / "fang"
    return build_cohort_report("fang2022", out)


def test_embedded_report_files_and_content(fang_report: Path) -> None:
    root = fang_report.parent
    assert _files(root) == EXPECTED_FILES
    html = fang_report.read_text(encoding="utf-8")
    _assert_offline(html)
    assert DISCLAIMER in html
    assert REFERENCE_CITATION in html
    # Hand values of the paper's rows (see test_cohort_tables.py for the working).
    for cell in ("63.6 ± 8.4", "7.1 ± 0.7", "72.3 ± 2.9", "-4.57 [-5.07, -4.08]"):
        assert cell in html
    # Figures are embedded SVG data URIs that decode to the files written beside the page.
    uris = re.findall(r'src="data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)"', html)
    assert [base64.b64decode(u) for u in uris] == [
        (root / "figures" / f"{v}_trajectories.svg").read_bytes() for v in ("vas", "odi")]


def test_embedded_report_lists_the_papers_inconsistencies(fang_report: Path) -> None:
    html = fang_report.read_text(encoding="utf-8")
    # Table 2 prints VAS pre 7.3 ± 1.3; the cases give 50/7 = 7.14 and SD 0.69.
    assert re.search(r"<code>vas\.pre\.mean</code>.*?mismatch.*?7\.3", html, flags=re.S)
    # Text: follow-up mean 14.57; Table 1 gives 106/7 = 15.14.
    assert "<code>follow_up_months.mean</code>" in html
    assert re.search(r"\d+ findings\s+\(\d+ reported quantities\): reported numbers\s+"
                     r"inconsistent with the data", html)
    # The audit's notes say which t test reproduces the stated p.
    assert "reproduced by" in html
    audit = json.loads((fang_report.parent / "audit.json").read_text(encoding="utf-8"))
    quantities = {(f["quantity"], f["kind"]) for f in audit["findings"]}
    assert ("vas.pre.mean", "mismatch") in quantities
    assert html.count("<tr><td><code>") == len(audit["findings"])
    analysis = json.loads((fang_report.parent / "analysis.json").read_text(encoding="utf-8"))
    assert analysis["outcomes"]["vas"]["timepoints"]["pre"]["mean"] == pytest.approx(
        50 / 7, abs=1e-12)


def test_report_files_get_ordinary_permissions(fang_report: Path) -> None:
    import os

    mask = os.umask(0)
    os.umask(mask)
    root = fang_report.parent
    assert root.stat().st_mode & 0o777 == 0o777 & ~mask
    for name in EXPECTED_FILES:
        assert (root / name).stat().st_mode & 0o777 == 0o666 & ~mask, name


def test_report_is_byte_reproducible(fang_report: Path, tmp_path: Path) -> None:
    again = build_cohort_report("fang2022", tmp_path / "again").parent
    first = fang_report.parent
    for name in EXPECTED_FILES:
        assert (first / name).read_bytes() == (again / name).read_bytes(), name


def test_report_is_deidentified_and_leaves_inputs_alone(tmp_path: Path) -> None:
    base = paper_baseline()
    base["patient_name"] = [f"Secret Name {i}" for i in range(7)]
    base_before = base.copy(deep=True)
    long = paper_outcomes_long()
    out = render_cohort_report(tmp_path / "r", baseline=base, outcomes_long=long,
                               timepoints=TIMEPOINTS, source_label="cases.csv")
    assert base.equals(base_before)
    for f in (tmp_path / "r").rglob("*"):
        if f.is_file() and f.suffix != ".docx" and f.suffix != ".png":
            assert "Secret Name" not in f.read_text(encoding="utf-8"), f
    html = out.read_text(encoding="utf-8")
    assert "No comparisons: the statistical analysis was not available" in html
    assert "Not run: no reported summary numbers were given" in html


def test_refuses_to_overwrite_and_leaves_nothing_half_written(tmp_path: Path) -> None:
    out = tmp_path / "r"
    out.mkdir()
    (out / "keep.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(OutputExistsError, match="pass --force"):
        build_cohort_report("fang2022", out)
    assert _files(out) == ["keep.txt"]
    # A failure while building (bad audit finding) leaves neither a folder nor a temp dir.
    bad = AuditSummary("run", "x", findings=({"quantity": "vas.pre.mean"},))
    with pytest.raises(InputError, match="audit finding"):
        render_cohort_report(tmp_path / "new", baseline=paper_baseline(),
                             outcomes_long=paper_outcomes_long(), audit=bad)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]


def test_report_from_a_user_file(tmp_path: Path) -> None:
    """A wide CSV with a 'final' time point, a missing score and T-scores."""
    import hashlib

    src = tmp_path / "my cohort.csv"
    src.write_text(
        "id,age_years,sex,diagnosis,bmd_value,bmd_kind,fused_segments,follow_up_months,"
        "vas_pre,vas_post_3m,vas_final,odi_pre,odi_post_3m,odi_final\n"
        "A01,55,M,tuberculous,-1.2,t_score,L5/S1,24,8,4,2,62,40,20\n"
        "A02,71,F,chronic_pyogenic,-2.1,t_score,L4/L5; L5/S1,18,9,5,,70,44,\n"
        "A03,48,M,other,-0.5,t_score,L5/S1,30,6,3,1,58,30,16\n"
        "A04,66,F,postoperative_pyogenic,-1.0,t_score,L5/S1,14,7,3,3,64,38,21\n",
        encoding="utf-8")
    # What a draft manuscript states. VAS pre 8, 9, 6, 7: mean 7.5, SD sqrt(5/3) = 1.29 ->
    # consistent. VAS 3 mo 4, 5, 3, 3: mean 3.75, so a stated 4.5 is a mismatch (GRIM allows
    # 4.5 = 18/4 at n = 4, so that is the only finding).
    reported = tmp_path / "draft.yaml"
    reported.write_text(
        'source: "draft manuscript"\nn: 4\nvariables:\n  vas:\n    integer: true\n'
        '    scale: [0, 10]\n    timepoints:\n      pre: {mean: "7.5", sd: "1.3"}\n'
        '      post_3m: {mean: "4.5"}\n', encoding="utf-8")
    before = src.read_bytes()
    html = build_cohort_report(src, tmp_path / "rep", reported=reported).read_text(
        encoding="utf-8")
    assert src.read_bytes() == before
    assert "my cohort.csv" in html
    assert str(tmp_path) not in html  # the file name only, never the folder path
    assert hashlib.sha256(before).hexdigest() in html
    audit = json.loads((tmp_path / "rep" / "audit.json").read_text(encoding="utf-8"))
    assert [(f["quantity"], f["kind"]) for f in audit["findings"]] == [
        ("vas.post_3m.mean", "mismatch")]
    assert "numbers reported in draft manuscript" in html
    md = (tmp_path / "rep" / "tables" / "table2_outcomes.md").read_text(encoding="utf-8")
    # VAS final: 2, 1, 3 (A02 missing) -> n = 3, mean 2.0, SD 1.0.
    assert "| Final follow-up | 3 | 2.0 ± 1.0 |" in md
    # A02 lacks the final score: the sentence says the means use all cases, pairs are fewer.
    results = (tmp_path / "rep" / "results.md").read_text(encoding="utf-8")
    assert ("7.5 ± 1.3 pre-op and 2.0 ± 1.0 at final follow-up (means of all available "
            "cases, n = 4 and 3; 3 complete pairs)") in results


def test_omnibus_rows_from_contract() -> None:
    analysis = {"outcomes": {"vas": {"omnibus": {
        "rm_anova": {"F": 144.13, "df1": 2.0, "df2": 12.0, "p": 4e-9, "gg_epsilon": 0.724,
                     "p_gg": 1e-7, "sphericity_p": 0.3},
        "friedman": {"chi2": 12.08, "df": 2.0, "p": 0.0024}}}}}
    rows = omnibus_rows(analysis)
    assert [r["test"] for r in rows] == ["Repeated-measures ANOVA", "Friedman test"]
    assert rows[0]["df"] == "2, 12"
    assert rows[0]["p"] == "<0.001"
    assert "corrected p < 0.001" in rows[0]["note"]
    assert rows[1]["statistic"] == "χ² = 12.08"
    assert rows[1]["p"] == "0.002"


def test_cli_cohort_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "rep"
    code, stdout, _ = run_cli(["cohort", "report", "fang2022", "--out", str(out)], capsys)
    assert code == 0, stdout
    assert f"wrote {out / 'cohort_report.html'}" in stdout
    code, _, err = run_cli(["cohort", "report", "fang2022", "--out", str(out)], capsys)
    assert code == 2
    assert "exists already" in err
    assert len(err.strip().splitlines()) == 1
    code, _, _ = run_cli(["cohort", "report", "fang2022", "--out", str(out), "--force"],
                         capsys)
    assert code == 0
    bad = tmp_path / "bad.csv"
    bad.write_text("id,age_years,sex,vas_pre\n1,63,F,11\n", encoding="utf-8")
    code, _, err = run_cli(["cohort", "report", str(bad), "--out", str(tmp_path / "x")],
                           capsys)
    assert code == 2
    assert "bad.csv" in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x").exists()


@pytest.mark.slow
def test_chromium_renders_the_page(fang_report: Path, tmp_path: Path) -> None:
    """Headless Chromium renders the page offline to a non-blank screenshot."""
    import os

    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("CI=true but chromium is not installed (make system-deps)")
        pytest.skip("chromium not installed")
    from PIL import Image

    shot = tmp_path / "page.png"
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu",
                    "--disable-background-networking", f"--screenshot={shot}",
                    "--window-size=1280,2400", fang_report.as_uri()],
                   check=True, capture_output=True, timeout=120)
    img = Image.open(shot).convert("L")
    assert img.size == (1280, 2400)
    hist = img.histogram()
    assert hist[255] < 0.97 * sum(hist)  # not blank: text, tables and figures drawn

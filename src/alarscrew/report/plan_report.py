"""The planning report: one self-contained, offline HTML file per PLAN_DIR (and a PDF on request).

Content: de-identified scan summary, S1 body loss and bone quality, the decision summary, a
per-side table of the nominal and optimal screws, the alternatives, the safe-length maps, slice
views along each screw and an interactive 3D view (plotly, plotly.js inlined), and the disclaimer.
Nothing in the page refers to the network: figures are ``data:`` URIs and scripts are inline.
"""

from __future__ import annotations

import base64
import os
import re
import time
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
import nibabel as nib
import numpy as np

from alarscrew import DISCLAIMER, REFERENCE_CITATION, __version__
from alarscrew.errors import InputError, OutputExistsError
from alarscrew.io.atomic import write_text
from alarscrew.io.image import Image
from alarscrew.report.plan_data import (
    SCREW_KINDS,
    PlanDir,
    ScrewGeometry,
    load_plan_dir,
    resolve_input,
)
from alarscrew.spatial.frame import SIDES, S1Frame

REPORT_HTML = "report.html"
REPORT_PDF = "report.pdf"
#: Structures of the 3D view besides the sacrum (canonical names of alarscrew.anatomy.labels).
SCENE_STRUCTURES: tuple[str, ...] = (
    "l5", "hip_left", "hip_right", "iliac_artery_left", "iliac_artery_right",
    "iliac_vena_left", "iliac_vena_right",
)
_IDENTIFIER_KEY = re.compile(r"patient|birth|accession|institution|physician", re.IGNORECASE)

ROWS: tuple[tuple[str, str], ...] = (
    ("entry (RAS mm)", "entry"),
    ("transverse angle (deg)", "transverse_angle_deg"),
    ("sagittal angle (deg)", "sagittal_angle_deg"),
    ("safe length (mm)", "length_mm"),
    ("axis in bone (mm)", "axis_in_bone_mm"),
    ("diameter evaluated (mm)", "diameter_mm"),
    ("screw length evaluated (mm)", "screw_length_mm"),
    ("recommended screw", "recommended"),
    ("corridor diameter (mm)", "corridor_diameter_mm"),
    ("min. distance to iliac vessels (mm)", "min_vessel_distance_mm"),
    ("min. distance to L5 root (mm, estimate)", "min_l5_root_distance_mm"),
    ("mean HU along axis", "mean_hu"),
    ("tip engages cortex", "tip_engages_cortex"),
    ("worst breach grade (Gertzbein-Robbins)", "gertzbein_robbins_grade"),
    ("breaches", "breaches"),
    ("reason", "reason"),
)

Progress = Callable[[str], None]

LENGTH_SOURCE_WORDS: dict[str, str] = {
    "recommended_screw": "recommended implant",
    "screw_length_mm": "screw as evaluated; no implant recommended",
    "length_mm": "safe length; no implant recommended",
    "axis_in_bone_mm": "axis in bone; no implant recommended",
}


def readable_by_group(path: Path) -> None:
    """Give a written output the usual permissions (0o666 / 0o777 for folders, minus umask).

    The atomic writers create outputs through ``mkstemp``/``mkdtemp`` (mode 0o600/0o700), which
    would keep a report from colleagues sharing the folder.
    """
    umask = os.umask(0)
    os.umask(umask)
    base = 0o777 if path.is_dir() else 0o666
    path.chmod(base & ~umask)
    if path.is_dir():
        for child in path.iterdir():
            readable_by_group(child)


def _b64(png: bytes | None) -> str | None:
    return None if png is None else base64.b64encode(png).decode("ascii")


def _screw_cells(screw: dict[str, Any]) -> dict[str, Any]:
    cells = {k: screw.get(k) for k, _ in ((key, 0) for _, key in ROWS)}
    e = screw.get("entry_ras_mm")
    cells["entry"] = (", ".join(f"{float(v):.1f}" for v in e) if isinstance(e, list) else None)
    rec = screw.get("recommended_screw")
    cells["recommended"] = (f"{rec['diameter_mm']:.1f} x {rec['length_mm']:.0f} mm"
                            if isinstance(rec, dict) else None)
    breaches = screw.get("breaches")
    if isinstance(breaches, list) and breaches:
        cells["breaches"] = [", ".join(f"{k} {v:.1f}" if isinstance(v, float) else f"{k} {v}"
                                       for k, v in b.items()) if isinstance(b, dict) else b
                             for b in breaches]
    elif isinstance(breaches, list):
        cells["breaches"] = "none"
    return cells


ALT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("kind", "kind"), ("feasible", "feasible"), ("safe length (mm)", "length_mm"),
    ("axis in bone (mm)", "axis_in_bone_mm"), ("diameter (mm)", "diameter_mm"),
    ("transverse (deg)", "transverse_angle_deg"), ("sagittal (deg)", "sagittal_angle_deg"),
    ("worst breach grade", "gertzbein_robbins_grade"), ("recommended screw", "recommended"),
    ("reason", "reason"),
)


def _alternatives_table(alts: Any) -> tuple[list[str], list[list[Any]]] | None:
    """Alternatives as one row per (side, alternative) with the columns present in any row.

    Accepts ``{side: {name: record}}`` (as written by alarscrew.planning) or ``{name: record}``.
    Returns None when the layout is neither (the template then shows it as nested tables).
    """
    if not isinstance(alts, dict) or not alts:
        return None
    records: list[tuple[str, dict[str, Any]]] = []
    for key, val in alts.items():
        if not isinstance(val, dict):
            return None
        nested = [(f"{key}: {k}", v) for k, v in val.items() if isinstance(v, dict)]
        if key in SIDES and nested:
            records.extend((n.replace("_", " "), v) for n, v in nested)
        else:
            records.append((key.replace("_", " "), val))
    cols = [(label, k) for label, k in ALT_COLUMNS
            if any(k in r or (k == "recommended" and "recommended_screw" in r)
                   for _, r in records)]
    rows = []
    for name, r in records:
        cells = _screw_cells(r)
        rows.append([name] + [cells.get(k, r.get(k)) for _, k in cols])
    return ["alternative"] + [label for label, _ in cols], rows


def _inline(value: Any) -> Any:
    """A flat dict of scalars as one line ``key value; ...`` (e.g. the safe window)."""
    if isinstance(value, dict) and all(not isinstance(v, dict | list) for v in value.values()):
        return "; ".join(f"{k.replace('_', ' ')} {v:g}" if isinstance(v, float)
                         else f"{k.replace('_', ' ')} {v}" for k, v in value.items())
    return value


def _scan_summary(ct: Image, *, show_identifiers: bool, plan: dict[str, Any]
                  ) -> tuple[dict[str, Any], dict[str, Any]]:
    sp = ct.spacing_mm
    ijk_lo = np.zeros(3)
    ijk_hi = np.asarray(ct.shape) - 1
    scan = {
        "grid (voxels)": " x ".join(str(s) for s in ct.shape),
        "voxel size (mm)": " x ".join(f"{v:.3f}" for v in sp),
        "orientation (voxel axes)": "".join(nib.aff2axcodes(ct.affine)),
        "field of view (mm)": " x ".join(f"{v:.0f}" for v in np.abs(
            ct.ijk_to_ras(ijk_hi) - ct.ijk_to_ras(ijk_lo))),
        "format": ct.meta.get("format", "NIfTI"),
        "HU range (1st-99th percentile)": "{:.0f} to {:.0f}".format(
            *np.percentile(ct.array[::2, ::2, ::2], [1, 99])),
    }
    ids: dict[str, Any] = {}
    if show_identifiers:
        inputs = plan.get("inputs") or {}
        ids["CT file"] = inputs.get("ct")
        ids["segmentations"] = inputs.get("seg")
        ids["landmarks file"] = inputs.get("landmarks")
        for k, v in ct.meta.items():
            if _IDENTIFIER_KEY.search(str(k)):
                ids[str(k)] = str(v)
    return scan, ids


def _load_ct(pdir: PlanDir) -> Image:
    inputs = pdir.plan.get("inputs") or {}
    given = inputs.get("ct")
    path = resolve_input(pdir, given)
    if path is None:
        raise InputError(f"the CT recorded in plan.json ({given!r}) cannot be found, as given "
                         f"or relative to {pdir.path}; the report needs it for the slice views",
                         path=str(pdir.path / "plan.json"), column="inputs.ct")
    try:
        from alarscrew.io.loading import load_ct
    except ImportError:  # io.loading not present in this checkout
        from alarscrew.io.nifti import load_nifti as load_ct  # type: ignore[assignment]
    ct = load_ct(path)
    if not ct.same_grid(pdir.sacrum, atol_mm=1e-2):
        raise InputError(f"sacrum_mask.nii.gz ({pdir.sacrum.grid_description()}) is not on the "
                         f"grid of the CT {path} ({ct.grid_description()})",
                         path=str(pdir.path / "sacrum_mask.nii.gz"))
    return ct


def _scene_masks(pdir: PlanDir, ct: Image) -> tuple[dict[str, Image], str]:
    """Sacrum from PLAN_DIR plus L5, ilia and vessels from the plan's segmentations."""
    masks: dict[str, Image] = {"sacrum": pdir.sacrum}
    seg_given = (pdir.plan.get("inputs") or {}).get("seg") or []
    if isinstance(seg_given, str):
        seg_given = [seg_given]
    seg_paths = [resolve_input(pdir, s) for s in seg_given]
    missing = [s for s, p in zip(seg_given, seg_paths, strict=True) if p is None]
    if not seg_given:
        return masks, "No segmentation in the plan's inputs: only the sacrum and screws are shown."
    if missing:
        return masks, (f"Segmentation(s) {missing} not found: only the sacrum and screws are "
                       "shown.")
    try:
        from alarscrew.anatomy.labels import load_labels
    except ImportError:
        return masks, ("alarscrew.anatomy.labels is not available: only the sacrum and screws "
                       "are shown.")
    labels = load_labels([p for p in seg_paths if p is not None], ct)
    for name in SCENE_STRUCTURES:
        if name in labels:
            masks[name] = labels[name]
    absent = [n.replace("_", " ") for n in SCENE_STRUCTURES if n not in labels]
    note = ("Structures not in the segmentation (not shown): " + ", ".join(absent) + "."
            if absent else "")
    return masks, note


def _template() -> jinja2.Template:
    text = (resources.files("alarscrew.report") / "templates" / "plan_report.html.j2"
            ).read_text(encoding="utf-8")
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True)
    return env.from_string(text)


def render_plan_report(pdir: PlanDir, ct: Image, *, show_identifiers: bool = False,
                       progress: Progress | None = None) -> str:
    """The report's HTML text for a loaded PLAN_DIR and its CT.

    Parameters
    ----------
    pdir : PlanDir
    ct : Image
        The plan's CT (HU), on the grid of ``pdir.sacrum``.
    show_identifiers : bool
        Include input paths and DICOM patient identifiers (off by default).
    progress : callable, optional
        Called with a short description before each step.

    Returns
    -------
    str
        A complete HTML document.
    """
    from alarscrew.report.plan_figures import (
        HALF_FOV_MM,
        PIXEL_MM,
        WINDOW_HU,
        safe_length_map_png,
        screw_slices_png,
    )
    from alarscrew.report.plan_scene import MESH_VOXEL_MM, plan_figure, plan_figure_html

    step = progress or (lambda _m: None)
    plan = pdir.plan
    frame = pdir.frame or S1Frame(np.zeros(3), np.array([1.0, 0, 0]), np.array([0, 1.0, 0]),
                                  np.array([0, 0, 1.0]))
    step("safe-length maps")
    sides = []
    for side in SIDES:
        sd = pdir.side(side)
        screws = []
        for kind in SCREW_KINDS:
            obj = sd.get(kind)
            if isinstance(obj, dict):
                screws.append({"kind": kind, "cells": _screw_cells(obj)})
        note = None
        status = sd.get("status")
        if not screws:
            note = sd.get("reason") or "no screw planned on this side (plan.json gives no reason)"
        elif sd.get("optimal") is None or status not in (None, "safe"):
            note = (f"Status: {status or 'no safe optimal screw'}. "
                    + str(sd.get("reason") or "plan.json gives no reason"))
        sides.append({"name": side, "screws": screws, "note": note,
                      "safe_window_deg": _inline(sd.get("safe_window_deg")),
                      "map_png": _b64(safe_length_map_png(side, sd))})
    step("slice views along each screw")
    slice_figs = []
    by_name: dict[str, ScrewGeometry] = {s.name: s for s in pdir.screws}
    for side in SIDES:
        for kind in ("optimal", "nominal"):
            s = by_name.get(f"{side}_{kind}")
            if s is None:
                continue
            title = (f"{side.capitalize()} {kind} screw: {s.diameter_mm:.1f} mm x "
                     f"{s.length_mm:.1f} mm ({LENGTH_SOURCE_WORDS.get(s.length_source, '')})")
            slice_figs.append({"title": title,
                               "png": _b64(screw_slices_png(ct, pdir.sacrum, s, frame,
                                                            title=title))})
    step("3D view (surface meshes)")
    masks, scene_note = _scene_masks(pdir, ct)
    scene_html = plan_figure_html(plan_figure(masks, pdir.screws))
    scan, identifiers = _scan_summary(ct, show_identifiers=show_identifiers, plan=plan)
    body_loss = pdir.anatomy.get("body_loss") or plan.get("body_loss") or None
    bone_quality = pdir.anatomy.get("bone_quality") or plan.get("bone_quality") or None
    settings = {k: plan[k] for k in ("settings", "nominal_technique")
                if plan.get(k)}
    step("HTML")
    return _template().render(
        version=__version__, citation=REFERENCE_CITATION,
        disclaimer=plan.get("disclaimer") or DISCLAIMER,
        scan=scan, identifiers=identifiers,
        body_loss_percent=plan.get("body_loss_percent"), body_loss=body_loss,
        bone_quality=bone_quality, decision=plan.get("decision"),
        alternatives=plan.get("alternatives"),
        alt_table=_alternatives_table(plan.get("alternatives")), sides=sides, rows=ROWS,
        settings=settings,
        slice_figs=slice_figs, window=WINDOW_HU, pixel_mm=PIXEL_MM, half_fov=HALF_FOV_MM,
        scene_html=scene_html, scene_note=scene_note, mesh_mm=MESH_VOXEL_MM,
    )


def build_plan_report(plan_dir: str | Path, *, pdf: bool = False, show_identifiers: bool = False,
                      force: bool = False, progress: Progress | None = None) -> Path:
    """Write ``PLAN_DIR/report.html`` (and ``report.pdf`` with ``pdf``).

    Parameters
    ----------
    plan_dir : path
        A PLAN_DIR written by ``alarscrew plan`` (plan.json, anatomy.json, sacrum_mask.nii.gz);
        the CT and segmentations are reloaded from the paths in ``plan.json['inputs']``.
    pdf : bool
        Also print the report to PDF with headless Chromium.
    show_identifiers : bool
        Include patient identifiers and input paths (de-identified by default).
    force : bool
        Overwrite an existing report.
    progress : callable, optional
        Called with a short description before each step.

    Returns
    -------
    Path
        The HTML report.

    Raises
    ------
    OutputExistsError
        The report exists and ``force`` is False.
    InputError
        PLAN_DIR or its inputs are missing or malformed.
    BrowserError
        ``pdf`` was asked for and Chromium is missing or fails.
    """
    root = Path(plan_dir)
    out_html = root / REPORT_HTML
    out_pdf = root / REPORT_PDF
    for out in (out_html, out_pdf) if pdf else (out_html,):
        if out.exists() and not force:
            raise OutputExistsError(f"{out}: report exists already; pass --force to overwrite")
    step = progress or (lambda _m: None)
    step("reading PLAN_DIR and CT")
    pdir = load_plan_dir(root)
    ct = _load_ct(pdir)
    html = render_plan_report(pdir, ct, show_identifiers=show_identifiers, progress=step)
    write_text(out_html, html, force=True)
    readable_by_group(out_html)
    if not pdf and force and out_pdf.exists():
        out_pdf.unlink()  # a PDF of an earlier plan must not sit beside the new report
    if pdf:
        from alarscrew.io.atomic import atomic_path
        from alarscrew.report.browser import run_chromium

        step("PDF (headless Chromium)")
        with atomic_path(out_pdf, force=True) as tmp:
            run_chromium(out_html.resolve().as_uri(), pdf=tmp, wait_ms=8000)
        readable_by_group(out_pdf)
    return out_html


def timed_build(plan_dir: str | Path, **kwargs: Any) -> tuple[Path, float]:
    """:func:`build_plan_report` and its wall time (s), for the CLI and the bench."""
    t0 = time.perf_counter()
    out = build_plan_report(plan_dir, **kwargs)
    return out, time.perf_counter() - t0

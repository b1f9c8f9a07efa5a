"""``alarscrew plan`` and ``alarscrew check``: bilateral planning and single-screw evaluation.

The commands parse arguments and call :mod:`alarscrew.anatomy` and :mod:`alarscrew.planning`;
all logic lives there. Bad input raises an :class:`~alarscrew.errors.AlarscrewError` (exit 2,
nothing written); ``check`` exits 1 when the screw is not contained.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from alarscrew.cli._progress import step_progress
from alarscrew.errors import AlarscrewError, InputError


def parse_vec3(text: str, *, option: str) -> np.ndarray:
    """``"X,Y,Z"`` -> (3,) float array; InputError naming the option otherwise."""
    parts = [p.strip() for p in str(text).split(",")]
    try:
        vals = np.array([float(p) for p in parts], float)
    except ValueError:
        raise InputError(f"expected three numbers 'X,Y,Z' (RAS mm), got {text!r}",
                         column=option) from None
    if vals.shape != (3,) or not np.all(np.isfinite(vals)):
        raise InputError(f"expected three finite numbers 'X,Y,Z', got {text!r}", column=option)
    return vals


def _progress(enabled: bool, total: int) -> contextlib.AbstractContextManager[
        Callable[[str], None]]:
    return step_progress(enabled, total, label="plan")


def _run_anatomy(ct: Path, seg: list[Path], landmarks: Path | None, say: Callable[[str], None],
                 lesion: Path | None = None) -> Any:
    from alarscrew import anatomy

    run = getattr(anatomy, "run_anatomy", None)
    if run is None:
        raise AlarscrewError("the anatomy stage (alarscrew.anatomy.run_anatomy) is not "
                             "available in this installation")
    say("anatomy: frame, landmarks, masks")
    return run(ct, seg_paths=tuple(seg), landmarks_path=landmarks, lesion_path=lesion)


def _labels(anat: Any, seg: list[Path]) -> dict[str, Any] | None:
    """Label masks on the CT grid (vessels, hips) for structures the anatomy stage omits."""
    if not seg:
        return None
    from alarscrew.anatomy.labels import load_labels

    return load_labels(seg, anat.ct)


def _summary_table(plan: dict) -> Any:
    from rich.table import Table

    t = Table(title="alarscrew plan (S1 frame angles)")
    for col in ("side", "axis", "status", "D x L", "safe", "bone", "tr", "sag", "GR", "win"):
        t.add_column(col, no_wrap=True)
    t.caption = ("nom / nom-ax: the paper's 30/45 read in the S1 frame / in the scanner axial "
                 "plane (docs/angles.md); "
                 "D x L recommended screw mm; safe = safe length mm; bone = axis in bone mm; "
                 "tr/sag = transverse/sagittal deg; GR = Gertzbein-Robbins; win = safe window "
                 "radius deg")
    for side in ("left", "right"):
        s = plan["sides"][side]
        kinds = [k for k in ("nominal", "nominal_axial", "optimal") if s.get(k) is not None]
        if s.get("optimal") is None:
            # one row for the side's refusal (no entry point: no axis at all); the reason is
            # printed under the table (a long cell would squeeze every column to nothing on
            # an 80-column terminal)
            t.add_row(side, "opt" if kinds else "-", s["status"], "-", "-", "-", "-", "-", "-",
                      "-")
        for kind in kinds:
            sc = s[kind]
            rec = sc.get("recommended_screw")
            win = s.get("safe_window_deg") if kind == "optimal" else None
            t.add_row(
                side, {"nominal": "nom", "nominal_axial": "nom-ax", "optimal": "opt"}[kind],
                s["status"] if kind == "optimal" else
                ("safe" if sc["contained"] else "unsafe"),
                f"{rec['diameter_mm']:g}x{rec['length_mm']:g}" if rec else "none",
                f"{sc['length_mm']:.1f}", f"{sc['axis_in_bone_mm']:.1f}",
                f"{sc['transverse_angle_deg']:.1f}", f"{sc['sagittal_angle_deg']:.1f}",
                sc["gertzbein_robbins_grade"],
                "-" if not win or win["radius_deg"] is None else f"{win['radius_deg']:.1f}")
    return t


def register(app: typer.Typer) -> None:
    """Attach ``plan`` and ``check`` to the root app."""

    @app.command("plan")
    def plan(
        ct: Annotated[Path, typer.Argument(help="CT: NIfTI, NRRD or DICOM folder.")],
        out: Annotated[Path, typer.Option("--out", "-o", help="PLAN_DIR to write.")],
        seg: Annotated[list[Path] | None, typer.Option(
            "--seg", "-s", help="Label map(s) or mask folder on the CT (repeatable).")] = None,
        landmarks: Annotated[Path | None, typer.Option(
            "--landmarks", "-l", help="Landmarks file (JSON or Slicer .mrk.json).")] = None,
        lesion: Annotated[Path | None, typer.Option(
            "--lesion", help="Mask of destroyed/infected bone on the CT (not bone for screws; "
                             "measures the S1 body loss).")] = None,
        catalog: Annotated[Path | None, typer.Option(
            "--catalog", help="Screw catalog (YAML or CSV); default 6.5-8.0 x 30-55 mm.")] = None,
        margin_mm: Annotated[float, typer.Option(
            "--margin-mm", help="Bone kept around the thread (mm).")] = 1.0,
        objective: Annotated[str, typer.Option(
            "--objective", help="'length' (longest safe screw, default) or 'density' "
                                "(most integrated HU along a safe screw).")] = "length",
        tip_zone: Annotated[str, typer.Option(
            "--tip-zone", help="'any' (default: the whole cone, sagittal 0-75 deg) or 'ala' "
                               "(keep the optimal screw cranial to the first sacral foramen "
                               "level: the paper's 'upper lateral' ala; docs/angles.md).")
                           ] = "any",
        levels: Annotated[int | None, typer.Option(
            "--levels", help="Levels fused to the sacrum (for the decision summary).")] = None,
        force: Annotated[bool, typer.Option("--force", "-f", help="Replace PLAN_DIR.")] = False,
        timing: Annotated[bool, typer.Option(
            "--timing", help="Also store timings in plan.json (not byte-reproducible).")] = False,
        as_json: Annotated[bool, typer.Option("--json", help="Print plan.json on stdout.")
                           ] = False,
        png: Annotated[bool, typer.Option(
            "--png", help="Also draw the screws on CT slabs (PLAN_DIR/plan.png).")] = False,
        report: Annotated[bool, typer.Option(
            "--report", help="Also write the planning report (report.html) and the exports "
                             "(as 'alarscrew report PLAN_DIR').")] = False,
        pdf: Annotated[bool, typer.Option(
            "--pdf", help="With --report: also print the report to PDF.")] = False,
    ) -> None:
        """Plan both S1 alar screws (nominal 30/45 and optimal) and write PLAN_DIR.

        PLAN_DIR holds plan.json (contract: docs/plan-json.md), anatomy.json,
        sacrum_mask.nii.gz and timing.json; it appears only when complete.
        """
        from rich.console import Console

        from alarscrew.io.atomic import atomic_dir, check_overwrite, write_text
        from alarscrew.planning.catalog import DEFAULT_CATALOG, load_catalog
        from alarscrew.planning.plan import (
            context_from_anatomy,
            make_plan,
            plan_to_json,
        )
        from alarscrew.planning.screw import SafetySettings

        check_overwrite(out, force=force)
        if pdf and not report:
            raise InputError("--pdf needs --report", column="--pdf")
        if objective not in ("length", "density"):
            raise InputError(f"--objective must be 'length' or 'density', not {objective!r}",
                             column="--objective")
        from alarscrew.planning.plan import TIP_ZONES

        if tip_zone not in TIP_ZONES:
            raise InputError(f"--tip-zone must be one of {list(TIP_ZONES)}, not {tip_zone!r}",
                             column="--tip-zone")
        settings = SafetySettings(margin_mm=margin_mm)
        cat = DEFAULT_CATALOG if catalog is None else load_catalog(catalog)
        if levels is not None and levels < 1:
            raise InputError(f"--levels must be >= 1, got {levels}", column="--levels")
        seg_list = list(seg or [])
        times: dict[str, float] = {}
        steps: dict[str, float] = {}
        with _progress(not as_json, 7) as say:
            t0 = time.perf_counter()
            anat = _run_anatomy(ct, seg_list, landmarks, say, lesion)
            times["anatomy"] = time.perf_counter() - t0
            say("distance fields")
            t0 = time.perf_counter()
            ctx = context_from_anatomy(anat, labels=_labels(anat, seg_list))
            times["fields"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            inputs = {"ct": str(ct), "seg": [str(p) for p in seg_list],
                      "landmarks": None if landmarks is None else str(landmarks),
                      "lesion": None if lesion is None else str(lesion)}
            result = make_plan(ctx, body_loss=anat.body_loss, bone_quality=anat.bone_quality,
                               catalog=cat, settings=settings, levels=levels, inputs=inputs,
                               progress=say, objective=objective, timings_out=steps,
                               tip_zone=tip_zone)
            times["planning"] = time.perf_counter() - t0
            times.update({f"planning.{k}": v for k, v in steps.items()})
            times = {k: round(v, 4) for k, v in times.items()}
            if timing:
                result["timing_s"] = times
            say("writing PLAN_DIR")
            from alarscrew import anatomy

            save_anatomy = getattr(anatomy, "save_anatomy", None)
            if save_anatomy is None:
                raise AlarscrewError("alarscrew.anatomy.save_anatomy is not available in this "
                                     "installation; nothing written")
            with atomic_dir(out, force=force) as tmp:
                write_text(tmp / "plan.json", plan_to_json(result))
                save_anatomy(anat, tmp, force=True)
                write_text(tmp / "timing.json", json.dumps(times, indent=2) + "\n")
                if png:
                    from alarscrew.planning.figures import draw_plan_on_ct

                    draw_plan_on_ct(anat.ct, result, tmp / "plan.png")
        if report:
            from alarscrew.report.exports import write_exports
            from alarscrew.report.plan_report import build_plan_report

            html = build_plan_report(out, pdf=pdf, force=True)
            write_exports(out, force=True)
            if not as_json:
                Console(stderr=True).print(f"report: {html}")
        if as_json:
            typer.echo(plan_to_json(result), nl=False)
            return
        console = Console()
        console.print(_summary_table(result))
        for side in ("left", "right"):
            s = result["sides"][side]
            if s.get("optimal") is None and s.get("reason"):
                console.print(f"[red]{side} {s['status']}:[/red] {s['reason']}")
            for w in s.get("warnings") or []:
                console.print(f"[yellow]warning:[/yellow] {w}")
        console.print(f"decision: {result['decision']['verdict']}")
        console.print("timings (s): " + ", ".join(f"{k} {v:.2f}" for k, v in times.items()
                                                  if "." not in k))
        console.print(f"written: {out}")

    @app.command("check")
    def check(
        ct: Annotated[Path, typer.Argument(help="CT: NIfTI, NRRD or DICOM folder.")],
        entry: Annotated[str, typer.Option("--entry", help="Entry point X,Y,Z (RAS mm).")],
        diameter: Annotated[float, typer.Option("--diameter", "-d", help="Screw diameter mm.")],
        target: Annotated[str | None, typer.Option(
            "--target", help="Tip point X,Y,Z (RAS mm); sets direction and length.")] = None,
        direction: Annotated[str | None, typer.Option(
            "--direction", help="Direction X,Y,Z (RAS), with --length.")] = None,
        length: Annotated[float | None, typer.Option("--length", help="Screw length mm.")
                          ] = None,
        seg: Annotated[list[Path] | None, typer.Option(
            "--seg", "-s", help="Label map(s) or mask folder on the CT (repeatable).")] = None,
        landmarks: Annotated[Path | None, typer.Option(
            "--landmarks", "-l", help="Landmarks file.")] = None,
        margin_mm: Annotated[float, typer.Option("--margin-mm", help="Bone margin (mm).")
                             ] = 1.0,
        allow_s1_body: Annotated[bool, typer.Option(
            "--allow-s1-body", help="Do not count entering the S1 body as unsafe (pedicle "
                                    "screws); alar screws keep out of it by default.")] = False,
        json_out: Annotated[Path | None, typer.Option(
            "--json", help="Write the screw object (plan.json format) to this file.")] = None,
        force: Annotated[bool, typer.Option("--force", "-f", help="Overwrite --json file.")
                         ] = False,
    ) -> None:
        """Evaluate one screw: in-bone length, containment, breaches, corridor, HU.

        Exit code 0 when the cylinder stays in bone with the margin, 1 when it does not.
        """
        from rich.console import Console

        from alarscrew.io.atomic import check_overwrite, write_text
        from alarscrew.planning.evaluate import evaluate_screw
        from alarscrew.planning.plan import context_from_anatomy, plan_to_json
        from alarscrew.planning.screw import SafetySettings, Screw

        e = parse_vec3(entry, option="--entry")
        if (target is None) == (direction is None):
            raise InputError("give exactly one of --target or --direction (with --length)",
                             column="--target/--direction")
        if target is not None:
            if length is not None:
                raise InputError("--length goes with --direction; --target sets the length",
                                 column="--length")
            tip = parse_vec3(target, option="--target")
            vec = tip - e
            screw_len = float(np.linalg.norm(vec))
            if screw_len < 1e-6:
                raise InputError("--target equals --entry: zero-length screw",
                                 column="--target")
        else:
            vec = parse_vec3(direction or "", option="--direction")
            if length is None:
                raise InputError("--direction needs --length (mm)", column="--length")
            screw_len = float(length)
        screw = Screw(e, vec, screw_len, diameter)  # validates direction, length, diameter
        settings = SafetySettings(margin_mm=margin_mm)
        if json_out is not None:
            check_overwrite(json_out, force=force)
        with _progress(True, 3) as say:
            anat = _run_anatomy(ct, list(seg or []), landmarks, say)
            say("distance fields")
            ctx = context_from_anatomy(anat, labels=_labels(anat, list(seg or [])))
            say("evaluating the screw")
            ev = evaluate_screw(ctx, screw, settings=settings, avoid_body=not allow_s1_body)
        obj = ev.to_dict()
        if json_out is not None:
            write_text(json_out, plan_to_json(obj), force=force)
        console = Console()
        console.print(f"side {ev.side}: transverse {ev.transverse_angle_deg:.1f} deg, sagittal "
                      f"{ev.sagittal_angle_deg:.1f} deg (S1 frame)")
        console.print(f"axis in bone {ev.axis_in_bone_mm:.1f} mm, safe length "
                      f"{ev.safe_length_mm:.1f} mm for {screw.diameter_mm:g} mm, screw "
                      f"{screw.length_mm:.1f} mm: "
                      f"{'contained' if ev.contained else 'NOT contained'}")
        for b in ev.breaches:
            console.print(f"  breach {b.surface} at {b.axial_start_mm:.1f}-"
                          f"{b.axial_end_mm:.1f} mm, depth {b.depth_mm:.1f} mm")
        console.print(f"Gertzbein-Robbins grade {ev.grade}; corridor "
                      f"{obj['corridor_diameter_mm']} mm; vessels "
                      f"{obj['min_vessel_distance_mm']} mm ({ev.vessel_source}); "
                      f"mean {obj['mean_hu']} HU")
        if not ev.contained:
            raise typer.Exit(1)

"""``alarscrew anatomy CT --out DIR``: sacrum, S1 frame, landmarks, body loss, bone quality."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    """Attach the ``anatomy`` command to the root app."""

    @app.command("anatomy")
    def anatomy(
        ct: Annotated[Path, typer.Argument(
            help="CT: NIfTI (.nii/.nii.gz), NRRD (.nrrd/.nhdr) or a DICOM series folder.")],
        out: Annotated[Path, typer.Option(
            "--out", "-o", help="Output folder for anatomy.json and sacrum_mask.nii.gz.")],
        seg: Annotated[list[Path] | None, typer.Option(
            "--seg", "-s", help="Label map(s) (TotalSegmentator v1/v2, mask folder, VerSe); "
                                "repeatable.")] = None,
        landmarks: Annotated[Path | None, typer.Option(
            "--landmarks", "-l", help="Landmarks (Slicer .mrk.json or JSON, RAS mm) that "
                                      "override detected ones.")] = None,
        lesion: Annotated[Path | None, typer.Option(
            "--lesion", help="S1 lesion/defect mask for body loss.")] = None,
        png: Annotated[bool, typer.Option(
            "--png/--no-png", help="Also write anatomy_overlay.png (mask + landmarks).")] = True,
        as_json: Annotated[bool, typer.Option(
            "--json", help="Print anatomy.json to stdout instead of the summary.")] = False,
        force: Annotated[bool, typer.Option(
            "--force", help="Overwrite existing outputs.")] = False,
    ) -> None:
        """Find the sacrum, S1 frame, landmarks, S1 body loss and bone quality in a CT."""
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        from alarscrew.anatomy import anatomy_to_dict, render_overlay, run_anatomy, save_anatomy
        from alarscrew.io.atomic import check_overwrite

        targets = [out / "anatomy.json", out / "sacrum_mask.nii.gz"]
        if png:
            targets.append(out / "anatomy_overlay.png")
        for t in targets:  # refuse before computing anything
            check_overwrite(t, force=force)
        err = Console(stderr=True)
        with Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(),
                      console=err, transient=True,
                      disable=as_json or not err.is_terminal) as bar:
            task = bar.add_task("loading", total=7)

            def progress(desc: str, done: int, total: int) -> None:
                bar.update(task, description=desc, completed=done + 1, total=total + 1)

            anat = run_anatomy(ct, seg_paths=list(seg or []), landmarks_path=landmarks,
                               lesion_path=lesion, progress=progress)
            bar.update(task, description="writing", completed=7)
            save_anatomy(anat, out, force=force)
            if png:
                render_overlay(anat, out / "anatomy_overlay.png", force=force,
                               title=ct.name)
        data = anatomy_to_dict(anat)
        if as_json:
            typer.echo(json.dumps(data, indent=2))
            return
        p = anat.provenance
        f = anat.frame
        slope = float(abs(__import__("numpy").degrees(
            __import__("numpy").arctan2(f.cranial_ras[1], f.cranial_ras[2]))))
        console = Console()
        console.print(f"[bold]alarscrew anatomy[/bold] {ct.name}")
        console.print(f"  sacrum: {p['sacrum_mask']}; {p['sacrum_volume_ml']:.0f} ml, "
                      f"left-right {p['sacrum_extent_mm']['left_right']:.0f} mm")
        o = f.origin_ras_mm
        console.print(f"  S1 frame origin (RAS mm) {o[0]:.1f}, {o[1]:.1f}, {o[2]:.1f}; "
                      f"endplate slope to the scanner axial plane {slope:.1f} deg "
                      f"(fit RMS {p['endplate_fit']['rms_mm']:.2f} mm)")
        console.print(f"  landmarks: {len(p['landmarks_detected'])} detected, "
                      f"{len(p['landmarks_supplied'])} supplied, "
                      f"{len(p['landmarks_missing'])} missing")
        for line in data["findings"]:
            console.print(f"  - {line}")
        console.print(f"  written: {', '.join(str(t) for t in targets)}")
        console.print(f"  [dim]{data['disclaimer']}[/dim]")

"""``alarscrew phantom OUT_DIR``: write the synthetic lumbosacral CT, labels and ground truth."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    """Attach the ``phantom`` command to the root app."""

    @app.command("phantom")
    def phantom(
        out_dir: Annotated[Path, typer.Argument(
            help="Output folder (ct.nii.gz, labels.nii.gz, lesion.nii.gz, truth.json).")],
        voxel_mm: Annotated[str, typer.Option(
            "--voxel-mm", help="Voxel size 0.5-3 mm: one value, or X,Y,Z (e.g. 0.8,0.8,3).")
        ] = "1",
        noise_hu: Annotated[float, typer.Option(
            "--noise-hu", help="Gaussian noise SD (HU), 0-200.")] = 20.0,
        asymmetry: Annotated[float, typer.Option(
            "--asymmetry",
            help="Right ala 1+A times as wide as the left; A < 0: left 1-A times the right "
                 "(-0.3 to 0.3).")] = 0.0,
        pelvic_tilt_deg: Annotated[float, typer.Option(
            "--pelvic-tilt-deg",
            help="Posterior pelvic tilt from neutral (deg, -30 to 30).")] = 0.0,
        body_destruction_percent: Annotated[float, typer.Option(
            "--body-destruction-percent",
            help="Percent of the S1 body section at the pedicle level destroyed (0-100).")] = 0.0,
        seed: Annotated[int, typer.Option("--seed", help="Noise seed (>= 0).")] = 0,
        force: Annotated[bool, typer.Option(
            "--force", help="Replace an existing OUT_DIR.")] = False,
    ) -> None:
        """Write an anatomically plausible lumbosacral phantom CT with exact ground truth."""
        from alarscrew.errors import InputError
        from alarscrew.phantom import make_phantom, write_phantom

        parts = [p.strip() for p in voxel_mm.split(",")]
        try:
            spacing = [float(p) for p in parts]
        except ValueError:
            raise InputError(f"--voxel-mm: expected a number or X,Y,Z in mm, got "
                             f"{voxel_mm!r}") from None
        ph = make_phantom(voxel_mm=spacing[0] if len(spacing) == 1 else spacing,
                          noise_hu=noise_hu, asymmetry=asymmetry, pelvic_tilt_deg=pelvic_tilt_deg,
                          body_destruction_percent=body_destruction_percent, seed=seed)
        write_phantom(ph, out_dir, force=force)
        loss = ph.truth["body_loss"]
        typer.echo(
            f"phantom written to {out_dir}: CT {ph.ct.shape} at {voxel_mm} mm, "
            f"sacral slope {ph.truth['sacral_slope_deg']:.1f} deg, S1 body loss "
            f"{loss['pedicle_level_percent']:.1f}% at the pedicle level, "
            f"{loss['volume_percent']:.1f}% by volume"
        )

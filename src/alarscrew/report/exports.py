"""Exports of a plan to the tools surgeons use: 3D Slicer, navigation / 3D printing, label maps.

``write_exports(plan_dir)`` writes into ``PLAN_DIR/exports/``:

==============================  ==============================================================
``{side}_{kind}.mrk.json``      3D Slicer line markup (entry -> tip), LPS mm, one per screw
``{side}_{kind}.stl`` / ``.obj``  screw cylinder mesh in world RAS mm
``screw_labels.nii.gz``          label map on the CT grid (codes in ``exports.json``)
``sacrum_mask.nii.gz``           the sacrum mask (copy of PLAN_DIR's, for one-folder import)
``plan.json``                    the plan (copy, byte-identical)
``exports.json``                 manifest: files, label codes, screw geometry, frames and units
==============================  ==============================================================

Meshes are in world RAS millimetres, the frame of the CT's NIfTI affine. 3D Slicer assumes LPS for
STL/OBJ models unless the file header says ``SPACE=RAS``, so every mesh file carries that tag
(see data/slicer/SOURCE.md); the markups declare ``coordinateSystem`` explicitly.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import trimesh

from alarscrew.errors import OutputExistsError
from alarscrew.io.atomic import atomic_dir, write_bytes, write_text
from alarscrew.io.image import Image
from alarscrew.io.nifti import save_nifti
from alarscrew.report.plan_data import (
    PLAN_FILE,
    SACRUM_MASK_FILE,
    PlanDir,
    ScrewGeometry,
    load_plan_dir,
)

#: The one matrix that switches RAS <-> LPS (its own inverse).
RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0])

#: ``@schema`` id that 3D Slicer itself writes (vtkMRMLMarkupsJsonStorageNode.cxx).
SLICER_MARKUPS_SCHEMA_ID = (
    "https://raw.githubusercontent.com/slicer/slicer/master/Modules/Loadable/Markups/"
    "Resources/Schema/markups-schema-v1.0.3.json#"
)

#: Label codes of ``screw_labels.nii.gz``.
SCREW_LABEL_CODES: dict[str, int] = {
    "left_optimal": 1, "right_optimal": 2, "left_nominal": 3, "right_nominal": 4,
    "left_nominal_axial": 5, "right_nominal_axial": 6,
}
#: Drawing order in the label map: later codes overwrite earlier ones where screws overlap,
#: so the optimal screw (the plan) wins over the nominal trajectory.
_LABEL_ORDER = ("left_nominal_axial", "right_nominal_axial", "left_nominal", "right_nominal",
                "left_optimal", "right_optimal")

SCREW_COLORS_RGB: dict[str, tuple[float, float, float]] = {
    "optimal": (0.10, 0.75, 0.20),
    "nominal": (0.95, 0.60, 0.05),
    "nominal_axial": (0.20, 0.55, 0.95),
}

EXPORT_DIR = "exports"
MESH_SECTIONS = 48


def markups_schema_facts() -> dict[str, Any]:
    """The shipped JSON Schema of the Slicer markups facts (see data/slicer/SOURCE.md)."""
    text = (resources.files("alarscrew") / "data" / "slicer" / "markups_schema_facts.json"
            ).read_text(encoding="utf-8")
    return json.loads(text)


def markups_line(screw: ScrewGeometry) -> dict[str, Any]:
    """A 3D Slicer ``.mrk.json`` document with one Line markup (entry -> tip) in LPS mm.

    Parameters
    ----------
    screw : ScrewGeometry

    Returns
    -------
    dict
        JSON-ready; ``markups[0].controlPoints[0/1].position`` are entry and tip in LPS mm.
    """
    pts_lps = np.stack([screw.entry_ras_mm, screw.tip_ras_mm]) @ RAS_TO_LPS.T
    color = list(SCREW_COLORS_RGB[screw.kind])
    desc = (f"{screw.kind} S1 alar screw, {screw.side} side: diameter {screw.diameter_mm:.1f} mm, "
            f"length {screw.length_mm:.1f} mm (from {screw.length_source}); alarscrew plan")
    points = [
        {"id": str(i + 1), "label": label, "description": desc if i == 0 else "",
         "associatedNodeID": "", "position": [round(float(v), 4) for v in p],
         "orientation": [-1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 1.0],
         "selected": True, "locked": True, "visibility": True, "positionStatus": "defined"}
        for i, (label, p) in enumerate(zip(("entry", "tip"), pts_lps, strict=True))
    ]
    return {
        "@schema": SLICER_MARKUPS_SCHEMA_ID,
        "markups": [{
            "type": "Line",
            "name": f"S1 alar screw {screw.side} {screw.kind}",
            "coordinateSystem": "LPS",
            "coordinateUnits": "mm",
            "locked": True,
            "fixedNumberOfControlPoints": True,
            "labelFormat": "%N-%d",
            "controlPoints": points,
            "measurements": [{
                "name": "length", "enabled": True, "value": round(screw.length_mm, 4),
                "units": "mm", "printFormat": "%-#4.4g%s",
            }],
            "display": {
                "visibility": True, "opacity": 1.0, "color": color, "selectedColor": color,
                "propertiesLabelVisibility": True, "pointLabelsVisibility": True,
                "lineThickness": 0.2, "glyphType": "Sphere3D",
            },
        }],
    }


def screw_mesh(screw: ScrewGeometry, *, sections: int = MESH_SECTIONS) -> trimesh.Trimesh:
    """Closed cylinder mesh of the screw in world RAS mm (end-cap centres = entry and tip)."""
    segment = np.stack([screw.entry_ras_mm, screw.tip_ras_mm])
    return trimesh.creation.cylinder(radius=screw.radius_mm, segment=segment, sections=sections)


#: Coordinate-system tag 3D Slicer looks for in model file headers (vtkMRMLModelStorageNode:
#: substring "SPACE=RAS" / "SPACE=LPS"; without it Slicer assumes LPS and would mirror the screw).
MESH_SPACE_TAG = "SPACE=RAS"


def mesh_file_bytes(mesh: trimesh.Trimesh, ext: str) -> bytes:
    """Binary STL or OBJ text of a world-RAS-mm mesh, tagged ``SPACE=RAS`` for 3D Slicer.

    STL: the tag is written into the 80-byte binary header (which must not start with
    ``solid``). OBJ: a first comment line carries it.
    """
    note = f"alarscrew screw mesh, world coordinates in mm, {MESH_SPACE_TAG}"
    if ext == "stl":
        data = bytearray(trimesh.exchange.stl.export_stl(mesh))
        data[:80] = note.encode("ascii")[:80].ljust(80, b" ")
        return bytes(data)
    if ext == "obj":
        text = trimesh.exchange.obj.export_obj(mesh, include_normals=False)
        return (f"# {note}\n" + text).encode("utf-8")
    raise ValueError(f"mesh format must be 'stl' or 'obj', not {ext!r}")


def screw_label_map(screws: tuple[ScrewGeometry, ...], grid: Image) -> Image:
    """Voxels whose centre lies inside each screw cylinder, on ``grid``.

    Parameters
    ----------
    screws : tuple of ScrewGeometry
    grid : Image
        Defines shape and affine (the CT grid; the sacrum mask shares it).

    Returns
    -------
    Image
        uint8 label map, codes :data:`SCREW_LABEL_CODES`; optimal screws overwrite nominal ones.
    """
    out = np.zeros(grid.shape, dtype=np.uint8)
    by_name = {s.name: s for s in screws}
    shape = np.asarray(grid.shape)
    for name in _LABEL_ORDER:
        s = by_name.get(name)
        if s is None:
            continue
        # bounding box of the cylinder in voxel indices (corners of the end discs, padded)
        ends = np.stack([s.entry_ras_mm, s.tip_ras_mm])
        r = s.radius_mm
        box_ras = np.concatenate([ends - r, ends + r])
        corners = np.stack(np.meshgrid(*box_ras.T, indexing="ij"), axis=-1).reshape(-1, 3)
        ijk = grid.ras_to_ijk(corners)
        lo = np.clip(np.floor(ijk.min(axis=0)).astype(int) - 1, 0, shape - 1)
        hi = np.clip(np.ceil(ijk.max(axis=0)).astype(int) + 2, 0, shape)
        if np.any(hi <= lo):
            continue
        ii, jj, kk = np.meshgrid(*(np.arange(a, b) for a, b in zip(lo, hi, strict=True)),
                                 indexing="ij")
        pts = grid.ijk_to_ras(np.stack([ii, jj, kk], axis=-1))
        rel = pts - s.entry_ras_mm
        t = rel @ s.direction_ras
        radial = np.linalg.norm(rel - t[..., None] * s.direction_ras, axis=-1)
        inside = (t >= 0) & (t <= s.length_mm) & (radial <= r)
        sub = out[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
        sub[inside] = SCREW_LABEL_CODES[name]
    return grid.with_array(out, is_label=True, source="screw label map")


@dataclass(frozen=True)
class ExportResult:
    """What :func:`write_exports` wrote."""

    folder: Path
    files: tuple[Path, ...]
    manifest: Path


def _geometry_record(s: ScrewGeometry) -> dict[str, Any]:
    return {
        "entry_ras_mm": [float(v) for v in s.entry_ras_mm],
        "tip_ras_mm": [float(v) for v in s.tip_ras_mm],
        "direction_ras": [float(v) for v in s.direction_ras],
        "length_mm": float(s.length_mm),
        "diameter_mm": float(s.diameter_mm),
        "length_source": s.length_source,
    }


def write_exports(plan_dir: str | Path, *, force: bool = False,
                  progress: Callable[[str], None] | None = None,
                  plan: PlanDir | None = None) -> ExportResult:
    """Write the Slicer markups, meshes, screw label map and copies into ``PLAN_DIR/exports``.

    Parameters
    ----------
    plan_dir : path
        A PLAN_DIR written by ``alarscrew plan``.
    force : bool
        Replace an existing ``exports`` folder; without it an existing one is an error.
    progress : callable, optional
        Called with a short description before each step.
    plan : PlanDir, optional
        An already loaded PLAN_DIR (saves reading it twice).

    Returns
    -------
    ExportResult

    Raises
    ------
    OutputExistsError
        ``exports`` exists and ``force`` is False.
    InputError
        PLAN_DIR is malformed (file and field named).
    """
    pdir = plan if plan is not None else load_plan_dir(plan_dir)
    folder = pdir.path / EXPORT_DIR
    if folder.exists() and not force:
        raise OutputExistsError(f"{folder}: exports exist already; pass --force to overwrite")
    step = progress or (lambda _msg: None)
    names: list[str] = []
    with atomic_dir(folder, force=force) as tmp:
        step("Slicer markups")
        for s in pdir.screws:
            names.append(f"{s.name}.mrk.json")
            write_text(tmp / names[-1], json.dumps(markups_line(s), indent=2) + "\n")
        step("screw meshes (STL, OBJ)")
        for s in pdir.screws:
            mesh = screw_mesh(s)
            for ext in ("stl", "obj"):
                names.append(f"{s.name}.{ext}")
                write_bytes(tmp / names[-1], mesh_file_bytes(mesh, ext))
        step("screw label map")
        save_nifti(screw_label_map(pdir.screws, pdir.sacrum), tmp / "screw_labels.nii.gz")
        names.append("screw_labels.nii.gz")
        step("copies of plan.json and the sacrum mask")
        for name in (PLAN_FILE, SACRUM_MASK_FILE):
            write_bytes(tmp / name, (pdir.path / name).read_bytes())
            names.append(name)
        manifest = {
            "frame": ("world RAS mm (the CT NIfTI affine); markups in LPS mm as declared "
                      "in each file"),
            "files": sorted(names),
            "screw_label_codes": {k: v for k, v in SCREW_LABEL_CODES.items()
                                  if any(s.name == k for s in pdir.screws)},
            "screws": {s.name: _geometry_record(s) for s in pdir.screws},
            "markups_schema": SLICER_MARKUPS_SCHEMA_ID,
            "disclaimer": pdir.plan.get("disclaimer"),
        }
        write_text(tmp / "exports.json", json.dumps(manifest, indent=2) + "\n")
    from alarscrew.report.plan_report import readable_by_group

    readable_by_group(folder)
    written = tuple(folder / n for n in names)
    mpath = folder / "exports.json"
    return ExportResult(folder=folder, files=written, manifest=mpath)

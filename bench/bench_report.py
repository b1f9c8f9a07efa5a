"""Bench: planning report generation on a 0.8 mm scan (issue 5: < 10 s, HTML < 15 MB).

The scan: the real sacrum/hip shapes of atlas case s02 (../shared/data/atlas, 1 mm, see its
SOURCE.md) resampled to 0.8 mm (linear for the CT, nearest for the labels) and padded with air to a
clinical 512 x 512 in-plane matrix, so that loading costs what a real 0.8 mm pelvis CT costs. The
PLAN_DIR is the test fixture's (hand-made screws: tests/report/test_plan_fixture.py).

Reference in the same run: the 3D view meshed at the scan's own 0.8 mm (no downsampling) against
the report's 2 mm meshes: faces, bytes of the plotly figure, and time.

Run: .venv/bin/python bench/bench_report.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.report.test_plan_fixture import build_plan_dir  # noqa: E402

from alarscrew.report.plan_data import load_plan_dir  # noqa: E402
from alarscrew.report.plan_report import build_plan_report  # noqa: E402
from alarscrew.report.plan_scene import plan_figure  # noqa: E402

ATLAS = ROOT.parent / "shared" / "data" / "atlas"
VOXEL_MM = 0.8
INPLANE = 512


class StageClock:
    """Wall time between successive progress messages."""

    def __init__(self) -> None:
        self.stages: dict[str, float] = {}
        self._last = time.perf_counter()
        self._label = "start"

    def step(self, msg: str) -> None:
        now = time.perf_counter()
        self.stages[self._label] = now - self._last
        self._last, self._label = now, msg


def make_scan(work: Path) -> tuple[Path, Path]:
    ct_img = nib.load(str(ATLAS / "s02_ct.nii.gz"))
    lab_img = nib.load(str(ATLAS / "s02_labels.nii.gz"))
    zoom = np.sqrt((ct_img.affine[:3, :3] ** 2).sum(axis=0)) / VOXEL_MM
    ct = ndimage.zoom(np.asarray(ct_img.dataobj, np.float32), zoom, order=1)
    lab = ndimage.zoom(np.asarray(lab_img.dataobj).astype(np.uint8), zoom, order=0)
    pad = [((INPLANE - n) // 2, INPLANE - n - (INPLANE - n) // 2) for n in ct.shape[:2]]
    pad.append((0, 0))
    ct = np.pad(ct, pad, constant_values=-1000.0).astype(np.int16)
    lab = np.pad(lab, pad)
    aff = ct_img.affine.copy()
    aff[:3, :3] = aff[:3, :3] / zoom
    aff[:3, 3] -= aff[:3, :3] @ np.array([pad[0][0], pad[1][0], 0.0])
    ct_path, lab_path = work / "ct08.nii.gz", work / "labels08.nii.gz"
    nib.save(nib.Nifti1Image(ct, aff), str(ct_path))
    nib.save(nib.Nifti1Image(lab, aff), str(lab_path))
    return ct_path, lab_path


def main() -> None:
    if not ATLAS.exists():
        sys.exit(f"shared data not found at {ATLAS}")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        ct_path, lab_path = make_scan(work)
        shape = nib.load(str(ct_path)).shape
        plan_dir = build_plan_dir(work, ct_path, lab_path, sacrum_code=25)
        times = []
        stages: dict[str, float] = {}
        for _ in range(2):  # first run cold (imports, caches), second warm
            clock = StageClock()
            t0 = time.perf_counter()
            out = build_plan_report(plan_dir, force=True, progress=clock.step)
            times.append(time.perf_counter() - t0)
            clock.step("end")
            stages = clock.stages
        size = out.stat().st_size
        print(f"scan: {shape} voxels at {VOXEL_MM} mm ({np.prod(shape) / 1e6:.0f} M voxels)")
        print(f"report generation: runs {', '.join(f'{t:.2f}' for t in times)} s; worst "
              f"{max(times):.2f} s "
              f"(target < 10 s: {'OK' if max(times) < 10 else 'FAIL'})")
        for k, v in stages.items():
            if k != "start":
                print(f"  {k:<32} {v:6.2f} s")
        print(f"HTML size: {size / 1e6:.2f} MB (target < 15 MB: "
              f"{'OK' if size < 15e6 else 'FAIL'})")
        pdir = load_plan_dir(plan_dir)
        masks = {"sacrum": pdir.sacrum}
        rows = []
        for vox in (2.0, VOXEL_MM):
            t0 = time.perf_counter()
            fig = plan_figure(masks, pdir.screws, voxel_mm=vox)
            js = fig.to_json()
            dt = time.perf_counter() - t0
            faces = sum(len(tr.i) for tr in fig.data)
            rows.append((vox, faces, len(js), dt))
            print(f"3D view meshed at {vox} mm: {faces} faces, {len(js) / 1e6:.2f} MB JSON, "
                  f"{dt:.2f} s")
        print(f"ratio native / report meshes: {rows[1][1] / rows[0][1]:.1f}x faces, "
              f"{rows[1][2] / rows[0][2]:.1f}x bytes, {rows[1][3] / rows[0][3]:.1f}x time")


if __name__ == "__main__":
    main()

"""Benchmark of the planning search, with a straightforward reference in the same run.

    .venv/bin/python bench/bench_planning.py [--voxel-mm 0.8] [--no-atlas] [--reference-rays 200]

1. Phantom CT at ``--voxel-mm`` (default 0.8 mm) with its exact anatomy: time to build the
   distance fields, then the bilateral optimum at 0.5 deg x 1 mm entries (the issue's target:
   < 1 s on 2 cores once the anatomy is known), also with ``tip_zone='ala'``. Prints the grid
   size, trajectories marched, grid trajectories covered per second.
2. Reference: a straightforward evaluation that samples every screw's cylinder voxel by voxel
   (nearest voxel of points filling the cylinder + margin, every 0.5 mm, until one falls outside
   the bone or inside the S1 body), timed on random grid trajectories and extrapolated to the
   whole grid; the speed-up is the ratio. 'Equal answers': the reference's safe length on
   those trajectories and on the optimum is compared with the planner's (difference reported;
   expected within about one voxel, since nearest-voxel and distance-field tests differ by the
   voxelisation only).
3. The 20 atlas sacra (../shared/data/atlas) through the anatomy stage: distribution of the
   optimal length, angles, safe window and the nominal 30/45 safe length; refusals.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.planning.phantom_anatomy import anatomy_from_phantom  # noqa: E402

from alarscrew.phantom import make_phantom  # noqa: E402
from alarscrew.planning.plan import context_from_anatomy, optimal_trajectory  # noqa: E402
from alarscrew.planning.screw import SafetySettings  # noqa: E402
from alarscrew.planning.search import AngleGrid, entry_candidates  # noqa: E402
from alarscrew.spatial.frame import direction_from_angles  # noqa: E402


def reference_safe_length(bone: np.ndarray, body: np.ndarray, inv_affine: np.ndarray,
                          entry: np.ndarray, d: np.ndarray, *, diameter_mm: float,
                          st: SafetySettings, voxel_mm: float) -> float:
    """Safe length by filling the cylinder with points and looking up voxels one disc at a time.

    The disc at depth s holds points on a polar grid (spacing about half a voxel) of radius
    ``required(s)`` = ramp(s) x (radius + margin); the first disc with a point outside the bone
    or inside the S1 body ends the screw (the previous disc depth is returned).
    """
    a = np.cross(d, [1.0, 0, 0] if abs(d[0]) < 0.9 else [0, 1.0, 0])
    a /= np.linalg.norm(a)
    b = np.cross(d, a)
    s_all = st.samples_mm()
    need = st.threshold_mm(s_all, diameter_mm)
    prev = 0.0
    for s, rq in zip(s_all, need, strict=True):
        n_r = max(int(np.ceil(rq / (0.5 * voxel_mm))), 0)
        pts = [entry + s * d]
        for k in range(1, n_r + 1):
            rr = rq * k / n_r
            n_phi = max(int(np.ceil(2 * np.pi * rr / (0.5 * voxel_mm))), 6)
            phi = np.linspace(0, 2 * np.pi, n_phi, endpoint=False)
            pts.append(entry + s * d + rr * (np.cos(phi)[:, None] * a + np.sin(phi)[:, None] * b))
        p = np.vstack(pts)
        ijk = np.rint(p @ inv_affine[:3, :3].T + inv_affine[:3, 3]).astype(int)
        ok = np.all((ijk >= 0) & (ijk < bone.shape), axis=1)
        if not ok.all():
            return prev
        idx = tuple(ijk.T)
        if not bone[idx].all() or body[idx].any():
            return prev
        prev = float(s)
    return prev


def bench_phantom(voxel_mm: float, n_ref: int) -> None:
    print(f"== phantom at {voxel_mm} mm ==")
    t0 = time.perf_counter()
    ph = make_phantom(voxel_mm=voxel_mm, noise_hu=20.0, body_destruction_percent=60.0)
    anat = anatomy_from_phantom(ph)
    print(f"phantom + anatomy truth: {time.perf_counter() - t0:.2f} s, CT {ph.ct.shape}")
    t0 = time.perf_counter()
    ctx = context_from_anatomy(anat)
    t_fields = time.perf_counter() - t0
    print(f"distance fields (once per scan): {t_fields:.2f} s, crop {ctx.bone.values.shape}")
    st = SafetySettings()
    grid = AngleGrid()
    results = {}
    t0 = time.perf_counter()
    for side in ("left", "right"):
        results[side] = optimal_trajectory(ctx, side, settings=st, grid=grid)
    t_opt = time.perf_counter() - t0
    n_entries = {s: len(entry_candidates(ctx, s, ctx.point(f"{s}.entry"))) for s in results}
    n_grid = sum(n_entries.values()) * grid.transverse_deg.size * grid.sagittal_deg.size
    marched = sum(r.rays for r in results.values())
    print(f"bilateral optimum (0.5 deg, 1 mm entries): {t_opt:.3f} s wall "
          f"(target < 1 s); grid {n_grid} trajectories, marched {marched} "
          f"({100 * marched / n_grid:.1f} %), {n_grid / t_opt:,.0f} grid trajectories/s, "
          f"{sum(r.samples for r in results.values()):,} trilinear samples")
    for side, r in results.items():
        print(f"  {side}: {r.safe_length_mm:.2f} mm at transverse {r.transverse_deg} deg, "
              f"sagittal {r.sagittal_deg} deg")
    t0 = time.perf_counter()
    zoned = {side: optimal_trajectory(ctx, side, settings=st, grid=grid, tip_zone="ala")
             for side in ("left", "right")}
    t_zone = time.perf_counter() - t0
    print(f"bilateral optimum with --tip-zone ala (zone field built per side): {t_zone:.3f} s "
          "wall (target < 1 s)")
    for side, r in zoned.items():
        print(f"  {side}: {r.safe_length_mm:.2f} mm at transverse {r.transverse_deg} deg, "
              f"sagittal {r.sagittal_deg} deg")

    # reference on random grid trajectories + the optimum
    bone = np.asarray(anat.masks["sacrum"].array, bool) & ~np.asarray(anat.masks["lesion"].array,
                                                                        bool)
    body = np.asarray(anat.masks["s1_body"].array, bool)
    inv = np.linalg.inv(ph.ct.affine)
    rng = np.random.default_rng(0)
    diffs = []
    t_ref = 0.0
    from alarscrew.planning.march import march_safe_length

    s = st.samples_mm()
    for side in ("left", "right"):
        ents = entry_candidates(ctx, side, ctx.point(f"{side}.entry"))
        for i in range(n_ref // 2 + 1):
            if i == 0:
                e, d = results[side].entry_ras_mm, results[side].direction_ras
            else:
                e = ents[rng.integers(len(ents))]
                d = direction_from_angles(ctx.frame, side, rng.choice(grid.transverse_deg),
                                          rng.choice(grid.sagittal_deg))
            t1 = time.perf_counter()
            ref = reference_safe_length(bone, body, inv, e, d, diameter_mm=7.0, st=st,
                                        voxel_mm=voxel_mm)
            t_ref += time.perf_counter() - t1
            ours = march_safe_length(ctx.clearance, e[None], d[None], s,
                                     st.threshold_mm(s, 7.0)).length_mm[0]
            diffs.append(ours - ref)
    n_done = len(diffs)
    per_ray = t_ref / n_done
    diffs = np.asarray(diffs)
    print(f"reference (voxel-by-voxel cylinder): {per_ray * 1e3:.1f} ms per trajectory "
          f"({1 / per_ray:,.0f} trajectories/s); whole grid would take {per_ray * n_grid:,.0f} s "
          f"-> speed-up {per_ray * n_grid / t_opt:,.0f}x")
    print(f"equal answers: planner - reference safe length over {n_done} trajectories: median "
          f"{np.median(diffs):+.2f} mm, 5-95 % [{np.percentile(diffs, 5):+.2f}, "
          f"{np.percentile(diffs, 95):+.2f}] mm; at the optima {diffs[0]:+.2f} / "
          f"{diffs[n_ref // 2 + 1]:+.2f} mm")


def bench_atlas() -> None:
    """Atlas sacra through the real anatomy stage (run_anatomy on the synthetic CT + labels).

    Per side: the optimum in the issue's cone (``tip_zone='any'``) and in the ala zone
    (``tip_zone='ala'``), and both readings of the paper's 30/45 trajectory (``nominal``:
    S1-frame angles; ``nominal_axial``: scanner-frame angles): safe length (7 mm screw) and
    axis in bone.
    """
    from tests.conftest import ATLAS_CASES, SHARED_DATA

    from alarscrew.anatomy import run_anatomy
    from alarscrew.anatomy.labels import load_labels
    from alarscrew.planning.plan import plan_side

    atlas = SHARED_DATA / "atlas"
    if not atlas.exists():
        print(f"atlas not found at {atlas}; skipped")
        return
    print("== 20 atlas sacra (anatomy stage: run_anatomy + labels) ==")
    for zone in ("any", "ala"):
        rows = []
        refusals = []
        for case in ATLAS_CASES:
            ct_p, lab_p = atlas / f"{case}_ct.nii.gz", atlas / f"{case}_labels.nii.gz"
            anat = run_anatomy(ct_p, seg_paths=(lab_p,))
            ctx = context_from_anatomy(anat, labels=load_labels([lab_p], anat.ct))
            for side in ("left", "right"):
                t0 = time.perf_counter()
                out = plan_side(ctx, side, tip_zone=zone)
                dt = time.perf_counter() - t0
                o = out["optimal"]
                nom, nax = out.get("nominal"), out.get("nominal_axial")
                nom_cols = (nom["length_mm"] if nom else np.nan,
                            nom["axis_in_bone_mm"] if nom else np.nan,
                            nax["length_mm"] if nax else np.nan,
                            nax["axis_in_bone_mm"] if nax else np.nan)
                if o is None:
                    refusals.append(f"{case} {side}: {out['reason']}")
                    rows.append((*(np.nan,) * 6, *nom_cols, dt))
                    continue
                rows.append((o["search"]["design_safe_length_mm"], o["transverse_angle_deg"],
                             o["sagittal_angle_deg"], o["recommended_screw"]["length_mm"],
                             o["recommended_screw"]["diameter_mm"],
                             (out["safe_window_deg"] or {}).get("radius_deg") or np.nan,
                             *nom_cols, dt))
        a = np.asarray(rows, float)
        names = ("safe length (7 mm) mm", "transverse deg", "sagittal deg", "screw length mm",
                 "screw diameter mm", "safe window deg", "nominal 30/45 safe mm",
                 "nominal axis in bone mm", "nominal_axial safe mm",
                 "nominal_axial in bone mm", "plan_side s")
        n_safe = int(np.isfinite(a[:, 0]).sum())
        print(f"-- tip zone '{zone}': {n_safe} of {2 * len(ATLAS_CASES)} sides planned safely; "
              "refusals:")
        for r in refusals:
            print(f"  {r}")
        for k, n in enumerate(names):
            if zone == "ala" and 6 <= k <= 9:
                continue  # the nominal screws do not depend on the zone
            col = a[:, k][np.isfinite(a[:, k])]
            if col.size:
                print(f"  {n:<26} median {np.median(col):6.1f}  range {col.min():6.1f} - "
                      f"{col.max():6.1f}  (n={col.size})")


def bench_atlas_fine(case: str = "s02", voxel_mm: float = 0.8) -> None:
    """A real sacrum shape resampled to ``voxel_mm``: bilateral optimum time (not capped)."""
    from scipy import ndimage
    from tests.conftest import SHARED_DATA

    from alarscrew.anatomy import run_anatomy
    from alarscrew.io.image import Image
    from alarscrew.planning.context import build_context

    atlas = SHARED_DATA / "atlas"
    if not atlas.exists():
        return
    anat = run_anatomy(atlas / f"{case}_ct.nii.gz", seg_paths=(atlas / f"{case}_labels.nii.gz",))
    ct = anat.ct
    zoom = ct.spacing_mm / voxel_mm
    aff = ct.affine.copy()
    aff[:3, :3] = ct.affine[:3, :3] / zoom
    # voxel centre i' maps to old continuous index i' / zoom + (1/zoom - 1)/2 (same extent)
    aff[:3, 3] = ct.affine[:3, :3] @ ((1.0 / zoom - 1.0) / 2.0) + ct.affine[:3, 3]
    sac = ndimage.zoom(np.asarray(anat.sacrum.array, np.uint8), zoom, order=0, grid_mode=True,
                       mode="grid-constant") > 0
    hu = ndimage.zoom(np.asarray(ct.array, np.float32), zoom, order=1, grid_mode=True,
                      mode="nearest")
    fine = Image(hu, aff, source=f"{case} at {voxel_mm} mm")
    lms = {k: v.xyz_ras_mm for k, v in anat.landmarks.items()}
    t0 = time.perf_counter()
    ctx = build_context(fine, {"sacrum": fine.with_array(sac, is_label=True)}, anat.frame, lms)
    t_fields = time.perf_counter() - t0
    t0 = time.perf_counter()
    res = {s: optimal_trajectory(ctx, s) for s in ("left", "right") if ctx.point(f"{s}.entry")
           is not None}
    t_opt = time.perf_counter() - t0
    print(f"== atlas {case} resampled to {voxel_mm} mm: CT {fine.shape} ==")
    print(f"distance fields {t_fields:.2f} s; bilateral optimum {t_opt:.3f} s wall "
          f"(target < 1 s), {sum(r.rays for r in res.values())} trajectories marched")
    for s, r in res.items():
        print(f"  {s}: {r.safe_length_mm:.2f} mm at transverse {r.transverse_deg}, "
              f"sagittal {r.sagittal_deg}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--voxel-mm", type=float, default=0.8)
    ap.add_argument("--reference-rays", type=int, default=200)
    ap.add_argument("--no-atlas", action="store_true")
    args = ap.parse_args()
    bench_phantom(args.voxel_mm, args.reference_rays)
    if not args.no_atlas:
        bench_atlas_fine(voxel_mm=args.voxel_mm)
        bench_atlas()


if __name__ == "__main__":
    main()

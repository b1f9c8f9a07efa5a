"""The branch-and-bound optimum equals an exhaustive search of the same grid.

The exhaustive reference below is written independently of ``march``/``search``: every
(entry, direction) of the grid is sampled along its whole axis at once in RAS, converted to
voxels with the image affine, and its safe length found by a plain first-failure scan. Both
use the same definitions (SafetySettings thresholds, trilinear field), so the optimum length
must agree to float round-off (1e-6 mm) and the chosen trajectory must be one of the
exhaustive maximisers (length, then clearance; ties within 1e-9).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from alarscrew.planning.screw import SafetySettings
from alarscrew.planning.search import AngleGrid, entry_candidates, optimize_side, safe_window
from alarscrew.spatial.frame import S1Frame, direction_from_angles
from tests.planning.phantoms import context_from_mask, grid


def exhaustive(ctx, side, entries, g, diameter_mm, st):
    """Safe length and clearance of every grid trajectory: (n_entries, n_sag, n_trans)."""
    s = st.samples_mm()
    thr = st.threshold_mm(s, diameter_mm)
    inv = np.linalg.inv(ctx.clearance.affine)
    sg, tg = np.meshgrid(g.sagittal_deg, g.transverse_deg, indexing="ij")
    dirs = direction_from_angles(ctx.frame, side, tg, sg)  # (ns, nt, 3)
    lengths = np.empty((len(entries), *sg.shape))
    clears = np.empty_like(lengths)
    for ei, e in enumerate(entries):
        pts = e + s[None, None, :, None] * dirs[:, :, None, :]
        ijk = pts @ inv[:3, :3].T + inv[:3, 3]
        vals = ndimage.map_coordinates(ctx.clearance.values, ijk.reshape(-1, 3).T, order=1,
                                       mode="nearest").reshape(pts.shape[:-1])
        gap = vals - thr
        for a in range(gap.shape[0]):
            for b in range(gap.shape[1]):
                row = gap[a, b]
                bad = np.flatnonzero(row < 0)
                if bad.size == 0:
                    lengths[ei, a, b], clears[ei, a, b] = s[-1], row.min()
                elif bad[0] == 0:
                    lengths[ei, a, b], clears[ei, a, b] = 0.0, -np.inf
                else:
                    k = bad[0]
                    lengths[ei, a, b] = s[k - 1] + (s[k] - s[k - 1]) * row[k - 1] / (
                        row[k - 1] - row[k])
                    clears[ei, a, b] = row[:k].min()
    return lengths, clears


@pytest.fixture(scope="module")
def wing():
    """A tilted 'ala': a slab with an oblique anterior face, a cavity and a tilted frame."""
    aff, xyz = grid((90, 90, 90), origin=(-44.5, -29.5, -54.5))
    x, y, z = xyz[..., 0], xyz[..., 1], xyz[..., 2]
    mask = (y > 0) & (y < 40 - 0.3 * x + 0.2 * z) & (x > -10) & (x < 40) & (z > -45) & (z < 20)
    mask &= np.hypot(np.hypot(x - 14, y - 18), z + 14) > 6  # a cavity to steer around
    frame = S1Frame.from_axes(np.zeros(3), cranial_ras=[0, 0.25, 1.0], anterior_ras=[0, 1, 0])
    return context_from_mask(mask, aff, frame=frame)


@pytest.mark.parametrize(("diameter_mm", "cap_mm", "grid"), [
    (6.5, 60.0, ((0, 60), (0, 75), 1.5)),
    (8.0, 60.0, ((0, 60), (0, 75), 1.5)),
    (7.0, 30.0, ((0, 60), (0, 75), 1.5)),
    (7.0, 60.0, ((0, 15), (35, 55), 0.5)),  # the production 0.5-degree step, around the optimum
])
def test_branch_and_bound_equals_exhaustive(wing, diameter_mm, cap_mm, grid):
    """cap 30 mm: many trajectories reach the cap, so the clearance tie-break decides."""
    st = SafetySettings(max_length_mm=cap_mm)
    g = AngleGrid.regular(*grid)
    entries = entry_candidates(wing, "right", np.array([5.0, -5.0, 0.0]), radius_mm=2.0)
    assert len(entries) == 13  # disc of radius 2 on a 1 mm grid
    res = optimize_side(wing, "right", entries, diameter_mm=diameter_mm, settings=st, grid=g)
    lengths, clears = exhaustive(wing, "right", entries, g, diameter_mm, st)
    assert res.safe_length_mm == pytest.approx(lengths.max(), abs=1e-6)
    best = lengths >= lengths.max() - 1e-6
    assert res.clearance_mm == pytest.approx(clears[best].max(), abs=1e-6)
    assert best[res.entry_index, res.sagittal_index, res.transverse_index]
    # the pruning did real work: fewer trajectories marched than the grid holds
    assert res.rays < lengths.size


def test_safe_window_brackets_unsafe_neighbours(wing):
    st = SafetySettings()
    g = AngleGrid.regular((0, 60), (0, 75), 1.0)
    entries = entry_candidates(wing, "right", np.array([5.0, -5.0, 0.0]), radius_mm=1.0)
    res = optimize_side(wing, "right", entries, diameter_mm=7.0, settings=st, grid=g)
    need = res.safe_length_mm - 2.0
    win = safe_window(wing, "right", res.entry_ras_mm, res.transverse_deg, res.sagittal_deg,
                      length_mm=need, diameter_mm=7.0, settings=st, step_deg=0.5)
    # independent check along the transverse line: first unsafe offset by brute force
    lengths, _ = exhaustive(wing, "right", [res.entry_ras_mm],
                            AngleGrid(res.transverse_deg + np.arange(0.5, 15.01, 0.5),
                                      np.array([res.sagittal_deg])), 7.0, st)
    unsafe = np.flatnonzero(lengths[0, 0] < need - 1e-9)
    expect = None if unsafe.size == 0 else 0.5 * (unsafe[0] + 1)
    assert win.transverse_plus_deg == expect
    assert win.radius_deg is None or win.radius_deg <= min(
        v for v in (win.transverse_minus_deg, win.transverse_plus_deg,
                    win.sagittal_minus_deg, win.sagittal_plus_deg, 99) if v is not None) + 0.05


def test_density_objective_equals_exhaustive(wing):
    """Density optimum = argmax of integral_0^L HU ds over all grid trajectories with
    L >= 30 mm, computed here with the independent exhaustive lengths and a direct HU
    integration (same samples every 0.5 mm), on a CT whose HU rises towards +x."""
    from alarscrew.io.image import Image
    from alarscrew.planning.context import build_context
    from alarscrew.planning.search import optimize_side_density

    st = SafetySettings()
    ct0 = wing.ct
    ijk = np.stack(np.meshgrid(*[np.arange(n) for n in ct0.shape], indexing="ij"), -1)
    x = (ijk @ ct0.affine[:3, :3].T + ct0.affine[:3, 3])[..., 0]
    bone = np.asarray(ct0.array) > 100
    ct = Image(np.where(bone, 150.0 + 4.0 * x, 40.0), ct0.affine, source="graded")
    ctx = build_context(ct, {"sacrum": ct.with_array(bone, is_label=True)}, wing.frame, {},
                        pad_mm=20.0)
    g = AngleGrid.regular((0, 60), (0, 75), 3.0)
    entries = entry_candidates(ctx, "right", np.array([5.0, -5.0, 0.0]), radius_mm=1.0)
    res = optimize_side_density(ctx, "right", entries, diameter_mm=7.0, min_length_mm=30.0,
                                settings=st, grid=g)
    lengths, _ = exhaustive(ctx, "right", entries, g, 7.0, st)
    s_hu = np.arange(0.0, st.max_length_mm + 1e-9, st.step_mm)
    sg, tg = np.meshgrid(g.sagittal_deg, g.transverse_deg, indexing="ij")
    dirs = direction_from_angles(ctx.frame, "right", tg, sg)
    best, arg = -np.inf, None
    for ei, e in enumerate(entries):
        for a in range(sg.shape[0]):
            for b in range(sg.shape[1]):
                L = lengths[ei, a, b]
                if L < 30.0:
                    continue
                hu = ctx.hu.sample(e + s_hu[s_hu <= L][:, None] * dirs[a, b])
                score = hu.sum() * st.step_mm
                if score > best + 1e-9:
                    best, arg = score, (ei, a, b)
    assert res.clearance_mm == pytest.approx(best, rel=1e-9)
    assert (res.entry_index, res.sagittal_index, res.transverse_index) == arg

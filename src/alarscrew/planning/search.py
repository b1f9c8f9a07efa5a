"""Optimal trajectory per side: the longest safe screw over entries x directions.

The search is exact on its grid (entries on a 1 mm grid, angles on a 0.5 degree grid by
default): it returns the same optimum as evaluating every grid trajectory, but prunes blocks of
directions with a provable bound instead of marching them all.

Bound. For a block of directions around a representative ``d0`` (same entry), a member ``d``
differs by at most ``delta = |dt| + |ds|`` (radians; chord length of unit vectors), so at depth
``s`` the two axis points are at most ``s * delta`` apart. The clearance field is a trilinear
interpolant of a 1-Lipschitz grid function, hence ``sqrt(3)``-Lipschitz. If the representative
fails the relaxed test ``g0(s_k) + sqrt(3) * delta * s_k < 0`` at sample ``k``, every member fails
at or before ``k`` and its safe length is at most ``s_k``. Blocks whose bound is below the best
length found so far are dropped; the others are split in four until single directions remain.
When the best length already reaches the cap (``max_length_mm``), a member can only tie by
reaching the cap as well, with a clearance at most the representative's smallest relaxed value
``min_k g0(s_k) + sqrt(3) * delta * s_k``; blocks below the best clearance are dropped too.
Ties are broken by the larger clearance, then by the lower grid index (entry, sagittal,
transverse), so the answer is deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from alarscrew.errors import AnatomyNotFoundError
from alarscrew.planning.context import PlanningContext
from alarscrew.planning.fields import TRILINEAR_LIPSCHITZ, GridField
from alarscrew.planning.march import axial_samples, march_safe_length
from alarscrew.planning.screw import SafetySettings
from alarscrew.spatial.frame import Side, direction_from_angles


@dataclass(frozen=True)
class AngleGrid:
    """Transverse x sagittal angle grid (deg) of the search cone."""

    transverse_deg: np.ndarray = field(
        default_factory=lambda: np.round(np.arange(0.0, 60.0 + 1e-9, 0.5), 6))
    sagittal_deg: np.ndarray = field(
        default_factory=lambda: np.round(np.arange(0.0, 75.0 + 1e-9, 0.5), 6))

    @classmethod
    def regular(cls, transverse: tuple[float, float], sagittal: tuple[float, float],
                step_deg: float) -> AngleGrid:
        """Grid from ranges (deg, inclusive) and a step."""
        t = np.round(np.arange(transverse[0], transverse[1] + 1e-9, step_deg), 6)
        s = np.round(np.arange(sagittal[0], sagittal[1] + 1e-9, step_deg), 6)
        return cls(t, s)


@dataclass(frozen=True)
class SearchResult:
    """Optimum of :func:`optimize_side`.

    Attributes
    ----------
    entry_ras_mm, direction_ras : (3,) ndarray
    transverse_deg, sagittal_deg : float
    safe_length_mm : float
        Longest safe length found (capped at ``SafetySettings.max_length_mm``).
    clearance_mm : float
        Smallest clearance beyond radius + margin along the safe stretch (tie-breaker); for
        :func:`optimize_side_density` the objective instead (integrated HU x mm).
    entry_index, transverse_index, sagittal_index : int
    rays : int
        Trajectories marched (representatives included).
    samples : int
        Trilinear samples taken.
    """

    entry_ras_mm: np.ndarray
    direction_ras: np.ndarray
    transverse_deg: float
    sagittal_deg: float
    safe_length_mm: float
    clearance_mm: float
    entry_index: int
    transverse_index: int
    sagittal_index: int
    rays: int
    samples: int


def entry_candidates(ctx: PlanningContext, side: Side, center_ras_mm: np.ndarray, *,
                     radius_mm: float = 4.0, spacing_mm: float = 1.0,
                     snap_mm: float = 15.0) -> np.ndarray:
    """Entry points on a grid around a landmark, snapped onto the dorsal bone surface.

    Parameters
    ----------
    ctx : PlanningContext
    side : {'left', 'right'}
    center_ras_mm : (3,) array
        The ``{side}.entry`` landmark.
    radius_mm, spacing_mm : float
        Disc of grid points in the S1 frame's lateral x cranial plane through the landmark.
    snap_mm : float
        Each grid point is moved along the anterior axis, from ``snap_mm`` behind to
        ``snap_mm`` in front, to the first point where the bone begins (zero crossing of the
        signed distance). Points that meet no bone are dropped.

    Returns
    -------
    (M, 3) ndarray
        Snapped entries, world RAS mm, ordered by (cranial, lateral) grid offset.
    """
    fr = ctx.frame
    lat, cra, ant = fr.lateral_ras(side), fr.cranial_ras, fr.anterior_ras
    n = int(np.floor(radius_mm / spacing_mm + 1e-9))
    off = spacing_mm * np.arange(-n, n + 1)
    v, u = np.meshgrid(off, off, indexing="ij")
    keep = u**2 + v**2 <= radius_mm**2 + 1e-9
    grid = (np.asarray(center_ras_mm, float) + u[keep, None] * lat + v[keep, None] * cra)
    s = axial_samples(start_mm=0.0, stop_mm=2 * snap_mm, step_mm=0.25)
    pts = grid[:, None, :] + (s[None, :, None] - snap_mm) * ant
    sd = ctx.bone.sample(pts)
    inside = sd >= 0
    hit = inside.any(axis=1)
    k = np.argmax(inside, axis=1)
    k_prev = np.maximum(k - 1, 0)
    rows = np.arange(len(grid))
    a, b = sd[rows, k_prev], sd[rows, k]
    frac = np.where((k > 0) & (a != b), a / np.where(a != b, a - b, 1.0), 0.0)
    s_hit = s[k_prev] + (s[k] - s[k_prev]) * frac - snap_mm
    snapped = grid + s_hit[:, None] * ant
    if not hit.any():
        raise AnatomyNotFoundError(
            f"{side} entry region: no bone within {snap_mm:g} mm of the entry landmark "
            f"{np.round(center_ras_mm, 1).tolist()} along the anterior axis")
    return snapped[hit]


def _better(a_len: np.ndarray, a_clr: np.ndarray, a_flat: np.ndarray) -> int:
    """Index of the best candidate: max length, then max clearance, then min flat index."""
    return int(np.lexsort((a_flat, -a_clr, -a_len))[0])


def optimize_side(ctx: PlanningContext, side: Side, entries_ras_mm: np.ndarray, *,
                  diameter_mm: float, settings: SafetySettings | None = None,
                  grid: AngleGrid | None = None, field: GridField | None = None,
                  block: int = 16) -> SearchResult:
    """Longest safe trajectory over entries x angle grid, by branch and bound (exact on grid).

    Parameters
    ----------
    ctx : PlanningContext
    side : {'left', 'right'}
    entries_ras_mm : (M, 3) ndarray
        Candidate entries (e.g. from :func:`entry_candidates`).
    diameter_mm : float
        Screw diameter for the containment test (radius + margin clearance).
    settings : SafetySettings, optional
    grid : AngleGrid, optional
        Default: transverse 0-60, sagittal 0-75 deg, 0.5 deg steps.
    field : GridField, optional
        Clearance field; default ``ctx.clearance`` (bone, outside the S1 body).
    block : int
        Initial block size (angle indices per side), a power of two.

    Returns
    -------
    SearchResult
    """
    st = settings or SafetySettings()
    g = grid or AngleGrid()
    fld = field or ctx.clearance
    entries = np.asarray(entries_ras_mm, float).reshape(-1, 3)
    if entries.shape[0] == 0:
        raise AnatomyNotFoundError(f"{side}: no entry candidate on the bone surface")
    t_deg, s_deg = np.asarray(g.transverse_deg, float), np.asarray(g.sagittal_deg, float)
    nt, ns = t_deg.size, s_deg.size
    dt = np.radians(np.diff(t_deg).max()) if nt > 1 else 0.0
    ds = np.radians(np.diff(s_deg).max()) if ns > 1 else 0.0
    s = st.samples_mm()
    thr = st.threshold_mm(s, diameter_mm)

    e0, ts0, ss0 = np.meshgrid(np.arange(entries.shape[0]), np.arange(0, nt, block),
                               np.arange(0, ns, block), indexing="ij")
    cells_e, cells_t, cells_s = e0.ravel(), ts0.ravel(), ss0.ravel()
    size = block
    best = (-np.inf, -np.inf, np.iinfo(np.int64).max)
    best_idx = (0, 0, 0)
    rays = samples = 0
    while cells_e.size:
        t_hi = np.minimum(cells_t + size, nt) - 1
        s_hi = np.minimum(cells_s + size, ns) - 1
        tc, sc = (cells_t + t_hi) // 2, (cells_s + s_hi) // 2
        delta = (np.maximum(tc - cells_t, t_hi - tc) * dt
                 + np.maximum(sc - cells_s, s_hi - sc) * ds)
        dirs = direction_from_angles(ctx.frame, side, t_deg[tc], s_deg[sc])
        res = march_safe_length(fld, entries[cells_e], dirs, s, thr,
                                slack_per_mm=TRILINEAR_LIPSCHITZ * delta)
        rays += cells_e.size
        samples += res.samples
        flat = (cells_e.astype(np.int64) * ns + sc) * nt + tc
        i = _better(res.length_mm, res.clearance_mm, flat)
        cand = (float(res.length_mm[i]), float(res.clearance_mm[i]), int(flat[i]))
        if (cand[0], cand[1], -cand[2]) > (best[0], best[1], -best[2]):
            best, best_idx = cand, (int(cells_e[i]), int(tc[i]), int(sc[i]))
        if size == 1:
            break
        keep = res.bound_mm >= best[0]
        if best[0] >= s[-1]:
            # the best already reaches the cap: a member can only tie by reaching it too, and
            # then its clearance is at most the representative's relaxed minimum
            keep &= res.bound_clearance_mm >= best[1]
        half = size // 2
        ce, ct, cs = cells_e[keep], cells_t[keep], cells_s[keep]
        kids_e, kids_t, kids_s = [], [], []
        for a in (0, half):
            for b in (0, half):
                ok = (ct + a < nt) & (cs + b < ns)
                kids_e.append(ce[ok])
                kids_t.append(ct[ok] + a)
                kids_s.append(cs[ok] + b)
        cells_e, cells_t, cells_s = (np.concatenate(kids_e), np.concatenate(kids_t),
                                     np.concatenate(kids_s))
        size = half
    ei, ti, si = best_idx
    d = direction_from_angles(ctx.frame, side, t_deg[ti], s_deg[si])
    return SearchResult(
        entry_ras_mm=entries[ei], direction_ras=d, transverse_deg=float(t_deg[ti]),
        sagittal_deg=float(s_deg[si]), safe_length_mm=best[0], clearance_mm=best[1],
        entry_index=ei, transverse_index=ti, sagittal_index=si, rays=rays, samples=samples)


def safe_length_map(ctx: PlanningContext, side: Side, entry_ras_mm: np.ndarray, *,
                    diameter_mm: float, settings: SafetySettings | None = None,
                    grid: AngleGrid | None = None, field: GridField | None = None
                    ) -> np.ndarray:
    """Safe length (mm) for every direction of ``grid`` from one entry.

    Returns
    -------
    (n_sagittal, n_transverse) ndarray
        Rows = sagittal angle, columns = transverse angle.
    """
    st = settings or SafetySettings()
    g = grid or AngleGrid.regular((0, 60), (0, 75), 1.0)
    fld = field or ctx.clearance
    sg, tg = np.meshgrid(g.sagittal_deg, g.transverse_deg, indexing="ij")
    dirs = direction_from_angles(ctx.frame, side, tg.ravel(), sg.ravel())
    s = st.samples_mm()
    res = march_safe_length(fld, np.broadcast_to(entry_ras_mm, dirs.shape), dirs, s,
                            st.threshold_mm(s, diameter_mm))
    return res.length_mm.reshape(sg.shape)


@dataclass(frozen=True)
class SafeWindow:
    """Aiming error (deg) around a trajectory that keeps a screw of a given length safe.

    ``radius_deg`` is the angle to the nearest unsafe direction tried (on a ``step_deg`` grid
    within ``limit_deg``); the per-axis values are the nearest unsafe offsets along each angle
    with the other held. ``None`` in a field means no unsafe direction within ``limit_deg``.
    """

    radius_deg: float | None
    transverse_minus_deg: float | None
    transverse_plus_deg: float | None
    sagittal_minus_deg: float | None
    sagittal_plus_deg: float | None
    required_length_mm: float
    step_deg: float
    limit_deg: float

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        return {k: getattr(self, k) for k in (
            "radius_deg", "transverse_minus_deg", "transverse_plus_deg", "sagittal_minus_deg",
            "sagittal_plus_deg", "required_length_mm", "step_deg", "limit_deg")}


def safe_window(ctx: PlanningContext, side: Side, entry_ras_mm: np.ndarray,
                transverse_deg: float, sagittal_deg: float, *, length_mm: float,
                diameter_mm: float, settings: SafetySettings | None = None,
                field: GridField | None = None, step_deg: float = 0.5,
                limit_deg: float = 15.0) -> SafeWindow:
    """How many degrees of aiming error keep a ``length_mm`` screw safe from this entry."""
    st = settings or SafetySettings()
    fld = field or ctx.clearance
    off = step_deg * np.arange(-round(limit_deg / step_deg), round(limit_deg / step_deg) + 1)
    dS, dT = np.meshgrid(off, off, indexing="ij")
    dirs = direction_from_angles(ctx.frame, side, transverse_deg + dT.ravel(),
                                 sagittal_deg + dS.ravel())
    s = st.samples_mm()
    res = march_safe_length(fld, np.broadcast_to(entry_ras_mm, dirs.shape), dirs, s,
                            st.threshold_mm(s, diameter_mm))
    unsafe = (res.length_mm < length_mm - 1e-9).reshape(dS.shape)
    d0 = direction_from_angles(ctx.frame, side, np.asarray(transverse_deg),
                               np.asarray(sagittal_deg))
    ang = np.degrees(np.arccos(np.clip(dirs @ d0, -1, 1))).reshape(dS.shape)
    radius = float(np.round(ang[unsafe].min(), 3)) if unsafe.any() else None
    mid = len(off) // 2

    def nearest(line: np.ndarray, sign: int) -> float | None:
        sel = (np.sign(off) == sign) & line
        return float(np.abs(off[sel]).min()) if sel.any() else None

    return SafeWindow(radius, nearest(unsafe[mid, :], -1), nearest(unsafe[mid, :], 1),
                      nearest(unsafe[:, mid], -1), nearest(unsafe[:, mid], 1),
                      float(length_mm), float(step_deg), float(limit_deg))


def optimize_side_density(ctx: PlanningContext, side: Side, entries_ras_mm: np.ndarray, *,
                          diameter_mm: float, min_length_mm: float,
                          settings: SafetySettings | None = None, grid: AngleGrid | None = None,
                          chunk: int = 20000) -> SearchResult:
    """Density-weighted optimum: the safe trajectory with the most bone along its screw.

    Every grid trajectory is marched (no pruning: the HU objective has no Lipschitz bound);
    among those with a safe length of at least ``min_length_mm`` the one maximising
    ``integral_0^L HU(s) ds`` (HU x mm, trilinear HU samples every ``step_mm``, L the safe
    length) wins; ties by length, then lower grid index. The default grid is 1 degree (the
    full 0.5-degree grid costs about four times more).

    Raises
    ------
    AnatomyNotFoundError
        When no entry is given.
    """
    st = settings or SafetySettings()
    g = grid or AngleGrid.regular((0, 60), (0, 75), 1.0)
    entries = np.asarray(entries_ras_mm, float).reshape(-1, 3)
    if entries.shape[0] == 0:
        raise AnatomyNotFoundError(f"{side}: no entry candidate on the bone surface")
    t_deg, s_deg = np.asarray(g.transverse_deg, float), np.asarray(g.sagittal_deg, float)
    nt = t_deg.size
    sg, tg = np.meshgrid(s_deg, t_deg, indexing="ij")
    dirs = direction_from_angles(ctx.frame, side, tg.ravel(), sg.ravel())  # (ns*nt, 3)
    s = st.samples_mm()
    thr = st.threshold_mm(s, diameter_mm)
    n_dir = dirs.shape[0]
    total = entries.shape[0] * n_dir
    e_idx = np.repeat(np.arange(entries.shape[0]), n_dir)
    d_idx = np.tile(np.arange(n_dir), entries.shape[0])
    lengths = np.empty(total)
    samples = 0
    for a in range(0, total, chunk):
        sl = slice(a, a + chunk)
        res = march_safe_length(ctx.clearance, entries[e_idx[sl]], dirs[d_idx[sl]], s, thr)
        lengths[sl] = res.length_mm
        samples += res.samples
    ok = np.flatnonzero(lengths >= min_length_mm)
    if ok.size == 0:
        i = int(np.argmax(lengths))
        score = np.array([0.0])
        cand = np.array([i])
    else:
        s_hu = np.arange(0.0, st.max_length_mm + 1e-9, st.step_mm)
        score = np.empty(ok.size)
        for a in range(0, ok.size, chunk // 4 or 1):
            idx = ok[a:a + chunk // 4 or 1]
            pts = (entries[e_idx[idx], None, :]
                   + s_hu[None, :, None] * dirs[d_idx[idx], None, :])
            hu = ctx.hu.sample(pts)
            samples += hu.size
            inside = s_hu[None, :] <= lengths[idx, None]
            score[a:a + idx.size] = (hu * inside).sum(axis=1) * st.step_mm
        cand = ok
    order = np.lexsort((cand, -lengths[cand], -score))
    i = int(cand[order[0]])
    ei, di = int(e_idx[i]), int(d_idx[i])
    si, ti = divmod(di, nt)
    return SearchResult(
        entry_ras_mm=entries[ei], direction_ras=dirs[di], transverse_deg=float(t_deg[ti]),
        sagittal_deg=float(s_deg[si]), safe_length_mm=float(lengths[i]),
        clearance_mm=float(score[order[0]]), entry_index=ei, transverse_index=ti,
        sagittal_index=si, rays=total, samples=samples)

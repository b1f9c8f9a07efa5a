"""Lockstep ray marching: the safe length of many trajectories at once.

All rays advance together through the same list of axial sample positions; a ray leaves the
active set as soon as its constraint fails, so the work is proportional to the lengths actually
travelled. Used by the optimiser (thousands of rays per call) and by the bench.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from alarscrew.planning.fields import GridField


@dataclass(frozen=True)
class MarchResult:
    """Per-ray results of :func:`march_safe_length`.

    Attributes
    ----------
    length_mm : (N,) ndarray
        Safe length: the axial position where ``value - threshold`` first drops below zero,
        linearly interpolated between the last passing and the first failing sample; 0 when
        the first sample already fails; the last sample position when it never fails.
    clearance_mm : (N,) ndarray
        Smallest ``value - threshold`` over the passing samples (-inf when none passed).
    bound_mm : (N,) ndarray
        Position of the first sample failing the relaxed test
        ``value - threshold + slack * s < 0`` (equals a sample position; the last sample
        when it never fails). With ``slack = 0`` it is an upper bound of ``length_mm``.
    bound_clearance_mm : (N,) ndarray
        Smallest relaxed value ``value - threshold + slack * s`` over the samples marched
        before the relaxed test failed (over all samples when it never failed).
    samples : int
        Number of trilinear samples taken (for the bench).
    """

    length_mm: np.ndarray
    clearance_mm: np.ndarray
    bound_mm: np.ndarray
    bound_clearance_mm: np.ndarray
    samples: int


def march_safe_length(field: GridField, start_ras_mm: np.ndarray, direction_ras: np.ndarray,
                      s_mm: np.ndarray, threshold_mm: np.ndarray, *,
                      slack_per_mm: np.ndarray | None = None, block: int = 12) -> MarchResult:
    """March N rays in lockstep and return where each first violates ``field >= threshold``.

    Parameters
    ----------
    field : GridField
        Clearance field in mm (e.g. signed distance to the bone surface).
    start_ras_mm : (N, 3) ndarray
        Ray origins (screw entry points), world RAS mm.
    direction_ras : (N, 3) ndarray
        Unit ray directions, world RAS.
    s_mm : (K,) ndarray
        Increasing axial sample positions (mm from the origin), shared by all rays.
    threshold_mm : (K,) ndarray
        Required field value at each sample position (e.g. radius + margin).
    slack_per_mm : (N,) ndarray, optional
        Relaxation rate for :attr:`MarchResult.bound_mm` (see there); zero when omitted.
    block : int
        Samples processed per lockstep step.

    Returns
    -------
    MarchResult
    """
    start = field.to_ijk(np.asarray(start_ras_mm, float).reshape(-1, 3))
    step = field.dir_to_ijk(np.asarray(direction_ras, float).reshape(-1, 3))
    s = np.asarray(s_mm, float)
    thr = np.asarray(threshold_mm, float)
    n, k_total = start.shape[0], s.size
    slack = np.zeros(n) if slack_per_mm is None else np.asarray(slack_per_mm, float)
    length = np.full(n, s[-1])
    bound = np.full(n, s[-1])
    clearance = np.full(n, np.inf)
    relaxed_min = np.full(n, np.inf)
    last_g = np.full(n, np.nan)
    exact_open = np.ones(n, bool)
    active = np.arange(n)
    samples = 0
    for k0 in range(0, k_total, block):
        if active.size == 0:
            break
        s_blk = s[k0:k0 + block]
        nb = s_blk.size
        pts = start[active, None, :] + s_blk[None, :, None] * step[active, None, :]
        g = field.sample_ijk(pts) - thr[None, k0:k0 + nb]
        samples += g.size
        # exact test, only for rays whose exact test has not failed yet
        ex = exact_open[active]
        if ex.any():
            ga = g[ex]
            rows = active[ex]
            fail = ga < 0
            hit = fail.any(axis=1)
            first = np.where(hit, fail.argmax(axis=1), nb)
            before = np.arange(nb)[None, :] < first[:, None]
            clearance[rows] = np.minimum(clearance[rows],
                                         np.where(before, ga, np.inf).min(axis=1))
            if hit.any():
                r_hit = rows[hit]
                f = first[hit]
                g_fail = ga[hit, f]
                kk = k0 + f
                prev_g = np.where(f > 0, ga[hit, np.maximum(f - 1, 0)], last_g[r_hit])
                s_fail = s[kk]
                s_prev = s[np.maximum(kk - 1, 0)]
                frac = prev_g / (prev_g - g_fail)
                length[r_hit] = np.where(kk == 0, 0.0, s_prev + (s_fail - s_prev) * frac)
                exact_open[r_hit] = False
            last_g[rows] = ga[:, -1]
        # relaxed test (the bound)
        gr = g + slack[active, None] * s_blk[None, :]
        fail_r = gr < 0
        hit_r = fail_r.any(axis=1)
        relaxed_min[active] = np.minimum(relaxed_min[active], gr.min(axis=1))
        if hit_r.any():
            bound[active[hit_r]] = s_blk[fail_r[hit_r].argmax(axis=1)]
        active = active[~hit_r]
    clearance[np.isinf(clearance)] = -np.inf
    return MarchResult(length, clearance, bound, relaxed_min, samples)


def axial_samples(*, start_mm: float, stop_mm: float, step_mm: float) -> np.ndarray:
    """Sample positions ``start, start+step, ...`` up to and including ``stop`` (mm)."""
    n = int(np.floor((stop_mm - start_mm) / step_mm + 1e-9)) + 1
    s = start_mm + step_mm * np.arange(n)
    if s[-1] < stop_mm - 1e-9:
        s = np.append(s, stop_mm)
    return s

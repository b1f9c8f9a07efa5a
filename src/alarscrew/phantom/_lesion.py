"""Exact S1 body loss of the phantom's lesion (ball intersected with the S1 body cylinder).

The S1 body is the elliptic cylinder ``(x/a)^2 + (y/b)^2 <= 1``, ``-h <= z <= 0`` (frame mm);
the lesion is the ball of radius ``r`` centred at ``c`` (at the pedicle level), clipped to
the body. Areas are integrals over ``x`` of the overlap of two intervals (the ellipse chord
and the disc chord), evaluated with a dense midpoint rule; volumes integrate those areas
over ``z``. Both are accurate to far better than 0.01 percentage point (the integrands are
continuous; the midpoint rule's error near the square-root end points is O(h^1.5)).
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import brentq


def section_overlap_mm2(a_mm: float, b_mm: float, center_xy_mm: np.ndarray,
                        radius_mm: np.ndarray, *, n_x: int = 20000) -> np.ndarray:
    """Area (mm^2) of ellipse ``(x/a)^2 + (y/b)^2 <= 1`` intersected with discs.

    Parameters
    ----------
    a_mm, b_mm : float
        Ellipse semi-axes along x and y.
    center_xy_mm : (2,) ndarray
        Disc centre.
    radius_mm : (M,) ndarray
        Disc radii (0 or negative means empty).
    n_x : int
        Midpoint-rule samples over ``[-a, a]``.

    Returns
    -------
    (M,) ndarray
    """
    rad = np.atleast_1d(np.asarray(radius_mm, float))[:, None]
    h = 2.0 * a_mm / n_x
    x = -a_mm + h * (np.arange(n_x) + 0.5)
    half_e = b_mm * np.sqrt(np.clip(1.0 - (x / a_mm) ** 2, 0.0, None))
    dx2 = (x - center_xy_mm[0]) ** 2
    half_d = np.sqrt(np.clip(rad**2 - dx2, 0.0, None))
    lo = np.maximum(-half_e, center_xy_mm[1] - half_d)
    hi = np.minimum(half_e, center_xy_mm[1] + half_d)
    length = np.where(rad**2 > dx2, np.clip(hi - lo, 0.0, None), 0.0)
    return length.sum(axis=1) * h


def solve_radius_mm(target_fraction: float, a_mm: float, b_mm: float,
                    center_xy_mm: np.ndarray) -> float:
    """Ball radius whose section at its centre covers ``target_fraction`` of the ellipse."""
    if target_fraction <= 0.0:
        return 0.0
    t = np.linspace(0.0, 2.0 * np.pi, 4001)
    r_max = float(np.max(np.hypot(a_mm * np.cos(t) - center_xy_mm[0],
                                  b_mm * np.sin(t) - center_xy_mm[1]))) + 1e-6
    if target_fraction >= 1.0:
        return r_max + 0.01
    area = np.pi * a_mm * b_mm

    def f(r: float) -> float:
        return float(section_overlap_mm2(a_mm, b_mm, center_xy_mm, np.array([r]))[0]
                     / area - target_fraction)

    return float(brentq(f, 0.0, r_max, xtol=1e-9))


def lesion_fractions(a_mm: float, b_mm: float, height_mm: float, center_mm: np.ndarray,
                     radius_mm: float, *, level_z_mm: float, n_z: int = 1500,
                     n_x: int = 6000) -> tuple[float, float]:
    """(area fraction at ``level_z_mm``, volume fraction) of the body taken by the lesion."""
    if radius_mm <= 0:
        return 0.0, 0.0
    c = np.asarray(center_mm, float)
    area = np.pi * a_mm * b_mm
    rho_level = np.sqrt(max(radius_mm**2 - (level_z_mm - c[2]) ** 2, 0.0))
    frac_area = float(section_overlap_mm2(a_mm, b_mm, c[:2], np.array([rho_level]))[0] / area)
    hz = height_mm / n_z
    z = -height_mm + hz * (np.arange(n_z) + 0.5)
    rho = np.sqrt(np.clip(radius_mm**2 - (z - c[2]) ** 2, 0.0, None))
    vol = float(section_overlap_mm2(a_mm, b_mm, c[:2], rho, n_x=n_x).sum() * hz)
    # an overlap cannot exceed the ellipse: clip the quadrature's last ~1e-7 of excess
    return min(frac_area, 1.0), min(vol / (area * height_mm), 1.0)

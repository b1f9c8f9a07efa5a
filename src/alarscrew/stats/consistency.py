"""Consistency tests of reported summary statistics: GRIM, GRIMMER, SD and mean bounds.

All tests work on the *reported* numbers as printed (decimal strings, so that trailing
zeros count: ``"2.30"`` has two decimals) and use exact rational arithmetic
(:class:`fractions.Fraction`), so a boundary case is never decided by a float error.
A reported number ``x`` with ``d`` decimals stands for every true value in the closed
interval ``[x - 5·10^-(d+1), x + 5·10^-(d+1)]``: both rounding of a trailing 5 up and
down are accepted (scrutiny's ``rounding = "up_or_down"``), so a test only fails when no
rounding convention at all could give the printed number.

References
----------
.. [1] Brown NJL, Heathers JAJ. The GRIM test: a simple technique detects numerous
   anomalies in the reporting of results in psychology. Soc Psychol Personal Sci.
   2017;8(4):363-369. doi:10.1177/1948550616673876
.. [2] Anaya J. The GRIMMER test: a method for testing the validity of reported measures
   of variability. PeerJ Preprints 2016;4:e2400v1.
.. [3] Allard A. Analytic-GRIMMER: a new way of testing the possibility of standard
   deviations. 2018. https://aurelienallard.netlify.app/post/anaytic-grimmer-possibility-standard-deviations/
.. [4] Bhatia R, Davis C. A better bound on the variance. Am Math Mon. 2000;107(4):353-357.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from fractions import Fraction

from alarscrew.errors import InputError

__all__ = [
    "ReportedNumber",
    "grim",
    "grimmer",
    "mean_bounds_from_range",
    "min_p_rank_test",
    "odi_min_missing_sections",
    "parse_reported",
    "sd_bounds_from_range",
]


@dataclass(frozen=True)
class ReportedNumber:
    """A number as printed: its text, value and the half-width of its rounding interval.

    Attributes
    ----------
    text : str
        The number as printed, e.g. ``"7.3"``.
    value : Fraction
        Its exact value.
    decimals : int
        Number of decimals printed.
    """

    text: str
    value: Fraction
    decimals: int

    @property
    def half_unit(self) -> Fraction:
        """Half of the last printed digit's unit: ``5·10^-(decimals+1)``."""
        return Fraction(1, 2 * 10**self.decimals)

    @property
    def lower(self) -> Fraction:
        """Smallest true value that rounds to the printed number."""
        return self.value - self.half_unit

    @property
    def upper(self) -> Fraction:
        """Largest true value that rounds to the printed number."""
        return self.value + self.half_unit

    def covers(self, x: float, *, tol: float = 1e-9) -> bool:
        """Whether the true value ``x`` rounds (up or down) to the printed number."""
        return float(self.lower) - tol <= x <= float(self.upper) + tol

    def __float__(self) -> float:
        return float(self.value)


def parse_reported(value: object, *, field: str = "value") -> ReportedNumber:
    """Parse a reported number, keeping its printed decimals.

    Parameters
    ----------
    value : str or int or float
        ``"7.30"`` (string: trailing zeros kept), ``7`` or ``7.3`` (float: its shortest
        repr gives the decimals, so trailing zeros are lost; quote such numbers).
    field : str
        Name used in the error message.

    Returns
    -------
    ReportedNumber

    Raises
    ------
    InputError
        If the value is not a finite decimal number.
    """
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise InputError(f"expected a number such as \"7.3\", got {value!r}", column=field)
    text = value.strip() if isinstance(value, str) else repr(value)
    try:
        dec = Decimal(text)
    except InvalidOperation:
        raise InputError(f"expected a decimal number such as \"7.3\", got {value!r}",
                         column=field) from None
    if not dec.is_finite():
        raise InputError(f"expected a finite number, got {value!r}", column=field)
    exponent = dec.as_tuple().exponent
    decimals = max(0, -int(exponent)) if isinstance(exponent, int) else 0
    return ReportedNumber(text=text, value=Fraction(dec), decimals=decimals)


def _as_reported(x: ReportedNumber | str | float) -> ReportedNumber:
    return x if isinstance(x, ReportedNumber) else parse_reported(x)


def grim_sums(mean: ReportedNumber | str, n: int, *, items: int = 1) -> list[int]:
    """Integer totals ``k`` whose mean ``k / (n·items)`` rounds to the reported mean.

    Parameters
    ----------
    mean : ReportedNumber or str
        Reported mean, e.g. ``"5.21"``.
    n : int
        Sample size (> 0).
    items : int
        Number of integer items averaged per subject (granularity ``1/items``).

    Returns
    -------
    list of int
        Every GRIM-consistent total (empty when the mean is GRIM-inconsistent).
    """
    m = _as_reported(mean)
    if n < 1 or items < 1:
        raise InputError(f"GRIM needs n >= 1 and items >= 1, got n={n}, items={items}")
    denom = n * items
    lo = math.ceil(m.lower * denom)
    hi = math.floor(m.upper * denom)
    return list(range(lo, hi + 1))


def grim(mean: ReportedNumber | str, n: int, *, items: int = 1) -> bool:
    """GRIM test: can a mean of ``n`` integer scores (``items`` items each) print as ``mean``?

    Parameters
    ----------
    mean : ReportedNumber or str
        The reported mean as printed (string keeps trailing zeros).
    n : int
        Sample size.
    items : int
        Items per score; the granularity of one score is ``1/items``.

    Returns
    -------
    bool
        True if some integer total ``k`` gives ``k/(n·items)`` within the rounding
        interval of the reported mean (rounding a trailing 5 up or down).

    Notes
    -----
    A mean of ``N = n·items`` integers is ``k/N`` for an integer ``k``; the reported mean
    ``x`` (``d`` decimals) is consistent iff ``[N(x - h), N(x + h)]`` with
    ``h = 5·10^-(d+1)`` contains an integer. When ``N ≥ 10^d`` every ``x`` passes.

    References
    ----------
    .. [1] Brown & Heathers 2017, see module docstring.
    """
    return len(grim_sums(mean, n, items=items)) > 0


@dataclass(frozen=True)
class GrimmerResult:
    """Outcome of :func:`grimmer`.

    Attributes
    ----------
    consistent : bool
        True when mean, SD and n can come from ``n`` integer scores.
    reason : str
        ``"passed"``, ``"grim"`` (the mean fails GRIM), ``"sum_of_squares"`` (no integer
        sum of squares gives the SD) or ``"parity"`` (sums of squares exist but none has the
        parity of the total, which integer data force).
    """

    consistent: bool
    reason: str


def grimmer(mean: ReportedNumber | str, sd: ReportedNumber | str, n: int) -> GrimmerResult:
    """GRIMMER test of a reported mean and sample SD (``ddof=1``) of ``n`` integer scores.

    Parameters
    ----------
    mean, sd : ReportedNumber or str
        Reported mean and SD as printed.
    n : int
        Sample size (>= 2).

    Returns
    -------
    GrimmerResult

    Notes
    -----
    For every GRIM-consistent total ``k`` (not only the nearest one), the sum of squares
    ``Q = (n-1)·s² + k²/n`` must be an integer (integer data), must have the parity of
    ``k`` (``x² ≡ x mod 2``), and ``s`` must round to the reported SD, i.e.
    ``Q ∈ [(n-1)·s_lo² + k²/n, (n-1)·s_hi² + k²/n]`` with ``s_lo, s_hi`` the SD's rounding
    interval (``s_lo`` clipped at 0). Exact rational arithmetic decides boundaries.
    This is Allard's analytic GRIMMER with the parity test of scrutiny's
    ``grimmer_scalar``; only ``items = 1`` is supported.

    References
    ----------
    .. [1] Anaya 2016; Allard 2018, see module docstring.
    """
    m = _as_reported(mean)
    s = _as_reported(sd)
    if n < 2:
        raise InputError(f"GRIMMER needs n >= 2 to define a sample SD, got n={n}")
    sums = grim_sums(m, n)
    if not sums:
        return GrimmerResult(False, "grim")
    s_lo = max(Fraction(0), s.lower)
    s_hi = s.upper
    any_integer = False
    for k in sums:
        base = Fraction(k * k, n)
        q_lo = math.ceil((n - 1) * s_lo * s_lo + base)
        q_hi = math.floor((n - 1) * s_hi * s_hi + base)
        if q_lo > q_hi:
            continue
        any_integer = True
        first_with_parity = q_lo if (q_lo - k) % 2 == 0 else q_lo + 1
        if first_with_parity <= q_hi:
            return GrimmerResult(True, "passed")
    return GrimmerResult(False, "parity" if any_integer else "sum_of_squares")


def sd_bounds_from_range(minimum: float, maximum: float, n: int) -> tuple[float, float]:
    """Smallest and largest sample SD (``ddof=1``) of ``n`` values whose min and max are given.

    Parameters
    ----------
    minimum, maximum : float
        The observed minimum and maximum (both attained).
    n : int
        Sample size (>= 2).

    Returns
    -------
    (sd_min, sd_max) : tuple of float

    Notes
    -----
    Largest: ``⌊n/2⌋`` values at one end and the rest at the other,
    ``var = ⌊n/2⌋·⌈n/2⌉·(max-min)² / (n(n-1))``. Smallest: one value at each end and the
    other ``n-2`` at the midpoint, ``var = (max-min)² / (2(n-1))``. Both bounds hold for
    real-valued data, so they are conservative for integer data.
    """
    if n < 2:
        raise InputError(f"an SD bound needs n >= 2, got n={n}")
    if maximum < minimum:
        raise InputError(f"range maximum {maximum} is below its minimum {minimum}")
    width = float(maximum) - float(minimum)
    k = n // 2
    var_max = k * (n - k) * width**2 / (n * (n - 1))
    var_min = width**2 / (2 * (n - 1))
    return math.sqrt(var_min), math.sqrt(var_max)


def mean_bounds_from_range(minimum: float, maximum: float, n: int) -> tuple[float, float]:
    """Smallest and largest mean of ``n`` values whose min and max are both attained.

    Notes
    -----
    One value sits at each end; the other ``n-2`` lie anywhere in between, so the mean
    lies in ``[((n-1)·min + max)/n, (min + (n-1)·max)/n]``.
    """
    if n < 1:
        raise InputError(f"a mean bound needs n >= 1, got n={n}")
    if n == 1:
        if minimum != maximum:
            raise InputError(f"n=1 but the range {minimum}-{maximum} has two distinct ends")
        return float(minimum), float(minimum)
    return ((n - 1) * minimum + maximum) / n, (minimum + (n - 1) * maximum) / n


def min_p_rank_test(n1: int, n2: int | None = None) -> float:
    """Smallest two-sided p an exact rank test can reach.

    Parameters
    ----------
    n1 : int
        Number of pairs (Wilcoxon signed-rank) or size of group 1 (Mann-Whitney U).
    n2 : int, optional
        Size of group 2 for Mann-Whitney U; ``None`` for the signed-rank test.

    Returns
    -------
    float
        ``2 / 2^n1`` (signed-rank: all differences of one sign, no ties or zeros) or
        ``2 / C(n1+n2, n1)`` (Mann-Whitney: complete separation), capped at 1.
    """
    if n2 is None:
        return min(1.0, 2.0 / 2.0**n1)
    return min(1.0, 2.0 / math.comb(n1 + n2, n1))


def odi_min_missing_sections(score_percent: float, *, decimals: int = 0) -> int | None:
    """Fewest unanswered ODI sections that can produce a printed ODI percentage.

    Parameters
    ----------
    score_percent : float
        ODI as printed (0-100).
    decimals : int
        Decimals it was printed with (0 for integers).

    Returns
    -------
    int or None
        ``0`` if a complete 10-section questionnaire can give it (then the unrounded
        score is even), ``k`` (1-9) if ``k`` sections must be missing (score =
        raw / (5·(10-k)) · 100, rounded), or None if no ODI can print as this value.

    Notes
    -----
    ODI v2.1a: sections are scored 0-5; with ``m`` answered sections the score is
    ``100·raw/(5m)`` [Fairbank JCT, Pynsent PB. The Oswestry Disability Index.
    Spine 2000;25(22):2940-2953].
    """
    half = 0.5 * 10.0**-decimals
    for missing in range(10):
        answered = 10 - missing
        raw_max = 5 * answered
        lo = math.ceil((score_percent - half) * raw_max / 100.0 - 1e-9)
        hi = math.floor((score_percent + half) * raw_max / 100.0 + 1e-9)
        if max(lo, 0) <= min(hi, raw_max):
            return missing
    return None

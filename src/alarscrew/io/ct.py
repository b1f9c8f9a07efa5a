"""CT plausibility: refuse volumes whose intensities are not Hounsfield units of a body CT.

The rule (constants below, one function, tested on a synthetic MR-like volume):

1. Every value is finite, and the range lies within ``[HU_STORAGE_MIN, HU_STORAGE_MAX]``
   (-4000 .. 32767: below -3024, the most negative padding value scanners store, or above the
   int16 ceiling of extended-scale metal HU, nothing is a Hounsfield unit).
2. The volume is not constant.
3. **Air or fat present** -- at least ``MIN_AIR_FAT_FRACTION`` (0.1 %) of voxels at or below
   ``AIR_FAT_MAX_HU`` (-200 HU; fat is about -100 to -120, air -1000): the volume is accepted.
   MR magnitude images have no negative values, so they never pass this branch.
4. **No air or fat** (a tight crop, or a synthetic CT such as the shared atlas): accepted only
   when bone is present (at least ``MIN_BONE_FRACTION`` of voxels at or above ``BONE_MIN_HU``,
   300 HU) *and* the volume lacks the signature of non-HU data with no negative value
   (minimum >= 0) and either a dark background at zero (at least ``MR_BACKGROUND_FRACTION``,
   5 %, of voxels within ``MR_BACKGROUND_MAX``, 10, of zero: MR magnitude) or a typical
   (median) voxel brighter than ``MAX_SOFT_TISSUE_MEDIAN_HU`` (150 HU; in HU the bulk of a
   body is soft tissue near 0-60, while MR tissue and raw CT without intercept sit at hundreds
   to ~1000).

Limits: a non-negative MR crop that holds no background and bright tissue above 300 passes
rule 4; a CT stored without its rescale intercept (air at 0, water at 1024) is refused by rule 4
and the message says so.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from alarscrew.errors import ImageError

AIR_FAT_MAX_HU = -200.0
BONE_MIN_HU = 300.0
MIN_AIR_FAT_FRACTION = 0.001
MIN_BONE_FRACTION = 0.0005
MR_BACKGROUND_MAX = 10.0
MR_BACKGROUND_FRACTION = 0.05
MAX_SOFT_TISSUE_MEDIAN_HU = 150.0
HU_STORAGE_MIN = -4000.0
HU_STORAGE_MAX = 32767.0


@dataclass(frozen=True)
class HUSummary:
    """Intensity figures on which :func:`check_ct_intensities` decides (fractions of voxels)."""

    min_hu: float
    max_hu: float
    air_fat_fraction: float
    bone_fraction: float
    near_zero_fraction: float
    median_hu: float

    def describe(self) -> str:
        """The figures in words, for error messages."""
        return (
            f"range {self.min_hu:g}..{self.max_hu:g}, {100 * self.air_fat_fraction:.3g}% of "
            f"voxels <= {AIR_FAT_MAX_HU:g} HU (air/fat), {100 * self.bone_fraction:.3g}% >= "
            f"{BONE_MIN_HU:g} HU (bone)"
        )


def summarize_hu(array: np.ndarray, *, full: bool = True) -> HUSummary:
    """Compute the figures of the CT rule on ``array`` (any shape, values read as HU).

    With ``full=False`` the two figures needed only when there is no air or fat
    (``near_zero_fraction``, ``median_hu``) are left NaN, saving two passes over the volume.
    """
    a = np.asarray(array)
    n = a.size
    s = HUSummary(
        min_hu=float(a.min()),
        max_hu=float(a.max()),
        air_fat_fraction=np.count_nonzero(a <= AIR_FAT_MAX_HU) / n,
        bone_fraction=np.count_nonzero(a >= BONE_MIN_HU) / n,
        near_zero_fraction=float("nan"),
        median_hu=float("nan"),
    )
    if not full:
        return s
    sub = a[::2, ::2, ::2] if a.ndim == 3 else a
    return HUSummary(
        s.min_hu, s.max_hu, s.air_fat_fraction, s.bone_fraction,
        near_zero_fraction=np.count_nonzero((a >= -MR_BACKGROUND_MAX) & (a <= MR_BACKGROUND_MAX))
        / n,
        median_hu=float(np.median(sub)),
    )


def check_ct_intensities(array: np.ndarray, *, source: str | None = None) -> HUSummary:
    """Raise :class:`~alarscrew.errors.ImageError` unless ``array`` looks like a CT in HU.

    Parameters
    ----------
    array : (I, J, K) ndarray
        Voxel values, expected in Hounsfield units.
    source : str, optional
        File name for the message.

    Returns
    -------
    HUSummary
        The figures the decision was based on.

    Notes
    -----
    The rule is given in this module's docstring.
    """
    where = source or "image"
    a = np.asarray(array)
    if a.size == 0:
        raise ImageError("image is empty", path=where)
    if np.issubdtype(a.dtype, np.floating) and not np.all(np.isfinite(a)):
        raise ImageError("CT contains NaN or infinite values", path=where)
    if a.dtype == bool:
        raise ImageError("expected a CT in HU, got a boolean mask (is this a label file?)",
                         path=where)
    s = summarize_hu(a, full=False)
    if s.min_hu < HU_STORAGE_MIN or s.max_hu > HU_STORAGE_MAX:
        raise ImageError(
            f"values {s.min_hu:g}..{s.max_hu:g} are outside any Hounsfield-unit storage range "
            f"({HU_STORAGE_MIN:g}..{HU_STORAGE_MAX:g}); expected a CT in HU, not an MR or a "
            "raw/normalised image", path=where)
    if s.min_hu == s.max_hu:
        raise ImageError(f"image is constant ({s.min_hu:g} everywhere); expected a CT in HU",
                         path=where)
    if s.air_fat_fraction >= MIN_AIR_FAT_FRACTION:
        return s
    s = summarize_hu(a)
    mr_background = s.min_hu >= 0 and s.near_zero_fraction >= MR_BACKGROUND_FRACTION
    bright_bulk = s.min_hu >= 0 and s.median_hu > MAX_SOFT_TISSUE_MEDIAN_HU
    if s.bone_fraction >= MIN_BONE_FRACTION and not (mr_background or bright_bulk):
        return s
    if mr_background:
        why = "a dark background at 0 as in MR magnitude images"
    elif bright_bulk:
        why = (f"no negative value and a median of {s.median_hu:g}, brighter than soft tissue "
               f"({MAX_SOFT_TISSUE_MEDIAN_HU:g} HU at most)")
    else:
        why = "no bone-range values"
    raise ImageError(
        f"does not look like a CT in Hounsfield units: no air or fat and {why} ({s.describe()}). "
        "Expected a CT with air near -1000 HU and bone above 300 HU. If this is an MR, alarscrew "
        "cannot plan on it; if it is a CT stored without its rescale intercept (air at 0), "
        "convert it to HU first", path=where)

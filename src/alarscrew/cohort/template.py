"""Empty cohort tables with the columns the readers understand, to start data entry from."""

from __future__ import annotations

from collections.abc import Sequence

from alarscrew.cohort.instruments import ODI_SECTIONS
from alarscrew.cohort.model import sort_timepoints
from alarscrew.cohort.readers import BASELINE_FIELDS
from alarscrew.errors import InputError

#: Layouts a template can be written in.
LAYOUTS: tuple[str, ...] = ("wide", "long", "redcap")


def template_columns(
    layout: str,
    timepoints: Sequence[str] = ("pre", "post_3d", "post_9m"),
    *,
    odi_items: bool = False,
) -> list[str]:
    """Header of an empty cohort table.

    Parameters
    ----------
    layout : str
        ``wide``, ``long`` or ``redcap`` (see :mod:`alarscrew.cohort.readers`).
    timepoints : sequence of str
        Time points (validated and put in study order); used by the wide layout.
    odi_items : bool, keyword-only
        Add the 10 ODI section columns so that ODI is scored from its items.

    Returns
    -------
    list of str

    Raises
    ------
    InputError
        Unknown layout or time point.
    """
    if layout not in LAYOUTS:
        raise InputError(f"unknown layout {layout!r}: expected one of {', '.join(LAYOUTS)}",
                         column="layout")
    try:
        tps = sort_timepoints(timepoints)
    except ValueError as exc:
        raise InputError(str(exc), column="timepoints") from None
    baseline = [f for f in BASELINE_FIELDS if f != "id"]
    items = [f"q{k}" for k in range(1, ODI_SECTIONS + 1)] if odi_items else []
    if layout == "wide":
        scores = [f"{v}_{tp}" for v in ("vas", "odi") for tp in tps]
        scores += [f"odi_{tp}_{q}" for tp in tps for q in items]
        return ["id", *baseline, *scores]
    if layout == "long":
        return ["id", "timepoint", *baseline, "vas", "odi", *(f"odi_{q}" for q in items)]
    return ["record_id", "redcap_event_name", *baseline, "vas", "odi",
            *(f"odi_{q}" for q in items)]

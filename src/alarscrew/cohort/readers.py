"""Read cohort tables (CSV, XLSX; wide, long, REDCap longitudinal) into a validated Cohort.

Layouts (detected from the header; column names are case-insensitive):

wide
    One row per patient. Baseline columns (see :data:`BASELINE_FIELDS`) plus outcome columns
    ``vas_<tp>``, ``vas_mm_<tp>`` (0-100 mm, normalised to 0-10), ``odi_<tp>`` and ODI section
    answers ``odi_<tp>_q1`` ... ``odi_<tp>_q10``.
long
    One row per patient and time point: a ``timepoint`` column and outcome columns ``vas``,
    ``vas_mm``, ``odi``, ``odi_q1`` ... ``odi_q10``; baseline columns may repeat on every row
    of a patient but must agree.
REDCap
    A longitudinal export (``redcap_event_name`` column; record id in ``record_id`` or the
    first column). The event name minus its ``_arm_N`` suffix is the time point; events named
    ``baseline``, ``screening``, ``enrollment`` or ``demographics`` carry baseline fields only.
    Checkbox fields ``field___code`` (``1``/``0`` or ``Checked``/``Unchecked``) are read for
    ``symptoms``, ``fused_segments`` (codes such as ``l5s1``), ``complications`` and ODI
    sections (``odi_q3___2`` = statement 2 of section 3 marked; two marks take the higher).

Every problem raises :class:`~alarscrew.errors.ValidationError` naming the file, the 1-based
data row (header excluded) and the column: nothing is coerced silently.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alarscrew.cohort.instruments import ODI_SECTIONS, normalise_vas, odi_score
from alarscrew.cohort.model import (
    BMD_KINDS,
    DIAGNOSES,
    DIAGNOSIS_SYNONYMS,
    OUTCOME_RANGES,
    SACRAL_DESTRUCTION_GRADES,
    Case,
    Cohort,
    Complication,
    Score,
    is_timepoint,
    parse_segments,
    sort_timepoints,
)
from alarscrew.errors import InputError, ValidationError

#: Baseline columns and accepted aliases (lower case).
BASELINE_FIELDS: dict[str, tuple[str, ...]] = {
    "id": ("id", "record_id", "case_id", "case", "patient_id"),
    "age_years": ("age_years", "age"),
    "sex": ("sex",),
    "diagnosis": ("diagnosis",),
    "symptoms": ("symptoms",),
    "bmd_value": ("bmd_value", "bmd"),
    "bmd_kind": ("bmd_kind",),
    "fused_segments": ("fused_segments", "fusion_levels", "segments"),
    "follow_up_months": ("follow_up_months",),
    "fusion_time_months": ("fusion_time_months",),
    "sacral_destruction": ("sacral_destruction",),
    "complications": ("complications",),
}
_ALIAS = {a: f for f, aliases in BASELINE_FIELDS.items() for a in aliases}

_BASELINE_EVENTS = {"baseline", "screening", "enrollment", "enrolment", "demographics"}
_REDCAP_IGNORED = re.compile(r"^(redcap_repeat_instrument|redcap_repeat_instance|"
                             r"redcap_data_access_group|redcap_survey_identifier|.+_complete|"
                             r".+_timestamp)$")
_WIDE_ITEM = re.compile(r"^odi_(.+)_q(\d{1,2})$")
_WIDE_SCORE = re.compile(r"^(vas_mm|vas|odi)_(.+)$")
_LONG_ITEM = re.compile(r"^odi_q(\d{1,2})$")
_CHECKBOX = re.compile(r"^(.+)___(.+)$")
_NUMERIC_LIMITS: dict[str, tuple[float, float]] = {
    "age_years": (0.0, 120.0),
    "follow_up_months": (0.0, 600.0),
    "fusion_time_months": (0.0, 600.0),
}
_BMD_LIMITS = {"t_score": (-8.0, 8.0), "g_cm2": (0.0, 3.0), "unspecified": (-10.0, 10.0)}
_BMD_KIND_SYNONYMS = {"t_score": "t_score", "t-score": "t_score", "t score": "t_score",
                      "g_cm2": "g_cm2", "g/cm2": "g_cm2", "g/cm²": "g_cm2",
                      "unspecified": "unspecified", "unknown": "unspecified"}


@dataclass
class _Cell:
    text: str
    row: int
    column: str


@dataclass
class _Raw:
    """Cells of one patient gathered from any layout, before parsing."""

    first_row: int
    baseline: dict[str, _Cell] = field(default_factory=dict)
    checkboxes: dict[str, list[_Cell]] = field(default_factory=dict)  # field -> checked codes
    scores: dict[tuple[str, str], _Cell] = field(default_factory=dict)  # (var, tp) -> cell
    items: dict[str, dict[int, _Cell]] = field(default_factory=dict)  # tp -> section -> cell
    item_marks: dict[str, dict[int, list[int]]] = field(default_factory=dict)


_Gathered = tuple[dict[str, "_Raw"], set[str], list[str]]
#: Keyword arguments locating a cell for ValidationError: path, row, column.
_Where = dict[str, Any]


@dataclass(frozen=True)
class _Table:
    path: str
    header: tuple[str, ...]  # as written
    rows: tuple[tuple[int, tuple[str, ...]], ...]  # (1-based data row, cells)


def read_table(path: str | Path) -> _Table:
    """Read a CSV or XLSX file as text cells (no type guessing); blank rows are skipped."""
    p = Path(path)
    if not p.is_file():
        raise InputError("file not found (expected a CSV or XLSX cohort table)", path=str(p))
    suffix = p.suffix.lower()
    if suffix in {".csv", ".txt", ".tsv"}:
        try:
            with p.open(newline="", encoding="utf-8-sig") as fh:
                delim = "\t" if suffix == ".tsv" else ","
                records = list(csv.reader(fh, delimiter=delim, strict=True))
        except (UnicodeDecodeError, csv.Error) as exc:
            raise InputError(f"cannot read as UTF-8 CSV: {exc}", path=str(p)) from exc
    elif suffix in {".xlsx", ".xlsm"}:
        records = _read_xlsx(p)
    else:
        raise InputError(f"unsupported table format {suffix!r}: use .csv, .tsv or .xlsx",
                         path=str(p))
    if not records:
        raise ValidationError("empty file: expected a header row and data rows", path=str(p))
    header = tuple(h.strip() for h in records[0])
    rows = []
    for i, rec in enumerate(records[1:], start=1):
        cells = tuple(c.strip() for c in rec)
        if not any(cells):
            continue
        if len(cells) > len(header) and any(cells[len(header):]):
            raise ValidationError(f"{len(cells)} cells but the header has {len(header)} "
                                  f"columns", path=str(p), row=i)
        rows.append((i, cells[:len(header)] + ("",) * (len(header) - len(cells))))
    seen: dict[str, str] = {}
    fields: dict[str, str] = {}
    for j, h in enumerate(header):
        key = h.lower()
        if not key:
            filled = next((r for r, cells in rows if cells[j]), None)
            if filled is not None:
                raise ValidationError(f"values under a column without a name (column "
                                      f"{j + 1})", path=str(p), row=filled,
                                      column=f"#{j + 1}")
            continue
        if key in seen:
            raise ValidationError(f"duplicate column name (also {seen[key]!r})", path=str(p),
                                  column=h)
        seen[key] = h
        f = _ALIAS.get(key)
        if f is not None and f in fields:
            raise ValidationError(f"columns {fields[f]!r} and {h!r} both give {f}",
                                  path=str(p), column=h)
        if f is not None:
            fields[f] = h
    return _Table(str(p), header, tuple(rows))


def _read_xlsx(p: Path) -> list[list[str]]:
    import openpyxl

    try:
        wb = openpyxl.load_workbook(p, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises several unrelated types on corrupt files
        raise InputError(f"cannot read as XLSX: {exc}", path=str(p)) from exc
    try:
        ws = wb.worksheets[0]
        out = []
        for values in ws.iter_rows(values_only=True):
            out.append([_xlsx_text(v) for v in values])
    finally:
        wb.close()
    return out


def _xlsx_text(v: object) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def detect_layout(header: Iterable[str]) -> str:
    """``redcap``, ``long`` or ``wide`` from the column names."""
    cols = {h.strip().lower() for h in header}
    if "redcap_event_name" in cols:
        return "redcap"
    if "timepoint" in cols:
        return "long"
    return "wide"


def read_cohort(path: str | Path, *, odi_max_missing: int = 1,
                name: str | None = None) -> Cohort:
    """Read and validate a cohort table.

    Parameters
    ----------
    path : str or Path
        CSV, TSV or XLSX file in wide, long or REDCap layout (see module docstring).
    odi_max_missing : int, keyword-only
        Unanswered ODI sections tolerated when scoring from items (default 1).
    name : str, keyword-only
        Cohort name (default: the file stem).

    Returns
    -------
    Cohort

    Raises
    ------
    ValidationError
        Naming file, row and column, for any value that breaks a rule.
    """
    table = read_table(path)
    layout = detect_layout(table.header)
    cols = [h.lower() for h in table.header]
    if layout == "redcap":
        raws, tps, ignored = _gather_redcap(table, cols)
    elif layout == "long":
        raws, tps, ignored = _gather_long(table, cols)
    else:
        raws, tps, ignored = _gather_wide(table, cols)
    if not raws:
        raise ValidationError("no data rows", path=table.path)
    cases = tuple(_build_case(cid, raw, table.path, odi_max_missing)
                  for cid, raw in raws.items())
    if not tps:
        raise ValidationError("no outcome columns found: expected e.g. vas_pre, odi_post_3d "
                              "(wide), or timepoint + vas/odi (long)", path=table.path)
    return Cohort(name=name or Path(path).stem, cases=cases, timepoints=sort_timepoints(tps),
                  source=str(path), ignored_columns=tuple(ignored))


# ---------------------------------------------------------------------------------- gathering

def _id_column(table: _Table, cols: list[str], *, first_if_missing: bool = False) -> int:
    for i, c in enumerate(cols):
        if _ALIAS.get(c) == "id":
            return i
    if first_if_missing and cols:
        return 0
    raise ValidationError("missing required column 'id' (or record_id)", path=table.path,
                          column="id")


def _case_id(table: _Table, row: int, cells: tuple[str, ...], idx: int) -> str:
    cid = cells[idx]
    if not cid:
        raise ValidationError("missing required field 'id'", path=table.path, row=row,
                              column=table.header[idx])
    return cid


def _check_tp(table: _Table, tp: str, column: str, row: int | None = None) -> str:
    if not is_timepoint(tp):
        raise ValidationError(
            f"unknown time point {tp!r}: expected 'pre', 'post_<n><d|w|m|y>' (e.g. post_3d, "
            f"post_9m) or 'final'", path=table.path, row=row, column=column)
    return tp


def _classify_baseline(col: str) -> str | None:
    return _ALIAS.get(col)


def _gather_wide(table: _Table, cols: list[str]) -> _Gathered:
    id_idx = _id_column(table, cols)
    plan: list[tuple[int, str, tuple]] = []
    tps: set[str] = set()
    ignored: list[str] = []
    for i, c in enumerate(cols):
        h = table.header[i]
        if i == id_idx or not c:
            continue
        if (m := _WIDE_ITEM.match(c)) is not None:
            tp = _check_tp(table, m.group(1), h)
            k = int(m.group(2))
            if not 1 <= k <= ODI_SECTIONS:
                raise ValidationError(f"ODI section q{k} does not exist (q1-q10)",
                                      path=table.path, column=h)
            plan.append((i, "item", (tp, k)))
            tps.add(tp)
        elif (m := _WIDE_SCORE.match(c)) is not None and _classify_baseline(c) is None:
            tp = _check_tp(table, m.group(2), h)
            plan.append((i, "score", (m.group(1), tp)))
            tps.add(tp)
        elif (f := _classify_baseline(c)) is not None:
            plan.append((i, "baseline", (f,)))
        else:
            ignored.append(h)
    raws: dict[str, _Raw] = {}
    for row, cells in table.rows:
        cid = _case_id(table, row, cells, id_idx)
        if cid in raws:
            raise ValidationError(f"duplicate id {cid!r} (first in row {raws[cid].first_row})",
                                  path=table.path, row=row, column=table.header[id_idx])
        raw = raws[cid] = _Raw(first_row=row)
        for i, kind, key in plan:
            cell = _Cell(cells[i], row, table.header[i])
            if kind == "baseline":
                raw.baseline[key[0]] = cell
            elif kind == "score":
                raw.scores[key] = cell
            else:
                raw.items.setdefault(key[0], {})[key[1]] = cell
    return raws, tps, ignored


def _merge_baseline(table: _Table, raw: _Raw, f: str, cell: _Cell) -> None:
    if not cell.text:
        return
    old = raw.baseline.get(f)
    if old is not None and old.text and old.text != cell.text:
        raise ValidationError(f"conflicting values for the same patient: {cell.text!r} here, "
                              f"{old.text!r} in row {old.row}", path=table.path, row=cell.row,
                              column=cell.column)
    raw.baseline[f] = cell


def _gather_long(table: _Table, cols: list[str]) -> _Gathered:
    id_idx = _id_column(table, cols)
    tp_idx = cols.index("timepoint")
    raws: dict[str, _Raw] = {}
    tps: set[str] = set()
    ignored: list[str] = []
    plan: list[tuple[int, str, object]] = []
    for i, c in enumerate(cols):
        if i in (id_idx, tp_idx) or not c:
            continue
        if (m := _LONG_ITEM.match(c)) is not None:
            k = int(m.group(1))
            if not 1 <= k <= ODI_SECTIONS:
                raise ValidationError(f"ODI section q{k} does not exist (q1-q10)",
                                      path=table.path, column=table.header[i])
            plan.append((i, "item", k))
        elif c in OUTCOME_RANGES or c == "vas_mm":
            plan.append((i, "score", c))
        elif (f := _classify_baseline(c)) is not None:
            plan.append((i, "baseline", f))
        elif _WIDE_SCORE.match(c) or _WIDE_ITEM.match(c):
            raise ValidationError("wide-layout outcome column in a long table (which has a "
                                  "'timepoint' column): use vas/odi per row",
                                  path=table.path, column=table.header[i])
        else:
            ignored.append(table.header[i])
    seen: dict[tuple[str, str], int] = {}
    for row, cells in table.rows:
        cid = _case_id(table, row, cells, id_idx)
        tp_text = cells[tp_idx]
        if not tp_text:
            raise ValidationError("missing required field 'timepoint'", path=table.path,
                                  row=row, column=table.header[tp_idx])
        tp = _check_tp(table, tp_text.lower(), table.header[tp_idx], row)
        if (cid, tp) in seen:
            raise ValidationError(f"duplicate id {cid!r} at time point {tp!r} (first in row "
                                  f"{seen[(cid, tp)]})", path=table.path, row=row,
                                  column=table.header[id_idx])
        seen[(cid, tp)] = row
        tps.add(tp)
        raw = raws.setdefault(cid, _Raw(first_row=row))
        for i, kind, key in plan:
            cell = _Cell(cells[i], row, table.header[i])
            if kind == "baseline":
                _merge_baseline(table, raw, key, cell)  # type: ignore[arg-type]
            elif kind == "score":
                raw.scores[(key, tp)] = cell  # type: ignore[index]
            else:
                raw.items.setdefault(tp, {})[key] = cell  # type: ignore[index]
    return raws, tps, ignored


def _checked(table: _Table, cell: _Cell) -> bool:
    t = cell.text.lower()
    if t in {"1", "checked", "yes", "true"}:
        return True
    if t in {"", "0", "unchecked", "no", "false"}:
        return False
    raise ValidationError(f"checkbox value must be 1/0 or Checked/Unchecked, got {cell.text!r}",
                          path=table.path, row=cell.row, column=cell.column)


def _gather_redcap(table: _Table, cols: list[str]) -> _Gathered:
    id_idx = _id_column(table, cols, first_if_missing=True)
    ev_idx = cols.index("redcap_event_name")
    raws: dict[str, _Raw] = {}
    tps: set[str] = set()
    ignored: list[str] = []
    plan: list[tuple[int, str, Any]] = []
    for i, c in enumerate(cols):
        h = table.header[i]
        if i in (id_idx, ev_idx) or not c:
            continue
        if _REDCAP_IGNORED.match(c):
            ignored.append(h)
        elif (m := _CHECKBOX.match(c)) is not None:
            base, code = m.group(1), m.group(2)
            if (mi := _LONG_ITEM.match(base)) is not None:
                if not code.isdigit() or not 0 <= int(code) <= 5:
                    raise ValidationError(f"ODI checkbox code must be 0-5, got {code!r}",
                                          path=table.path, column=h)
                plan.append((i, "item_mark", (int(mi.group(1)), int(code))))
            elif _classify_baseline(base) in {"symptoms", "fused_segments", "complications"}:
                plan.append((i, "checkbox", (_classify_baseline(base), code)))
            else:
                ignored.append(h)
        elif (m := _LONG_ITEM.match(c)) is not None:
            plan.append((i, "item", int(m.group(1))))
        elif c in OUTCOME_RANGES or c == "vas_mm":
            plan.append((i, "score", c))
        elif (f := _classify_baseline(c)) is not None:
            plan.append((i, "baseline", f))
        else:
            ignored.append(h)
    seen: dict[tuple[str, str], int] = {}
    for row, cells in table.rows:
        cid = _case_id(table, row, cells, id_idx)
        event = re.sub(r"_arm_\d+$", "", cells[ev_idx].strip().lower())
        if not event:
            raise ValidationError("missing required field 'redcap_event_name'",
                                  path=table.path, row=row, column=table.header[ev_idx])
        is_base = event in _BASELINE_EVENTS
        tp = None if is_base else _check_tp(table, event, table.header[ev_idx], row)
        key = (cid, event)
        if key in seen:
            raise ValidationError(f"duplicate id {cid!r} in event {event!r} (first in row "
                                  f"{seen[key]})", path=table.path, row=row,
                                  column=table.header[id_idx])
        seen[key] = row
        raw = raws.setdefault(cid, _Raw(first_row=row))
        for i, kind, k in plan:
            cell = _Cell(cells[i], row, table.header[i])
            if kind == "baseline":
                _merge_baseline(table, raw, k, cell)  # type: ignore[arg-type]
                continue
            if kind == "checkbox":
                if _checked(table, cell):
                    raw.checkboxes.setdefault(k[0], []).append(  # type: ignore[index]
                        _Cell(k[1], row, cell.column))  # type: ignore[index]
                continue
            has_value = bool(cell.text) and (kind != "item_mark" or _checked(table, cell))
            if tp is None:
                if has_value:
                    raise ValidationError(f"outcome value in event {event!r}, which is not a "
                                          f"time point", path=table.path, row=row,
                                          column=cell.column)
                continue
            tps.add(tp)
            if kind == "score":
                raw.scores[(k, tp)] = cell  # type: ignore[index]
            elif kind == "item":
                raw.items.setdefault(tp, {})[k] = cell  # type: ignore[index]
            elif has_value:
                sec, mark = k
                raw.item_marks.setdefault(tp, {}).setdefault(sec, []).append(mark)
                raw.items.setdefault(tp, {}).setdefault(sec, _Cell("", row, cell.column))
    return raws, tps, ignored


# ---------------------------------------------------------------------------------- parsing

def _number(text: str, where: _Where, what: str, lo: float, hi: float,
            *, integer: bool = False) -> float:
    try:
        v = float(text)
    except ValueError:
        raise ValidationError(f"text in a numeric column: expected {what}, got {text!r}",
                              **where) from None
    if not math.isfinite(v):
        raise ValidationError(f"expected a finite number for {what}, got {text!r}", **where)
    if v < lo or v > hi:
        raise ValidationError(f"{what} must be within {lo:g}-{hi:g}, got {text}", **where)
    if integer and not v.is_integer():
        raise ValidationError(f"{what} must be an integer, got {text}", **where)
    return v


def _codes(text: str) -> tuple[str, ...]:
    parts = re.split(r"\s*(?:;|,|\band\b|\+)\s*", text.strip(), flags=re.IGNORECASE)
    return tuple(re.sub(r"[^a-z0-9]+", "_", p.lower()).strip("_") for p in parts if p.strip())


def _build_case(cid: str, raw: _Raw, path: str, odi_max_missing: int) -> Case:
    b = raw.baseline

    def where(f: str) -> _Where:
        c = b[f]
        return {"path": path, "row": c.row, "column": c.column}

    def text(f: str) -> str:
        c = b.get(f)
        return c.text if c is not None else ""

    kw: dict[str, object] = {"id": cid}
    for f, (lo, hi) in _NUMERIC_LIMITS.items():
        if text(f):
            kw[f] = _number(text(f), where(f), f, lo, hi)
    if text("sex"):
        s = text("sex").upper()
        s = {"FEMALE": "F", "MALE": "M"}.get(s, s)
        if s not in {"F", "M"}:
            raise ValidationError(f"unknown sex {text('sex')!r}: expected F/M or female/male "
                                  f"(export labels, not numeric codes)", **where("sex"))
        kw["sex"] = s
    if text("diagnosis"):
        t = text("diagnosis")
        key = " ".join(t.lower().replace("_", " ").split())
        code = key.replace(" ", "_")
        if code not in DIAGNOSES:
            code = DIAGNOSIS_SYNONYMS.get(key) or ("other" if key.startswith("other") else "")
        if not code:
            raise ValidationError(
                f"unknown diagnosis {t!r}: expected one of {', '.join(DIAGNOSES)} (or the "
                f"printed names, e.g. 'Chronic pyogenic spondylitis'), or 'other: <text>'",
                **where("diagnosis"))
        kw["diagnosis"] = code
        kw["diagnosis_text"] = t
    if text("symptoms"):
        kw["symptoms"] = _codes(text("symptoms"))
    elif "symptoms" in raw.checkboxes:
        kw["symptoms"] = tuple(c.text for c in raw.checkboxes["symptoms"])
    kind = None
    if text("bmd_kind"):
        kind = _BMD_KIND_SYNONYMS.get(text("bmd_kind").lower())
        if kind is None:
            raise ValidationError(f"unknown BMD kind {text('bmd_kind')!r}: expected one of "
                                  f"{', '.join(BMD_KINDS)}", **where("bmd_kind"))
    if text("bmd_value"):
        kind = kind or "unspecified"
        lo, hi = _BMD_LIMITS[kind]
        kw["bmd_value"] = _number(text("bmd_value"), where("bmd_value"),
                                  f"bmd_value ({kind})", lo, hi)
        kw["bmd_kind"] = kind
    elif kind is not None:
        kw["bmd_kind"] = kind
    seg_cells = ([b["fused_segments"]] if text("fused_segments")
                 else raw.checkboxes.get("fused_segments", []))
    if seg_cells:
        segs: list[str] = []
        for c in seg_cells:
            try:
                segs.extend(parse_segments(c.text))
            except ValueError as exc:
                raise ValidationError(str(exc), path=path, row=c.row, column=c.column) from None
        kw["fused_segments"] = parse_segments("; ".join(segs))
    if text("sacral_destruction"):
        g = text("sacral_destruction").lower()
        if g not in SACRAL_DESTRUCTION_GRADES:
            raise ValidationError(f"unknown sacral destruction grade {g!r}: expected one of "
                                  f"{', '.join(SACRAL_DESTRUCTION_GRADES)}",
                                  **where("sacral_destruction"))
        kw["sacral_destruction"] = g
    if text("complications"):
        t = text("complications")
        if t.strip().lower() in {"none", "no", "nil"}:
            kw["complications"] = ()
        else:
            items = []
            for part in re.split(r"\s*;\s*", t):
                if not part:
                    continue
                cat, _, free = part.partition(":")
                code = re.sub(r"[^a-z0-9]+", "_", cat.lower()).strip("_")
                items.append(Complication(code, free.strip()))
            kw["complications"] = tuple(items)
    elif "complications" in raw.checkboxes:
        kw["complications"] = tuple(Complication(c.text)
                                    for c in raw.checkboxes["complications"]
                                    if c.text.lower() not in {"none", "0"})
    kw["scores"] = _build_scores(raw, path, odi_max_missing)
    return Case(**kw)  # type: ignore[arg-type]


def _build_scores(raw: _Raw, path: str, odi_max_missing: int) -> tuple[Score, ...]:
    out: dict[tuple[str, str], Score] = {}
    for (var, tp), cell in raw.scores.items():
        if not cell.text:
            continue
        where: _Where = {"path": path, "row": cell.row, "column": cell.column}
        if var == "vas_mm":
            v = _number(cell.text, where, "VAS (mm)", 0.0, 100.0)
            v = float(normalise_vas([v], scale_max=100)[0])
            var = "vas"
        else:
            lo, hi = OUTCOME_RANGES[var]
            try:
                v = _number(cell.text, where, var.upper(), lo, hi)
            except ValidationError as exc:
                if var == "vas" and "must be within" in exc.reason:
                    raise ValidationError(f"{exc.reason} (a 0-100 mm VAS goes in a vas_mm "
                                          f"column)", **where) from None
                raise
        if (var, tp) in out:
            raise ValidationError(f"{var} at {tp} given twice (vas and vas_mm)", **where)
        out[(var, tp)] = Score(var, tp, v)
    for tp, secs in raw.items.items():
        answers: list[int | list[int] | None] = []
        cells = list(secs.values())
        for k in range(1, ODI_SECTIONS + 1):
            marks = raw.item_marks.get(tp, {}).get(k)
            c = secs.get(k)
            if marks:
                answers.append(marks)
            elif c is None or not c.text:
                answers.append(None)
            else:
                loc: _Where = {"path": path, "row": c.row, "column": c.column}
                vals = [int(_number(t, loc, "an ODI section answer", 0, 5, integer=True))
                        for t in re.split(r"\s*[;|/]\s*|\s*,\s*", c.text) if t]
                answers.append(vals)
        if all(a is None for a in answers):
            continue
        res = odi_score(answers, max_missing=odi_max_missing)
        first = cells[0]
        if res.percent is None:
            raise ValidationError(
                f"ODI at {tp}: {ODI_SECTIONS - res.n_answered} sections unanswered, more than "
                f"the {odi_max_missing} allowed", path=path, row=first.row, column=first.column)
        given = out.get(("odi", tp))
        if given is not None and given.value is not None and abs(given.value - res.percent) > 0.5:
            c = raw.scores[("odi", tp)]
            raise ValidationError(
                f"ODI {given.value:g} disagrees with {res.percent:.2f} computed from its "
                f"section answers", path=path, row=c.row, column=c.column)
        out[("odi", tp)] = Score("odi", tp, res.percent, res.items)
    return tuple(out.values())

"""The cohort report: tables, trajectory plots and one self-contained offline HTML page.

:func:`build_cohort_report` loads a cohort (file or embedded dataset name), runs the outcome
analysis and, where reported numbers are available, the consistency audit, and writes::

    OUT_DIR/
      cohort_report.html            self-contained: CSS inline, figures as data URIs, no requests
      analysis.json                 the issue-2 analysis contract (numbers unrounded)
      results.md                    one manuscript-style sentence per comparison
      audit.json                    {"findings": [...], "notes": [...]} when the audit ran
      tables/table1_baseline.{md,html,csv,docx}
      tables/table2_outcomes.{md,html,csv,docx}      (Table 2a)
      tables/table2_comparisons.{md,html,csv,docx}   (Table 2b)
      tables/table3_mcid.{md,html,csv,docx}          (when MCIDs are known)
      tables/table4_eligibility.{md,html,csv,docx}
      tables/cohort_tables.docx     all tables in one Word document
      figures/{vas,odi}_trajectories.{png,svg}

The folder is built in a temporary sibling and moved into place only when complete
(:func:`alarscrew.io.atomic.atomic_dir`), so a failure never leaves a half-written report.
:func:`render_cohort_report` does the same from plain DataFrames and mappings, for callers
that hold the pieces already. Outputs are de-identified: cases appear by case id only, and
the source file by its name and SHA-256, never its full path.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from alarscrew.errors import InputError
from alarscrew.io.atomic import atomic_dir, write_text
from alarscrew.report.cohort_plots import JITTER, figure_bytes, trajectory_figure
from alarscrew.report.cohort_tables import (
    EN_DASH,
    CohortTable,
    analysis_notes,
    baseline_table,
    comparisons_from_analysis,
    comparisons_table,
    data_decimals,
    default_timepoints,
    eligibility_table,
    fmt_df,
    fmt_num,
    fmt_p,
    mcid_table,
    outcomes_table,
    p_phrase,
    results_sentences,
    timepoint_label,
    to_html,
    variable_label,
    write_docx,
    write_table_files,
)

REPORT_NAME = "cohort_report.html"
TEMPLATE_NAME = "cohort_report.html.j2"


@dataclass(frozen=True)
class AuditSummary:
    """What the report says about the consistency audit.

    Attributes
    ----------
    status : {"run", "not_run"}
        Whether the audit ran.
    reason : str
        What was audited (e.g. "numbers reported by Fang et al. 2022") or why it did not run.
    findings : tuple
        Findings (``alarscrew.stats.audit.Finding`` or mappings) with ``quantity``,
        ``kind``, ``reported``, ``recomputed``, ``detail``.
    notes : tuple of dict
        Informational notes ``{"quantity", "detail"}`` (what could not be tested, which
        test reproduces a stated p).
    """

    status: str
    reason: str
    findings: tuple[Any, ...] = ()
    notes: tuple[Mapping[str, str], ...] = ()


@dataclass(frozen=True)
class EligibilitySummary:
    """Eligibility verdicts for the report.

    Attributes
    ----------
    rule_set : str
        Rule-set name (e.g. ``fang2022``).
    source : str
        Where the criteria come from.
    rule_texts : dict
        Rule id -> criterion in words, in rule order.
    verdicts : tuple
        ``alarscrew.cohort.eligibility.Verdict`` per case.
    """

    rule_set: str
    source: str
    rule_texts: dict[str, str]
    verdicts: tuple[Any, ...]


def _finding_dict(f: Any) -> dict[str, Any]:
    keys = ("quantity", "kind", "reported", "recomputed", "detail")
    if isinstance(f, Mapping):
        src = f
    elif hasattr(f, "to_json_dict"):
        src = f.to_json_dict()
    else:
        src = {k: getattr(f, k, None) for k in keys}
    missing = [k for k in ("quantity", "kind", "detail") if src.get(k) in (None, "")]
    if missing:
        raise InputError(f"audit finding {src!r} lacks {missing}", column=missing[0])
    return {k: _show(src.get(k)) if k in {"reported", "recomputed"} else str(src.get(k, ""))
            for k in keys}


def _finding_json(f: Any) -> dict[str, Any]:
    """A finding as the audit JSON contract (values unformatted; NaN as null)."""
    if isinstance(f, Mapping):
        doc = dict(f)
    elif hasattr(f, "to_json_dict"):
        doc = dict(f.to_json_dict())
    else:
        doc = {k: getattr(f, k, None) for k in ("quantity", "reported", "recomputed", "kind",
                                                "detail")}
    return {k: None if isinstance(v, float) and not math.isfinite(v) else v
            for k, v in doc.items()}


def _show(value: Any) -> str:
    """A reported / recomputed value as text: floats to 4 significant digits, lists joined."""
    if value is None:
        return "—"
    if isinstance(value, float):
        return "—" if math.isnan(value) else f"{value:.4g}"
    if isinstance(value, list | tuple):
        return EN_DASH.join(_show(v) for v in value) if len(value) == 2 else ", ".join(
            _show(v) for v in value)
    if isinstance(value, Mapping):
        return ", ".join(f"{k} {_show(v)}" for k, v in value.items())
    return str(value)


def omnibus_rows(analysis: Mapping[str, Any]) -> list[dict[str, str]]:
    """Rows for the omnibus-test table (repeated-measures ANOVA, Friedman) of an analysis.

    Reads, per variable of ``analysis["outcomes"]``, a mapping under ``"omnibus"`` with the
    flat keys of ``alarscrew.stats.omnibus_tests`` (``rm_f``, ``rm_df1``, ``rm_df2``,
    ``rm_p``, ``gg_epsilon``, ``rm_p_gg``, ``sphericity_p``, ``friedman_chi2``,
    ``friedman_df``, ``friedman_p``), or nested ``rm_anova`` / ``friedman`` mappings.
    Variables without omnibus results give no rows.
    """
    rows: list[dict[str, str]] = []
    outcomes = analysis.get("outcomes", {})
    for var, block in outcomes.items():
        if not isinstance(block, Mapping):
            continue
        om: dict[str, Any] = dict(block.get("omnibus") or {})
        rm = block.get("rm_anova") or om.get("rm_anova")
        if isinstance(rm, Mapping):
            om.setdefault("rm_f", rm.get("F", rm.get("f", rm.get("statistic"))))
            om.setdefault("rm_df1", rm.get("df1", rm.get("ddof1")))
            om.setdefault("rm_df2", rm.get("df2", rm.get("ddof2")))
            om.setdefault("rm_p", rm.get("p"))
            om.setdefault("gg_epsilon", rm.get("gg_epsilon", rm.get("eps")))
            om.setdefault("rm_p_gg", rm.get("p_gg", rm.get("p_GG_corr")))
            om.setdefault("sphericity_p", rm.get("sphericity_p", rm.get("p_spher")))
        fr = block.get("friedman") or om.get("friedman")
        if isinstance(fr, Mapping):
            om.setdefault("friedman_chi2", fr.get("chi2", fr.get("statistic")))
            om.setdefault("friedman_df", fr.get("df"))
            om.setdefault("friedman_p", fr.get("p"))
        label = variable_label(str(var))
        if om.get("rm_f") is not None:
            note = []
            if om.get("gg_epsilon") is not None:
                note.append(f"Greenhouse-Geisser ε = {fmt_num(om['gg_epsilon'], 3)}, "
                            f"corrected {p_phrase(om.get('rm_p_gg'))}")
            if om.get("sphericity_p") is not None:
                note.append(f"Mauchly sphericity {p_phrase(om['sphericity_p'])}")
            rows.append({"outcome": label, "test": "Repeated-measures ANOVA",
                         "statistic": f"F = {fmt_num(om['rm_f'], 2)}",
                         "df": f"{fmt_df(om.get('rm_df1'))}, {fmt_df(om.get('rm_df2'))}",
                         "p": fmt_p(om.get("rm_p")), "note": "; ".join(note)})
        if om.get("friedman_chi2") is not None:
            rows.append({"outcome": label, "test": "Friedman test",
                         "statistic": f"χ² = {fmt_num(om['friedman_chi2'], 2)}",
                         "df": fmt_df(om.get("friedman_df")),
                         "p": fmt_p(om.get("friedman_p")),
                         "note": "rank-based; chi-square approximation"})
    return rows


def _data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _template() -> Any:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("alarscrew.report", "templates"),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html", "j2"),
                                            default_for_string=True),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    return env.get_template(TEMPLATE_NAME)


def render_cohort_report(
    out_dir: str | os.PathLike[str],
    *,
    baseline: pd.DataFrame,
    outcomes_long: pd.DataFrame,
    timepoints: Sequence[str] | None = None,
    analysis: Mapping[str, Any] | None = None,
    mcid: pd.DataFrame | None = None,
    mcid_notes: Sequence[str] = (),
    eligibility: EligibilitySummary | None = None,
    audit: AuditSummary | None = None,
    title: str = "Cohort report",
    source_label: str = "",
    source_sha256: str | None = None,
    data_citation: str | None = None,
    cohort_notes: Sequence[str] = (),
    extra_notes: Sequence[str] = (),
    force: bool = False,
) -> Path:
    """Write the cohort report folder from DataFrames and an analysis mapping.

    Parameters
    ----------
    out_dir : path
        Report folder; must not exist unless ``force``.
    baseline : DataFrame
        ``Cohort.baseline()`` format.
    outcomes_long : DataFrame
        ``Cohort.outcomes_long()`` format.
    timepoints : sequence of str, optional
        Study order of time points (default: categories of the ``timepoint`` column).
    analysis : mapping, optional
        ``OutcomeAnalysis.to_json_dict()`` (issue-2 contract). Without it the comparisons
        table is left out and the report says so.
    mcid : DataFrame, optional
        ``alarscrew.cohort.mcid_attainment(cohort)``; gives Table 3 when present.
    mcid_notes : sequence of str
        Footnotes of Table 3 (how each MCID applies).
    eligibility : EligibilitySummary, optional
        Verdicts of an eligibility rule set; gives Table 4 and a per-case listing.
    audit : AuditSummary, optional
        Audit result; default "not run".
    title, source_label, source_sha256, data_citation : str
        Header facts. ``source_label`` should be a file name or dataset name, not a path.
    cohort_notes, extra_notes : sequence of str
        Bullet points under "Data" and "Notes on the analysis".
    force : bool
        Replace an existing folder (only after the new one is complete).

    Returns
    -------
    Path
        Path of ``cohort_report.html`` inside ``out_dir``.
    """
    from alarscrew import DISCLAIMER, REFERENCE_CITATION, __version__

    tps = list(timepoints) if timepoints is not None else default_timepoints(outcomes_long)
    variables = list(dict.fromkeys(outcomes_long["variable"].astype(str)))
    t1 = baseline_table(baseline)
    t2 = outcomes_table(outcomes_long, tps)
    t3: CohortTable | None = None
    omnibus: list[dict[str, str]] = []
    notes_from_analysis: list[str] = []
    sentences: list[str] = []
    if analysis is not None:
        sentences = results_sentences(analysis, decimals={
            v: data_decimals(outcomes_long.loc[outcomes_long["variable"].astype(str) == v,
                                               "value"]) for v in variables})
        notes_from_analysis = analysis_notes(analysis)
        t3 = comparisons_table(comparisons_from_analysis(analysis),
                               notes=notes_from_analysis)
        omnibus = omnibus_rows(analysis)
    t4 = (mcid_table(mcid, variables=variables, notes=mcid_notes)
          if mcid is not None and not mcid.empty else None)
    audit = audit or AuditSummary("not_run", "no reported summary numbers were given")
    t5 = (eligibility_table(eligibility.verdicts, eligibility.rule_texts,
                            rule_set=eligibility.rule_set) if eligibility is not None else None)
    tables = [t for t in (t1, t2, t3, t4, t5) if t is not None]

    out = Path(out_dir)
    with atomic_dir(out, force=force) as tmp:
        files: list[str] = []
        if analysis is not None:
            write_text(tmp / "analysis.json", _json_text(dict(analysis)))
            write_text(tmp / "results.md", "".join(f"- {x}\n" for x in sentences))
            files.extend(["analysis.json", "results.md"])
        if audit.status == "run":
            write_text(tmp / "audit.json", _json_text({
                "findings": [_finding_json(f) for f in audit.findings],
                "notes": [dict(n) for n in audit.notes]}))
            files.append("audit.json")
        for table in tables:
            written = write_table_files(table, tmp / "tables", disclaimer=DISCLAIMER)
            files.extend(str(p.relative_to(tmp)) for p in written.values())
        write_docx(tables, tmp / "tables" / "cohort_tables.docx", heading=title,
                   disclaimer=DISCLAIMER)
        files.append("tables/cohort_tables.docx")
        figures = []
        for var in variables:
            fig = trajectory_figure(outcomes_long, var, timepoints=tps)
            png, svg = figure_bytes(fig, "png"), figure_bytes(fig, "svg")
            for fmt, data in (("png", png), ("svg", svg)):
                path = tmp / "figures" / f"{var}_trajectories.{fmt}"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
                files.append(str(path.relative_to(tmp)))
            figures.append({
                "data_uri": _data_uri(svg, "image/svg+xml"),
                "alt": f"{variable_label(var)} per case over time with mean and SD",
                "caption": (f"{variable_label(var)}: one grey line per case (labelled by case "
                            f"id; shifted sideways by up to {JITTER} category widths so that "
                            "equal values stay visible), red: mean ± SD (sample SD)."),
            })
        findings = [_finding_dict(f) for f in audit.findings]
        html = _template().render(
            title=title, version=__version__, disclaimer=DISCLAIMER,
            method_citation=REFERENCE_CITATION, n_cases=len(baseline),
            timepoint_labels=[timepoint_label(t) for t in tps],
            variable_labels=[variable_label(v) for v in variables],
            source_label=source_label or "(not stated)", source_sha256=source_sha256,
            data_citation=data_citation, cohort_notes=list(cohort_notes),
            table1_html=_markup(to_html(t1, table_id="table-1")),
            table2_html=_markup(to_html(t2, table_id="table-2")),
            table3_html=_markup(to_html(t3, table_id="table-2b")) if t3 else "",
            mcid_html=_markup(to_html(t4, table_id="table-3")) if t4 else "",
            eligibility_html=_markup(to_html(t5, table_id="table-4")) if t5 else "",
            eligibility_source=eligibility.source if eligibility is not None else "",
            case_verdicts=[{"id": str(v.id), "verdict": str(v.verdict), "reason": str(v.reason)}
                           for v in (eligibility.verdicts if eligibility is not None else ())],
            analysis_missing_reason="no analysis was supplied",
            omnibus_rows=omnibus, results_sentences=sentences, analysis_notes=list(extra_notes),
            figures=figures, audit_status=audit.status, audit_reason=audit.reason,
            findings=findings,
            n_quantities=len({f["quantity"] for f in findings}),
            audit_notes=[{"quantity": str(n.get("quantity", "")),
                          "detail": str(n.get("detail", ""))} for n in audit.notes],
            files=sorted(files),
        )
        write_text(tmp / REPORT_NAME, html)
        _umask_permissions(tmp)
    return out / REPORT_NAME


def _umask_permissions(root: Path) -> None:
    """Give the folder and its files the permissions of ordinary new files (umask applied).

    Temporary files and folders (``mkstemp``/``mkdtemp``, used for atomic writes) are
    private (0600/0700); a report is meant to be opened and shared like any file the user
    makes.
    """
    mask = os.umask(0)
    os.umask(mask)
    root.chmod(0o777 & ~mask)
    for path in root.rglob("*"):
        path.chmod((0o777 if path.is_dir() else 0o666) & ~mask)


def _json_text(doc: Any) -> str:
    return json.dumps(doc, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def _markup(text: str) -> Any:
    from markupsafe import Markup

    return Markup(text)  # built by to_html, which escapes every cell


def file_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 hex digest of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def build_cohort_report(source: str | os.PathLike[str], out_dir: str | os.PathLike[str], *,
                        reported: str | os.PathLike[str] | None = None,
                        rules: str | os.PathLike[str] | None = None,
                        force: bool = False) -> Path:
    """Load a cohort, analyse and audit it, and write the cohort report folder.

    Parameters
    ----------
    source : path or str
        Cohort file (CSV/TSV/XLSX, wide/long/REDCap) or embedded dataset name (``fang2022``).
    out_dir : path
        Report folder (see the module docstring for its content); must not exist unless
        ``force``.
    reported : path, optional
        YAML of reported summary numbers to audit (format of
        ``alarscrew.stats.load_reported``). For an embedded dataset its own
        ``reported.yaml`` is used when this is None.
    rules : path, optional
        Eligibility rule set (YAML, ``alarscrew.cohort.eligibility.load_rules``); default
        the criteria of Fang et al. 2022.
    force : bool
        Replace an existing report folder (only once the new one is complete).

    Returns
    -------
    Path
        ``out_dir / "cohort_report.html"``.

    Raises
    ------
    InputError
        Unreadable or invalid cohort / reported file (message names file, row, column).
    OutputExistsError
        ``out_dir`` exists and ``force`` is false.
    """
    from alarscrew.cohort import MCID_DEFAULTS, load_cohort, mcid_attainment
    from alarscrew.cohort.eligibility import evaluate_eligibility, load_rules
    from alarscrew.cohort.embedded import dataset_dir
    from alarscrew.errors import ValidationError
    from alarscrew.stats.audit import audit_report
    from alarscrew.stats.outcomes import analyze_outcomes
    from alarscrew.stats.reported import load_reported

    if Path(out_dir).exists() and not force:  # fail before any work
        from alarscrew.errors import OutputExistsError

        raise OutputExistsError(f"{out_dir}: output folder exists already; pass --force")
    cohort = load_cohort(source if isinstance(source, str) else Path(source))
    embedded = cohort.source.startswith("embedded:")
    if embedded:
        source_label, sha = f"embedded dataset '{cohort.name}'", None
    else:
        source_label, sha = Path(source).name, file_sha256(source)
    # Read every user-supplied file before the computations, so that a bad one fails fast.
    rule_set = load_rules(None if rules is None else Path(rules))
    reported_path: Path | None = Path(reported) if reported is not None else None
    if reported_path is None and embedded:
        candidate = dataset_dir(cohort.name) / "reported.yaml"
        reported_path = candidate if candidate.is_file() else None
    rep = load_reported(reported_path) if reported_path is not None else None

    analysis = analyze_outcomes(cohort).to_json_dict()
    extra: list[str] = []
    mcid: pd.DataFrame | None
    try:
        mcid = mcid_attainment(cohort)
    except ValidationError as exc:  # e.g. a variable with no published MCID: said, not hidden
        mcid = None
        extra.append(f"MCID attainment not computed: {exc}")
    defs = [f"{v.upper()}, {MCID_DEFAULTS[v].note}" for v in cohort.variables
            if v in MCID_DEFAULTS and MCID_DEFAULTS[v].note]
    mcid_notes = [f"MCID definitions: {'; '.join(defs)}."] if defs else []
    eligibility = EligibilitySummary(
        rule_set=rule_set.name, source=rule_set.source,
        rule_texts={r.id: r.text for r in rule_set.rules},
        verdicts=evaluate_eligibility(cohort, rule_set))

    if rep is None or reported_path is None:
        audit = AuditSummary("not_run", "no reported summary numbers were given (pass "
                                        "--reported FILE.yaml to audit a manuscript)")
    else:
        result = audit_report(cohort, rep)
        what = rep.source if getattr(rep, "source", None) else reported_path.name
        audit = AuditSummary("run", f"numbers reported in {what}", tuple(result.findings),
                             tuple(result.notes))
    return render_cohort_report(
        out_dir, baseline=cohort.baseline(), outcomes_long=cohort.outcomes_long(),
        timepoints=cohort.timepoints, analysis=analysis, mcid=mcid, mcid_notes=mcid_notes,
        eligibility=eligibility,
        audit=audit, extra_notes=extra,
        title=f"Cohort report: {cohort.name}", source_label=source_label,
        source_sha256=sha, data_citation=cohort.citation,
        cohort_notes=[n.text for n in cohort.notes], force=force,
    )

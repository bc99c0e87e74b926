"""The figure panels of the outcome chapters (Figures 1–3) and what goes around them.

A panel is declared once (:class:`PanelSpec`: endpoint, whole cohort / by group / by a
subgroup column, estimation method) and :func:`make_panel` turns it into

* the summary of :func:`bridge_hsct.paper.outcomes.endpoint_summary` (landmark estimates, medians,
  the test between the levels),
* the figure of :func:`bridge_hsct.paper.outcomes.summary_panel`, saved as PNG and SVG,
* or, when the data cannot support it (an optional column is absent, empty or has a single
  level), a :class:`Panel` that says why it was skipped instead of failing the chapter.

:func:`panel_markdown`, :func:`panels_table` and :func:`describe_panels` give the MyST figure
(with a stable anchor and download links), the tidy and displayed summary table, and the
computed sentences the chapter shows; nothing in a notebook needs to type a number.

Subgroup levels come from the data: the levels present in the column, ordered as in the
schema (the first is the reference), labelled by the schema or by the spec.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ..cohort.endpoints import ENDPOINTS, derive
from ..cohort.schema import BY_NAME
from ..render.disclosure import count_text, is_small
from ..render.escaping import markdown_code, markdown_text, one_line
from ..render.figures import save_figure
from ..render.formatting import ci_label, confidence_percent, format_p, result_alpha
from .outcomes import (
    COMPETING_METHOD,
    PAPER_METHOD,
    endpoint_summary,
    estimate_text,
    landmark_label,
    summary_panel,
)

#: ``PanelSpec.by`` value meaning "the chapter's groups" (the ``group_col`` parameter).
GROUPS = "<groups>"


@dataclass(frozen=True)
class PanelSpec:
    """One panel of a figure, declared before any data is seen.

    Parameters
    ----------
    key : file stem of the saved figure, e.g. ``"figure1a"`` (anchor ``figure-1a``).
    label : how the text names the panel, e.g. ``"Figure 1A"``.
    endpoint : key of :data:`bridge_hsct.cohort.endpoints.ENDPOINTS`.
    by : None for the whole cohort, :data:`GROUPS` for the chapter's groups, or the name of
        a subgroup column (e.g. ``"sex"``).
    by_label : how the caption names the subgroup column (``"IKZF1 (Ikaros isoform 6)"``);
        by default its schema label.
    level_labels : display label of each code of the subgroup column (e.g. ``{1: "MRD
        positive", 0: "MRD negative"}``); by default the schema's labels.
    method : ``"1 - kaplan-meier"`` (the paper's) or ``"aalen-johansen"`` (incidence only).
    """

    key: str
    label: str
    endpoint: str
    by: str | None = None
    by_label: str | None = None
    level_labels: dict | None = field(default=None, hash=False)
    method: str = PAPER_METHOD

    @property
    def anchor(self) -> str:
        """MyST label of the figure: ``figure1a`` → ``figure-1a``."""
        return "figure-" + self.key.removeprefix("figure").replace("_", "-")

    @property
    def letter(self) -> str:
        """Panel letter shown in the figure's title: ``figure1a`` → ``A``."""
        return self.key.removeprefix("figure").split("_")[0].lstrip("0123456789").upper()


@dataclass
class Panel:
    """A drawn (or skipped) panel."""

    spec: PanelSpec
    title: str
    by_label: str
    summary: pd.DataFrame | None = None
    files: dict = field(default_factory=dict)
    skipped: str | None = None

    @property
    def drawn(self) -> bool:
        """Whether the figure exists (False when the data could not support it)."""
        return self.skipped is None


IKZF1_LABELS = {0: "IKZF1 negative", 1: "IKZF1 positive"}
MRD_LABELS = {0: "MRD negative", 1: "MRD positive"}

#: Figure 1 of the paper: OS and PFS.
FIGURE1 = [
    PanelSpec("figure1a", "Figure 1A", "os"),
    PanelSpec("figure1b", "Figure 1B", "pfs"),
    PanelSpec("figure1c", "Figure 1C", "os", GROUPS),
    PanelSpec("figure1d", "Figure 1D", "pfs", GROUPS),
    PanelSpec("figure1e", "Figure 1E", "os", "ikzf1_isoform6", "IKZF1 (Ikaros isoform 6)",
              IKZF1_LABELS),
    PanelSpec("figure1f", "Figure 1F", "pfs", "sex", "patient sex"),
    PanelSpec("figure1g", "Figure 1G", "os", "mrd_positive", "MRD before transplant",
              MRD_LABELS),
]

#: Figure 2 of the paper: GRFS.
FIGURE2 = [
    PanelSpec("figure2a", "Figure 2A", "grfs"),
    PanelSpec("figure2b", "Figure 2B", "grfs", GROUPS),
    PanelSpec("figure2c", "Figure 2C", "grfs", "graft_source", "graft source"),
    PanelSpec("figure2d", "Figure 2D", "grfs", "sex", "patient sex"),
]

#: Figure 3 of the paper (NRM as 1 − Kaplan–Meier, log-rank), and the competing-risk
#: counterpart of each panel (Aalen–Johansen, Gray's test).
FIGURE3 = [
    PanelSpec("figure3a", "Figure 3A", "nrm"),
    PanelSpec("figure3b", "Figure 3B", "nrm", GROUPS),
]
FIGURE3_COMPETING = [
    PanelSpec("figure3a_aalen_johansen", "Figure 3A (competing risks)", "nrm",
              method=COMPETING_METHOD),
    PanelSpec("figure3b_aalen_johansen", "Figure 3B (competing risks)", "nrm", GROUPS,
              method=COMPETING_METHOD),
]

METHOD_WORDS = {
    "survival": "Kaplan–Meier",
    PAPER_METHOD: "1 − Kaplan–Meier, competing events counted as censored (the paper's method)",
    COMPETING_METHOD: "Aalen–Johansen cumulative incidence, competing events kept as such",
}


def in_sentence(label: str) -> str:
    """A label as it reads inside a sentence: ``Overall survival`` → ``overall survival``,
    while acronyms stay (``GVHD-free ...``, ``HCT-CI``)."""
    return label[0].lower() + label[1:] if label and not label[:2].isupper() else label


def _column_label(column: str) -> str:
    var = BY_NAME.get(column)
    return in_sentence(var.label) if var is not None else column


def subgroup_levels(data: pd.DataFrame, column: str, level_labels: dict | None = None):
    """The levels of a subgroup column, labelled, or why the column cannot define subgroups.

    Parameters
    ----------
    data : cohort.
    column : subgroup column.
    level_labels : label of each code; by default the schema's level labels (``yes``/``no``
        for a 0/1 column without labels), else the code itself.

    Returns
    -------
    labelled : pandas.Series or None
        The column with codes replaced by labels (missing stays missing).
    levels : list
        Labels of the levels present, in schema order (reference first).
    reason : str or None
        Why the column cannot split the cohort (absent, empty, a single level), else None.
    """
    if column not in data:
        return None, [], f"the data have no column `{column}`"
    values = data[column]
    present = list(pd.unique(values.dropna()))
    if not present:
        return None, [], f"column `{column}` is empty"
    var = BY_NAME.get(column)
    order = list(var.levels) if var else []
    codes = [lv for lv in order if lv in present]
    codes += sorted((lv for lv in present if lv not in codes), key=str)
    if level_labels is None and var is not None:
        level_labels = (var.level_labels or
                        ({0: f"{var.label}: no", 1: f"{var.label}: yes"}
                         if var.kind == "binary" else {}))
    labels = {code: str((level_labels or {}).get(code, _plain(code))) for code in codes}
    if len(codes) < 2:
        return None, list(labels.values()), (
            f"column `{column}` has a single level in the data ({labels[codes[0]]})")
    labelled = values.map(lambda v: labels.get(v, np.nan) if pd.notna(v) else np.nan)
    return labelled, list(labels.values()), None


def _plain(code) -> str:
    if isinstance(code, float) and code.is_integer():
        return str(int(code))
    return str(code)


def _title(spec: PanelSpec, by_label: str) -> str:
    what = ENDPOINTS[spec.endpoint].label
    if spec.method == COMPETING_METHOD:
        what += ", competing risks"
    where = "all patients" if spec.by is None else f"by {by_label}"
    return f"{spec.letter}  {what}, {where}" if spec.letter else f"{what}, {where}"


def _ylabel(spec: PanelSpec) -> str:
    endpoint = ENDPOINTS[spec.endpoint]
    if endpoint.kind == "survival":
        return endpoint.label
    return "Cumulative incidence"


def make_panel(chapter, spec: PanelSpec, landmark_months: float, alpha: float = 0.05,
               horizon_months: float | None = None) -> Panel:
    """Compute, draw and save one panel (or record why it cannot be drawn).

    Parameters
    ----------
    chapter : :class:`bridge_hsct.book.chapter.Chapter` (data, groups, output folder).
    spec : the panel.
    landmark_months : landmark of the estimates (24 in the paper).
    alpha : one minus the confidence level.
    horizon_months : right end of the x axis (default: the longest follow-up).

    Returns
    -------
    Panel
        With its summary and the paths of its PNG and SVG, or ``skipped`` set to the reason.
    """
    data, group_col = chapter.data, chapter.group_col
    if spec.by is None:
        by_label = "all patients"
    elif spec.by == GROUPS:
        by_label = spec.by_label or _column_label(group_col)
    else:
        by_label = spec.by_label or _column_label(spec.by)
    panel = Panel(spec, _title(spec, by_label), by_label)
    missing = [c for c in ENDPOINTS[spec.endpoint].requires if c not in data]
    if missing:
        panel.skipped = f"the data have no column `{missing[0]}`"
        return panel
    if spec.by is None or spec.by == GROUPS:
        table, column, levels = data, None, chapter.groups
        present = [g for g in levels if (data[group_col] == g).any()]
        if spec.by == GROUPS and len(present) < 2:
            panel.skipped = f"only one group in column {markdown_code(group_col)}"
            return panel
    else:
        labelled, levels, reason = subgroup_levels(data, spec.by, spec.level_labels)
        if reason:
            panel.skipped = reason
            return panel
        table, column = data.assign(**{spec.by: labelled}), spec.by
    panel.summary = endpoint_summary(table, spec.endpoint, group_col, levels, landmark_months,
                                     spec.method, alpha, by=column)
    figure = summary_panel(panel.summary, table, title=panel.title, ylabel=_ylabel(spec),
                           whole=spec.by is None, horizon_months=horizon_months)
    try:
        panel.files = save_figure(figure, chapter.output_dir, spec.key)
    finally:
        plt.close(figure)
    return panel


def make_panels(chapter, specs: list[PanelSpec], landmark_months: float,
                alpha: float = 0.05) -> list[Panel]:
    """Draw several panels (see :func:`make_panel`).

    Parameters
    ----------
    chapter : :class:`bridge_hsct.book.chapter.Chapter`.
    specs : the panels, e.g. :data:`FIGURE1`.
    landmark_months, alpha : landmark of the estimates, one minus the confidence level.

    Returns
    -------
    list of Panel
        In the order of `specs`; skipped panels included (``Panel.skipped`` says why).
    """
    return [make_panel(chapter, spec, landmark_months, alpha) for spec in specs]


# ---------------------------------------------------------------------------------------------
# Text around a panel
# ---------------------------------------------------------------------------------------------
def _method_words(panel: Panel) -> str:
    kind = ENDPOINTS[panel.spec.endpoint].kind
    return METHOD_WORDS["survival" if kind == "survival" else panel.spec.method]


def _groups_rows(panel: Panel) -> pd.DataFrame:
    return panel.summary.iloc[[0]] if panel.spec.by is None else panel.summary.iloc[1:]


def _events(k) -> str:
    if is_small(k):
        return f"{count_text(k)} events"
    return f"{k} event" if k == 1 else f"{k} events"


def caption(panel: Panel) -> str:
    """What the panel shows, with its computed estimates and P value (one paragraph); the
    landmark and the confidence level are those of the panel's summary."""
    endpoint = ENDPOINTS[panel.spec.endpoint].label
    rows = _groups_rows(panel)
    when = landmark_label(float(panel.summary.iloc[0]["landmark_months"]))
    alpha = result_alpha(panel.summary)
    how = (f"Method: {_method_words(panel)}; shaded: {confidence_percent(alpha)} pointwise "
           "confidence "
           f"band{'' if panel.spec.by is None else 's'} (log-log); ticks: censored patients; "
           "numbers at risk under the axis.")
    if panel.spec.by is None:
        first = rows.iloc[0]
        return (f"**{panel.spec.label}.** {endpoint} of all {count_text(first['n'])} patients "
                f"({_events(first['events'])}). {how} At {when}: {estimate_text(first)}.")
    groups = "; ".join(f"{markdown_text(r['group'])} (n = {count_text(r['n'])}, "
                       f"{_events(r['events'])}) "
                       f"{estimate_text(r)}" for _, r in rows.iterrows())
    test = rows.iloc[0]
    return (f"**{panel.spec.label}.** {endpoint} by {markdown_text(panel.by_label)}. {how} "
            f"At {when}, % ({ci_label(alpha)}): {groups}. {test['test'].capitalize()}: "
            f"P = {format_p(test['p_value'])}.")


def alt_text(panel: Panel) -> str:
    """Short alternative text of the figure image (one line)."""
    kind = ENDPOINTS[panel.spec.endpoint].kind
    curve = "Kaplan–Meier curves" if kind == "survival" else "Cumulative incidence curves"
    endpoint = in_sentence(ENDPOINTS[panel.spec.endpoint].label)
    who = "all patients" if panel.spec.by is None else (
        f"by {one_line(panel.by_label)} ("
        + ", ".join(map(one_line, _groups_rows(panel)["group"])) + ")")
    return (f"{curve} of {endpoint}, {who}, against months since transplant, "
            "with numbers at risk below")


def _relative(path: Path | str) -> str:
    return Path(path).as_posix()


def panel_markdown(panel: Panel) -> str:
    """MyST for one panel: a ``{figure}`` with anchor, alt text, caption and downloads.

    A skipped panel keeps its anchor and shows a note saying why it is not drawn.
    """
    if not panel.drawn:
        endpoint = ENDPOINTS[panel.spec.endpoint].label
        return (f"({panel.spec.anchor})=\n"
                f":::{{note}} {panel.spec.label} is not drawn\n"
                f"{endpoint} by {markdown_text(panel.by_label)} needs that information, but "
                f"{panel.skipped}.\n:::\n")
    return figure_markdown(panel.files, panel.spec.anchor, alt_text(panel), caption(panel),
                           panel.spec.label)


def figure_markdown(files: dict, anchor: str, alt: str, caption_text: str, label: str) -> str:
    """A MyST ``{figure}`` of a saved PNG with its anchor, alt text, caption and downloads.

    Parameters
    ----------
    files : ``{"png": path, "svg": path}`` as returned by :func:`figures.save_figure`, paths
        relative to the page (the chapter's ``output_dir``).
    anchor : the figure's label (``figure-1a``), for links and references.
    alt : one-line alternative text.
    caption_text : the caption paragraph (MyST).
    label : how the download line names the figure (``Figure 1A``).
    """
    png, svg = _relative(files["png"]), _relative(files["svg"])
    return (f"```{{figure}} {png}\n:name: {anchor}\n:alt: {alt}\n:width: 100%\n\n"
            f"{caption_text}\n\n"
            f"Download {label}: {{download}}`PNG <{png}>` · {{download}}`SVG <{svg}>`\n```\n")


def panels_markdown(panels: list[Panel]) -> str:
    """:func:`panel_markdown` of several panels, one after the other."""
    return "\n".join(panel_markdown(p) for p in panels)


# ---------------------------------------------------------------------------------------------
# Summary table and sentences
# ---------------------------------------------------------------------------------------------
def panels_numbers(panels: list[Panel]) -> pd.DataFrame:
    """Tidy estimates of the drawn panels: the rows each panel shows, with its figure label.

    One row per (panel, group): the whole-cohort row for a whole-cohort panel, the group
    rows for a comparison panel (columns of :func:`endpoint_summary` plus ``figure`` and
    ``panel``).
    """
    frames = [_groups_rows(p).assign(figure=p.spec.label, panel=p.spec.key)
              for p in panels if p.drawn]
    if not frames:
        return pd.DataFrame()
    numbers = pd.concat(frames, ignore_index=True)
    first = ["figure", "panel"]
    return numbers[first + [c for c in numbers.columns if c not in first]]


def _median_text(row) -> str:
    if row["method"] != "kaplan-meier":
        return ""
    if np.isnan(row["median_months"]):
        return "not reached"
    lower = "NR" if np.isnan(row["median_lower"]) else f"{row['median_lower']:.2f}"
    upper = "NR" if np.isnan(row["median_upper"]) else f"{row['median_upper']:.2f}"
    return f"{row['median_months']:.2f} ({lower}–{upper})"


def panels_table(panels: list[Panel]) -> dict:
    """The summary table under a figure: estimates, medians and P values of every panel.

    Returns
    -------
    dict
        ``numbers`` (tidy, see :func:`panels_numbers`), ``display`` (strings for
        :func:`bridge_hsct.render.tables.render_table` with ``stub="Panel"``), ``notes``.
    """
    rows, notes = [], []
    landmark, alpha = None, None
    for panel in panels:
        if not panel.drawn:
            notes.append(f"{panel.spec.label} not drawn: {panel.skipped}.")
            continue
        landmark = landmark_label(float(panel.summary.iloc[0]["landmark_months"]))
        alpha = result_alpha(panel.summary)
        shown = _groups_rows(panel)
        name = f"{panel.spec.label} · {panel.title.split('  ', 1)[-1]}"
        if panel.spec.by is None:
            r = shown.iloc[0]
            rows.append([name, r["n"], r["events"], estimate_text(r), _median_text(r), "", "",
                         0])
            continue
        test = shown.iloc[0]
        rows.append([name, "", "", "", "", format_p(test["p_value"]), test["test"], 0])
        for _, r in shown.iterrows():
            rows.append([str(r["group"]), r["n"], r["events"], estimate_text(r),
                         _median_text(r), "", "", 1])
    ci = "CI" if alpha is None else ci_label(alpha)  # no panel drawn: no interval shown
    median = f"Median, months ({ci})"
    columns = ["Panel", "n", "Events", f"At {landmark or 'landmark'}, % ({ci})",
               median, "P value", "Test", "indent"]
    display = pd.DataFrame(rows, columns=columns)
    level = "" if alpha is None else f"{confidence_percent(alpha)} "
    if display[median].eq("").all():
        display = display.drop(columns=median)
        notes.append(f"Estimates with {level}log-log confidence intervals.")
    else:
        notes.append(f"Estimates with {level}log-log confidence intervals; NR, limit not "
                     "reached.")
    return {"numbers": panels_numbers(panels), "display": display, "notes": notes}


def describe_panels(panels: list[Panel]) -> str:
    """One computed bullet per panel, for the chapter's text (MyST Markdown)."""
    lines = []
    for panel in panels:
        endpoint = in_sentence(ENDPOINTS[panel.spec.endpoint].label)
        if not panel.drawn:
            lines.append(f"- {{ref}}`{panel.spec.label} <{panel.spec.anchor}>`: not drawn, "
                         f"{panel.skipped}.")
            continue
        rows = _groups_rows(panel)
        when = landmark_label(float(rows.iloc[0]["landmark_months"]))
        link = f"{{ref}}`{panel.spec.label} <{panel.spec.anchor}>`"
        if panel.spec.by is None:
            r = rows.iloc[0]
            median = _median_text(r)
            tail = f"; median {median.split(' (')[0]}" if median else ""
            words = estimate_text(r, in_words=True)
            lines.append(f"- {link}: {endpoint} at {when} was {words} in all "
                         f"{count_text(r['n'])} patients{tail}.")
            continue
        parts = " vs ".join(f"{markdown_text(r['group'])} {estimate_text(r, in_words=True)}"
                            for _, r in rows.iterrows())
        test = rows.iloc[0]
        lines.append(f"- {link}: {endpoint} at {when} by {markdown_text(panel.by_label)}, {parts} "
                     f"({test['test']}, P = {format_p(test['p_value'])}).")
    return "\n".join(lines)


def competing_risk_note(paper: Panel, competing: Panel, data: pd.DataFrame) -> str:
    """Computed comparison of the two NRM estimates of the whole cohort, for the methods note.

    Parameters
    ----------
    paper, competing : the whole-cohort NRM panels drawn with the paper's 1 − Kaplan–Meier
        and with Aalen–Johansen.
    data : the cohort (to count the relapses that compete with NRM).
    """
    if not (paper.drawn and competing.drawn):
        return ""
    landmark_months = float(paper.summary.iloc[0]["landmark_months"])
    when = landmark_label(landmark_months)
    nrm = derive(data, paper.spec.endpoint)
    relapses = int((nrm["cause"] == 2).sum())
    deaths = int((nrm["cause"] == 1).sum())
    one_minus_km = paper.summary.iloc[0]["estimate"]
    aalen_johansen = competing.summary.iloc[0]["estimate"]
    difference = one_minus_km - aalen_johansen
    text = (f"In this cohort {deaths} patients died without a prior relapse and {relapses} "
            f"relapsed first. At {when}, 1 − Kaplan–Meier gives "
            f"{estimate_text(paper.summary.iloc[0], in_words=True)} and Aalen–Johansen "
            f"{estimate_text(competing.summary.iloc[0], in_words=True)}")
    if np.isnan(difference):
        return text + "."
    return text + (f", {100 * difference:.2f} percentage points apart. The whole gap comes from "
                   "the patients who relapsed first: 1 − Kaplan–Meier keeps them in the "
                   "calculation as if they could still die without relapse later.")

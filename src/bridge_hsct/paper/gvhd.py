"""Figure 4: cumulative incidence of acute and chronic GVHD, whole cohort, by arm, by subgroup.

Every panel is computed twice:

* the paper's method, 1 − Kaplan–Meier with relapse or death before GVHD treated as
  censoring, compared with the log-rank test (drawn in the figure);
* the competing-risk estimate, Aalen–Johansen with relapse or death before GVHD as competing
  events, compared with Gray's test.

Panels whose columns are absent from the cohort are left out with a note (see
:func:`figure4`), so the chapter builds on any valid cohort.

The same helpers (:func:`available`, :func:`incidence_panels`, :func:`figure_markdown`)
serve the engraftment panels of :mod:`bridge_hsct.paper.table3`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ..cohort.endpoints import ENDPOINTS
from ..cohort.schema import BY_NAME
from ..render.disclosure import count_text
from ..render.escaping import markdown_text, one_line
from ..render.figures import save_figure
from ..render.formatting import ci_label, format_p, result_alpha
from ..stats.survival import to_months
from .outcomes import (
    COMPETING_METHOD,
    DAY_100_MONTHS,
    PAPER_METHOD,
    endpoint_summary,
    estimate_text,
    landmark_label,
    summary_panel,
)

AGE_THRESHOLD_YEARS = 40
AGE_GROUP_COL = "age_group"


def lower_first(label: str) -> str:
    """``"Grade II–IV acute GVHD"`` → ``"grade II–IV acute GVHD"`` (acronyms kept)."""
    return label[:1].lower() + label[1:] if label[1:2].islower() else label


def available(data: pd.DataFrame, column: str) -> bool:
    """Whether `column` is in the cohort and holds at least one value."""
    return column in data and bool(data[column].notna().any())


def age_group_labels(threshold: float = AGE_THRESHOLD_YEARS) -> list[str]:
    """The two age groups, the reference (younger) first: ``["≤ 40 years", "> 40 years"]``."""
    return [f"≤ {threshold:g} years", f"> {threshold:g} years"]


def age_group(age_years: pd.Series, threshold: float = AGE_THRESHOLD_YEARS) -> pd.Series:
    """Patient age group at transplant: ``> threshold`` against ``≤ threshold`` years.

    The paper splits patients at 40 years (Table 1 and Fig. 4G); a missing age stays missing.
    """
    younger, older = age_group_labels(threshold)
    return age_years.map(lambda x: np.nan if pd.isna(x) else older if x > threshold
                         else younger)


def with_subgroups(data: pd.DataFrame) -> pd.DataFrame:
    """The cohort with the subgroup columns of Fig. 4 G–I in readable labels.

    Adds :data:`AGE_GROUP_COL` and replaces the codes of ``graft_source`` and ``donor_sex``
    (when present) by their labels from the data dictionary (``PB + BM``, ``Female``...).
    """
    out = data.copy()
    out[AGE_GROUP_COL] = age_group(out["age_years"])
    for column in ("graft_source", "donor_sex"):
        if column in out:
            out[column] = out[column].map(lambda v, c=column: BY_NAME[c].level_labels.get(v, v)
                                          if pd.notna(v) else np.nan)
    return out


def subgroup_levels(column: str) -> list[str]:
    """Display order of the levels of a subgroup column (reference first)."""
    if column == AGE_GROUP_COL:
        return age_group_labels()
    var = BY_NAME[column]
    return [var.level_labels.get(v, str(v)) for v in var.levels]


@dataclass(frozen=True)
class Panel:
    """One panel of an incidence figure.

    ``by`` is None for the whole cohort, ``"group"`` for the compared groups (the chapter's
    ``group_col``) or a subgroup column of :func:`with_subgroups`. ``landmark`` is
    ``"landmark"`` (the chapter's ``landmark_months``, 24 in the paper), or, where the
    paper's figure reads the curve at a fixed time whatever the chapter's landmark,
    ``"day100"`` (:data:`bridge_hsct.paper.outcomes.DAY_100_MONTHS`) or a number of days.
    """

    key: str
    letter: str
    endpoint: str
    by: str | None
    landmark: str | float
    subject: str
    horizon_months: float | None = None

    def columns(self, group_col: str) -> list[str]:
        """Cohort columns the panel needs."""
        needed = list(ENDPOINTS[self.endpoint].requires)
        needed += [f"{c}_days" for c in ENDPOINTS[self.endpoint].requires]
        if self.by == "group":
            needed.append(group_col)
        elif self.by and self.by != AGE_GROUP_COL:
            needed.append(self.by)
        return needed

    def landmark_months(self, landmark_months: float | None) -> float:
        """The panel's landmark in months: its own fixed one, or the chapter's."""
        if self.landmark == "day100":
            return DAY_100_MONTHS
        if self.landmark == "landmark":
            if landmark_months is None:
                raise ValueError(f"panel {self.key} is read at the chapter's landmark: "
                                 "pass landmark_months")
            return float(landmark_months)
        return float(to_months(float(self.landmark)))


ACUTE_HORIZON_MONTHS = 12.0

FIGURE4_PANELS: list[Panel] = [
    Panel("figure4a", "A", "agvhd_2_4", None, "day100", "all patients", ACUTE_HORIZON_MONTHS),
    Panel("figure4b", "B", "agvhd_3_4", None, "day100", "all patients", ACUTE_HORIZON_MONTHS),
    Panel("figure4c", "C", "cgvhd", None, "landmark", "all patients"),
    Panel("figure4d", "D", "agvhd_2_4", "group", "day100", "by bridging therapy",
          ACUTE_HORIZON_MONTHS),
    Panel("figure4e", "E", "agvhd_3_4", "group", "day100", "by bridging therapy",
          ACUTE_HORIZON_MONTHS),
    Panel("figure4f", "F", "cgvhd", "group", "landmark", "by bridging therapy"),
    Panel("figure4g", "G", "agvhd_2_4", AGE_GROUP_COL, "day100", "by patient age",
          ACUTE_HORIZON_MONTHS),
    Panel("figure4h", "H", "agvhd_3_4", "graft_source", "day100", "by graft source",
          ACUTE_HORIZON_MONTHS),
    Panel("figure4i", "I", "agvhd_3_4", "donor_sex", "day100", "by donor sex",
          ACUTE_HORIZON_MONTHS),
]


@dataclass
class PanelResult:
    """A computed panel: its summaries by method, and the saved figure (if drawn)."""

    panel: Panel
    summaries: dict
    paths: dict
    caption: str
    alt: str


@dataclass
class IncidenceFigure:
    """All panels of a figure that could be computed, and notes on those that could not.

    ``alpha`` is one minus the confidence level of every estimate (and band) of the figure.
    """

    panels: list
    omitted: list
    notes: list
    alpha: float

    def estimates(self) -> pd.DataFrame:
        """Tidy table of every panel's landmark estimates and tests, both methods."""
        frames = []
        for result in self.panels:
            for summary in result.summaries.values():
                frames.append(summary.assign(figure=result.panel.key,
                                             panel=result.panel.letter,
                                             subject=result.panel.subject))
        if not frames:
            return pd.DataFrame(columns=["figure", "panel", "endpoint", "method", "group"])
        tidy = pd.concat(frames, ignore_index=True)
        first = ["figure", "panel", "endpoint", "subject", "method", "by", "group"]
        return tidy[first + [c for c in tidy.columns if c not in first]]

    def get(self, key: str) -> PanelResult | None:
        """The computed panel called `key` (``"figure4a"``), or None if it was left out."""
        return next((p for p in self.panels if p.panel.key == key), None)


METHOD_DESCRIPTIONS = {
    PAPER_METHOD: ("1 − Kaplan–Meier", "the paper's method (1 − Kaplan–Meier, {competing} "
                   "censored)", "log-rank"),
    COMPETING_METHOD: ("Aalen–Johansen", "the competing-risk estimate (Aalen–Johansen, "
                       "{competing} competing)", "Gray's test"),
}


def _caption(panel: Panel, summaries: dict, landmark_months: float, method: str,
             competing: str) -> tuple[str, str]:
    label = lower_first(ENDPOINTS[panel.endpoint].label)
    when = landmark_label(landmark_months)
    short, long, test_name = METHOD_DESCRIPTIONS[method]
    ci = ci_label(result_alpha(summaries[method]))
    other = COMPETING_METHOD if method == PAPER_METHOD else PAPER_METHOD
    drawn, alternative = summaries[method], summaries[other]
    other_short, _, other_test = METHOD_DESCRIPTIONS[other]
    if panel.by is None:
        row, alt_row = drawn.iloc[0], alternative.iloc[0]
        numbers = (f"At {when}: {estimate_text(row)} by {short}, {estimate_text(alt_row)} "
                   f"by {other_short} ({count_text(row['events'])} events in "
                   f"{count_text(row['n'])} patients).")
        alt = (f"Cumulative incidence curve of {label} in all {count_text(row['n'])} patients over "
               "months since transplant, with the number at risk below.")
    else:
        parts = [f"{markdown_text(g['group'])} {estimate_text(g)}"
                 for _, g in drawn.iloc[1:].iterrows()]
        numbers = (f"At {when} ({short}): " + "; ".join(parts)
                   + f"; {test_name} P = {format_p(drawn.iloc[1]['p_value'])}, "
                   f"{other_test} P = {format_p(alternative.iloc[1]['p_value'])}.")
        groups = ", ".join(one_line(g) for g in drawn["group"].iloc[1:])
        alt = (f"Cumulative incidence curves of {label} {panel.subject} ({groups}) over "
               "months since transplant, with the numbers at risk below.")
    caption = (f"**{panel.letter}** Cumulative incidence of {label}, {panel.subject}, by "
               f"{long.format(competing=competing)}; shaded: pointwise {ci}; ticks: "
               f"censored patients; dotted line: the landmark ({when}). " + numbers)
    return caption, alt


def incidence_panels(data: pd.DataFrame, panels: list[Panel], group_col: str, groups: list,
                     landmark_months: float | None, alpha: float,
                     output_dir: str | Path | None,
                     ylabel: str = "Cumulative incidence", figure_label: str = "Fig. 4",
                     draw_method: str = PAPER_METHOD,
                     competing: str = "relapse or death before the event") -> IncidenceFigure:
    """Compute (and, with `output_dir`, draw and save) incidence panels.

    Parameters
    ----------
    data : validated cohort.
    panels : the panels to compute, e.g. :data:`FIGURE4_PANELS`.
    group_col, groups : the compared groups and their display order (reference first).
    landmark_months : the chapter's landmark (used by panels with ``landmark="landmark"``).
    alpha : one minus the confidence level.
    output_dir : where each panel is saved as ``<key>.png`` and ``<key>.svg``; None to
        compute the estimates only.
    ylabel : y-axis label of the panels.
    figure_label : how notes name the figure (``"Fig. 4"``).
    draw_method : the estimate drawn in the panels (both are computed).
    competing : what competes with the event, for the captions.

    Returns
    -------
    IncidenceFigure
        The computed panels (summaries for both methods, file paths, caption, alt text), the
        keys of the panels left out and a note per left-out panel.
    """
    cohort = with_subgroups(data)
    results, omitted, notes = [], [], []
    for panel in panels:
        missing = [c for c in panel.columns(group_col) if not available(cohort, c)]
        if missing:
            omitted.append(panel.key)
            notes.append(f"{figure_label}{panel.letter} ({ENDPOINTS[panel.endpoint].label}, "
                         f"{panel.subject}) is left out: missing from the data: "
                         + ", ".join(f"`{c}`" for c in missing) + ".")
            continue
        landmark = panel.landmark_months(landmark_months)
        if panel.by is None or panel.by == "group":
            by, levels = None, list(groups)
        else:
            by = panel.by
            found = set(cohort[by].dropna())
            levels = [lv for lv in subgroup_levels(by) if lv in found]
        summaries = {method: endpoint_summary(cohort, panel.endpoint, group_col, levels,
                                              landmark, method=method, alpha=alpha, by=by)
                     for method in (PAPER_METHOD, COMPETING_METHOD)}
        caption, alt = _caption(panel, summaries, landmark, draw_method, competing)
        paths = {}
        if output_dir is not None:
            label = ENDPOINTS[panel.endpoint].label
            fig = summary_panel(summaries[draw_method], cohort,
                                title=f"{panel.letter}  {label}, {panel.subject}",
                                ylabel=ylabel, whole=panel.by is None,
                                horizon_months=panel.horizon_months)
            paths = save_figure(fig, output_dir, panel.key)
            plt.close(fig)
        results.append(PanelResult(panel, summaries, paths, caption, alt))
    return IncidenceFigure(results, omitted, notes, alpha)


def figure4(data: pd.DataFrame, group_col: str, groups: list, landmark_months: float,
            alpha: float = 0.05, output_dir: str | Path | None = None) -> IncidenceFigure:
    """Figure 4 A–I of the paper (see :data:`FIGURE4_PANELS`), both methods.

    Acute GVHD is read at day 100 and chronic GVHD at `landmark_months` (24 in the paper).
    See :func:`incidence_panels` for the parameters and the result.
    """
    return incidence_panels(data, FIGURE4_PANELS, group_col, groups, landmark_months, alpha,
                            output_dir)


def figure_markdown(result: PanelResult, label_prefix: str = "figure-4") -> str:
    """MyST Markdown of a saved panel: a ``{figure}`` with name, alt text and caption, and
    download links to its PNG and SVG files (paths as the chapter wrote them)."""
    png, svg = Path(result.paths["png"]).as_posix(), Path(result.paths["svg"]).as_posix()
    letter = result.panel.letter.lower()
    return (f"```{{figure}} {png}\n:name: {label_prefix}{letter}\n:alt: {result.alt}\n"
            f":width: 100%\n\n{result.caption}\n```\n\n"
            f"Download panel {result.panel.letter}: {{download}}`PNG <{png}>`, "
            f"{{download}}`SVG <{svg}>`\n")


def notes_markdown(notes: list[str]) -> str:
    """A visible note listing what was left out, or an empty string."""
    if not notes:
        return ""
    body = "\n".join(f"- {n}" for n in notes)
    return f"```{{admonition}} Left out\n:class: note\n{body}\n```\n"


def table_or_note(display: pd.DataFrame, notes: list[str], **render):
    """The rendered table (:func:`bridge_hsct.render.tables.render_table` with `render`), or, when
    it has no rows, a visible note saying why (the chapter still builds)."""
    from IPython.display import Markdown

    from ..render.tables import render_table

    if display.empty:
        title = render.get("title", "This table")
        why = " ".join(notes) or "The data have none of its columns."
        return Markdown(f"```{{admonition}} {title}: left out\n:class: note\n{why}\n```\n")
    return render_table(display, notes=notes, **render)


def estimates_display(figure: IncidenceFigure, whole_rows: bool = False) -> pd.DataFrame:
    """Readable table of the panels' landmark estimates: both methods side by side.

    One bold header row per panel, then one row per group (or the whole cohort), with n,
    events, the 1 − Kaplan–Meier and Aalen–Johansen estimates and their tests' P values.
    With `whole_rows`, panels by group also show the whole cohort first. The headers name
    the figure's confidence level.
    """
    rows = []
    for result in figure.panels:
        paper = result.summaries[PAPER_METHOD]
        competing = result.summaries[COMPETING_METHOD]
        panel = result.panel
        when = landmark_label(paper.iloc[0]["landmark_months"])
        title = (f"{panel.letter}. {ENDPOINTS[panel.endpoint].label}, {panel.subject}, "
                 f"at {when}")
        rows.append([title, "", "", "", "", "", "", 0])
        part = (paper.iloc[:1] if panel.by is None else paper if whole_rows
                else paper.iloc[1:])
        for (_, km), (_, aj) in zip(part.iterrows(),
                                    competing.loc[part.index].iterrows(), strict=True):
            by_group = panel.by is not None
            rows.append([
                "All patients" if km["group"] == "whole" else str(km["group"]),
                str(int(km["n"])), str(int(km["events"])), estimate_text(km),
                format_p(km["p_value"]) if by_group and km["group"] != "whole" else "",
                estimate_text(aj),
                format_p(aj["p_value"]) if by_group and aj["group"] != "whole" else "", 1,
            ])
    ci = ci_label(figure.alpha)
    return pd.DataFrame(rows, columns=[
        "Panel", "n", "Events", f"1 − KM, % ({ci})", "Log-rank P",
        f"Aalen–Johansen, % ({ci})", "Gray P", "indent"])


def describe_figure4(figure: IncidenceFigure) -> str:
    """A paragraph of computed numbers for the chapter text (whole-cohort incidences)."""
    sentences = []
    for key in ("figure4a", "figure4b", "figure4c"):
        result = figure.get(key)
        if result is None:
            continue
        km = result.summaries[PAPER_METHOD].iloc[0]
        aj = result.summaries[COMPETING_METHOD].iloc[0]
        sentences.append(
            f"the incidence of {lower_first(ENDPOINTS[result.panel.endpoint].label)} at "
            f"{landmark_label(km['landmark_months'])} was {estimate_text(km)} by the "
            f"paper's method and {estimate_text(aj)} with relapse and death as competing "
            f"events ({int(km['events'])} events in {int(km['n'])} patients)")
    if not sentences:
        return "The data have no GVHD columns, so no incidence could be computed."
    return "In this cohort, " + "; ".join(sentences) + "."

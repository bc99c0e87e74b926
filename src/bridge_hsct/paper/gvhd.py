"""Figure 4: cumulative incidence of acute and chronic GVHD, whole cohort, by arm, by subgroup.

The figure is a list of :class:`bridge_hsct.paper.panels.PanelSpec` (:data:`FIGURE4`) fed to
the panel engine. Every panel is computed twice:

* the paper's method, 1 − Kaplan–Meier with relapse or death before GVHD treated as
  censoring, compared with the log-rank test (drawn in the figure);
* the competing-risk estimate, Aalen–Johansen with relapse or death before GVHD as competing
  events, compared with Gray's test.

Acute GVHD is read at day 100 (the paper's fixed landmark, named in each spec), chronic GVHD
at the chapter's landmark. A panel whose columns are absent from the cohort is not drawn and
says why, so the chapter builds on any valid cohort.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..cohort.endpoints import ENDPOINTS
from ..render.disclosure import Disclosure
from ..render.formatting import in_sentence
from .outcomes import (
    COMPETING_METHOD,
    DAY_100_MONTHS,
    PAPER_METHOD,
    estimate_text,
    landmark_label,
)
from .panels import (
    AGE_GROUP,
    GROUPS,
    Figure,
    IncidenceWords,
    PanelEngine,
    figure_panel,
)

ACUTE_HORIZON_MONTHS = 12.0
GVHD_WORDS = IncidenceWords(competing="relapse or death before the event")


def _acute(letter: str, endpoint: str, by: str | None = None, **options):
    return figure_panel("4", letter, endpoint, by, both_methods=True, words=GVHD_WORDS,
                        landmark_months=DAY_100_MONTHS, horizon_months=ACUTE_HORIZON_MONTHS,
                        **options)


def _chronic(letter: str, by: str | None = None):
    return figure_panel("4", letter, "cgvhd", by, both_methods=True, words=GVHD_WORDS)


#: Figure 4 A–I of the paper.
FIGURE4 = [
    _acute("A", "agvhd_2_4"),
    _acute("B", "agvhd_3_4"),
    _chronic("C"),
    _acute("D", "agvhd_2_4", GROUPS),
    _acute("E", "agvhd_3_4", GROUPS),
    _chronic("F", GROUPS),
    _acute("G", "agvhd_2_4", AGE_GROUP, by_label="patient age"),
    _acute("H", "agvhd_3_4", "graft_source", by_label="graft source"),
    _acute("I", "agvhd_3_4", "donor_sex", by_label="donor sex"),
]


def figure4(data: pd.DataFrame, group_col: str, groups: list, landmark_months: float,
            alpha: float = 0.05, output_dir: str | Path | None = None, *,
            disclosure: Disclosure) -> Figure:
    """Figure 4 A–I of the paper (:data:`FIGURE4`), both methods, through the panel engine.

    With `output_dir`, each panel is drawn and saved there; without, only computed. Counts
    pass `disclosure` (the chapter's).
    """
    return PanelEngine(data, group_col, groups, landmark_months, alpha, output_dir,
                       disclosure=disclosure).figure(FIGURE4)


def estimates_display(figure: Figure, whole_rows: bool = False) -> pd.DataFrame:
    """The displayed frame of :meth:`bridge_hsct.paper.panels.Figure.methods_table`."""
    return figure.methods_table(whole_rows).display


def describe_figure4(figure: Figure) -> str:
    """A paragraph of computed numbers for the chapter text (whole-cohort incidences), counts
    through the figure's disclosure."""
    count_text = figure.disclosure.count_text
    sentences = []
    for panel in figure.part("A", "B", "C").drawn:
        km = panel.summaries[PAPER_METHOD].iloc[0]
        aj = panel.summaries[COMPETING_METHOD].iloc[0]
        sentences.append(
            f"the incidence of {in_sentence(ENDPOINTS[panel.spec.endpoint].label)} at "
            f"{landmark_label(km['landmark_months'])} was {estimate_text(km)} by the "
            f"paper's method and {estimate_text(aj)} with relapse and death as competing "
            f"events ({count_text(km['events'])} events in {count_text(km['n'])} patients)")
    if not sentences:
        return "The data have no GVHD columns, so no incidence could be computed."
    return "In this cohort, " + "; ".join(sentences) + "."

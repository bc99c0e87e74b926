"""Figures 1–3 of the paper (OS and PFS, GRFS, NRM) as panel specs, and what goes around them.

Each figure is a list of :class:`bridge_hsct.paper.panels.PanelSpec` fed to the panel
engine (:class:`bridge_hsct.paper.panels.PanelEngine`); subgroup levels come from the data,
ordered as in the schema (the first is the reference), labelled by the schema or the spec.
Figure 3 lists each of the paper's panels followed by its competing-risk counterpart
(Aalen–Johansen, Gray's test), the order in which the chapter shows them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..cohort.endpoints import derive, known_status
from .outcomes import COMPETING_METHOD, estimate_text, landmark_label
from .panels import (
    GROUPS,
    Panel,
    PanelSpec,
    figure_panel,
)

IKZF1_LABELS = {0: "IKZF1 negative", 1: "IKZF1 positive"}
MRD_LABELS = {0: "MRD negative", 1: "MRD positive"}

#: Figure 1 of the paper: OS and PFS, whole cohort, by group, three subgroups.
FIGURE1 = [
    figure_panel("1", "A", "os"),
    figure_panel("1", "B", "pfs"),
    figure_panel("1", "C", "os", GROUPS),
    figure_panel("1", "D", "pfs", GROUPS),
    figure_panel("1", "E", "os", "ikzf1_isoform6", by_label="IKZF1 (Ikaros isoform 6)",
                 level_labels=IKZF1_LABELS),
    figure_panel("1", "F", "pfs", "sex", by_label="patient sex"),
    figure_panel("1", "G", "os", "mrd_positive", by_label="MRD before transplant",
                 level_labels=MRD_LABELS),
]

#: Figure 2 of the paper: GRFS.
FIGURE2 = [
    figure_panel("2", "A", "grfs"),
    figure_panel("2", "B", "grfs", GROUPS),
    figure_panel("2", "C", "grfs", "graft_source", by_label="graft source"),
    figure_panel("2", "D", "grfs", "sex", by_label="patient sex"),
]


def _competing(spec: PanelSpec) -> PanelSpec:
    """The competing-risk counterpart of a panel of the paper (Aalen–Johansen)."""
    return figure_panel("3", spec.letter, spec.endpoint, spec.by, suffix="aalen_johansen",
                        label=f"{spec.label} (competing risks)", method=COMPETING_METHOD)


#: Figure 3 of the paper (NRM as 1 − Kaplan–Meier, log-rank), each panel followed by its
#: competing-risk counterpart (Aalen–Johansen, Gray's test).
FIGURE3_PAPER = [figure_panel("3", "A", "nrm"), figure_panel("3", "B", "nrm", GROUPS)]
FIGURE3_COMPETING = [_competing(spec) for spec in FIGURE3_PAPER]
FIGURE3 = [spec for pair in zip(FIGURE3_PAPER, FIGURE3_COMPETING, strict=True)
           for spec in pair]


def competing_risk_note(paper: Panel, competing: Panel, data: pd.DataFrame) -> str:
    """Computed comparison of the two NRM estimates of the whole cohort, for the methods note.

    Parameters
    ----------
    paper, competing : the whole-cohort NRM panels drawn with the paper's 1 − Kaplan–Meier
        and with Aalen–Johansen.
    data : the cohort (to count the relapses that compete with NRM).

    Counts pass the disclosure of `paper`.
    """
    if not (paper.drawn and competing.drawn):
        return ""
    landmark_months = float(paper.summary.iloc[0]["landmark_months"])
    when = landmark_label(landmark_months)
    name = paper.spec.endpoint
    nrm = derive(data[known_status(data, name)], name)
    relapses = int((nrm["cause"] == 2).sum())
    deaths = int((nrm["cause"] == 1).sum())
    one_minus_km = paper.summary.iloc[0]["estimate"]
    aalen_johansen = competing.summary.iloc[0]["estimate"]
    difference = one_minus_km - aalen_johansen
    count_text = paper.disclosure.count_text
    text = (f"In this cohort {count_text(deaths)} patients died without a prior relapse and "
            f"{count_text(relapses)} relapsed first. At {when}, 1 − Kaplan–Meier gives "
            f"{estimate_text(paper.summary.iloc[0], in_words=True)} and Aalen–Johansen "
            f"{estimate_text(competing.summary.iloc[0], in_words=True)}")
    if np.isnan(difference):
        return text + "."
    return text + (f", {100 * difference:.2f} percentage points apart. The whole gap comes from "
                   "the patients who relapsed first: 1 − Kaplan–Meier keeps them in the "
                   "calculation as if they could still die without relapse later.")

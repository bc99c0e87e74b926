"""One engine for every Kaplan–Meier and cumulative-incidence panel of the paper's figures.

A panel is declared once, before any data is seen, as a :class:`PanelSpec`: the endpoint,
how the cohort is split (whole cohort, the chapter's groups, a subgroup column), the method
drawn (and whether the other method is computed beside it), where its curve is read (the
chapter's landmark, or a fixed one the paper's figure needs), its letter, label, anchor and
file stem, the words of its captions, and optionally a column of per-patient case weights
(a weighted Kaplan–Meier) and the hazard ratios of its groups. Figures 1–4 and
Supplementary Figures 5 and 6 are lists of specs (in :mod:`.subgroups`, :mod:`.gvhd`,
:mod:`.table3` and :mod:`.iptw.figures`).

:class:`PanelEngine` turns a spec into a :class:`Panel`: it computes the summaries of
:func:`bridge_hsct.paper.outcomes.endpoint_summary` (re-estimated with the weights by
:func:`weighted_summary` for a weighted spec) and the Cox hazard ratios of
:func:`bridge_hsct.stats.weighting.group_hazard_ratios` when asked, draws the figure with
:func:`bridge_hsct.render.figures.km_panel` and saves it as PNG and SVG, or, when the
data cannot support the panel (a column absent or empty, a single level), records why and
draws nothing, so that the chapter still builds. A drawn panel writes its own MyST figure,
caption and alternative text; a list of panels (:class:`Figure`) gives the tables and
sentences of the chapter. Every label from the data passes
:func:`bridge_hsct.render.escaping.markdown_text` (or ``one_line`` in alt text), every count
the engine's :class:`bridge_hsct.render.disclosure.Disclosure` (the chapter's), which each
panel and figure keeps.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ..cohort.endpoints import (
    ENDPOINTS,
    as_censored,
    derive,
    known_status,
    missing_columns,
    missing_competitors,
)
from ..cohort.schema import BY_NAME
from ..render.data_label import destination
from ..render.disclosure import Disclosure
from ..render.escaping import markdown_code, markdown_text, one_line
from ..render.figures import km_panel, save_figure, time_axis
from ..render.formatting import (
    ci_label,
    confidence_percent,
    format_p,
    format_percent,
    in_sentence,
    p_phrase,
    result_alpha,
)
from ..render.tables import Table
from ..stats.survival import months_to_days
from ..stats.weighting import curve_at, group_hazard_ratios, weighted_km
from .narrative import (
    ENDPOINT_WORDS,
    Recorder,
    at_risk_by_group,
    at_risk_words,
    comparison_sentence,
    estimate_phrase,
    join_words,
)
from .outcomes import (
    COMPETING_METHOD,
    PAPER_METHOD,
    competitors_sentence,
    endpoint_summary,
    estimate_text,
    landmark_label,
    left_out_sentence,
)

#: ``PanelSpec.by`` value meaning "the chapter's groups" (the ``group_col`` parameter).
GROUPS = "<groups>"
#: ``PanelSpec.by`` value for patient age at transplant split at :data:`AGE_THRESHOLD_YEARS`.
AGE_GROUP = "age_group"
AGE_THRESHOLD_YEARS = 40


# ---------------------------------------------------------------------------------------------
# Splits of the cohort
# ---------------------------------------------------------------------------------------------
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


def _plain(code) -> str:
    if isinstance(code, float) and code.is_integer():
        return str(int(code))
    return str(code)


def subgroup_levels(data: pd.DataFrame, column: str, level_labels: dict | None = None):
    """The levels of a subgroup column, labelled, or why the column cannot define subgroups.

    Parameters
    ----------
    data : cohort.
    column : subgroup column, or :data:`AGE_GROUP` (from ``age_years``).
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
    if column == AGE_GROUP:
        if "age_years" not in data:
            return None, [], "the data have no column `age_years`"
        values, order, level_labels = age_group(data["age_years"]), age_group_labels(), {}
    elif column not in data:
        return None, [], f"the data have no column `{column}`"
    else:
        values, var = data[column], BY_NAME.get(column)
        order = list(var.levels) if var else []
        if level_labels is None and var is not None:
            level_labels = (var.level_labels or
                            ({0: f"{var.label}: no", 1: f"{var.label}: yes"}
                             if var.kind == "binary" else {}))
    present = list(pd.unique(values.dropna()))
    if not present:
        return None, [], f"column `{column}` is empty"
    codes = [lv for lv in order if lv in present]
    codes += sorted((lv for lv in present if lv not in codes), key=str)
    labels = {code: str((level_labels or {}).get(code, _plain(code))) for code in codes}
    if len(codes) < 2:
        return None, list(labels.values()), (
            f"column `{column}` has a single level in the data ({labels[codes[0]]})")
    labelled = values.map(lambda v: labels.get(v, np.nan) if pd.notna(v) else np.nan)
    return labelled, list(labels.values()), None


# ---------------------------------------------------------------------------------------------
# The spec
# ---------------------------------------------------------------------------------------------
METHOD_WORDS = {
    "survival": "Kaplan–Meier",
    PAPER_METHOD: "1 − Kaplan–Meier, competing events counted as censored (the paper's method)",
    COMPETING_METHOD: "Aalen–Johansen cumulative incidence, competing events kept as such",
}


@dataclass(frozen=True)
class PanelSpec:
    """One panel of a figure, declared before any data is seen.

    Parameters
    ----------
    endpoint : key of :data:`bridge_hsct.cohort.endpoints.ENDPOINTS`.
    by : None for the whole cohort, :data:`GROUPS` for the chapter's groups,
        :data:`AGE_GROUP`, or the name of a subgroup column (e.g. ``"sex"``).
    letter : the panel's letter in its figure (``"A"``), shown in the drawn title.
    label : how the text names the panel (``"Figure 1A"``).
    anchor : MyST label of the figure, for links (``"figure-1a"``).
    stem : file name of the saved PNG and SVG, without extension (``"figure1a"``).
    method : the estimate drawn: ``"1 - kaplan-meier"`` (the paper's) or
        ``"aalen-johansen"`` (incidence only; survival endpoints are Kaplan–Meier).
    both_methods : compute the other method too (captions and tables give both).
    landmark_months : where the curve is read when the paper's figure fixes it (acute
        GVHD at day 100); None reads it at the chapter's landmark.
    horizon_months : right end of the x axis (default: the longest follow-up).
    by_label : how the text names the split (``"IKZF1 (Ikaros isoform 6)"``); by default
        the column's label in the data dictionary.
    level_labels : display label of each code of the subgroup column (default: schema's).
    ylabel : y-axis label; by default the endpoint (survival) or "Cumulative incidence".
    words : how the panel's title, caption, alt text and figure are written
        (:data:`OUTCOME_WORDS` for Figures 1–3, an :class:`IncidenceWords` for Figure 4 and
        Supplementary Figure 5).
    weights : column of the engine's data holding each patient's case weight (IPTW
        weights in Supplementary Figure 6), or None. A weighted panel draws the weighted
        Kaplan–Meier (1 − it for an incidence, competing events censored: the paper's method
        only), estimates without confidence intervals (the usual ones would ignore the
        weights' estimation), and the sums of the weights as numbers at risk.
    hazard_ratios : compute the Cox hazard ratio of each group against the first (weighted,
        with a robust SE, when the panel is) and print them in the panel's corner and
        caption; a panel of the whole cohort has none.
    """

    endpoint: str
    by: str | None = None
    letter: str = ""
    label: str = ""
    anchor: str = ""
    stem: str = ""
    method: str = PAPER_METHOD
    both_methods: bool = False
    landmark_months: float | None = None
    horizon_months: float | None = None
    by_label: str | None = None
    level_labels: dict | None = field(default=None, hash=False)
    ylabel: str | None = None
    words: OutcomeWords | None = None
    weights: str | None = None
    hazard_ratios: bool = False

    def __post_init__(self):
        if self.weights is not None and (self.both_methods or self.method != PAPER_METHOD):
            raise ValueError("a weighted panel is drawn by (1 −) Kaplan–Meier only")

    @property
    def methods(self) -> tuple[str, ...]:
        """The methods computed, the drawn one first."""
        if not self.both_methods:
            return (self.method,)
        other = COMPETING_METHOD if self.method == PAPER_METHOD else PAPER_METHOD
        return (self.method, other)


def figure_panel(figure: str, letter: str, endpoint: str, by: str | None = None, *,
                 supplementary: bool = False, suffix: str = "", **options) -> PanelSpec:
    """A :class:`PanelSpec` of the paper's Figure `figure`, panel `letter`, with the book's
    naming: label ``Figure 1A`` (``Supplementary Figure 5A``), anchor ``figure-1a``
    (``supplementary-figure-5a``), file ``figure1a`` (``supplementary_figure5a``); a
    `suffix` (``"aalen_johansen"``) names a variant of the paper's panel."""
    name = ("Supplementary Figure " if supplementary else "Figure ") + figure + letter
    anchor = ("supplementary-figure-" if supplementary else "figure-") + figure + letter.lower()
    stem = ("supplementary_figure" if supplementary else "figure") + figure + letter.lower()
    if suffix:
        anchor, stem = f"{anchor}-{suffix.replace('_', '-')}", f"{stem}_{suffix}"
    return PanelSpec(endpoint, by, letter, options.pop("label", name), anchor, stem, **options)


# ---------------------------------------------------------------------------------------------
# The engine
# ---------------------------------------------------------------------------------------------
@dataclass
class Panel:
    """A computed panel: its summaries by method and its saved figure, or why it was skipped.

    ``by_label`` is the split's name as resolved on the data (the spec's, or the column's
    label); ``summaries`` maps each method of the spec to its
    :func:`bridge_hsct.paper.outcomes.endpoint_summary`; ``at_risk`` the patients still
    at risk at the landmark, ``"whole"`` and by group
    (:func:`bridge_hsct.paper.narrative.at_risk_by_group`), which the caption says when
    few; ``hazard_ratios`` the :class:`bridge_hsct.stats.weighting.HazardRatio` of each
    group against the first when the spec asks for them; ``disclosure`` the small-cell
    suppression its words print counts through.
    """

    spec: PanelSpec
    by_label: str
    summaries: dict = field(default_factory=dict)
    files: dict = field(default_factory=dict)
    skipped: str | None = None
    notes: list = field(default_factory=list)
    at_risk: dict = field(default_factory=dict)
    hazard_ratios: list = field(default_factory=list)
    disclosure: Disclosure = field(kw_only=True)

    @property
    def drawn(self) -> bool:
        """Whether the figure exists (False when the data could not support it)."""
        return self.skipped is None

    @property
    def summary(self) -> pd.DataFrame | None:
        """The summary of the drawn method (None for a skipped panel)."""
        return self.summaries.get(self.spec.method)

    @property
    def weighted(self) -> bool:
        """Whether the panel's curves and estimates are weighted."""
        return self.spec.weights is not None

    @property
    def subject(self) -> str:
        """``all patients`` or ``by <split>``."""
        return "all patients" if self.spec.by is None else f"by {self.by_label}"

    @property
    def words(self) -> OutcomeWords:
        """How the panel is written (the spec's words)."""
        return self.spec.words or OUTCOME_WORDS

    @property
    def title(self) -> str:
        """The title drawn above the panel (``"A  Overall survival, all patients"``)."""
        return self.words.title(self)

    @property
    def caption(self) -> str:
        """The figure's caption, with its computed estimates (MyST)."""
        return self.words.caption(self)

    @property
    def alt(self) -> str:
        """One-line alternative text of the image."""
        return self.words.alt(self)

    def markdown(self) -> str:
        """MyST of the panel: the figure with anchor, alt text, caption and downloads, or,
        for a skipped panel, its anchor and a note saying why it is not drawn."""
        if not self.drawn:
            endpoint = ENDPOINTS[self.spec.endpoint].label
            who = ("of all patients" if self.spec.by is None
                   else f"by {markdown_text(self.by_label)}")
            return (f"({self.spec.anchor})=\n:::{{note}} {self.spec.label} is not drawn\n"
                    f"{endpoint} {who} needs that information, but {self.skipped}.\n:::\n")
        notes = "".join(f":::{{note}}\n{note}\n:::\n" for note in self.notes)
        return self.words.markdown(self) + notes

    def shown_rows(self, method: str | None = None) -> pd.DataFrame:
        """The rows of a summary the panel shows: the whole cohort for a whole-cohort
        panel, the groups for a comparison."""
        summary = self.summaries[method or self.spec.method]
        return summary.iloc[[0]] if self.spec.by is None else summary.iloc[1:]


def _column_label(column: str) -> str:
    var = BY_NAME.get(column)
    return in_sentence(var.label) if var is not None else column


@dataclass(frozen=True)
class PanelEngine:
    """Computes, draws, saves and words the panels of one cohort.

    Parameters
    ----------
    data : validated cohort.
    group_col, groups : the compared groups and their display order (reference first).
    landmark_months : the chapter's landmark (read by every panel without a fixed one).
    alpha : one minus the confidence level of every estimate and band.
    output_dir : where each drawn panel is saved as ``<stem>.png`` and ``<stem>.svg``;
        None computes the estimates only.
    group_label : how the text names the compared groups (the chapter's noun); by default
        the group column's label.
    label : the provenance line of the saved figures (:mod:`bridge_hsct.render.data_label`;
        the chapter's data in :meth:`for_chapter`), None for none.
    disclosure : the small-cell suppression of every count the panels print, in words and
        under the curves (keyword only, required; the chapter's in :meth:`for_chapter`).
    """

    data: pd.DataFrame
    group_col: str
    groups: list
    landmark_months: float
    alpha: float = 0.05
    output_dir: str | Path | None = None
    group_label: str = ""
    label: str | None = None
    disclosure: Disclosure = field(kw_only=True)

    @classmethod
    def for_chapter(cls, chapter, landmark_months: float | None = None,
                    alpha: float | None = None, save: bool = True) -> PanelEngine:
        """The engine of a :class:`bridge_hsct.book.chapter.Chapter`: its cohort, groups,
        landmark, alpha, disclosure and (with `save`) output folder; `landmark_months` and
        `alpha` override the chapter's."""
        return cls(chapter.data, chapter.group_col, chapter.groups,
                   chapter.landmark_months if landmark_months is None else landmark_months,
                   chapter.alpha if alpha is None else alpha,
                   chapter.output_dir if save else None, chapter.group_label,
                   destination(chapter)[1], disclosure=chapter.disclosure)

    def by_label(self, spec: PanelSpec) -> str:
        """How the text names the split of `spec` on these data."""
        if spec.by is None:
            return "all patients"
        if spec.by_label:
            return spec.by_label
        if spec.by == GROUPS and self.group_label:
            return self.group_label
        return _column_label(self.group_col if spec.by == GROUPS else spec.by)

    def panel(self, spec: PanelSpec) -> Panel:
        """Compute, draw and save one panel (or record why it cannot be drawn)."""
        panel = Panel(spec, self.by_label(spec), disclosure=self.disclosure)
        missing = missing_columns(self.data, spec.endpoint)
        if spec.weights is not None and spec.weights not in self.data:
            missing.append(spec.weights)
        if missing:
            panel.skipped = f"the data have no column `{missing[0]}`"
            return panel
        lacking = missing_competitors(self.data, spec.endpoint)
        if lacking and spec.method == COMPETING_METHOD:
            panel.skipped = (f"the data do not record its competing events (no column "
                             f"`{lacking[0]}`)")
            return panel
        if spec.by is None or spec.by == GROUPS:
            table, column, levels = self.data, None, list(self.groups)
            present = [g for g in levels if (self.data[self.group_col] == g).any()]
            if spec.by == GROUPS and len(present) < 2:
                panel.skipped = f"only one group in column {markdown_code(self.group_col)}"
                return panel
        else:
            labelled, levels, reason = subgroup_levels(self.data, spec.by, spec.level_labels)
            if reason:
                panel.skipped = reason
                return panel
            table, column = self.data.assign(**{spec.by: labelled}), spec.by
        panel.notes = [n for n in (left_out_sentence(table, spec.endpoint, "this panel",
                                                     disclosure=self.disclosure),
                                   competitors_sentence(table, spec.endpoint)) if n]
        landmark = (self.landmark_months if spec.landmark_months is None
                    else spec.landmark_months)
        panel.summaries = {method: endpoint_summary(table, spec.endpoint, self.group_col,
                                                    levels, landmark, method, self.alpha,
                                                    by=column)
                           for method in spec.methods}
        if spec.weights is not None:
            panel.summaries = {method: weighted_summary(summary, table, spec.weights)
                               for method, summary in panel.summaries.items()}
        panel.at_risk = at_risk_by_group(table, spec.endpoint, column or self.group_col,
                                         levels, landmark)
        if spec.hazard_ratios and spec.by is not None:
            panel.hazard_ratios = _hazard_ratios(table, spec, column or self.group_col,
                                                 levels, self.alpha)
        if self.output_dir is not None:
            figure = _draw(panel, table)
            try:
                panel.files = save_figure(figure, self.output_dir, spec.stem, self.label)
            finally:
                plt.close(figure)
        return panel

    def figure(self, specs: list[PanelSpec]) -> Figure:
        """Every panel of `specs`, in their order (skipped ones included)."""
        return Figure([self.panel(spec) for spec in specs], self.alpha,
                      disclosure=self.disclosure)


def _ylabel(endpoint: str) -> str:
    spec = ENDPOINTS[endpoint]
    return spec.label if spec.kind == "survival" else "Cumulative incidence"


def weighted_summary(summary: pd.DataFrame, data: pd.DataFrame, weights: str) -> pd.DataFrame:
    """The rows of an :func:`endpoint_summary` (its 1 − Kaplan–Meier for an incidence)
    estimated with case weights.

    The weighted Kaplan–Meier of :func:`bridge_hsct.stats.weighting.weighted_km` (R's
    ``survfit(..., weights = w)``) at the summary's landmark, competing events censored
    (``1 -`` it for an incidence); n, unknown and events stay the patients' counts.

    Parameters
    ----------
    summary : :func:`endpoint_summary` of `data` (method ``"1 - kaplan-meier"`` for an
        incidence), whole cohort first.
    data : the cohort it was computed from, with the `weights` column.
    weights : column of each patient's case weight.

    Returns
    -------
    pandas.DataFrame
        `summary` with the weighted ``estimate``, ``method`` prefixed ``"weighted "``, no
        interval, median or test (NaN, ``test`` empty: the usual ones would ignore the
        weights' estimation), and ``weighted_n`` and ``weighted_events``, the sums of the
        weights of the patients and of those with an event.
    """
    first = summary.iloc[0]
    name, column = first["endpoint"], first["by"]
    known = data[known_status(data, name)]
    endpoint = as_censored(derive(known, name))
    time, event = endpoint["time"].to_numpy(float), endpoint["cause"].to_numpy(int)
    w = known[weights].to_numpy(float)
    landmark = float(months_to_days(first["landmark_months"]))
    incidence = ENDPOINTS[name].kind != "survival"
    estimate, total, events = [], [], []
    for position, group in enumerate(summary["group"]):
        rows = (np.ones(len(known), dtype=bool) if position == 0
                else (known[column] == group).to_numpy())
        survival = curve_at(weighted_km(time[rows], event[rows], w[rows]), landmark)
        estimate.append(1 - survival if incidence else survival)
        total.append(float(w[rows].sum()))
        events.append(float(w[rows][event[rows] == 1].sum()))
    nothing = np.nan
    return summary.assign(method="weighted " + summary["method"], estimate=estimate,
                          lower=nothing, upper=nothing, median_months=nothing,
                          median_lower=nothing, median_upper=nothing, test="", chi2=nothing,
                          df=nothing, p_value=nothing, weighted_n=total,
                          weighted_events=events)


def _hazard_ratios(table: pd.DataFrame, spec: PanelSpec, column: str, levels: list,
                   alpha: float) -> list:
    """The Cox hazard ratio of each level against the first (competing events censored),
    weighted with a robust SE when the spec is."""
    known = table[known_status(table, spec.endpoint)]
    endpoint = as_censored(derive(known, spec.endpoint))
    weights = None if spec.weights is None else known[spec.weights].to_numpy(float)
    return group_hazard_ratios(endpoint["time"], endpoint["cause"], known[column], levels,
                               weights, alpha, robust=True)


def _draw(panel: Panel, table: pd.DataFrame) -> plt.Figure:
    """The panel's figure (:func:`km_panel`): its curves, the landmark estimates of its
    summary in the header with the test's P value (none for a weighted panel: its hazard
    ratios compare it), its corner text, the numbers at risk through its disclosure."""
    spec, summary = panel.spec, panel.summary
    first = summary.iloc[0]
    alpha = float(first["alpha"])
    known = table[known_status(table, spec.endpoint)]
    when = landmark_label(first["landmark_months"])
    options = dict(kind=ENDPOINTS[spec.endpoint].kind, title=panel.title,
                   ylabel=spec.ylabel or _ylabel(spec.endpoint), method=spec.method,
                   heading=(f"At {when}, weighted %" if panel.weighted
                            else f"At {when}, % ({ci_label(alpha)})"),
                   horizon_months=spec.horizon_months,
                   landmark_months=first["landmark_months"], alpha=alpha,
                   disclosure=panel.disclosure, corner=panel.words.corner(panel),
                   weights=None if spec.weights is None else known[spec.weights])
    if spec.by is None:
        return km_panel(derive(known, spec.endpoint), None, None,
                        estimates={"All patients": estimate_text(first)}, **options)
    groups = panel.shown_rows()
    test = groups.iloc[0]
    return km_panel(derive(known, spec.endpoint), known[first["by"]], list(groups["group"]),
                    p_value=None if panel.weighted else test["p_value"],
                    test_name=test["test"].replace(" test", ""),
                    estimates={g["group"]: estimate_text(g) for _, g in groups.iterrows()},
                    **options)


def make_panel(chapter, spec: PanelSpec, landmark_months: float,
               alpha: float = 0.05) -> Panel:
    """:meth:`PanelEngine.panel` on a chapter's cohort, saved in its output folder."""
    return PanelEngine.for_chapter(chapter, landmark_months, alpha).panel(spec)


def make_panels(chapter, specs: list[PanelSpec], landmark_months: float,
                alpha: float = 0.05) -> list[Panel]:
    """:meth:`PanelEngine.figure` on a chapter's cohort, as a list of panels."""
    return PanelEngine.for_chapter(chapter, landmark_months, alpha).figure(specs).panels


# ---------------------------------------------------------------------------------------------
# How a panel is written
# ---------------------------------------------------------------------------------------------
#: What one event of an endpoint the Results narrative does not name is called.
EVENT_NOUNS = {"neutrophil_engraftment": ("engraftment", "engraftments"),
               "platelet_engraftment": ("engraftment", "engraftments")}


def _events(panel: Panel, k, endpoint: str = "") -> str:
    """``9 deaths``, ``1 case``: the count (through the panel's disclosure) with the
    endpoint's noun for one event (the narrative's :data:`ENDPOINT_WORDS`), ``event`` by
    default."""
    one, many = (ENDPOINT_WORDS[endpoint][1:3] if endpoint in ENDPOINT_WORDS
                 else EVENT_NOUNS.get(endpoint, ("event", "events")))
    shown = panel.disclosure.count_text(k)
    return f"{shown} {one if shown == '1' else many}"


def _hidden_plural(text: str) -> str:
    """``< 5 patients still at risk``: a count the disclosure hides is read as plural
    (the narrative's phrase says ``patient`` after a hidden 1)."""
    return re.sub(r"(< \d+) patient still at risk", r"\1 patients still at risk", text)


def _estimate(panel: Panel, row) -> str:
    """The narrative's :func:`estimate_phrase` of a summary row: ``77.40% (95% CI
    57.99–88.65%)``, with how many were still at risk at the landmark when fewer than
    :data:`FEW_AT_RISK` (``; 2 patients still at risk``)."""
    rec, name = Recorder("caption", panel.disclosure), panel.spec.endpoint
    at_risk = panel.at_risk.get(row["group"])
    if name not in ENDPOINT_WORDS and row["events"] == 0 and not np.isnan(row["estimate"]):
        few = at_risk_words(rec, name, row["group"], at_risk)
        noun = EVENT_NOUNS.get(name, ("event", "events"))[0]
        return _hidden_plural(f"{format_percent(row['estimate'])} (no {noun} observed{few})")
    return _hidden_plural(estimate_phrase(rec, name, row, at_risk))


def _median_words(row) -> str:
    """``the median was not reached``, ``the median was 32.00 months (95% CI 12.32 months
    to not reached)``."""
    if np.isnan(row["median_months"]):
        return "the median was not reached"
    lower, upper = (row["median_lower"], row["median_upper"])
    bound = [("not reached" if np.isnan(v) else f"{v:.2f} months") for v in (lower, upper)]
    return (f"the median was {row['median_months']:.2f} months ({ci_label(row['alpha'])} "
            f"{bound[0]} to {bound[1]})")


def _compact(panel: Panel, row) -> str:
    """:func:`estimate_text` of a row (``77.10% (55.90–89.02)``), with the number still at
    risk inside its bracket when fewer than :data:`FEW_AT_RISK`."""
    text = estimate_text(row)
    few = at_risk_words(Recorder("caption", panel.disclosure), panel.spec.endpoint,
                        row["group"], panel.at_risk.get(row["group"]))
    if not few:
        return text
    few = _hidden_plural(few)
    return f"{text[:-1]}{few})" if text.endswith(")") else f"{text} ({few[2:]})"


def _weight_sum(panel: Panel, row) -> str:
    """``, sum of weights 12.3`` for a row of a weighted panel ("" unweighted, or when the
    patients behind the sum are too few to show)."""
    if not panel.weighted or panel.disclosure.is_small(row["n"]):
        return ""
    return f", sum of weights {row['weighted_n']:.1f}"


def _unit(panel: Panel) -> str:
    """``days`` when the panel's x axis counts days (a short horizon), else ``months``."""
    horizon = panel.spec.horizon_months
    return time_axis(horizon).unit if horizon else "months"


def _ticks(panel: Panel, competing: str = "") -> str:
    """What the panel's ticks mark: censored patients, and, for the paper's 1 − Kaplan–Meier
    of an incidence, the competing events it counts as censorings."""
    if ENDPOINTS[panel.spec.endpoint].kind == "survival" or panel.spec.method != PAPER_METHOD:
        return "censored patients"
    competing = competing or "competing events"
    return f"censored patients, and {competing} (which this method counts as censored)"


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
    png, svg = Path(files["png"]).as_posix(), Path(files["svg"]).as_posix()
    return (f"```{{figure}} {png}\n:name: {anchor}\n:alt: {alt}\n:width: 100%\n"
            ":figclass: km-panel\n\n"
            f"{caption_text}\n\n"
            f"Download {label}: {{download}}`PNG <{png}>` · {{download}}`SVG <{svg}>`\n```\n")


class OutcomeWords:
    """The words of Figures 1–3: caption led by the panel's label, one method per panel
    (a competing-risk variant is its own panel), downloads inside the figure.

    A caption says what the panel shows (endpoint, patients, events), its estimates at the
    landmark with their intervals (and how many patients were still at risk where fewer
    than :data:`bridge_hsct.paper.narrative.FEW_AT_RISK` remained), what the comparison
    found, and how the panel is drawn, in that order; its sentences follow the numbers
    (a median reached or not, a significant test or not, one estimate above the other),
    through the Results narrative's own phrases."""

    def title(self, panel: Panel) -> str:
        """``"A  Overall survival, all patients"`` (``, competing risks`` when drawn by
        Aalen–Johansen)."""
        what = ENDPOINTS[panel.spec.endpoint].label
        if panel.spec.method == COMPETING_METHOD:
            what += ", competing risks"
        letter = panel.spec.letter
        return f"{letter}  {what}, {panel.subject}" if letter else f"{what}, {panel.subject}"

    def method(self, panel: Panel) -> str:
        """The estimator, in words."""
        kind = ENDPOINTS[panel.spec.endpoint].kind
        if panel.weighted:
            return ("weighted Kaplan–Meier" if kind == "survival" else
                    "1 − weighted Kaplan–Meier, competing events counted as censored")
        return METHOD_WORDS["survival" if kind == "survival" else panel.spec.method]

    def weighting(self, panel: Panel) -> str:
        """What a weighted panel's weights are, in words."""
        return f"the case weights of column {markdown_code(panel.spec.weights)}"

    def drawing(self, panel: Panel) -> str:
        """How the panel is drawn, one sentence (level from the panel's summary)."""
        above = "estimates and hazard ratios" if panel.hazard_ratios else "estimates"
        if panel.weighted:
            return (f"Estimated by {self.method(panel)}, each patient weighted by "
                    f"{self.weighting(panel)}; no confidence band (the usual ones would "
                    f"ignore the weights' estimation); ticks: {_ticks(panel)}; {above} above "
                    "the axes, weighted numbers at risk (sums of the weights) under them.")
        bands = "" if panel.spec.by is None else "s"
        level = confidence_percent(result_alpha(panel.summary))
        return (f"Estimated by {self.method(panel)}; shaded: {level} pointwise confidence "
                f"band{bands} (log-log); ticks: {_ticks(panel)}; {above} above the axes, "
                "numbers at risk under them.")

    def _ratio(self, panel: Panel, ratio) -> tuple[str, str]:
        """A hazard ratio against the panel's reference group: the pair's names and
        ``HR 0.85 (0.41–1.76), P = 0.66`` (or ``not estimable``)."""
        reference = panel.shown_rows().iloc[0]["group"]
        value = ("not estimable" if np.isnan(ratio.hr) else
                 f"HR {ratio.hr:.2f} ({ratio.lower:.2f}–{ratio.upper:.2f}), "
                 f"{p_phrase(ratio.p_value)}")
        return f"{ratio.group} vs {reference}", value

    def corner(self, panel: Panel) -> str:
        """The text in the panel's corner: its hazard ratios, a line each after a line
        naming the model and the level ("" without hazard ratios)."""
        if not panel.hazard_ratios:
            return ""
        ci = ci_label(result_alpha(panel.summary))
        lines = [f"{pair}: {value}" for pair, value in
                 (self._ratio(panel, h) for h in panel.hazard_ratios)]
        return "\n".join([f"Hazard ratios, {panel.hazard_ratios[0].analysis} ({ci}):", *lines])

    def ratios_sentence(self, panel: Panel) -> str:
        """The hazard ratios in the caption: ``IPTW Cox, robust SE, 95% CI: B vs A: HR 0.85
        (0.41–1.76), P = 0.66.`` ("" without hazard ratios)."""
        if not panel.hazard_ratios:
            return ""
        ratios = []
        for ratio in panel.hazard_ratios:
            pair, value = self._ratio(panel, ratio)
            why = f", {ratio.reason}" if np.isnan(ratio.hr) and ratio.reason else ""
            ratios.append(f"{markdown_text(pair)}: {value}{why}")
        analysis = panel.hazard_ratios[0].analysis
        return (f"{analysis[0].upper()}{analysis[1:]}, "
                f"{ci_label(result_alpha(panel.summary))}: {'; '.join(ratios)}.")

    def caption(self, panel: Panel) -> str:
        """What the panel shows, with its computed estimates and P value (one paragraph);
        landmark and confidence level are those of the panel's summary."""
        name = panel.spec.endpoint
        endpoint = ENDPOINTS[name].label
        rows, count_text = panel.shown_rows(), panel.disclosure.count_text
        when = landmark_label(float(panel.summary.iloc[0]["landmark_months"]))
        weighted = ", weighted" if panel.weighted else ""
        if panel.spec.by is None:
            first = rows.iloc[0]
            text = (f"**{panel.spec.label}.** {endpoint} of all "
                    f"{count_text(first['n'])} patients{weighted}, with "
                    f"{_events(panel, first['events'], name)} over the "
                    f"follow-up. At {when} it was {_estimate(panel, first)}")
            if ENDPOINTS[name].kind == "survival" and not panel.weighted:
                text += f"; {_median_words(first)}"
            return f"{text}. {self.drawing(panel)}"
        alpha = result_alpha(panel.summary)
        groups = join_words([f"{markdown_text(r['group'])} (n = {count_text(r['n'])}, "
                             f"{_events(panel, r['events'], name)}{_weight_sum(panel, r)})"
                             for _, r in rows.iterrows()])
        estimates = "; ".join(f"{markdown_text(r['group'])} {_compact(panel, r)}"
                              for _, r in rows.iterrows())
        if panel.weighted:  # no test of weighted curves: the weighted hazard ratios compare
            heading, compared = "weighted %", self.ratios_sentence(panel)
        else:
            heading = f"% ({ci_label(alpha)})"
            compared = " ".join(filter(None, (
                comparison_sentence(Recorder("caption", panel.disclosure), name, rows, alpha),
                self.ratios_sentence(panel))))
        return (f"**{panel.spec.label}.** {endpoint} by {markdown_text(panel.by_label)}"
                f"{weighted}: {groups}. At {when}, {heading}: {estimates}. {compared} "
                f"{self.drawing(panel)}")

    def alt(self, panel: Panel) -> str:
        """Short alternative text of the figure image (one line)."""
        kind = ENDPOINTS[panel.spec.endpoint].kind
        curve = "Kaplan–Meier curves" if kind == "survival" else "Cumulative incidence curves"
        endpoint = in_sentence(ENDPOINTS[panel.spec.endpoint].label)
        who = "all patients" if panel.spec.by is None else (
            f"by {one_line(panel.by_label)} ("
            + ", ".join(map(one_line, panel.shown_rows()["group"])) + ")")
        if panel.weighted:
            curve = "Kaplan–Meier curves" if kind == "survival" else "incidence curves"
            return (f"Weighted {curve} of {endpoint}, {who}, against "
                    f"{_unit(panel)} since transplant, with weighted numbers at risk below")
        return (f"{curve} of {endpoint}, {who}, against {_unit(panel)} since transplant, "
                "with numbers at risk below")

    def markdown(self, panel: Panel) -> str:
        """MyST ``{figure}`` with its downloads inside."""
        return figure_markdown(panel.files, panel.spec.anchor, panel.alt, panel.caption,
                               panel.spec.label)


#: The words of Figures 1–3 (the default of a spec).
OUTCOME_WORDS = OutcomeWords()

INCIDENCE_METHODS = {
    PAPER_METHOD: ("1 − Kaplan–Meier", "the paper's method (1 − Kaplan–Meier, {competing} "
                   "censored)", "log-rank"),
    COMPETING_METHOD: ("Aalen–Johansen", "the competing-risk estimate (Aalen–Johansen, "
                       "{competing} competing)", "Gray's test"),
}


@dataclass(frozen=True)
class IncidenceWords(OutcomeWords):
    """The words of Figure 4 and Supplementary Figure 5: both methods in every caption,
    led by the panel's letter, downloads under the figure.

    Parameters
    ----------
    competing : what competes with the event (``"relapse or death before the event"``).
    """

    competing: str

    def title(self, panel: Panel) -> str:
        """``"A  Grade II–IV acute GVHD, all patients"``."""
        return (f"{panel.spec.letter}  {ENDPOINTS[panel.spec.endpoint].label}, "
                f"{panel.subject}")

    def _alt(self, panel: Panel) -> str:
        label = in_sentence(ENDPOINTS[panel.spec.endpoint].label)
        drawn = panel.summary
        if panel.spec.by is None:
            return (f"Cumulative incidence curve of {label} in all "
                    f"{panel.disclosure.count_text(drawn.iloc[0]['n'])} patients over "
                    f"{_unit(panel)} since transplant, with the number at risk below.")
        groups = ", ".join(one_line(g) for g in drawn["group"].iloc[1:])
        return (f"Cumulative incidence curves of {label} {one_line(panel.subject)} ({groups}) "
                f"over {_unit(panel)} since transplant, with the numbers at risk below.")

    def _whole(self, panel: Panel, when: str) -> str:
        """The whole cohort's incidence at the landmark by both methods, one sentence."""
        drawn_method, other = panel.spec.methods
        row, alt_row = (panel.summaries[m].iloc[0] for m in (drawn_method, other))
        short, other_short = INCIDENCE_METHODS[drawn_method][0], INCIDENCE_METHODS[other][0]
        estimate, alternative = _estimate(panel, row), _estimate(panel, alt_row)
        same = (row["events"] > 0 and not np.isnan(row["lower"])
                and not np.isnan(alt_row["lower"]) and row["lower"] != row["upper"]
                and round(100 * row["estimate"], 2) == round(100 * alt_row["estimate"], 2))
        if same:
            return (f"By {when} it was {format_percent(row['estimate'])} by both methods: "
                    f"{estimate.split(' (', 1)[-1].rstrip(')')} by {short}, "
                    f"{alternative.split(' (', 1)[-1].rstrip(')')} by {other_short} "
                    f"({self.competing} had not yet changed the estimate).")
        return (f"By {when} it was {estimate} by {short}, and {alternative} by "
                f"{other_short}, which counts {self.competing} as competing.")

    def _tests(self, panel: Panel) -> str:
        """Both tests of the curves, in words that follow the panel's alpha."""
        alpha = result_alpha(panel.summary)
        results = []
        for method in panel.spec.methods:
            name = INCIDENCE_METHODS[method][2]
            p_value = float(panel.summaries[method].iloc[1]["p_value"])
            results.append((name if name.endswith("test") else f"{name} test", p_value))
        ps = "; ".join(f"{name}, {p_phrase(p)}" for name, p in results)
        if any(np.isnan(p) for _, p in results):
            return f"The curves were compared over the whole follow-up ({ps})."
        significant = [name for name, p in results if p < alpha]
        if not significant:
            return f"Neither test found the curves different over the whole follow-up ({ps})."
        if len(significant) == len(results):
            return f"Both tests found the curves different ({ps})."
        return f"Only the {significant[0]} found the curves different ({ps})."

    def caption(self, panel: Panel) -> str:
        """What the panel shows, its estimates at the landmark (both methods for the whole
        cohort, the drawn one by group), both tests, and how it is drawn."""
        name = panel.spec.endpoint
        label = in_sentence(ENDPOINTS[name].label)
        when = landmark_label(float(panel.summary.iloc[0]["landmark_months"]))
        short, long, _ = INCIDENCE_METHODS[panel.spec.method]
        ci = ci_label(result_alpha(panel.summary))
        drawing = (f"Dotted line: the landmark ({when}); shaded: pointwise {ci}; ticks: "
                   f"{_ticks(panel, self.competing)}.")
        whole, count_text = panel.summary.iloc[0], panel.disclosure.count_text
        if panel.spec.by is None:
            return (f"**{panel.spec.label}.** Cumulative incidence of {label} in all "
                    f"{count_text(whole['n'])} patients "
                    f"({_events(panel, whole['events'], name)}), "
                    f"drawn by {long.format(competing=self.competing)}. "
                    f"{self._whole(panel, when)} {drawing}")
        rows = panel.shown_rows()
        groups = "; ".join(f"{markdown_text(r['group'])} (n = {count_text(r['n'])}) "
                           f"{_estimate(panel, r)}" for _, r in rows.iterrows())
        return (f"**{panel.spec.label}.** Cumulative incidence of {label} "
                f"{markdown_text(panel.subject)}, drawn by "
                f"{long.format(competing=self.competing)}. By {when} ({short}): {groups}. "
                f"{self._tests(panel)} {drawing}")

    def alt(self, panel: Panel) -> str:
        """One line naming the curves and the groups."""
        return self._alt(panel)

    def markdown(self, panel: Panel) -> str:
        """MyST ``{figure}`` with the download line of the panel under it."""
        png, svg = (Path(panel.files["png"]).as_posix(), Path(panel.files["svg"]).as_posix())
        return (f"```{{figure}} {png}\n:name: {panel.spec.anchor}\n:alt: {panel.alt}\n"
                f":width: 100%\n:figclass: km-panel\n\n{panel.caption}\n```\n\n"
                f"Download {panel.spec.label}: {{download}}`PNG <{png}>`, "
                f"{{download}}`SVG <{svg}>`\n")


# ---------------------------------------------------------------------------------------------
# A figure: its panels, tables and sentences
# ---------------------------------------------------------------------------------------------
def _median_text(row) -> str:
    if row["method"] != "kaplan-meier":
        return ""
    if np.isnan(row["median_months"]):
        return "not reached"
    lower = "NR" if np.isnan(row["median_lower"]) else f"{row['median_lower']:.2f}"
    upper = "NR" if np.isnan(row["median_upper"]) else f"{row['median_upper']:.2f}"
    return f"{row['median_months']:.2f} ({lower}–{upper})"


@dataclass
class Figure:
    """The computed panels of a figure, in the order of their specs (skipped included).

    ``alpha`` is one minus the confidence level of every estimate (and band) of the figure
    (the engine's; None when the panels were gathered without it); ``disclosure`` the
    small-cell suppression of its tables and sentences (keyword only, required).
    """

    panels: list[Panel]
    alpha: float | None = None
    disclosure: Disclosure = field(kw_only=True)

    @property
    def drawn(self) -> list[Panel]:
        """The panels that could be computed."""
        return [p for p in self.panels if p.drawn]

    def part(self, *letters: str) -> Figure:
        """The panels with these letters (a figure's section), in the figure's order."""
        return Figure([p for p in self.panels if p.spec.letter in letters], self.alpha,
                      disclosure=self.disclosure)

    def markdown(self) -> str:
        """MyST of every panel, one after the other (see :meth:`Panel.markdown`)."""
        return "\n".join(p.markdown() for p in self.panels)

    @property
    def notes(self) -> list[str]:
        """One sentence per skipped panel, saying why."""
        return [f"{p.spec.label} not drawn: {p.skipped}." for p in self.panels
                if not p.drawn]

    # -- Figures 1–3: one method per panel --------------------------------------------------
    def numbers(self) -> pd.DataFrame:
        """Tidy estimates of the drawn panels: the rows each panel shows, with its label.

        One row per (panel, group): the whole-cohort row for a whole-cohort panel, the
        group rows for a comparison panel (columns of :func:`endpoint_summary` plus
        ``figure``, the panel's label, and ``panel``, its file stem).
        """
        frames = [p.shown_rows().assign(figure=p.spec.label, panel=p.spec.stem)
                  for p in self.drawn]
        if not frames:
            return pd.DataFrame()
        numbers = pd.concat(frames, ignore_index=True)
        first = ["figure", "panel"]
        return numbers[first + [c for c in numbers.columns if c not in first]]

    def table(self) -> Table:
        """The summary table under a figure: estimates, medians and P values of every panel
        (render with ``stub="Panel"``)."""
        rows, notes = [], self.notes
        landmark = None
        for panel in self.drawn:
            landmark = landmark_label(float(panel.summary.iloc[0]["landmark_months"]))
            shown = panel.shown_rows()
            name = f"{panel.spec.label} · {panel.title.split('  ', 1)[-1]}"
            if panel.spec.by is None:
                r = shown.iloc[0]
                rows.append([name, r["n"], r["events"], estimate_text(r), _median_text(r), "",
                             "", 0])
                continue
            test = shown.iloc[0]
            rows.append([name, "", "", "", "", format_p(test["p_value"]), test["test"], 0])
            for _, r in shown.iterrows():
                rows.append([str(r["group"]), r["n"], r["events"], estimate_text(r),
                             _median_text(r), "", "", 1])
        alpha = result_alpha(self.drawn[-1].summary) if self.drawn else None
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
        return Table(display, self.numbers(), notes, disclosure=self.disclosure)

    def describe(self) -> str:
        """One computed bullet per panel, for the chapter's text (MyST Markdown)."""
        lines = []
        for panel in self.panels:
            endpoint = in_sentence(ENDPOINTS[panel.spec.endpoint].label)
            link = f"{{ref}}`{panel.spec.label} <{panel.spec.anchor}>`"
            if not panel.drawn:
                lines.append(f"- {link}: not drawn, {panel.skipped}.")
                continue
            rows = panel.shown_rows()
            when = landmark_label(float(rows.iloc[0]["landmark_months"]))
            if panel.spec.by is None:
                r = rows.iloc[0]
                median = _median_text(r)
                tail = f"; median {median.split(' (')[0]}" if median else ""
                words = estimate_text(r, in_words=True)
                lines.append(f"- {link}: {endpoint} at {when} was {words} in all "
                             f"{self.disclosure.count_text(r['n'])} patients{tail}.")
                continue
            parts = " vs ".join(f"{markdown_text(r['group'])} "
                                f"{estimate_text(r, in_words=True)}"
                                for _, r in rows.iterrows())
            test = rows.iloc[0]
            lines.append(f"- {link}: {endpoint} at {when} by {markdown_text(panel.by_label)}, "
                         f"{parts} ({test['test']}, {p_phrase(test['p_value'])}).")
        return "\n".join(lines)

    # -- Figure 4 and Supplementary Figure 5: both methods per panel -------------------------
    def estimates(self) -> pd.DataFrame:
        """Tidy table of every drawn panel's landmark estimates and tests, both methods
        (the paper's first), with the panel's file stem, letter and subject."""
        frames = [panel.summaries[method].assign(figure=panel.spec.stem,
                                                 panel=panel.spec.letter,
                                                 subject=panel.subject)
                  for panel in self.drawn for method in (PAPER_METHOD, COMPETING_METHOD)
                  if method in panel.summaries]
        if not frames:
            return pd.DataFrame(columns=["figure", "panel", "endpoint", "method", "group"])
        tidy = pd.concat(frames, ignore_index=True)
        first = ["figure", "panel", "endpoint", "subject", "method", "by", "group"]
        return tidy[first + [c for c in tidy.columns if c not in first]]

    def methods_table(self, whole_rows: bool = False) -> Table:
        """Both methods side by side: one bold line per panel, then one per group (or the
        whole cohort), with n, events, the 1 − Kaplan–Meier and Aalen–Johansen estimates and
        their tests' P values (render with ``stub="Panel"``, ``test_col=None``).

        With `whole_rows`, panels by group also show the whole cohort first. The headers
        name the figure's confidence level.
        """
        rows = []
        for panel in self.drawn:
            paper = panel.summaries[PAPER_METHOD]
            competing = panel.summaries[COMPETING_METHOD]
            when = landmark_label(paper.iloc[0]["landmark_months"])
            by_group = panel.spec.by is not None
            # a test compares the groups of the panel: its P value once, on the panel's line
            tests = ([format_p(paper.iloc[1]["p_value"]), format_p(competing.iloc[1]["p_value"])]
                     if by_group else ["", ""])
            rows.append([f"{panel.spec.label}. {ENDPOINTS[panel.spec.endpoint].label}, "
                         f"{panel.subject}, at {when}", "", "", "", tests[0], "", tests[1], 0])
            part = paper.iloc[:1] if not by_group else paper if whole_rows else paper.iloc[1:]
            for (_, km), (_, aj) in zip(part.iterrows(), competing.loc[part.index].iterrows(),
                                        strict=True):
                whole = km["group"] == "whole"
                rows.append([
                    "All patients" if whole else str(km["group"]),
                    self.disclosure.count_text(int(km["n"])),
                    self.disclosure.count_text(int(km["events"])),
                    estimate_text(km), "", estimate_text(aj), "", 1,
                ])
        ci = ci_label(self.alpha)
        display = pd.DataFrame(rows, columns=[
            "Panel", "n", "Events", f"1 − KM, % ({ci})", "Log-rank P",
            f"Aalen–Johansen, % ({ci})", "Gray P", "indent"])
        return Table(display, self.estimates(), self.notes, disclosure=self.disclosure)


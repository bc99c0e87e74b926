"""The IPTW chapter as a whole: :func:`iptw_report` computes and saves everything for a
chapter, and the :class:`IptwReport` it returns shows each part."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field, replace
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from IPython.display import Markdown  # noqa: E402

from ...cohort.endpoints import (  # noqa: E402
    ENDPOINTS,
    known_status,
    missing_columns,
)
from ...render.data_label import sidecar  # noqa: E402
from ...render.disclosure import Disclosure  # noqa: E402
from ...render.escaping import markdown_code, markdown_text  # noqa: E402
from ...render.figures import save_figure  # noqa: E402
from ...render.formatting import in_sentence  # noqa: E402
from ...render.tables import render_table, save_table  # noqa: E402
from ..panels import Figure, PanelEngine, figure_markdown  # noqa: E402
from ..table1 import TABLE1_ROWS  # noqa: E402
from .analysis import (  # noqa: E402
    DEFAULT_CONFOUNDERS,
    DEFAULT_PENALTY,
    DEFAULT_TRIM_PERCENTILES,
    IPTW_ENDPOINTS,
    MIN_GROUP_SIZE,
    SMD_THRESHOLD,
    Weighting,
    balance_table,
    covariate_terms,
    iptw,
    iptw_outcomes,
    weighting_sensitivity,
)
from .figures import (  # noqa: E402
    SUPPLEMENTARY_FIGURE6,
    WEIGHT_COLUMN,
    love_plot,
)
from .words import (  # noqa: E402
    balance_display,
    effective_n_text,
    events_text,
    hazard_ratio_display,
    limits_text,
    ordinal,
    sensitivity_display,
    weighting_text,
)


# ---------------------------------------------------------------------------------------------
# The chapter
# ---------------------------------------------------------------------------------------------
def _unless_skipped(part):
    """A part of :class:`IptwReport` that shows nothing when the analysis was not run (None:
    an empty Markdown would be shown as its text repr)."""
    @functools.wraps(part)
    def shown(report: IptwReport):
        return None if report.skipped else part(report)
    return shown


@dataclass
class IptwReport:
    """Everything the IPTW chapter shows, computed and saved by :func:`iptw_report`.

    Each method returns what one notebook cell displays: a great-tables table, or Markdown
    (text, figures), with counts through `disclosure`, the chapter's (keyword only,
    required). ``curves`` is Supplementary Figure 6, the panels of
    :data:`.figures.SUPPLEMENTARY_FIGURE6` drawn by the book's panel engine. When the
    analysis was not run (``skipped``), :meth:`describe_weights` says why in a sentence and
    every other part is None (nothing shown).
    """

    groups: list
    landmark_months: float
    alpha: float
    group_label: str = "group"
    disclosure: Disclosure = field(kw_only=True)
    skipped: str | None = None
    left_out: dict = field(default_factory=dict)
    weighting: Weighting | None = None
    balance: pd.DataFrame | None = None
    outcomes: dict | None = None
    sensitivity: pd.DataFrame | None = None
    all_terms: int = 0
    curves: Figure | None = None
    figures: dict = field(default_factory=dict)
    csv: dict = field(default_factory=dict)
    unknown: str = ""

    @property
    def reference(self):
        """The reference group."""
        return self.groups[0]

    def _left_out_sentence(self) -> str:
        if not self.left_out:
            return ""
        return ("Left out of the analysis, as too small to weight or compare: "
                + "; ".join(f"{markdown_text(g)} ({why})" for g, why in self.left_out.items())
                + ".\n\n")

    def describe_weights(self) -> Markdown:
        """The model, the weights, their truncation and the balance, in words; or why the
        analysis was not run."""
        if self.skipped:
            return Markdown(f":::{{note}} IPTW analysis not run\n{self.skipped}.\n:::\n")
        unknown = f"{self.unknown}\n\n" if self.unknown else ""
        return Markdown(unknown + self._left_out_sentence()
                        + weighting_text(self.weighting, self.balance,
                                         disclosure=self.disclosure))

    @_unless_skipped
    def propensity_table(self):
        """The propensity model's odds ratios per SD, one column per non-reference group."""
        coefficients = self.weighting.model.fit.coefficients.drop(index="intercept")
        labels = {t.name: t.label for t in self.weighting.model.terms}
        frame = pd.DataFrame({"Term": [labels[k] for k in coefficients.index]})
        for group in coefficients.columns:
            frame[f"{group} vs {self.reference}"] = [f"{math.exp(v):.2f}"
                                                     for v in coefficients[group]]
        if frame.empty:
            frame.loc[0, "Term"] = "No covariate term: every patient has the group shares"
        return render_table(frame, title="Propensity model",
                            subtitle="Odds ratio per SD of each covariate of belonging to a "
                                     f"group rather than {self.reference}; covariates "
                                     "standardised (mean 0, SD 1)",
                            notes=[f"Ridge penalty λ = {self.weighting.model.fit.penalty:g}; "
                                   "the intercepts are not penalised."],
                            stub="Term", test_col=None, indent_col=None,
                            table_id="iptw-propensity-model", disclosure=self.disclosure)

    @_unless_skipped
    def weights_table(self):
        """Propensities and weights per group, with the truncation."""
        summary, disclosure = self.weighting.summary(), self.disclosure
        frame = pd.DataFrame({
            "Group": summary["group"].astype(str), "n": summary["n"],
            "Propensity, range": [f"{a:.2f}–{b:.2f}" for a, b in
                                  zip(summary["propensity_min"], summary["propensity_max"],
                                      strict=True)],
            "Weight, range": [f"{a:.2f}–{b:.2f}" for a, b in
                              zip(summary["weight_min"], summary["weight_max"], strict=True)],
            "Mean weight": summary["weight_mean"].map(lambda v: f"{v:.2f}"),
            "Sum of weights": [disclosure.count_text(r["n"]) if disclosure.is_small(r["n"])
                               else f"{r['weight_sum']:.1f}" for _, r in summary.iterrows()],
            "Effective n": [effective_n_text(r, disclosure) for _, r in summary.iterrows()],
            "Truncated": summary["n_trimmed"],
        })
        trim = self.weighting.trimming
        return render_table(frame, title="Stabilised weights by group",
                            notes=["Propensity: the modelled probability of the patient's "
                                   "own group; weight: the group's share over it.",
                                   f"Truncated at the {ordinal(trim.lower_percentile)} "
                                   f"({trim.lower_bound:.3f}) and "
                                   f"{ordinal(trim.upper_percentile)} "
                                   f"({trim.upper_bound:.3f}) percentiles of all weights.",
                                   "Effective n: Kish's (Σw)² / Σw²."],
                            stub="Group", test_col=None, indent_col=None,
                            table_id="iptw-weights", disclosure=disclosure)

    @_unless_skipped
    def covariate_balance(self):
        """Means and standardised mean differences before and after weighting."""
        display = balance_display(self.balance, self.reference)
        display.columns = [c.replace("Reference", str(self.reference)) for c in display]
        return render_table(display, title="Covariate balance before and after weighting",
                            subtitle="Means (proportions for yes/no terms) and standardised "
                                     "mean differences (SMD), each group against "
                                     f"{self.reference}",
                            notes=[f"SMD = difference of (weighted) means, group minus "
                                   f"{self.reference}, over the unweighted SD pooled from "
                                   f"the two; |SMD| > {SMD_THRESHOLD:g} is usually read as "
                                   "imbalance.",
                                   "In model: the covariate is one of the propensity model's "
                                   "confounders."],
                            stub="Covariate", test_col=None, table_id="iptw-balance",
                            disclosure=self.disclosure)

    @_unless_skipped
    def balance_plot(self) -> Markdown:
        """The figure of the absolute standardised mean differences (love plot)."""
        return Markdown(figure_markdown(
            self.figures["balance"], "figure-iptw-balance",
            "Dot plot of absolute standardised mean differences per covariate and group, "
            "before and after weighting",
            "**Covariate balance.** Absolute standardised mean difference of each Table 1 "
            f"term, each group against {markdown_text(self.reference)}, before (open "
            f"circles) and after (filled) weighting; dashed line at {SMD_THRESHOLD:g}; "
            "starred terms are in the propensity model.",
            "the balance plot"))

    @_unless_skipped
    def describe_limits(self) -> Markdown:
        """What the cohort's size can support, in words."""
        return Markdown(limits_text(self.weighting, self.outcomes, self.all_terms,
                                    disclosure=self.disclosure))

    @_unless_skipped
    def describe_events(self) -> Markdown:
        """Events per group and endpoint, as bullets."""
        return Markdown(events_text(self.outcomes, disclosure=self.disclosure))

    @_unless_skipped
    def curve_figures(self) -> Markdown:
        """Supplementary Figure 6: each endpoint's curves without and with the weights (a
        single note for an endpoint the data do not have: both its panels miss the same
        column)."""
        shown = [panel for panel in self.curves.panels
                 if panel.drawn or not panel.weighted]
        return Markdown("\n".join(panel.markdown() for panel in shown))

    @_unless_skipped
    def hazard_ratio_table(self):
        """Hazard ratios without and with weighting."""
        notes = ["Unadjusted: Cox model, Efron ties, model-based (Wald) SE. IPTW: Cox model, "
                 "Breslow ties, with the stabilised, truncated weights and a robust "
                 "(sandwich) SE. One model per endpoint and analysis, with a term for each "
                 f"group against {self.reference}.",
                 "A group without events has no finite hazard ratio; it is left out of that "
                 "model."]
        agvhd = self.outcomes["results"].get("agvhd_3_4")
        if agvhd and not agvhd.skipped:
            notes.append("Grade III–IV aGVHD: relapse and death before it censored "
                         "(cause-specific hazard).")
        return render_table(hazard_ratio_display(self.outcomes, self.groups),
                            title="Hazard ratios without and with weighting",
                            subtitle=f"Each group vs {self.reference}", notes=notes,
                            stub="Analysis", test_col=None, table_id="iptw-hazard-ratios",
                            disclosure=self.disclosure)

    @_unless_skipped
    def landmark_table(self):
        """Estimates at the landmark without and with weighting."""
        when, disclosure = f"{self.landmark_months:g} months", self.disclosure
        rows = []
        for name, part in self.outcomes["landmarks"].groupby("endpoint", sort=False):
            rows.append([f"{ENDPOINTS[name].label} ({part['quantity'].iloc[0]})",
                         "", "", "", "", 0])
            for group in self.groups:
                plain = part[(part["group"] == group) & (part["analysis"] == "unadjusted")]
                weighted = part[(part["group"] == group) & (part["analysis"] == "iptw")]
                n = int(plain["n"].iloc[0])
                rows.append([str(group), n, disclosure.count_text(n) if disclosure.is_small(n)
                             else f"{weighted['weighted_n'].iloc[0]:.1f}",
                             _percent(plain["estimate"].iloc[0]),
                             _percent(weighted["estimate"].iloc[0]), 1])
        frame = pd.DataFrame(rows, columns=["Endpoint", "n", "Sum of weights",
                                            f"Unadjusted at {when}",
                                            f"IPTW-weighted at {when}", "indent"])
        return render_table(frame, title=f"Estimates at {when} without and with weighting",
                            notes=["No confidence intervals for weighted estimates: the "
                                   "usual (Greenwood) ones would ignore the weights' "
                                   "estimation."],
                            stub="Endpoint", test_col=None, table_id="iptw-landmarks",
                            disclosure=disclosure)

    @_unless_skipped
    def sensitivity_table(self):
        """Weighted hazard ratios under other penalties and truncations."""
        return render_table(sensitivity_display(self.sensitivity, disclosure=self.disclosure),
                            title="How much the answer depends on the weighting choices",
                            subtitle=f"IPTW Cox hazard ratio of each group vs "
                                     f"{self.reference}, robust SE",
                            notes=["λ: ridge penalty of the propensity model (0 = maximum "
                                   "likelihood). The main analysis is λ = "
                                   f"{DEFAULT_PENALTY:g}, truncated at the "
                                   f"{ordinal(DEFAULT_TRIM_PERCENTILES[0])} and "
                                   f"{ordinal(DEFAULT_TRIM_PERCENTILES[1])} percentiles."],
                            stub="Weighting", test_col=None, table_id="iptw-sensitivity",
                            disclosure=self.disclosure)

    @_unless_skipped
    def downloads(self) -> Markdown | None:
        """Bullets linking the chapter's CSV files (None when none was saved)."""
        lines = [f"- {{download}}`{name}.csv <{Path(path).as_posix()}>`: {what}"
                 + (f" ({{download}}`its data <{sidecar(Path(path)).as_posix()}>`)"
                    if sidecar(Path(path)).is_file() else "")
                 for name, (path, what) in self.csv.items()]
        return Markdown("\n".join(lines)) if lines else None


def _percent(value: float) -> str:
    return "not estimable" if np.isnan(value) else f"{100 * value:.2f}%"


CSV_CONTENTS = {
    "iptw_weight_summary": "per group: propensity and weight ranges, sums, effective sample "
                           "size, number truncated, truncation percentiles and bounds",
    "iptw_propensity_model": "the model's terms and their log-odds ratios per SD, one column "
                             "per group against the reference",
    "iptw_balance": "per covariate term and group: means and SMD against the reference, "
                    "before and after weighting",
    "iptw_landmarks": "landmark estimates per endpoint, group and analysis",
    "iptw_hazard_ratios": "hazard ratios of each group against the reference, unadjusted and "
                          "IPTW",
    "iptw_sensitivity": "IPTW hazard ratios under other penalties and truncations",
    "supplementary_figure6_estimates": "Supplementary Figure 6's landmark estimates, one row "
                                       "per panel and group, unadjusted (with confidence "
                                       "interval and log-rank test) and weighted (with the "
                                       "sums of the weights), on the IPTW analysis set",
}
#: The patients of Supplementary Figure 6 (its CSV's ``analysis_set`` column).
ANALYSIS_SET = ("IPTW analysis set: the patients of the weighted groups whose status is known "
                "for every endpoint of the analysis")


def _groups_to_analyse(chapter) -> tuple[list, dict, str | None]:
    """The chapter's groups large enough to weight, those left out (with why) and, when no
    comparison is possible, why (a sentence)."""
    sizes = chapter.sizes()
    left_out = {g: "no patients" if sizes[g] == 0 else f"fewer than {MIN_GROUP_SIZE} patients"
                for g in chapter.groups if sizes[g] < MIN_GROUP_SIZE}
    usable = [g for g in chapter.groups if g not in left_out]
    noun = chapter.group_label
    if chapter.reference in left_out:
        return usable, left_out, (
            f"the reference {noun}, {markdown_text(chapter.reference)}, has "
            f"{left_out[chapter.reference]}, and every comparison is made against it")
    if len(usable) < 2:
        return usable, left_out, (
            f"no other {noun} than the reference has at least {MIN_GROUP_SIZE} patients "
            f"(column {markdown_code(chapter.group_col)} holds {len(chapter.groups)} "
            f"{noun}{'s' if len(chapter.groups) != 1 else ''})")
    return usable, left_out, None


def _weigh(chapter, groups, confounders, penalty, trim_percentiles):
    """The weighting of the chapter's groups, or why it could not be formed (a sentence)."""
    try:
        weighting = iptw(chapter.data, chapter.group_col, groups, confounders, penalty,
                         trim_percentiles)
    except ValueError as error:
        return None, f"the weights could not be formed: {error}"
    if not weighting.model.fit.converged:
        return None, ("the propensity model did not converge: the covariates separate the "
                      "groups")
    return weighting, None


def iptw_report(chapter, confounders=DEFAULT_CONFOUNDERS, penalty: float = DEFAULT_PENALTY,
                trim_percentiles=DEFAULT_TRIM_PERCENTILES) -> IptwReport:
    """Run the whole IPTW analysis of a chapter and save its CSV, PNG and SVG files.

    Parameters
    ----------
    chapter : :class:`bridge_hsct.book.chapter.Chapter`; its groups (reference first),
        alpha, landmark, group noun and disclosure are used.
    confounders, penalty, trim_percentiles : see :func:`iptw`.

    Returns
    -------
    IptwReport
        With ``skipped`` set (and nothing saved) when no comparison can be made: fewer than
        two groups of at least :data:`MIN_GROUP_SIZE` patients, a reference group below that
        size, or weights that cannot be formed.
    """
    chapter, unknown = _with_known_status(chapter)
    groups, left_out, skipped = _groups_to_analyse(chapter)
    if all(missing_columns(chapter.data, name) for name in IPTW_ENDPOINTS):
        skipped = skipped or ("the data have none of the outcomes it weighs ("
                              + ", ".join(in_sentence(ENDPOINTS[n].label)
                                          for n in IPTW_ENDPOINTS) + ")")
    report = IptwReport(groups, chapter.landmark_months, chapter.alpha, chapter.group_label,
                        skipped=skipped, left_out=left_out, unknown=unknown,
                        disclosure=chapter.disclosure)
    if skipped:
        return report
    report.weighting, report.skipped = _weigh(chapter, groups, confounders, penalty,
                                              trim_percentiles)
    if report.skipped:
        return report
    _compute_and_save(report, chapter, confounders)
    return report


def _with_known_status(chapter):
    """The chapter restricted to the patients whose status is known for every endpoint the
    analysis weighs (one population for the weights and every outcome), and a sentence on
    those left out ("" when none is)."""
    names = [n for n in IPTW_ENDPOINTS if not missing_columns(chapter.data, n)]
    unknown = pd.Series(False, index=chapter.data.index)
    for name in names:
        unknown |= ~known_status(chapter.data, name)
    if not unknown.any():
        return chapter, ""
    shown = chapter.disclosure.count_text(int(unknown.sum()))
    sentence = (f"{shown} patient{'' if shown == '1' else 's'} with a blank status for one "
                "of the endpoints below (unknown, not \"no event\") are left out of the whole "
                "analysis, so that the weights and every outcome concern the same patients.")
    return replace(chapter, data=chapter.data[~unknown]), sentence


def curves_engine(chapter, weighting: Weighting, save: bool = True) -> PanelEngine:
    """The panel engine of Supplementary Figure 6: the weighted patients of the chapter with
    their weights in column :data:`.figures.WEIGHT_COLUMN`, the weighted groups, and the
    chapter's landmark, alpha, group noun, disclosure and (with `save`) output folder and
    data label, as every other figure's (:meth:`PanelEngine.for_chapter`)."""
    weighted = weighting.rows(chapter.data).assign(
        **{WEIGHT_COLUMN: weighting.frame["weight"]})
    return PanelEngine.for_chapter(replace(chapter, data=weighted, groups=weighting.groups),
                                   save=save)


def _compute_and_save(report: IptwReport, chapter, confounders) -> None:
    data, weighting = chapter.data, report.weighting
    report.balance = balance_table(data, weighting)
    table1 = [r.variable for r in TABLE1_ROWS if r.variable != "followup_months"]
    report.all_terms = len(covariate_terms(weighting.rows(data), table1, "reference")[1])
    report.outcomes = iptw_outcomes(data, weighting, IPTW_ENDPOINTS, chapter.landmark_months,
                                    chapter.alpha)
    report.sensitivity = weighting_sensitivity(data, chapter.group_col, report.groups,
                                               confounders=confounders, alpha=chapter.alpha)
    report.curves = curves_engine(chapter, weighting).figure(list(SUPPLEMENTARY_FIGURE6))
    figure = love_plot(report.balance, report.groups)
    report.figures["balance"] = save_figure(figure, chapter, "iptw_balance")
    plt.close(figure)
    trim = weighting.trimming
    # no per-patient table (propensities, weights): the site publishes aggregates only
    tables = {
        "iptw_weight_summary": weighting.summary().assign(
            trim_lower_percentile=trim.lower_percentile,
            trim_upper_percentile=trim.upper_percentile, trim_lower_bound=trim.lower_bound,
            trim_upper_bound=trim.upper_bound, penalty=weighting.model.fit.penalty),
        "iptw_propensity_model": weighting.model.fit.coefficients.rename_axis("term")
        .reset_index(),
        "iptw_balance": report.balance,
        "iptw_landmarks": report.outcomes["landmarks"],
        "iptw_hazard_ratios": report.outcomes["hazard_ratios"],
        "iptw_sensitivity": report.sensitivity,
        # on the patients the propensity model can weight, not the whole cohort: say so
        "supplementary_figure6_estimates": report.curves.numbers().assign(
            analysis_set=ANALYSIS_SET),
    }
    for name, frame in tables.items():
        if len(frame):  # an empty table would be a download of one byte
            report.csv[name] = (save_table(frame, chapter, name), CSV_CONTENTS[name])

"""The IPTW chapter: the paper's sensitivity analysis by inverse probability of treatment
weighting, for two or more groups, its tables, figures and words.

The paper re-compared its two groups after weighting each patient by the inverse of the
probability of receiving the treatment they received, given their baseline characteristics
(its Supplementary Fig. 6: OS, PFS, GRFS and grade III–IV aGVHD). This chapter does the same
for any number of groups. The statistics are those of :mod:`bridge_hsct.stats.weighting`;
this module holds the paper's choices and the chapter:

1. **Propensity model** (:func:`propensity_model`): one multinomial logistic model of the
   group (with two groups, the ordinary logistic model of the non-reference group), rather
   than a separate model of each group against the reference: one model gives every patient
   a probability of each group that sums to 1, which is what the generalised weights need,
   and uses every patient for every coefficient. It is fitted on a small pre-declared set of
   confounders (:data:`DEFAULT_CONFOUNDERS`) among those present in the data, coded as
   numeric terms from the data dictionary (:func:`covariate_terms`), with a ridge penalty
   λ = 1 (:data:`DEFAULT_PENALTY`). With 36 patients, 9 of them in one group, an unpenalised
   model on the paper's "all covariates" separates the groups perfectly and the
   maximum-likelihood propensities run to 0 and 1; the penalty keeps them finite at the cost
   of a little residual imbalance, which the balance table shows.
2. **Weights** (:func:`iptw`): generalised ATE weights ``P(A = a) / P(A = a | X)``
   (stabilised), truncated at the 1st and 99th percentiles of all weights
   (:data:`DEFAULT_TRIM_PERCENTILES`; no patient is dropped). Groups with fewer than
   :data:`MIN_GROUP_SIZE` patients are left out of the whole analysis, and said so.
3. **Balance** (:func:`balance_table`): standardised mean differences of every Table 1
   covariate (each level of a categorical one) before and after weighting, each
   non-reference group against the reference group (the pairwise comparisons the hazard
   ratios make), read against :data:`SMD_THRESHOLD`.
4. **Outcomes** (:func:`iptw_outcomes`): Kaplan–Meier curves of every group without and with
   weights, and the hazard ratio of each group against the reference from an unweighted Cox
   model and from a weighted one with robust standard errors, at the chapter's confidence
   level. For grade III–IV aGVHD, relapse and death before it are censored (the paper's
   Kaplan–Meier convention), so its weighted curve is a 1 − Kaplan–Meier incidence and its
   hazard ratios cause-specific.
5. **Sensitivity** (:func:`weighting_sensitivity`): the weighted hazard ratios under other
   penalties and truncations.
6. **Words** (:func:`weighting_text`, :func:`limits_text`): every judgement on the page
   (balance achieved or not, over-fitting a concern or not, how wide the intervals are)
   follows from the computed numbers and the stated rules of thumb
   (:data:`SMD_THRESHOLD`, :data:`PATIENTS_PER_TERM`, :data:`EVENTS_PER_HAZARD_RATIO`).

:func:`iptw_report` computes and saves everything for a
:class:`bridge_hsct.book.chapter.Chapter` (its alpha, landmark, groups, group noun and
disclosure); the chapter's notebook shows the parts of the :class:`IptwReport` it returns.
Where something cannot be estimated, the part says so in one sentence.
"""

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

from ..cohort.endpoints import (  # noqa: E402
    ENDPOINTS,
    as_censored,
    derive,
    known_status,
    missing_columns,
)
from ..cohort.schema import BY_NAME  # noqa: E402
from ..render.data_label import sidecar  # noqa: E402
from ..render.disclosure import (  # noqa: E402
    NO_SUPPRESSION,
    Disclosure,
    count_text,
    is_small,
    min_cell_count,
)
from ..render.escaping import markdown_code, markdown_text, plot_text  # noqa: E402
from ..render.figures import (  # noqa: E402
    FONT,
    WIDTH,
    figure_style,
    group_colours,
    save_figure,
)
from ..render.formatting import ci_label, format_p, p_phrase, result_alpha  # noqa: E402
from ..render.tables import render_table, save_table  # noqa: E402
from ..stats import weighting as weighting_stats  # noqa: E402
from ..stats.survival import months_to_days, to_months  # noqa: E402
from ..stats.weighting import (  # noqa: E402
    WEIGHTED_ROBUST,
    PropensityFit,
    Trimming,
    ate_weights,
    curve_at,
    effective_sample_size,
    group_hazard_ratios,
    truncate_weights,
    weighted_at_risk,
    weighted_km,
)
from .panels import figure_markdown, in_sentence  # noqa: E402
from .table1 import TABLE1_ROWS  # noqa: E402

#: Confounders of the propensity model, declared before looking at outcomes: the prognostic
#: factors of R/R B-ALL (age, disease status, Ph status, MRD before HSCT) and the two
#: characteristics on which the paper's groups differed (graft source, ABO compatibility).
DEFAULT_CONFOUNDERS = ("age_years", "disease_status", "ph_positive", "mrd_positive",
                       "graft_source", "abo_compatibility")
#: Ridge penalty λ on the standardised log-odds ratios (normal prior with SD 1/√λ).
DEFAULT_PENALTY = 1.0
#: Weights outside these percentiles of all weights are truncated to them.
DEFAULT_TRIM_PERCENTILES = (1.0, 99.0)
#: Endpoints of the paper's IPTW sensitivity analysis.
IPTW_ENDPOINTS = ("os", "pfs", "grfs", "agvhd_3_4")
#: Conventional threshold of a meaningful imbalance: balance is called achieved when every
#: absolute SMD of the model's terms is at most this after weighting.
SMD_THRESHOLD = 0.1
#: A group with fewer patients has no standard deviation, curve or hazard ratio worth
#: showing: it is left out of the analysis.
MIN_GROUP_SIZE = 5
#: Rule of thumb for a logistic model: about this many patients of the smallest group per
#: term, below which the model is said to risk over-fitting.
PATIENTS_PER_TERM = 10
#: Rule of thumb for a Cox model: about this many events per estimated hazard ratio.
EVENTS_PER_HAZARD_RATIO = 10


# ---------------------------------------------------------------------------------------------
# Covariates as numeric terms
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Term:
    """A numeric column derived from a covariate (itself, a rank or a level indicator)."""

    name: str
    variable: str
    label: str
    binary: bool


def _levels_present(values: pd.Series, variable: str) -> list:
    var = BY_NAME.get(variable)
    found = list(pd.unique(values.dropna()))
    ordered = [lv for lv in (var.levels if var else ()) if lv in found]
    return ordered + sorted((lv for lv in found if lv not in ordered), key=str)


def covariate_terms(data: pd.DataFrame, variables, categorical: str = "reference"):
    """Encode covariates as numeric columns.

    Parameters
    ----------
    data : cohort.
    variables : column names; absent or all-missing ones are skipped.
    categorical : how a categorical variable with levels ``l0, l1, ...`` (schema order) is
        coded: ``"reference"`` an indicator per level except the first (ordinal variables
        as their rank 0, 1, 2, ... instead), for a regression; ``"all"`` an indicator for
        every level, for a balance table.

    Returns
    -------
    columns : pandas.DataFrame
        One numeric column per term (missing values kept as NaN).
    terms : list of Term
    skipped : dict
        Variable → why it was not encoded (absent, empty, a single level).
    """
    columns, terms, skipped = {}, [], {}
    for variable in dict.fromkeys(variables):
        if variable not in data or data[variable].isna().all():
            skipped[variable] = "not in the data"
            continue
        var = BY_NAME.get(variable)
        label = var.label if var else variable
        values = data[variable]
        kind = var.kind if var else ("number" if pd.api.types.is_numeric_dtype(values)
                                     else "category")
        if kind in ("number", "days"):
            unit = f", {var.unit}" if var and var.unit else ""
            columns[variable] = values.astype(float)
            terms.append(Term(variable, variable, label + unit, False))
            continue
        levels = _levels_present(values, variable)
        if len(levels) < 2:
            skipped[variable] = "a single level in the data"
            continue
        names = dict(var.level_labels) if var and var.level_labels else {}
        if kind == "binary":
            columns[variable] = values.astype(float)
            terms.append(Term(variable, variable, label, True))
        elif kind == "ordinal" and categorical == "reference":
            rank = {lv: float(i) for i, lv in enumerate(levels)}
            columns[variable] = values.map(rank).astype(float)
            terms.append(Term(variable, variable, f"{label} (rank)", False))
        else:
            chosen = levels if categorical == "all" else levels[1:]
            for lv in chosen:
                name = f"{variable}={lv}"
                columns[name] = (values == lv).astype(float).where(values.notna())
                terms.append(Term(name, variable, f"{label}: {names.get(lv, lv)}", True))
    return pd.DataFrame(columns, index=data.index), terms, skipped


# ---------------------------------------------------------------------------------------------
# Propensity model and weights
# ---------------------------------------------------------------------------------------------
@dataclass
class PropensityModel:
    """The propensity model of the chapter: which groups, which terms, and the fit.

    Attributes
    ----------
    groups : the groups modelled, reference first; the model gives P(group | covariates).
    terms : the model's terms.
    fit : the fitted model (coefficients per SD, penalty, propensities, imputed values).
    skipped : confounders (or terms) left out, with the reason.
    """

    groups: list
    terms: list
    fit: PropensityFit
    skipped: dict = field(default_factory=dict)

    @property
    def reference(self):
        """The reference group."""
        return self.groups[0]


def _in_groups(data: pd.DataFrame, group_col: str, groups: list) -> pd.DataFrame:
    return data[data[group_col].isin(groups)]


def propensity_model(data: pd.DataFrame, group_col: str, groups: list,
                     confounders=DEFAULT_CONFOUNDERS,
                     penalty: float = DEFAULT_PENALTY) -> PropensityModel:
    """Multinomial logistic model of the group, reference ``groups[0]``.

    Parameters
    ----------
    data : cohort; only the patients of `groups` are used.
    group_col, groups : the groups, reference first (two or more, each with patients).
    confounders : candidate covariates, coded by :func:`covariate_terms` (categorical ones
        as level indicators, ordinal ones as ranks); those absent or constant are skipped
        (reported).
    penalty : ridge λ on the standardised coefficients
        (:func:`bridge_hsct.stats.weighting.fit_propensity`); 0: maximum likelihood.

    Returns
    -------
    PropensityModel
    """
    data = _in_groups(data, group_col, groups)
    columns, terms, skipped = covariate_terms(data, confounders, "reference")
    fit = weighting_stats.fit_propensity(columns, data[group_col], penalty, groups)
    skipped.update({name: "constant once missing values are filled" for name in fit.constant})
    kept = [t for t in terms if t.name not in fit.constant]
    return PropensityModel(list(groups), kept, fit, skipped)


@dataclass
class Weighting:
    """Everything about the weights of one analysis.

    Attributes
    ----------
    model : the propensity model.
    frame : one row per patient of the model's groups: patient_id, group, propensity (of the
        patient's own group), raw_weight, weight (after truncation), trimmed (bool); indexed
        like the data.
    trimming : the truncation.
    """

    model: PropensityModel
    frame: pd.DataFrame
    trimming: Trimming

    @property
    def groups(self) -> list:
        """The groups weighted, reference first."""
        return self.model.groups

    def rows(self, data: pd.DataFrame) -> pd.DataFrame:
        """The rows of `data` that were weighted, in the order of :attr:`frame`."""
        return data.loc[self.frame.index]

    def summary(self) -> pd.DataFrame:
        """Per group: n, sum, mean, min, max of the weights and the effective sample size."""
        rows = []
        for group in self.groups:
            part = self.frame[self.frame["group"] == group]
            w = part["weight"]
            rows.append({"group": group, "n": len(part),
                         "propensity_min": part["propensity"].min(),
                         "propensity_max": part["propensity"].max(),
                         "weight_sum": w.sum(), "weight_mean": w.mean(),
                         "weight_min": w.min(), "weight_max": w.max(),
                         "effective_n": effective_sample_size(w),
                         "n_trimmed": int(part["trimmed"].sum())})
        return pd.DataFrame(rows)


def iptw(data: pd.DataFrame, group_col: str, groups: list, confounders=DEFAULT_CONFOUNDERS,
         penalty: float = DEFAULT_PENALTY,
         trim_percentiles=DEFAULT_TRIM_PERCENTILES) -> Weighting:
    """Propensity model, stabilised generalised ATE weights and their truncation, in one call.

    Raises
    ------
    ValueError
        When fewer than two of `groups` have patients, or a propensity is 0 or 1 (the
        covariates separate the groups and there is no penalty).
    """
    model = propensity_model(data, group_col, groups, confounders, penalty)
    data = _in_groups(data, group_col, groups)
    propensity = model.fit.propensity
    raw = ate_weights(data[group_col], propensity)
    weight, trimming = truncate_weights(raw, trim_percentiles)
    own = propensity.to_numpy(float)[np.arange(len(data)),
                                     propensity.columns.get_indexer(data[group_col])]
    frame = pd.DataFrame({
        "patient_id": data["patient_id"] if "patient_id" in data else data.index,
        "group": data[group_col], "propensity": own,
        "raw_weight": raw, "weight": weight, "trimmed": raw != weight,
    }, index=data.index)
    return Weighting(model, frame, trimming)


# ---------------------------------------------------------------------------------------------
# Balance
# ---------------------------------------------------------------------------------------------
def balance_table(data: pd.DataFrame, weighting: Weighting, variables=None) -> pd.DataFrame:
    """Standardised mean differences before and after weighting, each non-reference group
    against the reference.

    Parameters
    ----------
    data : cohort (as given to :func:`iptw`).
    weighting : output of :func:`iptw`.
    variables : covariates; by default every Table 1 covariate in the data (each level of a
        categorical one).

    Returns
    -------
    pandas.DataFrame
        One row per (term, non-reference group): term, group, variable, label, binary,
        in_model (a confounder of the propensity model), and from
        :func:`bridge_hsct.stats.weighting.balance` the means of the reference and of the
        group, unweighted and weighted (proportions for 0/1 terms), smd_before, smd_after.
    """
    if variables is None:
        variables = [r.variable for r in TABLE1_ROWS if r.variable != "followup_months"]
    columns, terms, _ = covariate_terms(weighting.rows(data), variables, "all")
    in_model = {t.variable for t in weighting.model.terms}
    table = weighting_stats.balance(columns, [t.binary for t in terms],
                                    weighting.frame["group"].to_numpy(),
                                    weighting.frame["weight"].to_numpy(), weighting.groups)
    by_name = {t.name: t for t in terms}
    table.insert(2, "variable", [by_name[name].variable for name in table["term"]])
    table.insert(3, "label", [by_name[name].label for name in table["term"]])
    table.insert(4, "binary", [by_name[name].binary for name in table["term"]])
    table.insert(5, "in_model", table["variable"].isin(in_model).to_numpy())
    return table


def balance_display(balance: pd.DataFrame, reference) -> pd.DataFrame:
    """Readable balance table for :func:`bridge_hsct.render.tables.render_table` (stub
    "Covariate"): one block per non-reference group, headed "group vs reference"."""
    def mean(value, binary):
        return f"{100 * value:.1f}%" if binary else f"{value:.2f}"

    def smd(value):
        return "–" if np.isnan(value) else f"{value:+.2f}"

    rows = []
    for group, part in balance.groupby("group", sort=False):
        rows.append([f"{group} vs {reference}", *[""] * 7, 0])
        for _, r in part.iterrows():
            rows.append([r["label"], "yes" if r["in_model"] else "",
                         mean(r["mean_reference"], r["binary"]),
                         mean(r["mean_group"], r["binary"]), smd(r["smd_before"]),
                         mean(r["weighted_mean_reference"], r["binary"]),
                         mean(r["weighted_mean_group"], r["binary"]), smd(r["smd_after"]), 1])
    return pd.DataFrame(rows, columns=["Covariate", "In model", "Reference, before",
                                       "Group, before", "SMD before", "Reference, weighted",
                                       "Group, weighted", "SMD after", "indent"])


# ---------------------------------------------------------------------------------------------
# Outcomes
# ---------------------------------------------------------------------------------------------
def _outcome(data: pd.DataFrame, endpoint: str) -> pd.DataFrame:
    return as_censored(derive(data, endpoint))


@dataclass
class OutcomeResult:
    """Unadjusted and weighted analyses of one endpoint."""

    endpoint: str
    curves: dict = field(default_factory=dict)  # (analysis, group) -> weighted_km frame
    landmarks: pd.DataFrame | None = None
    hazard_ratios: dict = field(default_factory=dict)  # analysis -> list of HazardRatio
    skipped: str | None = None


def _missing_column(data: pd.DataFrame, endpoint: str) -> str | None:
    missing = missing_columns(data, endpoint)
    return f"the data have no column {markdown_code(missing[0])}" if missing else None


def analyse_endpoint(data: pd.DataFrame, weighting: Weighting, endpoint: str,
                     landmark_months: float = 24.0, alpha: float = 0.05) -> OutcomeResult:
    """Unadjusted vs IPTW-weighted curves, landmark estimates and hazard ratios.

    Parameters
    ----------
    data : cohort (as given to :func:`iptw`).
    weighting : output of :func:`iptw`.
    endpoint : key of :data:`bridge_hsct.cohort.endpoints.ENDPOINTS`; competing events censored.
    landmark_months, alpha : landmark of the estimates, one minus the confidence level.

    Returns
    -------
    OutcomeResult
        Curves per (analysis, group), landmark estimates (survival, or incidence
        ``1 - S`` for an incidence endpoint) and, per analysis (``"unadjusted"``: Cox with
        model SE; ``"iptw"``: weighted Cox with robust SE), the hazard ratio of each group
        against the reference; ``skipped`` says why when a needed column is absent.
    """
    result = OutcomeResult(endpoint)
    result.skipped = _missing_column(data, endpoint)
    if result.skipped:
        return result
    outcome = _outcome(weighting.rows(data), endpoint)
    time, event = outcome["time"].to_numpy(float), outcome["cause"].to_numpy(int)
    group, weight = weighting.frame["group"].to_numpy(), weighting.frame["weight"].to_numpy()
    incidence = ENDPOINTS[endpoint].kind == "incidence"
    landmark = float(months_to_days(landmark_months))
    rows = []
    for analysis, w in (("unadjusted", np.ones_like(weight)), ("iptw", weight)):
        for name in weighting.groups:
            part = group == name
            curve = weighted_km(time[part], event[part], w[part])
            result.curves[(analysis, name)] = curve
            value = curve_at(curve, landmark)
            rows.append({"endpoint": endpoint, "analysis": analysis, "group": name,
                         "n": int(part.sum()), "weighted_n": float(w[part].sum()),
                         "events": int(event[part].sum()),
                         "weighted_events": float((w[part] * event[part]).sum()),
                         "landmark_months": landmark_months,
                         "quantity": "incidence" if incidence else "survival",
                         "estimate": 1 - value if incidence else value})
    result.landmarks = pd.DataFrame(rows)
    result.hazard_ratios = {
        "unadjusted": group_hazard_ratios(time, event, group, weighting.groups, None, alpha),
        "iptw": group_hazard_ratios(time, event, group, weighting.groups, weight, alpha,
                                    robust=True),
    }
    return result


HAZARD_RATIO_COLUMNS = ("analysis", "group", "hr", "lower", "upper")
FIT_COLUMNS = ("p_value", "se_log_hr", "n", "events")


def iptw_outcomes(data: pd.DataFrame, weighting: Weighting, endpoints=IPTW_ENDPOINTS,
                  landmark_months: float = 24.0, alpha: float = 0.05) -> dict:
    """:func:`analyse_endpoint` for each endpoint, with tidy tables.

    Returns
    -------
    dict
        ``results``: endpoint → OutcomeResult; ``landmarks``: tidy landmark estimates
        (endpoint, analysis, group, n, weighted_n, events, weighted_events, quantity,
        estimate; empty when no endpoint could be analysed); ``hazard_ratios``: tidy hazard
        ratios (endpoint, analysis, group compared with the reference, hr, lower, upper,
        alpha, p_value, se_log_hr, n, events, reason); ``alpha``: one minus the confidence
        level of the intervals.
    """
    results = {name: analyse_endpoint(data, weighting, name, landmark_months, alpha)
               for name in endpoints}
    landmarks = [r.landmarks for r in results.values() if r.landmarks is not None]
    hazard_ratios = [{"endpoint": name, **{k: getattr(h, k) for k in HAZARD_RATIO_COLUMNS},
                      "alpha": alpha, **{k: getattr(h, k) for k in FIT_COLUMNS},
                      "reason": h.reason or ""}
                     for name, r in results.items() for ratios in r.hazard_ratios.values()
                     for h in ratios]
    return {"results": results,
            "landmarks": pd.concat(landmarks, ignore_index=True) if landmarks
            else pd.DataFrame(),
            "hazard_ratios": pd.DataFrame(hazard_ratios, columns=[
                "endpoint", *HAZARD_RATIO_COLUMNS, "alpha", *FIT_COLUMNS, "reason"]),
            "alpha": alpha}


def _interval(h) -> str:
    """``1.23 (0.45–3.21)``, or why not."""
    return (f"not estimable: {h.reason}" if math.isnan(h.hr)
            else f"{h.hr:.2f} ({h.lower:.2f}–{h.upper:.2f})")


def hazard_ratio_display(outcomes: dict, groups: list) -> pd.DataFrame:
    """Readable table of the hazard ratios, one line per endpoint, analysis and group (the
    header names the outcomes' confidence level)."""
    rows = []
    for name, result in outcomes["results"].items():
        label = ENDPOINTS[name].label
        if result.skipped:
            rows.append([label, "", "", "", "not analysed: " + result.skipped, "", 0])
            continue
        rows.append([label, "", "", "", "", "", 0])
        for ratios in result.hazard_ratios.values():
            for h in ratios:
                rows.append([h.analysis, h.n, h.events, f"{h.group} vs {groups[0]}",
                             _interval(h), format_p(h.p_value), 1])
    return pd.DataFrame(rows, columns=["Analysis", "n", "Events", "Comparison",
                                       f"HR ({ci_label(outcomes['alpha'])})", "P value",
                                       "indent"])


# ---------------------------------------------------------------------------------------------
# Figures (drawn inside the book's figure style)
# ---------------------------------------------------------------------------------------------
def _step(ax, curve: pd.DataFrame, incidence: bool, colour: str, label: str) -> None:
    months = to_months(curve["time"].to_numpy())
    value = curve["survival"].to_numpy()
    if incidence:
        value = 1 - value
    ax.step(months, value, where="post", color=colour, lw=1.8, label=label)
    censored = curve["censored"].to_numpy() > 0
    ax.plot(months[censored], value[censored], ls="none", marker="|", ms=7, mew=1.2,
            color=colour)


def _ratios_text(ratios: list, reference, robust: bool) -> str:
    """The hazard ratios of one analysis, a line per group, for a panel's corner."""
    lines = [f"{plot_text(h.group)} vs {plot_text(reference)}: "
             + ("not estimable" if math.isnan(h.hr) else
                f"HR {h.hr:.2f} ({h.lower:.2f}–{h.upper:.2f}), {p_phrase(h.p_value)}")
             for h in ratios]
    return "\n".join([*lines, "robust SE" if robust else "model SE"])


def _risk_table(fig, cell, ax, time, group, weights, groups, colours, ticks,
                weighted: bool) -> None:
    """Numbers (or weighted numbers) at risk under a panel, hidden where the patients behind
    them are too few (the disclosure in force)."""
    risk = fig.add_subplot(cell, sharex=ax)
    days = months_to_days(ticks)
    for row, name in enumerate(groups):
        part = group == name
        counts = weighted_at_risk(time[part], weights[part], days)
        patients = weighted_at_risk(time[part], np.ones(part.sum()), days)
        for x, count, n in zip(ticks, counts, patients, strict=True):
            shown = (f"{count:.1f}" if weighted and not is_small(round(n))
                     else count_text(round(n)))
            risk.text(x, len(groups) - 1 - row, shown, ha="center", va="center",
                      fontsize=FONT - 1, color=colours[name])
    risk.set_yticks(range(len(groups)), [plot_text(g) for g in reversed(groups)], fontsize=FONT - 1)
    risk.set_ylim(-0.6, len(groups) - 0.4)
    risk.set_title("Weighted number at risk" if weighted else "Number at risk", loc="left",
                   fontsize=FONT - 1)
    risk.tick_params(axis="x", labelbottom=False, length=0)
    risk.tick_params(axis="y", length=0, pad=16)
    for side in ("left", "bottom", "top", "right"):
        risk.spines[side].set_visible(False)


def iptw_figure(result: OutcomeResult, weighting: Weighting, data: pd.DataFrame, title: str,
                landmark_months: float | None = None) -> plt.Figure:
    """Unadjusted (top) and IPTW-weighted (bottom) Kaplan–Meier curves of one endpoint, one
    above the other in a panel as wide as the book's others (legible on a phone).

    Each shows the curves of every group, censoring ticks, the hazard ratios of its analysis
    and, under the axis, the number (top) or weighted number (bottom) at risk. Drawn inside
    :func:`bridge_hsct.render.figures.figure_style`.
    """
    groups = weighting.groups
    colours = group_colours(groups)
    incidence = ENDPOINTS[result.endpoint].kind == "incidence"
    time = _outcome(weighting.rows(data), result.endpoint)["time"].to_numpy(float)
    group = weighting.frame["group"].to_numpy()
    horizon = float(to_months(time.max()))
    step = 12 if horizon > 36 else 6 if horizon > 12 else 3
    ticks = np.arange(0, horizon + 1e-9, step)
    risk = 0.3 + 0.3 * len(groups)
    with figure_style():
        fig = plt.figure(figsize=(WIDTH, 2 * (3.4 + risk) + 2.0))
        grid = fig.add_gridspec(4, 1, height_ratios=[3.4, risk, 3.4, risk], hspace=0.75)
        sides = [("unadjusted", "unadjusted", np.ones(len(time))),
                 ("iptw", "IPTW-weighted", weighting.frame["weight"].to_numpy())]
        for row, (analysis, heading, weights) in enumerate(sides):
            ax = fig.add_subplot(grid[2 * row, 0])
            for name in groups:
                _step(ax, result.curves[(analysis, name)], incidence, colours[name],
                      plot_text(name))
            if landmark_months:
                ax.axvline(landmark_months, color="#999999", lw=0.8, ls=":")
            ax.set(xlim=(0, horizon * 1.02), ylim=(-0.02, 1.04), xticks=ticks,
                   xlabel="Months since HSCT",
                   ylabel=("Cumulative incidence" if incidence
                           else ENDPOINTS[result.endpoint].label))
            ax.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0, decimals=0))
            # the hazard ratios sit between the title and the plot, where no curve can be
            ratios = _ratios_text(result.hazard_ratios[analysis], groups[0],
                                  analysis == "iptw")
            ax.text(0, 1.02, ratios, transform=ax.transAxes, ha="left", va="bottom",
                    fontsize=FONT - 2)
            ax.set_title(f"{title}: {heading}", loc="left", fontweight="bold", fontsize=FONT,
                         pad=6 + 1.35 * (FONT - 2) * (ratios.count("\n") + 1))
            ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=len(groups),
                      frameon=False, fontsize=FONT - 1)
            _risk_table(fig, grid[2 * row + 1, 0], ax, time, group, weights, groups, colours,
                        ticks, analysis == "iptw")
        fig.subplots_adjust(left=0.3, right=0.97, top=0.93, bottom=0.03)
    return fig


def love_plot(balance: pd.DataFrame, groups: list) -> plt.Figure:
    """Absolute standardised mean differences before (open) and after (filled) weighting, per
    covariate and per non-reference group against the reference; drawn inside
    :func:`bridge_hsct.render.figures.figure_style`."""
    terms = balance.drop_duplicates("term")
    labels = [f"{lab}{' *' if m else ''}" for lab, m in
              zip(terms["label"], terms["in_model"], strict=True)]
    position = dict(zip(terms["term"], np.arange(len(terms))[::-1], strict=True))
    compared = groups[1:]
    colours = group_colours(groups)
    offsets = np.linspace(-0.25, 0.25, len(compared)) if len(compared) > 1 else [0.0]
    before_all = balance["smd_before"].abs().to_numpy()
    after_all = balance["smd_after"].abs().to_numpy()
    with figure_style():
        fig, ax = plt.subplots(figsize=(7.2, 1.4 + 0.24 * len(terms) * max(1, len(compared)
                                                                           / 2)))
        for offset, name in zip(offsets, compared, strict=True):
            part = balance[balance["group"] == name]
            y = part["term"].map(position).to_numpy(float) + offset
            before = part["smd_before"].abs().to_numpy()
            after = part["smd_after"].abs().to_numpy()
            ax.hlines(y, np.fmin(before, after), np.fmax(before, after), color="#cccccc",
                      lw=1)
            ax.plot(before, y, "o", mfc="white", mec=colours[name], ms=5)
            ax.plot(after, y, "o", color=colours[name], ms=5,
                    label=f"{plot_text(name)} vs {plot_text(groups[0])}")
        ax.plot([], [], "o", mfc="white", mec="#555555", label="before weighting (open)")
        ax.axvline(SMD_THRESHOLD, color="#D55E00", ls="--", lw=1,
                   label=f"|SMD| = {SMD_THRESHOLD:g}")
        ax.set_yticks(np.arange(len(terms))[::-1], labels, fontsize=8)
        ax.set_xlabel("Absolute standardised mean difference")
        largest = np.nanmax(np.r_[before_all, after_all, 0.0])
        ax.set_xlim(0, max(0.5, largest * 1.05))
        ax.set_ylim(-0.8, len(terms) - 0.2)
        ax.legend(loc="lower right", fontsize=8)
        ax.set_title("Covariate balance (* in the propensity model)", loc="left",
                     fontweight="bold", fontsize=10)
        fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------------
# Text: every judgement follows the computed numbers
# ---------------------------------------------------------------------------------------------
def _listed(items) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    items = list(items)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _effective(row) -> str:
    """A group's effective sample size, or its hidden count when the group is small."""
    return count_text(row["n"]) if is_small(row["n"]) else f"{row['effective_n']:.1f}"


def _model_sentence(model: PropensityModel) -> str:
    used = ", ".join(t.label for t in model.terms) or "no covariate"
    kind = "logistic" if len(model.groups) == 2 else "multinomial logistic"
    skipped = (" Left out: " + ", ".join(f"{v} ({why})" for v, why in model.skipped.items())
               + "." if model.skipped else "")
    imputed = (" Missing values replaced by the mean: " + ", ".join(
        f"{k} ({count_text(n)})" for k, n in model.fit.imputed.items()) + "."
        if model.fit.imputed else "")
    penalty = (f"a ridge penalty λ = {model.fit.penalty:g} on the standardised coefficients"
               if model.fit.penalty > 0 else "no penalty (maximum likelihood)")
    return (f"**Model.** A {kind} model gave each patient a probability of belonging to "
            f"each of the {len(model.groups)} groups (log-odds against "
            f"{markdown_text(model.reference)}) from {len(model.terms)} "
            f"term{'s' if len(model.terms) != 1 else ''} ({used}) with {penalty}."
            f"{skipped}{imputed}")


#: A stabilised weight's group mean is called close to 1 within this distance.
MEAN_WEIGHT_TOLERANCE = 0.1


def _weights_sentence(summary: pd.DataFrame) -> str:
    groups = "; ".join(
        f"{markdown_text(r['group'])}: {count_text(r['n'])} patients, propensity of their "
        f"own group {r['propensity_min']:.2f}–{r['propensity_max']:.2f}, weights "
        f"{r['weight_min']:.2f}–{r['weight_max']:.2f} with mean {r['weight_mean']:.2f}, "
        f"effective sample size {_effective(r)}" for _, r in summary.iterrows())
    far = summary[(summary["weight_mean"] - 1).abs() > MEAN_WEIGHT_TOLERANCE]
    if far.empty:
        verdict = (f"The mean weight is within {MEAN_WEIGHT_TOLERANCE:g} of 1 in every group, "
                   "as stabilised weights should be when the model fits and the groups "
                   "overlap.")
    else:
        verdict = (f"The mean weight is more than {MEAN_WEIGHT_TOLERANCE:g} away from 1 in "
                   f"{_listed([markdown_text(g) for g in far['group']])}: there the "
                   "comparison leans on a few heavily weighted patients.")
    return f"**Weights.** {groups}. {verdict}"


def _balance_sentence(balance: pd.DataFrame, reference) -> str:
    def over(frame, column):
        return int((frame[column].abs() > SMD_THRESHOLD).sum())

    model_terms = balance[balance["in_model"]]
    whole = (f" Over all {balance['term'].nunique()} terms of Table 1 and every comparison, "
             f"{over(balance, 'smd_before')} of {len(balance)} exceeded {SMD_THRESHOLD:g} "
             f"before weighting and {over(balance, 'smd_after')} after.")
    if model_terms.empty:
        return ("**Balance.** The model has no covariate term, so weighting cannot change "
                "the balance." + whole)
    left = model_terms[model_terms["smd_after"].abs() > SMD_THRESHOLD]
    counts = (f"Of the {len(model_terms)} comparisons of the model's terms with "
              f"{markdown_text(reference)} (one per term and group), "
              f"{over(model_terms, 'smd_before')} had an absolute standardised mean "
              f"difference above {SMD_THRESHOLD:g} before weighting and {len(left)} after.")
    if left.empty:
        verdict = (f"Balance on the model's terms is achieved: every |SMD| is at most "
                   f"{SMD_THRESHOLD:g} after weighting.")
    else:
        worst = left.loc[left["smd_after"].abs().idxmax()]
        verdict = (f"Balance on the model's terms is not achieved; the largest imbalance "
                   f"left is {worst['label']} ({markdown_text(worst['group'])} vs "
                   f"{markdown_text(reference)}, SMD {worst['smd_after']:+.2f}).")
    return f"**Balance.** {counts} {verdict}{whole}"


def weighting_text(weighting: Weighting, balance: pd.DataFrame) -> str:
    """Computed paragraphs about the model, the weights, their truncation and the balance
    (MyST Markdown)."""
    trim = weighting.trimming
    truncation = (
        f"**Truncation.** Weights outside the {_ordinal(trim.lower_percentile)} and "
        f"{_ordinal(trim.upper_percentile)} percentiles ({trim.lower_bound:.2f} and "
        f"{trim.upper_bound:.2f}) were set to those bounds: {count_text(trim.n_trimmed)} "
        f"weight{'s' if trim.n_trimmed != 1 else ''} changed ({count_text(trim.n_below)} "
        f"raised, {count_text(trim.n_above)} lowered).")
    return "\n\n".join([_model_sentence(weighting.model),
                        _weights_sentence(weighting.summary()), truncation,
                        _balance_sentence(balance, weighting.model.reference)])


def _per_term_sentence(smallest, terms: int, penalty: float, what: str) -> str:
    """Patients of the smallest group per term of a model, against the rule of thumb."""
    ratio = smallest["n"] / terms
    shown = (f"fewer than {min_cell_count() / terms:.1f}" if is_small(smallest["n"])
             else f"{ratio:.1f}")  # the ratio would give the hidden count away
    if ratio >= PATIENTS_PER_TERM:
        return (f"{what} has {terms} terms, {shown} patients of the smallest group per term: "
                f"at least the {PATIENTS_PER_TERM} usually asked for, so over-fitting it is "
                "not a concern.")
    tempered = " (the ridge penalty tempers it)" if penalty > 0 else ""
    return (f"{what} has {terms} terms, {shown} patients of the smallest group per term: "
            f"fewer than the {PATIENTS_PER_TERM} usually asked for, so it may over-fit"
            f"{tempered}.")


def _events_sentence(outcomes: dict, parameters: int) -> str:
    """Events per hazard ratio of the weighted Cox models, against the rule of thumb."""
    ratios = outcomes["hazard_ratios"]
    weighted = ratios[ratios["analysis"] == WEIGHTED_ROBUST]
    events = weighted.groupby("endpoint", sort=False)["events"].max()
    few = [in_sentence(ENDPOINTS[name].label) for name, n in events.items()
           if n < EVENTS_PER_HAZARD_RATIO * parameters]
    if events.empty:
        return ""
    if few:
        return (f" The Cox models of {_listed(few)} have fewer than "
                f"{EVENTS_PER_HAZARD_RATIO} events per hazard ratio estimated: their "
                "estimates are unstable and their intervals approximate.")
    return (f" Every Cox model has at least {EVENTS_PER_HAZARD_RATIO} events per hazard "
            "ratio estimated.")


def _intervals_sentence(outcomes: dict, reference) -> str:
    """How wide the weighted intervals are: the widest, and how many span both a halving and
    a doubling of the hazard."""
    ratios = outcomes["hazard_ratios"]
    weighted = ratios[ratios["analysis"] == WEIGHTED_ROBUST]
    estimated = weighted[weighted["hr"].notna()]
    missing = len(weighted) - len(estimated)
    text = (f" {missing} weighted hazard ratio{'s' if missing != 1 else ''} could not be "
            "estimated; the table says why." if missing else "")
    if estimated.empty:
        return text
    widest = estimated.loc[(np.log(estimated["upper"])
                            - np.log(estimated["lower"])).idxmax()]
    level = ci_label(outcomes["alpha"])
    text += (f" The widest weighted {level}, {markdown_text(widest['group'])} vs "
             f"{markdown_text(reference)} for "
             f"{in_sentence(ENDPOINTS[widest['endpoint']].label)}, runs from "
             f"{widest['lower']:.2f} to {widest['upper']:.2f}.")
    spanning = int(((estimated["lower"] < 0.5) & (estimated["upper"] > 2)).sum())
    if spanning:
        text += (f" {spanning} of the {len(estimated)} weighted intervals include both a "
                 "halving and a doubling of the hazard: there the data are compatible with "
                 "large differences in either direction, and no significant difference does "
                 "not mean the groups are alike.")
    else:
        text += (f" None of the {len(estimated)} weighted intervals includes both a halving "
                 "and a doubling of the hazard.")
    return text


def limits_text(weighting: Weighting, outcomes: dict, all_terms: int) -> str:
    """Computed paragraph on the size of the cohort against what the analysis asks of it.

    Parameters
    ----------
    weighting, outcomes : outputs of :func:`iptw` and :func:`iptw_outcomes`.
    all_terms : terms of a model of every Table 1 characteristic (the paper's "all
        covariates"), coded for a regression.
    """
    summary = weighting.summary()
    smallest = summary.loc[summary["n"].idxmin()]
    group = markdown_text(smallest["group"])
    terms, penalty = len(weighting.model.terms), weighting.model.fit.penalty
    text = (f"This cohort has {count_text(summary['n'].sum())} patients in the "
            f"{len(summary)} groups analysed; the smallest, {group}, has "
            f"{count_text(smallest['n'])}. ")
    if terms:
        text += _per_term_sentence(smallest, terms, penalty, "The propensity model")
    else:
        text += ("The propensity model has no covariate term, so every weight is 1 and the "
                 "weighted analysis repeats the unadjusted one.")
    if all_terms:
        text += " " + _per_term_sentence(smallest, all_terms, penalty,
                                         "A model of every Table 1 characteristic (the "
                                         "paper's \"all covariates\")")
    effective = ", ".join(f"{markdown_text(r['group'])} {_effective(r)}"
                          for _, r in summary.iterrows())
    text += f" After weighting the groups count as {effective} patients (effective sample size)."
    text += _events_sentence(outcomes, len(weighting.groups) - 1)
    return text + _intervals_sentence(outcomes, weighting.model.reference)


def _ordinal(x: float) -> str:
    if not float(x).is_integer():
        return f"{x:g}th"
    n = int(x)
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def events_text(outcomes: dict) -> str:
    """Computed bullets: how many events each group contributes to each endpoint."""
    lines = []
    for name, result in outcomes["results"].items():
        label = ENDPOINTS[name].label
        if result.skipped:
            lines.append(f"- {label}: not analysed, {result.skipped}.")
            continue
        rows = result.landmarks[result.landmarks["analysis"] == "unadjusted"]
        parts = ", ".join(f"{count_text(r['events'])} of {count_text(r['n'])} in "
                          f"{markdown_text(r['group'])}" for _, r in rows.iterrows())
        lines.append(f"- {label}: {parts}.")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Sensitivity of the result to the analyst's choices
# ---------------------------------------------------------------------------------------------
SENSITIVITY_PENALTIES = (0.0, DEFAULT_PENALTY, 5.0)
SENSITIVITY_TRIMS = ((0.0, 100.0), DEFAULT_TRIM_PERCENTILES)
SENSITIVITY_COLUMNS = ["penalty", "trim_lower", "trim_upper", "endpoint", "group", "hr",
                       "lower", "upper", "alpha", "p_value", "smallest_group_n",
                       "smallest_effective_n", "max_abs_smd_after", "reason"]


def weighting_sensitivity(data: pd.DataFrame, group_col: str, groups: list,
                          endpoints=IPTW_ENDPOINTS, confounders=DEFAULT_CONFOUNDERS,
                          penalties=SENSITIVITY_PENALTIES, trims=SENSITIVITY_TRIMS,
                          alpha: float = 0.05) -> pd.DataFrame:
    """IPTW hazard ratios under other penalties and truncations of the same model.

    Returns
    -------
    pandas.DataFrame
        One row per (penalty, truncation, endpoint, non-reference group): hr, lower, upper,
        alpha (one minus the confidence level of the interval), p_value (robust), the
        size and the effective sample size of the smallest group, the largest absolute SMD
        of the model's terms after weighting, and ``reason`` when the estimate or the
        weights could not be formed (e.g. propensities of exactly 0 or 1 without a penalty:
        the groups are separated).
    """
    rows = []
    analysed = [name for name in endpoints if not _missing_column(data, name)]
    for penalty in penalties:
        for trim in trims:
            base = {"penalty": penalty, "trim_lower": trim[0], "trim_upper": trim[1],
                    "alpha": alpha}
            try:
                weighting = iptw(data, group_col, groups, confounders, penalty, trim)
            except (ValueError, np.linalg.LinAlgError) as error:
                rows.extend({**base, "endpoint": name, "group": group, "reason": str(error)}
                            for name in analysed for group in groups[1:])
                continue
            if not weighting.model.fit.converged:
                rows.extend({**base, "endpoint": name, "group": group,
                             "reason": "the propensity model did not converge"}
                            for name in analysed for group in groups[1:])
                continue
            balance = balance_table(data, weighting, confounders)
            summary = weighting.summary()
            extra = {"smallest_group_n": int(summary["n"].min()),
                     "smallest_effective_n": float(summary.loc[summary["n"].idxmin(),
                                                                "effective_n"]),
                     "max_abs_smd_after": float(balance["smd_after"].abs().max())}
            for name in analysed:
                outcome = _outcome(weighting.rows(data), name)
                for h in group_hazard_ratios(outcome["time"], outcome["cause"],
                                             weighting.frame["group"], groups,
                                             weighting.frame["weight"], alpha):
                    rows.append({**base, "endpoint": name, "group": h.group, "hr": h.hr,
                                 "lower": h.lower, "upper": h.upper, "p_value": h.p_value,
                                 **extra, "reason": h.reason or ""})
    return pd.DataFrame(rows, columns=SENSITIVITY_COLUMNS)


def sensitivity_display(sensitivity: pd.DataFrame) -> pd.DataFrame:
    """Readable sensitivity table: one header per endpoint, one line per choice and group
    (the header names the level of the table's ``alpha``)."""
    rows = []
    for name, part in sensitivity.groupby("endpoint", sort=False):
        rows.append([ENDPOINTS[name].label, "", "", "", "", "", 0])
        for _, r in part.iterrows():
            choice = (f"λ = {r['penalty']:g}, "
                      + ("no truncation" if (r["trim_lower"], r["trim_upper"]) == (0, 100)
                         else f"truncated at {r['trim_lower']:g}–{r['trim_upper']:g}th pct"))
            if isinstance(r["reason"], str) and r["reason"] and np.isnan(r["hr"]):
                rows.append([choice, str(r["group"]), "not estimable: " + r["reason"], "",
                             "", "", 1])
                continue
            rows.append([choice, str(r["group"]),
                         f"{r['hr']:.2f} ({r['lower']:.2f}–{r['upper']:.2f})",
                         format_p(r["p_value"]),
                         _effective({"n": r["smallest_group_n"],
                                     "effective_n": r["smallest_effective_n"]}),
                         f"{r['max_abs_smd_after']:.2f}", 1])
    ci = ci_label(result_alpha(sensitivity)) if len(sensitivity) else "CI"
    return pd.DataFrame(rows, columns=["Weighting", "Group vs reference", f"HR ({ci}), robust",
                                       "P value", "Effective n of the smallest group",
                                       "Largest |SMD| of model terms", "indent"])


# ---------------------------------------------------------------------------------------------
# The chapter
# ---------------------------------------------------------------------------------------------
FIGURE_LABELS = dict(zip(IPTW_ENDPOINTS, "ABCD", strict=True))


def _disclosed(part):
    """A part of :class:`IptwReport` computed under the report's disclosure."""
    @functools.wraps(part)
    def shown(report: IptwReport):
        with report.disclosure.applied():
            return part(report)
    return shown


def _unless_skipped(part):
    """A part of :class:`IptwReport` that shows nothing when the analysis was not run (None:
    an empty Markdown would be shown as its text repr), under the report's disclosure."""
    @functools.wraps(part)
    def shown(report: IptwReport):
        return None if report.skipped else part(report)
    return _disclosed(shown)


@dataclass
class IptwReport:
    """Everything the IPTW chapter shows, computed and saved by :func:`iptw_report`.

    Each method returns what one notebook cell displays: a great-tables table, or Markdown
    (text, figures), with counts under the chapter's disclosure. When the analysis was not
    run (``skipped``), :meth:`describe_weights` says why in a sentence and every other part
    is None (nothing shown).
    """

    groups: list
    landmark_months: float
    alpha: float
    group_label: str = "group"
    disclosure: Disclosure = NO_SUPPRESSION
    skipped: str | None = None
    left_out: dict = field(default_factory=dict)
    weighting: Weighting | None = None
    balance: pd.DataFrame | None = None
    outcomes: dict | None = None
    sensitivity: pd.DataFrame | None = None
    all_terms: int = 0
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

    @_disclosed
    def describe_weights(self) -> Markdown:
        """The model, the weights, their truncation and the balance, in words; or why the
        analysis was not run."""
        if self.skipped:
            return Markdown(f":::{{note}} IPTW analysis not run\n{self.skipped}.\n:::\n")
        unknown = f"{self.unknown}\n\n" if self.unknown else ""
        return Markdown(unknown + self._left_out_sentence()
                        + weighting_text(self.weighting, self.balance))

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
                            table_id="iptw-propensity-model")

    @_unless_skipped
    def weights_table(self):
        """Propensities and weights per group, with the truncation."""
        summary = self.weighting.summary()
        frame = pd.DataFrame({
            "Group": summary["group"].astype(str), "n": summary["n"],
            "Propensity, range": [f"{a:.2f}–{b:.2f}" for a, b in
                                  zip(summary["propensity_min"], summary["propensity_max"],
                                      strict=True)],
            "Weight, range": [f"{a:.2f}–{b:.2f}" for a, b in
                              zip(summary["weight_min"], summary["weight_max"], strict=True)],
            "Mean weight": summary["weight_mean"].map(lambda v: f"{v:.2f}"),
            "Sum of weights": [count_text(r["n"]) if is_small(r["n"])
                               else f"{r['weight_sum']:.1f}" for _, r in summary.iterrows()],
            "Effective n": [_effective(r) for _, r in summary.iterrows()],
            "Truncated": summary["n_trimmed"],
        })
        trim = self.weighting.trimming
        return render_table(frame, title="Stabilised weights by group",
                            notes=["Propensity: the modelled probability of the patient's "
                                   "own group; weight: the group's share over it.",
                                   f"Truncated at the {_ordinal(trim.lower_percentile)} "
                                   f"({trim.lower_bound:.3f}) and "
                                   f"{_ordinal(trim.upper_percentile)} "
                                   f"({trim.upper_bound:.3f}) percentiles of all weights.",
                                   "Effective n: Kish's (Σw)² / Σw²."],
                            stub="Group", test_col=None, indent_col=None,
                            table_id="iptw-weights")

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
                            stub="Covariate", test_col=None, table_id="iptw-balance")

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
        return Markdown(limits_text(self.weighting, self.outcomes, self.all_terms))

    @_unless_skipped
    def describe_events(self) -> Markdown:
        """Events per group and endpoint, as bullets."""
        return Markdown(events_text(self.outcomes))

    def _caption(self, name: str, result: OutcomeResult, label: str) -> str:
        hrs = "; ".join(f"{markdown_text(h.group)} vs {markdown_text(self.reference)}: "
                        + ("not estimable, " + h.reason if math.isnan(h.hr) else
                           f"HR {h.hr:.2f} ({h.lower:.2f}–{h.upper:.2f}), "
                           f"{p_phrase(h.p_value)}")
                        for h in result.hazard_ratios["iptw"])
        incidence = ENDPOINTS[name].kind == "incidence"
        how = ("1 − Kaplan–Meier incidence, relapse and death before it censored"
               if incidence else "Kaplan–Meier")
        names = _listed([markdown_text(g) for g in self.groups])
        return (f"**{label}.** {ENDPOINTS[name].label} of {names}, {how}: without weights "
                "(left) and with the stabilised, truncated IPTW weights (right). Ticks: "
                "censored patients; under each axis the number, or weighted number, at risk. "
                f"Weighted Cox model, robust SE, {ci_label(self.alpha)}: {hrs}.")

    @_unless_skipped
    def curve_figures(self) -> Markdown:
        """Supplementary Figure 6: unadjusted and weighted curves of each endpoint."""
        parts = []
        for name, result in self.outcomes["results"].items():
            letter = FIGURE_LABELS.get(name, "")
            label = f"Supplementary Figure 6{letter}"
            anchor = f"figure-s6{letter.lower()}"
            endpoint = ENDPOINTS[name].label
            if result.skipped:
                parts.append(f"({anchor})=\n:::{{note}} {label} is not drawn\n{endpoint}: "
                             f"{result.skipped}.\n:::\n")
                continue
            kind = "incidence" if ENDPOINTS[name].kind == "incidence" else "survival"
            alt = (f"Two panels of {kind} curves of {in_sentence(endpoint)} by group, "
                   "unweighted and IPTW-weighted, against months since transplant")
            parts.append(figure_markdown(self.figures[name], anchor, alt,
                                         self._caption(name, result, label), label))
        return Markdown("\n".join(parts))

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
                            stub="Analysis", test_col=None, table_id="iptw-hazard-ratios")

    @_unless_skipped
    def landmark_table(self):
        """Estimates at the landmark without and with weighting."""
        when = f"{self.landmark_months:g} months"
        rows = []
        for name, part in self.outcomes["landmarks"].groupby("endpoint", sort=False):
            rows.append([f"{ENDPOINTS[name].label} ({part['quantity'].iloc[0]})",
                         "", "", "", "", 0])
            for group in self.groups:
                plain = part[(part["group"] == group) & (part["analysis"] == "unadjusted")]
                weighted = part[(part["group"] == group) & (part["analysis"] == "iptw")]
                n = int(plain["n"].iloc[0])
                rows.append([str(group), n, count_text(n) if is_small(n)
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
                            stub="Endpoint", test_col=None, table_id="iptw-landmarks")

    @_unless_skipped
    def sensitivity_table(self):
        """Weighted hazard ratios under other penalties and truncations."""
        return render_table(sensitivity_display(self.sensitivity),
                            title="How much the answer depends on the weighting choices",
                            subtitle=f"IPTW Cox hazard ratio of each group vs "
                                     f"{self.reference}, robust SE",
                            notes=["λ: ridge penalty of the propensity model (0 = maximum "
                                   "likelihood). The main analysis is λ = "
                                   f"{DEFAULT_PENALTY:g}, truncated at the "
                                   f"{_ordinal(DEFAULT_TRIM_PERCENTILES[0])} and "
                                   f"{_ordinal(DEFAULT_TRIM_PERCENTILES[1])} percentiles."],
                            stub="Weighting", test_col=None, table_id="iptw-sensitivity")

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
}


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
                        chapter.disclosure, skipped, left_out, unknown=unknown)
    if skipped:
        return report
    report.weighting, report.skipped = _weigh(chapter, groups, confounders, penalty,
                                              trim_percentiles)
    if report.skipped:
        return report
    with chapter.disclosure.applied():
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
    k = int(unknown.sum())
    sentence = (f"{count_text(k)} patient{'s' if k != 1 else ''} with a blank status for one "
                "of the endpoints below (unknown, not \"no event\") are left out of the whole "
                "analysis, so that the weights and every outcome concern the same patients.")
    return replace(chapter, data=chapter.data[~unknown]), sentence


def _compute_and_save(report: IptwReport, chapter, confounders) -> None:
    data, weighting = chapter.data, report.weighting
    report.balance = balance_table(data, weighting)
    table1 = [r.variable for r in TABLE1_ROWS if r.variable != "followup_months"]
    report.all_terms = len(covariate_terms(weighting.rows(data), table1, "reference")[1])
    report.outcomes = iptw_outcomes(data, weighting, IPTW_ENDPOINTS, chapter.landmark_months,
                                    chapter.alpha)
    report.sensitivity = weighting_sensitivity(data, chapter.group_col, report.groups,
                                               confounders=confounders, alpha=chapter.alpha)
    for name, result in report.outcomes["results"].items():
        if result.skipped:
            continue
        title = f"{FIGURE_LABELS.get(name, '')}  {ENDPOINTS[name].label}".strip()
        figure = iptw_figure(result, weighting, data, title, chapter.landmark_months)
        report.figures[name] = save_figure(figure, chapter,
                                           f"figure_s6{FIGURE_LABELS[name]}".lower())
        plt.close(figure)
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
    }
    for name, frame in tables.items():
        if len(frame):  # an empty table would be a download of one byte
            report.csv[name] = (save_table(frame, chapter, name), CSV_CONTENTS[name])

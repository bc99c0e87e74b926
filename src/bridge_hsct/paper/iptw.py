"""The IPTW chapter: the paper's sensitivity analysis by inverse probability of treatment
weighting, its tables, figures and words.

The paper re-compared the groups after weighting each patient by the inverse of the
probability of receiving the treatment they received, given their baseline characteristics
(its Supplementary Fig. 6: OS, PFS, GRFS and grade III–IV aGVHD). The statistics are those of
:mod:`bridge_hsct.stats.weighting`; this module holds the paper's choices and the chapter:

1. **Propensity model** (:func:`propensity_model`): belonging to the non-reference group (the
   second group in display order, CAR-T in the paper) rather than the reference group, on a
   small pre-declared set of confounders (:data:`DEFAULT_CONFOUNDERS`) among those present in
   the data, coded as numeric terms from the data dictionary (:func:`covariate_terms`), with a
   ridge penalty λ = 1 (:data:`DEFAULT_PENALTY`). With 36 patients, 9 of them in one group,
   an unpenalised model on the paper's "all covariates" separates the groups perfectly (graft
   source alone nearly does) and the maximum-likelihood propensities run to 0 and 1; the
   penalty keeps them finite at the cost of a little residual imbalance, which the balance
   table shows.
2. **Weights** (:func:`iptw`): stabilised, truncated at the 1st and 99th percentiles of all
   weights (:data:`DEFAULT_TRIM_PERCENTILES`; no patient is dropped).
3. **Balance** (:func:`balance_table`): standardised mean differences of every Table 1
   covariate (each level of a categorical one) before and after weighting.
4. **Outcomes** (:func:`iptw_outcomes`): Kaplan–Meier curves without and with weights and
   the hazard ratio of the non-reference group from an unweighted Cox model and from a
   weighted one with robust standard errors. For grade III–IV aGVHD, relapse and death
   before it are censored (the paper's Kaplan–Meier convention), so its weighted curve is a
   1 − Kaplan–Meier incidence and its hazard ratio cause-specific.
5. **Sensitivity** (:func:`weighting_sensitivity`): the weighted hazard ratios under other
   penalties and truncations.

:func:`iptw_report` computes and saves everything; the chapter's notebook shows the parts of
the :class:`IptwReport` it returns.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from IPython.display import Markdown  # noqa: E402
from scipy import stats  # noqa: E402

from ..cohort.endpoints import ENDPOINTS, as_censored, derive  # noqa: E402
from ..cohort.schema import BY_NAME  # noqa: E402
from ..render.disclosure import count_text, is_small, min_cell_count  # noqa: E402
from ..render.escaping import markdown_code, markdown_text, plot_text  # noqa: E402
from ..render.figures import group_colours, save_figure  # noqa: E402
from ..render.formatting import ci_label, format_p, result_alpha  # noqa: E402
from ..render.tables import render_table, save_table  # noqa: E402
from ..stats import weighting as weighting_stats  # noqa: E402
from ..stats.survival import cox_univariate, months_to_days, to_months  # noqa: E402
from ..stats.weighting import (  # noqa: E402
    HazardRatio,
    PropensityFit,
    Trimming,
    curve_at,
    effective_sample_size,
    stabilised_weights,
    truncate_weights,
    weighted_at_risk,
    weighted_cox,
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
#: Conventional threshold of a meaningful imbalance.
SMD_THRESHOLD = 0.1


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
    reference, treated : the two groups; the model gives P(treated | covariates).
    terms : the model's terms.
    fit : the fitted model (coefficients per SD, penalty, propensities, imputed values).
    skipped : confounders (or terms) left out, with the reason.
    """

    reference: object
    treated: object
    terms: list
    fit: PropensityFit
    skipped: dict = field(default_factory=dict)


def propensity_model(data: pd.DataFrame, group_col: str, groups: list,
                     confounders=DEFAULT_CONFOUNDERS,
                     penalty: float = DEFAULT_PENALTY) -> PropensityModel:
    """Logistic model of belonging to ``groups[1]`` rather than ``groups[0]``.

    Parameters
    ----------
    data : cohort with exactly the two groups in `group_col`.
    group_col, groups : the two groups, reference first.
    confounders : candidate covariates, coded by :func:`covariate_terms` (categorical ones
        as level indicators, ordinal ones as ranks); those absent or constant are skipped
        (reported).
    penalty : ridge λ on the standardised coefficients
        (:func:`bridge_hsct.stats.weighting.fit_propensity`); 0: maximum likelihood.

    Returns
    -------
    PropensityModel
    """
    if len(groups) != 2:
        raise ValueError(f"IPTW compares two groups; got {len(groups)}: {groups}")
    treated = (data[group_col] == groups[1]).to_numpy(float)
    columns, terms, skipped = covariate_terms(data, confounders, "reference")
    fit = weighting_stats.fit_propensity(columns, treated, penalty)
    skipped.update({name: "constant once missing values are filled" for name in fit.constant})
    kept = [t for t in terms if t.name not in fit.constant]
    return PropensityModel(groups[0], groups[1], kept, fit, skipped)


@dataclass
class Weighting:
    """Everything about the weights of one analysis.

    Attributes
    ----------
    model : the propensity model.
    frame : one row per patient: group, treated (0/1), propensity, raw_weight, weight (after
        truncation), trimmed (bool); indexed like the data.
    trimming : the truncation.
    """

    model: PropensityModel
    frame: pd.DataFrame
    trimming: Trimming

    def summary(self) -> pd.DataFrame:
        """Per group: n, sum, mean, min, max of the weights and the effective sample size."""
        rows = []
        for group in (self.model.reference, self.model.treated):
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
    """Propensity model, stabilised weights and their truncation, in one call."""
    model = propensity_model(data, group_col, groups, confounders, penalty)
    propensity = model.fit.propensity
    treated = (data[group_col] == groups[1]).to_numpy(int)
    raw = stabilised_weights(treated, propensity.to_numpy())
    weight, trimming = truncate_weights(raw, trim_percentiles)
    frame = pd.DataFrame({
        "patient_id": data["patient_id"] if "patient_id" in data else data.index,
        "group": data[group_col], "treated": treated, "propensity": propensity,
        "raw_weight": raw, "weight": weight, "trimmed": raw != weight,
    }, index=data.index)
    return Weighting(model, frame, trimming)


# ---------------------------------------------------------------------------------------------
# Balance
# ---------------------------------------------------------------------------------------------
def balance_table(data: pd.DataFrame, weighting: Weighting, variables=None) -> pd.DataFrame:
    """Standardised mean differences before and after weighting.

    Parameters
    ----------
    data : cohort (as given to :func:`iptw`).
    weighting : output of :func:`iptw`.
    variables : covariates; by default every Table 1 covariate in the data (each level of a
        categorical one).

    Returns
    -------
    pandas.DataFrame
        One row per term: term, variable, label, binary, in_model (a confounder of the
        propensity model), and from :func:`bridge_hsct.stats.weighting.balance`
        mean_reference / mean_treated unweighted and weighted (proportions for 0/1 terms),
        smd_before, smd_after.
    """
    if variables is None:
        variables = [r.variable for r in TABLE1_ROWS if r.variable != "followup_months"]
    columns, terms, _ = covariate_terms(data, variables, "all")
    in_model = {t.variable for t in weighting.model.terms}
    table = weighting_stats.balance(columns, [t.binary for t in terms],
                                    weighting.frame["treated"].to_numpy(),
                                    weighting.frame["weight"].to_numpy())
    table.insert(1, "variable", [t.variable for t in terms])
    table.insert(2, "label", [t.label for t in terms])
    table.insert(3, "binary", [t.binary for t in terms])
    table.insert(4, "in_model", [t.variable in in_model for t in terms])
    return table


def balance_display(balance: pd.DataFrame) -> pd.DataFrame:
    """Readable balance table for :func:`bridge_hsct.render.tables.render_table`
    (stub "Covariate")."""
    def mean(value, binary):
        return f"{100 * value:.1f}%" if binary else f"{value:.2f}"

    def smd(value):
        return "–" if np.isnan(value) else f"{value:+.2f}"

    return pd.DataFrame({
        "Covariate": balance["label"],
        "In model": np.where(balance["in_model"], "yes", ""),
        "Reference, before": [mean(v, b) for v, b in
                              zip(balance["mean_reference"], balance["binary"], strict=True)],
        "Other, before": [mean(v, b) for v, b in
                          zip(balance["mean_treated"], balance["binary"], strict=True)],
        "SMD before": balance["smd_before"].map(smd),
        "Reference, weighted": [mean(v, b) for v, b in zip(
            balance["weighted_mean_reference"], balance["binary"], strict=True)],
        "Other, weighted": [mean(v, b) for v, b in zip(
            balance["weighted_mean_treated"], balance["binary"], strict=True)],
        "SMD after": balance["smd_after"].map(smd),
    })


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
    hazard_ratios: list = field(default_factory=list)
    skipped: str | None = None


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
        ``1 - S`` for an incidence endpoint) and two hazard ratios (unadjusted Cox with model
        SE, IPTW Cox with robust SE); ``skipped`` says why when a needed column is absent.
    """
    result = OutcomeResult(endpoint)
    missing = [c for c in ENDPOINTS[endpoint].requires if c not in data]
    if missing:
        result.skipped = f"the data have no column `{missing[0]}`"
        return result
    outcome = _outcome(data, endpoint)
    time, event = outcome["time"].to_numpy(float), outcome["cause"].to_numpy(int)
    frame = weighting.frame
    treated, weight = frame["treated"].to_numpy(), frame["weight"].to_numpy()
    incidence = ENDPOINTS[endpoint].kind == "incidence"
    landmark = float(months_to_days(landmark_months))
    rows = []
    for analysis, w in (("unadjusted", np.ones_like(weight)), ("iptw", weight)):
        for group, flag in ((weighting.model.reference, 0), (weighting.model.treated, 1)):
            part = treated == flag
            curve = weighted_km(time[part], event[part], w[part])
            result.curves[(analysis, group)] = curve
            value = curve_at(curve, landmark)
            rows.append({"endpoint": endpoint, "analysis": analysis, "group": group,
                         "n": int(part.sum()), "weighted_n": float(w[part].sum()),
                         "events": int(event[part].sum()),
                         "weighted_events": float((w[part] * event[part]).sum()),
                         "landmark_months": landmark_months,
                         "quantity": "incidence" if incidence else "survival",
                         "estimate": 1 - value if incidence else value})
    result.landmarks = pd.DataFrame(rows)
    plain = cox_univariate(time, event, treated.astype(float), alpha)
    result.hazard_ratios = [
        HazardRatio("unadjusted Cox, model SE", plain.hr, plain.lower, plain.upper,
                    plain.p_value, _se_from_interval(plain, alpha), plain.n, plain.events,
                    plain.reason),
        weighted_cox(time, event, treated, weight, alpha, robust=True),
    ]
    return result


def _se_from_interval(result, alpha: float) -> float:
    if not (result.lower > 0 and result.upper > 0):
        return math.nan
    return math.log(result.upper / result.lower) / (2 * stats.norm.ppf(1 - alpha / 2))


def iptw_outcomes(data: pd.DataFrame, weighting: Weighting, endpoints=IPTW_ENDPOINTS,
                  landmark_months: float = 24.0, alpha: float = 0.05) -> dict:
    """:func:`analyse_endpoint` for each endpoint, with tidy tables.

    Returns
    -------
    dict
        ``results``: endpoint → OutcomeResult; ``landmarks``: tidy landmark estimates
        (endpoint, analysis, group, n, weighted_n, events, weighted_events, quantity,
        estimate); ``hazard_ratios``: tidy hazard ratios (endpoint, analysis, hr, lower,
        upper, alpha, p_value, se_log_hr, n, events, reason); ``alpha``: one minus the
        confidence level of the intervals.
    """
    results = {name: analyse_endpoint(data, weighting, name, landmark_months, alpha)
               for name in endpoints}
    landmarks = [r.landmarks for r in results.values() if r.landmarks is not None]
    hazard_ratios = [{"endpoint": name, **{k: getattr(h, k) for k in (
        "analysis", "hr", "lower", "upper")}, "alpha": alpha, **{k: getattr(h, k) for k in (
        "p_value", "se_log_hr", "n", "events")},
        "reason": h.reason or ""} for name, r in results.items() for h in r.hazard_ratios]
    return {"results": results,
            "landmarks": pd.concat(landmarks, ignore_index=True) if landmarks
            else pd.DataFrame(),
            "hazard_ratios": pd.DataFrame(hazard_ratios), "alpha": alpha}


def hazard_ratio_display(outcomes: dict, groups: list) -> pd.DataFrame:
    """Readable table of the hazard ratios, one line per endpoint and analysis (the header
    names the outcomes' confidence level)."""
    rows = []
    for name, result in outcomes["results"].items():
        label = ENDPOINTS[name].label
        if result.skipped:
            rows.append([label, "", "", "", "not analysed: " + result.skipped, "", 0])
            continue
        rows.append([label, "", "", "", "", "", 0])
        for h in result.hazard_ratios:
            hr = ("not estimable" if math.isnan(h.hr)
                  else f"{h.hr:.2f} ({h.lower:.2f}–{h.upper:.2f})")
            rows.append([h.analysis, h.n, h.events, f"{groups[1]} vs {groups[0]}", hr,
                         format_p(h.p_value), 1])
    return pd.DataFrame(rows, columns=["Analysis", "n", "Events", "Comparison",
                                       f"HR ({ci_label(outcomes['alpha'])})", "P value",
                                       "indent"])


# ---------------------------------------------------------------------------------------------
# Figures
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


def iptw_figure(result: OutcomeResult, weighting: Weighting, data: pd.DataFrame, title: str,
                landmark_months: float | None = None) -> plt.Figure:
    """Unadjusted (left) and IPTW-weighted (right) Kaplan–Meier curves of one endpoint.

    Each side shows the curves per group, censoring ticks, the hazard ratio of its analysis
    and, under the axis, the number (left) or weighted number (right) at risk.
    """
    groups = [weighting.model.reference, weighting.model.treated]
    colours = group_colours(groups)
    incidence = ENDPOINTS[result.endpoint].kind == "incidence"
    outcome = _outcome(data, result.endpoint)
    time = outcome["time"].to_numpy(float)
    treated = weighting.frame["treated"].to_numpy()
    horizon = float(to_months(time.max()))
    step = 12 if horizon > 36 else 6 if horizon > 12 else 3
    ticks = np.arange(0, horizon + 1e-9, step)
    fig = plt.figure(figsize=(11, 5.0))
    grid = fig.add_gridspec(2, 2, height_ratios=[4.2, 1.0], hspace=0.35, wspace=0.38)
    sides = [("unadjusted", "unadjusted", np.ones(len(time)), result.hazard_ratios[0]),
             ("iptw", "IPTW-weighted", weighting.frame["weight"].to_numpy(),
              result.hazard_ratios[1])]
    for column, (analysis, heading, weights, hr) in enumerate(sides):
        ax = fig.add_subplot(grid[0, column])
        for group in groups:
            _step(ax, result.curves[(analysis, group)], incidence, colours[group],
                  plot_text(group))
        if landmark_months:
            ax.axvline(landmark_months, color="#999999", lw=0.8, ls=":")
        ax.set(xlim=(0, horizon * 1.02), ylim=(-0.02, 1.04), xticks=ticks,
               xlabel="Months since HSCT",
               ylabel="Cumulative incidence" if incidence else ENDPOINTS[result.endpoint].label)
        ax.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0, decimals=0))
        ax.set_title(f"{title}: {heading}", loc="left", fontweight="bold",
                     fontsize=10)
        text = ("HR not estimable" if math.isnan(hr.hr) else
                f"HR {hr.hr:.2f} ({hr.lower:.2f}–{hr.upper:.2f})\nP = {format_p(hr.p_value)}"
                f" ({'robust SE' if analysis == 'iptw' else 'model SE'})")
        ax.text(0.98, 0.04 if not incidence else 0.96, text, transform=ax.transAxes,
                ha="right", va="bottom" if not incidence else "top", fontsize=8.5,
                bbox=dict(boxstyle="round,pad=0.3", fc="white", ec="#cccccc", alpha=0.9))
        ax.legend(loc="lower left" if not incidence else "upper left", frameon=False,
                  fontsize=8.5)
        risk = fig.add_subplot(grid[1, column], sharex=ax)
        for row, group in enumerate(groups):
            part = treated == (1 if group == weighting.model.treated else 0)
            days = months_to_days(ticks)
            counts = weighted_at_risk(time[part], weights[part], days)
            # a weighted number is hidden where the patients behind it are too few
            patients = weighted_at_risk(time[part], np.ones(part.sum()), days)
            for x, count, n in zip(ticks, counts, patients, strict=True):
                shown = (count_text(round(n)) if is_small(round(n)) or analysis == "unadjusted"
                         else f"{count:.1f}")
                risk.text(x, len(groups) - 1 - row, shown, ha="center", va="center",
                          fontsize=8, color=colours[group])
        risk.set_yticks(range(len(groups)), [plot_text(g) for g in reversed(groups)],
                        fontsize=8)
        risk.set_ylim(-0.6, len(groups) - 0.4)
        risk.set_title("Number at risk" if analysis == "unadjusted"
                       else "Weighted number at risk", loc="left", fontsize=8.5)
        risk.tick_params(axis="x", labelbottom=False, length=0)
        risk.tick_params(axis="y", length=0, pad=16)
        for side in ("left", "bottom", "top", "right"):
            risk.spines[side].set_visible(False)
    fig.subplots_adjust(left=0.12, right=0.98, top=0.93, bottom=0.05)
    return fig


def love_plot(balance: pd.DataFrame) -> plt.Figure:
    """Absolute standardised mean differences before and after weighting, per covariate."""
    labels = balance["label"].tolist()
    y = np.arange(len(labels))[::-1]
    fig, ax = plt.subplots(figsize=(7.2, 1.2 + 0.24 * len(labels)))
    before = balance["smd_before"].abs().to_numpy()
    after = balance["smd_after"].abs().to_numpy()
    ax.hlines(y, np.fmin(before, after), np.fmax(before, after), color="#cccccc", lw=1)
    ax.plot(before, y, "o", mfc="white", mec="#555555", label="Unadjusted")
    ax.plot(after, y, "o", color="#0072B2", label="IPTW-weighted")
    ax.axvline(SMD_THRESHOLD, color="#D55E00", ls="--", lw=1,
               label=f"|SMD| = {SMD_THRESHOLD:g}")
    ax.set_yticks(y, [f"{lab}{' *' if m else ''}" for lab, m in
                      zip(labels, balance["in_model"], strict=True)], fontsize=8)
    ax.set_xlabel("Absolute standardised mean difference")
    ax.set_xlim(0, max(0.5, np.nanmax(np.r_[before, after]) * 1.05))
    ax.set_ylim(-0.8, len(labels) - 0.2)
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title("Covariate balance (* in the propensity model)", loc="left",
                 fontweight="bold", fontsize=10)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------------
# Text
# ---------------------------------------------------------------------------------------------
def weighting_text(weighting: Weighting, balance: pd.DataFrame) -> str:
    """Computed paragraphs about the model, the weights and the balance (MyST Markdown)."""
    model = weighting.model
    summary = weighting.summary()
    used = ", ".join(t.label for t in model.terms) or "no covariate"
    skipped = (" Left out: " + ", ".join(f"{v} ({why})" for v, why in model.skipped.items())
               + "." if model.skipped else "")
    imputed = (" Missing values replaced by the mean: " + ", ".join(
        f"{k} ({count_text(n)})" for k, n in model.fit.imputed.items()) + "."
        if model.fit.imputed
        else "")
    penalty = (f"a ridge penalty λ = {model.fit.penalty:g} on the standardised coefficients"
               if model.fit.penalty > 0 else "no penalty (maximum likelihood)")
    groups = "; ".join(
        f"{markdown_text(r['group'])}: {count_text(r['n'])} patients, propensity "
        f"{r['propensity_min']:.2f}–"
        f"{r['propensity_max']:.2f}, weights {r['weight_min']:.2f}–{r['weight_max']:.2f} "
        f"with mean {r['weight_mean']:.2f} (sum {r['weight_sum']:.1f}), effective sample "
        f"size {r['effective_n']:.1f}" for _, r in summary.iterrows())
    trim = weighting.trimming
    model_terms = balance[balance["in_model"]]
    worst = balance.loc[balance["smd_after"].abs().idxmax()] if len(balance) else None

    def over(frame, column):
        return int((frame[column].abs() > SMD_THRESHOLD).sum())

    text = (f"**Model.** The probability of {markdown_text(model.treated)} rather than "
            f"{markdown_text(model.reference)} "
            f"was modelled with {len(model.terms)} terms ({used}) and {penalty}."
            f"{skipped}{imputed}\n\n"
            f"**Weights.** {groups}. Stabilised weights average about 1 in each group when "
            "the model describes the assignment well and the groups overlap; a mean far "
            "from 1 means that a few patients carry the comparison.\n\n"
            f"**Truncation.** Weights outside the {_ordinal(trim.lower_percentile)} and "
            f"{_ordinal(trim.upper_percentile)} percentiles ({trim.lower_bound:.2f} and "
            f"{trim.upper_bound:.2f}) were set to those bounds: {count_text(trim.n_trimmed)} "
            f"weight{'s' if trim.n_trimmed != 1 else ''} changed ({count_text(trim.n_below)} "
            f"raised, {count_text(trim.n_above)} lowered).\n\n"
            f"**Balance.** Of the {len(model_terms)} covariate terms of the model, "
            f"{over(model_terms, 'smd_before')} had an absolute standardised mean difference "
            f"above {SMD_THRESHOLD:g} before weighting and {over(model_terms, 'smd_after')} "
            f"after; over all {len(balance)} terms of Table 1, {over(balance, 'smd_before')} "
            f"and {over(balance, 'smd_after')}.")
    if worst is not None and not np.isnan(worst["smd_after"]):
        text += (f" The largest imbalance left after weighting is {worst['label']} "
                 f"(SMD {worst['smd_after']:+.2f}).")
    return text


#: A common rule of thumb for logistic models: about this many patients of the smaller
#: outcome class (here, the smaller group) per model term.
PATIENTS_PER_TERM = 10


def limits_text(weighting: Weighting, outcomes: dict) -> str:
    """Computed paragraph on the size of the cohort against what the analysis asks of it."""
    summary = weighting.summary()
    smaller = summary.loc[summary["n"].idxmin()]
    terms = len(weighting.model.terms)
    per_term = f"{smaller['n'] / terms:.1f}" if terms else "no"
    if terms and is_small(smaller["n"]):  # the ratio would give the hidden count away
        per_term = f"fewer than {min_cell_count() / terms:.1f}"
    ratios = outcomes["hazard_ratios"]
    weighted = ratios[(ratios["analysis"].str.startswith("IPTW")) & ratios["hr"].notna()]
    group = markdown_text(smaller["group"])
    effective = (count_text(smaller["n"]) if is_small(smaller["n"])
                 else f"{smaller['effective_n']:.1f}")
    text = (f"This cohort has {count_text(summary['n'].sum())} patients, "
            f"{count_text(smaller['n'])} of them in the smaller group ({group}). The "
            f"propensity model has {terms} terms: {per_term} patients of the smaller group "
            f"per term, where about {PATIENTS_PER_TERM} per term are usually asked for. After "
            f"weighting, the {group} group counts as {effective} patients "
            "(effective sample size).")
    if len(weighted):
        widest = weighted.loc[(np.log(weighted["upper"]) - np.log(weighted["lower"])).idxmax()]
        text += (f" The widest weighted hazard-ratio interval, for "
                 f"{in_sentence(ENDPOINTS[widest['endpoint']].label)}, runs from "
                 f"{widest['lower']:.2f} to {widest['upper']:.2f}.")
    return text


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


def weighting_sensitivity(data: pd.DataFrame, group_col: str, groups: list,
                          endpoints=IPTW_ENDPOINTS, confounders=DEFAULT_CONFOUNDERS,
                          penalties=SENSITIVITY_PENALTIES, trims=SENSITIVITY_TRIMS,
                          alpha: float = 0.05) -> pd.DataFrame:
    """IPTW hazard ratios under other penalties and truncations of the same model.

    Returns
    -------
    pandas.DataFrame
        One row per (penalty, truncation, endpoint): hr, lower, upper, alpha (one minus
        the confidence level of the interval), p_value (robust), the
        effective sample sizes, the largest absolute SMD of the model's terms after weighting,
        and ``reason`` when the weights could not be formed (e.g. propensities of exactly 0
        or 1 without a penalty: the groups are separated).
    """
    rows = []
    for penalty in penalties:
        for trim in trims:
            base = {"penalty": penalty, "trim_lower": trim[0], "trim_upper": trim[1],
                    "alpha": alpha}
            try:
                weighting = iptw(data, group_col, groups, confounders, penalty, trim)
            except (ValueError, np.linalg.LinAlgError) as error:
                rows.extend({**base, "endpoint": name, "reason": str(error)}
                            for name in endpoints)
                continue
            balance = balance_table(data, weighting, confounders)
            summary = weighting.summary()
            extra = {"effective_n_reference": summary["effective_n"].iloc[0],
                     "effective_n_treated": summary["effective_n"].iloc[1],
                     "max_abs_smd_after": float(balance["smd_after"].abs().max())}
            for name in endpoints:
                if any(c not in data for c in ENDPOINTS[name].requires):
                    continue
                outcome = _outcome(data, name)
                hr = weighted_cox(outcome["time"], outcome["cause"],
                                  weighting.frame["treated"], weighting.frame["weight"], alpha)
                rows.append({**base, "endpoint": name, "hr": hr.hr, "lower": hr.lower,
                             "upper": hr.upper, "p_value": hr.p_value, **extra,
                             "reason": hr.reason or ""})
    columns = ["penalty", "trim_lower", "trim_upper", "endpoint", "hr", "lower", "upper",
               "alpha", "p_value", "effective_n_reference", "effective_n_treated",
               "max_abs_smd_after", "reason"]
    return pd.DataFrame(rows).reindex(columns=columns)


def sensitivity_display(sensitivity: pd.DataFrame) -> pd.DataFrame:
    """Readable sensitivity table: one header per endpoint, one line per choice (the header
    names the level of the table's ``alpha``)."""
    rows = []
    for name, part in sensitivity.groupby("endpoint", sort=False):
        rows.append([ENDPOINTS[name].label, "", "", "", "", 0])
        for _, r in part.iterrows():
            choice = (f"λ = {r['penalty']:g}, "
                      + ("no truncation" if (r["trim_lower"], r["trim_upper"]) == (0, 100)
                         else f"truncated at {r['trim_lower']:g}–{r['trim_upper']:g}th pct"))
            if isinstance(r["reason"], str) and r["reason"] and np.isnan(r["hr"]):
                rows.append([choice, "not estimable: " + r["reason"], "", "", "", 1])
                continue
            rows.append([choice, f"{r['hr']:.2f} ({r['lower']:.2f}–{r['upper']:.2f})",
                         format_p(r["p_value"]),
                         f"{r['effective_n_reference']:.1f} / {r['effective_n_treated']:.1f}",
                         f"{r['max_abs_smd_after']:.2f}", 1])
    ci = ci_label(result_alpha(sensitivity)) if len(sensitivity) else "CI"
    return pd.DataFrame(rows, columns=["Weighting", f"HR ({ci}), robust", "P value",
                                       "Effective n (reference / other)",
                                       "Largest |SMD| of model terms", "indent"])


# ---------------------------------------------------------------------------------------------
# The chapter
# ---------------------------------------------------------------------------------------------
FIGURE_LABELS = dict(zip(IPTW_ENDPOINTS, "ABCD", strict=True))


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
    (text, figures). When the analysis was not run (``skipped``), :meth:`describe_weights`
    says why and every other part is empty.
    """

    groups: list
    landmark_months: float
    skipped: str | None = None
    weighting: Weighting | None = None
    balance: pd.DataFrame | None = None
    outcomes: dict | None = None
    sensitivity: pd.DataFrame | None = None
    figures: dict = field(default_factory=dict)
    csv: dict = field(default_factory=dict)

    def describe_weights(self) -> Markdown:
        """The model, the weights, their truncation and the balance, in words."""
        if self.skipped:
            return Markdown(f":::{{note}} IPTW analysis not run\n{self.skipped}.\n:::\n")
        return Markdown(weighting_text(self.weighting, self.balance))

    @_unless_skipped
    def propensity_table(self):
        """The propensity model's terms and their (log-)odds ratios per SD."""
        coefficients = self.weighting.model.fit.coefficients
        labels = {t.name: t.label for t in self.weighting.model.terms}
        frame = pd.DataFrame({
            "Term": [labels.get(k, "Intercept") for k in coefficients.index],
            "Log-odds ratio per SD": [f"{v:+.2f}" for v in coefficients],
            "Odds ratio per SD": ["" if k == "intercept" else f"{math.exp(v):.2f}"
                                  for k, v in coefficients.items()],
        })
        return render_table(frame, title="Propensity model",
                            subtitle=f"P({self.groups[1]} rather than {self.groups[0]}); "
                                     "covariates standardised (mean 0, SD 1)",
                            notes=[f"Ridge penalty λ = {self.weighting.model.fit.penalty:g}; "
                                   "the intercept is not penalised."],
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
            "Sum of weights": summary["weight_sum"].map(lambda v: f"{v:.1f}"),
            "Effective n": summary["effective_n"].map(lambda v: f"{v:.1f}"),
            "Truncated": summary["n_trimmed"],
        })
        trim = self.weighting.trimming
        return render_table(frame, title="Stabilised weights by group",
                            notes=[f"Truncated at the {_ordinal(trim.lower_percentile)} "
                                   f"({trim.lower_bound:.3f}) and "
                                   f"{_ordinal(trim.upper_percentile)} "
                                   f"({trim.upper_bound:.3f}) percentiles of all weights.",
                                   "Effective n: Kish's (Σw)² / Σw²."],
                            stub="Group", test_col=None, indent_col=None,
                            table_id="iptw-weights")

    @_unless_skipped
    def covariate_balance(self):
        """Means and standardised mean differences before and after weighting."""
        display = balance_display(self.balance)
        display.columns = [c.replace("Reference", str(self.groups[0]))
                           .replace("Other", str(self.groups[1])) for c in display.columns]
        return render_table(display, title="Covariate balance before and after weighting",
                            subtitle="Means (proportions for yes/no terms) and standardised "
                                     "mean differences (SMD)",
                            notes=[f"SMD = difference of (weighted) means, {self.groups[1]} "
                                   f"minus {self.groups[0]}, over the unweighted pooled SD; "
                                   f"|SMD| > {SMD_THRESHOLD:g} is usually read as imbalance.",
                                   "In model: the covariate is one of the propensity model's "
                                   "confounders."],
                            stub="Covariate", test_col=None, indent_col=None,
                            table_id="iptw-balance")

    @_unless_skipped
    def balance_plot(self) -> Markdown:
        """The figure of the absolute standardised mean differences (love plot)."""
        return Markdown(figure_markdown(
            self.figures["balance"], "figure-iptw-balance",
            "Dot plot of absolute standardised mean differences per covariate, before and "
            "after weighting",
            "**Covariate balance.** Absolute standardised mean difference of each Table 1 "
            f"term before (open circles) and after (filled) weighting; dashed line at "
            f"{SMD_THRESHOLD:g}; starred terms are in the propensity model.",
            "the balance plot"))

    @_unless_skipped
    def describe_limits(self) -> Markdown:
        """What the cohort's size can support, in words."""
        return Markdown(limits_text(self.weighting, self.outcomes))

    @_unless_skipped
    def describe_events(self) -> Markdown:
        """Events per group and endpoint, as bullets."""
        return Markdown(events_text(self.outcomes))

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
            hrs = "; ".join(
                f"{h.analysis}: HR {h.hr:.2f} ({h.lower:.2f}–{h.upper:.2f}), "
                f"P = {format_p(h.p_value)}" if not math.isnan(h.hr)
                else f"{h.analysis}: not estimable ({h.reason})" for h in result.hazard_ratios)
            incidence = ENDPOINTS[name].kind == "incidence"
            how = ("1 − Kaplan–Meier incidence, relapse and death before it censored"
                   if incidence else "Kaplan–Meier")
            reference, other = (markdown_text(g) for g in self.groups)
            caption = (f"**{label}.** {endpoint} by {reference} and {other}, "
                       f"{how}: without weights (left) and with the stabilised, truncated "
                       f"IPTW weights (right). Ticks: censored patients; under each axis the "
                       f"number, or weighted number, at risk. {other} vs "
                       f"{reference}, {hrs}.")
            alt = (f"Two panels of {'incidence' if incidence else 'survival'} curves of "
                   f"{in_sentence(endpoint)} by group, unweighted and IPTW-weighted, against "
                   "months since transplant")
            parts.append(figure_markdown(self.figures[name], anchor, alt, caption, label))
        return Markdown("\n".join(parts))

    @_unless_skipped
    def hazard_ratio_table(self):
        """Hazard ratios without and with weighting."""
        return render_table(hazard_ratio_display(self.outcomes, self.groups),
                            title="Hazard ratios without and with weighting",
                            subtitle=f"{self.groups[1]} vs {self.groups[0]}",
                            notes=["Unadjusted: Cox model, Efron ties, model-based (Wald) SE. "
                                   "IPTW: Cox model, Breslow ties, with the stabilised, "
                                   "truncated weights and a robust (sandwich) SE.",
                                   "Grade III–IV aGVHD: relapse and death before it censored "
                                   "(cause-specific hazard)."],
                            stub="Analysis", test_col=None, table_id="iptw-hazard-ratios")

    @_unless_skipped
    def landmark_table(self):
        """Estimates at the landmark without and with weighting."""
        when = f"{self.landmark_months:g} months"
        rows = []
        for name, part in self.outcomes["landmarks"].groupby("endpoint", sort=False):
            quantity = part["quantity"].iloc[0]
            rows.append([f"{ENDPOINTS[name].label} ({quantity})", "", "", "", "", 0])
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
                            subtitle=f"IPTW Cox hazard ratio of {self.groups[1]} vs "
                                     f"{self.groups[0]}, robust SE",
                            notes=["λ: ridge penalty of the propensity model (0 = maximum "
                                   "likelihood). The main analysis is λ = "
                                   f"{DEFAULT_PENALTY:g}, truncated at the "
                                   f"{_ordinal(DEFAULT_TRIM_PERCENTILES[0])} and "
                                   f"{_ordinal(DEFAULT_TRIM_PERCENTILES[1])} percentiles."],
                            stub="Weighting", test_col=None, table_id="iptw-sensitivity")

    @_unless_skipped
    def downloads(self) -> Markdown:
        """Bullets linking the chapter's CSV files."""
        lines = [f"- {{download}}`{name}.csv <{Path(path).as_posix()}>`: {what}"
                 for name, (path, what) in self.csv.items()]
        return Markdown("\n".join(lines))


def _percent(value: float) -> str:
    return "not estimable" if np.isnan(value) else f"{100 * value:.2f}%"


CSV_CONTENTS = {
    "iptw_weight_summary": "per group: propensity and weight ranges, sums, effective sample "
                           "size, number truncated, truncation percentiles and bounds",
    "iptw_propensity_model": "the model's terms and their log-odds ratios per SD",
    "iptw_balance": "per covariate term: means and SMD before and after weighting",
    "iptw_landmarks": "landmark estimates per endpoint, group and analysis",
    "iptw_hazard_ratios": "hazard ratios, unadjusted and IPTW",
    "iptw_sensitivity": "IPTW hazard ratios under other penalties and truncations",
}


def iptw_report(chapter, landmark_months: float = 24.0, alpha: float = 0.05,
                confounders=DEFAULT_CONFOUNDERS, penalty: float = DEFAULT_PENALTY,
                trim_percentiles=DEFAULT_TRIM_PERCENTILES) -> IptwReport:
    """Run the whole IPTW analysis of a chapter and save its CSV, PNG and SVG files.

    Parameters
    ----------
    chapter : :class:`bridge_hsct.book.chapter.Chapter`.
    landmark_months, alpha : landmark of the estimates, one minus the confidence level.
    confounders, penalty, trim_percentiles : see :func:`iptw`.

    Returns
    -------
    IptwReport
        With ``skipped`` set (and nothing saved) when the cohort does not have exactly two
        groups.
    """
    groups = list(chapter.groups)
    report = IptwReport(groups, landmark_months)
    present = [g for g in groups if (chapter.data[chapter.group_col] == g).any()]
    if len(present) != 2:
        report.skipped = (f"IPTW compares two groups, and column "
                          f"{markdown_code(chapter.group_col)} holds "
                          f"{len(present)}")
        return report
    data, out = chapter.data, chapter.output_dir
    report.weighting = iptw(data, chapter.group_col, groups, confounders, penalty,
                            trim_percentiles)
    report.balance = balance_table(data, report.weighting)
    report.outcomes = iptw_outcomes(data, report.weighting, IPTW_ENDPOINTS, landmark_months,
                                    alpha)
    report.sensitivity = weighting_sensitivity(data, chapter.group_col, groups,
                                               confounders=confounders, alpha=alpha)
    for name, result in report.outcomes["results"].items():
        if result.skipped:
            continue
        title = f"{FIGURE_LABELS.get(name, '')}  {ENDPOINTS[name].label}".strip()
        figure = iptw_figure(result, report.weighting, data, title, landmark_months)
        report.figures[name] = save_figure(figure, out, f"figure_s6{FIGURE_LABELS[name]}"
                                           .lower())
        plt.close(figure)
    figure = love_plot(report.balance)
    report.figures["balance"] = save_figure(figure, out, "iptw_balance")
    plt.close(figure)
    trim = report.weighting.trimming
    # no per-patient table (propensities, weights): the site publishes aggregates only
    tables = {
        "iptw_weight_summary": report.weighting.summary().assign(
            trim_lower_percentile=trim.lower_percentile,
            trim_upper_percentile=trim.upper_percentile, trim_lower_bound=trim.lower_bound,
            trim_upper_bound=trim.upper_bound, penalty=report.weighting.model.fit.penalty),
        "iptw_propensity_model": report.weighting.model.fit.coefficients.rename_axis("term")
        .reset_index(),
        "iptw_balance": report.balance,
        "iptw_landmarks": report.outcomes["landmarks"],
        "iptw_hazard_ratios": report.outcomes["hazard_ratios"],
        "iptw_sensitivity": report.sensitivity,
    }
    for name, frame in tables.items():
        report.csv[name] = (save_table(frame, out, name), CSV_CONTENTS[name])
    return report

"""The IPTW chapter's words: every judgement follows the computed numbers and the stated
rules of thumb; every count passes the chapter's disclosure, handed to each function."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ...cohort.endpoints import (
    ENDPOINTS,
)
from ...render.disclosure import Disclosure
from ...render.escaping import markdown_text
from ...render.formatting import ci_label, format_p, in_sentence, result_alpha
from ...stats.weighting import (
    WEIGHTED_ROBUST,
)
from .analysis import (
    EVENTS_PER_HAZARD_RATIO,
    PATIENTS_PER_TERM,
    SMD_THRESHOLD,
    PropensityModel,
    Weighting,
)


# ---------------------------------------------------------------------------------------------
# Text: every judgement follows the computed numbers
# ---------------------------------------------------------------------------------------------
def _listed(items) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    items = list(items)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _model_sentence(model: PropensityModel, disclosure: Disclosure) -> str:
    used = ", ".join(t.label for t in model.terms) or "no covariate"
    kind = "logistic" if len(model.groups) == 2 else "multinomial logistic"
    skipped = (" Left out: " + ", ".join(f"{v} ({why})" for v, why in model.skipped.items())
               + "." if model.skipped else "")
    imputed = (" Missing values replaced by the mean: " + ", ".join(
        f"{k} ({disclosure.count_text(n)})" for k, n in model.fit.imputed.items()) + "."
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


def _weights_sentence(summary: pd.DataFrame, disclosure: Disclosure) -> str:
    groups = "; ".join(
        f"{markdown_text(r['group'])}: {disclosure.count_text(r['n'])} patients, propensity "
        f"of their own group {r['propensity_min']:.2f}–{r['propensity_max']:.2f}, weights "
        f"{r['weight_min']:.2f}–{r['weight_max']:.2f} with mean {r['weight_mean']:.2f}, "
        f"effective sample size {effective_n_text(r, disclosure)}"
        for _, r in summary.iterrows())
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


def weighting_text(weighting: Weighting, balance: pd.DataFrame, *,
                   disclosure: Disclosure) -> str:
    """Computed paragraphs about the model, the weights, their truncation and the balance
    (MyST Markdown), counts through `disclosure`."""
    trim, count_text = weighting.trimming, disclosure.count_text
    truncation = (
        f"**Truncation.** Weights outside the {ordinal(trim.lower_percentile)} and "
        f"{ordinal(trim.upper_percentile)} percentiles ({trim.lower_bound:.2f} and "
        f"{trim.upper_bound:.2f}) were set to those bounds: {count_text(trim.n_trimmed)} "
        f"weight{'s' if trim.n_trimmed != 1 else ''} changed ({count_text(trim.n_below)} "
        f"raised, {count_text(trim.n_above)} lowered).")
    return "\n\n".join([_model_sentence(weighting.model, disclosure),
                        _weights_sentence(weighting.summary(), disclosure), truncation,
                        _balance_sentence(balance, weighting.model.reference)])


def _per_term_sentence(smallest, terms: int, penalty: float, what: str,
                       disclosure: Disclosure) -> str:
    """Patients of the smallest group per term of a model, against the rule of thumb."""
    ratio = smallest["n"] / terms
    shown = (f"fewer than {disclosure.min_cell_count / terms:.1f}"
             if disclosure.is_small(smallest["n"])
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


def limits_text(weighting: Weighting, outcomes: dict, all_terms: int, *,
                disclosure: Disclosure) -> str:
    """Computed paragraph on the size of the cohort against what the analysis asks of it.

    Parameters
    ----------
    weighting, outcomes : outputs of :func:`iptw` and :func:`iptw_outcomes`.
    all_terms : terms of a model of every Table 1 characteristic (the paper's "all
        covariates"), coded for a regression.
    disclosure : the small-cell suppression of its counts (the chapter's).
    """
    summary, count_text = weighting.summary(), disclosure.count_text
    smallest = summary.loc[summary["n"].idxmin()]
    group = markdown_text(smallest["group"])
    terms, penalty = len(weighting.model.terms), weighting.model.fit.penalty
    text = (f"This cohort has {count_text(summary['n'].sum())} patients in the "
            f"{len(summary)} groups analysed; the smallest, {group}, has "
            f"{count_text(smallest['n'])}. ")
    if terms:
        text += _per_term_sentence(smallest, terms, penalty, "The propensity model",
                                   disclosure)
    else:
        text += ("The propensity model has no covariate term, so every weight is 1 and the "
                 "weighted analysis repeats the unadjusted one.")
    if all_terms:
        text += " " + _per_term_sentence(smallest, all_terms, penalty,
                                         "A model of every Table 1 characteristic (the "
                                         "paper's \"all covariates\")", disclosure)
    effective = ", ".join(f"{markdown_text(r['group'])} {effective_n_text(r, disclosure)}"
                          for _, r in summary.iterrows())
    text += f" After weighting the groups count as {effective} patients (effective sample size)."
    text += _events_sentence(outcomes, len(weighting.groups) - 1)
    return text + _intervals_sentence(outcomes, weighting.model.reference)


def ordinal(x: float) -> str:
    if not float(x).is_integer():
        return f"{x:g}th"
    n = int(x)
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def events_text(outcomes: dict, *, disclosure: Disclosure) -> str:
    """Computed bullets: how many events each group contributes to each endpoint, counts
    through `disclosure`."""
    lines, count_text = [], disclosure.count_text
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


def sensitivity_display(sensitivity: pd.DataFrame, *, disclosure: Disclosure) -> pd.DataFrame:
    """Readable sensitivity table: one header per endpoint, one line per choice and group
    (the header names the level of the table's ``alpha``; the smallest group's size through
    `disclosure`)."""
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
                         effective_n_text({"n": r["smallest_group_n"],
                                           "effective_n": r["smallest_effective_n"]},
                                          disclosure),
                         f"{r['max_abs_smd_after']:.2f}", 1])
    ci = ci_label(result_alpha(sensitivity)) if len(sensitivity) else "CI"
    return pd.DataFrame(rows, columns=["Weighting", "Group vs reference", f"HR ({ci}), robust",
                                       "P value", "Effective n of the smallest group",
                                       "Largest |SMD| of model terms", "indent"])


def effective_n_text(row, disclosure: Disclosure) -> str:
    """A group's effective sample size, or its hidden count when the group is small (for
    `disclosure`)."""
    return (disclosure.count_text(row["n"]) if disclosure.is_small(row["n"])
            else f"{row['effective_n']:.1f}")

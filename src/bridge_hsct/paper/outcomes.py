"""Landmark estimates, medians and between-group tests of one endpoint, as one tidy table.

This is what every outcome chapter shows under its figures and what the audit compares with
the published values.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..cohort.endpoints import (
    ENDPOINTS,
    as_censored,
    derive,
    known_status,
    missing_competitors,
    unknown_status,
)
from ..render.disclosure import Disclosure
from ..render.escaping import markdown_code
from ..render.figures import km_panel
from ..render.formatting import ci_label, format_p, format_percent, in_sentence
from ..stats.competing import cumulative_incidence, gray_test, one_minus_km_incidence
from ..stats.survival import (
    Estimate,
    km_at,
    km_median,
    logrank_test,
    months_to_days,
    to_months,
)

PAPER_METHOD = "1 - kaplan-meier"
COMPETING_METHOD = "aalen-johansen"

#: Acute GVHD is read at day 100 after the transplant, whatever the chapter's landmark: the
#: paper's fixed landmark of Figure 4 A, B, D, E, G–I and of its Results (shown "100 days").
DAY_100_MONTHS = float(to_months(100.0))


@dataclass(frozen=True)
class Comparison:
    """A between-group test of an endpoint."""

    test: str
    chi2: float
    df: int
    p_value: float
    reason: str | None = None


def landmark_estimate(endpoint: pd.DataFrame, landmark_days: float, kind: str,
                      method: str = PAPER_METHOD, alpha: float = 0.05) -> Estimate:
    """Survival (Kaplan–Meier) or cumulative incidence of `endpoint` at a landmark."""
    time, cause = endpoint["time"].to_numpy(float), endpoint["cause"].to_numpy(int)
    if len(time) == 0:
        return Estimate.missing()
    if kind == "survival":
        return km_at(time, cause == 1, landmark_days, alpha)
    estimate = cumulative_incidence if method == COMPETING_METHOD else one_minus_km_incidence
    return estimate(time, cause, t=landmark_days, alpha=alpha)


def compare_groups(endpoint: pd.DataFrame, groups: pd.Series,
                   method: str = PAPER_METHOD) -> Comparison:
    """Log-rank test (the paper's method) or Gray's test (competing risks) between groups."""
    known = groups.notna().to_numpy()
    ep, g = endpoint[known], groups[known]
    if g.nunique() < 2:
        return Comparison("not computable", np.nan, 0, np.nan, "fewer than two groups")
    if method == COMPETING_METHOD:
        r = gray_test(ep["time"], ep["cause"], g)
        return Comparison("Gray's test", r.chi2, r.df, r.p_value, r.reason)
    censored = as_censored(ep)
    r = logrank_test(censored["time"], censored["cause"], g)
    return Comparison("log-rank test", r.chi2, r.df, r.p_value, r.reason)


def endpoint_summary(data: pd.DataFrame, name: str, group_col: str, groups: list,
                     landmark_months: float, method: str = PAPER_METHOD,
                     alpha: float = 0.05, by: str | None = None) -> pd.DataFrame:
    """Whole-cohort and per-group estimates of endpoint `name` at the landmark.

    Without the endpoint's competing events in the data, Aalen–Johansen rows are not
    estimable (the test is "not computable"): they would only repeat 1 − Kaplan–Meier.

    Parameters
    ----------
    data : validated cohort.
    name : endpoint key of :data:`bridge_hsct.cohort.endpoints.ENDPOINTS`.
    group_col, groups : the column defining the groups and their display order.
    landmark_months : landmark of the estimates (24 in the paper; 100 days for aGVHD).
    method : for incidence endpoints, ``"1 - kaplan-meier"`` (the paper's) or
        ``"aalen-johansen"``; the test is log-rank or Gray's test accordingly.
    alpha : one minus the confidence level.
    by : compare by this column instead of `group_col` (subgroup analyses); `groups` are
        then its levels.

    Returns
    -------
    pandas.DataFrame
        One row for the whole cohort and one per group: endpoint, group, n (patients whose
        status is known), unknown (those left out because it is not: see
        :func:`bridge_hsct.cohort.endpoints.unknown_status`), events,
        landmark_months and alpha (what the row was computed at: every label printed from
        it takes its landmark and confidence level from these), estimate, lower, upper
        (proportions), median_months with its CI (survival only), and the test, chi2, df
        and p_value (on the group rows).
    """
    kind = ENDPOINTS[name].kind
    column = by or group_col
    unknown = ~known_status(data, name)
    unknown_by_group = data.loc[unknown, column].value_counts()
    data = data[~unknown]
    endpoint = derive(data, name)
    landmark = months_to_days(landmark_months)
    rows = []
    # without its competing events, an Aalen–Johansen estimate would be a 1 − KM in disguise
    lacking = method == COMPETING_METHOD and missing_competitors(data, name)
    comparison = (Comparison("not computable", np.nan, 0, np.nan,
                             "competing events not recorded") if lacking
                  else compare_groups(endpoint, data[column], method))
    for label, part in [("whole", endpoint)] + [(g, endpoint[data[column] == g])
                                                 for g in groups]:
        est = (Estimate.missing() if lacking
               else landmark_estimate(part, landmark, kind, method, alpha))

        median = (km_median(part["time"], part["cause"] == 1, alpha) if kind == "survival"
                  and len(part) else Estimate.missing())
        rows.append({
            "endpoint": name, "method": "kaplan-meier" if kind == "survival" else method,
            "by": column, "group": label, "n": len(part),
            "unknown": int(unknown.sum() if label == "whole" else unknown_by_group.get(label, 0)),
            "events": int((part["cause"] == 1).sum()),
            "landmark_months": landmark_months, "alpha": alpha, "estimate": est.value,
            "lower": est.lower, "upper": est.upper,
            "median_months": float(to_months(median.value)),
            "median_lower": float(to_months(median.lower)),
            "median_upper": float(to_months(median.upper)),
            "test": comparison.test if label != "whole" else "",
            "chi2": comparison.chi2 if label != "whole" else np.nan,
            "df": comparison.df if label != "whole" else np.nan,
            "p_value": comparison.p_value if label != "whole" else np.nan,
        })
    return pd.DataFrame(rows)


def landmark_label(months: float) -> str:
    """``24 months``, or ``100 days`` for short landmarks given in days."""
    days = float(months_to_days(months))
    if months < 12 and abs(days - round(days)) < 1e-6:
        return f"{round(days)} days"
    return f"{months:g} months"


def estimate_text(row, in_words: bool = False) -> str:
    """``76.54% (58.29–87.50)``, in prose ``76.54% (95% CI 58.29–87.50%)`` (the level of
    the row's ``alpha``), or ``not estimable``."""
    if np.isnan(row["estimate"]):
        return "not estimable"
    if np.isnan(row["lower"]):
        return format_percent(row["estimate"])
    interval = f"{100 * row['lower']:.2f}–{100 * row['upper']:.2f}"
    if in_words:
        return f"{format_percent(row['estimate'])} ({ci_label(row['alpha'])} {interval}%)"
    return f"{format_percent(row['estimate'])} ({interval})"


def summary_panel(summary: pd.DataFrame, data: pd.DataFrame, *, title: str, ylabel: str,
                  whole: bool = False, horizon_months: float | None = None,
                  bands: bool = True, disclosure: Disclosure):
    """The figure panel of a summary: curves, landmark estimates and the test's P value
    (in a header above the axes, see :func:`bridge_hsct.render.figures.km_panel`), the
    numbers at risk through `disclosure`.

    Landmark, confidence level of the bands and of the in-panel label are the summary's
    (its ``landmark_months`` and ``alpha`` columns).
    """
    first = summary.iloc[0]
    name, column, method = first["endpoint"], first["by"], first["method"]
    alpha = float(first["alpha"])
    kind = ENDPOINTS[name].kind
    data = data[known_status(data, name)]
    endpoint = derive(data, name)
    landmark = first["landmark_months"]
    heading = f"At {landmark_label(landmark)}, % ({ci_label(alpha)})"
    if whole:
        return km_panel(endpoint, None, None, kind=kind, title=title, ylabel=ylabel,
                        method=method, heading=heading,
                        estimates={"All patients": estimate_text(first)},
                        horizon_months=horizon_months, landmark_months=landmark, bands=bands,
                        alpha=alpha, disclosure=disclosure)
    groups = summary.iloc[1:]
    return km_panel(endpoint, data[column], list(groups["group"]), kind=kind, title=title,
                    ylabel=ylabel, method=method, p_value=groups.iloc[0]["p_value"],
                    test_name=groups.iloc[0]["test"].replace(" test", ""), heading=heading,
                    estimates={g["group"]: estimate_text(g) for _, g in groups.iterrows()},
                    horizon_months=horizon_months, landmark_months=landmark, bands=bands,
                    alpha=alpha, disclosure=disclosure)


def summary_display(summaries: list[pd.DataFrame]) -> pd.DataFrame:
    """Readable table of several summaries: one line per endpoint and group."""
    rows = []
    for summary in summaries:
        for _, r in summary.iterrows():
            median = ("" if np.isnan(r["median_months"]) and r["method"] != "kaplan-meier"
                      else "not reached" if np.isnan(r["median_months"])
                      else f"{r['median_months']:.2f}")
            rows.append({
                "Endpoint": ENDPOINTS[r["endpoint"]].label,
                "Group": "All patients" if r["group"] == "whole" else str(r["group"]),
                "n": r["n"], "Events": r["events"],
                "Landmark": landmark_label(r["landmark_months"]),
                f"Estimate, % ({ci_label(r['alpha'])})": estimate_text(r),
                "Median, months": median,
                "P value": "" if r["group"] == "whole" else format_p(r["p_value"]),
                "Test": r["test"],
            })
    return pd.DataFrame(rows)


def left_out_sentence(data: pd.DataFrame, name: str, what: str = "", *,
                      disclosure: Disclosure) -> str:
    """One sentence saying how many patients endpoint `name` leaves out of `what` and why
    (which of its events is blank), or "" when none is; counts through `disclosure`."""
    count_text = disclosure.count_text
    unknown = unknown_status(data, name)
    left_out = int(unknown.any(axis=1).sum())
    if not left_out:
        return ""
    reasons = ", ".join(f"{markdown_code(column)} for {count_text(int(blank.sum()))}"
                        for column, blank in unknown.items() if blank.any())
    patients = "patient" if count_text(left_out) == "1" else "patients"  # "< 5 patients"
    what = what or in_sentence(ENDPOINTS[name].label)
    return (f"{count_text(left_out)} {patients} with an unknown status are left out of "
            f"{what} (blank, or an event without its day: {reasons}); a blank is never "
            "counted as no event.")


def competitors_sentence(data: pd.DataFrame, name: str) -> str:
    """One sentence saying which competing events of endpoint `name` the data do not
    record and what that means for its estimates, or "" when they are all recorded."""
    lacking = missing_competitors(data, name)
    if not lacking:
        return ""
    columns = " and ".join(markdown_code(c) for c in lacking)
    what = in_sentence(ENDPOINTS[name].label)
    return (f"The data have no {columns}: patients are followed for {what} until last "
            "contact whatever else happened, so only the 1 − Kaplan–Meier estimate is "
            "given; the competing-risk (Aalen–Johansen) estimate needs those events.")

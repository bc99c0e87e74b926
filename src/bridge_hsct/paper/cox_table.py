"""Univariate Cox models of every Table 1 covariate against one endpoint.

The paper screened candidate prognostic factors one at a time and carried those with
``P < 0.10`` into a stepwise multivariable Cox model. :func:`univariate_cox_table` repeats
that screen for any endpoint and any cohort:

* the group column first (each other group against the reference group, the first in display
  order);
* then every covariate of :data:`bridge_hsct.paper.table1.TABLE1_ROWS` found in the data, coded as
  follows:

  - a number (age, donor age, cell doses): one hazard ratio per unit (per year, per
    10⁶ CD34+ cells/kg, ...);
  - a number shown in Table 1 as "above a threshold" (age > 40): 1 above, 0 at or below;
  - a 0/1 variable: 1 against 0;
  - a categorical variable with two levels: the second level against the first (levels in
    the order of :data:`bridge_hsct.cohort.schema.VARIABLES`, keeping only levels present);
  - a categorical (or ordinal) variable with more than two levels: one Cox model with an
    indicator per level against the first level (R's ``coxph(~ factor(x))``). Each level gets
    its hazard ratio and Wald P; the variable gets the global Wald test on ``k - 1`` degrees of
    freedom, which is the P compared with the 0.10 threshold.

One-covariate models are fitted by :func:`bridge_hsct.stats.survival.cox_univariate` (Newton
on risk-set sums, Efron ties, Wald intervals, as R's ``coxph``); the multi-level model uses
the same fitter and conventions. Patients with a missing value of the covariate are left out
of its model.

For an endpoint with a competing event (NRM: relapse competes) the competing event is
treated as censoring, so the hazard ratios are cause-specific.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from ..cohort.endpoints import as_censored, derive, known_status, missing_columns
from ..cohort.schema import BY_NAME
from ..render.disclosure import Disclosure
from ..render.formatting import ci_label, format_p, p_phrase, result_alpha
from ..render.tables import Table
from ..stats.survival import cox_univariate, fit_cox
from .outcomes import left_out_sentence
from .table1 import TABLE1_ROWS

#: The paper's threshold for carrying a univariate factor into the multivariable model.
SCREENING_P = 0.10

COLUMNS = ["endpoint", "variable", "label", "term", "level", "reference", "row", "n",
           "events", "hr", "lower", "upper", "alpha", "p_value", "test", "candidate", "reason"]


@dataclass(frozen=True)
class Covariate:
    """How one covariate enters its univariate Cox model.

    Parameters
    ----------
    variable : column of the cohort.
    label : what a reader sees (``"Age > 40 years"``, ``"Disease status"``).
    coding : ``"per_unit"``, ``"over"`` (1 above `threshold`), ``"two_levels"`` or
        ``"levels"`` (indicators against the first level).
    levels : for the categorical codings, the levels present, reference first.
    level_labels : display label of each level.
    threshold : for ``"over"``.
    unit : for ``"per_unit"``, the unit of one step (``"year"``).
    """

    variable: str
    label: str
    coding: str
    levels: tuple = ()
    level_labels: dict | None = None
    threshold: float | None = None
    unit: str = ""

    def name(self, level) -> str:
        """Display label of a level."""
        return str((self.level_labels or {}).get(level, level))


def _present_levels(values: pd.Series, order) -> list:
    found = list(pd.unique(values.dropna()))
    ordered = [lv for lv in order if lv in found]
    return ordered + sorted((lv for lv in found if lv not in ordered), key=str)


def _unit(var) -> str:
    unit = var.unit if var is not None else ""
    return {"years": "year", "": "unit"}.get(unit, f"1 {unit}")


def table1_covariates(data: pd.DataFrame, group_col: str, groups: list) -> tuple[list, list]:
    """The covariates of the univariate screen, in Table 1 order, with their coding.

    Parameters
    ----------
    data : validated cohort.
    group_col, groups : the compared groups, reference first; entered first.

    Returns
    -------
    covariates : list of Covariate
        The group column, then each Table 1 covariate present in `data` (follow-up, an outcome
        rather than a baseline factor, is left out).
    absent : list of str
        Table 1 covariates not in the data (or empty), to be reported.
    """
    group_var = BY_NAME.get(group_col)
    covariates = [Covariate(group_col, group_var.label if group_var else group_col,
                            "two_levels" if len(groups) == 2 else "levels",
                            levels=tuple(groups))]
    absent, seen = [], set()
    for row in TABLE1_ROWS:
        if row.variable == "followup_months" or (row.variable, row.how) in seen:
            continue
        seen.add((row.variable, row.how))
        if row.variable not in data or data[row.variable].isna().all():
            absent.append(row.variable)
            continue
        var = BY_NAME.get(row.variable)
        label = var.label if var else row.variable
        if row.how == "median":
            covariates.append(Covariate(row.variable, label, "per_unit", unit=_unit(var)))
        elif row.how == "over":
            unit = f" {var.unit}" if var and var.unit else ""
            covariates.append(Covariate(row.variable, f"{label} > {row.threshold:g}{unit}",
                                        "over", threshold=row.threshold))
        else:
            order = var.levels if var else ()
            levels = _present_levels(data[row.variable], order)
            labels = dict(var.level_labels) if var and var.level_labels else {}
            if var and var.kind == "binary":
                labels = {1: "yes", 0: "no"}
            coding = "levels" if len(levels) > 2 else "two_levels"
            covariates.append(Covariate(row.variable, label, coding, tuple(levels), labels))
    return covariates, list(dict.fromkeys(absent))


def _row(endpoint, cov: Covariate, term: str, level, reference, kind: str, n: int,
         events: int, hr=math.nan, lower=math.nan, upper=math.nan, p=math.nan,
         test: str = "Wald", reason: str | None = None) -> dict:
    return {"endpoint": endpoint, "variable": cov.variable, "label": cov.label, "term": term,
            "level": "" if level is None else str(level),
            "reference": "" if reference is None else str(reference), "row": kind, "n": n,
            "events": events, "hr": hr, "lower": lower, "upper": upper, "p_value": p,
            "test": test if not math.isnan(p) else "",
            "candidate": bool(p < SCREENING_P) and kind != "level",
            "reason": reason or ""}


NO_EVENT_IN_A_LEVEL = "a level has no events, so the hazard ratio would be 0 or infinite"


def _empty_level(x: np.ndarray, event: np.ndarray) -> bool:
    """Whether a 0/1 (or multi-level) coding has a level in which nobody has the event."""
    return bool(_levels_without_events(x, event))


def _levels_without_events(x: np.ndarray, event: np.ndarray) -> list:
    """The codes of `x` (0/1, or 0, 1, 2, ...) among whose patients nobody had the event
    (none when nobody had it at all: that is reported as "no events")."""
    known = ~np.isnan(x)
    if event[known].sum() == 0:
        return []
    return [lv for lv in np.unique(x[known]) if event[known & (x == lv)].sum() == 0]


def _no_event_reason(names: list[str]) -> str:
    """The reason of a row whose levels `names` have no event: it names them."""
    words = {"yes": "those with it", "no": "those without it"}
    return f"{NO_EVENT_IN_A_LEVEL} (no event in {', '.join(words.get(n, n) for n in names)})"


def _single(endpoint_name, cov: Covariate, time, event, x, term, level, reference, alpha):
    result = cox_univariate(time, event, x, alpha)
    reason = result.reason
    if reason and cov.coding != "per_unit" and _empty_level(x, event):
        names = ({0.0: f"≤ {cov.threshold:g}", 1.0: f"> {cov.threshold:g}"}
                 if cov.coding == "over" else {0.0: str(reference), 1.0: str(level)})
        reason = _no_event_reason([names[lv] for lv in _levels_without_events(x, event)])
    return _row(endpoint_name, cov, term, level, reference, "single", result.n, result.events,
                result.hr, result.lower, result.upper, result.p_value, reason=reason)


def cox_indicators(time, event, indicators: pd.DataFrame, alpha: float = 0.05) -> dict:
    """One Cox model with several covariates (Efron ties), with a global Wald test.

    Parameters
    ----------
    time, event : array_like
        Follow-up and 0/1 event indicator, without missing values.
    indicators : pandas.DataFrame
        One column per covariate (e.g. the indicators of the non-reference levels).
    alpha : float
        One minus the confidence level.

    Returns
    -------
    dict
        ``terms``: frame indexed by column with ``hr``, ``lower``, ``upper``, ``p_value``
        (Wald); ``chi2``, ``df`` and ``p_value`` of the global Wald test that all
        coefficients are 0; ``reason`` (None, or why nothing could be estimated: no events, a
        constant column, a convergence problem such as a level without events).
    """
    names = list(indicators.columns)
    empty = pd.DataFrame(np.nan, index=names, columns=["hr", "lower", "upper", "p_value"])

    def not_estimable(reason):
        return {"terms": empty, "chi2": math.nan, "df": len(names), "p_value": math.nan,
                "reason": reason}

    event = np.asarray(event, dtype=int)
    if event.sum() == 0:
        return not_estimable("no events")
    if (indicators.nunique() < 2).any():
        return not_estimable("a level has no patients")
    frame = indicators.assign(_time=np.asarray(time, float), _event=event)
    fitter, problem = fit_cox(frame, "_time", "_event", alpha)
    if problem:
        return not_estimable(problem)
    terms = fitter.summary.loc[names, ["hr", "lower", "upper", "p_value"]]
    beta = fitter.summary.loc[names, "coef"].to_numpy()
    covariance = fitter.covariance.loc[names, names].to_numpy()
    chi2 = float(beta @ np.linalg.solve(covariance, beta))
    return {"terms": terms, "chi2": chi2, "df": len(names),
            "p_value": float(stats.chi2.sf(chi2, len(names))), "reason": None}


@dataclass
class CoxScreen(Table):
    """The univariate Cox screen of one endpoint: a :class:`Table` whose highlighted rows
    have ``P < 0.10``, with what it was computed at.

    Parameters
    ----------
    alpha : one minus the confidence level of the intervals.
    absent : Table 1 covariates not in the data.
    skipped : why no model could be fitted (the endpoint's columns are absent), else None.
    """

    alpha: float = 0.05
    absent: list = field(default_factory=list)
    skipped: str | None = None


def univariate_cox_table(data: pd.DataFrame, endpoint: str, group_col: str, groups: list,
                         alpha: float = 0.05, *, disclosure: Disclosure) -> CoxScreen:
    """Hazard ratio of every baseline covariate for one endpoint, one covariate at a time.

    Parameters
    ----------
    data : validated cohort.
    endpoint : key of :data:`bridge_hsct.cohort.endpoints.ENDPOINTS` (``"os"``, ``"nrm"``, ...);
        competing events are censored (cause-specific hazards).
    group_col, groups : the compared groups, the first being the reference.
    alpha : one minus the confidence level.
    disclosure : the small-cell suppression of its counts (the chapter's).

    Returns
    -------
    CoxScreen
        ``numbers``: tidy frame, one row per hazard ratio (columns :data:`COLUMNS`; ``row`` is
        ``"single"`` for a one-covariate model, ``"variable"`` for the global test of a
        multi-level variable and ``"level"`` for each of its levels; ``candidate`` is
        ``p_value < 0.10``; ``alpha`` is the one the intervals were computed at);
        ``display``, ``highlight`` and ``notes`` as :func:`cox_display` and
        :func:`screen_notes` give them; ``absent``: Table 1 covariates not in the data.
    """
    missing = missing_columns(data, endpoint)
    if missing:
        return CoxScreen(pd.DataFrame(), pd.DataFrame(columns=COLUMNS).astype(
            {"candidate": bool}), alpha=alpha, skipped=f"the data have no column `{missing[0]}`",
            disclosure=disclosure)
    left_out = left_out_sentence(data, endpoint, "these models", disclosure=disclosure)
    data = data[known_status(data, endpoint)]
    outcome = as_censored(derive(data, endpoint))
    time, event = outcome["time"].to_numpy(float), outcome["cause"].to_numpy(int)
    covariates, absent = table1_covariates(data, group_col, groups)
    rows = []
    for cov in covariates:
        values = data[cov.variable]
        if cov.coding == "per_unit":
            x = values.to_numpy(float)
            rows.append(_single(endpoint, cov, time, event, x, f"per {cov.unit}", None, None,
                                alpha))
        elif cov.coding == "over":
            x = np.where(values.isna(), np.nan, (values > cov.threshold).astype(float))
            rows.append(_single(endpoint, cov, time, event, x,
                                f"> {cov.threshold:g} vs ≤ {cov.threshold:g}", "yes", "no",
                                alpha))
        elif len(cov.levels) < 2:
            known = values.notna().to_numpy()
            rows.append(_row(endpoint, cov, "", None, None, "single", int(known.sum()),
                             int(event[known].sum()), reason="only one level in the data"))
        elif cov.coding == "two_levels":
            reference, other = cov.levels
            x = np.where(values.isna(), np.nan, (values == other).astype(float))
            term = f"{cov.name(other)} vs {cov.name(reference)}"
            rows.append(_single(endpoint, cov, time, event, x, term, cov.name(other),
                                cov.name(reference), alpha))
        else:
            rows.extend(_levels_rows(endpoint, cov, values, time, event, alpha))
    numbers = pd.DataFrame(rows, columns=COLUMNS).assign(alpha=alpha)
    shown = cox_display(numbers)
    notes = screen_notes(alpha, shown["notes"], absent) + ([left_out] if left_out else [])
    return CoxScreen(shown["display"], numbers, notes,
                     highlight=shown["candidates"], alpha=alpha, absent=absent,
                     disclosure=disclosure)


def _levels_rows(endpoint, cov: Covariate, values: pd.Series, time, event, alpha) -> list:
    known = values.notna().to_numpy()
    reference, others = cov.levels[0], cov.levels[1:]
    indicators = pd.DataFrame({f"level_{i}": (values[known] == lv).astype(float).to_numpy()
                               for i, lv in enumerate(others)})
    fit = cox_indicators(time[known], event[known], indicators, alpha)
    codes = np.full(len(values), np.nan)
    for i, lv in enumerate(cov.levels):
        codes[(values == lv).to_numpy()] = i
    if fit["reason"] and _empty_level(codes, event):
        fit["reason"] = _no_event_reason([cov.name(cov.levels[int(i)])
                                          for i in _levels_without_events(codes, event)])
    rows = [_row(endpoint, cov, f"any level vs {cov.name(reference)}", None,
                 cov.name(reference), "variable", int(known.sum()), int(event[known].sum()),
                 p=fit["p_value"], test=f"Wald, {fit['df']} df", reason=fit["reason"])]
    for i, lv in enumerate(others):
        in_level = known & (values == lv).to_numpy()
        term = fit["terms"].iloc[i]
        rows.append(_row(endpoint, cov, f"{cov.name(lv)} vs {cov.name(reference)}",
                         cov.name(lv), cov.name(reference), "level", int(in_level.sum()),
                         int(event[in_level].sum()), term["hr"], term["lower"], term["upper"],
                         term["p_value"], reason=fit["reason"]))
    return rows


def _hr_text(row) -> str:
    if math.isnan(row["hr"]):
        return "" if row["row"] == "variable" else "not estimable"
    return f"{row['hr']:.2f} ({row['lower']:.2f}–{row['upper']:.2f})"


def cox_display(numbers: pd.DataFrame) -> dict:
    """Readable version of :func:`univariate_cox_table` for :func:`tables.render_table`.

    Returns
    -------
    dict
        ``display``: frame with Characteristic, Comparison, n, Events, HR (95% CI) (at the
        level of the numbers' ``alpha``), P value, ``P < 0.10`` and indent columns;
        ``candidates``: positions of the rows with ``P < 0.10``; ``notes``: why some hazard
        ratios could not be estimated.
    """
    rows, candidates, reasons = [], [], {}
    hr_column = f"HR ({ci_label(result_alpha(numbers))})" if len(numbers) else "HR"
    for _, r in numbers.iterrows():
        level_row = r["row"] == "level"
        rows.append({
            "Characteristic": r["level"] if level_row else r["label"],
            "Comparison": r["term"], "n": r["n"], "Events": r["events"],
            hr_column: _hr_text(r), "P value": format_p(r["p_value"]),
            "P < 0.10": "yes" if r["candidate"] else "", "indent": int(level_row),
        })
        if r["candidate"]:
            candidates.append(len(rows) - 1)
        if r["reason"] and r["row"] != "level":
            why, which = _short_reason(r["reason"])
            reasons.setdefault(why, []).append(f"{r['label']}{which}")
    notes = [f"Not estimable because {why}: {'; '.join(dict.fromkeys(labels))}."
             for why, labels in reasons.items()]
    if NO_EVENT_NOTE in reasons:  # the levels that do have events, also not estimable
        notes.append("A characteristic with several levels is fitted as one model of all "
                     "its levels: when one level has no event that model cannot be fitted, "
                     "so none of its levels has a hazard ratio, even those with events.")
    return {"display": pd.DataFrame(rows), "candidates": candidates, "notes": notes}


#: The note's words for a covariate with a level without events (the levels follow).
NO_EVENT_NOTE = "a level has no events (the hazard ratio would be 0 or infinite)"


def _short_reason(reason: str) -> tuple[str, str]:
    """The reason as a note groups it, and what to put after the characteristic's label
    (the levels without events)."""
    if reason.startswith("did not converge"):
        return "the model did not converge", ""
    if reason.startswith(NO_EVENT_IN_A_LEVEL):
        return NO_EVENT_NOTE, f" ({reason[len(NO_EVENT_IN_A_LEVEL):].strip(' ()')})"
    return reason, ""


def screen_notes(alpha: float, reasons: list[str], absent: list[str]) -> list[str]:
    """The notes under a univariate Cox table: how it was computed, why some hazard ratios
    could not be estimated, which covariates are not in the data."""
    notes = [f"Hazard ratios from one Cox model per characteristic (Efron ties, Wald "
             f"{ci_label(alpha)} and P). Highlighted: P < {SCREENING_P:.2f}, the "
             "paper's threshold for entering the multivariable model. For characteristics "
             "with more than two levels, the first line gives the global Wald test of all "
             "levels.", *reasons]
    if absent:
        notes.append("Not in the data, so left out: " + ", ".join(
            BY_NAME[v].label if v in BY_NAME else v for v in absent) + ".")
    return notes


def render_cox_table(table: CoxScreen, endpoint_label: str, table_id: str | None = None):
    """Render a univariate Cox table with the P < 0.10 rows highlighted, or say why it was
    not computed.

    Parameters
    ----------
    table : output of :func:`univariate_cox_table`.
    endpoint_label : e.g. ``"overall survival"``.
    table_id : HTML id of the table.
    """
    from IPython.display import Markdown

    if table.skipped:
        return Markdown(f"Univariate Cox models for {endpoint_label} are not computed: "
                        f"{table.skipped}.")
    return table.render(title=f"Univariate Cox models: {endpoint_label}",
                        subtitle="Hazard ratio per characteristic, one model each",
                        test_col=None, table_id=table_id)


def candidates_text(numbers: pd.DataFrame, endpoint_label: str) -> str:
    """One sentence naming the characteristics with ``P < 0.10`` (computed, for the prose)."""
    if numbers.empty:
        return f"For {endpoint_label}, the univariate screen cannot be run on these data."
    hits = numbers[numbers["candidate"] & (numbers["row"] != "level")]
    if hits.empty:
        return (f"For {endpoint_label}, no characteristic reaches P < {SCREENING_P:.2f} in "
                "the univariate screen.")
    parts = [f"{r['label']} ({r['term']}, {p_phrase(r['p_value'])})"
             for _, r in hits.iterrows()]
    return (f"For {endpoint_label}, the characteristics with P < {SCREENING_P:.2f} in the "
            "univariate screen are: " + "; ".join(parts) + ".")

"""IPTW statistics of the chapter: the covariate terms, the propensity model and
weights, balance, the weighted outcomes and their sensitivity to the analyst's choices (the
estimators are :mod:`bridge_hsct.stats.weighting`'s)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ...cohort.endpoints import (
    ENDPOINTS,
    as_censored,
    derive,
    missing_columns,
)
from ...cohort.schema import BY_NAME
from ...render.escaping import markdown_code
from ...stats import weighting as weighting_stats
from ...stats.survival import months_to_days
from ...stats.weighting import (
    PropensityFit,
    Trimming,
    ate_weights,
    curve_at,
    effective_sample_size,
    group_hazard_ratios,
    truncate_weights,
    weighted_km,
)
from ..table1 import TABLE1_ROWS

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
    return weights_of(model, data, group_col, trim_percentiles)


def weights_of(model: PropensityModel, data: pd.DataFrame, group_col: str,
               trim_percentiles=DEFAULT_TRIM_PERCENTILES) -> Weighting:
    """The stabilised generalised ATE weights of `model` (fitted on `data`) and their
    truncation: :func:`iptw` after its propensity model.

    Raises
    ------
    ValueError
        As :func:`iptw`.
    """
    data = _in_groups(data, group_col, model.groups)
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


# ---------------------------------------------------------------------------------------------
# Outcomes
# ---------------------------------------------------------------------------------------------
def _outcome(data: pd.DataFrame, endpoint: str) -> pd.DataFrame:
    return as_censored(derive(data, endpoint))


@dataclass
class OutcomeResult:
    """Unadjusted and weighted analyses of one endpoint (its curves are Supplementary
    Figure 6's panels, :data:`bridge_hsct.paper.iptw.figures.SUPPLEMENTARY_FIGURE6`)."""

    endpoint: str
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
        Landmark estimates (survival, or incidence
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
            value = curve_at(weighted_km(time[part], event[part], w[part]), landmark)
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
    # what no penalty or truncation changes, computed once: the patients' outcomes and the
    # terms whose balance is judged
    patients = _in_groups(data, group_col, groups)
    outcomes = {name: _outcome(patients, name) for name in analysed}
    columns, terms, _ = covariate_terms(patients, confounders, "all")
    binary = [t.binary for t in terms]
    for penalty in penalties:
        try:
            model = propensity_model(data, group_col, groups, confounders, penalty)
        except (ValueError, np.linalg.LinAlgError) as error:
            model, failure = None, str(error)
        for trim in trims:
            base = {"penalty": penalty, "trim_lower": trim[0], "trim_upper": trim[1],
                    "alpha": alpha}
            try:
                if model is None:
                    raise ValueError(failure)
                weighting = weights_of(model, data, group_col, trim)
            except (ValueError, np.linalg.LinAlgError) as error:
                rows.extend({**base, "endpoint": name, "group": group, "reason": str(error)}
                            for name in analysed for group in groups[1:])
                continue
            if not weighting.model.fit.converged:
                rows.extend({**base, "endpoint": name, "group": group,
                             "reason": "the propensity model did not converge"}
                            for name in analysed for group in groups[1:])
                continue
            group, weight = (weighting.frame["group"].to_numpy(),
                             weighting.frame["weight"].to_numpy())
            balance = weighting_stats.balance(columns, binary, group, weight, weighting.groups)
            summary = weighting.summary()
            extra = {"smallest_group_n": int(summary["n"].min()),
                     "smallest_effective_n": float(summary.loc[summary["n"].idxmin(),
                                                                "effective_n"]),
                     "max_abs_smd_after": float(balance["smd_after"].abs().max())}
            for name in analysed:
                outcome = outcomes[name]
                for h in group_hazard_ratios(outcome["time"], outcome["cause"], group, groups,
                                             weight, alpha):
                    rows.append({**base, "endpoint": name, "group": h.group, "hr": h.hr,
                                 "lower": h.lower, "upper": h.upper, "p_value": h.p_value,
                                 **extra, "reason": h.reason or ""})
    return pd.DataFrame(rows, columns=SENSITIVITY_COLUMNS)



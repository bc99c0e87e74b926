"""Inverse probability of treatment weighting (IPTW): the paper's sensitivity analysis.

The paper re-compared the groups after weighting each patient by the inverse of the
probability of receiving the treatment they received, given their baseline characteristics
(its Supplementary Fig. 6: OS, PFS, GRFS and grade III–IV aGVHD). The steps here:

1. **Propensity model** (:func:`fit_propensity`): a logistic model (statsmodels) of belonging
   to the non-reference group (the second group in display order, CAR-T in the paper) rather
   than the reference group, on a small pre-declared set of confounders
   (:data:`DEFAULT_CONFOUNDERS`) among those present in the data. Covariates are standardised
   (mean 0, SD 1) and the log-odds ratios carry a ridge (L2) penalty ``λ/2 · Σβ²`` with
   ``λ = 1`` (:data:`DEFAULT_PENALTY`; the intercept is not penalised), i.e. a normal prior
   with SD 1 on each per-SD log-odds ratio. With 36 patients, 9 of them in one group, an
   unpenalised model on the paper's "all covariates" separates the groups perfectly (graft
   source alone nearly does) and the maximum-likelihood propensities run to 0 and 1; the
   penalty keeps them finite at the cost of a little residual imbalance, which the balance
   table shows. ``penalty=0`` gives the ordinary maximum-likelihood fit.
2. **Stabilised weights** (:func:`stabilised_weights`): ``P(A = a) / P(A = a | X)``, so that
   each group's weights average about 1 and the weighted sample keeps roughly the real size.
3. **Trimming** (:func:`truncate_weights`): weights below the 1st or above the 99th percentile
   of all weights are set to those percentiles (truncation: no patient is dropped); how many
   and the thresholds are reported.
4. **Balance** (:func:`balance_table`): standardised mean differences of every Table 1
   covariate (each level of a categorical one) before and after weighting.
5. **Outcomes** (:func:`iptw_outcomes`): Kaplan–Meier curves without and with weights
   (lifelines ``KaplanMeierFitter(weights=...)``) and the hazard ratio of the non-reference
   group from an unweighted Cox model and from a weighted one (Breslow ties) with robust
   (Lin–Wei sandwich) standard errors. For grade III–IV aGVHD, relapse and death
   before it are censored (the paper's Kaplan–Meier convention), so its weighted curve is a
   1 − Kaplan–Meier incidence and its hazard ratio cause-specific.

The robust variance treats the weights as known; it ignores the uncertainty of the estimated
propensities (usually conservative for the ATE, Austin 2016).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import statsmodels.api as sm  # noqa: E402
from lifelines import KaplanMeierFitter  # noqa: E402
from lifelines.exceptions import StatisticalWarning  # noqa: E402
from scipy import stats  # noqa: E402
from scipy.special import expit  # noqa: E402
from statsmodels.tools.sm_exceptions import (  # noqa: E402
    ConvergenceWarning as StatsmodelsConvergenceWarning,
)
from statsmodels.tools.sm_exceptions import PerfectSeparationWarning  # noqa: E402

from ..cohort.endpoints import ENDPOINTS, as_censored, derive  # noqa: E402
from ..cohort.schema import BY_NAME  # noqa: E402
from ..render.disclosure import count_text, is_small, min_cell_count  # noqa: E402
from ..render.escaping import markdown_code, markdown_text, plot_text  # noqa: E402
from ..render.figures import group_colours  # noqa: E402
from ..render.formatting import ci_label, format_p, result_alpha  # noqa: E402
from ..stats.breslow import MAX_ABS_COEF, RiskSets, maximise, penalised_objective, robust_variance  # noqa: E402
from ..stats.survival import cox_univariate, months_to_days, to_months  # noqa: E402
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
    """A fitted propensity model.

    Attributes
    ----------
    reference, treated : the two groups; the model gives P(treated | covariates).
    terms : the model's terms.
    coefficients : log-odds ratio per SD of each term (and the intercept), a Series.
    penalty : ridge λ (0: maximum likelihood).
    propensity : P(treated | covariates) of each patient, indexed like the data.
    skipped : confounders left out, with the reason.
    imputed : term → number of missing values replaced by the term's mean.
    """

    reference: object
    treated: object
    terms: list
    coefficients: pd.Series
    penalty: float
    propensity: pd.Series
    skipped: dict = field(default_factory=dict)
    imputed: dict = field(default_factory=dict)


def fit_propensity(data: pd.DataFrame, group_col: str, groups: list,
                   confounders=DEFAULT_CONFOUNDERS,
                   penalty: float = DEFAULT_PENALTY) -> PropensityModel:
    """Logistic model of belonging to ``groups[1]`` rather than ``groups[0]``.

    Parameters
    ----------
    data : cohort with exactly the two groups in `group_col`.
    group_col, groups : the two groups, reference first.
    confounders : candidate covariates; those absent or constant are skipped (reported).
    penalty : ridge λ on the standardised coefficients (intercept unpenalised); the
        objective is ``-loglik + λ/2 · Σβ²`` (statsmodels ``GLM.fit_regularized`` with
        ``L1_wt=0`` and ``alpha = λ/n``). 0 gives the maximum-likelihood ``Logit`` fit.

    Returns
    -------
    PropensityModel
    """
    if len(groups) != 2:
        raise ValueError(f"IPTW compares two groups; got {len(groups)}: {groups}")
    if penalty < 0:
        raise ValueError("penalty must be >= 0")
    treated = (data[group_col] == groups[1]).to_numpy(float)
    columns, terms, skipped = covariate_terms(data, confounders, "reference")
    imputed = {t.name: int(columns[t.name].isna().sum()) for t in terms
               if columns[t.name].isna().any()}
    filled = columns.fillna(columns.mean())
    keep = [t for t in terms if filled[t.name].std(ddof=0) > 0]
    for t in terms:
        if t not in keep:
            skipped[t.name] = "constant once missing values are filled"
    names = [t.name for t in keep]
    standardised = (filled[names] - filled[names].mean()) / filled[names].std(ddof=0)
    design = sm.add_constant(standardised.to_numpy(float), has_constant="add")
    n = len(treated)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PerfectSeparationWarning)
        warnings.simplefilter("ignore", StatsmodelsConvergenceWarning)
        if penalty > 0 and names:
            alpha = np.r_[0.0, np.full(len(names), penalty / n)]
            fit = sm.GLM(treated, design, family=sm.families.Binomial()).fit_regularized(
                method="elastic_net", alpha=alpha, L1_wt=0.0)
            params = np.asarray(fit.params, float)
        else:
            params = np.asarray(sm.Logit(treated, design).fit(disp=0).params, float)
    propensity = pd.Series(expit(design @ params), index=data.index, name="propensity")
    coefficients = pd.Series(params, index=["intercept", *names], name="log_odds_ratio_per_sd")
    return PropensityModel(groups[0], groups[1], keep, coefficients, penalty, propensity,
                           skipped, imputed)


def stabilised_weights(treated, propensity) -> np.ndarray:
    """Stabilised inverse probability of treatment weights (ATE).

    ``w = P(A = 1) / e(X)`` for a treated patient and ``P(A = 0) / (1 - e(X))`` for a
    reference patient, with ``P(A = 1)`` the share of treated patients and ``e(X)`` the
    propensity.

    Parameters
    ----------
    treated : array_like of bool or 0/1
    propensity : array_like of probabilities in (0, 1)

    Returns
    -------
    numpy.ndarray
    """
    a = np.asarray(treated, dtype=float)
    e = np.asarray(propensity, dtype=float)
    if a.shape != e.shape:
        raise ValueError("treated and propensity must have the same length")
    if np.any((e <= 0) | (e >= 1)):
        raise ValueError("propensities must lie strictly between 0 and 1")
    share = a.mean()
    return np.where(a == 1, share / e, (1 - share) / (1 - e))


@dataclass(frozen=True)
class Trimming:
    """How the weights were truncated."""

    lower_percentile: float
    upper_percentile: float
    lower_bound: float
    upper_bound: float
    n_below: int
    n_above: int

    @property
    def n_trimmed(self) -> int:
        """Number of patients whose weight was changed."""
        return self.n_below + self.n_above


def truncate_weights(weights, percentiles=DEFAULT_TRIM_PERCENTILES):
    """Set weights below/above two percentiles of all weights to those percentiles.

    Parameters
    ----------
    weights : array_like
    percentiles : (lower, upper) in [0, 100], e.g. ``(1, 99)``; ``(0, 100)`` changes nothing.

    Returns
    -------
    truncated : numpy.ndarray
    trimming : Trimming
        The percentiles, the bounds they give (linear interpolation, numpy's default) and how
        many weights were raised to the lower bound or lowered to the upper one.
    """
    w = np.asarray(weights, dtype=float)
    low_pct, high_pct = percentiles
    if not 0 <= low_pct <= high_pct <= 100:
        raise ValueError("percentiles must satisfy 0 <= lower <= upper <= 100")
    low, high = np.percentile(w, [low_pct, high_pct])
    truncated = np.clip(w, low, high)
    return truncated, Trimming(float(low_pct), float(high_pct), float(low), float(high),
                               int((w < low).sum()), int((w > high).sum()))


def effective_sample_size(weights) -> float:
    """Kish's effective sample size, ``(Σw)² / Σw²``."""
    w = np.asarray(weights, dtype=float)
    return float(w.sum() ** 2 / (w ** 2).sum()) if len(w) else math.nan


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
    model = fit_propensity(data, group_col, groups, confounders, penalty)
    treated = (data[group_col] == groups[1]).to_numpy(int)
    raw = stabilised_weights(treated, model.propensity.to_numpy())
    weight, trimming = truncate_weights(raw, trim_percentiles)
    frame = pd.DataFrame({
        "patient_id": data["patient_id"] if "patient_id" in data else data.index,
        "group": data[group_col], "treated": treated, "propensity": model.propensity,
        "raw_weight": raw, "weight": weight, "trimmed": raw != weight,
    }, index=data.index)
    return Weighting(model, frame, trimming)


# ---------------------------------------------------------------------------------------------
# Balance
# ---------------------------------------------------------------------------------------------
def _weighted_mean(x: np.ndarray, w: np.ndarray) -> float:
    return float(np.sum(w * x) / np.sum(w))


def standardised_mean_difference(x, treated, weights=None, binary: bool | None = None) -> float:
    """Standardised mean difference of a covariate, treated minus reference.

    ``(m1 - m0) / sqrt((s1² + s0²) / 2)``: the means ``m`` are weighted when `weights` are
    given; the variances ``s²`` always come from the *unweighted* groups (``p (1 - p)`` for a
    0/1 covariate, the sample variance with ``n - 1`` otherwise), so that weighting changes
    only the numerator (the convention of R's cobalt). Missing values are left out.

    Parameters
    ----------
    x : array_like
    treated : array_like of bool or 0/1
    weights : array_like or None
    binary : whether `x` is 0/1; by default, whether it only holds 0 and 1.

    Returns
    -------
    float
        NaN when both groups have no variance.
    """
    x = np.asarray(x, dtype=float)
    a = np.asarray(treated, dtype=float) == 1
    w = np.ones_like(x) if weights is None else np.asarray(weights, dtype=float)
    known = ~np.isnan(x)
    x, a, w = x[known], a[known], w[known]
    if binary is None:
        binary = bool(np.all(np.isin(x, (0.0, 1.0))))
    x1, x0 = x[a], x[~a]
    if binary:
        p1, p0 = x1.mean(), x0.mean()
        spread = (p1 * (1 - p1) + p0 * (1 - p0)) / 2
    else:
        spread = (x1.var(ddof=1) + x0.var(ddof=1)) / 2
    difference = _weighted_mean(x1, w[a]) - _weighted_mean(x0, w[~a])
    if spread <= 0:
        return math.nan
    return float(difference / math.sqrt(spread))


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
        propensity model), mean_reference / mean_treated unweighted and weighted (proportions
        for 0/1 terms), smd_before, smd_after.
    """
    if variables is None:
        variables = [r.variable for r in TABLE1_ROWS if r.variable != "followup_months"]
    columns, terms, _ = covariate_terms(data, variables, "all")
    a = weighting.frame["treated"].to_numpy()
    w = weighting.frame["weight"].to_numpy()
    in_model = {t.variable for t in weighting.model.terms}
    rows = []
    for term in terms:
        x = columns[term.name].to_numpy(float)
        known = ~np.isnan(x)
        treated, reference = known & (a == 1), known & (a == 0)
        rows.append({
            "term": term.name, "variable": term.variable, "label": term.label,
            "binary": term.binary, "in_model": term.variable in in_model,
            "mean_reference": x[reference].mean(), "mean_treated": x[treated].mean(),
            "weighted_mean_reference": _weighted_mean(x[reference], w[reference]),
            "weighted_mean_treated": _weighted_mean(x[treated], w[treated]),
            "smd_before": standardised_mean_difference(x, a, None, term.binary),
            "smd_after": standardised_mean_difference(x, a, w, term.binary),
        })
    return pd.DataFrame(rows)


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
# Weighted Kaplan–Meier and Cox
# ---------------------------------------------------------------------------------------------
def weighted_km(time, event, weights=None) -> pd.DataFrame:
    """Kaplan–Meier curve with case weights (lifelines ``KaplanMeierFitter``).

    Parameters
    ----------
    time, event : array_like
        Follow-up and 0/1 event indicator.
    weights : array_like or None
        Case weights (None: all 1).

    Returns
    -------
    pandas.DataFrame
        One row per distinct time (starting at 0): ``time``, ``survival`` (lifelines'
        weighted product-limit estimate), ``at_risk`` (sum of the weights of the patients
        with follow-up ``>= time``), ``events`` and ``censored`` (sums of the weights of the
        patients with an event, or censored, at ``time``). The sums are computed here: the
        ``censored`` column of lifelines' weighted event table is not a sum of weights.
    """
    t = np.asarray(time, dtype=float)
    e = np.asarray(event, dtype=int)
    w = np.ones_like(t) if weights is None else np.asarray(weights, dtype=float)
    fitter = KaplanMeierFitter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StatisticalWarning)
        fitter.fit(t, e, weights=w)
    survival = fitter.survival_function_.iloc[:, 0]
    times = np.union1d([0.0], t)
    return pd.DataFrame({
        "time": times,
        "survival": survival.reindex(times, method="ffill").to_numpy(float),
        "at_risk": weighted_at_risk(t, w, times),
        "events": [float(w[(t == x) & (e == 1)].sum()) for x in times],
        "censored": [float(w[(t == x) & (e == 0)].sum()) for x in times],
    })


def curve_at(curve: pd.DataFrame, t: float) -> float:
    """Value of a :func:`weighted_km` curve at time `t` (NaN beyond the last time)."""
    times = curve["time"].to_numpy()
    if t > times[-1]:
        return math.nan
    return float(curve["survival"].iloc[int(np.searchsorted(times, t, side="right")) - 1])


def weighted_at_risk(time, weights, at_times) -> np.ndarray:
    """Sum of the weights of the patients with follow-up ``>= t``, at each time."""
    t = np.asarray(time, dtype=float)
    w = np.asarray(weights, dtype=float)
    return np.array([w[t >= x].sum() for x in np.atleast_1d(at_times)])


@dataclass(frozen=True)
class HazardRatio:
    """Hazard ratio of the non-reference group, with how it was estimated."""

    analysis: str
    hr: float
    lower: float
    upper: float
    p_value: float
    se_log_hr: float
    n: int
    events: int
    reason: str | None = None


def weighted_cox(time, event, treated, weights, alpha: float = 0.05,
                 robust: bool = True) -> HazardRatio:
    """Hazard ratio of treated vs reference from a weighted Cox model.

    Breslow's partial likelihood with case weights (:mod:`bridge_hsct.stats.breslow`, as R's
    ``coxph(..., weights = w, ties = "breslow")``); with ``robust=True`` the Wald interval
    and P use the Lin–Wei sandwich variance, the standard choice for estimated weights.

    Returns
    -------
    HazardRatio
        NaN with a reason when not estimable (no events, one group without events).
    """
    t = np.asarray(time, dtype=float)
    e = np.asarray(event, dtype=int)
    a = np.asarray(treated, dtype=float)
    w = np.asarray(weights, dtype=float)
    analysis = "IPTW Cox, robust SE" if robust else "weighted Cox, model SE"
    n, events = len(t), int(e.sum())

    def not_estimable(reason):
        return HazardRatio(analysis, math.nan, math.nan, math.nan, math.nan, math.nan, n,
                           events, reason)

    if events == 0:
        return not_estimable("no events")
    if e[a == 1].sum() == 0 or e[a == 0].sum() == 0:
        return not_estimable("no events in one group")
    sets = RiskSets(t, e == 1, a[:, None], w)
    beta, _, converged, _ = maximise(sets)
    if not converged or abs(beta[0]) > MAX_ABS_COEF:
        return not_estimable("did not converge")
    if robust:
        variance = robust_variance(beta, sets)
    else:
        variance = np.linalg.inv(penalised_objective(beta, sets)[2])
    b, se = float(beta[0]), math.sqrt(variance[0, 0])
    z = stats.norm.ppf(1 - alpha / 2)
    return HazardRatio(analysis, math.exp(b), math.exp(b - z * se), math.exp(b + z * se),
                       float(2 * stats.norm.sf(abs(b) / se)), se, n, events)


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
def describe_weighting(weighting: Weighting, balance: pd.DataFrame) -> str:
    """Computed paragraphs about the model, the weights and the balance (MyST Markdown)."""
    model = weighting.model
    summary = weighting.summary()
    used = ", ".join(t.label for t in model.terms) or "no covariate"
    skipped = (" Left out: " + ", ".join(f"{v} ({why})" for v, why in model.skipped.items())
               + "." if model.skipped else "")
    imputed = (" Missing values replaced by the mean: " + ", ".join(
        f"{k} ({count_text(n)})" for k, n in model.imputed.items()) + "." if model.imputed
        else "")
    penalty = (f"a ridge penalty λ = {model.penalty:g} on the standardised coefficients"
               if model.penalty > 0 else "no penalty (maximum likelihood)")
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


def describe_limits(weighting: Weighting, outcomes: dict) -> str:
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
                 f"{in_sentence_label(widest['endpoint'])}, runs from {widest['lower']:.2f} to "
                 f"{widest['upper']:.2f}.")
    return text


def in_sentence_label(endpoint: str) -> str:
    """An endpoint's label as it reads inside a sentence."""
    from .subgroups import in_sentence
    return in_sentence(ENDPOINTS[endpoint].label)


def _ordinal(x: float) -> str:
    if not float(x).is_integer():
        return f"{x:g}th"
    n = int(x)
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def describe_events(outcomes: dict) -> str:
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


@dataclass
class IptwReport:
    """Everything the IPTW chapter shows, computed and saved by :func:`iptw_report`.

    :meth:`show` returns what a notebook cell displays for each part: a great-tables table,
    or Markdown (text, figures, or a note saying why the part is missing).
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

    def show(self, part: str):
        """Displayable of one part: ``"weights"``, ``"coefficients"``, ``"weight_table"``,
        ``"balance"``, ``"love_plot"``, ``"events"``, ``"figures"``, ``"hazard_ratios"``,
        ``"landmarks"``, ``"sensitivity"``, ``"limits"`` or ``"downloads"``."""
        from IPython.display import Markdown

        if self.skipped:
            if part == "weights":
                return Markdown(f":::{{note}} IPTW analysis not run\n{self.skipped}.\n:::\n")
            return Markdown("")
        return getattr(self, f"_show_{part}")()

    # -- parts -------------------------------------------------------------------------------
    def _show_weights(self):
        from IPython.display import Markdown
        return Markdown(describe_weighting(self.weighting, self.balance))

    def _show_coefficients(self):
        from ..render.tables import render_table
        coefficients = self.weighting.model.coefficients
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
                            notes=[f"Ridge penalty λ = {self.weighting.model.penalty:g}; "
                                   "the intercept is not penalised."],
                            stub="Term", test_col=None, indent_col=None,
                            table_id="iptw-propensity-model")

    def _show_weight_table(self):
        from ..render.tables import render_table
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

    def _show_balance(self):
        from ..render.tables import render_table
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

    def _show_love_plot(self):
        from IPython.display import Markdown

        from .subgroups import figure_markdown
        return Markdown(figure_markdown(
            self.figures["balance"], "figure-iptw-balance",
            "Dot plot of absolute standardised mean differences per covariate, before and "
            "after weighting",
            "**Covariate balance.** Absolute standardised mean difference of each Table 1 "
            f"term before (open circles) and after (filled) weighting; dashed line at "
            f"{SMD_THRESHOLD:g}; starred terms are in the propensity model.",
            "the balance plot"))

    def _show_limits(self):
        from IPython.display import Markdown
        return Markdown(describe_limits(self.weighting, self.outcomes))

    def _show_events(self):
        from IPython.display import Markdown
        return Markdown(describe_events(self.outcomes))

    def _show_figures(self):
        from IPython.display import Markdown

        from .subgroups import figure_markdown, in_sentence
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

    def _show_hazard_ratios(self):
        from ..render.tables import render_table
        return render_table(hazard_ratio_display(self.outcomes, self.groups),
                            title="Hazard ratios without and with weighting",
                            subtitle=f"{self.groups[1]} vs {self.groups[0]}",
                            notes=["Unadjusted: Cox model, Efron ties, model-based (Wald) SE. "
                                   "IPTW: Cox model, Breslow ties, with the stabilised, "
                                   "truncated weights and a robust (sandwich) SE.",
                                   "Grade III–IV aGVHD: relapse and death before it censored "
                                   "(cause-specific hazard)."],
                            stub="Analysis", test_col=None, table_id="iptw-hazard-ratios")

    def _show_landmarks(self):
        from ..render.tables import render_table
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

    def _show_sensitivity(self):
        from ..render.tables import render_table
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

    def _show_downloads(self):
        from IPython.display import Markdown
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
    from ..render.figures import save_figure
    from ..render.tables import save_table

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
            trim_upper_bound=trim.upper_bound, penalty=report.weighting.model.penalty),
        "iptw_propensity_model": report.weighting.model.coefficients.rename_axis("term")
        .reset_index(),
        "iptw_balance": report.balance,
        "iptw_landmarks": report.outcomes["landmarks"],
        "iptw_hazard_ratios": report.outcomes["hazard_ratios"],
        "iptw_sensitivity": report.sensitivity,
    }
    for name, frame in tables.items():
        report.csv[name] = (save_table(frame, out, name), CSV_CONTENTS[name])
    return report

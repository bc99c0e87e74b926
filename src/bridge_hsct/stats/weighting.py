"""Inverse probability of treatment weighting: propensity, weights, balance, weighted outcomes.

1. **Propensity model** (:func:`fit_propensity`): a logistic model (statsmodels) of being
   treated on numeric covariates, standardised (mean 0, SD 1), with a ridge (L2) penalty
   ``λ/2 · Σβ²`` on the log-odds ratios (the intercept is not penalised), i.e. a normal prior
   with SD ``1/√λ`` on each per-SD log-odds ratio; it keeps the propensities finite when a
   small sample separates the groups. ``penalty=0`` gives the maximum-likelihood fit.
2. **Stabilised weights** (:func:`stabilised_weights`): ``P(A = a) / P(A = a | X)``, so that
   each group's weights average about 1 and the weighted sample keeps roughly the real size;
   **truncation** (:func:`truncate_weights`) at two percentiles of all weights.
3. **Balance** (:func:`standardised_mean_difference`, :func:`balance`): standardised mean
   differences before and after weighting, with cobalt's conventions.
4. **Outcomes**: Kaplan–Meier curves with case weights and weighted numbers at risk
   (:func:`weighted_km`, :func:`weighted_at_risk`), and the hazard ratio of a weighted Cox
   model (Breslow ties) with the Lin–Wei robust variance (:func:`weighted_cox`). The robust
   variance treats the weights as known; it ignores the uncertainty of the estimated
   propensities (usually conservative for the ATE, Austin 2016).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
import statsmodels.api as sm
from lifelines import KaplanMeierFitter
from lifelines.exceptions import StatisticalWarning
from scipy import stats
from scipy.special import expit
from statsmodels.tools.sm_exceptions import (
    ConvergenceWarning as StatsmodelsConvergenceWarning,
)
from statsmodels.tools.sm_exceptions import PerfectSeparationWarning

from .breslow import MAX_ABS_COEF, RiskSets, maximise, penalised_objective, robust_variance


# ---------------------------------------------------------------------------------------------
# Propensity model and weights
# ---------------------------------------------------------------------------------------------
@dataclass
class PropensityFit:
    """A fitted propensity model.

    Attributes
    ----------
    coefficients : log-odds ratio per SD of each covariate used, after ``intercept``.
    penalty : ridge λ (0: maximum likelihood).
    propensity : P(treated | covariates) of each patient, indexed like the covariates.
    imputed : covariate → number of missing values replaced by the covariate's mean.
    constant : covariates left out because they are constant once missing values are filled.
    """

    coefficients: pd.Series
    penalty: float
    propensity: pd.Series
    imputed: dict
    constant: list


def fit_propensity(covariates: pd.DataFrame, treated, penalty: float) -> PropensityFit:
    """Logistic model of being treated, on standardised covariates with a ridge penalty.

    Parameters
    ----------
    covariates : one numeric column per term (NaN where unknown: replaced by the column's
        mean); may have no columns (intercept-only model).
    treated : array_like of bool or 0/1, one per row of `covariates`.
    penalty : ridge λ on the standardised coefficients (intercept unpenalised); the
        objective is ``-loglik + λ/2 · Σβ²`` (statsmodels ``GLM.fit_regularized`` with
        ``L1_wt=0`` and ``alpha = λ/n``). 0 gives the maximum-likelihood ``Logit`` fit.

    Returns
    -------
    PropensityFit
    """
    if penalty < 0:
        raise ValueError("penalty must be >= 0")
    a = np.asarray(treated, dtype=float)
    imputed = {name: int(covariates[name].isna().sum()) for name in covariates
               if covariates[name].isna().any()}
    filled = covariates.fillna(covariates.mean())
    names = [name for name in filled if filled[name].std(ddof=0) > 0]
    constant = [name for name in filled if name not in names]
    standardised = (filled[names] - filled[names].mean()) / filled[names].std(ddof=0)
    design = sm.add_constant(standardised.to_numpy(float), has_constant="add")
    n = len(a)
    with warnings.catch_warnings():
        # separation is what the penalty is for; without it the fit says so by its weights
        warnings.simplefilter("ignore", PerfectSeparationWarning)
        warnings.simplefilter("ignore", StatsmodelsConvergenceWarning)
        if penalty > 0 and names:
            alpha = np.r_[0.0, np.full(len(names), penalty / n)]
            fit = sm.GLM(a, design, family=sm.families.Binomial()).fit_regularized(
                method="elastic_net", alpha=alpha, L1_wt=0.0)
            params = np.asarray(fit.params, float)
        else:
            params = np.asarray(sm.Logit(a, design).fit(disp=0).params, float)
    propensity = pd.Series(expit(design @ params), index=covariates.index, name="propensity")
    coefficients = pd.Series(params, index=["intercept", *names], name="log_odds_ratio_per_sd")
    return PropensityFit(coefficients, penalty, propensity, imputed, constant)


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
    """How the weights were truncated: the percentiles, the bounds they gave and how many
    weights were raised to the lower bound or lowered to the upper one."""

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


def truncate_weights(weights, percentiles):
    """Set weights below/above two percentiles of all weights to those percentiles.

    Parameters
    ----------
    weights : array_like
    percentiles : (lower, upper) in [0, 100], e.g. ``(1, 99)``; ``(0, 100)`` changes nothing.

    Returns
    -------
    truncated : numpy.ndarray
    trimming : Trimming
        The bounds come from linear interpolation, numpy's default.
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
    """Kish's effective sample size, ``(Σw)² / Σw²`` (NaN without weights)."""
    w = np.asarray(weights, dtype=float)
    return float(w.sum() ** 2 / (w ** 2).sum()) if len(w) else math.nan


# ---------------------------------------------------------------------------------------------
# Balance
# ---------------------------------------------------------------------------------------------
def weighted_mean(x, weights) -> float:
    """``Σ w x / Σ w``."""
    x, w = np.asarray(x, dtype=float), np.asarray(weights, dtype=float)
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
    difference = weighted_mean(x1, w[a]) - weighted_mean(x0, w[~a])
    if spread <= 0:
        return math.nan
    return float(difference / math.sqrt(spread))


def balance(covariates: pd.DataFrame, binary, treated, weights) -> pd.DataFrame:
    """Means and standardised mean differences of each covariate before and after weighting.

    Parameters
    ----------
    covariates : one numeric column per term (NaN where unknown: left out of that term).
    binary : per column of `covariates`, whether it is a 0/1 term.
    treated : array_like of bool or 0/1.
    weights : array_like of case weights.

    Returns
    -------
    pandas.DataFrame
        One row per column: term, mean_reference, mean_treated (unweighted; proportions for
        0/1 terms), weighted_mean_reference, weighted_mean_treated, smd_before, smd_after.
    """
    a = np.asarray(treated)
    w = np.asarray(weights, dtype=float)
    rows = []
    for name, is_binary in zip(covariates.columns, binary, strict=True):
        x = covariates[name].to_numpy(float)
        known = ~np.isnan(x)
        in_treated, in_reference = known & (a == 1), known & (a == 0)
        rows.append({
            "term": name,
            "mean_reference": x[in_reference].mean(), "mean_treated": x[in_treated].mean(),
            "weighted_mean_reference": weighted_mean(x[in_reference], w[in_reference]),
            "weighted_mean_treated": weighted_mean(x[in_treated], w[in_treated]),
            "smd_before": standardised_mean_difference(x, a, None, is_binary),
            "smd_after": standardised_mean_difference(x, a, w, is_binary),
        })
    return pd.DataFrame(rows, columns=["term", "mean_reference", "mean_treated",
                                       "weighted_mean_reference", "weighted_mean_treated",
                                       "smd_before", "smd_after"])


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
        # lifelines warns that weighted curves' variances are approximate: none is used
        warnings.simplefilter("ignore", StatisticalWarning)
        fitter.fit(t, e, weights=w)
    survival = fitter.survival_function_.iloc[:, 0]
    times = np.union1d([0.0], t)
    at_time = np.searchsorted(times, t)  # every t is one of `times`
    return pd.DataFrame({
        "time": times,
        "survival": survival.reindex(times, method="ffill").to_numpy(float),
        "at_risk": weighted_at_risk(t, w, times),
        "events": np.bincount(at_time, weights=w * (e == 1), minlength=len(times)),
        "censored": np.bincount(at_time, weights=w * (e == 0), minlength=len(times)),
    })


def curve_at(curve: pd.DataFrame, t: float) -> float:
    """Value of a :func:`weighted_km` curve at time `t` (NaN beyond the last time)."""
    times = curve["time"].to_numpy()
    if t > times[-1]:
        return math.nan
    return float(curve["survival"].iloc[int(np.searchsorted(times, t, side="right")) - 1])


def weighted_at_risk(time, weights, at_times) -> np.ndarray:
    """Sum of the weights of the patients with follow-up ``>= t``, at each time ``t``."""
    t = np.asarray(time, dtype=float)
    w = np.asarray(weights, dtype=float)
    order = np.argsort(t, kind="stable")
    # weight of everyone from each position of the sorted times to the end, then 0
    from_here = np.r_[np.cumsum(w[order][::-1])[::-1], 0.0]
    return from_here[np.searchsorted(t[order], np.atleast_1d(at_times), side="left")]


@dataclass(frozen=True)
class HazardRatio:
    """Hazard ratio of the treated group, with how it was estimated.

    Attributes
    ----------
    analysis : the model and its standard error, in words.
    hr, lower, upper, p_value : estimate, Wald interval and P (NaN when not estimable).
    se_log_hr : standard error of the log hazard ratio.
    n, events : patients and events.
    reason : why it could not be estimated (None when it was).
    """

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

    Parameters
    ----------
    time, event : array_like
        Follow-up and 0/1 event indicator.
    treated : array_like of bool or 0/1
    weights : array_like of case weights.
    alpha : one minus the confidence level.
    robust : sandwich (True) or model-based (False) variance.

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

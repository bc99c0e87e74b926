"""Inverse probability of treatment weighting for two or more groups: propensity, weights,
balance, weighted outcomes.

1. **Propensity model** (:func:`fit_propensity`): a multinomial logistic model of the group
   (statsmodels ``MNLogit``'s likelihood, score and Hessian; the first group is the base
   category) on numeric covariates, standardised (mean 0, SD 1), with a ridge (L2) penalty
   ``λ/2 · Σβ²`` on the log-odds ratios (the intercepts are not penalised), i.e. a normal
   prior with SD ``1/√λ`` on each per-SD log-odds ratio; it keeps the propensities finite
   when a small sample separates the groups. The penalised likelihood is maximised by scipy's
   trust-region Newton method; ``penalty=0`` gives the maximum-likelihood fit. With two
   groups the model is the ordinary logistic regression.
2. **Weights** (:func:`ate_weights`): the generalised propensity weights of the average
   treatment effect, ``1 / P(A = a | X)`` for a patient of group ``a``, stabilised by
   default to ``P(A = a) / P(A = a | X)`` so that each group's weights average about 1 and
   the weighted sample keeps roughly its real size (Imbens 2000; McCaffrey et al. 2013);
   **truncation** (:func:`truncate_weights`) at two percentiles of all weights.
3. **Balance** (:func:`standardised_mean_difference`, :func:`balance`): standardised mean
   differences of each non-reference group against the reference group, before and after
   weighting, with cobalt's conventions (pairwise comparisons, unweighted pooled SD of the
   two groups compared).
4. **Outcomes**: Kaplan–Meier curves with case weights (the weighted product-limit
   estimate, as R's ``survfit`` with weights) and weighted numbers at risk
   (:func:`weighted_km`, :func:`weighted_at_risk`), and the hazard ratio of each group
   against the reference from one Cox model with a 0/1 term per non-reference group
   (:func:`group_hazard_ratios`): unweighted with Efron ties and the model-based variance,
   or weighted (Breslow ties) with the Lin–Wei robust variance. The robust variance treats
   the weights as known; it ignores the uncertainty of the estimated propensities (usually
   conservative for the ATE, Austin 2016).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats
from scipy.optimize import minimize

from .breslow import MAX_ABS_COEF, RiskSets, maximise, penalised_objective, robust_variance
from .cox_models import cox_fit

#: Largest absolute gradient of the penalised log-likelihood at which the propensity model is
#: called converged.
GRADIENT_TOLERANCE = 1e-6


# ---------------------------------------------------------------------------------------------
# Propensity model and weights
# ---------------------------------------------------------------------------------------------
@dataclass
class PropensityFit:
    """A fitted propensity model.

    Attributes
    ----------
    coefficients : log-odds ratios per SD against the first group, one column per other
        group, one row per covariate used after ``intercept``.
    penalty : ridge λ (0: maximum likelihood).
    propensity : P(group | covariates), one column per group (in the order fitted), indexed
        like the covariates.
    imputed : covariate → number of missing values replaced by the covariate's mean.
    constant : covariates left out because they are constant once missing values are filled.
    converged : whether the optimiser converged to finite log-odds ratios (below
        :data:`bridge_hsct.stats.breslow.MAX_ABS_COEF` per SD in absolute value); False
        typically means that the covariates separate the groups and there is no penalty.
    """

    coefficients: pd.DataFrame
    penalty: float
    propensity: pd.DataFrame
    imputed: dict
    constant: list
    converged: bool


def fit_propensity(covariates: pd.DataFrame, group, penalty: float,
                   groups=None) -> PropensityFit:
    """Multinomial logistic model of the group, on standardised covariates, with a ridge
    penalty.

    Parameters
    ----------
    covariates : one numeric column per term (NaN where unknown: replaced by the column's
        mean); may have no columns (intercept-only model).
    group : array_like of group labels, one per row of `covariates`.
    penalty : ridge λ on the standardised coefficients (intercepts unpenalised); the
        objective is ``-loglik + λ/2 · Σβ²`` over every group's log-odds ratios. 0 gives the
        maximum-likelihood fit.
    groups : the groups, base category first (default: the sorted labels); every row's label
        must be one of them and each must have a patient.

    Returns
    -------
    PropensityFit
    """
    if penalty < 0:
        raise ValueError("penalty must be >= 0")
    labels = np.asarray(group, dtype=object)
    groups = sorted(pd.unique(labels)) if groups is None else list(groups)
    code = {g: i for i, g in enumerate(groups)}
    if any(label not in code for label in labels):
        raise ValueError("every group label must be one of `groups`")
    codes = np.array([code[label] for label in labels], dtype=float)
    if len(groups) < 2 or len(np.unique(codes)) < len(groups):
        raise ValueError("the propensity model needs at least two groups, each with patients")
    imputed = {name: int(covariates[name].isna().sum()) for name in covariates
               if covariates[name].isna().any()}
    filled = covariates.fillna(covariates.mean())
    names = [name for name in filled if filled[name].std(ddof=0) > 0]
    constant = [name for name in filled if name not in names]
    standardised = (filled[names] - filled[names].mean()) / filled[names].std(ddof=0)
    design = sm.add_constant(standardised.to_numpy(float), has_constant="add")
    model = sm.MNLogit(codes, design)
    # statsmodels orders the parameters column by column: each other group's intercept and
    # log-odds ratios in turn
    penalised = np.tile(np.r_[0.0, np.ones(len(names))], len(groups) - 1)

    def objective(params):
        return -model.loglike(params) + penalty / 2 * np.sum(penalised * params ** 2)

    def gradient(params):
        return -model.score(params) + penalty * penalised * params

    def hessian(params):
        return -model.hessian(params) + penalty * np.diag(penalised)

    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        # separated groups (no penalty) drive log-probabilities to -inf: reported as not
        # converged, not raised
        best = minimize(objective, np.zeros(len(penalised)), jac=gradient, hess=hessian,
                        method="trust-exact",
                        options={"gtol": GRADIENT_TOLERANCE / 100, "maxiter": 200})
        params = best.x.reshape(design.shape[1], -1, order="F")
        probabilities = model.predict(params)
    # trust-exact can stop at a zero gradient with "no predicted improvement": judged by the
    # gradient, not by its message
    converged = bool(np.max(np.abs(gradient(best.x))) < GRADIENT_TOLERANCE
                     and np.all(np.abs(params[1:]) < MAX_ABS_COEF))
    coefficients = pd.DataFrame(params, index=["intercept", *names], columns=groups[1:])
    propensity = pd.DataFrame(probabilities, index=covariates.index, columns=groups)
    return PropensityFit(coefficients, penalty, propensity, imputed, constant, converged)


def ate_weights(group, propensity: pd.DataFrame, stabilised: bool = True) -> np.ndarray:
    """Inverse probability of treatment weights of the average treatment effect, for any
    number of groups.

    ``w = P(A = a) / P(A = a | X)`` for a patient of group ``a`` (stabilised), or
    ``1 / P(A = a | X)``, with ``P(A = a)`` the share of patients in group ``a``.

    Parameters
    ----------
    group : array_like of group labels.
    propensity : P(group | covariates), one row per patient and one column per group
        (:attr:`PropensityFit.propensity`).
    stabilised : multiply by the group's share.

    Returns
    -------
    numpy.ndarray
    """
    labels = np.asarray(group, dtype=object)
    if len(labels) != len(propensity):
        raise ValueError("group and propensity must have the same length")
    column = propensity.columns.get_indexer(labels)
    if np.any(column < 0):
        raise ValueError("every group label must be a column of `propensity`")
    own = propensity.to_numpy(float)[np.arange(len(labels)), column]
    if np.any((own <= 0) | (own >= 1)):
        raise ValueError("propensities must lie strictly between 0 and 1")
    if not stabilised:
        return 1 / own
    shares = pd.Series(labels).map(pd.Series(labels).value_counts(normalize=True))
    return shares.to_numpy(float) / own


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


def balance(covariates: pd.DataFrame, binary, group, weights, groups) -> pd.DataFrame:
    """Means and standardised mean differences of each covariate before and after weighting,
    each non-reference group against the reference.

    Parameters
    ----------
    covariates : one numeric column per term (NaN where unknown: left out of that term).
    binary : per column of `covariates`, whether it is a 0/1 term.
    group : array_like of group labels.
    weights : array_like of case weights.
    groups : the groups, reference first.

    Returns
    -------
    pandas.DataFrame
        One row per (term, non-reference group): term, group, mean_reference, mean_group
        (unweighted; proportions for 0/1 terms), weighted_mean_reference,
        weighted_mean_group, smd_before, smd_after (group minus reference, over the pooled
        unweighted SD of the two: :func:`standardised_mean_difference`).
    """
    labels = np.asarray(group, dtype=object)
    w = np.asarray(weights, dtype=float)
    reference = labels == groups[0]
    rows = []
    for compared in groups[1:]:
        pair = reference | (labels == compared)
        in_group = (labels[pair] == compared).astype(float)
        for name, is_binary in zip(covariates.columns, binary, strict=True):
            x = covariates[name].to_numpy(float)[pair]
            known = ~np.isnan(x)
            mine, theirs = known & (in_group == 1), known & (in_group == 0)
            rows.append({
                "term": name, "group": compared,
                "mean_reference": x[theirs].mean(), "mean_group": x[mine].mean(),
                "weighted_mean_reference": weighted_mean(x[theirs], w[pair][theirs]),
                "weighted_mean_group": weighted_mean(x[mine], w[pair][mine]),
                "smd_before": standardised_mean_difference(x, in_group, None, is_binary),
                "smd_after": standardised_mean_difference(x, in_group, w[pair], is_binary),
            })
    return pd.DataFrame(rows, columns=["term", "group", "mean_reference", "mean_group",
                                       "weighted_mean_reference", "weighted_mean_group",
                                       "smd_before", "smd_after"])


# ---------------------------------------------------------------------------------------------
# Weighted Kaplan–Meier and Cox
# ---------------------------------------------------------------------------------------------
def weighted_km(time, event, weights=None) -> pd.DataFrame:
    """Kaplan–Meier curve with case weights.

    The weighted product-limit estimate ``S(t) = Π_{s ≤ t} (1 - d_w(s) / n_w(s))``, with
    ``d_w`` the sum of the weights of the patients with an event at ``s`` and ``n_w`` that of
    the patients still followed at ``s`` (R's ``survfit(..., weights = w)``). It is computed
    here from those sums: lifelines' weighted fit (0.30) leaves the curve unchanged at a last
    time where every weighted patient at risk has the event.

    Parameters
    ----------
    time, event : array_like
        Follow-up and 0/1 event indicator.
    weights : array_like or None
        Case weights (None: all 1).

    Returns
    -------
    pandas.DataFrame
        One row per distinct time (starting at 0): ``time``, ``survival``, ``at_risk`` (sum
        of the weights of the patients with follow-up ``>= time``), ``events`` and
        ``censored`` (sums of the weights of the patients with an event, or censored, at
        ``time``).
    """
    t = np.asarray(time, dtype=float)
    e = np.asarray(event, dtype=int)
    w = np.ones_like(t) if weights is None else np.asarray(weights, dtype=float)
    times = np.union1d([0.0], t)
    at_time = np.searchsorted(times, t)  # every t is one of `times`
    at_risk = weighted_at_risk(t, w, times)
    events = np.bincount(at_time, weights=w * (e == 1), minlength=len(times))
    with np.errstate(divide="ignore", invalid="ignore"):
        hazard = np.where(at_risk > 0, events / at_risk, 0.0)
    return pd.DataFrame({
        "time": times, "survival": np.cumprod(1 - hazard), "at_risk": at_risk,
        "events": events,
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
    """Hazard ratio of one group against the reference, with how it was estimated.

    Attributes
    ----------
    analysis : the model and its standard error, in words.
    group : the group compared with the reference.
    hr, lower, upper, p_value : estimate, Wald interval and P (NaN when not estimable).
    se_log_hr : standard error of the log hazard ratio.
    n, events : patients and events in the model.
    reason : why it could not be estimated (None when it was).
    """

    analysis: str
    group: object
    hr: float
    lower: float
    upper: float
    p_value: float
    se_log_hr: float
    n: int
    events: int
    reason: str | None = None


UNADJUSTED = "unadjusted Cox, model SE"
WEIGHTED_ROBUST = "IPTW Cox, robust SE"
WEIGHTED_MODEL = "weighted Cox, model SE"


def group_hazard_ratios(time, event, group, groups, weights=None, alpha: float = 0.05,
                        robust: bool = True) -> list[HazardRatio]:
    """Hazard ratio of each group against the reference, from one Cox model with a 0/1 term
    per non-reference group.

    Without `weights`: the ordinary Cox model (Efron ties, as R's ``coxph`` by default) and
    its model-based variance (:func:`bridge_hsct.stats.cox_models.cox_fit`). With `weights`:
    Breslow's partial likelihood with case weights (:mod:`bridge_hsct.stats.breslow`, as R's
    ``coxph(..., weights = w, ties = "breslow")``), and with ``robust=True`` the Lin–Wei
    sandwich variance, the standard choice for estimated weights.

    A group without events has an infinite log hazard ratio (the partial likelihood is
    monotone): it is reported as not estimable and left out of the model, which gives the
    other groups the estimates the full model tends to. Without events in the reference
    group nothing is estimable.

    Parameters
    ----------
    time, event : array_like
        Follow-up and 0/1 event indicator.
    group : array_like of group labels (patients of other groups are left out).
    groups : the groups, reference first.
    weights : array_like of case weights, or None.
    alpha : one minus the confidence level of the Wald intervals.
    robust : sandwich (True) or model-based (False) variance of a weighted model.

    Returns
    -------
    list of HazardRatio
        One per non-reference group, in order; NaN with a reason when not estimable.
    """
    labels = np.asarray(group, dtype=object)
    t = np.asarray(time, dtype=float)
    e = np.asarray(event, dtype=int)
    w = None if weights is None else np.asarray(weights, dtype=float)
    analysis = (UNADJUSTED if w is None else WEIGHTED_ROBUST if robust else WEIGHTED_MODEL)
    events_in = {g: int(e[labels == g].sum()) for g in groups}
    if events_in[groups[0]] == 0:
        why = "no events" if sum(events_in.values()) == 0 else "no events in the reference group"
        reasons = dict.fromkeys(groups[1:], why)
    else:
        reasons = {g: "no events in this group" for g in groups[1:] if events_in[g] == 0}
    fitted = [g for g in groups[1:] if g not in reasons]
    keep = np.isin(labels, [groups[0], *fitted])
    x = np.column_stack([labels[keep] == g for g in fitted]).astype(float) if fitted else None
    n, events = int(keep.sum()), int(e[keep].sum())
    estimates = {}
    if fitted and w is None:
        columns = [f"group_{i}" for i in range(len(fitted))]
        frame = pd.DataFrame(x, columns=columns).assign(duration=t[keep], event=e[keep])
        fit = cox_fit(frame, columns, alpha)
        if fit.reason:
            reasons.update(dict.fromkeys(fitted, fit.reason))
        else:
            table = fit.table.set_index("covariate")
            estimates = {g: (table.loc[c, "coef"], table.loc[c, "se"])
                         for g, c in zip(fitted, columns, strict=True)}
    elif fitted:
        sets = RiskSets(t[keep], e[keep] == 1, x, w[keep])
        beta, _, converged, _ = maximise(sets)
        if not converged or np.any(np.abs(beta) > MAX_ABS_COEF):
            reasons.update(dict.fromkeys(fitted, "did not converge"))
        else:
            variance = (robust_variance(beta, sets) if robust
                        else np.linalg.inv(penalised_objective(beta, sets)[2]))
            estimates = {g: (beta[i], math.sqrt(variance[i, i])) for i, g in enumerate(fitted)}
    z = stats.norm.ppf(1 - alpha / 2)
    out = []
    for g in groups[1:]:
        if g in estimates:
            b, se = (float(v) for v in estimates[g])
            out.append(HazardRatio(analysis, g, math.exp(b), math.exp(b - z * se),
                                   math.exp(b + z * se), float(2 * stats.norm.sf(abs(b) / se)),
                                   se, n, events))
        else:
            out.append(HazardRatio(analysis, g, math.nan, math.nan, math.nan, math.nan,
                                   math.nan, n, events, reasons[g]))
    return out

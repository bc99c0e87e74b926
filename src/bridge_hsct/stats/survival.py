"""Kaplan-Meier estimates, log-rank tests and univariate Cox models.

What is computed here, and by whom:

* **Kaplan-Meier** (:func:`km_table`, :func:`km_at`, :func:`km_median`) is a few lines of numpy.
  lifelines fits the same curve, but it does not expose the Greenwood variance publicly, uses a
  different median rule for flat stretches at 0.5, and has no "NaN past the end of follow-up"
  rule, so the arithmetic is owned here and lifelines serves as the independent check in the
  tests. Conventions follow R's ``survival`` package (``survfit(..., conf.type="log-log")``):

  - ties: at a time with both events and censorings, the events happen first, i.e. the
    censored patients are still in the risk set at that time;
  - variance: Greenwood, ``Var S(t) = S(t)^2 * sum_{t_j <= t} d_j / (n_j (n_j - d_j))``;
  - 95% interval: on the log(-log) scale,
    ``exp(-exp(log(-log S) -/+ z * se(log S) / log S))``; when ``S = 1`` (no event yet) the
    interval is ``[1, 1]`` (as R reports it); when ``S = 0`` it is NaN.

* **Log-rank test** (:func:`logrank_test`) wraps
  :func:`lifelines.statistics.multivariate_logrank_test` (identical to R's ``survdiff``).
* **Cox model** (:func:`fit_cox`, :func:`cox_univariate`): Efron ties, Wald interval and
  p-value, as R's ``coxph``. Maximised by Newton–Raphson over risk-set sums
  (:func:`bridge_hsct.stats.breslow.efron_terms`): lifelines' ``CoxPHFitter`` gives the same
  estimates but loops over the distinct times in Python, which dominated the book's time at
  100,000 patients. Checked against lifelines and against R (``tests/test_against_r.py``).

Times are in whatever unit the caller passes (the cohort stores days since HSCT); use
:func:`to_months` / :func:`months_to_days` to move between days and months.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from lifelines.statistics import multivariate_logrank_test
from scipy import stats

from .breslow import MAX_ABS_COEF, RiskSets, efron_terms, maximise

DAYS_PER_YEAR = 365.25
DAYS_PER_MONTH = DAYS_PER_YEAR / 12
#: Tolerance used to decide that a survival curve sits *exactly* at 0.5 (R's default).
FLAT_TOLERANCE = math.sqrt(np.finfo(float).eps)


# ---------------------------------------------------------------------------------------------
# Units
# ---------------------------------------------------------------------------------------------
def _scaled(values, factor: float):
    result = np.asarray(values, dtype=float) * factor
    return float(result) if result.ndim == 0 else result


def to_months(days):
    """Convert days to months, with a month of ``365.25 / 12`` days.

    Parameters
    ----------
    days : float or array_like
        Durations in days.

    Returns
    -------
    float or numpy.ndarray
        Durations in months (a float for a scalar input).
    """
    return _scaled(days, 1 / DAYS_PER_MONTH)


def months_to_days(months):
    """Convert months (of ``365.25 / 12`` days) to days; the inverse of :func:`to_months`.

    Parameters
    ----------
    months : float or array_like
        Durations in months, e.g. a landmark of 24 for "2 years".

    Returns
    -------
    float or numpy.ndarray
        Durations in days (a float for a scalar input).
    """
    return _scaled(months, DAYS_PER_MONTH)


def years_to_days(years):
    """Convert years (of 365.25 days) to days, for landmarks such as "2-year OS".

    Parameters
    ----------
    years : float or array_like
        Durations in years.

    Returns
    -------
    float or numpy.ndarray
        Durations in days (a float for a scalar input).
    """
    return _scaled(years, DAYS_PER_YEAR)


# ---------------------------------------------------------------------------------------------
# Small value types
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Estimate:
    """A point estimate with a confidence interval; any of the three may be NaN.

    Parameters
    ----------
    value : float
        The estimate (e.g. a survival probability, a cumulative incidence or a median time).
    lower, upper : float
        Bounds of the confidence interval; NaN when not estimable (e.g. an upper limit of a
        median that is not reached).
    """

    value: float
    lower: float
    upper: float

    @classmethod
    def missing(cls) -> Estimate:
        """Return an all-NaN estimate (e.g. a landmark beyond the end of follow-up)."""
        return cls(math.nan, math.nan, math.nan)

    @property
    def is_missing(self) -> bool:
        """Whether the point estimate is NaN."""
        return math.isnan(self.value)


@dataclass(frozen=True)
class ChiSquareTest:
    """Result of a K-sample test with a chi-square statistic (log-rank, Gray's test).

    Parameters
    ----------
    chi2 : float
        The chi-square statistic (NaN when the test is undefined).
    df : int
        Degrees of freedom, number of groups minus one.
    p_value : float
        Upper-tail chi-square probability.
    reason : str or None
        Why the statistic is NaN, if it is.
    """

    chi2: float
    df: int
    p_value: float
    reason: str | None = None


@dataclass(frozen=True)
class CoxResult:
    """Hazard ratio from a one-covariate Cox model.

    Parameters
    ----------
    hr : float
        Hazard ratio per unit of the covariate, ``exp(beta)``.
    lower, upper : float
        Wald confidence interval of the hazard ratio.
    p_value : float
        Two-sided Wald p-value.
    n : int
        Number of patients used (rows with a missing value are dropped).
    events : int
        Number of events among them.
    reason : str or None
        Why the estimates are NaN, if they are (no events, no variation, no convergence).
    """

    hr: float
    lower: float
    upper: float
    p_value: float
    n: int
    events: int
    reason: str | None = None


# ---------------------------------------------------------------------------------------------
# Input checks
# ---------------------------------------------------------------------------------------------
def as_durations(time) -> np.ndarray:
    """Return ``time`` as a float array after checking it is finite and non-negative.

    Parameters
    ----------
    time : array_like
        Follow-up times.

    Returns
    -------
    numpy.ndarray
        One-dimensional float array.

    Raises
    ------
    ValueError
        If ``time`` is not one-dimensional, is empty, or holds NaN, infinite or negative values.
    """
    durations = np.asarray(time, dtype=float)
    if durations.ndim != 1 or durations.size == 0:
        raise ValueError("time must be a non-empty one-dimensional array")
    if not np.all(np.isfinite(durations)):
        raise ValueError("time holds missing or infinite values")
    if np.any(durations < 0):
        raise ValueError("time holds negative values")
    return durations


def _as_event_indicator(event, n: int) -> np.ndarray:
    indicator = np.asarray(event)
    if indicator.ndim != 1 or indicator.size != n:
        raise ValueError("event must be one-dimensional and as long as time")
    as_float = indicator.astype(float)
    if not np.all(np.isin(as_float, (0.0, 1.0))):
        raise ValueError("event must hold only 0/1 (or False/True)")
    return as_float.astype(int)


def _z(alpha: float) -> float:
    if not 0 < alpha < 1:
        raise ValueError("alpha must be in (0, 1)")
    return float(stats.norm.ppf(1 - alpha / 2))


# ---------------------------------------------------------------------------------------------
# log(-log) interval, shared with the cumulative incidence module
# ---------------------------------------------------------------------------------------------
def loglog_interval(probability, standard_error, alpha: float = 0.05):
    """Confidence interval for a probability on the log(-log) scale.

    ``p ** exp(+/- z * se / (p * log p))``, i.e. a Wald interval for ``log(-log p)`` mapped back.
    This is R ``survfit(conf.type="log-log")`` for a survival curve (``se`` being the standard
    error of ``S``) and tidycmprsk's interval for a cumulative incidence.

    Parameters
    ----------
    probability : array_like
        Estimates ``p``.
    standard_error : array_like
        Standard errors of ``p`` (not of a transform of it).
    alpha : float, default 0.05
        One minus the confidence level.

    Returns
    -------
    lower, upper : numpy.ndarray
        The bounds; NaN where ``p`` is 0 (or not finite), ``[1, 1]`` where ``p`` is 1.
    """
    z = _z(alpha)
    p = np.atleast_1d(np.asarray(probability, dtype=float))
    se = np.atleast_1d(np.asarray(standard_error, dtype=float))
    lower = np.full(p.shape, np.nan)
    upper = np.full(p.shape, np.nan)
    inside = (p > 0) & (p < 1) & np.isfinite(se)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # exp(-inf) = 0
        half_width = z * se[inside] / (p[inside] * np.abs(np.log(p[inside])))
        log_minus_log = np.log(-np.log(p[inside]))
        lower[inside] = np.exp(-np.exp(log_minus_log + half_width))
        upper[inside] = np.exp(-np.exp(log_minus_log - half_width))
    at_one = p == 1
    lower[at_one] = 1.0
    upper[at_one] = 1.0
    return lower, upper


# ---------------------------------------------------------------------------------------------
# Kaplan-Meier
# ---------------------------------------------------------------------------------------------
KM_COLUMNS = (
    "time",
    "n_at_risk",
    "n_events",
    "n_censored",
    "survival",
    "variance",
    "lower",
    "upper",
)


def km_table(time, event, alpha: float = 0.05) -> pd.DataFrame:
    """Kaplan-Meier table, one row per distinct observed time (events and censorings).

    Parameters
    ----------
    time : array_like
        Follow-up times (non-negative).
    event : array_like
        1 (or True) if the event was observed at ``time``, 0 if censored there.
    alpha : float, default 0.05
        One minus the confidence level of ``lower``/``upper``.

    Returns
    -------
    pandas.DataFrame
        Columns ``time``, ``n_at_risk`` (number with follow-up ``>= time``; censorings tied with
        events count as at risk), ``n_events``, ``n_censored``, ``survival`` (right-continuous
        product-limit estimate), ``variance`` (Greenwood variance of ``survival``; NaN once the
        curve reaches 0), ``lower`` and ``upper`` (log(-log) interval, see
        :func:`loglog_interval`).
    """
    durations = as_durations(time)
    observed = _as_event_indicator(event, durations.size)
    unique_times, inverse = np.unique(durations, return_inverse=True)
    n_events = np.bincount(inverse, weights=observed, minlength=unique_times.size)
    n_leaving = np.bincount(inverse, minlength=unique_times.size)
    n_at_risk = durations.size - np.concatenate(([0], np.cumsum(n_leaving)[:-1]))
    survival = np.cumprod(1.0 - n_events / n_at_risk)
    with np.errstate(divide="ignore", invalid="ignore"):
        greenwood_sum = np.cumsum(n_events / (n_at_risk * (n_at_risk - n_events)))
        variance = np.where(survival > 0, survival**2 * greenwood_sum, np.nan)
    lower, upper = loglog_interval(survival, np.sqrt(variance), alpha)
    return pd.DataFrame(
        {
            "time": unique_times,
            "n_at_risk": n_at_risk.astype(int),
            "n_events": n_events.astype(int),
            "n_censored": (n_leaving - n_events).astype(int),
            "survival": survival,
            "variance": variance,
            "lower": lower,
            "upper": upper,
        },
        columns=list(KM_COLUMNS),
    )


def km_at(time, event, t: float, alpha: float = 0.05) -> Estimate:
    """Kaplan-Meier survival at a landmark time, with its log(-log) 95% interval.

    Parameters
    ----------
    time, event : array_like
        See :func:`km_table`.
    t : float
        Landmark, in the unit of ``time``.
    alpha : float, default 0.05
        One minus the confidence level.

    Returns
    -------
    Estimate
        ``S(t)`` and its interval. Before the first event ``S = 1`` with interval ``[1, 1]``.
        Between the last event and the largest follow-up time the last value is carried
        forward. Beyond the largest follow-up time (event or censoring) nothing is known and an
        all-NaN estimate is returned, like R's ``summary(survfit, times=)`` which drops such
        times.
    """
    table = km_table(time, event, alpha)
    return _step_value_at(table, "survival", t, before_first=Estimate(1.0, 1.0, 1.0))


def _step_value_at(table: pd.DataFrame, column: str, t: float, before_first: Estimate) -> Estimate:
    if not np.isfinite(t) or t < 0:
        raise ValueError("t must be a finite, non-negative time")
    times = table["time"].to_numpy()
    if t > times[-1]:
        return Estimate.missing()
    row = int(np.searchsorted(times, t, side="right")) - 1
    if row < 0:
        return before_first
    return Estimate(
        float(table[column].iloc[row]),
        float(table["lower"].iloc[row]),
        float(table["upper"].iloc[row]),
    )


def _first_crossing_time(times, curve, last_time: float, probability: float = 0.5) -> float:
    """Time at which a survival-type step curve first reaches ``probability`` (R's rule).

    Port of ``findq`` in R survival's ``quantile.survfit``: the first time the curve is at or
    below ``probability``; if the curve sits exactly at ``probability`` (within
    :data:`FLAT_TOLERANCE`) over a stretch, the midpoint of that stretch (up to the next drop,
    or to ``last_time`` when the stretch runs to the end of follow-up). NaN if never reached.
    """
    x = np.concatenate(([0.0], np.asarray(times, dtype=float)))
    cdf = np.concatenate(([0.0], 1.0 - np.asarray(curve, dtype=float)))
    keep = ~np.isnan(cdf)
    x, cdf = x[keep], cdf[keep]
    _, first_of_each = np.unique(cdf, return_index=True)  # drop repeated values (censorings)
    first_of_each.sort()
    x, cdf = x[first_of_each], cdf[first_of_each]
    target = 1.0 - probability
    reached = np.flatnonzero(cdf >= target - FLAT_TOLERANCE)
    if reached.size == 0:
        return math.nan
    start = reached[0]
    if cdf[start] > target + FLAT_TOLERANCE:
        return float(x[start])
    # Flat exactly at the target: midpoint up to the next drop or the end of follow-up.
    beyond = np.flatnonzero(cdf >= target + FLAT_TOLERANCE)
    if beyond.size:
        return float((x[start] + x[beyond[0]]) / 2)
    if start == cdf.size - 1:
        return float((x[start] + last_time) / 2)
    return math.nan


def km_median(time, event, alpha: float = 0.05) -> Estimate:
    """Median survival time with a Brookmeyer-Crowley type interval on the log(-log) scale.

    The median is the first time the Kaplan-Meier curve is at or below 0.5 (midpoint of the
    stretch if the curve is exactly 0.5 over one). The interval is the set of times whose
    pointwise log(-log) interval contains 0.5: the lower limit is where the *lower* band first
    reaches 0.5, the upper limit where the *upper* band does. This is the rule of R's
    ``quantile.survfit`` / ``print(survfit(..., conf.type="log-log"))`` (identical results
    whenever the bands decrease with time, which they do except in odd small samples).

    Parameters
    ----------
    time, event : array_like
        See :func:`km_table`.
    alpha : float, default 0.05
        One minus the confidence level.

    Returns
    -------
    Estimate
        The median and its interval; each part NaN when not reached (e.g. the curve never drops
        to 0.5, or the upper band never does).
    """
    table = km_table(time, event, alpha)
    times = table["time"].to_numpy()
    last_time = float(times[-1])
    return Estimate(
        _first_crossing_time(times, table["survival"], last_time),
        _first_crossing_time(times, table["lower"], last_time),
        _first_crossing_time(times, table["upper"], last_time),
    )


def reverse_km_median_followup(time, event, alpha: float = 0.05) -> Estimate:
    """Median follow-up by the reverse Kaplan–Meier method (Schemper & Smith 1996).

    The Kaplan–Meier median of the time to censoring, in which an event (death) censors: what
    the follow-up would have been had nobody died. The median of all observed times, deaths
    included, is shorter whenever patients die early, and says more about survival than about
    follow-up.

    Parameters
    ----------
    time, event : array_like
        See :func:`km_table` (``event`` is the death indicator, or whatever ends follow-up
        other than censoring).
    alpha : float, default 0.05
        One minus the confidence level of the interval (as :func:`km_median`).

    Returns
    -------
    Estimate
        As :func:`km_median`, for the reversed indicator.
    """
    durations = as_durations(time)
    observed = _as_event_indicator(event, durations.size)
    return km_median(durations, ~observed.astype(bool), alpha)


def numbers_at_risk(time, event, at_times) -> np.ndarray:
    """Number of patients still at risk at each time (follow-up ``>= t``).

    A patient censored or failing exactly at ``t`` counts as at risk at ``t``, as in a
    Kaplan-Meier table and R's ``summary(survfit, times=)``.

    Parameters
    ----------
    time, event : array_like
        See :func:`km_table` (``event`` is only checked, the count does not depend on it).
    at_times : array_like
        Times at which to count, e.g. ``[0, 6, 12, 18, 24]`` months.

    Returns
    -------
    numpy.ndarray
        Integer counts, one per entry of ``at_times``.
    """
    durations = as_durations(time)
    _as_event_indicator(event, durations.size)
    points = np.atleast_1d(np.asarray(at_times, dtype=float))
    sorted_durations = np.sort(durations)
    return (durations.size - np.searchsorted(sorted_durations, points, side="left")).astype(int)


# ---------------------------------------------------------------------------------------------
# Log-rank test
# ---------------------------------------------------------------------------------------------
def logrank_test(time, event, group) -> ChiSquareTest:
    """K-sample log-rank test (R's ``survdiff`` with ``rho=0``).

    Parameters
    ----------
    time, event : array_like
        See :func:`km_table`.
    group : array_like
        Group label of each patient; two or more distinct labels.

    Returns
    -------
    ChiSquareTest
        Chi-square on ``k - 1`` degrees of freedom; NaN with a reason when there are no
        events at all (the statistic is then undefined).

    Raises
    ------
    ValueError
        If there are fewer than two groups or the inputs have different lengths.
    """
    durations = as_durations(time)
    observed = _as_event_indicator(event, durations.size)
    labels = np.asarray(group)
    if labels.shape != durations.shape:
        raise ValueError("group must be as long as time")
    if pd.isna(labels).any():
        raise ValueError("group holds missing values")
    n_groups = pd.unique(labels).size
    if n_groups < 2:
        raise ValueError("the log-rank test needs at least two groups")
    df = n_groups - 1
    if observed.sum() == 0:
        return ChiSquareTest(math.nan, df, math.nan, reason="no events")
    result = multivariate_logrank_test(durations, labels, observed)
    return ChiSquareTest(float(result.test_statistic), int(result.degrees_of_freedom),
                         float(result.p_value))


# ---------------------------------------------------------------------------------------------
# Cox model
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CoxModel:
    """A fitted Cox model: one row of ``summary`` per covariate (``coef``, ``se``, ``hr``,
    ``lower``, ``upper``, ``p_value``: Wald), and the coefficients' ``covariance``."""

    summary: pd.DataFrame
    covariance: pd.DataFrame
    log_likelihood: float


def fit_cox(frame: pd.DataFrame, duration_col: str, event_col: str, alpha: float = 0.05):
    """Cox model of every other column of `frame` (Efron ties, Wald intervals).

    Returns
    -------
    (CoxModel, None) or (None, str)
        The fitted model, or why it has no finite estimate (the Newton iterations do not
        converge, as under a monotone likelihood: a level without events).
    """
    names = [c for c in frame.columns if c not in (duration_col, event_col)]
    sets = RiskSets(frame[duration_col], frame[event_col] == 1, frame[names])
    beta, log_likelihood, converged, _ = maximise(sets, objective=efron_terms)
    _, _, information = efron_terms(beta, sets)
    if not converged or np.any(np.abs(beta) > MAX_ABS_COEF):
        return None, "did not converge (monotone likelihood?)"
    try:
        covariance = np.linalg.inv(information)
    except np.linalg.LinAlgError:
        return None, "did not converge (singular information matrix)"
    se = np.sqrt(np.diag(covariance))
    z = _z(alpha)
    summary = pd.DataFrame({"coef": beta, "se": se, "hr": np.exp(beta),
                            "lower": np.exp(beta - z * se), "upper": np.exp(beta + z * se),
                            "p_value": 2 * stats.norm.sf(np.abs(beta / se))}, index=names)
    return CoxModel(summary, pd.DataFrame(covariance, index=names, columns=names),
                    log_likelihood), None


def cox_univariate(duration, event, covariate, alpha: float = 0.05) -> CoxResult:
    """Hazard ratio for one covariate from a Cox model (Efron ties, Wald interval and test).

    Parameters
    ----------
    duration, event : array_like
        See :func:`km_table`.
    covariate : array_like
        Numeric covariate (0/1 for a binary factor: the hazard ratio is for 1 vs 0).
        Rows where the covariate is missing are dropped.
    alpha : float, default 0.05
        One minus the confidence level.

    Returns
    -------
    CoxResult
        The hazard ratio, interval and p-value. When the model cannot be estimated (no events,
        no variation in the covariate, or lifelines reporting a convergence problem such as the
        monotone likelihood of a level with no events) the estimates are NaN and ``reason``
        says why; nothing is raised.
    """
    _z(alpha)
    durations = as_durations(duration)
    observed = _as_event_indicator(event, durations.size)
    values = np.asarray(covariate, dtype=float)
    if values.shape != durations.shape:
        raise ValueError("covariate must be as long as duration")
    keep = ~np.isnan(values)
    durations, observed, values = durations[keep], observed[keep], values[keep]
    n, events = int(durations.size), int(observed.sum())

    def not_estimable(reason: str) -> CoxResult:
        return CoxResult(math.nan, math.nan, math.nan, math.nan, n, events, reason)

    if events == 0:
        return not_estimable("no events")
    if np.unique(values).size < 2:
        return not_estimable("no variation in the covariate")
    frame = pd.DataFrame({"duration": durations, "event": observed, "x": values})
    fitter, problem = fit_cox(frame, "duration", "event", alpha)
    if problem:
        return not_estimable(problem)
    row = fitter.summary.loc["x"]
    return CoxResult(hr=float(row["hr"]), lower=float(row["lower"]), upper=float(row["upper"]),
                     p_value=float(row["p_value"]), n=n, events=events)

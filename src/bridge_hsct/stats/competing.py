"""Cumulative incidence with competing risks, and Gray's test.

Cause codes: ``0`` = censored, ``1, 2, ...`` = the event types (e.g. 1 = relapse, 2 = death
without relapse for NRM/relapse analyses).

Why this is hand-written
------------------------
* lifelines' ``AalenJohansenFitter`` breaks ties between event types by randomly jittering the
  times (a different answer on each run unless seeded), and offers only the delta-method
  variance. With times recorded in whole days, ties are common, so the estimator is computed
  here with exact ties.
* No maintained Python package implements Gray's (1988) K-sample test (on PyPI there are only
  recent single-author ports, and ``cmprsk``, which calls R and needs an R installation).
  :func:`gray_test` is a line-by-line port of ``crstm``/``crst`` from R's ``cmprsk``
  (Fortran, R. Gray), single stratum.

Both are checked in ``tests/test_competing.py`` against published ``cmprsk``/``tidycmprsk``
output on the Klein & Moeschberger bone-marrow-transplant data, against lifelines (estimates
only, on data without tied times) and against hand-computed tables.

Conventions (those of ``cmprsk::cuminc`` + ``tidycmprsk``)
---------------------------------------------------------
* Estimate: Aalen-Johansen, ``F(t) = sum_{t_j <= t} S(t_j-) d1_j / n_j`` with ``S`` the
  all-cause Kaplan-Meier curve; at a tied time all events come before censorings.
* Variance: the Aalen-type estimator of ``cmprsk`` (subroutine ``cinc``), including its
  correction for tied events. As in ``cmprsk``, it is updated at the times of the event of
  interest (where the estimate moves) and carried forward in between.
* 95% interval: log(-log) scale, ``F ** exp(+/- z se / (F log F))`` (tidycmprsk, after
  Pintilie 2006); NaN while ``F = 0``.
* Beyond the largest follow-up time of the data, nothing is estimated (NaN), as
  ``cmprsk::timepoints``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from bridge_hsct.stats.survival import (
    ChiSquareTest,
    Estimate,
    as_durations,
    km_table,
    loglog_interval,
)

AALEN_JOHANSEN = "aalen-johansen"
ONE_MINUS_KM = "1 - kaplan-meier"

CIF_COLUMNS = (
    "time",
    "n_at_risk",
    "n_events",
    "n_competing",
    "n_censored",
    "incidence",
    "variance",
    "lower",
    "upper",
)


@dataclass(frozen=True)
class CumulativeIncidence:
    """A cumulative incidence curve and how it was estimated.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per distinct observed time, columns :data:`CIF_COLUMNS`: ``n_at_risk`` (follow-up
        ``>= time``), ``n_events`` (event of interest at ``time``), ``n_competing`` (other
        events), ``n_censored``, ``incidence``, ``variance`` and the interval ``lower``,
        ``upper``.
    cause_of_interest : int
        The cause code the curve is for.
    method : str
        ``"aalen-johansen"`` or ``"1 - kaplan-meier"``.
    """

    table: pd.DataFrame
    cause_of_interest: int
    method: str

    @property
    def max_follow_up(self) -> float:
        """Largest observed time (event or censoring)."""
        return float(self.table["time"].iloc[-1])

    def at(self, t: float) -> Estimate:
        """Cumulative incidence at time ``t`` with its interval.

        Parameters
        ----------
        t : float
            Landmark in the unit of the input times.

        Returns
        -------
        Estimate
            ``F(t)``; before any event it is 0 with the interval of the method's convention
            (NaN for Aalen-Johansen, ``[0, 0]`` for 1 - Kaplan-Meier); all-NaN beyond
            :attr:`max_follow_up`.
        """
        if not np.isfinite(t) or t < 0:
            raise ValueError("t must be a finite, non-negative time")
        times = self.table["time"].to_numpy()
        if t > times[-1]:
            return Estimate.missing()
        row = int(np.searchsorted(times, t, side="right")) - 1
        if row < 0:
            bound = 0.0 if self.method == ONE_MINUS_KM else math.nan
            return Estimate(0.0, bound, bound)
        chosen = self.table.iloc[row]
        return Estimate(float(chosen["incidence"]), float(chosen["lower"]), float(chosen["upper"]))


def _as_causes(cause, n: int) -> np.ndarray:
    codes = np.asarray(cause, dtype=float)
    if codes.ndim != 1 or codes.size != n:
        raise ValueError("cause must be one-dimensional and as long as time")
    if not np.all(np.isfinite(codes)) or np.any(codes < 0) or np.any(codes != np.round(codes)):
        raise ValueError("cause must hold non-negative integer codes (0 = censored)")
    return codes.astype(int)


def _check_cause_of_interest(cause_of_interest: int) -> int:
    if int(cause_of_interest) != cause_of_interest or cause_of_interest < 1:
        raise ValueError("cause_of_interest must be a positive integer code")
    return int(cause_of_interest)


def _aalen_johansen_table(durations, causes, cause_of_interest: int, alpha: float):
    """Aalen-Johansen estimate with the ``cmprsk`` (subroutine ``cinc``) variance."""
    unique_times, inverse = np.unique(durations, return_inverse=True)
    size = unique_times.size
    n_events = np.bincount(inverse, weights=causes == cause_of_interest, minlength=size)
    n_any = np.bincount(inverse, weights=causes > 0, minlength=size)
    n_leaving = np.bincount(inverse, minlength=size)
    n_at_risk = durations.size - np.concatenate(([0], np.cumsum(n_leaving)[:-1]))
    n_competing = n_any - n_events

    incidence = np.empty(size)
    variance = np.empty(size)
    survival_before = 1.0  # all-cause Kaplan-Meier just before the current time
    current_incidence = 0.0
    current_variance = 0.0
    v1 = v2 = v3 = 0.0  # running sums of cmprsk's cinc
    for j in range(size):
        at_risk, d1, d2 = n_at_risk[j], n_events[j], n_competing[j]
        if d1 + d2 > 0:
            survival_after = survival_before * (at_risk - d1 - d2) / at_risk
            if d1 > 0:
                current_incidence += survival_before * d1 / at_risk
            if d2 > 0 and survival_after > 0:
                tie_factor = 1.0 if d2 == 1 else 1 - (d2 - 1) / (at_risk - 1)
                jump = survival_before**2 * tie_factor * d2 / at_risk**2
                a = 1 / survival_after
                b = current_incidence / survival_after
                v1 += b * b * jump
                v2 += a * b * jump
                v3 += a * a * jump
            if d1 > 0:
                tie_factor = 1.0 if d1 == 1 else 1 - (d1 - 1) / (at_risk - 1)
                jump = survival_before**2 * tie_factor * d1 / at_risk**2
                a = 1 / survival_after if survival_after > 0 else 0.0
                b = 1 + a * current_incidence
                v1 += b * b * jump
                v2 += a * b * jump
                v3 += a * a * jump
                current_variance = (
                    v1 + current_incidence**2 * v3 - 2 * current_incidence * v2
                )
            survival_before = survival_after
        incidence[j] = current_incidence
        variance[j] = current_variance

    lower, upper = loglog_interval(incidence, np.sqrt(np.maximum(variance, 0.0)), alpha)
    return pd.DataFrame(
        {
            "time": unique_times,
            "n_at_risk": n_at_risk.astype(int),
            "n_events": n_events.astype(int),
            "n_competing": n_competing.astype(int),
            "n_censored": (n_leaving - n_any).astype(int),
            "incidence": incidence,
            "variance": variance,
            "lower": lower,
            "upper": upper,
        },
        columns=list(CIF_COLUMNS),
    )


def cumulative_incidence(time, cause, cause_of_interest: int = 1, t: float | None = None,
                         alpha: float = 0.05):
    """Aalen-Johansen cumulative incidence of one cause in the presence of the others.

    Parameters
    ----------
    time : array_like
        Follow-up times (non-negative).
    cause : array_like
        ``0`` if censored at ``time``, otherwise the integer code of the event observed then.
    cause_of_interest : int, default 1
        The cause whose incidence is estimated; all other positive codes compete.
    t : float, optional
        If given, return only the estimate at this landmark.
    alpha : float, default 0.05
        One minus the confidence level.

    Returns
    -------
    CumulativeIncidence or Estimate
        The whole curve (see the module docstring for variance and interval), or, when ``t``
        is given, ``CumulativeIncidence.at(t)``.
    """
    durations = as_durations(time)
    causes = _as_causes(cause, durations.size)
    code = _check_cause_of_interest(cause_of_interest)
    curve = CumulativeIncidence(
        _aalen_johansen_table(durations, causes, code, alpha), code, AALEN_JOHANSEN
    )
    return curve if t is None else curve.at(t)


def one_minus_km_incidence(time, cause, cause_of_interest: int = 1, t: float | None = None,
                           alpha: float = 0.05):
    """Incidence as 1 - Kaplan-Meier, competing events treated as censored (the paper's method).

    This over-estimates the incidence when competing events occur; it is provided so the book
    can set it beside :func:`cumulative_incidence`.

    Parameters
    ----------
    time, cause, cause_of_interest, t, alpha
        As in :func:`cumulative_incidence`.

    Returns
    -------
    CumulativeIncidence or Estimate
        Same shape as :func:`cumulative_incidence`: ``incidence = 1 - S``, ``variance`` the
        Greenwood variance of ``S``, and the interval ``1 - `` the log(-log) interval of ``S``
        (so ``[0, 0]`` before the first event). ``n_competing`` counts the competing events,
        which the Kaplan-Meier curve treats as censorings (``n_censored`` excludes them).
    """
    durations = as_durations(time)
    causes = _as_causes(cause, durations.size)
    code = _check_cause_of_interest(cause_of_interest)
    km = km_table(durations, causes == code, alpha)
    _, inverse = np.unique(durations, return_inverse=True)
    n_competing = np.bincount(
        inverse, weights=(causes > 0) & (causes != code), minlength=len(km)
    ).astype(int)
    table = pd.DataFrame(
        {
            "time": km["time"],
            "n_at_risk": km["n_at_risk"],
            "n_events": km["n_events"],
            "n_competing": n_competing,
            "n_censored": km["n_censored"] - n_competing,
            "incidence": 1.0 - km["survival"],
            "variance": km["variance"],
            "lower": 1.0 - km["upper"],
            "upper": 1.0 - km["lower"],
        },
        columns=list(CIF_COLUMNS),
    )
    curve = CumulativeIncidence(table, code, ONE_MINUS_KM)
    return curve if t is None else curve.at(t)


def gray_score_and_variance(durations, status, group_index, n_groups: int, rho: float):
    """Port of ``crst`` (cmprsk, R. Gray): score and variance for one stratum (summed over
    strata by :func:`gray_test` here and by the pooled bundles' stratified test).

    ``durations`` sorted ascending; ``status`` 0 censored, 1 cause of interest, 2 other cause;
    ``group_index`` in ``0 .. n_groups - 1``. Returns the scores of the first ``n_groups - 1``
    groups and their covariance matrix.
    """
    ng, ng1 = n_groups, n_groups - 1
    at_risk = np.bincount(group_index, minlength=ng).astype(float)
    score = np.zeros(ng1)
    variance = np.zeros((ng1, ng1))
    incidence_before = np.zeros(ng)   # f1m: left-continuous cumulative incidence by group
    incidence_after = np.zeros(ng)    # f1
    survival_before = np.ones(ng)     # skmm: left-continuous all-cause KM by group
    survival_after = np.ones(ng)      # skm
    v3 = np.zeros(ng)
    v2 = np.zeros((ng1, ng))
    c = np.zeros((ng, ng))
    pooled_before = 0.0               # fm: pooled subdistribution estimate, left-continuous
    n = durations.size
    start = 0
    while start < n:
        stop = start
        while stop + 1 < n and durations[stop + 1] == durations[start]:
            stop += 1
        counts = np.zeros((3, ng))
        np.add.at(counts, (status[start:stop + 1], group_index[start:stop + 1]), 1)
        nd1 = counts[1].sum()
        nd2 = counts[2].sum()
        if nd1 > 0 or nd2 > 0:
            tr = 0.0
            tq = 0.0
            for i in range(ng):
                if at_risk[i] <= 0:
                    continue
                td = counts[1, i] + counts[2, i]
                survival_after[i] = survival_before[i] * (at_risk[i] - td) / at_risk[i]
                incidence_after[i] = (
                    incidence_before[i] + survival_before[i] * counts[1, i] / at_risk[i]
                )
                tr += at_risk[i] / survival_before[i]
                tq += at_risk[i] * (1 - incidence_before[i]) / survival_before[i]
            pooled_after = pooled_before + nd1 / tr
            weight = (1 - pooled_before) ** rho
            a = np.zeros((ng, ng))
            for i in range(ng):
                if at_risk[i] <= 0:
                    continue
                t1 = at_risk[i] / survival_before[i]
                a[i, i] = weight * t1 * (1 - t1 / tr)
                c[i, i] += a[i, i] * nd1 / (tr * (1 - pooled_before))
                for j in range(i + 1, ng):
                    if at_risk[j] <= 0:
                        continue
                    a[i, j] = -weight * t1 * at_risk[j] / (survival_before[j] * tr)
                    c[i, j] += a[i, j] * nd1 / (tr * (1 - pooled_before))
            for i in range(1, ng):
                for j in range(i):
                    a[i, j] = a[j, i]
                    c[i, j] = c[j, i]
            for i in range(ng1):
                if at_risk[i] <= 0:
                    continue
                score[i] += weight * (
                    counts[1, i]
                    - nd1 * at_risk[i] * (1 - incidence_before[i]) / (survival_before[i] * tq)
                )
            if nd1 > 0:
                for k in range(ng):
                    if at_risk[k] <= 0:
                        continue
                    t4 = 1.0
                    if survival_after[k] > 0:
                        t4 = 1 - (1 - pooled_after) / survival_after[k]
                    t5 = 1.0
                    if nd1 > 1:
                        t5 = 1 - (nd1 - 1) / (tr * survival_before[k] - 1)
                    t3 = t5 * survival_before[k] * nd1 / (tr * at_risk[k])
                    v3[k] += t4 * t4 * t3
                    for i in range(ng1):
                        t1 = a[i, k] - t4 * c[i, k]
                        v2[i, k] += t1 * t4 * t3
                        for j in range(i + 1):
                            t2 = a[j, k] - t4 * c[j, k]
                            variance[i, j] += t1 * t2 * t3
            if nd2 > 0:
                for k in range(ng):
                    if survival_after[k] <= 0 or counts[2, k] <= 0:
                        continue
                    t4 = (1 - pooled_after) / survival_after[k]
                    t5 = 1.0
                    if counts[2, k] > 1:
                        t5 = 1 - (counts[2, k] - 1) / (at_risk[k] - 1)
                    t3 = t5 * survival_before[k] ** 2 * counts[2, k] / at_risk[k] ** 2
                    v3[k] += t4 * t4 * t3
                    for i in range(ng1):
                        t1 = t4 * c[i, k]
                        v2[i, k] -= t1 * t4 * t3
                        for j in range(i + 1):
                            t2 = t4 * c[j, k]
                            variance[i, j] += t1 * t2 * t3
            pooled_before = pooled_after
            incidence_before[:] = incidence_after
            survival_before[:] = survival_after
        np.subtract.at(at_risk, group_index[start:stop + 1], 1)
        start = stop + 1
    for i in range(ng1):
        for j in range(i + 1):
            for k in range(ng):
                variance[i, j] += c[i, k] * c[j, k] * v3[k]
                variance[i, j] += c[i, k] * v2[j, k]
                variance[i, j] += c[j, k] * v2[i, k]
    lower = np.tril(variance)
    return score, lower + np.tril(lower, -1).T


def gray_test(time, cause, group, cause_of_interest: int = 1, rho: float = 0.0) -> ChiSquareTest:
    """Gray's (1988) K-sample test of equal cumulative incidence of one cause.

    A port of ``cmprsk::cuminc``'s test (Fortran ``crstm``, one stratum): the score compares
    weighted subdistribution hazards between groups, the statistic is ``s' V^-1 s`` on
    ``k - 1`` degrees of freedom.

    Parameters
    ----------
    time, cause : array_like
        See :func:`cumulative_incidence`.
    group : array_like
        Group label of each patient; two or more distinct labels.
    cause_of_interest : int, default 1
        The cause whose incidence is compared; other positive codes compete.
    rho : float, default 0
        Power of the weight ``(1 - F(t-))**rho``; 0 gives the log-rank-like test that
        ``cmprsk`` uses by default.

    Returns
    -------
    ChiSquareTest
        Statistic, degrees of freedom and p-value; NaN with a reason when the variance matrix
        is singular (``cmprsk`` then reports ``-1``), e.g. when no event of interest occurred.

    Raises
    ------
    ValueError
        If there are fewer than two groups or the inputs have different lengths.
    """
    durations = as_durations(time)
    causes = _as_causes(cause, durations.size)
    code = _check_cause_of_interest(cause_of_interest)
    labels = np.asarray(group)
    if labels.shape != durations.shape:
        raise ValueError("group must be as long as time")
    if pd.isna(labels).any():
        raise ValueError("group holds missing values")
    _, group_index = np.unique(labels, return_inverse=True)
    n_groups = int(group_index.max()) + 1
    if n_groups < 2:
        raise ValueError("Gray's test needs at least two groups")
    df = n_groups - 1
    if not np.any(causes == code):
        return ChiSquareTest(math.nan, df, math.nan, reason="no events of the cause of interest")
    status = np.where(causes == 0, 0, np.where(causes == code, 1, 2))
    order = np.argsort(durations, kind="stable")
    score, variance = gray_score_and_variance(
        durations[order], status[order], group_index[order], n_groups, float(rho)
    )
    if np.linalg.matrix_rank(variance) < df:
        return ChiSquareTest(math.nan, df, math.nan, reason="singular variance matrix")
    chi2 = float(score @ np.linalg.solve(variance, score))
    return ChiSquareTest(chi2, df, float(stats.chi2.sf(chi2, df)))

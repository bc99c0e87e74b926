"""Survival statistics computed from life tables (counts per time), not from patient rows.

A centre that cannot share its patients' rows can share, per group, a *life table*: for each
time at which something happened, the number at risk, the events of interest (cause 1), the
competing events (cause 2) and the censorings. This module pools such tables and computes
the package's statistics from them. It is the arithmetic under the multi-centre bundles of
:mod:`bridge_hsct.paper.bundle`.

What the counts determine exactly
---------------------------------
Every estimator and test below reads the data only through, at each distinct time and in
each group (and centre, for a stratified test), the number at risk and the number of each
kind of transition. When the life table's times are the data's own distinct times (whole
days recorded as whole days, on a grid of days), these counts are the sufficient statistic
and the results equal those computed on the rows, to rounding:

* **Kaplan–Meier** with Greenwood variance and log(-log) interval (:func:`kaplan_meier`):
  ``S(t) = prod (1 - d_j / n_j)``, ``Var = S^2 sum d_j / (n_j (n_j - d_j))``, the interval of
  :func:`bridge_hsct.stats.survival.loglog_interval`; identical to
  :func:`bridge_hsct.stats.survival.km_table` on the rows.
* **Log-rank**, unstratified or stratified by centre (:func:`logrank_test`): observed minus
  expected and the hypergeometric variance, summed over the times and the strata, as R's
  ``survdiff(... + strata(centre))``.
* **Aalen–Johansen** cumulative incidence and its ``cmprsk`` variance
  (:func:`cumulative_incidence`), and **Gray's test**, unstratified or stratified
  (:func:`gray_test`). Gray's score and variance (``crst`` in ``cmprsk``) are sums over the
  distinct times of functions of, per group, the number at risk just before the time, the
  events of each cause at it, and the group's all-cause Kaplan–Meier and cumulative incidence
  just before it (themselves functions of the earlier counts); the subdistribution risk set
  of a group is ``n_i(t) / S_i(t-)``, again a function of the counts. Per-time counts by
  group therefore suffice. The package's own estimators
  (:mod:`bridge_hsct.stats.competing`) are used unchanged: a life table is written long, one
  record ``(time, cause)`` per counted transition (:func:`transitions`), which gives them
  exactly the counts they would compute from the rows. The records carry no identifier and
  no other variable: they are the life table, one line per count.

What they do not determine exactly
----------------------------------
* Times coarsened to a grid (weeks, months): events and censorings in one grid interval are
  tied at its end, and the estimates are those of the coarsened data (close, not equal).
* Rows merged for small-cell suppression: the same, with a data-dependent grid.
* Anything that needs a patient's other variables jointly with the times (IPTW, a Cox model
  with a continuous covariate, adjusted estimates) is not in a life table by group.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from . import competing
from .survival import KM_COLUMNS, ChiSquareTest, Estimate, loglog_interval

#: The columns of a life table (the fields of :class:`LifeTable`), in the order a bundle
#: writes them.
LIFE_TABLE_COLUMNS = ("time", "n_at_risk", "events", "competing", "censored")


@dataclass(frozen=True)
class LifeTable:
    """Counts per time of one group: who is at risk and who leaves, and how.

    Parameters
    ----------
    time : increasing times at which at least one patient leaves the risk set.
    n_at_risk : number of patients with a time ``>= time`` (a censoring tied with an event
        counts as at risk, as in a Kaplan–Meier table).
    events : events of interest (cause 1) at ``time``.
    competing : competing events (cause 2) at ``time``.
    censored : censorings at ``time``.
    """

    time: np.ndarray
    n_at_risk: np.ndarray
    events: np.ndarray
    competing: np.ndarray
    censored: np.ndarray

    @property
    def leaving(self) -> np.ndarray:
        """Patients leaving the risk set at each time (events of any cause and censorings)."""
        return self.events + self.competing + self.censored

    @property
    def n(self) -> int:
        """Number of patients in the table."""
        return int(self.leaving.sum())

    def at_risk_at(self, times) -> np.ndarray:
        """Number at risk at each of `times` (patients whose time is ``>= t``), also at times
        where the table has no row."""
        leaving_from = np.concatenate((np.cumsum(self.leaving[::-1])[::-1], [0]))
        return leaving_from[np.searchsorted(self.time, np.asarray(times, float), side="left")]

    def counts_at(self, times) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Events, competing events and censorings at each of `times` (0 where no row)."""
        times = np.asarray(times, float)
        row = np.searchsorted(self.time, times)
        found = row < self.time.size
        found[found] = self.time[row[found]] == times[found]
        return tuple(np.where(found, column[np.minimum(row, self.time.size - 1)], 0)
                     if self.time.size else np.zeros(times.size, int)
                     for column in (self.events, self.competing, self.censored))


def _integers(values, name: str) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    if array.ndim != 1 or not np.all(np.isfinite(array)) or np.any(array < 0) \
            or np.any(array != np.round(array)):
        raise ValueError(f"{name} must hold non-negative whole numbers")
    return array.astype(np.int64)


def life_table_from_counts(time, n_at_risk, events, competing, censored) -> LifeTable:
    """A checked :class:`LifeTable` from its columns (e.g. read from a bundle).

    Raises
    ------
    ValueError
        When the columns differ in length, a count is not a non-negative whole number, the
        times do not increase, or the numbers at risk do not follow from the counts (each
        is the next one plus those leaving, the last one those leaving at the last time).
    """
    times = np.asarray(time, dtype=float)
    columns = [_integers(v, name) for v, name in ((n_at_risk, "n_at_risk"), (events, "events"),
                                                  (competing, "competing"),
                                                  (censored, "censored"))]
    if times.ndim != 1 or any(c.size != times.size for c in columns):
        raise ValueError("the columns of a life table must have one value per time")
    if not np.all(np.isfinite(times)) or np.any(np.diff(times) <= 0):
        raise ValueError("the times of a life table must increase")
    table = LifeTable(times, *columns)
    expected = np.cumsum(table.leaving[::-1])[::-1]
    if not np.array_equal(table.n_at_risk, expected):
        bad = int(np.flatnonzero(table.n_at_risk != expected)[0])
        raise ValueError(f"the number at risk at time {times[bad]:g} is {table.n_at_risk[bad]}"
                         f", but the counts from then on add up to {expected[bad]}")
    return table


def life_table(time, cause) -> LifeTable:
    """The life table of patient-level times and causes (0 censored, 1 event, 2 competing).

    Parameters
    ----------
    time : array_like
        Times on the grid the table is for (already rounded to it).
    cause : array_like
        0, 1 or 2 per patient.
    """
    times = np.asarray(time, dtype=float)
    causes = np.asarray(cause, dtype=int)
    if times.shape != causes.shape or not np.all(np.isin(causes, (0, 1, 2))):
        raise ValueError("cause must hold 0, 1 or 2, one per time")
    distinct, inverse = np.unique(times, return_inverse=True)
    counts = [np.bincount(inverse, weights=causes == code, minlength=distinct.size)
              for code in (1, 2, 0)]
    leaving = counts[0] + counts[1] + counts[2]
    return life_table_from_counts(distinct, np.cumsum(leaving[::-1])[::-1], *counts)


def empty_life_table() -> LifeTable:
    """A life table without patients (a group absent from a centre)."""
    nothing = np.zeros(0, np.int64)
    return LifeTable(np.zeros(0), nothing, nothing, nothing, nothing)


def pool(tables: Sequence[LifeTable]) -> LifeTable:
    """The life table of the patients of several tables together (e.g. one group's tables
    from every centre): counts added at each time of any table, numbers at risk recomputed.

    Exact: the pooled table is the one the pooled patients' rows would give on the same grid.
    """
    times = np.unique(np.concatenate([t.time for t in tables] or [np.zeros(0)]))
    counts = [sum(t.counts_at(times)[k] for t in tables) for k in range(3)]
    if not times.size:
        return empty_life_table()
    leaving = counts[0] + counts[1] + counts[2]
    return life_table_from_counts(times, np.cumsum(leaving[::-1])[::-1], *counts)


# ---------------------------------------------------------------------------------------------
# Kaplan–Meier
# ---------------------------------------------------------------------------------------------
def kaplan_meier(table: LifeTable, alpha: float = 0.05) -> pd.DataFrame:
    """Kaplan–Meier curve of cause 1 (competing events censor), from a life table.

    Returns
    -------
    pandas.DataFrame
        The columns of :func:`bridge_hsct.stats.survival.km_table` (:data:`KM_COLUMNS`), one
        row per time of the table; ``n_censored`` counts the competing events too.
    """
    n_at_risk = table.n_at_risk.astype(float)
    events = table.events.astype(float)
    survival = np.cumprod(1.0 - events / n_at_risk)
    with np.errstate(divide="ignore", invalid="ignore"):
        greenwood_sum = np.cumsum(events / (n_at_risk * (n_at_risk - events)))
        variance = np.where(survival > 0, survival**2 * greenwood_sum, np.nan)
    lower, upper = loglog_interval(survival, np.sqrt(variance), alpha)
    return pd.DataFrame(dict(zip(KM_COLUMNS, (
        table.time, table.n_at_risk, table.events, table.competing + table.censored,
        survival, variance, lower, upper), strict=True)))


def survival_at(table: LifeTable, t: float, alpha: float = 0.05) -> Estimate:
    """Kaplan–Meier survival at time `t` (in the table's unit) with its log(-log) interval,
    by the rules of :func:`bridge_hsct.stats.survival.km_at` (1 before the first time, the
    last value carried to the last time, NaN after it)."""
    if not np.isfinite(t) or t < 0:
        raise ValueError("t must be a finite, non-negative time")
    if not table.time.size or t > table.time[-1]:
        return Estimate.missing()
    row = int(np.searchsorted(table.time, t, side="right")) - 1
    if row < 0:
        return Estimate(1.0, 1.0, 1.0)
    curve = kaplan_meier(table, alpha).iloc[row]
    return Estimate(float(curve["survival"]), float(curve["lower"]), float(curve["upper"]))


def row_level_survival_bounds(table: LifeTable, t: float) -> tuple[float, float]:
    """Bounds on the Kaplan–Meier survival at `t` of the rows a coarse life table was
    counted from, computed from the coarse table alone.

    A table on a grid of width ``w`` counts a time of ``s`` at grid point ``ceil(s / w)``:
    events and censorings move to the end of their interval. With ``t`` in grid units,
    ``S_rows`` the Kaplan–Meier estimate of the original times (competing events censor)
    and ``S_grid`` that of the table,

        ``prod_{k <= ceil(t)} max(0, 1 - d_k / (n_k - c_k))  <=  S_rows(t)  <=  S_grid(t)``

    where row ``k`` of the table has ``n_k`` at risk, ``d_k`` events and ``c_k`` censorings
    and competing events. Proof: the ``N = n_k`` patients at risk at grid point ``k`` are
    those whose time exceeds the start of interval ``k``, as in the rows; within the
    interval the rows' factors ``1 - d_j / n_j`` multiply to ``1 - D / N`` when nobody is
    censored there (the product telescopes) and to less otherwise (censoring only lowers
    the later ``n_j``), and to at least ``1 - D / (N - C)``, because
    ``n_j >= N - C - (events before j)`` and that product telescopes too. So ``S_grid``
    at a grid point is at least, and the right-hand product at most, ``S_rows`` there;
    ``S_rows`` does not increase, and ``floor(t) <= t <= ceil(t)``. Without censoring
    inside an interval ``S_grid(t) = S_rows(floor(t))``, but with it ``S_grid(t)`` may
    exceed ``S_rows(t - 1)``: coarsening keeps censored patients at risk for longer.

    Returns
    -------
    tuple of float
        (lower, upper); NaN after the table's last time.
    """
    if not np.isfinite(t) or t < 0:
        raise ValueError("t must be a finite, non-negative time")
    if not table.time.size or t > table.time[-1]:
        return math.nan, math.nan
    upper = survival_at(table, t).value
    upto = table.time <= math.ceil(t)
    events = table.events[upto].astype(float)
    room = (table.n_at_risk - table.censored - table.competing)[upto].astype(float)
    factors = np.where(events > 0, 1 - events / np.where(room > 0, room, 1.0), 1.0)
    return float(np.prod(np.clip(factors, 0.0, 1.0))), float(upper)


# ---------------------------------------------------------------------------------------------
# Log-rank
# ---------------------------------------------------------------------------------------------
def logrank_terms(groups: Sequence[LifeTable]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Observed and expected events of cause 1 per group and the hypergeometric variance
    matrix of the log-rank test in one stratum (the terms :func:`logrank_test` sums)."""
    k = len(groups)
    times = np.unique(np.concatenate([g.time for g in groups]))
    at_risk = np.array([g.at_risk_at(times) for g in groups], float)      # k x T
    events = np.array([g.counts_at(times)[0] for g in groups], float)     # k x T
    n, d = at_risk.sum(axis=0), events.sum(axis=0)
    share = np.divide(at_risk, n, out=np.zeros_like(at_risk), where=n > 0)
    expected = (d * share).sum(axis=1)
    spread = np.divide(d * (n - d), n - 1, out=np.zeros_like(n), where=n > 1)
    variance = np.zeros((k, k))
    for g in range(k):
        for h in range(k):
            variance[g, h] = (spread * share[g] * ((g == h) - share[h])).sum()
    return events.sum(axis=1), expected, variance


def logrank_test(strata: Sequence[Sequence[LifeTable]]) -> ChiSquareTest:
    """K-sample log-rank test of cause 1, stratified by the outer sequence.

    Parameters
    ----------
    strata : one sequence of life tables per stratum (e.g. per centre), each with one table
        per group in the same order (:func:`empty_life_table` for a group absent from a
        stratum). A single stratum gives the unstratified test.

    Returns
    -------
    ChiSquareTest
        ``U' V^-1 U`` over the groups with a positive expected count, less one, as R's
        ``survdiff`` (``U`` observed minus expected, ``V`` the hypergeometric variance, both
        summed over the strata); NaN with a reason when there is no event or the variance
        is singular (on a coarse grid, every patient at risk may have had the event).
    """
    n_groups = {len(s) for s in strata}
    if len(n_groups) != 1 or n_groups.pop() < 2:
        raise ValueError("every stratum needs the same groups, at least two")
    terms = [logrank_terms(s) for s in strata]
    observed = sum(t[0] for t in terms)
    expected = sum(t[1] for t in terms)
    variance = sum(t[2] for t in terms)
    used = np.flatnonzero(expected > 0)
    if used.size < 2:
        return ChiSquareTest(math.nan, len(strata[0]) - 1, math.nan, reason="no events")
    kept = used[1:]
    difference = (observed - expected)[kept]
    df = int(kept.size)
    matrix = variance[np.ix_(kept, kept)]
    if np.linalg.matrix_rank(matrix) < df:  # e.g. on a coarse grid, all at risk had the event
        return ChiSquareTest(math.nan, df, math.nan, reason="the variance is singular")
    chi2 = float(difference @ np.linalg.solve(matrix, difference))
    return ChiSquareTest(chi2, df, float(stats.chi2.sf(chi2, df)))


# ---------------------------------------------------------------------------------------------
# Competing risks: the package's estimators on the life table written long
# ---------------------------------------------------------------------------------------------
def transitions(table: LifeTable) -> tuple[np.ndarray, np.ndarray]:
    """The life table written long: one ``(time, cause)`` per counted transition.

    No identifier, no other variable: the same counts, one line each, in the form the
    row-based estimators of :mod:`bridge_hsct.stats.competing` read.
    """
    time = np.concatenate([np.repeat(table.time, column) for column in
                           (table.events, table.competing, table.censored)])
    cause = np.concatenate([np.full(int(column.sum()), code) for code, column in
                            ((1, table.events), (2, table.competing), (0, table.censored))])
    order = np.argsort(time, kind="stable")
    return time[order], cause[order]


def cumulative_incidence(table: LifeTable, alpha: float = 0.05
                         ) -> competing.CumulativeIncidence:
    """Aalen–Johansen cumulative incidence of cause 1 with the ``cmprsk`` variance
    (:func:`bridge_hsct.stats.competing.cumulative_incidence` on the table's transitions)."""
    time, cause = transitions(table)
    return competing.cumulative_incidence(time, cause, 1, alpha=alpha)


def gray_test(strata: Sequence[Sequence[LifeTable]]) -> ChiSquareTest:
    """Gray's test of equal cumulative incidence of cause 1, stratified by the outer
    sequence (as ``cmprsk::cuminc(..., strata=)``: scores and variances summed).

    Parameters
    ----------
    strata : as for :func:`logrank_test`.
    """
    n_groups = {len(s) for s in strata}
    if len(n_groups) != 1 or n_groups.pop() < 2:
        raise ValueError("every stratum needs the same groups, at least two")
    k = len(strata[0])
    if len(strata) == 1:
        time, cause, group = _long(strata[0])
        return competing.gray_test(time, cause, group)
    score, variance = np.zeros(k - 1), np.zeros((k - 1, k - 1))
    for stratum in strata:
        time, cause, group = _long(stratum)
        if not time.size:
            continue
        # cmprsk's crst numbers the groups of the whole data, present in a stratum or not
        s, v = competing.gray_score_and_variance(time, cause, group, k, 0.0)
        score, variance = score + s, variance + v
    if not any((t.events > 0).any() for s in strata for t in s):
        return ChiSquareTest(math.nan, k - 1, math.nan,
                             reason="no events of the cause of interest")
    if np.linalg.matrix_rank(variance) < k - 1:
        return ChiSquareTest(math.nan, k - 1, math.nan, reason="singular variance matrix")
    chi2 = float(score @ np.linalg.solve(variance, score))
    return ChiSquareTest(chi2, k - 1, float(stats.chi2.sf(chi2, k - 1)))


def _long(groups: Sequence[LifeTable]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Transitions of several groups, sorted by time, with each one's group index."""
    parts = [transitions(t) for t in groups]
    time = np.concatenate([p[0] for p in parts])
    cause = np.concatenate([p[1] for p in parts])
    group = np.concatenate([np.full(p[0].size, i) for i, p in enumerate(parts)])
    order = np.argsort(time, kind="stable")
    return time[order], cause[order], group[order]


# ---------------------------------------------------------------------------------------------
# Per-stratum effects and their heterogeneity
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PetoEffect:
    """The one-step (Peto) log hazard ratio of one group against a reference in one stratum,
    from the log-rank terms: ``log HR = (O - E) / V`` with variance ``1 / V``.

    Parameters
    ----------
    observed_minus_expected : events of the compared group minus those expected under equal
        hazards (``O - E``).
    variance : the hypergeometric variance ``V`` (0 when the stratum has no informative event).
    """

    observed_minus_expected: float
    variance: float

    @property
    def log_hazard_ratio(self) -> float:
        """``(O - E) / V``; NaN without information."""
        return self.observed_minus_expected / self.variance if self.variance > 0 else math.nan

    @property
    def standard_error(self) -> float:
        """``1 / sqrt(V)``; NaN without information."""
        return 1 / math.sqrt(self.variance) if self.variance > 0 else math.nan

    def hazard_ratio(self, alpha: float = 0.05) -> Estimate:
        """The hazard ratio with its Wald interval on the log scale."""
        if not self.variance > 0:
            return Estimate.missing()
        z = stats.norm.ppf(1 - alpha / 2)
        log_hr, se = self.log_hazard_ratio, self.standard_error
        return Estimate(math.exp(log_hr), math.exp(log_hr - z * se), math.exp(log_hr + z * se))


def peto_effect(reference: LifeTable, compared: LifeTable) -> PetoEffect:
    """:class:`PetoEffect` of `compared` against `reference` (cause 1; competing events
    censor), from the two-group log-rank terms."""
    observed, expected, variance = logrank_terms([reference, compared])
    return PetoEffect(float(observed[1] - expected[1]), float(variance[1, 1]))


@dataclass(frozen=True)
class FixedEffectPool:
    """Inverse-variance (fixed-effect) pooling of per-stratum estimates and the test of
    their heterogeneity.

    Parameters
    ----------
    estimate, standard_error : the pooled estimate and its standard error.
    q : Cochran's Q, ``sum w_i (x_i - pooled)^2`` with ``w_i = 1 / se_i^2``.
    df : strata with an estimate, less one.
    p_value : P of Q against chi-square with `df` degrees of freedom (NaN when ``df = 0``).
    i_squared : Higgins' I², ``max(0, (Q - df) / Q)`` (0 when ``Q = 0``; NaN when ``df = 0``).
    """

    estimate: float
    standard_error: float
    q: float
    df: int
    p_value: float
    i_squared: float


def fixed_effect_pool(estimates: Sequence[float], standard_errors: Sequence[float]
                      ) -> FixedEffectPool:
    """Pool estimates (e.g. log hazard ratios of several centres) by inverse variance, with
    Cochran's Q and I²; strata without an estimate (NaN) are left out.

    For Peto effects (:class:`PetoEffect`) the pooled log hazard ratio is
    ``sum (O - E) / sum V``, the one-step estimate of the log-rank test stratified by the
    same strata.
    """
    x, se = np.asarray(estimates, float), np.asarray(standard_errors, float)
    kept = np.isfinite(x) & np.isfinite(se) & (se > 0)
    x, weight = x[kept], 1 / se[kept] ** 2
    if not x.size:
        return FixedEffectPool(math.nan, math.nan, math.nan, 0, math.nan, math.nan)
    pooled = float((weight * x).sum() / weight.sum())
    q = float((weight * (x - pooled) ** 2).sum())
    df = int(x.size - 1)
    p_value = float(stats.chi2.sf(q, df)) if df else math.nan
    i_squared = (max(0.0, (q - df) / q) if q > 0 else 0.0) if df else math.nan
    return FixedEffectPool(pooled, float(1 / math.sqrt(weight.sum())), q, df, p_value,
                           i_squared)


# ---------------------------------------------------------------------------------------------
# Cox model of the groups, stratified by centre
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class GroupCoxModel:
    """Cox model of cause 1 with one indicator per non-reference group, stratified by the
    outer sequence of life tables (Efron ties), fitted by Newton–Raphson.

    Parameters
    ----------
    log_hazard_ratio, standard_error : per non-reference group, in the groups' order.
    log_likelihood : the Efron partial log-likelihood at the estimate.
    iterations : Newton steps taken.
    reason : why it could not be fitted (no event, a group without events), else None.
    """

    log_hazard_ratio: np.ndarray
    standard_error: np.ndarray
    log_likelihood: float
    iterations: int
    reason: str | None = None

    def hazard_ratios(self, alpha: float = 0.05) -> list[Estimate]:
        """Each group's hazard ratio against the reference with its Wald interval."""
        z = stats.norm.ppf(1 - alpha / 2)
        return [Estimate(math.exp(b), math.exp(b - z * s), math.exp(b + z * s))
                if math.isfinite(b) and math.isfinite(s) else Estimate.missing()
                for b, s in zip(self.log_hazard_ratio, self.standard_error, strict=True)]

    def p_values(self) -> np.ndarray:
        """Two-sided Wald P of each group's coefficient."""
        return 2 * stats.norm.sf(np.abs(self.log_hazard_ratio / self.standard_error))


def _efron_risk_sets(strata: Sequence[Sequence[LifeTable]]):
    """At-risk and event counts per group (T x k) at every event time of every stratum, each
    time repeated once per tied event with Efron's share ``l / d`` of the events removed."""
    rows_n, rows_d, share = [], [], []
    for groups in strata:
        times = np.unique(np.concatenate([g.time for g in groups]))
        at_risk = np.array([g.at_risk_at(times) for g in groups], float).T
        events = np.array([g.counts_at(times)[0] for g in groups], float).T
        tied = events.sum(axis=1).astype(int)
        keep = tied > 0
        at_risk, events, tied = at_risk[keep], events[keep], tied[keep]
        repeat = np.repeat(np.arange(tied.size), tied)
        rows_n.append(at_risk[repeat])
        rows_d.append(events[repeat])
        offsets = np.arange(repeat.size) - np.repeat(np.cumsum(tied) - tied, tied)
        share.append(offsets / tied[repeat])
    return np.vstack(rows_n), np.vstack(rows_d), np.concatenate(share)


def group_cox_model(strata: Sequence[Sequence[LifeTable]], max_iterations: int = 50,
                    tolerance: float = 1e-12) -> GroupCoxModel:
    """Fit :class:`GroupCoxModel` from life tables.

    With a categorical covariate (the group), Efron's partial likelihood depends on the data
    only through, at each event time of each stratum, the number at risk and the number of
    events in each group; the life tables hold exactly these, so the fit equals R's
    ``coxph(Surv(time, status) ~ group + strata(centre), ties = "efron")`` on the rows.

    Parameters
    ----------
    strata : as :func:`logrank_test`: per stratum, one life table per group (reference
        first); competing events count as censoring.
    max_iterations, tolerance : Newton–Raphson stops when the largest step is below
        `tolerance`.
    """
    k = len(strata[0])
    if any(len(s) != k for s in strata) or k < 2:
        raise ValueError("every stratum needs the same groups, at least two")
    n, d, share = _efron_risk_sets(strata)
    missing = np.full(k - 1, math.nan)
    if not d.size:
        return GroupCoxModel(missing, missing, math.nan, 0, reason="no events")
    if (d.sum(axis=0) == 0).any():
        return GroupCoxModel(missing, missing, math.nan, 0,
                             reason="a group has no event: its hazard ratio is not finite")
    first = np.flatnonzero(share == 0)  # one row per event time: the observed-events term
    observed = d[first].sum(axis=0)[1:]
    beta = np.zeros(k - 1)

    def terms(beta):
        weight = np.exp(np.concatenate(([0.0], beta)))
        a = (n - share[:, None] * d) * weight                    # rows x k
        total = a.sum(axis=1)
        log_lik = float(observed @ beta - np.log(total).sum())
        mean = a[:, 1:] / total[:, None]
        score = observed - mean.sum(axis=0)
        information = np.diag(mean.sum(axis=0)) - mean.T @ mean
        return log_lik, score, information

    iterations, step = 0, np.inf
    while iterations < max_iterations and np.abs(step).max() >= tolerance:
        _, score, information = terms(beta)
        step = np.linalg.solve(information, score)
        beta, iterations = beta + step, iterations + 1
    log_lik, _, information = terms(beta)
    se = np.sqrt(np.diag(np.linalg.inv(information)))
    return GroupCoxModel(beta, se, log_lik, iterations)

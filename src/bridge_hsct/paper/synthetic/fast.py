"""Vectorised Kaplan-Meier, log-rank and Cox arithmetic for the optimiser's inner loop.

The calibration evaluates thousands of candidate cohorts, so everything here works on plain
numpy arrays for all endpoints and all patient groups at once. The conventions are those of
:mod:`bridge_hsct.stats.survival` (events before censorings at tied times, Greenwood variance,
log-log interval, log-rank as R's ``survdiff``); the final report recomputes every number with
the book's own functions, so this module only has to be close enough to steer the search.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import erfc, stdtr

Z95 = 1.959963984540054


def km_grid(T: np.ndarray, E: np.ndarray, G: np.ndarray):
    """Risk-set counts of several endpoints in several groups at every distinct time.

    Parameters
    ----------
    T : (m, n) float array, times of ``m`` endpoints for ``n`` patients.
    E : (m, n) bool array, event indicators.
    G : (g, n) bool array, group membership masks.

    Returns
    -------
    N, D : (m, n, g) arrays
        Number at risk and number of events in each group at the time ``T[m, i]``; rows ``i``
        that repeat an earlier time of the same endpoint are zeroed in ``D`` so that each
        distinct time counts once.
    """
    at_risk = T[:, None, :] >= T[:, :, None]  # [m, i, j]: j at risk at T[m, i]
    same = T[:, None, :] == T[:, :, None]
    Gf = G.T.astype(float)  # (n, g)
    N = at_risk.astype(float) @ Gf
    D = (same & E[:, None, :]).astype(float) @ Gf
    n = T.shape[1]
    earlier_same = same & np.tri(n, n, -1, dtype=bool)[None]
    first = ~earlier_same.any(axis=2)  # (m, n)
    D *= first[:, :, None]
    return N, D


def km_at(T, N, D, t, G=None):
    """Kaplan-Meier survival at times ``t`` with Greenwood log-log 95% limits.

    Parameters
    ----------
    T : (m, n) times; N, D : output of :func:`km_grid`; t : (m,) landmark per endpoint.
    G : (g, n) group masks; when given, a landmark beyond a group's largest time gives NaN
        (as :func:`bridge_hsct.stats.survival.km_at`).

    Returns
    -------
    S, lower, upper : (m, g) arrays
    """
    use = (T <= np.asarray(t)[:, None])[:, :, None] & (D > 0)
    Nsafe = np.where(N > 0, N, 1.0)
    q = np.where(use, 1.0 - D / Nsafe, 1.0)
    dead = (q <= 0).any(axis=1)
    logS = np.log(np.where(q > 0, q, 1.0)).sum(axis=1)
    gw = np.where(use & (N > D), D / (Nsafe * np.where(N > D, N - D, 1.0)), 0.0).sum(axis=1)
    S = np.where(dead, 0.0, np.exp(logS))
    with np.errstate(divide="ignore", invalid="ignore"):
        ll = np.log(-logS)
        half = Z95 * np.sqrt(gw) / logS  # negative
        lower = np.exp(-np.exp(ll - half))
        upper = np.exp(-np.exp(ll + half))
    flat = logS == 0
    lower = np.where(flat, 1.0, np.where(dead, np.nan, lower))
    upper = np.where(flat, 1.0, np.where(dead, np.nan, upper))
    if G is not None:
        last = np.where(G[None, :, :], T[:, None, :], -1.0).max(axis=2)  # (m, g)
        beyond = last < np.asarray(t)[:, None]
        S, lower, upper = (np.where(beyond, np.nan, x) for x in (S, lower, upper))
    return S, lower, upper


def logrank_p(N, D, a, b, e=None):
    """Two-group log-rank P values (1 df) between groups ``a`` and ``b``.

    Parameters
    ----------
    N, D : output of :func:`km_grid`, shape (m, n, g).
    a, b : group indices (scalars, or arrays of equal length for several comparisons).
    e : endpoint indices paired with ``a``/``b``; all endpoints when None.

    Returns
    -------
    p : (m,) or (len(a),) array, NaN when undefined.
    """
    if e is None:
        n1, n2, d1, d2 = N[:, :, a], N[:, :, b], D[:, :, a], D[:, :, b]
    else:
        n1, n2, d1, d2 = N[e, :, a], N[e, :, b], D[e, :, a], D[e, :, b]
    n, d = n1 + n2, d1 + d2
    ok = (d > 0) & (n > 0)
    ns = np.where(ok, n, 1.0)
    e1 = np.where(ok, d * n1 / ns, 0.0).sum(axis=-1)
    var = np.where(ok & (n > 1), d * (n1 / ns) * (n2 / ns) * (n - d) / np.where(n > 1, n - 1, 1),
                   0.0).sum(axis=-1)
    o1 = d1.sum(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        chi2 = (o1 - e1) ** 2 / var
        p = erfc(np.sqrt(chi2 / 2))
    return np.where(var > 0, p, np.nan)


def km_median(T: np.ndarray, E: np.ndarray) -> float:
    """Median survival time: first time the curve is at or below 0.5 (NaN if never).

    As :func:`bridge_hsct.stats.survival.km_median`, a curve sitting exactly at 0.5 gives the
    midpoint of that stretch.
    """
    order = np.argsort(T, kind="stable")
    t, e = T[order], E[order]
    uniq, start = np.unique(t, return_index=True)
    at_risk = len(t) - start
    deaths = np.add.reduceat(e.astype(float), start)
    S = np.cumprod(1 - deaths / at_risk)
    hit = np.flatnonzero(S <= 0.5 + 1e-12)
    if not len(hit):
        return math.nan
    k = hit[0]
    if abs(S[k] - 0.5) < 1e-9:
        below = np.flatnonzero(S < 0.5 - 1e-9)
        return float((uniq[k] + (uniq[below[0]] if len(below) else t[-1])) / 2)
    return float(uniq[k])


def cox_hr(T: np.ndarray, E: np.ndarray, X: np.ndarray, iters: int = 25,
           ridge: float = 1e-4, tol: float = 1e-4, start: np.ndarray | None = None
           ) -> np.ndarray:
    """Hazard ratios of a multivariable Cox model (Breslow ties, Newton-Raphson).

    A tiny ridge keeps the estimates finite when a covariate separates the events; the
    search only needs the direction and rough size of each hazard ratio.

    Parameters
    ----------
    T, E : (n,) times and event indicators; X : (n, p) covariates.

    Returns
    -------
    (p,) array of hazard ratios.
    """
    order = np.argsort(-T, kind="stable")
    T, E, X = T[order], E[order].astype(float), X[order].astype(float)
    # risk set of patient i = all j with T[j] >= T[i]; with descending order, a prefix whose
    # end is the last index with the same time
    ends = np.searchsorted(-T, -T, side="right") - 1
    beta = np.zeros(X.shape[1]) if start is None else np.array(start, float)
    for _ in range(iters):
        w = np.exp(np.clip(X @ beta, -30, 30))
        s0 = np.cumsum(w)[ends]
        s1 = np.cumsum(w[:, None] * X, axis=0)[ends]
        s2 = np.cumsum(w[:, None, None] * X[:, :, None] * X[:, None, :], axis=0)[ends]
        xbar = s1 / s0[:, None]
        grad = (E[:, None] * (X - xbar)).sum(axis=0) - ridge * beta
        info = (E[:, None, None] * (s2 / s0[:, None, None]
                                    - xbar[:, :, None] * xbar[:, None, :])).sum(axis=0)
        info += ridge * np.eye(len(beta))
        try:
            step = np.linalg.solve(info, grad)
        except np.linalg.LinAlgError:
            break
        step = np.clip(step, -2, 2)
        beta = np.clip(beta + step, -8.0, 8.0)
        if np.abs(step).max() < tol:
            break
    return np.exp(beta)


def mann_whitney_p(x: np.ndarray, y: np.ndarray) -> float:
    """Two-sided Mann-Whitney P, normal approximation with tie and continuity correction.

    This is what :func:`scipy.stats.mannwhitneyu` computes for samples of this size.
    """
    n1, n2 = len(x), len(y)
    _, inv, counts = np.unique(np.concatenate([x, y]), return_inverse=True, return_counts=True)
    avg_rank = np.cumsum(counts) - (counts - 1) / 2
    u = avg_rank[inv[:n1]].sum() - n1 * (n1 + 1) / 2
    n = n1 + n2
    sd = math.sqrt(n1 * n2 / 12 * ((n + 1) - (counts ** 3 - counts).sum() / (n * (n - 1))))
    if sd == 0:
        return math.nan
    z = (abs(u - n1 * n2 / 2) - 0.5) / sd
    return math.erfc(max(z, 0) / math.sqrt(2))


def t_test_p(x: np.ndarray, y: np.ndarray) -> float:
    """Two-sided Student t-test P (equal variances), as :func:`scipy.stats.ttest_ind`."""
    n1, n2 = len(x), len(y)
    sp2 = ((n1 - 1) * x.var(ddof=1) + (n2 - 1) * y.var(ddof=1)) / (n1 + n2 - 2)
    if sp2 <= 0:
        return math.nan
    t = (x.mean() - y.mean()) / math.sqrt(sp2 * (1 / n1 + 1 / n2))
    return float(2 * stdtr(n1 + n2 - 2, -abs(t)))

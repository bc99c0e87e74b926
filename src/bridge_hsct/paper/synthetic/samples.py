"""Two-arm value lists with published medians and ranges, tuned to a published P value.

For a continuous variable the paper gives, per arm, a median and a range (and often the
whole-cohort median and a between-arm P value). Those fix a few order statistics; the other
values are free. :func:`tune_to_p` moves the free values, one at a time and without changing
any fixed summary (nor the number of values above a threshold, e.g. age > 40), so that the
between-arm test gives the published P value as closely as possible. The paper names the
t-test for these P values while the book's tables use the Mann-Whitney test, so both are
tuned together: the search minimises the larger of the two distances.
"""

from __future__ import annotations

import numpy as np

from .fast import mann_whitney_p, t_test_p


def summaries(values: dict[str, list[float]]) -> dict:
    """Median, min and max per arm and for the whole cohort."""
    out = {}
    allv = np.concatenate([np.asarray(v, float) for v in values.values()])
    for name, v in [*values.items(), ("whole", allv)]:
        v = np.asarray(v, float)
        out[name] = (float(np.median(v)), float(v.min()), float(v.max()))
    return out


def tune_to_p(values: dict[str, list[float]], target_p: float, rng: np.random.Generator,
              step: float = 1.0, threshold: float | None = None, iterations: int = 3000
              ) -> dict[str, list[float]]:
    """Move free values of two arms so the t-test and Mann-Whitney P approach ``target_p``.

    Parameters
    ----------
    values : two arms' value lists (first arm first, as in the P value's comparison).
    target_p : the published two-sided P value.
    rng : random generator.
    step : grid of the values (1 for days and years, 0.01 for cell doses).
    threshold : if given, the number of values above it stays the same in each arm.
    iterations : number of proposals.

    Returns
    -------
    dict
        The tuned lists, sorted, with every median, minimum and maximum unchanged.
    """
    names = list(values)
    cur = {k: sorted(float(x) for x in v) for k, v in values.items()}
    fixed = summaries(cur)

    def above(v):
        return sum(x > threshold for x in v) if threshold is not None else 0

    n_above = {k: above(v) for k, v in cur.items()}

    def dist(c):
        x, y = np.asarray(c[names[0]]), np.asarray(c[names[1]])
        return max(abs(mann_whitney_p(x, y) - target_p), abs(t_test_p(x, y) - target_p))

    best = dist(cur)
    for _ in range(iterations):
        name = names[int(rng.integers(2))]
        v = cur[name]
        k = int(rng.integers(1, len(v) - 1))
        others = v[:k] + v[k + 1:]
        # a new value anywhere inside the arm's range; the checks below keep the summaries
        lo, hi = v[0], v[-1]
        new_value = round(lo + step * int(rng.integers(0, round((hi - lo) / step) + 1)), 6)
        # no repeated doses; at most a pair of equal whole-number values
        if others.count(new_value) >= (1 if step < 1 else 2):
            continue
        new = sorted([*others, new_value])
        cand = {**cur, name: new}
        if summaries(cand) != fixed or above(new) != n_above[name]:
            continue
        d = dist(cand)
        if d <= best:
            cur, best = cand, d
            if best < 0.002:
                break
    return cur

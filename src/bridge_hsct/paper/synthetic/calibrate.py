"""Seeded simulated annealing of the post-transplant histories against the targets.

The search state is the per-patient :class:`~bridge_hsct.paper.synthetic.outcomes.History` plus the
baseline columns in :data:`~bridge_hsct.paper.synthetic.baseline.SWAPPABLE`. Every move keeps the
published counts exact (covariates and GVHD events are only ever exchanged between two patients
of the same arm) and keeps each history coherent (a move that would break a rule of
:mod:`~bridge_hsct.paper.synthetic.outcomes` is rejected before evaluation). The loss is a weighted
sum over targets of a tolerance-scaled distance that jumps when a target leaves its tolerance,
so the search first brings as many targets as possible within tolerance and then tightens them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from . import fast, tails
from .baseline import SWAPPABLE
from .explanations import unreachable
from .outcomes import AGVHD_FIRST, AGVHD_LAST, CGVHD_FIRST, MAX_FOLLOWUP, History
from .targets import COX_CODING, COX_MODELS, Target, compare_values, parse_group, split_comparison

DAYS_PER_MONTH = 365.25 / 12
ENDPOINTS = ("os", "pfs", "grfs", "nrm", "relapse", "agvhd_2_4", "agvhd_3_4", "cgvhd")
INCIDENCE = {"nrm", "relapse", "agvhd_2_4", "agvhd_3_4", "cgvhd"}
COX_SCALE = math.log(1.5)
#: a death is at least this many days before the cut-off of a March 2017 transplant
LATE_DEATH_MARGIN = 60
DYNAMIC = {"km", "logrank", "km_median", "followup", "followup_p", "cox"}


def endpoint_arrays(h: History):
    """Times and event indicators of every endpoint in :data:`ENDPOINTS`.

    Mirrors :mod:`bridge_hsct.cohort.endpoints` (competing events treated as censored, as in the
    paper's 1 - Kaplan-Meier incidences) on integer-day histories.

    Returns
    -------
    T : (8, n) float array; E : (8, n) bool array.
    """
    fu = h.fu.astype(float)
    rel, death = h.rel == 1, h.death == 1
    pfs_t = np.where(rel, np.minimum(h.rel_t, fu), fu)
    pfs_e = rel | death
    big = np.inf
    g_t = np.minimum.reduce([pfs_t, np.where(h.a34 == 1, h.a34_t, big),
                             np.where(h.cgs == 1, h.cg_t, big)])
    g_e = pfs_e | (h.a34 == 1) | (h.cgs == 1)
    nrm_e = death & ~rel
    rel_e = rel

    def comp(flag, t):
        mine = (flag == 1) & (t <= pfs_t)
        return np.where(mine, t, pfs_t), mine

    a24_t, a24_e = comp(h.a24, h.a24_t)
    a34_t, a34_e = comp(h.a34, h.a34_t)
    cg_t, cg_e = comp(h.cg, h.cg_t)
    T = np.stack([fu, pfs_t, g_t, pfs_t, pfs_t, a24_t, a34_t, cg_t]).astype(float)
    E = np.stack([death, pfs_e, g_e, nrm_e, rel_e, a24_e, a34_e, cg_e])
    return T, E


def _mask(cov: dict, group: str) -> np.ndarray:
    """Patients of a group expression, on the search state's covariate arrays."""
    g = parse_group(group)
    if g[0] == "whole":
        return np.ones(len(cov["arm"]), bool)
    if g[0] == "arm":
        return cov["arm"] == g[1]
    return np.asarray(compare_values(cov[g[0]], g[1], g[2]), bool)


#: distance (in the target's unit) that costs as much as a step out of tolerance
_SCALE = {"followup": 0.3, "km_median": 1.0, "cox": COX_SCALE}
_STATS = {"median": np.median, "min": np.min, "max": np.max}


class Evaluator:
    """Recompute every dynamic target of a candidate cohort, vectorised.

    Parameters
    ----------
    targets : all targets; only kinds in :data:`DYNAMIC` are evaluated here.
    """

    def __init__(self, targets: list[Target]):
        self.targets = [t for t in targets if t.kind in DYNAMIC]
        groups = ["whole", "CAR-T", "Blinatumomab"]
        for t in self.targets:
            parts = split_comparison(t.group) if " vs " in t.group else [t.group]
            if t.kind in ("km", "logrank"):
                groups += [p for p in parts if p not in groups]
        self.groups = groups
        gi = {g: k for k, g in enumerate(groups)}
        ei = {e: k for k, e in enumerate(ENDPOINTS)}
        self.landmarks = np.full(len(ENDPOINTS), 730.5)
        km, lr = [], []
        self.kinds = np.array([t.kind for t in self.targets])
        for k, t in enumerate(self.targets):
            if t.kind == "km":
                self.landmarks[ei[t.quantity]] = t.landmark
                stat = {"ci_lower": 1, "ci_upper": 2}.get(t.statistic, 0)
                km.append((k, ei[t.quantity], gi[t.group], stat, t.quantity in INCIDENCE))
            elif t.kind == "logrank":
                a, b = split_comparison(t.group)
                lr.append((k, ei[t.quantity], gi[a], gi[b]))
        self.km = np.array(km, dtype=float).reshape(-1, 5).astype(int)
        self.lr = lr
        self.pairs = sorted({(a, b) for _, _, a, b in lr})
        # a follow-up beyond the study window is out of reach: aim at the longest possible
        self.published = np.array([min(t.published, MAX_FOLLOWUP / DAYS_PER_MONTH)
                                   if t.kind == "followup" else t.published
                                   for t in self.targets])
        tol = np.array([t.loss_tolerance for t in self.targets])
        self.is_cox = self.kinds == "cox"
        # hazard ratios are compared on the log scale: tolerance log(1 + tol / value)
        cox_tol = np.array([math.log1p(t.tolerance / t.published) if t.kind == "cox"
                            and t.tolerance > 0 else COX_SCALE for t in self.targets])
        self.tol = np.where(self.is_cox | (tol <= 0), cox_tol, tol)
        # follow-up order statistics are set to the exact published day after the search
        # (:func:`~bridge_hsct.paper.synthetic.pipeline.snap_followup`): within a day is enough here
        self.tol = np.where(self.kinds == "followup", np.maximum(self.tol, 1.2 / DAYS_PER_MONTH),
                            self.tol)
        # targets known to be out of reach keep only a token weight, so that they do not
        # pull the reachable ones away from their values
        token = [unreachable(t) and t.kind != "followup" for t in self.targets]
        self.weight = np.array([t.weight * (0.02 if k else 1.0)
                                for t, k in zip(self.targets, token, strict=True)])
        self.scale = np.array([max(_SCALE.get(t.kind, 0.0), tol_)
                               for t, tol_ in zip(self.targets, self.tol, strict=True)])
        self.lr_k = np.array([x[0] for x in lr], int)
        self.lr_e = np.array([x[1] for x in lr], int)
        self.lr_a = np.array([x[2] for x in lr], int)
        self.lr_b = np.array([x[3] for x in lr], int)
        self.median_idx = [k for k, t in enumerate(self.targets) if t.kind == "km_median"]
        self.followup_idx = [k for k, t in enumerate(self.targets) if t.kind == "followup"]
        self.followup_p_idx = [k for k, t in enumerate(self.targets) if t.kind == "followup_p"]
        self._cox_cache = {}
        self.cox = {}
        for k, t in enumerate(self.targets):
            if t.kind == "cox":
                covs = COX_MODELS[t.quantity]
                self.cox.setdefault(t.quantity, []).append((k, covs.index(t.group)))

    def masks(self, cov: dict) -> dict:
        """Group masks and Cox design matrices of a covariate assignment."""
        out = {"G": np.stack([_mask(cov, g) for g in self.groups])}
        for outcome in self.cox:
            out[outcome] = np.stack([_mask(cov, COX_CODING[c]) for c in COX_MODELS[outcome]],
                                    axis=1).astype(float)
        for k in self.median_idx + self.followup_idx:
            out[k] = _mask(cov, self.targets[k].group)
        return out

    def evaluate(self, cov: dict, h: History, masks: dict | None = None) -> np.ndarray:
        """Achieved value of every dynamic target (same units as the published values).

        Parameters
        ----------
        cov : covariate arrays; h : histories; masks : :meth:`masks` of ``cov`` (computed
            when not given).
        """
        if masks is None:
            masks = self.masks(cov)
        out = np.full(len(self.targets), np.nan)
        T, E = endpoint_arrays(h)
        G = masks["G"]
        N, D = fast.km_grid(T, E, G)
        S, lo, up = fast.km_at(T, N, D, self.landmarks, G)
        if len(self.km):
            k, e, g, stat, inc = self.km.T
            vals = np.stack([S, lo, up])[stat, e, g]
            flipped = np.stack([S, up, lo])[stat, e, g]
            out[k] = 100 * np.where(inc == 1, 1 - flipped, vals)
        if self.lr:
            out[self.lr_k] = fast.logrank_p(N, D, self.lr_a, self.lr_b, self.lr_e)
        fu_m = h.fu / DAYS_PER_MONTH
        for k in self.median_idx:
            e = ENDPOINTS.index(self.targets[k].quantity)
            m = masks[k]
            out[k] = fast.km_median(T[e][m], E[e][m]) / DAYS_PER_MONTH
        for k in self.followup_idx:
            out[k] = _STATS[self.targets[k].statistic](fu_m[masks[k]])
        if self.followup_p_idx:
            cart = G[1]
            x, y = fu_m[cart], fu_m[~cart]
            p_t, p_mw = fast.t_test_p(x, y), fast.mann_whitney_p(x, y)
            # the registry names the t-test; the book's tables use Mann-Whitney: the search
            # keeps both close (the worse of the two counts), the report shows the t-test
            out[self.followup_p_idx] = p_t if abs(p_t - self.published[self.followup_p_idx[0]]) \
                >= abs(p_mw - self.published[self.followup_p_idx[0]]) else p_mw
        for outcome, items in self.cox.items():
            e = ENDPOINTS.index(outcome)
            # the partial likelihood depends on the times only through the risk sets
            ev_times = np.unique(T[e][E[e]])
            key = (np.searchsorted(ev_times, T[e], "left").tobytes(),
                   np.searchsorted(ev_times, T[e], "right").tobytes(),
                   E[e].tobytes(), masks[outcome].tobytes())
            hit = self._cox_cache.get(outcome)
            if hit is None or hit[0] != key:
                start = None if hit is None or not np.isfinite(hit[1]).all() \
                    else np.log(hit[1])
                hr = fast.cox_hr(T[e], E[e], masks[outcome], start=start)
                if (np.abs(np.log(hr)) > 7.5).any():  # separation: no finite estimate
                    hr = np.full_like(hr, np.nan)
                self._cox_cache[outcome] = hit = (key, hr)
            for k, j in items:
                out[k] = hit[1][j]
        return out

    def differences(self, achieved: np.ndarray) -> np.ndarray:
        """Achieved minus published (log ratio for hazard ratios)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(self.is_cox, np.log(np.maximum(achieved, 1e-9) / self.published),
                            achieved - self.published)

    def distances(self, achieved: np.ndarray) -> np.ndarray:
        """Tolerance-scaled distance of each target (> 1 means outside tolerance)."""
        x = np.abs(self.differences(achieved)) / self.tol
        return np.where(np.isfinite(x), x, 1e3)

    def loss(self, achieved: np.ndarray) -> float:
        """Weighted loss: a step when out of tolerance plus a pull towards the value.

        Inside the tolerance the pull is quadratic in the tolerance-scaled distance; outside,
        it grows linearly with the distance in units of the target's ``scale``, so that far
        misses still have a gradient without swamping every other target.
        """
        d = np.abs(self.differences(achieved))
        d = np.where(np.isfinite(d), d, 1e3 * self.scale)
        x = d / self.tol
        out = (x > 1) * 1.5 + 0.25 * np.minimum(x, 1) ** 2 \
            + 0.5 * np.maximum(d - self.tol, 0) / self.scale
        return float((self.weight * out).sum())


@dataclass
class State:
    """Search state: swappable covariate columns (arrays) and histories."""

    cov: dict
    h: History
    masks: dict | None = None

    def copy(self) -> State:
        """Deep copy (the group masks are shared: moves replace them, never mutate them)."""
        return State({k: v.copy() for k, v in self.cov.items()}, self.h.copy(), self.masks)


def valid(h: History, i: int) -> bool:
    """Whether patient ``i``'s history keeps every coherence rule."""
    fu = h.fu[i]
    if fu < 1 or fu > MAX_FOLLOWUP or h.neut_t[i] > fu or h.plt_t[i] > fu:
        return False
    if h.death[i] and fu > MAX_FOLLOWUP - LATE_DEATH_MARGIN:
        return False  # no deaths piled up against the cut-off of the earliest transplants
    if h.rel[i] and (h.rel_t[i] < 1 or h.rel_t[i] > fu or (h.death[i] and h.rel_t[i] >= fu)):
        return False
    if h.a24[i] and not (max(AGVHD_FIRST, h.neut_t[i]) <= h.a24_t[i] <= min(AGVHD_LAST, fu)):
        return False  # acute GVHD starts after neutrophil engraftment, by day 100
    if h.a34[i] and not (h.a24[i] and h.a24_t[i] <= h.a34_t[i] <= min(AGVHD_LAST, fu)):
        return False
    if h.cg[i] and not (CGVHD_FIRST <= h.cg_t[i] <= fu):
        return False
    return not (h.cgs[i] and not h.cg[i])


class Annealer:
    """Simulated annealing over :class:`State` with moves that keep counts and rules.

    Parameters
    ----------
    evaluator : the target evaluator.
    arms : arm label per patient.
    disease_status : per patient (a prior HSCT is impossible in primary refractory disease).
    rng : the generator of every random choice.
    """

    def __init__(self, evaluator: Evaluator, arms: np.ndarray, disease_status: np.ndarray,
                 rng: np.random.Generator):
        self.ev = evaluator
        self.rng = rng
        self.arms = arms
        self.by_arm = {a: np.flatnonzero(arms == a) for a in np.unique(arms)}
        self.primary_refractory = disease_status == "primary_refractory"
        self.n = len(arms)
        self.moves = [
            (self._fu_jitter, 4), (self._fu_uniform, 1), (self._toggle_death, 1.5),
            (self._relapse, 3), (self._agvhd_time, 1.5), (self._gvhd_swap, 1),
            (self._a34_swap, 0.5), (self._cg_swap, 1), (self._cg_time, 1.5),
            (self._cgs_toggle, 0.7), (self._cov_swap, 2), (self._history_swap, 1.5),
            (self._fu_near, 2.5), (self._rel_near, 1.5),
        ]
        w = np.array([m[1] for m in self.moves])
        self.move_p = w / w.sum()

    # --- moves: each mutates the state in place and returns the touched patients ---------
    def _pair(self):
        i = int(self.rng.integers(self.n))
        same = self.by_arm[self.arms[i]]
        j = int(self.rng.choice(same))
        return i, j

    def _fu_jitter(self, s: State):
        i = int(self.rng.integers(self.n))
        scale = self.rng.choice([3.0, 20.0, 120.0])
        s.h.fu[i] += int(round(self.rng.normal(0, scale))) or 1
        return (i,)

    def _fu_uniform(self, s: State):
        i = int(self.rng.integers(self.n))
        s.h.fu[i] = int(self.rng.integers(40, MAX_FOLLOWUP + 1))
        return (i,)

    def _other_time(self, s: State, i: int) -> int:
        """An event or follow-up time of another patient (to reorder two patients' times)."""
        j = int(self.rng.integers(self.n - 1))
        j += j >= i
        h = s.h
        if h.rel[j] and self.rng.random() < 0.3:
            return int(h.rel_t[j])
        return int(h.fu[j])

    def _fu_near(self, s: State):
        i = int(self.rng.integers(self.n))
        s.h.fu[i] = self._other_time(s, i) + int(self.rng.choice([-1, 1]))
        return (i,)

    def _rel_near(self, s: State):
        i = int(self.rng.integers(self.n))
        s.h.rel[i] = 1
        s.h.rel_t[i] = self._other_time(s, i) + int(self.rng.choice([-1, 1]))
        return (i,)

    def _toggle_death(self, s: State):
        i = int(self.rng.integers(self.n))
        s.h.death[i] ^= 1
        return (i,)

    def _relapse(self, s: State):
        i = int(self.rng.integers(self.n))
        h = s.h
        if h.rel[i] and self.rng.random() < 0.3:
            h.rel[i], h.rel_t[i] = 0, 0
        elif h.rel[i]:
            scale = self.rng.choice([3.0, 20.0, 120.0])
            h.rel_t[i] += int(round(self.rng.normal(0, scale))) or 1
        else:
            h.rel[i], h.rel_t[i] = 1, int(self.rng.integers(20, max(h.fu[i], 21)))
        return (i,)

    def _agvhd_time(self, s: State):
        h = s.h
        idx = np.flatnonzero(h.a24)
        i = int(self.rng.choice(idx))
        if h.a34[i] and self.rng.random() < 0.5:
            h.a34_t[i] = int(self.rng.integers(h.a24_t[i], AGVHD_LAST + 1))
        else:
            h.a24_t[i] = int(self.rng.integers(AGVHD_FIRST, AGVHD_LAST + 1))
            if h.a34[i]:
                h.a34_t[i] = max(h.a34_t[i], h.a24_t[i]) if self.rng.random() < 0.5 \
                    else h.a24_t[i]
        return (i,)

    def _swap_fields(self, s: State, i, j, names):
        for name in names:
            a = getattr(s.h, name)
            a[i], a[j] = a[j], a[i]

    def _gvhd_swap(self, s: State):
        i, j = self._pair()
        self._swap_fields(s, i, j, ("a24", "a24_t", "a34", "a34_t"))
        return (i, j)

    def _a34_swap(self, s: State):
        h = s.h
        i = int(self.rng.choice(np.flatnonzero(h.a34)))
        same = [j for j in self.by_arm[self.arms[i]] if h.a24[j] and not h.a34[j]]
        if not same:
            return ()
        j = int(self.rng.choice(same))
        h.a34[i], h.a34[j] = 0, 1
        h.a34_t[j] = int(self.rng.integers(h.a24_t[j], AGVHD_LAST + 1))
        h.a34_t[i] = 0
        return (i, j)

    def _cg_swap(self, s: State):
        i, j = self._pair()
        self._swap_fields(s, i, j, ("cg", "cg_t", "cgs"))
        return (i, j)

    def _cg_time(self, s: State):
        h = s.h
        i = int(self.rng.choice(np.flatnonzero(h.cg)))
        if self.rng.random() < 0.5:
            h.cg_t[i] = int(self.rng.integers(CGVHD_FIRST, max(h.fu[i], CGVHD_FIRST) + 1))
        else:
            h.cg_t[i] += int(round(self.rng.normal(0, 30))) or 1
        return (i,)

    def _cgs_toggle(self, s: State):
        h = s.h
        i = int(self.rng.choice(np.flatnonzero(h.cg)))
        h.cgs[i] ^= 1
        return (i,)

    def _cov_swap(self, s: State):
        i, j = self._pair()
        col = SWAPPABLE[int(self.rng.integers(len(SWAPPABLE)))]
        c = s.cov[col]
        c[i], c[j] = c[j], c[i]
        s.masks = None
        if col == "prior_hsct" and ((c[i] == 1 and self.primary_refractory[i])
                                    or (c[j] == 1 and self.primary_refractory[j])):
            c[i], c[j] = c[j], c[i]
            return ()
        return ()

    def _history_swap(self, s: State):
        i, j = self._pair()
        s.h.swap(i, j)
        return (i, j)

    def loss(self, s: State) -> float:
        """Loss of a state (fills its mask cache)."""
        if s.masks is None:
            s.masks = self.ev.masks(s.cov)
        # the rules on the curves beyond the published points (issue 15) as a penalty
        rules = tails.penalty(s.h.fu, s.h.death, s.h.rel, s.h.rel_t, self.arms)
        # rounded so that last-bit floating-point differences cannot steer the search
        return round(self.ev.loss(self.ev.evaluate(s.cov, s.h, s.masks)) + rules, 9)

    # --- the search ------------------------------------------------------------------------
    def run(self, state: State, iterations: int, t_start: float, t_end: float) -> State:
        """Anneal from ``state``; return the best state seen."""
        cur = state.copy()
        cur_loss = self.loss(cur)
        best, best_loss = cur.copy(), cur_loss
        ratio = (t_end / t_start) ** (1 / max(iterations - 1, 1))
        temp = t_start
        funcs = [m[0] for m in self.moves]
        choices = self.rng.choice(len(funcs), size=iterations, p=self.move_p)
        uniforms = self.rng.random(iterations)
        for it in range(iterations):
            cand = cur.copy()
            touched = funcs[choices[it]](cand)
            if touched is None or not all(valid(cand.h, i) for i in touched):
                temp *= ratio
                continue
            loss = self.loss(cand)
            if loss <= cur_loss or uniforms[it] < math.exp((cur_loss - loss) / temp):
                cur, cur_loss = cand, loss
                if loss < best_loss:
                    best, best_loss = cand.copy(), loss
            temp *= ratio
        return best

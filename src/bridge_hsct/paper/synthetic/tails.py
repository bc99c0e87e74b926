"""Rules for the curves beyond the published time points (issue 15).

The published numbers pin the survival curves down only at a few points (2-year rates, day
100, the PFS and GRFS medians) and, loosely, through the log-rank P values. Left alone, the
search fills the rest of the follow-up with whatever costs nothing: an earlier version put 9
of 16 deaths after two years, five of them between 72 and 82 months, so that the median OS
printed as 75.6 months although the paper says it was not reached. The rules below say what
the paper states, or what a transplant physician would accept, beyond those points. The
search pays a penalty for every breach (:func:`penalty`, added to the loss in
:class:`~bridge_hsct.paper.synthetic.calibrate.Annealer`), and the generator refuses to write a
cohort that breaks one (:func:`tail_problems`, which works on the cohort file's columns).

Every rule is a :class:`TailRule` in :data:`RULES`, with the paper passage it comes from, or
``"prior"`` when it is a plausibility rule of the project's own. Times are days since the
transplant; a month is 365.25 / 12 days, as in the book.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .outcomes import CUTOFF, MIN_FULL_FOLLOWUP, accrual_periods

DAYS_PER_MONTH = 365.25 / 12
#: the published landmark (2 years), after which the paper prints no rate
LANDMARK = 730.5
#: events later than this are "late" for the clustering rule (3 years)
CLUSTER_FROM = 1095.75
#: the window and the number of events allowed in it after CLUSTER_FROM
CLUSTER_WINDOW = 365.25
CLUSTER_MAX = 1
#: late event rate allowed, as a multiple of the rate before the landmark
LATE_RATE_RATIO = 1.0
#: rise of the 1 - KM incidence from the landmark to the end of follow-up (probability)
NRM_RISE = 0.10
RELAPSE_RISE = 0.15
#: patients alive at last contact but not followed to the cut-off
LOST_MAX = 3
GROUPS = ("whole", "CAR-T", "Blinatumomab")


@dataclass(frozen=True)
class TailRule:
    """A named rule on the curves beyond the published points.

    Parameters
    ----------
    name : identifier (used in messages, the calibration page and the tests).
    statement : what the rule requires, in words.
    source : the paper passage it comes from, or ``"prior"`` (the project's own rule).
    """

    name: str
    statement: str
    source: str


RULES = (
    TailRule("os_median_not_reached",
             "The Kaplan-Meier OS of the whole cohort, and of each arm, stays above 50% to the "
             "end of follow-up, so no median OS exists.",
             "Results, 'OS and PFS': the median OS time was not reached (whole cohort; the "
             "paper prints no per-arm median OS, and the arms are held to the same rule)"),
    TailRule("late_rate_not_higher",
             "After 2 years, deaths (OS) and relapses or deaths (PFS) per patient-month of the "
             "whole cohort are no more frequent than "
             + ("" if LATE_RATE_RATIO == 1 else f"{LATE_RATE_RATIO:g} times ")
             + "in the first 2 years.",
             "prior (the published 2-year OS and PFS fix the early rate; nothing published "
             "asks for a higher one later)"),
    TailRule("no_late_cluster",
             f"After {CLUSTER_FROM / DAYS_PER_MONTH:.0f} months, no 12-month window holds more "
             f"than {CLUSTER_MAX} death or more than {CLUSTER_MAX} relapse.",
             "prior (issue 15: late hazard low and not clustered)"),
    TailRule("nrm_plateau",
             f"The 1 - KM NRM of the whole cohort and of each arm rises by at most "
             f"{100 * NRM_RISE:.0f} points from 2 years to the end of follow-up.",
             "prior (the paper prints NRM at 2 years only: 9.93%, 8.52% and 11.11%)"),
    TailRule("relapse_plateau",
             f"The 1 - KM relapse incidence of the whole cohort and of each arm rises by at "
             f"most {100 * RELAPSE_RISE:.0f} points from 2 years to the end of follow-up.",
             "prior (the paper prints no relapse incidence; relapse after allogeneic HSCT "
             "for ALL is mostly early)"),
    TailRule("followed_to_cutoff",
             f"Patients alive at last contact are followed to the 31 March 2024 cut-off, "
             f"except at most {LOST_MAX} lost to follow-up.",
             "Methods: long-term follow-up with a statistical cut-off of March 31, 2024"),
    TailRule("steady_accrual",
             "Every 12-month period of the study window from 1 March 2017 to 28 February "
             "2023 has at least one transplant.",
             "Methods: patients transplanted between March 2017 and March 2023"),
)
RULE_NAMES = tuple(r.name for r in RULES)


# --- arithmetic on plain arrays ------------------------------------------------------------
def _km(t: np.ndarray, e: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct event times and the Kaplan-Meier survival just after each (events first)."""
    if not e.any():
        return np.empty(0), np.empty(0)
    order = np.argsort(t, kind="stable")
    t, e = t[order], e[order].astype(float)
    uniq, start = np.unique(t, return_index=True)
    at_risk = len(t) - start
    d = np.add.reduceat(e, start)
    S = np.cumprod(1 - d / at_risk)
    keep = d > 0
    return uniq[keep], S[keep]


def _rise(t: np.ndarray, e: np.ndarray) -> float:
    """Rise of 1 - KM from the landmark to the last event."""
    times, S = _km(t, e)
    if not len(times):
        return 0.0
    before = S[times <= LANDMARK]
    at_landmark = before[-1] if len(before) else 1.0
    return float(at_landmark - S[-1])


def _max_in_window(t: np.ndarray) -> int:
    """Most events in any window of CLUSTER_WINDOW days starting at an event after
    CLUSTER_FROM."""
    late = np.sort(t[t > CLUSTER_FROM])
    if not len(late):
        return 0
    ends = np.searchsorted(late, late + CLUSTER_WINDOW, side="left")
    return int((ends - np.arange(len(late))).max())


def _late_excess(t: np.ndarray, e: np.ndarray) -> float:
    """Late events beyond those the early rate allows (0 when within the rule)."""
    early = e & (t <= LANDMARK)
    late = e & (t > LANDMARK)
    early_time = np.minimum(t, LANDMARK).sum()
    late_time = np.maximum(t - LANDMARK, 0).sum()
    if early_time <= 0:
        return float(late.sum())
    allowed = LATE_RATE_RATIO * early.sum() / early_time * late_time
    return max(0.0, float(late.sum() - allowed))


def rule_values(fu, death, rel, rel_t, arm) -> dict[str, float]:
    """How far a set of histories breaks each rule computable from them (0: kept).

    The two date rules (``followed_to_cutoff``, ``steady_accrual``) need transplant dates:
    here ``followed_to_cutoff`` counts patients alive with less follow-up than the last
    possible transplant allows (they cannot have reached the cut-off), and
    ``steady_accrual`` is left to the dates (:func:`date_values`).

    Parameters
    ----------
    fu : days of death or last contact; death, rel : 0/1; rel_t : relapse day (any value
        where ``rel`` is 0); arm : arm label per patient.

    Returns
    -------
    dict
        Rule name -> excess: events beyond the allowance, or probability beyond the bound.
    """
    fu = np.asarray(fu, float)
    death = np.asarray(death) == 1
    rel = np.asarray(rel) == 1
    pfs_t = np.where(rel, np.minimum(np.asarray(rel_t, float), fu), fu)
    pfs_e = rel | death
    nrm_e = death & ~rel
    arm = np.asarray(arm)
    masks = [np.ones(len(fu), bool)] + [arm == g for g in GROUPS[1:]]
    out = dict.fromkeys(RULE_NAMES, 0.0)
    for m in masks:
        times, S = _km(fu[m], death[m])
        if len(S) and S[-1] <= 0.5:
            out["os_median_not_reached"] += 0.5 - S[-1] + 0.01
        out["nrm_plateau"] += max(0.0, _rise(pfs_t[m], nrm_e[m]) - NRM_RISE)
        out["relapse_plateau"] += max(0.0, _rise(pfs_t[m], rel[m]) - RELAPSE_RISE)
    out["late_rate_not_higher"] = _late_excess(fu, death) + _late_excess(pfs_t, pfs_e)
    out["no_late_cluster"] = float(max(0, _max_in_window(fu[death]) - CLUSTER_MAX)
                                   + max(0, _max_in_window(pfs_t[rel]) - CLUSTER_MAX))
    short_alive = int((~death & (fu < MIN_FULL_FOLLOWUP)).sum())
    out["followed_to_cutoff"] = float(max(0, short_alive - LOST_MAX))
    return out


#: penalty per broken rule (a missed target costs 1.5 times its weight) and per unit of
#: excess (one event, or ten points of probability)
PENALTY_STEP = 6.0
PENALTY_SLOPE = 3.0
_UNIT = {"os_median_not_reached": 0.1, "nrm_plateau": 0.1, "relapse_plateau": 0.1}


def penalty(fu, death, rel, rel_t, arm) -> float:
    """The search's penalty for the rules broken by a set of histories (0 when all hold)."""
    total = 0.0
    for name, x in rule_values(fu, death, rel, rel_t, arm).items():
        if x > 1e-12:
            total += PENALTY_STEP + PENALTY_SLOPE * x / _UNIT.get(name, 1.0)
    return total


# --- transplant dates ------------------------------------------------------------------------
def date_values(df: pd.DataFrame) -> dict[str, float]:
    """The two date rules on cohort columns: patients lost to follow-up beyond
    :data:`LOST_MAX`, and accrual periods without a transplant."""
    date = pd.to_datetime(df["hsct_date"])
    end = date + pd.to_timedelta(df["followup_days"], unit="D")
    lost = int(((df["death"] == 0) & (end < pd.Timestamp(CUTOFF))).sum())
    empty = sum(not ((date >= pd.Timestamp(a)) & (date < pd.Timestamp(b))).any()
                for a, b in accrual_periods())
    return {"followed_to_cutoff": float(max(0, lost - LOST_MAX)),
            "steady_accrual": float(empty)}


def cohort_values(df: pd.DataFrame) -> dict[str, float]:
    """Every rule on the cohort file's columns (rule name -> excess; 0 when it holds)."""
    out = rule_values(df["followup_days"], df["death"], df["relapse"],
                      df["relapse_days"].fillna(0), df["arm"])
    out.update(date_values(df))
    return out


def tail_problems(df: pd.DataFrame) -> list[str]:
    """One message per rule the cohort breaks (empty when all hold)."""
    return [f"{name}: {next(r.statement for r in RULES if r.name == name)} "
            f"(excess {x:.3g})" for name, x in cohort_values(df).items() if x > 1e-12]


def tail_summary(df: pd.DataFrame) -> pd.DataFrame:
    """What the curves do beyond the published points, for the calibration page.

    Returns
    -------
    pandas.DataFrame
        One row per rule: the rule, its source and whether the cohort keeps it.
    """
    values = cohort_values(df)
    return pd.DataFrame([{"Rule": r.name, "Requires": r.statement, "Source": r.source,
                          "Kept": "yes" if values[r.name] <= 1e-12 else "no"}
                         for r in RULES])


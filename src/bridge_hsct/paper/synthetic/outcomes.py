"""Post-transplant histories: the state the calibration searches, and its cohort columns.

A history is held as integer days since HSCT in a :class:`History` of numpy arrays (one entry
per patient), which the optimiser mutates in place. :func:`to_frame` turns baseline plus
history into the cohort file's columns, adding transplant dates that are consistent with the
follow-up and the data cut-off.

Rules every history keeps (:func:`history_problems` checks them on the final columns):

* follow-up is the day of death or last contact, at most ``MAX_FOLLOWUP`` days (the span from
  the first possible transplant date to the cut-off);
* a relapse happens on or before the last contact, and strictly before death;
* grade II-IV acute GVHD starts after neutrophil engraftment (and not before day
  ``AGVHD_FIRST``) and by day 100, grade III-IV (always also grade II-IV) not earlier than
  grade II-IV; chronic GVHD starts after day 100; every event lies within follow-up; severe
  chronic GVHD is chronic GVHD;
* neutrophil and platelet engraftment happen in every patient (the paper reports no graft
  failure), on the day stored.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, fields

import numpy as np
import pandas as pd

FIRST_HSCT = dt.date(2017, 3, 1)
LAST_HSCT = dt.date(2023, 3, 31)
CUTOFF = dt.date(2024, 3, 31)
#: longest follow-up the study window allows (first possible transplant to the cut-off)
MAX_FOLLOWUP = (CUTOFF - FIRST_HSCT).days
#: shortest follow-up of a patient followed to the cut-off (last possible transplant)
MIN_FULL_FOLLOWUP = (CUTOFF - LAST_HSCT).days
AGVHD_FIRST = 12
AGVHD_LAST = 100
CGVHD_FIRST = 101


@dataclass
class History:
    """Event days of every patient (integer days since HSCT; 0 where the event is absent)."""

    fu: np.ndarray
    death: np.ndarray
    rel: np.ndarray
    rel_t: np.ndarray
    a24: np.ndarray
    a24_t: np.ndarray
    a34: np.ndarray
    a34_t: np.ndarray
    cg: np.ndarray
    cg_t: np.ndarray
    cgs: np.ndarray
    neut_t: np.ndarray
    plt_t: np.ndarray

    def copy(self) -> History:
        """Deep copy."""
        return History(**{f.name: getattr(self, f.name).copy() for f in fields(self)})

    def swap(self, i: int, j: int) -> None:
        """Exchange the whole histories of patients ``i`` and ``j``."""
        for f in fields(self):
            a = getattr(self, f.name)
            a[i], a[j] = a[j], a[i]


def accrual_periods() -> list[tuple[dt.date, dt.date]]:
    """The 12-month periods of the study window from ``FIRST_HSCT`` (start inclusive, end
    exclusive), as many as fit before ``LAST_HSCT``."""
    out, start = [], FIRST_HSCT
    while (end := dt.date(start.year + 1, start.month, start.day)) <= LAST_HSCT:
        out.append((start, end))
        start = end
    return out


def _dates(h: History, rng: np.random.Generator) -> np.ndarray:
    """Transplant dates: the cut-off minus follow-up for patients alive at the cut-off.

    The others (deaths, and patients lost to follow-up) can be transplanted on any day that
    keeps their history before the cut-off. They first fill the accrual periods
    (:func:`accrual_periods`) that no patient followed to the cut-off occupies, latest
    period first, each with the patient whose latest possible date is the earliest that
    still reaches it (so that a single-centre series has transplants in every year of its
    window); the rest get a uniformly drawn date.
    """
    n = len(h.fu)
    out = np.empty(n, dtype=object)
    last = (LAST_HSCT - FIRST_HSCT).days
    latest = {}
    for i in range(n):
        fu = float(h.fu[i])
        whole = fu == int(fu)
        if h.death[i] == 0 and whole and MIN_FULL_FOLLOWUP <= fu <= MAX_FOLLOWUP:
            out[i] = CUTOFF - dt.timedelta(days=int(fu))
        else:  # died, or lost to follow-up before the cut-off: any date that fits
            room = MAX_FOLLOWUP - math.ceil(fu) - (h.death[i] == 0)
            latest[i] = max(0, min(last, room))
    for start, end in reversed(accrual_periods()):
        if any(out[i] is not None and start <= out[i] < end for i in range(n)):
            continue
        lo = (start - FIRST_HSCT).days
        reach = sorted((d, i) for i, d in latest.items() if d >= lo)
        if not reach:
            continue
        d, i = reach[0]
        hi = min(d, (end - FIRST_HSCT).days - 1)
        out[i] = FIRST_HSCT + dt.timedelta(days=int(rng.integers(lo, hi + 1)))
        del latest[i]
    for i in sorted(latest):
        out[i] = FIRST_HSCT + dt.timedelta(days=int(rng.integers(0, latest[i] + 1)))
    return out


def to_frame(baseline: pd.DataFrame, h: History, seed: int) -> pd.DataFrame:
    """Combine baseline columns and histories into the cohort file.

    Parameters
    ----------
    baseline : output of :func:`bridge_hsct.paper.synthetic.baseline.allocate_baseline`.
    h : the histories, aligned with ``baseline`` rows.
    seed : seed for the transplant dates of patients not followed to the cut-off.

    Returns
    -------
    pandas.DataFrame
        Columns in data-dictionary order, rows sorted by transplant date, ids ``P01``...
    """
    from ...cohort.schema import VARIABLES
    from .protocol import COLUMNS as PROTOCOL_COLUMNS

    df = baseline.copy()
    df["hsct_date"] = pd.to_datetime(_dates(h, np.random.default_rng(seed)))
    df["followup_days"] = h.fu.astype(float)
    df["death"] = h.death
    for ind, day, flag, t in (("relapse", "relapse_days", h.rel, h.rel_t),
                              ("agvhd_2_4", "agvhd_2_4_days", h.a24, h.a24_t),
                              ("agvhd_3_4", "agvhd_3_4_days", h.a34, h.a34_t),
                              ("cgvhd", "cgvhd_days", h.cg, h.cg_t)):
        df[ind] = flag
        df[day] = np.where(flag == 1, t, np.nan)
    df["cgvhd_severe"] = h.cgs
    for ind, t in (("neutrophil_engraftment", h.neut_t), ("platelet_engraftment", h.plt_t)):
        df[ind] = 1
        df[f"{ind}_days"] = t.astype(float)
    df = df.sort_values(["hsct_date", "arm", "age_years"], kind="stable").reset_index(drop=True)
    df.insert(0, "patient_id", [f"P{i + 1:02d}" for i in range(len(df))])
    # the protocol's columns come after (see .protocol)
    return df[[v.name for v in VARIABLES if v.name not in PROTOCOL_COLUMNS]]


def history_problems(df: pd.DataFrame) -> list[str]:
    """Check the coherence rules of the module docstring directly on cohort columns.

    Returns
    -------
    list of str
        One message per broken rule (empty when the histories are coherent).
    """
    bad = []

    def rule(mask, text):
        mask = np.asarray(mask, bool)
        if mask.any():
            bad.append(f"{text}: rows {list(np.flatnonzero(mask))}")

    fu = df["followup_days"]
    date = pd.to_datetime(df["hsct_date"])
    end = date + pd.to_timedelta(fu, unit="D")
    rule(date < pd.Timestamp(FIRST_HSCT), "transplant before March 2017")
    rule(date > pd.Timestamp(LAST_HSCT), "transplant after March 2023")
    rule(end > pd.Timestamp(CUTOFF), "death or last contact after the cut-off")
    rel = df["relapse"] == 1
    rule(rel & (df["relapse_days"] > fu), "relapse after last contact")
    rule(rel & (df["death"] == 1) & (df["relapse_days"] >= fu), "relapse not before death")
    a24, a34 = df["agvhd_2_4"] == 1, df["agvhd_3_4"] == 1
    rule(a24 & ((df["agvhd_2_4_days"] > AGVHD_LAST) | (df["agvhd_2_4_days"] < 1)),
         "grade II-IV aGVHD onset outside days 1-100")
    rule(a24 & (df["agvhd_2_4_days"] < df["neutrophil_engraftment_days"]),
         "grade II-IV aGVHD before neutrophil engraftment")
    rule(a34 & ~a24, "grade III-IV aGVHD without grade II-IV")
    rule(a34 & (df["agvhd_3_4_days"] < df["agvhd_2_4_days"]),
         "grade III-IV aGVHD before grade II-IV")
    rule(a34 & (df["agvhd_3_4_days"] > AGVHD_LAST), "grade III-IV aGVHD after day 100")
    cg = df["cgvhd"] == 1
    rule(cg & (df["cgvhd_days"] < CGVHD_FIRST), "chronic GVHD onset by day 100")
    rule((df["cgvhd_severe"] == 1) & ~cg, "severe chronic GVHD without chronic GVHD")
    for col in ("relapse", "agvhd_2_4", "agvhd_3_4", "cgvhd", "neutrophil_engraftment",
                "platelet_engraftment"):
        happened = df[col] == 1
        rule(happened & (df[f"{col}_days"] > fu), f"{col} after death or last contact")
        rule(happened & df[f"{col}_days"].isna(), f"{col} without a day")
        rule(~happened & df[f"{col}_days"].notna(), f"{col}_days without the event")
    rule(fu > MAX_FOLLOWUP, "follow-up longer than the study window")
    return bad


# --- engraftment days: fixed value lists per arm (medians and ranges as published) -------
#: neutrophil engraftment, CAR-T 13 (10-20), blinatumomab 13 (10-24), whole 13 (10-24)
NEUTROPHIL_DAYS = {
    "CAR-T": [10, 10, 11, 11, 11, 12, 12, 12, 12, 12, 13, 13, 13, 13, 13, 13, 14, 14, 14, 14,
              15, 15, 16, 16, 17, 18, 20],
    "Blinatumomab": [10, 11, 12, 12, 13, 14, 15, 17, 24],
}
#: platelet engraftment, CAR-T 17 (10-35), blinatumomab 14 (10-24), whole 15 (10-35)
PLATELET_DAYS = {
    "CAR-T": [10, 11, 11, 12, 12, 13, 13, 13, 14, 14, 14, 14, 15, 17, 17, 18, 19, 20, 21, 22,
              23, 25, 26, 28, 30, 32, 35],
    "Blinatumomab": [10, 11, 12, 13, 14, 15, 18, 21, 24],
}


def initial_history(arms: np.ndarray, ikzf1: np.ndarray, rng: np.random.Generator,
                    engraftment: dict | None = None) -> History:
    """A designed starting history for the calibration (Table 3 GVHD counts exact).

    The overall-survival block is the hardest part of the search, so it starts from a
    structure worked out by hand that meets, at once, the 2-year OS of both arms (CAR-T 21/27
    in shape, blinatumomab 8/9), the whole cohort (76.54%, below both arms, which needs most
    blinatumomab patients censored before the late CAR-T deaths), the IKZF1 subgroups (3 of 5
    deaths; 86.85% of 31) and the follow-up medians and ranges:

    * blinatumomab: the only death (non-relapse) on day 222, the shortest follow-up of the
      arm; four relapses after it and before any censoring (PFS 4/9); the IKZF1 patient has
      the longest follow-up;
    * CAR-T: a non-relapse death on day 70 (the shortest follow-up), a second non-relapse
      death and a death after relapse once three blinatumomab patients are censored, and the
      three deaths of IKZF1 patients late in the second year, after seven blinatumomab
      patients and one CAR-T patient are censored.

    Parameters
    ----------
    arms : arm label of every patient (CAR-T first, then blinatumomab, as the baseline).
    ikzf1 : 0/1 IKZF1 (Ikaros isoform 6) indicator of every patient.
    rng : random generator (permutations and jitter only).
    engraftment : ``{"neutrophil_engraftment": {arm: days}, "platelet_engraftment": ...}``;
        :data:`NEUTROPHIL_DAYS` and :data:`PLATELET_DAYS` when None.

    Returns
    -------
    History
    """
    n = len(arms)
    z = np.zeros(n, np.int64)
    h = History(fu=z.copy(), death=z.copy(), rel=z.copy(), rel_t=z.copy(), a24=z.copy(),
                a24_t=z.copy(), a34=z.copy(), a34_t=z.copy(), cg=z.copy(), cg_t=z.copy(),
                cgs=z.copy(), neut_t=z.copy(), plt_t=z.copy())
    cart = np.flatnonzero(arms == "CAR-T")
    blin = np.flatnonzero(arms == "Blinatumomab")
    pos = ikzf1 == 1
    c_pos = list(rng.permutation(cart[pos[cart]]))
    c_neg = list(rng.permutation(cart[~pos[cart]]))
    b_pos = list(blin[pos[blin]])
    b_neg = list(rng.permutation(blin[~pos[blin]]))

    def put(i, fu, death=0, rel=0):
        h.fu[i], h.death[i] = fu, death
        if rel:
            h.rel[i], h.rel_t[i] = 1, rel

    # CAR-T: (follow-up, death, relapse day)
    put(c_neg.pop(), 70, 1)                      # non-relapse death, shortest follow-up
    put(c_neg.pop(), 480, 1)                     # non-relapse death
    put(c_neg.pop(), 500, 1, 300)                # death after relapse
    put(c_neg.pop(), 620)                        # censored before the IKZF1 deaths
    for fu, r in ((650, 350), (680, 420), (710, 560)):
        put(c_pos.pop(), fu, 1, r)               # IKZF1 patients: relapse, then death
    alive = [760, 800, 850, 900, 940, 980, 996, 1060, 1150, 1240, 1330, 1420, 1560, 1700,
             1850, 2000, 2200, 2400, 2500, 2587]
    relapsed = {760: 150, 940: 250, 1150: 380, 1560: 450, 2000: 600}
    rest = c_pos + c_neg
    for i, fu in zip(rng.permutation(rest), alive, strict=True):
        put(i, fu, 0, relapsed.get(fu, 0))
    # blinatumomab
    put(b_neg.pop(), 222, 1)                     # the only death, non-relapse
    put(b_pos[0], 1894)                          # IKZF1 patient, longest follow-up
    fus = [380, 420, 470, 512, 560, 590, 630]
    relapses = {380: 240, 470: 270, 560: 300, 630: 340}
    for i, fu in zip(b_neg, fus, strict=True):
        put(i, fu, 0, relapses.get(fu, 0))
    engraftment = engraftment or {"neutrophil_engraftment": NEUTROPHIL_DAYS,
                                  "platelet_engraftment": PLATELET_DAYS}
    for arm, idx in (("CAR-T", cart), ("Blinatumomab", blin)):
        h.neut_t[idx] = rng.permutation(engraftment["neutrophil_engraftment"][arm])
        h.plt_t[idx] = rng.permutation(engraftment["platelet_engraftment"][arm])
    # GVHD: Table 3 counts per arm; onsets after engraftment and within follow-up
    for idx, n24, n34, ncg in ((cart, 6, 3, 4), (blin, 3, 2, 2)):
        p = rng.permutation(idx)
        for k in range(n24):
            h.a24[p[k]], h.a24_t[p[k]] = 1, int(rng.integers(25, 60))
        for k in range(n34):
            h.a34[p[k]], h.a34_t[p[k]] = 1, h.a24_t[p[k]] + int(rng.integers(0, 20))
        q = rng.permutation([i for i in idx if h.fu[i] > 200])
        for k in range(ncg):
            h.cg[q[k]], h.cg_t[q[k]] = 1, int(rng.integers(CGVHD_FIRST, min(h.fu[q[k]], 400)))
        h.cgs[q[0]] = 1
    return h

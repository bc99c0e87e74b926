"""Derived endpoints, computed from the raw events with the paper's definitions.

Every endpoint is returned as a frame indexed like the cohort with two columns:

``time``
    days since HSCT to the first event or to censoring;
``cause``
    0 censored, 1 the event of interest, 2 a competing event (only for incidence endpoints).

Definitions (Cao et al. 2025, Methods "Definition and assessment"):

* OS: death from any cause.
* PFS: relapse or death, whichever comes first.
* GRFS: relapse, death, grade III–IV acute GVHD or severe chronic GVHD, whichever first.
* NRM: death without prior relapse; relapse is the competing event.
* Relapse incidence: relapse; death without relapse competes.
* GVHD and engraftment incidence: the event; relapse or death before it compete
  (for engraftment: death before engraftment).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


def _frame(df: pd.DataFrame, time, cause) -> pd.DataFrame:
    return pd.DataFrame({"time": np.asarray(time, float), "cause": np.asarray(cause, int)},
                        index=df.index)


def _first_event(df: pd.DataFrame, events: list[tuple[str, str]]) -> pd.DataFrame:
    """Time to the first of several (indicator, day) events, else censored at follow-up."""
    time = df["followup_days"].to_numpy(float).copy()
    happened = np.zeros(len(df), bool)
    for indicator, day in events:
        if indicator not in df:
            continue
        hit = df[indicator].to_numpy() == 1
        days = df[day].to_numpy(float) if day in df else np.full(len(df), np.nan)
        earlier = hit & (days <= time)
        time = np.where(earlier, days, time)
        happened |= hit
    return _frame(df, time, happened)


def overall_survival(df: pd.DataFrame) -> pd.DataFrame:
    """Death from any cause; alive patients censored at last contact."""
    return _frame(df, df["followup_days"], df["death"] == 1)


def progression_free_survival(df: pd.DataFrame) -> pd.DataFrame:
    """Relapse or death, whichever first."""
    return _first_event(df, [("relapse", "relapse_days"), ("death", "followup_days")])


def gvhd_relapse_free_survival(df: pd.DataFrame) -> pd.DataFrame:
    """Relapse, death, grade III–IV aGVHD or severe chronic GVHD, whichever first."""
    out = df.copy()
    if "cgvhd_severe" in out and "cgvhd_days" in out:
        out["_severe_cgvhd_days"] = out["cgvhd_days"].where(out["cgvhd_severe"] == 1)
    return _first_event(out, [
        ("relapse", "relapse_days"), ("death", "followup_days"),
        ("agvhd_3_4", "agvhd_3_4_days"), ("cgvhd_severe", "_severe_cgvhd_days"),
    ])


def _competing(df: pd.DataFrame, event: str, competitors: list[tuple[str, str]]):
    """Cause 1 = `event` first, cause 2 = a competitor first, 0 = censored at follow-up."""
    first = _first_event(df, competitors)
    time_event = df[f"{event}_days"].to_numpy(float)
    hit = df[event].to_numpy() == 1
    # an event on the same day as a competitor counts as the event of interest
    mine = hit & ~(time_event > first["time"].to_numpy())
    time = np.where(mine, time_event, first["time"])
    cause = np.where(mine, 1, np.where(first["cause"] == 1, 2, 0))
    return _frame(df, time, cause)


def non_relapse_mortality(df: pd.DataFrame) -> pd.DataFrame:
    """Death without prior relapse (cause 1); relapse competes (cause 2)."""
    first = _first_event(df, [("relapse", "relapse_days"), ("death", "followup_days")])
    relapse_first = (df["relapse"].to_numpy() == 1) & (
        df["relapse_days"].to_numpy(float) <= first["time"].to_numpy()
    )
    cause = np.where(first["cause"] == 0, 0, np.where(relapse_first, 2, 1))
    return _frame(df, first["time"], cause)


def relapse_incidence(df: pd.DataFrame) -> pd.DataFrame:
    """Relapse (cause 1); death without relapse competes (cause 2)."""
    nrm = non_relapse_mortality(df)
    return _frame(df, nrm["time"], nrm["cause"].map({0: 0, 1: 2, 2: 1}))


def gvhd_incidence(df: pd.DataFrame, event: str) -> pd.DataFrame:
    """Onset of `event` (e.g. ``"agvhd_2_4"``); relapse or death before it compete."""
    return _competing(df, event, [("relapse", "relapse_days"), ("death", "followup_days")])


def engraftment_incidence(df: pd.DataFrame, event: str) -> pd.DataFrame:
    """Engraftment `event` (cause 1); death before engraftment competes (cause 2)."""
    return _competing(df, event, [("death", "followup_days")])


def as_censored(endpoint: pd.DataFrame) -> pd.DataFrame:
    """Treat competing events as censoring: the input of the paper's 1 − Kaplan–Meier."""
    out = endpoint.copy()
    out["cause"] = (out["cause"] == 1).astype(int)
    return out


@dataclass(frozen=True)
class Endpoint:
    """A named endpoint: how to derive it, which events it is made of and how the book
    reports it.

    ``requires`` are the event indicators it cannot be computed without; ``competing`` those
    of its competing events, used when the data have them (without them, every patient is
    followed for the event until last contact, and only 1 − Kaplan–Meier is meaningful).
    """

    name: str
    label: str
    derive: object
    kind: str  # "survival" (Kaplan–Meier) or "incidence" (cumulative incidence)
    requires: tuple = ()
    competing: tuple = ()

    def components(self, df: pd.DataFrame) -> list[str]:
        """The event indicators of `df` the endpoint is computed from (those it requires
        and the competing events `df` records)."""
        return [c for c in self.requires + self.competing if c in df]


ENDPOINTS: dict[str, Endpoint] = {e.name: e for e in [
    Endpoint("os", "Overall survival", overall_survival, "survival", ("death",)),
    Endpoint("pfs", "Progression-free survival", progression_free_survival, "survival",
             ("relapse", "death")),
    # GRFS needs its GVHD components: without them it would quietly become PFS
    Endpoint("grfs", "GVHD-free, relapse-free survival", gvhd_relapse_free_survival,
             "survival", ("relapse", "death", "agvhd_3_4", "cgvhd", "cgvhd_severe")),
    Endpoint("nrm", "Non-relapse mortality", non_relapse_mortality, "incidence",
             ("death", "relapse")),
    Endpoint("relapse", "Relapse", relapse_incidence, "incidence", ("relapse", "death")),
    *[Endpoint(name, label, (lambda d, n=name: gvhd_incidence(d, n)), "incidence", (name,),
               ("relapse", "death"))
      for name, label in [("agvhd_2_4", "Grade II–IV acute GVHD"),
                          ("agvhd_3_4", "Grade III–IV acute GVHD"),
                          ("cgvhd", "Chronic GVHD")]],
    *[Endpoint(name, label, (lambda d, n=name: engraftment_incidence(d, n)), "incidence",
               (name,), ("death",))
      for name, label in [("neutrophil_engraftment", "Neutrophil engraftment"),
                          ("platelet_engraftment", "Platelet engraftment")]],
]}


def _day_column(indicator: str) -> str:
    return "followup_days" if indicator == "death" else f"{indicator}_days"


def missing_columns(df: pd.DataFrame, name: str) -> list[str]:
    """Columns endpoint `name` cannot be computed without that `df` lacks: its event
    indicators and, for each, the day it happened (``cgvhd_severe`` needs ``cgvhd_days``)."""
    needed = []
    for indicator in ENDPOINTS[name].requires:
        day = "cgvhd_days" if indicator == "cgvhd_severe" else _day_column(indicator)
        needed += [indicator, day]
    return [c for c in dict.fromkeys(needed) if c not in df]


def missing_competitors(df: pd.DataFrame, name: str) -> list[str]:
    """Competing events of endpoint `name` that `df` does not record."""
    return [c for c in ENDPOINTS[name].competing if c not in df]


def unknown_status(df: pd.DataFrame, name: str) -> pd.DataFrame:
    """Why each patient's status for endpoint `name` is unknown: one boolean column per
    event the endpoint is made of, True where that event is blank (or happened on a blank
    day). A patient with any True is left out of the endpoint.

    A blank is unknown, never "no event"; a composite endpoint needs every component known.
    """
    reasons = {}
    for indicator in ENDPOINTS[name].components(df):
        if indicator == "cgvhd_severe":  # a severity matters only for a chronic GVHD
            cgvhd, severe = df["cgvhd"], df["cgvhd_severe"]
            reasons[indicator] = cgvhd.isna() | ((cgvhd == 1) & severe.isna())
            continue
        value, day = df[indicator], _day_column(indicator)
        when = df[day] if day in df else pd.Series(np.nan, index=df.index)
        reasons[indicator] = value.isna() | ((value == 1) & when.isna())
    return pd.DataFrame(reasons, index=df.index, dtype=bool)


def known_status(df: pd.DataFrame, name: str) -> pd.Series:
    """Whether each patient's status for endpoint `name` is known (see
    :func:`unknown_status`): the patients it is computed on."""
    return ~unknown_status(df, name).any(axis=1)


def derive(df: pd.DataFrame, name: str) -> pd.DataFrame:
    """Derive endpoint `name` (a key of :data:`ENDPOINTS`) from a validated cohort whose
    patients all have a known status for it (select them with :func:`known_status`).

    Raises
    ------
    KeyError
        When a column the endpoint needs is absent.
    ValueError
        When a patient's status is unknown: counted as "no event" it would bias every
        estimate, so it must be left out first.
    """
    endpoint = ENDPOINTS[name]
    missing = missing_columns(df, name)
    if missing:
        raise KeyError(f"endpoint {name!r} needs column(s) {missing}")
    unknown = ~known_status(df, name)
    if unknown.any():
        raise ValueError(f"endpoint {name!r}: {int(unknown.sum())} patient(s) with an "
                         "unknown status; select the known ones with known_status()")
    return endpoint.derive(df)

"""Seeded simulated cohorts of any size, of the shape a transplant centre's file has.

The bundled synthetic cohort has 36 patients: resampling it gives 36 distinct histories and
follow-up times tied in blocks, which is not what a real cohort of thousands looks like (and
hides every cost of an estimator that grows with the number of distinct times). This module
draws each patient's history from simple hazard models instead:

* three arms (the first is the reference), baseline columns with the prevalences of the
  synthetic cohort, a few optional columns absent and a few with blank cells;
* transplants spread over 7.5 years before a data cut-off, so follow-up is censored
  administratively (0.75 to 8.25 years) and by loss to follow-up (about 2% a year);
* relapse (a cure fraction, then a Weibull time), non-relapse death (a decreasing Weibull
  hazard), death after relapse, acute and chronic GVHD, engraftment, all shifted by arm,
  disease status, MRD, age and comorbidity.

With the defaults, about 40% of patients relapse and 48% die (52% are censored alive), with
a median follow-up of about two years; times are whole days, about 3,000 distinct follow-up
days for 10,000 patients or more (``whole_days=False`` gives thousandths of a day: event
times practically all distinct). The result obeys every
rule of :mod:`bridge_hsct.cohort.schema`: each event column is 0/1 for every patient, its day
is given exactly when the event happened and never after ``followup_days``, grade III–IV
acute GVHD starts no earlier than grade II–IV, severe chronic GVHD is chronic GVHD.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .schema import VARIABLES


@dataclass(frozen=True)
class Arm:
    """One simulated group: its label, its share of patients and its hazard ratios against
    the reference arm (the first)."""

    label: str
    share: float
    relapse_hazard_ratio: float = 1.0
    death_hazard_ratio: float = 1.0


ARMS = (
    Arm("CAR-T", 0.45),
    Arm("Blinatumomab", 0.35, relapse_hazard_ratio=1.4, death_hazard_ratio=1.1),
    Arm("Inotuzumab", 0.20, relapse_hazard_ratio=1.2, death_hazard_ratio=1.3),
)

#: Optional columns a simulated file leaves out, as a centre that does not record them would
#: (none of them feeds a figure, so the benchmark still runs every analysis).
ABSENT_COLUMNS = ("t315i", "notch1_mutation", "donor_sex", "urinary_tract_infection")

#: Optional baseline columns with some blank cells (unknown values), and the share blank.
BLANK_SHARES = {"hct_ci": 0.05, "donor_age_years": 0.03, "cd34_dose": 0.04, "tnc_dose": 0.04}

#: Share of patients with each baseline or complication flag (those of the synthetic cohort).
PREVALENCE = {
    "ph_positive": 0.36, "tp53_mutation": 0.06, "mll_rearrangement": 0.06,
    "ikzf1_isoform6": 0.14, "e2a_pbx1": 0.03, "notch1_mutation": 0.03, "ph_like": 0.11,
    "complex_karyotype": 0.25, "extramedullary_disease": 0.08, "prior_hsct": 0.11,
    "mrd_positive": 0.14, "tma": 0.11, "hemorrhagic_cystitis": 0.28, "ptld": 0.08,
    "cmv_reactivation": 0.61, "cmv_disease": 0.08, "ebv_reactivation": 0.8,
    "hzv_hhv6_reactivation": 0.14,
    "pulmonary_infection": 0.61, "upper_respiratory_infection": 0.47,
    "soft_tissue_infection": 0.39, "gi_infection": 0.25, "bloodstream_infection": 0.22,
    "urinary_tract_infection": 0.06,
}

FIRST_HSCT = pd.Timestamp("2016-01-01")
CUTOFF = pd.Timestamp("2024-03-31")
ACCRUAL_DAYS = 2740  # transplants until 2023-07-03, 0.75 years before the cut-off
DAYS_PER_YEAR = 365.25


def simulate_cohort(n_patients: int, seed: int = 20250403, *, arms: Iterable[Arm] = ARMS,
                    whole_days: bool = True, absent: Iterable[str] = ABSENT_COLUMNS,
                    blank_shares: Mapping[str, float] = BLANK_SHARES,
                    unknown_events: Mapping[str, float] | None = None) -> pd.DataFrame:
    """A simulated cohort of `n_patients`, the same for the same arguments.

    Parameters
    ----------
    n_patients : number of patients (rows); at least 2 per arm for a usable file.
    seed : seed of the random generator.
    arms : the groups, reference first; shares are normalised to sum to 1.
    whole_days : times in whole days, as registries record them; False gives thousandths
        of a day, so that practically every event time is distinct.
    absent : optional columns to leave out of the file.
    blank_shares : optional baseline columns with blank cells, and the share of blanks.
    unknown_events : event indicators (``"relapse"``, ``"death"``, ...) and the share of
        patients whose status is unknown: the indicator and its day are blank, and so is
        what depends on it (grade III–IV aGVHD on grade II–IV, severity on chronic GVHD);
        a third of them instead keep an event with its day blank, where they had one.

    Returns
    -------
    pandas.DataFrame
        One row per patient, the columns of :data:`bridge_hsct.cohort.schema.VARIABLES`
        (less `absent`) in the data dictionary's order, as a cohort file holds them:
        identifiers and codes as text, flags and grades as nullable integers, doses and
        ages as numbers, event days blank when the event did not happen, and ``hsct_date``
        as ``YYYY-MM-DD`` text. It passes
        :func:`bridge_hsct.cohort.validate.validate_cohort`.
    """
    rng = np.random.default_rng(seed)
    arms = tuple(arms)
    columns = _baseline(rng, n_patients, arms)
    columns.update(_history(rng, columns, arms, whole_days))
    # a stream of their own: adding these columns changed none of the others
    columns.update(_treatment_details(np.random.default_rng([seed, 1]), columns))
    cohort = pd.DataFrame({v.name: columns[v.name] for v in VARIABLES
                           if v.name not in set(absent)})
    for name, share in blank_shares.items():
        if name in cohort:
            cohort[name] = cohort[name].mask(rng.random(n_patients) < share)
    for name, share in (unknown_events or {}).items():
        _make_unknown(cohort, name, rng.random(n_patients) < share, rng)
    return _as_file_types(cohort)


#: What becomes unknown with an event: the columns that depend on it.
DEPENDENT = {"agvhd_2_4": ["agvhd_3_4", "agvhd_3_4_days"], "cgvhd": ["cgvhd_severe"]}


def _make_unknown(cohort: pd.DataFrame, event: str, chosen: np.ndarray,
                  rng: np.random.Generator) -> None:
    """Blank the status of `event` for the `chosen` patients (see :func:`simulate_cohort`)."""
    day = "followup_days" if event == "death" else f"{event}_days"
    day_only = chosen & (cohort[event] == 1).to_numpy() & (rng.random(len(cohort)) < 1 / 3)
    if day != "followup_days":  # death's day is the follow-up, which is never unknown
        cohort.loc[day_only, day] = np.nan
    blank = chosen & ~day_only if day != "followup_days" else chosen
    columns = [event] + ([day] if day != "followup_days" else []) + DEPENDENT.get(event, [])
    cohort.loc[blank, [c for c in columns if c in cohort]] = np.nan


def _baseline(rng: np.random.Generator, n: int, arms: tuple[Arm, ...]) -> dict:
    """Identifiers, arm and the baseline columns of Table 1."""
    shares = np.array([a.share for a in arms], float)
    arm = rng.choice(len(arms), n, p=shares / shares.sum())
    reference = arm == 0
    hsct_day = rng.integers(0, ACCRUAL_DAYS, n)
    flags = {name: (rng.random(n) < share).astype(int) for name, share in PREVALENCE.items()}
    return flags | {
        "patient_id": np.char.add("S", np.char.zfill(np.arange(1, n + 1).astype(str), 7)),
        "arm": np.array([a.label for a in arms], dtype=object)[arm],
        "_arm_index": arm,
        "age_years": np.clip(rng.normal(32, 14, n), 2, 75).round(),
        "sex": np.where(rng.random(n) < 0.56, "M", "F"),
        "disease_status": rng.choice(
            ["primary_refractory", "first_relapse", "second_relapse",
             "third_or_later_relapse"], n, p=[0.28, 0.5, 0.14, 0.08]),
        # the T315I mutation is a mutation of BCR::ABL1: only Ph-positive patients have it
        "t315i": ((flags["ph_positive"] == 1) & (rng.random(n) < 0.38)).astype(int),
        "hct_ci": rng.choice(4, n, p=[0.68, 0.17, 0.1, 0.05]),
        "donor_age_years": np.clip(rng.normal(36, 12, n), 8, 70).round(),
        "donor_sex": np.where(rng.random(n) < 0.7, "M", "F"),
        "donor_type": rng.choice(["HID", "MSD", "MUD"], n, p=[0.72, 0.22, 0.06]),
        "abo_compatibility": rng.choice(["matched", "minor", "major"], n,
                                        p=[0.5, 0.25, 0.25]),
        "conditioning": np.where(rng.random(n) < 0.45, "TBI", "chemo"),
        "graft_source": np.where(rng.random(n) < 0.55, "PB+BM", "PB"),
        "cd34_dose": np.minimum(rng.lognormal(np.log(5.5), 0.35, n), 100).round(2),
        "tnc_dose": np.minimum(rng.lognormal(np.log(17), 0.35, n), 100).round(2),
        # cytokine release and neurotoxicity follow the reference arm's cell therapy most
        "crs_grade": np.where(reference, rng.choice(5, n, p=[0.15, 0.45, 0.3, 0.08, 0.02]),
                              rng.choice(5, n, p=[0.5, 0.35, 0.12, 0.03, 0.0])),
        "icans": (rng.random(n) < np.where(reference, 0.12, 0.05)).astype(int),
        "hsct_date": (FIRST_HSCT + pd.to_timedelta(hsct_day, unit="D")).strftime("%Y-%m-%d"),
        "_days_to_cutoff": (CUTOFF - FIRST_HSCT).days - hsct_day,
    }


def _treatment_details(rng: np.random.Generator, base: dict) -> dict:
    """Conditioning agents, prophylaxis, ATG and the two herpesviruses, consistent with
    `base`'s conditioning, donors and combined zoster/HHV-6 flag."""
    n = len(base["patient_id"])
    chemo = base["conditioning"] == "chemo"
    regimen = np.where(chemo, np.where(rng.random(n) < 0.1, "Flu/Bu", "Bu/Cy"), "TBI/Cy")
    older = (base["age_years"] > 40) & (base["donor_age_years"] > 40)
    either = base["hzv_hhv6_reactivation"] == 1
    zoster = either & (rng.random(n) < 0.85)
    return {
        "conditioning_regimen": regimen,
        "gvhd_prophylaxis": np.where(regimen == "Flu/Bu", "PT-Cy", "MTX"),
        "atg": (np.isin(base["donor_type"], ["HID", "MUD"])
                | ((base["donor_type"] == "MSD") & older)).astype(int),
        "hzv_reactivation": zoster.astype(int),
        # whoever had either and no zoster had HHV-6
        "hhv6_reactivation": (either & (~zoster | (rng.random(n) < 0.2))).astype(int),
    }


def _weibull(rng: np.random.Generator, shape: float, scale: np.ndarray) -> np.ndarray:
    return scale * rng.weibull(shape, len(scale))


def _history(rng: np.random.Generator, base: dict, arms: tuple[Arm, ...],
             whole_days: bool) -> dict:
    """Follow-up, death, relapse, GVHD and engraftment after the transplant."""
    n = len(base["arm"])
    arm = base["_arm_index"]
    stage = pd.Series(base["disease_status"]).map(
        {"primary_refractory": 1.3, "first_relapse": 1.0, "second_relapse": 1.4,
         "third_or_later_relapse": 1.7}).to_numpy()
    relapse_risk = (np.array([a.relapse_hazard_ratio for a in arms])[arm] * stage
                    * np.where(base["mrd_positive"] == 1, 1.8, 1.0))
    death_risk = (np.array([a.death_hazard_ratio for a in arms])[arm]
                  * np.exp(0.02 * (base["age_years"] - 32)) * 1.25 ** base["hct_ci"])
    # a cure fraction that shrinks as the risk grows, then relapse within a few years
    cured = rng.random(n) < 0.65 ** relapse_risk
    relapse = np.where(cured, np.inf, _weibull(rng, 1.1, 500 / relapse_risk ** (1 / 1.1)))
    # decreasing hazard: most non-relapse deaths in the first months (about 15% by 2 years)
    non_relapse_death = _weibull(rng, 0.7, 9800 / death_risk ** (1 / 0.7))
    salvaged = rng.random(n) < 0.25  # a second remission that lasts
    after_relapse = np.where(salvaged, np.inf, relapse + _weibull(rng, 1.0, np.full(n, 420.0)))
    death = np.minimum(non_relapse_death, after_relapse)
    lost = rng.exponential(DAYS_PER_YEAR / 0.02, n)
    censoring = np.minimum(base["_days_to_cutoff"], lost)
    followup = np.minimum(death, censoring)
    history = {"followup_days": followup, "death": (death <= censoring).astype(int),
               **_event("relapse", relapse, followup)}

    agvhd_2_4 = np.where(rng.random(n) < 0.32, 14 + rng.gamma(3, 12, n), np.inf)
    severe_acute = rng.random(n) < 0.4
    agvhd_3_4 = np.where(severe_acute, agvhd_2_4 + rng.gamma(1.5, 5, n), np.inf)
    cgvhd = np.where(rng.random(n) < 0.3, 90 + rng.gamma(2, 90, n), np.inf)
    history.update(_event("agvhd_2_4", agvhd_2_4, followup))
    history.update(_event("agvhd_3_4", agvhd_3_4, followup))
    history.update(_event("cgvhd", cgvhd, followup))
    history["cgvhd_severe"] = history["cgvhd"] * (rng.random(n) < 0.4)
    neutrophils = np.where(rng.random(n) < 0.97, 9 + rng.gamma(4, 1.3, n), np.inf)
    platelets = np.where(rng.random(n) < 0.9, 9 + rng.gamma(2.5, 3.5, n), np.inf)
    history.update(_event("neutrophil_engraftment", neutrophils, followup))
    history.update(_event("platelet_engraftment", platelets, followup))

    for name, values in history.items():
        if name.endswith("_days"):
            # rounding up keeps every order between times (an event never after follow-up)
            history[name] = np.ceil(values) if whole_days else np.ceil(values * 1000) / 1000
    return history


def _event(name: str, when: np.ndarray, followup: np.ndarray) -> dict:
    """The 0/1 column and the day column of an event that happens at `when` (inf: never)
    if it happens by the end of follow-up."""
    happened = when <= followup
    return {name: happened.astype(int), f"{name}_days": np.where(happened, when, np.nan)}


def _as_file_types(cohort: pd.DataFrame) -> pd.DataFrame:
    """Flags, grades and whole days as nullable integers (written ``1``, not ``1.0``)."""
    variables = {v.name: v for v in VARIABLES}
    for name in cohort.columns:
        var = variables[name]
        whole = var.kind == "binary" or (
            var.kind == "ordinal" and all(isinstance(x, int) for x in var.levels))
        whole_days = var.kind == "days" and (cohort[name].dropna() % 1 == 0).all()
        if whole or whole_days:
            cohort[name] = cohort[name].astype("Int64")
    return cohort

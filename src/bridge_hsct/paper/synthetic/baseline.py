"""Baseline covariates of the synthetic cohort, with every published count exact.

Each arm gets exactly the number of patients per level that Table 1 and Table 3 of
Cao et al. (2025) print for it, and each continuous variable gets a fixed list of values whose
median and range per arm (and, where published, for the whole cohort) are the published ones.
*Which* patient of an arm carries which value is decided by a seeded random permutation here
and can later be changed by the calibration, which only ever swaps values between two patients
of the same arm, so the counts stay exact.

Numbers the paper gives only for the whole cohort (T315I, prior HSCT, CMV disease, the CRS and
ICANS split) are divided between the arms here; the split is documented in ``SPLIT_CHOICES``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

CART, BLIN = "CAR-T", "Blinatumomab"
ARMS = (CART, BLIN)
N_ARM = {CART: 27, BLIN: 9}

#: binary columns: number of patients with value 1, per arm (CAR-T, blinatumomab)
BINARY_COUNTS: dict[str, tuple[int, int]] = {
    # Table 1
    "ph_positive": (9, 4),
    "t315i": (4, 1),  # whole 5 (Results); split chosen here
    "tp53_mutation": (2, 0),
    "mll_rearrangement": (1, 1),
    "ikzf1_isoform6": (4, 1),
    "e2a_pbx1": (1, 0),
    "notch1_mutation": (1, 0),
    "ph_like": (3, 1),
    "complex_karyotype": (7, 2),
    "extramedullary_disease": (3, 0),
    "prior_hsct": (3, 1),  # whole 4 (Results); split chosen here
    "mrd_positive": (3, 2),
    "icans": (3, 1),  # whole 4 (Results); split chosen here
    # Table 3
    "tma": (3, 1),
    "hemorrhagic_cystitis": (9, 1),
    "ptld": (2, 1),
    "cmv_reactivation": (18, 4),
    "cmv_disease": (2, 1),  # whole 3 (Results); split chosen here
    "ebv_reactivation": (21, 8),
    "hzv_hhv6_reactivation": (3, 2),
    "pulmonary_infection": (14, 8),
    "upper_respiratory_infection": (13, 4),
    "soft_tissue_infection": (10, 4),
    "gi_infection": (7, 2),
    "bloodstream_infection": (6, 2),
    "urinary_tract_infection": (2, 0),
}

#: categorical / ordinal columns: patients per level, per arm (CAR-T, blinatumomab)
CATEGORY_COUNTS: dict[str, dict[object, tuple[int, int]]] = {
    "sex": {"M": (14, 6), "F": (13, 3)},
    "disease_status": {"primary_refractory": (6, 4), "first_relapse": (14, 4),
                       "second_relapse": (5, 0), "third_or_later_relapse": (2, 1)},
    "hct_ci": {0: (16, 8), 1: (9, 0), 2: (0, 1), 3: (2, 0)},
    "donor_sex": {"M": (20, 6), "F": (7, 3)},
    "donor_type": {"HID": (20, 6), "MSD": (5, 3), "MUD": (2, 0)},
    "abo_compatibility": {"matched": (16, 2), "minor": (4, 5), "major": (7, 2)},
    "conditioning": {"TBI": (12, 4), "chemo": (15, 5)},
    "graft_source": {"PB": (8, 8), "PB+BM": (19, 1)},
    # 29 patients with CRS (Results); grades 1-2 vs 3 split chosen so that Fisher's exact test
    # gives the published P values (0.686 and 0.558); grade 1 vs 2 split chosen here
    "crs_grade": {0: (4, 3), 1: (12, 4), 2: (8, 2), 3: (3, 0)},
}

#: what was chosen where the paper gives a whole-cohort number only
SPLIT_CHOICES = {
    "t315i": "5 patients (Results), all Ph-positive; split 4 CAR-T / 1 blinatumomab.",
    "prior_hsct": "4 patients (Results), none primary refractory; split 3 / 1.",
    "icans": "4 patients (Results); split 3 / 1.",
    "cmv_disease": "3 patients (Results), all with CMV reactivation; split 2 / 1.",
    "crs_grade": "29 patients with CRS (Results); grade 1-2: 20 / 6, grade 3: 3 / 0 "
                 "(reproduces Fisher P 0.686 and 0.558); grade 1 vs 2 chosen.",
}

# --- continuous variables: value lists per arm -------------------------------------------
# Ages: whole median 27.5 (6-58), > 40 years: 7 CAR-T, 4 blinatumomab.
_AGE_LE40 = [6, 8, 11, 14, 16, 18, 19, 21, 22, 23, 24, 25, 25, 26, 26, 27, 27, 27, 28, 30,
             32, 34, 36, 38, 40]
_AGE_GT40 = [42, 44, 45, 47, 48, 50, 51, 53, 55, 56, 58]
_AGE_LE40_BLIN = [8, 22, 26, 30, 36]
_AGE_GT40_BLIN = [45, 50, 53, 58]


def _minus(values, removed):
    out = list(values)
    for v in removed:
        out.remove(v)
    return out


CONTINUOUS: dict[str, dict[str, list[float]]] = {
    "age_years": {
        CART: _minus(_AGE_LE40, _AGE_LE40_BLIN) + _minus(_AGE_GT40, _AGE_GT40_BLIN),
        BLIN: _AGE_LE40_BLIN + _AGE_GT40_BLIN,
    },
    # median 31 (12-54), 8 above 40 | median 46 (22-58), 6 above 40 | whole 35.5 (12-58)
    "donor_age_years": {
        CART: [12, 15, 18, 20, 22, 24, 25, 26, 27, 28, 29, 30, 30, 31, 33, 35, 36, 39, 40,
               42, 44, 45, 47, 48, 50, 52, 54],
        BLIN: [22, 33, 38, 43, 46, 49, 52, 55, 58],
    },
    # median 5.33 (3.33-14.2) | 5.56 (2.5-10.25) | whole 5.335 (2.5-14.2)
    "cd34_dose": {
        CART: [3.33, 3.61, 3.85, 4.02, 4.18, 4.35, 4.47, 4.6, 4.71, 4.84, 4.96, 5.08, 5.2,
               5.33, 5.34, 5.52, 5.78, 6.05, 6.31, 6.62, 6.94, 7.38, 7.86, 8.45, 9.3, 11.1, 14.2],
        BLIN: [2.5, 3.9, 4.4, 5.12, 5.56, 6.2, 7.05, 8.3, 10.25],
    },
    # median 17.60 (7.67-37.17) | 17.49 (7.87-30.45) | whole 17.52 (7.67-37.17)
    "tnc_dose": {
        CART: [7.67, 9.42, 10.85, 11.9, 12.76, 13.45, 14.1, 14.62, 15.2, 15.74, 16.18, 16.66,
               17.1, 17.6, 18.05, 18.62, 19.3, 20.04, 20.85, 21.7, 22.65, 23.8, 25.1, 26.9,
               29.2, 32.6, 37.17],
        BLIN: [7.87, 11.6, 14.3, 16.2, 17.49, 17.55, 19.8, 23.4, 30.45],
    },
}

#: columns whose per-patient assignment the calibration may swap within an arm
SWAPPABLE = ("age_years", "ikzf1_isoform6", "mrd_positive", "graft_source", "donor_sex",
             "conditioning", "donor_type", "prior_hsct")


def _choose(rng, eligible: np.ndarray, k: int) -> np.ndarray:
    idx = np.flatnonzero(eligible)
    if k > len(idx):
        raise ValueError("not enough eligible patients")
    out = np.zeros(len(eligible), bool)
    out[rng.choice(idx, size=k, replace=False)] = True
    return out


def _arm_baseline(arm: str, rng: np.random.Generator, continuous: dict) -> pd.DataFrame:
    n = N_ARM[arm]
    a = ARMS.index(arm)
    df = pd.DataFrame(index=range(n))
    for col, values in continuous.items():
        df[col] = rng.permutation(np.array(values[arm], float))
    for col, levels in CATEGORY_COUNTS.items():
        vals = [lvl for lvl, counts in levels.items() for _ in range(counts[a])]
        assert len(vals) == n, col
        numeric = all(isinstance(v, int) for v in vals)
        df[col] = rng.permutation(np.array(vals, dtype=int if numeric else object))
    none = np.ones(n, bool)

    def put(col, eligible=none):
        df[col] = _choose(rng, eligible, BINARY_COUNTS[col][a]).astype(int)

    # genetic subtypes: Ph-like, MLL and E2A/PBX1 are Ph-negative, mutually exclusive subtypes
    put("ph_positive")
    ph = df["ph_positive"].to_numpy() == 1
    put("t315i", ph)
    put("ph_like", ~ph)
    put("mll_rearrangement", ~ph & (df["ph_like"].to_numpy() == 0))
    put("e2a_pbx1", ~ph & (df[["ph_like", "mll_rearrangement"]].sum(axis=1).to_numpy() == 0))
    for col in ("tp53_mutation", "ikzf1_isoform6", "notch1_mutation", "complex_karyotype",
                "extramedullary_disease", "mrd_positive"):
        put(col)
    put("prior_hsct", df["disease_status"].to_numpy() != "primary_refractory")
    put("icans", df["crs_grade"].to_numpy() > 0)
    put("cmv_reactivation")
    put("cmv_disease", df["cmv_reactivation"].to_numpy() == 1)
    put("ebv_reactivation")
    put("ptld", df["ebv_reactivation"].to_numpy() == 1)
    for col in ("tma", "hemorrhagic_cystitis", "hzv_hhv6_reactivation", "pulmonary_infection",
                "upper_respiratory_infection", "soft_tissue_infection", "gi_infection",
                "bloodstream_infection", "urinary_tract_infection"):
        put(col)
    df.insert(0, "arm", arm)
    return df


def allocate_baseline(seed: int, continuous: dict | None = None) -> pd.DataFrame:
    """Allocate the baseline (Table 1) and complication (Table 3) columns of all 36 patients.

    Parameters
    ----------
    seed : seed of :func:`numpy.random.default_rng`.
    continuous : value lists per column and arm; :data:`CONTINUOUS` when None (the generator
        passes lists tuned by :func:`bridge_hsct.paper.synthetic.samples.tune_to_p`).

    Returns
    -------
    pandas.DataFrame
        One row per patient, the 27 CAR-T patients first, then the 9 blinatumomab patients;
        a ``RangeIndex`` (patient ids are given later, in order of transplant date).
    """
    rng = np.random.default_rng(seed)
    continuous = CONTINUOUS if continuous is None else continuous
    return pd.concat([_arm_baseline(arm, rng, continuous) for arm in ARMS], ignore_index=True)


def check_counts(df: pd.DataFrame) -> list[str]:
    """List every published count or continuous summary that ``df`` does not reproduce."""
    problems = []
    for col, (nc, nb) in BINARY_COUNTS.items():
        for arm, k in ((CART, nc), (BLIN, nb)):
            got = int((df.loc[df["arm"] == arm, col] == 1).sum())
            if got != k:
                problems.append(f"{col} {arm}: {got} != {k}")
    for col, levels in CATEGORY_COUNTS.items():
        for lvl, (nc, nb) in levels.items():
            for arm, k in ((CART, nc), (BLIN, nb)):
                got = int((df.loc[df["arm"] == arm, col] == lvl).sum())
                if got != k:
                    problems.append(f"{col}={lvl} {arm}: {got} != {k}")
    return problems

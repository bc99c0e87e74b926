"""The columns the paper fixes by its Methods and Results text rather than by a table:
conditioning agents, GVHD prophylaxis, anti-thymocyte globulin (ATG), and herpes zoster and
HHV-6 separately.

They follow from columns already calibrated, by the protocol the Methods describe, and the
few choices left are drawn from their own seed, so adding them changes no other column:

* **Conditioning agents.** TBI-based conditioning is TBI/Cy; chemotherapy-based is Bu/Cy,
  except for the patients the Methods give Flu/Bu (``methods.conditioning_flu_bu``). Those
  are all in the CAR-T arm: with two of them, only that split gives the printed Fisher P of
  1.000 for the GVHD prophylaxis (``results.gvhd_prophylaxis.p_value``; the other splits
  give 0.443 and 0.057).
* **GVHD prophylaxis.** PT-Cy after Flu/Bu, MTX after the others (Methods).
* **ATG.** Given for haploidentical and matched unrelated donors, and for matched sibling
  donors when donor and patient are both older than 40 (Methods).
* **Herpes zoster and HHV-6.** The Results count 5 zoster and 1 HHV-6 patients, and Table 3
  counts 5 with either: every patient of the combined column had zoster, and one of them
  also HHV-6.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ...cohort.schema import VARIABLES
from ..published import load_published, published_value

#: The columns added here (the calibrated cohort has every other column of the schema).
COLUMNS = ("conditioning_regimen", "gvhd_prophylaxis", "atg", "hzv_reactivation",
           "hhv6_reactivation")
#: The arm that holds the Flu/Bu patients (see the module docstring).
FLU_BU_ARM = "CAR-T"
ATG_AGE_YEARS = 40.0


def add_protocol_columns(cohort: pd.DataFrame, seed: int,
                         registry: pd.DataFrame | None = None) -> pd.DataFrame:
    """`cohort` with the columns of :data:`COLUMNS` added, in the data dictionary's order.

    Parameters
    ----------
    cohort : the synthetic cohort with its calibrated columns.
    seed : seed of the draws (which chemotherapy patients get Flu/Bu, which zoster patient
        also had HHV-6).
    registry : the published values (default: the bundled registry).
    """
    registry = load_published() if registry is None else registry
    rng = np.random.default_rng(seed)
    n_flu_bu = int(published_value(registry, "methods.conditioning_flu_bu.count.whole"))
    n_hhv6 = int(published_value(registry, "results.hhv6_reactivation.count.whole"))
    out = cohort.copy()

    regimen = np.where(out["conditioning"] == "TBI", "TBI/Cy", "Bu/Cy").astype(object)
    candidates = np.flatnonzero((out["conditioning"] == "chemo")
                                & (out["arm"] == FLU_BU_ARM))
    regimen[rng.choice(candidates, size=n_flu_bu, replace=False)] = "Flu/Bu"
    columns = {"conditioning_regimen": regimen,
               "gvhd_prophylaxis": np.where(regimen == "Flu/Bu", "PT-Cy", "MTX")}
    older = ((out["donor_age_years"] > ATG_AGE_YEARS) & (out["age_years"] > ATG_AGE_YEARS))
    columns["atg"] = (out["donor_type"].isin(["HID", "MUD"])
                      | ((out["donor_type"] == "MSD") & older)).astype(int).to_numpy()

    zoster = out["hzv_hhv6_reactivation"].to_numpy()
    n_zoster = int(published_value(registry, "results.hzv_reactivation.count.whole"))
    if n_zoster != int(np.nansum(zoster)):  # the reading above needs the two counts equal
        raise ValueError(f"{n_zoster} zoster patients published, {int(np.nansum(zoster))} "
                         "with zoster or HHV-6 in the cohort")
    hhv6 = np.zeros(len(out), dtype=int)
    hhv6[rng.choice(np.flatnonzero(zoster == 1), size=n_hhv6, replace=False)] = 1
    columns["hzv_reactivation"] = zoster.astype(int)
    columns["hhv6_reactivation"] = hhv6

    return out.assign(**columns)[[v.name for v in VARIABLES]]

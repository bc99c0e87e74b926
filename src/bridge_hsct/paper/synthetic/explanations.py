"""Why a calibration target can be missed: one plain-language reason per known case.

The report attaches these to targets the cohort does not meet. Specific reasons are matched
on the target's quantity, group and statistic; anything else gets the generic reason of its
kind.
"""

from __future__ import annotations

from .outcomes import MAX_FOLLOWUP
from .targets import Target

_MONTHS = MAX_FOLLOWUP / (365.25 / 12)

SPECIFIC: list[tuple[tuple, str]] = [
    *[(("followup", g, "max"),
       "Out of reach: 92.21 months after a transplant in March 2017 or later ends after the "
       "31 March 2024 cut-off. The longest follow-up the study window allows is "
       f"{_MONTHS:.2f} months (transplant on 1 March 2017, alive at the cut-off); the cohort "
       "uses it.") for g in ("whole", "CAR-T")],
    (("pfs", "whole", "ci_lower"),
     "Out of reach together with the upper limit: 32.28-69.57 is not a log-log interval "
     "around 54.97%. The standard error that reproduces the upper limit puts the lower one "
     "near 37.3%, and no standard error brings both within 2 points."),
    (("nrm", "whole", "ci_lower"), "@wide-ci"),
    (("nrm", "whole", "ci_upper"), "@wide-ci"),
    (("agvhd_2_4", "whole", "ci_lower"), "@wide-ci"),
    (("agvhd_2_4", "whole", "ci_upper"), "@wide-ci"),
    (("agvhd_3_4", "whole", "ci_lower"), "@wide-ci"),
    (("agvhd_3_4", "whole", "ci_upper"), "@wide-ci"),
    (("cgvhd", "whole", "ci_lower"), "@wide-ci"),
    (("cgvhd", "whole", "ci_upper"), "@wide-ci"),
]

WIDE_CI = (
    "Out of reach: the published interval is several times wider than any Greenwood log-log "
    "interval of a 1 - Kaplan-Meier incidence of this size among 36 patients can be (the "
    "events are few and come while nearly everyone is still at risk; e.g. 5 of 36 by day 100 "
    "gives about 6-30%, and no censoring pattern compatible with the other targets widens it "
    "enough). The paper does not say how these intervals were computed; the point estimate is "
    "matched instead."
)

COX_AGE = (
    "Not reached: a hazard ratio of 32.5 (CI 3.7-287) with 5 events means nearly all grade "
    "III-IV cases in the 11 patients over 40 and the model close to separation. The 5 events "
    "must at the same time give the arm incidences (3/27, 2/9), the graft-source split (1/20 "
    "vs 4/16, P 0.082), the age split of grade II-IV aGVHD (5/11 vs 4/25) and the other three "
    "hazard ratios of the model, which the search meets; this one stays well above 1 but "
    "lower."
)
COUNT_P = ("Fixed by the published counts, which the cohort reproduces exactly, so no cohort "
           "with these counts can do better. Registry note: ")

BY_KIND = {
    "cox": "Table 2 asks for 'as close as attainable': with 5 (grade III-IV aGVHD) or 6 "
           "(cGVHD) events and 3-4 covariates the multivariable model is close to separation, "
           "and its hazard ratios trade off against the event counts, incidences and log-rank "
           "P values above, which have priority.",
    "km": "Closest value the search found: the same patients' histories also have to give "
          "the other arm/subgroup estimates and P values.",
    "logrank": "Closest value the search found: this P value depends on the same few event "
               "times as several rates that are matched.",
}


def unreachable(t: Target) -> bool:
    """Whether the target is known to be out of reach (its reason starts "Out of reach")."""
    for (q, g, s), text in SPECIFIC:
        if t.quantity == q and (g is None or t.group == g) and t.statistic == s:
            return text == "@wide-ci" or text.startswith("Out of reach")
    return False


def explanations_for(targets: list[Target]) -> dict[str, str]:
    """Reason for a miss, by target id."""
    out = {}
    for t in targets:
        reason = None
        if t.kind == "count_p":
            reason = COUNT_P + (t.note or "none.")
        elif t.kind == "cox" and t.group.startswith("age_years"):
            reason = COX_AGE
        for (q, g, s), text in SPECIFIC:
            if t.quantity == q and (g is None or t.group == g) and t.statistic == s:
                reason = WIDE_CI if text == "@wide-ci" else text
                break
        out[t.id] = reason or BY_KIND.get(t.kind, "Closest value the search found.")
    return out

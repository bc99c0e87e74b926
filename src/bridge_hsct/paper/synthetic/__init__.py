"""A SYNTHETIC 36-patient cohort rebuilt from the published aggregates of Cao et al. (2025).

The paper's patient-level data were never published. This subpackage writes a deterministic
stand-in cohort whose counts match Table 1 and Table 3 exactly and whose survival and
incidence estimates, recomputed with the book's own functions, are calibrated to the
published ones. The rows are invented; they must never be cited as patient data.

Modules
-------
baseline      exact allocation of the baseline and complication columns to the two arms
samples       value lists with published medians/ranges, tuned to a published P value
outcomes      post-transplant histories (the search state) and their cohort columns
fast          vectorised Kaplan-Meier, log-rank, Cox and two-sample tests for the optimiser
targets       the calibration targets, read from the published-values registry
calibrate     the seeded simulated-annealing search
tails         rules on the curves beyond the published time points (issue 15)
explanations  why a target can be missed (reported next to every miss)
audit_notes   what the reproduction audit says of how the cohort carries a published number
report        recomputation of every target with the book's functions; the report
pipeline      the end-to-end generation (``python -m bridge_hsct.paper.synthetic``)
"""

from .pipeline import COHORT_PATH, REPORT_PATH, SEED, generate

__all__ = ["COHORT_PATH", "REPORT_PATH", "SEED", "generate"]

"""The IPTW chapter: the paper's sensitivity analysis by inverse probability of treatment
weighting, for two or more groups, its tables, figures and words.

The paper re-compared its two groups after weighting each patient by the inverse of the
probability of receiving the treatment they received, given their baseline characteristics
(its Supplementary Fig. 6: OS, PFS, GRFS and grade III–IV aGVHD). This chapter does the same
for any number of groups. The statistics are those of :mod:`bridge_hsct.stats.weighting`;
this module holds the paper's choices and the chapter:

1. **Propensity model** (:func:`propensity_model`): one multinomial logistic model of the
   group (with two groups, the ordinary logistic model of the non-reference group), rather
   than a separate model of each group against the reference: one model gives every patient
   a probability of each group that sums to 1, which is what the generalised weights need,
   and uses every patient for every coefficient. It is fitted on a small pre-declared set of
   confounders (:data:`DEFAULT_CONFOUNDERS`) among those present in the data, coded as
   numeric terms from the data dictionary (:func:`covariate_terms`), with a ridge penalty
   λ = 1 (:data:`DEFAULT_PENALTY`). With 36 patients, 9 of them in one group, an unpenalised
   model on the paper's "all covariates" separates the groups perfectly and the
   maximum-likelihood propensities run to 0 and 1; the penalty keeps them finite at the cost
   of a little residual imbalance, which the balance table shows.
2. **Weights** (:func:`iptw`): generalised ATE weights ``P(A = a) / P(A = a | X)``
   (stabilised), truncated at the 1st and 99th percentiles of all weights
   (:data:`DEFAULT_TRIM_PERCENTILES`; no patient is dropped). Groups with fewer than
   :data:`MIN_GROUP_SIZE` patients are left out of the whole analysis, and said so.
3. **Balance** (:func:`balance_table`): standardised mean differences of every Table 1
   covariate (each level of a categorical one) before and after weighting, each
   non-reference group against the reference group (the pairwise comparisons the hazard
   ratios make), read against :data:`SMD_THRESHOLD`.
4. **Outcomes** (:func:`iptw_outcomes`): Kaplan–Meier estimates of every group at the
   landmark without and with weights, and the hazard ratio of each group against the
   reference from an unweighted Cox model and from a weighted one with robust standard
   errors, at the chapter's confidence level. For grade III–IV aGVHD, relapse and death
   before it are censored (the paper's Kaplan–Meier convention), so its weighted curve is a
   1 − Kaplan–Meier incidence and its hazard ratios cause-specific. The curves
   (Supplementary Figure 6, :data:`SUPPLEMENTARY_FIGURE6`) are panels of the book's panel
   engine (:mod:`bridge_hsct.paper.panels`), fed the weights as a column: each endpoint
   unadjusted, then weighted, with its hazard ratios in the corner.
5. **Sensitivity** (:func:`weighting_sensitivity`): the weighted hazard ratios under other
   penalties and truncations.
6. **Words** (:func:`weighting_text`, :func:`limits_text`): every judgement on the page
   (balance achieved or not, over-fitting a concern or not, how wide the intervals are)
   follows from the computed numbers and the stated rules of thumb
   (:data:`SMD_THRESHOLD`, :data:`PATIENTS_PER_TERM`, :data:`EVENTS_PER_HAZARD_RATIO`).

:func:`iptw_report` computes and saves everything for a
:class:`bridge_hsct.book.chapter.Chapter` (its alpha, landmark, groups, group noun and
disclosure); the chapter's notebook shows the parts of the :class:`IptwReport` it returns.
Where something cannot be estimated, the part says so in one sentence.

Its modules: :mod:`.analysis` (terms, propensity model, weights, balance, outcomes,
sensitivity), :mod:`.figures`, :mod:`.words` and :mod:`.report` (the chapter).
"""

from .analysis import (
    DEFAULT_CONFOUNDERS,
    IPTW_ENDPOINTS,
    balance_table,
    covariate_terms,
    iptw,
    iptw_outcomes,
    propensity_model,
    weighting_sensitivity,
)
from .figures import SUPPLEMENTARY_FIGURE6
from .report import IptwReport, iptw_report
from .words import hazard_ratio_display, sensitivity_display

__all__ = ["DEFAULT_CONFOUNDERS", "IPTW_ENDPOINTS", "SUPPLEMENTARY_FIGURE6", "IptwReport",
           "balance_table", "covariate_terms", "hazard_ratio_display", "iptw", "iptw_outcomes",
           "iptw_report", "propensity_model", "sensitivity_display", "weighting_sensitivity"]

"""Tests comparing a baseline variable between groups, chosen by the variable's type.

=========================  ===============================  ==========================
variable                    two groups                       three or more groups
=========================  ===============================  ==========================
binary / two categories     Fisher's exact test (2-sided)    Pearson chi-square
unordered categories        Pearson chi-square               Pearson chi-square
ordered categories          linear-by-linear association     Kruskal–Wallis
continuous                  Mann–Whitney U (2-sided)         Kruskal–Wallis
=========================  ===============================  ==========================
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.contingency_tables import Table


@dataclass(frozen=True)
class TestResult:
    """A P value and the name of the test that gave it (NaN P when not computable)."""

    p_value: float
    test: str


FISHER = "Fisher's exact test (two-sided)"
CHI2 = "Pearson chi-square test"
LINEAR_BY_LINEAR = "linear-by-linear association test"
MANN_WHITNEY = "Mann–Whitney U test (two-sided)"
KRUSKAL = "Kruskal–Wallis test"


def fisher_2x2(table) -> float:
    """Two-sided Fisher exact P value of a 2×2 table of counts."""
    return float(stats.fisher_exact(np.asarray(table, int), alternative="two-sided").pvalue)


def linear_by_linear(table) -> float:
    """P value of the linear-by-linear association test for an r × c table of counts.

    Rows and columns are taken in their given order with equally spaced scores. This is the
    "Linear-by-Linear Association" line of SPSS's chi-square output (Mantel's
    M² = (N − 1) r², 1 degree of freedom), computed by statsmodels without its default
    shift of zero cells.
    """
    t = np.asarray(table, float)
    if (t.sum(axis=1) > 0).sum() < 2 or (t.sum(axis=0) > 0).sum() < 2:
        return float("nan")
    return float(Table(t, shift_zeros=False).test_ordinal_association().pvalue)


def _crosstab(values: pd.Series, groups: pd.Series, levels) -> np.ndarray:
    known = values.notna() & groups.notna()
    table = pd.crosstab(values[known], groups[known])
    return table.reindex(index=list(levels)).fillna(0).to_numpy(int)


def compare_categories(values: pd.Series, groups: pd.Series, levels, ordered=False
                       ) -> TestResult:
    """Compare the distribution of a categorical variable between groups."""
    table = _crosstab(values, groups, levels)
    table = table[table.sum(axis=1) > 0]
    if table.shape[0] < 2 or table.shape[1] < 2:
        return TestResult(float("nan"), "not computable (one level or one group)")
    two_groups = table.shape[1] == 2
    if table.shape[0] == 2 and two_groups:
        return TestResult(fisher_2x2(table), FISHER)
    if ordered and two_groups:
        return TestResult(linear_by_linear(table), LINEAR_BY_LINEAR)
    if ordered:
        return compare_numbers(values.map({lv: i for i, lv in enumerate(levels)}), groups)
    return TestResult(float(stats.chi2_contingency(table, correction=False).pvalue), CHI2)


#: Largest group for which the Mann–Whitney P value is exact (when no values are tied).
MANN_WHITNEY_EXACT_MAX = 8


def mann_whitney_is_exact(first, second) -> bool:
    """Whether the Mann–Whitney test of two samples is exact: one sample has at most
    :data:`MANN_WHITNEY_EXACT_MAX` values and no two values are tied (else the normal
    approximation with continuity correction, tie-corrected; R's ``wilcox.test`` with
    ``exact = FALSE``). This is SciPy's rule, written out so the Methods page can state it."""
    pooled = np.concatenate([np.asarray(first, float), np.asarray(second, float)])
    small = min(len(first), len(second)) <= MANN_WHITNEY_EXACT_MAX
    return small and np.unique(pooled).size == pooled.size


def compare_numbers(values: pd.Series, groups: pd.Series) -> TestResult:
    """Compare a continuous (or ranked) variable between groups with a rank test."""
    known = values.notna() & groups.notna()
    samples = [g.to_numpy(float) for _, g in values[known].groupby(groups[known])]
    samples = [s for s in samples if len(s)]
    if len(samples) < 2 or np.unique(np.concatenate(samples)).size < 2:
        return TestResult(float("nan"), "not computable (one group or no variation)")
    if len(samples) == 2:
        method = "exact" if mann_whitney_is_exact(*samples) else "asymptotic"
        p = stats.mannwhitneyu(*samples, alternative="two-sided", method=method).pvalue
        return TestResult(float(p), MANN_WHITNEY)
    return TestResult(float(stats.kruskal(*samples).pvalue), KRUSKAL)

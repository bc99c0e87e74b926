"""Baseline comparison tests, checked against the paper's Table 1 (computed from its counts)
and against hand computation."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from bridge_hsct.stats.group_tests import (
    CHI2,
    FISHER,
    KRUSKAL,
    LINEAR_BY_LINEAR,
    MANN_WHITNEY,
    compare_categories,
    compare_numbers,
    fisher_2x2,
    linear_by_linear,
)

# Table 1 of Cao et al. 2025: rows (level), columns (blinatumomab, CAR-T), published P.
PAPER_2X2 = {
    "age > 40": ([[4, 7], [5, 20]], 0.409),
    "sex": ([[6, 14], [3, 13]], 0.700),
    "Ph-positive": ([[4, 9], [5, 18]], 0.693),
    "MLL rearrangement": ([[1, 1], [8, 26]], 0.443),
    "Ikaros isoform 6": ([[1, 4], [8, 23]], 1.000),
    "Ph-like": ([[1, 3], [8, 24]], 1.000),
    "complex karyotype": ([[2, 7], [7, 20]], 1.000),
    "donor age > 40": ([[6, 8], [3, 19]], 0.111),
    "donor sex": ([[6, 20], [3, 7]], 0.686),
    "ABO matched": ([[2, 16], [7, 11]], 0.121),
    "ABO minor mismatch": ([[5, 4], [4, 23]], 0.026),
    "ABO major mismatch": ([[2, 7], [7, 20]], 1.000),
    "conditioning": ([[4, 12], [5, 15]], 1.000),
    "graft source": ([[8, 8], [1, 19]], 0.005),
}
PAPER_ORDINAL = {
    "disease status": ([[4, 6], [4, 14], [0, 5], [1, 2]], 0.324),
    "HCT-CI": ([[8, 16], [0, 9], [1, 0], [0, 2]], 0.285),
}


@pytest.mark.parametrize("name", PAPER_2X2)
def test_fisher_reproduces_paper_table1(name):
    table, published = PAPER_2X2[name]
    assert round(fisher_2x2(table), 3) == pytest.approx(published, abs=1e-9)


@pytest.mark.parametrize("name", PAPER_ORDINAL)
def test_linear_by_linear_reproduces_paper_table1(name):
    table, published = PAPER_ORDINAL[name]
    assert round(linear_by_linear(table), 3) == pytest.approx(published, abs=1e-9)


def test_linear_by_linear_by_hand():
    # 2x2 with scores 1,2: r is the phi coefficient. Table [[3,1],[1,3]], N=8:
    # phi = (3*3-1*1)/sqrt(4*4*4*4) = 8/16 = 0.5, M2 = (8-1)*0.25 = 1.75
    expected = stats.chi2.sf(1.75, 1)
    assert linear_by_linear([[3, 1], [1, 3]]) == pytest.approx(expected, rel=1e-12)


def test_fisher_by_hand():
    # [[1,0],[0,1]]: two tables with these margins, each with probability 1/2 -> P = 1
    assert fisher_2x2([[1, 0], [0, 1]]) == pytest.approx(1.0)
    # [[3,0],[0,3]]: P(observed) = 1/C(6,3) = 1/20, the mirror table as extreme -> 2/20
    assert fisher_2x2([[3, 0], [0, 3]]) == pytest.approx(0.1)


def _series(table, levels, groups):
    values, labels = [], []
    for i, level in enumerate(levels):
        for j, group in enumerate(groups):
            values += [level] * table[i][j]
            labels += [group] * table[i][j]
    return pd.Series(values), pd.Series(labels)


def test_compare_categories_picks_the_test_by_type():
    values, groups = _series([[6, 14], [3, 13]], ["M", "F"], ["B", "C"])
    result = compare_categories(values, groups, ["M", "F"])
    assert result.test == FISHER and round(result.p_value, 3) == 0.700
    values, groups = _series(PAPER_ORDINAL["disease status"][0], [0, 1, 2, 3], ["B", "C"])
    result = compare_categories(values, groups, [0, 1, 2, 3], ordered=True)
    assert result.test == LINEAR_BY_LINEAR and round(result.p_value, 3) == 0.324
    values, groups = _series([[6, 20], [3, 5], [0, 2]], ["HID", "MSD", "MUD"], ["B", "C"])
    result = compare_categories(values, groups, ["HID", "MSD", "MUD"])
    expected = stats.chi2_contingency([[6, 20], [3, 5], [0, 2]], correction=False).pvalue
    assert result.test == CHI2 and result.p_value == pytest.approx(expected)


def test_three_groups_use_chi_square_and_kruskal():
    values, groups = _series([[5, 1, 2], [1, 5, 4]], ["yes", "no"], ["A", "B", "C"])
    assert compare_categories(values, groups, ["yes", "no"]).test == CHI2
    numbers = pd.Series([1.0, 2, 3, 4, 5, 6])
    result = compare_numbers(numbers, pd.Series(list("AABBCC")))
    assert result.test == KRUSKAL
    assert result.p_value == pytest.approx(stats.kruskal([1, 2], [3, 4], [5, 6]).pvalue)


def test_mann_whitney_and_degenerate_inputs():
    result = compare_numbers(pd.Series([1.0, 2, 3, 10, 11, 12]), pd.Series(list("AAABBB")))
    # complete separation of 3 vs 3: exact two-sided P = 2 / C(6,3) = 0.1
    assert result.test == MANN_WHITNEY and result.p_value == pytest.approx(0.1)
    assert math.isnan(compare_numbers(pd.Series([1.0, 1.0]), pd.Series(["A", "B"])).p_value)
    one_level = compare_categories(pd.Series(["M"] * 4), pd.Series(list("AABB")), ["M", "F"])
    assert math.isnan(one_level.p_value)
    assert np.isnan(linear_by_linear([[0, 0], [3, 4]]))

"""Tests for bridge_hsct.stats.competing: hand arithmetic, published R output and lifelines.

Published reference (hard-coded below): the CAMIS project (PSIAIMS/CAMIS, page
``R/survival_cif`` - "Estimating Cumulative Incidence Functions Using R", rendered with
R 4.4.0, cmprsk 2.2-12, tidycmprsk 1.0.0) runs

    bmt$TYears <- bmt$T / 365.25
    cif.1 <- tidycmprsk::cuminc(Surv(TYears, Status) ~ Group, data = bmt)

on the Klein & Moeschberger (1997) bone-marrow-transplant data as given by Guo & So (2018)
(CAMIS ``data/bmt.txt``: 137 patients, Group 1 = ALL, 2 = AML low risk, 3 = AML high risk;
Status 0 = censored, 1 = relapse, 2 = death in remission), and prints

    Gray's test   Relapse  statistic 11.9228820  df 2  p 0.0025762
                  Death    statistic  0.1374108  df 2  p 0.9336017

    Relapse, AML-Low Risk   time  estimate  std.error  conf.low  conf.high
                            0.5   0.0000    0.0000     NA        NA
                            1     0.0741    0.0360     0.0234    0.1646
                            1.5   0.1296    0.0463     0.0563    0.2344
                            2     0.1481    0.0489     0.0685    0.2565
                            3     0.1667    0.0514     0.0813    0.2783
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from lifelines import AalenJohansenFitter

from bridge_hsct.stats.competing import (
    CIF_COLUMNS,
    CumulativeIncidence,
    cumulative_incidence,
    gray_test,
    one_minus_km_incidence,
)
from bridge_hsct.stats.survival import Estimate, km_table

# CAMIS data/bmt.txt, as "group days status" triples.
BMT_ROWS = """
1 2081 0|1 1602 0|1 1496 0|1 1462 0|1 1433 0|1 1377 0|1 1330 0|1 996 0|1 226 0|1 1199 0
1 1111 0|1 530 0|1 1182 0|1 1167 0|1 418 2|1 383 1|1 276 2|1 104 1|1 609 1|1 172 2
1 487 2|1 662 1|1 194 2|1 230 1|1 526 2|1 122 2|1 129 1|1 74 1|1 122 1|1 86 2
1 466 2|1 192 1|1 109 1|1 55 1|1 1 2|1 107 2|1 110 1|1 332 2|2 2569 0|2 2506 0
2 2409 0|2 2218 0|2 1857 0|2 1829 0|2 1562 0|2 1470 0|2 1363 0|2 1030 0|2 860 0|2 1258 0
2 2246 0|2 1870 0|2 1799 0|2 1709 0|2 1674 0|2 1568 0|2 1527 0|2 1324 0|2 957 0|2 932 0
2 847 0|2 848 0|2 1850 0|2 1843 0|2 1535 0|2 1447 0|2 1384 0|2 414 2|2 2204 2|2 1063 2
2 481 2|2 105 2|2 641 2|2 390 2|2 288 2|2 421 1|2 79 2|2 748 1|2 486 1|2 48 2
2 272 1|2 1074 2|2 381 1|2 10 2|2 53 2|2 80 2|2 35 2|2 248 1|2 704 2|2 211 1
2 219 1|2 606 1|3 2640 0|3 2430 0|3 2252 0|3 2140 0|3 2133 0|3 1238 0|3 1631 0|3 2024 0
3 1345 0|3 1136 0|3 845 0|3 422 1|3 162 2|3 84 1|3 100 1|3 2 2|3 47 1|3 242 1
3 456 1|3 268 1|3 318 2|3 32 1|3 467 1|3 47 1|3 390 1|3 183 2|3 105 2|3 115 1
3 164 2|3 93 1|3 120 1|3 80 2|3 677 2|3 64 1|3 168 2|3 74 2|3 16 2|3 157 1
3 625 1|3 48 1|3 273 1|3 63 2|3 76 1|3 113 1|3 363 2
"""


def _bmt():
    triples = np.array(
        [[int(v) for v in row.split()] for row in BMT_ROWS.replace("\n", "|").split("|") if row]
    )
    group, days, status = triples.T
    return group, days / 365.25, status


BMT_GROUP, BMT_YEARS, BMT_STATUS = _bmt()

# Hand example used below ("+" = censored; c1 = cause of interest, c2 = competing cause):
#   time 1 c1 | 2 c2 | 2+ | 3 c1 | 3 c2 | 4+ | 5 c1
HAND_TIME = [1, 2, 2, 3, 3, 4, 5]
HAND_CAUSE = [1, 2, 0, 1, 2, 0, 1]


def test_bmt_reference_data_is_complete():
    assert BMT_GROUP.size == 137
    assert np.bincount(BMT_GROUP).tolist() == [0, 38, 54, 45]


# ---------------------------------------------------------------------------------------------
# Aalen-Johansen estimate
# ---------------------------------------------------------------------------------------------
def test_cumulative_incidence_by_hand_with_ties():
    # t=1: n=7, d1=1          F1 = S(1-) * 1/7 = 1/7;            S = 6/7
    # t=2: n=6, d2=1, c=1     F1 unchanged;                      S = 6/7 * 5/6 = 5/7
    # t=3: n=4, d1=1, d2=1    F1 += S(3-) * 1/4 = 5/28 -> 9/28;  S = 5/7 * 2/4 = 5/14
    # t=4: n=2, c=1           unchanged
    # t=5: n=1, d1=1          F1 += 5/14 * 1/1 -> 19/28;         S = 0
    curve = cumulative_incidence(HAND_TIME, HAND_CAUSE, cause_of_interest=1)
    table = curve.table
    assert list(table.columns) == list(CIF_COLUMNS)
    assert table["n_at_risk"].tolist() == [7, 6, 4, 2, 1]
    assert table["n_events"].tolist() == [1, 0, 1, 0, 1]
    assert table["n_competing"].tolist() == [0, 1, 1, 0, 0]
    assert table["n_censored"].tolist() == [0, 1, 0, 1, 0]
    np.testing.assert_allclose(table["incidence"], [4 / 28, 4 / 28, 9 / 28, 9 / 28, 19 / 28])
    # The competing cause: 6/7 * 1/6 = 1/7 at t=2, + 5/7 * 1/4 = 5/28 at t=3 -> 9/28.
    competing = cumulative_incidence(HAND_TIME, HAND_CAUSE, cause_of_interest=2)
    np.testing.assert_allclose(competing.table["incidence"], [0, 4 / 28, 9 / 28, 9 / 28, 9 / 28])


def test_variance_at_first_event_by_hand():
    # cmprsk's variance at the first event (t=1, n=7, one event of interest, S(1-) = 1):
    #   jump = 1/49, a = 1/S(1) = 7/6, b = 1 + a*F = 1 + 7/6 * 1/7 = 7/6
    #   v1 = v2 = v3 = (7/6)^2 / 49 = 1/36
    #   var = v1 + F^2 v3 - 2 F v2 = (1/36)(1 + 1/49 - 2/7) = 1/49
    curve = cumulative_incidence(HAND_TIME, HAND_CAUSE)
    assert curve.table["variance"].iloc[0] == pytest.approx(1 / 49)
    # Carried forward through t=2 (no event of interest there), as cmprsk.
    assert curve.table["variance"].iloc[1] == pytest.approx(1 / 49)


def test_variance_without_competing_events_by_hand():
    # With one cause and no ties the cmprsk (Aalen-type) variance is S^2 * sum 1/(n_j - 1)^2:
    # deaths at 1, 2, 3 and a censoring at 4 (n = 4, 3, 2):
    #   t=1: (3/4)^2 * 1/9                = 1/16      = 0.0625
    #   t=2: (1/2)^2 * (1/9 + 1/4)        = 13/144    = 0.0902778
    #   t=3: (1/4)^2 * (1/9 + 1/4 + 1)    = 49/576    = 0.0850694
    curve = cumulative_incidence([1, 2, 3, 4], [1, 1, 1, 0])
    np.testing.assert_allclose(curve.table["variance"], [1 / 16, 13 / 144, 49 / 576, 49 / 576])
    np.testing.assert_allclose(curve.table["incidence"], [0.25, 0.5, 0.75, 0.75])


def test_variance_with_tied_events_uses_cmprsk_tie_correction():
    # Two events of interest tied at t=1 (n=4): S(1) = 1/2, F = 2/4 = 1/2
    #   tie factor 1 - (2-1)/(4-1) = 2/3, jump = 1 * 2/3 * 2/16 = 1/12
    #   a = 1/S(1) = 2, b = 1 + a F = 2  ->  v1 = v2 = v3 = 4/12 = 1/3
    #   var = 1/3 + (1/4)(1/3) - 2 (1/2)(1/3) = 1/12   (1/8 without the tie factor)
    tied_interest = cumulative_incidence([1, 1, 2, 3], [1, 1, 0, 1])
    assert tied_interest.table["variance"].iloc[0] == pytest.approx(1 / 12)
    # Two competing events tied at t=1 (n=5), then one event of interest at t=2 (n=3):
    #   t=1: tie factor 1 - 1/4 = 3/4, jump = 3/4 * 2/25 = 0.06, S(1) = 3/5, F = 0
    #        a = 5/3, b = F/S(1) = 0  ->  v3 = (25/9) * 0.06 = 1/6
    #   t=2: S(2-) = 3/5, S(2) = 2/5, F = 3/5 * 1/3 = 1/5, jump = (9/25)/9 = 0.04
    #        a = 5/2, b = 1 + a F = 3/2 -> v1 = 0.09, v2 = 0.15, v3 = 1/6 + 0.25 = 5/12
    #   var = 0.09 + (1/25)(5/12) - 2 (1/5)(0.15) = 7/150   (0.048889 without the factor)
    tied_competing = cumulative_incidence([1, 1, 2, 3, 4], [2, 2, 1, 0, 1])
    assert tied_competing.at(2).value == pytest.approx(0.2)
    assert tied_competing.table["variance"].iloc[1] == pytest.approx(7 / 150)


def test_estimates_agree_with_lifelines_aalen_johansen_without_ties():
    # lifelines is an independent implementation of the estimate (its variance is the delta
    # method, not cmprsk's, so only estimates are compared). Continuous times: no ties, so
    # lifelines does not jitter.
    rng = np.random.default_rng(3)
    time = rng.exponential(100, size=80)
    cause = rng.choice([0, 1, 2], size=80, p=[0.3, 0.4, 0.3])
    fitter = AalenJohansenFitter(calculate_variance=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a jitter warning would invalidate the comparison
        fitter.fit(time, cause, event_of_interest=1)
    ours = cumulative_incidence(time, cause, 1).table
    theirs = fitter.cumulative_density_.iloc[:, 0]
    np.testing.assert_allclose(ours["incidence"], theirs.loc[ours["time"]].to_numpy(), rtol=1e-12)


def test_incidences_of_all_causes_and_survival_add_up_to_one():
    # F1(t) + F2(t) + S_all(t) = 1 at every time: an identity the estimator must satisfy.
    group_aml_high = BMT_GROUP == 3
    time, status = BMT_YEARS[group_aml_high], BMT_STATUS[group_aml_high]
    relapse = cumulative_incidence(time, status, 1).table["incidence"]
    death = cumulative_incidence(time, status, 2).table["incidence"]
    survival = km_table(time, status > 0)["survival"]
    np.testing.assert_allclose(relapse + death + survival, 1.0, atol=1e-12)


def test_cumulative_incidence_matches_published_tidycmprsk_output():
    low_risk = BMT_GROUP == 2
    curve = cumulative_incidence(BMT_YEARS[low_risk], BMT_STATUS[low_risk], cause_of_interest=1)
    published = {  # time: (estimate, std.error, conf.low, conf.high)
        1.0: (0.0741, 0.0360, 0.0234, 0.1646),
        1.5: (0.1296, 0.0463, 0.0563, 0.2344),
        2.0: (0.1481, 0.0489, 0.0685, 0.2565),
        3.0: (0.1667, 0.0514, 0.0813, 0.2783),
    }
    times = curve.table["time"].to_numpy()
    for t, (value, std_error, lower, upper) in published.items():
        estimate = curve.at(t)
        row = curve.table.iloc[np.searchsorted(times, t, side="right") - 1]
        assert round(estimate.value, 4) == value
        assert round(math.sqrt(row["variance"]), 4) == std_error
        assert round(estimate.lower, 4) == lower
        assert round(estimate.upper, 4) == upper
    before_any_relapse = curve.at(0.5)
    assert before_any_relapse.value == 0.0
    assert math.isnan(before_any_relapse.lower) and math.isnan(before_any_relapse.upper)


def test_at_landmarks_and_the_t_argument():
    curve = cumulative_incidence(HAND_TIME, HAND_CAUSE)
    assert isinstance(curve, CumulativeIncidence)
    assert curve.max_follow_up == 5.0
    assert curve.at(0.5).value == 0.0
    assert curve.at(3.5).value == pytest.approx(9 / 28)
    assert curve.at(5).value == pytest.approx(19 / 28)
    assert curve.at(5.5).is_missing  # beyond the largest follow-up time
    assert cumulative_incidence(HAND_TIME, HAND_CAUSE, t=3.5) == curve.at(3.5)
    with pytest.raises(ValueError):
        curve.at(-1)


def test_no_event_of_interest_gives_zero_incidence_and_no_interval():
    curve = cumulative_incidence([1, 2, 3], [2, 0, 2])
    assert curve.table["incidence"].tolist() == [0.0, 0.0, 0.0]
    estimate = curve.at(2)
    assert estimate.value == 0.0 and math.isnan(estimate.lower) and math.isnan(estimate.upper)


@pytest.mark.parametrize("cause", [[1, -1, 0], [1, 1.5, 0], [1, np.nan, 0], [1, 0]])
def test_invalid_cause_codes_are_rejected(cause):
    with pytest.raises(ValueError):
        cumulative_incidence([1, 2, 3], cause)


def test_cause_of_interest_must_be_an_event_code():
    with pytest.raises(ValueError):
        cumulative_incidence([1, 2, 3], [1, 0, 2], cause_of_interest=0)


# ---------------------------------------------------------------------------------------------
# 1 - Kaplan-Meier (the paper's method)
# ---------------------------------------------------------------------------------------------
def test_one_minus_km_by_hand_overstates_the_incidence():
    # Competing events censored: t=1: n=7 d=1 S=6/7; t=3: n=4 d=1 S=6/7*3/4=9/14; t=5: S=0.
    # 1 - S at t=3 is 5/14 = 10/28, above the Aalen-Johansen 9/28; at t=5 it is 1 vs 19/28.
    naive = one_minus_km_incidence(HAND_TIME, HAND_CAUSE)
    assert naive.method == "1 - kaplan-meier"
    assert list(naive.table.columns) == list(CIF_COLUMNS)
    np.testing.assert_allclose(naive.table["incidence"], [1 / 7, 1 / 7, 10 / 28, 10 / 28, 1.0])
    assert naive.table["n_competing"].tolist() == [0, 1, 1, 0, 0]
    assert naive.table["n_censored"].tolist() == [0, 1, 0, 1, 0]
    proper = cumulative_incidence(HAND_TIME, HAND_CAUSE)
    assert np.all(naive.table["incidence"] >= proper.table["incidence"] - 1e-15)


def test_one_minus_km_interval_is_the_flipped_km_interval():
    naive = one_minus_km_incidence(HAND_TIME, HAND_CAUSE)
    km = km_table(HAND_TIME, np.array(HAND_CAUSE) == 1)
    np.testing.assert_allclose(naive.table["lower"], 1 - km["upper"])
    np.testing.assert_allclose(naive.table["upper"], 1 - km["lower"])
    np.testing.assert_allclose(naive.table["variance"], km["variance"])
    assert naive.at(0.5) == Estimate(0.0, 0.0, 0.0)
    assert one_minus_km_incidence(HAND_TIME, HAND_CAUSE, t=3) == naive.at(3)


def test_without_competing_events_both_methods_give_the_same_estimate():
    rng = np.random.default_rng(5)
    time = np.round(rng.exponential(50, size=40))
    cause = (rng.random(40) < 0.6).astype(int)
    np.testing.assert_allclose(
        one_minus_km_incidence(time, cause).table["incidence"],
        cumulative_incidence(time, cause).table["incidence"],
    )


# ---------------------------------------------------------------------------------------------
# Gray's test
# ---------------------------------------------------------------------------------------------
def test_gray_test_matches_published_cmprsk_output():
    relapse = gray_test(BMT_YEARS, BMT_STATUS, BMT_GROUP, cause_of_interest=1)
    assert relapse.chi2 == pytest.approx(11.9228820, abs=5e-8)
    assert relapse.p_value == pytest.approx(0.0025762, abs=5e-8)
    assert relapse.df == 2 and relapse.reason is None
    death = gray_test(BMT_YEARS, BMT_STATUS, BMT_GROUP, cause_of_interest=2)
    assert death.chi2 == pytest.approx(0.1374108, abs=5e-8)
    assert death.p_value == pytest.approx(0.9336017, abs=5e-8)


def test_gray_test_ignores_time_units_and_group_labels():
    in_years = gray_test(BMT_YEARS, BMT_STATUS, BMT_GROUP)
    in_days = gray_test(np.round(BMT_YEARS * 365.25), BMT_STATUS, BMT_GROUP)
    relabelled = gray_test(BMT_YEARS, BMT_STATUS, np.array(["c", "a", "b"])[BMT_GROUP - 1])
    assert in_days.chi2 == pytest.approx(in_years.chi2, rel=1e-12)
    assert relabelled.chi2 == pytest.approx(in_years.chi2, rel=1e-10)


def test_gray_test_two_groups_with_a_group_of_one():
    time = [1, 2, 2, 3, 4, 5, 6, 7, 8]
    cause = [1, 2, 0, 1, 1, 0, 2, 1, 0]
    group = ["a", "a", "a", "a", "a", "a", "a", "a", "b"]
    result = gray_test(time, cause, group)
    assert result.df == 1
    assert np.isfinite(result.chi2) and result.chi2 >= 0
    assert 0 <= result.p_value <= 1


def test_gray_test_without_events_of_interest_or_groups():
    no_events = gray_test([1, 2, 3, 4], [2, 0, 2, 0], [0, 0, 1, 1])
    assert math.isnan(no_events.chi2) and math.isnan(no_events.p_value)
    assert no_events.reason.startswith("no events")
    with pytest.raises(ValueError, match="two groups"):
        gray_test([1, 2, 3], [1, 2, 0], ["x", "x", "x"])

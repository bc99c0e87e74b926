"""Tests for bridge_hsct.stats.survival against hand arithmetic, R output and independent libraries.

Reference data: R's ``survival::aml`` (acute myelogenous leukaemia, maintenance chemotherapy,
23 patients), whose ``survdiff`` and ``coxph`` output is reproduced in many tutorials:

    survdiff(Surv(time, status) ~ x, data = aml)   Chisq = 3.396389 on 1 df, p = 0.065339
    coxph(Surv(time, status) ~ x, data = aml)      coef 0.9155, exp(coef) 2.4981,
                                                   se(coef) 0.5119, z 1.788, p 0.0737
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from lifelines import KaplanMeierFitter
from lifelines.utils import median_survival_times
from statsmodels.duration.hazard_regression import PHReg
from statsmodels.duration.survfunc import survdiff

from bridge_hsct.stats.survival import (
    DAYS_PER_MONTH,
    CoxResult,
    Estimate,
    cox_univariate,
    km_at,
    km_median,
    km_table,
    loglog_interval,
    logrank_test,
    months_to_days,
    numbers_at_risk,
    to_months,
    years_to_days,
)

# survival::aml; x = "Maintained" (0) / "Nonmaintained" (1)
AML_TIME = np.array(
    [9, 13, 13, 18, 23, 28, 31, 34, 45, 48, 161, 5, 5, 8, 8, 12, 16, 23, 27, 30, 33, 43, 45],
    dtype=float,
)
AML_STATUS = np.array([1, 1, 0, 1, 1, 0, 1, 1, 0, 1, 0, 1, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1, 1])
AML_NONMAINTAINED = np.array([0] * 11 + [1] * 12)


# ---------------------------------------------------------------------------------------------
# Units
# ---------------------------------------------------------------------------------------------
def test_month_is_a_twelfth_of_a_julian_year():
    assert DAYS_PER_MONTH == pytest.approx(30.4375)
    assert to_months(365.25) == pytest.approx(12.0)
    assert to_months(730.5) == pytest.approx(24.0)
    assert months_to_days(24) == pytest.approx(730.5)
    assert years_to_days(2) == pytest.approx(730.5)
    np.testing.assert_allclose(to_months([0, 30.4375, 91.3125]), [0, 1, 3])
    assert isinstance(to_months(10), float)


# ---------------------------------------------------------------------------------------------
# Kaplan-Meier table
# ---------------------------------------------------------------------------------------------
def test_km_table_by_hand_with_event_and_censoring_tied():
    # time  2  3  3+ 5  7+      ("+" = censored)
    # t=2: n=5 d=1  S = 4/5            Greenwood sum 1/(5*4)             = 0.05
    # t=3: n=4 d=1 c=1 (the censored patient at 3 is still at risk: events first)
    #                  S = 4/5 * 3/4 = 3/5   sum += 1/(4*3) -> 0.05 + 0.083333 = 0.133333
    # t=5: n=2 d=1  S = 3/5 * 1/2 = 3/10     sum += 1/(2*1) -> 0.633333
    # t=7: n=1 c=1  S = 3/10 (unchanged)
    # Var S(5) = 0.3^2 * 0.633333 = 0.057
    table = km_table([2, 3, 3, 5, 7], [1, 1, 0, 1, 0])
    assert table["time"].tolist() == [2, 3, 5, 7]
    assert table["n_at_risk"].tolist() == [5, 4, 2, 1]
    assert table["n_events"].tolist() == [1, 1, 1, 0]
    assert table["n_censored"].tolist() == [0, 1, 0, 1]
    np.testing.assert_allclose(table["survival"], [0.8, 0.6, 0.3, 0.3])
    np.testing.assert_allclose(
        table["variance"], [0.64 * 0.05, 0.36 * (0.05 + 1 / 12), 0.09 * (0.05 + 1 / 12 + 0.5),
                            0.09 * (0.05 + 1 / 12 + 0.5)]
    )


def test_km_at_reproduces_the_papers_log_log_interval():
    # The paper reports "88.89% (43.30-98.36%)" for 8 of 9 alive at 2 years.
    # n=9, one death before t, nobody censored before t:
    #   S = 8/9, Greenwood sum = 1/(9*8) = 1/72, se(log S) = sqrt(1/72) = 0.117851
    #   log S = -0.117783, c = 1.959964 * 0.117851 / 0.117783 = 1.961135
    #   lower = (8/9) ** exp(+c) = (8/9) ** 7.1073 = 0.43297
    #   upper = (8/9) ** exp(-c) = (8/9) ** 0.14070 = 0.98356
    days = [100, 800, 900, 1000, 1100, 1200, 1300, 1400, 1500]
    died = [1, 0, 0, 0, 0, 0, 0, 0, 0]
    estimate = km_at(days, died, years_to_days(2))
    assert estimate.value == pytest.approx(8 / 9)
    assert round(100 * estimate.lower, 2) == 43.30
    assert round(100 * estimate.upper, 2) == 98.36


def test_km_at_before_first_event_between_and_beyond_follow_up():
    time = [2, 3, 3, 5, 7]
    event = [1, 1, 0, 1, 0]
    assert km_at(time, event, 1) == Estimate(1.0, 1.0, 1.0)
    assert km_at(time, event, 3).value == pytest.approx(0.6)
    assert km_at(time, event, 4.9).value == pytest.approx(0.6)
    # After the last event (5) but not after the last censoring (7): carried forward.
    assert km_at(time, event, 6).value == pytest.approx(0.3)
    assert km_at(time, event, 7).value == pytest.approx(0.3)
    # Beyond the largest follow-up time: unknown.
    beyond = km_at(time, event, 7.01)
    assert beyond.is_missing and math.isnan(beyond.lower) and math.isnan(beyond.upper)


def test_km_agrees_with_lifelines_on_aml_with_ties():
    # lifelines' KaplanMeierFitter is an independent implementation; its default interval is
    # the same log(-log) ("exponential Greenwood") interval.
    table = km_table(AML_TIME, AML_STATUS)
    fitter = KaplanMeierFitter().fit(AML_TIME, AML_STATUS)
    lifelines_survival = fitter.survival_function_.loc[table["time"]].iloc[:, 0].to_numpy()
    np.testing.assert_allclose(table["survival"], lifelines_survival, rtol=1e-12)
    bands = fitter.confidence_interval_.loc[table["time"]]
    inside = (table["survival"] > 0) & (table["survival"] < 1)
    np.testing.assert_allclose(table.loc[inside, "lower"], bands.iloc[:, 0][inside.to_numpy()])
    np.testing.assert_allclose(table.loc[inside, "upper"], bands.iloc[:, 1][inside.to_numpy()])
    events = fitter.event_table.loc[table["time"]]
    assert table["n_at_risk"].tolist() == events["at_risk"].tolist()


def test_no_events_gives_survival_one_with_degenerate_interval():
    # Documented convention (R's): S = 1 with interval [1, 1]; the median is not reached.
    table = km_table([3, 5, 8], [0, 0, 0])
    assert table["survival"].tolist() == [1.0, 1.0, 1.0]
    assert table["variance"].tolist() == [0.0, 0.0, 0.0]
    assert table["lower"].tolist() == [1.0, 1.0, 1.0]
    assert table["upper"].tolist() == [1.0, 1.0, 1.0]
    median = km_median([3, 5, 8], [0, 0, 0])
    assert math.isnan(median.value) and math.isnan(median.lower) and math.isnan(median.upper)


def test_all_events_bands_and_median_by_hand():
    # Five deaths at 1..5, no censoring.                       log(-log) bands
    #  t  S    Greenwood sum            se(logS)/|logS|   lower    upper
    #  1  0.8  1/20          = 0.05     0.223607/0.223144 0.20381  0.96918
    #  2  0.6  + 1/12        = 0.13333  0.365148/0.510826 0.12573  0.88176
    #  3  0.4  + 1/6         = 0.3      0.547723/0.916291 0.05198  0.75282
    #  4  0.2  + 1/2         = 0.8      0.894427/1.609438 0.00837  0.58185
    #  5  0    (n = d: variance and interval undefined -> NaN)
    # Median: S first <= 0.5 at t=3. Lower limit: the lower band is <= 0.5 already at t=1.
    # Upper limit: the upper band never reaches 0.5 (0.58 at t=4, undefined at t=5) -> NaN,
    # as R reports it (lifelines sets the band to 0 at S=0 and would give 5).
    table = km_table([1, 2, 3, 4, 5], [1, 1, 1, 1, 1])
    np.testing.assert_allclose(table["lower"][:4], [0.20381, 0.12573, 0.05198, 0.00837],
                               atol=5e-5)
    np.testing.assert_allclose(table["upper"][:4], [0.96918, 0.88176, 0.75282, 0.58185],
                               atol=5e-5)
    assert table["survival"].iloc[-1] == 0.0
    assert math.isnan(table["variance"].iloc[-1])
    assert math.isnan(table["lower"].iloc[-1]) and math.isnan(table["upper"].iloc[-1])
    median = km_median([1, 2, 3, 4, 5], [1, 1, 1, 1, 1])
    assert median.value == 3.0
    assert median.lower == 1.0
    assert math.isnan(median.upper)


def test_median_on_a_flat_at_one_half_is_the_midpoint():
    # Ten deaths at 1..10: S = 0.5 exactly on [5, 6). R takes the midpoint, 5.5
    # (lifelines would report 5).
    assert km_median(np.arange(1, 11), np.ones(10)).value == 5.5


def test_median_not_reached():
    median = km_median([2, 4, 6, 8], [1, 0, 0, 0])
    assert math.isnan(median.value)


def test_median_and_interval_agree_with_lifelines_when_no_flat_at_one_half():
    rng = np.random.default_rng(20250101)
    time = np.round(rng.exponential(300, size=41))
    event = (rng.random(41) < 0.8).astype(int)
    table = km_table(time, event)
    assert not np.any(np.abs(table["survival"] - 0.5) < 1e-9)  # precondition: no flat
    fitter = KaplanMeierFitter().fit(time, event)
    lifelines_limits = median_survival_times(fitter.confidence_interval_).iloc[0]
    median = km_median(time, event)
    assert median.value == fitter.median_survival_time_
    assert median.lower == lifelines_limits.iloc[0]
    assert median.upper == lifelines_limits.iloc[1]


# ---------------------------------------------------------------------------------------------
# Numbers at risk
# ---------------------------------------------------------------------------------------------
def test_numbers_at_risk_by_hand():
    time = [0.5, 3, 3, 6, 12, 12, 24]
    event = [1, 0, 1, 1, 0, 1, 0]
    # >=0: all 7; >=3: 6; >=6: 4; >=12: 3 (12, 12, 24); >=13: 1; >=24: 1; >=25: 0
    counts = numbers_at_risk(time, event, [0, 3, 6, 12, 13, 24, 25])
    assert counts.tolist() == [7, 6, 4, 3, 1, 1, 0]
    assert counts.dtype.kind == "i"


# ---------------------------------------------------------------------------------------------
# Log-rank test
# ---------------------------------------------------------------------------------------------
def test_logrank_matches_r_survdiff_on_aml():
    result = logrank_test(AML_TIME, AML_STATUS, AML_NONMAINTAINED)
    assert result.chi2 == pytest.approx(3.396389, abs=1e-6)
    assert result.p_value == pytest.approx(0.065339, abs=1e-6)
    assert result.df == 1
    assert result.reason is None


def test_logrank_by_hand_two_by_two():
    # A dies at 1 and 3, B at 2 and 4.
    # t=1: n=4 (2A, 2B), d=1 (A): E_A = 2/4,  V = 2*2*1*3 / (16*3) = 1/4
    # t=2: n=3 (1A, 2B), d=1 (B): E_A = 1/3,  V = 1*2*1*2 / (9*2)  = 2/9
    # t=3: n=2 (1A, 1B), d=1 (A): E_A = 1/2,  V = 1*1*1*1 / (4*1)  = 1/4
    # t=4: n=1 (B)              : E_A = 0,    V = 0
    # O_A - E_A = 2 - 4/3 = 2/3, V = 13/18, chi2 = (4/9) / (13/18) = 8/13
    result = logrank_test([1, 3, 2, 4], [1, 1, 1, 1], ["A", "A", "B", "B"])
    assert result.chi2 == pytest.approx(8 / 13)


def test_logrank_three_groups_agrees_with_statsmodels_including_a_group_of_one():
    rng = np.random.default_rng(7)
    time = np.round(rng.exponential(200, size=30))
    event = (rng.random(30) < 0.7).astype(int)
    group = np.array(["a"] * 14 + ["b"] * 15 + ["c"])  # "c" has a single patient
    event[-1] = 1
    result = logrank_test(time, event, group)
    reference_chi2, reference_p = survdiff(time, event, group)
    assert result.df == 2
    assert result.chi2 == pytest.approx(reference_chi2, rel=1e-10)
    assert result.p_value == pytest.approx(reference_p, rel=1e-8)


def test_logrank_without_events_or_groups():
    no_events = logrank_test([1, 2, 3, 4], [0, 0, 0, 0], [0, 0, 1, 1])
    assert math.isnan(no_events.chi2) and math.isnan(no_events.p_value)
    assert no_events.reason == "no events"
    with pytest.raises(ValueError, match="two groups"):
        logrank_test([1, 2, 3], [1, 1, 1], [0, 0, 0])


# ---------------------------------------------------------------------------------------------
# Cox model
# ---------------------------------------------------------------------------------------------
def test_cox_matches_r_coxph_on_aml():
    # R: coef 0.9155, exp(coef) 2.4981, se 0.5119, Wald p 0.0737 (Efron ties).
    result = cox_univariate(AML_TIME, AML_STATUS, AML_NONMAINTAINED)
    assert isinstance(result, CoxResult)
    assert result.hr == pytest.approx(2.4981, abs=1e-4)
    assert result.p_value == pytest.approx(0.0737, abs=1e-4)
    assert result.lower == pytest.approx(math.exp(0.9155 - 1.959964 * 0.5119), rel=1e-3)
    assert result.upper == pytest.approx(math.exp(0.9155 + 1.959964 * 0.5119), rel=1e-3)
    assert (result.n, result.events, result.reason) == (23, 18, None)


def test_cox_agrees_with_statsmodels_phreg_on_a_continuous_covariate_with_ties():
    rng = np.random.default_rng(11)
    covariate = rng.normal(size=60)
    time = np.round(rng.exponential(100 * np.exp(-0.5 * covariate)))  # rounding makes ties
    event = (rng.random(60) < 0.75).astype(int)
    result = cox_univariate(time, event, covariate)
    fit = PHReg(time, covariate[:, None], status=event, ties="efron").fit()
    lower, upper = np.exp(fit.conf_int()[0])
    # The two optimisers stop about 1e-6 apart; Breslow ties would differ by 4e-3 here.
    assert result.hr == pytest.approx(math.exp(fit.params[0]), rel=1e-5)
    assert result.lower == pytest.approx(lower, rel=1e-5)
    assert result.upper == pytest.approx(upper, rel=1e-5)
    assert result.p_value == pytest.approx(fit.pvalues[0], rel=1e-4)


def test_cox_drops_missing_covariates():
    covariate = AML_NONMAINTAINED.astype(float)
    covariate[[0, 12]] = np.nan  # one patient per arm, both with an event
    result = cox_univariate(AML_TIME, AML_STATUS, covariate)
    assert (result.n, result.events) == (21, 16)
    assert np.isfinite(result.hr)


@pytest.mark.parametrize(
    ("event", "covariate", "reason_start"),
    [
        ([0, 0, 0, 0, 0, 0], [0, 1, 0, 1, 0, 1], "no events"),
        ([1, 0, 1, 1, 0, 1], [1, 1, 1, 1, 1, 1], "no variation"),
        # every event in the covariate=1 arm: the likelihood has no maximum
        ([0, 1, 0, 1, 0, 1], [0, 1, 0, 1, 0, 1], "did not converge"),
    ],
)
def test_cox_not_estimable_returns_nan_with_a_reason(event, covariate, reason_start):
    result = cox_univariate([1, 2, 3, 4, 5, 6], event, covariate)
    assert math.isnan(result.hr) and math.isnan(result.p_value)
    assert math.isnan(result.lower) and math.isnan(result.upper)
    assert result.reason.startswith(reason_start)
    assert result.n == 6


# ---------------------------------------------------------------------------------------------
# Helpers and input checks
# ---------------------------------------------------------------------------------------------
def test_loglog_interval_edges():
    lower, upper = loglog_interval([0.0, 1.0, 0.5], [0.0, 0.0, 0.1])
    assert math.isnan(lower[0]) and math.isnan(upper[0])
    assert (lower[1], upper[1]) == (1.0, 1.0)
    # 0.5 ** exp(+/- 1.959964 * 0.1 / (0.5 * 0.693147)) = 0.5 ** exp(+/-0.565527)
    assert lower[2] == pytest.approx(0.5 ** math.exp(0.565527), rel=1e-5)
    assert upper[2] == pytest.approx(0.5 ** math.exp(-0.565527), rel=1e-5)


@pytest.mark.parametrize(
    ("time", "event"),
    [([1, -2], [1, 0]), ([1, np.nan], [1, 0]), ([1, 2], [1, 2]), ([1, 2], [1]), ([], [])],
)
def test_invalid_input_is_rejected(time, event):
    with pytest.raises(ValueError):
        km_table(time, event)


def test_boolean_events_and_series_inputs_are_accepted():
    table = km_table(pd.Series([2, 3, 3, 5, 7]), pd.Series([True, True, False, True, False]))
    np.testing.assert_allclose(table["survival"], [0.8, 0.6, 0.3, 0.3])

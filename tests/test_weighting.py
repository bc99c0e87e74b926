"""Tests for bridge_hsct.stats.weighting: propensity model, weights, balance, weighted
Kaplan–Meier and Cox.

References: hand arithmetic (SMD, weights, truncation, effective sample size, a weighted
product-limit table), the package's own unweighted Kaplan–Meier and Cox fits on duplicated
rows (integer weights are frequencies), statsmodels' Cox (PHReg) and logistic (Logit) fits,
and a direct scipy minimisation of the penalised logistic likelihood.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy.optimize import minimize
from scipy.special import expit
from statsmodels.duration.hazard_regression import PHReg

from bridge_hsct.stats.survival import km_table
from bridge_hsct.stats.weighting import (
    balance,
    curve_at,
    effective_sample_size,
    fit_propensity,
    stabilised_weights,
    standardised_mean_difference,
    truncate_weights,
    weighted_at_risk,
    weighted_cox,
    weighted_km,
)


# ---------------------------------------------------------------------------------------------
# Standardised mean differences
# ---------------------------------------------------------------------------------------------
def test_smd_of_a_continuous_covariate_by_hand():
    x = [1.0, 2.0, 3.0, 4.0, 10.0, 12.0]
    treated = [0, 0, 0, 1, 1, 1]
    # means 2 and 26/3; sample variances 1 and ((4-26/3)^2 + (10-26/3)^2 + (12-26/3)^2)/2
    var1 = ((4 - 26 / 3) ** 2 + (10 - 26 / 3) ** 2 + (12 - 26 / 3) ** 2) / 2
    expected = (26 / 3 - 2) / math.sqrt((var1 + 1.0) / 2)
    assert standardised_mean_difference(x, treated) == pytest.approx(expected)


def test_smd_of_a_binary_covariate_by_hand():
    x = [1, 0, 0, 0, 1, 1, 1, 0]
    treated = [0, 0, 0, 0, 1, 1, 1, 1]
    p1, p0 = 0.75, 0.25
    expected = (p1 - p0) / math.sqrt((p1 * (1 - p1) + p0 * (1 - p0)) / 2)
    assert standardised_mean_difference(x, treated) == pytest.approx(expected)


def test_weighted_smd_changes_only_the_means():
    x = [1.0, 2.0, 3.0, 4.0, 10.0, 12.0]
    treated = [0, 0, 0, 1, 1, 1]
    weights = [1.0, 1.0, 2.0, 3.0, 1.0, 1.0]
    mean0 = (1 + 2 + 2 * 3) / 4
    mean1 = (3 * 4 + 10 + 12) / 5
    var1 = np.var([4.0, 10.0, 12.0], ddof=1)
    expected = (mean1 - mean0) / math.sqrt((var1 + 1.0) / 2)
    assert standardised_mean_difference(x, treated, weights) == pytest.approx(expected)


def test_smd_ignores_missing_values_and_is_nan_without_spread():
    assert standardised_mean_difference([1, np.nan, 3, 5, 7], [0, 0, 0, 1, 1]) == \
        pytest.approx(standardised_mean_difference([1, 3, 5, 7], [0, 0, 1, 1]))
    assert math.isnan(standardised_mean_difference([1, 1, 1, 1], [0, 0, 1, 1]))


# ---------------------------------------------------------------------------------------------
# Propensity model and weights
# ---------------------------------------------------------------------------------------------
def test_stabilised_weights_by_hand():
    treated = np.array([1, 1, 1, 0])
    propensity = np.array([0.5, 0.8, 0.6, 0.25])
    expected = [0.75 / 0.5, 0.75 / 0.8, 0.75 / 0.6, 0.25 / 0.75]
    assert stabilised_weights(treated, propensity) == pytest.approx(expected)
    with pytest.raises(ValueError):
        stabilised_weights(treated, [0.5, 1.0, 0.6, 0.25])


def test_ridge_fit_minimises_the_penalised_likelihood():
    rng = np.random.default_rng(3)
    n, penalty = 60, 2.0
    x = np.column_stack([rng.uniform(10, 60, n), rng.integers(0, 2, n)])
    y = rng.uniform(size=n) < expit(-0.5 + 0.04 * (x[:, 0] - 35) + 1.2 * x[:, 1])
    fit = fit_propensity(pd.DataFrame(x, columns=["age", "graft"]), y, penalty)
    standardised = (x - x.mean(0)) / x.std(0)
    design = np.column_stack([np.ones(n), standardised])

    def objective(beta):
        eta = design @ beta
        return -(y * eta - np.logaddexp(0, eta)).sum() + penalty / 2 * (beta[1:] ** 2).sum()

    best = minimize(objective, np.zeros(3), method="BFGS", options={"gtol": 1e-10}).x
    assert list(fit.coefficients.index) == ["intercept", "age", "graft"]
    assert fit.coefficients.to_numpy() == pytest.approx(best, abs=1e-3)
    assert fit.propensity.to_numpy() == pytest.approx(expit(design @ best), abs=1e-4)


def test_unpenalised_fit_is_the_maximum_likelihood_logistic_model():
    rng = np.random.default_rng(4)
    n = 200
    x = rng.normal(size=(n, 2))
    y = rng.uniform(size=n) < expit(0.3 + x @ [0.8, -0.5])
    fit = fit_propensity(pd.DataFrame(x, columns=["u", "v"]), y, 0.0)
    standardised = (x - x.mean(0)) / x.std(0)
    reference = sm.Logit(y.astype(float), sm.add_constant(standardised)).fit(disp=0)
    assert fit.coefficients.to_numpy() == pytest.approx(reference.params, abs=1e-6)


def test_missing_values_are_imputed_and_constant_columns_left_out():
    covariates = pd.DataFrame({"u": [1.0, np.nan, 3.0, 4.0, np.nan, 2.0],
                               "same": [1.0, 1.0, np.nan, 1.0, 1.0, 1.0]})
    fit = fit_propensity(covariates, [0, 0, 1, 1, 0, 1], 1.0)
    assert fit.imputed == {"u": 2, "same": 1}
    assert fit.constant == ["same"]
    assert list(fit.coefficients.index) == ["intercept", "u"]
    with pytest.raises(ValueError, match="penalty"):
        fit_propensity(covariates, [0, 0, 1, 1, 0, 1], -1.0)


def test_balance_by_hand():
    covariates = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0, 10.0, 12.0],
                               "flag": [1.0, 0.0, np.nan, 1.0, 1.0, 0.0]})
    treated = [0, 0, 0, 1, 1, 1]
    weights = [1.0, 1.0, 2.0, 3.0, 1.0, 1.0]
    table = balance(covariates, [False, True], treated, weights).set_index("term")
    assert table.loc["x", "mean_reference"] == pytest.approx(2.0)
    assert table.loc["x", "weighted_mean_treated"] == pytest.approx((12 + 10 + 12) / 5)
    assert table.loc["flag", "mean_reference"] == pytest.approx(0.5)  # the unknown left out
    assert table.loc["flag", "weighted_mean_treated"] == pytest.approx((3 + 1) / 5)
    assert table.loc["x", "smd_after"] == pytest.approx(
        standardised_mean_difference(covariates["x"], treated, weights))


# ---------------------------------------------------------------------------------------------
# Truncation and effective sample size
# ---------------------------------------------------------------------------------------------
def test_truncation_counts_and_bounds():
    weights = np.arange(1.0, 101.0)  # 1..100
    truncated, trimming = truncate_weights(weights, (5, 95))
    low, high = np.percentile(weights, [5, 95])
    assert (trimming.lower_bound, trimming.upper_bound) == (pytest.approx(low),
                                                            pytest.approx(high))
    assert trimming.n_below == int((weights < low).sum()) == 5
    assert trimming.n_above == int((weights > high).sum()) == 5
    assert truncated.min() == pytest.approx(low) and truncated.max() == pytest.approx(high)
    unchanged, none = truncate_weights(weights, (0, 100))
    assert none.n_trimmed == 0 and (unchanged == weights).all()
    with pytest.raises(ValueError):
        truncate_weights(weights, (99, 1))


def test_effective_sample_size_by_hand():
    assert effective_sample_size([1, 1, 1, 1]) == pytest.approx(4)
    assert effective_sample_size([2, 1, 1]) == pytest.approx(16 / 6)


# ---------------------------------------------------------------------------------------------
# Weighted Kaplan–Meier and Cox
# ---------------------------------------------------------------------------------------------
def test_weighted_km_with_integer_weights_is_km_of_duplicated_rows():
    rng = np.random.default_rng(5)
    time = rng.integers(1, 40, 25).astype(float)
    event = rng.integers(0, 2, 25)
    weights = rng.integers(1, 4, 25)
    curve = weighted_km(time, event, weights)
    duplicated = km_table(np.repeat(time, weights), np.repeat(event, weights))
    merged = curve.iloc[1:].set_index("time")  # row 0 is time 0
    assert merged["survival"].to_numpy() == pytest.approx(duplicated["survival"].to_numpy())
    assert merged["at_risk"].to_numpy() == pytest.approx(duplicated["n_at_risk"].to_numpy())
    assert merged["events"].to_numpy() == pytest.approx(duplicated["n_events"].to_numpy())
    assert merged["censored"].to_numpy() == pytest.approx(duplicated["n_censored"].to_numpy())


def test_weighted_km_with_fractional_weights_by_hand():
    time = [1.0, 2.0, 2.0, 3.0]
    event = [1, 1, 0, 1]
    weights = [0.5, 2.0, 1.0, 1.5]
    curve = weighted_km(time, event, weights).set_index("time")
    s1 = 1 - 0.5 / 5.0
    s2 = s1 * (1 - 2.0 / 4.5)
    assert curve.loc[1.0, "survival"] == pytest.approx(s1)
    assert curve.loc[2.0, "survival"] == pytest.approx(s2)
    assert curve.loc[3.0, "survival"] == pytest.approx(0.0)
    assert curve.loc[2.0, "censored"] == pytest.approx(1.0)
    assert curve_at(curve.reset_index(), 2.5) == pytest.approx(s2)
    assert math.isnan(curve_at(curve.reset_index(), 3.5))


def test_weighted_at_risk_counts_follow_up_at_or_after_each_time():
    assert weighted_at_risk([1, 2, 2, 5], [1.0, 0.5, 2.0, 3.0], [0, 2, 3, 6]) == \
        pytest.approx([6.5, 5.5, 3.0, 0.0])


def two_groups(seed: int, n: int):
    """Distinct exponential times, random events and a random treated indicator."""
    rng = np.random.default_rng(seed)
    time = rng.exponential(100, n) + np.arange(n) * 1e-4
    return time, rng.integers(0, 2, n), rng.integers(0, 2, n), rng


def test_weighted_cox_with_integer_weights_matches_duplicated_rows():
    n = 40
    time, event, treated, rng = two_groups(8, n)
    weights = rng.integers(1, 4, n)
    got = weighted_cox(time, event, treated, weights, robust=False)
    # a patient of weight 3 who dies is, in the duplicated data, three deaths at one time;
    # the weighted partial likelihood treats them as Breslow does tied deaths
    duplicated = PHReg(np.repeat(time, weights), np.repeat(treated, weights)[:, None],
                       status=np.repeat(event, weights), ties="breslow").fit()
    assert math.log(got.hr) == pytest.approx(duplicated.params[0], abs=1e-4)
    # with weights 1 the weighted fit is the ordinary fit
    plain = weighted_cox(time, event, treated, np.ones(n), robust=False)
    ordinary = PHReg(time, treated[:, None], status=event, ties="breslow").fit()
    assert math.log(plain.hr) == pytest.approx(ordinary.params[0], abs=1e-8)
    assert plain.se_log_hr == pytest.approx(ordinary.bse[0], rel=1e-6)


def test_robust_se_does_not_change_when_all_weights_are_scaled():
    n = 50
    time, event, treated, rng = two_groups(9, n)
    weights = rng.uniform(0.3, 3, n)
    one = weighted_cox(time, event, treated, weights)
    ten = weighted_cox(time, event, treated, 10 * weights)
    naive_one = weighted_cox(time, event, treated, weights, robust=False)
    naive_ten = weighted_cox(time, event, treated, 10 * weights, robust=False)
    assert ten.hr == pytest.approx(one.hr, rel=1e-6)
    assert ten.se_log_hr == pytest.approx(one.se_log_hr, rel=1e-6)
    assert naive_ten.se_log_hr == pytest.approx(naive_one.se_log_hr / math.sqrt(10), rel=1e-4)


def test_weighted_cox_without_events_in_a_group_is_not_estimable():
    got = weighted_cox([1, 2, 3, 4], [0, 0, 1, 1], [1, 1, 0, 0], [1, 1, 1, 1])
    assert math.isnan(got.hr) and got.reason == "no events in one group"

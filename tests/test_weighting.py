"""Tests for bridge_hsct.stats.weighting: propensity model, weights, balance, weighted
Kaplan–Meier and Cox, for two to four groups.

References: hand arithmetic (SMD, weights, truncation, effective sample size, a weighted
product-limit table), the package's own unweighted Kaplan–Meier fit and statsmodels' Cox
(PHReg) on duplicated rows (integer weights are frequencies), statsmodels' logistic (Logit)
and multinomial (MNLogit) fits, a direct scipy minimisation of a hand-written penalised
multinomial likelihood, lifelines' weighted Cox model with its robust variance, and R's
``survival`` (``coxph`` with weights and ``robust = TRUE``, ``survfit`` with weights) when
Rscript is installed.
"""

from __future__ import annotations

import math
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from lifelines import CoxPHFitter
from scipy.optimize import minimize
from scipy.special import expit, logsumexp
from statsmodels.duration.hazard_regression import PHReg

from bridge_hsct.stats.survival import km_table
from bridge_hsct.stats.weighting import (
    ate_weights,
    balance,
    curve_at,
    effective_sample_size,
    fit_propensity,
    group_hazard_ratios,
    standardised_mean_difference,
    truncate_weights,
    weighted_at_risk,
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
def test_ate_weights_by_hand_for_two_and_three_groups():
    group = ["t", "t", "t", "r"]
    propensity = pd.DataFrame({"r": [0.5, 0.2, 0.4, 0.75], "t": [0.5, 0.8, 0.6, 0.25]})
    assert ate_weights(group, propensity) == pytest.approx(
        [0.75 / 0.5, 0.75 / 0.8, 0.75 / 0.6, 0.25 / 0.75])
    three = pd.DataFrame({"a": [0.2, 0.5, 0.1, 0.3, 0.6], "b": [0.5, 0.25, 0.3, 0.3, 0.2],
                          "c": [0.3, 0.25, 0.6, 0.4, 0.2]})
    group = ["a", "a", "b", "c", "c"]
    # shares 2/5, 1/5, 2/5 over each patient's own-group probability
    assert ate_weights(group, three) == pytest.approx(
        [0.4 / 0.2, 0.4 / 0.5, 0.2 / 0.3, 0.4 / 0.4, 0.4 / 0.2])
    assert ate_weights(group, three, stabilised=False) == pytest.approx(
        [5.0, 2.0, 1 / 0.3, 2.5, 5.0])
    with pytest.raises(ValueError):
        ate_weights(group, three.assign(a=[1.0, 0.5, 0.1, 0.3, 0.6]))
    with pytest.raises(ValueError):
        ate_weights(["a", "z", "b", "c", "c"], three)


def test_ridge_fit_minimises_the_penalised_likelihood():
    rng = np.random.default_rng(3)
    n, penalty = 60, 2.0
    x = np.column_stack([rng.uniform(10, 60, n), rng.integers(0, 2, n)])
    y = rng.uniform(size=n) < expit(-0.5 + 0.04 * (x[:, 0] - 35) + 1.2 * x[:, 1])
    fit = fit_propensity(pd.DataFrame(x, columns=["age", "graft"]), y, penalty, [False, True])
    standardised = (x - x.mean(0)) / x.std(0)
    design = np.column_stack([np.ones(n), standardised])

    def objective(beta):
        eta = design @ beta
        return -(y * eta - np.logaddexp(0, eta)).sum() + penalty / 2 * (beta[1:] ** 2).sum()

    best = minimize(objective, np.zeros(3), method="BFGS", options={"gtol": 1e-10}).x
    assert list(fit.coefficients.index) == ["intercept", "age", "graft"]
    assert fit.coefficients[True].to_numpy() == pytest.approx(best, abs=1e-4)
    assert fit.propensity[True].to_numpy() == pytest.approx(expit(design @ best), abs=1e-5)
    assert fit.converged


def test_unpenalised_fit_is_the_maximum_likelihood_logistic_model():
    rng = np.random.default_rng(4)
    n = 200
    x = rng.normal(size=(n, 2))
    y = rng.uniform(size=n) < expit(0.3 + x @ [0.8, -0.5])
    fit = fit_propensity(pd.DataFrame(x, columns=["u", "v"]), y, 0.0, [False, True])
    standardised = (x - x.mean(0)) / x.std(0)
    reference = sm.Logit(y.astype(float), sm.add_constant(standardised)).fit(disp=0)
    assert fit.coefficients[True].to_numpy() == pytest.approx(reference.params, abs=1e-6)


def three_groups(seed: int, n: int):
    """Two covariates and a group drawn from a known multinomial model."""
    rng = np.random.default_rng(seed)
    x = np.column_stack([rng.normal(40, 12, n), rng.integers(0, 2, n)])
    z = (x - x.mean(0)) / x.std(0)
    eta = np.column_stack([np.zeros(n), 0.3 + z @ [0.8, -0.5], -0.4 + z @ [-0.6, 0.9]])
    p = np.exp(eta - logsumexp(eta, axis=1, keepdims=True))
    group = np.array(["ref", "b", "c"])[(rng.uniform(size=(n, 1)) > p.cumsum(1)).sum(1)]
    return pd.DataFrame(x, columns=["age", "flag"]), group, z


def test_unpenalised_three_group_fit_is_statsmodels_mnlogit():
    covariates, group, z = three_groups(6, 400)
    fit = fit_propensity(covariates, group, 0.0, ["ref", "b", "c"])
    codes = pd.Series(group).map({"ref": 0, "b": 1, "c": 2}).to_numpy()
    reference = sm.MNLogit(codes, sm.add_constant(z)).fit(disp=0, method="bfgs",
                                                            maxiter=2000, gtol=1e-10)
    assert fit.coefficients.to_numpy() == pytest.approx(reference.params, abs=1e-5)
    assert fit.propensity.to_numpy() == pytest.approx(reference.predict(), abs=1e-6)
    assert fit.propensity.sum(axis=1).to_numpy() == pytest.approx(1.0)


def test_ridge_three_group_fit_minimises_the_penalised_multinomial_likelihood():
    covariates, group, z = three_groups(7, 80)
    penalty = 1.5
    fit = fit_propensity(covariates, group, penalty, ["ref", "b", "c"])
    design = np.column_stack([np.ones(len(z)), z])
    observed = np.column_stack([group == g for g in ("ref", "b", "c")])

    def objective(flat):
        beta = flat.reshape(2, 3)  # rows: groups b, c; columns: intercept, age, flag
        eta = np.column_stack([np.zeros(len(z)), design @ beta.T])
        loglik = (observed * (eta - logsumexp(eta, axis=1, keepdims=True))).sum()
        return -loglik + penalty / 2 * (beta[:, 1:] ** 2).sum()

    best = minimize(objective, np.zeros(6), method="BFGS", options={"gtol": 1e-10}).x
    assert fit.coefficients.to_numpy() == pytest.approx(best.reshape(2, 3).T, abs=1e-4)


def test_separated_groups_without_penalty_are_reported_not_converged():
    group = np.array(["a"] * 10 + ["b"] * 10 + ["c"] * 10)
    covariates = pd.DataFrame({"x": np.r_[np.zeros(10), np.ones(20)]
                               + np.linspace(0, 0.1, 30)})
    assert not fit_propensity(covariates, group, 0.0, ["a", "b", "c"]).converged
    assert fit_propensity(covariates, group, 1.0, ["a", "b", "c"]).converged


def test_missing_values_are_imputed_and_constant_columns_left_out():
    covariates = pd.DataFrame({"u": [1.0, np.nan, 3.0, 4.0, np.nan, 2.0],
                               "same": [1.0, 1.0, np.nan, 1.0, 1.0, 1.0]})
    fit = fit_propensity(covariates, [0, 0, 1, 1, 0, 1], 1.0)
    assert fit.imputed == {"u": 2, "same": 1}
    assert fit.constant == ["same"]
    assert list(fit.coefficients.index) == ["intercept", "u"]
    with pytest.raises(ValueError, match="penalty"):
        fit_propensity(covariates, [0, 0, 1, 1, 0, 1], -1.0)
    with pytest.raises(ValueError, match="two groups"):
        fit_propensity(covariates, [0, 0, 1, 1, 0, 1], 1.0, [0, 1, 2])


def test_balance_by_hand():
    covariates = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0, 10.0, 12.0],
                               "flag": [1.0, 0.0, np.nan, 1.0, 1.0, 0.0]})
    treated = [0, 0, 0, 1, 1, 1]
    weights = [1.0, 1.0, 2.0, 3.0, 1.0, 1.0]
    table = balance(covariates, [False, True], treated, weights, [0, 1]).set_index("term")
    assert table.loc["x", "mean_reference"] == pytest.approx(2.0)
    assert table.loc["x", "weighted_mean_group"] == pytest.approx((12 + 10 + 12) / 5)
    assert table.loc["flag", "mean_reference"] == pytest.approx(0.5)  # the unknown left out
    assert table.loc["flag", "weighted_mean_group"] == pytest.approx((3 + 1) / 5)
    assert table.loc["x", "smd_after"] == pytest.approx(
        standardised_mean_difference(covariates["x"], treated, weights))


def test_three_group_balance_compares_each_group_with_the_reference_by_hand():
    covariates = pd.DataFrame({"x": [1.0, 3.0, 2.0, 6.0, 10.0, 14.0]})
    group = ["r", "r", "b", "b", "c", "c"]
    weights = [1.0, 3.0, 1.0, 1.0, 2.0, 1.0]
    table = balance(covariates, [False], group, weights, ["r", "b", "c"]).set_index("group")
    assert list(table.index) == ["b", "c"]
    # r: mean 2, variance 2; b: mean 4, variance 8; c: mean 12, variance 8
    assert table.loc["b", "smd_before"] == pytest.approx((4 - 2) / math.sqrt((2 + 8) / 2))
    assert table.loc["c", "smd_before"] == pytest.approx((12 - 2) / math.sqrt((2 + 8) / 2))
    weighted_r = (1 + 9) / 4
    assert table.loc["c", "smd_after"] == pytest.approx(
        ((20 + 14) / 3 - weighted_r) / math.sqrt(5))
    assert table.loc["b", "weighted_mean_reference"] == pytest.approx(weighted_r)


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


def groups_of(seed: int, n: int, k: int):
    """Distinct exponential times, random events and one of `k` groups (g0 the reference)."""
    rng = np.random.default_rng(seed)
    time = rng.exponential(100, n) + np.arange(n) * 1e-4
    group = np.array([f"g{i}" for i in range(k)])[rng.integers(0, k, n)]
    return time, rng.integers(0, 2, n), group, rng


GROUPS3 = ["g0", "g1", "g2"]


def test_weighted_cox_with_integer_weights_matches_duplicated_rows():
    n = 60
    time, event, group, rng = groups_of(8, n, 3)
    weights = rng.integers(1, 4, n)
    got = group_hazard_ratios(time, event, group, GROUPS3, weights, robust=False)
    # a patient of weight 3 who dies is, in the duplicated data, three deaths at one time;
    # the weighted partial likelihood treats them as Breslow does tied deaths
    x = np.column_stack([group == "g1", group == "g2"]).astype(float)
    duplicated = PHReg(np.repeat(time, weights), np.repeat(x, weights, axis=0),
                       status=np.repeat(event, weights), ties="breslow").fit()
    assert [math.log(h.hr) for h in got] == pytest.approx(duplicated.params, abs=1e-4)
    # with weights 1 the weighted fit is the ordinary fit
    plain = group_hazard_ratios(time, event, group, GROUPS3, np.ones(n), robust=False)
    ordinary = PHReg(time, x, status=event, ties="breslow").fit()
    assert [math.log(h.hr) for h in plain] == pytest.approx(ordinary.params, abs=1e-8)
    assert [h.se_log_hr for h in plain] == pytest.approx(ordinary.bse, rel=1e-6)


@pytest.mark.parametrize("k, alpha", [(2, 0.05), (3, 0.10), (4, 0.05)])
def test_weighted_robust_cox_matches_lifelines(k, alpha):
    n = 120
    time, event, group, rng = groups_of(10 + k, n, k)
    weights = rng.uniform(0.3, 3, n)
    groups = [f"g{i}" for i in range(k)]
    got = group_hazard_ratios(time, event, group, groups, weights, alpha)
    frame = pd.DataFrame({f"x{i}": (group == g).astype(float) for i, g in enumerate(groups)
                          if i}).assign(time=time, event=event, w=weights)
    # distinct times: lifelines' Efron likelihood is Breslow's
    fitter = CoxPHFitter(alpha=alpha).fit(frame, "time", "event", weights_col="w",
                                          robust=True)
    summary = fitter.summary
    level = f"{100 * (1 - alpha):g}%"
    assert [h.hr for h in got] == pytest.approx(summary["exp(coef)"].to_numpy(), rel=1e-5)
    assert [h.se_log_hr for h in got] == pytest.approx(summary["se(coef)"].to_numpy(),
                                                        rel=1e-4)
    assert [h.lower for h in got] == pytest.approx(
        summary[f"exp(coef) lower {level}"].to_numpy(), rel=1e-4)
    assert [h.p_value for h in got] == pytest.approx(summary["p"].to_numpy(), rel=1e-3)


def test_unweighted_group_cox_matches_lifelines_efron_with_ties():
    n = 150
    time, event, group, _ = groups_of(21, n, 4)
    time = np.ceil(time / 10)  # many ties: Efron's correction matters
    groups = ["g0", "g1", "g2", "g3"]
    got = group_hazard_ratios(time, event, group, groups)
    frame = pd.DataFrame({f"x{i}": (group == g).astype(float) for i, g in enumerate(groups)
                          if i}).assign(time=time, event=event)
    fitter = CoxPHFitter().fit(frame, "time", "event")
    assert [h.hr for h in got] == pytest.approx(fitter.summary["exp(coef)"].to_numpy(),
                                                rel=1e-4)
    assert {h.analysis for h in got} == {"unadjusted Cox, model SE"}


def test_robust_se_does_not_change_when_all_weights_are_scaled():
    n = 50
    time, event, group, rng = groups_of(9, n, 2)
    weights = rng.uniform(0.3, 3, n)
    one = group_hazard_ratios(time, event, group, ["g0", "g1"], weights)[0]
    ten = group_hazard_ratios(time, event, group, ["g0", "g1"], 10 * weights)[0]
    naive_one = group_hazard_ratios(time, event, group, ["g0", "g1"], weights,
                                    robust=False)[0]
    naive_ten = group_hazard_ratios(time, event, group, ["g0", "g1"], 10 * weights,
                                    robust=False)[0]
    assert ten.hr == pytest.approx(one.hr, rel=1e-6)
    assert ten.se_log_hr == pytest.approx(one.se_log_hr, rel=1e-6)
    assert naive_ten.se_log_hr == pytest.approx(naive_one.se_log_hr / math.sqrt(10), rel=1e-4)


def test_a_group_without_events_is_not_estimable_and_left_out_of_the_model():
    n = 90
    time, event, group, rng = groups_of(12, n, 3)
    event = np.where(group == "g2", 0, event)
    weights = rng.uniform(0.5, 2, n)
    got = group_hazard_ratios(time, event, group, GROUPS3, weights)
    assert math.isnan(got[1].hr) and got[1].reason == "no events in this group"
    without = group != "g2"
    two = group_hazard_ratios(time[without], event[without], group[without], ["g0", "g1"],
                              weights[without])
    assert got[0].hr == pytest.approx(two[0].hr) and got[0].n == without.sum()
    none = group_hazard_ratios(time, np.where(group == "g0", 0, event), group, GROUPS3)
    assert all(h.reason == "no events in the reference group" for h in none)
    nothing = group_hazard_ratios(time, np.zeros(n), group, GROUPS3, weights)
    assert all(h.reason == "no events" for h in nothing)


# ---------------------------------------------------------------------------------------------
# Against R's survival package
# ---------------------------------------------------------------------------------------------
RSCRIPT = shutil.which("Rscript")
R_READY = RSCRIPT is not None and subprocess.run(
    [RSCRIPT, "-e", "library(survival)"], capture_output=True).returncode == 0

R_WEIGHTED = r"""
args <- commandArgs(TRUE)
suppressMessages(library(survival))
d <- read.csv(file.path(args[1], "cohort.csv"))
d$group <- factor(d$group, levels = c("g0", "g1", "g2"))
fit <- coxph(Surv(time, event) ~ group, data = d, weights = w, robust = TRUE,
             ties = "breslow")
s <- summary(fit, conf.int = 0.9)
write.csv(data.frame(hr = s$conf.int[, 1], lower = s$conf.int[, 3],
                     upper = s$conf.int[, 4], robust_se = s$coefficients[, "robust se"]),
          file.path(args[1], "cox.csv"), row.names = FALSE)
km <- survfit(Surv(time, event) ~ 1, data = d[d$group == "g1", ], weights = w)
write.csv(data.frame(time = km$time, surv = km$surv), file.path(args[1], "km.csv"),
          row.names = FALSE)
"""


@pytest.mark.skipif(not R_READY, reason="R reference test skipped: Rscript with the survival "
                    "package not found (apt-get install r-base-core r-cran-survival)")
def test_weighted_cox_and_km_of_three_groups_match_r(tmp_path):
    n = 150
    time, event, group, rng = groups_of(31, n, 3)
    time = np.ceil(time)  # whole days: tied times
    weights = rng.uniform(0.3, 3, n)
    pd.DataFrame({"time": time, "event": event, "group": group, "w": weights}).to_csv(
        tmp_path / "cohort.csv", index=False)
    (tmp_path / "script.R").write_text(R_WEIGHTED)
    subprocess.run([RSCRIPT, str(tmp_path / "script.R"), str(tmp_path)], check=True)
    r_cox = pd.read_csv(tmp_path / "cox.csv")
    got = group_hazard_ratios(time, event, group, GROUPS3, weights, alpha=0.10)
    assert [h.hr for h in got] == pytest.approx(r_cox["hr"].to_numpy(), rel=1e-6)
    assert [h.se_log_hr for h in got] == pytest.approx(r_cox["robust_se"].to_numpy(), rel=1e-6)
    assert [h.lower for h in got] == pytest.approx(r_cox["lower"].to_numpy(), rel=1e-6)
    assert [h.upper for h in got] == pytest.approx(r_cox["upper"].to_numpy(), rel=1e-6)
    r_km = pd.read_csv(tmp_path / "km.csv")
    part = group == "g1"
    curve = weighted_km(time[part], event[part], weights[part]).set_index("time")
    assert curve.loc[r_km["time"], "survival"].to_numpy() == pytest.approx(
        r_km["surv"].to_numpy(), rel=1e-9)

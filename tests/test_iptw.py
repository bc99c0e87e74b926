"""Tests for bridge_hsct.paper.iptw: propensity model, weights, balance, weighted KM and Cox.

References: hand arithmetic (SMD, weights, truncation, effective sample size, a weighted
product-limit table), the package's own unweighted Kaplan–Meier and Cox fits on duplicated
rows (integer weights are frequencies), and a direct scipy minimisation of the penalised
logistic likelihood.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import minimize
from scipy.special import expit
from statsmodels.duration.hazard_regression import PHReg

from bridge_hsct.book.chapter import Chapter
from bridge_hsct.paper.iptw import (
    balance_table,
    covariate_terms,
    curve_at,
    effective_sample_size,
    fit_propensity,
    iptw,
    iptw_outcomes,
    iptw_report,
    stabilised_weights,
    standardised_mean_difference,
    truncate_weights,
    weighted_at_risk,
    weighted_cox,
    weighted_km,
)
from bridge_hsct.stats.survival import km_table

GROUPS = ["Ref", "New"]


def cohort(n: int = 60, seed: int = 3) -> pd.DataFrame:
    """Two groups whose assignment depends on age and graft source; OS, PFS, aGVHD data."""
    rng = np.random.default_rng(seed)
    age = rng.uniform(10, 60, n).round(0)
    graft = rng.choice(["PB", "PB+BM"], n)
    logit = -0.5 + 0.04 * (age - 35) + 1.2 * (graft == "PB+BM")
    arm = np.where(rng.uniform(size=n) < expit(logit), "New", "Ref")
    followup = rng.uniform(30, 2000, n).round(0) + np.arange(n) * 1e-3
    death = (rng.uniform(size=n) < 0.4).astype(float)
    relapse = (rng.uniform(size=n) < 0.3).astype(float)
    relapse_days = np.where(relapse == 1, (followup * 0.5).round(1), np.nan)
    agvhd = (rng.uniform(size=n) < 0.25).astype(float)
    agvhd_days = np.where(agvhd == 1, np.minimum(followup, 20 + rng.integers(0, 60, n)), np.nan)
    return pd.DataFrame({
        "patient_id": [f"p{i}" for i in range(n)], "arm": arm, "age_years": age,
        "sex": rng.choice(["M", "F"], n),
        "disease_status": rng.choice(["primary_refractory", "first_relapse",
                                      "second_relapse"], n),
        "ph_positive": rng.integers(0, 2, n).astype(float),
        "mrd_positive": rng.integers(0, 2, n).astype(float),
        "graft_source": graft, "abo_compatibility": rng.choice(["matched", "minor", "major"], n),
        "followup_days": followup, "death": death, "relapse": relapse,
        "relapse_days": relapse_days, "agvhd_2_4": agvhd, "agvhd_2_4_days": agvhd_days,
        "agvhd_3_4": agvhd, "agvhd_3_4_days": agvhd_days,
        "cgvhd": np.zeros(n), "cgvhd_days": np.full(n, np.nan), "cgvhd_severe": np.zeros(n),
    })


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


def test_balance_table_uses_the_weights_and_flags_model_terms():
    data = cohort()
    weighting = iptw(data, "arm", GROUPS)
    balance = balance_table(data, weighting)
    age = balance.set_index("term").loc["age_years"]
    a = weighting.frame["treated"].to_numpy()
    w = weighting.frame["weight"].to_numpy()
    assert age["smd_before"] == pytest.approx(
        standardised_mean_difference(data["age_years"], a))
    assert age["smd_after"] == pytest.approx(
        standardised_mean_difference(data["age_years"], a, w))
    assert age["weighted_mean_treated"] == pytest.approx(
        np.average(data["age_years"][a == 1], weights=w[a == 1]))
    assert age["in_model"]
    levels = balance[balance["variable"] == "abo_compatibility"]
    assert len(levels) == 3, "every level of a categorical covariate"
    assert not balance.set_index("term").loc["sex=F", "in_model"]


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


def test_stabilised_weights_average_one_per_group_with_a_correct_model():
    rng = np.random.default_rng(11)
    n = 6000
    age = rng.uniform(10, 60, n)
    ph = rng.integers(0, 2, n).astype(float)
    treated = rng.uniform(size=n) < expit(0.8 + 0.05 * (age - 35) - 1.0 * ph)
    data = pd.DataFrame({"arm": np.where(treated, "New", "Ref"), "age_years": age,
                         "ph_positive": ph})
    weighting = iptw(data, "arm", GROUPS, ("age_years", "ph_positive"), penalty=0.0,
                     trim_percentiles=(0, 100))
    summary = weighting.summary().set_index("group")
    assert summary.loc["Ref", "weight_mean"] == pytest.approx(1.0, abs=0.05)
    assert summary.loc["New", "weight_mean"] == pytest.approx(1.0, abs=0.05)
    balance = balance_table(data, weighting, ["age_years", "ph_positive"])
    assert (balance["smd_after"].abs() < 0.05).all()
    assert (balance["smd_before"].abs() > 0.2).all()


def test_intercept_only_model_gives_weights_of_exactly_one():
    data = cohort()
    weighting = iptw(data, "arm", GROUPS, confounders=(), trim_percentiles=(0, 100))
    assert weighting.frame["weight"].to_numpy() == pytest.approx(1.0)
    assert weighting.model.propensity.to_numpy() == pytest.approx(
        (data["arm"] == "New").mean())


def test_ridge_fit_minimises_the_penalised_likelihood():
    data = cohort()
    penalty = 2.0
    model = fit_propensity(data, "arm", GROUPS, ("age_years", "graft_source"), penalty)
    x = np.column_stack([data["age_years"], (data["graft_source"] == "PB+BM").astype(float)])
    x = (x - x.mean(0)) / x.std(0)
    design = np.column_stack([np.ones(len(x)), x])
    y = (data["arm"] == "New").to_numpy(float)

    def objective(beta):
        eta = design @ beta
        return -(y * eta - np.logaddexp(0, eta)).sum() + penalty / 2 * (beta[1:] ** 2).sum()

    best = minimize(objective, np.zeros(3), method="BFGS", options={"gtol": 1e-10}).x
    assert model.coefficients.to_numpy() == pytest.approx(best, abs=1e-3)
    assert model.propensity.to_numpy() == pytest.approx(expit(design @ best), abs=1e-4)


def test_separated_groups_give_finite_weights_with_the_penalty():
    data = cohort()
    data["graft_source"] = np.where(data["arm"] == "New", "PB+BM", "PB")
    weighting = iptw(data, "arm", GROUPS, ("graft_source", "age_years"))
    propensity = weighting.model.propensity
    assert ((propensity > 0) & (propensity < 1)).all()
    assert np.isfinite(weighting.frame["weight"]).all()


def test_absent_and_constant_confounders_are_skipped_and_reported():
    data = cohort().drop(columns=["mrd_positive"]).assign(ph_positive=1.0)
    model = fit_propensity(data, "arm", GROUPS)
    assert model.skipped["mrd_positive"] == "not in the data"
    assert model.skipped["ph_positive"] == "a single level in the data"
    assert {t.variable for t in model.terms} == {"age_years", "disease_status",
                                                 "graft_source", "abo_compatibility"}


def test_missing_confounder_values_are_imputed_and_counted():
    data = cohort()
    data.loc[data.index[:4], "age_years"] = np.nan
    model = fit_propensity(data, "arm", GROUPS)
    assert model.imputed == {"age_years": 4}
    assert model.propensity.notna().all()


def test_iptw_needs_two_groups():
    data = cohort()
    data.loc[data.index[:5], "arm"] = "Third"
    with pytest.raises(ValueError, match="two groups"):
        fit_propensity(data, "arm", ["Ref", "New", "Third"])


def test_covariate_terms_codings():
    data = cohort()
    columns, terms, _ = covariate_terms(data, ["disease_status", "abo_compatibility"])
    names = [t.name for t in terms]
    assert names == ["disease_status", "abo_compatibility=minor", "abo_compatibility=major"]
    ranks = {"primary_refractory": 0, "first_relapse": 1, "second_relapse": 2}
    assert (columns["disease_status"] == data["disease_status"].map(ranks)).all()
    _, terms, _ = covariate_terms(data, ["disease_status"], "all")
    assert len(terms) == 3 and all(t.binary for t in terms)


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


def test_weighted_cox_with_integer_weights_matches_duplicated_rows():
    rng = np.random.default_rng(8)
    n = 40
    time = rng.exponential(100, n) + np.arange(n) * 1e-4
    event = rng.integers(0, 2, n)
    treated = rng.integers(0, 2, n)
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
    rng = np.random.default_rng(9)
    n = 50
    time = rng.exponential(100, n) + np.arange(n) * 1e-4
    event = rng.integers(0, 2, n)
    treated = rng.integers(0, 2, n)
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


def test_outcomes_unadjusted_rows_equal_plain_kaplan_meier():
    data = cohort()
    weighting = iptw(data, "arm", GROUPS)
    outcomes = iptw_outcomes(data, weighting, ("os", "agvhd_3_4"), landmark_months=12)
    landmarks = outcomes["landmarks"].set_index(["endpoint", "analysis", "group"])
    ref = data["arm"] == "Ref"
    table = km_table(data.loc[ref, "followup_days"], data.loc[ref, "death"])
    at = 12 * 365.25 / 12
    expected = table["survival"][table["time"] <= at].iloc[-1]
    assert landmarks.loc[("os", "unadjusted", "Ref"), "estimate"] == pytest.approx(expected)
    assert landmarks.loc[("os", "iptw", "Ref"), "weighted_n"] == pytest.approx(
        weighting.frame.loc[ref, "weight"].sum())
    assert landmarks.loc[("agvhd_3_4", "unadjusted", "Ref"), "quantity"] == "incidence"
    ratios = outcomes["hazard_ratios"]
    assert list(ratios["analysis"]) == ["unadjusted Cox, model SE", "IPTW Cox, robust SE"] * 2


def test_report_is_skipped_with_three_groups(tmp_path):
    data = cohort()
    data.loc[data.index[:5], "arm"] = "Third"
    chapter = Chapter(data, "arm", ["New", "Ref", "Third"], tmp_path)
    report = iptw_report(chapter)
    assert report.skipped and "two groups" in report.skipped
    assert "IPTW analysis not run" in report.show("weights").data
    assert not list(tmp_path.iterdir()), "nothing saved"


def test_report_saves_every_table_and_figure(tmp_path):
    data = cohort()
    chapter = Chapter(data, "arm", GROUPS, tmp_path)
    report = iptw_report(chapter)
    names = {p.name for p in tmp_path.iterdir()}
    for stem in ("figure_s6a", "figure_s6b", "figure_s6c", "figure_s6d", "iptw_balance"):
        assert {f"{stem}.png", f"{stem}.svg"} <= names, stem
    for csv in ("iptw_balance", "iptw_hazard_ratios", "iptw_sensitivity",
                "iptw_weight_summary", "iptw_propensity_model", "iptw_landmarks"):
        assert f"{csv}.csv" in names, csv
    assert "iptw_weights.csv" not in names, "no per-patient weights in the site"
    summary = pd.read_csv(tmp_path / "iptw_weight_summary.csv")
    assert len(summary) <= len(GROUPS) + 1
    assert "Supplementary Figure 6D" in report.show("figures").data

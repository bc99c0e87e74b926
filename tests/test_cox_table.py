"""Tests for bridge_hsct.paper.cox_table: the univariate Cox screen of the Table 1 covariates.

Independent reference: statsmodels' ``PHReg`` (its own Newton-Raphson on the Efron partial
likelihood, no shared code with lifelines, which the package uses). Hazard ratios, Wald
intervals, P values and the global Wald test of a multi-level variable are compared with it.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.duration.hazard_regression import PHReg

from bridge_hsct.paper.cox_table import (
    COLUMNS,
    NO_EVENT_IN_A_LEVEL,
    SCREENING_P,
    candidates_text,
    cox_display,
    cox_indicators,
    table1_covariates,
    univariate_cox_table,
)
from bridge_hsct.render.disclosure import NO_SUPPRESSION
from bridge_hsct.stats.survival import cox_univariate

GROUPS = ["Alpha", "Beta"]


def cohort(n: int = 80, seed: int = 7) -> pd.DataFrame:
    """A cohort whose hazard depends on age, sex and disease status (no tied times)."""
    rng = np.random.default_rng(seed)
    age = rng.uniform(6, 60, n).round(0)
    sex = rng.choice(["M", "F"], n)
    status = rng.choice(["primary_refractory", "first_relapse", "second_relapse",
                         "third_or_later_relapse"], n, p=[0.3, 0.4, 0.2, 0.1])
    rank = pd.Series(status).map({"primary_refractory": 0.0, "first_relapse": -0.5,
                                  "second_relapse": 0.4, "third_or_later_relapse": 0.8})
    hazard = np.exp(0.03 * (age - 30) + 0.5 * (sex == "F") + rank.to_numpy()) / 600
    death_time = rng.exponential(1 / hazard)
    censor_time = rng.uniform(200, 2500, n)
    followup = np.minimum(death_time, censor_time) + rng.uniform(0, 1e-3, n)
    return pd.DataFrame({
        "patient_id": [f"p{i}" for i in range(n)],
        "arm": rng.choice(GROUPS, n),
        "age_years": age, "sex": sex, "disease_status": status,
        "ph_positive": rng.integers(0, 2, n).astype(float),
        "cd34_dose": rng.uniform(2, 12, n).round(2),
        "followup_days": followup, "death": (death_time <= censor_time).astype(float),
        "relapse": np.zeros(n), "relapse_days": np.full(n, np.nan),
    })


def statsmodels_fit(data: pd.DataFrame, columns: pd.DataFrame):
    model = PHReg(data["followup_days"].to_numpy(), columns.to_numpy(float),
                  status=data["death"].to_numpy(), ties="efron")
    return model.fit()


def row(table: pd.DataFrame, variable: str, kind: str = "single", level: str = "") -> pd.Series:
    hit = table[(table["variable"] == variable) & (table["row"] == kind)
                & (table["level"] == level)]
    assert len(hit) == 1, (variable, kind, level)
    return hit.iloc[0]


@pytest.fixture(scope="module")
def data():
    return cohort()


@pytest.fixture(scope="module")
def table(data):
    return univariate_cox_table(data, "os", "arm", GROUPS, disclosure=NO_SUPPRESSION).numbers


@pytest.mark.parametrize("variable, level, column", [
    ("age_years", "", lambda d: d["age_years"]),
    ("sex", "Female", lambda d: (d["sex"] == "F").astype(float)),
    ("ph_positive", "yes", lambda d: d["ph_positive"]),
    ("cd34_dose", "", lambda d: d["cd34_dose"]),
    ("arm", "Beta", lambda d: (d["arm"] == "Beta").astype(float)),
])
def test_one_covariate_models_match_statsmodels(data, table, variable, level, column):
    fit = statsmodels_fit(data, pd.DataFrame({"x": column(data)}))
    got = row(table, variable, "single", level)
    z = stats.norm.ppf(0.975)
    beta, se = fit.params[0], fit.bse[0]
    # lifelines stops its Newton iterations a little earlier than statsmodels (a score of
    # ~1e-3 rather than 1e-13), hence an absolute tolerance on the log scale
    assert math.log(got["hr"]) == pytest.approx(beta, abs=2e-4)
    assert math.log(got["lower"]) == pytest.approx(beta - z * se, abs=5e-4)
    assert math.log(got["upper"]) == pytest.approx(beta + z * se, abs=5e-4)
    assert got["p_value"] == pytest.approx(fit.pvalues[0], abs=5e-4)
    assert got["n"] == len(data) and got["events"] == int(data["death"].sum())


def test_age_over_40_is_a_binary_covariate(data, table):
    got = row(table, "age_years", "single", "yes")
    expected = cox_univariate(data["followup_days"], data["death"],
                              (data["age_years"] > 40).astype(float))
    assert got["term"] == "> 40 vs ≤ 40"
    assert got["hr"] == pytest.approx(expected.hr)
    assert got["p_value"] == pytest.approx(expected.p_value)


def test_multilevel_variable_is_one_model_with_indicators_vs_the_first_level(data, table):
    levels = ["first_relapse", "second_relapse", "third_or_later_relapse"]
    columns = pd.DataFrame({lv: (data["disease_status"] == lv).astype(float) for lv in levels})
    fit = statsmodels_fit(data, columns)
    labels = ["First relapse", "Second relapse", "≥ Third relapse"]
    for i, label in enumerate(labels):
        got = row(table, "disease_status", "level", label)
        assert got["reference"] == "Primary refractory"
        assert math.log(got["hr"]) == pytest.approx(fit.params[i], abs=2e-4)
        assert got["p_value"] == pytest.approx(fit.pvalues[i], abs=5e-4)
        assert got["n"] == int((data["disease_status"] == levels[i]).sum())
    beta, covariance = fit.params, fit.cov_params()
    chi2 = float(beta @ np.linalg.solve(covariance, beta))
    overall = row(table, "disease_status", "variable")
    assert overall["p_value"] == pytest.approx(stats.chi2.sf(chi2, 3), rel=1e-3, abs=1e-6)
    assert overall["test"] == "Wald, 3 df"
    assert not row(table, "disease_status", "level", "First relapse")["candidate"]


def test_joint_model_with_one_column_equals_cox_univariate(data):
    x = (data["sex"] == "F").astype(float)
    joint = cox_indicators(data["followup_days"], data["death"], pd.DataFrame({"x": x}))
    single = cox_univariate(data["followup_days"], data["death"], x)
    assert joint["terms"].loc["x", "hr"] == pytest.approx(single.hr)
    assert joint["terms"].loc["x", "upper"] == pytest.approx(single.upper)
    assert joint["p_value"] == pytest.approx(single.p_value, rel=1e-6)


def test_candidates_are_the_rows_below_the_paper_threshold(table):
    testable = table[table["row"] != "level"]
    assert (testable["candidate"] == (testable["p_value"] < SCREENING_P)).all()
    assert not table.loc[table["row"] == "level", "candidate"].any()
    assert row(table, "age_years")["candidate"], "the simulated age effect is detected"
    text = candidates_text(table, "overall survival")
    assert re.search(r"Age \(per year, P (=|<) ", text)


def test_group_column_first_absent_covariates_listed(data):
    result = univariate_cox_table(data, "os", "arm", GROUPS, disclosure=NO_SUPPRESSION)
    table = result.numbers
    assert list(table.columns) == COLUMNS
    assert table.iloc[0]["variable"] == "arm"
    assert table.iloc[0]["term"] == "Beta vs Alpha"
    assert "ikzf1_isoform6" in result.absent and "graft_source" in result.absent
    assert "followup_months" not in set(table["variable"])


def test_missing_values_leave_the_model_and_counts_follow(data):
    holes = data.copy()
    holes.loc[holes.index[:5], "cd34_dose"] = np.nan
    got = row(univariate_cox_table(holes, "os", "arm", GROUPS,
                                   disclosure=NO_SUPPRESSION).numbers, "cd34_dose")
    assert got["n"] == len(data) - 5
    assert got["events"] == int(holes["death"].iloc[5:].sum())


def test_level_without_events_is_reported_not_raised(data):
    lucky = data.copy()
    lucky.loc[lucky["ph_positive"] == 1, "death"] = 0.0
    table = univariate_cox_table(lucky, "os", "arm", GROUPS, disclosure=NO_SUPPRESSION).numbers
    got = row(table, "ph_positive", "single", "yes")
    assert math.isnan(got["hr"])
    assert got["reason"] == f"{NO_EVENT_IN_A_LEVEL} (no event in those with it)"
    assert not got["candidate"]
    shown = cox_display(table)
    assert any("Ph-positive" in note for note in shown["notes"])


def test_single_level_covariate_gets_a_reason(data):
    one = data.assign(sex="M")
    got = row(univariate_cox_table(one, "os", "arm", GROUPS,
                                   disclosure=NO_SUPPRESSION).numbers, "sex", "single")
    assert got["reason"] == "only one level in the data" and math.isnan(got["hr"])


def test_nrm_is_cause_specific_relapse_censored(data):
    relapsing = data.copy()
    first = relapsing.index[:10]
    relapsing.loc[first, "relapse"] = 1.0
    relapsing.loc[first, "relapse_days"] = relapsing.loc[first, "followup_days"] / 2
    got = row(univariate_cox_table(relapsing, "nrm", "arm", GROUPS,
                                   disclosure=NO_SUPPRESSION).numbers, "age_years")
    time = np.where(relapsing["relapse"] == 1, relapsing["relapse_days"],
                    relapsing["followup_days"])
    event = ((relapsing["death"] == 1) & (relapsing["relapse"] == 0)).astype(float)
    expected = cox_univariate(time, event, relapsing["age_years"])
    assert got["events"] == int(event.sum())
    assert got["hr"] == pytest.approx(expected.hr)


def test_display_indents_levels_and_marks_candidates(table):
    shown = cox_display(table)
    display = shown["display"]
    assert len(display) == len(table)
    levels = display[display["indent"] == 1]
    assert set(levels["Characteristic"]) == {"First relapse", "Second relapse",
                                             "≥ Third relapse"}
    for position in shown["candidates"]:
        assert display.iloc[position]["P < 0.10"] == "yes"
    assert display.iloc[0]["HR (95% CI)"].count("–") == 1


def test_covariate_coding_follows_the_schema(data):
    covariates, _ = table1_covariates(data, "arm", GROUPS)
    coding = {(c.variable, c.coding) for c in covariates}
    assert ("age_years", "per_unit") in coding and ("age_years", "over") in coding
    assert ("disease_status", "levels") in coding and ("sex", "two_levels") in coding
    sex = next(c for c in covariates if c.variable == "sex")
    assert sex.levels == ("M", "F")

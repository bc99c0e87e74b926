"""Tests for bridge_hsct.paper.iptw: the chapter's covariate coding, propensity model,
weights, balance table, outcomes and report.

The statistics themselves are tested in test_weighting.py; here, that the chapter feeds them
the right terms and groups, reports what it left out, and saves and shows every part.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

from bridge_hsct.book.chapter import Chapter
from bridge_hsct.paper.iptw import (
    balance_table,
    covariate_terms,
    iptw,
    iptw_outcomes,
    iptw_report,
    propensity_model,
)
from bridge_hsct.paths import NOTEBOOKS
from bridge_hsct.stats.survival import km_table
from bridge_hsct.stats.weighting import standardised_mean_difference

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
    assert weighting.model.fit.propensity.to_numpy() == pytest.approx(
        (data["arm"] == "New").mean())


def test_separated_groups_give_finite_weights_with_the_penalty():
    data = cohort()
    data["graft_source"] = np.where(data["arm"] == "New", "PB+BM", "PB")
    weighting = iptw(data, "arm", GROUPS, ("graft_source", "age_years"))
    propensity = weighting.model.fit.propensity
    assert ((propensity > 0) & (propensity < 1)).all()
    assert np.isfinite(weighting.frame["weight"]).all()


def test_absent_and_constant_confounders_are_skipped_and_reported():
    data = cohort().drop(columns=["mrd_positive"]).assign(ph_positive=1.0)
    model = propensity_model(data, "arm", GROUPS)
    assert model.skipped["mrd_positive"] == "not in the data"
    assert model.skipped["ph_positive"] == "a single level in the data"
    assert {t.variable for t in model.terms} == {"age_years", "disease_status",
                                                 "graft_source", "abo_compatibility"}


def test_missing_confounder_values_are_imputed_and_counted():
    data = cohort()
    data.loc[data.index[:4], "age_years"] = np.nan
    model = propensity_model(data, "arm", GROUPS)
    assert model.fit.imputed == {"age_years": 4}
    assert model.fit.propensity.notna().all()


def test_iptw_needs_two_groups():
    data = cohort()
    data.loc[data.index[:5], "arm"] = "Third"
    with pytest.raises(ValueError, match="two groups"):
        propensity_model(data, "arm", ["Ref", "New", "Third"])


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
# Outcomes and the report
# ---------------------------------------------------------------------------------------------
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


#: What the chapter's notebook shows, one cell each.
PARTS = ("describe_weights", "propensity_table", "weights_table", "balance_plot",
         "covariate_balance", "describe_events", "curve_figures", "landmark_table",
         "hazard_ratio_table", "sensitivity_table", "describe_limits", "downloads")


def test_the_notebook_shows_every_part_once_in_order():
    text = (NOTEBOOKS / "iptw.md").read_text(encoding="utf-8")
    assert re.findall(r"^report\.(\w+)\(\)$", text, re.MULTILINE) == list(PARTS)


def test_report_is_skipped_with_three_groups(tmp_path):
    data = cohort()
    data.loc[data.index[:5], "arm"] = "Third"
    chapter = Chapter(data, "arm", ["New", "Ref", "Third"], tmp_path)
    report = iptw_report(chapter)
    assert report.skipped and "two groups" in report.skipped
    assert "IPTW analysis not run" in report.describe_weights().data
    # None shows nothing; an empty Markdown would print its repr on the page
    assert all(getattr(report, part)() is None for part in PARTS if part != "describe_weights")
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
    assert "Supplementary Figure 6D" in report.curve_figures().data
    assert "iptw_sensitivity.csv" in report.downloads().data
    for part in PARTS:
        shown = getattr(report, part)()
        assert (shown.as_raw_html() if hasattr(shown, "as_raw_html") else shown.data), part

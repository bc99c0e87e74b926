"""Tests for bridge_hsct.paper.iptw: the chapter's covariate coding, propensity model,
weights, balance table, outcomes and report.

The statistics themselves are tested in test_weighting.py; here, that the chapter feeds them
the right terms and groups (two to four), reports what it left out, writes sentences that
follow the numbers, and saves and shows every part; and that the notebook runs end to end on
simulated cohorts of three and four groups with nothing but text, tables and figures on the
page.
"""

from __future__ import annotations

import re

import jupytext
import matplotlib.pyplot as plt
import nbformat
import numpy as np
import pandas as pd
import papermill
import pytest
from lifelines import CoxPHFitter
from scipy.special import expit

from bridge_hsct.book.chapter import Chapter
from bridge_hsct.cohort.simulate import ARMS, Arm, simulate_cohort
from bridge_hsct.paper.iptw import (
    SUPPLEMENTARY_FIGURE6,
    balance_table,
    covariate_terms,
    iptw,
    iptw_outcomes,
    iptw_report,
    propensity_model,
    weighting_sensitivity,
)
from bridge_hsct.paper.iptw.report import curves_engine
from bridge_hsct.paper.panels import _draw
from bridge_hsct.paths import NOTEBOOKS
from bridge_hsct.render.disclosure import NO_SUPPRESSION, Disclosure
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
    a = (weighting.frame["group"] == "New").to_numpy()
    w = weighting.frame["weight"].to_numpy()
    assert age["smd_before"] == pytest.approx(
        standardised_mean_difference(data["age_years"], a))
    assert age["smd_after"] == pytest.approx(
        standardised_mean_difference(data["age_years"], a, w))
    assert age["weighted_mean_group"] == pytest.approx(
        np.average(data["age_years"][a == 1], weights=w[a == 1]))
    assert age["in_model"]
    levels = balance[balance["variable"] == "abo_compatibility"]
    assert len(levels) == 3, "every level of a categorical covariate"
    assert set(balance["group"]) == {"New"}, "the reference is not compared with itself"
    assert not balance.set_index("term").loc["sex=F", "in_model"]


# ---------------------------------------------------------------------------------------------
# Propensity model and weights
# ---------------------------------------------------------------------------------------------
def test_stabilised_weights_average_one_per_group_with_a_correct_three_group_model():
    rng = np.random.default_rng(11)
    n = 6000
    age = rng.uniform(10, 60, n)
    ph = rng.integers(0, 2, n).astype(float)
    eta = np.column_stack([np.zeros(n), 0.8 + 0.05 * (age - 35) - 1.0 * ph,
                           -0.3 - 0.04 * (age - 35) + 0.8 * ph])
    p = np.exp(eta) / np.exp(eta).sum(1, keepdims=True)
    arm = np.array(["Ref", "New", "Third"])[(rng.uniform(size=(n, 1)) > p.cumsum(1)).sum(1)]
    data = pd.DataFrame({"arm": arm, "age_years": age, "ph_positive": ph})
    weighting = iptw(data, "arm", ["Ref", "New", "Third"], ("age_years", "ph_positive"),
                     penalty=0.0, trim_percentiles=(0, 100))
    summary = weighting.summary().set_index("group")
    assert summary["weight_mean"].to_numpy() == pytest.approx(1.0, abs=0.05)
    balance = balance_table(data, weighting, ["age_years", "ph_positive"])
    assert len(balance) == 4, "two terms, each group against the reference"
    assert (balance["smd_after"].abs() < 0.05).all()
    assert (balance["smd_before"].abs() > 0.2).all()


def test_intercept_only_model_gives_weights_of_exactly_one():
    data = cohort()
    weighting = iptw(data, "arm", GROUPS, confounders=(), trim_percentiles=(0, 100))
    assert weighting.frame["weight"].to_numpy() == pytest.approx(1.0)
    assert weighting.model.fit.propensity["New"].to_numpy() == pytest.approx(
        (data["arm"] == "New").mean())


def test_separated_groups_give_finite_weights_with_the_penalty():
    data = cohort()
    data["graft_source"] = np.where(data["arm"] == "New", "PB+BM", "PB")
    weighting = iptw(data, "arm", GROUPS, ("graft_source", "age_years"))
    propensity = weighting.model.fit.propensity.to_numpy()
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
    assert model.fit.propensity.notna().all().all()


def test_iptw_needs_two_groups_with_patients():
    data = cohort()
    with pytest.raises(ValueError, match="two groups"):
        propensity_model(data, "arm", ["Ref", "New", "Absent"])
    with pytest.raises(ValueError, match="two groups"):
        propensity_model(data, "arm", ["Ref"])


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
def cohort_of(k: int, n: int = 120, seed: int = 3) -> pd.DataFrame:
    """:func:`cohort` with the patients spread over `k` groups."""
    data = cohort(n, seed)
    data["arm"] = np.array(GROUPS + ["Third", "Fourth"])[np.arange(n) % k]
    return data


@pytest.mark.parametrize("k", [2, 3, 4])
def test_outcomes_equal_plain_kaplan_meier_and_independent_cox_fits(k):
    data = cohort_of(k)
    groups = (GROUPS + ["Third", "Fourth"])[:k]
    weighting = iptw(data, "arm", groups)
    outcomes = iptw_outcomes(data, weighting, ("os", "agvhd_3_4"), landmark_months=12,
                             alpha=0.1)
    landmarks = outcomes["landmarks"].set_index(["endpoint", "analysis", "group"])
    at = 12 * 365.25 / 12
    for group in groups:
        part = data["arm"] == group
        table = km_table(data.loc[part, "followup_days"], data.loc[part, "death"])
        expected = table["survival"][table["time"] <= at].iloc[-1]
        assert landmarks.loc[("os", "unadjusted", group), "estimate"] == pytest.approx(
            expected)
        assert landmarks.loc[("os", "iptw", group), "weighted_n"] == pytest.approx(
            weighting.frame.loc[part, "weight"].sum())
    assert landmarks.loc[("agvhd_3_4", "unadjusted", "Ref"), "quantity"] == "incidence"
    ratios = outcomes["hazard_ratios"]
    weighted = ratios[(ratios["endpoint"] == "os") & (ratios["analysis"] != "unadjusted "
                                                                        "Cox, model SE")]
    assert list(weighted["group"]) == groups[1:]
    frame = pd.DataFrame({g: (data["arm"] == g).astype(float) for g in groups[1:]}).assign(
        time=data["followup_days"], event=data["death"], w=weighting.frame["weight"])
    fitter = CoxPHFitter(alpha=0.1).fit(frame, "time", "event", weights_col="w", robust=True)
    # distinct times (Efron is Breslow); lifelines stops its Newton steps ~1e-5 short
    assert weighted["hr"].to_numpy() == pytest.approx(
        fitter.summary["exp(coef)"].to_numpy(), rel=2e-4)
    assert weighted["upper"].to_numpy() == pytest.approx(
        fitter.summary["exp(coef) upper 90%"].to_numpy(), rel=2e-4)
    assert (ratios["alpha"] == 0.1).all()


#: What the chapter's notebook shows, one cell each.
PARTS = ("describe_weights", "propensity_table", "weights_table", "balance_plot",
         "covariate_balance", "describe_events", "curve_figures", "landmark_table",
         "hazard_ratio_table", "sensitivity_table", "describe_limits", "downloads")


def test_the_notebook_shows_every_part_once_in_order():
    text = (NOTEBOOKS / "iptw.md").read_text(encoding="utf-8")
    assert re.findall(r"^report\.(\w+)\(\)$", text, re.MULTILINE) == list(PARTS)


def test_report_is_skipped_with_a_sentence_when_the_reference_is_too_small(tmp_path):
    data = cohort()
    data.loc[data.index[:3], "arm"] = "Tiny"
    chapter = Chapter(data, "arm", ["Tiny", "New", "Ref"], tmp_path)
    report = iptw_report(chapter)
    shown = report.describe_weights().data
    assert "IPTW analysis not run" in shown and "the reference group, Tiny, has fewer than 5" \
        in shown
    # None shows nothing; an empty Markdown would print its repr on the page
    assert all(getattr(report, part)() is None for part in PARTS if part != "describe_weights")
    assert not list(tmp_path.iterdir()), "nothing saved"


def test_a_small_group_is_left_out_and_named(tmp_path):
    data = cohort()
    data.loc[data.index[:3], "arm"] = "Tiny"
    report = iptw_report(Chapter(data, "arm", ["Ref", "New", "Tiny"], tmp_path))
    assert report.groups == ["Ref", "New"]
    assert "Tiny (fewer than 5 patients)" in report.describe_weights().data


def test_sentences_follow_the_numbers(tmp_path):
    small = iptw_report(Chapter(cohort(40), "arm", GROUPS, tmp_path / "small"))
    large = iptw_report(Chapter(cohort(900), "arm", GROUPS, tmp_path / "large"))
    assert "so it may over-fit" in small.describe_limits().data
    assert "over-fitting it is not a concern" in large.describe_limits().data
    for report in (small, large):
        model = report.balance[report.balance["in_model"]]
        achieved = bool((model["smd_after"].abs() <= 0.1).all())
        text = report.describe_weights().data
        assert ("Balance on the model's terms is achieved" in text) == achieved
        assert ("is not achieved" in text) == (not achieved)
        weighted = report.outcomes["hazard_ratios"]
        weighted = weighted[weighted["analysis"] == "IPTW Cox, robust SE"]
        spanning = int(((weighted["lower"] < 0.5) & (weighted["upper"] > 2)).sum())
        limits = report.describe_limits().data
        assert (f"{spanning} of the" in limits) if spanning else ("None of the" in limits)


def test_counts_follow_the_chapter_disclosure(tmp_path):
    data = cohort(60)
    chapter = Chapter(data, "arm", GROUPS, tmp_path, disclosure=Disclosure(1000))
    report = iptw_report(chapter)
    text = report.describe_weights().data + report.describe_limits().data
    assert "< 1000" in text
    assert not re.search(r"(?<![\d.])(60|[1-9]\d?) patients", text), "no count of patients shown"
    summary = pd.read_csv(tmp_path / "iptw_weight_summary.csv")
    assert (summary["n"] == "< 1000").all()


def test_figures_are_drawn_in_the_book_style_without_a_session_style(tmp_path):
    data = cohort()
    plt.rcdefaults()
    before = dict(plt.rcParams)
    chapter = Chapter(data, "arm", GROUPS, tmp_path, disclosure=NO_SUPPRESSION)
    engine = curves_engine(chapter, iptw(data, "arm", GROUPS), save=False)
    weighted = engine.panel(SUPPLEMENTARY_FIGURE6[1])
    assert weighted.weighted
    figure = _draw(weighted, engine.data)
    assert not figure.axes[0].spines["top"].get_visible(), "the book's style"
    assert dict(plt.rcParams) == before, "no setting left behind"
    plt.close(figure)


@pytest.mark.parametrize("k", [2, 3, 4])
def test_report_saves_every_table_and_figure(tmp_path, k):
    data = cohort_of(k)
    groups = (GROUPS + ["Third", "Fourth"])[:k]
    report = iptw_report(Chapter(data, "arm", groups, tmp_path))
    assert report.skipped is None and report.groups == groups
    names = {p.name for p in tmp_path.iterdir()}
    for stem in ("figure_s6a", "figure_s6b", "figure_s6c", "figure_s6d", "figure_s6a_iptw",
                 "figure_s6d_iptw", "iptw_balance"):
        assert {f"{stem}.png", f"{stem}.svg"} <= names, stem
    for csv in ("iptw_balance", "iptw_hazard_ratios", "iptw_sensitivity",
                "iptw_weight_summary", "iptw_propensity_model", "iptw_landmarks",
                "supplementary_figure6_estimates"):
        assert f"{csv}.csv" in names, csv
        assert (tmp_path / f"{csv}.csv").stat().st_size > 100, csv
    assert "iptw_weights.csv" not in names, "no per-patient weights in the site"
    summary = pd.read_csv(tmp_path / "iptw_weight_summary.csv")
    assert list(summary["group"]) == groups
    shown = report.curve_figures().data
    for spec in SUPPLEMENTARY_FIGURE6:  # each panel with its anchor, caption and downloads
        assert f":name: {spec.anchor}\n" in shown and f"**{spec.label}.** " in shown
        assert f"Download {spec.label}: {{download}}`PNG" in shown
    estimates = pd.read_csv(tmp_path / "supplementary_figure6_estimates.csv")
    assert set(estimates["panel"]) == {s.stem for s in SUPPLEMENTARY_FIGURE6}
    assert set(estimates["group"]) == set(groups), "the groups each panel shows"
    assert "iptw_sensitivity.csv" in report.downloads().data
    for part in PARTS:
        shown = getattr(report, part)()
        assert (shown.as_raw_html() if hasattr(shown, "as_raw_html") else shown.data), part


def test_an_absent_endpoint_column_saves_no_empty_download(tmp_path):
    data = cohort().drop(columns=["death"])  # overall survival and its kin: not drawn
    report = iptw_report(Chapter(data, "arm", GROUPS, tmp_path))
    shown = report.curve_figures().data
    assert "Supplementary Figure 6A is not drawn" in shown
    assert "6A, IPTW-weighted is not drawn" not in shown, "one note for the endpoint"
    assert "Supplementary Figure 6D, IPTW-weighted.** " in shown
    for path in tmp_path.glob("*.csv"):
        assert path.stat().st_size > 1, path.name


FOUR_ARMS = (*ARMS, Arm("Ponatinib", 0.2, relapse_hazard_ratio=0.9, death_hazard_ratio=0.8))


@pytest.mark.parametrize("arms", [ARMS, FOUR_ARMS], ids=["three groups", "four groups"])
def test_the_notebook_runs_on_a_simulated_cohort_with_no_repr(tmp_path, arms):
    data = tmp_path / "cohort.csv"
    simulate_cohort(300, 5, arms=arms).to_csv(data, index=False)
    notebook = tmp_path / "iptw.ipynb"
    jupytext.write(jupytext.read(NOTEBOOKS / "iptw.md"), notebook)
    executed = tmp_path / "iptw-out.ipynb"
    papermill.execute_notebook(
        str(notebook), str(executed), kernel_name="python3", progress_bar=False,
        parameters={"data_path": str(data), "output_dir": str(tmp_path / "outputs"),
                    "group_order": [a.label for a in arms], "min_cell_count": 5},
    )
    shown = [o for c in nbformat.read(executed, as_version=4).cells
             for o in c.get("outputs", [])]
    # a Markdown or table carries a text/plain repr beside what the page shows; an output
    # with nothing but that repr (or an error) would put it on the page
    assert all(o["output_type"] in ("display_data", "execute_result")
               and set(o["data"]) - {"text/plain"} for o in shown)
    outputs = "".join(str(o) for o in shown)
    assert "IPTW analysis not run" not in outputs
    for arm in arms[1:]:
        assert f"{arm.label} vs {arms[0].label}" in outputs
    assert "Supplementary Figure 6D" in outputs
    for path in (tmp_path / "outputs").glob("*.csv"):
        assert path.stat().st_size > 1, path.name


def test_each_sensitivity_row_is_the_analysis_run_with_its_settings():
    """The sensitivity table fits one model per penalty and reuses the outcomes and the
    balance terms; each row must equal the whole analysis run afresh with its penalty and
    truncation (:func:`iptw`, :func:`balance_table`, the weighted Cox model)."""
    from bridge_hsct.cohort.endpoints import as_censored, derive
    from bridge_hsct.paper.iptw.analysis import DEFAULT_CONFOUNDERS
    from bridge_hsct.stats.weighting import group_hazard_ratios

    groups = ["Ref", "New", "Third"]
    data = simulate_cohort(400, seed=5, arms=[Arm("Ref", 0.4), Arm("New", 0.35, 0.8, 1.2),
                                              Arm("Third", 0.25, 1.2, 0.9)])
    table = weighting_sensitivity(data, "arm", groups, endpoints=("os", "nrm"))
    assert len(table) == 3 * 2 * 2 * 2 and table["reason"].eq("").all()
    for (penalty, lower, upper), rows in table.groupby(["penalty", "trim_lower",
                                                        "trim_upper"]):
        weighting = iptw(data, "arm", groups, penalty=penalty, trim_percentiles=(lower, upper))
        balance = balance_table(data, weighting, DEFAULT_CONFOUNDERS)
        assert (rows["max_abs_smd_after"] == balance["smd_after"].abs().max()).all()
        for name in ("os", "nrm"):
            outcome = as_censored(derive(weighting.rows(data), name))
            got = rows[rows["endpoint"] == name].set_index("group")
            for h in group_hazard_ratios(outcome["time"], outcome["cause"],
                                         weighting.frame["group"], groups,
                                         weighting.frame["weight"]):
                assert got.loc[h.group, ["hr", "lower", "upper", "p_value"]].tolist() == \
                    pytest.approx([h.hr, h.lower, h.upper, h.p_value], rel=1e-12)

"""One Methods page that names every method with its reference, written from the code.

The page's settings follow the code and the build's parameters (change a constant and the
page follows); the three choices stated as constants (CI transform, Cox ties, weighted and
penalised ties) are checked against the computations themselves; and pages that show no
number from the data carry no synthetic-data banner.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from lifelines import CoxPHFitter, KaplanMeierFitter
from statsmodels.duration.hazard_regression import PHReg

from bridge_hsct.paper import methods
from bridge_hsct.paper.methods import REFERENCES, methods_markdown
from bridge_hsct.paper.multivariate import MultivariateTable
from bridge_hsct.paths import BOOK, NOTEBOOKS
from bridge_hsct.render.disclosure import NO_SUPPRESSION
from bridge_hsct.stats import cox_models
from bridge_hsct.stats.survival import fit_cox, km_at
from bridge_hsct.stats.weighting import group_hazard_ratios

#: Each method, as the page must name it, and the reference that must follow it.
METHODS = {
    "Kaplan–Meier": "Kaplan 1958", "log-log": "Kalbfleisch 2002", "log-rank": "Mantel 1966",
    "Aalen–Johansen": "Aalen 1978", "Gray's test": "Gray 1988", "Univariable Cox": "Cox 1972",
    "Efron": "Efron 1977", "Firth": "Firth 1993", "ridge": "Verweij 1994",
    "stepwise": "Cao 2025", "generalised propensity": "Imbens 2000",
    "robust variance": "Lin 1989", "reverse Kaplan–Meier": "Schemper 1996",
    "standardised mean differences": "Austin 2009", "Fisher's exact": "Agresti 2013",
    "Multiplicity": "",
}


@pytest.fixture
def page():
    return methods_markdown(alpha=0.05, landmark_months=24.0, min_cell_count=0)


def paragraph_of(text: str, words: str) -> str:
    return next(p for p in text.split("\n\n") if words in p)


def test_every_method_is_named_with_its_reference(page):
    for method, reference in METHODS.items():
        assert method in page, method
        if reference:
            assert f"[{reference}" in paragraph_of(page, method) or \
                f"; {reference}" in paragraph_of(page, method), method
            assert f"- {reference}: " in page, f"{reference} not in the reference list"
    cited = set(re.findall(r"- (\w+ \d{4}): ", page))
    assert cited <= {f"{v.split(' ')[0]} {k[-4:]}" for k, v in REFERENCES.items()}


def test_the_page_says_the_paper_did_not_name_its_tie_method(page):
    cox = paragraph_of(page, "Univariable Cox")
    assert "does not say how its software handled ties" in cox
    note = MultivariateTable(pd.DataFrame(), pd.DataFrame(), alpha=0.05,
                             disclosure=NO_SUPPRESSION).methods_note()
    assert "as in the paper" not in note and "paper does not say" in note


def test_the_page_follows_the_code_s_constants(monkeypatch):
    monkeypatch.setattr(methods, "COX_TIES", "Breslow")
    monkeypatch.setattr(methods, "SURVIVAL_CI", "log")
    monkeypatch.setattr(cox_models, "ENTRY_P", 0.2)
    page = methods_markdown(alpha=0.05, landmark_months=24.0)
    assert "Breslow's method for tied event times" in page
    assert "intervals on the log scale" in page
    assert "enter at P < 0.2" in page


def test_the_page_follows_the_build_s_parameters():
    page = methods_markdown(alpha=0.1, landmark_months=12.0, min_cell_count=5)
    assert "90% confidence interval" in page and "below 0.1" in page
    assert "at 12 months" in page and "“< 5”" in page
    assert "95%" not in page


def test_the_ci_transform_is_what_the_estimates_use():
    rng = np.random.default_rng(3)
    time = rng.exponential(400, 60).round()
    event = rng.random(60) < 0.7
    estimate = km_at(time, event, 300.0, 0.05)
    fitter = KaplanMeierFitter().fit(time, event, alpha=0.05)  # exponential Greenwood
    band = fitter.confidence_interval_survival_function_.loc[:300.0].iloc[-1]
    assert methods.SURVIVAL_CI == "log-log"
    assert estimate.lower == pytest.approx(band.iloc[0], abs=1e-6)
    assert estimate.upper == pytest.approx(band.iloc[1], abs=1e-6)


@pytest.fixture
def tied():
    rng = np.random.default_rng(11)
    frame = pd.DataFrame({"x": rng.normal(size=80)})
    frame["time"] = np.ceil(rng.exponential(30 * np.exp(-0.5 * frame["x"])) / 10)
    frame["event"] = (rng.random(80) < 0.8).astype(int)
    return frame


def test_the_cox_tie_method_is_what_the_fit_uses(tied):
    model, _ = fit_cox(tied, "time", "event")
    efron = CoxPHFitter().fit(tied, "time", "event").params_["x"]
    breslow = PHReg(tied["time"], tied[["x"]], status=tied["event"], ties="breslow").fit()
    assert methods.COX_TIES == "Efron"
    assert model.summary.loc["x", "coef"] == pytest.approx(efron, abs=1e-4)
    assert abs(model.summary.loc["x", "coef"] - breslow.params[0]) > 1e-3  # ties matter here


def test_the_weighted_cox_tie_method_is_breslow(tied):
    group = np.where(tied["x"] > 0, "B", "A")
    ratio = group_hazard_ratios(tied["time"], tied["event"], pd.Series(group), ["A", "B"],
                                weights=np.ones(len(tied)), robust=False)[0]
    design = pd.DataFrame({"b": (group == "B").astype(float)})
    breslow = PHReg(tied["time"], design, status=tied["event"], ties="breslow").fit()
    assert methods.PENALISED_TIES == "Breslow"
    assert np.log(ratio.hr) == pytest.approx(breslow.params[0], abs=1e-5)


#: Pages that show no number computed from the data: no synthetic-data banner.
NO_COHORT_NUMBERS = [NOTEBOOKS / "methods.md", NOTEBOOKS / "inconsistencies.md"]


@pytest.mark.parametrize("path", NO_COHORT_NUMBERS, ids=lambda p: p.name)
def test_a_page_without_cohort_numbers_has_no_banner(path):
    assert "{{ data_banner }}" not in path.read_text(encoding="utf-8")


def test_the_methods_page_computes_nothing_from_the_data():
    text = (NOTEBOOKS / "methods.md").read_text(encoding="utf-8")
    assert "open_chapter" not in text and "read_csv" not in text
    assert not (BOOK / "methods.md").exists(), "one Methods page: the notebook"
    assert "(methods)=" in text

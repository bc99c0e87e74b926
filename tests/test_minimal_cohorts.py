"""Cohorts with only the required columns and one kind of outcome build a correct book.

Issue 13's "done when": a file with only id, group, follow-up and death builds a survival
book whose numbers an independent computation confirms; one with only id, group, follow-up
and GVHD columns builds the GVHD chapter. What needs an absent column is left out with a
sentence naming it, never computed from invented values and never an empty download.
"""

import numpy as np
import pandas as pd
import pytest
from lifelines import KaplanMeierFitter
from lifelines.statistics import multivariate_logrank_test

from bridge_hsct.book.build import Parameters, build
from bridge_hsct.cohort.simulate import simulate_cohort
from conftest import page_text

DAYS_PER_MONTH = 365.25 / 12
COLUMNS = {"survival only": ["patient_id", "arm", "followup_days", "death"],
           "GVHD only": ["patient_id", "arm", "followup_days", "agvhd_2_4", "agvhd_2_4_days",
                         "cgvhd", "cgvhd_days"]}


@pytest.fixture(scope="module", params=list(COLUMNS))
def minimal(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp("minimal")
    data = simulate_cohort(300, seed=3)[COLUMNS[request.param]]
    path = folder / "cohort.csv"
    data.to_csv(path, index=False)
    out = folder / "site"
    build(out, Parameters(data_path=str(path)), log=lambda *a, **k: None, cache=None)
    return request.param, pd.read_csv(path), out


def estimates(site, stem: str) -> pd.DataFrame:
    [path] = (site / "_downloads").rglob(f"{stem}.csv")
    return pd.read_csv(path)


def one_minus_km_or_km(time, event, months: float, survival: bool) -> float:
    km = KaplanMeierFitter().fit(time, event)
    value = float(km.survival_function_at_times(months * DAYS_PER_MONTH).iloc[0])
    return value if survival else 1 - value


def test_no_empty_download_and_no_repr(minimal):
    _, _, site = minimal
    assert not [p for p in site.rglob("*") if p.is_file() and p.stat().st_size < 2]
    for page in site.glob("*.html"):
        text = page.read_text(encoding="utf-8")
        assert "IPython.core" not in text and " object at 0x" not in text, page.name


def test_survival_only_cohort_gives_overall_survival_and_names_what_it_lacks(minimal):
    name, data, site = minimal
    if name != "survival only":
        pytest.skip("a cohort with death")
    rows = estimates(site, "figure1_estimates").query("endpoint == 'os' and by == 'arm'")
    assert set(rows["group"]) == {"whole", *data["arm"]}
    for _, row in rows.iterrows():
        part = data if row["group"] == "whole" else data[data["arm"] == row["group"]]
        expected = one_minus_km_or_km(part["followup_days"], part["death"] == 1,
                                      row["landmark_months"], survival=True)
        assert row["estimate"] == pytest.approx(expected, rel=1e-9)
    p = multivariate_logrank_test(data["followup_days"], data["arm"], data["death"] == 1)
    assert rows["p_value"].dropna().iloc[0] == pytest.approx(p.p_value, rel=1e-6)
    results = page_text(site / "results.html")
    assert "The data lack relapse" in results and "progression-free survival cannot" in results
    assert "no column relapse" in page_text(site / "nrm.html")


def test_gvhd_only_cohort_gives_the_gvhd_chapter_without_a_competing_risk_disguise(minimal):
    name, data, site = minimal
    if name != "GVHD only":
        pytest.skip("a cohort with GVHD only")
    rows = estimates(site, "figure4_estimates").query("endpoint == 'agvhd_2_4'")
    paper = rows[(rows["method"] == "1 - kaplan-meier") & (rows["by"] == "arm")]
    assert set(paper["group"]) == {"whole", *data["arm"]}
    for _, row in paper.iterrows():
        part = data if row["group"] == "whole" else data[data["arm"] == row["group"]]
        time = np.where(part["agvhd_2_4"] == 1, part["agvhd_2_4_days"], part["followup_days"])
        expected = one_minus_km_or_km(time, part["agvhd_2_4"] == 1, row["landmark_months"],
                                      survival=False)
        assert row["estimate"] == pytest.approx(expected, rel=1e-9)
    # without relapse and death, an Aalen–Johansen number would be 1 − KM under another name
    assert rows[rows["method"] == "aalen-johansen"]["estimate"].isna().all()
    gvhd = page_text(site / "gvhd.html")
    assert "The data have no relapse and death" in gvhd
    assert "overall survival cannot be computed" in page_text(site / "results.html")

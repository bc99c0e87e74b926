"""A cohort from another centre builds the whole book: other arm labels, three arms, optional
columns missing, calendar dates instead of days, a few thousand patients."""


import numpy as np
import pandas as pd
import pytest

from bridge_hsct.book.build import DEFAULT_DATA, Parameters, build
from conftest import page_text, path_text, site_files

OPTIONAL_DROPPED = ["ikzf1_isoform6", "donor_sex", "crs_grade", "icans", "t315i",
                    "platelet_engraftment", "platelet_engraftment_days", "tma"]
EVENTS = ["relapse", "agvhd_2_4", "agvhd_3_4", "cgvhd", "neutrophil_engraftment"]


def other_centre_cohort(n: int, seed: int = 7) -> pd.DataFrame:
    """`n` patients resampled from the synthetic cohort, relabelled into three arms, with
    calendar dates instead of days and some optional columns absent."""
    rng = np.random.default_rng(seed)
    base = pd.read_csv(DEFAULT_DATA)
    data = base.iloc[rng.integers(0, len(base), n)].reset_index(drop=True)
    data["patient_id"] = [f"OC-{i:05d}" for i in range(n)]
    data["arm"] = rng.choice(["Inotuzumab", "Chemotherapy", "CAR-T 19"], n, p=[.3, .3, .4])
    day0 = pd.Series(pd.Timestamp("2018-01-01")
                     + pd.to_timedelta(rng.integers(0, 1500, n), unit="D"))
    data["hsct_date"] = day0.dt.strftime("%Y-%m-%d")
    end = day0 + pd.to_timedelta(data["followup_days"], unit="D")
    data["last_contact_date"] = end.dt.strftime("%Y-%m-%d")
    data["death_date"] = end.where(data["death"] == 1).dt.strftime("%Y-%m-%d")
    for event in EVENTS:
        when = day0 + pd.to_timedelta(data[f"{event}_days"], unit="D")
        data[f"{event}_date"] = when.where(data[event] == 1).dt.strftime("%Y-%m-%d")
    days = ["followup_days", "death"] + EVENTS + [f"{e}_days" for e in EVENTS]
    return data.drop(columns=days + OPTIONAL_DROPPED)


@pytest.fixture(scope="module")
def other_site(tmp_path_factory):
    folder = tmp_path_factory.mktemp("other centre")
    path = folder / "cohort with dates.csv"
    other_centre_cohort(3000).to_csv(path, index=False)
    out = folder / "site"
    build(out, Parameters(data_path=str(path), group_order=["Chemotherapy", "Inotuzumab",
                                                             "CAR-T 19"],
                          cutoff_date="2023-12-31"), log=lambda *a, **k: None, cache=None)
    return out


def test_whole_book_builds_for_another_centre(other_site):
    baseline = page_text(other_site / "baseline.html")
    for arm in ["Chemotherapy", "Inotuzumab", "CAR-T 19"]:
        assert arm in baseline
    assert "Synthetic data" not in baseline and "cohort with dates.csv" in baseline
    pages = {p.name for p in other_site.glob("*.html")}
    assert {"baseline.html", "audit.html", "provenance.html"} <= pages


def test_missing_optional_columns_are_noted_not_crashed(other_site):
    text = page_text(other_site / "baseline.html")
    assert "Not in the data" in text and "Ikaros isoform 6" in text


def test_no_patient_ids_leak(other_site):
    for path in site_files(other_site):
        assert "OC-0" not in path_text(path), path.relative_to(other_site)

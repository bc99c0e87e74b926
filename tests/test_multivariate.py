"""Table 2: the paper's factors coded from the cohort, every model reported with its labels
and events per variable, and absent columns handled with notes."""

import math

import numpy as np
import pandas as pd
import pytest

from bridge_hsct.paper.multivariate import (
    COVARIATES,
    TABLE2_MODELS,
    model_frame,
    multivariate_table,
)
from bridge_hsct.render.disclosure import NO_SUPPRESSION
from bridge_hsct.stats.cox_models import COX, FIRTH, RIDGE, cox_fit
from conftest import small_cohort


def _cohort_with_factors():
    rng = np.random.default_rng(3)
    data = pd.concat([small_cohort()] * 5, ignore_index=True)
    data["patient_id"] = [f"p{i}" for i in range(len(data))]
    data["age_years"] = rng.integers(10, 70, len(data))
    data["conditioning"] = rng.choice(["TBI", "chemo"], len(data))
    data["graft_source"] = rng.choice(["PB", "PB+BM"], len(data))
    data["donor_type"] = rng.choice(["HID", "MSD", "MUD"], len(data))
    data["donor_sex"] = rng.choice(["M", "F"], len(data))
    data["prior_hsct"] = rng.integers(0, 2, len(data))
    data["cgvhd"] = data["agvhd_2_4"]
    data["cgvhd_days"] = data["agvhd_2_4_days"] + 100
    return data


def test_table2_reports_every_model_and_events_per_variable():
    data = _cohort_with_factors()
    result = multivariate_table(data, disclosure=NO_SUPPRESSION)
    numbers = result.numbers
    assert set(numbers["outcome"]) == set(TABLE2_MODELS)
    for outcome, covariates in TABLE2_MODELS.items():
        rows = numbers[(numbers["outcome"] == outcome) & (numbers["model"] == COX)]
        assert rows["covariate"].tolist() == list(covariates)
        frame = model_frame(data, outcome, list(covariates))
        events = int(frame["event"].sum())
        assert (rows["events"] == events).all()
        assert rows["events_per_variable"].iloc[0] == pytest.approx(events / len(covariates))
        direct = cox_fit(frame, list(covariates)).table
        np.testing.assert_allclose(rows["hr"], direct["hr"], equal_nan=True)
    assert {COX, FIRTH, RIDGE, "stepwise"} <= set(numbers["model"])


def test_table2_labels_each_factor_after_its_name():
    result = multivariate_table(_cohort_with_factors(), disclosure=NO_SUPPRESSION)
    numbers = result.numbers
    assert list(numbers.columns[3:5]) == ["covariate", "label"]
    assert (numbers["label"] == numbers["covariate"].map(lambda c: COVARIATES[c].label)).all()
    shown = set(result.display["Outcome and factor"])
    assert {COVARIATES[c].label for c in TABLE2_MODELS["agvhd_3_4"]} <= shown


def test_absent_columns_give_notes_not_errors():
    data = _cohort_with_factors().drop(columns=["donor_type", "cgvhd", "cgvhd_days"])
    result = multivariate_table(data, disclosure=NO_SUPPRESSION)
    assert "cgvhd" not in set(result.numbers["outcome"])
    covariates = set(result.numbers["covariate"])
    assert "donor_haploidentical" not in covariates and "age_over_40" in covariates
    text = " ".join(result.notes)
    assert "Chronic GVHD" in text and "Haploidentical donor" in text
    nothing = multivariate_table(small_cohort().drop(columns=["agvhd_3_4", "agvhd_3_4_days"]),
                                 disclosure=NO_SUPPRESSION)
    assert nothing.numbers.empty and nothing.display.empty and len(nothing.notes) == 2


def test_model_frame_codes_factors_and_censors_competing_events():
    data = _cohort_with_factors()
    frame = model_frame(data, "agvhd_3_4", ["age_over_40", "donor_haploidentical"])
    assert (frame["age_over_40"] == (data["age_years"] > 40).astype(float)).all()
    assert (frame["donor_haploidentical"] == (data["donor_type"] == "HID")).all()
    assert set(frame["event"]) <= {0, 1}
    assert int(frame["event"].sum()) == int(data["agvhd_3_4"].sum())
    assert not math.isnan(frame["duration"].sum())

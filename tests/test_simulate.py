"""The simulated cohort (benchmarks, other-centre builds): valid, seeded, of the promised shape."""

import numpy as np
import pandas as pd
import pytest

from bridge_hsct.cohort.schema import BY_NAME, REQUIRED
from bridge_hsct.cohort.simulate import ABSENT_COLUMNS, ARMS, BLANK_SHARES, Arm, simulate_cohort
from bridge_hsct.cohort.validate import load_cohort, validate_cohort
from bridge_hsct.stats.survival import km_at

EVENTS = [v.event_of for v in BY_NAME.values() if v.event_of]


@pytest.fixture(scope="module")
def cohort():
    return simulate_cohort(20_000, seed=11)


@pytest.mark.parametrize("whole_days", [True, False])
def test_passes_the_validation(whole_days):
    validate_cohort(simulate_cohort(3000, seed=5, whole_days=whole_days))


def test_reads_back_from_its_csv_file_unchanged(tmp_path):
    simulated = simulate_cohort(500, seed=2)
    path = tmp_path / "simulated.csv"
    simulated.to_csv(path, index=False)
    assert "1.0" not in path.read_text().split(",")  # flags and days written as integers
    loaded = load_cohort(path)
    assert len(loaded) == 500
    pd.testing.assert_series_equal(loaded["relapse_days"], simulated["relapse_days"]
                                   .astype(float), check_names=False)


def test_same_seed_same_cohort_other_seed_other_cohort():
    pd.testing.assert_frame_equal(simulate_cohort(300, seed=3), simulate_cohort(300, seed=3))
    assert not simulate_cohort(300, seed=3).equals(simulate_cohort(300, seed=4))


def test_columns_and_rows(cohort):
    assert len(cohort) == 20_000 and cohort["patient_id"].is_unique
    assert set(REQUIRED) <= set(cohort.columns)
    assert not set(ABSENT_COLUMNS) & set(cohort.columns)
    order = [name for name in BY_NAME if name in cohort.columns]
    assert list(cohort.columns) == order, "the data dictionary's order"


def test_three_arms_in_their_shares(cohort):
    shares = cohort["arm"].value_counts(normalize=True)
    assert list(shares.index.sort_values()) == sorted(a.label for a in ARMS)
    for arm in ARMS:
        assert shares[arm.label] == pytest.approx(arm.share, abs=0.015)


def test_blank_cells_in_optional_columns_only(cohort):
    for name, share in BLANK_SHARES.items():
        assert cohort[name].isna().mean() == pytest.approx(share, abs=0.01)
    for name in REQUIRED + EVENTS:
        if name in cohort and not BY_NAME[name].event_of:  # an event's day: blank if none
            assert cohort[name].notna().all(), name


def test_many_distinct_times_and_censoring(cohort):
    assert cohort["followup_days"].nunique() > 2500  # the resampled cohort had 36
    assert cohort["relapse_days"].nunique() > 1000
    assert 0.3 < 1 - cohort["death"].mean() < 0.7, "a realistic share censored alive"
    assert cohort["relapse"].mean() == pytest.approx(0.40, abs=0.05)
    assert cohort["death"].mean() == pytest.approx(0.48, abs=0.05)
    assert 600 < cohort["followup_days"].median() < 900


def test_fractional_days_make_event_times_distinct():
    relapse_days = simulate_cohort(20_000, seed=11, whole_days=False)["relapse_days"].dropna()
    assert relapse_days.nunique() > 0.95 * len(relapse_days)
    assert (relapse_days % 1 != 0).mean() > 0.9


def test_arms_differ_as_their_hazard_ratios_say():
    arms = [Arm("A", 0.5), Arm("B", 0.5, relapse_hazard_ratio=2.0)]
    cohort = simulate_cohort(20_000, seed=8, arms=arms)
    by_arm = cohort.groupby("arm")["relapse"].mean()
    assert by_arm["B"] > by_arm["A"] + 0.1
    two_year_survival = {arm: km_at(group["followup_days"], group["death"], 730).value
                         for arm, group in cohort.groupby("arm")}
    assert two_year_survival["B"] < two_year_survival["A"] - 0.05


def test_every_event_within_follow_up(cohort):
    for event in EVENTS:
        if event not in cohort:
            continue
        days = cohort[f"{event}_days"].to_numpy(float)
        happened = cohort[event].to_numpy() == 1
        assert np.array_equal(~np.isnan(days), happened), event
        assert (days[happened] <= cohort["followup_days"].to_numpy()[happened]).all(), event

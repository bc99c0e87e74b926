"""The synthetic cohort beyond the published time points (issue 15).

The rules of :mod:`bridge_hsct.paper.synthetic.tails` hold on the committed cohort; the key
ones are also re-derived here with plain pandas and the book's own survival functions, so
that a bug in the rules module cannot hide a breach. The rules themselves are tested on
cohorts built to break them (the late pile-up an earlier generator produced among them).
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bridge_hsct.cohort.endpoints import derive
from bridge_hsct.paper.synthetic import tails
from bridge_hsct.stats.survival import km_median

ROOT = Path(__file__).resolve().parents[1]
COHORT = ROOT / "data" / "synthetic_cohort.csv"
MONTH = 365.25 / 12
CUTOFF = pd.Timestamp("2024-03-31")


@pytest.fixture(scope="module")
def cohort() -> pd.DataFrame:
    return pd.read_csv(COHORT)


def test_every_rule_has_a_statement_and_a_source():
    assert len(set(tails.RULE_NAMES)) == len(tails.RULES) >= 6
    for rule in tails.RULES:
        assert rule.statement and rule.source
        assert rule.source.startswith(("prior", "Results", "Methods")), rule.name


def test_every_rule_holds_on_the_committed_cohort(cohort):
    assert tails.tail_problems(cohort) == []
    assert set(tails.tail_summary(cohort)["Kept"]) == {"yes"}


@pytest.mark.parametrize("group", ["whole", "CAR-T", "Blinatumomab"])
def test_median_os_not_reached_with_the_books_functions(cohort, group):
    """Results: 'the median OS time was not reached' (the arms held to the same rule)."""
    sub = cohort if group == "whole" else cohort[cohort["arm"] == group]
    ep = derive(sub, "os")
    assert math.isnan(km_median(ep["time"], ep["cause"]).value)


def test_published_pfs_median_is_still_reached(cohort):
    """The PFS median is published (31.96 months): the rules must not flatten PFS away."""
    ep = derive(cohort, "pfs")
    assert abs(km_median(ep["time"], ep["cause"]).value / MONTH - 31.96) <= 1.0


def _deaths_months(df):
    return np.sort(df.loc[df["death"] == 1, "followup_days"].to_numpy() / MONTH)


def test_no_more_than_one_death_or_relapse_in_any_year_after_three_years(cohort):
    rel = cohort.loc[cohort["relapse"] == 1, "relapse_days"].to_numpy() / MONTH
    for times in (_deaths_months(cohort), np.sort(rel)):
        late = times[times > 36]
        for t in late:
            assert ((late >= t) & (late < t + 12)).sum() <= 1


def test_late_death_rate_not_above_the_early_rate(cohort):
    fu = cohort["followup_days"].to_numpy() / MONTH
    dead = cohort["death"].to_numpy() == 1
    early = (dead & (fu <= 24)).sum() / np.minimum(fu, 24).sum()
    late_time = np.maximum(fu - 24, 0).sum()
    assert (dead & (fu > 24)).sum() <= tails.LATE_RATE_RATIO * early * late_time


def test_alive_patients_followed_to_the_cutoff_and_every_year_accrues(cohort):
    date = pd.to_datetime(cohort["hsct_date"])
    end = date + pd.to_timedelta(cohort["followup_days"], unit="D")
    lost = (cohort["death"] == 0) & (end < CUTOFF)
    assert lost.sum() <= tails.LOST_MAX
    for year in range(2017, 2023):
        start = pd.Timestamp(dt.date(year, 3, 1))
        assert ((date >= start) & (date < start + pd.DateOffset(years=1))).any(), year


def _with_late_deaths(cohort: pd.DataFrame, months) -> pd.DataFrame:
    """The cohort with its longest-followed survivors dying at ``months`` (no relapse)."""
    df = cohort.copy()
    alive = df[df["death"] == 0].sort_values("followup_days", ascending=False).index
    for i, m in zip(alive, months, strict=False):
        df.loc[i, ["followup_days", "death"]] = [round(m * MONTH), 1]
    return df


def test_the_old_late_pile_up_breaks_the_rules(cohort):
    """Five deaths between 71.8 and 81.8 months, as the generator once produced."""
    df = _with_late_deaths(cohort, [71.8, 75.6, 78.1, 80.5, 81.8])
    broken = {p.split(":")[0] for p in tails.tail_problems(df)}
    assert {"no_late_cluster", "nrm_plateau"} <= broken


def test_a_median_os_breaks_the_rule():
    n = 10
    df = pd.DataFrame({"followup_days": np.arange(1, n + 1) * 100.0, "death": [1] * 6 + [0] * 4,
                       "relapse": 0, "relapse_days": np.nan, "arm": "CAR-T"})
    values = tails.rule_values(df["followup_days"], df["death"], df["relapse"],
                               df["relapse_days"].fillna(0), df["arm"])
    assert values["os_median_not_reached"] > 0


def test_late_relapses_break_the_plateau_and_rate_rules(cohort):
    df = cohort.copy()
    alive = df[(df["death"] == 0) & (df["relapse"] == 0)].sort_values(
        "followup_days", ascending=False).index[:4]
    df.loc[alive, "relapse"] = 1
    df.loc[alive, "relapse_days"] = df.loc[alive, "followup_days"] - 30
    values = tails.cohort_values(df)
    assert values["relapse_plateau"] > 0
    assert values["no_late_cluster"] > 0


def test_losses_to_follow_up_and_an_empty_year_are_caught(cohort):
    df = cohort.copy()
    alive = df[df["death"] == 0].index[: tails.LOST_MAX + 1]
    df.loc[alive, "followup_days"] = df.loc[alive, "followup_days"] - 40
    assert tails.date_values(df)["followed_to_cutoff"] > 0
    df = cohort.copy()
    date = pd.to_datetime(df["hsct_date"])
    in_2019 = (date >= "2019-03-01") & (date < "2020-03-01")
    df.loc[in_2019, "hsct_date"] = "2020-03-02"
    assert tails.date_values(df)["steady_accrual"] == 1


def test_the_search_pays_for_a_broken_rule(cohort):
    ok = tails.penalty(cohort["followup_days"], cohort["death"], cohort["relapse"],
                       cohort["relapse_days"].fillna(0), cohort["arm"])
    bad = _with_late_deaths(cohort, [71.8, 75.6, 78.1, 80.5, 81.8])
    worse = tails.penalty(bad["followup_days"], bad["death"], bad["relapse"],
                          bad["relapse_days"].fillna(0), bad["arm"])
    assert ok == 0 and worse >= 2 * tails.PENALTY_STEP

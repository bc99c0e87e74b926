"""Bundles on a week or month grid: how far the pooled results move from day resolution,
and the bound on the Kaplan–Meier estimate that holds whatever the grid.

The simulated cohort is split into three centres; each writes its bundle on a day, a week
and a month grid; the pooled results of the coarse grids are compared with those of the day
grid (which equal the pooled rows', tests/test_bundle.py), and the Kaplan–Meier bounds of
:func:`bridge_hsct.stats.life_tables.row_level_survival_bounds` with the row-level estimate
of :func:`bridge_hsct.stats.survival.km_at`.
"""

import numpy as np
import pandas as pd
import pytest

from bridge_hsct.cohort.validate import validate_cohort
from bridge_hsct.paper import bundle as bundles
from bridge_hsct.stats import life_tables as lt
from bridge_hsct.stats.survival import km_at, months_to_days
from test_bundle import endpoint_rows, simulated_raw, split_into_centres

LANDMARK_DAYS = float(months_to_days(24))
#: Engraftment: nearly every event falls in the first weeks, so a week or a month moves
#: most of them (the largest changes of the tests, measured below).
EARLY = ("neutrophil_engraftment", "platelet_engraftment")
#: What the measurements gave on this cohort (900 patients, three groups, three centres):
#: the largest change of a landmark estimate (0.0071) and of a test's chi-square (0.24 for
#: the endpoints after the transplant, 2.47 for engraftment), with room to spare.
ESTIMATE_CHANGE, CHI2_CHANGE, EARLY_CHI2_CHANGE = 0.01, 0.3, 3.0


@pytest.fixture(scope="module")
def grids(tmp_path_factory):
    """(pooled rows, centre of each row, {unit: {endpoint: PooledEndpoint}})."""
    folder = tmp_path_factory.mktemp("grids")
    centres = split_into_centres(simulated_raw(), 3, seed=11)
    pooled = {}
    for unit in bundles.TIME_UNITS:
        read = []
        for i, centre in enumerate(centres):
            path = folder / f"{unit}{i}.zip"
            bundles.write_bundle(centre, "arm", path, time_unit=unit)
            read.append(bundles.read_bundle(path))
        pooled[unit] = {e: bundles.pool_endpoint(read, e, exact=unit == "days")
                        for e in read[0].manifest["endpoints"]}
    rows = validate_cohort(pd.concat(centres, ignore_index=True), "<pooled>", "arm")
    return rows, np.repeat(np.arange(3), [len(c) for c in centres]), pooled


def _at_landmark(result: bundles.PooledEndpoint, group: str) -> float:
    if result.gray is not None:
        return result.incidence_at(group, LANDMARK_DAYS).value
    return result.survival_at(group, LANDMARK_DAYS).value


@pytest.mark.parametrize("unit", ["weeks", "months"])
def test_coarse_grids_move_the_estimates_and_tests_little(grids, unit):
    _, _, pooled = grids
    largest = {"estimate": 0.0, "chi2": 0.0, "early chi2": 0.0}
    for endpoint, day in pooled["days"].items():
        coarse = pooled[unit][endpoint]
        assert not coarse.exact and day.exact
        for group in day.groups:
            change = abs(_at_landmark(coarse, group) - _at_landmark(day, group))
            if np.isfinite(change):
                largest["estimate"] = max(largest["estimate"], change)
        pairs = [(day.logrank, coarse.logrank), (day.logrank_by_centre,
                                                 coarse.logrank_by_centre)]
        if day.gray is not None:
            pairs += [(day.gray, coarse.gray), (day.gray_by_centre, coarse.gray_by_centre)]
        key = "early chi2" if endpoint in EARLY else "chi2"
        for exact, approximate in pairs:
            largest[key] = max(largest[key], abs(approximate.chi2 - exact.chi2))
    assert largest["estimate"] > 0, "a coarser grid changes something"
    assert largest["estimate"] <= ESTIMATE_CHANGE, largest
    assert largest["chi2"] <= CHI2_CHANGE, largest
    assert largest["early chi2"] <= EARLY_CHI2_CHANGE, largest


@pytest.mark.parametrize("unit", ["weeks", "months"])
@pytest.mark.parametrize("name", ["os", "pfs", "grfs"])
def test_the_bounds_hold_the_row_level_kaplan_meier(grids, unit, name):
    rows, centre, pooled = grids
    data = endpoint_rows(rows, centre, name)
    result = pooled[unit][name]
    width = result.days_per_unit
    for group, mine in data.groupby("group"):
        for months in (1, 3, 6, 12, 18, 24, 36):
            days = float(months_to_days(months))
            theirs = km_at(mine["time"], mine["cause"] == 1, days).value
            lower, upper = lt.row_level_survival_bounds(result.tables[group], days / width)
            if not np.isfinite(theirs):
                continue
            assert lower - 1e-12 <= theirs <= upper + 1e-12, (group, months, lower, upper)
            assert upper == result.survival_at(group, days).value, "the coarse estimate"
            # the width of the bracket: the events of one interval and the censoring in it
            assert upper - lower < 0.05


def test_the_bounds_are_those_of_a_hand_computed_table():
    # grid of width 1: 10 at risk; in interval 1, 5 censored then 1 event (the rows: 0.8);
    # interval 2 nothing; interval 3 one event among the 4 left (rows: 0.8 * 0.75 = 0.6)
    table = lt.life_table_from_counts([1, 3, 4], [10, 4, 3], [1, 1, 0], [0, 0, 0],
                                      [5, 0, 3])
    assert lt.row_level_survival_bounds(table, 1.0) == pytest.approx((0.8, 0.9))
    assert lt.row_level_survival_bounds(table, 1.5) == pytest.approx((0.8, 0.9))
    assert lt.row_level_survival_bounds(table, 3.0) == pytest.approx((0.6, 0.9 * 0.75))
    assert all(np.isnan(lt.row_level_survival_bounds(table, 4.5)))


def test_the_coarse_estimate_can_exceed_the_rows_one_width_earlier():
    """The bound ``S_rows(t) <= S_grid(t) <= S_rows(t - w)`` fails with censoring inside an
    interval: censored patients stay at risk to its end. Rows (days): ten patients, five
    censored on day 1, one event on day 2, the rest followed past day 14."""
    time = np.array([1, 1, 1, 1, 1, 2, 20, 20, 20, 20], float)
    cause = np.array([0, 0, 0, 0, 0, 1, 0, 0, 0, 0])
    weekly = lt.life_table(np.ceil(time / 7), cause)
    coarse = lt.survival_at(weekly, 2.0).value          # day 14 on the week grid
    assert coarse == pytest.approx(0.9)
    assert km_at(time, cause == 1, 14.0 - 7.0).value == pytest.approx(0.8)
    assert km_at(time, cause == 1, 14.0).value == pytest.approx(0.8)
    lower, upper = lt.row_level_survival_bounds(weekly, 2.0)
    assert lower <= 0.8 <= upper == coarse

"""The inconsistencies page's tables, on a hand-made registry and on the real one."""

import pandas as pd

from bridge_hsct.paper.inconsistencies import (
    conflicting_readings,
    fisher_from_published_counts,
    misprinted_percentages,
)
from bridge_hsct.paper.published import load_published


def hand_registry():
    rows = [
        # id, source, quantity, group, statistic, value, conflict, followed, note
        ("n_b", "table3", "n_patients", "Blinatumomab", "n", 9, "", "", ""),
        ("n_c", "table3", "n_patients", "CAR-T", "n", 27, None, None, ""),
        ("cmv_b", "table3", "cmv", "Blinatumomab", "count", 4, None, None, ""),
        ("cmv_c", "table3", "cmv", "CAR-T", "count", 18, None, None, ""),
        ("cmv_p", "table3", "cmv", "CAR-T vs Blinatumomab", "p_value", 0.267, None, None, ""),
        ("ebv_b", "table3", "ebv", "Blinatumomab", "count", 8, None, None, ""),
        ("ebv_c", "table3", "ebv", "CAR-T", "count", 21, None, None, ""),
        ("ebv_p", "table3", "ebv", "CAR-T vs Blinatumomab", "p_value", 0.5, None, None, ""),
        ("os_a", "abstract", "os", "CAR-T", "rate_2y", 73.89, "os_cart", "no", "why not"),
        ("os_r", "results", "os", "CAR-T", "rate_2y", 77.78, "os_cart", "yes", "why"),
        ("pct", "table3", "cmv", "CAR-T", "percent", 66.6, None, None, "misprint: 66.7"),
    ]
    frame = pd.DataFrame(rows, columns=["id", "source", "quantity", "group", "statistic",
                                        "value", "conflict", "followed", "note"])
    frame["locator"] = frame["id"]
    return frame


def test_p_values_from_counts_flag_the_wrong_one():
    result = fisher_from_published_counts(hand_registry()).set_index("id")
    # CMV 4/9 vs 18/27: Fisher two-sided 0.267 (as printed); EBV 8/9 vs 21/27 gives 0.652
    assert bool(result.loc["cmv_p", "reproduced"]) is True
    assert bool(result.loc["ebv_p", "reproduced"]) is False
    assert result.loc["ebv_p", "Fisher P from the counts"] == 0.652


def test_conflicts_and_misprints():
    readings = conflicting_readings(hand_registry())
    assert list(readings["value"]) == [77.78, 73.89]
    assert list(readings["followed"]) == ["followed", "not followed"]
    assert list(misprinted_percentages(hand_registry())["id"]) == ["pct"]


def test_real_registry_mrd_p_value_is_not_reproducible():
    result = fisher_from_published_counts(load_published()).set_index("id")
    assert not result.loc["table1.mrd_positive.p_value", "reproduced"]
    assert result.drop(index="table1.mrd_positive.p_value")["reproduced"].all()


def test_real_registry_lists_only_the_quantities_printed_twice():
    registry = load_published()
    readings = conflicting_readings(registry)
    keyed = registry[registry["conflict"] != ""]
    assert 0 < len(readings) == len(keyed) < len(registry) / 10
    assert (readings.groupby("conflict")["followed"].apply(
        lambda f: (f == "followed").sum()) == 1).all(), "one reading followed per quantity"

"""Median follow-up in the Results words: both definitions, each named."""

import pytest
from lifelines import KaplanMeierFitter

from bridge_hsct.cohort.validate import load_cohort
from bridge_hsct.paper import narrative
from bridge_hsct.paths import DEFAULT_DATA
from bridge_hsct.render.disclosure import NO_SUPPRESSION
from bridge_hsct.stats.survival import to_months


def test_reverse_kaplan_meier_median_beside_the_median_of_observed_times():
    data = load_cohort(DEFAULT_DATA)
    section = narrative.baseline_section(data, "arm", sorted(data["arm"].unique()), 0.05,
                                         disclosure=NO_SUPPRESSION)
    # independent: lifelines' Kaplan–Meier of the time to censoring (deaths censor)
    reverse = KaplanMeierFitter().fit(data["followup_days"], 1 - data["death"])
    expected = float(to_months(reverse.median_survival_time_))
    observed = float(to_months(data["followup_days"].median()))
    assert expected > observed, "deaths shorten the observed times"
    numbers = section.numbers.set_index("quantity")["value"]
    assert numbers["followup.reverse_km_median"] == pytest.approx(expected)
    assert numbers["followup.median"] == pytest.approx(observed)
    assert f"was {expected:.4g} months" in section.text
    assert "reverse Kaplan–Meier" in section.text and "deaths included" in section.text

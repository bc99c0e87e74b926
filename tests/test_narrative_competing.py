"""The Results words give the competing-risk reading where it differs materially.

Hand-made cohort of 40: 20 die early (days 10–48) without chronic GVHD, 10 develop it on days
200–290, 10 are alive without it at day 700. By 12 months, Aalen–Johansen counts the early
deaths as competing events: 10 / 40 = 25.00%. One minus Kaplan–Meier censors them, leaving 20
at risk when the cases start: 10 / 20 = 50.00%. The gap, 25.00 points, must be said.
"""

import pandas as pd
import pytest

from bridge_hsct.paper import narrative
from bridge_hsct.render.disclosure import NO_SUPPRESSION


def cohort(late_deaths: bool = False) -> pd.DataFrame:
    death_days = [700 + 10 * i for i in range(20)] if late_deaths else \
        [10 + 2 * i for i in range(20)]
    rows = [dict(arm="A" if i % 2 else "B", followup_days=d, death=1, relapse=0,
                 relapse_days=None, cgvhd=0, cgvhd_days=None)
            for i, d in enumerate(death_days)]
    rows += [dict(arm="A" if i % 2 else "B", followup_days=700, death=0, relapse=0,
                  relapse_days=None, cgvhd=1, cgvhd_days=200 + 10 * i) for i in range(10)]
    rows += [dict(arm="A" if i % 2 else "B", followup_days=700, death=0, relapse=0,
                  relapse_days=None, cgvhd=0, cgvhd_days=None) for i in range(10)]
    return pd.DataFrame(rows)


def paragraph(data: pd.DataFrame):
    rec = narrative.Recorder("gvhd", NO_SUPPRESSION)
    text = narrative.endpoint_paragraph(rec, data, "cgvhd", "arm", ["A", "B"], 12.0, 0.05)
    return text, pd.DataFrame(rec.rows)


def test_a_material_gap_between_the_methods_is_said_with_both_numbers():
    text, numbers = paragraph(cohort())
    assert "by 12 months was 50.00%" in text  # the paper's 1 − Kaplan–Meier
    assert "(Aalen–Johansen), the incidence at 12 months was 25.00%" in text
    assert "25.00 percentage points lower" in text
    recorded = numbers.set_index("quantity")["value"]
    assert recorded["cgvhd_aalen_johansen.estimate"] == pytest.approx(0.25)
    assert recorded["cgvhd.competing_gap"] == pytest.approx(25.0)


def test_no_competing_sentence_when_the_methods_agree():
    # the same cases, but nobody dies before day 700: both methods give 10 / 40
    text, _ = paragraph(cohort(late_deaths=True))
    assert "by 12 months was 25.00%" in text
    assert "Aalen–Johansen" not in text

"""Figure captions read like a careful author's: what the panel shows, its estimates with
their intervals, the number still at risk where an estimate rests on few patients (counts
through the disclosure), sentences that follow the numbers rather than one template, the
paper's figure name first and every label from the data escaped."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from bridge_hsct.book.build import DEFAULT_DATA
from bridge_hsct.cohort.endpoints import ENDPOINTS, derive, known_status
from bridge_hsct.paper.gvhd import figure4
from bridge_hsct.paper.narrative import FEW_AT_RISK
from bridge_hsct.paper.panels import GROUPS, PanelEngine, figure_panel
from bridge_hsct.paper.subgroups import FIGURE1, FIGURE2, FIGURE3
from bridge_hsct.paper.table3 import engraftment_figure
from bridge_hsct.render.disclosure import NO_SUPPRESSION, Disclosure
from bridge_hsct.stats.survival import months_to_days, numbers_at_risk

GROUP_ORDER = ["CAR-T", "Blinatumomab"]
LANDMARK = 24.0


@pytest.fixture(scope="module")
def data():
    return pd.read_csv(DEFAULT_DATA)


@pytest.fixture(scope="module")
def panels(data):
    engine = PanelEngine(data, "arm", GROUP_ORDER, LANDMARK, disclosure=NO_SUPPRESSION)
    return [engine.panel(spec) for spec in (*FIGURE1, *FIGURE2, *FIGURE3)] + [
        *figure4(data, "arm", GROUP_ORDER, LANDMARK, disclosure=NO_SUPPRESSION).panels,
        *engraftment_figure(data, "arm", GROUP_ORDER, disclosure=NO_SUPPRESSION).panels]


def at_risk(data, endpoint, group, months):
    known = data[known_status(data, endpoint)]
    part = derive(known[known["arm"] == group], endpoint)
    return int(numbers_at_risk(part["time"], part["cause"] == 1,
                               [float(months_to_days(months))])[0])


def test_every_caption_leads_with_the_papers_name_and_gives_intervals(panels):
    for panel in panels:
        assert panel.drawn, panel.spec.label
        assert panel.caption.startswith(f"**{panel.spec.label}.** "), panel.caption
        assert re.search(r"\d+\.\d\d–\d+\.\d\d", panel.caption), panel.caption


def test_an_estimate_on_few_patients_at_risk_says_how_many(data, panels):
    checked = 0
    for panel in panels:
        if panel.spec.by != GROUPS:
            continue
        months = float(panel.summary.iloc[0]["landmark_months"])
        for group in GROUP_ORDER:
            k = at_risk(data, panel.spec.endpoint, group, months)
            assert panel.at_risk[group] == k
            said = f"{k} patient{'' if k == 1 else 's'} still at risk"
            if k < FEW_AT_RISK:
                checked += 1
                # said inside the bracket of the group's own estimate
                name = re.escape(group.replace("-", "\\-"))
                own = re.search(rf"{name} (?:\(n = \d+\) )?\d+\.\d\d% \([^)]*\)",
                                panel.caption)
                assert own and said in own.group(0), (panel.spec.label, group, k)
            else:
                assert said not in panel.caption
    assert checked >= 5  # the blinatumomab group (9 patients) rests on few at every landmark


def test_the_at_risk_count_passes_the_disclosure(data):
    spec = figure_panel("1", "C", "os", GROUPS)
    caption = PanelEngine(data, "arm", GROUP_ORDER, LANDMARK,
                          disclosure=Disclosure(5)).panel(spec).caption
    assert "< 5 patients still at risk" in caption
    assert not re.search(r"\b[1-4] patients? still at risk", caption)


def masked(caption: str, panel) -> str:
    """The caption with its numbers, panel name, endpoint, split and groups taken out."""
    text = caption.replace(panel.spec.label, "L").replace("\\", "")
    names = [ENDPOINTS[panel.spec.endpoint].label, panel.by_label,
             *map(str, panel.summary["group"])]
    for name in sorted(names, key=len, reverse=True):
        text = re.sub(re.escape(name), "X", text, flags=re.IGNORECASE)
    return re.sub(r"\d+(\.\d+)?", "#", text)


def test_captions_follow_the_numbers_not_one_template(panels):
    by_group = [p for p in panels if p.spec.by is not None]
    shapes = {masked(p.caption, p) for p in by_group}
    # a significant difference, a non-significant one, a group resting on few patients or
    # none: each reads differently
    assert len(shapes) >= 6, shapes
    figure1 = {masked(p.caption, p) for p in panels[:7] if p.spec.by is not None}
    assert len(figure1) >= 3
    whole = [p for p in panels if p.spec.by is None]
    assert any("the median was not reached" in p.caption for p in whole)
    assert any(re.search(r"the median was \d", p.caption) for p in whole)


def test_a_significant_test_and_a_null_one_are_worded_apart(panels):
    by_label = {p.spec.label: p.caption for p in panels}
    assert "statistically significant (log-rank test, P = 0.044)" in by_label["Figure 1E"]
    assert "did not differ significantly (log-rank test, P = 0.866)" in by_label["Figure 1C"]
    assert "Both tests found the curves different" in by_label["Figure 4G"]
    assert "Neither test found" in by_label["Figure 4D"]
    assert "no case observed" in by_label["Figure 4I"]
    assert "0.00–0.00" not in by_label["Figure 4I"]


def test_caption_labels_from_the_data_stay_escaped(data):
    hostile = data.assign(arm=data["arm"].map({"CAR-T": "*a* [b](c)", "Blinatumomab": "$x$"}))
    spec = figure_panel("1", "C", "os", GROUPS)
    caption = PanelEngine(hostile, "arm", ["*a* [b](c)", "$x$"], LANDMARK,
                          disclosure=NO_SUPPRESSION).panel(spec).caption
    assert r"\*a\* \[b\]\(c\)" in caption and r"\$x\$" in caption
    assert "*a*" not in caption.replace(r"\*a\*", "")

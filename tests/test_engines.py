"""The two output engines and the table result type, on small frames (no build).

* The panel engine: a new panel (relapse incidence) is one spec; its estimates are those of
  :func:`endpoint_summary`, it is drawn and saved under its own stem, written with its own
  label and anchor, and read at its own fixed landmark when the spec names one.
* The by-group table engine: a new table is a list of row specs; counts, percentages,
  medians, P values, sections and left-out lines come from the rows.
* :class:`bridge_hsct.render.tables.Table`: renders (or says why it cannot) and saves.
"""

from __future__ import annotations

import pandas as pd
import pytest
from IPython.display import Markdown

from bridge_hsct.paper.group_table import Row, TableSpec, group_table
from bridge_hsct.paper.outcomes import COMPETING_METHOD, PAPER_METHOD, endpoint_summary
from bridge_hsct.paper.panels import (
    AGE_GROUP,
    GROUPS,
    IncidenceWords,
    PanelEngine,
    PanelSpec,
    figure_panel,
)
from bridge_hsct.render.disclosure import NO_SUPPRESSION
from bridge_hsct.render.tables import Table
from bridge_hsct.stats import group_tests
from conftest import small_cohort

GROUP_ORDER = ["Alpha", "Beta"]


@pytest.fixture
def engine(tmp_path):
    return PanelEngine(small_cohort(), "arm", GROUP_ORDER, landmark_months=12.0, alpha=0.1,
                       output_dir=tmp_path, disclosure=NO_SUPPRESSION)


# ---------------------------------------------------------------------------------------------
# Panels
# ---------------------------------------------------------------------------------------------
def test_a_relapse_panel_is_one_spec(engine, tmp_path):
    relapse = PanelSpec("relapse", GROUPS, letter="A", label="Relapse figure A",
                        anchor="relapse-a", stem="relapse_by_group",
                        method=COMPETING_METHOD)
    panel = engine.panel(relapse)
    assert panel.drawn
    expected = endpoint_summary(small_cohort(), "relapse", "arm", GROUP_ORDER, 12.0,
                                COMPETING_METHOD, 0.1)
    pd.testing.assert_frame_equal(panel.summary, expected)
    assert {p.name for p in tmp_path.iterdir()} == {"relapse_by_group.png",
                                                   "relapse_by_group.svg"}
    markdown = panel.markdown()
    assert markdown.startswith("```{figure} ") and ":name: relapse-a" in markdown
    assert "**Relapse figure A.** Relapse by bridging therapy: " in markdown
    assert "Aalen–Johansen" in markdown and "90% pointwise" in markdown
    assert "(Gray's test, P = " in markdown
    assert panel.title == "A  Relapse, competing risks, by bridging therapy"


def test_both_methods_and_a_fixed_landmark_come_from_the_spec(engine):
    spec = figure_panel("9", "B", "agvhd_2_4", AGE_GROUP, both_methods=True,
                        landmark_months=1.0, by_label="patient age",
                        words=IncidenceWords(competing="relapse or death"))
    panel = engine.panel(spec)
    assert set(panel.summaries) == {PAPER_METHOD, COMPETING_METHOD}
    for summary in panel.summaries.values():
        assert (summary["landmark_months"] == 1.0).all()  # not the engine's 12
        assert list(summary["group"]) == ["whole", "≤ 40 years", "> 40 years"]
    assert (panel.spec.label, panel.spec.anchor, panel.spec.stem) == (
        "Figure 9B", "figure-9b", "figure9b")
    assert panel.caption.startswith("**Figure 9B.** Cumulative incidence of grade II–IV acute "
                                     "GVHD by patient age, drawn by the paper's method")
    assert "Download Figure 9B:" in panel.markdown()
    table = engine.figure([spec]).methods_table()
    assert list(table.display["Panel"])[1:] == ["≤ 40 years", "> 40 years"]
    assert "Aalen–Johansen, % (90% CI)" in table.display.columns
    assert set(table.numbers["method"]) == {PAPER_METHOD, COMPETING_METHOD}


def test_a_panel_the_data_cannot_support_is_skipped_with_its_reason(engine, tmp_path):
    figure = engine.figure([figure_panel("9", "C", "cgvhd", GROUPS),
                            PanelSpec("os", "sex", "D", "Figure 9D", "figure-9d", "figure9d")])
    skipped, drawn = figure.panels
    assert not skipped.drawn and skipped.skipped == "the data have no column `cgvhd`"
    assert drawn.drawn
    assert figure.notes == ["Figure 9C not drawn: the data have no column `cgvhd`."]
    assert skipped.markdown().startswith("(figure-9c)=\n:::{note} Figure 9C is not drawn")
    assert not list(tmp_path.glob("figure9c.*"))


def test_a_figure_part_keeps_the_figure_order(engine):
    specs = [figure_panel("9", letter, "os", by) for letter, by in
             (("A", None), ("B", GROUPS), ("C", "sex"))]
    figure = PanelEngine(small_cohort(), "arm", GROUP_ORDER, 12.0,
                         disclosure=NO_SUPPRESSION).figure(specs)
    assert [p.spec.letter for p in figure.part("C", "A").panels] == ["A", "C"]


# ---------------------------------------------------------------------------------------------
# By-group tables
# ---------------------------------------------------------------------------------------------
def test_a_table_is_its_rows():
    data = small_cohort().assign(graft=[1, 0, 1, None, 1, 1])
    spec = TableSpec((
        Row("followup_days", "median", "Follow-up, days"),
        Row("graft", "binary", "Graft, n (%)", section="Section"),
        Row("sex", "levels"),
        Row("absent_column", "binary", "Never shown"),
    ), identity=("row", "level"))
    table = group_table(data, "arm", GROUP_ORDER, spec, disclosure=NO_SUPPRESSION)
    assert list(table.display["Characteristic"]) == [
        "Follow-up, days", "Section", "Graft, n (%)", "Unknown", "Sex, n (%)", "Male",
        "Female"]
    assert list(table.display["indent"]) == [0, 0, 1, 2, 0, 1, 1]
    assert table.omitted == ["absent_column"]
    assert "Not in the data, so left out: absent_column." in table.notes
    graft = table.numbers[table.numbers["row"] == "graft"].set_index("group")
    assert graft.loc["Alpha", ["count", "n"]].tolist() == [2, 3]
    assert graft.loc["Beta", ["count", "n"]].tolist() == [2, 2]  # one unknown
    expected = group_tests.compare_categories(data["graft"], data["arm"], [1, 0])
    assert graft["p_value"].iloc[0] == pytest.approx(expected.p_value)
    assert table.display.columns[1:3].tolist() == ["Whole cohort (n\u00a0=\u00a06)",
                                                   "Alpha (n\u00a0=\u00a03)"]


# ---------------------------------------------------------------------------------------------
# The table result type
# ---------------------------------------------------------------------------------------------
def test_a_table_saves_its_numbers_and_renders_its_notes(tmp_path):
    display = pd.DataFrame({"Characteristic": ["A"], "n": ["3"], "P value": ["0.50"],
                            "Test": ["Fisher"], "indent": [0]})
    table = Table(display, pd.DataFrame({"row": ["a"], "count": [3]}), ["Own note."],
                  disclosure=NO_SUPPRESSION)
    path = table.save(tmp_path, "example")
    assert path.read_text().splitlines() == ["row,count", "a,3"]
    assert (tmp_path / "example.xlsx").is_file()
    html = table.render("Title", notes=["Extra note."], table_id="t").as_raw_html()
    assert html.index("Own note.") < html.index("Extra note.")
    empty = Table(display.iloc[:0], pd.DataFrame(), ["Nothing in the data."],
                  disclosure=NO_SUPPRESSION)
    shown = empty.render("Empty table")
    assert isinstance(shown, Markdown)
    assert "Empty table: left out" in shown.data and "Nothing in the data." in shown.data


def test_a_weighted_panel_is_one_spec_and_unit_weights_change_no_estimate(tmp_path):
    data = small_cohort().assign(w=1.0)
    engine = PanelEngine(data, "arm", GROUP_ORDER, landmark_months=12.0, alpha=0.1,
                         output_dir=tmp_path, disclosure=NO_SUPPRESSION)
    plain = engine.panel(PanelSpec("os", None, "A", "Figure 9A", "figure-9a", "figure9a"))
    weighted = engine.panel(PanelSpec("os", None, "B", "Figure 9B", "figure-9b", "figure9b",
                                      weights="w"))
    assert weighted.drawn and weighted.weighted
    assert weighted.summary["estimate"].to_numpy() == pytest.approx(
        plain.summary["estimate"].to_numpy())
    assert weighted.summary["weighted_n"].iloc[0] == len(data)
    assert weighted.summary["lower"].isna().all(), "no interval for a weighted estimate"
    assert weighted.caption.startswith("**Figure 9B.** Overall survival of all 6 patients, "
                                     "weighted, with ")
    assert "median" not in weighted.caption and "median" in plain.caption
    assert "weighted Kaplan–Meier, each patient weighted by the case weights of column " \
        "`w`" in weighted.caption
    assert {p.name for p in tmp_path.iterdir()} >= {"figure9b.png", "figure9b.svg"}

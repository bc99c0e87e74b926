"""Tables set as a journal sets them, and figure panels named as the paper names them.

Headers whose ``(n = 36)`` cannot break, one number of decimals per line of medians, the
paper's Genetics header and an abbreviations footnote in Table 1, one P value per panel in
the landmark table of Figure 4, Cox notes that name why a hazard ratio is missing, an Excel
file laid out as the table shown, Figure 4 captions led by "Figure 4A" ...
"""

from __future__ import annotations

import io
import re

import openpyxl
import pandas as pd
import pytest

from bridge_hsct.book.build import DEFAULT_DATA
from bridge_hsct.cohort.validate import load_cohort
from bridge_hsct.paper.cox_table import univariate_cox_table
from bridge_hsct.paper.gvhd import figure4
from bridge_hsct.paper.table1 import GENETICS, baseline_table
from bridge_hsct.render.disclosure import NO_SUPPRESSION
from bridge_hsct.render.formatting import (
    NBSP,
    format_median_range,
    group_header,
    range_decimals,
)
from bridge_hsct.render.tables import NUMBERS_SHEET, SHOWN_SHEET, Table, abbreviations_note

GROUPS = ["Blinatumomab", "CAR-T"]


@pytest.fixture(scope="module")
def cohort() -> pd.DataFrame:
    loaded = load_cohort(DEFAULT_DATA)
    return getattr(loaded, "data", loaded)


@pytest.fixture(scope="module")
def table1(cohort) -> Table:
    return baseline_table(cohort, "arm", GROUPS, disclosure=NO_SUPPRESSION)


def test_a_group_header_never_breaks_inside_its_size(table1):
    assert group_header("CAR-T", "27") == f"CAR-T (n{NBSP}={NBSP}27)"
    sized = [c for c in table1.display.columns if "(n" in c]
    assert len(sized) == 3
    for header in sized:
        inside = re.search(r"\(n.*\)", header).group(0)
        assert " " not in inside, header  # only non-breaking spaces
        assert re.fullmatch(rf"\(n{NBSP}={NBSP}\d+\)", inside), header


def test_a_line_of_medians_has_one_number_of_decimals(table1):
    assert range_decimals([27.0, 6.0, 58.0]) == 0
    assert range_decimals([27.5, 6.0, 58.0]) == 1
    assert range_decimals([16.82, 7.294, 62.21]) == 2
    assert format_median_range(16.82, 7.294, 62.21) == "16.82 (7.29–62.21)"
    shown = table1.display.set_index("Characteristic")
    for label in [c for c in shown.index if "median (range)" in c]:
        decimals = set()
        for cell in shown.loc[label].iloc[:3]:
            decimals |= {len(n.split(".")[1]) if "." in n else 0
                         for n in re.findall(r"\d+(?:\.\d+)?", cell)}
        assert len(decimals) == 1, (label, shown.loc[label].tolist())


def test_table1_has_the_genetics_header_and_its_abbreviations(table1):
    rows = table1.display
    at = rows.index[rows["Characteristic"] == GENETICS]
    assert len(at) == 1 and rows.loc[at[0], "indent"] == 0
    genetics = rows.loc[at[0] + 1:at[0] + 3]
    assert genetics["indent"].eq(1).all()
    assert "Ph-positive" in genetics["Characteristic"].tolist()[0]
    [note] = [n for n in table1.notes if n.startswith("Abbreviations: ")]
    for short in ("HID", "MSD", "MUD", "TBI", "PB", "BM", "HCT-CI"):
        assert f"{short}, " in note
    assert "MTX" not in note  # shown only when the table uses it


def test_an_abbreviation_is_listed_only_when_a_whole_word_of_the_table():
    frame = pd.DataFrame({"Characteristic": ["PBS buffer", "Donor: MUD"]})
    note = abbreviations_note(frame, {"PB": "peripheral blood", "MUD": "matched unrelated"})
    assert note == "Abbreviations: MUD, matched unrelated."
    assert abbreviations_note(frame, {"PB": "peripheral blood"}) == ""


def test_the_excel_file_is_the_table_as_shown(table1, tmp_path):
    csv = table1.save(tmp_path, "table1")
    book = openpyxl.load_workbook(csv.with_suffix(".xlsx"))
    assert book.sheetnames == [SHOWN_SHEET, NUMBERS_SHEET]
    sheet = book[SHOWN_SHEET]
    header = [c.value for c in sheet[1]]
    shown = [c for c in table1.display.columns if c not in ("Test", "indent")]
    assert header == shown
    first = [sheet.cell(row=i, column=1).value for i in range(2, len(table1.display) + 2)]
    assert first == table1.display["Characteristic"].tolist()
    genetics = first.index(GENETICS) + 2
    assert sheet.cell(row=genetics, column=1).font.bold
    assert sheet.cell(row=genetics + 1, column=1).alignment.indent > 0
    below = [sheet.cell(row=i, column=1).value for i in range(len(first) + 2,
                                                               sheet.max_row + 1)]
    assert any(str(v).startswith("Abbreviations: ") for v in below if v)
    assert not any("_" in str(h) for h in header)  # no snake_case names
    assert pd.read_csv(csv).columns[0] == "variable"  # the CSV stays tidy


def test_figure4_landmark_table_gives_each_test_once_per_panel(cohort):
    figure = figure4(cohort, "arm", GROUPS, 24.0, disclosure=NO_SUPPRESSION)
    shown = figure.methods_table().display
    for column in ("Log-rank P", "Gray P"):
        assert shown.loc[shown["indent"] == 1, column].eq("").all()
        by_group = shown[(shown["indent"] == 0) & shown["Panel"].str.contains(" by ")]
        assert len(by_group) >= 3 and by_group[column].ne("").all()
    assert shown.loc[shown["indent"] == 0, "Panel"].str.startswith("Figure 4").all()


def test_figure4_captions_lead_with_the_papers_name(cohort, tmp_path):
    figure = figure4(cohort, "arm", GROUPS, 24.0, output_dir=tmp_path, disclosure=NO_SUPPRESSION)
    for panel in figure.drawn:
        assert panel.caption.startswith(f"**Figure 4{panel.spec.letter}.** ")
        assert f"Download Figure 4{panel.spec.letter}:" in panel.markdown()


def test_a_cox_note_names_the_level_without_events(cohort):
    table = univariate_cox_table(cohort, "nrm", "arm", GROUPS, disclosure=NO_SUPPRESSION)
    missing = table.display[table.display.iloc[:, 4].eq("not estimable")]
    assert len(missing)
    notes = " ".join(table.notes)
    for label in table.numbers.loc[table.numbers["reason"].str.startswith("a level has no"),
                                   "label"].unique():
        assert re.search(rf"{re.escape(label)} \(no event in [^)]+\)", notes), label
    levels = table.numbers[(table.numbers["row"] == "level") & table.numbers["hr"].isna()
                           & table.numbers["events"].gt(0)]
    if len(levels):  # a level with events, not estimable: the note says why
        assert "even those with events" in notes


def test_xlsx_without_a_shown_table_keeps_one_sheet(tmp_path):
    from bridge_hsct.render.tables import save_table

    path = save_table(pd.DataFrame({"a": [1]}), tmp_path, "plain", disclosure=NO_SUPPRESSION)
    book = openpyxl.load_workbook(io.BytesIO(path.with_suffix(".xlsx").read_bytes()))
    assert book.sheetnames == ["plain"]

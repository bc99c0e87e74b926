"""Table 3 and Supplementary Table 1: the paper's P values from its counts, counts and tests
against hand computation, and lines left out when their column is absent."""

import numpy as np
import pandas as pd
import pytest
from IPython.display import Markdown
from scipy import stats

from bridge_hsct.paper.table3 import (
    PAPER_TABLE3_COUNTS,
    TABLE3_ROWS,
    crs_icans_table,
    describe_engraftment,
    engraftment_figure,
    outcome_table,
    p_from_counts,
    paper_p_value_check,
    transplant_outcomes_table,
)
from bridge_hsct.render.disclosure import NO_SUPPRESSION
from conftest import small_cohort

# Table 3 of Cao et al. 2025 (blinatumomab n = 9, CAR-T n = 27): counts and printed P.
PAPER = {
    "agvhd_2_4": (3, 6, "0.660"), "agvhd_3_4": (2, 3, "0.581"), "cgvhd": (2, 4, "0.627"),
    "tma": (1, 3, "1.000"), "hemorrhagic_cystitis": (1, 9, "0.392"), "ptld": (1, 2, "1.000"),
    "cmv_reactivation": (4, 18, "0.267"), "ebv_reactivation": (8, 21, "0.652"),
    "hzv_hhv6_reactivation": (2, 3, "0.581"), "pulmonary_infection": (8, 14, "0.062"),
    "upper_respiratory_infection": (4, 13, "1.000"), "soft_tissue_infection": (4, 10, "0.712"),
    "gi_infection": (2, 7, "1.000"), "bloodstream_infection": (2, 6, "1.000"),
}
# Results text: CRS grade 1-2 P = 0.686 and grade 3 P = 0.558 (29 patients with CRS).
PAPER_CRS = {"crs_1_2": ((6, 20), "0.686"), "crs_3_plus": ((0, 3), "0.558")}


@pytest.mark.parametrize("row", PAPER)
def test_paper_table3_p_values_from_counts(row):
    blin, cart, printed = PAPER[row]
    assert f"{p_from_counts(blin, 9, cart, 27):.3f}" == printed


def test_module_holds_the_paper_counts_and_every_check_agrees():
    for row, (blin, cart, printed) in PAPER.items():
        assert PAPER_TABLE3_COUNTS[row][:2] == (blin, cart)
        assert PAPER_TABLE3_COUNTS[row][2] == pytest.approx(float(printed))
    check = paper_p_value_check()
    printed = check.dropna(subset=["published_p"])
    assert len(printed) == len(PAPER) and printed["agrees"].all()
    assert pd.isna(check.set_index("row").loc["urinary_tract_infection", "published_p"])


def test_check_flags_a_wrong_printed_value():
    wrong = dict(PAPER_TABLE3_COUNTS, cmv_reactivation=(4, 18, 0.300))
    check = paper_p_value_check(wrong).set_index("row")
    assert not check.loc["cmv_reactivation", "agrees"]


def cohort_with_counts(counts: dict, sizes=(9, 27)) -> pd.DataFrame:
    """A cohort with the given number of 1s per column in each arm."""
    arms = ["Blinatumomab"] * sizes[0] + ["CAR-T"] * sizes[1]
    data = pd.DataFrame({"arm": arms})
    for column, (a, b) in counts.items():
        data[column] = [1] * a + [0] * (sizes[0] - a) + [1] * b + [0] * (sizes[1] - b)
    return data


def test_outcome_table_reproduces_the_paper_from_patient_rows():
    data = cohort_with_counts({k: v[:2] for k, v in PAPER.items()})
    result = outcome_table(data, "arm", ["Blinatumomab", "CAR-T"],
                           [r for r in TABLE3_ROWS if r.name in PAPER], disclosure=NO_SUPPRESSION)
    numbers = result.numbers
    for row, (blin, cart, printed) in PAPER.items():
        lines = numbers[numbers["row"] == row].set_index("group")
        assert lines.loc["Blinatumomab", "count"] == blin
        assert lines.loc["CAR-T", "count"] == cart
        assert lines.loc["whole", "count"] == blin + cart and lines.loc["whole", "n"] == 36
        assert f"{lines['p_value'].iloc[0]:.3f}" == printed
    display = result.display.set_index("Characteristic")
    assert display.loc["CMV", "CAR-T (n\u00a0=\u00a027)"] == "18 (66.7%)"
    assert display.loc["Pulmonary", "P value"] == "0.062"


def test_crs_bands_reproduce_the_paper_p_values():
    grades = [0] * 3 + [1] * 4 + [2] * 2 + [0] * 4 + [1] * 12 + [2] * 8 + [3] * 3
    data = pd.DataFrame({"arm": ["Blinatumomab"] * 9 + ["CAR-T"] * 27, "crs_grade": grades,
                         "icans": [1] + [0] * 8 + [1] * 3 + [0] * 24})
    numbers = crs_icans_table(data, "arm", ["Blinatumomab", "CAR-T"],
                              disclosure=NO_SUPPRESSION).numbers
    for row, ((blin, cart), printed) in PAPER_CRS.items():
        lines = numbers[numbers["row"] == row].set_index("group")
        assert (lines.loc["Blinatumomab", "count"], lines.loc["CAR-T", "count"]) == (blin, cart)
        assert f"{lines['p_value'].iloc[0]:.3f}" == printed
    whole = numbers[(numbers["row"] == "crs_any") & (numbers["group"] == "whole")]
    assert whole["count"].iloc[0] == 29


def test_engraftment_times_median_range_and_mann_whitney():
    data = small_cohort().assign(
        neutrophil_engraftment=[1, 1, 1, 1, 0, 1],
        neutrophil_engraftment_days=[11, 14, 20, 12, None, 16])
    numbers = outcome_table(data, "arm", ["Alpha", "Beta"], TABLE3_ROWS,
                            disclosure=NO_SUPPRESSION).numbers
    lines = numbers[numbers["row"] == "neutrophil_engraftment_days"].set_index("group")
    assert lines.loc["Alpha", ["median", "min", "max", "n"]].tolist() == [14, 11, 20, 3]
    assert lines.loc["Beta", ["median", "min", "max", "n"]].tolist() == [14, 12, 16, 2]
    expected = stats.mannwhitneyu([11, 14, 20], [12, 16], alternative="two-sided").pvalue
    assert lines["p_value"].iloc[0] == pytest.approx(expected)


def test_absent_columns_are_left_out_with_a_note():
    data = small_cohort()  # no engraftment, complication, infection, CRS or ICANS column
    table3 = transplant_outcomes_table(data, "arm", ["Alpha", "Beta"], disclosure=NO_SUPPRESSION)
    assert set(table3.numbers["row"]) == {"agvhd_2_4", "agvhd_3_4"}
    assert "Not in the data, so left out" in table3.notes[0]
    assert "CMV reactivation" in table3.notes[0]
    crs = crs_icans_table(data, "arm", ["Alpha", "Beta"], disclosure=NO_SUPPRESSION)
    assert crs.display.empty and crs.notes
    shown = crs.render(title="Supplementary Table 1")
    assert isinstance(shown, Markdown) and "left out" in shown.data
    figure = engraftment_figure(data, "arm", ["Alpha", "Beta"], disclosure=NO_SUPPRESSION)
    assert figure.drawn == [] and len(figure.notes) == 2
    assert "neutrophil_engraftment" in figure.notes[0]


def test_a_column_of_only_missing_values_counts_as_absent():
    data = small_cohort().assign(tma=np.nan)
    table3 = transplant_outcomes_table(data, "arm", ["Alpha", "Beta"], disclosure=NO_SUPPRESSION)
    assert "tma" in table3.omitted


def test_blank_complications_are_an_unknown_line_left_out_of_the_test():
    data = cohort_with_counts({"cmv_reactivation": (4, 18), "tma": (1, 3)}).astype(
        {"cmv_reactivation": float})
    data.loc[[0, 1, 2, 30, 31], "cmv_reactivation"] = np.nan  # 3 unknown in one arm, 2 in the other
    table = outcome_table(data, "arm", ["Blinatumomab", "CAR-T"], TABLE3_ROWS,
                          disclosure=NO_SUPPRESSION)
    labels = list(table.display["Characteristic"])
    unknown = table.display.iloc[labels.index("CMV") + 1]
    blank = data["cmv_reactivation"].isna()
    assert unknown["Characteristic"] == "Unknown"
    assert unknown.iloc[1:4].tolist() == [
        str(blank.sum()), str((blank & (data["arm"] == "Blinatumomab")).sum()),
        str((blank & (data["arm"] == "CAR-T")).sum())]
    known = data.dropna(subset=["cmv_reactivation"])
    expected = stats.fisher_exact(pd.crosstab(known["cmv_reactivation"], known["arm"])).pvalue
    cmv = table.numbers[table.numbers["row"] == "cmv_reactivation"].set_index("group")
    assert cmv["p_value"].iloc[0] == pytest.approx(expected)
    assert cmv.loc["CAR-T", "n"] == (known["arm"] == "CAR-T").sum()
    assert labels[labels.index("Thrombotic microangiopathy (TMA), n (%)") + 1] != "Unknown"


def test_a_blank_engraftment_day_is_not_called_unknown():
    data = small_cohort().assign(neutrophil_engraftment=[1, 1, 1, 1, 0, 1],
                                 neutrophil_engraftment_days=[11, 14, 20, 12, None, 16])
    display = outcome_table(data, "arm", ["Alpha", "Beta"], TABLE3_ROWS,
                            disclosure=NO_SUPPRESSION).display
    labels = list(display["Characteristic"])
    line = display.iloc[labels.index(TABLE3_ROWS[0].label) + 1]
    assert line["Characteristic"] == "No day (not engrafted, or day unknown)"
    assert line.iloc[1:4].tolist() == ["1", "0", "1"]


def test_engraftment_sentence_without_any_table3_column():
    data = small_cohort().drop(columns=["agvhd_2_4", "agvhd_2_4_days", "agvhd_3_4",
                                        "agvhd_3_4_days"])
    table3 = transplant_outcomes_table(data, "arm", ["Alpha", "Beta"], disclosure=NO_SUPPRESSION)
    assert table3.display.empty
    assert describe_engraftment(table3) == "The data have no engraftment columns."

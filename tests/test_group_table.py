"""The by-group table engine with blank cells: an "Unknown" line counted from the raw frame,
percentages of the known patients, and tests on the known patients only (against scipy)."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from bridge_hsct.paper.group_table import UNKNOWN_NOTE, Row, TableSpec, group_table
from bridge_hsct.render.disclosure import NO_SUPPRESSION, Disclosure
from bridge_hsct.render.tables import Table, download_markdown

GROUPS = ["Alpha", "Beta"]


def cohort_with_blanks(n: int = 120, seed: int = 11, groups=GROUPS) -> pd.DataFrame:
    """A cohort whose characteristics are blank for some patients, more often in one group
    (so that counting a blank as a value would move the tests)."""
    rng = np.random.default_rng(seed)
    data = pd.DataFrame({
        "arm": rng.choice(groups, n),
        "age_years": rng.normal(40, 15, n).round().clip(1, 80),
        "sex": rng.choice(["M", "F"], n),
        "donor_type": rng.choice(["HID", "MSD", "MUD"], n),
        "abo_compatibility": rng.choice(["matched", "minor", "major"], n, p=[.5, .3, .2]),
        "ph_positive": rng.integers(0, 2, n).astype(float),
        "hct_ci": rng.integers(0, 4, n).astype(float),
    })
    blank_odds = np.where(data["arm"] == groups[-1], 0.3, 0.05)
    for column in ["age_years", "sex", "donor_type", "abo_compatibility", "ph_positive",
                   "hct_ci"]:
        data.loc[rng.random(n) < blank_odds, column] = np.nan
    return data


SPEC = TableSpec((
    Row("age_years", "median", "Age, years, median (range)"),
    Row("age_years", "over", "Age group, years, n (%)", threshold=40),
    Row("sex", "levels"),
    Row("donor_type", "levels"),
    Row("abo_compatibility", "each_level"),
    Row("ph_positive", "binary", "Ph-positive", section="Cytogenetics"),
    Row("hct_ci", "levels"),
), identity=("variable", "level"))


def unknown_line_after(display: pd.DataFrame, label: str) -> pd.Series:
    """The first "Unknown" line after the line called `label`."""
    labels = list(display["Characteristic"])
    start = labels.index(label)
    return display.iloc[start + labels[start:].index("Unknown")]


@pytest.mark.parametrize(("variable", "label"), [
    ("age_years", "Age, years, median (range)"), ("age_years", "Age group, years, n (%)"),
    ("sex", "Sex, n (%)"), ("donor_type", "Donor type, n (%)"),
    ("abo_compatibility", "ABO compatibility, n (%)"), ("ph_positive", "Ph-positive"),
    ("hct_ci", "HCT-CI, n (%)"),
])
def test_unknown_line_counts_the_blank_cells_of_each_group(variable, label):
    data = cohort_with_blanks()
    table = group_table(data, "arm", GROUPS, SPEC, disclosure=NO_SUPPRESSION)
    line = unknown_line_after(table.display, label)
    blank = data[variable].isna()
    assert line.iloc[1] == str(blank.sum())
    for position, group in enumerate(GROUPS, start=2):
        assert line.iloc[position] == str((blank & (data["arm"] == group)).sum())
    assert line["P value"] == "" and line["Test"] == ""
    records = table.numbers[table.numbers["variable"] == variable]
    for group, part in records.groupby("group"):
        in_group = blank if group == "whole" else blank & (data["arm"] == group)
        assert set(part["n_unknown"]) == {in_group.sum()}
    assert UNKNOWN_NOTE in table.notes


def test_unknown_line_sits_one_step_under_its_line():
    table = group_table(cohort_with_blanks(), "arm", GROUPS, SPEC, disclosure=NO_SUPPRESSION)
    display = table.display.reset_index(drop=True)
    labels = list(display["Characteristic"])
    ph = labels.index("Ph-positive")
    assert display.loc[ph, "indent"] == 1 and labels[ph + 1] == "Unknown"
    assert display.loc[ph + 1, "indent"] == 2
    age = labels.index("Age, years, median (range)")
    assert display.loc[age + 1, "indent"] == 1
    html = table.render("T", table_id="t").as_raw_html()
    assert "gt_indent_4" in html  # the Unknown line under an indented line


def test_percentages_are_of_the_patients_with_a_known_value():
    data = cohort_with_blanks()
    numbers = group_table(data, "arm", GROUPS, SPEC, disclosure=NO_SUPPRESSION).numbers
    beta = data[data["arm"] == "Beta"]
    known = beta["sex"].dropna()
    record = numbers.query("variable == 'sex' and level == 'Female' and group == 'Beta'")
    assert record["n"].item() == len(known)
    assert record["percent"].item() == pytest.approx(100 * (known == "F").mean())
    assert record["n_unknown"].item() == beta["sex"].isna().sum()


def known_crosstab(data: pd.DataFrame, column: str) -> np.ndarray:
    known = data.dropna(subset=[column])
    return pd.crosstab(known[column], known["arm"]).to_numpy()


def p_of(table: Table, variable: str, level: str = "") -> float:
    numbers = table.numbers
    rows = numbers[(numbers["variable"] == variable)]
    if level:
        rows = rows[rows["level"] == level]
    return rows["p_value"].iloc[0]


def test_two_level_and_binary_rows_test_the_known_patients_with_fisher():
    data = cohort_with_blanks()
    table = group_table(data, "arm", GROUPS, SPEC, disclosure=NO_SUPPRESSION)
    for variable in ("sex", "ph_positive"):
        expected = stats.fisher_exact(known_crosstab(data, variable)).pvalue
        assert p_of(table, variable) == pytest.approx(expected)


def test_unordered_levels_test_the_known_patients_with_chi_square():
    data = cohort_with_blanks()
    expected = stats.chi2_contingency(known_crosstab(data, "donor_type"),
                                      correction=False).pvalue
    table = group_table(data, "arm", GROUPS, SPEC, disclosure=NO_SUPPRESSION)
    assert p_of(table, "donor_type") == pytest.approx(expected)


def test_each_level_is_tested_against_the_other_known_levels():
    data = cohort_with_blanks()
    table = group_table(data, "arm", GROUPS, SPEC, disclosure=NO_SUPPRESSION)
    known = data.dropna(subset=["abo_compatibility"])
    for level, label in (("matched", "Matched"), ("minor", "Minor mismatched"),
                         ("major", "Major mismatched")):
        counts = pd.crosstab(known["abo_compatibility"] == level, known["arm"]).to_numpy()
        expected = stats.fisher_exact(counts).pvalue
        assert p_of(table, "abo_compatibility", label) == pytest.approx(expected)
        # the same test with the unknowns counted as "another level" differs: the check
        # above can tell the two apart
        as_other = pd.crosstab(data["abo_compatibility"] == level, data["arm"]).to_numpy()
        assert stats.fisher_exact(as_other).pvalue != pytest.approx(expected)


def test_median_rows_test_the_known_values_with_mann_whitney_and_kruskal():
    data = cohort_with_blanks()
    known = data.dropna(subset=["age_years"])
    samples = [known.loc[known["arm"] == g, "age_years"] for g in GROUPS]
    expected = stats.mannwhitneyu(*samples, alternative="two-sided").pvalue
    numbers = group_table(data, "arm", GROUPS, SPEC, disclosure=NO_SUPPRESSION).numbers
    assert numbers.query("variable == 'age_years' and level == ''")["p_value"].iloc[0] == \
        pytest.approx(expected)
    three = ["Alpha", "Beta", "Gamma"]
    data = cohort_with_blanks(seed=5, groups=three)
    known = data.dropna(subset=["age_years"])
    expected = stats.kruskal(*[known.loc[known["arm"] == g, "age_years"] for g in three]).pvalue
    numbers = group_table(data, "arm", three, SPEC, disclosure=NO_SUPPRESSION).numbers
    assert numbers.query("variable == 'age_years' and level == ''")["p_value"].iloc[0] == \
        pytest.approx(expected)


def test_three_groups_binary_row_is_chi_square_on_the_known_patients():
    three = ["Alpha", "Beta", "Gamma"]
    data = cohort_with_blanks(seed=5, groups=three)
    expected = stats.chi2_contingency(known_crosstab(data, "ph_positive"),
                                      correction=False).pvalue
    table = group_table(data, "arm", three, SPEC, disclosure=NO_SUPPRESSION)
    assert p_of(table, "ph_positive") == pytest.approx(expected)


def test_no_unknown_line_and_no_note_without_blanks():
    data = cohort_with_blanks().dropna()
    table = group_table(data, "arm", GROUPS, SPEC, disclosure=NO_SUPPRESSION)
    assert "Unknown" not in set(table.display["Characteristic"])
    assert UNKNOWN_NOTE not in table.notes
    assert (table.numbers["n_unknown"] == 0).all()


def test_small_unknown_counts_are_suppressed_on_the_page_and_in_the_download(tmp_path):
    data = cohort_with_blanks().dropna().reset_index(drop=True)
    data.loc[[0, 1], "sex"] = np.nan  # two unknowns
    table = group_table(data, "arm", GROUPS, SPEC, disclosure=Disclosure(5))
    line = unknown_line_after(table.display, "Sex, n (%)")
    path = table.save(tmp_path, "table")
    blank = data["sex"].isna()
    expected = [blank.sum()] + [(blank & (data["arm"] == g)).sum() for g in GROUPS]
    assert line.iloc[1:4].tolist() == ["< 5" if 0 < k < 5 else str(k) for k in expected]
    written = pd.read_csv(path, dtype=str)
    sex = written[(written["variable"] == "sex") & (written["group"] == "whole")]
    assert set(sex["n_unknown"]) == {"< 5"}


def test_a_table_without_rows_writes_no_file_and_says_which_columns_it_needs(tmp_path):
    data = pd.DataFrame({"arm": ["Alpha", "Beta"] * 3})
    table = group_table(data, "arm", GROUPS, SPEC, disclosure=NO_SUPPRESSION)
    (tmp_path / "table.csv").write_text("stale")  # from an earlier run
    (tmp_path / "table.xlsx").write_text("stale")
    assert table.save(tmp_path, "table") is None
    assert list(tmp_path.iterdir()) == []
    sentence = table.download(None, "Table 1").data
    assert "{download}" not in sentence
    for column in ("age_years", "sex", "donor_type", "abo_compatibility", "hct_ci"):
        assert f"`{column}`" in sentence


def test_a_saved_table_links_both_files(tmp_path):
    table = group_table(cohort_with_blanks(), "arm", GROUPS, SPEC, disclosure=NO_SUPPRESSION)
    path = table.save(tmp_path / "outputs", "table1")
    links = download_markdown(path, "Table 1", "one row per level").data
    for name in ("table1.csv", "table1.xlsx"):
        assert (tmp_path / "outputs" / name).stat().st_size > 100
        assert f"<{(tmp_path / 'outputs' / name).as_posix()}>" in links

"""Every bad input is rejected with the file, column, row, value and rule."""

import pandas as pd
import pytest

from bridge_hsct.book.cli import main
from bridge_hsct.cohort.validate import CohortError, load_cohort
from conftest import small_cohort


def problems_of(path, **kwargs):
    with pytest.raises(CohortError) as caught:
        load_cohort(path, **kwargs)
    return caught.value.problems


def test_valid_file_is_typed(cohort_csv):
    data = load_cohort(cohort_csv)
    assert len(data) == 6 and data["followup_days"].dtype == float


def test_missing_required_column_is_named(write_csv):
    path = write_csv(small_cohort().drop(columns=["followup_days"]))
    [problem] = problems_of(path)
    assert problem.column == "followup_days" and "missing" in problem.rule
    assert problem.row is None


def test_every_problem_is_reported_at_once_with_its_row(write_csv):
    bad = small_cohort().astype({"followup_days": object})
    bad.loc[1, "age_years"] = -3          # CSV row 3
    bad.loc[2, "sex"] = "X"               # CSV row 4
    bad.loc[3, "followup_days"] = "soon"  # CSV row 5
    bad.loc[4, "patient_id"] = "p1"       # duplicate of row 2 -> rows 2 and 6
    found = {(p.column, p.row) for p in problems_of(write_csv(bad))}
    assert found == {("age_years", 3), ("sex", 4), ("followup_days", 5),
                     ("patient_id", 2), ("patient_id", 6)}


def test_value_and_rule_are_in_the_message(write_csv):
    bad = small_cohort()
    bad.loc[2, "sex"] = "X"
    message = str(CohortError(problems_of(write_csv(bad))))
    assert "line 4" in message and "'sex'" in message and "'X'" in message
    assert "one of ['M', 'F']" in message


@pytest.mark.parametrize("change, column", [
    (lambda d: d.assign(relapse_days=d["relapse_days"].where(d.index != 1, 450)),
     "relapse_days"),                                    # relapse after death (day 400)
    (lambda d: d.assign(agvhd_2_4_days=d["agvhd_2_4_days"].where(d.index != 0, -5)),
     "agvhd_2_4_days"),                                  # GVHD before day 0
    (lambda d: d.assign(relapse_days=d["relapse_days"].where(d.index != 0, 30)),
     "relapse_days"),                                    # a relapse day without relapse
    (lambda d: d.assign(agvhd_3_4_days=d["agvhd_3_4_days"].where(d.index != 2, 20)),
     "agvhd_3_4"),                                       # grade III-IV before grade II-IV
])
def test_impossible_histories(write_csv, change, column):
    problems = problems_of(write_csv(change(small_cohort())))
    assert [p.column for p in problems] == [column]


def test_empty_header_only_and_one_arm(tmp_path, write_csv):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert "empty" in problems_of(empty)[0].rule
    header = write_csv(small_cohort().iloc[:0], "header.csv")
    assert "no patient rows" in problems_of(header)[0].rule
    one_arm = write_csv(small_cohort().assign(arm="Alpha"), "one_arm.csv")
    [problem] = problems_of(one_arm)
    assert problem.column == "arm" and "two groups" in problem.rule


def test_non_utf8_file(tmp_path):
    path = tmp_path / "latin1.csv"
    small_cohort().assign(arm="Bêta").to_csv(path, index=False, encoding="latin-1")
    assert "UTF-8" in problems_of(path)[0].rule


def test_unknown_column_warns(write_csv):
    with pytest.warns(UserWarning, match="favourite_colour"):
        load_cohort(write_csv(small_cohort().assign(favourite_colour="red")))


def test_cli_validate_exit_codes(cohort_csv, write_csv, capsys):
    assert main(["validate", "--data", str(cohort_csv)]) == 0
    bad = write_csv(small_cohort().drop(columns=["followup_days"]))
    assert main(["validate", "--data", str(bad)]) == 2
    assert "column 'followup_days'" in capsys.readouterr().err


def test_template_has_every_schema_column(tmp_path):
    from bridge_hsct.cohort.schema import VARIABLES
    path = tmp_path / "template.csv"
    assert main(["template", "--out", str(path)]) == 0
    assert list(pd.read_csv(path).columns) == [v.name for v in VARIABLES]


def test_group_with_one_patient(write_csv):
    frame = small_cohort()
    frame.loc[5, "arm"] = "Gamma"
    [problem] = problems_of(write_csv(frame))
    assert problem.column == "arm" and problem.value == "Gamma"
    assert "at least two patients" in problem.rule


@pytest.mark.parametrize("column", ["followup_days", "arm", "patient_id"])
def test_empty_required_cell(write_csv, column):
    frame = small_cohort().astype({column: object})
    frame.loc[2, column] = None
    problems = problems_of(write_csv(frame))
    assert (column, 4) in {(p.column, p.row) for p in problems}
    assert any("empty" in p.rule for p in problems if p.column == column)


def test_negative_time(write_csv):
    frame = small_cohort()
    frame.loc[0, "followup_days"] = -10
    problems = problems_of(write_csv(frame))
    assert ("followup_days", 2) in {(p.column, p.row) for p in problems}


def test_rows_are_file_lines_and_the_cohort_is_indexed_afresh(tmp_path):
    """read_table keeps each row's line (blank lines and quoted line breaks counted);
    the validated cohort has a plain 0, 1, ... index, as the chapters expect."""
    from bridge_hsct.cohort.validate import read_table

    lines = small_cohort().to_csv(index=False).splitlines()
    lines[2] = lines[2].replace("p2", '"p2 first line\nsecond line"', 1)
    path = tmp_path / "c.csv"
    path.write_text("\n".join([lines[0], "", *lines[1:3], "", "", *lines[3:]]) + "\n")
    assert list(read_table(path).index) == [3, 4, 8, 9, 10, 11]
    good = tmp_path / "good.csv"
    good.write_text("\n".join([lines[0], "", lines[1], *lines[3:]]) + "\n")
    assert list(load_cohort(good).index) == [0, 1, 2, 3, 4]


def test_only_id_group_and_follow_up_are_required(write_csv):
    """Every other column may be absent, the default group column `arm` included when
    another one is named."""
    minimal = small_cohort()[["patient_id", "arm", "followup_days"]].rename(
        columns={"arm": "centre"})
    data = load_cohort(write_csv(minimal), group_col="centre")
    assert list(data.columns) == ["patient_id", "centre", "followup_days"]
    [problem] = problems_of(write_csv(minimal, "no_arm.csv"))
    assert problem.column == "arm" and "group column is missing" in problem.rule


def test_a_blank_event_indicator_is_kept_unknown(write_csv):
    """A blank is unknown, never "no event": it stays missing for the endpoints to leave
    out, and an event whose day is blank is kept with its day unknown."""
    frame = small_cohort().astype({"relapse": object, "relapse_days": object})
    frame.loc[0, "relapse"] = None
    frame.loc[3, "relapse"] = 1  # relapsed, day not recorded
    data = load_cohort(write_csv(frame))
    assert data["relapse"].isna().tolist() == [True] + [False] * 5
    assert data.loc[3, "relapse"] == 1 and pd.isna(data.loc[3, "relapse_days"])


@pytest.mark.parametrize("column, word", [("arm", "NA"), ("arm", "None"), ("arm", "n/a"),
                                          ("patient_id", "NULL")])
def test_a_label_that_reads_as_missing_is_refused_not_dropped(write_csv, column, word):
    frame = small_cohort()
    frame.loc[3:5, "arm"] = "Beta"
    frame.loc[2, column] = word
    problems = problems_of(write_csv(frame))
    [problem] = [p for p in problems if p.column == column]
    assert problem.row == 4 and problem.value == word
    assert "reads as a missing value" in problem.rule
    assert "NA" in problem.rule and "None" in problem.rule  # the words are listed


def test_a_relational_rule_shows_both_values(write_csv):
    frame = small_cohort()
    frame.loc[1, "relapse_days"] = 450  # after death on day 400
    message = str(CohortError(problems_of(write_csv(frame))))
    assert "relapse_days = 450" in message and "followup_days = 400" in message


def test_a_problem_on_many_rows_is_one_line_per_column(write_csv):
    frame = pd.concat([small_cohort()] * 10, ignore_index=True)
    frame["patient_id"] = [f"p{i}" for i in range(len(frame))]
    frame["age_years"] = "old"
    frame.loc[7, "sex"] = "X"
    problems = problems_of(write_csv(frame))
    assert len(problems) == 61
    lines = str(CohortError(problems)).splitlines()
    assert lines[0] == "61 problems in the cohort data:"
    [ages] = [line for line in lines if "'age_years'" in line]
    assert "on 60 lines (2, 3, 4, 5, 6 and 55 more)" in ages and "'old'" in ages
    [sex] = [line for line in lines if "'sex'" in line]
    assert "line 9" in sex and "'X'" in sex
    assert len(lines) == 3


def test_zoster_hhv6_and_their_combined_column_must_agree(write_csv):
    data = small_cohort().assign(hzv_hhv6_reactivation=0, hzv_reactivation=0,
                                 hhv6_reactivation=0)
    data.loc[1, "hzv_reactivation"] = 1                              # CSV row 3
    data.loc[2, ["hzv_hhv6_reactivation", "hhv6_reactivation"]] = 1  # row 4: consistent
    data.loc[3, "hzv_hhv6_reactivation"] = 1                         # row 5: neither part
    found = {(p.column, p.row, p.rule) for p in problems_of(write_csv(data))}
    assert found == {
        ("hzv_reactivation", 3, "`hzv_reactivation` = 1 but `hzv_hhv6_reactivation` = 0"),
        ("hzv_hhv6_reactivation", 5, "`hzv_hhv6_reactivation` = 1 but "
         "`hzv_reactivation` = 0 and `hhv6_reactivation` = 0")}
    # a blank is unknown, not "no": it contradicts nothing
    data = data.astype({"hzv_hhv6_reactivation": float, "hhv6_reactivation": float})
    data.loc[1, "hzv_hhv6_reactivation"] = None
    data.loc[3, "hhv6_reactivation"] = None
    assert len(load_cohort(write_csv(data))) == len(data)


def test_conditioning_agents_must_match_its_kind(write_csv):
    data = small_cohort().assign(conditioning="chemo", conditioning_regimen="Bu/Cy")
    data.loc[0, ["conditioning", "conditioning_regimen"]] = ["TBI", "TBI/Cy"]
    data.loc[1, "conditioning_regimen"] = "Flu/Bu"
    data.loc[2, "conditioning_regimen"] = "TBI/Cy"  # CSV row 4, chemo
    data.loc[3, "conditioning"] = "TBI"             # CSV row 5, Bu/Cy
    found = {(p.column, p.row) for p in problems_of(write_csv(data))}
    assert found == {("conditioning_regimen", 4), ("conditioning_regimen", 5)}

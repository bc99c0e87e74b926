"""Real exports: semicolons and decimal commas, Excel, odd paths, calendar dates."""

import pandas as pd
import pytest

from bridge_hsct.cohort import validate as validate_module
from bridge_hsct.cohort.validate import CohortError, load_cohort
from conftest import small_cohort


def test_semicolon_and_decimal_comma(tmp_path):
    frame = small_cohort().assign(cd34_dose=[5.5, 4.25, 3.0, 7.1, 2.5, 6.0])
    path = tmp_path / "export.csv"
    frame.to_csv(path, sep=";", decimal=",", index=False)
    assert ";" in path.read_text().splitlines()[0]
    data = load_cohort(path)
    assert data["cd34_dose"].tolist() == [5.5, 4.25, 3.0, 7.1, 2.5, 6.0]


def test_byte_order_mark_and_excel(tmp_path):
    csv = tmp_path / "bom.csv"
    small_cohort().to_csv(csv, index=False, encoding="utf-8-sig")
    assert list(load_cohort(csv)["patient_id"]) == ["p1", "p2", "p3", "p4", "p5", "p6"]
    xlsx = tmp_path / "cohort.xlsx"
    small_cohort().to_excel(xlsx, index=False)
    assert load_cohort(xlsx)["followup_days"].tolist() == [900, 400, 120, 1500, 60, 700]


def test_path_with_spaces_and_non_ascii(tmp_path):
    folder = tmp_path / "données du centre"
    folder.mkdir()
    path = folder / "cohorte 2024 é.csv"
    small_cohort().to_csv(path, index=False)
    assert len(load_cohort(path)) == 6
    bad = folder / "cohorte mauvaise.csv"
    small_cohort().drop(columns=["followup_days"]).to_csv(bad, index=False)
    with pytest.raises(CohortError, match="cohorte mauvaise.csv"):
        load_cohort(bad)


def dated_cohort():
    return pd.DataFrame({
        "patient_id": ["a", "b", "c", "d"],
        "arm": ["X", "X", "Y", "Y"],
        "age_years": [30, 40, 50, 20],
        "sex": ["M", "F", "M", "F"],
        "disease_status": ["first_relapse"] * 4,
        "hsct_date": ["2020-01-01", "2020-03-01", "2021-01-01", "2022-06-30"],
        "last_contact_date": ["2024-01-01", "", "2023-01-01", "2024-06-30"],
        "death_date": ["", "2021-03-01", "", ""],
        "relapse_date": ["", "2020-12-01", "", "2024-05-01"],
        "agvhd_2_4_date": ["2020-02-01", "", "", ""],
    })


def test_dates_become_days_since_hsct(tmp_path):
    path = tmp_path / "dates.csv"
    dated_cohort().to_csv(path, index=False)
    data = load_cohort(path).set_index("patient_id")
    # a: 2020-01-01 -> 2024-01-01 is 1461 days (2020 is a leap year), alive
    assert data.loc["a", "followup_days"] == 1461 and data.loc["a", "death"] == 0
    # b: died 2021-03-01, 365 days after 2020-03-01 (no leap day between);
    # relapse 2020-12-01 = day 275
    assert data.loc["b", "followup_days"] == 365 and data.loc["b", "death"] == 1
    assert data.loc["b", "relapse"] == 1 and data.loc["b", "relapse_days"] == 275
    assert data.loc["a", "agvhd_2_4"] == 1 and data.loc["a", "agvhd_2_4_days"] == 31
    assert data.loc["c", "relapse"] == 0 and pd.isna(data.loc["c", "relapse_days"])


def test_cutoff_censors_later_events(tmp_path):
    path = tmp_path / "dates.csv"
    dated_cohort().to_csv(path, index=False)
    data = load_cohort(path, cutoff="2024-03-31").set_index("patient_id")
    # d relapsed after the cut-off: not counted; follow-up stops at the cut-off (640 days)
    assert data.loc["d", "relapse"] == 0 and data.loc["d", "followup_days"] == 640
    # a was last seen before the cut-off: unchanged
    assert data.loc["a", "followup_days"] == 1461


def test_bad_dates_are_reported(tmp_path):
    frame = dated_cohort()
    frame.loc[2, "last_contact_date"] = "31/12/2023"
    frame.loc[1, "relapse_date"] = "2021-06-01"   # after death on 2021-03-01
    path = tmp_path / "dates.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(CohortError) as caught:
        load_cohort(path)
    [problem] = caught.value.problems
    assert (problem.column, problem.row, problem.value) == ("last_contact_date", 4,
                                                            "31/12/2023")
    frame.loc[2, "last_contact_date"] = "2023-12-31"
    frame.to_csv(path, index=False)
    with pytest.raises(CohortError) as caught:
        load_cohort(path)
    [problem] = caught.value.problems
    assert problem.column == "relapse_days" and problem.row == 3


def test_cutoff_drops_the_severity_of_a_later_chronic_gvhd(tmp_path):
    frame = dated_cohort().assign(cgvhd_date=["", "", "", "2024-05-01"],
                                  cgvhd_severe=[0, 0, 0, 1])
    path = tmp_path / "dates.csv"
    frame.to_csv(path, index=False)
    before = load_cohort(path).set_index("patient_id")
    assert before.loc["d", "cgvhd"] == 1 and before.loc["d", "cgvhd_severe"] == 1
    after = load_cohort(path, cutoff="2024-03-31").set_index("patient_id")
    assert after.loc["d", "cgvhd"] == 0 and after.loc["d", "cgvhd_severe"] == 0


def test_a_validated_cohort_written_back_reads_back_equal(tmp_path):
    """The builder hands chapters the validated cohort re-written as CSV and records it as
    validated; that is only sound if reading that CSV gives the very same frame."""
    from test_other_centre import other_centre_cohort

    source = tmp_path / "dates.csv"
    other_centre_cohort(200).to_csv(source, index=False)
    cohort = load_cohort(source, "arm", cutoff="2023-12-31")
    staged = tmp_path / "cohort.csv"
    cohort.to_csv(staged, index=False, date_format="%Y-%m-%d")
    pd.testing.assert_frame_equal(load_cohort(staged, "arm"), cohort)


def test_a_remembered_cohort_is_returned_as_a_copy(tmp_path):
    path = tmp_path / "c.csv"
    small_cohort().to_csv(path, index=False)
    cohorts = validate_module.ValidatedCohorts()
    first = cohorts.load(path)
    first.loc[0, "arm"] = "changed by a chapter"
    again = cohorts.load(path)
    assert again.loc[0, "arm"] != "changed by a chapter"
    pd.testing.assert_frame_equal(again, load_cohort(path))


def test_a_cohort_the_build_wrote_is_not_refused_by_the_input_caps(tmp_path, monkeypatch):
    """The staged cohort (floats written as 2490.0) can outgrow the size cap of users'
    files; it was validated before it was written, and is served as such."""
    source = tmp_path / "c.csv"
    small_cohort().to_csv(source, index=False)
    cohort = load_cohort(source)
    staged = tmp_path / "staged.csv"
    cohort.to_csv(staged, index=False)
    cohorts = validate_module.ValidatedCohorts()
    cohorts.remember(staged, "arm", cohort)
    monkeypatch.setattr(validate_module, "MAX_BYTES", 10)
    pd.testing.assert_frame_equal(cohorts.load(staged), cohort)
    with pytest.raises(CohortError, match="more than"):  # a user's file of that size is not
        validate_module.ValidatedCohorts().load(staged)
    staged.write_text(staged.read_text() + "\n")  # changed since: validated afresh
    with pytest.raises(CohortError, match="more than"):
        cohorts.load(staged)

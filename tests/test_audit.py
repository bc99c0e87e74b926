"""The audit recomputes registry rows on a cohort; checked on a small cohort by hand."""

import math

import pandas as pd
import pytest

from bridge_hsct.book.chapter import open_chapter
from bridge_hsct.cohort.validate import validate_cohort
from bridge_hsct.paper.audit import (
    CONTRADICTED,
    COUNTS,
    DIFFERS,
    FITTED,
    NOT_COMPUTABLE,
    NOT_FITTED,
    REPRODUCED,
    Cohort,
    audit_html,
    audit_report,
    audit_score,
    audit_table,
    judgement,
    overall_score,
    score_sentence,
    with_reconstruction_notes,
)
from bridge_hsct.paper.published import load_published, printed_precision
from bridge_hsct.paper.synthetic.audit_notes import crs_split, reconstruction_notes
from bridge_hsct.paths import DEFAULT_DATA
from conftest import small_cohort


def registry(rows):
    columns = ["id", "source", "locator", "section", "quantity", "group", "statistic",
               "value", "method", "tolerance", "followed", "note", "printed"]
    frame = pd.DataFrame([dict(zip(columns, r, strict=True)) for r in rows])
    return frame


def row(id_, quantity, group, statistic, value, method=None, tolerance=0.0, followed=None,
        printed=""):
    return (id_, "table1", "", "baseline", quantity, group, statistic, value, method,
            tolerance, followed, "", printed)


@pytest.fixture
def cohort():
    return Cohort(validate_cohort(small_cohort()), "arm")


def test_counts_percentages_and_medians(cohort):
    # small cohort: Alpha = p1..p3 (M, F, M), Beta = p4..p6 (F, F, M); ages 30 45 12 58 27 40
    audit = audit_table(cohort, registry([
        row("n", "n_patients", "whole", "n", 6),
        row("m_alpha", "sex=M", "Alpha", "count", 2),
        row("m_pct", "sex=M", "whole", "percent", 50.0, tolerance=0.05),
        row("old", "age_years>40", "Beta", "count", 1),          # 58 only (40 is not > 40)
        row("age_med", "age_years", "whole", "median", 35.0),     # (30 + 40) / 2
        row("age_max", "age_years", "Alpha", "max", 44),          # wrong on purpose: 45
    ])).set_index("id")
    assert (audit.loc[["n", "m_alpha", "m_pct", "old", "age_med"], "status"]
            == REPRODUCED).all()
    assert audit.loc["age_max", "status"] == DIFFERS
    assert audit.loc["age_max", "difference"] == pytest.approx(1.0)


def test_p_values_and_survival(cohort):
    # sex by arm: [[2, 1], [1, 2]] -> Fisher two-sided P = 1.0
    # OS Alpha: deaths at 120 (p3) and 400 (p2) among 3; at 24 months (730.5 d) S = 1/3
    audit = audit_table(cohort, registry([
        row("p_sex", "sex", "Alpha vs Beta", "p_value", 1.0, "fisher", 0.0015),
        row("os_alpha", "os", "Alpha", "rate_2y", 100 / 3, "kaplan_meier", 0.01),
        row("os_whole", "os", "whole", "rate_2y", 50.0, "kaplan_meier", 0.01),
    ])).set_index("id")
    assert (audit["status"] == REPRODUCED).all(), audit[["recomputed", "status"]]


def test_contradictions_and_missing_data(cohort):
    audit = audit_table(cohort, registry([
        row("other_reading", "sex=M", "whole", "count", 4, followed="no"),
        row("no_column", "ph_positive", "whole", "count", 1),
        row("no_group", "sex=M", "CAR-T", "count", 14),
        row("hr", "agvhd_3_4", "age_years: >40 vs <=40", "hr", 32.5, "cox_multivariate"),
    ])).set_index("id")
    assert audit.loc["other_reading", "status"] == CONTRADICTED
    for key in ["no_column", "no_group", "hr"]:
        assert audit.loc[key, "status"] == NOT_COMPUTABLE
        assert math.isnan(audit.loc[key, "recomputed"]) and audit.loc[key, "note"]


def test_score_counts_only_checked_numbers(cohort):
    audit = audit_table(cohort, registry([
        row("a", "n_patients", "whole", "n", 6), row("b", "n_patients", "whole", "n", 7),
        row("c", "ph_positive", "whole", "count", 1),
    ]))
    score = audit_score(audit, by=None).iloc[0]
    assert (score["reproduced"], score["checked"], score["numbers"]) == (1, 2, 3)


def test_printed_precision():
    assert printed_precision("28.07") == pytest.approx(0.005)
    assert printed_precision("13") == pytest.approx(0.5)
    assert printed_precision("5.335") == pytest.approx(0.0005)
    assert printed_precision("17.60") == pytest.approx(0.005)  # not 0.05 as "17.6"
    assert printed_precision(17.6) == pytest.approx(0.05)       # a float has lost the zero


def test_a_number_is_judged_by_its_printed_precision(cohort):
    # ages 30 45 12 58 27 40: the median is 35; printed "35.0" allows ±0.05, "35.00" ±0.005
    audit = audit_table(cohort, registry([
        row("one", "age_years", "whole", "median", 35.04, printed="35.04"),
        row("two", "age_years", "whole", "median", 35.04, printed="35.0"),
        row("three", "age_years", "whole", "median", 35.006, printed="35.006"),
    ])).set_index("id")
    assert audit.loc["one", "status"] == DIFFERS
    assert audit.loc["two", "tolerance"] == pytest.approx(0.05)
    assert audit.loc["three", "status"] == DIFFERS
    assert audit.loc["one", "rule"] == "printed precision"


def test_a_p_value_far_off_is_not_reproduced(cohort):
    # sex by arm: [[2, 1], [1, 2]] -> Fisher P = 1.0 exactly
    off = registry([row("far", "sex", "Alpha vs Beta", "p_value", 0.9989, "fisher", 0.0005,
                        printed="0.9989"),
                    row("near", "sex", "Alpha vs Beta", "p_value", 1.0, "fisher", 0.0005,
                        printed="1.000")])
    audit = audit_table(cohort, off).set_index("id")
    assert audit.loc["far", "status"] == DIFFERS
    assert audit.loc["near", "status"] == REPRODUCED


def test_p_value_tolerances_follow_the_printed_string_and_the_method():
    Row = type("Row", (), {})

    def p_row(printed, method, tolerance):
        r = Row()
        r.statistic, r.value, r.printed, r.method, r.tolerance = (
            "p_value", float(printed), printed, method, tolerance)
        return r

    # an exact test or a t-test: the printed precision, whatever a looser registry says
    assert judgement(p_row("0.027", "t_test", 0.0005)) == (pytest.approx(0.0005),
                                                           "printed precision")
    tolerance, rule = judgement(p_row("0.862", "log_rank", 0.02586))
    assert tolerance == pytest.approx(0.02586) and "3%" in rule
    assert 0.0011 > judgement(p_row("0.027", "log_rank", 0.0008))[0]


def test_calendar_facts_are_checked_from_the_transplant_dates(cohort):
    data = cohort.data.assign(hsct_date=pd.to_datetime(
        ["2017-03-01", "2018-01-01", "2020-06-30", "2019-01-01", "2021-01-01", "2023-04-02"]))
    audit = audit_table(Cohort(data, "arm"), registry([
        row("start", "study_start", "whole", "date", 20170301),
        row("end", "study_end", "whole", "date", 20230331),
        row("cutoff", "data_cutoff", "whole", "date", 20300101),
    ])).set_index("id")
    assert audit.loc["start", "status"] == REPRODUCED       # first transplant on the start
    assert audit.loc["end", "status"] == DIFFERS            # one transplant two days late
    assert audit.loc["end", "difference"] == 2
    assert audit.loc["cutoff", "status"] == REPRODUCED


@pytest.fixture(scope="module")
def synthetic_audit():
    from bridge_hsct.cohort.validate import validate_cohort

    data = validate_cohort(pd.read_csv(DEFAULT_DATA))
    return audit_table(Cohort(data, "arm"), load_published()).set_index("id")


def test_donor_age_uses_fisher_on_the_split(synthetic_audit):
    for key in ["table1.donor_age_years.p_value", "results.donor_age_years.p_value"]:
        hit = synthetic_audit.loc[key]
        assert hit["status"] == REPRODUCED, hit
        assert abs(hit["recomputed"] - 0.111) <= 0.0005


def test_crs_rows_are_computed_from_the_crs_grade(synthetic_audit):
    crs = synthetic_audit.loc[["results.crs_grade_ge1.count.whole",
                               "results.crs_grade_1_2.p_value", "results.crs_grade_3.p_value"]]
    assert (crs["status"] == REPRODUCED).all(), crs[["recomputed", "note"]]
    assert crs["recomputed"].iloc[0] == 29


def test_the_registry_speaks_of_the_paper_alone():
    """What the synthetic cohort does with a number is not a fact of the paper: no
    registry note speaks of it (it is written in paper/synthetic/audit_notes.py)."""
    notes = load_published()["note"].fillna("")
    assert not notes.str.contains("synthetic|generator", case=False).any()


def test_reconstruction_notes_quote_the_cohort_s_own_counts():
    data = pd.DataFrame({"arm": ["A", "A", "A", "B", "B", "B"],
                         "crs_grade": [0, 1, 2, 2, 3, 3]})
    assert crs_split(data, "arm") == "grade 1-2: 2 A, 1 B; grade 3: 2 B"
    notes = reconstruction_notes(data, "arm")
    assert "(grade 1-2: 2 A, 1 B; grade 3: 2 B)" in notes["results.crs_grade_3.p_value"]
    assert "results.crs_grade_3.p_value" not in reconstruction_notes(data[["arm"]], "arm")


def test_reconstruction_notes_follow_the_registry_s_own():
    audit = pd.DataFrame({"id": ["a", "b", "c"], "note": ["paper says", "", "paper says"]})
    noted = with_reconstruction_notes(audit, {"a": "cohort does", "b": "cohort does"})
    assert noted["note"].tolist() == ["paper says; cohort does", "cohort does", "paper says"]


def test_the_reference_audit_says_how_the_synthetic_cohort_carries_crs(tmp_path):
    chapter = open_chapter(str(DEFAULT_DATA), output_dir=tmp_path / "audit")
    audit = audit_report(chapter).audit.set_index("id")
    split = crs_split(chapter.data, "arm")
    assert split.startswith("grade 1-2: ")
    for key in ["results.crs_grade_1_2.p_value", "results.crs_grade_ge1.count.whole"]:
        assert audit.loc[key, "note"].startswith(load_published().set_index("id").loc[
            key, "note"] + "; the synthetic cohort's per-arm CRS split (" + split)


def test_every_registry_row_is_computed_or_says_honestly_why_not(synthetic_audit):
    missing = synthetic_audit[synthetic_audit["status"] == NOT_COMPUTABLE]
    for key, hit in missing.iterrows():
        assert "data dictionary" in hit["note"], (key, hit["note"])
    # the facts printed only in the text have columns, and the synthetic cohort meets them
    text_facts = ["methods.gvhd_prophylaxis_mtx.count.whole",
                  "methods.gvhd_prophylaxis_pt_cy.count.whole",
                  "results.gvhd_prophylaxis.p_value", "results.hzv_reactivation.count.whole",
                  "results.hhv6_reactivation.count.whole",
                  "methods.conditioning_flu_bu.count.whole"]
    assert (synthetic_audit.loc[text_facts, "status"] == REPRODUCED).all()
    dates = synthetic_audit[synthetic_audit["statistic"] == "date"]
    assert (dates["status"] == REPRODUCED).all()


def test_no_p_value_passes_beyond_its_printed_precision_without_a_reason(synthetic_audit):
    passed = synthetic_audit[(synthetic_audit["statistic"] == "p_value")
                             & (synthetic_audit["status"] == REPRODUCED)]
    printed = load_published().set_index("id")["printed"]
    loose = passed[passed["difference"].abs()
                   > printed[passed.index].map(printed_precision) + 1e-9]
    assert len(loose) >= 5  # the log-rank P values of reconstructed survival
    assert loose["rule"].str.contains("reconstructed event times").all(), loose


def test_the_score_sentence_says_the_cohort_was_fitted_to_the_numbers():
    data = pd.read_csv(DEFAULT_DATA)
    overall = overall_score(data, "arm")
    sentence = score_sentence(overall)
    kinds = overall["kinds"]
    assert sum(k["checked"] for k in kinds.values()) == overall["checked"]
    unfitted, fitted, counts = (kinds[k] for k in (NOT_FITTED, FITTED, COUNTS))
    share = 100 * unfitted["reproduced"] / unfitted["checked"]
    # the headline is the one score that is not built in; no pooled score at all
    assert sentence.startswith(
        f"**Reproduction audit:** Of the {unfitted['checked']} published numbers that the "
        f"synthetic cohort was not fitted to, {unfitted['reproduced']} ({share:.1f}%) are "
        "reproduced")
    assert f"{fitted['reproduced']} of {fitted['checked']} numbers it was fitted to" in sentence
    assert f"{counts['reproduced']} of {counts['checked']} counts" in sentence
    assert f"{overall['reproduced']} of {overall['checked']}" not in sentence
    assert "generated to match" in sentence


def test_another_cohort_gets_a_comparison_without_verdicts(cohort_csv, tmp_path):
    chapter = open_chapter(str(cohort_csv), output_dir=tmp_path / "audit")
    rows = registry([
        row("a", "n_patients", "whole", "n", 6), row("b", "n_patients", "whole", "n", 7),
        row("c", "ph_positive", "whole", "count", 1),
        row("d", "age_years", "Alpha", "median", 40, followed="no"),
    ])
    report = audit_report(chapter, rows)
    assert not report.reference and not report.overall
    assert "36 patients" in report.introduction and "reproduced" not in report.summary
    assert "status" not in report.audit and "tolerance" not in report.audit
    assert list(report.audit["recomputed"][:2]) == [6, 6]
    assert report.scores["Computable from these data"].sum() == 3
    table = audit_html(report.audit)
    assert "<select" not in table and 'class="audit-' not in table.split("<tbody>")[1]
    written = pd.read_csv(tmp_path / "audit" / "audit.csv")
    assert "status" not in written and len(written) == 4


def test_a_blank_status_is_left_out_not_counted_as_no_event():
    """p1 (Alpha, alive at day 900) has a blank death: Alpha's OS is then p3 (died day 120)
    and p2 (died day 400): the curve sits at exactly 1/2 between the two deaths, so the
    median is their midpoint, day 260; counted as "no event", p1 would make it day 400."""
    data = small_cohort().astype({"death": object})
    data.loc[0, "death"] = None
    cohort = Cohort(validate_cohort(data), "arm")
    audit = audit_table(cohort, registry([
        row("os_alpha", "os", "Alpha", "median", 1.0, "kaplan_meier", 0.01),
    ])).set_index("id")
    assert audit.loc["os_alpha", "recomputed"] == pytest.approx(260 / (365.25 / 12))


def test_a_cohort_without_the_text_facts_columns_names_them():
    from bridge_hsct.cohort.validate import validate_cohort
    from bridge_hsct.paper.synthetic.protocol import COLUMNS

    data = validate_cohort(pd.read_csv(DEFAULT_DATA).drop(columns=list(COLUMNS)))
    registry = load_published()
    rows = registry[registry["id"].isin(["methods.gvhd_prophylaxis_pt_cy.count.whole",
                                         "results.hhv6_reactivation.count.whole"])]
    audit = audit_table(Cohort(data, "arm"), rows).set_index("id")
    assert (audit["status"] == NOT_COMPUTABLE).all()
    assert audit["note"].tolist() == ["column 'gvhd_prophylaxis' is not in these data",
                                      "column 'hhv6_reactivation' is not in these data"]

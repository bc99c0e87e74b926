"""The audit recomputes registry rows on a cohort; checked on a small cohort by hand."""

import math

import pandas as pd
import pytest

from bridge_hsct.book.chapter import open_chapter
from bridge_hsct.cohort.validate import validate_cohort
from bridge_hsct.paper.audit import (
    CONTRADICTED,
    DIFFERS,
    NOT_COMPUTABLE,
    REPRODUCED,
    Cohort,
    audit_html,
    audit_report,
    audit_score,
    audit_table,
    printing_precision,
)
from conftest import small_cohort


def registry(rows):
    columns = ["id", "source", "locator", "section", "quantity", "group", "statistic",
               "value", "method", "tolerance", "followed", "note"]
    frame = pd.DataFrame([dict(zip(columns, r, strict=True)) for r in rows])
    return frame


def row(id_, quantity, group, statistic, value, method=None, tolerance=0.0, followed=None):
    return (id_, "table1", "", "baseline", quantity, group, statistic, value, method,
            tolerance, followed, "")


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


def test_printing_precision():
    assert printing_precision(28.07) == pytest.approx(0.005)
    assert printing_precision(13.0) == pytest.approx(0.5)
    assert printing_precision(5.335) == pytest.approx(0.0005)


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

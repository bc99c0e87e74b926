"""The ensemble of reconstructions: the summary's logic by hand, and the committed summary
against a fresh reconstruction."""

import numpy as np
import pandas as pd
import pytest

from bridge_hsct.paper.published import load_published
from bridge_hsct.paper.synthetic.ensemble import (
    SEEDS,
    load_ensemble,
    reconstruction_numbers,
    summarise,
)
from bridge_hsct.paper.synthetic.pipeline import SEED, generate
from bridge_hsct.paths import DEFAULT_DATA


def test_a_number_is_determined_when_its_range_is_within_one_printed_unit():
    registry = pd.DataFrame({
        "id": list("abcde"), "quantity": ["x"] * 5, "group": ["whole"] * 5,
        "statistic": ["rate_2y"] * 5, "value": [77.78, 77.78, 0.5, 0.5, 1.0],
        "printed": ["77.78", "77.78", "0.5", "0.5", "1"]})
    runs = pd.DataFrame({1: [77.775, 77.77, 0.46, 0.5, np.nan, np.nan, 30.0],
                         2: [77.784, 77.79, 0.54, np.nan, np.nan, np.nan, np.nan]},
                        index=[*"abcde", "book.os.median.whole", "book.pfs.median.whole"])
    summary = summarise(runs, pd.Series({"a": 77.78}), registry).set_index("id")
    # a: 0.009 <= 0.01; b: 0.02 > 0.01; c: 0.08 <= 0.1; d: one run without a value;
    # a book median reached in no run is determined ("not reached"), in one run it is not
    assert summary["determined"].to_dict() == {
        "a": True, "b": False, "c": True, "d": False, "book.os.median.whole": True,
        "book.pfs.median.whole": False}
    assert "e" not in summary.index  # a published number computable in no run
    assert summary.loc["d", "not_given"] == 1 and summary.loc["a", "reference"] == 77.78
    assert summary.loc["b", ["minimum", "maximum"]].tolist() == [77.77, 77.79]


def test_the_ensemble_has_twenty_other_seeds():
    summary = load_ensemble()
    assert len(SEEDS) == 20 and SEED not in SEEDS
    assert (summary["reconstructions"] == 20).all()


@pytest.fixture(scope="module")
def registry():
    return load_published()


def test_the_committed_summary_holds_the_reference_cohort(registry):
    summary = load_ensemble().set_index("id")
    reference = reconstruction_numbers(pd.read_csv(DEFAULT_DATA), registry)
    given = summary["reference"].dropna()
    assert np.allclose(given, reference[given.index].astype(float), rtol=1e-5, atol=1e-9)


def test_a_fresh_reconstruction_lies_within_the_committed_ranges(registry):
    cohort, _ = generate(SEEDS[0], cohort_path=None, report_path=None)
    numbers = reconstruction_numbers(cohort, registry)
    summary = load_ensemble().set_index("id")
    given = numbers[summary.index].dropna().astype(float)
    low, high = summary.loc[given.index, "minimum"], summary.loc[given.index, "maximum"]
    outside = given[(given < low - 1e-5 * low.abs() - 1e-9)
                    | (given > high + 1e-5 * high.abs() + 1e-9)]
    assert outside.empty, outside


def test_the_pages_count_what_varies_by_where_it_is_printed():
    from bridge_hsct.paper.synthetic.page import ensemble_by_source, varying_note

    summary = pd.DataFrame({"id": ["table2.a", "table2.b", "table2.c", "results.d",
                                   "book.os.median.whole"],
                            "determined": [True, False, False, True, True]})
    assert varying_note(summary, "table2", "Table 2").startswith(
        "On this synthetic cohort, 2 of the 3 published numbers of Table 2 differ")
    assert varying_note(summary, "results", "the Results") == ""
    counts = ensemble_by_source(summary).set_index("Printed in")
    assert counts.loc["Table 2"].tolist() == [1, 2]
    assert counts.loc["Medians the book adds"].tolist() == [1, 0]


def test_the_medians_note_names_each_varying_median_with_its_range():
    from bridge_hsct.paper.synthetic.page import medians_note

    summary = pd.DataFrame({
        "id": ["book.os.median.whole", "book.pfs.median.CAR-T", "book.grfs.median.whole"],
        "determined": [True, False, False], "minimum": [np.nan, 20.04, 10.0],
        "maximum": [np.nan, 31.96, 12.0]})
    note = medians_note(summary, ("os", "pfs"))
    assert "PFS, CAR-T: 20.0 to 32.0 months" in note and "OS" not in note.split(":")[1]
    assert "GRFS" not in note
    assert medians_note(summary, ("os",)) == ""


def test_chapters_say_what_varies_on_the_synthetic_cohort_only(tmp_path, built_site):
    """The notes are about the reconstruction: under the bundled cohort's Table 2 and
    medians, never under another cohort's numbers (even a copy of the same rows with one
    patient's follow-up changed)."""
    import pandas as pd

    from bridge_hsct.paper.synthetic.page import reconstruction_notes
    from bridge_hsct.paths import DEFAULT_DATA

    notes = reconstruction_notes(DEFAULT_DATA, medians=("os", "pfs"), source="table2",
                                 what="Table 2")
    assert len(notes) == 2 and "Table 2" in notes[1] and "PFS" in notes[0]
    other = pd.read_csv(DEFAULT_DATA)
    other.loc[0, "followup_days"] += 1
    other.to_csv(tmp_path / "other.csv", index=False)
    assert reconstruction_notes(tmp_path / "other.csv", medians=("os", "pfs"),
                                source="table2", what="Table 2") == []
    for page, words in [("os_pfs.html", "these medians differ between reconstructions"),
                        ("gvhd.html", "published numbers of Table 2 differ")]:
        assert words in " ".join((built_site / page).read_text(encoding="utf-8").split())

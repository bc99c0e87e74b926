"""Literature context: the published figures are valid and match their sources; the cohort's
figures beside them are the package's own estimates."""

import re
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pandera.pandas as pa
import pytest

from bridge_hsct.cohort.validate import load_cohort
from bridge_hsct.paper import literature as lit
from bridge_hsct.paths import DEFAULT_DATA
from bridge_hsct.render.disclosure import NO_SUPPRESSION
from bridge_hsct.stats.survival import km_at, km_median, months_to_days, to_months

ROOT = Path(__file__).resolve().parents[1]
CONTEXT = ROOT.parent / "shared" / "paper"
SOURCES = {
    "wang2025": "context-wang2025-blinatumomab-rr-ball.txt",
    "xu2025": "context-xu2025-blinatumomab-vs-cd19-car-t-abstract.txt",
}


@pytest.fixture(scope="module")
def published():
    return lit.load_literature()


@pytest.fixture(scope="module")
def data():
    return load_cohort(DEFAULT_DATA)


@pytest.fixture(scope="module")
def groups(data):
    return sorted(data["arm"].unique())


def normalised(text: str) -> str:
    """Source text with the PDF extraction's LaTeX and line breaks undone."""
    text = text.replace("\\pm", "±").replace("\\%", "%").replace("$", "")
    return re.sub(r"\s+", " ", text)


# ---------------------------------------------------------------------------------------------
# The CSV of published figures
# ---------------------------------------------------------------------------------------------
def test_csv_loads_and_validates(published):
    assert len(published) >= 8
    assert set(published["study_id"]) == set(SOURCES)
    assert set(published["time_origin"]) <= set(lit.ORIGIN_WORDS)
    assert published["n"].dtype.kind == "i"


@pytest.mark.parametrize("change, rule", [
    ({"estimate": 164.2}, "between 0 and 100"),
    ({"time_origin": "diagnosis"}, "isin"),
    ({"ci_lower": 50.0}, "bracket the estimate"),
    ({"printed": "99.9%"}, "quoted fragment"),
    ({"doi": "not-a-doi"}, "str_matches"),
])
def test_schema_rejects_bad_rows(tmp_path, change, rule):
    table = pd.read_csv(lit.LITERATURE_CSV)
    for column, value in change.items():
        table[column] = table[column].astype(object)
        table.loc[0, column] = value
    path = tmp_path / "bad.csv"
    table.to_csv(path, index=False)
    with pytest.raises(pa.errors.SchemaErrors) as caught:
        lit.load_literature(path)
    assert rule in str(caught.value)


@pytest.mark.skipif(not CONTEXT.is_dir(), reason=f"context papers not at {CONTEXT}")
@pytest.mark.parametrize("study_id", sorted(SOURCES))
def test_published_figures_appear_in_their_source(published, study_id):
    text = normalised((CONTEXT / SOURCES[study_id]).read_text(encoding="utf-8"))
    rows = published[published["study_id"] == study_id]
    for _, r in rows.iterrows():
        quote = normalised(r["quote"])
        assert quote in text, f"quote not in {SOURCES[study_id]}: {quote}"
        assert r["printed"] in quote
        if r["printed"] == "not reached":
            assert np.isnan(r["estimate"])
        else:
            unit = "%" if r["statistic"] == "rate" else " months"
            assert f"{r['estimate']:.1f}{unit}" in quote
        if not np.isnan(r["se"]):
            assert f"± {r['se']:.1f}%" in quote
        if r["statistic"] == "rate":
            assert f"{r['timepoint_months']:g}-month" in text or "1-year" in text
        assert re.search(rf"\b{int(r['n'])} patients", text), r["n"]
        assert r["doi"] in text or r["doi"].upper() in text.upper()


# ---------------------------------------------------------------------------------------------
# This cohort's estimates
# ---------------------------------------------------------------------------------------------
def test_cohort_estimates_equal_kaplan_meier(published, data, groups):
    cohort = lit.cohort_estimates(data, "arm", groups, published)
    assert set(cohort["outcome"]) == {"OS", "PFS"}
    assert (cohort["time_origin"] == "transplant").all()
    rates = cohort[cohort["statistic"] == "rate"]
    assert set(rates["timepoint_months"]) == {12.0}
    assert len(rates) == 2 * (1 + len(groups))
    for _, r in rates.iterrows():
        part = data if r["group"] == "whole" else data[data["arm"] == r["group"]]
        if r["outcome"] == "OS":
            event = part["death"] == 1
            time = part["followup_days"]
        else:
            relapse_first = (part["relapse"] == 1) & (part["relapse_days"] <= part["followup_days"])
            time = part["relapse_days"].where(relapse_first, part["followup_days"])
            event = relapse_first | (part["death"] == 1)
        expected = km_at(time, event, months_to_days(12.0))
        assert r["estimate"] == pytest.approx(100 * expected.value)
        assert r["ci_lower"] == pytest.approx(100 * expected.lower)
        assert r["ci_upper"] == pytest.approx(100 * expected.upper)
        assert r["n"] == len(part)
    whole_os = cohort[(cohort["statistic"] == "median") & (cohort["outcome"] == "OS")
                      & (cohort["group"] == "whole")].iloc[0]
    median = km_median(data["followup_days"], data["death"] == 1)
    if np.isnan(median.value):
        assert whole_os["printed"] == "not reached"
    else:
        assert whole_os["estimate"] == pytest.approx(to_months(median.value))


def test_plot_rows_carry_cohort_estimates_and_published_figures_unchanged(published, data,
                                                                         groups):
    cohort = lit.cohort_estimates(data, "arm", groups, published)
    rows = lit.forest_rows(lit.comparison_table(published, cohort))
    computed = rows[rows["source"] == lit.COMPUTED]
    rates = cohort[cohort["statistic"] == "rate"]
    assert computed["estimate"].tolist() == pytest.approx(rates["estimate"].tolist())
    assert (computed["interval"] == lit.CI_COMPUTED).all()
    shown = rows[rows["source"] == lit.PUBLISHED].reset_index(drop=True)
    source = published[published["statistic"] == "rate"].reset_index(drop=True)
    assert shown["estimate"].tolist() == source["estimate"].tolist()
    with_se = shown[shown["se"].notna()]
    assert (with_se["interval"] == lit.CI_FROM_SE).all()
    assert with_se["lower"].tolist() == pytest.approx(
        (with_se["estimate"] - 1.959964 * with_se["se"]).clip(lower=0).tolist(), abs=1e-4)
    assert (shown.loc[shown["se"].isna(), "interval"] == lit.CI_NONE).all()


def test_three_group_cohort_gets_one_row_per_group(published, data):
    three = data.assign(arm=np.where(data.index % 3 == 0, "Third", data["arm"]))
    groups = sorted(three["arm"].unique())
    cohort = lit.cohort_estimates(three, "arm", groups, published)
    assert set(cohort["group"]) == {"whole", *groups}


def test_forest_plot_is_saved_and_figure_markdown_names_it(tmp_path, published, data, groups):
    cohort = lit.cohort_estimates(data, "arm", groups, published)
    rows = lit.forest_rows(lit.comparison_table(published, cohort))
    before = dict(plt.rcParams)
    files = lit.save_forest(rows, groups, tmp_path, disclosure=NO_SUPPRESSION)
    assert files["png"].stat().st_size > 10_000 and files["svg"].is_file()
    assert not plt.get_fignums()  # closed after saving
    assert dict(plt.rcParams) == before, "the book's style is not left in force"
    text = lit.forest_markdown(files, rows, published)
    assert text.startswith(f"```{{figure}} {files['png'].as_posix()}\n:name: literature-forest")
    assert ":alt: " in text and "{download}`SVG" in text
    assert "not recomputed" in text


def test_placement_words_follow_the_numbers():
    def rows(mine, theirs):
        frame = pd.DataFrame(
            [{"panel": "OS", "source": lit.COMPUTED, "estimate": v, "timepoint_months": 12.0}
             for v in mine]
            + [{"panel": "OS", "source": lit.PUBLISHED, "estimate": v, "timepoint_months": 12.0}
               for v in theirs])
        return lit.placement_text(frame)

    above = rows([70, 80], [50, 60])
    assert "numerically above each published point estimate (50.0% to 60.0%)" in above
    assert "higher than" not in above and "better" not in above
    assert lit.PLACEMENT_CAVEAT in above and "do not rank" in above
    assert "numerically below each" in rows([30, 40], [50, 60])
    assert "lie within the range" in rows([52, 58], [50, 60])
    assert "overlap the range" in rows([45, 58], [50, 60])
    assert "cannot be set beside" in rows([np.nan], [50, 60])


def test_display_table_shows_every_row(published, data, groups):
    cohort = lit.cohort_estimates(data, "arm", groups, published)
    table = lit.comparison_table(published, cohort)
    display = lit.comparison_display(table, disclosure=NO_SUPPRESSION)
    assert (display["indent"] == 1).sum() == len(table)
    assert "± 12.1" in display["Interval"].tolist()
    assert "not reached" in display["Estimate"].tolist()


def test_references_link_each_study_once(published):
    text = lit.references_markdown(published)
    assert text.count("https://doi.org/") == published["study_id"].nunique()

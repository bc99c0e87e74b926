"""The GVHD and engraftment/infection chapters end to end.

On the default cohort (the session's book build): every figure panel and table is on the
page and its CSV holds exactly what the package computes. On a cohort without the optional
columns (a build of these two chapters only): the pages still build, with no Sphinx warning,
and say what was left out.
"""

import os
from pathlib import Path

import pandas as pd
import pytest

from bridge_hsct import paths
from bridge_hsct.book import build as book_build
from bridge_hsct.book.build import DEFAULT_DATA, Parameters
from bridge_hsct.book.chapter import open_chapter
from bridge_hsct.paper.gvhd import FIGURE4, figure4
from bridge_hsct.paper.multivariate import multivariate_table
from bridge_hsct.paper.table3 import (
    crs_icans_table,
    engraftment_figure,
    paper_p_value_check,
    transplant_outcomes_table,
)
from conftest import as_written, download, page_text

CHAPTERS = ["gvhd", "engraftment_infection"]
DROPPED = ["graft_source", "donor_sex", "cgvhd", "cgvhd_days", "cgvhd_severe",
           "neutrophil_engraftment", "neutrophil_engraftment_days", "platelet_engraftment",
           "platelet_engraftment_days", "crs_grade", "icans", "tma", "cmv_reactivation"]


@pytest.fixture(scope="module")
def computed(tmp_path_factory):
    chapter = open_chapter(str(DEFAULT_DATA), "arm", None, tmp_path_factory.mktemp("out"))
    data, groups = chapter.data, chapter.groups
    table2 = multivariate_table(data, disclosure=chapter.disclosure)
    return {
        "figure4_estimates.csv": figure4(data, "arm", groups, 24.0,
                                         disclosure=chapter.disclosure).estimates(),
        "table2.csv": table2.numbers,
        "table2_stepwise.csv": table2.selection.numbers,
        "table3.csv": transplant_outcomes_table(data, "arm", groups,
                                                disclosure=chapter.disclosure).numbers,
        "supplementary_table1.csv": crs_icans_table(data, "arm", groups,
                                                    disclosure=chapter.disclosure).numbers,
        "table3_published_p_values.csv": paper_p_value_check(),
        "supplementary_figure5_estimates.csv":
            engraftment_figure(data, "arm", groups, disclosure=chapter.disclosure).estimates(),
    }


@pytest.mark.parametrize("name", ["figure4_estimates.csv", "table2.csv", "table2_stepwise.csv",
                                  "table3.csv", "supplementary_table1.csv",
                                  "table3_published_p_values.csv",
                                  "supplementary_figure5_estimates.csv"])
def test_downloaded_csv_equals_the_package_computation(built_site, computed, name):
    pd.testing.assert_frame_equal(download(built_site, name), as_written(computed[name]),
                                  check_dtype=False, rtol=1e-9)


def test_every_figure4_panel_is_on_the_page_with_png_and_svg(built_site):
    html = (built_site / "gvhd.html").read_text(encoding="utf-8")
    for spec in FIGURE4:
        assert f'id="{spec.anchor}"' in html, spec.stem
        for ext in ("png", "svg"):
            assert list((built_site / "_downloads").rglob(f"{spec.stem}.{ext}")), spec.stem
    page = page_text(built_site / "gvhd.html")
    assert "Table 2. Multivariable Cox models of GVHD" in page
    assert "events per variable" in page and "Firth" in page
    assert "Synthetic data" in page


def test_table3_page_shows_the_paper_check_and_every_line(built_site):
    page = page_text(built_site / "engraftment_infection.html")
    for label in ("Time to neutrophil engraftment", "Haemorrhagic cystitis", "PTLD", "CMV",
                  "EBV", "Herpes zoster virus or HHV-6", "Pulmonary", "Urinary tract",
                  "Grade 1–2", "ICANS"):
        assert label in page, label
    assert "Table 3 P values from the published counts" in page
    check = paper_p_value_check().dropna(subset=["published_p"])
    assert check["agrees"].all()
    for ext in ("png", "svg"):
        assert list((built_site / "_downloads").rglob(f"supplementary_figure5a.{ext}"))


@pytest.fixture(scope="module")
def reduced_site(tmp_path_factory):
    """These two chapters built (with -W) from a cohort lacking the optional columns."""
    folder = tmp_path_factory.mktemp("reduced")
    data = pd.read_csv(DEFAULT_DATA).drop(columns=DROPPED)
    path = folder / "reduced.csv"
    data.to_csv(path, index=False)
    toc = {"format": "jb-book", "root": "intro", "parts": [
        {"caption": "The study", "chapters": [{"file": "methods"},
                                              {"file": "data_dictionary"}]},
        {"caption": "Results", "chapters": [{"file": c} for c in CHAPTERS]}]}
    root = Path(__file__).resolve().parents[1]
    try:
        os.getcwd()
    except FileNotFoundError:
        # papermill changes the process's working folder from parallel threads; an earlier
        # build in this session may have left it in a removed staging folder
        os.chdir(root)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        # the Methods page is a notebook too (the landing page links it)
        patch.setattr(book_build, "chapters", lambda: ["methods", *CHAPTERS])
        patch.setattr(paths, "chapters", lambda: ["methods", *CHAPTERS])  # Results links
        patch.setattr(book_build, "_existing_toc", lambda src: toc)
        out = book_build.build(folder / "site", Parameters(data_path=str(path)),
                               log=lambda *a, **k: None, cache=None)
    return out


def test_absent_optional_columns_give_notes_not_a_failed_build(reduced_site):
    gvhd = page_text(reduced_site / "gvhd.html")
    for note in ("Figure 4C is not drawn Chronic GVHD of all patients needs that "
                 "information, but the data have no column cgvhd",
                 "Figure 4F is not drawn Chronic GVHD by group needs",  # not the paper's cohort
                 "Figure 4H is not drawn Grade III–IV acute GVHD by graft source needs that "
                 "information, but the data have no column graft_source",
                 "Figure 4I is not drawn Grade III–IV acute GVHD by donor sex needs that "
                 "information, but the data have no column donor_sex"):
        assert note in gvhd, note
    html = (reduced_site / "gvhd.html").read_text(encoding="utf-8")
    for letter in "abcdefghi":  # a skipped panel keeps its anchor
        assert f'id="figure-4{letter}"' in html
    for letter in "abdeg":
        assert f'src="_images/figure4{letter}.png"' in html
    for letter in "cfhi":
        assert f"figure4{letter}.png" not in html
    table2 = download(reduced_site, "table2.csv")
    assert set(table2["outcome"]) == {"agvhd_3_4"}
    assert "graft_pb_bm" not in set(table2["covariate"])

    engraftment = page_text(reduced_site / "engraftment_infection.html")
    assert "Not in the data, so left out" in engraftment
    assert "Supplementary Figure 5A is not drawn" in engraftment
    assert "Supplementary Figure 5B is not drawn" in engraftment
    assert "Supplementary Table 1. CRS and ICANS after immunotherapy: left out" in engraftment
    table3 = download(reduced_site, "table3.csv")
    assert not {"tma", "cmv_reactivation", "cgvhd"} & set(table3["row"])
    assert {"ebv_reactivation", "pulmonary_infection"} <= set(table3["row"])

"""The survival chapters (OS/PFS, GRFS, NRM) and the IPTW chapter, end to end.

On the default cohort (the session's book build, ``built_site``): every panel of Figures 1–3
and Supplementary Fig. 6 is on its page with a stable anchor and PNG/SVG downloads, and the
downloaded CSV files hold exactly what the package computes (the landmark estimates and P
values equal :func:`bridge_hsct.paper.outcomes.endpoint_summary`). On a cohort without some
optional columns (a build of three chapters only): the pages still build with no Sphinx
warning and say which panels were left out and why. The subgroup logic itself is tested on
small frames, without a build.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bridge_hsct import paths
from bridge_hsct.book import build as book_build
from bridge_hsct.book.build import DEFAULT_DATA, Parameters
from bridge_hsct.book.chapter import Chapter, open_chapter
from bridge_hsct.paper.cox_table import univariate_cox_table
from bridge_hsct.paper.iptw import balance_table, iptw, iptw_outcomes
from bridge_hsct.paper.outcomes import COMPETING_METHOD, endpoint_summary, estimate_text
from bridge_hsct.paper.panels import (
    GROUPS,
    Figure,
    PanelEngine,
    figure_panel,
    make_panel,
    subgroup_levels,
)
from bridge_hsct.paper.subgroups import FIGURE1, FIGURE2, FIGURE3
from bridge_hsct.render.formatting import format_p
from conftest import as_written, download, page_text, small_cohort

LANDMARK = 24.0


@pytest.fixture(scope="module")
def chapter(tmp_path_factory):
    return open_chapter(str(DEFAULT_DATA), "arm", None, tmp_path_factory.mktemp("out"))


@pytest.fixture(scope="module")
def panels(chapter):
    engine = PanelEngine.for_chapter(chapter, LANDMARK, save=False)
    return {name: engine.figure(specs) for name, specs in [
        ("figure1", FIGURE1), ("figure2", FIGURE2), ("figure3", FIGURE3)]}


# ---------------------------------------------------------------------------------------------
# The built book (default cohort)
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("figure", ["figure1", "figure2", "figure3"])
def test_estimates_csv_equals_the_package_computation(built_site, panels, figure):
    pd.testing.assert_frame_equal(download(built_site, f"{figure}_estimates.csv"),
                                  as_written(panels[figure].numbers()),
                                  check_dtype=False, rtol=1e-9)


@pytest.mark.parametrize("panel, endpoint, method", [
    ("figure1c", "os", "1 - kaplan-meier"), ("figure1d", "pfs", "1 - kaplan-meier"),
    ("figure2b", "grfs", "1 - kaplan-meier"), ("figure3b", "nrm", "1 - kaplan-meier"),
    ("figure3b_aalen_johansen", "nrm", COMPETING_METHOD),
])
def test_group_rows_equal_endpoint_summary(built_site, chapter, panel, endpoint, method):
    stem = {"o": "figure1", "p": "figure1", "g": "figure2", "n": "figure3"}[endpoint[0]]
    saved = download(built_site, f"{stem}_estimates.csv")
    saved = saved[saved["panel"] == panel].reset_index(drop=True)
    expected = endpoint_summary(chapter.data, endpoint, "arm", chapter.groups, LANDMARK,
                                method).iloc[1:].reset_index(drop=True)
    assert list(saved["group"]) == list(expected["group"])
    for column in ("n", "events", "estimate", "lower", "upper", "p_value"):
        np.testing.assert_allclose(saved[column].to_numpy(float),
                                   expected[column].to_numpy(float), rtol=1e-9,
                                   equal_nan=True, err_msg=f"{panel} {column}")


def test_whole_cohort_row_equals_endpoint_summary(built_site, chapter):
    saved = download(built_site, "figure1_estimates.csv").set_index("panel")
    for panel, endpoint in (("figure1a", "os"), ("figure1b", "pfs")):
        expected = endpoint_summary(chapter.data, endpoint, "arm", chapter.groups,
                                    LANDMARK).iloc[0]
        for column in ("estimate", "lower", "upper", "median_months"):
            assert saved.loc[panel, column] == pytest.approx(expected[column], nan_ok=True)


def test_pages_show_the_computed_estimates_and_p_values(built_site, panels):
    for page, figure in (("os_pfs", "figure1"), ("grfs", "figure2"), ("nrm", "figure3")):
        text = page_text(built_site / f"{page}.html")
        for panel in panels[figure].drawn:
            for _, row in panel.summary.iterrows():
                if row["group"] == "whole" and panel.spec.by is not None:
                    continue
                assert estimate_text(row) in text, (panel.spec.stem, row["group"])
            if panel.spec.by is not None:
                assert f"P = {format_p(panel.summary.iloc[1]['p_value'])}" in text


@pytest.mark.parametrize("page, anchors", [
    ("os_pfs", [f"figure-1{c}" for c in "abcdefg"]),
    ("grfs", [f"figure-2{c}" for c in "abcd"]),
    ("nrm", ["figure-3a", "figure-3b", "figure-3a-aalen-johansen",
             "figure-3b-aalen-johansen"]),
    ("iptw", ["figure-s6a", "figure-s6b", "figure-s6c", "figure-s6d", "figure-iptw-balance"]),
])
def test_every_panel_has_its_anchor_image_and_downloads(built_site, page, anchors):
    html = (built_site / f"{page}.html").read_text(encoding="utf-8")
    for anchor in anchors:
        assert f'id="{anchor}"' in html, anchor
        stem = ("iptw_balance" if anchor == "figure-iptw-balance"
                else anchor.replace("figure-", "figure").replace("-", "_")
                .replace("figures6", "figure_s6"))
        assert f'src="_images/{stem}.png"' in html, stem
        for ext in ("png", "svg"):
            assert list((built_site / "_downloads").rglob(f"{stem}.{ext}")), (stem, ext)
    assert "Synthetic data" in page_text(built_site / f"{page}.html")


@pytest.mark.parametrize("endpoint", ["os", "pfs", "grfs", "nrm"])
def test_cox_csv_equals_the_package_computation(built_site, chapter, endpoint):
    expected = univariate_cox_table(chapter.data, endpoint, "arm", chapter.groups,
                                    disclosure=chapter.disclosure).numbers
    pd.testing.assert_frame_equal(download(built_site, f"cox_univariate_{endpoint}.csv"),
                                  as_written(expected), check_dtype=False, rtol=1e-9)


def test_iptw_csvs_equal_the_package_computation(built_site, chapter):
    weighting = iptw(chapter.data, "arm", chapter.groups)
    outcomes = iptw_outcomes(chapter.data, weighting, landmark_months=LANDMARK)
    pd.testing.assert_frame_equal(download(built_site, "iptw_hazard_ratios.csv"),
                                  as_written(outcomes["hazard_ratios"]), check_dtype=False,
                                  rtol=1e-9)
    pd.testing.assert_frame_equal(download(built_site, "iptw_balance.csv"),
                                  as_written(balance_table(chapter.data, weighting)),
                                  check_dtype=False, rtol=1e-9)
    page = page_text(built_site / "iptw.html")
    assert "What this cohort can and cannot support" in page
    assert f"This cohort has {len(chapter.data)} patients" in page
    trimming = weighting.trimming
    assert f"{trimming.n_trimmed} weight" in page


def test_nrm_page_gives_both_methods_and_the_note(built_site):
    page = page_text(built_site / "nrm.html")
    assert "Why the two estimates differ" in page
    assert "Gray" in page and "log-rank" in page
    assert "relapsed first" in page


# ---------------------------------------------------------------------------------------------
# A cohort without some optional columns (three chapters built alone)
# ---------------------------------------------------------------------------------------------
CHAPTERS = ["os_pfs", "grfs", "iptw"]


@pytest.fixture(scope="module")
def reduced_site(tmp_path_factory):
    folder = tmp_path_factory.mktemp("reduced")
    data = pd.read_csv(DEFAULT_DATA).drop(columns=["ikzf1_isoform6", "graft_source",
                                                   "agvhd_3_4", "agvhd_3_4_days"])
    data["mrd_positive"] = 0
    path = folder / "reduced.csv"
    data.to_csv(path, index=False)
    toc = {"format": "jb-book", "root": "intro", "parts": [
        {"caption": "The study", "chapters": [{"file": "methods"},
                                              {"file": "data_dictionary"}]},
        {"caption": "Results", "chapters": [{"file": c} for c in CHAPTERS]}]}
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(Path(__file__).resolve().parents[1])
        # one chapter at a time: papermill's `cwd` is a process-wide os.chdir, which races
        # between the build's threads (a kernel can start in the wrong folder)
        patch.setattr(book_build.os, "cpu_count", lambda: 1)
        # the Methods page is a notebook too (the landing page links it)
        patch.setattr(book_build, "chapters", lambda: ["methods", *CHAPTERS])
        patch.setattr(paths, "chapters", lambda: ["methods", *CHAPTERS])  # Results links
        patch.setattr(book_build, "_existing_toc", lambda src: toc)
        return book_build.build(folder / "site", Parameters(data_path=str(path)),
                                log=lambda *a, **k: None, cache=None)


def test_absent_or_single_level_columns_skip_panels_with_a_note(reduced_site):
    page = page_text(reduced_site / "os_pfs.html")
    assert "Figure 1E is not drawn" in page and "no column ikzf1_isoform6" in page
    assert "Figure 1G is not drawn" in page and "single level" in page
    html = (reduced_site / "os_pfs.html").read_text(encoding="utf-8")
    assert 'id="figure-1e"' in html, "the anchor of a skipped panel stays"
    assert "_images/figure1e.png" not in html
    assert 'src="_images/figure1f.png"' in html
    saved = download(reduced_site, "figure1_estimates.csv")
    assert {"figure1e", "figure1g"}.isdisjoint(saved["panel"])
    assert {"figure1a", "figure1f"} <= set(saved["panel"])

    # without grade III-IV aGVHD the GRFS definition cannot be applied: no GRFS panel at all
    grfs = page_text(reduced_site / "grfs.html")
    for panel in "ABCD":
        assert f"Figure 2{panel} is not drawn" in grfs
    assert "no column agvhd_3_4" in grfs

    iptw_page = page_text(reduced_site / "iptw.html")
    assert "Supplementary Figure 6D is not drawn" in iptw_page
    assert "graft_source (not in the data)" in iptw_page
    assert "mrd_positive (a single level in the data)" in iptw_page


# ---------------------------------------------------------------------------------------------
# Subgroup logic on small frames (no build)
# ---------------------------------------------------------------------------------------------
def test_subgroup_levels_come_from_the_data_in_schema_order():
    data = small_cohort()
    labelled, levels, reason = subgroup_levels(data, "sex")
    assert reason is None and levels == ["Male", "Female"]
    assert list(labelled) == ["Male", "Female", "Male", "Female", "Female", "Male"]
    custom = data.assign(mrd_positive=[1, 0, 0, np.nan, 1, 0])
    labelled, levels, _ = subgroup_levels(custom, "mrd_positive", {0: "neg", 1: "pos"})
    assert levels == ["neg", "pos"] and labelled.isna().sum() == 1
    assert subgroup_levels(data, "ikzf1_isoform6")[2] == "the data have no column " \
                                                         "`ikzf1_isoform6`"
    single = data.assign(graft_source="PB")
    assert "single level" in subgroup_levels(single, "graft_source")[2]


def test_group_panel_uses_the_group_labels_of_the_data(tmp_path):
    data = small_cohort()
    chapter = Chapter(data, "arm", ["Alpha", "Beta"], tmp_path)
    panel = make_panel(chapter, figure_panel("9", "C", "os", GROUPS), 12.0)
    assert list(panel.summary["group"]) == ["whole", "Alpha", "Beta"]
    expected = endpoint_summary(data, "os", "arm", ["Alpha", "Beta"], 12.0)
    pd.testing.assert_frame_equal(panel.summary, expected)
    assert (tmp_path / "figure9c.png").is_file() and (tmp_path / "figure9c.svg").is_file()
    markdown = panel.markdown()
    assert ":name: figure-9c" in markdown and ":alt: " in markdown
    assert "{download}`SVG <" in markdown and "Alpha (n = 3" in markdown


def test_missing_column_gives_a_skipped_panel_not_an_error(tmp_path):
    chapter = Chapter(small_cohort(), "arm", ["Alpha", "Beta"], tmp_path)
    panel = make_panel(chapter, FIGURE1[4], LANDMARK)  # OS by IKZF1
    assert not panel.drawn and "ikzf1_isoform6" in panel.skipped
    assert not list(tmp_path.glob("figure1e.*"))
    markdown = panel.markdown()
    assert markdown.startswith("(figure-1e)=") and "{note}" in markdown
    assert "not drawn" in Figure([panel], disclosure=chapter.disclosure).describe()
    table = Figure([panel], disclosure=chapter.disclosure).table()
    assert table.numbers.empty and "Figure 1E not drawn" in table.notes[0]


def test_subgroup_panel_summary_is_the_by_column_summary(tmp_path):
    data = small_cohort()
    chapter = Chapter(data, "arm", ["Alpha", "Beta"], tmp_path)
    panel = make_panel(chapter, FIGURE1[5], 12.0)  # PFS by sex
    relabelled = data.assign(sex=data["sex"].map({"M": "Male", "F": "Female"}))
    expected = endpoint_summary(relabelled, "pfs", "arm", ["Male", "Female"], 12.0, by="sex")
    pd.testing.assert_frame_equal(panel.summary, expected)
    assert panel.title == "F  Progression-free survival, by patient sex"

"""Every label follows the settings: the confidence level from ``alpha``, the landmark from
``landmark_months``.

Unit tests compute results at ``alpha = 0.1`` and check that what prints them (estimate text,
captions, table headers and notes, in-panel labels) says "90%" and never "95%", and that the
figure bands are the 90% intervals. One book built at ``alpha = 0.1`` and
``landmark_months = 12`` is then read page by page and download by download.

The rules of the built book, and their exceptions:

* **Confidence level.** No page shows "95%" except

  - the literature page, where a source's *published* interval stays what it was (a 95% CI
    whatever ``alpha``): there "95%" appears only as "published 95%";
  - the calibration page, which describes the bundled synthetic cohort against the paper's
    published 95% intervals whatever the book is built with (it reads a stored report).

  Everywhere else every level a label names ("… CI", "… confidence", "… pointwise",
  "… log-log") is 90%, and every chapter that prints computed intervals names 90%.
* **Downloads.** No CSV header contains "95"; a CSV with interval columns (``lower``,
  ``upper``, ``ci_lower``, …) carries the level it was computed at (an ``alpha`` column of
  0.1, or, for the literature comparison, ``ci_level`` "90%" on this cohort's rows and
  "95%" only on published rows). Exempt: ``literature_context.csv`` (the sources' figures,
  copied as published) and the calibration report.
* **Landmark.** "12 months" is on every page that reads curves at the landmark; "24 months",
  "24-month", "2-year" and "2 years" appear only on the audit, inconsistencies and
  calibration pages, which quote or recompute the paper's own published 2-year figures (the
  audit compares at the paper's 24 months and 95% whatever the settings). A
  ``landmark_months`` column holds 12, or a landmark the figure fixes in its spec (acute GVHD
  at day 100, engraftment at days 14 and 21).
"""

from __future__ import annotations

import html
import re

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PolyCollection

from bridge_hsct.book.build import DEFAULT_DATA, Parameters, build
from bridge_hsct.book.chapter import open_chapter
from bridge_hsct.cohort.endpoints import derive
from bridge_hsct.paper import literature as lit
from bridge_hsct.paper.cox_table import cox_display, render_cox_table, univariate_cox_table
from bridge_hsct.paper.gvhd import estimates_display, figure4
from bridge_hsct.paper.iptw import (
    hazard_ratio_display,
    iptw,
    iptw_outcomes,
    sensitivity_display,
    weighting_sensitivity,
)
from bridge_hsct.paper.multivariate import multivariate_table
from bridge_hsct.paper.outcomes import (
    COMPETING_METHOD,
    DAY_100_MONTHS,
    endpoint_summary,
    estimate_text,
    summary_panel,
)
from bridge_hsct.paper.panels import Figure, make_panels
from bridge_hsct.paper.subgroups import FIGURE1, FIGURE3_COMPETING
from bridge_hsct.paper.table3 import (
    NEUTROPHIL_LANDMARK_DAYS,
    PLATELET_LANDMARK_DAYS,
    engraftment_figure,
)
from bridge_hsct.render.disclosure import NO_SUPPRESSION
from bridge_hsct.render.figures import km_panel
from bridge_hsct.render.formatting import ci_label, confidence_percent, result_alpha
from bridge_hsct.stats.competing import cumulative_incidence
from bridge_hsct.stats.survival import km_table, to_months

ALPHA = 0.1
LANDMARK = 12.0
OLD = re.compile(r"(?<![\d.])95%")
NEW = "90%"


def no_old_level(*texts) -> None:
    for text in texts:
        assert not OLD.search(str(text)), text


@pytest.fixture(scope="module")
def chapter(tmp_path_factory):
    return open_chapter(str(DEFAULT_DATA), "arm", None, tmp_path_factory.mktemp("labels"))


# ---------------------------------------------------------------------------------------------
# The helpers
# ---------------------------------------------------------------------------------------------
def test_the_level_is_written_from_alpha():
    assert confidence_percent(0.05) == "95%"
    assert confidence_percent(0.1) == "90%"
    assert confidence_percent(0.025) == "97.5%"
    assert ci_label(0.1) == "90% CI"
    with pytest.raises(ValueError):
        confidence_percent(0.0)


def test_a_result_has_one_alpha():
    assert result_alpha(pd.DataFrame({"alpha": [0.1, 0.1]})) == 0.1
    with pytest.raises(ValueError):
        result_alpha(pd.DataFrame({"alpha": [0.1, 0.05]}))
    with pytest.raises(KeyError):
        result_alpha(pd.DataFrame({"estimate": [0.5]}))


# ---------------------------------------------------------------------------------------------
# Results carry their level, and what prints them says it
# ---------------------------------------------------------------------------------------------
def test_summary_rows_carry_alpha_and_estimate_text_names_it(chapter):
    summary = endpoint_summary(chapter.data, "os", "arm", chapter.groups, LANDMARK, alpha=ALPHA)
    assert (summary["alpha"] == ALPHA).all()
    assert (summary["landmark_months"] == LANDMARK).all()
    words = estimate_text(summary.iloc[0], in_words=True)
    assert "(90% CI " in words
    no_old_level(words)
    default = endpoint_summary(chapter.data, "os", "arm", chapter.groups, LANDMARK)
    assert "(95% CI " in estimate_text(default.iloc[0], in_words=True)


def test_panel_captions_headers_notes_and_bullets_follow_alpha(chapter):
    panels = make_panels(chapter, [FIGURE1[0], FIGURE1[2], FIGURE3_COMPETING[1]], LANDMARK,
                         ALPHA)
    assert all(p.drawn for p in panels)
    for panel in panels:
        text = panel.caption
        assert "shaded: 90% pointwise" in text and "12 months" in text
        no_old_level(text)
    assert "At 12 months, % (90% CI)" in panels[1].caption
    figure = Figure(panels, disclosure=chapter.disclosure)
    table = figure.table()
    assert "At 12 months, % (90% CI)" in table.display.columns
    assert "Median, months (90% CI)" in table.display.columns
    assert any("90% log-log" in note for note in table.notes)
    no_old_level(*table.display.columns, *table.notes, figure.describe())
    assert "90% CI" in figure.describe()
    assert (table.numbers["alpha"] == ALPHA).all()


def test_figure4_captions_and_estimate_headers_follow_alpha(chapter):
    figure = figure4(chapter.data, "arm", chapter.groups, LANDMARK, ALPHA,
                     disclosure=NO_SUPPRESSION)
    assert figure.alpha == ALPHA and figure.panels
    for result in figure.panels:
        assert "shaded: pointwise 90% CI" in result.caption
        no_old_level(result.caption)
    display = estimates_display(figure)
    assert {"1 − KM, % (90% CI)", "Aalen–Johansen, % (90% CI)"} <= set(display.columns)
    no_old_level(*display.columns)
    estimates = figure.estimates()
    assert (estimates["alpha"] == ALPHA).all()
    # acute GVHD at the paper's fixed day 100, chronic GVHD at the chapter's landmark
    chronic = estimates["endpoint"] == "cgvhd"
    assert (estimates.loc[chronic, "landmark_months"] == LANDMARK).all()
    assert (estimates.loc[~chronic, "landmark_months"] == DAY_100_MONTHS).all()


def test_supplementary_figure5_reads_its_own_fixed_days_and_follows_alpha(chapter):
    figure = engraftment_figure(chapter.data, "arm", chapter.groups, ALPHA,
                                landmark_months=LANDMARK, disclosure=NO_SUPPRESSION)
    estimates = figure.estimates()
    days = sorted(set(np.round(estimates["landmark_months"] * 365.25 / 12, 6)))
    assert days == [NEUTROPHIL_LANDMARK_DAYS, PLATELET_LANDMARK_DAYS]
    other = engraftment_figure(chapter.data, "arm", chapter.groups, ALPHA,
                               landmark_months=24.0, disclosure=NO_SUPPRESSION).estimates()
    pd.testing.assert_frame_equal(estimates, other)
    display = estimates_display(figure, whole_rows=True)
    assert "Aalen–Johansen, % (90% CI)" in display.columns
    no_old_level(*display.columns, *(r.caption for r in figure.panels))


def test_cox_tables_follow_alpha(chapter):
    table = univariate_cox_table(chapter.data, "os", "arm", chapter.groups, ALPHA,
                                 disclosure=NO_SUPPRESSION)
    assert (table.numbers["alpha"] == ALPHA).all()
    shown = cox_display(table.numbers)
    assert "HR (90% CI)" in shown["display"].columns
    no_old_level(*shown["display"].columns)
    rendered = render_cox_table(table, "overall survival").as_raw_html()
    assert "Wald 90% CI" in rendered and "HR (90% CI)" in rendered
    no_old_level(rendered)


def test_table2_columns_notes_and_numbers_follow_alpha(chapter):
    table2 = multivariate_table(chapter.data, ALPHA, disclosure=NO_SUPPRESSION)
    assert table2.alpha == ALPHA
    assert {"Cox HR (90% CI)", "Firth HR (90% CI)"} <= set(table2.display.columns)
    assert {"Univariate HR (90% CI)", "Final model HR (90% CI), P"} <= set(
        table2.selection.display.columns)
    note = table2.methods_note()
    assert "Wald 90% CI" in note and "profile penalised-likelihood 90% CI" in note
    no_old_level(*table2.display.columns, *table2.selection.display.columns, note,
                 *table2.notes)
    assert (table2.numbers["alpha"] == ALPHA).all()
    assert (table2.selection.numbers["alpha"] == ALPHA).all()


def test_iptw_tables_follow_alpha(chapter):
    weighting = iptw(chapter.data, "arm", chapter.groups)
    outcomes = iptw_outcomes(chapter.data, weighting, landmark_months=LANDMARK, alpha=ALPHA)
    assert (outcomes["hazard_ratios"]["alpha"] == ALPHA).all()
    display = hazard_ratio_display(outcomes, chapter.groups)
    assert "HR (90% CI)" in display.columns
    sensitivity = weighting_sensitivity(chapter.data, "arm", chapter.groups,
                                        endpoints=("os",), penalties=(1.0,),
                                        trims=((0.0, 100.0),), alpha=ALPHA)
    shown = sensitivity_display(sensitivity, disclosure=NO_SUPPRESSION)
    assert "HR (90% CI), robust" in shown.columns
    no_old_level(*display.columns, *shown.columns)


def test_literature_computed_intervals_follow_alpha_published_ones_stay_95(chapter):
    published = lit.load_literature()
    # a source that printed an interval: it stays the source's 95% CI, and says so
    with_ci = published.iloc[[4]].assign(ci_lower=60.0, ci_upper=80.0, se=np.nan)
    literature = pd.concat([published, with_ci.assign(arm="Other arm")], ignore_index=True)
    cohort = lit.cohort_estimates(chapter.data, "arm", chapter.groups, literature, ALPHA)
    table = lit.comparison_table(literature, cohort)
    computed = table[(table["source"] == lit.COMPUTED) & table["ci_lower"].notna()]
    assert len(computed) and (computed["ci_level"] == NEW).all()
    assert set(table.loc[table["source"] == lit.PUBLISHED, "ci_level"]) == {"", "95%"}
    rows = lit.forest_rows(table, ALPHA)
    text = lit.forest_markdown({"png": "f.png", "svg": "f.svg"}, rows, literature, ALPHA)
    notes = " ".join(lit.comparison_notes(table))
    for words in (text, notes):
        assert "90%" in words
        assert [m.start() for m in OLD.finditer(words)] == [
            m.start() + len("published ") for m in re.finditer(r"published 95%", words)]
        assert "published 95%" in words


# ---------------------------------------------------------------------------------------------
# Figure bands and in-panel labels
# ---------------------------------------------------------------------------------------------
def _bands(fig) -> list[np.ndarray]:
    return [c.get_paths()[0].vertices for c in fig.axes[0].collections
            if isinstance(c, PolyCollection)]


def _expected_band(time, lower, upper, start) -> np.ndarray:
    """The vertices :func:`figures.km_panel` should draw for this band."""
    t = np.concatenate(([0.0], to_months(np.asarray(time, float))))
    lo = np.nan_to_num(np.concatenate(([start], lower)), nan=start)
    hi = np.nan_to_num(np.concatenate(([start], upper)), nan=start)
    fig, ax = plt.subplots()
    try:
        return ax.fill_between(t, lo, hi, step="post").get_paths()[0].vertices
    finally:
        plt.close(fig)


def test_km_panel_bands_are_the_intervals_at_alpha(chapter):
    endpoint = derive(chapter.data, "os")
    time, event = endpoint["time"].to_numpy(float), endpoint["cause"].to_numpy() == 1
    fig = km_panel(endpoint, None, None, kind="survival", title="OS", ylabel="OS",
                   alpha=ALPHA, disclosure=NO_SUPPRESSION)
    try:
        [drawn] = _bands(fig)
    finally:
        plt.close(fig)
    at_alpha, at_default = (km_table(time, event, a) for a in (ALPHA, 0.05))
    expected = _expected_band(at_alpha["time"], at_alpha["lower"], at_alpha["upper"], 1.0)
    default = _expected_band(at_default["time"], at_default["lower"], at_default["upper"],
                             1.0)
    assert drawn.shape == expected.shape
    np.testing.assert_allclose(drawn, expected)
    assert not np.allclose(drawn, default)  # the test can tell the two levels apart


def test_summary_panel_draws_and_labels_the_summary_level(chapter):
    """The chapters' path: the bands and the in-panel label follow the summary's alpha
    (competing risks, by group: Aalen–Johansen intervals of each group)."""
    data = chapter.data
    summary = endpoint_summary(data, "nrm", "arm", chapter.groups, LANDMARK,
                               COMPETING_METHOD, alpha=ALPHA)
    fig = summary_panel(summary, data, title="B  NRM", ylabel="Cumulative incidence",
                        disclosure=NO_SUPPRESSION)
    try:
        drawn = _bands(fig)
        label = "\n".join(t.get_text() for t in fig.axes[0].texts)
    finally:
        plt.close(fig)
    assert "At 12 months, % (90% CI)" in label
    no_old_level(label)
    endpoint = derive(data, "nrm")
    assert len(drawn) == len(chapter.groups)
    for band, group in zip(drawn, chapter.groups, strict=True):
        part = endpoint[data["arm"] == group]
        curve = cumulative_incidence(part["time"], part["cause"], alpha=ALPHA).table
        np.testing.assert_allclose(
            band, _expected_band(curve["time"], curve["lower"], curve["upper"], 0.0))


# ---------------------------------------------------------------------------------------------
# The whole book at alpha = 0.1 and a 12-month landmark
# ---------------------------------------------------------------------------------------------
EXEMPT_LEVEL_PAGES = {"calibration"}  # the bundled cohort against the paper's 95% targets
PUBLISHED_LEVEL_PAGES = {"literature"}  # "95%" only as "published 95%"
PAPER_LANDMARK_PAGES = {"audit", "inconsistencies", "calibration"}
LANDMARK_PAGES = {"os_pfs", "grfs", "nrm", "gvhd", "iptw", "results"}
INTERVAL_PAGES = {"os_pfs", "grfs", "nrm", "gvhd", "engraftment_infection", "iptw", "results",
                  "literature"}
LEVEL_WORDS = re.compile(r"(?<![\d.])(\d+(?:\.\d+)?)% ?(?=CI|confidence|pointwise|log-log|"
                         r"interval)")
OLD_LANDMARK = re.compile(r"\b24 months\b|\b24-month\b|\b2-year\b|\btwo-year\b|\b2 years\b")
EXEMPT_CSV = {"literature_context.csv", "synthetic_cohort_calibration.csv"}


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("settings") / "site"
    build(out, Parameters(alpha=ALPHA, landmark_months=LANDMARK), log=lambda *a, **k: None,
          cache=None)
    return out


def visible_text(page) -> str:
    raw = page.read_text(encoding="utf-8")
    raw = re.sub(r"<(script|style)\b.*?</\1>", " ", raw, flags=re.S)
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", raw)))


@pytest.fixture(scope="module")
def pages(site) -> dict[str, str]:
    return {p.stem: visible_text(p) for p in sorted(site.glob("*.html"))
            if p.stem not in {"genindex", "search"}}


def test_every_chapter_page_was_built(pages):
    assert INTERVAL_PAGES | LANDMARK_PAGES | PAPER_LANDMARK_PAGES <= set(pages)


def test_no_page_says_95_percent_except_published_intervals(pages):
    for name, text in pages.items():
        if name in EXEMPT_LEVEL_PAGES:
            continue
        found = [text[max(0, m.start() - 60):m.end() + 30] for m in OLD.finditer(text)]
        if name in PUBLISHED_LEVEL_PAGES:
            found = [f for f in found if "published 95%" not in f]
        assert not found, (name, found)


def test_every_named_level_is_90_percent(pages):
    for name, text in pages.items():
        if name in EXEMPT_LEVEL_PAGES:
            continue
        levels = {m.group(1) for m in LEVEL_WORDS.finditer(text)
                  if not text[:m.start()].endswith("published ")}
        assert levels <= {"90"}, (name, levels)
        if name in INTERVAL_PAGES:
            assert levels == {"90"}, (name, "no interval names its level")


def test_the_landmark_is_12_months_everywhere_but_where_the_paper_is_quoted(pages):
    for name, text in pages.items():
        if name in LANDMARK_PAGES:
            assert "12 months" in text, name
        if name not in PAPER_LANDMARK_PAGES:
            found = [text[max(0, m.start() - 60):m.end() + 30]
                     for m in OLD_LANDMARK.finditer(text)]
            assert not found, (name, found)


@pytest.fixture(scope="module")
def downloads(site) -> dict[str, pd.DataFrame]:
    files = sorted((site / "_downloads").rglob("*.csv"))
    assert len({f.name for f in files}) == len(files)
    return {f.name: pd.read_csv(f, keep_default_na=False, na_values=[""]) for f in files}


def test_no_csv_header_says_95(downloads):
    for name, frame in downloads.items():
        assert not [c for c in frame.columns if "95" in c], name


def test_every_csv_with_intervals_carries_its_level(downloads):
    interval = re.compile(r"(^|_)(lower|upper)$")
    checked = set()
    for name, frame in downloads.items():
        if name in EXEMPT_CSV or not any(interval.search(c) for c in frame.columns):
            continue
        checked.add(name)
        if "ci_level" in frame:
            levels = frame.groupby("source")["ci_level"].agg(lambda s: set(s.dropna()))
            assert levels[lit.COMPUTED] == {NEW}, name
            assert levels[lit.PUBLISHED] <= {"95%"}, name
            continue
        assert "alpha" in frame, name
        assert (frame["alpha"].dropna() == ALPHA).all() and frame["alpha"].notna().any(), name
    assert {"figure1_estimates.csv", "figure4_estimates.csv", "table2.csv",
            "table2_stepwise.csv", "cox_univariate_os.csv", "iptw_hazard_ratios.csv",
            "iptw_sensitivity.csv", "literature_comparison.csv",
            "supplementary_figure5_estimates.csv"} <= checked


def test_results_numbers_name_the_level_of_their_bounds(downloads):
    numbers = downloads["results_numbers.csv"]
    bounds = numbers[numbers["quantity"].str.contains(r"\.(?:median_)?(?:lower|upper)$")]
    assert len(bounds) and bounds["unit"].str.contains("90% CI bound").all()


def test_landmark_columns_hold_12_months_or_a_fixed_landmark(downloads):
    fixed = {LANDMARK, DAY_100_MONTHS, float(to_months(NEUTROPHIL_LANDMARK_DAYS)),
             float(to_months(PLATELET_LANDMARK_DAYS))}
    seen = set()
    for name, frame in downloads.items():
        if "landmark_months" not in frame:
            continue
        values = set(frame["landmark_months"].dropna())
        assert all(any(np.isclose(v, f) for f in fixed) for v in values), (name, values)
        seen |= values
    assert LANDMARK in seen

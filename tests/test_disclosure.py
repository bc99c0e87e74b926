"""Small-cell suppression: counts of 1 to k − 1 never appear, in the functions or the site."""

import html
import json
import re

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from bridge_hsct.book.chapter import Chapter
from bridge_hsct.cohort.endpoints import derive
from bridge_hsct.paper.panels import GROUPS, PanelEngine, figure_panel
from bridge_hsct.paper.table1 import baseline_table
from bridge_hsct.paths import DEFAULT_DATA
from bridge_hsct.render import disclosure
from bridge_hsct.render.descriptive import n_percent
from bridge_hsct.render.figures import km_panel
from bridge_hsct.render.formatting import group_header
from bridge_hsct.render.tables import save_table
from conftest import page_text, path_text, site_files, small_cohort

K = 5
SUPPRESSED = disclosure.Disclosure(K)


def test_counts_below_k_are_hidden_with_their_percentage():
    assert [n_percent(k, 36, SUPPRESSED) for k in (0, 1, 4, 5)] == \
        ["0 (0.0%)", "< 5", "< 5", "5 (13.9%)"]
    assert SUPPRESSED.count_text(12345, thousands=True) == "12,345"


def test_off_by_default_and_bad_thresholds_refused():
    assert disclosure.Disclosure().min_cell_count == 0
    assert n_percent(1, 36, disclosure.NO_SUPPRESSION) == "1 (2.8%)"
    for bad in (-1, None, 2.5, True):
        with pytest.raises(ValueError, match="min_cell_count"):
            disclosure.Disclosure(bad)


@pytest.mark.parametrize("k", [K, 0])
def test_a_section_prints_through_the_disclosure_it_is_handed(tmp_path, k):
    """Table 1 and the numbers at risk under a figure, each computed from the chapter it is
    handed: three patients are ``< 5`` with a threshold of 5 and ``3`` without."""
    chapter = Chapter(small_cohort(), "arm", ["Alpha", "Beta"], tmp_path,
                      disclosure=disclosure.Disclosure(k))
    table1 = baseline_table(chapter.data, "arm", chapter.groups,
                            disclosure=chapter.disclosure)
    panel = PanelEngine.for_chapter(chapter).panel(figure_panel("1", "C", "os", GROUPS))
    three = "< 5" if k else "3"
    # 3 men of 6 patients, 3 patients in each arm (and at risk in it at the transplant)
    male = table1.display.set_index("Characteristic").loc["Male"].iloc[0]
    assert male == ("< 5" if k else "3 (50.0%)")
    assert group_header("Alpha", three) in table1.display.columns
    html_table = html.unescape(table1.render("Table 1").as_raw_html())
    assert ("3 (50.0%)" in html_table) == (not k)
    written = pd.read_csv(table1.save(tmp_path, "table1"))
    men = written[(written["level"] == "Male") & (written["group"] == "whole")]
    assert men["count"].tolist() == ["< 5" if k else 3]
    at_risk = [m.group(2) for m in AT_RISK.finditer(path_text(panel.files["svg"]))
               if m.group(1).lower() not in TICK_COLOURS]
    assert ("3" in at_risk) == (not k)
    assert f"(n = {three}," in panel.caption


def test_a_download_in_a_bare_folder_needs_a_disclosure(tmp_path):
    """A folder, unlike a chapter, has no disclosure: saving there without one fails rather
    than writing small counts."""
    with pytest.raises(TypeError, match="needs a disclosure"):
        save_table(pd.DataFrame({"n": [3]}), tmp_path, "counts")
    assert not list(tmp_path.iterdir())
    written = pd.read_csv(save_table(pd.DataFrame({"n": [3]}), tmp_path, "counts",
                                     disclosure=SUPPRESSED))
    assert written["n"].tolist() == ["< 5"]


def test_downloads_hide_small_counts_and_the_percentages_beside_them():
    frame = pd.DataFrame({"level": ["a", "b", "c"], "n": [3, 0, 30],
                          "events": [10, 2, 12], "percent": [10.0, 0.0, 100.0],
                          "median": [1.5, 2.0, 3.0]})
    shown = SUPPRESSED.suppress_counts(frame)
    assert shown["n"].tolist() == ["< 5", 0, 30]
    assert shown["events"].tolist() == [10, "< 5", 12]
    assert shown["percent"].tolist() == ["< 5", "< 5", 100.0]
    assert shown["median"].tolist() == [1.5, 2.0, 3.0], "not a count: untouched"


def test_sums_of_weights_go_with_the_patients_of_their_row():
    frame = pd.DataFrame({"group": ["a", "b", "c"], "n": [3, 30, 40],
                          "weighted_n": [12.4, 2.2, 41.0], "events": [2, 10, 3],
                          "weighted_events": [7.5, 1.1, 2.9]})
    shown = SUPPRESSED.suppress_counts(frame)
    assert shown["weighted_n"].tolist() == ["< 5", 2.2, "< 5"], "hidden with n or events"
    assert shown["weighted_events"].tolist() == ["< 5", 1.1, "< 5"]


def test_numbers_at_risk_under_a_figure():
    data = pd.read_csv(DEFAULT_DATA)
    endpoint = derive(data, "os")
    fig = km_panel(endpoint, data["arm"], ["Blinatumomab", "CAR-T"], kind="survival",
                   title="A", ylabel="OS", disclosure=SUPPRESSED)
    shown = [t.get_text() for ax in fig.axes for t in ax.texts]
    plt.close(fig)
    numbers = [int(s) for s in shown if s.isdigit()]
    assert "< 5" in shown, "the blinatumomab arm (9 patients) falls below 5"
    assert not [n for n in numbers if 0 < n < K]


#: A count of 1 to K − 1 in words: "3 of 27", "of 2", "n = 4", "1 patient", "2 (5.6%)"...
SMALL = r"(?<![\d.,])([1-4])(?![\d.,]?\d)"
SMALL_COUNT = re.compile("|".join([
    rf"{SMALL} of \d", rf"\bof {SMALL}(?! (months?|years?|days?)\b)", rf"\bn = {SMALL}",
    rf"{SMALL} (patients?|events?|deaths?|relapses?|cases?|weights?)\b",
    rf"{SMALL} (raised|lowered)\b", rf"{SMALL} \(\d+(\.\d+)?%\)", rf"{SMALL} in (the|all)\b",
]))
#: An at-risk number under a figure: matplotlib writes each text into the SVG as a comment,
#: then draws it in the group's colour (tick labels are black or dark grey).
#: A number at risk drawn as SVG text: its colour (a group's, not an axis tick's) and value.
AT_RISK = re.compile(r'<text style="[^"]*fill: (#[0-9a-fA-F]{6})[^"]*"[^>]*>([1-4])</text>')
TICK_COLOURS = {"#000000", "#262626", "#333333"}
ROOT = DEFAULT_DATA.parents[1]


def _fold(text: str) -> str:
    return html.unescape(re.sub(r"\s+", " ", text))


def published_text() -> str:
    """The paper's own numbers and the literature's: facts about published cohorts, which a
    page may quote whatever the threshold."""
    return _fold("\n".join((ROOT / "data" / name).read_text(encoding="utf-8")
                            for name in ("published_values.csv", "literature_context.csv")))


def notebook_outputs(path) -> str:
    """The text of every output of a notebook (its code is not shown data)."""
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    texts = []
    for output in (o for c in cells for o in c.get("outputs", [])):
        for value in [output.get("text", ""), *output.get("data", {}).values()]:
            texts.append("".join(value) if isinstance(value, list) else str(value))
    return "\n".join(texts)


def small_counts(site) -> list[tuple[str, str]]:
    """Every count below K that a page, caption, figure, download or notebook shows."""
    published, found = published_text(), []
    for path in site_files(site):
        name = path.relative_to(site).as_posix()
        if path.suffix in {".html", ".ipynb", ".md"}:
            raw = notebook_outputs(path) if path.suffix == ".ipynb" else path_text(path)
            text = _fold(re.sub(r"<[^>]+>", " ", re.sub(
                r"<(script|style)\b.*?</\1>", " ", raw, flags=re.S)))
            for match in SMALL_COUNT.finditer(text):
                context = text[max(0, match.start() - 25):match.end()]
                if context.strip() not in published:
                    found.append((name, text[max(0, match.start() - 60):match.end() + 20]))
        elif path.suffix == ".csv":
            frame = pd.read_csv(path, dtype=str)
            hidden_row = frame.eq(f"< {K}").any(axis=1)
            for column in frame.columns:
                if disclosure.WEIGHTED_COLUMN.search(column):
                    beside = frame[column][hidden_row & frame[column].ne(f"< {K}")
                                           & frame[column].notna()]
                    found += [(name, f"{column} = {v} beside a hidden count") for v in beside]
                elif disclosure.COUNT_COLUMN.search(column):
                    values = pd.to_numeric(frame[column], errors="coerce")
                    small = values[(values > 0) & (values < K)]
                    found += [(name, f"{column} = {v:g}") for v in small]
        elif path.suffix == ".svg":
            found += [(name, f"number at risk {m.group(2)}")
                      for m in AT_RISK.finditer(path_text(path))
                      if m.group(1).lower() not in TICK_COLOURS]
    return found


def test_the_shared_book_shows_no_small_count_anywhere(hostile_site):
    assert "< 5" in html.unescape(page_text(hostile_site / "baseline.html"))
    assert not small_counts(hostile_site)


def test_the_scan_finds_small_counts_where_suppression_is_off(built_site):
    found = small_counts(built_site)
    kinds = {name.rsplit(".", 1)[-1] for name, _ in found}
    assert {"html", "csv", "svg", "ipynb"} <= kinds, kinds


def test_the_shared_audit_hides_small_recomputed_counts(hostile_site):
    audit = next(p for p in site_files(hostile_site) if p.name == "audit.csv")
    frame = pd.read_csv(audit)
    counts = frame[frame["statistic"].isin(["count", "n"])]
    recomputed = counts["recomputed"].dropna()
    assert not recomputed[(recomputed > 0) & (recomputed < K)].any()
    assert counts["note"].fillna("").str.contains("suppressed").any()
    assert np.isfinite(recomputed).all()


def test_chapter_sentences_hide_small_counts(tmp_path):
    """The computed sentences under Figure 4 and Table 3 (each count of the whole cohort of
    36 is below a threshold of 40)."""
    from bridge_hsct.cohort.validate import load_cohort
    from bridge_hsct.paper.gvhd import describe_figure4, figure4
    from bridge_hsct.paper.table3 import describe_engraftment, transplant_outcomes_table

    data = load_cohort(DEFAULT_DATA)
    groups = sorted(data["arm"].unique())
    forty = disclosure.Disclosure(40)
    gvhd = describe_figure4(figure4(data, "arm", groups, 24.0, output_dir=tmp_path,
                                    disclosure=forty))
    engraftment = describe_engraftment(transplant_outcomes_table(data, "arm", groups,
                                                                 disclosure=forty))
    assert "(< 40 events in < 40 patients)" in gvhd
    assert not re.search(r"\(\d+ events|in \d+ patients\)", gvhd)
    assert "< 40 patients engrafted" in engraftment
    assert not re.search(r"(?<!< )\b\d+ patients engrafted", engraftment)

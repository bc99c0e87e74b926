"""Small-cell suppression: counts of 1 to k − 1 never appear, in the functions or the site."""

import html
import re

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from bridge_hsct import disclosure
from bridge_hsct.build import DEFAULT_DATA, Parameters, build
from bridge_hsct.descriptive import n_percent
from bridge_hsct.endpoints import derive
from bridge_hsct.figures import km_panel
from conftest import page_text, site_files

K = 5


@pytest.fixture
def threshold():
    disclosure.set_min_cell_count(K)
    yield K
    disclosure.set_min_cell_count(0)


def test_counts_below_k_are_hidden_with_their_percentage(threshold):
    assert [n_percent(k, 36) for k in (0, 1, 4, 5)] == \
        ["0 (0.0%)", "< 5", "< 5", "5 (13.9%)"]
    assert disclosure.count_text(12345, thousands=True) == "12,345"


def test_off_by_default_and_bad_thresholds_refused():
    assert disclosure.min_cell_count() == 0 and n_percent(1, 36) == "1 (2.8%)"
    with pytest.raises(ValueError, match="min_cell_count"):
        disclosure.set_min_cell_count(-1)


def test_downloads_hide_small_counts_and_the_percentages_beside_them(threshold):
    frame = pd.DataFrame({"level": ["a", "b", "c"], "n": [3, 0, 30],
                          "events": [10, 2, 12], "percent": [10.0, 0.0, 100.0],
                          "median": [1.5, 2.0, 3.0]})
    shown = disclosure.suppress_counts(frame)
    assert shown["n"].tolist() == ["< 5", 0, 30]
    assert shown["events"].tolist() == [10, "< 5", 12]
    assert shown["percent"].tolist() == ["< 5", "< 5", 100.0]
    assert shown["median"].tolist() == [1.5, 2.0, 3.0], "not a count: untouched"


def test_numbers_at_risk_under_a_figure(threshold):
    data = pd.read_csv(DEFAULT_DATA)
    endpoint = derive(data, "os")
    fig = km_panel(endpoint, data["arm"], ["Blinatumomab", "CAR-T"], kind="survival",
                   title="A", ylabel="OS")
    shown = [t.get_text() for ax in fig.axes for t in ax.texts]
    plt.close(fig)
    numbers = [int(s) for s in shown if s.isdigit()]
    assert "< 5" in shown, "the blinatumomab arm (9 patients) falls below 5"
    assert not [n for n in numbers if 0 < n < K]


SMALL_CELL = re.compile(r"(?<![\d.,])([1-4]) \(\d+\.\d%\)|(?<![\d.,<] )\b([1-4]) of \d+")


@pytest.fixture(scope="module")
def suppressed_site(tmp_path_factory):
    out = tmp_path_factory.mktemp("shared") / "site"
    build(out, Parameters(data_path=str(DEFAULT_DATA), min_cell_count=K),
          log=lambda *a, **k: None, cache=None)
    return out


def test_the_shared_book_shows_no_small_count(suppressed_site):
    for page in ("baseline.html", "engraftment_infection.html", "results.html"):
        text = html.unescape(page_text(suppressed_site / page))
        assert "< 5" in text, page
        assert not SMALL_CELL.search(text), (page, SMALL_CELL.search(text).group(0))
    for path in site_files(suppressed_site):
        if path.suffix != ".csv":
            continue
        frame = pd.read_csv(path, dtype=str)
        for column in frame.columns:
            if not disclosure.COUNT_COLUMN.search(column):
                continue
            values = pd.to_numeric(frame[column], errors="coerce")
            small = values[(values > 0) & (values < K)]
            assert small.empty, f"{path.name}: {column} = {small.tolist()}"


def test_the_shared_audit_hides_small_recomputed_counts(suppressed_site):
    audit = next(p for p in site_files(suppressed_site) if p.name == "audit.csv")
    frame = pd.read_csv(audit)
    counts = frame[frame["statistic"].isin(["count", "n"])]
    recomputed = counts["recomputed"].dropna()
    assert not recomputed[(recomputed > 0) & (recomputed < K)].any()
    assert counts["note"].fillna("").str.contains("suppressed").any()
    assert np.isfinite(recomputed).all()

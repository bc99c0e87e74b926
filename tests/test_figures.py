"""The survival and incidence panels as a reader sees them: estimates that cover no data,
text legible at phone width, days where events come within weeks, censor marks, real SVG text.

Checked on the bundled cohort and on simulated cohorts of 2, 3 and 4 groups, through the
chapters' own path (:func:`bridge_hsct.paper.outcomes.summary_panel`).
"""

from __future__ import annotations

import contextlib
import re

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from bridge_hsct.cohort.endpoints import derive  # noqa: E402
from bridge_hsct.cohort.simulate import ARMS, Arm, simulate_cohort  # noqa: E402
from bridge_hsct.paper.outcomes import (  # noqa: E402
    COMPETING_METHOD,
    PAPER_METHOD,
    endpoint_summary,
    summary_panel,
)
from bridge_hsct.render.disclosure import NO_SUPPRESSION
from bridge_hsct.render.figures import (  # noqa: E402
    FONT,
    PNG_DPI,
    WIDTH,
    km_panel,
    save_figure,
    time_axis,
)

FOUR_ARMS = (*ARMS, Arm("Chemotherapy", 0.15, relapse_hazard_ratio=1.6))


def _cohort(groups: int) -> pd.DataFrame:
    arms = {2: ARMS[:2], 3: ARMS, 4: FOUR_ARMS}[groups]
    return simulate_cohort(240, seed=7 + groups, arms=arms)


def _panel(data: pd.DataFrame, endpoint: str, method: str = PAPER_METHOD,
           whole: bool = False, horizon: float | None = None):
    groups = list(dict.fromkeys(data["arm"]))
    summary = endpoint_summary(data, endpoint, "arm", groups, 24.0, method)
    return summary_panel(summary, data, title="X  A panel", ylabel="Estimate",
                         whole=whole, horizon_months=horizon, disclosure=NO_SUPPRESSION)


def _data_points(ax) -> np.ndarray:
    """Every plotted point of the curves and censor marks, in data coordinates."""
    points = [line.get_xydata() for line in ax.get_lines()
              if len(line.get_xdata()) and line.get_linestyle() != ":"]
    return np.concatenate(points)


def _estimate_boxes(fig) -> list:
    """Display-space extents of the header's artists (the estimates and the test)."""
    renderer = fig.canvas.get_renderer()
    artists = [a for ax in fig.axes for a in [*ax.texts, ax.get_legend()]
               if a is not None and a.get_gid() == "estimates"]
    return [a.get_window_extent(renderer) for a in artists]


def _covered(fig) -> list:
    """The data points (steps, censor marks) inside any estimate box, with the box."""
    ax = fig.axes[0]
    points = _data_points(ax)
    xlim, ylim = ax.get_xlim(), ax.get_ylim()
    visible = points[(points[:, 0] >= xlim[0]) & (points[:, 0] <= xlim[1])
                     & (points[:, 1] >= ylim[0]) & (points[:, 1] <= ylim[1])]
    covered = []
    for box in _estimate_boxes(fig):
        (x0, y0), (x1, y1) = ax.transData.inverted().transform(
            [[box.x0, box.y0], [box.x1, box.y1]])
        # steps are drawn between points: a box is over a curve when a horizontal run of it
        # passes under the box too, so the runs' heights are checked over the box's span
        inside = visible[(visible[:, 0] >= x0) & (visible[:, 0] <= x1)
                         & (visible[:, 1] >= y0) & (visible[:, 1] <= y1)]
        covered += [tuple(p) for p in inside]
        for line in ax.get_lines():
            x, y = line.get_xdata(), line.get_ydata()
            if line.get_linestyle() == ":" or len(x) < 2 or line.get_marker() == "|":
                continue
            before = np.searchsorted(x, x0, side="right") - 1
            if 0 <= before < len(y) and y0 <= y[before] <= y1 and x0 <= xlim[1]:
                covered.append((x0, y[before]))
    return covered


@contextlib.contextmanager
def _drawn(fig):
    """The figure drawn (so that text extents are known), closed after the block."""
    try:
        fig.canvas.draw()
        yield fig
    finally:
        plt.close(fig)


@pytest.mark.parametrize("groups", [2, 3, 4])
@pytest.mark.parametrize("endpoint,method", [("os", PAPER_METHOD), ("pfs", PAPER_METHOD),
                                             ("grfs", PAPER_METHOD),
                                             ("nrm", COMPETING_METHOD)])
def test_the_estimates_cover_no_curve_or_censor_mark(groups, endpoint, method):
    fig = _panel(_cohort(groups), endpoint, method)
    try:
        fig.canvas.draw()
        assert _estimate_boxes(fig), "the estimates are drawn"
        assert len(fig.axes[0].get_legend().get_texts()) == groups
        assert not _covered(fig)
    finally:
        plt.close(fig)


def test_the_check_finds_a_box_drawn_over_the_curves():
    """The overlap check can fail: a box put inside the axes, where the curves are."""
    fig = _panel(_cohort(3), "os")
    try:
        ax = fig.axes[0]
        ax.text(0.98, 0.04, "At 24 months\nA: 50%\nB: 40%\nC: 30%", transform=ax.transAxes,
                ha="right", va="bottom", gid="estimates")
        ax.text(0.5, 0.5, "over the middle", transform=ax.transAxes, gid="estimates")
        fig.canvas.draw()
        assert _covered(fig)
    finally:
        plt.close(fig)


def test_a_whole_cohort_panel_gives_its_estimate_above_the_axes():
    with _drawn(_panel(_cohort(2), "os", whole=True)) as fig:
        [text] = [t for t in fig.axes[0].texts if t.get_gid() == "estimates"]
        assert text.get_text().startswith("At 24 months, % (95% CI): ")
        assert fig.axes[0].get_legend() is None
        assert not _covered(fig)


def test_text_is_legible_at_phone_width():
    """At 342 px a 5-inch panel is scaled by 342 / 360: its 10-point text is ~9.5 px."""
    fig = _panel(_cohort(3), "os")
    try:
        width = fig.get_size_inches()[0]
        assert width == WIDTH
        scale = 342 / (width * 72)  # display px per point at phone width
        sizes = [t.get_fontsize() for ax in fig.axes for t in
                 [*ax.texts, *ax.get_xticklabels(), *ax.get_yticklabels()]]
        sizes += [t.get_fontsize() for t in fig.axes[0].get_legend().get_texts()]
        assert min(sizes) * scale >= 9, min(sizes)
        assert FONT * scale >= 9
    finally:
        plt.close(fig)


def test_early_events_are_drawn_in_days():
    assert time_axis(2.0).unit == "days"
    assert list(time_axis(2.0).ticks) == [0, 10, 20, 30, 40, 50, 60]
    assert time_axis(12.0).unit == "months"
    assert list(time_axis(84.0).ticks[:3]) == [0, 12, 24]
    data = _cohort(2)
    groups = list(dict.fromkeys(data["arm"]))
    summary = endpoint_summary(data, "neutrophil_engraftment", "arm", groups, 0.46,
                               COMPETING_METHOD)
    fig = summary_panel(summary, data, title="A", ylabel="Engraftment", horizon_months=2.0,
                        disclosure=NO_SUPPRESSION)
    try:
        ax = fig.axes[0]
        assert ax.get_xlabel() == "Days since HSCT"
        assert [t.get_text() for t in ax.get_xticklabels()][:3] == ["0", "10", "20"]
        endpoint = derive(data, "neutrophil_engraftment")
        events = endpoint.loc[endpoint["cause"] == 1, "time"]
        step_x = np.concatenate([line.get_xdata() for line in ax.get_lines()
                                 if line.get_marker() != "|" and line.get_linestyle() != ":"])
        # the curves jump at the event days themselves
        assert set(np.round(events.unique(), 6)) <= set(np.round(step_x, 6))
    finally:
        plt.close(fig)


def test_the_papers_incidence_marks_competing_events_as_censorings():
    """1 − Kaplan–Meier counts relapse or death before GVHD as censored: the panel marks
    them (Figure 4's caption promises ticks); Aalen–Johansen keeps them as events."""
    data = _cohort(2)
    endpoint = derive(data, "agvhd_2_4")
    censored = endpoint["cause"] == 0
    competing = endpoint["cause"] == 2
    assert competing.any()

    def marks(method):
        fig = km_panel(endpoint, None, None, kind="incidence", title="A", ylabel="CI",
                       method=method, horizon_months=1000, disclosure=NO_SUPPRESSION)
        try:
            return sum(len(line.get_xdata()) for line in fig.axes[0].get_lines()
                       if line.get_marker() == "|")
        finally:
            plt.close(fig)

    times = endpoint["time"]
    assert marks(PAPER_METHOD) == times[censored | competing].nunique()
    assert marks(COMPETING_METHOD) == times[censored].nunique()


def test_svg_text_is_text_and_png_is_200_dpi(tmp_path):
    fig = _panel(_cohort(2), "os")
    try:
        paths = save_figure(fig, tmp_path, "panel")
    finally:
        plt.close(fig)
    svg = paths["svg"].read_text(encoding="utf-8")
    texts = re.findall(r"<text\b[^>]*>([^<]*)</text>", svg)
    assert "Number at risk" in texts and "Months since HSCT" in texts
    assert "font-family: 'DejaVu Sans'" in svg and "sans-serif" in svg
    from PIL import Image

    with Image.open(paths["png"]) as png:
        assert png.size[0] == round(WIDTH * PNG_DPI)


@pytest.mark.parametrize("groups", [2, 3, 4])
def test_a_weighted_panel_keeps_its_hazard_ratios_clear_of_the_curves(groups):
    """The corner text (hazard ratios) sits in the header with the estimates, over no curve
    or censor mark; a weighted panel draws no band."""
    data = _cohort(groups)
    order = list(dict.fromkeys(data["arm"]))
    weights = np.random.default_rng(groups).uniform(0.3, 3.0, len(data))
    corner = "Hazard ratios, IPTW Cox, robust SE (95% CI):\n" + "\n".join(
        f"{g} vs {order[0]}: HR 0.85 (0.41–1.76), P = 0.660" for g in order[1:])
    fig = km_panel(derive(data, "os"), data["arm"], order, kind="survival", title="A  OS",
                   ylabel="Overall survival", heading="At 24 months, weighted %",
                   estimates={g: "75.10%" for g in order}, weights=weights, corner=corner,
                   landmark_months=24.0, disclosure=NO_SUPPRESSION)
    with _drawn(fig):
        texts = [t.get_text() for t in fig.axes[0].texts if t.get_gid() == "estimates"]
        assert any(t.startswith("Hazard ratios, IPTW Cox") for t in texts)
        assert not fig.axes[0].collections, "no confidence band on weighted curves"
        assert not _covered(fig)


def test_long_follow_up_keeps_the_ticks_apart():
    ticks = time_axis(156.0).ticks
    assert list(ticks[:3]) == [0, 24, 48] and len(ticks) <= 9
    assert list(time_axis(96.0).ticks[:3]) == [0, 12, 24]  # the paper's follow-up: yearly


def test_a_long_group_label_is_wrapped_inside_the_figure():
    """A group label wider than the left margin is wrapped at the numbers at risk, never
    cut at the figure's left edge, and each row stays level with its numbers."""
    rng = np.random.default_rng(1)
    long = "Blinatumomab plus low-intensity chemotherapy (mini-HCVD)"
    frame = pd.DataFrame({"time": rng.exponential(600, 60).round(),
                          "cause": rng.integers(0, 2, 60)})
    groups = pd.Series(np.where(rng.random(60) < 0.5, long, "CAR-T"))
    fig = km_panel(frame, groups, ["CAR-T", long], kind="survival", title="Overall survival",
                   ylabel="Probability", disclosure=NO_SUPPRESSION)
    try:
        fig.canvas.draw()
        risk = fig.axes[-1]
        labels = risk.get_yticklabels()
        assert re.sub(r"\s", "", labels[1].get_text()) == re.sub(r"\s", "", long)
        assert "\n" in labels[1].get_text() and "\n" not in labels[0].get_text()
        renderer = fig.canvas.get_renderer()
        assert all(t.get_window_extent(renderer).x0 >= 0 for t in labels)
        # the numbers of each row sit at its label's height
        for label in labels:
            row = [t for t in risk.texts if abs(t.get_position()[1] - label.get_position()[1])
                   < 1e-9]
            assert len(row) == len(risk.get_xticks())
    finally:
        plt.close(fig)

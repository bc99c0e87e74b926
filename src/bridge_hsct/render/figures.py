"""One figure function for every survival and cumulative-incidence panel of the book.

Each panel: step curves per group in months since HSCT (ticks every 12), censor marks,
optional confidence bands, the landmark estimates and the test's P value inside the panel,
and the numbers at risk in a table aligned under the x ticks.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from cycler import cycler  # noqa: E402

from ..stats.competing import cumulative_incidence, one_minus_km_incidence  # noqa: E402
from ..stats.survival import km_table, months_to_days, numbers_at_risk, to_months  # noqa: E402
from .disclosure import count_text  # noqa: E402
from .escaping import plot_text  # noqa: E402
from .formatting import format_p  # noqa: E402

# Okabe-Ito, colour-blind safe; a group keeps its colour on every page (by display order)
PALETTE = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000"]
WHOLE_COLOUR = "#333333"
MAX_CENSOR_MARKS = 200  # beyond this a group's censor marks would smear into a bar

#: The book's figure style as matplotlib settings: seaborn's "ticks" style and "paper"
#: context at 1.15 (what ``sns.set_theme(style="ticks", context="paper",
#: font_scale=1.15)`` sets, without setting it), no top or right spine, and a fixed SVG
#: hash salt so that two builds write the same SVG files.
STYLE = {
    **sns.axes_style("ticks"),
    **sns.plotting_context("paper", font_scale=1.15),
    "axes.prop_cycle": cycler(color=sns.color_palette("deep")),
    "font.family": ["sans-serif"],
    "font.sans-serif": ["Arial", "DejaVu Sans", "Liberation Sans", "Bitstream Vera Sans",
                        "sans-serif"],
    "image.cmap": "rocket",
    "svg.hashsalt": "bridge-hsct", "figure.dpi": 100,
    "axes.spines.top": False, "axes.spines.right": False,
}


def figure_style():
    """A ``with`` block drawing in the book's :data:`STYLE`, restoring the settings after."""
    return plt.rc_context(STYLE)


def put_figure_style_in_force() -> None:
    """Draw in the book's :data:`STYLE` from now on in this process.

    :func:`bridge_hsct.book.chapter.open_chapter` calls it for the figures of section
    modules that do not yet draw inside :func:`figure_style` (a notebook has no block to
    hold them); :func:`km_panel` and :func:`save_figure` hold it themselves.
    """
    plt.rcParams.update(STYLE)


@dataclass(frozen=True)
class Curve:
    """A step curve in months with its band and its censoring times."""

    label: str
    colour: str
    time: np.ndarray
    value: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    censor_time: np.ndarray
    censor_value: np.ndarray
    at_risk_time: np.ndarray
    at_risk_event: np.ndarray


def group_colours(groups: list) -> dict:
    """The colour of each group, by its position in the display order."""
    return {g: PALETTE[i % len(PALETTE)] for i, g in enumerate(groups)}


def _curve(label, colour, endpoint: pd.DataFrame, kind: str, method: str,
           alpha: float) -> Curve:
    time, cause = endpoint["time"].to_numpy(float), endpoint["cause"].to_numpy(int)
    if kind == "survival":
        table = km_table(time, cause == 1, alpha)
        value = table["survival"].to_numpy()
        start = 1.0
    else:
        estimate = cumulative_incidence if method == "aalen-johansen" else one_minus_km_incidence
        table = estimate(time, cause, alpha=alpha).table
        value = table["incidence"].to_numpy()
        start = 0.0
    t = np.concatenate(([0.0], to_months(table["time"].to_numpy())))
    v = np.concatenate(([start], value))
    lo = np.concatenate(([start], table["lower"].to_numpy()))
    hi = np.concatenate(([start], table["upper"].to_numpy()))
    censored = table["n_censored"].to_numpy() > 0
    return Curve(label, colour, t, v, lo, hi, t[1:][censored], v[1:][censored],
                 time, cause == 1)


def _draw(ax, curve: Curve, bands: bool) -> None:
    ax.step(curve.time, curve.value, where="post", color=curve.colour, lw=1.8)
    if bands:
        ax.fill_between(curve.time, np.nan_to_num(curve.lower, nan=curve.value[0]),
                        np.nan_to_num(curve.upper, nan=curve.value[0]), step="post",
                        color=curve.colour, alpha=0.12, lw=0)
    if 0 < len(curve.censor_time) <= MAX_CENSOR_MARKS:
        ax.plot(curve.censor_time, curve.censor_value, ls="none", marker="|", ms=8, mew=1.3,
                color=curve.colour)


def km_panel(endpoint: pd.DataFrame, groups: pd.Series | None, group_order: list | None,
             *, kind: str, title: str, ylabel: str, method: str = "1 - kaplan-meier",
             p_value: float | None = None, test_name: str = "log-rank",
             estimates: list[str] = (), bands: bool = True, horizon_months: float | None = None,
             landmark_months: float | None = None, alpha: float = 0.05) -> plt.Figure:
    """Draw one panel of a survival or cumulative-incidence figure.

    Parameters
    ----------
    endpoint : frame with ``time`` (days) and ``cause`` (see :mod:`bridge_hsct.cohort.endpoints`).
    groups : group of each patient, or None for the whole cohort.
    group_order : groups in display (and colour) order.
    kind : ``"survival"`` (Kaplan–Meier) or ``"incidence"``.
    title : panel title, e.g. ``"A  Overall survival"``.
    ylabel : y-axis label.
    method : for incidence: ``"1 - kaplan-meier"`` (the paper's) or ``"aalen-johansen"``.
    p_value, test_name : the between-group test shown in the panel.
    estimates : lines of text shown in the panel (e.g. the landmark estimates).
    bands : draw the pointwise confidence bands (log-log, at level ``1 - alpha``).
    horizon_months : right end of the x axis (default: the longest follow-up).
    landmark_months : draw a dotted vertical line at the landmark.
    alpha : one minus the confidence level of the bands; pass the ``alpha`` of the estimates
        printed in `estimates`, so that bands and numbers agree.

    Returns
    -------
    matplotlib.figure.Figure
        The panel with its numbers-at-risk table.
    """
    if groups is None:
        parts = [("All patients", WHOLE_COLOUR, endpoint)]
    else:
        colours = group_colours(group_order)
        parts = [(g, colours[g], endpoint[groups == g]) for g in group_order]
    curves = [_curve(label, colour, part, kind, method, alpha)
              for label, colour, part in parts if len(part)]
    horizon = horizon_months or max(float(c.time.max()) for c in curves)
    step = 12 if horizon > 36 else 6 if horizon > 12 else 3 if horizon > 4 else 1
    ticks = np.arange(0, horizon + 1e-9, step)

    with figure_style():  # the style is read as the figure is drawn
        fig = plt.figure(figsize=(7.2, 4.6 + 0.28 * len(curves)))
        grid = fig.add_gridspec(2, 1, height_ratios=[4.2, 0.45 + 0.3 * len(curves)], hspace=0.35)
        ax = fig.add_subplot(grid[0])
        for curve in curves:
            _draw(ax, curve, bands)
        if landmark_months:
            ax.axvline(landmark_months, color="#999999", lw=0.8, ls=":")
        ax.set(xlim=(0, horizon * 1.02), ylim=(-0.02, 1.04), xticks=ticks, ylabel=ylabel,
               xlabel="Months since HSCT")
        ax.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0, decimals=0))
        ax.set_title(plot_text(title), loc="left", fontweight="bold")
        lines = [plot_text(line) for line in estimates]
        if p_value is not None:
            lines.append(f"{test_name} P = {format_p(p_value)}")
        if lines:
            y = 0.04 if kind == "survival" else 0.96
            ax.text(0.98, y, "\n".join(lines), transform=ax.transAxes, ha="right",
                    va="bottom" if kind == "survival" else "top", fontsize=9,
                    bbox=dict(boxstyle="round,pad=0.3", fc="white", ec="#cccccc", alpha=0.9))
        if groups is not None:  # handles given: a label starting with "_" is still shown
            handles = [matplotlib.lines.Line2D([], [], color=c.colour, lw=1.8) for c in curves]
            ax.legend(handles, [plot_text(c.label) for c in curves],
                      loc="lower left" if kind == "survival" else "upper left", frameon=False)

        risk = fig.add_subplot(grid[1], sharex=ax)
        days = months_to_days(ticks)
        widest = 1
        for row, curve in enumerate(curves):
            counts = numbers_at_risk(curve.at_risk_time, curve.at_risk_event, days)
            y = len(curves) - 1 - row
            for x, n in zip(ticks, counts, strict=True):
                shown = count_text(n, thousands=True)
                widest = max(widest, len(shown))
                risk.text(x, y, shown, ha="center", va="center", fontsize=9, color=curve.colour)
        risk.set_yticks(range(len(curves)), [plot_text(c.label) for c in reversed(curves)],
                        fontsize=9)
        risk.set_ylim(-0.6, len(curves) - 0.4)
        risk.set_title("Number at risk", loc="left", fontsize=9)
        risk.tick_params(axis="x", labelbottom=False, length=0)
        # the first column is centred on x = 0: keep the group labels clear of its half-width
        risk.tick_params(axis="y", length=0, pad=6 + 2.9 * widest)
        for side in ("left", "bottom", "top", "right"):
            risk.spines[side].set_visible(False)
        # room on the left for the longest group label, its padding and the y-axis label (at
        # most half the width: a longer label is cut by the figure's edge, not the plot)
        labels = max(len(plot_text(c.label)) for c in curves)
        left = 0.05 + 0.0105 * labels + (6 + 2.9 * widest) / 518
        fig.subplots_adjust(left=min(0.5, max(0.2, left)),
                            right=0.97, top=0.93, bottom=0.06)
        return fig


def save_figure(fig: plt.Figure, folder: str | Path, name: str) -> dict:
    """Save a figure as PNG and SVG in `folder`; return the two paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"png": folder / f"{name}.png", "svg": folder / f"{name}.svg"}
    with figure_style():  # the SVG hash salt is read as the file is written
        fig.savefig(paths["png"], dpi=150)
        fig.savefig(paths["svg"], metadata={"Date": None})
    return paths

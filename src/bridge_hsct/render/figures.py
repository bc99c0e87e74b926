"""One figure function for every survival and cumulative-incidence panel of the book.

Each panel: step curves per group in months since HSCT (ticks every 12), censor marks,
optional confidence bands, the landmark estimates and the test's P value inside the panel,
and the numbers at risk in a table aligned under the x ticks. A panel can be weighted (case
weights, e.g. IPTW: the weighted Kaplan–Meier of :func:`bridge_hsct.stats.weighting.weighted_km`
and the sums of the weights at risk) and carry a corner text (hazard ratios) in its header.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from cycler import cycler  # noqa: E402

from ..stats.competing import cumulative_incidence, one_minus_km_incidence  # noqa: E402
from ..stats.survival import km_table, months_to_days, numbers_at_risk, to_months  # noqa: E402
from ..stats.weighting import weighted_at_risk, weighted_km  # noqa: E402
from .data_label import destination  # noqa: E402
from .disclosure import Disclosure  # noqa: E402
from .escaping import one_line, plot_text  # noqa: E402
from .formatting import p_phrase  # noqa: E402

# Okabe-Ito, colour-blind safe; a group keeps its colour on every page (by display order)
PALETTE = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000"]
WHOLE_COLOUR = "#333333"
PNG_DPI = 200  # a 5-inch panel is 1000 px wide
MAX_CENSOR_MARKS = 200  # beyond this a group's censor marks would smear into a bar

#: The book's figure style as matplotlib settings: seaborn's "ticks" style and "paper"
#: context at 1.15 (what ``sns.set_theme(style="ticks", context="paper",
#: font_scale=1.15)`` sets, without setting it), no top or right spine, SVG text written
#: as text (searchable, selectable, read by screen readers) and a fixed SVG hash salt so
#: that two builds write the same SVG files.
STYLE = {
    **sns.axes_style("ticks"),
    **sns.plotting_context("paper", font_scale=1.15),
    "axes.prop_cycle": cycler(color=sns.color_palette("deep")),
    "font.family": ["sans-serif"],
    # laid out with DejaVu Sans (installed with matplotlib); an SVG keeps its text as text,
    # shown in the first of these fonts the reader's browser has
    "font.sans-serif": ["DejaVu Sans", "Liberation Sans", "Arial", "Helvetica", "sans-serif"],
    "svg.fonttype": "none",
    "image.cmap": "rocket",
    "svg.hashsalt": "bridge-hsct", "figure.dpi": 100,
    "axes.spines.top": False, "axes.spines.right": False,
}


def figure_style():
    """A ``with`` block drawing in the book's :data:`STYLE`, restoring the settings after."""
    return plt.rc_context(STYLE)


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
    at_risk_weight: np.ndarray | None = None

    def at_risk(self, days: np.ndarray) -> np.ndarray:
        """The patients still at risk at each of `days`: their number, or the sum of their
        weights for a weighted curve."""
        if self.at_risk_weight is None:
            return numbers_at_risk(self.at_risk_time, self.at_risk_event, days)
        return weighted_at_risk(self.at_risk_time, self.at_risk_weight, days)


def group_colours(groups: list) -> dict:
    """The colour of each group, by its position in the display order."""
    return {g: PALETTE[i % len(PALETTE)] for i, g in enumerate(groups)}


def _weighted_curve(label, colour, time: np.ndarray, cause: np.ndarray, kind: str,
                    weights: np.ndarray) -> Curve:
    """The weighted Kaplan–Meier (survival) or 1 − Kaplan–Meier (incidence, competing
    events censored) of :func:`bridge_hsct.stats.weighting.weighted_km`, without a band."""
    table = weighted_km(time, cause == 1, weights)  # starts at time 0
    value = table["survival"].to_numpy()
    if kind != "survival":
        value = 1 - value
    t = to_months(table["time"].to_numpy())
    censored = table["censored"].to_numpy() > 0
    nothing = np.full(len(t), np.nan)
    return Curve(label, colour, t, value, nothing, nothing, t[censored], value[censored],
                 time, cause == 1, weights)


def _curve(label, colour, endpoint: pd.DataFrame, kind: str, method: str,
           alpha: float, weights: np.ndarray | None = None) -> Curve:
    time, cause = endpoint["time"].to_numpy(float), endpoint["cause"].to_numpy(int)
    if weights is not None:
        return _weighted_curve(label, colour, time, cause, kind, weights)
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
    if kind != "survival" and method != "aalen-johansen":
        # 1 − Kaplan–Meier counts a competing event as a censoring: it is marked as one
        censored |= table["n_competing"].to_numpy() > 0
    return Curve(label, colour, t, v, lo, hi, t[1:][censored], v[1:][censored],
                 time, cause == 1)


def _draw(ax, curve: Curve, bands: bool, per_month: float = 1.0) -> None:
    """Step curve, band and censor marks, the times multiplied by `per_month` (days)."""
    time = curve.time * per_month
    ax.step(time, curve.value, where="post", color=curve.colour, lw=1.8)
    if bands:
        ax.fill_between(time, np.nan_to_num(curve.lower, nan=curve.value[0]),
                        np.nan_to_num(curve.upper, nan=curve.value[0]), step="post",
                        color=curve.colour, alpha=0.12, lw=0)
    if 0 < len(curve.censor_time) <= MAX_CENSOR_MARKS:
        ax.plot(curve.censor_time * per_month, curve.censor_value, ls="none", marker="|",
                ms=7, mew=1.2, color=curve.colour)


# ---------------------------------------------------------------------------------------------
# Layout, in inches: a narrow figure (read at phone width with its text at ~10 px) whose
# estimates sit in a header above the axes and can never cover a curve or a censor mark
# ---------------------------------------------------------------------------------------------
WIDTH = 5.0
FONT = 10.0  # points: tick labels, header, numbers at risk
LINE = 1.45 * FONT / 72  # one line of text, in inches
PLOT_HEIGHT = 2.9
DAYS_UP_TO_MONTHS = 3.0  # a horizon this short is drawn in days


@dataclass(frozen=True)
class TimeAxis:
    """The x axis of a panel: its unit, the factor from months, its ticks (in that unit)."""

    unit: str
    per_month: float
    ticks: np.ndarray

    @property
    def label(self) -> str:
        """``Months since HSCT`` or ``Days since HSCT``."""
        return f"{self.unit.capitalize()} since HSCT"


def time_axis(horizon_months: float) -> TimeAxis:
    """Months with ticks every 24, 12, 6, 3 or 1 (at most 9 ticks up to 16 years); days
    (ticks every 5, 10 or 14) when the horizon is at most :data:`DAYS_UP_TO_MONTHS` months,
    where events come within weeks."""
    if horizon_months <= DAYS_UP_TO_MONTHS:
        per_month = float(months_to_days(1.0))
        days = horizon_months * per_month
        step = 5 if days <= 30 else 10 if days <= 70 else 14
        return TimeAxis("days", per_month, np.arange(0, days + 1e-9, step))
    step = (24 if horizon_months > 96 else 12 if horizon_months > 36
            else 6 if horizon_months > 12 else 3 if horizon_months > 4 else 1)
    return TimeAxis("months", 1.0, np.arange(0, horizon_months + 1e-9, step))


def _lines_of(text: str, width: int) -> list[str]:
    return textwrap.wrap(text, width, break_long_words=False) or [""]


def km_panel(endpoint: pd.DataFrame, groups: pd.Series | None, group_order: list | None,
             *, kind: str, title: str, ylabel: str, method: str = "1 - kaplan-meier",
             p_value: float | None = None, test_name: str = "log-rank",
             heading: str = "", estimates: dict | None = None, bands: bool = True,
             horizon_months: float | None = None, landmark_months: float | None = None,
             alpha: float = 0.05, disclosure: Disclosure, weights=None,
             corner: str = "") -> plt.Figure:
    """Draw one panel of a survival or cumulative-incidence figure.

    The estimates are printed in a header between the title and the axes (the test's P
    value after `heading`, then one legend line per group with its estimate), where they
    cannot cover a curve or a censor mark; the numbers at risk are a table under the x
    ticks. The figure is 5 inches wide, its text 10 points: at a phone's 342 px the text
    is about 9 px high.

    Parameters
    ----------
    endpoint : frame with ``time`` (days) and ``cause`` (see :mod:`bridge_hsct.cohort.endpoints`).
    groups : group of each patient, or None for the whole cohort.
    group_order : groups in display (and colour) order.
    kind : ``"survival"`` (Kaplan–Meier) or ``"incidence"``.
    title : panel title, e.g. ``"A  Overall survival"``.
    ylabel : y-axis label.
    method : for incidence: ``"1 - kaplan-meier"`` (the paper's) or ``"aalen-johansen"``.
    p_value, test_name : the between-group test shown in the header.
    heading : what the estimates are (``"At 24 months, % (95% CI)"``).
    estimates : the estimate of each curve, by its label (``"All patients"`` for the whole
        cohort), shown after the label in the header.
    bands : draw the pointwise confidence bands (log-log, at level ``1 - alpha``).
    horizon_months : right end of the x axis (default: the longest follow-up); a horizon
        of at most :data:`DAYS_UP_TO_MONTHS` months is drawn in days.
    landmark_months : draw a dotted vertical line at the landmark.
    alpha : one minus the confidence level of the bands; pass the ``alpha`` of the estimates
        printed in `estimates`, so that bands and numbers agree.
    disclosure : the small-cell suppression of the numbers at risk (the chapter's).
    weights : case weights of the rows of `endpoint` (e.g. IPTW weights), or None. Each
        curve is then the weighted Kaplan–Meier (``1 -`` it for an incidence, competing
        events censored: only the paper's ``method``), without a band (the usual intervals
        would ignore the weights' estimation), and the numbers at risk are the sums of the
        weights, ``12.3``; where the patients behind a sum are few enough for
        `disclosure` to hide their count, the count's text (``< 5``) is shown instead.
    corner : lines (``\n``-separated) printed in the header under the estimates, at the
        panel's top-left corner where no curve can be (e.g. hazard ratios).

    Returns
    -------
    matplotlib.figure.Figure
        The panel with its numbers-at-risk table; the header's artists have the gid
        ``"estimates"``.
    """
    if weights is not None and kind != "survival" and method == "aalen-johansen":
        raise ValueError("a weighted panel draws the Kaplan–Meier or 1 − Kaplan–Meier only")
    w = None if weights is None else np.asarray(weights, dtype=float)
    if groups is None:
        parts = [("All patients", WHOLE_COLOUR, np.ones(len(endpoint), dtype=bool))]
    else:
        colours = group_colours(group_order)
        # a group Series is matched to the rows by index, as a boolean mask would be
        labels = pd.Series(np.asarray(groups, dtype=object),
                           index=getattr(groups, "index", endpoint.index))
        labels = labels.reindex(endpoint.index).to_numpy()
        parts = [(g, colours[g], labels == g) for g in group_order]
    curves = [_curve(label, colour, endpoint[rows], kind, method, alpha,
                     None if w is None else w[rows])
              for label, colour, rows in parts if rows.any()]
    bands = bands and w is None
    axis = time_axis(horizon_months or max(float(c.time.max()) for c in curves))
    estimates = estimates or {}
    first = heading
    if p_value is not None:
        first += f"{'; ' if first else ''}{test_name} {p_phrase(p_value)}"
    if groups is None and estimates:  # one curve: its estimate on the heading's line
        first += f": {plot_text(next(iter(estimates.values())))}"
    legend = [plot_text(c.label) + (f"  {plot_text(estimates[c.label])}"
                                    if c.label in estimates else "") for c in curves]
    title_lines = _lines_of(plot_text(title), 46)
    corner_lines = [line for text in corner.splitlines()
                    for line in _lines_of(plot_text(text), 60)] if corner else []
    header = ((1 if first else 0) + (len(curves) if groups is not None else 0)
              + len(corner_lines))

    days = months_to_days(axis.ticks / axis.per_month)
    risk_rows = [_at_risk_row(curve, days, disclosure) for curve in curves]
    widest = max([1] + [len(shown) for row in risk_rows for shown in row])  # centred on x = 0
    char = 0.64 * FONT / 72  # a digit of DejaVu Sans, in inches
    # a group label wider than the margin can give is wrapped, never cut at the left edge
    fit = max(8, int((0.45 * WIDTH - 0.22) / char - widest / 2))
    risk_labels = [_lines_of(plot_text(c.label), fit) for c in curves]
    labels = max(len(line) for lines in risk_labels for line in lines)
    # each row as tall as its label, top to bottom; its numbers at the middle
    tall = np.array([len(lines) for lines in risk_labels], float)
    middle = tall.sum() - (np.cumsum(tall) - tall / 2) - 0.5  # one-line rows: n - 1, ..., 0
    left = min(0.45 * WIDTH, max(0.8, 0.12 + char * (labels + widest / 2) + 0.1))

    # heights, top to bottom, in inches
    top, title_h = 0.08, 1.15 * LINE * len(title_lines)
    header_h = LINE * header + (0.1 if header else 0)
    axis_h = 2 * LINE + 0.1
    risk_title_h, risk_h, bottom = 1.3 * LINE, 1.15 * LINE * tall.sum(), 0.06
    height = top + title_h + header_h + PLOT_HEIGHT + axis_h + risk_title_h + risk_h + bottom
    right = 0.05 + char * widest / 2 + 0.05
    plot_w = WIDTH - left - right

    with figure_style():  # the style is read as the figure is drawn
        fig = plt.figure(figsize=(WIDTH, height))
        ax = fig.add_axes((left / WIDTH, (bottom + risk_h + risk_title_h + axis_h) / height,
                           plot_w / WIDTH, PLOT_HEIGHT / height))
        edge = -(left - 0.08) / plot_w  # the figure's left edge, in axes fractions
        for curve in curves:
            _draw(ax, curve, bands, axis.per_month)
        if landmark_months:
            ax.axvline(landmark_months * axis.per_month, color="#999999", lw=0.8, ls=":")
        ax.set(xlim=(0, axis.ticks[-1] * 1.02 if len(axis.ticks) > 1 else 1),
               ylim=(-0.02, 1.04), xticks=axis.ticks)
        ax.set_ylabel(ylabel, fontsize=FONT)
        ax.set_xlabel(axis.label, fontsize=FONT)
        ax.tick_params(labelsize=FONT)
        ax.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0, decimals=0))
        shown = ax.set_title("\n".join(title_lines), loc="left", fontweight="bold",
                             fontsize=FONT + 1, pad=header_h * 72 + 3)
        shown.set_x(edge)
        y = 1 + (header_h - 0.04) / PLOT_HEIGHT  # the header's top, in axes fractions
        if first:
            ax.text(edge, y, first, transform=ax.transAxes, ha="left", va="top",
                    fontsize=FONT, gid="estimates")
            y -= LINE / PLOT_HEIGHT
        if groups is not None:  # handles given: a label starting with "_" is still shown
            handles = [matplotlib.lines.Line2D([], [], color=c.colour, lw=2) for c in curves]
            box = ax.legend(handles, legend, loc="upper left", bbox_to_anchor=(edge, y),
                            frameon=False, fontsize=FONT, borderaxespad=0, borderpad=0,
                            labelspacing=0.45 * FONT / FONT, handlelength=1.5,
                            handletextpad=0.5)
            box.set_gid("estimates")
            y -= LINE * len(curves) / PLOT_HEIGHT
        if corner_lines:
            ax.text(edge, y, "\n".join(corner_lines), transform=ax.transAxes, ha="left",
                    va="top", fontsize=FONT, linespacing=1.45, gid="estimates")

        risk = fig.add_axes((left / WIDTH, bottom / height, plot_w / WIDTH, risk_h / height),
                            sharex=ax)
        for row, (curve, shown) in enumerate(zip(curves, risk_rows, strict=True)):
            for x, text in zip(axis.ticks, shown, strict=True):
                risk.text(x, middle[row], text, ha="center", va="center", fontsize=FONT,
                          color=curve.colour)
        risk.set_yticks(middle, ["\n".join(lines) for lines in risk_labels], fontsize=FONT)
        risk.set_ylim(-0.5, tall.sum() - 0.5)
        risk.set_title("Number at risk" if w is None else
                       "Weighted number at risk (sum of weights)", loc="left", fontsize=FONT,
                       pad=4).set_x(edge)
        risk.tick_params(axis="x", labelbottom=False, length=0)
        # the first column is centred on x = 0: keep the group labels clear of its half-width
        risk.tick_params(axis="y", length=0, pad=6 + 72 * char * widest / 2)
        for side in ("left", "bottom", "top", "right"):
            risk.spines[side].set_visible(False)
        return fig


def _at_risk_row(curve: Curve, days: np.ndarray, disclosure: Disclosure) -> list[str]:
    """The numbers at risk of a curve under the ticks at `days`, as shown: counts through
    `disclosure`; for a weighted curve the sums of weights (one decimal), or the count's
    text where `disclosure` hides the patients behind a sum."""
    counts = numbers_at_risk(curve.at_risk_time, curve.at_risk_event, days)
    if curve.at_risk_weight is None:
        return [disclosure.count_text(k, thousands=True) for k in counts]
    return [disclosure.count_text(k, thousands=True) if k == 0 or disclosure.is_small(k)
            else f"{total:,.1f}" for k, total in zip(counts, curve.at_risk(days), strict=True)]


def _caption_strip(fig: plt.Figure, label: str) -> None:
    """Add `label` as a caption strip under the figure: the figure grows by the strip's
    height and everything drawn keeps its size and place above it."""
    width, height = fig.get_size_inches()
    lines = _lines_of(plot_text(label), int(width * 72 / (0.55 * LABEL_FONT)))
    strip = LINE * LABEL_FONT / FONT * len(lines) + 0.12
    for axes in fig.axes:
        box = axes.get_position()
        axes.set_position((box.x0, (box.y0 * height + strip) / (height + strip), box.width,
                           box.height * height / (height + strip)))
    for text in fig.texts:  # figure-level texts (a legend's too) keep their place
        x, y = text.get_position()
        text.set_position((x, (y * height + strip) / (height + strip)))
    for legend in fig.legends:
        anchor = legend.get_bbox_to_anchor().transformed(fig.transFigure.inverted())
        legend.set_bbox_to_anchor((anchor.x0, (anchor.y0 * height + strip) / (height + strip),
                                   anchor.width, anchor.height * height / (height + strip)),
                                  transform=fig.transFigure)
    fig.set_size_inches(width, height + strip)
    fig.text(0.08 / width, 0.06 / (height + strip), "\n".join(lines), ha="left", va="bottom",
             fontsize=LABEL_FONT, color="#444444", gid="data-label")


#: Size of the provenance line under a saved figure, in points.
LABEL_FONT = 8.0


def save_figure(fig: plt.Figure, where, name: str, label: str | None = None) -> dict:
    """Save a figure as PNG (at :data:`PNG_DPI`) and SVG; return the two paths.

    Parameters
    ----------
    fig : the figure (with a `label`, it grows by a caption strip).
    where : a folder, or a chapter, whose output folder and data label are used
        (:func:`bridge_hsct.render.data_label.destination`).
    name : file name without extension.
    label : the provenance line (by default the chapter's; none for a bare folder): drawn
        as a caption strip under the figure (text in the SVG) and written as the files'
        ``Description`` metadata.
    """
    folder, label = destination(where, label)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"png": folder / f"{name}.png", "svg": folder / f"{name}.svg"}
    png_metadata, svg_metadata = {}, {"Date": None}
    if label:
        _caption_strip(fig, label)
        png_metadata["Description"] = svg_metadata["Description"] = one_line(label)
    with figure_style():  # the SVG hash salt is read as the file is written
        fig.savefig(paths["png"], dpi=PNG_DPI, metadata=png_metadata)
        fig.savefig(paths["svg"], metadata=svg_metadata)
    return paths

"""The IPTW chapter's figures: unweighted and weighted curves of each endpoint and the
balance plot, drawn inside the book's figure style."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from ...cohort.endpoints import (  # noqa: E402
    ENDPOINTS,
)
from ...render.disclosure import Disclosure  # noqa: E402
from ...render.escaping import plot_text  # noqa: E402
from ...render.figures import (  # noqa: E402
    FONT,
    WIDTH,
    figure_style,
    group_colours,
)
from ...render.formatting import p_phrase  # noqa: E402
from ...stats.survival import months_to_days, to_months  # noqa: E402
from ...stats.weighting import (  # noqa: E402
    weighted_at_risk,
)
from .analysis import (  # noqa: E402
    SMD_THRESHOLD,
    OutcomeResult,
    Weighting,
    _outcome,
)


# ---------------------------------------------------------------------------------------------
# Figures (drawn inside the book's figure style)
# ---------------------------------------------------------------------------------------------
def _step(ax, curve: pd.DataFrame, incidence: bool, colour: str, label: str) -> None:
    months = to_months(curve["time"].to_numpy())
    value = curve["survival"].to_numpy()
    if incidence:
        value = 1 - value
    ax.step(months, value, where="post", color=colour, lw=1.8, label=label)
    censored = curve["censored"].to_numpy() > 0
    ax.plot(months[censored], value[censored], ls="none", marker="|", ms=7, mew=1.2,
            color=colour)


def _ratios_text(ratios: list, reference, robust: bool) -> str:
    """The hazard ratios of one analysis, a line per group, for a panel's corner."""
    lines = [f"{plot_text(h.group)} vs {plot_text(reference)}: "
             + ("not estimable" if math.isnan(h.hr) else
                f"HR {h.hr:.2f} ({h.lower:.2f}–{h.upper:.2f}), {p_phrase(h.p_value)}")
             for h in ratios]
    return "\n".join([*lines, "robust SE" if robust else "model SE"])


def _risk_table(fig, cell, ax, time, group, weights, groups, colours, ticks,
                weighted: bool, disclosure: Disclosure) -> None:
    """Numbers (or weighted numbers) at risk under a panel, hidden where the patients behind
    them are too few for `disclosure`."""
    risk = fig.add_subplot(cell, sharex=ax)
    days = months_to_days(ticks)
    for row, name in enumerate(groups):
        part = group == name
        counts = weighted_at_risk(time[part], weights[part], days)
        patients = weighted_at_risk(time[part], np.ones(part.sum()), days)
        for x, count, n in zip(ticks, counts, patients, strict=True):
            shown = (f"{count:.1f}" if weighted and not disclosure.is_small(round(n))
                     else disclosure.count_text(round(n)))
            risk.text(x, len(groups) - 1 - row, shown, ha="center", va="center",
                      fontsize=FONT - 1, color=colours[name])
    risk.set_yticks(range(len(groups)), [plot_text(g) for g in reversed(groups)], fontsize=FONT - 1)
    risk.set_ylim(-0.6, len(groups) - 0.4)
    risk.set_title("Weighted number at risk" if weighted else "Number at risk", loc="left",
                   fontsize=FONT - 1)
    risk.tick_params(axis="x", labelbottom=False, length=0)
    risk.tick_params(axis="y", length=0, pad=16)
    for side in ("left", "bottom", "top", "right"):
        risk.spines[side].set_visible(False)


def iptw_figure(result: OutcomeResult, weighting: Weighting, data: pd.DataFrame, title: str,
                landmark_months: float | None = None, *,
                disclosure: Disclosure) -> plt.Figure:
    """Unadjusted (top) and IPTW-weighted (bottom) Kaplan–Meier curves of one endpoint, one
    above the other in a panel as wide as the book's others (legible on a phone).

    Each shows the curves of every group, censoring ticks, the hazard ratios of its analysis
    and, under the axis, the number (top) or weighted number (bottom) at risk, through
    `disclosure` (the chapter's). Drawn inside
    :func:`bridge_hsct.render.figures.figure_style`.
    """
    groups = weighting.groups
    colours = group_colours(groups)
    incidence = ENDPOINTS[result.endpoint].kind == "incidence"
    time = _outcome(weighting.rows(data), result.endpoint)["time"].to_numpy(float)
    group = weighting.frame["group"].to_numpy()
    horizon = float(to_months(time.max()))
    step = 12 if horizon > 36 else 6 if horizon > 12 else 3
    ticks = np.arange(0, horizon + 1e-9, step)
    risk = 0.3 + 0.3 * len(groups)
    with figure_style():
        fig = plt.figure(figsize=(WIDTH, 2 * (3.4 + risk) + 2.0))
        grid = fig.add_gridspec(4, 1, height_ratios=[3.4, risk, 3.4, risk], hspace=0.75)
        sides = [("unadjusted", "unadjusted", np.ones(len(time))),
                 ("iptw", "IPTW-weighted", weighting.frame["weight"].to_numpy())]
        for row, (analysis, heading, weights) in enumerate(sides):
            ax = fig.add_subplot(grid[2 * row, 0])
            for name in groups:
                _step(ax, result.curves[(analysis, name)], incidence, colours[name],
                      plot_text(name))
            if landmark_months:
                ax.axvline(landmark_months, color="#999999", lw=0.8, ls=":")
            ax.set(xlim=(0, horizon * 1.02), ylim=(-0.02, 1.04), xticks=ticks,
                   xlabel="Months since HSCT",
                   ylabel=("Cumulative incidence" if incidence
                           else ENDPOINTS[result.endpoint].label))
            ax.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0, decimals=0))
            # the hazard ratios sit between the title and the plot, where no curve can be
            ratios = _ratios_text(result.hazard_ratios[analysis], groups[0],
                                  analysis == "iptw")
            ax.text(0, 1.02, ratios, transform=ax.transAxes, ha="left", va="bottom",
                    fontsize=FONT - 2)
            ax.set_title(f"{title}: {heading}", loc="left", fontweight="bold", fontsize=FONT,
                         pad=6 + 1.35 * (FONT - 2) * (ratios.count("\n") + 1))
            ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=len(groups),
                      frameon=False, fontsize=FONT - 1)
            _risk_table(fig, grid[2 * row + 1, 0], ax, time, group, weights, groups, colours,
                        ticks, analysis == "iptw", disclosure)
        fig.subplots_adjust(left=0.3, right=0.97, top=0.93, bottom=0.03)
    return fig


def love_plot(balance: pd.DataFrame, groups: list) -> plt.Figure:
    """Absolute standardised mean differences before (open) and after (filled) weighting, per
    covariate and per non-reference group against the reference; drawn inside
    :func:`bridge_hsct.render.figures.figure_style`."""
    terms = balance.drop_duplicates("term")
    labels = [f"{lab}{' *' if m else ''}" for lab, m in
              zip(terms["label"], terms["in_model"], strict=True)]
    position = dict(zip(terms["term"], np.arange(len(terms))[::-1], strict=True))
    compared = groups[1:]
    colours = group_colours(groups)
    offsets = np.linspace(-0.25, 0.25, len(compared)) if len(compared) > 1 else [0.0]
    before_all = balance["smd_before"].abs().to_numpy()
    after_all = balance["smd_after"].abs().to_numpy()
    with figure_style():
        fig, ax = plt.subplots(figsize=(7.2, 1.4 + 0.24 * len(terms) * max(1, len(compared)
                                                                           / 2)))
        for offset, name in zip(offsets, compared, strict=True):
            part = balance[balance["group"] == name]
            y = part["term"].map(position).to_numpy(float) + offset
            before = part["smd_before"].abs().to_numpy()
            after = part["smd_after"].abs().to_numpy()
            ax.hlines(y, np.fmin(before, after), np.fmax(before, after), color="#cccccc",
                      lw=1)
            ax.plot(before, y, "o", mfc="white", mec=colours[name], ms=5)
            ax.plot(after, y, "o", color=colours[name], ms=5,
                    label=f"{plot_text(name)} vs {plot_text(groups[0])}")
        ax.plot([], [], "o", mfc="white", mec="#555555", label="before weighting (open)")
        ax.axvline(SMD_THRESHOLD, color="#D55E00", ls="--", lw=1,
                   label=f"|SMD| = {SMD_THRESHOLD:g}")
        ax.set_yticks(np.arange(len(terms))[::-1], labels, fontsize=8)
        ax.set_xlabel("Absolute standardised mean difference")
        largest = np.nanmax(np.r_[before_all, after_all, 0.0])
        ax.set_xlim(0, max(0.5, largest * 1.05))
        ax.set_ylim(-0.8, len(terms) - 0.2)
        ax.legend(loc="lower right", fontsize=8)
        ax.set_title("Covariate balance (* in the propensity model)", loc="left",
                     fontweight="bold", fontsize=10)
        fig.tight_layout()
    return fig

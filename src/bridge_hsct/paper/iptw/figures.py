"""The IPTW chapter's figures: Supplementary Figure 6, the unadjusted and weighted curves
of each endpoint as specs of the book's panel engine (:mod:`bridge_hsct.paper.panels`), and
the balance plot, drawn inside the book's figure style."""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from ...cohort.endpoints import ENDPOINTS  # noqa: E402
from ...render.escaping import plot_text  # noqa: E402
from ...render.figures import figure_style, group_colours  # noqa: E402
from ..panels import GROUPS, OutcomeWords, Panel, PanelSpec  # noqa: E402
from .analysis import IPTW_ENDPOINTS, SMD_THRESHOLD  # noqa: E402

#: Column of the chapter's weighted rows holding each patient's IPTW weight, which the
#: weighted panels of Supplementary Figure 6 name.
WEIGHT_COLUMN = "iptw_weight"
#: The letter of each endpoint's panels in Supplementary Figure 6.
FIGURE_LABELS = dict(zip(IPTW_ENDPOINTS, "ABCD", strict=True))


@dataclass(frozen=True)
class IptwWords(OutcomeWords):
    """The words of Supplementary Figure 6: the book's captions of Figures 1–3
    (:class:`bridge_hsct.paper.panels.OutcomeWords`), titled unadjusted or IPTW-weighted,
    the weights named as the chapter makes them."""

    def title(self, panel: Panel) -> str:
        """``"A  Overall survival: unadjusted"`` or ``…: IPTW-weighted``."""
        analysis = "IPTW-weighted" if panel.weighted else "unadjusted"
        return f"{panel.spec.letter}  {ENDPOINTS[panel.spec.endpoint].label}: {analysis}"

    def weighting(self, panel: Panel) -> str:
        """The chapter's weights, in words."""
        return "the stabilised, truncated IPTW weights"


IPTW_WORDS = IptwWords()


def _s6_panels(endpoint: str, letter: str) -> tuple[PanelSpec, PanelSpec]:
    """The unadjusted and the weighted panel of one endpoint, each with its hazard ratios
    (grade III–IV aGVHD as 1 − Kaplan–Meier, relapse and death before it censored)."""
    label, anchor, stem = (f"Supplementary Figure 6{letter}", f"figure-s6{letter.lower()}",
                           f"figure_s6{letter.lower()}")
    return (PanelSpec(endpoint, GROUPS, letter, label, anchor, stem, hazard_ratios=True,
                      words=IPTW_WORDS),
            PanelSpec(endpoint, GROUPS, letter, f"{label}, IPTW-weighted", f"{anchor}-iptw",
                      f"{stem}_iptw", weights=WEIGHT_COLUMN, hazard_ratios=True,
                      words=IPTW_WORDS))


#: Supplementary Figure 6: per endpoint, its curves without weights, then with them.
SUPPLEMENTARY_FIGURE6 = tuple(spec for endpoint, letter in FIGURE_LABELS.items()
                              for spec in _s6_panels(endpoint, letter))


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

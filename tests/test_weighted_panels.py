"""Supplementary Figure 6 on the panel engine: weighted curves, weighted numbers at risk and
hazard ratios in the corner.

The weighted curve an S6 panel draws and the weighted estimate its caption prints are
checked against R (``survival::survfit(Surv(time, status) ~ 1, weights = w)``; skipped
without R) and against lifelines' ``KaplanMeierFitter(weights=...)``, both fed the cohort
and weights independently of the engine; the numbers at risk against sums of the weights
computed here; the hazard ratios and estimates against the IPTW analysis' own; the labels
against the chapter's settings (alpha and landmark).
"""

from __future__ import annotations

import re
import shutil
import subprocess

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from lifelines import KaplanMeierFitter  # noqa: E402

from bridge_hsct.book.chapter import Chapter  # noqa: E402
from bridge_hsct.cohort.endpoints import as_censored, derive  # noqa: E402
from bridge_hsct.cohort.simulate import ARMS, simulate_cohort  # noqa: E402
from bridge_hsct.paper.iptw import SUPPLEMENTARY_FIGURE6, iptw, iptw_outcomes  # noqa: E402
from bridge_hsct.paper.iptw.figures import WEIGHT_COLUMN  # noqa: E402
from bridge_hsct.paper.iptw.report import curves_engine  # noqa: E402
from bridge_hsct.paper.outcomes import COMPETING_METHOD  # noqa: E402
from bridge_hsct.paper.panels import GROUPS, PanelSpec, _draw  # noqa: E402
from bridge_hsct.render.disclosure import Disclosure  # noqa: E402
from bridge_hsct.render.figures import km_panel  # noqa: E402
from bridge_hsct.stats.survival import months_to_days, to_months  # noqa: E402

ALPHA, LANDMARK = 0.1, 12.0
RSCRIPT = shutil.which("Rscript")


@pytest.fixture(scope="module")
def chapter(tmp_path_factory):
    data = simulate_cohort(150, seed=21, arms=ARMS)
    return Chapter(data, "arm", [a.label for a in ARMS], tmp_path_factory.mktemp("s6"),
                   alpha=ALPHA, landmark_months=LANDMARK, disclosure=Disclosure(5))


@pytest.fixture(scope="module")
def weighting(chapter):
    return iptw(chapter.data, chapter.group_col, chapter.groups)


@pytest.fixture(scope="module")
def engine(chapter, weighting):
    return curves_engine(chapter, weighting, save=False)


def s6(endpoint: str, weighted: bool) -> PanelSpec:
    [spec] = [s for s in SUPPLEMENTARY_FIGURE6
              if s.endpoint == endpoint and (s.weights is not None) == weighted]
    return spec


def inputs(chapter, weighting, endpoint: str) -> pd.DataFrame:
    """Time (days), 0/1 status (competing events censored), weight and group of each
    weighted patient, built from the cohort and the weights, not from the engine."""
    rows = chapter.data.loc[weighting.frame.index]
    outcome = as_censored(derive(rows, endpoint))
    return pd.DataFrame({"time": outcome["time"].to_numpy(float),
                         "status": (outcome["cause"] == 1).astype(int).to_numpy(),
                         "w": weighting.frame["weight"].to_numpy(float),
                         "group": weighting.frame["group"].to_numpy()})


def drawn_steps(panel, engine) -> dict:
    """The step curve of each group the S6 panel draws: group -> (months, value)."""
    figure = _draw(panel, engine.data)
    try:
        steps = [line for line in figure.axes[0].get_lines()
                 if line.get_marker() in ("None", None, "") and line.get_linestyle() == "-"]
        return {group: (np.asarray(line.get_xdata(), float),
                        np.asarray(line.get_ydata(), float))
                for group, line in zip(panel.shown_rows()["group"], steps, strict=True)}
    finally:
        plt.close(figure)


def value_at(curve, months: np.ndarray) -> np.ndarray:
    x, y = curve
    return y[np.searchsorted(x, months + 1e-9, side="right") - 1]


# ---------------------------------------------------------------------------------------------
# The weighted curve against R and lifelines
# ---------------------------------------------------------------------------------------------
def _r_ready() -> bool:
    return RSCRIPT is not None and subprocess.run(
        [RSCRIPT, "-e", "library(survival)"], capture_output=True).returncode == 0


R_SCRIPT = r"""
args <- commandArgs(TRUE)
suppressMessages(library(survival))
d <- read.csv(args[1])
out <- do.call(rbind, lapply(unique(d$group), function(g) {
  fit <- survfit(Surv(time, status) ~ 1, data = d[d$group == g, ], weights = w)
  data.frame(group = g, time = fit$time, surv = fit$surv)
}))
write.csv(out, args[2], row.names = FALSE)
"""


@pytest.mark.skipif(not _r_ready(), reason="Rscript with the survival package not found")
@pytest.mark.parametrize("endpoint", ["os", "agvhd_3_4"])
def test_the_weighted_curve_and_estimate_of_an_s6_panel_equal_rs_survfit(
        chapter, weighting, engine, tmp_path, endpoint):
    frame = inputs(chapter, weighting, endpoint)
    frame.to_csv(tmp_path / "d.csv", index=False)
    subprocess.run([RSCRIPT, "-e", R_SCRIPT, str(tmp_path / "d.csv"), str(tmp_path / "r.csv")],
                   check=True, capture_output=True)
    r = pd.read_csv(tmp_path / "r.csv")
    panel = engine.panel(s6(endpoint, weighted=True))
    steps = drawn_steps(panel, engine)
    incidence = endpoint == "agvhd_3_4"
    summary = panel.shown_rows().set_index("group")
    for group, part in r.groupby("group"):
        expected = 1 - part["surv"].to_numpy() if incidence else part["surv"].to_numpy()
        months = to_months(part["time"].to_numpy())
        assert value_at(steps[group], months) == pytest.approx(expected, abs=1e-12), group
        before = part[part["time"] <= months_to_days(LANDMARK)]["surv"]
        at_landmark = before.iloc[-1] if len(before) else 1.0
        assert summary.loc[group, "estimate"] == pytest.approx(
            1 - at_landmark if incidence else at_landmark, abs=1e-12), group
    # the weights change the curve: the check compares weighted curves, not plain ones
    plain = engine.panel(s6(endpoint, weighted=False)).shown_rows().set_index("group")
    assert not np.allclose(plain["estimate"], summary["estimate"])


def test_the_weighted_estimates_equal_lifelines_weighted_kaplan_meier(
        chapter, weighting, engine):
    frame = inputs(chapter, weighting, "pfs")
    panel = engine.panel(s6("pfs", weighted=True))
    summary = panel.shown_rows().set_index("group")
    at = float(months_to_days(LANDMARK))
    for group, part in frame.groupby("group"):
        fitter = KaplanMeierFitter().fit(part["time"], part["status"], weights=part["w"])
        assert summary.loc[group, "estimate"] == pytest.approx(
            float(fitter.survival_function_at_times(at).iloc[0]), rel=1e-9), group
        assert summary.loc[group, "weighted_n"] == pytest.approx(part["w"].sum())
        assert summary.loc[group, "n"] == len(part)  # patients, not weights


# ---------------------------------------------------------------------------------------------
# Numbers at risk, hazard ratios, words
# ---------------------------------------------------------------------------------------------
def test_the_weighted_numbers_at_risk_are_sums_of_weights_hidden_where_few(
        chapter, weighting, engine):
    frame = inputs(chapter, weighting, "os")
    panel = engine.panel(s6("os", weighted=True))
    figure = _draw(panel, engine.data)
    try:
        ax, risk = figure.axes[0], figure.axes[1]
        assert risk.get_title(loc="left") == "Weighted number at risk (sum of weights)"
        ticks = ax.get_xticks()
        shown = {(round(t.get_position()[0], 6), round(t.get_position()[1])): t.get_text()
                 for t in risk.texts}
    finally:
        plt.close(figure)
    groups = list(panel.shown_rows()["group"])
    hidden = 0
    for row, group in enumerate(groups):
        part = frame[frame["group"] == group]
        for tick in ticks:
            still = part[part["time"] >= float(months_to_days(tick))]
            expected = ("0" if len(still) == 0 else "< 5" if len(still) < 5
                        else f"{still['w'].sum():,.1f}")
            hidden += expected == "< 5"
            assert shown[(round(tick, 6), len(groups) - 1 - row)] == expected, (group, tick)
    assert hidden, "the check meets a count the disclosure hides"


def test_hazard_ratios_and_estimates_equal_the_iptw_analysis(chapter, weighting, engine):
    outcomes = iptw_outcomes(chapter.data, weighting, ("os", "agvhd_3_4"), LANDMARK, ALPHA)
    landmarks = outcomes["landmarks"].set_index(["endpoint", "analysis", "group"])
    for endpoint in ("os", "agvhd_3_4"):
        for weighted, analysis in ((False, "unadjusted"), (True, "iptw")):
            panel = engine.panel(s6(endpoint, weighted))
            expected = outcomes["results"][endpoint].hazard_ratios[analysis]
            assert [(h.group, h.hr, h.lower, h.upper, h.p_value) for h in panel.hazard_ratios] \
                == [(h.group, h.hr, h.lower, h.upper, h.p_value) for h in expected]
            for _, row in panel.shown_rows().iterrows():
                assert row["estimate"] == pytest.approx(
                    landmarks.loc[(endpoint, analysis, row["group"]), "estimate"],
                    abs=1e-12)
            corner = panel.words.corner(panel)
            first = expected[0]
            assert f"{first.group} vs {chapter.groups[0]}: HR {first.hr:.2f}" in corner
            assert f"HR {first.hr:.2f} ({first.lower:.2f}–{first.upper:.2f})" in panel.caption


def test_s6_follows_the_chapters_alpha_and_landmark(engine):
    for spec in SUPPLEMENTARY_FIGURE6:
        panel = engine.panel(spec)
        assert panel.drawn, spec.label
        assert (panel.summary["landmark_months"] == LANDMARK).all()
        text = panel.caption + panel.words.corner(panel)
        assert "12 months" in panel.caption and "90% CI" in text, spec.label
        assert not re.search(r"(?<![\d.])95%", text), spec.label
        if spec.weights:
            assert "weighted %" in panel.caption and "no confidence band" in panel.caption
            assert panel.summary[["lower", "upper"]].isna().all().all()
        else:
            assert "shaded: 90% pointwise" in panel.caption


def test_a_weighted_panel_is_kaplan_meier_only():
    with pytest.raises(ValueError, match="Kaplan–Meier"):
        PanelSpec("agvhd_3_4", GROUPS, method=COMPETING_METHOD, weights=WEIGHT_COLUMN)
    with pytest.raises(ValueError, match="Kaplan–Meier"):
        PanelSpec("agvhd_3_4", GROUPS, both_methods=True, weights=WEIGHT_COLUMN)
    endpoint = pd.DataFrame({"time": [10.0, 20.0, 30.0], "cause": [1, 2, 0]})
    with pytest.raises(ValueError, match="Kaplan–Meier"):
        km_panel(endpoint, None, None, kind="incidence", title="A", ylabel="CI",
                 method=COMPETING_METHOD, weights=[1.0, 2.0, 1.0],
                 disclosure=Disclosure(0))


def test_a_panel_without_its_weights_column_is_skipped(chapter, engine):
    bare = type(engine)(chapter.data, "arm", chapter.groups, LANDMARK, ALPHA,
                        disclosure=Disclosure(5))
    panel = bare.panel(s6("os", weighted=True))
    assert not panel.drawn and panel.skipped == f"the data have no column `{WEIGHT_COLUMN}`"

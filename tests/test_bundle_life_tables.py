"""The statistics on life tables (:mod:`bridge_hsct.stats.life_tables`) on their own: odd
strata (a group absent from a centre, a centre without events), against lifelines and R."""

import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest
from lifelines.statistics import multivariate_logrank_test

from bridge_hsct.stats import life_tables as lt

RSCRIPT = shutil.which("Rscript")


def odd_centres(seed: int) -> pd.DataFrame:
    """Three centres, three groups; group g2 absent from centre 1; centre 2 has no event of
    interest; whole-day times with ties."""
    rng = np.random.default_rng(seed)
    parts = []
    for centre, groups in enumerate([("g0", "g1", "g2"), ("g0", "g1"), ("g0", "g1", "g2")]):
        for group in groups:
            n = int(rng.integers(5, 40))
            time = np.ceil(rng.exponential(300 + 150 * int(group[1]), n))
            cause = rng.choice([0, 1, 2], n, p=[0.4, 0.4, 0.2])
            if centre == 2:
                cause[cause == 1] = 2
            parts.append(pd.DataFrame({"time": time, "cause": cause, "group": group,
                                       "centre": centre}))
    return pd.concat(parts, ignore_index=True)


def strata_of(rows: pd.DataFrame) -> list[list[lt.LifeTable]]:
    groups = sorted(rows["group"].unique())
    return [[lt.life_table(*rows.query("centre == @c and group == @g")[["time", "cause"]]
                           .to_numpy().T) if ((rows["centre"] == c) & (rows["group"] == g)).any()
             else lt.empty_life_table() for g in groups]
            for c in sorted(rows["centre"].unique())]


@pytest.mark.parametrize("seed", range(4))
def test_unstratified_log_rank_equals_lifelines(seed):
    rows = odd_centres(seed)
    strata = strata_of(rows)
    pooled = [lt.pool([s[i] for s in strata]) for i in range(3)]
    ours = lt.logrank_test([pooled])
    theirs = multivariate_logrank_test(rows["time"], rows["group"], rows["cause"] == 1)
    assert ours.chi2 == pytest.approx(theirs.test_statistic, rel=1e-10)
    assert ours.df == theirs.degrees_of_freedom


def test_pooling_is_the_table_of_the_pooled_rows():
    rows = odd_centres(7)
    strata = strata_of(rows)
    pooled = lt.pool([t for s in strata for t in s])
    direct = lt.life_table(rows["time"], rows["cause"])
    for field in lt.LIFE_TABLE_COLUMNS:
        np.testing.assert_array_equal(getattr(pooled, field), getattr(direct, field))
    assert lt.pool([lt.empty_life_table()]).n == 0


def test_survival_at_before_between_and_after_the_times():
    table = lt.life_table([2, 4, 4, 6], [1, 0, 1, 0])
    assert lt.survival_at(table, 1).value == 1.0
    assert lt.survival_at(table, 3).value == pytest.approx(0.75)
    assert lt.survival_at(table, 5).value == pytest.approx(0.75 * 2 / 3)
    assert lt.survival_at(table, 7).is_missing


def r_results(rows: pd.DataFrame, script: str, output: str, folder) -> pd.DataFrame:
    """Run the R `script` on `rows` (written to ``rows.csv`` in `folder`) and read what it
    writes to `output`."""
    rows.to_csv(folder / "rows.csv", index=False)
    (folder / "script.R").write_text(script)
    subprocess.run([RSCRIPT, str(folder / "script.R"), str(folder)], check=True,
                   capture_output=True)
    return pd.read_csv(folder / output)


R_SCRIPT = r"""
args <- commandArgs(TRUE)
suppressMessages({library(survival); library(cmprsk)})
d <- read.csv(file.path(args[1], "rows.csv"))
lr <- survdiff(Surv(time, cause == 1) ~ group + strata(centre), data = d)
g <- cuminc(d$time, d$cause, d$group, strata = d$centre, cencode = 0)$Tests["1", ]
write.csv(data.frame(chi2 = lr$chisq, gray = g[["stat"]]), file.path(args[1], "r.csv"),
          row.names = FALSE)
"""


@pytest.mark.skipif(RSCRIPT is None or subprocess.run(
    [RSCRIPT or "Rscript", "-e", "library(survival); library(cmprsk)"], capture_output=True
).returncode != 0, reason="R with survival and cmprsk not found: stratified tests not checked "
                          "against R")
@pytest.mark.parametrize("seed", range(4))
def test_stratified_tests_with_odd_strata_equal_r(seed, tmp_path):
    rows = odd_centres(seed)
    r = r_results(rows, R_SCRIPT, "r.csv", tmp_path).iloc[0]
    strata = strata_of(rows)
    assert lt.logrank_test(strata).chi2 == pytest.approx(r["chi2"], rel=1e-10)
    assert lt.gray_test(strata).chi2 == pytest.approx(r["gray"], rel=1e-8)


@pytest.mark.parametrize("seed", range(4))
def test_unstratified_group_cox_equals_the_row_level_fit(seed):
    """One stratum: the counts give the package's Efron fit on the rows (itself checked
    against R in tests/test_against_r.py)."""
    from bridge_hsct.stats.survival import fit_cox

    rows = odd_centres(seed)
    strata = strata_of(rows)
    pooled = [lt.pool([s[i] for s in strata]) for i in range(3)]
    ours = lt.group_cox_model([pooled])
    frame = pd.DataFrame({"time": rows["time"], "event": (rows["cause"] == 1).astype(int),
                          "g1": (rows["group"] == "g1").astype(float),
                          "g2": (rows["group"] == "g2").astype(float)})
    model, reason = fit_cox(frame, "time", "event")
    assert reason is None
    np.testing.assert_allclose(ours.log_hazard_ratio, model.summary["coef"], rtol=1e-8)
    np.testing.assert_allclose(ours.standard_error, model.summary["se"], rtol=1e-8)
    assert ours.log_likelihood == pytest.approx(model.log_likelihood, rel=1e-10)


R_COX = r"""
args <- commandArgs(TRUE)
suppressMessages(library(survival))
d <- read.csv(file.path(args[1], "rows.csv"))
fit <- coxph(Surv(time, cause == 1) ~ factor(group) + strata(centre), data = d,
             ties = "efron", control = coxph.control(eps = 1e-12, iter.max = 50))
write.csv(data.frame(coef = coef(fit), se = sqrt(diag(vcov(fit))),
                     loglik = fit$loglik[2]), file.path(args[1], "cox.csv"), row.names = FALSE)
"""


@pytest.mark.skipif(RSCRIPT is None, reason="R not found: the stratified Cox model is not "
                                            "checked against R")
@pytest.mark.parametrize("seed", range(4))
def test_centre_stratified_group_cox_equals_r(seed, tmp_path):
    rows = odd_centres(seed)
    r = r_results(rows, R_COX, "cox.csv", tmp_path)
    ours = lt.group_cox_model(strata_of(rows))
    np.testing.assert_allclose(ours.log_hazard_ratio, r["coef"], rtol=1e-7)
    np.testing.assert_allclose(ours.standard_error, r["se"], rtol=1e-7)
    assert ours.log_likelihood == pytest.approx(r["loglik"].iloc[0], rel=1e-9)


def test_a_group_without_events_has_no_hazard_ratio():
    quiet = lt.life_table([5, 9], [0, 0])
    busy = lt.life_table([2, 4, 6], [1, 1, 0])
    model = lt.group_cox_model([[busy, quiet]])
    assert model.reason and all(e.is_missing for e in model.hazard_ratios())

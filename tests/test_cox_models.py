"""Cox models for few events: lifelines Cox and the hand-written Firth Cox against
independent implementations (firthmodels, statsmodels), stepwise selection against a by-hand
replay."""

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats

from bridge_hsct.stats import cox_models
from bridge_hsct.stats.breslow import RiskSets, penalised_objective
from bridge_hsct.stats.cox_models import COX, FIRTH, RIDGE, cox_fit, firth_cox, stepwise_cox

# 30 patients: days, event, three binary factors; nobody with c = 1 has an event, so the
# ordinary partial likelihood of a model with c is monotone.
FRAME = pd.DataFrame({
    "duration": [12, 25, 31, 40, 44, 52, 60, 75, 81, 90, 95, 110, 120, 133, 150,
                 160, 171, 185, 200, 222, 240, 260, 280, 300, 330, 365, 400, 450, 500, 540],
    "event": [1, 1, 0, 1, 1, 0, 1, 0, 1, 0, 1, 0, 0, 1, 0, 0, 1, 0, 0, 1, 0, 0, 0, 1, 0, 0,
              0, 0, 0, 0],
    "a": [1, 1, 0, 1, 0, 1, 1, 0, 0, 1, 1, 0, 1, 0, 0, 1, 0, 0, 1, 1, 0, 0, 1, 0, 0, 1, 0, 0,
          1, 0],
    "b": [0, 1, 1, 1, 0, 0, 1, 1, 0, 0, 0, 1, 0, 1, 1, 0, 0, 1, 0, 1, 1, 0, 0, 1, 0, 1, 0, 1,
          0, 0],
    "c": [0, 0, 1, 0, 0, 1, 0, 0, 0, 1, 0, 0, 1, 0, 0, 1, 0, 0, 1, 0, 0, 1, 0, 0, 1, 0, 0, 1,
          0, 1],
}).astype(float)

# Reference: firthmodels 0.8.2 (PyPI), FirthCoxPH(backend="numpy", max_iter=200) on FRAME,
# coef_, bse_, lrt() p-values and conf_int(method="pl"), run once outside the project.
FIRTH_REFERENCE = {
    ("a", "b"): dict(
        coef=[0.679464737872037, 0.5008467164322973],
        se=[0.6166343381145115, 0.6155753829042895],
        p=[0.2508361224241887, 0.3952987134687932],
        ci=[[-0.49215426642347965, 1.88507635426067],
            [-0.6671556897112235, 1.7057342367827768]]),
    ("a", "b", "c"): dict(
        coef=[0.4853481856779029, -0.1293747217903688, -2.586475420087423],
        se=[0.6159839678300085, 0.6208050513431161, 1.545578503426922],
        p=[0.4108524506172001, 0.8265538727345421, 0.011673036518808326],
        ci=[[-0.6849741537848115, 1.6910188558563377],
            [-1.2951646379896296, 1.0741698230811019],
            [-7.456309403908451, -0.46282847502767505]]),
}


@pytest.mark.parametrize("covariates", list(FIRTH_REFERENCE))
def test_firth_matches_firthmodels(covariates):
    ref = FIRTH_REFERENCE[covariates]
    fit = firth_cox(FRAME, list(covariates))
    assert fit.reason is None and fit.method == FIRTH
    t = fit.table
    np.testing.assert_allclose(t["coef"], ref["coef"], atol=1e-6)
    np.testing.assert_allclose(t["se"], ref["se"], rtol=1e-6)
    np.testing.assert_allclose(t["p_value"], ref["p"], rtol=1e-5)
    np.testing.assert_allclose(np.log(t["lower"]), [c[0] for c in ref["ci"]], atol=1e-5)
    np.testing.assert_allclose(np.log(t["upper"]), [c[1] for c in ref["ci"]], atol=1e-5)
    np.testing.assert_allclose(t["hr"], np.exp(ref["coef"]), rtol=1e-6)


def test_firth_estimate_is_a_stationary_point_of_the_penalised_likelihood():
    covariates = ["a", "b", "c"]
    fit = firth_cox(FRAME, covariates)
    x = FRAME[covariates].to_numpy()
    t, e = FRAME["duration"].to_numpy(), FRAME["event"].to_numpy() == 1
    beta = fit.table["coef"].to_numpy()
    h = 1e-5
    sets = RiskSets(t, e, x)

    def objective(b):
        return penalised_objective(b, sets, penalty=0.5)[0]

    numeric = [(objective(beta + h * u) - objective(beta - h * u)) / (2 * h)
               for u in np.eye(3)]
    np.testing.assert_allclose(numeric, 0, atol=1e-6)
    # and it is a maximum: moving away lowers the penalised likelihood
    best = objective(beta)
    for u in np.eye(3):
        assert objective(beta + 0.1 * u) < best


def test_unpenalised_firth_is_the_breslow_cox_estimate_of_statsmodels():
    fit = firth_cox(FRAME, ["a", "b"], penalty=0.0)
    ref = sm.PHReg(FRAME["duration"], FRAME[["a", "b"]], status=FRAME["event"],
                   ties="breslow").fit()
    assert fit.method == COX
    np.testing.assert_allclose(fit.table["coef"], ref.params, atol=1e-6)
    np.testing.assert_allclose(fit.table["se"], ref.bse, rtol=1e-5)


def test_cox_fit_matches_statsmodels_efron():
    fit = cox_fit(FRAME, ["a", "b"])
    ref = sm.PHReg(FRAME["duration"], FRAME[["a", "b"]], status=FRAME["event"],
                   ties="efron").fit()
    np.testing.assert_allclose(fit.table["coef"], ref.params, atol=1e-5)
    np.testing.assert_allclose(fit.table["se"], ref.bse, rtol=1e-4)
    np.testing.assert_allclose(fit.table["p_value"], ref.pvalues, rtol=1e-4)
    z = stats.norm.ppf(0.975)
    np.testing.assert_allclose(fit.table["lower"], np.exp(ref.params - z * ref.bse), rtol=1e-4)
    events = int(FRAME["event"].sum())
    assert fit.events == events and fit.parameters == 2
    assert fit.events_per_variable == events / 2


def test_monotone_likelihood_is_not_estimable_by_cox_but_finite_by_firth():
    cox = cox_fit(FRAME, ["a", "b", "c"])
    assert cox.reason and "monotone" in cox.reason
    assert cox.table["hr"].isna().all()
    firth = firth_cox(FRAME, ["a", "b", "c"])
    c = firth.table.set_index("covariate").loc["c"]
    assert 0 < c["lower"] < c["hr"] < c["upper"] < 1
    unpenalised = firth_cox(FRAME, ["a", "b", "c"], penalty=0.0)
    assert unpenalised.reason and unpenalised.table["hr"].isna().all()


def test_ridge_shrinks_towards_one():
    plain = cox_fit(FRAME, ["a", "b"]).table["coef"].abs()
    ridge = cox_fit(FRAME, ["a", "b"], penalizer=0.5)
    assert ridge.method == RIDGE
    assert (ridge.table["coef"].abs().to_numpy() < plain.to_numpy()).all()


def _replay_stepwise(frame, candidates, entry, stay):
    """The same procedure, written independently with statsmodels (Efron ties)."""
    def pvalues(names):
        fit = sm.PHReg(frame["duration"], frame[names], status=frame["event"],
                       ties="efron").fit()
        return pd.Series(fit.pvalues, index=names)

    model = [c for c in candidates if pvalues([c]).iloc[0] < entry]
    while model:
        p = pvalues(model)
        if p.max() < stay:
            break
        model.remove(p.idxmax())
    return model


def test_stepwise_enters_and_removes_like_a_replay():
    rng = np.random.default_rng(7)
    n = 80
    frame = pd.DataFrame({"x1": rng.integers(0, 2, n), "x2": rng.integers(0, 2, n),
                          "x3": rng.integers(0, 2, n)}).astype(float)
    frame["x4"] = np.where(rng.random(n) < 0.85, frame["x1"], 1 - frame["x1"])  # x1's proxy
    hazard = np.exp(1.2 * frame["x1"] + 0.4 * frame["x2"])
    time = rng.exponential(1 / hazard) * 100
    censor = rng.uniform(0, 150, n)
    frame["duration"] = np.minimum(time, censor).round(1) + 0.1
    frame["event"] = (time <= censor).astype(float)
    candidates = ["x1", "x2", "x3", "x4"]
    result = stepwise_cox(frame, candidates, entry_p=0.10, stay_p=0.10)
    expected = _replay_stepwise(frame, candidates, 0.10, 0.10)
    assert result.selected == expected
    entered = result.univariate.set_index("covariate")["entered"]
    assert entered.sum() >= 2, "the example must exercise backward elimination"
    removed = result.steps.query("action == 'remove'")["covariate"].tolist()
    assert removed, "the example must remove a factor"
    assert sorted(removed) == [c for c in candidates if entered[c] and c not in expected]
    # a stricter entry lets fewer factors in
    strict = stepwise_cox(frame, candidates, entry_p=1e-6)
    assert strict.univariate["entered"].sum() < entered.sum()


def test_firth_above_the_profile_limit_uses_wald_intervals(monkeypatch):
    profiled = firth_cox(FRAME, ["a", "b"])
    monkeypatch.setattr(cox_models, "PROFILE_MAX_EVENTS", 0)
    wald = firth_cox(FRAME, ["a", "b"])
    assert (profiled.details["interval"], wald.details["interval"]) == \
        ("profile likelihood", "Wald")
    np.testing.assert_allclose(wald.table["coef"], profiled.table["coef"])
    z = stats.norm.ppf(0.975)
    b, se = wald.table["coef"], wald.table["se"]
    np.testing.assert_allclose(wald.table["lower"], np.exp(b - z * se))
    np.testing.assert_allclose(wald.table["p_value"], 2 * stats.norm.sf(abs(b / se)))

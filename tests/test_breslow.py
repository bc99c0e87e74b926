"""Breslow partial likelihood from risk-set sums, against brute force, statsmodels and
lifelines."""

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from lifelines import CoxPHFitter

from bridge_hsct.stats.breslow import RiskSets, maximise, penalised_objective, robust_variance

RNG = np.random.default_rng(7)
N = 60
X = np.column_stack([RNG.integers(0, 2, N), RNG.normal(size=N)])
TIED_TIME = RNG.integers(1, 15, N).astype(float)  # many ties
UNTIED_TIME = RNG.permutation(N) + 1.0
EVENT = RNG.random(N) < 0.7
WEIGHTS = RNG.uniform(0.3, 3.0, N)


def test_risk_set_sums_match_brute_force():
    sets = RiskSets(TIED_TIME, EVENT, X, WEIGHTS)
    event_times = np.unique(TIED_TIME[EVENT])
    expected = np.array([X[TIED_TIME >= t].sum(axis=0) for t in event_times])
    np.testing.assert_allclose(sets.at_risk(sets.x), expected)
    deaths = [WEIGHTS[EVENT & (TIED_TIME == t)].sum() for t in event_times]
    np.testing.assert_allclose(sets.deaths, deaths)


def test_unweighted_fit_matches_statsmodels_breslow():
    sets = RiskSets(TIED_TIME, EVENT, X)
    beta, _, converged, _ = maximise(sets)
    ref = sm.PHReg(TIED_TIME, X, status=EVENT.astype(int), ties="breslow").fit()
    assert converged
    np.testing.assert_allclose(beta, ref.params, atol=1e-7)
    info = penalised_objective(beta, sets)[2]
    np.testing.assert_allclose(np.sqrt(np.diag(np.linalg.inv(info))), ref.bse, rtol=1e-6)


def test_integer_weights_equal_duplicated_patients():
    copies = RNG.integers(1, 4, N)
    weighted = maximise(RiskSets(TIED_TIME, EVENT, X, copies))[0]
    rows = np.repeat(np.arange(N), copies)
    duplicated = maximise(RiskSets(TIED_TIME[rows], EVENT[rows], X[rows]))[0]
    np.testing.assert_allclose(weighted, duplicated, atol=1e-9)


@pytest.mark.parametrize("penalty", [0.0, 0.5])
def test_gradient_is_the_derivative_of_the_objective(penalty):
    sets = RiskSets(TIED_TIME, EVENT, X, WEIGHTS)
    beta = np.array([0.4, -0.3])
    _, gradient, info = penalised_objective(beta, sets, penalty)
    h = 1e-6
    numeric = [(penalised_objective(beta + h * u, sets, penalty)[0]
                - penalised_objective(beta - h * u, sets, penalty)[0]) / (2 * h)
               for u in np.eye(2)]
    np.testing.assert_allclose(gradient, numeric, rtol=1e-5, atol=1e-7)
    # the information is minus the derivative of the (unpenalised) score
    numeric_info = [-(penalised_objective(beta + h * u, sets)[1]
                      - penalised_objective(beta - h * u, sets)[1]) / (2 * h)
                    for u in np.eye(2)]
    np.testing.assert_allclose(info, np.array(numeric_info).T, rtol=1e-5)


def test_weighted_fit_and_robust_variance_match_lifelines_without_ties():
    # without tied times Breslow and Efron coincide, and lifelines' sandwich is exact
    frame = pd.DataFrame({"a": X[:, 0], "b": X[:, 1], "time": UNTIED_TIME,
                          "event": EVENT.astype(int), "w": WEIGHTS})
    ref = CoxPHFitter().fit(frame, "time", "event", weights_col="w", robust=True)
    sets = RiskSets(UNTIED_TIME, EVENT, X, WEIGHTS)
    beta, _, converged, _ = maximise(sets)
    assert converged
    np.testing.assert_allclose(beta, ref.params_.to_numpy(), atol=1e-6)
    np.testing.assert_allclose(np.sqrt(np.diag(robust_variance(beta, sets))),
                               ref.standard_errors_.to_numpy(), rtol=1e-5)

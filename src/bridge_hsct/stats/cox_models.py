"""Multivariable Cox models for few events: maximum likelihood, Firth, ridge, stepwise.

With a handful of events and several binary factors (one or two events per variable, far
below the usual 10), maximum-likelihood estimates are biased away from 1, their Wald
intervals are unreliable, and a factor level without any event makes the partial likelihood
monotone (the estimate runs off to infinity). Three fits and a selection procedure:

:func:`cox_fit`
    ordinary maximum partial likelihood (lifelines :class:`~lifelines.CoxPHFitter`, Efron
    ties, Wald interval and P value), as SPSS does; with ``penalizer > 0``, lifelines' L2
    penalty on the standardised coefficients (ridge), which shrinks every hazard ratio
    towards 1 (its Wald intervals ignore the shrinkage, so they are indicative only);
:func:`firth_cox`
    Firth's penalised partial likelihood (Heinze & Schemper 2001, as R's ``coxphf``): the log
    partial likelihood plus half the log-determinant of the information matrix, Breslow
    ties, profile penalised-likelihood intervals and penalised likelihood-ratio P values. It
    removes the first-order bias and stays finite under monotone likelihood. Written here on
    the risk-set sums of :mod:`bridge_hsct.stats.breslow`. ``firthmodels`` (PyPI) gives the
    same estimates, intervals and P values (its reference values are in the tests); it is
    not a dependency: see ``benchmarks/firth.py`` and ``benchmarks/README.md`` for what was
    measured;
:func:`stepwise_cox`
    univariate screen then backward elimination on the Wald P value.

Every function takes a model frame (``duration``, ``event`` and one numeric column per
covariate) and returns fits that name covariates by their column; labelling them is the
caller's business.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from lifelines import CoxPHFitter
from lifelines.exceptions import ConvergenceError, ConvergenceWarning
from scipy import optimize, stats

from .breslow import MAX_ABS_COEF, RiskSets, maximise, penalised_objective
from .survival import fit_cox

#: Convergence threshold of lifelines' Newton steps: its default (1e-7) stops early enough to
#: leave hazard ratios ~1e-4 from R's coxph on tied data.
LIFELINES_PRECISION = 1e-10

COX = "cox"
FIRTH = "firth"
RIDGE = "ridge"
#: Above this many events Firth intervals and P values are Wald, not profile likelihood: the
#: two agree at that size, and profiling a 100,000-patient model costs minutes.
PROFILE_MAX_EVENTS = 1000
#: Univariate P below which a candidate enters the stepwise model.
ENTRY_P = 0.10
#: P below which a covariate stays in the stepwise model (SPSS's default for backward
#: elimination).
STAY_P = 0.10
FIT_COLUMNS = ("covariate", "coef", "se", "hr", "lower", "upper", "p_value")


@dataclass
class CoxFit:
    """A fitted (or not estimable) Cox model.

    Attributes
    ----------
    method : :data:`COX`, :data:`FIRTH` or :data:`RIDGE`.
    covariates : the model's columns, in order.
    table : one row per covariate: covariate, coef, se, hr, lower, upper, p_value (NaN when
        not estimable).
    n, events : patients and events in the model frame.
    reason : why the model could not be estimated (None when it was).
    details : how it was fitted (penalty, likelihood, convergence, kind of interval).
    """

    method: str
    covariates: list
    table: pd.DataFrame
    n: int
    events: int
    reason: str | None = None
    details: dict = field(default_factory=dict)

    @property
    def parameters(self) -> int:
        """Number of estimated coefficients."""
        return len(self.covariates)

    @property
    def events_per_variable(self) -> float:
        """Events divided by coefficients (NaN for an empty model)."""
        return self.events / self.parameters if self.parameters else math.nan


def _empty_table(covariates: list[str]) -> pd.DataFrame:
    return pd.DataFrame({"covariate": covariates,
                         **{k: math.nan for k in FIT_COLUMNS[1:]}})


def _not_estimable(frame: pd.DataFrame, covariates: list[str], method: str) -> CoxFit | None:
    """A not-estimable fit when the frame cannot support the model, else None."""
    n, events = len(frame), int(frame["event"].sum())
    reason = None
    if events == 0:
        reason = "no events"
    elif not covariates:
        reason = "no covariates"
    else:
        constant = [c for c in covariates if frame[c].nunique() < 2]
        if constant:
            reason = "no variation in " + ", ".join(constant)
    if reason:
        return CoxFit(method, list(covariates), _empty_table(covariates), n, events, reason)
    return None


def cox_fit(frame: pd.DataFrame, covariates: list[str], alpha: float = 0.05,
            penalizer: float = 0.0) -> CoxFit:
    """Cox model by maximum partial likelihood (:func:`bridge_hsct.stats.survival.fit_cox`,
    Efron ties), or ridge-penalised with lifelines.

    Parameters
    ----------
    frame : columns ``duration``, ``event`` (0/1) and the covariates.
    covariates : columns of `frame` to put in the model.
    alpha : one minus the confidence level.
    penalizer : lifelines' L2 penalty (0 for the ordinary Cox model); lifelines applies it to
        the coefficients of the standardised covariates.

    Returns
    -------
    CoxFit
        Efron ties, Wald intervals and P values. When the fit does not converge (typically
        the monotone likelihood of a factor level without events) the estimates are NaN and
        ``reason`` says why; nothing is raised.
    """
    method = RIDGE if penalizer > 0 else COX
    early = _not_estimable(frame, covariates, method)
    if early:
        return early
    n, events = len(frame), int(frame["event"].sum())
    if penalizer == 0:  # the package's Efron fit: R's estimates, where lifelines stops ~1e-5 off
        model, problem = fit_cox(frame[["duration", "event", *covariates]], "duration", "event",
                                 alpha)
        if problem:
            return CoxFit(method, list(covariates), _empty_table(covariates), n, events,
                          f"not estimable ({problem})")
        table = model.summary.loc[covariates].rename_axis("covariate").reset_index()
        details = {"penalizer": 0.0, "log_likelihood": model.log_likelihood}
        return CoxFit(method, list(covariates), table, n, events, None, details)
    fitter = CoxPHFitter(alpha=alpha, penalizer=penalizer)
    with warnings.catch_warnings(record=True):  # a ridge fit is finite: its warnings go
        warnings.simplefilter("always", ConvergenceWarning)
        try:
            # batch mode: sums over distinct times instead of a Python loop over rows
            fitter.fit(frame[["duration", "event", *covariates]], duration_col="duration",
                       event_col="event", batch_mode=True,
                       fit_options={"precision": LIFELINES_PRECISION})
        except (ConvergenceError, np.linalg.LinAlgError) as error:
            return CoxFit(method, list(covariates), _empty_table(covariates), n, events,
                          f"did not converge: {error}")
    s = fitter.summary.loc[covariates]
    level = f"{100 * (1 - alpha):g}%"  # how lifelines names its interval columns
    table = pd.DataFrame({
        "covariate": covariates, "coef": s["coef"].to_numpy(),
        "se": s["se(coef)"].to_numpy(), "hr": s["exp(coef)"].to_numpy(),
        "lower": s[f"exp(coef) lower {level}"].to_numpy(),
        "upper": s[f"exp(coef) upper {level}"].to_numpy(), "p_value": s["p"].to_numpy(),
    })
    details = {"penalizer": penalizer, "log_likelihood": float(fitter.log_likelihood_)}
    return CoxFit(method, list(covariates), table, n, events, None, details)


# ---------------------------------------------------------------------------------------------
# Firth-penalised Cox model (Breslow ties)
# ---------------------------------------------------------------------------------------------
def _profile_intervals(sets: RiskSets, penalty: float, beta: np.ndarray, best: float,
                       se: np.ndarray, alpha: float):
    """Profile penalised-likelihood interval bounds (log scale) and likelihood-ratio P of
    each coefficient."""
    everything = list(range(len(beta)))
    critical = stats.chi2.ppf(1 - alpha, 1)

    def profile(k: int, value: float, start: np.ndarray) -> float:
        fixed = start.copy()
        fixed[k] = value
        others = [j for j in everything if j != k]
        if not others:
            return penalised_objective(fixed, sets, penalty)[0]
        _, found, _, _ = maximise(sets, penalty, fixed, others)
        return found

    lower, upper, p_values = [], [], []
    for k in everything:
        def excess(value, k=k):
            return 2 * (best - profile(k, value, beta)) - critical

        bounds = []
        for direction in (-1, 1):
            # widen the bracket until the profile has dropped far enough (or give up: ±∞)
            width = max(1.0, 2 * se[k])
            edge = beta[k] + direction * width
            while excess(edge) < 0 and abs(edge - beta[k]) < 40:
                width *= 2
                edge = beta[k] + direction * width
            if excess(edge) < 0:
                bounds.append(direction * math.inf)
                continue
            try:
                bounds.append(optimize.brentq(excess, min(beta[k], edge),
                                              max(beta[k], edge), xtol=1e-8))
            except (RuntimeError, ValueError):
                bounds.append(math.nan)
        lower.append(bounds[0])
        upper.append(bounds[1])
        statistic = max(0.0, 2 * (best - profile(k, 0.0, beta)))
        p_values.append(float(stats.chi2.sf(statistic, 1)))
    return lower, upper, p_values


def firth_cox(frame: pd.DataFrame, covariates: list[str], alpha: float = 0.05,
              penalty: float = 0.5) -> CoxFit:
    """Cox model by Firth's penalised partial likelihood (R ``coxphf`` conventions).

    Parameters
    ----------
    frame : columns ``duration``, ``event`` (0/1) and the covariates.
    covariates : columns of `frame` to put in the model.
    alpha : one minus the confidence level.
    penalty : weight of ``log det I(β)``; 0.5 is Firth's (Jeffreys prior), 0 gives the
        ordinary maximum partial likelihood estimate with Breslow ties.

    Returns
    -------
    CoxFit
        Coefficients maximising the penalised likelihood; ``se`` from the inverse
        information at the estimate; the interval is where the profile penalised
        log-likelihood drops by ``χ²₁(1 − α)/2`` and the P value is the penalised likelihood
        ratio test of the coefficient being 0 (Wald interval and P above
        :data:`PROFILE_MAX_EVENTS` events). ``details`` says whether Newton–Raphson
        converged and which ``interval`` was computed.
    """
    method = FIRTH if penalty > 0 else COX
    early = _not_estimable(frame, covariates, method)
    if early:
        return early
    x = frame[covariates].to_numpy(float)
    event = frame["event"].to_numpy(int) == 1
    sets = RiskSets(frame["duration"].to_numpy(float), event, x)
    beta, best, converged, iterations = maximise(sets, penalty)
    _, _, info = penalised_objective(beta, sets, penalty)
    table = _empty_table(covariates)
    if not converged or not np.isfinite(best) or np.max(np.abs(beta)) > MAX_ABS_COEF:
        what = "penalised likelihood" if penalty else "partial likelihood"
        return CoxFit(method, list(covariates), table, len(frame), int(event.sum()),
                      f"the {what} did not converge (monotone likelihood?)")
    se = np.sqrt(np.diag(np.linalg.inv(info)))
    if event.sum() > PROFILE_MAX_EVENTS:
        interval = "Wald"
        z = stats.norm.ppf(1 - alpha / 2)
        lower, upper = beta - z * se, beta + z * se
        p_values = 2 * stats.norm.sf(np.abs(beta / se))
    else:
        interval = "profile likelihood"
        lower, upper, p_values = _profile_intervals(sets, penalty, beta, best, se, alpha)
    table["coef"] = beta
    table["se"] = se
    table["hr"] = np.exp(beta)
    table["lower"] = np.exp(lower)
    table["upper"] = np.exp(upper)
    table["p_value"] = p_values
    details = {"penalty": penalty, "penalised_log_likelihood": float(best),
               "converged": converged, "iterations": iterations, "interval": interval}
    return CoxFit(method, list(covariates), table, len(frame), int(event.sum()), None,
                  details)


# ---------------------------------------------------------------------------------------------
# Stepwise selection
# ---------------------------------------------------------------------------------------------
@dataclass
class StepwiseResult:
    """What :func:`stepwise_cox` did.

    Attributes
    ----------
    univariate : one row per candidate: its univariate fit (covariate, coef, se, hr, lower,
        upper, p_value), n, events, reason, and whether it ``entered``.
    steps : step, action (enter / remove), covariate, p_value, reason.
    final : the final model (possibly without covariates).
    """

    univariate: pd.DataFrame
    steps: pd.DataFrame
    final: CoxFit

    @property
    def selected(self) -> list[str]:
        """Covariates left in the final model."""
        return list(self.final.covariates)


def stepwise_cox(frame: pd.DataFrame, candidates: list[str], entry_p: float = ENTRY_P,
                 stay_p: float = STAY_P, alpha: float = 0.05) -> StepwiseResult:
    """Univariate screen then backward elimination on the Wald P value.

    Each candidate is first fitted alone (:func:`cox_fit`); those with P < `entry_p` enter a
    multivariable model. The covariate with the largest P is then dropped, and the model
    refitted, while that P is ≥ `stay_p` (or the model is not estimable).

    Parameters
    ----------
    frame : columns ``duration``, ``event`` (0/1) and the candidates.
    candidates : covariates to screen.
    entry_p : univariate P below which a covariate enters.
    stay_p : P below which a covariate stays in the model.
    alpha : one minus the confidence level of the reported intervals.

    Returns
    -------
    StepwiseResult
    """
    rows = []
    for name in candidates:
        fit = cox_fit(frame, [name], alpha)
        row = fit.table.iloc[0].to_dict()
        row.update(n=fit.n, events=fit.events, reason=fit.reason or "",
                   entered=bool(row["p_value"] < entry_p))
        rows.append(row)
    univariate = pd.DataFrame(rows)
    model = [r["covariate"] for r in rows if r["entered"]]
    steps = [{"step": 0, "action": "enter", "covariate": r["covariate"],
              "p_value": r["p_value"], "reason": f"univariate P < {entry_p:g}"}
             for r in rows if r["entered"]]
    step = 0
    while True:
        fit = cox_fit(frame, model, alpha)
        if not model:
            break
        p = fit.table.set_index("covariate")["p_value"]
        if fit.reason:
            # not estimable as a whole: drop the factor that is least significant alone
            alone = univariate.set_index("covariate").loc[model, "p_value"]
            worst, worst_p = alone.idxmax(), float(alone.max())
            why = f"model not estimable ({fit.reason.split(':')[0]}); largest univariate P"
        elif p.max() >= stay_p:
            worst, worst_p = p.idxmax(), float(p.max())
            why = f"largest P ≥ {stay_p:g}"
        else:
            break
        step += 1
        steps.append({"step": step, "action": "remove", "covariate": worst,
                      "p_value": worst_p, "reason": why})
        model = [c for c in model if c != worst]
    return StepwiseResult(univariate, pd.DataFrame(
        steps, columns=["step", "action", "covariate", "p_value", "reason"]), fit)

"""Table 2: multivariable Cox models of grade III–IV acute GVHD and chronic GVHD.

The paper fits, for each outcome, a Cox model with a handful of binary factors and reports
hazard ratios with 95% CIs and P values (Table 2), after "stepwise selection on the basis of
the P value of variables with a P value < 0.10 in the univariate analysis" (Methods).

With 5 or 6 events and 3 or 4 covariates (one or two events per variable, far below the
usual 10), maximum-likelihood estimates are biased away from 1, their Wald intervals are
unreliable, and a factor level without any event makes the partial likelihood monotone (the
estimate runs off to infinity). So each model is fitted three ways:

``cox``
    ordinary maximum partial likelihood (lifelines :class:`~lifelines.CoxPHFitter`, Efron ties,
    Wald interval and P value), as the paper (SPSS) did;
``firth``
    Firth's penalised partial likelihood (Heinze & Schemper 2001, as R's ``coxphf``):
    the log partial likelihood plus half the log-determinant of the information matrix,
    Breslow ties, profile penalised-likelihood intervals and penalised likelihood-ratio
    P values. It removes the first-order bias and stays finite under monotone likelihood;
    hand-written here (:func:`firth_cox`) because no maintained package in the project's
    environment provides it;
``ridge``
    lifelines' L2 penalty (``penalizer``) on the standardised coefficients: shrinks every
    hazard ratio towards 1. Its Wald intervals ignore the shrinkage, so they are indicative
    only.

Competing events (relapse or death before GVHD) are censored, i.e. the models are
cause-specific hazard models, consistent with the paper's 1 − Kaplan–Meier incidences.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from lifelines import CoxPHFitter
from lifelines.exceptions import ConvergenceError, ConvergenceWarning
from scipy import optimize, stats

from ..cohort.endpoints import ENDPOINTS, as_censored, derive
from ..render.disclosure import count_text
from ..render.formatting import ci_label, confidence_percent, format_p
from ..stats.breslow import MAX_ABS_COEF, RiskSets, maximise, penalised_objective

COX = "cox"
FIRTH = "firth"
RIDGE = "ridge"
MODEL_LABELS = {
    COX: "Cox, maximum likelihood (paper's method)",
    FIRTH: "Cox, Firth-penalised likelihood",
    RIDGE: "Cox, ridge-penalised (lifelines penalizer)",
    "stepwise": "Cox, after stepwise selection (paper's method)",
}
RIDGE_PENALIZER = 0.1
#: Above this many events Firth intervals and P values are Wald, not profile likelihood: the
#: two agree at that size, and profiling a 100,000-patient model costs minutes.
PROFILE_MAX_EVENTS = 1000
ENTRY_P = 0.10
STAY_P = 0.10


@dataclass(frozen=True)
class Covariate:
    """A binary factor of a model: how it is coded from the cohort and how it is labelled.

    Parameters
    ----------
    name : column of the model frame (the factor coded 1 / 0).
    label : what the table shows, with the reference level.
    source : the cohort column it is computed from (absent → factor left out).
    encode : cohort → Series of 1.0 / 0.0 (NaN where unknown).
    """

    name: str
    label: str
    source: str
    encode: Callable[[pd.DataFrame], pd.Series]


def _indicator(column: str, test: Callable) -> Callable[[pd.DataFrame], pd.Series]:
    def encode(data: pd.DataFrame) -> pd.Series:
        values = data[column]
        return values.map(lambda v: np.nan if pd.isna(v) else float(bool(test(v))))
    return encode


COVARIATES: dict[str, Covariate] = {c.name: c for c in [
    Covariate("age_over_40", "Patient age > 40 years (vs ≤ 40)", "age_years",
              _indicator("age_years", lambda v: v > 40)),
    Covariate("conditioning_tbi", "TBI-based conditioning (vs chemotherapy-based)",
              "conditioning", _indicator("conditioning", lambda v: v == "TBI")),
    Covariate("graft_pb_bm", "Graft PB + BM (vs PB)", "graft_source",
              _indicator("graft_source", lambda v: v == "PB+BM")),
    Covariate("donor_haploidentical", "Haploidentical donor (vs MSD or MUD)", "donor_type",
              _indicator("donor_type", lambda v: v == "HID")),
    Covariate("donor_female", "Female donor (vs male)", "donor_sex",
              _indicator("donor_sex", lambda v: v == "F")),
    Covariate("second_hsct", "Second HSCT (vs first)", "prior_hsct",
              _indicator("prior_hsct", lambda v: v == 1)),
]}

#: The models of the paper's Table 2: outcome endpoint → its factors, in the paper's order.
TABLE2_MODELS: dict[str, tuple[str, ...]] = {
    "agvhd_3_4": ("age_over_40", "conditioning_tbi", "graft_pb_bm", "donor_haploidentical"),
    "cgvhd": ("donor_female", "graft_pb_bm", "second_hsct"),
}


# ---------------------------------------------------------------------------------------------
# Model frame and fits
# ---------------------------------------------------------------------------------------------
def model_frame(data: pd.DataFrame, endpoint: str, covariates: list[str]) -> pd.DataFrame:
    """Duration, event and the coded factors of the patients with every factor known.

    Parameters
    ----------
    data : validated cohort.
    endpoint : key of :data:`bridge_hsct.cohort.endpoints.ENDPOINTS` (competing events censored).
    covariates : keys of :data:`COVARIATES` whose source columns are in `data`.

    Returns
    -------
    pandas.DataFrame
        Columns ``duration`` (days), ``event`` (0/1) and one 0/1 column per covariate.
    """
    outcome = as_censored(derive(data, endpoint))
    frame = pd.DataFrame({"duration": outcome["time"], "event": outcome["cause"]},
                         index=data.index)
    for name in covariates:
        frame[name] = COVARIATES[name].encode(data).astype(float)
    return frame.dropna().reset_index(drop=True)


@dataclass
class CoxFit:
    """A fitted (or not estimable) Cox model.

    ``table`` has one row per covariate: covariate, label, coef, se, hr, lower, upper,
    p_value (NaN when not estimable). ``reason`` says why a model could not be estimated.
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
    return pd.DataFrame({
        "covariate": covariates,
        "label": [COVARIATES[c].label if c in COVARIATES else c for c in covariates],
        **{k: math.nan for k in ("coef", "se", "hr", "lower", "upper", "p_value")},
    })


def _not_estimable(frame, covariates, method, reason) -> CoxFit | None:
    n, events = len(frame), int(frame["event"].sum())
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
    """Cox model by (optionally ridge-penalised) maximum partial likelihood, with lifelines.

    Parameters
    ----------
    frame : from :func:`model_frame`.
    covariates : columns of `frame` to put in the model.
    alpha : one minus the confidence level.
    penalizer : lifelines' L2 penalty (0 for the ordinary Cox model); lifelines applies it to
        the coefficients of the standardised covariates.

    Returns
    -------
    CoxFit
        Efron ties, Wald intervals and P values. When lifelines reports a convergence problem
        (typically the monotone likelihood of a factor level without events) the estimates
        are NaN and ``reason`` says why; nothing is raised.
    """
    method = RIDGE if penalizer > 0 else COX
    early = _not_estimable(frame, covariates, method, None)
    if early:
        return early
    n, events = len(frame), int(frame["event"].sum())
    fitter = CoxPHFitter(alpha=alpha, penalizer=penalizer)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        try:
            fitter.fit(frame[["duration", "event", *covariates]], duration_col="duration",
                       event_col="event")
        except (ConvergenceError, np.linalg.LinAlgError) as error:
            return CoxFit(method, list(covariates), _empty_table(covariates), n, events,
                          f"did not converge: {error}")
    problems = [str(w.message).strip() for w in caught
                if issubclass(w.category, ConvergenceWarning)]
    if problems and penalizer == 0:
        return CoxFit(method, list(covariates), _empty_table(covariates), n, events,
                      "not estimable (monotone likelihood or non-convergence); lifelines: "
                      + problems[0].splitlines()[0].split(". ")[0].rstrip(".") + ".")
    s = fitter.summary
    level = confidence_percent(alpha)  # lifelines' name of the interval's columns
    table = _empty_table(covariates)
    table["coef"] = s.loc[covariates, "coef"].to_numpy()
    table["se"] = s.loc[covariates, "se(coef)"].to_numpy()
    table["hr"] = s.loc[covariates, "exp(coef)"].to_numpy()
    table["lower"] = s.loc[covariates, f"exp(coef) lower {level}"].to_numpy()
    table["upper"] = s.loc[covariates, f"exp(coef) upper {level}"].to_numpy()
    table["p_value"] = s.loc[covariates, "p"].to_numpy()
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
    frame : from :func:`model_frame`.
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
        ratio test of the coefficient being 0. ``details["converged"]`` says whether Newton–
        Raphson converged.
    """
    method = FIRTH if penalty > 0 else COX
    early = _not_estimable(frame, covariates, method, None)
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
    """What :func:`stepwise_cox` did: univariate screen, elimination steps, final model."""

    univariate: pd.DataFrame
    steps: pd.DataFrame
    final: CoxFit

    @property
    def selected(self) -> list[str]:
        """Covariates left in the final model."""
        return list(self.final.covariates)


def stepwise_cox(frame: pd.DataFrame, candidates: list[str], entry_p: float = ENTRY_P,
                 stay_p: float = STAY_P, alpha: float = 0.05) -> StepwiseResult:
    """Univariate screen then backward elimination on the Wald P value (the paper's method).

    Each candidate is first fitted alone; those with P < `entry_p` enter a multivariable
    model. The covariate with the largest P is then dropped, and the model refitted, while
    that P is ≥ `stay_p` (or not estimable).

    Parameters
    ----------
    frame : from :func:`model_frame`.
    candidates : covariates to screen.
    entry_p : univariate P below which a covariate enters (0.10 in the paper).
    stay_p : P below which a covariate stays in the model (the paper gives none; 0.10,
        SPSS's default for backward elimination, by default).
    alpha : one minus the confidence level of the reported intervals.

    Returns
    -------
    StepwiseResult
        ``univariate`` (one row per candidate with its univariate fit and whether it
        entered), ``steps`` (step, action, covariate, p_value, reason) and the ``final``
        model (possibly with no covariate).
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


# ---------------------------------------------------------------------------------------------
# Table 2
# ---------------------------------------------------------------------------------------------
def _hr_text(row) -> str:
    if pd.isna(row["hr"]):
        return "not estimable"
    upper = "∞" if math.isinf(row["upper"]) else f"{row['upper']:.2f}"
    return f"{row['hr']:.2f} ({row['lower']:.2f}–{upper})"


def multivariate_table(data: pd.DataFrame, alpha: float = 0.05,
                       ridge_penalizer: float = RIDGE_PENALIZER,
                       models: dict | None = None) -> dict:
    """Compute Table 2: each outcome's model fitted by Cox, Firth and ridge, and stepwise.

    Parameters
    ----------
    data : validated cohort.
    alpha : one minus the confidence level.
    ridge_penalizer : lifelines penalizer of the ridge fit.
    models : outcome endpoint → covariates (default :data:`TABLE2_MODELS`).

    Returns
    -------
    dict
        ``numbers``: tidy rows (outcome, model, model_label, covariate, label, coef, se, hr,
        lower, upper, p_value, n, events, parameters, events_per_variable, reason, alpha);
        ``display``: the readable table (Cox and Firth side by side, events per variable in
        the outcome's header); ``stepwise``: outcome → :class:`StepwiseResult`;
        ``stepwise_numbers``: tidy screen (univariate HR, CI, P, decision, final HR, CI, P);
        ``stepwise_display``: the screen and elimination as a readable table;
        ``fits``: outcome → {model: :class:`CoxFit`}; ``notes``: what was left out and why;
        ``alpha``: one minus the confidence level of every interval (the headers say it).
    """
    models = TABLE2_MODELS if models is None else models
    numbers, display, step_rows, step_numbers, notes = [], [], [], [], []
    fits, stepwise = {}, {}
    for outcome, wanted in models.items():
        endpoint = ENDPOINTS[outcome]
        needed = [*endpoint.requires, *(f"{c}_days" for c in endpoint.requires)]
        if any(c not in data or data[c].isna().all() for c in needed):
            notes.append(f"{endpoint.label}: the data have no `{outcome}` event columns, so "
                         "its model is left out.")
            continue
        covariates = [c for c in wanted if COVARIATES[c].source in data
                      and data[COVARIATES[c].source].notna().any()]
        absent = [c for c in wanted if c not in covariates]
        if absent:
            notes.append(f"{endpoint.label}: left out of the model for want of data: "
                         + ", ".join(COVARIATES[c].label for c in absent) + ".")
        frame = model_frame(data, outcome, covariates)
        fits[outcome] = {
            COX: cox_fit(frame, covariates, alpha),
            FIRTH: firth_cox(frame, covariates, alpha),
            RIDGE: cox_fit(frame, covariates, alpha, penalizer=ridge_penalizer),
        }
        stepwise[outcome] = stepwise_cox(frame, covariates, alpha=alpha)
        final = stepwise[outcome].final
        for model, fit in [*fits[outcome].items(), ("stepwise", final)]:
            for _, row in fit.table.iterrows():
                numbers.append({"outcome": outcome, "model": model,
                                "model_label": MODEL_LABELS[model], **row.to_dict(),
                                "n": fit.n, "events": fit.events,
                                "parameters": fit.parameters,
                                "events_per_variable": fit.events_per_variable,
                                "reason": fit.reason or "", "alpha": alpha})
        cox, firth = fits[outcome][COX], fits[outcome][FIRTH]
        display.append([f"{endpoint.label}: {count_text(cox.events)} events in "
                        f"{count_text(cox.n)} patients, "
                        f"{cox.events_per_variable:.2f} events per variable",
                        "", "", "", "", 0])
        for (_, c), (_, f) in zip(cox.table.iterrows(), firth.table.iterrows(), strict=True):
            display.append([c["label"], _hr_text(c), format_p(c["p_value"]), _hr_text(f),
                            format_p(f["p_value"]), 1])
        for reason, name in ((cox.reason, "Cox"), (firth.reason, "Firth")):
            if reason:
                notes.append(f"{endpoint.label}, {name} model: {reason}.")
        if firth.details.get("interval") == "Wald":
            notes.append(f"{endpoint.label}, Firth model: with more than "
                         f"{PROFILE_MAX_EVENTS:,} events its {ci_label(alpha)} and P are "
                         "Wald, not "
                         "profile likelihood (they agree at that size).")
        result = stepwise[outcome]
        uni = result.univariate.set_index("covariate")
        removed = set(result.steps.query("action == 'remove'")["covariate"])
        final_table = final.table.set_index("covariate")
        step_rows.append([endpoint.label, "", "", "", "", 0])
        for name in covariates:
            u = uni.loc[name]
            decision = ("not entered" if not u["entered"] else
                        "removed" if name in removed else "kept")
            kept = final_table.loc[name] if name in final_table.index else None
            step_numbers.append({
                "outcome": outcome, "covariate": name, "label": COVARIATES[name].label,
                "univariate_hr": u["hr"], "univariate_lower": u["lower"],
                "univariate_upper": u["upper"], "univariate_p": u["p_value"],
                "entry_p": ENTRY_P, "stay_p": STAY_P, "decision": decision,
                "final_hr": kept["hr"] if kept is not None else math.nan,
                "final_lower": kept["lower"] if kept is not None else math.nan,
                "final_upper": kept["upper"] if kept is not None else math.nan,
                "final_p": kept["p_value"] if kept is not None else math.nan,
                "alpha": alpha})
            step_rows.append([COVARIATES[name].label, _hr_text(u), format_p(u["p_value"]),
                              decision, _hr_text(kept) + ", P " + format_p(kept["p_value"])
                              if kept is not None else "", 1])
    ci = ci_label(alpha)
    columns = ["Outcome and factor", f"Cox HR ({ci})", "Cox P",
               f"Firth HR ({ci})", "Firth P", "indent"]
    step_columns = ["Outcome and factor", f"Univariate HR ({ci})", "Univariate P",
                    "Decision", f"Final model HR ({ci}), P", "indent"]
    return {"numbers": pd.DataFrame(numbers), "display": pd.DataFrame(display, columns=columns),
            "stepwise": stepwise, "stepwise_numbers": pd.DataFrame(step_numbers),
            "stepwise_display": pd.DataFrame(step_rows, columns=step_columns),
            "fits": fits, "notes": notes, "alpha": alpha}


def methods_note(table2: dict) -> str:
    """How the Cox and Firth columns of Table 2 are estimated, at the table's level."""
    ci = ci_label(table2["alpha"])
    return ("Cox: maximum partial likelihood (Efron ties), Wald "
            f"{ci} and P, as in the paper. Firth: Firth-penalised partial likelihood (Breslow "
            f"ties), profile penalised-likelihood {ci} and penalised likelihood-ratio P (Wald "
            f"for an outcome with more than {PROFILE_MAX_EVENTS:,} events).")

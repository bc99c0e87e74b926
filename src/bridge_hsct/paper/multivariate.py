"""Table 2: multivariable Cox models of grade III–IV acute GVHD and chronic GVHD.

The paper fits, for each outcome, a Cox model with a handful of binary factors and reports
hazard ratios with 95% CIs and P values (Table 2), after "stepwise selection on the basis of
the P value of variables with a P value < 0.10 in the univariate analysis" (Methods).

With 5 or 6 events and 3 or 4 covariates (one or two events per variable), each model is
fitted three ways by :mod:`bridge_hsct.stats.cox_models`: ordinary maximum partial likelihood
(``cox``, Efron ties, Wald intervals, as the paper's SPSS did), Firth's penalised partial
likelihood (``firth``, profile-likelihood intervals; finite under monotone likelihood) and
lifelines' ridge penalty (``ridge``), and the paper's stepwise selection is replayed. This
module holds what is the paper's: the factors and how they are coded from the cohort, the
models of Table 2, their labels and the displayed table.

Competing events (relapse or death before GVHD) are censored, i.e. the models are
cause-specific hazard models, consistent with the paper's 1 − Kaplan–Meier incidences.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..cohort.endpoints import ENDPOINTS, as_censored, derive, known_status, missing_columns
from ..render.disclosure import Disclosure
from ..render.formatting import ci_label, format_p, in_sentence
from ..render.tables import Table
from ..stats.cox_models import (
    COX,
    ENTRY_P,
    FIRTH,
    PROFILE_MAX_EVENTS,
    RIDGE,
    STAY_P,
    cox_fit,
    firth_cox,
    stepwise_cox,
)
from .outcomes import left_out_sentence

MODEL_LABELS = {
    COX: "Cox, maximum likelihood (paper's method)",
    FIRTH: "Cox, Firth-penalised likelihood",
    RIDGE: "Cox, ridge-penalised (lifelines penalizer)",
    "stepwise": "Cox, after stepwise selection (paper's method)",
}
RIDGE_PENALIZER = 0.1


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
# Model frame
# ---------------------------------------------------------------------------------------------
def model_frame(data: pd.DataFrame, endpoint: str, covariates: list[str]) -> pd.DataFrame:
    """Duration, event and the coded factors of the patients with a known status for
    `endpoint` and every factor known.

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
    data = data[known_status(data, endpoint)]
    outcome = as_censored(derive(data, endpoint))
    frame = pd.DataFrame({"duration": outcome["time"], "event": outcome["cause"]},
                         index=data.index)
    for name in covariates:
        frame[name] = COVARIATES[name].encode(data).astype(float)
    return frame.dropna().reset_index(drop=True)



def _labelled(table: pd.DataFrame) -> pd.DataFrame:
    """A fit's table with each covariate's label after its name."""
    labelled = table.copy()
    labelled.insert(1, "label", [COVARIATES[c].label if c in COVARIATES else c
                                 for c in table["covariate"]])
    return labelled


# ---------------------------------------------------------------------------------------------
# Table 2
# ---------------------------------------------------------------------------------------------
def _hr_text(row) -> str:
    if pd.isna(row["hr"]):
        return "not estimable"
    upper = "∞" if math.isinf(row["upper"]) else f"{row['upper']:.2f}"
    return f"{row['hr']:.2f} ({row['lower']:.2f}–{upper})"


@dataclass
class MultivariateTable(Table):
    """Table 2: a :class:`~bridge_hsct.render.tables.Table` of each outcome's model fitted
    by Cox and Firth side by side (``numbers`` holds every model: Cox, Firth, ridge and the
    stepwise final model), with what the page and the audit need besides.

    Parameters
    ----------
    selection : the stepwise screen and elimination, as its own table.
    fits : outcome → {model: :class:`~bridge_hsct.stats.cox_models.CoxFit`}.
    stepwise : outcome → :class:`~bridge_hsct.stats.cox_models.StepwiseResult`.
    alpha : one minus the confidence level of every interval (the headers say it).
    """

    selection: Table | None = None
    fits: dict = field(default_factory=dict)
    stepwise: dict = field(default_factory=dict)
    alpha: float = 0.05

    def methods_note(self) -> str:
        """How the Cox and Firth columns are estimated, at the table's confidence level."""
        ci = ci_label(self.alpha)
        return ("Cox: maximum partial likelihood (Efron ties: this package's choice; the paper "
                f"does not say how ties were handled), Wald {ci} and P. Firth: Firth-penalised "
                "partial likelihood (Breslow "
                f"ties), profile penalised-likelihood {ci} and penalised likelihood-ratio P (Wald "
                f"for an outcome with more than {PROFILE_MAX_EVENTS:,} events).")


def multivariate_table(data: pd.DataFrame, alpha: float = 0.05,
                       ridge_penalizer: float = RIDGE_PENALIZER,
                       models: dict | None = None, *,
                       disclosure: Disclosure) -> MultivariateTable:
    """Compute Table 2: each outcome's model fitted by Cox, Firth and ridge, and stepwise.

    Parameters
    ----------
    data : validated cohort.
    alpha : one minus the confidence level.
    ridge_penalizer : lifelines penalizer of the ridge fit.
    models : outcome endpoint → covariates (default :data:`TABLE2_MODELS`).
    disclosure : the small-cell suppression of its counts (the chapter's; the audit, which
        reads only the numbers, passes :data:`~bridge_hsct.render.disclosure.NO_SUPPRESSION`).

    Returns
    -------
    MultivariateTable
        ``numbers``: tidy rows (outcome, model, model_label, covariate, label, coef, se, hr,
        lower, upper, p_value, n, events, parameters, events_per_variable, reason, alpha);
        ``display``: the readable table (Cox and Firth side by side, events per variable in
        the outcome's header); ``notes``: what was left out and why; ``selection``: the
        stepwise screen (tidy: univariate HR, CI, P, decision, final HR, CI, P; and as
        shown); ``fits``, ``stepwise`` and ``alpha``.
    """
    models = TABLE2_MODELS if models is None else models
    numbers, display, step_rows, step_numbers, notes = [], [], [], [], []
    fits, stepwise = {}, {}
    for outcome, wanted in models.items():
        endpoint = ENDPOINTS[outcome]
        missing = missing_columns(data, outcome)
        if missing:
            notes.append(f"{endpoint.label}: the data have no `{missing[0]}` column, so its "
                         "model is left out.")
            continue
        left_out = left_out_sentence(data, outcome,
                                     f"the model of {in_sentence(endpoint.label)}",
                                     disclosure=disclosure)
        if left_out:
            notes.append(left_out)
        covariates = [c for c in wanted if COVARIATES[c].source in data
                      and data[COVARIATES[c].source].notna().any()]
        absent = [c for c in wanted if c not in covariates]
        if not covariates:
            notes.append(f"{endpoint.label}: none of its model's factors is in the data, so "
                         "the model is left out.")
            continue
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
            for _, row in _labelled(fit.table).iterrows():
                numbers.append({"outcome": outcome, "model": model,
                                "model_label": MODEL_LABELS[model], **row.to_dict(),
                                "n": fit.n, "events": fit.events,
                                "parameters": fit.parameters,
                                "events_per_variable": fit.events_per_variable,
                                "reason": fit.reason or "", "alpha": alpha})
        cox, firth = fits[outcome][COX], fits[outcome][FIRTH]
        display.append([f"{endpoint.label}: {disclosure.count_text(cox.events)} events in "
                        f"{disclosure.count_text(cox.n)} patients, "
                        f"{cox.events_per_variable:.2f} events per variable",
                        "", "", "", "", 0])
        for (_, c), (_, f) in zip(_labelled(cox.table).iterrows(), firth.table.iterrows(),
                                  strict=True):
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
    selection = Table(pd.DataFrame(step_rows, columns=step_columns),
                      pd.DataFrame(step_numbers), needs=tuple(models), disclosure=disclosure)
    return MultivariateTable(pd.DataFrame(display, columns=columns), pd.DataFrame(numbers),
                             notes, needs=tuple(models), selection=selection, fits=fits,
                             stepwise=stepwise, alpha=alpha, disclosure=disclosure)

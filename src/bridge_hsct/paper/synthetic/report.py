"""The calibration report: every target recomputed from the cohort with the book's functions.

Nothing here uses the optimiser's fast arithmetic: endpoints come from
:func:`bridge_hsct.cohort.endpoints.derive`, Kaplan-Meier estimates and medians from
:mod:`bridge_hsct.stats.survival`, 1 - Kaplan-Meier incidences from
:mod:`bridge_hsct.stats.competing`,
log-rank tests from :func:`bridge_hsct.stats.survival.logrank_test`, tests on counts from
:mod:`bridge_hsct.stats.group_tests`, t-tests from scipy, and the multivariable Cox models of
Table 2 from lifelines (Efron ties, as R's ``coxph``).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
from scipy import stats

from ...cohort.endpoints import as_censored, derive
from ...stats.competing import one_minus_km_incidence
from ...stats.group_tests import compare_numbers, fisher_2x2, linear_by_linear
from ...stats.survival import km_at, km_median, logrank_test, to_months
from .targets import COLUMN_OF, COX_CODING, COX_MODELS, Target, group_mask, split_comparison

INCIDENCE = {"nrm", "relapse", "agvhd_2_4", "agvhd_3_4", "cgvhd"}
REPORT_COLUMNS = ["target_id", "kind", "description", "quantity", "group", "statistic",
                  "method", "published", "achieved", "difference", "tolerance", "met",
                  "explanation", "also"]


# --- survival --------------------------------------------------------------------------------
def _estimate(df: pd.DataFrame, quantity: str, t: float):
    ep = as_censored(derive(df, quantity))
    if quantity in INCIDENCE:
        return one_minus_km_incidence(ep["time"], ep["cause"], 1, t=t)
    return km_at(ep["time"], ep["cause"], t)


def _km(df, t: Target) -> float:
    sub = df[group_mask(df, t.group)]
    est = _estimate(sub, t.quantity, t.landmark)
    value = {"ci_lower": est.lower, "ci_upper": est.upper}.get(t.statistic, est.value)
    return 100 * value


def _logrank(df, t: Target) -> float:
    a, b = split_comparison(t.group)
    ma, mb = group_mask(df, a), group_mask(df, b)
    sub = df[ma | mb]
    ep = as_censored(derive(sub, t.quantity))
    labels = np.where(ma[ma | mb], "a", "b")
    return logrank_test(ep["time"], ep["cause"], labels).p_value


def _km_median(df, t: Target) -> float:
    sub = df[group_mask(df, t.group)]
    ep = derive(sub, t.quantity)
    return float(to_months(km_median(ep["time"], ep["cause"]).value))


def cox_table2(df: pd.DataFrame) -> dict[tuple[str, str], float]:
    """Hazard ratios of the two multivariable Cox models of Table 2 (lifelines, Efron ties).

    Covariates are coded as in :data:`~bridge_hsct.paper.synthetic.targets.COX_CODING`; a model
    without a finite estimate (monotone likelihood) gives no entries.
    """
    from lifelines import CoxPHFitter
    from lifelines.exceptions import ConvergenceError, ConvergenceWarning

    out = {}
    for outcome, covariates in COX_MODELS.items():
        ep = as_censored(derive(df, outcome))
        frame = pd.DataFrame({f"x{k}": group_mask(df, COX_CODING[c]).astype(float)
                              for k, c in enumerate(covariates)})
        frame["time"], frame["event"] = ep["time"], ep["cause"]
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                fit = CoxPHFitter().fit(frame, "time", "event")
            except ConvergenceError:
                fit = None
        if fit is None or any(issubclass(w.category, ConvergenceWarning) for w in caught):
            continue
        for k, c in enumerate(covariates):
            out[(outcome, c)] = float(np.exp(fit.params_[f"x{k}"]))
    return out


# --- summaries and two-sample tests ----------------------------------------------------------
def _column(t: Target) -> str:
    return COLUMN_OF.get(t.quantity, t.quantity)


def _summary(df, t: Target) -> float:
    x = df.loc[group_mask(df, t.group), _column(t)].dropna().to_numpy(float)
    value = {"median": np.median, "min": np.min, "max": np.max}[t.statistic](x)
    return float(to_months(value)) if t.kind == "followup" else float(value)


def _two_samples(df, t: Target):
    a, b = split_comparison(t.group)
    col = _column(t)
    x = df.loc[group_mask(df, a), col].dropna().to_numpy(float)
    y = df.loc[group_mask(df, b), col].dropna().to_numpy(float)
    return x, y


def mann_whitney_p(df, t: Target) -> float:
    """The book's rank test for a two-sample target (:func:`group_tests.compare_numbers`)."""
    x, y = _two_samples(df, t)
    values = pd.Series(np.concatenate([x, y]))
    groups = pd.Series(["a"] * len(x) + ["b"] * len(y))
    return compare_numbers(values, groups).p_value


def _two_sample_p(df, t: Target) -> float:
    """The registry's method: Student's t-test, or Mann-Whitney when it says so."""
    if t.method == "mann_whitney":
        return mann_whitney_p(df, t)
    return float(stats.ttest_ind(*_two_samples(df, t)).pvalue)


# --- counts ----------------------------------------------------------------------------------
def _count(df, t: Target) -> float:
    sub = df[group_mask(df, t.group)]
    if t.quantity == "n_patients":
        return float(len(sub))
    return float(group_mask(sub, t.quantity).sum())


def _count_table(df: pd.DataFrame, t: Target) -> tuple[np.ndarray, bool]:
    """Levels x arms table of counts behind a Table 1 / Table 3 P value; ordered or not."""
    from ...cohort.schema import BY_NAME

    a, b = split_comparison(t.group)
    ma, mb = group_mask(df, a), group_mask(df, b)
    q = t.quantity
    if q == "donor_age_years":  # the registry: Fisher's test of the > 40 / <= 40 split
        q = "donor_age_years>40"
    var = BY_NAME.get(q)
    if var is not None and var.kind in ("category", "ordinal") and len(var.levels) > 2:
        levels = [lv for lv in var.levels if (df[q] == lv).any()]
        table = np.array([[int(((df[q] == lv) & m).sum()) for m in (ma, mb)]
                          for lv in levels])
        return table, var.kind == "ordinal"
    first = df[q] == var.levels[0] if var is not None and var.kind == "category" \
        else group_mask(df, q)
    table = np.array([[int((first & m).sum()) for m in (ma, mb)],
                      [int((~first & m).sum()) for m in (ma, mb)]])
    return table, False


def _count_p(df, t: Target) -> float:
    """P value of a test on counts: the registry's method, the book's default otherwise."""
    table, ordered = _count_table(df, t)
    if t.method == "fisher" or (t.method == "" and table.shape[0] == 2):
        return fisher_2x2(table)
    if t.method == "linear_by_linear" or (t.method == "" and ordered):
        return linear_by_linear(table)
    return float(stats.chi2_contingency(table, correction=False).pvalue)


_COMPUTE = {"km": _km, "logrank": _logrank, "km_median": _km_median, "followup": _summary,
            "followup_p": _two_sample_p, "engraftment": _summary,
            "engraftment_p": _two_sample_p, "continuous": _summary,
            "continuous_p": _two_sample_p, "count": _count, "count_p": _count_p}


def achieved_values(df: pd.DataFrame, targets: list[Target]) -> list[float]:
    """Recompute every target from the cohort (NaN where it cannot be computed)."""
    cox = cox_table2(df) if any(t.kind == "cox" for t in targets) else {}
    out = []
    for t in targets:
        if t.kind == "cox":
            out.append(cox.get((t.quantity, t.group), math.nan))
        else:
            out.append(float(_COMPUTE[t.kind](df, t)))
    return out


def is_met(t: Target, achieved: float) -> bool:
    """Whether ``achieved`` is within the target's tolerance."""
    if achieved is None or not np.isfinite(achieved):
        return False
    return abs(achieved - t.published) <= t.tolerance + 1e-9


def build_report(df: pd.DataFrame, targets: list[Target], explanations: dict[str, str]
                 ) -> pd.DataFrame:
    """One row per target: published, achieved, difference, tolerance, met, explanation.

    Parameters
    ----------
    df : the cohort.
    targets : all targets.
    explanations : reason for a miss, by target id (used when the target is missed).
    """
    rows = []
    for t, a in zip(targets, achieved_values(df, targets), strict=True):
        met = is_met(t, a)
        text = "" if met else explanations.get(t.id, "")
        if t.method == "t_test":
            text = (f"{text} Mann-Whitney P (the book's rank test): "
                    f"{mann_whitney_p(df, t):.3f}.").strip()
        rows.append({"target_id": t.id, "kind": t.kind, "description": t.description,
                     "quantity": t.quantity, "group": t.group, "statistic": t.statistic,
                     "method": t.method, "published": t.published, "achieved": a,
                     "difference": a - t.published if np.isfinite(a) else math.nan,
                     "tolerance": t.tolerance, "met": met, "explanation": text,
                     "also": " ".join(t.also)})
    return pd.DataFrame(rows, columns=REPORT_COLUMNS)


def headline(report: pd.DataFrame) -> str:
    """``"targets met: k / n (p%)"`` plus the count targets on their own."""
    met, n = int(report["met"].sum()), len(report)
    counts = report[report["kind"] == "count"]
    return (f"targets met: {met} / {n} ({100 * met / n:.1f}%); "
            f"count targets met: {int(counts['met'].sum())} / {len(counts)}")


def write_report(report: pd.DataFrame, path) -> None:
    """Write the report with fixed number formatting (byte-identical on regeneration)."""
    out = report.copy()
    for col in ("published", "achieved", "difference"):
        out[col] = out[col].map(lambda v: "" if not np.isfinite(v) else f"{v:.4f}")
    out["tolerance"] = out["tolerance"].map(lambda v: f"{v:g}")
    out.to_csv(path, index=False, lineterminator="\n")

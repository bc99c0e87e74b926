"""The reproduction audit: every published number beside the value recomputed from the data.

Each row of the registry (``data/published_values.csv``) says what was measured (``quantity``),
in whom (``group``), and how (``statistic``, ``method``). :func:`recompute` evaluates the same
quantity on the cohort with the book's own functions — the ones the chapters call — and
:func:`audit_table` classifies each number as reproduced, differing, contradicted within the
paper, or not computable from the data.

The audit compares with the paper, so it recomputes each number as the paper computed it:
its 2-year figures at 24 months and its intervals at 95% (:data:`PAPER_LANDMARK_MONTHS`,
:data:`PAPER_ALPHA`), whatever landmark and confidence level the book is built with.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..cohort.endpoints import ENDPOINTS, derive, known_status, missing_columns
from ..cohort.schema import BY_NAME
from ..render.disclosure import NO_SUPPRESSION, Disclosure
from ..render.tables import save_table
from ..stats import group_tests
from ..stats.survival import km_median, months_to_days, to_months
from .outcomes import (
    COMPETING_METHOD,
    DAY_100_MONTHS,
    PAPER_METHOD,
    compare_groups,
    landmark_estimate,
)
from .published import (
    MODEL_P_METHODS,
    MODEL_P_RELATIVE,
    is_condition,
    parse_condition,
    printed_precision,
)

REPRODUCED = "reproduced"
DIFFERS = "differs"
CONTRADICTED = "paper contradicts itself"
NOT_COMPUTABLE = "not computable from these data"

# continuous quantities: how to get their values from the cohort
CONTINUOUS = {
    "age_years": lambda d: d["age_years"],
    "donor_age_years": lambda d: d.get("donor_age_years"),
    "cd34_dose": lambda d: d.get("cd34_dose"),
    "tnc_dose": lambda d: d.get("tnc_dose"),
    "followup": lambda d: pd.Series(to_months(d["followup_days"]), index=d.index),
    "neutrophil_engraftment": lambda d: d.get("neutrophil_engraftment_days"),
    "platelet_engraftment": lambda d: d.get("platelet_engraftment_days"),
}
#: The paper's landmark of its 2-year rates and incidences (published values: fixed).
PAPER_LANDMARK_MONTHS = 24.0
#: The paper's intervals are 95% confidence intervals (published values: fixed).
PAPER_ALPHA = 0.05
LANDMARKS = {"rate_2y": PAPER_LANDMARK_MONTHS, "incidence_2y": PAPER_LANDMARK_MONTHS,
             "incidence_100d": DAY_100_MONTHS}
CONTRAST = re.compile(r"^(?P<var>\w+):\s*(?P<a>\S+)\s+vs\s+(?P<b>\S+)$")


class NotComputable(Exception):
    """The number cannot be recomputed from these data; the message says why."""


# Table 2's rows (registry group) and the covariates of bridge_hsct.paper.multivariate
TABLE2_COVARIATES = {
    "age_years: >40 vs <=40": "age_over_40", "conditioning": "conditioning_tbi",
    "graft_source: PB+BM vs PB": "graft_pb_bm", "donor_type": "donor_haploidentical",
    "donor_sex: F vs M": "donor_female", "prior_hsct: 1 vs 0": "second_hsct",
}


@dataclass
class Cohort:
    """The data an audit runs on.

    ``alpha`` is the level the bounds are recomputed at: the paper's (:data:`PAPER_ALPHA`),
    since they are compared with the paper's bounds.
    """

    data: pd.DataFrame
    group_col: str
    alpha: float = PAPER_ALPHA
    _table2: pd.DataFrame | None = None
    _groups: dict = field(default_factory=dict, repr=False)
    _labels: frozenset | None = field(default=None, repr=False)

    def members(self, group: str) -> pd.DataFrame:
        """The patients a published number is about (each group selected once: the audit
        asks for the same few groups hundreds of times)."""
        if group not in self._groups:
            self._groups[group] = _members(self, group)
        return self._groups[group]

    def labels(self) -> frozenset:
        """The group labels present in the data (read once: the audit asks for them with
        every comparison; the comparisons' patients are not kept, which at 100,000 patients
        would cost more memory than their selection costs time)."""
        if self._labels is None:
            self._labels = frozenset(self.data[self.group_col].dropna().unique())
        return self._labels

    def table2(self) -> pd.DataFrame:
        """The multivariate Cox models of Table 2 (computed once)."""
        if self._table2 is None:
            from .multivariate import multivariate_table

            # numbers to compare, not shown: nothing to suppress here
            self._table2 = multivariate_table(self.data, self.alpha,
                                              disclosure=NO_SUPPRESSION).numbers
        return self._table2


def _condition(data: pd.DataFrame, expression: str) -> pd.Series:
    """True / False / NaN (unknown) for each patient of a registry condition such as
    ``age_years>40``, ``crs_grade>=1``, ``crs_grade=1-2`` or a binary ``ph_positive``
    (:func:`bridge_hsct.paper.published.parse_condition`)."""
    try:
        condition = parse_condition(expression)
    except ValueError as why:
        raise NotComputable(str(why)) from None
    if condition.var not in data:
        raise NotComputable(_missing_column(condition.var))
    try:
        return condition.select(data)
    except ValueError as why:
        raise NotComputable(str(why)) from None


def _missing_column(var: str) -> str:
    """Why a variable the registry names cannot be read: not collected in this file, or not
    in the data dictionary at all (a fact the paper prints that no column records)."""
    if var in BY_NAME:
        return f"column '{var}' is not in these data"
    return (f"no column for '{var}' in the data dictionary: the paper prints this fact but "
            "the schema does not record it per patient")


def _members(cohort: Cohort, group: str) -> pd.DataFrame:
    data = cohort.data
    if group == "whole":
        return data
    if group in cohort.labels():
        return data[data[cohort.group_col] == group]
    if is_condition(group):
        return data[_condition(data, group) == 1]
    raise NotComputable(f"group '{group}' is not in these data")


def _contrast(cohort: Cohort, group: str) -> tuple[pd.DataFrame, pd.Series]:
    """Patients and labels of a two-group comparison such as ``donor_sex: F vs M``."""
    data = cohort.data
    match = CONTRAST.match(group)
    if match:
        var, a, b = match["var"], match["a"], match["b"]
        side = lambda level: f"{var}{level}" if level[0] in "<>" else f"{var}={level}"  # noqa: E731
        in_a, in_b = _condition(data, side(a)) == 1, _condition(data, side(b)) == 1
        chosen = data[in_a | in_b]
        return chosen, pd.Series(np.where(in_a[in_a | in_b], a, b), index=chosen.index)
    arms = [g.strip() for g in group.split(" vs ")]
    if len(arms) == 2 and all(a in cohort.labels() for a in arms):
        chosen = data[data[cohort.group_col].isin(arms)]
        return chosen, chosen[cohort.group_col]
    if group in data.columns:  # a variable compared between the arms
        return data, data[cohort.group_col]
    raise NotComputable(f"comparison '{group}' is not possible in these data")


def _count_statistic(cohort: Cohort, row) -> float:
    members = cohort.members(row.group)
    if row.quantity == "n_patients":
        return float(len(members))
    hit = _condition(members, row.quantity)
    known = int(hit.notna().sum())
    count = int((hit == 1).sum())
    if row.statistic == "count":
        return float(count)
    if not known:
        raise NotComputable("no patient with a known value")
    return 100 * count / known


def _continuous_statistic(cohort: Cohort, row) -> float:
    values = CONTINUOUS[row.quantity](cohort.members(row.group))
    if values is None or values.dropna().empty:
        raise NotComputable(f"no values of '{row.quantity}' in these data")
    values = values.dropna()
    return float({"median": values.median, "min": values.min, "max": values.max}
                 [row.statistic]())


def _known(data: pd.DataFrame, name: str) -> pd.DataFrame:
    """The patients whose status for endpoint `name` is known (a blank is unknown, never
    "no event"); `data` as it is when a column the endpoint needs is absent (``derive``
    then says which)."""
    return data if missing_columns(data, name) else data[known_status(data, name)]


def _endpoint_estimate(cohort: Cohort, row, statistic: str) -> float:
    members = _known(cohort.members(row.group), row.quantity)
    endpoint = derive(members, row.quantity)
    kind = ENDPOINTS[row.quantity].kind
    if statistic == "median":
        return float(to_months(km_median(endpoint["time"], endpoint["cause"] == 1).value))
    landmark = LANDMARKS.get(statistic) or (
        LANDMARKS["incidence_100d"] if row.quantity.startswith("agvhd")
        else PAPER_LANDMARK_MONTHS)
    method = COMPETING_METHOD if row.method == "aalen_johansen" else PAPER_METHOD
    estimate = landmark_estimate(endpoint, months_to_days(landmark), kind, method, cohort.alpha)
    value = {"ci_lower": estimate.lower, "ci_upper": estimate.upper}.get(statistic,
                                                                         estimate.value)
    return 100 * float(value)


def _student_t(values: pd.Series, labels: pd.Series) -> float:
    """Two-sided Student t-test (equal variances), the paper's "t-test" for two groups."""
    known = values.notna() & labels.notna()
    samples = [g.to_numpy(float) for _, g in values[known].groupby(labels[known])]
    if len(samples) != 2 or min(len(x) for x in samples) < 2:
        return np.nan
    from scipy import stats

    return float(stats.ttest_ind(*samples).pvalue)


def _p_value(cohort: Cohort, row) -> float:
    """The P value by the test the registry says the paper used (``method``): Fisher on
    a split (``donor_age_years>40``), Student's t, Mann–Whitney, linear-by-linear, log-rank;
    without a method, the book's default for the kind of variable."""
    data, labels = _contrast(cohort, row.group)
    method, quantity = row.method or "", row.quantity
    if quantity in ENDPOINTS and method in {"log_rank", ""}:
        data = _known(data, quantity)
        return compare_groups(derive(data, quantity), labels.loc[data.index]).p_value
    if quantity in CONTINUOUS:
        values = CONTINUOUS[quantity](data)
        if values is None:
            raise NotComputable(_missing_column(quantity))
        if method == "t_test":
            return _student_t(values, labels)
        if method in {"mann_whitney", ""}:
            return group_tests.compare_numbers(values, labels).p_value
        raise NotComputable(f"a {method} test needs a split of '{quantity}' "
                            "(write it as a condition, e.g. '{quantity}>40')")
    spec = BY_NAME.get(quantity)
    if spec is not None and spec.kind in {"category", "ordinal"}:
        if quantity not in data:
            raise NotComputable(_missing_column(quantity))
        return group_tests.compare_categories(
            data[quantity], labels, list(spec.levels),
            ordered=spec.kind == "ordinal" and method in {"linear_by_linear", ""}).p_value
    hit = _condition(data, quantity)
    return group_tests.compare_categories(hit, labels, [True, False]).p_value


#: Calendar facts checked against the transplant dates: registry quantity -> (what is
#: recomputed, how the published date bounds it). A first transplant after the start, a last
#: one before the end and no follow-up past the cut-off are consistent with the paper.
DATE_CHECKS = {
    "study_start": ("earliest transplant", ">="),
    "study_end": ("latest transplant", "<="),
    "data_cutoff": ("latest follow-up (transplant + follow-up days)", "<="),
}


def _as_number(date: pd.Timestamp) -> float:
    return float(date.strftime("%Y%m%d"))


def _as_date(number: float) -> pd.Timestamp:
    return pd.to_datetime(str(int(number)), format="%Y%m%d")


def _date_statistic(cohort: Cohort, row) -> float:
    """The transplant date that bounds a calendar fact, as YYYYMMDD (see :data:`DATE_CHECKS`)."""
    if row.quantity not in DATE_CHECKS:
        raise NotComputable("a calendar fact of the study, not a result")
    data = cohort.members(row.group)
    if "hsct_date" not in data:
        raise NotComputable(_missing_column("hsct_date"))
    dates = pd.to_datetime(data["hsct_date"], errors="coerce")
    if row.quantity == "data_cutoff":
        dates = dates + pd.to_timedelta(data["followup_days"], unit="D")
    dates = dates.dropna()
    if dates.empty:
        raise NotComputable("no transplant date in these data")
    return _as_number(dates.min() if row.quantity == "study_start" else dates.max())


def _multivariate_statistic(cohort: Cohort, row) -> float:
    covariate = TABLE2_COVARIATES.get(row.group)
    if covariate is None:
        raise NotComputable(f"no Table 2 covariate for '{row.group}'")
    numbers = cohort.table2()
    hit = numbers[(numbers["outcome"] == row.quantity) & (numbers["model"] == "cox")
                  & (numbers["covariate"] == covariate)]
    if hit.empty:
        raise NotComputable("the Table 2 model cannot be fitted on these data")
    column = {"hr": "hr", "hr_ci_lower": "lower", "hr_ci_upper": "upper",
              "p_value": "p_value"}[row.statistic]
    return float(hit[column].iloc[0])


def recompute(cohort: Cohort, row) -> float:
    """The value of one registry row recomputed on the cohort.

    Raises
    ------
    NotComputable
        When the data lack what the number needs, or the number is not a result of
        the cohort (dates of the study window, multivariate models reported elsewhere).
    """
    statistic, quantity = row.statistic, row.quantity
    if statistic == "date":
        return _date_statistic(cohort, row)
    if row.method == "cox_multivariate":
        return _multivariate_statistic(cohort, row)
    if statistic == "p_value":
        return _p_value(cohort, row)
    if quantity in CONTINUOUS and statistic in {"median", "min", "max"}:
        return _continuous_statistic(cohort, row)
    if quantity in ENDPOINTS and statistic in {"rate_2y", "incidence_2y", "incidence_100d",
                                               "ci_lower", "ci_upper", "median"}:
        return _endpoint_estimate(cohort, row, statistic)
    if statistic in {"n", "count", "percent"}:
        return _count_statistic(cohort, row)
    raise NotComputable(f"no recipe for {statistic} of {quantity}")


#: How a calendar fact is judged: the transplant dates must lie within the study window.
DATE_RULE = "consistent: transplants within the study window, follow-up before the cut-off"


def judgement(row) -> tuple[float, str]:
    """The tolerance a registry row is judged with, and the rule that gives it.

    The tolerance is never tighter than the printed precision (half a unit of the last digit
    as printed: "17.60" → 0.005), and counts are exact. A looser tolerance comes from the
    registry, whose P values are held to their printed precision or, when computed from
    reconstructed event times, to :data:`~bridge_hsct.paper.published.MODEL_P_RELATIVE` of
    their value (:func:`~bridge_hsct.paper.published.p_value_tolerance`).
    """
    if row.statistic == "date":
        return 0.0, DATE_RULE
    if row.statistic in {"n", "count"}:
        return 0.0, "exact count"
    printed = getattr(row, "printed", "")
    precision = printed_precision(printed if isinstance(printed, str) and printed
                                  else float(row.value))
    tolerance = float(row.tolerance)
    if tolerance <= precision + 1e-12:
        return precision, "printed precision"
    if row.statistic == "p_value" and row.method in MODEL_P_METHODS:
        return tolerance, (f"{MODEL_P_RELATIVE:.0%} of the value (a P value from "
                           "reconstructed event times)")
    return tolerance, "stated in the registry"


def _date_status(row, value: float) -> tuple[float, str]:
    """Difference in days and status of a calendar check (see :data:`DATE_CHECKS`)."""
    days = float((_as_date(value) - _as_date(row.value)).days)
    bound = DATE_CHECKS[row.quantity][1]
    inside = days >= 0 if bound == ">=" else days <= 0
    return days, REPRODUCED if inside else DIFFERS


def audit_table(cohort: Cohort, registry: pd.DataFrame) -> pd.DataFrame:
    """Every registry row with its recomputed value, difference, tolerance, the rule of the
    tolerance (:func:`judgement`), status and whether the synthetic cohort was fitted to it
    (``kind``: counts, fitted or not fitted; see :func:`fitted_ids`)."""
    fitted = fitted_ids(registry)
    rows = []
    for row in registry.itertuples(index=False):
        reason = ""
        try:
            value = float(recompute(cohort, row))
            if np.isnan(value):
                raise NotComputable("not estimable in these data")
        except NotComputable as why:
            value, reason = np.nan, str(why)
        except (KeyError, ValueError) as why:
            value, reason = np.nan, f"not computable: {why}"
        tolerance, rule = judgement(row)
        difference = value - row.value
        if np.isnan(value):
            status = NOT_COMPUTABLE
        elif isinstance(row.followed, str) and row.followed == "no":
            status = CONTRADICTED
        elif row.statistic == "date":
            difference, status = _date_status(row, value)
        elif abs(difference) <= tolerance + 1e-9:
            status = REPRODUCED
        else:
            status = DIFFERS
        rows.append({"id": row.id, "source": row.source, "locator": row.locator,
                     "section": row.section, "quantity": row.quantity, "group": row.group,
                     "statistic": row.statistic, "published": row.value,
                     "recomputed": value, "difference": difference,
                     "tolerance": tolerance, "rule": rule, "status": status,
                     "kind": _kind_of_check(row, fitted),
                     "note": reason or (row.note if isinstance(row.note, str) else "")})
    return pd.DataFrame(rows)


#: What kind of check a reproduced number is (the audit's three scores)
COUNTS, FITTED, NOT_FITTED = ("counts (exact by construction)", "fitted by the generator",
                              "not fitted by the generator")
KINDS = (NOT_FITTED, FITTED, COUNTS)


def fitted_ids(registry: pd.DataFrame) -> set[str]:
    """Registry ids the synthetic cohort's generator was calibrated to: its targets and the
    rows printing the same numbers (:func:`.synthetic.targets.registry_targets`)."""
    from .synthetic.targets import registry_targets

    try:
        targets = registry_targets(registry)
    except (KeyError, AttributeError, TypeError, ValueError):  # a registry without the fields
        return set()
    return {t.id for t in targets} | {other for t in targets for other in t.also}


def _kind_of_check(row, fitted: set[str]) -> str:
    if row.statistic in {"n", "count", "percent"}:
        return COUNTS
    return FITTED if row.id in fitted else NOT_FITTED


def audit_score(audit: pd.DataFrame, by: str | None = "section") -> pd.DataFrame:
    """Reproduced / checked (numbers the data can recompute, contradictions set aside), for
    the whole audit (``by=None``) or by ``section`` or ``kind`` (:data:`KINDS`)."""
    checked = audit[audit["status"].isin([REPRODUCED, DIFFERS])]
    if by is None:
        groups = [("all", checked, audit)]
    else:
        keys = KINDS if by == "kind" else sorted(set(audit[by]))
        groups = [(key, checked[checked[by] == key], audit[audit[by] == key]) for key in keys]
    return pd.DataFrame([{
        (by or "scope"): key, "reproduced": int((part["status"] == REPRODUCED).sum()),
        "checked": len(part), "numbers": len(everything),
        "score": (part["status"] == REPRODUCED).mean() if len(part) else np.nan,
    } for key, part, everything in groups])


STATUS_CLASS = {REPRODUCED: "ok", DIFFERS: "differs", CONTRADICTED: "contradicted",
                NOT_COMPUTABLE: "na"}


def _cell(value: float, statistic: str) -> str:
    if value is None or np.isnan(value):
        return "–"
    if statistic == "date":
        return f"{_as_date(value):%Y-%m-%d}"
    return f"{value:.4f}" if statistic == "p_value" else f"{value:.4g}"


def _difference_cell(value: float, statistic: str) -> str:
    if statistic == "date" and value is not None and not np.isnan(value):
        return f"{value:+.0f} days"
    return _cell(value, statistic)


def _judged_by(rule: str, tolerance: float) -> str:
    if rule in {DATE_RULE, "exact count"}:
        return rule
    return f"±{tolerance:.4g} ({rule})"


def audit_html(audit: pd.DataFrame, table_id: str = "audit-table") -> str:
    """The audit as an HTML table with a text filter and a status filter (inline script,
    nothing loaded from elsewhere). A comparison (an audit without its ``status`` column,
    see :func:`audit_report`) has neither the status column nor its filter."""
    import html

    verdicts = "status" in audit
    body = []
    for r in audit.itertuples(index=False):
        cells = [html.escape(r.locator or ""), html.escape(r.statistic),
                 _cell(r.published, r.statistic), _cell(r.recomputed, r.statistic),
                 _difference_cell(r.difference, r.statistic),
                 *([html.escape(_judged_by(r.rule, r.tolerance)), html.escape(r.status),
                    html.escape(r.kind)] if verdicts else []),
                 html.escape(r.note or ""), html.escape(r.id)]
        row_class = f' class="audit-{STATUS_CLASS[r.status]}"' if verdicts else ""
        body.append(f"<tr{row_class}>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    head = "".join(f'<th scope="col">{h}</th>' for h in [
        "Where in the paper", "Statistic", "Published",
        "Recomputed" if verdicts else "This cohort", "Difference",
        *(["Judged by", "Status", "Fitted?"] if verdicts else []), "Note", "Registry id"])
    options = "".join(f'<option value="{STATUS_CLASS[s]}">{html.escape(s)}</option>'
                      for s in STATUS_CLASS)
    status_filter = f"""
  <label for="{table_id}-status">Status</label>
  <select id="{table_id}-status"><option value="">all</option>{options}</select>"""
    region = ("Audit of every published number" if verdicts
              else "Every published number beside this cohort's")
    return f"""
<div class="audit-filter">
  <label for="{table_id}-text">Filter rows</label>
  <input id="{table_id}-text" type="search" placeholder="e.g. os, table3, CAR-T">{
      status_filter if verdicts else ""}
  <span id="{table_id}-count" aria-live="polite"></span>
</div>
<div class="audit-scroll" tabindex="0" role="region" aria-label="{region}">
<table id="{table_id}" class="audit">
<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table></div>
<script>
(function () {{
  const table = document.getElementById("{table_id}");
  const text = document.getElementById("{table_id}-text");
  const status = document.getElementById("{table_id}-status");
  const count = document.getElementById("{table_id}-count");
  function apply() {{
    const q = text.value.toLowerCase(), s = status ? status.value : "";
    let shown = 0;
    for (const tr of table.tBodies[0].rows) {{
      const ok = (!q || tr.textContent.toLowerCase().includes(q)) &&
                 (!s || tr.classList.contains("audit-" + s));
      tr.hidden = !ok; shown += ok;
    }}
    count.textContent = shown + " of " + table.tBodies[0].rows.length + " rows";
  }}
  text.addEventListener("input", apply);
  if (status) status.addEventListener("change", apply);
  apply();
}})();
</script>"""


SECTION_NAMES = {
    "cohort": "Cohort", "baseline": "Baseline (Table 1)", "followup": "Follow-up",
    "os_pfs": "OS and PFS", "grfs": "GRFS", "nrm": "NRM", "gvhd": "GVHD",
    "multivariate": "Multivariate (Table 2)", "engraftment": "Engraftment",
    "complications": "Complications", "infection": "Infections",
    "immunotherapy": "CRS and ICANS",
}


@dataclass
class AuditReport:
    """The audit of one cohort: rows, a table by section, the page's opening paragraph and
    a summary paragraph; on the reference cohort also the three scores by kind of number
    (``kinds``: counts, numbers the generator was fitted to, numbers it was not); ``csv``:
    where :func:`audit_report` saved its rows.

    On the reference cohort it is a reproduction audit (``reference``: each number
    reproduced or not, scores by section); on any other cohort a plain comparison, with no
    verdict and no score (see :func:`audit_report`).
    """

    audit: pd.DataFrame
    scores: pd.DataFrame
    overall: dict
    summary: str
    introduction: str = ""
    reference: bool = True
    kinds: pd.DataFrame | None = None
    csv: Path | None = None


def page_title(reference: bool) -> str:
    """The audit page's title: an audit on the reference cohort, which was built to
    reproduce the paper; a comparison on any other, which was not."""
    return "Reproduction audit" if reference else "This cohort beside the published one"


#: How the reference audit judges a number (the audit page's second paragraph).
VERDICT_RULES = (
    "The reference cohort is **synthetic**: it was generated to match the paper's published "
    "aggregates, so agreement with those numbers checks the reconstruction, not the paper. "
    "Each number is therefore scored in one of three kinds: **counts** (and the percentages "
    "they imply), exact by construction; numbers the generator was **fitted to** (survival "
    "estimates, medians and ranges, most P values, the Table 2 hazard ratios); and numbers it "
    "was **not fitted to** (for example Table 2's confidence limits and P values), the only "
    "ones whose agreement is not built in.\n\n"
    "A number is **reproduced** when the recomputed value lies within its tolerance, shown "
    "in the *Judged by* column. No tolerance is tighter than the precision the paper prints "
    "(half a unit of the last digit as printed: 17.60 is judged to ±0.005, not ±0.05). Counts "
    "must be exact. P values must agree to their printed precision, whatever test the paper "
    "names (Fisher's test on a split, Student's t-test, linear-by-linear association), except "
    "P values computed from reconstructed event times (log-rank, Cox), judged within 3% of "
    "their value. Survival estimates and their confidence bounds, and Table 2's hazard ratios, "
    "carry the tolerance stated in the registry. The study window and cut-off are checked "
    "against the transplant dates. Where the paper prints two different values for the same "
    "quantity, the reading the book does not follow is marked **paper contradicts itself** "
    "(see {ref}`inconsistencies`). Numbers the data cannot produce (facts the data "
    "dictionary has no column for) are **not computable**, with the reason in the note.")

#: What the comparison on another cohort is, and what it is not.
COMPARISON_NOTE = (
    "The published numbers describe the paper's 36 patients. This cohort was not meant to "
    "reproduce them, so nothing here is marked as reproduced or not: each row only sets the "
    "paper's number beside the value the same calculation gives on this cohort. A difference "
    "describes how the two cohorts differ, not an error in either. Rows the data cannot "
    "compute (variables not collected, calendar facts of the study) are left blank, with "
    "the reason in the note.")

def _hide_small_counts(audit: pd.DataFrame, disclosure: Disclosure) -> pd.DataFrame:
    """Rows whose recomputed count is a small cell show neither it nor its comparison
    (a "reproduced" beside a published 3 would tell it); the scores are computed before."""
    small = (audit["statistic"].isin(["count", "n"])
             & audit["recomputed"].map(disclosure.is_small))
    if not small.any():
        return audit
    audit = audit.copy()
    audit.loc[small, ["recomputed", "difference"]] = np.nan
    audit.loc[small, "status"] = NOT_COMPUTABLE
    audit.loc[small, "note"] = (f"suppressed: fewer than {disclosure.min_cell_count} "
                                "patients (small-cell suppression)")
    return audit


def overall_score(data: pd.DataFrame, group_col: str,
                  registry: pd.DataFrame | None = None) -> dict:
    """The audit's headline: how many of the numbers the data can recompute are reproduced,
    in all and by kind of number.

    Returns
    -------
    dict
        ``reproduced``, ``checked``, ``numbers`` (printed in the paper) and ``score``
        (reproduced / checked), as in the audit chapter's summary; and ``kinds``: the same
        for each of :data:`KINDS` (the not-fitted numbers first).
    """
    from .published import load_published

    registry = load_published() if registry is None else registry
    audit = audit_table(Cohort(data, group_col), registry)
    return _overall(audit)


def _overall(audit: pd.DataFrame) -> dict:
    overall = audit_score(audit, by=None).iloc[0].drop("scope").to_dict()
    overall["kinds"] = audit_score(audit, by="kind").set_index("kind").to_dict("index")
    return overall


def _of(part: dict | None) -> str:
    if not part or not part.get("checked"):
        return "none checked"
    return f"{int(part['reproduced'])} of {int(part['checked'])}"


def score_sentence(overall: dict) -> str:
    """The landing page's sentence on the audit (Markdown; empty when nothing is checked).

    Three scores, never one: the numbers the synthetic cohort was not fitted to lead (the
    only agreement not built in), then those it was fitted to and the counts, which are
    exact by construction (:data:`KINDS`).
    """
    if not overall.get("checked"):
        return ""
    kinds = overall.get("kinds", {})
    headline = _share(kinds.get(NOT_FITTED), UNFITTED_WORDS)
    return (f"**Reproduction audit:** {headline[0].upper()}{headline[1:]}; that is the only "
            "agreement not built in. The cohort was generated to match the other published "
            f"numbers, so they check the reconstruction, not the paper: "
            f"{_of(kinds.get(FITTED))} numbers it was fitted to and "
            f"{_of(kinds.get(COUNTS))} counts (exact by construction) are reproduced. "
            "See {ref}`audit`.")


UNFITTED_WORDS = "published numbers that the synthetic cohort was not fitted to"


def _share(part: dict | None, what: str) -> str:
    """``"of the 35 <what>, 8 (22.9%) are reproduced"``, or that none could be checked."""
    if not part or not part.get("checked"):
        return f"none of the {what} could be checked"
    return (f"of the {int(part['checked'])} {what}, {int(part['reproduced'])} "
            f"({100 * part['reproduced'] / part['checked']:.1f}%) are reproduced")


def _kinds_table(audit: pd.DataFrame) -> pd.DataFrame:
    by_kind = audit_score(audit, by="kind")
    return pd.DataFrame({
        "Kind of number": [k[0].upper() + k[1:] for k in by_kind["kind"]],
        "Reproduced": by_kind["reproduced"], "Checked": by_kind["checked"],
        "Published numbers": by_kind["numbers"],
        "Score": [f"{100 * s:.0f}%" if not np.isnan(s) else "–" for s in by_kind["score"]],
    })


def _reproduction(audit: pd.DataFrame, disclosure: Disclosure) -> AuditReport:
    """The reference cohort's report: each number reproduced or not, and the scores."""
    by_section = audit_score(audit)
    overall = _overall(audit)
    counts = audit["status"].value_counts()
    scores = pd.DataFrame({
        "Section": [SECTION_NAMES.get(s, s) for s in by_section["section"]],
        "Reproduced": by_section["reproduced"], "Checked": by_section["checked"],
        "Published numbers": by_section["numbers"],
        "Score": [f"{100 * s:.0f}%" if not np.isnan(s) else "–" for s in by_section["score"]],
    })
    kinds = overall["kinds"]
    headline = _share(kinds.get(NOT_FITTED), UNFITTED_WORDS)
    summary = (f"**{headline[0].upper()}{headline[1:]}**: the only agreement not built in. "
               "The rest was built in: of the numbers the generator was fitted to, "
               f"{_of(kinds.get(FITTED))} are reproduced, and of the counts (exact by "
               f"construction) {_of(kinds.get(COUNTS))}. Of the {len(audit)} numbers printed "
               f"in the paper, {counts.get(DIFFERS, 0)} differ, {counts.get(CONTRADICTED, 0)} "
               "are readings the paper itself contradicts, and "
               f"{counts.get(NOT_COMPUTABLE, 0)} cannot be computed from the data.")
    return AuditReport(_hide_small_counts(audit, disclosure), scores, overall, summary,
                       VERDICT_RULES, kinds=_kinds_table(audit))


def _comparison(audit: pd.DataFrame, disclosure: Disclosure) -> AuditReport:
    """Another cohort's report: the rows without verdicts, and by section how many
    published numbers the data can compute."""
    computable = audit["status"] != NOT_COMPUTABLE
    by_section = computable.groupby(audit["section"]).agg(["size", "sum"])
    sections = pd.DataFrame({
        "Section": [SECTION_NAMES.get(s, s) for s in by_section.index],
        "Published numbers": by_section["size"].to_numpy(),
        "Computable from these data": by_section["sum"].astype(int).to_numpy(),
    })
    summary = (f"Of the {len(audit)} numbers the paper prints, {int(computable.sum())} can be "
               "computed from this cohort; each is set beside its published value below.")
    compared = _hide_small_counts(audit, disclosure).drop(
        columns=["status", "tolerance", "rule", "kind"])
    return AuditReport(compared, sections, {}, summary, COMPARISON_NOTE, reference=False)


def with_reconstruction_notes(audit: pd.DataFrame, notes: dict[str, str]) -> pd.DataFrame:
    """`audit` with each row's note followed by what `notes` (registry id → text) say of it:
    on the reference cohort, how the synthetic cohort carries the number
    (:func:`.synthetic.audit_notes.reconstruction_notes`)."""
    added = audit["id"].map(notes).fillna("")
    return audit.assign(note=[f"{note}; {more}" if note and more else note or more
                              for note, more in zip(audit["note"], added, strict=True)])


def audit_report(chapter, registry: pd.DataFrame | None = None) -> AuditReport:
    """Audit the chapter's cohort against the registry and write ``audit.csv`` into the
    chapter's output folder.

    On the reference cohort (:func:`bridge_hsct.paths.is_reference_cohort`) this is the
    reproduction audit. On any other cohort it is a comparison: the same rows and
    differences without the ``status`` and ``tolerance`` columns, and by section the count
    of numbers the data can compute in place of the scores.

    The chapter's ``alpha`` and landmark do not enter: every number is recomputed as the
    paper computed it (:data:`PAPER_ALPHA`, :data:`PAPER_LANDMARK_MONTHS`).
    """
    from ..paths import is_reference_cohort
    from .published import load_published

    registry = load_published() if registry is None else registry
    audit = audit_table(Cohort(chapter.data, chapter.group_col), registry)
    if is_reference_cohort(chapter.data_path):
        from .synthetic.audit_notes import reconstruction_notes

        notes = reconstruction_notes(chapter.data, chapter.group_col)
        report = _reproduction(with_reconstruction_notes(audit, notes), chapter.disclosure)
    else:
        report = _comparison(audit, chapter.disclosure)
    report.csv = save_table(report.audit, chapter, "audit")  # labelled with its data
    return report

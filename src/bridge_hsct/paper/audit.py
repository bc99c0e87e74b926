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

import numpy as np
import pandas as pd

from ..cohort.endpoints import ENDPOINTS, derive
from ..cohort.schema import BY_NAME
from ..render.disclosure import is_small, min_cell_count
from ..render.escaping import spreadsheet_frame
from ..stats import group_tests
from ..stats.survival import km_median, months_to_days, to_months
from .outcomes import (
    COMPETING_METHOD,
    DAY_100_MONTHS,
    PAPER_METHOD,
    compare_groups,
    landmark_estimate,
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
SUBGROUP = re.compile(r"^(?P<var>\w+)\s*(?P<op>=|>|<=)\s*(?P<level>.+)$")
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

    def members(self, group: str) -> pd.DataFrame:
        """The patients a published number is about (each group selected once: the audit
        asks for the same few groups hundreds of times)."""
        if group not in self._groups:
            self._groups[group] = _members(self, group)
        return self._groups[group]

    def table2(self) -> pd.DataFrame:
        """The multivariate Cox models of Table 2 (computed once)."""
        if self._table2 is None:
            from .multivariate import multivariate_table

            self._table2 = multivariate_table(self.data, self.alpha)["numbers"]
        return self._table2


def _typed_level(var: str, level: str):
    spec = BY_NAME.get(var)
    if spec and spec.kind in {"binary", "number", "days"} or (
        spec and spec.kind == "ordinal" and all(isinstance(x, int) for x in spec.levels)
    ):
        return float(level)
    return level


def _condition(data: pd.DataFrame, expression: str) -> pd.Series:
    """Boolean selector for ``var=level``, ``var>40``, ``var<=40`` or a binary ``var``."""
    match = SUBGROUP.match(expression)
    if match:
        var, op, level = match["var"], match["op"], match["level"]
    else:
        var, op, level = expression, "=", "1"
    if var not in data:
        raise NotComputable(f"column '{var}' is not in the data")
    values = data[var]
    if op == ">":
        return (values > float(level)).where(values.notna())
    if op == "<=":
        return (values <= float(level)).where(values.notna())
    return (values == _typed_level(var, level)).where(values.notna())


def _members(cohort: Cohort, group: str) -> pd.DataFrame:
    data = cohort.data
    if group == "whole":
        return data
    if group in set(data[cohort.group_col].dropna()):
        return data[data[cohort.group_col] == group]
    if SUBGROUP.match(group):
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
    if len(arms) == 2 and all(a in set(data[cohort.group_col]) for a in arms):
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


def _endpoint_estimate(cohort: Cohort, row, statistic: str) -> float:
    members = cohort.members(row.group)
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


def _p_value(cohort: Cohort, row) -> float:
    data, labels = _contrast(cohort, row.group)
    if row.quantity in CONTINUOUS:
        values = CONTINUOUS[row.quantity](data)
        if values is None:
            raise NotComputable(f"'{row.quantity}' is not in the data")
        return group_tests.compare_numbers(values, labels).p_value
    if row.quantity in ENDPOINTS and row.method != "fisher":
        return compare_groups(derive(data, row.quantity), labels).p_value
    spec = BY_NAME.get(row.quantity)
    if spec is not None and spec.kind in {"category", "ordinal"}:
        values = data[row.quantity]
        return group_tests.compare_categories(values, labels, list(spec.levels),
                                              ordered=spec.kind == "ordinal").p_value
    hit = _condition(data, row.quantity)
    return group_tests.compare_categories(hit, labels, [True, False]).p_value


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
        raise NotComputable("a calendar fact of the study, not a result")
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


def printing_precision(value: float) -> float:
    """Half a unit of the last digit of `value`: 28.07 → 0.005, 13 → 0.5.

    Trailing zeros are lost in a float (17.60 reads as 17.6), so this can be looser than the
    printed precision; it is used only for medians and ranges.
    """
    text = f"{value:.6g}"
    decimals = len(text.split(".")[1]) if "." in text and "e" not in text else 0
    return 0.5 * 10.0 ** -decimals


def audit_table(cohort: Cohort, registry: pd.DataFrame) -> pd.DataFrame:
    """Every registry row with its recomputed value, difference and status."""
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
        difference = value - row.value
        tolerance = row.tolerance
        if row.statistic in {"median", "min", "max"}:  # medians and ranges print rounded
            tolerance = max(tolerance, printing_precision(row.value))
        if np.isnan(value):
            status = NOT_COMPUTABLE
        elif isinstance(row.followed, str) and row.followed == "no":
            status = CONTRADICTED
        elif abs(difference) <= tolerance + 1e-9:
            status = REPRODUCED
        else:
            status = DIFFERS
        rows.append({"id": row.id, "source": row.source, "locator": row.locator,
                     "section": row.section, "quantity": row.quantity, "group": row.group,
                     "statistic": row.statistic, "published": row.value,
                     "recomputed": value, "difference": difference,
                     "tolerance": tolerance, "status": status,
                     "note": reason or (row.note if isinstance(row.note, str) else "")})
    return pd.DataFrame(rows)


def audit_score(audit: pd.DataFrame, by: str | None = "section") -> pd.DataFrame:
    """Reproduced / checked (numbers the data can recompute, contradictions set aside)."""
    checked = audit[audit["status"].isin([REPRODUCED, DIFFERS])]
    groups = [("all", checked, audit)] if by is None else [
        (key, part, audit[audit[by] == key]) for key, part in checked.groupby(by)]
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
    return f"{value:.4f}" if statistic == "p_value" else f"{value:.4g}"


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
                 _cell(r.difference, r.statistic),
                 *([html.escape(r.status)] if verdicts else []),
                 html.escape(r.note or ""), html.escape(r.id)]
        row_class = f' class="audit-{STATUS_CLASS[r.status]}"' if verdicts else ""
        body.append(f"<tr{row_class}>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    head = "".join(f'<th scope="col">{h}</th>' for h in [
        "Where in the paper", "Statistic", "Published",
        "Recomputed" if verdicts else "This cohort", "Difference",
        *(["Status"] if verdicts else []), "Note", "Registry id"])
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
    a summary paragraph.

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


def page_title(reference: bool) -> str:
    """The audit page's title: an audit on the reference cohort, which was built to
    reproduce the paper; a comparison on any other, which was not."""
    return "Reproduction audit" if reference else "This cohort beside the published one"


#: How the reference audit judges a number (the audit page's second paragraph).
VERDICT_RULES = (
    "A number is **reproduced** when the recomputed value lies within the tolerance recorded "
    "for it (printing precision for counts, percentages and exact-test P values; one "
    "percentage point for survival estimates; two for their confidence bounds; 0.05 for "
    "log-rank P values). Where the paper prints two different values for the same quantity, "
    "the reading the book does not follow is marked **paper contradicts itself** (see "
    "{ref}`inconsistencies`). Numbers the data cannot produce (calendar facts, variables not "
    "collected) are **not computable**.")

#: What the comparison on another cohort is, and what it is not.
COMPARISON_NOTE = (
    "The published numbers describe the paper's 36 patients. This cohort was not meant to "
    "reproduce them, so nothing here is marked as reproduced or not: each row only sets the "
    "paper's number beside the value the same calculation gives on this cohort. A difference "
    "describes how the two cohorts differ, not an error in either. Rows the data cannot "
    "compute (variables not collected, calendar facts of the study) are left blank, with "
    "the reason in the note.")

def _hide_small_counts(audit: pd.DataFrame) -> pd.DataFrame:
    """Rows whose recomputed count is a small cell show neither it nor its comparison
    (a "reproduced" beside a published 3 would tell it); the scores are computed before."""
    small = audit["statistic"].isin(["count", "n"]) & audit["recomputed"].map(is_small)
    if not small.any():
        return audit
    audit = audit.copy()
    audit.loc[small, ["recomputed", "difference"]] = np.nan
    audit.loc[small, "status"] = NOT_COMPUTABLE
    audit.loc[small, "note"] = (f"suppressed: fewer than {min_cell_count()} patients "
                                "(small-cell suppression)")
    return audit


def overall_score(data: pd.DataFrame, group_col: str,
                  registry: pd.DataFrame | None = None) -> dict:
    """The audit's headline: how many of the numbers the data can recompute are reproduced.

    Returns
    -------
    dict
        ``reproduced``, ``checked``, ``numbers`` (printed in the paper) and ``score``
        (reproduced / checked), as in the audit chapter's summary.
    """
    from .published import load_published

    registry = load_published() if registry is None else registry
    audit = audit_table(Cohort(data, group_col), registry)
    return audit_score(audit, by=None).iloc[0].drop("scope").to_dict()


def score_sentence(overall: dict) -> str:
    """The landing page's sentence on the audit (Markdown; empty when nothing is checked)."""
    if not overall.get("checked"):
        return ""
    return (f"**Reproduction audit:** {int(overall['reproduced'])} of "
            f"{int(overall['checked'])} published numbers that the data can recompute "
            f"({100 * overall['score']:.1f}%) are reproduced; see {{ref}}`audit`.")


def _reproduction(audit: pd.DataFrame) -> AuditReport:
    """The reference cohort's report: each number reproduced or not, and the scores."""
    by_section = audit_score(audit)
    overall = audit_score(audit, by=None).iloc[0].to_dict()
    counts = audit["status"].value_counts()
    share = f"{100 * overall['score']:.1f}%" if overall["checked"] else "none"
    scores = pd.DataFrame({
        "Section": [SECTION_NAMES.get(s, s) for s in by_section["section"]],
        "Reproduced": by_section["reproduced"], "Checked": by_section["checked"],
        "Published numbers": by_section["numbers"],
        "Score": [f"{100 * s:.0f}%" if not np.isnan(s) else "–" for s in by_section["score"]],
    })
    summary = (f"**{overall['reproduced']} of {overall['checked']} checkable numbers "
               f"({share}) are reproduced** from these data, out of {len(audit)} numbers "
               f"printed in the paper. {counts.get(DIFFERS, 0)} differ, "
               f"{counts.get(CONTRADICTED, 0)} are readings the paper itself contradicts, "
               f"and {counts.get(NOT_COMPUTABLE, 0)} cannot be computed from the data.")
    return AuditReport(_hide_small_counts(audit), scores, overall, summary, VERDICT_RULES)


def _comparison(audit: pd.DataFrame) -> AuditReport:
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
    compared = _hide_small_counts(audit).drop(columns=["status", "tolerance"])
    return AuditReport(compared, sections, {}, summary, COMPARISON_NOTE, reference=False)


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
    report = (_reproduction if is_reference_cohort(chapter.data_path) else _comparison)(audit)
    spreadsheet_frame(report.audit).to_csv(chapter.output_dir / "audit.csv", index=False)
    return report

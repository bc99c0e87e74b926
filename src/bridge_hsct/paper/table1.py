"""Table 1: patient, donor and transplant characteristics by group, with P values."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..cohort.schema import BY_NAME
from ..render.descriptive import count_known, median_range, n_percent
from ..render.disclosure import count_text
from ..render.escaping import markdown_text
from ..render.formatting import format_number, format_p
from ..stats import group_tests
from ..stats.survival import to_months


@dataclass(frozen=True)
class Row:
    """One block of Table 1.

    ``how`` is ``"levels"`` (n (%) per level, one P value), ``"each_level"`` (n (%) per
    level, each level against the rest with its own P value), ``"binary"`` (n (%) of 1s),
    ``"median"`` (median (range)) or ``"over"`` (n (%) above ``threshold``).
    """

    variable: str
    how: str
    label: str = ""
    threshold: float | None = None


TABLE1_ROWS: list[Row] = [
    Row("age_years", "median", "Age, years, median (range)"),
    Row("age_years", "over", "Age group, years, n (%)", threshold=40),
    Row("sex", "levels", "Sex, n (%)"),
    Row("disease_status", "levels", "Disease status, n (%)"),
    *[Row(v, "binary") for v in (
        "ph_positive", "t315i", "tp53_mutation", "mll_rearrangement", "ikzf1_isoform6",
        "e2a_pbx1", "notch1_mutation", "ph_like", "complex_karyotype",
        "extramedullary_disease", "prior_hsct")],
    Row("mrd_positive", "levels", "MRD before HSCT (all in CR), n (%)"),
    Row("hct_ci", "levels", "HCT-CI, n (%)"),
    Row("donor_age_years", "median", "Donor age, years, median (range)"),
    Row("donor_age_years", "over", "Donor age group, years, n (%)", threshold=40),
    Row("donor_sex", "levels", "Donor sex, n (%)"),
    Row("donor_type", "levels", "Donor type, n (%)"),
    Row("abo_compatibility", "each_level", "ABO compatibility, n (%)"),
    Row("conditioning", "levels", "Conditioning regimen, n (%)"),
    Row("graft_source", "levels", "Graft source, n (%)"),
    Row("cd34_dose", "median", "CD34+ cells, ×10⁶/kg, median (range)"),
    Row("tnc_dose", "median", "Nucleated cells, ×10⁸/kg, median (range)"),
    Row("followup_months", "median", "Follow-up, months, median (range)"),
]

MRD_LABELS = {1: "CR, MRD positive", 0: "CR, MRD negative"}


def _levels(row: Row, data: pd.DataFrame) -> tuple[pd.Series, list, dict, bool]:
    """The categorical view of a row: values, levels in order, labels, ordered?"""
    var = BY_NAME.get(row.variable)
    if row.how == "over":
        values = data[row.variable].map(lambda x: np.nan if pd.isna(x) else
                                        f"> {row.threshold:g}" if x > row.threshold
                                        else f"≤ {row.threshold:g}")
        levels = [f"> {row.threshold:g}", f"≤ {row.threshold:g}"]
        return values, levels, {lv: lv for lv in levels}, False
    if row.variable == "mrd_positive":
        return data[row.variable], [1, 0], MRD_LABELS, False
    labels = var.level_labels or {lv: str(lv) for lv in var.levels}
    return data[row.variable], list(var.levels), labels, var.kind == "ordinal"


def baseline_table(data: pd.DataFrame, group_col: str, group_order: list) -> dict:
    """Compute Table 1.

    Parameters
    ----------
    data : a validated cohort (see :func:`bridge_hsct.cohort.validate.load_cohort`).
    group_col : column defining the groups.
    group_order : the groups, in display order.

    Returns
    -------
    dict
        ``display``: one row per table line (strings, ready to render);
        ``numbers``: the same in tidy form (variable, level, group, count, n, percent,
        median, min, max, p_value, test) for downloads and the audit;
        ``omitted``: variables of the table that are absent from the data.
    """
    data = data.assign(followup_months=to_months(data["followup_days"]))
    groups = data[group_col]
    columns = [("whole", data)] + [(g, data[groups == g]) for g in group_order]
    display, numbers, omitted = [], [], []
    for row in TABLE1_ROWS:
        if row.variable not in data or data[row.variable].isna().all():
            omitted.append(row.variable)
            continue
        var = BY_NAME.get(row.variable)
        label = row.label or (var.label + ", n (%)")
        if row.how == "median":
            result = group_tests.compare_numbers(data[row.variable], groups)
            cells = []
            for g, part in columns:
                med, lo, hi = median_range(part[row.variable])
                cells.append(f"{format_number(med)} ({format_number(lo)}–{format_number(hi)})")
                numbers.append(dict(variable=row.variable, level="", group=g, median=med,
                                    min=lo, max=hi, p_value=result.p_value, test=result.test))
            display.append([label, *cells, format_p(result.p_value), result.test, 0])
            continue
        if row.how == "binary":
            values, levels, labels = data[row.variable], [1], {1: label.replace(", n (%)", "")}
            result = group_tests.compare_categories(values, groups, [1, 0])
            per_level = {1: result}
            header = None
        else:
            values, levels, labels, ordered = _levels(row, data)
            if row.how == "each_level":
                per_level = {lv: group_tests.compare_categories(values == lv, groups,
                                                                [True, False])
                             for lv in levels}
                result = None
            else:
                result = group_tests.compare_categories(values, groups, levels, ordered)
                per_level = {}
            header = [label, *[""] * len(columns), format_p(result.p_value) if result else "",
                      result.test if result else "", 0]
        if header:
            display.append(header)
        for lv in levels:
            cells = []
            level_result = per_level.get(lv, result)
            for g, part in columns:
                k, n = count_known(part[row.variable], values.loc[part.index] == lv)
                cells.append(n_percent(k, n))
                numbers.append(dict(variable=row.variable, level=str(labels[lv]), group=g,
                                    count=k, n=n, percent=100 * k / n if n else np.nan,
                                    p_value=level_result.p_value if level_result else np.nan,
                                    test=level_result.test if level_result else ""))
            p_cell = format_p(per_level[lv].p_value) if lv in per_level else ""
            test = per_level[lv].test if lv in per_level else ""
            display.append([labels[lv], *cells, p_cell, test, 0 if header is None else 1])
    names = ["Characteristic", f"Whole cohort (n = {len(data)})",
             *[f"{g} (n = {count_text((groups == g).sum())})" for g in group_order],
             "P value", "Test", "indent"]
    notes = []
    if omitted:
        notes.append("Not in the data, so left out: "
                     + ", ".join(BY_NAME[v].label if v in BY_NAME else v
                                 for v in dict.fromkeys(omitted)) + ".")
    return {"display": pd.DataFrame(display, columns=names),
            "numbers": pd.DataFrame(numbers), "omitted": omitted, "notes": notes}


def describe_cohort(chapter, table1: dict) -> str:
    """A short paragraph about the cohort's size, groups and age, for the chapter's text."""
    sizes = chapter.sizes()
    n = len(chapter.data)
    groups = ", ".join(f"{count_text(k)} in the {markdown_text(g)} group"
                       for g, k in sizes.items())
    age = chapter.data["age_years"]
    text = (f"The cohort has **{count_text(n)} patients**: {groups}. Their median age at "
            f"transplant was {format_number(age.median())} years (range {format_number(age.min())}–"
            f"{format_number(age.max())}).")
    significant = table1["numbers"].query("p_value < 0.05")["variable"].unique()
    labels = [BY_NAME[v].label if v in BY_NAME else "follow-up" for v in significant]
    if labels:
        text += " The groups differ (P < 0.05) in: " + ", ".join(labels) + "."
    else:
        text += " No baseline characteristic differs between the groups at P < 0.05."
    return text

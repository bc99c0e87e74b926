"""Table 1: patient, donor and transplant characteristics by group, with P values.

The table is declared as :data:`TABLE1` (rows of :class:`bridge_hsct.paper.group_table.Row`)
and computed by the by-group table engine, :func:`bridge_hsct.paper.group_table.group_table`.
"""

from __future__ import annotations

from ..cohort.schema import BY_NAME
from ..render.descriptive import median_range
from ..render.disclosure import Disclosure
from ..render.escaping import markdown_text
from ..render.formatting import format_number
from ..render.tables import Table, abbreviations_note
from ..stats.survival import to_months
from .group_table import Row, TableSpec, group_table, present

MRD_LABELS = {1: "CR, MRD positive", 0: "CR, MRD negative"}
#: The header the paper puts over its cytogenetic and molecular lines.
GENETICS = "Genetics, n (%)"

#: The abbreviations Table 1 may use, spelled out in its footnote (those shown only).
TABLE1_ABBREVIATIONS = {
    "CAR-T": "chimeric antigen receptor T cells",
    "HSCT": "allogeneic haematopoietic stem cell transplantation",
    "MRD": "measurable (minimal) residual disease",
    "CR": "complete remission",
    "HCT-CI": "haematopoietic cell transplantation-specific comorbidity index",
    "HID": "haploidentical donor",
    "MSD": "matched sibling donor",
    "MUD": "matched unrelated donor",
    "TBI": "total body irradiation",
    "PB": "peripheral blood",
    "BM": "bone marrow",
    "Ph": "Philadelphia chromosome",
    "IKZF1": "Ikaros family zinc finger 1",
}

TABLE1_ROWS: list[Row] = [
    Row("age_years", "median", "Age, years, median (range)"),
    Row("age_years", "over", "Age group, years, n (%)", threshold=40),
    Row("sex", "levels", "Sex, n (%)"),
    Row("disease_status", "levels", "Disease status, n (%)"),
    *[Row(v, "binary", section=GENETICS) for v in (
        "ph_positive", "t315i", "tp53_mutation", "mll_rearrangement", "ikzf1_isoform6",
        "e2a_pbx1", "notch1_mutation", "ph_like", "complex_karyotype")],
    *[Row(v, "binary") for v in ("extramedullary_disease", "prior_hsct")],
    Row("mrd_positive", "levels", "MRD before HSCT (all in CR), n (%)", levels=(1, 0),
        level_labels=MRD_LABELS),
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
"""The lines of the paper's Table 1, in its order."""

#: Table 1: its rows, a line of the download named by variable and level, and follow-up
#: in months computed from the days of the cohort.
TABLE1 = TableSpec(tuple(TABLE1_ROWS), identity=("variable", "level"),
                   derived=(("followup_months", lambda d: to_months(d["followup_days"])),))


def baseline_table(data, group_col: str, group_order: list, *,
                   disclosure: Disclosure) -> Table:
    """Compute Table 1 (:data:`TABLE1`) by group.

    Parameters
    ----------
    data : a validated cohort (see :func:`bridge_hsct.cohort.validate.load_cohort`).
    group_col : column defining the groups.
    group_order : the groups, in display order.
    disclosure : the small-cell suppression of its counts (the chapter's).

    Returns
    -------
    bridge_hsct.render.tables.Table
        ``display`` (one row per line, strings), ``numbers`` (tidy: variable, level, group,
        count, n, percent, median, min, max, p_value, test), ``notes`` and ``omitted`` (the
        variables absent from the data); see :func:`bridge_hsct.paper.group_table.group_table`.
    """
    table = group_table(data, group_col, group_order, TABLE1, disclosure=disclosure)
    note = abbreviations_note(table.display, TABLE1_ABBREVIATIONS)
    if note:
        table.notes.append(note)
    return table


def describe_cohort(chapter, table1: Table) -> str:
    """A short paragraph about the cohort's size, groups and age (when the data have it),
    and the characteristics that differ between the groups at ``chapter.alpha`` (counts
    through ``chapter.disclosure``)."""
    sizes = chapter.sizes()
    n = len(chapter.data)
    count_text = chapter.disclosure.count_text
    groups = ", ".join(f"{count_text(k)} in the {markdown_text(g)} group"
                       for g, k in sizes.items())
    text = f"The cohort has **{count_text(n)} patients**: {groups}."
    if present(chapter.data, "age_years"):
        med, lo, hi = median_range(chapter.data["age_years"])
        text += (f" Their median age at transplant was {format_number(med)} years (range "
                 f"{format_number(lo)}–{format_number(hi)}).")
    alpha = f"{chapter.alpha:g}"
    significant = table1.numbers.loc[table1.numbers["p_value"] < chapter.alpha, "variable"]
    labels = [BY_NAME[v].label if v in BY_NAME else "follow-up" for v in significant.unique()]
    if labels:
        text += f" The groups differ (P < {alpha}) in: " + ", ".join(labels) + "."
    else:
        text += f" No baseline characteristic differs between the groups at P < {alpha}."
    return text

"""Table 3 (transplant outcomes), Supplementary Table 1 (CRS, ICANS) and engraftment curves.

Table 3 lists, by group: time to neutrophil and platelet engraftment (median (range) among
engrafted patients, Mann–Whitney U test) and the number (%) of patients with each GVHD,
transplant complication, viral reactivation and infection (Fisher's exact test for two
groups, as in the paper; chi-square for more). Supplementary Table 1 does the same for
cytokine release syndrome and ICANS after the bridging immunotherapy. Both are declared as
rows (:class:`bridge_hsct.paper.group_table.Row`) and computed by the by-group table engine,
:func:`bridge_hsct.paper.group_table.group_table`, like Table 1; lines whose column is absent
are left out with a note.

Supplementary Figure 5 is a list of panel specs (:data:`SUPPLEMENTARY_FIGURE5`) fed to the
panel engine (:class:`bridge_hsct.paper.panels.PanelEngine`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from ..cohort.endpoints import ENDPOINTS
from ..render.disclosure import Disclosure
from ..render.formatting import format_number, format_p
from ..render.tables import Table
from ..stats import group_tests
from ..stats.survival import to_months
from .group_table import Row, TableSpec, group_table
from .outcomes import COMPETING_METHOD
from .panels import GROUPS, Figure, IncidenceWords, PanelEngine, figure_panel

AGVHD = "Acute GVHD, n (%)"
VIRUS = "Viral reactivation, n (%)"
INFECTION = "Infection, n (%)"

#: A blank engraftment day: the patient did not engraft, or the day is not known.
NO_ENGRAFTMENT_DAY = "No day (not engrafted, or day unknown)"

TABLE3_ROWS: list[Row] = [
    Row("neutrophil_engraftment_days", "median",
        "Time to neutrophil engraftment, days, median (range)",
        blank_label=NO_ENGRAFTMENT_DAY),
    Row("platelet_engraftment_days", "median",
        "Time to platelet engraftment, days, median (range)",
        blank_label=NO_ENGRAFTMENT_DAY),
    Row("agvhd_2_4", "binary", "Grade II–IV", AGVHD),
    Row("agvhd_3_4", "binary", "Grade III–IV", AGVHD),
    Row("cgvhd", "binary", "Chronic GVHD, n (%)"),
    Row("tma", "binary", "Thrombotic microangiopathy (TMA), n (%)"),
    Row("hemorrhagic_cystitis", "binary", "Haemorrhagic cystitis, n (%)"),
    Row("ptld", "binary", "PTLD, n (%)"),
    Row("cmv_reactivation", "binary", "CMV", VIRUS),
    Row("ebv_reactivation", "binary", "EBV", VIRUS),
    Row("hzv_hhv6_reactivation", "binary", "Herpes zoster virus or HHV-6", VIRUS),
    Row("pulmonary_infection", "binary", "Pulmonary", INFECTION),
    Row("upper_respiratory_infection", "binary", "Upper respiratory tract", INFECTION),
    Row("soft_tissue_infection", "binary", "Skin and soft tissue", INFECTION),
    Row("gi_infection", "binary", "Gastrointestinal", INFECTION),
    Row("bloodstream_infection", "binary", "Bloodstream", INFECTION),
    Row("urinary_tract_infection", "binary", "Urinary tract", INFECTION),
]
"""The lines of the paper's Table 3, in its order."""

CMV_DISEASE = Row("cmv_disease", "binary", "CMV disease (in the paper's text only)", VIRUS)
"""The line the book adds to Table 3 (reported in the paper's text, not its table), shown
after CMV reactivation."""


def _outcome_spec(rows: list[Row]) -> TableSpec:
    """An outcome table: a line is named by its key, column and label; a median line gives
    how many patients it is computed over (those who engrafted)."""
    return TableSpec(tuple(rows), identity=("row", "variable", "label"), median_n=True)


def _with_cmv_disease(rows: list[Row]) -> list[Row]:
    at = next(i for i, r in enumerate(rows) if r.variable == "cmv_reactivation") + 1
    return [*rows[:at], CMV_DISEASE, *rows[at:]]


#: Table 3 as the paper prints it, and as the book shows it (with CMV disease).
TABLE3 = _outcome_spec(TABLE3_ROWS)
TABLE3_BOOK = _outcome_spec(_with_cmv_disease(TABLE3_ROWS))


def _crs(test: Callable[[float], bool]) -> Callable[[pd.DataFrame], pd.Series]:
    def values(data: pd.DataFrame) -> pd.Series:
        return data["crs_grade"].map(lambda g: np.nan if pd.isna(g) else float(test(g)))
    return values


CRS = "Cytokine release syndrome, n (%)"
SUPPLEMENTARY_TABLE1_ROWS: list[Row] = [
    Row("crs_grade", "binary", "Any grade", CRS, "crs_any", values=_crs(lambda g: g >= 1)),
    Row("crs_grade", "binary", "Grade 1–2", CRS, "crs_1_2",
        values=_crs(lambda g: 1 <= g <= 2)),
    Row("crs_grade", "binary", "Grade 3 or higher", CRS, "crs_3_plus",
        values=_crs(lambda g: g >= 3)),
    Row("icans", "binary", "ICANS, n (%)"),
]
"""CRS after the bridging immunotherapy (each grade band against the rest) and ICANS."""
SUPPLEMENTARY_TABLE1 = _outcome_spec(SUPPLEMENTARY_TABLE1_ROWS)


def outcome_table(data: pd.DataFrame, group_col: str, group_order: list,
                  rows: list[Row] = TABLE3_ROWS, *, disclosure: Disclosure) -> Table:
    """An outcome table of `rows` by group (Table 3 by default), with P values, its counts
    through `disclosure` (the chapter's).

    Returns the :class:`bridge_hsct.render.tables.Table` of
    :func:`bridge_hsct.paper.group_table.group_table`; its numbers have the columns row,
    variable, label, group, count, n, percent, median, min, max, p_value, test.
    """
    return group_table(data, group_col, group_order, _outcome_spec(rows),
                       disclosure=disclosure)


def transplant_outcomes_table(data: pd.DataFrame, group_col: str, group_order: list,
                              extra: bool = True, *, disclosure: Disclosure) -> Table:
    """Table 3 of the paper (:data:`TABLE3`), with the CMV disease line if `extra`, its
    counts through `disclosure`."""
    return group_table(data, group_col, group_order, TABLE3_BOOK if extra else TABLE3,
                       disclosure=disclosure)


def crs_icans_table(data: pd.DataFrame, group_col: str, group_order: list, *,
                    disclosure: Disclosure) -> Table:
    """Supplementary Table 1: CRS grade bands and ICANS after immunotherapy, by group, its
    counts through `disclosure`."""
    return group_table(data, group_col, group_order, SUPPLEMENTARY_TABLE1,
                       disclosure=disclosure)


# ---------------------------------------------------------------------------------------------
# The paper's Table 3 counts, and its P values recomputed from them
# ---------------------------------------------------------------------------------------------
PAPER_GROUP_SIZES = {"Blinatumomab": 9, "CAR-T": 27}
#: Table 3 of Cao et al. 2025: (blinatumomab count, CAR-T count, printed P; None = "-").
PAPER_TABLE3_COUNTS: dict[str, tuple[int, int, float | None]] = {
    "agvhd_2_4": (3, 6, 0.660),
    "agvhd_3_4": (2, 3, 0.581),
    "cgvhd": (2, 4, 0.627),
    "tma": (1, 3, 1.000),
    "hemorrhagic_cystitis": (1, 9, 0.392),
    "ptld": (1, 2, 1.000),
    "cmv_reactivation": (4, 18, 0.267),
    "ebv_reactivation": (8, 21, 0.652),
    "hzv_hhv6_reactivation": (2, 3, 0.581),
    "pulmonary_infection": (8, 14, 0.062),
    "upper_respiratory_infection": (4, 13, 1.000),
    "soft_tissue_infection": (4, 10, 0.712),
    "gi_infection": (2, 7, 1.000),
    "bloodstream_infection": (2, 6, 1.000),
    "urinary_tract_infection": (0, 2, None),
}


def p_from_counts(count_a: int, n_a: int, count_b: int, n_b: int) -> float:
    """Two-sided Fisher P of ``count_a`` of ``n_a`` against ``count_b`` of ``n_b``."""
    return group_tests.fisher_2x2([[count_a, count_b], [n_a - count_a, n_b - count_b]])


def paper_p_value_check(counts: dict | None = None,
                        sizes: dict | None = None) -> pd.DataFrame:
    """The paper's count rows of Table 3 with their P values recomputed from the counts.

    Returns one row per line: row, label, the published counts of each group, the printed
    P value, the recomputed Fisher P, and whether they agree to the printed three decimals
    (NaN where the paper printed no P value).
    """
    counts = PAPER_TABLE3_COUNTS if counts is None else counts
    sizes = PAPER_GROUP_SIZES if sizes is None else sizes
    (name_a, n_a), (name_b, n_b) = sizes.items()
    labels = {r.name: r.label for r in TABLE3_ROWS}
    rows = []
    for key, (a, b, printed) in counts.items():
        recomputed = p_from_counts(a, n_a, b, n_b)
        rows.append({"row": key, "label": labels.get(key, key), f"{name_a} count": a,
                     f"{name_b} count": b, "published_p": printed, "recomputed_p": recomputed,
                     "agrees": (np.nan if printed is None
                                else bool(round(recomputed, 3) == round(printed, 3)))})
    return pd.DataFrame(rows)


def paper_p_value_display(check: pd.DataFrame) -> pd.DataFrame:
    """:func:`paper_p_value_check` as strings, for rendering."""
    def three(p):
        return "–" if p is None or pd.isna(p) else f"{p:.3f}"

    counts = [c for c in check.columns if c.endswith(" count")]
    return pd.DataFrame({
        "Line": check["label"],
        **{c.replace(" count", ", n"): check[c].astype(str) for c in counts},
        "Published P": check["published_p"].map(three),
        "Recomputed from the counts": check["recomputed_p"].map(three),
        "Same to 3 decimals": check["agrees"].map(
            lambda a: "–" if pd.isna(a) else "yes" if a else "no"),
    })


# ---------------------------------------------------------------------------------------------
# Supplementary Fig. 5: cumulative incidence of engraftment
# ---------------------------------------------------------------------------------------------
ENGRAFTMENT_HORIZON_MONTHS = 2.0
#: Supplementary Fig. 5 reads engraftment at fixed days, whatever the chapter's landmark
#: (`landmark_months` counts in months, when every patient has long engrafted or died):
#: neutrophils at day 14 and platelets at day 21, near the paper's median times (later
#: landmarks fall past the last engraftment, where nothing is estimated).
NEUTROPHIL_LANDMARK_DAYS = 14.0
PLATELET_LANDMARK_DAYS = 21.0
ENGRAFTMENT_WORDS = IncidenceWords(competing="death before engraftment")


def _engraftment(letter: str, endpoint: str, landmark_days: float):
    return figure_panel("5", letter, endpoint, GROUPS, supplementary=True,
                        method=COMPETING_METHOD, both_methods=True,
                        landmark_months=float(to_months(landmark_days)),
                        horizon_months=ENGRAFTMENT_HORIZON_MONTHS,
                        ylabel="Cumulative incidence of engraftment", words=ENGRAFTMENT_WORDS)


#: Supplementary Fig. 5: drawn with the competing-risk estimate (Aalen–Johansen, death
#: before engraftment competing, Gray's test); the 1 − Kaplan–Meier estimates beside it.
SUPPLEMENTARY_FIGURE5 = [
    _engraftment("A", "neutrophil_engraftment", NEUTROPHIL_LANDMARK_DAYS),
    _engraftment("B", "platelet_engraftment", PLATELET_LANDMARK_DAYS),
]
#: The event indicators Supplementary Fig. 5 is drawn from (a panel needs its own).
SUPPLEMENTARY_FIGURE5_COLUMNS = tuple(dict.fromkeys(
    column for spec in SUPPLEMENTARY_FIGURE5 for column in ENDPOINTS[spec.endpoint].requires))


def engraftment_figure(data: pd.DataFrame, group_col: str, groups: list, alpha: float = 0.05,
                       output_dir=None, landmark_months: float = 24.0, *,
                       disclosure: Disclosure) -> Figure:
    """Supplementary Fig. 5 (:data:`SUPPLEMENTARY_FIGURE5`) through the panel engine.

    Each panel is read at its own fixed day; `landmark_months`, the chapter's landmark,
    would serve only a panel declared without one (none of the paper's). With `output_dir`
    the panels are drawn and saved there. Counts pass `disclosure` (the chapter's).
    """
    return PanelEngine(data, group_col, groups, landmark_months, alpha, output_dir,
                       disclosure=disclosure).figure(SUPPLEMENTARY_FIGURE5)


def describe_engraftment(table3: Table) -> str:
    """A sentence with the whole-cohort engraftment times of Table 3, for the chapter text
    (counts through the table's disclosure)."""
    numbers, count_text = table3.numbers, table3.disclosure.count_text
    parts = []
    for key, what in (("neutrophil_engraftment_days", "neutrophils"),
                      ("platelet_engraftment_days", "platelets")):
        rows = numbers[(numbers["row"] == key) & (numbers["group"] == "whole")]
        if rows.empty:
            continue
        r = rows.iloc[0]
        parts.append(f"{what} engrafted after a median of {format_number(r['median'])} days "
                     f"(range {format_number(r['min'])}–{format_number(r['max'])}; "
                     f"{count_text(r['n'])} patients engrafted; between groups P = "
                     f"{format_p(r['p_value'])})")
    if not parts:
        return "The data have no engraftment columns."
    return "In this cohort, " + " and ".join(parts) + "."

"""Table 3 (transplant outcomes), Supplementary Table 1 (CRS, ICANS) and engraftment curves.

Table 3 lists, by group: time to neutrophil and platelet engraftment (median (range) among
engrafted patients, Mann–Whitney U test) and the number (%) of patients with each GVHD,
transplant complication, viral reactivation and infection (Fisher's exact test for two
groups, as in the paper; chi-square for more). Supplementary Table 1 does the same for
cytokine release syndrome and ICANS after the bridging immunotherapy.

Rows whose column is absent from the cohort are left out with a note. The tests are those of
:mod:`bridge_hsct.stats.group_tests`; the cell formats are Table 1's
(:mod:`bridge_hsct.paper.table1`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..cohort.schema import BY_NAME
from ..render.descriptive import count_known, median_range, n_percent
from ..render.disclosure import count_text
from ..render.formatting import format_number, format_p
from ..stats import group_tests
from .gvhd import Panel, available, incidence_panels
from .outcomes import COMPETING_METHOD


@dataclass(frozen=True)
class OutcomeRow:
    """One line of an outcome table.

    Parameters
    ----------
    key : identifier of the line in the tidy output (the column name for plain columns).
    how : ``"median"`` (median (range) of a number of days) or ``"binary"`` (n (%) of 1s).
    label : what the table shows.
    section : the header line it is indented under ("" for none).
    source : the cohort column it needs (default: `key`).
    values : cohort → 0/1 Series (NaN unknown), for lines derived from a column.
    """

    key: str
    how: str
    label: str
    section: str = ""
    source: str = ""
    values: Callable[[pd.DataFrame], pd.Series] | None = None

    @property
    def column(self) -> str:
        """The cohort column this line is computed from."""
        return self.source or self.key


AGVHD = "Acute GVHD, n (%)"
VIRUS = "Viral reactivation, n (%)"
INFECTION = "Infection, n (%)"

TABLE3_ROWS: list[OutcomeRow] = [
    OutcomeRow("neutrophil_engraftment_days", "median",
               "Time to neutrophil engraftment, days, median (range)"),
    OutcomeRow("platelet_engraftment_days", "median",
               "Time to platelet engraftment, days, median (range)"),
    OutcomeRow("agvhd_2_4", "binary", "Grade II–IV", AGVHD),
    OutcomeRow("agvhd_3_4", "binary", "Grade III–IV", AGVHD),
    OutcomeRow("cgvhd", "binary", "Chronic GVHD, n (%)"),
    OutcomeRow("tma", "binary", "Thrombotic microangiopathy (TMA), n (%)"),
    OutcomeRow("hemorrhagic_cystitis", "binary", "Haemorrhagic cystitis, n (%)"),
    OutcomeRow("ptld", "binary", "PTLD, n (%)"),
    OutcomeRow("cmv_reactivation", "binary", "CMV", VIRUS),
    OutcomeRow("ebv_reactivation", "binary", "EBV", VIRUS),
    OutcomeRow("hzv_hhv6_reactivation", "binary", "Herpes zoster virus or HHV-6", VIRUS),
    OutcomeRow("pulmonary_infection", "binary", "Pulmonary", INFECTION),
    OutcomeRow("upper_respiratory_infection", "binary", "Upper respiratory tract", INFECTION),
    OutcomeRow("soft_tissue_infection", "binary", "Skin and soft tissue", INFECTION),
    OutcomeRow("gi_infection", "binary", "Gastrointestinal", INFECTION),
    OutcomeRow("bloodstream_infection", "binary", "Bloodstream", INFECTION),
    OutcomeRow("urinary_tract_infection", "binary", "Urinary tract", INFECTION),
]
"""The lines of the paper's Table 3, in its order."""

EXTRA_ROWS: list[OutcomeRow] = [
    OutcomeRow("cmv_disease", "binary", "CMV disease (in the paper's text only)", VIRUS),
]
"""Lines the book adds to Table 3 (reported in the paper's text, not its table)."""


def _crs(test: Callable[[float], bool]) -> Callable[[pd.DataFrame], pd.Series]:
    def values(data: pd.DataFrame) -> pd.Series:
        return data["crs_grade"].map(lambda g: np.nan if pd.isna(g) else float(test(g)))
    return values


CRS = "Cytokine release syndrome, n (%)"
SUPPLEMENTARY_TABLE1_ROWS: list[OutcomeRow] = [
    OutcomeRow("crs_any", "binary", "Any grade", CRS, "crs_grade", _crs(lambda g: g >= 1)),
    OutcomeRow("crs_1_2", "binary", "Grade 1–2", CRS, "crs_grade", _crs(lambda g: 1 <= g <= 2)),
    OutcomeRow("crs_3_plus", "binary", "Grade 3 or higher", CRS, "crs_grade",
               _crs(lambda g: g >= 3)),
    OutcomeRow("icans", "binary", "ICANS, n (%)"),
]
"""CRS after the bridging immunotherapy (each grade band against the rest) and ICANS."""


def outcome_table(data: pd.DataFrame, group_col: str, group_order: list,
                  rows: list[OutcomeRow] = TABLE3_ROWS) -> dict:
    """Compute an outcome table (Table 3 by default) by group, with P values.

    Parameters
    ----------
    data : a validated cohort.
    group_col : column defining the groups.
    group_order : the groups, in display order.
    rows : the lines of the table.

    Returns
    -------
    dict
        ``display``: one row per table line (strings; columns Characteristic, whole cohort,
        each group, P value, Test, indent), ready for
        :func:`bridge_hsct.render.tables.render_table`;
        ``numbers``: the same in tidy form (row, variable, label, group, count, n, percent,
        median, min, max, p_value, test) for downloads and the audit;
        ``omitted``: keys of the lines whose column is absent; ``notes``: a note saying so.
    """
    groups = data[group_col]
    columns = [("whole", data)] + [(g, data[groups == g]) for g in group_order]
    display, numbers, omitted = [], [], []
    shown_sections = set()
    for row in rows:
        if not available(data, row.column):
            omitted.append(row.key)
            continue
        values = row.values(data) if row.values else data[row.column]
        if row.section and row.section not in shown_sections:
            shown_sections.add(row.section)
            display.append([row.section, *[""] * len(columns), "", "", 0])
        indent = 1 if row.section else 0
        if row.how == "median":
            result = group_tests.compare_numbers(values, groups)
            cells = []
            for g, part in columns:
                med, lo, hi = median_range(values.loc[part.index])
                cells.append(f"{format_number(med)} ({format_number(lo)}–{format_number(hi)})")
                numbers.append(dict(row=row.key, variable=row.column, label=row.label, group=g,
                                    n=int(values.loc[part.index].notna().sum()), median=med,
                                    min=lo, max=hi, p_value=result.p_value, test=result.test))
        else:
            result = group_tests.compare_categories(values, groups, [1, 0])
            cells = []
            for g, part in columns:
                k, n = count_known(values.loc[part.index], values.loc[part.index] == 1)
                cells.append(n_percent(k, n))
                numbers.append(dict(row=row.key, variable=row.column, label=row.label, group=g,
                                    count=k, n=n, percent=100 * k / n if n else np.nan,
                                    p_value=result.p_value, test=result.test))
        display.append([row.label, *cells, format_p(result.p_value), result.test, indent])
    names = ["Characteristic", f"Whole cohort (n = {len(data)})",
             *[f"{g} (n = {count_text((groups == g).sum())})" for g in group_order],
             "P value", "Test", "indent"]
    notes = []
    if omitted:
        labels = [BY_NAME[r.column].label if r.column in BY_NAME else r.column
                  for r in rows if r.key in omitted]
        notes.append("Not in the data, so left out: " + ", ".join(dict.fromkeys(labels)) + ".")
    return {"display": pd.DataFrame(display, columns=names), "numbers": pd.DataFrame(numbers),
            "omitted": omitted, "notes": notes}


def transplant_outcomes_table(data: pd.DataFrame, group_col: str, group_order: list,
                              extra: bool = True) -> dict:
    """Table 3 of the paper (:data:`TABLE3_ROWS`), plus :data:`EXTRA_ROWS` with `extra`."""
    rows = TABLE3_ROWS + (EXTRA_ROWS if extra else [])
    # keep each extra line in its section: after the last line of the same section
    ordered = []
    for row in TABLE3_ROWS:
        ordered.append(row)
        if row.key == "cmv_reactivation" and extra:
            ordered += [r for r in EXTRA_ROWS if r.section == VIRUS]
    ordered += [r for r in rows if r not in ordered]
    return outcome_table(data, group_col, group_order, ordered)


def crs_icans_table(data: pd.DataFrame, group_col: str, group_order: list) -> dict:
    """Supplementary Table 1: CRS grade bands and ICANS after immunotherapy, by group."""
    return outcome_table(data, group_col, group_order, SUPPLEMENTARY_TABLE1_ROWS)


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
    labels = {r.key: r.label for r in TABLE3_ROWS}
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
        "Printed P": check["published_p"].map(three),
        "Recomputed P": check["recomputed_p"].map(three),
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
ENGRAFTMENT_PANELS: list[Panel] = [
    Panel("supplementary_figure5a", "A", "neutrophil_engraftment", "group",
          NEUTROPHIL_LANDMARK_DAYS, "by bridging therapy", ENGRAFTMENT_HORIZON_MONTHS),
    Panel("supplementary_figure5b", "B", "platelet_engraftment", "group",
          PLATELET_LANDMARK_DAYS, "by bridging therapy", ENGRAFTMENT_HORIZON_MONTHS),
]


def engraftment_figure(data: pd.DataFrame, group_col: str, groups: list, alpha: float = 0.05,
                       output_dir=None, landmark_months: float | None = None):
    """Supplementary Fig. 5: cumulative incidence of engraftment by group.

    Drawn with the competing-risk estimate (Aalen–Johansen, death before engraftment
    competing, Gray's test); the 1 − Kaplan–Meier estimates are computed too. See
    :func:`bridge_hsct.paper.gvhd.incidence_panels` for the result. Each panel is read at its
    own fixed day (:data:`ENGRAFTMENT_PANELS`); `landmark_months`, the chapter's landmark,
    serves only a panel declared with ``landmark="landmark"`` (none of the paper's).
    """
    return incidence_panels(data, ENGRAFTMENT_PANELS, group_col, groups, landmark_months, alpha,
                            output_dir, ylabel="Cumulative incidence of engraftment",
                            figure_label="Supplementary Fig. 5",
                            draw_method=COMPETING_METHOD,
                            competing="death before engraftment")


def describe_engraftment(table3: dict) -> str:
    """A sentence with the whole-cohort engraftment times of Table 3, for the chapter text."""
    numbers = table3["numbers"]
    parts = []
    for key, what in (("neutrophil_engraftment_days", "neutrophils"),
                      ("platelet_engraftment_days", "platelets")):
        rows = numbers[(numbers["row"] == key) & (numbers["group"] == "whole")]
        if rows.empty:
            continue
        r = rows.iloc[0]
        parts.append(f"{what} engrafted after a median of {format_number(r['median'])} days "
                     f"(range {format_number(r['min'])}–{format_number(r['max'])}; "
                     f"{int(r['n'])} patients engrafted; between groups P = "
                     f"{format_p(r['p_value'])})")
    if not parts:
        return "The data have no engraftment columns."
    return "In this cohort, " + " and ".join(parts) + "."

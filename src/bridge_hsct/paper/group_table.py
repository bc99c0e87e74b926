"""One engine for every table of characteristics by group (Table 1, Table 3, Suppl. Table 1).

A table is declared as a :class:`TableSpec`: a list of :class:`Row` specs (which column,
how it is summarised, what it is called, which header it sits under) and what identifies a
line in the tidy download. :func:`group_table` computes it on any cohort and returns a
:class:`bridge_hsct.render.tables.Table`: lines whose column is absent (or empty) are left
out with a note, so the chapter builds on any valid cohort.

How a row is summarised (``Row.how``):

* ``"median"``: median (range) per group, Mann–Whitney U / Kruskal–Wallis test;
* ``"binary"``: n (%) of patients with 1 among those with a known value, one line;
* ``"levels"``: a header line with one test, then n (%) per level;
* ``"each_level"``: a header line, then n (%) per level, each level against the rest with
  its own test;
* ``"over"``: like ``"levels"``, for a number split at ``threshold`` (``> 40``, ``≤ 40``).

A blank cell means unknown. The tests are those of :mod:`bridge_hsct.stats.group_tests`,
computed on the patients with a known value, and percentages use those patients as
denominator. When some patients of a row are unknown, the row gets one more line, indented
under it, with their number per group (``Row.blank_label``, "Unknown" by default); the
download gives the same number as ``n_unknown`` on every record.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..cohort.schema import BY_NAME
from ..render.descriptive import count_known, median_range, n_percent
from ..render.disclosure import Disclosure
from ..render.formatting import format_median_range, format_p, group_header, range_decimals
from ..render.tables import Table
from ..stats import group_tests


@dataclass(frozen=True)
class Row:
    """One line (or block of lines) of a by-group table.

    Parameters
    ----------
    variable : the cohort column it is computed from.
    how : ``"median"``, ``"binary"``, ``"levels"``, ``"each_level"`` or ``"over"`` (see the
        module's docstring).
    label : what the table shows; by default the column's label in the data dictionary
        (followed by ``, n (%)`` for a block of levels).
    section : the header line it is indented under (``""``: none).
    key : identifier of the line in the tidy output (default: `variable`).
    threshold : for ``"over"``, the number the values are split at.
    levels : for ``"levels"``, the levels in display order (default: the schema's).
    level_labels : display label of each level (default: the schema's).
    values : cohort → Series derived from `variable` (e.g. a grade band as 0/1, missing
        where the grade is missing), instead of the column itself.
    blank_label : what the line counting the patients with a blank value is called.
    """

    variable: str
    how: str
    label: str = ""
    section: str = ""
    key: str = ""
    threshold: float | None = None
    levels: tuple | None = None
    level_labels: dict | None = field(default=None, hash=False)
    values: Callable[[pd.DataFrame], pd.Series] | None = field(default=None, compare=False)
    blank_label: str = "Unknown"

    @property
    def name(self) -> str:
        """The line's identifier in the tidy output."""
        return self.key or self.variable

    def text(self) -> str:
        """What the table calls the line (or the header of its block)."""
        if self.label:
            return self.label
        var = BY_NAME.get(self.variable)
        base = var.label if var else self.variable
        return base if self.how == "binary" else base + ", n (%)"


@dataclass(frozen=True)
class TableSpec:
    """A by-group table: its rows and what identifies a line in its download.

    Parameters
    ----------
    rows : the lines, in display order.
    identity : columns naming a line in the tidy numbers, among ``"row"`` (the row's key),
        ``"variable"``, ``"label"`` and ``"level"``.
    median_n : whether a median line's numbers give how many patients it is computed over.
    derived : columns computed from the cohort before the rows are read (name → function).
    """

    rows: tuple[Row, ...]
    identity: tuple[str, ...] = ("variable", "level")
    median_n: bool = False
    derived: tuple[tuple[str, Callable[[pd.DataFrame], pd.Series]], ...] = ()


#: The note under a table that has at least one line of unknowns.
UNKNOWN_NOTE = ("A blank cell counts as unknown: the unknown patients are counted on their own "
                "line, left out of the percentages (of the patients with a known value) and "
                "left out of the test.")


def present(data: pd.DataFrame, column: str) -> bool:
    """Whether `column` is in the cohort and holds at least one value."""
    return column in data and bool(data[column].notna().any())


def _categories(row: Row, data: pd.DataFrame) -> tuple[pd.Series, list, dict, bool]:
    """The categorical view of a row: values, levels in order, labels, ordered?"""
    if row.how == "over":
        above, below = f"> {row.threshold:g}", f"≤ {row.threshold:g}"
        values = data[row.variable].map(lambda x: np.nan if pd.isna(x) else
                                        above if x > row.threshold else below)
        return values, [above, below], {above: above, below: below}, False
    var = BY_NAME.get(row.variable)
    levels = list(row.levels) if row.levels is not None else list(var.levels)
    labels = row.level_labels or var.level_labels or {lv: str(lv) for lv in levels}
    return data[row.variable], levels, labels, (row.levels is None and var.kind == "ordinal")


class _Lines:
    """The display lines and tidy records of a table being built, its counts written
    through `disclosure`."""

    def __init__(self, spec: TableSpec, columns: list, disclosure: Disclosure):
        self.spec, self.columns, self.disclosure = spec, columns, disclosure
        self.display, self.numbers = [], []
        self.has_unknown = False

    def header(self, label: str, p: str = "", test: str = "") -> None:
        self.display.append([label, *[""] * len(self.columns), p, test, 0])

    def line(self, label: str, cells: list, p: str, test: str, indent: int) -> None:
        self.display.append([label, *cells, p, test, indent])

    def unknown(self, row: Row, values: pd.Series, indent: int) -> None:
        """The line counting the patients whose value is blank, if there are any."""
        blank = values.isna()
        if not blank.any():
            return
        self.has_unknown = True
        cells = [self.disclosure.count_text(blank.loc[part.index].sum())
                 for _, part in self.columns]
        self.line(row.blank_label, cells, "", "", indent)

    def record(self, row: Row, level: str, group, values: pd.Series, **numbers) -> None:
        """One tidy record; `values` are the row's values in `group`, for ``n_unknown``."""
        names = {"row": row.name, "variable": row.variable, "label": row.text(),
                 "level": level}
        self.numbers.append({**{k: names[k] for k in self.spec.identity}, "group": group,
                             **numbers, "n_unknown": int(values.isna().sum())})

    def tidy(self) -> pd.DataFrame:
        """The records as a frame; with no record, an empty frame with the key columns."""
        return pd.DataFrame(self.numbers, columns=None if self.numbers else
                            [*self.spec.identity, "group"])


def group_table(data: pd.DataFrame, group_col: str, group_order: list,
                spec: TableSpec, *, disclosure: Disclosure) -> Table:
    """Compute a by-group table: whole cohort, each group, P value and test per line.

    Parameters
    ----------
    data : a validated cohort.
    group_col : column defining the groups.
    group_order : the groups, in display order.
    spec : the table's rows.
    disclosure : the small-cell suppression of its counts (the chapter's), which the table
        keeps for its page and downloads.

    Returns
    -------
    bridge_hsct.render.tables.Table
        ``display``: columns Characteristic, whole cohort, each group (with its size), P
        value, Test, indent; ``numbers``: one record per line (or level) and group, with the
        spec's identity columns, group, count, n, percent or median, min, max, and p_value,
        test, n_unknown; ``omitted``: keys of the rows whose column is absent or empty, and a
        note naming them; ``needs``: the columns the rows are computed from.
    """
    data = data.assign(**{name: make(data) for name, make in spec.derived})
    groups = data[group_col]
    columns = [("whole", data)] + [(g, data[groups == g]) for g in group_order]
    lines = _Lines(spec, columns, disclosure)
    omitted, sections = [], set()
    for row in spec.rows:
        if not present(data, row.variable):
            omitted.append(row)
            continue
        if row.section and row.section not in sections:
            sections.add(row.section)
            lines.header(row.section)
        indent = int(bool(row.section))
        if row.how == "median":
            _median(lines, row, data, groups, columns, indent)
        elif row.how == "binary":
            _binary(lines, row, data, groups, columns, indent)
        else:
            _levels(lines, row, data, groups, columns)
    names = ["Characteristic", group_header("Whole cohort", disclosure.count_text(len(data))),
             *[group_header(g, disclosure.count_text((groups == g).sum()))
               for g in group_order],
             "P value", "Test", "indent"]
    notes = [UNKNOWN_NOTE] if lines.has_unknown else []
    if omitted:
        labels = [BY_NAME[r.variable].label if r.variable in BY_NAME else r.variable
                  for r in omitted]
        notes.append("Not in the data, so left out: " + ", ".join(dict.fromkeys(labels)) + ".")
    return Table(pd.DataFrame(lines.display, columns=names), lines.tidy(), notes,
                 [r.name for r in omitted], needs=tuple(dict.fromkeys(
                     r.variable for r in spec.rows)), disclosure=disclosure)


def _row_values(row: Row, data: pd.DataFrame) -> pd.Series:
    return row.values(data) if row.values else data[row.variable]


def _median(lines: _Lines, row, data, groups, columns, indent) -> None:
    values = _row_values(row, data)
    result = group_tests.compare_numbers(values, groups)
    summaries = []
    for g, part in columns:
        shown = values.loc[part.index]
        med, lo, hi = median_range(shown)
        summaries.append((med, lo, hi))
        counted = {"n": int(shown.notna().sum())} if lines.spec.median_n else {}
        lines.record(row, "", g, shown, **counted, median=med, min=lo, max=hi,
                     p_value=result.p_value, test=result.test)
    # one number of decimals for the whole line, so that its cells read alike
    decimals = range_decimals([x for summary in summaries for x in summary])
    cells = [format_median_range(*summary, decimals) for summary in summaries]
    lines.line(row.text(), cells, format_p(result.p_value), result.test, indent)
    lines.unknown(row, values, indent + 1)


def _count_cells(lines: _Lines, row, values: pd.Series, hit: pd.Series, columns, level: str,
                 result) -> list[str]:
    cells = []
    for g, part in columns:
        shown = values.loc[part.index]
        k, n = count_known(shown, hit.loc[part.index])
        cells.append(n_percent(k, n, lines.disclosure))
        lines.record(row, level, g, shown, count=k, n=n,
                     percent=100 * k / n if n else np.nan,
                     p_value=result.p_value if result else np.nan,
                     test=result.test if result else "")
    return cells


def _binary(lines: _Lines, row, data, groups, columns, indent) -> None:
    values = _row_values(row, data)
    result = group_tests.compare_categories(values, groups, [1, 0])
    cells = _count_cells(lines, row, values, values == 1, columns, row.text(), result)
    lines.line(row.text(), cells, format_p(result.p_value), result.test, indent)
    lines.unknown(row, values, indent + 1)


def _levels(lines: _Lines, row, data, groups, columns) -> None:
    values, levels, labels, ordered = _categories(row, data)
    if row.how == "each_level":
        lines.header(row.text())
        for lv in levels:
            # this level against the other known levels: unknowns are neither
            is_level = (values == lv).astype(float).where(values.notna())
            result = group_tests.compare_categories(is_level, groups, [1, 0])
            cells = _count_cells(lines, row, values, values == lv, columns, str(labels[lv]),
                                 result)
            lines.line(labels[lv], cells, format_p(result.p_value), result.test, 1)
    else:
        result = group_tests.compare_categories(values, groups, levels, ordered)
        lines.header(row.text(), format_p(result.p_value), result.test)
        for lv in levels:
            cells = _count_cells(lines, row, values, values == lv, columns, str(labels[lv]),
                                 result)
            lines.line(labels[lv], cells, "", "", 1)
    lines.unknown(row, values, 1)

"""Read a cohort file and report every problem at once (file, column, row, value, rule)."""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pandera.pandas as pa

from .dates import dates_to_days, is_date_mode
from .schema import BY_NAME, CROSS_RULE_COLUMN, cohort_schema


@dataclass(frozen=True)
class Problem:
    """One violation of the data dictionary.

    ``row`` is the line number in the CSV file (the header is line 1), or None when the
    problem concerns the whole file or a whole column.
    """

    file: str
    column: str | None
    row: int | None
    value: object
    rule: str

    def __str__(self) -> str:
        where = [self.file]
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column:
            where.append(f"column '{self.column}'")
        value = "" if self.value is None else f" (value: {self.value!r})"
        return f"{', '.join(where)}: {self.rule}{value}"


class CohortError(ValueError):
    """A cohort file that does not conform; ``problems`` lists every violation."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        lines = [f"{len(problems)} problem(s) in the cohort data:"]
        lines += [f"  - {p}" for p in problems]
        super().__init__("\n".join(lines))


def _rule_text(check: str) -> str | None:
    if check == "column_in_dataframe":
        return "required column is missing"
    if check == "field_uniqueness":
        return "must be unique (duplicate value)"
    if check == "not_nullable":
        return "must not be empty"
    if check.startswith("coerce_dtype('float64')"):
        return "must be a number"
    if check.startswith("coerce_dtype('datetime64"):
        return "must be a date (YYYY-MM-DD)"
    if check.startswith("dtype("):
        return None  # reported through the failed coercion
    return f"must be {check}" if check[0] in "<>o" else check


def _problems_from(errors: pa.errors.SchemaErrors, file: str) -> list[Problem]:
    problems, seen = [], set()
    for case in errors.failure_cases.itertuples():
        index = None if pd.isna(case.index) else int(case.index)
        cross_rule = case.schema_context == "DataFrameSchema" and case.check in CROSS_RULE_COLUMN
        # wide checks list every column of a failing row: report it once, under its column
        column = CROSS_RULE_COLUMN[case.check] if cross_rule else case.column
        if case.check == "column_in_dataframe":
            column = case.failure_case  # pandera names the schema here, not the column
        rule = _rule_text(str(case.check))
        key = (column, index, rule)
        if rule is None or key in seen:
            continue
        seen.add(key)
        whole_column = cross_rule or case.check == "column_in_dataframe"
        value = None if whole_column else case.failure_case
        problems.append(Problem(file, column, None if index is None else index + 2, value, rule))
    return sorted(problems, key=lambda p: (p.row or 0, p.column or ""))


EXCEL_SUFFIXES = {".xlsx", ".xlsm", ".xls"}


def _csv_dialect(path: Path) -> dict:
    """Separator and decimal mark: ``;`` with decimal commas (a European spreadsheet export)
    when the header has semicolons and no commas, else ``,`` with decimal points."""
    with open(path, encoding="utf-8-sig") as f:
        header = f.readline()
    if ";" in header and "," not in header:
        return {"sep": ";", "decimal": ","}
    if "\t" in header and "," not in header:
        return {"sep": "\t", "decimal": "."}
    return {"sep": ",", "decimal": "."}


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a cohort file (CSV, or an Excel workbook's first sheet) as text cells.

    CSV files must be UTF-8 (a byte-order mark is accepted); the separator is detected
    (comma, semicolon with decimal commas, or tab). The schema converts types afterwards.
    """
    path = Path(path)
    file = str(path)
    if not path.is_file():
        raise CohortError([Problem(file, None, None, None, "file not found")])
    if path.stat().st_size == 0:
        raise CohortError([Problem(file, None, None, None, "file is empty")])
    try:
        if path.suffix.lower() in EXCEL_SUFFIXES:
            table = pd.read_excel(path, dtype=str)
        else:
            dialect = _csv_dialect(path)
            table = pd.read_csv(path, dtype=str, encoding="utf-8-sig", sep=dialect["sep"],
                                skipinitialspace=True)
            if dialect["decimal"] == ",":
                table = table.apply(lambda col: col.str.replace(
                    r"^\s*(-?\d+),(\d+)\s*$", r"\1.\2", regex=True))
    except pd.errors.EmptyDataError:
        raise CohortError([Problem(file, None, None, None, "file is empty")]) from None
    except UnicodeDecodeError as exc:
        raise CohortError([Problem(file, None, None, None,
                                   f"not UTF-8 text (byte {exc.start}); save as UTF-8 CSV")]
                          ) from None
    except (pd.errors.ParserError, ValueError) as exc:
        raise CohortError([Problem(file, None, None, None, f"not a readable table: {exc}")]
                          ) from None
    table.columns = [str(c).strip() for c in table.columns]
    return table.apply(lambda col: col.str.strip())


def _convert_types(table: pd.DataFrame, file: str) -> tuple[pd.DataFrame, list[Problem]]:
    """Convert numeric and date columns, reporting each cell that does not convert.

    Done before the schema so that one bad cell does not hide the column's other checks.
    """
    table = table.copy()
    problems = []
    for name in table.columns:
        var = BY_NAME.get(name)
        if var is None or var.kind in {"id", "group", "category"} or (
            var.kind == "ordinal" and not all(isinstance(x, int) for x in var.levels)
        ):
            continue
        raw = table[name]
        if var.kind == "date":
            converted = pd.to_datetime(raw, format="%Y-%m-%d", errors="coerce")
            rule = "must be a date (YYYY-MM-DD)"
        else:
            converted = pd.to_numeric(raw, errors="coerce")
            rule = "must be a number"
        for index in raw.index[raw.notna() & converted.isna()]:
            problems.append(Problem(file, name, index + 2, raw[index], rule))
        table[name] = converted
    return table, problems


def validate_cohort(table: pd.DataFrame, file: str = "<data>",
                    group_col: str = "arm") -> pd.DataFrame:
    """Validate a cohort table against the data dictionary and return it typed.

    Parameters
    ----------
    table : raw cohort, one row per patient.
    file : name used in the problem reports.
    group_col : the column whose values define the compared groups.

    Returns
    -------
    pandas.DataFrame
        The cohort with the schema's types, ready for :mod:`bridge_hsct.endpoints`.

    Raises
    ------
    CohortError
        With every problem found (missing columns, bad values, impossible histories).
    """
    if table.empty:
        raise CohortError([Problem(file, None, None, None, "no patient rows (header only)")])
    unknown = [c for c in table.columns if c not in BY_NAME and c != group_col]
    if unknown:
        warnings.warn(f"{file}: column(s) not in the data dictionary are ignored: {unknown}",
                      stacklevel=2)
    table, problems = _convert_types(table, file)
    try:
        typed = cohort_schema().validate(table, lazy=True)
    except pa.errors.SchemaErrors as errors:
        reported = {(p.column, p.row) for p in problems}
        problems += [p for p in _problems_from(errors, file)
                     if (p.column, p.row) not in reported]
        typed = None
    if group_col not in table.columns:
        if group_col != "arm":
            problems.append(Problem(file, group_col, None, None,
                                    "group column (parameter group_col) is missing"))
    else:
        sizes = table[group_col].dropna().value_counts()
        if len(sizes) < 2:
            problems.append(Problem(file, group_col, None, list(sizes.index),
                                    "at least two groups are needed to compare"))
        for group in sizes[sizes < 2].index:
            problems.append(Problem(file, group_col, None, group,
                                    "each group needs at least two patients to be compared"))
    if problems:
        raise CohortError(sorted(problems, key=lambda p: (p.row or 0, p.column or "")))
    return typed


#: Cohorts already validated in this process, by (file content, group column, cut-off). The
#: book's builder validates once and forks its chapter workers, which inherit this.
_VALIDATED: dict[tuple, pd.DataFrame] = {}


def _memo_key(path: str | Path, group_col: str, cutoff: str | None) -> tuple:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest(), group_col, cutoff


def remember_cohort(path: str | Path, group_col: str, cohort: pd.DataFrame) -> None:
    """Record that `path` (no cut-off) validates to `cohort`, e.g. after writing it there."""
    _VALIDATED[_memo_key(path, group_col, None)] = cohort.copy()


def load_cohort(path: str | Path, group_col: str = "arm", cutoff: str | None = None
                ) -> pd.DataFrame:
    """Read and validate a cohort file (see :func:`read_table`, :func:`validate_cohort`).

    A file with calendar dates (a ``last_contact_date`` column) is first converted to days
    since HSCT by :func:`bridge_hsct.dates.dates_to_days`, censoring at `cutoff` if given.
    A file whose content was validated before in this process is not validated again.
    """
    key = _memo_key(path, group_col, cutoff)
    if key in _VALIDATED:
        return _VALIDATED[key].copy()
    table = read_table(path)
    if is_date_mode(table):
        table, problems = dates_to_days(table, str(path), cutoff, Problem)
        if problems:
            raise CohortError(problems)
    cohort = validate_cohort(table, str(path), group_col)
    _VALIDATED[key] = cohort.copy()
    return cohort

"""Read a cohort file and report every problem at once (file, column, row, value, rule).

Reading is defensive: whatever a user passes (a binary file, a corrupt or inflating
workbook, a file with blank lines or duplicated column names) ends in a
:class:`CohortError` listing the problems, never in a traceback. Row numbers are the true
line numbers of a CSV file (blank lines and the lines of quoted multi-line cells counted) or
the row numbers of the sheet, so that a user finds the row where the message says.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import time
import unicodedata
import warnings
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd
import pandera.pandas as pa

from ..stats.survival import months_to_days, to_months
from .dates import cutoff_problem, dates_to_days, is_date_mode
from .schema import (
    BY_NAME,
    CROSS_RULE_COLUMN,
    CROSS_RULE_VALUES,
    MISSING_WORDS,
    cohort_schema,
)

#: Largest cohort file read, in bytes: on disk for a CSV, uncompressed for a workbook.
#: A cohort of one row per patient is well under 1 MB; this only stops absurd inputs
#: (a zip bomb, a wrong file) before they exhaust memory or time.
MAX_BYTES = 200 * 1024**2
#: Largest compression ratio of a workbook member larger than 1 MB. Real sheets compress
#: 5 to 20 times; a zip bomb thousands of times.
MAX_RATIO = 100
#: Longest time spent reading the cells of a workbook, in seconds.
MAX_READ_SECONDS = 60.0
#: Name of the index of a table read by :func:`read_table`: the file line of each row.
LINE = "line"


@dataclass(frozen=True)
class Problem:
    """One violation of the data dictionary, or one unusable parameter.

    ``row`` is the line number in the CSV file (the header is line 1 unless blank lines
    precede it) or the row number of the sheet of a workbook; None when the problem concerns
    the whole file or a whole column. ``parameter`` names the build parameter at fault.
    """

    file: str
    column: str | None
    row: int | None
    value: object
    rule: str
    parameter: str | None = None

    def __str__(self) -> str:
        where = [self.file]
        if self.parameter:
            where.append(f"parameter {self.parameter}")
        if self.row is not None:
            where.append(f"{'row' if _is_workbook(self.file) else 'line'} {self.row}")
        if self.column:
            where.append(f"column '{self.column}'")
        return f"{', '.join(where)}: {self.rule}{self._value_text()}"

    def _value_text(self) -> str:
        if self.value is None:
            return ""
        return f" ({'values' if isinstance(self.value, Shown) else 'value'}: {self.value!r})"

    def summary(self, others: list[Problem]) -> str:
        """This problem and `others` (the same rule in the same column on other rows) as
        one line: how many rows, the first few, and this one's value."""
        rows = [self.row] + [p.row for p in others]
        noun = "rows" if _is_workbook(self.file) else "lines"
        shown = ", ".join(map(str, rows[:SHOWN_ROWS]))
        more = f" and {len(rows) - SHOWN_ROWS} more" if len(rows) > SHOWN_ROWS else ""
        first = f"; first{self._value_text()}" if self.value is not None else ""
        return (f"{self.file}, column '{self.column}': {self.rule}, on {len(rows)} {noun} "
                f"({shown}{more}){first}")


#: A problem repeated on more rows than this (same column, same rule) is summarised in one
#: line of a :class:`CohortError` message, showing this many of its rows.
SHOWN_ROWS = 5


class CohortError(ValueError):
    """A cohort file that does not conform; ``problems`` lists every violation.

    The message is one line for one problem, else a block with one line per problem; the
    same rule broken in one column on more than :data:`SHOWN_ROWS` rows is one line saying
    how many rows and which first.
    """

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        if len(problems) == 1:
            message = str(problems[0])
        else:
            lines = [f"{len(problems)} problems in the cohort data:"]
            lines += [f"  - {line}" for line in _summarised(problems)]
            message = "\n".join(lines)
        super().__init__(message)


def _summarised(problems: list[Problem]) -> list[str]:
    """One line per problem, or per (column, rule) for one repeated on many rows, in the
    order of each one's first row."""
    same: dict[tuple, list[Problem]] = {}
    for problem in problems:
        if problem.row is not None and problem.column:
            same.setdefault((problem.column, problem.rule), []).append(problem)
    lines, done = [], set()
    for problem in problems:
        key = (problem.column, problem.rule)
        group = same.get(key, [])
        if len(group) <= SHOWN_ROWS or problem.row is None:
            lines.append(str(problem))
        elif key not in done:
            done.add(key)
            lines.append(group[0].summary(group[1:]))
    return lines


def _refuse(file: str, rule: str, row: int | None = None, column: str | None = None):
    """Raise a :class:`CohortError` with the one problem that makes `file` unreadable."""
    raise CohortError([Problem(file, column, row, None, rule)])


# --- reading ------------------------------------------------------------------------------

WORKBOOK_SUFFIXES = {".xlsx", ".xlsm"}


def _is_workbook(file: str) -> bool:
    return Path(file).suffix.lower() in WORKBOOK_SUFFIXES


def _check_file(path: Path, file: str) -> None:
    """Refuse a path that is not a readable, non-empty file of a sensible size."""
    if path.is_dir():
        _refuse(file, "is a folder, not a cohort file")
    if not path.is_file():
        _refuse(file, "file not found")
    size = path.stat().st_size
    if size == 0:
        _refuse(file, "file is empty")
    if size > MAX_BYTES:
        _refuse(file, f"file is {size / 1024**2:.0f} MB, more than the {_mb(MAX_BYTES)} a "
                      "cohort file may take (one row per patient is well under 1 MB)")
    if path.suffix.lower() == ".xls":
        _refuse(file, "old Excel .xls workbooks are not read: save it as .xlsx or CSV (UTF-8)")


def _mb(size: int) -> str:
    return f"{size / 1024**2:.0f} MB"


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a cohort file (CSV, or an Excel workbook's first sheet) as text cells.

    CSV files must be UTF-8 (a byte-order mark is accepted); the separator is detected
    (comma, semicolon with decimal commas, or tab). Blank lines are skipped. The schema
    converts types afterwards.

    Returns
    -------
    pandas.DataFrame
        One row per patient, cells as stripped text or None (empty, or one of
        :data:`bridge_hsct.cohort.schema.MISSING_WORDS`); the index, named :data:`LINE`, is
        each row's line in the file; ``attrs[WORDS_READ_AS_MISSING]`` holds the cells that
        were such words.

    Raises
    ------
    CohortError
        When the file cannot be read as a table: missing, empty, too large, not UTF-8,
        binary, a corrupt or inflating workbook, duplicated or unnamed columns, a row with
        more cells than the header.
    """
    path = Path(path)
    file = str(path)
    _check_file(path, file)
    if _is_workbook(file):
        records = _workbook_records(path, file)
    else:
        records = _csv_records(path, file)
    return _as_table(records, file)


def _decode(data: bytes, file: str) -> str:
    """The text of a CSV file, or a refusal naming the line of the first bad byte."""
    if data.startswith(b"PK\x03\x04"):
        _refuse(file, "is a zip archive (an Excel workbook?), not a CSV file: give a "
                      "workbook the .xlsx suffix, or save the sheet as CSV (UTF-8)")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        _refuse(file, f"not UTF-8 text (byte 0x{data[exc.start]:02x}); save it as "
                      "CSV (UTF-8)", row=line)
    if "\x00" in text:  # a binary file that happens to decode
        line = text[:text.index("\x00")].count("\n") + 1
        _refuse(file, "contains NUL characters: a binary file, not CSV text", row=line)
    return text


def _csv_dialect(text: str) -> dict:
    """Separator and decimal mark: ``;`` with decimal commas (a European spreadsheet export)
    when the header has semicolons and no commas, else ``,`` with decimal points."""
    header = next((line for line in text.splitlines() if line.strip()), "")
    if ";" in header and "," not in header:
        return {"sep": ";", "decimal": ","}
    if "\t" in header and "," not in header:
        return {"sep": "\t", "decimal": "."}
    return {"sep": ",", "decimal": "."}


DECIMAL_COMMA = re.compile(r"^\s*(-?\d+),(\d+)\s*$")


def _csv_records(path: Path, file: str) -> list[tuple[int, list]]:
    """Every record of a CSV file with the line it starts on (blank lines included).

    The csv module, not pandas, splits the file: it says on which line each record ends,
    so a record's first line is one after the previous record's last, which counts blank
    lines and the extra lines of quoted multi-line cells.
    """
    text = _decode(path.read_bytes(), file)
    dialect = _csv_dialect(text)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=dialect["sep"],
                        skipinitialspace=True)
    records, start = [], 1
    try:
        for cells in reader:
            if dialect["decimal"] == ",":
                cells = [DECIMAL_COMMA.sub(r"\1.\2", c) for c in cells]
            records.append((start, cells))
            start = reader.line_num + 1
    except csv.Error as exc:
        _refuse(file, f"not readable as CSV ({exc})", row=start)
    return records


def _check_archive(path: Path, file: str) -> None:
    """Refuse a workbook that is not a zip archive or that would inflate beyond the caps.

    The sizes are those the archive declares; Python's zipfile (which openpyxl reads with)
    never inflates a member beyond its declared size, so a lying archive cannot exceed them.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError) as exc:
        _refuse(file, f"not a valid .xlsx workbook (corrupt, or not a workbook: {exc})")
    total = sum(m.file_size for m in members)
    if total > MAX_BYTES:
        _refuse(file, f"workbook would inflate to {_mb(total)}, more than the "
                      f"{_mb(MAX_BYTES)} a cohort file may take")
    for member in members:
        ratio = member.file_size / max(member.compress_size, 1)
        if member.file_size > 1024**2 and ratio > MAX_RATIO:
            _refuse(file, f"workbook member {member.filename} is compressed {ratio:.0f} "
                          f"to 1 (more than {MAX_RATIO} to 1: a zip bomb?)")


def _workbook_records(path: Path, file: str) -> list[tuple[int, list]]:
    """Every row of a workbook's first sheet with its row number, within the time cap."""
    import openpyxl  # only needed for workbooks

    _check_archive(path, file)
    deadline = time.monotonic() + MAX_READ_SECONDS
    records = []
    # openpyxl reports a malformed workbook through many unrelated exception types (KeyError,
    # XML syntax errors, zlib errors, ...): any of them means the user's file is unreadable
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # openpyxl's notes on styles are not the user's
            book = openpyxl.load_workbook(path, read_only=True, data_only=True)
            try:
                sheet = book.worksheets[0]
                sheet.reset_dimensions()  # a declared size may be wrong or absurd
                rows = sheet.iter_rows(min_row=1, values_only=True)
                for number, values in enumerate(rows, start=1):
                    if time.monotonic() > deadline:
                        _refuse(file, f"reading the workbook took more than "
                                      f"{MAX_READ_SECONDS:.0f} s (at row {number}): save "
                                      "the sheet as CSV (UTF-8)")
                    records.append((number, [_cell_text(v) for v in values]))
            finally:
                book.close()
    except CohortError:
        raise
    except Exception as exc:  # see above
        _refuse(file, f"not a readable .xlsx workbook ({type(exc).__name__}: {exc})")
    return records


def _cell_text(value) -> str:
    """A workbook cell as the text a CSV export would hold."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if hasattr(value, "isoformat"):  # a date cell: ISO date, with the time only if any
        text = value.isoformat()
        return text[:10] if text.endswith("T00:00:00") else text
    return str(value)


def _is_blank(cells: list) -> bool:
    return all(not str(c).strip() for c in cells)


def _as_table(records: list[tuple[int, list]], file: str) -> pd.DataFrame:
    """The table of the records: header checked, blank rows skipped, line numbers kept."""
    records = [(line, cells) for line, cells in records if not _is_blank(cells)]
    if not records:
        _refuse(file, "file is empty (only blank lines)")
    (header_line, raw_header), rows = records[0], records[1:]
    header = [str(name).strip() for name in raw_header]
    keep = _check_header(header, rows, file, header_line)
    problems = []
    table_rows = []
    for line, cells in rows:
        extra = [c for c in cells[len(header):] if str(c).strip()]
        if extra:
            problems.append(Problem(file, None, line, None,
                                    f"has {len(cells)} cells but the header has "
                                    f"{len(header)} columns"))
        cells = (list(cells) + [""] * len(header))[:len(header)]
        table_rows.append([str(cells[i]).strip() for i in keep])
    if problems:
        raise CohortError(problems)
    index = pd.Index([line for line, _ in rows], name=LINE)
    table = pd.DataFrame(table_rows, columns=[header[i] for i in keep], index=index,
                         dtype=object)
    missing = table.isin(MISSING_WORDS)
    words = missing & (table != "")
    # kept so that a label written as one of them is refused, not dropped
    read_as_missing = {column: table.loc[words[column], column].to_dict()
                       for column in table.columns if words[column].any()}
    table = table.mask(missing, None)
    table.attrs[WORDS_READ_AS_MISSING] = read_as_missing
    return table


#: Key of a read table's ``attrs``: for each column, the cells (line to text) that were a
#: word of :data:`bridge_hsct.cohort.schema.MISSING_WORDS` (not a blank), read as missing.
WORDS_READ_AS_MISSING = "words_read_as_missing"


def _check_header(header: list[str], rows: list, file: str, line: int) -> list[int]:
    """Positions of the columns to keep; refuse duplicated names, unnamed columns that
    hold values and names that are not one line of printable text.

    A column without a name and without values (a trailing separator) is dropped.
    """
    problems, keep, seen = [], [], {}
    for i, name in enumerate(header):
        if not name:
            if any(i < len(cells) and str(cells[i]).strip() for _, cells in rows):
                problems.append(Problem(file, None, line, None,
                                        f"column {i + 1} has values but no name"))
            continue
        bad = _unprintable(name)
        if bad:
            problems.append(Problem(file, name, line, None,
                                    f"a column name must be one line of printable text "
                                    f"(it contains {bad})"))
        seen.setdefault(name, []).append(i + 1)
        keep.append(i)
    for name, positions in seen.items():
        if len(positions) > 1:
            where = ", ".join(map(str, positions))
            problems.append(Problem(file, name, line, None,
                                    f"column name appears {len(positions)} times (columns "
                                    f"{where}): keep one, or rename the others"))
    if problems:
        raise CohortError(problems)
    return keep


#: Characters refused in a label: control characters, line and paragraph separators, and
#: the bidirectional controls that reorder how the text around them is displayed.
BIDI_CONTROLS = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


CHARACTER_NAMES = {"\n": "a line break", "\r": "a carriage return", "\t": "a tab",
                   "\x00": "a NUL character"}


def _unprintable(text: str) -> str | None:
    """Describe the first character of `text` that a one-line label may not contain."""
    for char in text:
        if unicodedata.category(char) in {"Cc", "Zl", "Zp"} or char in BIDI_CONTROLS:
            name = CHARACTER_NAMES.get(char) or unicodedata.name(char, "a control character")
            return f"{name}, U+{ord(char):04X}"
    return None


# --- validating ---------------------------------------------------------------------------

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


def _problems_from(errors: pa.errors.SchemaErrors, file: str, table: pd.DataFrame
                   ) -> list[Problem]:
    """One problem per (column, row, rule) of pandera's failure cases; the table's index
    holds the file line numbers, its cells (as written) are shown by relational rules."""
    problems, seen = [], set()
    for case in errors.failure_cases.itertuples():
        line = None if pd.isna(case.index) else int(case.index)
        cross_rule = case.schema_context == "DataFrameSchema" and case.check in CROSS_RULE_COLUMN
        # wide checks list every column of a failing row: report it once, under its column
        column = CROSS_RULE_COLUMN[case.check] if cross_rule else case.column
        if case.check == "column_in_dataframe":
            column = case.failure_case  # pandera names the schema here, not the column
        rule = _rule_text(str(case.check))
        key = (column, line, rule)
        if rule is None or key in seen:
            continue
        seen.add(key)
        no_value = cross_rule or case.check in {"column_in_dataframe", "not_nullable"}
        value = None if no_value else case.failure_case
        if cross_rule and line is not None:
            value = _values_shown(table, line, CROSS_RULE_VALUES[case.check])
        problems.append(Problem(file, column, line, value, rule))
    return _sorted(problems)


class Shown(str):
    """Values of several columns, shown as written: ``a = 1, b = blank``."""

    def __repr__(self) -> str:
        return str(self)


def _values_shown(table: pd.DataFrame, line: int, columns: tuple) -> Shown:
    """The cells of `columns` on `line`, as a relational rule's report shows them."""
    def cell(column):
        if column not in table:
            return "absent"
        value = table.at[line, column]
        return "blank" if value is None or pd.isna(value) else str(value)
    return Shown(", ".join(f"{c} = {cell(c)}" for c in columns))


def _sorted(problems: list[Problem]) -> list[Problem]:
    return sorted(problems, key=lambda p: (p.row or 0, p.column or ""))


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
        for line in raw.index[raw.notna() & converted.isna()]:
            problems.append(Problem(file, name, int(line), raw[line], rule))
        table[name] = converted
    return table, problems


def _label_problems(table: pd.DataFrame, file: str, group_col: str) -> list[Problem]:
    """Labels that are not one line of printable text, in the text columns the book shows
    (identifiers and groups), or that are a word meaning "unknown" (which would silently
    drop the patients). HTML or Markdown punctuation is fine: the renderer escapes it;
    a line break or a control character would break the page or the downloads around it."""
    columns = [c for c in table.columns
               if c == group_col or (c in BY_NAME and BY_NAME[c].kind in {"id", "group"})]
    words = table.attrs.get(WORDS_READ_AS_MISSING, {})
    problems = [Problem(file, column, int(line), text,
                        "reads as a missing value, as every cell written "
                        f"{', '.join(sorted(MISSING_WORDS - {''}))} does: give a label "
                        "that is not one of these words")
                for column in columns for line, text in words.get(column, {}).items()]
    for column in columns:
        for line, value in table[column].items():
            bad = isinstance(value, str) and _unprintable(value)
            if bad:
                problems.append(Problem(file, column, int(line), value,
                                        f"a label must be one line of printable text "
                                        f"(it contains {bad})"))
    return problems


def _group_problems(table: pd.DataFrame, file: str, group_col: str) -> list[Problem]:
    """The group column exists, is filled, and has at least two groups of two patients."""
    if group_col not in table.columns:
        return [Problem(file, group_col, None, None,
                        "group column is missing (parameter group_col, --group-col)")]
    labels = table[group_col]
    words = table.attrs.get(WORDS_READ_AS_MISSING, {}).get(group_col, {})
    problems = [Problem(file, group_col, int(line), None, "must not be empty (a group)")
                for line in labels.index[labels.isna()] if line not in words]
    sizes = labels.dropna().value_counts()
    if len(sizes) < 2:
        problems.append(Problem(file, group_col, None, list(sizes.index),
                                "at least two groups are needed to compare"))
    for group in sizes[sizes < 2].index:
        line = int(labels.index[labels == group][0])
        problems.append(Problem(file, group_col, line, group,
                                "each group needs at least two patients to be compared"))
    return problems


def _as_written(problem: Problem, raw: pd.DataFrame) -> Problem:
    """`problem` showing its cell as written in the file (``150``, not the ``150.0`` the
    number became)."""
    if problem.value is None or problem.row is None or problem.column not in raw.columns \
            or isinstance(problem.value, Shown):
        return problem
    return replace(problem, value=raw.at[problem.row, problem.column])


def _with_lines(table: pd.DataFrame) -> pd.DataFrame:
    """`table` indexed by file line: as read by :func:`read_table`, or else counted as a
    CSV written from it would be (header on line 1, no blank lines)."""
    if table.index.name == LINE:
        return table
    return table.set_axis(pd.RangeIndex(2, len(table) + 2, name=LINE))


def validate_cohort(table: pd.DataFrame, file: str = "<data>",
                    group_col: str = "arm") -> pd.DataFrame:
    """Validate a cohort table against the data dictionary and return it typed.

    Parameters
    ----------
    table : raw cohort, one row per patient; its index holds the file line numbers when
        it is named :data:`LINE` (as :func:`read_table` gives it).
    file : name used in the problem reports.
    group_col : the column whose values define the compared groups.

    Returns
    -------
    pandas.DataFrame
        The cohort with the schema's types and a fresh 0, 1, ... index, ready for
        :mod:`bridge_hsct.cohort.endpoints`.

    Raises
    ------
    CohortError
        With every problem found (missing columns, bad values, impossible histories).
    """
    if table.empty:
        raise CohortError([Problem(file, None, None, None, "no patient rows (header only)")])
    table = _with_lines(table)
    unknown = [c for c in table.columns if c not in BY_NAME and c != group_col]
    if unknown:
        warnings.warn(f"{file}: column(s) not in the data dictionary are ignored: "
                      f"{', '.join(unknown)}", stacklevel=2)
    table = _without_empty_columns(table, file, group_col)
    problems = _label_problems(table, file, group_col)
    bad_labels = any(p.column == group_col for p in problems)
    raw = table
    table, converted = _convert_types(table, file)
    problems += converted
    try:
        typed = cohort_schema().validate(table, lazy=True)
    except pa.errors.SchemaErrors as errors:
        reported = {(p.column, p.row) for p in problems}
        problems += [_as_written(p, raw) for p in _problems_from(errors, file, raw)
                     if (p.column, p.row) not in reported]
        typed = None
    if not bad_labels:  # group sizes would only repeat the refused labels
        problems += _group_problems(table, file, group_col)
    if problems:
        raise CohortError(_sorted(problems))
    return typed.reset_index(drop=True)


def _without_empty_columns(table: pd.DataFrame, file: str, group_col: str) -> pd.DataFrame:
    """Drop optional columns with no value at all: an empty column says nothing, and kept it
    would read as "no event" for every patient (GRFS would quietly become PFS)."""
    empty = {c for c in table.columns if c in BY_NAME and not BY_NAME[c].required
             and c != group_col and table[c].isna().all()}
    # the days of an event nobody had are empty, and say so with their 0/1 column
    empty = [c for c in table.columns if c in empty and (
        BY_NAME[c].event_of is None or BY_NAME[c].event_of not in table
        or BY_NAME[c].event_of in empty)]
    if empty:
        warnings.warn(f"{file}: column(s) with no value are left out, as if absent: "
                      f"{', '.join(empty)}", stacklevel=3)
    return table.drop(columns=empty)


def check_landmark(cohort: pd.DataFrame, landmark_months: float, file: str = "<data>") -> None:
    """Refuse a landmark after the longest follow-up of the cohort: every estimate read there
    would be missing, page after page.

    Raises
    ------
    CohortError
        Naming the parameter, its value and the longest follow-up.
    """
    longest = float(cohort["followup_days"].max())
    if months_to_days(landmark_months) > longest:
        rule = (f"is after the longest follow-up in the data ({to_months(longest):.1f} "
                "months): no estimate could be read there")
        raise CohortError([Problem(file, None, None, landmark_months, rule,
                                   parameter="landmark_months (--landmark-months, LANDMARK)")])


def check_group_order(cohort: pd.DataFrame, group_col: str, group_order: list | None,
                      file: str = "<data>") -> None:
    """Refuse a display order of the groups that does not list each group exactly once.

    Raises
    ------
    CohortError
        Naming the parameter, the groups it lists and the groups in the data.
    """
    if not group_order:
        return
    found = sorted(cohort[group_col].dropna().unique())
    unknown = [g for g in group_order if g not in found]
    missing = [g for g in found if g not in group_order]
    repeated = sorted({g for g in group_order if group_order.count(g) > 1})
    wrong = [f"not in the data: {unknown}" if unknown else "",
             f"missing: {missing}" if missing else "",
             f"listed twice: {repeated}" if repeated else ""]
    if any(wrong):
        rule = (f"must list each group of column '{group_col}' once, the reference first "
                f"(groups in the data: {found}; {'; '.join(w for w in wrong if w)})")
        raise CohortError([Problem(file, None, None, None, rule,
                                   parameter="group_order (--group-order)")])


def _check_arguments(path: str | Path, cutoff: str | None) -> None:
    """Refuse an invalid `cutoff` (first), then a path that is not a readable cohort file."""
    file = str(path)
    if cutoff is not None:
        bad = cutoff_problem(cutoff)
        if bad:
            raise CohortError([Problem(file, None, None, cutoff, bad,
                                       parameter="cutoff_date (--cutoff-date, CUTOFF)")])
    _check_file(Path(path), file)


def load_cohort(path: str | Path, group_col: str = "arm", cutoff: str | None = None
                ) -> pd.DataFrame:
    """Read and validate a cohort file (see :func:`read_table`, :func:`validate_cohort`).

    A file with calendar dates (a ``last_contact_date`` column) is first converted to days
    since HSCT by :func:`bridge_hsct.cohort.dates.dates_to_days`, censoring at `cutoff` if given.
    Every call validates afresh; :class:`ValidatedCohorts` validates a file once.

    Raises
    ------
    CohortError
        For an invalid `cutoff` (checked first), an unreadable file or invalid data.
    """
    file = str(path)
    _check_arguments(path, cutoff)
    table = read_table(path)
    if is_date_mode(table):
        words = table.attrs[WORDS_READ_AS_MISSING]
        table, problems = dates_to_days(table, file, cutoff, Problem)
        if problems:
            raise CohortError(_sorted(problems))
        table.attrs[WORDS_READ_AS_MISSING] = words
    elif cutoff is not None:
        warnings.warn(f"{file}: the data cut-off {cutoff} is ignored: the file gives days "
                      "since HSCT, not calendar dates", stacklevel=2)
    return validate_cohort(table, file, group_col)


class ValidatedCohorts:
    """Cohorts validated once: :meth:`load` validates a file the first time only.

    Kept by file content (SHA-256), group column and cut-off. The book's builder makes one,
    validates the input with it, records the cohort it stages for the chapters
    (:meth:`remember`) and hands it to the notebook of each chapter it executes
    (:class:`bridge_hsct.book.inprocess.InProcessEngine`), so no chapter validates the
    data again. Each :meth:`load` returns a copy: a chapter may change its frame.
    """

    def __init__(self):
        self._cohorts: dict[tuple, pd.DataFrame] = {}
        # files this process wrote itself (:meth:`remember`), known by path and stat, so
        # that the input caps meant for users' files do not refuse them
        self._written: dict[tuple, tuple] = {}

    @staticmethod
    def _stat(path: str | Path) -> tuple:
        info = Path(path).stat()
        return str(Path(path).resolve()), info.st_size, info.st_mtime_ns

    @staticmethod
    def _key(path: str | Path, group_col: str, cutoff: str | None) -> tuple:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest(), group_col, cutoff

    def load(self, path: str | Path, group_col: str = "arm", cutoff: str | None = None
             ) -> pd.DataFrame:
        """:func:`load_cohort`, validating only a file not validated before (whose
        warnings are then not repeated).

        Raises
        ------
        CohortError
            As :func:`load_cohort`.
        """
        if cutoff is None and Path(path).is_file():
            written = self._written.get((self._stat(path), group_col))
            if written is not None:
                return self._cohorts[written].copy()
        _check_arguments(path, cutoff)  # before hashing the file
        key = self._key(path, group_col, cutoff)
        if key not in self._cohorts:
            self._cohorts[key] = load_cohort(path, group_col, cutoff)
        return self._cohorts[key].copy()

    def remember(self, path: str | Path, group_col: str, cohort: pd.DataFrame) -> None:
        """Record that `path` (read without cut-off) validates to `cohort`, e.g. after
        writing it there."""
        key = self._key(path, group_col, None)
        self._cohorts[key] = cohort.copy()
        self._written[(self._stat(path), group_col)] = key

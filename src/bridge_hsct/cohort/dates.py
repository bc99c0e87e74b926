"""Calendar dates as input: convert them to the days since HSCT that the schema uses.

A file is in *date mode* when it has a ``last_contact_date`` column. Then:

* ``hsct_date`` is required and is day 0;
* ``followup_days`` = ``death_date`` − ``hsct_date`` for patients who died, else
  ``last_contact_date`` − ``hsct_date``; ``death`` = 1 when ``death_date`` is given (a file
  without a ``death_date`` column says nothing about deaths: ``death`` is then absent);
* for every event (``relapse``, ``agvhd_2_4``, ``agvhd_3_4``, ``cgvhd``,
  ``neutrophil_engraftment``, ``platelet_engraftment``), ``<event>_days`` =
  ``<event>_date`` − ``hsct_date`` and the 0/1 indicator is 1 when the date is given;
* with a data cut-off date, whatever happened after it is ignored: events after the cut-off
  are not counted and follow-up stops at the cut-off.

Dates are ISO ``YYYY-MM-DD``. The converted table then goes through the usual validation, so
an event after death or last contact is still reported with its row. A transplant after the
cut-off is reported as such (not as the negative follow-up it would give).
"""

from __future__ import annotations

import datetime
import re

import pandas as pd

from .schema import VARIABLES

MARKER = "last_contact_date"
EVENTS = [v.event_of for v in VARIABLES if v.kind == "days" and v.event_of]
DATE_FORMAT = "%Y-%m-%d"


def is_date_mode(table: pd.DataFrame) -> bool:
    """Whether the table gives calendar dates (it has a ``last_contact_date`` column)."""
    return MARKER in table.columns


def cutoff_problem(text: str) -> str | None:
    """What is wrong with a data cut-off date given as text, or None if it is a valid
    ``YYYY-MM-DD`` calendar date."""
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", str(text).strip()):
        return "must be a date written YYYY-MM-DD, e.g. 2024-03-31"
    try:
        datetime.date.fromisoformat(str(text).strip())
    except ValueError:
        return "is not a calendar date (YYYY-MM-DD: month 01-12, a day the month has)"
    return None


def _parse(table: pd.DataFrame, column: str, problems: list, file: str, problem_type):
    """Parse a date column; each cell that is not a date is a problem on its file line
    (the table's index)."""
    raw = table[column]
    parsed = pd.to_datetime(raw, format=DATE_FORMAT, errors="coerce")
    for line in raw.index[raw.notna() & parsed.isna()]:
        problems.append(problem_type(file, column, int(line), raw[line],
                                     "must be a date (YYYY-MM-DD)"))
    return parsed


def _after_cutoff(table: pd.DataFrame, day0: pd.Series, cutoff: str, file: str,
                  problem_type) -> list:
    """Transplants after the cut-off: one problem per row, or one for the whole file when
    every transplant is after it (then the cut-off itself is likely wrong)."""
    late = day0 > pd.Timestamp(cutoff)
    where = f"after the data cut-off {cutoff} (parameter cutoff_date, --cutoff-date, CUTOFF)"
    if late.all():
        return [problem_type(file, "hsct_date", None, None,
                             f"every transplant date is {where}: is the cut-off right?")]
    return [problem_type(file, "hsct_date", int(line), table.at[line, "hsct_date"],
                         f"transplant date is {where}")
            for line in table.index[late]]


def dates_to_days(table: pd.DataFrame, file: str, cutoff: str | None, problem_type):
    """Convert a date-mode table to days since HSCT.

    Parameters
    ----------
    table : raw table (text cells) with ``hsct_date`` and ``last_contact_date``, indexed by
        the line of each row in its file (as :func:`bridge_hsct.cohort.validate.read_table` reads
        it): problems are reported on those lines.
    file : file name for problem reports.
    cutoff : data cut-off date (YYYY-MM-DD, checked by :func:`cutoff_problem`) or None.
    problem_type : the class used to report problems (file, column, row, value, rule).

    Returns
    -------
    (pandas.DataFrame, list)
        The table with ``*_days`` and indicator columns filled in (date columns other than
        ``hsct_date`` dropped), and the problems found while converting.
    """
    problems: list = []
    if "hsct_date" not in table:
        return table, [problem_type(file, "hsct_date", None, None,
                                    "required with dates (it is day 0)")]
    out = table.copy()
    day0 = _parse(out, "hsct_date", problems, file, problem_type)
    stop = pd.Timestamp(cutoff) if cutoff else None
    if stop is not None:
        problems += _after_cutoff(out, day0, cutoff, file, problem_type)

    def days(column):
        when = _parse(out, column, problems, file, problem_type)
        if stop is not None:
            when = when.where(when <= stop)
        return (when - day0).dt.days

    last = days(MARKER)
    if stop is not None:
        last = last.fillna((stop - day0).dt.days).clip(upper=(stop - day0).dt.days)
    out["followup_days"] = last
    if "death_date" in out:  # without it, who died is unknown: never "nobody died"
        death = days("death_date")
        out["death"] = death.notna().astype(int)
        out["followup_days"] = death.where(death.notna(), last)
    for event in EVENTS:
        column = f"{event}_date"
        if column in out and out[column].notna().any():  # a wholly empty one is absent
            when = days(column)
            out[f"{event}_days"] = when
            out[event] = when.notna().astype(int)
    if "cgvhd_severe" in out and "cgvhd" in out:  # severity of a chronic GVHD not counted
        out["cgvhd_severe"] = out["cgvhd_severe"].where(out["cgvhd"] == 1, "0")
    dropped = [c for c in out.columns if c.endswith("_date") and c != "hsct_date"]
    return out.drop(columns=dropped), problems

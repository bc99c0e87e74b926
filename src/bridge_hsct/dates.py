"""Calendar dates as input: convert them to the days since HSCT that the schema uses.

A file is in *date mode* when it has a ``last_contact_date`` column. Then:

* ``hsct_date`` is required and is day 0;
* ``followup_days`` = ``death_date`` − ``hsct_date`` for patients who died, else
  ``last_contact_date`` − ``hsct_date``; ``death`` = 1 when ``death_date`` is given;
* for every event (``relapse``, ``agvhd_2_4``, ``agvhd_3_4``, ``cgvhd``,
  ``neutrophil_engraftment``, ``platelet_engraftment``), ``<event>_days`` =
  ``<event>_date`` − ``hsct_date`` and the 0/1 indicator is 1 when the date is given;
* with a data cut-off date, whatever happened after it is ignored: events after the cut-off
  are not counted and follow-up stops at the cut-off.

Dates are ISO ``YYYY-MM-DD``. The converted table then goes through the usual validation, so
an event after death or last contact is still reported with its row.
"""

from __future__ import annotations

import pandas as pd

from .schema import VARIABLES

MARKER = "last_contact_date"
EVENTS = [v.event_of for v in VARIABLES if v.kind == "days" and v.event_of]
DATE_FORMAT = "%Y-%m-%d"


def is_date_mode(table: pd.DataFrame) -> bool:
    """Whether the table gives calendar dates (it has a ``last_contact_date`` column)."""
    return MARKER in table.columns


def _parse(table: pd.DataFrame, column: str, problems: list, file: str, problem_type):
    raw = table[column]
    parsed = pd.to_datetime(raw, format=DATE_FORMAT, errors="coerce")
    for index in raw.index[raw.notna() & parsed.isna()]:
        problems.append(problem_type(file, column, index + 2, raw[index],
                                     "must be a date (YYYY-MM-DD)"))
    return parsed


def dates_to_days(table: pd.DataFrame, file: str, cutoff: str | None, problem_type):
    """Convert a date-mode table to days since HSCT.

    Parameters
    ----------
    table : raw table (text cells) with ``hsct_date`` and ``last_contact_date``.
    file : file name for problem reports.
    cutoff : data cut-off date (YYYY-MM-DD) or None.
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

    def days(column):
        when = _parse(out, column, problems, file, problem_type)
        if stop is not None:
            when = when.where(when <= stop)
        return (when - day0).dt.days

    last = days(MARKER)
    if stop is not None:
        last = last.fillna((stop - day0).dt.days).clip(upper=(stop - day0).dt.days)
    death = days("death_date") if "death_date" in out else pd.Series(float("nan"), out.index)
    out["death"] = death.notna().astype(int)
    out["followup_days"] = death.where(death.notna(), last)
    for event in EVENTS:
        column = f"{event}_date"
        if column in out:
            when = days(column)
            out[f"{event}_days"] = when
            out[event] = when.notna().astype(int)
    if "cgvhd_severe" in out and "cgvhd" in out:  # severity of a chronic GVHD not counted
        out["cgvhd_severe"] = out["cgvhd_severe"].where(out["cgvhd"] == 1, "0")
    dropped = [c for c in out.columns if c.endswith("_date") and c != "hsct_date"]
    return out.drop(columns=dropped), problems

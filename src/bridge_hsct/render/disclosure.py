"""Small-cell suppression for books a centre shares outside its walls.

With a threshold ``k`` (the ``min_cell_count`` parameter; 0, the default, turns it off) every
count of patients or events from 1 to ``k − 1`` is printed as ``< k``, and so is the
percentage that would give it away. Zero is printed: it describes nobody. This is primary
suppression only: a suppressed cell can sometimes be recovered from a row total and the
other cells, and Kaplan–Meier curves of a small group still show its individual event
times; the data page says so.

The threshold is set once per chapter, by :func:`bridge_hsct.book.chapter.open_chapter`, and
applies to everything that chapter prints: tables and their CSV/Excel downloads, numbers
at risk under the figures, the Results text and the audit.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd

_threshold = 0

#: Columns of the tables (downloads and displayed) that hold counts of patients or events.
COUNT_COLUMN = re.compile(r"^(n|k|events?|count|deaths|censored|at_risk|patients|truncated)$"
                          r"|^n_|_n$|_count$|^events_|_events$|^n_at_risk|at_risk$",
                          re.IGNORECASE)

PERCENT_COLUMN = re.compile(r"percent|proportion|pct", re.IGNORECASE)


def set_min_cell_count(k: int) -> None:
    """Suppress counts below `k` from now on in this process (0 or 1: no suppression)."""
    global _threshold
    if k is None or int(k) < 0:
        raise ValueError(f"min_cell_count must be 0 or a positive integer, not {k!r}")
    _threshold = int(k)


def min_cell_count() -> int:
    """The current threshold (0: off)."""
    return _threshold


def is_small(n) -> bool:
    """Whether count `n` must not be shown (between 1 and threshold − 1)."""
    if n is None or (isinstance(n, float) and math.isnan(n)):
        return False
    return 0 < n < _threshold


def count_text(n, thousands: bool = False) -> str:
    """`n` as printed: ``< k`` when small, else the integer (``1,234`` with `thousands`)."""
    if is_small(n):
        return f"< {_threshold}"
    return f"{int(n):,}" if thousands else str(int(n))


def _is_count(value) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_))


def suppress_counts(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of a table with small values of its count columns as ``< k``.

    Count columns are named by :data:`COUNT_COLUMN` (``n``, ``Events``, ``n_at_risk``...);
    their numbers are checked cell by cell, so a displayed table whose count column also
    holds text (a header row's blank) is covered too. Percentages on the same row go with
    them. Every table the book shows or offers for download passes here.
    """
    if not _threshold:
        return frame
    out = frame.copy()
    hidden = f"< {_threshold}"
    row_has_small = pd.Series(False, index=out.index)
    for column in out.columns:
        if COUNT_COLUMN.search(str(column)):
            small = out[column].map(lambda v: _is_count(v) and is_small(v)).astype(bool)
            if small.any():
                out[column] = out[column].astype(object).where(~small, hidden)
                row_has_small |= small
    for column in out.columns:  # a percentage beside a hidden count would reveal it
        if PERCENT_COLUMN.search(str(column)) and row_has_small.any():
            out[column] = out[column].astype(object).where(~row_has_small, hidden)
    return out

"""Small-cell suppression for books a centre shares outside its walls.

With a threshold ``k`` (the ``min_cell_count`` parameter; 0, the default, turns it off) every
count of patients or events from 1 to ``k − 1`` is printed as ``< k``, and so is the
percentage that would give it away. Zero is printed: it describes nobody. This is primary
suppression only: a suppressed cell can sometimes be recovered from a row total and the
other cells, and Kaplan–Meier curves of a small group still show its individual event
times; the data page says so.

The threshold is a :class:`Disclosure`, held by the chapter
(:class:`bridge_hsct.book.chapter.Chapter`, or the pooled book's
:class:`bridge_hsct.paper.pooled.Consortium`) and passed explicitly to everything that
prints a count: a section function is handed the chapter and hands ``chapter.disclosure``
on, to the tables it computes (a :class:`bridge_hsct.render.tables.Table` carries it to its
page and its CSV/Excel downloads), the figures it draws (numbers at risk), the sentences it
writes and the recorder of the Results text. Most of them take it as a required argument,
so that a call that forgets it fails instead of printing small counts; :data:`NO_SUPPRESSION`
is the explicit choice of a caller that shows no patient's count (the synthetic cohort's
calibration page). No module state holds a disclosure: each is where it is passed.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

#: Columns of the tables (downloads and displayed) that hold counts of patients or events.
COUNT_COLUMN = re.compile(r"^(n|k|events?|count|deaths|censored|at_risk|patients|truncated)$"
                          r"|^n_|_n$|_count$|^events_|_events$|^n_at_risk|at_risk$",
                          re.IGNORECASE)

PERCENT_COLUMN = re.compile(r"percent|proportion|pct", re.IGNORECASE)

#: Columns of sums of case weights (IPTW): not counts themselves (a sum of 2.2 may stand for
#: 30 patients), but derived from the patients of their row, so hidden with its small count.
WEIGHTED_COLUMN = re.compile(r"^weighted_(n|events)$", re.IGNORECASE)


@dataclass(frozen=True)
class Disclosure:
    """Small-cell suppression at threshold `min_cell_count` (0 or 1: nothing hidden).

    Raises
    ------
    ValueError
        If `min_cell_count` is not a whole number of 0 or more.
    """

    min_cell_count: int = 0

    def __post_init__(self):
        k = self.min_cell_count
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 0:
            raise ValueError(f"min_cell_count must be 0 or a positive integer, not {k!r}")

    def is_small(self, n) -> bool:
        """Whether count `n` must not be shown (between 1 and threshold − 1)."""
        if n is None or (isinstance(n, float) and math.isnan(n)):
            return False
        return 0 < n < self.min_cell_count

    def count_text(self, n, thousands: bool = False) -> str:
        """`n` as printed: ``< k`` when small, else the integer (``1,234`` with
        `thousands`)."""
        if self.is_small(n):
            return f"< {self.min_cell_count}"
        return f"{int(n):,}" if thousands else str(int(n))

    def suppress_counts(self, frame: pd.DataFrame) -> pd.DataFrame:
        """A copy of a table with small values of its count columns as ``< k``.

        Count columns are named by :data:`COUNT_COLUMN` (``n``, ``Events``,
        ``n_at_risk``...); their numbers are checked cell by cell, so a displayed table whose
        count column also holds text (a header row's blank) is covered too. Percentages on
        the same row go with them, and so do sums of case weights (:data:`WEIGHTED_COLUMN`),
        which are not counts but are made of the row's patients. Every table the book shows
        or offers for download passes here.
        """
        if not self.min_cell_count:
            return frame
        out = frame.copy()
        hidden = f"< {self.min_cell_count}"
        row_has_small = pd.Series(False, index=out.index)
        for column in out.columns:
            if COUNT_COLUMN.search(str(column)) and not WEIGHTED_COLUMN.search(str(column)):
                small = out[column].map(lambda v: _is_count(v) and self.is_small(v))
                small = small.astype(bool)
                if small.any():
                    out[column] = out[column].astype(object).where(~small, hidden)
                    row_has_small |= small
        for column in out.columns:  # a percentage beside a hidden count would reveal it
            if ((PERCENT_COLUMN.search(str(column)) or WEIGHTED_COLUMN.search(str(column)))
                    and row_has_small.any()):
                out[column] = out[column].astype(object).where(~row_has_small, hidden)
        return out


#: No suppression: what a caller passes when it shows no patient's count.
NO_SUPPRESSION = Disclosure(0)

def _is_count(value) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_))

"""What every chapter notebook does first: load the cohort and fix the groups."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..render.disclosure import set_min_cell_count
from ..cohort.validate import check_group_order, load_cohort


@dataclass
class Chapter:
    """The validated cohort of a chapter, its groups and its output folder."""

    data: pd.DataFrame
    group_col: str
    groups: list
    output_dir: Path
    data_path: str = ""

    @property
    def reference(self):
        """The reference group (the first in display order)."""
        return self.groups[0]

    def sizes(self) -> dict:
        """Number of patients per group, in display order."""
        counts = self.data[self.group_col].value_counts()
        return {g: int(counts.get(g, 0)) for g in self.groups}


def open_chapter(data_path: str, group_col: str = "arm", group_order: list | None = None,
                 output_dir: str = "outputs", min_cell_count: int = 0) -> Chapter:
    """Load and validate the cohort and settle the display order of its groups.

    Parameters
    ----------
    data_path : cohort CSV.
    group_col : column defining the compared groups.
    group_order : groups in display order, the first being the reference; by default the
        labels found in the data, sorted.
    output_dir : where the chapter writes its CSV, PNG and SVG files (created).
    min_cell_count : print counts of 1 to ``min_cell_count − 1`` patients or events as
        ``< min_cell_count`` everywhere in the chapter (0: off); see
        :mod:`bridge_hsct.render.disclosure`.
    """
    set_min_cell_count(min_cell_count)
    data = load_cohort(data_path, group_col)
    check_group_order(data, group_col, group_order, str(data_path))
    found = list(group_order) if group_order else sorted(data[group_col].dropna().unique())
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    return Chapter(data, group_col, found, out, str(data_path))

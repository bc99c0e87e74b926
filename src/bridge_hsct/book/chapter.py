"""What every chapter notebook does first: open its :class:`Chapter`, the one context its
section functions take (cohort, groups, alpha, landmark, disclosure, output folder)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..cohort.validate import ValidatedCohorts, check_group_order, check_landmark
from ..paths import is_reference_cohort
from ..render.disclosure import Disclosure
from .parameters import Parameters


@dataclass
class Chapter:
    """The context of one chapter: its validated cohort, its groups, the settings every
    number and label follows, and its output folder.

    The defaults are those of :class:`bridge_hsct.book.parameters.Parameters`.
    """

    data: pd.DataFrame
    group_col: str
    groups: list
    output_dir: Path
    data_path: str = ""
    alpha: float = Parameters.alpha
    landmark_months: float = Parameters.landmark_months
    disclosure: Disclosure = field(
        default_factory=lambda: Disclosure(Parameters.min_cell_count))
    group_label: str = "group"

    @property
    def reference(self):
        """The reference group (the first in display order)."""
        return self.groups[0]

    @property
    def min_cell_count(self) -> int:
        """The small-cell threshold of the chapter's disclosure (0: off)."""
        return self.disclosure.min_cell_count

    def sizes(self) -> dict:
        """Number of patients per group, in display order."""
        counts = self.data[self.group_col].value_counts()
        return {g: int(counts.get(g, 0)) for g in self.groups}


def open_chapter(data_path: str, group_col: str = Parameters.group_col,
                 group_order: list | None = Parameters.group_order,
                 output_dir: str | Path = "outputs", *,
                 landmark_months: float = Parameters.landmark_months,
                 alpha: float = Parameters.alpha,
                 min_cell_count: int = Parameters.min_cell_count,
                 group_label: str | None = Parameters.group_label) -> Chapter:
    """Load and validate the cohort and settle the display order of its groups, in a
    :class:`Chapter` whose settings the section functions are handed: its ``disclosure``
    is passed to everything that prints a count (figures hold the book's style themselves,
    in :func:`bridge_hsct.render.figures.figure_style`).

    The values are those of a notebook's parameters cell (checked as
    :class:`bridge_hsct.book.parameters.Parameters` checks them; defaults from there).

    Parameters
    ----------
    data_path : cohort CSV.
    group_col : column defining the compared groups.
    group_order : groups in display order, the first being the reference; by default the
        labels found in the data, sorted.
    output_dir : where the chapter writes its CSV, PNG and SVG files (created).
    landmark_months : months at which survival and incidence are read.
    alpha : significance level; intervals are 100(1 − alpha)%.
    min_cell_count : print counts of 1 to ``min_cell_count − 1`` patients or events as
        ``< min_cell_count`` everywhere in the chapter (0: off); see
        :mod:`bridge_hsct.render.disclosure`.
    group_label : the noun for what the groups are; by default "bridging therapy" on the
        bundled cohort and "group" on any other.

    Raises
    ------
    bridge_hsct.book.parameters.ParameterError
        For a value no chapter can use (one line naming the parameter).
    bridge_hsct.cohort.validate.CohortError
        For invalid data or a group order that does not fit them.
    """
    params = Parameters(data_path=str(data_path), group_col=group_col,
                        group_order=group_order, landmark_months=landmark_months,
                        alpha=alpha, min_cell_count=min_cell_count,
                        group_label=group_label)
    data = validated_cohorts().load(data_path, group_col)
    check_group_order(data, group_col, group_order, str(data_path))
    check_landmark(data, params.landmark_months, str(data_path))
    found = list(group_order) if group_order else sorted(data[group_col].dropna().unique())
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    chapter = Chapter(data, group_col, found, out, str(data_path), params.alpha,
                      params.landmark_months, Disclosure(params.min_cell_count),
                      group_noun(params.group_label, data_path))
    return chapter


def group_noun(group_label: str | None, data_path: str | Path) -> str:
    """The noun for the compared groups: `group_label` when given, else the paper's
    "bridging therapy" on its (synthetic) cohort and a neutral "group" on any other."""
    if group_label:
        return group_label.strip()
    return "bridging therapy" if is_reference_cohort(data_path) else "group"


def validated_cohorts() -> ValidatedCohorts:
    """The cohorts the build validated, when this runs in a notebook the build executes (its
    in-process shell carries them: :class:`bridge_hsct.book.inprocess.InProcessEngine`);
    new ones elsewhere (a Jupyter kernel, a script), so the chapter validates its file."""
    from IPython import get_ipython  # the shell running this notebook, if any

    return getattr(get_ipython(), "validated_cohorts", None) or ValidatedCohorts()

"""The book's parameters: the one place their defaults, help texts and rules are written.

Everything else reads them from here: the command line generates its ``build`` options from
the fields (:func:`option_of`), the Makefile passes one variable per field (``make``
metadata), :func:`bridge_hsct.book.chapter.open_chapter` checks a chapter's values by making
a :class:`Parameters`, and a test checks that the parameters cell of every notebook lists
the chapter fields with these defaults.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field, fields

from ..cohort.dates import cutoff_problem
from ..paths import DEFAULT_DATA


class ParameterError(ValueError):
    """A parameter value that cannot work; the message is one line naming the parameter."""


def _number(text: str) -> float:
    """`text` as a finite number, or a ValueError saying why not."""
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"{text!r} is not a finite number")
    return value


def _whole_number(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a whole number") from None


def _alpha_rule(value: float) -> str | None:
    if not 0 < value < 1:
        return f"must be between 0 and 1 (exclusive), not {value:g}"
    return None


def _landmark_rule(value: float) -> str | None:
    if not math.isfinite(value):
        return f"{value!r} is not a finite number"
    if value <= 0:
        return f"must be more than 0, not {value:g}"
    return None


def _cell_count_rule(value: int) -> str | None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        return f"must be a whole number, not {value!r}"
    if value < 0:
        return f"must be 0 (off) or more, not {value}"
    return None


def _cutoff_rule(value: str | None) -> str | None:
    problem = None if value is None else cutoff_problem(value)
    return f"{value!r} {problem}" if problem else None


def _group_col_rule(value: str) -> str | None:
    return None if isinstance(value, str) and value.strip() else "must name a column"


def _one_line_rule(value: str | None) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        return "must be some text"
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        return "must be one line of printable text"
    return None


def _bundles_rule(value: list | None) -> str | None:
    if value is None:
        return None
    if not value or not all(isinstance(v, str) and v.strip() for v in value):
        return "must name one or more bundle files"
    return None


def _parameter(default, help: str, make: str, *, parse=str, rule=None, option: str = "",
               many: bool = False, metavar: str | None = None):
    """A field of :class:`Parameters` with what the command line and the Makefile need.

    Parameters
    ----------
    default : the value when none is given.
    help : what it does, for ``--help``.
    make : the Makefile variable that passes it.
    parse : text of the command line to value (raises ValueError with the reason).
    rule : value to a one-line problem, or None when the value can work.
    option : the command-line option (default ``--field-name``).
    many : the option takes one or more values (a list).
    metavar : the value's name in ``--help``.
    """
    return field(default=default, metadata={
        "help": help, "make": make, "parse": parse, "rule": rule, "option": option,
        "many": many, "metavar": metavar})


@dataclass(frozen=True)
class Parameters:
    """The values a book is built with; every default of the book, CLI and Makefile.

    Raises
    ------
    ParameterError
        When made with a value its rule refuses (one line naming the parameter).
    """

    data_path: str = _parameter(
        str(DEFAULT_DATA), "cohort file, CSV or .xlsx (default: the synthetic cohort)",
        "DATA", option="--data")
    group_col: str = _parameter(
        "arm", "column defining the compared groups", "GROUP_COL", rule=_group_col_rule)
    group_order: list | None = _parameter(
        None, "groups in display order; the first is the reference (default: sorted)",
        "GROUP_ORDER", many=True)
    landmark_months: float = _parameter(
        24.0, "months at which survival and incidence are read", "LANDMARK",
        parse=_number, rule=_landmark_rule)
    alpha: float = _parameter(
        0.05, "significance level; intervals are 100(1 - alpha)%", "ALPHA",
        parse=_number, rule=_alpha_rule)
    cutoff_date: str | None = _parameter(
        None, "data cut-off (YYYY-MM-DD) for files with calendar dates", "CUTOFF",
        rule=_cutoff_rule)  # applied by the build: chapters read the data in days
    min_cell_count: int = _parameter(
        0, 'show counts of 1 to K-1 patients or events as "< K" (default 0: off)',
        "MIN_CELL", parse=_whole_number, rule=_cell_count_rule, metavar="K")
    group_label: str | None = _parameter(
        None, 'what the groups are, as a noun for headings and sentences (default: '
        '"bridging therapy" on the bundled cohort, "group" on any other)', "GROUP_LABEL",
        rule=_one_line_rule)
    title: str | None = _parameter(
        None, "the book's title (default: the paper's on the bundled cohort, a neutral one "
        "naming the data file on any other)", "TITLE", rule=_one_line_rule)  # the build's
    bundles: list | None = _parameter(
        None, "centres' aggregate-only bundles (.zip, from `bundle`): build the pooled book "
        "from them instead of a cohort file (day-grid bundles; others need --approximate)",
        "BUNDLES", many=True,
        rule=_bundles_rule, metavar="BUNDLE")  # the build's: pooled chapters get the paths

    def __post_init__(self):
        for spec in fields(self):
            problem = spec.metadata["rule"] and spec.metadata["rule"](getattr(self, spec.name))
            if problem:
                raise ParameterError(f"parameter {spec.name} ({option_of(spec)}, "
                                     f"{spec.metadata['make']}): {problem}")

    def for_notebook(self, name: str) -> dict:
        """The papermill parameters of chapter `name`, in :data:`NOTEBOOK_PARAMETERS` order."""
        values = {"output_dir": f"outputs/{name}", **vars(self)}
        return {key: values[key] for key in NOTEBOOK_PARAMETERS}

    def for_pooled_notebook(self, name: str, bundles: list[str]) -> dict:
        """The papermill parameters of chapter `name` of the pooled book, in
        :data:`POOLED_NOTEBOOK_PARAMETERS` order, reading the bundles at `bundles` (the
        paths the build staged them at)."""
        values = {"output_dir": f"outputs/{name}", **vars(self), "bundles": list(bundles)}
        return {key: values[key] for key in POOLED_NOTEBOOK_PARAMETERS}


#: The parameters cell of every chapter notebook, in order: the fields of
#: :class:`Parameters` but ``cutoff_date`` (the build applies it to the data, which the
#: chapters then read in days), ``title`` (the site's, set by the build) and ``bundles``
#: (for the pooled book's chapters only), and the chapter's own output folder.
NOTEBOOK_PARAMETERS = ("data_path", "group_col", "group_order", "landmark_months", "alpha",
                       "output_dir", "min_cell_count", "group_label")

#: The parameters cell of every chapter of the pooled book (``notebooks/pooled/``): the
#: bundles instead of a cohort file and its group column (the bundles name their groups).
POOLED_NOTEBOOK_PARAMETERS = ("bundles", "group_order", "landmark_months", "alpha",
                              "output_dir", "min_cell_count", "group_label")


def option_of(spec) -> str:
    """The command-line option of a field of :class:`Parameters`."""
    return spec.metadata["option"] or "--" + spec.name.replace("_", "-")


def parse_option(spec, text: str):
    """The value of field `spec` written `text` on the command line.

    Raises
    ------
    ValueError
        Saying what is wrong with `text`, in the field's words.
    """
    value = spec.metadata["parse"](text)
    problem = spec.metadata["rule"] and spec.metadata["rule"](value)
    if problem:
        raise ValueError(problem)
    return value.strip() if isinstance(value, str) else value

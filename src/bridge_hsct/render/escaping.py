"""Text from a user's file, made safe for each place the book prints it.

Group labels, the group column's name and the data file's name come from whoever made the
cohort file. The book prints them in Markdown (narrative text, captions, admonitions), in
matplotlib figures and in spreadsheet downloads; in each of these some characters are
syntax. Every such string passes one of these functions on its way out, so that a label
like ``<img src=x onerror=…>``, ``*A*``, ``{ref}`x``` or ``=1+2`` is shown as the text it
is: never an element, a formula, a cross-reference or mathematics.

Tables rendered by great-tables escape HTML themselves and take the raw text.
"""

from __future__ import annotations

import re

import pandas as pd

# CommonMark lets any ASCII punctuation character be escaped with a backslash; escaping all
# of them covers HTML, emphasis, links, roles, substitutions and table pipes at once
_ASCII_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")

#: First characters that make a spreadsheet cell a formula (OWASP, "CSV injection").
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def one_line(value) -> str:
    """`value` as text on one line: a line break would end a paragraph or a directive."""
    return " ".join(str(value).split())


def markdown_text(value) -> str:
    """`value` as literal text inside MyST Markdown (``<b>`` → ``\\<b\\>``)."""
    return _ASCII_PUNCTUATION.sub(r"\\\1", one_line(value))


def markdown_code(value) -> str:
    """`value` as an inline code span, fenced by more backticks than it contains (the
    CommonMark rule), so that nothing inside it is syntax."""
    text = one_line(value)
    fence = "`" * (1 + max((len(run) for run in re.findall("`+", text)), default=0))
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def plot_text(value) -> str:
    """`value` as literal text in a matplotlib label: ``$`` would start mathematics."""
    return one_line(value).replace("$", r"\$")


def spreadsheet_text(value):
    """A cell of a CSV download: text that a spreadsheet would run as a formula gets a
    leading ``'`` (the OWASP recommendation); numbers and other text are unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def spreadsheet_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of `frame` whose text cells and column names pass :func:`spreadsheet_text`."""
    out = frame.copy()
    for column in out.columns:
        if out[column].dtype == object:
            out[column] = out[column].map(spreadsheet_text)
    out.columns = [spreadsheet_text(str(c)) for c in out.columns]
    return out

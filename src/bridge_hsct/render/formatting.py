"""How numbers are printed in the book's tables and text."""

from __future__ import annotations

import math
import re


def format_number(x: float, digits: int = 4) -> str:
    """A median or range end with up to `digits` significant digits (5.335, 17.52, 27.5)."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return f"{x:.{digits}g}"


def format_p(p: float) -> str:
    """A P value with three decimals, ``< 0.001`` below that, ``–`` when not computable."""
    if p is None or math.isnan(p):
        return "–"
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def p_phrase(p: float) -> str:
    """A P value as a sentence states it: ``P = 0.023``, ``P < 0.001`` (not ``P = < 0.001``),
    ``P not computable``."""
    shown = format_p(p)
    if shown == "–":
        return "P not computable"
    return f"P {shown}" if shown.startswith("<") else f"P = {shown}"


def format_percent(x: float, decimals: int = 2) -> str:
    """A proportion in [0, 1] as a percentage (0.7654 → ``76.54%``)."""
    if x is None or math.isnan(x):
        return "not estimable"
    return f"{100 * x:.{decimals}f}%"


def confidence_percent(alpha: float) -> str:
    """The confidence level of intervals at significance `alpha`: ``95%`` for 0.05, ``90%``
    for 0.1, ``97.5%`` for 0.025.

    Written as lifelines writes it in its summary columns (``exp(coef) lower 95%``), so the
    same text names a computed interval and finds it in a fitted model's summary.
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    return f"{100 * (1 - alpha):g}%"


def ci_label(alpha: float) -> str:
    """``95% CI`` for ``alpha = 0.05``: how a label, header or sentence names an interval."""
    return f"{confidence_percent(alpha)} CI"


def result_alpha(frame) -> float:
    """The ``alpha`` a result frame was computed at (its ``alpha`` column, one value).

    Labels printed from a result take their confidence level from here, not from a setting
    the printing code would have to be handed separately.

    Raises
    ------
    ValueError
        If the frame has no ``alpha`` value, or more than one.
    """
    levels = {float(a) for a in frame["alpha"] if a == a}
    if len(levels) != 1:
        raise ValueError(f"a result frame needs exactly one alpha, found {sorted(levels)}")
    return levels.pop()


#: Words that keep their capital inside a sentence although they look like ordinary words.
KEEP_CASE = {"Ikaros"}


def in_sentence(label: str) -> str:
    """A label as it reads inside a sentence: ``Graft source`` → ``graft source``,
    ``Overall survival`` → ``overall survival``; acronyms and gene names keep their case
    (``HCT-CI``, ``GVHD-free ...``, ``Ph-positive``, ``ABO compatibility``,
    ``Ikaros isoform 6``)."""
    prefix = re.match(r"[^A-Za-z]*", label).group(0)  # "≥ " of "≥ Third relapse"
    rest = label[len(prefix):]
    stem = re.match(r"[A-Za-z]*", rest).group(0)  # "Relapse" of "Relapse, day"
    if len(stem) > 2 and stem[1:].islower() and stem.isalpha() and stem not in KEEP_CASE:
        return prefix + rest[:1].lower() + rest[1:]
    return label


#: A space that never breaks a line: inside ``(n = 36)`` and between a number and its unit.
NBSP = "\u00a0"


def group_header(label: str, n_text: str) -> str:
    """A column header naming a group and its size, ``CAR-T (n = 27)``, whose ``(n = 27)``
    never breaks over two lines (the spaces inside it are non-breaking); `n_text` is the
    count as the disclosure prints it."""
    return f"{label} (n{NBSP}={NBSP}{n_text})"


def range_decimals(values) -> int:
    """The decimals a row of medians and ranges is printed with, the same for every cell:
    none when every value is whole (days, years), one when the data are whole but a median
    falls between two of them (``27.5``), otherwise two, as the paper prints."""
    finite = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    if all(v.is_integer() for v in finite):
        return 0
    if all((2 * v).is_integer() for v in finite):
        return 1
    return 2


def format_median_range(median: float, low: float, high: float, decimals: int = 2) -> str:
    """``16.82 (7.29–62.21)``: a median and its range at the same number of `decimals`."""
    def one(x):
        return "–" if x is None or math.isnan(x) else f"{x:.{decimals}f}"

    if median is None or math.isnan(median):
        return "–"
    return f"{one(median)} ({one(low)}–{one(high)})"

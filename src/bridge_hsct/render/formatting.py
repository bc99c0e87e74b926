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

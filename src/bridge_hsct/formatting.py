"""How numbers are printed in the book's tables and text."""

from __future__ import annotations

import math


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

"""Descriptive statistics shared by the by-group tables (Tables 1 and 3)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .disclosure import Disclosure


def count_known(values: pd.Series, hit: pd.Series) -> tuple[int, int]:
    """(number of patients with `hit`, number with a known value)."""
    known = values.notna()
    return int((hit & known).sum()), int(known.sum())


def n_percent(k: int, n: int, disclosure: Disclosure) -> str:
    """``k (p%)`` with one decimal, ``–`` when nobody has a known value, ``< k₀`` when `k`
    is a small cell of `disclosure`."""
    if not n:
        return "–"
    if disclosure.is_small(k):
        return disclosure.count_text(k)
    return f"{k} ({100 * k / n:.1f}%)"


def median_range(values: pd.Series) -> tuple[float, float, float]:
    """(median, minimum, maximum) of the known values; NaNs when there are none."""
    v = values.dropna()
    if v.empty:
        return (np.nan, np.nan, np.nan)
    return float(v.median()), float(v.min()), float(v.max())

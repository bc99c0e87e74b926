"""Descriptive statistics shared by the by-group tables (Tables 1 and 3)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def count_known(values: pd.Series, hit: pd.Series) -> tuple[int, int]:
    """(number of patients with `hit`, number with a known value)."""
    known = values.notna()
    return int((hit & known).sum()), int(known.sum())


def n_percent(k: int, n: int) -> str:
    """``k (p%)`` with one decimal, or ``–`` when nobody has a known value."""
    return f"{k} ({100 * k / n:.1f}%)" if n else "–"


def median_range(values: pd.Series) -> tuple[float, float, float]:
    """(median, minimum, maximum) of the known values; NaNs when there are none."""
    v = values.dropna()
    if v.empty:
        return (np.nan, np.nan, np.nan)
    return float(v.median()), float(v.min()), float(v.max())

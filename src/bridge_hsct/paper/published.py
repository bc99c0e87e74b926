"""The registry of every number published in Cao et al. 2025, as a validated table.

``data/published_values.csv`` holds one row per printed number (Abstract, Methods, Results,
Tables 1-3, figure legends, Discussion) with where it is printed, what it measures, the
tolerance within which a recomputed value counts as reproduced and, when the paper prints
several readings of the same quantity, which reading the project follows (``conflict`` /
``followed``).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pandera.pandas as pa

from ..paths import PUBLISHED_VALUES

DEFAULT_PATH = PUBLISHED_VALUES

COLUMNS = ["id", "source", "locator", "section", "quantity", "group", "statistic", "value",
           "unit", "method", "tolerance", "conflict", "followed", "note"]
SOURCES = ["abstract", "methods", "results", "table1", "table2", "table3", "fig1_legend",
           "fig2_legend", "fig3_legend", "fig4_legend", "discussion"]
SECTIONS = ["cohort", "baseline", "os_pfs", "grfs", "nrm", "gvhd", "multivariate", "engraftment",
            "complications", "infection", "immunotherapy", "followup"]
STATISTICS = ["n", "count", "percent", "median", "min", "max", "rate_2y", "incidence_100d",
              "incidence_2y", "ci_lower", "ci_upper", "p_value", "hr", "hr_ci_lower",
              "hr_ci_upper", "ratio", "date"]
UNITS = ["patients", "%", "months", "days", "years", "x10^6/kg", "x10^8/kg", ""]
METHODS = ["fisher", "linear_by_linear", "chi2", "t_test", "mann_whitney", "log_rank",
           "kaplan_meier", "one_minus_km", "cox_multivariate", ""]


def _text(allowed: list[str] | None = None, checks: list | None = None, **kwargs) -> pa.Column:
    checks = list(checks or [])
    if allowed:
        checks.append(pa.Check.isin(allowed, error=f"one of {allowed}"))
    return pa.Column(str, checks=checks, nullable=False, **kwargs)


def _followed_needs_conflict(df: pd.DataFrame) -> pd.Series:
    return (df["followed"] != "") == (df["conflict"] != "")


def _one_followed_per_conflict(df: pd.DataFrame) -> pd.Series:
    yes = (df["followed"] == "yes").groupby(df["conflict"]).transform("sum")
    return (df["conflict"] == "") | (yes == 1)


REGISTRY_SCHEMA = pa.DataFrameSchema(
    {
        "id": _text(unique=True, checks=[pa.Check.str_matches(
            r"^[a-z0-9_]+(\.[a-z0-9_]+)+$", error="lowercase dot-separated id")]),
        "source": _text(SOURCES),
        "locator": _text(checks=[pa.Check.str_length(min_value=1, error="non-empty")]),
        "section": _text(SECTIONS),
        "quantity": _text(checks=[pa.Check.str_length(min_value=1, error="non-empty")]),
        "group": _text(checks=[pa.Check.str_length(min_value=1, error="non-empty")]),
        "statistic": _text(STATISTICS),
        "value": pa.Column(float, nullable=False, coerce=True),
        "unit": _text(UNITS),
        "method": _text(METHODS),
        "tolerance": pa.Column(float, pa.Check.ge(0, error="tolerance >= 0"), nullable=False,
                               coerce=True),
        "conflict": _text(),
        "followed": _text(["yes", "no", ""]),
        "note": _text(),
    },
    checks=[
        pa.Check(_followed_needs_conflict, name="followed_iff_conflict",
                 error="`followed` is yes/no exactly on rows with a `conflict` key"),
        pa.Check(_one_followed_per_conflict, name="one_followed_per_conflict",
                 error="each conflict key has exactly one row with followed = yes"),
    ],
    strict=True, ordered=True, name="published_values",
)


def load_published(path: str | Path | None = None) -> pd.DataFrame:
    """Read and validate the registry of published values.

    Parameters
    ----------
    path : str or Path, optional
        CSV file to read; defaults to the repository's ``data/published_values.csv``.

    Returns
    -------
    pandas.DataFrame
        One row per published number, ``value`` and ``tolerance`` as floats, empty text
        fields as ``""``.

    Raises
    ------
    ValueError
        If the file breaks a rule; the message names each offending row id and the rule.
    """
    raw = pd.read_csv(path or DEFAULT_PATH, dtype=str, keep_default_na=False)
    try:
        return REGISTRY_SCHEMA.validate(raw, lazy=True)
    except pa.errors.SchemaErrors as exc:
        problems = {}
        for case in exc.failure_cases.itertuples(index=False):
            idx = case.index
            known = idx is not None and not pd.isna(idx) and idx in raw.index
            row = f"CSV line {int(idx) + 2} ({raw.at[idx, 'id']!r})" if known else "file"
            if case.schema_context == "DataFrameSchema":  # row-wise rule across columns
                problems.setdefault((row, case.check), f"{row}: {case.check}")
            else:
                problems.setdefault((row, case.column), f"{row}: column {case.column!r}: "
                                    f"{case.check} (got {case.failure_case!r})")
        raise ValueError("invalid published-values registry:\n  "
                         + "\n  ".join(problems.values())) from None


def published_value(registry: pd.DataFrame, id: str) -> float:
    """Return the printed value of one registry entry.

    Parameters
    ----------
    registry : pandas.DataFrame
        The table from :func:`load_published`.
    id : str
        The entry's ``id``, e.g. ``"results.os.rate_2y.car_t"``.

    Returns
    -------
    float
        The number as printed in the paper (percentages in percent).

    Raises
    ------
    KeyError
        If no entry has that id.
    """
    hit = registry.loc[registry["id"] == id, "value"]
    if hit.empty:
        raise KeyError(f"no published value with id {id!r}")
    return float(hit.iloc[0])

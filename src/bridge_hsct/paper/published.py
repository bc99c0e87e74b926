"""The registry of every number published in Cao et al. 2025, as a validated table.

``data/published_values.csv`` holds one row per printed number (Abstract, Methods, Results,
Tables 1-3, figure legends, Discussion) with where it is printed, what it measures, the
tolerance within which a recomputed value counts as reproduced and, when the paper prints
several readings of the same quantity, which reading the project follows (``conflict`` /
``followed``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
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
        fields as ``""``, and ``printed``: the value as the file writes it ("17.60"), whose
        last digit gives the printed precision (:func:`printed_precision`).

    Raises
    ------
    ValueError
        If the file breaks a rule; the message names each offending row id and the rule.
    """
    raw = pd.read_csv(path or DEFAULT_PATH, dtype=str, keep_default_na=False)
    try:
        registry = REGISTRY_SCHEMA.validate(raw.copy(), lazy=True)
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
    registry["printed"] = raw["value"].str.strip()
    return registry


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


def printed_precision(printed: str | float) -> float:
    """Half a unit of the last printed digit: "17.60" → 0.005, "0.82" → 0.005, "13" → 0.5.

    Give the text as printed: a float loses trailing zeros (17.60 reads as 17.6), so a float
    argument gives the precision of its shortest representation.
    """
    text = printed if isinstance(printed, str) else f"{printed:.6g}"
    text = text.strip()
    if "e" in text.lower():
        raise ValueError(f"printed value in exponent form: {text!r}")
    decimals = len(text.split(".")[1]) if "." in text else 0
    return 0.5 * 10.0 ** -decimals


#: P values whose recomputation rests on reconstructed event times (log-rank, Cox models)
#: are judged within this share of their value, never tighter than the printed precision;
#: every other P value (exact tests on counts, t-tests on values) to its printed precision.
MODEL_P_METHODS = ("log_rank", "cox_multivariate")
MODEL_P_RELATIVE = 0.03


def p_value_tolerance(printed: str, method: str) -> float:
    """The registry's tolerance of a P value printed as ``printed`` and computed by
    ``method``: half a unit of its last digit ("0.027" → 0.0005), or for a model-based P
    (:data:`MODEL_P_METHODS`) :data:`MODEL_P_RELATIVE` of its value if that is larger
    ("0.862" → 0.02586)."""
    precision = printed_precision(printed)
    if method in MODEL_P_METHODS:
        return max(precision, round(MODEL_P_RELATIVE * float(printed), 6))
    return precision


# --- the registry's conditions ---------------------------------------------------------------
#: operators a registry condition may use, with their spellings
OPERATORS = {"=": "=", "==": "=", "!=": "!=", "≠": "!=", ">": ">", ">=": ">=", "≥": ">=",
             "<": "<", "<=": "<=", "≤": "<="}
_CONDITION = re.compile(r"^\s*(?P<var>[A-Za-z_][A-Za-z0-9_]*)\s*"
                        r"(?P<op>==|!=|>=|<=|≠|≥|≤|=|>|<)\s*(?P<level>\S.*?)\s*$")
_NAME = re.compile(r"^\s*(?P<var>[A-Za-z_][A-Za-z0-9_]*)\s*$")
_NUMBER = r"[-+]?\d+(?:\.\d+)?"
_RANGE = re.compile(rf"^(?P<low>{_NUMBER})\s*(?:-|–|—|to)\s*(?P<high>{_NUMBER})$")


@dataclass(frozen=True)
class Condition:
    """A registry condition such as ``crs_grade>=1``, ``crs_grade=1-2`` or ``sex=M``.

    ``op`` is one of ``=``, ``!=``, ``>``, ``>=``, ``<``, ``<=`` or ``range`` (inclusive
    ``low-high``, written ``var=low-high``); a bare variable name means ``var=1``.
    """

    var: str
    op: str
    level: str | tuple[float, float]

    def select(self, data: pd.DataFrame) -> pd.Series:
        """True / False for each patient, NaN where the variable is unknown.

        Raises
        ------
        KeyError
            If the variable is not a column of ``data``.
        ValueError
            If an order or range is asked of a variable whose values are not numbers.
        """
        values = data[self.var]
        known = values.notna()
        if self.op == "range":
            low, high = self.level
            numbers = _numbers(values, self)
            hit = (numbers >= low) & (numbers <= high)
        elif self.op in {"=", "!="}:
            hit = values == _same_type(values, self.level)
            hit = ~hit if self.op == "!=" else hit
        else:
            level, numbers = float(self.level), _numbers(values, self)
            hit = {">": numbers > level, ">=": numbers >= level, "<": numbers < level,
                   "<=": numbers <= level}[self.op]
        return hit.astype(object).where(known, np.nan)


def _numbers(values: pd.Series, condition: Condition) -> pd.Series:
    try:
        return pd.to_numeric(values)
    except (TypeError, ValueError):
        raise ValueError(f"'{condition.var}' is not numeric, so '{condition.op}' cannot "
                         "apply") from None


def _same_type(values: pd.Series, level: str):
    """``level`` as a number when the column holds numbers (``=1`` on a 0/1 column)."""
    if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        try:
            return float(level)
        except ValueError:
            return level
    return level


def parse_condition(text: str) -> Condition:
    """Parse a registry condition (a quantity or group such as ``age_years>40``).

    Accepts ``var OP level`` with OP in :data:`OPERATORS` (``≥`` and ``≤`` included),
    ``var=low-high`` for an inclusive numeric range, and a bare ``var`` (meaning ``var=1``).

    Raises
    ------
    ValueError
        If the text is none of these (the message quotes it).
    """
    match = _CONDITION.match(text)
    if match is None:
        name = _NAME.match(text)
        if name is None:
            raise ValueError(f"not a condition: {text!r}")
        return Condition(name["var"], "=", "1")
    op, level = OPERATORS[match["op"]], match["level"]
    if level[0] in "<>=!≤≥≠":
        raise ValueError(f"unknown operator in {text!r}")
    span = _RANGE.match(level)
    if span is not None and op == "=":
        low, high = float(span["low"]), float(span["high"])
        if low > high:
            raise ValueError(f"empty range in {text!r}")
        return Condition(match["var"], "range", (low, high))
    if op not in {"=", "!="}:
        try:
            float(level)
        except ValueError:
            raise ValueError(f"'{match['op']}' needs a number in {text!r}") from None
    return Condition(match["var"], op, level)


def is_condition(text: str) -> bool:
    """Whether ``text`` is a condition with an operator (not a bare variable name)."""
    return _CONDITION.match(text) is not None

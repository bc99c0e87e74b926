"""Where the paper disagrees with itself, found from the registry of published values."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..stats.group_tests import fisher_2x2

ARMS = ("Blinatumomab", "CAR-T")  # the paper's groups, as printed in its tables


def conflicting_readings(registry: pd.DataFrame, audit: pd.DataFrame | None = None
                         ) -> pd.DataFrame:
    """Every quantity the paper prints with two or more values, one row per reading.

    With an `audit` (see :func:`bridge_hsct.paper.audit.audit_table`), each reading gets the value
    recomputed from the data.
    """
    # the registry spells "no conflict" as an empty cell: "" once loaded, NaN elsewhere
    rows = registry[registry["conflict"].fillna("").ne("")].copy()
    if audit is not None:
        rows = rows.merge(audit[["id", "recomputed"]], on="id", how="left")
    rows["followed"] = rows["followed"].map({"yes": "followed", "no": "not followed"})
    columns = ["conflict", "source", "locator", "value", "followed", "note"]
    if audit is not None:
        columns.insert(4, "recomputed")
    return rows.sort_values(["conflict", "followed"])[columns].reset_index(drop=True)


def misprinted_percentages(registry: pd.DataFrame) -> pd.DataFrame:
    """Printed percentages that do not match their own counts (notes starting 'misprint')."""
    notes = registry["note"].fillna("")
    rows = registry[notes.str.lower().str.startswith("misprint")]
    return rows[["id", "source", "locator", "value", "note"]].reset_index(drop=True)


def _arm_counts(registry: pd.DataFrame, source: str, quantity: str):
    """(count, n) per arm for a quantity of a table, or None when not printed."""
    counts = []
    for arm in ARMS:
        hit = registry[(registry["source"] == source) & (registry["quantity"] == quantity)
                       & (registry["group"] == arm) & (registry["statistic"] == "count")]
        n = registry[(registry["source"] == source) & (registry["quantity"] == "n_patients")
                     & (registry["group"] == arm) & (registry["statistic"] == "n")]
        if len(hit) != 1 or len(n) != 1:
            return None
        counts.append((int(hit["value"].iloc[0]), int(n["value"].iloc[0])))
    return counts


def fisher_from_published_counts(registry: pd.DataFrame) -> pd.DataFrame:
    """Recompute each two-group P value the paper attributes to counts from those counts.

    For every P value of a table row with a yes/no quantity, the 2 × 2 table is rebuilt from
    the printed counts of both arms and Fisher's exact test (two-sided) is applied. Rows
    whose printed P value this does not give (to its three decimals) cannot be reproduced
    from the paper's own numbers by the standard test.
    """
    p_rows = registry[(registry["statistic"] == "p_value")
                      & registry["source"].isin(["table1", "table3"])]
    rows = []
    for r in p_rows.itertuples(index=False):
        levels = sorted({q for q in registry.loc[registry["source"] == r.source, "quantity"]
                         if q.startswith(f"{r.quantity}=")})
        candidates = [r.quantity] + (levels[:1] if len(levels) == 2 else [])
        counts = next((c for q in candidates
                       if (c := _arm_counts(registry, r.source, q)) is not None), None)
        if counts is None:
            continue
        table = [[k, n - k] for k, n in counts]
        p = fisher_2x2(table)
        rows.append({"id": r.id, "locator": r.locator,
                     "counts": " vs ".join(f"{k}/{n}" for k, n in counts),
                     "published P": r.value, "Fisher P from the counts": round(p, 3),
                     "reproduced": bool(np.isclose(round(p, 3), r.value, atol=1e-9))})
    return pd.DataFrame(rows)

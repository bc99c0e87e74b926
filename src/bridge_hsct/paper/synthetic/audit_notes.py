"""What the reproduction audit says, beside a published number, of how the synthetic cohort
carries it.

The registry (``data/published_values.csv``) holds what the paper prints and what can be
said of it from the paper alone. How the reconstruction treats a number is about the
synthetic cohort, so it is written here, computed from the cohort where it quotes a count,
and shown only in the reference cohort's audit (a centre's comparison never sees it).
"""

from __future__ import annotations

import pandas as pd

#: The registry rows of cytokine release syndrome whose per-arm counts the paper keeps in a
#: supplement that is not available.
CRS_ROWS = ("results.crs_grade_ge1.count.whole", "results.crs_grade_1_2.p_value",
            "results.crs_grade_3.p_value")
#: The row beside which the Results state, in words only, that median OS was not reached.
OS_MEDIAN_ROW = "results.pfs.median.whole"
CRS_LEVELS = {"1-2": (1, 2), "3": (3,), "4": (4,)}


def crs_split(data: pd.DataFrame, group_col: str) -> str:
    """``grade 1-2: 6 Blinatumomab, 20 CAR-T; grade 3: 3 CAR-T``: the cohort's patients
    with CRS by grade band and group (bands and groups without any left out)."""
    bands = []
    for band, grades in CRS_LEVELS.items():
        counts = data.loc[data["crs_grade"].isin(grades), group_col].value_counts()
        groups = [f"{counts[g]} {g}" for g in sorted(counts.index) if counts[g]]
        if groups:
            bands.append(f"grade {band}: {', '.join(groups)}")
    return "; ".join(bands)


def reconstruction_notes(data: pd.DataFrame, group_col: str) -> dict[str, str]:
    """Registry id → how the synthetic cohort `data` carries that published number."""
    notes = {}
    if "crs_grade" in data:
        crs = (f"the synthetic cohort's per-arm CRS split ({crs_split(data, group_col)}) is "
               "the generator's invention, chosen so that Fisher's test gives the published "
               "P; it is not data")
        notes.update(dict.fromkeys(CRS_ROWS, crs))
    notes[OS_MEDIAN_ROW] = (
        "the synthetic cohort keeps it as the generator's rule os_median_not_reached "
        "(synthetic/tails.py; whole cohort and, as a prior, each arm), with the other "
        "late-curve rules listed in data/README.md")
    return notes

"""What the published aggregates determine: the same generator run from many seeds.

Every reconstruction meets the published counts exactly; what else is the same in all of
them is fixed by the paper, and what varies is an artefact of one reconstruction. For each
published number (the audit's recomputation, :func:`bridge_hsct.paper.audit.audit_table`)
and for a few results the book prints that the paper does not (medians past two years),
the summary keeps the range across the ensemble, the value in the book's reference cohort,
and whether the range lies within the printed rounding ("determined").

``python -m bridge_hsct.paper.synthetic.ensemble`` (``make ensemble``) writes
``data/synthetic_ensemble.csv`` and prints the time it took.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import pandas as pd

from ...cohort.endpoints import derive, known_status
from ...paths import DATA, DEFAULT_DATA, ROOT
from ...stats.survival import km_median, to_months
from ..audit import Cohort, audit_table
from ..published import load_published, printed_precision
from .pipeline import SEED, generate

ENSEMBLE_PATH = DATA / "synthetic_ensemble.csv"
#: Twenty seeds, none of them the reference cohort's (:data:`.pipeline.SEED`).
SEEDS = tuple(s for s in range(101, 122) if s != SEED)[:20]
#: Results the book prints beyond the paper's numbers: medians past two years (months).
BOOK_MEDIANS = tuple((endpoint, group) for endpoint in ("os", "pfs", "grfs")
                     for group in ("whole", "CAR-T", "Blinatumomab"))
#: Precision of the book's own medians (it prints months to two decimals).
BOOK_PRECISION = 0.005


def reconstruction_numbers(cohort: pd.DataFrame, registry: pd.DataFrame) -> pd.Series:
    """Every registry number recomputed on `cohort` (by registry id) and the medians of
    :data:`BOOK_MEDIANS` (ids ``book.<endpoint>.median.<group>``; NaN when not reached)."""
    audit = audit_table(Cohort(cohort, "arm"), registry).set_index("id")["recomputed"]
    medians = {}
    for endpoint, group in BOOK_MEDIANS:
        members = cohort if group == "whole" else cohort[cohort["arm"] == group]
        known = members[known_status(members, endpoint)]
        derived = derive(known, endpoint)
        median = km_median(derived["time"], derived["cause"] == 1).value
        months = float(to_months(median))
        medians[f"book.{endpoint}.median.{group}"] = months if np.isfinite(months) else np.nan
    return pd.concat([audit, pd.Series(medians)])


def build_ensemble(seeds=SEEDS, log=print) -> pd.DataFrame:
    """Generate one reconstruction per seed and summarise its numbers (see the module
    docstring); raise if one misses a published count."""
    registry = load_published()
    runs = {}
    for seed in seeds:
        t0 = time.perf_counter()
        cohort, report = generate(seed, cohort_path=None, report_path=None)
        counts = report[report["kind"] == "count"]
        if not counts["met"].all():
            raise RuntimeError(f"seed {seed}: {int((~counts['met']).sum())} published "
                               "counts missed")
        runs[seed] = reconstruction_numbers(cohort, registry)
        log(f"seed {seed}: {int(report['met'].sum())} of {len(report)} targets met "
            f"({time.perf_counter() - t0:.0f} s)")
    reference = reconstruction_numbers(pd.read_csv(DEFAULT_DATA), registry)
    return summarise(pd.DataFrame(runs), reference, registry)


def summarise(runs: pd.DataFrame, reference: pd.Series, registry: pd.DataFrame
              ) -> pd.DataFrame:
    """One row per number: its range across `runs` (one column per seed), the reference
    cohort's value and whether the range lies within rounding. Published numbers that no
    reconstruction can compute are left out; a book median reached in no run is kept, as
    determined ("not reached").

    A number is *determined* when every reconstruction gives it (none not computable or not
    reached) and its range is at most one unit of the printed precision (twice the half unit
    of :func:`~bridge_hsct.paper.published.printed_precision`), or when it is a book median
    that no reconstruction reaches: the published aggregates then fix it as far as the
    paper prints it.
    """
    by_id = registry.set_index("id")
    rows = []
    for number, values in runs.iterrows():
        book = number not in by_id.index
        if values.isna().all() and not book:  # computable from no reconstruction
            continue
        if not book:
            row = by_id.loc[number]
            published, printed = float(row["value"]), row["printed"]
            precision = printed_precision(printed)
            what = f"{row['quantity']} / {row['group']} / {row['statistic']}"
        else:
            published, precision, what = np.nan, BOOK_PRECISION, number.removeprefix("book.")
        given = values.dropna()
        spread = float(given.max() - given.min()) if len(given) else np.nan
        never_reached = book and given.empty
        rows.append({
            "id": number, "number": what, "published": published,
            "reference": reference.get(number, np.nan),
            "minimum": given.min() if len(given) else np.nan,
            "maximum": given.max() if len(given) else np.nan,
            "reconstructions": len(values), "not_given": int(values.isna().sum()),
            "determined": bool(never_reached or len(given) == len(values)
                               and spread <= 2 * precision + 1e-9),
        })
    return pd.DataFrame(rows)


def write_ensemble(summary: pd.DataFrame, path=ENSEMBLE_PATH) -> None:
    """Write with fixed formatting, so that the same ensemble gives the same file."""
    summary.to_csv(path, index=False, float_format="%.6g", lineterminator="\n")


def load_ensemble(path=ENSEMBLE_PATH) -> pd.DataFrame:
    """The ensemble summary written by :func:`write_ensemble`."""
    return pd.read_csv(path)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=len(SEEDS),
                        help=f"how many of the {len(SEEDS)} seeds to run")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    summary = build_ensemble(SEEDS[:args.seeds])
    write_ensemble(summary)
    seconds = time.perf_counter() - t0
    print(f"wrote {ENSEMBLE_PATH.relative_to(ROOT)}: {args.seeds} reconstructions in "
          f"{seconds:.0f} s ({seconds / args.seeds:.0f} s each); "
          f"{int(summary['determined'].sum())} of {len(summary)} numbers determined")
    return 0


if __name__ == "__main__":
    sys.exit(main())

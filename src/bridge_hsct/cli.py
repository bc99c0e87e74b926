"""Command line: ``python -m bridge_hsct {build,validate,template,dictionary}``."""

from __future__ import annotations

import argparse
import sys

from .build import DEFAULT_DATA, BuildError, Parameters, build
from .dictionary import dictionary_markdown, write_template
from .validate import CohortError, load_cohort


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bridge_hsct", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    b = commands.add_parser("build", help="build the book's website from a cohort file")
    b.add_argument("--data", default=str(DEFAULT_DATA), help="cohort CSV (default: synthetic)")
    b.add_argument("--out", default="_build/html", help="folder of the website")
    b.add_argument("--group-col", default="arm", help="column defining the compared groups")
    b.add_argument("--group-order", nargs="+", default=None,
                   help="groups in display order; the first is the reference")
    b.add_argument("--landmark-months", type=float, default=24.0)
    b.add_argument("--alpha", type=float, default=0.05)
    b.add_argument("--cutoff-date", default=None,
                   help="data cut-off (YYYY-MM-DD) for files with calendar dates")
    b.add_argument("--min-cell-count", type=int, default=0, metavar="K",
                   help='show counts of 1 to K-1 patients or events as "< K" (default 0: off)')

    v = commands.add_parser("validate", help="check a cohort file and list every problem")
    v.add_argument("--data", default=str(DEFAULT_DATA))
    v.add_argument("--group-col", default="arm")
    v.add_argument("--cutoff-date", default=None)

    t = commands.add_parser("template", help="write a blank cohort CSV with every column")
    t.add_argument("--out", default="cohort_template.csv")

    commands.add_parser("dictionary", help="print the data dictionary (Markdown)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "build":
            build(args.out, Parameters(args.data, args.group_col, args.group_order,
                                       args.landmark_months, args.alpha, args.cutoff_date,
                                       args.min_cell_count))
        elif args.command == "validate":
            data = load_cohort(args.data, args.group_col, args.cutoff_date)
            groups = data[args.group_col].value_counts().sort_index()
            print(f"{args.data}: valid, {len(data)} patients; "
                  + ", ".join(f"{g}: {n}" for g, n in groups.items()))
        elif args.command == "template":
            print(f"template written to {write_template(args.out)}")
        elif args.command == "dictionary":
            print(dictionary_markdown())
    except CohortError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except BuildError as exc:
        print(f"error: {exc}\nThe previous site (if any) was left untouched.", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Command line: ``python -m bridge_hsct {build,validate,template,dictionary,bundle,pool}``
(``bundle`` and ``pool`` are :mod:`bridge_hsct.paper.bundle`'s).

Every error a user can cause (a bad argument, an unreadable or invalid cohort file, an
output folder that cannot be written) ends in ``error: ...`` on stderr, naming the file,
column, row or parameter at fault, and a non-zero exit: 2 for bad arguments or data, 1 for
a failed build or file system error. Warnings are shown as one ``warning: ...`` line each.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import warnings
from dataclasses import fields
from pathlib import Path

from ..cohort.dictionary import dictionary_markdown, write_template
from ..cohort.validate import (
    CohortError,
    ValidatedCohorts,
    check_group_order,
    check_landmark,
)
from ..paper.bundle import BundleError
from ..paper.bundle import main as bundle_main
from .build import BuildError, BuildLocked, build
from .parameters import ParameterError, Parameters, option_of, parse_option
from .pooled_build import build_pooled

#: Set to 1 to see the traceback of an unexpected error (for reporting a bug).
DEBUG_VARIABLE = "BRIDGE_HSCT_DEBUG"


class UsageError(Exception):
    """A parameter that cannot work, found before any work is done."""


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one ``error: ...`` line, without the usage block
    (``--help`` shows it)."""

    def error(self, message: str):
        self.exit(2, f"error: {self.prog}: {message} (see --help)\n")


def _argument_type(spec):
    """The argparse type of a field of :class:`Parameters`: its parser and its rule."""
    def parse(text: str):
        try:
            return parse_option(spec, text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    parse.__name__ = spec.name  # argparse names the type in some messages
    return parse


def _add_parameters(parser: argparse.ArgumentParser, names: list[str] | None = None) -> None:
    """One option per field of :class:`Parameters` (or of those named), with its default
    and help text from the field."""
    for spec in fields(Parameters):
        if names is not None and spec.name not in names:
            continue
        default = spec.default
        shown = f" (default: {default})" if default not in (None, "") and \
            "default" not in spec.metadata["help"] else ""
        parser.add_argument(option_of(spec), dest=spec.name, type=_argument_type(spec),
                            default=default, nargs="+" if spec.metadata["many"] else None,
                            metavar=spec.metadata["metavar"],
                            help=(spec.metadata["help"] + shown).replace("%", "%%"))


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m bridge_hsct", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    b = commands.add_parser("build", help="build the book's website from a cohort file, or "
                                          "the pooled book from centres' bundles (--bundles)")
    b.add_argument("--out", default="_build/html", help="folder of the website")
    b.add_argument("--pdf", action="store_true",
                   help="also print the whole book as one PDF (OUT/supplement.pdf), with "
                        "Debian's Chromium")
    b.add_argument("--approximate", action="store_true",
                   help="with --bundles: also pool bundles on a week or month grid, every "
                        "page of the pooled book flagged APPROXIMATE")
    _add_parameters(b)

    v = commands.add_parser("validate", help="check a cohort file and list every problem")
    _add_parameters(v, VALIDATED_PARAMETERS)

    t = commands.add_parser("template", help="write a blank cohort CSV with every column")
    t.add_argument("--out", default="cohort_template.csv")

    commands.add_parser("dictionary", help="print the data dictionary (Markdown)")

    # listed for --help; their arguments are bridge_hsct.paper.bundle's (see main)
    commands.add_parser("bundle", help="write a centre's aggregate-only bundle "
                                       "(bundle --help)")
    commands.add_parser("pool", help="print the pooled analysis of centres' bundles "
                                     "(pool --help)")
    return parser


#: The parameters ``validate`` checks against the data, as ``build`` does before it starts.
VALIDATED_PARAMETERS = ["data_path", "group_col", "group_order", "cutoff_date",
                        "landmark_months"]


def group_labels(values: list[str] | None) -> list[str] | None:
    """Groups as given on the command line: one value per group (labels with spaces
    quoted), or one value listing them separated by commas."""
    if values is None:
        return None
    if len(values) == 1 and "," in values[0]:
        values = values[0].split(",")
    return [v.strip() for v in values]


def parameters_of(args: argparse.Namespace) -> Parameters:
    """The :class:`Parameters` given on a command line (defaults for those it lacks)."""
    given = {spec.name: getattr(args, spec.name) for spec in fields(Parameters)
             if hasattr(args, spec.name)}
    if "group_order" in given:
        given["group_order"] = group_labels(given["group_order"])
    return Parameters(**given)


def _checked_cohort(params: Parameters, cohorts: ValidatedCohorts):
    """The cohort of `params`, validated, with the group order and landmark checked
    against it: every refusal comes before any chapter runs."""
    cohort = cohorts.load(params.data_path, params.group_col, params.cutoff_date)
    check_group_order(cohort, params.group_col, params.group_order, params.data_path)
    check_landmark(cohort, params.landmark_months, params.data_path)
    return cohort


def _check_out(out: str) -> None:
    """Refuse an output folder that is a file or lies in a folder that cannot be written,
    before any work is done."""
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise UsageError(f"--out {out}: is an existing file, not a folder")
    parent = path.resolve()
    while not parent.exists():  # the build creates the missing folders
        parent = parent.parent
    if not parent.is_dir():
        raise UsageError(f"--out {out}: {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(f"--out {out}: cannot write in {parent} (permission denied)")


def _build(args: argparse.Namespace) -> None:
    """Check every parameter against the data (or the bundles), then build."""
    _check_out(args.out)
    params = parameters_of(args)
    if params.bundles:
        if params.data_path != Parameters.data_path:
            raise UsageError("--data and --bundles: give a cohort file or the centres' "
                             "bundles, not both")
        build_pooled(args.out, params, approximate=args.approximate, pdf=args.pdf)
        return
    if args.approximate:
        raise UsageError("--approximate: only for the pooled book (--bundles)")
    cohorts = ValidatedCohorts()  # the build takes the cohort validated here
    _checked_cohort(params, cohorts)
    build(args.out, params, cohorts=cohorts, pdf=args.pdf)


def _validate(args: argparse.Namespace) -> None:
    params = parameters_of(args)
    data = _checked_cohort(params, ValidatedCohorts())
    counts = data[params.group_col].value_counts()
    groups = params.group_order or sorted(counts.index)
    print(f"{params.data_path}: valid, {len(data)} patients; "
          + ", ".join(f"{g}: {counts[g]}" for g in groups))


def _run(args: argparse.Namespace) -> int:
    if args.command == "build":
        _build(args)
    elif args.command == "validate":
        _validate(args)
    elif args.command == "template":
        print(f"template written to {write_template(args.out)}")
    elif args.command == "dictionary":
        print(dictionary_markdown())
    return 0


@contextlib.contextmanager
def _warnings_as_notices():
    """Show each warning as one ``warning: ...`` line, without Python's source line."""
    def notice(message, *_args, **_kwargs):
        print(f"warning: {message}", file=sys.stderr)

    with warnings.catch_warnings():
        warnings.showwarning = notice
        yield


def _os_message(exc: OSError) -> str:
    """An operating system error as the file and the reason, without Python's wording."""
    names = [str(n) for n in (exc.filename, exc.filename2) if n is not None]
    reason = exc.strerror or str(exc)
    return f"{' -> '.join(names)}: {reason}" if names else reason


def main(argv: list[str] | None = None) -> int:
    """Run a command; return the exit status (0 success, 1 build or file system error,
    2 bad arguments or data). Errors are printed as ``error: ...``, never a traceback."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] in (["bundle"], ["pool"]):  # the aggregate bundles have their own options
        return bundle_main(argv)
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # --help, or a bad argument: argparse has printed why
        return exc.code if isinstance(exc.code, int) else 2
    debug = os.environ.get(DEBUG_VARIABLE) == "1"
    with _warnings_as_notices():
        try:
            status = _run(args)
        except (CohortError, ParameterError, UsageError, BundleError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        except BuildLocked as exc:  # the site is the other build's: say nothing about it
            print(f"error: {exc}", file=sys.stderr)
            return 1
        except BuildError as exc:
            print(f"error: {exc}\nThe previous site (if any) was left untouched.",
                  file=sys.stderr)
            return 1
        except OSError as exc:  # a path the user gave that cannot be read or written
            if debug:
                raise
            print(f"error: {_os_message(exc)}", file=sys.stderr)
            return 1
        except ValueError as exc:  # anything else the input caused that the checks missed
            if debug:
                raise
            print(f"error: {exc} (set {DEBUG_VARIABLE}=1 to see where)", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            print("error: interrupted", file=sys.stderr)
            return 130
    return status


if __name__ == "__main__":
    sys.exit(main())

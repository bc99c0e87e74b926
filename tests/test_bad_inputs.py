"""Bad and hostile inputs: each kind ends as expected, never in a traceback.

One row of :data:`CASES` per kind of input: how to make it, the exit status of the command
line, and fragments its message must contain (the file, column, parameter and true line or
row at fault). Refused inputs print ``error: ...``; accepted ones may print a one-line
``warning: ...``. Book builds are only tried with inputs refused before any chapter runs:
the builder itself is replaced by a function that fails the test if it is reached.
"""

from __future__ import annotations

import datetime
import os
import subprocess
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import openpyxl
import pandas as pd
import pytest

from bridge_hsct.book import cli
from bridge_hsct.cohort import validate as validate_module
from conftest import small_cohort
from test_input_formats import dated_cohort

ROOT = Path(__file__).resolve().parents[1]


# --- making inputs ------------------------------------------------------------------------

def csv_of(frame: pd.DataFrame, name: str = "cohort.csv", **kwargs):
    """A maker writing `frame` as CSV."""
    def make(tmp: Path) -> Path:
        path = tmp / name
        frame.to_csv(path, index=False, **kwargs)
        return path
    return make


def text_of(text: str, name: str = "cohort.csv"):
    """A maker writing `text` as a UTF-8 file."""
    def make(tmp: Path) -> Path:
        path = tmp / name
        path.write_text(text, encoding="utf-8", newline="")
        return path
    return make


def bytes_of(data: bytes, name: str = "cohort.csv"):
    """A maker writing raw bytes."""
    def make(tmp: Path) -> Path:
        path = tmp / name
        path.write_bytes(data)
        return path
    return make


def changed(**cells) -> pd.DataFrame:
    """The small cohort with cells changed: ``column=(row index, value)``."""
    frame = small_cohort().astype(object)
    for column, (index, value) in cells.items():
        frame.loc[index, column] = value
    return frame


def lines_of(frame: pd.DataFrame) -> list[str]:
    return frame.to_csv(index=False).splitlines()


def with_blank_lines(frame: pd.DataFrame, after: list[int]) -> str:
    """The CSV text of `frame` with a blank line after each of the given line numbers."""
    out = []
    for number, line in enumerate(lines_of(frame), start=1):
        out.append(line)
        out += [""] * after.count(number)
    return "\n".join(out) + "\n"


def duplicated_column(same: bool) -> str:
    """A CSV whose column ``age_years`` appears twice, with equal or different values."""
    frame = small_cohort()
    second = frame["age_years"] if same else frame["age_years"] + 1
    text = lines_of(frame.assign(age_copy=second))
    text[0] = text[0].replace("age_copy", "age_years")
    return "\n".join(text) + "\n"


def workbook(rows: list[list], name: str = "cohort.xlsx"):
    """A maker writing rows (a row of None is a blank row) to a workbook's first sheet."""
    def make(tmp: Path) -> Path:
        book = openpyxl.Workbook()
        sheet = book.active
        for row in rows:
            sheet.append([] if row is None else row)
        path = tmp / name
        book.save(path)
        return path
    return make


def frame_rows(frame: pd.DataFrame) -> list[list]:
    """Header and rows of a frame, empty cells as None (as a workbook holds them)."""
    values = frame.astype(object).where(frame.notna(), None).values.tolist()
    return [list(frame.columns), *values]


def valid_workbook_bytes(tmp: Path) -> bytes:
    path = tmp / "valid.xlsx"
    small_cohort().to_excel(path, index=False)
    return path.read_bytes()


def truncated_workbook(tmp: Path) -> Path:
    path = tmp / "truncated.xlsx"
    data = valid_workbook_bytes(tmp)
    path.write_bytes(data[: len(data) // 2])
    return path


def zip_without_workbook(tmp: Path) -> Path:
    path = tmp / "notabook.xlsx"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("readme.txt", "a zip archive, but no workbook in it")
    return path


def workbook_named_csv(tmp: Path) -> Path:
    path = tmp / "export.csv"
    path.write_bytes(valid_workbook_bytes(tmp))
    return path


def forged_declared_size(tmp: Path) -> Path:
    """A small valid workbook whose central directory declares its sheet 3.75 GB."""
    path = tmp / "forged.xlsx"
    data = bytearray(valid_workbook_bytes(tmp))
    at = data.find(b"PK\x01\x02")
    while at >= 0:
        length = int.from_bytes(data[at + 28:at + 30], "little")
        if data[at + 46:at + 46 + length] == b"xl/worksheets/sheet1.xml":
            data[at + 24:at + 28] = (0xF0000000).to_bytes(4, "little")
        at = data.find(b"PK\x01\x02", at + 4)
    path.write_bytes(bytes(data))
    return path


def inflating_workbook(megabytes: int):
    """A maker of a workbook whose sheet really inflates to `megabytes` MB of repeated
    bytes, written compressed chunk by chunk (the file on disk stays small)."""
    def make(tmp: Path) -> Path:
        path = tmp / f"bomb{megabytes}.xlsx"
        chunk = b"<row><c><v>1</v></c></row>" * (1024**2 // 26)
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("[Content_Types].xml", "<Types/>")
            with archive.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as member:
                for _ in range(megabytes):
                    member.write(chunk)
        assert path.stat().st_size < 5 * 1024**2
        return path
    return make


def folder(tmp: Path) -> Path:
    path = tmp / "a_folder"
    path.mkdir()
    return path


def semicolon_export(tmp: Path) -> Path:
    path = tmp / "export.csv"
    frame = small_cohort().assign(cd34_dose=[5.5, 4.25, 3.0, 7.1, 2.5, 6.0])
    frame.to_csv(path, sep=";", decimal=",", index=False)
    return path


def dated(**cells) -> pd.DataFrame:
    frame = dated_cohort()
    for column, (index, value) in cells.items():
        frame.loc[index, column] = value
    return frame


HOSTILE = ["<script>alert(1)</script>", "<img src=x onerror=alert(1)>", "=1+2", "@SUM(A1)",
           "*bold* _it_ `code` [a](b) {ref}`x` $x$", "-2+3", "| a | b |", "Bêta 🧬 组"]


def hostile_pairs() -> pd.DataFrame:
    """Two groups of three patients with labels full of markup and formula characters."""
    return small_cohort().assign(arm=[HOSTILE[0]] * 3 + [HOSTILE[2]] * 3)


def many_hostile_groups() -> pd.DataFrame:
    """Eight groups of two or three patients, each label hostile in its own way."""
    frame = pd.concat([small_cohort()] * 3, ignore_index=True)
    frame["patient_id"] = [f"p{i}" for i in range(len(frame))]
    frame["arm"] = [HOSTILE[i % len(HOSTILE)] for i in range(len(frame))]  # 2 or 3 each
    return frame


# --- the table of cases -------------------------------------------------------------------

@dataclass
class Case:
    """One kind of input and the outcome the command line must give.

    ``fragments`` must all appear in the output (stderr when refused, stdout and stderr when
    accepted); ``{name}`` stands for the input file's name. ``patch`` sets attributes of
    :mod:`bridge_hsct.cohort.validate` (the size and time caps) for the case.
    """

    kind: str
    make: Callable[[Path], Path | str]
    code: int
    fragments: tuple[str, ...]
    args: tuple[str, ...] = ()
    command: str = "validate"
    patch: dict = field(default_factory=dict)


REFUSED, FAILED = 2, 1


def refused_build(kind: str, fragments: tuple, *args: str, make: Callable | None = None
                  ) -> Case:
    """A book build (of the small cohort, unless `make` says otherwise) refused with exit
    status 2 before any chapter runs."""
    make = make or csv_of(small_cohort())
    return Case(f"build: {kind}", make, REFUSED, fragments, args, command="build")


CASES = [
    # --- the file itself ---
    Case("missing file", lambda tmp: tmp / "missing.csv", REFUSED,
         ("{name}", "file not found")),
    Case("data is a folder", folder, REFUSED, ("{name}", "is a folder")),
    Case("empty file", text_of(""), REFUSED, ("{name}", "file is empty")),
    Case("only blank lines", text_of("\n\n \n"), REFUSED, ("{name}", "empty")),
    Case("header only", text_of(lines_of(small_cohort())[0] + "\n"), REFUSED,
         ("{name}", "no patient rows")),
    Case("not UTF-8", csv_of(changed(patient_id=(2, "p3é")), encoding="latin-1"), REFUSED,
         ("{name}", "line 4", "not UTF-8", "0xe9")),
    Case("binary garbage", bytes_of(bytes(range(256)) * 40), REFUSED,
         ("{name}", "not UTF-8")),
    Case("NUL bytes in text", text_of("patient_id,arm\np1,A\x00\np2,B\n"), REFUSED,
         ("{name}", "line 2", "NUL")),
    Case("workbook named .csv", workbook_named_csv, REFUSED, ("{name}", "zip archive", ".xlsx")),
    Case("old .xls workbook", bytes_of(b"\xd0\xcf\x11\xe0" * 64, "cohort.xls"), REFUSED,
         ("{name}", ".xls", "save it as .xlsx or CSV")),
    Case("corrupt xlsx", truncated_workbook, REFUSED, ("{name}", "not a valid .xlsx workbook")),
    Case("text named .xlsx", text_of("patient_id,arm\n", "cohort.xlsx"), REFUSED,
         ("{name}", "not a valid .xlsx workbook")),
    Case("zip that is no workbook", zip_without_workbook, REFUSED,
         ("{name}", "not a readable .xlsx workbook")),
    Case("zip bomb: declared size", forged_declared_size, REFUSED,
         ("{name}", "would inflate to", "more than the 200 MB")),
    Case("zip bomb: 300 MB member", inflating_workbook(300), REFUSED,
         ("{name}", "would inflate to 300 MB")),
    Case("zip bomb: compression ratio", inflating_workbook(20), REFUSED,
         ("{name}", "sheet1.xml", "zip bomb")),
    Case("absurdly large CSV", csv_of(small_cohort()), REFUSED,
         ("{name}", "more than the 0 MB"), patch={"MAX_BYTES": 100}),
    Case("workbook too slow to read", workbook(frame_rows(small_cohort())), REFUSED,
         ("{name}", "took more than"), patch={"MAX_READ_SECONDS": -1.0}),
    # --- the header ---
    Case("duplicate column, different values", text_of(duplicated_column(same=False)),
         REFUSED, ("{name}", "line 1", "column 'age_years'", "appears 2 times")),
    Case("duplicate column, same values", text_of(duplicated_column(same=True)), REFUSED,
         ("column 'age_years'", "appears 2 times (columns 3, 14)")),
    Case("duplicate column in a workbook",
         workbook([["age_years", *frame_rows(small_cohort())[0]],
                   *[[30, *r] for r in frame_rows(small_cohort())[1:]]]), REFUSED,
         ("{name}", "row 1", "column 'age_years'", "appears 2 times")),
    Case("missing required column", csv_of(small_cohort().drop(columns=["followup_days"])),
         REFUSED, ("{name}", "column 'followup_days'", "required column is missing")),
    Case("only the required columns", csv_of(small_cohort()[
        ["patient_id", "arm", "followup_days"]]), 0, ("valid, 6 patients",)),
    Case("unknown extra column", csv_of(small_cohort().assign(favourite_colour="red")), 0,
         ("valid, 6 patients", "warning: ", "favourite_colour", "ignored")),
    Case("column name padded with spaces",
         text_of("\n".join([" patient_id , arm ," + lines_of(small_cohort())[0]
                            .split(",", 2)[2]] + lines_of(small_cohort())[1:]) + "\n"),
         0, ("valid, 6 patients",)),
    Case("unnamed column with values",
         text_of("\n".join(line + ",x" if i else line + ","
                           for i, line in enumerate(lines_of(small_cohort()))) + "\n"),
         REFUSED, ("{name}", "line 1", "column 14 has values but no name")),
    Case("trailing separator (unnamed empty column)",
         text_of("\n".join(line + "," for line in lines_of(small_cohort())) + "\n"), 0,
         ("valid, 6 patients",)),
    Case("line break in a column name",
         text_of('"patient\nid",arm\np1,A\np2,A\np3,B\np4,B\n'), REFUSED,
         ("{name}", "column 'patient\nid'", "U+000A")),
    # --- the shape of rows ---
    Case("row with too many cells",
         text_of("\n".join(line + (",1,2" if i == 3 else "")
                           for i, line in enumerate(lines_of(small_cohort()))) + "\n"),
         REFUSED, ("{name}", "line 4", "has 15 cells but the header has 13")),
    Case("row with too few cells",
         text_of("\n".join(",".join(line.split(",")[:5]) if i == 2 else line
                           for i, line in enumerate(lines_of(small_cohort()))) + "\n"),
         REFUSED, ("{name}", "line 3", "column 'followup_days'", "must not be empty")),
    Case("blank lines, counted in row numbers",
         text_of(with_blank_lines(changed(age_years=(4, "forty")), after=[1, 3, 3])), REFUSED,
         ("{name}", "line 9", "column 'age_years'", "must be a number", "'forty'")),
    Case("blank lines, accepted", text_of(with_blank_lines(small_cohort(), [1, 4, 7])), 0,
         ("valid, 6 patients",)),
    Case("Windows line endings", text_of("\r\n".join(lines_of(changed(sex=(3, "X"))))), REFUSED,
         ("{name}", "line 5", "column 'sex'")),
    Case("blank row in a workbook",
         workbook([*frame_rows(small_cohort())[:3], None,
                   *frame_rows(changed(sex=(3, "X")))[3:]]), REFUSED,
         ("{name}", "row 6", "column 'sex'")),
    Case("workbook with date cells",
         workbook(frame_rows(dated_cohort().assign(
             hsct_date=[datetime.date(2020, 1, 1), datetime.date(2020, 3, 1),
                        datetime.date(2021, 1, 1), datetime.date(2022, 6, 30)])
             .replace("", None))), 0, ("valid, 4 patients",)),
    # --- cell values ---
    Case("bad number", csv_of(changed(age_years=(1, "forty"))), REFUSED,
         ("{name}", "line 3", "column 'age_years'", "must be a number", "'forty'")),
    Case("number out of range", csv_of(changed(age_years=(1, 150))), REFUSED,
         ("line 3", "column 'age_years'", "<= 120")),
    Case("NA in a required cell", csv_of(changed(followup_days=(0, "NA"))), REFUSED,
         ("line 2", "column 'followup_days'", "must not be empty")),
    Case("bad category", csv_of(changed(sex=(2, "X"))), REFUSED,
         ("line 4", "column 'sex'", "one of ['M', 'F']", "'X'")),
    Case("indicator 2 instead of 0/1", csv_of(changed(death=(0, 2))), REFUSED,
         ("line 2", "column 'death'", "one of [0, 1]")),
    Case("indicator 'yes' instead of 0/1", csv_of(changed(death=(0, "yes"))), REFUSED,
         ("line 2", "column 'death'", "must be a number")),
    # --- blank is not "no event" ---
    # a blank is unknown: kept, and left out of the endpoints that need it
    Case("blank event indicator", csv_of(changed(agvhd_2_4=(3, None))), 0,
         ("valid, 6 patients",)),
    Case("event columns wholly empty", csv_of(small_cohort().assign(
        agvhd_3_4=None, agvhd_3_4_days=None)), 0,
         ("left out, as if absent: agvhd_3_4, agvhd_3_4_days", "valid, 6 patients")),
    Case("severity blank for a chronic GVHD", csv_of(small_cohort().assign(
        cgvhd=[1, 0, 0, 0, 0, 0], cgvhd_days=[100, None, None, None, None, None],
        cgvhd_severe=[None, 0, 0, 0, 0, 0])), 0, ("valid, 6 patients",)),
    Case("event without its day", csv_of(changed(relapse=(0, 1))), 0,
         ("valid, 6 patients",)),
    Case("day without its event", csv_of(changed(relapse_days=(0, 30))), REFUSED,
         ("line 2", "column 'relapse_days'", "only when `relapse` is 1",
          "relapse_days = 30, relapse = 0")),
    Case("event after death", csv_of(changed(relapse_days=(1, 450))), REFUSED,
         ("line 3", "column 'relapse_days'", "is after `followup_days`",
          "relapse_days = 450, followup_days = 400")),
    Case("negative days", csv_of(changed(followup_days=(0, -10))), REFUSED,
         ("line 2", "column 'followup_days'", ">= 0")),
    Case("duplicate patient ids", csv_of(changed(patient_id=(4, "p1"))), REFUSED,
         ("line 2", "line 6", "column 'patient_id'", "unique")),
    Case("bad date", csv_of(dated(last_contact_date=(2, "31/12/2023"))), REFUSED,
         ("{name}", "line 4", "column 'last_contact_date'", "must be a date", "31/12/2023")),
    Case("impossible date 2024-02-30", csv_of(dated(relapse_date=(3, "2024-02-30"))), REFUSED,
         ("line 5", "column 'relapse_date'", "must be a date", "2024-02-30")),
    Case("event date after death date", csv_of(dated(relapse_date=(1, "2021-06-01"))),
         REFUSED, ("line 3", "column 'relapse_days'", "is after")),
    # --- labels ---
    Case("quoted line break in a label",
         csv_of(changed(arm=(1, "Al\npha"), age_years=(4, "forty"))), REFUSED,
         ("{name}", "line 3", "column 'arm'", "U+000A", "one line of printable text",
          "line 7", "column 'age_years'")),
    Case("tab in a label", csv_of(changed(arm=(1, "Al\tpha"))), REFUSED,
         ("line 3", "column 'arm'", "U+0009")),
    Case("escape character in an id", csv_of(changed(patient_id=(2, "p3\x1b[31m"))), REFUSED,
         ("line 4", "column 'patient_id'", "U+001B")),
    Case("right-to-left override in a label", csv_of(changed(arm=(0, "Al\u202epha"))),
         REFUSED, ("line 2", "column 'arm'", "U+202E")),
    Case("hostile labels: markup and formulas", csv_of(hostile_pairs()), 0,
         ("valid, 6 patients", HOSTILE[0], HOSTILE[2])),
    Case("hostile labels: many groups", csv_of(many_hostile_groups()), 0,
         ("valid, 18 patients", HOSTILE[4], "Bêta 🧬 组")),
    Case("empty group label", csv_of(changed(arm=(3, ""))), REFUSED,
         ("line 5", "column 'arm'", "must not be empty")),
    # --- groups ---
    Case("one group only", csv_of(small_cohort().assign(arm="Alpha")), REFUSED,
         ("{name}", "column 'arm'", "at least two groups")),
    Case("a group of one patient", csv_of(changed(arm=(5, "Gamma"))), REFUSED,
         ("line 7", "column 'arm'", "at least two patients", "'Gamma'")),
    Case("group column missing", csv_of(small_cohort()), REFUSED,
         ("{name}", "column 'cohort_arm'", "group column is missing", "--group-col"),
         args=("--group-col", "cohort_arm")),
    Case("other group column with an empty cell",
         csv_of(small_cohort().assign(centre=["X", "X", None, "Y", "Y", "Y"])), REFUSED,
         ("line 4", "column 'centre'", "must not be empty"), args=("--group-col", "centre")),
    # --- formats that are accepted ---
    Case("semicolons and decimal commas", semicolon_export, 0, ("valid, 6 patients",)),
    Case("tab-separated", csv_of(small_cohort(), sep="\t"), 0, ("valid, 6 patients",)),
    Case("byte-order mark", csv_of(small_cohort(), encoding="utf-8-sig"), 0,
         ("valid, 6 patients",)),
    # --- parameters ---
    Case("invalid cut-off month", csv_of(dated_cohort()), REFUSED,
         ("--cutoff-date", "2024-13-45", "not a calendar date"),
         args=("--cutoff-date", "2024-13-45")),
    Case("cut-off 'yesterday'", csv_of(dated_cohort()), REFUSED,
         ("--cutoff-date", "'yesterday'", "YYYY-MM-DD"), args=("--cutoff-date", "yesterday")),
    Case("cut-off before every transplant", csv_of(dated_cohort()), REFUSED,
         ("{name}", "column 'hsct_date'", "every transplant date is after the data cut-off "
          "2019-01-01", "--cutoff-date"), args=("--cutoff-date", "2019-01-01")),
    Case("cut-off before some transplants", csv_of(dated_cohort()), REFUSED,
         ("line 4", "line 5", "transplant date is after the data cut-off 2020-12-31"),
         args=("--cutoff-date", "2020-12-31")),
    Case("cut-off with a file in days", csv_of(small_cohort()), 0,
         ("valid, 6 patients", "warning: ", "cut-off 2024-01-01 is ignored"),
         args=("--cutoff-date", "2024-01-01")),
    Case("unknown option", csv_of(small_cohort()), REFUSED, ("--colour",),
         args=("--colour", "red")),
    # --- book builds refused before any chapter runs ---
    refused_build("group order with an unknown group",
                  ("group_order", "Gamma", "not in the data", "['Alpha', 'Beta']"),
                  "--group-order", "Alpha", "Gamma"),
    refused_build("group order missing a group", ("group_order", "missing: ['Beta']"),
                  "--group-order", "Alpha"),
    refused_build("group order listing a group twice", ("group_order", "listed twice"),
                  "--group-order", "Alpha", "Beta", "Alpha"),
    refused_build("landmark after the longest follow-up",
                  ("landmark_months (--landmark-months, LANDMARK)", "60.0",
                   "after the longest follow-up in the data (49.3 months)"),
                  "--landmark-months", "60"),
    refused_build("invalid cut-off", ("--cutoff-date", "2024-13-45"),
                  "--cutoff-date", "2024-13-45", make=csv_of(dated_cohort())),
    refused_build("alpha above 1", ("--alpha", "between 0 and 1"), "--alpha", "1.5"),
    refused_build("alpha not a number", ("--alpha", "'five' is not a number"),
                  "--alpha", "five"),
    refused_build("negative minimum cell count", ("--min-cell-count", "0 (off) or more"),
                  "--min-cell-count", "-1"),
    refused_build("landmark of 0 months", ("--landmark-months", "more than 0"),
                  "--landmark-months", "0"),
    refused_build("landmark not finite", ("--landmark-months", "finite"),
                  "--landmark-months", "nan"),
    refused_build("group column missing", ("{name}", "column 'cohort_arm'", "--group-col"),
                  "--group-col", "cohort_arm"),
    refused_build("invalid data", ("{name}", "column 'sex'", "one of ['M', 'F']"),
                  make=csv_of(changed(sex=(2, "X")))),
    refused_build("corrupt xlsx", ("{name}", "not a valid .xlsx"), make=truncated_workbook),
    refused_build("out is an existing file", ("--out", "is an existing file"),
                  "--out", "{tmp}/site.html"),
    refused_build("out inside a file", ("--out", "is a file, not a folder"),
                  "--out", "{tmp}/site.html/site"),
]


def _arguments(case: Case, tmp: Path) -> tuple[list[str], Path]:
    """The command line of a case, with its input made in `tmp`."""
    data = Path(case.make(tmp))
    (tmp / "site.html").write_text("a file where a folder is expected")
    args = [a.replace("{tmp}", str(tmp)) for a in case.args]
    if case.command == "build" and "--out" not in args:
        args += ["--out", str(tmp / "site")]
    return [case.command, "--data", str(data), *args], data


def _check_output(case: Case, data: Path, code: int, out: str, err: str) -> None:
    assert code == case.code, f"exit {code}, expected {case.code}; stderr:\n{err}"
    assert "Traceback" not in err and "File \"" not in err
    assert ".py:" not in err, "a warning or error shows Python's source line"
    text = err if code else out + err
    for fragment in case.fragments:
        assert fragment.replace("{name}", data.name) in text, f"{fragment!r} not in:\n{text}"
    if code:
        assert err.startswith("error: ") and not out
    else:
        assert all(line.startswith("warning: ") for line in err.splitlines() if line)


@pytest.fixture(autouse=True)
def no_build_reached(monkeypatch):
    """Make sure no case reaches the book's builder."""
    def no_build(*args, **kwargs):
        raise AssertionError("the build was started: this case must be refused before")

    monkeypatch.setattr(cli, "build", no_build)


def test_at_least_forty_kinds():
    kinds = [c.kind for c in CASES]
    assert len(set(kinds)) == len(kinds) >= 40


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.kind)
def test_bad_input(case, tmp_path, capsys, monkeypatch):
    for name, value in case.patch.items():
        monkeypatch.setattr(validate_module, name, value)
    argv, data = _arguments(case, tmp_path)
    code = cli.main(argv)
    out, err = capsys.readouterr()
    _check_output(case, data, code, out, err)
    if case.command == "build":
        assert not (tmp_path / "site").exists()
        assert not list(tmp_path.glob(".site.build-*"))


SUBPROCESS_KINDS = ["corrupt xlsx", "duplicate column, different values",
                    "build: invalid cut-off", "quoted line break in a label",
                    "unknown extra column", "build: out is an existing file"]


@pytest.mark.parametrize("kind", SUBPROCESS_KINDS)
def test_bad_input_in_a_fresh_process(kind, tmp_path):
    """The real entry point (``python -m bridge_hsct``) exits non-zero without a traceback.

    Builds here are refused before the builder is called (there is no stand-in for it in
    a fresh process): the cases are chosen so.
    """
    [case] = [c for c in CASES if c.kind == kind]
    argv, data = _arguments(case, tmp_path)
    env = {**os.environ, "PYTHONWARNINGS": "default"}
    run = subprocess.run([sys.executable, "-m", "bridge_hsct", *argv], capture_output=True,
                         text=True, cwd=ROOT, env=env, timeout=300)
    _check_output(case, data, run.returncode, run.stdout, run.stderr)


def test_help_is_not_an_error(capsys):
    assert cli.main(["--help"]) == 0
    assert "build" in capsys.readouterr().out


def test_unwritable_output_folder(tmp_path, capsys, monkeypatch):
    """A folder the user may not write in is refused before the build (tested through
    os.access, since the tests may run as root, who may write anywhere)."""
    monkeypatch.setattr(cli.os, "access", lambda path, mode: Path(path) != tmp_path)
    data = csv_of(small_cohort())(tmp_path)
    code = cli.main(["build", "--data", str(data), "--out", str(tmp_path / "new" / "site")])
    err = capsys.readouterr().err
    assert code == REFUSED
    assert err == f"error: --out {tmp_path / 'new' / 'site'}: cannot write in {tmp_path} " \
                  "(permission denied)\n"


def test_operating_system_errors_are_one_line(tmp_path, capsys, monkeypatch):
    """An error of the file system met during the build is a line, not a traceback."""
    def unwritable(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(tmp_path / "site"))

    monkeypatch.setattr(cli, "build", unwritable)
    data = csv_of(small_cohort())(tmp_path)
    assert cli.main(["build", "--data", str(data), "--out", str(tmp_path / "site")]) == FAILED
    err = capsys.readouterr().err
    assert err == f"error: {tmp_path / 'site'}: Permission denied\n"


def test_build_errors_are_one_message(tmp_path, capsys, monkeypatch):
    def failing(*args, **kwargs):
        raise cli.BuildError("notebook notebooks/os_pfs.md failed in cell 3 (ValueError: x)")

    monkeypatch.setattr(cli, "build", failing)
    data = csv_of(small_cohort())(tmp_path)
    assert cli.main(["build", "--data", str(data), "--out", str(tmp_path / "site")]) == FAILED
    err = capsys.readouterr().err
    assert err.startswith("error: notebook notebooks/os_pfs.md failed") and "Traceback" not in err

"""Publication tables: one result type, great-tables rendering, CSV/XLSX files beside them.

Every table of the book is a :class:`Table`: the frame the reader sees (strings), the tidy
numbers behind it (the download), and the notes under it. ``table.render(...)`` shows it (or,
with no rows, a note saying why) and ``table.save(folder, name)`` writes its numbers as CSV
and XLSX; both pass the small-cell suppression of the table's own :mod:`.disclosure`, given
when it is computed (the chapter's). A table without rows is
never written (a header-only file is no download): ``save`` returns None and
``table.download(...)`` then says which columns it needs instead of linking a missing file.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from great_tables import GT, loc, style
from IPython.display import Markdown
from openpyxl.styles import Alignment, Font
from openpyxl.utils import get_column_letter

from .data_label import destination, sidecar
from .disclosure import Disclosure
from .escaping import markdown_code, spreadsheet_frame, spreadsheet_text

TEST_MARKS = "*†‡§¶#"
HIGHLIGHT = "#fff3cd"


@dataclass
class Table:
    """A computed table: what is shown, the numbers behind it, and its notes.

    Parameters
    ----------
    display : one row per line of the table, as strings (plus the ``Test`` and ``indent``
        columns that :func:`render_table` turns into footnote marks and indentation).
    numbers : the same in tidy form, for downloads, the audit and the text.
    notes : sentences printed under the table (what was left out, how it was computed).
    omitted : keys of the lines left out because the data lack their column.
    highlight : positions of the displayed rows to highlight.
    needs : the cohort columns the table is computed from (any one of them gives it a
        line), named when the table is left out.
    disclosure : the small-cell suppression its display was written with, and that its
        page and downloads pass (keyword only, required: a table never goes without one).
    """

    display: pd.DataFrame
    numbers: pd.DataFrame
    notes: list[str] = field(default_factory=list)
    omitted: list = field(default_factory=list)
    highlight: list[int] = field(default_factory=list)
    needs: tuple[str, ...] = ()
    disclosure: Disclosure = field(kw_only=True)

    def render(self, title: str, subtitle: str = "", *, notes: list[str] = (), **options):
        """The table as great-tables (see :func:`render_table` for `options`), with its own
        notes and then `notes`; a table without rows becomes a note saying why."""
        return render_or_note(self.display, [*self.notes, *notes], title=title,
                              subtitle=subtitle, highlight=self.highlight,
                              disclosure=self.disclosure, **options)

    def save(self, where, name: str, label: str | None = None) -> Path | None:
        """Write :attr:`numbers` as ``name.csv`` and ``name.xlsx`` (see :func:`save_table`),
        the workbook led by the table as shown; None, and no file, when it has no rows.
        `where` is a folder or a chapter (whose data path labels the files)."""
        shown = (shown_table(self.display, self.notes, disclosure=self.disclosure)
                 if not self.display.empty else None)
        return save_table(self.numbers, where, name, shown, label, disclosure=self.disclosure)

    def download(self, csv: Path | None, what: str, contents: str = "") -> Markdown:
        """The download line of this table saved at `csv` (see :func:`download_markdown`)."""
        return download_markdown(csv, what, contents, self.needs)


def download_markdown(csv: Path | None, what: str, contents: str = "",
                      needs: Sequence[str] = ()) -> Markdown:
    """Links to a saved table's CSV and Excel files, or one sentence saying why there are none.

    Parameters
    ----------
    csv : the CSV path returned by :func:`save_table` (relative to the page), None when
        nothing was written.
    what : how the sentence names the table (``Table 3``, ``the estimates``), Markdown.
    contents : what a row of the file holds, Markdown, put in brackets after the links.
    needs : the cohort columns the table is computed from, named when there is no file.
    """
    if csv is None:
        columns = ", ".join(markdown_code(c) for c in needs)
        why = (f"the data have none of the columns it is computed from ({columns})" if needs
               else "the data have none of the columns it is computed from")
        return Markdown(f"Nothing to download for {what}: {why}.")
    csv = Path(csv)
    about = f" ({contents})" if contents else ""
    note = sidecar(csv)
    source = (f" The data behind the files: {{download}}`{note.name} <{note.as_posix()}>`."
              if note.is_file() else "")
    return Markdown(f"Download {what} as {{download}}`CSV <{csv.as_posix()}>` or "
                    f"{{download}}`Excel <{csv.with_suffix('.xlsx').as_posix()}>`{about}."
                    + source)


def render_or_note(display: pd.DataFrame, notes: list[str], *, disclosure: Disclosure,
                   **options):
    """:func:`render_table` of `display` (`options` are its), or, when it has no rows, a
    visible MyST note saying why (so that the chapter still builds)."""
    if display.empty:
        title = options.get("title", "This table")
        why = " ".join(notes) or "The data have none of its columns."
        return Markdown(f"```{{admonition}} {title}: left out\n:class: note\n{why}\n```\n")
    return render_table(display, notes=notes, disclosure=disclosure, **options)


def render_table(display: pd.DataFrame, title: str, subtitle: str = "",
                 notes: list[str] = (), stub: str = "Characteristic",
                 test_col: str | None = "Test", indent_col: str | None = "indent",
                 table_id: str | None = None, highlight: list[int] = (), *,
                 disclosure: Disclosure) -> GT:
    """Render a display table (strings) as a great-tables table.

    The test named in ``test_col`` of each row becomes a footnote mark on its P value,
    rows with ``indent_col`` ≥ 1 are indented that many steps under their header row (shown
    bold), and the rows at the positions in `highlight` are shaded. Its counts pass
    `disclosure` (:func:`shown_table`).
    """
    body, steps, notes = shown_table(display, notes, test_col, indent_col,
                                     disclosure=disclosure)
    table = GT(body, rowname_col=stub, id=table_id).tab_header(title=title, subtitle=subtitle)
    for step in sorted(set(steps) - {0}):
        table = table.tab_stub_indent(rows=[int(i) for i in steps.index[steps == step]],
                                      indent=2 * step)
    headers = [int(i) for i in steps.index[steps == 0]]
    table = table.tab_style(style=style.text(weight="bold"), locations=loc.stub(rows=headers))
    if highlight:
        table = table.tab_style(style=style.fill(color=HIGHLIGHT), locations=loc.body(
            rows=list(highlight)))
    for note in notes:
        table = table.tab_source_note(note)
    return table.tab_options(table_font_size="14px", table_width="100%")


def shown_table(display: pd.DataFrame, notes: Sequence[str] = (), test_col: str | None = "Test",
                indent_col: str | None = "indent", *,
                disclosure: Disclosure) -> tuple[pd.DataFrame, pd.Series, list]:
    """What a reader sees of a display table, on the page and in its Excel file: the counts
    passed through `disclosure`, each P value with the mark of its test, the indentation
    step of each row (0: a header, shown bold), and the notes, the tests' first.

    Returns
    -------
    body : the shown columns (without `test_col` and `indent_col`).
    steps : the indentation step of each row, by position.
    notes : the tests' footnotes followed by `notes`.
    """
    body = disclosure.suppress_counts(display).copy()  # the gate every displayed table passes
    notes = list(notes)
    if test_col and test_col in body:
        tests = [t for t in dict.fromkeys(body[test_col]) if t]
        marks = {t: TEST_MARKS[i % len(TEST_MARKS)] * (1 + i // len(TEST_MARKS))
                 for i, t in enumerate(tests)}
        has_p = body["P value"].ne("") & body["P value"].ne("–")
        body.loc[has_p, "P value"] = body.loc[has_p, "P value"] + body.loc[has_p, test_col].map(
            lambda t: marks.get(t, ""))
        notes = [f"{m} {t}." for t, m in marks.items()] + notes
        body = body.drop(columns=test_col)
    steps = pd.Series(0, index=range(len(body)))
    if indent_col and indent_col in body:
        steps = pd.Series(body[indent_col].astype(int).to_numpy())
        body = body.drop(columns=indent_col)
    return body.reset_index(drop=True), steps, notes


def abbreviations_note(display: pd.DataFrame, glossary: dict[str, str]) -> str:
    """``Abbreviations: HID, haploidentical donor; ...`` for the abbreviations of `glossary`
    that the table shows (as a word of a cell or header), in the glossary's order; "" when
    it shows none."""
    text = " ".join([*map(str, display.columns), *display.astype(str).to_numpy().ravel()])
    used = [f"{short}, {long}" for short, long in glossary.items()
            if re.search(rf"(?<![\w-]){re.escape(short)}(?![\w])", text)]
    return "Abbreviations: " + "; ".join(used) + "." if used else ""


def save_table(frame: pd.DataFrame, where, name: str,
               shown: tuple[pd.DataFrame, pd.Series, list] | None = None,
               label: str | None = None, *, disclosure: Disclosure | None = None
               ) -> Path | None:
    """Write a table as ``name.csv`` and ``name.xlsx``; return the CSV path.

    `where` is a folder, or a chapter: its output folder, its disclosure (which
    `disclosure` replaces when given; a bare folder needs one) and the provenance label of
    its data (:mod:`bridge_hsct.render.data_label`), which `label` replaces when given. A
    labelled table gets a ``Notes`` sheet in its workbook (the label first) and a sidecar
    ``name.csv.txt`` beside its CSV (the CSV itself stays the tidy table, header on its
    first line); an unlabelled one has neither.

    A frame without rows is not written (a header-only file, or a 1-byte one when it has no
    columns either, is no download): any file of that name left by an earlier run is removed
    and None is returned, so that the page can say why there is nothing to download.

    With `shown` (:func:`shown_table` of the displayed table), the workbook's first sheet
    is the table as the page shows it (its headers, bold header rows, indented lines, the
    notes under it) and the tidy numbers are its second sheet; the CSV stays tidy, for
    programs.

    Small counts are written as ``< k`` when suppression is on (:mod:`.disclosure`). Text
    that a spreadsheet would run as a formula (``=1+2``, ``@SUM(…)``) is kept as text: with
    a leading ``'`` in the CSV, as a text cell in the workbook. Both files are the same bytes
    for the same table (no creation time inside).

    Raises
    ------
    TypeError
        When `where` is a bare folder and no `disclosure` is given.
    """
    if disclosure is None:
        disclosure = getattr(where, "disclosure", None)
    if disclosure is None:  # a silent default would write small counts
        raise TypeError(f"save_table({name!r}) in a folder needs a disclosure (the chapter's, "
                        "or NO_SUPPRESSION for data that describe nobody)")
    folder, label = destination(where, label)
    path = folder / f"{name}.csv"
    sidecar(path).unlink(missing_ok=True)
    if frame.empty:
        path.unlink(missing_ok=True)
        (folder / f"{name}.xlsx").unlink(missing_ok=True)
        return None
    frame = disclosure.suppress_counts(frame)
    folder.mkdir(parents=True, exist_ok=True)
    spreadsheet_frame(frame).to_csv(path, index=False)
    (folder / f"{name}.xlsx").write_bytes(workbook_bytes(frame, name[:31], shown, label))
    if label:
        sidecar(path).write_text(sidecar_text(path.name, label, shown), encoding="utf-8")
    return path


def sidecar_text(csv_name: str, label: str,
                 shown: tuple[pd.DataFrame, pd.Series, list] | None = None) -> str:
    """The sidecar of a labelled CSV: the file's name, its provenance label and the
    table's notes, as plain text."""
    notes = list(shown[2]) if shown is not None else []
    lines = [f"About {csv_name}", "", label, ""]
    lines += [f"- {note}" for note in notes]
    lines += ["", f"{csv_name} is a plain CSV table: its first line is the header."]
    return "\n".join(lines).replace("\n\n\n", "\n\n") + "\n"


# a workbook records when it was made; a fixed time keeps rebuilds byte-identical
_FIXED_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
_CORE_TIMES = re.compile(rb"(<dcterms:(?:created|modified)[^>]*>)[^<]*(</dcterms:)")


#: The sheets of a workbook saved with its displayed table, and its provenance sheet.
SHOWN_SHEET, NUMBERS_SHEET, NOTES_SHEET = "Table", "Numbers", "Notes"


def _write_shown(writer, shown: tuple[pd.DataFrame, pd.Series, list]) -> None:
    """The displayed table on its own sheet: bold headers and header rows, indented lines,
    the notes under it, the first column wide enough to read."""
    body, steps, notes = shown  # text cells stay text: see workbook_bytes
    body.to_excel(writer, index=False, sheet_name=SHOWN_SHEET)
    sheet = writer.sheets[SHOWN_SHEET]
    indented = steps.gt(0).any()
    for i, step in enumerate(steps, start=2):
        cell = sheet.cell(row=i, column=1)
        if step:
            cell.alignment = Alignment(indent=2 * int(step))
        elif indented:
            cell.font = Font(bold=True)
    for j, note in enumerate(notes, start=len(body) + 3):
        sheet.cell(row=j, column=1, value=note)
    sheet.column_dimensions["A"].width = min(60, 4 + max(
        [len(str(v)) for v in body.iloc[:, 0]] + [10]))
    for k in range(2, body.shape[1] + 1):
        sheet.column_dimensions[get_column_letter(k)].width = min(40, 2 + max(
            [len(str(v)) for v in body.iloc[:, k - 1]] + [len(str(body.columns[k - 1])), 6]))


def workbook_bytes(frame: pd.DataFrame, sheet: str,
                   shown: tuple[pd.DataFrame, pd.Series, list] | None = None,
                   label: str | None = None) -> bytes:
    """`frame` as an ``.xlsx`` workbook whose text cells are all text cells (never
    formulas), with fixed timestamps: one sheet named `sheet`, or, with `shown`, the
    displayed table first (:data:`SHOWN_SHEET`) and `frame` second (:data:`NUMBERS_SHEET`);
    with a `label`, a last sheet :data:`NOTES_SHEET` holding it (then the table's notes)."""
    buffer = io.BytesIO()
    with pd.ExcelWriter(buffer, engine="openpyxl") as writer:
        if shown is not None:
            _write_shown(writer, shown)
            sheet = NUMBERS_SHEET
        frame.to_excel(writer, index=False, sheet_name=sheet)
        if label:
            notes = [label, *(shown[2] if shown is not None else [])]
            pd.DataFrame({"Notes": [spreadsheet_text(n) for n in notes]}).to_excel(
                writer, index=False, sheet_name=NOTES_SHEET)
            writer.sheets[NOTES_SHEET].column_dimensions["A"].width = 120
        for book_sheet in writer.sheets.values():
            for row in book_sheet.iter_rows():
                for cell in row:
                    if isinstance(cell.value, str):
                        cell.data_type = "s"  # openpyxl makes "=…" a formula otherwise
    source = zipfile.ZipFile(io.BytesIO(buffer.getvalue()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for member in source.infolist():
            data = source.read(member)
            if member.filename == "docProps/core.xml":
                data = _CORE_TIMES.sub(rb"\g<1>1980-01-01T00:00:00Z\g<2>", data)
            target.writestr(zipfile.ZipInfo(member.filename, _FIXED_ZIP_TIME), data,
                            compress_type=zipfile.ZIP_DEFLATED)
    return out.getvalue()

"""Publication tables: great-tables rendering and CSV/XLSX files beside them."""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

import pandas as pd
from great_tables import GT, loc, style

from .disclosure import suppress_counts
from .escaping import spreadsheet_frame

TEST_MARKS = "*†‡§¶#"


def render_table(display: pd.DataFrame, title: str, subtitle: str = "",
                 notes: list[str] = (), stub: str = "Characteristic",
                 test_col: str | None = "Test", indent_col: str | None = "indent",
                 table_id: str | None = None) -> GT:
    """Render a display table (strings) as a great-tables table.

    The test named in ``test_col`` of each row becomes a footnote mark on its P value, and
    rows with ``indent_col`` = 1 are indented under their header row.
    """
    body = suppress_counts(display).copy()  # the one gate every displayed table passes
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
    indented = []
    if indent_col and indent_col in body:
        indented = [i for i, v in enumerate(body[indent_col]) if v]
        body = body.drop(columns=indent_col)
    table = GT(body, rowname_col=stub, id=table_id).tab_header(title=title, subtitle=subtitle)
    if indented:
        table = table.tab_stub_indent(rows=indented, indent=2)
    headers = [i for i in range(len(body)) if i not in indented]
    table = table.tab_style(style=style.text(weight="bold"), locations=loc.stub(rows=headers))
    for note in notes:
        table = table.tab_source_note(note)
    return table.tab_options(table_font_size="14px", table_width="100%")


def save_table(frame: pd.DataFrame, folder: str | Path, name: str) -> Path:
    """Write a table as ``name.csv`` and ``name.xlsx`` in `folder`; return the CSV path.

    Small counts are written as ``< k`` when suppression is on (:mod:`.disclosure`). Text
    that a spreadsheet would run as a formula (``=1+2``, ``@SUM(…)``) is kept as text: with
    a leading ``'`` in the CSV, as a text cell in the workbook. Both files are the same bytes
    for the same table (no creation time inside).
    """
    frame = suppress_counts(frame)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.csv"
    spreadsheet_frame(frame).to_csv(path, index=False)
    (folder / f"{name}.xlsx").write_bytes(workbook_bytes(frame, name[:31]))
    return path


# a workbook records when it was made; a fixed time keeps rebuilds byte-identical
_FIXED_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
_CORE_TIMES = re.compile(rb"(<dcterms:(?:created|modified)[^>]*>)[^<]*(</dcterms:)")


def workbook_bytes(frame: pd.DataFrame, sheet: str) -> bytes:
    """`frame` as an ``.xlsx`` workbook of one sheet whose text cells are all text cells
    (never formulas), with fixed timestamps."""
    buffer = io.BytesIO()
    with pd.ExcelWriter(buffer, engine="openpyxl") as writer:
        frame.to_excel(writer, index=False, sheet_name=sheet)
        for row in writer.sheets[sheet].iter_rows():
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

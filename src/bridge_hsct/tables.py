"""Publication tables: great-tables rendering and CSV/XLSX files beside them."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from great_tables import GT, loc, style

from .disclosure import suppress_counts

TEST_MARKS = "*†‡§¶#"


def render_table(display: pd.DataFrame, title: str, subtitle: str = "",
                 notes: list[str] = (), stub: str = "Characteristic",
                 test_col: str | None = "Test", indent_col: str | None = "indent",
                 table_id: str | None = None) -> GT:
    """Render a display table (strings) as a great-tables table.

    The test named in ``test_col`` of each row becomes a footnote mark on its P value, and
    rows with ``indent_col`` = 1 are indented under their header row.
    """
    body = display.copy()
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

    Small counts are written as ``< k`` when suppression is on (:mod:`.disclosure`)."""
    frame = suppress_counts(frame)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.csv"
    frame.to_csv(path, index=False)
    frame.to_excel(folder / f"{name}.xlsx", index=False, sheet_name=name[:31])
    return path

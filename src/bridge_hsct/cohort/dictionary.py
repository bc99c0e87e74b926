"""The data dictionary page and the blank template CSV, generated from the schema."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .dates import EVENTS, MARKER
from .schema import MISSING_WORDS, VARIABLES, Variable
from .validate import MAX_BYTES

KIND_TEXT = {
    "id": "text", "group": "text", "binary": "0 / 1", "category": "code", "ordinal": "code",
    "number": "number", "days": "days since HSCT", "date": "date (YYYY-MM-DD)",
}


def _allowed(var: Variable) -> str:
    if var.levels and var.kind != "binary":
        return ", ".join(f"`{lv}`" + (f" ({var.level_labels[lv]})"
                                      if var.level_labels.get(lv, str(lv)) != str(lv) else "")
                         for lv in var.levels)
    parts = []
    if var.minimum is not None:
        parts.append(f"≥ {var.minimum:g}")
    if var.maximum is not None:
        parts.append(f"≤ {var.maximum:g}")
    return " and ".join(parts)


def dictionary_frame() -> pd.DataFrame:
    """One row per column of the cohort file."""
    return pd.DataFrame([{
        "Column": f"`{v.name}`", "Required": "yes" if v.required else "",
        "Type": KIND_TEXT[v.kind], "Allowed values": _allowed(v),
        "Unit": v.unit, "Description": v.description,
    } for v in VARIABLES])


def dictionary_markdown() -> str:
    """The data-dictionary page of the book (MyST markdown)."""
    table = dictionary_frame()
    lines = ["| " + " | ".join(table.columns) + " |",
             "|" + "---|" * len(table.columns)]
    lines += ["| " + " | ".join(str(x).replace("|", "\\|") for x in row) + " |"
              for row in table.itertuples(index=False)]
    return "\n".join([
        "(data-dictionary)=",
        "# Data dictionary",
        "",
        "The book reads one CSV file with **one row per transplanted patient**. Times are "
        "days since the transplant (day 0). Each event comes as a 0/1 indicator and, when the "
        "indicator is 1, the day it happened; leave the day empty when the event did not "
        "happen. Overall survival, progression-free survival, GRFS and non-relapse mortality "
        "are derived by the book from these events, never supplied.",
        "",
        "Only `patient_id`, the group column (`arm`, or the one the `group_col` parameter "
        "names) and `followup_days` are required, present and filled. Every other column is "
        "optional: the chapters, rows, panels and sentences that need an absent one are left "
        "out with a sentence naming it. An optional column left wholly empty counts as "
        "absent. A blank cell means **unknown**, never \"no event\" or \"no\": a patient "
        "whose event indicator is blank (or whose event has no day, or whose chronic GVHD has "
        "no severity) is left out of every endpoint made of that event, and each page says "
        "how many patients were left out and why; a composite endpoint (PFS, GRFS, NRM) needs "
        "each of its events known. A blank characteristic is counted as unknown in its table "
        "row and left out of its test. Cells written "
        + ", ".join(f"`{w}`" for w in sorted(MISSING_WORDS - {""}))
        + " are read as blank; an identifier or group label written as one of them is "
        "refused rather than dropped. Extra columns are ignored with a warning. A blank file "
        "with every column is made by `make template`; `make validate DATA=your.csv` lists "
        "every problem of a file at once (one line per column for a problem repeated on many "
        "rows).",
        "",
        "The file is a CSV in UTF-8 (separated by commas, by semicolons with decimal commas, "
        "or by tabs) or an Excel workbook (`.xlsx`, first sheet). Blank lines are skipped; "
        "every message names the line of the file (or the row of the sheet) at fault. Each "
        "column name appears once. Identifiers and group labels are one line of printable "
        "text: no line breaks, tabs or other control characters; any other character, "
        "markup or formula signs included, is shown as written. A file larger than "
        f"{MAX_BYTES // 1024**2} MB (for a workbook: once uncompressed) is refused.",
        "",
        "This page is generated from the schema in `src/bridge_hsct/schema.py`.",
        "",
        *lines,
        "",
        "## Calendar dates instead of days",
        "",
        "A file may give dates (`YYYY-MM-DD`) instead of days. It is read as dates when it has "
        f"a `{MARKER}` column; then `hsct_date` is required and is day 0, `death_date` gives "
        "the date of death (and `death` = 1), and the follow-up ends at death or last contact. "
        "Each event may be given as `<event>_date`, which sets the event's indicator to 1 and "
        "its day to the number of days after `hsct_date`: "
        + ", ".join(f"`{e}_date`" for e in EVENTS) + ". In such a column a blank date "
        "says the event did not happen, so give a `<event>_date` column only when every "
        "patient's status is known; without a `death_date` column, deaths are unknown (not "
        "\"none\") and the chapters that need them are left out. "
        "With a data cut-off (`make book CUTOFF=YYYY-MM-DD`, or `--cutoff-date`), events "
        "after the cut-off are not counted and follow-up stops at the cut-off.",
        "",
    ])


def write_template(path: str | Path) -> Path:
    """Write a header-only CSV with every column of the data dictionary."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(columns=[v.name for v in VARIABLES]).to_csv(path, index=False)
    return path

"""The provenance line every download carries: which data the file was computed from.

A figure or table saved from the book may travel far from the page that explains it. So
each saved file says where its numbers come from, in one line made from the chapter's data
path (never from a module global):

* on the bundled synthetic cohort (:func:`bridge_hsct.paths.is_reference_cohort`), that the
  data are synthetic, reconstructed from the paper's published aggregates, and no patient's;
* on any other cohort, the data file's name and the first 12 hex digits of its SHA-256.

How each kind of file carries it (see :func:`bridge_hsct.render.figures.save_figure` and
:func:`bridge_hsct.render.tables.save_table`):

* PNG and SVG: a caption strip under the figure (real text in the SVG) and the file's
  ``Description`` metadata;
* XLSX: a last sheet named ``Notes``, the label in its first cell;
* CSV: a sidecar text file ``<name>.csv.txt`` beside it, linked from the page's download
  line. A ``# …`` comment line in the CSV itself would break readers that expect the header
  on the first line (``pandas.read_csv``, R's ``read.csv`` and spreadsheets without a comment
  option), and a constant extra column would change the table's columns; a sidecar keeps the
  CSV exactly the tidy table it was.

A save function takes either a folder (no label) or a chapter: any object with
``output_dir`` and ``data_path`` (:class:`bridge_hsct.book.chapter.Chapter`), whose data
path gives the label (:func:`destination`).
"""

from __future__ import annotations

import json
from pathlib import Path

from ..paths import is_reference_cohort, sha256
from .escaping import one_line

#: The label of every download computed from the bundled synthetic cohort.
SYNTHETIC_LABEL = ("Synthetic data: computed from a synthetic cohort reconstructed from the "
                   "published aggregates of Cao et al., J Transl Med 2025;23:391. Not patient "
                   "data; do not cite as results of the study.")


def source_note(staged: str | Path) -> Path:
    """Where a build notes, beside the cohort it staged, the file the user gave
    (:func:`write_source_note`)."""
    return Path(f"{staged}.source.json")


def write_source_note(staged: str | Path, source: str | Path) -> None:
    """Note beside the `staged` cohort the name and SHA-256 of the `source` file it was
    made from, so that labels name the user's file, not the staged copy."""
    source_note(staged).write_text(json.dumps({"name": Path(source).name,
                                               "sha256": sha256(source)}), encoding="utf-8")


def data_label(data_path: str | Path) -> str | None:
    """The provenance line of files computed from `data_path`, or None without a path.

    Returns :data:`SYNTHETIC_LABEL` for the bundled cohort, else ``Computed from
    <file name> (SHA-256 <12 hex digits>…); not the paper's patients.`` (the name on one
    line; each kind of file escapes it as it needs). For a cohort a build staged, the name
    and digest are those of the file the user gave (:func:`write_source_note`).
    """
    if not data_path or not Path(data_path).is_file():
        return None
    if is_reference_cohort(data_path):
        return SYNTHETIC_LABEL
    note = source_note(data_path)
    source = (json.loads(note.read_text(encoding="utf-8")) if note.is_file()
              else {"name": Path(data_path).name, "sha256": sha256(data_path)})
    return (f"Computed from {one_line(source['name'])} (SHA-256 "
            f"{source['sha256'][:12]}…); not the paper's patients.")


def destination(where, label: str | None = None) -> tuple[Path, str | None]:
    """Where a save function writes and the label its files carry.

    Parameters
    ----------
    where : a folder, or a chapter (an object with ``output_dir`` and ``data_path``).
    label : an explicit label; by default the chapter's (:func:`data_label` of its data
        path), None for a bare folder.
    """
    if hasattr(where, "output_dir"):
        return Path(where.output_dir), label or data_label(getattr(where, "data_path", ""))
    return Path(where), label


def sidecar(csv: str | Path) -> Path:
    """The text file beside a CSV that carries its label (``table1.csv.txt``)."""
    csv = Path(csv)
    return csv.with_name(csv.name + ".txt")

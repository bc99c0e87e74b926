"""Compare two built sites: the text of every page and the content of every download.

Used to check that a refactoring leaves the book's content unchanged (issue 12: "the built
site is unchanged in content"). Run as a script::

    python tests/site_diff.py BEFORE_SITE AFTER_SITE

which prints one block per page or download that differs and exits 1 if any does.

Pages are compared as text (tags dropped, whitespace collapsed), so markup changes that a
reader does not see (attribute order, generated ids of great-tables) are ignored. Downloads
(CSV, XLSX, PNG, SVG, executed notebooks) are compared by content: CSV as text, XLSX by
the values of their cells, images by bytes, notebooks by their output text. Files are
matched by their name relative to the site, with Sphinx's hashed download folders replaced
by the file's own name.
"""

from __future__ import annotations

import difflib
import hashlib
import html
import io
import json
import re
import sys
from pathlib import Path

_TAG = re.compile(r"<[^>]+>")
_SPACE = re.compile(r"\s+")
_SKIP = {"build.json", "searchindex.js", ".buildinfo"}


def page_text(path: Path) -> list[str]:
    """The visible text of an HTML page, one sentence-ish chunk per line."""
    source = path.read_text(encoding="utf-8")
    source = re.sub(r"<(script|style)\b.*?</\1>", " ", source, flags=re.S | re.I)
    text = html.unescape(_TAG.sub("\n", source))
    lines = (_SPACE.sub(" ", line).strip() for line in text.splitlines())
    return [line for line in lines if line]


def _workbook_cells(data: bytes) -> list[str]:
    from openpyxl import load_workbook

    book = load_workbook(io.BytesIO(data))
    return [f"{sheet.title}!{cell.coordinate}={cell.value!r}" for sheet in book
            for row in sheet.iter_rows() for cell in row if cell.value is not None]


def _notebook_outputs(data: bytes) -> list[str]:
    notebook = json.loads(data)
    lines = []
    for cell in notebook.get("cells", []):
        for output in cell.get("outputs", []):
            for key in ("text", "data"):
                value = output.get(key)
                if isinstance(value, dict):
                    value = value.get("text/markdown") or value.get("text/plain") or ""
                if value:
                    lines.extend("".join(value).splitlines())
    return lines


def content(path: Path) -> list[str]:
    """What a reader gets from a file, as lines to compare."""
    suffix = path.suffix.lower()
    if suffix == ".html":
        return page_text(path)
    data = path.read_bytes()
    if suffix in {".csv", ".md", ".txt"}:
        return data.decode("utf-8").splitlines()
    if suffix == ".xlsx":
        return _workbook_cells(data)
    if suffix == ".ipynb":
        return _notebook_outputs(data)
    return [hashlib.sha256(data).hexdigest()]


def _key(site: Path, path: Path) -> str:
    relative = path.relative_to(site)
    if relative.parts[0] == "_downloads":  # hashed folder: keep the file's name
        return f"_downloads/{relative.name}"
    return relative.as_posix()


def site_files(site: Path) -> dict[str, Path]:
    """The pages and downloads of a built site, by a name stable across builds."""
    files = {}
    for path in sorted(site.rglob("*")):
        relative = path.relative_to(site)
        if (not path.is_file() or path.name in _SKIP or relative.parts[0] in {"_static",
                                                                                  "_sources"}
                or path.suffix in {".mo", ".po", ".js", ".css", ".map"}):
            continue
        files[_key(site, path)] = path
    return files


def site_differences(before: Path, after: Path) -> dict[str, list[str]]:
    """Unified diff of every page or download whose content differs, by name.

    A file present on one side only is reported as such.
    """
    old, new = site_files(Path(before)), site_files(Path(after))
    differences = {}
    for name in sorted(old.keys() | new.keys()):
        if name not in new:
            differences[name] = ["only in the first site"]
            continue
        if name not in old:
            differences[name] = ["only in the second site"]
            continue
        a, b = content(old[name]), content(new[name])
        if a != b:
            differences[name] = list(difflib.unified_diff(a, b, "before", "after",
                                                          lineterm="", n=0))
    return differences


def main(argv: list[str]) -> int:
    """Print the differences of two sites; exit status 1 if there are any."""
    differences = site_differences(Path(argv[0]), Path(argv[1]))
    for name, lines in differences.items():
        print(f"=== {name}")
        print("\n".join(lines))
    print(f"{len(differences)} file(s) differ")
    return 1 if differences else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Wall time of printing the built book as one PDF (prints figures; not a test).

    .venv/bin/python benchmarks/pdf.py                  # builds the default site first
    .venv/bin/python benchmarks/pdf.py --site _build/html

Target (issue 16): the PDF in well under a minute after ``make book``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from pypdf import PdfReader

from bridge_hsct.book.build import Parameters, build
from bridge_hsct.book.pdf import write_pdf


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--site", type=Path, help="a built site (default: build one)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        site = args.site
        if site is None:
            site = Path(folder) / "site"
            build(site, Parameters(), log=lambda *a, **k: None, cache=None)
        start = time.perf_counter()
        pdf = write_pdf(site, Path(folder) / "supplement.pdf")
        seconds = time.perf_counter() - start
        pages = len(PdfReader(pdf).pages)
        print(f"pdf: {seconds:.1f} s, {pages} pages, {pdf.stat().st_size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()

"""The whole book as one PDF, printed offline from the built website by Chromium.

``python -m bridge_hsct.book.pdf --site _build/html --out _build/html/supplement.pdf``

The PDF is made from the site's pages, which hold the executed notebooks' output, so nothing
is executed again: the chapters are read in the order of the site's navigation, each page's
article is taken whole, its ids are made unique across the book and its links are pointed at
the chapters inside the document. A title page (title, authors and version from
``CITATION.cff``, the build's date, source revision and data SHA-256 from the provenance
page, and the synthetic-data statement; on any other data, a book made with the supplement
about the data it names, with no author) and a table of contents are put before them. Debian's
Chromium, driven by Playwright, prints the result with the site's theme and ``print.css``;
tables too wide for a portrait page are printed on landscape pages,
and scaled to the width of those if need be. The contents' page numbers are read
from a first printing and the document is printed again with them. Finally the author, subject,
keywords and dates (the build's, so that the same site gives the same metadata) are added
to the document information.

Nothing is fetched from outside the site folder: every request Chromium makes other than for
a local file is refused, and the PDF is not written if one was attempted.
"""

from __future__ import annotations

import argparse
import html
import io
import re
import sys
import tempfile
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from pathlib import Path

from bs4 import BeautifulSoup, Tag
from pypdf import PdfReader
from pypdf.generic import DictionaryObject, NameObject, TextStringObject

from .metadata import Metadata, load_metadata
from .provenance import licence_text

CHROMIUM = Path("/usr/bin/chromium")
PRINT_CSS = resources.files(__package__).joinpath("print.css")
#: The provenance page's facts that the title page repeats, as that page labels them.
PROVENANCE_FACTS = ("Built", "Source revision", "Data file", "Data SHA-256")
#: Widths of the printed column in CSS pixels on a portrait and a landscape page (A4 less the
#: margins of print.css): tables are measured at these widths before printing.
COLUMN_PX = round((210 - 2 * 15) / 25.4 * 96)
LANDSCAPE_COLUMN_PX = round((297 - 2 * 15) / 25.4 * 96)
#: A table with a row taller than this many lines is squeezed in portrait: it goes landscape.
MAX_ROW_LINES = 8
PAGE_NUMBER_PLACEHOLDER = "\u2007" * 3  # figure spaces: as wide as three digits

#: Puts every table that is wider than the portrait column, or whose text wraps into tall
#: rows there, on landscape pages (print.css: ``.landscape``) with the heading just above
#: it, and scales one still wider than the landscape column down to that width (CSS zoom
#: changes the layout width, so the scaled table takes no more room than it shows).
PLACE_TABLES = """([column, landscape, maxLines]) => {
    for (const table of document.querySelectorAll('.chapter table')) {
        const style = getComputedStyle(table);
        const line = parseFloat(style.lineHeight) || 1.5 * parseFloat(style.fontSize);
        const tallest = Math.max(0, ...Array.from(table.rows,
                                                  row => row.getBoundingClientRect().height));
        if (table.getBoundingClientRect().width <= column + 1 && tallest <= maxLines * line) {
            continue;
        }
        const block = table.closest('.cell, .pst-scrollable-table-container') || table;
        block.classList.add('landscape');
        const heading = block.previousElementSibling;
        if (heading && /^H[2-6]$/.test(heading.tagName)) {
            heading.classList.add('landscape');
        }
        block.style.width = landscape + 'px';
        const width = table.getBoundingClientRect().width;
        block.style.width = '';
        if (width > landscape + 1) {
            table.style.zoom = landscape / width;
        }
    }
}"""

HEADER = ('<div style="font-size:7pt;width:100%;margin:0 15mm;color:#666;'
          'font-family:sans-serif;">{title}</div>')
FOOTER = ('<div style="font-size:8pt;width:100%;text-align:center;color:#666;'
          'font-family:sans-serif;"><span class="pageNumber"></span> / '
          '<span class="totalPages"></span></div>')


class PdfError(Exception):
    """The site cannot be printed: a page is missing, or the browser is absent or went
    off the site."""


@dataclass(frozen=True)
class Chapter:
    """One page of the site as a chapter of the PDF."""

    name: str  # the page's file name without ``.html``
    title: str
    part: str  # the navigation's caption above it ("" for the root page)


def _soup(path: Path) -> BeautifulSoup:
    if not path.is_file():
        raise PdfError(f"{path} does not exist: build the site first (make book)")
    return BeautifulSoup(path.read_text(encoding="utf-8"), "html.parser")


def root_page(site: Path) -> str:
    """The name of the site's first page, where ``index.html`` redirects."""
    refresh = _soup(site / "index.html").find("meta", attrs={"http-equiv": "Refresh"})
    match = re.search(r"url=([\w-]+)\.html", refresh["content"] if refresh else "")
    if not match:
        raise PdfError(f"{site / 'index.html'} does not redirect to the first page")
    return match.group(1)


def chapters(site: Path) -> list[Chapter]:
    """The site's pages in the order of its navigation, with their parts."""
    root = root_page(site)
    nav = _soup(site / f"{root}.html").select_one("nav.bd-docs-nav")
    if nav is None:
        raise PdfError(f"{site / root}.html has no navigation")
    found, part = [], ""
    for element in nav.find_all(["p", "a"]):
        if element.name == "p" and "caption" in element.get("class", []):
            part = element.get_text(" ", strip=True)
        elif element.name == "a":
            href = element["href"]
            name = root if href == "#" else href.removesuffix(".html")
            found.append(Chapter(name, element.get_text(" ", strip=True), part))
    return found


def provenance_facts(site: Path) -> dict[str, str]:
    """The rows of the provenance page's first table (label: value) that the title page
    shows."""
    table = _soup(site / "provenance.html").select_one("article table")
    rows = {}
    for row in table.select("tbody tr") if table else []:
        # a cell's text as read: "`a.zip`, `b.zip`" is "a.zip, b.zip", not "a.zip , b.zip"
        cells = [" ".join(c.get_text().split()) for c in row.find_all("td")]
        if len(cells) == 2 and cells[0] in PROVENANCE_FACTS:
            rows[cells[0]] = cells[1]
    missing = [label for label in PROVENANCE_FACTS if label not in rows]
    if missing:
        raise PdfError(f"the provenance page of {site} does not show {', '.join(missing)}")
    return rows


def _local_target(href: str, chapter: str, names: set[str]) -> str | None:
    """The in-document anchor of a link to a chapter, or None for a link to a site file."""
    page, _, fragment = href.partition("#")
    if page == "":
        return f"#{chapter}--{fragment}"
    name = page.removesuffix(".html")
    if page.endswith(".html") and name in names:
        return f"#{name}--{fragment}" if fragment else f"#{name}"
    return None


def chapter_article(site: Path, chapter: Chapter, names: set[str]) -> Tag:
    """A page's article as a ``<section class="chapter">``: ids prefixed with the page's
    name, links to chapters made in-document anchors, links to the site's files (downloads,
    full-size images) reduced to their text, images pointing at the site's files."""
    article = _soup(site / f"{chapter.name}.html").select_one("article.bd-article")
    if article is None:
        raise PdfError(f"{site / chapter.name}.html has no article")
    for element in article.select("a.headerlink, script"):
        element.decompose()
    if article.select_one(".math"):
        # the theme loads MathJax from the network, and no copy is installed to serve locally
        raise PdfError(f"{chapter.name}.html shows mathematics, which the PDF cannot typeset "
                       "offline")
    for element in article.find_all(id=True):
        element["id"] = f"{chapter.name}--{element['id']}"
    for link in article.find_all("a", href=True):
        href = link["href"]
        if re.match(r"(https?|mailto):", href):
            continue
        target = _local_target(href, chapter.name, names)
        if target is None:
            link.unwrap()
        else:
            link["href"] = target
    for image in article.find_all("img", src=True):
        if not re.match(r"[a-z]+:", image["src"]):
            image["src"] = (site / image["src"]).resolve().as_uri()
    article.name = "section"
    article.attrs = {"class": "chapter", "id": chapter.name}
    return article


def book_title(site: Path, root: str) -> str:
    """The site's title as its navigation bar shows it ("" when the theme shows none): the
    book's, which its first page need not carry (the pooled book opens on its centres)."""
    logo = _soup(site / f"{root}.html").select_one(".logo__title")
    return logo.get_text(" ", strip=True) if logo else ""


def synthetic_statement(site: Path, root: str) -> str:
    """The root page's synthetic-data banner as text ("" when the site was built on another
    cohort and shows none)."""
    for admonition in _soup(site / f"{root}.html").select("article .admonition"):
        title = admonition.select_one(".admonition-title")
        if title and title.get_text(strip=True) == "Synthetic data":
            title.decompose()
            return admonition.get_text(" ", strip=True)
    return ""


def title_page(meta: Metadata, title: str, facts: dict[str, str], synthetic: str) -> str:
    """The title page (HTML). On the bundled synthetic cohort (`synthetic`: its statement)
    the book is the paper's reproducibility supplement, with its authors and licence; on any
    other data it is the data owner's analysis made with the supplement, and says so."""
    work, paper = meta.supplement, meta.paper
    rows = "".join(f"<tr><th>{html.escape(label)}</th><td>{html.escape(facts[label])}</td></tr>"
                   for label in PROVENANCE_FACTS)
    doi = html.escape(paper.doi)
    cited = (f"{html.escape(paper.title)}. <em>{html.escape(paper.journal)}</em>. "
             f"{html.escape(paper.year)};{html.escape(paper.volume)}:{html.escape(paper.pages)}."
             f' <a href="https://doi.org/{doi}">doi:{doi}</a>')
    version = f"version {html.escape(work.version)} ({html.escape(work.date)})"
    if synthetic:
        authors = ", ".join(a.name for a in work.authors)
        about = (f'<p class="subtitle">Reproducibility supplement, {version}</p>'
                 f'<p class="authors">{html.escape(authors)}</p>'
                 f"<p>A re-analysis of: {cited}</p>"
                 f'<div class="admonition warning"><p class="admonition-title">Synthetic data'
                 f"</p><p>{html.escape(synthetic)}</p></div>")
    else:
        about = (f'<p class="subtitle">Made with the reproducibility supplement, {version}'
                 "</p><p>Its numbers describe the data named below, not the patients of the "
                 f"study whose design and definitions it follows: {cited}</p>")
    return (f'<section class="title-page"><h1>{html.escape(title)}</h1>{about}'
            f'<table class="provenance">{rows}</table>'
            f"<p>{html.escape(licence_text(meta, bool(synthetic)))}</p>"
            "<p>Printed from the website, whose chapters also offer the figures and tables as "
            "files for download.</p></section>")


def contents(chapter_list: list[Chapter], pages: dict[str, int]) -> str:
    """The table of contents (HTML), by part, each chapter linked, with its page number
    when `pages` has it."""
    items, part = [], None
    for chapter in chapter_list:
        if chapter.part != part:
            if part is not None:
                items.append("</ol></li>")
            part = chapter.part
            if part:
                items.append(f'<li><div class="part">{html.escape(part)}</div><ol>')
        page = str(pages[chapter.name]) if chapter.name in pages else PAGE_NUMBER_PLACEHOLDER
        items.append(f'<li><a href="#{chapter.name}">{html.escape(chapter.title)}'
                     f'<span class="leader"></span>{page}</a></li>')
    if part:
        items.append("</ol></li>")
    return f'<section class="contents"><h1>Contents</h1><ol>{"".join(items)}</ol></section>'


@dataclass(frozen=True)
class PrintDocument:
    """The book as one HTML document, its contents' page numbers left to fill in."""

    title: str
    head: str
    front: str
    chapters: list[Chapter]
    body: str
    synthetic: bool  # built on the bundled synthetic cohort: the paper's supplement

    def html(self, pages: dict[str, int]) -> str:
        return (f'<!DOCTYPE html><html lang="en" data-theme="light"><head><meta charset="utf-8">'
                f"<title>{html.escape(self.title)}</title>{self.head}</head>"
                f"<body>{self.front}{contents(self.chapters, pages)}{self.body}</body></html>")


def print_document(site: Path, meta: Metadata) -> PrintDocument:
    """Read the built `site` into one document."""
    site = site.resolve()
    root = root_page(site)
    chapter_list = chapters(site)
    names = {c.name for c in chapter_list}
    first = _soup(site / f"{root}.html")
    # the theme's own style sheets, as every page links them, then the print styles
    sheets = [(site / link["href"].split("?")[0]).as_uri()
              for link in first.find_all("link", rel="stylesheet")]
    head = "".join(f'<link rel="stylesheet" href="{sheet}">' for sheet in sheets)
    head += f"<style>{PRINT_CSS.read_text(encoding='utf-8')}</style>"
    title = book_title(site, root) or chapter_list[0].title
    synthetic = synthetic_statement(site, root)
    front = title_page(meta, title, provenance_facts(site), synthetic)
    body = "".join(str(chapter_article(site, c, names)) for c in chapter_list)
    return PrintDocument(title, head, front, chapter_list, body, bool(synthetic))


def chapter_pages(pdf: Path, chapter_list: list[Chapter]) -> dict[str, int]:
    """The page (from 1) on which each chapter starts, from the PDF's named destinations
    (Chromium writes one for every element that an in-document link points at)."""
    reader = PdfReader(pdf)
    destinations = {name.lstrip("/"): target for name, target
                    in reader.named_destinations.items()}  # PDF names: "/intro"
    return {c.name: reader.get_destination_page_number(destinations[c.name]) + 1
            for c in chapter_list if c.name in destinations}


def _print(document: str, pdf: Path, title: str, chromium: Path) -> None:
    """Print `document` to `pdf` with Chromium."""
    from playwright.sync_api import sync_playwright

    refused = []

    def local_only(route):
        if route.request.url.startswith("file:"):
            route.continue_()
        else:
            refused.append(route.request.url)
            route.abort()

    with tempfile.TemporaryDirectory() as folder:
        page_file = Path(folder) / "book.html"
        page_file.write_text(document, encoding="utf-8")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(chromium))
            try:
                page = browser.new_page(viewport={"width": COLUMN_PX, "height": 1000})
                page.route("**/*", local_only)
                page.emulate_media(media="print")
                page.goto(page_file.as_uri(), wait_until="load")
                page.evaluate(PLACE_TABLES, [COLUMN_PX, LANDSCAPE_COLUMN_PX, MAX_ROW_LINES])
                if refused:
                    raise PdfError("the book asked for files off this machine: "
                                   + ", ".join(refused))
                page.pdf(path=str(pdf), prefer_css_page_size=True, print_background=True,
                         display_header_footer=True, outline=True, tagged=True,
                         header_template=HEADER.format(title=html.escape(title)),
                         footer_template=FOOTER)
            finally:
                browser.close()


def _pdf_date(built: str) -> str:
    """``D:YYYYMMDDHHmmSSZ`` of the provenance page's ``YYYY-MM-DD HH:MM UTC``."""
    return datetime.strptime(built, "%Y-%m-%d %H:%M UTC").strftime("D:%Y%m%d%H%M00Z")


def document_information(meta: Metadata, title: str, built: str, synthetic: bool = True
                         ) -> dict[str, str]:
    """The PDF's title, author, subject, keywords and dates (the build's). Only the
    supplement itself (`synthetic`: built on the bundled cohort) names the supplement's
    authors as its own; another cohort's book is its data owner's, whom no file names."""
    paper = meta.paper
    cited = (f"{paper.title}. {paper.journal}. {paper.year};{paper.volume}:{paper.pages}. "
             f"doi:{paper.doi}")
    version = f"version {meta.supplement.version}"
    return {
        "/Title": title,
        **({"/Author": "; ".join(a.name for a in meta.supplement.authors)} if synthetic
           else {}),
        "/Subject": (f"Reproducibility supplement ({version}) to {cited}" if synthetic else
                     f"An analysis made with the reproducibility supplement ({version}) to "
                     f"{cited}"),
        "/Keywords": ", ".join(meta.keywords),
        "/CreationDate": _pdf_date(built),
        "/ModDate": _pdf_date(built),
    }


def write_information(pdf: Path, entries: dict[str, str]) -> None:
    """Set `entries` of the document information of `pdf` (the others, such as Chromium's
    producer, are kept) by an incremental update: one new object, cross-reference section and
    trailer appended, as rewriting Chromium's 20,000 objects with pypdf takes seconds."""
    original = pdf.read_bytes()
    reader = PdfReader(pdf)
    trailer = reader.trailer
    info = DictionaryObject(reader.metadata or {})
    info.update({NameObject(key): TextStringObject(value) for key, value in entries.items()})
    highest = max(number for section in reader.xref.values() for number in section)
    number = trailer.raw_get("/Info").idnum if "/Info" in trailer else highest + 1
    previous = int(re.findall(rb"startxref\s+(\d+)", original)[-1])
    update = io.BytesIO()
    update.write(b"\n")
    offset = len(original) + update.tell()
    update.write(f"{number} 0 obj\n".encode())
    info.write_to_stream(update)
    update.write(b"\nendobj\n")
    cross_reference = len(original) + update.tell()
    # the free-list head (object 0) too, which readers expect first in every section
    update.write(f"xref\n0 1\n0000000000 65535 f \n{number} 1\n{offset:010d} 00000 n \n"
                 "trailer\n".encode())
    root = trailer.raw_get("/Root")
    update.write(f"<< /Size {max(int(trailer['/Size']), highest + 1, number + 1)} "
                 f"/Root {root.idnum} {root.generation} R /Info {number} 0 R "
                 f"/Prev {previous} >>\nstartxref\n{cross_reference}\n%%EOF\n".encode())
    pdf.write_bytes(original + update.getvalue())


def write_pdf(site: Path, pdf: Path, chromium: Path = CHROMIUM) -> Path:
    """Print the built `site` as one PDF at `pdf`.

    Parameters
    ----------
    site
        A folder written by ``python -m bridge_hsct build``.
    pdf
        The file to write (its folder is made); inside `site` it becomes one of the site's
        files (``supplement.pdf`` is the name the site links to).
    chromium
        The browser to print with (Debian's; Playwright's own browsers are never fetched).

    Returns
    -------
    Path
        `pdf`.

    Raises
    ------
    PdfError
        When `site` is not a built site, `chromium` is absent, or the pages ask for a file
        that is not on this machine.
    """
    if not Path(chromium).is_file():
        raise PdfError(f"{chromium} is not installed (Debian: apt-get install chromium)")
    meta = load_metadata()
    document = print_document(Path(site), meta)
    pdf = Path(pdf)
    pdf.parent.mkdir(parents=True, exist_ok=True)
    # first printing for the page numbers of the contents, which take the same room as
    # their placeholders, so that the second printing puts every chapter on the same page
    _print(document.html({}), pdf, document.title, chromium)
    pages = chapter_pages(pdf, document.chapters)
    _print(document.html(pages), pdf, document.title, chromium)
    built = provenance_facts(Path(site))["Built"]
    write_information(pdf, document_information(meta, document.title, built,
                                                document.synthetic))
    return pdf


def main(argv: list[str] | None = None) -> int:
    """``python -m bridge_hsct.book.pdf --site DIR --out FILE``."""
    parser = argparse.ArgumentParser(prog="python -m bridge_hsct.book.pdf",
                                     description="Print the built book as one PDF.")
    parser.add_argument("--site", type=Path, default=Path("_build/html"),
                        help="the built website (default: _build/html)")
    parser.add_argument("--out", type=Path, default=None,
                        help="the PDF to write (default: SITE/supplement.pdf)")
    parser.add_argument("--chromium", type=Path, default=CHROMIUM,
                        help=f"the browser to print with (default: {CHROMIUM})")
    args = parser.parse_args(argv)
    try:
        out = write_pdf(args.site, args.out or args.site / "supplement.pdf", args.chromium)
    except PdfError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

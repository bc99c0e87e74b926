"""The whole book as one PDF (``bridge_hsct.book.pdf``), printed from the default site.

The PDF is read back with pypdf: its text, where each text run starts on its page, its
images, link annotations, named destinations and document information.
"""

import json
import re
import shutil
import unicodedata

import pytest
from bs4 import BeautifulSoup
from pypdf import PdfReader

from bridge_hsct.book.metadata import load_metadata
from bridge_hsct.book.pdf import CHROMIUM, PdfError, chapters, write_pdf

pytestmark = pytest.mark.skipif(not CHROMIUM.is_file(),
                                reason=f"{CHROMIUM} is not installed (apt-get install chromium)")


def squeezed(text: str) -> str:
    """Text without white space (lines wrap differently on paper and on screen) and with
    ligatures spelt out (the PDF's fonts print "fi" as one glyph)."""
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text))


@pytest.fixture(scope="module")
def book_pdf(built_site, tmp_path_factory):
    return write_pdf(built_site, tmp_path_factory.mktemp("pdf") / "supplement.pdf")


@pytest.fixture(scope="module")
def reader(book_pdf):
    return PdfReader(book_pdf)


@pytest.fixture(scope="module")
def page_texts(reader):
    return [squeezed(page.extract_text()) for page in reader.pages]


def site_articles(site):
    """Each chapter's article, parsed, in the order of the site's navigation."""
    return [BeautifulSoup((site / f"{c.name}.html").read_text(encoding="utf-8"),
                          "html.parser").select_one("article") for c in chapters(site)]


def test_every_chapter_starts_on_its_own_page_in_order(built_site, reader, page_texts):
    destinations = {name.lstrip("/"): d for name, d in reader.named_destinations.items()}
    starts = []
    for chapter in chapters(built_site):
        page = reader.get_destination_page_number(destinations[chapter.name])
        assert squeezed(chapter.title) in page_texts[page], chapter.title
        starts.append(page)
    assert starts == sorted(set(starts)), "chapters in navigation order, one start per page"
    assert starts[0] >= 2, "after the title page and the contents"


def test_page_count_is_plausible(built_site, reader):
    # every chapter starts a page; the audit table alone fills dozens
    assert len(chapters(built_site)) + 2 < len(reader.pages) < 600


def test_contents_list_every_chapter_with_its_page(built_site, reader, page_texts):
    destinations = {name.lstrip("/"): d for name, d in reader.named_destinations.items()}
    for chapter in chapters(built_site):
        page = reader.get_destination_page_number(destinations[chapter.name]) + 1
        assert squeezed(chapter.title) + str(page) in page_texts[1], chapter.title


def test_title_page_has_the_provenance_and_the_synthetic_data_statement(built_site,
                                                                          page_texts):
    build = json.loads((built_site / "build.json").read_text())
    meta = load_metadata()
    title_page = page_texts[0]
    for fact in ["Sourcerevision", "DataSHA-256", build["data_sha256"],
                 f"version{meta.supplement.version}", squeezed(meta.supplement.authors[0].name),
                 meta.paper.doi, "Itisnotpatientdata"]:
        assert fact in title_page, fact


def test_every_table_is_printed_whole(built_site, page_texts):
    text = "".join(page_texts)
    tables = 0
    for article in site_articles(built_site):
        for table in article.select("table"):
            tables += 1
            rows = table.select("tbody tr")
            # headers, captions, and the last row (a table clipped as on screen loses it)
            for cell in table.select("thead th, caption, .gt_title") + rows[-1].select("td"):
                label = squeezed(cell.get_text())
                assert label in text, label
    assert tables >= 30


def test_no_text_runs_off_the_page(reader):
    """A table cut at the page edge would leave text positioned beyond it."""
    outside = []
    for number, page in enumerate(reader.pages):
        width = float(page.mediabox.width)

        def visit(text, cm, tm, font, size, number=number, width=width):
            x = tm[4] * cm[0] + tm[5] * cm[2] + cm[4]
            if text.strip() and not 0 <= x < width - 20:  # 20 pt: a margin of the margin
                outside.append((number + 1, round(x), text.strip()[:30]))

        page.extract_text(visitor_text=visit)
    assert outside == []


def test_widest_table_keeps_its_last_column(built_site, page_texts):
    article = site_articles(built_site)
    widest = max((table for a in article for table in a.select("table")),
                 key=lambda table: len(table.select("thead th")))
    last = squeezed(widest.select("thead th")[-1].get_text())
    assert any(last in text for text in page_texts)


def test_every_figure_is_embedded_with_its_caption(built_site, reader, page_texts):
    images = {ref.idnum for page in reader.pages
              for ref in page["/Resources"].get("/XObject", {}).values()
              if ref.get_object()["/Subtype"] == "/Image"}
    figures = [a.select("figure") for a in site_articles(built_site)]
    assert len(images) >= sum(len(f) for f in figures) >= 30
    text = "".join(page_texts)
    for figure in (f for chapter in figures for f in chapter):
        label = squeezed(figure.select_one(".caption-text strong").get_text())
        assert label in text, label


def test_internal_links_lead_to_places_in_the_document(built_site, reader):
    destinations = {name.lstrip("/") for name in reader.named_destinations}
    internal, external = [], []
    for page in reader.pages:
        for annotation in page.get("/Annots", []):
            link = annotation.get_object()
            if "/Dest" in link:
                internal.append(str(link["/Dest"]).lstrip("/"))
            elif "/A" in link:
                external.append(str(link["/A"].get("/URI", "")))
    assert {c.name for c in chapters(built_site)} <= set(internal)
    assert set(internal) <= destinations
    assert len(internal) > 2 * len(chapters(built_site)), "links in the text, not only contents"
    # no link to a file of the machine that built it, nor to a page of the website
    assert external and all(re.match(r"https?:|mailto:", uri) for uri in external), external


def test_document_information(built_site, reader):
    meta = load_metadata()
    information = reader.metadata
    assert information.title == chapters(built_site)[0].title
    assert information.author == "; ".join(a.name for a in meta.supplement.authors)
    assert meta.paper.doi in information.subject
    built = BeautifulSoup((built_site / "provenance.html").read_text(encoding="utf-8"),
                          "html.parser").find(string="Built").find_next("td").get_text(strip=True)
    assert information["/CreationDate"].startswith("D:" + built[:10].replace("-", ""))


def test_a_page_asking_for_a_file_off_the_machine_is_refused(built_site, tmp_path):
    site = tmp_path / "site"
    shutil.copytree(built_site, site)
    methods = site / "methods.html"
    methods.write_text(methods.read_text(encoding="utf-8").replace(
        '<article class="bd-article">',
        '<article class="bd-article"><img src="https://example.org/tracker.png">'),
        encoding="utf-8")
    with pytest.raises(PdfError, match="example.org"):
        write_pdf(site, tmp_path / "supplement.pdf")
    assert not (tmp_path / "supplement.pdf").exists()


def test_a_build_asked_for_the_pdf_links_it_from_the_provenance_page(tmp_path):
    """``build --pdf`` prints the PDF beside the pages it links it from; a build without
    it links nothing (no dead link)."""
    from bridge_hsct.book.build import Parameters, build

    with_pdf = build(tmp_path / "with", Parameters(), log=lambda *a, **k: None, pdf=True)
    assert 'href="supplement.pdf"' in (with_pdf / "provenance.html").read_text()
    assert len(PdfReader(with_pdf / "supplement.pdf").pages) > 20
    without = build(tmp_path / "without", Parameters(), log=lambda *a, **k: None)
    assert "supplement.pdf" not in (without / "provenance.html").read_text()
    assert not (without / "supplement.pdf").exists()


@pytest.fixture(scope="module")
def centre_pdf(tmp_path_factory):
    """The PDF of a book built on another cohort than the bundled one (its groups renamed)."""
    import pandas as pd

    from bridge_hsct.book.build import DEFAULT_DATA, Parameters, build

    folder = tmp_path_factory.mktemp("centre_pdf")
    data = pd.read_csv(DEFAULT_DATA)
    data["arm"] = data["arm"].map({"CAR-T": "Ward A", "Blinatumomab": "Ward B"})
    data.to_csv(folder / "centre.csv", index=False)
    site = build(folder / "site", Parameters(data_path=str(folder / "centre.csv")),
                 log=lambda *a, **k: None, pdf=True)
    return PdfReader(site / "supplement.pdf")


def test_a_centre_s_pdf_is_its_analysis_not_the_paper_s_supplement(centre_pdf):
    """The title page and the document information frame the book as the website does on
    another cohort: made with the supplement, about the data named, authored by nobody the
    supplement names."""
    meta = load_metadata()
    title_page = squeezed(centre_pdf.pages[0].extract_text())
    for claim in ["Reproducibilitysupplement,version", "Are-analysisof", "Syntheticdata",
                  squeezed(meta.supplement.authors[0].name)]:
        assert claim not in title_page, claim
    for fact in ["Madewiththereproducibilitysupplement", "notthepatientsofthestudy",
                 meta.paper.doi, "DataSHA-256", "centre.csv", "fortheownerofthedata"]:
        assert fact in title_page, fact
    information = centre_pdf.metadata
    assert information.author is None
    assert information.subject.startswith("An analysis made with the reproducibility")

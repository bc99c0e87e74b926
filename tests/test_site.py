"""The website as a reader sees it: links, offline use, and (with Chromium) a real browser.

The browser tests need Debian's Chromium at /usr/bin/chromium (`.ci/run` installs it) and
axe-core from `npm install` (package.json); without them they are skipped, with the reason.
"""

import re
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urldefrag, urlparse

import pytest

from conftest import path_text, site_files

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from page_weight import CHROMIUM, LIMIT, launch, serving, weigh  # noqa: E402

AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = ROOT / "_build" / "screenshots"
EXTERNAL = re.compile(r"^(https?:)?//", re.I)


class Links(HTMLParser):
    """Collects ids and the href/src of a page."""

    def __init__(self):
        super().__init__()
        self.ids, self.links = set(), []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        for name in ("href", "src"):
            if attrs.get(name):
                self.links.append((tag, attrs[name]))


def parse(page: Path) -> Links:
    parser = Links()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser


def pages(site: Path) -> list[Path]:
    return sorted(p for p in site.rglob("*.html") if "_static" not in p.parts)


def broken_links(site: Path) -> list[str]:
    """Internal links of a built site whose file or anchor is missing."""
    parsed = {p: parse(p) for p in pages(site)}
    broken = []
    for page, links in parsed.items():
        for _tag, link in links.links:
            if EXTERNAL.match(link) or link.startswith(("mailto:", "data:", "javascript:")):
                continue
            path, anchor = urldefrag(link)
            target = (page.parent / unquote(urlparse(path).path)).resolve() if path else page
            if not target.exists():
                broken.append(f"{page.name}: {link} (missing file)")
            elif anchor and target.suffix == ".html":
                ids = parsed.get(target).ids if target in parsed else parse(target).ids
                if anchor not in ids:
                    broken.append(f"{page.name}: {link} (missing anchor)")
    return broken


def test_no_broken_internal_link_or_anchor(built_site):
    broken = broken_links(built_site)
    assert not broken, "\n".join(broken)


def test_pages_load_nothing_from_the_network(built_site):
    """No page's own tags load a script, style, image or font from another host."""
    offenders = []
    for page in pages(built_site):
        for tag, link in parse(page).links:
            if tag in {"script", "link", "img", "source", "iframe"} and EXTERNAL.match(link):
                offenders.append(f"{page.name}: <{tag}> {link}")
    assert not offenders, "\n".join(offenders)


def test_no_patient_level_rows_in_the_site(built_site):
    """No page, download, figure or executed notebook carries an input patient id."""
    import pandas as pd

    from bridge_hsct.paths import DEFAULT_DATA

    ids = "|".join(re.escape(i) for i in pd.read_csv(DEFAULT_DATA, dtype=str)["patient_id"])
    for path in site_files(built_site):
        leaked = sorted(set(re.findall(rf"\b(?:{ids})\b", path_text(path))))
        assert not leaked, f"{path.relative_to(built_site)} shows patient ids {leaked[:5]}"


def test_every_page_carries_citation_meta_tags(built_site):
    from bridge_hsct.book.metadata import load_metadata

    title = load_metadata().supplement.title
    for page in pages(built_site):
        text = page.read_text(encoding="utf-8")
        if 'http-equiv="Refresh"' in text:  # index.html only redirects to the landing page
            continue
        assert f'<meta name="citation_title" content="{title}" />' in text, page.name
        assert '<meta name="citation_author"' in text and "citation_publication_date" in text


def test_provenance_offers_bibtex_and_ris(built_site):
    links = [href for tag, href in parse(built_site / "provenance.html").links if tag == "a"]
    cites = sorted(Path(unquote(h)).name for h in links if h.endswith((".bib", ".ris")))
    assert cites == ["paper.bib", "paper.ris", "supplement.bib", "supplement.ris"]
    for name in cites:
        (found,) = list((built_site / "_downloads").rglob(name))
        assert found.read_text(encoding="utf-8").strip()


# ----------------------------------------------------------------------------- browser


@pytest.fixture(scope="module")
def served(built_site):
    with serving(built_site) as address:
        yield address


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.skip("browser tests skipped: Debian Chromium not found at /usr/bin/chromium "
                    "(apt-get install chromium)")
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as p:
        chromium = launch(p)
        yield chromium
        chromium.close()


def visit(browser, url: str, width: int = 1280, mode: str = "light"):
    """Open `url` in colour `mode` (the theme's light or dark), recording console errors and
    every request that leaves localhost."""
    page = browser.new_page(viewport={"width": width, "height": 900})
    # what the theme's colour switch stores, read by the theme before the page is drawn
    page.add_init_script(f"localStorage.setItem('mode', '{mode}');"
                         f"localStorage.setItem('theme', '{mode}');")
    page.errors, page.outside, page.dialogs = [], [], []
    page.on("dialog", lambda d: (page.dialogs.append(d.message), d.dismiss()))
    page.on("console", lambda m: m.type == "error" and page.errors.append(m.text))
    page.on("pageerror", lambda e: page.errors.append(str(e)))

    def route(r):
        host = urlparse(r.request.url).hostname
        if r.request.url.startswith("data:") or host in {"127.0.0.1", "localhost"}:
            return r.continue_()
        page.outside.append(r.request.url)
        return r.abort()

    page.route("**/*", route)
    page.goto(url, wait_until="networkidle")
    return page


def test_every_page_loads_cleanly_offline(browser, served, built_site):
    for html in pages(built_site):
        name = html.relative_to(built_site).as_posix()
        page = visit(browser, f"{served}/{name}")
        assert not page.errors, f"{name}: console errors {page.errors}"
        assert not page.outside, f"{name}: requests leaving localhost {page.outside}"
        images = page.eval_on_selector_all(
            "main img", "els => els.filter(i => !(i.complete && i.naturalWidth > 0)).length")
        assert images == 0, f"{name}: {images} image(s) did not load"
        page.close()


def test_tables_and_figures_are_visible_by_anchor(browser, served, built_site):
    expected = {"baseline.html": ["table-1"]}
    for chapter, panels in {"os_pfs.html": "abcdefg", "grfs.html": "abcd", "nrm.html": "ab",
                            "gvhd.html": "abcdefghi"}.items():
        if (built_site / chapter).exists():
            number = {"os_pfs.html": 1, "grfs.html": 2, "nrm.html": 3, "gvhd.html": 4}[chapter]
            expected[chapter] = [f"figure-{number}{p}" for p in panels]
    for table, chapter in {"table-2": "gvhd.html", "table-3": "engraftment_infection.html"
                           }.items():
        if (built_site / chapter).exists():
            expected.setdefault(chapter, []).append(table)
    for chapter, anchors in expected.items():
        page = visit(browser, f"{served}/{chapter}")
        for anchor in anchors:
            element = page.locator(f"[id='{anchor}']")
            assert element.count() == 1, f"{chapter}#{anchor} missing"
            assert element.first.is_visible(), f"{chapter}#{anchor} not visible"
        page.close()


def test_download_links_work(browser, served, built_site):
    import urllib.request

    for html in pages(built_site):
        for _tag, link in parse(html).links:
            if "_downloads/" in link:
                url = f"{served}/{(html.parent / link).resolve().relative_to(built_site)}"
                with urllib.request.urlopen(url) as response:
                    assert response.status == 200 and response.read(1), link


@pytest.mark.parametrize("mode", ["light", "dark"])
@pytest.mark.parametrize("width", [390, 1280])
def test_every_page_accessible_in_light_and_dark_mode(browser, served, built_site, width, mode):
    """axe-core on the whole page, the theme's header, sidebars and widgets included: no
    serious or critical violation on any page, at phone and desktop width, in light and
    dark mode. Each page's screenshot is saved as _build/screenshots/<page>-<width>-<mode>.png
    for a reader to look at."""
    if not AXE.exists():
        pytest.skip("axe-core not installed (run npm install)")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    problems = []
    for html in pages(built_site):
        name = html.relative_to(built_site).as_posix()
        if name == "index.html":  # only redirects to the landing page
            continue
        page = visit(browser, f"{served}/{name}", width=width, mode=mode)
        assert page.evaluate("document.documentElement.dataset.theme") == mode, name
        page.screenshot(path=str(SCREENSHOTS / f"{html.stem}-{width}-{mode}.png"),
                        full_page=True)
        page.add_script_tag(path=str(AXE))
        violations = page.evaluate("async () => (await axe.run(document)).violations")
        for v in violations:
            if v["impact"] in {"serious", "critical"}:
                targets = [n["target"] for n in v["nodes"]][:3]
                problems.append(f"{name}: {v['id']} ({v['impact']}, {len(v['nodes'])} "
                                f"elements): {v['help']} {targets}")
        page.close()
    assert not problems, "\n".join(problems)


def test_every_page_weighs_at_most_a_megabyte(browser, served, built_site):
    """Everything a browser fetches for a page, but the page's own figures: at most LIMIT
    bytes (benchmarks/page_weight.py prints the figures)."""
    heavy = []
    for html in pages(built_site):
        name = html.relative_to(built_site).as_posix()
        if name == "index.html":
            continue
        weight = weigh(browser, served, name)
        assert weight.files.get(f"/{name}"), f"{name}: the page itself was not counted"
        if weight.total > LIMIT:
            top = sorted(weight.files.items(), key=lambda kv: -kv[1])[:4]
            heavy.append(f"{name}: {weight.total:,} bytes; heaviest {top}")
    assert not heavy, "\n".join(heavy)


def test_readable_at_phone_width(browser, served):
    page = visit(browser, f"{served}/baseline.html", width=390)
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    page.screenshot(path=str(SCREENSHOTS / "baseline-phone.png"), full_page=False)
    assert overflow <= 1, f"page is {overflow}px wider than a phone screen"
    page.close()


def test_hostile_labels_run_no_script_in_the_browser(browser, hostile_site):
    """Group labels made of HTML and JavaScript stay text: no dialog opens, no error."""
    with serving(hostile_site) as address:
        for html in pages(hostile_site):
            name = html.relative_to(hostile_site).as_posix()
            page = visit(browser, f"{address}/{name}")
            assert not page.dialogs, f"{name}: a label ran as script ({page.dialogs})"
            assert not page.errors, f"{name}: console errors {page.errors}"
            page.close()


@pytest.mark.parametrize("side", ["primary", "secondary"])
def test_phone_menu_buttons_open_their_drawers(browser, served, side):
    page = visit(browser, f"{served}/os_pfs.html", width=390)
    button = next(b for b in page.query_selector_all(f"button.{side}-toggle") if b.is_visible())
    button.click()
    page.wait_for_timeout(300)
    assert page.evaluate(f"document.querySelector('#pst-{side}-sidebar-modal').open"), \
        f"the {side} drawer opened"
    page.close()


# ---------------------------------------------------------------------------------------------
# Figures and tables as a clinician reads them (issue 14, items 4 to 6)
# ---------------------------------------------------------------------------------------------
def _text(page: Path) -> str:
    raw = re.sub(r"<(script|style)\b.*?</\1>", " ", path_text(page), flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", raw))


PAPER_PANELS = {"os_pfs.html": [f"Figure 1{x}" for x in "ABCDEFG"],
                "grfs.html": [f"Figure 2{x}" for x in "ABCD"],
                "nrm.html": ["Figure 3A", "Figure 3B"],
                "gvhd.html": [f"Figure 4{x}" for x in "ABCDEFGHI"],
                "engraftment_infection.html": ["Supplementary Figure 5A",
                                               "Supplementary Figure 5B"]}


def test_every_paper_panel_caption_leads_with_its_name(built_site):
    for page, labels in PAPER_PANELS.items():
        html = path_text(built_site / page)
        captions = [re.sub(r"<[^>]+>", "", c) for c in re.findall(
            r'<span class="caption-text">(.*?)</p>', html, flags=re.S)]
        for label in labels:
            assert any(c.strip().startswith(f"{label}.") for c in captions), (page, label)


def test_no_sphinx_figure_number_remains(built_site):
    for page in PAPER_PANELS:
        assert not re.search(r"\bFig\. \d+", _text(built_site / page)), page


def test_group_headers_do_not_break_inside_their_size(built_site):
    html = path_text(built_site / "baseline.html")
    headers = re.findall(r"<th[^>]*gt_col_heading[^>]*>(.*?)</th>", html, flags=re.S)
    sized = [h for h in headers if "(n" in h]
    assert len(sized) >= 3
    for header in sized:
        inside = re.search(r"\(n.*?\)", header.replace("&nbsp;", "\u00a0")).group(0)
        assert " " not in inside, header


def test_figures_have_real_text_and_table_cells_do_not_wrap(built_site):
    svgs = [p for p in site_files(built_site) if p.suffix == ".svg"
            and re.match(r"(supplementary_)?figure\d", p.name)]
    assert svgs
    for svg in svgs:
        text = path_text(svg)
        assert "<text" in text and "Number at risk" in text, svg.name
    css = path_text(built_site / "_static" / "book.css")
    assert re.search(r"\.gt_table td\.gt_row:not\(\.gt_stub\) \{ white-space: nowrap; \}", css)


def test_at_risk_numbers_are_legible_at_phone_width(browser, served):
    """The numbers at risk of Figure 1C, as a 342 px wide screen shows them: at least 8 px."""
    page = visit(browser, f"{served}/os_pfs.html", width=390)
    shown = page.evaluate("""() => {
        const img = document.querySelector('img[src*="figure1c"]');
        return [img.getBoundingClientRect().width, img.naturalWidth];
    }""")
    page.locator('img[src*="figure1c"]').scroll_into_view_if_needed()
    page.screenshot(path=str(SCREENSHOTS / "figure1c-phone.png"), full_page=False)
    page.close()
    width, natural = shown
    # the panel is 5 inches at 200 dpi, its at-risk numbers 10 points: 10 / 72 * 200 px
    number_px = 10 / 72 * 200 * width / natural
    assert number_px >= 8, (width, natural, number_px)


def _luminance(rgb: str) -> float:
    """Relative luminance (WCAG) of a computed ``rgb(r, g, b)`` colour."""
    channels = [int(c) / 255 for c in re.findall(r"\d+", rgb)[:3]]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


@pytest.mark.parametrize("mode", ["light", "dark"])
def test_great_tables_follow_the_colour_mode(browser, served, mode):
    """A great_tables table is a white card in light mode and takes the dark page's surface
    in dark mode, its text and highlighted rows keeping at least 4.5:1 contrast."""
    page = visit(browser, f"{served}/os_pfs.html", mode=mode)
    cells = page.evaluate("""() => [...document.querySelectorAll(
        '.gt_table .gt_col_heading, .gt_table td.gt_row')].slice(0, 400).map(c => {
          let e = c, bg = getComputedStyle(e).backgroundColor;
          while (e && (bg === 'rgba(0, 0, 0, 0)' || bg === 'transparent')) {
            e = e.parentElement; bg = e ? getComputedStyle(e).backgroundColor : bg; }
          return [getComputedStyle(c).color, bg]; })""")
    page.close()
    assert cells
    for color, background in cells:
        fg, bg = _luminance(color), _luminance(background)
        assert (max(fg, bg) + 0.05) / (min(fg, bg) + 0.05) >= 4.5, (mode, color, background)
        assert (bg < 0.1) if mode == "dark" else (bg > 0.8), (mode, background)

"""What each page of the built website weighs as a browser fetches it (issue 14, item 11).

    .venv/bin/python benchmarks/page_weight.py                # builds the book first
    .venv/bin/python benchmarks/page_weight.py --site /tmp/site [--detail]

Every page is opened in Debian's Chromium (``/usr/bin/chromium``, driven by Playwright) from
a local server, and every response it receives is counted: the page, its scripts, styles,
fonts and images. The page's own figures (``_images/``) are shown apart and left out of the
limit: ``LIMIT`` bytes per page for everything else (tests/test_page_weight.py asserts it).
Bytes are the files' own (the local server does not compress), so a server that gzips
serves less. ``--detail`` lists each page's heaviest files.

Measured 2026-12-01 (default cohort, without figures): before, every page 2,435–2,676 kB, of
which FontAwesome's script 1,489 kB, its solid font 156 kB and the theme stylesheet 397 kB;
after (the script gone, the font subset to 3.6 kB, the stylesheet's unused icon rules and
sphinx-design's files dropped), 653–895 kB, the heaviest the audit page (its own HTML 256 kB).
What every page still loads: the theme stylesheet (310 kB), bootstrap.js (81 kB), the search
index (60 kB), MyST-NB's stylesheet (43 kB).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import http.server
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
#: The most a page may weigh as served, its own figures excluded.
LIMIT = 1_000_000
#: Where the page's own figures are served from (Sphinx copies every figure there).
FIGURES = "/_images/"


@dataclass
class Weight:
    """The bytes one page fetched: its own figures and everything else, by file."""

    page: str
    files: dict[str, int] = field(default_factory=dict)

    @property
    def figures(self) -> int:
        return sum(n for path, n in self.files.items() if path.startswith(FIGURES))

    @property
    def total(self) -> int:
        """Everything but the page's own figures."""
        return sum(n for path, n in self.files.items() if not path.startswith(FIGURES))


@contextlib.contextmanager
def serving(site: Path):
    """The folder ``site`` served on localhost; yields its address."""
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


def page_names(site: Path) -> list[str]:
    """The site's pages (not the theme's HTML snippets, not the redirecting index)."""
    return sorted(p.relative_to(site).as_posix() for p in site.rglob("*.html")
                  if "_static" not in p.parts and p.name != "index.html")


def weigh(browser, address: str, name: str, width: int = 1280) -> Weight:
    """Open ``address/name`` with an empty cache and count every byte it receives."""
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    responses = []
    page.on("response", lambda r: responses.append(r))
    page.route("**/*", lambda r: r.continue_() if urlparse(r.request.url).hostname in
               {"127.0.0.1", "localhost"} or r.request.url.startswith("data:") else r.abort())
    page.goto(f"{address}/{name}", wait_until="networkidle")
    weight = Weight(name)
    for response in responses:
        url = urlparse(response.url)
        if url.scheme not in {"http", "https"} or response.status != 200:
            continue
        weight.files[url.path] = len(response.body())
    context.close()
    return weight


def launch(playwright):
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=[
        "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"])


def measure(site: Path) -> list[Weight]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p, serving(site) as address:
        browser = launch(p)
        try:
            return [weigh(browser, address, name) for name in page_names(site)]
        finally:
            browser.close()


def report(weights: list[Weight], detail: bool = False) -> str:
    kb = 1000
    lines = [f"{'page':32} {'as served':>11} {'figures':>10}  (kB; limit {LIMIT // kb} kB "
             "without figures)"]
    for w in weights:
        flag = "" if w.total <= LIMIT else "  OVER"
        lines.append(f"{w.page:32} {w.total / kb:11.0f} {w.figures / kb:10.0f}{flag}")
        if detail:
            heaviest = sorted(w.files.items(), key=lambda kv: -kv[1])[:8]
            lines += [f"    {n / kb:8.1f}  {path}" for path, n in heaviest]
    largest = max(weights, key=lambda w: w.total)
    lines.append(f"largest: {largest.page} {largest.total / kb:.0f} kB")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--site", type=Path, help="a built site (default: build one)")
    parser.add_argument("--detail", action="store_true", help="each page's heaviest files")
    args = parser.parse_args(argv)
    if not CHROMIUM.exists():
        print(f"needs Chromium at {CHROMIUM}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        site = args.site
        if site is None:
            sys.path.insert(0, str(ROOT / "src"))
            from bridge_hsct.book.build import Parameters, build

            site = Path(tmp) / "site"
            build(site, Parameters(), log=lambda *a, **k: None, cache=None)
        weights = measure(site)
    print(report(weights, args.detail))
    return 0 if all(w.total <= LIMIT for w in weights) else 1


if __name__ == "__main__":
    sys.exit(main())

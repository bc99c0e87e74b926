"""A small Sphinx extension for the book's website: offline and quiet in the browser.

* Jupyter Book always loads sphinx-thebe, whose inline script points at a CDN and is declared
  twice on executed pages (a console error). The book has no live code, so both go.
* pydata-sphinx-theme logs a console error when no default colour mode is configured.
* The title is the book's (``title`` of the staged ``_config.yml``, set by the build). On the
  reference cohort the book is the published supplement: footer and citation meta tags come
  from ``CITATION.cff`` (:mod:`.metadata`). On a centre's cohort it is that centre's analysis,
  which nobody has published: the footer says what it was made from and with, and no page
  carries citation tags that would file it as the supplement. Either way the BibTeX and RIS
  files the provenance page offers (the supplement's and the paper's) are written next to its
  source.
* Light pages (issue 14, item 11): pydata-sphinx-theme loads FontAwesome's SVG-with-JS
  framework (1.5 MB) on every page for a dozen icons, which its own stylesheet can already
  draw from the icon font. The script goes; the stylesheet keeps the rules of the icons the
  site uses and the font only their glyphs (:func:`_light_theme_assets`). sphinx-design's
  stylesheet and script go from the pages that use none of its components.
* Accessible theme widgets (issue 14, item 9): the search fields take their name from their
  visible text ("Search Ctrl+K", not an ``aria-label`` that leaves out the shortcut) and icons
  are hidden from screen readers, as FontAwesome's script did (:func:`accessible_html`).
  ``book.css`` hides the theme's top bar, whose only content was a second search field.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

from markupsafe import Markup

from .. import __version__
from .metadata import bibtex, citation_tags, load_metadata, ris

#: Citation files the provenance page links, relative to the book's sources.
CITE_FOLDER = "cite"


def _drop_thebe(app, pagename, templatename, context, doctree):
    """No sphinx-thebe anywhere; sphinx-design's files only where the page uses it."""
    unused = ["sphinx-thebe"]
    if 'class="sd-' not in context.get("body", ""):
        unused += ["sphinx-design", "design-tabs.js"]

    def used(asset) -> bool:
        return not any(name in str(getattr(asset, "filename", asset) or "") for name in unused)

    context["script_files"] = [
        s for s in context.get("script_files", [])
        if "THEBE_JS_URL" not in str(getattr(s, "attributes", {}).get("body", "")) and used(s)]
    context["css_files"] = [c for c in context.get("css_files", []) if used(c)]


# ------------------------------------------------------------------ light, accessible pages

#: The theme's FontAwesome script tag (pydata-sphinx-theme's ``webpack-macros.html``).
FONTAWESOME_SCRIPT = re.compile(
    r'[ \t]*<script defer src="[^"]*_static/scripts/fontawesome\.js(?:\?[^"]*)?"></script>\n?')
#: A search field's button: its visible text "Search Ctrl+K" is its name, not "Search".
SEARCH_FIELD = re.compile(
    r'(<button class="btn search-button-field[^"]*"[^>]*?) aria-label="Search"')
#: An icon element (``<i class="fa-solid fa-bars">``) not yet hidden from screen readers.
ICON = re.compile(r'<(i|span) class="((?:[^"]* )?fa-[^"]*)"(?![^>]*aria-hidden)')
#: One rule of the theme stylesheet's icon list: ``.fa-bars:before{content:"\f0c9"}``.
ICON_RULE = re.compile(r'((?:\.fa-[a-z0-9-]+:before,?)+)\{content:"((?:[^"\\]|\\.)*)"\}')
#: A FontAwesome code point written in a stylesheet: an escape or the character itself.
CODE_POINT = re.compile(r'\\([ef][0-9a-f]{3})\b|([\ue000-\uf8ff])')
ICON_CLASS = re.compile(r"\bfa-[a-z0-9-]+")
FONTS = Path("_static") / "vendor" / "fontawesome" / "webfonts"
STYLESHEET = Path("_static") / "styles" / "pydata-sphinx-theme.css"
#: How the theme's stylesheet loads the solid icon font (replaced by the subset).
SOLID_FONT_FACE = ('src:url(../vendor/fontawesome/webfonts/fa-solid-900.woff2) format("woff2"),'
                   'url(../vendor/fontawesome/webfonts/fa-solid-900.ttf) format("truetype")')


def accessible_html(text: str) -> str:
    """A page as the theme wrote it, without the FontAwesome script, with named search
    fields and hidden icons."""
    text = FONTAWESOME_SCRIPT.sub("", text)
    text = SEARCH_FIELD.sub(r'\1 aria-keyshortcuts="Control+K"', text)
    return ICON.sub(r'<\1 class="\2" aria-hidden="true"', text)


def _code_points(css: str) -> set[int]:
    return {int(escape, 16) if escape else ord(char) for escape, char in CODE_POINT.findall(css)}


def trim_icon_rules(css: str, used: set[str]) -> tuple[str, set[int]]:
    """The stylesheet with only the icon rules of the classes in `used`, and the code points
    those rules draw."""
    kept: set[int] = set()

    def keep(rule: re.Match) -> str:
        names = {name[len(".fa-"):-len(":before")] for name in rule.group(1).split(",") if name}
        if names & used:
            kept.update(_code_points(f'"{rule.group(2)}"'))
            return rule.group(0)
        return ""

    return ICON_RULE.sub(keep, css), kept


def subset_font(font: Path, code_points: set[int]) -> bytes:
    """`font` with only the glyphs of `code_points`, as WOFF (deterministic: the font's own
    time stamps are kept)."""
    import io

    from fontTools import subset
    from fontTools.ttLib import TTFont

    options = subset.Options()
    options.flavor = "woff"
    options.layout_features = []
    options.name_IDs = ["*"]  # the licence and copyright notices stay in the font
    loaded = TTFont(font, recalcTimestamp=False)
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes=sorted(code_points))
    subsetter.subset(loaded)
    out = io.BytesIO()
    subset.save_font(loaded, out, options)
    return out.getvalue()


def _light_theme_assets(app, exception):
    """After the build: every page without the FontAwesome script and with accessible theme
    widgets; the theme's stylesheet with the icon rules the pages use; the solid icon font
    with their glyphs only; FontAwesome's script, unused fonts and source maps deleted."""
    if exception is not None or app.builder.format != "html":
        return
    out = Path(app.outdir)
    used: set[str] = set()
    for page in out.rglob("*.html"):
        if "_static" in page.relative_to(out).parts:
            continue
        text = page.read_text(encoding="utf-8")
        light = accessible_html(text)
        if light != text:
            page.write_text(light, encoding="utf-8")
        used.update(m[3:] for m in ICON_CLASS.findall(light))
    for script in (out / "_static").rglob("*.js"):  # icons the theme's scripts create
        used.update(m[3:] for m in ICON_CLASS.findall(script.read_text(encoding="utf-8")))
    sheet = out / STYLESHEET
    css = sheet.read_text(encoding="utf-8")
    css, points = trim_icon_rules(css, used)
    # code points the stylesheets draw themselves (admonition icons, the book theme's arrow)
    for other in (out / "_static").rglob("*.css"):
        points |= _code_points(css if other == sheet else other.read_text(encoding="utf-8"))
    fonts = out / FONTS
    solid = fonts / "fa-solid-900.ttf"
    (fonts / "fa-solid-900.woff").write_bytes(subset_font(solid, points))
    if SOLID_FONT_FACE not in css:
        raise ValueError(f"{STYLESHEET} no longer loads the solid icon font as expected: "
                         "update bridge_hsct.book.sphinx_site for the theme's new version")
    css = css.replace(SOLID_FONT_FACE, "src:url(../vendor/fontawesome/webfonts/"
                      'fa-solid-900.woff) format("woff")')
    sheet.write_text(css, encoding="utf-8")
    for unused in [fonts / "fa-solid-900.woff2", solid,
                   *(out / "_static" / "scripts").glob("fontawesome.js*"),
                   *(out / "_static").rglob("*.map")]:
        unused.unlink(missing_ok=True)


def _light_mode(app, config):
    config.html_context = {**(config.html_context or {}), "default_mode": "light"}


def _no_figure_numbers(app, config):
    """``numfig: false`` as ``_config.yml`` says: the captions carry the paper's own numbers
    (Figure 4A). sphinx-jupyterbook-latex turns Sphinx's running numbers ("Fig. 16") on
    for every builder in its own ``config-inited`` handler; this one runs after it."""
    config.numfig = False


def _title_and_footer(app, config):
    """The book's title, footer and author: the supplement's on the reference cohort, the
    build's title and a neutral footer on any other."""
    meta = load_metadata()
    title = config.project = config.html_title = config.html_title or meta.supplement.title
    options = dict(config.html_theme_options or {})
    if config.bridge_hsct_reference_cohort:
        work = meta.supplement
        config.author = ", ".join(a.name for a in work.authors)
        footer = f"{title}, version {work.version}. {meta.licence_statement}"
    else:
        config.author = ""
        footer = (f"{title}. Computed from the data file {config.bridge_hsct_data_file} "
                  f"with bridge-hsct {__version__} (code: MIT); not the published "
                  "supplement, and not the paper's patients.")
    options["extra_footer"] = html.escape(footer)
    config.html_theme_options = options


def _escaped_titles(app, pagename, templatename, context, doctree):
    """The titles as the templates print them. The themes print the book's title both
    through Jinja's escape (the HTML ``<title>``) and raw (the navigation bar), and
    sphinx-book-theme prints the headings of the page and of the landing page as plain text
    (which may hold the book's title or a group label) raw, in the print-only header and the
    sidebar. Escaped once as Markup, which the escape leaves alone, each is shown as the text
    it is everywhere."""
    context["docstitle"] = Markup(html.escape(app.config.html_title))
    for key in ("pagetitle", "root_title"):  # plain text (astext), set by the theme
        if isinstance(context.get(key), str):
            context[key] = Markup(html.escape(context[key]))


def _write_citation_files(app):
    """BibTeX and RIS for the supplement and the paper, beside the pages that link them."""
    meta = app.bridge_hsct_metadata = load_metadata()  # read once for every page's tags
    folder = Path(app.srcdir) / CITE_FOLDER
    folder.mkdir(exist_ok=True)
    for name, work, key in [("supplement", meta.supplement, "bridge_hsct"),
                            ("paper", meta.paper, "cao2025")]:
        (folder / f"{name}.bib").write_text(bibtex(work, key), encoding="utf-8")
        (folder / f"{name}.ris").write_text(ris(work), encoding="utf-8")


def _citation_tags(app, pagename, templatename, context, doctree):
    if not app.config.bridge_hsct_reference_cohort:
        return
    tags = "".join(f'\n<meta name="{name}" content="{html.escape(value)}" />'
                   for name, value in citation_tags(app.bridge_hsct_metadata))
    context["metatags"] = context.get("metatags", "") + tags


def setup(app):
    # set by the build (bridge_hsct.book.build._config): whether the data are the bundled
    # reference cohort, and the data file's name
    app.add_config_value("bridge_hsct_reference_cohort", False, "html", bool)
    app.add_config_value("bridge_hsct_data_file", "", "html", str)
    app.connect("config-inited", _light_mode)
    app.connect("config-inited", _no_figure_numbers, priority=900)
    app.connect("config-inited", _title_and_footer)
    app.connect("builder-inited", _write_citation_files)
    app.connect("html-page-context", _drop_thebe, priority=900)
    app.connect("build-finished", _light_theme_assets)
    app.connect("html-page-context", _citation_tags)
    # after sphinx-book-theme, which sets the page's title (default priority 500)
    app.connect("html-page-context", _escaped_titles, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

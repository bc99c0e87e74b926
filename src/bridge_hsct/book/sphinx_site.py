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
"""

from __future__ import annotations

import html
from pathlib import Path

from markupsafe import Markup

from .. import __version__
from .metadata import bibtex, citation_tags, load_metadata, ris

#: Citation files the provenance page links, relative to the book's sources.
CITE_FOLDER = "cite"


def _drop_thebe(app, pagename, templatename, context, doctree):
    scripts = context.get("script_files", [])
    context["script_files"] = [
        s for s in scripts
        if "THEBE_JS_URL" not in str(getattr(s, "attributes", {}).get("body", ""))
        and "sphinx-thebe" not in str(getattr(s, "filename", s) or "")
    ]
    context["css_files"] = [c for c in context.get("css_files", [])
                            if "sphinx-thebe" not in str(getattr(c, "filename", c))]


def _light_mode(app, config):
    config.html_context = {**(config.html_context or {}), "default_mode": "light"}


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
    app.connect("config-inited", _title_and_footer)
    app.connect("builder-inited", _write_citation_files)
    app.connect("html-page-context", _drop_thebe, priority=900)
    app.connect("html-page-context", _citation_tags)
    # after sphinx-book-theme, which sets the page's title (default priority 500)
    app.connect("html-page-context", _escaped_titles, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

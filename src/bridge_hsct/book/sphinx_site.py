"""A small Sphinx extension for the book's website: offline and quiet in the browser.

* Jupyter Book always loads sphinx-thebe, whose inline script points at a CDN and is declared
  twice on executed pages (a console error). The book has no live code, so both go.
* pydata-sphinx-theme logs a console error when no default colour mode is configured.
* Title, footer and citation meta tags come from ``CITATION.cff`` (:mod:`.metadata`), and the
  BibTeX and RIS files the provenance page offers are written next to its source.
"""

from __future__ import annotations

import html
from pathlib import Path

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


def _from_citation_file(app, config):
    """One title, author and licence everywhere: those of ``CITATION.cff``."""
    meta = load_metadata()
    work = meta.supplement
    config.project = config.html_title = work.title
    config.author = ", ".join(a.name for a in work.authors)
    options = dict(config.html_theme_options or {})
    options["extra_footer"] = (f"{html.escape(work.title)}, version {work.version}. "
                               f"{html.escape(meta.licence_statement)}")
    config.html_theme_options = options


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
    tags = "".join(f'\n<meta name="{name}" content="{html.escape(value)}" />'
                   for name, value in citation_tags(app.bridge_hsct_metadata))
    context["metatags"] = context.get("metatags", "") + tags


def setup(app):
    app.connect("config-inited", _light_mode)
    app.connect("config-inited", _from_citation_file)
    app.connect("builder-inited", _write_citation_files)
    app.connect("html-page-context", _drop_thebe, priority=900)
    app.connect("html-page-context", _citation_tags)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

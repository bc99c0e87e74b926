"""A small Sphinx extension for the book's website: offline and quiet in the browser.

* Jupyter Book always loads sphinx-thebe, whose inline script points at a CDN and is declared
  twice on executed pages (a console error). The book has no live code, so both go.
* pydata-sphinx-theme logs a console error when no default colour mode is configured.
"""

from __future__ import annotations


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


def setup(app):
    app.connect("config-inited", _light_mode)
    app.connect("html-page-context", _drop_thebe, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

"""Accessible theme widgets (issue 14, item 9), checked in the built HTML. axe-core on every
page in light and dark mode, at phone and desktop width, is in tests/test_site.py
(test_every_page_accessible_in_light_and_dark_mode)."""

import re
from pathlib import Path

from bridge_hsct.book.sphinx_site import accessible_html

SEARCH_FIELD = """<button class="btn search-button-field search-button__button pst-js-only" \
title="Search" aria-label="Search" data-bs-placement="bottom" data-bs-toggle="tooltip">
 <i class="fa-solid fa-magnifying-glass"></i>
 <span class="search-button__default-text">Search</span>
 <span class="search-button__kbd-shortcut"><kbd class="kbd-shortcut__modifier">Ctrl</kbd>+\
<kbd class="kbd-shortcut__modifier">K</kbd></span>
</button>"""


def pages(site: Path) -> list[Path]:
    return sorted(p for p in site.rglob("*.html") if "_static" not in p.parts)


def test_search_field_named_by_its_text_and_icons_hidden():
    fixed = accessible_html(SEARCH_FIELD)
    assert 'aria-label="Search"' not in fixed  # its name is its text: "Search Ctrl + K"
    assert 'aria-keyshortcuts="Control+K"' in fixed
    assert '<i class="fa-solid fa-magnifying-glass" aria-hidden="true">' in fixed
    assert accessible_html(fixed) == fixed
    # an icon-only search button keeps its label (it has no text to be named by)
    icon_only = ('<button class="btn btn-sm pst-navbar-icon search-button search-button__button"'
                 ' title="Search" aria-label="Search">')
    assert accessible_html(icon_only) == icon_only


def test_built_pages_have_no_mislabelled_search_field_or_readable_icon(built_site):
    for page in pages(built_site):
        text = page.read_text(encoding="utf-8")
        for button in re.findall(r'<button class="btn search-button-field[^>]*>', text):
            assert "aria-label" not in button, page.name
        for icon in re.findall(r'<(?:i|span) class="(?:[^"]* )?fa-[^"]*"[^>]*>', text):
            assert 'aria-hidden="true"' in icon, (page.name, icon)


def test_dark_mode_rules_in_the_book_stylesheet(built_site):
    css = (built_site / "_static" / "book.css").read_text(encoding="utf-8")
    assert "table.audit th { color: var(--pst-color-text-base); }" in css
    assert ".bd-header { display: none; }" in css
    assert (built_site / "_static" / "scroll-regions.js").exists()

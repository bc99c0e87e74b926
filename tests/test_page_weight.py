"""Light pages (issue 14, item 11): the theme's 1.5 MB FontAwesome script is gone, the icon
font holds only the glyphs the site draws, and nothing the pages load was deleted with the
unused assets. The weight of every page as a browser fetches it is measured in
tests/test_site.py (test_every_page_weighs_at_most_a_megabyte) and benchmarks/page_weight.py.
"""

import re
from pathlib import Path
from urllib.parse import urlparse

from fontTools.ttLib import TTFont

from bridge_hsct.book.sphinx_site import (
    FONTS,
    ICON_RULE,
    STYLESHEET,
    subset_font,
    trim_icon_rules,
)

SOLID = "fa-solid-900.woff"
#: FontAwesome classes that style an icon rather than name one.
STYLES = {"fa-solid", "fa-regular", "fa-lg", "fa-fw", "fa-sm", "fa-xs"}
URL = re.compile(r"url\(([^)]+)\)")


def pages(site: Path) -> list[Path]:
    return sorted(p for p in site.rglob("*.html") if "_static" not in p.parts)


def icon_code_points(css: str) -> dict[str, int]:
    """Each icon class of the stylesheet with the code point its rule draws."""
    points = {}
    for names, content in ICON_RULE.findall(css):
        for name in re.findall(r"\.fa-([a-z0-9-]+):before", names):
            if re.fullmatch(r"\\[ef][0-9a-f]{3}", content):
                points[name] = int(content[1:], 16)
    return points


def test_no_page_loads_fontawesome_script(built_site):
    assert not list(built_site.rglob("fontawesome.js*"))
    for page in pages(built_site):
        assert "fontawesome.js" not in page.read_text(encoding="utf-8"), page.name


def test_every_icon_a_page_shows_is_in_the_subset_font(built_site):
    css = (built_site / STYLESHEET).read_text(encoding="utf-8")
    drawn = icon_code_points(css)
    font = TTFont(built_site / FONTS / SOLID)
    glyphs = set(font.getBestCmap())
    assert len(glyphs) < 60 and (built_site / FONTS / SOLID).stat().st_size < 20_000
    shown = set()
    for page in pages(built_site):
        for classes in re.findall(r'<(?:i|span) class="((?:[^"]* )?fa-[^"]*)"',
                                  page.read_text(encoding="utf-8")):
            shown.update(c[3:] for c in classes.split() if c.startswith("fa-")
                         and c not in STYLES)
    assert {"bars", "magnifying-glass", "sun", "moon", "download"} <= shown
    for icon in shown:
        assert icon in drawn, f"no rule draws fa-{icon}"
        assert drawn[icon] in glyphs, f"fa-{icon} (U+{drawn[icon]:04X}) missing from the font"
    # the admonition icons the stylesheet draws itself (the "Synthetic data" warning)
    assert 0xF071 in glyphs


def test_every_file_a_stylesheet_loads_exists(built_site):
    """Deleting unused theme files (the full icon font, source maps) left no stylesheet
    pointing at a missing file."""
    for sheet in (built_site / "_static").rglob("*.css"):
        for url in URL.findall(sheet.read_text(encoding="utf-8")):
            url = url.strip("'\"")
            if url.startswith(("data:", "#")) or urlparse(url).scheme:
                continue
            target = (sheet.parent / urlparse(url).path).resolve()
            assert target.exists(), f"{sheet.relative_to(built_site)} loads {url}"


def test_every_script_and_stylesheet_a_page_loads_exists(built_site):
    for page in pages(built_site):
        for url in re.findall(r'<(?:script|link)\b[^>]*(?:src|href)="([^"#]+\.(?:js|css)[^"]*)"',
                              page.read_text(encoding="utf-8")):
            target = (page.parent / urlparse(url).path).resolve()
            assert target.exists(), f"{page.name} loads {url}"


def test_sphinx_design_only_where_used(built_site):
    for page in pages(built_site):
        text = page.read_text(encoding="utf-8")
        if 'class="sd-' not in text:
            assert "sphinx-design" not in text and "design-tabs.js" not in text, page.name


def test_icon_rules_trimmed_to_the_used_classes():
    css = ('.fa-a{x:1}.fa-bars:before,.fa-navicon:before{content:"\\f0c9"}'
           '.fa-at:before{content:"\\@"}.fa-moon:before{content:"\\f186"}')
    trimmed, points = trim_icon_rules(css, {"navicon"})
    assert trimmed == '.fa-a{x:1}.fa-bars:before,.fa-navicon:before{content:"\\f0c9"}'
    assert points == {0xF0C9}


def test_font_subset_is_deterministic(built_site, tmp_path):
    """The subset carries the font's own time stamps, so rebuilds are byte-identical."""
    import pydata_sphinx_theme

    full = next(Path(pydata_sphinx_theme.__file__).parent.rglob("fa-solid-900.ttf"))
    first = subset_font(full, {0xF0C9, 0xF002})
    assert first == subset_font(full, {0xF002, 0xF0C9})
    assert set(TTFont(__import__("io").BytesIO(first)).getBestCmap()) == {0xF0C9, 0xF002}

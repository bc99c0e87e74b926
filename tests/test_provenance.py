"""The provenance page shows the data's file names whole, whatever they contain."""

import pytest
from bs4 import BeautifulSoup
from markdown_it.renderer import RendererHTML
from myst_parser.config.main import MdParserConfig
from myst_parser.parsers.mdit import create_md_parser

from bridge_hsct.book.provenance import pooled_provenance_markdown, provenance_markdown

NAMES = ["a|b.csv", "x`y|z.csv", "plain.csv", "<script>|.csv"]


def facts(markdown: str) -> dict[str, str]:
    """The first table's rows (label: text) as MyST renders the page."""
    html = create_md_parser(MdParserConfig(), RendererHTML).render(markdown)
    table = BeautifulSoup(html, "html.parser").find("table")
    return {cells[0].get_text(): cells[1].get_text() for row in table.find_all("tr")
            if len(cells := row.find_all("td")) == 2}


@pytest.mark.parametrize("name", NAMES)
def test_a_data_file_name_is_shown_whole(name):
    shown = facts(provenance_markdown(f"/data/{name}", "ab" * 32, {}, synthetic=False))
    assert shown["Data file"] == name
    assert shown["Data SHA-256"] == "ab" * 32


def test_every_bundle_is_named_whole_with_its_digest():
    bundles = {name: f"{i}" * 64 for i, name in enumerate(NAMES)}
    shown = facts(pooled_provenance_markdown(bundles, {}))
    assert shown["Data file"] == f"the bundles of {len(NAMES)} centres: " + ", ".join(NAMES)
    assert shown["Data SHA-256"] == "; ".join(f"{n}: {s}" for n, s in bundles.items())

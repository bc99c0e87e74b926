"""Safe to publish: a cohort file's labels are shown as text on every page, in every caption,
figure and download, and the patient rows and names of the file never reach the site.

All on one book built from the synthetic cohort with hostile group labels (HTML, Markdown,
MyST and spreadsheet syntax) and an extra column of patient names.
"""

import csv
import html
import re
import zipfile
from html.parser import HTMLParser

import matplotlib.pyplot as plt
import openpyxl
import pandas as pd
from matplotlib import cbook

from bridge_hsct.cohort.endpoints import derive
from bridge_hsct.paths import DEFAULT_DATA
from bridge_hsct.render.disclosure import NO_SUPPRESSION
from bridge_hsct.render.escaping import FORMULA_START, markdown_code, markdown_text
from bridge_hsct.render.figures import km_panel
from conftest import HOSTILE_LABELS, SECRET_NAME, path_text, site_files

LABELS = list(HOSTILE_LABELS.values())
#: Pages that name the groups in their text, captions or tables.
GROUP_PAGES = ["baseline", "results", "os_pfs", "grfs", "nrm", "gvhd",
               "engraftment_infection", "iptw"]
NUMBER = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")


class Elements(HTMLParser):
    """Every start tag with its attributes, and the text inside script elements."""

    def __init__(self):
        super().__init__()
        self.tags, self.scripts, self._in_script = [], [], False

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag):
        self._in_script = False

    def handle_data(self, data):
        if self._in_script:
            self.scripts.append(data)


def visible_text(page) -> str:
    raw = page.read_text(encoding="utf-8")
    raw = re.sub(r"<(script|style)\b.*?</\1>", " ", raw, flags=re.S)
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", raw)))


def elements_made(page, markup=("<em>A</em>", "<em>u</em>", "<em>x</em>")) -> list[str]:
    """What the hostile labels made of `page`: handlers or links that run code, the planted
    image, scripts calling alert, or `markup` their Markdown would produce."""
    parser = Elements()
    raw = page.read_text(encoding="utf-8")
    parser.feed(raw)
    made = []
    for tag, attrs in parser.tags:
        if any("alert" in (v or "") for k, v in attrs.items() if k.startswith("on")):
            made.append(f"{tag} with a handler")
        if (attrs.get("href") or "").lower().startswith("javascript:"):
            made.append(f"{tag} linking to javascript:")
        if tag == "img" and attrs.get("src") == "x":
            made.append("the planted image")
    made += ["a script calling alert" for script in parser.scripts if "alert(" in script]
    return made + [m for m in markup if m in raw]


def test_no_label_becomes_an_element_on_any_page(hostile_site):
    pages = sorted(p for p in hostile_site.rglob("*.html") if "_static" not in p.parts)
    assert len(pages) > 10
    for page in pages:
        made = elements_made(page, ("<em>A</em>", "<em>u</em>", "<em>x</em>",
                                    ">audit</span></a>"))
        assert not made, (page.name, made)


def test_labels_read_exactly_as_written_on_every_group_page(hostile_site):
    for name in GROUP_PAGES:
        text = visible_text(hostile_site / f"{name}.html")
        for label in LABELS:
            assert label in text, (name, label)
    # the substitution inside the label was not replaced by the data file's name
    assert "hostile.csv`" not in visible_text(hostile_site / "baseline.html")


def test_figure_captions_and_alt_texts_keep_the_labels_as_text(hostile_site):
    page = (hostile_site / "os_pfs.html").read_text(encoding="utf-8")
    captions = re.findall(r'<figcaption>(.*?)</figcaption>', page, flags=re.S)
    assert captions
    by_group = [html.unescape(re.sub(r"<[^>]+>", "", c)) for c in captions]
    assert any(all(label in c for label in LABELS) for c in by_group)
    alts = [html.unescape(a) for a in re.findall(r'<img alt="([^"]*)"', page)]
    assert any(LABELS[0] in a for a in alts)


def test_a_label_is_never_mathematics_or_hidden_in_a_figure():
    data = pd.read_csv(DEFAULT_DATA)
    groups = data["arm"].map({"CAR-T": "$x$ costs $5", "Blinatumomab": "_hidden"})
    fig = km_panel(derive(data, "os"), groups, ["$x$ costs $5", "_hidden"],
                   kind="survival", title="A  $y$", ylabel="OS", disclosure=NO_SUPPRESSION)
    texts = [t.get_text() for ax in fig.axes for t in ax.get_yticklabels()]
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    title = fig.axes[0].get_title(loc="left")
    plt.close(fig)
    for shown in (*texts, *legend, title):
        assert not cbook.is_math_text(shown), shown
    assert len(legend) == 2 and any("_hidden" in t for t in legend)


def test_markdown_escaping_covers_every_syntax_character():
    assert markdown_text("<b>*x*</b>\n[y](z)") == r"\<b\>\*x\*\<\/b\> \[y\]\(z\)"
    assert markdown_text("{{ a }} {ref}`b` $c$ | d") == \
        r"\{\{ a \}\} \{ref\}\`b\` \$c\$ \| d"
    assert markdown_code("a`b") == "``a`b``"
    assert markdown_code("`x") == "`` `x ``"


def test_downloads_run_no_formula(hostile_site):
    quoted = 0
    for path in site_files(hostile_site):
        if path.suffix == ".csv":
            with open(path, newline="", encoding="utf-8") as f:
                for row in csv.reader(f):
                    for cell in row:
                        assert not (cell.startswith(FORMULA_START) and not NUMBER.match(cell)), \
                            (path.name, cell)
                        quoted += cell.startswith("'=HYPERLINK")
        elif path.suffix == ".xlsx":
            with zipfile.ZipFile(path) as book:
                for member in book.namelist():
                    if member.startswith("xl/worksheets/"):
                        assert b"<f>" not in book.read(member), (path.name, member)
    assert quoted, "the label is in the downloads, as text"
    workbook = next(p for p in site_files(hostile_site) if p.name == "table1.xlsx")
    cells = [c for sheet in openpyxl.load_workbook(workbook).worksheets  # shown, and tidy
             for row in sheet.iter_rows() for c in row]
    assert any(c.value == LABELS[0] and c.data_type == "s" for c in cells), \
        "the label is a text cell, exactly as written"


def test_no_patient_name_or_row_reaches_the_site(hostile_site):
    for path in site_files(hostile_site):
        assert SECRET_NAME not in path_text(path), path.name

"""Every download says where its numbers come from (issue 14, item 8).

A figure (PNG and SVG) or a table (CSV and XLSX) saved from a chapter of the bundled synthetic
cohort says that the data are synthetic; saved from a centre's cohort, it names the file and
its SHA-256 prefix. The label comes from the chapter's data path, passed to the save
functions, never from a global: two chapters on two cohorts in one process keep their own.
"""

from __future__ import annotations

import re
from types import SimpleNamespace

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from openpyxl import load_workbook  # noqa: E402
from PIL import Image  # noqa: E402

from bridge_hsct.paper.panels import GROUPS, PanelEngine, figure_panel  # noqa: E402
from bridge_hsct.paths import DEFAULT_DATA, sha256  # noqa: E402
from bridge_hsct.render.data_label import (  # noqa: E402
    SYNTHETIC_LABEL,
    data_label,
    destination,
    sidecar,
)
from bridge_hsct.render.disclosure import NO_SUPPRESSION
from bridge_hsct.render.figures import save_figure  # noqa: E402
from bridge_hsct.render.tables import (  # noqa: E402
    NOTES_SHEET,
    SHOWN_SHEET,
    Table,
    download_markdown,
    save_table,
)


def chapter(path, out):
    """What the save functions read of a chapter: its output folder, data path and
    disclosure."""
    return SimpleNamespace(output_dir=out, data_path=str(path), disclosure=NO_SUPPRESSION)


@pytest.fixture
def centre_copy(tmp_path):
    """A centre's cohort: the bundled rows with one byte changed, under another name."""
    path = tmp_path / "centre <b>2024<b>.csv"
    path.write_bytes(DEFAULT_DATA.read_bytes() + b"\n")
    return path


def test_the_label_comes_from_the_data_path(centre_copy):
    assert data_label(DEFAULT_DATA) == SYNTHETIC_LABEL
    assert "Synthetic data" in SYNTHETIC_LABEL and "not patient data" in SYNTHETIC_LABEL.lower()
    own = data_label(centre_copy)
    assert centre_copy.name in own and sha256(centre_copy)[:12] in own
    assert "ynthetic" not in own
    assert data_label("") is None
    folder, label = destination("somewhere")
    assert label is None and folder.name == "somewhere"


def svg_text(path) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", path.read_text(encoding="utf-8")).split())


def drawn_figure():
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.step([0, 1, 2], [1, 0.8, 0.6], where="post")
    ax.set_title("A  Overall survival")
    return fig


def test_a_figure_of_the_synthetic_cohort_says_so_in_svg_text_and_png(tmp_path):
    fig = drawn_figure()
    before = fig.axes[0].get_position().height * fig.get_size_inches()[1]
    files = save_figure(fig, chapter(DEFAULT_DATA, tmp_path), "figure1c")
    plt.close(fig)
    assert "Synthetic data: computed from a synthetic cohort" in svg_text(files["svg"])
    assert 'id="data-label"' in files["svg"].read_text(encoding="utf-8")
    png = Image.open(files["png"])
    assert png.text.get("Description") == SYNTHETIC_LABEL
    # the strip is added under the figure: the plot keeps its size in inches
    after = fig.axes[0].get_position().height * fig.get_size_inches()[1]
    assert after == pytest.approx(before)
    assert png.size[1] > 3 * 200  # taller than the 3-inch figure at 200 dpi


def test_a_figure_saved_to_a_bare_folder_has_no_label(tmp_path):
    fig = drawn_figure()
    files = save_figure(fig, tmp_path, "plain")
    plt.close(fig)
    assert "ynthetic" not in svg_text(files["svg"])
    assert "Description" not in Image.open(files["png"]).text


def test_a_centre_s_figure_names_its_file_escaped_in_the_plot(tmp_path, centre_copy):
    fig = drawn_figure()
    files = save_figure(fig, chapter(centre_copy, tmp_path), "f")
    plt.close(fig)
    text = files["svg"].read_text(encoding="utf-8")
    assert sha256(centre_copy)[:12] in text
    assert "<b>2024<b>" not in text  # the file's name is text, not markup


def table():
    display = pd.DataFrame({"Characteristic": ["Age"], "All (n = 36)": ["27.5"], "P value": [""],
                            "Test": [""], "indent": [0]})
    numbers = pd.DataFrame({"variable": ["age_years"], "median": [27.5]})
    return Table(display, numbers, ["Medians with ranges."], disclosure=NO_SUPPRESSION)


def test_a_table_of_the_synthetic_cohort_has_a_notes_sheet_and_a_csv_sidecar(tmp_path):
    csv = table().save(chapter(DEFAULT_DATA, tmp_path), "table1")
    # the CSV stays machine-readable: the header on its first line, nothing else added
    assert csv.read_text(encoding="utf-8").splitlines()[0] == "variable,median"
    assert list(pd.read_csv(csv).columns) == ["variable", "median"]
    note = sidecar(csv)
    assert note.name == "table1.csv.txt"
    assert SYNTHETIC_LABEL in note.read_text(encoding="utf-8")
    book = load_workbook(csv.with_suffix(".xlsx"))
    assert book.sheetnames[0] == SHOWN_SHEET and book.sheetnames[-1] == NOTES_SHEET
    assert book[NOTES_SHEET]["A2"].value == SYNTHETIC_LABEL
    # the page's download line links the sidecar, so that the site ships it
    line = download_markdown(csv, "Table 1").data
    assert "table1.csv.txt" in line


def test_an_unlabelled_table_loses_an_old_sidecar(tmp_path):
    csv = save_table(table().numbers, chapter(DEFAULT_DATA, tmp_path), "t")
    assert sidecar(csv).is_file()
    csv = save_table(table().numbers, tmp_path, "t", disclosure=NO_SUPPRESSION)
    assert not sidecar(csv).is_file()
    assert load_workbook(csv.with_suffix(".xlsx")).sheetnames == ["t"]
    assert "csv.txt" not in download_markdown(csv, "it").data


def test_a_label_formula_stays_text_in_the_workbook(tmp_path):
    csv = save_table(table().numbers, tmp_path, "t", label="=HYPERLINK(\"x\")",
                     disclosure=NO_SUPPRESSION)
    cell = load_workbook(csv.with_suffix(".xlsx"))[NOTES_SHEET]["A2"]
    assert cell.data_type == "s" and cell.value.startswith("'=")


def test_two_chapters_on_two_cohorts_keep_their_own_labels(tmp_path, centre_copy, data):
    """The engine takes its label from the chapter it was made for: no global between."""
    spec = figure_panel("1", "C", "os", GROUPS)
    groups = sorted(data["arm"].unique())
    out = {}
    for name, path in [("reference", DEFAULT_DATA), ("centre", centre_copy)]:
        ch = SimpleNamespace(data=data, group_col="arm", groups=groups, landmark_months=24.0,
                             alpha=0.05, output_dir=tmp_path / name, data_path=str(path),
                             group_label="bridging therapy", disclosure=NO_SUPPRESSION)
        out[name] = PanelEngine.for_chapter(ch).panel(spec).files
    assert "Synthetic data" in svg_text(out["reference"]["svg"])
    assert "Synthetic data" not in svg_text(out["centre"]["svg"])
    assert sha256(centre_copy)[:12] in svg_text(out["centre"]["svg"])


@pytest.fixture
def data():
    from bridge_hsct.cohort.validate import load_cohort

    return load_cohort(DEFAULT_DATA)


#: Downloads allowed to go unlabelled: none (the calibration page labels its report
#: explicitly, as it is always about the synthetic cohort).
PENDING: set[str] = set()


def test_every_download_of_a_reference_build_is_labelled(built_site):
    """In the built site, each downloaded figure and table says the data are synthetic
    (Sphinx puts each download in its own folder: a CSV's sidecar is found by name)."""
    downloads = built_site / "_downloads"
    files = [p for p in downloads.rglob("*") if p.suffix in {".png", ".svg", ".csv", ".xlsx"}]
    sidecars = {p.name for p in downloads.rglob("*.csv.txt")}
    assert files
    unlabelled = set()
    for path in files:
        if path.name in {"literature_context.csv", "synthetic_cohort.csv"}:
            continue  # the published figures, and the cohort itself: not computed tables
        if path.suffix == ".svg":
            ok = SYNTHETIC_LABEL.split(":")[0] in svg_text(path)
        elif path.suffix == ".png":
            ok = Image.open(path).text.get("Description") == SYNTHETIC_LABEL
        elif path.suffix == ".xlsx":
            ok = NOTES_SHEET in load_workbook(path, read_only=True).sheetnames
        else:
            ok = f"{path.name}.txt" in sidecars
        if not ok:
            unlabelled.add(path.name)
    assert unlabelled <= PENDING, sorted(unlabelled - PENDING)
    labelled = {p.name for p in files} - unlabelled
    assert {"figure1a.png", "figure1c.svg", "figure4e.png", "results_numbers.csv",
            "synthetic_cohort_calibration.csv", "synthetic_cohort_calibration.xlsx"} <= labelled


def test_a_staged_cohort_is_labelled_with_the_file_it_was_made_from(tmp_path, centre_copy):
    from bridge_hsct.render.data_label import write_source_note

    staged = tmp_path / "private" / "cohort.csv"
    staged.parent.mkdir()
    staged.write_bytes(centre_copy.read_bytes()[:-1] + b"\n\n")  # another file's bytes
    assert "cohort.csv" in data_label(staged)
    write_source_note(staged, centre_copy)
    label = data_label(staged)
    assert centre_copy.name in label and sha256(centre_copy)[:12] in label
    assert "cohort.csv" not in label and sha256(staged)[:12] not in label

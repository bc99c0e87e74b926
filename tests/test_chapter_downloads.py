"""The baseline and engraftment chapters, each run alone with papermill on a cohort without
most optional columns: no empty download is written and no link points to a missing file;
the paper's own P values are not shown about another cohort."""

import re

import jupytext
import nbformat
import papermill
import pytest

from bridge_hsct.paths import NOTEBOOKS
from conftest import small_cohort

DOWNLOAD_LINK = re.compile(r"\{download\}`[^`<]*<([^>]+)>`")
CHAPTERS = ["baseline", "engraftment_infection"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Each chapter executed in its own folder: (folder, executed notebook)."""
    results = {}
    for name in CHAPTERS:
        folder = tmp_path_factory.mktemp(name)
        data = folder / "our cohort.csv"
        small_cohort().to_csv(data, index=False)
        notebook = folder / f"{name}.ipynb"
        jupytext.write(jupytext.read(NOTEBOOKS / f"{name}.md"), notebook)
        executed = folder / f"{name}-out.ipynb"
        papermill.execute_notebook(
            str(notebook), str(executed), kernel_name="python3", progress_bar=False,
            cwd=str(folder), parameters={"data_path": str(data),
                                         "output_dir": f"outputs/{name}"})
        results[name] = folder, nbformat.read(executed, as_version=4)
    return results


def page_markdown(notebook) -> str:
    """The Markdown a reader gets: the Markdown cells and the Markdown outputs."""
    parts = [c.source for c in notebook.cells if c.cell_type == "markdown"]
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            parts.append(output.get("data", {}).get("text/markdown", ""))
    return "\n".join(parts)


@pytest.mark.parametrize("name", CHAPTERS)
def test_no_download_is_empty_or_missing(runs, name):
    folder, notebook = runs[name]
    written = [p for p in (folder / "outputs").rglob("*") if p.is_file()]
    assert written, "the chapter wrote nothing"
    assert [p.name for p in written if p.stat().st_size < 2] == []
    assert [p.name for p in written if p.suffix == ".csv"
            and len(p.read_text().splitlines()) < 2] == []
    links = DOWNLOAD_LINK.findall(page_markdown(notebook))
    assert links, "no download link at all"
    assert [link for link in links if not (folder / link).is_file()] == []


def test_tables_without_columns_say_what_they_need(runs):
    folder, notebook = runs["engraftment_infection"]
    text = page_markdown(notebook)
    # the cohort has GVHD lines for Table 3 but no CRS, ICANS or engraftment column
    assert (folder / "outputs/engraftment_infection/table3.csv").is_file()
    assert not (folder / "outputs/engraftment_infection/supplementary_table1.csv").exists()
    assert "Nothing to download for Supplementary Table 1" in text
    assert "`crs_grade`" in text and "`icans`" in text
    assert "Nothing to download for the estimates of Supplementary Figure 5" in text
    assert "`neutrophil_engraftment`" in text


def test_the_papers_p_values_are_left_out_on_another_cohort(runs):
    folder, notebook = runs["engraftment_infection"]
    text = page_markdown(notebook)
    html = "".join(o.get("data", {}).get("text/html", "") for c in notebook.cells
                   for o in c.get("outputs", []))
    assert "Table 3 P values from the published counts" not in html
    assert "0.660" not in html  # the paper's first printed P value
    assert "not this cohort" in text
    assert not (folder / "outputs/engraftment_infection/table3_published_p_values.csv").exists()


def test_the_group_noun_is_not_the_papers_on_another_cohort(runs):
    baseline = page_markdown(runs["baseline"][1])
    assert "how they were transplanted, by group." in baseline
    engraftment = page_markdown(runs["engraftment_infection"][1])
    assert "infections by group)" in engraftment
    assert "platelet engraftment by group, with death" in engraftment
    for name in CHAPTERS:
        static = (NOTEBOOKS / f"{name}.md").read_text(encoding="utf-8")
        assert "by bridging" not in static

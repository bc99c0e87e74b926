"""A chapter runs on its own with papermill, as the README shows, on a centre's own file."""

from pathlib import Path

import jupytext
import nbformat
import papermill

from conftest import small_cohort


def test_chapter_runs_directly_with_papermill(tmp_path):
    data = tmp_path / "our cohort.csv"
    small_cohort().to_csv(data, index=False)
    source = jupytext.read(Path(__file__).resolve().parents[1] / "notebooks" / "baseline.md")
    notebook = tmp_path / "baseline.ipynb"
    jupytext.write(source, notebook)
    executed = tmp_path / "baseline-out.ipynb"
    papermill.execute_notebook(
        str(notebook), str(executed), kernel_name="python3", progress_bar=False,
        parameters={"data_path": str(data), "output_dir": str(tmp_path / "outputs")},
    )
    outputs = "".join(str(o) for c in nbformat.read(executed, as_version=4).cells
                      for o in c.get("outputs", []))
    # headers keep "(n = 3)" whole with no-break spaces (escaped in the outputs' repr)
    outputs = outputs.replace("\\xa0", " ").replace("\u00a0", " ")
    assert "Alpha (n = 3)" in outputs and "Beta (n = 3)" in outputs
    table = (tmp_path / "outputs" / "table1.csv").read_text()
    assert "Alpha" in table and "Beta" in table

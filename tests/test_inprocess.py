"""The in-process papermill engine against papermill's own kernel engine (the reference)."""

import nbformat
import papermill
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

CELLS = [
    new_code_cell("n = 1", metadata={"tags": ["parameters"]}),
    new_markdown_cell("Some *prose* between cells."),
    new_code_cell("print('before', n)\nimport sys\nprint('to stderr', file=sys.stderr)\n"
                  "from IPython.display import Markdown, HTML, display\n"
                  "display(Markdown(f'**{n} patients**'))\nprint('after')"),
    new_code_cell("display(HTML('<b>x</b>'), metadata={'note': 1})\n{'n': n * 2}"),
    new_code_cell("x = n + 1  # no output"),
    new_code_cell("[n] * 3"),
]


def _outputs(notebook) -> list:
    """What the book renders of each code cell: outputs without volatile fields."""
    keep = ("output_type", "name", "text", "data", "metadata", "ename", "evalue")
    return [[{k: o[k] for k in keep if k in o} for o in cell.outputs]
            for cell in notebook.cells if cell.cell_type == "code"
            and "injected-parameters" not in cell.metadata.get("tags", [])]


def _run(tmp_path, cells, engine, **parameters):
    notebook = new_notebook(cells=cells, metadata={"kernelspec": {
        "name": "python3", "display_name": "Python 3", "language": "python"}})
    source = tmp_path / f"in-{engine}.ipynb"
    nbformat.write(notebook, source)
    target = tmp_path / f"out-{engine}.ipynb"
    papermill.execute_notebook(str(source), str(target), parameters=parameters,
                               engine_name=None if engine == "kernel" else engine,
                               kernel_name="python3", progress_bar=False, cwd=str(tmp_path))
    return nbformat.read(target, as_version=4)


def test_outputs_match_the_kernel_engine(tmp_path):
    kernel = _run(tmp_path, CELLS, "kernel", n=7)
    inprocess = _run(tmp_path, CELLS, "inprocess", n=7)
    assert _outputs(inprocess) == _outputs(kernel)
    streams = _outputs(inprocess)[1]
    assert {"output_type": "stream", "name": "stdout", "text": "before 7\n"} in streams
    assert [c.execution_count for c in inprocess.cells if c.cell_type == "code"] == \
        [c.execution_count for c in kernel.cells if c.cell_type == "code"]


@pytest.mark.parametrize("engine", ["kernel", "inprocess"])
def test_a_failing_cell_is_reported_as_papermill_reports_it(tmp_path, engine):
    cells = [new_code_cell("a = 1"), new_code_cell("raise ValueError('bad arm')"),
             new_code_cell("print('never')")]
    with pytest.raises(papermill.PapermillExecutionError) as failure:
        _run(tmp_path, cells, engine)
    assert (failure.value.exec_count, failure.value.ename, failure.value.evalue) == \
        (2, "ValueError", "bad arm")
    written = nbformat.read(tmp_path / f"out-{engine}.ipynb", as_version=4)
    assert written.cells[-1].outputs == [], "cells after the failure do not run"


def test_each_notebook_starts_with_a_fresh_namespace(tmp_path):
    _run(tmp_path, [new_code_cell("leftover = 1")], "inprocess")
    with pytest.raises(papermill.PapermillExecutionError, match="NameError"):
        _run(tmp_path, [new_code_cell("leftover")], "inprocess")

"""A papermill engine that runs a notebook's cells in the calling Python process.

Starting a Jupyter kernel and importing pandas, lifelines, matplotlib and the package costs
about 3 s per notebook, more than most chapters take to compute. The book's builder imports
that stack once and forks a fresh process per chapter, which then executes its notebook with
this engine: same papermill parameters, outputs and failure reporting, no kernel.

Registered with papermill as ``inprocess`` (``papermill --engine inprocess ...``).
"""

from __future__ import annotations

import sys
from contextlib import redirect_stderr, redirect_stdout

from IPython.core.displayhook import DisplayHook
from IPython.core.displaypub import DisplayPublisher
from IPython.core.interactiveshell import InteractiveShell
from nbformat.v4 import new_output
from papermill.engines import Engine
from traitlets.config import Config


class _Outputs(list):
    """A cell's outputs in the order they were produced; text streams are merged."""

    def stream(self, name: str, text: str) -> None:
        if not text:
            return
        if self and self[-1].get("output_type") == "stream" and self[-1]["name"] == name:
            self[-1]["text"] += text
        else:
            self.append(new_output("stream", name=name, text=text))


class _StreamToOutputs:
    """A file-like object writing into the current cell's outputs (stdout or stderr)."""

    def __init__(self, shell: _NotebookShell, name: str):
        self.shell, self.name = shell, name

    def write(self, text: str) -> int:
        self.shell.outputs.stream(self.name, text)
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False


class _CollectDisplays(DisplayPublisher):
    def publish(self, data, metadata=None, source=None, *, transient=None, update=False,
                **kwargs):
        self.shell.outputs.append(new_output("display_data", data=data,
                                             metadata=metadata or {}))

    def clear_output(self, wait=False):
        self.shell.outputs.clear()


class _CollectResult(DisplayHook):
    """The value of a cell's last expression becomes its ``execute_result``."""

    def start_displayhook(self):
        pass

    def write_output_prompt(self):
        pass

    def write_format_data(self, format_dict, md_dict=None):
        self.shell.outputs.append(new_output(
            "execute_result", data=format_dict, metadata=md_dict or {},
            execution_count=self.shell.execution_count))

    def finish_displayhook(self):
        pass


class _NotebookShell(InteractiveShell):
    """An IPython shell whose displays, results, streams and errors become cell outputs.

    It carries the cohorts the build already validated (``validated_cohorts``, a
    :class:`bridge_hsct.cohort.validate.ValidatedCohorts` or None), which
    :func:`bridge_hsct.book.chapter.open_chapter` asks the running shell for.
    """

    def __init__(self, validated_cohorts=None, **kwargs):
        super().__init__(display_pub_class=_CollectDisplays, displayhook_class=_CollectResult,
                         **kwargs)
        self.outputs = _Outputs()
        self.validated_cohorts = validated_cohorts

    def enable_gui(self, gui=None):  # abstract in InteractiveShell; there is no GUI here
        pass

    def _showtraceback(self, etype, evalue, stb):
        self.outputs.append(new_output("error", ename=etype.__name__, evalue=str(evalue),
                                       traceback=stb))

    def run_notebook_cell(self, source: str) -> tuple[_Outputs, bool]:
        """Run one cell; return its outputs and whether it succeeded."""
        self.outputs = _Outputs()
        with redirect_stdout(_StreamToOutputs(self, "stdout")), \
                redirect_stderr(_StreamToOutputs(self, "stderr")):
            result = self.run_cell(source, store_history=True)
        return self.outputs, result.success


class InProcessEngine(Engine):
    """Papermill engine executing code cells with a fresh IPython shell in this process.

    Cells run one after another in a new namespace; the first failing cell stops execution
    and is recorded as papermill records it, so ``papermill.execute_notebook`` raises
    ``PapermillExecutionError`` naming the cell, exactly as with a kernel.

    ``papermill.execute_notebook(..., engine_name="inprocess", validated_cohorts=cohorts)``
    hands the notebook's shell the cohorts the caller validated, so that its chapter does not
    validate them again.
    """

    @classmethod
    def execute_managed_notebook(cls, nb_man, kernel_name, validated_cohorts=None,
                                 **kwargs):
        _NotebookShell.clear_instance()
        # no history database: parallel chapters would contend for ~/.ipython's SQLite file
        shell = _NotebookShell.instance(config=Config({"HistoryManager": {"enabled": False}}),
                                        validated_cohorts=validated_cohorts)
        sys.displayhook = shell.displayhook
        try:
            for index, cell in enumerate(nb_man.nb.cells):
                nb_man.cell_start(cell, index)
                try:
                    if cell.cell_type != "code":
                        continue
                    outputs, success = shell.run_notebook_cell(cell.source)
                    cell.outputs = list(outputs)
                    cell.execution_count = shell.execution_count - 1
                    if not success:
                        nb_man.cell_exception(cell, cell_index=index)
                        break
                finally:
                    nb_man.cell_complete(cell, cell_index=index)
        finally:
            sys.displayhook = sys.__displayhook__
            _NotebookShell.clear_instance()

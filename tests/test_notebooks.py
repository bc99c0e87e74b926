"""The chapters are paired jupytext notebooks whose code passes ruff like the package's.

Each ``notebooks/*.md`` is a MyST Markdown notebook that ``jupytext.toml`` pairs with a
(git-ignored) ``.ipynb``; its code cells are linted by ruff as a notebook (``make lint`` does
the same), and a finding is reported at its line of the Markdown file.
"""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import jupytext
import pytest
from jupytext.config import load_jupytext_config

from bridge_hsct.paths import NOTEBOOKS, ROOT

BIN = Path(sys.executable).parent
MARKDOWN = sorted(NOTEBOOKS.glob("*.md"))


def pairing_problem(path: Path) -> str | None:
    """Why `path` is not a MyST notebook paired with an ``.ipynb``, or None."""
    text = path.read_text(encoding="utf-8")
    if not text.startswith("---\njupytext:"):
        return "no jupytext header (start the file with the header of the other chapters)"
    notebook = jupytext.reads(text, fmt="md")
    representation = notebook.metadata.get("jupytext", {}).get("text_representation", {})
    if representation.get("format_name") != "myst":
        return f"jupytext format is {representation.get('format_name')!r}, not 'myst'"
    if notebook.metadata.get("kernelspec", {}).get("language") != "python":
        return "no Python kernelspec"
    config = load_jupytext_config(str(path.parent))
    formats = config.default_formats(str(path)) if config else None
    if not formats or "ipynb" not in formats or "md:myst" not in formats:
        return f"not paired with an .ipynb by jupytext.toml (formats: {formats})"
    return None


def ruff_findings(path: Path, name: str) -> list[str]:
    """Ruff's findings in the code cells of the MyST notebook `path`, each as
    ``name:line:column: CODE message`` with the line of the Markdown file."""
    text = path.read_text(encoding="utf-8")
    notebook = jupytext.reads(text, fmt="md:myst")
    linted = subprocess.run(
        [BIN / "ruff", "check", "--output-format", "json", "--stdin-filename",
         str(NOTEBOOKS / f"{Path(name).stem}.ipynb"), "-"],
        input=jupytext.writes(notebook, fmt="ipynb"), capture_output=True, text=True,
        cwd=ROOT)
    if linted.returncode not in (0, 1):
        raise RuntimeError(linted.stderr)
    lines = text.splitlines()
    fences = [i for i, line in enumerate(lines) if line.startswith("```{code-cell}")]
    code_cells = [i for i, cell in enumerate(notebook.cells) if cell.cell_type == "code"]
    findings = []
    for finding in json.loads(linted.stdout):
        cell = finding["cell"] - 1  # ruff counts a notebook's cells from 1
        fence = fences[code_cells.index(cell)]
        first = lines.index(notebook.cells[cell].source.splitlines()[0], fence)
        line = first + finding["location"]["row"]
        findings.append(f"{name}:{line}:{finding['location']['column']}: "
                        f"{finding['code']} {finding['message']}")
    return findings


@pytest.mark.parametrize("path", MARKDOWN, ids=lambda p: p.name)
def test_chapter_is_a_paired_myst_notebook(path):
    assert pairing_problem(path) is None, f"{path.name}: {pairing_problem(path)}"


@pytest.mark.parametrize("path", MARKDOWN, ids=lambda p: p.name)
def test_chapter_code_passes_ruff(path):
    findings = ruff_findings(path, f"notebooks/{path.name}")
    assert not findings, "\n".join(findings)


def test_saving_in_jupyter_keeps_both_files_in_step(tmp_path):
    """Syncing (what saving in JupyterLab does) writes the .ipynb, leaves each Markdown file
    as it is, and carries an edit of the .ipynb into the Markdown file."""
    shutil.copy(ROOT / "jupytext.toml", tmp_path)
    shutil.copytree(NOTEBOOKS, tmp_path / "notebooks", ignore=shutil.ignore_patterns("*.ipynb"))
    copies = sorted((tmp_path / "notebooks").glob("*.md"))
    sync = [BIN / "jupytext", "--quiet", "--sync"]
    subprocess.run([*sync, *copies], check=True, cwd=tmp_path)
    for copy in copies:
        assert copy.with_suffix(".ipynb").is_file(), f"{copy.name} not paired"
        original = NOTEBOOKS / copy.name
        assert copy.read_text(encoding="utf-8") == original.read_text(encoding="utf-8"), \
            f"saving {copy.name} in Jupyter would rewrite it"
    paired = copies[0].with_suffix(".ipynb")
    notebook = jupytext.read(paired)
    code = next(cell for cell in notebook.cells if cell.cell_type == "code")
    code.source += "\nedited_in_jupyter = True"
    jupytext.write(notebook, paired)
    subprocess.run([*sync, paired], check=True, cwd=tmp_path)
    assert "edited_in_jupyter = True" in copies[0].read_text(encoding="utf-8")


def test_checks_find_an_unpaired_and_an_unlinted_notebook(tmp_path):
    shutil.copy(ROOT / "jupytext.toml", tmp_path)
    (tmp_path / "notebooks").mkdir()
    plain = tmp_path / "notebooks" / "plain.md"
    plain.write_text("# A page\n\n```{code-cell} ipython3\nx = 1\n```\n", encoding="utf-8")
    assert "no jupytext header" in pairing_problem(plain)

    header = (NOTEBOOKS / "os_pfs.md").read_text(encoding="utf-8").split("\n---\n")[0]
    untidy = tmp_path / "notebooks" / "untidy.md"
    untidy.write_text(f"{header}\n---\n\n# Title\n\n```{{code-cell}} ipython3\n"
                      ":tags: [parameters]\n\nimport os\nimport sys\n\n"
                      "print(sys.argv)\n```\n", encoding="utf-8")
    assert pairing_problem(untidy) is None
    findings = ruff_findings(untidy, "untidy.md")
    # `import os` is on line 17 of the file: the header's 10 lines, then 7 more
    assert findings == ["untidy.md:17:8: F401 `os` imported but unused"]

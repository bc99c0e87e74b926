"""Build the book: validate the data, execute every chapter notebook, render the site.

The site is built in a temporary folder next to the output folder and swapped in only when
every step succeeded, so a failed build never leaves a half-built or overwritten site.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import jupytext
import nbformat
import papermill
import yaml

from .dictionary import dictionary_markdown
from .validate import load_cohort

ROOT = Path(__file__).resolve().parents[2]
BOOK = ROOT / "book"
NOTEBOOKS = ROOT / "notebooks"
CONFIG = ROOT / "_config.yml"
DEFAULT_DATA = ROOT / "data" / "synthetic_cohort.csv"


class BuildError(RuntimeError):
    """A build step failed; the message says which and why."""


@dataclass
class Parameters:
    """The papermill parameters every chapter notebook accepts."""

    data_path: str = str(DEFAULT_DATA)
    group_col: str = "arm"
    group_order: list | None = None  # first group is the reference; default: sorted labels
    landmark_months: float = 24.0
    alpha: float = 0.05
    extra: dict = field(default_factory=dict)

    def for_notebook(self, name: str) -> dict:
        return {"data_path": self.data_path, "group_col": self.group_col,
                "group_order": self.group_order, "landmark_months": self.landmark_months,
                "alpha": self.alpha, "output_dir": f"outputs/{name}", **self.extra}


def sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def is_reference_cohort(path: str | Path) -> bool:
    """Whether `path` holds exactly the bundled synthetic cohort."""
    return DEFAULT_DATA.is_file() and sha256(path) == sha256(DEFAULT_DATA)


def chapters() -> list[str]:
    """Chapter notebooks listed in the table of contents, in order."""
    toc = yaml.safe_load((BOOK / "_toc.yml").read_text())
    names = []
    for part in toc.get("parts", [{"chapters": toc.get("chapters", [])}]):
        for entry in part.get("chapters", []):
            name = entry.get("file", "")
            if (NOTEBOOKS / f"{name}.md").is_file():
                names.append(name)
    return names


def _config(data_path: str) -> dict:
    config = yaml.safe_load(CONFIG.read_text())
    synthetic = is_reference_cohort(data_path)
    name = Path(data_path).name
    if synthetic:
        banner = ("```{admonition} Synthetic data\n:class: warning\nEvery number on this page "
                  "is computed from a **synthetic cohort** reconstructed from the paper's "
                  "published aggregates. It is not patient data and must not be cited as such."
                  "\n```")
    else:
        banner = (f"```{{admonition}} Data\n:class: note\nThis book was computed from "
                  f"`{name}` (SHA-256 `{sha256(data_path)[:12]}…`), not from the paper's "
                  "patients.\n```")
    sphinx = config.setdefault("sphinx", {}).setdefault("config", {})
    sphinx["myst_substitutions"] = {"data_banner": banner, "data_file": name}
    return config


def _existing_toc(src: Path) -> dict:
    """The table of contents without the chapters whose page does not exist yet."""
    toc = yaml.safe_load((BOOK / "_toc.yml").read_text())
    for part in toc.get("parts", []):
        part["chapters"] = [c for c in part.get("chapters", [])
                            if (src / f"{c['file']}.md").is_file()
                            or (NOTEBOOKS / f"{c['file']}.md").is_file()]
    toc["parts"] = [p for p in toc.get("parts", []) if p["chapters"]]
    return toc


def _stage_sources(staging: Path, data_path: str) -> Path:
    src = staging / "src"
    shutil.copytree(BOOK, src)
    (src / "data_dictionary.md").write_text(dictionary_markdown(), encoding="utf-8")
    (src / "_toc.yml").write_text(yaml.safe_dump(_existing_toc(src), sort_keys=False))
    (src / "_config.yml").write_text(yaml.safe_dump(_config(data_path), sort_keys=False))
    return src


def _execute(name: str, src: Path, params: Parameters) -> None:
    notebook = jupytext.read(NOTEBOOKS / f"{name}.md")
    target = src / f"{name}.ipynb"
    jupytext.write(notebook, target)
    try:
        papermill.execute_notebook(
            str(target), str(target), parameters=params.for_notebook(name), cwd=str(src),
            kernel_name="python3", progress_bar=False, log_output=False,
        )
    except papermill.PapermillExecutionError as exc:
        raise BuildError(
            f"notebook notebooks/{name}.md failed in cell {exc.exec_count} "
            f"({exc.ename}: {exc.evalue})") from None
    executed = nbformat.read(target, as_version=4)
    for cell in executed.cells:  # the parameters papermill injects are build plumbing
        tags = cell.metadata.get("tags", [])
        if "injected-parameters" in tags:
            cell.metadata["tags"] = [*tags, "remove-cell"]
    nbformat.write(executed, target)


def _render(src: Path, staging: Path) -> Path:
    jupyter_book = Path(sys.executable).parent / "jupyter-book"
    command = [str(jupyter_book), "build", str(src), "--path-output", str(staging),
               "--config", str(src / "_config.yml"), "--toc", str(src / "_toc.yml"),
               "-W", "-n", "--keep-going"]
    run = subprocess.run(command, capture_output=True, text=True)
    if run.returncode != 0:
        tail = "\n".join((run.stdout + run.stderr).strip().splitlines()[-25:])
        raise BuildError(f"Jupyter Book failed (warnings count as errors):\n{tail}")
    return staging / "_build" / "html"


def _swap(new_site: Path, out: Path) -> None:
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old-{int(time.time() * 1000)}")
        out.rename(old)
    new_site.rename(out)
    if old is not None:
        shutil.rmtree(old)


def build(out: str | Path, params: Parameters, log=print) -> Path:
    """Build the whole book from ``params.data_path`` into the folder `out`.

    Raises
    ------
    bridge_hsct.validate.CohortError
        If the data do not conform (nothing is built).
    BuildError
        If a notebook or the HTML build fails (the previous site is left untouched).
    """
    out = Path(out).resolve()
    started = time.perf_counter()
    params.data_path = str(Path(params.data_path).resolve())
    load_cohort(params.data_path, params.group_col)
    log(f"data: {params.data_path} is valid")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.build-", dir=out.parent))
    try:
        src = _stage_sources(staging, params.data_path)
        names = chapters()
        for i, name in enumerate(names, 1):
            t0 = time.perf_counter()
            log(f"[{i}/{len(names)}] {name} ...", end=" ", flush=True)
            _execute(name, src, params)
            log(f"done in {time.perf_counter() - t0:.1f} s")
        log("rendering HTML with Jupyter Book ...", end=" ", flush=True)
        site = _render(src, staging)
        (site / "build.json").write_text(json.dumps({
            "data_sha256": sha256(params.data_path), "parameters": params.for_notebook("*"),
        }, indent=2))
        log("done")
        _swap(site, out)
    except BaseException:
        log("")
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log(f"site written to {out} in {time.perf_counter() - started:.1f} s")
    return out

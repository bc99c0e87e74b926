"""Build the book: validate the data, execute every chapter notebook, render the site.

The site is built in a temporary folder next to the output folder and swapped in only when
every step succeeded, so a failed build never leaves a half-built or overwritten site.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import multiprocessing
import os
import pkgutil
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import jupytext
import nbformat
import papermill
import yaml

from . import __version__
from .dictionary import dictionary_markdown
from .provenance import provenance_markdown
from .validate import load_cohort, remember_cohort

ROOT = Path(__file__).resolve().parents[2]
BOOK = ROOT / "book"
NOTEBOOKS = ROOT / "notebooks"
CONFIG = ROOT / "_config.yml"
DEFAULT_DATA = ROOT / "data" / "synthetic_cohort.csv"
DEFAULT_CACHE = ROOT / "_build" / "notebook-cache"


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
    cutoff_date: str | None = None  # data cut-off for files with calendar dates
    min_cell_count: int = 0  # counts of 1 to k - 1 shown as "< k" (0: off)
    extra: dict = field(default_factory=dict)

    def for_notebook(self, name: str) -> dict:
        return {"data_path": self.data_path, "group_col": self.group_col,
                "group_order": self.group_order, "landmark_months": self.landmark_months,
                "alpha": self.alpha, "output_dir": f"outputs/{name}",
                "min_cell_count": self.min_cell_count, **self.extra}


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
    repository = os.environ.get("BRIDGE_HSCT_REPOSITORY_URL")
    if repository:  # where the public copy lives: enables the repository and Binder buttons
        config["repository"] = {"url": repository, "branch": "main",
                                "path_to_book": "notebooks"}
        config["html"]["use_repository_button"] = True
        config["launch_buttons"] = {"binderhub_url": "https://mybinder.org",
                                    "notebook_interface": "jupyterlab"}
    sphinx = config.setdefault("sphinx", {}).setdefault("config", {})
    sphinx["myst_substitutions"] = {"data_banner": banner, "data_file": name,
                                    "audit_score": ""}
    return config


GENERATED_PAGES = {"data_dictionary", "provenance"}


def _existing_toc(src: Path) -> dict:
    """The table of contents without the chapters whose page does not exist yet."""
    toc = yaml.safe_load((BOOK / "_toc.yml").read_text())
    for part in toc.get("parts", []):
        part["chapters"] = [c for c in part.get("chapters", [])
                            if c["file"] in GENERATED_PAGES
                            or (src / f"{c['file']}.md").is_file()
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


def _digest(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def package_fingerprint() -> str:
    """Hash of the package's source and the pinned environment: code a notebook depends on."""
    files = sorted((ROOT / "src" / "bridge_hsct").rglob("*.py"))
    lock = ROOT / "requirements.lock"
    return _digest(__version__, [(f.name, sha256(f)) for f in files],
                   sha256(lock) if lock.is_file() else "")


def notebook_key(name: str, params: Parameters, data_sha: str, fingerprint: str) -> str:
    """Cache key of an executed notebook: its text, the data's content, the parameters and
    the package. (Jupyter Book's own cache looks only at the notebook's code cells.)"""
    parameters = {k: v for k, v in params.for_notebook(name).items() if k != "data_path"}
    text = (NOTEBOOKS / f"{name}.md").read_text(encoding="utf-8")
    return _digest(name, text, data_sha, parameters, fingerprint)


def _execute(name: str, src: Path, params: Parameters, cache: Path | None, key: str) -> bool:
    """Execute one chapter into `src` (or copy it from the cache); True if it was cached."""
    entry = cache / f"{name}-{key[:20]}" if cache else None
    target = src / f"{name}.ipynb"
    outputs = Path("outputs") / name
    if entry and entry.is_dir():
        shutil.copy2(entry / target.name, target)
        if (entry / outputs).is_dir():
            shutil.copytree(entry / outputs, src / outputs, dirs_exist_ok=True)
        return True
    notebook = jupytext.read(NOTEBOOKS / f"{name}.md")
    jupytext.write(notebook, target)
    try:
        # cells run in this already-warm process, not in a fresh kernel that would
        # re-import the scientific stack for every chapter
        papermill.execute_notebook(
            str(target), str(target), parameters=params.for_notebook(name), cwd=str(src),
            kernel_name="python3", engine_name="inprocess", progress_bar=False,
            log_output=False,
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
    if entry:
        _store(entry, target, src / outputs, outputs)
    return False


def _store(entry: Path, notebook: Path, outputs: Path, relative: Path) -> None:
    """Put an executed notebook and its output files in the cache, atomically."""
    entry.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=f".{entry.name}-", dir=entry.parent))
    shutil.copy2(notebook, partial / notebook.name)
    if outputs.is_dir():
        shutil.copytree(outputs, partial / relative)
    try:
        partial.rename(entry)
    except OSError:  # another build stored the same entry meanwhile
        shutil.rmtree(partial, ignore_errors=True)


def _execute_all(names: list[str], src: Path, params: Parameters, cache: Path | None,
                 keys: dict, log) -> None:
    """Execute the chapters in parallel, one process per core; stop at the first failure.

    Every chapter gets a process of its own, forked from this one after the analysis stack
    is imported: no chapter can see another's state (matplotlib settings, the working
    folder papermill changes), and none pays for the imports again.
    """
    workers = max(1, min(len(names), os.cpu_count() or 1))
    _import_analysis_stack()
    tasks = [(_execute, n, src, params, cache, keys[n]) for n in names]
    with multiprocessing.get_context("fork").Pool(workers, maxtasksperchild=1) as pool:
        results = pool.imap_unordered(_timed, tasks)
        for done, (name, cached, seconds) in enumerate(results, 1):
            how = "from cache" if cached else f"executed in {seconds:.1f} s"
            log(f"[{done}/{len(names)}] {name}: {how}")


def _import_analysis_stack() -> None:
    """Import what the chapters use once, so every forked worker starts with it loaded."""
    os.environ.setdefault("MPLBACKEND", "agg")
    import bridge_hsct

    for module in pkgutil.walk_packages(bridge_hsct.__path__, "bridge_hsct."):
        if not module.name.endswith("__main__"):
            importlib.import_module(module.name)
    for name in ("matplotlib.pyplot", "seaborn", "IPython.display"):
        importlib.import_module(name)


def _timed(task: tuple) -> tuple[str, bool, float]:
    function, name, *args = task
    t0 = time.perf_counter()
    cached = function(name, *args)
    return name, cached, time.perf_counter() - t0


def _add_audit_score(src: Path) -> None:
    """Put the audit's headline score into the landing page's substitution."""
    score_file = src / "outputs" / "audit" / "score.json"
    config = yaml.safe_load((src / "_config.yml").read_text())
    text = ""
    if score_file.is_file():
        score = json.loads(score_file.read_text())
        if score.get("checked"):
            text = (f"**Reproduction audit:** {int(score['reproduced'])} of "
                    f"{int(score['checked'])} published numbers that the data can recompute "
                    f"({100 * score['score']:.1f}%) are reproduced; see {{ref}}`audit`.")
    config["sphinx"]["config"]["myst_substitutions"]["audit_score"] = text
    (src / "_config.yml").write_text(yaml.safe_dump(config, sort_keys=False))


def _render(src: Path, staging: Path) -> tuple[Path, float]:
    """Run Jupyter Book on the staged sources; the HTML folder and Jupyter Book's peak
    memory (GB)."""
    jupyter_book = Path(sys.executable).parent / "jupyter-book"
    command = [str(jupyter_book), "build", str(src), "--path-output", str(staging),
               "--config", str(src / "_config.yml"), "--toc", str(src / "_toc.yml"),
               "-W", "-n", "--keep-going"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)  # wait4: this child's own peak memory
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        tail = "\n".join(output.strip().splitlines()[-25:])
        raise BuildError(f"Jupyter Book failed (warnings count as errors):\n{tail}")
    return staging / "_build" / "html", usage.ru_maxrss / 1024**2


def _peak_gb(who: int) -> float:
    """Largest resident memory so far (GB) of this process or of its largest child."""
    return resource.getrusage(who).ru_maxrss / 1024**2


def _swap(new_site: Path, out: Path) -> None:
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old-{int(time.time() * 1000)}")
        out.rename(old)
    new_site.rename(out)
    if old is not None:
        shutil.rmtree(old)


def _tree_digest(folder: Path) -> str:
    return _digest([(str(f.relative_to(folder)), sha256(f))
                    for f in sorted(folder.rglob("*")) if f.is_file()])


def _built_key(out: Path) -> str | None:
    try:
        return json.loads((out / "build.json").read_text())["site_key"]
    except (OSError, ValueError, KeyError):
        return None


def build(out: str | Path, params: Parameters, log=print,
          cache: str | Path | None = DEFAULT_CACHE) -> Path:
    """Build the whole book from ``params.data_path`` into the folder `out`.

    Chapters run in parallel, and an executed chapter is reused from `cache` (None: no
    cache) while its notebook, the data's content, the parameters and the package are
    unchanged. When nothing changed at all, the existing site is kept as it is.

    Raises
    ------
    bridge_hsct.validate.CohortError
        If the data do not conform (nothing is built).
    BuildError
        If a notebook or the HTML build fails (the previous site is left untouched).
    """
    out = Path(out).resolve()
    cache = Path(cache).resolve() if cache else None
    started = time.perf_counter()
    source = str(Path(params.data_path).resolve())
    cohort = load_cohort(source, params.group_col, params.cutoff_date)
    stages = {"validate": {"seconds": time.perf_counter() - started,
                           "peak_gb": _peak_gb(resource.RUSAGE_SELF)}}
    log(f"data: {source} is valid ({len(cohort)} patients)")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.build-", dir=out.parent))
    try:
        src = _stage_sources(staging, source)
        if not is_reference_cohort(source):
            # chapters read the validated cohort in days, whatever the input's format
            params = replace(params, data_path=str(staging / "cohort.csv"))
            cohort.to_csv(params.data_path, index=False, date_format="%Y-%m-%d")
            remember_cohort(params.data_path, params.group_col, cohort)  # reads back equal
        else:
            params = replace(params, data_path=source)
        names = chapters()
        data_sha, fingerprint = sha256(params.data_path), package_fingerprint()
        keys = {n: notebook_key(n, params, data_sha, fingerprint) for n in names}
        site_key = _digest(keys, _tree_digest(src))
        if _built_key(out) == site_key:
            log(f"nothing changed: {out} is up to date")
            return out
        (src / "provenance.md").write_text(provenance_markdown(
            source, sha256(source), params.for_notebook("*"), is_reference_cohort(source)),
            encoding="utf-8")
        t0 = time.perf_counter()
        _execute_all(names, src, params, cache, keys, log)
        stages["execute"] = {"seconds": time.perf_counter() - t0,
                             "peak_gb": max(_peak_gb(resource.RUSAGE_SELF),
                                            _peak_gb(resource.RUSAGE_CHILDREN))}
        _add_audit_score(src)
        log("rendering HTML with Jupyter Book ...")
        t0 = time.perf_counter()
        site, render_peak = _render(src, staging)
        stages["render"] = {"seconds": time.perf_counter() - t0, "peak_gb": render_peak}
        (site / "build.json").write_text(json.dumps({
            "site_key": site_key, "data_sha256": data_sha,
            "parameters": {k: v for k, v in params.for_notebook("*").items()
                           if k != "data_path"},
            "package_version": __version__,
            "stages": {k: {m: round(v, 3) for m, v in stage.items()}
                       for k, stage in stages.items()},
        }, indent=2))
        _swap(site, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log(f"site written to {out} in {time.perf_counter() - started:.1f} s")
    return out

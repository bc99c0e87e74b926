"""Build the book: validate the data, execute every chapter notebook, render the site.

Publishing is safe whatever happens to the build:

* The patient-level file the chapters read is staged in a private folder (mode 0700, under
  the system temp dir, never beside the site) that is removed on every exit path; one
  left by a SIGKILL is swept at the start of the next build.
* The site is built in a hidden folder next to the output folder and exchanged with the
  old site in one atomic ``renameat2(RENAME_EXCHANGE)``: readers see the old site or the
  new one, never none; a failed build leaves the old site untouched.
* A lock file next to the output folder lets one build at a time write it.
* Executed notebooks are freed of build-machine paths, memory addresses, timings and random
  cell ids, so two builds of the same inputs give the same files.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import hashlib
import importlib
import json
import os
import pkgutil
import re
import resource
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path

import jupytext
import nbformat
import papermill
import yaml
from papermill.translators import translate_parameters

from .. import __version__
from ..cohort.dictionary import dictionary_markdown
from ..cohort.validate import ValidatedCohorts, check_group_order, check_landmark
from ..paper.audit import overall_score, score_sentence
from ..paper.audit import page_title as audit_page_title
from ..paper.narrative import chapter_label
from ..paths import (
    BOOK,
    BUILD,
    CITATION,
    CONFIG,
    DATA,
    DEFAULT_DATA,  # noqa: F401 (where tests and benchmarks find the default cohort)
    NOTEBOOKS,
    ROOT,
    chapters,
    is_reference_cohort,
    sha256,
)
from ..render.data_label import write_source_note
from ..render.disclosure import Disclosure
from ..render.escaping import markdown_code, markdown_text
from .chapter import group_noun
from .forked import (
    STOP_SIGNALS,
    Task,
    die_with_parent,
    run_forked,
    stop_signals_held,
)
from .metadata import load_metadata
from .parameters import Parameters
from .pdf import PdfError, write_pdf
from .provenance import provenance_markdown

DEFAULT_CACHE = BUILD / "notebook-cache"
# test hook: the build prints "paused at <stage>" and sleeps there, so a test can kill it
PAUSE_VARIABLE = "BRIDGE_HSCT_PAUSE_AT"


class BuildError(RuntimeError):
    """A build step failed; the message says which and why."""


class BuildLocked(BuildError):
    """Another build is writing the output folder: this one did nothing, and the site there
    is that build's to change."""


#: Chapters about the paper itself and the bundled cohort (how the synthetic cohort was made,
#: where the paper contradicts itself, the paper's cohort beside others in the literature):
#: built on the reference cohort only; on a centre's cohort they would describe data the
#: book does not show.
REFERENCE_ONLY = frozenset({"calibration", "inconsistencies", "literature"})


def book_chapters(reference: bool) -> list[str]:
    """The chapter notebooks a build executes: those of the table of contents, without the
    :data:`REFERENCE_ONLY` ones unless the data are the reference cohort."""
    return [name for name in chapters() if reference or name not in REFERENCE_ONLY]


def site_title(params: Parameters, data_path: str, reference: bool) -> str:
    """The book's title (plain text): ``params.title`` when given, else the supplement's
    (``CITATION.cff``) on the reference cohort and, on any other, a neutral one naming what
    the groups are and the data file."""
    if params.title:
        return params.title
    if reference:
        return load_metadata().supplement.title
    return (f"Outcomes after HSCT by {group_noun(params.group_label, data_path)}: "
            f"{Path(data_path).name}")


def _config(data_path: str, params: Parameters, cohort) -> dict:
    """The staged ``_config.yml``: the book's title, the flags the Sphinx extension reads
    (:mod:`.sphinx_site`) and the substitutions the pages use."""
    config = yaml.safe_load(CONFIG.read_text())
    reference = is_reference_cohort(data_path)
    name = Path(data_path).name
    if reference:
        banner = ("```{admonition} Synthetic data\n:class: warning\nEvery number on this page "
                  "is computed from a **synthetic cohort** reconstructed from the paper's "
                  "published aggregates. It is not patient data and must not be cited as such."
                  "\n```")
    else:
        banner = (f"```{{admonition}} Data\n:class: note\nThis book was computed from "
                  f"{markdown_code(name)} (SHA-256 `{sha256(data_path)[:12]}…`), not from "
                  "the paper's patients.\n```")
    repository = os.environ.get("BRIDGE_HSCT_REPOSITORY_URL")
    if repository:  # where the public copy lives: enables the repository and Binder buttons
        config["repository"] = {"url": repository, "branch": "main",
                                "path_to_book": "notebooks"}
        config["html"]["use_repository_button"] = True
        config["launch_buttons"] = {"binderhub_url": "https://mybinder.org",
                                    "notebook_interface": "jupyterlab"}
    title = site_title(params, data_path, reference)
    config["title"] = title
    sphinx = config.setdefault("sphinx", {}).setdefault("config", {})
    sphinx["bridge_hsct_reference_cohort"] = reference
    sphinx["bridge_hsct_data_file"] = name
    built = book_chapters(reference)
    sphinx["myst_substitutions"] = {
        "data_banner": banner, "data_file": markdown_text(name), "audit_score": "",
        "results_links": _results_links(built), "book_title": markdown_text(title),
        "audit_title": audit_page_title(reference),
        **(REFERENCE_LANDING if reference
           else _own_cohort_landing(cohort, params, data_path, built)),
    }
    return config


#: The landing page's words on the reference cohort: the paper's study, re-analysed.
REFERENCE_LANDING = {
    "book_purpose": "This book recomputes, from one patient-level data file, every table and "
                    "figure of",
    "about_the_data": (
        "The study followed 36 adults and children with relapsed or refractory B-cell acute "
        "lymphoblastic leukaemia who reached remission with an immunotherapy, CD19/CD22 CAR-T "
        "cells (27 patients) or the bispecific antibody blinatumomab (9 patients), and then "
        "received an allogeneic haematopoietic stem cell transplant at one centre between "
        "2017 and 2023. It compared survival, graft-versus-host disease, blood count recovery "
        "and infections after transplant between the two bridging strategies.\n\n"
        "The paper's patient-level data were not published. Unless this page says otherwise, "
        "the book runs on a synthetic cohort of 36 patients reconstructed from the published "
        "tables and survival estimates."),
    "plain_words": (
        "Both immunotherapies are used to put the leukaemia back into remission so that a "
        "transplant can be done. The question is whether the choice of bridge changes what "
        "happens after the transplant. With only 36 patients, and nine in one group, the "
        "study can show large differences but cannot rule out moderate ones: \"no "
        "significant difference\" here means \"not shown\", not \"the same\"."),
    "reproducibility_contents": (
        "the audit of every published number, the paper's internal contradictions, how the "
        "synthetic cohort was made, and the provenance of this build with how to cite it "
        "(the last part of the navigation)."),
}


def _own_cohort_landing(cohort, params: Parameters, data_path: str, built: list[str]) -> dict:
    """The landing page's words on a centre's cohort: that cohort, described from the data
    (group labels escaped, group sizes through the build's disclosure)."""
    if cohort is None:
        cohort = ValidatedCohorts().load(data_path, params.group_col, params.cutoff_date)
    sizes = cohort[params.group_col].value_counts()
    groups = params.group_order or sorted(sizes.index)
    counts = Disclosure(params.min_cell_count)
    noun = markdown_text(group_noun(params.group_label, data_path))
    audit = chapter_label("audit", included=built)
    beside = (f"; the paper's own numbers appear only on the page {{ref}}`{audit}`, set "
              "beside this cohort's" if audit else "")
    return {
        "book_purpose": "This book applies the endpoints, tables, figures and statistical "
                        "methods of",
        "about_the_data": (
            f"to the cohort of the data file {markdown_code(Path(data_path).name)}: "
            f"{counts.count_text(len(cohort), thousands=True)} patients compared by {noun}, "
            + ", ".join(f"{markdown_text(g)} ({counts.count_text(sizes.get(g, 0), True)})"
                        for g in groups)
            + ". Every number in the book describes these patients, not the paper's 36 "
            f"patients, and none is expected to equal a published one{beside}."),
        "plain_words": (
            "The book asks whether what happens after the transplant differs between the "
            "groups. A cohort with few patients, or few in one group, can show large "
            "differences but cannot rule out moderate ones: \"no significant difference\" "
            "means \"not shown\", not \"the same\"."),
        "reproducibility_contents": (
            "the paper's published numbers beside this cohort's, and the provenance of this "
            "build with what to cite for what (the last part of the navigation)."),
    }


def _results_links(built: list[str]) -> str:
    """Links to the Results chapters this build makes (`built`), by their titles, for the
    landing page (a chapter left out of a build gets no link that would break it)."""
    toc = yaml.safe_load((BOOK / "_toc.yml").read_text())
    names = [c["file"] for part in toc.get("parts", []) if part.get("caption") == "Results"
             for c in part.get("chapters", [])]
    links = []
    for name in names:
        label = chapter_label(name, included=built)
        if label:
            title = re.search(r"^# (.+)$", (NOTEBOOKS / f"{name}.md").read_text(encoding="utf-8"),
                              re.MULTILINE).group(1)
            links.append(f"{{ref}}`{title} <{label}>`")
    return "; ".join(links)


GENERATED_PAGES = {"data_dictionary", "provenance"}


def _keep_chapters(toc: dict, keep) -> dict:
    """`toc` with only the chapters whose name `keep` accepts, and no empty part."""
    for part in toc.get("parts", []):
        part["chapters"] = [c for c in part.get("chapters", []) if keep(c["file"])]
    toc["parts"] = [p for p in toc.get("parts", []) if p["chapters"]]
    return toc


def _existing_toc(src: Path) -> dict:
    """The table of contents without the chapters whose page does not exist yet."""
    return _keep_chapters(yaml.safe_load((BOOK / "_toc.yml").read_text()),
                          lambda name: name in GENERATED_PAGES
                          or (src / f"{name}.md").is_file()
                          or (NOTEBOOKS / f"{name}.md").is_file())


def _stage_sources(staging: Path, data_path: str, params: Parameters | None = None,
                   cohort=None) -> Path:
    """Copy the book's pages into `staging` with the generated ones, the table of contents
    of this build and its configuration; `cohort` is the data validated (None: read here
    when needed)."""
    params = params or Parameters(data_path=data_path)
    src = staging / "src"
    shutil.copytree(BOOK, src)
    (src / "data_dictionary.md").write_text(dictionary_markdown(), encoding="utf-8")
    toc = _existing_toc(src)
    if not is_reference_cohort(data_path):
        toc = _keep_chapters(toc, lambda name: name not in REFERENCE_ONLY)
    (src / "_toc.yml").write_text(yaml.safe_dump(toc, sort_keys=False))
    (src / "_config.yml").write_text(yaml.safe_dump(_config(data_path, params, cohort),
                                                    sort_keys=False))
    return src


def _digest(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def package_fingerprint() -> str:
    """Hash of the package's source and the pinned environment: code a notebook depends on."""
    package = ROOT / "src" / "bridge_hsct"
    files = sorted(package.rglob("*.py"))
    lock = ROOT / "requirements.lock"
    return _digest(__version__, [(str(f.relative_to(package)), sha256(f)) for f in files],
                   sha256(lock) if lock.is_file() else "")


def data_fingerprint() -> str:
    """Hash of the files in ``data/`` that chapters read besides the cohort: the
    published-values registry, the literature figures, the calibration report."""
    return _tree_digest(DATA)


def notebook_key(name: str, params: Parameters, data_sha: str, fingerprint: str) -> str:
    """Cache key of an executed notebook: its text, the data's content, the parameters and
    `fingerprint` (the package and the files it reads; see :func:`_dependencies`).
    (Jupyter Book's own cache looks only at the notebook's code cells.)"""
    parameters = {k: v for k, v in params.for_notebook(name).items() if k != "data_path"}
    text = (NOTEBOOKS / f"{name}.md").read_text(encoding="utf-8")
    return _digest(name, text, data_sha, parameters, fingerprint)


def _dependencies(public: _Public) -> str:
    """What every executed notebook depends on besides its text, data and parameters."""
    return _digest(package_fingerprint(), data_fingerprint(), public.data_path)


def _site_key(keys: dict, src: Path) -> str:
    """Key of a whole site: the chapters' keys, the staged pages and configuration (book/,
    ``_config.yml``, the generated pages) and what the provenance page reads."""
    return _digest(keys, _tree_digest(src), sha256(CITATION) if CITATION.is_file() else "",
                   os.environ.get("SOURCE_DATE_EPOCH", ""))


# ---------------------------------------------------------------- publishable notebooks

@dataclass(frozen=True)
class _Public:
    """How executed notebooks refer to this build once the machine's paths are taken out."""

    data_path: str  # shown as the notebooks' data path instead of the staged file
    hidden: tuple[str, ...] = ()  # absolute folders of this machine, longest first

    @classmethod
    def of(cls, source: str, *folders: str | Path) -> _Public:
        """For a build reading `source` and working in `folders`."""
        # the bundled cohort keeps the path the notebooks use in the repository
        shown = ("../data/synthetic_cohort.csv" if is_reference_cohort(source)
                 else Path(source).name)
        machine = {str(Path(f)) for f in (*folders, ROOT, sys.prefix, sys.base_prefix,
                                         tempfile.gettempdir())}
        return cls(shown, tuple(sorted((m for m in machine if len(m) > 1), key=len,
                                       reverse=True)))


# a default object repr: `<great_tables._gt_data.Stub object at 0x7f...>`
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def _scrub(text: str, public: _Public) -> str:
    """`text` without memory addresses and with this machine's folders made relative."""
    for folder in public.hidden:
        text = text.replace(folder + os.sep, "").replace(folder, ".")
    return _ADDRESS.sub("", text)


def _clean_output(output: dict, public: _Public) -> None:
    """Scrub one cell output; drop a plain-text repr with an address beside a richer view."""
    if output.get("output_type") == "stream":
        output["text"] = _scrub(output["text"], public)
    elif output.get("output_type") == "error":
        output["traceback"] = [_scrub(line, public) for line in output["traceback"]]
        output["evalue"] = _scrub(output["evalue"], public)
    elif "data" in output:
        data = output["data"]
        plain = data.get("text/plain")
        if isinstance(plain, str) and _ADDRESS.search(plain) and len(data) > 1:
            # e.g. a great_tables GT shown as HTML: its repr is noise with addresses
            del data["text/plain"]
        for mime, value in data.items():
            if isinstance(value, str) and (mime == "image/svg+xml"
                                           or not mime.startswith("image/")):  # not base64
                data[mime] = _scrub(value, public)


def _clean_notebook(notebook, name: str, params: Parameters, public: _Public) -> None:
    """Make an executed notebook publishable and reproducible, in place.

    Papermill records the absolute input and output paths, timings and the parameters (with
    the staged data path) in the metadata and in the injected-parameters cell; jupytext draws
    random cell ids; outputs may show addresses or paths. All of it would reach the
    downloadable ``_sources/*.ipynb`` and make two builds differ.
    """
    publishable(notebook, {**params.for_notebook(name), "data_path": public.data_path},
                public)


def publishable(notebook, shown: dict, public: _Public) -> None:
    """Make an executed notebook publishable in place (see :func:`_clean_notebook`), its
    parameters shown as `shown`."""
    notebook.metadata["papermill"] = {"parameters": shown}
    notebook.nbformat_minor = max(notebook.nbformat_minor, 5)  # cell ids exist from 4.5
    for index, cell in enumerate(notebook.cells):
        cell["id"] = f"cell-{index}"
        for key in ("papermill", "execution"):
            cell.metadata.pop(key, None)
        tags = cell.metadata.get("tags", [])
        if "injected-parameters" in tags:
            cell.source = translate_parameters("python3", "python", shown, "Parameters")
            # the parameters papermill injects are build plumbing
            cell.metadata["tags"] = [*tags, *(["remove-cell"] if "remove-cell" not in tags
                                              else [])]
        for output in cell.get("outputs", []):
            _clean_output(output, public)


# ---------------------------------------------------------------- executing chapters

def _execute(name: str, src: Path, params: Parameters, cache: Path | None, key: str,
             public: _Public | None = None, cohorts: ValidatedCohorts | None = None) -> bool:
    """Execute one chapter into `src` (or copy it from the cache), its notebook handed
    `cohorts` (already validated); True if it was cached."""
    public = public or _Public.of(params.data_path, src)
    entry = cache / f"{name}-{key[:20]}" if cache else None
    target = src / f"{name}.ipynb"
    outputs = Path("outputs") / name
    if entry and entry.is_dir():
        shutil.copy2(entry / target.name, target)
        if (entry / outputs).is_dir():
            shutil.copytree(entry / outputs, src / outputs, dirs_exist_ok=True)
        return True
    _pause("execute")
    run_notebook(NOTEBOOKS / f"{name}.md", target, params.for_notebook(name), public,
                 lambda executed: _clean_notebook(executed, name, params, public), cohorts)
    if entry:
        _store(entry, target, src / outputs, outputs)
    return False


def run_notebook(source: Path, target: Path, parameters: dict, public: _Public,
                 clean, cohorts: ValidatedCohorts | None = None) -> None:
    """Execute the MyST notebook `source` with `parameters` into `target` (its folder the
    working folder), then `clean` the executed notebook in place before it is written.
    Its chapter loads its cohort from `cohorts` when they hold it validated.

    Raises
    ------
    BuildError
        Naming the notebook and the failing cell.
    """
    jupytext.write(jupytext.read(source), target)
    try:
        # cells run in this already-warm process, not in a fresh kernel that would
        # re-import the scientific stack for every chapter
        papermill.execute_notebook(
            str(target), str(target), parameters=parameters, cwd=str(target.parent),
            kernel_name="python3", engine_name="inprocess", progress_bar=False,
            log_output=False, validated_cohorts=cohorts,
        )
    except papermill.PapermillExecutionError as exc:
        raise BuildError(
            f"notebook {source.relative_to(ROOT)} failed in cell {exc.exec_count} "
            f"({exc.ename}: {_scrub(str(exc.evalue), public)})") from None
    executed = nbformat.read(target, as_version=4)
    clean(executed)
    nbformat.write(executed, target)


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
                 keys: dict, log, cohorts: ValidatedCohorts,
                 public: _Public | None = None, with_score: bool = True) -> dict | None:
    """Execute the chapters in parallel, one process per core; stop at the first failure.
    Return the audit's headline score (:func:`bridge_hsct.paper.audit.overall_score`),
    computed beside the chapters for the landing page `with_score` (the reference cohort's
    build: no other cohort was meant to reproduce the paper), else None.

    Every chapter gets a process of its own (:func:`.forked.run_forked`), forked from this
    one after the analysis stack is imported, and hands its notebook `cohorts` (the staged
    cohort, already validated here, inherited through the fork). Workers die with the build,
    so none outlives a killed build reading the staged data.
    """
    workers = max(1, min(len(names) + 1, os.cpu_count() or 1))
    _import_analysis_stack()
    # first: at 100,000 patients the audit is among the longest tasks
    tasks = ([Task(AUDIT_SCORE, _audit_score, (params.data_path, params.group_col, cohorts))]
             if with_score else [])
    tasks += [Task(n, _execute, (src, params, cache, keys[n], public, cohorts))
              for n in names]
    score, done = None, 0
    for name, result, seconds in run_forked(tasks, workers):
        if name == AUDIT_SCORE:
            score = result
            continue
        done += 1
        how = "from cache" if result else f"executed in {seconds:.1f} s"
        log(f"[{done}/{len(names)}] {name}: {how}")
    return score


AUDIT_SCORE = "audit score"  # not a chapter's name: chapters are notebooks' file names


def _audit_score(name: str, data_path: str, group_col: str, cohorts: ValidatedCohorts
                 ) -> dict:
    """In a worker: the audit's headline score of the staged cohort."""
    return overall_score(cohorts.load(data_path, group_col), group_col)


def _import_analysis_stack() -> None:
    """Import what the chapters use once, so every forked worker starts with it loaded."""
    os.environ.setdefault("MPLBACKEND", "agg")
    import bridge_hsct

    for module in pkgutil.walk_packages(bridge_hsct.__path__, "bridge_hsct."):
        if not module.name.endswith("__main__"):
            importlib.import_module(module.name)
    for name in ("matplotlib.pyplot", "seaborn", "IPython.display"):
        importlib.import_module(name)


def _add_audit_score(src: Path, score: dict) -> None:
    """Put the audit's headline `score` into the landing page's substitution."""
    config = yaml.safe_load((src / "_config.yml").read_text())
    config["sphinx"]["config"]["myst_substitutions"]["audit_score"] = score_sentence(score)
    (src / "_config.yml").write_text(yaml.safe_dump(config, sort_keys=False))


def _render(src: Path, staging: Path) -> tuple[Path, float]:
    """Run Jupyter Book on the staged sources; the HTML folder and Jupyter Book's peak
    memory (GB)."""
    jupyter_book = Path(sys.executable).parent / "jupyter-book"
    command = [str(jupyter_book), "build", str(src), "--path-output", str(staging),
               "--config", str(src / "_config.yml"), "--toc", str(src / "_toc.yml"),
               "-W", "-n", "--keep-going"]
    parent = os.getpid()
    with stop_signals_held() as mask:  # see :func:`.forked.stop_signals_held`
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            preexec_fn=lambda: (signal.pthread_sigmask(signal.SIG_SETMASK, mask),
                                die_with_parent(parent)))
    try:
        _pause("render")
        output = process.stdout.read()
        _, status, usage = os.wait4(process.pid, 0)  # wait4: this child's own peak memory
    except BaseException:  # interrupted: Jupyter Book must not go on writing
        process.kill()
        process.wait()
        raise
    finally:
        process.stdout.close()
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        tail = "\n".join(output.strip().splitlines()[-25:])
        raise BuildError(f"Jupyter Book failed (warnings count as errors):\n{tail}")
    return staging / "_build" / "html", usage.ru_maxrss / 1024**2


def _peak_gb(who: int) -> float:
    """Largest resident memory so far (GB) of this process or of its largest child."""
    return resource.getrusage(who).ru_maxrss / 1024**2


# ---------------------------------------------------------------- surviving faults



def _pause(stage: str) -> None:
    """Test hook: print a line and wait at `stage` when ``BRIDGE_HSCT_PAUSE_AT`` names it,
    so that a test can kill the build exactly there."""
    if os.environ.get(PAUSE_VARIABLE) == stage:
        print(f"paused at {stage} (pid {os.getpid()})", flush=True)
        time.sleep(float(os.environ.get("BRIDGE_HSCT_PAUSE_SECONDS", "300")))


@contextlib.contextmanager
def _signals_end_the_build():
    """While building, SIGTERM and SIGHUP end the build as SIGINT does, by an exception
    (SystemExit with the usual 128 + signal status), so every ``finally`` runs and removes
    the staged data. The previous handlers are restored afterwards."""
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may set handlers; its own still apply
        return
    owner = os.getpid()

    def stop(signum, frame):
        if os.getpid() != owner:  # a forked chapter worker: die; the build cleans up
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        raise SystemExit(128 + signum)

    previous = {s: signal.signal(s, stop) for s in STOP_SIGNALS}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, signal.SIG_DFL if handler is None else handler)


def private_parent() -> Path:
    """The one folder (mode 0700, in the system temp dir) holding every build's private
    staging folder of this user; created if needed."""
    parent = Path(tempfile.gettempdir()) / f"bridge-hsct-{os.getuid()}"
    try:
        parent.mkdir(mode=0o700, exist_ok=True)
        info = parent.lstat()
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
            # someone else's folder or a link: patient data must not go there
            raise BuildError(f"{parent} is not a private folder of this user; remove it")
        if info.st_mode & 0o077:
            parent.chmod(0o700)
    except OSError as exc:
        raise BuildError(f"cannot create the private staging folder {parent}: "
                         f"{exc.strerror}") from None
    return parent


def _process_start(pid: int) -> str:
    """When process `pid` started (clock ticks since boot), to tell it from a later process
    reusing its number; "" where unknown."""
    try:
        stat_line = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat_line.rsplit(")", 1)[1].split()[19]  # field 22, counted after "pid (comm)"


def _alive(pid: int, start: str) -> bool:
    """Whether the process that made a staging folder (its pid and start) still runs."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, run by someone else
    now = _process_start(pid)
    return not start or not now or now == start


_PRIVATE_NAME = re.compile(r"build-(\d+)-(\d*)-")


def sweep_private(log=print) -> None:
    """Remove private staging folders whose build died without cleaning up (SIGKILL)."""
    for folder in private_parent().iterdir():
        match = _PRIVATE_NAME.match(folder.name)
        if match and not _alive(int(match[1]), match[2]):
            shutil.rmtree(folder, ignore_errors=True)
            log(f"removed the staged data of a killed build (PID {match[1]})")


@contextlib.contextmanager
def _private_folder(log):
    """A new private folder for the patient-level data of this build, removed on leaving.

    Its name records this process (pid and start time), so that the next build can remove
    it if a SIGKILL prevents it here. Forked workers never remove it: only its owner does.
    """
    sweep_private(log)
    owner = os.getpid()
    folder = Path(tempfile.mkdtemp(prefix=f"build-{owner}-{_process_start(owner)}-",
                                   dir=private_parent()))
    try:
        yield folder
    finally:
        if os.getpid() == owner:
            with stop_signals_held():
                shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def _lock(out: Path):
    """Hold the build lock of `out` (``.OUT.lock`` beside it) or refuse at once.

    ``flock`` locks are released by the system when the process dies, however it dies.
    """
    path = out.with_name(f".{out.name}.lock")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise BuildError(f"cannot write the output folder {out}: {exc.strerror} "
                         f"({exc.filename})") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            raise BuildLocked(f"{out} is being built by another build (PID {holder}); "
                             "wait for it to finish") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)


def _leftovers(out: Path, kind: str) -> list[Path]:
    """Folders ``.OUT.<kind>-*`` beside `out`, oldest name first."""
    prefix = f".{out.name}.{kind}-"
    return sorted(p for p in out.parent.iterdir() if p.name.startswith(prefix))


def _sweep_beside(out: Path, log) -> None:
    """Remove what killed builds left beside `out` (call with the lock held).

    If a two-rename publish was cut between its renames, `out` is missing and the old
    site waits as ``.OUT.old-*``: it is put back first.
    """
    olds = _leftovers(out, "old")
    if olds and not out.exists():
        olds.pop().rename(out)  # the newest: the site that was at `out` last
        log(f"restored the site at {out} left aside by an interrupted build")
    for folder in [*olds, *_leftovers(out, "build")]:
        shutil.rmtree(folder, ignore_errors=True)
        log(f"removed {folder.name}, left by an interrupted build")


_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def _exchange(a: Path, b: Path) -> bool:
    """Swap the folders `a` and `b` in one atomic step (Linux ``renameat2`` with
    ``RENAME_EXCHANGE``); False where the system or the file system cannot."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                          ctypes.c_uint]
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(b))


def _publish(site: Path, out: Path) -> None:
    """Put the new `site` at `out`; the old site, if any, ends at `site`'s path.

    Readers of `out` see the old site or the new one, never none. Only where the atomic
    exchange is unsupported are there two renames, and if the build is killed between
    them, the next build puts the old site back (:func:`_sweep_beside`).
    """
    if not out.exists():
        os.rename(site, out)
    elif not _exchange(site, out):
        old = out.with_name(f".{out.name}.old-{time.time_ns()}")
        os.rename(out, old)
        os.rename(site, out)
        os.rename(old, site)


def _tree_digest(folder: Path) -> str:
    return _digest([(str(f.relative_to(folder)), sha256(f))
                    for f in sorted(folder.rglob("*")) if f.is_file()])


def _built_key(out: Path) -> str | None:
    try:
        return json.loads((out / "build.json").read_text())["site_key"]
    except (OSError, ValueError, KeyError):
        return None


# ---------------------------------------------------------------- the build

def build(out: str | Path, params: Parameters, log=print,
          cache: str | Path | None = DEFAULT_CACHE,
          cohorts: ValidatedCohorts | None = None, pdf: bool = False) -> Path:
    """Build the whole book from ``params.data_path`` into the folder `out` (with `pdf`,
    also the whole book as one PDF, ``supplement.pdf``, linked from the provenance page).

    Chapters run in parallel, and an executed chapter is reused from `cache` (None: no
    cache) while its notebook, the data's content, the parameters, the package and the
    files of ``data/`` are unchanged. When nothing changed at all, the site is kept as is.
    `cohorts` may hold the input already validated (as the command line does).

    Raises
    ------
    bridge_hsct.cohort.validate.CohortError
        If the data do not conform (nothing is built).
    BuildError
        If another build is writing `out`, `out` cannot be written, or a notebook or the
        HTML build fails (the previous site is left untouched).
    """
    out = Path(out).resolve()
    cache = Path(cache).resolve() if cache else None
    started = time.perf_counter()
    with _signals_end_the_build(), _lock(out), _private_folder(log) as private:
        _sweep_beside(out, log)
        if not _build_locked(out, params, log, cache, private,
                             cohorts or ValidatedCohorts(), pdf):
            return out
    log(f"site written to {out} in {time.perf_counter() - started:.1f} s")
    return out


def _stage_cohort(cohort, source: str, params: Parameters, private: Path,
                  cohorts: ValidatedCohorts) -> Parameters:
    """The parameters with the data path the chapters read: the bundled cohort as it is,
    any other input as its validated cohort (in days, whatever the input's format) written
    into the build's private folder and recorded in `cohorts` as validated."""
    if is_reference_cohort(source):
        return replace(params, data_path=source)
    params = replace(params, data_path=str(private / "cohort.csv"))
    cohort.to_csv(params.data_path, index=False, date_format="%Y-%m-%d")
    write_source_note(params.data_path, source)  # labels name the user's file
    cohorts.remember(params.data_path, params.group_col, cohort)  # reads back equal
    return params


def _staging_folder(out: Path) -> Path:
    """A new hidden folder beside `out` (same file system: the site is renamed from it)."""
    try:
        return Path(tempfile.mkdtemp(prefix=f".{out.name}.build-{os.getpid()}-",
                                     dir=out.parent))
    except OSError as exc:
        raise BuildError(f"cannot write the output folder {out}: {exc.strerror}") from None


def _build_locked(out: Path, params: Parameters, log, cache: Path | None,
                  private: Path, cohorts: ValidatedCohorts, pdf: bool = False) -> bool:
    """The build proper, holding the lock of `out`, with a private folder for the data;
    False if the site was up to date."""
    started = time.perf_counter()
    source = str(Path(params.data_path).resolve())
    cohort = cohorts.load(source, params.group_col, params.cutoff_date)
    check_group_order(cohort, params.group_col, params.group_order, source)
    check_landmark(cohort, params.landmark_months, source)
    stages = {"validate": {"seconds": time.perf_counter() - started,
                           "peak_gb": _peak_gb(resource.RUSAGE_SELF)}}
    log(f"data: {source} is valid ({len(cohort)} patients)")
    staging = _staging_folder(out)
    reference = is_reference_cohort(source)
    try:
        src = _stage_sources(staging, source, params, cohort)
        params = _stage_cohort(cohort, source, params, private, cohorts)
        _pause("staged")
        public = _Public.of(source, private, staging, out.parent)
        names = book_chapters(reference)
        data_sha, depends = sha256(params.data_path), _dependencies(public)
        keys = {n: notebook_key(n, params, data_sha, depends) for n in names}
        site_key = _site_key(keys, src) + ("+pdf" if pdf else "")
        if _built_key(out) == site_key:
            log(f"nothing changed: {out} is up to date")
            return False
        (src / "provenance.md").write_text(provenance_markdown(
            source, sha256(source), {**params.for_notebook("*"), "title": params.title},
            reference, pdf), encoding="utf-8")
        t0 = time.perf_counter()
        score = _execute_all(names, src, params, cache, keys, log, cohorts, public,
                             with_score=reference)
        stages["execute"] = {"seconds": time.perf_counter() - t0,
                             "peak_gb": max(_peak_gb(resource.RUSAGE_SELF),
                                            _peak_gb(resource.RUSAGE_CHILDREN))}
        if score and "audit" in names:  # the sentence links the audit page
            _add_audit_score(src, score)
        log("rendering HTML with Jupyter Book ...")
        t0 = time.perf_counter()
        site, render_peak = _render(src, staging)
        stages["render"] = {"seconds": time.perf_counter() - t0, "peak_gb": render_peak}
        if pdf:
            log("printing the book as one PDF ...")
            t0 = time.perf_counter()
            try:
                write_pdf(site, site / "supplement.pdf")
            except PdfError as exc:
                raise BuildError(f"the PDF could not be printed: {exc}") from None
            stages["pdf"] = {"seconds": time.perf_counter() - t0}
        _write_build_record(site, site_key, data_sha, params, stages)
        _pause("publish")
        try:
            _publish(site, out)
        except OSError as exc:
            raise BuildError(f"cannot publish the site at {out}: {exc.strerror}") from None
        _pause("published")
        return True
    finally:
        with stop_signals_held():
            shutil.rmtree(staging, ignore_errors=True)


def _write_build_record(site: Path, site_key: str, data_sha: str, params: Parameters,
                        stages: dict) -> None:
    """The site's ``build.json``: its key, data hash, parameters and stage timings."""
    (site / "build.json").write_text(json.dumps({
        "site_key": site_key, "data_sha256": data_sha,
        "parameters": {k: v for k, v in params.for_notebook("*").items()
                       if k != "data_path"},
        "package_version": __version__,
        "stages": {k: {m: round(v, 3) for m, v in stage.items()}
                   for k, stage in stages.items()},
    }, indent=2))

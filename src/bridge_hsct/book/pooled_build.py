"""Build the pooled book of a consortium from its centres' aggregate-only bundles.

``python -m bridge_hsct build --bundles a.zip b.zip c.zip --out DIR`` (``make book
BUNDLES="a.zip b.zip c.zip" OUT=DIR``) checks the bundles (same software version, grid,
groups and endpoints; each exact, or on a coarse grid with ``--approximate``
(``APPROXIMATE=1``), when every page says APPROXIMATE; one line naming the bundle
otherwise) before anything is written, then executes the chapters of
``notebooks/pooled/`` listed in ``book/_toc_pooled.yml`` on copies of the bundles and
renders them with Jupyter Book, with a provenance page naming each bundle and its SHA-256
(and with ``--pdf``, ``make pdf BUNDLES=...``, the whole book as one PDF). No patient row is
read: the chapters see the bundles only.

The site is published as the single-centre book's is (:mod:`.build`): one build at a time
per output folder, built beside it and exchanged atomically, executed notebooks freed of
this machine's paths, so that the same bundles give the same files.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import yaml

from .. import __version__
from ..paper.pooled import read_bundles
from ..paths import BOOK, CONFIG, NOTEBOOKS, sha256
from ..render.escaping import markdown_text
from .build import (
    BuildError,
    _import_analysis_stack,
    _lock,
    _Public,
    _publish,
    _render,
    _signals_end_the_build,
    _staging_folder,
    _sweep_beside,
    publishable,
    run_notebook,
)
from .forked import Task, run_forked, stop_signals_held
from .parameters import Parameters
from .pdf import PdfError, write_pdf
from .provenance import pooled_provenance_markdown

POOLED_TOC = BOOK / "_toc_pooled.yml"
POOLED_NOTEBOOKS = NOTEBOOKS / "pooled"
#: Where the build puts the bundles, relative to the executed chapters.
STAGED_BUNDLES = "../bundles"


#: Pages of the pooled book that the build writes (not notebooks).
POOLED_GENERATED = {"provenance"}


def pooled_chapters() -> list[str]:
    """The chapter notebooks of the pooled book, in the order of its table of contents."""
    toc = yaml.safe_load(POOLED_TOC.read_text())
    return [name for name in [toc["root"], *(c["file"] for part in toc.get("parts", [])
                                             for c in part.get("chapters", []))]
            if name not in POOLED_GENERATED]


def pooled_title(params: Parameters, centres: int) -> str:
    """``params.title``, or a neutral title naming how many centres were pooled."""
    return params.title or f"Outcomes after HSCT, pooled over {centres} centres"


def _config(params: Parameters, centres: list[str], approximate: bool = False) -> dict:
    """The staged ``_config.yml``: the title and the banner every page shows (a warning
    saying APPROXIMATE when some bundle is on a coarse grid)."""
    config = yaml.safe_load(CONFIG.read_text())
    title = pooled_title(params, len(centres))
    config["title"] = title
    sphinx = config.setdefault("sphinx", {}).setdefault("config", {})
    sphinx["bridge_hsct_reference_cohort"] = False
    sphinx["bridge_hsct_data_file"] = f"the bundles of {len(centres)} centres"
    names = ", ".join(markdown_text(c) for c in centres)
    banner = ("```{admonition} Pooled from bundles\n:class: note\nEvery number on "
              f"this page is computed from the aggregate-only bundles of "
              f"{len(centres)} centres ({names}), not from patient rows. At day "
              "resolution, without suppression, the numbers equal those of the "
              "pooled rows.\n```")
    if approximate:
        banner = ("```{admonition} APPROXIMATE: pooled from coarse bundles\n:class: warning\n"
                  f"Every number on this page is computed from the aggregate-only bundles of "
                  f"{len(centres)} centres ({names}), some counted on a week or month grid: "
                  "survival, incidence, tests and hazard ratios are approximations of those "
                  "of the pooled rows (the centres page says by how much they can differ); "
                  "the counts of Tables 1 and 3 are exact.\n```")
    sphinx["myst_substitutions"] = {"book_title": markdown_text(title), "data_banner": banner}
    return config


def _execute(name: str, src: Path, parameters: dict, public: _Public) -> bool:
    """In a worker: execute chapter `name` of the pooled book into `src`."""
    run_notebook(POOLED_NOTEBOOKS / f"{name}.md", src / f"{name}.ipynb", parameters, public,
                 lambda executed: publishable(executed, parameters, public))
    return False


def _execute_all(names: list[str], src: Path, params: Parameters, staged: list[str],
                 public: _Public, log) -> None:
    """Execute the chapters in parallel, one forked process each (see
    :func:`bridge_hsct.book.build._execute_all`); stop at the first failure."""
    _import_analysis_stack()
    tasks = [Task(n, _execute, (src, params.for_pooled_notebook(n, staged), public))
             for n in names]
    workers = max(1, min(len(names), os.cpu_count() or 1))
    for done, (name, _, seconds) in enumerate(run_forked(tasks, workers), start=1):
        log(f"[{done}/{len(names)}] {name}: executed in {seconds:.1f} s")


def build_pooled(out: str | Path, params: Parameters, log=print, approximate: bool = False,
                 pdf: bool = False) -> Path:
    """Build the pooled book from ``params.bundles`` into the folder `out`; with
    `approximate`, also from bundles on a coarse grid, every page flagged; with `pdf`, also
    the whole book as one PDF (``supplement.pdf``, linked from its provenance page).

    Raises
    ------
    bridge_hsct.paper.bundle.BundleError
        When a bundle cannot be read, the bundles cannot be pooled, or one is not exact
        (suppressed; or on a coarse grid without `approximate`): nothing is built.
    bridge_hsct.book.build.BuildError
        If another build is writing `out`, `out` cannot be written, or a notebook or the
        HTML build fails (the previous site is left untouched).
    """
    out = Path(out).resolve()
    started = time.perf_counter()
    bundles = read_bundles(params.bundles, approximate)
    inexact = not all(b.manifest["exact"] for b in bundles)
    log(f"bundles: {len(bundles)} centres, {'APPROXIMATE' if inexact else 'exact'}, "
        f"{sum(b.manifest['data']['patients'] for b in bundles)} patients")
    with _signals_end_the_build(), _lock(out):
        _sweep_beside(out, log)
        staging = _staging_folder(out)
        try:
            src, folder = staging / "src", staging / "bundles"
            src.mkdir()
            folder.mkdir()
            for bundle in bundles:
                shutil.copyfile(bundle.path, folder / bundle.name)
            staged = [f"{STAGED_BUNDLES}/{b.name}" for b in bundles]
            toc = yaml.safe_load(POOLED_TOC.read_text())
            (src / "_toc.yml").write_text(yaml.safe_dump(toc, sort_keys=False))
            (src / "_config.yml").write_text(yaml.safe_dump(
                _config(params, [b.name for b in bundles], inexact), sort_keys=False))
            public = _Public.of(str(bundles[0].path), staging, out.parent)
            parameters = params.for_pooled_notebook("*", staged)
            (src / "provenance.md").write_text(pooled_provenance_markdown(
                {b.name: sha256(b.path) for b in bundles},
                {**parameters, "title": params.title}, pdf), encoding="utf-8")
            _execute_all(pooled_chapters(), src, params, staged, public, log)
            log("rendering HTML with Jupyter Book ...")
            site, _ = _render(src, staging)
            if pdf:
                log("printing the book as one PDF ...")
                try:
                    write_pdf(site, site / "supplement.pdf")
                except PdfError as exc:
                    raise BuildError(f"the PDF could not be printed: {exc}") from None
            (site / "build.json").write_text(json.dumps({
                "pooled_from": {b.name: sha256(b.path) for b in bundles},
                "parameters": parameters,
                "approximate": inexact,
                "package_version": __version__}, indent=2))
            _publish(site, out)
        finally:
            with stop_signals_held():
                shutil.rmtree(staging, ignore_errors=True)
    log(f"site written to {out} in {time.perf_counter() - started:.1f} s")
    return out

"""The provenance and citation page: what was run, on what, with what, and how to cite it."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from .. import __version__
from ..paths import ROOT
from ..render.escaping import markdown_code, markdown_text
from .metadata import Metadata, load_metadata

KEY_PACKAGES = ["jupyter-book", "jupytext", "papermill", "pandas", "numpy", "scipy",
                "statsmodels", "lifelines", "pandera", "great-tables", "matplotlib", "seaborn"]


def git_revision(root: Path = ROOT) -> str:
    """The commit the book was built from, with ``+changes`` if the work tree differs."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                                text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=root, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return commit + (" +changes" if dirty.strip() else "")


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def build_time() -> str:
    """When the book was built: now, or ``SOURCE_DATE_EPOCH`` (seconds since 1970) when set,
    the reproducible-builds convention for byte-identical rebuilds."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    moment = (datetime.fromtimestamp(int(epoch), UTC) if epoch.isdigit()
              else datetime.now(UTC))
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def citation_text(meta: Metadata) -> tuple[str, str]:
    """(supplement, paper) citations in a plain reference style (MyST: the DOI is a link)."""
    paper = meta.paper
    names = [f"{a.family} {''.join(p[0] for p in a.given.split())}" for a in paper.authors]
    authors = ", ".join(names[:3]) + (", et al." if len(names) > 3 else "")
    paper_text = (f"{authors} {paper.title}. {paper.journal}. {paper.year};{paper.volume}:"
                  f"{paper.pages}. [doi:{paper.doi}](https://doi.org/{paper.doi})")
    work = meta.supplement
    supplement = (f"{', '.join(a.name for a in work.authors)}. {work.title}. "
                  f"Version {work.version}, {work.date}.")
    return supplement, paper_text


#: The link to the book's PDF (raw HTML: Sphinx would try to resolve a Markdown link to a
#: file it does not build).
PDF_LINK = ('<p class="book-pdf"><a href="supplement.pdf">The whole book as one PDF</a>, '
            "printed from these pages.</p>")


def provenance_markdown(data_path: str, data_sha: str, parameters: dict,
                        synthetic: bool, pdf: bool = False) -> str:
    """The provenance page (MyST markdown) of one build; with `pdf`, a link to the whole
    book as one PDF, which the build prints beside the pages."""
    data = [("Data file", _table_code(Path(data_path).name)
             + (" (the bundled synthetic cohort)" if synthetic else "")),
            ("Data SHA-256", f"`{data_sha}`")]
    source = "the cohort of the data file above"
    return _page(data, parameters, synthetic, pdf, source, "your centre's analysis")


def pooled_provenance_markdown(bundles: dict[str, str], parameters: dict,
                               pdf: bool = False) -> str:
    """The provenance page of a pooled book: `bundles` maps each centre's bundle file to its
    SHA-256, the rest as :func:`provenance_markdown`."""
    data = [("Data file", f"the bundles of {len(bundles)} centres: "
             + ", ".join(_table_code(name) for name in bundles)),
            ("Data SHA-256", "; ".join(f"{_table_code(name)}: `{sha}`"
                                       for name, sha in bundles.items()))]
    source = "the pooled patients of the centres whose bundles are named above"
    return _page(data, parameters, False, pdf, source, "the consortium's analysis")


def _table_code(value) -> str:
    """`value` as a code span inside a table cell: a ``|`` in it would end the cell (the
    table is split before code spans are read), so it is escaped, which the span keeps as
    ``|``."""
    return markdown_code(value).replace("|", r"\|")


def _page(data: list[tuple[str, str]], parameters: dict, synthetic: bool, pdf: bool,
          source: str, whose: str) -> str:
    """The provenance page: the build's facts with `data` (label, Markdown) among them, the
    package versions, what to cite (the numbers describing `source`, as `whose`) and the
    licence."""
    meta = load_metadata()
    supplement, paper = citation_text(meta)
    rows = [
        ("Package", f"bridge-hsct {__version__}"),
        ("Source revision", f"`{git_revision()}`"),
        *data,
        ("Built", build_time()),
        ("Platform", f"{platform.platform()}, Python {sys.version.split()[0]}"),
    ]
    # values may hold the data's labels: plain escaped text, as a code span could not
    # hold a table's "|"
    rows += [(f"Parameter `{k}`", markdown_text(repr(v))) for k, v in parameters.items()
             if k not in {"data_path", "output_dir", "bundles"}]
    packages = [(p, _version(p)) for p in KEY_PACKAGES]
    table = "\n".join(["| | |", "|---|---|", *[f"| {a} | {b} |" for a, b in rows]])
    versions = "\n".join(["| Package | Version |", "|---|---|",
                          *[f"| {p} | {v} |" for p, v in packages]])
    return "\n".join([
        "(provenance)=", "# Provenance and citation", "",
        "This page records how this copy of the book was made, so that it can be traced and "
        "rebuilt. The full list of pinned package versions is `requirements.lock` at the "
        "source revision below; `make book` installs exactly those.", "",
        table, "",
        *([PDF_LINK, ""] if pdf else []),
        "## Package versions", "", versions, "",
        "## How to cite", "",
        *_how_to_cite(supplement, paper, synthetic, source, whose), "",
        "```{admonition} Cite this\n:class: tip\n"
        "Download the citation of this supplement as {download}`BibTeX <cite/supplement.bib>` "
        "or {download}`RIS <cite/supplement.ris>`, and of the paper as "
        "{download}`BibTeX <cite/paper.bib>` or {download}`RIS <cite/paper.ris>`.\n```", "",
        "## Licence", "",
        licence_text(meta, synthetic), "",
    ])


def licence_text(meta: Metadata, synthetic: bool) -> str:
    """The licences: the supplement's cover the whole bundled book; on a centre's cohort only
    the code and the words, not the results computed from the centre's data."""
    paper = ("The paper is published under CC BY-NC-ND 4.0: the book uses its facts and "
             "numbers, cites it, and reproduces none of its text, tables as laid out, or "
             "figures.")
    if synthetic:
        return f"{meta.licence_statement} {paper}"
    return (f"The supplement's licences ({meta.licence_statement}) cover its code and its "
            "words, not the numbers, tables and figures computed here from the data named "
            f"above: their use is for the owner of the data to decide. {paper}")


def _how_to_cite(supplement: str, paper: str, synthetic: bool, source: str, whose: str
                 ) -> list[str]:
    """What to cite for what: on the bundled synthetic cohort the book re-analyses the paper;
    on other data its numbers describe `source`, to be cited as `whose`, not the paper's."""
    if synthetic:
        return ["The clinical study (cite it for the study and its results):", "",
                f"> {paper}", "",
                "This reproducibility supplement (cite it for the code, the synthetic cohort "
                "and the reproduction audit; the file `CITATION.cff` holds the same in "
                "machine-readable form):", "", f"> {supplement}"]
    return [f"The numbers in this book describe {source}, not the paper's patients, and "
            "this copy is not the published supplement (its pages carry no citation metadata "
            f"of their own). Cite its numbers as {whose}, made with the supplement (cite it "
            "for the code and methods):", "",
            f"> {supplement}", "",
            "and the study whose design and definitions it follows (not for these numbers):",
            "", f"> {paper}"]

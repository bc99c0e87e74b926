"""Who made the book, what it is called, its version and licences: read from ``CITATION.cff``.

``CITATION.cff`` is the one place for these facts. The website's title, footer and citation
meta tags, the provenance page, the BibTeX and RIS downloads and ``.zenodo.json`` are all
derived from it here (``python -m bridge_hsct.book.metadata`` rewrites ``.zenodo.json``; a
test checks that the committed file is what it would write).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import yaml

from .. import __version__
from ..paths import CITATION, ROOT

ZENODO = ROOT / ".zenodo.json"

#: What each licence of the supplement covers, by SPDX identifier.
LICENCE_SCOPE = {"MIT": "Code", "CC-BY-4.0": "Text, figures, tables and the synthetic data"}


@dataclass(frozen=True)
class Author:
    """One author: a person (family and given names) or a group (name only)."""

    name: str
    family: str = ""
    given: str = ""
    orcid: str = ""
    affiliation: str = ""

    @classmethod
    def of(cls, entry: dict) -> Author:
        family, given = entry.get("family-names", ""), entry.get("given-names", "")
        name = entry.get("name") or f"{given} {family}".strip()
        orcid = entry.get("orcid", "").removeprefix("https://orcid.org/")
        return cls(name, family, given, orcid, entry.get("affiliation", ""))

    @property
    def inverted(self) -> str:
        """``Family, Given`` for a person (BibTeX, RIS, citation tags); the name of a group."""
        return f"{self.family}, {self.given}" if self.family else self.name


@dataclass(frozen=True)
class Work:
    """A citable work: the supplement itself or the paper it re-analyses."""

    title: str
    authors: tuple[Author, ...]
    year: str
    doi: str = ""
    journal: str = ""
    volume: str = ""
    pages: str = ""
    version: str = ""
    date: str = ""
    url: str = ""


@dataclass(frozen=True)
class Metadata:
    """The supplement and the paper, as ``CITATION.cff`` describes them."""

    supplement: Work
    paper: Work
    licences: tuple[str, ...]
    keywords: tuple[str, ...]
    abstract: str

    @property
    def licence_statement(self) -> str:
        """``Code: MIT. Text, figures, ...: CC-BY-4.0.``"""
        return " ".join(f"{LICENCE_SCOPE.get(spdx, 'Also')}: {spdx}." for spdx in self.licences)


def load_metadata(path: Path = CITATION) -> Metadata:
    """Read ``CITATION.cff``."""
    cff = yaml.load(path.read_text(encoding="utf-8"), Loader=yaml.BaseLoader)  # keep strings
    ref = cff["preferred-citation"]
    licences = cff["license"] if isinstance(cff["license"], list) else [cff["license"]]
    supplement = Work(" ".join(cff["title"].split()), tuple(Author.of(a) for a in cff["authors"]),
                      cff["date-released"][:4], cff.get("doi", ""), version=cff["version"],
                      date=cff["date-released"], url=cff.get("repository-code", ""))
    paper = Work(" ".join(ref["title"].split()), tuple(Author.of(a) for a in ref["authors"]),
                 ref["year"], ref["doi"], ref["journal"], ref["volume"], ref["start"])
    return Metadata(supplement, paper, tuple(licences), tuple(cff.get("keywords", [])),
                    " ".join(cff.get("abstract", "").split()))


def bibtex(work: Work, key: str) -> str:
    """A BibTeX entry: ``@article`` for a journal paper, ``@software`` otherwise."""
    fields = {"title": work.title, "author": " and ".join(a.inverted for a in work.authors),
              "year": work.year, "journal": work.journal, "volume": work.volume,
              "pages": work.pages, "version": work.version, "doi": work.doi, "url": work.url}
    kind = "article" if work.journal else "software"
    body = ",\n".join(f"  {k} = {{{v}}}" for k, v in fields.items() if v)
    return f"@{kind}{{{key},\n{body}\n}}\n"


def ris(work: Work) -> str:
    """A RIS record (``JOUR`` for a journal paper, ``COMP`` for software)."""
    lines = [("TY", "JOUR" if work.journal else "COMP"), ("TI", work.title)]
    lines += [("AU", a.inverted) for a in work.authors]
    lines += [(tag, value) for tag, value in [
        ("PY", work.year), ("JO", work.journal), ("VL", work.volume), ("SP", work.pages),
        ("ET", work.version), ("DO", work.doi), ("UR", work.url)] if value]
    return "\n".join(f"{tag}  - {value}" for tag, value in [*lines, ("ER", "")]) + "\n"


def citation_tags(meta: Metadata) -> list[tuple[str, str]]:
    """Highwire-style ``<meta>`` tags that reference managers (Zotero) and Google Scholar read:
    the page describes the supplement, and names the paper it re-analyses."""
    work = meta.supplement
    tags = [("citation_title", work.title)]
    tags += [("citation_author", a.inverted) for a in work.authors]
    tags += [("citation_publication_date", work.date.replace("-", "/")),
             ("citation_technical_report_institution", "Reproducibility supplement"),
             ("citation_version", work.version),
             ("citation_reference", f"citation_title={meta.paper.title}; "
                                    f"citation_doi={meta.paper.doi}"),
             ("DC.rights", meta.licence_statement)]
    if work.doi:
        tags.append(("citation_doi", work.doi))
    return tags


def zenodo(meta: Metadata) -> dict:
    """The archive's metadata (``.zenodo.json``), from the same facts."""
    work = meta.supplement

    def creator(author: Author) -> dict:
        entry = {"name": author.inverted}
        if author.orcid:
            entry["orcid"] = author.orcid
        if author.affiliation:
            entry["affiliation"] = author.affiliation
        return entry

    return {
        "title": work.title, "upload_type": "software", "version": work.version,
        "publication_date": work.date, "description": meta.abstract,
        "creators": [creator(a) for a in work.authors],
        "license": meta.licences[0].lower(), "keywords": list(meta.keywords),
        "related_identifiers": [{"identifier": meta.paper.doi, "relation": "isSupplementTo",
                                 "scheme": "doi"}],
    }


def write_zenodo(meta: Metadata, path: Path = ZENODO) -> Path:
    """Write ``.zenodo.json`` from `meta`."""
    path.write_text(json.dumps(zenodo(meta), indent=2, ensure_ascii=False) + "\n",
                    encoding="utf-8")
    return path


def check_version(meta: Metadata) -> None:
    """Refuse a ``CITATION.cff`` whose version is not the package's."""
    if meta.supplement.version != __version__:
        raise ValueError(f"CITATION.cff says version {meta.supplement.version}, the package "
                         f"{__version__}: release them together")


if __name__ == "__main__":
    print(f"wrote {write_zenodo(load_metadata())}")

"""CITATION.cff is valid Citation File Format and agrees with the package and the paper."""

import importlib.metadata
import json
import re
from pathlib import Path

import jsonschema
import pybtex.database
import yaml

from bridge_hsct import __version__
from bridge_hsct.book.metadata import bibtex, load_metadata, ris, zenodo
from bridge_hsct.book.provenance import citation_text, git_revision

ROOT = Path(__file__).resolve().parents[1]
# the CFF 1.2.0 JSON schema, as published by the citation-file-format project
SCHEMA = json.loads((ROOT / "tests" / "data" / "citation-cff-1.2.0.schema.json").read_text())


def load_citation():
    # CFF dates are strings in the schema; keep YAML from turning them into dates
    return yaml.load((ROOT / "CITATION.cff").read_text(), Loader=yaml.BaseLoader)


def test_citation_file_is_valid_cff():
    citation = load_citation()
    citation["preferred-citation"]["volume"] = int(citation["preferred-citation"]["volume"])
    citation["preferred-citation"]["year"] = int(citation["preferred-citation"]["year"])
    jsonschema.Draft7Validator(SCHEMA).validate(citation)


def test_citation_matches_package_and_paper():
    citation = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert citation["version"] == __version__
    # the installed package's version is read from the same attribute (pyproject: dynamic)
    assert importlib.metadata.version("bridge-hsct") == __version__
    paper = citation["preferred-citation"]
    assert paper["doi"] == "10.1186/s12967-025-06399-1"
    text = (ROOT.parent / "shared" / "paper" /
            "cao2025-car-t-vs-blinatumomab-bridge-to-hsct.txt")
    if text.exists():  # the paper's author line, read from the full text
        first_line = next(line for line in text.read_text().splitlines() if "Wenyue Cao" in line)
        for author in paper["authors"]:
            assert f"{author['given-names']} {author['family-names']}" in first_line


def test_citation_text_and_git_revision():
    supplement, paper = citation_text(load_metadata())
    assert paper.startswith("Cao W, Li N, Wang G, et al.") and "2025;23:391" in paper
    assert "(https://doi.org/10.1186/s12967-025-06399-1)" in paper
    assert f"Version {__version__}" in supplement
    revision = git_revision()
    assert len(revision.split()[0]) == 40 or revision.startswith("unknown")


def test_one_title_everywhere():
    """The supplement's title is the configuration's; the landing page's heading is the
    title the build sets (the supplement's on the reference cohort, see
    tests/test_other_centre.py)."""
    title = load_metadata().supplement.title
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    landing = (ROOT / "book" / "intro.md").read_text().splitlines()[0]
    assert config["title"] == title and landing == "# {{ book_title }}"


def test_zenodo_metadata_is_derived_from_the_citation_file():
    committed = json.loads((ROOT / ".zenodo.json").read_text())
    assert committed == zenodo(load_metadata()), \
        "regenerate with: python -m bridge_hsct.book.metadata"
    assert committed["version"] == __version__
    assert {"title", "creators", "upload_type", "license", "publication_date"} <= set(committed)
    assert committed["related_identifiers"][0]["identifier"] == "10.1186/s12967-025-06399-1"


def test_bibtex_reads_back_with_an_independent_parser():
    meta = load_metadata()
    entries = pybtex.database.parse_string(bibtex(meta.paper, "cao2025") +
                                           bibtex(meta.supplement, "supplement"), "bibtex")
    paper = entries.entries["cao2025"]
    assert paper.type == "article" and paper.fields["doi"] == "10.1186/s12967-025-06399-1"
    assert [str(p) for p in paper.persons["author"]][:2] == ["Cao, Wenyue", "Li, Ningwen"]
    assert entries.entries["supplement"].fields["version"] == __version__


def test_ris_records_are_well_formed():
    record = ris(load_metadata().paper).splitlines()
    assert record[0] == "TY  - JOUR" and record[-1] == "ER  - "
    assert all(re.fullmatch(r"[A-Z][A-Z0-9]  - .*", line) for line in record)
    assert sum(line.startswith("AU  - ") for line in record) == 11

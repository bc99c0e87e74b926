"""CITATION.cff is valid Citation File Format and agrees with the package and the paper."""

import json
from pathlib import Path

import jsonschema
import yaml

from bridge_hsct import __version__
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
    paper = citation["preferred-citation"]
    assert paper["doi"] == "10.1186/s12967-025-06399-1"
    text = (ROOT.parent / "shared" / "paper" /
            "cao2025-car-t-vs-blinatumomab-bridge-to-hsct.txt")
    if text.exists():  # the paper's author line, read from the full text
        first_line = next(line for line in text.read_text().splitlines() if "Wenyue Cao" in line)
        for author in paper["authors"]:
            assert f"{author['given-names']} {author['family-names']}" in first_line


def test_citation_text_and_git_revision():
    supplement, paper = citation_text(yaml.safe_load((ROOT / "CITATION.cff").read_text()))
    assert paper.startswith("Cao W, Li N, Wang G, et al.") and "2025;23:391" in paper
    assert f"Version {__version__}" in supplement
    revision = git_revision()
    assert len(revision.split()[0]) == 40 or revision.startswith("unknown")

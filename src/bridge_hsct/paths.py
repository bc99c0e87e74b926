"""Where the project's files are: every path the package reads, computed once.

The package lives in ``src/bridge_hsct`` of a checkout; the book's pages, notebooks, data and
configuration are folders of that checkout.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
BOOK = ROOT / "book"
NOTEBOOKS = ROOT / "notebooks"
DATA = ROOT / "data"
CONFIG = ROOT / "_config.yml"
CITATION = ROOT / "CITATION.cff"
LOCK = ROOT / "requirements.lock"
BUILD = ROOT / "_build"

#: The bundled synthetic cohort, its calibration report, the registry of published values
#: and the literature figures (see data/README.md).
DEFAULT_DATA = DATA / "synthetic_cohort.csv"
CALIBRATION_REPORT = DATA / "synthetic_cohort_calibration.csv"
PUBLISHED_VALUES = DATA / "published_values.csv"
LITERATURE = DATA / "literature_context.csv"


def sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def is_reference_cohort(path: str | Path) -> bool:
    """Whether `path` holds exactly the bundled synthetic cohort."""
    return DEFAULT_DATA.is_file() and sha256(path) == sha256(DEFAULT_DATA)


def chapters() -> list[str]:
    """Chapter notebooks listed in the book's table of contents, in order."""
    toc = yaml.safe_load((BOOK / "_toc.yml").read_text())
    names = []
    for part in toc.get("parts", [{"chapters": toc.get("chapters", [])}]):
        for entry in part.get("chapters", []):
            name = entry.get("file", "")
            if (NOTEBOOKS / f"{name}.md").is_file():
                names.append(name)
    return names

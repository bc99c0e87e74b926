"""Rebuilds are byte-identical, publish no machine path or memory address, and the cache
notices every file a page reads."""

import json
import re
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

import bridge_hsct.book.build as book_build
import bridge_hsct.paper.published as published
from bridge_hsct.book.build import ROOT, Parameters, build
from conftest import path_text

# owned elsewhere (issue 18): random pandas Styler table ids, XLSX creation timestamps
ADDRESS = re.compile(r"0x[0-9a-fA-F]{8,}")


def quiet(*args, **kwargs):
    pass


@pytest.fixture(scope="module")
def twins(tmp_path_factory):
    """The default cohort built twice (the first filling a cache, the second without one)
    into unrelated folders with their own temp dirs, at the same SOURCE_DATE_EPOCH (the
    time shown on the provenance page)."""
    sites = []
    for name, cache in (("first", "cache"), ("second", None)):
        root = tmp_path_factory.mktemp(name)
        (root / "tmp").mkdir()
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("SOURCE_DATE_EPOCH", "1767225600")
            patch.setattr(tempfile, "tempdir", str(root / "tmp"))
            sites.append(build(root / "out" / f"site-{name}", Parameters(), log=quiet,
                               cache=root / cache if cache else None))
    return sites


def files(site: Path) -> dict[str, bytes]:
    return {str(p.relative_to(site)): p.read_bytes() for p in sorted(site.rglob("*"))
            if p.is_file()}


def without_timings(record: bytes) -> dict:
    record = json.loads(record)
    record.pop("stages")
    return record


def differing(first: Path, second: Path) -> list[str]:
    a, b = files(first), files(second)
    assert a.keys() == b.keys()
    different = [name for name in a if a[name] != b[name]]
    assert "build.json" in different, "stage timings differ"
    assert without_timings(a["build.json"]) == without_timings(b["build.json"])
    return [name for name in different if name != "build.json"]


def test_two_builds_are_byte_identical(twins):
    assert differing(*twins) == []


def machine_strings(site: Path) -> list[str]:
    """Paths of this machine and of the build that must not be published."""
    return [str(ROOT), tempfile.gettempdir() + "/", str(site.parent), sys.prefix,
            ".site-first.build-", "bridge-hsct-", "notebook-cache"]


@pytest.mark.parametrize("index", [0, 1])
def test_no_machine_path_or_memory_address_in_the_site(twins, index):
    site = twins[index]
    found = []
    for path in sorted(p for p in site.rglob("*") if p.is_file() and "_static" not in p.parts):
        if path.suffix in {".png", ".jpg", ".gif", ".woff", ".woff2", ".ico", ".inv"}:
            continue
        text = path_text(path)
        found += [(path.name, s) for s in machine_strings(site) if s in text]
        found += [(path.name, m) for m in ADDRESS.findall(text)]
    assert found == []


def test_downloadable_notebooks_have_fixed_cell_ids_and_no_run_metadata(twins):
    notebooks = sorted((twins[0] / "_sources").glob("*.ipynb"))
    assert notebooks
    for path in notebooks:
        notebook = json.loads(path.read_text(encoding="utf-8"))
        assert notebook["metadata"]["papermill"] == {"parameters": {
            **notebook["metadata"]["papermill"]["parameters"],
            "data_path": "../data/synthetic_cohort.csv"}}
        for index, cell in enumerate(notebook["cells"]):
            assert cell["id"] == f"cell-{index}"
            assert "papermill" not in cell["metadata"] and "execution" not in cell["metadata"]


def test_the_executed_notebooks_in_the_cache_are_clean(twins):
    cache = twins[0].parent.parent / "cache"
    notebooks = sorted(cache.rglob("*.ipynb"))
    assert notebooks
    for path in notebooks:
        text = path.read_text(encoding="utf-8")
        assert not [s for s in machine_strings(twins[0]) if s in text], path
        assert not ADDRESS.findall(text), path


@pytest.fixture
def registry_copy(tmp_path, monkeypatch):
    """The chapters and the cache key read a copy of data/ (the registry in it)."""
    data = tmp_path / "data"
    shutil.copytree(ROOT / "data", data)
    monkeypatch.setattr(book_build, "DATA", data)
    monkeypatch.setattr(published, "DEFAULT_PATH", data / "published_values.csv")
    return data / "published_values.csv"


def test_editing_the_published_values_invalidates_the_cache(twins, registry_copy):
    cache, out = twins[0].parent.parent / "cache", twins[0].parent / "edited"
    lines = []
    build(out, Parameters(), log=lines.append, cache=cache)
    executed = [line for line in lines if line.startswith("[")]
    assert executed and all("from cache" in line for line in executed), "a copy is no edit"
    before = (out / "audit.html").read_text(encoding="utf-8")
    text = registry_copy.read_text(encoding="utf-8")
    edited = text.replace("cohort,n_patients,whole,n,36,", "cohort,n_patients,whole,n,37,")
    assert edited != text
    registry_copy.write_text(edited, encoding="utf-8")
    lines.clear()
    build(out, Parameters(), log=lines.append, cache=cache)
    assert not any("up to date" in line for line in lines)
    executed = [line for line in lines if line.startswith("[")]
    assert executed and not any("from cache" in line for line in executed)
    assert (out / "audit.html").read_text(encoding="utf-8") != before


@pytest.mark.parametrize("edit", ["CITATION.cff", "book/intro.md", "_config.yml"])
def test_pages_and_citation_are_part_of_the_site_key(tmp_path, monkeypatch, edit):
    copy = tmp_path / "repo"
    copy.mkdir()
    for name in ("CITATION.cff", "book", "_config.yml"):
        source = ROOT / name
        (shutil.copytree if source.is_dir() else shutil.copy)(source, copy / name)
    monkeypatch.setattr(book_build, "CITATION", copy / "CITATION.cff")
    monkeypatch.setattr(book_build, "BOOK", copy / "book")
    monkeypatch.setattr(book_build, "CONFIG", copy / "_config.yml")

    def key() -> str:
        staging = tmp_path / f"staging-{len(list(tmp_path.iterdir()))}"
        src = book_build._stage_sources(staging, str(book_build.DEFAULT_DATA))
        return book_build._site_key({}, src)

    first = key()
    assert key() == first
    with open(copy / edit, "a", encoding="utf-8") as f:
        f.write("\nx_edited: 1\n")
    assert key() != first


def test_the_data_folder_is_part_of_every_notebook_key(tmp_path, monkeypatch):
    data = tmp_path / "data"
    shutil.copytree(ROOT / "data", data)
    monkeypatch.setattr(book_build, "DATA", data)
    public = book_build._Public.of(str(book_build.DEFAULT_DATA))
    first = book_build._dependencies(public)
    for name in ("literature_context.csv", "synthetic_cohort_calibration.csv"):
        with open(data / name, "a", encoding="utf-8") as f:
            f.write("\n")
        assert book_build._dependencies(public) != first, name
        first = book_build._dependencies(public)

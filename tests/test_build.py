"""End to end: the book builds from the default cohort, and failures leave the old site."""

import csv
import re
import shutil

import pytest
import yaml

from bridge_hsct.book.build import DEFAULT_DATA, BuildError, Parameters, build
from bridge_hsct.book.cli import main
from bridge_hsct.cohort.validate import CohortError
from conftest import page_text

# Table 1 of the paper, counts (whole, blinatumomab, CAR-T) for binary rows
PAPER_TABLE1 = {
    "ph_positive": (13, 4, 9), "ikzf1_isoform6": (5, 1, 4), "complex_karyotype": (9, 2, 7),
    "ph_like": (4, 1, 3), "mll_rearrangement": (2, 1, 1),
}
PAPER_P_VALUES = ["0.700", "0.324", "0.693", "0.285", "0.005", "0.026", "0.121", "0.111"]


@pytest.fixture
def site(built_site, tmp_path):
    """A private copy of the session's built site (these tests try to overwrite it)."""
    copy = tmp_path / "site"
    shutil.copytree(built_site, copy)
    return copy


def test_second_build_uses_the_cache_and_data_changes_invalidate_it(tmp_path):
    lines = []
    cache, out = tmp_path / "cache", tmp_path / "site"
    build(out, Parameters(), log=lines.append, cache=cache)
    assert not any("from cache" in line for line in lines)
    lines.clear()
    build(out, Parameters(), log=lines.append, cache=cache)
    assert any("up to date" in line for line in lines)
    lines.clear()
    build(tmp_path / "other", Parameters(), log=lines.append, cache=cache)
    executed = [line for line in lines if line.startswith("[")]
    assert executed and all("from cache" in line for line in executed)
    changed = tmp_path / "changed.csv"
    rows = DEFAULT_DATA.read_text().splitlines()
    changed.write_text("\n".join(rows[:-1]) + "\n")  # one patient fewer
    lines.clear()
    build(tmp_path / "other", Parameters(data_path=str(changed)), log=lines.append, cache=cache)
    executed = [line for line in lines if line.startswith("[")]
    assert executed and not any("from cache" in line for line in executed)


def n_pct(k, n):
    return f"{k} ({100 * k / n:.1f}%)"


def test_table1_shows_counts_of_the_data(site):
    with open(DEFAULT_DATA, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    page = page_text(site / "baseline.html")
    arms = sorted({r["arm"] for r in rows})
    for variable in PAPER_TABLE1:
        whole = [r for r in rows if r[variable] == "1"]
        assert n_pct(len(whole), len(rows)) in page, variable
        for arm in arms:
            members = [r for r in rows if r["arm"] == arm]
            k = sum(r[variable] == "1" for r in members)
            assert n_pct(k, len(members)) in page, (variable, arm)


def test_table1_matches_the_paper_counts_and_p_values(site):
    page = page_text(site / "baseline.html")
    for variable, (whole, blin, cart) in PAPER_TABLE1.items():
        assert f"{n_pct(whole, 36)} {n_pct(blin, 9)} {n_pct(cart, 27)}" in page, variable
    for p in PAPER_P_VALUES:
        assert p in page


def test_every_page_is_there_and_labelled_synthetic(site):
    for page in ["index.html", "intro.html", "methods.html", "data_dictionary.html",
                 "baseline.html"]:
        assert (site / page).is_file(), page
    assert "Synthetic data" in page_text(site / "baseline.html")
    assert (site / "_downloads").is_dir()
    csvs = list((site / "_downloads").rglob("table1.csv"))
    assert csvs, "Table 1 CSV is downloadable"


def test_bad_data_leaves_the_old_site(site, tmp_path):
    before = (site / "baseline.html").stat().st_mtime_ns
    bad = tmp_path / "bad.csv"
    bad.write_text("patient_id,arm\np1,A\n")
    with pytest.raises(CohortError):
        build(site, Parameters(data_path=str(bad)), log=lambda *a, **k: None)
    assert main(["build", "--data", str(bad), "--out", str(site)]) == 2
    assert (site / "baseline.html").stat().st_mtime_ns == before


def test_failing_notebook_is_named_and_old_site_kept(site, monkeypatch):
    def broken(*args, **kwargs):
        raise ValueError("broken on purpose")

    # chapters run in processes forked from this one: they inherit the broken function
    monkeypatch.setattr("bridge_hsct.paper.table1.describe_cohort", broken)
    before = (site / "baseline.html").stat().st_mtime_ns
    with pytest.raises(BuildError, match=r"notebooks/baseline\.md failed in cell \d+ "
                                         r"\(ValueError: broken on purpose"):
        # another landmark: the copied site is not "up to date" for these parameters
        build(site, Parameters(landmark_months=12), log=lambda *a, **k: None, cache=None)
    assert (site / "baseline.html").stat().st_mtime_ns == before
    assert not list(site.parent.glob(".site.build-*")), "staging folder removed"


def test_a_group_order_that_misses_a_group_is_refused_before_any_chapter(site):
    before = (site / "baseline.html").stat().st_mtime_ns
    with pytest.raises(CohortError, match="group_order"):
        build(site, Parameters(group_order=["No such arm", "CAR-T"]), log=lambda *a, **k: None)
    assert (site / "baseline.html").stat().st_mtime_ns == before


def test_chapters_take_the_cohort_the_build_validated(tmp_path, monkeypatch):
    """The build validates the input once and hands the result to its chapter workers:
    with validation broken after that, the chapters and the audit score still run."""
    from bridge_hsct.book import build as build_module
    from bridge_hsct.cohort import validate as validate_module

    cohorts = validate_module.ValidatedCohorts()
    cohorts.load(str(DEFAULT_DATA))

    def no_second_validation(*args, **kwargs):
        raise AssertionError("the cohort was validated again")

    monkeypatch.setattr(validate_module, "validate_cohort", no_second_validation)
    monkeypatch.setattr(build_module, "chapters", lambda: ["baseline", "audit"])
    scores = []

    def render_nothing(src, staging):  # only the chapters are under test here
        scores.append(yaml.safe_load((src / "_config.yml").read_text()))
        (staging / "html").mkdir()
        return staging / "html", 0.0

    monkeypatch.setattr(build_module, "_render", render_nothing)
    build(tmp_path / "site", Parameters(), log=lambda *a, **k: None, cache=None,
          cohorts=cohorts)
    sentence = scores[0]["sphinx"]["config"]["myst_substitutions"]["audit_score"]
    assert sentence.startswith("**Reproduction audit:**")


def test_the_landing_page_gives_the_audit_chapter_s_score(built_site):
    """The build computes the landing page's sentence itself; it must agree with the
    audit chapter's own count."""
    audit = page_text(built_site / "audit.html")
    landing = page_text(built_site / "intro.html")
    checked, reproduced = re.search(r"Of the (\d+) published numbers that the synthetic "
                                    r"cohort was not fitted to, (\d+) \(", audit).groups()
    assert (f"Reproduction audit: Of the {checked} published numbers that the synthetic cohort "
            f"was not fitted to, {reproduced} (") in landing

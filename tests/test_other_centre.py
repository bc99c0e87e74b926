"""A cohort from another centre builds the whole book: other arm labels, three arms, optional
columns missing, calendar dates instead of days, a few thousand patients; and the book speaks
of that cohort, not of the paper's (issue 13): its own title, no reproduction score, no page
about the paper's cohort alone."""

import html
import re

import numpy as np
import pandas as pd
import pytest
import yaml

from bridge_hsct.book import build as book_build
from bridge_hsct.book.build import DEFAULT_DATA, Parameters, build
from bridge_hsct.book.metadata import load_metadata
from bridge_hsct.book.provenance import citation_text
from bridge_hsct.paths import chapters, sha256
from bridge_hsct.render.escaping import markdown_text
from conftest import download, page_text, path_text, site_files
from test_site import broken_links, pages, parse

OPTIONAL_DROPPED = ["ikzf1_isoform6", "donor_sex", "crs_grade", "icans", "t315i",
                    "platelet_engraftment", "platelet_engraftment_days", "tma"]
EVENTS = ["relapse", "agvhd_2_4", "agvhd_3_4", "cgvhd", "neutrophil_engraftment"]


def other_centre_cohort(n: int, seed: int = 7) -> pd.DataFrame:
    """`n` patients resampled from the synthetic cohort, relabelled into three arms, with
    calendar dates instead of days and some optional columns absent."""
    rng = np.random.default_rng(seed)
    base = pd.read_csv(DEFAULT_DATA)
    data = base.iloc[rng.integers(0, len(base), n)].reset_index(drop=True)
    data["patient_id"] = [f"OC-{i:05d}" for i in range(n)]
    data["arm"] = rng.choice(["Inotuzumab", "Chemotherapy", "CAR-T 19"], n, p=[.3, .3, .4])
    day0 = pd.Series(pd.Timestamp("2018-01-01")
                     + pd.to_timedelta(rng.integers(0, 1500, n), unit="D"))
    data["hsct_date"] = day0.dt.strftime("%Y-%m-%d")
    end = day0 + pd.to_timedelta(data["followup_days"], unit="D")
    data["last_contact_date"] = end.dt.strftime("%Y-%m-%d")
    data["death_date"] = end.where(data["death"] == 1).dt.strftime("%Y-%m-%d")
    for event in EVENTS:
        when = day0 + pd.to_timedelta(data[f"{event}_days"], unit="D")
        data[f"{event}_date"] = when.where(data[event] == 1).dt.strftime("%Y-%m-%d")
    days = ["followup_days", "death"] + EVENTS + [f"{e}_days" for e in EVENTS]
    return data.drop(columns=days + OPTIONAL_DROPPED)


#: A title a centre could give its book, with HTML, Markdown and MyST substitution syntax.
HOSTILE_TITLE = "<b>x</b> *y* {{z}} [a](b)"
#: Pages about the paper and the bundled cohort alone.
REFERENCE_ONLY = ["calibration", "inconsistencies", "literature"]
ORDER = ["Chemotherapy", "Inotuzumab", "CAR-T 19"]


@pytest.fixture(scope="module")
def other_cohort() -> pd.DataFrame:
    return other_centre_cohort(3000)


@pytest.fixture(scope="module")
def other_site(tmp_path_factory, other_cohort):
    folder = tmp_path_factory.mktemp("other centre")
    path = folder / "cohort with dates.csv"
    other_cohort.to_csv(path, index=False)
    out = folder / "site"
    build(out, Parameters(data_path=str(path), group_order=ORDER, cutoff_date="2023-12-31",
                          title=HOSTILE_TITLE), log=lambda *a, **k: None, cache=None)
    return out


def visible(page) -> str:
    """A page's visible text with HTML entities read back (``&lt;`` → ``<``)."""
    return html.unescape(page_text(page))


def test_whole_book_builds_for_another_centre(other_site):
    baseline = page_text(other_site / "baseline.html")
    for arm in ["Chemotherapy", "Inotuzumab", "CAR-T 19"]:
        assert arm in baseline
    assert "Synthetic data" not in baseline and "cohort with dates.csv" in baseline
    pages = {p.name for p in other_site.glob("*.html")}
    assert {"baseline.html", "audit.html", "provenance.html"} <= pages


def test_downloads_name_the_centre_s_own_file_and_its_digest(other_site):
    """The build stages a validated copy; the labels still name the file the centre gave,
    with the digest a reader can check against it (the provenance page's)."""
    source = other_site.parent / "cohort with dates.csv"
    [svg] = list((other_site / "_downloads").rglob("figure1c.svg"))
    label = " ".join(re.sub(r"<[^>]+>", " ", svg.read_text(encoding="utf-8")).split())
    assert f"Computed from {source.name} (SHA-256 {sha256(source)[:12]}" in label
    [sidecar] = list((other_site / "_downloads").rglob("figure1_estimates.csv.txt"))
    assert source.name in sidecar.read_text(encoding="utf-8")


def test_missing_optional_columns_are_noted_not_crashed(other_site):
    text = page_text(other_site / "baseline.html")
    assert "Not in the data" in text and "Ikaros isoform 6" in text


def test_no_patient_ids_leak(other_site):
    for path in site_files(other_site):
        assert "OC-0" not in path_text(path), path.relative_to(other_site)


# ------------------------------------------------------------ framed by the data (issue 13)

def test_the_given_title_is_the_book_s_title_shown_verbatim(other_site):
    landing = (other_site / "intro.html").read_text(encoding="utf-8")
    shown = html.escape(HOSTILE_TITLE, quote=False)
    assert re.search(rf"<title>{re.escape(shown)}( &#8212; |</title>)", landing)
    assert f'logo__title">{shown}<' in landing
    assert re.search(rf"<h1>{re.escape(shown)}<a class=\"headerlink\"", landing)
    for page in pages(other_site):  # never as markup, wherever the theme prints it
        text = page.read_text(encoding="utf-8")
        assert "<b>x</b>" not in text and "<em>y</em>" not in text, page.name
        if page.name not in {"index.html", "search.html", "genindex.html"}:
            assert shown in text, f"{page.name} does not show the book's title"


def test_no_page_calls_itself_the_paper_s_re_analysis_or_shows_a_score(other_site):
    # the supplement's own citation (the software the book was made with) may name it
    supplement, _ = citation_text(load_metadata())
    for page in pages(other_site):
        text = visible(page).replace(" ".join(supplement.split()), "")
        for claim in ["re-analysis", "Reproduction audit", "Synthetic data",
                      "synthetic cohort", "reproduced from these data", "checkable numbers",
                      "The study followed 36"]:
            assert claim not in text, f"{page.name} says {claim!r}"
    footer = re.search(r'<div class="extra_footer">(.*?)</div>',
                       (other_site / "methods.html").read_text(encoding="utf-8"), re.S)[1]
    assert "not the published supplement" in html.unescape(footer)


def test_pages_about_the_paper_s_cohort_alone_are_not_built(other_site):
    assert set(REFERENCE_ONLY) <= set(chapters()), "still in the table of contents"
    built = {p.stem for p in pages(other_site)}
    assert not built & set(REFERENCE_ONLY)
    for page in pages(other_site):
        targets = {link.split("#")[0] for _, link in parse(page).links}
        assert not {f"{name}.html" for name in REFERENCE_ONLY} & targets, page.name
    assert not broken_links(other_site)


def test_the_landing_page_describes_this_cohort(other_site, other_cohort):
    landing = visible(other_site / "intro.html")
    assert f"{len(other_cohort):,} patients" in landing
    sizes = other_cohort["arm"].value_counts()
    assert ", ".join(f"{arm} ({sizes[arm]:,})" for arm in ORDER) in landing
    assert "cohort with dates.csv" in landing and "not the paper's 36 patients" in landing


def test_the_audit_is_a_plain_comparison_without_verdicts(other_site):
    page = other_site / "audit.html"
    text, raw = visible(page), page.read_text(encoding="utf-8")
    assert "This cohort beside the published one" in text
    assert "the paper's 36 patients" in text and "not meant to reproduce them" in text
    assert 'id="audit-table-status"' not in raw and 'class="audit-' not in raw.split(
        '<table id="audit-table"')[1], "no status filter, no row marked by a verdict"
    audit = download(other_site, "audit.csv")
    assert "status" not in audit and audit["published"].notna().all()
    assert audit["recomputed"].notna().any(), "this cohort's values are shown"


def test_nothing_describes_this_book_as_the_published_supplement(other_site):
    for page in pages(other_site):
        assert "citation_title" not in page.read_text(encoding="utf-8"), page.name
    provenance = visible(other_site / "provenance.html")
    assert "not the published supplement" in provenance
    assert "not for these numbers" in provenance
    assert HOSTILE_TITLE in provenance, "the title it was built with is recorded"


def test_the_reference_book_keeps_its_pages_and_score(built_site):
    assert {f"{name}.html" for name in REFERENCE_ONLY} <= {p.name for p in pages(built_site)}
    landing = built_site / "intro.html"
    assert "Reproduction audit:" in visible(landing)
    assert load_metadata().supplement.title in visible(landing)
    assert "citation_title" in landing.read_text(encoding="utf-8")
    assert 'id="audit-table-status"' in (built_site / "audit.html").read_text(encoding="utf-8")


def staged(folder, path, **parameters) -> tuple[dict, set]:
    """The configuration and the chapters listed in the table of contents that a build of
    the file `path` would stage (nothing executed)."""
    src = book_build._stage_sources(folder / "staging", str(path),
                                    Parameters(data_path=str(path), **parameters))
    toc = yaml.safe_load((src / "_toc.yml").read_text())
    return (yaml.safe_load((src / "_config.yml").read_text()),
            {c["file"] for part in toc["parts"] for c in part["chapters"]})


def test_default_title_names_the_groups_and_the_file(tmp_path, other_cohort):
    path = tmp_path / "centre *A*.csv"
    other_cohort.head(200).to_csv(path, index=False)
    config, listed = staged(tmp_path / "default", path)
    title = config["title"]
    assert "centre *A*.csv" in title and "by group" in title
    assert config["sphinx"]["config"]["myst_substitutions"]["book_title"] == markdown_text(title)
    assert "audit" in listed and not listed & set(REFERENCE_ONLY)
    labelled, _ = staged(tmp_path / "labelled", path, group_label="centre")
    assert "by centre" in labelled["title"]


def test_reference_staging_keeps_the_supplement_s_title(tmp_path):
    copy = tmp_path / "copy.csv"
    copy.write_bytes(DEFAULT_DATA.read_bytes())
    config, listed = staged(tmp_path, copy)
    assert config["title"] == load_metadata().supplement.title
    assert config["sphinx"]["config"]["bridge_hsct_reference_cohort"] is True
    assert set(REFERENCE_ONLY) <= listed

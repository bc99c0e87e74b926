"""The pooled book, built from centres' bundles, prints the numbers of the pooled rows.

Two cohorts are split into three centres each (the synthetic cohort rounded up to whole
days, and a simulated three-arm cohort); each centre writes its bundle; the pooled book is
built from the bundles alone; the CSV files it offers for download are then compared with
the package's row-level estimators and lifelines on the pooled rows, number for number.
"""

import numpy as np
import pandas as pd
import pytest
from lifelines.statistics import multivariate_logrank_test

from bridge_hsct.book.cli import main as cli_main
from bridge_hsct.book.parameters import Parameters
from bridge_hsct.book.pooled_build import build_pooled, pooled_chapters
from bridge_hsct.cohort.endpoints import derive, known_status
from bridge_hsct.cohort.validate import validate_cohort
from bridge_hsct.paper import bundle as bundles
from bridge_hsct.paper.table1 import baseline_table
from bridge_hsct.paper.table3 import outcome_table
from bridge_hsct.paths import NOTEBOOKS
from bridge_hsct.render.disclosure import NO_SUPPRESSION
from bridge_hsct.stats.competing import cumulative_incidence, gray_test
from bridge_hsct.stats.survival import km_at, months_to_days
from test_bundle import simulated_raw, split_into_centres, synthetic_raw
from test_notebooks import pairing_problem, ruff_findings

TOLERANCE = 1e-10
COHORTS = {"synthetic": synthetic_raw, "simulated": simulated_raw}
LANDMARK_DAYS = float(months_to_days(Parameters.landmark_months))  # the book's default


@pytest.fixture(scope="module", params=sorted(COHORTS))
def pooled_site(request, tmp_path_factory):
    """(pooled validated rows, centre of each row, the built site)."""
    folder = tmp_path_factory.mktemp(request.param)
    centres = split_into_centres(COHORTS[request.param](), 3, seed=11)
    paths = []
    for i, centre in enumerate(centres):
        paths.append(folder / f"centre{i}.bundle.zip")
        bundles.write_bundle(centre, "arm", paths[-1])
    site = build_pooled(folder / "site", Parameters(bundles=[str(p) for p in paths]),
                        log=lambda *a: None)
    rows = validate_cohort(pd.concat(centres, ignore_index=True), "<pooled>", "arm")
    centre = np.repeat(np.arange(len(centres)), [len(c) for c in centres])
    return rows, centre, site


def download(site, name: str) -> pd.DataFrame:
    [path] = list((site / "_downloads").rglob(name))
    return pd.read_csv(path)


def endpoint_rows(rows, centre, name):
    known = known_status(rows, name).to_numpy()
    return derive(rows[known], name).assign(group=rows.loc[known, "arm"].to_numpy(),
                                            centre=centre[known])


@pytest.mark.parametrize("name", ["os", "pfs", "grfs"])
def test_survival_downloads_equal_the_pooled_rows(pooled_site, name):
    rows, centre, site = pooled_site
    data = endpoint_rows(rows, centre, name)
    estimates = download(site, f"{name}_estimates.csv").set_index("group")
    for group, mine in data.groupby("group"):
        theirs = km_at(mine["time"], mine["cause"] == 1, LANDMARK_DAYS)
        ours = estimates.loc[group]
        assert ours["n"] == len(mine) and ours["events"] == (mine["cause"] == 1).sum()
        np.testing.assert_allclose(ours[["estimate", "lower", "upper"]].to_numpy(float),
                                   [theirs.value, theirs.lower, theirs.upper], atol=TOLERANCE)
    tests = download(site, f"{name}_tests.csv").set_index(["test", "stratified_by"])
    lifelines = multivariate_logrank_test(data["time"], data["group"], data["cause"] == 1)
    assert tests.loc[("log-rank", "none"), "chi2"] == pytest.approx(
        lifelines.test_statistic, rel=TOLERANCE)


@pytest.mark.parametrize("name", ["nrm", "relapse", "agvhd_2_4", "cgvhd"])
def test_incidence_downloads_equal_the_pooled_rows(pooled_site, name):
    rows, centre, site = pooled_site
    data = endpoint_rows(rows, centre, name)
    by_group = data.groupby("group")
    estimates = download(site, f"{name}_estimates.csv").set_index("group")
    for group, mine in by_group:
        theirs = cumulative_incidence(mine["time"], mine["cause"], t=LANDMARK_DAYS)
        np.testing.assert_allclose(
            estimates.loc[group, ["estimate", "lower", "upper"]].to_numpy(float),
            [theirs.value, theirs.lower, theirs.upper], atol=TOLERANCE)
    tests = download(site, f"{name}_tests.csv").set_index(["test", "stratified_by"])
    gray = gray_test(data["time"], data["cause"], data["group"])
    assert tests.loc[("Gray", "none"), "chi2"] == pytest.approx(gray.chi2, rel=1e-8)
    lifelines = multivariate_logrank_test(data["time"], data["group"], data["cause"] == 1)
    assert tests.loc[("log-rank", "none"), "chi2"] == pytest.approx(
        lifelines.test_statistic, rel=TOLERANCE)


@pytest.mark.parametrize("name, split", [("os", "mrd_positive"), ("grfs", "graft_source")])
def test_subgroup_test_downloads_equal_the_pooled_rows(pooled_site, name, split):
    """The subgroup page's plain pooled log-rank test is that of the pooled rows by level."""
    from bridge_hsct.paper.panels import subgroup_levels

    rows, centre, site = pooled_site
    levels = subgroup_levels(rows, split)[0]
    data = endpoint_rows(rows.assign(arm=levels), centre, name)
    data = data[data["group"].notna()]
    theirs = multivariate_logrank_test(data["time"], data["group"], data["cause"] == 1)
    tests = download(site, f"{name}_by_{split}_tests.csv")
    plain = tests[(tests["test"] == "log-rank") & (tests["stratified_by"] == "none")].iloc[0]
    assert plain["chi2"] == pytest.approx(theirs.test_statistic, rel=TOLERANCE)
    assert "Subgroups, pooled" in (site / "subgroups.html").read_text(encoding="utf-8")


def test_table1_download_equals_the_row_level_table(pooled_site):
    rows, _, site = pooled_site
    groups = sorted(rows["arm"].unique())
    theirs = baseline_table(rows, "arm", groups,
                            disclosure=NO_SUPPRESSION).numbers.dropna(subset=["count"])
    assert_same_lines(download(site, "pooled_table1.csv"), theirs)


def assert_same_lines(ours: pd.DataFrame, theirs: pd.DataFrame) -> None:
    """Every line of the pooled download is one of the row-level table's, and back: the
    same counts, denominators, unknowns, test and P value."""
    assert len(theirs) > 0
    merged = ours.merge(theirs, on=["variable", "level", "group"], suffixes=("", "_rows"),
                        validate="one_to_one")
    assert len(merged) == len(theirs) == len(ours)
    for column in ("count", "n", "n_unknown", "test"):
        assert (merged[column] == merged[f"{column}_rows"]).all(), column
    np.testing.assert_allclose(merged["p_value"], merged["p_value_rows"], rtol=1e-12)


def test_table3_download_equals_the_row_level_table(pooled_site):
    """Table 3's categorical lines (a line is named by its key and label on rows, by
    variable and level in the pooled download): counts, denominators, test and P value.
    The pooled book has no Supplementary Table 1 (CRS and ICANS are not bundled)."""
    rows, _, site = pooled_site
    groups = sorted(rows["arm"].unique())
    theirs = (outcome_table(rows, "arm", groups,
                            disclosure=NO_SUPPRESSION).numbers.dropna(subset=["count"])
              .drop(columns="variable").rename(columns={"row": "variable", "label": "level"}))
    ours = download(site, "pooled_table3.csv")
    assert (ours["table"] == "table3").all()
    assert_same_lines(ours, theirs)


def _peto_from_rows(rows: pd.DataFrame, reference: str, group: str) -> tuple[float, float]:
    """O - E and V of `group` against `reference`, summed over the centres, written out
    over the distinct event times of each centre's rows."""
    o_minus_e = variance = 0.0
    for _, part in rows[rows["group"].isin([reference, group])].groupby("centre"):
        for t in np.unique(part.loc[part["cause"] == 1, "time"]):
            at_risk = part[part["time"] >= t]
            n, n1 = len(at_risk), (at_risk["group"] == group).sum()
            dead = at_risk[(at_risk["time"] == t) & (at_risk["cause"] == 1)]
            d, d1 = len(dead), (dead["group"] == group).sum()
            o_minus_e += d1 - d * n1 / n
            variance += d * (n1 / n) * (1 - n1 / n) * (n - d) / (n - 1) if n > 1 else 0
    return o_minus_e, variance


def test_the_forest_plot_pools_the_centres_peto_terms(pooled_site):
    rows, centre, site = pooled_site
    data = endpoint_rows(rows, centre, "os")
    effects = download(site, "centre_effects_os.csv")
    pooled = effects[effects["centre"].str.startswith("Pooled")].set_index("group")
    reference = sorted(rows["arm"].unique())[0]
    for group in pooled.index:
        o_minus_e, variance = _peto_from_rows(data, reference, group)
        assert pooled.loc[group, "observed_minus_expected"] == pytest.approx(o_minus_e,
                                                                             rel=1e-10)
        assert pooled.loc[group, "variance"] == pytest.approx(variance, rel=1e-10)
        assert pooled.loc[group, "hazard_ratio"] == pytest.approx(np.exp(o_minus_e / variance))
        per_centre = effects[(effects["group"] == group) & ~effects["centre"].str.startswith(
            "Pooled")]
        log_hr = np.log(per_centre["hazard_ratio"])
        weight = per_centre["variance"]
        q = float((weight * (log_hr - o_minus_e / variance) ** 2).sum())
        assert pooled.loc[group, "q"] == pytest.approx(q, rel=1e-8)


@pytest.mark.parametrize("how, words", [
    ({"time_unit": "months"}, "not exact .*not whole months"),
    ({"min_cell": 5}, "not exact .*small-cell suppression"),
])
def test_inexact_bundles_are_refused_naming_the_bundle(tmp_path, how, words, capsys):
    centres = split_into_centres(simulated_raw(), 2, seed=5)
    paths = [tmp_path / "coarse.zip", tmp_path / "other.zip"]  # the same grid: poolable
    for centre, path in zip(centres, paths, strict=True):
        bundles.write_bundle(centre, "arm", path, **how)
    with pytest.raises(bundles.BundleError, match=rf"^coarse\.zip: {words}"):
        build_pooled(tmp_path / "site", Parameters(bundles=[str(p) for p in paths]))
    assert not (tmp_path / "site").exists()
    assert cli_main(["build", "--bundles", *map(str, paths), "--out",
                     str(tmp_path / "site")]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: coarse.zip: not exact") and error.count("\n") == 1


@pytest.mark.parametrize("path", sorted((NOTEBOOKS / "pooled").glob("*.md")),
                         ids=lambda p: p.name)
def test_pooled_chapters_are_paired_myst_notebooks_that_pass_ruff(path):
    assert pairing_problem(path) is None, f"{path.name}: {pairing_problem(path)}"
    findings = ruff_findings(path, f"notebooks/pooled/{path.name}")
    assert not findings, "\n".join(findings)


@pytest.mark.parametrize("name", ["os", "nrm"])
def test_centre_stratified_hazard_ratios_equal_the_pooled_rows(pooled_site, name):
    """The book's Cox model stratified by centre, fitted from the bundles' life tables,
    against lifelines' stratified Efron fit of the pooled rows (competing events censor)."""
    from lifelines import CoxPHFitter

    rows, centre, site = pooled_site
    data = endpoint_rows(rows, centre, name)
    groups = sorted(data["group"].unique())
    frame = pd.DataFrame({"time": data["time"], "event": (data["cause"] == 1).astype(int),
                          "centre": data["centre"]})
    ours = download(site, f"{name}_cox.csv").set_index("group")
    reference = ours["reference"].iloc[0]
    compared = [g for g in groups if g != reference]
    for group in compared:
        frame[group] = (data["group"] == group).astype(float).to_numpy()
    fitter = CoxPHFitter().fit(frame, "time", "event", strata=["centre"],
                               fit_options={"precision": 1e-12})
    for group in compared:
        # lifelines stops about 1e-6 short of the optimum; the life-table fit itself equals
        # R's coxph to 1e-7 (tests/test_bundle_life_tables.py)
        assert ours.loc[group, "hr"] == pytest.approx(
            np.exp(fitter.params_[group]), rel=1e-5), group


def test_an_approximate_book_from_week_grids_is_flagged_on_every_page(tmp_path, capsys):
    """Week-grid bundles are refused without --approximate; with it, every page says
    APPROXIMATE, the centres page says what the grid can change, and the survival
    estimates carry bounds that hold the pooled rows' Kaplan–Meier estimate."""
    centres = split_into_centres(simulated_raw(), 3, seed=11)
    paths = [tmp_path / f"week{i}.zip" for i in range(3)]
    for centre, path in zip(centres, paths, strict=True):
        bundles.write_bundle(centre, "arm", path, time_unit="weeks")
    argv = ["build", "--bundles", *map(str, paths), "--out", str(tmp_path / "site")]
    assert cli_main(argv) == 2 and "--approximate" in capsys.readouterr().err
    assert cli_main([*argv, "--approximate"]) == 0
    site = tmp_path / "site"
    pages = [site / f"{name}.html" for name in pooled_chapters()]
    assert all("APPROXIMATE" in page.read_text() for page in pages)
    assert "what the grid can change" in (site / "centres.html").read_text()
    rows = validate_cohort(pd.concat(centres, ignore_index=True), "<pooled>", "arm")
    data = endpoint_rows(rows, np.zeros(len(rows), int), "os")
    estimates = download(site, "os_estimates.csv").set_index("group")
    for group, mine in data.groupby("group"):
        theirs = km_at(mine["time"], mine["cause"] == 1, LANDMARK_DAYS).value
        low, high = estimates.loc[group, ["rows_estimate_at_least", "rows_estimate_at_most"]]
        assert low <= theirs <= high and high == estimates.loc[group, "estimate"]


def test_the_pooled_book_names_its_bundles_and_prints_as_one_pdf(tmp_path):
    """A consortium cites the pooled book as the single-centre one is cited: its provenance
    page names every bundle with its SHA-256, and ``--pdf`` prints the whole book, whose
    title page frames it as the consortium's analysis."""
    from pypdf import PdfReader

    from bridge_hsct.paths import sha256

    paths = []
    for i, centre in enumerate(split_into_centres(synthetic_raw(), 2, seed=5)):
        paths.append(tmp_path / f"centre{i}.bundle.zip")
        bundles.write_bundle(centre, "arm", paths[-1])
    assert cli_main(["build", "--bundles", *map(str, paths), "--out", str(tmp_path / "site"),
                     "--pdf"]) == 0
    site = tmp_path / "site"
    provenance = (site / "provenance.html").read_text(encoding="utf-8")
    for path in paths:
        assert path.name in provenance and sha256(path) in provenance
    assert 'href="supplement.pdf"' in provenance
    assert "the consortium" in provenance
    reader = PdfReader(site / "supplement.pdf")
    assert reader.metadata.title == "Outcomes after HSCT, pooled over 2 centres"
    title_page = "".join(reader.pages[0].extract_text().split())
    assert title_page.startswith("OutcomesafterHSCT,pooledover2centres")
    assert f"{paths[0].name}:{sha256(paths[0])[:20]}" in title_page
    assert "Madewiththereproducibilitysupplement" in title_page
    assert "Are-analysisof" not in title_page
    assert all(path.name in title_page for path in paths)
    contents = "".join(reader.pages[1].extract_text().split())
    assert "Provenanceandcitation" in contents

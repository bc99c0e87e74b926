"""Aggregate-only bundles: the pooled analysis of centres' bundles equals that of their
pooled rows, number for number, at day resolution; and what cannot be pooled exactly is
flagged or refused.

Cohorts are split into centres and each centre writes its bundle; the pooled results are
compared with the package's row-level estimators on the pooled rows (Kaplan–Meier, log-rank
through lifelines, Aalen–Johansen and Gray's test ported from cmprsk) and, for the tests
stratified by centre, with R's ``survdiff(... + strata(centre))`` and
``cmprsk::cuminc(..., strata = centre)`` (skipped, with the reason, without R).
"""

import json
import shutil
import subprocess
import zipfile

import numpy as np
import pandas as pd
import pytest

from bridge_hsct.cohort.endpoints import ENDPOINTS, derive, known_status, missing_columns
from bridge_hsct.cohort.simulate import simulate_cohort
from bridge_hsct.cohort.validate import validate_cohort
from bridge_hsct.paper import bundle as bundles
from bridge_hsct.paths import DEFAULT_DATA
from bridge_hsct.stats.competing import cumulative_incidence, gray_test
from bridge_hsct.stats.survival import km_at, km_table, logrank_test

SYNTHETIC = DEFAULT_DATA
DAY_COLUMNS = lambda frame: [c for c in frame if c.endswith("_days")]  # noqa: E731
LANDMARK_DAYS = [0, 30, 100, 180, 365.25, 730.5, 1000, 1500]
TOLERANCE = 1e-10


def whole_days(frame: pd.DataFrame) -> pd.DataFrame:
    """The cohort with every day rounded up to a whole day (the synthetic file has three
    fractional days, which a day grid cannot hold exactly)."""
    out = frame.copy()
    for column in DAY_COLUMNS(out):
        out[column] = np.ceil(out[column])
    return out


def split_into_centres(frame: pd.DataFrame, n_centres: int, seed: int) -> list[pd.DataFrame]:
    """Unequal centres, each with at least two patients of every group."""
    rng = np.random.default_rng(seed)
    centre = np.empty(len(frame), int)
    for _, members in frame.groupby("arm").indices.items():
        order = rng.permutation(members)
        sizes = np.maximum(2, np.round(len(order) * np.linspace(0.5, 0.2, n_centres)
                                       / np.linspace(0.5, 0.2, n_centres).sum())).astype(int)
        sizes[0] = len(order) - sizes[1:].sum()
        centre[order] = np.repeat(np.arange(n_centres), sizes)
    return [frame[centre == c].reset_index(drop=True) for c in range(n_centres)]


def synthetic_raw() -> pd.DataFrame:
    return whole_days(pd.read_csv(SYNTHETIC, dtype={"patient_id": str}))


def simulated_raw() -> pd.DataFrame:
    return simulate_cohort(900, seed=17)


COHORTS = {"synthetic": (synthetic_raw, 3), "simulated": (simulated_raw, 3)}


@pytest.fixture(scope="module", params=sorted(COHORTS))
def consortium(request, tmp_path_factory):
    """(pooled validated rows, centre of each row, the bundles read back)."""
    make, n_centres = COHORTS[request.param]
    folder = tmp_path_factory.mktemp(request.param)
    centres = split_into_centres(make(), n_centres, seed=3)
    paths = []
    for i, centre in enumerate(centres):
        paths.append(folder / f"centre{i}.bundle.zip")
        manifest = bundles.write_bundle(centre, "arm", paths[-1])
        assert manifest["exact"], manifest["not_exact_because"]
    rows = validate_cohort(pd.concat(centres, ignore_index=True), "<pooled>", "arm")
    centre_of_row = np.repeat(np.arange(n_centres), [len(c) for c in centres])
    return rows, centre_of_row, [bundles.read_bundle(p) for p in paths]


def endpoint_rows(rows: pd.DataFrame, centre: np.ndarray, name: str) -> pd.DataFrame:
    known = known_status(rows, name).to_numpy()
    derived = derive(rows[known], name)
    return derived.assign(group=rows.loc[known, "arm"].to_numpy(), centre=centre[known])


def endpoints_of(rows: pd.DataFrame) -> list[str]:
    return [n for n in ENDPOINTS if not missing_columns(rows, n)]


# ---------------------------------------------------------------------------------------------
# Exactness against the pooled rows
# ---------------------------------------------------------------------------------------------
def test_pooled_kaplan_meier_equals_the_pooled_rows(consortium):
    rows, centre, read = consortium
    for name in endpoints_of(rows):
        data = endpoint_rows(rows, centre, name)
        pooled = bundles.pool_endpoint(read, name)
        assert pooled.exact
        for group in pooled.groups:
            mine = data[data["group"] == group]
            ours = bundles.lt.kaplan_meier(pooled.tables[group])
            theirs = km_table(mine["time"], mine["cause"] == 1)
            assert ours["time"].tolist() == theirs["time"].tolist()
            for column in ("n_at_risk", "n_events", "n_censored"):
                assert ours[column].tolist() == theirs[column].tolist(), (name, column)
            for column in ("survival", "variance", "lower", "upper"):
                np.testing.assert_allclose(ours[column], theirs[column], rtol=0,
                                           atol=TOLERANCE, err_msg=f"{name} {column}")
            for t in LANDMARK_DAYS:
                a, b = pooled.survival_at(group, t), km_at(mine["time"], mine["cause"] == 1, t)
                np.testing.assert_allclose([a.value, a.lower, a.upper],
                                           [b.value, b.lower, b.upper], atol=TOLERANCE)


def test_pooled_log_rank_equals_the_pooled_rows(consortium):
    rows, centre, read = consortium
    for name in endpoints_of(rows):
        data = endpoint_rows(rows, centre, name)
        ours = bundles.pool_endpoint(read, name).logrank
        theirs = logrank_test(data["time"], data["cause"] == 1, data["group"])
        assert ours.df == theirs.df
        assert ours.chi2 == pytest.approx(theirs.chi2, rel=TOLERANCE, abs=TOLERANCE), name
        assert ours.p_value == pytest.approx(theirs.p_value, rel=TOLERANCE, abs=TOLERANCE)


def test_pooled_aalen_johansen_and_gray_equal_the_pooled_rows(consortium):
    rows, centre, read = consortium
    incidence = [n for n in endpoints_of(rows) if ENDPOINTS[n].kind == "incidence"]
    assert incidence
    for name in incidence:
        data = endpoint_rows(rows, centre, name)
        pooled = bundles.pool_endpoint(read, name)
        for group in pooled.groups:
            mine = data[data["group"] == group]
            ours = bundles.lt.cumulative_incidence(pooled.tables[group]).table
            theirs = cumulative_incidence(mine["time"], mine["cause"]).table
            pd.testing.assert_frame_equal(ours, theirs, check_exact=False, rtol=0,
                                          atol=TOLERANCE)
            for t in LANDMARK_DAYS:
                a = pooled.incidence_at(group, t)
                b = cumulative_incidence(mine["time"], mine["cause"], t=t)
                np.testing.assert_allclose([a.value, a.lower, a.upper],
                                           [b.value, b.lower, b.upper], atol=TOLERANCE)
        theirs = gray_test(data["time"], data["cause"], data["group"])
        assert pooled.gray.chi2 == pytest.approx(theirs.chi2, rel=TOLERANCE, nan_ok=True), name


def test_stratification_by_centre_changes_the_test(consortium):
    """The stratified statistic is a different number (else the R test below proves little)."""
    rows, _, read = consortium
    pooled = bundles.pool_endpoint(read, "os")
    assert pooled.logrank_by_centre.chi2 != pytest.approx(pooled.logrank.chi2, rel=1e-6)


def test_subgroup_tables_add_up_to_the_group_tables(consortium):
    rows, _, read = consortium
    for b in read:
        for split, levels in b.manifest["splits"].items():
            for group in b.manifest["groups"]:
                whole = b.life_table("os", group)
                parts = bundles.lt.pool([b.life_table("os", group, split, lv) for lv in levels])
                # patients with a blank subgroup value are in no level
                assert parts.n <= whole.n
                assert np.all(np.isin(parts.time, whole.time))


def split_rows(rows: pd.DataFrame, centre: np.ndarray, name: str, split: str) -> pd.DataFrame:
    """The endpoint's rows with their level of `split` as the group (blank levels out)."""
    from bridge_hsct.paper.panels import subgroup_levels

    labelled = subgroup_levels(rows, split)[0]
    data = endpoint_rows(rows.assign(arm=labelled), centre, name)
    return data[data["group"].notna()]


SPLIT_CASES = [("os", "mrd_positive"), ("pfs", "graft_source"), ("nrm", "donor_type"),
               ("agvhd_2_4", "age_group")]


@pytest.mark.parametrize("name, split", SPLIT_CASES)
def test_pooled_subgroup_curves_and_tests_equal_the_pooled_rows(consortium, name, split):
    rows, centre, read = consortium
    data = split_rows(rows, centre, name, split)
    pooled = bundles.pool_split(read, name, split)
    assert set(pooled.levels) == set(data["group"])
    for level in pooled.levels:
        mine = data[data["group"] == level]
        for t in LANDMARK_DAYS:
            a = bundles.lt.survival_at(pooled.tables[level], t)
            b = km_at(mine["time"], mine["cause"] == 1, t)
            np.testing.assert_allclose([a.value, a.lower, a.upper],
                                       [b.value, b.lower, b.upper], atol=TOLERANCE)
    theirs = logrank_test(data["time"], data["cause"] == 1, data["group"])
    assert pooled.logrank.chi2 == pytest.approx(theirs.chi2, rel=TOLERANCE, abs=TOLERANCE)


def test_a_centre_with_one_level_counts_and_one_without_the_column_is_refused(tmp_path):
    centres = split_into_centres(synthetic_raw(), 3, seed=3)
    centres[1] = centres[1].assign(mrd_positive=0)  # one level there: its patients count
    centres[2] = centres[2].drop(columns=["mrd_positive"])
    paths = [tmp_path / f"c{i}.bundle.zip" for i in range(3)]
    for path, centre in zip(paths, centres, strict=True):
        bundles.write_bundle(centre, "arm", path)
    read = [bundles.read_bundle(p) for p in paths]
    pooled = bundles.pool_split(read[:2], "os", "mrd_positive")
    negative = pooled.levels[0]
    whole = pd.concat(centres[:2])
    assert pooled.tables[negative].n == int((whole["mrd_positive"] == 0).sum())
    with pytest.raises(bundles.BundleError, match="c2.bundle.zip: no life tables by "
                                                  "'mrd_positive'"):
        bundles.pool_split(read, "os", "mrd_positive")


# ---------------------------------------------------------------------------------------------
# Stratified by centre, against R
# ---------------------------------------------------------------------------------------------
RSCRIPT = shutil.which("Rscript")
R_STRATIFIED = r"""
args <- commandArgs(TRUE)
suppressMessages({library(survival); library(cmprsk)})
d <- read.csv(file.path(args[1], "rows.csv"))
lr <- survdiff(Surv(time, cause == 1) ~ group + strata(centre), data = d)
df <- sum(rowSums(as.matrix(lr$exp)) > 0) - 1
g <- cuminc(d$time, d$cause, d$group, strata = d$centre, cencode = 0)$Tests["1", ]
write.csv(data.frame(chi2 = lr$chisq, p = pchisq(lr$chisq, df, lower.tail = FALSE),
                     gray = g[["stat"]], gray_p = g[["pv"]]),
          file.path(args[1], "r.csv"), row.names = FALSE)
"""


def _r_ready() -> bool:
    return RSCRIPT is not None and subprocess.run(
        [RSCRIPT, "-e", "library(survival); library(cmprsk)"], capture_output=True
    ).returncode == 0


@pytest.mark.skipif(not _r_ready(), reason="R not found: the stratified tests are not checked "
                    "against survdiff/cuminc (apt-get install r-base-core r-cran-survival "
                    "r-cran-cmprsk)")
@pytest.mark.parametrize("name", ["os", "nrm", "agvhd_2_4"])
def test_log_rank_and_gray_stratified_by_centre_equal_r(consortium, name, tmp_path):
    rows, centre, read = consortium
    endpoint_rows(rows, centre, name).to_csv(tmp_path / "rows.csv", index=False)
    (tmp_path / "stratified.R").write_text(R_STRATIFIED)
    subprocess.run([RSCRIPT, str(tmp_path / "stratified.R"), str(tmp_path)], check=True,
                   capture_output=True)
    r = pd.read_csv(tmp_path / "r.csv").iloc[0]
    pooled = bundles.pool_endpoint(read, name)
    assert pooled.logrank_by_centre.chi2 == pytest.approx(r["chi2"], rel=1e-10)
    assert pooled.logrank_by_centre.p_value == pytest.approx(r["p"], rel=1e-8, abs=1e-14)
    if pooled.gray_by_centre is not None:
        assert pooled.gray_by_centre.chi2 == pytest.approx(r["gray"], rel=1e-8)


@pytest.mark.skipif(not _r_ready(), reason="R not found: the stratified tests are not checked "
                    "against survdiff/cuminc")
@pytest.mark.parametrize("name, split", SPLIT_CASES)
def test_subgroup_tests_stratified_by_centre_equal_r(consortium, name, split, tmp_path):
    rows, centre, read = consortium
    split_rows(rows, centre, name, split).to_csv(tmp_path / "rows.csv", index=False)
    (tmp_path / "stratified.R").write_text(R_STRATIFIED)
    subprocess.run([RSCRIPT, str(tmp_path / "stratified.R"), str(tmp_path)], check=True,
                   capture_output=True)
    r = pd.read_csv(tmp_path / "r.csv").iloc[0]
    pooled = bundles.pool_split(read, name, split)
    assert pooled.logrank_by_centre.chi2 == pytest.approx(r["chi2"], rel=1e-10)
    if pooled.gray_by_centre is not None:
        assert pooled.gray_by_centre.chi2 == pytest.approx(r["gray"], rel=1e-8)
    assert pooled.logrank_by_centre.p_value == pytest.approx(r["p"], rel=1e-8, abs=1e-14)
    if pooled.gray_by_centre is not None:
        assert pooled.gray_by_centre.chi2 == pytest.approx(r["gray"], rel=1e-8)


# ---------------------------------------------------------------------------------------------
# What is not exact is flagged, and refused for an exact analysis
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def simulated_centres():
    return split_into_centres(simulated_raw(), 2, seed=5)


def test_a_month_grid_is_flagged_not_exact_and_refused(simulated_centres, tmp_path):
    paths = [tmp_path / f"m{i}.zip" for i in range(2)]
    for centre, path in zip(simulated_centres, paths, strict=True):
        manifest = bundles.write_bundle(centre, "arm", path, time_unit="months")
        assert not manifest["exact"]
        assert "not whole months" in manifest["not_exact_because"][0]
        assert "**Not exact**" in zipfile.ZipFile(path).read("REPORT.md").decode()
    read = [bundles.read_bundle(p) for p in paths]
    with pytest.raises(bundles.BundleError, match=r"^m0\.zip: .*refused for an exact"):
        bundles.pool_endpoint(read, "os")
    approximate = bundles.pool_endpoint(read, "os", exact=False)
    assert not approximate.exact and approximate.not_exact_because
    assert "APPROXIMATE" in bundles.pooled_report(read, [12], exact=False)


def test_fractional_days_are_flagged_not_exact(tmp_path):
    manifest = bundles.write_bundle(SYNTHETIC, "arm", tmp_path / "b.zip")
    assert not manifest["exact"] and not manifest["time_grid"]["all_times_on_grid"]


def test_suppression_leaves_no_small_count_and_is_refused(simulated_centres, tmp_path):
    k = 5
    path = tmp_path / "k.zip"
    manifest = bundles.write_bundle(simulated_centres[1], "arm", path, min_cell=k)
    assert not manifest["exact"] and manifest["suppression"]["min_cell_count"] == k
    assert manifest["suppression"]["life_tables_merged"] > 0
    read = bundles.read_bundle(path)
    counts = read.life_tables[["events", "competing", "censored", "n_at_risk"]].to_numpy()
    assert not np.any((counts > 0) & (counts < k))
    cells = read.contingency["count"].dropna()
    assert not np.any((cells > 0) & (cells < k))
    assert read.contingency["count"].isna().sum() == manifest["suppression"]["counts_blanked"]
    other = tmp_path / "exact.zip"
    bundles.write_bundle(simulated_centres[0], "arm", other)
    with pytest.raises(bundles.BundleError, match=r"^k\.zip: .*small-cell suppression"):
        bundles.pool_endpoint([bundles.read_bundle(other), read], "os")


def test_a_lone_event_in_a_day_cell_cannot_be_read_after_suppression(tmp_path):
    """Re-identification attempt: a patient whose death is the only one on its day is
    visible in a day-level bundle; with k = 3 no row shows a count of 1 or 2."""
    frame = synthetic_raw()
    deaths = frame.loc[frame["death"] == 1, "followup_days"]
    lone_day = int(deaths[~deaths.duplicated(keep=False)].iloc[0])
    plain = tmp_path / "plain.zip"
    bundles.write_bundle(frame, "arm", plain)
    os = bundles.read_bundle(plain).life_tables.query("endpoint == 'os' and split == 'group'")
    assert os.loc[os["time"] == lone_day, "events"].sum() == 1  # the attack works without k
    suppressed = tmp_path / "k3.zip"
    bundles.write_bundle(frame, "arm", suppressed, min_cell=3)
    life = bundles.read_bundle(suppressed).life_tables
    assert not life.query("events == 1 or events == 2 or censored == 1 or censored == 2 "
                          "or competing == 1 or competing == 2").shape[0]


def test_merging_keeps_the_table_consistent():
    table = bundles.lt.life_table([1, 2, 2, 3, 5, 6, 8, 8, 8, 9],
                                  [1, 1, 0, 2, 1, 2, 1, 1, 0, 0])
    merged = bundles.merge_small_rows(table, 2)
    assert merged.n == table.n
    assert merged.events.sum() == table.events.sum()
    counts = np.stack([merged.events, merged.competing, merged.censored])
    assert not np.any(counts == 1)
    assert bundles.merge_small_rows(table, 5) is None  # only one competing event in all


# ---------------------------------------------------------------------------------------------
# The bundle itself
# ---------------------------------------------------------------------------------------------
def test_the_same_data_give_the_same_bytes(tmp_path):
    first, second = tmp_path / "a" / "x.zip", tmp_path / "b" / "x.zip"
    bundles.write_bundle(SYNTHETIC, "arm", first)
    bundles.write_bundle(SYNTHETIC, "arm", second)
    assert first.read_bytes() == second.read_bytes()
    assert zipfile.ZipFile(first).namelist() == list(bundles.ENTRIES)


def test_no_patient_id_and_no_date_leaves_the_centre(tmp_path):
    raw = simulated_raw()
    path = tmp_path / "s.zip"
    bundles.write_bundle(raw, "arm", path)
    text = "\n".join(zipfile.ZipFile(path).read(n).decode() for n in bundles.ENTRIES)
    ids = raw["patient_id"].astype(str)
    assert not [i for i in ids if i in text]
    dates = raw["hsct_date"].dropna().astype(str)
    assert len(dates) and not [d for d in dates.unique() if d in text]
    assert "patient_id" not in text and "hsct_date" not in text


def test_the_manifest_lists_every_table_with_its_hash(tmp_path):
    path = tmp_path / "b.zip"
    manifest = bundles.write_bundle(whole_days(pd.read_csv(SYNTHETIC)), "arm", path)
    archive = zipfile.ZipFile(path)
    assert json.loads(archive.read("manifest.json")) == manifest
    for table in manifest["tables"]:
        payload = archive.read(table["file"])
        assert bundles._sha256(payload) == table["sha256"]
        assert payload.decode().splitlines()[0].split(",") == table["columns"]
    assert manifest["software"]["version"] == bundles.__version__
    assert set(manifest["splits"]) <= set(bundles.SPLITS)
    assert {"ikzf1_isoform6", "sex", "mrd_positive", "graft_source", "hct_ci", "donor_type",
            "age_group"} <= set(bundles.SPLITS)
    report = archive.read("REPORT.md").decode()
    assert "Exact: pooled" in report and "No patient" not in report


# ---------------------------------------------------------------------------------------------
# A set of bundles is checked; each refusal is one line naming the file
# ---------------------------------------------------------------------------------------------
def _rewrite_manifest(path, change) -> None:
    with zipfile.ZipFile(path) as archive:
        payloads = {n: archive.read(n) for n in archive.namelist()}
    manifest = json.loads(payloads["manifest.json"])
    change(manifest)
    payloads["manifest.json"] = json.dumps(manifest).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, payload in payloads.items():
            archive.writestr(name, payload)


@pytest.fixture
def two_bundles(simulated_centres, tmp_path):
    paths = [tmp_path / "first.zip", tmp_path / "second.zip"]
    for centre, path in zip(simulated_centres, paths, strict=True):
        bundles.write_bundle(centre, "arm", path)
    return paths


@pytest.mark.parametrize("change, message", [
    (lambda m: m["software"].update(version="9.9.9"), "software version 9.9.9 differs"),
    (lambda m: m["time_grid"].update(unit="weeks"), "time grid weeks differs"),
    (lambda m: m.update(groups=["CAR-T", "Other"]), "groups .* differs"),
    (lambda m: m["endpoints"].pop("cgvhd"), "endpoints .* differs"),
    (lambda m: m["data"].update(sha256="same"), None),
])
def test_bundles_that_differ_are_refused_naming_the_file(two_bundles, change, message):
    first, second = two_bundles
    if message is None:  # the same data twice
        _rewrite_manifest(first, change)
        message = "same data as first.zip"
    _rewrite_manifest(second, change)
    read = [bundles.read_bundle(p) for p in (first, second)]
    with pytest.raises(bundles.BundleError, match=rf"^second\.zip: {message}") as error:
        bundles.check_bundles(read)
    assert "\n" not in str(error.value)


def test_a_changed_table_is_refused(two_bundles):
    path = two_bundles[1]
    with zipfile.ZipFile(path) as archive:
        payloads = {n: archive.read(n) for n in archive.namelist()}
    payloads["life_tables.csv"] = payloads["life_tables.csv"].replace(b",1,0,0\n", b",2,0,0\n",
                                                                      1)
    with zipfile.ZipFile(path, "w") as archive:
        for name, payload in payloads.items():
            archive.writestr(name, payload)
    with pytest.raises(bundles.BundleError, match=r"^second\.zip: life_tables\.csv was changed"):
        bundles.read_bundle(path)


def test_a_file_that_is_not_a_bundle_is_refused(tmp_path):
    path = tmp_path / "notes.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("notes.txt", "hello")
    with pytest.raises(bundles.BundleError, match=r"^notes\.zip: not a bundle"):
        bundles.read_bundle(path)
    (tmp_path / "text.zip").write_text("plain text")
    with pytest.raises(bundles.BundleError, match=r"^text\.zip: cannot be read"):
        bundles.read_bundle(tmp_path / "text.zip")


def test_an_inconsistent_life_table_is_refused():
    with pytest.raises(ValueError, match="number at risk at time 2 is 2, but the counts from "
                       "then on add up to 1"):
        bundles.lt.life_table_from_counts([1, 2], [3, 2], [1, 1], [0, 0], [1, 0])


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------
def test_command_line_bundle_and_pool(simulated_centres, tmp_path, capsys):
    """``python -m bridge_hsct bundle|pool`` (the book's command line hands them on)."""
    from bridge_hsct.book.cli import main as cli_main

    paths = []
    for i, centre in enumerate(simulated_centres):
        data = tmp_path / f"c{i}.csv"
        centre.to_csv(data, index=False)
        paths.append(tmp_path / f"c{i}.bundle.zip")
        assert cli_main(["bundle", "--data", str(data), "--out", str(paths[-1])]) == 0
    assert "exact" in capsys.readouterr().out
    assert cli_main(["pool", *map(str, paths), "--landmark-months", "24"]) == 0
    out = capsys.readouterr().out
    assert "log-rank stratified by centre: chi2 =" in out
    assert "Gray stratified by centre" in out and "survival at 24 months" in out
    assert cli_main(["bundle", "--data", str(tmp_path / "absent.csv"),
                     "--out", str(tmp_path / "x.zip")]) == 2

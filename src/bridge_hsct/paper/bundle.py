"""Aggregate-only bundles: what a centre shares instead of its patients' rows, and pooling.

A transplant centre that cannot send its cohort file writes a *bundle*: a zip of counts from
which the paper's survival analyses of several centres together are computed exactly as from
their pooled rows (at day resolution, without suppression). The statistics are those of
:mod:`bridge_hsct.stats.life_tables`; this module decides what the paper needs, writes it,
reads it back and refuses what cannot be pooled.

Commands (a consortium's steps; the pooled book is ``python -m bridge_hsct build --bundles``,
:mod:`bridge_hsct.paper.pooled`)::

    python -m bridge_hsct.paper.bundle bundle --data ours.csv --out ours.bundle.zip \
        [--group-col arm] [--time-unit days|weeks|months] [--min-cell-count K]
    python -m bridge_hsct.paper.bundle pool a.bundle.zip b.bundle.zip c.bundle.zip \
        [--landmark-months 12 24] [--approximate]

Why the paper layer
-------------------
What goes into a bundle is the paper's: its endpoints, the subgroup splits of its figures
(read from the figure specs, so a new panel's split is bundled without a change here), and
the categorical rows of its Tables 1 and 3. The arithmetic on counts is in the statistics
layer; reading the cohort is the cohort layer's. Nothing here draws or prints, except the
command line at the bottom.

The bundle (format 1)
---------------------
``manifest.json``
    format and version, the software version (``bridge_hsct.__version__``), the SHA-256 of
    the data file, the number of patients, the group column and the groups, the time grid
    and whether every time lay on it, the endpoints with their causes, the subgroup splits
    and their levels, the suppression applied and what it changed, whether the bundle is
    *exact* (and why not), and every table with its columns, row count and SHA-256.
``life_tables.csv``
    columns ``endpoint, split, level, group`` then :data:`LIFE_TABLE_COLUMNS`: for every
    endpoint the data allow, its life table per group (``split = "group"``, empty level) and
    per group within each level of each subgroup split. Computed on the patients whose status
    for the endpoint is known (a blank is unknown: such patients are left out, as in the
    book). ``time`` is in grid units (a whole number of days, weeks or months since HSCT): a
    time of ``t`` days is counted at ``ceil(t / days_per_unit)``, so an interval's events
    are tied at its end. ``events`` is cause 1, ``competing`` cause 2 (incidence endpoints).
``contingency.csv``
    columns ``table, variable, level, group, count``: for the categorical rows of Table 1 and
    Table 3 (binary, levels, age over 40) the number of patients per group and level,
    ``(unknown)`` for a blank; and (``table = "endpoint_status"``) the patients of known and
    unknown status for each endpoint. A suppressed count is empty.
``REPORT.md``
    the same, in words, for the data-protection officer who signs the bundle off.

Nothing else: no patient identifier, no row, no date (only days since HSCT, grouped), no
continuous value (ages, doses: the medians of Table 1 are not bundled).

Exactness
---------
At day resolution, with times recorded in whole days and no suppression, the pooled life
tables are those of the pooled rows and every statistic of
:mod:`bridge_hsct.stats.life_tables` equals the row-level one. A coarser grid (weeks,
months), times that are not whole days, or suppression break this; the manifest says
``"exact": false`` with the reasons, the report says it in words, and :func:`pool_endpoint`
refuses such bundles unless asked for an approximate analysis (``exact=False``), whose
results are flagged.

How far a coarse grid moves the results (tests/test_bundle_coarse.py, the simulated cohort of
900 patients split into three centres): the Kaplan–Meier and Aalen–Johansen estimates at 24
months by at most 0.007 on a week grid and 0.003 on a month grid, the log-rank and Gray
chi-squares by at most 0.24 (up to 2.5 for engraftment, whose events nearly all fall in the
first weeks). Whatever the data, the Kaplan–Meier estimate of the rows at ``t`` lies between
a product computed from the coarse table and the coarse estimate at ``t``
(:func:`bridge_hsct.stats.life_tables.row_level_survival_bounds`, with its proof); the
tempting bracket "between the rows' estimate at ``t`` and at ``t - w``" fails when patients
are censored inside an interval (the test shows a case).

Small-cell suppression (``min_cell_count = k``, 0 for none)
----------------------------------------------------------
* Life tables: consecutive rows are merged, the merged row keeping the later time, until in
  every row each count of events, competing events and censorings is 0 or at least ``k``
  (a remainder at the end joins the last row). A patient whose event is the only one in a
  grid cell is thus counted with at least ``k - 1`` others; every number at risk is then at
  least ``k`` too. A table that cannot be brought there (fewer than ``k`` of some kind of
  event in the whole table) is withheld, and listed as such. Merging is a coarsening of the
  grid: the table stays usable for approximate pooling, not for exact.
* Contingency counts from 1 to ``k - 1`` are left empty; 0 is written (it describes nobody).
* This is primary suppression only: a withheld cell or table may be recovered by
  difference (the group table minus the other levels of a split, a row total minus the other
  cells). The report says so.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import math
import sys
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .. import __version__
from ..cohort.endpoints import ENDPOINTS, derive, known_status, missing_columns
from ..cohort.schema import BY_NAME
from ..cohort.validate import CohortError, load_cohort, validate_cohort
from ..stats import life_tables as lt
from ..stats.survival import DAYS_PER_MONTH, ChiSquareTest, Estimate, months_to_days
from .gvhd import FIGURE4
from .panels import AGE_GROUP, GROUPS, subgroup_levels
from .subgroups import FIGURE1, FIGURE2, FIGURE3
from .table1 import TABLE1_ROWS
from .table3 import SUPPLEMENTARY_FIGURE5, TABLE3_ROWS

FORMAT = "bridge-hsct-bundle"
FORMAT_VERSION = 1
MANIFEST, REPORT = "manifest.json", "REPORT.md"
LIFE_TABLES, CONTINGENCY = "life_tables.csv", "contingency.csv"
ENTRIES = (MANIFEST, REPORT, LIFE_TABLES, CONTINGENCY)
#: Days per unit of each time grid a bundle can be written on.
TIME_UNITS = {"days": 1.0, "weeks": 7.0, "months": DAYS_PER_MONTH}
#: The split of the plain by-group life tables (``level`` empty).
BY_GROUP = "group"
UNKNOWN_LEVEL = "(unknown)"
LIFE_TABLE_KEYS = ("endpoint", "split", "level", "group")
CONTINGENCY_COLUMNS = ("table", "variable", "level", "group", "count")
#: Fixed time stamp of every zip entry, so that the same data give the same bytes.
ZIP_TIME = (1980, 1, 1, 0, 0, 0)

#: The paper's panels by a subgroup split (Figures 1–4, Supplementary Figure 5).
SUBGROUP_SPECS = tuple(spec for spec in (*FIGURE1, *FIGURE2, *FIGURE3, *FIGURE4,
                                         *SUPPLEMENTARY_FIGURE5)
                       if spec.by not in (None, GROUPS))
#: The subgroup splits of the paper's figures, then the covariates the brief adds (HCT-CI,
#: donor type): every life table is also written per level of each.
SPLITS: tuple[str, ...] = tuple(dict.fromkeys(
    [spec.by for spec in SUBGROUP_SPECS] + ["hct_ci", "donor_type"]))
#: The categorical rows of Tables 1 and 3 (``median`` rows need values, not counts).
CONTINGENCY_ROWS = {"table1": [r for r in TABLE1_ROWS if r.how != "median"],
                    "table3": [r for r in TABLE3_ROWS if r.how != "median"]}


class BundleError(ValueError):
    """A bundle (or a set of bundles) that cannot be written, read or pooled; the message
    names the file and says why in one line."""


# ---------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Suppression:
    """What small-cell suppression changed in a bundle."""

    min_cell_count: int
    merged_tables: int
    withheld_tables: tuple[str, ...]
    suppressed_cells: int

    @property
    def changed_anything(self) -> bool:
        """Whether any count was merged, withheld or blanked."""
        return bool(self.merged_tables or self.withheld_tables or self.suppressed_cells)


def _on_grid(days: np.ndarray, days_per_unit: float) -> tuple[np.ndarray, bool]:
    """Grid index of each time (``ceil(t / days_per_unit)``) and whether all lay on it."""
    index = np.ceil(days / days_per_unit)
    return index.astype(np.int64), bool(np.all(index * days_per_unit == days))


def merge_small_rows(table: lt.LifeTable, min_cell_count: int) -> lt.LifeTable | None:
    """Merge consecutive rows until each count is 0 or at least `min_cell_count` (see the
    module docstring); None when the table cannot be brought there."""
    k = min_cell_count
    counts = np.stack([table.events, table.competing, table.censored], axis=1)
    blocks, ends, open_block = [], [], np.zeros(3, np.int64)
    for time, row in zip(table.time, counts, strict=True):
        open_block = open_block + row
        if np.all((open_block == 0) | (open_block >= k)):
            blocks.append(open_block)
            ends.append(time)
            open_block = np.zeros(3, np.int64)
    if open_block.any():
        if not blocks:
            return None
        blocks[-1] = blocks[-1] + open_block
        ends[-1] = table.time[-1]
    merged = np.array(blocks)
    if np.any((merged > 0) & (merged < k)):
        return None
    leaving = merged.sum(axis=1)
    return lt.life_table_from_counts(np.array(ends), np.cumsum(leaving[::-1])[::-1],
                                     *merged.T)


def _level_text(code) -> str:
    if isinstance(code, float) and code.is_integer():
        return str(int(code))
    return str(code)


def _split_labels(data: pd.DataFrame, split: str) -> pd.Series | None:
    """Each patient's level of `split` (blank when unknown), None when the column is absent
    or empty. A single level is kept: other centres may have the others, and the pooled
    subgroup curves need this centre's patients in theirs."""
    labelled, levels, _ = subgroup_levels(data, split)
    if labelled is None and len(levels) == 1:
        known = (data["age_years"] if split == AGE_GROUP else data[split]).notna()
        labelled = pd.Series(np.where(known, levels[0], None), index=data.index)
    return labelled


def _life_table_records(data: pd.DataFrame, group_col: str, days_per_unit: float):
    """Every (endpoint, split, level, group) life table of the data, whether every time lay
    on the grid, and the endpoint status counts."""
    tables, on_grid, status = {}, True, []
    splits = {split: _split_labels(data, split) for split in SPLITS}
    for name in ENDPOINTS:
        if missing_columns(data, name):
            continue
        known = known_status(data, name)
        for group, members in data.groupby(group_col, sort=True):
            status += [("endpoint_status", name, "known", group, int(known[members.index].sum())),
                       ("endpoint_status", name, "unknown", group,
                        int((~known[members.index]).sum()))]
        derived = derive(data[known], name)
        grid, exact = _on_grid(derived["time"].to_numpy(float), days_per_unit)
        on_grid &= exact
        frame = pd.DataFrame({"time": grid, "cause": derived["cause"].to_numpy(),
                              "group": data.loc[known, group_col].to_numpy()})
        for split, labelled in [(BY_GROUP, None), *splits.items()]:
            level = pd.Series("", index=frame.index) if split == BY_GROUP else (
                None if labelled is None else labelled[known].reset_index(drop=True))
            if level is None:
                continue
            for (lv, group), rows in frame.groupby([level, "group"], sort=True):
                tables[(name, split, str(lv), str(group))] = lt.life_table(rows["time"],
                                                                           rows["cause"])
    return tables, on_grid, status


def _contingency_records(data: pd.DataFrame, group_col: str) -> list[tuple]:
    records = []
    for table_name, rows in CONTINGENCY_ROWS.items():
        for row in rows:
            if row.variable not in data or not data[row.variable].notna().any():
                continue
            # a derived line (a grade band as 0/1) is counted as the table shows it
            values = row.values(data) if row.values else data[row.variable]
            if row.how == "over":
                levels = [f"> {row.threshold:g}", f"≤ {row.threshold:g}"]
                values = values.mask(values.notna(),
                                     np.where(values > row.threshold, *levels))
            else:
                schema = BY_NAME.get(row.variable)
                levels = list(row.levels or (schema.levels if schema else ()))
                levels += sorted((v for v in values.dropna().unique() if v not in levels),
                                 key=str)
            for group, members in data.groupby(group_col, sort=True):
                mine = values[members.index]
                for lv in levels:
                    records.append((table_name, row.name, _level_text(lv), str(group),
                                    int((mine == lv).sum())))
                records.append((table_name, row.name, UNKNOWN_LEVEL, str(group),
                                int(mine.isna().sum())))
    return records


def _csv_bytes(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False, lineterminator="\n").encode("utf-8")


def _sha256(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()


def write_bundle(cohort: pd.DataFrame | str | Path, group_col: str, out_zip: str | Path,
                 time_unit: str = "days", min_cell: int = 0) -> dict:
    """Validate a cohort and write its aggregate-only bundle (see the module docstring).

    Parameters
    ----------
    cohort : a cohort file (read with :func:`bridge_hsct.cohort.validate.load_cohort`; its
        bytes give the data SHA-256) or a cohort frame (validated here; the SHA-256 is that
        of the validated frame written as CSV).
    group_col : the column defining the groups.
    out_zip : the bundle to write.
    time_unit : ``"days"``, ``"weeks"`` or ``"months"`` (of 365.25 / 12 days).
    min_cell : small-cell threshold ``k``; 0 or 1 for none.

    Returns
    -------
    dict
        The manifest written.

    Raises
    ------
    bridge_hsct.cohort.validate.CohortError
        For invalid data.
    BundleError
        For an unknown time unit or a negative threshold.
    """
    if time_unit not in TIME_UNITS:
        raise BundleError(f"{out_zip}: time unit {time_unit!r} is not one of "
                          f"{', '.join(TIME_UNITS)}")
    if min_cell < 0:
        raise BundleError(f"{out_zip}: the minimum cell count must be 0 or more")
    if isinstance(cohort, (str, Path)):
        data = load_cohort(cohort, group_col)
        data_sha256, hashed = _sha256(Path(cohort).read_bytes()), "the data file"
    else:
        data = validate_cohort(cohort.copy(), "<data>", group_col)
        data_sha256 = _sha256(_csv_bytes(data))
        hashed = "the validated cohort written as CSV"
    days_per_unit = TIME_UNITS[time_unit]
    tables, on_grid, status = _life_table_records(data, group_col, days_per_unit)
    cells = pd.DataFrame(_contingency_records(data, group_col) + status,
                         columns=list(CONTINGENCY_COLUMNS))
    k = min_cell if min_cell > 1 else 0
    merged, withheld = 0, []
    if k:
        for key in list(tables):
            kept = merge_small_rows(tables[key], k)
            if kept is None:
                withheld.append("/".join(key))
                del tables[key]
            elif kept.time.size != tables[key].time.size:
                merged += 1
                tables[key] = kept
    small = (cells["count"] > 0) & (cells["count"] < k)
    cells["count"] = cells["count"].astype("Int64").mask(small)
    suppression = Suppression(k, merged, tuple(withheld), int(small.sum()))
    life = pd.DataFrame({
        **{column: np.repeat([key[i] for key in tables], [t.time.size for t in tables.values()])
           for i, column in enumerate(LIFE_TABLE_KEYS)},
        **{column: np.concatenate([np.zeros(0, np.int64),
                                   *(getattr(t, column) for t in tables.values())])
           .astype(np.int64) for column in lt.LIFE_TABLE_COLUMNS}})
    payloads = {LIFE_TABLES: _csv_bytes(life), CONTINGENCY: _csv_bytes(cells)}
    manifest = _manifest(data, group_col, data_sha256, hashed, time_unit, on_grid,
                         suppression, tables, payloads)
    payloads[MANIFEST] = (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode()
    payloads[REPORT] = report_text(manifest).encode("utf-8")
    _write_zip(Path(out_zip), payloads)
    return manifest


def _manifest(data, group_col, data_sha256, hashed, time_unit, on_grid, suppression,
              tables, payloads) -> dict:
    endpoints = sorted({key[0] for key in tables} | {
        n for n in ENDPOINTS if not missing_columns(data, n)}, key=list(ENDPOINTS).index)
    splits = {}
    for split in SPLITS:
        if _split_labels(data, split) is not None:
            splits[split] = subgroup_levels(data, split)[1]
    reasons = []
    if not on_grid:
        reasons.append(f"some times are not whole {time_unit}: events and censorings are "
                       "tied at the end of their grid interval")
    if suppression.changed_anything:
        reasons.append(f"small-cell suppression (k = {suppression.min_cell_count}) merged "
                       f"rows of {suppression.merged_tables} life table(s), withheld "
                       f"{len(suppression.withheld_tables)} and blanked "
                       f"{suppression.suppressed_cells} count(s)")
    columns = {LIFE_TABLES: [*LIFE_TABLE_KEYS, *lt.LIFE_TABLE_COLUMNS],
               CONTINGENCY: list(CONTINGENCY_COLUMNS)}
    return {
        "format": FORMAT, "format_version": FORMAT_VERSION,
        "software": {"name": "bridge_hsct", "version": __version__},
        "data": {"sha256": data_sha256, "sha256_of": hashed, "patients": len(data)},
        "group_column": group_col,
        "groups": sorted(str(g) for g in data[group_col].unique()),
        "time_grid": {"unit": time_unit, "days_per_unit": TIME_UNITS[time_unit],
                      "rule": "a time of t days is counted at grid point "
                              "ceil(t / days_per_unit)",
                      "all_times_on_grid": on_grid},
        "endpoints": {n: {"label": ENDPOINTS[n].label, "kind": ENDPOINTS[n].kind}
                      for n in endpoints},
        "splits": splits,
        "suppression": {"min_cell_count": suppression.min_cell_count,
                        "life_tables_merged": suppression.merged_tables,
                        "life_tables_withheld": list(suppression.withheld_tables),
                        "counts_blanked": suppression.suppressed_cells},
        "exact": not reasons,
        "not_exact_because": reasons,
        "tables": [{"file": name, "columns": columns[name],
                    "rows": payloads[name].count(b"\n") - 1,
                    "sha256": _sha256(payloads[name])} for name in (LIFE_TABLES, CONTINGENCY)],
    }


def _write_zip(path: Path, payloads: dict[str, bytes]) -> None:
    """Entries in :data:`ENTRIES` order with fixed time stamps and attributes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as archive:
        for name in ENTRIES:
            info = zipfile.ZipInfo(name, date_time=ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3
            info.external_attr = 0o644 << 16
            archive.writestr(info, payloads[name])


def report_text(manifest: dict) -> str:
    """The human-readable account of a bundle, for a data-protection officer."""
    grid, sup = manifest["time_grid"], manifest["suppression"]
    tables = {t["file"]: t for t in manifest["tables"]}
    lines = [
        "# What this bundle contains",
        "",
        f"Written by bridge_hsct {manifest['software']['version']} (bundle format "
        f"{manifest['format_version']}) from a cohort of {manifest['data']['patients']} "
        f"patients (SHA-256 of {manifest['data']['sha256_of']}: "
        f"`{manifest['data']['sha256']}`).",
        "",
        "It contains **counts only**: no patient identifier, no patient row, no calendar date,"
        " no age, dose or other individual value. Times are whole "
        f"{grid['unit']} since the transplant ({grid['rule']}).",
        "",
        f"Groups (column `{manifest['group_column']}`): "
        + ", ".join(manifest["groups"]) + ".",
        "",
        f"## `{LIFE_TABLES}` ({tables[LIFE_TABLES]['rows']} rows)",
        "",
        "For each endpoint, group and subgroup level: at each time at which a patient had an "
        "event or was last seen, how many were still followed (`n_at_risk`), how many had the"
        " event (`events`), a competing event (`competing`) or were last seen then "
        "(`censored`).",
        "",
        "Endpoints: " + ", ".join(f"{v['label']} (`{k}`)"
                                  for k, v in manifest["endpoints"].items()) + ".",
        "",
        "Subgroup splits: " + ("; ".join(f"`{k}`: {', '.join(v)}"
                                         for k, v in manifest["splits"].items()) or "none")
        + ".",
        "",
        f"## `{CONTINGENCY}` ({tables[CONTINGENCY]['rows']} rows)",
        "",
        "For the categorical lines of Tables 1 and 3, the number of patients per group and "
        f"level (`{UNKNOWN_LEVEL}` for a blank); and for each endpoint the number of patients"
        " whose status is known or unknown.",
        "",
        "## Small-cell suppression",
        "",
    ]
    if sup["min_cell_count"]:
        k = sup["min_cell_count"]
        lines += [
            f"Threshold k = {k}. Life-table rows were merged until each count of events, "
            f"competing events and censorings is 0 or at least {k} "
            f"({sup['life_tables_merged']} table(s) merged); "
            f"{len(sup['life_tables_withheld'])} table(s) that could not be were withheld"
            + (": " + ", ".join(sup["life_tables_withheld"]) if sup["life_tables_withheld"]
               else "")
            + f". {sup['counts_blanked']} contingency count(s) from 1 to {k - 1} are left "
            "empty.",
            "",
            "This is primary suppression only: a withheld count may still be recovered by "
            "difference (a group's table minus the other levels of a split, a total minus "
            "the other cells).",
        ]
    else:
        lines += ["None. A group or subgroup with few patients shows each of their follow-up"
                  " times (in grid units), and a count of 1 describes one patient."]
    lines += ["", "## Exactness", ""]
    lines += (["Exact: pooled with other exact bundles, these counts give the same results as"
               " the pooled patient rows."] if manifest["exact"] else
              ["**Not exact**: pooled results will differ from those of the pooled rows, "
               "because " + "; ".join(manifest["not_exact_because"]) + "."])
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
# Reading and checking
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Bundle:
    """A bundle read back: its file, manifest, life tables and contingency counts."""

    path: Path
    manifest: dict
    life_tables: pd.DataFrame
    contingency: pd.DataFrame
    tables: dict[tuple[str, str, str, str], lt.LifeTable]

    @property
    def name(self) -> str:
        """The file name, which names the centre in pooled output."""
        return self.path.name

    def life_table(self, endpoint: str, group: str, split: str = BY_GROUP,
                   level: str = "") -> lt.LifeTable:
        """One life table (an empty one where the bundle has none)."""
        return self.tables.get((endpoint, split, level, group), lt.empty_life_table())


def read_bundle(path: str | Path) -> Bundle:
    """Read and check one bundle.

    Raises
    ------
    BundleError
        Naming the file: not a bundle, an entry missing, a table whose SHA-256 differs from
        the manifest's, a life table whose numbers at risk do not follow from its counts.
    """
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            missing = [n for n in ENTRIES if n not in names]
            if missing:
                raise BundleError(f"{path.name}: not a bundle (no {', '.join(missing)})")
            payloads = {n: archive.read(n) for n in ENTRIES}
    except (OSError, zipfile.BadZipFile) as error:
        raise BundleError(f"{path.name}: cannot be read as a bundle ({error})") from None
    manifest = json.loads(payloads[MANIFEST])
    if manifest.get("format") != FORMAT or manifest.get("format_version") != FORMAT_VERSION:
        raise BundleError(f"{path.name}: not a bundle of format {FORMAT} {FORMAT_VERSION}")
    for table in manifest["tables"]:
        if _sha256(payloads[table["file"]]) != table["sha256"]:
            raise BundleError(f"{path.name}: {table['file']} was changed after the bundle "
                              "was written (its SHA-256 differs from the manifest's)")
    life = pd.read_csv(io.BytesIO(payloads[LIFE_TABLES]), keep_default_na=False,
                       dtype={"level": str, "group": str, "split": str, "endpoint": str})
    cells = pd.read_csv(io.BytesIO(payloads[CONTINGENCY]), keep_default_na=False,
                        na_values={"count": [""]}, dtype={"level": str, "group": str})
    tables = {}
    for key, rows in life.groupby(list(LIFE_TABLE_KEYS), sort=False):
        try:
            tables[key] = lt.life_table_from_counts(*(rows[c] for c in lt.LIFE_TABLE_COLUMNS))
        except ValueError as error:
            raise BundleError(f"{path.name}: life table {'/'.join(key)}: {error}") from None
    return Bundle(path, manifest, life, cells, tables)


def check_bundles(bundles: Sequence[Bundle]) -> None:
    """Refuse a set of bundles that cannot be pooled: one line naming the first bundle that
    differs from the first one (software version, time grid, groups, endpoints) or repeats
    another's data.

    Raises
    ------
    BundleError
    """
    if not bundles:
        raise BundleError("no bundle to pool")
    first = bundles[0]

    def facts(b: Bundle) -> dict:
        m = b.manifest
        return {"software version": m["software"]["version"],
                "time grid": m["time_grid"]["unit"],
                "groups": m["groups"],
                "endpoints": sorted(m["endpoints"])}

    reference = facts(first)
    seen = {first.manifest["data"]["sha256"]: first.name}
    for bundle in bundles[1:]:
        for what, value in facts(bundle).items():
            if value != reference[what]:
                raise BundleError(f"{bundle.name}: {what} {value} differs from "
                                  f"{reference[what]} in {first.name}")
        sha = bundle.manifest["data"]["sha256"]
        if sha in seen:
            raise BundleError(f"{bundle.name}: same data as {seen[sha]} (the same centre "
                              "twice would count its patients twice)")
        seen[sha] = bundle.name


# ---------------------------------------------------------------------------------------------
# Pooling
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class PooledCurves:
    """Life tables pooled over the centres, one per curve (a group, or a level of a split),
    and the tests between the curves.

    Parameters
    ----------
    tables : the pooled life table of each curve.
    days_per_unit : days per unit of the grid the tables are on.
    incidence : whether the endpoint is a cumulative incidence (else a survival).
    logrank : log-rank test of cause 1 (competing events censor), pooled rows.
    logrank_by_centre : the same, stratified by centre.
    gray, gray_by_centre : Gray's test the same two ways (incidence endpoints; None
        otherwise).
    """

    tables: dict[str, lt.LifeTable]
    days_per_unit: float
    incidence: bool
    logrank: ChiSquareTest
    logrank_by_centre: ChiSquareTest
    gray: ChiSquareTest | None
    gray_by_centre: ChiSquareTest | None

    def survival_at(self, curve: str, days: float, alpha: float = 0.05) -> Estimate:
        """Kaplan–Meier survival of `curve` at `days` since HSCT."""
        return lt.survival_at(self.tables[curve], days / self.days_per_unit, alpha)

    def incidence_at(self, curve: str, days: float, alpha: float = 0.05) -> Estimate:
        """Aalen–Johansen cumulative incidence of `curve` at `days` since HSCT."""
        return lt.cumulative_incidence(self.tables[curve], alpha).at(
            days / self.days_per_unit)

    def estimate_at(self, curve: str, days: float, alpha: float = 0.05) -> Estimate:
        """The endpoint's estimate for `curve` at `days`: Aalen–Johansen for an incidence,
        Kaplan–Meier for a survival."""
        return (self.incidence_at if self.incidence else self.survival_at)(curve, days, alpha)


@dataclass(frozen=True)
class PooledEndpoint(PooledCurves):
    """One endpoint pooled over the centres' bundles, one curve per group
    (:class:`PooledCurves`).

    Parameters
    ----------
    endpoint : key of :data:`bridge_hsct.cohort.endpoints.ENDPOINTS`.
    groups : the groups, in the bundles' order.
    centres : the bundles' file names.
    cox_by_centre : Cox model of the groups stratified by centre (Efron ties; competing
        events censor), from the centres' life tables.
    exact : whether every bundle was exact (the results then equal the pooled rows').
    not_exact_because : each inexact bundle and why.
    """

    endpoint: str
    groups: tuple[str, ...]
    centres: tuple[str, ...]
    cox_by_centre: lt.GroupCoxModel
    exact: bool
    not_exact_because: tuple[str, ...]


def pool_endpoint(bundles: Sequence[Bundle], endpoint: str, exact: bool = True
                  ) -> PooledEndpoint:
    """Pool one endpoint's by-group life tables over the centres and test the groups.

    Raises
    ------
    BundleError
        When the bundles cannot be pooled (:func:`check_bundles`), lack the endpoint, or,
        with `exact`, when a bundle is not exact (coarse grid, suppression).
    """
    inexact = _poolable(bundles, endpoint, exact)
    groups = tuple(bundles[0].manifest["groups"])
    by_centre = [[b.life_table(endpoint, g) for g in groups] for b in bundles]
    return PooledEndpoint(endpoint, groups, tuple(b.name for b in bundles),
                          lt.group_cox_model(by_centre), not inexact, inexact,
                          **_curves(bundles, endpoint, groups, by_centre))


def _poolable(bundles: Sequence[Bundle], endpoint: str, exact: bool) -> tuple[str, ...]:
    """Refuse what cannot be pooled (see :func:`pool_endpoint`); each inexact bundle and why."""
    check_bundles(bundles)
    inexact = tuple(f"{b.name}: " + "; ".join(b.manifest["not_exact_because"])
                    for b in bundles if not b.manifest["exact"])
    if exact and inexact:
        raise BundleError(f"{inexact[0]}: refused for an exact pooled analysis "
                          "(ask for an approximate one)")
    if endpoint not in bundles[0].manifest["endpoints"]:
        raise BundleError(f"{bundles[0].name}: no endpoint {endpoint!r} in the bundles")
    return inexact


def _curves(bundles: Sequence[Bundle], endpoint: str, curves: Sequence[str],
            by_centre: list) -> dict:
    """The fields of :class:`PooledCurves`: each curve's tables (`by_centre`: per centre,
    one table per curve) summed over the centres; log-rank on the pooled tables and
    stratified by centre; Gray's test the same way for an incidence endpoint."""
    incidence = bundles[0].manifest["endpoints"][endpoint]["kind"] == "incidence"
    pooled = [lt.pool([centre[i] for centre in by_centre]) for i in range(len(curves))]
    return {"tables": dict(zip(curves, pooled, strict=True)),
            "days_per_unit": float(bundles[0].manifest["time_grid"]["days_per_unit"]),
            "incidence": incidence,
            "logrank": lt.logrank_test([pooled]), "logrank_by_centre": lt.logrank_test(by_centre),
            "gray": lt.gray_test([pooled]) if incidence else None,
            "gray_by_centre": lt.gray_test(by_centre) if incidence else None}


@dataclass(frozen=True)
class PooledSplit(PooledCurves):
    """One endpoint by the levels of a subgroup split (all groups together), pooled over
    the centres, one curve per level (:class:`PooledCurves`; a level's table is the sum of
    its groups' and centres'): the paper's subgroup panels (Figures 1–3) from bundles.

    Parameters
    ----------
    endpoint, split : the endpoint and the split (a key of the manifests' ``splits``).
    levels : the split's levels, in the first bundle's order (then any only others have).
    """

    endpoint: str
    split: str
    levels: tuple[str, ...]


def pool_split(bundles: Sequence[Bundle], endpoint: str, split: str, exact: bool = True
               ) -> PooledSplit:
    """Pool one endpoint by the levels of `split` over the centres and test the levels.

    A level's table is the sum of its groups' tables, so the pooled curves and tests equal
    those of the pooled rows by level (patients with a blank value are in no level).

    Raises
    ------
    BundleError
        As :func:`pool_endpoint`; when a bundle has no tables for `split` (the column is
        absent or empty there; its patients would silently drop out); and when the split
        has a single level at every centre.
    """
    _poolable(bundles, endpoint, exact)
    lacking = [b.name for b in bundles if split not in b.manifest["splits"]]
    if lacking:
        raise BundleError(f"{lacking[0]}: no life tables by {split!r} (the column is absent "
                          "or empty at that centre), so the centres cannot be pooled by it")
    levels = tuple(dict.fromkeys(lv for b in bundles for lv in b.manifest["splits"][split]))
    if len(levels) < 2:
        raise BundleError(f"{bundles[0].name}: {split!r} has a single level at every centre")
    groups = bundles[0].manifest["groups"]
    by_centre = [[lt.pool([b.life_table(endpoint, g, split, lv) for g in groups])
                  for lv in levels] for b in bundles]
    return PooledSplit(endpoint, split, levels, **_curves(bundles, endpoint, levels, by_centre))


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------
def _estimate_text(e: Estimate) -> str:
    if e.is_missing:
        return "not estimable"
    bounds = "" if math.isnan(e.lower) else f" ({e.lower:.3f} to {e.upper:.3f})"
    return f"{e.value:.3f}{bounds}"


def _test_text(test: ChiSquareTest) -> str:
    if math.isnan(test.chi2):
        return f"not computed ({test.reason})"
    return f"chi2 = {test.chi2:.4f}, df = {test.df}, P = {test.p_value:.4g}"


def pooled_report(bundles: Sequence[Bundle], landmark_months: Sequence[float],
                  exact: bool = True) -> str:
    """The pooled KM (or cumulative incidence) at the landmarks and the tests, as text."""
    lines = [f"Pooled over {len(bundles)} bundle(s): {', '.join(b.name for b in bundles)}"]
    for endpoint, spec in bundles[0].manifest["endpoints"].items():
        result = pool_endpoint(bundles, endpoint, exact)
        lines.append(f"\n{spec['label']} ({endpoint})"
                     + ("" if result.exact else " [APPROXIMATE: bundles not exact]"))
        for group in result.groups:
            n = result.tables[group].n
            for months in landmark_months:
                days = float(months_to_days(months))
                value = (result.incidence_at(group, days) if spec["kind"] == "incidence"
                         else result.survival_at(group, days))
                what = "cumulative incidence" if spec["kind"] == "incidence" else "survival"
                lines.append(f"  {group} (n = {n}): {what} at {months:g} months "
                             f"{_estimate_text(value)}")
        lines.append(f"  log-rank: {_test_text(result.logrank)}")
        lines.append(f"  log-rank stratified by centre: {_test_text(result.logrank_by_centre)}")
        if result.gray is not None:
            lines.append(f"  Gray: {_test_text(result.gray)}")
            lines.append(f"  Gray stratified by centre: {_test_text(result.gray_by_centre)}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """``bundle`` writes a centre's bundle; ``pool`` prints the pooled analysis of bundles."""
    parser = argparse.ArgumentParser(prog="python -m bridge_hsct.paper.bundle",
                                     description=main.__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    write = commands.add_parser("bundle", help="write a centre's aggregate-only bundle")
    write.add_argument("--data", required=True, help="the centre's cohort file")
    write.add_argument("--out", required=True, help="the bundle (.zip) to write")
    write.add_argument("--group-col", default="arm")
    write.add_argument("--time-unit", choices=list(TIME_UNITS), default="days")
    write.add_argument("--min-cell-count", type=int, default=0)
    pooled = commands.add_parser("pool", help="print the pooled analysis of bundles")
    pooled.add_argument("bundles", nargs="+")
    pooled.add_argument("--landmark-months", type=float, nargs="+", default=[12.0, 24.0])
    pooled.add_argument("--approximate", action="store_true",
                        help="pool bundles that are not exact, flagging the results")
    args = parser.parse_args(argv)
    try:
        if args.command == "bundle":
            manifest = write_bundle(args.data, args.group_col, args.out, args.time_unit,
                                    args.min_cell_count)
            print(f"{args.out}: {manifest['data']['patients']} patients, "
                  f"{len(manifest['endpoints'])} endpoints, "
                  + ("exact" if manifest["exact"] else
                     "NOT exact: " + "; ".join(manifest["not_exact_because"])))
        else:
            bundles = [read_bundle(p) for p in args.bundles]
            print(pooled_report(bundles, args.landmark_months, exact=not args.approximate))
    except (BundleError, CohortError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

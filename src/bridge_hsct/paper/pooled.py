"""The pooled book: what its chapters compute from the centres' aggregate bundles.

A consortium's book (``python -m bridge_hsct build --bundles a.zip b.zip ...``) is computed
from bundles (:mod:`.bundle`) only, never from patient rows. Its chapter notebooks
(``notebooks/pooled/``) open a :class:`Consortium` with :func:`open_consortium` and call
the functions here, which return the package's result types (:class:`Table`, figures):

* :func:`centres_table`: the centres and what their bundles hold (manifests);
* :func:`analyse_endpoint`: pooled Kaplan–Meier or Aalen–Johansen curves by group, their
  landmark estimates, and the log-rank and Gray tests, unstratified and stratified by
  centre;
* :func:`contingency_table`: the categorical lines of Tables 1 and 3 from the pooled
  contingency counts, with the tests of :mod:`bridge_hsct.stats.group_tests` (Fisher,
  chi-square, linear-by-linear, Kruskal–Wallis on ordered levels: each a function of the
  counts alone);
* :func:`centre_effects`: each centre's one-step (Peto) hazard ratio of every group
  against the reference, their fixed-effect pool (the log-rank stratified by centre, as an
  effect) and Cochran's Q and I².

Exact bundles (day grid, times in whole days, no suppression) give every number the pooled
rows give. Bundles on a coarser grid (weeks, months, or days that were not whole) are
*approximate*: the build refuses them unless asked (``--approximate``, ``APPROXIMATE=1``),
and then every page says so and the centres page states what coarsening can change
(:func:`coarsening_statement`), with bounds on the row-level Kaplan–Meier estimates. A
chapter run on its own accepts them (the build is the gate; the banner is the build's).
Suppressed bundles are refused. Labels read from a bundle (centre file names, groups,
levels) are user text: tables take them raw (great-tables escapes them), Markdown
through :func:`bridge_hsct.render.escaping.markdown_text`, figures through
:func:`bridge_hsct.render.escaping.plot_text`; counts pass the consortium's disclosure.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import Markdown
from matplotlib.ticker import FormatStrFormatter
from scipy import stats

from ..cohort.endpoints import ENDPOINTS
from ..cohort.schema import BY_NAME
from ..render.descriptive import n_percent
from ..render.disclosure import Disclosure
from ..render.escaping import markdown_code, markdown_text, plot_text
from ..render.figures import PALETTE, WHOLE_COLOUR, figure_style, km_panel, save_figure
from ..render.formatting import ci_label, confidence_percent, format_p, group_header, p_phrase
from ..render.tables import Table
from ..stats import group_tests
from ..stats import life_tables as lt
from ..stats.survival import Estimate, months_to_days
from .bundle import (
    CONTINGENCY_ROWS,
    SUBGROUP_SPECS,
    UNKNOWN_LEVEL,
    Bundle,
    BundleError,
    PooledEndpoint,
    PooledSplit,
    check_bundles,
    pool_endpoint,
    pool_split,
    read_bundle,
)
from .panels import figure_markdown, subgroup_levels

#: The endpoints the survival chapters show, in the book's order.
SURVIVAL_ENDPOINTS = ("os", "pfs", "grfs")
#: The competing-risk endpoints the incidence chapter shows, in the book's order.
INCIDENCE_ENDPOINTS = ("nrm", "relapse", "agvhd_2_4", "agvhd_3_4", "cgvhd")


@dataclass(frozen=True)
class Consortium:
    """The context of one chapter of the pooled book: the bundles, checked and exact, the
    groups in display order and the settings every number follows.

    Parameters
    ----------
    bundles : the centres' bundles, read and checked.
    groups : the groups in display order, the first the reference.
    output_dir : where the chapter writes its CSV, PNG and SVG files.
    landmark_months : months at which survival and incidence are read.
    alpha : intervals are 100(1 − alpha)%.
    group_label : the noun for what the groups are.
    disclosure : the small-cell suppression of the displayed counts (keyword only,
        required).
    """

    bundles: tuple[Bundle, ...]
    groups: tuple[str, ...]
    output_dir: Path
    landmark_months: float = 24.0
    alpha: float = 0.05
    group_label: str = "group"
    disclosure: Disclosure = field(kw_only=True)

    @property
    def centres(self) -> tuple[str, ...]:
        """The bundles' file names, which name the centres."""
        return tuple(b.name for b in self.bundles)

    @property
    def approximate(self) -> bool:
        """Whether some bundle is on a coarse grid (its numbers are then approximate)."""
        return not all(b.manifest["exact"] for b in self.bundles)

    @property
    def endpoints(self) -> dict:
        """Endpoint key → ``{"label", "kind"}``, as the manifests list them."""
        return self.bundles[0].manifest["endpoints"]

    @property
    def landmark_days(self) -> float:
        """The landmark in days."""
        return float(months_to_days(self.landmark_months))

    def pooled(self, endpoint: str) -> PooledEndpoint:
        """The endpoint pooled over the centres (:func:`bridge_hsct.paper.bundle.pool_endpoint`)."""
        return pool_endpoint(self.bundles, endpoint, exact=not self.approximate)


def read_bundles(bundles: Sequence[str | Path] | None, approximate: bool = False
                 ) -> tuple[Bundle, ...]:
    """Read the bundles and check that they can be pooled: exactly, or with `approximate`
    also from a coarse grid (never with suppression, whose withheld tables would leave
    patients out).

    Raises
    ------
    bridge_hsct.paper.bundle.BundleError
        One line naming the bundle at fault: unreadable, two with the same file name (the
        name is the centre's in the book), not poolable with the others
        (:func:`bridge_hsct.paper.bundle.check_bundles`), suppressed, or not exact (coarse
        grid, fractional days) without `approximate`.
    """
    if not bundles:
        raise BundleError("no bundle given: the pooled book is built from the centres' "
                          "bundles (--bundles a.zip b.zip)")
    read = tuple(read_bundle(path) for path in bundles)
    names = [b.name for b in read]
    twice = next((n for n in names if names.count(n) > 1), None)
    if twice:
        raise BundleError(f"{twice}: given twice, or two bundles with one file name (the "
                          "file name names the centre: rename one)")
    check_bundles(read)
    for bundle in read:
        suppression = bundle.manifest["suppression"]
        if (suppression["life_tables_merged"] or suppression["life_tables_withheld"]
                or suppression["counts_blanked"]):
            raise BundleError(f"{bundle.name}: not exact ("
                              + "; ".join(bundle.manifest["not_exact_because"])
                              + "): a suppressed bundle cannot be pooled, even approximately")
        if not bundle.manifest["exact"] and not approximate:
            raise BundleError(f"{bundle.name}: not exact ("
                              + "; ".join(bundle.manifest["not_exact_because"])
                              + "): the pooled book is built from exact bundles only "
                                "(day grid, whole days, no suppression), or approximately "
                                "with --approximate (APPROXIMATE=1)")
    return read


def open_consortium(bundles: Sequence[str | Path] | None, group_order: list | None = None,
                    output_dir: str | Path = "outputs", *, landmark_months: float = 24.0,
                    alpha: float = 0.05, min_cell_count: int = 0,
                    group_label: str | None = None) -> Consortium:
    """Read the bundles (:func:`read_bundles`, coarse grids accepted: the build is where
    they are refused without ``--approximate``), settle the groups' order and hold the
    settings (the disclosure at `min_cell_count`) in the :class:`Consortium`.

    Raises
    ------
    bridge_hsct.paper.bundle.BundleError
        As :func:`read_bundles`, or for a group order that does not list the groups.
    """
    read = read_bundles(bundles, approximate=True)
    found = read[0].manifest["groups"]
    if group_order and sorted(map(str, group_order)) != sorted(found):
        raise BundleError(f"{read[0].name}: group order {list(group_order)} does not list "
                          f"the bundles' groups {found}")
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    return Consortium(read, tuple(map(str, group_order or found)), out,
                      float(landmark_months), float(alpha), (group_label or "group").strip(),
                      disclosure=Disclosure(min_cell_count))


def _estimate_text(estimate: Estimate) -> str:
    if estimate.is_missing:
        return "not estimable"
    return (f"{100 * estimate.value:.1f} ({100 * estimate.lower:.1f}–"
            f"{100 * estimate.upper:.1f})")


def _landmark_heading(consortium: Consortium) -> str:
    return (f"At {consortium.landmark_months:g} months, % "
            f"({confidence_percent(consortium.alpha)} CI)")


def _group_sizes(consortium: Consortium, bundle: Bundle) -> dict[str, int]:
    """Patients per group of one bundle, from its endpoint-status counts (known and unknown
    status of its first endpoint add up to the group)."""
    cells = bundle.contingency
    first = next(iter(bundle.manifest["endpoints"]))
    status = cells[(cells["table"] == "endpoint_status") & (cells["variable"] == first)]
    sizes = status.groupby("group")["count"].sum(min_count=1)
    return {g: int(sizes.get(g, 0)) for g in consortium.groups}


# ---------------------------------------------------------------------------------------------
# The centres
# ---------------------------------------------------------------------------------------------
def centres_table(consortium: Consortium) -> Table:
    """One line per centre: its patients by group, the grid, suppression, exactness, the
    software that wrote the bundle and the start of its data's SHA-256."""
    display, numbers = [], []
    count_text = consortium.disclosure.count_text
    for bundle in consortium.bundles:
        manifest = bundle.manifest
        sizes = _group_sizes(consortium, bundle)
        k = manifest["suppression"]["min_cell_count"]
        display.append([bundle.name, count_text(manifest["data"]["patients"]),
                        *[count_text(sizes[g]) for g in consortium.groups],
                        manifest["time_grid"]["unit"], f"k = {k}" if k else "none",
                        "yes" if manifest["exact"] else "no",
                        manifest["software"]["version"], manifest["data"]["sha256"][:12]])
        numbers += [{"centre": bundle.name, "group": g, "patients": sizes[g],
                     "time_grid": manifest["time_grid"]["unit"], "min_cell_count": k,
                     "exact": manifest["exact"], "software_version":
                     manifest["software"]["version"], "data_sha256": manifest["data"]["sha256"]}
                    for g in consortium.groups]
    columns = ["Centre (bundle)", "Patients", *consortium.groups, "Time grid",
               "Suppression", "Exact", "Software", "Data SHA-256"]
    return Table(pd.DataFrame(display, columns=columns), pd.DataFrame(numbers),
                 disclosure=consortium.disclosure)


def coarsening_statement(consortium: Consortium) -> str:
    """What a coarse grid can change, in Markdown (empty when every bundle is exact)."""
    if not consortium.approximate:
        return ""
    units = sorted({b.manifest["time_grid"]["unit"] for b in consortium.bundles})
    return (":::{warning} APPROXIMATE: what the grid can change\n"
            f"The bundles count times on a grid of {markdown_text(', '.join(units))}: every "
            "event and censoring is moved to the end of its interval. So curves step later "
            "than the rows' would, a landmark estimate can differ from the rows' by the "
            "events of one interval, and patients censored inside an interval stay at risk "
            "to its end, which raises the Kaplan–Meier curve a little. The tests and hazard "
            "ratios see ties where the rows have none. On a simulated cohort of 900 patients "
            "in three centres, estimates at 24 months moved by at most 0.7 percentage points "
            "and the chi-squares by at most 0.24 (2.5 for engraftment, whose events come "
            "early). For survival endpoints the estimates tables give, for each group, the "
            "range in which the estimate of the rows must lie (a bound computed from the "
            "counts alone; the coarse estimate is its upper end). Tables 1 and 3 do not "
            "depend on the grid and are exact.\n:::\n")


def consortium_sentence(consortium: Consortium) -> str:
    """The consortium in one Markdown sentence: centres, patients and groups."""
    sizes = {g: sum(_group_sizes(consortium, b)[g] for b in consortium.bundles)
             for g in consortium.groups}
    total = sum(b.manifest["data"]["patients"] for b in consortium.bundles)
    count_text = consortium.disclosure.count_text
    return (f"{len(consortium.bundles)} centres sent bundles describing "
            f"{count_text(total, thousands=True)} patients, compared by "
            f"{markdown_text(consortium.group_label)}: "
            + ", ".join(f"{markdown_text(g)} ({count_text(sizes[g], thousands=True)})"
                        for g in consortium.groups) + ".")


# ---------------------------------------------------------------------------------------------
# Survival and cumulative incidence
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class EndpointAnalysis:
    """One endpoint pooled over the centres: the estimates at the landmark, the tests and
    what the figure draws.

    Parameters
    ----------
    endpoint, label, kind : the endpoint's key, name and kind (``survival``, ``incidence``).
    pooled : the pooled life tables and tests.
    estimates : per group, patients, events and the estimate at the landmark (proportions in
        the download, percentages on the page).
    tests : the log-rank test and, for incidence, Gray's test, each unstratified and
        stratified by centre.
    cox : each group's hazard ratio against the reference, Cox model stratified by centre
        (cause-specific for incidence endpoints: competing events censor).
    """

    endpoint: str
    label: str
    kind: str
    pooled: PooledEndpoint
    estimates: Table
    tests: Table
    cox: Table

    def figure(self, consortium: Consortium) -> plt.Figure:
        """The pooled curves by group (:func:`bridge_hsct.render.figures.km_panel`, fed the
        pooled life tables written long), with the test stratified by centre."""
        frame = transitions_frame({g: self.pooled.tables[g] for g in consortium.groups},
                                  self.pooled.days_per_unit)
        test = (self.pooled.gray_by_centre if self.kind == "incidence"
                else self.pooled.logrank_by_centre)
        numbers = self.estimates.numbers.set_index("group")
        estimates = {g: _estimate_text(Estimate(*numbers.loc[g, ["estimate", "lower",
                                                                  "upper"]]))
                     for g in consortium.groups}
        return km_panel(
            frame, frame["group"], list(consortium.groups), kind=self.kind,
            title=f"{self.label}, pooled over {len(consortium.bundles)} centres",
            ylabel="Probability" if self.kind == "survival" else "Cumulative incidence",
            method="aalen-johansen", p_value=test.p_value,
            test_name=("Gray's test" if self.kind == "incidence" else "log-rank")
            + " stratified by centre",
            heading=_landmark_heading(consortium),
            estimates=estimates, landmark_months=consortium.landmark_months,
            alpha=consortium.alpha, disclosure=consortium.disclosure)


def transitions_frame(tables: dict[str, lt.LifeTable], days_per_unit: float) -> pd.DataFrame:
    """The life tables written long, one row per event or censoring in days (``time``,
    ``cause``, ``group``: the key of its table), as :func:`.km_panel` draws rows."""
    return pd.concat([pd.DataFrame({"time": time * days_per_unit, "cause": cause,
                                    "group": label})
                      for label, table in tables.items()
                      for time, cause in [lt.transitions(table)]], ignore_index=True)


def analyse_endpoint(consortium: Consortium, endpoint: str) -> EndpointAnalysis:
    """Pool one endpoint: Kaplan–Meier (survival) or Aalen–Johansen (incidence) estimates
    at the landmark with their log(-log) intervals, the log-rank test (competing events
    censor) and, for incidence, Gray's test, each pooled and stratified by centre."""
    spec = consortium.endpoints[endpoint]
    pooled = consortium.pooled(endpoint)
    t = consortium.landmark_days / pooled.days_per_unit
    bounded = consortium.approximate and spec["kind"] == "survival"
    display, numbers = [], []
    count_text = consortium.disclosure.count_text
    for group in consortium.groups:
        table = pooled.tables[group]
        estimate = pooled.estimate_at(group, consortium.landmark_days, consortium.alpha)
        numbers.append({"endpoint": endpoint, "group": group, "n": table.n,
                        "events": int(table.events.sum()),
                        "competing_events": int(table.competing.sum()),
                        "landmark_months": consortium.landmark_months,
                        "method": "aalen-johansen" if spec["kind"] == "incidence"
                        else "kaplan-meier",
                        "estimate": estimate.value, "lower": estimate.lower,
                        "upper": estimate.upper})
        display.append([group, count_text(table.n), count_text(int(table.events.sum())),
                        _estimate_text(estimate)])
        if bounded:
            low, high = lt.row_level_survival_bounds(table, t)
            numbers[-1] |= {"rows_estimate_at_least": low, "rows_estimate_at_most": high}
            display[-1].append("–" if math.isnan(low) else
                               f"{100 * low:.1f} to {100 * high:.1f}")
    head = _landmark_heading(consortium)
    columns = [consortium.group_label.capitalize(), "n", "Events", head]
    estimates = Table(pd.DataFrame(display, columns=columns + (
        ["Rows' estimate lies in, %"] if bounded else [])), pd.DataFrame(numbers),
        disclosure=consortium.disclosure)
    return EndpointAnalysis(endpoint, spec["label"], spec["kind"], pooled,
                            estimates,
                            tests_table(consortium, pooled, endpoint=endpoint),
                            _cox_table(consortium, endpoint, pooled))


def tests_table(consortium: Consortium, pooled: PooledEndpoint | PooledSplit, **keys
                ) -> Table:
    """The log-rank (and, for an incidence, Gray's) tests of `pooled`, on the pooled rows and
    stratified by centre; the download's rows carry `keys` (endpoint, split) first."""
    tests = [("log-rank", "none", pooled.logrank), ("log-rank", "centre",
                                                     pooled.logrank_by_centre)]
    if pooled.gray is not None:
        tests += [("Gray", "none", pooled.gray), ("Gray", "centre", pooled.gray_by_centre)]
    numbers = pd.DataFrame([{**keys, "test": name, "stratified_by": by, "chi2": r.chi2,
                             "df": r.df, "p_value": r.p_value} for name, by, r in tests])
    display = pd.DataFrame(
        [[f"{name}, " + ("stratified by centre" if by == "centre" else "pooled rows"),
          "–" if math.isnan(r.chi2) else f"{r.chi2:.3f}", str(r.df), format_p(r.p_value)]
         for name, by, r in tests], columns=["Test", "χ²", "df", "P value"])
    return Table(display, numbers, disclosure=consortium.disclosure)


def _cox_table(consortium: Consortium, endpoint: str, pooled) -> Table:
    """Hazard ratio of each group against the reference from the Cox model stratified by
    centre (:func:`bridge_hsct.stats.life_tables.group_cox_model`)."""
    model, reference = pooled.cox_by_centre, consortium.groups[0]
    ci = ci_label(consortium.alpha)
    numbers, display = [], []
    for group, hr, p in zip(consortium.groups[1:], model.hazard_ratios(consortium.alpha),
                            model.p_values(), strict=True):
        numbers.append({"endpoint": endpoint, "group": group, "reference": reference,
                        "hr": hr.value, "lower": hr.lower, "upper": hr.upper,
                        "p_value": p, "alpha": consortium.alpha,
                        "reason": model.reason or ""})
        display.append([f"{group} vs {reference}",
                        _ratio_text(hr) if not hr.is_missing
                        else f"not estimable: {model.reason}", format_p(p)])
    return Table(pd.DataFrame(display, columns=["Comparison", f"HR ({ci})", "P value"]),
                 pd.DataFrame(numbers), disclosure=consortium.disclosure)


# ---------------------------------------------------------------------------------------------
# Tables 1 and 3 from the contingency counts
# ---------------------------------------------------------------------------------------------
def pooled_counts(consortium: Consortium, table: str) -> pd.DataFrame:
    """The contingency counts of `table` summed over the centres: ``variable, level, group,
    count`` (NaN where a centre suppressed a cell)."""
    cells = pd.concat([b.contingency[b.contingency["table"] == table]
                       for b in consortium.bundles], ignore_index=True)
    order = list(dict.fromkeys(zip(cells["variable"], cells["level"], strict=True)))
    summed = cells.groupby(["variable", "level", "group"], sort=False)["count"].sum(
        min_count=1).reset_index()
    key = {k: i for i, k in enumerate(order)}
    summed["order"] = [key[(v, lv)] for v, lv in zip(summed["variable"], summed["level"],
                                                      strict=True)]
    return summed.sort_values(["order"], kind="stable").drop(columns="order")


def _long(counts: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """The counts written long: one (level, group) per counted patient."""
    repeat = counts["count"].fillna(0).astype(int).to_numpy()
    return (pd.Series(np.repeat(counts["level"].to_numpy(), repeat)),
            pd.Series(np.repeat(counts["group"].to_numpy(), repeat)))


def _level_label(row, level: str) -> str:
    if row.how == "over":
        return level
    schema = BY_NAME.get(row.variable)
    labels = row.level_labels or (schema.level_labels if schema else None) or {}
    return next((str(v) for code, v in labels.items() if str(code) == level), level)


def _categorical_test(counts: pd.DataFrame, levels: list[str], ordered: bool
                      ) -> group_tests.TestResult:
    if counts["count"].isna().any():
        return group_tests.TestResult(math.nan, "not computable (suppressed counts)")
    values, groups = _long(counts[counts["level"].isin(levels)])
    return group_tests.compare_categories(values, groups, levels, ordered)


def contingency_table(consortium: Consortium, table: str) -> Table:
    """The categorical lines of Table 1 or Table 3 (`table` ``"table1"`` or ``"table3"``)
    from the pooled counts, with the test each line's counts allow (as
    :func:`bridge_hsct.paper.group_table.group_table` chooses it on rows).

    Returns
    -------
    Table
        ``display``: Characteristic, whole cohort and each group (n (%) of the patients with
        a known value), P value, Test, indent; ``numbers``: table, variable, level, group,
        count, n, percent, p_value, test, n_unknown.
    """
    counts = pooled_counts(consortium, table)
    groups = list(consortium.groups)
    disclosure = consortium.disclosure
    sizes = {g: int(counts.loc[(counts["variable"] == counts["variable"].iloc[0])
                               & (counts["group"] == g), "count"].sum())
             for g in groups} if len(counts) else dict.fromkeys(groups, 0)
    display, numbers, sections = [], [], set()

    def cells_of(part: pd.DataFrame, hit: list[str], known: list[str]) -> list[tuple]:
        out = []
        for g in ["whole", *groups]:
            mine = part if g == "whole" else part[part["group"] == g]
            k = int(mine.loc[mine["level"].isin(hit), "count"].sum())
            n = int(mine.loc[mine["level"].isin(known), "count"].sum())
            out.append((g, k, n))
        return out

    def line(label, cells, p="", test="", indent=0, row=None, level="", result=None,
             unknown=None):
        display.append([label, *[n_percent(k, n, disclosure) for _, k, n in cells], p, test,
                        indent])
        if row is not None:
            numbers.extend({"table": table, "variable": row.name, "level": level, "group": g,
                            "count": k, "n": n, "percent": 100 * k / n if n else np.nan,
                            "p_value": result.p_value, "test": result.test,
                            "n_unknown": unknown[g]} for g, k, n in cells)

    for row in CONTINGENCY_ROWS[table]:
        part = counts[counts["variable"] == row.name]
        if part.empty:
            continue
        if row.section and row.section not in sections:
            sections.add(row.section)
            display.append([row.section, *[""] * (len(groups) + 1), "", "", 0])
        indent = int(bool(row.section))
        levels = [lv for lv in dict.fromkeys(part["level"]) if lv != UNKNOWN_LEVEL]
        missing = part[part["level"] == UNKNOWN_LEVEL]
        unknown = {g: int(missing.loc[missing["group"] == g, "count"].sum()) for g in groups}
        unknown["whole"] = sum(unknown.values())
        if row.how == "binary":
            result = _categorical_test(part, ["1", "0"], False)
            line(row.text(), cells_of(part, ["1"], levels), format_p(result.p_value),
                 result.test, indent, row, row.text(), result, unknown)
        elif row.how == "each_level":
            display.append([row.text(), *[""] * (len(groups) + 1), "", "", 0])
            for lv in levels:
                flagged = part.assign(level=np.where(part["level"] == lv, "1",
                                                     np.where(part["level"] == UNKNOWN_LEVEL,
                                                              UNKNOWN_LEVEL, "0")))
                flagged = flagged.groupby(["level", "group"], sort=False)["count"].sum(
                    min_count=1).reset_index()
                result = _categorical_test(flagged, ["1", "0"], False)
                line(_level_label(row, lv), cells_of(part, [lv], levels),
                     format_p(result.p_value), result.test, 1, row, _level_label(row, lv),
                     result, unknown)
        else:
            schema = BY_NAME.get(row.variable)
            ordered = (row.how == "levels" and row.levels is None and schema is not None
                       and schema.kind == "ordinal")
            result = _categorical_test(part, levels, ordered)
            display.append([row.text(), *[""] * (len(groups) + 1), format_p(result.p_value),
                            result.test, indent])
            for lv in levels:
                line(_level_label(row, lv), cells_of(part, [lv], levels), indent=indent + 1,
                     row=row, level=_level_label(row, lv), result=result, unknown=unknown)
        if unknown["whole"]:
            display.append([row.blank_label, disclosure.count_text(unknown["whole"]),
                            *[disclosure.count_text(unknown[g]) for g in groups], "", "",
                            indent + 1])
    names = ["Characteristic",
             group_header("Whole cohort", disclosure.count_text(sum(sizes.values()))),
             *[group_header(g, disclosure.count_text(sizes[g])) for g in groups], "P value",
             "Test", "indent"]
    notes = ["Computed from the centres' contingency counts, summed; percentages are of the "
             "patients with a known value, and tests leave the unknown out. Lines that need "
             "individual values (medians and ranges) cannot be computed from counts."]
    return Table(pd.DataFrame(display, columns=names), pd.DataFrame(numbers), notes,
                 disclosure=disclosure)


# ---------------------------------------------------------------------------------------------
# Centre by centre: hazard ratios and their heterogeneity
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CentreEffects:
    """Per-centre one-step hazard ratios of each group against the reference, pooled.

    Parameters
    ----------
    endpoint, label : the endpoint.
    table : one line per compared group and centre, then the pooled line, with the
        heterogeneity (Q, df, P, I²) on the pooled line.
    """

    endpoint: str
    label: str
    table: Table

    def figure(self, consortium: Consortium) -> plt.Figure:
        """Forest plot: one panel per compared group, a line per centre (hazard ratio with
        its interval, the square's area by weight), the pooled diamond, log scale."""
        numbers = self.table.numbers
        compared = list(dict.fromkeys(numbers["group"]))
        rows = max(1, int((numbers["group"] == compared[0]).sum()))
        with figure_style():
            fig, axes = plt.subplots(len(compared), 1, squeeze=False, sharex=True,
                                     figsize=(6.0, 0.6 + len(compared) * (0.5 + 0.32 * rows)))
            for ax, group, colour in zip(axes[:, 0], compared, PALETTE[1:], strict=False):
                part = numbers[numbers["group"] == group].reset_index(drop=True)
                ys = np.arange(len(part))[::-1]
                weights = part["weight"].fillna(0).to_numpy()
                largest = max(weights.max(), 1e-12)
                for y, weight, (_, r) in zip(ys, weights, part.iterrows(), strict=True):
                    if not np.isfinite(r["hazard_ratio"]):
                        continue
                    pooled = r["centre"] == POOLED
                    ax.plot([r["lower"], r["upper"]], [y, y], color=WHOLE_COLOUR if pooled
                            else colour, lw=1.4)
                    ax.plot(r["hazard_ratio"], y, marker="D" if pooled else "s",
                            ms=8 if pooled else 4 + 8 * math.sqrt(weight / largest),
                            color=WHOLE_COLOUR if pooled else colour, zorder=3)
                ax.axvline(1.0, color="#999999", lw=0.8, ls=":")
                ax.set_yticks(ys, [plot_text(c) for c in part["centre"]])
                ax.set_ylim(-0.7, len(part) - 0.3)
                ax.set_title(plot_text(f"{group} vs {consortium.groups[0]}"), loc="left",
                             fontweight="bold")
            axes[-1, 0].set_xscale("log")
            axes[-1, 0].xaxis.set_major_formatter(FormatStrFormatter("%g"))
            axes[-1, 0].xaxis.set_minor_formatter(FormatStrFormatter("%g"))
            axes[-1, 0].set_xlabel(f"Hazard ratio of {self.label.lower()} "
                                   f"({confidence_percent(consortium.alpha)} CI), log scale")
            fig.tight_layout()
        return fig


#: The centre name of the pooled line of :func:`centre_effects`.
POOLED = "Pooled (fixed effect)"


def centre_effects(consortium: Consortium, endpoint: str) -> CentreEffects:
    """Each centre's one-step (Peto) hazard ratio of every group against the reference
    (:func:`bridge_hsct.stats.life_tables.peto_effect`), and their inverse-variance pool
    with Cochran's Q and I² (:func:`bridge_hsct.stats.life_tables.fixed_effect_pool`).

    The pooled log hazard ratio is ``sum (O - E) / sum V`` over the centres, whose square
    divided by its variance is the two-group log-rank statistic stratified by centre.
    """
    reference = consortium.groups[0]
    display, numbers = [], []
    count_text = consortium.disclosure.count_text
    for group in consortium.groups[1:]:
        effects = [lt.peto_effect(b.life_table(endpoint, reference),
                                  b.life_table(endpoint, group)) for b in consortium.bundles]
        pool = lt.fixed_effect_pool([e.log_hazard_ratio for e in effects],
                                    [e.standard_error for e in effects])
        total = sum(e.variance for e in effects)
        for bundle, effect in zip(consortium.bundles, effects, strict=True):
            hr = effect.hazard_ratio(consortium.alpha)
            events = [int(bundle.life_table(endpoint, g).events.sum())
                      for g in (reference, group)]
            numbers.append({"endpoint": endpoint, "group": group, "reference": reference,
                            "centre": bundle.name, "events_reference": events[0],
                            "events_group": events[1],
                            "observed_minus_expected": effect.observed_minus_expected,
                            "variance": effect.variance, "hazard_ratio": hr.value,
                            "lower": hr.lower, "upper": hr.upper,
                            "weight": effect.variance / total if total else np.nan})
            display.append([f"{group} vs {reference}", bundle.name,
                            f"{count_text(events[1])} / {count_text(events[0])}",
                            _ratio_text(hr), _percent_text(numbers[-1]["weight"]), ""])
        z = _z(consortium.alpha)
        pooled_hr = (Estimate(*np.exp([pool.estimate, pool.estimate - z * pool.standard_error,
                                       pool.estimate + z * pool.standard_error]))
                     if np.isfinite(pool.estimate) else Estimate.missing())
        numbers.append({"endpoint": endpoint, "group": group, "reference": reference,
                        "centre": POOLED, "observed_minus_expected":
                        sum(e.observed_minus_expected for e in effects), "variance": total,
                        "hazard_ratio": pooled_hr.value, "lower": pooled_hr.lower,
                        "upper": pooled_hr.upper, "weight": 1.0 if total else np.nan,
                        "q": pool.q, "q_df": pool.df, "q_p_value": pool.p_value,
                        "i_squared": pool.i_squared})
        display.append([f"{group} vs {reference}", POOLED, "", _ratio_text(pooled_hr),
                        "100%", _heterogeneity_text(pool)])
    columns = ["Comparison", "Centre", "Events (group / reference)",
               f"Hazard ratio ({confidence_percent(consortium.alpha)} CI)", "Weight",
               "Heterogeneity"]
    return CentreEffects(endpoint, consortium.endpoints[endpoint]["label"],
                         Table(pd.DataFrame(display, columns=columns),
                               pd.DataFrame(numbers), disclosure=consortium.disclosure))


def _z(alpha: float) -> float:
    return float(stats.norm.ppf(1 - alpha / 2))


def _ratio_text(estimate: Estimate) -> str:
    if estimate.is_missing:
        return "not estimable (no events)"
    return f"{estimate.value:.2f} ({estimate.lower:.2f}–{estimate.upper:.2f})"


def _percent_text(share: float) -> str:
    return "–" if not np.isfinite(share) else f"{100 * share:.1f}%"


def _heterogeneity_text(pool: lt.FixedEffectPool) -> str:
    if not pool.df:
        return "one centre with events: none to test"
    return (f"Q = {pool.q:.2f}, df = {pool.df}, {p_phrase(pool.p_value)}, "
            f"I² = {100 * pool.i_squared:.0f}%")


# ---------------------------------------------------------------------------------------------
# What the chapters show
# ---------------------------------------------------------------------------------------------
def _absent(consortium: Consortium, endpoint: str) -> Markdown | None:
    if endpoint in consortium.endpoints:
        return None
    return Markdown(f":::{{note}}\nThe bundles hold no {ENDPOINTS[endpoint].label.lower()}: "
                    "the centres' data lack a column it needs.\n:::\n")


def _saved(consortium: Consortium, figure: plt.Figure, name: str) -> dict:
    """Save `figure` as PNG and SVG in the chapter's folder, close it, return the paths."""
    files = save_figure(figure, consortium.output_dir, name)
    plt.close(figure)
    return files


def endpoint_section(consortium: Consortium, endpoint: str) -> list:
    """What a chapter shows of one endpoint: the pooled figure (saved as PNG and SVG), the
    estimates and the tests, each table with its downloads; a note when the bundles lack
    the endpoint."""
    absent = _absent(consortium, endpoint)
    if absent:
        return [absent]
    analysis = analyse_endpoint(consortium, endpoint)
    files = _saved(consortium, analysis.figure(consortium), f"pooled_{endpoint}")
    method = ("Aalen–Johansen cumulative incidence (competing events competing)"
              if analysis.kind == "incidence" else "Kaplan–Meier")
    caption = (f"{analysis.label} by {markdown_text(consortium.group_label)}, pooled over "
               f"{len(consortium.bundles)} centres: {method} with "
               f"{confidence_percent(consortium.alpha)} log-log bands; the P value is that of "
               "the test stratified by centre.")
    estimates_csv = analysis.estimates.save(consortium.output_dir, f"{endpoint}_estimates")
    tests_csv = analysis.tests.save(consortium.output_dir, f"{endpoint}_tests")
    cox_csv = analysis.cox.save(consortium.output_dir, f"{endpoint}_cox")
    stub = consortium.group_label.capitalize()
    return [
        Markdown(figure_markdown(files, f"pooled-{endpoint}",
                                 f"{analysis.label} by group, pooled", caption,
                                 analysis.label)),
        analysis.estimates.render(f"{analysis.label}: pooled estimates", stub=stub,
                                  test_col=None, indent_col=None,
                                  table_id=f"{endpoint}-estimates"),
        analysis.estimates.download(estimates_csv, "the estimates", "one row per group"),
        analysis.tests.render(f"{analysis.label}: tests between the groups", stub="Test",
                              test_col=None, indent_col=None, table_id=f"{endpoint}-tests"),
        analysis.tests.download(tests_csv, "the tests", "one row per test"),
        analysis.cox.render(f"{analysis.label}: hazard ratios, Cox model stratified by centre",
                            subtitle="Efron ties; competing events censored",
                            stub="Comparison", test_col=None, indent_col=None,
                            table_id=f"{endpoint}-cox"),
        analysis.cox.download(cox_csv, "the hazard ratios", "one row per compared group"),
    ]


def _subgroup_panels() -> tuple[tuple[str, str, str, str], ...]:
    """The paper's subgroup panels: (label, endpoint, split, how the text names the split),
    each (endpoint, split) once, in the figures' order."""
    seen, panels = set(), []
    for spec in SUBGROUP_SPECS:
        if (spec.endpoint, spec.by) in seen:
            continue
        seen.add((spec.endpoint, spec.by))
        name = spec.by_label or (BY_NAME[spec.by].label if spec.by in BY_NAME
                                 else "age group")
        panels.append((spec.label, spec.endpoint, spec.by, name))
    return tuple(panels)


def _figure_labels(split: str) -> dict[str, str]:
    """The bundles' level labels (the data dictionary's) → the labels the paper's figures
    give them (e.g. "MRD positive before HSCT: yes" → "MRD positive")."""
    spec = next((s for s in SUBGROUP_SPECS if s.by == split and s.level_labels), None)
    var = BY_NAME.get(split)
    if spec is None or var is None:
        return {}
    codes = pd.DataFrame({split: list(var.levels)})
    return dict(zip(subgroup_levels(codes, split)[1],
                    subgroup_levels(codes, split, spec.level_labels)[1], strict=True))


#: The subgroup panels of the paper's Figures 1–4 and Supplementary Figure 5, pooled.
SUBGROUP_PANELS = _subgroup_panels()


def subgroup_section(consortium: Consortium, endpoint: str, split: str, label: str,
                     split_name: str) -> list:
    """One subgroup panel of the paper pooled over the centres: the curves by level (all
    groups together), Kaplan–Meier or Aalen–Johansen, with the tests of the levels pooled
    and stratified by centre; or a note saying why the bundles cannot give it."""
    absent = _absent(consortium, endpoint)
    if absent:
        return [absent]
    title = f"{ENDPOINTS[endpoint].label} by {split_name}"
    try:
        pooled = pool_split(consortium.bundles, endpoint, split,
                            exact=not consortium.approximate)
    except BundleError as why:
        return [Markdown(f":::{{note}}\n{markdown_text(title)} ({markdown_text(label)}) "
                         f"cannot be pooled: {markdown_text(str(why))}.\n:::\n")]
    kind = consortium.endpoints[endpoint]["kind"]
    shown = _figure_labels(split)
    levels = [shown.get(level, level) for level in pooled.levels]
    frame = transitions_frame({shown.get(lv, lv): pooled.tables[lv] for lv in pooled.levels},
                              pooled.days_per_unit)
    stratified = pooled.gray_by_centre if kind == "incidence" else pooled.logrank_by_centre
    test_name = "Gray's test" if kind == "incidence" else "log-rank"
    estimates = {shown.get(level, level): _estimate_text(
        pooled.estimate_at(level, consortium.landmark_days, consortium.alpha))
        for level in pooled.levels}
    figure = km_panel(
        frame, frame["group"], levels, kind=kind,
        title=f"{title}, pooled over {len(consortium.bundles)} centres",
        ylabel="Probability" if kind == "survival" else "Cumulative incidence",
        method="aalen-johansen", p_value=stratified.p_value,
        test_name=f"{test_name} stratified by centre", heading=_landmark_heading(consortium),
        estimates=estimates, landmark_months=consortium.landmark_months, alpha=consortium.alpha,
        disclosure=consortium.disclosure)
    stem = f"pooled_{endpoint}_by_{split}"
    files = _saved(consortium, figure, stem)
    table = tests_table(consortium, pooled, endpoint=endpoint, split=split)
    csv = table.save(consortium.output_dir, f"{endpoint}_by_{split}_tests")
    method = ("Aalen–Johansen cumulative incidence (competing events competing)"
              if kind == "incidence" else "Kaplan–Meier")
    caption = (f"{title} (the paper's {label}), all groups together, pooled over "
               f"{len(consortium.bundles)} centres: {method} with "
               f"{confidence_percent(consortium.alpha)} log-log bands; the P value is that of "
               "the test stratified by centre. Patients whose level is unknown are in no "
               "curve.")
    anchor = stem.replace("_", "-")
    return [Markdown(figure_markdown(files, anchor, f"{title}, pooled", caption, title)),
            table.render(f"{title}: tests between the levels", stub="Test", test_col=None,
                         indent_col=None, table_id=f"{anchor}-tests"),
            table.download(csv, "the tests", "one row per test")]


def table_section(consortium: Consortium, table: str) -> list:
    """Table 1 or Table 3 (categorical lines) from the pooled counts, with its downloads."""
    result = contingency_table(consortium, table)
    csv = result.save(consortium.output_dir, f"pooled_{table}")
    title = {"table1": "Table 1", "table3": "Table 3"}[table]
    return [result.render(f"{title}, pooled (categorical lines)", table_id=f"pooled-{table}"),
            result.download(csv, title, "one row per line, level and group")]


def effects_section(consortium: Consortium, endpoint: str) -> list:
    """The forest plot of one endpoint's per-centre hazard ratios and its table."""
    absent = _absent(consortium, endpoint)
    if absent:
        return [absent]
    effects = centre_effects(consortium, endpoint)
    files = _saved(consortium, effects.figure(consortium), f"forest_{endpoint}")
    csv = effects.table.save(consortium.output_dir, f"centre_effects_{endpoint}")
    caption = (f"{effects.label}: each centre's one-step (Peto) hazard ratio against "
               f"{markdown_text(consortium.groups[0])}, the square's size by the centre's "
               "weight, and the fixed-effect pool (diamond).")
    return [Markdown(figure_markdown(files, f"forest-{endpoint}",
                                     f"Forest plot of {effects.label}", caption,
                                     f"the forest plot of {effects.label.lower()}")),
            effects.table.render(f"{effects.label}: hazard ratios by centre", stub="Centre",
                                 test_col=None, indent_col=None,
                                 table_id=f"forest-{endpoint}-table"),
            effects.table.download(csv, "the hazard ratios", "one row per comparison and "
                                   "centre, then the pooled row with Cochran's Q and I²")]


def bundle_contents(consortium: Consortium) -> str:
    """What the consortium's bundles hold, in Markdown: the grid, the endpoints, the
    subgroup splits every centre has and the lines of the contingency counts."""
    manifests = [b.manifest for b in consortium.bundles]
    splits = [s for s in manifests[0]["splits"] if all(s in m["splits"] for m in manifests)]
    lines = {table: list(dict.fromkeys(pooled_counts(consortium, table)["variable"]))
             for table in CONTINGENCY_ROWS}
    grid = manifests[0]["time_grid"]
    return "\n".join([
        f"* Time grid: {markdown_text(grid['unit'])} since the transplant.",
        "* Life tables by group for: " + ", ".join(
            markdown_text(spec["label"]) for spec in consortium.endpoints.values()) + ".",
        "* The same, within the levels of: " + (", ".join(
            markdown_code(split) for split in splits) or "none") + " (every centre's bundle).",
        *[f"* Contingency counts of {title}: " + (", ".join(markdown_code(v) for v in lines[t])
                                                   or "none") + "."
          for t, title in (("table1", "Table 1"), ("table3", "Table 3"))],
    ]) + "\n"

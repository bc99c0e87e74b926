"""What the book shows of the calibration report (the synthetic cohort's page)."""

from __future__ import annotations

import pandas as pd

from ...paths import is_reference_cohort
from .ensemble import load_ensemble
from .pipeline import REPORT_PATH
from .report import headline

KIND_NAMES = {"count": "Counts (Tables 1 and 3)",
              "km": "2-year and 100-day estimates and their 95% CIs",
              "count_p": "P values of counts", "continuous": "Medians and ranges",
              "engraftment": "Engraftment medians and ranges", "logrank": "Log-rank P values",
              "followup": "Follow-up medians and ranges", "cox": "Table 2 hazard ratios",
              "continuous_p": "P values of continuous variables",
              "engraftment_p": "P values of engraftment times", "km_median": "Survival medians",
              "followup_p": "P value of follow-up"}


def load_report(path=REPORT_PATH) -> pd.DataFrame:
    """The calibration report written next to the cohort by the generator."""
    return pd.read_csv(path, dtype={"explanation": str}, keep_default_na=False,
                       na_values={"published": [""], "achieved": [""], "difference": [""]})


def calibration_summary(report: pd.DataFrame) -> pd.DataFrame:
    """Targets met per kind of target, for the page's summary table."""
    rows = []
    for kind, part in report.groupby("kind", sort=False):
        rows.append({"Targets": KIND_NAMES.get(kind, kind), "Met": int(part["met"].sum()),
                     "Total": len(part),
                     "Share": f"{100 * part['met'].mean():.0f}%"})
    return pd.DataFrame(rows)


def calibration_text(report: pd.DataFrame) -> str:
    """The headline paragraph of the calibration page."""
    misses = report[~report["met"]]
    return (f"**Calibration: {headline(report)}.** "
            f"The {len(misses)} targets not met are listed below with the reason for each.")


def misses_table(report: pd.DataFrame) -> pd.DataFrame:
    """Every target not met: published, achieved, tolerance, why."""
    misses = report[~report["met"]]
    return misses[["target_id", "description", "published", "achieved", "tolerance",
                   "explanation"]].rename(columns={
                       "target_id": "Target", "description": "What", "published": "Published",
                       "achieved": "Synthetic cohort", "tolerance": "Tolerance",
                       "explanation": "Why not met"}).reset_index(drop=True)


def ensemble_text(summary: pd.DataFrame) -> str:
    """The paragraph on what the published aggregates determine (Markdown)."""
    runs = int(summary["reconstructions"].max())
    published = summary[summary["published"].notna()]
    book = summary[summary["published"].isna()]
    return (f"**What the paper determines.** The generator was run from {runs} other seeds; "
            "every run meets the published counts. Of the "
            f"{len(published)} published numbers the data can recompute, "
            f"{int(published['determined'].sum())} come out the same in every run, within "
            "the paper's rounding: the published aggregates fix them. The other "
            f"{int((~published['determined']).sum())} vary from run to run, so the value "
            "the book prints for them is one reconstruction's, not the paper's. Of the "
            f"{len(book)} medians the book prints and the paper does not, "
            f"{int(book['determined'].sum())} are determined.")


def ensemble_table(summary: pd.DataFrame) -> pd.DataFrame:
    """The numbers that vary across the ensemble: published value, this book's value and
    the range of the reconstructions (the not-reached medians as a count)."""
    varies = summary[~summary["determined"]]
    return pd.DataFrame({
        "Number": varies["number"].to_numpy(),
        "Published": varies["published"].to_numpy(),
        "This cohort": varies["reference"].to_numpy(),
        "Lowest": varies["minimum"].to_numpy(), "Highest": varies["maximum"].to_numpy(),
        "Runs without a value": varies["not_given"].to_numpy(),
    })


#: Where a number of the ensemble is printed: its registry id starts with its source.
SOURCE_NAMES = {"abstract": "Abstract", "methods": "Methods", "results": "Results text",
                "table1": "Table 1", "table2": "Table 2", "table3": "Table 3",
                "fig1_legend": "Figure 1 legend", "discussion": "Discussion",
                "book": "Medians the book adds"}


def ensemble_by_source(summary: pd.DataFrame) -> pd.DataFrame:
    """How many numbers of each source the published aggregates determine."""
    source = summary["id"].str.split(".").str[0]
    rows = []
    for key, part in summary.groupby(source, sort=False):
        rows.append({"Printed in": SOURCE_NAMES.get(key, key),
                     "Determined": int(part["determined"].sum()),
                     "Vary between reconstructions": int((~part["determined"]).sum())})
    return pd.DataFrame(rows)


def varying_note(summary: pd.DataFrame, source: str, what: str) -> str:
    """The note a chapter puts under `what` (the numbers of registry source `source`) on the
    synthetic cohort when some of them vary between reconstructions; "" when none does."""
    part = summary[summary["id"].str.split(".").str[0] == source]
    varies = int((~part["determined"]).sum())
    if not varies:
        return ""
    return (f"On this synthetic cohort, {varies} of the {len(part)} published numbers of "
            f"{what} differ between reconstructions that all fit the published aggregates "
            "(see the calibration page): the values here are one reconstruction's, not "
            "findings about the paper's patients.")


def medians_note(summary: pd.DataFrame, endpoints: tuple[str, ...]) -> str:
    """The note a chapter puts under its medians on the synthetic cohort: which of the
    medians of `endpoints` (whole cohort and each arm) come out differently in other
    reconstructions, with their range; "" when none does."""
    book = summary[summary["id"].str.startswith("book.")].copy()
    book[["endpoint", "group"]] = book["id"].str.extract(r"^book\.(\w+)\.median\.(.+)$")
    varies = book[book["endpoint"].isin(endpoints) & ~book["determined"]]
    if varies.empty:
        return ""
    ranges = "; ".join(
        f"{r.endpoint.upper()}, {'whole cohort' if r.group == 'whole' else r.group}: "
        f"{r.minimum:.1f} to {r.maximum:.1f} months" for r in varies.itertuples())
    return ("On this synthetic cohort, these medians differ between reconstructions that all "
            f"fit the published aggregates (see the calibration page): {ranges}. The values "
            "here are one reconstruction's.")


def reconstruction_notes(data_path, medians: tuple[str, ...] = (), source: str = "",
                         what: str = "") -> list[str]:
    """The notes a chapter puts under its numbers about the reconstruction: on the bundled
    synthetic cohort, :func:`medians_note` for the medians of the endpoints `medians` and
    :func:`varying_note` for the published numbers of registry source `source` (shown as
    `what`), those that apply; none on any other cohort, whose numbers are its data's."""
    if not is_reference_cohort(data_path):
        return []
    summary = load_ensemble()
    notes = [medians_note(summary, medians) if medians else "",
             varying_note(summary, source, what) if source else ""]
    return [note for note in notes if note]

"""What the book shows of the calibration report (the synthetic cohort's page)."""

from __future__ import annotations

import pandas as pd

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

"""The calibration page summarises the committed report faithfully."""

import pandas as pd

from bridge_hsct.paper.synthetic.page import (
    calibration_summary,
    calibration_text,
    load_report,
    misses_table,
)


def test_summary_adds_up_to_the_report():
    report = load_report()
    summary = calibration_summary(report)
    assert summary["Total"].sum() == len(report)
    assert summary["Met"].sum() == int(report["met"].sum())
    assert len(misses_table(report)) == int((~report["met"]).sum())
    text = calibration_text(report)
    assert f"{int(report['met'].sum())} / {len(report)}" in text


def test_every_miss_is_explained():
    report = load_report()
    misses = misses_table(report)
    assert misses["Why not met"].str.len().gt(20).all()


def test_summary_on_a_hand_made_report():
    report = pd.DataFrame({"kind": ["count", "count", "km"], "met": [True, False, True],
                           "target_id": ["a", "b", "c"], "description": ["", "", ""],
                           "published": [1.0, 2.0, 3.0], "achieved": [1.0, 3.0, 3.0],
                           "tolerance": [0, 0, 1], "explanation": ["", "why b", ""]})
    summary = calibration_summary(report).set_index("Targets")
    assert summary.loc["Counts (Tables 1 and 3)", "Met"] == 1
    assert summary.loc["Counts (Tables 1 and 3)", "Share"] == "50%"
    assert list(misses_table(report)["Target"]) == ["b"]

"""The computed Results narrative: its numbers are the package's, its words follow the data."""

import re

import numpy as np
import pandas as pd
import pytest

from bridge_hsct.cohort.validate import load_cohort, validate_cohort
from bridge_hsct.paper import narrative
from bridge_hsct.paper.outcomes import endpoint_summary
from bridge_hsct.paths import DEFAULT_DATA
from bridge_hsct.render.disclosure import NO_SUPPRESSION
from bridge_hsct.render.escaping import markdown_text
from bridge_hsct.render.formatting import format_p, format_percent
from bridge_hsct.stats.survival import months_to_days

NO_LINKS: dict = {}


def cohort(groups: dict[str, list[tuple[float, int]]], **extra) -> pd.DataFrame:
    """A valid cohort: for each group label, one (follow-up days, died) pair per patient."""
    rows = []
    for label, patients in groups.items():
        for followup, died in patients:
            rows.append({"patient_id": f"p{len(rows) + 1}", "arm": label,
                         "age_years": 30 + len(rows) % 25, "sex": "MF"[len(rows) % 2],
                         "disease_status": "first_relapse", "followup_days": followup,
                         "death": died, "relapse": 0, "relapse_days": None})
    table = pd.DataFrame(rows)
    for column, values in extra.items():
        table[column] = values
    return validate_cohort(table)


def spread(n: int, died: int, last: float = 1200.0) -> list[tuple[float, int]]:
    """n patients: the first `died` die at evenly spread days, the others are censored at
    `last` days."""
    deaths = np.linspace(60, last - 100, died) if died else []
    return [(float(d), 1) for d in deaths] + [(last, 0)] * (n - died)


def os_text(data: pd.DataFrame, groups: list, alpha: float = 0.05,
            landmark_months: float = 24.0) -> str:
    return narrative.survival_section(data, "arm", groups, landmark_months, alpha,
                                      disclosure=NO_SUPPRESSION).text


# ---------------------------------------------------------------------------------------------
# Words follow the data
# ---------------------------------------------------------------------------------------------
def test_higher_and_lower_flip_when_the_groups_swap_outcomes():
    better_first = cohort({"Alpha": spread(12, 1), "Beta": spread(12, 8)})
    better_second = cohort({"Alpha": spread(12, 8), "Beta": spread(12, 1)})
    first = os_text(better_first, ["Alpha", "Beta"])
    second = os_text(better_second, ["Alpha", "Beta"])
    assert "higher in the Alpha group than in the Beta group" in first
    assert "higher in the Beta group than in the Alpha group" in second
    assert "higher in the Beta group than in the Alpha group" not in first


def test_significant_or_not_follows_the_data_and_alpha():
    separated = cohort({"Alpha": spread(25, 0), "Beta": spread(25, 20)})
    alike = cohort({"Alpha": spread(20, 6), "Beta": spread(20, 6)})
    groups = ["Alpha", "Beta"]
    p_value = endpoint_summary(separated, "os", "arm", groups, 24).iloc[1]["p_value"]
    assert p_value < 0.001
    assert "was statistically significant (log-rank test" in os_text(separated, groups)
    assert "did not differ significantly" in os_text(alike, groups)
    assert "did not differ significantly" not in os_text(separated, groups)
    # the same data judged at a stricter level than its P value
    strict = os_text(separated, groups, alpha=p_value / 10)
    assert "did not differ significantly" in strict
    assert "was statistically significant (log-rank" not in strict


def test_equal_estimates_are_called_the_same():
    text = os_text(cohort({"Alpha": spread(10, 3), "Beta": spread(10, 3)}), ["Alpha", "Beta"])
    assert "The estimate was the same in both groups; over the whole follow-up" in text
    assert "higher in" not in text


def test_three_groups_get_k_group_sentences():
    data = cohort({"A": spread(10, 1), "B": spread(10, 4), "C": spread(10, 8)})
    text = os_text(data, ["A", "B", "C"])
    assert "highest in the A group and lowest in the C group" in text
    assert "the 3 groups" in text
    assert "two curves" not in text and "than in" not in text
    summary = endpoint_summary(data, "os", "arm", ["A", "B", "C"], 24)
    assert summary.iloc[1]["df"] == 2
    assert f"P = {format_p(summary.iloc[1]['p_value'])}" in text


def test_group_order_and_labels_come_from_the_data():
    data = cohort({"Arm_*1*": spread(8, 2), "Second [b]": spread(8, 5)})
    text = narrative.results_narrative(data, "arm", ["Second [b]", "Arm_*1*"],
                                       links=NO_LINKS, disclosure=NO_SUPPRESSION).markdown()
    assert r"the Arm\_\*1\* group" in text and r"the Second \[b\] group" in text
    assert "CAR-T" not in text and "linatumomab" not in text
    baseline = narrative.results_narrative(data, "arm", ["Second [b]", "Arm_*1*"],
                                           links=NO_LINKS,
                                           disclosure=NO_SUPPRESSION).section("baseline").text
    assert baseline.index("Second") < baseline.index("Arm")


def test_median_not_reached_and_landmark_not_estimable():
    few_deaths = cohort({"Alpha": spread(10, 1), "Beta": spread(10, 2)})
    assert "The median was not reached" in os_text(few_deaths, ["Alpha", "Beta"])
    short = cohort({"Alpha": spread(10, 2, last=1200), "Beta": spread(10, 2, last=300)})
    text = os_text(short, ["Alpha", "Beta"])
    assert "not estimable in the Beta group" in text
    assert "fewer than two groups have one" in text
    assert "higher in" not in text


def test_many_deaths_give_a_median_with_its_interval():
    data = cohort({"Alpha": spread(12, 10), "Beta": spread(12, 10)})
    whole = endpoint_summary(data, "os", "arm", ["Alpha", "Beta"], 24).iloc[0]
    assert not np.isnan(whole["median_months"])
    assert f"The median was {whole['median_months']:.2f} months" in os_text(
        data, ["Alpha", "Beta"])


def test_significance_words():
    assert narrative.significance_words(0.049, 0.05) == "statistically significant"
    assert narrative.significance_words(0.05, 0.05) == "not statistically significant"
    assert narrative.significance_words(0.2, 0.3) == "statistically significant"
    assert narrative.significance_words(float("nan"), 0.05) == "not computable"


def test_settings_sentence_follows_the_parameters():
    text = narrative.settings_text(12.0, 0.01)
    assert "at 12 months" in text and "below 0.01" in text and "99% CI" in text


# ---------------------------------------------------------------------------------------------
# Numbers equal the package's computations
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def reference():
    data = load_cohort(DEFAULT_DATA)
    groups = sorted(data["arm"].unique())
    return data, groups, narrative.results_narrative(data, "arm", groups, links=NO_LINKS,
                                                     disclosure=NO_SUPPRESSION)


def test_every_recorded_number_is_printed_in_its_section(reference):
    _, _, story = reference
    numbers = story.numbers()
    assert set(numbers["section"]) == {key for key, _, _ in narrative.SECTIONS}
    for _, row in numbers.iterrows():
        assert row["shown"] in story.section(row["section"]).text, row.to_dict()


def test_survival_numbers_equal_endpoint_summary(reference):
    data, groups, story = reference
    numbers = story.numbers()
    for name, section in (("os", "os_pfs"), ("pfs", "os_pfs"), ("grfs", "grfs"),
                          ("nrm", "nrm")):
        summary = endpoint_summary(data, name, "arm", groups, 24.0)
        text = story.section(section).text
        for _, row in summary.iterrows():
            recorded = numbers[(numbers["quantity"] == f"{name}.estimate")
                               & (numbers["group"] == str(row["group"]))]
            assert recorded["value"].iloc[0] == pytest.approx(row["estimate"])
            assert format_percent(row["estimate"]) in text
        assert f"P = {format_p(summary.iloc[1]['p_value'])}" in text


def test_gvhd_reads_acute_gvhd_at_day_100(reference):
    data, groups, story = reference
    summary = endpoint_summary(data, "agvhd_2_4", "arm", groups, narrative.DAY_100_MONTHS)
    assert months_to_days(narrative.DAY_100_MONTHS) == pytest.approx(100)
    text = story.section("gvhd").text
    assert f"by 100 days was {format_percent(summary.iloc[0]['estimate'])}" in text


def test_baseline_and_engraftment_numbers_equal_the_data(reference):
    data, groups, story = reference
    baseline = story.section("baseline").text
    sizes = [f"{int((data['arm'] == g).sum())} in the {markdown_text(g)} group" for g in groups]
    assert all(s in baseline for s in sizes)
    assert f"median age at the transplant was {data['age_years'].median():.4g} years" in baseline
    engraftment = story.section("engraftment_infection").text
    days = data["neutrophil_engraftment_days"]
    assert f"after a median of {days.median():.4g} days" in engraftment
    cmv = data["cmv_reactivation"]
    k, n = int(cmv.sum()), int(cmv.notna().sum())
    assert f"CMV reactivation occurred in {k} of {n} patients ({100 * k / n:.1f}%)" in engraftment


def test_baseline_differences_follow_alpha(reference):
    data, groups, _ = reference
    loose = narrative.baseline_section(data, "arm", groups, alpha=0.999999,
                                       disclosure=NO_SUPPRESSION).text
    strict = narrative.baseline_section(data, "arm", groups, alpha=1e-12,
                                        disclosure=NO_SUPPRESSION).text
    assert "None of the" not in loose and "statistically significant:" in loose
    assert re.search(r"None of the \d+ baseline comparisons", strict)


# ---------------------------------------------------------------------------------------------
# Robustness: missing columns, no events
# ---------------------------------------------------------------------------------------------
def test_missing_optional_columns_are_said_to_be_missing():
    data = cohort({"Alpha": spread(8, 2), "Beta": spread(8, 3)})
    story = narrative.results_narrative(data, "arm", ["Alpha", "Beta"], links=NO_LINKS,
                                        disclosure=NO_SUPPRESSION)
    assert "The data hold no GVHD information" in story.section("gvhd").text
    assert "so GRFS cannot be computed" in story.section("grfs").text
    assert "{ref}" not in story.markdown()
    assert "hold no engraftment" in story.section("engraftment_infection").text
    assert "The data lack" in story.section("baseline").text


def test_one_gvhd_column_present_the_others_missing():
    data = cohort({"Alpha": spread(6, 1), "Beta": spread(6, 1)},
                  agvhd_2_4=[1, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0],
                  agvhd_2_4_days=[20, None, None, None, None, None, 30, 40, None, None, None,
                                  None])
    text = narrative.gvhd_section(data, "arm", ["Alpha", "Beta"], 24.0, 0.05,
                                  disclosure=NO_SUPPRESSION).text
    assert "**Grade II–IV acute GVHD.**" in text
    assert "The data lack grade III–IV aGVHD (`agvhd_3_4`) and chronic GVHD (`cgvhd`)" in text


def test_endpoints_without_events_do_not_crash():
    data = cohort({"Alpha": spread(6, 0), "Beta": spread(6, 0)},
                  cgvhd=[0] * 12, cgvhd_days=[None] * 12)
    story = narrative.results_narrative(data, "arm", ["Alpha", "Beta"], links=NO_LINKS,
                                        disclosure=NO_SUPPRESSION)
    assert "no patient died, so overall survival stays at 100%" in story.section("os_pfs").text
    assert "no patient died without a prior relapse" in story.section("nrm").text
    assert "no patient developed chronic GVHD" in story.section("gvhd").text


def test_a_group_without_events_is_said_to_have_none():
    data = cohort({"Alpha": spread(8, 0), "Beta": spread(8, 4)})
    text = os_text(data, ["Alpha", "Beta"])
    assert "100.00% (no death observed; 8 patients still at risk) in the Alpha group" in text
    late = cohort({"Alpha": [(900.0, 1)] + spread(7, 0), "Beta": spread(8, 4)})
    late_text = os_text(late, ["Alpha", "Beta"], landmark_months=12)
    assert "100.00% (none by 12 months; 8 patients still at risk) in the Alpha group" in late_text


# ---------------------------------------------------------------------------------------------
# Links to chapters
# ---------------------------------------------------------------------------------------------
def test_chapter_label_is_read_from_the_notebook(tmp_path):
    (tmp_path / "nrm.md").write_text("---\n---\n\n(nrm-page)=\n# NRM\n\n(other)=\n## x\n")
    assert narrative.chapter_label("nrm", tmp_path, included=["nrm"]) == "nrm-page"
    assert narrative.chapter_label("nrm", tmp_path, included=[]) is None
    assert narrative.chapter_label("gvhd", tmp_path, included=["gvhd"]) is None


def test_links_appear_only_for_given_labels():
    data = cohort({"Alpha": spread(8, 2), "Beta": spread(8, 3)})
    none = narrative.results_narrative(data, "arm", ["Alpha", "Beta"], links=NO_LINKS,
                                       disclosure=NO_SUPPRESSION)
    assert "{ref}" not in none.markdown()
    some = narrative.results_narrative(data, "arm", ["Alpha", "Beta"],
                                       links={"nrm": "nrm-page"}, disclosure=NO_SUPPRESSION)
    assert re.findall(r"\{ref\}`([^`]+)`", some.markdown()) == ["nrm-page"]


# ---------------------------------------------------------------------------------------------
# Written as a clinical author would (issue 14, item 7)
# ---------------------------------------------------------------------------------------------
def sentences(text: str) -> list[str]:
    return re.split(r"(?<=[.!?])\s+(?=[A-Z*])", text)


@pytest.fixture(scope="module")
def reference_story():
    data = load_cohort(DEFAULT_DATA)
    return narrative.results_narrative(data, "arm", sorted(data["arm"].unique()),
                                       links=NO_LINKS, disclosure=NO_SUPPRESSION)


def test_every_sentence_comparing_groups_carries_its_interval_or_test(reference_story):
    for sentence in sentences(reference_story.markdown()):
        if re.search(r"\b(higher|lower|highest|lowest)\b in the", sentence):
            assert "P = " in sentence or "CI" in sentence, sentence
    assert "percentage points" not in reference_story.section("os_pfs").text


def test_percentages_have_the_paper_s_decimals(reference_story):
    text = reference_story.markdown()
    # estimates at the landmark: two decimals, as the paper's 76.54%
    survival = reference_story.section("os_pfs").text
    assert re.search(r"was \d{1,3}\.\d{2}% \(95% CI", survival)
    # shares of patients: one decimal, as the paper's 61.1% and Table 1
    counts = re.findall(r"\d+ of \d+(?: patients)? \((\d+\.\d+)%\)", text)
    assert counts and all(len(c.split(".")[1]) == 1 for c in counts)


def test_an_estimate_on_few_patients_says_how_many(reference_story):
    data = load_cohort(DEFAULT_DATA)
    endpoint = narrative.derive(data[data["arm"] == "Blinatumomab"], "os")
    left = int((endpoint["time"] >= months_to_days(24.0)).sum())
    assert left < narrative.FEW_AT_RISK
    patients = "patient" if left == 1 else "patients"
    assert (f"; {left} {patients} still at risk) in the Blinatumomab group"
            in reference_story.section("os_pfs").text)
    assert "still at risk) in the CAR" not in reference_story.section("os_pfs").text


def test_medians_have_units_and_no_sentence_is_about_the_tooling(reference_story):
    text = reference_story.markdown() + reference_story.settings
    medians = re.findall(
        r"\b[Mm]edian(?: [A-Za-z–,()-]+){0,14}? (?:was|of) (\d+(?:\.\d+)?)( \w+)", text)
    assert len(medians) >= 6
    for number, unit in medians:
        assert unit.strip() in {"months", "days", "years"}, (number, unit)
    for bounds in re.findall(r"(?:range|CI) \d+(?:\.\d+)?(?:–| to )\d+(?:\.\d+)?(\W)", text):
        assert bounds in {" ", "%"}, bounds  # "range 6–58 years", "CI 57.54–88.51%"
    for word in ["notebook", "the chapters", "the package", "computed by", "the code"]:
        assert word not in text, word


def test_a_small_p_value_reads_p_below_not_p_equals_below():
    """A large cohort whose groups differ: the log-rank P is below 0.001 (lifelines, here)
    and the sentence says "P < 0.001", never "P = < 0.001"."""
    from lifelines.statistics import multivariate_logrank_test

    from bridge_hsct.cohort.simulate import simulate_cohort

    data = validate_cohort(simulate_cohort(3000, seed=21))
    groups = sorted(data["arm"].unique())
    p = multivariate_logrank_test(data["followup_days"], data["arm"],
                                  data["death"] == 1).p_value
    assert p < 0.001
    text = narrative.survival_section(data, "arm", groups, 24.0, 0.05,
                                      disclosure=NO_SUPPRESSION).text
    assert "P < 0.001" in text and "P = <" not in text

"""The computed Results narrative: the paper's Results sections rewritten from the data.

Every number of the narrative is computed here with the functions the chapters use
(:func:`bridge_hsct.paper.outcomes.endpoint_summary`,
:func:`bridge_hsct.paper.table1.baseline_table`,
:mod:`bridge_hsct.stats.group_tests`), and so are the words that depend on those numbers:
*higher* or *lower*, *statistically significant* or *not* (at the chapter's ``alpha``),
*not reached*, *not estimable*. Group labels come from the data, and with three or more
groups the sentences describe the k-group test. A column the data lack is said to be
missing instead of being reported.

Each paragraph records what it prints (:class:`Recorder`), so the page can offer the numbers
behind its text as a CSV file and the tests can compare them with the package's
computations. The recorder holds the chapter's disclosure: every count of patients or events
is printed through it.

Layout of the result: :func:`results_narrative` returns a :class:`Narrative` of
:class:`Section` objects, one per Results section of the paper (baseline characteristics;
OS and PFS; GRFS; NRM; GVHD; engraftment and infection).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..cohort.endpoints import (
    ENDPOINTS,
    derive,
    known_status,
    missing_columns,
    missing_competitors,
)
from ..cohort.schema import BY_NAME
from ..render.disclosure import Disclosure
from ..render.escaping import markdown_text
from ..render.formatting import (
    ci_label,
    format_number,
    format_percent,
    in_sentence,
    p_phrase,
)
from ..stats import group_tests
from ..stats.survival import (
    months_to_days,
    numbers_at_risk,
    reverse_km_median_followup,
    to_months,
)
from .outcomes import (
    COMPETING_METHOD,
    DAY_100_MONTHS,
    PAPER_METHOD,
    competitors_sentence,
    endpoint_summary,
    landmark_label,
    left_out_sentence,
)
from .table1 import TABLE1_ROWS, baseline_table

#: How each endpoint is named inside a sentence, and what one event of it is called
#: (singular, plural).
ENDPOINT_WORDS: dict[str, tuple[str, str, str, str]] = {
    "os": ("overall survival", "death", "deaths", "no patient died"),
    "pfs": ("progression-free survival", "relapse or death", "relapses or deaths",
            "no patient relapsed or died"),
    "grfs": ("GVHD-free, relapse-free survival (GRFS)", "GRFS event", "GRFS events",
             "no patient had a GRFS event"),
    "nrm": ("non-relapse mortality", "death without prior relapse",
            "deaths without prior relapse", "no patient died without a prior relapse"),
    "agvhd_2_4": ("grade II–IV acute GVHD", "case", "cases",
                  "no patient developed grade II–IV acute GVHD"),
    "agvhd_3_4": ("grade III–IV acute GVHD", "case", "cases",
                  "no patient developed grade III–IV acute GVHD"),
    "cgvhd": ("chronic GVHD", "case", "cases", "no patient developed chronic GVHD"),
}

#: Results sections of the paper, in its order: key, heading, chapter notebook.
SECTIONS: list[tuple[str, str, str]] = [
    ("baseline", "Patient characteristics", "baseline"),
    ("os_pfs", "Overall and progression-free survival", "os_pfs"),
    ("grfs", "GVHD-free, relapse-free survival", "grfs"),
    ("nrm", "Non-relapse mortality", "nrm"),
    ("gvhd", "Graft-versus-host disease", "gvhd"),
    ("engraftment_infection", "Engraftment and infection", "engraftment_infection"),
]

#: Whole-cohort characteristics the baseline paragraph counts (when the data hold them), and
#: how the sentence names them.
BASELINE_FACTS = {
    "ph_positive": "Ph-positive disease", "t315i": "a T315I mutation",
    "extramedullary_disease": "extramedullary disease before the immunotherapy",
    "prior_hsct": "an earlier HSCT", "mrd_positive": "detectable MRD before the transplant",
}

#: Complications and infections of the last paragraph (the paper's Table 3).
COMPLICATIONS = ["tma", "hemorrhagic_cystitis", "ptld"]
INFECTIONS = ["pulmonary_infection", "upper_respiratory_infection", "soft_tissue_infection",
              "gi_infection", "bloodstream_infection", "urinary_tract_infection"]
VIRUSES = ["cmv_reactivation", "ebv_reactivation"]
INFECTION_WORDS = {
    "pulmonary_infection": "pulmonary", "upper_respiratory_infection": "upper respiratory",
    "soft_tissue_infection": "skin and soft tissue", "gi_infection": "gastrointestinal",
    "bloodstream_infection": "bloodstream", "urinary_tract_infection": "urinary tract",
}
OUTCOME_WORDS = {
    "tma": "thrombotic microangiopathy (TMA)", "hemorrhagic_cystitis": "haemorrhagic cystitis",
    "ptld": "post-transplant lymphoproliferative disorder (PTLD)",
    "cmv_reactivation": "CMV reactivation", "ebv_reactivation": "EBV reactivation",
    "cmv_disease": "CMV disease",
}


# ---------------------------------------------------------------------------------------------
# Small word helpers
# ---------------------------------------------------------------------------------------------
def join_words(items: list[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    items = [str(i) for i in items]
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def capitalise(text: str) -> str:
    """Upper-case the first character only (``log-rank test`` → ``Log-rank test``)."""
    return text[:1].upper() + text[1:]


def group_phrase(group) -> str:
    """``the CAR-T group``."""
    return f"the {markdown_text(group)} group"


def significance_words(p_value: float, alpha: float) -> str:
    """``statistically significant`` if ``P < alpha``, ``not statistically significant`` if
    not, ``not computable`` when the P value is missing."""
    if p_value is None or math.isnan(p_value):
        return "not computable"
    return "statistically significant" if p_value < alpha else "not statistically significant"


def test_words(test: str) -> str:
    """A test's name inside parentheses: ``Fisher's exact test`` (every test is two-sided)."""
    return test.replace(" (two-sided)", "")


def settings_text(landmark_months: float, alpha: float) -> str:
    """The reading rules of the page, from the chapter parameters (one sentence)."""
    return (f"Survival and incidence estimates are read at {landmark_label(landmark_months)} "
            f"after the transplant (acute GVHD at {landmark_label(DAY_100_MONTHS)}), with "
            f"{ci_label(alpha)}s; a difference between groups is called statistically "
            f"significant when its P value is below {alpha:g}. Curves are compared with the "
            "log-rank test over the whole follow-up, counts with Fisher's exact test (two "
            "groups) or the chi-square test (more groups), and times with the Mann–Whitney U "
            "test (two groups) or the Kruskal–Wallis test (more groups); all tests are "
            "two-sided and none is adjusted for multiplicity.")


# ---------------------------------------------------------------------------------------------
# What a paragraph prints, recorded as it is written
# ---------------------------------------------------------------------------------------------
RECORD_COLUMNS = ["section", "quantity", "group", "value", "unit", "shown"]


@dataclass
class Recorder:
    """Collects every number a section prints: what it is, for whom, its value and its text.

    Each method returns the text to print, so a sentence and its record cannot disagree.
    Counts of patients or events are printed through `disclosure` (the chapter's).
    """

    section: str
    disclosure: Disclosure
    rows: list = field(default_factory=list)

    def add(self, quantity: str, group, value: float, shown: str, unit: str = "") -> str:
        """Record one printed number and return `shown` (``< k`` for a small count of
        patients or events, :mod:`bridge_hsct.render.disclosure`)."""
        if unit in ("patients", "events") and self.disclosure.is_small(value):
            shown = self.disclosure.count_text(value)
        self.rows.append({"section": self.section, "quantity": quantity, "group": str(group),
                          "value": float(value) if value is not None else np.nan,
                          "unit": unit, "shown": shown})
        return shown

    def percent(self, quantity: str, group, proportion: float) -> str:
        """A proportion printed as a percentage with two decimals (``76.54%``)."""
        return self.add(quantity, group, proportion, format_percent(proportion), "proportion")

    def bound(self, quantity: str, group, proportion: float, alpha: float) -> str:
        """A confidence bound of a proportion, in percent without the sign (``58.29``); its
        unit names the level (``proportion, 95% CI bound``)."""
        return self.add(quantity, group, proportion, f"{100 * proportion:.2f}",
                        f"proportion, {ci_label(alpha)} bound")

    def p(self, quantity: str, p_value: float) -> str:
        """A P value as a sentence states it (``P = 0.862``, ``P < 0.001``)."""
        return self.add(quantity, "", p_value, p_phrase(p_value), "P")

    def count(self, quantity: str, group, k: int, n: int, noun: str = "") -> str:
        """``22 of 36 (61.1%)`` (``22 of 36 patients (61.1%)`` with a noun); records the
        count and the denominator."""
        self.add(quantity + ".n", group, n, str(n), "patients")
        count_text, small = self.disclosure.count_text, self.disclosure.is_small
        of = f"{count_text(k)} of {count_text(n)} {noun}".rstrip()
        shown = f"{of} ({100 * k / n:.1f}%)" if n and not (small(k) or small(n)) else of
        return self.add(quantity, group, k, shown, "patients")

    def number(self, quantity: str, group, value: float, unit: str, shown: str | None = None
               ) -> str:
        """A median, range end or size, printed with :func:`format_number` by default."""
        return self.add(quantity, group, value, shown or format_number(value), unit)


@dataclass(frozen=True)
class Section:
    """One Results section: its heading, the chapter it summarises and its text.

    Parameters
    ----------
    key : section key (see :data:`SECTIONS`).
    title : the heading the page gives it.
    chapter : label of the chapter page it links to, or None when that chapter is not in
        the book.
    text : the paragraph(s), MyST Markdown.
    numbers : every number the text prints (columns of :class:`Recorder` rows).
    """

    key: str
    title: str
    chapter: str | None
    text: str
    numbers: pd.DataFrame


@dataclass(frozen=True)
class Narrative:
    """The computed Results narrative: one :class:`Section` per Results section, its counts
    printed through `disclosure`."""

    sections: list[Section]
    settings: str
    disclosure: Disclosure

    def section(self, key: str) -> Section:
        """The section with key `key`."""
        for s in self.sections:
            if s.key == key:
                return s
        raise KeyError(key)

    def markdown(self) -> str:
        """The whole narrative as MyST, each section under a level-2 heading."""
        return "\n\n".join(f"## {s.title}\n\n{s.text}" for s in self.sections)

    def numbers(self) -> pd.DataFrame:
        """Every printed number of every section (section, quantity, group, value, unit,
        shown)."""
        numbers = pd.concat([s.numbers for s in self.sections], ignore_index=True)
        # a hidden count keeps its printed "< k" and loses its value
        hidden = (numbers["unit"].isin(["patients", "events"])
                  & numbers["value"].map(self.disclosure.is_small))
        return numbers.assign(value=numbers["value"].mask(hidden.astype(bool)))


# ---------------------------------------------------------------------------------------------
# Chapter links
# ---------------------------------------------------------------------------------------------
LABEL_LINE = re.compile(r"^\(([A-Za-z0-9_.:-]+)\)=\s*$", re.MULTILINE)


def chapter_label(name: str, notebooks: Path | None = None, included: list[str] | None = None
                  ) -> str | None:
    """The page label a chapter notebook defines (its first ``(label)=`` line).

    Parameters
    ----------
    name : chapter notebook name (``os_pfs``).
    notebooks : folder of the chapter notebooks (default: the book's ``notebooks/``).
    included : chapters the book builds (default: :func:`bridge_hsct.paths.chapters`, the
        table of contents entries whose notebook exists).

    Returns
    -------
    str or None
        The label, or None when the chapter is not built or defines no label, so that a
        link to it would break the build.
    """
    from ..paths import NOTEBOOKS, chapters

    folder = Path(notebooks) if notebooks is not None else NOTEBOOKS
    built = chapters() if included is None else included
    path = folder / f"{name}.md"
    if name not in built or not path.is_file():
        return None
    match = LABEL_LINE.search(path.read_text(encoding="utf-8"))
    return match.group(1) if match else None


def chapter_links() -> dict[str, str | None]:
    """Section key → label of its chapter page (None when the chapter is not built)."""
    return {key: chapter_label(chapter) for key, _, chapter in SECTIONS}


def _see_also(label: str | None) -> str:
    return f" Details: {{ref}}`{label}`." if label else ""


# ---------------------------------------------------------------------------------------------
# Endpoint sentences
# ---------------------------------------------------------------------------------------------
def _rounded(proportion: float) -> float:
    """A proportion as the percentage the text prints (two decimals), for comparisons."""
    return round(100 * proportion, 2)


#: An estimate resting on fewer patients still at risk at its time point than this says
#: how many: its interval is wide and one more event would move it far.
FEW_AT_RISK = 10


def at_risk_words(rec: Recorder, name: str, group, at_risk: int | None) -> str:
    """``; 1 patient still at risk`` when fewer than :data:`FEW_AT_RISK` remain at the
    landmark (the count through the disclosure), else ``""``."""
    if at_risk is None or at_risk >= FEW_AT_RISK:
        return ""
    shown = rec.number(f"{name}.at_risk", group, at_risk, "patients", str(at_risk))
    return f"; {shown} patient{'' if shown == '1' else 's'} still at risk"  # "< 5 patients"


def estimate_phrase(rec: Recorder, name: str, row, at_risk: int | None = None) -> str:
    """``78.39% (95% CI 59.77–89.13%)``, ``0.00% (no case observed)``, ``0.00% (none by
    24 months)`` (events only after the landmark) or ``not estimable``; the level and the
    landmark are those the row of :func:`endpoint_summary` was computed at. With
    `at_risk` below :data:`FEW_AT_RISK`, the bracket says how many patients were still at
    risk at the landmark (``; 1 patient still at risk``)."""
    group = row["group"]
    if np.isnan(row["estimate"]):
        return rec.add(f"{name}.estimate", group, np.nan, "not estimable", "proportion")
    shown = rec.percent(f"{name}.estimate", group, row["estimate"])
    few = at_risk_words(rec, name, group, at_risk)
    if row["events"] == 0:
        return f"{shown} (no {ENDPOINT_WORDS[name][1]} observed{few})"
    if np.isnan(row["lower"]) or np.isnan(row["upper"]):
        return f"{shown} ({few[2:]})" if few else shown
    if row["lower"] == row["upper"] == row["estimate"]:  # no event yet at the landmark
        return f"{shown} (none by {landmark_label(row['landmark_months'])}{few})"
    lower = rec.bound(f"{name}.lower", group, row["lower"], row["alpha"])
    upper = rec.bound(f"{name}.upper", group, row["upper"], row["alpha"])
    return f"{shown} ({ci_label(row['alpha'])} {lower}–{upper}%{few})"


def at_risk_by_group(data: pd.DataFrame, name: str, group_col: str, groups: list,
                     landmark_months: float) -> dict:
    """Patients still at risk for endpoint `name` at the landmark: ``"whole"`` and each
    group (patients of unknown status left out, as in :func:`endpoint_summary`)."""
    known = data[known_status(data, name)]
    endpoint = derive(known, name)
    at = [float(months_to_days(landmark_months))]
    counts = {"whole": int(numbers_at_risk(endpoint["time"], endpoint["cause"] == 1, at)[0])}
    for g in groups:
        part = endpoint[(known[group_col] == g).to_numpy()]
        counts[g] = int(numbers_at_risk(part["time"], part["cause"] == 1, at)[0])
    return counts


def median_phrase(rec: Recorder, name: str, row) -> str:
    """``59.04 months (95% CI 39.03 to 72.67 months)`` or ``not reached`` (at the row's
    level)."""
    group = row["group"]
    if np.isnan(row["median_months"]):
        return rec.add(f"{name}.median", group, np.nan, "not reached", "months")
    median = rec.number(f"{name}.median", group, row["median_months"], "months",
                        f"{row['median_months']:.2f}")
    bounds = []
    for side in ("lower", "upper"):
        value = row[f"median_{side}"]
        bounds.append(rec.number(f"{name}.median_{side}", group, value,
                                 f"months, {ci_label(row['alpha'])} bound",
                                 "not reached" if np.isnan(value) else f"{value:.2f}"))
    return f"{median} months ({ci_label(row['alpha'])} {bounds[0]} to {bounds[1]} months)"


def direction_clause(groups: pd.DataFrame) -> str | None:
    """Which group had the higher estimate, from the printed (rounded) estimates, as a
    clause without its full stop; ``""`` when fewer than two groups have an estimate (None
    when there are fewer than two groups at all).

    Two groups: ``the point estimate was higher in the A group than in the B group`` (or
    ``the estimate was the same in both groups``). Three or more: highest and lowest
    groups. No gap in percentage points is printed: a bare difference beside intervals tens
    of points wide reads as more certain than it is; the reader has both intervals.
    """
    if len(groups) < 2:
        return None
    known = groups[groups["estimate"].notna()]
    if len(known) < 2:
        return ""
    values = {row["group"]: _rounded(row["estimate"]) for _, row in known.iterrows()}
    top, bottom = max(values.values()), min(values.values())
    if top == bottom:
        return ("the estimate was the same in both groups" if len(values) == 2
                else "the estimate was the same in every group")
    highest = [g for g, v in values.items() if v == top]
    lowest = [g for g, v in values.items() if v == bottom]
    if len(values) == 2:
        return (f"the point estimate was higher in {group_phrase(highest[0])} than in "
                f"{group_phrase(lowest[0])}")
    return (f"it was highest in {join_words([group_phrase(g) for g in highest])} and lowest "
            f"in {join_words([group_phrase(g) for g in lowest])}")


def intervals_overlap(groups: pd.DataFrame) -> bool | None:
    """Whether every pair of the groups' confidence intervals overlaps (None when a group
    has no interval)."""
    if groups["lower"].isna().any() or groups["upper"].isna().any():
        return None
    return bool(groups["lower"].max() <= groups["upper"].min())


def test_clause(rec: Recorder, name: str, groups: pd.DataFrame, alpha: float) -> str:
    """The between-group test of the whole curves, as a clause with its P value, in words
    that follow ``alpha``; ``""`` with fewer than two groups."""
    first = groups.iloc[0]
    p_value, test = first["p_value"], first["test"]
    k = len(groups)
    if k < 2:
        return ""
    if np.isnan(p_value):
        return "no between-group test could be computed"
    shown = rec.p(f"{name}.p_value", p_value)
    if p_value < alpha:
        if k == 2:
            return (f"the difference between the two curves was statistically significant "
                    f"({test}, {shown})")
        return (f"the {test} across the {k} groups was statistically significant "
                f"({shown}): at least one group's curve differs from the others")
    if k == 2:
        return (f"over the whole follow-up the two curves did not differ significantly "
                f"({test}, {shown})")
    return (f"over the whole follow-up the curves of the {k} groups did not differ "
            f"significantly ({test} across all groups, {shown})")


def comparison_sentence(rec: Recorder, name: str, groups: pd.DataFrame, alpha: float) -> str:
    """One sentence setting the groups side by side: which estimate was higher, whether
    their intervals overlap, and the test with its P value, so that no difference is
    stated without its uncertainty."""
    direction = direction_clause(groups)
    test = test_clause(rec, name, groups, alpha)
    if direction is None:
        return ""
    if direction == "":
        return (capitalise(test) + "; the estimates at this time point cannot be set side "
                "by side because fewer than two groups have one.")
    overlap = intervals_overlap(groups[groups["estimate"].notna()])
    if len(groups) == 2 and "higher" in direction and overlap is not None:
        join = ("but their intervals overlap, and " if overlap
                else "and their intervals do not overlap; ")
        return f"{capitalise(direction)}, {join}{test}."
    return f"{capitalise(direction)}; {test}."


#: A gap between 1 − Kaplan–Meier and Aalen–Johansen that the words must mention: five
#: percentage points, about the width that changes how a reader compares cohorts.
MATERIAL_GAP = 0.05


def competing_sentence(rec: Recorder, data: pd.DataFrame, name: str, group_col: str,
                       groups: list, landmark_months: float, alpha: float, paper_whole) -> str:
    """The Aalen–Johansen reading of an incidence, when it differs materially from the
    paper's 1 − Kaplan–Meier (which treats patients who relapsed or died first as if they
    could still have the event, and so overstates it); else ``""``."""
    if missing_competitors(data, name):
        return competitors_sentence(data, name)
    competing = endpoint_summary(data, name, group_col, groups, landmark_months,
                                 COMPETING_METHOD, alpha).iloc[0]
    gap = paper_whole["estimate"] - competing["estimate"]
    if not abs(gap) >= MATERIAL_GAP:  # also when either is not estimable
        return ""
    what = ENDPOINT_WORDS[name][0]
    estimate = estimate_phrase(rec, f"{name}_aalen_johansen", competing)
    points = rec.number(f"{name}.competing_gap", "whole", 100 * gap, "percentage points",
                        f"{100 * abs(gap):.2f}")
    return (f"Many patients relapsed or died before any {what}, and 1 − Kaplan–Meier "
            f"counts them as if they could still have it: counted as competing events "
            f"(Aalen–Johansen), the incidence at {landmark_label(landmark_months)} was "
            f"{estimate}, {points} percentage points {'lower' if gap > 0 else 'higher'}.")


def endpoint_paragraph(rec: Recorder, data: pd.DataFrame, name: str, group_col: str,
                       groups: list, landmark_months: float, alpha: float,
                       method: str = PAPER_METHOD, competing_note: bool = True) -> str:
    """Whole-cohort estimate (and median), per-group estimates, direction and test.

    Parameters
    ----------
    rec : where the printed numbers are recorded.
    data : validated cohort.
    name : endpoint key of :data:`ENDPOINT_WORDS`.
    group_col, groups : compared groups, in display order.
    landmark_months : where the estimates are read.
    alpha : significance level and one minus the confidence level.
    method : for incidence endpoints, the paper's ``1 - kaplan-meier`` (default).
    competing_note : for an incidence by 1 − Kaplan–Meier, add the Aalen–Johansen reading
        when the two differ materially (:func:`competing_sentence`).

    Returns
    -------
    str
        One paragraph of MyST Markdown.
    """
    what, one, many, none = ENDPOINT_WORDS[name]
    missing = missing_columns(data, name)
    if missing:
        return (f"The data lack {_missing_words(missing)}, so {what} cannot be computed "
                "here.")
    left_out = left_out_sentence(data, name, disclosure=rec.disclosure)
    summary = endpoint_summary(data, name, group_col, groups, landmark_months, method, alpha)
    whole, by_group = summary.iloc[0], summary.iloc[1:]
    when = landmark_label(landmark_months)
    kind = ENDPOINTS[name].kind
    n = rec.number(f"{name}.n", "whole", whole["n"], "patients", str(int(whole["n"])))
    events = int(whole["events"])
    counted = rec.number(f"{name}.events", "whole", events, "events", str(events))
    if events == 0:
        level = "stays at 100%" if kind == "survival" else "stays at 0%"
        return " ".join(t for t in (
            f"Among the {n} patients, {none}, so {what} {level} throughout the "
            "follow-up and the groups cannot be compared.", left_out) if t)
    noun, were = (one, "was") if events == 1 else (many, "were")
    at_risk = at_risk_by_group(data, name, group_col, groups, landmark_months)
    overall = estimate_phrase(rec, name, whole, at_risk["whole"])
    if kind == "survival":
        text = (f"At {when}, {what} of the whole cohort was {overall}; over the whole "
                f"follow-up, {counted} {noun} {were} recorded among the {n} patients.")
        median = median_phrase(rec, name, whole)
        text += (" The median was not reached: the curve stays above 50%." if median ==
                 "not reached" else f" The median was {median}.")
    else:
        text = (f"Among the {n} patients, {counted} {noun} {were} recorded; the cumulative "
                f"incidence of {what} by {when} was {overall}.")
    parts = [f"{estimate_phrase(rec, name, row, at_risk[row['group']])} in "
             f"{group_phrase(row['group'])}" for _, row in by_group.iterrows()]
    if parts:
        text += f" By group, it was {join_words(parts)}."
    comparison = comparison_sentence(rec, name, by_group, alpha)
    competing = (competing_sentence(rec, data, name, group_col, groups, landmark_months, alpha,
                                    whole)
                 if competing_note and kind == "incidence" and method == PAPER_METHOD else "")
    return " ".join(t for t in (text, comparison, competing, left_out) if t)


# ---------------------------------------------------------------------------------------------
# Counts and times by group
# ---------------------------------------------------------------------------------------------
def available(data: pd.DataFrame, *columns: str) -> bool:
    """Whether every column is in the cohort with at least one value."""
    return all(c in data and bool(data[c].notna().any()) for c in columns)


def has_event(data: pd.DataFrame, event: str, days: str | None = None) -> bool:
    """Whether the cohort records an event: its 0/1 column with values, and its day column
    (which may be all empty when nobody had the event)."""
    return available(data, event) and (days or f"{event}_days") in data


def _missing_words(columns: list[str]) -> str:
    labels = [BY_NAME[c].label if c in BY_NAME else c for c in columns]
    return join_words([f"{in_sentence(label)} (`{c}`)"
                       for label, c in zip(labels, columns, strict=True)])


def count_comparison(rec: Recorder, data: pd.DataFrame, column: str, group_col: str,
                     groups: list, alpha: float, what: str) -> str:
    """``CMV reactivation occurred in 22 of 36 (61.1%): ... (Fisher's exact test, P = 0.267,
    not statistically significant).`` Missing values are left out of the denominators."""
    values = data[column]
    whole = rec.count(column, "whole", int((values == 1).sum()), int(values.notna().sum()),
                      "patients")
    parts = []
    for g in groups:
        part = values[data[group_col] == g]
        parts.append(f"{rec.count(column, g, int((part == 1).sum()), int(part.notna().sum()))}"
                     f" in {group_phrase(g)}")
    result = group_tests.compare_categories(values, data[group_col], [1, 0])
    if np.isnan(result.p_value):
        test = "no test could be computed"
    else:
        test = (f"{test_words(result.test)}, {rec.p(column + '.p_value', result.p_value)}, "
                f"{significance_words(result.p_value, alpha)}")
    return f"{capitalise(what)} occurred in {whole}: {join_words(parts)} ({test})."


def frequent_first(data: pd.DataFrame, columns: list[str]) -> list[str]:
    """The available columns, most frequent outcome first (ties in the given order)."""
    present = [c for c in columns if available(data, c)]
    return sorted(present, key=lambda c: -int((data[c] == 1).sum()))


def listed_outcomes(rec: Recorder, data: pd.DataFrame, columns: list[str], group_col: str,
                    groups: list, alpha: float, words: dict[str, str], noun: str) -> str:
    """Whole-cohort counts of several 0/1 outcomes, most frequent first, and which of them
    differ between the groups at `alpha` (with the group in which they were most frequent).
    """
    present = frequent_first(data, columns)
    if not present:
        return ""
    listed = []
    for c in present:
        k, n = int((data[c] == 1).sum()), int(data[c].notna().sum())
        listed.append(f"{words[c]} {rec.count(c, 'whole', k, n)}")
    text = f"{capitalise(noun)}, most frequent first: {join_words(listed)}."
    results = {c: group_tests.compare_categories(data[c], data[group_col], [1, 0])
               for c in present}
    significant = [c for c, r in results.items() if r.p_value < alpha]
    computable = [c for c, r in results.items() if not np.isnan(r.p_value)]
    if not computable:
        return text + " No between-group test could be computed."
    if not significant:
        smallest = min(computable, key=lambda c: results[c].p_value)
        p = rec.p(smallest + ".p_value", results[smallest].p_value)
        return (text + f" None differed significantly between the groups (smallest {p}, "
                f"{words[smallest]}).")
    found = []
    for c in significant:
        rates = {}
        for g in groups:
            part = data.loc[data[group_col] == g, c]
            rates[g] = (part == 1).sum() / part.notna().sum() if part.notna().any() else -1
        top = max(rates.values())
        most = [g for g, r in rates.items() if r == top]
        found.append(f"{words[c]} ({rec.p(c + '.p_value', results[c].p_value)}, most "
                     f"frequent in {join_words([group_phrase(g) for g in most])})")
    return text + f" Statistically significant between-group differences: {join_words(found)}."


def engraftment_sentence(rec: Recorder, data: pd.DataFrame, event: str, group_col: str,
                         groups: list, alpha: float, what: str) -> str:
    """Who engrafted, the median day (range) overall and by group, and the rank test."""
    days = data[f"{event}_days"]
    engrafted = int((data[event] == 1).sum())
    n = int(data[event].notna().sum())
    share = rec.count(event, "whole", engrafted, n, "patients")
    if engrafted == 0:
        return f"No patient had {what} recorded."
    median = rec.number(f"{event}.median_days", "whole", days.median(), "days")
    low = rec.number(f"{event}.min_days", "whole", days.min(), "days")
    high = rec.number(f"{event}.max_days", "whole", days.max(), "days")
    parts = []
    for g in groups:
        part = days[data[group_col] == g].dropna()
        parts.append("none engrafted in " + group_phrase(g) if part.empty else
                     f"{rec.number(f'{event}.median_days', g, part.median(), 'days')} days in "
                     f"{group_phrase(g)}")
    result = group_tests.compare_numbers(days, data[group_col])
    if np.isnan(result.p_value):
        test = "no test could be computed"
    else:
        test = (f"{test_words(result.test)}, {rec.p(event + '.p_value', result.p_value)}, "
                f"{significance_words(result.p_value, alpha)}")
    missing = n - engrafted
    failed = ""
    if missing:
        shown = rec.number(f"{event}.not_engrafted", "whole", missing, "patients", str(missing))
        failed = (f" The other {shown} had none recorded (graft failure, or death or the end "
                  "of follow-up before it).")
    return (f"{capitalise(what)} was recorded in {share}, after a median of {median} "
            f"days (range {low}–{high} days); the medians by group were {join_words(parts)} "
            f"({test}).{failed}")


# ---------------------------------------------------------------------------------------------
# The sections
# ---------------------------------------------------------------------------------------------
def _table1_whole(numbers: pd.DataFrame, variable: str) -> pd.DataFrame:
    return numbers[(numbers["variable"] == variable) & (numbers["group"] == "whole")]


def _difference_label(variable: str, level: str) -> str:
    label = in_sentence(BY_NAME[variable].label if variable in BY_NAME else "Follow-up")
    how = {r.how for r in TABLE1_ROWS if r.variable == variable}
    if level.startswith(("> ", "≤ ")):
        return f"{label} over {level[2:]}"
    if "each_level" in how and level:
        return f"{level.lower()} {label}"
    return label


def followup_sentence(rec: Recorder, data: pd.DataFrame, observed, alpha: float) -> str:
    """Median follow-up both ways, each named: by reverse Kaplan–Meier (the usual definition)
    and as the median of every patient's observed time (Table 1's, deaths included)."""
    observed_text = (
        f"{rec.number('followup.median', 'whole', observed['median'], 'months')} months "
        f"(range {rec.number('followup.min', 'whole', observed['min'], 'months')}–"
        f"{rec.number('followup.max', 'whole', observed['max'], 'months')} months)")
    if "death" not in data:
        return (f"The median of the observed times, which Table 1 gives as the paper does, "
                f"was {observed_text}; the median follow-up by reverse Kaplan–Meier needs "
                "`death`, which the data lack.")
    known = data["death"].notna()
    reverse = reverse_km_median_followup(data.loc[known, "followup_days"],
                                         data.loc[known, "death"], alpha)
    median, lower, upper = (to_months(v) for v in (reverse.value, reverse.lower,
                                                     reverse.upper))
    shown = ("not reached" if np.isnan(median) else
             f"{rec.number('followup.reverse_km_median', 'whole', median, 'months')} months")
    interval = ("" if np.isnan(median) or np.isnan(lower) or np.isnan(upper) else
                f" ({ci_label(alpha)} "
                f"{rec.number('followup.reverse_km_lower', 'whole', lower, 'months')} to "
                f"{rec.number('followup.reverse_km_upper', 'whole', upper, 'months')} months)")
    unknown = int((~known).sum())
    left_out = (f" (on the {rec.disclosure.count_text(int(known.sum()))} patients whose "
                "vital status is known)" if unknown else "")
    return (f"Median follow-up, by the reverse Kaplan–Meier method (time to last contact, "
            f"deaths counted as censored), was {shown}{interval}{left_out}; the median of "
            f"the observed times, deaths included, which Table 1 gives as the paper does, was "
            f"{observed_text}. {FOLLOWUP_COMPARISON}")


#: Why the book does not read the groups' follow-up as a finding, though Table 1 tests it.
FOLLOWUP_COMPARISON = (
    "Table 1 compares the observed times between the groups because the paper did; a "
    "difference there mixes how early patients died with when they were transplanted, so "
    "it is no result in itself: the survival comparisons handle unequal follow-up through "
    "censoring.")


def baseline_section(data: pd.DataFrame, group_col: str, groups: list, alpha: float,
                     link: str | None = None, *, disclosure: Disclosure) -> Section:
    """Cohort size by group, age, follow-up, disease status, selected characteristics, donor
    types, and the baseline characteristics that differ between the groups at `alpha`
    (counts through `disclosure`, as in every section)."""
    rec = Recorder("baseline", disclosure)
    table1 = baseline_table(data, group_col, groups, disclosure=disclosure)
    numbers = table1.numbers
    n = rec.number("patients", "whole", len(data), "patients", str(len(data)))
    sizes = []
    for g in groups:
        size = int((data[group_col] == g).sum())
        sizes.append(f"{rec.number('patients', g, size, 'patients', str(size))} in "
                     f"{group_phrase(g)}")
    text = [f"The cohort has {n} patients: {join_words(sizes)}."]
    ages = _table1_whole(numbers, "age_years").query("level == ''")
    follow = _table1_whole(numbers, "followup_months")
    if not ages.empty:
        age = ages.iloc[0]
        text.append(f"Their median age at the transplant was "
                    f"{rec.number('age.median', 'whole', age['median'], 'years')} years "
                    f"(range {rec.number('age.min', 'whole', age['min'], 'years')}–"
                    f"{rec.number('age.max', 'whole', age['max'], 'years')} years).")
    if not follow.empty:
        text.append(followup_sentence(rec, data, follow.iloc[0], alpha))
    status = _table1_whole(numbers, "disease_status")
    if not status.empty:
        levels = []
        for _, r in status.iterrows():
            shown = rec.count(f"disease_status={r['level']}", "whole", int(r["count"]),
                              int(r["n"]))
            levels.append(f"{in_sentence(r['level'])} in {shown}")
        text.append(f"Before the bridging therapy, disease status was "
                    f"{join_words(levels)}.")
    facts = []
    for variable, words in BASELINE_FACTS.items():
        rows = _table1_whole(numbers, variable)
        if rows.empty:
            continue
        r = rows.iloc[0]
        facts.append(f"{rec.count(variable, 'whole', int(r['count']), int(r['n']))} had "
                     f"{words}")
    if facts:
        text.append(f"In the whole cohort, {join_words(facts)}.")
    donors = _table1_whole(numbers, "donor_type")
    if not donors.empty:
        kinds = []
        for _, r in donors.iterrows():
            shown = rec.count(f"donor_type={r['level']}", "whole", int(r["count"]), int(r["n"]))
            kinds.append(f"{r['level']} in {shown}")
        text.append(f"The donor was {join_words(kinds)} (HID haploidentical, MSD matched "
                    "sibling, MUD matched unrelated).")
    tested = numbers[numbers["p_value"].notna()].drop_duplicates(["variable", "p_value"])
    differing = tested[tested["p_value"] < alpha]
    count = rec.number("baseline.tests", "", len(tested), "tests", str(len(tested)))
    if differing.empty:
        text.append(f"None of the {count} baseline comparisons between the groups was "
                    f"statistically significant.")
    else:
        items = [f"{_difference_label(r['variable'], r['level'])} "
                 f"({rec.p(r['variable'] + '.p_value', r['p_value'])})"
                 for _, r in differing.iterrows()]
        many = "comparison was" if len(differing) == 1 else "comparisons were"
        text.append(f"Of the {count} baseline comparisons between the groups, "
                    f"{len(differing)} {many} statistically significant: {join_words(items)}. "
                    f"With this many unadjusted tests, some differences at the {alpha:g} level "
                    "are expected by chance alone.")
    if table1.omitted:
        text.append(f"The data lack {_missing_words(list(dict.fromkeys(table1.omitted)))}.")
    return Section("baseline", SECTIONS[0][1], link,
                   " ".join(text) + _see_also(link), pd.DataFrame(rec.rows))


def survival_section(data: pd.DataFrame, group_col: str, groups: list, landmark_months: float,
                     alpha: float, link: str | None = None, *,
                     disclosure: Disclosure) -> Section:
    """Overall and progression-free survival: two paragraphs."""
    rec = Recorder("os_pfs", disclosure)
    os_text = endpoint_paragraph(rec, data, "os", group_col, groups, landmark_months, alpha)
    pfs_text = endpoint_paragraph(rec, data, "pfs", group_col, groups, landmark_months, alpha)
    text = (f"**Overall survival** (death from any cause, counted from the transplant). "
            f"{os_text}\n\n**Progression-free survival** (relapse or death, whichever came "
            f"first). {pfs_text}{_see_also(link)}")
    return Section("os_pfs", SECTIONS[1][1], link, text, pd.DataFrame(rec.rows))


def grfs_section(data: pd.DataFrame, group_col: str, groups: list, landmark_months: float,
                 alpha: float, link: str | None = None, *, disclosure: Disclosure) -> Section:
    """GRFS, or, when the data lack one of its GVHD columns, a sentence saying so."""
    rec = Recorder("grfs", disclosure)
    text = ("GRFS counts as an event whichever comes first of relapse, death, grade III–IV "
            "acute GVHD and severe chronic GVHD. ")
    lacking = missing_columns(data, "grfs")
    named = [c for c in lacking if not (c.endswith("_days") and c[:-5] in lacking)]
    if lacking:
        text += (f"The data lack {_missing_words(named)}, so GRFS cannot be computed: "
                 "without all of its events it would be another endpoint under its name.")
        return Section("grfs", SECTIONS[2][1], link, text + _see_also(link),
                       pd.DataFrame(rec.rows, columns=RECORD_COLUMNS))
    text += endpoint_paragraph(rec, data, "grfs", group_col, groups, landmark_months, alpha)
    return Section("grfs", SECTIONS[2][1], link, text + _see_also(link), pd.DataFrame(rec.rows))


def nrm_section(data: pd.DataFrame, group_col: str, groups: list, landmark_months: float,
                alpha: float, link: str | None = None, *, disclosure: Disclosure) -> Section:
    """NRM by the paper's method, then the competing-risk estimate of the whole cohort."""
    rec = Recorder("nrm", disclosure)
    text = ("Non-relapse mortality is death without a prior relapse. As in the paper, it is "
            "estimated as one minus a Kaplan–Meier curve in which relapsed patients are "
            "censored, and compared with the log-rank test. ")
    text += endpoint_paragraph(rec, data, "nrm", group_col, groups, landmark_months, alpha,
                               competing_note=False)  # said below, whatever the gap
    if missing_columns(data, "nrm"):
        return Section("nrm", SECTIONS[3][1], link, text + _see_also(link),
                       pd.DataFrame(rec.rows, columns=RECORD_COLUMNS))
    competing = endpoint_summary(data, "nrm", group_col, groups, landmark_months,
                                 COMPETING_METHOD, alpha)
    whole, first = competing.iloc[0], competing.iloc[1]
    if whole["events"] > 0:
        aj = Recorder("nrm", disclosure)
        estimate = estimate_phrase(aj, "nrm_aalen_johansen", whole)
        rec.rows += aj.rows
        test = ("no Gray's test could be computed" if np.isnan(first["p_value"]) else
                f"Gray's test between the groups gives "
                f"{rec.p('nrm_aalen_johansen.p_value', first['p_value'])}, "
                f"{significance_words(first['p_value'], alpha)}")
        text += (f" Counting relapse as a competing event instead (Aalen–Johansen), NRM at "
                 f"{landmark_label(landmark_months)} was {estimate} in the whole cohort; "
                 f"{test}.")
    return Section("nrm", SECTIONS[3][1], link, text + _see_also(link), pd.DataFrame(rec.rows))


def gvhd_section(data: pd.DataFrame, group_col: str, groups: list, landmark_months: float,
                 alpha: float, link: str | None = None, *, disclosure: Disclosure) -> Section:
    """Acute GVHD at day 100 and chronic GVHD at the landmark, or what the data lack."""
    rec = Recorder("gvhd", disclosure)
    readings = [("agvhd_2_4", DAY_100_MONTHS), ("agvhd_3_4", DAY_100_MONTHS),
                ("cgvhd", landmark_months)]
    present = [(n, m) for n, m in readings if has_event(data, n)]
    absent = [n for n, _ in readings if not has_event(data, n)]
    if not present:
        text = (f"The data hold no GVHD information (they lack {_missing_words(absent)}), so "
                "this part of the paper cannot be recomputed.")
        return Section("gvhd", SECTIONS[4][1], link, text + _see_also(link),
                       pd.DataFrame(rec.rows, columns=RECORD_COLUMNS))
    paragraphs = ["Incidences follow the paper's method (one minus Kaplan–Meier, relapse or "
                  "death before GVHD censored) and are compared with the log-rank test."]
    for name, months in present:
        what = ENDPOINT_WORDS[name][0]
        body = endpoint_paragraph(rec, data, name, group_col, groups, months, alpha)
        paragraphs.append(f"**{capitalise(what)}.** {body}")
    if absent:
        paragraphs.append(f"The data lack {_missing_words(absent)}, so "
                          f"{'it is' if len(absent) == 1 else 'they are'} not reported.")
    return Section("gvhd", SECTIONS[4][1], link, "\n\n".join(paragraphs) + _see_also(link),
                   pd.DataFrame(rec.rows))


def engraftment_infection_section(data: pd.DataFrame, group_col: str, groups: list,
                                  alpha: float, link: str | None = None, *,
                                  disclosure: Disclosure) -> Section:
    """Engraftment times, viral reactivation, complications and infections."""
    rec = Recorder("engraftment_infection", disclosure)
    paragraphs = []
    engraftment = []
    for event, what in (("neutrophil_engraftment", "neutrophil engraftment"),
                        ("platelet_engraftment", "platelet engraftment")):
        if has_event(data, event):
            engraftment.append(engraftment_sentence(rec, data, event, group_col, groups,
                                                    alpha, what))
    if engraftment:
        paragraphs.append(" ".join(engraftment))
    viral = [count_comparison(rec, data, c, group_col, groups, alpha, OUTCOME_WORDS[c])
             for c in VIRUSES if available(data, c)]
    if available(data, "cmv_disease"):
        k = int((data["cmv_disease"] == 1).sum())
        shown = rec.number("cmv_disease", "whole", k, "patients", str(k))
        viral.append(f"CMV disease developed in {shown} patient{'s' if k != 1 else ''}.")
    if viral:
        paragraphs.append(" ".join(viral))
    other = [listed_outcomes(rec, data, COMPLICATIONS, group_col, groups, alpha,
                             OUTCOME_WORDS, "transplant complications"),
             listed_outcomes(rec, data, INFECTIONS, group_col, groups, alpha,
                             INFECTION_WORDS, "infections by site")]
    other = [t for t in other if t]
    if other:
        paragraphs.append(" ".join(other))
    wanted = (["neutrophil_engraftment", "platelet_engraftment"] + VIRUSES + ["cmv_disease"]
              + COMPLICATIONS + INFECTIONS)
    absent = [c for c in wanted if not available(data, c)]
    if not paragraphs:
        paragraphs.append("The data hold no engraftment, infection or complication columns, "
                          "so this part of the paper cannot be recomputed.")
    elif absent:
        paragraphs.append(f"The data lack {_missing_words(absent)}.")
    text = "\n\n".join(paragraphs) + _see_also(link)
    return Section("engraftment_infection", SECTIONS[5][1], link, text,
                   pd.DataFrame(rec.rows, columns=RECORD_COLUMNS))


def results_narrative(data: pd.DataFrame, group_col: str, groups: list,
                      landmark_months: float = 24.0, alpha: float = 0.05,
                      links: dict | None = None, *, disclosure: Disclosure) -> Narrative:
    """The whole computed Results narrative of a cohort.

    Parameters
    ----------
    data : validated cohort (:func:`bridge_hsct.cohort.validate.load_cohort`).
    group_col, groups : the compared groups, in display order (the first is the reference).
    landmark_months : where survival and incidence estimates are read (acute GVHD: day 100).
    alpha : significance level of the words and one minus the confidence level.
    links : section key → chapter label to link to (None: :func:`chapter_links`, i.e. the
        chapters the book builds; a missing key or None value means no link).
    disclosure : the small-cell suppression of every count it prints (the chapter's).

    Returns
    -------
    Narrative
        Sections in the paper's order, each with its text and the numbers it prints.
    """
    links = chapter_links() if links is None else links
    args = (data, group_col, groups)
    sections = [
        baseline_section(*args, alpha, links.get("baseline"), disclosure=disclosure),
        survival_section(*args, landmark_months, alpha, links.get("os_pfs"),
                         disclosure=disclosure),
        grfs_section(*args, landmark_months, alpha, links.get("grfs"), disclosure=disclosure),
        nrm_section(*args, landmark_months, alpha, links.get("nrm"), disclosure=disclosure),
        gvhd_section(*args, landmark_months, alpha, links.get("gvhd"), disclosure=disclosure),
        engraftment_infection_section(*args, alpha, links.get("engraftment_infection"),
                                      disclosure=disclosure),
    ]
    return Narrative(sections, settings_text(landmark_months, alpha), disclosure)

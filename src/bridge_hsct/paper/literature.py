"""Literature context: this cohort's survival beside other published blinatumomab / CAR-T cohorts.

The published figures live in ``data/literature_context.csv``, one row per printed number,
with the study, its citation and DOI, the arm, its size, the outcome, the statistic (a rate
at a time point, or a median), the estimate as printed (and its confidence interval or
standard error when the source prints one), the **time origin** the source counts from, where
in the source the number is, and a short verbatim fragment containing it. They are carried
as published: nothing here recomputes them.

For each outcome and time point of that file, :func:`cohort_estimates` computes the matching
estimate of this cohort, for the whole cohort and by group, with
:func:`bridge_hsct.paper.outcomes.endpoint_summary` (Kaplan–Meier from the transplant, log-log
interval). :func:`forest_plot` draws both side by side.

Intervals the book computes (this cohort's, and the approximate one it derives from a printed
± value) are at the chapter's confidence level, ``1 - alpha``; an interval a source publishes
is that source's 95% confidence interval, shown as published whatever ``alpha`` is
(:data:`PUBLISHED_ALPHA`).

The comparison is loose by construction (different time origins, populations and selection;
intervals missing for some figures); :data:`ORIGIN_WORDS` and the page say so.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pandera.pandas as pa  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from scipy import stats  # noqa: E402

from ..paths import LITERATURE  # noqa: E402
from ..render.disclosure import Disclosure  # noqa: E402
from ..render.figures import (  # noqa: E402
    WHOLE_COLOUR,
    figure_style,
    group_colours,
    save_figure,
)
from ..render.formatting import ci_label, confidence_percent  # noqa: E402
from .outcomes import endpoint_summary  # noqa: E402

LITERATURE_CSV = LITERATURE

#: Codes of the ``time_origin`` column and how the page words them.
ORIGIN_WORDS = {
    "transplant": "from the transplant",
    "start of immunotherapy": "from the start of the immunotherapy",
    "not stated": "origin not stated",
}
#: The same, short, for the column at the right of the forest plot.
ORIGIN_SHORT = {"transplant": "HSCT", "start of immunotherapy": "immunotherapy start",
                "not stated": "not stated"}
#: Published outcome → the book's endpoint it is set beside. RFS in the context studies is
#: relapse or death, the book's PFS definition.
OUTCOME_ENDPOINTS = {"OS": "os", "PFS": "pfs", "RFS": "pfs"}
#: Outcome → the panel of the forest plot it is drawn in.
OUTCOME_PANELS = {"OS": "Overall survival",
                  "PFS": "Progression-free / relapse-free survival",
                  "RFS": "Progression-free / relapse-free survival"}
STATISTICS = ("rate", "median")
COHORT_STUDY = "This cohort"
COMPUTED = "computed by the book"
PUBLISHED = "published"
PUBLISHED_COLOUR = "#000000"
FONT_SIZE = 11
ORIGIN_OFFSET = 142  # points from the right edge of the axes to the "counted from" column

#: Kinds of interval drawn in the plot (``interval`` column of :func:`forest_rows`).
CI_COMPUTED = "confidence interval computed from the data"
CI_PUBLISHED = "confidence interval as published"
CI_FROM_SE = "approximate interval from the published ± value"
CI_NONE = "no interval published"

#: A published confidence interval is the source's own, at 95%, whatever this book's
#: ``alpha``: only the intervals the book computes follow ``alpha``.
PUBLISHED_ALPHA = 0.05


# ---------------------------------------------------------------------------------------------
# The published figures
# ---------------------------------------------------------------------------------------------
def _rate_rows_need(column: str):
    def check(df: pd.DataFrame) -> pd.Series:
        return ~((df["statistic"] == "rate") & df[column].isna())
    return pa.Check(check, error=f"a rate needs `{column}`")


def _estimate_or_not_reached(df: pd.DataFrame) -> pd.Series:
    return df["estimate"].notna() | (
        (df["statistic"] == "median") & (df["printed"].str.lower() == "not reached"))


def _interval_holds_estimate(df: pd.DataFrame) -> pd.Series:
    both = df["ci_lower"].notna() & df["ci_upper"].notna()
    inside = (df["ci_lower"] <= df["estimate"]) & (df["estimate"] <= df["ci_upper"])
    return (df["ci_lower"].isna() == df["ci_upper"].isna()) & (~both | inside)


def _percent_in_range(df: pd.DataFrame) -> pd.Series:
    rate = df["statistic"] == "rate"
    return ~rate | df["estimate"].between(0, 100)


def literature_schema() -> pa.DataFrameSchema:
    """The pandera schema of ``data/literature_context.csv``.

    Rates are percentages at ``timepoint_months``; medians are in months, or empty with
    ``printed`` = ``not reached``. ``ci_lower``/``ci_upper`` come together and bracket the
    estimate; ``se`` is the printed ± value, in percentage points.
    """
    text = pa.Column(str, nullable=False, checks=pa.Check.str_length(min_value=1))
    optional = pa.Column(float, nullable=True, coerce=True)
    return pa.DataFrameSchema(
        {
            "study_id": pa.Column(str, checks=pa.Check.str_matches(r"^[a-z]+\d{4}$")),
            "study": text, "citation": text,
            "doi": pa.Column(str, checks=pa.Check.str_matches(r"^10\.\d{4,}/\S+$")),
            "arm": text, "therapy": text, "population": text,
            "n": pa.Column(int, checks=pa.Check.gt(0), coerce=True),
            "outcome": pa.Column(str, checks=pa.Check.isin(list(OUTCOME_ENDPOINTS))),
            "statistic": pa.Column(str, checks=pa.Check.isin(list(STATISTICS))),
            "timepoint_months": pa.Column(float, nullable=True, coerce=True,
                                          checks=pa.Check.gt(0)),
            "estimate": pa.Column(float, nullable=True, coerce=True, checks=pa.Check.ge(0)),
            "ci_lower": optional, "ci_upper": optional,
            "se": pa.Column(float, nullable=True, coerce=True, checks=pa.Check.gt(0)),
            "printed": text,
            "time_origin": pa.Column(str, checks=pa.Check.isin(list(ORIGIN_WORDS))),
            "time_origin_note": text, "source_locator": text, "quote": text,
        },
        checks=[
            _rate_rows_need("timepoint_months"), _rate_rows_need("estimate"),
            pa.Check(_estimate_or_not_reached,
                     error="an estimate is given unless a median is printed as 'not reached'"),
            pa.Check(_interval_holds_estimate,
                     error="ci_lower and ci_upper come together and bracket the estimate"),
            pa.Check(_percent_in_range, error="a rate is a percentage between 0 and 100"),
            pa.Check(lambda df: df.apply(lambda r: r["printed"] in r["quote"], axis=1),
                     error="the printed value appears in the quoted fragment"),
        ],
        strict=True, unique=["study_id", "arm", "outcome", "statistic", "timepoint_months"],
        name="literature_context",
    )


def load_literature(path: str | Path = LITERATURE_CSV) -> pd.DataFrame:
    """Read and validate the published figures (see :func:`literature_schema`).

    Raises
    ------
    pandera.errors.SchemaErrors
        With every problem of the file.
    """
    table = pd.read_csv(path, dtype={"printed": str, "quote": str})
    return literature_schema().validate(table, lazy=True)


# ---------------------------------------------------------------------------------------------
# This cohort's matching estimates
# ---------------------------------------------------------------------------------------------
def cohort_estimates(data: pd.DataFrame, group_col: str, groups: list,
                     literature: pd.DataFrame, alpha: float = 0.05) -> pd.DataFrame:
    """This cohort's estimates for every outcome, statistic and time point of `literature`.

    Parameters
    ----------
    data : validated cohort.
    group_col, groups : the cohort's groups, in display order.
    literature : the published figures (:func:`load_literature`).
    alpha : one minus the confidence level.

    Returns
    -------
    pandas.DataFrame
        Rows for the whole cohort (arm ``All patients``) and each group, with the columns of
        the literature file that apply (estimates in percent, medians in months, the
        time origin ``transplant``), plus ``source`` = :data:`COMPUTED`, ``endpoint``,
        ``events`` and ``ci_level`` (``95%`` for ``alpha = 0.05``, empty without an
        interval). Outcomes that map to the same endpoint (PFS and RFS) are computed once,
        under the name ``PFS``.
    """
    wanted = (literature.assign(endpoint=literature["outcome"].map(OUTCOME_ENDPOINTS))
              [["endpoint", "statistic", "timepoint_months"]].drop_duplicates())
    rows = []
    for endpoint in dict.fromkeys(wanted["endpoint"]):
        outcome = next(o for o, e in OUTCOME_ENDPOINTS.items() if e == endpoint)
        mine = wanted[wanted["endpoint"] == endpoint]
        for _, want in mine.iterrows():
            is_rate = want["statistic"] == "rate"
            months = float(want["timepoint_months"]) if is_rate else 12.0
            summary = endpoint_summary(data, endpoint, group_col, groups, months, alpha=alpha)
            for _, r in summary.iterrows():
                arm = "All patients" if r["group"] == "whole" else str(r["group"])
                value, lower, upper = ((100 * r["estimate"], 100 * r["lower"],
                                        100 * r["upper"]) if is_rate else
                                       (r["median_months"], r["median_lower"],
                                        r["median_upper"]))
                printed = (f"{value:.1f}%" if is_rate else f"{value:.1f} months"
                           ) if not np.isnan(value) else (
                    "not reached" if not is_rate else "not estimable")
                rows.append({
                    "source": COMPUTED, "study_id": "cohort", "study": COHORT_STUDY,
                    "arm": arm, "group": r["group"], "n": int(r["n"]),
                    "events": int(r["events"]), "outcome": outcome, "endpoint": endpoint,
                    "statistic": want["statistic"],
                    "timepoint_months": months if is_rate else np.nan,
                    "estimate": value, "ci_lower": lower, "ci_upper": upper,
                    "ci_level": "" if np.isnan(lower) and np.isnan(upper)
                    else confidence_percent(alpha), "se": np.nan,
                    "printed": printed, "time_origin": "transplant",
                })
    return pd.DataFrame(rows)


def comparison_table(literature: pd.DataFrame, cohort: pd.DataFrame) -> pd.DataFrame:
    """Published and computed figures in one table, the cohort's rows first.

    Columns: source, study, arm, group (the cohort's group label, ``whole``, or empty for a
    published row), n, outcome, statistic, timepoint_months, estimate, ci_lower, ci_upper,
    ci_level (the interval's confidence level: the book's for its own rows,
    :data:`PUBLISHED_ALPHA`'s for a published interval), se, printed, time_origin, doi,
    source_locator.
    """
    columns = ["source", "study", "arm", "group", "n", "outcome", "statistic",
               "timepoint_months", "estimate", "ci_lower", "ci_upper", "ci_level", "se",
               "printed", "time_origin", "doi", "source_locator"]
    published = literature.assign(
        source=PUBLISHED, group="",
        ci_level=np.where(literature["ci_lower"].notna(),
                          confidence_percent(PUBLISHED_ALPHA), ""))
    computed = cohort.assign(doi="", source_locator="computed from the data")
    return pd.concat([computed[columns], published[columns]], ignore_index=True)


def forest_rows(table: pd.DataFrame, alpha: float = 0.05) -> pd.DataFrame:
    """The rate rows of :func:`comparison_table` as drawn in the forest plot.

    Adds ``panel`` (see :data:`OUTCOME_PANELS`), ``lower``/``upper`` (the drawn interval, in
    percent) and ``interval`` (what that interval is). A published ± value (taken to be a
    standard error) becomes an approximate interval, estimate ± z × SE clipped to 0–100, with
    z the normal quantile of ``1 - alpha / 2``; published figures without an interval get
    none.
    """
    rates = table[table["statistic"] == "rate"].copy()
    z = float(stats.norm.ppf(1 - alpha / 2))
    lower, upper, kinds = [], [], []
    for _, r in rates.iterrows():
        if r["source"] == COMPUTED:
            kinds.append(CI_COMPUTED if not np.isnan(r["ci_lower"]) else CI_NONE)
            lower.append(r["ci_lower"])
            upper.append(r["ci_upper"])
        elif not np.isnan(r["ci_lower"]):
            kinds.append(CI_PUBLISHED)
            lower.append(r["ci_lower"])
            upper.append(r["ci_upper"])
        elif not np.isnan(r["se"]):
            kinds.append(CI_FROM_SE)
            lower.append(max(0.0, r["estimate"] - z * r["se"]))
            upper.append(min(100.0, r["estimate"] + z * r["se"]))
        else:
            kinds.append(CI_NONE)
            lower.append(np.nan)
            upper.append(np.nan)
    rates["lower"], rates["upper"], rates["interval"] = lower, upper, kinds
    rates["panel"] = rates["outcome"].map(OUTCOME_PANELS)
    return rates.reset_index(drop=True)


def _row_label(r, disclosure: Disclosure) -> str:
    outcome = "" if r["outcome"] in ("OS",) or r["source"] == COMPUTED else f", {r['outcome']}"
    return f"{r['study']}: {r['arm']}{outcome} (n = {disclosure.count_text(r['n'])})"


def _value_label(r) -> str:
    if np.isnan(r["estimate"]):
        return "not estimable"
    if r["interval"] in (CI_COMPUTED, CI_PUBLISHED):
        if r["lower"] == r["upper"]:  # Kaplan–Meier before the first event: no spread
            return f"{r['estimate']:.1f} (no event yet)"
        return f"{r['estimate']:.1f} ({r['lower']:.1f}–{r['upper']:.1f})"
    if r["interval"] == CI_FROM_SE:
        return f"{r['estimate']:.1f} ± {r['se']:.1f}"
    return f"{r['estimate']:.1f}"


def forest_plot(rows: pd.DataFrame, groups: list, alpha: float = 0.05, *,
                disclosure: Disclosure) -> plt.Figure:
    """Forest-style plot of the rate rows (:func:`forest_rows`): one panel per outcome, each
    row's size through `disclosure` (the chapter's).

    This cohort's estimates are filled circles (its groups in their book colours, the whole
    cohort in dark grey) with solid confidence intervals; published figures are open black
    diamonds, with a dashed line for an interval derived from a printed ± value and no line
    when the source printed no interval. The estimate (with its interval or ± value) and the
    time origin are written at the right of each row.
    """
    panels = list(dict.fromkeys(rows["panel"]))
    sizes = [int((rows["panel"] == p).sum()) for p in panels]
    height = 1.8 + 0.5 * sum(sizes)
    fig, axes = plt.subplots(len(panels), 1, figsize=(11.5, height),
                             gridspec_kw={"height_ratios": [s + 1 for s in sizes]},
                             squeeze=False, sharex=True)
    colours = group_colours(groups)
    titles = []
    for ax, panel in zip(axes[:, 0], panels, strict=True):
        part = rows[rows["panel"] == panel].reset_index(drop=True)
        ys = np.arange(len(part))[::-1]
        for y, (_, r) in zip(ys, part.iterrows(), strict=True):
            computed = r["source"] == COMPUTED
            colour = (WHOLE_COLOUR if r["arm"] == "All patients" else
                      colours.get(r["group"], WHOLE_COLOUR)) if computed else PUBLISHED_COLOUR
            if not np.isnan(r["lower"]):
                ax.plot([r["lower"], r["upper"]], [y, y], color=colour, lw=1.6,
                        ls="-" if r["interval"] != CI_FROM_SE else (0, (4, 2)))
            if not np.isnan(r["estimate"]):
                ax.plot(r["estimate"], y, marker="o" if computed else "D", ms=8,
                        color=colour, mfc=colour if computed else "white", mew=1.6,
                        clip_on=False, zorder=3)
            columns = ((14, _value_label(r)), (ORIGIN_OFFSET, ORIGIN_SHORT[r["time_origin"]]))
            for offset, words in columns:
                ax.annotate(words, (1, y), xycoords=ax.get_yaxis_transform(),
                            xytext=(offset, 0), textcoords="offset points", va="center",
                            ha="left", fontsize=FONT_SIZE)
        if panel == panels[0]:
            for offset, head in ((14, "Estimate, %"), (ORIGIN_OFFSET, "Counted from")):
                ax.annotate(head, (1, 1), xycoords="axes fraction", xytext=(offset, 4),
                            textcoords="offset points", va="bottom", ha="left", fontsize=FONT_SIZE,
                            fontweight="bold")
        ax.set_yticks(ys, [_row_label(r, disclosure) for _, r in part.iterrows()],
                      fontsize=FONT_SIZE)
        ax.set_ylim(-0.7, len(part) - 0.3)
        months = part["timepoint_months"].dropna().unique()
        when = ", ".join(f"{m:g}" for m in months)
        titles.append((ax, f"{panel} at {when} months"))
        ax.grid(axis="x", color="#dddddd", lw=0.6)
        ax.set_axisbelow(True)
    ax = axes[-1, 0]
    ax.set_xlim(0, 100)
    ax.set_xticks(range(0, 101, 20))
    ax.tick_params(axis="x", labelsize=FONT_SIZE)
    ax.set_xlabel("Alive (and, for PFS/RFS, free of relapse), %", fontsize=FONT_SIZE)
    level = confidence_percent(alpha)
    handles = [
        Line2D([], [], color=WHOLE_COLOUR, marker="o", lw=1.6,
               label=f"This cohort, computed ({ci_label(alpha)})"),
        Line2D([], [], color=PUBLISHED_COLOUR, marker="D", mfc="white", lw=1.6,
               ls=(0, (4, 2)), label=f"Published, approx. {level} interval from ± value"),
        Line2D([], [], color=PUBLISHED_COLOUR, marker="D", mfc="white", lw=0,
               label="Published, no interval printed"),
    ]
    if (rows["interval"] == CI_PUBLISHED).any():
        handles.insert(1, Line2D([], [], color=PUBLISHED_COLOUR, marker="D", mfc="white",
                                 lw=1.6, label=f"Published {ci_label(PUBLISHED_ALPHA)}, "
                                               "as printed"))
    fig.legend(handles=handles, loc="lower center", ncol=2, frameon=False,
               fontsize=FONT_SIZE - 1)
    fig.subplots_adjust(left=0.36, right=0.66, top=1 - 0.45 / height, bottom=1.15 / height,
                        hspace=0.3)
    for ax, title in titles:  # titles start at the figure's left edge, above the row labels
        box = ax.get_position()
        ax.set_title(title, loc="left", x=(0.01 - box.x0) / box.width, fontweight="bold",
                     fontsize=FONT_SIZE + 1)
    return fig


def save_sources(output_dir: str | Path, path: str | Path = LITERATURE_CSV) -> Path:
    """Copy the published figures with their sources into `output_dir` (for download)."""
    target = Path(output_dir) / Path(path).name
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(path, target)
    return target


def save_forest(rows: pd.DataFrame, groups: list, output_dir,
                alpha: float = 0.05, name: str = "literature_forest", *,
                disclosure: Disclosure) -> dict:
    """Draw :func:`forest_plot` (its counts through `disclosure`) in the book's style and
    save it as PNG and SVG in `output_dir`, a folder or a chapter (whose data label the
    files then carry, see :func:`bridge_hsct.render.figures.save_figure`); return the
    paths."""
    with figure_style():
        fig = forest_plot(rows, groups, alpha, disclosure=disclosure)
    try:
        return save_figure(fig, output_dir, name)
    finally:
        plt.close(fig)


# ---------------------------------------------------------------------------------------------
# Words and tables
# ---------------------------------------------------------------------------------------------
def forest_markdown(files: dict, rows: pd.DataFrame, literature: pd.DataFrame,
                    alpha: float = 0.05, anchor: str = "literature-forest") -> str:
    """MyST ``{figure}`` of the saved forest plot with its name, alt text, caption and
    download links (paths relative to the page)."""
    png, svg = Path(files["png"]).as_posix(), Path(files["svg"]).as_posix()
    months = ", ".join(f"{m:g}" for m in rows["timepoint_months"].dropna().unique())
    studies = join_list(list(dict.fromkeys(literature["study"])))
    alt = (f"Forest plot of survival at {months} months: this cohort's estimates, whole and "
           f"by group, beside the published figures of {studies}")
    level = confidence_percent(alpha)
    published = ""
    if (rows["interval"] == CI_PUBLISHED).any():
        published = (f"a solid line is the source's published "
                     f"{confidence_percent(PUBLISHED_ALPHA)} confidence interval, as printed "
                     "whatever the book's level; ")
    caption = (f"**Survival at {months} months, this cohort beside published cohorts.** "
               f"Circles: this cohort, computed by the book from the data (Kaplan–Meier, "
               f"counted from the transplant, {level} log-log confidence interval). Open "
               f"diamonds: figures as published by {studies}, not recomputed; {published}"
               f"a dashed line "
               f"is an approximate {level} interval the book derived from a printed ± value "
               "(taken to be a standard error), and a diamond without a line had no interval "
               "printed. The right-hand column gives each estimate and the time origin it "
               "is counted from.")
    return (f"```{{figure}} {png}\n:name: {anchor}\n:alt: {alt}\n:width: 100%\n\n{caption}\n\n"
            f"Download the plot: {{download}}`PNG <{png}>` · {{download}}`SVG <{svg}>`\n```\n")


def join_list(items: list[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _interval_text(r) -> str:
    if not np.isnan(r["ci_lower"]):
        upper = "NR" if np.isnan(r["ci_upper"]) else f"{r['ci_upper']:.1f}"
        return f"{r['ci_lower']:.1f}–{upper}"
    if not np.isnan(r["se"]):
        return f"± {r['se']:.1f}"
    return "–"


def comparison_display(table: pd.DataFrame, *, disclosure: Disclosure) -> pd.DataFrame:
    """:func:`comparison_table` as strings, one header line per outcome and statistic, for
    :func:`bridge_hsct.render.tables.render_table` (``stub="Cohort"``, ``test_col=None``),
    sizes through `disclosure`.

    Intervals are confidence intervals (NR: limit not reached) or a published ± value.
    """
    rows = []
    order = table.assign(_panel=table["outcome"].map(OUTCOME_PANELS))
    for (panel, statistic), part in order.groupby(["_panel", "statistic"], sort=False):
        when = ", ".join(f"{m:g}" for m in part["timepoint_months"].dropna().unique())
        head = (f"{panel}, rate at {when} months, %" if statistic == "rate"
                else f"{panel}, median, months")
        rows.append([head, "", "", "", "", "", "", 0])
        for _, r in part.iterrows():
            value = r["printed"] if np.isnan(r["estimate"]) else f"{r['estimate']:.1f}"
            rows.append([f"{r['study']}: {r['arm']}", disclosure.count_text(r["n"]),
                         r["outcome"], value, _interval_text(r), ORIGIN_WORDS[r["time_origin"]],
                         r["source"], 1])
    return pd.DataFrame(rows, columns=["Cohort", "n", "Outcome", "Estimate", "Interval",
                                       "Counted", "Source", "indent"])


def comparison_notes(table: pd.DataFrame) -> list[str]:
    """The notes under :func:`comparison_display`: what each kind of interval is, with the
    level of each (the book's for its own rows, the published one for a source's)."""
    mine = table.loc[(table["source"] == COMPUTED) & (table["ci_level"] != ""), "ci_level"]
    level = f"{mine.iloc[0]} " if len(mine) else ""
    notes = [f"Intervals of this cohort: {level}log-log confidence intervals (Kaplan–Meier "
             "from the transplant; NR, limit not reached)."]
    theirs = table.loc[(table["source"] == PUBLISHED) & (table["ci_level"] != ""), "ci_level"]
    published = (f"a published {theirs.iloc[0]} confidence interval, as printed whatever the "
                 "book's level, or " if len(theirs) else "")
    notes.append(f"Intervals of published cohorts: {published}the ± value the source printed.")
    return notes


#: Why a placement beside published cohorts is not a ranking (said once after the panels).
PLACEMENT_CAVEAT = (
    "These placements describe printed numbers; they do not rank the cohorts or the "
    "treatments. The published cohorts are real patients with their own selection, "
    "treatment and follow-up, the estimates here come from the data this book was built on, "
    "and with a few dozen patients per cohort the intervals in the table below overlap "
    "widely.")


def placement_text(rows: pd.DataFrame) -> str:
    """Where this cohort's rate estimates fall relative to the published ones (computed).

    One sentence per panel: the range of this cohort's estimates (whole and by group), the
    range of the published point estimates, and whether the cohort's lie numerically above,
    below, within or across that range; then :data:`PLACEMENT_CAVEAT`, since a position on
    a number line is no comparison of cohorts.
    """
    sentences = []
    for panel, part in rows.groupby("panel", sort=False):
        mine = part[(part["source"] == COMPUTED) & part["estimate"].notna()]
        theirs = part[(part["source"] == PUBLISHED) & part["estimate"].notna()]
        when = ", ".join(f"{m:g}" for m in part["timepoint_months"].dropna().unique())
        if mine.empty or theirs.empty:
            sentences.append(f"{panel} at {when} months cannot be set beside the published "
                             "figures: this cohort has no estimate at that time.")
            continue
        lo, hi = mine["estimate"].min(), mine["estimate"].max()
        plo, phi = theirs["estimate"].min(), theirs["estimate"].max()
        published = f"{plo:.1f}% to {phi:.1f}%"
        if lo > phi:
            where = f"are numerically above each published point estimate ({published})"
        elif hi < plo:
            where = f"are numerically below each published point estimate ({published})"
        elif lo >= plo and hi <= phi:
            where = f"lie within the range of the published point estimates ({published})"
        else:
            where = f"overlap the range of the published point estimates ({published})"
        span = f"{lo:.1f}%" if lo == hi else f"{lo:.1f}% to {hi:.1f}%"
        sentences.append(f"{panel} at {when} months: the estimates computed here ({span}, "
                         f"whole cohort and groups) {where}.")
    if any("computed here" in s for s in sentences):
        sentences.append(PLACEMENT_CAVEAT)
    return " ".join(sentences)


def references_markdown(literature: pd.DataFrame) -> str:
    """The cited studies as a Markdown list, with DOI links."""
    refs = literature.drop_duplicates("study_id")
    return "\n".join(f"- {r['citation']} [doi:{r['doi']}](https://doi.org/{r['doi']})"
                     for _, r in refs.iterrows())

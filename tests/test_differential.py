"""Every survival and incidence number a book publishes, recomputed independently.

The book is built on simulated cohorts unlike the reference one (three arms, hundreds of
patients, heavy censoring, absent and blank optional columns, event statuses left blank;
one with whole-day times and their ties, one with practically distinct times). Then every
row of every ``*_estimates.csv`` download that compares the groups (or the whole cohort) is
recomputed here from the raw file, on the patients whose status for the endpoint is known,
with endpoint definitions written out again in this test and lifelines' estimators:
Kaplan–Meier (survival and 1 − Kaplan–Meier incidence), Aalen–Johansen (on distinct times,
where lifelines needs no tie-breaking jitter) and the multi-group log-rank test.
"""

import numpy as np
import pandas as pd
import pytest
from lifelines import AalenJohansenFitter, KaplanMeierFitter
from lifelines.statistics import multivariate_logrank_test

from bridge_hsct.book.build import Parameters, build
from bridge_hsct.cohort.simulate import ARMS, Arm, simulate_cohort

DAYS_PER_MONTH = 365.25 / 12
NEVER = np.inf


def _day(data: pd.DataFrame, event: str) -> np.ndarray:
    """Day of `event` for those who had it, else never."""
    if event not in data:
        return np.full(len(data), NEVER)
    return np.where(data[event] == 1, data[f"{event}_days"].astype(float), NEVER)


def first_of(data: pd.DataFrame, days: list[np.ndarray]):
    """Time to the first of several events (death at follow-up included), and whether any."""
    end = data["followup_days"].to_numpy(float)
    death = np.where(data["death"] == 1, end, NEVER)
    first = np.minimum.reduce([death, *days])
    return np.minimum(first, end), np.isfinite(first)


def endpoint(data: pd.DataFrame, name: str):
    """(time, cause) of an endpoint from the raw columns: cause 0 censored, 1 the event,
    2 a competing event; the paper's definitions (Methods), written again here."""
    relapse = _day(data, "relapse")
    if name == "os":
        return first_of(data, [])
    if name == "pfs":
        return first_of(data, [relapse])
    if name == "grfs":
        severe = np.where(data["cgvhd_severe"] == 1, _day(data, "cgvhd"), NEVER)
        return first_of(data, [relapse, _day(data, "agvhd_3_4"), severe])
    if name in ("nrm", "relapse"):
        time, any_event = first_of(data, [relapse])
        relapsed_first = np.isfinite(relapse) & (relapse <= time)
        cause = np.where(~any_event, 0, np.where(relapsed_first, 2, 1))
        return time, cause if name == "nrm" else np.select([cause == 1, cause == 2], [2, 1], 0)
    competitors = [] if name.endswith("engraftment") else [relapse]
    stop, competed = first_of(data, competitors)
    mine = _day(data, name)
    first = mine <= stop  # an event on a competitor's day counts as the event
    return (np.where(first, mine, stop),
            np.where(first, 1, np.where(competed, 2, 0)))


#: The events each endpoint is made of (its competing events included): a patient with any
#: of them blank, or had on a blank day, has an unknown status and is left out.
COMPONENTS = {"os": ["death"], "pfs": ["relapse", "death"],
              "grfs": ["relapse", "death", "agvhd_3_4", "cgvhd", "cgvhd_severe"],
              "nrm": ["relapse", "death"], "relapse": ["relapse", "death"],
              "agvhd_2_4": ["agvhd_2_4", "relapse", "death"],
              "agvhd_3_4": ["agvhd_3_4", "relapse", "death"],
              "cgvhd": ["cgvhd", "relapse", "death"],
              "neutrophil_engraftment": ["neutrophil_engraftment", "death"],
              "platelet_engraftment": ["platelet_engraftment", "death"]}


def known(data: pd.DataFrame, name: str) -> np.ndarray:
    """Whether each patient's status for endpoint `name` is known."""
    ok = np.ones(len(data), bool)
    for event in COMPONENTS[name]:
        if event == "cgvhd_severe":
            ok &= (data["cgvhd"] == 0).to_numpy() | (
                (data["cgvhd"] == 1) & data["cgvhd_severe"].notna()).to_numpy()
        elif event == "death":
            ok &= data["death"].notna().to_numpy()
        else:
            ok &= (data[event] == 0).to_numpy() | (
                (data[event] == 1) & data[f"{event}_days"].notna()).to_numpy()
    return ok


def recompute(data: pd.DataFrame, row) -> float:
    data = data[known(data, row["endpoint"])]
    time, cause = endpoint(data, row["endpoint"])
    time, cause = np.asarray(time, float), np.asarray(cause, int)
    if row["group"] != "whole":
        keep = (data[row["by"]] == row["group"]).to_numpy()
        time, cause = time[keep], cause[keep]
    at = row["landmark_months"] * DAYS_PER_MONTH
    if row["method"] == "aalen-johansen":
        fitter = AalenJohansenFitter(calculate_variance=False).fit(time, cause, event_of_interest=1)
        curve = fitter.cumulative_density_.iloc[:, 0]
        return float(curve[curve.index <= at].iloc[-1])
    survival = KaplanMeierFitter().fit(time, cause == 1).survival_function_at_times(at).iloc[0]
    return float(survival if row["method"] == "kaplan-meier" else 1 - survival)


UNKNOWN = {"relapse": 0.04, "death": 0.03, "agvhd_2_4": 0.05, "cgvhd": 0.05,
           "neutrophil_engraftment": 0.03}
EVENTS = ["relapse", "agvhd_2_4", "agvhd_3_4", "cgvhd", "neutrophil_engraftment",
          "platelet_engraftment"]
FOUR_ARMS = (*ARMS, Arm("Chemotherapy", 0.15, relapse_hazard_ratio=1.6,
                        death_hazard_ratio=1.5))


def heavily_censored(data: pd.DataFrame, share: float, seed: int) -> pd.DataFrame:
    """`data` with a `share` of patients lost to follow-up early: their follow-up is cut at
    a random fraction of it, and what happened after the cut is not known to have happened."""
    rng = np.random.default_rng(seed)
    out = data.copy()
    cut = np.where(rng.random(len(out)) < share,
                   np.floor(out["followup_days"] * rng.uniform(0.1, 0.9, len(out))),
                   out["followup_days"])
    cut_short = cut < out["followup_days"]
    for event in EVENTS:
        after = out[f"{event}_days"] > cut
        out.loc[after, event], out.loc[after, f"{event}_days"] = 0, np.nan
    out.loc[out["cgvhd"] == 0, "cgvhd_severe"] = 0
    out.loc[cut_short, "death"] = 0
    out["followup_days"] = cut
    return out


def four_arms_with_a_quiet_pair(seed: int) -> pd.DataFrame:
    """Four arms, heavy censoring, and a group of two patients who had no event at all."""
    data = heavily_censored(simulate_cohort(700, seed, arms=FOUR_ARMS), 0.4, seed)
    quiet = data.index[(data["death"] == 0) & (data["relapse"] == 0)
                       & (data["agvhd_2_4"] == 0) & (data["cgvhd"] == 0)][:2]
    data.loc[quiet, "arm"] = "Quiet pair"
    return data


def in_calendar_dates(data: pd.DataFrame) -> pd.DataFrame:
    """The file a centre recording dates would send: last contact, death and event dates
    from `hsct_date`, no day counts (a blank date: the event did not happen)."""
    day0 = pd.to_datetime(data["hsct_date"])

    def date(days):
        return (day0 + pd.to_timedelta(days, unit="D")).dt.strftime("%Y-%m-%d")

    out = data.drop(columns=["followup_days", "death", *EVENTS,
                             *(f"{e}_days" for e in EVENTS)])
    out["last_contact_date"] = date(data["followup_days"])
    out["death_date"] = date(data["followup_days"]).where(data["death"] == 1)
    for event in EVENTS:
        out[f"{event}_date"] = date(data[f"{event}_days"]).where(data[event] == 1)
    return out


#: name -> (the cohort in days, whether the file given to the book holds calendar dates)
COHORTS = {
    "whole days": (lambda: simulate_cohort(900, 5, unknown_events=UNKNOWN), False),
    "distinct times": (lambda: simulate_cohort(600, 8, whole_days=False,
                                               unknown_events=UNKNOWN), False),
    "four arms in dates": (lambda: four_arms_with_a_quiet_pair(11), True),
}


@pytest.fixture(scope="module", params=list(COHORTS))
def built(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp("differential")
    make, dates = COHORTS[request.param]
    days = make()
    days.to_csv(folder / "in days.csv", index=False)
    path = folder / "simulated.csv"
    (in_calendar_dates(days) if dates else days).to_csv(path, index=False)
    out = folder / "site"
    build(out, Parameters(data_path=str(path), landmark_months=18.0),
          log=lambda *a, **k: None, cache=None)
    estimates = [pd.read_csv(p) for p in sorted((out / "_downloads").rglob("*_estimates.csv"))]
    # Supplementary Figure 6 is on the IPTW analysis set, not the cohort (tested against R
    # in tests/test_weighted_panels.py)
    estimates = [e for e in estimates if "analysis_set" not in e]
    return (request.param, pd.read_csv(folder / "in days.csv"),
            pd.concat(estimates, ignore_index=True), out)


def test_no_page_shows_a_python_repr(built):
    """Three arms leave some parts out (IPTW compares two groups): what is left out says
    so in words, and no page shows the repr of an object instead."""
    pages = sorted(built[3].glob("*.html"))
    assert len(pages) > 10
    for page in pages:
        text = page.read_text(encoding="utf-8")
        assert "IPython.core" not in text and " object at 0x" not in text, page.name


def rows_to_check(estimates: pd.DataFrame, distinct: bool) -> pd.DataFrame:
    """Rows of the group comparisons and the whole cohort with an estimate; Aalen–Johansen
    only on distinct times (lifelines breaks ties by random jitter)."""
    rows = estimates[(estimates["by"] == "arm") & estimates["estimate"].notna()]
    return rows if distinct else rows[rows["method"] != "aalen-johansen"]


def test_every_published_estimate_is_recomputed_independently(built):
    name, data, estimates, _ = built
    rows = rows_to_check(estimates, distinct=name == "distinct times")
    endpoints = set(rows["endpoint"])
    assert {"os", "pfs", "grfs", "nrm", "agvhd_2_4", "cgvhd"} <= endpoints
    assert set(data["arm"]) <= set(rows["group"])  # every arm
    for _, row in rows.iterrows():
        expected = recompute(data, row)
        assert row["estimate"] == pytest.approx(expected, rel=1e-9, abs=1e-12), \
            (row["endpoint"], row["method"], row["group"], row["landmark_months"])


def test_patients_of_unknown_status_are_counted_and_left_out(built):
    """Each row's n is the patients of its group whose status is known, and the number
    left out is given beside it: a blank is never counted as "no event"."""
    name, data, estimates, _ = built
    rows = estimates[estimates["by"] == "arm"]
    assert (rows["unknown"] > 0).any() == ("dates" not in name)
    for _, row in rows.iterrows():
        mine = np.ones(len(data), bool) if row["group"] == "whole" else (
            data["arm"] == row["group"]).to_numpy()
        status = known(data, row["endpoint"])
        assert (row["n"], row["unknown"]) == ((mine & status).sum(), (mine & ~status).sum()), \
            (row["endpoint"], row["group"])


def test_every_published_log_rank_p_is_recomputed_independently(built):
    _, data, estimates, _ = built
    tested = estimates[(estimates["by"] == "arm") & (estimates["test"] == "log-rank test")]
    assert len(tested) > 0
    for (endpoint_name, _), rows in tested.groupby(["endpoint", "landmark_months"]):
        data_known = data[known(data, endpoint_name)]
        time, cause = endpoint(data_known, endpoint_name)
        result = multivariate_logrank_test(time, data_known["arm"], np.asarray(cause) == 1)
        assert rows["p_value"].iloc[0] == pytest.approx(result.p_value, rel=1e-6, abs=1e-300)

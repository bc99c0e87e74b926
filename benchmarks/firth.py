"""Firth-penalised Cox: the package's own fit against firthmodels (PyPI), for issue 12 item 5.

Two measurements, printed as tables:

1. **Agreement** on the synthetic cohort's Table 2 models (grade III–IV aGVHD and chronic
   GVHD): largest absolute differences of the coefficients, standard errors, profile
   penalised-likelihood interval bounds (log scale) and penalised likelihood-ratio P values.
2. **Time** at 1,000, 10,000 and 100,000 simulated patients with the aGVHD model's four
   binary factors (distinct event times, about 15% events, censoring), for the estimate alone
   and for the estimate with profile intervals and likelihood-ratio P values. The package
   computes Wald intervals and P above ``PROFILE_MAX_EVENTS`` events, so the book's own cost
   is also shown.

firthmodels is not a dependency of the project: install it into the virtualenv to run this
(``.venv/bin/pip install firthmodels``; ``numba`` as well to time its compiled backend).

Usage: ``.venv/bin/python benchmarks/firth.py [--sizes 1000 10000 100000] [--no-profile-at
100000]``
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from firthmodels import FirthCoxPH  # noqa: E402

from bridge_hsct.cohort.validate import load_cohort  # noqa: E402
from bridge_hsct.paper.multivariate import COVARIATES, TABLE2_MODELS, model_frame  # noqa: E402
from bridge_hsct.paths import DEFAULT_DATA  # noqa: E402
from bridge_hsct.stats import cox_models  # noqa: E402

ALPHA = 0.05
#: The aGVHD model's factors, their prevalence and log hazard ratio in the simulation.
SIMULATED = {"age_over_40": (0.35, 0.4), "conditioning_tbi": (0.5, 0.3),
             "graft_pb_bm": (0.6, -0.5), "donor_haploidentical": (0.7, 0.6)}


def theirs(frame: pd.DataFrame, covariates: list[str], backend: str,
           profile: bool) -> dict:
    """firthmodels' estimates (and profile intervals and LRT P values when `profile`)."""
    model = FirthCoxPH(backend=backend, max_iter=200)
    model.fit(frame[covariates].to_numpy(float),
              (frame["event"].to_numpy(bool), frame["duration"].to_numpy(float)))
    result = {"coef": model.coef_, "se": model.bse_}
    if profile:
        model.lrt()
        interval = model.conf_int(alpha=ALPHA, method="pl")
        result.update(lower=interval[:, 0], upper=interval[:, 1], p=model.lrt_pvalues_)
    return result


def ours(frame: pd.DataFrame, covariates: list[str]) -> dict:
    """The package's estimates, intervals and P values (log scale)."""
    table = cox_models.firth_cox(frame, covariates, ALPHA).table
    return {"coef": table["coef"].to_numpy(), "se": table["se"].to_numpy(),
            "lower": np.log(table["lower"].to_numpy()),
            "upper": np.log(table["upper"].to_numpy()), "p": table["p_value"].to_numpy()}


def agreement(backend: str) -> pd.DataFrame:
    """Largest absolute differences, ours minus firthmodels, per Table 2 model."""
    data = load_cohort(DEFAULT_DATA)
    rows = []
    for outcome, wanted in TABLE2_MODELS.items():
        covariates = [c for c in wanted if COVARIATES[c].source in data]
        frame = model_frame(data, outcome, covariates)
        a, b = ours(frame, covariates), theirs(frame, covariates, backend, profile=True)
        rows.append({"model": outcome, "n": len(frame), "events": int(frame["event"].sum()),
                     **{f"|Δ {k}|": float(np.max(np.abs(a[k] - b[k])))
                        for k in ("coef", "se", "lower", "upper", "p")}})
    return pd.DataFrame(rows)


def simulate(n: int, seed: int = 12) -> pd.DataFrame:
    """`n` patients with the aGVHD model's factors, exponential event and censoring times."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({name: (rng.random(n) < share).astype(float)
                          for name, (share, _) in SIMULATED.items()})
    log_hazard = sum(effect * frame[name] for name, (_, effect) in SIMULATED.items())
    event_time = rng.exponential(8000 * np.exp(-log_hazard))
    censor_time = rng.uniform(30, 1500, n)
    frame["duration"] = np.minimum(event_time, censor_time)
    frame["event"] = (event_time <= censor_time).astype(float)
    return frame


def seconds(function, *args) -> float:
    """Wall time of one call."""
    start = time.perf_counter()
    function(*args)
    return time.perf_counter() - start


def timings(sizes: list[int], backends: list[str], profile_limit: int) -> pd.DataFrame:
    """Wall time of each way of fitting, per cohort size."""
    covariates = list(SIMULATED)
    rows = []
    for n in sizes:
        frame = simulate(n)
        row = {"patients": n, "events": int(frame["event"].sum())}
        for backend in backends:  # the first call of a numba backend compiles: warm it up
            theirs(frame.head(200), covariates, backend, profile=True)
            row[f"firthmodels {backend}: fit"] = seconds(theirs, frame, covariates,
                                                         backend, False)
            if n <= profile_limit:
                row[f"firthmodels {backend}: fit + profile CI + LRT"] = seconds(
                    theirs, frame, covariates, backend, True)
        row["ours: as the book runs it"] = seconds(ours, frame, covariates)
        if n <= profile_limit:
            limit = cox_models.PROFILE_MAX_EVENTS
            cox_models.PROFILE_MAX_EVENTS = n  # profile whatever the number of events
            row["ours: fit + profile CI + LRT"] = seconds(ours, frame, covariates)
            cox_models.PROFILE_MAX_EVENTS = limit
        rows.append(row)
    table = pd.DataFrame(rows).set_index("patients").T
    return table.map(lambda v: f"{v:,.0f}" if float(v).is_integer() else f"{v:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000, 100_000])
    parser.add_argument("--profile-limit", type=int, default=100_000,
                        help="largest cohort whose profile intervals are timed")
    args = parser.parse_args()
    backends = ["numpy"] + (["numba"] if importlib.util.find_spec("numba") else [])
    pd.set_option("display.width", 140)
    pd.set_option("display.float_format", "{:.2g}".format)
    print("Agreement on the synthetic cohort's Table 2 models (ours − firthmodels, "
          "log hazard ratios; P values):")
    print(agreement("numpy").to_string(index=False))
    print("\nWall time (s), simulated patients with 4 binary factors:")
    print(timings(args.sizes, backends, args.profile_limit).to_string())


if __name__ == "__main__":
    main()

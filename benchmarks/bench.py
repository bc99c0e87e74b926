"""Wall time and peak memory of each build stage (prints figures; not a test).

    make bench                      # default cohort, 1,000 / 10,000 / 100,000 patients
    .venv/bin/python benchmarks/bench.py --sizes 1000

Targets (2-core machine): default cohort full build <= 20 s and <= 0.6x Jupyter Book's own
`execute_notebooks: force` build; nothing-changed rebuild <= 3 s; 100,000 patients <= 90 s
with peak memory <= 3 GB.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
sys.path.insert(0, str(ROOT / "src"))

from bridge_hsct.book.build import DEFAULT_DATA, chapters  # noqa: E402


def resample(n: int, seed: int = 20250403) -> pd.DataFrame:
    """`n` patients drawn with replacement from the synthetic cohort, with new ids."""
    cohort = pd.read_csv(DEFAULT_DATA, dtype=str)
    rows = np.random.default_rng(seed).integers(0, len(cohort), n)
    sample = cohort.iloc[rows].reset_index(drop=True)
    sample["patient_id"] = [f"R{i:06d}" for i in range(n)]
    return sample


def run(command: list[str], **kwargs) -> tuple[float, float]:
    """Wall seconds and peak resident memory (GB, largest single process) of a command."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, **kwargs)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        sys.exit(f"failed: {' '.join(command)}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    peak = max(before, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    return wall, peak / 1024**2


def build(data: Path, out: Path, cache: Path | None) -> tuple[float, float]:
    env = dict(os.environ)
    code = ("import sys; from bridge_hsct.book.build import build, Parameters; "
            f"build({str(out)!r}, Parameters(data_path={str(data)!r}), "
            f"cache={str(cache) if cache else None!r})")
    return run([PYTHON, "-c", code], env=env)


def jupyter_book_force(work: Path) -> float:
    """The same chapters built by Jupyter Book executing them itself (its own cache off)."""
    from bridge_hsct.book.build import _stage_sources

    src = _stage_sources(work, str(DEFAULT_DATA))
    for name in chapters():
        # the default parameters, with the data path made absolute for the staged folder
        text = (ROOT / "notebooks" / f"{name}.md").read_text(encoding="utf-8")
        text = text.replace('data_path = "../data/synthetic_cohort.csv"',
                            f'data_path = "{DEFAULT_DATA}"')
        (src / f"{name}.md").write_text(text, encoding="utf-8")
    config = yaml.safe_load((src / "_config.yml").read_text())
    config["execute"] = {"execute_notebooks": "force", "timeout": 600, "allow_errors": False}
    (src / "_config.yml").write_text(yaml.safe_dump(config))
    # notebooks read the default cohort through their default parameters
    wall, _ = run([str(Path(PYTHON).parent / "jupyter-book"), "build", str(src),
                   "--path-output", str(work), "--config", str(src / "_config.yml"),
                   "--toc", str(src / "_toc.yml")])
    return wall


def stages(site: Path) -> str:
    """The build's own per-stage timings and peaks, from the site's build.json."""
    recorded = json.loads((site / "build.json").read_text()).get("stages", {})
    return "  ".join(f"{name} {v['seconds']:.1f} s / {v['peak_gb']:.2f} GB"
                     for name, v in recorded.items())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[1000, 10000, 100000])
    parser.add_argument("--no-jupyter-book", action="store_true",
                        help="skip the Jupyter Book force-build comparison")
    args = parser.parse_args()
    results = {}
    print(f"{os.cpu_count()} cores; wall time and peak resident memory "
          "(largest single process; stages: validate / execute / render)")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        wall, peak = build(DEFAULT_DATA, tmp / "site", tmp / "cache")
        results["default full build"] = (wall, peak)
        print(f"default cohort, full build:          {wall:6.1f} s  peak {peak:.2f} GB"
              f"  [{stages(tmp / 'site')}]")
        wall, peak = build(DEFAULT_DATA, tmp / "site", tmp / "cache")
        results["nothing changed"] = (wall, peak)
        print(f"default cohort, nothing changed:     {wall:6.1f} s")
        shutil.rmtree(tmp / "site")
        wall, peak = build(DEFAULT_DATA, tmp / "site", tmp / "cache")
        results["re-render from cache"] = (wall, peak)
        print(f"default cohort, re-render (cached):  {wall:6.1f} s")
        if not args.no_jupyter_book:
            force = jupyter_book_force(tmp / "jb")
            results["jupyter-book force"] = (force, math.nan)
            ratio = results["default full build"][0] / force
            print(f"Jupyter Book execute_notebooks=force: {force:5.1f} s  "
                  f"(ours: {ratio:.2f}x)")
        for n in args.sizes:
            data = tmp / f"resampled_{n}.csv"
            resample(n).to_csv(data, index=False)
            wall, peak = build(data, tmp / f"site_{n}", None)
            results[f"{n} patients"] = (wall, peak)
            print(f"{n:>7,} patients, full build:       {wall:6.1f} s  peak {peak:.2f} GB"
                  f"  [{stages(tmp / f'site_{n}')}]")
            shutil.rmtree(tmp / f"site_{n}")
    print(json.dumps({k: {"seconds": round(v[0], 1), "peak_gb": round(v[1], 2)}
                      for k, v in results.items()}, indent=1))


if __name__ == "__main__":
    main()

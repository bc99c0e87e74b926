"""Wall time and peak memory of each build stage (prints figures; not a test).

    make bench                      # default cohort; simulated 1,000 / 10,000 / 100,000
    .venv/bin/python benchmarks/bench.py --sizes 1000000 --no-jupyter-book

Each build runs in a fresh process from an empty cache. Simulated cohorts come from
:func:`bridge_hsct.cohort.simulate.simulate_cohort` (seeded: three arms, censored follow-up
in whole days, thousands of distinct times).

Targets (issue 12, 2-core machine): default cohort full build <= 15 s; 100,000 simulated
patients <= 60 s with peak memory <= 1 GB; nothing-changed rebuild <= 3 s.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
sys.path.insert(0, str(ROOT / "src"))

from bridge_hsct.cohort.simulate import simulate_cohort  # noqa: E402
from bridge_hsct.paths import DEFAULT_DATA, NOTEBOOKS, chapters  # noqa: E402

#: A chapter's line in the build's log: "[3/12] os_pfs: executed in 4.2 s".
CHAPTER_LINE = re.compile(r"\] (\w+): executed in ([\d.]+) s")


@dataclass
class Run:
    """Wall and CPU seconds and peak resident memory (GB) of one command, and what it
    printed. CPU seconds (of every process of the command) vary less than wall time on a
    machine that is doing other work too."""

    seconds: float
    cpu_seconds: float
    peak_gb: float
    output: str


def run(command: list[str]) -> Run:
    """Run `command`; its peak is that of its largest process, itself or a descendant
    (``wait4`` gives the child's own usage, not that of every earlier child)."""
    t0 = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - t0
    process.stdout.close()
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"failed: {' '.join(command)}\n{output[-3000:]}")
    return Run(seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024**2, output)


def build(data: Path, out: Path, cache: Path | None) -> Run:
    """The book built from `data` into `out` by a new Python process."""
    code = ("from bridge_hsct.book.build import build, Parameters; "
            f"build({str(out)!r}, Parameters(data_path={str(data)!r}), "
            f"cache={str(cache) if cache else None!r})")
    return run([PYTHON, "-c", code])


def jupyter_book_force(work: Path) -> float:
    """Seconds for the same chapters built by Jupyter Book executing them itself."""
    from bridge_hsct.book.build import _stage_sources

    src = _stage_sources(work, str(DEFAULT_DATA))
    for name in chapters():
        # the default parameters, with the data path made absolute for the staged folder
        text = (NOTEBOOKS / f"{name}.md").read_text(encoding="utf-8")
        text = text.replace('data_path = "../data/synthetic_cohort.csv"',
                            f'data_path = "{DEFAULT_DATA}"')
        (src / f"{name}.md").write_text(text, encoding="utf-8")
    config = yaml.safe_load((src / "_config.yml").read_text())
    config["execute"] = {"execute_notebooks": "force", "timeout": 1200, "allow_errors": False}
    (src / "_config.yml").write_text(yaml.safe_dump(config))
    return run([str(Path(PYTHON).parent / "jupyter-book"), "build", str(src),
                "--path-output", str(work), "--config", str(src / "_config.yml"),
                "--toc", str(src / "_toc.yml")]).seconds


def stages(site: Path) -> str:
    """The build's own per-stage seconds and peaks, from the site's build.json."""
    recorded = json.loads((site / "build.json").read_text()).get("stages", {})
    return " / ".join(f"{name} {v['seconds']:.1f} s {v['peak_gb']:.2f} GB"
                      for name, v in recorded.items())


def slowest_chapters(output: str, count: int = 4) -> str:
    """The `count` slowest chapters of a build's log, with their seconds."""
    times = sorted(((float(s), name) for name, s in CHAPTER_LINE.findall(output)),
                   reverse=True)
    return ", ".join(f"{name} {s:.1f}" for s, name in times[:count])


def report(label: str, done: Run, site: Path | None = None) -> dict:
    """Print one line (and the build's stages and slowest chapters); its figures."""
    print(f"{label:<38} {done.seconds:7.1f} s  (CPU {done.cpu_seconds:6.1f} s)  "
          f"peak {done.peak_gb:5.2f} GB", flush=True)
    if site is not None:
        print(f"{'':<6}stages: {stages(site)}\n{'':<6}slowest chapters (s): "
              f"{slowest_chapters(done.output)}", flush=True)
    return {"seconds": round(done.seconds, 1), "cpu_seconds": round(done.cpu_seconds, 1),
            "peak_gb": round(done.peak_gb, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[1000, 10000, 100000],
                        help="numbers of simulated patients (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=20250403,
                        help="seed of the simulated cohorts")
    parser.add_argument("--no-default", action="store_true",
                        help="skip the builds of the default cohort")
    parser.add_argument("--no-jupyter-book", action="store_true",
                        help="skip the Jupyter Book force-build comparison")
    args = parser.parse_args()
    results = {}
    print(f"{os.cpu_count()} cores; wall time, CPU time of all processes, peak resident "
          "memory of the largest process; stages: validate / execute / render", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if not args.no_default:
            site, cache = tmp / "site", tmp / "cache"
            results["default, full build"] = report(
                "default cohort, full build", build(DEFAULT_DATA, site, cache), site)
            results["default, nothing changed"] = report(
                "default cohort, nothing changed", build(DEFAULT_DATA, site, cache))
            shutil.rmtree(site)
            results["default, re-render from cache"] = report(
                "default cohort, re-render (cached)", build(DEFAULT_DATA, site, cache))
        if not args.no_jupyter_book:
            force = jupyter_book_force(tmp / "jb")
            results["jupyter-book force"] = {"seconds": round(force, 1)}
            print(f"{'Jupyter Book execute_notebooks=force':<38} {force:7.1f} s", flush=True)
        for n in args.sizes:
            data = tmp / f"simulated_{n}.csv"
            simulate_cohort(n, seed=args.seed).to_csv(data, index=False)
            site = tmp / f"site_{n}"
            results[f"{n} simulated"] = report(f"{n:>9,} simulated patients, full build",
                                               build(data, site, None), site)
            shutil.rmtree(site)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()

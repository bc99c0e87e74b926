"""The baseline tests against R, as the judge, on random samples nobody designed.

Two to four groups of 3 to 60 patients; continuous values with and without ties, categories
with two to four levels, some of them empty in a group. R computes each P value its own way:
``wilcox.test`` (exact, or the normal approximation with continuity correction, as the
Methods page says the book chooses), ``kruskal.test``, ``fisher.test``,
``chisq.test(correct = FALSE)`` and, for the linear-by-linear test, Mantel's
M² = (N − 1) r² from ``cor`` of the row and column scores. Skipped where R is not installed.
"""

import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest

from bridge_hsct.stats import group_tests

RSCRIPT = shutil.which("Rscript")
pytestmark = pytest.mark.skipif(RSCRIPT is None, reason="R reference tests skipped: Rscript "
                                "not found (apt-get install r-base-core)")

R_SCRIPT = r"""
args <- commandArgs(TRUE)
d <- read.csv(file.path(args[1], "cases.csv"), stringsAsFactors = FALSE)
p <- sapply(split(d, d$case), function(x) {
  kind <- x$kind[1]
  if (kind == "wilcox_exact" || kind == "wilcox_normal") {
    g <- unique(x$group)
    wilcox.test(x$number[x$group == g[1]], x$number[x$group == g[2]],
                exact = kind == "wilcox_exact", correct = TRUE)$p.value
  } else if (kind == "kruskal") {
    kruskal.test(x$number, factor(x$group))$p.value
  } else if (kind == "fisher") {
    fisher.test(table(x$level, x$group))$p.value
  } else if (kind == "chisq") {
    suppressWarnings(chisq.test(table(x$level, x$group), correct = FALSE)$p.value)
  } else {  # linear-by-linear: scores 1..r of the levels and 1..2 of the groups
    m2 <- (nrow(x) - 1) * cor(x$number, as.numeric(factor(x$group)))^2
    pchisq(m2, 1, lower.tail = FALSE)
  }
})
write.csv(data.frame(case = as.integer(names(p)), p = p), file.path(args[1], "p.csv"),
          row.names = FALSE)
"""

LEVELS = ["a", "b", "c", "d"]


def random_case(seed: int):
    """(values, groups, how the book compares them, R's kind, levels or None)."""
    rng = np.random.default_rng(seed)
    k = 2 if seed % 3 else int(rng.integers(3, 5))
    sizes = rng.integers(3, 61, size=k)
    if seed % 5 == 0:
        sizes[0] = int(rng.integers(3, 9))  # a small group: the exact test's territory
    groups = pd.Series(np.repeat([f"g{i}" for i in range(k)], sizes))
    shape = seed % 4
    if shape < 2:  # continuous: ties (whole numbers) or none
        raw = rng.normal(50, 15, size=groups.size) + rng.normal(0, 5) * (groups == "g0")
        values = pd.Series(np.round(raw) if shape == 0 else raw)
        if k > 2:
            return values, groups, "numbers", "kruskal", None
        exact = group_tests.mann_whitney_is_exact(values[groups == "g0"], values[groups == "g1"])
        return values, groups, "numbers", "wilcox_exact" if exact else "wilcox_normal", None
    r = 2 if shape == 2 else int(rng.integers(3, 5))
    levels = LEVELS[:r]
    values = pd.Series(rng.choice(levels, size=groups.size, p=rng.dirichlet(np.ones(r))))
    if shape == 3 and k == 2 and seed % 2:
        return values, groups, "ordered", "lbl", levels
    return values, groups, "categories", "fisher" if r == 2 and k == 2 else "chisq", levels


CASES = [c for c in (random_case(seed) for seed in range(1, 41))
         if c[0].nunique() > 1 and (c[4] is None or c[0].nunique() == len(c[4]))]


@pytest.fixture(scope="module")
def r_p_values(tmp_path_factory) -> dict[int, float]:
    folder = tmp_path_factory.mktemp("group_tests_r")
    rows = []
    for case, (values, groups, _, kind, levels) in enumerate(CASES):
        numeric = levels is None
        number = values.map({lv: i + 1 for i, lv in enumerate(levels)}) if kind == "lbl" \
            else values if numeric else np.nan
        rows.append(pd.DataFrame({"case": case, "kind": kind, "number": number,
                                  "level": "" if numeric else values, "group": groups}))
    pd.concat(rows).to_csv(folder / "cases.csv", index=False)
    (folder / "reference.R").write_text(R_SCRIPT)
    subprocess.run([RSCRIPT, str(folder / "reference.R"), str(folder)], check=True,
                   capture_output=True)
    result = pd.read_csv(folder / "p.csv")
    return dict(zip(result["case"], result["p"], strict=True))


def test_the_cases_cover_every_test():
    kinds = {c[3] for c in CASES}
    assert kinds == {"wilcox_exact", "wilcox_normal", "kruskal", "fisher", "chisq", "lbl"}


@pytest.mark.parametrize("case", range(len(CASES)))
def test_p_value_as_r_gives_it(case, r_p_values):
    values, groups, how, kind, levels = CASES[case]
    if how == "numbers":
        result = group_tests.compare_numbers(values, groups)
    else:
        result = group_tests.compare_categories(values, groups, levels,
                                                ordered=how == "ordered")
    expected_test = {"wilcox_exact": "MANN_WHITNEY", "wilcox_normal": "MANN_WHITNEY",
                     "kruskal": "KRUSKAL", "fisher": "FISHER", "chisq": "CHI2",
                     "lbl": "LINEAR_BY_LINEAR"}[kind]
    assert result.test == getattr(group_tests, expected_test)
    assert result.p_value == pytest.approx(r_p_values[case], rel=1e-6, abs=1e-12)

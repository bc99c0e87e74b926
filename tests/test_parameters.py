"""Parameters are the one source of the book's defaults: the command line, the Makefile,
every notebook's parameters cell and ``open_chapter`` agree with them."""

import ast
import inspect
import shlex
import subprocess
from dataclasses import fields
from pathlib import Path

import jupytext
import matplotlib.pyplot as plt
import pytest

from bridge_hsct.book import cli
from bridge_hsct.book.chapter import open_chapter
from bridge_hsct.book.parameters import (
    NOTEBOOK_PARAMETERS,
    POOLED_NOTEBOOK_PARAMETERS,
    ParameterError,
    Parameters,
)
from bridge_hsct.paths import DEFAULT_DATA, NOTEBOOKS, ROOT

NOTEBOOK_FILES = sorted(NOTEBOOKS.glob("*.md"))
POOLED_FILES = sorted((NOTEBOOKS / "pooled").glob("*.md"))


def parameters_cell(path: Path) -> ast.Module:
    """The code of the cell tagged ``parameters`` of a MyST notebook."""
    notebook = jupytext.reads(path.read_text(encoding="utf-8"), fmt="md:myst")
    [cell] = [c for c in notebook.cells if "parameters" in c.metadata.get("tags", [])]
    return ast.parse(cell.source)


def assigned(code: ast.Module) -> dict:
    """Name to value of each ``name = literal`` statement, in order."""
    values = {}
    for statement in code.body:
        assert isinstance(statement, ast.Assign), ast.unparse(statement)
        [target] = statement.targets
        values[target.id] = ast.literal_eval(statement.value)
    return values


@pytest.mark.parametrize("path", NOTEBOOK_FILES, ids=lambda p: p.stem)
def test_every_notebook_takes_the_parameters_with_their_defaults(path):
    cell = assigned(parameters_cell(path))
    assert tuple(cell) == NOTEBOOK_PARAMETERS
    defaults = Parameters()
    for name, value in cell.items():
        if name == "data_path":  # relative to the notebook: the bundled cohort
            assert (NOTEBOOKS / value).resolve() == DEFAULT_DATA
        elif name == "output_dir":
            assert value == f"outputs/{path.stem}"
        else:
            assert value == getattr(defaults, name), name
            assert type(value) is type(getattr(defaults, name)), name


@pytest.mark.parametrize("path", POOLED_FILES, ids=lambda p: p.stem)
def test_every_pooled_notebook_takes_the_pooled_parameters_with_their_defaults(path):
    """The pooled book's chapters read bundles, not a cohort file: their own parameters,
    with the defaults of :class:`Parameters`, and each reaches ``open_consortium``."""
    cell = assigned(parameters_cell(path))
    assert tuple(cell) == POOLED_NOTEBOOK_PARAMETERS
    defaults = Parameters()
    for name, value in cell.items():
        if name == "output_dir":
            assert value == f"outputs/{path.stem}"
        else:
            assert value == getattr(defaults, name), name
    [call] = [n for n in ast.walk(ast.parse("\n".join(
        c.source for c in jupytext.reads(path.read_text(encoding="utf-8"), fmt="md:myst").cells
        if c.cell_type == "code"))) if isinstance(n, ast.Call)
        and getattr(n.func, "id", None) == "open_consortium"]
    names = [a.id for a in call.args] + [k.value.id for k in call.keywords]
    assert sorted(names) == sorted(POOLED_NOTEBOOK_PARAMETERS)
    assert all(k.arg == k.value.id for k in call.keywords)


def test_the_pooled_chapters_are_those_of_their_table_of_contents():
    from bridge_hsct.book.pooled_build import pooled_chapters
    assert sorted(pooled_chapters()) == [p.stem for p in POOLED_FILES]


def open_chapter_call(path: Path) -> ast.Call | None:
    tree = ast.parse("\n".join(
        c.source for c in jupytext.reads(path.read_text(encoding="utf-8"), fmt="md:myst").cells
        if c.cell_type == "code" and not c.source.startswith("%")))
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)
             and getattr(n.func, "id", None) == "open_chapter"]
    assert len(calls) <= 1
    return calls[0] if calls else None


@pytest.mark.parametrize("path", NOTEBOOK_FILES, ids=lambda p: p.stem)
def test_every_chapter_opens_with_all_its_parameters(path):
    """Each parameter reaches the chapter under its own name: none is dropped on the way."""
    call = open_chapter_call(path)
    if call is None:
        # the pages that compute nothing from a cohort
        assert path.stem in {"calibration", "methods"}, "every other chapter opens one"
        return
    names = [a.id for a in call.args] + [k.value.id for k in call.keywords]
    bound = inspect.signature(open_chapter).bind(*names[:len(call.args)],
                                                 **{k.arg: k.value.id for k in call.keywords})
    assert all(key == value for key, value in bound.arguments.items()), bound.arguments
    assert set(bound.arguments) == set(NOTEBOOK_PARAMETERS)


def test_open_chapter_defaults_are_the_parameters_defaults():
    signature = inspect.signature(open_chapter).parameters
    defaults = Parameters()
    for spec in fields(Parameters):
        if spec.name in signature and spec.name != "data_path":
            assert signature[spec.name].default == getattr(defaults, spec.name), spec.name


def test_the_command_line_has_one_option_per_parameter_with_its_default():
    args = cli._parser().parse_args(["build"])
    assert cli.parameters_of(args) == Parameters()
    given = cli._parser().parse_args(shlex.split(
        "build --data x.csv --group-col centre --group-order B A --landmark-months 12 "
        "--alpha 0.1 --cutoff-date 2024-03-31 --min-cell-count 5"))
    assert cli.parameters_of(given) == Parameters(
        "x.csv", "centre", ["B", "A"], 12.0, 0.1, "2024-03-31", 5)


def make_build_command(*variables: str) -> Parameters:
    """The Parameters of the command ``make book`` would run with `variables`."""
    run = subprocess.run(["make", "-n", "--no-print-directory", "book", *variables],
                         cwd=ROOT, capture_output=True, text=True, check=True)
    [command] = [line for line in run.stdout.splitlines() if "bridge_hsct build" in line]
    argv = shlex.split(command.split("-m bridge_hsct ", 1)[1])
    return cli.parameters_of(cli._parser().parse_args(argv))


def test_the_makefile_passes_every_parameter():
    assert make_build_command() == Parameters()
    variables = {spec.metadata["make"] for spec in fields(Parameters)}
    assert len(variables) == len(fields(Parameters))
    given = make_build_command("DATA=x.csv", "GROUP_COL=centre", "GROUP_ORDER=CAR-T 19, B",
                               "LANDMARK=12", "ALPHA=0.1", "CUTOFF=2024-03-31", "MIN_CELL=5",
                               "GROUP_LABEL=donor type", "TITLE=Centre X: outcomes",
                               "BUNDLES=a.zip b.zip")
    assert given == Parameters("x.csv", "centre", ["CAR-T 19", "B"], 12.0, 0.1, "2024-03-31",
                               5, "donor type", "Centre X: outcomes", ["a.zip", "b.zip"])
    assert {f.name for f in fields(given) if getattr(given, f.name) == getattr(
        Parameters(), f.name)} == set(), "a field the Makefile does not pass"


@pytest.mark.parametrize("argv, order", [
    (["--group-order", "CAR-T 19", "Blina"], ["CAR-T 19", "Blina"]),
    (["--group-order", "CAR-T 19,Blina , Chemo"], ["CAR-T 19", "Blina", "Chemo"]),
    (["--group-order", "B"], ["B"]),
])
def test_group_labels_with_spaces_are_given_quoted_or_comma_separated(argv, order):
    args = cli._parser().parse_args(["build", *argv])
    assert cli.parameters_of(args).group_order == order


@pytest.mark.parametrize("label", [None, "donor type"])
def test_the_group_noun_is_the_label_or_follows_the_data(label, tmp_path):
    from bridge_hsct.book.chapter import group_noun
    theirs = tmp_path / "their.csv"
    theirs.write_text("patient_id,arm\n1,A\n")
    assert group_noun(label, DEFAULT_DATA) == (label or "bridging therapy")
    assert group_noun(label, theirs) == (label or "group")


@pytest.mark.parametrize("values, words", [
    ({"alpha": 1.5}, "parameter alpha (--alpha, ALPHA): must be between 0 and 1"),
    ({"alpha": 0}, "must be between 0 and 1"),
    ({"landmark_months": 0}, "parameter landmark_months (--landmark-months, LANDMARK): "
                             "must be more than 0"),
    ({"landmark_months": float("nan")}, "not a finite number"),
    ({"min_cell_count": -1}, "must be 0 (off) or more"),
    ({"min_cell_count": 2.5}, "must be a whole number"),
    ({"cutoff_date": "2024-13-45"}, "not a calendar date"),
    ({"group_col": " "}, "must name a column"),
    ({"group_label": "two\nlines"}, "parameter group_label (--group-label, GROUP_LABEL): "
                                     "must be one line"),
    ({"title": " "}, "must be some text"),
])
def test_a_value_that_cannot_work_is_refused_in_one_line(values, words):
    with pytest.raises(ParameterError) as refused:
        Parameters(**values)
    assert words in str(refused.value) and "\n" not in str(refused.value)


def test_a_notebook_run_alone_refuses_a_bad_parameter(tmp_path):
    with pytest.raises(ParameterError, match="alpha"):
        open_chapter(str(DEFAULT_DATA), output_dir=tmp_path, alpha=5)
    assert not list(tmp_path.iterdir()), "refused before any output"


def test_the_chapter_carries_every_setting(tmp_path):
    before = dict(plt.rcParams)
    chapter = open_chapter(str(DEFAULT_DATA), "arm", ["CAR-T", "Blinatumomab"],
                           tmp_path, landmark_months=12, alpha=0.1, min_cell_count=5)
    assert dict(plt.rcParams) == before, "figures hold the book's style themselves"
    assert (chapter.groups, chapter.alpha, chapter.landmark_months) == \
        (["CAR-T", "Blinatumomab"], 0.1, 12)
    assert chapter.min_cell_count == 5 and chapter.disclosure.count_text(3) == "< 5"
    assert chapter.output_dir == tmp_path and len(chapter.data) == 36

"""The package's layers, as its folders show them: each imports only from layers below it.

book → paper → render → cohort → stats; ``paths`` (where the project's files are) sits under
all of them. Statistics print nothing: they import no plotting, display or table library.
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "bridge_hsct"
LAYERS = ["stats", "cohort", "render", "paper", "book"]
FOUNDATION = {"__init__", "__version__", "paths"}  # importable from every layer
ROOT_MODULES = {"__init__", "__main__", "paths"}
PRINTING = ("matplotlib", "seaborn", "IPython", "great_tables")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: Path) -> set[str]:
    """Absolute names of the modules `path` imports (relative imports resolved)."""
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *(node.module.split(".") if node.module else [])])
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


def layer(name: str) -> str | None:
    """The layer of a module of the package (None for the foundation and for others)."""
    parts = name.split(".")
    if parts[0] != "bridge_hsct" or len(parts) < 2 or parts[1] in FOUNDATION:
        return None
    return parts[1] if parts[1] in LAYERS else "?"  # "?": a module outside the layers


MODULES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: module_name(p))
def test_a_module_imports_nothing_from_a_layer_above(path):
    mine = layer(module_name(path))
    if mine not in LAYERS:  # the foundation, and __main__ on top of everything
        return
    for name in imported(path):
        theirs = layer(name)
        if theirs is not None:
            assert theirs in LAYERS, f"{name} is in no layer"
            assert LAYERS.index(theirs) <= LAYERS.index(mine), \
                f"{module_name(path)} ({mine}) imports {name} ({theirs})"


def test_every_module_is_in_a_layer():
    loose = [module_name(p) for p in MODULES
             if p.parent == PACKAGE and p.stem not in ROOT_MODULES]
    assert not loose, "every module belongs in one of the layers' folders"


@pytest.mark.parametrize("path", sorted((PACKAGE / "stats").rglob("*.py")),
                         ids=lambda p: module_name(p))
def test_statistics_print_nothing(path):
    printing = [n for n in imported(path) if n.split(".")[0] in PRINTING]
    assert not printing, f"{module_name(path)} imports {printing}"


#: Calls that change a dict, list or set in place.
MUTATING = {"append", "extend", "insert", "update", "setdefault", "pop", "popitem", "clear",
            "add", "discard", "remove"}


def module_state_changes(source: str) -> list[str]:
    """Where `source` keeps state at module level: a ``global`` statement, a context
    variable, or a function changing one of the module's own top-level names in place
    (``NAME[key] = ...``, ``NAME.append(...)``...)."""
    tree = ast.parse(source)
    top = {t.id for node in tree.body if isinstance(node, (ast.Assign, ast.AnnAssign))
           for t in (node.targets if isinstance(node, ast.Assign) else [node.target])
           if isinstance(t, ast.Name)}
    found = []
    for function in (n for n in ast.walk(tree)
                     if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))):
        for node in ast.walk(function):
            if isinstance(node, (ast.Global, ast.Nonlocal)):
                found.append(f"line {node.lineno}: global {', '.join(node.names)}")
            targets = (node.targets if isinstance(node, ast.Assign) else
                       [node.target] if isinstance(node, (ast.AugAssign, ast.AnnAssign))
                       else [])
            for target in targets:
                if (isinstance(target, (ast.Subscript, ast.Attribute))
                        and isinstance(target.value, ast.Name) and target.value.id in top):
                    found.append(f"line {node.lineno}: {ast.unparse(target)} = ...")
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr in MUTATING and isinstance(node.func.value, ast.Name)
                    and node.func.value.id in top):
                found.append(f"line {node.lineno}: {ast.unparse(node.func)}(...)")
    found += [f"line {n.lineno}: a context variable" for n in ast.walk(tree)
              if isinstance(n, ast.Attribute) and n.attr == "ContextVar"
              or isinstance(n, ast.Name) and n.id == "ContextVar"]
    return found


def test_the_state_check_finds_each_kind():
    source = '''
import contextvars
CACHE = {}
SEEN = []
CURRENT = contextvars.ContextVar("current")
def remember(key, value):
    CACHE[key] = value
    SEEN.append(key)
def reset():
    global CACHE
    CACHE = {}
def local_only():
    cache = {}
    cache["a"] = 1
'''
    found = module_state_changes(source)
    assert len(found) == 4 and not any("cache[" in f for f in found), found


@pytest.mark.parametrize("path", MODULES, ids=lambda p: module_name(p))
def test_no_module_level_mutable_state(path):
    """Settings and caches travel in objects that are passed (issue 12): no module keeps
    state that a function changes."""
    assert not module_state_changes(path.read_text(encoding="utf-8")), module_name(path)

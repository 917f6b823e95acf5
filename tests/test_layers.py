"""The package's import layers: every module imports only its own layer or those below.

Layers, lowest first (DESIGN.md): leaf helpers and value types; spaces, tables,
protocols, data, models; evaluators, estimators, training, strategies, simulator;
experiment, spec, tabulate, estimate, verify, importers, predictors; record and report; the Python
API; the CLI. Imports inside
functions count too: a lazy import is still a dependency. Within a layer, no module
imports itself through others (an import circle).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "harness"
LAYERS = [
    {"errors", "version"},
    {"config", "atomic", "seeding", "executors", "places", "record_check"},
    {"values", "plugins", "resume", "parts"},
    {
        "spaces",
        "table",
        "table_format",
        "table_probe",
        "table_write",
        "protocol",
        "proxy_protocol",
        "data",
        "models",
        "environment",
    },
    {"evaluators", "estimators", "train", "strategies", "simulator", "one_shot"},
    {"importers", "spec", "experiment", "tabulate", "verify", "estimation", "testing"}
    | {"predictors"},
    {"record", "report", "reproduce"},
    {"api", "specdoc"},
    {"cli"},
]
LAYER_OF = {name: level for level, names in enumerate(LAYERS) for name in names}
#: the only modules that may import a concrete search space (or its network)
CONCRETE_SPACES = ("harness.spaces.nb201", "harness.spaces.nbgraph", "harness.models")
#: (one_shot: NB201's weight-sharing searches, written for NB201's supernet)
MAY_NAME_SPACES = ("spaces", "importers", "models", "one_shot")


def modules() -> list[Path]:
    return sorted(
        p for p in PACKAGE.rglob("*.py") if p.name != "__init__.py" or p.parent != PACKAGE
    )


def unit(path: Path) -> str:
    """The layer unit of a module file: its top-level module or subpackage name."""
    return path.relative_to(PACKAGE).parts[0].removesuffix(".py")


def harness_imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        found.update(n for n in names if n == "harness" or n.startswith("harness."))
    return found


def test_every_module_belongs_to_a_layer():
    assert {unit(p) for p in modules()} <= set(LAYER_OF)


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_point_downward_only(path):
    level = LAYER_OF[unit(path)]
    for name in harness_imports(path):
        # the package root re-exports the API, the top layer: reading it is an upward edge
        assert name != "harness", f"{unit(path)} imports the package root; use harness.version"
        target = name.split(".")[1]
        assert LAYER_OF[target] <= level, f"{unit(path)} (layer {level}) imports {name}"


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_only_spaces_and_importers_name_a_concrete_space(path):
    if unit(path) in MAY_NAME_SPACES:
        return
    for name in harness_imports(path):
        assert not name.startswith(CONCRETE_SPACES), f"{path.name} imports {name}"
    assert "NB201Space" not in path.read_text()


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in PACKAGE.rglob("*.py")}


def imported_modules(path: Path) -> set[str]:
    """The harness modules a file imports, lazily too: ``from harness.x import y`` imports
    module ``harness.x.y`` where that is a module, else ``harness.x``."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{alias.name}" for alias in node.names]
            names = [name if name in MODULES else node.module for name in names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        found.update(name for name in names if name in MODULES)
    return found


def test_no_module_imports_itself_through_others():
    graph = {name: sorted(imported_modules(path) - {name}) for name, path in MODULES.items()}
    done: set[str] = set()
    for start in sorted(graph):
        path, todo = [], [(start, iter(graph[start]))]
        while todo:  # depth first, the current path in `path`
            name, following = todo[-1]
            if not path or path[-1] != name:
                path.append(name)
            step = next(following, None)
            if step is None:
                done.add(name)
                path.pop()
                todo.pop()
            elif step in path:
                circle = path[path.index(step) :] + [step]
                raise AssertionError(f"import circle: {' -> '.join(circle)}")
            elif step not in done:
                todo.append((step, iter(graph[step])))

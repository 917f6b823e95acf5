"""The package's import layers: every module imports only its own layer or those below.

Layers, lowest first (DESIGN.md): leaf helpers and value types; spaces, tables,
protocols, data, models; evaluators, estimators, training, strategies, simulator;
experiment, spec, tabulate, estimate, verify, importers, predictors; record and report; the Python
API; the CLI. Imports inside
functions count too: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "harness"
LAYERS = [
    {"errors", "version"},
    {"config", "atomic", "seeding", "executors", "places"},
    {"values", "plugins", "resume", "parts"},
    {"spaces", "table", "protocol", "proxy_protocol", "data", "models", "environment"},
    {"evaluators", "estimators", "train", "strategies", "simulator"},
    {"importers", "spec", "experiment", "tabulate", "verify", "estimation", "testing"}
    | {"predictors"},
    {"record", "report"},
    {"api"},
    {"cli"},
]
LAYER_OF = {name: level for level, names in enumerate(LAYERS) for name in names}
#: the only modules that may import a concrete search space (or its network)
CONCRETE_SPACES = ("harness.spaces.nb201", "harness.spaces.nbgraph", "harness.models")
MAY_NAME_SPACES = ("spaces", "importers", "models")


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

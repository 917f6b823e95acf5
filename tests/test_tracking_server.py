"""A shared tracking set-up: a real `mlflow server` on loopback, several `harness run`s at once.

The server uses a sqlite backend here (PostgreSQL for several machines: docs/distributed.md).
Every run must be recorded whole, once: one finished experiment run per `harness run`, one
finished child per strategy, none duplicated, none missing, whether its chunks ran in this
process, in worker processes or on Dask workers (which send results back to the caller, the
one process that records).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import REPO, folder_bytes, needs_nbgraph

SPECS = [REPO / "benchmarks" / "nbgraph" / f"{name}.toml" for name in ("cora", "proteins")]
pytestmark = [pytest.mark.slow, needs_nbgraph()]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def server(tmp_path) -> str:
    """An `mlflow server` on 127.0.0.1 with a sqlite backend and served artifacts."""
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable, "-m", "mlflow", "server",
            "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
            "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}",
            "--artifacts-destination", str(tmp_path / "artifacts"),
        ],
        cwd=tmp_path,
        env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
                if answer.status == 200:
                    break
        except OSError:
            pass
        assert process.poll() is None, "mlflow server exited"
        assert time.monotonic() < deadline, "mlflow server did not start in 120 s"
        time.sleep(0.5)
    yield url
    process.terminate()
    process.wait(timeout=30)


def harness(*args: str, cwd: Path, uri: str) -> subprocess.Popen:
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "MLFLOW_DISABLE_TELEMETRY": "true"}
    return subprocess.Popen(
        [sys.executable, "-m", "harness.cli", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_several_runs_record_through_one_server_at_once_and_nothing_is_lost(
    server, tmp_path, plugin_site, monkeypatch
):
    monkeypatch.setenv("PYTHONPATH", str(plugin_site))  # the specs run the plugin too
    started = []
    for copy in range(2):
        for spec in SPECS:
            folder = tmp_path / f"{spec.stem}-{copy}"
            folder.mkdir()
            # a copy of the spec in the folder, so that its project (resume files) is there
            text = spec.read_text().replace('"../../build/', f'"{REPO / "build"}/')
            (folder / spec.name).write_text(text)
            # the second copies run their chunks on Dask workers and in worker processes
            executor = ("--executor", "dask" if spec == SPECS[0] else "processes", "--jobs", "2")
            args = ("run", spec.name, "--seeds", "0-99", "--results", "out")
            started.append(harness(*args, *(executor if copy else ()), cwd=folder, uri=server))
            started[-1].folder = folder  # type: ignore[attr-defined]
    for process in started:
        _, err = process.communicate(timeout=600)
        assert process.returncode == 0, err
        assert not (process.folder / "mlflow.db").exists()  # type: ignore[attr-defined]

    monkeypatch.setenv("MLFLOW_TRACKING_URI", server)
    from mlflow.tracking import MlflowClient

    client = MlflowClient(server)
    for spec in SPECS:
        experiment = client.get_experiment_by_name(f"nbgraph-{spec.stem}")
        runs = client.search_runs([experiment.experiment_id], max_results=1000)
        parents = [r for r in runs if r.data.tags.get("harness.role") == "experiment"]
        children = [r for r in runs if r.data.tags.get("harness.role") == "strategy"]
        assert len(parents) == 2 and len(children) == 2 * 4
        assert all(r.info.status == "FINISHED" for r in runs)
        for parent in parents:
            mine = [
                c.data.tags["harness.strategy"]
                for c in children
                if c.data.tags["mlflow.parentRunId"] == parent.info.run_id
            ]
            assert sorted(mine) == ["LS", "REA", "REINFORCE", "RS"]
        first, second = (tmp_path / f"{spec.stem}-{c}" / "out" for c in (0, 1))
        assert folder_bytes(first) == folder_bytes(second)

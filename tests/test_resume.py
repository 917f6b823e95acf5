"""Kill a real `harness run` at any moment, run it again: the result is as if nothing happened.

The runs are Table 5 on the real NB201 table (500 seeds per method, about ten seconds of
search), killed with SIGKILL while searching (serial and with worker processes) and while
writing its MLflow record, and with a strategy whose worker process kills itself. The next
`harness run` resumes, and its report is byte-identical to an uninterrupted run's. Two runs
creating one fresh sqlite store at once both succeed, as do two creating one experiment.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import numpy as np
import pytest
from conftest import TABLE5, dump_toml, folder_bytes, needs_nb201

from harness.resume import WORK_DIR, ChunkStore


def write_table5(folder: Path, table: tuple[Path, str]) -> Path:
    raw = tomllib.loads(TABLE5.read_text())
    raw["table"] = {"path": str(table[0]), "sha256": table[1]}
    raw["experiment"]["results"] = "results/t5"
    path = folder / "table5.toml"
    path.write_text(dump_toml(raw))
    return path


def start(folder: Path, *args: str, **env: str) -> subprocess.Popen:
    """``harness ARGS`` in ``folder`` (its own sqlite store), in a process group of its own,
    with the variables ``env`` set."""
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{folder / 'mlflow.db'}", **env}
    return subprocess.Popen(
        [sys.executable, "-m", "harness.cli", *args],
        cwd=folder,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def kill_when(process: subprocess.Popen, ready, timeout: float = 120.0) -> None:
    """SIGKILL the process group as soon as ``ready()`` holds."""
    deadline = time.monotonic() + timeout
    while not ready():
        assert process.poll() is None, f"finished before it could be killed: {process.stderr}"
        assert time.monotonic() < deadline, "never reached the point to kill it"
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def finish(folder: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    done = start(folder, *args, **env)
    out, err = done.communicate(timeout=300)
    assert done.returncode == 0, err
    return subprocess.CompletedProcess(done.args, done.returncode, out, err)


def chunks_written(folder: Path, at_least: int):
    return lambda: len(list((folder / WORK_DIR).glob("*/chunk-*.npz"))) >= at_least


def recording(folder: Path):
    """True once a child (strategy) record exists: the parent is being written."""

    def ready() -> bool:
        try:
            with sqlite3.connect(folder / "mlflow.db", timeout=0.1) as db:
                found = db.execute(
                    "select count(*) from tags where key = 'harness.role' and value = 'strategy'"
                ).fetchone()
        except sqlite3.Error:
            return False
        return found[0] > 0

    return ready


def runs(folder: Path) -> list[tuple[str, str, str]]:
    """(role, status, interrupted tag) of every MLflow run in the folder's store."""
    with sqlite3.connect(folder / "mlflow.db") as db:
        return db.execute(
            "select role.value, runs.status, coalesce(cut.value, '') from runs "
            "join tags role on role.run_uuid = runs.run_uuid and role.key = 'harness.role' "
            "left join tags cut on cut.run_uuid = runs.run_uuid "
            "and cut.key = 'harness.interrupted' order by role.value, runs.status"
        ).fetchall()


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, nb201_built) -> dict[str, bytes]:
    folder = tmp_path_factory.mktemp("whole")
    finish(folder, "run", str(write_table5(folder, nb201_built)))
    return folder_bytes(folder / "results" / "t5")


#: a finished Table 5 record: the experiment's run and one child per method
WHOLE = [("experiment", "FINISHED", "")] + [("strategy", "FINISHED", "")] * 4


def assert_same_results(folder: Path, expected: dict[str, bytes]) -> None:
    assert folder_bytes(folder / "results" / "t5") == expected


@needs_nb201()
@pytest.mark.parametrize(
    "executor", [[], ["--executor", "processes", "--jobs", "2"]], ids=["serial", "processes"]
)
def test_a_run_killed_while_searching_resumes_with_identical_results(
    tmp_path, nb201_built, uninterrupted, executor
):
    spec = str(write_table5(tmp_path, nb201_built))
    kill_when(start(tmp_path, "run", spec, *executor), chunks_written(tmp_path, 4))
    kept = len(list((tmp_path / WORK_DIR).glob("*/chunk-*.npz")))
    done = finish(tmp_path, "run", spec, *executor)
    assert f"resuming: {kept} finished chunks" in done.stderr
    assert_same_results(tmp_path, uninterrupted)
    assert runs(tmp_path) == WHOLE
    assert not list((tmp_path / WORK_DIR).glob("*"))  # recorded: nothing left to resume


CRASHING_STRATEGY = """
import multiprocessing
import os
import signal

from harness.strategies.random_search import RandomSearch


class CrashingRandomSearch(RandomSearch):
    \"\"\"Random search whose worker process kills itself at its 120th run (in its third
    chunk), once: the first process to create the file ``$CRASH_MARKER`` dies.\"\"\"

    runs_in_this_process = 0

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        CrashingRandomSearch.runs_in_this_process += 1
        if multiprocessing.parent_process() is None or self.runs_in_this_process != 120:
            return
        try:
            os.close(os.open(os.environ["CRASH_MARKER"], os.O_CREAT | os.O_EXCL))
        except FileExistsError:
            return
        os.kill(os.getpid(), signal.SIGKILL)
"""


@needs_nb201()
def test_a_crashed_worker_ends_in_one_line_and_the_run_resumes(tmp_path, nb201_built):
    (tmp_path / "plugin").mkdir()
    (tmp_path / "plugin" / "crashing.py").write_text(CRASHING_STRATEGY)
    raw = tomllib.loads(write_table5(tmp_path, nb201_built).read_text())
    raw["strategy"] = [{"name": "RS", "kind": "crashing:CrashingRandomSearch"}]
    del raw["published"]  # the paper's rows name the strategies left out
    jobs = ("--executor", "processes", "--jobs", "2")
    reports = {}
    for name in ("whole", "crashed"):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "spec.toml").write_text(dump_toml(raw))
        env = {"CRASH_MARKER": str(folder / "crashed"), "PYTHONPATH": str(tmp_path / "plugin")}
        if name == "whole":
            (folder / "crashed").touch()  # this run never crashes
        else:
            process = start(folder, "run", "spec.toml", *jobs, **env)
            _, err = process.communicate(timeout=300)
            assert process.returncode == 2 and "Traceback" not in err, err
            last = err.strip().splitlines()[-1]
            assert last.startswith("harness: error: a worker process died"), err
            kept = len(list((folder / WORK_DIR).glob("*/chunk-*.npz")))
            assert 2 <= kept < 10 and not (folder / "results").exists()
        done = finish(folder, "run", "spec.toml", *jobs, **env)
        if name == "crashed":
            assert f"resuming: {kept} finished chunks" in done.stderr
        reports[name] = folder_bytes(folder / "results" / "t5")
    assert reports["crashed"] == reports["whole"]
    assert runs(tmp_path / "crashed") == [
        ("experiment", "FINISHED", ""),
        ("strategy", "FINISHED", ""),
    ]


@needs_nb201()
def test_a_run_killed_while_recording_is_marked_and_recorded_again(
    tmp_path, nb201_built, uninterrupted
):
    spec = str(write_table5(tmp_path, nb201_built))
    kill_when(start(tmp_path, "run", spec), recording(tmp_path))
    half = runs(tmp_path)
    assert ("experiment", "RUNNING", "") in half
    done = finish(tmp_path, "run", spec)
    assert "resuming: 40 finished chunks" in done.stderr  # the search is not done again
    assert_same_results(tmp_path, uninterrupted)
    after = runs(tmp_path)
    finished = [r for r in after if r[1] == "FINISHED"]
    assert finished == WHOLE
    killed = [r for r in after if r[1] != "FINISHED"]
    assert killed and all(r[1:] == ("KILLED", "true") for r in killed)
    assert len(killed) == len(half)
    with sqlite3.connect(tmp_path / "mlflow.db") as db:
        (orphan,) = db.execute(
            "select runs.run_uuid from runs join tags on tags.run_uuid = runs.run_uuid "
            "where tags.key = 'harness.role' and tags.value = 'experiment' "
            "and runs.status = 'KILLED'"
        ).fetchone()
    report = start(tmp_path, "report", orphan, "--out", "orphan")
    out, err = report.communicate(timeout=120)
    assert report.returncode == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert "incomplete" in err and not (tmp_path / "orphan").exists()


@needs_nb201()
def test_two_runs_creating_one_fresh_sqlite_store_both_succeed(tmp_path, nb201_built):
    spec = write_table5(tmp_path, nb201_built)
    first = start(tmp_path, "run", str(spec), "--seeds", "0-19", "--results", "a")
    second = start(tmp_path, "run", str(spec), "--seeds", "0-19", "--results", "b")
    for process in (first, second):
        _, err = process.communicate(timeout=300)
        assert process.returncode == 0, err
    assert folder_bytes(tmp_path / "a") == folder_bytes(tmp_path / "b")
    assert runs(tmp_path).count(("experiment", "FINISHED", "")) == 2


def test_an_experiment_another_process_created_first_is_used_not_an_error(mlflow_store):
    """Through a shared server, two runs may both miss the experiment and both create it."""
    from mlflow.tracking import MlflowClient

    from harness.record import _experiment_id

    class LateClient(MlflowClient):
        """Finds nothing on its first look, as if the other process created it just after."""

        looks = 0

        def get_experiment_by_name(self, name):
            self.looks += 1
            return None if self.looks == 1 else super().get_experiment_by_name(name)

    uri = os.environ["MLFLOW_TRACKING_URI"]
    created = MlflowClient(uri).create_experiment("shared")
    assert _experiment_id(LateClient(uri), "shared") == created


def test_a_chunk_store_reuses_chunks_only_under_the_same_identity(tmp_path):
    store = ChunkStore(tmp_path, "exp", {"spec_hash": "a"})
    store.save(0, {"x": np.arange(3)})
    store.save(3, {"x": np.arange(4.0)})
    loaded = ChunkStore(tmp_path, "exp", {"spec_hash": "a"}).load()
    assert sorted(loaded) == [0, 3] and loaded[3]["x"].tolist() == [0.0, 1.0, 2.0, 3.0]
    (store.folder / "chunk-00003.npz").write_bytes(b"PK damaged")
    assert list(ChunkStore(tmp_path, "exp", {"spec_hash": "a"}).load()) == [0]
    other = ChunkStore(tmp_path, "exp", {"spec_hash": "b"})
    assert other.load() == {} and other.folder != store.folder
    store.clear()
    assert not store.folder.exists()


@needs_nb201()
def test_runs_read_back_from_a_stored_chunk_are_the_runs_that_were_stored(tmp_path, nb201_built):
    from harness.experiment import Benchmark, _chunk_arrays, _chunk_outcomes
    from harness.spec import load_spec
    from harness.table import Table

    spec = load_spec(write_table5(tmp_path, nb201_built), {"seeds": [4, 9]})
    benchmark = Benchmark(spec, Table.load(*nb201_built))
    outcomes = [benchmark.run(s, seed) for s in spec.strategies for seed in spec.seeds]
    store = ChunkStore(tmp_path, "exp", {})
    store.save(0, _chunk_arrays(outcomes))
    assert _chunk_outcomes(store.load()[0]) == outcomes

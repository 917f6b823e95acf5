"""The Dask executor: real LocalClusters on loopback give the records, result files and
table values of the local executors, retry the chunk of a worker that dies, close on
errors and Ctrl-C, and fail in one line when Dask is not installed.

Table 5 runs use 24 seeds per method (two chunks of runs); tabulate uses the tiny digits
protocol of test_live.py (C=2, 2 epochs, one batch per epoch), three chunks trained in
this process to compare with.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, folder_bytes, needs_nb201

distributed = pytest.importorskip("distributed", reason="the [dask] extra is not installed")
psutil = pytest.importorskip("psutil")

import harness  # noqa: E402
from harness.cli import main  # noqa: E402
from harness.errors import HarnessError  # noqa: E402
from harness.executors import run_chunks  # noqa: E402
from harness.parts import check_parts, parts_folder  # noqa: E402
from harness.protocol import load_protocol  # noqa: E402
from harness.spaces import get_space  # noqa: E402
from harness.table import Table  # noqa: E402
from harness.tabulate import (  # noqa: E402
    TabulateSpec,
    _identity,
    assemble,
    train_all,
    work_chunks,
)

DIGITS = REPO / "benchmarks" / "digits" / "tabulate.toml"
#: what two trainings on one machine may differ in: measured wall-clock seconds
MEASURED = re.compile(r"(epoch|eval|total)_time_s$")


@pytest.fixture(scope="module")
def cluster():
    """A cluster that a user started: two single-thread worker processes on loopback."""
    with distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address="127.0.0.1:0",
        scheduler_kwargs={"dashboard": False},
    ) as started:
        yield started.scheduler_address


def own_processes() -> set[int]:
    """This process's descendants, less Python's resource tracker (it lives as long as
    the interpreter, whoever spawned it)."""
    return {
        p.pid
        for p in psutil.Process().children(recursive=True)
        if "resource_tracker" not in " ".join(p.cmdline())
    }


# --- harness run -------------------------------------------------------------------------


@needs_nb201()
def test_every_executor_gives_identical_results_and_trajectories(small_spec, cluster, capsys):
    spec = small_spec(lambda raw: raw["runs"].update(seeds={"start": 0, "count": 24}))
    baseline = harness.run(spec, results="serial")
    processes = harness.run(spec, executor="processes", jobs=2, results="processes")
    parents = {}
    for name, flags in {
        "dask": ["--executor", "dask", "--jobs", "2"],
        "scheduler": ["--scheduler", cluster],
    }.items():
        assert main(["run", str(spec), *flags, "--results", name]) == 0
        parents[name] = re.search(r"MLflow experiment run (\w+)", capsys.readouterr().out)[1]
    others = [processes, *(harness.results(parent) for parent in parents.values())]
    assert len(baseline.runs) == 4 * 24  # Table 5's methods x 24 seeds
    for name in ("processes", *parents):
        assert folder_bytes(Path(name)) == folder_bytes(Path("serial")), name
    for done in others:
        assert done.evaluations.equals(baseline.evaluations)
        # strategy_wall_s is measured real time, recorded beside the simulated clock
        assert done.runs.drop(columns="strategy_wall_s").equals(
            baseline.runs.drop(columns="strategy_wall_s")
        )


def test_a_scheduler_with_another_executor_is_refused(tmp_path):
    with pytest.raises(HarnessError, match="use --executor dask"):
        harness.run(tmp_path / "absent.toml", executor="processes", scheduler="tcp://x:8786")


# --- tabulate ----------------------------------------------------------------------------


def tiny_spec(out: Path) -> TabulateSpec:
    """The shipped digits protocol, shrunk so a chunk of 24 trainings takes seconds."""
    protocol = dataclasses.replace(
        load_protocol(DIGITS), schedule="tiny", epochs=2, batch_size=1000, channels=2, seeds=(0, 1)
    )
    return TabulateSpec(
        path=DIGITS,
        benchmark_id="test-digits",
        space=get_space("nb201"),
        out=out,
        workers=2,
        data_root=None,
        split_dir=None,
        protocol=protocol,
    )


def read_parts(parts: Path) -> dict[str, dict[str, np.ndarray]]:
    found = {}
    for path in sorted(parts.glob("chunk-*.npz")):
        with np.load(path, allow_pickle=False) as data:
            found[path.name] = {key: data[key] for key in data.files}
    return found


def assert_same_values(parts: Path, expected: dict[str, dict[str, np.ndarray]]) -> None:
    """The parts hold ``expected``'s chunks, bit for bit apart from measured times."""
    found = read_parts(parts)
    assert list(found) == list(expected)
    for name, arrays in expected.items():
        assert list(found[name]) == list(arrays)
        for key, values in arrays.items():
            if MEASURED.search(key):
                assert (found[name][key] > 0).all(), (name, key)
            else:
                assert found[name][key].tobytes() == values.tobytes(), (name, key)


@pytest.fixture(scope="module")
def local_parts(tmp_path_factory) -> dict[str, dict[str, np.ndarray]]:
    """The first three chunks trained in this process (one local worker)."""
    spec = tiny_spec(tmp_path_factory.mktemp("local") / "t.h5")
    parts, complete = train_all(spec, workers=1, max_chunks=3)
    assert not complete
    found = read_parts(parts)
    assert list(found) == [f"chunk-{i:05d}.npz" for i in range(3)]
    return found


def write_parts(spec: TabulateSpec, chunks: dict[str, dict[str, np.ndarray]]) -> Path:
    parts = parts_folder(spec.out)
    check_parts(parts, _identity(spec))
    for name, arrays in chunks.items():
        np.savez(parts / name, **arrays)
    return parts


def fill_with_made_up_chunks(spec: TabulateSpec) -> Path:
    """Write every chunk not trained yet with made-up curves (the same for every build)."""
    parts = spec.out.with_name(spec.out.name + ".parts")
    for index, chunk in enumerate(work_chunks(spec.space, spec.protocol)):
        path = parts / f"chunk-{index:05d}.npz"
        if path.exists():
            continue
        made_up = np.array([[arch % 97 + seed + e for e in range(2)] for arch, seed in chunk])
        keys = ["train/loss", "train/accuracy", "train/epoch_time_s"] + [
            f"{split}/{metric}"
            for split in spec.protocol.eval_splits
            for metric in ("loss", "accuracy", "eval_time_s")
        ]
        np.savez(
            path,
            archs=np.array([a for a, _ in chunk]),
            seeds=np.array([s for _, s in chunk]),
            **{key: made_up.astype(np.float64) for key in keys},
        )
    return parts


def test_dask_tabulate_stores_the_values_of_a_local_build(local_parts, tmp_path, caplog):
    spec = tiny_spec(tmp_path / "dask" / "t.h5")
    before = own_processes()
    with caplog.at_level("INFO", logger="harness"):
        parts, complete = train_all(spec, workers=2, max_chunks=2, executor="dask")
    assert "on a local Dask cluster of 2 worker(s)" in caplog.text
    assert not complete and own_processes() <= before
    first_two = dict(list(local_parts.items())[:2])
    assert_same_values(parts, first_two)

    # two whole tables from the same chunks: every variable is byte-identical but the times
    local = tiny_spec(tmp_path / "local" / "t.h5")
    write_parts(local, first_two)
    tables = []
    for each in (local, spec):
        sha = assemble(each, fill_with_made_up_chunks(each))
        tables.append(Table.load(each.out, expected_sha256=sha))
    first, second = tables
    assert first.variables() == second.variables()
    compared = []
    for key in first.variables():
        a, b = first.variable(*key), second.variable(*key)
        assert a.mask.tobytes() == b.mask.tobytes()
        if not MEASURED.search(key[-1]):
            assert a.values.tobytes() == b.values.tobytes(), key
            compared.append("/".join(key[2:]))
    assert sorted(compared) == [
        "test/accuracy",
        "test/loss",
        "train/accuracy",
        "train/loss",
        "valid/accuracy",
        "valid/loss",
    ]
    for key in (("digits", "params"), ("digits", "flops"), ("digits", "representative")):
        assert first.property(*key)[0].tobytes() == second.property(*key)[0].tobytes()


def _die_once(marker: str, chunk: list[tuple[int, int]]) -> dict[str, np.ndarray]:
    """Train a chunk, except the first time anywhere: then die half-way, like a worker
    killed by the OS (runs on a Dask worker, found there by reference)."""
    from harness.tabulate import _train_chunk

    if os.path.exists(marker):
        return _train_chunk(chunk)
    Path(marker).write_text(str(os.getpid()))
    _train_chunk(chunk[:1])
    os.kill(os.getpid(), signal.SIGKILL)
    raise AssertionError("unreachable")


def test_a_resumed_dask_build_retrains_the_chunk_of_a_killed_worker(
    local_parts, tmp_path, monkeypatch
):
    import harness.tabulate

    marker = tmp_path / "killed"
    monkeypatch.setattr(harness.tabulate, "_train_chunk", functools.partial(_die_once, str(marker)))
    spec = tiny_spec(tmp_path / "t.h5")
    parts = write_parts(spec, dict(list(local_parts.items())[:1]))  # an earlier build's chunk
    kept = (parts / "chunk-00000.npz").stat().st_mtime_ns
    before = own_processes()
    train_all(spec, workers=2, max_chunks=2, executor="dask")
    killed = int(marker.read_text())
    assert not psutil.pid_exists(killed) or psutil.Process(killed).status() == "zombie"
    assert (parts / "chunk-00000.npz").stat().st_mtime_ns == kept  # resumed, not redone
    assert_same_values(parts, local_parts)
    assert own_processes() <= before


# --- the cluster itself ------------------------------------------------------------------


def test_a_local_cluster_listens_on_loopback_only_and_is_closed_on_interrupt():
    before = own_processes()
    listening: set[str] = set()
    trim: list[str | None] = []

    def on_done(index: int, value: str | None) -> None:
        trim.append(value)
        # the scheduler runs in this process; the nannies and workers are its descendants
        for process in [psutil.Process(), *psutil.Process().children(recursive=True)]:
            try:
                connections = process.net_connections("inet")
            except psutil.NoSuchProcess:  # ended meanwhile (not one of the cluster's)
                continue
            listening.update(c.laddr.ip for c in connections if c.status == "LISTEN")
        raise KeyboardInterrupt

    variable = "MALLOC_TRIM_THRESHOLD_"
    with pytest.raises(KeyboardInterrupt):
        run_chunks(os.getenv, [(i, variable) for i in range(8)], on_done, executor="dask")
    assert listening == {"127.0.0.1"}
    assert own_processes() <= before
    assert trim == [os.environ.get(variable)]  # not Dask's 65536, which slows training


def test_a_chunk_that_kills_every_worker_it_runs_on_fails_in_one_line():
    import dask

    before = own_processes()
    with (
        dask.config.set({"distributed.scheduler.allowed-failures": 1}),
        pytest.raises(HarnessError, match=r"^chunk 1: the Dask workers that ran it died"),
    ):
        run_chunks(os._exit, [(1, 9)], lambda *_: None, executor="dask", workers=1)
    assert own_processes() <= before


def _process_id() -> str:
    return str(os.getpid())


def test_a_worker_whose_fingerprint_differs_runs_nothing():
    with pytest.raises(HarnessError, match=r"^a Dask worker runs other code than this process"):
        run_chunks(len, [(0, [1])], lambda *_: None, executor="dask", fingerprint=_process_id)


def test_ctrl_c_ends_a_dask_tabulate_and_its_cluster(tmp_path):
    spec = tmp_path / "tabulate.toml"
    tiny = {
        'out = "../../tabular/nb201-digits.h5"': 'out = "t.h5"',
        "epochs = 4": "epochs = 1",
        "batch_size = 128": "batch_size = 1000",
        "channels = 4": "channels = 2",
    }
    text = DIGITS.read_text()
    for old, new in tiny.items():
        assert old in text
        text = text.replace(old, new)
    spec.write_text(text)
    process = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "tabulate", str(spec), "--executor", "dask"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while not list((tmp_path / "t.h5.parts").glob("chunk-*.npz")):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "no chunk was trained"
        time.sleep(0.1)
    os.killpg(process.pid, signal.SIGINT)  # what a terminal sends on Ctrl-C
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130 and err.endswith("harness: interrupted\n"), err
    # the workers got the signal too: they leave the ending to the command, silently
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    deadline = time.monotonic() + 10
    while [p for p in psutil.process_iter() if _in_group(p, process.pid)]:
        assert time.monotonic() < deadline, "processes of the command outlived it"
        time.sleep(0.1)


def _in_group(process: psutil.Process, group: int) -> bool:
    try:
        return os.getpgid(process.pid) == group
    except (ProcessLookupError, psutil.Error):
        return False


# --- without Dask ------------------------------------------------------------------------


HIDE_DASK = (
    "import sys; sys.modules['distributed'] = None; "
    "from harness.cli import main; sys.exit(main(sys.argv[1:]))"
)


@pytest.mark.parametrize(
    "args",
    [
        ["run", "SPEC", "--executor", "dask"],
        ["run", "SPEC", "--scheduler", "tcp://127.0.0.1:8786"],
        ["tabulate", "TABULATE", "--executor", "dask"],
    ],
    ids=["run", "run-scheduler", "tabulate"],
)
def test_dask_without_the_extra_fails_in_one_line(tmp_path, args):
    tabulate = tmp_path / "tabulate.toml"
    tabulate.write_text(DIGITS.read_text().replace("../../tabular/nb201-digits.h5", "t.h5"))
    paths = {
        "SPEC": str(REPO / "benchmarks" / "digits" / "compare.toml"),
        "TABULATE": str(tabulate),
    }
    done = subprocess.run(
        [sys.executable, "-c", HIDE_DASK, *(paths.get(a, a) for a in args)],
        cwd=tmp_path,
        env={**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert done.stderr.startswith("harness: error: --executor dask needs")
    assert done.stderr.rstrip().endswith('pip install "harness[dask]"')
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tabulate.toml"]  # nothing written

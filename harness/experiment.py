"""An experiment: a spec expanded into runs (strategy x seed), executed, summarised.

Each run is independent and fully determined by (spec, table, strategy, master seed),
so the executor (serial, worker processes or Dask) and the worker count cannot change any
result. Results come back in spec order whatever order the runs finish in.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from harness.config import Problems, at, spec_error
from harness.errors import CallTimeout, ConfigError, StrategyError, TableError
from harness.estimators.pinned import PinnedScores
from harness.evaluators import Evaluator, EvaluatorSetup, evaluator_class
from harness.evaluators.tabular import resolve_metric
from harness.executors import run_chunks
from harness.importers import build_table
from harness.plugins import origin
from harness.resume import ChunkStore, source_sha256
from harness.seeding import describe_streams, stream_generator
from harness.simulator import CALL_TIMEOUT_S, RunResult, Trajectory, limited, simulate
from harness.spaces import SearchSpace, get_space
from harness.spec import ExperimentSpec, StrategySpec
from harness.strategies import StrategyContext, make_strategy, needs_one_shot, strategy_class
from harness.table import Table

log = logging.getLogger(__name__)

#: the random streams a run draws from
RUN_STREAMS = ("strategy", "benchmark")
#: runs per chunk of tabular work (a live chunk is one run: each takes minutes)
TABULAR_CHUNK = 50
PROGRESS_EVERY_S = 10.0


@dataclass
class RunOutcome:
    """One run's result plus the sealed report metrics of its final architecture."""

    strategy: str
    seed: int
    result: RunResult
    targets: dict[str, float]
    streams: dict[str, str]


def open_table(spec: ExperimentSpec) -> Table:
    """Load the spec's table, building it first if it is missing and the spec says how."""
    path = spec.table_path
    if not path.exists() and spec.table_build is not None:
        build = spec.table_build
        log.info("harness: building table %s with the %s importer", path, build["importer"])
        try:
            build_table(build["importer"], path, build["source"], build["dataset"])
        except ConfigError as error:
            with_field = ConfigError(error.message, f"table.build.{error.field}")
            raise spec_error(spec.path, with_field) from None
    table = Table.load(path, expected_sha256=spec.table_sha256)
    if spec.table_sha256 is None:
        log.warning(
            "harness: WARNING: %s pins no [table] sha256: this run is UNPINNED, and its record "
            'and report say so; to pin the table as read now, add sha256 = "%s" to [table]',
            spec.path,
            table.sha256,
        )
    return table


class Benchmark:
    """The table, the space and the search protocol's evaluator, shared by all runs.

    ``setup`` names the evaluator (default: the spec's ``[search] evaluator``). An
    evaluator that trains does so under the protocol the table stores, so the same spec
    runs on the table or live under the identical protocol; report targets are then
    measured live too, and the optimal row stays the table's.
    """

    def __init__(
        self, spec: ExperimentSpec, table: Table, setup: EvaluatorSetup | None = None
    ) -> None:
        try:
            self._setup(spec, table, setup or EvaluatorSetup(spec.search.evaluator))
        except ConfigError as error:
            raise spec_error(spec.path, error) from None

    def _setup(self, spec: ExperimentSpec, table: Table, setup: EvaluatorSetup) -> None:
        self.spec, self.table, self.evaluator_setup = spec, table, setup
        if spec.table_space is not None and spec.table_space != table.space:
            raise ConfigError(
                f"is {spec.table_space!r} but table {table.path} holds space {table.space!r}",
                "table.space",
            )
        try:
            self.space = get_space(table.space)
        except ConfigError as error:
            raise TableError(f"{table.path}: {error.message}") from None
        if len(table.archs) != self.space.num_archs or list(table.archs) != self.space.strings():
            raise TableError(
                f"{table.path}: its architectures are not the {self.space.name} space's, in "
                "index order; rebuild the table with `harness import` or `harness tabulate`"
            )
        search = spec.search
        self.targets = self._targets(spec, table)
        for label, vector in self.targets.items():
            if np.isnan(vector).any():
                raise TableError(
                    f"{table.path}: report target {label!r} is missing for "
                    f"{int(np.isnan(vector).sum())} architectures"
                )
        #: the report targets' variables, by label (what each run's final architecture
        #: is measured on)
        self.target_refs = {t.label: t.ref for t in spec.targets}
        #: what every run shares of the space, checked unchanged after each run
        self.space_state = space_state(self.space)
        with at("search.evaluator"):
            self.evaluator_class = evaluator_class(setup.kind)
        self.evaluator: Evaluator = self.evaluator_class.for_benchmark(
            table, self.space, search, setup, (t.ref for t in spec.targets)
        )
        #: what strategies get beyond the space: a weight-sharing set-up when one needs it
        self.context = StrategyContext()
        if any(needs_one_shot(s.kind) for s in spec.strategies):
            from harness.one_shot.setup import benchmark_setup

            self.context = StrategyContext(
                one_shot=benchmark_setup(
                    spec.supernet,
                    table.protocol,
                    table.path,
                    search.signal.split,
                    setup.data_root,
                    setup.split_dir,
                )
            )
            for strategy in spec.strategies:
                if needs_one_shot(strategy.kind):
                    with at(f"strategy.{strategy.name}.params"):
                        strategy_class(strategy.kind).check_setup(  # type: ignore[attr-defined]
                            strategy.params, self.space, self.context.one_shot
                        )
        #: answers strategies' score requests from the spec's pinned estimate file
        self.scores = None
        if spec.estimate is not None:
            self.scores = PinnedScores(spec.estimate, self.space.name).score
        if not self.evaluator.has_costs and spec.budget.seconds is not None:
            raise ConfigError(
                f"table {table.path} records no training times, so evaluations cost no "
                "simulated seconds: budget this search in evaluations or epochs",
                "budget.seconds",
            )

    @staticmethod
    def _targets(spec: ExperimentSpec, table: Table) -> dict[str, np.ndarray]:
        """Each report target's seed means; a target the table lacks is the spec's problem,
        and every such target is named at once."""
        problems, targets = Problems(), {}
        for number, target in enumerate(spec.targets):
            with problems.check(f"report.target.{number}.metric"):
                try:
                    targets[target.label] = resolve_metric(table, target.ref)
                except TableError as error:
                    raise ConfigError(str(error)) from None
        problems.raise_any()
        return targets

    def optimal(self) -> dict[str, float]:
        """Per target, the best value any architecture reaches (the table's optimal row):
        the highest, or the lowest for a target that is better lower."""
        better = {t.label: t.better for t in self.spec.targets}
        return {
            label: float(vector.min() if better[label] == "min" else vector.max())
            for label, vector in self.targets.items()
        }

    def run(self, strategy_spec: StrategySpec, seed: int) -> RunOutcome:
        """One run: the strategy searches from its master ``seed`` until the budget stops it.

        The strategy works on its own copy of the space; a strategy that changes the space
        every run shares (its class) is stopped with an error naming it."""
        timeout = self.spec.call_timeout_s or CALL_TIMEOUT_S
        # a weight-sharing strategy's setup is its supernet training (hours on a CPU): the
        # harness's own training, as a live evaluation's is, so no call limit applies to it
        starting = None if needs_one_shot(strategy_spec.kind) else timeout
        try:
            try:
                strategy = limited(
                    starting,
                    make_strategy,
                    strategy_spec.kind,
                    self.space,
                    stream_generator(seed, "strategy"),
                    self.spec.search.epoch,
                    strategy_spec.params,
                    self.evaluator.fidelities,
                    self.context,
                )
            except CallTimeout:
                raise StrategyError(
                    f"strategy {strategy_spec.kind} did not finish starting (its setup) within "
                    f"{starting:g} s; raise [runs] call_timeout_s if it needs longer"
                ) from None
            result = simulate(
                strategy,
                self.evaluator,
                stream_generator(seed, "benchmark"),
                strategy_spec.budget(self.spec.budget),
                self.spec.workers,
                timeout,
                self.scores,
            )
            if space_state(self.space) != self.space_state:
                raise StrategyError(
                    f"changed the {self.space.name} search space that every run shares (its "
                    f"class {type(self.space).__qualname__}); a strategy may set attributes on "
                    "its own self.space, never on the space's class"
                )
        except StrategyError as error:
            raise StrategyError(f"[strategy {strategy_spec.name!r}] seed {seed}: {error}") from None
        except ConfigError as error:
            raise spec_error(self.spec.path, error) from None
        targets = self.evaluator.final_metrics(result.incumbent_arch, self.target_refs)
        return RunOutcome(
            strategy=strategy_spec.name,
            seed=seed,
            result=result,
            targets=targets,
            streams=describe_streams(seed, RUN_STREAMS),
        )


def space_state(space: SearchSpace) -> tuple[Any, ...]:
    """What every run shares of a space beyond its own copy: its classes' attributes, by
    identity (a value set or replaced on a class shows; microseconds a run)."""
    classes = [c for c in type(space).__mro__ if c is not object]
    return tuple(
        tuple((name, id(value)) for name, value in vars(c).items() if name not in _CACHES)
        for c in classes
    )


#: class attributes Python itself sets on first use (``copy`` caches ``__slotnames__``)
_CACHES = frozenset({"__slotnames__"})


_worker_benchmark: Benchmark | None = None


def _init_worker(
    spec: ExperimentSpec, setup: EvaluatorSetup, inherited: Benchmark | None = None
) -> None:
    """A worker's benchmark: the one a forked worker ``inherited`` from the process that
    started it (its table already in memory), else one loaded from the spec's table."""
    global _worker_benchmark
    if inherited is not None:
        _worker_benchmark = inherited
        return
    _worker_benchmark = Benchmark(spec, Table.load(spec.table_path, spec.table_sha256), setup)


def _run_chunk(jobs: list[tuple[int, int]]) -> list[RunOutcome]:
    assert _worker_benchmark is not None
    strategies = _worker_benchmark.spec.strategies
    return [_worker_benchmark.run(strategies[s], seed) for s, seed in jobs]


#: trajectory columns, kept as arrays when a chunk of runs is stored for resuming
_COLUMNS = {
    "worker": np.int64,
    "start_s": np.float64,
    "end_s": np.float64,
    "arch": np.int64,
    "epoch": np.int64,
    "cost_s": np.float64,
    "signal": np.float64,
    "seed_used": np.str_,
    "completed": np.bool_,
    "incumbent_arch": np.int64,
    "incumbent_signal": np.float64,
    "trial": np.int64,
    "resumed_from": np.int64,
    "told": np.bool_,
    "measured_s": np.float64,
}
_RESULT_FIELDS = (
    "incumbent_arch",
    "incumbent_signal",
    "incumbent_epoch",
    "simulated_seconds",
    "evaluations",
    "epochs",
    "stop_reason",
    "strategy_wall_s",
    "setup_s",
    "search_log",
    "scores",
    "score_s",
)


def _chunk_arrays(outcomes: list[RunOutcome]) -> dict[str, np.ndarray]:
    """Runs as a header (JSON) and concatenated trajectory columns: quick to store, exact
    to read back (float64 and int64 arrays, never text)."""
    header = [
        {
            "strategy": o.strategy,
            "seed": o.seed,
            "targets": o.targets,
            "streams": o.streams,
            "result": {name: getattr(o.result, name) for name in _RESULT_FIELDS},
            "rows": len(o.result.trajectory),
            "measured": len(o.result.trajectory.measured_s),
            "visible": sorted(o.result.trajectory.visible),
            "sealed": sorted(o.result.trajectory.sealed),
        }
        for o in outcomes
    ]
    trajectories = [o.result.trajectory for o in outcomes]
    arrays = {
        name: np.array([v for t in trajectories for v in getattr(t, name)], dtype=dtype)
        for name, dtype in _COLUMNS.items()
    }
    for group in ("visible", "sealed"):
        for key in sorted({k for t in trajectories for k in getattr(t, group)}):
            values = [v for t in trajectories for v in getattr(t, group).get(key, [])]
            arrays[f"{group}/{key}"] = np.array(values, dtype=np.float64)
    arrays["header"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    return arrays


def _chunk_outcomes(arrays: dict[str, np.ndarray]) -> list[RunOutcome]:
    header = json.loads(arrays["header"].tobytes())
    offsets: dict[str, int] = {}
    outcomes = []
    for run in header:

        def take(name: str, count: int) -> list[Any]:
            start = offsets.get(name, 0)
            offsets[name] = start + count
            return arrays[name][start : start + count].tolist()

        rows = run["rows"]
        columns = {
            name: take(name, run["measured"] if name == "measured_s" else rows) for name in _COLUMNS
        }
        trajectory = Trajectory(
            **columns,
            visible={key: take(f"visible/{key}", rows) for key in run["visible"]},
            sealed={key: take(f"sealed/{key}", rows) for key in run["sealed"]},
        )
        outcomes.append(
            RunOutcome(
                strategy=run["strategy"],
                seed=run["seed"],
                result=RunResult(trajectory=trajectory, **run["result"]),
                targets=run["targets"],
                streams=run["streams"],
            )
        )
    return outcomes


def resume_identity(spec: ExperimentSpec, benchmark: Benchmark) -> dict[str, Any]:
    """Everything a finished run depends on besides its seed: a resumed experiment reuses
    runs only when all of it is unchanged."""
    setup = benchmark.evaluator_setup
    trains = benchmark.evaluator.trains
    return {
        "spec_hash": spec.spec_hash,
        "table_sha256": benchmark.table.sha256,
        "evaluator": setup.kind,
        "evaluator_source": origin(benchmark.evaluator_class)["source_sha256"],
        "live": [str(setup.data_root), str(setup.split_dir)] if trains else None,
        "harness_source": source_sha256(),
        "strategies": [origin(strategy_class(s.kind))["source_sha256"] for s in spec.strategies],
        "overrun": [s.budget(spec.budget).overrun for s in spec.strategies],
        **(
            {"one_shot": benchmark.context.one_shot.describe()}
            if benchmark.context.one_shot is not None
            else {}
        ),
    }


def run_experiment(
    spec: ExperimentSpec,
    benchmark: Benchmark,
    executor: str | None = "serial",
    jobs: int = 1,
    store: ChunkStore | None = None,
    scheduler: str | None = None,
    meanwhile: Callable[[], None] | None = None,
) -> list[RunOutcome]:
    """All runs of the spec, in spec order (strategy, then seed).

    Work is cut into fixed chunks (one run each when runs train); with a ``store``,
    every finished chunk is kept there and chunks an interrupted attempt finished are not
    run again. ``executor`` ``dask`` runs the chunks on a loopback cluster of ``jobs``
    workers, or on the cluster at ``scheduler``, whose workers load the table from the
    spec's path. ``executor`` None chooses: ``jobs`` worker processes for tabular work of
    several chunks on a machine with several cores, this process otherwise (the results
    are the same either way). ``meanwhile`` runs once the work is under way
    (:func:`harness.executors.run_chunks`).
    """
    work = [(s, seed) for s in range(len(spec.strategies)) for seed in spec.seeds]
    trains = benchmark.evaluator.trains
    # a run that trains (live evaluations, a supernet) takes minutes: one per chunk, so a
    # kill loses little and a resumed experiment redoes only unfinished runs
    long_runs = trains or any(needs_one_shot(s.kind) for s in spec.strategies)
    size = 1 if long_runs else TABULAR_CHUNK
    chunks = [work[i : i + size] for i in range(0, len(work), size)]
    done = _resumed(spec, chunks, store)
    progress = _Progress(len(work), sum(len(c) for c in done.values()))

    def finished(index: int, outcomes: list[RunOutcome]) -> None:
        if store is not None:
            store.save(index, _chunk_arrays(outcomes))
        done[index] = outcomes
        progress.advance(len(outcomes))

    pending = [(i, chunk) for i, chunk in enumerate(chunks) if i not in done]
    if executor is None:
        several = len(pending) > 1 and (os.cpu_count() or 1) > 1 and not trains
        executor = "processes" if several else "serial"
    if executor == "serial" or (executor == "processes" and jobs == 1):
        strategies = spec.strategies
        run_chunks(
            lambda chunk: [benchmark.run(strategies[s], seed) for s, seed in chunk],
            pending,
            finished,
            meanwhile=meanwhile,
        )
    else:
        # forked workers share this process's memory: a table lookup's benchmark they take
        # as it is, instead of loading the table again (workers started otherwise, or on
        # Dask, would be sent a copy of it; a training one may hold thread pools a fork
        # must not inherit: those load their own)
        forks = (
            executor == "processes" and not trains and multiprocessing.get_start_method() == "fork"
        )
        run_chunks(
            _run_chunk,
            pending,
            finished,
            executor=executor,
            workers=jobs,
            initializer=_init_worker,
            initargs=(spec, benchmark.evaluator_setup, benchmark if forks else None),
            scheduler=scheduler,
            fingerprint=source_sha256,
            meanwhile=meanwhile,
        )
    return [outcome for i in range(len(chunks)) for outcome in done[i]]


def _resumed(
    spec: ExperimentSpec, chunks: list[list[tuple[int, int]]], store: ChunkStore | None
) -> dict[int, list[RunOutcome]]:
    """The stored chunks that hold exactly the runs their place in ``chunks`` names; any
    other (a chunk that reads back as other runs, or not at all) is dropped and redone."""
    done: dict[int, list[RunOutcome]] = {}
    for index, arrays in (store.load() if store else {}).items():
        jobs = chunks[index] if index < len(chunks) else []
        expected = [(spec.strategies[s].name, seed) for s, seed in jobs]
        try:
            outcomes = _chunk_outcomes(arrays)
            found = [(o.strategy, o.seed) for o in outcomes]
        except Exception:  # noqa: BLE001 - any malformed content: the chunk is redone
            found = None
        if not expected or found != expected:
            log.info("harness: stored chunk %d holds other runs than expected; redoing it", index)
            assert store is not None
            store.drop(index)
            continue
        done[index] = outcomes
    return done


class _Progress:
    """Runs done, rate and ETA, logged every few seconds (live runs take hours)."""

    def __init__(self, total: int, done: int) -> None:
        self.total, self.done, self.at_start = total, done, done
        self.started = self.last = time.perf_counter()

    def advance(self, runs: int) -> None:
        self.done += runs
        now = time.perf_counter()
        if now - self.last < PROGRESS_EVERY_S and self.done < self.total:
            return
        self.last = now
        rate = (self.done - self.at_start) / max(now - self.started, 1e-9)
        eta = (self.total - self.done) / rate if rate > 0 else float("inf")
        log.info(
            "harness: %d/%d runs (%.1f%%), %.2f runs/s, ETA %s",
            self.done,
            self.total,
            100 * self.done / self.total,
            rate,
            time.strftime("%H:%M:%S", time.gmtime(eta)) if eta != float("inf") else "?",
        )

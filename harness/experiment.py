"""An experiment: a spec expanded into runs (strategy x seed), executed, summarised.

Each run is independent and fully determined by (spec, table, strategy, master seed),
so the executor (serial or worker processes) and the worker count cannot change any
result. Results come back in spec order whatever order the runs finish in.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness.config import at, spec_error
from harness.errors import ConfigError, StrategyError, TableError
from harness.evaluators.base import Evaluator
from harness.evaluators.tabular import TableCosts, TabularEvaluator, resolve_metric
from harness.importers import build_table
from harness.seeding import describe_streams, stream_generator
from harness.simulator import RunResult, simulate
from harness.spaces import get_space
from harness.spec import ExperimentSpec, StrategySpec
from harness.strategies import make_strategy
from harness.table import Table

log = logging.getLogger(__name__)

#: the random streams a run draws from
RUN_STREAMS = ("strategy", "benchmark")
EXECUTORS = ("serial", "processes")


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
    return Table.load(path, expected_sha256=spec.table_sha256)


@dataclass(frozen=True)
class LiveSetup:
    """Run live instead of looking up: train under the table's own protocol on this data."""

    data_root: Path | None = None
    split_dir: Path | None = None


class Benchmark:
    """The table, the space and the search protocol's evaluator, shared by all runs.

    With ``live`` set, evaluations are trained under the protocol the table stores, so
    the same spec runs on the table or live under the identical protocol; report targets
    are then measured live too, and the optimal row stays the table's.
    """

    def __init__(self, spec: ExperimentSpec, table: Table, live: LiveSetup | None = None) -> None:
        try:
            self._setup(spec, table, live)
        except ConfigError as error:
            raise spec_error(spec.path, error) from None

    def _setup(self, spec: ExperimentSpec, table: Table, live: LiveSetup | None) -> None:
        self.spec, self.table, self.live = spec, table, live
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
        self.targets = {t.label: resolve_metric(table, t.ref) for t in spec.targets}
        for label, vector in self.targets.items():
            if np.isnan(vector).any():
                raise TableError(
                    f"{table.path}: report target {label!r} is missing for "
                    f"{int(np.isnan(vector).sum())} architectures"
                )
        if live is None:
            if search.cost == "live":
                raise ConfigError(
                    "'live' charges this run's measured training time: run it with "
                    "`--evaluator live`, or charge the table's costs (cost = 'table')",
                    "search.cost",
                )
            self.evaluator: Evaluator = TabularEvaluator(table, self.space, search, (search.epoch,))
        else:
            self.evaluator = self._live_evaluator(spec, table, live)
        if not self.evaluator.has_costs and spec.budget.seconds is not None:
            raise ConfigError(
                f"table {table.path} records no training times, so evaluations cost no "
                "simulated seconds: budget this search in evaluations or epochs",
                "budget.seconds",
            )

    def _live_evaluator(self, spec: ExperimentSpec, table: Table, live: LiveSetup) -> Evaluator:
        # imported here: torch takes seconds to import
        from harness.evaluators.live import LiveEvaluator
        from harness.protocol import table_protocol
        from harness.train import open_dataset

        protocol = table_protocol(table.protocol, table.path)
        search = spec.search
        costs, seeds = None, ()
        if search.cost == "table":
            signal = search.signal
            seeds = table.variable(
                signal.dataset, signal.schedule, signal.split, signal.metric
            ).seeds
            costs = TableCosts(table, search, (search.epoch,), seeds)
        evaluator = LiveEvaluator(
            protocol,
            open_dataset(protocol, live.data_root, live.split_dir),
            self.space,
            search,
            costs,
            seeds,
        )
        with at("report"):
            evaluator.check_refs(t.ref for t in spec.targets)
        return evaluator

    def optimal(self) -> dict[str, float]:
        """Per target, the best value any architecture reaches (the table's optimal row)."""
        return {label: float(vector.max()) for label, vector in self.targets.items()}

    def run(self, strategy_spec: StrategySpec, seed: int) -> RunOutcome:
        """One run: the strategy searches from its master ``seed`` until the budget stops it."""
        try:
            strategy = make_strategy(
                strategy_spec.kind,
                self.space,
                stream_generator(seed, "strategy"),
                self.spec.search.epoch,
                strategy_spec.params,
            )
            result = simulate(
                strategy,
                self.evaluator,
                stream_generator(seed, "benchmark"),
                self.spec.budget,
                self.spec.workers,
            )
        except StrategyError as error:
            raise StrategyError(f"[strategy {strategy_spec.name!r}] seed {seed}: {error}") from None
        except ConfigError as error:
            raise spec_error(self.spec.path, error) from None
        targets = self.evaluator.final_metrics(
            result.incumbent_arch, {t.label: t.ref for t in self.spec.targets}
        )
        return RunOutcome(
            strategy=strategy_spec.name,
            seed=seed,
            result=result,
            targets=targets,
            streams=describe_streams(seed, RUN_STREAMS),
        )


_worker_benchmark: Benchmark | None = None


def _init_worker(spec: ExperimentSpec, live: LiveSetup | None) -> None:
    global _worker_benchmark
    _worker_benchmark = Benchmark(spec, Table.load(spec.table_path, spec.table_sha256), live)


def _run_chunk(jobs: list[tuple[int, int]]) -> list[RunOutcome]:
    assert _worker_benchmark is not None
    strategies = _worker_benchmark.spec.strategies
    return [_worker_benchmark.run(strategies[s], seed) for s, seed in jobs]


def run_experiment(
    spec: ExperimentSpec, benchmark: Benchmark, executor: str = "serial", jobs: int = 1
) -> list[RunOutcome]:
    """All runs of the spec, in spec order (strategy, then seed)."""
    with at("executor"):
        if executor not in EXECUTORS:
            raise ConfigError(f"must be one of {', '.join(EXECUTORS)}, got {executor!r}")
    if jobs < 1:
        raise ConfigError(f"must be at least 1, got {jobs}", "jobs")
    work = [(s, seed) for s in range(len(spec.strategies)) for seed in spec.seeds]
    if executor == "serial" or jobs == 1:
        return [benchmark.run(spec.strategies[s], seed) for s, seed in work]
    chunks = list(_chunks(work, max(1, len(work) // (jobs * 4))))
    with ProcessPoolExecutor(
        max_workers=jobs, initializer=_init_worker, initargs=(spec, benchmark.live)
    ) as pool:
        return [outcome for chunk in pool.map(_run_chunk, chunks) for outcome in chunk]


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]

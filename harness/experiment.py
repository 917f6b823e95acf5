"""An experiment: a spec expanded into runs (strategy x seed), executed, summarised.

Each run is independent and fully determined by (spec, table, strategy, master seed),
so the executor (serial or worker processes) and the worker count cannot change any
result. Results come back in spec order whatever order the runs finish in.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from harness.errors import TableError
from harness.evaluators.tabular import TabularEvaluator, resolve_metric
from harness.seeding import describe_streams, stream_generator
from harness.simulator import RunResult, simulate
from harness.spaces import get_space
from harness.spec import ExperimentSpec, StrategySpec
from harness.strategies import make_strategy
from harness.table import Table

if TYPE_CHECKING:
    from harness.evaluators.live import LiveEvaluator

#: the random streams a tabular run draws from
TABULAR_STREAMS = ("strategy", "benchmark")


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
        from harness.importers.nb201 import build_nb201_table

        source = Path(spec.table_build["source"])
        print(f"harness: building table {path} from {source}", file=sys.stderr)
        path.parent.mkdir(parents=True, exist_ok=True)
        build_nb201_table(source, path)
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
        if table.space != "nb201":
            raise TableError(
                f"{table.path}: space {table.space!r} is not supported; expected nb201"
            )
        self.spec = spec
        self.table = table
        self.space = get_space()
        if tuple(table.archs) != tuple(
            self.space.string_of_index(i) for i in range(len(table.archs))
        ):
            raise TableError(
                f"{table.path}: architecture order differs from the NB201 official index order; "
                "rebuild the table with `harness import`"
            )
        self.live = live
        self.targets = {t.label: resolve_metric(table, t.ref) for t in spec.targets}
        for label, vector in self.targets.items():
            if np.isnan(vector).any():
                raise TableError(
                    f"{table.path}: report target {label!r} is missing for "
                    f"{int(np.isnan(vector).sum())} architectures"
                )
        if live is not None:  # imported here: torch takes seconds to import
            from harness.evaluators.live import LiveEvaluator
            from harness.protocol import table_protocol
            from harness.train import open_dataset

            protocol = table_protocol(table.protocol, table.path)
            self.evaluator: TabularEvaluator | LiveEvaluator = LiveEvaluator(
                protocol,
                open_dataset(protocol, live.data_root, live.split_dir),
                signal=spec.signal,
                visible=spec.visible,
                sealed=spec.sealed,
                seed_policy=spec.seed_policy,
                include_validation_time=spec.include_validation_time,
            )
            self.evaluator.check_refs(t.ref for t in spec.targets)
            return
        self.evaluator = TabularEvaluator(
            table,
            dataset=spec.dataset,
            schedule=spec.schedule,
            signal=spec.signal,
            visible=spec.visible,
            sealed=spec.sealed,
            epochs=(spec.epoch,),
            seed_policy=spec.seed_policy,
            include_validation_time=spec.include_validation_time,
        )

    def optimal(self) -> dict[str, float]:
        """Per target, the best value any architecture reaches (the table's optimal row)."""
        return {label: float(vector.max()) for label, vector in self.targets.items()}

    def run(self, strategy_spec: StrategySpec, seed: int) -> RunOutcome:
        strategy = make_strategy(
            strategy_spec.kind,
            self.space,
            stream_generator(seed, "strategy"),
            self.spec.epoch,
            strategy_spec.params,
        )
        benchmark_rng = stream_generator(seed, "benchmark")
        evaluate = self.evaluator.evaluate
        result = simulate(
            strategy,
            lambda proposal: evaluate(proposal, benchmark_rng),
            self.spec.budget,
            self.spec.workers,
        )
        arch = result.incumbent_arch
        if self.live is not None:
            targets = self.evaluator.measure(arch, {t.label: t.ref for t in self.spec.targets})
        else:
            targets = {label: float(vector[arch]) for label, vector in self.targets.items()}
        return RunOutcome(
            strategy=strategy_spec.name,
            seed=seed,
            result=result,
            targets=targets,
            streams=describe_streams(seed, TABULAR_STREAMS),
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
    work = [(s, seed) for s in range(len(spec.strategies)) for seed in spec.seeds]
    if executor == "serial" or jobs == 1:
        return [benchmark.run(spec.strategies[s], seed) for s, seed in work]
    chunks = list(_chunks(work, max(1, len(work) // (jobs * 4))))
    with ProcessPoolExecutor(
        max_workers=jobs, initializer=_init_worker, initargs=(spec, benchmark.live)
    ) as pool:
        return [outcome for chunk in pool.map(_run_chunk, chunks) for outcome in chunk]


def _chunks(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]

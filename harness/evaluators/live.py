"""The live evaluator: answers an evaluation by training the cell under the protocol.

It takes the same inputs as the tabular evaluator and returns the same observation type,
so a strategy runs unchanged on a table or live. The metrics it reads are the table's
variable names (``dataset/schedule/split/metric``) of the protocol's own dataset and
schedule. Like ``harness tabulate``, it trains a cell as its isomorphism class
representative, so a live run and a run on the table built under the same protocol see
the same numbers. Trainings are deterministic, so an evaluation repeated within a run is
answered from memory.

A fidelity ``e`` is the first ``e`` epochs of the protocol's full schedule (training stops
there; the learning-rate curve is the full schedule's), for every ``e`` up to the search
protocol's epoch (and, when the table's costs are charged, that the table costs). A
continued training is the same seed's training carried on: it is answered by that seed's
curves, which a deterministic training shares between its first ``e1`` and first ``e2``
epochs, and charged only the epochs it adds.

The cost follows the one definition in :mod:`harness.evaluators.base`. With
``cost = "live"`` it is this run's measured wall-clock time; with ``cost = "table"`` it
is the table's recorded cost of the same training, so a live re-run of a tabular
experiment follows the same trajectory, and the measured time is kept in the record
(``measured_s``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

from harness.config import at
from harness.data import Dataset
from harness.errors import ConfigError, TableError
from harness.evaluators.base import Evaluator, EvaluatorSetup, draw_slot
from harness.evaluators.tabular import TableCosts, table_fidelities
from harness.protocol import Protocol, table_protocol
from harness.spaces.base import SearchSpace
from harness.table import Table
from harness.train import Curves, check_dataset, open_dataset, train_cell
from harness.values import MetricRef, Observation, Proposal, Resume, SearchProtocol


class LiveEvaluator(Evaluator):
    """Evaluations answered by deterministic PyTorch training under ``protocol``.

    ``table_costs`` (with ``table_seeds``, the table's seed labels) is required when the
    search protocol charges the table's costs.
    """

    trains = True

    @classmethod
    def for_benchmark(
        cls,
        table: Table,
        space: SearchSpace,
        search: SearchProtocol,
        setup: EvaluatorSetup,
        report: Iterable[MetricRef],
    ) -> LiveEvaluator:
        """Train under the protocol ``table`` stores, on the data ``setup`` locates."""
        protocol = table_protocol(table.protocol, table.path)
        costs, seeds = None, ()
        if search.cost == "table":
            signal = search.signal
            seeds = table.variable(
                signal.dataset, signal.schedule, signal.split, signal.metric
            ).seeds
            costs = TableCosts(table, search, table_fidelities(table, search), seeds)
        evaluator = cls(
            protocol,
            open_dataset(protocol, setup.data_root, setup.split_dir),
            space,
            search,
            costs,
            seeds,
        )
        with at("report"):
            evaluator.check_refs(report)
        return evaluator

    def __init__(
        self,
        protocol: Protocol,
        dataset: Dataset,
        space: SearchSpace,
        search: SearchProtocol,
        table_costs: TableCosts | None = None,
        table_seeds: tuple[str, ...] = (),
    ) -> None:
        check_dataset(protocol, dataset)
        self.protocol, self.dataset, self.space, self.search = protocol, dataset, space, search
        charged = table_costs.epochs if table_costs is not None and search.cost == "table" else None
        self.fidelities = tuple(
            e
            for e in range(1, min(protocol.epochs, search.epoch) + 1)
            if charged is None or e in charged
        )
        self.check_refs((search.signal, *search.visible.values(), *search.sealed.values()))
        policy = search.seed_policy
        if policy.kind == "fixed" and policy.seed not in {str(s) for s in protocol.seeds}:
            raise ConfigError(
                f"seed {policy.seed} is not among the protocol's seeds {list(protocol.seeds)}",
                "search.seed",
            )
        self.table_costs = table_costs
        if search.cost == "table":
            if table_costs is None:
                raise ConfigError("'table' needs the table's costs", "search.cost")
            labels = tuple(str(s) for s in protocol.seeds)
            if policy.kind != "mean" and table_seeds != labels:
                raise TableError(
                    f"the table's seeds {list(table_seeds)} are not the protocol's {list(labels)}, "
                    "so the table's cost of one seed's training is unknown"
                )
        self._trained: dict[tuple[int, int, int], Curves] = {}

    def check_refs(self, refs: Iterable[MetricRef]) -> None:
        """Live training measures only the protocol's own dataset and schedule."""
        protocol = self.protocol
        for ref in refs:
            if (ref.dataset, ref.schedule) != (protocol.dataset, protocol.schedule):
                raise ConfigError(
                    f"live evaluation trains {protocol.dataset}/{protocol.schedule}; "
                    f"it cannot measure {ref}"
                )

    def final_metrics(self, arch: int, refs: Mapping[str, MetricRef]) -> dict[str, float]:
        """Full-schedule values of ``refs`` for ``arch``, mean over every protocol seed."""
        self.check_refs(refs.values())
        epochs = self.protocol.epochs
        runs = [self._curves(arch, seed, epochs) for seed in self.protocol.seeds]
        return {
            name: float(np.mean([run.at(ref.split, ref.metric, epochs) for run in runs]))
            for name, ref in refs.items()
        }

    def _curves(self, arch: int, seed: int, epoch: int) -> Curves:
        """The curves of ``epoch`` epochs of training; a longer training of the same seed
        already in memory holds them (the schedule, not the epoch count, fixes them)."""
        key = (int(self.space.isomorphism_classes()[arch]), seed, epoch)
        longer = [k for k in self._trained if k[:2] == key[:2] and k[2] >= epoch]
        if longer:
            return self._trained[min(longer)]
        if key not in self._trained:
            self._trained[key] = train_cell(
                self.space, key[0], self.protocol, self.dataset, seed, epoch
            )
        return self._trained[key]

    def _seed_indices(self, rng: np.random.Generator) -> tuple[int, ...]:
        policy = self.search.seed_policy
        labels = [str(s) for s in self.protocol.seeds]
        if policy.kind == "mean":
            return tuple(range(len(labels)))
        if policy.kind == "fixed":
            return (labels.index(policy.seed),)
        return (draw_slot(np.ones(len(labels), dtype=bool), rng),)

    def evaluate(
        self, proposal: Proposal, rng: np.random.Generator, resume: Resume | None = None
    ) -> Observation:
        """Train (or recall) the proposal; ``rng`` is the run's benchmark stream (a continued
        training keeps its seed and draws nothing)."""
        arch, epoch = proposal.arch, proposal.epoch
        since = 0 if resume is None else resume.epoch
        if resume is None:
            chosen = self._seed_indices(rng)
        elif resume.seed == "mean":
            chosen = tuple(range(len(self.protocol.seeds)))
        else:
            chosen = ([str(s) for s in self.protocol.seeds].index(resume.seed),)
        runs = [self._curves(arch, self.protocol.seeds[i], epoch) for i in chosen]
        signal = self.search.signal

        def mean(split: str, metric: str, at: int = epoch) -> float:
            return float(np.mean([run.at(split, metric, at) for run in runs]))

        measured = sum(mean("train", "epoch_time_s", e) for e in range(since + 1, epoch + 1))
        if self.search.include_validation_time:
            measured += mean(signal.split, "eval_time_s")
        by_mean = self.search.seed_policy.kind == "mean"
        measured_s = None
        cost = measured
        if self.table_costs is not None and self.search.cost == "table":
            cost = self.table_costs.cost(arch, epoch, None if by_mean else chosen[0], since)
            measured_s = measured
        return Observation(
            arch=arch,
            epoch=epoch,
            signal=mean(signal.split, signal.metric),
            cost_s=cost,
            metrics={name: mean(r.split, r.metric) for name, r in self.search.visible.items()},
            sealed={name: mean(r.split, r.metric) for name, r in self.search.sealed.items()},
            signal_curve=tuple(mean(signal.split, signal.metric, e) for e in range(1, epoch + 1)),
            seed="mean" if by_mean else str(self.protocol.seeds[chosen[0]]),
            measured_s=measured_s,
            resumed_from=since,
        )

"""The evaluator interface: "train this architecture to this fidelity", tabular or live.

Both evaluators take the same inputs (a proposal and the run's benchmark stream) and
return the same :class:`~harness.values.Observation`, so a strategy, the simulator and
the records cannot tell them apart.

**Which training answers** is the search protocol's seed policy: ``mean`` averages every
seed the benchmark holds for the cell, ``draw`` picks one with the run's benchmark stream
(:func:`draw_slot`, shared by both evaluators so they draw the same seed), ``fixed``
always uses the named seed.

**What an evaluation costs** has one definition under every seed policy: the training
time, up to the evaluated epoch, of the training(s) that answered, averaged over them
(one training's time), plus the same average of the validation pass at that epoch when
the protocol charges it. Per epoch::

    cost = sum over epochs e' <= e of mean over answering seeds s of train_time[s, e']
           (+ mean over s of eval_time[s, e])

So ``mean`` charges the seed-mean time and ``draw``/``fixed`` the chosen seed's own time.
A table recording one time per cell (NATS-Bench's synthetic times, seed label ``mean``)
charges that time whichever seed answers. A table with no times at all charges nothing,
and its runs must be budgeted in evaluations or epochs.

**Fidelities** are epochs of the protocol's schedule: a proposal for epoch ``e`` is the
state of a full-schedule training after ``e`` epochs (the schedule, not ``e``, fixes the
learning-rate curve). A benchmark evaluates every epoch up to the search protocol's
``epoch`` that it measures (:attr:`Evaluator.fidelities`).

**A continued training** (a :class:`~harness.values.Resume`: trained to ``e1`` with seed
``s``) is answered by the same training, seed ``s``, at ``e2``, and charges only what
the continuation adds: the training epochs ``e1 + 1 .. e2`` and, when the protocol
charges it, the validation pass at ``e2`` (the pass at ``e1`` was paid then)::

    cost = train_cost(e2) - train_cost(e1)  (+ eval_time[s, e2])

Without validation time this is exactly ``cost(e2) - cost(e1)``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from harness.errors import ConfigError
from harness.spaces.base import SearchSpace
from harness.table import Table
from harness.values import MetricRef, Observation, Proposal, Resume, SearchProtocol


@dataclass(frozen=True)
class EvaluatorSetup:
    """Which evaluator answers a benchmark's runs (a kind of :mod:`harness.evaluators`),
    and where an evaluator that trains finds its data."""

    kind: str = "tabular"
    data_root: Path | None = None
    split_dir: Path | None = None


def draw_slot(available: np.ndarray, rng: np.random.Generator) -> int:
    """The seed slot a ``draw`` policy uses: uniform over the available slots (one call)."""
    candidates = np.flatnonzero(available)
    return int(candidates[rng.integers(candidates.size)])


class Evaluator(ABC):
    """Answers evaluations of one benchmark under one search protocol."""

    space: SearchSpace
    #: the epochs a proposal may ask for
    fidelities: tuple[int, ...]
    #: whether evaluations cost simulated seconds (False: the benchmark records no times)
    has_costs: bool = True
    #: whether an evaluation trains (minutes each): then a run's values are its own
    #: trainings', not the table's, and runs go one per chunk so a kill loses little
    trains: ClassVar[bool] = False

    @classmethod
    def for_benchmark(
        cls,
        table: Table,
        space: SearchSpace,
        search: SearchProtocol,
        setup: EvaluatorSetup,
        report: Iterable[MetricRef],
    ) -> Evaluator:
        """The evaluator of ``table``'s benchmark under ``search``; ``report`` are the
        metrics the runs' final architectures are reported on (ConfigError if it cannot
        measure one). An evaluator a spec names must implement it."""
        raise ConfigError(
            f"evaluator {cls.__name__} cannot be named in a spec: it does not implement "
            "for_benchmark"
        )

    @abstractmethod
    def evaluate(
        self, proposal: Proposal, rng: np.random.Generator, resume: Resume | None = None
    ) -> Observation:
        """Answer one evaluation; ``rng`` is the run's benchmark stream; ``resume`` says
        which training it continues (None: a new training, whose seed the policy picks)."""

    @abstractmethod
    def final_metrics(self, arch: int, refs: Mapping[str, MetricRef]) -> dict[str, float]:
        """Full-schedule seed-mean values of ``refs`` for ``arch`` (a run's report targets)."""

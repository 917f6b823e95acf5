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
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping

import numpy as np

from harness.spaces.base import SearchSpace
from harness.values import MetricRef, Observation, Proposal


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

    @abstractmethod
    def evaluate(self, proposal: Proposal, rng: np.random.Generator) -> Observation:
        """Answer one evaluation; ``rng`` is the run's benchmark stream."""

    @abstractmethod
    def final_metrics(self, arch: int, refs: Mapping[str, MetricRef]) -> dict[str, float]:
        """Full-schedule seed-mean values of ``refs`` for ``arch`` (a run's report targets)."""

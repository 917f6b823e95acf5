"""The live evaluator: answers an evaluation by training the cell under the protocol.

It takes the same inputs as the tabular evaluator and returns the same observation type,
so a strategy runs unchanged on a table or live. The metrics it reads are the table's
variable names (``dataset/schedule/split/metric``) of the protocol's own dataset and
schedule; the cost is the measured wall-clock training time up to the evaluated epoch
(plus the validation pass, if the protocol charges it). Like ``harness tabulate``, it
trains a cell as its isomorphism class representative, so a live run and a run on the
table built under the same protocol see the same numbers. Trainings are deterministic, so
an evaluation repeated within a run is answered from memory at the first one's cost.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

from harness.data import Dataset
from harness.errors import SpecError
from harness.evaluators.observation import Observation, Proposal, VisibleObservation
from harness.evaluators.tabular import MetricRef, SeedPolicy
from harness.protocol import Protocol
from harness.spaces import get_space
from harness.train import Curves, check_dataset, train_cell


class LiveEvaluator:
    """Evaluations answered by deterministic PyTorch training under ``protocol``."""

    def __init__(
        self,
        protocol: Protocol,
        dataset: Dataset,
        *,
        signal: MetricRef,
        visible: Mapping[str, MetricRef],
        sealed: Mapping[str, MetricRef],
        seed_policy: SeedPolicy,
        include_validation_time: bool,
    ) -> None:
        check_dataset(protocol, dataset)
        self.protocol, self.dataset = protocol, dataset
        self.check_refs((signal, *visible.values(), *sealed.values()))
        if seed_policy.kind == "fixed" and int(seed_policy.seed) not in protocol.seeds:
            raise SpecError(
                f"seed {seed_policy.seed} is not among the protocol's seeds {list(protocol.seeds)}"
            )
        self.signal, self.visible, self.sealed = signal, dict(visible), dict(sealed)
        self.policy = seed_policy
        self.include_validation_time = include_validation_time
        self._trained: dict[tuple[int, int, int], Curves] = {}

    def check_refs(self, refs: Iterable[MetricRef]) -> None:
        """Live training measures only the protocol's own dataset and schedule."""
        protocol = self.protocol
        for ref in refs:
            if (ref.dataset, ref.schedule) != (protocol.dataset, protocol.schedule):
                raise SpecError(
                    f"live evaluation trains {protocol.dataset}/{protocol.schedule}; "
                    f"it cannot measure {ref}"
                )

    def measure(self, arch: int, refs: Mapping[str, MetricRef]) -> dict[str, float]:
        """Full-schedule values of ``refs`` for ``arch``, mean over every protocol seed."""
        epochs = self.protocol.epochs
        runs = [self._curves(arch, seed, epochs) for seed in self.protocol.seeds]
        return {
            name: float(np.mean([run.at(ref.split, ref.metric, epochs) for run in runs]))
            for name, ref in refs.items()
        }

    def _curves(self, arch: int, seed: int, epoch: int) -> Curves:
        space = get_space()
        key = (int(space.isomorphism_classes()[arch]), seed, epoch)
        if key not in self._trained:
            ops = space.ops_of_index(key[0])
            self._trained[key] = train_cell(ops, self.protocol, self.dataset, seed, epoch)
        return self._trained[key]

    def _seeds(self, rng: np.random.Generator) -> tuple[int, ...]:
        if self.policy.kind == "mean":
            return self.protocol.seeds
        if self.policy.kind == "fixed":
            return (int(self.policy.seed),)
        return (self.protocol.seeds[int(rng.integers(len(self.protocol.seeds)))],)

    def evaluate(self, proposal: Proposal, rng: np.random.Generator) -> Observation:
        """Train (or recall) the proposal; ``rng`` is the run's benchmark stream."""
        arch, epoch = proposal.arch, proposal.epoch
        runs = [self._curves(arch, seed, epoch) for seed in self._seeds(rng)]

        def mean(ref: MetricRef) -> float:
            return float(np.mean([run.at(ref.split, ref.metric, epoch) for run in runs]))

        cost = 0.0
        for run in runs:
            cost += sum(run.values[("train", "epoch_time_s")][:epoch])
            if self.include_validation_time:
                cost += run.at(self.signal.split, "eval_time_s", epoch)
        visible = VisibleObservation(
            arch=arch,
            epoch=epoch,
            signal=mean(self.signal),
            cost_s=cost,
            metrics={name: mean(ref) for name, ref in self.visible.items()},
            signal_curve=tuple(
                float(np.mean([run.at(self.signal.split, self.signal.metric, e) for run in runs]))
                for e in range(1, epoch + 1)
            ),
        )
        return Observation(visible, {name: mean(ref) for name, ref in self.sealed.items()})

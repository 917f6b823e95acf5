"""The tabular evaluator: answers an evaluation by looking it up in a benchmark table.

Every lookup vector is resolved once, when the evaluator is built, so a query is a few
numpy indexings. Which seed of the table answers a query is an explicit, recorded
policy (:class:`SeedPolicy`); a cell the table lacks is an error, never a fallback.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from harness.errors import SpecError, TableError
from harness.evaluators.observation import Observation, Proposal, VisibleObservation
from harness.table import Table, Variable

SEED_POLICIES = ("mean", "draw", "fixed")


@dataclass(frozen=True)
class MetricRef:
    """Names one table variable: ``dataset/schedule/split/metric``."""

    dataset: str
    schedule: str
    split: str
    metric: str

    @classmethod
    def parse(cls, text: str, where: str) -> MetricRef:
        parts = text.split("/") if isinstance(text, str) else []
        if len(parts) != 4 or not all(parts):
            raise SpecError(
                f"{where}: expected 'dataset/schedule/split/metric' "
                f"(e.g. 'cifar10/hp200/ori-test/accuracy'), got {text!r}"
            )
        return cls(*parts)

    def __str__(self) -> str:
        return f"{self.dataset}/{self.schedule}/{self.split}/{self.metric}"


@dataclass(frozen=True)
class SeedPolicy:
    """Which table seed answers a query.

    ``mean``: the mean over the seeds the table holds for that cell; ``draw``: one of the
    cell's seeds, drawn from the run's own benchmark stream; ``fixed``: always ``seed``.
    """

    kind: str = "mean"
    seed: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in SEED_POLICIES:
            raise SpecError(
                f"[search] seed_policy must be one of {', '.join(SEED_POLICIES)}, got {self.kind!r}"
            )
        if (self.kind == "fixed") != (self.seed is not None):
            raise SpecError("[search] seed is required with seed_policy = 'fixed' and only then")


def _epoch_index(variable: Variable, epoch: int, ref: MetricRef) -> int:
    if epoch not in variable.epochs:
        raise TableError(
            f"table variable {ref} has no epoch {epoch} (it holds epochs "
            f"{list(variable.epochs)[:5]}{'...' if len(variable.epochs) > 5 else ''})"
        )
    return variable.epochs.index(epoch)


def resolve_metric(table: Table, ref: MetricRef, epoch: int | None = None) -> np.ndarray:
    """Seed-mean value of ``ref`` for every architecture (last epoch if none is given)."""
    variable = table.variable(ref.dataset, ref.schedule, ref.split, ref.metric)
    index = len(variable.epochs) - 1 if epoch is None else _epoch_index(variable, epoch, ref)
    return variable.seed_mean()[:, index]


class _Lookup:
    """One variable at one epoch under a seed policy, as dense per-architecture data."""

    def __init__(self, table: Table, ref: MetricRef, epoch: int, policy: SeedPolicy) -> None:
        variable = table.variable(ref.dataset, ref.schedule, ref.split, ref.metric)
        self.ref = ref
        index = _epoch_index(variable, epoch, ref)
        self.seeds = variable.seeds
        if policy.kind == "mean":
            self.vector: np.ndarray | None = variable.seed_mean()[:, index]
        elif policy.kind == "fixed":
            if policy.seed not in variable.seeds:
                raise TableError(
                    f"table variable {ref} has no seed {policy.seed!r} "
                    f"(seeds: {', '.join(variable.seeds)})"
                )
            slot = variable.seeds.index(policy.seed)
            masked = variable.mask[:, slot, index]
            self.vector = np.where(masked, variable.values[:, slot, index], np.nan).astype(
                np.float64
            )
        else:
            if "mean" in variable.seeds:
                raise TableError(
                    f"table variable {ref} holds only seed means, so seed_policy 'draw' "
                    "cannot pick a seed; use seed_policy = 'mean'"
                )
            self.vector = None
            self.values = variable.values[:, :, index].astype(np.float64)
            self.mask = variable.mask[:, :, index]

    def value(self, arch: int, slot: int | None) -> float:
        value = self.vector[arch] if self.vector is not None else self.values[arch, slot]
        if value != value:  # NaN: the table lacks this cell
            raise TableError(
                f"table has no value of {self.ref} for architecture {arch}; "
                "choose a benchmark variable that covers every cell"
            )
        return float(value)


class TabularEvaluator:
    """Evaluations answered by a table under the search protocol.

    ``signal`` is what the strategy optimises (visible); ``visible`` and ``sealed`` map
    recorded names to variables; ``cost`` is the training time up to the evaluated
    epoch, plus the validation pass when the table holds its time and the protocol asks
    for it.
    """

    def __init__(
        self,
        table: Table,
        *,
        dataset: str,
        schedule: str,
        signal: MetricRef,
        visible: Mapping[str, MetricRef],
        sealed: Mapping[str, MetricRef],
        epochs: tuple[int, ...],
        seed_policy: SeedPolicy,
        include_validation_time: bool,
    ) -> None:
        self.policy = seed_policy
        train_time = table.variable(dataset, schedule, "train", "epoch_time_s")
        self._lookups: dict[int, tuple[_Lookup, dict[str, _Lookup], dict[str, _Lookup]]] = {}
        self._cost: dict[int, np.ndarray] = {}
        signal_variable = table.variable(
            signal.dataset, signal.schedule, signal.split, signal.metric
        )
        self._curves = {
            epoch: [
                _Lookup(table, signal, e, seed_policy) for e in signal_variable.epochs if e < epoch
            ]
            for epoch in epochs
        }
        for epoch in epochs:
            self._lookups[epoch] = (
                _Lookup(table, signal, epoch, seed_policy),
                {name: _Lookup(table, ref, epoch, seed_policy) for name, ref in visible.items()},
                {name: _Lookup(table, ref, epoch, seed_policy) for name, ref in sealed.items()},
            )
            self._cost[epoch] = self._cost_vector(
                table, train_time, signal, epoch, include_validation_time
            )
        self._draw_seeds = self._lookups[epochs[0]][0].seeds if seed_policy.kind == "draw" else ()
        if seed_policy.kind == "draw":
            for signal_lookup, shown, hidden in self._lookups.values():
                for lookup in (signal_lookup, *shown.values(), *hidden.values()):
                    if lookup.seeds != self._draw_seeds:
                        raise TableError(
                            f"seed_policy 'draw' needs the same seeds in every variable, but "
                            f"{lookup.ref} has {list(lookup.seeds)} and {signal} has "
                            f"{list(self._draw_seeds)}"
                        )

    @staticmethod
    def _cost_vector(
        table: Table, train_time: Variable, signal: MetricRef, epoch: int, with_valid: bool
    ) -> np.ndarray:
        upto = [i for i, e in enumerate(train_time.epochs) if e <= epoch]
        if len(upto) != epoch:
            raise TableError(
                f"table lacks per-epoch training times for epochs 1..{epoch} of "
                f"{signal.dataset}/{signal.schedule}"
            )
        per_epoch = train_time.seed_mean()[:, upto]
        cost = per_epoch.sum(axis=1)
        if with_valid:
            ref = MetricRef(signal.dataset, signal.schedule, signal.split, "eval_time_s")
            cost = cost + resolve_metric(table, ref, epoch)
        return cost

    def evaluate(self, proposal: Proposal, rng: np.random.Generator) -> Observation:
        """Look up one evaluation; ``rng`` is the run's benchmark stream."""
        arch, epoch = proposal.arch, proposal.epoch
        try:
            signal, shown, hidden = self._lookups[epoch]
        except KeyError:
            raise TableError(
                f"the protocol evaluates epochs {sorted(self._lookups)}, not {epoch}"
            ) from None
        slot = None
        if self.policy.kind == "draw":
            available = np.flatnonzero(signal.mask[arch])
            if available.size == 0:
                signal.value(arch, 0)  # raises: no seed of this cell is in the table
            slot = int(available[rng.integers(available.size)])
        cost = float(self._cost[epoch][arch])
        if cost != cost:
            raise TableError(f"table has no training time for architecture {arch}")
        value = signal.value(arch, slot)
        visible = VisibleObservation(
            arch=arch,
            epoch=epoch,
            signal=value,
            cost_s=cost,
            metrics={name: lookup.value(arch, slot) for name, lookup in shown.items()},
            signal_curve=(*(earlier.value(arch, slot) for earlier in self._curves[epoch]), value),
        )
        return Observation(
            visible=visible,
            sealed={name: lookup.value(arch, slot) for name, lookup in hidden.items()},
        )

"""The tabular evaluator: answers an evaluation by looking it up in a benchmark table.

Every lookup vector is resolved once, when the evaluator is built, so a query is a few
numpy indexings. Which seed of the table answers a query is an explicit, recorded
policy; a cell the table lacks is an error, never a fallback. Costs follow the one
definition in :mod:`harness.evaluators.base` (:class:`TableCosts`, which a live run
charging the table's costs uses too).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from harness.errors import ConfigError, TableError
from harness.evaluators.base import Evaluator, draw_slot
from harness.spaces.base import SearchSpace
from harness.table import Table, Variable
from harness.values import MetricRef, Observation, Proposal, SearchProtocol, SeedPolicy


def _epoch_index(variable: Variable, epoch: int, ref: MetricRef) -> int:
    if epoch not in variable.epochs:
        raise TableError(
            f"table variable {ref} has no epoch {epoch} (it holds epochs "
            f"{list(variable.epochs)[:5]}{'...' if len(variable.epochs) > 5 else ''})"
        )
    return variable.epochs.index(epoch)


def _variable(table: Table, ref: MetricRef) -> Variable:
    return table.variable(ref.dataset, ref.schedule, ref.split, ref.metric)


def resolve_metric(table: Table, ref: MetricRef, epoch: int | None = None) -> np.ndarray:
    """Seed-mean value of ``ref`` for every architecture (last epoch if none is given)."""
    variable = _variable(table, ref)
    index = len(variable.epochs) - 1 if epoch is None else _epoch_index(variable, epoch, ref)
    return variable.seed_mean()[:, index]


def _missing(ref: MetricRef | str, arch: int) -> TableError:
    return TableError(
        f"table has no value of {ref} for architecture {arch}; "
        "choose a benchmark variable that covers every cell"
    )


class _Lookup:
    """One variable at one epoch under a seed policy, as dense per-architecture data."""

    def __init__(self, table: Table, ref: MetricRef, epoch: int, policy: SeedPolicy) -> None:
        variable = _variable(table, ref)
        self.ref = ref
        index = _epoch_index(variable, epoch, ref)
        self.seeds = variable.seeds
        self.vector: np.ndarray | None = None
        if policy.kind == "mean":
            self.vector = variable.seed_mean()[:, index]
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
            self.values = variable.values[:, :, index].astype(np.float64)
            self.mask = variable.mask[:, :, index]

    def value(self, arch: int, slot: int | None) -> float:
        value = self.vector[arch] if self.vector is not None else self.values[arch, slot]
        if value != value:  # NaN: the table lacks this cell
            raise _missing(self.ref, arch)
        return float(value)


class TableCosts:
    """The recorded cost of evaluating (arch, epoch) with a seed slot, or the seed mean.

    ``seeds`` are the slots of the signal variable. Per-seed costs need the time
    variables to hold the same seeds; a table recording one time per cell (seed label
    ``mean``) charges it for every slot. A table with no training times for the search
    dataset and schedule charges nothing (:attr:`recorded` is False).
    """

    def __init__(
        self, table: Table, search: SearchProtocol, epochs: tuple[int, ...], seeds: tuple[str, ...]
    ) -> None:
        train_key = (search.dataset, search.schedule, "train", "epoch_time_s")
        self.recorded = train_key in table.variables()
        if not self.recorded:
            if search.include_validation_time:
                raise ConfigError(
                    f"is true, but table {table.path} records no times for "
                    f"{search.dataset}/{search.schedule}; set it to false",
                    "search.include_validation_time",
                )
            return
        train_time = table.variable(*train_key)
        signal = search.signal
        eval_ref = MetricRef(signal.dataset, signal.schedule, signal.split, "eval_time_s")
        eval_time = _variable(table, eval_ref) if search.include_validation_time else None
        self._mean: dict[int, np.ndarray] = {}
        self._per_slot: dict[int, np.ndarray] | None = None
        per_seed = all(v is None or v.seeds == seeds for v in (train_time, eval_time))
        one_time = all(v is None or v.seeds == ("mean",) for v in (train_time, eval_time))
        if search.seed_policy.kind != "mean" and not (per_seed or one_time):
            raise TableError(
                f"table {table.path}: the time variables' seeds {list(train_time.seeds)} "
                f"differ from {signal}'s {list(seeds)}, so the cost of one seed's training "
                "is unknown; use seed_policy = 'mean'"
            )
        if per_seed and not one_time:
            self._per_slot = {}
        for epoch in epochs:
            upto = [i for i, e in enumerate(train_time.epochs) if e <= epoch]
            if len(upto) != epoch:
                raise TableError(
                    f"table lacks per-epoch training times for epochs 1..{epoch} of "
                    f"{search.dataset}/{search.schedule}"
                )
            mean = train_time.seed_mean()[:, upto].sum(axis=1)
            if eval_time is not None:
                mean = mean + resolve_metric(table, eval_ref, epoch)
            self._mean[epoch] = mean
            if self._per_slot is not None:
                slots = train_time.values[:, :, upto].astype(np.float64).sum(axis=2)
                slots[~train_time.mask[:, :, upto].all(axis=2)] = np.nan
                if eval_time is not None:
                    at = _epoch_index(eval_time, epoch, eval_ref)
                    slots = slots + np.where(
                        eval_time.mask[:, :, at], eval_time.values[:, :, at], np.nan
                    )
                self._per_slot[epoch] = slots

    def cost(self, arch: int, epoch: int, slot: int | None) -> float:
        """Seconds charged; ``slot`` None means the seed mean."""
        if not self.recorded:
            return 0.0
        if slot is None or self._per_slot is None:
            value = self._mean[epoch][arch]
        else:
            value = self._per_slot[epoch][arch, slot]
        if value != value:
            raise TableError(f"table has no training time for architecture {arch}")
        return float(value)


class TabularEvaluator(Evaluator):
    """Evaluations answered by a table under the search protocol.

    ``signal`` is what the strategy optimises (visible); ``visible`` and ``sealed`` map
    recorded names to variables; the cost is :class:`TableCosts`'.
    """

    def __init__(
        self, table: Table, space: SearchSpace, search: SearchProtocol, epochs: tuple[int, ...]
    ) -> None:
        self.space = space
        self.fidelities = tuple(epochs)
        self.table = table
        policy = self.policy = search.seed_policy
        signal = search.signal
        self._lookups: dict[int, tuple[_Lookup, dict[str, _Lookup], dict[str, _Lookup]]] = {}
        signal_variable = _variable(table, signal)
        self._curves = {
            epoch: [_Lookup(table, signal, e, policy) for e in signal_variable.epochs if e < epoch]
            for epoch in epochs
        }
        for epoch in epochs:
            self._lookups[epoch] = (
                _Lookup(table, signal, epoch, policy),
                {name: _Lookup(table, ref, epoch, policy) for name, ref in search.visible.items()},
                {name: _Lookup(table, ref, epoch, policy) for name, ref in search.sealed.items()},
            )
        self.seeds = signal_variable.seeds
        if policy.kind == "draw":
            for signal_lookup, shown, hidden in self._lookups.values():
                for lookup in (signal_lookup, *shown.values(), *hidden.values()):
                    if lookup.seeds != self.seeds:
                        raise TableError(
                            f"seed_policy 'draw' needs the same seeds in every variable, but "
                            f"{lookup.ref} has {list(lookup.seeds)} and {signal} has "
                            f"{list(self.seeds)}"
                        )
        self.costs = TableCosts(table, search, self.fidelities, self.seeds)
        self.has_costs = self.costs.recorded
        self._final: dict[MetricRef, np.ndarray] = {}

    def slot(self, arch: int, epoch: int, rng: np.random.Generator) -> int | None:
        """The seed slot answering this query under the policy (None: the seed mean)."""
        if self.policy.kind == "mean":
            return None
        if self.policy.kind == "fixed":
            return self.seeds.index(self.policy.seed)
        signal = self._lookups[epoch][0]
        if not signal.mask[arch].any():
            raise _missing(signal.ref, arch)
        return draw_slot(signal.mask[arch], rng)

    def evaluate(self, proposal: Proposal, rng: np.random.Generator) -> Observation:
        """Look up one evaluation; ``rng`` is the run's benchmark stream."""
        arch, epoch = proposal.arch, proposal.epoch
        signal, shown, hidden = self._lookups[epoch]
        slot = self.slot(arch, epoch, rng)
        cost = self.costs.cost(arch, epoch, slot)
        value = signal.value(arch, slot)
        return Observation(
            arch=arch,
            epoch=epoch,
            signal=value,
            cost_s=cost,
            metrics={name: lookup.value(arch, slot) for name, lookup in shown.items()},
            sealed={name: lookup.value(arch, slot) for name, lookup in hidden.items()},
            signal_curve=(*(earlier.value(arch, slot) for earlier in self._curves[epoch]), value),
            seed="mean" if slot is None else self.seeds[slot],
        )

    def final_metrics(self, arch: int, refs: Mapping[str, MetricRef]) -> dict[str, float]:
        """Seed-mean values at each variable's last epoch, read from the table."""
        values = {}
        for name, ref in refs.items():
            if ref not in self._final:
                self._final[ref] = resolve_metric(self.table, ref)
            value = float(self._final[ref][arch])
            if value != value:
                raise _missing(ref, arch)
            values[name] = value
        return values

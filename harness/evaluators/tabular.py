"""The tabular evaluator: answers an evaluation by looking it up in a benchmark table.

Every lookup vector is resolved once, the first time its epoch is asked for (the search
protocol's own epoch when the evaluator is built), so a query is a few numpy indexings;
the observation of each (architecture, epoch, training) is built once and handed out
again (observations are immutable), so a repeated query is one dict lookup.
Which seed of the table answers a query is an explicit, recorded policy; a cell the table
lacks is an error, never a fallback. Costs follow the one definition in
:mod:`harness.evaluators.base` (:class:`TableCosts`, which a live run charging the
table's costs uses too).

The fidelities are :func:`table_fidelities`: every epoch up to the search protocol's
that the table measures for everything the search reads and charges.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

from harness.errors import ConfigError, TableError
from harness.evaluators.base import Evaluator, EvaluatorSetup, draw_slot
from harness.spaces.base import SearchSpace
from harness.table import Table, Variable
from harness.values import MetricRef, Observation, Proposal, Resume, SearchProtocol, SeedPolicy

#: answers kept per evaluator (an NB201 answer is under 1 KB); beyond it, answers are built
#: for each query
ANSWERS_KEPT = 1 << 16


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
    """One variable at one epoch under a seed policy, as dense per-architecture data.

    ``mean`` is the variable's :meth:`~harness.table.Variable.seed_mean`, when the caller
    already has it (it spans every epoch, so lookups of many epochs share one)."""

    def __init__(
        self,
        table: Table,
        ref: MetricRef,
        epoch: int,
        policy: SeedPolicy,
        mean: np.ndarray | None = None,
    ) -> None:
        variable = _variable(table, ref)
        self.ref = ref
        index = _epoch_index(variable, epoch, ref)
        self.seeds = variable.seeds
        self.vector: np.ndarray | None = None
        if policy.kind == "mean":
            self.vector = (variable.seed_mean() if mean is None else mean)[:, index]
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


def table_fidelities(table: Table, search: SearchProtocol) -> tuple[int, ...]:
    """The epochs a search may evaluate: ``search.epoch`` and every earlier epoch at which
    the table holds the signal, each visible and sealed variable and (where the table
    records times) the training times of epochs 1..e and the validation time the
    protocol charges. The protocol's own epoch is always listed; building the evaluator
    reports what it lacks."""
    refs = (search.signal, *search.visible.values(), *search.sealed.values())
    epochs = [set(_variable(table, ref).epochs) for ref in refs]
    train_key = (search.dataset, search.schedule, "train", "epoch_time_s")
    timed: set[int] | None = None
    if train_key in table.variables():
        recorded = table.variable(*train_key).epochs
        timed = {e for e in recorded if set(range(1, e + 1)) <= set(recorded)}
        if search.include_validation_time:
            signal = search.signal
            eval_key = (signal.dataset, signal.schedule, signal.split, "eval_time_s")
            if eval_key in table.variables():
                timed &= set(table.variable(*eval_key).epochs)
    earlier = [
        e
        for e in sorted(epochs[0])
        if 1 <= e < search.epoch
        and all(e in known for known in epochs)
        and (timed is None or e in timed)
    ]
    return (*earlier, search.epoch)


class TableCosts:
    """The recorded cost of evaluating (arch, epoch) with a seed slot, or the seed mean.

    ``seeds`` are the slots of the signal variable. Per-seed costs need the time
    variables to hold the same seeds; a table recording one time per cell (seed label
    ``mean``) charges it for every slot. A table with no training times for the search
    dataset and schedule charges nothing (:attr:`recorded` is False). The cumulative
    training time of an epoch is summed the first time it is asked for.
    """

    def __init__(
        self, table: Table, search: SearchProtocol, epochs: tuple[int, ...], seeds: tuple[str, ...]
    ) -> None:
        self.epochs = tuple(epochs)
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
        self._table = table
        train_time = self._train = table.variable(*train_key)
        signal = search.signal
        self._eval_ref = MetricRef(signal.dataset, signal.schedule, signal.split, "eval_time_s")
        eval_time = self._eval = (
            _variable(table, self._eval_ref) if search.include_validation_time else None
        )
        self._per_slot = False
        per_seed = all(v is None or v.seeds == seeds for v in (train_time, eval_time))
        one_time = all(v is None or v.seeds == ("mean",) for v in (train_time, eval_time))
        if search.seed_policy.kind != "mean" and not (per_seed or one_time):
            raise TableError(
                f"table {table.path}: the time variables' seeds {list(train_time.seeds)} "
                f"differ from {signal}'s {list(seeds)}, so the cost of one seed's training "
                "is unknown; use seed_policy = 'mean'"
            )
        self._per_slot = per_seed and not one_time
        self._train_mean = train_time.seed_mean()
        for epoch in epochs:
            upto = [e for e in train_time.epochs if e <= epoch]
            if len(upto) != epoch:
                raise TableError(
                    f"table lacks per-epoch training times for epochs 1..{epoch} of "
                    f"{search.dataset}/{search.schedule}"
                )
            if eval_time is not None:
                _epoch_index(eval_time, epoch, self._eval_ref)
        #: epoch -> (seed-mean vector, per-slot matrix or None) of the training time to it
        self._training: dict[int, tuple[np.ndarray, np.ndarray | None]] = {}
        self._validation: dict[int, tuple[np.ndarray, np.ndarray | None]] = {}

    def _trained(self, epoch: int) -> tuple[np.ndarray, np.ndarray | None]:
        """Training time of epochs 1..``epoch``: seed mean and, if per seed, per slot."""
        if epoch not in self._training:
            train_time = self._train
            upto = [i for i, e in enumerate(train_time.epochs) if e <= epoch]
            mean = self._train_mean[:, upto].sum(axis=1)
            slots = None
            if self._per_slot:
                slots = train_time.values[:, :, upto].astype(np.float64).sum(axis=2)
                slots[~train_time.mask[:, :, upto].all(axis=2)] = np.nan
            self._training[epoch] = (mean, slots)
        return self._training[epoch]

    def _validated(self, epoch: int) -> tuple[np.ndarray, np.ndarray | None]:
        """The validation pass at ``epoch``: seed mean and, if per seed, per slot."""
        if epoch not in self._validation:
            assert self._eval is not None
            at = _epoch_index(self._eval, epoch, self._eval_ref)
            mean = resolve_metric(self._table, self._eval_ref, epoch)
            slots = None
            if self._per_slot:
                slots = np.where(self._eval.mask[:, :, at], self._eval.values[:, :, at], np.nan)
            self._validation[epoch] = (mean, slots)
        return self._validation[epoch]

    def cost(self, arch: int, epoch: int, slot: int | None, since: int = 0) -> float:
        """Seconds charged for training to ``epoch`` (continuing from ``since``, 0: from
        scratch) and validating there; ``slot`` None means the seed mean."""
        if not self.recorded:
            return 0.0
        if epoch not in self.epochs or (since and since not in self.epochs):
            raise TableError(f"table costs cover epochs {list(self.epochs)}, not {epoch}")
        pick = 0 if slot is None or not self._per_slot else 1

        def read(vectors: tuple[np.ndarray, np.ndarray | None]) -> float:
            held = vectors[pick]
            assert held is not None
            value = held[arch] if pick == 0 else held[arch, slot]
            if value != value:
                raise TableError(f"table has no training time for architecture {arch}")
            return float(value)

        value = read(self._trained(epoch))
        if self._eval is not None:
            value = float(np.float64(value) + np.float64(read(self._validated(epoch))))
        if since:
            value -= read(self._trained(since))
        return value


class TabularEvaluator(Evaluator):
    """Evaluations answered by a table under the search protocol.

    ``signal`` is what the strategy optimises (visible); ``visible`` and ``sealed`` map
    recorded names to variables; the cost is :class:`TableCosts`'. ``epochs`` are the
    fidelities (default :func:`table_fidelities`).
    """

    @classmethod
    def for_benchmark(
        cls,
        table: Table,
        space: SearchSpace,
        search: SearchProtocol,
        setup: EvaluatorSetup,
        report: Iterable[MetricRef],
    ) -> TabularEvaluator:
        if search.cost == "live":
            raise ConfigError(
                "'live' charges this run's measured training time: run it with "
                "`--evaluator live`, or charge the table's costs (cost = 'table')",
                "search.cost",
            )
        return cls(table, space, search)

    def __init__(
        self,
        table: Table,
        space: SearchSpace,
        search: SearchProtocol,
        epochs: tuple[int, ...] | None = None,
    ) -> None:
        self.space = space
        self.fidelities = table_fidelities(table, search) if epochs is None else tuple(epochs)
        self.table = table
        self.search = search
        policy = self.policy = search.seed_policy
        signal = search.signal
        signal_variable = _variable(table, signal)
        self._signal_epochs = signal_variable.epochs
        self._means: dict[MetricRef, np.ndarray] = {}
        self._lookups: dict[int, tuple[_Lookup, dict[str, _Lookup], dict[str, _Lookup]]] = {}
        self._signal_at: dict[int, _Lookup] = {}
        self._curves: dict[int, list[_Lookup]] = {}
        self.seeds = signal_variable.seeds
        for epoch in self.fidelities:
            if epoch == search.epoch or epochs is not None:
                self._at(epoch)  # what the table lacks is reported now
        if policy.kind == "draw":
            for signal_lookup, shown, hidden in self._lookups.values():
                for lookup in (signal_lookup, *shown.values(), *hidden.values()):
                    if lookup.seeds != self.seeds:
                        raise TableError(
                            f"seed_policy 'draw' needs the same seeds in every variable, but "
                            f"{lookup.ref} has {list(lookup.seeds)} and {signal} has "
                            f"{list(self.seeds)}"
                        )
        self._check_coverage(search.epoch)
        self.costs = TableCosts(table, search, self.fidelities, self.seeds)
        self.has_costs = self.costs.recorded
        self._final: dict[MetricRef, np.ndarray] = {}
        self._by_mean = policy.kind == "mean"
        #: (arch, epoch, slot, since) -> the observation that answers it, built once
        self._answers: dict[tuple[int, int, int | None, int], Observation] = {}

    def _check_coverage(self, epoch: int) -> None:
        """Refuse, before any search, a visible or sealed variable with gaps where the
        signal has values: a run would otherwise stop at the first architecture it hits."""
        signal, shown, hidden = self._at(epoch)
        for section, lookups in (("visible", shown), ("sealed", hidden)):
            for name, lookup in lookups.items():
                if signal.vector is not None and lookup.vector is not None:
                    gaps = np.isfinite(signal.vector) & ~np.isfinite(lookup.vector)
                elif signal.vector is None and lookup.vector is None:
                    gaps = (signal.mask & ~lookup.mask).any(axis=1)
                else:
                    continue
                if gaps.any():
                    raise ConfigError(
                        f"{name!r} ({lookup.ref} at epoch {epoch}) has no value for "
                        f"{int(gaps.sum()):,} architectures of table {self.table.path} that "
                        f"the search signal has (the first: {int(gaps.argmax())}); choose a "
                        "variable that covers every cell the signal does",
                        f"search.{section}.{name}",
                    )

    def _lookup(self, ref: MetricRef, epoch: int) -> _Lookup:
        mean = None
        if self.policy.kind == "mean":
            if ref not in self._means:
                self._means[ref] = _variable(self.table, ref).seed_mean()
            mean = self._means[ref]
        return _Lookup(self.table, ref, epoch, self.policy, mean)

    def _signal(self, epoch: int) -> _Lookup:
        if epoch not in self._signal_at:
            self._signal_at[epoch] = self._lookup(self.search.signal, epoch)
        return self._signal_at[epoch]

    def _at(self, epoch: int) -> tuple[_Lookup, dict[str, _Lookup], dict[str, _Lookup]]:
        """The lookups of one fidelity, built the first time it is evaluated."""
        if epoch not in self._lookups:
            search = self.search
            self._curves[epoch] = [self._signal(e) for e in self._signal_epochs if e < epoch]
            self._lookups[epoch] = (
                self._signal(epoch),
                {name: self._lookup(ref, epoch) for name, ref in search.visible.items()},
                {name: self._lookup(ref, epoch) for name, ref in search.sealed.items()},
            )
        return self._lookups[epoch]

    def slot(self, arch: int, epoch: int, rng: np.random.Generator) -> int | None:
        """The seed slot answering this query under the policy (None: the seed mean)."""
        if self.policy.kind == "mean":
            return None
        if self.policy.kind == "fixed":
            return self.seeds.index(self.policy.seed)
        signal = self._at(epoch)[0]
        if not signal.mask[arch].any():
            raise _missing(signal.ref, arch)
        return draw_slot(signal.mask[arch], rng)

    def evaluate(
        self, proposal: Proposal, rng: np.random.Generator, resume: Resume | None = None
    ) -> Observation:
        """Look up one evaluation; ``rng`` is the run's benchmark stream (a continued
        training keeps its seed and draws nothing).

        Which training answers is drawn for every query; the answer of a training is the
        same every time, so it is built once and handed out again (it is immutable)."""
        arch, epoch = proposal.arch, proposal.epoch
        if resume is None:
            slot = None if self._by_mean else self.slot(arch, epoch, rng)
            since = 0
        else:
            slot = None if self._by_mean else self.seeds.index(resume.seed)
            since = resume.epoch
        key = (arch, epoch, slot, since)
        observation = self._answers.get(key)
        if observation is None:
            observation = self._answer(arch, epoch, slot, since)
            if len(self._answers) < ANSWERS_KEPT:
                self._answers[key] = observation
        return observation

    def _answer(self, arch: int, epoch: int, slot: int | None, since: int) -> Observation:
        """The observation of the training in ``slot`` (None: the seed mean) of ``arch``,
        trained to ``epoch`` from ``since``."""
        signal, shown, hidden = self._at(epoch)
        cost = self.costs.cost(arch, epoch, slot, since)
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
            resumed_from=since,
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

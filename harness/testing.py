"""Contract checks for code that extends harness: search spaces, strategies, estimators.

A plugin's own test file imports these and runs them on its class, exactly as harness's
test suite runs them on every built-in (as ``optuna.testing`` serves samplers)::

    from harness.testing import check_strategy
    from my_package.greedy import Greedy

    def test_greedy_keeps_the_strategy_contract():
        check_strategy(Greedy, params={"samples": 20})

Each check raises ``AssertionError`` saying what broke. None needs a table: strategies run
against :class:`SyntheticBenchmark`, a deterministic made-up benchmark over any space, and
estimators score a small network on made-up images. :func:`build_strategy` builds a
strategy without a spec, for a plugin's own unit tests.
"""

from __future__ import annotations

import gc
import hashlib
import types
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np

from harness.errors import ConfigError
from harness.estimators import Estimator, Score, estimator_class
from harness.evaluators.base import Evaluator
from harness.proxy_protocol import InputData, ProxyInput, ProxyProtocol
from harness.simulator import RunResult, simulate
from harness.spaces import get_space
from harness.spaces.base import SearchSpace
from harness.strategies import Strategy, strategy_class
from harness.values import Budget, MetricRef, Observation, Proposal, Resume, Scored

#: sealed values start here: no visible value of :class:`SyntheticBenchmark` comes near
SEALED_BASE = -987_654.0


class SyntheticBenchmark(Evaluator):
    """Made-up, deterministic answers for every (architecture, epoch) of a space.

    The signal rises with the epoch towards a per-architecture value (a hash of the
    architecture, so neighbours differ); the cost grows with the epoch and varies by
    architecture; the sealed ``test`` metric is ``SEALED_BASE - arch - epoch / 1000``, a
    value no visible number takes, so a walk of a strategy's objects can look for it.
    """

    def __init__(self, space: SearchSpace, fidelities: tuple[int, ...] = (1, 2, 4)) -> None:
        self.space, self.fidelities = space, tuple(fidelities)

    def _quality(self, arch: int) -> float:
        digest = hashlib.sha256(f"{self.space.name}:{arch}".encode()).digest()
        return int.from_bytes(digest[:8], "little") / 2**64

    def evaluate(
        self, proposal: Proposal, rng: np.random.Generator, resume: Resume | None = None
    ) -> Observation:
        arch, epoch = proposal.arch, proposal.epoch
        since = 0 if resume is None else resume.epoch
        top = self.fidelities[-1]
        curve = tuple(100 * self._quality(arch) * (1 - 0.5 ** (e + 1)) for e in range(1, epoch + 1))
        per_epoch = 1.0 + 9.0 * self._quality(arch + 1)
        return Observation(
            arch=arch,
            epoch=epoch,
            signal=curve[-1],
            cost_s=per_epoch * (epoch - since) * 10 / top,
            metrics={"train": curve[-1] + 1.0},
            sealed={"test": SEALED_BASE - arch - epoch / 1000},
            signal_curve=curve,
            resumed_from=since,
        )

    def final_metrics(self, arch: int, refs: Mapping[str, MetricRef]) -> dict[str, float]:
        return {name: SEALED_BASE - arch for name in refs}


def build_strategy(
    strategy: type[Strategy] | str,
    space: SearchSpace | str = "nb201",
    seed: int = 0,
    fidelities: tuple[int, ...] = (1, 2, 4),
    **params: Any,
) -> Strategy:
    """A strategy built as a run builds it, without a spec: its space, its own generator
    (from ``seed``), the fidelity it searches at (the last of ``fidelities``), every
    fidelity the benchmark offers, and its hyperparameters."""
    cls = strategy_class(strategy) if isinstance(strategy, str) else strategy
    space = get_space(space) if isinstance(space, str) else space
    return cls(space, np.random.default_rng(seed), fidelities[-1], fidelities=fidelities, **params)


def synthetic_scores(space: SearchSpace) -> Callable[[int], Scored]:
    """Made-up estimator scores (a hash of the index) costing 0.5 s each, for strategies
    that ask for scores; a tenth of the space is not covered, as in a sampled file."""

    def score(arch: int) -> Scored:
        if arch % 10 == 9:
            return Scored(arch, float("nan"), 0.0, scored=False)
        return Scored(arch, float((arch * 7919) % 1000), 0.5)

    return score


def _run(cls, space, seed, fidelities, params, workers, evaluations) -> RunResult:
    strategy = build_strategy(cls, space, seed, fidelities, **params)
    benchmark = SyntheticBenchmark(strategy.space, fidelities)
    budget = Budget(evaluations=evaluations)
    rng = np.random.default_rng(seed + 1)
    return simulate(strategy, benchmark, rng, budget, workers, scores=synthetic_scores(space))


#: what the walk does not enter: code and namespaces are shared by every run, not state
_OPAQUE = (type, types.ModuleType, types.FunctionType, types.BuiltinFunctionType, types.CodeType)


def _sealed_values_reachable(root: object, limit: int = 200_000) -> list[float]:
    """Every float reachable from ``root`` (objects, containers, numpy arrays) that is a
    sealed value of :class:`SyntheticBenchmark`."""
    found, seen, stack = [], set(), [root]
    while stack and len(seen) < limit:
        item = stack.pop()
        if id(item) in seen or isinstance(item, _OPAQUE):
            continue
        seen.add(id(item))
        if isinstance(item, float) and item <= SEALED_BASE + 1:
            found.append(item)
        elif isinstance(item, np.ndarray) and item.dtype.kind == "f" and item.size:
            found += item[item <= SEALED_BASE + 1].tolist()
        elif not isinstance(item, (str, bytes, int, np.ndarray)):
            stack.extend(gc.get_referents(item))
    return found


def check_strategy(
    strategy: type[Strategy] | str,
    params: Mapping[str, Any] | None = None,
    spaces: Iterable[str] = ("nb201",),
    fidelities: tuple[int, ...] = (1, 2, 4),
    evaluations: int = 40,
    workers: Iterable[int] = (1, 4, 16),
) -> None:
    """The strategy contract: hyperparameters validate; a run is a function of its seed
    (the same seed twice gives the same trajectory, another seed another one); every
    proposal is a valid architecture and fidelity (the simulator refuses any other); the
    strategy never holds a sealed value; and it runs with 1, 4 and 16 workers."""
    cls = strategy_class(strategy) if isinstance(strategy, str) else strategy
    params = dict(params or {})
    resolved = cls.resolve_hyperparameters(params)
    assert set(resolved) == set(cls.hyperparameters), (
        f"{cls.__name__}: resolved hyperparameters {sorted(resolved)} are not the declared "
        f"{sorted(cls.hyperparameters)}"
    )
    try:
        cls.resolve_hyperparameters({**params, "no_such_hyperparameter": 1})
    except ConfigError:
        pass
    else:
        raise AssertionError(f"{cls.__name__} accepted an undeclared hyperparameter")
    for space_name in spaces:
        space = get_space(space_name)
        for count in workers:
            first = _run(cls, space, 0, fidelities, params, count, evaluations)
            again = _run(cls, space, 0, fidelities, params, count, evaluations)
            where = f"{cls.__name__} on {space_name} with {count} worker(s)"
            assert first.evaluations > 0, f"{where}: no evaluation completed"
            assert first.trajectory == again.trajectory, f"{where}: the same seed ran differently"
            other = _run(cls, space, 1, fidelities, params, count, evaluations)
            assert other.trajectory.arch != first.trajectory.arch, (
                f"{where}: seeds 0 and 1 proposed the same architectures"
            )
        strategy_object = build_strategy(cls, space, 0, fidelities, **params)
        benchmark = SyntheticBenchmark(space, fidelities)
        budget = Budget(evaluations=evaluations)
        scores = synthetic_scores(space)
        simulate(strategy_object, benchmark, np.random.default_rng(1), budget, 4, scores=scores)
        leaked = _sealed_values_reachable(strategy_object)
        assert not leaked, f"{cls.__name__} holds sealed values: {leaked[:3]}"


def synthetic_input(examples: int = 256, shape: tuple[int, ...] = (1, 8, 8)) -> InputData:
    """Made-up images and labels (10 classes), seeded: an estimator's test input. The
    input is the ``train`` split of a made-up dataset that also has ``valid`` and ``test``
    splits of the same size, for estimators that train on one split and score on another."""
    from harness.data.core import Dataset, Split

    rng = np.random.default_rng(0)
    splits = {
        name: (
            rng.normal(size=(examples, *shape)).astype(np.float32),
            rng.integers(0, 10, examples).astype(np.int64),
        )
        for name in ("train", "valid", "test")
    }
    indices = {name: np.arange(i * examples, (i + 1) * examples) for i, name in enumerate(splits)}
    dataset = Dataset(
        name="synthetic",
        num_classes=10,
        input_shape=shape,
        splits=splits,
        split=Split(indices=indices, sources={name: "synthetic" for name in splits}),
        mean=(0.0,) * shape[0],
        std=(1.0,) * shape[0],
        valid_split="valid",
        test_split="test",
        augment_padding=None,
        source={"generator": "numpy default_rng(0)"},
    )
    return InputData(
        name="synthetic",
        shape=shape,
        classes=10,
        examples=splits["train"][0],
        labels=splits["train"][1],
        provenance={"split": "train"},
        dataset=dataset,
    )


def check_estimator(
    estimator: type[Estimator] | str,
    params: Mapping[str, Any] | None = None,
    space: str = "nb201",
    archs: Iterable[int] = (0, 1, 1000, 15624),
    seeds: tuple[int, ...] = (0, 1),
) -> None:
    """The estimator contract on a small network (C=4, N=1) fed made-up 1x8x8 images:
    hyperparameters validate; a score is a :class:`~harness.estimators.Score` with a
    float value and a finite, non-negative cost; scores are bit-identical when repeated
    and do not depend on the order architectures are scored in; an estimator that says it
    needs no data scores a data-free input."""
    cls = estimator_class(estimator) if isinstance(estimator, str) else estimator
    params = dict(params or {})
    resolved = cls.resolve_hyperparameters(params)
    assert set(resolved) == set(cls.hyperparameters), f"{cls.__name__}: resolved != declared"
    search_space = get_space(space)
    archs = [a for a in archs if a < search_space.num_archs]
    data = synthetic_input()
    protocol = ProxyProtocol(
        channels=4,
        cells_per_stage=1,
        seeds=seeds,
        threads=1,
        device="cpu",
        inputs=(ProxyInput("synthetic", "synthetic", "train", None, None, None),),
    )

    def scores(order: list[int], given: InputData) -> dict[tuple[int, int], float]:
        made = cls(search_space, protocol, given, **params)
        made.setup()
        assert made.setup_cost_s >= 0, f"{cls.__name__}: negative set-up cost"
        found = {}
        for arch in order:
            for seed in seeds:
                score = made.score(arch, seed)
                assert isinstance(score, Score), f"{cls.__name__}.score returned {score!r}"
                assert isinstance(score.value, float), f"{cls.__name__}: value not a float"
                assert 0 <= score.cost_s < np.inf, f"{cls.__name__}: cost {score.cost_s!r}"
                found[(arch, seed)] = score.value
        return found

    forward = scores(archs, data)
    backward = scores(archs[::-1], data)
    for key, value in forward.items():
        same = value == backward[key] or (np.isnan(value) and np.isnan(backward[key]))
        assert same, f"{cls.__name__}: architecture {key[0]} seed {key[1]} scored differently"
    if not cls.needs_data:
        free = InputData("shape", data.shape, data.classes, None, None, {})
        scores(archs[:1], free)


def check_space(space: SearchSpace | str, samples: int = 200) -> None:
    """The search-space contract: index, string and decisions round-trip; bad input raises
    ArchitectureError; mutation and neighbours change exactly one decision; sampling draws
    only from the given generator; isomorphism classes agree with the canonical form;
    encodings have a fixed length and 0/1 entries."""
    from harness.errors import ArchitectureError

    space = get_space(space) if isinstance(space, str) else space
    name = space.name
    assert space.num_archs > 1 and len(space.choices) >= 1, f"{name}: an empty space"

    def sample(count: int) -> list[int]:
        rng = np.random.default_rng(1)
        return [space.sample(rng) for _ in range(count)]

    for index in sample(samples):
        assert space.index_of_string(space.string_of_index(index)) == index, name
        decisions = space.decisions_of_index(index)
        assert len(decisions) == len(space.choices), name
        assert all(0 <= d < c for d, c in zip(decisions, space.choices, strict=True)), name
        assert space.index_of_decisions(decisions) == index, name
    table = space.decision_table()
    assert table.shape == (space.num_archs, len(space.choices)), f"{name}: decision table"
    assert len(set(map(tuple, table.tolist()))) == space.num_archs, f"{name}: repeated rows"
    for bad in (-1, space.num_archs, 1.5, True, "0"):
        try:
            space.string_of_index(bad)
        except ArchitectureError:
            continue
        raise AssertionError(f"{name}: index {bad!r} was accepted")
    for call, argument in (
        (space.index_of_string, "not an architecture"),
        (space.index_of_decisions, list(space.choices)),  # every value one too large
    ):
        try:
            call(argument)
        except ArchitectureError:
            continue
        raise AssertionError(f"{name}: {argument!r} was accepted")
    rng = np.random.default_rng(2)
    for index in sample(min(samples, 100)):
        neighbours = space.neighbours(index)
        assert neighbours.dtype == np.int64 and (np.diff(neighbours) > 0).all(), name
        assert ((table[neighbours] != table[index]).sum(axis=1) == 1).all(), name
        assert space.mutate(index, rng) in set(neighbours.tolist()), f"{name}: mutation"
    assert sample(samples) == sample(samples), f"{name}: sampling is not a function of its rng"
    assert len(set(sample(500))) > 400 or space.num_archs < 2000, f"{name}: sampling repeats"
    classes = space.isomorphism_classes()
    assert classes.shape == (space.num_archs,), name
    assert (classes <= np.arange(space.num_archs)).all() and (classes[classes] == classes).all()
    for index in sample(min(samples, 300)):
        assert space.canonical_form(index) == space.canonical_form(int(classes[index])), name
    assert "onehot" in space.encodings, f"{name}: no one-hot encoding"
    for kind in space.encodings:
        length = space.encoding_length(kind)
        for index in sample(50):
            vector = space.encode(index, kind)
            assert vector.shape == (length,) and set(np.unique(vector)) <= {0.0, 1.0}, kind
    onehot = space.encode(0, "onehot")
    assert onehot.sum() == len(space.choices) and len(onehot) == sum(space.choices), name

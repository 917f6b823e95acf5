"""The seal on test metrics, played against strategies that try to break it.

A strategy gets a fresh copy of the visible observation in ``tell``; the incumbent and
the record come from the evaluator's own observation. These strategies try the known
attacks (an object graph walk from the observation, ``object.__setattr__`` on it,
mutating its metrics, out-of-range proposals) on the real NB201 table; every run must
record exactly what an honest run with the same seed records.
"""

from __future__ import annotations

import dataclasses
import gc
import types

import numpy as np
import pytest
from conftest import REPO, TESTS, assert_clean_failure, harness_cli, needs_nb201

from harness.errors import StrategyError
from harness.experiment import Benchmark
from harness.record import trajectory_frame
from harness.spec import StrategySpec
from harness.strategies.random_search import RandomSearch
from harness.table import Table
from harness.values import Observation, Proposal, VisibleObservation

pytestmark = needs_nb201()
SEALED = "test_accuracy_hp12"


def reachable(root: object, limit: int = 2000) -> list[object]:
    """Objects reachable from ``root`` through references, frames excluded."""
    seen, todo, found = set(), [root], []
    while todo and len(found) < limit:
        item = todo.pop()
        if id(item) in seen or isinstance(item, (types.FrameType, types.ModuleType, type)):
            continue
        seen.add(id(item))
        found.append(item)
        todo.extend(gc.get_referents(item))
    return found


class WalksReferrers(RandomSearch):
    """Looks for sealed values among everything that refers to what it was told."""

    def setup(self) -> None:
        self.leaks: list[object] = []

    def tell(self, proposal: Proposal, observation: VisibleObservation) -> None:
        for referrer in gc.get_referrers(observation):
            if isinstance(referrer, types.FrameType):
                continue  # interpreter frames: out of reach of the seal (threat model)
            for item in reachable(referrer):
                if isinstance(item, Observation) or (
                    isinstance(item, (dict, types.MappingProxyType)) and SEALED in item
                ):
                    self.leaks.append(item)


class OverwritesSignal(RandomSearch):
    """Tries to make every result it is told look like the best ever."""

    def setup(self) -> None:
        self.refused = 0

    def tell(self, proposal: Proposal, observation: VisibleObservation) -> None:
        try:
            object.__setattr__(observation, "signal", 1e9)
            object.__setattr__(observation, "cost_s", 0.0)
        except AttributeError:
            self.refused += 1


class MutatesMetrics(RandomSearch):
    """Rewrites the visible metrics, directly and through the read-only view's dict."""

    def setup(self) -> None:
        self.refused = 0

    def tell(self, proposal: Proposal, observation: VisibleObservation) -> None:
        try:
            observation.metrics["train_loss"] = -1.0  # type: ignore[index]
        except TypeError:
            self.refused += 1
        for inner in gc.get_referents(observation.metrics):
            if isinstance(inner, dict):
                inner["train_loss"] = -1.0


class ProposesOutOfRange(RandomSearch):
    """Asks for architecture -1, which numpy indexing would wrap to the last cell."""

    def ask(self) -> Proposal:
        return Proposal(-1, self.fidelity)


class ProposesWrongEpoch(RandomSearch):
    def ask(self) -> Proposal:
        return Proposal(0, self.fidelity + 1)


class ProposesNothing(RandomSearch):
    def ask(self) -> Proposal:
        return (0, self.fidelity)  # type: ignore[return-value]


@pytest.fixture(scope="module")
def benchmark(nb201_built) -> Benchmark:
    from harness.spec import load_spec

    spec = load_spec(
        REPO / "benchmarks" / "nb201" / "table5.toml",
        {"seeds": [3], "budget": {"seconds": None, "evaluations": 40}},
    )
    spec = dataclasses.replace(
        spec,
        table_path=nb201_built[0],
        search=dataclasses.replace(spec.search, visible={"train_loss": spec.search.signal}),
    )
    return Benchmark(spec, Table.load(nb201_built[0], nb201_built[1]))


def run(benchmark: Benchmark, cls: type) -> tuple[object, object]:
    import harness.strategies as registry

    kind = f"{cls.__module__}:{cls.__qualname__}"
    outcome = benchmark.run(StrategySpec(cls.__name__, kind, {}), 3)
    instance = registry.strategy_class(kind)
    assert instance is cls
    return outcome, trajectory_frame([outcome])


def honest(benchmark: Benchmark):
    outcome = benchmark.run(StrategySpec("RS", "random_search", {}), 3)
    return outcome, trajectory_frame([outcome])


def test_nothing_reachable_from_the_told_observation_holds_a_sealed_value(benchmark):
    leaks: list[object] = []
    original = WalksReferrers.setup

    def keep(self):
        original(self)
        self.leaks = leaks

    WalksReferrers.setup = keep  # collect across the run
    try:
        run(benchmark, WalksReferrers)
    finally:
        WalksReferrers.setup = original
    assert leaks == []


@pytest.mark.parametrize("cls", [OverwritesSignal, MutatesMetrics], ids=lambda c: c.__name__)
def test_what_a_strategy_does_to_its_copy_never_reaches_the_record(benchmark, cls):
    outcome, frame = run(benchmark, cls)
    reference, expected = honest(benchmark)
    assert outcome.result.incumbent_arch == reference.result.incumbent_arch
    assert outcome.targets == reference.targets
    assert frame.equals(expected)
    assert (frame["visible.train_loss"] > 0).all()


def test_the_told_copy_refuses_every_write(benchmark):
    visible = benchmark.evaluator.evaluate(Proposal(5, 12), np.random.default_rng(0)).visible(3)
    for name in ("signal", "cost_s", "trial", "metrics"):
        with pytest.raises(AttributeError):
            object.__setattr__(visible, name, 1e9)
        with pytest.raises(AttributeError):
            setattr(visible, name, 1e9)
    assert visible.trial == 3 and not hasattr(visible, "__dict__")


def test_metrics_handed_to_a_strategy_are_read_only(benchmark):
    observation = benchmark.evaluator.evaluate(Proposal(5, 12), np.random.default_rng(0))
    visible = observation.visible()
    with pytest.raises(TypeError):
        visible.metrics["train_loss"] = 0.0  # type: ignore[index]
    assert not hasattr(visible, "sealed") and visible is not observation.visible()


@pytest.mark.parametrize(
    "cls, message",
    [
        (ProposesOutOfRange, "proposed an invalid architecture: .* -1 is out of range"),
        (ProposesWrongEpoch, "proposed epoch 13; this benchmark evaluates 12"),
        (ProposesNothing, "returned .* from ask, not a Proposal"),
    ],
    ids=lambda v: getattr(v, "__name__", ""),
)
def test_every_proposal_is_range_checked(benchmark, cls, message):
    with pytest.raises(StrategyError, match=message):
        run(benchmark, cls)


def test_an_out_of_range_proposal_ends_the_cli_with_one_line(small_spec, mlflow_store):
    spec = small_spec(
        lambda r: (
            r["strategy"].__setitem__(
                slice(None), [{"name": "Bad", "kind": "test_seal:ProposesOutOfRange"}]
            )
            or r.pop("published")
        )
    )
    done = harness_cli("run", str(spec), cwd=mlflow_store, PYTHONPATH=str(TESTS))
    assert_clean_failure(done, "strategy 'Bad'", "-1 is out of range")
    assert not (mlflow_store / "results").exists()

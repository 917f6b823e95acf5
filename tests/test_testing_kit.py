"""harness.testing: the contract checks a plugin imports pass for every built-in, and fail
for code that breaks the contract."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from conftest import EXAMPLE

from harness.estimators import BUILTIN_ESTIMATORS, Estimator, Score
from harness.strategies import BUILTIN_STRATEGIES, Strategy, needs_one_shot
from harness.testing import build_strategy, check_estimator, check_strategy
from harness.values import Proposal

CHEAP = {
    "bananas": {"epochs": 10},
    "zen": {"repeat": 1},
    "naswot": {"candidates": 20},
    "rea_warmup": {"warmup": 30},
    "bananas_warmup": {"warmup": 30, "epochs": 10},
    "supernet": {"method_params": {"epochs": 1, "select_num": 3, "test_batch_size": 64}},
}

#: the kinds that search by sampling; the weight-sharing kinds need a supernet set-up and
#: keep their contract in tests/test_weight_sharing.py
SAMPLE_BASED = sorted(k for k in BUILTIN_STRATEGIES if not needs_one_shot(k))


@pytest.mark.parametrize("kind", SAMPLE_BASED)
def test_every_builtin_strategy_keeps_the_contract(kind):
    if kind == "tpe":
        pytest.importorskip("optuna")
    check_strategy(kind, CHEAP.get(kind), evaluations=30)


def test_the_example_plugin_keeps_the_contract(monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLE))
    sys.modules.pop("harness_local_search", None)
    from harness_local_search import LocalSearch

    check_strategy(LocalSearch, evaluations=30)


@pytest.mark.parametrize(
    "kind",
    [  # the supernet trains a network at every build the contract makes
        pytest.param(k, marks=pytest.mark.slow) if k == "supernet" else k
        for k in sorted(BUILTIN_ESTIMATORS)
    ],
)
def test_every_builtin_estimator_keeps_the_contract(kind):
    check_estimator(kind, CHEAP.get(kind))


class Peeking(Strategy):
    """Keeps every observation it is told: honest, since nothing it is told is sealed."""

    def setup(self):
        self.kept = []

    def ask(self):
        return Proposal(self.space.sample(self.rng), self.fidelity)

    def tell(self, proposal, observation):
        self.kept.append(observation)


class Stubborn(Peeking):
    """Always proposes the same architecture, whatever its seed."""

    def ask(self):
        return Proposal(0, self.fidelity)


class GlobalRandom(Peeking):
    """Draws from numpy's global generator: not a function of its seed."""

    def ask(self):
        return Proposal(int(np.random.default_rng().integers(self.space.num_archs)), self.fidelity)


class Snooping(Peeking):
    """Reaches into the simulator's frame for the evaluator's whole observation (the threat
    model's in-process attack) and keeps its sealed test value."""

    def tell(self, proposal, observation):
        caller = sys._getframe(1)
        while caller is not None and "in_flight" not in caller.f_locals:
            caller = caller.f_back
        self.kept.append(dict(caller.f_locals["observation"].sealed))


def test_the_checks_pass_an_honest_strategy_and_catch_broken_ones():
    check_strategy(Peeking, evaluations=20)
    with pytest.raises(AssertionError, match="holds sealed values"):
        check_strategy(Snooping, evaluations=20)
    with pytest.raises(AssertionError, match="proposed the same architectures"):
        check_strategy(Stubborn, evaluations=20)
    with pytest.raises(AssertionError, match="ran differently"):
        check_strategy(GlobalRandom, evaluations=20)


class Flaky(Estimator):
    """Scores from a counter: depends on the order it is called in."""

    def setup(self):
        self.calls = 0

    def score(self, arch, seed):
        self.calls += 1
        return Score(float(self.calls), 0.0)


def test_the_estimator_check_catches_order_dependent_scores():
    with pytest.raises(AssertionError, match="scored differently"):
        check_estimator(Flaky)


def test_a_strategy_builds_without_a_spec_for_unit_tests():
    strategy = build_strategy("regularized_evolution", seed=3, population_size=5, sample_size=2)
    assert strategy.population_size == 5 and strategy.fidelity == 4
    assert isinstance(strategy.ask(), Proposal)

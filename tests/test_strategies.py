"""Behaviour of the search strategies: validation, reproducibility, REA, REINFORCE."""

from __future__ import annotations

from collections import deque

import numpy as np
import pytest

from harness.config import Field
from harness.errors import ConfigError
from harness.spaces.nb201 import NB201Space
from harness.strategies import (
    BUILTIN_STRATEGIES,
    Strategy,
    make_strategy,
    needs_one_shot,
    strategy_class,
)
from harness.strategies.evolution import RegularizedEvolution
from harness.strategies.reinforce import Reinforce
from harness.values import Proposal, VisibleObservation

FIDELITY = 200
#: hyperparameters that keep the slower strategies quick in the loops below
QUICK = {"bananas": {"epochs": 5, "num_candidates": 20}}

#: the kinds that search by sampling; the weight-sharing kinds need a supernet set-up and
#: keep their contract in tests/test_weight_sharing.py
SAMPLE_BASED = sorted(k for k in BUILTIN_STRATEGIES if not needs_one_shot(k))


@pytest.fixture(scope="module")
def space() -> NB201Space:
    return NB201Space()


def fake_signal(arch: int) -> float:
    """A deterministic, arch-dependent stand-in for a validation accuracy (percent)."""
    return float((arch * 7919) % 1000) / 10


def observe(proposal: Proposal, signal: float) -> VisibleObservation:
    """What the simulator would hand a strategy: the visible part only."""
    return VisibleObservation(proposal.arch, proposal.epoch, signal, 1.0, {})


def run(kind: str, space: NB201Space, seed: int, steps: int, **params: object) -> list[int]:
    """Sequential ask/tell loop; returns the proposed architectures."""
    params = {**QUICK.get(kind, {}), **params}
    strategy = make_strategy(kind, space, np.random.default_rng(seed), FIDELITY, params)
    archs = []
    for _ in range(steps):
        proposal = strategy.ask()
        assert proposal.epoch == FIDELITY
        strategy.tell(proposal, observe(proposal, fake_signal(proposal.arch)))
        archs.append(proposal.arch)
    return archs


def edges_changed(space: NB201Space, a: int, b: int) -> int:
    ops = space.decision_table()
    return int((ops[a] != ops[b]).sum())


# --- registry and validation ---------------------------------------------------------


def test_builtin_kinds_and_module_references_name_the_same_class() -> None:
    assert set(BUILTIN_STRATEGIES) == {
        "random_search",
        "random_sampling",
        "regularized_evolution",
        "reinforce",
        "bananas",
        "tpe",
        "successive_halving",
        "hyperband",
        "asha",
        "bohb",
        "darts_v1",
        "darts_v2",
        "gdas",
        "setn",
        "rsps",
        "enas",
        "naswot",
        "rea_warmup",
        "bananas_warmup",
    }
    assert strategy_class("reinforce") is Reinforce
    assert strategy_class("harness.strategies.evolution:RegularizedEvolution") is (
        RegularizedEvolution
    )


def test_unknown_kind_names_it_and_lists_known(space: NB201Space) -> None:
    with pytest.raises(ConfigError, match=r"unknown strategy 'smac'; known: .*random_search"):
        make_strategy("smac", space, np.random.default_rng(0), FIDELITY, {})


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("no_such_module_xyz:Thing", "cannot import 'no_such_module_xyz'"),
        ("harness.strategies.evolution:Nope", "not a concrete subclass"),
        ("harness.strategies.base:Strategy", "not a concrete subclass"),
        ("harness.values:Proposal", "not a concrete subclass"),
    ],
)
def test_bad_plugin_references_fail_with_one_line(kind: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        strategy_class(kind)
    assert "\n" not in str(caught.value)


def test_declared_hyperparameters_are_validated_and_set_without_an_init(
    space: NB201Space,
) -> None:
    class Tempered(Strategy):
        hyperparameters = {
            "temperature": Field(float, 1.0, low=0, low_open=True),
            "mode": Field(str, "greedy", choices=("greedy", "soft")),
            "cap": Field(int, None, low=1, optional=True),
        }

        def ask(self) -> Proposal:
            return Proposal(0, self.fidelity)

        def tell(self, proposal: Proposal, observation: VisibleObservation) -> None:
            pass

    made = Tempered(space, np.random.default_rng(0), 12, temperature=2)
    assert (made.temperature, made.mode, made.cap) == (2.0, "greedy", None)
    assert made.params == {"temperature": 2.0, "mode": "greedy", "cap": None}
    with pytest.raises(ConfigError, match=r"\[mode\] must be one of 'greedy', 'soft'"):
        Tempered(space, np.random.default_rng(0), 12, mode="random")
    with pytest.raises(TypeError, match="shadows"):
        type("Bad", (Strategy,), {"hyperparameters": {"ask": Field(int, 1)}})


@pytest.mark.parametrize(
    ("kind", "params", "named"),
    [
        ("random_search", {"population_size": 5}, "population_size"),
        ("regularized_evolution", {"pop_size": 5}, "pop_size"),
        ("reinforce", {"lr": 0.1}, "lr"),
        ("random_sampling", {"replace": False}, "replace"),
        ("bananas", {"explore_type": "its"}, "explore_type"),
        ("tpe", {"seed": 1}, "seed"),
    ],
)
def test_unknown_parameter_is_named(
    space: NB201Space, kind: str, params: dict[str, object], named: str
) -> None:
    with pytest.raises(ConfigError, match=rf"\[{named}\] is not a known key"):
        make_strategy(kind, space, np.random.default_rng(0), FIDELITY, params)


@pytest.mark.parametrize(
    ("kind", "params", "named"),
    [
        ("regularized_evolution", {"population_size": "10"}, "population_size"),
        ("regularized_evolution", {"population_size": 10.0}, "population_size"),
        ("regularized_evolution", {"sample_size": True}, "sample_size"),
        ("reinforce", {"learning_rate": "0.5"}, "learning_rate"),
        ("reinforce", {"baseline_momentum": None}, "baseline_momentum"),
        ("bananas", {"k": 2.0}, "k"),
        ("bananas", {"encoding": 1}, "encoding"),
        ("tpe", {"multivariate": 1}, "multivariate"),
        ("tpe", {"n_startup_trials": "10"}, "n_startup_trials"),
    ],
)
def test_wrong_type_is_named(
    space: NB201Space, kind: str, params: dict[str, object], named: str
) -> None:
    with pytest.raises(ConfigError, match=rf"\[{named}\] must be"):
        make_strategy(kind, space, np.random.default_rng(0), FIDELITY, params)


@pytest.mark.parametrize(
    ("kind", "params", "named"),
    [
        ("regularized_evolution", {"population_size": 0, "sample_size": 0}, "population_size"),
        ("regularized_evolution", {"sample_size": 0}, "sample_size"),
        ("regularized_evolution", {"population_size": 5, "sample_size": 6}, "sample_size"),
        ("reinforce", {"learning_rate": 0.0}, "learning_rate"),
        ("reinforce", {"learning_rate": -0.1}, "learning_rate"),
        ("reinforce", {"learning_rate": float("nan")}, "learning_rate"),
        ("reinforce", {"baseline_momentum": 1.0}, "baseline_momentum"),
        ("reinforce", {"baseline_momentum": -0.1}, "baseline_momentum"),
        ("bananas", {"num_init": 0}, "num_init"),
        ("bananas", {"num_ensemble": 0}, "num_ensemble"),
        ("bananas", {"learning_rate": 0.0}, "learning_rate"),
        ("bananas", {"encoding": "adjacency"}, "encoding"),
        ("tpe", {"n_ei_candidates": 0}, "n_ei_candidates"),
        ("tpe", {"n_startup_trials": -1}, "n_startup_trials"),
    ],
)
def test_out_of_range_is_named(
    space: NB201Space, kind: str, params: dict[str, object], named: str
) -> None:
    with pytest.raises(ConfigError, match=rf"\[{named}\] must be"):
        make_strategy(kind, space, np.random.default_rng(0), FIDELITY, params)


def test_edge_values_in_range_are_accepted(space: NB201Space) -> None:
    rng = np.random.default_rng(0)
    rea = make_strategy(
        "regularized_evolution", space, rng, FIDELITY, {"population_size": 1, "sample_size": 1}
    )
    assert rea.params == {"population_size": 1, "sample_size": 1}
    rl = make_strategy(
        "reinforce", space, rng, FIDELITY, {"learning_rate": 1, "baseline_momentum": 0}
    )
    assert rl.params == {"learning_rate": 1.0, "baseline_momentum": 0.0}
    assert isinstance(rl.learning_rate, float)


# --- every strategy ------------------------------------------------------------------


#: the strategies whose every ask trains (those that ask for scores have their own tests)
TRAINING = sorted(k for k in SAMPLE_BASED if not strategy_class(k).asks_scores)


@pytest.mark.parametrize("kind", TRAINING)
def test_same_seed_same_trajectory_other_seed_differs(space: NB201Space, kind: str) -> None:
    first = run(kind, space, seed=7, steps=300)
    assert run(kind, space, seed=7, steps=300) == first
    assert run(kind, space, seed=8, steps=300) != first


@pytest.mark.parametrize("kind", TRAINING)
def test_tell_needs_only_the_visible_observation(space: NB201Space, kind: str) -> None:
    strategy = make_strategy(kind, space, np.random.default_rng(0), FIDELITY, QUICK.get(kind, {}))
    for _ in range(30):
        proposal = strategy.ask()
        visible = VisibleObservation(
            arch=proposal.arch, epoch=proposal.epoch, signal=50.0, cost_s=10.0, metrics={}
        )
        strategy.tell(proposal, visible)


def test_random_search_draws_space_samples_at_the_protocol_fidelity(space: NB201Space) -> None:
    strategy = make_strategy("random_search", space, np.random.default_rng(3), 12, {})
    reference = np.random.default_rng(3)
    for _ in range(50):
        proposal = strategy.ask()
        assert proposal == Proposal(space.sample(reference), 12)
        strategy.tell(proposal, observe(proposal, 90.0))


# --- regularized evolution -----------------------------------------------------------


def test_rea_first_population_size_asks_are_random_samples(space: NB201Space) -> None:
    strategy = RegularizedEvolution(space, np.random.default_rng(5), FIDELITY)
    reference = np.random.default_rng(5)
    for _ in range(10):
        proposal = strategy.ask()
        assert proposal.arch == space.sample(reference)
        strategy.tell(proposal, observe(proposal, fake_signal(proposal.arch)))


def test_rea_later_asks_are_one_edit_from_a_population_member(space: NB201Space) -> None:
    strategy = RegularizedEvolution(space, np.random.default_rng(1), FIDELITY)
    for step in range(400):
        members = [arch for arch, _ in strategy.population]
        proposal = strategy.ask()
        if step >= 10:
            assert any(edges_changed(space, proposal.arch, m) == 1 for m in members)
        strategy.tell(proposal, observe(proposal, fake_signal(proposal.arch)))


def test_rea_population_is_a_fifo_of_the_last_tells(space: NB201Space) -> None:
    strategy = RegularizedEvolution(space, np.random.default_rng(2), FIDELITY, population_size=4)
    told = []
    for _ in range(9):
        proposal = strategy.ask()
        signal = fake_signal(proposal.arch)
        strategy.tell(proposal, observe(proposal, signal))
        told.append((proposal.arch, signal))
        assert list(strategy.population) == told[-4:]


class ScriptedDraws:
    """Stands in for the generator so the tournament's draws are chosen by the test."""

    def __init__(self, draws: list[int]) -> None:
        self.draws = iter(draws)

    def integers(self, high: int) -> np.int64:
        draw = next(self.draws)
        assert draw < high
        return np.int64(draw)


@pytest.mark.parametrize(
    ("draws", "parent"),
    [
        ([0, 0, 3], 103),  # best of the sample, not of the population (member 2)
        ([2, 0, 0], 102),
        ([1, 4, 3], 101),  # members 1 and 4 tie at 70: the earliest drawn wins
        ([4, 1, 3], 104),
    ],
)
def test_rea_parent_is_the_best_of_the_sample(
    space: NB201Space, draws: list[int], parent: int
) -> None:
    strategy = RegularizedEvolution(
        space, np.random.default_rng(0), FIDELITY, population_size=5, sample_size=3
    )
    for arch, signal in zip(range(100, 105), [10.0, 70.0, 95.0, 60.0, 70.0], strict=True):
        strategy.tell(Proposal(arch, FIDELITY), observe(Proposal(arch, FIDELITY), signal))
    strategy.rng = ScriptedDraws(draws)
    assert strategy.select_parent() == parent


def test_rea_sequential_run_equals_the_published_loop(space: NB201Space) -> None:
    """NAS-Bench-201's R_EA loop, written out with the same generator."""
    population_size, sample_size, cycles = 10, 3, 200
    rng = np.random.default_rng(11)
    population: deque[tuple[int, float]] = deque()
    history = []
    while len(population) < population_size:
        arch = space.sample(rng)
        population.append((arch, fake_signal(arch)))
        history.append(arch)
    while len(history) < cycles:
        sample = [population[i] for i in rng.integers(len(population), size=sample_size)]
        parent = max(sample, key=lambda member: member[1])
        child = space.mutate(parent[0], rng)
        population.append((child, fake_signal(child)))
        history.append(child)
        population.popleft()
    assert run("regularized_evolution", space, seed=11, steps=cycles) == history


def test_rea_with_more_workers_than_population(space: NB201Space) -> None:
    """Asks may outrun tells; the initial phase counts asks, and mutation waits for a parent."""
    strategy = RegularizedEvolution(space, np.random.default_rng(4), FIDELITY, population_size=3)
    reference = np.random.default_rng(4)
    pending = [strategy.ask() for _ in range(5)]  # 5 workers, nothing told yet
    assert [p.arch for p in pending] == [space.sample(reference) for _ in range(5)]
    first = pending.pop(0)
    strategy.tell(first, observe(first, 80.0))
    child = strategy.ask()  # past the initial phase: mutates the only member
    assert edges_changed(space, child.arch, first.arch) == 1


# --- REINFORCE -----------------------------------------------------------------------


def softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_reinforce_initial_policy_is_near_uniform_and_seeded(space: NB201Space) -> None:
    strategy = Reinforce(space, np.random.default_rng(0), FIDELITY)
    expected = 1e-3 * np.random.default_rng(0).standard_normal((6, 5))
    np.testing.assert_array_equal(strategy.logits, expected)
    np.testing.assert_allclose(strategy.policy_probabilities(), softmax(expected))
    np.testing.assert_allclose(strategy.policy_probabilities(), 0.2, atol=1e-3)


def test_reinforce_asks_follow_the_policy(space: NB201Space) -> None:
    strategy = Reinforce(space, np.random.default_rng(0), FIDELITY)
    ops = np.array([space.decision_table()[strategy.ask().arch] for _ in range(20_000)])
    frequencies = np.stack([(ops == op).mean(axis=0) for op in range(5)], axis=1)
    np.testing.assert_allclose(frequencies, strategy.policy_probabilities(), atol=0.015)


def test_reinforce_adam_steps_match_a_hand_computation(space: NB201Space) -> None:
    lr, m = 0.5, 0.9
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    strategy = Reinforce(
        space, np.random.default_rng(0), FIDELITY, learning_rate=lr, baseline_momentum=m
    )
    theta0 = strategy.logits.copy()
    rows = np.arange(6)
    archs = [space.index_of_decisions(ops) for ops in [(3, 3, 3, 3, 3, 3), (0, 1, 2, 3, 4, 0)]]
    rewards = [80.0, 90.0, 60.0]

    # Tell 1: the bias-corrected EMA of one reward is that reward; advantage 0, so the
    # gradient and Adam's first moment are 0 and the logits do not move.
    first = Proposal(archs[0], FIDELITY)
    strategy.tell(first, observe(first, rewards[0]))
    assert strategy.baseline == rewards[0]
    np.testing.assert_array_equal(strategy.logits, theta0)

    # Tell 2: baseline = (m(1-m) r1 + (1-m) r2) / (m(1-m) + (1-m)) = (m r1 + r2) / (1 + m).
    second = Proposal(archs[1], FIDELITY)
    strategy.tell(second, observe(second, rewards[1]))
    baseline2 = (m * rewards[0] + rewards[1]) / (1 + m)
    assert strategy.baseline == pytest.approx(baseline2, rel=1e-14)
    onehot2 = np.zeros((6, 5))
    onehot2[rows, [0, 1, 2, 3, 4, 0]] = 1
    grad2 = (rewards[1] - baseline2) * (softmax(theta0) - onehot2)
    m2 = (1 - beta1) * grad2  # step 1's moments are 0
    v2 = (1 - beta2) * grad2**2
    step2 = lr / (1 - beta1**2) * m2 / (np.sqrt(v2) / np.sqrt(1 - beta2**2) + eps)
    theta2 = theta0 - step2
    np.testing.assert_allclose(strategy.logits, theta2, rtol=1e-12, atol=1e-15)

    # Tell 3 (back to the first arch): the moments now carry tell 2's gradient.
    strategy.tell(first, observe(first, rewards[2]))
    weight3 = (1 - m) * (m**2 + m + 1)
    baseline3 = (1 - m) * (m**2 * rewards[0] + m * rewards[1] + rewards[2]) / weight3
    assert strategy.baseline == pytest.approx(baseline3, rel=1e-14)
    onehot3 = np.zeros((6, 5))
    onehot3[:, 3] = 1
    grad3 = (rewards[2] - baseline3) * (softmax(theta2) - onehot3)
    m3 = beta1 * m2 + (1 - beta1) * grad3
    v3 = beta2 * v2 + (1 - beta2) * grad3**2
    step3 = lr / (1 - beta1**3) * m3 / (np.sqrt(v3) / np.sqrt(1 - beta2**3) + eps)
    np.testing.assert_allclose(strategy.logits, theta2 - step3, rtol=1e-12, atol=1e-15)


def test_reinforce_concentrates_on_the_rewarded_op(space: NB201Space) -> None:
    strategy = Reinforce(space, np.random.default_rng(0), FIDELITY)
    for _ in range(300):
        proposal = strategy.ask()
        # +10 per edge that uses nor_conv_3x3 (op 3)
        reward = 10.0 * float((space.decision_table()[proposal.arch] == 3).sum())
        strategy.tell(proposal, observe(proposal, reward))
    assert (strategy.policy_probabilities()[:, 3] > 0.9).all()


def test_reinforce_policy_probabilities_is_a_copy(space: NB201Space) -> None:
    strategy = Reinforce(space, np.random.default_rng(0), FIDELITY)
    probabilities = strategy.policy_probabilities()
    probabilities[:] = 0
    np.testing.assert_allclose(strategy.policy_probabilities().sum(axis=1), 1.0)


class BrokenSetup(Strategy):
    def setup(self) -> None:
        raise KeyError("missing state")

    def ask(self) -> Proposal:
        return Proposal(0, self.fidelity)

    def tell(self, proposal: Proposal, observation: VisibleObservation) -> None:
        pass


class BrokenValidate(BrokenSetup):
    @classmethod
    def validate(cls, params) -> None:
        raise ZeroDivisionError("division by zero")


def test_a_plugin_that_raises_while_starting_ends_in_one_line(space: NB201Space) -> None:
    from harness.errors import StrategyError
    from harness.strategies import resolve_params

    kind = f"{__name__}:BrokenSetup"
    with pytest.raises(StrategyError, match="BrokenSetup raised while starting: KeyError"):
        make_strategy(kind, space, np.random.default_rng(0), FIDELITY, {})
    with pytest.raises(ConfigError, match="validate raised ZeroDivisionError"):
        resolve_params(f"{__name__}:BrokenValidate", {})

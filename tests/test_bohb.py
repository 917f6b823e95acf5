"""BOHB: Hyperband's brackets with hpbandster's KDE sampler, and NAS-Bench-201's variant
whose worker ignored the budget (every stage a new training at the protocol's epoch)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from test_multifidelity import DIGITS_SPEC, synthetic

from harness.errors import ConfigError
from harness.experiment import Benchmark
from harness.record import trajectory_frame
from harness.simulator import simulate
from harness.spec import StrategySpec, load_spec
from harness.strategies import make_strategy, resolve_params
from harness.table import Table
from harness.values import Budget

NB201_BOHB = {"min_epoch": 12, "max_epoch": 200, "ignore_budget": True}


@pytest.fixture(scope="module")
def digits() -> Benchmark:
    spec = load_spec(DIGITS_SPEC, {"seeds": [0]})
    return Benchmark(spec, Table.load(spec.table_path, spec.table_sha256))


def bohb(benchmark: Benchmark, seed: int = 0, **params):
    """A BOHB strategy on ``benchmark``, built as a run builds it."""
    return make_strategy(
        "bohb",
        benchmark.space,
        np.random.default_rng(seed),
        benchmark.spec.search.epoch,
        resolve_params("bohb", params),
        benchmark.evaluator.fidelities,
    )


def test_ignoring_the_budget_evaluates_every_stage_as_a_new_training_at_the_protocol_epoch(
    digits,
):
    # nominal budgets 4, 12, 36 around the protocol's epoch 4, as NB201's 12 / 200 were
    # around its 12: brackets of 9-3-1, 3-1 and 3 evaluations, all at epoch 4
    params = {"min_epoch": 4, "max_epoch": 36, "ignore_budget": True, "iterations": 3}
    strategy = bohb(digits, **params)
    assert strategy.rungs == pytest.approx([4.0, 12.0, 36.0])
    shown, observe = [], strategy.observe
    strategy.observe = lambda budget, observation: (
        shown.append(budget),
        observe(budget, observation),
    )
    budget = Budget(seconds=1e6)
    result = simulate(strategy, digits.evaluator, np.random.default_rng(0), budget)
    t = result.trajectory
    assert len(t) == 9 + 3 + 1 + 3 + 1 + 3
    assert set(t.epoch) == {4} and set(t.resumed_from) == {0}  # never a continuation
    assert len(set(t.trial)) == len(t)  # every evaluation is a training of its own
    first = sorted(range(9), key=lambda i: (-t.signal[i], i))[:3]
    assert t.arch[9:12] == [t.arch[i] for i in sorted(first)]  # the best third, entry order
    second = max(range(9, 12), key=lambda i: (t.signal[i], -i))
    assert t.arch[12] == t.arch[second]
    # a whole training is charged at every stage (the cost of a new 4-epoch training)
    for row in range(9, 13):
        assert t.cost_s[row] > 0.5 * min(t.cost_s[:9])
    # the model saw each result under its stage's nominal budget
    assert shown == [4.0] * 9 + [12.0] * 3 + [36.0] + [12.0] * 3 + [36.0] + [36.0] * 3


def test_nominal_budgets_past_the_protocol_epoch_need_ignore_budget(digits):
    bohb(digits, **NB201_BOHB)  # accepted: only labels
    with pytest.raises(ConfigError, match="max_epoch"):
        bohb(digits, min_epoch=12, max_epoch=200)


def test_the_model_proposes_once_a_budget_has_enough_results(long_table, tmp_path):
    benchmark = synthetic(long_table, tmp_path, overrides={"budget": {"seconds": 20000}})
    strategy = bohb(benchmark, random_fraction=0.0)
    proposals = []
    original = strategy.new_configuration

    def tracked(epoch: int) -> int:
        arch = original(epoch)
        proposals.append(strategy.sampler.last_model_budget)
        return arch

    strategy.new_configuration = tracked
    simulate(strategy, benchmark.evaluator, np.random.default_rng(0), benchmark.spec.budget)
    assert proposals[0] is None  # random before any model
    assert strategy.sampler.models  # a model was fitted ...
    assert any(budget is not None for budget in proposals)  # ... and proposed architectures


@pytest.fixture(scope="module")
def long_table(tmp_path_factory):
    from test_multifidelity import synthetic_table

    return synthetic_table(tmp_path_factory.mktemp("synthetic") / "long.h5")


@pytest.mark.parametrize("workers", [1, 4, 16])
def test_ignore_budget_runs_are_deterministic_with_any_worker_count(digits, workers):
    spec = dataclasses.replace(digits.spec, workers=workers)
    benchmark = Benchmark(spec, digits.table)
    params = resolve_params("bohb", {"min_epoch": 4, "max_epoch": 36, "ignore_budget": True})
    strategy = StrategySpec("BOHB", "bohb", params)
    first, again = (trajectory_frame([benchmark.run(strategy, 5)]) for _ in range(2))
    assert first.equals(again)
    assert set(first.epoch) == {4}

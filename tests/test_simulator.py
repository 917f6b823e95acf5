"""The discrete-event simulator: budgets, overrun rule, workers, sealing, determinism."""

from __future__ import annotations

import numpy as np
import pytest

from harness.errors import SpecError
from harness.evaluators.observation import Observation, Proposal, VisibleObservation
from harness.simulator import Budget, simulate
from harness.spaces import get_space
from harness.strategies.base import Strategy


class CountingStrategy(Strategy):
    """Proposes architectures 0, 1, 2, ... and remembers what it was told."""

    kind = "counting"

    def __init__(self, epoch: int = 12) -> None:
        super().__init__(get_space(), np.random.default_rng(0), epoch)
        self.next_arch = 0
        self.told: list[object] = []

    def ask(self) -> Proposal:
        self.next_arch += 1
        return Proposal(self.next_arch - 1, self.fidelity)

    def tell(self, proposal: Proposal, observation: VisibleObservation) -> None:
        self.told.append(observation)


def evaluator(costs: dict[int, float] | None = None, default_cost: float = 100.0):
    def evaluate(proposal: Proposal) -> Observation:
        cost = (costs or {}).get(proposal.arch, default_cost)
        visible = VisibleObservation(
            proposal.arch, proposal.epoch, signal=float(proposal.arch % 7), cost_s=cost, metrics={}
        )
        return Observation(visible, sealed={"test": 50.0 + proposal.arch})

    return evaluate


def test_discard_rule_drops_the_overrunning_evaluation_and_stops():
    strategy = CountingStrategy()
    result = simulate(strategy, evaluator(), Budget(seconds=250, overrun="discard"))
    assert result.evaluations == 2
    assert result.simulated_seconds == 200
    assert result.trajectory.completed == [True, True, False]
    assert len(strategy.told) == 2
    assert result.stop_reason == "seconds budget"


def test_finish_rule_completes_the_overrunning_evaluation_then_stops():
    strategy = CountingStrategy()
    result = simulate(strategy, evaluator(), Budget(seconds=250, overrun="finish"))
    assert result.evaluations == 3
    assert result.simulated_seconds == 300
    assert all(result.trajectory.completed)


def test_evaluations_and_epochs_budgets_stop_before_starting_more():
    by_count = simulate(CountingStrategy(), evaluator(), Budget(evaluations=5))
    assert by_count.evaluations == 5 and by_count.stop_reason == "evaluations budget"
    by_epochs = simulate(CountingStrategy(epoch=12), evaluator(), Budget(epochs=40))
    assert by_epochs.epochs == 36 and by_epochs.stop_reason == "epochs budget"


def test_all_three_budgets_are_counted_whichever_stops_the_run():
    result = simulate(CountingStrategy(), evaluator(), Budget(seconds=1e9, evaluations=4))
    assert (result.evaluations, result.epochs, result.simulated_seconds) == (4, 48, 400)


def test_strategy_only_ever_sees_visible_observations():
    strategy = CountingStrategy()
    simulate(strategy, evaluator(), Budget(evaluations=10))
    assert all(type(seen) is VisibleObservation for seen in strategy.told)
    assert not any(hasattr(seen, "sealed") for seen in strategy.told)


def test_sealed_metrics_are_recorded_in_the_trajectory():
    result = simulate(CountingStrategy(), evaluator(), Budget(evaluations=3))
    assert result.trajectory.sealed == {"test": [50.0, 51.0, 52.0]}


def test_incumbent_is_the_best_signal_so_far_earliest_on_ties():
    result = simulate(CountingStrategy(), evaluator(), Budget(evaluations=16))
    # signal = arch % 7: best 6 first reached by arch 6; arch 13 ties and must not replace it
    assert result.incumbent_arch == 6 and result.incumbent_signal == 6.0
    assert result.trajectory.incumbent_signal == sorted(result.trajectory.incumbent_signal)


def test_workers_run_in_parallel_and_results_arrive_in_completion_order():
    costs = {0: 300.0, 1: 100.0, 2: 100.0, 3: 100.0}
    strategy = CountingStrategy()
    result = simulate(strategy, evaluator(costs), Budget(seconds=300, overrun="discard"), workers=2)
    t = result.trajectory
    # worker 0 runs arch 0 (0-300); worker 1 runs 1 (0-100), 2 (100-200), 3 (200-300);
    # 0 and 3 both end at 300 and are told in start order
    assert t.arch[:4] == [1, 2, 0, 3]
    assert t.end_s[:4] == [100.0, 200.0, 300.0, 300.0]
    assert t.worker[:4] == [1, 1, 0, 1]
    assert result.simulated_seconds == 300.0


def test_ties_in_completion_time_resolve_in_start_order():
    result = simulate(CountingStrategy(), evaluator(), Budget(evaluations=4), workers=2)
    assert result.trajectory.arch == [0, 1, 2, 3]


def test_simulation_is_deterministic():
    a = simulate(CountingStrategy(), evaluator(), Budget(seconds=5000), workers=3)
    b = simulate(CountingStrategy(), evaluator(), Budget(seconds=5000), workers=3)
    assert a.trajectory.arch == b.trajectory.arch
    assert a.trajectory.end_s == b.trajectory.end_s


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({}, "sets no limit"),
        ({"seconds": -1}, "must be positive"),
        ({"seconds": 10, "overrun": "maybe"}, "overrun must be one of"),
    ],
)
def test_invalid_budgets_are_rejected(kwargs, message):
    with pytest.raises(SpecError, match=message):
        Budget(**kwargs)


def test_a_budget_too_small_for_one_evaluation_is_an_error():
    with pytest.raises(SpecError, match="too small"):
        simulate(CountingStrategy(), evaluator(), Budget(seconds=10))

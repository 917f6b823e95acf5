"""The discrete-event simulator: budgets, overrun rule, workers, sealing, determinism."""

from __future__ import annotations

import numpy as np
import pytest

from harness.errors import ConfigError, StrategyError
from harness.evaluators.base import Evaluator
from harness.simulator import simulate as run_simulation
from harness.spaces import get_space
from harness.strategies.base import Strategy
from harness.values import Budget, Observation, Proposal, VisibleObservation


class CountingStrategy(Strategy):
    """Proposes architectures 0, 1, 2, ... and remembers what it was told."""

    def __init__(self, epoch: int = 12) -> None:
        super().__init__(get_space("nb201"), np.random.default_rng(0), epoch)

    def setup(self) -> None:
        self.next_arch = 0
        self.told: list[object] = []

    def ask(self) -> Proposal:
        self.next_arch += 1
        return Proposal(self.next_arch - 1, self.fidelity)

    def tell(self, proposal: Proposal, observation: VisibleObservation) -> None:
        self.told.append(observation)


class FixedEvaluator(Evaluator):
    """Signal arch % 7, sealed test 50 + arch, cost per arch (default 100 s)."""

    def __init__(self, costs: dict[int, float] | None, default_cost: float) -> None:
        self.space = get_space("nb201")
        self.fidelities = (12,)
        self.costs, self.default_cost = costs or {}, default_cost

    def evaluate(self, proposal: Proposal, rng: np.random.Generator) -> Observation:
        return Observation(
            arch=proposal.arch,
            epoch=proposal.epoch,
            signal=float(proposal.arch % 7),
            cost_s=self.costs.get(proposal.arch, self.default_cost),
            metrics={},
            sealed={"test": 50.0 + proposal.arch},
        )

    def final_metrics(self, arch, refs):
        return {}


def evaluator(costs: dict[int, float] | None = None, default_cost: float = 100.0) -> Evaluator:
    return FixedEvaluator(costs, default_cost)


def simulate(strategy, evaluator, budget, workers=1):
    return run_simulation(strategy, evaluator, np.random.default_rng(0), budget, workers)


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
    by_epochs = simulate(CountingStrategy(), evaluator(), Budget(epochs=40))
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
        ({"seconds": -1}, r"\[seconds\] must be > 0"),
        ({"seconds": float("inf")}, r"\[seconds\] must be a finite number"),
        ({"seconds": float("nan")}, r"\[seconds\] must be a finite number"),
        ({"evaluations": 0}, r"\[evaluations\] must be >= 1"),
        ({"seconds": 10, "overrun": "maybe"}, r"\[overrun\] must be one of"),
    ],
)
def test_invalid_budgets_are_rejected(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        Budget(**kwargs)


def test_a_budget_too_small_for_one_evaluation_is_an_error():
    with pytest.raises(ConfigError, match="too small"):
        simulate(CountingStrategy(), evaluator(), Budget(seconds=10))


def test_a_budget_that_never_runs_out_is_stopped_with_an_error(monkeypatch):
    import harness.simulator as simulator

    monkeypatch.setattr(simulator, "MAX_EVALUATIONS", 50)
    with pytest.raises(ConfigError, match=r"\[budget\] lets a run go past 50 evaluations"):
        simulate(CountingStrategy(), evaluator(default_cost=1e-9), Budget(seconds=1e300))


def test_keep_rule_completes_the_overrunning_evaluation_without_telling_it():
    strategy = CountingStrategy()
    # signal arch % 7: arch 2 (the one that crosses 250 s) beats archs 0 and 1
    result = simulate(strategy, evaluator(), Budget(seconds=250, overrun="keep"))
    t = result.trajectory
    assert (result.evaluations, result.simulated_seconds) == (3, 300)
    assert t.completed == [True, True, True] and t.told == [True, True, False]
    assert len(strategy.told) == 2
    assert result.incumbent_arch == 2  # a candidate final architecture all the same
    assert result.stop_reason == "seconds budget"


def test_the_three_overrun_rules_differ_only_in_the_overrunning_evaluation():
    runs = {
        rule: simulate(CountingStrategy(), evaluator(), Budget(seconds=250, overrun=rule))
        for rule in ("discard", "finish", "keep")
    }
    assert [runs[r].trajectory.arch for r in runs] == [[0, 1, 2]] * 3
    assert [runs[r].trajectory.completed[-1] for r in runs] == [False, True, True]
    assert [runs[r].trajectory.told[-1] for r in runs] == [False, True, False]


def test_a_waiting_worker_asks_again_after_the_next_result():
    class Rounds(CountingStrategy):
        def setup(self) -> None:
            super().setup()
            self.in_round = 0

        def ask(self) -> Proposal | None:
            if self.in_round == 2 or self.next_arch >= 4:
                return None  # a round of two waits for both results
            self.in_round += 1
            return super().ask()

        def tell(self, proposal: Proposal, observation: VisibleObservation) -> None:
            super().tell(proposal, observation)
            if len(self.told) % 2 == 0:
                self.in_round = 0

    costs = {0: 100.0, 1: 300.0, 2: 100.0, 3: 100.0}
    result = simulate(Rounds(), evaluator(costs), Budget(seconds=1000), workers=3)
    t = result.trajectory
    # worker 2 waits from the start; round two starts when arch 1 ends at 300, on the
    # free workers in worker order
    assert t.arch == [0, 1, 2, 3]
    assert t.start_s == [0.0, 0.0, 300.0, 300.0]
    assert t.worker == [0, 1, 0, 1]
    assert result.stop_reason == "strategy has nothing to propose"


class SetUpFirst(CountingStrategy):
    """Does one-off work in setup (an estimator's scores, say) that costs 250 s."""

    def setup(self) -> None:
        super().setup()
        self.setup_cost_s = 250.0


def test_a_one_off_setup_cost_is_charged_before_the_first_evaluation_on_every_worker():
    result = simulate(SetUpFirst(), evaluator(), Budget(seconds=1000), workers=2)
    t = result.trajectory
    assert result.setup_s == 250.0
    assert min(t.start_s) == 250.0 and sorted(t.start_s)[:2] == [250.0, 250.0]
    # 750 s remain for two workers of 100 s trainings: 7 each, the 8th would overrun
    assert result.evaluations == 14 and result.simulated_seconds == 950.0
    plain = simulate(CountingStrategy(), evaluator(), Budget(seconds=1000), workers=2)
    assert plain.setup_s == 0.0 and plain.evaluations == 20


def test_a_setup_cost_that_eats_the_whole_budget_or_is_not_a_number_ends_in_one_line():
    with pytest.raises(ConfigError, match="one-off set-up costs 250 simulated seconds"):
        simulate(SetUpFirst(), evaluator(), Budget(seconds=250))
    for bad in (float("nan"), -1.0, float("inf"), "5", True):
        strategy = CountingStrategy()
        strategy.setup_cost_s = bad
        with pytest.raises(StrategyError, match="setup_cost_s"):
            simulate(strategy, evaluator(), Budget(seconds=1000))

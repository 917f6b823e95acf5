"""The deterministic discrete-event clock that runs a strategy against an evaluator.

Simulated time advances only by each evaluation's recorded cost, never by real time, so a
trajectory is the same on every machine. ``workers`` evaluations run in parallel: a free
worker asks the strategy for a proposal, the evaluator answers at once (its cost fixes the
completion time), and the strategy is told results in completion order (ties broken by the
order the evaluations started).

The seal: a proposal is range-checked before it is evaluated; the strategy is told a
fresh copy of the visible observation, while the incumbent and the trajectory are taken
from the evaluator's own :class:`~harness.values.Observation`, which the strategy never
gets, so nothing a strategy does to what it was told changes the run's record.

Budgets: simulated seconds, evaluations and epochs are all counted; any of them may stop
the run. An evaluation whose completion would pass the seconds budget follows the
protocol's explicit ``overrun`` rule:

- ``"discard"``: it is not completed and not told (NAS-Bench-201's released code stops
  the search there); its worker stops.
- ``"finish"``: it completes and is told, then its worker stops.

An evaluation that would pass the evaluations or epochs budget is never started.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from harness.errors import ConfigError, HarnessError, StrategyError
from harness.evaluators.base import Evaluator
from harness.strategies.base import Strategy
from harness.values import Budget, Observation, Proposal

#: a run that reaches this many evaluations is stopped with an error: its budget (say, a
#: seconds budget far beyond the table's costs) would otherwise let it grow without end
MAX_EVALUATIONS = 1_000_000


@dataclass
class Trajectory:
    """One row per evaluation, in the order the strategy was told (discarded ones last)."""

    worker: list[int] = field(default_factory=list)
    start_s: list[float] = field(default_factory=list)
    end_s: list[float] = field(default_factory=list)
    arch: list[int] = field(default_factory=list)
    epoch: list[int] = field(default_factory=list)
    cost_s: list[float] = field(default_factory=list)
    signal: list[float] = field(default_factory=list)
    seed_used: list[str] = field(default_factory=list)
    completed: list[bool] = field(default_factory=list)
    incumbent_arch: list[int] = field(default_factory=list)
    incumbent_signal: list[float] = field(default_factory=list)
    visible: dict[str, list[float]] = field(default_factory=dict)
    sealed: dict[str, list[float]] = field(default_factory=dict)
    measured_s: list[float] = field(default_factory=list)

    def append(
        self,
        worker: int,
        start: float,
        observation: Observation,
        completed: bool,
        incumbent: tuple[int, float],
    ) -> None:
        self.worker.append(worker)
        self.start_s.append(start)
        self.end_s.append(start + observation.cost_s)
        self.arch.append(observation.arch)
        self.epoch.append(observation.epoch)
        self.cost_s.append(observation.cost_s)
        self.signal.append(observation.signal)
        self.seed_used.append(observation.seed)
        self.completed.append(completed)
        self.incumbent_arch.append(incumbent[0])
        self.incumbent_signal.append(incumbent[1])
        for name, value in observation.metrics.items():
            self.visible.setdefault(name, []).append(value)
        for name, value in observation.sealed.items():
            self.sealed.setdefault(name, []).append(value)
        if observation.measured_s is not None:
            self.measured_s.append(observation.measured_s)

    def __len__(self) -> int:
        return len(self.arch)


@dataclass
class RunResult:
    """The trajectory and the totals of one run."""

    trajectory: Trajectory
    incumbent_arch: int
    incumbent_signal: float
    simulated_seconds: float
    evaluations: int
    epochs: int
    stop_reason: str
    #: real seconds spent inside the strategy's ask/tell (host-dependent, never simulated)
    strategy_wall_s: float


def _strategy_call(strategy: Strategy, what: str, call: Callable[..., Any], *args: Any) -> Any:
    """Run one strategy call; anything it raises becomes a one-line StrategyError."""
    try:
        return call(*args)
    except Exception as error:  # a strategy is plugin code: it may raise anything
        detail = " ".join(str(error).split())
        raise StrategyError(
            f"strategy {type(strategy).__name__} raised in {what}: {type(error).__name__}: {detail}"
        ) from error


def checked_proposal(proposal: object, evaluator: Evaluator, strategy: Strategy) -> Proposal:
    """A fresh, range-checked copy of what ``ask`` returned."""
    name = type(strategy).__name__
    if not isinstance(proposal, Proposal):
        raise StrategyError(f"strategy {name} returned {proposal!r} from ask, not a Proposal")
    try:
        arch = evaluator.space.check_index(proposal.arch)
    except HarnessError as error:
        raise StrategyError(f"strategy {name} proposed an invalid architecture: {error}") from None
    epoch = proposal.epoch
    if (
        isinstance(epoch, bool)
        or not isinstance(epoch, (int, np.integer))
        or (epoch not in evaluator.fidelities)
    ):
        shown = evaluator.fidelities
        allowed = f"{shown[0]}..{shown[-1]}" if len(shown) > 3 else ", ".join(map(str, shown))
        raise StrategyError(
            f"strategy {name} proposed epoch {epoch!r}; this benchmark evaluates {allowed}"
        )
    return Proposal(arch, int(epoch))


def simulate(
    strategy: Strategy,
    evaluator: Evaluator,
    rng: np.random.Generator,
    budget: Budget,
    workers: int = 1,
) -> RunResult:
    """Run ``strategy`` until the budget stops it; deterministic for a given input.

    ``rng`` is the run's benchmark stream, handed to every evaluation.
    """
    if workers < 1:
        raise ConfigError(f"must be at least 1, got {workers}", "runs.workers")
    trajectory = Trajectory()
    in_flight: list[tuple[float, int, int, float, Proposal, Observation]] = []
    started = started_epochs = 0
    completed = completed_epochs = 0
    best_arch, best_signal = -1, -np.inf
    clock = 0.0
    stop_reason = "budget exhausted"
    discarded: list[tuple[int, float, Observation]] = []
    strategy_wall = 0.0
    active = set(range(workers))

    def start(worker: int, now: float) -> None:
        nonlocal started, started_epochs, strategy_wall, stop_reason
        if budget.evaluations is not None and started >= budget.evaluations:
            active.discard(worker)
            stop_reason = "evaluations budget"
            return
        if started >= MAX_EVALUATIONS:
            raise ConfigError(
                f"lets a run go past {MAX_EVALUATIONS:,} evaluations; set a budget the "
                "benchmark's costs exhaust, or an evaluations budget",
                "budget",
            )
        tic = time.perf_counter()
        asked = _strategy_call(strategy, "ask", strategy.ask)
        strategy_wall += time.perf_counter() - tic
        proposal = checked_proposal(asked, evaluator, strategy)
        if budget.epochs is not None and started_epochs + proposal.epoch > budget.epochs:
            active.discard(worker)
            stop_reason = "epochs budget"
            return
        observation = evaluator.evaluate(proposal, rng)
        end = now + observation.cost_s
        if budget.seconds is not None and end > budget.seconds:
            active.discard(worker)
            stop_reason = "seconds budget"
            if budget.overrun == "discard":
                discarded.append((worker, now, observation))
                return
        started += 1
        started_epochs += proposal.epoch
        heapq.heappush(in_flight, (end, started, worker, now, proposal, observation))

    for worker in range(workers):
        start(worker, 0.0)
    while in_flight:
        end, _, worker, begun, proposal, observation = heapq.heappop(in_flight)
        clock = end
        tic = time.perf_counter()
        _strategy_call(strategy, "tell", strategy.tell, proposal, observation.visible())
        strategy_wall += time.perf_counter() - tic
        completed += 1
        completed_epochs += proposal.epoch
        if observation.signal > best_signal:
            best_arch, best_signal = observation.arch, observation.signal
        trajectory.append(worker, begun, observation, True, (best_arch, best_signal))
        if worker in active:
            start(worker, end)
    for worker, begun, observation in discarded:
        trajectory.append(worker, begun, observation, False, (best_arch, best_signal))
    if completed == 0:
        raise ConfigError("is too small: not a single evaluation fits in it", "budget")
    return RunResult(
        trajectory=trajectory,
        incumbent_arch=best_arch,
        incumbent_signal=float(best_signal),
        simulated_seconds=clock,
        evaluations=completed,
        epochs=completed_epochs,
        stop_reason=stop_reason,
        strategy_wall_s=strategy_wall,
    )

"""The deterministic discrete-event clock that runs a strategy against an evaluator.

Simulated time advances only by each evaluation's recorded cost, never by real time, so a
trajectory is the same on every machine. ``workers`` evaluations run in parallel: a free
worker asks the strategy for a proposal, the evaluator answers at once (its cost fixes the
completion time), and the strategy is told results in completion order (ties broken by the
order the evaluations started). The strategy sees only the visible observation.

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
from typing import Literal

import numpy as np

from harness.errors import SpecError
from harness.evaluators.observation import Observation, Proposal
from harness.strategies.base import Strategy

OVERRUN_RULES = ("discard", "finish")


@dataclass(frozen=True)
class Budget:
    """When a run stops: any limit set here; ``None`` means not limited by it."""

    seconds: float | None = None
    evaluations: int | None = None
    epochs: int | None = None
    overrun: Literal["discard", "finish"] = "discard"

    def __post_init__(self) -> None:
        if self.seconds is None and self.evaluations is None and self.epochs is None:
            raise SpecError("[budget] sets no limit: give seconds, evaluations or epochs")
        if self.overrun not in OVERRUN_RULES:
            raise SpecError(
                f"[budget] overrun must be one of {', '.join(OVERRUN_RULES)}, got {self.overrun!r}"
            )
        for name in ("seconds", "evaluations", "epochs"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise SpecError(f"[budget] {name} must be positive, got {value!r}")


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
    completed: list[bool] = field(default_factory=list)
    incumbent_arch: list[int] = field(default_factory=list)
    incumbent_signal: list[float] = field(default_factory=list)
    visible: dict[str, list[float]] = field(default_factory=dict)
    sealed: dict[str, list[float]] = field(default_factory=dict)

    def append(
        self,
        worker: int,
        start: float,
        observation: Observation,
        completed: bool,
        incumbent: tuple[int, float],
    ) -> None:
        seen = observation.visible
        self.worker.append(worker)
        self.start_s.append(start)
        self.end_s.append(start + seen.cost_s)
        self.arch.append(seen.arch)
        self.epoch.append(seen.epoch)
        self.cost_s.append(seen.cost_s)
        self.signal.append(seen.signal)
        self.completed.append(completed)
        self.incumbent_arch.append(incumbent[0])
        self.incumbent_signal.append(incumbent[1])
        for name, value in seen.metrics.items():
            self.visible.setdefault(name, []).append(value)
        for name, value in observation.sealed.items():
            self.sealed.setdefault(name, []).append(value)

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


Evaluate = Callable[[Proposal], Observation]


def simulate(strategy: Strategy, evaluate: Evaluate, budget: Budget, workers: int = 1) -> RunResult:
    """Run ``strategy`` until the budget stops it; deterministic for a given input."""
    if workers < 1:
        raise SpecError(f"[runs] workers must be at least 1, got {workers}")
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
        tic = time.perf_counter()
        proposal = strategy.ask()
        strategy_wall += time.perf_counter() - tic
        if budget.epochs is not None and started_epochs + proposal.epoch > budget.epochs:
            active.discard(worker)
            stop_reason = "epochs budget"
            return
        observation = evaluate(proposal)
        end = now + observation.visible.cost_s
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
        strategy.tell(proposal, observation.visible)
        strategy_wall += time.perf_counter() - tic
        completed += 1
        completed_epochs += proposal.epoch
        if observation.visible.signal > best_signal:
            best_arch, best_signal = proposal.arch, observation.visible.signal
        trajectory.append(worker, begun, observation, True, (best_arch, best_signal))
        if worker in active:
            start(worker, end)
    for worker, begun, observation in discarded:
        trajectory.append(worker, begun, observation, False, (best_arch, best_signal))
    if completed == 0:
        raise SpecError("[budget] is too small: not a single evaluation fits in it")
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

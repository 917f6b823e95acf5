"""The deterministic discrete-event clock that runs a strategy against an evaluator.

Simulated time advances only by each evaluation's recorded cost, never by real time, so a
trajectory is the same on every machine. ``workers`` evaluations run in parallel: a free
worker asks the strategy for a proposal, the evaluator answers at once (its cost fixes the
completion time), and the strategy is told results in completion order (ties broken by the
order the evaluations started). After a result is told, the free workers ask in worker
order: the one that finished, and any that were told to wait. A strategy that has nothing
to propose yet (a synchronous bracket waiting for its rung) returns ``None`` from ``ask``:
that worker waits for the next result; when nothing is in flight either, the run ends
("strategy has nothing to propose"). Nothing here depends on real time, the host, the
executor or how fast the strategy is.

Trials: each new proposal starts a training, numbered in start order (the ``trial`` every
``tell`` reports). ``Proposal(arch, e2, trial=t)`` continues training ``t``, which must be
this run's training of ``arch``, paused (its last evaluation completed) at an epoch
``e1 < e2``; anything else is a one-line :class:`~harness.errors.StrategyError`. The
evaluator answers it with the same training (its seed kept under every seed policy) and
charges only the epochs it adds (:mod:`harness.evaluators.base`); the epochs budget counts
epochs actually trained, and the trajectory records each row's trial and the epoch it
continued from.

The incumbent is the best signal among the completed evaluations at the highest epoch any
of them reached, the earliest on ties: with one fidelity, simply the best signal so far.
A lower-fidelity signal never beats a higher-fidelity one (hpbandster's ``get_incumbent_id``
likewise ranks only the runs on the largest budget).

The seal: a proposal is range-checked before it is evaluated; the strategy is told a
fresh copy of the visible observation, while the incumbent and the trajectory are taken
from the evaluator's own :class:`~harness.values.Observation`, which the strategy never
gets, so nothing a strategy does to what it was told changes the run's record.

Budgets: simulated seconds, evaluations and epochs are all counted; any of them may stop
the run. An evaluation whose completion would pass the seconds budget follows the
strategy's ``overrun`` rule (the spec's ``[budget] overrun`` unless its ``[[strategy]]``
sets one); in every case its worker then stops:

- ``"discard"``: it is not completed and not told (NAS-Bench-201's released REA and
  random search stop the search there and drop it).
- ``"finish"``: it completes and is told.
- ``"keep"``: it completes and may become the incumbent, but is not told (NAS-Bench-201's
  released REINFORCE records it as a candidate final architecture and stops before
  learning from it).

An evaluation that would pass the evaluations or epochs budget is never started.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from harness.errors import ConfigError, HarnessError, StrategyError
from harness.evaluators.base import Evaluator
from harness.strategies.base import Strategy
from harness.values import Budget, Observation, Proposal, Resume

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
    #: the training each row belongs to, and the epoch it continued from (0: a new one)
    trial: list[int] = field(default_factory=list)
    resumed_from: list[int] = field(default_factory=list)
    #: whether the strategy was told the result (the "keep" and "discard" rules do not)
    told: list[bool] = field(default_factory=list)
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
        trial: int,
        told: bool,
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
        self.trial.append(trial)
        self.resumed_from.append(observation.resumed_from)
        self.told.append(told)
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
    #: the epoch the incumbent was evaluated at
    incumbent_epoch: int
    simulated_seconds: float
    evaluations: int
    #: epochs trained (a continuation counts only the epochs it added)
    epochs: int
    stop_reason: str
    #: real seconds spent inside the strategy's ask/tell (host-dependent, never simulated)
    strategy_wall_s: float


def _strategy_call(strategy: Strategy, what: str, call: Callable[..., Any], *args: Any) -> Any:
    """Run one strategy call; anything it raises becomes a one-line StrategyError."""
    try:
        return call(*args)
    except KeyboardInterrupt:  # Ctrl-C, not the strategy's doing
        raise
    except BaseException as error:  # plugin code: it may raise anything, sys.exit included
        detail = " ".join(str(error).split())
        raise StrategyError(
            f"strategy {type(strategy).__name__} raised in {what}: {type(error).__name__}: {detail}"
        ) from error


@dataclass
class _Trial:
    """One training of this run: its architecture, seed, and how far it has completed."""

    arch: int
    seed: str
    epoch: int = 0
    running: bool = True


def checked_proposal(
    proposal: object,
    evaluator: Evaluator,
    strategy: Strategy,
    trials: Sequence[_Trial] = (),
) -> Proposal:
    """A fresh, range-checked copy of what ``ask`` returned; a continuation must name a
    paused training of ``trials`` of the same architecture, to continue it further."""
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
    trial = proposal.trial
    if trial is None:
        return Proposal(arch, int(epoch))
    claim = f"strategy {name} continued trial {trial!r} to epoch {epoch}"
    if isinstance(trial, bool) or not isinstance(trial, (int, np.integer)):
        raise StrategyError(f"{claim}: a trial is the int id a tell reported")
    if not 0 <= trial < len(trials):
        raise StrategyError(f"{claim}, but this run started no such trial")
    known = trials[trial]
    if known.arch != arch:
        raise StrategyError(f"{claim} as architecture {arch}, but it trains {known.arch}")
    if known.running:
        raise StrategyError(f"{claim} while it is still training")
    if known.epoch == 0:
        raise StrategyError(f"{claim}, but it never completed an evaluation")
    if epoch <= known.epoch:
        raise StrategyError(f"{claim}, but it is already trained to epoch {known.epoch}")
    return Proposal(arch, int(epoch), int(trial))


def simulate(
    strategy: Strategy,
    evaluator: Evaluator,
    rng: np.random.Generator,
    budget: Budget,
    workers: int = 1,
) -> RunResult:
    """Run ``strategy`` until the budget stops it; deterministic for a given input.

    ``rng`` is the run's benchmark stream, handed to every evaluation; ``budget.overrun``
    is the rule this strategy follows.
    """
    if workers < 1:
        raise ConfigError(f"must be at least 1, got {workers}", "runs.workers")
    trajectory = Trajectory()
    #: (end, start order, worker, begun, proposal, observation, trial, told)
    in_flight: list[tuple[float, int, int, float, Proposal, Observation, int, bool]] = []
    trials: list[_Trial] = []
    started = started_epochs = 0
    completed = completed_epochs = 0
    best_arch, best_epoch, best_signal = -1, -1, -np.inf
    clock = 0.0
    stop_reason = "budget exhausted"
    discarded: list[tuple[int, float, Observation, int]] = []
    strategy_wall = 0.0
    active = set(range(workers))
    waiting: list[int] = []

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
        if asked is None:
            waiting.append(worker)
            return
        proposal = checked_proposal(asked, evaluator, strategy, trials)
        resume = None
        if proposal.trial is not None:
            paused = trials[proposal.trial]
            resume = Resume(paused.epoch, paused.seed)
        trained = proposal.epoch - (0 if resume is None else resume.epoch)
        if budget.epochs is not None and started_epochs + trained > budget.epochs:
            active.discard(worker)
            stop_reason = "epochs budget"
            return
        if resume is None:
            observation = evaluator.evaluate(proposal, rng)
            trial = len(trials)
            trials.append(_Trial(observation.arch, observation.seed))
        else:
            observation = evaluator.evaluate(proposal, rng, resume)
            trial = proposal.trial
            trials[trial].running = True
        end = now + observation.cost_s
        told = True
        if budget.seconds is not None and end > budget.seconds:
            active.discard(worker)
            stop_reason = "seconds budget"
            if budget.overrun == "discard":
                trials[trial].running = False
                discarded.append((worker, now, observation, trial))
                return
            told = budget.overrun == "finish"
        started += 1
        started_epochs += trained
        heapq.heappush(in_flight, (end, started, worker, now, proposal, observation, trial, told))

    for worker in range(workers):
        start(worker, 0.0)
    while in_flight:
        end, _, worker, begun, proposal, observation, trial, told = heapq.heappop(in_flight)
        clock = end
        trials[trial].epoch, trials[trial].running = proposal.epoch, False
        if told:
            tic = time.perf_counter()
            _strategy_call(strategy, "tell", strategy.tell, proposal, observation.visible(trial))
            strategy_wall += time.perf_counter() - tic
        completed += 1
        completed_epochs += proposal.epoch - observation.resumed_from
        if (observation.epoch, observation.signal) > (best_epoch, best_signal):
            best_arch, best_epoch, best_signal = (
                observation.arch,
                observation.epoch,
                observation.signal,
            )
        trajectory.append(worker, begun, observation, True, (best_arch, best_signal), trial, told)
        free = sorted([worker, *waiting]) if told else [worker]
        if told:
            waiting.clear()
        for each in free:
            if each in active:
                start(each, end)
    if waiting and not in_flight and set(waiting) & active:
        stop_reason = "strategy has nothing to propose"
    for worker, begun, observation, trial in discarded:
        trajectory.append(worker, begun, observation, False, (best_arch, best_signal), trial, False)
    if completed == 0:
        raise ConfigError("is too small: not a single evaluation fits in it", "budget")
    return RunResult(
        trajectory=trajectory,
        incumbent_arch=best_arch,
        incumbent_signal=float(best_signal),
        incumbent_epoch=best_epoch,
        simulated_seconds=clock,
        evaluations=completed,
        epochs=completed_epochs,
        stop_reason=stop_reason,
        strategy_wall_s=strategy_wall,
    )

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

One-off costs: a strategy whose :meth:`~harness.strategies.Strategy.setup` does work a
search must pay for before its first proposal (scoring candidates with an estimator,
fitting a predictor, training a supernet) sets ``setup_cost_s`` to what that work cost.
The clock charges it first: every worker starts at that time, and it counts against the
seconds budget like any training.

Scores: a strategy may ask for the experiment's estimator's score of an architecture
instead of a training (``ScoreRequest(arch)``, answered from a pinned estimate file,
:mod:`harness.estimators.pinned`). The score occupies the asking worker for its measured
cost, exactly as a training occupies it for its cost, and is told (``tell(request,
Scored)``) in completion order with the trainings. A score counts against the seconds
budget only (a score that would pass it is not told and its worker stops); it is no
evaluation and no epoch, and adds no trajectory row: ``RunResult.scores`` and
``score_s`` count them.

Each call into the strategy (its construction and ``setup``, every ``ask`` and ``tell``)
may last at most ``call_timeout_s`` real seconds (``[runs] call_timeout_s``,
:data:`CALL_TIMEOUT_S` unless a spec sets it): a call that runs past it is interrupted and
the run ends with a one-line :class:`~harness.errors.StrategyError`, instead of hanging.
The one exception is the setup of a weight-sharing strategy, which is its supernet
training (:mod:`harness.experiment`).
One watchdog thread per process enforces it (a call costs two dict operations). In the
main thread the call is interrupted by a signal, so even a ``time.sleep`` ends; in another
thread (a Dask worker's) an exception is raised into the call as soon as it runs Python
code again, so a call blocked inside C code ends only when that returns.
"""

from __future__ import annotations

import ctypes
import os
import reprlib
import signal
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from heapq import heappop, heappush
from operator import attrgetter
from time import perf_counter, sleep
from typing import Any

import numpy as np

from harness.errors import CallTimeout, ConfigError, HarnessError, StrategyError
from harness.evaluators.base import Evaluator
from harness.spaces.base import SearchSpace
from harness.strategies.base import Strategy
from harness.values import Budget, Observation, Proposal, Resume, Scored, ScoreRequest

#: a run that reaches this many evaluations is stopped with an error: its budget (say, a
#: seconds budget far beyond the table's costs) would otherwise let it grow without end
MAX_EVALUATIONS = 1_000_000
#: real seconds one strategy call may take unless a spec sets ``[runs] call_timeout_s``:
#: generous (the model-based strategies' slowest ask takes well under a second here)
CALL_TIMEOUT_S = 600.0


#: thread id -> (deadline on the perf_counter clock, seconds) of the strategy call that
#: thread is in
_deadlines: dict[int, tuple[float, float]] = {}
#: thread id -> seconds, of a call the watchdog ended (the exception is on its way)
_expired: dict[int, float] = {}
_lock = threading.Lock()
_watchdog: threading.Thread | None = None
_signal_ready = _signal_tried = False
#: how often the watchdog looks, at most (seconds); shorter limits are checked sooner
WATCH_EVERY_S = 0.5


def _on_alarm(signum: int, frame: Any) -> None:
    seconds = _expired.pop(threading.get_ident(), None)
    if seconds is not None:
        raise CallTimeout(seconds)


def _interrupt(ident: int, exception: type[BaseException] | None) -> None:
    """Raise ``exception`` in thread ``ident`` when it next runs Python code (None: take
    back one not raised yet)."""
    ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(ident), None if exception is None else ctypes.py_object(exception)
    )


def _watch() -> None:
    main = threading.main_thread().ident
    while True:
        now = perf_counter()
        nearest = WATCH_EVERY_S
        for ident, (deadline, seconds) in list(_deadlines.items()):
            if now < deadline:
                nearest = min(nearest, deadline - now)
                continue
            with _lock:
                if _deadlines.pop(ident, None) is None:  # it has just returned
                    continue
                _expired[ident] = seconds
            if ident == main and _signal_ready:
                signal.pthread_kill(ident, signal.SIGALRM)  # ends a sleep in the call too
            else:
                _interrupt(ident, CallTimeout)
        sleep(max(nearest, 0.01))


def _forget_watchdog() -> None:  # a forked child has no watchdog thread and no calls yet
    global _watchdog, _lock
    _watchdog, _lock = None, threading.Lock()
    _deadlines.clear()
    _expired.clear()


os.register_at_fork(after_in_child=_forget_watchdog)


def _start_watchdog() -> None:
    """The process's watchdog thread, and (from the main thread, if SIGALRM is free) the
    handler through which it interrupts the main thread's calls."""
    global _watchdog, _signal_ready, _signal_tried
    if threading.current_thread() is threading.main_thread() and not _signal_tried:
        _signal_tried = True
        alarm = getattr(signal, "SIGALRM", None)  # none on Windows: the exception way only
        if alarm is not None and signal.getsignal(alarm) in (signal.SIG_DFL, signal.SIG_IGN):
            signal.signal(signal.SIGALRM, _on_alarm)
            _signal_ready = True
    with _lock:
        if _watchdog is None:
            _watchdog = threading.Thread(target=_watch, name="harness-call-timeout", daemon=True)
            _watchdog.start()


def limited(seconds: float | None, call: Callable[..., Any], *args: Any) -> Any:
    """``call(*args)``, interrupted by :class:`~harness.errors.CallTimeout` after
    ``seconds`` real seconds (None: no limit)."""
    if seconds is None:
        return call(*args)
    if _watchdog is None or not _signal_tried:
        _start_watchdog()
    ident = threading.get_ident()
    _deadlines[ident] = (perf_counter() + seconds, seconds)
    try:
        return call(*args)
    finally:
        if _deadlines.pop(ident, None) is None:
            _taken(ident)


def _taken(ident: int) -> None:
    """The watchdog took the deadline of thread ``ident``'s call: it ended the call, or is
    about to. If the call returned first, take back the exception not raised yet."""
    with _lock:  # (the watchdog marks it expired under the lock)
        pending = _expired.pop(ident, None) is not None
    if pending and not (_signal_ready and ident == threading.main_thread().ident):
        _interrupt(ident, None)  # it returned just in time: no exception after all


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
    #: simulated seconds charged for the strategy's one-off set-up, before any evaluation
    setup_s: float = 0.0
    #: what the strategy's own search did, for the record (:meth:`Strategy.search_log`)
    search_log: dict[str, Any] | None = None
    #: score requests the strategy was told the answer to (a draw a sampled estimate file
    #: does not cover counts, at no cost), and the simulated seconds they cost
    scores: int = 0
    score_s: float = 0.0


def _failed(
    strategy: Strategy, what: str, error: BaseException, timeout_s: float | None
) -> StrategyError:
    """The one-line error of a strategy call that raised ``error`` (or ran out of time)."""
    name = type(strategy).__name__
    if isinstance(error, CallTimeout):
        return StrategyError(
            f"strategy {name} did not return from {what} within {timeout_s:g} s; "
            "raise [runs] call_timeout_s if it needs longer"
        )
    detail = " ".join(str(error).split())
    return StrategyError(f"strategy {name} raised in {what}: {type(error).__name__}: {detail}")


def _cause(error: BaseException) -> BaseException | None:
    """What a StrategyError is raised from: the strategy's own error, not a timeout."""
    return None if isinstance(error, CallTimeout) else error


#: the places in a trial, one training of this run: ``[arch, seed, epoch completed,
#: running]``; a list rather than an object, as one is made per evaluation and a list is
#: made in half the time
_ARCH, _SEED, _EPOCH, _RUNNING = range(4)


def checked_proposal(
    proposal: object,
    evaluator: Evaluator,
    strategy: Strategy,
    trials: Sequence[list[Any]] = (),
) -> Proposal:
    """A fresh, range-checked copy of what ``ask`` returned; a continuation must name a
    paused training of ``trials`` of the same architecture, to continue it further."""
    name = type(strategy).__name__
    if not isinstance(proposal, Proposal):
        raise StrategyError(
            f"strategy {name} returned {reprlib.repr(proposal)} from ask, not a Proposal"
        )
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
            f"strategy {name} proposed epoch {reprlib.repr(epoch)}; this benchmark evaluates "
            f"{allowed}"
        )
    trial = proposal.trial
    if trial is None:
        return Proposal(arch, int(epoch))
    claim = f"strategy {name} continued trial {reprlib.repr(trial)} to epoch {epoch}"
    if isinstance(trial, bool) or not isinstance(trial, (int, np.integer)):
        raise StrategyError(f"{claim}: a trial is the int id a tell reported")
    if not 0 <= trial < len(trials):
        raise StrategyError(f"{claim}, but this run started no such trial")
    known = trials[trial]
    if known[_ARCH] != arch:
        raise StrategyError(f"{claim} as architecture {arch}, but it trains {known[_ARCH]}")
    if known[_RUNNING]:
        raise StrategyError(f"{claim} while it is still training")
    if known[_EPOCH] == 0:
        raise StrategyError(f"{claim}, but it never completed an evaluation")
    if epoch <= known[_EPOCH]:
        raise StrategyError(f"{claim}, but it is already trained to epoch {known[_EPOCH]}")
    return Proposal(arch, int(epoch), int(trial))


def _quick_bounds(evaluator: Evaluator) -> tuple[int, frozenset[int]]:
    """What lets a proposal skip :func:`checked_proposal`: a new training of an int
    architecture below the first number, at an int epoch in the set (a Proposal holding
    only ints is immutable, so it needs no copy). A space with its own ``check_index``
    gets no quick path (0)."""
    space = evaluator.space
    plain = type(space).check_index is SearchSpace.check_index
    return (space.num_archs if plain else 0), frozenset(evaluator.fidelities)


#: one completed evaluation: (worker, start, observation, incumbent arch, incumbent
#: signal, trial, told)
_Row = tuple[int, float, Observation, int, float, int, bool]


def _trajectory(
    rows: list[_Row],
    discarded: list[tuple[int, float, Observation, int]],
    incumbent: tuple[int, float],
) -> Trajectory:
    """The trajectory of the completed rows, in the order they were told, then the
    discarded evaluations (not completed, not told, beside the final incumbent); built
    column by column at the end of a run (a row is one tuple while it runs)."""
    rows = rows + [(w, start, o, *incumbent, trial, False) for w, start, o, trial in discarded]
    worker, start_s, observations, best_arch, best_signal, trial, told = map(
        list, zip(*rows, strict=True)
    )
    arch, epoch, cost_s, signal, seed, resumed_from = map(
        list, zip(*map(_RECORDED, observations), strict=True)
    )
    return Trajectory(
        worker=worker,
        start_s=start_s,
        end_s=[start + cost for start, cost in zip(start_s, cost_s, strict=True)],
        arch=arch,
        epoch=epoch,
        cost_s=cost_s,
        signal=signal,
        seed_used=seed,
        completed=[True] * (len(rows) - len(discarded)) + [False] * len(discarded),
        incumbent_arch=best_arch,
        incumbent_signal=best_signal,
        trial=trial,
        resumed_from=resumed_from,
        told=told,
        visible=_columns([o.metrics for o in observations]),
        sealed=_columns([o.sealed for o in observations]),
        measured_s=[o.measured_s for o in observations if o.measured_s is not None],
    )


#: what a trajectory row records of its observation, besides the metrics
_RECORDED = attrgetter("arch", "epoch", "cost_s", "signal", "seed", "resumed_from")


def _columns(mappings: list[Mapping[str, float]]) -> dict[str, list[float]]:
    """Name -> the values of that name, in order, over ``mappings``; names in the order
    they first appear."""
    names = list(mappings[0])
    try:  # the usual case: one key set (each holds every name, and no more)
        columns = {name: [mapping[name] for mapping in mappings] for name in names}
        if set(map(len, mappings)) == {len(names)}:
            return columns
    except KeyError:
        pass
    columns = {}
    for mapping in mappings:
        for name, value in mapping.items():
            columns.setdefault(name, []).append(value)
    return columns


def simulate(
    strategy: Strategy,
    evaluator: Evaluator,
    rng: np.random.Generator,
    budget: Budget,
    workers: int = 1,
    call_timeout_s: float | None = CALL_TIMEOUT_S,
    scores: Callable[[int], Scored] | None = None,
) -> RunResult:
    """Run ``strategy`` until the budget stops it; deterministic for a given input.

    ``rng`` is the run's benchmark stream, handed to every evaluation; ``budget.overrun``
    is the rule this strategy follows; each ``ask`` and ``tell`` may take at most
    ``call_timeout_s`` real seconds (None: no limit); ``scores`` answers the strategy's
    score requests (None: the experiment has no estimator to ask).
    """
    if workers < 1:
        raise ConfigError(f"must be at least 1, got {workers}", "runs.workers")
    setup_s = _setup_cost(strategy)
    if budget.seconds is not None and setup_s >= budget.seconds:
        raise ConfigError(
            f"is too small: strategy {type(strategy).__name__}'s one-off set-up costs "
            f"{setup_s:g} simulated seconds, the whole budget",
            "budget",
        )
    #: (worker, start, observation, incumbent arch, incumbent signal, trial, told), in
    #: the order the strategy was told
    rows: list[_Row] = []
    #: (end, start order, worker, begun, epoch, observation, trial, told, proposal); a
    #: score request is in flight as (end, order, worker, begun, -1, Scored, -1, True,
    #: request)
    in_flight: list[tuple[float, int, int, float, int, Any, int, bool, Any]] = []
    order = 0  # start order of trainings and scores together: ties end in start order
    scores_told, score_s = 0, 0.0
    trials: list[list[Any]] = []
    started = started_epochs = 0
    completed_epochs = 0
    best_arch, best_epoch, best_signal = -1, -1, -np.inf
    clock = setup_s
    stop_reason = "budget exhausted"
    discarded: list[tuple[int, float, Observation, int]] = []
    active = set(range(workers))
    waiting: list[int] = []
    seconds, evaluations, epochs = budget.seconds, budget.evaluations, budget.epochs
    evaluate = evaluator.evaluate
    quick_archs, quick_epochs = _quick_bounds(evaluator)
    # each strategy call below is timed (strategy_wall_s) and, while it runs, holds a
    # deadline in _deadlines that the watchdog enforces; written out in place, not through
    # limited(): two calls an evaluation, where a function call is a tenth of the cost
    ask, tell, ident = strategy.ask, strategy.tell, threading.get_ident()
    timeout = np.inf if call_timeout_s is None else call_timeout_s
    if call_timeout_s is not None and (_watchdog is None or not _signal_tried):
        _start_watchdog()
    strategy_wall = 0.0

    def request_score(worker: int, now: float, request: ScoreRequest) -> None:
        """Answer a score request: the worker is busy for the score's cost."""
        nonlocal order, stop_reason
        name = type(strategy).__name__
        if scores is None:
            raise StrategyError(
                f"strategy {name} asked for a score, but the experiment names no [estimate] "
                "to answer it; add one (an estimate file pinned by sha256)"
            )
        try:
            arch = evaluator.space.check_index(request.arch)
        except HarnessError as error:
            message = f"strategy {name} asked to score an invalid architecture: {error}"
            raise StrategyError(message) from None
        answer = scores(arch)
        end = now + answer.cost_s
        if budget.seconds is not None and end > budget.seconds:
            active.discard(worker)
            stop_reason = "seconds budget"
            return
        if order >= MAX_EVALUATIONS:
            raise ConfigError(
                f"lets a run ask for more than {MAX_EVALUATIONS:,} scores and evaluations; "
                "set a budget its costs exhaust",
                "budget",
            )
        order += 1
        heappush(in_flight, (end, order, worker, now, -1, answer, -1, True, ScoreRequest(arch)))

    def start(worker: int, now: float) -> None:
        nonlocal started, started_epochs, stop_reason, strategy_wall, order
        if evaluations is not None and started >= evaluations:
            active.discard(worker)
            stop_reason = "evaluations budget"
            return
        if started >= MAX_EVALUATIONS:
            raise ConfigError(
                f"lets a run go past {MAX_EVALUATIONS:,} evaluations; set a budget the "
                "benchmark's costs exhaust, or an evaluations budget",
                "budget",
            )
        tic = perf_counter()
        try:
            _deadlines[ident] = (tic + timeout, timeout)
            try:
                asked = ask()
            finally:
                if _deadlines.pop(ident, None) is None:
                    _taken(ident)
        except KeyboardInterrupt:  # Ctrl-C, not the strategy's doing
            raise
        except BaseException as error:  # plugin code: it may raise anything, sys.exit included
            raise _failed(strategy, "ask", error, call_timeout_s) from _cause(error)
        strategy_wall += perf_counter() - tic
        if asked is None:
            waiting.append(worker)
            return
        if isinstance(asked, ScoreRequest):
            request_score(worker, now, asked)
            return
        if (
            type(asked) is Proposal
            and asked.trial is None
            and type(asked.arch) is int
            and 0 <= asked.arch < quick_archs
            and type(asked.epoch) is int
            and asked.epoch in quick_epochs
        ):
            proposal = asked
        else:
            proposal = checked_proposal(asked, evaluator, strategy, trials)
        epoch = proposal.epoch
        if proposal.trial is None:
            if epochs is not None and started_epochs + epoch > epochs:
                active.discard(worker)
                stop_reason = "epochs budget"
                return
            observation = evaluate(proposal, rng)
            trial = len(trials)
            trials.append([observation.arch, observation.seed, 0, True])
            trained = epoch
        else:
            trial = proposal.trial
            paused = trials[trial]
            trained = epoch - paused[_EPOCH]
            if epochs is not None and started_epochs + trained > epochs:
                active.discard(worker)
                stop_reason = "epochs budget"
                return
            observation = evaluate(proposal, rng, Resume(paused[_EPOCH], paused[_SEED]))
            paused[_RUNNING] = True
        end = now + observation.cost_s
        told = True
        if seconds is not None and end > seconds:
            active.discard(worker)
            stop_reason = "seconds budget"
            if budget.overrun == "discard":
                trials[trial][_RUNNING] = False
                discarded.append((worker, now, observation, trial))
                return
            told = budget.overrun == "finish"
        started += 1
        order += 1
        started_epochs += trained
        heappush(in_flight, (end, order, worker, now, epoch, observation, trial, told, proposal))

    for worker in range(workers):
        start(worker, setup_s)
    while in_flight:
        end, _, worker, begun, epoch, observation, trial, told, proposal = heappop(in_flight)
        clock = end
        if trial < 0:  # a score: told in completion order, no trajectory row
            tic = perf_counter()
            try:
                limited(call_timeout_s, tell, proposal, observation)
            except KeyboardInterrupt:
                raise
            except BaseException as error:  # plugin code: it may raise anything
                raise _failed(strategy, "tell", error, call_timeout_s) from _cause(error)
            strategy_wall += perf_counter() - tic
            scores_told += 1
            score_s += observation.cost_s
            free = sorted([worker, *waiting])
            waiting.clear()
            for each in free:
                if each in active:
                    start(each, end)
            continue
        paused = trials[trial]
        paused[_EPOCH] = epoch
        paused[_RUNNING] = False
        if told:
            visible = observation.visible(trial)
            tic = perf_counter()
            try:
                _deadlines[ident] = (tic + timeout, timeout)
                try:
                    tell(proposal, visible)
                finally:
                    if _deadlines.pop(ident, None) is None:
                        _taken(ident)
            except KeyboardInterrupt:
                raise
            except BaseException as error:
                raise _failed(strategy, "tell", error, call_timeout_s) from _cause(error)
            strategy_wall += perf_counter() - tic
        completed_epochs += epoch - observation.resumed_from
        reached = observation.epoch
        if reached > best_epoch or (reached == best_epoch and observation.signal > best_signal):
            best_arch, best_epoch, best_signal = observation.arch, reached, observation.signal
        rows.append((worker, begun, observation, best_arch, best_signal, trial, told))
        if told and waiting:  # the workers told to wait ask again, in worker order
            free = sorted([worker, *waiting])
            waiting.clear()
            for each in free:
                if each in active:
                    start(each, end)
        elif worker in active:
            start(worker, end)
    if waiting and not in_flight and set(waiting) & active:
        stop_reason = "strategy has nothing to propose"
    if not rows and started == 0 and stop_reason == "strategy has nothing to propose":
        raise StrategyError(
            f"strategy {type(strategy).__name__} proposed nothing: its ask returned None "
            "(nothing to propose yet) before any evaluation had started"
        )
    if not rows:
        raise ConfigError("is too small: not a single evaluation fits in it", "budget")
    return RunResult(
        trajectory=_trajectory(rows, discarded, (best_arch, best_signal)),
        incumbent_arch=best_arch,
        incumbent_signal=float(best_signal),
        incumbent_epoch=best_epoch,
        simulated_seconds=clock,
        evaluations=len(rows),
        epochs=completed_epochs,
        stop_reason=stop_reason,
        strategy_wall_s=strategy_wall,
        setup_s=setup_s,
        search_log=_search_log(strategy, call_timeout_s),
        scores=scores_told,
        score_s=score_s,
    )


def _search_log(strategy: Strategy, timeout_s: float | None) -> dict[str, Any] | None:
    """What the strategy's own search did, for the record (a plugin call like the others)."""
    try:
        return limited(timeout_s, strategy.search_log)
    except KeyboardInterrupt:
        raise
    except BaseException as error:  # plugin code: it may raise anything, sys.exit included
        raise _failed(strategy, "search_log", error, timeout_s) from _cause(error)


def _setup_cost(strategy: Strategy) -> float:
    """The strategy's one-off cost in simulated seconds, checked (plugin code sets it)."""
    cost = getattr(strategy, "setup_cost_s", 0.0)
    if isinstance(cost, bool) or not isinstance(cost, (int, float)) or not 0 <= cost < np.inf:
        raise StrategyError(
            f"strategy {type(strategy).__name__} set setup_cost_s to {reprlib.repr(cost)}; it "
            "is a finite, non-negative number of simulated seconds"
        )
    return float(cost)

"""Successive halving and Hyperband over epochs: brackets of rungs, synchronous within one.

Hyperband (Li et al., JMLR 2018) runs brackets of successive halving (Jamieson &
Talwalkar, AISTATS 2016) with different trade-offs between how many architectures start
and how far the survivors are trained. The semantics are hpbandster's (automl/HpBandSter
at 0ec0ce2):

- Rung budgets ``max_epoch * eta ** -linspace(S - 1, 0, S)`` with
  ``S = -int(log(min_epoch / max_epoch) / log(eta)) + 1``
  (``optimizers/hyperband.py`` lines 60-61).
- Bracket ``i`` has ``s = S - 1 - (i mod S)`` halvings; it starts
  ``n0 = int(floor(S / (s + 1)) * eta ** s)`` architectures and keeps
  ``max(int(n0 * eta ** -j), 1)`` at stage ``j``, on the last ``s + 1`` budgets
  (``optimizers/hyperband.py`` lines 90-95).
- A bracket samples its first-stage architectures lazily, one per request
  (``core/base_iteration.py`` ``get_next_run``, lines 141-175), so a sampler that learns
  (BOHB) sees every result told before it; later stages run their survivors in the order
  they entered the bracket. A stage advances once all its evaluations are back
  (synchronous), keeping the ``k`` best by signal (``successivehalving.py`` lines 7-12;
  ties go to the architecture that entered the bracket first, where hpbandster's
  ``argsort`` leaves them unspecified).
- When no bracket has work, the next bracket starts (``core/master.py`` ``run``, lines
  204-223), so with several workers brackets overlap while each stays synchronous; when
  ``iterations`` brackets were started and none has work, ``ask`` returns ``None``
  (the worker waits for a result).

Differences, on purpose: a survivor is not retrained from scratch at the next budget but
its training is continued (``Proposal(arch, epoch, trial=t)``), so promotion costs only the
extra epochs. A rung's budget (a real number) becomes the nearest epoch the benchmark
evaluates (:attr:`Strategy.fidelities`), the lower one on a tie; budgets that round to the
same epoch are one rung, and ``S`` counts the rungs left (so a benchmark with a single
fidelity gets one rung and brackets of one evaluation: random search at that epoch). By
default brackets repeat until the budget stops the run. Successive halving is the bracket
with the most halvings, repeated.

A model-based variant (BOHB, :mod:`harness.strategies.bohb`) overrides
:meth:`Hyperband.new_configuration` and :meth:`Hyperband.observe` (each told result with
its stage's budget), and :meth:`Hyperband.make_bracket` to evaluate at other epochs.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from harness.config import Field
from harness.errors import ConfigError
from harness.strategies.base import Strategy
from harness.values import Proposal, VisibleObservation

#: the hyperparameters every rung-based strategy shares (Hyperband, SH, ASHA)
RUNG_HYPERPARAMETERS = {
    "eta": Field(float, 3.0, low=1, low_open=True, help="keep 1/eta of a rung at the next"),
    "min_epoch": Field(int, 1, low=1, help="the lowest rung's budget, in epochs"),
    "max_epoch": Field(
        int, None, low=1, optional=True, help="the highest rung's budget (default: [search] epoch)"
    ),
}


def validate_rungs(params: Mapping[str, Any]) -> None:
    """``min_epoch`` may not exceed ``max_epoch`` (the protocol's epoch is checked at setup)."""
    if params["max_epoch"] is not None and params["min_epoch"] > params["max_epoch"]:
        raise ConfigError(
            f"must be at most max_epoch ({params['max_epoch']}), got {params['min_epoch']}",
            "min_epoch",
        )


def rung_budgets(min_epoch: float, max_epoch: float, eta: float) -> np.ndarray:
    """hpbandster's geometric budgets from ``min_epoch`` to ``max_epoch``, increasing."""
    count = -int(np.log(min_epoch / max_epoch) / np.log(eta)) + 1
    return max_epoch * np.power(eta, -np.linspace(count - 1, 0, count))


def nearest_epoch(budget: float, fidelities: Sequence[int]) -> int:
    """The fidelity closest to ``budget``; the lower one on a tie."""
    return min(fidelities, key=lambda epoch: (abs(epoch - budget), epoch))


def rung_epochs(strategy: Strategy, min_epoch: int, max_epoch: int | None, eta: float) -> list[int]:
    """The rungs' epochs on ``strategy``'s benchmark, increasing: each budget rounded to
    the nearest fidelity, budgets that round to the same epoch merged into one rung (on a
    benchmark with one fidelity there is one rung: every bracket is one evaluation at it)."""
    top = strategy.fidelity if max_epoch is None else max_epoch
    if top > strategy.fidelities[-1]:
        raise ConfigError(
            f"must be at most the protocol's epoch {strategy.fidelities[-1]}, got {top}",
            "max_epoch",
        )
    if min_epoch > top:
        raise ConfigError(
            f"must be at most the top rung's epoch {top}, got {min_epoch}", "min_epoch"
        )
    budgets = rung_budgets(min_epoch, top, eta)
    return sorted({nearest_epoch(float(b), strategy.fidelities) for b in budgets})


class _Bracket:
    """One run of successive halving: stages of decreasing size on increasing epochs.

    ``budgets`` label the stages (default: their epochs); with ``restart`` a survivor is
    evaluated again as a new training instead of continuing its own (NAS-Bench-201's BOHB).
    """

    def __init__(
        self,
        sizes: list[int],
        epochs: list[int],
        budgets: list[float] | None = None,
        restart: bool = False,
    ) -> None:
        self.sizes, self.epochs = sizes, epochs
        self.budgets = list(epochs) if budgets is None else budgets
        self.restart = restart
        self.stage = 0
        self.finished = False
        #: per member, in the order it entered: [arch, trial (None before its first result)]
        self.members: list[list[Any]] = []
        self.queued: deque[int] = deque()  # members to run at the current stage
        self.running = 0
        self.results: dict[int, float] = {}  # member -> signal at the current stage

    def next_run(self, sample: Callable[[int], int]) -> tuple[int, Proposal] | None:
        """The next (member, proposal) of this bracket, or None while its stage runs."""
        while not self.finished:
            epoch = self.epochs[self.stage]
            if self.queued:
                member = self.queued.popleft()
                arch, trial = self.members[member]
                self.running += 1
                return member, Proposal(arch, epoch, None if self.restart else trial)
            if self.stage == 0 and len(self.members) < self.sizes[0]:
                self.members.append([sample(epoch), None])
                self.running += 1
                return len(self.members) - 1, Proposal(self.members[-1][0], epoch)
            if self.running:
                return None
            self._advance()
        return None

    def record(self, member: int, trial: int, signal: float) -> None:
        self.members[member][1] = trial
        self.results[member] = signal
        self.running -= 1

    def _advance(self) -> None:
        """Keep the best ``sizes[stage + 1]`` of the stage (first entered first on ties)."""
        self.stage += 1
        if self.stage >= len(self.sizes):
            self.finished = True
            return
        ranked = sorted(self.results, key=lambda member: (-self.results[member], member))
        self.queued = deque(sorted(ranked[: self.sizes[self.stage]]))
        self.results = {}


class Hyperband(Strategy):
    """Brackets of successive halving over epochs, each synchronous, overlapping as workers free."""

    hyperparameters = {
        **RUNG_HYPERPARAMETERS,
        "iterations": Field(
            int, None, low=1, optional=True, help="brackets to run (default: until the budget)"
        ),
    }
    eta: float
    min_epoch: int
    max_epoch: int | None
    iterations: int | None

    @classmethod
    def validate(cls, params: Mapping[str, Any]) -> None:
        validate_rungs(params)

    def setup(self) -> None:
        self.rungs = self.rung_schedule()
        #: every told result, per epoch, in tell order: (arch, signal)
        self.observed: dict[int, list[tuple[int, float]]] = {}
        self.brackets: list[_Bracket] = []
        self._active: list[_Bracket] = []
        #: who asked for what still running: fresh ones by (arch, epoch), first come first
        #: served (identical requests are interchangeable); continued ones by trial. A
        #: request the epochs budget refuses is never told, so it stays queued; a later
        #: identical request's result may then go to the refused one's bracket (that run
        #: is ending: the refusal stopped a worker)
        self._fresh: dict[tuple[int, int], deque[tuple[_Bracket, int]]] = {}
        self._continued: dict[int, tuple[_Bracket, int]] = {}

    def rung_schedule(self) -> list[Any]:
        """The rungs' budgets, increasing: epochs the benchmark evaluates."""
        return rung_epochs(self, self.min_epoch, self.max_epoch, self.eta)

    def bracket_shape(self, number: int) -> tuple[list[int], list[int]]:
        """Stage sizes and epochs of bracket ``number`` (hpbandster's ``get_next_iteration``)."""
        count = len(self.rungs)
        halvings = count - 1 - (number % count)
        first = int(math.floor(count / (halvings + 1)) * self.eta**halvings)
        sizes = [max(int(first * self.eta ** (-j)), 1) for j in range(halvings + 1)]
        return sizes, self.rungs[-halvings - 1 :]

    def make_bracket(self, number: int) -> _Bracket:
        """Bracket ``number``, its stages evaluated at their rungs' epochs."""
        return _Bracket(*self.bracket_shape(number))

    def new_configuration(self, epoch: int) -> int:
        """The architecture a bracket starts at ``epoch``: uniform here; BOHB models it."""
        return self.space.sample(self.rng)

    def ask(self) -> Proposal | None:
        """The next run of the oldest bracket with work; a new bracket if none has any."""
        while True:
            for bracket in self._active:
                found = bracket.next_run(self.new_configuration)
                if found is not None:
                    return self._issue(bracket, *found)
            self._active = [b for b in self._active if not b.finished]
            if self.iterations is not None and len(self.brackets) >= self.iterations:
                return None
            bracket = self.make_bracket(len(self.brackets))
            self.brackets.append(bracket)
            self._active.append(bracket)

    def _issue(self, bracket: _Bracket, member: int, proposal: Proposal) -> Proposal:
        if proposal.trial is None:
            key = (proposal.arch, proposal.epoch)
            self._fresh.setdefault(key, deque()).append((bracket, member))
        else:
            self._continued[proposal.trial] = (bracket, member)
        return proposal

    def tell(self, proposal: Proposal, observation: VisibleObservation) -> None:
        """Record the result with the bracket that asked for it."""
        if proposal.trial is None:
            bracket, member = self._fresh[(proposal.arch, proposal.epoch)].popleft()
        else:
            bracket, member = self._continued.pop(proposal.trial)
        bracket.record(member, observation.trial, observation.signal)
        self.observe(bracket.budgets[bracket.stage], observation)

    def observe(self, budget: float, observation: VisibleObservation) -> None:
        """Keep a told result; ``budget`` is the label of the stage it ran for."""
        seen = self.observed.setdefault(observation.epoch, [])
        seen.append((observation.arch, observation.signal))


class SuccessiveHalving(Hyperband):
    """Successive halving (Jamieson & Talwalkar 2016): Hyperband's most aggressive bracket
    (``eta ** (S - 1)`` architectures at ``min_epoch``, the best ``1/eta`` kept per rung),
    repeated."""

    def bracket_shape(self, number: int) -> tuple[list[int], list[int]]:
        """Every bracket is bracket 0 of Hyperband (the most halvings)."""
        return super().bracket_shape(0)

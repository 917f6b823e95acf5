"""ASHA: asynchronous successive halving (Li et al., "A System for Massively Parallel
Hyperparameter Tuning", MLSys 2020, Algorithm 2), with early-stopping rate 0.

The rungs are Hyperband's (:func:`~harness.strategies.hyperband.rung_epochs`: hpbandster's
geometric budgets from ``min_epoch`` to ``max_epoch``, each rounded to the nearest epoch
the benchmark evaluates). Whenever a worker is free, ``get_job`` looks at the rungs from
the second highest down: in rung ``k``, the best ``floor(|rung k| / eta)`` results (ties:
the one told first) that were not yet promoted are promotable, and the best of them is
continued to rung ``k + 1`` (its training carried on, so only the extra epochs are
charged). If no rung has one, a new architecture starts at the lowest rung. It never waits
for a rung to fill: promotions happen as soon as a result ranks high enough, so with
several workers it never idles (syne-tune's ``type="promotion"`` scheduler works the same
way). A result at the highest rung is never promoted.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping
from typing import Any

from harness.strategies.base import Strategy
from harness.strategies.hyperband import RUNG_HYPERPARAMETERS, rung_epochs, validate_rungs
from harness.values import Proposal, VisibleObservation


class ASHA(Strategy):
    """Asynchronous successive halving: promote a top-1/eta result at once, else start anew."""

    hyperparameters = RUNG_HYPERPARAMETERS
    eta: float
    min_epoch: int
    max_epoch: int | None

    @classmethod
    def validate(cls, params: Mapping[str, Any]) -> None:
        validate_rungs(params)

    def setup(self) -> None:
        self.rungs = rung_epochs(self, self.min_epoch, self.max_epoch, self.eta)
        #: per rung, results not yet promoted and those promoted, each sorted best first by
        #: (-signal, tell order, arch, trial): the best unpromoted result is promotable when
        #: fewer than floor(n / eta) promoted ones rank above it (O(log n) per ask)
        self.waiting: list[list[tuple[float, int, int, int]]] = [[] for _ in self.rungs]
        self.promoted: list[list[tuple[float, int, int, int]]] = [[] for _ in self.rungs]
        self._told = 0

    def ask(self) -> Proposal:
        """Promote the best promotable result of the highest rung that has one."""
        for rung in range(len(self.rungs) - 2, -1, -1):
            waiting, promoted = self.waiting[rung], self.promoted[rung]
            if not waiting:
                continue
            top = math.floor((len(waiting) + len(promoted)) / self.eta)
            best = waiting[0]
            if bisect.bisect_left(promoted, best) < top:  # its rank in the whole rung
                bisect.insort(promoted, waiting.pop(0))
                return Proposal(best[2], self.rungs[rung + 1], best[3])
        return Proposal(self.space.sample(self.rng), self.rungs[0])

    def tell(self, proposal: Proposal, observation: VisibleObservation) -> None:
        """File the result in the rung of its epoch."""
        rung = self.rungs.index(observation.epoch)
        key = (-observation.signal, self._told, observation.arch, observation.trial)
        self._told += 1
        bisect.insort(self.waiting[rung], key)

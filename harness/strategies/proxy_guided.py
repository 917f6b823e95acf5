"""Searches guided by an estimator's scores, each score charged on the simulated clock.

The scores come through ask/tell: ``ask`` returns ``ScoreRequest(arch)`` and ``tell``
receives ``Scored`` (:mod:`harness.simulator`), so every score a search uses costs its
measured seconds, as a training costs its own. The experiment's ``[estimate]`` names
the pinned estimate file that answers.

- ``naswot``: Mellor et al., "Neural architecture search without training" (ICML 2021),
  Algorithm 1: score ``candidates`` (N) distinct uniformly drawn architectures, then
  train the best-scoring one; the search then ends.
- ``rea_warmup`` and ``bananas_warmup``: Abdelfattah et al., "Zero-cost proxies for
  lightweight NAS" (ICLR 2021), section 5's warm-up: score ``warmup`` distinct uniformly
  drawn architectures, then start regularized evolution (its initial population) or
  BANANAS (its initial design) from the best-scoring ``population_size`` / ``num_init``
  of them, trained best first, instead of random ones; the search then goes on as usual.

A draw the estimate file does not cover (``scored=False``: a file of a uniform sample) is
not counted and another is drawn, so the N architectures are N uniform draws from the
covered cells. An architecture whose score is NaN ranks below every scored one; ties go
to the earlier draw. Scores are asked one per free worker; the ranking waits until every
asked score is told.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from typing import Any

import numpy as np

from harness.config import Field
from harness.errors import ConfigError
from harness.strategies.bananas import Bananas
from harness.strategies.base import Strategy
from harness.strategies.evolution import RegularizedEvolution
from harness.strategies.random_sampling import UnproposedPool
from harness.values import Proposal, Scored, ScoreRequest, VisibleObservation


class ProxyPhase:
    """The scoring phase: ``count`` distinct uniform draws, each scored once."""

    def __init__(self, num_archs: int, count: int) -> None:
        self.count = count
        self.undrawn = UnproposedPool(num_archs)
        self.pending = 0
        #: (arch, score) of the covered draws, in the order they were told
        self.scored: list[tuple[int, float]] = []

    def request(self, rng: np.random.Generator) -> ScoreRequest | None:
        """The next draw to score, or None while the draws asked may still suffice."""
        if len(self.scored) + self.pending >= self.count or not len(self.undrawn):
            return None
        self.pending += 1
        return ScoreRequest(self.undrawn.draw(rng))

    def tell(self, answer: Scored) -> None:
        self.pending -= 1
        if answer.scored:
            self.scored.append((answer.arch, answer.value))

    @property
    def done(self) -> bool:
        """Every score needed is told (or the space has no more to draw)."""
        enough = len(self.scored) >= self.count or not len(self.undrawn)
        return enough and self.pending == 0

    def ranked(self) -> list[int]:
        """The scored draws, best first (NaN last; ties to the earlier draw)."""
        key = [(-v if np.isfinite(v) else np.inf) for _, v in self.scored]
        order = np.argsort(key, kind="stable")
        return [self.scored[i][0] for i in order]


class NASWOT(Strategy):
    """Score N random architectures, train the best (Mellor et al., Algorithm 1)."""

    hyperparameters = {
        "candidates": Field(int, 100, low=1, help="architectures scored (N)"),
    }
    asks_scores = True
    candidates: int

    def setup(self) -> None:
        self.phase = ProxyPhase(self.space.num_archs, self.candidates)
        self.trained = False

    def ask(self) -> Proposal | ScoreRequest | None:
        if not self.phase.done:
            return self.phase.request(self.rng)
        if self.trained or not self.phase.scored:
            return None
        self.trained = True
        return Proposal(self.phase.ranked()[0], self.fidelity)

    def tell(
        self, proposal: Proposal | ScoreRequest, observation: VisibleObservation | Scored
    ) -> None:
        if isinstance(proposal, ScoreRequest):
            self.phase.tell(observation)  # type: ignore[arg-type]


class _Warmup:
    """The warm-up of Abdelfattah et al.: score first, then the best as the first trials."""

    warmup: int
    asks_scores = True

    def _start_warmup(self, first: int) -> None:
        self.phase = ProxyPhase(self.space.num_archs, self.warmup)  # type: ignore[attr-defined]
        self.first = first
        self.warm_queue: deque[int] | None = None

    def _warm_ask(self) -> Proposal | ScoreRequest | None | bool:
        """A score request, the next warm-started proposal, None (wait), or False once
        the warm start is over (the strategy's own ask takes over)."""
        if not self.phase.done:
            return self.phase.request(self.rng)  # type: ignore[attr-defined]
        if self.warm_queue is None:
            self.warm_queue = deque(self.phase.ranked()[: self.first])
            self._warm_started(list(self.warm_queue))
        if self.warm_queue:
            return Proposal(self.warm_queue.popleft(), self.fidelity)  # type: ignore[attr-defined]
        return False

    def _warm_started(self, archs: list[int]) -> None:  # noqa: B027 - an optional hook
        """Called once with the architectures the warm start will propose."""


def _check_warmup(warmup: int, first: int, name: str) -> None:
    if warmup < first:
        raise ConfigError(f"must be at least {name} ({first}), got {warmup}", "warmup")


class WarmREA(_Warmup, RegularizedEvolution):
    """Regularized evolution whose initial population is the proxy's best of ``warmup``."""

    hyperparameters = {
        **RegularizedEvolution.hyperparameters,
        "warmup": Field(int, 1000, low=1, help="architectures scored before the search"),
    }

    @classmethod
    def validate(cls, params: Mapping[str, Any]) -> None:
        super().validate(params)
        _check_warmup(params["warmup"], params["population_size"], "population_size")

    def setup(self) -> None:
        super().setup()
        self._start_warmup(self.population_size)

    def ask(self) -> Proposal | ScoreRequest | None:
        warm = self._warm_ask()
        if warm is not False:
            return warm  # type: ignore[return-value]
        self._asked = max(self._asked, self.population_size)  # the population is seeded
        return super().ask()

    def tell(
        self, proposal: Proposal | ScoreRequest, observation: VisibleObservation | Scored
    ) -> None:
        if isinstance(proposal, ScoreRequest):
            self.phase.tell(observation)  # type: ignore[arg-type]
        else:
            super().tell(proposal, observation)  # type: ignore[arg-type]


class WarmBananas(_Warmup, Bananas):
    """BANANAS whose initial design is the proxy's best ``num_init`` of ``warmup``."""

    hyperparameters = {
        **Bananas.hyperparameters,
        "warmup": Field(int, 1000, low=1, help="architectures scored before the search"),
    }

    @classmethod
    def validate(cls, params: Mapping[str, Any]) -> None:
        super().validate(params)
        _check_warmup(params["warmup"], params["num_init"], "num_init")

    def setup(self) -> None:
        super().setup()
        self._start_warmup(self.num_init)

    def _warm_started(self, archs: list[int]) -> None:
        for arch in archs:
            self.pool.take(arch)  # never proposed again by the random design or the mutations

    def ask(self) -> Proposal | ScoreRequest | None:
        warm = self._warm_ask()
        if warm is not False:
            return warm  # type: ignore[return-value]
        return super().ask()

    def tell(
        self, proposal: Proposal | ScoreRequest, observation: VisibleObservation | Scored
    ) -> None:
        if isinstance(proposal, ScoreRequest):
            self.phase.tell(observation)  # type: ignore[arg-type]
        else:
            super().tell(proposal, observation)  # type: ignore[arg-type]

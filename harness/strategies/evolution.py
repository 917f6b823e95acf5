"""Regularized evolution (Real et al. 2019), as in NAS-Bench-201's released R_EA code.

The population is a FIFO of the last ``population_size`` results: each new child pushes
out the oldest member, whatever its fitness (the "ageing" that regularises the search).
A parent is the best of ``sample_size`` members drawn uniformly with replacement.

Asynchronous workers can ask several times before any tell. The initial phase therefore
counts asks, not tells: the first ``population_size`` asks are random, and every later ask
mutates a parent from the population as it stands. With one worker this is exactly the
published sequential loop.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from typing import Any

from harness.config import Field
from harness.errors import ConfigError
from harness.strategies.base import Strategy
from harness.values import Proposal, VisibleObservation


class RegularizedEvolution(Strategy):
    """Ageing evolution with tournament selection and single-edge mutations."""

    hyperparameters = {
        "population_size": Field(int, 10, low=1, help="members kept (the FIFO length)"),
        "sample_size": Field(int, 3, low=1, help="tournament size"),
    }
    population_size: int
    sample_size: int

    @classmethod
    def validate(cls, params: Mapping[str, Any]) -> None:
        """The tournament draws from the population, so it cannot be larger."""
        if params["sample_size"] > params["population_size"]:
            raise ConfigError(
                f"must be at most population_size ({params['population_size']}), "
                f"got {params['sample_size']}",
                "sample_size",
            )

    def setup(self) -> None:
        #: (arch, signal) of the last ``population_size`` told results, oldest first
        self.population: deque[tuple[int, float]] = deque()
        self._asked = 0

    def ask(self) -> Proposal:
        """Random while filling the population, then a mutation of a tournament winner.

        If more workers than ``population_size`` ask before the first tell, there is
        no parent yet; those asks are random too, as the initial phase would be.
        """
        self._asked += 1
        if self._asked <= self.population_size or not self.population:
            return Proposal(self.space.sample(self.rng), self.fidelity)
        return Proposal(self.space.mutate(self.select_parent(), self.rng), self.fidelity)

    def select_parent(self) -> int:
        """Best signal among ``sample_size`` uniform draws; ties go to the earliest draw.

        One scalar draw per member: the same stream as one ``size=sample_size`` draw
        (both take one bounded 32-bit draw per value), at a fraction of the call's cost."""
        population, draw = self.population, self.rng.integers
        size = len(population)
        best = population[draw(size)]
        for _ in range(self.sample_size - 1):
            member = population[draw(size)]
            if member[1] > best[1]:
                best = member
        return best[0]

    def tell(self, proposal: Proposal, observation: VisibleObservation) -> None:
        """Append the result and age out the oldest member beyond ``population_size``."""
        population = self.population
        population.append((proposal.arch, observation.signal))
        if len(population) > self.population_size:
            population.popleft()

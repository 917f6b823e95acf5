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

import numpy as np

from harness.errors import SpecError
from harness.evaluators.observation import Proposal, VisibleObservation
from harness.spaces.nb201 import NB201Space
from harness.strategies.base import Strategy


class RegularizedEvolution(Strategy):
    """Ageing evolution with tournament selection and single-edge mutations."""

    kind = "regularized_evolution"
    defaults = {"population_size": 10, "sample_size": 3}

    def __init__(
        self,
        space: NB201Space,
        rng: np.random.Generator,
        fidelity: int,
        **hyperparameters: Any,
    ) -> None:
        super().__init__(space, rng, fidelity, **hyperparameters)
        self.population_size: int = self.hyperparameters["population_size"]
        self.sample_size: int = self.hyperparameters["sample_size"]
        #: (arch, signal) of the last ``population_size`` told results, oldest first
        self.population: deque[tuple[int, float]] = deque()
        self._asked = 0

    @classmethod
    def validate(cls, hyperparameters: Mapping[str, Any]) -> None:
        """Tournament needs a non-empty population and a sample no larger than it."""
        population_size = hyperparameters["population_size"]
        sample_size = hyperparameters["sample_size"]
        if population_size < 1:
            raise SpecError(
                f"strategy '{cls.kind}' parameter 'population_size' must be >= 1, "
                f"got {population_size}"
            )
        if not 1 <= sample_size <= population_size:
            raise SpecError(
                f"strategy '{cls.kind}' parameter 'sample_size' must be between 1 and "
                f"population_size ({population_size}), got {sample_size}"
            )

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
        """Best signal among ``sample_size`` uniform draws; ties go to the earliest draw."""
        drawn = self.rng.integers(len(self.population), size=self.sample_size)
        members = [self.population[i] for i in drawn]
        return max(members, key=lambda member: member[1])[0]

    def tell(self, proposal: Proposal, observation: VisibleObservation) -> None:
        """Append the result and age out the oldest member beyond ``population_size``."""
        self.population.append((proposal.arch, observation.signal))
        if len(self.population) > self.population_size:
            self.population.popleft()

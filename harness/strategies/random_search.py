"""Random search: the baseline every NAS comparison needs (Li & Talwalkar 2019)."""

from __future__ import annotations

from harness.strategies.base import Strategy
from harness.values import Proposal, VisibleObservation


class RandomSearch(Strategy):
    """Uniform samples from the space at the protocol fidelity; ignores all feedback."""

    def ask(self) -> Proposal:
        """A uniformly drawn architecture, so the baseline has no bias to tune."""
        return Proposal(self.space.sample(self.rng), self.fidelity)

    def tell(self, proposal: Proposal, observation: VisibleObservation) -> None:
        """Nothing to learn: random search is memoryless."""

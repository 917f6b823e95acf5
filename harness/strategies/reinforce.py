"""REINFORCE (Williams 1992) with a factorised policy, as in NAS-Bench-201's released code.

The policy holds one logit per (decision, option) of the search space (for NB201: per
edge and op); an architecture is one independent categorical draw per decision. In a
space where some decision tuples name no architecture (NAS-Bench-Graph's all-skip
cells), such a draw is rejected and drawn again: the policy conditioned on validity.
Each tell takes one Adam step on ``-log pi(a) * (reward - baseline)``, the baseline
being a bias-corrected exponential moving average of the rewards that already includes
the current one (so the first tell has zero advantage, as in the released code). Plain
numpy float64 instead of torch: the NB201 policy is 30 numbers, and a benchmark run
makes ~10^5 tells.

The released code computes that average as ``numerator / denominator``; we update it
incrementally, ``b += (1 - m) / d * (reward - b)`` with ``d = m * d + (1 - m)``, the
same value in exact arithmetic. The quotient form can leave the first baseline an ulp
away from the first reward, and Adam normalises that ~1e-16 gradient into a ~1e-7
step; the incremental form makes the first baseline exactly the first reward.

With several workers the policy may change between an ask and its tell; the tell
then uses the current policy's gradient for the proposal's decisions (identical to the
published loop with one worker).
"""

from __future__ import annotations

import numpy as np

from harness.config import Field
from harness.errors import ArchitectureError
from harness.strategies.base import Strategy
from harness.values import Proposal, VisibleObservation

#: torch.optim.Adam's defaults, which NAS-Bench-201's code uses
ADAM_BETA1 = 0.9
ADAM_BETA2 = 0.999
ADAM_EPS = 1e-8
#: scale of the initial logits (NAS-Bench-201: ``1e-3 * torch.randn``)
INIT_SCALE = 1e-3


class Reinforce(Strategy):
    """Policy-gradient search over per-decision logits with an EMA reward baseline."""

    hyperparameters = {
        "learning_rate": Field(float, 0.5, low=0, low_open=True, help="Adam step size"),
        "baseline_momentum": Field(
            float, 0.9, low=0, high=1, high_open=True, help="EMA momentum (1 would freeze it)"
        ),
    }
    learning_rate: float
    baseline_momentum: float

    def setup(self) -> None:
        choices = self.space.choices
        width = max(choices)
        #: padded to the widest decision; options a decision lacks get -inf logits
        self._valid = np.arange(width)[None, :] < np.array(choices)[:, None]
        noise = INIT_SCALE * self.rng.standard_normal((len(choices), width))
        self.logits = np.where(self._valid, noise, -np.inf)
        #: bias-corrected EMA of the rewards told so far; None before the first tell
        self.baseline: float | None = None
        self._ema_weight = 0.0  # the quotient form's denominator: sum of EMA weights
        self._adam_step = 0
        self._adam_m = np.zeros_like(noise)
        self._adam_v = np.zeros_like(noise)
        self._decisions = np.arange(len(choices))
        self._refresh_policy()

    def policy_probabilities(self) -> np.ndarray:
        """Per-edge op probabilities, shape [edges, ops]; a copy, for inspection."""
        return self._probs.copy()

    def ask(self) -> Proposal:
        """One option per decision by inverse-CDF sampling from the current policy."""
        while True:
            u = self.rng.random(len(self._decisions))
            decisions = (self._cdf <= u[:, None]).sum(axis=1)
            try:
                return Proposal(self.space.index_of_decisions(decisions), self.fidelity)
            except ArchitectureError:
                continue  # not an architecture of the space: draw again

    def tell(self, proposal: Proposal, observation: VisibleObservation) -> None:
        """Update the baseline, then one Adam step on the REINFORCE loss."""
        reward = observation.signal
        m = self.baseline_momentum
        self._ema_weight = m * self._ema_weight + (1 - m)
        previous = 0.0 if self.baseline is None else self.baseline
        self.baseline = previous + (1 - m) / self._ema_weight * (reward - previous)
        advantage = reward - self.baseline
        # d(-log pi(a) * A)/d logits = A * (softmax - onehot(a)), decision by decision
        grad = advantage * self._probs
        grad[self._decisions, self.space.decisions_of_index(proposal.arch)] -= advantage
        self._adam_update(grad)
        self._refresh_policy()

    def _adam_update(self, grad: np.ndarray) -> None:
        """torch.optim.Adam's step (bias-corrected, no weight decay, not amsgrad)."""
        self._adam_step += 1
        self._adam_m = ADAM_BETA1 * self._adam_m + (1 - ADAM_BETA1) * grad
        self._adam_v = ADAM_BETA2 * self._adam_v + (1 - ADAM_BETA2) * grad * grad
        bias_correction1 = 1 - ADAM_BETA1**self._adam_step
        bias_correction2 = 1 - ADAM_BETA2**self._adam_step
        denom = np.sqrt(self._adam_v) / np.sqrt(bias_correction2) + ADAM_EPS
        self.logits -= (self.learning_rate / bias_correction1) * self._adam_m / denom

    def _refresh_policy(self) -> None:
        """Cache softmax and CDF so ask and tell do no redundant work."""
        shifted = np.exp(self.logits - self.logits.max(axis=1, keepdims=True))
        self._probs = shifted / shifted.sum(axis=1, keepdims=True)
        self._cdf = np.cumsum(self._probs, axis=1)
        # rounding may leave the last option's entry just below 1; u < 1 must always map
        # to an option the decision has
        self._cdf[self._decisions, np.array(self.space.choices) - 1] = 1.0
        self._cdf[~self._valid] = 1.0

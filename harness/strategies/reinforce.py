"""REINFORCE (Williams 1992) with a factorised policy, as in NAS-Bench-201's released code.

The policy holds one logit per (edge, op); an architecture is one independent
categorical draw per edge. Each tell takes one Adam step on
``-log pi(a) * (reward - baseline)``, the baseline being a bias-corrected exponential
moving average of the rewards that already includes the current one (so the first
tell has zero advantage, as in the released code). Plain numpy float64 instead of
torch: the policy is 30 numbers, and a benchmark run makes ~10^5 tells.

The released code computes that average as ``numerator / denominator``; we update it
incrementally, ``b += (1 - m) / d * (reward - b)`` with ``d = m * d + (1 - m)``, the
same value in exact arithmetic. The quotient form can leave the first baseline an ulp
away from the first reward, and Adam normalises that ~1e-16 gradient into a ~1e-7
step; the incremental form makes the first baseline exactly the first reward.

With several workers the policy may change between an ask and its tell; the tell
then uses the current policy's gradient for the proposal's ops (identical to the
published loop with one worker).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from harness.errors import SpecError
from harness.evaluators.observation import Proposal, VisibleObservation
from harness.spaces.nb201 import EDGES, OPS, NB201Space
from harness.strategies.base import Strategy

#: torch.optim.Adam's defaults, which NAS-Bench-201's code uses
ADAM_BETA1 = 0.9
ADAM_BETA2 = 0.999
ADAM_EPS = 1e-8
#: scale of the initial logits (NAS-Bench-201: ``1e-3 * torch.randn``)
INIT_SCALE = 1e-3


class Reinforce(Strategy):
    """Policy-gradient search over per-edge op logits with an EMA reward baseline."""

    kind = "reinforce"
    defaults = {"learning_rate": 0.5, "baseline_momentum": 0.9}

    def __init__(
        self,
        space: NB201Space,
        rng: np.random.Generator,
        fidelity: int,
        **hyperparameters: Any,
    ) -> None:
        super().__init__(space, rng, fidelity, **hyperparameters)
        self.learning_rate: float = self.hyperparameters["learning_rate"]
        self.baseline_momentum: float = self.hyperparameters["baseline_momentum"]
        self.logits = INIT_SCALE * rng.standard_normal((len(EDGES), len(OPS)))
        #: bias-corrected EMA of the rewards told so far; None before the first tell
        self.baseline: float | None = None
        self._ema_weight = 0.0  # the quotient form's denominator: sum of EMA weights
        self._adam_step = 0
        self._adam_m = np.zeros_like(self.logits)
        self._adam_v = np.zeros_like(self.logits)
        self._edges = np.arange(len(EDGES))
        self._refresh_policy()

    @classmethod
    def validate(cls, hyperparameters: Mapping[str, Any]) -> None:
        """A positive step size and a momentum in [0, 1) (1 would freeze the baseline)."""
        learning_rate = hyperparameters["learning_rate"]
        momentum = hyperparameters["baseline_momentum"]
        if not learning_rate > 0:
            raise SpecError(
                f"strategy '{cls.kind}' parameter 'learning_rate' must be > 0, got {learning_rate}"
            )
        if not 0 <= momentum < 1:
            raise SpecError(
                f"strategy '{cls.kind}' parameter 'baseline_momentum' must be in [0, 1), "
                f"got {momentum}"
            )

    def policy_probabilities(self) -> np.ndarray:
        """Per-edge op probabilities, shape [edges, ops]; a copy, for inspection."""
        return self._probs.copy()

    def ask(self) -> Proposal:
        """One op per edge by inverse-CDF sampling from the current policy."""
        u = self.rng.random(len(self._edges))
        ops = (self._cdf <= u[:, None]).sum(axis=1)
        return Proposal(self.space.index_of_ops(ops), self.fidelity)

    def tell(self, proposal: Proposal, observation: VisibleObservation) -> None:
        """Update the baseline, then one Adam step on the REINFORCE loss."""
        reward = observation.signal
        m = self.baseline_momentum
        self._ema_weight = m * self._ema_weight + (1 - m)
        previous = 0.0 if self.baseline is None else self.baseline
        self.baseline = previous + (1 - m) / self._ema_weight * (reward - previous)
        advantage = reward - self.baseline
        # d(-log pi(a) * A)/d logits = A * (softmax - onehot(a)), edge by edge
        grad = advantage * self._probs
        grad[self._edges, self.space.ops[proposal.arch]] -= advantage
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
        # rounding may leave the last entry just below 1; u < 1 must always map to an op
        self._cdf[:, -1] = 1.0

"""BOHB (Falkner, Klein & Hutter, ICML 2018): Hyperband whose new architectures come from
hpbandster's KDE model (:class:`~harness.strategies.kde.KDESampler`) instead of uniform.

The brackets, stages and promotions are :class:`~harness.strategies.hyperband.Hyperband`'s
(hpbandster's); each told result is shown to the model as ``(decisions, stage budget,
-signal)``, and a bracket's first-stage architectures are drawn from the model of the
largest budget that has one (random until then, and with probability
``random_fraction``). A decision tuple that names no architecture falls back to a random
valid one, as hpbandster does for a configuration that breaks the space's rules.

``ignore_budget`` reproduces NAS-Bench-201's released BOHB (AutoDL-Projects
``exps/algos/BOHB.py`` at fb76814, l.76-98): its worker ignored the budget it was given
and always returned the protocol's result (the 12-epoch one), charging a whole training
each time. With it set, ``min_epoch``/``max_epoch`` are only the nominal budgets that
shape the brackets and label the model's data (12 and 200 gave rungs 22.2, 66.7 and 200),
and every evaluation, promotions included, is a new training at the protocol's epoch.
The final architecture is then the best signal over all evaluations (the simulator's
rule); NAS-Bench-201 took the best among those of the top rung, which differs only when
the budget cuts a bracket short.
"""

from __future__ import annotations

from typing import Any

from harness.config import Field
from harness.errors import ArchitectureError
from harness.strategies.hyperband import Hyperband, _Bracket, rung_budgets
from harness.strategies.kde import KDESampler
from harness.values import VisibleObservation


class BOHB(Hyperband):
    """Hyperband with hpbandster's KDE configuration sampler."""

    hyperparameters = {
        **Hyperband.hyperparameters,
        "top_n_percent": Field(int, 15, low=1, high=99, help="share of results that are 'good'"),
        "num_samples": Field(int, 64, low=1, help="candidates drawn from the good density"),
        "random_fraction": Field(float, 1 / 3, low=0, high=1, help="share of random proposals"),
        "bandwidth_factor": Field(
            float, 3.0, low=0, low_open=True, help="widens continuous decisions only (none here)"
        ),
        "min_bandwidth": Field(float, 1e-3, low=0, help="lower clip of every bandwidth"),
        "min_points_in_model": Field(
            int, None, low=1, optional=True, help="results a budget needs for a model"
        ),
        "ignore_budget": Field(
            bool, False, help="evaluate every stage at the protocol's epoch (NB201's worker)"
        ),
    }
    top_n_percent: int
    num_samples: int
    random_fraction: float
    bandwidth_factor: float
    min_bandwidth: float
    min_points_in_model: int | None
    ignore_budget: bool

    def setup(self) -> None:
        super().setup()
        self.sampler = KDESampler(
            self.space.choices,
            self.rng,
            top_n_percent=self.top_n_percent,
            num_samples=self.num_samples,
            random_fraction=self.random_fraction,
            bandwidth_factor=self.bandwidth_factor,
            min_bandwidth=self.min_bandwidth,
            min_points_in_model=self.min_points_in_model,
        )

    def rung_schedule(self) -> list[Any]:
        """With ``ignore_budget``, the nominal budgets: they may lie past the protocol's epoch."""
        if not self.ignore_budget:
            return super().rung_schedule()
        top = self.fidelity if self.max_epoch is None else self.max_epoch
        return [float(budget) for budget in rung_budgets(self.min_epoch, top, self.eta)]

    def make_bracket(self, number: int) -> _Bracket:
        """With ``ignore_budget``, every stage is a new training at the protocol's epoch."""
        if not self.ignore_budget:
            return super().make_bracket(number)
        sizes, budgets = self.bracket_shape(number)
        return _Bracket(sizes, [self.fidelity] * len(budgets), budgets, restart=True)

    def new_configuration(self, epoch: int) -> int:
        """The model's proposal (random until a budget has enough results)."""
        return self.space.index_of_decisions(self.sampler.propose(self._names_architecture))

    def _names_architecture(self, decisions: tuple[int, ...]) -> bool:
        try:
            self.space.index_of_decisions(decisions)
        except ArchitectureError:
            return False
        return True

    def observe(self, budget: float, observation: VisibleObservation) -> None:
        """Keep the result and show it to the model; the model minimises, so loss = -signal."""
        super().observe(budget, observation)
        decisions = self.space.decisions_of_index(observation.arch)
        self.sampler.observe(decisions, float(budget), -observation.signal)

"""TPE (Bergstra et al. 2011) through Optuna's ``TPESampler``, as an ask/tell strategy.

Optuna is an optional extra (``pip install 'harness[optuna]'``); without it, asking for
``tpe`` is a one-line ConfigError that says so. The adapter drives Optuna's own ask/tell
interface (``Study.ask`` / ``Study.tell``) over the space's categorical decisions: one
``CategoricalDistribution`` over ``0..choices[k]-1`` per decision ``k``, named ``d0``,
``d1``, ..., so the sampler sees the same factorised space REINFORCE's policy does.

Reproducibility: the sampler's seed is one integer drawn from the strategy's generator,
the study lives in Optuna's in-memory storage, and nothing else is random, so a run
re-runs bit for bit. Every sampler setting is a declared hyperparameter passed to Optuna
explicitly (the defaults are Optuna 5's: multivariate TPE and the constant liar for
single-objective studies), so a change of Optuna's defaults cannot change a run silently.
Optuna's INFO logging ("A new study created ...") is silenced.

A decision tuple that is no architecture of the space (NAS-Bench-Graph's all-``skip``
cells) is never evaluated: its trial is told ``FAIL`` and Optuna is asked again. TPE
ignores failed trials, so this is rejection sampling, the sampler conditioned on
validity, as REINFORCE's policy is; ``PRUNED`` would instead rank the tuple among the
worst results, inventing an observation that never happened.

Asynchronous workers: each ask opens an Optuna trial, and each tell closes the oldest
open trial of that architecture. Trials still open are RUNNING to Optuna; with
``constant_liar`` TPE treats them as bad so that parallel asks spread out.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from typing import Any

from harness.config import Field
from harness.errors import ArchitectureError, ConfigError
from harness.strategies.base import Strategy
from harness.values import Proposal, VisibleObservation

#: what to tell a user who lacks the extra
INSTALL_HINT = "the 'tpe' strategy needs Optuna, an optional extra: pip install 'harness[optuna]'"


def _optuna() -> Any:
    """The optuna module, or a one-line ConfigError saying how to install it."""
    try:
        import optuna
    except ImportError:
        raise ConfigError(INSTALL_HINT) from None
    return optuna


class TPE(Strategy):
    """Optuna's TPE sampler over the space's decisions; invalid tuples are rejected."""

    hyperparameters = {
        "n_startup_trials": Field(int, 10, low=0, help="random trials before TPE starts"),
        "n_ei_candidates": Field(int, 24, low=1, help="samples scored per suggestion"),
        "multivariate": Field(bool, True, help="joint (not per-decision) Parzen estimators"),
        "constant_liar": Field(bool, True, help="treat running trials as bad ones"),
    }
    n_startup_trials: int
    n_ei_candidates: int
    multivariate: bool
    constant_liar: bool

    @classmethod
    def validate(cls, params: Mapping[str, Any]) -> None:
        """Fail when the spec is read, not when the first run starts, if Optuna is missing."""
        _optuna()

    def setup(self) -> None:
        optuna = _optuna()
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        distributions = optuna.distributions
        self._distributions = {
            f"d{k}": distributions.CategoricalDistribution(tuple(range(count)))
            for k, count in enumerate(self.space.choices)
        }
        sampler = optuna.samplers.TPESampler(
            n_startup_trials=self.n_startup_trials,
            n_ei_candidates=self.n_ei_candidates,
            multivariate=self.multivariate,
            constant_liar=self.constant_liar,
            seed=int(self.rng.integers(2**32)),
        )
        self.study = optuna.create_study(direction="maximize", sampler=sampler)
        self._failed = optuna.trial.TrialState.FAIL
        #: arch -> its open trials, oldest first
        self._open: dict[int, deque[Any]] = {}

    def ask(self) -> Proposal:
        """The decisions of a new Optuna trial; trials naming no architecture fail."""
        while True:
            trial = self.study.ask(self._distributions)
            decisions = [trial.params[name] for name in self._distributions]
            try:
                arch = self.space.index_of_decisions(decisions)
            except ArchitectureError:
                self.study.tell(trial, state=self._failed)
                continue
            self._open.setdefault(arch, deque()).append(trial)
            return Proposal(arch, self.fidelity)

    def tell(self, proposal: Proposal, observation: VisibleObservation) -> None:
        """Complete the oldest open trial of the architecture with the signal."""
        trials = self._open[proposal.arch]
        trial = trials.popleft()
        if not trials:
            del self._open[proposal.arch]
        self.study.tell(trial, observation.signal)

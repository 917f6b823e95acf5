"""The ask/tell interface every search strategy implements, built-in or plugin.

A strategy is built from the search space, its own random generator (derived from the
run's master seed, never a global RNG), the fidelity (epochs) the protocol evaluates at,
every fidelity the benchmark offers (epochs of the protocol's schedule, up to that one),
and its hyperparameters. It proposes with :meth:`Strategy.ask` and learns from
:meth:`Strategy.tell`, which receives only a copy of the visible observation. A
multi-fidelity strategy may continue a paused training (``Proposal(arch, epoch,
trial=t)``, :mod:`harness.simulator`) and may answer ``None`` from ``ask`` while it waits
for results.

Hyperparameters are declared once, as :class:`~harness.config.Field` objects in
:attr:`Strategy.hyperparameters`; the base class validates the values a spec gives,
fills in the defaults and sets each one as an attribute, so a strategy needs no
``__init__`` of its own: it sets up its state in :meth:`Strategy.setup`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from harness.config import Field, validate
from harness.spaces.base import SearchSpace
from harness.values import Proposal, VisibleObservation

if TYPE_CHECKING:
    from harness.one_shot.setup import OneShotSetup


@dataclass(frozen=True)
class StrategyContext:
    """What a benchmark offers a strategy beyond its space: the data and network size a
    weight-sharing search trains its supernet with (None: the benchmark offers none)."""

    one_shot: OneShotSetup | None = None


class Strategy(ABC):
    """Base class of search strategies: declared hyperparameters, ask and tell."""

    #: hyperparameter name -> declaration (type, default, range, choices)
    hyperparameters: ClassVar[Mapping[str, Field]] = {}
    #: whether ``ask`` may return a ``ScoreRequest`` (the experiment must then name an
    #: ``[estimate]`` to answer it, :mod:`harness.simulator`)
    asks_scores: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        reserved = {
            "space",
            "rng",
            "fidelity",
            "fidelities",
            "params",
            "setup_cost_s",
            "context",
            *dir(Strategy),
        }
        clash = sorted(set(cls.hyperparameters) & reserved)
        if clash:
            raise TypeError(f"{cls.__name__}: hyperparameter {clash[0]!r} shadows a Strategy name")
        odd = sorted(name for name in cls.hyperparameters if not name.isidentifier())
        if odd:  # names become attributes and MLflow param keys
            raise TypeError(f"{cls.__name__}: hyperparameter {odd[0]!r} is not an identifier")

    def __init__(
        self,
        space: SearchSpace,
        rng: np.random.Generator,
        fidelity: int,
        fidelities: tuple[int, ...] | None = None,
        *,
        context: StrategyContext | None = None,
        **hyperparameters: Any,
    ) -> None:
        self.space = space
        #: what the benchmark offers beyond the space (:class:`StrategyContext`)
        self.context = context
        self.rng = rng
        self.fidelity = fidelity
        #: the epochs a proposal may ask for, increasing; the last is ``fidelity``
        self.fidelities = (fidelity,) if fidelities is None else tuple(fidelities)
        self.params = self.resolve_hyperparameters(hyperparameters)
        for name, value in self.params.items():
            setattr(self, name, value)
        #: simulated seconds of one-off work done in :meth:`setup`, charged before the
        #: first evaluation (:mod:`harness.simulator`)
        self.setup_cost_s = 0.0
        self.setup()

    @classmethod
    def resolve_hyperparameters(cls, given: Mapping[str, Any]) -> dict[str, Any]:
        """Defaults overlaid with ``given``; ConfigError names the offending parameter."""
        resolved = validate(given, cls.hyperparameters)
        cls.validate(resolved)
        return resolved

    @classmethod  # noqa: B027 - an optional hook, deliberately not abstract
    def validate(cls, params: Mapping[str, Any]) -> None:
        """Checks across hyperparameters; raise ``ConfigError(message, name)``."""

    def setup(self) -> None:  # noqa: B027 - an optional hook, deliberately not abstract
        """Build the strategy's state once the hyperparameters are set; one-off work a
        search must pay for (an estimator's scores, a fit) sets :attr:`setup_cost_s`."""

    def search_log(self) -> dict[str, Any] | None:
        """What a strategy's own search did that the record should keep (a weight-sharing
        search's per-epoch cells, say), as JSON-able values; None: nothing."""
        return None

    @abstractmethod
    def ask(self) -> Proposal | None:
        """Propose the next (architecture, fidelity) to evaluate, or None to wait until the
        next result is told."""

    @abstractmethod
    def tell(self, proposal: Proposal, observation: VisibleObservation) -> None:
        """Receive the visible result of an earlier proposal."""

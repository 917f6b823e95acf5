"""The estimator interface: score an architecture without training it fully.

An estimator is a plugin like a strategy: declared hyperparameters (:class:`Field`
objects, validated and set as attributes by the base class), an optional one-off
:meth:`Estimator.setup` (fitting a predictor, training a supernet) whose cost it reports
in :attr:`Estimator.setup_cost_s`, and :meth:`Estimator.score`, which returns a score
with its own measured cost. Higher scores predict better architectures.

It is built for one input of a proxy protocol (:mod:`harness.proxy_protocol`): the
network settings, the init seeds and what the network is fed. ``needs_data`` says whether
it needs real examples and labels or only an input shape; a data-free protocol input
given to an estimator that needs data is refused before anything is scored.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from harness.config import Field, validate
from harness.proxy_protocol import InputData, ProxyProtocol
from harness.spaces.base import SearchSpace


@dataclass(frozen=True)
class Score:
    """One estimate: ``value`` (higher predicts better; NaN where the method has no
    answer) and the seconds it took (host-dependent, like a training's measured time)."""

    value: float
    cost_s: float


class Estimator(ABC):
    """Base class of estimators: declared hyperparameters, optional set-up, a score."""

    #: hyperparameter name -> declaration (type, default, range, choices)
    hyperparameters: ClassVar[Mapping[str, Field]] = {}
    #: whether scores need examples and labels (False: an input shape is enough)
    needs_data: ClassVar[bool] = False
    #: what the method fixes rather than exposes (dtype, BN or not): recorded, not set
    settings: ClassVar[Mapping[str, Any]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        reserved = {"space", "protocol", "data", "params", "setup_cost_s", *dir(Estimator)}
        clash = sorted(set(cls.hyperparameters) & reserved)
        if clash:
            raise TypeError(
                f"{cls.__name__}: hyperparameter {clash[0]!r} shadows an Estimator name"
            )
        odd = sorted(name for name in cls.hyperparameters if not name.isidentifier())
        if odd:  # names become attributes and MLflow param keys
            raise TypeError(f"{cls.__name__}: hyperparameter {odd[0]!r} is not an identifier")

    def __init__(
        self,
        space: SearchSpace,
        protocol: ProxyProtocol,
        data: InputData,
        **hyperparameters: Any,
    ) -> None:
        self.space, self.protocol, self.data = space, protocol, data
        #: simulated seconds the one-off set-up costs (set by :meth:`setup` when it has one)
        self.setup_cost_s = 0.0
        self.params = self.resolve_hyperparameters(hyperparameters)
        for name, value in self.params.items():
            setattr(self, name, value)

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
        """The one-off work before scoring (a fit, a supernet's training); set
        :attr:`setup_cost_s` to what it cost, so a search can charge it."""

    @abstractmethod
    def score(self, arch: int, seed: int) -> Score:
        """Score architecture ``arch`` with init seed ``seed`` of the proxy protocol."""

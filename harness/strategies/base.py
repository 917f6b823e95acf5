"""The ask/tell interface every search strategy implements.

A strategy is built from the search space, its own random generator (derived from the
run's master seed, never a global RNG), the fidelity (epochs) the protocol evaluates at,
and its hyperparameters. It proposes with :meth:`Strategy.ask` and learns from
:meth:`Strategy.tell`, which receives only the visible observation.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from harness.errors import SpecError
from harness.evaluators.observation import Proposal, VisibleObservation
from harness.spaces.nb201 import NB201Space


class Strategy(ABC):
    """Base class: validates hyperparameters against :attr:`defaults`."""

    kind: ClassVar[str]
    #: hyperparameter name -> default value; the only names a spec may set
    defaults: ClassVar[Mapping[str, Any]] = {}

    def __init__(
        self,
        space: NB201Space,
        rng: np.random.Generator,
        fidelity: int,
        **hyperparameters: Any,
    ) -> None:
        self.space = space
        self.rng = rng
        self.fidelity = fidelity
        self.hyperparameters = self.resolve_hyperparameters(hyperparameters)

    @classmethod
    def resolve_hyperparameters(cls, given: Mapping[str, Any]) -> dict[str, Any]:
        """Defaults overlaid with ``given``; unknown names or wrong types raise SpecError."""
        unknown = sorted(set(given) - set(cls.defaults))
        if unknown:
            allowed = ", ".join(sorted(cls.defaults)) or "none"
            raise SpecError(
                f"strategy '{cls.kind}' has no parameter {unknown[0]!r}; allowed: {allowed}"
            )
        resolved = dict(cls.defaults)
        for name, value in given.items():
            expected = type(cls.defaults[name])
            if expected is float and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            if not isinstance(value, expected) or isinstance(value, bool) != (expected is bool):
                raise SpecError(
                    f"strategy '{cls.kind}' parameter {name!r} must be {expected.__name__}, "
                    f"got {value!r}"
                )
            resolved[name] = value
        cls.validate(resolved)
        return resolved

    @classmethod  # noqa: B027 - an optional hook, deliberately not abstract
    def validate(cls, hyperparameters: Mapping[str, Any]) -> None:
        """Range checks; subclasses raise SpecError naming the parameter."""

    @abstractmethod
    def ask(self) -> Proposal:
        """Propose the next (architecture, fidelity) to evaluate."""

    @abstractmethod
    def tell(self, proposal: Proposal, observation: VisibleObservation) -> None:
        """Receive the visible result of an earlier proposal."""

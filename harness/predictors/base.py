"""The predictor interface: fit on a few trained architectures, predict the rest.

A predictor is a plugin like an estimator: declared hyperparameters (:class:`Field`
objects, validated and set as attributes), :meth:`Predictor.fit` on training
architectures and their targets, and :meth:`Predictor.predict` for others (higher
predicts better). It reads what it knows of an architecture from
:class:`PredictorInputs`: the space's encodings, zero-cost proxy scores from pinned
estimate files, and per-epoch learning curves. A predictor that needs no training set
(a proxy alone, a learning-curve rule) says so with ``needs_training = False``; its fit
is never called.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from harness.config import Field, validate
from harness.errors import ConfigError
from harness.estimators.learning_curves import Curves
from harness.spaces.base import SearchSpace


@dataclass
class PredictorInputs:
    """What a predictor may read about any architecture of ``space``.

    ``proxies``: feature name -> every architecture's score (NaN where unscored) and
    measured cost per score; ``curves``: one training's per-epoch curves, where the
    table holds them."""

    space: SearchSpace
    proxies: dict[str, tuple[NDArray[np.float64], NDArray[np.float64]]] = field(
        default_factory=dict
    )
    curves: Curves | None = None
    _encodings: dict[tuple[str, int], NDArray[np.float64]] = field(default_factory=dict)

    def encoding_kind(self, kind: str) -> str:
        """``auto`` resolved: the path encoding where the space offers it, else one-hot."""
        if kind == "auto":
            return "path" if "path" in self.space.encodings else "onehot"
        if kind not in self.space.encodings:
            raise ConfigError(
                f"{kind!r} is not offered by space {self.space.name!r} "
                f"({', '.join(self.space.encodings)})",
                "encoding",
            )
        return kind

    def encode(self, archs: NDArray[np.int64], kind: str) -> NDArray[np.float64]:
        """The rows of ``archs`` in encoding ``kind`` (cached per architecture)."""
        rows = []
        for arch in archs.tolist():
            key = (kind, arch)
            if key not in self._encodings:
                self._encodings[key] = self.space.encode(arch, kind)
            rows.append(self._encodings[key])
        return np.array(rows, dtype=np.float64)

    def proxy(self, name: str, archs: NDArray[np.int64]) -> NDArray[np.float64]:
        """Proxy ``name``'s scores of ``archs``."""
        if name not in self.proxies:
            known = ", ".join(self.proxies) or "none"
            raise ConfigError(f"names no [[feature]] {name!r}; features: {known}", "proxies")
        return self.proxies[name][0][archs]


class Predictor(ABC):
    """Base class of predictors: declared hyperparameters, fit and predict."""

    #: hyperparameter name -> declaration (type, default, range, choices)
    hyperparameters: ClassVar[Mapping[str, Field]] = {}
    #: whether it learns from a training set (False: fit is never called)
    needs_training: ClassVar[bool] = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        reserved = {"inputs", "params", *dir(Predictor)}
        clash = sorted(set(cls.hyperparameters) & reserved)
        if clash:
            raise TypeError(f"{cls.__name__}: hyperparameter {clash[0]!r} shadows a Predictor name")

    def __init__(self, inputs: PredictorInputs, **hyperparameters: Any) -> None:
        self.inputs = inputs
        self.params = self.resolve_hyperparameters(hyperparameters)
        for name, value in self.params.items():
            setattr(self, name, value)

    @classmethod
    def resolve_hyperparameters(cls, given: Mapping[str, Any]) -> dict[str, Any]:
        """Defaults overlaid with ``given``; ConfigError names the offending parameter."""
        return validate(given, cls.hyperparameters)

    def check(self) -> None:  # noqa: B027 - an optional hook, deliberately not abstract
        """Check the inputs it reads exist (an encoding, a proxy, a curve epoch) before
        any trial runs; raise ConfigError or TableError."""

    def required(self) -> NDArray[np.bool_] | None:
        """Which architectures it can predict (None: all); the protocol draws its sets
        from the architectures every predictor can predict."""
        return None

    def query_cost_s(self, archs: NDArray[np.int64]) -> NDArray[np.float64]:
        """Simulated seconds it costs to learn what a prediction of each of ``archs``
        reads (a proxy's score, a partial training); 0 for an encoding alone."""
        return np.zeros(len(archs))

    def fit(  # noqa: B027 - predictors without a training set never fit
        self, archs: NDArray[np.int64], targets: NDArray[np.float64], rng: np.random.Generator
    ) -> None:
        """Learn from ``targets`` of ``archs``; every random draw comes from ``rng``."""

    @abstractmethod
    def predict(self, archs: NDArray[np.int64]) -> NDArray[np.float64]:
        """Predictions for ``archs`` (higher predicts better)."""

"""Estimators: score architectures without training them fully, found by ``kind``.

A kind is a built-in name, the name of an entry point in group ``harness.estimators``
that an installed distribution declares, or a ``package.module:Class`` reference, exactly
as for strategies; the record pins where the class came from
(:func:`harness.plugins.origin`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from harness.errors import ConfigError, EstimatorError
from harness.estimators.base import Estimator, Score
from harness.plugins import load_class
from harness.proxy_protocol import InputData, ProxyProtocol
from harness.spaces.base import SearchSpace

#: built-in kind -> class reference (imported only when asked for)
BUILTIN_ESTIMATORS = {
    name: f"harness.estimators.zero_cost:{cls}"
    for name, cls in (
        ("params", "Params"),
        ("flops", "Flops"),
        ("synflow", "Synflow"),
        ("snip", "Snip"),
        ("grasp", "Grasp"),
        ("fisher", "Fisher"),
        ("grad_norm", "GradNorm"),
        ("jacob_cov", "JacobCov"),
        ("nwot", "NWOT"),
        ("zen", "Zen"),
    )
}
BUILTIN_ESTIMATORS["supernet"] = "harness.estimators.supernet:SupernetAccuracy"
ENTRY_POINT_GROUP = "harness.estimators"


def estimator_class(kind: str) -> type[Estimator]:
    """The class a spec's ``kind`` names; ConfigError lists the known kinds."""
    return load_class(kind, group=ENTRY_POINT_GROUP, builtins=BUILTIN_ESTIMATORS, base=Estimator)


def resolve_params(kind: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """The hyperparameters of ``kind`` with defaults; a plugin's own checks that raise
    anything but ConfigError still end in one line naming the estimator."""
    cls = estimator_class(kind)
    try:
        return cls.resolve_hyperparameters(params)
    except ConfigError:
        raise
    except Exception as error:  # plugin code: it may raise anything
        raise ConfigError(f"{kind}.validate raised {type(error).__name__}: {error}") from None


def _plugin_error(cls: type, what: str, error: BaseException) -> EstimatorError:
    detail = " ".join(str(error).split())
    return EstimatorError(
        f"estimator {cls.__name__} raised while {what}: {type(error).__name__}: {detail}"
    )


def make_estimator(
    kind: str,
    space: SearchSpace,
    protocol: ProxyProtocol,
    data: InputData,
    params: Mapping[str, Any],
) -> Estimator:
    """Build and set up the estimator a spec names; whatever its constructor or ``setup``
    raises (but a ConfigError) is a one-line EstimatorError."""
    cls = estimator_class(kind)
    if cls.needs_data and data.examples is None:
        raise ConfigError(
            f"estimator {kind!r} needs examples and labels, but input {data.name!r} is "
            "data-free (a shape only); give the input a 'dataset'"
        )
    try:
        estimator = cls(space, protocol, data, **params)
        estimator.setup()
    except ConfigError:
        raise
    except Exception as error:  # plugin code: it may raise anything
        raise _plugin_error(cls, "setting up", error) from None
    return estimator


def checked_score(estimator: Estimator, arch: int, seed: int) -> Score:
    """``estimator.score`` with its contract enforced: a Score of a float value (NaN
    allowed) and a finite, non-negative cost; anything it raises is an EstimatorError."""
    try:
        score = estimator.score(arch, seed)
    except Exception as error:  # plugin code: it may raise anything
        raise _plugin_error(type(estimator), f"scoring architecture {arch}", error) from None
    if not isinstance(score, Score):
        raise EstimatorError(
            f"estimator {type(estimator).__name__} returned {type(score).__name__} from score, "
            "not a harness.estimators.Score"
        )
    try:
        value, cost = float(score.value), float(score.cost_s)
    except (TypeError, ValueError):
        raise EstimatorError(
            f"estimator {type(estimator).__name__} returned a score that is not a number"
        ) from None
    if not (cost >= 0 and cost != float("inf")):
        raise EstimatorError(
            f"estimator {type(estimator).__name__} reported cost {cost!r}; a cost is a finite, "
            "non-negative number of seconds"
        )
    return Score(value, cost)


__all__ = [
    "BUILTIN_ESTIMATORS",
    "Estimator",
    "Score",
    "checked_score",
    "estimator_class",
    "make_estimator",
    "resolve_params",
]

"""Search strategies (ask/tell), found by the ``kind`` a spec names.

A kind is a built-in name, the name of an entry point in group ``harness.strategies``
that an installed distribution declares, or a ``package.module:Class`` reference. All
three give the same records, reports and ``harness rerun``; the record pins where the
class came from (:func:`harness.plugins.origin`). docs/strategies.md shows how to write one.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import numpy as np

from harness.errors import CallTimeout, ConfigError, StrategyError
from harness.plugins import load_class
from harness.spaces.base import SearchSpace
from harness.strategies.base import Strategy, StrategyContext

#: built-in kind -> class reference (imported only when asked for)
BUILTIN_STRATEGIES = {
    "random_search": "harness.strategies.random_search:RandomSearch",
    "regularized_evolution": "harness.strategies.evolution:RegularizedEvolution",
    "reinforce": "harness.strategies.reinforce:Reinforce",
    "random_sampling": "harness.strategies.random_sampling:RandomSampling",
    "bananas": "harness.strategies.bananas:Bananas",
    "tpe": "harness.strategies.tpe:TPE",
    "successive_halving": "harness.strategies.hyperband:SuccessiveHalving",
    "hyperband": "harness.strategies.hyperband:Hyperband",
    "asha": "harness.strategies.asha:ASHA",
    "bohb": "harness.strategies.bohb:BOHB",
    "darts_v1": "harness.strategies.weight_sharing:DartsV1",
    "darts_v2": "harness.strategies.weight_sharing:DartsV2",
    "gdas": "harness.strategies.weight_sharing:Gdas",
    "setn": "harness.strategies.weight_sharing:Setn",
    "rsps": "harness.strategies.weight_sharing:Rsps",
    "enas": "harness.strategies.weight_sharing:Enas",
    "naswot": "harness.strategies.proxy_guided:NASWOT",
    "rea_warmup": "harness.strategies.proxy_guided:WarmREA",
    "bananas_warmup": "harness.strategies.proxy_guided:WarmBananas",
}
ENTRY_POINT_GROUP = "harness.strategies"


def strategy_class(kind: str) -> type[Strategy]:
    """The class a spec's ``kind`` names; ConfigError lists the known kinds."""
    return load_class(kind, group=ENTRY_POINT_GROUP, builtins=BUILTIN_STRATEGIES, base=Strategy)


def needs_one_shot(kind: str) -> bool:
    """Whether strategy ``kind`` trains a supernet (a weight-sharing search), and so needs
    a benchmark's weight-sharing set-up (:class:`StrategyContext`)."""
    return bool(getattr(strategy_class(kind), "needs_one_shot", False))


def resolve_params(kind: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """The hyperparameters of ``kind`` with defaults; a plugin's own checks that raise
    anything but ConfigError still end in one line naming the strategy."""
    cls = strategy_class(kind)
    try:
        return cls.resolve_hyperparameters(params)
    except (ConfigError, KeyboardInterrupt):
        raise
    except BaseException as error:  # plugin code: it may raise anything, sys.exit included
        raise ConfigError(f"{kind}.validate raised {type(error).__name__}: {error}") from None


def make_strategy(
    kind: str,
    space: SearchSpace,
    rng: np.random.Generator,
    fidelity: int,
    params: Mapping[str, Any],
    fidelities: tuple[int, ...] | None = None,
    context: StrategyContext | None = None,
) -> Strategy:
    """Build the strategy a spec names; a failing constructor or ``setup`` is a StrategyError.

    The strategy gets its own shallow copy of ``space`` (spaces keep their tables at module
    level, so the copy costs microseconds): an attribute a strategy sets on its space, say
    ``self.space.num_archs = 3``, stays with that strategy instead of changing every later
    run in the process.
    """
    cls = strategy_class(kind)
    try:
        # a private copy of the space: what one strategy sets on it no other run sees
        return cls(
            copy.copy(space), rng, fidelity, fidelities=fidelities, context=context, **params
        )
    except (ConfigError, KeyboardInterrupt, CallTimeout):
        raise
    except BaseException as error:  # plugin code: it may raise anything, sys.exit included
        detail = " ".join(str(error).split())
        raise StrategyError(
            f"strategy {cls.__name__} raised while starting: {type(error).__name__}: {detail}"
        ) from None


__all__ = ["BUILTIN_STRATEGIES", "Strategy", "make_strategy", "resolve_params", "strategy_class"]

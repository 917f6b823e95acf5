"""Search strategies (ask/tell), found by the ``kind`` a spec names.

A kind is a built-in name, the name of an entry point in group ``harness.strategies``
that an installed distribution declares, or a ``package.module:Class`` reference. All
three give the same records, reports and ``harness rerun``; the record pins where the
class came from (:func:`harness.plugins.origin`). docs/strategies.md shows how to write one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from harness.plugins import load_class
from harness.spaces.base import SearchSpace
from harness.strategies.base import Strategy

#: built-in kind -> class reference (imported only when asked for)
BUILTIN_STRATEGIES = {
    "random_search": "harness.strategies.random_search:RandomSearch",
    "regularized_evolution": "harness.strategies.evolution:RegularizedEvolution",
    "reinforce": "harness.strategies.reinforce:Reinforce",
}
ENTRY_POINT_GROUP = "harness.strategies"


def strategy_class(kind: str) -> type[Strategy]:
    """The class a spec's ``kind`` names; ConfigError lists the known kinds."""
    return load_class(kind, group=ENTRY_POINT_GROUP, builtins=BUILTIN_STRATEGIES, base=Strategy)


def make_strategy(
    kind: str,
    space: SearchSpace,
    rng: np.random.Generator,
    fidelity: int,
    params: Mapping[str, Any],
) -> Strategy:
    """Build the strategy a spec names."""
    return strategy_class(kind)(space, rng, fidelity, **params)


__all__ = ["BUILTIN_STRATEGIES", "Strategy", "make_strategy", "strategy_class"]

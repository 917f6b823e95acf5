"""Search strategies (ask/tell), looked up by the ``kind`` a spec names."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from harness.errors import SpecError
from harness.spaces.nb201 import NB201Space
from harness.strategies.base import Strategy
from harness.strategies.evolution import RegularizedEvolution
from harness.strategies.random_search import RandomSearch
from harness.strategies.reinforce import Reinforce

#: kind -> strategy class; the names a spec's ``strategy`` field may use
STRATEGIES: dict[str, type[Strategy]] = {
    cls.kind: cls for cls in (RandomSearch, RegularizedEvolution, Reinforce)
}


def make_strategy(
    kind: str,
    space: NB201Space,
    rng: np.random.Generator,
    fidelity: int,
    params: Mapping[str, Any],
) -> Strategy:
    """Build the strategy a spec names; unknown kinds raise SpecError listing the known."""
    try:
        cls = STRATEGIES[kind]
    except KeyError:
        known = ", ".join(sorted(STRATEGIES))
        raise SpecError(f"unknown strategy {kind!r}; known: {known}") from None
    return cls(space, rng, fidelity, **params)


__all__ = [
    "STRATEGIES",
    "RandomSearch",
    "RegularizedEvolution",
    "Reinforce",
    "Strategy",
    "make_strategy",
]

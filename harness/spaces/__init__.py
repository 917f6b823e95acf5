"""Search spaces, found by name: built-ins, entry points (``harness.spaces``) or
``package.module:Class``. Nothing outside a space's own module names a concrete space."""

from __future__ import annotations

import functools

from harness.plugins import load_class
from harness.spaces.base import ENCODINGS, SearchSpace

#: built-in space name -> class reference (imported only when asked for)
BUILTIN_SPACES = {
    "nb201": "harness.spaces.nb201:NB201Space",
    "nbgraph": "harness.spaces.nbgraph:NBGraphSpace",
    "nbgraph-proteins": "harness.spaces.nbgraph:NBGraphProteinsSpace",
    "nats-sss": "harness.spaces.nats_sss:NATSSizeSpace",
}
ENTRY_POINT_GROUP = "harness.spaces"


@functools.cache
def get_space(name: str) -> SearchSpace:
    """The shared instance of space ``name``; ConfigError lists the known spaces."""
    cls = load_class(name, group=ENTRY_POINT_GROUP, builtins=BUILTIN_SPACES, base=SearchSpace)
    return cls()


__all__ = ["BUILTIN_SPACES", "ENCODINGS", "SearchSpace", "get_space"]

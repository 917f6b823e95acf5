"""Search spaces: encoding, enumeration, sampling, mutation and isomorphism keys."""

from harness.spaces.nb201 import EDGES, NUM_ARCHS, OPS, NB201Space, get_space

__all__ = ["EDGES", "NUM_ARCHS", "OPS", "NB201Space", "get_space"]

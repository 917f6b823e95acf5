"""The NAS-Bench-201 cell: its 5 ops and 6 edges, in the order every NB201 string uses.

Both the space (:mod:`harness.spaces.nb201`) and the networks built from its cells
(:mod:`harness.models`) read these, so they sit below both: the space imports the
networks only when asked to build one, and the networks import nothing of the space.
"""

from __future__ import annotations

OPS: tuple[str, ...] = (
    "none",
    "skip_connect",
    "nor_conv_1x1",
    "nor_conv_3x3",
    "avg_pool_3x3",
)
"""The 5 op names; an op's code is its position here."""

EDGES: tuple[tuple[int, int], ...] = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))
"""The 6 (src, dst) edges in the order they appear in an arch string."""

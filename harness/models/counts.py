"""Parameter and FLOP counts of the NB201 network, computed without building it.

Kept free of torch so that table importers and reports can count without paying for the
torch import. :mod:`harness.models.nb201` builds the network these numbers describe.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence

from harness.errors import ArchitectureError
from harness.spaces.nb201_cell import EDGES, OPS

NONE, SKIP, CONV1, CONV3, POOL = range(len(OPS))
STAGES = 3


def _as_ints(values: object) -> tuple[int, ...] | None:
    """``values`` as a tuple of ints (numpy integers welcome), or None if not all ints."""
    try:
        items = tuple(values)  # type: ignore[arg-type]
        if any(isinstance(v, bool) for v in items):
            return None
        return tuple(operator.index(v) for v in items)
    except TypeError:
        return None


def check_config(
    ops: Sequence[int],
    channels: int,
    cells_per_stage: int,
    input_shape: tuple[int, int, int],
    num_classes: int,
) -> tuple[tuple[int, ...], int, int, tuple[int, int, int], int]:
    """Validate a configuration at the boundary; return it with plain ints throughout."""
    codes = _as_ints(ops)
    if codes is None or len(codes) != len(EDGES) or not all(0 <= c < len(OPS) for c in codes):
        raise ArchitectureError(
            f"NB201 ops must be {len(EDGES)} ints in 0..{len(OPS) - 1} "
            f"(codes of {', '.join(OPS)}), like (3, 3, 4, 1, 3, 1); got {ops!r}"
        )
    sizes = _as_ints((channels, cells_per_stage, num_classes))
    if sizes is None or min(sizes) < 1:
        raise ValueError(
            "channels, cells_per_stage and num_classes must be positive ints, got "
            f"{channels!r}, {cells_per_stage!r}, {num_classes!r}"
        )
    shape = _as_ints(input_shape)
    if shape is None or len(shape) != 3 or min(shape) < 1 or shape[1] % 4 or shape[2] % 4:
        raise ValueError(
            "input_shape must be (channels, height, width) with height and width "
            "divisible by 4 (two stride-2 reductions), like (3, 32, 32); "
            f"got {input_shape!r}"
        )
    return codes, sizes[0], sizes[1], (shape[0], shape[1], shape[2]), sizes[2]


def analytic_parameter_count(
    ops: Sequence[int],
    channels: int,
    cells_per_stage: int,
    input_shape: tuple[int, int, int],
    num_classes: int,
) -> int:
    """:func:`count_parameters` of the built network, computed without building it.

    Only convs (no bias), BN (2 per channel) and the classifier hold parameters;
    ``none``, ``skip_connect`` and pooling hold none. NB201's ``params`` (MB) is this
    divided by 1e6.
    """
    codes, channels, cells_per_stage, input_shape, num_classes = check_config(
        ops, channels, cells_per_stage, input_shape, num_classes
    )
    n1, n3 = codes.count(CONV1), codes.count(CONV3)
    total = input_shape[0] * channels * 9 + 2 * channels  # stem
    for stage in range(STAGES):
        c = channels << stage
        if stage:
            half = c // 2
            total += half * c * 9 + 2 * c + c * c * 9 + 2 * c + half * c  # reduction
        total += cells_per_stage * (n1 * (c * c + 2 * c) + n3 * (9 * c * c + 2 * c))
    width = channels << (STAGES - 1)
    return total + 2 * width + width * num_classes + num_classes  # lastact BN, classifier


def count_flops(
    ops: Sequence[int],
    channels: int,
    cells_per_stage: int,
    input_shape: tuple[int, int, int],
    num_classes: int,
) -> int:
    """Forward FLOPs of one image by NB201's convention, computed analytically.

    Multiply-accumulates of every conv (``k*k*c_in*c_out*h_out*w_out``) and of the
    linear layer (``in*out``), plus one per linear bias; BN, ReLU, pooling and
    additions are free. Every conv edge counts, as in NB201 (its cell computes all
    edges), even one whose output is pruned from our forward. NB201's ``flop`` field
    is this divided by 1e6.
    """
    codes, channels, cells_per_stage, (c_in, height, width), num_classes = check_config(
        ops, channels, cells_per_stage, input_shape, num_classes
    )
    n1, n3 = codes.count(CONV1), codes.count(CONV3)
    total = c_in * channels * 9 * height * width  # stem
    for stage in range(STAGES):
        c = channels << stage
        pixels = (height >> stage) * (width >> stage)
        if stage:
            half = c // 2
            total += (half * c * 9 + c * c * 9 + half * c) * pixels  # reduction
        total += cells_per_stage * (n1 * c * c + n3 * 9 * c * c) * pixels
    last = channels << (STAGES - 1)
    return total + last * num_classes + num_classes

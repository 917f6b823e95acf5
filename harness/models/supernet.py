"""The NAS-Bench-201 supernet: every edge of every cell holds all five ops, weights shared.

Written from NB201's description of its weight-sharing search network (AutoDL-Projects
``NAS201SearchCell`` and the ``TinyNetwork*`` search models): the skeleton of
:class:`harness.models.nb201.NB201Network` (stem, three stages of ``N`` cells, residual
reductions, last BN-ReLU, pooling, linear classifier), with each cell edge holding
``none``, ``skip_connect``, ``nor_conv_1x1``, ``nor_conv_3x3`` and ``avg_pool_3x3`` in
:data:`harness.spaces.nb201_cell.OPS` order. As in NB201's search, the edge ops' BatchNorms
have no affine parameters and track running statistics only if asked
(``track_running_stats``, NB201's ``BN`` script argument); stem, reductions and last BN
are the ordinary affine ones.

One network serves every weight-sharing method; what differs is how an edge combines its
ops, chosen per forward:

- ``weights`` (``[6, 5]``): each edge is ``sum_k w[e, k] * op_k(x)`` (DARTS, SETN's
  architecture step);
- ``hard`` and ``index``: GDAS's straight-through Gumbel form, where the sampled op is
  computed and every other op contributes only its weight (so every weight gets a gradient);
- ``ops`` (six op codes): one op per edge, a single cell of the space (RSPS, SETN's weight
  step, ENAS, and scoring an architecture with the shared weights).

Nodes sum their incoming edges in :data:`~harness.spaces.nb201_cell.EDGES` order, as NB201's
cell does. Weights never come from torch's global RNG (built on ``meta``, then drawn from
the caller's generator, as :func:`harness.models.nb201.build_nb201_network` does).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from harness.models.nb201 import Zero, initialise, skeleton
from harness.spaces.nb201_cell import EDGES, OPS

NUM_EDGES, NUM_OPS = len(EDGES), len(OPS)


def _search_op(code: int, channels: int, track: bool, device: torch.device) -> nn.Module:
    """NB201's search-cell op ``code`` (``OPS[code]``) at stride 1, BN without affine."""
    name = OPS[code]
    if name == "none":
        return Zero()
    if name == "skip_connect":
        return nn.Identity()
    if name == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    kernel = 1 if name == "nor_conv_1x1" else 3
    return nn.Sequential(
        nn.ReLU(inplace=False),
        nn.Conv2d(channels, channels, kernel, 1, kernel // 2, bias=False, device=device),
        nn.BatchNorm2d(channels, affine=False, track_running_stats=track, device=device),
    )


class SupernetCell(nn.Module):
    """One search cell: ``edges[e][k]`` is op ``k`` on edge ``EDGES[e]``."""

    def __init__(self, channels: int, track: bool, device: torch.device) -> None:
        super().__init__()
        self.edges = nn.ModuleList(
            nn.ModuleList(_search_op(k, channels, track, device) for k in range(NUM_OPS))
            for _ in EDGES
        )

    def forward(self, x: torch.Tensor, edge: EdgeRule) -> torch.Tensor:
        nodes = [x]
        for dst in (1, 2, 3):
            total: torch.Tensor | int = 0
            for e, (src, d) in enumerate(EDGES):
                if d == dst:
                    total = total + edge(e, self.edges[e], nodes[src])
            nodes.append(total)  # type: ignore[arg-type]
        return nodes[3]


class EdgeRule:
    """How an edge combines its ops in one forward (see the module docstring)."""

    def __init__(
        self,
        weights: torch.Tensor | None = None,
        hard: torch.Tensor | None = None,
        index: Sequence[int] | None = None,
        ops: Sequence[int] | None = None,
    ) -> None:
        given = sum(v is not None for v in (weights, hard, ops))
        if given != 1 or (hard is None) != (index is None):
            raise ValueError("give exactly one of weights, hard with index, or ops")
        self.weights, self.hard = weights, hard
        self.index = None if index is None else [int(i) for i in index]
        self.ops = None if ops is None else [int(o) for o in ops]

    def __call__(self, e: int, ops: nn.ModuleList, x: torch.Tensor) -> torch.Tensor:
        if self.ops is not None:
            return ops[self.ops[e]](x)
        if self.weights is not None:
            w = self.weights[e]
            total: torch.Tensor | int = 0
            for k, op in enumerate(ops):
                total = total + op(x) * w[k]
            return total  # type: ignore[return-value]
        assert self.hard is not None and self.index is not None
        w, chosen = self.hard[e], self.index[e]
        total = 0
        for k, op in enumerate(ops):
            total = total + (w[k] * op(x) if k == chosen else w[k])
        return total  # type: ignore[return-value]


class NB201Supernet(nn.Module):
    """The supernet; ``forward(x, rule)`` runs it under one :class:`EdgeRule`."""

    def __init__(
        self,
        channels: int,
        cells_per_stage: int,
        in_channels: int,
        num_classes: int,
        track_running_stats: bool,
        device: torch.device,
    ) -> None:
        super().__init__()
        stem, layers, lastact, classifier = skeleton(
            channels,
            cells_per_stage,
            in_channels,
            num_classes,
            lambda width: SupernetCell(width, track_running_stats, device),
            device,
        )
        # registered in forward order: the generator fills parameters in this order
        self.stem, self.cells = stem, nn.ModuleList(layers)
        self.lastact, self.classifier = lastact, classifier

    def forward(self, x: torch.Tensor, rule: EdgeRule) -> torch.Tensor:
        feature = self.stem(x)
        for layer in self.cells:
            feature = layer(feature, rule) if isinstance(layer, SupernetCell) else layer(feature)
        return self.classifier(self.lastact(feature).mean(dim=(2, 3)))


def build_supernet(
    *,
    channels: int,
    cells_per_stage: int,
    input_shape: tuple[int, int, int],
    num_classes: int,
    track_running_stats: bool,
    generator: torch.Generator,
) -> NB201Supernet:
    """The supernet on CPU, every weight drawn from ``generator`` (PyTorch's default init
    formulas); the same generator state gives bit-identical weights."""
    network = NB201Supernet(
        channels,
        cells_per_stage,
        input_shape[0],
        num_classes,
        bool(track_running_stats),
        torch.device("meta"),
    )
    network.to_empty(device="cpu")
    initialise(network, generator)
    return network

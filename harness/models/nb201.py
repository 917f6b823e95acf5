"""The NAS-Bench-201 network ("infer" tiny network) in PyTorch, with exact size counts.

Written from the NB201 paper's description of the network the benchmark trained:

- stem: Conv3x3(in, C) -> BN(C);
- three stages of N identical cells at C, 2C and 4C channels, separated by residual
  reduction blocks (stride 2);
- lastact BN -> ReLU, global average pool, Linear(4C, classes).

A cell is a 4-node DAG: node 0 is the cell input, node j sums ``op(node i)`` over its
incoming edges ``i -> j`` (:data:`harness.spaces.EDGES` order), and node 3 is the
output. Edge ops keep the shape: ``none`` (zeros), ``skip_connect`` (identity),
``nor_conv_1x1`` / ``nor_conv_3x3`` (ReLU -> Conv -> BN) and ``avg_pool_3x3``.

Weights never come from torch's global RNG: modules are built on the ``meta`` device
(no default init runs) and every parameter is then drawn from the caller's
``torch.Generator`` with PyTorch's default init formulas.

The size counts (:mod:`harness.models.counts`) follow NB201's own fields exactly:
``params`` is every parameter, BatchNorm affine parameters included, in units of 1e6;
``flop`` is multiply-accumulates of every conv and the linear layer plus the linear bias
additions, in units of 1e6, with BN, ReLU, pooling and sums free. The tests check them
against official NATS-Bench records and against the public hp=200 extracts for all
15,625 cells, which agree on every cell but 150 whose hp=200 records carry another
cell's size (NATS-Bench#36).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import nn

from harness.models.counts import CONV1, CONV3, NONE, POOL, SKIP, STAGES, check_config
from harness.spaces.nb201_cell import EDGES

__all__ = [
    "NB201Cell",
    "NB201Network",
    "ResidualReduction",
    "Zero",
    "build_nb201_network",
    "count_parameters",
]


class Zero(nn.Module):
    """The ``none`` op: zeros shaped like the input (NB201's ``x.mul(0.)``)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mul(0.0)


def _relu_conv_bn(
    c_in: int, c_out: int, kernel: int, stride: int, device: torch.device
) -> nn.Sequential:
    """NB201's ReLUConvBN: pre-activation, conv without bias, affine tracked BN."""
    return nn.Sequential(
        nn.ReLU(inplace=False),  # the input is shared with other edges: never in place
        nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, bias=False, device=device),
        nn.BatchNorm2d(c_out, device=device),
    )


def _edge_op(code: int, channels: int, device: torch.device) -> nn.Module:
    """The module for op ``code`` on a stride-1 edge with ``channels`` in and out."""
    if code == NONE:
        return Zero()
    if code == SKIP:
        return nn.Identity()
    if code == CONV1:
        return _relu_conv_bn(channels, channels, 1, 1, device)
    if code == CONV3:
        return _relu_conv_bn(channels, channels, 3, 1, device)
    # With equal in/out channels the infer cell's pooling op has no preprocessing conv.
    return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)


class NB201Cell(nn.Module):
    """One cell; the forward skips every edge whose contribution is exactly zero.

    ``edges[k]`` is the op on ``EDGES[k]`` (``none`` included, as a parameter-free
    :class:`Zero`), so the module tree and parameter count are NB201's. The forward
    follows a plan fixed at build time instead:

    - a node is *zero* when each incoming edge is ``none``, or ``skip_connect`` /
      ``avg_pool_3x3`` from a zero node; it is materialised as zeros only if a conv
      reads it (a conv on zeros is not zero: its BN adds the shift ``beta``);
    - nodes that cannot reach node 3 through a contributing edge are not computed.

    The output is bit-identical to the plain sum over all six edges (adding exact zeros
    changes nothing); gradients agree up to float rounding, as autograd may accumulate a
    node's incoming gradients in another order. Parameters on pruned paths cannot
    affect the output: they get no gradient (``None``) instead of zeros, and their BN
    running stats are not updated.

    ``full_forward=True`` computes every edge instead, as NB201's own code and the
    zero-cost proxies' reference code do: each node is the plain sum over all its incoming
    edges in :data:`EDGES` order, ``none`` included as ``x * 0``. The output is the same;
    the difference is visible only to what watches the inside of the network: dead-path
    parameters get (zero) gradients, their BN running stats are updated and their ReLUs run
    (NASWOT's ReLU codes, Zen-score's BN variances).
    """

    def __init__(
        self,
        ops: Sequence[int],
        channels: int,
        device: torch.device,
        *,
        full_forward: bool = False,
    ) -> None:
        super().__init__()
        self.edges = nn.ModuleList(_edge_op(code, channels, device) for code in ops)
        if full_forward:
            self._plan = tuple(
                (
                    dst,
                    False,
                    tuple((self.edges[k], s) for k, (s, d) in enumerate(EDGES) if d == dst),
                )
                for dst in (1, 2, 3)
            )
            return
        zero = [False] * 4
        for dst in (1, 2, 3):
            zero[dst] = all(
                ops[k] == NONE or (ops[k] in (SKIP, POOL) and zero[src])
                for k, (src, d) in enumerate(EDGES)
                if d == dst
            )
        live = [
            ops[k] != NONE and not (ops[k] in (SKIP, POOL) and zero[src])
            for k, (src, _) in enumerate(EDGES)
        ]
        needed = {3}
        for dst in (3, 2, 1):
            if dst in needed and not zero[dst]:
                needed.update(src for k, (src, d) in enumerate(EDGES) if d == dst and live[k])
        # Plain tuples of (module, source node): no ModuleList/dict lookups per step.
        self._plan: tuple[tuple[int, bool, tuple[tuple[nn.Module, int], ...]], ...] = tuple(
            (
                dst,
                zero[dst],
                tuple(
                    (self.edges[k], src)
                    for k, (src, d) in enumerate(EDGES)
                    if d == dst and live[k] and not zero[dst]
                ),
            )
            for dst in (1, 2, 3)
            if dst in needed
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes: list[torch.Tensor] = [x, x, x, x]  # placeholders; the plan writes before reads
        for dst, zero, terms in self._plan:
            if zero:
                nodes[dst] = torch.zeros_like(x)
                continue
            module, src = terms[0]
            out = module(nodes[src])
            for module, src in terms[1:]:
                out = out + module(nodes[src])
            nodes[dst] = out
        return nodes[3]


class ResidualReduction(nn.Module):
    """NB201's ResNetBasicblock with stride 2: halves the resolution, changes width."""

    def __init__(self, c_in: int, c_out: int, device: torch.device) -> None:
        super().__init__()
        self.conv_a = _relu_conv_bn(c_in, c_out, 3, 2, device)
        self.conv_b = _relu_conv_bn(c_out, c_out, 3, 1, device)
        self.shortcut = nn.Sequential(
            nn.AvgPool2d(2, stride=2, padding=0),
            nn.Conv2d(c_in, c_out, 1, bias=False, device=device),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut(x) + self.conv_b(self.conv_a(x))


def skeleton(
    channels: int,
    cells_per_stage: int,
    in_channels: int,
    num_classes: int,
    make_cell: Callable[[int], nn.Module],
    device: torch.device,
) -> tuple[nn.Module, list[nn.Module], nn.Module, nn.Module]:
    """NB201's macro skeleton around ``make_cell(width)``: the stem, the cells of three
    stages with residual reductions between them, the last BN-ReLU and the classifier
    (shared by the network of one cell and the supernet)."""
    stem = nn.Sequential(
        nn.Conv2d(in_channels, channels, 3, padding=1, bias=False, device=device),
        nn.BatchNorm2d(channels, device=device),
    )
    layers: list[nn.Module] = []
    width = channels
    for stage in range(STAGES):
        if stage:
            layers.append(ResidualReduction(width, 2 * width, device))
            width *= 2
        layers.extend(make_cell(width) for _ in range(cells_per_stage))
    lastact = nn.Sequential(nn.BatchNorm2d(width, device=device), nn.ReLU(inplace=True))
    return stem, layers, lastact, nn.Linear(width, num_classes, device=device)


class NB201Network(nn.Module):
    """The macro skeleton around one cell, repeated ``cells_per_stage`` times per stage.

    Construction leaves initialisation to the caller: :func:`build_nb201_network`
    builds it on ``meta`` (so torch's global-RNG default init never runs) and then
    draws every parameter from a generator.
    """

    def __init__(
        self,
        ops: Sequence[int],
        channels: int,
        cells_per_stage: int,
        in_channels: int,
        num_classes: int,
        device: torch.device,
        *,
        full_forward: bool = False,
    ) -> None:
        super().__init__()
        stem, layers, lastact, classifier = skeleton(
            channels,
            cells_per_stage,
            in_channels,
            num_classes,
            lambda width: NB201Cell(ops, width, device, full_forward=full_forward),
            device,
        )
        # registered in forward order: the generator fills parameters in this order
        self.stem, self.cells = stem, nn.Sequential(*layers)
        self.lastact, self.classifier = lastact, classifier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.lastact(self.cells(self.stem(x)))
        return self.classifier(features.mean(dim=(2, 3)))


def initialise(module: nn.Module, generator: torch.Generator | None) -> None:
    """Fill every parameter and buffer, drawing only from ``generator``.

    PyTorch's default formulas: conv/linear weights ``kaiming_uniform_(a=sqrt(5))``,
    biases U(-1/sqrt(fan_in), 1/sqrt(fan_in)); BN weight 1, bias 0, fresh running
    stats. With no generator the conv/linear tensors are zero-filled instead.
    """
    for sub in module.modules():
        if isinstance(sub, nn.Conv2d | nn.Linear):
            if generator is None:
                nn.init.zeros_(sub.weight)
            else:
                nn.init.kaiming_uniform_(sub.weight, a=math.sqrt(5), generator=generator)
            if sub.bias is not None:
                if generator is None:
                    nn.init.zeros_(sub.bias)
                else:
                    bound = 1.0 / math.sqrt(sub.weight[0].numel())
                    nn.init.uniform_(sub.bias, -bound, bound, generator=generator)
        elif isinstance(sub, nn.BatchNorm2d):
            sub.reset_parameters()  # weight 1, bias 0, running stats reset: no randomness
        elif (
            next(sub.parameters(recurse=False), None) is not None
            or next(sub.buffers(recurse=False), None) is not None
        ):
            raise TypeError(f"no deterministic initialiser for {type(sub).__name__}")


def build_nb201_network(
    ops: Sequence[int],
    *,
    channels: int,
    cells_per_stage: int,
    input_shape: tuple[int, int, int],
    num_classes: int,
    generator: torch.Generator | None,
    full_forward: bool = False,
) -> nn.Module:
    """The NB201 network for cell ``ops`` on CPU, its weights drawn from ``generator``.

    ``ops`` are the 6 op codes of :meth:`NB201Space.ops_of_index`; ``input_shape`` is
    one image's (channels, height, width). The same generator state gives bit-identical
    weights, and building never touches torch's global RNG. ``generator=None`` zero-fills
    the conv and linear weights: for counting or loading a state dict, not for training.
    NB201 itself used channels=16, cells_per_stage=5. ``full_forward=True`` computes every
    edge of each cell, pruned paths included (:class:`NB201Cell`): same outputs, the
    reference forward that zero-cost proxies observe.
    """
    codes, channels, cells_per_stage, input_shape, num_classes = check_config(
        ops, channels, cells_per_stage, input_shape, num_classes
    )
    if generator is not None and generator.device.type != "cpu":
        raise ValueError(
            f"generator must be a CPU torch.Generator (got one on {generator.device}); "
            "build on CPU and move the network with .to(device)"
        )
    network = NB201Network(
        codes,
        channels,
        cells_per_stage,
        input_shape[0],
        num_classes,
        torch.device("meta"),
        full_forward=bool(full_forward),
    )
    network.to_empty(device="cpu")
    initialise(network, generator)
    return network


def count_parameters(module: nn.Module) -> int:
    """Number of parameters (buffers such as BN running stats excluded), as NB201 counts."""
    return sum(p.numel() for p in module.parameters())

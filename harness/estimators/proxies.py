"""The numerics of eight zero-cost proxies, each faithful to its reference implementation.

Every function takes a freshly built network (weights drawn from a seeded generator,
train mode, float32) and a :class:`ProxyBatch`, and returns the reference's final scalar
as one float. None of them touches a global RNG: the only random draws (Zen-score's) come
from ``batch.generator``, so the same inputs and thread count give bit-identical scores.
Every proxy works on a deep copy of the network, as zero-cost-nas's ``measure``
decorator does (``copy_net=True``), so the caller's network is left as it was: no hooks,
no gradients, no changed weights or BN statistics; a caller that built the network for
this one score hands it over with ``consume=True`` and saves the copy (on the small
networks of a tabulated protocol the copy costs as much as the proxy). ``params`` and
``flops``, the other two of the ten, are not here: they are the exact size counts of the
space.

Checked outside the test suite by running the reference code itself on our NB201 networks
(same weights, same batch; channels 4, one cell per stage): grad_norm, snip, grasp,
fisher, synflow and zen (global seed equal to the generator's seed) give the same bits,
nwot the same bits as NASWOT on its own NB201 network with our weights, jacob_cov the
same to 5e-11 relative (``eigvalsh``, below).

zero-cost-nas (SamsungLabs/zero-cost-nas, ``foresight/pruners``) measures score every
``nn.Conv2d`` and ``nn.Linear`` weight (``p_utils.get_layer_metric_array``), produce one
array per layer, and ``predictive.find_measures`` sums them: ``torch.sum`` of each
layer's array, added layer by layer (in ``net.modules()`` order) to ``0.`` in the arrays'
dtype; a layer whose weight got no gradient contributes zeros. The loss is
``F.cross_entropy`` (mean over the batch) of the logits. All but synflow run on a copy
with BatchNorm kept (``bn=True``); the network's mode is kept (train, as built). The NB201
numbers zero-cost-nas published come from its own NB201 model (``nasbench2.py``), which is
not quite NB201's network: its cell BNs are ``affine=False`` without running statistics
and its cell convs carry a bias. We score the network we are given.

- ``grad_norm`` (``measures/grad_norm.py``): sum over layers of the 2-norm of the weight
  gradient of the loss on one batch.
- ``snip`` (``measures/snip.py``): sum of ``|dL/dm|`` for a multiplicative weight mask at
  ``m = 1``, which is ``|w * dL/dw|`` (the mask's gradient is bit-for-bit the product
  autograd would form); computed without patching ``forward`` or adding masks.
- ``grasp`` (``measures/grasp.py``, ``T=1``, ``num_iters=1``): ``g = dL/dw`` from a first
  pass (detached), then ``Hg = d(sum g * dL/dw)/dw`` through a second pass with
  ``create_graph``; score ``sum(-w * Hg)``, with the logits divided by ``temperature``.
  Where no conv/linear weight reaches the loss the reference crashes (``z`` stays the
  integer 0); we return NaN.
- ``fisher`` (``measures/fisher.py``, ``mode='channel'``): per output channel ``k`` of each
  layer, ``0.5 * mean_n (sum_spatial act * dL/dact)^2`` with ``act`` the layer's output
  (pre-BN), absolute value, broadcast to the channel's ``weight.shape[1:]`` as
  ``reshape_elements`` does (so each channel counts ``fan_in`` times) and summed. The
  activation and its gradient are captured by a forward hook and a tensor hook on the
  layer's output instead of the reference's patched ``forward`` plus an ``nn.Identity``
  backward hook: the same tensors. A layer called twice adds one term per call (the
  reference keeps only the last activation and breaks); layers marked ``dont_ch_prune``
  are skipped as in the reference. The copy is put in train mode, as the reference does.
- ``jacob_cov`` (``measures/jacob_cov.py``): ``J`` = gradient of ``sum(logits)`` w.r.t.
  the input batch, one row per example; ``C = corrcoef(J)`` (float64) and score
  ``-sum(log(v + 1e-5) + 1 / (v + 1e-5))`` over the eigenvalues ``v`` of ``C``. Deviation:
  ``numpy.linalg.eigvalsh`` instead of ``eig``: ``C`` is symmetric by construction,
  ``eigvalsh`` is guaranteed real (``eig`` may return spurious complex pairs from
  rounding) and agrees with ``eig`` to rounding. NaN where the reference gives NaN: a
  constant Jacobian row (zero variance, e.g. a cell of only ``none`` edges makes the
  logits constant) makes ``C`` NaN (the reference's ``eig`` raises and it returns
  ``np.nan``); a batch of one (``corrcoef`` is a scalar, ``eig`` raises); eigenvalues
  below ``-1e-5``.
- ``synflow`` (``measures/synflow.py``, ``bn=False``): on a copy with every BatchNorm
  removed (:func:`strip_batch_norm`, predictive.py's ``copynet(bn=False)``), every tensor
  of the state dict made absolute, the network in float64, one all-ones input of batch 1
  and shape ``input_shape``; score ``sum |w * d(sum out)/dw|`` in float64. Deviation:
  zero-cost-nas's own NB201 model (``nasbench2.get_prunable_copy``) rebuilds the net
  without BN in the cells and the last activation but, by the accident its comment calls
  "brittle", keeps the BN of the reduction blocks; we follow the generic ``copynet``,
  which removes every BatchNorm, as synflow's paper intends.

NASWOT (BayesWatch/nas-without-training, ``score_networks.py`` / ``search.py``,
``scores.hooklogdet``): hooks on every module whose type name contains ``ReLU``; a first
forward and ``backward(ones)`` from the output (input requiring grad) marks the ReLUs the
backward reaches; for each marked ReLU call the binary code ``c = (relu input > 0)``, one
row per example, adds ``c c^T + (1 - c)(1 - c)^T`` to ``K`` (batch x batch); the score is
``logdet`` of ``numpy.linalg.slogdet(K)`` (its sign is dropped, as in the reference).
The backward starts from the logits (NASWOT's NB201 net has one class and returns the
logits first); which ReLUs it reaches does not depend on the class count.
The name rule also matches NB201's own ``ReLUConvBN`` wrapper (in NASWOT's copy of the
NB201 network), whose input is its inner ReLU's input: there every ReLU-conv-BN op's
codes count twice. Our NB201 op is a bare ``nn.Sequential(ReLU, Conv, BN)``, so
``relu_blocks=True`` (the default) also hooks every ``nn.Sequential`` whose first child is
an ``nn.ReLU``: on NB201 this is exactly the reference's set of hooked modules (checked
against NASWOT's network with the same weights: same ``K``); ``relu_blocks=False`` applies
the bare name rule.
Deviations: one forward records codes and marks together (the reference's second forward
on the same batch gives the same codes in train mode); ``K`` is formed as
``2 c c^T - r_i - r_j + n`` (``r`` the row sums, ``n`` the units) with exact integer
arithmetic, which equals the reference's float32 products wherever those are exact
(fewer than 2^24 units per ReLU). A singular ``K`` (``logdet = -inf``, e.g. a cell of only
``none`` edges: every example has the same code) gives NaN.

Zen-score (idstcv/ZenNAS, ``ZeroShotProxy/compute_zen_score.py``): under ``no_grad``, for
each of ``repeat`` rounds, every Conv2d/Linear weight redrawn from N(0, 1) (biases 0),
BatchNorm2d/GroupNorm affine weights 1 and biases 0 (running statistics are *not* reset,
so they accumulate across rounds, as in the reference), two Gaussian input batches
``x1, x2`` of ``batch_size`` x ``input_shape`` (the reference hard-codes 3 channels), and
``log(mean_n sum_chw |f(x1) - f(x1 + mixup_gamma * x2)|) + sum_BN log(sqrt(mean(running_var)))``
with ``f`` the feature map before global average pooling; the score is the mean over
rounds. ``repeat=32`` is ``compute_zen_score.py``'s own default (``--repeat_times``); its
evolutionary search calls it with ``repeat=1``. ``batch_size=64`` is the batch of Zen-NAS's
CIFAR scripts. The draws come from ``batch.generator`` in the reference's order (weights in
``modules()`` order, then ``x1``, then ``x2``), on the CPU, then moved to the network's
device. ``f`` is found generically: the last 4-D tensor any module outputs during the
forward, or, where a pooling module collapses a larger map to 1x1, that module's input.
The mode is kept (train, as built: batch statistics, running variance updated). A zero
feature difference (e.g. a cell of only ``none`` edges) gives ``log 0``: NaN. BatchNorms
that track no running statistics are skipped (the reference would crash on them).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from harness.errors import EstimatorError

__all__ = [
    "ProxyBatch",
    "fisher",
    "grad_norm",
    "grasp",
    "jacob_cov",
    "nwot",
    "snip",
    "strip_batch_norm",
    "synflow",
    "zen",
]

#: jacob_cov's regulariser of the eigenvalues (``k`` in ``eval_score``)
_JACOB_K = 1e-5
#: below this many units per example a float32 product of 0/1 codes is exact
_EXACT_FLOAT32 = 1 << 24


@dataclass(frozen=True)
class ProxyBatch:
    """What one proxy score sees."""

    inputs: torch.Tensor | None  # float32 [B, C, H, W] real images; None for data-free
    labels: torch.Tensor | None  # int64 [B]; None for data-free
    input_shape: tuple[int, int, int]  # (C, H, W)
    num_classes: int
    generator: torch.Generator  # the only randomness a proxy may draw


# -- helpers -----------------------------------------------------------------------------


def _nan_unless_finite(value: float) -> float:
    """The score, or NaN where the reference's arithmetic ends in NaN or infinity."""
    return value if math.isfinite(value) else float("nan")


def _data(batch: ProxyBatch, proxy: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The batch's examples and labels; a data-free batch is a caller error."""
    if batch.inputs is None or batch.labels is None:
        raise EstimatorError(f"proxy {proxy!r} needs examples and labels; the batch has none")
    return batch.inputs, batch.labels


def _weighted_layers(network: nn.Module) -> list[nn.Conv2d | nn.Linear]:
    """The layers zero-cost-nas scores: every Conv2d and Linear, in ``modules()`` order."""
    return [m for m in network.modules() if isinstance(m, nn.Conv2d | nn.Linear)]


def _sum_layers(arrays: Iterable[torch.Tensor]) -> float:
    """predictive.py's ``sum_arr``: ``torch.sum`` of each layer's array, added in order."""
    total: float | torch.Tensor = 0.0
    for array in arrays:
        total = total + torch.sum(array)
    return float(total)


def _device(network: nn.Module) -> torch.device:
    """Where the network's parameters live (CPU for a parameter-free network)."""
    first = next(network.parameters(), None)
    return first.device if first is not None else torch.device("cpu")


def _loss(network: nn.Module, inputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """zero-cost-nas's ``loss_fn``: mean cross-entropy of the logits."""
    return F.cross_entropy(network(inputs), labels)


def _own(network: nn.Module, consume: bool) -> nn.Module:
    """The network a proxy may change: the caller's own when it hands it over
    (``consume``, a network built for this one score), else a deep copy."""
    return network if consume else copy.deepcopy(network)


def strip_batch_norm(network: nn.Module, *, in_place: bool = False) -> nn.Module:
    """A deep copy (or, ``in_place``, the network itself) with every BatchNorm replaced
    by ``nn.Identity``.

    zero-cost-nas's ``copynet(bn=False)`` turns each BatchNorm's forward into a no-op; an
    Identity is the same function and leaves no BN parameters or buffers behind. Only
    registered submodules are replaced: a module that calls a BatchNorm through a
    private, unregistered reference would still reach the (copied) BatchNorm.
    """
    net = _own(network, in_place)
    if isinstance(net, _BatchNorm):
        return nn.Identity()
    for parent in list(net.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, _BatchNorm):
                setattr(parent, name, nn.Identity())
    return net


# -- zero-cost-nas measures ---------------------------------------------------------------


def grad_norm(network: nn.Module, batch: ProxyBatch, *, consume: bool = False) -> float:
    """Sum over conv/linear layers of ``||dL/dw||_2`` on one batch (zero-cost-nas)."""
    inputs, labels = _data(batch, "grad_norm")
    net = _own(network, consume)
    net.zero_grad()
    _loss(net, inputs, labels).backward()
    return _sum_layers(
        layer.weight.grad.norm() if layer.weight.grad is not None else torch.zeros(())
        for layer in _weighted_layers(net)
    )


def snip(network: nn.Module, batch: ProxyBatch, *, consume: bool = False) -> float:
    """SNIP's connection sensitivity ``sum |w * dL/dw|`` (zero-cost-nas, mode ``param``)."""
    inputs, labels = _data(batch, "snip")
    net = _own(network, consume)
    net.zero_grad()
    _loss(net, inputs, labels).backward()
    return _sum_layers(
        (layer.weight.grad * layer.weight.detach()).abs()
        if layer.weight.grad is not None
        else torch.zeros(())
        for layer in _weighted_layers(net)
    )


def grasp(
    network: nn.Module, batch: ProxyBatch, *, temperature: float = 1.0, consume: bool = False
) -> float:
    """GraSP's ``sum(-w * Hg)`` (zero-cost-nas's sign), the Hessian-gradient product
    taken by double backward through the whole network, BatchNorm included."""
    inputs, labels = _data(batch, "grasp")
    net = _own(network, consume)
    net.zero_grad()
    layers = _weighted_layers(net)
    weights = [layer.weight for layer in layers]
    if not weights:
        return float("nan")
    first = torch.autograd.grad(
        F.cross_entropy(net(inputs) / temperature, labels), weights, allow_unused=True
    )
    second = torch.autograd.grad(
        F.cross_entropy(net(inputs) / temperature, labels),
        weights,
        create_graph=True,
        allow_unused=True,
    )
    z: torch.Tensor | None = None
    for g, g_graph in zip(first, second, strict=True):
        if g is not None and g_graph is not None:
            term = (g.detach() * g_graph).sum()
            z = term if z is None else z + term
    if z is None:  # the reference's z stays the integer 0 and z.backward() fails
        return float("nan")
    hessian_grad = torch.autograd.grad(z, weights, allow_unused=True)
    return _nan_unless_finite(
        _sum_layers(
            -w.detach() * hg if hg is not None else torch.zeros(())
            for w, hg in zip(weights, hessian_grad, strict=True)
        )
    )


def fisher(network: nn.Module, batch: ProxyBatch, *, consume: bool = False) -> float:
    """Fisher information per output channel, broadcast over its fan-in and summed
    (zero-cost-nas, mode ``channel``)."""
    inputs, labels = _data(batch, "fisher")
    net = _own(network, consume)
    net.train()
    layers = [m for m in _weighted_layers(net) if not hasattr(m, "dont_ch_prune")]
    per_channel: dict[int, torch.Tensor] = {}

    def on_forward(module: nn.Module, _args: object, output: torch.Tensor) -> None:
        if not output.requires_grad:
            return
        act = output.detach()

        def on_grad(grad: torch.Tensor) -> None:
            g = act * grad.detach()
            if g.dim() > 2:
                g = g.sum(dim=tuple(range(2, g.dim())))
            term = g.pow(2).mean(0).mul(0.5)
            key = id(module)
            per_channel[key] = term if key not in per_channel else per_channel[key] + term

        output.register_hook(on_grad)

    handles = [layer.register_forward_hook(on_forward) for layer in layers]
    try:
        net.zero_grad()
        _loss(net, inputs, labels).backward()
    finally:
        for handle in handles:
            handle.remove()
    arrays = []
    for layer in layers:
        values = per_channel.get(id(layer))
        if values is None:
            values = torch.zeros(layer.weight.shape[0], device=layer.weight.device)
        fan = layer.weight.shape[1:]
        values = values.abs().reshape(-1, *([1] * len(fan)))
        # materialised like reference's reshape_elements, so torch.sum adds in its order
        arrays.append(values.expand(layer.weight.shape[0], *fan).contiguous())
    return _nan_unless_finite(_sum_layers(arrays))


def _jacob_cov_score(jacobian: np.ndarray) -> float:
    """``eval_score`` of zero-cost-nas's jacob_cov on rows of input gradients."""
    if jacobian.shape[0] < 2:
        return float("nan")  # corrcoef of one row is a scalar: the reference's eig raises
    with np.errstate(all="ignore"):
        corr = np.corrcoef(jacobian)
        if not np.all(np.isfinite(corr)):
            return float("nan")
        v = np.linalg.eigvalsh(corr)
        score = -np.sum(np.log(v + _JACOB_K) + 1.0 / (v + _JACOB_K))
    return _nan_unless_finite(float(score))


def jacob_cov(network: nn.Module, batch: ProxyBatch, *, consume: bool = False) -> float:
    """Correlation of the input Jacobians across the batch (zero-cost-nas's jacob_cov)."""
    inputs, _ = _data(batch, "jacob_cov")
    net = _own(network, consume)
    net.zero_grad()
    x = inputs.detach().clone().requires_grad_(True)
    y = net(x)
    (jacobian,) = torch.autograd.grad(y, x, torch.ones_like(y))
    rows = jacobian.detach().reshape(jacobian.shape[0], -1).cpu().numpy()
    return _jacob_cov_score(rows)


def synflow(network: nn.Module, batch: ProxyBatch, *, consume: bool = False) -> float:
    """SynFlow ``sum |w * d(sum out)/dw|``: no BN, absolute weights, float64, input of
    ones, batch 1 (zero-cost-nas's ``synflow``). Data-free: reads ``input_shape`` only."""
    net = strip_batch_norm(network, in_place=consume)
    with torch.no_grad():
        for tensor in net.state_dict().values():
            tensor.abs_()
    net.double()
    net.zero_grad()
    ones = torch.ones((1, *batch.input_shape), dtype=torch.float64, device=_device(net))
    torch.sum(net(ones)).backward()
    return _nan_unless_finite(
        _sum_layers(
            (layer.weight * layer.weight.grad).abs().detach()
            if layer.weight.grad is not None
            else torch.zeros((), dtype=torch.float64)
            for layer in _weighted_layers(net)
        )
    )


# -- NASWOT --------------------------------------------------------------------------------


def _code_kernel(codes: torch.Tensor) -> torch.Tensor:
    """``c c^T + (1 - c)(1 - c)^T`` of 0/1 codes [B, n], exactly, in float64.

    Written as ``2 c c^T - r_i - r_j + n`` with one product; the product of 0/1 values is
    exact in float32 below 2^24 units, and in float64 beyond.
    """
    units = codes.shape[1]
    dtype = torch.float32 if units < _EXACT_FLOAT32 else torch.float64
    c = codes.to(dtype)
    gram = (c @ c.T).to(torch.float64)
    rows = c.sum(dim=1, dtype=torch.float64)
    return 2.0 * gram - rows[:, None] - rows[None, :] + float(units)


def _is_relu_block(module: nn.Module) -> bool:
    """An ``nn.Sequential`` that starts with a ReLU: where NB201's ``ReLUConvBN`` sits."""
    if not isinstance(module, nn.Sequential) or len(module) == 0:
        return False
    return isinstance(module[0], nn.ReLU)


def nwot(
    network: nn.Module, batch: ProxyBatch, *, relu_blocks: bool = True, consume: bool = False
) -> float:
    """NASWOT's ``logdet K`` of the ReLU-code kernel over every ReLU the backward reaches.

    ``relu_blocks`` also counts each ``nn.Sequential`` that starts with a ReLU, as the
    reference's name rule counts NB201's ``ReLUConvBN`` wrappers (see the module notes).
    """
    inputs, _ = _data(batch, "nwot")
    net = _own(network, consume)
    relus = [
        m
        for m in net.modules()
        if "ReLU" in type(m).__name__ or (relu_blocks and _is_relu_block(m))
    ]
    kernels: dict[int, torch.Tensor] = {}
    reached: set[int] = set()

    def on_forward(module: nn.Module, args: tuple[torch.Tensor, ...], output: object) -> None:
        x = args[0].detach()
        kernel = _code_kernel(x.reshape(x.shape[0], -1) > 0).cpu()
        key = id(module)
        kernels[key] = kernel if key not in kernels else kernels[key] + kernel
        if isinstance(output, torch.Tensor) and output.requires_grad:
            output.register_hook(lambda _grad: reached.add(key))

    handles = [relu.register_forward_hook(on_forward) for relu in relus]
    try:
        net.zero_grad()
        x = inputs.detach().clone().requires_grad_(True)
        y = net(x)
        y.backward(torch.ones_like(y))
    finally:
        for handle in handles:
            handle.remove()
    size = inputs.shape[0]
    k = torch.zeros((size, size), dtype=torch.float64)
    for relu in relus:
        if id(relu) in reached:
            k = k + kernels[id(relu)]
    _, logdet = np.linalg.slogdet(k.numpy())
    return _nan_unless_finite(float(logdet))


# -- Zen-score ------------------------------------------------------------------------------


def _gaussian_init(network: nn.Module, generator: torch.Generator) -> None:
    """Zen-NAS's ``network_weight_gaussian_init``, drawing from ``generator`` on the CPU."""
    for m in network.modules():
        if isinstance(m, nn.Conv2d | nn.Linear):
            draw = torch.randn(m.weight.shape, generator=generator, dtype=m.weight.dtype)
            m.weight.copy_(draw)
            if m.bias is not None:
                m.bias.zero_()
        elif isinstance(m, nn.BatchNorm2d | nn.GroupNorm):
            if m.weight is not None:
                m.weight.fill_(1.0)
            if m.bias is not None:
                m.bias.zero_()


_POOLS = (
    nn.AdaptiveAvgPool2d,
    nn.AdaptiveMaxPool2d,
    nn.AvgPool2d,
    nn.MaxPool2d,
)


def _pre_pool_features(network: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """A function running the network and returning its feature map before global
    pooling: the last 4-D module output, or the input a pooling module collapses to 1x1."""

    def run(x: torch.Tensor) -> torch.Tensor:
        found: list[torch.Tensor] = []  # holds the latest candidate only: no activation pile

        def on_forward(module: nn.Module, args: Sequence[object], output: object) -> None:
            if not isinstance(output, torch.Tensor) or output.dim() != 4:
                return
            source = args[0] if args else None
            if (
                isinstance(module, _POOLS)
                and tuple(output.shape[2:]) == (1, 1)
                and isinstance(source, torch.Tensor)
                and source.dim() == 4
                and tuple(source.shape[2:]) != (1, 1)
            ):
                found[:] = [source]
            else:
                found[:] = [output]

        handles = [m.register_forward_hook(on_forward) for m in network.modules()]
        try:
            network(x)
        finally:
            for handle in handles:
                handle.remove()
        if not found:
            raise EstimatorError(
                "zen needs the feature map before global pooling, but no module of "
                f"{type(network).__name__} outputs a 4-D tensor"
            )
        return found[-1]

    return run


def zen(
    network: nn.Module,
    batch: ProxyBatch,
    *,
    mixup_gamma: float = 1e-2,
    repeat: int = 32,
    batch_size: int = 64,
    consume: bool = False,
) -> float:
    """Zen-score: log of the mean feature change under a small Gaussian perturbation plus
    the BN scaling term, averaged over ``repeat`` Gaussian re-initialisations (Zen-NAS).
    Data-free: the inputs are Gaussian draws from ``batch.generator``."""
    if repeat < 1 or batch_size < 1:
        raise EstimatorError(
            f"zen needs repeat >= 1 and batch_size >= 1 (got {repeat}, {batch_size})"
        )
    net = _own(network, consume)
    device = _device(net)
    features = _pre_pool_features(net)
    shape = (batch_size, *batch.input_shape)
    scores: list[float] = []
    with torch.no_grad():
        for _ in range(repeat):
            _gaussian_init(net, batch.generator)
            x1 = torch.randn(shape, generator=batch.generator).to(device)
            x2 = torch.randn(shape, generator=batch.generator).to(device)
            mixed = x1 + mixup_gamma * x2
            difference = torch.abs(features(x1) - features(mixed))
            score = torch.log(torch.mean(torch.sum(difference, dim=[1, 2, 3])))
            bn_term: float | torch.Tensor = 0.0
            for m in net.modules():
                if isinstance(m, nn.BatchNorm2d) and m.running_var is not None:
                    bn_term = bn_term + torch.log(torch.sqrt(torch.mean(m.running_var)))
            scores.append(float(score + bn_term))
    return _nan_unless_finite(float(np.mean(scores)))

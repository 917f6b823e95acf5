"""The zero-cost proxies' numerics (harness.estimators.proxies) against independent formulas.

Each proxy is checked on a tiny hand-made network against its reference formula written
another way (autograd.functional, explicit activations, numpy, closed forms), then on
small NB201 networks for finiteness, determinism and the documented all-``none`` values.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from harness.errors import EstimatorError
from harness.estimators import proxies
from harness.estimators.proxies import ProxyBatch, strip_batch_norm
from harness.spaces import get_space

SHAPE = (2, 6, 6)
CLASSES = 4
BATCH = 12
NB201_SHAPE = (1, 8, 8)
ALL_NONE = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
#: edge (1, 2) is a conv whose output only reaches node 3 through ``none``: a dead path
DEAD_PATH = "|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_1x1~1|none~2|"
PROXIES = {
    "grad_norm": proxies.grad_norm,
    "snip": proxies.snip,
    "grasp": proxies.grasp,
    "fisher": proxies.fisher,
    "jacob_cov": proxies.jacob_cov,
    "synflow": proxies.synflow,
    "nwot": proxies.nwot,
    "zen": proxies.zen,
}


def make_batch(seed: int = 0, shape=SHAPE, classes=CLASSES, size=BATCH) -> ProxyBatch:
    g = torch.Generator().manual_seed(seed)
    inputs = torch.randn((size, *shape), generator=g)
    labels = torch.randint(0, classes, (size,), generator=g)
    return ProxyBatch(inputs, labels, shape, classes, torch.Generator().manual_seed(seed + 1))


def tiny_network(seed: int = 0) -> nn.Sequential:
    """conv -> BN -> ReLU -> conv -> ReLU -> global pool -> linear, seeded weights."""
    net = nn.Sequential(
        nn.Conv2d(SHAPE[0], 3, 3, padding=1, bias=False),
        nn.BatchNorm2d(3),
        nn.ReLU(),
        nn.Conv2d(3, 5, 1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(5, CLASSES),
    )
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.5 + 0.1)
    return net.train()


def weighted(net: nn.Module) -> list[nn.Module]:
    return [m for m in net.modules() if isinstance(m, nn.Conv2d | nn.Linear)]


def weight_grads(net: nn.Module, batch: ProxyBatch) -> list[torch.Tensor]:
    net = copy.deepcopy(net)
    loss = F.cross_entropy(net(batch.inputs), batch.labels)
    return list(torch.autograd.grad(loss, [m.weight for m in weighted(net)]))


# -- each proxy against its formula written another way -----------------------------------


def test_grad_norm_sums_the_per_layer_gradient_norms():
    net, batch = tiny_network(), make_batch()
    expected = sum(math.sqrt(float((g.double() ** 2).sum())) for g in weight_grads(net, batch))
    assert proxies.grad_norm(net, batch) == pytest.approx(expected, rel=1e-5)


def test_snip_equals_the_gradient_of_a_unit_weight_mask():
    net, batch = tiny_network(), make_batch()
    names = [n for n, p in net.named_parameters() if p.dim() > 1]
    params = dict(net.named_parameters())
    masks = [torch.ones_like(params[n], requires_grad=True) for n in names]

    def loss_of(*mask: torch.Tensor) -> torch.Tensor:
        masked = {**params, **{n: params[n].detach() * m for n, m in zip(names, mask, strict=True)}}
        return F.cross_entropy(
            functional_call(copy.deepcopy(net), masked, batch.inputs), batch.labels
        )

    grads = torch.autograd.grad(loss_of(*masks), masks)
    expected = sum(float(g.abs().double().sum()) for g in grads)
    assert proxies.snip(net, batch) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("temperature", [1.0, 2.5])
def test_grasp_is_minus_weight_dot_hessian_times_gradient(temperature):
    net, batch = tiny_network(), make_batch()
    names = [n for n, p in net.named_parameters() if p.dim() > 1]
    params = {n: p.detach() for n, p in net.named_parameters()}
    weights = tuple(params[n] for n in names)

    def loss_of(*w: torch.Tensor) -> torch.Tensor:
        replaced = {**params, **dict(zip(names, w, strict=True))}
        logits = functional_call(copy.deepcopy(net), replaced, batch.inputs)
        return F.cross_entropy(logits / temperature, batch.labels)

    leaves = [w.clone().requires_grad_() for w in weights]
    gradient = torch.autograd.grad(loss_of(*leaves), leaves)
    _, hg = torch.autograd.functional.hvp(loss_of, weights, tuple(g.detach() for g in gradient))
    expected = -sum(float((w * h).double().sum()) for w, h in zip(weights, hg, strict=True))
    score = proxies.grasp(net, batch, temperature=temperature)
    assert score == pytest.approx(expected, rel=1e-5)


def test_fisher_sums_channel_information_times_fan_in():
    net, batch = tiny_network(), make_batch()
    net = copy.deepcopy(net)
    acts: list[torch.Tensor] = []
    x = batch.inputs
    for layer in net:
        x = layer(x)
        if isinstance(layer, nn.Conv2d | nn.Linear):
            x.retain_grad()
            acts.append(x)
    F.cross_entropy(x, batch.labels).backward()
    expected = 0.0
    for act, layer in zip(acts, weighted(net), strict=True):
        a, g = act.detach().double(), act.grad.double()
        per_example = (a * g).sum(dim=(2, 3)) if a.dim() == 4 else a * g
        channel = 0.5 * (per_example**2).mean(dim=0)
        expected += float(channel.sum()) * layer.weight[0].numel()
    assert proxies.fisher(tiny_network(), batch) == pytest.approx(expected, rel=1e-5)


def test_jacob_cov_matches_the_eigenvalue_formula():
    net, batch = tiny_network(), make_batch()
    _, jac = torch.autograd.functional.vjp(
        copy.deepcopy(net), batch.inputs, torch.ones(BATCH, CLASSES)
    )
    corr = np.corrcoef(jac.reshape(BATCH, -1).numpy())
    v = np.linalg.eig(corr)[0].real
    expected = -np.sum(np.log(v + 1e-5) + 1.0 / (v + 1e-5))
    assert proxies.jacob_cov(net, batch) == pytest.approx(expected, rel=1e-8)


def test_jacob_cov_of_a_constant_jacobian_is_nan():
    net = nn.Sequential(nn.Flatten(), nn.Linear(math.prod(SHAPE), CLASSES))
    with torch.no_grad():
        net[1].weight.zero_()  # every Jacobian row is constant (zero): corrcoef divides by 0
    assert math.isnan(proxies.jacob_cov(net, make_batch()))
    assert math.isnan(proxies.jacob_cov(tiny_network(), make_batch(size=1)))


def test_synflow_of_a_two_layer_linear_net_has_a_closed_form():
    g = torch.Generator().manual_seed(3)
    net = nn.Sequential(
        nn.Flatten(), nn.Linear(8, 5, bias=False), nn.BatchNorm1d(5), nn.Linear(5, 3, bias=False)
    )
    with torch.no_grad():
        for p in (net[1].weight, net[3].weight):
            p.copy_(torch.randn(p.shape, generator=g))
    w1, w2 = net[1].weight.detach().double().abs(), net[3].weight.detach().double().abs()
    batch = ProxyBatch(None, None, (2, 2, 2), 3, torch.Generator())
    # sum |w * dR/dw| over both layers of R = 1^T |W2| |W1| 1 is 2 R (BN removed, batch 1)
    assert proxies.synflow(net, batch) == pytest.approx(2 * float((w2 @ w1).sum()), rel=1e-12)


def kernel_of_codes(pre_activations: list[tuple[np.ndarray, int]], size: int) -> np.ndarray:
    """NASWOT's K from ReLU inputs and how often each counts: units minus Hamming distance."""
    kernel = np.zeros((size, size))
    for pre, times in pre_activations:
        codes = (pre.reshape(size, -1) > 0).astype(int)
        hamming = (codes[:, None, :] != codes[None, :, :]).sum(axis=2)
        kernel += times * (codes.shape[1] - hamming)
    return kernel


def test_nwot_is_the_logdet_of_the_hamming_kernel_of_reached_relus():
    class WithDeadBranch(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = tiny_network()
            self.dead = nn.ReLU()  # runs, but its output never reaches the logits

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            self.dead(x)
            return self.body(x)

    net, batch = WithDeadBranch(), make_batch()
    seen: list[np.ndarray] = []
    hooks = [
        m.register_forward_hook(lambda _m, a, _o: seen.append(a[0].detach().numpy().copy()))
        for m in (net.body[2], net.body[4])
    ]
    copy.deepcopy(net)(batch.inputs)
    for h in hooks:
        h.remove()
    kernel = kernel_of_codes([(pre, 1) for pre in seen], BATCH)
    assert proxies.nwot(net, batch) == pytest.approx(np.linalg.slogdet(kernel)[1], rel=1e-12)


def test_nwot_counts_relu_conv_bn_inputs_twice_as_nb201s_reference_network_does():
    net, batch = nb201(DEAD_PATH), nb201_batch()
    probe = copy.deepcopy(net)
    # NASWOT's name rule hooks NB201's ReLUConvBN wrapper too: its input is its first ReLU's
    doubled = {
        id(m[0])
        for m in probe.modules()
        if isinstance(m, nn.Sequential) and len(m) and isinstance(m[0], nn.ReLU)
    }
    seen: list[tuple[np.ndarray, int]] = []

    def record(module: nn.Module, args: tuple[torch.Tensor], _out: torch.Tensor) -> None:
        seen.append((args[0].detach().numpy().copy(), 2 if id(module) in doubled else 1))

    relus = [m for m in probe.modules() if isinstance(m, nn.ReLU)]
    for relu in relus:
        relu.register_forward_hook(record)
    probe(batch.inputs)
    size = batch.inputs.shape[0]
    assert len(seen) == len(relus) and doubled
    twice = np.linalg.slogdet(kernel_of_codes(seen, size))[1]
    once = np.linalg.slogdet(kernel_of_codes([(pre, 1) for pre, _ in seen], size))[1]
    assert proxies.nwot(net, batch) == pytest.approx(twice, rel=1e-12)
    assert proxies.nwot(net, batch, relu_blocks=False) == pytest.approx(once, rel=1e-12)


def test_zen_is_log_feature_change_plus_bn_scaling():
    net = tiny_network()
    batch = ProxyBatch(None, None, SHAPE, CLASSES, torch.Generator().manual_seed(5))
    score = proxies.zen(net, batch, repeat=1, batch_size=6, mixup_gamma=0.1)
    # the documented draws: N(0,1) conv/linear weights in modules() order, then x1, x2
    mine, g = copy.deepcopy(net), torch.Generator().manual_seed(5)
    with torch.no_grad():
        for m in mine.modules():
            if isinstance(m, nn.Conv2d | nn.Linear):
                m.weight.copy_(torch.randn(m.weight.shape, generator=g))
                if m.bias is not None:
                    m.bias.zero_()
            elif isinstance(m, nn.BatchNorm2d):
                m.weight.fill_(1.0)
                m.bias.zero_()
        x1 = torch.randn((6, *SHAPE), generator=g)
        x2 = torch.randn((6, *SHAPE), generator=g)
        features = mine[:5]  # everything before the global pooling
        change = (features(x1) - features(x1 + 0.1 * x2)).abs().sum(dim=(1, 2, 3)).mean()
    bn_term = 0.5 * math.log(float(mine[1].running_var.mean()))
    assert score == pytest.approx(math.log(float(change)) + bn_term, rel=1e-5)
    assert mine[1].running_var.mean() != 1.0  # two train-mode forwards moved it


def test_zen_averages_repeats_and_is_nan_without_feature_change():
    batch = ProxyBatch(None, None, SHAPE, CLASSES, torch.Generator().manual_seed(5))
    assert math.isfinite(proxies.zen(tiny_network(), batch, repeat=3, batch_size=4))

    class ConstantFeatures(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.pool = nn.AdaptiveAvgPool2d(1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.pool(torch.zeros_like(x)).flatten(1)

    assert math.isnan(proxies.zen(ConstantFeatures(), batch, repeat=1, batch_size=4))


def test_zen_needs_a_feature_map():
    batch = ProxyBatch(None, None, SHAPE, CLASSES, torch.Generator())
    with pytest.raises(EstimatorError, match="4-D"):
        proxies.zen(nn.Sequential(nn.Flatten(), nn.Linear(72, 3)), batch, repeat=1)


@pytest.mark.parametrize("name", ["grad_norm", "snip", "grasp", "fisher", "jacob_cov", "nwot"])
def test_data_proxies_refuse_a_data_free_batch(name):
    batch = ProxyBatch(None, None, SHAPE, CLASSES, torch.Generator())
    with pytest.raises(EstimatorError, match="needs examples"):
        PROXIES[name](tiny_network(), batch)


def test_proxies_leave_the_callers_network_and_global_rngs_untouched():
    net, batch = tiny_network(), make_batch()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    torch_state, numpy_state = torch.get_rng_state(), np.random.get_state()[1].copy()
    for function in PROXIES.values():
        kwargs = {"repeat": 2} if function is proxies.zen else {}
        function(net, batch, **kwargs)
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert all(p.grad is None for p in net.parameters())
    assert not any(m._forward_hooks or m._backward_hooks for m in net.modules())
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert np.array_equal(np.random.get_state()[1], numpy_state)


# -- NB201 networks -----------------------------------------------------------------------


def nb201(arch: str | int, *, full_forward: bool = True, seed: int = 7) -> nn.Module:
    space = get_space("nb201")
    index = space.index_of_string(arch) if isinstance(arch, str) else arch
    return space.network(
        index,
        channels=4,
        cells_per_stage=1,
        input_shape=NB201_SHAPE,
        num_classes=10,
        generator=torch.Generator().manual_seed(seed),
        full_forward=full_forward,
    )


def nb201_batch() -> ProxyBatch:
    return make_batch(seed=11, shape=NB201_SHAPE, classes=10, size=16)


@pytest.mark.parametrize("name", sorted(PROXIES))
def test_every_proxy_is_finite_and_bit_identical_on_nb201(name):
    for index in (0, 5000, 15624):
        first = PROXIES[name](nb201(index), nb201_batch())
        again = PROXIES[name](nb201(index), nb201_batch())
        assert isinstance(first, float) and math.isfinite(first)
        assert first == again


def test_the_all_none_cell_gives_the_documented_values():
    values = {name: f(nb201(ALL_NONE), nb201_batch()) for name, f in PROXIES.items()}
    # no gradient reaches a weight through x * 0: the gradient-based sums are exactly zero
    assert [values[n] for n in ("grad_norm", "snip", "grasp", "synflow")] == [0.0] * 4
    # fisher still sees the classifier, whose output (its bias) has a loss gradient
    assert math.isfinite(values["fisher"]) and values["fisher"] > 0
    # constant logits, identical ReLU codes, no feature change: NaN, not an exception
    assert all(math.isnan(values[n]) for n in ("jacob_cov", "nwot", "zen"))


def test_strip_batch_norm_keeps_weights_and_removes_every_batch_norm():
    net = nb201(DEAD_PATH)
    stripped = strip_batch_norm(net)
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in stripped.modules())
    assert any(isinstance(m, nn.BatchNorm2d) for m in net.modules())  # the original keeps them
    original = [m.weight for m in weighted(net)]
    copied = [m.weight for m in weighted(stripped)]
    assert len(original) == len(copied) and all(
        torch.equal(a, b) for a, b in zip(original, copied, strict=True)
    )
    assert all(a.data_ptr() != b.data_ptr() for a, b in zip(original, copied, strict=True))


def test_full_forward_gives_the_same_logits_and_reaches_dead_paths():
    default, full = nb201(DEAD_PATH, full_forward=False), nb201(DEAD_PATH, full_forward=True)
    x = nb201_batch().inputs
    assert torch.allclose(default(x), full(x), rtol=1e-6, atol=1e-6)
    for net in (default, full):
        net.zero_grad()
        net(x).sum().backward()
    dead = [p for p in default.parameters() if p.grad is None]
    assert dead, "the dead path's conv should get no gradient in the default forward"
    assert all(p.grad is not None for p in full.parameters())

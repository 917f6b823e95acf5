"""The zero-cost proxies as estimators, computed live on the space's own network.

Each proxy scores the network the space builds for an architecture under the proxy
protocol's settings, with weights drawn from the init seed's ``weight_init`` stream (the
network a training with that seed starts from). The network computes every edge, as the
reference implementations' networks do (``full_forward``). The numerics, their reference
code and every deviation are in :mod:`harness.estimators.proxies`; what this module adds
is the plumbing: the batch the seed draws, the hyperparameters each method exposes, the
settings it fixes (recorded), and the measured cost of each score (building the network
and computing the proxy, on the protocol's threads and device).

``params`` and ``flops`` are the space's exact size counts (NB201's ``params`` in 1e6,
multiply-accumulates in 1e6), so they cost microseconds and need no network.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any, ClassVar

import torch

from harness.config import Field
from harness.estimators import proxies
from harness.estimators.base import Estimator, Score
from harness.seeding import stream_generator
from harness.train import configure_torch, init_generator

#: the batch size zero-cost-nas feeds its measures (``--batch_size 64``)
ZERO_COST_NAS_BATCH = 64


class SizeCount(Estimator):
    """A size count of the architecture's network, read from the space without building it."""

    count: ClassVar[str]
    settings: ClassVar[dict[str, Any]] = {"source": "the space's exact size counts"}

    def score(self, arch: int, seed: int) -> Score:
        tic = time.perf_counter()
        counts = self.space.size_counts(
            arch,
            channels=self.protocol.channels,
            cells_per_stage=self.protocol.cells_per_stage,
            input_shape=self.data.shape,
            num_classes=self.data.classes,
        )
        return Score(float(counts[self.count]), time.perf_counter() - tic)


class Params(SizeCount):
    """Parameter count (1e6), BN affine parameters included: NB201's ``params``."""

    count = "params"


class Flops(SizeCount):
    """Multiply-accumulates of one input (1e6): NB201's ``flop``."""

    count = "flops"


class ZeroCostProxy(Estimator):
    """A proxy of :mod:`harness.estimators.proxies` on a freshly initialised network."""

    #: the function of :mod:`harness.estimators.proxies` that computes the score
    function: ClassVar[Callable[..., float]]
    needs_data = True
    hyperparameters: ClassVar[dict[str, Field]] = {
        "batch_size": Field(
            int, ZERO_COST_NAS_BATCH, low=1, high=1 << 16, help="examples in the scored batch"
        )
    }

    def setup(self) -> None:
        self._device = configure_torch(self.protocol)
        self._batches: dict[int, proxies.ProxyBatch] = {}

    def options(self) -> dict[str, Any]:
        """The method's own keyword arguments (its hyperparameters but the batch size)."""
        return {name: value for name, value in self.params.items() if name != "batch_size"}

    def _batch(self, seed: int) -> proxies.ProxyBatch:
        """What seed ``seed`` feeds every architecture: a fixed batch of the input split
        (or, data-free, nothing but the shape) and a generator for random draws."""
        if seed not in self._batches:
            inputs = labels = None
            if self.data.examples is not None and self.needs_data:
                rows = self.data.batch_indices(seed, self.params["batch_size"])
                inputs = torch.from_numpy(self.data.examples[rows]).to(self._device)
                labels = torch.from_numpy(self.data.labels[rows]).to(self._device)
            self._batches[seed] = proxies.ProxyBatch(
                inputs=inputs,
                labels=labels,
                input_shape=tuple(self.data.shape),
                num_classes=self.data.classes,
                generator=torch.Generator(device="cpu"),
            )
        batch = self._batches[seed]
        # every score starts the generator afresh, so no score depends on the scoring order
        draws = stream_generator(seed, "proxy_draws").integers(2**63 - 1)
        batch.generator.manual_seed(int(draws))
        return batch

    def score(self, arch: int, seed: int) -> Score:
        batch = self._batch(seed)
        tic = time.perf_counter()
        network = self.space.network(
            arch,
            channels=self.protocol.channels,
            cells_per_stage=self.protocol.cells_per_stage,
            input_shape=self.data.shape,
            num_classes=self.data.classes,
            generator=init_generator(seed),
            full_forward=True,
        ).to(self._device)
        network.train()
        value = type(self).function(network, batch, consume=True, **self.options())
        if self._device.type == "cuda":
            torch.cuda.synchronize(self._device)
        return Score(float(value), time.perf_counter() - tic)


class Synflow(ZeroCostProxy):
    """SynFlow (Tanaka et al. 2020) as zero-cost-nas computes it: data-free.

    The score is the natural log of zero-cost-nas's sum: on NB201 at CIFAR's shape the
    sums reach 1e49, past what the estimate file's float32 holds (3.4e38), and the log
    keeps every ranking statistic exactly. A cell whose output does not depend on its
    weights (a sum of 0) has no finite log: it ranks last, where its 0 ranks too.
    """

    function = staticmethod(proxies.synflow)
    needs_data = False
    hyperparameters: ClassVar[dict[str, Field]] = {}
    settings = {
        "batch_norm": False,
        "dtype": "float64",
        "input": "ones, batch 1",
        "score": "natural log of the synflow sum",
    }

    def score(self, arch: int, seed: int) -> Score:
        raw = super().score(arch, seed)
        value = math.log(raw.value) if raw.value > 0 else float("nan")
        return Score(value, raw.cost_s)


class Snip(ZeroCostProxy):
    """SNIP saliency |w * dL/dw| summed over conv and linear weights."""

    function = staticmethod(proxies.snip)
    settings = {"batch_norm": True, "dtype": "float32"}


class Grasp(ZeroCostProxy):
    """GraSP's -w * Hg summed over conv and linear weights."""

    function = staticmethod(proxies.grasp)
    hyperparameters: ClassVar[dict[str, Field]] = {
        **ZeroCostProxy.hyperparameters,
        "temperature": Field(
            float, 1.0, low=0, low_open=True, high=1e6, help="softmax temperature of the loss"
        ),
    }
    settings = {"batch_norm": True, "dtype": "float32"}


class Fisher(ZeroCostProxy):
    """Fisher information of each conv and linear output channel, summed."""

    function = staticmethod(proxies.fisher)
    settings = {"batch_norm": True, "dtype": "float32"}


class GradNorm(ZeroCostProxy):
    """Sum over conv and linear layers of the norm of the weight gradient."""

    function = staticmethod(proxies.grad_norm)
    settings = {"batch_norm": True, "dtype": "float32"}


class JacobCov(ZeroCostProxy):
    """Correlation of input Jacobians across a batch (NASWOT v1, as in zero-cost-nas)."""

    function = staticmethod(proxies.jacob_cov)
    settings = {"batch_norm": True, "dtype": "float32"}


class NWOT(ZeroCostProxy):
    """NASWOT's log-determinant of the ReLU-code kernel (Mellor et al., ICML 2021)."""

    function = staticmethod(proxies.nwot)
    #: NASWOT's released default batch size
    hyperparameters: ClassVar[dict[str, Field]] = {
        "batch_size": Field(int, 128, low=1, high=1 << 16, help="examples in the scored batch")
    }
    settings = {"batch_norm": True, "dtype": "float32"}


class Zen(ZeroCostProxy):
    """Zen-score (Lin et al., ICCV 2021): data-free, Gaussian inputs and weights."""

    function = staticmethod(proxies.zen)
    needs_data = False
    hyperparameters: ClassVar[dict[str, Field]] = {
        "batch_size": Field(
            int, ZERO_COST_NAS_BATCH, low=1, high=1 << 16, help="Gaussian inputs per draw"
        ),
        "mixup_gamma": Field(
            float, 1e-2, low=0, low_open=True, high=1.0, help="size of the input perturbation"
        ),
        "repeat": Field(int, 32, low=1, high=10_000, help="draws averaged"),
    }
    settings = {"batch_norm": True, "dtype": "float32", "input": "Gaussian"}

    def options(self) -> dict[str, Any]:
        """Data-free: the batch size is how many Gaussian inputs it draws."""
        return dict(self.params)

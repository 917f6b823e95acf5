"""Six weight-sharing searches on the NB201 supernet, as NB201 released them.

Each follows its AutoDL-Projects script (``exps/NAS-Bench-201-algos``, commit f46486e) and
config (``configs/nas-benchmark/algos``); the defaults are the released values:

- **DARTS-V1** (first order): per step, a weights step on a training batch, then an
  architecture step (Adam, betas 0.5/0.999) on a validation batch; edges mix their ops by
  ``softmax(alpha)``. The weights step clips the gradient norm of every parameter,
  ``alpha`` included, to 5.
- **DARTS-V2** (second order): the architecture step first, on the weights after one
  virtual SGD step (momentum and weight decay as in the optimizer), with the
  Hessian-vector product by finite differences (``r = 0.01 / |v|``); then the weights step.
- **GDAS**: edges sample one op by Gumbel-softmax with temperature ``tau`` (linear from
  ``tau_max`` to ``tau_min`` over the epochs), straight-through; weights step, then
  architecture step, each on a fresh sample.
- **SETN**: the weights step trains one uniformly sampled cell; the architecture step
  trains ``alpha`` on the ``softmax``-mixed supernet. The cell is chosen by scoring the
  ``select_num`` most likely cells under ``alpha``, each on one validation batch.
- **RSPS** (random search with parameter sharing): weights steps on uniformly sampled
  cells only; the cell is the best of ``select_num`` random cells, each scored on one
  validation batch.
- **ENAS**: a two-layer LSTM controller (:mod:`harness.one_shot.controller`) samples cells;
  the shared weights train on the sampled cells, then the controller takes
  ``controller_train_steps`` REINFORCE steps, each the mean of ``controller_num_aggregate``
  samples scored on a validation batch (reward: accuracy + entropy bonus, moving-average
  baseline). The cell is the best of 10 controller samples, each on one validation batch.

DARTS and GDAS derive the cell by the argmax of ``alpha`` on every edge (``none``
included). Every method records the derived cell after every epoch; the search's answer
is the cell derived after the last one (for SETN and RSPS, one more selection after the
last epoch, as released). The learning rate follows NB201's per-epoch cosine,
``eta_min + (lr - eta_min)(1 + cos(pi e / T_max)) / 2``, with ``T_max`` the epoch count
(ENAS: 10, so its rate rises again every 20 epochs, as released).

Deviations, all of them forced by reproducibility: randomness comes from the run's seed
through named generators, never from global RNGs, and per-epoch derivations that only
log draw from their own stream, so they never change the search's answer. Validation
batches for the architecture step are augmented as the training batches are, as NB201's
``SearchDataset`` does.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.func import functional_call

from harness.errors import ConfigError
from harness.models.supernet import NUM_EDGES, NUM_OPS, EdgeRule, build_supernet
from harness.one_shot.controller import Controller
from harness.one_shot.setup import Batches, OneShotSetup
from harness.spaces.base import SearchSpace
from harness.train import configure_torch

#: stream name -> position of its seed in the run's draw (see :func:`_seeds`)
STREAMS = ("weights", "alpha", "batches", "cells", "gumbel", "select", "log")
CLIP = 5.0


@dataclass
class SearchResult:
    """What a weight-sharing search found and what it cost."""

    arch: int
    #: one row per epoch (epoch 0: before training, where the method derives one)
    epochs: list[dict[str, Any]]
    #: measured seconds of training plus the final derivation (the clock charges this)
    seconds: float
    #: the architecture parameters (or the controller's state) at the end, as lists
    state: dict[str, Any] = field(default_factory=dict)


def cosine_lr(lr: float, eta_min: float, epoch: int, t_max: int) -> float:
    """NB201's per-epoch cosine learning rate (``xautodl`` ``CosineAnnealingLR``)."""
    return eta_min + (lr - eta_min) * (1 + math.cos(math.pi * epoch / t_max)) / 2


def _seeds(rng: np.random.Generator) -> dict[str, int]:
    values = rng.integers(2**63 - 1, size=len(STREAMS))
    return {name: int(v) for name, v in zip(STREAMS, values, strict=True)}


def _accuracy(logits: torch.Tensor, target: torch.Tensor) -> float:
    return 100.0 * float((logits.argmax(1) == target).sum()) / len(target)


class OneShotSearch:
    """The common loop: build, train epoch by epoch, derive, log; subclasses fill in."""

    #: whether the method trains architecture parameters ``alpha`` (``[6, 5]``)
    has_alpha = True

    def __init__(
        self,
        space: SearchSpace,
        params: Mapping[str, Any],
        setup: OneShotSetup,
        rng: np.random.Generator,
        progress: Callable[[int], None] | None = None,
        log_cells: bool = True,
    ) -> None:
        if not space.has_supernet:
            raise ConfigError(f"space {space.name!r} has no supernet")
        self.p = dict(params)
        #: whether every epoch derives (and logs) its cell, or only the last one
        self.log_cells = log_cells
        self.setup = setup
        self.space = space
        self.device = configure_torch(setup)
        self.progress = progress
        seeds = _seeds(rng)
        self.rng = {name: np.random.default_rng(seed) for name, seed in seeds.items()}
        self.torch_gen = torch.Generator(device=self.device).manual_seed(seeds["gumbel"])
        dataset = setup.dataset
        self.network = build_supernet(
            channels=setup.channels,
            cells_per_stage=setup.cells_per_stage,
            input_shape=dataset.input_shape,  # type: ignore[arg-type]
            num_classes=dataset.num_classes,
            track_running_stats=bool(self.p["track_running_stats"]),
            generator=torch.Generator().manual_seed(seeds["weights"]),
        ).to(self.device)
        self.weights = list(self.network.parameters())
        alpha_gen = torch.Generator().manual_seed(seeds["alpha"])
        self.alpha = nn.Parameter(
            (1e-3 * torch.randn(NUM_EDGES, NUM_OPS, generator=alpha_gen)).to(self.device)
        )
        self.batches = Batches(setup, self.rng["batches"], self.device)
        self.select_batches = Batches(setup, self.rng["select"], self.device)
        self.log_batches = Batches(setup, self.rng["log"], self.device)
        self.w_optimizer = torch.optim.SGD(
            self.weights,
            lr=self.p["learning_rate"],
            momentum=0.9,
            nesterov=True,
            weight_decay=self.p["weight_decay"],
        )
        self.a_optimizer = torch.optim.Adam(
            [self.alpha],
            lr=self.p.get("arch_learning_rate", 3e-4),
            betas=(0.5, 0.999),
            weight_decay=self.p.get("arch_weight_decay", 1e-3),
        )
        self.loss = nn.CrossEntropyLoss()

    # -- what a method defines ------------------------------------------------------------

    def train_epoch(self, epoch: int) -> dict[str, float]:
        raise NotImplementedError

    def derive(self, batches: Batches) -> tuple[int, dict[str, float]]:
        """The cell the method would answer now (argmax of ``alpha`` unless overridden)."""
        ops = self.alpha.detach().argmax(dim=1).tolist()
        return self.space.index_of_decisions(ops), {}

    def final(self, last: int) -> int:
        """The search's answer after the last epoch: the last derived cell."""
        return last

    def state(self) -> dict[str, Any]:
        """The architecture parameters (or controller) at the end, for the record."""
        return {"alpha": self.alpha.detach().cpu().tolist()}

    def epoch_state(self) -> dict[str, Any]:
        """What each epoch's log row keeps of the state (all of it, unless it is large)."""
        return self.state()

    # -- the loop -------------------------------------------------------------------------

    def weighted(self) -> EdgeRule:
        return EdgeRule(weights=torch.softmax(self.alpha, dim=-1))

    def uniform_cell(self) -> list[int]:
        """A uniformly sampled cell (NB201's ``random.choice`` per edge)."""
        return self.rng["cells"].integers(NUM_OPS, size=NUM_EDGES).tolist()

    def clip(self, with_alpha: bool = True) -> None:
        params = [*self.weights, self.alpha] if with_alpha else self.weights
        nn.utils.clip_grad_norm_(params, CLIP)

    def set_lr(self, epoch: int) -> float:
        t_max = self.p.get("t_max") or self.p["epochs"]
        lr = cosine_lr(self.p["learning_rate"], self.p["min_learning_rate"], epoch, t_max)
        for group in self.w_optimizer.param_groups:
            group["lr"] = lr
        return lr

    def search(self) -> SearchResult:
        rows: list[dict[str, Any]] = []
        seconds = 0.0
        derived = None
        for epoch in range(self.p["epochs"]):
            lr = self.set_lr(epoch)
            self.network.train()
            tic = time.perf_counter()
            stats = self.train_epoch(epoch)
            seconds += time.perf_counter() - tic
            last_epoch = epoch == self.p["epochs"] - 1
            row: dict[str, Any] = {"epoch": epoch + 1, "lr": lr, **stats}
            if self.log_cells or last_epoch:
                tic = time.perf_counter()
                batches = self.select_batches if last_epoch else self.log_batches
                derived, extra = self.derive(batches)
                if last_epoch:
                    seconds += time.perf_counter() - tic
                row.update(arch=derived, **extra)
            rows.append({**row, "seconds": seconds, **self.epoch_state()})
            if self.progress is not None:
                self.progress(epoch + 1)
        assert derived is not None
        tic = time.perf_counter()
        answer = self.final(derived)
        seconds += time.perf_counter() - tic
        return SearchResult(arch=answer, epochs=rows, seconds=seconds, state=self.state())


class DartsV1(OneShotSearch):
    def train_epoch(self, epoch: int) -> dict[str, float]:
        losses, arch_losses = [], []
        for wx, wy, ax, ay in self.batches.paired(self.p["batch_size"]):
            self.w_optimizer.zero_grad()
            loss = self.loss(self.network(wx, self.weighted()), wy)
            loss.backward()
            self.clip()
            self.w_optimizer.step()
            self.a_optimizer.zero_grad()
            arch_loss = self.loss(self.network(ax, self.weighted()), ay)
            arch_loss.backward()
            self.a_optimizer.step()
            losses.append(loss.item())
            arch_losses.append(arch_loss.item())
        return {"train_loss": float(np.mean(losses)), "arch_loss": float(np.mean(arch_losses))}


class DartsV2(OneShotSearch):
    def train_epoch(self, epoch: int) -> dict[str, float]:
        losses, arch_losses = [], []
        for wx, wy, ax, ay in self.batches.paired(self.p["batch_size"]):
            self.a_optimizer.zero_grad()
            arch_losses.append(self._unrolled_arch_grad(wx, wy, ax, ay))
            self.a_optimizer.step()
            self.w_optimizer.zero_grad()
            loss = self.loss(self.network(wx, self.weighted()), wy)
            loss.backward()
            self.clip()
            self.w_optimizer.step()
            losses.append(loss.item())
        return {"train_loss": float(np.mean(losses)), "arch_loss": float(np.mean(arch_losses))}

    def _unrolled_arch_grad(
        self, wx: torch.Tensor, wy: torch.Tensor, ax: torch.Tensor, ay: torch.Tensor
    ) -> float:
        """Set ``alpha.grad`` to DARTS's second-order architecture gradient."""
        group = self.w_optimizer.param_groups[0]
        lr, wd, momentum = group["lr"], group["weight_decay"], group["momentum"]
        loss = self.loss(self.network(wx, self.weighted()), wy)
        with torch.no_grad():
            theta = torch.cat([w.reshape(-1) for w in self.weights])
            state = self.w_optimizer.state
            if all("momentum_buffer" in state[w] for w in self.weights):
                moment = torch.cat([state[w]["momentum_buffer"].reshape(-1) for w in self.weights])
                moment = moment * momentum
            else:
                moment = torch.zeros_like(theta)
            grads = torch.autograd.grad(loss, self.weights)
            dtheta = torch.cat([g.reshape(-1) for g in grads]) + wd * theta
            virtual = theta - lr * (moment + dtheta)
        names = [name for name, _ in self.network.named_parameters()]
        unrolled: dict[str, torch.Tensor] = {}
        offset = 0
        for name, w in zip(names, self.weights, strict=True):
            unrolled[name] = virtual[offset : offset + w.numel()].view_as(w).requires_grad_()
            offset += w.numel()
        # the virtual step's forward must not move the real network's BN statistics
        buffers = {name: b.clone() for name, b in self.network.named_buffers()}
        logits = functional_call(self.network, {**unrolled, **buffers}, (ax, self.weighted()))
        unrolled_loss = self.loss(logits, ay)
        vector = torch.autograd.grad(
            unrolled_loss, [*unrolled.values(), self.alpha], allow_unused=False
        )
        dalpha, vector = vector[-1], vector[:-1]
        implicit = self._hessian_vector(vector, wx, wy)
        self.alpha.grad = (dalpha - lr * implicit).detach()
        return float(unrolled_loss.item())

    def _hessian_vector(
        self, vector: tuple[torch.Tensor, ...], wx: torch.Tensor, wy: torch.Tensor, r: float = 1e-2
    ) -> torch.Tensor:
        radius = r / torch.cat([v.reshape(-1) for v in vector]).norm()
        with torch.no_grad():
            for w, v in zip(self.weights, vector, strict=True):
                w.add_(v, alpha=float(radius))
        (plus,) = torch.autograd.grad(
            self.loss(self.network(wx, self.weighted()), wy), [self.alpha]
        )
        with torch.no_grad():
            for w, v in zip(self.weights, vector, strict=True):
                w.sub_(v, alpha=2 * float(radius))
        (minus,) = torch.autograd.grad(
            self.loss(self.network(wx, self.weighted()), wy), [self.alpha]
        )
        with torch.no_grad():
            for w, v in zip(self.weights, vector, strict=True):
                w.add_(v, alpha=float(radius))
        return (plus - minus) / (2 * radius)


class Gdas(OneShotSearch):
    def tau(self, epoch: int) -> float:
        tau_max, tau_min, epochs = self.p["tau_max"], self.p["tau_min"], self.p["epochs"]
        return tau_max - (tau_max - tau_min) * epoch / max(epochs - 1, 1)

    def gumbel(self, tau: float) -> EdgeRule:
        """One straight-through Gumbel-softmax sample over every edge (NB201's, redrawn
        when a draw is not finite)."""
        while True:
            noise = torch.empty_like(self.alpha).exponential_(generator=self.torch_gen)
            gumbels = -noise.log()
            logits = (self.alpha.log_softmax(dim=1) + gumbels) / tau
            probs = torch.softmax(logits, dim=1)
            index = probs.max(-1, keepdim=True)[1]
            one_hot = torch.zeros_like(logits).scatter_(-1, index, 1.0)
            hard = one_hot - probs.detach() + probs
            if torch.isfinite(gumbels).all() and torch.isfinite(probs).all():
                return EdgeRule(hard=hard, index=index.view(-1).tolist())

    def train_epoch(self, epoch: int) -> dict[str, float]:
        tau = self.tau(epoch)
        losses, arch_losses = [], []
        for wx, wy, ax, ay in self.batches.paired(self.p["batch_size"]):
            self.w_optimizer.zero_grad()
            loss = self.loss(self.network(wx, self.gumbel(tau)), wy)
            loss.backward()
            self.clip()
            self.w_optimizer.step()
            self.a_optimizer.zero_grad()
            arch_loss = self.loss(self.network(ax, self.gumbel(tau)), ay)
            arch_loss.backward()
            self.a_optimizer.step()
            losses.append(loss.item())
            arch_losses.append(arch_loss.item())
        return {
            "tau": tau,
            "train_loss": float(np.mean(losses)),
            "arch_loss": float(np.mean(arch_losses)),
        }


def cell_accuracy(
    network: nn.Module, ops: list[int], x: torch.Tensor, y: torch.Tensor, batch_size: int
) -> float:
    """Top-1 accuracy (%) of the supernet run as the single cell ``ops`` (eval mode)."""
    network.eval()
    correct = 0
    with torch.no_grad():
        for start in range(0, len(y), batch_size):
            logits = network(x[start : start + batch_size], EdgeRule(ops=ops))
            correct += int((logits.argmax(1) == y[start : start + batch_size]).sum())
    return 100.0 * correct / len(y)


def best_on_one_batch(
    network: nn.Module, cells: list[list[int]], stream: Iterator[tuple[torch.Tensor, ...]]
) -> tuple[int, float]:
    """Of ``cells``, the position of the one most accurate on its own next batch (the
    first on ties), and that accuracy: NB201's selection with shared weights."""
    network.eval()
    accuracies = []
    with torch.no_grad():
        for ops in cells:
            x, y = next(stream)
            accuracies.append(_accuracy(network(x, EdgeRule(ops=ops)), y))
    network.train()
    best = int(np.argmax(accuracies))
    return best, accuracies[best]


class Setn(OneShotSearch):
    def train_epoch(self, epoch: int) -> dict[str, float]:
        losses, arch_losses = [], []
        for wx, wy, ax, ay in self.batches.paired(self.p["batch_size"]):
            cell = self.uniform_cell()
            self.network.zero_grad()
            self.alpha.grad = None
            loss = self.loss(self.network(wx, EdgeRule(ops=cell)), wy)
            loss.backward()
            self.w_optimizer.step()
            self.network.zero_grad()
            self.alpha.grad = None
            arch_loss = self.loss(self.network(ax, self.weighted()), ay)
            arch_loss.backward()
            self.a_optimizer.step()
            losses.append(loss.item())
            arch_losses.append(arch_loss.item())
        return {"train_loss": float(np.mean(losses)), "arch_loss": float(np.mean(arch_losses))}

    def top_cells(self) -> list[list[int]]:
        """The ``select_num`` cells of highest log-probability under ``softmax(alpha)``."""
        log_p = torch.log_softmax(self.alpha.detach(), dim=-1).cpu().double().numpy()
        table = self.space.decision_table()
        scores = log_p[np.arange(NUM_EDGES), table].sum(axis=1)
        order = np.argsort(-scores, kind="stable")[: self.p["select_num"]]
        return [table[i].tolist() for i in order]

    def derive(self, batches: Batches) -> tuple[int, dict[str, float]]:
        stream = batches.arch_stream(self.p["test_batch_size"], augmented=False)
        cells = self.top_cells()
        best, accuracy = best_on_one_batch(self.network, cells, stream)
        return self.space.index_of_decisions(cells[best]), {"select_accuracy": accuracy}

    def final(self, last: int) -> int:
        return self.derive(self.select_batches)[0]


class Rsps(OneShotSearch):
    has_alpha = False

    def train_epoch(self, epoch: int) -> dict[str, float]:
        losses = []
        for wx, wy, _, _ in self.batches.paired(self.p["batch_size"]):
            cell = self.uniform_cell()
            self.w_optimizer.zero_grad()
            loss = self.loss(self.network(wx, EdgeRule(ops=cell)), wy)
            loss.backward()
            self.clip(with_alpha=False)
            self.w_optimizer.step()
            losses.append(loss.item())
        return {"train_loss": float(np.mean(losses))}

    def derive(self, batches: Batches) -> tuple[int, dict[str, float]]:
        stream = batches.arch_stream(self.p["test_batch_size"], augmented=False)
        cells = [
            batches.rng.integers(NUM_OPS, size=NUM_EDGES).tolist()
            for _ in range(self.p["select_num"])
        ]
        best, accuracy = best_on_one_batch(self.network, cells, stream)
        return self.space.index_of_decisions(cells[best]), {"select_accuracy": accuracy}

    def final(self, last: int) -> int:
        return self.derive(self.select_batches)[0]

    def state(self) -> dict[str, Any]:
        return {}


class Enas(OneShotSearch):
    has_alpha = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # the controller is tiny: it stays on the CPU, sampling from a CPU generator
        seed = int(self.rng["cells"].integers(2**63 - 1))
        self.controller = Controller(NUM_EDGES, NUM_OPS, torch.Generator().manual_seed(seed))
        self.controller_gen = torch.Generator().manual_seed(seed + 1)
        self.c_optimizer = torch.optim.Adam(
            self.controller.parameters(),
            lr=self.p["controller_learning_rate"],
            betas=(0.0, 0.999),
            eps=1e-3,
        )
        self.baseline: float | None = None
        self.controller_batches = self.batches.arch_stream(self.p["batch_size"], augmented=True)

    def train_epoch(self, epoch: int) -> dict[str, float]:
        losses = []
        self.controller.eval()
        for x, y in self.batches.weights_only(self.p["batch_size"]):
            with torch.no_grad():
                _, _, cell = self.controller(self.controller_gen)
            self.w_optimizer.zero_grad()
            loss = self.loss(self.network(x, EdgeRule(ops=cell)), y)
            loss.backward()
            nn.utils.clip_grad_norm_(self.weights, CLIP)
            self.w_optimizer.step()
            losses.append(loss.item())
        rewards = self._train_controller()
        return {"train_loss": float(np.mean(losses)), "reward": rewards}

    def _train_controller(self) -> float:
        """One epoch of controller steps, as released: the baseline moves from the value
        it had when the epoch began (in the first epoch, each sample's own accuracy), and
        the entropy bonus inside reward and baseline is differentiated too."""
        self.network.eval()
        self.controller.train()
        self.controller.zero_grad()
        aggregate = self.p["controller_num_aggregate"]
        decay, start = self.p["controller_baseline_decay"], self.baseline
        rewards, baseline = [], None
        for step in range(self.p["controller_train_steps"] * aggregate):
            x, y = next(self.controller_batches)
            log_prob, entropy, cell = self.controller(self.controller_gen)
            with torch.no_grad():
                accuracy = _accuracy(self.network(x, EdgeRule(ops=cell)), y) / 100
            reward = accuracy + self.p["controller_entropy_weight"] * entropy
            baseline = accuracy if start is None else start - (1 - decay) * (start - reward)
            loss = -log_prob * (reward - baseline) / aggregate
            loss.backward()
            rewards.append(float(reward.detach()))
            if (step + 1) % aggregate == 0:
                nn.utils.clip_grad_norm_(self.controller.parameters(), CLIP)
                self.c_optimizer.step()
                self.controller.zero_grad()
        self.baseline = None if baseline is None else float(torch.as_tensor(baseline).detach())
        self.network.train()
        return float(np.mean(rewards))

    def derive(self, batches: Batches) -> tuple[int, dict[str, float]]:
        stream = batches.arch_stream(self.p["batch_size"], augmented=True)
        self.controller.eval()
        with torch.no_grad():
            cells = [self.controller(batches_generator(batches))[2] for _ in range(10)]
        best, accuracy = best_on_one_batch(self.network, cells, stream)
        return self.space.index_of_decisions(cells[best]), {"select_accuracy": accuracy}

    def epoch_state(self) -> dict[str, Any]:
        return {"baseline": self.baseline}

    def state(self) -> dict[str, Any]:
        return {
            "controller": {
                name: value.detach().cpu().tolist()
                for name, value in self.controller.state_dict().items()
            },
            "baseline": self.baseline,
        }


def batches_generator(batches: Batches) -> torch.Generator:
    """A torch generator drawn from a batch stream's numpy generator (for the controller's
    samples during a derivation, so logging never moves the training's streams)."""
    return torch.Generator().manual_seed(int(batches.rng.integers(2**63 - 1)))


#: method name -> search class
METHODS: dict[str, type[OneShotSearch]] = {
    "darts-v1": DartsV1,
    "darts-v2": DartsV2,
    "gdas": Gdas,
    "setn": Setn,
    "rsps": Rsps,
    "enas": Enas,
}

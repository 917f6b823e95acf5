"""Deterministic live training of one architecture under a protocol.

The network comes from the search space (:meth:`SearchSpace.network`). A training is a
pure function of (architecture, protocol, dataset, seed): weights come from the
seed's ``weight_init`` stream, batch order from ``data_order`` and augmentation from
``augmentation``; torch runs with deterministic algorithms and the protocol's thread
count. On the same hardware and thread count two trainings give bit-identical curves.
The loop indexes tensors directly (no DataLoader): for the small networks of tabulated
benchmarks, per-step overhead dominates.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from harness.data import Dataset, load_dataset
from harness.data.augment import augment
from harness.errors import HarnessError
from harness.protocol import Protocol
from harness.proxy_protocol import ProxyProtocol
from harness.seeding import stream_generator
from harness.spaces.base import SearchSpace

if TYPE_CHECKING:
    from harness.one_shot.setup import OneShotSetup

#: (split, metric) names of the per-epoch curves a training produces
TRAIN_METRICS = (("train", "loss"), ("train", "accuracy"), ("train", "epoch_time_s"))
EVAL_METRICS = ("loss", "accuracy", "eval_time_s")


@dataclass
class Curves:
    """Per-epoch curves of one training: ``values[(split, metric)]`` has one value per epoch."""

    values: dict[tuple[str, str], list[float]]

    def at(self, split: str, metric: str, epoch: int) -> float:
        return self.values[(split, metric)][epoch - 1]


def check_dataset(protocol: Protocol, dataset: Dataset) -> None:
    """The dataset's split index hashes must equal the protocol's pinned ones."""
    for name, expected in protocol.splits.items():
        actual = dataset.split.hashes.get(name)
        if actual != expected:
            raise HarnessError(
                f"dataset {dataset.name!r} split {name!r} has index sha256 {actual}, but the "
                f"protocol pins {expected}: the data or split files differ from the protocol's"
            )


def open_dataset(protocol: Protocol, root: Path | None, split_dir: Path | None) -> Dataset:
    """Load the protocol's dataset and check its splits against the pinned hashes."""
    dataset = load_dataset(
        protocol.dataset, root=root, split_file_dir=split_dir, **protocol.data_options
    )
    check_dataset(protocol, dataset)
    return dataset


def configure_torch(protocol: Protocol | ProxyProtocol | OneShotSetup) -> torch.device:
    """Thread count and determinism flags; returns the device to train (or score) on."""
    if protocol.device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise HarnessError(
                f"protocol device {protocol.device!r} but no CUDA device is available"
            )
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.set_num_threads(protocol.threads)
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True
    return torch.device(protocol.device)


def init_generator(seed: int) -> torch.Generator:
    """The generator a network's weights are drawn from for training seed ``seed``: a
    training and a proxy score at the same seed start from the same network."""
    seed_value = int(stream_generator(seed, "weight_init").integers(2**63 - 1))
    return torch.Generator(device="cpu").manual_seed(seed_value)


def _learning_rate(protocol: Protocol, step: int, total_steps: int) -> float:
    if protocol.lr_schedule == "constant":
        return protocol.learning_rate
    return 0.5 * protocol.learning_rate * (1.0 + math.cos(math.pi * step / total_steps))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _evaluate(
    network: nn.Module, inputs: torch.Tensor, labels: torch.Tensor, batch_size: int
) -> tuple[float, float]:
    network.eval()
    loss_sum, correct = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(labels), batch_size):
            logits = network(inputs[start : start + batch_size])
            target = labels[start : start + batch_size]
            loss_sum += nn.functional.cross_entropy(logits, target, reduction="sum").item()
            correct += int((logits.argmax(1) == target).sum())
    return loss_sum / len(labels), 100.0 * correct / len(labels)


def train_cell(
    space: SearchSpace,
    arch: int,
    protocol: Protocol,
    dataset: Dataset,
    seed: int,
    epochs: int | None = None,
) -> Curves:
    """Train ``arch`` of ``space`` under ``protocol`` with training ``seed`` for
    ``epochs`` (all if None).

    The learning-rate schedule always spans the protocol's full epoch count, so stopping at
    epoch ``e`` gives exactly the first ``e`` epochs of the full training's curves.
    """
    epochs = protocol.epochs if epochs is None else epochs
    if not 1 <= epochs <= protocol.epochs:
        raise HarnessError(f"epochs must be in 1..{protocol.epochs}, got {epochs}")
    device = configure_torch(protocol)
    generator = init_generator(seed)
    network = space.network(
        arch,
        channels=protocol.channels,
        cells_per_stage=protocol.cells_per_stage,
        input_shape=dataset.input_shape,
        num_classes=dataset.num_classes,
        generator=generator,
    ).to(device)
    optimizer = torch.optim.SGD(
        network.parameters(),
        lr=protocol.learning_rate,
        momentum=protocol.momentum,
        nesterov=protocol.nesterov,
        weight_decay=protocol.weight_decay,
    )
    train_x, train_y = (
        torch.from_numpy(a).to(device) for a in dataset.splits[protocol.train_split]
    )
    evals = {
        name: tuple(torch.from_numpy(a).to(device) for a in dataset.splits[name])
        for name in protocol.eval_splits
    }
    order_rng = stream_generator(seed, "data_order")
    augment_rng = stream_generator(seed, "augmentation")
    n = len(train_y)
    steps_per_epoch = math.ceil(n / protocol.batch_size)
    total_steps = protocol.epochs * steps_per_epoch
    values: dict[tuple[str, str], list[float]] = {key: [] for key in TRAIN_METRICS}
    for name in protocol.eval_splits:
        for metric in EVAL_METRICS:
            values[(name, metric)] = []
    step = 0
    for _ in range(epochs):
        network.train()
        permutation = torch.from_numpy(order_rng.permutation(n)).to(device)
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), dtype=torch.int64, device=device)
        _sync(device)
        tic = time.perf_counter()
        for start in range(0, n, protocol.batch_size):
            index = permutation[start : start + protocol.batch_size]
            inputs, target = train_x[index], train_y[index]
            if protocol.augmentation == "crop-flip":
                inputs = augment(
                    inputs, augment_rng, protocol.augmentation_padding, fill=dataset.pad_fill
                )
            for group in optimizer.param_groups:
                group["lr"] = _learning_rate(protocol, step, total_steps)
            logits = network(inputs)
            loss = nn.functional.cross_entropy(logits, target)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += loss.detach() * len(target)
            correct += (logits.detach().argmax(1) == target).sum()
            step += 1
        _sync(device)
        values[("train", "epoch_time_s")].append(time.perf_counter() - tic)
        values[("train", "loss")].append(loss_sum.item() / n)
        values[("train", "accuracy")].append(100.0 * correct.item() / n)
        for name, (inputs, labels) in evals.items():
            _sync(device)
            tic = time.perf_counter()
            loss_value, accuracy = _evaluate(network, inputs, labels, protocol.eval_batch_size)
            _sync(device)
            values[(name, "eval_time_s")].append(time.perf_counter() - tic)
            values[(name, "loss")].append(loss_value)
            values[(name, "accuracy")].append(accuracy)
    return Curves(values)

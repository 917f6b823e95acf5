"""Live-training speed: harness's trainer vs a plain PyTorch loop, and the table build rate.

    .venv/bin/python benchmarks/speed_training.py [--repeats 5]

Side by side in one process, alternating, one thread:
1. the digits protocol of the shipped table (NB201 cell, C=4, N=1, batch 128): training
   images per second of ``harness.train.train_cell`` (its measured per-epoch training
   time) against a hand-written loop on the same network, data, batch order and optimizer;
2. NB201's own network size (C=16, N=5) on CIFAR-shaped synthetic tensors (3x32x32,
   10 classes, batch 256), the same comparison on fewer images;
3. the table build rate this implies: trainings per minute and NB201 cells per minute with
   two single-thread workers (every cell is 6,466 classes x 3 seeds of trainings).
With a CUDA device, part 2 also runs on the GPU.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from harness.data import Dataset, Split, augment, load_dataset
from harness.protocol import Protocol, load_protocol
from harness.spaces import get_space
from harness.train import configure_torch, train_cell

REPO = Path(__file__).resolve().parents[1]
CELL = (  # NB201 index 1: three 3x3 convs, a pooling and two skips
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
)
SPACE = get_space("nb201")


def plain_loop(arch: int, protocol: Protocol, dataset: Dataset) -> float:
    """Train like the protocol with the shortest loop we can write; returns train seconds."""
    device = torch.device(protocol.device)
    network = SPACE.network(
        arch,
        channels=protocol.channels,
        cells_per_stage=protocol.cells_per_stage,
        input_shape=dataset.input_shape,
        num_classes=dataset.num_classes,
        generator=torch.Generator().manual_seed(0),
    ).to(device)
    optimizer = torch.optim.SGD(
        network.parameters(),
        lr=protocol.learning_rate,
        momentum=protocol.momentum,
        nesterov=protocol.nesterov,
        weight_decay=protocol.weight_decay,
    )
    x, y = (torch.from_numpy(a).to(device) for a in dataset.splits[protocol.train_split])
    order = np.random.default_rng(0)
    seconds = 0.0
    for _ in range(protocol.epochs):
        network.train()
        permutation = torch.from_numpy(order.permutation(len(y))).to(device)
        if device.type == "cuda":
            torch.cuda.synchronize()
        tic = time.perf_counter()
        for start in range(0, len(y), protocol.batch_size):
            index = permutation[start : start + protocol.batch_size]
            inputs = x[index]
            if protocol.augmentation == "crop-flip":
                inputs = augment(
                    inputs, order, protocol.augmentation_padding, fill=dataset.pad_fill
                )
            loss = torch.nn.functional.cross_entropy(network(inputs), y[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds += time.perf_counter() - tic
    return seconds


def compare(label: str, protocol: Protocol, dataset: Dataset, repeats: int) -> float:
    arch = SPACE.index_of_string(CELL)
    images = len(dataset.splits[protocol.train_split][1]) * protocol.epochs
    configure_torch(protocol)
    train_cell(SPACE, arch, protocol, dataset, seed=0)  # warm-up: oneDNN builds kernels once
    plain_loop(arch, protocol, dataset)
    ours, plain, whole = [], [], []
    for _ in range(repeats):
        tic = time.perf_counter()
        curves = train_cell(SPACE, arch, protocol, dataset, seed=0)
        whole.append(time.perf_counter() - tic)
        ours.append(sum(curves.values[("train", "epoch_time_s")]))
        plain.append(plain_loop(arch, protocol, dataset))
    ours_rate, plain_rate = images / statistics.median(ours), images / statistics.median(plain)
    print(
        f"{label}: harness {ours_rate:,.0f} img/s, plain loop {plain_rate:,.0f} img/s "
        f"(train phase, median of {repeats}): harness / plain = {ours_rate / plain_rate:.2f}x "
        "[target >= 0.9x]"
    )
    print(
        f"  whole training incl. per-epoch evaluation of {', '.join(protocol.eval_splits)}: "
        f"median {statistics.median(whole):.3f} s"
    )
    return statistics.median(whole)


def synthetic_cifar(train: int, test: int) -> Dataset:
    """CIFAR-shaped random tensors: speed only, the values mean nothing."""
    rng = np.random.default_rng(0)

    def part(n: int) -> tuple[np.ndarray, np.ndarray]:
        return rng.standard_normal((n, 3, 32, 32), dtype=np.float32), rng.integers(10, size=n)

    indices = {"train": np.arange(train), "ori-test": np.arange(test)}
    return Dataset(
        name="synthetic-cifar",
        num_classes=10,
        input_shape=(3, 32, 32),
        splits={"train": part(train), "ori-test": part(test)},
        split=Split(indices=indices, sources={"train": "train", "ori-test": "test"}),
        mean=(0.0,) * 3,
        std=(1.0,) * 3,
        valid_split=None,
        test_split="ori-test",
        augment_padding=4,
        source={"synthetic": True},
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    repeats = parser.parse_args().repeats

    digits_protocol = load_protocol(REPO / "benchmarks" / "digits" / "tabulate.toml")
    per_training = compare("digits, C=4 N=1", digits_protocol, load_dataset("digits"), repeats)
    trainings = 6466 * len(digits_protocol.seeds)
    per_minute = 2 * 60 / per_training
    print(
        f"table build rate (2 single-thread workers, no other load): {per_minute:.0f} trainings "
        f"per minute = {per_minute * 15625 / trainings:.0f} NB201 cells per minute; "
        f"{trainings} trainings take {trainings / per_minute / 60:.1f} h"
    )

    cifar = synthetic_cifar(train=256, test=256)
    nb201 = Protocol(
        dataset="synthetic-cifar",
        schedule="speed",
        splits=dict(cifar.split.hashes),
        train_split="train",
        eval_splits=("ori-test",),
        epochs=1,
        batch_size=256,
        learning_rate=0.1,
        momentum=0.9,
        nesterov=True,
        weight_decay=5e-4,
        lr_schedule="cosine",
        augmentation="crop-flip",
        augmentation_padding=4,
        channels=16,
        cells_per_stage=5,
        seeds=(0,),
        threads=2,
    )
    compare("CIFAR-shaped, C=16 N=5, CPU 1 thread", nb201, cifar, max(1, repeats // 2))
    if torch.cuda.is_available():
        gpu = dataclasses.replace(nb201, device="cuda")
        large = synthetic_cifar(train=8192, test=1024)
        print(
            f"GPU: {torch.cuda.get_device_name(0)}, CUDA {torch.version.cuda}, "
            f"cuDNN {torch.backends.cudnn.version()}"
        )
        compare("CIFAR-shaped, C=16 N=5, CUDA", gpu, large, repeats)
    else:
        print("no CUDA device here: the GPU comparison needs one")


if __name__ == "__main__":
    main()

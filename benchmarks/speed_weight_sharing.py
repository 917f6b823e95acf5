"""Speed of weight-sharing searches on the digits protocol (prints figures; no asserts).

1. Seconds per supernet epoch of each of NB201's six methods at its released settings, on
   the shipped table's protocol (C=4, N=1, 1,000 training and 397 validation images, one
   thread), and what ten seeds of the whole study cost at that rate.
2. DARTS-V1's training step against a plain PyTorch loop over the same supernet, the same
   batches and the same two optimizers, measured side by side (median of alternating
   epochs): the harness's own overhead per step.

    python benchmarks/speed_weight_sharing.py [--epochs 2] [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from harness.data import load_dataset  # noqa: E402
from harness.models.supernet import EdgeRule  # noqa: E402
from harness.one_shot.methods import METHODS  # noqa: E402
from harness.one_shot.setup import OneShotSetup  # noqa: E402
from harness.spaces import get_space  # noqa: E402
from harness.strategies import strategy_class  # noqa: E402

KINDS = {
    "rsps": "rsps",
    "darts-v1": "darts_v1",
    "darts-v2": "darts_v2",
    "gdas": "gdas",
    "setn": "setn",
    "enas": "enas",
}
SEEDS = 10
SPACE = get_space("nb201")


def digits_setup() -> OneShotSetup:
    return OneShotSetup(load_dataset("digits"), "train", "valid", 4, 1)


def per_epoch(setup: OneShotSetup, epochs: int) -> None:
    print(f"1. seconds per supernet epoch, digits protocol, 1 thread ({epochs} epochs each)")
    header = f"{'method':9} {'train s/epoch':>13} {'with log s':>10} {'epochs':>6}"
    print(f"   {header} {'10 seeds, h':>11}")
    total_h = 0.0
    for method, kind in KINDS.items():
        cls = strategy_class(kind)
        given = {"epochs": epochs}
        if "test_batch_size" in cls.hyperparameters:
            given["test_batch_size"] = setup.split_size(setup.arch_split)
        released = cls.resolve_hyperparameters({})["epochs"]
        search = METHODS[method](
            SPACE, cls.resolve_hyperparameters(given), setup, np.random.default_rng(0)
        )
        tic = time.perf_counter()
        result = search.search()
        wall = time.perf_counter() - tic
        marks = [row["seconds"] for row in result.epochs]
        train = statistics.median(np.diff([0.0, *marks[:-1]]).tolist() or [marks[0]])
        hours = wall / epochs * released * SEEDS / 3600
        total_h += hours
        print(f"   {method:9} {train:13.2f} {wall / epochs:10.2f} {released:6d} {hours:11.2f}")
    print(f"   whole study, {SEEDS} seeds x 6 methods, released epochs: {total_h:.1f} h, 1 core")


def plain_epoch(network, alpha, batches, w_opt, a_opt) -> float:
    """DARTS-V1's step written out with nothing of the harness around it."""
    loss_fn = nn.CrossEntropyLoss()
    tic = time.perf_counter()
    for wx, wy, ax, ay in batches:
        w_opt.zero_grad()
        loss = loss_fn(network(wx, EdgeRule(weights=torch.softmax(alpha, -1))), wy)
        loss.backward()
        nn.utils.clip_grad_norm_([*network.parameters(), alpha], 5.0)
        w_opt.step()
        a_opt.zero_grad()
        loss_fn(network(ax, EdgeRule(weights=torch.softmax(alpha, -1))), ay).backward()
        a_opt.step()
    return time.perf_counter() - tic


def step_overhead(setup: OneShotSetup, repeats: int) -> None:
    params = strategy_class("darts_v1").resolve_hyperparameters({"epochs": 1})
    search = METHODS["darts-v1"](SPACE, params, setup, np.random.default_rng(0))
    batches = list(search.batches.paired(params["batch_size"]))  # the same batches, prepared
    steps = len(batches)
    harness_s, plain_s = [], []
    for _ in range(repeats):
        tic = time.perf_counter()
        search.train_epoch(0)
        harness_s.append(time.perf_counter() - tic)
        plain_s.append(
            plain_epoch(
                search.network, search.alpha, batches, search.w_optimizer, search.a_optimizer
            )
        )
    h, p = statistics.median(harness_s) / steps, statistics.median(plain_s) / steps
    print(f"2. DARTS-V1 step, median of {repeats} alternating epochs of {steps} steps")
    print(f"   harness {h * 1e3:.2f} ms   plain loop {p * 1e3:.2f} ms   ratio {h / p:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    setup = digits_setup()
    step_overhead(setup, args.repeats)
    per_epoch(setup, args.epochs)


if __name__ == "__main__":
    main()

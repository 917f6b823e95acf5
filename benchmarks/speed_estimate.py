"""Zero-cost proxies: seconds per architecture of each, and what a whole space costs.

    .venv/bin/python benchmarks/speed_estimate.py [--cells 40] [--repeats 3]

Side by side in one run, one thread, the proxies alternating within each repeat:
1. every proxy on the shipped digits table's protocol (NB201 cell, C=4, N=1, 1x8x8, the
   estimators of ``benchmarks/zero-cost/digits.toml``), median seconds per architecture
   over ``--cells`` random cells (the same cells for every proxy), building the network
   included, as ``harness estimate`` measures a score;
2. the data-free proxies of ``benchmarks/zero-cost/nb201-datafree.toml`` at NB201's own
   size (C=16, N=5) on each of its inputs (CIFAR's 3x32x32, ImageNet16's 3x16x16);
3. from those medians, the projected wall time of all 15,625 cells with two worker
   processes, and this process's peak memory (the workers of a build each hold one such
   process's memory: the data and one network at a time).
The networks are warmed up first (the first build in a process pays for torch's lazy set-up).
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from harness.estimation import _estimators, _load_inputs, load_estimate_spec

SPECS = Path(__file__).resolve().parent / "zero-cost"
WORKERS = 2


def seconds_per_cell(spec_name: str, cells: int, repeats: int) -> dict[tuple[str, str], float]:
    """Median seconds of one score per (input, estimator), over ``cells`` cells x repeats."""
    spec = load_estimate_spec(SPECS / spec_name)
    estimators = _estimators(spec, _load_inputs(spec))
    torch.set_num_threads(1)
    archs = np.random.default_rng(0).choice(spec.space.num_archs, cells, replace=False)
    for estimator in estimators.values():  # warm-up
        estimator.score(int(archs[0]), spec.protocol.seeds[0])
    samples: dict[tuple[str, str], list[float]] = {key: [] for key in estimators}
    for _ in range(repeats):
        for key, estimator in estimators.items():
            started = time.perf_counter()
            for arch in archs:
                estimator.score(int(arch), spec.protocol.seeds[0])
            samples[key].append((time.perf_counter() - started) / cells)
    return {key: statistics.median(values) for key, values in samples.items()}


def show(title: str, medians: dict[tuple[str, str], float], n_arch: int) -> None:
    print(f"\n{title}")
    print("| input | estimator | s / architecture | all cells, 2 workers |")
    print("|---|---|---|---|")
    for (input_name, name), seconds in medians.items():
        whole = seconds * n_arch / WORKERS
        print(f"| {input_name} | {name} | {seconds:.4f} | {whole / 60:.1f} min |")
    total = sum(medians.values()) * n_arch / WORKERS
    print(f"| all | all | {sum(medians.values()):.4f} | {total / 60:.1f} min |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    n_arch = 15_625
    show(
        "Every proxy on the digits protocol (C=4, N=1), median over cells and repeats:",
        seconds_per_cell("digits.toml", args.cells, args.repeats),
        n_arch,
    )
    show(
        "Data-free proxies at NB201's size (C=16, N=5):",
        seconds_per_cell("nb201-datafree.toml", max(4, args.cells // 4), args.repeats),
        n_arch,
    )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak memory of this process: {peak:.0f} MiB")


if __name__ == "__main__":
    main()

"""Speed figures for the NB201 Table 5 re-run; prints medians and ratios measured here.

    .venv/bin/python benchmarks/speed_table5.py [--repeats 3]

Measures, side by side in one invocation:
1. loading the NB201 table (fresh process each time: wall time of ``Table.load`` and peak RSS);
2. the whole Table 5 re-run end to end (``harness run``, 3 methods x 500 runs, records and
   result files included) in a fresh process against an existing sqlite store;
3. search time per REA run through harness (simulator, evaluator, strategy, records not
   included) against a plain Python REA loop over the same numpy arrays.
Figures quoted from elsewhere (syne-tune's simulator, the NATS-Bench API) are printed as
quoted, not measured; only the ratios against them use our measured numbers.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import deque
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SPEC = REPO / "benchmarks" / "nb201" / "table5.toml"
QUOTED_SECONDS_PER_RUN = {
    "syne-tune simulator, REA (quoted)": 0.54,
    "NATS-Bench API, default mode (quoted, low end)": 1.0,
    "NATS-Bench API, default mode (quoted, high end)": 2.6,
}
LOAD_SNIPPET = """
import resource, sys, time
from pathlib import Path
tic = time.perf_counter()
from harness.table import Table
Table.load(Path(sys.argv[1]), expected_sha256=sys.argv[2])
print(time.perf_counter() - tic, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""


def measure_load(path: Path, sha256: str, repeats: int) -> tuple[list[float], list[float]]:
    seconds, rss = [], []
    for _ in range(repeats):
        out = subprocess.run(
            [sys.executable, "-c", LOAD_SNIPPET, str(path), sha256],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        seconds.append(float(out[0]))
        rss.append(float(out[1]))
    return seconds, rss


def measure_end_to_end(repeats: int) -> list[float]:
    harness = Path(sys.executable).parent / "harness"
    with tempfile.TemporaryDirectory() as folder:
        env = {
            **os.environ,
            "MLFLOW_TRACKING_URI": f"sqlite:///{folder}/mlflow.db",
            "MLFLOW_DISABLE_TELEMETRY": "true",
        }
        command = [str(harness), "run", str(SPEC), "--results", f"{folder}/table5"]
        subprocess.run(command, env=env, capture_output=True, check=True)  # creates the store
        seconds = []
        for _ in range(repeats):
            tic = time.perf_counter()
            subprocess.run(command, env=env, capture_output=True, check=True)
            seconds.append(time.perf_counter() - tic)
    return seconds


def plain_rea(signal: np.ndarray, cost: np.ndarray, space, seed: int, budget: float) -> int:
    """The simplest REA loop over numpy arrays: the floor any harness overhead is judged by."""
    rng = np.random.default_rng(seed)
    population: deque[tuple[int, float]] = deque()
    spent, best, best_signal = 0.0, -1, -np.inf
    while True:
        if len(population) < 10:
            arch = space.sample(rng)
        else:
            picks = rng.integers(len(population), size=3)
            parent = max((population[i] for i in picks), key=lambda member: member[1])
            arch = space.mutate(parent[0], rng)
        if spent + cost[arch] > budget:
            return best
        spent += cost[arch]
        population.append((arch, signal[arch]))
        if len(population) > 10:
            population.popleft()
        if signal[arch] > best_signal:
            best, best_signal = arch, signal[arch]


def measure_search(repeats: int) -> tuple[list[float], list[float]]:
    from harness.experiment import Benchmark, open_table
    from harness.spec import load_spec

    spec = load_spec(SPEC)
    benchmark = Benchmark(spec, open_table(spec))
    rea = next(s for s in spec.strategies if s.kind == "regularized_evolution")
    evaluator = benchmark.evaluator
    signal = evaluator._lookups[spec.epoch][0].vector
    cost = evaluator._cost[spec.epoch]
    ours, plain = [], []
    for _ in range(repeats):
        tic = time.perf_counter()
        for seed in spec.seeds:
            benchmark.run(rea, seed)
        ours.append((time.perf_counter() - tic) / len(spec.seeds))
        tic = time.perf_counter()
        for seed in spec.seeds:
            plain_rea(signal, cost, benchmark.space, seed, spec.budget.seconds)
        plain.append((time.perf_counter() - tic) / len(spec.seeds))
    return ours, plain


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    repeats = parser.parse_args().repeats

    from harness.experiment import open_table
    from harness.spec import load_spec

    spec = load_spec(SPEC)
    table = open_table(spec)  # builds the table on first use
    median = statistics.median

    load_s, load_rss = measure_load(table.path, table.sha256, repeats)
    print(
        f"table load (fresh process, {repeats} repeats): median {median(load_s):.3f} s, "
        f"peak RSS median {median(load_rss):.0f} MiB  [targets: <= 1 s, <= 500 MB]"
    )

    whole = measure_end_to_end(repeats)
    print(
        f"Table 5 end to end (3 x 500 runs, records + results): median {median(whole):.1f} s "
        f"(runs: {', '.join(f'{s:.1f}' for s in whole)})  [target: <= 15 s]"
    )

    ours, plain = measure_search(repeats)
    ours_ms, plain_ms = median(ours) * 1e3, median(plain) * 1e3
    print(
        f"REA search per run: harness {ours_ms:.2f} ms, plain Python loop {plain_ms:.2f} ms "
        f"(same arrays, same process): harness / plain = {ours_ms / plain_ms:.2f}x"
    )
    for name, seconds in QUOTED_SECONDS_PER_RUN.items():
        print(
            f"  vs {name}: {seconds:.2f} s per run -> harness is {seconds * 1e3 / ours_ms:,.0f}x "
            "faster"
        )


if __name__ == "__main__":
    main()

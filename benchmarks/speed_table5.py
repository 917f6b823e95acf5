"""Speed figures for the NB201 Table 5 re-run; prints medians and ratios measured here.

    .venv/bin/python benchmarks/speed_table5.py [--repeats 3]

Measures, side by side in one invocation:
1. loading the NB201 table (fresh process each time: wall time of ``Table.load`` and peak RSS);
2. ``harness info`` on the shipped table, a fresh process each time (start-up included);
3. the whole Table 5 re-run end to end (``harness run``, 3 methods x 500 runs, records and
   result files included) in a fresh process against an existing sqlite store, and the
   same against an ``mlflow server`` on loopback (sqlite backend): the cost of recording
   through a tracking server;
4. search time per REA run through harness (simulator, evaluator, strategy, records not
   included) against a plain Python REA loop over the same numpy arrays.
Figures quoted from elsewhere (syne-tune's simulator, the NATS-Bench API) are printed as
quoted, not measured; only the ratios against them use our measured numbers.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
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


HARNESS = Path(sys.executable).parent / "harness"


def timed(command: list[str], env: dict[str, str], cwd: str | None = None) -> float:
    tic = time.perf_counter()
    subprocess.run(command, env=env, cwd=cwd, capture_output=True, check=True)
    return time.perf_counter() - tic


def measure_info(repeats: int) -> list[float]:
    command = [str(HARNESS), "info", str(REPO / "tabular" / "nb201-digits.h5")]
    timed(command, dict(os.environ))  # the first load of a table is probed once per machine
    return [timed(command, dict(os.environ)) for _ in range(repeats)]


def measure_end_to_end(repeats: int, uri: str | None) -> list[float]:
    """``harness run`` of Table 5 into a sqlite store (``uri`` None) or a tracking server."""
    with tempfile.TemporaryDirectory() as folder:
        env = {
            **os.environ,
            "MLFLOW_TRACKING_URI": uri or f"sqlite:///{folder}/mlflow.db",
            "MLFLOW_DISABLE_TELEMETRY": "true",
        }
        command = [str(HARNESS), "run", str(SPEC), "--results", f"{folder}/table5"]
        timed(command, env, folder)  # creates the store
        return [timed(command, env, folder) for _ in range(repeats)]


def tracking_server(folder: str) -> tuple[subprocess.Popen, str]:
    """An ``mlflow server`` on a free loopback port with a sqlite backend."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [
            sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1",
            "--port", str(port), "--workers", "1",
            "--backend-store-uri", f"sqlite:///{folder}/server.db",
            "--artifacts-destination", f"{folder}/artifacts",
        ],
        env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2):
                return server, url
        except OSError:
            time.sleep(0.5)
    server.kill()
    raise SystemExit("mlflow server did not start")


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
    from harness.evaluators.tabular import resolve_metric
    from harness.experiment import Benchmark, open_table
    from harness.spec import load_spec

    spec = load_spec(SPEC)
    benchmark = Benchmark(spec, open_table(spec))
    rea = next(s for s in spec.strategies if s.kind == "regularized_evolution")
    epoch = spec.search.epoch
    signal = resolve_metric(benchmark.table, spec.search.signal, epoch)  # seed mean, as run
    cost = np.array([benchmark.evaluator.costs.cost(a, epoch, None) for a in range(len(signal))])
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

    info = measure_info(repeats)
    print(
        f"harness info (fresh process, table already verified): median {median(info):.2f} s "
        f"(runs: {', '.join(f'{s:.2f}' for s in info)})  [target: <= 0.5 s]"
    )

    whole = measure_end_to_end(repeats, None)
    print(
        f"Table 5 end to end (3 x 500 runs, records + results, sqlite): median "
        f"{median(whole):.1f} s (runs: {', '.join(f'{s:.1f}' for s in whole)})  [target: <= 5 s]"
    )
    with tempfile.TemporaryDirectory() as folder:
        server, url = tracking_server(folder)
        try:
            served = measure_end_to_end(repeats, url)
        finally:
            server.terminate()
            server.wait()
    print(
        f"Table 5 end to end through an mlflow server (sqlite backend): median "
        f"{median(served):.1f} s (runs: {', '.join(f'{s:.1f}' for s in served)}); recording "
        f"through the server costs {median(served) - median(whole):+.1f} s per experiment"
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

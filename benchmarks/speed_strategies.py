"""Per-evaluation overhead of every strategy, and the comparison's end-to-end time.

    .venv/bin/python benchmarks/speed_strategies.py [--seeds 10] [--workers 1 4] [--comparison]

1. For each strategy of ``benchmarks/compare/nb201.toml`` (NAS-Bench-201, Table 5's
   protocol), runs ``--seeds`` seeds with each worker count, the strategies alternating
   seed by seed so a busy machine slows them alike, and prints the median over runs of
   the strategy's own time per evaluation (its ``ask`` + ``tell``, as the simulator
   measures it: ``strategy_wall_s``), the harness's own time per evaluation outside them
   (simulator, evaluator, seal), the host time per evaluation of the whole run, and the
   ratio of the strategy's time to random search's. The load average is printed too.
2. The host time of one REA run scaled to 20,000 simulated seconds, beside the figure
   quoted for syne-tune's simulator (about 0.5 s per 20,000 s REA run, clock advanced in
   5 s steps; quoted, not measured here). Ours advances by each evaluation's exact cost.
3. With ``--comparison``: ``harness run`` of each spec in ``benchmarks/compare/`` (fresh
   process, fresh sqlite store, worker processes chosen as ``harness run`` chooses), and
   the total.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COMPARE = REPO / "benchmarks" / "compare"
QUOTED_SYNE_TUNE_S_PER_20000 = 0.5


def per_evaluation(spec, benchmark, workers: int, seeds: list[int]) -> dict[str, tuple]:
    """Strategy name -> (strategy µs/evaluation, harness µs/evaluation outside the
    strategy, host µs/evaluation, evaluations), medians over ``seeds``."""
    from harness.experiment import Benchmark

    spec = dataclasses.replace(spec, workers=workers)
    benchmark = Benchmark(spec, benchmark.table)
    runs: dict[str, list[tuple[float, float, float, int]]] = {s.name: [] for s in spec.strategies}
    for seed in seeds:
        for strategy in spec.strategies:
            tic = time.perf_counter()
            result = benchmark.run(strategy, seed).result
            host = time.perf_counter() - tic
            count = result.evaluations
            own = result.strategy_wall_s
            runs[strategy.name].append(
                (own / count * 1e6, (host - own) / count * 1e6, host / count * 1e6, count)
            )
    return {
        name: tuple(statistics.median(column) for column in zip(*rows, strict=True))
        for name, rows in runs.items()
    }


def rea_run_host_s(spec, benchmark, seeds: list[int]) -> tuple[float, float]:
    """Median host seconds of one REA run and its simulated seconds."""
    rea = next(s for s in spec.strategies if s.kind == "regularized_evolution")
    host, simulated = [], []
    for seed in seeds:
        tic = time.perf_counter()
        result = benchmark.run(rea, seed).result
        host.append(time.perf_counter() - tic)
        simulated.append(result.simulated_seconds)
    return statistics.median(host), statistics.median(simulated)


def comparison() -> None:
    harness = Path(sys.executable).parent / "harness"
    total = 0.0
    with tempfile.TemporaryDirectory() as folder:
        env = {
            **os.environ,
            "MLFLOW_TRACKING_URI": f"sqlite:///{folder}/mlflow.db",
            "MLFLOW_DISABLE_TELEMETRY": "true",
        }
        for spec in sorted(COMPARE.glob("*.toml")):
            command = [str(harness), "run", str(spec), "--results", f"{folder}/{spec.stem}"]
            tic = time.perf_counter()
            subprocess.run(command, env=env, cwd=folder, capture_output=True, check=True)
            seconds = time.perf_counter() - tic
            total += seconds
            print(f"  harness run {spec.relative_to(REPO)}: {seconds:.0f} s")
    print(f"  the whole comparison: {total:.0f} s ({total / 60:.1f} min)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--comparison", action="store_true")
    args = parser.parse_args()

    from harness.experiment import Benchmark, open_table
    from harness.spec import load_spec

    spec = load_spec(COMPARE / "nb201.toml")
    benchmark = Benchmark(spec, open_table(spec))
    load = " ".join(f"{v:.2f}" for v in os.getloadavg())
    print(f"load average (1, 5, 15 min): {load} on {os.cpu_count()} cores")
    seeds = list(range(args.seeds))
    for workers in args.workers:
        figures = per_evaluation(spec, benchmark, workers, seeds)
        baseline = figures["RS"][0]
        print(
            f"NB201, Table 5 protocol, {workers} worker(s), median of {len(seeds)} runs:\n"
            f"  {'strategy':<10} {'ask+tell µs':>12} {'x RS':>8} {'harness µs':>11} "
            f"{'host µs/eval':>13} {'evaluations':>12}"
        )
        for name, (own, harness, host, count) in figures.items():
            print(
                f"  {name:<10} {own:>12,.1f} {own / baseline:>8.1f} {harness:>11,.1f} "
                f"{host:>13,.1f} {count:>12.0f}"
            )
    host, simulated = rea_run_host_s(spec, benchmark, seeds)
    scaled = host * 20000 / simulated
    print(
        f"REA, host time per 20,000 simulated seconds: {scaled * 1e3:.1f} ms (one run: "
        f"{host * 1e3:.1f} ms for {simulated:,.0f} s); syne-tune's simulator (quoted): "
        f"{QUOTED_SYNE_TUNE_S_PER_20000:.1f} s -> {QUOTED_SYNE_TUNE_S_PER_20000 / scaled:,.0f}x"
    )
    if args.comparison:
        print("The comparison (benchmarks/compare/), end to end:")
        comparison()


if __name__ == "__main__":
    main()

"""Speed of the predictor protocol and of proxy-guided search.

    .venv/bin/python benchmarks/speed_predictors.py [--trials 2] [--seeds 5]

1. The predictor protocol end to end (``prepare`` and every trial of
   ``benchmarks/predictors/digits.toml`` and ``nb201.toml``, with ``--trials`` trials
   instead of the specs'), in host seconds, with the whole run's projection to the
   spec's own trial count.
2. Each predictor's fit ("initialisation") time and query time per architecture, medians
   over the trials, at every training-set size, as NASLib reports ``fit_time`` and
   ``query_time``.
3. Host time per evaluation of the proxy-guided searches of
   ``benchmarks/proxy-search/digits.toml`` against REA's, measured side by side in this
   process: the whole run's host time (simulator, scores, evaluator, strategy) divided by
   its trainings, and by its trainings plus scores.

Host times depend on the machine and its load; run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def protocol(spec_path: Path, trials: int) -> None:
    """Parts 1 and 2 for one predict spec."""
    from harness.predictors.protocol import load_predict_spec, prepare, run_protocol

    spec = load_predict_spec(spec_path)
    projected_trials = spec.trials
    spec = dataclasses.replace(spec, trials=trials)
    tic = time.perf_counter()
    prepared = prepare(spec)
    ready = time.perf_counter() - tic
    rows = run_protocol(prepared)
    total = time.perf_counter() - tic
    per_trial = (total - ready) / trials
    print(
        f"\n## {spec.name}: {trials} trials in {total:.1f} s (prepare {ready:.1f} s, "
        f"{per_trial:.1f} s per trial; the spec's {projected_trials} trials: "
        f"{ready + per_trial * projected_trials:.0f} s)"
    )
    sizes = sorted(rows["train_size"].unique())
    print("\nfit seconds (median over trials) | query µs per architecture")
    print("| predictor | " + " | ".join(f"n={n}" for n in sizes) + " | query µs/arch |")
    print("|---|" + "---|" * (len(sizes) + 1))
    for name, mine in rows.groupby("predictor", sort=False):
        fits = [statistics.median(mine[mine["train_size"] == n]["fit_s"]) for n in sizes]
        query = statistics.median(mine["query_s"]) * 1e6
        print(f"| {name} | " + " | ".join(f"{f:.3f}" for f in fits) + f" | {query:.1f} |")


def searches(seeds: int) -> None:
    """Part 3: host time per evaluation of each proxy-guided search against REA's."""
    from harness.experiment import Benchmark, open_table
    from harness.spec import load_spec

    spec = load_spec(REPO / "benchmarks" / "proxy-search" / "digits.toml")
    benchmark = Benchmark(spec, open_table(spec))
    print(f"\n## proxy-guided search on digits, {seeds} seeds, one worker")
    print("| strategy | trainings | scores | host µs / training | host µs / (training + score) |")
    print("|---|---|---|---|---|")
    for strategy in spec.strategies:
        per_training, per_step, trainings, scores = [], [], [], []
        for seed in range(seeds):
            tic = time.perf_counter()
            result = benchmark.run(strategy, seed).result
            host = time.perf_counter() - tic
            per_training.append(host / result.evaluations * 1e6)
            per_step.append(host / (result.evaluations + result.scores) * 1e6)
            trainings.append(result.evaluations)
            scores.append(result.scores)
        print(
            f"| {strategy.name} | {statistics.median(trainings):.0f} | "
            f"{statistics.median(scores):.0f} | {statistics.median(per_training):.0f} | "
            f"{statistics.median(per_step):.0f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=2)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--skip-nb201", action="store_true", help="digits only")
    args = parser.parse_args()
    print(f"threads: OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")
    protocol(REPO / "benchmarks" / "predictors" / "digits.toml", args.trials)
    if not args.skip_nb201:
        protocol(REPO / "benchmarks" / "predictors" / "nb201.toml", args.trials)
    searches(args.seeds)


if __name__ == "__main__":
    main()

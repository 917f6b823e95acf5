"""Table-build scale-out: `harness tabulate` wall time by executor, and Dask's cost per chunk.

    .venv/bin/python benchmarks/speed_tabulate.py [--chunks 4] [--repeats 3]

Side by side in one run, the executors alternating within each repeat:
1. the first ``--chunks`` chunks (24 trainings each) of the shipped digits table, built
   from scratch with 1 worker (this process, torch imported and the data read before
   timing), 2 worker processes (forked from this process), and a 2-worker Dask
   LocalCluster started for the build: its start, its workers' imports of torch and the
   data, and its close count, as a user sees them;
2. the cost per chunk: 400 empty chunks through a pool of 2 worker processes and through a
   2-worker LocalCluster that is already running.
Needs the ``[dask]`` extra.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import statistics
import tempfile
import time
from pathlib import Path

import distributed

from harness.executors import run_chunks
from harness.tabulate import load_tabulate_spec, train_all
from harness.train import open_dataset

DIGITS = Path(__file__).resolve().parent / "digits" / "tabulate.toml"
BUILDS = {
    "1 worker (this process)": ("processes", 1),
    "2 worker processes": ("processes", 2),
    "2-worker Dask LocalCluster": ("dask", 2),
}
EMPTY_CHUNKS = 400


def build_seconds(executor: str, workers: int, chunks: int) -> float:
    """Wall time of training the first ``chunks`` chunks of the digits table from scratch."""
    with tempfile.TemporaryDirectory() as folder:
        spec = dataclasses.replace(load_tabulate_spec(DIGITS), out=Path(folder) / "t.h5")
        started = time.perf_counter()
        train_all(spec, workers=workers, max_chunks=chunks, executor=executor)
        return time.perf_counter() - started


def seconds_per_empty_chunk(executor: str, scheduler: str | None = None) -> float:
    chunks = [(index, -index) for index in range(EMPTY_CHUNKS)]
    started = time.perf_counter()
    run_chunks(abs, chunks, lambda *_: None, executor=executor, workers=2, scheduler=scheduler)
    return (time.perf_counter() - started) / EMPTY_CHUNKS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    spec = load_tabulate_spec(DIGITS)
    open_dataset(spec.protocol, spec.data_root, spec.split_dir)  # imports torch, reads digits
    walls: dict[str, list[float]] = {name: [] for name in BUILDS}
    for _ in range(args.repeats):
        for name, (executor, workers) in BUILDS.items():
            walls[name].append(build_seconds(executor, workers, args.chunks))
    one = statistics.median(walls["1 worker (this process)"])
    trainings = args.chunks * 24
    print(f"tabulate, digits protocol, {trainings} trainings ({args.repeats} repeats):")
    for name, values in walls.items():
        median = statistics.median(values)
        runs = ", ".join(f"{v:.1f}" for v in values)
        print(f"  {name}: median {median:.1f} s (runs: {runs}); speed-up {one / median:.2f}x")

    pool, cluster = [], []
    with distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        host="127.0.0.1",
        dashboard_address=None,
        scheduler_kwargs={"dashboard": False},
    ) as running:
        for _ in range(args.repeats):
            pool.append(seconds_per_empty_chunk("processes"))
            cluster.append(seconds_per_empty_chunk("dask", running.scheduler_address))
    per_pool, per_dask = statistics.median(pool) * 1e3, statistics.median(cluster) * 1e3
    chunk_s = one / args.chunks
    print(
        f"cost per chunk ({EMPTY_CHUNKS} empty chunks, 2 workers): process pool {per_pool:.2f} ms, "
        f"running Dask cluster {per_dask:.2f} ms; Dask's extra {per_dask - per_pool:.2f} ms "
        f"= {(per_dask - per_pool) / 1e3 / chunk_s:.3%} of one 24-training chunk ({chunk_s:.1f} s)"
    )


if __name__ == "__main__":
    main()

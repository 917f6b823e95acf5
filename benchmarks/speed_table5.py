"""Speed figures for the NB201 Table 5 re-run; prints medians and ratios measured here.

    .venv/bin/python benchmarks/speed_table5.py [--repeats 5] [--server]

Measures, side by side in one invocation (every figure a median of ``--repeats``; the
machine's load average is printed before and after, since a shared machine's timings move):
1. loading the NB201 table (fresh process each time: wall time of ``Table.load`` and peak RSS);
2. ``harness info`` on the shipped table, a fresh process each time (start-up included);
3. the whole Table 5 re-run end to end (``harness run``, 4 methods x 500 runs, records and
   result files included) in a fresh process against an existing sqlite store, each run
   followed by one of the same work, in a fresh process too, timed phase by phase: imports
   (everything ``harness run`` imports before its search), table, search (every method,
   worker processes as ``harness run`` chooses), record (MLflow), report (tables and
   statistics) and plot (what the report waits for its figures, drawn in a forked process
   while it computes its statistics: the drawing's time beyond that overlap), each in wall
   seconds and in CPU seconds (the process's own and those of the processes it waited
   for), and the CPU seconds of each whole run, all its processes together: on a shared
   machine the wall time includes waiting for other jobs, the CPU time does not;
   with ``--server``, the same against an ``mlflow server`` on loopback (sqlite backend):
   the cost of recording through a tracking server;
4. host time per REA run through harness (strategy, simulator, evaluator; no records)
   against a plain Python REA loop over the same numpy arrays, the two alternating seed by
   seed in one process; the ratio of each repeat, and the harness's own time per
   evaluation outside the strategy's ``ask``/``tell``.
Figures quoted from elsewhere (syne-tune's simulator, the NATS-Bench API) are printed as
quoted, not measured; only the ratios against them use our measured numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
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
    return timed_cpu(command, env, cwd)[0]


def children_cpu() -> float:
    """CPU seconds of this process's children that have ended (and of theirs)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed_cpu(
    command: list[str], env: dict[str, str], cwd: str | None = None
) -> tuple[float, float]:
    """Wall and CPU seconds of ``command`` (its own and its children's)."""
    tic, tic_cpu = time.perf_counter(), children_cpu()
    subprocess.run(command, env=env, cwd=cwd, capture_output=True, check=True)
    return time.perf_counter() - tic, children_cpu() - tic_cpu


def measure_info(repeats: int) -> list[float]:
    command = [str(HARNESS), "info", str(REPO / "tabular" / "nb201-digits.h5")]
    timed(command, dict(os.environ))  # the first load of a table is probed once per machine
    return [timed(command, dict(os.environ)) for _ in range(repeats)]


PHASES_SNIPPET = """
import json, resource, sys, time
def cpu():  # CPU seconds of this process and of its children that have ended
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime
tic, tic_cpu = time.perf_counter(), cpu()
import harness.api, harness.cli, harness.environment, harness.experiment, harness.record
import harness.report.plots, harness.report.write
phases = {"imports": time.perf_counter() - tic, "cpu.imports": cpu() - tic_cpu}

def timed(module, name, phase):
    original = getattr(module, name)
    def wrapper(*args, **kwargs):
        start, start_cpu = time.perf_counter(), cpu()
        try:
            return original(*args, **kwargs)
        finally:
            phases[phase] = phases.get(phase, 0.0) + time.perf_counter() - start
            phases["cpu." + phase] = phases.get("cpu." + phase, 0.0) + cpu() - start_cpu
    setattr(module, name, wrapper)

timed(harness.experiment, "open_table", "table")
timed(harness.experiment, "run_experiment", "search")
timed(harness.record, "record_experiment", "record")
timed(harness.record, "load_experiment", "record")
timed(harness.report.write, "write_report", "report")
timed(harness.report.plots.Drawing, "result", "plot")
tic = time.perf_counter()
harness.api.run(sys.argv[1], results=sys.argv[2])
phases["report"] -= phases.get("plot", 0.0)
phases["cpu.report"] -= phases.get("cpu.plot", 0.0)
phases["total"] = phases["imports"] + time.perf_counter() - tic
print(json.dumps(phases))
"""
PHASES = ("imports", "table", "search", "record", "report", "plot")
#: a phase's CPU seconds: this process's and those of the processes it waited for (the
#: search's workers, the figures' process), so a busy machine's wait shows as wall time only
CPU_PHASES = tuple(f"cpu.{name}" for name in PHASES)


def measure_end_to_end(
    repeats: int, uri: str | None
) -> tuple[list[float], dict[str, list[float]], list[float], list[float]]:
    """``harness run`` of Table 5 into a sqlite store (``uri`` None) or a tracking server,
    each run followed by the same work timed phase by phase (fresh processes, both):
    end-to-end seconds, seconds per phase (wall, then CPU), the phased process's own wall
    time, and the CPU seconds of each end-to-end run (all its processes)."""
    with tempfile.TemporaryDirectory() as folder:
        env = {
            **os.environ,
            "MLFLOW_TRACKING_URI": uri or f"sqlite:///{folder}/mlflow.db",
            "MLFLOW_DISABLE_TELEMETRY": "true",
        }
        command = [str(HARNESS), "run", str(SPEC), "--results", f"{folder}/table5"]
        timed(command, env, folder)  # creates the store
        whole, phases, phased, cpus = [], {name: [] for name in PHASES + CPU_PHASES}, [], []
        for _ in range(repeats):
            wall, cpu = timed_cpu(command, env, folder)
            whole.append(wall)
            cpus.append(cpu)
            tic = time.perf_counter()
            out = subprocess.run(
                [sys.executable, "-c", PHASES_SNIPPET, str(SPEC), f"{folder}/phased"],
                env=env,
                cwd=folder,
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            phased.append(time.perf_counter() - tic)
            seconds = json.loads(out.splitlines()[-1])
            for name in PHASES + CPU_PHASES:
                phases[name].append(seconds.get(name, 0.0))
        return whole, phases, phased, cpus


def print_end_to_end(
    label: str, whole: list[float], phases: dict, phased: list[float], cpus: list[float]
) -> None:
    median = statistics.median
    parts = {name: median(phases[name]) for name in PHASES}
    rest = median(phased) - sum(parts.values())
    shown = ", ".join(
        f"{name} {seconds:.2f} ({median(phases['cpu.' + name]):.2f})"
        for name, seconds in parts.items()
    )
    cores = os.cpu_count() or 1
    print(
        f"Table 5 end to end ({label}): median {median(whole):.2f} s "
        f"(runs: {', '.join(f'{s:.2f}' for s in whole)})  [target: <= 5 s]\n"
        f"  CPU seconds of all its processes: median {median(cpus):.2f} (on {cores} idle "
        f"cores no schedule beats {median(cpus) / cores:.2f} s of wall time)\n"
        f"  where it goes (medians, wall s (CPU s); a process of the same work timed phase by "
        f"phase, {median(phased):.2f} s): {shown}, interpreter start-up and the rest {rest:.2f}"
    )


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


def measure_search(repeats: int) -> tuple[list[float], list[float], list[float]]:
    """Per repeat: ms per REA run through harness, ms per plain run, and µs per evaluation
    harness spends outside the strategy's ask/tell; the two loops alternate seed by seed."""
    from harness.evaluators.tabular import resolve_metric
    from harness.experiment import Benchmark, open_table
    from harness.spec import load_spec

    spec = load_spec(SPEC)
    benchmark = Benchmark(spec, open_table(spec))
    rea = next(s for s in spec.strategies if s.kind == "regularized_evolution")
    epoch = spec.search.epoch
    signal = resolve_metric(benchmark.table, spec.search.signal, epoch)  # seed mean, as run
    cost = np.array([benchmark.evaluator.costs.cost(a, epoch, None) for a in range(len(signal))])
    for seed in spec.seeds:  # one untimed pass: both loops start warm
        benchmark.run(rea, seed)
        plain_rea(signal, cost, benchmark.space, seed, spec.budget.seconds)
    ours, plain, overhead = [], [], []
    for _ in range(repeats):
        harness_s = plain_s = strategy_s = 0.0
        evaluations = 0
        for seed in spec.seeds:
            tic = time.perf_counter()
            result = benchmark.run(rea, seed).result
            toc = time.perf_counter()
            plain_rea(signal, cost, benchmark.space, seed, spec.budget.seconds)
            plain_s += time.perf_counter() - toc
            harness_s += toc - tic
            strategy_s += result.strategy_wall_s
            evaluations += result.evaluations
        ours.append(harness_s / len(spec.seeds) * 1e3)
        plain.append(plain_s / len(spec.seeds) * 1e3)
        overhead.append((harness_s - strategy_s) / evaluations * 1e6)
    return ours, plain, overhead


def load() -> str:
    """The machine's load averages (1, 5, 15 minutes): how busy its cores were."""
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--server", action="store_true", help="also record through a server")
    args = parser.parse_args()
    repeats = args.repeats

    from harness.experiment import open_table
    from harness.spec import load_spec

    spec = load_spec(SPEC)
    table = open_table(spec)  # builds the table on first use
    median = statistics.median
    print(f"load average (1, 5, 15 min) before: {load()} on {os.cpu_count()} cores")

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

    whole, phases, phased, cpus = measure_end_to_end(repeats, None)
    print_end_to_end("4 x 500 runs, records + results, sqlite", whole, phases, phased, cpus)
    if args.server:
        with tempfile.TemporaryDirectory() as folder:
            server, url = tracking_server(folder)
            try:
                served, served_phases, served_phased, served_cpus = measure_end_to_end(repeats, url)
            finally:
                server.terminate()
                server.wait()
        print_end_to_end(
            "through an mlflow server", served, served_phases, served_phased, served_cpus
        )
        print(
            f"  recording through the server costs {median(served) - median(whole):+.2f} s "
            "per experiment"
        )

    ours, plain, overhead = measure_search(repeats)
    ours_ms, plain_ms = median(ours), median(plain)
    ratios = [a / b for a, b in zip(ours, plain, strict=True)]
    print(
        f"REA search per run (median of {repeats} repeats of {len(spec.seeds)} seeds, the two "
        f"loops alternating seed by seed): harness {ours_ms:.3f} ms, plain Python loop "
        f"{plain_ms:.3f} ms over the same arrays: harness / plain = {median(ratios):.2f}x, the "
        f"median of each repeat's ratio ({', '.join(f'{r:.2f}' for r in ratios)})  "
        "[target: <= 1.2x]\n"
        f"  harness's own time per evaluation, outside ask/tell: {median(overhead):.2f} µs"
    )
    for name, seconds in QUOTED_SECONDS_PER_RUN.items():
        print(
            f"  vs {name}: {seconds:.2f} s per run -> harness is {seconds / ours_ms * 1e3:,.0f}x "
            "faster"
        )
    print(f"load average (1, 5, 15 min) after: {load()}")


if __name__ == "__main__":
    main()

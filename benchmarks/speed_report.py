"""Speed of ``harness report``: the Table 5 experiment and a 4 x 8 x 100 study; prints medians.

    .venv/bin/python benchmarks/speed_report.py [--repeats 3]

Records the experiments once into a temporary sqlite store (not timed), then measures:
1. reporting NB201 Table 5 (4 methods x 500 seeds) from its records: ``harness report`` in
   a fresh process (start-up and imports included), and ``harness.make_report`` called
   again in one process (imports done);
2. the same for a study of 4 benchmarks x 8 methods x 100 seeds (Table 5's protocol at
   four time budgets; Table 5's methods, random sampling, successive halving, Hyperband
   and ASHA).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SPEC = REPO / "benchmarks" / "nb201" / "table5.toml"
HARNESS = Path(sys.executable).parent / "harness"
BUDGETS = (2000, 4000, 8000, 12000)
#: four more built-ins beside Table 5's four, eight methods in all
MORE_STRATEGIES = "".join(
    f'\n[[strategy]]\nname = "{name}"\nkind = "{kind}"\n'
    for name, kind in [
        ("RSamp", "random_sampling"),
        ("SH", "successive_halving"),
        ("HB", "hyperband"),
        ("ASHA", "asha"),
    ]
)


def study_spec(folder: Path, budget: int) -> Path:
    """Table 5's spec at another budget with eight methods, its paths made absolute."""
    text = SPEC.read_text()
    for relative in ("../../build/tables/nb201.h5", "../../../shared/data/nb201"):
        text = text.replace(f'"{relative}"', f'"{(SPEC.parent / relative).resolve()}"')
    text = text.replace('name = "nb201-table5"', f'name = "speed-{budget}s"')
    text = text.replace("seconds = 12000", f"seconds = {budget}")
    path = folder / f"speed-{budget}.toml"
    path.write_text(text + MORE_STRATEGIES)
    return path


def fresh_process(args: list[str], folder: Path, env: dict[str, str]) -> float:
    tic = time.perf_counter()
    subprocess.run([str(HARNESS), *args], cwd=folder, env=env, capture_output=True, check=True)
    return time.perf_counter() - tic


def in_process(names: list[str], out: Path) -> float:
    import harness

    tic = time.perf_counter()
    harness.make_report(names, out)
    return time.perf_counter() - tic


def measure(label: str, names: list[str], folder: Path, env: dict, repeats: int) -> None:
    median = statistics.median
    cli = [fresh_process(["report", *names, "--out", "cli"], folder, env) for _ in range(repeats)]
    in_process(names, folder / "warm")  # imports, the store's schema check
    warm = [in_process(names, folder / "warm") for _ in range(repeats)]
    print(
        f"{label}: harness report (fresh process) median {median(cli):.2f} s "
        f"(runs: {', '.join(f'{s:.2f}' for s in cli)}); make_report in one process "
        f"median {median(warm):.2f} s (runs: {', '.join(f'{s:.2f}' for s in warm)})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    repeats = parser.parse_args().repeats
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        env = {
            **os.environ,
            "MLFLOW_TRACKING_URI": f"sqlite:///{folder}/mlflow.db",
            "MLFLOW_DISABLE_TELEMETRY": "true",
        }
        os.environ.update(env)
        os.chdir(folder)
        fresh_process(["run", str(SPEC), "--results", "table5"], folder, env)
        measure("Table 5, 4 x 500 runs [target: <= 5 s]", ["nb201-table5"], folder, env, repeats)
        specs = [study_spec(folder, budget) for budget in BUDGETS]
        for spec in specs:
            fresh_process(
                ["run", str(spec), "--seeds", "0-99", "--results", spec.stem], folder, env
            )
        names = [f"speed-{budget}s" for budget in BUDGETS]
        measure(
            "4 benchmarks x 8 methods x 100 seeds [target: <= 30 s]", names, folder, env, repeats
        )


if __name__ == "__main__":
    main()

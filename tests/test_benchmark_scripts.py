"""Every speed script in benchmarks/ still runs: the figures quoted for the speed targets
come from them, so a script broken by a change elsewhere would go unnoticed until someone
needs its numbers. Each runs once at its smallest size; the figures are not checked."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
#: script -> the arguments that make its run smallest
SMALLEST = {
    "speed_estimate.py": ["--cells", "2", "--repeats", "1"],
    "speed_predictors.py": ["--trials", "1", "--seeds", "1"],
    "speed_report.py": ["--repeats", "1"],
    "speed_strategies.py": ["--seeds", "1", "--workers", "1"],
    "speed_table5.py": ["--repeats", "1"],
    "speed_tabulate.py": ["--chunks", "1", "--repeats", "1"],
    "speed_training.py": ["--repeats", "1"],
    "speed_weight_sharing.py": ["--epochs", "1", "--repeats", "1"],
}


def test_every_speed_script_is_listed_here():
    scripts = {path.name for path in (REPO / "benchmarks").glob("speed_*.py")}
    assert scripts == set(SMALLEST)


@pytest.mark.slow
@pytest.mark.parametrize("script", sorted(SMALLEST))
def test_a_speed_script_runs_and_prints_its_figures(script, tmp_path):
    env = {
        **os.environ,
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/mlflow.db",
    }
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / script), *SMALLEST[script]],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert done.stdout.strip() and "Traceback" not in done.stderr, done.stderr[-2000:]

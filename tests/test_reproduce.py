"""Reproducing a record: harness.rerun returns what the `harness rerun` command prints."""

from __future__ import annotations

import pandas as pd
import pytest
from conftest import REPO

import harness
from harness.cli import main
from harness.errors import HarnessError
from harness.reproduce import first_difference

DIGITS = REPO / "benchmarks" / "digits" / "compare.toml"


@pytest.fixture
def recorded(mlflow_store) -> harness.api.Results:
    """Two strategies, two seeds of the demo spec, recorded in the test's own store."""
    return harness.run(DIGITS, seeds=[0, 1], strategies=["REA", "RS"], results="out")


def trajectories_file(folder, run_id):
    return next(folder.glob(f"**/{run_id}/artifacts/trajectories.parquet"))


def test_rerun_from_the_id_ls_prints_checks_every_strategy_of_the_seed(recorded, capsys):
    listed = harness.ls()
    assert listed.run_id.tolist() == [recorded.run_id]
    done = harness.rerun(listed.run_id[0], seed=1)
    assert done.identical and done.name == "digits-compare"
    assert [(s.strategy, s.seed) for s in done.seeds] == [("REA", 1), ("RS", 1)]
    rea = done.seeds[0]
    assert rea.evaluations == rea.recorded_evaluations > 10
    row = recorded.runs.query("strategy == 'REA' and seed == 1").iloc[0]
    assert rea.final_arch == row["final_arch_index"]
    assert main(["rerun", recorded.run_id, "--seed", "1"]) == 0
    out = capsys.readouterr().out
    assert "REA seed 1: identical to the record" in out and "RS seed 1: identical" in out


def test_rerun_from_experiment_name_strategy_and_seed(recorded, capsys):
    done = harness.rerun("digits-compare", seed=0, strategy="RS")
    assert [s.strategy for s in done.seeds] == ["RS"] and done.identical
    assert main(["rerun", "digits-compare", "--strategy", "REA", "--seed", "0"]) == 0
    assert "REA seed 0: identical to the record" in capsys.readouterr().out
    with pytest.raises(HarnessError, match="seed 7 was not run by .*; seeds: 0..1"):
        harness.rerun("digits-compare", seed=7)
    capsys.readouterr()
    assert main(["rerun", "digits-compare", "--seed", "7"]) == 2
    assert capsys.readouterr().err.count("\n") == 1  # the error alone: no record chosen
    with pytest.raises(HarnessError, match="strategy 'GA' is not in run"):
        harness.rerun("digits-compare", seed=0, strategy="GA")


def test_a_difference_shows_the_first_differing_row_now_and_recorded(
    recorded, mlflow_store, capsys
):
    child = recorded._children["REA"]
    stored = trajectories_file(mlflow_store, child)
    frame = pd.read_parquet(stored)
    frame.loc[(frame.seed == 1) & (frame.row == 3), "arch_index"] += 1
    frame.to_parquet(stored, index=False)
    done = harness.rerun(child, seed=1)  # a strategy run's id: that strategy only
    [rea] = done.seeds
    assert not done.identical and rea.strategy == "REA"
    assert rea.difference.row == 3 and rea.difference.columns == ("arch_index",)
    assert rea.difference.recorded["arch_index"] == rea.difference.now["arch_index"] + 1
    assert main(["rerun", child, "--seed", "1"]) == 1
    out = capsys.readouterr().out
    assert "REA seed 1: DIFFERENT at row 3, column arch_index: now " in out
    marked = [line for line in out.splitlines() if line.startswith("* ")]
    assert len(marked) == 1 and marked[0].split()[1] == "arch_index"


def test_first_difference_names_a_missing_row_and_ignores_equal_nans():
    now = pd.DataFrame({"row": [0, 1, 2], "signal": [0.5, float("nan"), 0.7]})
    assert first_difference(now, now.copy()) is None
    shorter = first_difference(now.iloc[:2], now)
    assert (shorter.row, shorter.columns, shorter.now) == (2, (), None)
    assert shorter.recorded == {"row": 2, "signal": 0.7}

"""The Python API: run, results, load_table, ls; and one spec run on two search spaces."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib

import pandas as pd
import pytest
from conftest import REPO, TABLE5, dump_toml, needs_nb201, needs_nbgraph

import harness
from harness.errors import HarnessError

DIGITS_TABLE = REPO / "tabular" / "nb201-digits.h5"
CORA = REPO / "benchmarks" / "nbgraph" / "cora.toml"


@pytest.fixture
def table5_spec(mlflow_store, nb201_built):
    raw = tomllib.loads(TABLE5.read_text())
    raw["table"] = {"path": str(nb201_built[0]), "sha256": nb201_built[1]}
    raw["experiment"]["results"] = "results/t5"
    path = mlflow_store / "table5.toml"
    path.write_text(dump_toml(raw))
    return path


@needs_nb201()
def test_run_returns_tidy_frames_in_spec_order_and_pins_the_overrides(
    table5_spec, mlflow_store, capsys
):
    done = harness.run(
        table5_spec,
        seeds=[7, 3, 5],
        strategies=["REINFORCE", "REA"],
        budget={"seconds": 3000},
    )
    assert capsys.readouterr().out == ""  # the library logs; only the CLI prints
    assert list(done.runs.strategy) == ["REA"] * 3 + ["REINFORCE"] * 3
    assert list(done.runs.seed) == [7, 3, 5] * 2
    assert {"final_arch", "target.C10 test", "evaluations", "stream.strategy"} <= set(done.runs)
    evaluations = done.evaluations
    assert list(dict.fromkeys(evaluations.strategy)) == ["REA", "REINFORCE"]
    assert list(dict.fromkeys(evaluations[evaluations.strategy == "REA"].seed)) == [7, 3, 5]
    per_run = evaluations[evaluations.completed].groupby(["strategy", "seed"], sort=False).size()
    assert list(per_run) == list(done.runs.evaluations)
    assert (evaluations[evaluations.told].end_s <= 3000).all()
    # REINFORCE keeps the evaluation that crosses the budget (completed, never told)
    kept = evaluations[evaluations.completed & ~evaluations.told]
    assert set(kept.strategy) == {"REINFORCE"} and (kept.end_s > 3000).all()
    # overrides never write the spec's own results folder: a sibling names them
    differs = "t5+seeds-7_3_5+strategies-REINFORCE-REA+budget-seconds-3000"
    assert done.files[0] == mlflow_store / "results" / differs / "report.md"
    assert not (mlflow_store / "results" / "t5").exists()
    assert {"table.md", "table.tex", "per-seed.csv", "anytime-nb201-table5.svg"} <= {
        path.name for path in done.files
    }

    again = harness.results("nb201-table5")
    assert again.run_id == done.run_id and again.runs.equals(done.runs)
    assert harness.results(done.run_id).evaluations.equals(evaluations)
    with pytest.raises(HarnessError, match="no record of this spec as it is"):
        harness.results(str(table5_spec))  # a spec stands for its own record, not overrides
    assert again.resolved["overrides"] == {
        "seeds": [7, 3, 5],
        "strategies": ["REINFORCE", "REA"],
        "budget": {"seconds": 3000},
    }
    listed = harness.ls()
    row = listed[listed.run_id == done.run_id].iloc[0]
    assert row.experiment == "nb201-table5" and row.status == "FINISHED"
    assert '"seconds": 3000' in row.overrides


def test_results_of_an_unknown_experiment_says_how_to_find_one(mlflow_store):
    with pytest.raises(HarnessError, match="no MLflow store at .*mlflow.db"):
        harness.results("never-ran")  # and no empty store is created on the way
    assert not (mlflow_store / "mlflow.db").exists()
    from mlflow.tracking import MlflowClient

    MlflowClient(os.environ["MLFLOW_TRACKING_URI"]).search_experiments()  # an empty store
    with pytest.raises(HarnessError, match="harness ls"):
        harness.results("never-ran")


def test_load_table_pins_its_bytes():
    table = harness.load_table(DIGITS_TABLE)
    assert table.space == "nb201" and len(table.archs) == 15625
    with pytest.raises(HarnessError, match="sha256"):
        harness.load_table(DIGITS_TABLE, sha256="0" * 64)


def test_import_harness_loads_neither_mlflow_nor_torch():
    code = "import sys, harness; print(sorted({'mlflow', 'torch', 'pandas'} & set(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.strip() == "[]", done.stderr


@needs_nbgraph()
def test_one_spec_runs_on_nb201_and_nas_bench_graph_changing_only_the_benchmark_lines(
    mlflow_store, plugin_site, monkeypatch
):
    """The NAS-Bench-Graph comparison spec, retargeted to the shipped NB201 table: the
    same strategies (the plugin local search included) and report, other [table] and
    [search] benchmark lines."""
    monkeypatch.syspath_prepend(str(plugin_site))
    on_graphs = tomllib.loads(CORA.read_text())
    on_graphs["table"]["path"] = str((CORA.parent / on_graphs["table"]["path"]).resolve())
    on_graphs["experiment"]["results"] = "results/cora"
    on_cells = {
        **on_graphs,
        "table": {"path": str(DIGITS_TABLE), "space": "nb201"},
        "search": {**on_graphs["search"], "dataset": "digits", "schedule": "e4", "epoch": 4},
        "experiment": {**on_graphs["experiment"], "results": "results/digits"},
    }
    changed = {
        (section, key)
        for section, body in on_graphs.items()
        if isinstance(body, dict)
        for key in set(body) | set(on_cells[section])
        if body.get(key) != on_cells[section].get(key)
    }
    assert all(on_graphs[s] == on_cells[s] for s in on_graphs if not isinstance(on_graphs[s], dict))
    assert {s for s, _ in changed} == {"table", "search", "experiment"}
    assert {k for s, k in changed if s == "search"} == {"dataset", "schedule", "epoch"}
    assert {k for s, k in changed if s == "experiment"} == {"results"}  # where files go
    seeds = {"start": 0, "count": 3}
    for name, raw in (("graphs", on_graphs), ("cells", on_cells)):
        path = mlflow_store / f"{name}.toml"
        path.write_text(dump_toml(raw))
        done = harness.run(path, seeds=seeds, budget={"evaluations": 20})
        assert set(done.runs.strategy) == {"RS", "REA", "REINFORCE", "LS"}
        assert (done.runs.evaluations == 20).all()
        # NAS-Bench-Graph records no training times: its anytime clock is evaluations
        auc = pd.read_csv(done.files[0].parent / "anytime-auc.csv")
        unit = "evaluations" if name == "graphs" else "s"
        assert set(auc.unit) == {unit}
        assert name == "cells" or auc.budget.max() == 20


def test_a_table_without_sha256_runs_marked_unpinned_in_the_log_the_record_and_report(
    mlflow_store, caplog
):
    from harness.record import load_experiment

    raw = tomllib.loads((REPO / "benchmarks" / "digits" / "compare.toml").read_text())
    raw["table"] = {"path": str(DIGITS_TABLE)}  # no sha256
    spec = mlflow_store / "unpinned.toml"
    spec.write_text(dump_toml(raw))
    with caplog.at_level("WARNING", logger="harness"):
        done = harness.run(spec, seeds=[0, 1], strategies=["RS"], results="out")
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("UNPINNED" in m and "sha256 = " in m for m in warned), warned
    assert load_experiment(done.run_id).params["table_pinned"] == "false"
    report = (mlflow_store / "out" / "report.md").read_text()
    assert "**UNPINNED**: the spec of digits-compare pins no table sha256" in report

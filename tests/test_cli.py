"""The harness CLI end to end on the real NB201 table: run, record, report, rerun, bad input."""

from __future__ import annotations

import re

import pandas as pd
import pytest
from conftest import assert_clean_failure, folder_bytes, harness_cli, needs_nb201

from harness.cli import main

pytestmark = needs_nb201()


def run_ids(capsys) -> str:
    out = capsys.readouterr().out
    return re.search(r"MLflow experiment run (\w+)", out).group(1)


def test_run_writes_results_and_records_every_pinned_fact(small_spec, mlflow_store, capsys):
    from mlflow.tracking import MlflowClient

    assert main(["run", str(small_spec())]) == 0
    parent_id = run_ids(capsys)
    out = mlflow_store / "results" / "table5"
    table = pd.read_csv(out / "table.csv")
    assert set(table.method) == {"REA", "RS", "REINFORCE", "BOHB"}
    assert (table[table.method == "REA"].n == 12).all()
    assert (out / "anytime-nb201-table5.png").read_bytes()[:4] == b"\x89PNG"
    md = (out / "report.md").read_text()
    assert "two-sided Wilcoxon signed-rank tests" in md and "(anytime-nb201-table5.png)" in md
    assert "| REA (published) | 91.19 ± 0.31" in md and "known deviations" in md

    client = MlflowClient()
    parent = client.get_run(parent_id)
    for key in (
        "spec_hash",
        "table_sha256",
        "protocol_hash",
        "split_hash",
        "cost_model",
        "budget.seconds",
        "budget.overrun",
        "search.seed_policy",
        "benchmark_id",
    ):
        assert key in parent.data.params, key
    for key in (
        "env.git.commit",
        "env.git.dirty",
        "env.cpu.model",
        "env.cpu.isa",
        "env.package.numpy",
        "env.package.mlflow",
        "env.package.h5py",
        "env.python",
        "env.os",
        "env.threads.OMP_NUM_THREADS",
        "env.torch.gpu",
    ):
        assert key in parent.data.tags, key
    children = client.search_runs(
        [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent_id}'"
    )
    assert sorted(c.data.params["strategy.kind"] for c in children) == [
        "bohb",
        "random_search",
        "regularized_evolution",
        "reinforce",
    ]
    rea = next(c for c in children if c.data.tags["harness.strategy"] == "REA")
    assert rea.data.params["strategy.population_size"] == "10"
    assert "benchmark=SeedSequence" in rea.data.params["streams"]


def test_same_spec_twice_gives_identical_trajectories_and_byte_identical_results(
    small_spec, mlflow_store, capsys
):
    spec = small_spec()
    assert main(["run", str(spec), "--results", "first"]) == 0
    first = run_ids(capsys)
    assert main(["run", str(spec), "--results", "second", "--executor", "processes"]) == 0
    second = run_ids(capsys)
    assert folder_bytes(mlflow_store / "first") == folder_bytes(mlflow_store / "second")
    from harness.record import load_experiment, load_trajectories

    one, two = load_experiment(first), load_experiment(second)
    for name in one.children:
        left = load_trajectories(one.children[name])
        right = load_trajectories(two.children[name])
        pd.testing.assert_frame_equal(left, right, check_exact=True)
        assert len(left) > 12 * 50


def test_report_rewrites_the_runs_results_from_records_alone(small_spec, mlflow_store, capsys):
    assert main(["run", str(small_spec())]) == 0
    parent = run_ids(capsys)
    assert main(["report", parent, "--out", "by-id"]) == 0
    assert main(["report", "nb201-table5"]) == 0
    assert "report: results/nb201-table5/report.md" in capsys.readouterr().out
    written = folder_bytes(mlflow_store / "results" / "table5")
    assert len(written) > 10
    assert folder_bytes(mlflow_store / "by-id") == written
    assert folder_bytes(mlflow_store / "results" / "nb201-table5") == written


def test_rerun_reproduces_a_recorded_seed_and_catches_a_tampered_record(
    small_spec, mlflow_store, capsys
):
    from harness.record import load_experiment

    assert main(["run", str(small_spec())]) == 0
    record = load_experiment(run_ids(capsys))
    child = record.children["REA"]
    assert main(["rerun", child, "--seed", "7"]) == 0
    assert "REA seed 7: identical to the record" in capsys.readouterr().out

    stored = next(mlflow_store.glob(f"mlartifacts/{child}/artifacts/trajectories.parquet"))
    frame = pd.read_parquet(stored)
    frame.loc[(frame.seed == 7) & (frame.row == 3), "arch_index"] += 1
    frame.to_parquet(stored, index=False)
    assert main(["rerun", child, "--seed", "7"]) == 1
    assert "DIFFERENT at row 3, column arch_index" in capsys.readouterr().out


@pytest.mark.parametrize(
    "edit, needles",
    [
        (lambda r: r["strategy"][0].update(kind="bayesopt"), ["strategy.0.kind", "bayesopt"]),
        (
            lambda r: r["strategy"][0]["params"].update(mutation_rate=0.1),
            ["strategy.0.params", "mutation_rate"],
        ),
        (lambda r: r["table"].update(sha256="0" * 64), ["sha256", "0" * 64]),
        (lambda r: r["table"].update(path="missing.h5"), ["missing.h5"]),
        (lambda r: r["search"].update(signal="x-test/loss"), ["x-test"]),
    ],
)
def test_bad_input_fails_with_one_line_and_writes_nothing(small_spec, mlflow_store, edit, needles):
    done = harness_cli("run", str(small_spec(edit)), cwd=mlflow_store)
    assert_clean_failure(done, *needles)
    assert not (mlflow_store / "results").exists()
    assert not (mlflow_store / "mlflow.db").exists()


def test_corrupt_table_and_malformed_spec_fail_cleanly(small_spec, mlflow_store):
    corrupt = mlflow_store / "corrupt.h5"
    corrupt.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)
    spec = small_spec(
        lambda r: r["table"].update(path=str(corrupt), sha256=None) or r["table"].pop("sha256")
    )
    assert_clean_failure(harness_cli("run", str(spec), cwd=mlflow_store), "corrupt.h5")
    broken = mlflow_store / "broken.toml"
    broken.write_text("[experiment\n")
    assert_clean_failure(harness_cli("run", str(broken), cwd=mlflow_store), "broken.toml", "TOML")


def test_info_describes_the_table_and_rejects_a_bad_arch_string(nb201_built, tmp_path):
    path = str(nb201_built[0])
    done = harness_cli("info", path, cwd=tmp_path)
    assert done.returncode == 0 and nb201_built[1] in done.stdout
    arch = (
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|"
        "+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
    )
    done = harness_cli("info", path, "--arch", arch, cwd=tmp_path)
    assert done.returncode == 0 and "cifar10/hp200/ori-test/accuracy" in done.stdout
    assert_clean_failure(
        harness_cli("info", path, "--arch", "|conv_5x5~0|", cwd=tmp_path), "conv_5x5"
    )

"""``harness predict``: NASLib's predictor protocol, the learning-curve rules, bad input."""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, assert_clean_failure, dump_toml, harness_cli, needs_nb201

from harness.api import predict
from harness.estimators.learning_curves import Curves, rule_cost, rule_scores
from harness.predictors.protocol import load_predict_spec, prepare, run_protocol, trial_sets

DIGITS_SPEC = REPO / "benchmarks" / "predictors" / "digits.toml"
DIGITS_TABLE = REPO / "tabular" / "nb201-digits.h5"
DIGITS_ZC = REPO / "tabular" / "nb201-digits-zc.h5"
FAST = {  # predictors small enough for a test: every kind, little work
    "gp": ("gp", {}),
    "random_forest": ("random_forest", {"trees": 10}),
    "lightgbm": ("lightgbm", {"rounds": 10}),
    "mlp_ensemble": ("mlp_ensemble", {"members": 2, "num_layers": 2, "epochs": 5}),
    "lightgbm-zen": ("lightgbm", {"rounds": 10, "proxies": ["zen"]}),
    "zen": ("proxy", {"feature": "zen"}),
    "valid-e1": ("early_accuracy", {"epoch": 1}),
    "sotl-e2": ("sotl", {"epoch": 2}),
    "sotle-e2": ("sotle", {"epoch": 2}),
    "lc_extrapolation-e3": ("lc_extrapolation", {"epoch": 3}),
}


def write_spec(folder: Path, edit=None) -> Path:
    """The shipped digits spec, small: 2 trials, sizes 5 and 20, a test set of 30."""
    raw = tomllib.loads(DIGITS_SPEC.read_text())
    raw["predict"].update(trials=2, train_sizes=[5, 20], test_size=30, results="report")
    raw["table"]["path"] = str(DIGITS_TABLE)
    raw["feature"][0]["estimate"] = str(DIGITS_ZC)
    raw["predictor"] = [
        {"name": name, "kind": kind, "params": params} for name, (kind, params) in FAST.items()
    ]
    if edit:
        edit(raw)
    path = folder / "predict.toml"
    path.write_text(dump_toml(raw))
    return path


def test_learning_curve_rules_read_the_curve_up_to_their_epoch():
    loss = np.array([[2.0, 1.0, 0.5], [3.0, 2.0, 0.2]])
    times = np.array([[1.0, 2.0, 3.0], [1.0, 1.0, 1.0]])
    accuracy = 0.2 + 0.1 * np.log([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]]) * np.array([[1.0], [2.0]])
    curves = Curves(
        "d",
        "e3",
        "0",
        (1, 2, 3),
        {
            ("train", "loss"): loss,
            ("valid", "accuracy"): accuracy,
            ("train", "epoch_time_s"): times,
        },
    )
    np.testing.assert_allclose(rule_scores(curves, "sotl", 2), [-3.0, -5.0])
    np.testing.assert_allclose(rule_scores(curves, "sotle", 2), [-1.0, -2.0])
    np.testing.assert_allclose(rule_scores(curves, "early_accuracy", 1), [0.2, 0.2])
    # an exactly logarithmic curve is extrapolated exactly to the last epoch
    np.testing.assert_allclose(rule_scores(curves, "lc_extrapolation", 2), accuracy[:, 2])
    np.testing.assert_allclose(rule_cost(curves, 2), [3.0, 2.0])


def test_trials_draw_a_fixed_test_set_and_nested_training_sets_from_the_pool(tmp_path):
    prepared = prepare(load_predict_spec(write_spec(tmp_path)))
    test, train = trial_sets(prepared, 0)
    assert len(test) == 30 and len(train) == 20
    assert len(set(test) | set(train)) == 50  # distinct, and disjoint
    assert set(test) | set(train) <= set(prepared.pool)
    again = trial_sets(prepared, 0)
    np.testing.assert_array_equal(np.concatenate(again), np.concatenate([test, train]))
    assert not np.array_equal(trial_sets(prepared, 1)[0], test)
    # the zen feature scores only some cells: the pool leaves the others out
    assert len(prepared.pool) < prepared.spec.space.num_archs


def test_protocol_is_deterministic_and_rules_need_no_training_set(tmp_path):
    prepared = prepare(load_predict_spec(write_spec(tmp_path)))
    first, second = run_protocol(prepared), run_protocol(prepared)
    judged = ["trial", "predictor", "train_size", "rho", "tau", "train_cost_s", "query_cost_s"]
    assert first[judged].equals(second[judged])
    assert len(first) == 2 * 2 * len(FAST)
    rules = first[first["kind"].isin(["proxy", "early_accuracy", "sotl", "sotle"])]
    assert (rules["fit_s"] == 0).all() and (rules["train_cost_s"] == 0).all()
    for _, mine in rules.groupby(["predictor", "trial"]):
        assert mine["rho"].nunique() == 1  # one test set per trial, whatever the size
    fitted = first[first["predictor"] == "gp"]
    assert (fitted["train_cost_s"] > 0).all() and fitted["rho"].notna().all()
    assert (first.loc[first["kind"] == "sotl", "query_cost_s"] > 0).all()


def test_predict_records_and_writes_the_report(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    spec = write_spec(tmp_path, lambda raw: raw.update(predictor=raw["predictor"][:1]))
    done = predict(spec)
    assert [f.name for f in done.files] == [
        "report.md",
        "summary.csv",
        "trials.csv",
        "predictor-timings.csv",
        "curves.png",
        "curves.svg",
    ]
    assert "Spearman ρ against training-set size" in done.files[0].read_text()
    assert "fit_s" not in (tmp_path / "report" / "summary.csv").read_text()  # host times
    assert "fit_s" in (tmp_path / "report" / "predictor-timings.csv").read_text()
    from mlflow.tracking import MlflowClient

    run = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}").get_run(done.run_id)
    assert run.data.tags["harness.role"] == "predict"
    assert run.data.params["table_sha256"] == load_predict_spec(spec).table_sha256
    assert run.data.params["predictor.gp.kind"] == "gp"
    assert "gp.rho" in run.data.metrics


def test_a_training_size_larger_than_the_table_ends_in_one_line(tmp_path):
    spec = write_spec(tmp_path, lambda raw: raw["predict"].update(train_sizes=[5, 20_000]))
    done = harness_cli("predict", str(spec), cwd=tmp_path)
    assert_clean_failure(done, "predict.train_sizes", "20,000", "lower the sizes")
    assert not (tmp_path / "report").exists()


def test_a_learning_curve_rule_on_a_table_without_curves_ends_in_one_line(tmp_path):
    def on_the_estimate_file(raw):  # the zero-cost file is a table with no training curves
        raw["table"].update(
            path=str(DIGITS_ZC),
            sha256=raw["feature"][0]["sha256"],
            metric="digits/init/zen/score",
            cost="digits/init/zen/cost_s",
            curves="digits/init",
        )
        raw["predictor"] = [{"name": "sotl", "kind": "sotl", "params": {"epoch": 2}}]
        raw.pop("feature")

    done = harness_cli("predict", str(write_spec(tmp_path, on_the_estimate_file)), cwd=tmp_path)
    assert_clean_failure(done, "learning-curve rule", "digits/init/")
    assert not (tmp_path / "report").exists()


@needs_nb201()
def test_a_learning_curve_rule_on_nb201_ends_in_one_line(tmp_path, nb201_built):
    """NB201's import keeps each schedule's final accuracy only: no curve to read."""

    def on_nb201(raw):
        raw["table"].update(
            path=str(nb201_built[0]),
            sha256=nb201_built[1],
            metric="cifar10-valid/hp200/x-valid/accuracy",
            cost="cifar10-valid/hp200/train/total_time_s",
            curves="cifar10-valid/hp12",
        )
        raw["table"].pop("curve_seed")
        raw["predictor"] = [{"name": "valid-e1", "kind": "early_accuracy", "params": {"epoch": 1}}]
        raw.pop("feature")

    done = harness_cli("predict", str(write_spec(tmp_path, on_nb201)), cwd=tmp_path)
    assert_clean_failure(done, "cifar10-valid/hp12/valid/accuracy", "does not hold")
    assert not (tmp_path / "report").exists()


def test_a_feature_estimate_file_of_another_sha256_ends_in_one_line(tmp_path):
    def wrong_pin(raw):
        raw["feature"][0]["sha256"] = "0" * 64

    done = harness_cli("predict", str(write_spec(tmp_path, wrong_pin)), cwd=tmp_path)
    assert_clean_failure(done, "sha256")
    assert not (tmp_path / "report").exists()


def test_a_rule_without_curves_or_an_unknown_feature_is_refused_when_read(tmp_path):
    def no_curves(raw):
        raw["table"].pop("curves")

    with pytest.raises(Exception, match=r"\[predictor.6.kind\].*needs \[table\] curves"):
        load_predict_spec(write_spec(tmp_path, no_curves))

    def unknown_feature(raw):
        raw["predictor"][0]["params"] = {"proxies": ["synflow"]}

    with pytest.raises(Exception, match=r"names no \[\[feature\]\] 'synflow'"):
        load_predict_spec(write_spec(tmp_path, unknown_feature))


def test_every_problem_of_a_predict_spec_is_listed_at_once_and_nothing_is_written(tmp_path):
    def many(raw):
        raw["features"] = raw["feature"]  # a typo of the section's name
        raw["predict"]["test_size"] = 1
        raw["table"]["curves"] = "digits"  # [table] is invalid: the rules' curves wait for it
        raw["feature"][0]["sha256"] = "xyz"
        raw["predictor"][1].update(name="random forest", kind="random_forrest")
        raw["predictor"][4]["params"] = {"proxies": ["zen"], "rounds": 0}

    spec = write_spec(tmp_path, many)
    done = harness_cli("predict", str(spec), cwd=tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    first, *lines = done.stderr.strip().splitlines()
    assert first == f"harness: error: {spec}: 7 problems; fix each, then run again:"
    assert all(line.startswith(f"  {spec}: [") for line in lines)
    assert [line.split("[")[1].split("]")[0] for line in lines] == [
        "features",
        "predict.test_size",
        "table.curves",
        "feature.0.sha256",
        "predictor.1.name",
        "predictor.1.kind",
        "predictor.4.params.rounds",
    ]
    assert "did you mean 'feature'?" in lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["predict.toml"]


def test_a_missing_library_names_the_extra(tmp_path, monkeypatch):
    import sys

    from harness.errors import ConfigError
    from harness.predictors.models import LightGBM

    prepared = prepare(load_predict_spec(write_spec(tmp_path)))
    monkeypatch.setitem(sys.modules, "lightgbm", None)  # imports as if it were not installed
    model = LightGBM(prepared.inputs)
    model.check()
    with pytest.raises(ConfigError, match=r"needs lightgbm.*'predictors' extra"):
        model.fit(prepared.pool[:5], prepared.target[prepared.pool[:5]], np.random.default_rng(0))


def test_a_rule_epoch_the_curves_lack_names_the_predictor(tmp_path):
    def late(raw):
        raw["predictor"][6]["params"] = {"epoch": 9}

    with pytest.raises(Exception, match=r"\[predictor.6\].*epoch 9.*epochs 1..4"):
        prepare(load_predict_spec(write_spec(tmp_path, late)))


# --- NB201 learning curves (extract E): rules only, no training set --------------------------

CURVES_SPEC = REPO / "benchmarks" / "predictors" / "nb201-curves.toml"


@pytest.fixture(scope="module")
def curves_table(tmp_path_factory) -> tuple[Path, str]:
    from conftest import NB201_SOURCE

    from harness.importers.nb201_curves import build_nb201_curves_table

    if not (NB201_SOURCE / "E_masters-thesis_curves_arch0-199.csv").is_file():
        pytest.skip(f"NB201 extracts not found in {NB201_SOURCE}")
    path = tmp_path_factory.mktemp("curves") / "nb201-curves.h5"
    return path, build_nb201_curves_table(NB201_SOURCE, path)


def write_curves_spec(folder: Path, table: tuple[Path, str], edit=None) -> Path:
    """The shipped NB201 curves spec, reading the module's table, reporting in ``folder``."""
    raw = tomllib.loads(CURVES_SPEC.read_text())
    raw["predict"]["results"] = "report"
    raw["table"].update(path=str(table[0]), sha256=table[1])
    raw["table"].pop("build")
    if edit:
        edit(raw)
    path = folder / "curves.toml"
    path.write_text(dump_toml(raw))
    return path


def test_rules_on_nb201_curves_judge_the_200_cells_of_e(tmp_path, curves_table):
    import json

    import pandas as pd
    from conftest import NB201_SOURCE
    from scipy import stats

    prepared = prepare(load_predict_spec(write_curves_spec(tmp_path, curves_table)))
    np.testing.assert_array_equal(prepared.pool, np.arange(200))
    test, train = trial_sets(prepared, 0)
    assert sorted(test.tolist()) == list(range(200)) and len(train) == 0
    rows = run_protocol(prepared).set_index("predictor")
    assert set(rows["train_size"]) == {0} and set(rows["train_cost_s"]) == {0.0}
    extract = pd.read_csv(NB201_SOURCE / "E_masters-thesis_curves_arch0-199.csv")
    valid = np.array([json.loads(t) for t in extract["val_accs"]], dtype=np.float32)
    for epoch in (1, 12, 100):
        rho = stats.spearmanr(valid[:, epoch - 1], valid[:, -1]).statistic
        assert rows.loc[f"valid-e{epoch}", "rho"] == pytest.approx(rho, abs=1e-12)
    assert rows.loc["lc_extrapolation-e50", "rho"] > rows.loc["valid-e50", "rho"]


def test_sotl_on_nb201_curves_ends_in_one_line_naming_the_loss_curve(tmp_path, curves_table):
    def sotl(raw):
        raw["predictor"] = [{"name": "sotl-e5", "kind": "sotl", "params": {"epoch": 5}}]

    done = harness_cli(
        "predict", str(write_curves_spec(tmp_path, curves_table, sotl)), cwd=tmp_path
    )
    assert_clean_failure(done, "cifar10-valid/hp200/train/loss", "does not hold")
    assert not (tmp_path / "report").exists()


def test_a_model_predictor_without_a_training_set_is_refused_in_one_line(tmp_path, curves_table):
    def with_gp(raw):
        raw["predictor"].append({"name": "gp", "kind": "gp"})

    done = harness_cli(
        "predict", str(write_curves_spec(tmp_path, curves_table, with_gp)), cwd=tmp_path
    )
    assert_clean_failure(done, "[predictor.11.kind]", "learns from a training set", "[0]")
    assert not (tmp_path / "report").exists()


@pytest.mark.parametrize(
    ("edit", "needles"),
    [
        (lambda raw: raw["predict"].update(trials=3), ("predict.trials", "whole pool", "200")),
        (lambda raw: raw["predict"].update(train_sizes=[0, 5]), ("train_sizes", "[0]")),
        (lambda raw: raw["table"].pop("curve_split"), ("cifar10-valid/hp200/valid/accuracy",)),
        (lambda raw: raw["table"].update(curve_split="ori-test"), ("curve_split", "sealed")),
    ],
    ids=["trials-on-the-whole-pool", "zero-among-sizes", "no-curve-split", "test-curve-split"],
)
def test_a_curves_spec_that_cannot_run_ends_in_one_line(tmp_path, curves_table, edit, needles):
    done = harness_cli(
        "predict", str(write_curves_spec(tmp_path, curves_table, edit)), cwd=tmp_path
    )
    assert_clean_failure(done, *needles)
    assert not (tmp_path / "report").exists()


def test_a_missing_table_is_built_as_table_build_says(tmp_path, curves_table):
    from conftest import NB201_SOURCE

    def built_here(raw):
        raw["table"].update(
            path="tables/curves.h5",
            build={"importer": "nb201-curves", "source": str(NB201_SOURCE)},
        )

    spec = load_predict_spec(write_curves_spec(tmp_path, curves_table, built_here))
    assert spec.resolved["table"]["build"] == {"importer": "nb201-curves", "dataset": None}
    prepared = prepare(spec)
    assert prepared.table.sha256 == curves_table[1]
    assert (tmp_path / "tables" / "curves.h5").read_bytes() == curves_table[0].read_bytes()

"""Evaluators load through a registry, as strategies do: the spec names a kind."""

from __future__ import annotations

import os

import numpy as np
from conftest import REPO, assert_clean_failure, harness_cli

from harness.evaluators import BUILTIN_EVALUATORS, EvaluatorSetup, evaluator_class
from harness.evaluators.live import LiveEvaluator
from harness.evaluators.tabular import TabularEvaluator
from harness.experiment import Benchmark
from harness.record import load_experiment, newest_experiment_run
from harness.spec import load_spec
from harness.table import Table
from harness.values import Proposal, Resume

PLUGIN = '''
from harness.evaluators.tabular import TabularEvaluator


class Lookup(TabularEvaluator):
    """The tabular evaluator under another name: a plugin as a user would write one."""
'''


def test_the_builtin_kinds_name_the_tabular_and_the_live_evaluator():
    assert evaluator_class("tabular") is TabularEvaluator
    assert evaluator_class("live") is LiveEvaluator and LiveEvaluator.trains
    assert not TabularEvaluator.trains and set(BUILTIN_EVALUATORS) == {"tabular", "live"}


def test_a_spec_that_names_the_default_evaluator_keeps_its_hash(small_spec):
    plain = load_spec(small_spec())
    named = load_spec(small_spec(lambda r: r["search"].update(evaluator="tabular"), "named.toml"))
    assert plain.spec_hash == named.spec_hash and plain.search.evaluator == "tabular"
    live = load_spec(small_spec(lambda r: r["search"].update(evaluator="live"), "live.toml"))
    assert live.spec_hash != plain.spec_hash and live.search.evaluator == "live"


def test_a_spec_naming_live_trains_under_the_tables_protocol(small_spec):
    spec_path = small_spec(lambda r: r["search"].update(evaluator="live"), "live.toml")
    digits = REPO / "benchmarks" / "digits" / "compare.toml"
    spec = load_spec(digits)
    benchmark = Benchmark(
        spec, Table.load(spec.table_path, spec.table_sha256), EvaluatorSetup("live")
    )
    assert isinstance(benchmark.evaluator, LiveEvaluator) and benchmark.evaluator.trains
    assert load_spec(spec_path).search.evaluator == "live"


def test_an_unknown_evaluator_kind_ends_in_one_line(small_spec, mlflow_store):
    spec = small_spec(lambda r: r["search"].update(evaluator="surrogate"))
    done = harness_cli("run", str(spec), cwd=mlflow_store)
    assert_clean_failure(done, "[search.evaluator]", "unknown evaluator 'surrogate'")
    assert not (mlflow_store / "mlflow.db").exists()


def test_a_plugin_evaluator_runs_from_the_spec_and_its_origin_is_recorded(small_spec, mlflow_store):
    folder = mlflow_store / "plugins"
    folder.mkdir()
    (folder / "my_evaluators.py").write_text(PLUGIN)
    path = os.pathsep.join([str(folder), str(REPO)])
    spec = small_spec(lambda r: r["search"].update(evaluator="my_evaluators:Lookup"))
    done = harness_cli("run", str(spec), "--executor", "serial", cwd=mlflow_store, PYTHONPATH=path)
    assert done.returncode == 0, done.stderr
    plugin = load_experiment(newest_experiment_run("nb201-table5"))
    assert plugin.params["evaluator"] == "my_evaluators:Lookup"
    assert plugin.params["evaluator.class"] == "my_evaluators:Lookup"
    assert len(plugin.params["evaluator.source_sha256"]) == 64
    done = harness_cli("run", str(small_spec(name="plain.toml")), cwd=mlflow_store)
    assert done.returncode == 0, done.stderr
    plain = load_experiment(newest_experiment_run("nb201-table5"))
    assert plain.params["evaluator.class"] == "harness.evaluators.tabular:TabularEvaluator"
    # the plugin looks up the same table: every run finds what the built-in finds
    for name in plain.children:
        ours, theirs = plugin.runs[name], plain.runs[name]
        assert ours["final_arch_index"].tolist() == theirs["final_arch_index"].tolist()


def test_a_repeated_query_gets_the_observation_built_the_first_time():
    spec = load_spec(REPO / "benchmarks" / "digits" / "compare.toml")  # seed_policy 'draw'
    evaluator = Benchmark(spec, Table.load(spec.table_path, spec.table_sha256)).evaluator
    proposal = Proposal(7, spec.search.epoch)
    rng = np.random.default_rng(0)
    answers = [evaluator.evaluate(proposal, rng) for _ in range(12)]
    by_seed = {answer.seed: answer for answer in answers}
    assert len(by_seed) > 1  # the training is drawn for every query, as before
    for answer in answers:
        assert answer is by_seed[answer.seed]
        slot = evaluator.seeds.index(answer.seed)
        assert answer == evaluator._answer(7, spec.search.epoch, slot, 0)
    resumed = evaluator.evaluate(proposal, rng, Resume(1, answers[0].seed))
    assert resumed.resumed_from == 1 and resumed.cost_s < answers[0].cost_s

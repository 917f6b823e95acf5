"""Estimators inside search: score requests charged on the clock, NASWOT, the warm-ups."""

from __future__ import annotations

import tomllib

import numpy as np
import pytest
from conftest import REPO, assert_clean_failure, dump_toml, harness_cli, small_table_inputs

from harness.errors import StrategyError
from harness.simulator import simulate
from harness.strategies import make_strategy
from harness.testing import SyntheticBenchmark
from harness.values import Budget, Scored

SPEC = REPO / "benchmarks" / "proxy-search" / "digits.toml"


@pytest.fixture
def space():
    from harness.spaces import get_space

    return get_space("nb201")


def scorer(cost: float = 2.0, covered=lambda arch: True):
    """Scores that rank by index (higher index, higher score), at a fixed cost."""

    def score(arch: int) -> Scored:
        if not covered(arch):
            return Scored(arch, float("nan"), 0.0, scored=False)
        return Scored(arch, float(arch), cost)

    return score


EVALUATIONS = Budget(evaluations=30)


def run(space, kind, params, scores, workers=1, budget=EVALUATIONS, seed=0):
    strategy = make_strategy(kind, space, np.random.default_rng(seed), 4, params, (1, 2, 4))
    benchmark = SyntheticBenchmark(space, (1, 2, 4))
    rng = np.random.default_rng(1)
    return strategy, simulate(strategy, benchmark, rng, budget, workers, scores=scores)


def test_naswot_pays_for_every_score_before_it_trains_the_best(space):
    strategy, result = run(space, "naswot", {"candidates": 5}, scorer(2.0))
    assert result.scores == 5 and result.score_s == 10.0
    assert result.evaluations == 1 and result.trajectory.start_s == [10.0]
    assert result.trajectory.arch == [max(arch for arch, _ in strategy.phase.scored)]
    assert result.stop_reason == "strategy has nothing to propose"
    assert result.simulated_seconds == 10.0 + result.trajectory.cost_s[0]


def test_scores_run_in_parallel_on_free_workers(space):
    _, result = run(space, "naswot", {"candidates": 4}, scorer(2.0), workers=2)
    assert result.scores == 4 and result.score_s == 8.0
    assert result.trajectory.start_s == [4.0]  # two workers score two at a time


def test_draws_the_file_does_not_cover_are_drawn_again_at_no_cost(space):
    _, result = run(space, "naswot", {"candidates": 20}, scorer(1.0, lambda a: a % 2 == 0))
    assert result.score_s == 20.0 and result.scores > 20  # uncovered answers cost nothing
    assert result.trajectory.start_s == [20.0]


def test_a_score_past_the_seconds_budget_is_not_told_and_stops_the_search(space):
    _, result = run(space, "rea_warmup", {"warmup": 12}, scorer(1.0), budget=Budget(seconds=1000.0))
    assert result.scores == 12
    with pytest.raises(Exception, match="not a single evaluation fits"):
        run(space, "naswot", {"candidates": 100}, scorer(2.0), budget=Budget(seconds=50.0))


def test_rea_warmup_starts_from_the_best_scored_architectures(space):
    strategy, result = run(space, "rea_warmup", {"warmup": 50, "population_size": 10}, scorer())
    best = sorted((arch for arch, _ in strategy.phase.scored), reverse=True)[:10]
    assert result.trajectory.arch[:10] == best
    assert result.evaluations == 30 and result.scores == 50


def test_bananas_warmup_never_proposes_its_warm_start_twice(space):
    params = {"warmup": 30, "num_init": 5, "epochs": 5, "k": 5}
    strategy, result = run(space, "bananas_warmup", params, scorer())
    best = sorted((arch for arch, _ in strategy.phase.scored), reverse=True)[:5]
    assert result.trajectory.arch[:5] == best
    assert len(set(result.trajectory.arch)) == len(result.trajectory.arch)


def test_a_strategy_that_asks_without_an_estimator_ends_in_one_line(space):
    with pytest.raises(StrategyError, match="names no \\[estimate\\]"):
        run(space, "naswot", {"candidates": 3}, None)


def test_the_training_strategies_run_as_before_with_an_estimator_present(space):
    _, without = run(space, "regularized_evolution", {}, None)
    _, beside = run(space, "regularized_evolution", {}, scorer())
    assert without.trajectory == beside.trajectory and beside.scores == 0


# --- specs ------------------------------------------------------------------------------


def spec_file(folder, edit):
    raw = tomllib.loads(SPEC.read_text())
    raw["experiment"]["results"] = str(folder / "results")
    raw["table"]["path"] = str(REPO / "tabular" / "nb201-digits.h5")
    raw["estimate"]["file"] = str(REPO / "tabular" / "nb201-digits-zc.h5")
    raw["runs"]["seeds"] = {"start": 0, "count": 2}
    raw["strategy"] = [s for s in raw["strategy"] if s["name"] in ("RS", "NASWOT-10")]
    edit(raw)
    path = folder / "spec.toml"
    path.write_text(dump_toml(raw))
    return path


def test_a_spec_naming_an_estimate_file_of_another_sha256_ends_in_one_line(tmp_path):
    def other_pin(raw):
        raw["estimate"]["sha256"] = "ab" * 32

    done = harness_cli("run", str(spec_file(tmp_path, other_pin)), cwd=tmp_path)
    assert_clean_failure(done, "sha256")
    assert not (tmp_path / "results").exists()


def test_a_spec_naming_an_estimate_file_of_another_space_ends_in_one_line(tmp_path):
    from harness.table import write_table

    other = tmp_path / "toy-estimate.h5"
    digest = write_table(other, **small_table_inputs("toy"))

    def other_space(raw):
        raw["estimate"].update(file=str(other), sha256=digest)

    done = harness_cli("run", str(spec_file(tmp_path, other_space)), cwd=tmp_path)
    assert_clean_failure(done, "space 'toy'", "[estimate]")
    assert not (tmp_path / "results").exists()


def test_a_scoring_strategy_in_a_spec_without_an_estimate_ends_in_one_line(tmp_path):
    done = harness_cli(
        "run", str(spec_file(tmp_path, lambda raw: raw.pop("estimate"))), cwd=tmp_path
    )
    assert_clean_failure(done, "[strategy.1.kind]", "asks an estimator for scores")
    assert not (tmp_path / "results").exists()


def test_the_digits_spec_records_every_score_in_its_runs(tmp_path, mlflow_store):
    from harness.api import run as run_spec

    done = run_spec(spec_file(tmp_path, lambda raw: None), executor="serial")
    naswot = done.runs[done.runs["strategy"] == "NASWOT-10"]
    assert (naswot["scores"] == 10).all() and (naswot["score_s"] > 0).all()
    assert (naswot["evaluations"] == 1).all()
    searched = done.runs[done.runs["strategy"] == "RS"]
    assert (searched["scores"] == 0).all()

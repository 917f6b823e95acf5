"""Multi-fidelity over epochs: fidelities, continued trainings, SH / Hyperband / ASHA / BOHB."""

from __future__ import annotations

import dataclasses
from collections import Counter
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO

from harness.errors import ConfigError, StrategyError
from harness.evaluators.tabular import TabularEvaluator
from harness.experiment import Benchmark, run_experiment
from harness.record import trajectory_frame
from harness.simulator import simulate
from harness.spaces import get_space
from harness.spec import StrategySpec, load_spec
from harness.strategies import make_strategy
from harness.strategies.asha import ASHA
from harness.strategies.base import Strategy
from harness.strategies.hyperband import nearest_epoch, rung_budgets
from harness.table import Table, Variable, write_table
from harness.values import Budget, Proposal, VisibleObservation

DIGITS_SPEC = REPO / "benchmarks" / "digits" / "compare.toml"
LONG_EPOCHS = 27


@pytest.fixture(scope="module")
def digits() -> Benchmark:
    spec = load_spec(DIGITS_SPEC, {"seeds": [0, 1, 2]})
    return Benchmark(spec, Table.load(spec.table_path, spec.table_sha256))


def synthetic_table(path: Path) -> Path:
    """Every NB201 cell with 27-epoch curves of 3 seeds, per-seed epoch and validation times."""
    space = get_space("nb201")
    rng = np.random.default_rng(0)
    n, seeds, epochs = space.num_archs, 3, np.arange(1, LONG_EPOCHS + 1)
    final = rng.uniform(50, 95, n)[:, None, None]
    speed = rng.uniform(2, 10, n)[:, None, None]
    noise = rng.normal(0, 0.5, (n, seeds, LONG_EPOCHS))
    valid = (final * (1 - np.exp(-epochs / speed)) + noise).astype(np.float32)
    test = (valid + rng.normal(0, 0.5, valid.shape)).astype(np.float32)
    epoch_time = np.repeat(rng.uniform(1, 3, (n, seeds, 1)), LONG_EPOCHS, axis=2).astype(np.float32)
    eval_time = (epoch_time / 10).astype(np.float32)
    labels = ("0", "1", "2")
    full = np.ones(valid.shape, bool)

    def variable(values: np.ndarray, unit: str) -> Variable:
        return Variable(values, full, labels, tuple(epochs), unit, "synthetic")

    write_table(
        path,
        benchmark_id="synthetic-long",
        space="nb201",
        archs=space.strings(),
        variables={
            ("syn", "e27", "valid", "accuracy"): variable(valid, "percent"),
            ("syn", "e27", "test", "accuracy"): variable(test, "percent"),
            ("syn", "e27", "train", "epoch_time_s"): variable(epoch_time, "s"),
            ("syn", "e27", "valid", "eval_time_s"): variable(eval_time, "s"),
        },
        properties={},
        protocol={"e27": {"epochs": LONG_EPOCHS}},
        cost_model={"training": "sum of epoch times, plus the validation pass"},
        provenance={"sources": [], "builder": "tests/test_multifidelity.py"},
        notes={},
    )
    return path


SYNTHETIC_SPEC = """
[experiment]
name = "synthetic-long"
results = "out/synthetic-long"

[table]
path = "{table}"

[search]
dataset = "syn"
schedule = "e27"
epoch = 27
signal = "valid/accuracy"
seed_policy = "{policy}"
include_validation_time = {validation}
sealed = {{ test = "test/accuracy" }}

[budget]
seconds = 3000
overrun = "discard"

[runs]
seeds = [0, 1]
workers = {workers}

[[strategy]]
name = "HB"
kind = "hyperband"

[[strategy]]
name = "SH"
kind = "successive_halving"

[[strategy]]
name = "ASHA"
kind = "asha"

[[report.target]]
label = "test"
metric = "test/accuracy"
"""


@pytest.fixture(scope="module")
def long_table(tmp_path_factory) -> Path:
    return synthetic_table(tmp_path_factory.mktemp("synthetic") / "long.h5")


def synthetic(
    table: Path,
    folder: Path,
    workers: int = 1,
    policy: str = "draw",
    validation: bool = True,
    overrides: dict | None = None,
) -> Benchmark:
    path = folder / f"spec-{workers}-{policy}-{validation}.toml"
    path.write_text(
        SYNTHETIC_SPEC.format(
            table=table, policy=policy, validation=str(validation).lower(), workers=workers
        )
    )
    spec = load_spec(path, overrides)
    return Benchmark(spec, Table.load(table))


class Scripted(Strategy):
    """Asks the given proposals in order; remembers what it was told."""

    script: list[Proposal] = []

    def setup(self) -> None:
        self.queue = list(self.script)
        self.told: list[VisibleObservation] = []

    def ask(self) -> Proposal:
        return self.queue.pop(0)

    def tell(self, proposal: Proposal, observation: VisibleObservation) -> None:
        self.told.append(observation)


def scripted(benchmark: Benchmark, script: list[Proposal], seed: int = 0, workers: int = 1):
    Scripted.script = script
    strategy = Scripted(benchmark.space, np.random.default_rng(0), benchmark.spec.search.epoch)
    budget = Budget(evaluations=len(script))
    result = simulate(strategy, benchmark.evaluator, np.random.default_rng(seed), budget, workers)
    return strategy, result


# --- fidelities and continued trainings -----------------------------------------------


def test_every_epoch_the_table_measures_up_to_the_protocol_is_a_fidelity(
    digits, long_table, tmp_path
):
    assert digits.evaluator.fidelities == (1, 2, 3, 4)
    assert synthetic(long_table, tmp_path).evaluator.fidelities == tuple(range(1, 28))
    capped = synthetic(long_table, tmp_path)
    spec = dataclasses.replace(capped.spec, search=dataclasses.replace(capped.spec.search, epoch=9))
    assert Benchmark(spec, capped.table).evaluator.fidelities == tuple(range(1, 10))


def test_the_protocol_epoch_is_answered_as_by_a_single_fidelity_evaluator(digits):
    single = TabularEvaluator(digits.table, digits.space, digits.spec.search, (4,))
    for arch in (0, 77, 15624):
        a, b = np.random.default_rng(arch), np.random.default_rng(arch)
        assert digits.evaluator.evaluate(Proposal(arch, 4), a) == single.evaluate(
            Proposal(arch, 4), b
        )
        assert a.random() == b.random()


@pytest.mark.parametrize("workers", [1, 4])
def test_single_fidelity_strategies_run_as_on_a_single_fidelity_evaluator(digits, workers):
    """Offering epochs 1-3 changes nothing for a strategy that proposes only epoch 4."""
    spec = dataclasses.replace(digits.spec, workers=workers)
    multi = Benchmark(spec, digits.table)
    single = Benchmark(spec, digits.table)
    single.evaluator = TabularEvaluator(digits.table, digits.space, spec.search, (4,))
    for strategy in spec.strategies:
        a, b = multi.run(strategy, 11), single.run(strategy, 11)
        assert trajectory_frame([a]).equals(trajectory_frame([b]))
        assert a.targets == b.targets


def table_cost(table: Table, arch: int, seed: str, first: int, last: int) -> float:
    """Training epochs first..last of one seed, plus its validation pass at ``last``."""
    times = table.variable("digits", "e4", "train", "epoch_time_s")
    valid = table.variable("digits", "e4", "valid", "eval_time_s")
    slot = times.seeds.index(seed)
    trained = times.values[arch, slot, first - 1 : last].astype(np.float64).sum()
    return float(trained + valid.values[arch, slot, last - 1])


@pytest.mark.parametrize("seed", range(6))
def test_a_continuation_keeps_its_seed_and_is_charged_only_the_extra_epochs(digits, seed):
    arch = 1234
    strategy, result = scripted(digits, [Proposal(arch, 1), Proposal(arch, 4, trial=0)], seed)
    t = result.trajectory
    chosen = t.seed_used[0]
    assert t.seed_used == [chosen, chosen]
    assert t.trial == [0, 0] and t.resumed_from == [0, 1]
    assert t.cost_s[0] == pytest.approx(table_cost(digits.table, arch, chosen, 1, 1), rel=1e-12)
    assert t.cost_s[1] == pytest.approx(table_cost(digits.table, arch, chosen, 2, 4), rel=1e-12)
    valid = digits.table.variable("digits", "e4", "valid", "accuracy")
    curve = valid.values[arch, valid.seeds.index(chosen)]
    assert strategy.told[1].signal_curve == tuple(float(v) for v in curve)
    assert [o.trial for o in strategy.told] == [0, 0]
    assert result.epochs == 4  # epochs trained: 1, then 3 more


@pytest.mark.parametrize("seed", range(6))
def test_a_continuation_draws_no_seed_from_the_benchmark_stream(digits, seed):
    continued = [Proposal(9, 2), Proposal(9, 3, trial=0), Proposal(10, 2)]
    _, with_continuation = scripted(digits, continued, seed)
    _, without = scripted(digits, [Proposal(9, 2), Proposal(10, 2)], seed)
    assert with_continuation.trajectory.seed_used[2] == without.trajectory.seed_used[1]


def test_continuation_cost_without_validation_time_is_the_table_cost_difference(
    long_table, tmp_path
):
    benchmark = synthetic(long_table, tmp_path, policy="mean", validation=False)
    costs = benchmark.evaluator.costs
    _, result = scripted(benchmark, [Proposal(42, 3), Proposal(42, 27, trial=0)])
    assert result.trajectory.cost_s == [
        costs.cost(42, 3, None),
        costs.cost(42, 27, None) - costs.cost(42, 3, None),
    ]


@pytest.mark.parametrize(
    "script, workers, message",
    [
        (
            [Proposal(5, 1), Proposal(5, 2, trial=3)],
            1,
            r"continued trial 3 to epoch 2, but this run",
        ),
        ([Proposal(5, 1), Proposal(6, 2, trial=0)], 1, r"as architecture 6, but it trains 5"),
        ([Proposal(5, 2), Proposal(5, 2, trial=0)], 1, r"already trained to epoch 2"),
        ([Proposal(5, 1), Proposal(5, 2, trial=0)], 2, r"while it is still training"),
        ([Proposal(5, 1), Proposal(5, 2, trial=True)], 1, r"a trial is the int id"),
    ],
)
def test_a_continuation_this_run_never_paid_for_is_a_one_line_error(
    digits, script, workers, message
):
    with pytest.raises(StrategyError, match=message) as caught:
        scripted(digits, script, workers=workers)
    assert "\n" not in str(caught.value)


def test_the_incumbent_is_the_best_signal_at_the_highest_epoch_evaluated(digits):
    valid = digits.table.variable("digits", "e4", "valid", "accuracy").seed_mean()
    strong, weak = int(np.argmax(valid[:, 0])), int(np.argmin(valid[:, 3]))
    mean = dataclasses.replace(
        digits.spec.search,
        seed_policy=dataclasses.replace(digits.spec.search.seed_policy, kind="mean"),
    )
    benchmark = Benchmark(dataclasses.replace(digits.spec, search=mean), digits.table)
    _, result = scripted(benchmark, [Proposal(strong, 1), Proposal(weak, 4), Proposal(strong, 2)])
    assert valid[strong, 0] > valid[weak, 3]
    assert (result.incumbent_arch, result.incumbent_epoch) == (weak, 4)
    assert result.trajectory.incumbent_arch == [strong, weak, weak]


# --- the strategies -------------------------------------------------------------------


def test_rungs_follow_hpbandster_and_round_to_the_nearest_epoch():
    assert rung_budgets(1, 27, 3) == pytest.approx([1, 3, 9, 27])
    assert rung_budgets(12, 200, 3) == pytest.approx([200 / 9, 200 / 3, 200])
    assert nearest_epoch(200 / 9, range(1, 201)) == 22
    assert nearest_epoch(2.5, (1, 2, 3, 4)) == 2  # a tie goes to the lower epoch
    space = get_space("nb201")

    def make(fidelities: tuple[int, ...], **params: object) -> Strategy:
        rng = np.random.default_rng(0)
        return make_strategy("hyperband", space, rng, fidelities[-1], params, fidelities)

    assert make((1, 2, 3, 4)).rungs == [1, 4]
    assert make((1, 2, 3, 4), eta=2).rungs == [1, 2, 4]
    assert make((200,)).rungs == [200]  # one fidelity: one rung, random search at it
    with pytest.raises(ConfigError, match=r"\[max_epoch\] must be at most the protocol's epoch 4"):
        make((1, 2, 3, 4), max_epoch=5)
    with pytest.raises(ConfigError, match=r"\[min_epoch\] must be at most max_epoch"):
        make((1, 2, 3, 4), min_epoch=3, max_epoch=2)


def counts(result) -> Counter:
    t = result.trajectory
    return Counter((e, r > 0) for e, r in zip(t.epoch, t.resumed_from, strict=True))


def test_hyperband_brackets_have_hpbandsters_shapes_and_continue_survivors(long_table, tmp_path):
    benchmark = synthetic(long_table, tmp_path, overrides={"budget": {"seconds": 1e7}})
    strategy = StrategySpec(
        "HB", "hyperband", {"eta": 3.0, "min_epoch": 1, "max_epoch": None, "iterations": 4}
    )
    result = benchmark.run(strategy, 0).result
    # brackets: 27-9-3-1 on 1-3-9-27, 9-3-1 on 3-9-27, 6-2 on 9-27, 4 on 27
    assert counts(result) == {
        (1, False): 27,
        (3, True): 9,
        (3, False): 9,
        (9, True): 3 + 3,
        (9, False): 6,
        (27, True): 1 + 1 + 2,
        (27, False): 4,
    }
    assert result.stop_reason == "strategy has nothing to propose"
    assert result.incumbent_epoch == 27
    assert result.epochs == sum(
        e - r for e, r in zip(result.trajectory.epoch, result.trajectory.resumed_from, strict=True)
    )


def test_successive_halving_is_synchronous_within_a_bracket(long_table, tmp_path):
    benchmark = synthetic(long_table, tmp_path, workers=4, overrides={"budget": {"seconds": 1e7}})
    params = {"eta": 3.0, "min_epoch": 1, "max_epoch": None, "iterations": 1}
    result = benchmark.run(StrategySpec("SH", "successive_halving", params), 0).result
    t = result.trajectory
    assert counts(result) == {(1, False): 27, (3, True): 9, (9, True): 3, (27, True): 1}
    for lower, upper in ((1, 3), (3, 9), (9, 27)):
        done = max(end for end, e in zip(t.end_s, t.epoch, strict=True) if e == lower)
        assert min(s for s, e in zip(t.start_s, t.epoch, strict=True) if e == upper) == done


def test_asha_promotes_the_best_third_at_once_and_never_idles_a_worker(long_table, tmp_path):
    benchmark = synthetic(long_table, tmp_path, workers=4)
    result = benchmark.run(
        StrategySpec("ASHA", "asha", {"eta": 3.0, "min_epoch": 1, "max_epoch": None}), 0
    ).result
    t = result.trajectory
    by_worker: dict[int, list[tuple[float, float]]] = {}
    for worker, start, end, done in zip(t.worker, t.start_s, t.end_s, t.completed, strict=True):
        if done:
            by_worker.setdefault(worker, []).append((start, end))
    for spans in by_worker.values():
        spans.sort()
        assert all(a[1] == b[0] for a, b in pairwise(spans))
    assert any(r > 0 for r in t.resumed_from)


def test_asha_promotes_from_the_highest_rung_with_a_promotable_result():
    space = get_space("nb201")
    asha = ASHA(space, np.random.default_rng(0), 27, tuple(range(1, 28)))
    assert asha.rungs == [1, 3, 9, 27]
    for trial, signal in enumerate([5.0, 9.0, 7.0]):
        asha.tell(Proposal(trial, 1), VisibleObservation(trial, 1, signal, 1.0, {}, trial=trial))
    assert asha.ask() == Proposal(1, 3, 1)  # the best of three goes up
    assert asha.ask().trial is None  # floor(3 / 3) = 1 promotion only: a new architecture
    asha.tell(Proposal(1, 3, 1), VisibleObservation(1, 3, 9.5, 1.0, {}, trial=1, resumed_from=1))


@pytest.mark.parametrize("kind", ["successive_halving", "hyperband", "asha", "bohb"])
@pytest.mark.parametrize("workers", [1, 4, 16])
def test_multifidelity_runs_on_the_shipped_table_are_deterministic(digits, kind, workers):
    spec = dataclasses.replace(digits.spec, workers=workers)
    benchmark = Benchmark(spec, digits.table)
    strategy = StrategySpec(kind, kind, make_params(kind))
    first = trajectory_frame([benchmark.run(strategy, 7)])
    again = trajectory_frame([benchmark.run(strategy, 7)])
    assert first.equals(again)
    assert (first.resumed_from > 0).any()  # promotions continue trainings
    assert set(first.epoch) == {1, 4}


def make_params(kind: str) -> dict:
    from harness.strategies import resolve_params

    return resolve_params(kind, {})


@pytest.mark.parametrize("workers", [1, 4, 16])
def test_multifidelity_runs_on_a_long_table_are_deterministic(long_table, tmp_path, workers):
    benchmark = synthetic(long_table, tmp_path, workers=workers)
    for strategy in benchmark.spec.strategies:
        runs = [trajectory_frame([benchmark.run(strategy, 3)]) for _ in range(2)]
        assert runs[0].equals(runs[1])
        assert set(runs[0].epoch) <= {1, 3, 9, 27}
        assert (runs[0].resumed_from > 0).any()


def test_serial_and_worker_processes_give_identical_multifidelity_runs(long_table, tmp_path):
    benchmark = synthetic(long_table, tmp_path, workers=4, overrides={"seeds": list(range(4))})
    serial = run_experiment(benchmark.spec, benchmark, executor="serial")
    processes = run_experiment(benchmark.spec, benchmark, executor="processes", jobs=2)
    assert trajectory_frame(serial).equals(trajectory_frame(processes))


def test_records_pin_each_strategys_overrun_rule_and_which_evaluations_continued(
    mlflow_store, capsys
):
    import tomllib

    from conftest import dump_toml

    import harness
    from harness.cli import main
    from harness.record import load_experiment

    raw = tomllib.loads(DIGITS_SPEC.read_text())
    raw["table"]["path"] = str(REPO / "tabular" / "nb201-digits.h5")
    raw["experiment"]["results"] = "out/digits-mf"
    raw["runs"]["workers"] = 4
    raw["strategy"] = [
        {"name": "HB", "kind": "hyperband", "params": {"eta": 2}},
        {"name": "REINFORCE", "kind": "reinforce", "overrun": "keep"},
    ]
    path = mlflow_store / "digits-mf.toml"
    path.write_text(dump_toml(raw))
    done = harness.run(path, seeds=[1, 2], executor="serial")
    record = load_experiment(done.run_id)
    assert record.child_params["HB"]["overrun"] == "discard"
    assert record.child_params["REINFORCE"]["overrun"] == "keep"
    evaluations = done.evaluations
    hb = evaluations[evaluations.strategy == "HB"]
    assert (hb.resumed_from > 0).any() and set(hb.epoch) == {1, 2, 4}
    reinforce = evaluations[evaluations.strategy == "REINFORCE"]
    assert (reinforce.completed & ~reinforce.told).sum() >= 1  # kept, not told
    assert set(done.runs.final_epoch) == {4}
    assert "overrun discard (REINFORCE: keep)" in done.files[0].read_text()
    capsys.readouterr()
    assert main(["rerun", record.children["HB"], "--seed", "2"]) == 0
    assert "identical to the record" in capsys.readouterr().out

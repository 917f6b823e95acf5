"""Every built-in strategy on every space, and the baselines beside RS/REA/REINFORCE:
random sampling, BANANAS and TPE (Optuna).

Each kind runs through the simulator on every registered space with 1, 4 and 16 workers,
against a real table where one is available here (NB201: the shipped digits table;
NAS-Bench-Graph: the wheel's Cora and ogbn-proteins tables) and a made-up but
arch-dependent evaluator for NATS-Bench's size space, which has no table here.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections.abc import Mapping

import numpy as np
import pytest
from conftest import EXAMPLE, NBGRAPH_LIGHT, REPO

from harness.errors import ArchitectureError, ConfigError
from harness.evaluators.base import Evaluator
from harness.evaluators.tabular import TabularEvaluator
from harness.simulator import RunResult, simulate
from harness.spaces import BUILTIN_SPACES, SearchSpace, get_space
from harness.spaces.nb201 import NB201Space
from harness.strategies import (
    BUILTIN_STRATEGIES,
    make_strategy,
    needs_one_shot,
    resolve_params,
    strategy_class,
)
from harness.strategies.bananas import Bananas
from harness.strategies.mlp_ensemble import MLPEnsemble
from harness.strategies.random_sampling import UnproposedPool
from harness.table import Table
from harness.values import (
    Budget,
    MetricRef,
    Observation,
    Proposal,
    SearchProtocol,
    SeedPolicy,
    VisibleObservation,
)

#: every built-in kind runs on every space with 1, 4 and 16 workers
#: (weight-sharing kinds need a supernet set-up, those that ask for scores an estimate file)
KINDS = tuple(
    k
    for k in sorted(BUILTIN_STRATEGIES)
    if not needs_one_shot(k) and not strategy_class(k).asks_scores
)
#: BANANAS with short predictor training, so the all-spaces matrix stays fast
CHEAP = {"bananas": {"epochs": 10}}
NO_REPEATS = ("random_sampling", "bananas")
SPACES = sorted(BUILTIN_SPACES)
DIGITS = REPO / "tabular" / "nb201-digits.h5"


class MadeUpEvaluator(Evaluator):
    """Signal linear in the decisions plus noise, cost 1..13 s: for spaces with no table."""

    def __init__(self, space: SearchSpace, epoch: int) -> None:
        self.space, self.fidelities = space, (epoch,)
        decisions = space.decision_table()
        draws = np.random.default_rng(0)
        self.signal = decisions @ draws.normal(size=decisions.shape[1])
        self.signal += 0.1 * draws.normal(size=len(decisions))
        self.cost = 1.0 + (np.arange(space.num_archs) * 7919 % 13)

    def evaluate(self, proposal: Proposal, rng: np.random.Generator) -> Observation:
        arch = proposal.arch
        return Observation(
            arch, proposal.epoch, float(self.signal[arch]), float(self.cost[arch]), {}, {}
        )

    def final_metrics(self, arch: int, refs: Mapping[str, MetricRef]) -> dict[str, float]:
        return {}


def search(dataset: str, schedule: str, epoch: int, signal: str, policy: str) -> SearchProtocol:
    return SearchProtocol(
        dataset=dataset,
        schedule=schedule,
        epoch=epoch,
        signal=MetricRef(dataset, schedule, *signal.split("/")),
        seed_policy=SeedPolicy(policy),
        include_validation_time=False,
    )


@pytest.fixture(scope="module")
def evaluators(tmp_path_factory) -> dict[str, Evaluator]:
    """One evaluator per registered space: real tables where this machine has them."""
    found: dict[str, Evaluator] = {}
    digits = search("digits", "e4", 4, "valid/accuracy", "draw")
    found["nb201"] = TabularEvaluator(Table.load(DIGITS), get_space("nb201"), digits, (4,))
    if NBGRAPH_LIGHT is not None:
        from harness.importers.nbgraph import build_nbgraph_table

        folder = tmp_path_factory.mktemp("nbgraph")
        for name, dataset, epoch, metric in [
            ("nbgraph", "cora", 400, "accuracy"),
            ("nbgraph-proteins", "proteins", 500, "roc_auc"),
        ]:
            path = folder / f"{dataset}.h5"
            build_nbgraph_table(dataset, path)
            protocol = search(dataset, "nbgraph", epoch, f"valid/{metric}", "mean")
            found[name] = TabularEvaluator(Table.load(path), get_space(name), protocol, (epoch,))
    for name in SPACES:
        found.setdefault(name, MadeUpEvaluator(get_space(name), 12))
    return found


def run(
    kind: str,
    evaluator: Evaluator,
    workers: int,
    seed: int = 0,
    evaluations: int = 40,
    params: Mapping[str, object] | None = None,
) -> RunResult:
    """One simulated run; the benchmark stream is seeded apart from the strategy's."""
    strategy = make_strategy(
        kind, evaluator.space, np.random.default_rng(seed), evaluator.fidelities[0], params or {}
    )
    budget = Budget(evaluations=evaluations)
    return simulate(strategy, evaluator, np.random.default_rng(seed + 1000), budget, workers)


# --- every built-in strategy, every space, 1 to 16 workers --------------------------------


@pytest.mark.parametrize("workers", [1, 4, 16])
@pytest.mark.parametrize("name", SPACES)
@pytest.mark.parametrize("kind", KINDS)
def test_runs_on_every_space_with_async_workers_and_reruns_identically(
    evaluators, kind: str, name: str, workers: int
) -> None:
    evaluator = evaluators[name]
    first = run(kind, evaluator, workers, params=CHEAP.get(kind))
    again = run(kind, evaluator, workers, params=CHEAP.get(kind))
    archs = first.trajectory.arch
    assert first.evaluations == 40 and len(archs) == 40
    assert archs == again.trajectory.arch
    assert first.trajectory.signal == again.trajectory.signal
    assert first.incumbent_arch == again.incumbent_arch
    assert all(evaluator.space.check_index(arch) == arch for arch in archs)
    if kind in NO_REPEATS:
        assert len(set(archs)) == len(archs)
    assert run(kind, evaluator, workers, seed=1, params=CHEAP.get(kind)).trajectory.arch != archs


def load_local_search() -> type:
    spec = importlib.util.spec_from_file_location(
        "harness_local_search", EXAMPLE / "harness_local_search.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.LocalSearch


@pytest.mark.parametrize("name", SPACES)
def test_the_example_local_search_runs_with_16_workers_on_every_space(evaluators, name) -> None:
    evaluator = evaluators[name]
    local_search = load_local_search()
    runs = [
        simulate(
            local_search(evaluator.space, np.random.default_rng(3), evaluator.fidelities[0]),
            evaluator,
            np.random.default_rng(4),
            Budget(evaluations=300),
            16,
        )
        for _ in range(2)
    ]
    archs = runs[0].trajectory.arch
    assert archs == runs[1].trajectory.arch
    assert len(archs) == 300 and len(set(archs)) == 300


# --- random sampling -----------------------------------------------------------------


def test_random_sampling_visits_every_architecture_once_per_pass(evaluators) -> None:
    space = get_space("nbgraph-proteins")
    strategy = make_strategy("random_sampling", space, np.random.default_rng(0), 500, {})
    first_pass = [strategy.ask().arch for _ in range(space.num_archs)]
    assert sorted(first_pass) == list(range(space.num_archs))
    assert first_pass != sorted(first_pass)
    second_pass = [strategy.ask().arch for _ in range(space.num_archs)]
    assert sorted(second_pass) == list(range(space.num_archs))
    assert second_pass != first_pass and strategy.pool.passes == 2


def test_random_sampling_starts_where_random_search_does() -> None:
    space = get_space("nb201")
    sampling = make_strategy("random_sampling", space, np.random.default_rng(9), 12, {})
    search = make_strategy("random_search", space, np.random.default_rng(9), 12, {})
    assert sampling.ask() == search.ask()


def test_the_pool_never_materialises_the_space() -> None:
    pool = UnproposedPool(10**15)
    rng = np.random.default_rng(0)
    drawn = [pool.draw(rng) for _ in range(2000)]
    assert len(set(drawn)) == 2000 and len(pool) == 10**15 - 2000
    assert len(pool._at) <= 4000 and len(pool._where) <= 4000
    assert all(pool.is_taken(arch) for arch in drawn)


def test_the_pool_orders_uniformly() -> None:
    """Every element is equally likely at every position of a pass."""
    size, trials = 4, 8000
    counts = np.zeros((size, size))
    for seed in range(trials):
        pool, rng = UnproposedPool(size), np.random.default_rng(seed)
        for position in range(size):
            counts[position, pool.draw(rng)] += 1
    np.testing.assert_allclose(counts / trials, 1 / size, atol=0.02)


def test_the_pool_takes_chosen_architectures_and_refuses_taken_ones() -> None:
    pool, rng = UnproposedPool(5), np.random.default_rng(0)
    pool.take(3)
    pool.take(0)
    assert pool.is_taken(3) and pool.is_taken(0) and not pool.is_taken(1)
    with pytest.raises(ValueError, match="already taken"):
        pool.take(3)
    rest = {pool.draw(rng) for _ in range(3)}
    assert rest == {1, 2, 4} and len(pool) == 0
    pool.take(4)  # the pass is over: a new one starts, in which 4 is the first taken
    assert pool.passes == 2 and pool.is_taken(4) and not pool.is_taken(3)


# --- BANANAS -------------------------------------------------------------------------


def observe(proposal: Proposal, signal: float) -> VisibleObservation:
    return VisibleObservation(proposal.arch, proposal.epoch, signal, 1.0, {})


def matches(space: SearchSpace, target: int) -> np.ndarray:
    """Per arch: how many decisions agree with ``target``'s (one optimum)."""
    table = space.decision_table()
    return (table == table[target]).sum(axis=1).astype(float)


def test_bananas_declares_naszilla_defaults() -> None:
    assert resolve_params("bananas", {}) == {
        "num_init": 10,
        "k": 10,
        "num_ensemble": 5,
        "num_candidates": 100,
        "num_arches_to_mutate": 1,
        "max_mutation_rate": 1,
        "encoding": "auto",
        "path_cutoff": None,
        "num_layers": 10,
        "layer_width": 20,
        "epochs": 150,
        "batch_size": 32,
        "learning_rate": 0.01,
    }


@pytest.mark.parametrize("name", SPACES)
def test_bananas_reads_the_path_encoding_where_the_space_offers_it(name) -> None:
    space = get_space(name)
    strategy = Bananas(space, np.random.default_rng(0), 12)
    assert strategy.encoding_used == ("path" if "path" in space.encodings else "onehot")


@pytest.mark.parametrize(
    ("space_name", "params", "field", "message"),
    [
        ("nbgraph", {"encoding": "path"}, "encoding", "not offered by space 'nbgraph'"),
        ("nbgraph", {"path_cutoff": 30}, "path_cutoff", "does not offer"),
        ("nb201", {"encoding": "onehot", "path_cutoff": 30}, "path_cutoff", "path encoding"),
        ("nb201", {"path_cutoff": 156}, "path_cutoff", "longer than the path encoding"),
        ("nb201", {"num_candidates": 5, "num_arches_to_mutate": 2, "max_mutation_rate": 3},
         "num_candidates", "at least num_arches_to_mutate x max_mutation_rate"),
        ("nb201", {"k": 0}, "k", "must be"),
    ],
)  # fmt: skip
def test_bananas_refuses_settings_that_cannot_apply(space_name, params, field, message) -> None:
    with pytest.raises(ConfigError, match=rf"\[{field}\] .*{message}") as caught:
        make_strategy("bananas", get_space(space_name), np.random.default_rng(0), 12, params)
    assert "\n" not in str(caught.value)


def test_bananas_path_cutoff_truncates_the_predictor_input() -> None:
    space = get_space("nb201")
    strategy = Bananas(space, np.random.default_rng(0), 12, path_cutoff=30)
    np.testing.assert_array_equal(strategy._encode(77), space.encode(77, "path")[:30])


def test_bananas_initial_design_is_distinct_random_draws_then_mutations_of_the_best() -> None:
    space = get_space("nb201")
    signal = matches(space, 4321)
    strategy = Bananas(space, np.random.default_rng(2), 12, epochs=20)
    table = space.decision_table()
    proposed: list[int] = []
    distances = []
    for step in range(40):
        if step % strategy.k == 0:  # a new batch: its parents are the 5 best told so far
            parents = [arch for arch, _ in sorted(strategy.told, key=lambda t: -t[1])[:5]]
        proposal = strategy.ask()
        assert proposal.arch not in proposed
        if step >= strategy.num_init:
            changed = (table[parents] != table[proposal.arch]).sum(axis=1)
            distances.append(changed.min())
        proposed.append(proposal.arch)
        strategy.tell(proposal, observe(proposal, float(signal[proposal.arch])))
    # a random NB201 cell differs from the nearest of 5 others in ~3.7 of 6 ops
    assert min(distances) >= 1 and np.mean(distances) < 2


def test_bananas_with_more_workers_than_its_initial_design() -> None:
    """16 asks before any tell: all random and distinct; the model starts at num_init tells."""
    space = get_space("nb201")
    signal = matches(space, 99)
    strategy = Bananas(space, np.random.default_rng(5), 12, epochs=5)
    pending = [strategy.ask() for _ in range(16)]
    assert len({p.arch for p in pending}) == 16 and not strategy.queue
    for proposal in pending[:10]:
        strategy.tell(proposal, observe(proposal, float(signal[proposal.arch])))
    chosen = strategy.ask()
    assert chosen.arch not in {p.arch for p in pending}
    assert len(strategy.queue) == strategy.k - 1 and strategy.train_error is not None


def test_bananas_falls_back_to_an_unproposed_draw_when_mutations_find_nothing() -> None:
    space = get_space("nb201")
    strategy = Bananas(space, np.random.default_rng(0), 12, num_init=1, epochs=2)
    first = strategy.ask()
    strategy.tell(first, observe(first, 1.0))
    table = space.decision_table()
    far = np.flatnonzero((table != table[first.arch]).all(axis=1))[:3].tolist()
    for arch in range(space.num_archs):  # all but 3 cells that differ in every op
        if arch not in far and not strategy.pool.is_taken(arch):
            strategy.pool.take(arch)
    assert strategy.ask().arch in far and not strategy.queue


def test_mlp_ensemble_gradient_matches_finite_differences() -> None:
    rng = np.random.default_rng(0)
    ensemble = MLPEnsemble(3, 7, 3, 5, rng)
    for bias in ensemble.biases:
        bias[...] = 0.1 * rng.normal(size=bias.shape)
    x, y = rng.normal(size=(3, 9, 7)), rng.normal(size=(3, 9, 1))

    def loss() -> float:
        predictions = np.stack([ensemble.predict(x[m])[m] for m in range(3)])
        return float(np.abs(predictions - y[..., 0]).mean(axis=1).sum())

    ensemble._gradient(x, y)
    analytic = ensemble._grad.copy()
    numeric = np.zeros_like(analytic)
    for i in range(len(ensemble.theta)):
        kept = ensemble.theta[i]
        ensemble.theta[i] = kept + 1e-6
        above = loss()
        ensemble.theta[i] = kept - 1e-6
        numeric[i] = (above - loss()) / 2e-6
        ensemble.theta[i] = kept
    np.testing.assert_allclose(analytic, numeric, atol=1e-7)


def test_mlp_ensemble_learns_and_its_members_differ() -> None:
    rng = np.random.default_rng(1)
    x = rng.integers(0, 2, size=(60, 12)).astype(float)
    y = 3.0 * x[:, :4].sum(axis=1) - x[:, 4:8].sum(axis=1)
    ensemble = MLPEnsemble(5, 12, 3, 20, np.random.default_rng(2))
    untrained = np.abs(ensemble.predict(x) - y).mean()
    error = ensemble.fit(
        x, y, np.random.default_rng(3), epochs=150, batch_size=32, learning_rate=0.01
    )
    assert error < 0.1 * untrained and error < 0.5
    predictions = ensemble.predict(x)
    assert predictions.shape == (5, 60) and (predictions.std(axis=0) > 0).any()


THREADS_SCRIPT = """
import numpy as np
from harness.spaces import get_space
from harness.strategies.bananas import Bananas
from harness.values import VisibleObservation
space = get_space("nb201")
strategy = Bananas(space, np.random.default_rng(3), 12, num_candidates=400, epochs=30)
for _ in range(40):
    p = strategy.ask()
    strategy.tell(p, VisibleObservation(p.arch, 12, float(p.arch * 7919 % 1000) / 10, 1.0, {}))
print([arch for arch, _ in strategy.told], strategy.train_error.hex())
"""


def test_bananas_does_not_depend_on_the_thread_count() -> None:
    outputs = []
    for threads in ("1", "2"):
        env = {**os.environ, "OPENBLAS_NUM_THREADS": threads, "OMP_NUM_THREADS": threads}
        done = subprocess.run(
            [sys.executable, "-c", THREADS_SCRIPT],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        outputs.append(done.stdout)
    assert outputs[0] == outputs[1] and outputs[0].strip()


def test_bananas_finds_better_architectures_than_random_search(nb201_built) -> None:
    """NB201's Table 5 search signal (12-epoch CIFAR-10 validation accuracy), 60
    evaluations, 10 seeds: BANANAS' mean incumbent beats random search's."""
    table = Table.load(nb201_built[0], expected_sha256=nb201_built[1])
    protocol = search("cifar10-valid", "hp12", 12, "x-valid/accuracy", "mean")
    evaluator = TabularEvaluator(table, get_space("nb201"), protocol, (12,))
    found = {
        kind: np.mean([run(kind, evaluator, 1, seed, 60).incumbent_signal for seed in range(10)])
        for kind in ("random_search", "bananas")
    }
    assert found["bananas"] > found["random_search"] + 0.3


# --- TPE -----------------------------------------------------------------------------


def test_tpe_without_optuna_says_how_to_install_it(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "optuna", None)  # `import optuna` raises ImportError
    for attempt in (
        lambda: resolve_params("tpe", {}),
        lambda: make_strategy("tpe", get_space("nb201"), np.random.default_rng(0), 12, {}),
    ):
        with pytest.raises(ConfigError, match=r"pip install 'harness\[optuna\]'") as caught:
            attempt()
        assert "\n" not in str(caught.value)


class OddFirstDecision(NB201Space):
    """NB201 where a cell whose first op code is 0 is not an architecture."""

    def index_of_decisions(self, ops) -> int:
        if list(ops)[0] == 0:
            raise ArchitectureError("first op code 0 is no architecture here")
        return super().index_of_decisions(ops)


def test_tpe_fails_trials_that_name_no_architecture_and_asks_again() -> None:
    pytest.importorskip("optuna")
    from optuna.trial import TrialState

    space = OddFirstDecision()
    strategy = make_strategy("tpe", space, np.random.default_rng(0), 12, {})
    signal = matches(space, 1234)
    for _ in range(40):
        proposal = strategy.ask()
        assert space.decisions_of_index(proposal.arch)[0] != 0
        strategy.tell(proposal, observe(proposal, float(signal[proposal.arch])))
    trials = strategy.study.trials
    failed = [t for t in trials if t.state == TrialState.FAIL]
    assert failed and all(t.params["d0"] == 0 for t in failed)
    assert sum(t.state == TrialState.COMPLETE for t in trials) == 40


def test_tpe_tells_each_result_to_the_trial_that_asked_for_it() -> None:
    pytest.importorskip("optuna")
    space = get_space("nb201")
    strategy = make_strategy("tpe", space, np.random.default_rng(1), 12, {})
    pending = [strategy.ask() for _ in range(6)]
    for proposal in reversed(pending):
        strategy.tell(proposal, observe(proposal, float(proposal.arch)))
    for trial in strategy.study.trials:
        decisions = [trial.params[f"d{k}"] for k in range(len(space.choices))]
        assert trial.value == float(space.index_of_decisions(decisions))
    assert not strategy._open


def test_tpe_is_seeded_by_one_draw_from_the_run_stream_and_quiet(capfd) -> None:
    optuna = pytest.importorskip("optuna")
    optuna.logging.set_verbosity(optuna.logging.INFO)  # what a fresh process starts with
    space = get_space("nb201")
    rng, reference = np.random.default_rng(4), np.random.default_rng(4)
    strategy = make_strategy("tpe", space, rng, 12, {"n_startup_trials": 3})
    reference.integers(2**32)
    assert rng.integers(2**62) == reference.integers(2**62)  # it took exactly one draw
    for _ in range(8):
        proposal = strategy.ask()
        strategy.tell(proposal, observe(proposal, 1.0))
    captured = capfd.readouterr()
    assert captured.err == "" and captured.out == ""


def test_the_optuna_extra_is_declared_pinned_and_installed() -> None:
    pyproject = (REPO / "pyproject.toml").read_text()
    assert 'optuna = ["optuna>=' in pyproject
    assert "optuna==" in (REPO / "constraints.txt").read_text()
    install = next(line for line in (REPO / "Makefile").read_text().splitlines() if "-e '." in line)
    assert "optuna" in install

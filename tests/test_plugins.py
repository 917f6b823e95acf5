"""Strategy plugins: the documented example (local search) and its life as an installed plugin.

The unit tests load the example module from ``examples/local-search``; the end-to-end test
installs it as a distribution and drives ``harness`` in subprocesses, proving that a
plugin gets the same records and ``harness rerun`` as a built-in.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import subprocess
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from conftest import EXAMPLE, REPO, TABLE5, dump_toml, harness_cli, needs_nb201

from harness.errors import ConfigError
from harness.spaces import BUILTIN_SPACES, SearchSpace, get_space
from harness.values import Proposal, VisibleObservation

MODULE = EXAMPLE / "harness_local_search.py"
DOCS = REPO / "docs" / "strategies.md"
FIDELITY = 12


def load_local_search() -> type:
    """The example's class, imported from its file (it is not installed in the test venv)."""
    spec = importlib.util.spec_from_file_location("harness_local_search", MODULE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.LocalSearch


LocalSearch = load_local_search()


@pytest.fixture(scope="module")
def nb201() -> SearchSpace:
    return get_space("nb201")


def matches(space: SearchSpace, target: int) -> Callable[[int], float]:
    """A synthetic signal with one optimum: how many decisions agree with ``target``'s."""
    table = space.decision_table()
    return lambda arch: float((table[arch] == table[target]).sum())


def tell(strategy, proposal: Proposal, signal: float) -> None:
    strategy.tell(proposal, VisibleObservation(proposal.arch, proposal.epoch, signal, 1.0, {}))


def run(
    space: SearchSpace,
    signal: Callable[[int], float],
    steps: int,
    seed: int = 0,
    workers: int = 1,
    **params: object,
) -> list[int]:
    """Ask/tell with ``workers`` proposals in flight, told in a shuffled order; the proposals."""
    strategy = LocalSearch(space, np.random.default_rng(seed), FIDELITY, **params)
    completion = np.random.default_rng(seed + 1000)  # the order results come back in
    in_flight = [strategy.ask() for _ in range(workers)]
    archs = [p.arch for p in in_flight]
    while len(archs) < steps:
        done = in_flight.pop(int(completion.integers(len(in_flight))))
        tell(strategy, done, signal(done.arch))
        in_flight.append(strategy.ask())
        archs.append(in_flight[-1].arch)
    return archs


# --- the documentation -------------------------------------------------------------------


def test_the_docs_show_the_example_module_verbatim():
    blocks = re.findall(r"```python\n(.*?)```", DOCS.read_text(), flags=re.DOTALL)
    shown = [block for block in blocks if "class LocalSearch(Strategy)" in block]
    assert len(shown) == 1
    assert shown[0] == MODULE.read_text()


# --- the algorithm -------------------------------------------------------------------


def test_hyperparameters_are_declared_validated_and_set(nb201):
    assert LocalSearch(nb201, np.random.default_rng(0), FIDELITY).num_init == 10
    assert LocalSearch(nb201, np.random.default_rng(0), FIDELITY, num_init=3).params == {
        "num_init": 3
    }
    with pytest.raises(ConfigError, match=r"\[num_init\] must be >= 1"):
        LocalSearch(nb201, np.random.default_rng(0), FIDELITY, num_init=0)


def test_climb_starts_at_the_best_sample_and_moves_to_the_first_better_neighbour(nb201):
    strategy = LocalSearch(nb201, np.random.default_rng(1), FIDELITY, num_init=3)
    samples = [strategy.ask() for _ in range(3)]  # no centre yet: three asks, three samples
    assert len({p.arch for p in samples}) == 3 and {p.epoch for p in samples} == {FIDELITY}
    for proposal, signal in zip(samples, (1.0, 3.0, 2.0), strict=True):
        tell(strategy, proposal, signal)
    best = samples[1].arch
    worse = strategy.ask()
    assert worse.arch in nb201.neighbours(best)
    tell(strategy, worse, 0.0)
    better = strategy.ask()
    assert better.arch in nb201.neighbours(best) and better.arch != worse.arch
    tell(strategy, better, 5.0)
    following = [strategy.ask() for _ in range(5)]
    assert all(p.arch in nb201.neighbours(better.arch) for p in following)


def test_a_local_optimum_restarts_from_a_fresh_sample(nb201):
    strategy = LocalSearch(nb201, np.random.default_rng(2), FIDELITY, num_init=1)
    start = strategy.ask()
    tell(strategy, start, 1.0)
    around = nb201.neighbours(start.arch).tolist()
    tried = []
    for _ in around:
        tried.append(strategy.ask())
        tell(strategy, tried[-1], 0.0)
    assert sorted(p.arch for p in tried) == around  # each neighbour once, in some order
    restart = strategy.ask()
    assert restart.arch != start.arch
    tell(strategy, restart, 0.5)
    assert strategy.ask().arch in nb201.neighbours(restart.arch)


def test_climbs_a_single_optimum_to_the_top_within_one_pass(nb201):
    target = 4321
    archs = run(nb201, matches(nb201, target), steps=10 + 6 * 24)
    assert target in archs


def test_never_repeats_a_proposal_until_every_architecture_was_proposed(nb201):
    archs = run(nb201, matches(nb201, 777), steps=nb201.num_archs + 5, workers=3)
    assert sorted(archs[: nb201.num_archs]) == list(range(nb201.num_archs))


def test_a_known_better_neighbour_is_moved_to_without_evaluating_it_again(nb201):
    strategy = LocalSearch(nb201, np.random.default_rng(3), FIDELITY, num_init=1)
    start, peak = strategy.ask(), strategy.ask()
    tell(strategy, start, 0.0)  # the batch of one is complete: the climb starts here
    tell(strategy, peak, 100.0)  # arrives late: remembered, not a neighbour, moves nothing
    assert strategy.centre == start.arch
    closeness = matches(nb201, peak.arch)
    asked = [start.arch, peak.arch]
    while strategy.centre != peak.arch:  # climbs towards the peak, then steps onto it
        asked.append(strategy.ask().arch)
        tell(strategy, Proposal(asked[-1], FIDELITY), closeness(asked[-1]))
        assert len(asked) < 200
    assert asked.count(peak.arch) == 1


def test_same_seed_same_proposals_other_seed_others(nb201):
    signal = matches(nb201, 99)
    first = run(nb201, signal, steps=300, seed=5, workers=4)
    assert run(nb201, signal, steps=300, seed=5, workers=4) == first
    assert run(nb201, signal, steps=300, seed=6, workers=4) != first


def test_several_asks_before_a_tell_stay_distinct_and_still_climb(nb201):
    target = 2024
    archs = run(nb201, matches(nb201, target), steps=400, workers=8, num_init=4)
    assert len(set(archs)) == len(archs)
    assert target in archs


@pytest.mark.parametrize("name", sorted(BUILTIN_SPACES))
def test_runs_on_every_registered_space(name):
    space = get_space(name)
    target = space.num_archs // 3
    archs = run(space, matches(space, target), steps=300, workers=2)
    assert len(set(archs)) == len(archs)
    assert all(space.check_index(arch) == arch for arch in archs)
    assert target in archs


# --- as an installed plugin, end to end ----------------------------------------------


def write_spec(folder: Path, table: tuple[Path, str], kind: str, name: str) -> Path:
    """Table 5's protocol on 4 seeds and 30 evaluations, for REA and the plugin."""
    raw = tomllib.loads(TABLE5.read_text())
    raw["table"] = {"path": str(table[0]), "sha256": table[1]}
    raw["experiment"]["results"] = f"results/{name}"
    raw["runs"]["seeds"] = {"start": 0, "count": 4}
    raw["budget"] = {"evaluations": 30, "overrun": "discard"}
    raw["strategy"] = [raw["strategy"][0], {"name": "LS", "kind": kind, "params": {}}]
    raw["published"] = {k: v for k, v in raw["published"].items() if k in ("source", "REA")}
    path = folder / f"{name}.toml"
    path.write_text(dump_toml(raw))
    return path


@needs_nb201()
def test_an_installed_plugin_is_recorded_and_rerun_like_a_builtin(
    tmp_path, nb201_built, plugin_site, monkeypatch
):
    from harness.record import load_experiment, load_trajectories

    site = plugin_site
    by_entry_point = write_spec(tmp_path, nb201_built, "local_search", "entry-point")
    by_reference = write_spec(tmp_path, nb201_built, "harness_local_search:LocalSearch", "ref")
    serial = harness_cli("run", str(by_entry_point), cwd=tmp_path, PYTHONPATH=str(site))
    assert serial.returncode == 0, serial.stderr
    parallel = harness_cli(
        "run",
        str(by_reference),
        "--executor",
        "processes",
        "--jobs",
        "2",
        cwd=tmp_path,
        PYTHONPATH=str(site),
    )
    assert parallel.returncode == 0, parallel.stderr

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    records = [
        load_experiment(re.search(r"MLflow experiment run (\w+)", done.stdout).group(1))
        for done in (serial, parallel)
    ]
    trajectories = [load_trajectories(record.children["LS"]) for record in records]
    assert len(trajectories[0]) == 4 * 30
    assert trajectories[0].equals(trajectories[1])
    installed = site / "harness_local_search.py"
    for record in records:
        params = record.child_params["LS"]
        assert params["origin.class"] == "harness_local_search:LocalSearch"
        assert params["origin.distribution"] == "harness-local-search"
        assert params["origin.version"] == "1.0.0"
        assert params["origin.source"] == str(installed)
        assert params["origin.source_sha256"] == hashlib.sha256(installed.read_bytes()).hexdigest()
        assert params["strategy.num_init"] == "10"

    rerun = harness_cli(
        "rerun", records[0].children["LS"], "--seed", "2", cwd=tmp_path, PYTHONPATH=str(site)
    )
    assert rerun.returncode == 0, rerun.stderr
    assert "LS seed 2: identical to the record" in rerun.stdout


@needs_nb201()
def test_a_missing_plugin_fails_with_one_line_naming_the_spec_and_field(tmp_path, nb201_built):
    probe = "import importlib.util as u, sys; sys.exit(u.find_spec('harness_local_search') is None)"
    installed = subprocess.run([sys.executable, "-c", probe], env={**os.environ, "PYTHONPATH": ""})
    if installed.returncode == 0:  # asked in a fresh process: this one may have imported it
        pytest.skip("harness-local-search is installed in this environment")
    for kind, missing in [
        ("local_search", "unknown strategy 'local_search'"),
        ("harness_local_search:LocalSearch", "cannot import 'harness_local_search'"),
    ]:
        spec = write_spec(tmp_path, nb201_built, kind, "missing")
        done = harness_cli("run", str(spec), cwd=tmp_path, PYTHONPATH="")
        assert done.returncode == 2, done.stderr
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
        assert lines[0].startswith(f"harness: error: {spec}: [strategy.1.kind] {missing}")
        assert not (tmp_path / "mlflow.db").exists()

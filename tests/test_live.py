"""Protocol, live training, tabulate (resume, assembly), verify, and tabular-vs-live agreement.

Trainings use a tiny protocol (C=2, N=1, 2 epochs, one batch per epoch) so they take
a fraction of a second; the space has 6,466 classes, so full tables are assembled from
chunks written by the test, with real trainings where a test compares against them.
"""

from __future__ import annotations

import dataclasses
import json
import tomllib

import numpy as np
import pytest
import torch
from conftest import REPO

from harness.data import load_dataset
from harness.errors import ConfigError, HarnessError, TableError
from harness.evaluators.live import LiveEvaluator
from harness.evaluators.tabular import TableCosts, TabularEvaluator
from harness.parts import check_parts
from harness.protocol import Protocol, load_protocol, table_protocol
from harness.seeding import stream_generator
from harness.spaces import get_space
from harness.table import Table
from harness.tabulate import (
    EVAL_METRICS,
    TRAIN_METRICS,
    TabulateSpec,
    _identity,
    _train_chunk,
    assemble,
    train_all,
    work_chunks,
)
from harness.train import open_dataset, train_cell
from harness.values import MetricRef, Proposal, Resume, SearchProtocol, SeedPolicy
from harness.verify import sample_cells, verify

DIGITS = REPO / "benchmarks" / "digits" / "tabulate.toml"
LIVE_RUN_SEEDS = (0, 1)
LIVE_RUN_EVALUATIONS = 3


@pytest.fixture(scope="module")
def protocol() -> Protocol:
    shipped = load_protocol(DIGITS)
    return dataclasses.replace(
        shipped, schedule="tiny", epochs=2, batch_size=1000, channels=2, seeds=(0, 1)
    )


@pytest.fixture(scope="module")
def digits(protocol):
    return open_dataset(protocol, None, None)


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def test_protocol_round_trips_and_hashes_stably(protocol):
    again = Protocol.from_dict(protocol.to_dict())
    assert again == protocol and again.protocol_hash == protocol.protocol_hash
    assert dataclasses.replace(protocol, epochs=3).protocol_hash != protocol.protocol_hash


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda d: d.update(optimiser="adam"), r"\[optimiser\] is not a known key"),
        (lambda d: d.pop("epochs"), r"\[epochs\] is required"),
        (lambda d: d.update(momentum=1.5), r"\[momentum\] must be < 1"),
        (lambda d: d.update(learning_rate=float("inf")), r"\[learning_rate\] must be a finite"),
        (lambda d: d.update(eval_splits=["holdout"]), r"\[eval_splits\] must be among splits"),
        (lambda d: d.update(channels="4"), r"\[channels\] must be an integer"),
        (lambda d: d.update(seeds=[0, 0]), r"\[seeds\] must list at least one seed, each once"),
    ],
)
def test_bad_protocols_are_rejected_naming_the_field(protocol, edit, message):
    data = protocol.to_dict()
    edit(data)
    with pytest.raises(ConfigError, match=message):
        Protocol.from_dict(data)


def test_split_hashes_are_checked_against_the_data(protocol):
    wrong = dataclasses.replace(protocol, splits={**protocol.splits, "valid": "0" * 64})
    with pytest.raises(HarnessError, match="split 'valid' has index sha256"):
        open_dataset(wrong, None, None)


def test_training_is_deterministic_and_stopping_early_gives_a_prefix(protocol, digits):
    space = get_space("nb201")
    first = train_cell(space, 1, protocol, digits, seed=0)
    again = train_cell(space, 1, protocol, digits, seed=0)
    other = train_cell(space, 1, protocol, digits, seed=1)
    short = train_cell(space, 1, protocol, digits, seed=0, epochs=1)
    for key in [("train", "loss"), ("valid", "accuracy"), ("test", "loss")]:
        assert first.values[key] == again.values[key]
        assert short.values[key] == first.values[key][:1]
    assert first.values[("valid", "loss")] != other.values[("valid", "loss")]
    assert torch.get_num_threads() == protocol.threads


def spec_for(protocol: Protocol, out) -> TabulateSpec:
    return TabulateSpec(
        path=DIGITS,
        benchmark_id="test-digits",
        space=get_space("nb201"),
        out=out,
        workers=1,
        data_root=None,
        split_dir=None,
        protocol=protocol,
    )


def fake_chunks(spec: TabulateSpec, real: dict[tuple[int, int], dict] | None = None) -> None:
    """Write every chunk with made-up curves, except trainings given in ``real``."""
    parts = spec.out.with_name(spec.out.name + ".parts")
    check_parts(parts, _identity(spec))
    keys = [*TRAIN_METRICS, *((s, m) for s in spec.protocol.eval_splits for m in EVAL_METRICS)]
    for index, chunk in enumerate(work_chunks(spec.space, spec.protocol)):
        arrays = {}
        for split, metric in keys:
            rows = []
            for arch, seed in chunk:
                if real and (arch, seed) in real:
                    rows.append(real[(arch, seed)][(split, metric)])
                else:
                    rows.append(
                        [(arch % 97) + seed + epoch for epoch in range(spec.protocol.epochs)]
                    )
            arrays[f"{split}/{metric}"] = np.array(rows, dtype=np.float64)
        np.savez(
            parts / f"chunk-{index:05d}.npz",
            archs=np.array([a for a, _ in chunk]),
            seeds=np.array([s for _, s in chunk]),
            **arrays,
        )


def test_tabulate_resumes_without_redoing_finished_chunks(protocol, tmp_path, caplog):
    spec = spec_for(protocol, tmp_path / "t.h5")
    with caplog.at_level("INFO", logger="harness"):
        parts, complete = train_all(spec, workers=1, max_chunks=1)
    # this run's 24 trainings, and the whole table's 6,466 classes x 2 seeds
    assert "24/24 trainings of this run, ETA 00:00:00; table 24/12932 (0.2%)" in caplog.text
    assert not complete and sorted(p.name for p in parts.glob("chunk-*")) == ["chunk-00000.npz"]
    first = (parts / "chunk-00000.npz").stat().st_mtime_ns
    train_all(spec, workers=1, max_chunks=1)
    assert sorted(p.name for p in parts.glob("chunk-*")) == ["chunk-00000.npz", "chunk-00001.npz"]
    assert (parts / "chunk-00000.npz").stat().st_mtime_ns == first
    with pytest.raises(TableError, match="trainings are missing"):
        assemble(spec, parts)
    other = spec_for(dataclasses.replace(protocol, epochs=3), tmp_path / "t.h5")
    with pytest.raises(TableError, match="another protocol"):
        train_all(other, workers=1, max_chunks=1)
    (parts / "build.json").write_text("")  # damaged: e.g. a disk that filled up
    with pytest.raises(TableError, match="build.json is damaged; remove it"):
        train_all(spec, workers=1, max_chunks=1)


def test_a_chunk_holds_real_trainings(protocol, digits, monkeypatch):
    import harness.tabulate as tabulate

    space = get_space("nb201")
    monkeypatch.setattr(tabulate, "_worker", (space, protocol, digits))
    chunk = work_chunks(space, protocol)[0][:2]
    returned = _train_chunk(chunk)
    assert returned["archs"].tolist() == [a for a, _ in chunk]
    assert returned["seeds"].tolist() == [s for _, s in chunk]
    arch, seed = chunk[1]
    fresh = train_cell(space, arch, protocol, digits, seed)
    assert np.array_equal(returned["valid/accuracy"][1], fresh.values[("valid", "accuracy")])


@pytest.fixture(scope="module")
def tiny_table(protocol, digits, tmp_path_factory):
    """A full table from made-up chunks, with real trainings for the cells tests use."""
    space = get_space("nb201")
    classes = space.isomorphism_classes()
    used = set(sample_cells(space, 3, seed=5))
    rng = np.random.default_rng(11)
    used |= {space.sample(rng) for _ in range(4)}  # what the parity tests evaluate
    for seed in LIVE_RUN_SEEDS:  # what the live spec's random search asks
        strategy_rng = stream_generator(seed, "strategy")
        used |= {space.sample(strategy_rng) for _ in range(LIVE_RUN_EVALUATIONS)}
    real = {}
    for arch in used:
        rep = int(classes[arch])
        for seed in protocol.seeds:
            real[(rep, seed)] = train_cell(space, rep, protocol, digits, seed).values
    spec = spec_for(protocol, tmp_path_factory.mktemp("tab") / "tiny.h5")
    fake_chunks(spec, real)
    sha = assemble(spec, spec.out.with_name(spec.out.name + ".parts"))
    return Table.load(spec.out, expected_sha256=sha)


def test_assembled_table_maps_isomorphs_and_stores_its_protocol(tiny_table, protocol):
    space = get_space("nb201")
    classes = space.isomorphism_classes()
    variable = tiny_table.variable("digits", "tiny", "valid", "accuracy")
    assert variable.values.shape == (15625, 2, 2) and variable.seeds == ("0", "1")
    member = int(np.flatnonzero(classes != np.arange(15625))[0])
    assert np.array_equal(variable.values[member], variable.values[classes[member]])
    params, _ = tiny_table.property("digits", "params")
    representative, _ = tiny_table.property("digits", "representative")
    assert np.array_equal(representative, classes.astype(np.float32))
    assert params.min() > 0
    assert table_protocol(tiny_table.protocol, tiny_table.path) == protocol
    manifest = json.loads((tiny_table.path.parent / "manifest.json").read_text())
    entry = manifest[tiny_table.path.name]
    assert entry["sha256"] == tiny_table.sha256 and entry["protocol_hash"] == protocol.protocol_hash
    assert "cpu.isa" in entry["environment"]
    assert entry["environment"]["torch.torch_threads"] == str(protocol.threads)
    assert entry["environment"]["torch.deterministic_algorithms"] == "true"


def test_a_rewritten_manifest_entry_keeps_its_notes_only_for_the_same_bytes(tiny_table, protocol):
    from harness.tabulate import update_manifest

    path = tiny_table.path.parent / "manifest.json"
    original = path.read_text()
    entries = json.loads(original)
    entries[tiny_table.path.name]["notes"] = {"fidelity": "measured on these bytes"}
    path.write_text(json.dumps(entries))
    spec = spec_for(protocol, tiny_table.path)
    try:
        update_manifest(spec, tiny_table.sha256, {})
        kept = json.loads(path.read_text())[tiny_table.path.name]
        update_manifest(spec, "0" * 64, {})
        rebuilt = json.loads(path.read_text())[tiny_table.path.name]
    finally:
        path.write_text(original)
    assert kept["notes"] == {"fidelity": "measured on these bytes"}
    assert "notes" not in rebuilt


def test_nb201_cifar_protocols_pin_the_official_split_files():
    from harness.data import read_split_file, split_hash

    splits = REPO.parent / "shared" / "data" / "nb201-splits"
    if not splits.is_dir():
        pytest.skip(f"NB201 split files not found in {splits}")
    halves = read_split_file(splits / "cifar-split.txt", ("train", "valid"), 50000)
    tests = read_split_file(splits / "cifar100-test-split.txt", ("xvalid", "xtest"), 10000)
    expected = {
        "cifar10-valid": {
            "train": split_hash(halves["train"]),
            "x-valid": split_hash(halves["valid"]),
            "ori-test": split_hash(np.arange(10000)),
        },
        "cifar100": {
            "train": split_hash(np.arange(50000)),
            "x-valid": split_hash(tests["xvalid"]),
            "x-test": split_hash(tests["xtest"]),
            "ori-test": split_hash(np.arange(10000)),
        },
    }
    for path in sorted((REPO / "benchmarks" / "nb201").glob("tabulate-*.toml")):
        protocol = load_protocol(path)
        assert protocol.splits == expected[protocol.dataset], path.name


def test_verify_reports_zero_drift_for_true_entries_and_catches_wrong_ones(tiny_table):
    drifts = verify(tiny_table, sample=3, seed=5)
    assert {d.arch for d in drifts} == set(sample_cells(get_space("nb201"), 3, seed=5))
    assert max(d.max_abs for d in drifts) == 0.0
    wrong = verify(tiny_table, sample=2, seed=6)  # cells with made-up values
    assert max(d.max_abs for d in wrong) > 0


def search_protocol(policy: SeedPolicy, cost: str = "table") -> SearchProtocol:
    return SearchProtocol(
        dataset="digits",
        schedule="tiny",
        epoch=2,
        signal=MetricRef("digits", "tiny", "valid", "accuracy"),
        seed_policy=policy,
        include_validation_time=True,
        sealed={"test": MetricRef("digits", "tiny", "test", "accuracy")},
        cost=cost,
    )


def evaluators(table, protocol, digits, policy, cost="table"):
    space = get_space("nb201")
    search = search_protocol(policy, cost)
    tabular = TabularEvaluator(table, space, search, (1, 2))
    costs = TableCosts(table, search, (1, 2), tabular.seeds)
    live = LiveEvaluator(protocol, digits, space, search, costs, tabular.seeds)
    return tabular, live


def parity_proposals() -> list[Proposal]:
    """Random search's first asks; one is not its class representative."""
    space = get_space("nb201")
    rng = np.random.default_rng(11)
    proposals = [Proposal(space.sample(rng), 2) for _ in range(4)]
    assert any(space.isomorphism_classes()[p.arch] != p.arch for p in proposals)
    return proposals + [Proposal(proposals[0].arch, 1)]


@pytest.mark.parametrize(
    "policy", [SeedPolicy("mean"), SeedPolicy("draw"), SeedPolicy("fixed", "1")], ids=str
)
def test_live_and_tabular_runs_agree_under_every_seed_policy(tiny_table, protocol, digits, policy):
    tabular, live = evaluators(tiny_table, protocol, digits, policy)
    table_rng, live_rng = np.random.default_rng(3), np.random.default_rng(3)
    for proposal in parity_proposals():
        looked_up = tabular.evaluate(proposal, table_rng)
        trained = live.evaluate(proposal, live_rng)
        assert looked_up.seed == trained.seed
        assert looked_up.signal == np.float32(trained.signal) or policy.kind == "mean"
        assert looked_up.signal == pytest.approx(trained.signal, abs=1e-4)
        assert looked_up.signal_curve == pytest.approx(trained.signal_curve, abs=1e-4)
        assert len(looked_up.signal_curve) == proposal.epoch
        assert looked_up.sealed["test"] == pytest.approx(trained.sealed["test"], abs=1e-4)
        # cost = "table": the live run charges exactly the table's cost, and keeps its own
        assert trained.cost_s == looked_up.cost_s and trained.measured_s > 0
    assert table_rng.random() == live_rng.random()  # both drew the same number of seeds


def test_cost_has_one_definition_under_every_seed_policy(tiny_table, protocol, digits):
    times = tiny_table.variable("digits", "tiny", "train", "epoch_time_s").values
    valid = tiny_table.variable("digits", "tiny", "valid", "eval_time_s").values
    arch = parity_proposals()[0].arch
    per_seed = times[arch, :, :2].astype(np.float64).sum(axis=1) + valid[arch, :, 1]
    for policy, expected in [
        (SeedPolicy("mean"), per_seed.mean()),
        (SeedPolicy("fixed", "1"), per_seed[1]),
    ]:
        tabular, live = evaluators(tiny_table, protocol, digits, policy, cost="live")
        looked_up = tabular.evaluate(Proposal(arch, 2), np.random.default_rng(0))
        assert looked_up.cost_s == pytest.approx(expected, rel=1e-6)
        trained = live.evaluate(Proposal(arch, 2), np.random.default_rng(0))
        runs = [live._curves(arch, seed, 2) for seed in protocol.seeds]
        chosen = runs if policy.kind == "mean" else runs[1:]
        measured = [
            sum(r.values[("train", "epoch_time_s")]) + r.at("valid", "eval_time_s", 2)
            for r in chosen
        ]
        assert trained.cost_s == pytest.approx(np.mean(measured), rel=1e-9)
        assert trained.measured_s is None


def test_live_evaluator_refuses_metrics_of_another_protocol(protocol, digits):
    search = dataclasses.replace(
        search_protocol(SeedPolicy("mean"), "live"),
        signal=MetricRef("cifar10", "hp12", "x-valid", "accuracy"),
    )
    with pytest.raises(ConfigError, match="cannot measure"):
        LiveEvaluator(protocol, digits, get_space("nb201"), search)


def test_shipped_protocol_spec_parses_and_pins_the_digits_split():
    protocol = load_protocol(DIGITS)
    assert protocol.splits == dict(load_dataset("digits").split.hashes)
    assert tomllib.loads(DIGITS.read_text())["tabulate"]["workers"] == 2


def test_a_live_rerun_of_a_tabular_spec_follows_the_same_trajectory(
    tiny_table, mlflow_store, capsys
):
    import re

    from mlflow.tracking import MlflowClient

    from harness.cli import main
    from harness.record import load_experiment, load_trajectories

    spec = mlflow_store / "live.toml"
    spec.write_text(
        f"""
[experiment]
name = "live-check"
results = "results/live"
[table]
path = "{tiny_table.path}"
sha256 = "{tiny_table.sha256}"
[search]
dataset = "digits"
schedule = "tiny"
epoch = 2
signal = "valid/accuracy"
seed_policy = "draw"
include_validation_time = true
sealed = {{ test_accuracy = "test/accuracy" }}
[budget]
evaluations = {LIVE_RUN_EVALUATIONS}
overrun = "discard"
[runs]
seeds = {list(LIVE_RUN_SEEDS)}
[[strategy]]
name = "RS"
kind = "random_search"
[[report.target]]
label = "test"
metric = "test/accuracy"
"""
    )
    frames = {}
    for evaluator in ("tabular", "live"):
        assert main(["run", str(spec), "--evaluator", evaluator]) == 0
        parent = re.search(r"MLflow experiment run (\w+)", capsys.readouterr().out).group(1)
        frames[evaluator] = load_trajectories(load_experiment(parent).children["RS"])
    run = MlflowClient().get_run(parent)
    assert run.data.params["evaluator"] == "live" and run.data.params["search.cost"] == "table"
    assert run.data.tags["env.torch.torch_threads"] == "1"
    assert run.data.tags["env.torch.deterministic_algorithms"] == "true"
    tabular, live = frames["tabular"], frames["live"]
    assert (live["measured_s"] > 0).all() and "measured_s" not in tabular
    exact = ["seed", "row", "worker", "start_s", "end_s", "arch_index", "cost_s", "seed_used"]
    assert live[exact].equals(tabular[exact])
    for column in ("signal", "sealed.test_accuracy", "incumbent_signal"):
        assert (live[column].astype(np.float32) == tabular[column].astype(np.float32)).all()
    assert live["incumbent_index"].equals(tabular["incumbent_index"])


def test_info_describes_a_tabulated_table(tiny_table):
    from harness.table import summarize

    text = summarize(tiny_table, get_space("nb201").strings())
    assert "benchmark: test-digits (space nb201)" in text
    assert "digits/tiny/valid/accuracy (epoch 2)" in text and "spread over cells" in text


def test_a_live_continuation_trains_on_the_same_seed_and_charges_the_added_epochs(
    tiny_table, protocol, digits
):
    tabular, live = evaluators(tiny_table, protocol, digits, SeedPolicy("draw"))
    assert live.fidelities == tabular.fidelities == (1, 2)
    arch = parity_proposals()[0].arch
    first = live.evaluate(Proposal(arch, 1), np.random.default_rng(4))
    resume = Resume(1, first.seed)
    rng = np.random.default_rng(99)
    state = rng.bit_generator.state
    trained = live.evaluate(Proposal(arch, 2, 0), rng, resume)
    looked_up = tabular.evaluate(Proposal(arch, 2, 0), np.random.default_rng(99), resume)
    assert rng.bit_generator.state == state  # a continuation draws no seed
    assert trained.seed == looked_up.seed == first.seed
    assert trained.resumed_from == looked_up.resumed_from == 1
    assert trained.signal_curve[0] == first.signal
    assert trained.signal_curve == pytest.approx(looked_up.signal_curve, abs=1e-4)
    slot = tabular.seeds.index(first.seed)
    assert trained.cost_s == looked_up.cost_s == tabular.costs.cost(arch, 2, slot, since=1)
    run = live._curves(arch, protocol.seeds[slot], 2)
    added = run.at("train", "epoch_time_s", 2) + run.at("valid", "eval_time_s", 2)
    assert trained.measured_s == pytest.approx(added, rel=1e-12)

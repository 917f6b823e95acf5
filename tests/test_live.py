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
from harness.errors import HarnessError, SpecError, TableError
from harness.evaluators.live import LiveEvaluator
from harness.evaluators.observation import Proposal
from harness.evaluators.tabular import MetricRef, SeedPolicy, TabularEvaluator
from harness.protocol import Protocol, load_protocol, table_protocol
from harness.spaces import get_space
from harness.table import Table
from harness.tabulate import (
    EVAL_METRICS,
    TRAIN_METRICS,
    TabulateSpec,
    _check_parts,
    _train_chunk,
    assemble,
    train_all,
    work_chunks,
)
from harness.train import open_dataset, train_cell
from harness.verify import sample_cells, verify

DIGITS = REPO / "benchmarks" / "digits" / "tabulate.toml"


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
        (lambda d: d.update(optimiser="adam"), "'optimiser' is not a protocol field"),
        (lambda d: d.pop("epochs"), "'epochs' is required"),
        (lambda d: d.update(momentum=1.5), "momentum must be in"),
        (lambda d: d.update(eval_splits=["holdout"]), "eval_splits must be among splits"),
        (lambda d: d.update(channels="4"), "channels must be int"),
    ],
)
def test_bad_protocols_are_rejected_naming_the_field(protocol, edit, message):
    data = protocol.to_dict()
    edit(data)
    with pytest.raises(SpecError, match=message):
        Protocol.from_dict(data, "spec.toml: [protocol]")


def test_split_hashes_are_checked_against_the_data(protocol):
    wrong = dataclasses.replace(protocol, splits={**protocol.splits, "valid": "0" * 64})
    with pytest.raises(HarnessError, match="split 'valid' has index sha256"):
        open_dataset(wrong, None, None)


def test_training_is_deterministic_and_stopping_early_gives_a_prefix(protocol, digits):
    ops = get_space().ops_of_index(1)
    first = train_cell(ops, protocol, digits, seed=0)
    again = train_cell(ops, protocol, digits, seed=0)
    other = train_cell(ops, protocol, digits, seed=1)
    short = train_cell(ops, protocol, digits, seed=0, epochs=1)
    for key in [("train", "loss"), ("valid", "accuracy"), ("test", "loss")]:
        assert first.values[key] == again.values[key]
        assert short.values[key] == first.values[key][:1]
    assert first.values[("valid", "loss")] != other.values[("valid", "loss")]
    assert torch.get_num_threads() == protocol.threads


def spec_for(protocol: Protocol, out) -> TabulateSpec:
    return TabulateSpec(
        path=DIGITS,
        benchmark_id="test-digits",
        out=out,
        workers=1,
        data_root=None,
        split_dir=None,
        protocol=protocol,
    )


def fake_chunks(spec: TabulateSpec, real: dict[tuple[int, int], dict] | None = None) -> None:
    """Write every chunk with made-up curves, except trainings given in ``real``."""
    parts = spec.out.with_name(spec.out.name + ".parts")
    _check_parts(parts, spec)
    keys = [*TRAIN_METRICS, *((s, m) for s in spec.protocol.eval_splits for m in EVAL_METRICS)]
    for index, chunk in enumerate(work_chunks(spec.protocol)):
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


def test_tabulate_resumes_without_redoing_finished_chunks(protocol, tmp_path, capsys):
    spec = spec_for(protocol, tmp_path / "t.h5")
    parts, complete = train_all(spec, workers=1, max_chunks=1)
    assert "24/12932 trainings" in capsys.readouterr().err  # 6,466 classes x 2 seeds
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


def test_a_chunk_holds_real_trainings(protocol, digits, tmp_path):
    import harness.tabulate as tabulate

    spec = spec_for(protocol, tmp_path / "t.h5")
    parts = tmp_path / "t.h5.parts"
    _check_parts(parts, spec)
    tabulate._worker = (protocol, digits)
    chunk = work_chunks(protocol)[0][:2]
    _train_chunk(0, chunk, parts)
    stored = np.load(parts / "chunk-00000.npz")
    arch, seed = chunk[1]
    fresh = train_cell(get_space().ops_of_index(arch), protocol, digits, seed)
    assert np.array_equal(stored["valid/accuracy"][1], fresh.values[("valid", "accuracy")])


@pytest.fixture(scope="module")
def tiny_table(protocol, digits, tmp_path_factory):
    """A full table from made-up chunks, with real trainings for the cells tests use."""
    space = get_space()
    classes = space.isomorphism_classes()
    used = set(sample_cells(3, seed=5))
    rng = np.random.default_rng(11)
    used |= {space.sample(rng) for _ in range(4)}  # what random search asks first below
    real = {}
    for arch in used:
        rep = int(classes[arch])
        for seed in protocol.seeds:
            real[(rep, seed)] = train_cell(space.ops_of_index(rep), protocol, digits, seed).values
    spec = spec_for(protocol, tmp_path_factory.mktemp("tab") / "tiny.h5")
    fake_chunks(spec, real)
    sha = assemble(spec, spec.out.with_name(spec.out.name + ".parts"))
    return Table.load(spec.out, expected_sha256=sha)


def test_assembled_table_maps_isomorphs_and_stores_its_protocol(tiny_table, protocol):
    space = get_space()
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
    assert {d.arch for d in drifts} == set(sample_cells(3, seed=5))
    assert max(d.max_abs for d in drifts) == 0.0
    wrong = verify(tiny_table, sample=2, seed=6)  # cells with made-up values
    assert max(d.max_abs for d in wrong) > 0


def test_live_and_tabular_runs_agree_under_the_same_protocol(tiny_table, protocol, digits):
    signal = MetricRef("digits", "tiny", "valid", "accuracy")
    sealed = {"test": MetricRef("digits", "tiny", "test", "accuracy")}
    policy = SeedPolicy("draw")
    tabular = TabularEvaluator(
        tiny_table,
        dataset="digits",
        schedule="tiny",
        signal=signal,
        visible={},
        sealed=sealed,
        epochs=(2,),
        seed_policy=policy,
        include_validation_time=False,
    )
    live = LiveEvaluator(
        protocol,
        digits,
        signal=signal,
        visible={},
        sealed=sealed,
        seed_policy=policy,
        include_validation_time=False,
    )
    space = get_space()
    rng = np.random.default_rng(11)
    proposals = [Proposal(space.sample(rng), 2) for _ in range(4)]
    assert any(space.isomorphism_classes()[p.arch] != p.arch for p in proposals)
    table_rng, live_rng = np.random.default_rng(3), np.random.default_rng(3)
    for proposal in proposals:
        looked_up = tabular.evaluate(proposal, table_rng)
        trained = live.evaluate(proposal, live_rng)
        assert looked_up.visible.signal == np.float32(trained.visible.signal)
        assert looked_up.visible.signal_curve == tuple(
            float(np.float32(v)) for v in trained.visible.signal_curve
        )
        assert len(looked_up.visible.signal_curve) == 2
        assert looked_up.sealed["test"] == np.float32(trained.sealed["test"])
        assert trained.visible.cost_s > 0


def test_live_evaluator_refuses_metrics_of_another_protocol(protocol, digits):
    with pytest.raises(SpecError, match="cannot measure"):
        LiveEvaluator(
            protocol,
            digits,
            signal=MetricRef("cifar10", "hp12", "x-valid", "accuracy"),
            visible={},
            sealed={},
            seed_policy=SeedPolicy("mean"),
            include_validation_time=False,
        )


def test_shipped_protocol_spec_parses_and_pins_the_digits_split():
    protocol = load_protocol(DIGITS)
    assert protocol.splits == dict(load_dataset("digits").split.hashes)
    assert tomllib.loads(DIGITS.read_text())["tabulate"]["workers"] == 2


def test_a_spec_runs_live_against_a_tabulated_table_and_records_torch(
    tiny_table, mlflow_store, capsys
):
    import re

    from mlflow.tracking import MlflowClient

    from harness.cli import main

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
sealed = {{ test_accuracy = "digits/tiny/test/accuracy" }}
[budget]
evaluations = 2
overrun = "discard"
[runs]
seeds = [0, 1]
[[strategy]]
name = "RS"
kind = "random_search"
[[report.target]]
label = "test"
metric = "digits/tiny/test/accuracy"
"""
    )
    assert main(["run", str(spec), "--evaluator", "live"]) == 0
    parent = re.search(r"MLflow experiment run (\w+)", capsys.readouterr().out).group(1)
    run = MlflowClient().get_run(parent)
    assert run.data.params["evaluator"] == "live"
    assert run.data.tags["env.torch.torch_threads"] == "1"
    assert run.data.tags["env.torch.deterministic_algorithms"] == "true"
    assert (mlflow_store / "results" / "live.md").exists()


def test_info_describes_a_tabulated_table(tiny_table):
    from harness.table import summarize

    text = summarize(tiny_table, [get_space().string_of_index(i) for i in range(15625)])
    assert "benchmark: test-digits (space nb201)" in text
    assert "digits/tiny/valid (epoch 2)" in text and "spread over cells" in text

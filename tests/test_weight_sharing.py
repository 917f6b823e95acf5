"""Weight sharing: the NB201 supernet, NB201's six one-shot searches, and their runs."""

from __future__ import annotations

import copy
import json
import os
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import REPO, dump_toml, harness_cli
from mlflow.tracking import MlflowClient

from harness.cli import main
from harness.data.core import Dataset, Split
from harness.errors import ConfigError
from harness.estimators import Estimator, Score
from harness.models.supernet import EdgeRule, build_supernet
from harness.one_shot.methods import METHODS, cosine_lr
from harness.one_shot.setup import OneShotSetup
from harness.spaces import get_space
from harness.spaces.nb201 import NB201Space
from harness.spaces.nb201_cell import OPS
from harness.strategies import strategy_class

DIGITS_SPEC = REPO / "benchmarks" / "digits" / "compare.toml"
SPACE = get_space("nb201")
KINDS = {
    "darts-v1": "darts_v1",
    "darts-v2": "darts_v2",
    "gdas": "gdas",
    "setn": "setn",
    "rsps": "rsps",
    "enas": "enas",
}
#: a handful of steps of each method: one epoch of two batches
FEW_STEPS = {
    "epochs": 1,
    "batch_size": 8,
    "test_batch_size": 8,
    "select_num": 3,
    "controller_train_steps": 1,
    "controller_num_aggregate": 2,
}


def random_cifar(examples: int = 16) -> Dataset:
    """Random images shaped like CIFAR-10 (3x32x32, 10 classes) in two splits and a test
    split: the supernet's input at NB201's size, without CIFAR."""
    rng = np.random.default_rng(0)
    splits, indices = {}, {}
    for position, name in enumerate(("train", "valid", "test")):
        x = rng.standard_normal((examples, 3, 32, 32)).astype(np.float32)
        y = rng.integers(10, size=examples).astype(np.int64)
        splits[name] = (x, y)
        indices[name] = np.arange(position * examples, (position + 1) * examples)
    return Dataset(
        name="random-cifar",
        num_classes=10,
        input_shape=(3, 32, 32),
        splits=splits,
        split=Split(indices=indices, sources={k: "random" for k in indices}),
        mean=(0.0, 0.0, 0.0),
        std=(1.0, 1.0, 1.0),
        valid_split="valid",
        test_split="test",
        augment_padding=4,
        source={"generator": "numpy default_rng(0)"},
    )


def cifar_setup(channels: int = 16, cells: int = 5) -> OneShotSetup:
    return OneShotSetup(random_cifar(), "train", "valid", channels, cells, augmentation="crop-flip")


def params_of(method: str, **extra) -> dict:
    cls = strategy_class(KINDS[method])
    given = {k: v for k, v in {**FEW_STEPS, **extra}.items() if k in cls.hyperparameters}
    return cls.resolve_hyperparameters(given)


def test_single_path_equals_one_hot_mixture():
    """A cell run op by op is the supernet mixed with one-hot weights, bit for bit."""
    network = build_supernet(
        channels=4,
        cells_per_stage=1,
        input_shape=(3, 8, 8),
        num_classes=10,
        track_running_stats=False,
        generator=torch.Generator().manual_seed(0),
    )
    x = torch.randn(5, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    ops = [3, 0, 1, 4, 2, 3]
    one_hot = torch.zeros(6, 5)
    one_hot[torch.arange(6), torch.tensor(ops)] = 1.0
    assert torch.equal(network(x, EdgeRule(ops=ops)), network(x, EdgeRule(weights=one_hot)))
    with pytest.raises(ValueError, match="exactly one"):
        EdgeRule(ops=ops, weights=one_hot)


def test_supernet_weights_come_only_from_the_generator():
    def build(seed):
        return build_supernet(
            channels=4,
            cells_per_stage=2,
            input_shape=(1, 8, 8),
            num_classes=10,
            track_running_stats=True,
            generator=torch.Generator().manual_seed(seed),
        ).state_dict()

    torch.manual_seed(123)
    first = build(7)
    torch.manual_seed(456)
    again, other = build(7), build(8)
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert any(not torch.equal(first[k], other[k]) for k in first)


def test_learning_rate_follows_nb201s_cosine():
    assert cosine_lr(0.025, 0.001, 0, 50) == 0.025
    assert cosine_lr(0.025, 0.001, 50, 50) == pytest.approx(0.001)
    # ENAS's T_max = 10 over 250 epochs: the rate comes back up every 20 epochs
    assert cosine_lr(0.05, 0.0005, 20, 10) == pytest.approx(0.05)


@pytest.mark.parametrize("method", sorted(METHODS))
def test_each_method_runs_at_cifar_shape_and_is_deterministic(method):
    """A handful of steps on random CIFAR-shaped images with NB201's C=16, N=5 network: the
    same seed gives the same cell, log and state; the log holds every epoch."""
    setup = cifar_setup()
    params = params_of(method)
    runs = [
        METHODS[method](SPACE, params, setup, np.random.default_rng(s)).search() for s in (0, 0)
    ]
    first, again = runs
    assert first.arch == again.arch and 0 <= first.arch < 15625
    strip = [{k: v for k, v in row.items() if k != "seconds"} for row in first.epochs]
    assert strip == [{k: v for k, v in row.items() if k != "seconds"} for row in again.epochs]
    assert first.state == again.state
    assert [row["epoch"] for row in first.epochs] == [1]
    assert first.seconds > 0


def test_seeds_differ():
    setup = cifar_setup(channels=4, cells=1)
    params = params_of("gdas", epochs=2)
    a, b = (
        METHODS["gdas"](SPACE, params, setup, np.random.default_rng(s)).search() for s in (0, 1)
    )
    assert a.state["alpha"] != b.state["alpha"]


def test_tau_must_go_down():
    with pytest.raises(ConfigError, match="anneals"):
        strategy_class("gdas").resolve_hyperparameters({"tau_max": 0.1, "tau_min": 10.0})


def digits_spec(tmp_path, strategies, supernet=None, seeds=1) -> str:
    raw = tomllib.loads(DIGITS_SPEC.read_text())
    raw["experiment"]["results"] = str(tmp_path / "out")
    raw["experiment"]["name"] = "ws-test"
    raw["table"]["path"] = str(REPO / "tabular" / "nb201-digits.h5")
    raw["runs"]["seeds"] = {"start": 0, "count": seeds}
    raw["budget"] = {"seconds": 100000.0, "overrun": "discard"}
    raw["strategy"] = strategies
    raw.pop("report", None)
    raw["report"] = {"target": [{"label": "test", "metric": "digits/e4/test/accuracy"}]}
    if supernet is not None:
        raw["supernet"] = supernet
    path = tmp_path / "ws.toml"
    path.write_text(dump_toml(raw))
    return str(path)


def test_a_run_charges_the_search_and_records_its_log(mlflow_store, tmp_path):
    """On the shipped digits table: the supernet trains on the table protocol's train split,
    its architecture on the validation split; the clock starts at the measured search cost;
    the one evaluation is the derived cell; the record keeps the per-epoch log."""
    spec = digits_spec(
        tmp_path, [{"name": "GDAS", "kind": "gdas", "params": {"epochs": 2}}], seeds=2
    )
    assert main(["run", spec, "--executor", "serial"]) == 0
    client = MlflowClient()
    experiment = client.get_experiment_by_name("ws-test")
    (child,) = [
        r
        for r in client.search_runs([experiment.experiment_id])
        if r.data.tags.get("mlflow.runName") == "GDAS"
    ]
    assert child.data.params["supernet.weights_split"] == "train"
    assert child.data.params["supernet.arch_split"] == "valid"
    folder = tmp_path / "artifacts"
    log = json.loads(
        open(client.download_artifacts(child.info.run_id, "search_log.json", str(folder))).read()
    )
    runs = pd.read_csv(client.download_artifacts(child.info.run_id, "runs.csv", str(folder)))
    assert sorted(log) == ["0", "1"]
    for _, row in runs.iterrows():
        entry = log[str(row["seed"])]
        assert [e["epoch"] for e in entry["epochs"]] == [1, 2]
        assert entry["epochs"][-1]["arch"] == entry["arch"] == row["final_arch_index"]
        assert row["setup_s"] == pytest.approx(entry["seconds"]) and row["setup_s"] > 0
        assert row["evaluations"] == 1
        assert row["simulated_seconds"] > row["setup_s"]
        assert len(entry["epochs"][-1]["alpha"]) == 6


def test_the_report_counts_the_operations_of_the_derived_cells(mlflow_store, tmp_path):
    """Whether a method collapses to parameter-free cells: the report counts each operation
    among the derived cells' edges, and lists every seed's cell after every epoch."""
    spec = digits_spec(
        tmp_path, [{"name": "DARTS", "kind": "darts_v1", "params": {"epochs": 2}}], seeds=2
    )
    assert main(["run", spec, "--executor", "serial"]) == 0
    out = tmp_path / "out"
    cells = pd.read_csv(out / "derived-cells.csv")
    assert len(cells) == 2 * (2 + 1)
    assert sorted(cells[cells["stage"] == "epoch"]["epoch"].unique()) == [1, 2]
    space = NB201Space()
    for _, row in cells.iterrows():
        assert space.string_of_index(int(row["arch_index"])) == row["arch"]
    finals = cells[cells["stage"] == "final"]["arch_index"]
    counts = {op: 0 for op in OPS}
    for arch in finals:
        for code in space.decisions_of_index(int(arch)):
            counts[OPS[code]] += 1
    free = 100 * sum(counts[o] for o in ("none", "skip_connect", "avg_pool_3x3")) / 12
    report = (out / "report.md").read_text()
    assert "## Derived cells" in report
    row = next(line for line in report.splitlines() if line.startswith("| ws-test | DARTS | 2 |"))
    assert row.endswith(f"| {free:.1f} % |")
    for op in OPS:
        assert f"{100 * counts[op] / 12:.1f} %" in row


def test_the_call_limit_leaves_the_supernet_training_alone(tmp_path):
    """A weight-sharing setup is the supernet's training (hours on a CPU for ENAS): the
    per-call limit that stops a hung strategy does not cut it. (A subprocess: the limit
    interrupts a call through the process's main-thread signal.)"""
    rsps = {"name": "RSPS", "kind": "rsps", "params": {"epochs": 2, "test_batch_size": 397}}
    raw = tomllib.loads(Path(digits_spec(tmp_path, [rsps])).read_text())
    raw["runs"]["call_timeout_s"] = 0.05
    path = tmp_path / "limited.toml"
    path.write_text(dump_toml(raw))
    done = harness_cli("run", str(path), "--executor", "serial", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "1 runs" in done.stdout


@pytest.mark.parametrize(
    "strategies, supernet, needle",
    [
        (
            [{"name": "G", "kind": "gdas", "params": {"tau_max": 0.1, "tau_min": 1.0}}],
            None,
            "tau_min",
        ),
        ([{"name": "D", "kind": "darts_v1", "params": {"batch_size": 5000}}], None, "batch_size"),
        (
            [{"name": "R", "kind": "rsps", "params": {"test_batch_size": 512}}],
            None,
            "larger than split 'valid'",
        ),
        ([{"name": "G", "kind": "gdas"}], {"shape": [3, 32, 32]}, "data-free"),
        ([{"name": "G", "kind": "gdas"}], {"device": "cuda:7"}, "supernet.device"),
        ([{"name": "G", "kind": "gdas"}], {"arch_split": "test"}, "test split"),
    ],
)
def test_bad_input_is_one_line(mlflow_store, tmp_path, capsys, strategies, supernet, needle):
    if "cuda" in str(supernet) and torch.cuda.is_available():
        pytest.skip("this machine has a CUDA device")
    spec = digits_spec(tmp_path, strategies, supernet)
    assert main(["run", spec, "--executor", "serial"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("harness: error: ") and needle in err[0], err
    assert not (tmp_path / "out").exists()


def test_every_problem_of_supernet_and_estimate_sections_is_listed_at_once(
    mlflow_store, tmp_path, capsys
):
    strategies = [{"name": "G", "kind": "gdas", "params": {"tau_max": 0.1, "tau_min": 1.0}}]
    supernet = {"shape": [3, 32, 32], "weights_split_sha256": "xyz", "arch_split_sha256": "0"}
    spec = Path(digits_spec(tmp_path, strategies, supernet))
    raw = tomllib.loads(spec.read_text())
    raw["estimate"] = {"file": "zc.h5", "sha256": "abc", "score": "zen"}
    spec.write_text(dump_toml(raw))
    assert main(["run", str(spec), "--executor", "serial"]) == 2
    err = capsys.readouterr().err
    first, *lines = err.strip().splitlines()
    assert first == f"harness: error: {spec}: 6 problems; fix each, then run again:"
    assert "Traceback" not in err and all(line.startswith(f"  {spec}: [") for line in lines)
    assert [line.split("[")[1].split("]")[0] for line in lines] == [
        "strategy.0.params.tau_min",
        "supernet.shape",
        "supernet.weights_split_sha256",
        "supernet.arch_split_sha256",
        "estimate.sha256",
        "estimate.score",
    ]
    assert not (tmp_path / "out").exists() and not (mlflow_store / "mlflow.db").exists()


def test_published_darts_rows_are_the_all_skip_cell_of_the_real_table(nb201_built):
    """NB201's DARTS-V1 and V2 rows (std 0) are one cell's lookups: every published digit
    equals the all-skip_connect cell's 200-epoch values in the table built from the public
    extracts, the cell NATS-Bench's released logs show DARTS finding on CIFAR-10. A check
    of the spec's transcription where no copy of the paper is at hand."""
    from harness.evaluators.tabular import resolve_metric
    from harness.spec import load_spec
    from harness.table import Table

    spec = load_spec(REPO / "benchmarks" / "nb201" / "table5-weight-sharing.toml")
    path, sha256 = nb201_built
    table = Table.load(path, expected_sha256=sha256)
    all_skip = NB201Space().index_of_string(
        "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|"
        "skip_connect~2|"
    )
    looked_up = {
        target.label: round(float(resolve_metric(table, target.ref, 200)[all_skip]), 2)
        for target in spec.targets
    }
    for method in ("DARTS-V1", "DARTS-V2"):
        assert {label: row[0] for label, row in spec.published[method].items()} == looked_up


def test_a_space_without_a_supernet_is_refused():
    from harness.spaces import get_space

    space = get_space("nats-sss")
    with pytest.raises(ConfigError, match="has no supernet"):
        strategy_class("gdas").check_setup({}, space, None)


def test_darts_v2_hessian_vector_product_is_darts_central_difference():
    """DARTS-V2's product is ``(g(w + Rv) - g(w - Rv)) / 2R`` with ``R = r / |v|``, ``g``
    the training loss's gradient in ``alpha``, and it puts the weights back."""
    setup = cifar_setup(channels=2, cells=1)
    search = METHODS["darts-v2"](SPACE, params_of("darts-v2"), setup, np.random.default_rng(0))
    search.network.eval()
    x, y = (torch.from_numpy(a[:8]) for a in setup.dataset.splits["train"])
    generator = torch.Generator().manual_seed(3)
    vector = tuple(torch.randn(w.shape, generator=generator) for w in search.weights)
    before = [w.detach().clone() for w in search.weights]
    product = search._hessian_vector(vector, x, y)

    def alpha_grad(shift: float) -> torch.Tensor:
        network = copy.deepcopy(search.network)
        with torch.no_grad():
            for w, v in zip(network.parameters(), vector, strict=True):
                w.add_(v, alpha=shift)
        loss = search.loss(network(x, search.weighted()), y)
        return torch.autograd.grad(loss, [search.alpha])[0]

    radius = float(1e-2 / torch.cat([v.reshape(-1) for v in vector]).norm())
    expected = (alpha_grad(radius) - alpha_grad(-radius)) / (2 * radius)
    assert torch.allclose(product, expected, rtol=1e-3, atol=1e-3 * expected.abs().max().item())
    # +R, -2R, +R: back to the weights up to float rounding, as in DARTS's code
    assert all(
        torch.allclose(w, b, rtol=0, atol=1e-6) for w, b in zip(search.weights, before, strict=True)
    )


def test_supernet_estimator_scores_cells_with_shared_weights(mlflow_store, tmp_path):
    """`harness estimate` with the supernet estimator: a short RSPS search on digits, a
    pinned sample of cells scored, the search's cost recorded as the set-up."""
    raw = tomllib.loads((REPO / "benchmarks/weight-sharing/supernet-digits.toml").read_text())
    raw["estimate"].pop("sha256")  # this test scores a file of its own
    raw["estimate"].update(out=str(tmp_path / "est.h5"), results=str(tmp_path / "out"), sample=20)
    raw["estimator"] = [
        {
            "name": "rsps",
            "kind": "supernet",
            "params": {"method": "rsps", "method_params": {"epochs": 1, "test_batch_size": 397}},
        }
    ]
    raw["ground_truth"]["table"] = str(REPO / "tabular" / "nb201-digits.h5")
    raw["reference"][0]["label"] = "training"
    spec = tmp_path / "est.toml"
    spec.write_text(dump_toml(raw))
    assert main(["estimate", str(spec)]) == 0
    import h5py

    with h5py.File(tmp_path / "est.h5") as f:
        values = np.asarray(f["variables/digits/init/rsps/score/values"]).reshape(-1)
    finite = values[np.isfinite(values)]
    assert len(finite) == 20 and ((finite >= 0) & (finite <= 100)).all()
    quality = pd.read_csv(tmp_path / "out" / "quality.csv")
    assert (quality.loc[quality.estimator == "rsps", "setup_s"] > 0).all()
    report = (tmp_path / "out" / "report.md").read_text()
    assert "`supernet`" in report


def test_weight_sharing_runs_go_one_per_chunk(mlflow_store, tmp_path, monkeypatch):
    """A supernet search takes minutes: each run is its own resumable chunk."""
    import harness.experiment as experiment
    from harness.spec import load_spec

    spec = load_spec(
        digits_spec(
            tmp_path,
            [
                {"name": "G", "kind": "gdas", "params": {"epochs": 1}},
                {"name": "RS", "kind": "random_search"},
            ],
            seeds=2,
        )
    )
    benchmark = experiment.Benchmark(spec, experiment.open_table(spec))
    sizes = []

    def record(call, pending, finished, **kwargs):
        for index, chunk in pending:
            sizes.append(len(chunk))
            finished(index, call(chunk))

    monkeypatch.setattr(experiment, "run_chunks", record)
    outcomes = experiment.run_experiment(spec, benchmark)
    assert sizes == [1, 1, 1, 1] and len(outcomes) == 4


class CountingSetup(Estimator):
    """Appends a line to the file ``SETUPS`` names at every set-up: how often an estimate
    sets its estimators up (a supernet's training is minutes)."""

    def setup(self) -> None:
        with open(os.environ["SETUPS"], "a") as log:
            log.write("setup\n")

    def score(self, arch: int, seed: int) -> Score:
        return Score(float(arch), 0.0)


def test_an_estimate_with_one_worker_sets_its_estimators_up_once(
    mlflow_store, tmp_path, monkeypatch
):
    raw = tomllib.loads((REPO / "benchmarks/weight-sharing/supernet-digits.toml").read_text())
    raw["estimate"].pop("sha256")  # this test scores a file of its own
    raw["estimate"].update(
        out=str(tmp_path / "est.h5"), results=str(tmp_path / "out"), sample=300, workers=1
    )
    raw["estimator"] = [{"name": "count", "kind": "test_weight_sharing:CountingSetup"}]
    raw["ground_truth"]["table"] = str(REPO / "tabular" / "nb201-digits.h5")
    raw["reference"][0]["label"] = "training"
    spec = tmp_path / "est.toml"
    spec.write_text(dump_toml(raw))
    monkeypatch.setenv("SETUPS", str(tmp_path / "setups"))
    assert main(["estimate", str(spec)]) == 0
    assert (tmp_path / "setups").read_text().splitlines() == ["setup"]

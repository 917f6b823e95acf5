"""``harness estimate``: estimator plugins, the estimate file, resuming, the judgement."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, assert_clean_failure, dump_toml, harness_cli
from test_data import nb201_root  # noqa: F401 - the synthetic CIFAR-shaped folder

import harness.estimation as estimate_module
from harness.api import estimate, estimate_report
from harness.estimation import load_estimate_spec
from harness.estimators import BUILTIN_ESTIMATORS, estimator_class
from harness.report.estimates import Judged, quality
from harness.table import Table

DIGITS_SPEC = REPO / "benchmarks" / "zero-cost" / "digits.toml"
DIGITS_TABLE = REPO / "tabular" / "nb201-digits.h5"

PLUGIN = '''
from harness.config import Field
from harness.estimators import Estimator, Score


class Depth(Estimator):
    """Counts the convolutions of a cell, a toy estimator with a parameter."""

    hyperparameters = {"weight": Field(float, 1.0)}

    def score(self, arch, seed):
        ops = self.space.string_of_index(arch)
        return Score(self.weight * ops.count("conv"), 0.0)


class Broken(Estimator):
    def score(self, arch, seed):
        if arch > 3:
            raise RuntimeError("no score for you")
        return Score(1.0, 0.0)


class Lying(Estimator):
    def score(self, arch, seed):
        return Score(1.0, float("nan"))
'''


def spec_text(tmp_path: Path, name: str = "spec.toml", **changes) -> Path:
    """The digits spec, small: a pinned sample, a few estimators, output in ``tmp_path``."""
    raw = tomllib.loads(DIGITS_SPEC.read_text())
    raw["estimate"].pop("sha256")  # the shipped file's pin: these tests build their own
    raw["estimate"].update(
        out=str(tmp_path / "zc.h5"),
        results=str(tmp_path / "report"),
        sample=40,
        workers=1,
    )
    raw["ground_truth"]["table"] = str(DIGITS_TABLE)
    raw["proxy"]["seeds"] = [0, 1]
    raw["estimator"] = [
        {"name": "params", "kind": "params"},
        {"name": "synflow", "kind": "synflow"},
        {"name": "snip", "kind": "snip", "params": {"batch_size": 16}},
    ]
    for section, values in changes.items():
        raw[section] = (
            values
            if not isinstance(raw.get(section), dict)
            else {
                **raw[section],
                **values,
            }
        )
    proxy = raw["proxy"]
    raw["proxy"] = {k: v for k, v in proxy.items() if k != "input"} | {"input": proxy["input"]}
    path = tmp_path / name
    path.write_text(dump_toml(raw))
    return path


@pytest.fixture
def plugin_path(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "plugins"
    folder.mkdir()
    (folder / "my_estimators.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(folder), str(REPO)]))
    return folder


def test_every_builtin_proxy_loads_by_kind_and_declares_its_needs():
    data_free = {"params", "flops", "synflow", "zen"}
    for kind in BUILTIN_ESTIMATORS:
        cls = estimator_class(kind)
        assert cls.needs_data == (kind not in data_free), kind


def test_an_estimate_scores_the_sample_into_a_pinned_table_and_judges_it(mlflow_store):
    spec = spec_text(mlflow_store)
    done = estimate(spec, executor="serial")
    parsed = load_estimate_spec(spec)
    table = Table.load(done.path, expected_sha256=done.sha256)
    assert table.space == "nb201" and table.benchmark_id == "estimate:zc-digits"
    scores = table.variable("digits", "init", "params", "score")
    assert scores.seeds == ("0", "1") and scores.epochs == (0,)
    sampled = parsed.archs()
    assert scores.mask[sampled].all() and scores.mask.sum() == 2 * len(sampled)
    # synflow's log is masked only where the sum is 0: cells whose output is zero, all
    # isomorphic to the cell of none edges only
    synflow = table.variable("digits", "init", "synflow", "score")
    space = parsed.space
    empty = space.canonical_form(
        space.index_of_string("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|")
    )
    dead = np.array([space.canonical_form(int(a)) == empty for a in sampled])
    assert (~synflow.mask[sampled, 0, 0] <= dead).all()
    costs = table.variable("digits", "init", "snip", "cost_s")
    assert (costs.values[sampled] > 0).all()
    # params is an exact size count: the same at every seed, and the space's own number
    params = table.variable("digits", "init", "params", "score").values[sampled, :, 0]
    assert (params[:, 0] == params[:, 1]).all()
    manifest = (mlflow_store / "manifest.json").read_text()
    assert done.sha256 in manifest
    assert table.protocol["estimators"]["snip"]["params"] == {"batch_size": 16}
    assert table.protocol["estimators"]["snip"]["origin"]["class"].endswith("zero_cost:Snip")
    names = [p.name for p in done.files]
    assert names == ["report.md", "quality.csv", "cost-quality.png", "cost-quality.svg"]
    report = (mlflow_store / "report" / "report.md").read_text()
    assert done.sha256 in report and "4 epochs, seed 0 (valid)" in report
    # the report is a function of the two pinned files: made again, byte for byte the same
    before = {p.name: p.read_bytes() for p in done.files}
    again = estimate_report(spec)
    assert {p.name: p.read_bytes() for p in again} == before


def test_scores_are_bit_identical_across_runs_workers_and_an_interruption(
    mlflow_store, monkeypatch
):
    monkeypatch.setattr(estimate_module, "CHUNK_SIZE", 16)
    first = load_estimate_spec(spec_text(mlflow_store))
    assert estimate_module.estimate(first, max_chunks=1, executor="serial") is None
    assert estimate_module.estimate(first, workers=2, executor="processes") is not None
    whole = mlflow_store / "whole"
    whole.mkdir()
    second = load_estimate_spec(spec_text(whole))
    estimate_module.estimate(second, executor="serial")
    a, b = Table.load(first.out), Table.load(second.out)
    for key in a.variables():
        if key[3] == "score":
            np.testing.assert_array_equal(a.variable(*key).values, b.variable(*key).values)


def test_a_killed_estimate_resumes_from_its_finished_chunks(mlflow_store):
    spec = spec_text(mlflow_store, estimate={"sample": 600})
    parts = mlflow_store / "zc.h5.parts"
    command = [sys.executable, "-m", "harness.cli", "estimate", str(spec), "--workers", "1"]
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{mlflow_store / 'mlflow.db'}"}
    child = subprocess.Popen(command, env=env, start_new_session=True, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    while not list(parts.glob("chunk-*.npz")) and time.monotonic() < deadline:
        time.sleep(0.2)
    os.killpg(child.pid, signal.SIGKILL)
    child.wait()
    kept = sorted(p.name for p in parts.glob("chunk-*.npz"))
    assert kept and not (mlflow_store / "zc.h5").exists()
    done = harness_cli("estimate", str(spec), "--workers", "1", cwd=mlflow_store)
    assert done.returncode == 0, done.stderr
    assert f"{len(kept)} already done" in done.stderr
    assert Table.load(mlflow_store / "zc.h5").variable("digits", "init", "snip", "score")


def test_a_plugin_estimator_loads_by_module_and_class_and_its_origin_is_pinned(
    mlflow_store, plugin_path
):
    spec = spec_text(
        mlflow_store,
        estimator=[{"name": "depth", "kind": "my_estimators:Depth", "params": {"weight": 2.0}}],
    )
    done = harness_cli("estimate", str(spec), cwd=mlflow_store, PYTHONPATH=os.environ["PYTHONPATH"])
    assert done.returncode == 0, done.stderr
    table = Table.load(mlflow_store / "zc.h5")
    origin = table.protocol["estimators"]["depth"]["origin"]
    assert origin["class"] == "my_estimators:Depth"
    assert len(origin["source_sha256"]) == 64
    values = table.variable("digits", "init", "depth", "score").values[:, 0, 0]
    arch = int(np.flatnonzero(np.isfinite(values))[0])
    space = load_estimate_spec(spec).space
    assert values[arch] == 2.0 * space.string_of_index(arch).count("conv")


@pytest.mark.parametrize(
    ("estimators", "needles"),
    [
        ([{"name": "x", "kind": "naswot"}], ["[estimator.0.kind]", "unknown estimator 'naswot'"]),
        ([{"name": "x", "kind": "snip", "params": {"batchsize": 3}}], ["batchsize"]),
        ([{"name": "x", "kind": "my_estimators:Broken"}], ["Broken", "no score for you"]),
        ([{"name": "x", "kind": "my_estimators:Lying"}], ["Lying", "cost"]),
        ([{"name": "a/b", "kind": "params"}], ["[estimator.0.name]"]),
    ],
)
def test_a_bad_estimator_ends_in_one_line_and_writes_nothing(
    mlflow_store, plugin_path, estimators, needles
):
    spec = spec_text(mlflow_store, estimator=estimators)
    done = harness_cli("estimate", str(spec), cwd=mlflow_store, PYTHONPATH=os.environ["PYTHONPATH"])
    assert_clean_failure(done, *needles)
    assert not (mlflow_store / "zc.h5").exists() and not (mlflow_store / "report").exists()


def test_a_data_proxy_on_a_data_free_input_is_refused_before_any_work(mlflow_store):
    spec = spec_text(
        mlflow_store,
        proxy={"input": [{"name": "digits", "shape": [1, 8, 8], "classes": 10}]},
    )
    done = harness_cli("estimate", str(spec), cwd=mlflow_store)
    assert_clean_failure(done, "[estimator.2.kind]", "'snip' needs examples", "data-free")
    assert not (mlflow_store / "zc.h5.parts").exists()


def test_every_problem_of_an_estimate_spec_is_listed_at_once_and_nothing_is_written(
    mlflow_store,
):
    spec = spec_text(
        mlflow_store,
        publish={"source": "a typo of [published]"},
        estimate={"workers": 0},
        proxy={"seeds": [0, 0]},
        estimator=[
            {"name": "x", "kind": "naswot"},
            {"name": "snip", "kind": "snip", "params": {"batchsize": 3}},
        ],
        ground_truth={"metric": {"digits": "nonsense"}},
        reference=[
            {"label": "r", "input": "digits", "metric": "digits/e4/valid/accuracy", "cost": "x"}
        ],
    )
    done = harness_cli("estimate", str(spec), cwd=mlflow_store)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    first, *lines = done.stderr.strip().splitlines()
    assert first == f"harness: error: {spec}: 7 problems; fix each, then run again:"
    assert all(line.startswith(f"  {spec}: [") for line in lines)
    # [[estimator]] and [ground_truth] wait for [proxy], so its problem is not repeated there
    assert [line.split("[")[1].split("]")[0] for line in lines] == [
        "publish",
        "estimate.workers",
        "proxy.seeds",
        "estimator.0.kind",
        "estimator.1.params.batchsize",
        "ground_truth.metric.digits",
        "reference.0.cost",
    ]
    assert "did you mean 'published'?" in lines[0]
    assert sorted(p.name for p in mlflow_store.iterdir()) == ["spec.toml"]


def test_a_proxy_protocol_lists_its_every_problem_at_once():
    from harness.errors import ConfigError
    from harness.proxy_protocol import ProxyProtocol

    raw = tomllib.loads(DIGITS_SPEC.read_text())["proxy"]
    raw.update(device="tpu", seeds=[])
    raw["input"] = [
        {"name": "a/b", "shape": [1, 8], "classes": 10},
        {"name": "c", "dataset": "digits", "classes": 10},
    ]
    with pytest.raises(ConfigError) as caught:
        ProxyProtocol.from_dict(raw)
    assert [p.field for p in caught.value.each()] == [
        "seeds",
        "device",
        "input.0.name",
        "input.0.shape",
        "input.1",
    ]


def test_an_estimate_file_of_another_space_or_sha256_is_refused(mlflow_store, nb201_built):
    estimate(spec_text(mlflow_store), executor="serial")  # the real file, unpinned
    spec = spec_text(mlflow_store, "pinned.toml", estimate={"sha256": "0" * 64})
    done = harness_cli("report", str(spec), cwd=mlflow_store)
    assert_clean_failure(done, "sha256")
    other = spec_text(mlflow_store, "other.toml", estimate={"out": str(nb201_built[0])})
    done = harness_cli("report", str(other), cwd=mlflow_store)
    assert_clean_failure(done, "no scores of estimator")


def test_the_judgement_matches_scipy_and_ranks_unscored_cells_last():
    from scipy import stats

    rng = np.random.default_rng(3)
    truth = rng.normal(size=500)
    classes = np.arange(500) // 2 * 2  # pairs of isomorphs
    scores = (truth + rng.normal(scale=0.5, size=500))[:, None].copy()
    scores[:25] = np.nan
    judged = Judged("x", "in", "estimator", scores, 0.1, 0.0)
    rows = quality(judged, truth, classes, np.ones(500, dtype=bool), seed=0)
    everything = rows[0]
    ranked = np.where(np.isnan(scores[:, 0]), -np.inf, scores[:, 0])
    assert everything["rho"] == pytest.approx(stats.spearmanr(ranked, truth).statistic)
    assert everything["tau"] == pytest.approx(stats.kendalltau(ranked, truth).statistic)
    assert everything["rho_low"] < everything["rho"] < everything["rho_high"]
    assert rows[1]["cells"] == 250 and rows[2]["cells"] == 50
    same = Judged("t", "in", "estimator", truth[:, None], 0, 0)
    perfect = quality(same, truth, classes, np.ones(500, dtype=bool), seed=0)[0]
    assert perfect["top1"] == perfect["top10"] == 1.0
    assert perfect["rho"] == pytest.approx(1.0) and perfect["tau"] == pytest.approx(1.0)


def test_the_shipped_estimate_specs_are_valid():
    for path in sorted((REPO / "benchmarks" / "zero-cost").glob("*.toml")):
        spec = load_estimate_spec(path)
        assert spec.estimators and spec.truth


@pytest.mark.slow
def test_the_nb201_data_spec_runs_on_a_cifar_shaped_folder(
    mlflow_store,
    nb201_built,
    nb201_root,  # noqa: F811 - the fixture imported from test_data
):
    """The data proxies' NB201 spec, as shipped but small: tiny synthetic CIFAR-10,
    CIFAR-100 and ImageNet16 files in NB201's formats, two cells, a small network."""
    raw = tomllib.loads((REPO / "benchmarks" / "zero-cost" / "nb201-data.toml").read_text())
    raw["estimate"].pop("sha256", None)
    raw["estimate"].update(
        out=str(mlflow_store / "data.h5"), results=str(mlflow_store / "report"), sample=2
    )
    raw["ground_truth"]["table"] = str(nb201_built[0])
    raw["proxy"].update(channels=4, cells_per_stage=1)
    for proxy_input in raw["proxy"]["input"]:
        del proxy_input["split_sha256"]  # the synthetic files are not CIFAR's
    for entry in raw["estimator"]:
        if estimator_class(entry["kind"]).needs_data:
            entry["params"] = {"batch_size": 4}
    proxy = raw.pop("proxy")
    raw["proxy"] = {k: v for k, v in proxy.items() if k != "input"} | {"input": proxy["input"]}
    spec = mlflow_store / "data.toml"
    spec.write_text(dump_toml(raw))
    done = estimate(
        spec,
        executor="serial",
        data_root=nb201_root["root"],
        split_dir=nb201_root["splits"],
    )
    table = Table.load(done.path, expected_sha256=done.sha256)
    for input_name in ("cifar10", "cifar100", "ImageNet16-120"):
        scores = table.variable(input_name, "init", "snip", "score")
        assert scores.mask.sum() == 2
    provenance = table.provenance["inputs"]["cifar100"]
    assert provenance["split"] == "train" and len(provenance["sha256"]) == 64
    assert "| grasp | cifar10 |" in done.files[0].read_text()  # its published row


@pytest.mark.slow
def test_an_estimate_on_a_dask_cluster_scores_what_this_process_scores(mlflow_store, monkeypatch):
    pytest.importorskip("distributed")
    monkeypatch.setattr(estimate_module, "CHUNK_SIZE", 16)
    here = load_estimate_spec(spec_text(mlflow_store))
    estimate_module.estimate(here, executor="serial")
    cluster = mlflow_store / "dask"
    cluster.mkdir()
    there = load_estimate_spec(spec_text(cluster))
    estimate_module.estimate(there, workers=2, executor="dask")
    a, b = Table.load(here.out), Table.load(there.out)
    for key in a.variables():
        if key[3] == "score":
            np.testing.assert_array_equal(a.variable(*key).values, b.variable(*key).values)


def test_a_ground_truth_the_table_lacks_is_refused_before_any_scoring(mlflow_store):
    spec = spec_text(mlflow_store, ground_truth={"metric": {"digits": "digits/e4/test/nothing"}})
    done = harness_cli("estimate", str(spec), cwd=mlflow_store)
    assert_clean_failure(done, "digits/e4/test/nothing")
    assert not (mlflow_store / "zc.h5.parts").exists()
    reference = {
        "label": "r",
        "input": "digits",
        "metric": "digits/e4/valid/accuracy",
        "seed": "7",
        "cost": "digits/e4/train/total_time_s",
    }
    spec = spec_text(mlflow_store, "seed.toml", reference=[reference])
    assert_clean_failure(harness_cli("estimate", str(spec), cwd=mlflow_store), "seed '7'")


def test_every_variable_and_seed_the_ground_truth_lacks_is_named_at_once(mlflow_store):
    references = [
        {
            "label": "r",
            "input": "digits",
            "metric": "digits/e4/valid/accuracy",
            "seed": "7",
            "cost": "digits/e4/train/nothing_s",
        }
    ]
    spec = spec_text(
        mlflow_store,
        ground_truth={"metric": {"digits": "digits/e4/test/nothing"}},
        reference=references,
    )
    done = harness_cli("estimate", str(spec), cwd=mlflow_store)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    first, *lines = done.stderr.strip().splitlines()
    assert first == f"harness: error: {spec}: 3 problems; fix each, then run again:"
    assert "[ground_truth.metric.digits]" in lines[0] and "digits/e4/test/nothing" in lines[0]
    assert "[reference.0.cost]" in lines[1] and "digits/e4/train/nothing_s" in lines[1]
    assert "[reference.0.seed] names seed '7'" in lines[2]
    assert not (mlflow_store / "zc.h5.parts").exists()

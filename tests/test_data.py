"""Datasets: pinned splits, strict readers of the official formats, safe unpickling."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import pickle
import struct
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from harness.data import (
    DATASETS,
    Split,
    augment,
    load_dataset,
    read_split_file,
    split_hash,
    stratified_split,
)
from harness.data.core import split_rng
from harness.data.nb201 import DEFAULT_SPLIT_FILE_DIR, OFFICIAL_SPLIT_FILE_SHA256
from harness.data.safe_pickle import safe_unpickle
from harness.errors import DatasetError, HarnessError

SHARED_SPLITS = Path(__file__).resolve().parents[2] / "shared" / "data" / "nb201-splits"
CIFAR10_MEAN = np.array([125.3, 123.0, 113.9]) / 255
CIFAR10_STD = np.array([63.0, 62.1, 66.7]) / 255

# The pinned digits split: changing the seed, the sizes or the algorithm must fail here.
DIGITS_SPLIT_HASHES = {
    "train": "1dabec9c1df06bddc43e8399304234b0fb9028f576f96c64c3d1e43525e00c0f",
    "valid": "f9d193731aa1738624fea0004dd39d6c67ccbdcde2e82268cbfbd622ee09923f",
    "test": "4b7ca0861aa4aa3dc134486edc09fb01c10b75b2e9d4d3c4645bad7368065fcd",
}
DIGITS_SPLIT_FINGERPRINT = "608c7d436141cbea5aa0f7815c53ee1f876d745c54e42ca838d67497a35d5180"
DIGITS_CONTENT_SHA256 = "65e5b4619795efb40c1082f4c350c049e4ad552200d369b6ae99e21eef5e72c5"

# NB201's official split files: (keys, size of the set they cut, sizes, list hashes)
REAL_SPLIT_FILES = {
    "cifar-split.txt": (
        ("train", "valid"),
        50_000,
        {
            "train": "804c60edb02b9240f0da699f0f7fc71df79962b3716dd164440cc04527533790",
            "valid": "e1b6ff1146f8ca8eda904bce8c4f1345385e1b2e265379c51563bdb10b721eb0",
        },
    ),
    "cifar100-test-split.txt": (
        ("xvalid", "xtest"),
        10_000,
        {
            "xvalid": "5f6245f8741c9e0302a101c7b0e8d64eb0a04b1882e6478b733a31b70d25e2c2",
            "xtest": "b115d66950fca6cf4cd75955bb6269693594cb6acf1124818467a0c0723edb45",
        },
    ),
    "imagenet-16-120-test-split.txt": (
        ("xvalid", "xtest"),
        6_000,
        {
            "xvalid": "78fe1fb23cb059b4bce6a0a14a14f1167d05eff77dc6f14459d39f70cfd7d533",
            "xtest": "f0dbf99a4a80233d29664184c6eb4d6abfac2e82321e82e3a5ededc01d7af0e8",
        },
    ),
    "ImageNet16-120-split.txt": (
        ("train", "valid"),
        151_700,
        {
            "train": "73bdd7907068add132d66ac8e1aa688021bf67ab1ab0418bec8263f29e20b7c7",
            "valid": "1688120405b7b39a8c22f02c711b9379913eb98869bb1cf3cf84587c2d5eda42",
        },
    ),
}


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed)))


# --- split hashes and stratified cuts -------------------------------------------------


def test_split_hash_is_sha256_of_little_endian_int64_whatever_the_input_dtype():
    expected = hashlib.sha256(struct.pack("<3q", 0, 7, 2)).hexdigest()
    assert split_hash(np.array([0, 7, 2], dtype=np.int32)) == expected
    assert split_hash(np.array([0, 7, 2], dtype=">i8")) == expected
    assert split_hash(np.array([0, 2, 7])) != expected  # order is part of the identity
    with pytest.raises(ValueError):
        split_hash(np.array([0.0, 1.0]))


def test_split_pins_each_list_and_a_combined_hash_over_names_and_sources():
    split = Split({"a": np.array([1, 2]), "b": np.array([0])}, {"a": "train", "b": "train"})
    assert split.hashes == {"a": split_hash(np.array([1, 2])), "b": split_hash(np.array([0]))}
    moved = Split({"a": np.array([1, 2]), "b": np.array([0])}, {"a": "train", "b": "test"})
    assert moved.sha256 != split.sha256
    with pytest.raises(ValueError):
        split.indices["a"][0] = 5  # read-only: the hash cannot go stale


def test_stratified_split_has_exact_sizes_and_class_proportions():
    labels = np.repeat(np.arange(3), [50, 30, 20])
    parts = stratified_split(labels, (("test", 10), ("valid", 21), ("train", None)), _rng())
    assert [len(parts[k]) for k in ("test", "valid", "train")] == [10, 21, 69]
    joined = np.concatenate(list(parts.values()))
    assert np.array_equal(np.sort(joined), np.arange(100))
    assert np.array_equal(np.bincount(labels[parts["test"]]), [5, 3, 2])
    assert all(np.array_equal(p, np.sort(p)) for p in parts.values())


def test_stratified_split_depends_only_on_the_seed():
    labels = np.repeat(np.arange(4), 25)
    sizes = (("valid", 20), ("train", None))
    first = stratified_split(labels, sizes, split_rng(7))
    again = stratified_split(labels, sizes, split_rng(7))
    other = stratified_split(labels, sizes, split_rng(8))
    assert np.array_equal(first["valid"], again["valid"])
    assert not np.array_equal(first["valid"], other["valid"])


# --- digits ---------------------------------------------------------------------------


def test_digits_split_is_pinned_by_its_hashes():
    dataset = load_dataset("digits")
    assert {k: len(v) for k, v in dataset.split.indices.items()} == {
        "test": 400,
        "valid": 397,
        "train": 1000,
    }
    assert dataset.split_hashes == DIGITS_SPLIT_HASHES
    assert dataset.split_fingerprint == DIGITS_SPLIT_FINGERPRINT
    assert dataset.source["content_sha256"] == DIGITS_CONTENT_SHA256
    joined = np.concatenate(list(dataset.split.indices.values()))
    assert np.array_equal(np.sort(joined), np.arange(1797))


def test_digits_matches_scikit_learn_normalised_by_the_train_split():
    from sklearn.datasets import load_digits

    reference = load_digits()
    dataset = load_dataset("digits")
    assert dataset.input_shape == (1, 8, 8) and dataset.num_classes == 10
    assert (dataset.valid_split, dataset.test_split) == ("valid", "test")
    for name, (x, y) in dataset.splits.items():
        idx = dataset.split.indices[name]
        assert x.dtype == np.float32 and x.flags.c_contiguous and y.dtype == np.int64
        assert np.array_equal(y, reference.target[idx])
        raw = x * np.float32(dataset.std[0]) + np.float32(dataset.mean[0])
        np.testing.assert_allclose(raw.reshape(len(idx), 64), reference.data[idx] / 16, atol=1e-6)
        share = np.bincount(reference.target, minlength=10) * len(idx) / 1797
        assert np.all(np.abs(np.bincount(y, minlength=10) - share) < 1)  # stratified
    train = dataset.splits["train"][0]
    assert abs(float(train.mean())) < 1e-6 and abs(float(train.std()) - 1) < 1e-5
    assert dataset.source["version"]


def test_digits_loads_fast():
    load_dataset("digits")
    best = min(_timed(lambda: load_dataset("digits")) for _ in range(3))
    assert best < 0.2


def _timed(function) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def test_load_dataset_refuses_unknown_names_options_and_stray_roots(tmp_path):
    assert DATASETS == (
        "digits",
        "fashion-mnist",
        "cifar10-valid",
        "cifar10",
        "cifar100",
        "ImageNet16-120",
    )
    with pytest.raises(DatasetError, match="unknown dataset 'mnist'"):
        load_dataset("mnist")
    with pytest.raises(DatasetError, match=r"option \[train_size\] is not a known key"):
        load_dataset("digits", train_size=10)
    with pytest.raises(DatasetError, match="data root"):
        load_dataset("digits", root=tmp_path)
    assert issubclass(DatasetError, HarnessError)


# --- fashion-mnist (synthetic IDX files in the real format) ----------------------------


def _idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def _write_idx(path: Path, array: np.ndarray, gz: bool) -> None:
    data = _idx_bytes(array)
    if gz:
        path.with_name(path.name + ".gz").write_bytes(gzip.compress(data, mtime=0))
    else:
        path.write_bytes(data)


def _fashion_dir(root: Path, gz: bool, n_train: int = 100, n_test: int = 20) -> dict:
    rng = _rng(1)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": np.arange(n_train, dtype=np.uint8) % 10,
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    root.mkdir(exist_ok=True)
    for stem, array in arrays.items():
        _write_idx(root / stem, array, gz)
    return arrays


@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gz"])
def test_fashion_mnist_reads_idx_files_into_a_stratified_pinned_split(tmp_path, gz):
    arrays = _fashion_dir(tmp_path, gz)
    dataset = load_dataset("fashion-mnist", root=tmp_path, valid_size=20)
    sizes = {k: len(v) for k, v in dataset.split.indices.items()}
    assert sizes == {"train": 80, "valid": 20, "test": 20}
    assert dict(dataset.split.sources) == {"train": "train", "valid": "train", "test": "test"}
    assert dataset.input_shape == (1, 28, 28)
    x_valid, y_valid = dataset.splits["valid"]
    assert np.array_equal(np.bincount(y_valid), [2] * 10)
    raw = arrays["train-images-idx3-ubyte"][dataset.split.indices["valid"]] / 255
    restored = x_valid[:, 0] * np.float32(dataset.std[0]) + np.float32(dataset.mean[0])
    np.testing.assert_allclose(restored, raw, atol=1e-6)
    assert np.array_equal(dataset.splits["test"][1], arrays["t10k-labels-idx1-ubyte"])
    records = dataset.source["files"]
    assert len(records) == 4
    assert all(("official" in r) == gz for r in records.values())
    assert not any(r.get("official") for r in records.values())  # synthetic, not the release
    again = load_dataset("fashion-mnist", root=tmp_path, valid_size=20)
    assert again.split_hashes == dataset.split_hashes


def test_fashion_mnist_raw_and_gz_files_give_the_same_content_hash(tmp_path):
    _fashion_dir(tmp_path / "raw", gz=False)
    _fashion_dir(tmp_path / "gz", gz=True)
    raw = load_dataset("fashion-mnist", root=tmp_path / "raw", valid_size=20)
    gz = load_dataset("fashion-mnist", root=tmp_path / "gz", valid_size=20)
    content = [{k: r["content_sha256"] for k, r in d.source["files"].items()} for d in (raw, gz)]
    assert list(content[0].values()) == list(content[1].values())
    assert raw.split_fingerprint == gz.split_fingerprint


def test_fashion_mnist_subsampled_train_is_pinned_by_seed(tmp_path):
    _fashion_dir(tmp_path, gz=False)
    small = load_dataset("fashion-mnist", root=tmp_path, valid_size=20, train_size=30)
    assert len(small.split.indices["train"]) == 30
    assert np.array_equal(np.bincount(small.splits["train"][1]), [3] * 10)
    assert not set(small.split.indices["train"]) & set(small.split.indices["valid"])
    reseeded = load_dataset(
        "fashion-mnist", root=tmp_path, valid_size=20, train_size=30, split_seed=1
    )
    assert reseeded.split_hashes["train"] != small.split_hashes["train"]
    assert small.source["split_sizes"] == [["valid", 20], ["train", 30]]
    with pytest.raises(DatasetError, match="lower them"):
        load_dataset("fashion-mnist", root=tmp_path, valid_size=20, train_size=81)
    with pytest.raises(DatasetError, match=r"\[train_size\] must be an integer, got True"):
        load_dataset("fashion-mnist", root=tmp_path, train_size=True)


def test_fashion_mnist_missing_files_say_how_to_install_them(tmp_path):
    with pytest.raises(DatasetError, match="dataset-fashion-mnist or pass --data-root"):
        load_dataset("fashion-mnist", root=tmp_path)


@pytest.mark.skipif(
    Path("/usr/share/datasets/fashion-mnist").exists(), reason="Debian package is installed"
)
def test_fashion_mnist_defaults_to_debians_folder():
    with pytest.raises(DatasetError, match="/usr/share/datasets/fashion-mnist"):
        load_dataset("fashion-mnist")


@pytest.mark.parametrize(
    ("corrupt", "message"),
    [
        (lambda d: b"\0\0\x09\x03" + d[4:], "bad IDX magic"),
        (lambda d: d[:-1], "need 78400 bytes"),
        (lambda d: d + b"\0", "need 78400 bytes"),
        (lambda d: d[:10], "need 78400 bytes|header truncated"),
        (lambda d: b"", "bad IDX magic"),
    ],
    ids=["magic", "truncated", "trailing", "short-header", "empty"],
)
def test_corrupt_idx_files_are_refused_naming_the_file(tmp_path, corrupt, message):
    _fashion_dir(tmp_path, gz=False)
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(corrupt(path.read_bytes()))
    with pytest.raises(DatasetError, match=message) as info:
        load_dataset("fashion-mnist", root=tmp_path, valid_size=20)
    assert "train-images-idx3-ubyte" in str(info.value) and "\n" not in str(info.value)


def test_fashion_mnist_refuses_bad_gzip_mismatched_counts_and_bad_labels(tmp_path):
    _fashion_dir(tmp_path, gz=True)
    gz_path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    good = gz_path.read_bytes()
    gz_path.write_bytes(good[:-8])
    with pytest.raises(DatasetError, match="t10k-labels-idx1-ubyte.gz: corrupt gzip"):
        load_dataset("fashion-mnist", root=tmp_path, valid_size=20)
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.zeros(19, np.uint8), gz=True)
    with pytest.raises(DatasetError, match="19 labels for 20 images"):
        load_dataset("fashion-mnist", root=tmp_path, valid_size=20)
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.full(20, 10, np.uint8), gz=True)
    with pytest.raises(DatasetError, match="label 10 is not a class"):
        load_dataset("fashion-mnist", root=tmp_path, valid_size=20)


# --- the restricted unpickler ---------------------------------------------------------


class _Exploit:
    """Pickles to a call of os.system: what a tampered dataset file could contain."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_malicious_pickle_is_refused_without_running_it(tmp_path, protocol):
    marker = tmp_path / "pwned"
    payload = pickle.dumps({b"data": _Exploit(f"touch {marker}")}, protocol=protocol)
    with pytest.raises(DatasetError, match=r"batch_1: refused to unpickle (posix|nt)\.system"):
        safe_unpickle(payload, "batch_1")
    assert not marker.exists()


@pytest.mark.parametrize(
    "payload",
    [
        pickle.dumps(eval, protocol=2),
        pickle.dumps(np.load, protocol=4),
        b"\x80\x02c_codecs\nencode\nX\x01\x00\x00\x00xX\x05\x00\x00\x00zlib_\x86R.",
    ],
    ids=["builtins.eval", "numpy.load", "codecs-other-than-latin1"],
)
def test_unpickler_refuses_every_callable_but_numpys_reconstructors(payload):
    with pytest.raises(DatasetError, match="f.pkl: (refused|not a readable pickle)"):
        safe_unpickle(payload, "f.pkl")


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_unpickler_rebuilds_containers_and_numpy_arrays(protocol):
    batch = {
        b"data": np.arange(24, dtype=np.uint8).reshape(2, 12),
        b"labels": [1, 2],
        "scalar": np.int64(7),
        "nested": (1.5, None, True, "text", b"bytes", {"k": [np.float32(2)]}),
    }
    loaded = safe_unpickle(pickle.dumps(batch, protocol=protocol), "f")
    assert np.array_equal(loaded[b"data"], batch[b"data"]) and loaded[b"data"].dtype == np.uint8
    assert loaded[b"labels"] == [1, 2] and loaded["scalar"] == 7
    assert loaded["nested"] == batch["nested"]


def test_unpickler_reports_corrupt_files_on_one_line():
    blob = pickle.dumps({b"data": np.zeros((3, 4), np.uint8)}, protocol=2)
    with pytest.raises(DatasetError, match="data_batch_2: not a readable pickle") as info:
        safe_unpickle(blob[: len(blob) // 2], "data_batch_2")
    assert "\n" not in str(info.value)


def _py2_batch(data: np.ndarray, labels: list[int], label_key: str) -> bytes:
    """A batch pickled as Python 2 pickled CIFAR: protocol 2, str keys as byte strings,
    the array through numpy.core.multiarray._reconstruct with its bytes as a str."""

    def text(value: bytes) -> bytes:
        return b"T" + struct.pack("<I", len(value)) + value

    def num(value: int) -> bytes:
        return b"J" + struct.pack("<i", value)

    dtype = (
        b"cnumpy\ndtype\n" + text(b"u1") + num(0) + num(1) + b"\x87R"
        b"(" + num(3) + text(b"|") + b"NNN" + num(-1) + num(-1) + num(0) + b"tb"
    )
    array = (
        b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\n"
        + num(0) + b"\x85" + text(b"b") + b"\x87R"
        + b"(" + num(1) + num(data.shape[0]) + num(data.shape[1]) + b"\x86"
        + dtype + b"\x89" + text(data.tobytes()) + b"tb"
    )  # fmt: skip
    label_list = b"](" + b"".join(num(v) for v in labels) + b"e"
    return b"\x80\x02}(" + text(b"data") + array + text(label_key.encode()) + label_list + b"u."


def test_unpickler_reads_python2_pickles_as_cifar_ships_them():
    data = np.arange(2 * 3072, dtype=np.int64).astype(np.uint8).reshape(2, 3072)
    loaded = safe_unpickle(_py2_batch(data, [3, 9], "labels"), "data_batch_1")
    assert set(loaded) == {"data", "labels"}  # str keys, as NB201 reads them with latin1
    assert np.array_equal(loaded["data"], data) and loaded["labels"] == [3, 9]


# --- CIFAR and ImageNet16 (tiny synthetic folders in the official formats) ------------


def _images(rng: np.random.Generator, n: int, side: int) -> np.ndarray:
    return rng.integers(0, 256, (n, 3 * side * side), dtype=np.uint8)


def _write_split_file(path: Path, lists: dict[str, np.ndarray]) -> None:
    path.write_text(json.dumps({k: ["int", [str(int(i)) for i in v]] for k, v in lists.items()}))


@pytest.fixture
def nb201_root(tmp_path) -> dict:
    """CIFAR-10 (Python 2 pickles), CIFAR-100 and ImageNet16 (Python 3 pickles, bytes
    keys), and split files, all tiny; returns what was written."""
    rng = _rng(3)
    root, splits = tmp_path / "data", tmp_path / "splits"
    (root / "cifar-10-batches-py").mkdir(parents=True)
    (root / "cifar-100-python").mkdir()
    (root / "ImageNet16").mkdir()
    splits.mkdir()
    written: dict = {"root": root, "splits": splits}

    c10 = [(_images(rng, 4, 32), rng.integers(0, 10, 4).tolist()) for _ in range(6)]
    for i, (data, labels) in enumerate(c10):
        name = f"data_batch_{i + 1}" if i < 5 else "test_batch"
        (root / "cifar-10-batches-py" / name).write_bytes(_py2_batch(data, labels, "labels"))
    written["cifar10"] = (
        np.concatenate([d for d, _ in c10[:5]]),
        np.concatenate([lab for _, lab in c10[:5]]),
        c10[5][0],
        np.array(c10[5][1]),
    )
    valid = rng.permutation(20)[:8]
    written["cifar-split"] = {"train": np.setdiff1d(np.arange(20), valid), "valid": np.sort(valid)}
    _write_split_file(splits / "cifar-split.txt", written["cifar-split"])

    c100 = {
        n: (_images(rng, k, 32), rng.integers(0, 100, k)) for n, k in (("train", 6), ("test", 10))
    }
    for name, (data, labels) in c100.items():
        batch = {b"data": data, b"fine_labels": labels.tolist(), b"coarse_labels": [0] * len(data)}
        (root / "cifar-100-python" / name).write_bytes(pickle.dumps(batch, protocol=4))
    written["cifar100"] = c100
    written["cifar100-split"] = {
        "xvalid": np.array([1, 4, 5, 8, 9]),
        "xtest": np.array([0, 2, 3, 6, 7]),
    }
    _write_split_file(splits / "cifar100-test-split.txt", written["cifar100-split"])

    in16 = {}
    for i in range(11):
        name = f"train_data_batch_{i + 1}" if i < 10 else "val_data"
        data, labels = _images(rng, 3, 16), rng.choice([1, 2, 120, 121, 1000], 3)
        batch = {b"data": data, b"labels": labels.tolist(), b"mean": np.zeros(768)}
        (root / "ImageNet16" / name).write_bytes(pickle.dumps(batch, protocol=2))
        in16[name] = (data, labels)
    written["imagenet16"] = in16
    n_val = int((in16["val_data"][1] <= 120).sum())
    written["imagenet-split"] = {"xvalid": np.arange(n_val)[::2], "xtest": np.arange(n_val)[1::2]}
    _write_split_file(splits / "imagenet-16-120-test-split.txt", written["imagenet-split"])
    return written


def _expected(raw: np.ndarray, side: int, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """NB201's ToTensor + Normalize, computed with torch."""
    tensor = torch.from_numpy(raw.reshape(-1, 3, side, side)).float().div(255)
    mean_t = torch.tensor(mean.tolist()).view(1, 3, 1, 1)
    return tensor.sub(mean_t).div(torch.tensor(std.tolist()).view(1, 3, 1, 1)).numpy()


def test_cifar10_valid_splits_the_train_set_by_nb201s_split_file(nb201_root):
    train_x, train_y, test_x, test_y = nb201_root["cifar10"]
    lists = nb201_root["cifar-split"]
    dataset = load_dataset(
        "cifar10-valid", root=nb201_root["root"], split_file_dir=nb201_root["splits"]
    )
    assert list(dataset.splits) == ["train", "x-valid", "ori-test"]
    assert (dataset.valid_split, dataset.test_split) == ("x-valid", "ori-test")
    assert dataset.input_shape == (3, 32, 32) and dataset.num_classes == 10
    assert dataset.augment_padding == 4
    assert dataset.split_hashes == {
        "train": split_hash(lists["train"]),
        "x-valid": split_hash(lists["valid"]),
        "ori-test": split_hash(np.arange(4)),
    }
    for name, key in (("train", "train"), ("x-valid", "valid")):
        x, y = dataset.splits[name]
        assert np.array_equal(y, train_y[lists[key]])
        assert np.array_equal(x, _expected(train_x[lists[key]], 32, CIFAR10_MEAN, CIFAR10_STD))
    assert np.array_equal(dataset.splits["ori-test"][1], test_y)
    assert dataset.source["split_file"]["official"] is False
    assert dataset.source["files"]["data_batch_1"]["official"] is False
    assert len(dataset.source["files"]) == 6


def test_cifar10_trains_on_everything_and_needs_no_split_file(nb201_root, tmp_path):
    train_x, train_y, test_x, _ = nb201_root["cifar10"]
    dataset = load_dataset("cifar10", root=nb201_root["root"], split_file_dir=tmp_path / "none")
    assert list(dataset.splits) == ["train", "ori-test"]
    assert (dataset.valid_split, dataset.test_split) == (None, "ori-test")
    assert np.array_equal(dataset.splits["train"][1], train_y)
    assert np.array_equal(
        dataset.splits["ori-test"][0], _expected(test_x, 32, CIFAR10_MEAN, CIFAR10_STD)
    )
    fill = (0 - CIFAR10_MEAN.astype(np.float32)) / CIFAR10_STD.astype(np.float32)
    np.testing.assert_allclose(dataset.pad_fill, fill, rtol=1e-6)
    assert "split_file" not in dataset.source


def test_cifar100_halves_the_test_set_into_x_valid_and_x_test(nb201_root):
    (_, train_y), (test_x, test_y) = nb201_root["cifar100"].values()
    lists = nb201_root["cifar100-split"]
    dataset = load_dataset("cifar100", root=nb201_root["root"], split_file_dir=nb201_root["splits"])
    assert list(dataset.splits) == ["train", "x-valid", "x-test", "ori-test"]
    assert (dataset.valid_split, dataset.test_split) == ("x-valid", "x-test")
    assert dataset.num_classes == 100
    assert dict(dataset.split.sources) == {
        "train": "train",
        "x-valid": "test",
        "x-test": "test",
        "ori-test": "test",
    }
    assert np.array_equal(dataset.splits["train"][1], train_y)
    assert np.array_equal(dataset.splits["x-valid"][1], test_y[lists["xvalid"]])
    mean, std = np.array([129.3, 124.1, 112.4]) / 255, np.array([68.2, 65.4, 70.4]) / 255
    assert np.array_equal(
        dataset.splits["x-test"][0], _expected(test_x[lists["xtest"]], 32, mean, std)
    )


def test_imagenet16_120_keeps_the_first_120_classes_counted_from_zero(nb201_root):
    batches = nb201_root["imagenet16"]
    dataset = load_dataset(
        "ImageNet16-120", root=nb201_root["root"], split_file_dir=nb201_root["splits"]
    )
    assert dataset.input_shape == (3, 16, 16) and dataset.num_classes == 120
    assert dataset.augment_padding == 2
    train = [batches[f"train_data_batch_{i}"] for i in range(1, 11)]
    train_x = np.concatenate([d for d, _ in train])
    train_y = np.concatenate([lab for _, lab in train])
    keep = train_y <= 120
    assert np.array_equal(dataset.splits["train"][1], train_y[keep] - 1)
    mean, std = np.array([122.68, 116.66, 104.01]) / 255, np.array([63.22, 61.26, 65.09]) / 255
    assert np.array_equal(dataset.splits["train"][0], _expected(train_x[keep], 16, mean, std))
    val_x, val_y = batches["val_data"]
    kept = val_y <= 120
    assert np.array_equal(dataset.splits["ori-test"][1], val_y[kept] - 1)
    xvalid = nb201_root["imagenet-split"]["xvalid"]
    assert np.array_equal(dataset.splits["x-valid"][1], (val_y[kept] - 1)[xvalid])
    assert dataset.splits["x-valid"][1].max(initial=0) < 120


def test_nb201_datasets_need_a_data_root_and_name_missing_files(nb201_root, tmp_path):
    with pytest.raises(DatasetError, match="needs its images: pass --data-root"):
        load_dataset("cifar10")
    (nb201_root["root"] / "cifar-10-batches-py" / "data_batch_3").unlink()
    with pytest.raises(
        DatasetError, match="data_batch_3 not found or unreadable; pass --data-root"
    ):
        load_dataset("cifar10", root=nb201_root["root"])
    with pytest.raises(DatasetError, match="cifar100-test-split.txt not found in .*split_file_dir"):
        load_dataset("cifar100", root=nb201_root["root"], split_file_dir=tmp_path)


def test_a_tampered_batch_file_is_refused_without_running_it(nb201_root, tmp_path):
    marker = tmp_path / "pwned"
    batch = {b"data": _Exploit(f"touch {marker}"), b"fine_labels": []}
    (nb201_root["root"] / "cifar-100-python" / "test").write_bytes(pickle.dumps(batch))
    with pytest.raises(DatasetError, match="cifar-100-python/test: refused to unpickle"):
        load_dataset("cifar100", root=nb201_root["root"], split_file_dir=nb201_root["splits"])
    assert not marker.exists()


@pytest.mark.parametrize(
    ("batch", "message"),
    [
        ([1, 2], "expected a dict batch"),
        ({b"data": np.zeros((2, 3072), np.float32), b"fine_labels": [0, 0]}, "not a uint8"),
        ({b"data": np.zeros((2, 768), np.uint8), b"fine_labels": [0, 0]}, "768 bytes, not 3072"),
        ({b"data": np.zeros((2, 3072), np.uint8), b"fine_labels": [0]}, "not 2 integer labels"),
        ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 0]}, "not 2 integer labels"),
        ({b"data": np.zeros((2, 3072), np.uint8), b"fine_labels": [0, 100]}, "outside 0..99"),
    ],
    ids=["not-dict", "dtype", "width", "count", "key", "range"],
)
def test_malformed_batches_are_refused_naming_the_file(nb201_root, batch, message):
    (nb201_root["root"] / "cifar-100-python" / "train").write_bytes(pickle.dumps(batch))
    with pytest.raises(DatasetError, match=message) as info:
        load_dataset("cifar100", root=nb201_root["root"], split_file_dir=nb201_root["splits"])
    assert "cifar-100-python/train" in str(info.value)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ({"train": ["int", ["0", "1"]]}, "key 'valid' missing"),
        ({"train": ["int", ["0", "x"]], "valid": ["int", []]}, "key 'train' holds a non-integer"),
        ({"train": ["int", ["0", "0"]], "valid": ["int", ["1"]]}, "key 'train' repeats"),
        ({"train": ["int", ["0", "5"]], "valid": ["int", ["1"]]}, "key 'train' has index 5"),
        ({"train": ["int", ["0", "1"]], "valid": ["int", ["1"]]}, "overlap in 1 and miss 1"),
        ({"train": ["int", ["0"]], "valid": ["int", ["1"]]}, "overlap in 0 and miss 1"),
        (["int"], "expected a JSON object"),
    ],
    ids=["missing-key", "non-int", "duplicate", "range", "overlap", "gap", "not-object"],
)
def test_split_files_are_validated_naming_file_and_key(tmp_path, content, message):
    path = tmp_path / "cifar-split.txt"
    path.write_text(json.dumps(content))
    with pytest.raises(DatasetError, match=message) as info:
        read_split_file(path, ("train", "valid"), 3)
    assert "cifar-split.txt" in str(info.value)


def test_a_split_file_for_other_data_is_refused(nb201_root):
    _write_split_file(
        nb201_root["splits"] / "cifar-split.txt",
        {"train": np.arange(10), "valid": np.arange(10, 30)},
    )
    with pytest.raises(DatasetError, match="'valid' has index 20 outside the 20 images"):
        load_dataset("cifar10-valid", root=nb201_root["root"], split_file_dir=nb201_root["splits"])


@pytest.mark.skipif(not SHARED_SPLITS.is_dir(), reason="../shared/data/nb201-splits is absent")
@pytest.mark.parametrize("name", sorted(REAL_SPLIT_FILES))
def test_real_nb201_split_files_partition_their_sets(name):
    keys, size, hashes = REAL_SPLIT_FILES[name]
    path = SHARED_SPLITS / name
    lists = read_split_file(path, keys, size)
    assert {k: len(v) for k, v in lists.items()} == {k: size // 2 for k in keys}
    assert {k: split_hash(v) for k, v in lists.items()} == hashes
    assert hashlib.sha256(path.read_bytes()).hexdigest() == OFFICIAL_SPLIT_FILE_SHA256[name]
    with pytest.raises(DatasetError, match="outside"):
        read_split_file(path, keys, size - 1)


@pytest.mark.skipif(not SHARED_SPLITS.is_dir(), reason="../shared/data/nb201-splits is absent")
def test_the_default_split_file_dir_is_the_shared_one():
    assert DEFAULT_SPLIT_FILE_DIR == SHARED_SPLITS


# --- augmentation -----------------------------------------------------------------------


def _reference_augment(batch, offsets, flips, padding, fill):
    """Per-image pad (with per-channel fill), crop, flip: the obvious slow version."""
    n, c, h, w = batch.shape
    out = torch.empty_like(batch)
    for i in range(n):
        padded = (
            torch.tensor(fill, dtype=batch.dtype)
            .view(c, 1, 1)
            .repeat(1, h + 2 * padding, w + 2 * padding)
        )
        padded[:, padding : padding + h, padding : padding + w] = batch[i]
        dy, dx = offsets[i]
        crop = padded[:, dy : dy + h, dx : dx + w]
        out[i] = torch.flip(crop, dims=[2]) if flips[i] else crop
    return out


def test_augment_crops_and_flips_as_the_per_image_reference():
    batch = torch.from_numpy(_rng(5).standard_normal((16, 3, 8, 8)).astype(np.float32))
    fill = (-1.0, -2.0, -3.0)
    out = augment(batch, _rng(9), 2, fill=fill)
    draws = _rng(9)
    offsets, flips = draws.integers(0, 5, size=(16, 2)), draws.random(16) < 0.5
    assert torch.equal(out, _reference_augment(batch, offsets, flips, 2, fill))
    assert out.shape == batch.shape and out.dtype == batch.dtype and out.is_contiguous()
    assert 0 < flips.sum() < 16 and len({tuple(o) for o in offsets}) > 1


def test_augment_is_a_function_of_the_generator_state():
    batch = torch.arange(2 * 3 * 4 * 4, dtype=torch.float32).reshape(2, 3, 4, 4)
    rng = _rng(1)
    first = augment(batch, rng, 4)
    assert torch.equal(first, augment(batch, _rng(1), 4))
    reference = _rng(1)
    reference.integers(0, 9, size=(2, 2))
    reference.random(2)
    assert rng.bit_generator.state == reference.bit_generator.state  # exactly two draws


def test_augment_without_padding_only_flips():
    batch = torch.from_numpy(_rng(2).standard_normal((8, 1, 5, 5)).astype(np.float32))
    out = augment(batch, _rng(3), 0)
    for image, result in zip(batch, out, strict=True):
        assert torch.equal(result, image) or torch.equal(result, torch.flip(image, dims=[2]))


def test_augment_rejects_bad_arguments():
    with pytest.raises(ValueError):
        augment(torch.zeros(3, 4, 4), _rng(), 2)
    with pytest.raises(ValueError):
        augment(torch.zeros(1, 3, 4, 4), _rng(), -1)
    with pytest.raises(ValueError):
        augment(torch.zeros(1, 3, 4, 4), _rng(), 1, fill=(0.0, 1.0))

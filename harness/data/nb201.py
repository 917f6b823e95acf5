"""CIFAR-10/100 and ImageNet16-120 as NAS-Bench-201 / NATS-Bench train and test on them.

The images come from a user's folder in the official python-pickle formats (read without
executing pickled code), the splits from NB201's official split files. Splits and
normalisation follow NATS-Bench exactly, so live results are comparable with its tables:

- ``cifar10-valid``: train = cifar-split.txt "train" (25k of the train set), x-valid = its
  "valid" (the other 25k), ori-test = the test set;
- ``cifar10``: train = the 50k train set, ori-test = the test set;
- ``cifar100`` / ``ImageNet16-120``: train = the train set; x-valid / x-test = the
  "xvalid" / "xtest" halves of the test set in their split file; ori-test = the test set.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness.atomic import read_regular
from harness.data.core import Dataset, Split, file_record, standardize, to_unit
from harness.data.safe_pickle import safe_unpickle
from harness.errors import DatasetError

#: where the test suite finds NB201's split files (``../shared/data`` of the repo); users
#: pass ``split_file_dir``
DEFAULT_SPLIT_FILE_DIR = Path(__file__).resolve().parents[3] / "shared" / "data" / "nb201-splits"

#: sha256 of NB201's official split files (AutoDL-Projects @ f46486e, configs/nas-benchmark)
OFFICIAL_SPLIT_FILE_SHA256 = {
    "cifar-split.txt": "986da6174822048d4c5a25ee8ebdb7e754cd5372b51c633ffd4898ace8db9e32",
    "cifar100-test-split.txt": "14a5e3708e790ad57f987cdbcf202f724519475d6e8b0db34d0182e73b581bba",
    "imagenet-16-120-test-split.txt": (
        "c0edac1d3676a9f21acea8feeb31336202d75b1a73df62aec31c6b45bb289a18"
    ),
    "ImageNet16-120-split.txt": "b2f3d37fbc2e2c239eb90ce12abeb6bac7a539f8d3888b4d5a136d292cddbef9",
}


@dataclass(frozen=True)
class _Family:
    """One on-disk image collection: its files (with official md5s) and NB201 constants."""

    title: str
    folder: str
    train_files: tuple[tuple[str, str], ...]
    test_files: tuple[tuple[str, str], ...]
    label_key: str
    side: int
    num_classes: int
    first_label: int  # ImageNet16's labels count from 1
    keep_classes: int | None  # NB201 trains ImageNet16-120 on the first 120 classes only
    mean: tuple[float, ...]
    std: tuple[float, ...]
    augment_padding: int


_CIFAR10 = _Family(
    title="CIFAR-10",
    folder="cifar-10-batches-py",
    train_files=(
        ("data_batch_1", "c99cafc152244af753f735de768cd75f"),
        ("data_batch_2", "d4bba439e000b95fd0a9bffe97cbabec"),
        ("data_batch_3", "54ebc095f3ab1f0389bbae665268c751"),
        ("data_batch_4", "634d18415352ddfa80567beed471001a"),
        ("data_batch_5", "482c414d41f54cd18b22e5b47cb7c3cb"),
    ),
    test_files=(("test_batch", "40351d587109b95175f43aff81a1287e"),),
    label_key="labels",
    side=32,
    num_classes=10,
    first_label=0,
    keep_classes=None,
    mean=tuple(v / 255 for v in (125.3, 123.0, 113.9)),
    std=tuple(v / 255 for v in (63.0, 62.1, 66.7)),
    augment_padding=4,
)
_CIFAR100 = _Family(
    title="CIFAR-100",
    folder="cifar-100-python",
    train_files=(("train", "16019d7e3df5f24257cddd939b257f8d"),),
    test_files=(("test", "f0ef6b0ae62326f3e7ffdfab6717acfc"),),
    label_key="fine_labels",
    side=32,
    num_classes=100,
    first_label=0,
    keep_classes=None,
    mean=tuple(v / 255 for v in (129.3, 124.1, 112.4)),
    std=tuple(v / 255 for v in (68.2, 65.4, 70.4)),
    augment_padding=4,
)
_IMAGENET16 = _Family(
    title="ImageNet16",
    folder="ImageNet16",
    train_files=(
        ("train_data_batch_1", "27846dcaa50de8e21a7d1a35f30f0e91"),
        ("train_data_batch_2", "c7254a054e0e795c69120a5727050e3f"),
        ("train_data_batch_3", "4333d3df2e5ffb114b05d2ffc19b1e87"),
        ("train_data_batch_4", "1620cdf193304f4a92677b695d70d10f"),
        ("train_data_batch_5", "348b3c2fdbb3940c4e9e834affd3b18d"),
        ("train_data_batch_6", "6e765307c242a1b3d7d5ef9139b48945"),
        ("train_data_batch_7", "564926d8cbf8fc4818ba23d2faac7564"),
        ("train_data_batch_8", "f4755871f718ccb653440b9dd0ebac66"),
        ("train_data_batch_9", "bb6dd660c38c58552125b1a92f86b5d4"),
        ("train_data_batch_10", "8f03f34ac4b42271a294f91bf480f29b"),
    ),
    test_files=(("val_data", "3410e3017fdaefba8d5073aaa65e4bd6"),),
    label_key="labels",
    side=16,
    num_classes=1000,
    first_label=1,
    keep_classes=120,
    mean=tuple(v / 255 for v in (122.68, 116.66, 104.01)),
    std=tuple(v / 255 for v in (63.22, 61.26, 65.09)),
    augment_padding=2,
)
#: dataset -> (family, split file or None, the file's keys, the set it cuts)
_DATASETS: dict[str, tuple[_Family, str | None, tuple[str, ...], str]] = {
    "cifar10-valid": (_CIFAR10, "cifar-split.txt", ("train", "valid"), "train"),
    "cifar10": (_CIFAR10, None, (), ""),
    "cifar100": (_CIFAR100, "cifar100-test-split.txt", ("xvalid", "xtest"), "test"),
    "ImageNet16-120": (_IMAGENET16, "imagenet-16-120-test-split.txt", ("xvalid", "xtest"), "test"),
}
NB201_DATASETS = tuple(_DATASETS)


def read_split_file(path: Path, keys: tuple[str, ...], size: int) -> dict[str, np.ndarray]:
    """The index lists ``keys`` of an NB201 split file, checked to partition ``range(size)``.

    NB201's files are JSON ``{"key": ["int", ["0", "5", ...]], ...}``. Every list must be
    in range and duplicate-free, and together they must cover the set exactly once: a
    split file for another dataset, or data with the wrong number of images, is refused.
    """
    try:
        content = json.loads(read_regular(path))
    except FileNotFoundError:
        raise DatasetError(
            f"NB201 split file {path.name} not found in {path.parent}; pass split_file_dir "
            "(--split-dir), the folder holding NB201's split files"
        ) from None
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{path}: not a readable JSON split file ({exc}); replace it") from None
    if not isinstance(content, dict):
        raise DatasetError(f"{path}: expected a JSON object of index lists; replace the file")
    lists = {key: _index_list(path, content, key, size) for key in keys}
    covered = np.zeros(size, dtype=np.int64)
    for indices in lists.values():
        covered[indices] += 1
    if (covered != 1).any():
        overlap = int((covered > 1).sum())
        raise DatasetError(
            f"{path}: lists {', '.join(keys)} overlap in {overlap} and miss "
            f"{int((covered == 0).sum())} of the {size} images; the split file does not "
            "match this data"
        )
    return lists


def _index_list(path: Path, content: dict, key: str, size: int) -> np.ndarray:
    entry = content.get(key)
    if not (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[1], list)):
        raise DatasetError(f'{path}: key {key!r} missing or not ["int", [...]]; replace the file')
    values = entry[1]
    if not all(
        (isinstance(v, str) and v.isascii() and v.isdigit())
        or (isinstance(v, int) and not isinstance(v, bool))
        for v in values
    ):
        raise DatasetError(f"{path}: key {key!r} holds a non-integer index; replace the file")
    indices = np.array([int(v) for v in values], dtype=np.int64)
    outside = indices[(indices < 0) | (indices >= size)]
    if outside.size:
        raise DatasetError(
            f"{path}: key {key!r} has index {int(outside[0])} outside the {size} images; "
            "the split file does not match this data"
        )
    if len(np.unique(indices)) != len(indices):
        raise DatasetError(f"{path}: key {key!r} repeats an index; replace the file")
    return indices


def _read_batches(
    root: Path, family: _Family, files: tuple[tuple[str, str], ...]
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Concatenated uint8 NCHW images and 0-based labels of ``files`` (only the kept
    classes, in file order, as NB201 filters them), with their provenance."""
    images, labels, records = [], [], {}
    for name, md5 in files:
        path = root / family.folder / name
        try:
            raw = read_regular(path)
        except OSError:
            raise DatasetError(
                f"{family.title} file {path} not found or unreadable; pass --data-root, the folder "
                f"holding {family.folder}/ as extracted from the official archive"
            ) from None
        records[name] = file_record(path, raw, md5)
        batch = safe_unpickle(raw, str(path))
        if not isinstance(batch, dict):
            raise DatasetError(f"{path}: expected a dict batch; replace it with the official file")
        batch = {k.decode("latin-1") if isinstance(k, bytes) else k: v for k, v in batch.items()}
        data, targets = batch.get("data"), batch.get(family.label_key)
        width = 3 * family.side * family.side
        if not (isinstance(data, np.ndarray) and data.dtype == np.uint8 and data.ndim == 2):
            raise DatasetError(f"{path}: 'data' is not a uint8 N x {width} array; replace it")
        if data.shape[1] != width:
            raise DatasetError(f"{path}: 'data' rows have {data.shape[1]} bytes, not {width}")
        targets = np.asarray(targets if targets is not None else [])
        if targets.shape != (len(data),) or not np.issubdtype(targets.dtype, np.integer):
            raise DatasetError(
                f"{path}: {family.label_key!r} is not {len(data)} integer labels; replace it"
            )
        low, high = family.first_label, family.first_label + family.num_classes - 1
        if targets.size and (targets.min() < low or targets.max() > high):
            raise DatasetError(f"{path}: {family.label_key!r} has labels outside {low}..{high}")
        images.append(data.reshape(-1, 3, family.side, family.side))
        labels.append(targets.astype(np.int64) - family.first_label)
    images, labels = np.concatenate(images), np.concatenate(labels)
    if family.keep_classes is not None:
        keep = labels < family.keep_classes
        images, labels = images[keep], labels[keep]
    return images, labels, records


def load_nb201_dataset(name: str, root: Path | None, split_file_dir: Path | None) -> Dataset:
    """One of :data:`NB201_DATASETS`, split and normalised as NATS-Bench does."""
    family, split_file, keys, cut_set = _DATASETS[name]
    if root is None:
        raise DatasetError(
            f"dataset {name!r} needs its images: pass --data-root, the folder holding "
            f"{family.folder}/"
        )
    train_x, train_y, train_records = _read_batches(root, family, family.train_files)
    test_x, test_y, test_records = _read_batches(root, family, family.test_files)
    sets = {"train": (train_x, train_y), "test": (test_x, test_y)}

    source: dict[str, Any] = {"files": {**train_records, **test_records}}
    parts = {"train": ("train", np.arange(len(train_y)))}
    if split_file is not None:
        path = (split_file_dir or DEFAULT_SPLIT_FILE_DIR) / split_file
        lists = read_split_file(path, keys, len(sets[cut_set][1]))
        if cut_set == "train":
            parts = {"train": ("train", lists[keys[0]]), "x-valid": ("train", lists[keys[1]])}
        else:
            parts.update({"x-valid": ("test", lists[keys[0]]), "x-test": ("test", lists[keys[1]])})
        record = file_record(path, path.read_bytes())
        record["official"] = record["sha256"] == OFFICIAL_SPLIT_FILE_SHA256[split_file]
        source["split_file"] = record
    parts["ori-test"] = ("test", np.arange(len(test_y)))

    split = Split({k: idx for k, (_, idx) in parts.items()}, {k: s for k, (s, _) in parts.items()})
    splits = {}
    for part, (set_name, idx) in parts.items():
        x, y = sets[set_name]
        splits[part] = (standardize(to_unit(x[idx], 255), family.mean, family.std), y[idx])
    source["scale"] = "pixel / 255, then (x - mean) / std with NB201's constants"
    return Dataset(
        name=name,
        num_classes=family.keep_classes or family.num_classes,
        input_shape=(3, family.side, family.side),
        splits=splits,
        split=split,
        mean=family.mean,
        std=family.std,
        valid_split="x-valid" if "x-valid" in parts else None,
        test_split="x-test" if "x-test" in parts else "ori-test",
        augment_padding=family.augment_padding,
        source=source,
    )

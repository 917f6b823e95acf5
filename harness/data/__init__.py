"""Datasets for live training: examples, labels and the pinned split they are cut by.

``load_dataset(name)`` returns a :class:`Dataset` whose splits are fixed by explicit index
lists and their sha256 (:func:`split_hash`), never by "the first N", and whose ``source``
pins the files (sha256) or package version it was read from. Nothing is downloaded or
cached: digits ships with scikit-learn, the others are read from folders the user names.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.config import Field, validate
from harness.data.augment import augment
from harness.data.core import SPLIT_SEED, Dataset, Split, split_hash, stratified_split
from harness.data.digits import DIGITS_SPLIT_SIZES, load_digits
from harness.data.fashion_mnist import (
    FASHION_MNIST_OPTIONS,
    FASHION_MNIST_ROOT,
    load_fashion_mnist,
)
from harness.data.nb201 import NB201_DATASETS, load_nb201_dataset, read_split_file
from harness.errors import ConfigError, DatasetError

DATASETS: tuple[str, ...] = ("digits", "fashion-mnist", *NB201_DATASETS)
#: dataset -> the options it takes (declared once; validated in :func:`load_dataset`)
_OPTIONS: dict[str, dict[str, Field]] = {"fashion-mnist": FASHION_MNIST_OPTIONS}

__all__ = [
    "DATASETS",
    "DIGITS_SPLIT_SIZES",
    "SPLIT_SEED",
    "Dataset",
    "Split",
    "augment",
    "load_dataset",
    "read_split_file",
    "split_hash",
    "stratified_split",
]


def load_dataset(
    name: str,
    *,
    root: Path | None = None,
    split_file_dir: Path | None = None,
    **options: Any,
) -> Dataset:
    """Load dataset ``name`` (one of :data:`DATASETS`) with its pinned split.

    ``root`` is the folder holding the data (fashion-mnist defaults to Debian's install
    location; CIFAR and ImageNet16 need it), ``split_file_dir`` the folder of NB201's
    split files. Only fashion-mnist takes options (``valid_size``, ``train_size``,
    ``split_seed``); anything else is refused rather than ignored.
    """
    if name not in DATASETS:
        raise DatasetError(f"unknown dataset {name!r}; choose one of: {', '.join(DATASETS)}")
    try:
        options = validate(options, _OPTIONS.get(name, {}))
    except ConfigError as error:
        raise DatasetError(f"dataset {name!r} option {error}") from None
    if name == "digits":
        if root is not None:
            raise DatasetError("dataset 'digits' ships with scikit-learn; do not pass a data root")
        return load_digits()
    if name == "fashion-mnist":
        return load_fashion_mnist(Path(root or FASHION_MNIST_ROOT), **options)
    return load_nb201_dataset(
        name,
        None if root is None else Path(root),
        None if split_file_dir is None else Path(split_file_dir),
    )

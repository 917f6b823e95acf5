"""scikit-learn's bundled 8x8 digits, with a pinned stratified train/valid/test split.

The bundled ``digits.csv.gz`` is read directly (as ``sklearn.datasets.load_digits``
does) rather than through scikit-learn's API: importing scikit-learn costs about a
second, reading the file a few milliseconds, and the file's hash is what pins the data.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.metadata
import importlib.util
from pathlib import Path

import numpy as np

from harness.data.core import (
    SPLIT_SEED,
    Dataset,
    Split,
    channel_stats,
    file_record,
    split_rng,
    split_rng_scheme,
    standardize,
    stratified_split,
    to_unit,
)
from harness.errors import DatasetError

#: test, then valid, are drawn first; train takes the remaining 1,000 of the 1,797 images
DIGITS_SPLIT_SIZES: tuple[tuple[str, int | None], ...] = (
    ("test", 400),
    ("valid", 397),
    ("train", None),
)
_N_IMAGES = 1797


def _digits_file() -> Path:
    """Where scikit-learn keeps the data, found without importing scikit-learn."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or spec.origin is None:
        raise DatasetError(
            "dataset 'digits' needs scikit-learn's bundled data: pip install scikit-learn"
        )
    return Path(spec.origin).parent / "datasets" / "data" / "digits.csv.gz"


def load_digits() -> Dataset:
    """The digits dataset, normalised by its train split's mean/std."""
    path = _digits_file()
    try:
        raw = path.read_bytes()
        table = np.loadtxt(gzip.decompress(raw).decode("ascii").splitlines(), delimiter=",")
    except (OSError, EOFError, ValueError, UnicodeDecodeError) as exc:
        raise DatasetError(
            f"{path}: cannot read scikit-learn's digits ({type(exc).__name__}); "
            "reinstall scikit-learn"
        ) from None
    if table.shape != (_N_IMAGES, 65) or not np.isin(table, np.arange(17)).all():
        raise DatasetError(f"{path}: not the 1797x65 digits table; reinstall scikit-learn")
    pixels = table[:, :64].astype(np.uint8).reshape(-1, 1, 8, 8)
    labels = table[:, 64].astype(np.int64)

    indices = stratified_split(labels, DIGITS_SPLIT_SIZES, split_rng(SPLIT_SEED))
    split = Split(indices, dict.fromkeys(indices, "all"))
    unit = {name: to_unit(pixels[idx], 16) for name, idx in indices.items()}
    mean, std = channel_stats(unit["train"])
    splits = {
        name: (standardize(unit[name], mean, std), labels[idx]) for name, idx in indices.items()
    }
    content = hashlib.sha256(pixels.tobytes() + labels.astype("<i8").tobytes()).hexdigest()
    return Dataset(
        name="digits",
        num_classes=10,
        input_shape=(1, 8, 8),
        splits=splits,
        split=split,
        mean=mean,
        std=std,
        valid_split="valid",
        test_split="test",
        augment_padding=None,
        source={
            "package": "scikit-learn",
            "version": importlib.metadata.version("scikit-learn"),
            "file": file_record(path, raw),
            "content_sha256": content,
            "scale": "pixel / 16, then (x - train mean) / train std",
            "split_rng": split_rng_scheme(SPLIT_SEED),
            "split_sizes": [list(part) for part in DIGITS_SPLIT_SIZES],
        },
    )

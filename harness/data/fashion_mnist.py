"""Fashion-MNIST from its IDX files, with a pinned stratified train/valid split.

The files are those of the official release (Debian's ``dataset-fashion-mnist`` installs
them under :data:`FASHION_MNIST_ROOT`), raw or gzipped. They are parsed strictly: a wrong
magic number, shape or size is an error naming the file, never a silently short dataset.
"""

from __future__ import annotations

import gzip
import hashlib
import zlib
from pathlib import Path

import numpy as np

from harness.config import Field
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

FASHION_MNIST_ROOT = Path("/usr/share/datasets/fashion-mnist")
_SIDE = 28
_CLASSES = 10
#: file stem -> md5 of the official ``.gz`` release file (as torchvision lists them)
_OFFICIAL_GZ_MD5 = {
    "train-images-idx3-ubyte": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte": "bb300cfdad3c16e7a12a480ee83cd310",
}
_UBYTE = 0x08


def parse_idx(data: bytes, ndim: int, name: str) -> np.ndarray:
    """An IDX file's unsigned-byte array of rank ``ndim``; anything else is an error."""
    header = 4 + 4 * ndim
    if len(data) < 4 or data[:2] != b"\0\0" or data[2] != _UBYTE or data[3] != ndim:
        raise DatasetError(
            f"{name}: bad IDX magic number {data[:4].hex()} (want 000008{ndim:02x}); "
            "the file is corrupt or not this one: replace it"
        )
    if len(data) < header:
        raise DatasetError(f"{name}: IDX header truncated; replace the file")
    shape = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    if len(data) - header != int(np.prod(shape)):
        raise DatasetError(
            f"{name}: IDX dims {shape} need {int(np.prod(shape))} bytes of data, "
            f"the file has {len(data) - header}; replace the file"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def _read_idx(root: Path, stem: str, ndim: int) -> tuple[np.ndarray, dict]:
    """Parse ``root/stem`` or ``root/stem.gz`` (raw preferred) and describe the file."""
    for path in (root / stem, root / f"{stem}.gz"):
        if path.is_file():
            break
    else:
        raise DatasetError(
            f"Fashion-MNIST file {stem}[.gz] not found in {root}; install Debian's "
            "dataset-fashion-mnist or pass --data-root (the folder holding the IDX files)"
        )
    raw = path.read_bytes()
    gzipped = path.suffix == ".gz"
    try:
        data = gzip.decompress(raw) if gzipped else raw
    except (OSError, EOFError, zlib.error) as exc:
        raise DatasetError(f"{path}: corrupt gzip ({exc}); replace the file") from None
    record = file_record(path, raw, _OFFICIAL_GZ_MD5[stem] if gzipped else None)
    record["content_sha256"] = hashlib.sha256(data).hexdigest()
    return parse_idx(data, ndim, str(path)), record


def _read_part(root: Path, prefix: str) -> tuple[np.ndarray, np.ndarray, dict]:
    images, image_record = _read_idx(root, f"{prefix}-images-idx3-ubyte", 3)
    labels, label_record = _read_idx(root, f"{prefix}-labels-idx1-ubyte", 1)
    if images.shape[1:] != (_SIDE, _SIDE):
        raise DatasetError(f"{image_record['path']}: images are {images.shape[1:]}, not 28x28")
    if len(images) != len(labels):
        raise DatasetError(
            f"{label_record['path']}: {len(labels)} labels for {len(images)} images; "
            "the image and label files do not belong together"
        )
    if labels.size and labels.max() >= _CLASSES:
        raise DatasetError(f"{label_record['path']}: label {labels.max()} is not a class 0-9")
    files = {
        Path(image_record["path"]).name: image_record,
        Path(label_record["path"]).name: label_record,
    }
    return images.reshape(-1, 1, _SIDE, _SIDE), labels.astype(np.int64), files


#: the options a protocol's ``data_options`` may give fashion-mnist
FASHION_MNIST_OPTIONS = {
    "valid_size": Field(int, 10_000, low=1, high=60_000, help="training images held out"),
    "train_size": Field(
        int, None, low=1, high=60_000, optional=True, help="training images kept (default: rest)"
    ),
    "split_seed": Field(int, SPLIT_SEED, low=0, high=2**63 - 1, help="seed of the split"),
}


def load_fashion_mnist(
    root: Path,
    *,
    valid_size: int = 10_000,
    train_size: int | None = None,
    split_seed: int = SPLIT_SEED,
) -> Dataset:
    """Fashion-MNIST: a stratified ``valid_size`` valid split of the official train set,
    ``train_size`` train images (default: all the rest) and the official test set.

    Both cuts are drawn from ``split_seed`` and hashed, so a subsampled run is as pinned as
    a full one. Normalised by the train split's mean/std. The options are validated by
    :func:`harness.data.load_dataset` against :data:`FASHION_MNIST_OPTIONS`.
    """
    train_x, train_y, files = _read_part(root, "train")
    test_x, test_y, test_files = _read_part(root, "t10k")
    files.update(test_files)
    wanted = valid_size + (train_size or 1)
    if wanted > len(train_y):
        raise DatasetError(
            f"fashion-mnist options valid_size={valid_size}, train_size={train_size}: need "
            f"{wanted} images, the train file has {len(train_y)}; lower them"
        )

    sizes = (("valid", valid_size), ("train", train_size))
    cut = stratified_split(train_y, sizes, split_rng(split_seed))
    indices = {"train": cut["train"], "valid": cut["valid"], "test": np.arange(len(test_y))}
    split = Split(indices, {"train": "train", "valid": "train", "test": "test"})
    arrays = {"train": (train_x, train_y), "valid": (train_x, train_y), "test": (test_x, test_y)}
    unit = {name: to_unit(arrays[name][0][idx], 255) for name, idx in indices.items()}
    mean, std = channel_stats(unit["train"])
    splits = {
        name: (standardize(unit[name], mean, std), arrays[name][1][idx])
        for name, idx in indices.items()
    }
    return Dataset(
        name="fashion-mnist",
        num_classes=_CLASSES,
        input_shape=(1, _SIDE, _SIDE),
        splits=splits,
        split=split,
        mean=mean,
        std=std,
        valid_split="valid",
        test_split="test",
        augment_padding=None,
        source={
            "files": files,
            "scale": "pixel / 255, then (x - train mean) / train std",
            "split_rng": split_rng_scheme(split_seed),
            "split_sizes": [list(part) for part in sizes],
        },
    )

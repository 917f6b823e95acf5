"""Value objects of a loaded dataset and the pinned splits it is cut by.

A split is identified by *what it selects*, never by "the first N": every index list is
hashed (:func:`split_hash`) and the hashes go into the run's record, so a re-run that
trains or evaluates on other examples is caught. The helpers here (stratified cuts,
normalisation, file digests) are shared by every dataset family.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

#: seed of every stratified split this package derives (digits; fashion-mnist's default)
SPLIT_SEED = 2025


def split_hash(indices: np.ndarray) -> str:
    """Hex sha256 of an index list as little-endian int64 bytes: the identity of a split."""
    array = np.asarray(indices)
    if array.ndim != 1 or not (array.size == 0 or np.issubdtype(array.dtype, np.integer)):
        raise ValueError(f"indices must be a 1-D integer array, got {array.dtype} {array.shape}")
    return hashlib.sha256(array.astype("<i8").tobytes()).hexdigest()


def split_rng(seed: int) -> np.random.Generator:
    """The generator a pinned split is drawn from; recorded as ``split_rng_scheme(seed)``."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed)))


def split_rng_scheme(seed: int) -> str:
    """How :func:`split_rng` builds its generator, as one recordable line."""
    return f"Generator(PCG64(SeedSequence({seed})))"


@dataclass(frozen=True, eq=False)
class Split:
    """Named index lists into named source arrays, each pinned by its sha256.

    ``sources[name]`` says which array ``indices[name]`` selects from (for example the
    official train or test set). ``sha256`` covers every list's name, source and hash, so
    one value identifies the whole split in a record.
    """

    indices: Mapping[str, np.ndarray]
    sources: Mapping[str, str]
    hashes: Mapping[str, str] = field(init=False)
    sha256: str = field(init=False)

    def __post_init__(self) -> None:
        if set(self.indices) != set(self.sources):
            raise ValueError("every index list needs a source and vice versa")
        frozen = {}
        for name, indices in self.indices.items():
            split_hash(indices)  # validates the dtype before it is cast
            array = np.array(indices, dtype=np.int64)
            array.setflags(write=False)  # the hash must stay true
            frozen[name] = array
        hashes = {name: split_hash(array) for name, array in frozen.items()}
        combined = "".join(
            f"{name}\t{self.sources[name]}\t{hashes[name]}\n" for name in sorted(hashes)
        )
        object.__setattr__(self, "indices", MappingProxyType(frozen))
        object.__setattr__(self, "sources", MappingProxyType(dict(self.sources)))
        object.__setattr__(self, "hashes", MappingProxyType(hashes))
        object.__setattr__(self, "sha256", hashlib.sha256(combined.encode()).hexdigest())


@dataclass(frozen=True, eq=False)
class Dataset:
    """Normalised NCHW float32 examples and int64 labels per split, with their provenance.

    ``valid_split`` is what a strategy may see; ``test_split`` is sealed. ``mean``/``std``
    are the per-channel constants the pixels (scaled to [0, 1]) were normalised with, and
    ``augment_padding`` the crop padding of the dataset's standard augmentation (None: the
    dataset has none). ``source`` names the files and their hashes, or the package version.
    """

    name: str
    num_classes: int
    input_shape: tuple[int, ...]
    splits: Mapping[str, tuple[np.ndarray, np.ndarray]]
    split: Split
    mean: tuple[float, ...]
    std: tuple[float, ...]
    valid_split: str | None
    test_split: str
    augment_padding: int | None
    source: dict[str, Any]

    def __post_init__(self) -> None:
        if set(self.splits) != set(self.split.indices):
            raise ValueError("splits and split indices must name the same lists")
        for name, (x, y) in self.splits.items():
            n = len(self.split.indices[name])
            if x.dtype != np.float32 or not x.flags.c_contiguous:
                raise ValueError(f"split {name!r}: examples must be C-contiguous float32")
            if x.shape != (n, *self.input_shape) or y.shape != (n,) or y.dtype != np.int64:
                raise ValueError(f"split {name!r}: shapes do not match its {n} indices")
        object.__setattr__(self, "splits", MappingProxyType(dict(self.splits)))

    @property
    def split_hashes(self) -> dict[str, str]:
        """sha256 of each split's index list."""
        return dict(self.split.hashes)

    @property
    def split_fingerprint(self) -> str:
        """One sha256 of how this dataset was cut (every list's name, source array and
        index hash). The split hash a record and a table pin is the protocol's
        (:attr:`harness.protocol.Protocol.split_hash`), over the lists it checks."""
        return self.split.sha256

    @property
    def pad_fill(self) -> tuple[float, ...]:
        """A black pixel after normalisation: what augmentation pads the normalised data with."""
        return tuple(
            float((np.float32(0) - np.float32(m)) / np.float32(s))
            for m, s in zip(self.mean, self.std, strict=True)
        )

    def describe(self) -> dict[str, Any]:
        """Everything that identifies this dataset, JSON-ready for a run's record."""
        return {
            "name": self.name,
            "num_classes": self.num_classes,
            "input_shape": list(self.input_shape),
            "sizes": {name: len(idx) for name, idx in self.split.indices.items()},
            "split_sources": dict(self.split.sources),
            "split_hashes": self.split_hashes,
            "split_fingerprint": self.split_fingerprint,
            "valid_split": self.valid_split,
            "test_split": self.test_split,
            "mean": list(self.mean),
            "std": list(self.std),
            "augment_padding": self.augment_padding,
            "source": self.source,
        }


def stratified_split(
    labels: np.ndarray, sizes: Sequence[tuple[str, int | None]], rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Cut the positions of ``labels`` into named parts of exact sizes, stratified by class.

    Parts are allocated in order; a size of None (last part only) takes every remaining
    position. Each class gets its share of the positions still unallocated, rounded by
    largest remainder (ties to the lower class), so sizes are exact and the cut depends
    only on the labels, the sizes and one ``rng.permutation`` call. Parts come back sorted.
    """
    labels = np.asarray(labels)
    classes, inverse = np.unique(labels, return_inverse=True)
    perm = rng.permutation(len(labels))
    by_class = perm[np.argsort(inverse[perm], kind="stable")]  # class-major, shuffled within
    counts = np.bincount(inverse, minlength=len(classes))
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    taken = np.zeros_like(counts)
    parts = {}
    for position, (name, size) in enumerate(sizes):
        remaining = counts - taken
        if size is None:
            if position != len(sizes) - 1:
                raise ValueError("only the last part may take the rest")
            take = remaining
        else:
            if not 0 <= size <= remaining.sum():
                raise ValueError(f"part {name!r}: {size} exceeds the {remaining.sum()} left")
            take = _largest_remainder(remaining, size)
        chosen = [by_class[s + t : s + t + k] for s, t, k in zip(starts, taken, take, strict=True)]
        parts[name] = np.sort(np.concatenate(chosen)).astype(np.int64)
        taken = taken + take
    return parts


def _largest_remainder(weights: np.ndarray, total: int) -> np.ndarray:
    """Integer shares of ``total`` proportional to ``weights``, summing to it exactly."""
    whole = int(weights.sum())
    scaled = weights.astype(np.int64) * total
    shares = scaled // whole if whole else np.zeros_like(weights)
    leftover = total - int(shares.sum())
    if leftover:
        shares[np.argsort(-(scaled % whole), kind="stable")[:leftover]] += 1
    return shares


def to_unit(pixels: np.ndarray, scale: float) -> np.ndarray:
    """Integer pixels as float32 in [0, 1], computed as torchvision's ToTensor does."""
    out = np.ascontiguousarray(pixels, dtype=np.float32)
    out /= np.float32(scale)
    return out


def channel_stats(unit: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and (population) std of NCHW data, accumulated in float64."""
    mean = unit.mean(axis=(0, 2, 3), dtype=np.float64)
    std = unit.std(axis=(0, 2, 3), dtype=np.float64)
    return tuple(float(v) for v in mean), tuple(float(v) for v in std)


def standardize(unit: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """``(unit - mean) / std`` per channel in float32, in place, as torchvision's Normalize."""
    shape = (1, len(mean), 1, 1)
    unit -= np.asarray(mean, dtype=np.float32).reshape(shape)
    unit /= np.asarray(std, dtype=np.float32).reshape(shape)
    return unit


def file_record(path: Path, data: bytes, official_md5: str | None = None) -> dict[str, Any]:
    """Provenance of one source file: where it was read, its sha256, and whether it is
    byte-identical to the official release (by the md5 its publishers list)."""
    record: dict[str, Any] = {"path": str(path), "sha256": hashlib.sha256(data).hexdigest()}
    if official_md5 is not None:
        md5 = hashlib.md5(data, usedforsecurity=False).hexdigest()
        record["official"] = md5 == official_md5
    return record

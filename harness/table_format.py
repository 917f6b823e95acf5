"""The table format's value types: a variable, the keys that name variables and
properties, the format's name and version, and the checks and wording that reading and
writing a table share (``tabular/FORMAT.md``)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np

FORMAT = "harness-table"

FORMAT_VERSION = 1

VariableKey = tuple[str, str, str, str]
"""``(dataset, schedule, split, metric)``."""

PropertyKey = tuple[str, str]
"""``(dataset, name)``."""

#: metrics where higher is better, summarised by ``harness info``
SCORES = ("accuracy", "roc_auc")

MAX_SHOWN = 120  # characters of a value from the file quoted in a message

REBUILD = "rebuild it with `harness import` or `harness tabulate`"


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file's bytes: the identity a benchmark spec pins."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_only(array: np.ndarray, dtype: type) -> np.ndarray:
    """``array`` as ``dtype``, copied unless it already is a read-only array of it."""
    out = np.asarray(array, dtype=dtype)
    if out.flags.writeable:
        out = out.copy()
        out.flags.writeable = False
    return out


@dataclass(frozen=True, eq=False)
class Variable:
    """One measured quantity for every architecture, seed slot and epoch.

    ``values`` is float32 ``[n_arch, n_seed, n_epoch]`` and ``mask`` bool of the same
    shape; ``mask`` is the authority on availability (``values`` is NaN where it is
    False). Seed labels: ``"mean"`` is a source-reported mean whose per-seed values are
    unknown, ``"r0", "r1", ...`` are replicates whose seed ids the source does not name,
    anything else is a real seed. ``epochs`` are the epochs of the last axis: 1-based
    epochs of training, or 0 for the network at initialisation (an estimate file's scores).
    Both arrays are read-only; writeable inputs are copied.
    """

    values: np.ndarray
    mask: np.ndarray
    seeds: tuple[str, ...]
    epochs: tuple[int, ...]
    unit: str
    source: str
    derivation: str = ""

    def __post_init__(self) -> None:
        values = read_only(self.values, np.float32)
        mask = read_only(self.mask, np.bool_)
        object.__setattr__(self, "values", values)
        object.__setattr__(self, "mask", mask)
        object.__setattr__(self, "seeds", tuple(str(s) for s in self.seeds))
        object.__setattr__(self, "epochs", tuple(int(e) for e in self.epochs))
        if values.ndim != 3 or mask.shape != values.shape:
            raise ValueError(
                f"values {values.shape} and mask {mask.shape} must share one "
                "[n_arch, n_seed, n_epoch] shape"
            )
        if values.shape[1:] != (len(self.seeds), len(self.epochs)) or 0 in values.shape:
            raise ValueError(
                f"shape {values.shape} does not match {len(self.seeds)} seeds and "
                f"{len(self.epochs)} epochs (none may be empty)"
            )
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seed labels {self.seeds} are not unique")
        if any(b <= a for a, b in pairwise(self.epochs)) or self.epochs[0] < 0:
            raise ValueError(f"epochs {self.epochs} must be increasing numbers from 0")
        if not np.array_equal(np.isfinite(values), mask):
            raise ValueError("values must be finite where mask is True and NaN elsewhere")

    def seed_mean(self) -> np.ndarray:
        """Mean over available seed slots, ``[n_arch, n_epoch]`` float64; NaN if none."""
        counts = self.mask.sum(axis=1)
        sums = np.where(self.mask, self.values, 0.0).sum(axis=1, dtype=np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(counts > 0, sums / counts, np.nan)


def one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def key_text(key: Sequence[str]) -> str:
    return "/".join(key)


def quoted(value: Any) -> str:
    """A value from the file for a message: one line, and short whatever the file holds."""
    text = repr(value) if isinstance(value, str | bytes) else str(value)
    text = " ".join(text.split())
    return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 3] + "..."


def checked_property(
    values: np.ndarray, mask: np.ndarray, n_arch: int
) -> tuple[np.ndarray, np.ndarray]:
    values, mask = read_only(values, np.float32), read_only(mask, np.bool_)
    if values.shape != (n_arch,) or mask.shape != (n_arch,):
        raise ValueError(f"values {values.shape} and mask {mask.shape} must be ({n_arch},)")
    if not np.array_equal(np.isfinite(values), mask):
        raise ValueError("values must be finite where mask is True and NaN elsewhere")
    return values, mask


def check_name(part: str) -> None:
    if not isinstance(part, str) or not part or "/" in part or part == ".":
        raise ValueError(f"invalid table name {part!r}: non-empty text without '/'")

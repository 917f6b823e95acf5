"""The training protocol: everything that defines one training, frozen and hashed.

One :class:`Protocol` drives ``harness tabulate`` (building a table), the live evaluator
and the records, so a table entry and a live evaluation of the same architecture are the
same training. A table stores its protocol; running a strategy live against that table's
benchmark trains under exactly that protocol. The protocol hash is part of a benchmark's
identity.
"""

from __future__ import annotations

from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from harness.errors import SpecError, TableError
from harness.spec import config_hash, read_toml

OPTIMIZERS = ("sgd",)
LR_SCHEDULES = ("cosine", "constant")
AUGMENTATIONS = ("none", "crop-flip")
DTYPES = ("float32",)


@dataclass(frozen=True)
class Protocol:
    """One training under a pinned dataset split, schedule, network size and seeds.

    ``schedule`` names this training schedule inside a table (e.g. ``hp12``); ``splits``
    maps the dataset's split names to the sha256 of their index lists, checked against the
    data every time it is loaded. ``eval_splits`` are evaluated after every epoch.
    """

    dataset: str
    schedule: str
    splits: dict[str, str]
    train_split: str
    eval_splits: tuple[str, ...]
    epochs: int
    batch_size: int
    learning_rate: float
    momentum: float
    nesterov: bool
    weight_decay: float
    lr_schedule: str
    augmentation: str
    channels: int
    cells_per_stage: int
    seeds: tuple[int, ...]
    optimizer: str = "sgd"
    augmentation_padding: int = 0
    eval_batch_size: int = 1024
    dtype: str = "float32"
    device: str = "cpu"
    threads: int = 1
    data_options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        checks = [
            (self.optimizer in OPTIMIZERS, f"optimizer must be one of {OPTIMIZERS}"),
            (self.lr_schedule in LR_SCHEDULES, f"lr_schedule must be one of {LR_SCHEDULES}"),
            (self.augmentation in AUGMENTATIONS, f"augmentation must be one of {AUGMENTATIONS}"),
            (self.dtype in DTYPES, f"dtype must be one of {DTYPES}"),
            (self.epochs >= 1, "epochs must be at least 1"),
            (self.batch_size >= 1 and self.eval_batch_size >= 1, "batch sizes must be positive"),
            (self.learning_rate > 0, "learning_rate must be positive"),
            (0 <= self.momentum < 1, "momentum must be in [0, 1)"),
            (self.weight_decay >= 0, "weight_decay must be non-negative"),
            (self.channels >= 1 and self.cells_per_stage >= 1, "channels and cells_per_stage >= 1"),
            (
                len(self.seeds) >= 1 and len(set(self.seeds)) == len(self.seeds),
                "seeds: distinct, >= 1",
            ),
            (self.threads >= 1, "threads must be at least 1"),
            (self.device == "cpu" or self.device.startswith("cuda"), "device: cpu or cuda[:N]"),
            (self.train_split in self.splits, "train_split must be one of splits"),
            (all(s in self.splits for s in self.eval_splits), "eval_splits must be among splits"),
            (self.train_split not in self.eval_splits, "train_split is measured while training"),
        ]
        for ok, message in checks:
            if not ok:
                raise SpecError(f"[protocol] {message}")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["eval_splits"] = list(self.eval_splits)
        data["seeds"] = list(self.seeds)
        return data

    @property
    def protocol_hash(self) -> str:
        return config_hash(self.to_dict())

    @property
    def split_hash(self) -> str:
        return config_hash(self.splits)

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "[protocol]") -> Protocol:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise SpecError(
                f"{where}: {unknown[0]!r} is not a protocol field; "
                f"known: {', '.join(sorted(known))}"
            )
        required = [
            f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING
        ]
        missing = [name for name in required if name not in data]
        if missing:
            raise SpecError(f"{where}: {missing[0]!r} is required")
        _check_types(data, where)
        values = {**data, "eval_splits": tuple(data["eval_splits"]), "seeds": tuple(data["seeds"])}
        for name in ("learning_rate", "momentum", "weight_decay"):
            values[name] = float(values[name])
        try:
            return cls(**values)
        except SpecError as error:
            raise SpecError(f"{where}: {str(error).removeprefix('[protocol] ')}") from None


_SCALARS = {"int": int, "str": str, "bool": bool, "float": (int, float)}
_SEQUENCES = {"eval_splits": str, "seeds": int}


def _check_types(data: dict[str, Any], where: str) -> None:
    """Field types, checked before any value is used, so errors name the field."""

    def fail(name: str, expected: str) -> None:
        raise SpecError(f"{where}: {name} must be {expected}, got {data[name]!r}")

    for f in fields(Protocol):
        if f.name not in data:
            continue
        value = data[f.name]
        expected = _SCALARS.get(str(f.type))
        if expected is not None:
            if isinstance(value, bool) and str(f.type) != "bool":
                fail(f.name, str(f.type))
            if not isinstance(value, expected):
                fail(f.name, str(f.type))
        elif f.name in _SEQUENCES:
            kind = _SEQUENCES[f.name]
            if not isinstance(value, (list, tuple)) or not all(
                isinstance(v, kind) and not isinstance(v, bool) for v in value
            ):
                fail(f.name, f"an array of {kind.__name__}")
        elif not isinstance(value, dict) or (
            f.name == "splits" and not all(isinstance(v, str) for v in value.values())
        ):
            fail(f.name, "a table")


def load_protocol(path: Path) -> Protocol:
    """The ``[protocol]`` table of a TOML file."""
    raw = read_toml(path)
    if "protocol" not in raw:
        raise SpecError(f"{path}: [protocol] section is required")
    return Protocol.from_dict(raw["protocol"], f"{path}: [protocol]")


def table_protocol(stored: dict[str, Any], path: Path) -> Protocol:
    """The protocol a table built by ``harness tabulate`` stores (its ``protocol`` attribute)."""
    if not {"dataset", "schedule", "splits"} <= set(stored):
        raise TableError(
            f"{path}: holds no protocol harness can retrain; only tables built by "
            "`harness tabulate` can be verified or run live"
        )
    return Protocol.from_dict(stored, f"{path}: protocol")

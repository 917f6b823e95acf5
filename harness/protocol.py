"""The training protocol: everything that defines one training, frozen and hashed.

One :class:`Protocol` drives ``harness tabulate`` (building a table), the live evaluator
and the records, so a table entry and a live evaluation of the same architecture are the
same training. A table stores its protocol; running a strategy live against that table's
benchmark trains under exactly that protocol. The protocol hash is part of a benchmark's
identity.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness.config import Field, at, config_hash, read_toml, spec_error, validate
from harness.errors import ConfigError, TableError

OPTIMIZERS = ("sgd",)
LR_SCHEDULES = ("cosine", "constant")
AUGMENTATIONS = ("none", "crop-flip")
DTYPES = ("float32",)

#: the protocol's fields: what a ``[protocol]`` table (or a table's stored protocol) holds
PROTOCOL_FIELDS = {
    "dataset": Field(str, help="the dataset trained on (digits, fashion-mnist, cifar10, ...)"),
    "schedule": Field(str, help="this schedule's name in the table, e.g. hp12"),
    "splits": Field(dict, help="split name -> sha256 of its index list"),
    "train_split": Field(str, help="the split trained on (a name of splits)"),
    "eval_splits": Field(list, items=str, help="splits evaluated after every epoch"),
    "epochs": Field(int, low=1, high=100_000, help="epochs of the schedule"),
    "batch_size": Field(int, low=1, high=1 << 24, help="training mini-batch size"),
    "learning_rate": Field(float, low=0, low_open=True, high=1e6, help="initial step size"),
    "momentum": Field(float, low=0, high=1, high_open=True, help="SGD momentum"),
    "nesterov": Field(bool, help="Nesterov momentum"),
    "weight_decay": Field(float, low=0, high=1e6, help="L2 penalty"),
    "lr_schedule": Field(str, choices=LR_SCHEDULES, help="the learning-rate curve over epochs"),
    "augmentation": Field(str, choices=AUGMENTATIONS, help="training-image augmentation"),
    "channels": Field(int, low=1, high=1 << 16, help="the network's base width C"),
    "cells_per_stage": Field(int, low=1, high=1024, help="the network's cells per stage N"),
    "seeds": Field(list, items=int, low=0, high=2**63 - 1, help="one training per seed"),
    "optimizer": Field(str, "sgd", choices=OPTIMIZERS, help="the optimizer"),
    "augmentation_padding": Field(int, 0, low=0, high=1024, help="crop-flip's padding"),
    "eval_batch_size": Field(int, 1024, low=1, high=1 << 24, help="evaluation batch size"),
    "dtype": Field(str, "float32", choices=DTYPES, help="the floating-point type"),
    "device": Field(str, "cpu", help="cpu, cuda or cuda:N"),
    "threads": Field(int, 1, low=1, high=4096, help="torch threads per training"),
    "data_options": Field(dict, {}, help="the dataset's own options (below)"),
}


@dataclass(frozen=True)
class Protocol:
    """One training under a pinned dataset split, schedule, network size and seeds.

    ``schedule`` names this training schedule inside a table (e.g. ``hp12``); ``splits``
    maps the dataset's split names to the sha256 of their index lists, checked against the
    data every time it is loaded. ``eval_splits`` are evaluated after every epoch.
    ``channels`` and ``cells_per_stage`` size the search space's network.
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
        validate(self.to_dict(), PROTOCOL_FIELDS)
        checks = [
            (
                all(isinstance(v, str) for v in self.splits.values()),
                "splits",
                "values must be strings",
            ),
            (
                len(self.seeds) >= 1 and len(set(self.seeds)) == len(self.seeds),
                "seeds",
                "must list at least one seed, each once",
            ),
            (
                self.device == "cpu" or self.device.startswith("cuda"),
                "device",
                "must be cpu or cuda[:N]",
            ),
            (self.train_split in self.splits, "train_split", "must be one of splits"),
            (
                all(s in self.splits for s in self.eval_splits),
                "eval_splits",
                "must be among splits",
            ),
            (
                self.train_split not in self.eval_splits,
                "eval_splits",
                "must not hold train_split (it is measured while training)",
            ),
        ]
        for ok, name, message in checks:
            if not ok:
                raise ConfigError(message, name)

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
        return split_hash_of(self.splits)

    @classmethod
    def from_dict(cls, data: Any) -> Protocol:
        """A protocol from its dict form; ConfigError names the field."""
        values = validate(data, PROTOCOL_FIELDS)
        values["eval_splits"] = tuple(values["eval_splits"])
        values["seeds"] = tuple(values["seeds"])
        return cls(**values)


def split_hash_of(splits: dict[str, str]) -> str:
    """THE split hash of records, tables and manifests: sha256 of the canonical JSON of
    ``{split name: sha256 of its index list}``, exactly the lists every load checks."""
    return config_hash(splits)


def load_protocol(path: Path) -> Protocol:
    """The ``[protocol]`` table of a TOML file."""
    raw = read_toml(path)
    try:
        with at("protocol"):
            if "protocol" not in raw:
                raise ConfigError("section is required")
            return Protocol.from_dict(raw["protocol"])
    except ConfigError as error:
        raise spec_error(path, error) from None


def table_protocol(stored: Any, path: Path) -> Protocol:
    """The protocol a table built by ``harness tabulate`` stores (its ``protocol`` attribute)."""
    if not isinstance(stored, dict) or not {"dataset", "schedule", "splits"} <= set(stored):
        raise TableError(
            f"{path}: holds no protocol harness can retrain; only tables built by "
            "`harness tabulate` can be verified or run live"
        )
    try:
        return Protocol.from_dict(stored)
    except ConfigError as error:
        raise TableError(f"{path}: stored protocol is invalid: {error}") from None

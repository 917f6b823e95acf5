"""The proxy protocol: everything that defines one estimator score, frozen and hashed.

A zero-cost proxy is a function of the network it scores and of what it is fed, so a
score is reproducible only when all of it is pinned: the network's settings (``channels``,
``cells_per_stage``), each input (a dataset split, pinned by the sha256 of its index
list, or a data-free ``shape`` and class count), the init seeds, threads and device. An
estimator's own settings (batch size, dtype, BN or not) are its declared hyperparameters
and class constants, recorded beside the protocol.

An input's seed ``s`` builds the network exactly as a training with seed ``s`` starts
(:func:`harness.train.train_cell` draws weights from the seed's ``weight_init`` stream),
so a proxy at seed ``s`` scores the very network a table's seed-``s`` training began from.
The batch a data proxy sees is drawn from the seed's ``proxy_batch`` stream: the first
``batch_size`` examples of one seeded permutation of the input split, the same for every
architecture (so the proxies of two cells differ only by the cells).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness.config import Field, Problems, config_hash, validate
from harness.data import Dataset, load_dataset
from harness.errors import ConfigError, DatasetError
from harness.seeding import stream_generator

DEVICES = ("cpu", "cuda")
PROXY_FIELDS = {
    "channels": Field(int, low=1, high=1 << 16, help="the network's base width C"),
    "cells_per_stage": Field(int, low=1, high=1024, help="the network's cells per stage N"),
    "seeds": Field(list, items=int, low=0, high=2**63 - 1, help="init seeds, one score each"),
    "threads": Field(int, 1, low=1, high=4096, help="torch threads per worker"),
    "device": Field(str, "cpu", help="cpu, cuda or cuda:N"),
    "input": Field(list, help="one table per input: a dataset split or a data-free shape"),
}
INPUT_FIELDS = {
    "name": Field(str, help="the input's name: the dataset part of the estimate's variables"),
    "dataset": Field(str, None, optional=True, help="a dataset whose split feeds data proxies"),
    "split": Field(str, "train", help="the split a data proxy's batch is drawn from"),
    "split_sha256": Field(str, None, optional=True, help="pin of the split's index list"),
    "shape": Field(
        list,
        None,
        optional=True,
        items=int,
        low=1,
        high=1 << 16,
        help="a data-free input's shape [channels, height, width]",
    ),
    "classes": Field(
        int, None, optional=True, low=1, high=1 << 20, help="a data-free input's class count"
    ),
}


@dataclass(frozen=True)
class ProxyInput:
    """What a proxy is fed: a dataset split (``dataset``) or nothing but a shape."""

    name: str
    dataset: str | None
    split: str
    split_sha256: str | None
    shape: tuple[int, ...] | None
    classes: int | None

    @property
    def has_data(self) -> bool:
        return self.dataset is not None


@dataclass(frozen=True)
class ProxyProtocol:
    """The network settings, inputs, init seeds, threads and device of every score."""

    channels: int
    cells_per_stage: int
    seeds: tuple[int, ...]
    threads: int
    device: str
    inputs: tuple[ProxyInput, ...]

    @classmethod
    def from_dict(cls, data: Any) -> ProxyProtocol:
        """Validate a ``[proxy]`` table; errors name the field, every problem at once."""
        raw = validate(data, PROXY_FIELDS)
        problems = Problems()
        if not raw["seeds"] or len(set(raw["seeds"])) != len(raw["seeds"]):
            problems.add(ConfigError("must list at least one seed, each once", "seeds"))
        if raw["device"] != "cpu" and not raw["device"].startswith("cuda"):
            problems.add(
                ConfigError(f"must be 'cpu' or 'cuda[:N]', got {raw['device']!r}", "device")
            )
        inputs = []
        for number, entry in enumerate(raw["input"]):
            with problems.check(f"input.{number}"):
                inputs.append(_input(entry))
        if not raw["input"]:
            problems.add(ConfigError("must list at least one input", "input"))
        names = [i.name for i in inputs]
        if len(set(names)) != len(names):
            problems.add(ConfigError("names must differ", "input"))
        problems.raise_any()
        return cls(
            channels=raw["channels"],
            cells_per_stage=raw["cells_per_stage"],
            seeds=tuple(raw["seeds"]),
            threads=raw["threads"],
            device=raw["device"],
            inputs=tuple(inputs),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "channels": self.channels,
            "cells_per_stage": self.cells_per_stage,
            "seeds": list(self.seeds),
            "threads": self.threads,
            "device": self.device,
            "input": [
                {
                    "name": i.name,
                    "dataset": i.dataset,
                    "split": i.split,
                    "split_sha256": i.split_sha256,
                    "shape": None if i.shape is None else list(i.shape),
                    "classes": i.classes,
                }
                for i in self.inputs
            ],
        }

    @property
    def protocol_hash(self) -> str:
        return config_hash(self.to_dict())


def _input(entry: Any) -> ProxyInput:
    raw = validate(entry, INPUT_FIELDS)
    problems = Problems()
    if "/" in raw["name"] or not raw["name"]:
        problems.add(ConfigError("must be a non-empty name without '/'", "name"))
    if raw["dataset"] is None:
        if raw["shape"] is None or raw["classes"] is None:
            problems.add(
                ConfigError(
                    "a data-free input needs 'shape' ([channels, height, width]) and "
                    "'classes'; or name a 'dataset'"
                )
            )
        if raw["shape"] is not None and len(raw["shape"]) != 3:
            problems.add(ConfigError("must be [channels, height, width]", "shape"))
    elif raw["shape"] is not None or raw["classes"] is not None:
        problems.add(
            ConfigError(
                "an input with a dataset takes its shape and classes from the data; "
                "drop 'shape' and 'classes'"
            )
        )
    problems.raise_any()
    return ProxyInput(
        name=raw["name"],
        dataset=raw["dataset"],
        split=raw["split"],
        split_sha256=raw["split_sha256"],
        shape=None if raw["shape"] is None else tuple(raw["shape"]),
        classes=raw["classes"],
    )


@dataclass(frozen=True)
class InputData:
    """An input made concrete: its shape and classes, and its split's examples (or None)."""

    name: str
    shape: tuple[int, ...]
    classes: int
    examples: np.ndarray | None
    labels: np.ndarray | None
    #: the dataset's description and split hash, for the record (empty when data-free)
    provenance: dict[str, Any]
    #: the whole dataset the split comes from (None when data-free), for estimators that
    #: train on one split and score on another (a supernet)
    dataset: Dataset | None = None

    def batch_indices(self, seed: int, batch_size: int) -> np.ndarray:
        """The examples seed ``seed`` feeds a proxy: a prefix of one seeded permutation."""
        assert self.examples is not None
        if batch_size > len(self.examples):
            raise ConfigError(
                f"batch size {batch_size} exceeds the {len(self.examples)} examples of "
                f"input {self.name!r}"
            )
        order = stream_generator(seed, "proxy_batch").permutation(len(self.examples))
        return np.sort(order[:batch_size])


def load_input(
    proxy_input: ProxyInput, data_root: Path | None = None, split_dir: Path | None = None
) -> InputData:
    """Load an input's split (checked against its pin), or describe a data-free input.
    ``data_root`` and ``split_dir`` locate CIFAR/ImageNet16 and NB201's split files."""
    if proxy_input.dataset is None:
        assert proxy_input.shape is not None and proxy_input.classes is not None
        return InputData(proxy_input.name, proxy_input.shape, proxy_input.classes, None, None, {})
    try:
        dataset = load_dataset(proxy_input.dataset, root=data_root, split_file_dir=split_dir)
    except DatasetError as error:
        raise ConfigError(f"input {proxy_input.name!r}: {error}", "dataset") from None
    if proxy_input.split not in dataset.splits:
        raise ConfigError(
            f"dataset {dataset.name!r} has no split {proxy_input.split!r}; "
            f"it has {', '.join(sorted(dataset.splits))}",
            "split",
        )
    actual = dataset.split_hashes[proxy_input.split]
    if proxy_input.split_sha256 is not None and actual != proxy_input.split_sha256:
        raise ConfigError(
            f"split {proxy_input.split!r} of {dataset.name!r} has index sha256 {actual}, but "
            f"the spec pins {proxy_input.split_sha256}: the data differ from the spec's",
            "split_sha256",
        )
    examples, labels = dataset.splits[proxy_input.split]
    return InputData(
        name=proxy_input.name,
        shape=tuple(dataset.input_shape),
        classes=dataset.num_classes,
        examples=examples,
        labels=labels,
        provenance={"dataset": dataset.describe(), "split": proxy_input.split, "sha256": actual},
        dataset=dataset,
    )

"""What a weight-sharing search trains on: the data, its two splits, the network size.

NB201 trained the supernet's weights on one half of ``cifar10-valid``'s training data and
the architecture parameters on the other half. :class:`OneShotSetup` names the dataset,
the split that trains the weights and the split that trains (and selects) the
architecture, the network's ``C`` and ``N``, the device and the thread count. It is shared
by every weight-sharing run of a benchmark; a run's own randomness comes from its seed.
The batches follow NB201's loaders (:class:`Batches`): a shuffled pass over the weights
split, each example paired with one drawn from the architecture split, and shuffled passes
over the architecture split for the steps that only evaluate.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from harness.data import Dataset, load_dataset
from harness.data.augment import augment
from harness.errors import ConfigError, DatasetError, TableError
from harness.protocol import Protocol, table_protocol


@dataclass(frozen=True, eq=False)
class OneShotSetup:
    """The data and network size every weight-sharing run of a benchmark trains with."""

    dataset: Dataset
    weights_split: str
    arch_split: str
    channels: int
    cells_per_stage: int
    augmentation: str = "none"
    device: str = "cpu"
    threads: int = 1

    def __post_init__(self) -> None:
        for field, name in (("weights_split", self.weights_split), ("arch_split", self.arch_split)):
            if name not in self.dataset.splits:
                raise ConfigError(
                    f"dataset {self.dataset.name!r} has no split {name!r} "
                    f"(it has {sorted(self.dataset.splits)})",
                    f"supernet.{field}",
                )
        if self.weights_split == self.arch_split:
            raise ConfigError(
                "the weights and the architecture must train on different splits",
                "supernet.arch_split",
            )
        if self.dataset.test_split in (self.weights_split, self.arch_split):
            raise ConfigError(
                f"split {self.dataset.test_split!r} is the dataset's test split: a search "
                "never trains on it",
                "supernet.arch_split",
            )
        if self.augmentation == "crop-flip" and self.dataset.augment_padding is None:
            raise ConfigError(
                f"dataset {self.dataset.name!r} has no standard augmentation",
                "supernet.augmentation",
            )

    def describe(self) -> dict[str, Any]:
        """What a record pins of the set-up (the data by its split hashes)."""
        return {
            "dataset": self.dataset.name,
            "weights_split": self.weights_split,
            "weights_split_sha256": self.dataset.split.hashes[self.weights_split],
            "arch_split": self.arch_split,
            "arch_split_sha256": self.dataset.split.hashes[self.arch_split],
            "channels": self.channels,
            "cells_per_stage": self.cells_per_stage,
            "augmentation": self.augmentation,
            "device": self.device,
            "threads": self.threads,
        }

    def split_size(self, name: str) -> int:
        return len(self.dataset.splits[name][1])


class Batches:
    """NB201's search loaders over one set-up, every draw from the given generators."""

    def __init__(self, setup: OneShotSetup, rng: np.random.Generator, device: torch.device):
        self.setup, self.rng, self.device = setup, rng, device
        self.weights = self._tensors(setup.weights_split)
        self.arch = self._tensors(setup.arch_split)
        self.padding = setup.dataset.augment_padding or 0
        self.fill = setup.dataset.pad_fill

    def _tensors(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = self.setup.dataset.splits[split]
        return torch.from_numpy(x).to(self.device), torch.from_numpy(y).to(self.device)

    def _augmented(self, x: torch.Tensor) -> torch.Tensor:
        if self.setup.augmentation != "crop-flip":
            return x
        return augment(x, self.rng, self.padding, fill=self.fill)

    def paired(self, batch_size: int) -> Iterator[tuple[torch.Tensor, ...]]:
        """One epoch: shuffled weights-split batches, each with as many architecture-split
        examples drawn with replacement (NB201's ``SearchDataset``), both augmented."""
        wx, wy = self.weights
        ax, ay = self.arch
        order = torch.from_numpy(self.rng.permutation(len(wy))).to(self.device)
        for start in range(0, len(wy), batch_size):
            index = order[start : start + batch_size]
            drawn = torch.from_numpy(self.rng.integers(len(ay), size=len(index))).to(self.device)
            yield (
                self._augmented(wx[index]),
                wy[index],
                self._augmented(ax[drawn]),
                ay[drawn],
            )

    def weights_only(self, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """One shuffled, augmented pass over the weights split (ENAS's shared CNN)."""
        wx, wy = self.weights
        order = torch.from_numpy(self.rng.permutation(len(wy))).to(self.device)
        for start in range(0, len(wy), batch_size):
            index = order[start : start + batch_size]
            yield self._augmented(wx[index]), wy[index]

    def arch_stream(
        self, batch_size: int, augmented: bool
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Endless shuffled passes over the architecture split, one batch at a time."""
        ax, ay = self.arch
        while True:
            order = torch.from_numpy(self.rng.permutation(len(ay))).to(self.device)
            for start in range(0, len(ay), batch_size):
                index = order[start : start + batch_size]
                x = ax[index]
                yield (self._augmented(x) if augmented else x), ay[index]


def benchmark_setup(
    supernet: Mapping[str, Any] | None,
    stored_protocol: Any,
    table_path: Path,
    default_arch_split: str,
    data_root: Path | None,
    split_dir: Path | None,
) -> OneShotSetup:
    """The set-up a spec's ``[supernet]`` names; every key it leaves out comes from the
    protocol the table stores (weights on its training split, the architecture on the
    search signal's split ``default_arch_split``), when the table stores a runnable one."""
    given = {k: v for k, v in (supernet or {}).items() if v is not None}
    try:
        protocol: Protocol | None = table_protocol(stored_protocol, table_path)
    except TableError:
        protocol = None
    defaults: dict[str, Any] = {"augmentation": "none", "device": "cpu", "threads": 1}
    if protocol is not None:
        defaults.update(
            dataset=protocol.dataset,
            weights_split=protocol.train_split,
            arch_split=default_arch_split,
            channels=protocol.channels,
            cells_per_stage=protocol.cells_per_stage,
            augmentation=protocol.augmentation,
            device=protocol.device,
            threads=protocol.threads,
        )
    values = {**defaults, **given}
    if protocol is not None:  # the protocol pins its splits' index lists
        for key in ("weights_split", "arch_split"):
            values.setdefault(f"{key}_sha256", protocol.splits.get(values[key]))
    needed = ("dataset", "weights_split", "arch_split", "channels", "cells_per_stage")
    missing = [key for key in needed if values.get(key) is None]
    if missing:
        raise ConfigError(
            f"must name {', '.join(missing)}: table {table_path} stores no protocol to take "
            "them from",
            f"supernet.{missing[0]}",
        )
    device = str(values["device"])
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"is {device!r} but no CUDA device is available here", "supernet.device")
    if device != "cpu" and not device.startswith("cuda"):
        raise ConfigError(f"must be cpu, cuda or cuda:N, got {device!r}", "supernet.device")
    try:
        dataset = load_dataset(
            values["dataset"], root=data_root, split_file_dir=values.get("split_dir") or split_dir
        )
    except DatasetError as error:
        raise ConfigError(str(error), "supernet.dataset") from None
    for key in ("weights_split", "arch_split"):
        pinned, name = values.get(f"{key}_sha256"), values[key]
        actual = dataset.split.hashes.get(name)
        if pinned is not None and actual is not None and actual != pinned:
            raise ConfigError(
                f"split {name!r} of {dataset.name!r} has index sha256 {actual}, but {pinned} is "
                "pinned: the data or split files differ",
                f"supernet.{key}_sha256",
            )
    return OneShotSetup(
        dataset=dataset,
        weights_split=values["weights_split"],
        arch_split=values["arch_split"],
        channels=int(values["channels"]),
        cells_per_stage=int(values["cells_per_stage"]),
        augmentation=values["augmentation"],
        device=device,
        threads=int(values["threads"]),
    )

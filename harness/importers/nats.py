"""Build tables from the official NATS-Bench "simple" archives, without running their code.

NATS-Bench (Dong et al., TPAMI 2021; github.com/D-X-Y/NATS-Bench, MIT) publishes one
folder per search space: ``NATS-tss-v1_0-3ffb9-simple`` (the topology space, i.e. the
15,625 NB201 cells) and ``NATS-sss-v1_0-50262-simple`` (32,768 channel configurations).
``meta.pickle.pbz2`` lists the architecture strings in index order; ``NNNNNN.pickle.pbz2``
holds architecture NNNNNN's results, a bz2-compressed pickle of ``{hp: ArchResults
state}`` whose ``all_results[(dataset, seed)]`` are ``ResultsCount`` states with per-epoch
train values and ``"<split>@<epoch>"``-keyed evaluations (``nats_bench/api_utils.py``).

Every file is read without running its code and bounded in size
(:mod:`harness.importers.nats_files`), then validated field by field here; any problem
is a :class:`TableError` naming the file. A folder may hold only some records:
the table then has masks that are False for the others, and its notes say how many are
present.

Variables are ``<dataset>/hp<hp>/<split>/<metric>``, named as NATS-Bench names them and
as harness's NB201 table does: ``hp`` is the archive's schedule key (tss ``12``, ``200``;
sss ``01``, ``12``, ``90``: the epochs trained), ``split`` is ``train``, ``x-valid``,
``x-test`` or ``ori-test``, and ``metric`` is ``accuracy`` (top-1, percent), ``loss``,
``accuracy_top5`` (train, where recorded), ``epoch_time_s`` (train), ``total_time_s``
(train, last epoch) or ``eval_time_s`` (evaluated splits). Seed slots are the real seeds;
epochs are those the records hold (NB201's original 200-epoch runs evaluated some splits
after the last epoch only).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness.errors import ConfigError, TableError
from harness.importers.base import Importer
from harness.importers.nats_files import (
    MAX_DECOMPRESSED_BYTES,
    MAX_NODES,
    fail,
    kind_of,
    load,
    read_bytes,
    read_nats_file,
)
from harness.importers.nb201 import SPLITS, TRAINING
from harness.spaces.base import SearchSpace
from harness.spaces.nats_sss import CELL, NATSSizeSpace
from harness.spaces.nb201 import NB201Space
from harness.table import PropertyKey, Variable, VariableKey, write_table
from harness.version import __version__

__all__ = [
    "ARCHIVES",
    "DATASETS",
    "MAX_DECOMPRESSED_BYTES",
    "MAX_NODES",
    "NATSImporter",
    "build_nats_table",
    "read_nats_file",
]

_LOG = logging.getLogger(__name__)

_META = "meta.pickle.pbz2"
_RECORD = re.compile(r"(\d{6})\.pickle\.pbz2")
_SUFFIX = ".pickle.pbz2"
_ORIGIN = "D-X-Y/NATS-Bench official {archive}"
_LICENCE = "MIT"


@dataclass(frozen=True)
class _Archive:
    """One official archive: NATS-Bench's short space name, the folder name, the harness
    space whose index order its ``meta_archs`` follow, and its training schedules."""

    kind: str
    name: str
    space: type[SearchSpace]
    hps: tuple[str, ...]


ARCHIVES = {
    "tss": _Archive("tss", "NATS-tss-v1_0-3ffb9-simple", NB201Space, ("12", "200")),
    "sss": _Archive("sss", "NATS-sss-v1_0-50262-simple", NATSSizeSpace, ("01", "12", "90")),
}
"""The two official "simple" archives, by NATS-Bench's short space names."""

DATASETS = ("cifar10-valid", "cifar10", "cifar100", "ImageNet16-120")
_SPLITS = {
    "cifar10-valid": ("x-valid", "ori-test"),
    "cifar10": ("ori-test",),
    "cifar100": ("x-valid", "x-test", "ori-test"),
    "ImageNet16-120": ("x-valid", "x-test", "ori-test"),
}
_CLASSES = {"cifar10-valid": 10, "cifar10": 10, "cifar100": 100, "ImageNet16-120": 120}
_STATE_KEYS = frozenset({"arch_index", "arch_str", "all_results", "dataset_seed", "clear_net_done"})
_RESULT_KEYS = frozenset(
    {
        "name",
        "net_state_dict",
        "train_acc1es",
        "train_acc5es",
        "train_losses",
        "train_times",
        "arch_config",
        "params",
        "flop",
        "seed",
        "epochs",
        "latency",
        "eval_names",
        "eval_acc1es",
        "eval_times",
        "eval_losses",
    }
)
_META_KEYS = frozenset({"meta_archs", "total_archs", "arch2infos", "evaluated_indexes"})
_COST_HP = "12"  # NATS-Bench's get_cost_info default: params, flops and latency come from hp 12
_LEGACY_SEED = 888  # get_compute_costs' fix for seeds that disagree on params/flops


# -- validation ----------------------------------------------------------------------------


class _Where:
    """The file and field being validated, so that every error names both."""

    def __init__(self, path: Path, archive: str, field: str = "") -> None:
        self.path, self.archive, self.field = path, archive, field

    def at(self, part: str) -> _Where:
        return _Where(self.path, self.archive, f"{self.field}{part}")

    def error(self, problem: str) -> TableError:
        where = f" at {self.field}" if self.field else ""
        return fail(self.path, f"is malformed{where}: {problem}", self.archive)


def _dict(value: object, where: _Where, keys: Iterable[object] | None = None) -> dict:
    """``value`` as a dict, with exactly ``keys`` when they are given."""
    if not isinstance(value, dict):
        raise where.error(f"expected a dict, got {kind_of(value)}")
    if keys is not None:
        wanted = set(keys)
        if set(value) != wanted:
            missing = sorted(map(kind_of, wanted - set(value)))
            extra = sorted(map(kind_of, set(value) - wanted))
            raise where.error(f"keys missing: {missing[:5]}; unexpected keys: {extra[:5]}")
    return value


def _equal(value: object, expected: object, where: _Where) -> None:
    if type(value) is not type(expected) or value != expected:
        raise where.error(f"expected {kind_of(expected)}, got {kind_of(value)}")


#: what a number in a record may be: Python or numpy ints and floats (bools are not)
_NUMBERS = frozenset(
    {int, float, np.float16, np.float32, np.float64, np.int8, np.int16, np.int32, np.int64}
    | {np.uint8, np.uint16, np.uint32, np.uint64}
)


def _number(value: object, where: _Where) -> float:
    """A finite real number as a float."""
    if type(value) not in _NUMBERS:
        raise where.error(f"expected a number, got {kind_of(value)}")
    try:
        number = float(value)  # type: ignore[arg-type]
    except OverflowError:
        raise where.error("expected a number, got an int too large for a float") from None
    if not math.isfinite(number):
        raise where.error(f"expected a finite number, got {number}")
    return number


#: metric -> (lowest, highest, what it must be)
_RANGES = {
    "accuracy": (0.0, 100.0, "a percentage in 0..100"),
    "loss": (0.0, 1e30, "a non-negative loss"),
    "time": (1e-30, 1e30, "a positive time"),
}


def _values(numbers: Iterable[object], metric: str, where: _Where) -> np.ndarray:
    """Finite numbers within the metric's range, as float64."""
    low, high, what = _RANGES[metric]
    items = list(numbers)
    for item in items:
        if type(item) not in _NUMBERS:
            raise where.error(f"expected a number, got {kind_of(item)}")
    try:
        out = np.array(items, dtype=np.float64)
    except OverflowError:
        raise where.error("expected a number, got an int too large for a float") from None
    if not np.isfinite(out).all():
        raise where.error(f"expected finite numbers, got {out[~np.isfinite(out)][0]}")
    bad = (out < low) | (out > high)
    if bad.any():
        raise where.error(f"expected {what}, got {out[bad][0]}")
    return out


def _per_epoch(value: object, epochs: int, metric: str, where: _Where) -> np.ndarray:
    """A ``{epoch: number}`` dict over exactly the epochs 0..E-1, as float64 ``[E]``."""
    data = _dict(value, where)
    if not all(type(k) is int for k in data) or sorted(data) != list(range(epochs)):
        raise where.error(f"expected the epochs 0..{epochs - 1} as int keys")
    return _values((data[e] for e in range(epochs)), metric, where)


@functools.cache
def _eval_keys(splits: tuple[str, ...], epochs: int) -> dict[str, tuple[str, int]]:
    """Every valid ``"<split>@<epoch>"`` key, parsed."""
    return {f"{split}@{epoch}": (split, epoch) for split in splits for epoch in range(epochs)}


def _by_split(
    value: object, splits: tuple[str, ...], epochs: int, where: _Where
) -> dict[str, dict[int, object]]:
    """A ``{"<split>@<epoch>": number}`` dict as ``{split: {epoch: number}}``."""
    keys = _eval_keys(splits, epochs)
    out: dict[str, dict[int, object]] = {split: {} for split in splits}
    for key, number in _dict(value, where).items():
        parsed = keys.get(key)
        if parsed is None:
            raise where.error(
                f"key {kind_of(key)} is not '<split>@<epoch>' with a split of {list(splits)} "
                f"and an epoch in 0..{epochs - 1}"
            )
        out[parsed[0]][parsed[1]] = number
    return out


def _constant(values: np.ndarray, where: _Where) -> float:
    """The one value of a synthetic time series (NATS-Bench sets the same for every epoch)."""
    if not (values == values[0]).all():
        raise where.error(
            "times differ between epochs, but every official record holds one synthetic "
            "time for all epochs"
        )
    return float(values[0])


def _latency(value: object, where: _Where) -> float | None:
    """``ResultsCount.get_latency``: the mean of the recorded list; None if not recorded."""
    if value is None:
        return None
    if not isinstance(value, list) or not value:
        raise where.error(f"expected None or a non-empty list of seconds, got {kind_of(value)}")
    return sum(_number(v, where) for v in value) / len(value)


def _expected_config(kind: str, dataset: str, arch: str) -> dict[str, object]:
    """The ``arch_config`` every record of ``arch`` on ``dataset`` holds."""
    if kind == "tss":
        return {"channel": 16, "num_cells": 5, "arch_str": arch, "class_num": _CLASSES[dataset]}
    return {
        "name": "infer.shape.tiny",
        "channels": arch,
        "arch_str": arch,
        "genotype": CELL,
        "class_num": _CLASSES[dataset],
    }


def _check_config(value: object, expected: dict[str, object], where: _Where) -> None:
    config = _dict(value, where, expected)
    for key, wanted in expected.items():
        _equal(config[key], wanted, where.at(f"[{key!r}]"))


def _seeds(value: object, where: _Where) -> dict[str, list[int]]:
    """``dataset_seed``: every dataset's seeds, increasing positive ints (as NATS-Bench
    keeps them)."""
    seeds = _dict(value, where, DATASETS)
    for dataset, listed in seeds.items():
        if (
            not isinstance(listed, list)
            or not listed
            or not all(type(s) is int and s > 0 for s in listed)
            or listed != sorted(set(listed))
        ):
            raise where.at(f"[{dataset!r}]").error(
                f"expected increasing positive int seeds, got {kind_of(listed)}"
            )
    return seeds


# -- collecting values ---------------------------------------------------------------------


class _Store:
    """One variable's values as they are read: a dense ``[arch, seed, epoch]`` block that
    grows when a record brings a seed or an epoch not seen before (both kept sorted).
    ``spread`` > 0 means the one stored epoch stands for every epoch 1..spread."""

    def __init__(self, n_arch: int, unit: str, derivation: str, spread: int = 0) -> None:
        self.unit, self.derivation, self.spread = unit, derivation, spread
        self.seeds: list[int] = []
        self.epochs: list[int] = []
        self.values = np.full((n_arch, 0, 0), np.nan, dtype=np.float32)

    def _grow(self, axis: int, labels: list[int], wanted: Iterable[int]) -> list[int]:
        merged = sorted(set(labels).union(wanted))
        if len(merged) == len(labels):
            return labels
        shape = list(self.values.shape)
        shape[axis] = len(merged)
        grown = np.full(shape, np.nan, dtype=np.float32)
        index: list[Any] = [slice(None)] * 3
        index[axis] = np.searchsorted(merged, labels)
        grown[tuple(index)] = self.values
        self.values = grown
        return merged

    def put(
        self, arch: int, seeds: tuple[int, ...], seed: int, epochs: list[int], values: Any
    ) -> None:
        """Store ``values`` of ``seed`` (one of ``seeds``, all made room for at once)."""
        self.seeds = self._grow(1, self.seeds, seeds)
        self.epochs = self._grow(2, self.epochs, epochs)
        slot = self.seeds.index(seed)
        self.values[arch, slot, np.searchsorted(self.epochs, epochs)] = values

    def variable(self, source: str) -> Variable:
        values, epochs = self.values, tuple(self.epochs)
        values.setflags(write=False)  # so that Variable keeps it instead of copying it
        if self.spread:
            epochs = tuple(range(1, self.spread + 1))
            values = np.broadcast_to(values, (*values.shape[:2], self.spread))
        mask = np.isfinite(values)
        mask.setflags(write=False)
        seeds = tuple(str(s) for s in self.seeds)
        return Variable(values, mask, seeds, epochs, self.unit, source, self.derivation)


_UNITS = {
    "accuracy": "percent",
    "accuracy_top5": "percent",
    "loss": "nats",
    "epoch_time_s": "s",
    "eval_time_s": "s",
    "total_time_s": "s",
}
#: train metric -> the ResultsCount field holding it per epoch
_TRAIN_FIELDS = {
    "accuracy": "train_acc1es",
    "accuracy_top5": "train_acc5es",
    "loss": "train_losses",
    "epoch_time_s": "train_times",
}


def _derivation(key: VariableKey) -> tuple[str, int]:
    """How a variable is read from a record, and its ``spread`` (see :class:`_Store`)."""
    dataset, schedule, split, metric = key
    hp = schedule.removeprefix("hp")
    state = f"hp '{hp}' all_results[('{dataset}', seed)]"
    if metric == "total_time_s":
        return f"sum of {state}.train_times over its {int(hp)} epochs (float64)", 0
    if metric == "epoch_time_s":
        return f"{state}.train_times, NATS-Bench's synthetic time, one for every epoch", int(hp)
    if metric == "eval_time_s":
        return (
            f"{state}.eval_times['{split}@<epoch - 1>'], NATS-Bench's synthetic time of one "
            "evaluation pass, one for every epoch",
            int(hp),
        )
    if split == "train":
        return f"{state}.{_TRAIN_FIELDS[metric]}[<epoch - 1>]", 0
    field = "eval_acc1es" if metric == "accuracy" else "eval_losses"
    return f"{state}.{field}['{split}@<epoch - 1>']", 0


class _Collector:
    """Every variable and property of the table, filled record by record."""

    def __init__(self, num_archs: int) -> None:
        self.num_archs = num_archs
        self.stores: dict[VariableKey, _Store] = {}
        self.properties: dict[PropertyKey, np.ndarray] = {}
        self.unresolved: dict[str, list[int]] = {}

    def put(self, key: VariableKey, trial: _Trial, epochs: list[int], values: Any) -> None:
        """Store ``values`` of ``trial`` at the 1-based ``epochs`` of variable ``key``."""
        store = self.stores.get(key)
        if store is None:
            derivation, spread = _derivation(key)
            store = self.stores[key] = _Store(self.num_archs, _UNITS[key[3]], derivation, spread)
        store.put(trial.arch, trial.seeds, trial.seed, epochs, values)

    def put_property(self, key: PropertyKey, arch: int, value: float | None) -> None:
        """Store a property; None records that it is unresolvable for ``arch``."""
        if key not in self.properties:
            self.properties[key] = np.full(self.num_archs, np.nan, dtype=np.float64)
        if value is None:
            self.unresolved.setdefault("/".join(key), []).append(arch)
        else:
            self.properties[key][arch] = value


def _cost(values: list[float], seeds: list[int]) -> float | None:
    """NATS-Bench's ``get_compute_costs`` for params and FLOPs: the seeds' mean, or seed
    888's value when the seeds disagree at 5 decimals (its fix for a legacy weight
    migration issue); None where they disagree without a seed 888, where NATS-Bench's
    own API fails."""
    if len({f"{v:.5f}" for v in values}) > 1:
        return values[seeds.index(_LEGACY_SEED)] if _LEGACY_SEED in seeds else None
    return sum(values) / len(values)


# -- reading records -----------------------------------------------------------------------


@dataclass(frozen=True)
class _Trial:
    """The training a ``ResultsCount`` state describes: architecture, schedule, dataset
    and seed (among the dataset's seeds), and the archive kind that fixes its
    ``arch_config``."""

    kind: str
    arch: int
    arch_str: str
    hp: str
    dataset: str
    seed: int
    seeds: tuple[int, ...]  # all of the dataset's seeds in this schedule

    @property
    def epochs(self) -> int:
        return int(self.hp)

    def key(self, split: str, metric: str) -> VariableKey:
        return (self.dataset, f"hp{self.hp}", split, metric)


@dataclass(frozen=True)
class _Costs:
    """A ``ResultsCount``'s compute costs: params (MB), FLOPs (M), latency (s or None)."""

    params: float
    flops: float
    latency: float | None


def _read_result(result: object, trial: _Trial, where: _Where, out: _Collector) -> _Costs:
    """Validate one ``ResultsCount`` state and store its values."""
    epochs = trial.epochs
    data = _dict(result, where, _RESULT_KEYS)
    _equal(data["name"], trial.dataset, where.at(".name"))
    _equal(data["epochs"], epochs, where.at(".epochs"))
    if data["net_state_dict"] is not None:
        raise where.at(".net_state_dict").error("expected None (the simple archive has no weights)")
    text = data["seed"]
    if not isinstance(text, str) or not text.isdecimal() or int(text) != trial.seed:
        raise where.at(".seed").error(f"expected seed {trial.seed} as text, got {kind_of(text)}")
    expected = _expected_config(trial.kind, trial.dataset, trial.arch_str)
    _check_config(data["arch_config"], expected, where.at(".arch_config"))
    costs = _Costs(
        _number(data["params"], where.at(".params")),
        _number(data["flop"], where.at(".flop")),
        _latency(data["latency"], where.at(".latency")),
    )
    every = list(range(1, epochs + 1))
    for metric, field in _TRAIN_FIELDS.items():
        if metric == "accuracy_top5" and data[field] is None:
            continue  # NB201's original 200-epoch runs did not record it
        at = where.at(f".{field}")
        if metric == "epoch_time_s":
            times = _per_epoch(data[field], epochs, "time", at)
            out.put(trial.key("train", metric), trial, [1], _constant(times, at))
            total = sum(times.tolist())  # NATS-Bench's train-all-time: a plain float64 sum
            out.put(trial.key("train", "total_time_s"), trial, [epochs], total)
        else:
            values = _per_epoch(data[field], epochs, metric.removesuffix("_top5"), at)
            out.put(trial.key("train", metric), trial, every, values)
    _read_evaluations(data, trial, where, out)
    return costs


def _read_evaluations(data: dict, trial: _Trial, where: _Where, out: _Collector) -> None:
    """The ``eval_*`` fields: accuracy and loss where evaluated, a time for every epoch."""
    splits, epochs = _SPLITS[trial.dataset], trial.epochs
    names = data["eval_names"]
    if (
        not isinstance(names, list)
        or not all(isinstance(n, str) for n in names)
        or sorted(names) != sorted(splits)
    ):
        raise where.at(".eval_names").error(
            f"expected the splits {list(splits)}, got {kind_of(names)}"
        )
    accuracy = _by_split(data["eval_acc1es"], splits, epochs, where.at(".eval_acc1es"))
    loss = _by_split(data["eval_losses"], splits, epochs, where.at(".eval_losses"))
    times = _by_split(data["eval_times"], splits, epochs, where.at(".eval_times"))
    for split in splits:
        held = sorted(accuracy[split])
        if held != sorted(loss[split]) or epochs - 1 not in held:
            raise where.at(".eval_acc1es").error(
                f"split {split!r}: accuracies and losses must cover the same epochs, "
                f"the last ({epochs - 1}) included"
            )
        if sorted(times[split]) != list(range(epochs)):
            raise where.at(".eval_times").error(
                f"split {split!r}: expected a time for every epoch 0..{epochs - 1}"
            )
        labels = [e + 1 for e in held]
        for metric, source, field in (
            ("accuracy", accuracy, ".eval_acc1es"),
            ("loss", loss, ".eval_losses"),
        ):
            values = _values((source[split][e] for e in held), metric, where.at(field))
            out.put(trial.key(split, metric), trial, labels, values)
        at = where.at(".eval_times")
        series = _values((times[split][e] for e in range(epochs)), "time", at)
        out.put(trial.key(split, "eval_time_s"), trial, [1], _constant(series, at))


def _read_record(
    raw: bytes, path: Path, index: int, arch_str: str, archive: _Archive, out: _Collector
) -> None:
    """Validate architecture ``index``'s file and store its values and compute costs."""
    where = _Where(path, archive.name)
    states = _dict(load(raw, path, archive.name), where, archive.hps)
    for hp in archive.hps:
        at = where.at(f"[{hp!r}]")
        state = _dict(states[hp], at, _STATE_KEYS)
        _equal(state["arch_index"], index, at.at(".arch_index"))
        _equal(state["arch_str"], arch_str, at.at(".arch_str"))
        if type(state["clear_net_done"]) is not bool:
            raise at.at(".clear_net_done").error(
                f"expected a bool, got {kind_of(state['clear_net_done'])}"
            )
        seeds = _seeds(state["dataset_seed"], at.at(".dataset_seed"))
        results = _dict(
            state["all_results"],
            at.at(".all_results"),
            [(dataset, seed) for dataset in DATASETS for seed in seeds[dataset]],
        )
        for dataset in DATASETS:
            costs = []
            for seed in seeds[dataset]:
                trial = _Trial(
                    archive.kind, index, arch_str, hp, dataset, seed, tuple(seeds[dataset])
                )
                result_at = at.at(f".all_results[{(dataset, seed)!r}]")
                costs.append(_read_result(results[(dataset, seed)], trial, result_at, out))
            if hp == _COST_HP:
                _put_costs(costs, seeds[dataset], dataset, index, out)


def _put_costs(
    costs: list[_Costs], seeds: list[int], dataset: str, arch: int, out: _Collector
) -> None:
    """``get_compute_costs``: params and FLOPs per :func:`_cost`, latency the mean of the
    seeds' positive latencies (None if there are none)."""
    out.put_property((dataset, "params_mb"), arch, _cost([c.params for c in costs], seeds))
    out.put_property((dataset, "flops_m"), arch, _cost([c.flops for c in costs], seeds))
    latencies = [c.latency for c in costs if c.latency is not None and c.latency > 0]
    if latencies:
        out.put_property((dataset, "latency_s"), arch, sum(latencies) / len(latencies))


# -- the archive as a whole ----------------------------------------------------------------


def _source_error(source: Path, problem: str) -> TableError:
    return TableError(
        f"NATS-Bench source {source} {problem}; pass the folder of an official NATS-Bench "
        f"simple archive ({' or '.join(a.name for a in ARCHIVES.values())})"
    )


def _list_files(source: Path) -> tuple[dict[int, Path], list[str]]:
    """The record files by architecture index, and the names of unrelated files."""
    if not source.is_dir():
        raise _source_error(source, "is not a folder")
    records, ignored = {}, []
    for path in sorted(source.iterdir()):
        match = _RECORD.fullmatch(path.name)
        if match:
            records[int(match.group(1))] = path
        elif path.name.endswith(_SUFFIX) and path.name != _META:
            raise _source_error(
                source, f"holds {path.name!r}, which is neither NNNNNN{_SUFFIX} nor {_META}"
            )
        elif path.name != _META:
            ignored.append(path.name)
    return records, ignored


def _detect(source: Path) -> tuple[_Archive, dict, bytes]:
    """Which archive ``source`` is, by its name (``tss`` or ``sss``) or else by the size
    of its meta file's list; returns it with the meta data and the meta file's bytes."""
    tokens = set(re.split(r"[^a-z0-9]+", source.name.lower()))
    named = [archive for kind, archive in ARCHIVES.items() if kind in tokens]
    if len(named) > 1:
        raise _source_error(source, "is named after both the tss and the sss space")
    path = source / _META
    if not path.is_file():
        raise _source_error(source, f"has no {_META}")
    label = named[0].name if named else "NATS-Bench"
    raw = read_bytes(path, label)
    meta = _dict(load(raw, path, label), _Where(path, label), _META_KEYS)
    archs = meta["meta_archs"]
    by_size = [
        a for a in ARCHIVES.values() if isinstance(archs, list) and len(archs) == a.space.num_archs
    ]
    if named and by_size and named[0] is not by_size[0]:
        raise _source_error(
            source,
            f"is named after {named[0].kind}, but its {_META} lists {len(archs)} "
            f"architectures, as {by_size[0].name} does",
        )
    if not (named or by_size):
        raise _source_error(source, "is neither a tss nor an sss archive (by its name or its meta)")
    return (named or by_size)[0], meta, raw


def _check_meta(meta: dict, strings: list[str], archive: _Archive, path: Path) -> None:
    """The meta file must list exactly the space's architectures in the space's order
    (and, as in every simple archive, no results)."""
    where = _Where(path, archive.name)
    _equal(meta["total_archs"], archive.space.num_archs, where.at("['total_archs']"))
    _equal(meta["arch2infos"], None, where.at("['arch2infos']"))
    _equal(meta["evaluated_indexes"], set(), where.at("['evaluated_indexes']"))
    archs = meta["meta_archs"]
    if not isinstance(archs, list) or len(archs) != len(strings):
        raise where.at("['meta_archs']").error(
            f"expected a list of {len(strings)} architecture strings"
        )
    if archs != strings:
        first = next(i for i, (a, b) in enumerate(zip(archs, strings, strict=True)) if a != b)
        raise where.at(f"['meta_archs'][{first}]").error(
            f"expected {strings[first]!r} (the space's index order), got {kind_of(archs[first])}"
        )


def _source(name: str, sha256: str, size: int, archive: _Archive) -> dict[str, object]:
    return {
        "name": name,
        "sha256": sha256,
        "size": size,
        "origin": _ORIGIN.format(archive=archive.name),
        "licence": _LICENCE,
    }


class _Listing:
    """The record files as one provenance source: the sha256 of their ``sha256sum``
    listing in index order. A full archive has 15,625 or 32,768 files, too many to list
    one by one in the table's provenance attribute; the listing digest pins every file's
    bytes all the same, and ``sha256sum [0-9]*.pickle.pbz2 | sha256sum`` in the folder
    reproduces it."""

    def __init__(self) -> None:
        self.digest = hashlib.sha256()
        self.files = 0
        self.size = 0

    def add(self, name: str, raw: bytes) -> None:
        self.digest.update(f"{hashlib.sha256(raw).hexdigest()}  {name}\n".encode())
        self.files += 1
        self.size += len(raw)

    def source(self, archive: _Archive) -> dict[str, object]:
        name = f"NNNNNN{_SUFFIX} ({self.files} files)"
        return {
            **_source(name, self.digest.hexdigest(), self.size, archive),
            "sha256_of": f"the sha256sum listing of the {self.files} record files in index "
            f"order: `sha256sum [0-9]*{_SUFFIX} | sha256sum` in the archive folder",
        }


_NETWORKS = {
    "tss": "NB201's network: C=16, N=5 cells per stage, the architecture's cell "
    "(AutoDL-Projects infer.tiny)",
    "sss": "5 layers (cell, residual reduction block, cell, residual reduction block, cell; "
    "AutoDL-Projects infer.shape.tiny, DynamicShapeTinyNet) with the architecture's widths, "
    f"every cell {CELL}",
}
_DATASETS = {
    **SPLITS,
    "cifar10-valid": {**SPLITS["cifar10-valid"], "ori-test": "the 10,000 CIFAR-10 test images"},
    "ImageNet16-120": {
        **SPLITS["ImageNet16-120"],
        "train": "the 151,700 ImageNet16-120 train images",
    },
}
_VALID_TEST = (
    "NATS-Bench's get_more_info: validation = x-valid, test = ori-test for cifar10-valid; "
    "test = ori-test for cifar10 (no validation split); validation = x-valid, test = x-test "
    "for cifar100 and ImageNet16-120, whose ori-test ('valtest') is the union of both"
)
_SYNTHETIC = {
    "tss": "synthetic (NATS-Bench's tss-collect): every record's per-epoch train time is "
    "the architecture's mean measured cifar10-valid hp12 seed-777 epoch time scaled by "
    "training-set size (25,000, 50,000, 50,000, 151,700 images), and every eval time a "
    "measured per-image time x the split's size; identical for every epoch, seed and "
    "schedule",
    "sss": "synthetic (NATS-Bench's sss-collect): every record's per-epoch train and eval "
    "times are the architecture's mean times measured in its hp01 seed-777 run on the "
    "dataset, copied to every epoch, seed and schedule",
}


def _protocol(archive: _Archive) -> dict[str, object]:
    return {
        "benchmark": f"NATS-Bench {archive.kind} (Dong et al., TPAMI 2021), {archive.name}",
        "network": _NETWORKS[archive.kind],
        "schedules": {
            f"hp{hp}": {
                **TRAINING,
                "epochs": int(hp),
                "config": f"AutoDL-Projects configs/nas-benchmark/hyper-opts/{hp}E.config",
            }
            for hp in archive.hps
        },
        "datasets": _DATASETS,
        "validation_and_test": _VALID_TEST,
        "split_files": "shared/data/nb201-splits (AutoDL-Projects @ f46486e)",
        "seeds": "the real seeds of each (schedule, dataset), from the records' dataset_seed",
    }


def _cost_model(archive: _Archive) -> dict[str, object]:
    return {
        "unit": "s",
        "training": "cost of training to epoch e = sum of <dataset>/<schedule>/train/"
        "epoch_time_s over epochs 1..e; total_time_s = the sum over all epochs",
        "validation_time": "<dataset>/<schedule>/<split>/eval_time_s is one evaluation pass "
        "over the split; NATS-Bench's simulate_train_eval charges the train time to e plus "
        "the mean per-epoch x-valid time, which equals eval_time_s at e (the times are "
        "constant), so include_validation_time with an x-valid signal reproduces its cost",
        "synthetic_times": _SYNTHETIC[archive.kind],
        "latency_s": "a property (inference seconds per batch of 256), not an evaluation cost",
    }


def _notes(
    archive: _Archive, present: int, out: _Collector, ignored: list[str]
) -> dict[str, object]:
    seeds = {
        f"{schedule}/{dataset}": [str(s) for s in store.seeds]
        for (dataset, schedule, split, metric), store in sorted(out.stores.items())
        if (split, metric) == ("train", "accuracy")
    }
    final_only = [
        "/".join(key)
        for key, store in sorted(out.stores.items())
        if key[3] in ("accuracy", "loss") and len(store.epochs) == 1 < int(key[1][2:])
    ]
    notes: dict[str, object] = {
        "archive": archive.name,
        "architectures_present": present,
        "architectures_total": archive.space.num_archs,
        "coverage": f"{present} of {archive.space.num_archs} architectures have a record file; "
        "every mask of the others is False",
        "seeds": seeds,
        "properties": f"<dataset>/params_mb, flops_m and latency_s are NATS-Bench's "
        f"get_cost_info(hp='{_COST_HP}'): the seed mean of params (MB) and flop (M), or "
        f"seed {_LEGACY_SEED}'s value where the seeds disagree at 5 decimals; latency_s is "
        "the mean of the seeds' positive latencies (NATS-Bench's get_latency: seconds per "
        "batch of 256 images)",
        "values": "every value is the record's, per real seed and epoch, float64 -> float32",
    }
    if final_only:
        notes["final_epoch_only"] = {
            "variables": final_only,
            "why": "NB201's original 200-epoch runs evaluated these splits after the last "
            "epoch only (NATS-Bench's tss-collect, update_OLD_eval); their eval_time_s "
            "still has a (synthetic) value for every epoch",
        }
    if out.unresolved:
        notes["properties_masked"] = {
            key: f"seeds disagree and none is {_LEGACY_SEED} (NATS-Bench's API fails here): "
            f"architectures {archs}"
            for key, archs in sorted(out.unresolved.items())
        }
    if ignored:
        notes["ignored_files"] = ignored
    return notes


def build_nats_table(source: Path, out: Path) -> str:
    """Import an official NATS-Bench simple archive folder into the table ``out``.

    ``source`` is ``NATS-tss-v1_0-3ffb9-simple`` (space ``nb201``) or
    ``NATS-sss-v1_0-50262-simple`` (space ``nats-sss``), whole or in part. Returns the
    table's sha256. Raises TableError, writing nothing, for a folder that is neither
    archive, and for any file that is unsafe, corrupt or unlike the official ones.
    """
    source = Path(source)
    records, ignored = _list_files(source)
    archive, meta, meta_raw = _detect(source)
    strings = archive.space().strings()
    _check_meta(meta, strings, archive, source / _META)
    if not records:
        raise _source_error(source, f"holds no architecture records (NNNNNN{_SUFFIX})")
    if max(records) >= archive.space.num_archs:
        raise _source_error(
            source,
            f"holds a record {max(records):06d}{_SUFFIX} past the space's "
            f"{archive.space.num_archs} architectures",
        )
    listing = _Listing()
    collector = _Collector(archive.space.num_archs)
    for done, (index, path) in enumerate(sorted(records.items()), start=1):
        raw = read_bytes(path, archive.name)
        _read_record(raw, path, index, strings[index], archive, collector)
        listing.add(path.name, raw)
        if done % 1000 == 0:
            _LOG.info("nats: read %d of %d record files", done, len(records))
    variables = {
        key: store.variable(f"{archive.name}/NNNNNN{_SUFFIX}")
        for key, store in collector.stores.items()
    }
    properties = {
        key: (values.astype(np.float32), np.isfinite(values))
        for key, values in collector.properties.items()
    }
    return write_table(
        out,
        benchmark_id=f"nats-{archive.kind}",
        space=archive.space.name,
        archs=strings,
        variables=variables,
        properties=properties,
        protocol=_protocol(archive),
        cost_model=_cost_model(archive),
        provenance={
            "builder": "harness import nats (harness.importers.nats.build_nats_table)",
            "harness_version": __version__,
            "sources": [
                _source(_META, hashlib.sha256(meta_raw).hexdigest(), len(meta_raw), archive),
                listing.source(archive),
            ],
        },
        notes=_notes(archive, len(records), collector, ignored),
    )


class NATSImporter(Importer):
    """An official NATS-Bench simple archive; ``source`` is its folder."""

    def build(self, out: Path, source: Path | None, dataset: str | None) -> str:
        if source is None:
            raise ConfigError("the nats importer needs a source folder", "source")
        return build_nats_table(source, out)

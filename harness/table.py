"""Benchmark tables, format v1: one HDF5 file of dense per-architecture tensors.

A table is the pinned data of a tabular benchmark, so it is written byte-for-byte
reproducibly (no timestamps, fixed layout and compression), written atomically, and
identified by its sha256. It is loaded into numpy in one go: a query is then plain
array indexing, never an HDF5 read. The layout is specified in ``tabular/FORMAT.md``.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from harness.atomic import replacing
from harness.errors import TableError

FORMAT = "harness-table"
FORMAT_VERSION = 1

VariableKey = tuple[str, str, str, str]
"""``(dataset, schedule, split, metric)``."""

PropertyKey = tuple[str, str]
"""``(dataset, name)``."""

#: metrics where higher is better, summarised by ``harness info``
SCORES = ("accuracy", "roc_auc")
_GZIP_LEVEL = 4
_CHUNK_ELEMENTS = 1 << 16  # about 256 KiB of float32 per chunk


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file's bytes: the identity a benchmark spec pins."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _read_only(array: np.ndarray, dtype: type) -> np.ndarray:
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
    anything else is a real seed. ``epochs`` are the 1-based epochs of the last axis.
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
        values = _read_only(self.values, np.float32)
        mask = _read_only(self.mask, np.bool_)
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
        if any(b <= a for a, b in pairwise(self.epochs)) or self.epochs[0] < 1:
            raise ValueError(f"epochs {self.epochs} must be increasing 1-based numbers")
        if not np.array_equal(np.isfinite(values), mask):
            raise ValueError("values must be finite where mask is True and NaN elsewhere")

    def seed_mean(self) -> np.ndarray:
        """Mean over available seed slots, ``[n_arch, n_epoch]`` float64; NaN if none."""
        counts = self.mask.sum(axis=1)
        sums = np.where(self.mask, self.values, 0.0).sum(axis=1, dtype=np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(counts > 0, sums / counts, np.nan)


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def _key_text(key: Sequence[str]) -> str:
    return "/".join(key)


def _available(keys: Sequence[Sequence[str]], wanted: Sequence[str]) -> str:
    """What the table holds at the first level where the absent key ``wanted`` diverges."""
    depth = next(
        i for i in range(len(wanted)) if not any(k[: i + 1] == wanted[: i + 1] for k in keys)
    )
    prefix = tuple(wanted[:depth])
    options = sorted({k[depth] for k in keys if tuple(k[:depth]) == prefix})
    where = f" under {_key_text(prefix)}" if prefix else ""
    return f"available{where}: {', '.join(options) or 'none'}"


@dataclass(frozen=True, eq=False)
class Table:
    """A benchmark table held entirely in memory; build it with :meth:`load`."""

    path: Path
    sha256: str
    format_version: int
    benchmark_id: str
    space: str
    protocol: dict
    cost_model: dict
    provenance: dict
    notes: dict
    archs: tuple[str, ...]
    _variables: Mapping[VariableKey, Variable] = field(repr=False)
    _properties: Mapping[PropertyKey, tuple[np.ndarray, np.ndarray]] = field(repr=False)

    @classmethod
    def load(cls, path: Path, expected_sha256: str | None = None) -> Table:
        """Read and validate a whole table; ``expected_sha256`` pins its exact bytes."""
        path = Path(path)
        if not path.is_file():
            raise TableError(
                f"table {path} does not exist; build it with `harness import` or fix the path"
            )
        sha256 = file_sha256(path)
        if expected_sha256 is not None and sha256 != expected_sha256.lower():
            raise TableError(
                f"table {path} has sha256 {sha256} but {expected_sha256} is expected; "
                "rebuild it with the import command named in the spec, or update the "
                "spec's sha256 if the new table is intended"
            )
        try:
            with h5py.File(path, "r") as f:
                return cls._read(f, path, sha256)
        except (OSError, KeyError, ValueError, TypeError, IndexError) as error:
            raise TableError(
                f"table {path} is not a readable harness table ({_one_line(error)}); "
                "rebuild it with `harness import`"
            ) from error

    @classmethod
    def _read(cls, f: h5py.File, path: Path, sha256: str) -> Table:
        if f.attrs.get("format") != FORMAT:
            raise TableError(
                f"{path} is not a harness table (attribute format={f.attrs.get('format')!r}, "
                f"expected {FORMAT!r}); pass a table built by `harness import`"
            )
        version = int(f.attrs["format_version"])
        if version != FORMAT_VERSION:
            raise TableError(
                f"table {path} has format_version {version}, this harness reads "
                f"{FORMAT_VERSION}; rebuild the table with this harness or upgrade harness"
            )
        archs = tuple(np.asarray(f["archs"][()]).astype(str).tolist())
        variables = {
            key: _read_variable(f["variables"][_key_text(key)], key, path, len(archs))
            for key in _leaf_keys(f["variables"], 4)
        }
        properties = {
            key: _read_property(f["properties"][_key_text(key)], key, path, len(archs))
            for key in _leaf_keys(f["properties"], 2)
        }
        return cls(
            path=path,
            sha256=sha256,
            format_version=version,
            benchmark_id=str(f.attrs["benchmark_id"]),
            space=str(f.attrs["space"]),
            protocol=json.loads(f.attrs["protocol"]),
            cost_model=json.loads(f.attrs["cost_model"]),
            provenance=json.loads(f.attrs["provenance"]),
            notes=json.loads(f.attrs["notes"]),
            archs=archs,
            _variables=variables,
            _properties=properties,
        )

    def variables(self) -> list[VariableKey]:
        """Every ``(dataset, schedule, split, metric)`` the table holds, sorted."""
        return sorted(self._variables)

    def variable(self, dataset: str, schedule: str, split: str, metric: str) -> Variable:
        """One variable; a TableError says what the table holds instead."""
        key = (dataset, schedule, split, metric)
        if key not in self._variables:
            raise TableError(
                f"table {self.path} has no variable {_key_text(key)}; "
                f"{_available(self.variables(), key)}"
            )
        return self._variables[key]

    def properties(self) -> list[PropertyKey]:
        """Every ``(dataset, name)`` per-architecture property, sorted."""
        return sorted(self._properties)

    def property(self, dataset: str, name: str) -> tuple[np.ndarray, np.ndarray]:
        """A per-architecture property as read-only ``(values, mask)`` arrays."""
        key = (dataset, name)
        if key not in self._properties:
            raise TableError(
                f"table {self.path} has no property {_key_text(key)}; "
                f"{_available(self.properties(), key)}"
            )
        return self._properties[key]


def _leaf_keys(group: h5py.Group, depth: int) -> list[tuple[str, ...]]:
    """Paths of the groups ``depth`` levels below ``group``, in sorted order."""
    keys: list[tuple[str, ...]] = [()]
    for _ in range(depth):
        deeper = []
        for key in keys:
            node = group[_key_text(key)] if key else group
            if not isinstance(node, h5py.Group):
                raise TypeError(f"{node.name} is a dataset where a group is expected")
            deeper.extend(key + (name,) for name in sorted(node))
        keys = deeper
    return keys


def _stored_array(group: h5py.Group, name: str, dtype: type) -> np.ndarray:
    array = np.asarray(group[name][()])
    if array.dtype != dtype:
        raise ValueError(f"{group.name}/{name} has dtype {array.dtype}, expected {dtype}")
    return array


def _read_variable(group: h5py.Group, key: VariableKey, path: Path, n_arch: int) -> Variable:
    try:
        values = _stored_array(group, "values", np.float32)
        mask = _stored_array(group, "mask", np.bool_)
        epochs = tuple(int(e) for e in group.attrs["epochs"])
        if bool(group.attrs["constant_over_epochs"]):
            if values.shape[2:] != (1,) or mask.shape != values.shape:
                raise ValueError(f"constant_over_epochs needs epoch length 1, got {values.shape}")
            shape = values.shape[:2] + (len(epochs),)
            values, mask = np.broadcast_to(values, shape), np.broadcast_to(mask, shape)
        if values.shape[0] != n_arch:
            raise ValueError(f"{values.shape[0]} architectures, /archs has {n_arch}")
        return Variable(
            values=values,
            mask=mask,
            seeds=tuple(str(s) for s in group.attrs["seeds"]),
            epochs=epochs,
            unit=str(group.attrs["unit"]),
            source=str(group.attrs["source"]),
            derivation=str(group.attrs["derivation"]),
        )
    except ValueError as error:
        raise TableError(
            f"table {path}: variable {_key_text(key)} is malformed ({_one_line(error)}); "
            "rebuild the table with `harness import`"
        ) from error


def _read_property(
    group: h5py.Group, key: PropertyKey, path: Path, n_arch: int
) -> tuple[np.ndarray, np.ndarray]:
    try:
        values = _stored_array(group, "values", np.float32)
        mask = _stored_array(group, "mask", np.bool_)
        return _checked_property(values, mask, n_arch)
    except ValueError as error:
        raise TableError(
            f"table {path}: property {_key_text(key)} is malformed ({_one_line(error)}); "
            "rebuild the table with `harness import`"
        ) from error


def _checked_property(
    values: np.ndarray, mask: np.ndarray, n_arch: int
) -> tuple[np.ndarray, np.ndarray]:
    values, mask = _read_only(values, np.float32), _read_only(mask, np.bool_)
    if values.shape != (n_arch,) or mask.shape != (n_arch,):
        raise ValueError(f"values {values.shape} and mask {mask.shape} must be ({n_arch},)")
    if not np.array_equal(np.isfinite(values), mask):
        raise ValueError("values must be finite where mask is True and NaN elsewhere")
    return values, mask


def _json(obj: Mapping[str, Any]) -> str:
    """Canonical JSON, so equal metadata always gives equal bytes."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False)


def _check_name(part: str) -> None:
    if not isinstance(part, str) or not part or "/" in part or part == ".":
        raise ValueError(f"invalid table name {part!r}: non-empty text without '/'")


def _put(group: h5py.Group, name: str, array: np.ndarray) -> None:
    """A compressed dataset with a chunk shape fixed by the array's shape."""
    rest = int(np.prod(array.shape[1:], dtype=np.int64))
    rows = max(1, min(array.shape[0], _CHUNK_ELEMENTS // max(rest, 1)))
    group.create_dataset(
        name,
        data=array,
        chunks=(rows, *array.shape[1:]),
        compression="gzip",
        compression_opts=_GZIP_LEVEL,
        shuffle=True,
        fletcher32=True,
        track_times=False,
    )


def _constant_over_epochs(variable: Variable) -> bool:
    first = (slice(None), slice(None), slice(0, 1))
    return len(variable.epochs) > 1 and (
        np.array_equal(variable.mask, np.broadcast_to(variable.mask[first], variable.mask.shape))
        and np.array_equal(
            variable.values,
            np.broadcast_to(variable.values[first], variable.values.shape),
            equal_nan=True,
        )
    )


def _write_variable(group: h5py.Group, variable: Variable) -> None:
    constant = _constant_over_epochs(variable)
    stored = slice(0, 1) if constant else slice(None)
    _put(group, "values", variable.values[:, :, stored])
    _put(group, "mask", variable.mask[:, :, stored])
    group.attrs["constant_over_epochs"] = constant
    group.attrs["derivation"] = variable.derivation
    group.attrs["epochs"] = np.asarray(variable.epochs, dtype=np.int64)
    group.attrs["seeds"] = list(variable.seeds)
    group.attrs["source"] = variable.source
    group.attrs["unit"] = variable.unit


def _write_contents(
    f: h5py.File,
    attrs: Mapping[str, Any],
    archs: np.ndarray,
    variables: Mapping[VariableKey, Variable],
    properties: Mapping[PropertyKey, tuple[np.ndarray, np.ndarray]],
) -> None:
    for name in sorted(attrs):
        f.attrs[name] = attrs[name]
    _put(f, "archs", archs)
    group = f.create_group("variables")
    for key in sorted(variables):
        _write_variable(group.create_group(_key_text(key)), variables[key])
    group = f.create_group("properties")
    for key in sorted(properties):
        sub = group.create_group(_key_text(key))
        values, mask = properties[key]
        _put(sub, "values", values)
        _put(sub, "mask", mask)


def write_table(
    path: Path,
    *,
    benchmark_id: str,
    space: str,
    archs: Sequence[str],
    variables: Mapping[VariableKey, Variable],
    properties: Mapping[PropertyKey, tuple[np.ndarray, np.ndarray]],
    protocol: Mapping[str, Any],
    cost_model: Mapping[str, Any],
    provenance: Mapping[str, Any],
    notes: Mapping[str, Any],
) -> str:
    """Write a table atomically and reproducibly; return its sha256.

    The same inputs always give the same bytes. The file appears at ``path`` only when
    complete: a failure leaves any previous file there untouched.
    """
    path = Path(path)
    if not archs:
        raise ValueError("a table needs at least one architecture")
    try:
        arch_array = np.array([a.encode("ascii") for a in archs], dtype=np.bytes_)
    except UnicodeEncodeError as error:
        raise ValueError(f"architecture strings must be ASCII: {error}") from error
    for key, variable in variables.items():
        for part in key:
            _check_name(part)
        if len(key) != 4 or variable.values.shape[0] != len(archs):
            raise ValueError(f"variable {key}: needs a 4-part key and {len(archs)} architectures")
    checked = {}
    for key, (values, mask) in properties.items():
        for part in key:
            _check_name(part)
        if len(key) != 2:
            raise ValueError(f"property {key}: needs a (dataset, name) key")
        checked[key] = _checked_property(values, mask, len(archs))
    attrs = {
        "format": FORMAT,
        "format_version": np.int64(FORMAT_VERSION),
        "benchmark_id": benchmark_id,
        "space": space,
        "protocol": _json(protocol),
        "cost_model": _json(cost_model),
        "provenance": _json(provenance),
        "notes": _json(notes),
    }
    with replacing(path) as tmp:
        with h5py.File(tmp, "x") as f:
            _write_contents(f, attrs, arch_array, variables, checked)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        sha256 = file_sha256(tmp)
    return sha256


def _epochs_text(epochs: tuple[int, ...]) -> str:
    if len(epochs) > 2 and epochs == tuple(range(epochs[0], epochs[-1] + 1)):
        return f"{epochs[0]}..{epochs[-1]}"
    return ",".join(map(str, epochs))


def _arch_check(table: Table, space_strings: Sequence[str]) -> str:
    if len(space_strings) != len(table.archs):
        return f"MISMATCH: table has {len(table.archs)}, the space {len(space_strings)}"
    for index, (ours, theirs) in enumerate(zip(table.archs, space_strings, strict=True)):
        if ours != theirs:
            return f"MISMATCH at index {index}: table {ours!r}, space {theirs!r}"
    return f"match the {table.space} space's index order"


def summarize(table: Table, space_strings: Sequence[str] | None = None) -> str:
    """Human-readable description of a table, for ``harness info``.

    ``space_strings`` (the space's architecture strings in index order) checks that the
    table's architectures are the space's, in the same order.
    """
    lines = [
        f"table: {table.path}",
        f"format: {FORMAT} v{table.format_version}",
        f"benchmark: {table.benchmark_id} (space {table.space})",
        f"sha256: {table.sha256}",
        f"architectures: {len(table.archs)}",
    ]
    if space_strings is not None:
        lines[-1] += f" ({_arch_check(table, space_strings)})"
    builder = table.provenance.get("builder")
    version = table.provenance.get("harness_version")
    if builder or version:
        lines.append(f"built by: {builder or '?'} (harness {version or '?'})")
    lines.append("sources:")
    for source in table.provenance.get("sources", []):
        lines.append(
            f"  {source.get('name')}  sha256 {source.get('sha256')}  {source.get('size')} bytes"
        )
    lines.append("variables (seeds; epochs; cells available):")
    width = max((len(_key_text(k)) for k in table.variables()), default=0)
    for key in table.variables():
        var = table.variable(*key)
        lines.append(
            f"  {_key_text(key):<{width}}  [{','.join(var.seeds)}]; "
            f"{_epochs_text(var.epochs)}; {100 * var.mask.mean():.1f}% ({var.unit})"
        )
    if table.properties():
        lines.append("properties (cells available):")
        for key in table.properties():
            lines.append(f"  {_key_text(key)}  {100 * table.property(*key)[1].mean():.1f}%")
    lines.append("best architecture by seed-mean score at the last epoch:")
    for dataset, schedule, split, metric in table.variables():
        if metric not in SCORES:
            continue
        var = table.variable(dataset, schedule, split, metric)
        final = var.seed_mean()[:, -1]
        where = f"  {dataset}/{schedule}/{split}/{metric} (epoch {var.epochs[-1]}):"
        if np.isnan(final).all():
            lines.append(f"{where} no values")
            continue
        best = int(np.nanargmax(final))
        lines.append(f"{where} #{best} {table.archs[best]} {final[best]:.2f} {var.unit}")
        p10, p50, p90 = np.nanpercentile(final, [10, 50, 90])
        lines.append(
            f"    spread over cells: min {np.nanmin(final):.2f}, p10 {p10:.2f}, "
            f"median {p50:.2f}, p90 {p90:.2f}"
        )
    return "\n".join(lines)

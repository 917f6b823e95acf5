"""Benchmark tables, format v1: one HDF5 file of dense per-architecture tensors.

A table is the pinned data of a tabular benchmark, so it is written byte-for-byte
reproducibly (no timestamps, fixed layout and compression), written atomically, and
identified by its sha256. It is loaded into numpy in one go: a query is then plain
array indexing, never an HDF5 read. The layout is specified in ``tabular/FORMAT.md``.

A table is untrusted input (anyone can pin a hostile file's hash in their own spec): every
link, storage layout, shape and attribute is checked before it is followed or read, and a
file this machine has not parsed before is parsed in a child process first, since the
HDF5 library itself can crash or hang on a corrupt file.

This module loads and describes tables; the format's value types are in
:mod:`harness.table_format`, writing in :mod:`harness.table_write`, the child process in
:mod:`harness.table_probe` (``from harness.table import ...`` reaches all of them).
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import math
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import count
from pathlib import Path

import h5py
import numpy as np

from harness.atomic import read_regular
from harness.errors import TableError
from harness.table_format import (
    FORMAT,
    FORMAT_VERSION,
    REBUILD,
    SCORES,
    PropertyKey,
    Variable,
    VariableKey,
    check_name,
    checked_property,
    file_sha256,
    key_text,
    one_line,
    quoted,
)
from harness.table_probe import PROBE_REFUSED, probe
from harness.table_write import write_table

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "SCORES",
    "PropertyKey",
    "Table",
    "Variable",
    "VariableKey",
    "file_sha256",
    "summarize",
    "write_table",
]

# What a table may declare, checked before anything is read, so that a small hostile file
# can neither make the loader allocate absurd memory nor run away.
_MAX_FILE_BYTES = 1 << 32
_MAX_DATA_BYTES = 1 << 34  # all datasets together, as declared
_MAX_ARCHS = 10**7
_MAX_SEEDS = 1_000
_MAX_EPOCHS = 100_000
_MAX_ARCH_CHARS = 1_024
_MAX_LABEL_CHARS = 256  # benchmark_id, space, each seed label
_MAX_TEXT_CHARS = 1 << 20  # unit, source, derivation, each JSON attribute

_ROOT = {"archs": h5py.Dataset, "properties": h5py.Group, "variables": h5py.Group}
_LEAF = {"mask": h5py.Dataset, "values": h5py.Dataset}
_OBJECT_TYPES = {h5py.Group: h5py.h5o.TYPE_GROUP, h5py.Dataset: h5py.h5o.TYPE_DATASET}
_FILTERS = frozenset({h5py.h5z.FILTER_DEFLATE, h5py.h5z.FILTER_SHUFFLE, h5py.h5z.FILTER_FLETCHER32})
_FLOAT32, _BOOL = np.dtype(np.float32), np.dtype(np.bool_)
#: what h5py, numpy and json raise on a malformed file; each becomes a TableError
_READ_ERRORS = (OSError, KeyError, ValueError, TypeError, IndexError, RuntimeError, OverflowError)
_IMAGE_NAMES = count()

log = logging.getLogger(__name__)


def _available(keys: Sequence[Sequence[str]], wanted: Sequence[str]) -> str:
    """What the table holds at the first level where the absent key ``wanted`` diverges."""
    depth = next(
        i for i in range(len(wanted)) if not any(k[: i + 1] == wanted[: i + 1] for k in keys)
    )
    prefix = tuple(wanted[:depth])
    options = sorted({k[depth] for k in keys if tuple(k[:depth]) == prefix})
    where = f" under {key_text(prefix)}" if prefix else ""
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
        """Read and validate a whole table; ``expected_sha256`` pins its exact bytes.

        The file is read once and parsed from memory, so the bytes parsed are the bytes
        hashed. A table this machine has not parsed before is parsed in a child process
        first, because the HDF5 library can crash on a corrupt file (:func:`probe`).
        """
        path = Path(path)
        image = _read_image(path)
        sha256 = hashlib.sha256(image).hexdigest()
        if expected_sha256 is not None and sha256 != expected_sha256.lower():
            raise TableError(
                f"table {path} has sha256 {sha256} but {expected_sha256} is expected; "
                "rebuild it with the import command named in the spec, or update the "
                "spec's sha256 if the new table is intended"
            )
        probe(image, path, sha256)
        return cls._parse(image, path, sha256)

    @classmethod
    def _parse(cls, image: bytes, path: Path, sha256: str) -> Table:
        try:
            with _open_image(image) as f:
                return cls._read(f, path, sha256)
        except _READ_ERRORS as error:
            raise TableError(
                f"table {path} is not a readable harness table ({one_line(error)}); {REBUILD}"
            ) from error

    @classmethod
    def _read(cls, f: h5py.File, path: Path, sha256: str) -> Table:
        if "format" not in f.attrs or _text_attr(f, "format", _MAX_LABEL_CHARS) != FORMAT:
            found = quoted(f.attrs["format"]) if "format" in f.attrs else "missing"
            raise TableError(
                f"{path} is not a harness table (attribute format={found}, expected "
                f"{FORMAT!r}); pass a table built by `harness import` or `harness tabulate`"
            )
        version = _format_version(f, path)
        _links(f, _ROOT)
        variable_groups = _leaves(f["variables"], 4)
        property_groups = _leaves(f["properties"], 2)
        datasets = [f["archs"]] + [
            group[name]
            for group in [*variable_groups.values(), *property_groups.values()]
            for name in _LEAF
        ]
        declared = sum(_declared_bytes(dataset) for dataset in datasets)
        if declared > _MAX_DATA_BYTES:
            raise ValueError(
                f"its datasets declare {declared / 2**30:.1f} GiB of data, more than the "
                f"{_MAX_DATA_BYTES >> 30} GiB a table may hold"
            )
        archs = _read_archs(f["archs"])
        variables = {
            key: _read_variable(group, key, path, len(archs))
            for key, group in variable_groups.items()
        }
        properties = {
            key: _read_property(group, key, path, len(archs))
            for key, group in property_groups.items()
        }
        return cls(
            path=path,
            sha256=sha256,
            format_version=version,
            benchmark_id=_text_attr(f, "benchmark_id", _MAX_LABEL_CHARS),
            space=_text_attr(f, "space", _MAX_LABEL_CHARS),
            protocol=_json_attr(f, "protocol"),
            cost_model=_json_attr(f, "cost_model"),
            provenance=_json_attr(f, "provenance"),
            notes=_json_attr(f, "notes"),
            archs=archs,
            _variables=variables,
            _properties=properties,
        )

    def __repr__(self) -> str:
        """One line that says which table this is, not the megabytes it holds."""
        return (
            f"Table({str(self.path)!r}, space={self.space!r}, benchmark_id="
            f"{self.benchmark_id!r}, archs={len(self.archs)}, variables={len(self._variables)}, "
            f"properties={len(self._properties)}, sha256={self.sha256[:12]!r}...)"
        )

    def variables(self) -> list[VariableKey]:
        """Every ``(dataset, schedule, split, metric)`` the table holds, sorted."""
        return sorted(self._variables)

    def variable(self, dataset: str, schedule: str, split: str, metric: str) -> Variable:
        """One variable; a TableError says what the table holds instead."""
        key = (dataset, schedule, split, metric)
        if key not in self._variables:
            raise TableError(
                f"table {self.path} has no variable {key_text(key)}; "
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
                f"table {self.path} has no property {key_text(key)}; "
                f"{_available(self.properties(), key)}"
            )
        return self._properties[key]


def _read_image(path: Path) -> bytes:
    """The whole file, read once: the same bytes are hashed, probed and parsed."""
    try:
        if os.stat(path).st_size > _MAX_FILE_BYTES:
            raise TableError(
                f"table {path} is larger than {_MAX_FILE_BYTES >> 30} GiB, the most a table "
                "may be; pass a harness table"
            )
        image = read_regular(path, _MAX_FILE_BYTES)  # a FIFO or a device is refused unread
    except FileNotFoundError:
        raise TableError(
            f"table {path} does not exist; build it with `harness import` or fix the path"
        ) from None
    except OSError as error:
        if error.errno == errno.EINVAL or isinstance(error, IsADirectoryError):
            raise TableError(f"table {path} {error.strerror}; pass a harness table") from None
        raise TableError(
            f"table {path} cannot be read ({one_line(error)}); check its permissions"
        ) from error
    if not 0 < len(image) <= _MAX_FILE_BYTES:
        raise TableError(f"table {path} is empty or still growing; {REBUILD}")
    return image


def _open_image(image: bytes) -> h5py.File:
    """An HDF5 file opened read-only from bytes in memory (HDF5's core driver, no file)."""
    fapl = h5py.h5p.create(h5py.h5p.FILE_ACCESS)
    fapl.set_fapl_core(backing_store=False)
    fapl.set_file_image(image)
    name = f"harness-table-image-{next(_IMAGE_NAMES)}".encode()
    return h5py.File(h5py.h5f.open(name, h5py.h5f.ACC_RDONLY, fapl=fapl))


def _probe_main() -> None:
    """The probe process: parse the table image on stdin; exit status 0 if it is sound."""
    try:
        Table._parse(sys.stdin.buffer.read(), Path(sys.argv[2]), "")
    except TableError as error:
        print(one_line(error))
        sys.exit(PROBE_REFUSED)


def _format_version(f: h5py.File, path: Path) -> int:
    """The format version, which must be the int64 scalar 1; no other value is guessed at."""
    if "format_version" not in f.attrs:
        raise TableError(f"table {path} has no format_version attribute; {REBUILD}")
    attr = f.attrs.get_id("format_version")
    if attr.shape != ():
        shown = f"of shape {attr.shape}"
    elif attr.dtype == np.int64 and f.attrs["format_version"] == FORMAT_VERSION:
        return FORMAT_VERSION
    else:
        shown = quoted(f.attrs["format_version"])
    kind = "text" if h5py.check_string_dtype(attr.dtype) else quoted(attr.dtype)
    raise TableError(
        f"table {path} has format_version {shown} ({kind}), this harness reads the int64 "
        f"{FORMAT_VERSION}; rebuild the table with this harness or upgrade harness"
    )


def _links(group: h5py.Group, kinds: Mapping[str, type] | type) -> list[str]:
    """The sorted names in ``group``, each link checked before it is followed.

    Only hard links to objects linked nowhere else are allowed: an external or soft link
    leads outside the bytes the sha256 covers or elsewhere in the file, and a shared
    object would let a small file make the walk below it explode. ``kinds`` is the class
    of every member, or the exact names and classes the group must hold.
    """
    names = sorted(group)
    if isinstance(kinds, Mapping) and names != sorted(kinds):
        raise ValueError(f"{group.name} holds {quoted(names)}, expected {sorted(kinds)}")
    for name in names:
        if len(name) > _MAX_LABEL_CHARS:
            raise ValueError(f"{group.name} holds a name of {len(name)} characters")
        check_name(name)
        where = f"{group.name.rstrip('/')}/{name}"
        link = group.get(name, getlink=True)
        if isinstance(link, h5py.ExternalLink):
            raise ValueError(
                f"{where} is an external link to {quoted(link.filename)}; a table must hold "
                "its data itself, since its sha256 covers only its own bytes"
            )
        if isinstance(link, h5py.SoftLink):
            raise ValueError(f"{where} is a soft link to {quoted(link.path)}, not an object")
        if not isinstance(link, h5py.HardLink):
            raise ValueError(f"{where} is a link of an unknown kind")
        kind = kinds[name] if isinstance(kinds, Mapping) else kinds
        info = h5py.h5o.get_info(group.id, name.encode())
        if info.type != _OBJECT_TYPES[kind]:
            raise ValueError(f"{where} is not a {kind.__name__.lower()}")
        if info.rc != 1:
            raise ValueError(f"{where} is linked from more than one place")
    return names


def _leaves(group: h5py.Group, depth: int) -> dict[tuple[str, ...], h5py.Group]:
    """The groups ``depth`` levels below ``group`` by key, sorted; each holds values, mask."""
    level: dict[tuple[str, ...], h5py.Group] = {(): group}
    for _ in range(depth):
        level = {
            key + (name,): node[name]
            for key, node in level.items()
            for name in _links(node, h5py.Group)
        }
    for node in level.values():
        _links(node, _LEAF)
    return level


def _declared_bytes(dataset: h5py.Dataset) -> int:
    return math.prod(dataset.shape or ()) * dataset.dtype.itemsize


def _stored_array(dataset: h5py.Dataset, dtype: np.dtype, shape: tuple[int, ...]) -> np.ndarray:
    """The dataset as a read-only array, once it is known to hold ``shape`` in this file."""
    where = dataset.name
    if dataset.is_virtual:
        raise ValueError(
            f"{where} is a virtual dataset, whose data lies in other files that the "
            "table's sha256 does not cover"
        )
    if dataset.external:
        raise ValueError(
            f"{where} keeps its data in external files ({quoted(dataset.external)}) that "
            "the table's sha256 does not cover"
        )
    if dataset.dtype != dtype or dataset.shape != shape:
        raise ValueError(
            f"{where} is {quoted(dataset.dtype)} of shape {dataset.shape}, expected {dtype} "
            f"of shape {shape}"
        )
    _check_storage(dataset)
    array = dataset[()]
    array.flags.writeable = False
    return array


def _check_storage(dataset: h5py.Dataset) -> None:
    """Every byte of the dataset is stored in the file, through filters harness knows.

    A declared but unstored chunk reads as fill values, so a tiny file could otherwise
    declare gigabytes; an unknown filter would make HDF5 look for a plugin library.
    """
    plist = dataset.id.get_create_plist()
    layout = plist.get_layout()
    if layout == h5py.h5d.CHUNKED:
        filters = {plist.get_filter(i)[0] for i in range(plist.get_nfilters())}
        if not filters <= _FILTERS:
            raise ValueError(
                f"{dataset.name} uses HDF5 filters {sorted(filters - _FILTERS)}; a table may "
                "use only gzip, shuffle and fletcher32"
            )
        chunks = dataset.chunks
        if any(c > n for c, n in zip(chunks, dataset.shape, strict=True)):
            raise ValueError(f"{dataset.name} has chunks {chunks} beyond its shape")
        expected = math.prod(-(-n // c) for c, n in zip(chunks, dataset.shape, strict=True))
        stored, unit = dataset.id.get_num_chunks(), "chunks"
    elif layout in (h5py.h5d.CONTIGUOUS, h5py.h5d.COMPACT):
        expected, stored = _declared_bytes(dataset), dataset.id.get_storage_size()
        unit = "bytes"
    else:
        raise ValueError(f"{dataset.name} has an unknown storage layout {layout}")
    if stored != expected:
        raise ValueError(f"{dataset.name} stores {stored} of its {expected} {unit}")


def _text_attr(obj: h5py.HLObject, name: str, limit: int) -> str:
    """A scalar text attribute; its type and shape are checked before it is read."""
    attr = _attr_id(obj, name)
    if attr.shape != () or h5py.check_string_dtype(attr.dtype) is None:
        raise ValueError(f"attribute {name} of {obj.name} is not a text scalar")
    value = obj.attrs[name]
    if not isinstance(value, str) or len(value) > limit:
        raise ValueError(
            f"attribute {name} of {obj.name} is not text of at most {limit} characters"
        )
    return value


def _json_attr(f: h5py.File, name: str) -> dict:
    """A JSON-object attribute (the writer's canonical JSON: no NaN or infinities)."""
    text = _text_attr(f, name, _MAX_TEXT_CHARS)
    try:
        value = json.loads(text, parse_constant=_no_constant)
    except (ValueError, RecursionError) as error:
        raise ValueError(f"attribute {name} is not JSON ({one_line(error)})") from None
    if not isinstance(value, dict):
        raise ValueError(f"attribute {name} is {type(value).__name__} JSON, not an object")
    return value


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not allowed")


def _vector_attr(obj: h5py.HLObject, name: str, limit: int) -> h5py.h5a.AttrID:
    """A one-dimensional attribute of 1 to ``limit`` entries, checked before it is read."""
    attr = _attr_id(obj, name)
    if attr.shape is None or len(attr.shape) != 1 or not 0 < attr.shape[0] <= limit:
        raise ValueError(
            f"attribute {name} of {obj.name} has shape {attr.shape}, expected 1 to {limit} entries"
        )
    return attr


def _epochs_attr(group: h5py.Group) -> tuple[int, ...]:
    if _vector_attr(group, "epochs", _MAX_EPOCHS).dtype != np.int64:
        raise ValueError(f"attribute epochs of {group.name} is not int64")
    return tuple(int(e) for e in group.attrs["epochs"])


def _seeds_attr(group: h5py.Group) -> tuple[str, ...]:
    if h5py.check_string_dtype(_vector_attr(group, "seeds", _MAX_SEEDS).dtype) is None:
        raise ValueError(f"attribute seeds of {group.name} is not text")
    seeds = tuple(group.attrs["seeds"])
    if not all(isinstance(s, str) and len(s) <= _MAX_LABEL_CHARS for s in seeds):
        raise ValueError(
            f"attribute seeds of {group.name} holds labels that are not text of at most "
            f"{_MAX_LABEL_CHARS} characters"
        )
    return seeds


def _flag_attr(obj: h5py.HLObject, name: str) -> bool:
    attr = _attr_id(obj, name)
    if attr.shape != () or attr.dtype != np.bool_:
        raise ValueError(f"attribute {name} of {obj.name} is not a boolean scalar")
    return bool(obj.attrs[name])


def _attr_id(obj: h5py.HLObject, name: str) -> h5py.h5a.AttrID:
    if name not in obj.attrs:
        raise ValueError(f"{obj.name} has no attribute {name}")
    return obj.attrs.get_id(name)


def _read_archs(dataset: h5py.Dataset) -> tuple[str, ...]:
    dtype, shape = dataset.dtype, dataset.shape
    if (
        dtype.kind != "S"
        or dtype.itemsize > _MAX_ARCH_CHARS
        or len(shape or ()) != 1
        or not 0 < shape[0] <= _MAX_ARCHS
    ):
        raise ValueError(
            f"/archs is {quoted(dtype)} of shape {shape}, expected 1 to {_MAX_ARCHS} ASCII "
            f"strings of at most {_MAX_ARCH_CHARS} bytes"
        )
    return tuple(_stored_array(dataset, dtype, shape).astype(str).tolist())


def _check_arch_axis(dataset: h5py.Dataset, n_arch: int) -> None:
    count = dataset.shape[0] if dataset.shape else 0
    if count != n_arch:
        raise ValueError(f"{dataset.name} holds {count} architectures, /archs has {n_arch}")


def _read_variable(group: h5py.Group, key: VariableKey, path: Path, n_arch: int) -> Variable:
    try:
        seeds, epochs = _seeds_attr(group), _epochs_attr(group)
        constant = _flag_attr(group, "constant_over_epochs")
        shape = (n_arch, len(seeds), 1 if constant else len(epochs))
        stored = group["values"]
        _check_arch_axis(stored, n_arch)
        values = _stored_array(stored, _FLOAT32, shape)
        mask = _stored_array(group["mask"], _BOOL, shape)
        if constant:
            shape = (n_arch, len(seeds), len(epochs))
            values, mask = np.broadcast_to(values, shape), np.broadcast_to(mask, shape)
        return Variable(
            values=values,
            mask=mask,
            seeds=seeds,
            epochs=epochs,
            unit=_text_attr(group, "unit", _MAX_TEXT_CHARS),
            source=_text_attr(group, "source", _MAX_TEXT_CHARS),
            derivation=_text_attr(group, "derivation", _MAX_TEXT_CHARS),
        )
    except _READ_ERRORS as error:
        raise TableError(
            f"table {path}: variable {key_text(key)} is malformed ({one_line(error)}); {REBUILD}"
        ) from error


def _read_property(
    group: h5py.Group, key: PropertyKey, path: Path, n_arch: int
) -> tuple[np.ndarray, np.ndarray]:
    try:
        stored = group["values"]
        _check_arch_axis(stored, n_arch)
        values = _stored_array(stored, _FLOAT32, (n_arch,))
        mask = _stored_array(group["mask"], _BOOL, (n_arch,))
        return checked_property(values, mask, n_arch)
    except _READ_ERRORS as error:
        raise TableError(
            f"table {path}: property {key_text(key)} is malformed ({one_line(error)}); {REBUILD}"
        ) from error


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
    width = max((len(key_text(k)) for k in table.variables()), default=0)
    for key in table.variables():
        var = table.variable(*key)
        lines.append(
            f"  {key_text(key):<{width}}  [{','.join(var.seeds)}]; "
            f"{_epochs_text(var.epochs)}; {100 * var.mask.mean():.1f}% ({var.unit})"
        )
    if table.properties():
        lines.append("properties (cells available):")
        for key in table.properties():
            lines.append(f"  {key_text(key)}  {100 * table.property(*key)[1].mean():.1f}%")
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

"""Writing a table: byte-for-byte reproducible (no timestamps, fixed layout and
compression) and atomic (the file appears only when complete)."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from harness.atomic import replacing
from harness.errors import TableError
from harness.table_format import (
    FORMAT,
    FORMAT_VERSION,
    PropertyKey,
    Variable,
    VariableKey,
    check_name,
    checked_property,
    key_text,
)

_GZIP_LEVEL = 4

_CHUNK_ELEMENTS = 1 << 16  # about 256 KiB of float32 per chunk


def _json(obj: Mapping[str, Any]) -> str:
    """Canonical JSON, so equal metadata always gives equal bytes."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False)


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
        _write_variable(group.create_group(key_text(key)), variables[key])
    group = f.create_group("properties")
    for key in sorted(properties):
        sub = group.create_group(key_text(key))
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
            check_name(part)
        if len(key) != 4 or variable.values.shape[0] != len(archs):
            raise ValueError(f"variable {key}: needs a 4-part key and {len(archs)} architectures")
    checked = {}
    for key, (values, mask) in properties.items():
        for part in key:
            check_name(part)
        if len(key) != 2:
            raise ValueError(f"property {key}: needs a (dataset, name) key")
        checked[key] = checked_property(values, mask, len(archs))
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
    # built in memory, then written as plain bytes: HDF5 writing to a full disk fails in
    # its destructors (a crash), where a Python write raises an OSError the CLI reports
    with h5py.File(f"{path.name}-in-memory", "w", driver="core", backing_store=False) as f:
        _write_contents(f, attrs, arch_array, variables, checked)
        f.flush()
        image = f.id.get_file_image()
    with replacing(path) as tmp:
        try:
            with open(tmp, "xb") as fh:
                fh.write(image)
                fh.flush()
                os.fsync(fh.fileno())
        except OSError as error:
            raise TableError(
                f"cannot write table {path} ({error.strerror}); free space there or choose "
                "another path"
            ) from None
    return hashlib.sha256(image).hexdigest()

"""Reading one official NATS-Bench file without running its code, and bounded in size.

A pickle can run any code, and a bz2 stream or a pickle's shared references can expand
to far more memory than the file's size, so a file is decompressed under a size cap,
unpickled with the restricted unpickler (plain containers, numbers and numpy scalars
only) and walked under a node and depth budget; any problem is a :class:`TableError`
naming the file. What the data means is checked by :mod:`harness.importers.nats`.
"""

from __future__ import annotations

import bz2
import itertools
from pathlib import Path
from typing import Any

import numpy as np

from harness.atomic import check_regular, read_regular
from harness.data.safe_pickle import _RestrictedUnpickler
from harness.errors import DatasetError, TableError

MAX_DECOMPRESSED_BYTES = 4 << 20
"""Largest decompressed file accepted: 3x the official tss meta (1.4 MB), 12x a tss
record (0.33 MB)."""

MAX_NODES = 500_000
"""Most objects a file may expand to, shared references counted each time they are
reached: 13x an official tss record (36,993)."""

_MAX_DEPTH = 12  # an official file nests containers 5 deep


def _empty_dict() -> dict:
    """What an ``OrderedDict`` becomes: pickle rebuilds it as ``OrderedDict()`` followed by
    item assignments, and a plain dict keeps the same insertion order."""
    return {}


_NUMERIC_DTYPES = frozenset({"f2", "f4", "f8", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8"})


def _flag(value: object) -> bool:
    return type(value) in (bool, int) and value in (0, 1)


def _numeric_dtype(spec: object, align: object = 0, copy: object = 0) -> np.dtype:
    """``numpy.dtype`` narrowed to the plain numeric types a scalar in the archive uses."""
    if spec not in _NUMERIC_DTYPES or not (_flag(align) and _flag(copy)):
        raise DatasetError(f"refused numpy.dtype({kind_of(spec)}): not a plain numeric type")
    return np.dtype(spec)


class _ArchiveUnpickler(_RestrictedUnpickler):
    """The project's restricted unpickler, narrowed to what NATS-Bench's files contain:
    ``OrderedDict`` (as a plain dict) and numpy numeric scalars; no arrays, no codecs."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("collections", "OrderedDict"):
            return _empty_dict
        if (module, name) == ("numpy", "dtype"):
            return _numeric_dtype
        if name == "scalar" and module in ("numpy.core.multiarray", "numpy._core.multiarray"):
            scalar = super().find_class(module, name)

            def numeric_scalar(dtype: object, data: object) -> Any:
                if not isinstance(dtype, np.dtype) or dtype.kind not in "fiu":
                    raise DatasetError("refused a numpy scalar that is not a number")
                if not isinstance(data, bytes) or len(data) != dtype.itemsize:
                    raise DatasetError("refused a numpy scalar of the wrong size")
                return scalar(dtype, data)

            return numeric_scalar
        raise DatasetError(
            f"refused to unpickle {module}.{name}: a NATS-Bench archive holds only plain "
            "data (tampered or wrong file)"
        )


def one_line(error: BaseException) -> str:
    """An exception's message on one short line."""
    return " ".join(str(error).split())[:200] or type(error).__name__


def fail(path: Path, problem: str, archive: str) -> TableError:
    return TableError(
        f"NATS-Bench file {path} {problem}; replace it with the file of the official "
        f"{archive} archive and import again"
    )


def _decompress(raw: bytes, path: Path, archive: str) -> bytes:
    """One whole bz2 stream, refused once it would exceed :data:`MAX_DECOMPRESSED_BYTES`."""
    decompressor = bz2.BZ2Decompressor()
    try:
        data = decompressor.decompress(raw, max_length=MAX_DECOMPRESSED_BYTES + 1)
    except (OSError, ValueError, EOFError) as error:
        raise fail(path, f"is not bz2-compressed ({one_line(error)})", archive) from None
    if len(data) > MAX_DECOMPRESSED_BYTES:
        raise fail(
            path,
            f"decompresses to more than {MAX_DECOMPRESSED_BYTES >> 20} MiB, far more than "
            "any official file (a decompression bomb?)",
            archive,
        )
    if not decompressor.eof:
        raise fail(path, "is truncated (its bz2 stream ends early)", archive)
    if decompressor.unused_data:
        raise fail(path, "has extra bytes after its bz2 stream", archive)
    return data


_CONTAINERS = (dict, list, tuple, set, frozenset)


def _check_expansion(data: object, path: Path, archive: str) -> None:
    """Refuse a structure deeper than :data:`_MAX_DEPTH` or, counting a shared object
    each time it is reached, larger than :data:`MAX_NODES` (a "billion laughs" pickle
    is small in memory but explodes for anything that walks it)."""
    stack = [(data, 0)] if isinstance(data, _CONTAINERS) else []
    count = 1
    while stack:
        node, depth = stack.pop()
        count += 2 * len(node) if isinstance(node, dict) else len(node)
        if count > MAX_NODES:
            raise fail(
                path,
                f"expands to more than {MAX_NODES:,} objects through shared references, "
                "far more than any official file",
                archive,
            )
        if depth >= _MAX_DEPTH:
            raise fail(path, f"nests deeper than {_MAX_DEPTH} levels", archive)
        children = itertools.chain(node.keys(), node.values()) if isinstance(node, dict) else node
        stack.extend((child, depth + 1) for child in children if isinstance(child, _CONTAINERS))


def read_bytes(path: Path, archive: str) -> bytes:
    """A file's bytes, refused unread when it is larger than any official file can be."""
    try:
        check_regular(path)  # a FIFO would block the read forever
        size = path.stat().st_size
        if size > MAX_DECOMPRESSED_BYTES:
            raise fail(path, f"has {size:,} bytes, more than any official file", archive)
        return read_regular(path)
    except OSError as error:
        raise fail(path, f"cannot be read ({error.strerror or error})", archive) from None


def load(raw: bytes, path: Path, archive: str) -> object:
    """Decompress, unpickle without running code, and bound the result's size."""
    data = _decompress(raw, path, archive)
    try:
        result = _ArchiveUnpickler(data, path.name).load()
    except DatasetError as error:
        raise fail(path, f"is unsafe: {one_line(error)}", archive) from None
    except Exception as error:  # corrupt input makes pickle raise nearly any error type
        raise fail(
            path, f"is not a readable pickle ({type(error).__name__}: {one_line(error)})", archive
        ) from None
    _check_expansion(result, path, archive)
    return result


def read_nats_file(path: Path) -> object:
    """The plain data of one archive file (``meta`` or ``NNNNNN.pickle.pbz2``), read
    without running code and bounded in size, but not yet validated; TableError if it
    is unsafe or unreadable."""
    path = Path(path)
    return load(read_bytes(path, "NATS-Bench"), path, "NATS-Bench")


def kind_of(value: object) -> str:
    """A short description of a value for an error message, never a long repr (a
    hostile structure could be huge to print)."""
    simple = (str, int, float, type(None))
    if isinstance(value, simple) or (
        isinstance(value, tuple) and all(isinstance(v, simple) for v in value)
    ):
        text = repr(value)
        if len(text) <= 120:
            return f"{type(value).__name__} {text}"
    return type(value).__name__

"""Read dataset pickles without executing code from them.

CIFAR's and ImageNet16's python batches are pickles: loading one with :mod:`pickle`
runs whatever callable the file names, so a tampered download could run any command.
This unpickler builds only what the opcodes themselves build (dicts, lists, tuples,
str, bytes, numbers) plus numpy arrays and dtypes through numpy's own reconstruction
functions; any other callable a file names is refused before it is looked up.
"""

from __future__ import annotations

import io
import pickle
from collections.abc import Callable
from typing import Any

import numpy as np

from harness.errors import DatasetError

try:  # numpy >= 2
    from numpy._core import multiarray as _multiarray
    from numpy._core import numeric as _numeric
except ImportError:  # numpy 1.26
    from numpy.core import multiarray as _multiarray
    from numpy.core import numeric as _numeric


def _latin1_encode(text: str, encoding: str) -> bytes:
    """``_codecs.encode`` narrowed to what pickle protocol 2 uses it for: bytes objects."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(f"refused _codecs.encode with encoding {encoding!r}")
    return text.encode("latin-1")


_RECONSTRUCTORS: dict[tuple[str, str], Callable[..., Any]] = {
    ("multiarray", "_reconstruct"): _multiarray._reconstruct,  # protocol <= 4 arrays
    ("multiarray", "scalar"): _multiarray.scalar,  # numpy scalars
    ("numeric", "_frombuffer"): _numeric._frombuffer,  # protocol 5 arrays
}
_ALLOWED: dict[tuple[str, str], Callable[..., Any]] = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): _latin1_encode,
    **{
        (f"{package}.{module}", name): function
        for package in ("numpy.core", "numpy._core")  # numpy 1.x and 2.x spell it differently
        for (module, name), function in _RECONSTRUCTORS.items()
    },
}


class _RestrictedUnpickler(pickle.Unpickler):
    """An unpickler whose only importable names are the numpy reconstructors above."""

    def __init__(self, data: bytes, name: str) -> None:
        # latin1: how Python 2 pickles' str (CIFAR's keys and array bytes) must be read
        super().__init__(io.BytesIO(data), encoding="latin1")
        self._name = name

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise DatasetError(
                f"{self._name}: refused to unpickle {module}.{name}; the file is not a plain "
                "data batch (tampered or wrong file): replace it with the official one"
            ) from None


def safe_unpickle(data: bytes, name: str) -> Any:
    """Unpickle ``data`` (read from file ``name``) building only builtins and numpy arrays."""
    try:
        return _RestrictedUnpickler(data, name).load()
    except DatasetError:
        raise
    except Exception as exc:  # corrupt input makes pickle raise nearly any error type
        detail = " ".join(str(exc).split())
        raise DatasetError(
            f"{name}: not a readable pickle ({type(exc).__name__}: {detail}); "
            "the file is corrupt or truncated: replace it with the official one"
        ) from exc

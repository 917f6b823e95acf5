"""harness: a reproducibility-first benchmark harness for neural architecture search.

The Python API (:mod:`harness.api`) is available from the package itself:
``harness.run``, ``harness.estimate``, ``harness.predict``, ``harness.results``,
``harness.make_report``, ``harness.rerun``, ``harness.load_table`` and ``harness.ls``. They
are imported on first use, so ``import harness`` stays cheap.
"""

from __future__ import annotations

from typing import Any

from harness.version import __version__

__all__ = [
    "__version__",
    "estimate",
    "load_table",
    "ls",
    "make_report",
    "rerun",
    "predict",
    "results",
    "run",
]


def __getattr__(name: str) -> Any:
    if name in __all__ and name != "__version__":
        from harness import api

        return getattr(api, name)
    raise AttributeError(f"module 'harness' has no attribute {name!r}")


def __dir__() -> list[str]:
    """The API, though it is imported on first use (and not the helpers this module or
    an imported submodule leaves in its namespace)."""
    return sorted({*__all__, *(name for name in globals() if name.startswith("__"))})

"""harness: a reproducibility-first benchmark harness for neural architecture search.

The Python API (:mod:`harness.api`) is available from the package itself:
``harness.run``, ``harness.results``, ``harness.make_report``, ``harness.load_table`` and
``harness.ls``. They are
imported on first use, so ``import harness`` stays cheap.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["load_table", "ls", "make_report", "results", "run"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from harness import api

        return getattr(api, name)
    raise AttributeError(f"module 'harness' has no attribute {name!r}")

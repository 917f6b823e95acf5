"""Where a project's records, resume state and reports live: one rule for every command.

The project root is the nearest folder holding ``pyproject.toml`` or ``.git``, looked
for from the spec's own folder upwards (from the working folder for a command given no
spec: ``harness ls``, ``harness report NAME``, ``harness rerun``); where there is none,
the spec's folder (the working folder) itself. Then:

- the default MLflow store is ``<root>/mlflow.db``; ``MLFLOW_TRACKING_URI`` replaces it;
- an interrupted run's finished chunks are kept in ``.harness/resume/`` beside the sqlite
  store (at the root when the store is a tracking server);
- a spec's results folder is its ``[experiment] results``, resolved against the spec's
  folder; ``harness report NAME`` writes ``<root>/results/<name>``.

So ``harness run benchmarks/digits/compare.toml`` from the repository, from
``benchmarks/`` or from anywhere else records into the same ``mlflow.db``.
"""

from __future__ import annotations

import os
from pathlib import Path

#: files or folders that mark a project's root
MARKERS = ("pyproject.toml", ".git")
#: the default sqlite store's file name, at the project root
STORE_FILE = "mlflow.db"


def project_root(start: Path | None = None) -> Path:
    """The nearest folder from ``start`` (default: the working folder) upwards that holds
    ``pyproject.toml`` or ``.git``; ``start`` itself where none does."""
    start = Path.cwd() if start is None else Path(start)
    start = start.resolve()
    for folder in (start, *start.parents):
        if any((folder / marker).exists() for marker in MARKERS):
            return folder
    return start


def store_uri(root: Path | None = None) -> str:
    """``MLFLOW_TRACKING_URI`` if set, else the sqlite store at the project root of ``root``
    (a spec's folder; default: the working folder)."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{project_root(root) / STORE_FILE}"


def sqlite_path(uri: str) -> Path | None:
    """The file of a ``sqlite:///`` store, None for any other URI."""
    return Path(uri.removeprefix("sqlite:///")) if uri.startswith("sqlite:///") else None


def resume_root(uri: str, root: Path | None = None) -> Path:
    """The folder whose ``.harness/resume/`` keeps an interrupted run's finished chunks:
    beside a sqlite store's file, else the project root of ``root``."""
    path = sqlite_path(uri)
    return path.parent if path is not None else project_root(root)

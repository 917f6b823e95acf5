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
``benchmarks/`` or from anywhere else records into the same ``mlflow.db``. A store that
would lose the record (in memory) or cannot hold it (a folder, an unreachable server) is
refused in one line, in seconds (:func:`check_uri`).
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from urllib.parse import urlsplit

from harness.errors import HarnessError

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


#: how long a tracking server may take to accept a connection before the command ends
CONNECT_TIMEOUT_S = 10.0


def check_uri(uri: str) -> None:
    """Refuse, in one line and in seconds, a store that would lose the record or cannot be
    reached: an in-memory sqlite store, a sqlite path that is a folder, a tracking server
    that accepts no connection (MLflow itself retries for minutes)."""
    if uri.startswith("sqlite:"):
        path = sqlite_path(uri)
        if path is None or str(path) in ("", ".", ":memory:") or "mode=memory" in uri:
            raise HarnessError(
                f"the MLflow store {uri} is in memory: its records would vanish when this "
                "command ends; set MLFLOW_TRACKING_URI to a file (sqlite:///PATH/mlflow.db) "
                "or a tracking server"
            )
        if path.is_dir():
            raise HarnessError(
                f"the MLflow store {path} is a folder, not a sqlite file; set "
                f"MLFLOW_TRACKING_URI to a file, e.g. sqlite:///{path / 'mlflow.db'}"
            )
    elif uri.startswith(("http://", "https://")):
        parts = urlsplit(uri)
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
            socket.create_connection((parts.hostname or "", port), CONNECT_TIMEOUT_S).close()
        except (OSError, ValueError) as error:
            reason = getattr(error, "strerror", None) or str(error) or type(error).__name__
            raise HarnessError(
                f"the MLflow tracking server {uri} cannot be reached ({reason}); start it, "
                "or check MLFLOW_TRACKING_URI"
            ) from None

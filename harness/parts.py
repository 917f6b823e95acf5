"""A resumable build's finished chunks, kept as ``chunk-<index>.npz`` in a parts folder.

``harness tabulate`` and ``harness estimate`` cut their work into fixed chunks; each
finished chunk is written here atomically by the one process that collects results, so a
build killed at any point resumes without redoing what finished, and workers (processes
or Dask) need no shared file system. A parts folder belongs to one build identity
(``build.json``): a folder made for another protocol, chunking or version is refused
rather than mixed in.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from harness.atomic import read_regular, replacing, write_text
from harness.errors import TableError


def parts_folder(out: Path) -> Path:
    """Where the chunks of the file ``out`` are kept while it is built."""
    return out.with_name(out.name + ".parts")


def check_parts(parts: Path, identity: dict[str, Any]) -> None:
    """Claim ``parts`` for the build ``identity``; refuse a folder of another build."""
    manifest = parts / "build.json"
    if manifest.exists():
        try:
            found = json.loads(read_regular(manifest))
        except (OSError, ValueError):
            raise TableError(
                f"{manifest} is damaged; remove it (the finished chunks stay) to continue"
            ) from None
        if found != identity:
            raise TableError(
                f"{parts} holds a build of another protocol or version ({found}); "
                "remove the folder to start over"
            )
        return
    write_text(manifest, json.dumps(identity, sort_keys=True))


def write_part(parts: Path, index: int, arrays: dict[str, np.ndarray]) -> None:
    """Store a finished chunk as ``chunk-<index>.npz``; it appears whole or not at all."""
    with replacing(parts / f"chunk-{index:05d}.npz", suffix=".npz") as temporary:
        np.savez(temporary, **arrays)


def chunks_done(parts: Path) -> set[int]:
    """The indices of the chunks already finished."""
    return {int(p.stem.split("-")[1]) for p in parts.glob("chunk-*.npz")}


def read_parts(parts: Path) -> Iterator[dict[str, np.ndarray]]:
    """Every finished chunk's arrays, in chunk order (never unpickled; a chunk that is not
    a regular file, a FIFO say, is refused unread rather than waited on)."""
    for path in sorted(parts.glob("chunk-*.npz")):
        try:
            raw = read_regular(path)
        except OSError as error:
            raise TableError(
                f"{path} cannot be read ({error.strerror}); remove it to build that chunk again"
            ) from None
        with np.load(io.BytesIO(raw), allow_pickle=False) as data:
            yield {key: data[key] for key in data.files}

"""Finished chunks of an interrupted experiment, kept so that running it again resumes.

``harness run`` writes each finished chunk of runs here (atomically, one file per chunk)
before it goes on. Killed at any moment (``kill -9`` included) and started again, it reads
the finished chunks back and runs only the rest, so the records and results are those of
an uninterrupted run. The folder is removed once the experiment is recorded.

A chunk is only reused by the same experiment under the same conditions: the folder's
``identity.json`` pins everything a result depends on (spec hash, table sha256, evaluator,
the harness package's source and the strategies' sources); a folder with another identity
is discarded. Each chunk also stores a sha256 (:data:`DIGEST`) over that identity, its own
index and every one of its arrays (names, dtypes, shapes and bytes): a chunk that does not
verify (edited, truncated, copied from another experiment or another chunk's place, or
anything but a regular file) is removed and its runs are done again, never trusted.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import shutil
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from harness.atomic import read_regular, replacing
from harness.config import config_hash

log = logging.getLogger(__name__)

#: where interrupted experiments keep their finished chunks (relative to the working folder)
WORK_DIR = Path(".harness") / "resume"
#: the array of a stored chunk that holds its sha256 (:func:`chunk_digest`)
DIGEST = "_sha256"


def source_sha256() -> str:
    """sha256 over the harness package's files (names and bytes): the code that produced a
    chunk, whether harness runs from a git checkout or an installed wheel."""
    root = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.suffix in (".py", ".txt"):
            digest.update(path.relative_to(root).as_posix().encode() + b"\0")
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def chunk_digest(identity: dict[str, Any], index: int, arrays: dict[str, np.ndarray]) -> str:
    """sha256 over an identity, a chunk's index and its named arrays (dtype, shape, bytes)."""
    digest = hashlib.sha256(f"{config_hash(identity)}\0{index}\0".encode())
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}\0{array.dtype.str}\0{array.shape}\0".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


class ChunkStore:
    """Finished chunks (named numpy arrays) of one experiment under one identity."""

    def __init__(self, root: Path, name: str, identity: dict[str, Any]) -> None:
        self.folder = root / f"{name}-{config_hash(identity)[:16]}"
        self.identity = identity

    def load(self) -> dict[int, dict[str, np.ndarray]]:
        """The chunks finished by an earlier, interrupted attempt (empty if none)."""
        marker = self.folder / "identity.json"
        try:
            recorded = json.loads(read_regular(marker))
        except (OSError, ValueError):
            recorded = None
        if recorded != self.identity:
            if self.folder.exists():
                log.info("harness: discarding unusable partial results in %s", self.folder)
                shutil.rmtree(self.folder, ignore_errors=True)
            return {}
        chunks = {}
        for path in sorted(self.folder.glob("chunk-*.npz")):
            index = path.stem.split("-")[1]
            arrays = (
                self._verified(path, int(index)) if index.isascii() and index.isdigit() else None
            )
            if arrays is None:  # run it again
                log.info("harness: %s does not verify; its runs are done again", path.name)
                self.discard(path)
            else:
                chunks[int(index)] = arrays
        if chunks:
            log.info("harness: resuming: %d finished chunks in %s", len(chunks), self.folder)
        return chunks

    def _verified(self, path: Path, index: int) -> dict[str, np.ndarray] | None:
        """The arrays of a stored chunk, or None unless it is a regular file, a readable
        archive and its digest matches this store's identity, the index and the arrays."""
        try:
            with np.load(io.BytesIO(read_regular(path)), allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError, TypeError):
            return None
        stored = arrays.pop(DIGEST, None)
        if stored is None or stored.dtype != np.uint8 or stored.ndim != 1:
            return None
        if stored.tobytes() != chunk_digest(self.identity, index, arrays).encode():
            return None
        return arrays

    def discard(self, path: Path) -> None:
        """Remove a stored chunk that cannot be used (a folder there included)."""
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)

    def drop(self, index: int) -> None:
        """Forget one chunk, whose runs are then done again."""
        self.discard(self.folder / f"chunk-{index:05d}.npz")

    def save(self, index: int, arrays: dict[str, np.ndarray]) -> None:
        """Keep one finished chunk (named arrays); it appears whole or not at all."""
        marker = self.folder / "identity.json"
        if not marker.exists():
            with replacing(marker) as temporary:
                temporary.write_text(json.dumps(self.identity, sort_keys=True))
        with replacing(self.folder / f"chunk-{index:05d}.npz", suffix=".npz") as temporary:
            digest = chunk_digest(self.identity, index, arrays)
            np.savez(temporary, **arrays, **{DIGEST: np.frombuffer(digest.encode(), np.uint8)})

    def clear(self) -> None:
        """Forget the chunks: the experiment is recorded."""
        shutil.rmtree(self.folder, ignore_errors=True)

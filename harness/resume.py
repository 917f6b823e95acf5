"""Finished chunks of an interrupted experiment, kept so that running it again resumes.

``harness run`` writes each finished chunk of runs here (atomically, one file per chunk)
before it goes on. Killed at any moment (``kill -9`` included) and started again, it reads
the finished chunks back and runs only the rest, so the records and results are those of
an uninterrupted run. The folder is removed once the experiment is recorded.

A chunk is only reused by the same experiment under the same conditions: the folder's
``identity.json`` pins everything a result depends on (spec hash, table sha256, evaluator,
the harness package's source and the strategies' sources); a folder with another identity
is discarded.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from harness.atomic import replacing
from harness.config import config_hash

log = logging.getLogger(__name__)

#: where interrupted experiments keep their finished chunks (relative to the working folder)
WORK_DIR = Path(".harness") / "resume"


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


class ChunkStore:
    """Finished chunks (named numpy arrays) of one experiment under one identity."""

    def __init__(self, root: Path, name: str, identity: dict[str, Any]) -> None:
        self.folder = root / f"{name}-{config_hash(identity)[:16]}"
        self.identity = identity

    def load(self) -> dict[int, dict[str, np.ndarray]]:
        """The chunks finished by an earlier, interrupted attempt (empty if none)."""
        marker = self.folder / "identity.json"
        try:
            recorded = json.loads(marker.read_text())
        except (OSError, ValueError):
            recorded = None
        if recorded != self.identity:
            if self.folder.exists():
                log.info("harness: discarding unusable partial results in %s", self.folder)
                shutil.rmtree(self.folder, ignore_errors=True)
            return {}
        chunks = {}
        for path in sorted(self.folder.glob("chunk-*.npz")):
            try:
                with np.load(path, allow_pickle=False) as data:
                    chunks[int(path.stem.split("-")[1])] = {k: data[k] for k in data.files}
            except (OSError, ValueError, EOFError, zipfile.BadZipFile):  # run it again
                path.unlink(missing_ok=True)
        if chunks:
            log.info("harness: resuming: %d finished chunks in %s", len(chunks), self.folder)
        return chunks

    def save(self, index: int, arrays: dict[str, np.ndarray]) -> None:
        """Keep one finished chunk (named arrays); it appears whole or not at all."""
        marker = self.folder / "identity.json"
        if not marker.exists():
            with replacing(marker) as temporary:
                temporary.write_text(json.dumps(self.identity, sort_keys=True))
        with replacing(self.folder / f"chunk-{index:05d}.npz", suffix=".npz") as temporary:
            np.savez(temporary, **arrays)

    def clear(self) -> None:
        """Forget the chunks: the experiment is recorded."""
        shutil.rmtree(self.folder, ignore_errors=True)

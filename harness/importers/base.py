"""The importer interface: build a harness table from one benchmark's published data.

An importer is a plugin like a search space or a strategy (:mod:`harness.plugins`): a
built-in name, an entry point in group ``harness.importers``, or ``package.module:Class``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path


class Importer(ABC):
    """Reads a benchmark's published files (never executing pickled code), cross-checks
    them and writes a reproducible table (:func:`harness.table.write_table`)."""

    @abstractmethod
    def build(self, out: Path, source: Path | None, dataset: str | None) -> str:
        """Write the table ``out`` from ``source`` (a folder) and, where the benchmark
        holds several, ``dataset``; return its sha256. ConfigError names a missing input
        by its field (``source``, ``dataset``); nothing is written on any error."""

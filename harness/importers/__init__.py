"""Importers: build harness tables from published benchmark data.

Each importer reads plain data (never pickled code: pickles go through the restricted
unpickler), cross-checks it, and writes a reproducible table with
:func:`harness.table.write_table`. Importers load as spaces and strategies do: a built-in
name (:data:`BUILTIN_IMPORTERS`), an entry point in group ``harness.importers``, or
``package.module:Class`` naming an :class:`~harness.importers.base.Importer`. Specs name
one in ``[table] build``, and ``harness import`` takes its name.
"""

from __future__ import annotations

from pathlib import Path

from harness.config import at
from harness.importers.base import Importer
from harness.plugins import load_class

#: built-in importer name -> class reference (imported only when asked for)
BUILTIN_IMPORTERS = {
    "nb201": "harness.importers.nb201:NB201Importer",
    "nb201-curves": "harness.importers.nb201_curves:NB201CurvesImporter",
    "nbgraph": "harness.importers.nbgraph:NBGraphImporter",
    "nats": "harness.importers.nats:NATSImporter",
}
ENTRY_POINT_GROUP = "harness.importers"

#: built-in importer name -> what it needs (``harness import --help``)
IMPORTERS = {
    "nb201": "--source: the folder of the public NB201 extracts",
    "nb201-curves": "--source: the same folder; extract E's learning curves of cells 0-199",
    "nbgraph": "--dataset: one of NAS-Bench-Graph's nine datasets (--source: optional folder "
    "of <dataset>.bench files; default: the installed nas-bench-graph wheel)",
    "nats": "--source: the folder of an official NATS-Bench simple archive "
    "(NATS-tss-v1_0-3ffb9-simple or NATS-sss-v1_0-50262-simple, whole or in part)",
}


def importer_class(name: str) -> type[Importer]:
    """The importer class ``name`` refers to; ConfigError lists the known ones."""
    return load_class(name, group=ENTRY_POINT_GROUP, builtins=BUILTIN_IMPORTERS, base=Importer)


def build_table(importer: str, out: Path, source: Path | None, dataset: str | None) -> str:
    """Build a table with the named importer; returns its sha256."""
    from harness.atomic import check_writable

    check_writable(out, "output table")
    with at("importer"):
        cls = importer_class(importer)
    return cls().build(out, source, dataset)


__all__ = ["BUILTIN_IMPORTERS", "IMPORTERS", "Importer", "build_table", "importer_class"]

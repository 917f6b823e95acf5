"""Importers: build harness tables from published benchmark data.

Each importer reads plain data (never pickled code: pickles go through the restricted
unpickler), cross-checks it, and writes a reproducible table with
:func:`harness.table.write_table`. :data:`IMPORTERS` names them for specs
(``[table] build``) and the ``harness import`` command.
"""

from __future__ import annotations

from pathlib import Path

#: importer name -> what it needs
IMPORTERS = {
    "nb201": "--source: the folder of the public NB201 extracts",
    "nbgraph": "--dataset: one of NAS-Bench-Graph's nine datasets (--source: optional folder "
    "of <dataset>.bench files; default: the installed nas-bench-graph wheel)",
    "nats": "--source: the folder of an official NATS-Bench simple archive "
    "(NATS-tss-v1_0-3ffb9-simple or NATS-sss-v1_0-50262-simple, whole or in part)",
}


def build_table(importer: str, out: Path, source: Path | None, dataset: str | None) -> str:
    """Build a table with the named importer; returns its sha256."""
    from harness.atomic import check_writable
    from harness.errors import ConfigError

    check_writable(out, "output table")
    if importer == "nb201":
        from harness.importers.nb201 import build_nb201_table

        if source is None:
            raise ConfigError("the nb201 importer needs a source folder", "source")
        return build_nb201_table(source, out)
    if importer == "nats":
        from harness.importers.nats import build_nats_table

        if source is None:
            raise ConfigError("the nats importer needs a source folder", "source")
        return build_nats_table(source, out)
    if importer == "nbgraph":
        from harness.importers.nbgraph import build_nbgraph_table

        if dataset is None:
            raise ConfigError("the nbgraph importer needs a dataset name", "dataset")
        return build_nbgraph_table(dataset, out, source)
    raise ConfigError(f"unknown importer {importer!r}; known: {', '.join(IMPORTERS)}", "importer")

"""Importers: build harness tables from published benchmark data.

Each importer reads plain-data extracts (never pickled code), cross-checks them against
each other, and writes a reproducible table with :func:`harness.table.write_table`.
"""

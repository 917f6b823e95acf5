"""Importers load through a registry, as spaces and strategies do: a built-in name, an
entry point in group ``harness.importers``, or ``package.module:Class``."""

from __future__ import annotations

import os

import pytest
from conftest import assert_clean_failure, harness_cli, needs_nbgraph

from harness.errors import ConfigError
from harness.importers import BUILTIN_IMPORTERS, IMPORTERS, Importer, importer_class

PLUGIN = '''
from harness.importers.base import Importer
from harness.importers.nbgraph import build_nbgraph_table


class Cora(Importer):
    """NAS-Bench-Graph's Cora table under another name: a plugin as a user would write one."""

    def build(self, out, source, dataset):
        return build_nbgraph_table("cora", out, source)
'''


def test_every_builtin_name_loads_an_importer_and_says_what_it_needs():
    assert set(BUILTIN_IMPORTERS) == set(IMPORTERS)
    for name in BUILTIN_IMPORTERS:
        assert issubclass(importer_class(name), Importer)


def test_an_unknown_importer_suggests_the_nearest_name():
    with pytest.raises(ConfigError, match=r"unknown importer 'nb101' \(did you mean 'nb201'\?\)"):
        importer_class("nb101")


@needs_nbgraph()
def test_a_plugin_importer_builds_the_table_its_code_writes(tmp_path):
    (tmp_path / "cora_plugin.py").write_text(PLUGIN)
    path = os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")]))
    where = {"cwd": tmp_path, "PYTHONPATH": path}
    plugin = harness_cli("import", "cora_plugin:Cora", "--out", "p.h5", **where)
    builtin = harness_cli("import", "nbgraph", "--dataset", "cora", "--out", "b.h5", cwd=tmp_path)
    assert plugin.returncode == 0 and builtin.returncode == 0, plugin.stderr + builtin.stderr
    assert plugin.stdout.split()[-1] == builtin.stdout.split()[-1]  # the same sha256


def test_harness_import_of_an_unknown_importer_ends_in_one_line(tmp_path):
    done = harness_cli("import", "nbgrph", "--out", "t.h5", cwd=tmp_path)
    assert_clean_failure(done, "[importer]", "did you mean 'nbgraph'")
    assert not (tmp_path / "t.h5").exists()

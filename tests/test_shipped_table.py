"""The table the project ships: pinned, complete, built under its spec's protocol."""

from __future__ import annotations

import json
import tomllib

import pytest
from conftest import REPO

from harness.environment import cpu_description
from harness.protocol import load_protocol, table_protocol
from harness.table import Table
from harness.verify import verify

TABLE = REPO / "tabular" / "nb201-digits.h5"
MANIFEST = REPO / "tabular" / "manifest.json"
pytestmark = pytest.mark.skipif(not TABLE.exists(), reason=f"{TABLE} is not built yet")


@pytest.fixture(scope="module")
def table() -> Table:
    entry = json.loads(MANIFEST.read_text())[TABLE.name]
    return Table.load(TABLE, expected_sha256=entry["sha256"])


def test_shipped_table_is_pinned_by_manifest_and_demo_spec(table):
    demo = tomllib.loads((REPO / "benchmarks" / "digits" / "compare.toml").read_text())
    assert demo["table"]["sha256"] == table.sha256
    assert TABLE.stat().st_size <= 25 * 2**20


def test_shipped_table_was_built_under_the_spec_protocol_and_covers_every_cell(table):
    protocol = load_protocol(REPO / "benchmarks" / "digits" / "tabulate.toml")
    assert table_protocol(table.protocol, table.path) == protocol
    for key in table.variables():
        variable = table.variable(*key)
        assert variable.mask.all(), key
        assert variable.values.shape[0] == 15625


@pytest.mark.slow
def test_retraining_a_sample_reproduces_the_table_on_the_build_cpu(table):
    built_on = table.provenance["environment"]
    here = cpu_description()
    if (built_on["cpu.model"], built_on["cpu.isa"]) != (here["model"], here["isa"]):
        pytest.skip("a different CPU than the build's: drift is expected, not a failure")
    drifts = verify(table, sample=3, seed=0)
    assert max(d.max_abs for d in drifts) == 0.0


def test_a_table_shows_itself_in_one_short_line(table):
    shown = repr(table)
    assert "\n" not in shown and len(shown) < 300
    assert shown.startswith(f"Table({str(TABLE)!r}, space='nb201', ")
    assert f"archs={len(table.archs)}" in shown and table.sha256[:12] in shown

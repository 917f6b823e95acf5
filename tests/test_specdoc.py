"""docs/specs.md is generated from the Field declarations and matches the code."""

from __future__ import annotations

import pytest
from conftest import REPO

from harness import specdoc
from harness.config import Field, Section, SpecFormat


@pytest.fixture(scope="module")
def declared() -> tuple[list[SpecFormat], list]:
    return specdoc.declarations()


def test_the_committed_reference_equals_a_fresh_generation():
    committed = (REPO / specdoc.DOCS).read_text(encoding="utf-8")
    assert committed == specdoc.generate(), "run: python -m harness.specdoc"


def test_every_spec_format_is_found_and_every_key_says_what_it_means(declared):
    formats, _ = declared
    assert {f.command for f in formats} >= {
        "harness run SPEC",
        "harness estimate SPEC",
        "harness predict SPEC",
        "harness tabulate SPEC",
    }
    for spec in formats:
        for section in spec.sections:
            for name, field in section.fields.items():
                assert field.help.strip(), f"{spec.title} [{section.name}] {name} has no help"


def test_a_newly_declared_spec_format_is_documented_without_being_registered(monkeypatch):
    import harness.spec

    fields = {"width": Field(int, 8, low=1, help="how wide it is")}
    section = Section("supernet", fields, "A weight-sharing supernet.", required=True)
    monkeypatch.setattr(
        harness.spec,
        "SUPERNET_SPEC",
        SpecFormat("Supernet spec", "harness x", "x", (section,)),
        raising=False,
    )
    text = specdoc.generate()
    assert "## Supernet spec: `harness x`" in text
    assert "| `width` | integer (≥ 1) | `8` | how wide it is |" in text


def test_types_defaults_and_requirement_are_spelt_out():
    field = Field(str, None, optional=True, choices=("a", "b"), help="x")
    assert specdoc.describe_type(field) == 'string: `"a"`, `"b"`'
    assert specdoc.describe_default(field) == "absent"
    assert specdoc.describe_default(Field(int)) == "*required*"
    assert specdoc.describe_type(Field(list, items=int, low=0)) == "array of integers (≥ 0)"
    assert specdoc.describe_type(Field(float, low=0, low_open=True, high=1)) == "number (> 0, ≤ 1)"

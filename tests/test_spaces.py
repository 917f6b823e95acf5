"""The search-space contract, checked for every registered space; the registry itself."""

from __future__ import annotations

import pytest

from harness.errors import ArchitectureError, ConfigError
from harness.spaces import BUILTIN_SPACES, SearchSpace, get_space
from harness.testing import check_space

SPACES = sorted(BUILTIN_SPACES)


@pytest.fixture(params=SPACES)
def space(request) -> SearchSpace:
    return get_space(request.param)


def test_registry_returns_one_shared_instance_named_as_asked(space):
    assert get_space(space.name) is space
    assert space.num_archs > 1 and len(space.choices) >= 1


def test_unknown_space_lists_the_known_ones():
    with pytest.raises(
        ConfigError, match=r"unknown searchspace 'nb101' \(did you mean 'nb201'\?\); known: .*nb201"
    ):
        get_space("nb101")


def test_every_space_keeps_the_contract_plugins_are_checked_against(space):
    check_space(space)


def test_a_space_without_a_path_encoding_says_so(space):
    if "path" not in space.encodings:
        with pytest.raises(ArchitectureError, match="no 'path' encoding"):
            space.encode(0, "path")

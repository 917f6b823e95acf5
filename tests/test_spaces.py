"""The search-space contract, checked for every registered space; the registry itself."""

from __future__ import annotations

import numpy as np
import pytest

from harness.errors import ArchitectureError, ConfigError
from harness.spaces import BUILTIN_SPACES, SearchSpace, get_space

SPACES = sorted(BUILTIN_SPACES)


@pytest.fixture(params=SPACES)
def space(request) -> SearchSpace:
    return get_space(request.param)


def sample(space: SearchSpace, count: int = 200) -> list[int]:
    rng = np.random.default_rng(1)
    return [space.sample(rng) for _ in range(count)]


def test_registry_returns_one_shared_instance_named_as_asked(space):
    assert get_space(space.name) is space
    assert space.num_archs > 1 and len(space.choices) >= 1


def test_unknown_space_lists_the_known_ones():
    with pytest.raises(ConfigError, match=r"unknown searchspace 'nb101'; known: .*nb201"):
        get_space("nb101")


def test_index_string_and_decisions_round_trip(space):
    for index in sample(space):
        assert space.index_of_string(space.string_of_index(index)) == index
        decisions = space.decisions_of_index(index)
        assert len(decisions) == len(space.choices)
        assert all(0 <= d < c for d, c in zip(decisions, space.choices, strict=True))
        assert space.index_of_decisions(decisions) == index
    table = space.decision_table()
    assert table.shape == (space.num_archs, len(space.choices))
    assert len(set(map(tuple, table.tolist()))) == space.num_archs


def test_bad_input_raises_architecture_errors(space):
    for bad in (-1, space.num_archs, 1.5, True, "0"):
        with pytest.raises(ArchitectureError):
            space.string_of_index(bad)
    with pytest.raises(ArchitectureError):
        space.index_of_string("not an architecture")
    with pytest.raises(ArchitectureError):
        space.index_of_decisions([c for c in space.choices])  # every value one too large


def test_mutation_and_neighbours_change_exactly_one_decision(space):
    rng = np.random.default_rng(2)
    table = space.decision_table()
    for index in sample(space, 100):
        neighbours = space.neighbours(index)
        assert neighbours.dtype == np.int64 and (np.diff(neighbours) > 0).all()
        assert ((table[neighbours] != table[index]).sum(axis=1) == 1).all()
        child = space.mutate(index, rng)
        assert child in set(neighbours.tolist())


def test_sampling_uses_only_the_given_generator(space):
    assert sample(space) == sample(space)
    assert len(set(sample(space, 500))) > 400


def test_isomorphism_classes_agree_with_the_canonical_form(space):
    classes = space.isomorphism_classes()
    assert classes.shape == (space.num_archs,)
    assert (classes <= np.arange(space.num_archs)).all()
    assert (classes[classes] == classes).all()
    for index in sample(space, 300):
        assert space.canonical_form(index) == space.canonical_form(int(classes[index]))


def test_encodings_have_a_fixed_length(space):
    assert "onehot" in space.encodings
    for kind in space.encodings:
        length = space.encoding_length(kind)
        for index in sample(space, 50):
            vector = space.encode(index, kind)
            assert vector.shape == (length,) and set(np.unique(vector)) <= {0.0, 1.0}
    onehot = space.encode(0, "onehot")
    assert onehot.sum() == len(space.choices) and len(onehot) == sum(space.choices)
    if "path" not in space.encodings:
        with pytest.raises(ArchitectureError, match="no 'path' encoding"):
            space.encode(0, "path")

"""The NATS-Bench size space: official index order, strict notation, search moves."""

from __future__ import annotations

import bz2
import itertools
from collections import Counter

import numpy as np
import pytest
from conftest import REPO

from harness.data.safe_pickle import safe_unpickle
from harness.errors import ArchitectureError
from harness.spaces import BUILTIN_SPACES, get_space
from harness.spaces.nats_sss import CHANNELS, NUM_ARCHS, NATSSizeSpace

SAMPLE = REPO.parent / "shared" / "data" / "nats-official-sample"
META = SAMPLE / "NATS-sss-v1_0-50262-simple" / "meta.pickle.pbz2"


@pytest.fixture(scope="module")
def space() -> NATSSizeSpace:
    return NATSSizeSpace()


def test_constants_describe_the_space(space):
    assert (space.name, space.num_archs, NUM_ARCHS) == ("nats-sss", 32768, 32768)
    assert space.choices == (8,) * 5 and CHANNELS == (8, 16, 24, 32, 40, 48, 56, 64)
    assert space.encodings == ("onehot",) and space.encoding_length() == 40


def test_index_order_is_the_product_order_with_the_first_layer_most_significant(space):
    expected = [":".join(map(str, widths)) for widths in itertools.product(CHANNELS, repeat=5)]
    assert space.strings() == expected
    assert [space.string_of_index(i) for i in (0, 11, 284, 32767)] == [
        "8:8:8:8:8",
        "8:8:8:16:32",
        "8:8:40:32:40",
        "64:64:64:64:64",
    ]
    table = space.decision_table()
    assert table.dtype == np.int64 and not table.flags.writeable
    assert [tuple(row) for row in table.tolist()] == list(itertools.product(range(8), repeat=5))


@pytest.mark.skipif(not META.is_file(), reason=f"NATS-Bench sample not found at {META}")
def test_index_order_equals_the_official_meta_archs(space):
    # the meta file holds only a dict, a list, strings and a set: no class to unpickle
    meta = safe_unpickle(bz2.decompress(META.read_bytes()), META.name)
    assert meta["meta_archs"] == space.strings()


def test_strings_indices_and_decisions_round_trip_for_every_configuration(space):
    for index, arch in enumerate(space.strings()):
        assert space.index_of_string(arch) == index
        assert space.index_of_decisions(space.decisions_of_index(index)) == index
    assert space.index_of_decisions(np.array([7, 7, 0, 3, 4])) == space.index_of_string(
        "64:64:8:32:40"
    )


@pytest.mark.parametrize(
    ("arch", "message"),
    [
        ("64:64:64:64", "4 channel counts, expected 5"),
        ("64:64:64:64:64:64", "6 channel counts, expected 5"),
        ("64:64:64:64:65", "layer 5 has '65' channels"),
        ("064:64:64:64:64", "layer 1 has '064' channels"),
        (" 64:64:64:64:64", "layer 1 has ' 64' channels"),
        ("64:64:64:64:+8", "layer 5 has '\\+8' channels"),
        ("8.0:8:8:8:8", "layer 1 has '8.0' channels"),
        ("64;64;64;64;64", "1 channel counts, expected 5"),
        ("", "1 channel counts"),
    ],
)
def test_bad_strings_say_what_is_wrong_and_how_to_write_one(space, arch, message):
    with pytest.raises(ArchitectureError, match=message) as error:
        space.index_of_string(arch)
    assert "like '64:64:64:64:64'" in str(error.value)


@pytest.mark.parametrize("arch", [64, None, b"8:8:8:8:8", ("8", "8", "8", "8", "8")])
def test_non_strings_are_refused(space, arch):
    with pytest.raises(ArchitectureError, match="must be a str"):
        space.index_of_string(arch)


@pytest.mark.parametrize(
    "decisions",
    [(0, 0, 0, 0), (0, 0, 0, 0, 0, 0), (8, 0, 0, 0, 0), (0, -1, 0, 0, 0), (True, 0, 0, 0, 0)]
    + [(0.0, 0, 0, 0, 0), "01234", None],
)
def test_bad_decisions_are_refused(space, decisions):
    with pytest.raises(ArchitectureError, match="5 ints in 0..7"):
        space.index_of_decisions(decisions)


@pytest.mark.parametrize("index", [-1, 32768, True, 1.0, "3", None])
def test_bad_indices_are_refused_everywhere(space, index):
    for call in (
        space.string_of_index,
        space.decisions_of_index,
        space.neighbours,
        space.canonical_form,
        lambda i: space.mutate(i, np.random.default_rng(0)),
    ):
        with pytest.raises(ArchitectureError):
            call(index)


def test_neighbours_are_the_35_single_layer_changes_sorted_and_symmetric(space):
    table = space.decision_table()
    for index in (0, 284, 12345, 32767):
        neighbours = space.neighbours(index)
        assert neighbours.dtype == np.int64 and len(neighbours) == 35
        assert (np.diff(neighbours) > 0).all()
        assert ((table[neighbours] != table[index]).sum(axis=1) == 1).all()
        assert all(index in space.neighbours(int(n)) for n in neighbours)
    first = space.neighbours(284)
    first[0] = -1
    assert space.neighbours(284)[0] != -1  # a fresh copy each time


def test_mutate_changes_one_layer_uniformly_with_one_draw(space):
    rng = np.random.default_rng(3)
    parent = space.index_of_string("8:8:40:32:40")
    before = np.array(space.decisions_of_index(parent))
    layers, widths = Counter(), Counter()
    for _ in range(7000):
        child = space.mutate(parent, rng)
        changed = np.flatnonzero(np.array(space.decisions_of_index(child)) != before)
        assert len(changed) == 1
        layers[int(changed[0])] += 1
        if changed[0] == 2:
            widths[space.decisions_of_index(child)[2]] += 1
    assert all(1200 < layers[k] < 1600 for k in range(5))  # 1/5 of 7000 = 1400
    assert set(widths) == set(range(8)) - {4}  # never the parent's own width
    assert all(140 < n < 260 for n in widths.values())  # 1/7 of ~1400 = 200
    # one rng.integers(35) call per mutation, nothing else
    mine, theirs = np.random.default_rng(9), np.random.default_rng(9)
    space.mutate(parent, mine)
    theirs.integers(35)
    assert mine.random() == theirs.random()


def test_mutate_is_reproducible_and_validates_before_drawing(space):
    first = [space.mutate(100, np.random.default_rng(4)) for _ in range(3)]
    assert len(set(first)) == 1
    rng = np.random.default_rng(5)
    with pytest.raises(ArchitectureError):
        space.mutate(-1, rng)
    assert rng.random() == np.random.default_rng(5).random()


def test_every_configuration_is_its_own_class(space):
    classes = space.isomorphism_classes()
    assert np.array_equal(classes, np.arange(32768)) and not classes.flags.writeable
    assert space.canonical_form(284) == "8:8:40:32:40"


def test_onehot_marks_one_width_per_layer(space):
    vector = space.encode(space.index_of_string("8:16:64:32:40"))
    assert vector.shape == (40,) and vector.sum() == 5
    assert np.flatnonzero(vector).tolist() == [0, 8 + 1, 16 + 7, 24 + 3, 32 + 4]
    with pytest.raises(ArchitectureError, match="no 'path' encoding"):
        space.encode(0, "path")


def test_the_space_cannot_be_trained_live(space):
    with pytest.raises(ArchitectureError, match="cannot be trained live"):
        space.network(0)


@pytest.mark.skipif(
    "nats-sss" not in BUILTIN_SPACES, reason="nats-sss is not registered in harness.spaces yet"
)
def test_registry_gives_the_shared_instance():
    space = get_space("nats-sss")
    assert type(space) is NATSSizeSpace and get_space("nats-sss") is space

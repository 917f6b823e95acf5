"""The NATS-Bench size search space ("sss", 32,768 channel configurations).

Every network has the same cell (the topology-space cell
``|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|``)
and differs only in the number of channels of its 5 layers, each one of 8, 16, ..., 64.
An architecture is written as NATS-Bench writes it, the 5 channel counts joined by ``:``
(``"8:16:64:32:40"``). The official index order is the product order of the candidates
with the first layer most significant (NATS-Bench's ``traverse_net`` in
``exps/NATS-Bench/main-sss.py``, and the ``meta_archs`` of its archive): index
``sum(d_k * 8 ** (4 - k))`` for channel codes ``d_0..d_4``.

All randomness comes from a caller-supplied :class:`numpy.random.Generator`; the module
holds no RNG of its own.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import ClassVar

import numpy as np
from numpy.typing import NDArray

from harness.errors import ArchitectureError
from harness.spaces.base import SearchSpace

__all__ = ["CELL", "CHANNELS", "NUM_ARCHS", "NUM_LAYERS", "NATSSizeSpace"]

CHANNELS: tuple[int, ...] = (8, 16, 24, 32, 40, 48, 56, 64)
"""The channel counts a layer may have; a layer's code is its position here."""

NUM_LAYERS = 5
"""Layers whose width is searched: cell, reduction block, cell, reduction block, cell."""

NUM_ARCHS = len(CHANNELS) ** NUM_LAYERS
"""8 ** 5 = 32,768."""

CELL = (
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|"
    "+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
)
"""The fixed topology of every network of the space (NATS-Bench's ``genotype``)."""

_NUM_CHOICES = len(CHANNELS)
_CODE = {str(channels): code for code, channels in enumerate(CHANNELS)}
# How far the index moves per unit change of each layer's code (first layer most significant).
_PLACE = _NUM_CHOICES ** np.arange(NUM_LAYERS - 1, -1, -1, dtype=np.int64)
_EXAMPLE = "64:64:64:64:64"
# Mutation slots: (layer, offset to a different code), every pair equally likely.
_MUT_LAYER = np.repeat(np.arange(NUM_LAYERS, dtype=np.int64), _NUM_CHOICES - 1)
_MUT_OFFSET = np.tile(np.arange(1, _NUM_CHOICES, dtype=np.int64), NUM_LAYERS)


@functools.cache
def _decision_table() -> NDArray[np.int64]:
    """Channel codes of every index, ``[32768, 5]``, read-only (built once)."""
    index = np.arange(NUM_ARCHS, dtype=np.int64)[:, None]
    table = (index // _PLACE) % _NUM_CHOICES
    table.setflags(write=False)
    return table


@functools.cache
def _identity() -> NDArray[np.int64]:
    """Every configuration is its own isomorphism class."""
    classes = np.arange(NUM_ARCHS, dtype=np.int64)
    classes.setflags(write=False)
    return classes


def _valid_code(code: object) -> bool:
    return (
        isinstance(code, (int, np.integer))
        and not isinstance(code, (bool, np.bool_))
        and 0 <= code < _NUM_CHOICES
    )


class NATSSizeSpace(SearchSpace):
    """NATS-Bench's size space: 5 layer widths from 8..64, in NATS-Bench's index order.

    Decisions are the 5 channel codes (positions in :data:`CHANNELS`), first layer first.
    Instances are stateless; lookup tables are module-level, built on first use and
    shared.
    """

    name: ClassVar[str] = "nats-sss"
    num_archs: ClassVar[int] = NUM_ARCHS
    choices: ClassVar[tuple[int, ...]] = (_NUM_CHOICES,) * NUM_LAYERS
    encodings: ClassVar[tuple[str, ...]] = ("onehot",)

    # -- naming -------------------------------------------------------------------------

    def string_of_index(self, index: int) -> str:
        """``"8:16:64:32:40"``: the 5 layers' channel counts, first layer first."""
        codes = _decision_table()[self.check_index(index)]
        return ":".join(str(CHANNELS[code]) for code in codes.tolist())

    def index_of_string(self, arch: str) -> int:
        """Index of a channel string; strict: exactly 5 counts from :data:`CHANNELS`
        written in decimal without signs, spaces or leading zeros, joined by ``:``."""
        if not isinstance(arch, str):
            raise ArchitectureError(
                f"{self.name} architecture must be a str like {_EXAMPLE!r}, "
                f"got {type(arch).__name__} {arch!r}"
            )
        parts = arch.split(":")
        if len(parts) != NUM_LAYERS:
            raise self._error(arch, f"{len(parts)} channel counts, expected {NUM_LAYERS}")
        codes = []
        for layer, part in enumerate(parts, start=1):
            code = _CODE.get(part)
            if code is None:
                raise self._error(arch, f"layer {layer} has {part!r} channels")
            codes.append(code)
        return self._index_of_codes(codes)

    def _error(self, arch: str, problem: str) -> ArchitectureError:
        return ArchitectureError(
            f"bad {self.name} architecture {arch!r}: {problem}; write {NUM_LAYERS} channel "
            f"counts from {', '.join(map(str, CHANNELS))} joined by ':', like {_EXAMPLE!r}"
        )

    def strings(self) -> list[str]:
        """Every channel string in index order (NATS-Bench's ``meta_archs``)."""
        names = np.array([str(c) for c in CHANNELS])[_decision_table()]
        return [":".join(row) for row in names.tolist()]

    # -- decisions ----------------------------------------------------------------------

    def decisions_of_index(self, index: int) -> tuple[int, ...]:
        """The 5 channel codes (positions in :data:`CHANNELS`), first layer first."""
        return tuple(_decision_table()[self.check_index(index)].tolist())

    def index_of_decisions(self, decisions: Sequence[int]) -> int:
        """Index of 5 channel codes; ArchitectureError unless 5 ints in 0..7."""
        try:
            codes = list(decisions)
        except TypeError:
            codes = None
        if codes is None or len(codes) != NUM_LAYERS or not all(map(_valid_code, codes)):
            raise ArchitectureError(
                f"{self.name} decisions must be {NUM_LAYERS} ints in 0..{_NUM_CHOICES - 1} "
                f"(codes of the channel counts {', '.join(map(str, CHANNELS))}), like "
                f"(7, 7, 0, 3, 4); got {decisions!r}"
            )
        return self._index_of_codes(codes)

    @staticmethod
    def _index_of_codes(codes: Sequence[int]) -> int:
        return int(np.asarray(codes, dtype=np.int64) @ _PLACE)

    def decision_table(self) -> NDArray[np.int64]:
        """Channel codes of every index, ``[32768, 5]``, read-only."""
        return _decision_table()

    # -- search moves -------------------------------------------------------------------

    def mutate(self, index: int, rng: np.random.Generator) -> int:
        """Child of ``index`` with one layer's width changed.

        NATS-Bench's released REA (``mutate_size_func`` in AutoDL-Projects'
        ``exps/NATS-algos/regularized_ea.py``) picks a layer uniformly and redraws its
        width uniformly among all 8 counts, so 1 child in 8 equals its parent. The search
        space contract asks for a neighbour, so here the new width is drawn among the 7
        other counts: conditioned on a change, the two distributions are the same (each
        layer 1/5, each other width 1/7); the released code's identical children, each
        of which costs NATS-Bench one more evaluation, are not reproduced. One
        ``rng.integers(35)`` call picks the (layer, width) pair.
        """
        parent = self.check_index(index)  # validate before consuming randomness
        slot = int(rng.integers(len(_MUT_LAYER)))
        return int(self._changed(parent, _MUT_LAYER[slot : slot + 1], _MUT_OFFSET[slot])[0])

    def neighbours(self, index: int) -> NDArray[np.int64]:
        """All 35 configurations with exactly one layer's width changed, int64, sorted."""
        return np.sort(self._changed(self.check_index(index), _MUT_LAYER, _MUT_OFFSET))

    @staticmethod
    def _changed(
        parent: int, layers: NDArray[np.int64], offsets: NDArray[np.int64] | np.int64
    ) -> NDArray[np.int64]:
        """Indices of ``parent`` with each of ``layers`` shifted by ``offsets`` codes."""
        current = _decision_table()[parent, layers]
        new = (current + offsets) % _NUM_CHOICES
        return parent + (new - current) * _PLACE[layers]

    # -- isomorphism --------------------------------------------------------------------

    def canonical_form(self, index: int) -> str:
        """The channel string itself: configurations of different widths are different
        networks (their parameter shapes differ), so every configuration is its own class
        and none shares another's training."""
        return self.string_of_index(index)

    def isomorphism_classes(self) -> NDArray[np.int64]:
        """``arange(32768)``, read-only: every configuration is its own representative."""
        return _identity()

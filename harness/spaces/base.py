"""The search-space interface: what strategies, tables and live training ask of a space.

An architecture is an integer *index* in ``0..num_archs-1``, the order every table of the
space uses. Each architecture is also a tuple of categorical *decisions* (``choices[k]``
options for decision ``k``): model-based strategies learn over decisions, one-hot
encodings are built from them, and a factorised policy samples them. Not every tuple of
decisions need be an architecture (:meth:`SearchSpace.index_of_decisions` raises for
those).

Randomness always comes from a caller-supplied :class:`numpy.random.Generator`; a space
holds no RNG of its own. Architecture strings are the space's own notation; the
isomorphism canonical form is the key its tables use to share one training between
architectures that compute the same function.

Live training is optional: a space that can build its networks overrides
:meth:`SearchSpace.network` and :meth:`SearchSpace.size_counts`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from harness.errors import ArchitectureError

#: the encodings :meth:`SearchSpace.encode` may be asked for
ENCODINGS = ("onehot", "path")


class SearchSpace(ABC):
    """A finite set of architectures with the operations search strategies need."""

    #: registry name, also the ``space`` attribute of the space's tables
    name: ClassVar[str]
    #: number of architectures; indices are ``0..num_archs-1``
    num_archs: ClassVar[int]
    #: whether weight-sharing searches can train a supernet of this space
    #: (:mod:`harness.models.supernet`)
    has_supernet: ClassVar[bool] = False
    #: number of options of each categorical decision
    choices: ClassVar[tuple[int, ...]]
    #: encodings this space offers; ``onehot`` always, ``path`` where the space has paths
    encodings: ClassVar[tuple[str, ...]] = ("onehot",)
    #: each decision's option names, where options are named operations (reports count
    #: them in the cells a weight-sharing search derives); None where they are not
    option_names: ClassVar[tuple[tuple[str, ...], ...] | None] = None
    #: the named options that carry no parameters: a weight-sharing search that collapses
    #: fills its cells with them
    parameter_free: ClassVar[frozenset[str]] = frozenset()

    def check_index(self, index: object) -> int:
        """``index`` as an int, or ArchitectureError: bools, floats and out of range refused."""
        if isinstance(index, (bool, np.bool_)) or not isinstance(index, (int, np.integer)):
            raise ArchitectureError(
                f"{self.name} architecture index must be an int in 0..{self.num_archs - 1}, "
                f"got {type(index).__name__} {index!r}"
            )
        if not 0 <= index < self.num_archs:
            raise ArchitectureError(
                f"{self.name} architecture index {index} is out of range: valid indices are "
                f"0..{self.num_archs - 1}"
            )
        return int(index)

    # -- naming -------------------------------------------------------------------------

    @abstractmethod
    def string_of_index(self, index: int) -> str:
        """The architecture string of an index."""

    @abstractmethod
    def index_of_string(self, arch: str) -> int:
        """The index of an architecture string; ArchitectureError names what is wrong."""

    def strings(self) -> list[str]:
        """Every architecture string in index order (what a table's ``/archs`` holds)."""
        return [self.string_of_index(i) for i in range(self.num_archs)]

    # -- decisions ----------------------------------------------------------------------

    @abstractmethod
    def decisions_of_index(self, index: int) -> tuple[int, ...]:
        """The decision values of an architecture, one per entry of :attr:`choices`."""

    @abstractmethod
    def index_of_decisions(self, decisions: Sequence[int]) -> int:
        """The index of a decision tuple; ArchitectureError if it names no architecture."""

    def decision_table(self) -> NDArray[np.int64]:
        """Decisions of every architecture, ``[num_archs, len(choices)]``, read-only."""
        table = np.array([self.decisions_of_index(i) for i in range(self.num_archs)])
        table.setflags(write=False)
        return table

    # -- search moves -------------------------------------------------------------------

    def sample(self, rng: np.random.Generator) -> int:
        """An architecture drawn uniformly from the space (one ``rng.integers`` call)."""
        return int(rng.integers(self.num_archs))

    @abstractmethod
    def mutate(self, index: int, rng: np.random.Generator) -> int:
        """A random neighbour of ``index`` under the space's published mutation."""

    @abstractmethod
    def neighbours(self, index: int) -> NDArray[np.int64]:
        """Every architecture one decision change away, int64, sorted by index (a copy)."""

    # -- encodings ----------------------------------------------------------------------

    def encode(self, index: int, kind: str = "onehot") -> NDArray[np.float64]:
        """A fixed-length float vector of an architecture for model-based strategies.

        ``onehot`` concatenates one one-hot block per decision; ``path`` (where offered)
        is the space's path encoding (White et al., BANANAS).
        """
        if kind not in self.encodings:
            raise ArchitectureError(
                f"space {self.name!r} has no {kind!r} encoding; it offers "
                f"{', '.join(self.encodings)}"
            )
        if kind == "onehot":
            return self._onehot(self.decisions_of_index(self.check_index(index)))
        return self.path_encoding(self.check_index(index))

    def encoding_length(self, kind: str = "onehot") -> int:
        """Length of :meth:`encode`'s vectors."""
        return len(self.encode(0, kind))

    def _onehot(self, decisions: Sequence[int]) -> NDArray[np.float64]:
        vector = np.zeros(sum(self.choices))
        offsets = np.cumsum((0, *self.choices[:-1]))
        vector[offsets + np.asarray(decisions)] = 1.0
        return vector

    def path_encoding(self, index: int) -> NDArray[np.float64]:
        """The path encoding; only spaces that list ``path`` in :attr:`encodings` have one."""
        raise ArchitectureError(f"space {self.name!r} has no path encoding")

    # -- isomorphism --------------------------------------------------------------------

    @abstractmethod
    def canonical_form(self, index: int) -> str:
        """The isomorphism key: equal for architectures that compute the same function."""

    @abstractmethod
    def isomorphism_classes(self) -> NDArray[np.int64]:
        """For each index, its class representative (the smallest index of its class)."""

    # -- live training (optional) -------------------------------------------------------

    def network(self, index: int, **shape: Any) -> Any:
        """A ``torch.nn.Module`` of the architecture, for live training."""
        raise ArchitectureError(
            f"space {self.name!r} cannot build networks, so it cannot be trained live"
        )

    def size_counts(self, index: int, **shape: Any) -> dict[str, float]:
        """Parameter count and FLOPs of the architecture's network, without building it."""
        raise ArchitectureError(f"space {self.name!r} has no network size counts")

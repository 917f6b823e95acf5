"""Random *sampling*: uniform draws without repeats, the twin of random *search*.

Lindauer & Hutter's NAS best-practice checklist (JMLR 2020) asks for both baselines and
tells them apart: random search (:mod:`harness.strategies.random_search`, NAS-Bench-201's
RS) draws uniformly *with* repeats, so on a tabular benchmark it can pay twice for the
same architecture; random sampling draws uniformly *without* repeats, i.e. it evaluates
the architectures of one uniformly random permutation of the space, in order.

The permutation is never materialised: :class:`UnproposedPool` is a lazy Fisher-Yates
shuffle that stores only the positions it has swapped, so each draw costs one
``rng.integers`` call and O(1) time and memory however large the space is. Once every
architecture has been proposed, the pool starts a new pass (a fresh permutation), so a
budget larger than the space re-evaluates architectures rather than failing the run.
"""

from __future__ import annotations

import numpy as np

from harness.strategies.base import Strategy
from harness.values import Proposal, VisibleObservation


class UnproposedPool:
    """The architectures ``0..size-1`` not yet taken in this pass, as a lazy permutation.

    Position ``i < taken`` of the virtual array holds the ``i``-th taken architecture, the
    rest hold those still available; two dictionaries record only the swapped entries.
    :meth:`draw` takes a uniform available one, :meth:`take` a chosen one (a strategy that
    proposes by other means keeps the pool in step), both O(1).
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.passes = 1
        self._restart()

    def _restart(self) -> None:
        self.taken = 0
        self._at: dict[int, int] = {}  # position -> architecture, where it moved
        self._where: dict[int, int] = {}  # architecture -> position, where it moved

    def __len__(self) -> int:
        """How many architectures this pass has not taken yet."""
        return self.size - self.taken

    def is_taken(self, arch: int) -> bool:
        """Whether ``arch`` was already taken in this pass."""
        return self._where.get(arch, arch) < self.taken

    def draw(self, rng: np.random.Generator) -> int:
        """A uniform draw among the available architectures; a new pass when none is left.

        The first draw of a pass is ``rng.integers(size)``, the draw ``space.sample``
        makes, so random sampling's first proposal is random search's.
        """
        if self.taken == self.size:
            self.passes += 1
            self._restart()
        position = self.taken + int(rng.integers(self.size - self.taken))
        arch = self._at.get(position, position)
        self._swap_to_front(arch, position)
        return arch

    def take(self, arch: int) -> None:
        """Mark an available ``arch`` as taken (a new pass first if none is left)."""
        if self.taken == self.size:
            self.passes += 1
            self._restart()
        position = self._where.get(arch, arch)
        if position < self.taken:
            raise ValueError(f"architecture {arch} was already taken in this pass")
        self._swap_to_front(arch, position)

    def _swap_to_front(self, arch: int, position: int) -> None:
        front = self.taken
        displaced = self._at.get(front, front)
        self._at[position], self._where[displaced] = displaced, position
        self._at[front], self._where[arch] = arch, front
        self.taken += 1


class RandomSampling(Strategy):
    """Uniform sampling without repeats (a uniformly random order of the whole space).

    Unlike :class:`~harness.strategies.random_search.RandomSearch` (with repeats), no
    architecture is proposed twice until every one has been; asks outrunning tells with
    several workers change nothing, since the strategy ignores feedback.
    """

    def setup(self) -> None:
        self.pool = UnproposedPool(self.space.num_archs)

    def ask(self) -> Proposal:
        """The next architecture of the lazily drawn permutation."""
        return Proposal(self.pool.draw(self.rng), self.fidelity)

    def tell(self, proposal: Proposal, observation: VisibleObservation) -> None:
        """Nothing to learn: the order was fixed by the draws alone."""

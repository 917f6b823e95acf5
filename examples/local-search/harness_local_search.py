"""Local search (hill climbing) with random restarts: an example harness strategy plugin.

The algorithm is the local search of White, Nolen and Savani, "Exploring the Loss
Landscape in Neural Architecture Search" (UAI 2021; arXiv:2005.02960, first titled "Local
Search is State of the Art for Neural Architecture Search Benchmarks"), with the defaults
of the authors' implementation (naszilla's ``local_search``: ``num_init=10``,
``query_full_nbhd=False``, ``stop_at_minimum=True``):

1. Evaluate ``num_init`` random architectures that were never proposed before; the best
   one (ties: the first told) becomes the centre.
2. Try the centre's neighbours (``space.neighbours``: one decision changed) in a random
   order and move to the first one whose signal is strictly higher (first improvement).
3. When no neighbour is higher, the centre is a local optimum: restart at step 1.

No architecture is proposed twice while an unproposed one remains. A neighbour whose
signal is already known is judged by that signal, without spending an evaluation (the
reference code skips such neighbours and ignores their signal).

Several workers ask before they tell, so a result can arrive after the search has moved
on. It still counts where it applies: a restart sample joins the restart's batch while
that batch is being collected, and any told neighbour of the current centre that beats it
moves the search. Otherwise the result is stale: only remembered. Until ``num_init``
samples of a restart are told, every ask is another sample; when the centre's last
untried neighbour has been asked, the next ask restarts without waiting for neighbours
still in flight. With one worker no result is stale and the run is the serial algorithm.
"""

from __future__ import annotations

import math
from collections import deque

from harness.config import Field
from harness.strategies.base import Strategy
from harness.values import Proposal, VisibleObservation


class LocalSearch(Strategy):
    """First-improvement hill climbing over ``space.neighbours``, restarted at local optima."""

    hyperparameters = {
        "num_init": Field(
            int, 10, low=1, help="random samples per (re)start; the best one starts the climb"
        ),
    }
    num_init: int
    centre: int | None  # where the climb is; None while a restart collects its samples
    around: set[int]  # the centre's neighbours
    queue: deque[int]  # the centre's neighbours not tried yet, in a random order
    samples: set[int]  # this restart's samples, asked
    batch: list[int]  # this restart's samples, told, in tell order

    def setup(self) -> None:
        self.known: dict[int, float] = {}  # arch -> signal, first told value
        self.proposed: set[int] = set()  # every arch ever asked (told or in flight)
        self._restart()

    def ask(self) -> Proposal:
        """The next untried neighbour of the centre, else a fresh sample of a restart."""
        arch = self._untried_neighbour() if self.centre is not None else None
        if arch is None:
            arch = self._fresh_sample()
            self.samples.add(arch)
        self.proposed.add(arch)
        return Proposal(arch, self.fidelity)

    def tell(self, proposal: Proposal, observation: VisibleObservation) -> None:
        """Remember the signal; start the climb or move the centre if the result says so."""
        signal = self.known.setdefault(proposal.arch, observation.signal)
        if self.centre is None:
            if proposal.arch in self.samples:
                self.batch.append(proposal.arch)
                if len(self.batch) == self.num_init:
                    self._move(max(self.batch, key=self.known.__getitem__))
        elif proposal.arch in self.around and signal > self.known[self.centre]:
            self._move(proposal.arch)

    def _untried_neighbour(self) -> int | None:
        """Pop neighbours until one was never proposed; None (and a restart) if none is left."""
        while self.queue:
            arch = self.queue.popleft()
            if arch not in self.proposed:
                return arch
            if self.known.get(arch, -math.inf) > self.known[self.centre]:
                self._move(arch)  # a known improvement: move without evaluating it again
        self._restart()
        return None

    def _fresh_sample(self) -> int:
        """A uniform draw never proposed before (redrawn until new); any once all were."""
        arch = self.space.sample(self.rng)
        while arch in self.proposed and len(self.proposed) < self.space.num_archs:
            arch = self.space.sample(self.rng)
        return arch

    def _move(self, arch: int) -> None:
        self.centre = arch
        neighbours = self.space.neighbours(arch)
        self.around = set(neighbours.tolist())
        self.queue = deque(self.rng.permutation(neighbours).tolist())

    def _restart(self) -> None:
        self.centre = None
        self.around, self.queue = set(), deque()
        self.samples, self.batch = set(), []

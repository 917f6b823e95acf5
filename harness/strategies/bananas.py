"""BANANAS: Bayesian optimisation with an ensemble of neural predictors.

White, Neiswanger & Savani, "BANANAS: Bayesian Optimization with Neural Architectures for
Neural Architecture Search" (AAAI 2021). The semantics and every default follow the
authors' code, naszilla (``naszilla/nas_algorithms.py`` ``bananas``,
``naszilla/nas_benchmarks.py`` ``get_candidates``, ``naszilla/acquisition_functions.py``
``acq_fn`` and the ``standard`` predictor parameters of ``naszilla/params.py``):

1. Evaluate ``num_init`` distinct uniformly drawn architectures.
2. Fit ``num_ensemble`` MLPs (:class:`~harness.strategies.mlp_ensemble.MLPEnsemble`) to
   every result told so far: inputs are the architectures' encodings, targets their loss
   (naszilla regresses the validation loss; here the negated signal).
3. Candidates: mutate the best ``num_arches_to_mutate * 5`` architectures (5 is naszilla's
   ``patience_factor``), best first, ``num_candidates / num_arches_to_mutate /
   max_mutation_rate`` times each at every mutation rate ``1..max_mutation_rate``, keeping
   each new architecture once, until a parent's turn begins with ``num_candidates``
   collected. A mutation changes each decision with probability ``rate / len(choices)``
   to a uniformly drawn other option; a tuple that is no architecture is dropped.
4. Independent Thompson sampling (``its``, naszilla's default): per candidate, one normal
   draw with the ensemble's mean and standard deviation; the ``k`` lowest draws (lowest
   sampled loss) are evaluated next, in that order. Then back to step 2.

Encodings: the space's path encoding where it offers one (``encoding = "auto"``), else the
one-hot encoding. Differences from naszilla, each deliberate:

- naszilla's NB201 default truncates the path encoding to its first 30 entries
  (``trunc_path``, cutoff 30: the length-3 path is dropped); we keep all 155 unless
  ``path_cutoff`` is set (``path_cutoff = 30`` is naszilla's NB201 predictor input).
- naszilla's NB201 mutation flips each of the 6 edges with probability ``rate / 4`` (its
  ``OP_SPOTS - 2``, a NAS-Bench-101 offset); we use ``rate / len(choices)`` on every space.
- The predictor is numpy float64 instead of Keras float32 (see :mod:`.mlp_ensemble`), so
  a run is deterministic and seeded only from the strategy's generator.
- Architectures are told apart by index (naszilla's NB201 hash is the cell string too).

Asynchronous workers: until ``num_init`` results are told, every ask is a fresh random
draw (with many workers, more than ``num_init`` random proposals are made). Afterwards an
ask takes the next architecture of the current batch; only an ask that finds the batch
empty refits the predictor, on everything told by then. With one worker this is exactly
naszilla's loop of batches of ``k``. No architecture is proposed twice while an
unproposed one remains; when the mutations yield no new architecture, the ask draws one
uniformly among those never proposed.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from typing import Any

import numpy as np

from harness.config import Field
from harness.errors import ArchitectureError, ConfigError
from harness.strategies.base import Strategy
from harness.strategies.mlp_ensemble import MLPEnsemble
from harness.strategies.random_sampling import UnproposedPool
from harness.values import Proposal, VisibleObservation

#: naszilla's ``patience_factor``: how many parents per ``num_arches_to_mutate`` may be tried
PATIENCE_FACTOR = 5
ENCODINGS = ("auto", "path", "onehot")


class Bananas(Strategy):
    """Neural-ensemble Bayesian optimisation with mutation-based acquisition (naszilla)."""

    hyperparameters = {
        "num_init": Field(int, 10, low=1, help="random architectures before the first fit"),
        "k": Field(int, 10, low=1, help="architectures chosen per acquisition (the batch)"),
        "num_ensemble": Field(int, 5, low=1, help="MLPs in the predictor ensemble"),
        "num_candidates": Field(int, 100, low=1, help="candidates made per acquisition"),
        "num_arches_to_mutate": Field(int, 1, low=1, help="parents per patience round"),
        "max_mutation_rate": Field(int, 1, low=1, help="mutation rates 1..this are tried"),
        "encoding": Field(
            str, "auto", choices=ENCODINGS, help="predictor input; auto: path where offered"
        ),
        "path_cutoff": Field(
            int, None, low=1, optional=True, help="keep the first entries of the path encoding"
        ),
        "num_layers": Field(int, 10, low=1, help="hidden layers of each MLP"),
        "layer_width": Field(int, 20, low=1, help="units per hidden layer"),
        "epochs": Field(int, 150, low=1, help="training epochs per fit"),
        "batch_size": Field(int, 32, low=1, help="mini-batch size"),
        "learning_rate": Field(float, 0.01, low=0, low_open=True, help="Adam step size"),
    }
    num_init: int
    k: int
    num_ensemble: int
    num_candidates: int
    num_arches_to_mutate: int
    max_mutation_rate: int
    encoding: str
    path_cutoff: int | None
    num_layers: int
    layer_width: int
    epochs: int
    batch_size: int
    learning_rate: float

    @classmethod
    def validate(cls, params: Mapping[str, Any]) -> None:
        """A cutoff shortens a path encoding, so it means nothing with the one-hot one; each
        parent needs at least one mutation per rate."""
        if params["path_cutoff"] is not None and params["encoding"] == "onehot":
            raise ConfigError("applies to the path encoding only; drop it", "path_cutoff")
        least = params["num_arches_to_mutate"] * params["max_mutation_rate"]
        if params["num_candidates"] < least:
            raise ConfigError(
                f"must be at least num_arches_to_mutate x max_mutation_rate ({least}), "
                f"got {params['num_candidates']}",
                "num_candidates",
            )

    def setup(self) -> None:
        offered = self.space.encodings
        if self.encoding == "path" and "path" not in offered:
            raise ConfigError(
                f"'path' is not offered by space {self.space.name!r} ({', '.join(offered)}); "
                "use 'auto' or 'onehot'",
                "encoding",
            )
        auto = "path" if "path" in offered else "onehot"
        #: the encoding the predictor reads (``auto`` resolved for this space)
        self.encoding_used = auto if self.encoding == "auto" else self.encoding
        if self.path_cutoff is not None:
            if self.encoding_used != "path":
                raise ConfigError(
                    f"applies to the path encoding only, which space {self.space.name!r} "
                    "does not offer; drop it",
                    "path_cutoff",
                )
            length = self.space.encoding_length("path")
            if self.path_cutoff > length:
                raise ConfigError(
                    f"is {self.path_cutoff}, longer than the path encoding ({length})",
                    "path_cutoff",
                )
        self.pool = UnproposedPool(self.space.num_archs)
        self.queue: deque[int] = deque()
        self.told: list[tuple[int, float]] = []  # (arch, signal) in tell order
        self._features: list[np.ndarray] = []
        self._choices = np.array(self.space.choices)
        #: training MAE of the latest fit (ensemble mean), for inspection
        self.train_error: float | None = None

    def ask(self) -> Proposal:
        """A random draw during the initial design, else the next of the current batch."""
        if len(self.told) < self.num_init:
            return Proposal(self.pool.draw(self.rng), self.fidelity)
        if not self.queue:
            self.queue.extend(self._acquire())
        if not self.queue:  # no new candidate: any architecture never proposed
            return Proposal(self.pool.draw(self.rng), self.fidelity)
        arch = self.queue.popleft()
        self.pool.take(arch)
        return Proposal(arch, self.fidelity)

    def tell(self, proposal: Proposal, observation: VisibleObservation) -> None:
        """Remember the result and its encoding for the next fit."""
        self.told.append((proposal.arch, observation.signal))
        self._features.append(self._encode(proposal.arch))

    def _encode(self, arch: int) -> np.ndarray:
        vector = self.space.encode(arch, self.encoding_used)
        return vector if self.path_cutoff is None else vector[: self.path_cutoff]

    def _acquire(self) -> list[int]:
        """Fit the ensemble, score the candidates by independent Thompson sampling, and
        return the ``k`` best (lowest sampled loss) in order."""
        candidates = self._candidates()
        if not candidates:
            return []
        x = np.array(self._features)
        loss = -np.array([signal for _, signal in self.told])
        ensemble = MLPEnsemble(
            self.num_ensemble, x.shape[1], self.num_layers, self.layer_width, self.rng
        )
        self.train_error = ensemble.fit(
            x,
            loss,
            self.rng,
            epochs=self.epochs,
            batch_size=self.batch_size,
            learning_rate=self.learning_rate,
        )
        predictions = ensemble.predict(np.array([self._encode(c) for c in candidates]))
        sampled = self.rng.normal(predictions.mean(axis=0), predictions.std(axis=0))
        order = np.argsort(sampled, kind="stable")
        return [candidates[i] for i in order[: self.k]]

    def _candidates(self) -> list[int]:
        """naszilla's ``get_candidates`` with ``acq_opt_type = 'mutation'``: new, distinct
        mutations of the best told architectures, never ones already proposed."""
        ranked = sorted(self.told, key=lambda told: -told[1])  # stable: earlier told first
        parents = [arch for arch, _ in ranked[: self.num_arches_to_mutate * PATIENCE_FACTOR]]
        tries = self.num_candidates // self.num_arches_to_mutate // self.max_mutation_rate
        rates = np.tile(np.arange(1, self.max_mutation_rate + 1), tries)
        candidates: list[int] = []
        seen: set[int] = set()
        for parent in parents:
            if len(candidates) >= self.num_candidates:
                break
            for child in self._mutations(parent, rates):
                if child not in seen and not self.pool.is_taken(child):
                    seen.add(child)
                    candidates.append(child)
        return candidates

    def _mutations(self, parent: int, rates: np.ndarray) -> list[int]:
        """One mutation of ``parent`` per entry of ``rates`` (drawn together); tuples that
        are no architecture of the space are dropped."""
        decisions = np.array(self.space.decisions_of_index(parent))
        width = len(decisions)
        mutable = self._choices > 1
        flips = self.rng.random((len(rates), width)) < (rates[:, None] / width)
        offsets = self.rng.integers(1, np.maximum(self._choices, 2), size=(len(rates), width))
        children = np.where(flips & mutable, (decisions + offsets) % self._choices, decisions)
        found = []
        for row in children.tolist():
            try:
                found.append(self.space.index_of_decisions(row))
            except ArchitectureError:
                continue
        return found

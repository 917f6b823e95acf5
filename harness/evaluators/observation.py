"""What an evaluation returns, split into the part a strategy may see and the sealed part.

Sealing is structural: the simulator hands a strategy only :class:`VisibleObservation`,
an object that has no test metrics at all, so no strategy can read them by accident.
Only the recorder and the final report see :class:`Observation.sealed`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Proposal:
    """A strategy's request: train ``arch`` (space index) for ``epoch`` epochs."""

    arch: int
    epoch: int


@dataclass(frozen=True, slots=True)
class VisibleObservation:
    """The part of an evaluation a strategy may use.

    ``signal`` is the search signal (higher is better), e.g. the validation accuracy
    named by the protocol; ``metrics`` holds the other visible train/valid metrics;
    ``cost_s`` is the simulated cost of this evaluation in seconds; ``signal_curve`` is
    the signal at every epoch up to ``epoch`` that the benchmark measures (the learning
    curve multi-fidelity strategies extrapolate; its last value is ``signal``).
    """

    arch: int
    epoch: int
    signal: float
    cost_s: float
    metrics: Mapping[str, float]
    signal_curve: tuple[float, ...] = ()


@dataclass(frozen=True, slots=True)
class Observation:
    """A whole evaluation: the visible part and the sealed test metrics."""

    visible: VisibleObservation
    sealed: Mapping[str, float]

"""Shared value types: metric references, seed policy, budget, proposals, observations.

These are the words every layer uses (spec, evaluators, strategies, simulator, records),
so they live in one leaf module. They validate themselves and raise
:class:`~harness.errors.ConfigError` naming the field; the boundary that read a file adds
the file name.

The seal on test metrics starts here: an :class:`Observation` is what an evaluator
returns; a strategy only ever gets :meth:`Observation.visible`, a fresh object that holds
no reference to the observation, to its sealed metrics, or to anything the simulator
records from.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from harness.config import Field, validate
from harness.errors import ConfigError

SEED_POLICIES = ("mean", "draw", "fixed")
#: what happens to an evaluation whose completion would pass the seconds budget
#: (:mod:`harness.simulator`)
OVERRUN_RULES = ("discard", "finish", "keep")
#: where an evaluation's cost comes from: the table's recorded times, or this run's own
#: measured training time (live runs only)
COST_SOURCES = ("table", "live")


def is_test_split(split: str) -> bool:
    """Test splits are sealed: ``test`` or a name ending in ``-test`` (``ori-test``,
    ``x-test``), the naming convention of every harness table (``tabular/FORMAT.md``)."""
    return split == "test" or split.endswith(("-test", "_test"))


@dataclass(frozen=True)
class MetricRef:
    """Names one table variable: ``dataset/schedule/split/metric``."""

    dataset: str
    schedule: str
    split: str
    metric: str

    @classmethod
    def parse(cls, text: Any) -> MetricRef:
        parts = text.split("/") if isinstance(text, str) else []
        if len(parts) != 4 or not all(parts):
            raise ConfigError(
                "expected 'dataset/schedule/split/metric' "
                f"(e.g. 'cifar10/hp200/ori-test/accuracy'), got {text!r}"
            )
        return cls(*parts)

    def __str__(self) -> str:
        return f"{self.dataset}/{self.schedule}/{self.split}/{self.metric}"

    @property
    def is_test(self) -> bool:
        return is_test_split(self.split)


@dataclass(frozen=True)
class SeedPolicy:
    """Which training of a cell answers a query.

    ``mean``: the mean over every seed the benchmark holds for that cell; ``draw``: one
    of the cell's seeds, drawn from the run's own benchmark stream; ``fixed``: always
    ``seed``.
    """

    kind: str = "mean"
    seed: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in SEED_POLICIES:
            raise ConfigError(
                f"must be one of {', '.join(SEED_POLICIES)}, got {self.kind!r}", "seed_policy"
            )
        if (self.kind == "fixed") != (self.seed is not None):
            raise ConfigError("is required with seed_policy = 'fixed' and only then", "seed")


BUDGET_FIELDS = {
    "seconds": Field(float, None, low=0, low_open=True, optional=True),
    "evaluations": Field(int, None, low=1, high=10**9, optional=True),
    "epochs": Field(int, None, low=1, high=10**12, optional=True),
    "overrun": Field(str, choices=OVERRUN_RULES),
}


@dataclass(frozen=True)
class Budget:
    """When a run stops: any limit set here; ``None`` means not limited by it.

    ``overrun`` decides what happens to an evaluation whose completion would pass the
    seconds budget (see :mod:`harness.simulator`); a strategy of a spec may set its own.
    """

    seconds: float | None = None
    evaluations: int | None = None
    epochs: int | None = None
    overrun: str = "discard"

    def __post_init__(self) -> None:
        validate(self.as_dict(), BUDGET_FIELDS)
        if self.seconds is None and self.evaluations is None and self.epochs is None:
            raise ConfigError("sets no limit: give seconds, evaluations or epochs")

    def as_dict(self) -> dict[str, Any]:
        return {
            "seconds": self.seconds,
            "evaluations": self.evaluations,
            "epochs": self.epochs,
            "overrun": self.overrun,
        }


@dataclass(frozen=True, slots=True)
class Proposal:
    """A strategy's request: train ``arch`` (space index) for ``epoch`` epochs.

    ``epoch`` is epoch ``epoch`` of the protocol's schedule (the schedule, not the epoch
    count, fixes the learning-rate curve). With ``trial`` set, the proposal continues that
    paused training of ``arch`` (the id a ``tell`` reported) to ``epoch`` instead of
    starting a new one: only the extra epochs are charged.
    """

    arch: int
    epoch: int
    trial: int | None = None


@dataclass(frozen=True, slots=True)
class ScoreRequest:
    """A strategy's request for the experiment's estimator's score of ``arch`` (space
    index), instead of a training: the simulator answers it with a :class:`Scored` and
    charges the score's cost on the asking worker's clock, as it charges a training."""

    arch: int


@dataclass(frozen=True, slots=True)
class Scored:
    """The answer to a :class:`ScoreRequest`: ``value`` (higher predicts better; NaN where
    the estimator has no answer) and the simulated seconds it cost. ``scored`` is False
    for an architecture the pinned estimate file does not cover (value NaN, cost 0)."""

    arch: int
    value: float
    cost_s: float
    scored: bool = True


@dataclass(frozen=True, slots=True)
class Resume:
    """Where a continued training stands: trained to ``epoch`` with the seed ``seed``."""

    epoch: int
    seed: str


@dataclass(frozen=True, slots=True)
class VisibleObservation:
    """The part of an evaluation a strategy may use; a copy made for each ``tell``.

    ``signal`` is the search signal (higher is better), e.g. the validation accuracy
    named by the protocol; ``metrics`` holds the other visible train/valid metrics
    (read-only); ``cost_s`` is the simulated cost of this evaluation in seconds;
    ``signal_curve`` is the signal at every epoch up to ``epoch`` that the benchmark
    measures (its last value is ``signal``). ``trial`` identifies the training this
    evaluation belongs to (a :class:`Proposal` may continue it); ``resumed_from`` is the
    epoch it continued from (0: a new training).
    """

    arch: int
    epoch: int
    signal: float
    cost_s: float
    metrics: Mapping[str, float]
    signal_curve: tuple[float, ...] = ()
    trial: int = 0
    resumed_from: int = 0


@dataclass(frozen=True, slots=True)
class Observation:
    """A whole evaluation, as the evaluator answered it.

    ``seed`` labels the training(s) that answered (``"mean"``, or a seed label);
    ``measured_s`` is this run's own measured training time when it differs from the
    charged ``cost_s`` (live runs charging the table's cost), else ``None``. ``sealed``
    holds the test metrics: only the recorder and the report see them. ``resumed_from``
    is the epoch a continued training started from (0: a new training).
    """

    arch: int
    epoch: int
    signal: float
    cost_s: float
    metrics: Mapping[str, float]
    sealed: Mapping[str, float]
    signal_curve: tuple[float, ...] = ()
    seed: str = "mean"
    measured_s: float | None = None
    resumed_from: int = 0

    def __post_init__(self) -> None:
        # the evaluator hands over dicts it built for this observation: read-only from here
        object.__setattr__(self, "metrics", MappingProxyType(self.metrics))
        object.__setattr__(self, "sealed", MappingProxyType(self.sealed))

    def visible(self, trial: int = 0) -> VisibleObservation:
        """A fresh copy of the visible part; nothing reachable from it is sealed or shared.

        ``trial`` is the id the simulator gave this training."""
        return VisibleObservation(
            arch=int(self.arch),
            epoch=int(self.epoch),
            signal=float(self.signal),
            cost_s=float(self.cost_s),
            metrics=MappingProxyType({str(k): float(v) for k, v in self.metrics.items()}),
            signal_curve=tuple(self.signal_curve),
            trial=int(trial),
            resumed_from=int(self.resumed_from),
        )


@dataclass(frozen=True)
class SearchProtocol:
    """How a search queries its benchmark: what it sees, at which fidelity, at what cost.

    ``signal`` (higher is better) and ``visible`` are what a strategy sees; ``sealed``
    is recorded per evaluation but never shown to a strategy. Test splits can only be
    sealed. ``cost`` says where an evaluation's cost comes from (:data:`COST_SOURCES`);
    ``evaluator`` which evaluator answers (``tabular``, ``live`` or a plugin).
    """

    dataset: str
    schedule: str
    epoch: int
    signal: MetricRef
    seed_policy: SeedPolicy
    include_validation_time: bool
    visible: Mapping[str, MetricRef] = field(default_factory=dict)
    sealed: Mapping[str, MetricRef] = field(default_factory=dict)
    cost: str = "table"
    #: the evaluator kind that answers (:mod:`harness.evaluators`)
    evaluator: str = "tabular"

    def __post_init__(self) -> None:
        if self.epoch < 1:
            raise ConfigError(f"must be at least 1, got {self.epoch}", "epoch")
        if self.signal.is_test:
            raise ConfigError(
                f"names the test split {self.signal.split!r}: test metrics are sealed, so a "
                "strategy may not search on them; use a validation split",
                "signal",
            )
        for name, ref in self.visible.items():
            if ref.is_test:
                raise ConfigError(
                    f"names the test split {ref.split!r}: test metrics are sealed; "
                    "move it to [search.sealed]",
                    f"visible.{name}",
                )
        if self.cost not in COST_SOURCES:
            raise ConfigError(
                f"must be one of {', '.join(COST_SOURCES)}, got {self.cost!r}", "cost"
            )
        object.__setattr__(self, "visible", MappingProxyType(dict(self.visible)))
        object.__setattr__(self, "sealed", MappingProxyType(dict(self.sealed)))

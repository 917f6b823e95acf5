"""Shared value types: metric references, seed policy, budget, proposals, observations.

These are the words every layer uses (spec, evaluators, strategies, simulator, records),
so they live in one leaf module. They validate themselves and raise
:class:`~harness.errors.ConfigError` naming the field; the boundary that read a file adds
the file name.

The seal on test metrics starts here: an :class:`Observation` is what an evaluator
returns; a strategy only ever gets :meth:`Observation.visible`, a fresh object that holds
no reference to the observation, to its sealed metrics, or to anything the simulator
records from. That copy is a tuple of immutable values, so it is made in one step and
cannot be changed after it is made, not even with ``object.__setattr__``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, NamedTuple

from harness.config import Field, validate
from harness.errors import ConfigError

SEED_POLICIES = ("mean", "draw", "fixed")
#: what happens to an evaluation whose completion would pass the seconds budget
#: (:mod:`harness.simulator`)
OVERRUN_RULES = ("discard", "finish", "keep")
#: the overrun rule of a budget without a seconds limit, which no evaluation can cross
DEFAULT_OVERRUN = "discard"
#: where an evaluation's cost comes from: the table's recorded times, or this run's own
#: measured training time (live runs only)
COST_SOURCES = ("table", "live")
#: which way a report target is better: higher (``max``) or lower (``min``)
DIRECTIONS = ("max", "min")
#: metric names ending so are lower-is-better unless a target says otherwise
LOWER_IS_BETTER = ("loss", "time", "seconds", "_s")


def target_direction(metric: str, direction: str | None = None) -> str:
    """``direction`` if given, else ``min`` for a metric whose name (its last part) ends
    in loss, time or seconds (``_s``), else ``max``."""
    if direction is not None:
        return direction
    return "min" if str(metric).split("/")[-1].endswith(LOWER_IS_BETTER) else "max"


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
    "seconds": Field(
        float, None, low=0, low_open=True, optional=True, help="simulated seconds per run"
    ),
    "evaluations": Field(
        int, None, low=1, high=10**9, optional=True, help="evaluations started per run"
    ),
    "epochs": Field(
        int, None, low=1, high=10**12, optional=True, help="training epochs charged per run"
    ),
    "overrun": Field(
        str,
        None,
        optional=True,
        choices=OVERRUN_RULES,
        help="the evaluation that would cross the seconds budget: discard it, finish and "
        "tell it, or keep it as a candidate untold; required with seconds, else "
        f"{DEFAULT_OVERRUN!r}",
    ),
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
    overrun: str = DEFAULT_OVERRUN

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


class _NoMetrics(Mapping[str, float]):
    """The empty metrics of a told copy: no dict inside, so nothing can be put into it and
    every copy without visible metrics shares it."""

    __slots__ = ()

    def __getitem__(self, key: str) -> float:
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0

    def __repr__(self) -> str:
        return "{}"


NO_METRICS: Mapping[str, float] = _NoMetrics()


class VisibleObservation(NamedTuple):
    """The part of an evaluation a strategy may use; a copy made for each ``tell``.

    ``signal`` is the search signal (higher is better), e.g. the validation accuracy
    named by the protocol; ``metrics`` holds the other visible train/valid metrics
    (read-only); ``cost_s`` is the simulated cost of this evaluation in seconds;
    ``signal_curve`` is the signal at every epoch up to ``epoch`` that the benchmark
    measures (its last value is ``signal``). ``trial`` identifies the training this
    evaluation belongs to (a :class:`Proposal` may continue it); ``resumed_from`` is the
    epoch it continued from (0: a new training). A tuple: immutable, made in one step.
    """

    arch: int
    epoch: int
    signal: float
    cost_s: float
    metrics: Mapping[str, float]
    signal_curve: tuple[float, ...] = ()
    trial: int = 0
    resumed_from: int = 0


_new_tuple = tuple.__new__


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
        # plain Python values, and the dicts the evaluator built for this observation
        # read-only from here: what :meth:`visible` copies is then immutable already
        set_ = object.__setattr__
        set_(self, "arch", int(self.arch))
        set_(self, "epoch", int(self.epoch))
        set_(self, "signal", float(self.signal))
        set_(self, "cost_s", float(self.cost_s))
        set_(self, "metrics", MappingProxyType({str(k): float(v) for k, v in self.metrics.items()}))
        set_(self, "sealed", MappingProxyType(self.sealed))
        set_(self, "signal_curve", tuple(self.signal_curve))
        set_(self, "resumed_from", int(self.resumed_from))

    def visible(self, trial: int = 0) -> VisibleObservation:
        """A fresh copy of the visible part; nothing reachable from it is sealed or shared.

        ``trial`` is the int id the simulator gave this training. Visible metrics are
        copied into a new read-only dict, so what a strategy does to one copy's dict (it
        can reach it through :mod:`gc`) reaches no other copy and no record."""
        metrics = self.metrics
        return _new_tuple(
            VisibleObservation,
            (
                self.arch,
                self.epoch,
                self.signal,
                self.cost_s,
                MappingProxyType(dict(metrics)) if metrics else NO_METRICS,
                self.signal_curve,
                trial,
                self.resumed_from,
            ),
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

"""A study: one or more recorded experiments read back as tidy frames for a report.

Everything here comes from the MLflow records (the resolved spec, the table facts stored
with its sha256, each strategy's ``runs.csv`` and trajectories, the incumbents' seed-mean
values), never from a table file or in-memory state, so a report can be re-made from the
records alone. Each experiment is one *benchmark* of the study, named by its experiment
name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from harness.errors import ConfigError
from harness.record import RUNS, ExperimentRecord, load_incumbents, load_trajectories
from harness.record_check import REPORT_RUN_COLUMNS, check_columns
from harness.values import MetricRef, target_direction

#: what a target measures for the search: the validation or the test split of the data the
#: search ran on (a ``--target`` of ``role:<role>`` picks each benchmark's first such target)
ROLES = ("validation", "test")
ROLE_PREFIX = "role:"


def same_data(dataset: str, searched: str) -> bool:
    """Whether a target's dataset holds the search's images: the same name, or the name
    with NAS-Bench-201's ``-valid`` suffix (``cifar10-valid`` is CIFAR-10 with its training
    images split into train and validation; ``cifar10`` scores the same cells on the test
    set)."""
    return dataset.removesuffix("-valid") == searched.removesuffix("-valid")


def target_role(metric: str, searched: str) -> str | None:
    """``validation`` or ``test`` for a target on the search's data, else None (another
    dataset, or a training split)."""
    ref = MetricRef.parse(metric)
    if not same_data(ref.dataset, searched):
        return None
    if ref.is_test:
        return "test"
    return "validation" if "valid" in ref.split else None


@dataclass
class Benchmark:
    """One recorded experiment of a study."""

    name: str
    record: ExperimentRecord
    incumbents: pd.DataFrame | None
    #: values derived from the records once and used by several parts of a report
    cache: dict[Any, Any] = field(default_factory=dict, repr=False)

    @property
    def resolved(self) -> dict[str, Any]:
        return self.record.resolved

    @property
    def labels(self) -> list[str]:
        return [t["label"] for t in self.resolved["targets"]]

    @property
    def methods(self) -> list[str]:
        return [s["name"] for s in self.resolved["strategies"]]

    @property
    def roles(self) -> dict[str, str | None]:
        """Each target's role for the search (:func:`target_role`), by label."""
        searched = self.resolved["search"]["dataset"]
        return {t["label"]: target_role(t["metric"], searched) for t in self.resolved["targets"]}

    def metric_of(self, label: str) -> str:
        """The table variable a target reads (``dataset/schedule/split/metric``)."""
        return next(t["metric"] for t in self.resolved["targets"] if t["label"] == label)

    def label_of(self, role: str) -> str | None:
        """The first target of ``role``, if any."""
        return next((label for label, r in self.roles.items() if r == role), None)

    @property
    def better(self) -> dict[str, str]:
        """Per target, which way it is better (``max`` or ``min``): as the spec set it,
        else by the metric's name."""
        return {
            t["label"]: target_direction(t.get("metric", ""), t.get("direction"))
            for t in self.resolved["targets"]
        }

    @property
    def optimal(self) -> dict[str, float]:
        """The table's best value of each target, stored with its sha256 at run time."""
        return {k: float(v) for k, v in self.record.table["optimal"].items()}

    @cached_property
    def trajectories(self) -> dict[str, pd.DataFrame]:
        """Per method, its completed evaluations (every seed), in recorded order."""
        frames = {}
        for method in self.methods:
            frame = load_trajectories(self.record.children[method], self.record.store or None)
            frames[method] = frame[frame["completed"]].reset_index(drop=True)
        return frames


@dataclass
class Study:
    """Benchmarks and their runs as one long frame (``scores``).

    ``scores`` has one row per (benchmark, method, seed, target): ``value`` (the run's
    final architecture's seed-mean target), ``regret`` (its distance from the table's
    optimum, ≥ 0) and ``score`` (the value, negated for a target that is better lower:
    what ranks and tests compare, higher is better).
    ``target`` names, per benchmark, the target ranks and tests use (default: its first).
    """

    benchmarks: list[Benchmark]
    target: dict[str, str]
    scores: pd.DataFrame = field(repr=False)

    @property
    def methods(self) -> list[str]:
        """Every method in order of first appearance."""
        return list(dict.fromkeys(m for b in self.benchmarks for m in b.methods))

    @property
    def role(self) -> str | None:
        """The role every benchmark's ranked target has, or None where they differ."""
        roles = {b.roles[self.target[b.name]] for b in self.benchmarks}
        return roles.pop() if len(roles) == 1 else None

    @property
    def comparable(self) -> bool:
        """Whether the ranked targets can be pooled: one role everywhere, or one and the
        same table variable (a transfer target such as CIFAR-100 test after a CIFAR-10
        search)."""
        metrics = {b.metric_of(self.target[b.name]) for b in self.benchmarks}
        return self.role is not None or len(metrics) == 1

    def primary(self) -> pd.DataFrame:
        """Each benchmark's ranked target, one row per (benchmark, method, seed)."""
        wanted = pd.DataFrame(list(self.target.items()), columns=["benchmark", "target"])
        return self.scores.merge(wanted, on=["benchmark", "target"])


def _benchmark_names(records: list[ExperimentRecord]) -> list[str]:
    names = [r.resolved["experiment"]["name"] for r in records]
    return [
        f"{name}@{r.parent_id[:8]}" if names.count(name) > 1 else name
        for name, r in zip(names, records, strict=True)
    ]


def choose_targets(benchmarks: list[Benchmark], target: str | None = None) -> dict[str, str]:
    """The target each benchmark ranks and tests: ``target`` (a label every benchmark
    reports, or ``role:validation`` / ``role:test``); by default a single benchmark's
    first target, and for several the same role everywhere (the role of the first
    benchmark's first target, else the other role) so pooled ranks never mix validation
    and test; each benchmark's first target where no role is common to all."""
    for b in benchmarks:
        if not b.labels:
            raise ConfigError(f"experiment {b.name} reports no targets; nothing to tabulate")
    if target is not None and target.startswith(ROLE_PREFIX):
        role = target.removeprefix(ROLE_PREFIX)
        if role not in ROLES:
            raise ConfigError(f"{target!r}: a role is one of {', '.join(ROLES)}", "--target")
        lacking = [b.name for b in benchmarks if b.label_of(role) is None]
        if lacking:
            raise ConfigError(
                f"{lacking[0]} has no {role} target on its search's dataset", "--target"
            )
        return {b.name: b.label_of(role) for b in benchmarks}  # type: ignore[misc]
    if target is not None:
        for b in benchmarks:
            if target not in b.labels:
                raise ConfigError(
                    f"{target!r} is not a target of {b.name} (targets: {', '.join(b.labels)})",
                    "--target",
                )
        return {b.name: target for b in benchmarks}
    if len(benchmarks) > 1:
        first = benchmarks[0].roles[benchmarks[0].labels[0]]
        for role in sorted(ROLES, key=lambda r: r != first):
            labels = {b.name: b.label_of(role) for b in benchmarks}
            if all(labels.values()):
                return labels  # type: ignore[return-value]
    return {b.name: b.labels[0] for b in benchmarks}


def build_study(records: list[ExperimentRecord], target: str | None = None) -> Study:
    """A study of ``records``; ``target`` (see :func:`choose_targets`) is the one ranked
    and tested."""
    benchmarks = [
        Benchmark(name, record, load_incumbents(record.parent_id, record.store or None))
        for name, record in zip(_benchmark_names(records), records, strict=True)
    ]
    chosen = choose_targets(benchmarks, target)
    rows = []
    for b in benchmarks:
        optimal, better = b.optimal, b.better
        for method in b.methods:
            runs = b.record.runs[method]
            check_columns(b.record.children[method], RUNS, runs, REPORT_RUN_COLUMNS)
            for label in b.labels:
                values = runs[f"target.{label}"].to_numpy(dtype=np.float64)
                sign = -1.0 if better[label] == "min" else 1.0
                rows.append(
                    pd.DataFrame(
                        {
                            "benchmark": b.name,
                            "method": method,
                            "seed": runs["seed"].to_numpy(),
                            "target": label,
                            "value": values,
                            "regret": sign * (optimal[label] - values),
                            "score": sign * values,
                        }
                    )
                )
    return Study(benchmarks, chosen, pd.concat(rows, ignore_index=True))

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
from harness.values import target_direction


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


def build_study(records: list[ExperimentRecord], target: str | None = None) -> Study:
    """A study of ``records``; ``target`` (a target label every benchmark reports) is the
    one ranked and tested, by default each benchmark's first."""
    benchmarks = [
        Benchmark(name, record, load_incumbents(record.parent_id, record.store or None))
        for name, record in zip(_benchmark_names(records), records, strict=True)
    ]
    chosen = {}
    for b in benchmarks:
        if not b.labels:
            raise ConfigError(f"experiment {b.name} reports no targets; nothing to tabulate")
        if target is not None and target not in b.labels:
            raise ConfigError(
                f"{target!r} is not a target of {b.name} (targets: {', '.join(b.labels)})",
                "--target",
            )
        chosen[b.name] = target or b.labels[0]
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

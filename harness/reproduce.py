"""Reproducing a record: re-run one recorded seed and diff it with its record (:func:`rerun`).

A record holds the spec text, the overrides and the table's sha256, so one seed of one
strategy can be searched again years later and compared row by row with the trajectory
recorded then. :func:`rerun` returns what it found as a :class:`Rerun`; the ``harness
rerun`` command only formats it, as ``pytest.main`` mirrors pytest's command line. (The
module is not called ``rerun`` so that ``harness.rerun`` stays the API function.)
"""

from __future__ import annotations

import dataclasses
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harness.errors import HarnessError
from harness.places import store_uri

log = logging.getLogger(__name__)
_RUN_ID = re.compile(r"[0-9a-f]{32}")
#: trajectory columns a live re-run charging its own measured time measures anew
MEASURED = ("start_s", "end_s", "cost_s", "measured_s")


@dataclass(frozen=True)
class Difference:
    """The first row where a re-run and its record differ: the differing columns and
    both rows (None on the side that has no such row)."""

    row: int
    columns: tuple[str, ...]
    now: dict[str, Any] | None
    recorded: dict[str, Any] | None


@dataclass(frozen=True)
class SeedRerun:
    """One strategy's seed searched again: identical to its record, or where it first
    differs. ``notes`` say what was not compared, or changed since the record."""

    strategy: str
    seed: int
    evaluations: int
    recorded_evaluations: int
    difference: Difference | None
    final_arch: int
    targets: dict[str, float]
    notes: tuple[str, ...] = ()

    @property
    def identical(self) -> bool:
        return self.difference is None


@dataclass(frozen=True)
class Rerun:
    """What :func:`rerun` found: the experiment record re-run and each strategy's seed."""

    run_id: str
    name: str
    store: str
    seeds: tuple[SeedRerun, ...]

    @property
    def identical(self) -> bool:
        return all(s.identical for s in self.seeds)


def first_difference(now: pd.DataFrame, recorded: pd.DataFrame) -> Difference | None:
    """The first row where two trajectories differ (equal NaNs are equal), or None."""
    if list(now.columns) != list(recorded.columns):
        columns = tuple(sorted(set(now.columns) ^ set(recorded.columns)))
        return Difference(0, columns or tuple(now.columns), _row(now, 0), _row(recorded, 0))
    common = min(len(now), len(recorded))
    differs = np.zeros(common, dtype=bool)
    by_column = {}
    for column in now.columns:
        a = now[column].to_numpy()[:common]
        b = recorded[column].to_numpy()[:common]
        unequal = np.asarray(a != b, dtype=bool) & ~(pd.isna(a) & pd.isna(b))
        by_column[column] = unequal
        differs |= unequal
    if differs.any():
        row = int(differs.argmax())
        columns = tuple(c for c in now.columns if by_column[c][row])
        return Difference(row, columns, _row(now, row), _row(recorded, row))
    if len(now) != len(recorded):
        return Difference(common, (), _row(now, common), _row(recorded, common))
    return None


def _row(frame: pd.DataFrame, row: int) -> dict[str, Any] | None:
    if row >= len(frame):
        return None
    return {column: frame[column].iloc[row] for column in frame.columns}


def find_record(text: str, store: str | None = None) -> tuple[str, str | None, str | None]:
    """The experiment (parent) run a run id or experiment name stands for, the strategy
    run a strategy run's id names (else None), and, for a name, which record it picked
    (its newest finished one), in words."""
    from harness.record import find_parent, finished_records

    uri = store or store_uri()
    if _RUN_ID.fullmatch(text):
        parent = find_parent(text, uri)
        return parent, None if parent == text else text, None
    newest = finished_records(text, uri)[0]
    picked = (
        f"record {newest['run_id']} (spec sha256 {newest['spec_hash'][:12]}, started "
        f"{newest['started_utc']} UTC), its newest"
    )
    return newest["run_id"], None, picked


def rerun(
    record: str,
    seed: int,
    strategy: str | None = None,
    *,
    table: str | Path | None = None,
    data_root: str | Path | None = None,
    split_dir: str | Path | None = None,
    store: str | None = None,
) -> Rerun:
    """Search one recorded seed again and diff it with the record, row by row.

    ``record`` is a run id that ``harness ls`` prints (an experiment run), a strategy
    run's id, or an experiment name (its newest finished record). ``strategy`` picks one
    of the record's strategies (default: the strategy run's own, else every strategy).
    ``table`` is the table file if it moved since the run (its sha256 is checked);
    ``data_root`` and ``split_dir`` locate the data of a live run. The record is read from
    ``store`` (default: the working folder's, :mod:`harness.places`).
    """
    from harness.record import load_experiment

    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise HarnessError(f"seed must be an integer, got {seed!r}")
    uri = store or store_uri()
    parent, child, picked = find_record(str(record), uri)
    found = load_experiment(parent, uri)
    if strategy is None and child is not None:
        strategy = next(name for name, cid in found.children.items() if cid == child)
    if strategy is not None and strategy not in found.children:
        raise HarnessError(
            f"strategy {strategy!r} is not in run {parent}; recorded: {', '.join(found.children)}"
        )
    names = list(found.children) if strategy is None else [strategy]
    benchmark, spec = _benchmark(found, parent, table, data_root, split_dir)
    if int(seed) not in spec.seeds:
        raise HarnessError(
            f"seed {seed} was not run by {parent}; seeds: {_seed_ranges(spec.seeds)}"
        )
    seeds = tuple(_rerun_seed(found, benchmark, spec, name, int(seed), uri) for name in names)
    if picked is not None:  # said once it worked, so that an error stays one line
        log.info("harness: %s: %s", record, picked)
    return Rerun(parent, found.resolved["experiment"]["name"], uri, seeds)


def _benchmark(
    found: Any,
    parent: str,
    table: str | Path | None,
    data_root: str | Path | None,
    split_dir: str | Path | None,
) -> tuple[Any, Any]:
    """The record's spec, parsed again from its text, and its benchmark."""
    from harness.evaluators import EvaluatorSetup
    from harness.experiment import Benchmark
    from harness.spec import parse_spec_text
    from harness.table import Table

    spec_path = Path(found.tags["harness.spec_path"])
    spec = parse_spec_text(found.spec_text, spec_path, found.resolved.get("overrides"))
    if spec.spec_hash != found.params["spec_hash"]:
        raise HarnessError(
            f"the recorded spec text and overrides of {parent} do not hash to its recorded "
            "spec_hash: the record was tampered with, or written by a harness whose resolved "
            f"spec differs (recorded by {found.tags.get('env.package.harness', '?')}, "
            f"git {found.tags.get('env.git.commit', '?')[:12]})"
        )
    table_path = Path(table) if table else Path(found.tags["harness.table_path"])
    spec = dataclasses.replace(spec, table_path=table_path)
    setup = EvaluatorSetup(
        found.params.get("evaluator", "tabular"),
        Path(data_root) if data_root else None,
        Path(split_dir) if split_dir else None,
    )
    loaded = Table.load(table_path, expected_sha256=found.table["sha256"])
    return Benchmark(spec, loaded, setup), spec


def _rerun_seed(
    found: Any, benchmark: Any, spec: Any, strategy: str, seed: int, store: str
) -> SeedRerun:
    from harness.plugins import origin
    from harness.record import load_trajectories, trajectory_frame
    from harness.strategies import strategy_class

    notes = []
    strategy_spec = next(s for s in spec.strategies if s.name == strategy)
    recorded_source = found.child_params[strategy].get("origin.source_sha256")
    now_source = origin(strategy_class(strategy_spec.kind))["source_sha256"]
    if recorded_source not in (None, now_source):
        notes.append(
            f"the strategy's source file changed since the record (sha256 "
            f"{recorded_source[:12]} then, {now_source[:12]} now)"
        )
    outcome = benchmark.run(strategy_spec, seed)
    fresh = trajectory_frame([outcome])
    recorded = load_trajectories(found.children[strategy], store)
    recorded = recorded[recorded.seed == seed].reset_index(drop=True)
    if benchmark.evaluator.trains:
        # wall-clock times differ between any two trainings: a trained re-run does not compare them
        measured = list(MEASURED if spec.search.cost == "live" else ("measured_s",))
        notes.append(f"live run; measured times ({', '.join(measured)}) are not compared")
        fresh = fresh.drop(columns=measured, errors="ignore")
        recorded = recorded.drop(columns=measured, errors="ignore")
    return SeedRerun(
        strategy=strategy,
        seed=seed,
        evaluations=len(fresh),
        recorded_evaluations=len(recorded),
        difference=first_difference(fresh, recorded),
        final_arch=int(outcome.result.incumbent_arch),
        targets=dict(outcome.targets),
        notes=tuple(notes),
    )


def _seed_ranges(seeds: tuple[int, ...]) -> str:
    """``0..9, 20`` for the seeds of a record."""
    runs: list[list[int]] = []
    for seed in seeds:
        if runs and seed == runs[-1][-1] + 1:
            runs[-1].append(seed)
        else:
            runs.append([seed])
    return ", ".join(f"{r[0]}..{r[-1]}" if len(r) > 1 else str(r[0]) for r in runs[:8]) + (
        ", ..." if len(runs) > 8 else ""
    )

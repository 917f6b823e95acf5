"""Checks of a record read back, before a report or a re-run believes it.

An artifact edited, truncated or written by something else must end in one line naming
the run, the artifact and what is wrong, never in a traceback deep inside a report, and
never in numbers that contradict the record's own resolved spec (seeds it did not run).
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from harness.errors import HarnessError

#: the ``runs.csv`` columns a report reads, besides ``seed`` and ``target.<label>`` (which
#: every record holds; a re-run reads no other)
REPORT_RUN_COLUMNS = (
    "evaluations",
    "distinct_archs",
    "epochs",
    "simulated_seconds",
    "strategy_wall_s",
    "final_arch_index",
    "final_signal",
)
#: the ``trajectories.parquet`` columns a report or re-run reads
TRAJECTORY_COLUMNS = (
    "seed",
    "end_s",
    "completed",
    "incumbent_index",
    "incumbent_signal",
)


def damaged(run_id: str, artifact: str, problem: str) -> HarnessError:
    """The one-line error for an artifact that cannot be believed."""
    return HarnessError(
        f"run {run_id}: artifact {artifact!r} {problem}; the record is damaged: run its spec "
        "again to record it anew"
    )


def parse_json(run_id: str, artifact: str, data: bytes) -> dict[str, Any]:
    """A JSON object artifact."""
    try:
        value = json.loads(data)
    except (UnicodeDecodeError, ValueError) as error:
        raise damaged(run_id, artifact, f"is not JSON ({error})") from None
    if not isinstance(value, dict):
        raise damaged(run_id, artifact, f"holds a {type(value).__name__}, not a JSON object")
    return value


def parse_csv(run_id: str, artifact: str, data: bytes) -> pd.DataFrame:
    """A CSV artifact, as pandas reads it."""
    try:
        return pd.read_csv(io.BytesIO(data))
    except (UnicodeDecodeError, ValueError, pd.errors.ParserError) as error:
        text = " ".join(str(error).split())[:200] or type(error).__name__
        raise damaged(run_id, artifact, f"cannot be read as CSV ({text})") from None


def parse_parquet(
    run_id: str, artifact: str, data: bytes, columns: tuple[str, ...]
) -> pd.DataFrame:
    """A parquet artifact holding at least ``columns``."""
    try:
        frame = pd.read_parquet(io.BytesIO(data))
    except Exception as error:  # pyarrow raises its own types (ArrowInvalid, OSError, ...)
        text = " ".join(str(error).split())[:200] or type(error).__name__
        raise damaged(run_id, artifact, f"cannot be read as parquet ({text})") from None
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise damaged(run_id, artifact, f"has no column {missing[0]!r}")
    return frame


def check_columns(run_id: str, artifact: str, frame: pd.DataFrame, columns: Any) -> None:
    """``frame`` holds every one of ``columns``, numeric."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise damaged(run_id, artifact, f"has no column {missing[0]!r}")
    for column in columns:
        if not pd.api.types.is_numeric_dtype(frame[column]):
            raise damaged(run_id, artifact, f"holds text in the numeric column {column!r}")


def _field(run_id: str, artifact: str, value: Any, path: str, check: Callable[[Any], bool]) -> Any:
    """``value[path]`` (a dotted path) if it passes ``check``."""
    for key in path.split("."):
        if not isinstance(value, dict) or key not in value:
            raise damaged(run_id, artifact, f"has no {path!r}")
        value = value[key]
    if not check(value):
        raise damaged(run_id, artifact, f"holds an invalid {path!r}")
    return value


def _list_of_dicts(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, dict) for v in value)


def check_resolved(run_id: str, artifact: str, resolved: dict[str, Any]) -> None:
    """The resolved spec names its strategies, targets and seeds."""
    strategies = _field(run_id, artifact, resolved, "strategies", _list_of_dicts)
    if not strategies:
        raise damaged(run_id, artifact, "names no strategies")
    names = [_field(run_id, artifact, s, "name", lambda v: isinstance(v, str)) for s in strategies]
    if len(set(names)) != len(names):
        raise damaged(run_id, artifact, "names a strategy twice")
    targets = _field(run_id, artifact, resolved, "targets", _list_of_dicts)
    for target in targets:
        _field(run_id, artifact, target, "label", lambda v: isinstance(v, str))
    _field(
        run_id,
        artifact,
        resolved,
        "runs.seeds",
        lambda v: isinstance(v, list) and bool(v) and all(type(s) is int for s in v),
    )
    for section in ("experiment", "search", "budget"):
        _field(run_id, artifact, resolved, section, lambda v: isinstance(v, dict))
    _field(run_id, artifact, resolved, "experiment.name", lambda v: isinstance(v, str))


def check_table_info(run_id: str, artifact: str, info: dict[str, Any], labels: list[str]) -> None:
    """The table facts hold a finite optimum of every target."""
    for key in ("sha256", "benchmark_id"):
        _field(run_id, artifact, info, key, lambda v: isinstance(v, str))
    optimal = _field(run_id, artifact, info, "optimal", lambda v: isinstance(v, dict))
    for label in labels:
        value = optimal.get(label)
        if isinstance(value, bool) or not (isinstance(value, int | float) and math.isfinite(value)):
            raise damaged(run_id, artifact, f"holds {value!r} as the optimum of target {label!r}")


def check_runs(
    run_id: str, artifact: str, runs: pd.DataFrame, labels: list[str], seeds: list[int]
) -> None:
    """A strategy's ``runs.csv``: numeric seeds and targets, finite targets, and exactly the
    seeds the resolved spec ran, each once."""
    targets = [f"target.{label}" for label in labels]
    check_columns(run_id, artifact, runs, ("seed", *targets))
    for column in targets:
        bad = ~np.isfinite(runs[column].to_numpy(np.float64))
        if bad.any():
            raise damaged(
                run_id,
                artifact,
                f"holds {runs[column].iloc[int(bad.argmax())]} in {column!r} (row "
                f"{int(bad.argmax()) + 1})",
            )
    if sorted(runs["seed"].tolist()) != sorted(seeds):
        raise damaged(
            run_id,
            artifact,
            f"holds seeds that contradict the resolved spec ({_seed_text(runs['seed'].tolist())} "
            f"recorded, {_seed_text(seeds)} run)",
        )


def _seed_text(seeds: list[Any]) -> str:
    shown = ", ".join(str(s) for s in sorted(seeds)[:5])
    return f"{len(seeds)} seeds: {shown}" + (", ..." if len(seeds) > 5 else "")

"""MLflow records: everything needed to re-run an experiment and check the re-run.

Granularity: one parent run per experiment and one child run per strategy. A child holds
every seed of its strategy: a ``runs.csv`` summary row per seed (master seed, derived
streams, totals, final architecture and its sealed report metrics) and the per-evaluation
trajectories of all seeds in ``trajectories.csv.gz``. That keeps 1,500 runs to a handful
of MLflow calls while any single seed can still be re-run and compared row by row
(``harness rerun``). Metrics are logged in batches; curves stay in artifacts.
"""

from __future__ import annotations

import fcntl
import io
import json
import logging
import os
import re
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harness.config import config_hash
from harness.errors import HarnessError
from harness.estimation import EstimateSpec
from harness.experiment import RUN_STREAMS, Benchmark, RunOutcome
from harness.places import check_uri, sqlite_path, store_uri
from harness.plugins import origin
from harness.protocol import split_hash_of
from harness.record_check import (
    TRAJECTORY_COLUMNS,
    check_resolved,
    check_runs,
    check_table_info,
    damaged,
    parse_csv,
    parse_json,
    parse_parquet,
)
from harness.seeding import stream_scheme
from harness.spec import ExperimentSpec
from harness.strategies import needs_one_shot, strategy_class
from harness.table import Table

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
# MLflow's own progress lines ("Creating initial MLflow database tables...") would break
# the one-line promise of every harness error; warnings and errors still show
os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
# nor may reading a record draw tqdm bars ("Downloading artifacts") where tqdm is installed
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

import mlflow  # noqa: E402  (telemetry must be off before mlflow is imported)
from mlflow.entities import Metric, Param, RunTag  # noqa: E402
from mlflow.exceptions import MlflowException  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402

log = logging.getLogger(__name__)
RESOLVED_SPEC = "resolved_spec.json"
SPEC_TEXT = "spec.toml"
ENVIRONMENT = "environment.json"
TABLE_INFO = "table.json"
RUNS = "runs.csv"
#: one row per evaluation of every seed; parquet keeps each column's type (a seed label
#: "111" stays text) and float64 values exactly, and writes 10^5 rows in milliseconds
TRAJECTORIES = "trajectories.parquet"
#: per seed, what a strategy's own search did (a weight-sharing search's per-epoch cells)
SEARCH_LOG = "search_log.json"
#: the table's seed-mean values of every architecture that was ever an incumbent: what the
#: report plots (a run's observed signal is one drawn seed's, biased upward by selection)
INCUMBENTS = "incumbents.parquet"
MAX_PARAM = 6000


def tracking_uri(store: str | None = None) -> str:
    """``store`` if given, else ``MLFLOW_TRACKING_URI`` if set, else the sqlite store at
    the working folder's project root (:mod:`harness.places`)."""
    return store or store_uri()


def _sqlite_path(uri: str) -> Path | None:
    return sqlite_path(uri)


@contextmanager
def store_lock(store: str | None = None) -> Iterator[None]:
    """Exclusive use of a sqlite store among harness processes, for creating it (MLflow's
    schema migration races when two processes create one store at once) and for writing
    a record. A tracking server needs no lock: it serialises its own writes."""
    path = _sqlite_path(tracking_uri(store))
    if path is None:
        yield
        return
    try:
        handle = open(path.with_name(path.name + ".lock"), "a")  # noqa: SIM115 - held below
    except OSError as error:
        raise HarnessError(
            f"cannot use the MLflow store {path} ({error.strerror}); check the folder or "
            "MLFLOW_TRACKING_URI"
        ) from None
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


_READY: set[str] = set()


def check_store(store: str | None = None) -> None:
    """Create or open the tracking store now: a URI or store MLflow refuses ends here."""
    _client(create=True, store=store)


def _client(create: bool = False, store: str | None = None) -> MlflowClient:
    """A client of the tracking store ``store`` (default: :func:`tracking_uri`); reading
    needs an existing store (``create`` False), so a command run outside the project says
    so instead of creating an empty one."""
    uri = tracking_uri(store)
    if uri not in _READY:
        check_uri(uri)
    path = _sqlite_path(uri)
    if path is not None and not create and not path.is_file():
        raise HarnessError(
            f"no MLflow store at {path}; run inside the project that holds mlflow.db "
            "(its folder or one below) or set MLFLOW_TRACKING_URI"
        )
    mlflow.set_tracking_uri(uri)
    if uri in _READY:
        return MlflowClient(tracking_uri=uri)
    with store_lock(uri):  # creating the client creates or migrates the store
        try:
            client = MlflowClient(tracking_uri=uri)
            client.search_experiments(max_results=1)
        except Exception as error:  # mlflow raises many types for a bad store or URI
            raise HarnessError(
                f"the MLflow store {uri} cannot be used ({type(error).__name__}: "
                f"{' '.join(str(error).split())[:300]}); check MLFLOW_TRACKING_URI"
            ) from None
    _READY.add(uri)
    return client


def _experiment_id(client: MlflowClient, name: str, store: str | None = None) -> str:
    found = client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    location = None
    uri = tracking_uri(store)
    if uri.startswith("sqlite:///"):
        location = (Path(uri.removeprefix("sqlite:///")).parent / "mlartifacts").as_uri()
    try:
        return client.create_experiment(name, artifact_location=location)
    except MlflowException as error:  # another process, through the same server, was first
        found = client.get_experiment_by_name(name)
        if error.error_code != "RESOURCE_ALREADY_EXISTS" or found is None:
            raise
        return found.experiment_id


def _params(values: dict[str, Any]) -> list[Param]:
    params = []
    for key, value in sorted(values.items()):
        text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
        if len(text) > MAX_PARAM:
            text = f"sha256:{config_hash({'v': text})} (too long for a param; see artifacts)"
        params.append(Param(key, text))
    return params


def _write_artifact(client: MlflowClient, run_id: str, name: str, data: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        path.write_bytes(data)
        client.log_artifact(run_id, str(path))


def _parquet(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False, compression="zstd")
    return buffer.getvalue()


def trajectory_frame(outcomes: list[RunOutcome]) -> pd.DataFrame:
    """All trajectories of some runs as one table (one row per evaluation)."""
    frames = []
    for outcome in outcomes:
        t = outcome.result.trajectory
        columns: dict[str, Any] = {
            "seed": [outcome.seed] * len(t),
            "row": range(len(t)),
            "worker": t.worker,
            "start_s": t.start_s,
            "end_s": t.end_s,
            "arch_index": t.arch,
            "epoch": t.epoch,
            "cost_s": t.cost_s,
            "signal": t.signal,
            "seed_used": t.seed_used,
            "completed": t.completed,
            "incumbent_index": t.incumbent_arch,
            "incumbent_signal": t.incumbent_signal,
            "trial": t.trial,
            "resumed_from": t.resumed_from,
            "told": t.told,
        }
        columns.update({f"visible.{k}": v for k, v in sorted(t.visible.items())})
        columns.update({f"sealed.{k}": v for k, v in sorted(t.sealed.items())})
        if t.measured_s:
            columns["measured_s"] = t.measured_s
        frames.append(columns)
    merged = {key: [v for frame in frames for v in frame[key]] for key in frames[0]}
    return pd.DataFrame(merged)


def incumbents_frame(outcomes: list[RunOutcome], benchmark: Benchmark) -> pd.DataFrame:
    """Seed-mean values, read from the table, of each architecture any run held as its
    incumbent: the search signal and sealed metrics at the search epoch (``signal``,
    ``sealed.<name>``) and the report targets (``target.<label>``)."""
    from harness.evaluators.tabular import resolve_metric

    search = benchmark.spec.search
    archs = sorted(
        {int(a) for o in outcomes for a in o.result.trajectory.incumbent_arch if a >= 0}
        | {int(o.result.incumbent_arch) for o in outcomes}
    )
    table = benchmark.table
    columns: dict[str, Any] = {"arch_index": archs}
    columns["signal"] = resolve_metric(table, search.signal, search.epoch)[archs]
    for name, ref in sorted(search.sealed.items()):
        columns[f"sealed.{name}"] = resolve_metric(table, ref, search.epoch)[archs]
    for label, vector in benchmark.targets.items():
        columns[f"target.{label}"] = vector[archs]
    return pd.DataFrame(columns)


def runs_frame(outcomes: list[RunOutcome], benchmark: Benchmark) -> pd.DataFrame:
    """One summary row per run: what to re-run it with and what it found."""
    rows = []
    for outcome in outcomes:
        r = outcome.result
        row: dict[str, Any] = {
            "seed": outcome.seed,
            **{f"stream.{k}": v for k, v in outcome.streams.items()},
            "evaluations": r.evaluations,
            "distinct_archs": len(
                {a for a, ok in zip(r.trajectory.arch, r.trajectory.completed, strict=True) if ok}
            ),
            "epochs": r.epochs,
            "simulated_seconds": r.simulated_seconds,
            "setup_s": r.setup_s,
            "stop_reason": r.stop_reason,
            "final_arch_index": r.incumbent_arch,
            "final_arch": benchmark.space.string_of_index(r.incumbent_arch),
            "final_signal": r.incumbent_signal,
            "final_epoch": r.incumbent_epoch,
            **{f"target.{k}": v for k, v in outcome.targets.items()},
            "strategy_wall_s": r.strategy_wall_s,
        }
        if benchmark.spec.estimate is not None:  # only searches that may ask have these
            row["scores"] = r.scores
            row["score_s"] = r.score_s
        rows.append(row)
    return pd.DataFrame(rows)


def record_experiment(
    spec: ExperimentSpec,
    benchmark: Benchmark,
    outcomes: list[RunOutcome],
    environment: dict[str, Any],
    store: str | None = None,
) -> str:
    """Write the experiment's parent run and one child per strategy into the tracking
    store ``store`` (default: :func:`tracking_uri`); returns the parent id.

    ``environment`` is :func:`harness.environment.capture_details`: its ``tags`` become
    ``env.*`` tags, the whole of it the ``environment.json`` artifact.

    The parent stays RUNNING until every child is written and carries this process's host
    and pid, so a record left half-written by a killed process is recognisable: the next
    record of the experiment marks it KILLED (:func:`mark_interrupted`).
    """
    uri = tracking_uri(store)
    client = _client(create=True, store=uri)
    created: list[str] = []
    with store_lock(uri):
        try:
            experiment_id = _experiment_id(client, spec.name, uri)
            mark_interrupted(client, experiment_id)
            return _record(client, experiment_id, spec, benchmark, outcomes, environment, created)
        except BaseException as error:
            _mark_failed(client, created)
            if isinstance(error, OSError | MlflowException):
                text = " ".join(str(error).split())[:300]
                raise HarnessError(
                    f"cannot record experiment {spec.name!r} in the MLflow store {uri} "
                    f"({type(error).__name__}: {text}); "
                    + ("what it wrote there is marked FAILED; " if created else "")
                    + "free space or fix the store, then run the same command again"
                ) from None
            raise


def _mark_failed(client: MlflowClient, run_ids: list[str]) -> None:
    """Mark the runs of a record that could not be completed FAILED, where the store still
    takes writes (where it does not, the next record marks them KILLED: their writer is
    gone, :func:`mark_interrupted`)."""
    for run_id in reversed(run_ids):
        try:
            client.set_tag(run_id, "harness.interrupted", "true")
            client.set_terminated(run_id, status="FAILED")
        except Exception:  # noqa: BLE001 - the store failed already; the error says so
            log.debug("harness: run %s could not be marked FAILED", run_id)


def _alive(host: str | None, pid: str | None) -> bool:
    """Whether the process that started a record may still be writing it."""
    if host != socket.gethostname() or not (pid or "").isdigit():
        return True  # another machine's process: not ours to judge
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def mark_interrupted(client: MlflowClient, experiment_id: str) -> list[str]:
    """Mark RUNNING records of this experiment whose writer is gone as KILLED (tag
    ``harness.interrupted``), children included, so they are never mistaken for results."""
    marked = []
    for run in client.search_runs(
        [experiment_id], filter_string="attributes.status = 'RUNNING'", max_results=10_000
    ):
        tags = run.data.tags
        owner = run if tags.get("harness.role") == "experiment" else None
        if owner is None and "mlflow.parentRunId" in tags:
            try:
                owner = client.get_run(tags["mlflow.parentRunId"])
            except Exception:  # the parent is gone: the child is an orphan
                owner = run
        owner_tags = (owner or run).data.tags
        if _alive(owner_tags.get("harness.host"), owner_tags.get("harness.pid")):
            continue
        client.set_tag(run.info.run_id, "harness.interrupted", "true")
        client.set_terminated(run.info.run_id, status="KILLED")
        marked.append(run.info.run_id)
    if marked:
        log.info("harness: marked %d interrupted MLflow runs as KILLED", len(marked))
    return marked


def _record(
    client: MlflowClient,
    experiment_id: str,
    spec: ExperimentSpec,
    benchmark: Benchmark,
    outcomes: list[RunOutcome],
    environment: dict[str, Any],
    created: list[str],
) -> str:
    """Write the record; ``created`` collects the id of each run as it is created."""
    table = benchmark.table
    protocol_hash = config_hash(table.protocol)
    parent = client.create_run(
        experiment_id,
        run_name=spec.name,
        tags={
            "harness.role": "experiment",
            "harness.spec_hash": spec.spec_hash,
            "harness.host": socket.gethostname(),
            "harness.pid": str(os.getpid()),
        },
    )
    pid = parent.info.run_id
    created.append(pid)
    params = {
        "spec_hash": spec.spec_hash,
        "spec_name": spec.name,
        "table_sha256": table.sha256,
        "table_pinned": spec.table_sha256 is not None,
        "table_format_version": table.format_version,
        "benchmark_id": table.benchmark_id,
        "space": table.space,
        "evaluator": benchmark.evaluator_setup.kind,
        **{f"evaluator.{k}": v for k, v in origin(benchmark.evaluator_class).items()},
        "protocol_hash": protocol_hash,
        "search_protocol_hash": config_hash(
            {"search": spec.resolved["search"], "budget": spec.resolved["budget"]}
        ),
        "split_hash": split_hash_of(table.protocol["splits"])
        if isinstance(table.protocol.get("splits"), dict)
        else "not in table",
        "cost_model": table.cost_model,
        "n_runs": len(outcomes),
        "seeds": f"{len(spec.seeds)} seeds: {spec.seeds[0]}..{spec.seeds[-1]}",
        "workers": spec.workers,
        "overrides": spec.overrides,
        "target_directions": {t.label: t.better for t in spec.targets},
        **{f"search.{k}": v for k, v in spec.resolved["search"].items()},
        **{f"budget.{k}": v for k, v in spec.resolved["budget"].items()},
    }
    tags = [RunTag(f"env.{k}", v) for k, v in sorted(environment["tags"].items())]
    tags += [
        RunTag("harness.spec_path", str(spec.path.resolve())),
        RunTag("harness.table_path", str(table.path.resolve())),
    ]
    client.log_batch(pid, params=_params(params), tags=tags)
    _write_artifact(client, pid, SPEC_TEXT, spec.text.encode())
    _write_artifact(client, pid, RESOLVED_SPEC, _json(spec.resolved))
    _write_artifact(client, pid, ENVIRONMENT, _json(environment))
    table_info = {
        "sha256": table.sha256,
        "benchmark_id": table.benchmark_id,
        "format_version": table.format_version,
        "protocol": table.protocol,
        "protocol_hash": protocol_hash,
        "cost_model": table.cost_model,
        "provenance": table.provenance,
        "notes": table.notes,
        "optimal": benchmark.optimal(),
    }
    _write_artifact(client, pid, TABLE_INFO, _json(table_info))
    if not benchmark.evaluator.trains:  # a trained run's values are its own, not the table's
        _write_artifact(client, pid, INCUMBENTS, _parquet(incumbents_frame(outcomes, benchmark)))

    for strategy in spec.strategies:
        mine = [o for o in outcomes if o.strategy == strategy.name]
        child = client.create_run(
            experiment_id,
            run_name=strategy.name,
            tags={
                "mlflow.parentRunId": pid,
                "harness.role": "strategy",
                "harness.strategy": strategy.name,
                "harness.host": socket.gethostname(),
                "harness.pid": str(os.getpid()),
            },
        )
        cid = child.info.run_id
        created.append(cid)
        runs = runs_frame(mine, benchmark)
        child_params = {
            "strategy.name": strategy.name,
            "strategy.kind": strategy.kind,
            **{f"strategy.{k}": v for k, v in strategy.params.items()},
            "overrun": strategy.budget(spec.budget).overrun,
            "spec_hash": spec.spec_hash,
            "table_sha256": table.sha256,
            "n_runs": len(mine),
            "seeds": params["seeds"],
            "streams": stream_scheme(RUN_STREAMS),
            **{f"origin.{k}": v for k, v in origin(strategy_class(strategy.kind)).items()},
            **_one_shot_params(benchmark, strategy.kind),
        }
        metrics = []
        for column in [c for c in runs.columns if c.startswith("target.")] + [
            "evaluations",
            "simulated_seconds",
            "strategy_wall_s",
        ]:
            metrics.append(Metric(f"mean.{column}", float(runs[column].mean()), 0, 0))
            metrics.append(
                Metric(
                    f"std.{column}", float(runs[column].std(ddof=1) if len(runs) > 1 else 0.0), 0, 0
                )
            )
        client.log_batch(cid, metrics=metrics, params=_params(child_params), tags=tags)
        _write_artifact(client, cid, RUNS, runs.to_csv(index=False).encode())
        _write_artifact(client, cid, TRAJECTORIES, _parquet(trajectory_frame(mine)))
        logs = {str(o.seed): o.result.search_log for o in mine if o.result.search_log is not None}
        if logs:
            _write_artifact(client, cid, SEARCH_LOG, _json(logs))
        client.set_terminated(cid)
    client.set_terminated(pid)
    return pid


def _one_shot_params(benchmark: Benchmark, kind: str) -> dict[str, Any]:
    """The weight-sharing set-up a strategy that trains a supernet ran on (``supernet.*``)."""
    one_shot = benchmark.context.one_shot
    if one_shot is None or not needs_one_shot(kind):
        return {}
    return {f"supernet.{k}": v for k, v in one_shot.describe().items()}


def _json(value: Any) -> bytes:
    return (json.dumps(value, indent=2, sort_keys=True) + "\n").encode()


@dataclass
class ExperimentRecord:
    """What a report or a re-run needs, read back from the records alone."""

    parent_id: str
    resolved: dict[str, Any]
    spec_text: str
    table: dict[str, Any]
    params: dict[str, str]
    tags: dict[str, str]
    children: dict[str, str]  # strategy name -> child run id
    runs: dict[str, pd.DataFrame]
    child_params: dict[str, dict[str, str]]  # strategy name -> its run's params
    store: str = ""  # the tracking URI it was read from


def _download(client: MlflowClient, run_id: str, name: str) -> bytes:
    with tempfile.TemporaryDirectory() as folder:
        try:
            local = client.download_artifacts(run_id, name, folder)
        except Exception as error:  # mlflow raises several types for a missing artifact
            raise HarnessError(
                f"run {run_id}: artifact {name!r} cannot be read ({error})"
            ) from None
        return Path(local).read_bytes()


def load_experiment(parent_id: str, store: str | None = None) -> ExperimentRecord:
    """Read an experiment's parent run and its strategy children back from MLflow."""
    uri = tracking_uri(store)
    client = _client(store=uri)
    try:
        parent = client.get_run(parent_id)
    except Exception:
        raise HarnessError(
            f"no MLflow run {parent_id!r} in {uri}; check the id or MLFLOW_TRACKING_URI"
        ) from None
    if parent.data.tags.get("harness.role") != "experiment":
        raise HarnessError(f"run {parent_id} is not a harness experiment run")
    if parent.info.status != "FINISHED":
        raise HarnessError(
            f"run {parent_id} is {parent.info.status.lower()}: its record is incomplete "
            "(the experiment was interrupted or is still being recorded); run its spec again"
        )
    found = client.search_runs(
        [parent.info.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{parent_id}'",
        max_results=1000,
    )
    resolved = parse_json(parent_id, RESOLVED_SPEC, _download(client, parent_id, RESOLVED_SPEC))
    check_resolved(parent_id, RESOLVED_SPEC, resolved)
    labels = [t["label"] for t in resolved["targets"]]
    by_name = {run.data.tags.get("harness.strategy"): run for run in found}
    missing = [s["name"] for s in resolved["strategies"] if s["name"] not in by_name]
    if missing:
        raise HarnessError(
            f"run {parent_id} is incomplete: strategy {missing[0]!r} has no record (the "
            "experiment was interrupted); run its spec again"
        )
    children = {s["name"]: by_name[s["name"]].info.run_id for s in resolved["strategies"]}
    runs = {}
    for name, cid in children.items():
        runs[name] = parse_csv(cid, RUNS, _download(client, cid, RUNS))
        check_runs(cid, RUNS, runs[name], labels, resolved["runs"]["seeds"])
    table = parse_json(parent_id, TABLE_INFO, _download(client, parent_id, TABLE_INFO))
    check_table_info(parent_id, TABLE_INFO, table, labels)
    spec_text = _download(client, parent_id, SPEC_TEXT)
    try:
        text = spec_text.decode()
    except UnicodeDecodeError:
        raise damaged(parent_id, SPEC_TEXT, "is not UTF-8 text") from None
    if not parent.data.params.get("spec_hash"):
        raise HarnessError(
            f"run {parent_id} has no spec_hash param; the record is damaged: run its spec "
            "again to record it anew"
        )
    return ExperimentRecord(
        parent_id=parent_id,
        resolved=resolved,
        spec_text=text,
        table=table,
        params=dict(parent.data.params),
        tags=dict(parent.data.tags),
        children=children,
        runs=runs,
        child_params={name: dict(by_name[name].data.params) for name in children},
        store=uri,
    )


def load_trajectories(child_id: str, store: str | None = None) -> pd.DataFrame:
    client = _client(store=store)
    data = _download(client, child_id, TRAJECTORIES)
    return parse_parquet(child_id, TRAJECTORIES, data, TRAJECTORY_COLUMNS)


def load_incumbents(parent_id: str, store: str | None = None) -> pd.DataFrame | None:
    """The seed-mean values of every incumbent (:func:`incumbents_frame`), or None for a
    record without them (live runs, and records written before they were kept)."""
    client = _client(store=store)
    if INCUMBENTS not in {a.path for a in client.list_artifacts(parent_id)}:
        return None
    data = _download(client, parent_id, INCUMBENTS)
    return parse_parquet(parent_id, INCUMBENTS, data, ("arch_index", "signal"))


def load_search_logs(child_id: str, store: str | None = None) -> dict[str, Any] | None:
    """A strategy's own search logs by seed (:data:`SEARCH_LOG`: a weight-sharing search's
    derived cell after every epoch), or None for a strategy that keeps none."""
    client = _client(store=store)
    if SEARCH_LOG not in {a.path for a in client.list_artifacts(child_id)}:
        return None
    return parse_json(child_id, SEARCH_LOG, _download(client, child_id, SEARCH_LOG))


def find_parent(child_id: str, store: str | None = None) -> str:
    """The experiment (parent) run of a strategy (child) run, or the id itself if it is one."""
    uri = tracking_uri(store)
    client = _client(store=uri)
    try:
        run = client.get_run(child_id)
    except Exception:
        raise HarnessError(
            f"no MLflow run {child_id!r} in {uri}; check the id or MLFLOW_TRACKING_URI"
        ) from None
    return run.data.tags.get("mlflow.parentRunId", child_id)


def _experiment_runs(client: MlflowClient, name: str | None) -> list[Any]:
    if name is None:
        experiments = client.search_experiments()
    else:
        found = client.get_experiment_by_name(name)
        experiments = [] if found is None else [found]
    if not experiments:
        return []
    return client.search_runs(
        [e.experiment_id for e in experiments],
        filter_string="tags.`harness.role` = 'experiment'",
        order_by=["attributes.start_time DESC"],
        max_results=10_000,
    )


def finished_records(name: str, store: str | None = None) -> list[dict[str, str]]:
    """The finished experiment runs recorded under experiment ``name``, newest first, each
    with what tells two records apart: run id, start time (UTC), spec hash, evaluator,
    table sha256 and overrides."""
    uri = tracking_uri(store)
    client = _client(store=uri)
    found = []
    for run in _experiment_runs(client, name):
        if run.info.status != "FINISHED":
            continue
        params = run.data.params
        found.append(
            {
                "run_id": run.info.run_id,
                "started_utc": pd.Timestamp(run.info.start_time, unit="ms").strftime(
                    "%Y-%m-%d %H:%M:%S"
                ),
                "spec_hash": params.get("spec_hash", ""),
                "evaluator": params.get("evaluator", ""),
                "table_sha256": params.get("table_sha256", ""),
                "overrides": params.get("overrides", "{}"),
            }
        )
    if not found:
        raise HarnessError(
            f"no finished experiment named {name!r} in {uri}; `harness ls` lists the recorded ones"
        )
    return found


def newest_experiment_run(name: str, store: str | None = None) -> str:
    """The newest finished experiment run recorded under experiment ``name``."""
    return finished_records(name, store)[0]["run_id"]


def list_experiment_runs(name: str | None = None, store: str | None = None) -> pd.DataFrame:
    """Experiment runs, newest first, with what identifies each; ``attrs["store"]`` is the
    tracking URI read."""
    uri = tracking_uri(store)
    client = _client(store=uri)
    names = {e.experiment_id: e.name for e in client.search_experiments()}
    rows = []
    for run in _experiment_runs(client, name):
        params = run.data.params
        rows.append(
            {
                "experiment": names.get(run.info.experiment_id, "?"),
                "run_id": run.info.run_id,
                "status": run.info.status,
                "started_utc": pd.Timestamp(run.info.start_time, unit="ms").strftime(
                    "%Y-%m-%d %H:%M:%S"
                ),
                "spec_hash": params.get("spec_hash", "")[:12],
                "evaluator": params.get("evaluator", ""),
                "n_runs": params.get("n_runs", ""),
                "overrides": params.get("overrides", "{}"),
            }
        )
    columns = [
        "experiment",
        "run_id",
        "status",
        "started_utc",
        "spec_hash",
        "evaluator",
        "n_runs",
        "overrides",
    ]
    frame = pd.DataFrame(rows, columns=columns)
    frame.attrs["store"] = uri
    return frame


def _metric_key(text: str) -> str:
    """``text`` with the characters MLflow refuses in a metric name replaced by ``_``."""
    return re.sub(r"[^A-Za-z0-9_\-. :/]", "_", text)


def record_estimate(
    spec: EstimateSpec,
    estimate: Table,
    truth: Table,
    quality: pd.DataFrame,
    environment: dict[str, Any],
    store: str | None = None,
) -> str:
    """Record an estimate and its judgement as one MLflow run (role ``estimate``) in the
    experiment named by the spec, in ``store`` (:func:`tracking_uri`); returns its id.

    Params pin the spec hash, the estimate file's and the ground-truth table's sha256,
    the proxy protocol hash and every estimator's kind, parameters and origin; metrics hold
    ρ, τ and top-k precision over all cells per (estimator, input); artifacts the spec, the
    resolved spec, ``quality.csv`` and the environment.
    """
    from harness.estimators import estimator_class

    client = _client(create=True, store=store)
    with store_lock(store):
        experiment_id = _experiment_id(client, spec.name, store)
        run = client.create_run(
            experiment_id,
            run_name=spec.name,
            tags={"harness.role": "estimate", "harness.spec_hash": spec.spec_hash},
        )
        run_id = run.info.run_id
        params: dict[str, Any] = {
            "spec_hash": spec.spec_hash,
            "spec_name": spec.name,
            "space": spec.space.name,
            "estimate_sha256": estimate.sha256,
            "ground_truth_sha256": truth.sha256,
            "ground_truth": {k: str(v) for k, v in spec.truth.items()},
            "proxy_protocol_hash": spec.protocol.protocol_hash,
            "proxy_protocol": spec.protocol.to_dict(),
            "archs": "all"
            if spec.sample is None
            else f"sample {spec.sample} (seed {spec.sample_seed})",
        }
        for entry in spec.estimators:
            params[f"estimator.{entry.name}.kind"] = entry.kind
            params[f"estimator.{entry.name}.params"] = entry.params
            for key, value in origin(estimator_class(entry.kind)).items():
                params[f"estimator.{entry.name}.origin.{key}"] = value
        everything = quality[quality["subset"] == quality["subset"].iloc[0]]
        metrics = [
            Metric(_metric_key(f"{row.input}.{row.estimator}.{name}"), float(value), 0, 0)
            for row in everything.itertuples()
            for name in ("rho", "tau", "top1", "top10", "seconds_per_arch")
            if np.isfinite(value := getattr(row, name))
        ]
        tags = [RunTag(f"env.{k}", v) for k, v in sorted(environment["tags"].items())]
        tags.append(RunTag("harness.spec_path", str(spec.path.resolve())))
        client.log_batch(run_id, metrics=metrics, params=_params(params), tags=tags)
        _write_artifact(client, run_id, SPEC_TEXT, spec.path.read_bytes())
        _write_artifact(client, run_id, RESOLVED_SPEC, _json(spec.resolved))
        _write_artifact(client, run_id, ENVIRONMENT, _json(environment))
        _write_artifact(client, run_id, "quality.csv", quality.to_csv(index=False).encode())
        client.set_terminated(run_id)
    return run_id


def record_predictions(
    spec: Any,
    summary: pd.DataFrame,
    trials: pd.DataFrame,
    table_sha256: str,
    environment: dict[str, Any],
    store: str | None = None,
) -> str:
    """Record a predict spec's protocol as one MLflow run (role ``predict``); returns its id.

    Params pin the spec hash, the table's and every feature estimate file's sha256, the
    protocol's sizes, trials and master seed, and every predictor's kind, parameters and
    origin; metrics hold each predictor's mean ρ and τ with the training-set size as the
    step; artifacts the spec, the resolved spec, ``summary.csv``, ``trials.csv`` and the
    environment.
    """
    from harness.predictors.protocol import origins

    client = _client(create=True, store=store)
    with store_lock(store):
        experiment_id = _experiment_id(client, spec.name, store)
        run = client.create_run(
            experiment_id,
            run_name=spec.name,
            tags={"harness.role": "predict", "harness.spec_hash": spec.spec_hash},
        )
        run_id = run.info.run_id
        params: dict[str, Any] = {
            "spec_hash": spec.spec_hash,
            "spec_name": spec.name,
            "space": spec.space.name,
            "table_sha256": table_sha256,
            "metric": str(spec.metric),
            "seed": spec.seed,
            "trials": spec.trials,
            "train_sizes": list(spec.train_sizes),
            "test_size": spec.test_size,
        }
        for feature in spec.features:
            params[f"feature.{feature.name}.sha256"] = feature.sha256
            params[f"feature.{feature.name}.variable"] = str(feature.score)
        found = origins(spec)
        for entry in spec.predictors:
            params[f"predictor.{entry.name}.kind"] = entry.kind
            params[f"predictor.{entry.name}.params"] = entry.params
            for key, value in found[entry.name].items():
                params[f"predictor.{entry.name}.origin.{key}"] = value
        metrics = [
            Metric(_metric_key(f"{row.predictor}.{name}"), float(value), 0, int(row.train_size))
            for row in summary.itertuples()
            for name in ("rho", "tau", "fit_s", "query_s")
            if np.isfinite(value := getattr(row, name))
        ]
        tags = [RunTag(f"env.{k}", v) for k, v in sorted(environment["tags"].items())]
        tags.append(RunTag("harness.spec_path", str(spec.path.resolve())))
        client.log_batch(run_id, tags=tags)
        listed = _params(params)
        for start in range(0, len(listed), 100):  # MLflow takes at most 100 params a batch
            client.log_batch(run_id, params=listed[start : start + 100])
        for start in range(0, len(metrics), 1000):  # and 1,000 metrics
            client.log_batch(run_id, metrics=metrics[start : start + 1000])
        _write_artifact(client, run_id, SPEC_TEXT, spec.path.read_bytes())
        _write_artifact(client, run_id, RESOLVED_SPEC, _json(spec.resolved))
        _write_artifact(client, run_id, ENVIRONMENT, _json(environment))
        _write_artifact(client, run_id, "summary.csv", summary.to_csv(index=False).encode())
        _write_artifact(client, run_id, "trials.csv", trials.to_csv(index=False).encode())
        client.set_terminated(run_id)
    return run_id

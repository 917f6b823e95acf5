"""The Python API: run an experiment, read its results back, load a table, list records.

The ``harness`` command line is a thin shell over these functions::

    import harness

    done = harness.run("benchmarks/digits/compare.toml", seeds=range(20), strategies=["REA"])
    done.files[0]        # results/digits-compare+seeds-0-19+strategies-REA/report.md
    done.runs            # one row per run (strategy, seed, final architecture, targets, ...)
    done.evaluations     # one row per evaluation, in spec order
    again = harness.results("digits-compare")   # the newest record of that experiment
    harness.make_report([done.run_id])           # that folder again, from the record
    harness.rerun(done.run_id, seed=3).identical  # seed 3 searched again, diffed with the record
    table = harness.load_table("tabular/nb201-digits.h5")

Everything returned is read back from the MLflow records, never from memory, so
``results`` gives the same frames years later. Library code reports progress through
:mod:`logging` (logger ``harness``); only the CLI prints.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property, partial
from pathlib import Path
from typing import Any

import pandas as pd

from harness.atomic import check_writable
from harness.errors import HarnessError, StrategyError
from harness.places import check_uri, resume_root, store_uri
from harness.report import REPORT
from harness.reproduce import Rerun, rerun  # noqa: F401  (the API's own names)
from harness.table import Table

log = logging.getLogger(__name__)
_RUN_ID = re.compile(r"[0-9a-f]{32}")


@dataclass
class Results:
    """An experiment's record as tidy frames, in spec order (strategy, then seed).

    ``runs`` has one row per run: ``strategy``, ``seed``, the derived streams, totals
    (evaluations, epochs, simulated seconds), the final architecture and its report
    targets (``target.<label>``). ``evaluations`` has one row per evaluation: ``strategy``,
    ``seed``, ``row`` and every recorded column (simulated start/end, architecture, epoch,
    trial and the epoch it continued from, whether it was told, signal, visible and sealed
    metrics, incumbent). ``files`` are the result files written.
    """

    run_id: str
    name: str
    resolved: dict[str, Any]
    runs: pd.DataFrame
    files: tuple[Path, ...] = ()
    #: the MLflow tracking URI the record is in
    store: str = ""
    _children: dict[str, str] = field(default_factory=dict, repr=False)

    @cached_property
    def evaluations(self) -> pd.DataFrame:
        from harness.record import load_trajectories

        frames = []
        for strategy in self.resolved["strategies"]:
            frame = load_trajectories(self._children[strategy["name"]], self.store or None)
            frame.insert(0, "strategy", strategy["name"])
            frames.append(frame)
        return pd.concat(frames, ignore_index=True)


def _results(record: Any, files: tuple[Path, ...] = ()) -> Results:
    frames = []
    for strategy in record.resolved["strategies"]:
        frame = record.runs[strategy["name"]].copy()
        frame.insert(0, "strategy", strategy["name"])
        frames.append(frame)
    return Results(
        run_id=record.parent_id,
        name=record.resolved["experiment"]["name"],
        resolved=record.resolved,
        runs=pd.concat(frames, ignore_index=True),
        files=files,
        store=record.store,
        _children=dict(record.children),
    )


def run(
    spec: str | Path,
    *,
    seeds: Iterable[int] | Mapping[str, int] | None = None,
    strategies: Iterable[str] | None = None,
    budget: Mapping[str, float | int | str | None] | None = None,
    evaluator: str | None = None,
    executor: str | None = None,
    jobs: int = 2,
    results: str | Path | None = None,
    data_root: str | Path | None = None,
    split_dir: str | Path | None = None,
    scheduler: str | None = None,
) -> Results:
    """Run a spec, record it to MLflow, write its result files; return the record's frames.

    The record goes to ``MLFLOW_TRACKING_URI``, else to ``mlflow.db`` at the spec's
    project root: the nearest folder above the spec holding ``pyproject.toml`` or ``.git``
    (:mod:`harness.places`). Interrupted (even by ``kill -9``) and called again, it
    resumes: finished chunks of runs are kept in ``.harness/resume/`` beside the sqlite
    store until the experiment is recorded, and a half-written record is marked as
    interrupted, never reused.

    Overrides (each pinned in the record and in the spec hash): ``seeds`` (master seeds,
    or ``{"start": s, "count": n}``), ``strategies`` (names of the spec's strategies to
    run), ``budget`` (budget keys to replace, ``None`` removing a limit). ``evaluator``
    replaces the spec's ``[search] evaluator``: ``"tabular"``, ``"live"`` (train under the
    table's protocol, from ``data_root``) or a plugin kind;
    ``executor`` is ``"serial"``, ``"processes"`` with ``jobs`` workers, or ``"dask"``: a
    loopback Dask cluster of ``jobs`` workers, or the cluster at ``scheduler`` (an address
    such as ``"tcp://10.0.0.5:8786"``; implies ``"dask"``; see ``docs/distributed.md``);
    by default, worker processes when a tabular experiment has several chunks of work and
    the machine several cores, this process otherwise. No executor changes a result.
    ``results`` is the folder of the report (:func:`make_report`). By default it is the
    spec's ``[experiment] results`` only for the spec as it is (no overrides, tabular, and
    the spec hash the report already there was made from); any other run writes beside
    it, to a folder named by what differs (``digits-compare+seeds-0-19+budget-seconds-30``,
    ``...+live``, ``...+spec-<sha256 prefix>``; :func:`harness.report.folders.results_folder`),
    so a published result is never replaced by accident.
    """
    from harness.evaluators import EvaluatorSetup
    from harness.executors import resolve_executor
    from harness.experiment import (
        Benchmark,
        open_table,
        resume_identity,
        run_experiment,
    )
    from harness.resume import WORK_DIR, ChunkStore
    from harness.spec import load_spec

    if executor is not None or scheduler is not None:
        executor = resolve_executor(executor, scheduler)
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise HarnessError(f"jobs must be a positive integer, got {jobs!r}")
    overrides = {"seeds": seeds, "strategies": strategies, "budget": budget}
    parsed = load_spec(Path(spec), overrides)
    if evaluator is not None and (not isinstance(evaluator, str) or not evaluator):
        raise HarnessError(f"evaluator must be an evaluator kind, got {evaluator!r}")
    setup = EvaluatorSetup(
        evaluator or parsed.search.evaluator,
        Path(data_root) if data_root else None,
        Path(split_dir) if split_dir else None,
    )
    from harness.report.folders import results_folder

    if results is not None:
        folder = Path(results)
    else:
        # the spec's own evaluator is no override; another one is
        differs = "tabular" if setup.kind == parsed.search.evaluator else setup.kind
        folder, reasons = results_folder(
            parsed.results, parsed.name, parsed.spec_hash, parsed.overrides, differs
        )
        if reasons:
            log.info(
                "harness: %s: the report goes to %s, not to the spec's %s (%s; name a "
                "folder with --results / results= to choose)",
                parsed.name,
                folder,
                parsed.results,
                "; ".join(reasons),
            )
    _check_folder(folder if results is None else results, "results")  # "" is no folder
    spec_folder = parsed.path.resolve().parent
    uri = store_uri(spec_folder)
    check_uri(uri)  # a store that would lose the record, or is unreachable, ends it now
    benchmark = Benchmark(parsed, open_table(parsed), setup)
    # imported only once the input is known to be good: MLflow takes seconds to import
    from harness.environment import capture_details
    from harness.record import check_store, load_experiment, record_experiment
    from harness.report.write import write_report

    store = ChunkStore(
        resume_root(uri, spec_folder) / WORK_DIR, parsed.name, resume_identity(parsed, benchmark)
    )
    tic = time.perf_counter()
    # a store MLflow refuses ends the command seconds into the search, never after it; the
    # check (MLflow's import and schema check: seconds) overlaps work in worker processes
    try:
        outcomes = run_experiment(
            parsed, benchmark, executor, jobs, store, scheduler, meanwhile=partial(check_store, uri)
        )
    except StrategyError:
        # a strategy broke its contract: this code cannot finish the experiment, and a
        # changed strategy is another experiment, so nothing kept here would be resumed
        store.clear()
        raise
    searched = time.perf_counter() - tic
    parent = record_experiment(parsed, benchmark, outcomes, capture_details(), uri)
    store.clear()
    log.info(
        "%d runs searched in %.1f s, recorded in %.1f s; MLflow experiment run %s in %s",
        len(outcomes),
        searched,
        time.perf_counter() - tic - searched,
        parent,
        uri,
    )
    record = load_experiment(parent, uri)
    return _results(record, tuple(write_report([record], folder)))


@dataclass(frozen=True)
class _Found:
    """A chosen record: its parent run id, the store it is in, (for a spec) the spec's
    results folder, and (for a name or spec) which record was picked, in words."""

    run_id: str
    store: str
    results: Path | None = None
    picked: str | None = None

    def say(self, text: str) -> None:
        """Log which record ``text`` stood for (once the command has succeeded, so an
        error stays the command's one line)."""
        if self.picked is not None:
            log.info("harness: %s: record %s", text, self.picked)


def _describe(row: Mapping[str, str]) -> str:
    overrides = row["overrides"] if row["overrides"] not in ("{}", "") else "none"
    return (
        f"{row['run_id']} (spec sha256 {row['spec_hash'][:12]}, started {row['started_utc']} "
        f"UTC, {row['evaluator']} evaluator, overrides {overrides})"
    )


def _find(text: str, newest: bool) -> _Found:
    """The record a name, run id or spec path stands for (see :func:`find_experiment`)."""
    from harness.record import find_parent, finished_records

    if _RUN_ID.fullmatch(text):
        uri = store_uri()
        return _Found(find_parent(text, uri), uri)
    if text.endswith(".toml") and Path(text).is_file():
        from harness.spec import load_spec

        spec = load_spec(Path(text))
        uri = store_uri(spec.path.resolve().parent)
        rows = finished_records(spec.name, uri)
        exact = [
            r for r in rows if r["spec_hash"] == spec.spec_hash and r["evaluator"] == "tabular"
        ]
        if not exact:
            raise HarnessError(
                f"{text}: no record of this spec as it is (spec sha256 {spec.spec_hash[:12]}, "
                f"no overrides, tabular) among the {len(rows)} records of experiment "
                f"{spec.name!r} in {uri}; run it (`harness run {text}`), or name a record by "
                "the run id `harness ls` prints"
            )
        return _Found(exact[0]["run_id"], uri, spec.results, _describe(exact[0]))
    uri = store_uri()
    rows = finished_records(text, uri)
    kinds = {(r["spec_hash"], r["evaluator"], r["table_sha256"]) for r in rows}
    if len(kinds) > 1 and not newest:
        listed = "; ".join(_describe(r) for r in rows[:4])
        more = f"; and {len(rows) - 4} more" if len(rows) > 4 else ""
        raise HarnessError(
            f"experiment {text!r} has {len(rows)} finished records that differ, in {uri}: "
            f"{listed}{more}. Name one by its run id, give the spec path for the record of "
            "the spec as it is, or pass --newest for the newest"
        )
    return _Found(rows[0]["run_id"], uri, None, _describe(rows[0]))


def find_experiment(name_or_run_id: str, newest: bool = True) -> str:
    """The parent run id of an experiment: a run id (experiment or strategy run) as is;
    a spec path as the newest record made from that spec as it is (same spec hash, no
    overrides, tabular evaluator); an experiment name as its newest finished record, or,
    with ``newest`` False, only where all its finished records agree (spec hash,
    evaluator, table). Names and run ids are looked up in the working folder's store, a
    spec in its own project's (:mod:`harness.places`). The choice is logged."""
    return _find(str(name_or_run_id), newest).run_id


def results(name_or_run_id: str) -> Results:
    """An experiment's record as tidy frames (see :class:`Results`), read from MLflow.

    ``name_or_run_id``: an MLflow run id, an experiment name (its newest finished record)
    or the path of its spec (the record of that spec as it is).
    """
    from harness.record import load_experiment

    found = _find(str(name_or_run_id), newest=True)
    done = _results(load_experiment(found.run_id, found.store))
    found.say(str(name_or_run_id))
    return done


@dataclass
class Estimated:
    """What :func:`estimate` made: the estimate file, its judgement and the report."""

    #: the estimate file and its sha256 (None while chunks remain)
    path: Path
    sha256: str | None
    #: one row per (estimator, input, subset): τ, ρ, top-k precision, intervals, cost
    quality: pd.DataFrame | None = None
    run_id: str | None = None
    files: tuple[Path, ...] = field(default_factory=tuple)
    #: the MLflow store the judgement was recorded to
    store: str | None = None


def estimate(
    spec: str | Path,
    *,
    workers: int | None = None,
    executor: str | None = None,
    scheduler: str | None = None,
    max_chunks: int | None = None,
    out: str | Path | None = None,
    results: str | Path | None = None,
    data_root: str | Path | None = None,
    split_dir: str | Path | None = None,
) -> Estimated:
    """Score a space's architectures with an estimate spec's estimators, judge them against
    the ground truth, record the judgement to MLflow and write the report.

    Killed and called again, it resumes from the finished chunks. An estimate file that
    exists already is reported on as it is (its sha256 checked against the spec's pin).
    ``out`` writes the estimate elsewhere (unpinned) and its report, unless ``results``
    names a folder, beside it, so a published folder is written only by its own spec.
    ``max_chunks`` scores at most that many chunks now (then ``sha256`` is None).
    Executors as in :func:`run`; ``data_root``/``split_dir`` locate CIFAR-like data.
    """
    import dataclasses

    from harness.estimation import estimate as build
    from harness.estimation import ground_truth, load_estimate_spec, open_estimate

    parsed = load_estimate_spec(Path(spec))
    changes: dict[str, Any] = {}
    if data_root is not None:
        changes["data_root"] = Path(data_root).resolve()
    if split_dir is not None:
        changes["split_dir"] = Path(split_dir).resolve()
    if out is not None:
        changes.update(out=Path(out).resolve(), sha256=None)
        if results is None:
            results = Path(out).resolve().with_suffix("").with_name(Path(out).stem + "-report")
    if results is not None:
        changes["results"] = Path(results)
    parsed = dataclasses.replace(parsed, **changes)
    _check_folder(parsed.results, "results")
    if max_chunks is not None and (isinstance(max_chunks, bool) or max_chunks < 1):
        raise HarnessError(f"max_chunks must be at least 1, got {max_chunks!r}")
    uri = store_uri(parsed.path.resolve().parent)
    check_uri(uri)  # a store that would lose the record, or is unreachable, ends it now
    truth = ground_truth(parsed)  # a missing or mismatched ground truth ends it before work
    digest = build(parsed, workers, max_chunks, executor, scheduler)
    if digest is None:
        return Estimated(parsed.out, None)
    return _judge_estimate(parsed, open_estimate(parsed), truth, store=uri)


def _judge_estimate(
    parsed: Any, estimated: Table, truth: Table, store: str | None = None
) -> Estimated:
    from harness.report.estimates import header_lines, judge, write_estimate_report

    quality = judge(parsed, estimated, truth)
    run_id = None
    if store is not None:  # a judgement made afresh is recorded; a re-made report is not
        from harness.environment import capture_details
        from harness.record import record_estimate

        run_id = record_estimate(parsed, estimated, truth, quality, capture_details(), store)
    files = write_estimate_report(
        parsed.results,
        quality,
        header_lines(parsed, estimated, truth),
        parsed.published,
        parsed.published_source,
    )
    return Estimated(parsed.out, estimated.sha256, quality, run_id, tuple(files), store)


def estimate_report(spec: str | Path, results: str | Path | None = None) -> list[Path]:
    """Re-make an estimate spec's report from its pinned estimate file and ground truth."""
    import dataclasses

    from harness.estimation import ground_truth, load_estimate_spec, open_estimate

    parsed = load_estimate_spec(Path(spec))
    if results is not None:
        parsed = dataclasses.replace(parsed, results=Path(results))
    _check_folder(parsed.results, "results")
    if not parsed.out.exists():
        raise HarnessError(f"{parsed.out} does not exist; run `harness estimate {spec}` to make it")
    done = _judge_estimate(parsed, open_estimate(parsed), ground_truth(parsed))
    return list(done.files)


@dataclass
class Predicted:
    """What :func:`predict` made: the protocol's rows, their summary and the report."""

    #: one row per (trial, predictor, training-set size): ρ, τ, times, costs
    trials: pd.DataFrame
    #: one row per (predictor, training-set size): means and spreads over trials
    summary: pd.DataFrame
    run_id: str | None
    files: tuple[Path, ...]
    store: str | None = None


def predict(
    spec: str | Path,
    *,
    trials: int | None = None,
    results: str | Path | None = None,
    record: bool = True,
) -> Predicted:
    """Run a predict spec's protocol (:mod:`harness.predictors.protocol`): fit every
    predictor on nested training sets drawn from the pinned table, judge it on each
    trial's fixed test set, record the run to MLflow (unless ``record`` is False) and
    write the report. ``trials`` runs fewer or more trials than the spec, and the report
    then goes to ``results`` or, by default, a sibling folder named by the change, so a
    published folder is written only by its own spec."""
    import dataclasses

    from harness.predictors.protocol import load_predict_spec, prepare, run_protocol, summarize
    from harness.report.predictors import write_predictor_report

    parsed = load_predict_spec(Path(spec))
    if trials is not None:
        if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
            raise HarnessError(f"trials must be a positive int, got {trials!r}")
        if trials != parsed.trials:
            if results is None:
                results = parsed.results.with_name(f"{parsed.results.name}-trials{trials}")
            resolved = {**parsed.resolved, "predict": {**parsed.resolved["predict"]}}
            resolved["predict"]["trials"] = trials
            parsed = dataclasses.replace(parsed, trials=trials, resolved=resolved)
    if results is not None:
        parsed = dataclasses.replace(parsed, results=Path(results))
    _check_folder(parsed.results, "results")
    uri = None
    if record:
        uri = store_uri(parsed.path.resolve().parent)
        check_uri(uri)  # a store that would lose the record, or is unreachable, ends it now
    prepared = prepare(parsed)  # every bad input ends here, before any fit

    def progress(done: int, total: int) -> None:
        log.info("predict: %d/%d trials", done, total)

    rows = run_protocol(prepared, progress)
    summary = summarize(rows)
    run_id = None
    if uri is not None:
        from harness.environment import capture_details
        from harness.record import record_predictions

        run_id = record_predictions(
            parsed, summary, rows, prepared.table.sha256, capture_details(), uri
        )
    header = [
        f"# {parsed.title}",
        "",
        f"Spec `{parsed.path.name}` (hash {parsed.spec_hash[:12]}); table "
        f"`{parsed.table.name}` sha256 {prepared.table.sha256[:12]}; target and ground truth: "
        f"seed-mean `{parsed.metric}` at its last epoch.",
        "",
        _protocol_line(parsed, len(prepared.pool)),
        *(
            f"Feature `{f.name}`: `{f.score}` of `{f.path.name}` sha256 {f.sha256[:12]}."
            for f in parsed.features
        ),
        *(f"- {note}" for note in parsed.notes),
    ]
    files = write_predictor_report(parsed.results, rows, summary, header)
    return Predicted(rows, summary, run_id, tuple(files), uri)


def _protocol_line(spec: Any, pool: int) -> str:
    """What the trials drew, in one sentence of the report's header."""
    if spec.train_sizes == (0,):
        trials = f"{spec.trials} trial{'s' if spec.trials != 1 else ''}"
        whole = ": the whole pool" if spec.test_size == pool else ""
        return (
            f"NASLib's predictor protocol without a training set (no predictor here needs "
            f"one): {trials} (master seed {spec.seed}), each a test set of {spec.test_size:,} "
            f"architectures drawn from a pool of {pool:,} of the space's "
            f"{spec.space.num_archs:,} architectures{whole}."
        )
    return (
        f"NASLib's predictor protocol: {spec.trials} trials (master seed {spec.seed}), each "
        f"a fixed test set of {spec.test_size} architectures and nested training sets of "
        f"{', '.join(f'{n:,}' for n in spec.train_sizes)}, drawn from a pool of "
        f"{pool:,} architectures."
    )


def make_report(
    experiments: Iterable[str],
    out: str | Path | None = None,
    target: str | None = None,
    newest: bool = False,
) -> list[Path]:
    """Write the report of recorded experiments (names, run ids or spec paths; see
    :func:`find_experiment`) into the folder ``out``, read from the records alone.

    A name whose finished records differ (spec hash, evaluator or table) is refused
    unless ``newest`` picks the newest. One experiment's report goes, by default, where
    ``harness run`` puts it: for a spec, its ``[experiment] results`` (or the folder named
    by what differs, :func:`run`); for a name or run id, ``results/<name>`` at the working
    folder's project root, likewise. Several need ``out``. ``target`` is the report target
    ranked and tested (default: each experiment's first). Returns the files written,
    ``report.md`` first.
    """
    from harness.record import load_experiment
    from harness.report.folders import results_folder
    from harness.report.write import default_folder, write_report

    names = [str(e) for e in experiments]
    if not names:
        raise HarnessError("name at least one experiment (a name, a run id or a spec path)")
    if len(names) == 1 and _is_estimate_spec(names[0]):
        return estimate_report(names[0], out)
    if out is None and len(names) > 1:
        raise HarnessError(f"{len(names)} experiments: give --out FOLDER for their joint report")
    if out is not None:  # a bad destination ends the command before any record is read
        _check_folder(out, "--out")
    found = [_find(name, newest) for name in names]
    for index, chosen in enumerate(found):
        twin = next((i for i in range(index) if found[i].run_id == chosen.run_id), None)
        if twin is not None and found[twin].store == chosen.store:
            raise HarnessError(
                f"{names[twin]!r} and {names[index]!r} name the same record (run "
                f"{chosen.run_id}); name each experiment once"
            )
    records = [load_experiment(f.run_id, f.store) for f in found]
    if out is not None:
        folder = Path(out)
    elif found[0].results is not None:
        record = records[0]
        folder = results_folder(
            found[0].results,
            record.resolved["experiment"]["name"],
            record.params["spec_hash"],
            record.resolved.get("overrides") or {},
            record.params.get("evaluator", "tabular"),
        )[0]
    else:
        folder = default_folder(records)
    _check_folder(folder, "--out")
    written = write_report(records, folder, target)
    for name, chosen in zip(names, found, strict=True):
        chosen.say(name)
    return written


def _is_estimate_spec(name: str) -> bool:
    from harness.estimation import is_estimate_spec

    path = Path(name)
    return path.suffix == ".toml" and path.is_file() and is_estimate_spec(path)


def _check_folder(folder: str | Path, what: str) -> None:
    """Refuse a report folder that is empty, a file or not writable, before any work."""
    if str(folder) == "" or (Path(folder).exists() and not Path(folder).is_dir()):
        raise HarnessError(f"{what} {str(folder)!r} is not a folder; name one, e.g. results/my-run")
    check_writable(Path(folder) / REPORT, f"{what} folder")


def load_table(path: str | Path, sha256: str | None = None) -> Table:
    """A benchmark table held in memory; ``sha256`` pins its exact bytes."""
    return Table.load(Path(path), expected_sha256=sha256)


def ls(name: str | None = None) -> pd.DataFrame:
    """Recorded experiments (or one experiment's records), newest first: experiment name,
    run id, status, start time (UTC), spec hash, evaluator, runs and overrides, from the
    working folder's store (:mod:`harness.places`), whose URI is ``attrs["store"]``."""
    from harness.record import list_experiment_runs

    return list_experiment_runs(name)

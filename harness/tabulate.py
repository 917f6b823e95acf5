"""Build a benchmark table by training every architecture of a search space under a protocol.

Only one representative per isomorphism class (the space's canonical form; the smallest
index, e.g. NATS-Bench's UniqueString classes for NB201) is trained, once per protocol
seed; every other architecture of the class gets its representative's curves, and the
mapping is stored in the table. Parameter counts and FLOPs are computed for every
architecture itself.

Work is split into fixed chunks of trainings, run by any executor of
:mod:`harness.executors` (worker processes, or Dask workers on this or other machines).
A chunk's curves come back to this process, which writes each finished chunk atomically
to ``<out>.parts/``, so a killed build resumes without redoing finished chunks and workers
need no shared file system; a parts folder made under another protocol is refused.
Workers train with the protocol's thread count (one, for tabulated protocols), and
progress with an ETA goes to stderr. The table's values do not depend on the executor or
the worker count; only the measured times and the recorded build environment do.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness.atomic import check_output, write_text
from harness.config import (
    Field,
    Problems,
    Section,
    SpecFormat,
    at,
    read_toml,
    spec_error,
    validate,
)
from harness.data import Dataset
from harness.environment import capture
from harness.errors import ConfigError, TableError
from harness.executors import resolve_executor, run_chunks
from harness.parts import check_parts, chunks_done, parts_folder, read_parts, write_part
from harness.protocol import PROTOCOL_FIELDS, Protocol
from harness.resume import source_sha256
from harness.spaces import get_space
from harness.spaces.base import SearchSpace
from harness.table import Variable, write_table
from harness.train import (
    EVAL_METRICS,
    TRAIN_METRICS,
    configure_torch,
    open_dataset,
    train_cell,
)
from harness.version import __version__

log = logging.getLogger(__name__)
CHUNK_SIZE = 24


TABULATE_FIELDS = {
    "benchmark_id": Field(str, help="the table's benchmark id, recorded in the file"),
    "space": Field(str, help="search space whose architectures are trained"),
    "out": Field(str, help="the table to write, relative to the spec"),
    "workers": Field(int, 1, low=1, high=1024, help="worker processes that train chunks"),
    "data_root": Field(str, None, optional=True, help="dataset folder (CIFAR, ImageNet16, ...)"),
    "split_dir": Field(str, None, optional=True, help="folder of NB201's split files"),
}


TABULATE_SPEC = SpecFormat(
    title="Tabulate spec",
    command="harness tabulate SPEC",
    about="Every architecture of a space trained live under one protocol into a table; "
    "`benchmarks/digits/tabulate.toml` is a complete one.",
    sections=(
        Section("tabulate", TABULATE_FIELDS, "What is built, and where.", required=True),
        Section(
            "protocol",
            PROTOCOL_FIELDS,
            "The training protocol, stored in the table and hashed into its identity.",
            required=True,
        ),
    ),
)


@dataclass(frozen=True)
class TabulateSpec:
    """A ``harness tabulate`` spec: the protocol plus where and how to build."""

    path: Path
    benchmark_id: str
    space: SearchSpace
    out: Path
    workers: int
    data_root: Path | None
    split_dir: Path | None
    protocol: Protocol


def load_tabulate_spec(path: Path) -> TabulateSpec:
    """Read and validate a tabulate spec; errors name the file and field."""
    raw = read_toml(path)
    base = Path(path).resolve().parent
    problems = Problems()  # every problem at once: the two sections are checked apart
    for extra in sorted(set(raw) - set(TABULATE_SPEC.top_level())):
        problems.add(ConfigError("is not a known section; allowed: tabulate, protocol", extra))
    for name in TABULATE_SPEC.top_level(required=True):
        if name not in raw:
            problems.add(ConfigError("section is required; see docs/specs.md", name))
    if "tabulate" in raw:
        with problems.check("tabulate"):
            section = validate(raw["tabulate"], TABULATE_FIELDS)
            with at("space"):
                space = get_space(section["space"])
    if "protocol" in raw:
        with problems.check("protocol"):
            protocol = Protocol.from_dict(raw["protocol"])
    if problems.errors:
        raise spec_error(path, ConfigError.of(problems.errors))

    def optional_path(key: str) -> Path | None:
        value = section[key]
        return None if value is None else (base / value).resolve()

    return TabulateSpec(
        path=Path(path),
        benchmark_id=section["benchmark_id"],
        space=space,
        out=(base / section["out"]).resolve(),
        workers=section["workers"],
        data_root=optional_path("data_root"),
        split_dir=optional_path("split_dir"),
        protocol=protocol,
    )


def work_chunks(space: SearchSpace, protocol: Protocol) -> list[list[tuple[int, int]]]:
    """Every (representative, seed) training, in a fixed order, cut into fixed chunks."""
    representatives = np.unique(space.isomorphism_classes())
    work = [(int(rep), seed) for rep in representatives for seed in protocol.seeds]
    return [work[i : i + CHUNK_SIZE] for i in range(0, len(work), CHUNK_SIZE)]


_worker: tuple[SearchSpace, Protocol, Dataset] | None = None


def _init_worker(space: str, protocol: Protocol, root: Path | None, split_dir: Path | None) -> None:
    global _worker
    _worker = (get_space(space), protocol, open_dataset(protocol, root, split_dir))


def _train_chunk(chunk: list[tuple[int, int]]) -> dict[str, np.ndarray]:
    """Train one chunk; returns its archs, seeds and curves (``<split>/<metric>``), which
    the calling process stores, so a worker anywhere needs no shared file system."""
    assert _worker is not None
    space, protocol, dataset = _worker
    keys = [*TRAIN_METRICS, *((s, m) for s in protocol.eval_splits for m in EVAL_METRICS)]
    curves = {key: np.empty((len(chunk), protocol.epochs)) for key in keys}
    for row, (arch, seed) in enumerate(chunk):
        trained = train_cell(space, arch, protocol, dataset, seed)
        for key in keys:
            curves[key][row] = trained.values[key]
    return {
        "archs": np.array([a for a, _ in chunk]),
        "seeds": np.array([s for _, s in chunk]),
        **{f"{split}/{metric}": values for (split, metric), values in curves.items()},
    }


def _identity(spec: TabulateSpec) -> dict[str, object]:
    """What a parts folder must have been made for to be resumed by this build."""
    return {
        "benchmark_id": spec.benchmark_id,
        "space": spec.space.name,
        "protocol_hash": spec.protocol.protocol_hash,
        "chunk_size": CHUNK_SIZE,
        "harness": __version__,
    }


def _duration(seconds: float) -> str:
    """``1d 02:03:04``: a whole NB201-on-CIFAR build runs for weeks, past a clock's 24 h."""
    if seconds != seconds or seconds == float("inf"):
        return "?"
    days, rest = divmod(int(seconds), 86_400)
    clock = time.strftime("%H:%M:%S", time.gmtime(rest))
    return f"{days}d {clock}" if days else clock


def _progress(now: int, now_total: int, done: int, total: int, started: float) -> str:
    """Progress of this invocation's trainings (``--max-chunks`` may limit them) and of
    the whole table, each with its own ETA at the rate measured so far."""
    elapsed = time.perf_counter() - started
    rate = now / elapsed if elapsed > 0 else 0.0
    eta_now = (now_total - now) / rate if rate > 0 else float("inf")
    eta_all = (total - done) / rate if rate > 0 else float("inf")
    return (
        f"tabulate: {now}/{now_total} trainings of this run, ETA {_duration(eta_now)}; "
        f"table {done}/{total} ({100 * done / total:.1f}%), ETA {_duration(eta_all)}; "
        f"{rate * 60:.0f} per minute"
    )


def _where(executor: str, workers: int, scheduler: str | None) -> str:
    if scheduler is not None:
        return f"on the Dask cluster at {scheduler}"
    if executor == "dask":
        return f"on a local Dask cluster of {workers} worker(s)"
    if executor == "serial" or workers == 1:
        return "in this process"
    return f"in {workers} worker processes"


def train_all(
    spec: TabulateSpec,
    workers: int | None = None,
    max_chunks: int | None = None,
    executor: str | None = None,
    scheduler: str | None = None,
) -> tuple[Path, bool]:
    """Train pending chunks (at most ``max_chunks``); returns the parts folder and whether
    every chunk is now done.

    ``executor``: ``processes`` (the default; ``workers`` processes, the spec's count
    unless given), ``serial``, or ``dask`` (a loopback cluster of ``workers`` processes, or
    the cluster at ``scheduler``).
    """
    executor = resolve_executor(executor, scheduler, default="processes")
    check_output(spec.out, "[table] out")  # a device or FIFO there is refused before training
    workers = workers or spec.workers
    protocol = spec.protocol
    open_dataset(protocol, spec.data_root, spec.split_dir)  # fail fast, before any worker
    parts = parts_folder(spec.out)
    check_parts(parts, _identity(spec))
    chunks = work_chunks(spec.space, protocol)
    done = chunks_done(parts)
    total = sum(len(c) for c in chunks)
    finished = sum(len(chunks[i]) for i in done)
    pending = [(i, chunk) for i, chunk in enumerate(chunks) if i not in done]
    todo = pending if max_chunks is None else pending[:max_chunks]
    log.info(
        "tabulate: %d chunks, %d already done in %s; %d to train, %d now, %s",
        len(chunks),
        len(done),
        parts,
        len(pending),
        len(todo),
        _where(executor, workers, scheduler),
    )
    started, now, now_total = time.perf_counter(), 0, sum(len(chunk) for _, chunk in todo)

    def store(index: int, arrays: dict[str, np.ndarray]) -> None:
        nonlocal finished, now
        write_part(parts, index, arrays)
        finished += len(arrays["archs"])
        now += len(arrays["archs"])
        log.info(_progress(now, now_total, finished, total, started))

    run_chunks(
        _train_chunk,
        todo,
        store,
        executor=executor,
        workers=workers,
        initializer=_init_worker,
        initargs=(spec.space.name, protocol, spec.data_root, spec.split_dir),
        scheduler=scheduler,
        fingerprint=source_sha256,
    )
    return parts, len(todo) == len(pending)


def assemble(spec: TabulateSpec, parts: Path) -> str:
    """Write the table from the finished parts; returns its sha256."""
    protocol, space = spec.protocol, spec.space
    classes = space.isomorphism_classes()
    representatives = np.unique(classes)
    row_of = {int(rep): i for i, rep in enumerate(representatives)}
    slot_of = {seed: i for i, seed in enumerate(protocol.seeds)}
    shape = (len(representatives), len(protocol.seeds), protocol.epochs)
    keys = [*TRAIN_METRICS, *((s, m) for s in protocol.eval_splits for m in EVAL_METRICS)]
    trained = {key: np.full(shape, np.nan) for key in keys}
    filled = np.zeros(shape[:2], dtype=bool)
    for part in read_parts(parts):
        rows = [row_of[int(a)] for a in part["archs"]]
        slots = [slot_of[int(s)] for s in part["seeds"]]
        filled[rows, slots] = True
        for key in keys:
            trained[key][rows, slots] = part["/".join(key)]
    if not filled.all():
        raise TableError(
            f"{parts}: {int((~filled).sum())} trainings are missing; run tabulate again"
        )
    expand = np.array([row_of[int(c)] for c in classes])
    seeds = tuple(str(s) for s in protocol.seeds)
    epochs = tuple(range(1, protocol.epochs + 1))
    units = {
        "loss": "nats",
        "accuracy": "percent",
        "epoch_time_s": "seconds",
        "eval_time_s": "seconds",
    }
    derivation = (
        "trained once per isomorphism class; this cell holds its class representative's curves"
    )
    variables = {}
    for split, metric in keys:
        values = trained[(split, metric)][expand].astype(np.float32)
        variables[(protocol.dataset, protocol.schedule, split, metric)] = Variable(
            values=values,
            mask=np.ones(values.shape, dtype=bool),
            seeds=seeds,
            epochs=epochs,
            unit=units[metric],
            source="harness tabulate",
            derivation=derivation,
        )
    total = trained[("train", "epoch_time_s")].sum(axis=2, keepdims=True)[expand].astype(np.float32)
    variables[(protocol.dataset, protocol.schedule, "train", "total_time_s")] = Variable(
        values=total,
        mask=np.ones(total.shape, dtype=bool),
        seeds=seeds,
        epochs=(protocol.epochs,),
        unit="seconds",
        source="harness tabulate",
        derivation=derivation,
    )
    dataset = open_dataset(protocol, spec.data_root, spec.split_dir)
    shape_args = {
        "channels": protocol.channels,
        "cells_per_stage": protocol.cells_per_stage,
        "input_shape": dataset.input_shape,
        "num_classes": dataset.num_classes,
    }
    counts = [space.size_counts(i, **shape_args) for i in range(space.num_archs)]
    params = np.array([c["params"] for c in counts], dtype=np.float32)
    flops = np.array([c["flops"] for c in counts], dtype=np.float32)
    ones = np.ones(space.num_archs, dtype=bool)
    properties = {
        (protocol.dataset, "params"): (params, ones),
        (protocol.dataset, "flops"): (flops, ones),
        (protocol.dataset, "representative"): (classes.astype(np.float32), ones),
    }
    configure_torch(protocol)  # so the recorded torch settings are the workers' own
    environment = capture()
    digest = write_table(
        spec.out,
        benchmark_id=spec.benchmark_id,
        space=space.name,
        archs=space.strings(),
        variables=variables,
        properties=properties,
        protocol=protocol.to_dict(),
        cost_model={
            "train": "measured wall-clock seconds per training epoch on the build machine",
            "validation_pass": f"measured seconds per evaluation of each eval split "
            f"({', '.join(protocol.eval_splits)}), stored as <split>/eval_time_s",
            "isomorphs": "a cell's times are its class representative's",
        },
        provenance={
            "builder": "harness tabulate",
            "harness_version": __version__,
            "sources": [],
            "dataset": dataset.describe(),
            "split_hash": protocol.split_hash,
            "environment": environment,
            "isomorphism": f"{space.name} canonical-form classes "
            f"({len(representatives):,}); representative = smallest index",
        },
        notes={
            "isomorphs": derivation,
            "params": "parameter count of each cell's own network (not its representative's)",
            "flops": "multiply-accumulates of convolutions and the classifier for one input",
        },
    )
    update_manifest(spec, digest, environment)
    return digest


def update_manifest(spec: TabulateSpec, digest: str, environment: dict[str, str]) -> None:
    """Record the table in ``manifest.json`` beside it: hash, protocol, where it was built."""
    manifest = spec.out.parent / "manifest.json"
    entries = json.loads(manifest.read_text()) if manifest.exists() else {}
    before = entries.get(spec.out.name, {})
    entries[spec.out.name] = {
        "sha256": digest,
        "size_bytes": spec.out.stat().st_size,
        "benchmark_id": spec.benchmark_id,
        "built_by": f"harness tabulate {spec.path.name} (harness {__version__})",
        "protocol": spec.protocol.to_dict(),
        "protocol_hash": spec.protocol.protocol_hash,
        "split_hash": spec.protocol.split_hash,
        "trainings": len(np.unique(spec.space.isomorphism_classes())) * len(spec.protocol.seeds),
        "environment": environment,
    }
    if before.get("sha256") == digest and "notes" in before:
        # notes measured on these exact bytes (e.g. the proxy fidelity) stay true
        entries[spec.out.name]["notes"] = before["notes"]
    write_text(manifest, json.dumps(entries, indent=2, sort_keys=True) + "\n")


def tabulate(
    spec: TabulateSpec,
    workers: int | None = None,
    max_chunks: int | None = None,
    executor: str | None = None,
    scheduler: str | None = None,
) -> str | None:
    """Train what is missing, then write the table; returns its sha256, or None while
    chunks remain (after ``max_chunks``). Executors as in :func:`train_all`."""
    parts, complete = train_all(spec, workers, max_chunks, executor, scheduler)
    return assemble(spec, parts) if complete else None

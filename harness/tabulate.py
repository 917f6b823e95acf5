"""Build a benchmark table by training every cell of the NB201 space under a protocol.

Only one representative per isomorphism class (NATS-Bench's UniqueString classes; the
smallest official index) is trained, once per protocol seed; every other cell of the
class gets its representative's curves, and the mapping is stored in the table. Parameter
counts and FLOPs are computed for every cell itself.

Work is split into fixed chunks of trainings. Each finished chunk is written atomically
to ``<out>.parts/``, so a killed build resumes without redoing finished chunks; a parts
folder made under another protocol is refused. Worker processes train with the
protocol's thread count (one, for tabulated protocols), and progress with an ETA goes to
stderr.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import harness
from harness.atomic import replacing, write_text
from harness.data import Dataset
from harness.environment import capture
from harness.errors import SpecError, TableError
from harness.models.counts import analytic_parameter_count, count_flops
from harness.protocol import Protocol
from harness.spaces import get_space
from harness.spec import read_toml
from harness.table import Variable, write_table
from harness.train import (
    EVAL_METRICS,
    TRAIN_METRICS,
    configure_torch,
    open_dataset,
    train_cell,
)

CHUNK_SIZE = 24


@dataclass(frozen=True)
class TabulateSpec:
    """A ``harness tabulate`` spec: the protocol plus where and how to build."""

    path: Path
    benchmark_id: str
    out: Path
    workers: int
    data_root: Path | None
    split_dir: Path | None
    protocol: Protocol


def load_tabulate_spec(path: Path) -> TabulateSpec:
    raw = read_toml(path)
    for section in ("tabulate", "protocol"):
        if section not in raw:
            raise SpecError(f"{path}: [{section}] section is required")
    extra = sorted(set(raw) - {"tabulate", "protocol"})
    if extra:
        raise SpecError(f"{path}: [{extra[0]}] is not a known section; allowed: tabulate, protocol")
    section = raw["tabulate"]
    allowed = {"benchmark_id", "out", "workers", "data_root", "split_dir"}
    unknown = sorted(set(section) - allowed)
    if unknown:
        raise SpecError(
            f"{path}: [tabulate.{unknown[0]}] is not a known key; "
            f"allowed: {', '.join(sorted(allowed))}"
        )
    base = Path(path).resolve().parent
    for key in ("benchmark_id", "out"):
        if not isinstance(section.get(key), str):
            raise SpecError(f"{path}: [tabulate.{key}] is required (a string)")
    workers = section.get("workers", 1)
    if not isinstance(workers, int) or workers < 1:
        raise SpecError(f"{path}: [tabulate.workers] must be a positive integer")

    def optional_path(key: str) -> Path | None:
        value = section.get(key)
        return None if value is None else (base / value).resolve()

    return TabulateSpec(
        path=Path(path),
        benchmark_id=section["benchmark_id"],
        out=(base / section["out"]).resolve(),
        workers=workers,
        data_root=optional_path("data_root"),
        split_dir=optional_path("split_dir"),
        protocol=Protocol.from_dict(raw["protocol"], f"{path}: [protocol]"),
    )


def work_chunks(protocol: Protocol) -> list[list[tuple[int, int]]]:
    """Every (representative, seed) training, in a fixed order, cut into fixed chunks."""
    representatives = np.unique(get_space().isomorphism_classes())
    work = [(int(rep), seed) for rep in representatives for seed in protocol.seeds]
    return [work[i : i + CHUNK_SIZE] for i in range(0, len(work), CHUNK_SIZE)]


_worker: tuple[Protocol, Dataset] | None = None


def _init_worker(protocol: Protocol, root: Path | None, split_dir: Path | None) -> None:
    global _worker
    _worker = (protocol, open_dataset(protocol, root, split_dir))


def _train_chunk(index: int, chunk: list[tuple[int, int]], parts: Path) -> tuple[int, int]:
    """Train one chunk and store its curves atomically as ``chunk-<index>.npz``."""
    assert _worker is not None
    protocol, dataset = _worker
    space = get_space()
    keys = [*TRAIN_METRICS, *((s, m) for s in protocol.eval_splits for m in EVAL_METRICS)]
    curves = {key: np.empty((len(chunk), protocol.epochs)) for key in keys}
    for row, (arch, seed) in enumerate(chunk):
        trained = train_cell(space.ops_of_index(arch), protocol, dataset, seed)
        for key in keys:
            curves[key][row] = trained.values[key]
    with replacing(parts / f"chunk-{index:05d}.npz", suffix=".npz") as temporary:
        np.savez(
            temporary,
            archs=np.array([a for a, _ in chunk]),
            seeds=np.array([s for _, s in chunk]),
            **{f"{split}/{metric}": values for (split, metric), values in curves.items()},
        )
    return index, len(chunk)


def _check_parts(parts: Path, spec: TabulateSpec) -> None:
    """A parts folder belongs to one protocol and chunking; refuse to mix builds."""
    identity = {
        "benchmark_id": spec.benchmark_id,
        "protocol_hash": spec.protocol.protocol_hash,
        "chunk_size": CHUNK_SIZE,
        "harness": harness.__version__,
    }
    manifest = parts / "build.json"
    if manifest.exists():
        found = json.loads(manifest.read_text())
        if found != identity:
            raise TableError(
                f"{parts} holds a build of another protocol or version ({found}); "
                "remove the folder to start over"
            )
        return
    parts.mkdir(parents=True, exist_ok=True)
    manifest.write_text(json.dumps(identity, sort_keys=True))


def _progress(done: int, total: int, started: float, done_at_start: int) -> str:
    elapsed = time.perf_counter() - started
    rate = (done - done_at_start) / elapsed if elapsed > 0 else 0.0
    eta = (total - done) / rate if rate > 0 else float("inf")
    eta_text = time.strftime("%H:%M:%S", time.gmtime(eta)) if eta != float("inf") else "?"
    return (
        f"tabulate: {done}/{total} trainings ({100 * done / total:.1f}%), "
        f"{rate * 60:.0f} per minute, ETA {eta_text}"
    )


def _chunks_done(parts: Path) -> set[int]:
    return {int(p.stem.split("-")[1]) for p in parts.glob("chunk-*.npz")}


def train_all(
    spec: TabulateSpec, workers: int | None = None, max_chunks: int | None = None
) -> tuple[Path, bool]:
    """Train pending chunks (at most ``max_chunks``); returns the parts folder and whether
    every chunk is now done."""
    protocol = spec.protocol
    open_dataset(protocol, spec.data_root, spec.split_dir)  # fail fast, before any worker
    parts = spec.out.with_name(spec.out.name + ".parts")
    _check_parts(parts, spec)
    chunks = work_chunks(protocol)
    done = _chunks_done(parts)
    total = sum(len(c) for c in chunks)
    finished = sum(len(chunks[i]) for i in done)
    pending = [(i, chunk) for i, chunk in enumerate(chunks) if i not in done]
    todo = pending if max_chunks is None else pending[:max_chunks]
    print(
        f"tabulate: {len(chunks)} chunks, {len(done)} already done in {parts}; "
        f"{len(pending)} to train, {len(todo)} now, with {workers or spec.workers} worker(s)",
        file=sys.stderr,
    )
    started, at_start = time.perf_counter(), finished
    with ProcessPoolExecutor(
        max_workers=workers or spec.workers,
        initializer=_init_worker,
        initargs=(protocol, spec.data_root, spec.split_dir),
    ) as pool:
        futures = [pool.submit(_train_chunk, i, chunk, parts) for i, chunk in todo]
        for future in as_completed(futures):
            finished += future.result()[1]
            print(_progress(finished, total, started, at_start), file=sys.stderr, flush=True)
    return parts, len(todo) == len(pending)


def _read_parts(parts: Path) -> Iterator[dict[str, np.ndarray]]:
    for path in sorted(parts.glob("chunk-*.npz")):
        with np.load(path, allow_pickle=False) as data:
            yield {key: data[key] for key in data.files}


def assemble(spec: TabulateSpec, parts: Path) -> str:
    """Write the table from the finished parts; returns its sha256."""
    protocol = spec.protocol
    space = get_space()
    classes = space.isomorphism_classes()
    representatives = np.unique(classes)
    row_of = {int(rep): i for i, rep in enumerate(representatives)}
    slot_of = {seed: i for i, seed in enumerate(protocol.seeds)}
    shape = (len(representatives), len(protocol.seeds), protocol.epochs)
    keys = [*TRAIN_METRICS, *((s, m) for s in protocol.eval_splits for m in EVAL_METRICS)]
    trained = {key: np.full(shape, np.nan) for key in keys}
    filled = np.zeros(shape[:2], dtype=bool)
    for part in _read_parts(parts):
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
    params = np.array(
        [
            analytic_parameter_count(space.ops_of_index(i), **shape_args)
            for i in range(space.num_archs)
        ],
        dtype=np.float32,
    )
    flops = np.array(
        [count_flops(space.ops_of_index(i), **shape_args) for i in range(space.num_archs)],
        dtype=np.float32,
    )
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
        space="nb201",
        archs=[space.string_of_index(i) for i in range(space.num_archs)],
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
            "harness_version": harness.__version__,
            "sources": [],
            "dataset": dataset.describe(),
            "environment": environment,
            "isomorphism": "NATS-Bench UniqueString classes (6,466); "
            "representative = smallest index",
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
    entries[spec.out.name] = {
        "sha256": digest,
        "size_bytes": spec.out.stat().st_size,
        "benchmark_id": spec.benchmark_id,
        "built_by": f"harness tabulate {spec.path.name} (harness {harness.__version__})",
        "protocol": spec.protocol.to_dict(),
        "protocol_hash": spec.protocol.protocol_hash,
        "split_hash": spec.protocol.split_hash,
        "trainings": len(np.unique(get_space().isomorphism_classes())) * len(spec.protocol.seeds),
        "environment": environment,
    }
    write_text(manifest, json.dumps(entries, indent=2, sort_keys=True) + "\n")


def tabulate(
    spec: TabulateSpec, workers: int | None = None, max_chunks: int | None = None
) -> str | None:
    """Train what is missing, then write the table; returns its sha256, or None while
    chunks remain (after ``max_chunks``)."""
    parts, complete = train_all(spec, workers, max_chunks)
    return assemble(spec, parts) if complete else None

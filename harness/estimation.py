"""``harness estimate``: score a space's architectures with estimators into an estimate file.

An estimate spec names the space, a proxy protocol (:mod:`harness.proxy_protocol`), the
estimators (built-in kinds, entry points or ``module:Class``, as for strategies), and the
ground truth they are judged against (a table, pinned by sha256, and one metric per
input). Every architecture of the space is scored (or a pinned uniform sample), once per
input, estimator and init seed.

The work is cut into fixed chunks of architectures and run by any executor of
:mod:`harness.executors` (worker processes or Dask). Each finished chunk is kept in
``<out>.parts/`` (:mod:`harness.parts`), so a build killed at any point resumes without
redoing finished chunks. The estimate file uses the table format (``tabular/FORMAT.md``):
variable ``<input>/init/<estimator>/score`` holds the scores and
``<input>/init/<estimator>/cost_s`` the measured seconds of each, with one seed slot per
init seed and the single epoch 0 (at initialisation); an architecture a pinned sample
leaves out, or one the estimator cannot score, is masked. The file is recorded in
``manifest.json`` beside it (sha256, proxy protocol, estimators' origins, environment),
like a tabulated table. Scores are deterministic; the costs are measured, so each build
has its own bytes and the spec may pin the file it reports on.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness.atomic import check_output, read_regular, write_text
from harness.config import (
    Field,
    Problems,
    Section,
    SpecFormat,
    at,
    config_hash,
    read_toml,
    spec_error,
    validate,
)
from harness.errors import ConfigError, TableError
from harness.estimators import checked_score, estimator_class, make_estimator, resolve_params
from harness.evaluators.tabular import resolve_metric
from harness.executors import resolve_executor, run_chunks
from harness.parts import check_parts, chunks_done, parts_folder, read_parts, write_part
from harness.plugins import origin
from harness.proxy_protocol import (
    INPUT_FIELDS,
    PROXY_FIELDS,
    InputData,
    ProxyProtocol,
    load_input,
)
from harness.resume import source_sha256
from harness.seeding import stream_generator
from harness.spaces import get_space
from harness.spaces.base import SearchSpace
from harness.table import Table, Variable, write_table
from harness.values import MetricRef
from harness.version import __version__

log = logging.getLogger(__name__)

#: architectures per chunk: a few seconds to minutes of work, so a kill loses little
CHUNK_SIZE = 256
ESTIMATE_FIELDS = {
    "name": Field(str, help="names the MLflow experiment and the report"),
    "title": Field(str, None, optional=True, help="the report's heading (default: the name)"),
    "space": Field(str, help="the search space whose architectures are scored"),
    "out": Field(str, help="the estimate file to write, relative to the spec"),
    "sha256": Field(str, None, optional=True, help="pin of the estimate file reported on"),
    "results": Field(str, help="the report folder, relative to the spec"),
    "workers": Field(int, 1, low=1, high=1024, help="worker processes that score chunks"),
    "sample": Field(int, None, optional=True, low=1, help="score a pinned uniform sample"),
    "sample_seed": Field(int, 0, low=0, high=2**63 - 1, help="the seed that draws the sample"),
    "data_root": Field(str, None, optional=True, help="dataset folder (CIFAR, ImageNet16, ...)"),
    "split_dir": Field(str, None, optional=True, help="folder of NB201's split files"),
    "notes": Field(list, [], items=str, help="lines the report quotes"),
}
ESTIMATOR_FIELDS = {
    "name": Field(str, help="the variable name in the estimate file"),
    "kind": Field(str, help="built-in kind, entry point or package.module:Class"),
    "params": Field(dict, {}, help="the kind's hyperparameters (below); the rest default"),
}
GROUND_TRUTH_FIELDS = {
    "table": Field(str, help="the table holding the ground truth, relative to the spec"),
    "sha256": Field(str, help="pin of that table"),
    "build": Field(dict, None, optional=True, help="how to build the table if it is missing"),
    "metric": Field(dict, help="input name -> dataset/schedule/split/metric"),
}
REFERENCE_FIELDS = {
    "label": Field(str, help="the row's name in the report"),
    "input": Field(str, help="the input whose ground truth it is judged against"),
    "metric": Field(str, help="the table's variable used as an estimate"),
    "seed": Field(str, None, optional=True, help="the seed slot used (default: the first)"),
    "cost": Field(str, help="the table's variable of its cost in seconds"),
}


ESTIMATE_SPEC = SpecFormat(
    title="Estimate spec",
    command="harness estimate SPEC",
    about="Estimators scoring a space's architectures into an estimate file, judged against "
    "a table's ground truth; `benchmarks/zero-cost/digits.toml` is a complete one.",
    sections=(
        Section("estimate", ESTIMATE_FIELDS, "What is scored, and where it goes.", required=True),
        Section(
            "proxy",
            PROXY_FIELDS,
            "The proxy protocol: network settings, init seeds and inputs, pinned and hashed.",
            required=True,
        ),
        Section(
            "proxy.input",
            INPUT_FIELDS,
            "One input: a dataset split (`dataset`, `split`, `split_sha256`) or a data-free "
            "`shape` and `classes`.",
            required=True,
            repeated=True,
        ),
        Section("estimator", ESTIMATOR_FIELDS, "One per estimator.", required=True, repeated=True),
        Section(
            "ground_truth",
            GROUND_TRUTH_FIELDS,
            "What the estimators are judged against.",
            required=True,
        ),
        Section(
            "reference",
            REFERENCE_FIELDS,
            "A training read from the table, judged as an estimator beside the others.",
            repeated=True,
        ),
        Section(
            "published",
            {},
            'Published values the report puts beside ours: `source = "citation"`, then one '
            "table per estimator name mapping an input to its published Spearman ρ.",
        ),
    ),
)


@dataclass(frozen=True)
class EstimatorSpec:
    """One ``[[estimator]]``: its variable name, the class it names and its parameters."""

    name: str
    kind: str
    params: dict[str, Any]


@dataclass(frozen=True)
class Reference:
    """A training read from the table, judged as an estimator (full training included)."""

    label: str
    input: str
    metric: MetricRef
    seed: str | None
    cost: MetricRef


@dataclass(frozen=True)
class EstimateSpec:
    """A ``harness estimate`` spec, validated, with paths resolved against its folder."""

    path: Path
    name: str
    title: str
    space: SearchSpace
    out: Path
    sha256: str | None
    results: Path
    workers: int
    sample: int | None
    sample_seed: int
    data_root: Path | None
    split_dir: Path | None
    notes: tuple[str, ...]
    protocol: ProxyProtocol
    estimators: tuple[EstimatorSpec, ...]
    truth_table: Path
    truth_sha256: str
    truth_build: dict[str, Any] | None
    truth: dict[str, MetricRef]
    references: tuple[Reference, ...]
    published_source: str
    published: dict[str, dict[str, float]]
    resolved: dict[str, Any]

    @property
    def spec_hash(self) -> str:
        return config_hash(self.resolved)

    def archs(self) -> np.ndarray:
        """The architectures scored: all, or the pinned sample (sorted indices)."""
        n = self.space.num_archs
        if self.sample is None or self.sample >= n:
            return np.arange(n)
        chosen = stream_generator(self.sample_seed, "benchmark").choice(n, self.sample, False)
        return np.sort(chosen)


def is_estimate_spec(path: Path) -> bool:
    """Whether the TOML file at ``path`` is an estimate spec (it has ``[estimate]``)."""
    return "estimate" in read_toml(path)


def load_estimate_spec(path: Path) -> EstimateSpec:
    """Read and validate an estimate spec; errors name the file and field."""
    raw = read_toml(path)
    try:
        return _parse(raw, Path(path))
    except ConfigError as error:
        raise spec_error(path, error) from None


def _relative(base: Path, text: str | None) -> Path | None:
    return None if text is None else (base / text).resolve()


def _parse(raw: dict[str, Any], path: Path) -> EstimateSpec:
    base = path.resolve().parent
    # every section is checked on its own, so that one reading reports every problem; a
    # section that needs another (ground truth needs the inputs of [proxy]) waits for it
    problems = Problems()
    problems.errors += ESTIMATE_SPEC.section_problems(raw)
    section = space = protocol = truth_raw = estimators = None
    truth: dict[str, MetricRef] = {}
    source, published = "", {}
    if "estimate" in raw:
        with problems.check("estimate"):
            section = validate(raw["estimate"], ESTIMATE_FIELDS)
            checks = Problems()
            with checks.check():
                _check_sha(section["sha256"], "sha256")
            with checks.check("space"):
                space = get_space(section["space"])
            checks.raise_any()
    if "proxy" in raw:
        with problems.check("proxy"):
            protocol = ProxyProtocol.from_dict(raw["proxy"])
    inputs = None if protocol is None else {i.name: i for i in protocol.inputs}
    if "estimator" in raw:
        with problems.check():
            estimators = _estimator_specs(raw["estimator"], protocol)
    if "ground_truth" in raw:
        with problems.check("ground_truth"):
            truth_raw, truth = _truth(raw["ground_truth"], inputs)
    references: list[Reference] = []
    with problems.check():
        references = _references(raw.get("reference", []), inputs)
    if inputs is not None and estimators is not None:  # rows name estimators and inputs
        with problems.check("published"):
            source, published = _published(
                raw.get("published", {}), [e.name for e in estimators], inputs
            )
    problems.raise_any()
    assert None not in (section, space, protocol, estimators, truth_raw)
    resolved = {
        "estimate": {
            k: v
            for k, v in section.items()
            if k not in ("out", "results", "workers", "data_root", "split_dir", "sha256")
        },
        "proxy": protocol.to_dict(),
        "estimators": [{"name": e.name, "kind": e.kind, "params": e.params} for e in estimators],
        "ground_truth": {
            "sha256": truth_raw["sha256"],
            "metric": {k: str(v) for k, v in truth.items()},
        },
        "references": [
            {
                "label": r.label,
                "input": r.input,
                "metric": str(r.metric),
                "seed": r.seed,
                "cost": str(r.cost),
            }
            for r in references
        ],
        "published": {"source": source, "values": published},
    }
    return EstimateSpec(
        path=path,
        name=section["name"],
        title=section["title"] or section["name"],
        space=space,
        out=_relative(base, section["out"]),
        sha256=section["sha256"],
        results=_relative(base, section["results"]),
        workers=section["workers"],
        sample=section["sample"],
        sample_seed=section["sample_seed"],
        data_root=_relative(base, section["data_root"]),
        split_dir=_relative(base, section["split_dir"]),
        notes=tuple(section["notes"]),
        protocol=protocol,
        estimators=tuple(estimators),
        truth_table=_relative(base, truth_raw["table"]),
        truth_sha256=truth_raw["sha256"],
        truth_build=truth_raw["build"],
        truth=truth,
        references=tuple(references),
        published_source=source,
        published=published,
        resolved=resolved,
    )


def _check_sha(value: str | None, field: str) -> None:
    if value is not None and not (len(value) == 64 and all(c in "0123456789abcdef" for c in value)):
        raise ConfigError(f"must be 64 lowercase hex digits, got {value!r}", field)


def _estimator_specs(raw: Any, protocol: ProxyProtocol | None) -> list[EstimatorSpec]:
    """The ``[[estimator]]`` tables, each checked on its own; whether an estimator's
    inputs suit it is checked once ``[proxy]`` is valid."""
    if not isinstance(raw, list) or not raw:
        raise ConfigError("must be one or more [[estimator]] tables", "estimator")
    estimators = []
    problems = Problems()
    for number, entry in enumerate(raw):
        with problems.check(f"estimator.{number}"):
            given = validate(entry, ESTIMATOR_FIELDS)
            checks = Problems()
            if "/" in given["name"] or not given["name"]:
                checks.add(ConfigError("must be a non-empty name without '/'", "name"))
            cls = None
            with checks.check("kind"):
                cls = estimator_class(given["kind"])
            if cls is not None:  # a kind that cannot be loaded has no params to check
                with checks.check("params"):
                    params = resolve_params(given["kind"], given["params"])
                for proxy_input in protocol.inputs if protocol is not None else ():
                    if cls.needs_data and not proxy_input.has_data:
                        checks.add(
                            ConfigError(
                                f"estimator {given['kind']!r} needs examples and labels, but "
                                f"input {proxy_input.name!r} is data-free (a shape only); give "
                                "it a 'dataset', or use a data-free estimator (params, flops, "
                                "synflow, zen)",
                                "kind",
                            )
                        )
            checks.raise_any()
            estimators.append(EstimatorSpec(given["name"], given["kind"], params))
    names = [e.name for e in estimators]
    if len(set(names)) != len(names):
        problems.add(ConfigError("names must differ", "estimator"))
    problems.raise_any()
    return estimators


def _truth(raw: Any, inputs: dict[str, Any] | None) -> tuple[dict[str, Any], dict[str, MetricRef]]:
    """``[ground_truth]`` and its metric per input (matched to the inputs once ``[proxy]``
    is valid)."""
    given = validate(raw, GROUND_TRUTH_FIELDS)
    problems = Problems()
    with problems.check():
        _check_sha(given["sha256"], "sha256")
    truth = {}
    for name, text in given["metric"].items():
        with problems.check(f"metric.{name}"):
            if inputs is not None and name not in inputs:
                raise ConfigError(f"is not an input of [proxy]; inputs: {', '.join(inputs)}")
            truth[name] = MetricRef.parse(text)
    missing = sorted(set(inputs or ()) - set(given["metric"]))
    if missing:
        problems.add(ConfigError(f"names no ground truth for input {missing[0]!r}", "metric"))
    problems.raise_any()
    return given, truth


def _references(raw: Any, inputs: dict[str, Any] | None) -> list[Reference]:
    """The ``[[reference]]`` tables, each checked on its own."""
    if not isinstance(raw, list):
        raise ConfigError("must be [[reference]] tables", "reference")
    references = []
    problems = Problems()
    for number, entry in enumerate(raw):
        with problems.check(f"reference.{number}"):
            given = validate(entry, REFERENCE_FIELDS)
            checks = Problems()
            if inputs is not None and given["input"] not in inputs:
                checks.add(ConfigError(f"is not an input of [proxy]: {given['input']!r}", "input"))
            with checks.check("metric"):
                metric = MetricRef.parse(given["metric"])
            with checks.check("cost"):
                cost = MetricRef.parse(given["cost"])
            checks.raise_any()
            references.append(
                Reference(given["label"], given["input"], metric, given["seed"], cost)
            )
    problems.raise_any()
    return references


def _published(
    raw: Any, estimators: list[str], inputs: dict[str, Any]
) -> tuple[str, dict[str, dict[str, float]]]:
    """``[published]``: ``source`` and, per estimator, Spearman ρ per input."""
    if not isinstance(raw, dict):
        raise ConfigError("must be a table")
    problems = Problems()
    source = raw.get("source", "")
    if not isinstance(source, str):
        problems.add(ConfigError("must be a string", "source"))
    values: dict[str, dict[str, float]] = {}
    for name, row in raw.items():
        if name == "source":
            continue
        with problems.check(name):
            if name not in estimators:
                raise ConfigError(f"is not an [[estimator]] name; names: {', '.join(estimators)}")
            if not isinstance(row, dict):
                raise ConfigError("must map input names to Spearman ρ values")
            values[name] = {}
            for input_name, value in row.items():
                with problems.check(f"{name}.{input_name}"):
                    if input_name not in inputs:
                        raise ConfigError(f"is not an input of [proxy]: {', '.join(inputs)}")
                    values[name][input_name] = Field(float, low=-1, high=1).check(value)
    problems.raise_any()
    return source, values


# --- scoring ----------------------------------------------------------------------------


def _identity(spec: EstimateSpec) -> dict[str, Any]:
    """What a parts folder must have been made for: the scores' every input, and the code."""
    return {
        "space": spec.space.name,
        "archs": config_hash([int(a) for a in spec.archs()]),
        "proxy_protocol_hash": spec.protocol.protocol_hash,
        "estimators": spec.resolved["estimators"],
        "estimator_sources": [
            origin(estimator_class(e.kind))["source_sha256"] for e in spec.estimators
        ],
        "chunk_size": CHUNK_SIZE,
        "harness": __version__,
    }


_worker: tuple[EstimateSpec, dict[tuple[str, str], Any]] | None = None


def _estimators(spec: EstimateSpec, inputs: dict[str, InputData]) -> dict[tuple[str, str], Any]:
    """One set-up estimator per (input, estimator)."""
    built = {}
    for input_name, data in inputs.items():
        for entry in spec.estimators:
            with at(f"estimator.{entry.name}"):
                built[(input_name, entry.name)] = make_estimator(
                    entry.kind, spec.space, spec.protocol, data, entry.params
                )
    return built


def _load_inputs(spec: EstimateSpec) -> dict[str, InputData]:
    inputs = {}
    for number, proxy_input in enumerate(spec.protocol.inputs):
        with at(f"proxy.input.{number}"):
            inputs[proxy_input.name] = load_input(proxy_input, spec.data_root, spec.split_dir)
    return inputs


def _init_worker(spec: EstimateSpec) -> None:
    global _worker
    _worker = (spec, _estimators(spec, _load_inputs(spec)))


def _score_chunk(archs: list[int]) -> dict[str, np.ndarray]:
    """Score one chunk of architectures under every (input, estimator, seed); returns
    arrays the calling process stores, so a worker anywhere needs no shared file system."""
    assert _worker is not None
    spec, estimators = _worker
    seeds = spec.protocol.seeds
    out: dict[str, np.ndarray] = {"archs": np.asarray(archs, dtype=np.int64)}
    for (input_name, name), estimator in estimators.items():
        values = np.empty((len(archs), len(seeds)))
        costs = np.empty((len(archs), len(seeds)))
        for row, arch in enumerate(archs):
            for slot, seed in enumerate(seeds):
                score = checked_score(estimator, int(arch), seed)
                values[row, slot], costs[row, slot] = score.value, score.cost_s
        out[f"{input_name}/{name}/score"] = values
        out[f"{input_name}/{name}/cost_s"] = costs
        out[f"{input_name}/{name}/setup_s"] = np.array(estimator.setup_cost_s)
    return out


def _chunks(spec: EstimateSpec) -> list[list[int]]:
    archs = [int(a) for a in spec.archs()]
    return [archs[i : i + CHUNK_SIZE] for i in range(0, len(archs), CHUNK_SIZE)]


def score_all(
    spec: EstimateSpec,
    workers: int | None = None,
    max_chunks: int | None = None,
    executor: str | None = None,
    scheduler: str | None = None,
) -> tuple[Path, bool]:
    """Score pending chunks (at most ``max_chunks``); returns the parts folder and whether
    every chunk is now done. Executors as in :func:`harness.tabulate.train_all`."""
    executor = resolve_executor(executor, scheduler, default="processes")
    workers = workers or spec.workers
    check_output(spec.out, "[estimate] out")  # a device or FIFO there is refused unwritten
    # fail fast, before any worker: inputs load, every estimator sets up and scores the
    # first architecture at every seed (a plugin that raises ends here, in one line)
    estimators = _estimators(spec, _load_inputs(spec))
    first = int(spec.archs()[0])
    for each in estimators.values():
        for seed in spec.protocol.seeds:
            checked_score(each, first, seed)
    parts = parts_folder(spec.out)
    check_parts(parts, _identity(spec))
    chunks = _chunks(spec)
    done = chunks_done(parts)
    pending = [(i, chunk) for i, chunk in enumerate(chunks) if i not in done]
    todo = pending if max_chunks is None else pending[:max_chunks]
    total = sum(len(c) for c in chunks)
    finished = sum(len(chunks[i]) for i in done if i < len(chunks))
    log.info(
        "estimate: %d chunks of %d architectures, %d already done in %s; %d to score now",
        len(chunks),
        CHUNK_SIZE,
        len(done),
        parts,
        len(todo),
    )
    started = time.perf_counter()

    def store(index: int, arrays: dict[str, np.ndarray]) -> None:
        nonlocal finished
        write_part(parts, index, arrays)
        finished += len(arrays["archs"])
        rate = finished / max(time.perf_counter() - started, 1e-9)
        log.info("estimate: %d/%d architectures (%.1f per second)", finished, total, rate)

    if executor in ("serial", "processes") and workers == 1:
        # one worker: score here with the estimators already set up above (a supernet's
        # training, a predictor's fit), rather than set them all up again in a subprocess
        global _worker
        _worker = (spec, estimators)
        run_chunks(_score_chunk, todo, store)
    else:
        run_chunks(
            _score_chunk,
            todo,
            store,
            executor=executor,
            workers=workers,
            initializer=_init_worker,
            initargs=(spec,),
            scheduler=scheduler,
            fingerprint=source_sha256,
        )
    return parts, len(todo) == len(pending)


def assemble(spec: EstimateSpec, parts: Path) -> str:
    """Write the estimate file from the finished parts; returns its sha256."""
    from harness.environment import capture  # imports torch's build details: seconds

    n_arch, seeds = spec.space.num_archs, spec.protocol.seeds
    keys = [(i.name, e.name) for i in spec.protocol.inputs for e in spec.estimators]
    values = {key: np.full((n_arch, len(seeds)), np.nan) for key in keys}
    costs = {key: np.full((n_arch, len(seeds)), np.nan) for key in keys}
    setup = dict.fromkeys(keys, 0.0)
    scored = np.zeros(n_arch, dtype=bool)
    for part in read_parts(parts):
        rows = part["archs"]
        scored[rows] = True
        for key in keys:
            prefix = "/".join(key)
            values[key][rows] = part[f"{prefix}/score"]
            costs[key][rows] = part[f"{prefix}/cost_s"]
            setup[key] = max(setup[key], float(part[f"{prefix}/setup_s"]))
    expected = np.zeros(n_arch, dtype=bool)
    expected[spec.archs()] = True
    if not np.array_equal(scored, expected):
        raise TableError(
            f"{parts}: {int((expected & ~scored).sum())} architectures are not scored yet; "
            "run harness estimate again"
        )
    variables = {}
    for key in keys:
        input_name, name = key
        score32 = values[key].astype(np.float32)
        # a score float32 cannot hold (synflow's products pass 3.4e38) would become inf
        overflow = np.isfinite(values[key]) & ~np.isfinite(score32)
        if overflow.any():
            raise TableError(
                f"estimator {name!r} on input {input_name!r} gives scores beyond float32 "
                f"(e.g. {values[key][overflow][0]:.3g}); the table format stores float32"
            )
        for metric, array, unit in (
            ("score", score32, "estimator score (higher predicts better)"),
            ("cost_s", costs[key].astype(np.float32), "seconds"),
        ):
            mask = np.isfinite(array)
            variables[(input_name, "init", name, metric)] = Variable(
                values=np.where(mask, array, np.nan)[:, :, None].astype(np.float32),
                mask=mask[:, :, None],
                seeds=tuple(str(s) for s in seeds),
                epochs=(0,),
                unit=unit,
                source="harness estimate",
                derivation="at initialisation (epoch 0), one score per init seed",
            )
    environment = capture()
    estimators = {
        e.name: {
            "kind": e.kind,
            "params": e.params,
            "settings": dict(estimator_class(e.kind).settings),
            "origin": origin(estimator_class(e.kind)),
            "setup_s": {i: setup[(i, e.name)] for i in (x.name for x in spec.protocol.inputs)},
        }
        for e in spec.estimators
    }
    inputs = _load_inputs(spec)
    digest = write_table(
        spec.out,
        benchmark_id=f"estimate:{spec.name}",
        space=spec.space.name,
        archs=spec.space.strings(),
        variables=variables,
        properties={},
        protocol={"proxy": spec.protocol.to_dict(), "estimators": estimators},
        cost_model={
            "cost_s": "measured seconds of each score on the build machine: building the "
            "network and computing the estimator, on the proxy protocol's threads and device"
        },
        provenance={
            "builder": "harness estimate",
            "harness_version": __version__,
            "sources": [],
            "inputs": {name: data.provenance for name, data in inputs.items()},
            "proxy_protocol_hash": spec.protocol.protocol_hash,
            # the proxies' numerics live beside the estimator classes: pin all of harness
            "harness_source_sha256": source_sha256(),
            "sample": None if spec.sample is None else [spec.sample, spec.sample_seed],
            "environment": environment,
        },
        notes={
            "scores": "higher predicts better; masked where an architecture was not in the "
            "sample or the estimator has no finite score for it",
        },
    )
    _update_manifest(spec, digest, environment)
    return digest


def _update_manifest(spec: EstimateSpec, digest: str, environment: dict[str, str]) -> None:
    """Record the estimate file in ``manifest.json`` beside it, as tabulate does a table."""
    manifest = spec.out.parent / "manifest.json"
    try:
        entries = json.loads(read_regular(manifest)) if manifest.exists() else {}
    except (OSError, ValueError):
        raise TableError(f"{manifest} is damaged; repair or remove it") from None
    entries[spec.out.name] = {
        "sha256": digest,
        "size_bytes": spec.out.stat().st_size,
        "benchmark_id": f"estimate:{spec.name}",
        "built_by": f"harness estimate {spec.path.name} (harness {__version__})",
        "proxy_protocol": spec.protocol.to_dict(),
        "proxy_protocol_hash": spec.protocol.protocol_hash,
        "estimators": spec.resolved["estimators"],
        "environment": environment,
    }
    write_text(manifest, json.dumps(entries, indent=2, sort_keys=True) + "\n")


def open_estimate(spec: EstimateSpec, path: Path | None = None) -> Table:
    """The estimate file a report judges: the spec's pinned bytes, of the spec's space,
    holding every (input, estimator) score variable."""
    path = path or spec.out
    estimate = Table.load(path, expected_sha256=spec.sha256 if path == spec.out else None)
    if estimate.space != spec.space.name:
        raise TableError(
            f"{path} holds space {estimate.space!r}, but the spec estimates {spec.space.name!r}"
        )
    for proxy_input in spec.protocol.inputs:
        for entry in spec.estimators:
            key = (proxy_input.name, "init", entry.name, "score")
            if key not in estimate.variables():
                raise TableError(
                    f"{path} has no scores of estimator {entry.name!r} on input "
                    f"{proxy_input.name!r}; it was made by another spec"
                )
    return estimate


def estimate(
    spec: EstimateSpec,
    workers: int | None = None,
    max_chunks: int | None = None,
    executor: str | None = None,
    scheduler: str | None = None,
) -> str | None:
    """Score what is missing, then write the estimate file; returns its sha256, or None
    while chunks remain (after ``max_chunks``). An existing estimate file is kept: the
    spec reports on it (remove it, or give another ``out``, to estimate again)."""
    if spec.out.exists():
        return open_estimate(spec).sha256
    parts, complete = score_all(spec, workers, max_chunks, executor, scheduler)
    return assemble(spec, parts) if complete else None


def ground_truth(spec: EstimateSpec) -> Table:
    """The spec's ground-truth table, built first if it is missing and the spec says how,
    with every metric the judgement reads checked now, before any architecture is scored."""
    from harness.importers import build_table

    path = spec.truth_table
    if not path.exists() and spec.truth_build is not None:
        build = spec.truth_build
        try:
            source = _relative(spec.path.resolve().parent, build.get("source"))
            build_table(build["importer"], path, source, build.get("dataset"))
        except (ConfigError, KeyError) as error:
            message = error.message if isinstance(error, ConfigError) else f"needs {error}"
            raise spec_error(spec.path, ConfigError(message, "ground_truth.build")) from None
    table = Table.load(path, expected_sha256=spec.truth_sha256)
    if table.space != spec.space.name:
        raise TableError(
            f"{path} holds space {table.space!r}; the spec estimates {spec.space.name!r}"
        )
    _check_variables(spec, table)
    return table


def _check_variables(spec: EstimateSpec, table: Table) -> None:
    """Every variable the judgement reads that the table lacks, and every reference seed
    it does not hold, named at once by its spec field, as a run names its targets."""
    problems = Problems()
    reads = [(f"ground_truth.metric.{name}", ref) for name, ref in spec.truth.items()]
    for number, reference in enumerate(spec.references):
        reads += [
            (f"reference.{number}.metric", reference.metric),
            (f"reference.{number}.cost", reference.cost),
        ]
    for field, ref in reads:
        with problems.check(field):
            try:
                resolve_metric(table, ref)
            except TableError as error:
                raise ConfigError(str(error)) from None
    for number, reference in enumerate(spec.references):
        if reference.seed is None or _parts(reference.metric) not in table.variables():
            continue
        seeds = table.variable(*_parts(reference.metric)).seeds
        if reference.seed not in seeds:
            problems.add(
                ConfigError(
                    f"names seed {reference.seed!r}; {reference.metric} has seeds "
                    f"{', '.join(seeds)}",
                    f"reference.{number}.seed",
                )
            )
    if problems.errors:
        raise spec_error(spec.path, ConfigError.of(problems.errors))


def _parts(ref: MetricRef) -> tuple[str, str, str, str]:
    return (ref.dataset, ref.schedule, ref.split, ref.metric)

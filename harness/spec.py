"""Experiment specs: TOML files that name everything one experiment depends on.

A spec is parsed strictly: unknown sections or keys, wrong types and impossible values
are errors that name the file and the field. Relative paths are resolved against the
spec file's own folder, so a spec means the same thing from any working directory.
The resolved spec (what was asked for, with defaults made explicit) is hashed and
recorded; its hash is the experiment's identity.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import SpecError
from harness.evaluators.tabular import MetricRef, SeedPolicy
from harness.simulator import Budget
from harness.strategies import STRATEGIES

SECTIONS = {
    "experiment": {"name", "title", "results", "notes"},
    "table": {"path", "sha256", "build"},
    "search": {
        "dataset",
        "schedule",
        "epoch",
        "signal",
        "seed_policy",
        "seed",
        "visible",
        "sealed",
        "include_validation_time",
    },
    "budget": {"seconds", "evaluations", "epochs", "overrun"},
    "runs": {"seeds", "workers"},
    "strategy": {"name", "kind", "params"},
    "report": {"target", "anytime"},
    "published": None,  # free-form: strategy name -> {target label -> [mean, std]}
    "deviations": None,
}
REQUIRED = ("experiment", "table", "search", "budget", "runs", "strategy")


@dataclass(frozen=True)
class StrategySpec:
    name: str
    kind: str
    params: dict[str, Any]


@dataclass(frozen=True)
class Target:
    """A reported metric of each run's final architecture."""

    label: str
    ref: MetricRef


@dataclass(frozen=True)
class ExperimentSpec:
    path: Path
    name: str
    title: str
    results: Path
    table_path: Path
    table_sha256: str | None
    table_build: dict[str, Path | str] | None
    dataset: str
    schedule: str
    epoch: int
    signal: MetricRef
    seed_policy: SeedPolicy
    visible: dict[str, MetricRef]
    sealed: dict[str, MetricRef]
    include_validation_time: bool
    budget: Budget
    seeds: tuple[int, ...]
    workers: int
    strategies: tuple[StrategySpec, ...]
    targets: tuple[Target, ...]
    published: dict[str, dict[str, tuple[float, float]]]
    published_source: str
    deviations: tuple[str, ...]
    resolved: dict[str, Any]

    @property
    def spec_hash(self) -> str:
        return config_hash(self.resolved)


def config_hash(config: dict[str, Any]) -> str:
    """sha256 of a config's canonical JSON: key order and formatting do not matter."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


class _Reader:
    """Typed access to one TOML table, with errors that name file and field."""

    def __init__(self, path: Path, section: str, data: Any, allowed: set[str] | None) -> None:
        self.path, self.section = path, section
        if not isinstance(data, dict):
            self.fail(section, "must be a table")
        if allowed is not None:
            unknown = sorted(set(data) - allowed)
            if unknown:
                self.fail(
                    f"{section}.{unknown[0]}",
                    f"is not a known key; allowed: {', '.join(sorted(allowed))}",
                )
        self.data = data

    def fail(self, field: str, message: str) -> None:
        raise SpecError(f"{self.path}: [{field}] {message}")

    def get(self, key: str, kind: type | tuple[type, ...], default: Any = ...) -> Any:
        if key not in self.data:
            if default is ...:
                self.fail(f"{self.section}.{key}", "is required")
            return default
        value = self.data[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if isinstance(value, bool) and bool not in kinds:
            self.fail(f"{self.section}.{key}", f"must be {_names(kinds)}, got {value!r}")
        if float in kinds and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kinds):
            self.fail(f"{self.section}.{key}", f"must be {_names(kinds)}, got {value!r}")
        return value


def _names(kinds: tuple[type, ...]) -> str:
    words = {
        str: "a string",
        int: "an integer",
        float: "a number",
        bool: "true or false",
        dict: "a table",
        list: "an array",
    }
    return " or ".join(words.get(k, k.__name__) for k in kinds)


def read_toml(path: Path) -> dict[str, Any]:
    """A TOML file's tables; unreadable or malformed files raise SpecError naming the file."""
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        raise SpecError(f"{path}: spec file not found; check the path") from None
    except OSError as error:
        raise SpecError(f"{path}: cannot read the spec ({error.strerror})") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise SpecError(f"{path}: not valid TOML ({error}); fix the syntax") from None


def load_spec(path: Path) -> ExperimentSpec:
    """Parse and validate a spec file."""
    return parse_spec(read_toml(path), Path(path))


def parse_spec(raw: dict[str, Any], path: Path) -> ExperimentSpec:
    base = path.resolve().parent
    unknown = sorted(set(raw) - set(SECTIONS))
    if unknown:
        raise SpecError(
            f"{path}: [{unknown[0]}] is not a known section; allowed: {', '.join(SECTIONS)}"
        )
    for section in REQUIRED:
        if section not in raw:
            raise SpecError(f"{path}: [{section}] section is required")

    exp = _Reader(path, "experiment", raw["experiment"], SECTIONS["experiment"])
    name = exp.get("name", str)
    title = exp.get("title", str, name)
    results = (base / exp.get("results", str)).resolve()
    notes = exp.get("notes", list, [])
    if not all(isinstance(note, str) for note in notes):
        exp.fail("experiment.notes", "must be an array of strings")

    tab = _Reader(path, "table", raw["table"], SECTIONS["table"])
    table_path = (base / tab.get("path", str)).resolve()
    sha256 = tab.get("sha256", str, None)
    if sha256 is not None and (
        len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256)
    ):
        tab.fail("table.sha256", f"must be 64 lowercase hex digits, got {sha256!r}")
    build = None
    if "build" in tab.data:
        b = _Reader(path, "table.build", tab.data["build"], {"importer", "source"})
        importer = b.get("importer", str)
        if importer != "nb201":
            b.fail("table.build.importer", f"unknown importer {importer!r}; known: nb201")
        build = {"importer": importer, "source": (base / b.get("source", str)).resolve()}

    search = _Reader(path, "search", raw["search"], SECTIONS["search"])
    dataset = search.get("dataset", str)
    schedule = search.get("schedule", str)
    epoch = search.get("epoch", int)
    if epoch < 1:
        search.fail("search.epoch", f"must be at least 1, got {epoch}")
    signal_name = search.get("signal", str)
    signal = MetricRef.parse(f"{dataset}/{schedule}/{signal_name}", f"{path}: [search.signal]")
    policy = _seed_policy(search)
    visible = _refs(search, "visible")
    sealed = _refs(search, "sealed")
    with_valid = search.get("include_validation_time", bool)

    bud = _Reader(path, "budget", raw["budget"], SECTIONS["budget"])
    try:
        budget = Budget(
            seconds=bud.get("seconds", float, None),
            evaluations=bud.get("evaluations", int, None),
            epochs=bud.get("epochs", int, None),
            overrun=bud.get("overrun", str),
        )
    except SpecError as error:
        raise SpecError(f"{path}: {error}") from None

    runs = _Reader(path, "runs", raw["runs"], SECTIONS["runs"])
    seeds = _seeds(runs)
    workers = runs.get("workers", int, 1)
    if workers < 1:
        runs.fail("runs.workers", f"must be at least 1, got {workers}")

    strategies = _strategies(path, raw["strategy"])
    targets = _targets(path, raw.get("report", {}))
    anytime = _Reader(path, "report", raw.get("report", {}), SECTIONS["report"]).get(
        "anytime", str, None
    )
    if anytime is not None and anytime not in sealed:
        raise SpecError(
            f"{path}: [report.anytime] must name a sealed metric of [search.sealed]; "
            f"got {anytime!r}, sealed: {', '.join(sealed) or 'none'}"
        )
    published, source = _published(path, raw.get("published", {}), strategies, targets)
    deviations = raw.get("deviations", {"items": []})
    dev = _Reader(path, "deviations", deviations, {"items"})
    items = dev.get("items", list, [])
    if not all(isinstance(item, str) for item in items):
        dev.fail("deviations.items", "must be an array of strings")

    resolved = {
        "experiment": {"name": name, "title": title, "notes": list(notes)},
        "table": {"sha256": sha256, "build": build and {"importer": build["importer"]}},
        "search": {
            "dataset": dataset,
            "schedule": schedule,
            "epoch": epoch,
            "signal": str(signal),
            "seed_policy": policy.kind,
            "seed": policy.seed,
            "visible": {k: str(v) for k, v in visible.items()},
            "sealed": {k: str(v) for k, v in sealed.items()},
            "include_validation_time": with_valid,
        },
        "budget": {
            "seconds": budget.seconds,
            "evaluations": budget.evaluations,
            "epochs": budget.epochs,
            "overrun": budget.overrun,
        },
        "runs": {"seeds": list(seeds), "workers": workers},
        "strategies": [{"name": s.name, "kind": s.kind, "params": s.params} for s in strategies],
        "targets": [{"label": t.label, "metric": str(t.ref)} for t in targets],
        "anytime": anytime,
        "published": {
            "source": source,
            "values": {
                m: {label: list(v) for label, v in row.items()} for m, row in published.items()
            },
        },
        "deviations": list(items),
    }
    return ExperimentSpec(
        path=path,
        name=name,
        title=title,
        results=results,
        table_path=table_path,
        table_sha256=sha256,
        table_build=build,
        dataset=dataset,
        schedule=schedule,
        epoch=epoch,
        signal=signal,
        seed_policy=policy,
        visible=visible,
        sealed=sealed,
        include_validation_time=with_valid,
        budget=budget,
        seeds=seeds,
        workers=workers,
        strategies=strategies,
        targets=targets,
        published=published,
        published_source=source,
        deviations=tuple(items),
        resolved=resolved,
    )


def _seed_policy(search: _Reader) -> SeedPolicy:
    try:
        return SeedPolicy(search.get("seed_policy", str), search.get("seed", str, None))
    except SpecError as error:
        raise SpecError(f"{search.path}: {error}") from None


def _refs(search: _Reader, key: str) -> dict[str, MetricRef]:
    table = search.get(key, dict, {})
    refs = {}
    for name, text in table.items():
        refs[name] = MetricRef.parse(text, f"{search.path}: [search.{key}.{name}]")
    return refs


def _seeds(runs: _Reader) -> tuple[int, ...]:
    value = runs.get("seeds", (list, dict))
    if isinstance(value, dict):
        r = _Reader(runs.path, "runs.seeds", value, {"start", "count"})
        start, count = r.get("start", int), r.get("count", int)
        if start < 0 or count < 1:
            r.fail("runs.seeds", f"needs start >= 0 and count >= 1, got {start}, {count}")
        return tuple(range(start, start + count))
    if not value or not all(
        isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in value
    ):
        runs.fail("runs.seeds", "must be a non-empty array of non-negative integers")
    if len(set(value)) != len(value):
        runs.fail("runs.seeds", "lists a seed twice")
    return tuple(value)


def _strategies(path: Path, raw: Any) -> tuple[StrategySpec, ...]:
    if not isinstance(raw, list) or not raw:
        raise SpecError(f"{path}: [[strategy]] must list at least one strategy")
    specs = []
    for i, entry in enumerate(raw):
        r = _Reader(path, f"strategy.{i}", entry, SECTIONS["strategy"])
        name = r.get("name", str)
        kind = r.get("kind", str)
        if kind not in STRATEGIES:
            r.fail(
                f"strategy.{i}.kind",
                f"unknown strategy {kind!r}; known: {', '.join(sorted(STRATEGIES))}",
            )
        params = r.get("params", dict, {})
        try:
            params = STRATEGIES[kind].resolve_hyperparameters(params)
        except SpecError as error:
            raise SpecError(f"{path}: [strategy.{i}.params] {error}") from None
        if any(s.name == name for s in specs):
            r.fail(f"strategy.{i}.name", f"{name!r} is used twice; names must be unique")
        specs.append(StrategySpec(name, kind, params))
    return tuple(specs)


def _targets(path: Path, raw: Any) -> tuple[Target, ...]:
    report = _Reader(path, "report", raw, SECTIONS["report"])
    entries = report.get("target", list, [])
    targets = []
    for i, entry in enumerate(entries):
        r = _Reader(path, f"report.target.{i}", entry, {"label", "metric"})
        label = r.get("label", str)
        ref = MetricRef.parse(r.get("metric", str), f"{path}: [report.target.{i}.metric]")
        if any(t.label == label for t in targets):
            r.fail(f"report.target.{i}.label", f"{label!r} is used twice")
        targets.append(Target(label, ref))
    return tuple(targets)


def _published(
    path: Path, raw: Any, strategies: tuple[StrategySpec, ...], targets: tuple[Target, ...]
) -> tuple[dict[str, dict[str, tuple[float, float]]], str]:
    if not isinstance(raw, dict):
        raise SpecError(f"{path}: [published] must be a table")
    source = raw.get("source", "")
    if not isinstance(source, str):
        raise SpecError(f"{path}: [published.source] must be a string")
    names = {s.name for s in strategies}
    labels = {t.label for t in targets}
    published: dict[str, dict[str, tuple[float, float]]] = {}
    for method, row in raw.items():
        if method == "source":
            continue
        if method not in names and method != "optimal":
            raise SpecError(
                f"{path}: [published.{method}] names no strategy; strategies: "
                f"{', '.join(sorted(names))} (or 'optimal' for the best possible row)"
            )
        if not isinstance(row, dict):
            raise SpecError(f"{path}: [published.{method}] must be a table of label = [mean, std]")
        published[method] = {}
        for label, pair in row.items():
            if label not in labels:
                raise SpecError(
                    f"{path}: [published.{method}.{label}] names no report target; "
                    f"targets: {', '.join(sorted(labels))}"
                )
            if (
                not isinstance(pair, list)
                or len(pair) != 2
                or not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in pair)
            ):
                raise SpecError(f"{path}: [published.{method}.{label}] must be [mean, std]")
            published[method][label] = (float(pair[0]), float(pair[1]))
    return published, source

"""Experiment specs: TOML files that name everything one experiment depends on.

A spec is parsed strictly against declared fields (:mod:`harness.config`): unknown
sections or keys, wrong types and impossible values are errors that name the file and
the field. Relative paths are resolved against the spec file's own folder, so a spec
means the same thing from any working directory. The resolved spec (what was asked for,
with defaults and overrides made explicit) is hashed and recorded; its hash is the
experiment's identity.

Metric references are ``dataset/schedule/split/metric``; a two-part ``split/metric``
means the search's own dataset and schedule, so retargeting a spec to another benchmark
changes only its ``[table]`` and the ``[search]`` lines that name the benchmark.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from harness.config import Field, at, config_hash, parse_toml, read_text, spec_error, validate
from harness.errors import ConfigError
from harness.estimators.pinned import EstimateRef
from harness.importers import IMPORTERS
from harness.strategies import resolve_params, strategy_class
from harness.values import (
    BUDGET_FIELDS,
    OVERRUN_RULES,
    Budget,
    MetricRef,
    SearchProtocol,
    SeedPolicy,
)

SECTIONS = (
    "experiment",
    "table",
    "search",
    "budget",
    "runs",
    "strategy",
    "report",
    "published",
    "deviations",
    "estimate",
)
REQUIRED_SECTIONS = ("experiment", "table", "search", "budget", "runs", "strategy")
#: names that end up in MLflow keys and run names: checked here, before any search runs
NAME_PATTERN = re.compile(r"[A-Za-z0-9_.\- ]{1,64}")
HEX64 = re.compile(r"[0-9a-f]{64}")

EXPERIMENT_FIELDS = {
    "name": Field(str),
    "title": Field(str, None, optional=True),
    "results": Field(str),
    "notes": Field(list, [], items=str),
}
TABLE_FIELDS = {
    "path": Field(str),
    "sha256": Field(str, None, optional=True),
    "space": Field(str, None, optional=True, help="must agree with the table's space"),
    "build": Field(dict, None, optional=True),
}
BUILD_FIELDS = {
    "importer": Field(str, choices=tuple(IMPORTERS)),
    "source": Field(str, None, optional=True),
    "dataset": Field(str, None, optional=True),
}
SEARCH_FIELDS = {
    "dataset": Field(str),
    "schedule": Field(str),
    "epoch": Field(int, low=1, high=100_000),
    "signal": Field(str),
    "seed_policy": Field(str),
    "seed": Field(str, None, optional=True),
    "visible": Field(dict, {}),
    "sealed": Field(dict, {}),
    "include_validation_time": Field(bool),
    "cost": Field(str, "table"),
    "evaluator": Field(
        str, "tabular", help="tabular, live, an entry point or package.module:Class"
    ),
}
RUNS_FIELDS = {
    "seeds": Field((list, dict)),
    "workers": Field(int, 1, low=1, high=4096),
    "call_timeout_s": Field(
        float,
        None,
        optional=True,
        low=0,
        low_open=True,
        high=7 * 24 * 3600,
        help="real seconds one strategy call (setup, ask, tell) may take; default 600",
    ),
}
SEED_RANGE_FIELDS = {
    "start": Field(int, low=0, high=2**63 - 1),
    "count": Field(int, low=1, high=1_000_000),
}
STRATEGY_FIELDS = {
    "name": Field(str),
    "kind": Field(str),
    "params": Field(dict, {}),
    "overrun": Field(
        str, None, optional=True, choices=OVERRUN_RULES, help="default: [budget] overrun"
    ),
}
REPORT_FIELDS = {"target": Field(list, []), "anytime": Field(str, None, optional=True)}
TARGET_FIELDS = {"label": Field(str), "metric": Field(str)}
DEVIATIONS_FIELDS = {"items": Field(list, [], items=str)}
OVERRIDE_KEYS = ("seeds", "strategies", "budget")


@dataclass(frozen=True)
class StrategySpec:
    """One ``[[strategy]]``: a display name, the class it names, resolved hyperparameters,
    and its own overrun rule (None: it follows ``[budget] overrun``)."""

    name: str
    kind: str
    params: dict[str, Any]
    overrun: str | None = None

    def budget(self, budget: Budget) -> Budget:
        """The spec's budget under this strategy's overrun rule."""
        return budget if self.overrun is None else replace(budget, overrun=self.overrun)


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
    table_space: str | None
    table_build: dict[str, Any] | None
    search: SearchProtocol
    budget: Budget
    seeds: tuple[int, ...]
    workers: int
    strategies: tuple[StrategySpec, ...]
    targets: tuple[Target, ...]
    anytime: str | None
    published: dict[str, dict[str, tuple[float, float]]]
    published_source: str
    deviations: tuple[str, ...]
    overrides: dict[str, Any]
    resolved: dict[str, Any]
    #: the spec file's text as read (what the record keeps)
    text: str = ""
    #: real seconds one strategy call may take (None: the simulator's default)
    call_timeout_s: float | None = None
    #: the pinned estimate file that answers strategies' score requests (``[estimate]``)
    estimate: EstimateRef | None = None

    @property
    def spec_hash(self) -> str:
        return config_hash(self.resolved)


def load_spec(path: Path, overrides: Mapping[str, Any] | None = None) -> ExperimentSpec:
    """Parse and validate a spec file, with optional overrides (:func:`apply_overrides`)."""
    return parse_spec_text(read_text(path), Path(path), overrides)


def parse_spec_text(
    text: str, path: Path, overrides: Mapping[str, Any] | None = None
) -> ExperimentSpec:
    """A spec from its TOML text (e.g. the text a record kept); ``path`` anchors its paths."""
    return parse_spec(parse_toml(text, path), path, overrides, text)


def parse_spec(
    raw: dict[str, Any],
    path: Path,
    overrides: Mapping[str, Any] | None = None,
    text: str = "",
) -> ExperimentSpec:
    """Validate a parsed spec; every error is one line ``<file>: [<field>] <message>``."""
    try:
        with at("overrides"):
            normal = normalize_overrides(overrides)
        return _parse(raw, path, normal, text)
    except ConfigError as error:
        raise spec_error(path, error) from None


def apply_overrides(raw: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The raw spec with ``seeds`` (a list or ``{start, count}``), ``strategies`` (names to
    keep, in spec order) and ``budget`` (keys to replace; ``None`` removes a limit)."""
    raw = {**raw}

    def section(name: str) -> dict[str, Any]:
        value = raw.get(name, {})
        return value if isinstance(value, dict) else {}

    if "seeds" in overrides:
        raw["runs"] = {**section("runs"), "seeds": overrides["seeds"]}
    if "strategies" in overrides:
        keep = overrides["strategies"]
        entries = [e for e in raw.get("strategy", []) if isinstance(e, dict)]
        names = [e.get("name") for e in entries]
        missing = [n for n in keep if n not in names]
        if missing or not keep:
            raise ConfigError(
                f"names no strategy of the spec ({missing[0] if missing else 'none given'}); "
                f"strategies: {', '.join(map(str, names))}",
                "strategies",
            )
        raw["strategy"] = [e for e in entries if e.get("name") in keep]
        if "published" in raw:
            raw["published"] = {
                k: v
                for k, v in section("published").items()
                if k in ("source", "optimal") or k in keep
            }
    if "budget" in overrides:
        budget = {**section("budget"), **overrides["budget"]}
        raw["budget"] = {k: v for k, v in budget.items() if v is not None}
    return raw


def normalize_overrides(overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    """Overrides as plain JSON values (what the record pins); None values are dropped."""
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    unknown = sorted(set(given) - set(OVERRIDE_KEYS))
    if unknown:
        raise ConfigError(f"is not an override; overrides: {', '.join(OVERRIDE_KEYS)}", unknown[0])
    normal: dict[str, Any] = {}
    if "seeds" in given:
        seeds = given["seeds"]
        if isinstance(seeds, range) and seeds.step == 1:
            seeds = {"start": seeds.start, "count": len(seeds)}
        normal["seeds"] = dict(seeds) if isinstance(seeds, Mapping) else list(seeds)
    if "strategies" in given:
        names = given["strategies"]
        normal["strategies"] = [names] if isinstance(names, str) else list(names)
    if "budget" in given:
        if not isinstance(given["budget"], Mapping):
            raise ConfigError("must map budget keys to values", "budget")
        normal["budget"] = dict(given["budget"])
    return normal


def _metric(text: Any, dataset: str, schedule: str) -> MetricRef:
    if isinstance(text, str) and text.count("/") == 1:
        text = f"{dataset}/{schedule}/{text}"
    return MetricRef.parse(text)


def _parse(raw: dict[str, Any], path: Path, overrides: dict[str, Any], text: str) -> ExperimentSpec:
    base = path.resolve().parent
    with at("overrides"):
        raw = apply_overrides(raw, overrides)
    unknown = sorted(set(raw) - set(SECTIONS))
    if unknown:
        raise ConfigError(f"is not a known section; allowed: {', '.join(SECTIONS)}", unknown[0])
    for section in REQUIRED_SECTIONS:
        if section not in raw:
            raise ConfigError("section is required", section)

    with at("experiment"):
        exp = validate(raw["experiment"], EXPERIMENT_FIELDS)
        _check_name(exp["name"], "name")
        results = _path(base, exp["results"], "results")
    with at("table"):
        table = validate(raw["table"], TABLE_FIELDS)
        table_path = _path(base, table["path"], "path")
        if table["sha256"] is not None and not HEX64.fullmatch(table["sha256"]):
            raise ConfigError(f"must be 64 lowercase hex digits, got {table['sha256']!r}", "sha256")
        build = None
        if table["build"] is not None:
            with at("build"):
                build = validate(table["build"], BUILD_FIELDS)
            if build["source"] is not None:
                build["source"] = _path(base, build["source"], "build.source")

    with at("search"):
        search_raw = validate(raw["search"], SEARCH_FIELDS)
        dataset, schedule = search_raw["dataset"], search_raw["schedule"]

        def refs(key: str) -> dict[str, MetricRef]:
            found = {}
            for name, text in search_raw[key].items():
                with at(f"{key}.{name}"):
                    found[name] = _metric(text, dataset, schedule)
            return found

        with at("signal"):
            signal = _metric(search_raw["signal"], dataset, schedule)
        search = SearchProtocol(
            dataset=dataset,
            schedule=schedule,
            epoch=search_raw["epoch"],
            signal=signal,
            seed_policy=SeedPolicy(search_raw["seed_policy"], search_raw["seed"]),
            include_validation_time=search_raw["include_validation_time"],
            visible=refs("visible"),
            sealed=refs("sealed"),
            cost=search_raw["cost"],
            evaluator=search_raw["evaluator"],
        )

    with at("budget"):
        budget = Budget(**validate(raw["budget"], BUDGET_FIELDS))

    with at("runs"):
        runs = validate(raw["runs"], RUNS_FIELDS)
        with at("seeds"):
            seeds = _seeds(runs["seeds"])

    strategies = _strategies(raw["strategy"])
    with at("report"):
        report = validate(raw.get("report", {}), REPORT_FIELDS)
        targets = _targets(report["target"], dataset, schedule)
        if report["anytime"] is not None and report["anytime"] not in search.sealed:
            raise ConfigError(
                f"must name a sealed metric of [search.sealed]; got {report['anytime']!r}, "
                f"sealed: {', '.join(search.sealed) or 'none'}",
                "anytime",
            )
    with at("published"):
        published, source = _published(raw.get("published", {}), strategies, targets)
    with at("deviations"):
        deviations = validate(raw.get("deviations", {}), DEVIATIONS_FIELDS)["items"]
    estimate = None
    if "estimate" in raw:
        with at("estimate"):
            estimate = EstimateRef.parse(raw["estimate"], base)
    for number, strategy in enumerate(strategies):
        if estimate is None and strategy_class(strategy.kind).asks_scores:
            raise ConfigError(
                f"{strategy.kind!r} asks an estimator for scores; add an [estimate] section "
                "naming the estimate file (and its sha256) that answers",
                f"strategy.{number}.kind",
            )

    resolved = {
        "experiment": {
            "name": exp["name"],
            "title": exp["title"] or exp["name"],
            "notes": exp["notes"],
        },
        "table": {
            "sha256": table["sha256"],
            "space": table["space"],
            "build": build and {k: v for k, v in build.items() if k != "source"},
        },
        "search": {
            "dataset": dataset,
            "schedule": schedule,
            "epoch": search.epoch,
            "signal": str(signal),
            "seed_policy": search.seed_policy.kind,
            "seed": search.seed_policy.seed,
            "visible": {k: str(v) for k, v in search.visible.items()},
            "sealed": {k: str(v) for k, v in search.sealed.items()},
            "include_validation_time": search.include_validation_time,
            "cost": search.cost,
            # a spec that names no evaluator keeps the hash it had before evaluators had kinds
            **({} if search.evaluator == "tabular" else {"evaluator": search.evaluator}),
        },
        "budget": budget.as_dict(),
        "runs": _resolved_runs(seeds, runs),
        "strategies": [_resolved_strategy(s) for s in strategies],
        "targets": [{"label": t.label, "metric": str(t.ref)} for t in targets],
        "anytime": report["anytime"],
        "published": {
            "source": source,
            "values": {
                m: {label: list(v) for label, v in row.items()} for m, row in published.items()
            },
        },
        "deviations": list(deviations),
        "overrides": overrides,
        # a spec without [estimate] keeps the hash it had before strategies could ask
        **({} if estimate is None else {"estimate": estimate.resolved()}),
    }
    return ExperimentSpec(
        path=path,
        name=exp["name"],
        title=exp["title"] or exp["name"],
        results=results,
        table_path=table_path,
        table_sha256=table["sha256"],
        table_space=table["space"],
        table_build=build,
        search=search,
        budget=budget,
        seeds=seeds,
        workers=runs["workers"],
        strategies=strategies,
        targets=targets,
        anytime=report["anytime"],
        published=published,
        published_source=source,
        deviations=tuple(deviations),
        overrides=overrides,
        resolved=resolved,
        text=text,
        call_timeout_s=runs["call_timeout_s"],
        estimate=estimate,
    )


def _path(base: Path, text: str, field: str) -> Path:
    """A path relative to the spec's folder; empty paths and symlink loops are refused."""
    if not text.strip():
        raise ConfigError("is empty; give a path", field)
    try:
        return (base / text).resolve()
    except (OSError, RuntimeError) as error:  # RuntimeError: a symlink loop
        raise ConfigError(f"{text!r} cannot be resolved ({error})", field) from None


def _check_name(name: str, field: str) -> None:
    if not NAME_PATTERN.fullmatch(name):
        raise ConfigError(
            f"must be 1-64 letters, digits, spaces or _ . - (it names MLflow records), "
            f"got {name!r}",
            field,
        )


def _seeds(value: Any) -> tuple[int, ...]:
    if isinstance(value, dict):
        seeds = validate(value, SEED_RANGE_FIELDS)
        return tuple(range(seeds["start"], seeds["start"] + seeds["count"]))
    checked = Field(list, items=int, low=0, high=2**63 - 1).check(value)
    if not checked:
        raise ConfigError("must list at least one seed")
    if len(set(checked)) != len(checked):
        raise ConfigError("lists a seed twice")
    return tuple(checked)


def _resolved_runs(seeds: tuple[int, ...], runs: dict[str, Any]) -> dict[str, Any]:
    """``[runs]`` as the resolved spec holds it; ``call_timeout_s`` only where a spec sets
    it, so the hash of every spec that sets none is unchanged."""
    resolved = {"seeds": list(seeds), "workers": runs["workers"]}
    if runs["call_timeout_s"] is not None:
        resolved["call_timeout_s"] = runs["call_timeout_s"]
    return resolved


def _resolved_strategy(strategy: StrategySpec) -> dict[str, Any]:
    """A strategy as the resolved spec (and so the spec hash) holds it; a strategy that
    follows ``[budget] overrun`` is written as before per-strategy rules existed, so the
    hash of every spec that sets none is unchanged."""
    resolved = {"name": strategy.name, "kind": strategy.kind, "params": strategy.params}
    if strategy.overrun is not None:
        resolved["overrun"] = strategy.overrun
    return resolved


def _strategies(raw: Any) -> tuple[StrategySpec, ...]:
    if not isinstance(raw, list) or not raw:
        raise ConfigError("must list at least one strategy ([[strategy]] tables)", "strategy")
    specs: list[StrategySpec] = []
    for i, entry in enumerate(raw):
        with at(f"strategy.{i}"):
            fields = validate(entry, STRATEGY_FIELDS)
            _check_name(fields["name"], "name")
            if any(s.name == fields["name"] for s in specs):
                raise ConfigError(f"{fields['name']!r} is used twice; names must be unique", "name")
            with at("kind"):
                strategy_class(fields["kind"])
            with at("params"):
                params = resolve_params(fields["kind"], fields["params"])
        specs.append(StrategySpec(fields["name"], fields["kind"], params, fields["overrun"]))
    return tuple(specs)


def _targets(entries: Sequence[Any], dataset: str, schedule: str) -> tuple[Target, ...]:
    targets: list[Target] = []
    for i, entry in enumerate(entries):
        with at(f"target.{i}"):
            fields = validate(entry, TARGET_FIELDS)
            _check_name(fields["label"], "label")
            if any(t.label == fields["label"] for t in targets):
                raise ConfigError(f"{fields['label']!r} is used twice", "label")
            with at("metric"):
                ref = _metric(fields["metric"], dataset, schedule)
        targets.append(Target(fields["label"], ref))
    return tuple(targets)


def _published(
    raw: Any, strategies: tuple[StrategySpec, ...], targets: tuple[Target, ...]
) -> tuple[dict[str, dict[str, tuple[float, float]]], str]:
    if not isinstance(raw, dict):
        raise ConfigError("must be a table")
    source = raw.get("source", "")
    if not isinstance(source, str):
        raise ConfigError("must be a string", "source")
    names = {s.name for s in strategies}
    labels = {t.label for t in targets}
    published: dict[str, dict[str, tuple[float, float]]] = {}
    for method, row in raw.items():
        if method == "source":
            continue
        if method not in names and method != "optimal":
            raise ConfigError(
                f"names no strategy; strategies: {', '.join(sorted(names))} "
                "(or 'optimal' for the best possible row)",
                method,
            )
        if not isinstance(row, dict):
            raise ConfigError("must be a table of label = [mean, std]", method)
        published[method] = {}
        for label, pair in row.items():
            if label not in labels:
                raise ConfigError(
                    f"names no report target; targets: {', '.join(sorted(labels))}",
                    f"{method}.{label}",
                )
            with at(f"{method}.{label}"):
                values = Field(list, items=float).check(pair)
                if len(values) != 2:
                    raise ConfigError("must be [mean, std]")
            published[method][label] = (values[0], values[1])
    return published, source

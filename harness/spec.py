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

from harness.config import (
    Field,
    Problems,
    Section,
    SpecFormat,
    at,
    config_hash,
    nearest,
    parse_toml,
    read_text,
    spec_error,
    validate,
)
from harness.errors import ConfigError
from harness.estimators.pinned import ESTIMATE_FIELDS, EstimateRef
from harness.importers import importer_class
from harness.places import project_root
from harness.strategies import resolve_params, strategy_class
from harness.values import (
    BUDGET_FIELDS,
    COST_SOURCES,
    DEFAULT_OVERRUN,
    DIRECTIONS,
    OVERRUN_RULES,
    SEED_POLICIES,
    Budget,
    MetricRef,
    SearchProtocol,
    SeedPolicy,
    target_direction,
)

#: names that end up in MLflow keys and run names: checked here, before any search runs
NAME_PATTERN = re.compile(r"[A-Za-z0-9_.\- ]{1,64}")
HEX64 = re.compile(r"[0-9a-f]{64}")
METRIC = "a metric: dataset/schedule/split/metric, or split/metric for the search's own"

EXPERIMENT_FIELDS = {
    "name": Field(
        str, help="names the MLflow experiment and its runs: 1-64 letters, digits, spaces or _ . -"
    ),
    "title": Field(str, None, optional=True, help="the report's heading (default: the name)"),
    "results": Field(
        str,
        None,
        optional=True,
        help="the report folder, relative to the spec; only this spec, unmodified, writes "
        "there (default: results/<name> at the project root, as `harness report NAME` writes)",
    ),
    "notes": Field(list, [], items=str, help="lines the report quotes"),
}
TABLE_FIELDS = {
    "path": Field(str, help="the benchmark table (HDF5), relative to the spec"),
    "sha256": Field(
        str,
        None,
        optional=True,
        help="pin of the table's bytes (64 lowercase hex "
        "digits); without it the run and its report are marked unpinned",
    ),
    "space": Field(str, None, optional=True, help="must agree with the table's space"),
    "build": Field(
        dict, None, optional=True, help="how to build the table if it is missing ([table.build])"
    ),
}
BUILD_FIELDS = {
    "importer": Field(
        str,
        help="the importer that builds the table: a built-in name, an entry point in "
        "group harness.importers, or package.module:Class",
    ),
    "source": Field(
        str, None, optional=True, help="folder of the published data, relative to the spec"
    ),
    "dataset": Field(str, None, optional=True, help="the dataset to import (nbgraph)"),
}
SEARCH_FIELDS = {
    "dataset": Field(str, help="the table's dataset the search runs on"),
    "schedule": Field(str, help="the table's training schedule, e.g. hp12"),
    "epoch": Field(int, low=1, high=100_000, help="the epoch of the schedule a query reads"),
    "signal": Field(str, help=f"what a strategy maximises, {METRIC}; never a test split"),
    "seed_policy": Field(
        str,
        choices=SEED_POLICIES,
        help="which training answers a query: "
        "mean over the table's seeds, draw one per query, or a fixed seed",
    ),
    "seed": Field(
        str, None, optional=True, help="the seed label, with seed_policy = 'fixed' and only then"
    ),
    "visible": Field(dict, {}, help=f"more metrics a strategy sees: name = {METRIC}"),
    "sealed": Field(dict, {}, help=f"metrics recorded but never shown: name = {METRIC}"),
    "include_validation_time": Field(
        bool, help="whether an evaluation's cost includes the table's evaluation time"
    ),
    "cost": Field(
        str,
        "table",
        choices=COST_SOURCES,
        help="where an evaluation's cost comes from: the table, or a live run's own measured time",
    ),
    "evaluator": Field(
        str, "tabular", help="tabular, live, an entry point or package.module:Class"
    ),
}
RUNS_FIELDS = {
    "seeds": Field((list, dict), help="master seeds: a list, or a table {start, count}"),
    "workers": Field(int, 1, low=1, high=4096, help="simulated parallel workers per run"),
    "call_timeout_s": Field(
        float,
        None,
        optional=True,
        low=0,
        low_open=True,
        high=7 * 24 * 3600,
        help="real seconds one strategy call (setup, ask, tell) may take; default 600. A "
        "weight-sharing strategy's setup, its supernet training, is not limited",
    ),
}
SEED_RANGE_FIELDS = {
    "start": Field(int, low=0, high=2**63 - 1, help="the first seed"),
    "count": Field(int, low=1, high=1_000_000, help="how many consecutive seeds"),
}
STRATEGY_FIELDS = {
    "name": Field(
        str,
        None,
        optional=True,
        help="the method's name in the report, unique in the spec (default: the kind)",
    ),
    "kind": Field(
        str,
        help="a built-in kind (below), an entry point in group "
        "harness.strategies, or package.module:Class",
    ),
    "params": Field(dict, {}, help="the kind's hyperparameters (below); the rest default"),
    "overrun": Field(
        str, None, optional=True, choices=OVERRUN_RULES, help="default: [budget] overrun"
    ),
}
REPORT_FIELDS = {
    "target": Field(list, help="the report's metrics ([[report.target]]); at least one"),
    "anytime": Field(
        str,
        None,
        optional=True,
        help="the sealed metric the anytime plot shows (a name of [search.sealed])",
    ),
}
TARGET_FIELDS = {
    "label": Field(str, help="the column's name in the report"),
    "metric": Field(str, help=f"{METRIC}, of each run's final architecture"),
    "direction": Field(
        str,
        None,
        choices=DIRECTIONS,
        optional=True,
        help="which way is better (default: min for a loss, time or seconds metric, else max)",
    ),
}
DEVIATIONS_FIELDS = {"items": Field(list, [], items=str, help="lines the report lists")}

#: ``[supernet]``: what weight-sharing strategies train on; each key left out comes from the
#: table's protocol when it stores a runnable one (harness.one_shot.setup)
SUPERNET_FIELDS = {
    "dataset": Field(str, None, optional=True, help="dataset the supernet trains on"),
    "weights_split": Field(str, None, optional=True, help="split that trains the weights"),
    "arch_split": Field(
        str, None, optional=True, help="split that trains and selects the architecture"
    ),
    "weights_split_sha256": Field(str, None, optional=True, help="pinned index-list sha256"),
    "arch_split_sha256": Field(str, None, optional=True, help="pinned index-list sha256"),
    "channels": Field(int, None, optional=True, low=1, high=1 << 16, help="NB201's C"),
    "cells_per_stage": Field(int, None, optional=True, low=1, high=1024, help="NB201's N"),
    "augmentation": Field(
        str, None, optional=True, choices=("none", "crop-flip"), help="of both splits' batches"
    ),
    "device": Field(str, None, optional=True, help="cpu, cuda or cuda:N"),
    "threads": Field(int, None, optional=True, low=1, high=4096, help="torch CPU threads"),
    "split_dir": Field(str, None, optional=True, help="folder of NB201's split files"),
    "shape": Field(list, None, optional=True, help="refused: weight sharing needs data"),
}

EXPERIMENT_SPEC = SpecFormat(
    title="Experiment spec",
    command="harness run SPEC",
    about="Strategies searched on a benchmark table under one budget and one set of seeds, "
    "recorded to MLflow and reported; `benchmarks/nb201/table5.toml` is a complete one.",
    sections=(
        Section(
            "experiment",
            EXPERIMENT_FIELDS,
            "What the experiment is called and where its report goes.",
            required=True,
        ),
        Section(
            "table",
            TABLE_FIELDS,
            "The benchmark table every evaluation is read from "
            "(or, live, whose protocol it is trained under).",
            required=True,
        ),
        Section(
            "table.build",
            BUILD_FIELDS,
            "How to build the table from published data when "
            "its file is missing (`harness import`).",
        ),
        Section(
            "search",
            SEARCH_FIELDS,
            "What a strategy sees and at which fidelity: the search protocol.",
            required=True,
        ),
        Section(
            "budget",
            BUDGET_FIELDS,
            "When a run stops: at least one of seconds, "
            "evaluations and epochs; all three are always counted.",
            required=True,
        ),
        Section(
            "runs",
            RUNS_FIELDS,
            "The master seeds each strategy runs, and the simulated workers.",
            required=True,
        ),
        Section("runs.seeds", SEED_RANGE_FIELDS, "The table form of `seeds`: a range."),
        Section(
            "strategy", STRATEGY_FIELDS, "One per method compared.", required=True, repeated=True
        ),
        Section(
            "report",
            REPORT_FIELDS,
            "What the report tabulates, checked when the spec is read.",
            required=True,
        ),
        Section("report.target", TARGET_FIELDS, "One reported metric.", repeated=True),
        Section(
            "published",
            {},
            "Published numbers the report puts beside ours: `source = "
            '"citation"`, then one table per strategy name (or `optimal`) mapping a report '
            "target's label to `[mean, std]`, or `[mean, std, n]` with the published runs' count "
            "n, which the report's reproduction tests need.",
        ),
        Section(
            "deviations",
            DEVIATIONS_FIELDS,
            "Known deviations from the published protocol, listed in the report.",
        ),
        Section(
            "estimate",
            ESTIMATE_FIELDS,
            "The estimate file (pinned by sha256) that answers strategies' score requests "
            "(docs/predictors.md): each score is charged its measured cost.",
        ),
        Section(
            "supernet",
            SUPERNET_FIELDS,
            "What weight-sharing strategies train their supernet on (docs/weight-sharing.md); "
            "a key left out comes from the protocol the table stores.",
        ),
    ),
)
SECTIONS = EXPERIMENT_SPEC.top_level()
REQUIRED_SECTIONS = EXPERIMENT_SPEC.top_level(required=True)
#: the section that marks another kind of spec, and the command that reads it
OTHER_SPECS = {"estimate": "harness estimate SPEC", "tabulate": "harness tabulate SPEC"}
#: what a missing section's error adds
REQUIRED_HINTS = {
    "strategy": ": add one [[strategy]] table (name, kind) per method",
    "report": ": the report needs at least one [[report.target]] table (label, metric)",
}
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
    #: ``max`` or ``min``, as the spec set it (None: by the metric's name, see
    #: :func:`~harness.values.target_direction`)
    direction: str | None = None

    @property
    def better(self) -> str:
        """Which way this target is better: ``max`` or ``min``."""
        return target_direction(self.ref.metric, self.direction)


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
    #: the ``[supernet]`` section as given (None: the spec has none)
    supernet: dict[str, Any] | None = None
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
    for section, command in OTHER_SPECS.items():
        if section in raw and "experiment" not in raw:
            raise ConfigError(
                f"holds [{section}]: it is a spec for `{command}`, not an experiment spec"
            )
    problems = Problems()
    for section in sorted(set(raw) - set(SECTIONS)):
        problems.add(
            ConfigError(
                f"is not a known section{nearest(section, SECTIONS)}; allowed: "
                f"{', '.join(SECTIONS)}",
                section,
            )
        )
    for section in REQUIRED_SECTIONS:
        if section not in raw:
            hint = REQUIRED_HINTS.get(section, "")
            problems.add(ConfigError(f"section is required{hint}; see docs/specs.md", section))
    # every section is checked on its own, so that one reading reports every problem; a
    # missing section is one problem (its keys are not listed again), and a section that
    # needs another (targets need the search's dataset) waits for it
    exp = table = build = search = budget = runs = seeds = strategies = targets = None
    report: dict[str, Any] = {"anytime": None}
    published, source, deviations = {}, "", []
    if "experiment" in raw:
        with problems.check("experiment"):
            exp = validate(raw["experiment"], EXPERIMENT_FIELDS)
            _check_name(exp["name"], "name")
            if exp["results"] is None:
                results = project_root(base) / "results" / exp["name"]
            else:
                results = _path(base, exp["results"], "results")
    if "table" in raw:
        with problems.check("table"):
            table = validate(raw["table"], TABLE_FIELDS)
            table_path = _path(base, table["path"], "path")
            if table["sha256"] is not None and not HEX64.fullmatch(table["sha256"]):
                raise ConfigError(
                    f"must be 64 lowercase hex digits, got {table['sha256']!r}", "sha256"
                )
            if table["build"] is not None:
                with at("build"):
                    build = validate(table["build"], BUILD_FIELDS)
                    with at("importer"):
                        importer_class(build["importer"])
                if build["source"] is not None:
                    build["source"] = _path(base, build["source"], "build.source")
    if "search" in raw:
        with problems.check("search"):
            search = _search(raw["search"])
    if "budget" in raw:
        with problems.check("budget"):
            budget = _budget(raw["budget"])
    if "runs" in raw:
        with problems.check("runs"):
            runs = validate(raw["runs"], RUNS_FIELDS)
            with at("seeds"):
                seeds = _seeds(runs["seeds"])
    if "strategy" in raw:
        with problems.check():
            strategies = _strategies(raw["strategy"])
    if "report" in raw and search is not None:
        with problems.check("report"):
            report = validate(raw["report"], REPORT_FIELDS)
            targets = _targets(report["target"], search.dataset, search.schedule)
            if report["anytime"] is not None and report["anytime"] not in search.sealed:
                raise ConfigError(
                    f"must name a sealed metric of [search.sealed]; got {report['anytime']!r}, "
                    f"sealed: {', '.join(search.sealed) or 'none'}",
                    "anytime",
                )
    if strategies is not None and targets is not None:
        with problems.check("published"):
            published, source = _published(raw.get("published", {}), strategies, targets)
    with problems.check("deviations"):
        deviations = validate(raw.get("deviations", {}), DEVIATIONS_FIELDS)["items"]
    supernet = None
    if "supernet" in raw:
        with problems.check("supernet"):
            supernet = _supernet(raw["supernet"], base)
    estimate = None
    if "estimate" in raw:
        with problems.check("estimate"):
            estimate = EstimateRef.parse(raw["estimate"], base)
    for number, strategy in enumerate(strategies or ()):
        if estimate is None and strategy_class(strategy.kind).asks_scores:
            problems.add(
                ConfigError(
                    f"{strategy.kind!r} asks an estimator for scores; add an [estimate] "
                    "section naming the estimate file (and its sha256) that answers",
                    f"strategy.{number}.kind",
                )
            )
    if problems.errors:
        raise ConfigError.of([_blame(p, overrides) for p in problems.errors])
    assert None not in (exp, table, search, budget, runs, seeds, strategies, targets)
    dataset, schedule, signal = search.dataset, search.schedule, search.signal

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
        # a direction the spec sets is recorded; one left to the metric's name keeps the
        # hash specs had before targets had directions
        "targets": [
            {"label": t.label, "metric": str(t.ref)}
            | ({} if t.direction is None else {"direction": t.direction})
            for t in targets
        ],
        "anytime": report["anytime"],
        "published": {
            "source": source,
            "values": {
                m: {label: list(v) for label, v in row.items()} for m, row in published.items()
            },
        },
        "deviations": list(deviations),
        "overrides": overrides,
        # a spec without [supernet] keeps the hash it had before the section existed
        **({} if supernet is None else {"supernet": _resolved_supernet(supernet)}),
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
        supernet=supernet,
        estimate=estimate,
    )


def _search(raw: Any) -> SearchProtocol:
    """``[search]`` as a search protocol; its metrics may name the search's own dataset
    and schedule by ``split/metric`` alone."""
    fields = validate(raw, SEARCH_FIELDS)
    dataset, schedule = fields["dataset"], fields["schedule"]
    problems = Problems()
    found: dict[str, dict[str, MetricRef]] = {"visible": {}, "sealed": {}}
    for key, refs in found.items():
        for name, text in fields[key].items():
            with problems.check(f"{key}.{name}"):
                refs[name] = _metric(text, dataset, schedule)
    signal = None
    with problems.check("signal"):
        signal = _metric(fields["signal"], dataset, schedule)
    problems.raise_any()
    assert signal is not None
    return SearchProtocol(
        dataset=dataset,
        schedule=schedule,
        epoch=fields["epoch"],
        signal=signal,
        seed_policy=SeedPolicy(fields["seed_policy"], fields["seed"]),
        include_validation_time=fields["include_validation_time"],
        visible=found["visible"],
        sealed=found["sealed"],
        cost=fields["cost"],
        evaluator=fields["evaluator"],
    )


def _budget(raw: Any) -> Budget:
    """``[budget]``; ``overrun`` is needed only where a seconds limit can be crossed, and
    without one it is :data:`DEFAULT_OVERRUN`, recorded like any value."""
    fields = validate(raw, BUDGET_FIELDS)
    if fields["overrun"] is None:
        if fields["seconds"] is not None:
            raise ConfigError(
                "is required with a seconds budget: what happens to the evaluation that would "
                f"cross it ({', '.join(OVERRUN_RULES)}; see docs/specs.md)",
                "overrun",
            )
        fields["overrun"] = DEFAULT_OVERRUN
    return Budget(**fields)


def _blame(problem: ConfigError, overrides: Mapping[str, Any]) -> ConfigError:
    """A problem in a value that an override set is the override's, not the file's: its
    field becomes ``overrides.<key>`` (:func:`harness.config.spec_error` then names no
    file)."""
    field = problem.field or ""
    parts = field.split(".")
    budget = overrides.get("budget", {})
    # an overrun rule is needed because an override set a seconds limit
    needs_rule = field == "budget.overrun" and "seconds" in budget
    if parts[0] == "budget" and budget and (len(parts) == 1 or parts[1] in budget or needs_rule):
        return ConfigError(problem.message, f"overrides.{field}")
    if field.startswith("runs.seeds") and "seeds" in overrides:
        return ConfigError(problem.message, "overrides." + field.removeprefix("runs."))
    return problem


def _supernet(raw: Any, base: Path) -> dict[str, Any]:
    """``[supernet]``, validated; a data-free input is refused (a supernet trains on data)."""
    given = validate(raw, SUPERNET_FIELDS)
    problems = Problems()
    if given["shape"] is not None:
        problems.add(
            ConfigError(
                "gives a data-free input shape, but weight sharing trains a supernet on data: "
                "name a dataset and its two splits instead",
                "shape",
            )
        )
    for key in ("weights_split_sha256", "arch_split_sha256"):
        if given[key] is not None and not HEX64.fullmatch(given[key]):
            problems.add(ConfigError(f"must be 64 lowercase hex digits, got {given[key]!r}", key))
    if given["split_dir"] is not None:
        with problems.check():
            given["split_dir"] = _path(base, given["split_dir"], "split_dir")
    problems.raise_any()
    return {k: v for k, v in given.items() if k != "shape"}


def _resolved_supernet(supernet: dict[str, Any]) -> dict[str, Any]:
    """What the hash covers of ``[supernet]``: everything but where the split files live
    (their content is pinned by the split hashes)."""
    return {k: v for k, v in supernet.items() if k != "split_dir"}


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
    problems = Problems()
    for i, entry in enumerate(raw):
        with problems.check(f"strategy.{i}"):
            fields = validate(entry, STRATEGY_FIELDS)
            if fields["name"] is None:
                if not NAME_PATTERN.fullmatch(fields["kind"]):
                    raise ConfigError(
                        f"is required where the kind ({fields['kind']!r}) is no valid name",
                        "name",
                    )
                fields["name"] = fields["kind"]
            checks = Problems()
            with checks.check():
                _check_name(fields["name"], "name")
                if any(s.name == fields["name"] for s in specs):
                    raise ConfigError(
                        f"{fields['name']!r} is used twice; names must be unique", "name"
                    )
            with checks.check("kind"):
                strategy_class(fields["kind"])
            if not checks.errors:  # a kind that cannot be loaded has no params to check
                with checks.check("params"):
                    params = resolve_params(fields["kind"], fields["params"])
            checks.raise_any()
            specs.append(StrategySpec(fields["name"], fields["kind"], params, fields["overrun"]))
    problems.raise_any()
    return tuple(specs)


def _targets(entries: Sequence[Any], dataset: str, schedule: str) -> tuple[Target, ...]:
    if not entries:
        raise ConfigError(
            "lists no targets, so the report would have nothing to tabulate; add "
            "[[report.target]] tables (label, metric)",
            "target",
        )
    targets: list[Target] = []
    problems = Problems()
    for i, entry in enumerate(entries):
        with problems.check(f"target.{i}"):
            fields = validate(entry, TARGET_FIELDS)
            _check_name(fields["label"], "label")
            if any(t.label == fields["label"] for t in targets):
                raise ConfigError(f"{fields['label']!r} is used twice", "label")
            with at("metric"):
                ref = _metric(fields["metric"], dataset, schedule)
            targets.append(Target(fields["label"], ref, fields["direction"]))
    problems.raise_any()
    return tuple(targets)


def _published(
    raw: Any, strategies: tuple[StrategySpec, ...], targets: tuple[Target, ...]
) -> tuple[dict[str, dict[str, tuple[float, ...]]], str]:
    if not isinstance(raw, dict):
        raise ConfigError("must be a table")
    problems = Problems()
    source = raw.get("source", "")
    if not isinstance(source, str):
        problems.add(ConfigError("must be a string", "source"))
    names = {s.name for s in strategies}
    labels = {t.label for t in targets}
    published: dict[str, dict[str, tuple[float, ...]]] = {}
    for method, row in raw.items():
        if method == "source":
            continue
        with problems.check(method):
            if method not in names and method != "optimal":
                raise ConfigError(
                    f"names no strategy; strategies: {', '.join(sorted(names))} "
                    "(or 'optimal' for the best possible row)"
                )
            if not isinstance(row, dict):
                raise ConfigError("must be a table of label = [mean, std] or [mean, std, n]")
            published[method] = {}
            for label, pair in row.items():
                with problems.check(f"{method}.{label}"):
                    if label not in labels:
                        raise ConfigError(
                            f"names no report target; targets: {', '.join(sorted(labels))}"
                        )
                    values = Field(list, items=float).check(pair)
                    # n, the published runs, lets the report test the reproduction (Welch, TOST)
                    if len(values) not in (2, 3) or (
                        len(values) == 3 and (values[2] < 2 or values[2] != int(values[2]))
                    ):
                        raise ConfigError("must be [mean, std] or [mean, std, n] with n ≥ 2 runs")
                    published[method][label] = tuple(values)
    problems.raise_any()
    return published, source

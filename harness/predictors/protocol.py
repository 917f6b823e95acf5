"""The predictor protocol of NASLib (White et al., "How powerful are performance
predictors in neural architecture search?", NeurIPS 2021), on a pinned table.

A predict spec names a table (pinned by sha256), the metric every predictor learns and
is judged on (its seed mean at the variable's last epoch, NASLib's final validation
accuracy), zero-cost proxies usable as features (``[[feature]]``: a variable of an
estimate file pinned by sha256), the predictors, the training-set sizes, the test-set
size and the number of trials. NASLib's ``vary_train_size`` experiment, trial by trial:

1. Draw the test set (``test_size`` distinct architectures), then the largest training
   set (distinct from each other and from the test set), uniformly from the pool, from
   stream ``predictor_sample`` of the master seed, keyed by the trial.
2. For each training-set size ``n`` in increasing order, train on the first ``n`` of that
   training set (the sets are nested, as NASLib takes ``full_train_data[:n]``): fit a
   fresh predictor (its draws from stream ``predictor_fit`` keyed by trial, size and
   predictor), timing the fit, then predict the whole test set, timing the query.
3. Compare the predictions with the test set's targets: Spearman ρ and Kendall τ (τ-b),
   NASLib's ``spearman`` and ``kendalltau``.

Times are measured on the host (``fit_s``, ``query_s`` per architecture, as NASLib's
``fit_time`` and ``query_time``; the trial's architectures are encoded once before any
timing, so ``fit_s`` is the model's own); simulated costs come from the tables: the full
trainings a training set needs (``train_cost_s``, NASLib's ``train_time``) and what one
prediction reads (``query_cost_s``: a proxy's measured score, a partial training).

The pool is every architecture with a finite target and training cost that every
predictor can predict (a proxy estimate file of a sample scores only its sample, a curves
table of some cells only those cells), so all predictors are judged on the same test sets;
the report gives its size. A largest training set and test set that do not fit in the
pool are refused before any trial.

A spec whose predictors all need no training set (proxies, learning-curve rules) may say
``train_sizes = [0]``: no training set is drawn, and the test set may be the whole pool
(then every trial would score the same architectures, so such a spec runs one trial). A
predictor that learns from a training set is refused in such a spec.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

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
from harness.estimators.learning_curves import RULE_CURVES, load_curves
from harness.evaluators.tabular import resolve_metric
from harness.plugins import origin
from harness.predictors import predictor_class
from harness.predictors.base import Predictor, PredictorInputs
from harness.seeding import stream_generator
from harness.spaces import get_space
from harness.spaces.base import SearchSpace
from harness.table import Table
from harness.values import MetricRef, is_test_split

#: what a feature's or predictor's name may hold: it names MLflow params and metrics
LABEL = re.compile(r"[A-Za-z0-9_.-]+")
PREDICT_FIELDS = {
    "name": Field(str, help="names the MLflow experiment and the report"),
    "title": Field(str, None, optional=True, help="the report's heading (default: the name)"),
    "space": Field(str, help="the search space the table covers"),
    "results": Field(str, help="the report folder, relative to the spec"),
    "seed": Field(int, 0, low=0, high=2**63 - 1, help="the master seed of every trial"),
    "trials": Field(int, 10, low=1, high=100_000, help="trials, each its own test set"),
    "train_sizes": Field(
        list,
        items=int,
        help="training-set sizes, increasing; [0] where no predictor needs a training set",
    ),
    "test_size": Field(int, 200, low=2, help="architectures in each trial's test set"),
    "notes": Field(list, [], items=str, help="sentences the report lists under the protocol"),
}
TABLE_FIELDS = {
    "path": Field(str, help="the table, relative to the spec"),
    "sha256": Field(str, help="pin of that table"),
    "metric": Field(str, help="target and ground truth: dataset/schedule/split/metric"),
    "cost": Field(str, help="the variable of a full training's seconds"),
    "curves": Field(str, None, optional=True, help="dataset/schedule of learning curves"),
    "curve_seed": Field(str, None, optional=True, help="the training whose curves are read"),
    "curve_split": Field(
        str,
        None,
        optional=True,
        help="the split of the validation accuracy curve the rules read (absent: valid)",
    ),
    "build": Field(
        dict, None, optional=True, help="how to build the table if it is missing ([table.build])"
    ),
}
FEATURE_FIELDS = {
    "name": Field(str, help="the label predictors name it by (`params.proxies`, `feature`)"),
    "estimate": Field(str, help="the estimate file, relative to the spec"),
    "sha256": Field(str, help="pin of that file"),
    "variable": Field(str, help="input/init/estimator/score"),
}
PREDICTOR_FIELDS = {
    "name": Field(str, help="the predictor's label in the report and the record"),
    "kind": Field(str, help="built-in kind, entry point or package.module:Class"),
    "params": Field(dict, {}, help="its hyperparameters (see Predictor kinds)"),
}
PREDICT_SPEC = SpecFormat(
    title="Predict spec",
    command="harness predict SPEC",
    about="NASLib's predictor protocol: predictors fitted on training sets drawn from a "
    "pinned table and judged on fixed test sets; `benchmarks/predictors/digits.toml` is a "
    "complete one.",
    sections=(
        Section("predict", PREDICT_FIELDS, "The protocol: trials, sizes, seed.", required=True),
        Section(
            "table",
            TABLE_FIELDS,
            "The table the targets, costs and learning curves come from.",
            required=True,
        ),
        Section(
            "feature",
            FEATURE_FIELDS,
            "A zero-cost proxy's scores, from a pinned estimate file, usable as a feature.",
            repeated=True,
        ),
        Section("predictor", PREDICTOR_FIELDS, "One per predictor.", required=True, repeated=True),
    ),
)


@dataclass(frozen=True)
class FeatureSpec:
    """One ``[[feature]]``: a proxy's scores in a pinned estimate file."""

    name: str
    path: Path
    sha256: str
    score: MetricRef

    @property
    def cost(self) -> MetricRef:
        return MetricRef(self.score.dataset, self.score.schedule, self.score.split, "cost_s")


@dataclass(frozen=True)
class PredictorSpec:
    """One ``[[predictor]]``: its label, the class it names and its parameters."""

    name: str
    kind: str
    params: dict[str, Any]


@dataclass(frozen=True)
class PredictSpec:
    """A ``harness predict`` spec, validated, with paths resolved against its folder."""

    path: Path
    name: str
    title: str
    space: SearchSpace
    results: Path
    seed: int
    trials: int
    train_sizes: tuple[int, ...]
    test_size: int
    notes: tuple[str, ...]
    table: Path
    table_sha256: str
    metric: MetricRef
    cost: MetricRef
    curves: tuple[str, str] | None
    curve_seed: str | None
    curve_split: str
    build: dict[str, Any] | None
    features: tuple[FeatureSpec, ...]
    predictors: tuple[PredictorSpec, ...]
    resolved: dict[str, Any]

    @property
    def spec_hash(self) -> str:
        return config_hash(self.resolved)


def is_predict_spec(path: Path) -> bool:
    """Whether the TOML file at ``path`` is a predict spec (it has ``[predict]``)."""
    return "predict" in read_toml(path)


def load_predict_spec(path: Path) -> PredictSpec:
    """Read and validate a predict spec; errors name the file and field."""
    raw = read_toml(path)
    try:
        return _parse(raw, Path(path))
    except ConfigError as error:
        raise spec_error(path, error) from None


def _sha(value: str) -> str:
    if not (len(value) == 64 and all(c in "0123456789abcdef" for c in value)):
        raise ConfigError(f"must be 64 lowercase hex digits, got {value!r}", "sha256")
    return value


def _parse(raw: dict[str, Any], path: Path) -> PredictSpec:
    base = path.resolve().parent
    # every section is checked on its own, so that one reading reports every problem; a
    # check that needs another section (a predictor's feature) waits for it to be valid
    problems = Problems()
    problems.errors += PREDICT_SPEC.section_problems(raw)
    section = space = table = metric = cost = features = predictors = None
    curves = build = None
    if "predict" in raw:
        with problems.check("predict"):
            section, space = _predict(raw["predict"])
    if "table" in raw:
        with problems.check("table"):
            table, metric, cost, curves, build = _table(raw["table"])
    with problems.check():
        features = _features(raw.get("feature", []), base)
    if "predictor" in raw:
        names = None if features is None else [f.name for f in features]
        sizes = None if section is None else section["train_sizes"]
        with problems.check():
            predictors = _predictors(raw["predictor"], names, table, sizes)
    problems.raise_any()
    assert None not in (section, space, table, metric, cost, features, predictors)
    # curve_split and build count in the spec hash only where the spec gives them
    hashed = {k: v for k, v in table.items() if k != "path"}
    for key in ("curve_split", "build"):
        if hashed[key] is None:
            del hashed[key]
    if build is not None:
        hashed["build"] = {k: v for k, v in build.items() if k != "source"}
    resolved = {
        "predict": {k: v for k, v in section.items() if k != "results"},
        "table": hashed,
        "features": [
            {"name": f.name, "sha256": f.sha256, "variable": str(f.score)} for f in features
        ],
        "predictors": [{"name": p.name, "kind": p.kind, "params": p.params} for p in predictors],
    }
    return PredictSpec(
        path=path,
        name=section["name"],
        title=section["title"] or section["name"],
        space=space,
        results=(base / section["results"]).resolve(),
        seed=section["seed"],
        trials=section["trials"],
        train_sizes=tuple(section["train_sizes"]),
        test_size=section["test_size"],
        notes=tuple(section["notes"]),
        table=(base / table["path"]).resolve(),
        table_sha256=table["sha256"],
        metric=metric,
        cost=cost,
        curves=curves,
        curve_seed=table["curve_seed"],
        curve_split=table["curve_split"] or "valid",
        build=None if build is None else {**build, "source": _source(base, build["source"])},
        features=tuple(features),
        predictors=tuple(predictors),
        resolved=resolved,
    )


def _source(base: Path, text: str | None) -> Path | None:
    return None if text is None else (base / text).resolve()


def _predict(raw: Any) -> tuple[dict[str, Any], SearchSpace]:
    """``[predict]`` and the space it names."""
    section = validate(raw, PREDICT_FIELDS)
    problems = Problems()
    sizes = section["train_sizes"]
    if sizes != [0] and (not sizes or any(n < 1 for n in sizes) or sizes != sorted(set(sizes))):
        problems.add(
            ConfigError(
                f"must be distinct positive sizes in increasing order, or [0] (no training "
                f"set), got {sizes}",
                "train_sizes",
            )
        )
    with problems.check("space"):
        space = get_space(section["space"])
    problems.raise_any()
    return section, space


def _table(
    raw: Any,
) -> tuple[dict[str, Any], MetricRef, MetricRef, tuple[str, str] | None, dict[str, Any] | None]:
    """``[table]``: its fields, the target and cost metrics, the learning curves, and how
    to build the table if it is missing."""
    table = validate(raw, TABLE_FIELDS)
    problems = Problems()
    with problems.check():
        _sha(table["sha256"])
    with problems.check("metric"):
        metric = MetricRef.parse(table["metric"])
    with problems.check("cost"):
        cost = MetricRef.parse(table["cost"])
    curves = None
    if table["curves"] is not None:
        with problems.check("curves"):
            dataset, _, schedule = table["curves"].partition("/")
            if not dataset or not schedule or "/" in schedule:
                raise ConfigError(
                    f"expected 'dataset/schedule' (e.g. 'digits/e4'), got {table['curves']!r}"
                )
            curves = (dataset, schedule)
    if table["curve_split"] is not None and is_test_split(table["curve_split"]):
        problems.add(
            ConfigError(
                f"{table['curve_split']!r} is a test split, which is sealed: the rules read "
                "a validation curve (e.g. 'valid', 'x-valid')",
                "curve_split",
            )
        )
    build = None
    if table["build"] is not None:
        from harness.importers import importer_class
        from harness.spec import BUILD_FIELDS

        with problems.check("build"):
            build = validate(table["build"], BUILD_FIELDS)
            with at("importer"):
                importer_class(build["importer"])
    problems.raise_any()
    return table, metric, cost, curves, build


def _check_label(name: str) -> None:
    if not LABEL.fullmatch(name):
        raise ConfigError(
            f"{name!r} may hold only letters, digits, '_', '-' and '.' (it names MLflow "
            "params and metrics)",
            "name",
        )


def _features(raw: Any, base: Path) -> list[FeatureSpec]:
    """The ``[[feature]]`` tables, each checked on its own."""
    if not isinstance(raw, list):
        raise ConfigError("must be [[feature]] tables", "feature")
    features = []
    problems = Problems()
    for number, entry in enumerate(raw):
        with problems.check(f"feature.{number}"):
            given = validate(entry, FEATURE_FIELDS)
            checks = Problems()
            with checks.check():
                _check_label(given["name"])
            with checks.check():
                _sha(given["sha256"])
            with checks.check("variable"):
                score = MetricRef.parse(given["variable"])
            checks.raise_any()
            features.append(
                FeatureSpec(
                    given["name"], (base / given["estimate"]).resolve(), given["sha256"], score
                )
            )
    names = [f.name for f in features]
    if len(set(names)) != len(names):
        problems.add(ConfigError("names must differ", "feature"))
    problems.raise_any()
    return features


def _predictors(
    raw: Any,
    features: list[str] | None,
    table: dict[str, Any] | None,
    sizes: list[int] | None,
) -> list[PredictorSpec]:
    """The ``[[predictor]]`` tables, each checked on its own; the features they name, the
    curves they read and their need of a training set are checked once ``[[feature]]``,
    ``[table]`` and ``[predict]`` are valid."""
    if not isinstance(raw, list) or not raw:
        raise ConfigError("must be one or more [[predictor]] tables", "predictor")
    predictors = []
    problems = Problems()
    for number, entry in enumerate(raw):
        with problems.check(f"predictor.{number}"):
            given = validate(entry, PREDICTOR_FIELDS)
            checks = Problems()
            with checks.check():
                _check_label(given["name"])
            cls = None
            with checks.check("kind"):
                cls = predictor_class(given["kind"])
            if cls is not None:  # a kind that cannot be loaded has no params to check
                with checks.check("params"):
                    params = cls.resolve_hyperparameters(given["params"])
                    for name in [*params.get("proxies", []), params.get("feature")]:
                        if name is not None and features is not None and name not in features:
                            raise ConfigError(
                                f"names no [[feature]] {name!r}; features: "
                                f"{', '.join(features) or 'none'}"
                            )
                if sizes == [0] and cls.needs_training:
                    checks.add(
                        ConfigError(
                            f"{given['kind']!r} learns from a training set, but train_sizes is "
                            "[0] (no training set); give training-set sizes or drop the predictor",
                            "kind",
                        )
                    )
                rule = getattr(cls, "rule", "")
                if rule in RULE_CURVES and table is not None and table["curves"] is None:
                    checks.add(
                        ConfigError(
                            f"learning-curve rule {given['kind']!r} needs [table] curves "
                            "(the dataset/schedule whose per-epoch curves it reads)",
                            "kind",
                        )
                    )
            checks.raise_any()
            predictors.append(PredictorSpec(given["name"], given["kind"], params))
    labels = [p.name for p in predictors]
    if len(set(labels)) != len(labels):
        problems.add(ConfigError("names must differ", "predictor"))
    problems.raise_any()
    return predictors


# --- the protocol ---------------------------------------------------------------------------


@dataclass
class Prepared:
    """Everything a trial reads, loaded and checked: the tables, the inputs, the pool."""

    spec: PredictSpec
    table: Table
    estimates: dict[str, Table]
    inputs: PredictorInputs
    target: np.ndarray
    train_cost: np.ndarray
    pool: np.ndarray


def _curve_rules(spec: PredictSpec) -> tuple[str, ...]:
    return tuple(
        rule
        for p in spec.predictors
        if (rule := getattr(predictor_class(p.kind), "rule", "")) in RULE_CURVES
    )


def prepare(spec: PredictSpec) -> Prepared:
    """Load and check the table, the proxies and the curves, and every predictor's
    inputs; refuse a training size the pool cannot hold. Nothing is fitted yet. A missing
    table is built first where ``[table] build`` says how."""
    if not spec.table.exists() and spec.build is not None:
        from harness.importers import build_table

        build = spec.build
        try:
            build_table(build["importer"], spec.table, build["source"], build["dataset"])
        except ConfigError as error:
            raise spec_error(
                spec.path, ConfigError(error.message, f"table.build.{error.field}")
            ) from None
    table = Table.load(spec.table, expected_sha256=spec.table_sha256)
    if table.space != spec.space.name:
        raise TableError(
            f"{spec.table} holds space {table.space!r}; the spec predicts {spec.space.name!r}"
        )
    target = resolve_metric(table, spec.metric)
    train_cost = resolve_metric(table, spec.cost)
    estimates, proxies = {}, {}
    for feature in spec.features:
        estimate = Table.load(feature.path, expected_sha256=feature.sha256)
        if estimate.space != spec.space.name:
            raise TableError(
                f"{feature.path} holds space {estimate.space!r}; [[feature]] {feature.name!r} "
                f"must score space {spec.space.name!r}"
            )
        estimates[feature.name] = estimate
        proxies[feature.name] = (
            resolve_metric(estimate, feature.score).astype(np.float64),
            resolve_metric(estimate, feature.cost).astype(np.float64),
        )
    curves = None
    if spec.curves is not None and _curve_rules(spec):
        curves = load_curves(
            table, *spec.curves, spec.curve_seed, _curve_rules(spec), spec.curve_split
        )
    inputs = PredictorInputs(spec.space, proxies, curves)
    usable = np.isfinite(target) & np.isfinite(train_cost)
    for number, entry in enumerate(spec.predictors):
        with at(f"predictor.{number}.params"):
            try:
                predictor = _build(entry, inputs)
            except ConfigError as error:
                raise spec_error(spec.path, error) from None
            except TableError as error:  # a rule's epoch the curves do not hold
                raise TableError(f"{spec.path}: [predictor.{number}] {error}") from None
        required = predictor.required()
        if required is not None:
            usable &= required
    pool = np.flatnonzero(usable)
    needed = spec.test_size + spec.train_sizes[-1]
    if needed > len(pool):
        raise spec_error(
            spec.path,
            ConfigError(
                f"the largest training set ({spec.train_sizes[-1]:,}) and the test set "
                f"({spec.test_size:,}) need {needed:,} distinct architectures, but the table "
                f"has {len(pool):,} that every predictor can predict; lower the sizes",
                "predict.train_sizes",
            ),
        )
    if spec.test_size == len(pool) and spec.trials > 1:
        raise spec_error(
            spec.path,
            ConfigError(
                f"the test set is the whole pool ({len(pool):,} architectures that every "
                f"predictor can predict), so all {spec.trials} trials would score the same "
                "ones; set trials = 1 or a smaller test_size",
                "predict.trials",
            ),
        )
    return Prepared(spec, table, estimates, inputs, target, train_cost, pool)


def _build(entry: PredictorSpec, inputs: PredictorInputs) -> Predictor:
    predictor = predictor_class(entry.kind)(inputs, **entry.params)
    predictor.check()
    return predictor


def _correlations(prediction: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    from scipy import stats

    if not np.all(np.isfinite(prediction)) or np.ptp(prediction) == 0:
        return float("nan"), float("nan")  # a constant prediction ranks nothing
    rho = stats.spearmanr(prediction, truth).statistic
    tau = stats.kendalltau(prediction, truth).statistic
    return float(rho), float(tau)


def trial_sets(prepared: Prepared, trial: int) -> tuple[np.ndarray, np.ndarray]:
    """A trial's test set and its largest training set (each size trains on a prefix):
    distinct architectures of the pool, test set first, from the trial's own stream."""
    spec = prepared.spec
    rng = stream_generator(spec.seed, "predictor_sample", trial)
    drawn = rng.choice(prepared.pool, spec.test_size + spec.train_sizes[-1], replace=False)
    return drawn[: spec.test_size], drawn[spec.test_size :]


def run_trial(prepared: Prepared, trial: int) -> list[dict[str, Any]]:
    """One trial of the protocol: one row per (predictor, training-set size)."""
    spec = prepared.spec
    test, train = trial_sets(prepared, trial)
    drawn = np.concatenate([test, train])
    truth = prepared.target[test]
    for kind in _encodings(prepared):  # encoded before any timing: fit_s is the model's own
        prepared.inputs.encode(drawn, kind)
    rows = []
    for index, entry in enumerate(spec.predictors):
        predictor = _build(entry, prepared.inputs)
        query_cost = float(predictor.query_cost_s(test).mean())
        fixed = None
        for size_index, size in enumerate(spec.train_sizes):
            fit_s = 0.0
            if predictor.needs_training:
                predictor = _build(entry, prepared.inputs)
                fit_rng = stream_generator(spec.seed, "predictor_fit", trial, size_index, index)
                tic = time.perf_counter()
                predictor.fit(train[:size], prepared.target[train[:size]], fit_rng)
                fit_s = time.perf_counter() - tic
            if predictor.needs_training or fixed is None:
                tic = time.perf_counter()
                prediction = np.asarray(predictor.predict(test), dtype=np.float64)
                query_s = (time.perf_counter() - tic) / len(test)
                fixed = (prediction, query_s)
            prediction, query_s = fixed
            rho, tau = _correlations(prediction, truth)
            train_cost = 0.0
            if predictor.needs_training:
                chosen = train[:size]
                train_cost = float(prepared.train_cost[chosen].sum())
                train_cost += float(predictor.query_cost_s(chosen).sum())
            rows.append(
                {
                    "trial": trial,
                    "predictor": entry.name,
                    "kind": entry.kind,
                    "train_size": size,
                    "rho": rho,
                    "tau": tau,
                    "fit_s": fit_s,
                    "query_s": query_s,
                    "train_cost_s": train_cost,
                    "query_cost_s": query_cost,
                }
            )
    return rows


def _encodings(prepared: Prepared) -> set[str]:
    kinds = set()
    for entry in prepared.spec.predictors:
        encoding = entry.params.get("encoding")
        if encoding is not None:
            kinds.add(prepared.inputs.encoding_kind(encoding))
    return kinds


def run_protocol(prepared: Prepared, progress: Any = None) -> pd.DataFrame:
    """Every trial, in order: one row per (trial, predictor, training-set size)."""
    rows = []
    for trial in range(prepared.spec.trials):
        rows += run_trial(prepared, trial)
        if progress is not None:
            progress(trial + 1, prepared.spec.trials)
    return pd.DataFrame(rows)


def summarize(trials: pd.DataFrame) -> pd.DataFrame:
    """Per (predictor, training-set size): mean and standard deviation of ρ and τ over
    trials, the median host times and the mean simulated costs."""
    grouped = trials.groupby(["predictor", "train_size"], sort=False)
    summary = grouped.agg(
        kind=("kind", "first"),
        trials=("trial", "count"),
        rho=("rho", "mean"),
        rho_std=("rho", "std"),
        tau=("tau", "mean"),
        tau_std=("tau", "std"),
        undefined=("rho", lambda s: int(s.isna().sum())),
        fit_s=("fit_s", "median"),
        query_s=("query_s", "median"),
        train_cost_s=("train_cost_s", "mean"),
        query_cost_s=("query_cost_s", "mean"),
    )
    return summary.reset_index()


def origins(spec: PredictSpec) -> dict[str, dict[str, str]]:
    """Where each predictor's class came from (recorded like a strategy's)."""
    return {p.name: origin(predictor_class(p.kind)) for p in spec.predictors}

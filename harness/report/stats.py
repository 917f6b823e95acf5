"""Statistics of a study: per-cell summaries, ranks, paired comparisons between methods and
the test of a published result.

Every method of a benchmark runs the same master seeds and each run's streams derive only
from its master seed (``harness.seeding``), so run *s* of one method and run *s* of
another share their first random draws: within one benchmark, comparisons are paired by
seed. Across benchmarks the seeds of different benchmarks are not replicates of one
another, so the unit of replication is the benchmark (Demšar, JMLR 2006): one value per
method and benchmark, the mean over its seeds. Evidence that repeats itself is counted
once: methods equal on every seed are tested as one, and of two benchmarks that repeat
each other (the same table and target, and most methods' values equal seed by seed) only
the first enters the pooled tests.

The primary post-hoc procedure is one: Wilcoxon signed-rank tests between every pair of
methods, Holm-corrected within each family (each benchmark's pairs; the pooled pairs),
as Benavoli, Corani & Mangili (JMLR 2016) recommend over mean-rank tests such as Nemenyi's,
whose verdict on two methods depends on which others ran. Friedman's test is the omnibus.
Zero differences are dropped (Wilcoxon's rule) and counted, with Pratt's rule as the
sensitivity check; the exact null distribution is used when at most
:data:`EXACT_LIMIT` nonzero differences remain and none tie, else the normal
approximation with its tie correction. Both effect sizes leave zero differences out:
matched-pairs rank-biserial r (Kerby 2014) and the share of nonzero differences in a's
favour.

Tests come from SciPy (Friedman, Wilcoxon, Welch, Student's t for the equivalence test,
bootstrap) and Holm's correction from statsmodels.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import combinations

import numpy as np
import pandas as pd
from scipy import stats

from harness.report.study import Study
from harness.seeding import stream_generator

#: the master seed of the report's bootstrap streams (one stream per cell, keyed by name)
BOOTSTRAP_SEED = 0
#: bootstrap resamples per cell: 2,000 suffice for a 95% BCa interval (Efron &
#: Tibshirani 1993, §19.3; Carpenter & Bithell 2000) and keep a 1,500-run report quick
RESAMPLES = 2_000
#: values a bootstrap holds at once: resamples and jackknife samples go in batches of
#: this many values (8 MB each), so memory stays O(seeds), not O(seeds²); the interval is
#: bit-identical to one unbatched call
BATCH_VALUES = 2**20
ALPHA = 0.05
#: the most nonzero, untied paired differences tested with Wilcoxon's exact null
#: distribution (SciPy's own limit for its "auto" choice)
EXACT_LIMIT = 50
#: a method repeats itself on two benchmarks when its values agree on this share of seeds
REPEAT_SHARE = 0.8
#: the equivalence margin of the reproduction test, in published standard deviations
EQUIVALENCE_MARGIN = 0.5
#: the family of the tests that pool benchmarks
POOLED = "pooled"


@contextmanager
def quiet() -> Iterator[None]:
    """SciPy's warnings on degenerate input (0/0 in a Friedman statistic of all-tied
    blocks) stay out of the terminal: the callers report such a statistic as undefined."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def bootstrap_generator(key: str) -> np.random.Generator:
    """The bootstrap stream of one table cell: derived from :data:`BOOTSTRAP_SEED` and the
    cell's name, so adding a method or a benchmark never changes another cell's interval."""
    digest = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big")
    return stream_generator(BOOTSTRAP_SEED, "report", digest)


def bootstrap_interval(values: np.ndarray, key: str) -> tuple[float, float]:
    """BCa bootstrap 95% interval of the mean (SciPy; a constant sample is its own)."""
    if len(values) < 2 or np.all(values == values[0]):
        return float(values[0]), float(values[0])
    found = stats.bootstrap(
        (values,),
        np.mean,
        n_resamples=RESAMPLES,
        confidence_level=1 - ALPHA,
        method="BCa",
        rng=bootstrap_generator(key),
        vectorized=True,
        batch=max(1, BATCH_VALUES // len(values)),
    ).confidence_interval
    return float(found.low), float(found.high)


def rank_matrix(values: np.ndarray) -> np.ndarray:
    """Ranks of each row's methods, 1 = best (highest value), ties averaged."""
    return stats.rankdata(-values, axis=1, method="average")


def paired(frame: pd.DataFrame, methods: list[str]) -> tuple[pd.DataFrame, int]:
    """``score`` (the value, higher is better) as one row per (benchmark, seed) block and
    one column per method; blocks some method lacks are dropped (their count is returned)."""
    table = frame.pivot_table(
        index=["benchmark", "seed"], columns="method", values="score", aggfunc="first"
    )
    table = table.reindex(columns=methods)
    complete = table.dropna()
    return complete, len(table) - len(complete)


def summary(study: Study) -> pd.DataFrame:
    """One row per (benchmark, target, method): spread, bootstrap interval, regret, rank
    (seed-matched, within the benchmark) and the published value (mean, std and, where
    the spec gives it, n) with Δ in published σ, a description, not a test
    (:func:`reproduction` tests)."""
    rows = []
    for b in study.benchmarks:
        published = b.resolved["published"]["values"]
        for label in b.labels:
            frame = study.scores[
                (study.scores.benchmark == b.name) & (study.scores.target == label)
            ]
            matrix, _ = paired(frame, b.methods)
            ranks = rank_matrix(matrix.to_numpy()).mean(axis=0) if len(matrix) else None
            for i, method in enumerate(b.methods):
                mine = frame[frame.method == method]
                values = mine["value"].to_numpy()
                low, high = bootstrap_interval(values, f"{b.name}/{label}/{method}")
                pub = published.get(method, {}).get(label, [np.nan, np.nan])
                q1, median, q3 = np.percentile(values, [25, 50, 75])
                std = float(values.std(ddof=1)) if len(values) > 1 else np.nan
                delta = (values.mean() - pub[0]) / pub[1] if pub[1] and pub[1] > 0 else np.nan
                rows.append(
                    {
                        "benchmark": b.name,
                        "target": label,
                        "method": method,
                        "n": len(values),
                        "mean": values.mean(),
                        "std": std,
                        "median": median,
                        "q1": q1,
                        "q3": q3,
                        "iqr": q3 - q1,
                        "ci_low": low,
                        "ci_high": high,
                        "regret_mean": mine["regret"].mean(),
                        "regret_median": mine["regret"].median(),
                        "optimum": b.optimal[label],
                        "mean_rank": np.nan if ranks is None else ranks[i],
                        "published_mean": pub[0],
                        "published_std": pub[1],
                        "published_n": pub[2] if len(pub) > 2 else np.nan,
                        "delta_sigma": delta,
                    }
                )
    return pd.DataFrame(rows)


def identical_groups(study: Study) -> dict[str, list[list[str]]]:
    """Per benchmark, the groups of two or more methods whose values are equal on every
    seed and every target (e.g. SH, HB and ASHA on a table with one fidelity, where each
    of their brackets is a new random evaluation), first method first."""
    found = {}
    for b in study.benchmarks:
        frame = study.scores[study.scores.benchmark == b.name]
        table = frame.pivot_table(
            index=["target", "seed"], columns="method", values="value", aggfunc="first"
        )
        groups: list[list[str]] = []
        for method in b.methods:
            column = table[method].to_numpy()
            home = next((g for g in groups if np.array_equal(table[g[0]].to_numpy(), column)), None)
            if home is None:
                groups.append([method])
            else:
                home.append(method)
        found[b.name] = [g for g in groups if len(g) > 1]
    return found


def representatives(study: Study, name: str, groups: dict[str, list[list[str]]]) -> list[str]:
    """A benchmark's methods with each group of identical ones stood for by its first."""
    others = {m for g in groups[name] for m in g[1:]}
    b = next(x for x in study.benchmarks if x.name == name)
    return [m for m in b.methods if m not in others]


@dataclass(frozen=True)
class Repeat:
    """A benchmark that repeats an earlier one: the same table and ranked target, and most
    shared methods' values equal seed by seed (``repeated``, each at least
    :data:`REPEAT_SHARE` of the seeds)."""

    kept: str
    dropped: str
    repeated: list[str]
    shared: int


def near_duplicates(study: Study) -> list[Repeat]:
    """Benchmarks that repeat an earlier benchmark of the study (each dropped once)."""
    primary = study.primary()
    found: list[Repeat] = []
    for i, later in enumerate(study.benchmarks):
        for earlier in study.benchmarks[:i]:
            if earlier.name in {r.dropped for r in found}:
                continue
            if earlier.record.table["sha256"] != later.record.table["sha256"]:
                continue
            if earlier.metric_of(study.target[earlier.name]) != later.metric_of(
                study.target[later.name]
            ):
                continue
            shared = [m for m in earlier.methods if m in later.methods]
            table = (
                primary[primary.benchmark.isin([earlier.name, later.name])]
                .pivot_table(
                    index=["method", "seed"], columns="benchmark", values="value", aggfunc="first"
                )
                .dropna()
            )
            equal = (table[earlier.name] == table[later.name]).groupby(level="method").mean()
            repeated = [m for m in shared if equal.get(m, 0.0) >= REPEAT_SHARE]
            if shared and 2 * len(repeated) >= len(shared):
                found.append(Repeat(earlier.name, later.name, repeated, len(shared)))
                break
    return found


@dataclass(frozen=True)
class Pool:
    """The pooled comparison's data: one value per (benchmark, method), the mean over the
    seeds every method of that benchmark ran, on the ranked target (one role, or one table
    variable, everywhere).
    ``values`` is None where nothing can be pooled; ``notes`` say what was left out and why."""

    values: pd.DataFrame | None  # benchmarks x methods
    notes: list[str]


def pool(study: Study) -> Pool:
    """Benchmarks as blocks (Demšar 2006): the data of every pooled test."""
    if len(study.benchmarks) < 2:
        return Pool(None, [])
    if not study.comparable:
        roles = ", ".join(
            f"{b.name}: {study.target[b.name]} ({b.roles[study.target[b.name]] or 'no role'})"
            for b in study.benchmarks
        )
        return Pool(
            None,
            [
                "No pooled test: the ranked targets neither share one role (validation or "
                f"test of the search's data) nor read one table variable: {roles}. Pick a "
                "role with `--target role:test`."
            ],
        )
    repeats = near_duplicates(study)
    dropped = {r.dropped for r in repeats}
    notes = [
        f"{r.dropped} repeats {r.kept} (same table and target; {len(r.repeated)} of "
        f"{r.shared} methods equal on at least {REPEAT_SHARE:.0%} of seeds: "
        f"{', '.join(r.repeated)}): only {r.kept} enters the pooled tests."
        for r in repeats
    ]
    blocks = [b for b in study.benchmarks if b.name not in dropped]
    if len(blocks) < 2:
        notes.append("Fewer than two distinct benchmarks remain: no pooled test.")
        return Pool(None, notes)
    methods = [m for m in study.methods if all(m in b.methods for b in blocks)]
    groups = identical_groups(study)
    twins = {}
    for m in methods:
        homes = [next((g[0] for g in groups[b.name] if m in g[1:]), None) for b in blocks]
        if homes[0] is not None and len(set(homes)) == 1:
            twins[m] = homes[0]
    if twins:
        notes.append(
            "Identical on every seed of every pooled benchmark, tested as one: "
            + "; ".join(f"{m} = {first}" for m, first in twins.items())
            + "."
        )
    methods = [m for m in methods if m not in twins]
    primary = study.primary()
    rows = {}
    for b in blocks:
        matrix, _ = paired(primary[primary.benchmark == b.name], methods)
        rows[b.name] = matrix.mean(axis=0)
    return Pool(pd.DataFrame(rows).T.reindex(columns=methods), notes)


def average_ranks(study: Study, pooled: Pool | None = None) -> pd.DataFrame:
    """Mean rank of each method per benchmark (its ranked target, seed-matched) and, in
    column ``all``, the mean of a method's per-benchmark ranks over the benchmarks that
    enter the pooled tests (NaN where no pooled test is possible)."""
    primary = study.primary()
    columns = {}
    for b in study.benchmarks:
        matrix, _ = paired(primary[primary.benchmark == b.name], b.methods)
        columns[b.name] = pd.Series(rank_matrix(matrix.to_numpy()).mean(axis=0), b.methods)
    table = pd.DataFrame(columns).reindex(study.methods)
    pooled = pooled or pool(study)
    if len(study.benchmarks) == 1:
        table["all"] = table.iloc[:, 0]
    elif pooled.values is None:
        table["all"] = np.nan
    else:
        table["all"] = table[list(pooled.values.index)].mean(axis=1)
    return table


@dataclass(frozen=True)
class Friedman:
    """Friedman's test in one family: a benchmark with seeds as blocks, or the pooled
    benchmarks as blocks. ``undefined`` says why a statistic has no value."""

    family: str
    unit: str  # what a block is: "seeds" or "benchmarks"
    methods: list[str]
    blocks: int
    dropped: int
    statistic: float
    p_value: float
    mean_ranks: pd.Series
    undefined: str = ""


def _friedman(family: str, unit: str, matrix: pd.DataFrame, dropped: int) -> Friedman:
    methods = list(matrix.columns)
    values = matrix.to_numpy()
    ranks = pd.Series(rank_matrix(values).mean(axis=0) if len(values) else np.nan, methods)
    undefined = ""
    statistic = p_value = np.nan
    if len(methods) < 3:
        undefined = f"needs three or more distinct methods ({len(methods)} here)"
    elif len(values) < 2:
        undefined = f"needs two or more complete blocks ({len(values)} here)"
    else:
        with quiet():
            statistic, p_value = stats.friedmanchisquare(*values.T)
        if not np.isfinite(statistic):
            undefined = "every block ties every method (0/0)"
    return Friedman(
        family,
        unit,
        methods,
        len(values),
        dropped,
        float(statistic),
        float(p_value),
        ranks,
        undefined,
    )


def friedman(study: Study, pooled: Pool | None = None) -> list[Friedman]:
    """Friedman's test per benchmark (seeds as blocks, identical methods as one) and, for
    several benchmarks, over the pooled benchmarks as blocks."""
    primary = study.primary()
    groups = identical_groups(study)
    found = []
    for b in study.benchmarks:
        methods = representatives(study, b.name, groups)
        matrix, dropped = paired(primary[primary.benchmark == b.name], methods)
        found.append(_friedman(b.name, "seeds", matrix, dropped))
    pooled = pooled or pool(study)
    if pooled.values is not None:
        found.append(_friedman(POOLED, "benchmarks", pooled.values, 0))
    return found


def rank_biserial(differences: np.ndarray) -> float:
    """Matched-pairs rank-biserial correlation of paired differences (zeros dropped, as
    the Wilcoxon test drops them): (positive rank sum − negative rank sum) / total."""
    nonzero = differences[differences != 0]
    if not len(nonzero):
        return np.nan
    ranks = stats.rankdata(np.abs(nonzero))
    return float((ranks[nonzero > 0].sum() - ranks[nonzero < 0].sum()) / ranks.sum())


def signed_rank(differences: np.ndarray) -> dict[str, object]:
    """Wilcoxon's signed-rank test of paired differences and its effect sizes.

    Zeros are dropped first and counted; the exact null distribution is used for at most
    :data:`EXACT_LIMIT` remaining differences without ties among their sizes, else the
    normal approximation (tie-corrected). ``p_pratt`` keeps the zeros in the ranking
    (Pratt 1959; exact given the ranks up to the same limit, else normal), the check of
    how much dropping them matters.
    ``p_improvement`` is the share of nonzero differences in a's favour.
    """
    differences = np.asarray(differences, dtype=np.float64)
    nonzero = differences[differences != 0]
    row: dict[str, object] = {
        "n": len(differences),
        "zeros": len(differences) - len(nonzero),
        "mean_difference": differences.mean() if len(differences) else np.nan,
        "rank_biserial": rank_biserial(differences),
        "p_improvement": float(np.mean(nonzero > 0)) if len(nonzero) else np.nan,
        "test": "none",
        "p_value": np.nan,
        "p_pratt": np.nan,
    }
    if not len(nonzero):
        return row
    ties = len(np.unique(np.abs(nonzero))) < len(nonzero)
    exact = len(nonzero) <= EXACT_LIMIT and not ties
    with quiet():
        row["test"] = "exact" if exact else "normal"
        row["p_value"] = float(
            stats.wilcoxon(nonzero, method="exact" if exact else "asymptotic").pvalue
        )
        row["p_pratt"] = (
            pratt_exact(differences)
            if len(nonzero) <= EXACT_LIMIT
            else float(stats.wilcoxon(differences, zero_method="pratt", method="asymptotic").pvalue)
        )
    return row


def pratt_exact(differences: np.ndarray) -> float:
    """Two-sided p of Wilcoxon's test under Pratt's rule, from the exact distribution of
    the positive rank sum given the ranks: zeros take part in the ranking (ties averaged),
    and each nonzero difference's sign is + or − with probability 1/2 under H0."""
    ranks = stats.rankdata(np.abs(differences))
    nonzero = differences != 0
    doubled = np.rint(2 * ranks[nonzero]).astype(int)  # averaged ranks are halves
    counts = np.zeros(doubled.sum() + 1)
    counts[0] = 1.0
    for weight in doubled:  # the number of sign patterns giving each doubled sum
        counts[weight:] = counts[weight:] + counts[: len(counts) - weight].copy()
    observed = int(np.rint(2 * ranks[nonzero & (differences > 0)].sum()))
    probabilities = counts / counts.sum()
    lower, upper = probabilities[: observed + 1].sum(), probabilities[observed:].sum()
    return float(min(1.0, 2 * min(lower, upper)))


def pairwise(study: Study, pooled: Pool | None = None) -> pd.DataFrame:
    """The primary post-hoc procedure: Wilcoxon signed-rank tests of every pair, in one
    Holm family per benchmark (seeds as blocks; identical methods as one) and one for the
    pooled benchmarks (benchmarks as blocks). Pairs without a nonzero difference have no
    test and stay out of their family; ``family_size`` is the number Holm divided among."""
    from statsmodels.stats.multitest import multipletests

    primary = study.primary()
    groups = identical_groups(study)
    families = []
    for b in study.benchmarks:
        methods = representatives(study, b.name, groups)
        matrix, _ = paired(primary[primary.benchmark == b.name], methods)
        families.append((b.name, "seeds", matrix))
    pooled = pooled or pool(study)
    if pooled.values is not None:
        families.append((POOLED, "benchmarks", pooled.values))
    rows = []
    for name, unit, matrix in families:
        family = []
        for a, b in combinations(matrix.columns, 2):
            differences = matrix[a].to_numpy() - matrix[b].to_numpy()
            family.append(
                {"family": name, "blocks": unit, "a": a, "b": b, **signed_rank(differences)}
            )
        tested = [row for row in family if not np.isnan(row["p_value"])]
        if tested:
            corrected = multipletests([r["p_value"] for r in tested], ALPHA, method="holm")[1]
            for row, p_holm in zip(tested, corrected, strict=True):
                row["p_holm"] = float(p_holm)
        for row in family:
            row.setdefault("p_holm", np.nan)
            row["family_size"] = len(tested)
        rows += family
    columns = [
        "family",
        "blocks",
        "a",
        "b",
        "n",
        "zeros",
        "mean_difference",
        "rank_biserial",
        "p_improvement",
        "test",
        "p_value",
        "p_pratt",
        "p_holm",
        "family_size",
    ]
    return pd.DataFrame(rows, columns=columns)


def smallest_p(blocks: int) -> float:
    """The smallest two-sided p an exact signed-rank test can reach with ``blocks``
    nonzero differences: 2 / 2^n."""
    return 2.0 / 2.0**blocks


def reproduction(summary: pd.DataFrame) -> pd.DataFrame:
    """Each published (mean, std, n) against ours: Welch's two-sample t-test (are they
    different?) and Schuirmann's two one-sided tests (TOST) with the margin
    ±:data:`EQUIVALENCE_MARGIN` published σ (are they equivalent?). A row is
    ``reproduced`` when TOST shows equivalence at α, ``different`` when it does not and
    Welch rejects equality, ``inconclusive`` otherwise, ``untested`` without a published n.
    """
    rows = []
    published = summary.dropna(subset=["published_mean"])
    for row in published.itertuples():
        n_pub, std_pub = row.published_n, row.published_std
        found = {
            "benchmark": row.benchmark,
            "target": row.target,
            "method": row.method,
            "n": row.n,
            "mean": row.mean,
            "std": row.std,
            "published_mean": row.published_mean,
            "published_std": std_pub,
            "published_n": n_pub,
            "margin": EQUIVALENCE_MARGIN * std_pub,
            "difference": row.mean - row.published_mean,
            "welch_t": np.nan,
            "welch_df": np.nan,
            "welch_p": np.nan,
            "tost_p": np.nan,
        }
        if np.isnan(n_pub) or n_pub < 2:
            found["verdict"] = "untested: the spec gives no published n"
        elif not std_pub > 0 or row.n < 2:
            found["verdict"] = "untested: needs a published std > 0 and two or more seeds"
        else:
            ours, theirs = row.std**2 / row.n, std_pub**2 / n_pub
            se = np.sqrt(ours + theirs)
            df = (ours + theirs) ** 2 / (ours**2 / (row.n - 1) + theirs**2 / (n_pub - 1))
            welch = stats.ttest_ind_from_stats(
                row.mean, row.std, row.n, row.published_mean, std_pub, n_pub, equal_var=False
            )
            margin = found["margin"]
            lower = stats.t.sf((found["difference"] + margin) / se, df)
            upper = stats.t.cdf((found["difference"] - margin) / se, df)
            found |= {
                "welch_t": float(welch.statistic),
                "welch_df": float(df),
                "welch_p": float(welch.pvalue),
                "tost_p": float(max(lower, upper)),
            }
            if found["tost_p"] < ALPHA:
                found["verdict"] = "reproduced"
            elif found["welch_p"] < ALPHA:
                found["verdict"] = "different"
            else:
                found["verdict"] = "inconclusive"
        rows.append(found)
    return pd.DataFrame(rows)

"""Statistics of a study: per-cell summaries, ranks and paired comparisons between methods.

Every method of a benchmark runs the same master seeds and each run's streams derive only
from its master seed (``harness.seeding``), so run *s* of one method and run *s* of
another share their first random draws: comparisons are paired by seed (Demšar, JMLR
2006, treats each block as one matched observation). Blocks here are (benchmark, seed)
pairs; a seed some method lacks is left out of the paired tests and the report says so.

Tests come from SciPy (Friedman, Wilcoxon signed-rank, bootstrap), Nemenyi's post-hoc
from scikit-posthocs and Holm's correction from statsmodels; only the textbook effect
sizes are computed here (matched-pairs rank-biserial r, Kerby 2014; probability of
improvement, the share of matched seeds one method beats the other on, ties halved).
"""

from __future__ import annotations

import hashlib
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
    (seed-matched, within the benchmark) and the published value with Δ in published σ."""
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
                        "delta_sigma": delta,
                    }
                )
    return pd.DataFrame(rows)


def average_ranks(study: Study) -> pd.DataFrame:
    """Mean rank of each method per benchmark (its ranked target, seed-matched) and, in
    column ``all``, the mean of a method's per-benchmark ranks over benchmarks it ran on."""
    primary = study.primary()
    columns = {}
    for b in study.benchmarks:
        matrix, _ = paired(primary[primary.benchmark == b.name], b.methods)
        columns[b.name] = pd.Series(rank_matrix(matrix.to_numpy()).mean(axis=0), b.methods)
    table = pd.DataFrame(columns).reindex(study.methods)
    table["all"] = table.mean(axis=1)
    return table


@dataclass(frozen=True)
class Friedman:
    """Friedman's test over blocks with every method, and Nemenyi's post-hoc."""

    methods: list[str]
    blocks: int
    dropped: int
    statistic: float
    p_value: float
    mean_ranks: pd.Series
    critical_difference: float
    nemenyi: pd.DataFrame  # p-values, methods x methods


def friedman(study: Study) -> Friedman | None:
    """Friedman + Nemenyi on the methods every benchmark ran (None below three methods).

    The critical difference is Nemenyi's q_α/√2 · √(k(k+1)/(6N)) (Demšar 2006, eq. 5),
    q_α the studentized range quantile from SciPy.
    """
    import scikit_posthocs

    shared = [m for m in study.methods if all(m in b.methods for b in study.benchmarks)]
    if len(shared) < 3:
        return None
    matrix, dropped = paired(study.primary(), shared)
    if len(matrix) < 2:
        return None
    values = matrix.to_numpy()
    statistic, p_value = stats.friedmanchisquare(*values.T)
    k, n = len(shared), len(values)
    q_alpha = stats.studentized_range.ppf(1 - ALPHA, k, np.inf) / np.sqrt(2)
    nemenyi = scikit_posthocs.posthoc_nemenyi_friedman(values)
    nemenyi.index = nemenyi.columns = shared
    return Friedman(
        methods=shared,
        blocks=n,
        dropped=dropped,
        statistic=float(statistic),
        p_value=float(p_value),
        mean_ranks=pd.Series(rank_matrix(values).mean(axis=0), shared),
        critical_difference=float(q_alpha * np.sqrt(k * (k + 1) / (6 * n))),
        nemenyi=nemenyi,
    )


def rank_biserial(differences: np.ndarray) -> float:
    """Matched-pairs rank-biserial correlation of paired differences (zeros dropped, as
    the Wilcoxon test drops them): (positive rank sum − negative rank sum) / total."""
    nonzero = differences[differences != 0]
    if not len(nonzero):
        return 0.0
    ranks = stats.rankdata(np.abs(nonzero))
    return float((ranks[nonzero > 0].sum() - ranks[nonzero < 0].sum()) / ranks.sum())


def pairwise(study: Study) -> pd.DataFrame:
    """Pairwise Wilcoxon signed-rank tests per benchmark (and over all blocks when there
    are several benchmarks), Holm-corrected within each family of pairs."""
    from statsmodels.stats.multitest import multipletests

    primary = study.primary()
    families = [(b.name, b.methods, primary[primary.benchmark == b.name]) for b in study.benchmarks]
    if len(study.benchmarks) > 1:
        shared = [m for m in study.methods if all(m in b.methods for b in study.benchmarks)]
        families.append(("all", shared, primary))
    rows = []
    for name, methods, frame in families:
        matrix, _ = paired(frame, methods)
        family = []
        for a, b in combinations(methods, 2):
            left, right = matrix[a].to_numpy(), matrix[b].to_numpy()
            differences = left - right
            if len(differences) == 0 or not np.any(differences):
                p_value = 1.0
            else:
                p_value = float(stats.wilcoxon(left, right, zero_method="wilcox").pvalue)
            family.append(
                {
                    "benchmark": name,
                    "a": a,
                    "b": b,
                    "n": len(differences),
                    "mean_difference": differences.mean() if len(differences) else np.nan,
                    "rank_biserial": rank_biserial(differences),
                    "p_improvement": float(
                        np.mean(differences > 0) + 0.5 * np.mean(differences == 0)
                    )
                    if len(differences)
                    else np.nan,
                    "p_value": p_value,
                }
            )
        if family:
            corrected = multipletests([r["p_value"] for r in family], ALPHA, method="holm")[1]
            for row, p_holm in zip(family, corrected, strict=True):
                row["p_holm"] = float(p_holm)
        rows += family
    return pd.DataFrame(rows)

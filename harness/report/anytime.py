"""Anytime performance: each run's incumbent over simulated seconds and over evaluations.

The plotted quantity is the incumbent's *seed mean* as the table holds it (the record's
``incumbents.parquet``, written with the table's sha256 at run time). The value a run
observed for its incumbent is one drawn seed's and was selected for being high: it is
biased upward, which is why a plot of it can end above the table's optimum. Records
without the seed means (live runs) plot the observed sealed metric and say so.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from harness.report.study import Benchmark, Study

GRID_POINTS = 200
#: time budgets of the anytime AUC, as fractions of the benchmark's horizon
AUC_FRACTIONS = (0.1, 0.25, 0.5, 1.0)
#: a time axis is logarithmic when its range spans more than this factor
LOG_SPAN = 30.0


@dataclass(frozen=True)
class Quantity:
    """What an anytime curve shows: a column of the incumbents' values and its label."""

    column: str | None  # a column of the incumbents frame; None: the observed sealed metric
    sealed: str | None  # the observed sealed metric's name when column is None
    label: str
    axis: str  # the label's short form, for an axis


def quantity(b: Benchmark, ranked: str) -> Quantity | None:
    """The spec's ``[report] anytime`` metric, else the ranked target; seed means when the
    record holds them, else the observed sealed value, labelled as such."""
    anytime = b.resolved.get("anytime")
    if b.incumbents is not None:
        if anytime:
            return Quantity(
                f"sealed.{anytime}",
                None,
                f"incumbent's {anytime}, mean over the table's seeds",
                f"{anytime} (seed mean)",
            )
        return Quantity(
            f"target.{ranked}", None, f"incumbent's {ranked} (seed mean)", f"{ranked} (seed mean)"
        )
    if anytime:
        return Quantity(
            None,
            anytime,
            f"incumbent's {anytime} as observed (one drawn seed, not the mean)",
            f"{anytime} (observed, one seed)",
        )
    return None


def _lookup(b: Benchmark, column: str) -> tuple[np.ndarray, np.ndarray]:
    assert b.incumbents is not None
    return b.incumbents["arch_index"].to_numpy(), b.incumbents[column].to_numpy(np.float64)


def timed(b: Benchmark) -> bool:
    """Whether the benchmark's evaluations cost simulated seconds (tables without training
    times budget in evaluations; their clock is the evaluation count)."""
    return any(len(f) and float(f["end_s"].max()) > 0 for f in b.trajectories.values())


def run_steps(b: Benchmark, method: str, q: Quantity) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Per seed, (clock at each completed evaluation, incumbent value after it): the clock
    is simulated seconds, or the evaluation's index (0, 1, ...) without :func:`timed`.
    Kept on the benchmark: the plots and the AUC table use the same steps."""
    key = ("steps", method, q)
    if key not in b.cache:
        b.cache[key] = _run_steps(b, method, q)
    return b.cache[key]


def _run_steps(b: Benchmark, method: str, q: Quantity) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    frame = b.trajectories[method]
    if q.column is not None:
        archs, values = _lookup(b, q.column)
        index = np.searchsorted(archs, frame["incumbent_index"].to_numpy())
        incumbent = values[np.minimum(index, len(values) - 1)]
    else:
        # the observed value of the incumbent: the value seen at the evaluation that made
        # it the simulator's incumbent (the recorded incumbent changes at that row)
        observed = frame[f"sealed.{q.sealed}"].to_numpy(np.float64)
        arch = frame["incumbent_index"].to_numpy()
        signal = frame["incumbent_signal"].to_numpy(np.float64)
        incumbent = np.empty(len(frame))
        for _, rows in frame.groupby("seed", sort=False).indices.items():
            a, s = arch[rows], signal[rows]
            changed = np.r_[True, (a[1:] != a[:-1]) | (s[1:] != s[:-1])]
            last = np.maximum.accumulate(np.where(changed, np.arange(len(rows)), 0))
            incumbent[rows] = observed[rows][last]
    steps = {}
    clock = timed(b)
    for seed, rows in frame.groupby("seed", sort=True).indices.items():
        if clock:
            order = np.argsort(frame["end_s"].to_numpy()[rows], kind="stable")
            steps[seed] = (frame["end_s"].to_numpy()[rows][order], incumbent[rows][order])
        else:
            steps[seed] = (np.arange(len(rows), dtype=np.float64), incumbent[rows])
    return steps


def horizon(b: Benchmark) -> float:
    """The benchmark's horizon on its clock (:func:`run_steps`): the budget in seconds
    (or evaluations), else the last completion."""
    if timed(b):
        seconds = b.resolved["budget"].get("seconds")
        if seconds:
            return float(seconds)
        return max(float(f["end_s"].max()) for f in b.trajectories.values() if len(f))
    evaluations = b.resolved["budget"].get("evaluations")
    if evaluations:
        return float(evaluations)
    return float(max(f.groupby("seed").size().max() for f in b.trajectories.values() if len(f)))


def time_grid(b: Benchmark, steps: dict[str, dict[int, tuple]]) -> tuple[np.ndarray, bool]:
    """Grid over simulated seconds, logarithmic when the range spans decades."""
    end = horizon(b)
    first = min(times[0] for runs in steps.values() for times, _ in runs.values() if len(times))
    if first > 0 and end / first > LOG_SPAN:
        return np.geomspace(first, end, GRID_POINTS), True
    return np.linspace(first, end, GRID_POINTS), False


def on_grid(runs: dict[int, tuple[np.ndarray, np.ndarray]], grid: np.ndarray) -> np.ndarray:
    """Seeds x grid: the incumbent value at each grid time (NaN before the first)."""
    rows = []
    for times, values in runs.values():
        index = np.searchsorted(times, grid, side="right") - 1
        rows.append(np.where(index >= 0, values[np.maximum(index, 0)], np.nan))
    return np.array(rows)


def by_evaluation(runs: dict[int, tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """Seeds x evaluations, up to the shortest run (every seed defined at every point)."""
    shortest = min(len(values) for _, values in runs.values())
    return np.array([values[:shortest] for _, values in runs.values()])


def median_band(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Median over seeds and its distribution-free 95% interval (order statistics of the
    binomial(n, ½) quantiles, Conover 1999 §3.2); columns with a NaN are NaN."""
    n = len(rows)
    ordered = np.sort(rows, axis=0)
    low = max(int(stats.binom.ppf(0.025, n, 0.5)) - 1, 0)
    high = n - 1 - low
    undefined = np.isnan(rows).any(axis=0)
    median = np.where(undefined, np.nan, np.median(ordered, axis=0))
    return (
        median,
        np.where(undefined, np.nan, ordered[low]),
        np.where(undefined, np.nan, ordered[high]),
    )


def auc(runs: dict[int, tuple[np.ndarray, np.ndarray]], budgets: np.ndarray) -> np.ndarray:
    """Seeds x budgets: the time-average of the incumbent from a run's first completion to
    each budget (the exact integral of the step curve; on the evaluation clock, the mean
    incumbent over the first ``budget`` evaluations); NaN where nothing is done by then."""
    out = np.full((len(runs), len(budgets)), np.nan)
    for row, (times, values) in enumerate(runs.values()):
        if not len(times):
            continue
        area = np.r_[0.0, np.cumsum(values[:-1] * np.diff(times))]  # up to each step
        step = np.searchsorted(times, budgets, side="right") - 1
        done = step >= 0
        last = np.maximum(step, 0)
        total = area[last] + values[last] * (budgets - times[last])
        out[row, done] = total[done] / (budgets[done] - times[0])
    return out


def auc_table(study: Study) -> pd.DataFrame:
    """Anytime AUC per benchmark, method and budget (seconds, or evaluations for tables
    without training times): mean and std over seeds."""
    rows = []
    for b in study.benchmarks:
        q = quantity(b, study.target[b.name])
        if q is None:
            continue
        end = horizon(b)
        budgets = np.array(AUC_FRACTIONS) * end
        for method in b.methods:
            table = auc(run_steps(b, method, q), budgets)
            for column, budget in enumerate(budgets):
                values = table[:, column]
                defined = values[~np.isnan(values)]
                rows.append(
                    {
                        "benchmark": b.name,
                        "method": method,
                        "quantity": q.label,
                        "budget": budget,
                        "unit": "s" if timed(b) else "evaluations",
                        "n": len(defined),
                        "mean": defined.mean() if len(defined) else np.nan,
                        "std": defined.std(ddof=1) if len(defined) > 1 else np.nan,
                    }
                )
    return pd.DataFrame(rows)


def selection_bias(study: Study) -> pd.DataFrame:
    """Per benchmark and method: the final incumbent's observed search signal against its
    seed mean in the table (positive: the search saw it better than it is)."""
    rows = []
    for b in study.benchmarks:
        if b.incumbents is None:
            continue
        archs, means = _lookup(b, "signal")
        for method in b.methods:
            runs = b.record.runs[method]
            index = np.searchsorted(archs, runs["final_arch_index"].to_numpy())
            gap = runs["final_signal"].to_numpy(np.float64) - means[index]
            rows.append(
                {
                    "benchmark": b.name,
                    "method": method,
                    "signal": b.resolved["search"]["signal"],
                    "seed_policy": b.resolved["search"]["seed_policy"],
                    "n": len(gap),
                    "observed_mean": runs["final_signal"].mean(),
                    "seed_mean": means[index].mean(),
                    "bias_mean": gap.mean(),
                    "bias_std": gap.std(ddof=1) if len(gap) > 1 else np.nan,
                    "share_above": float(np.mean(gap > 0)),
                }
            )
    return pd.DataFrame(rows)

"""The report of a predict spec: ρ and τ against training-set size, with fit and query
costs, as Markdown, CSV and a figure.

``trials.csv`` holds every (trial, predictor, training-set size) row the protocol made
(:mod:`harness.predictors.protocol`); ``summary.csv`` and ``report.md`` their mean and
standard deviation over trials; ``curves.png``/``curves.svg`` the mean ρ and τ against
training-set size (log scale), one line per predictor, dashed for those that need no
training set. These are a function of the spec and the pinned files alone. The host
times of fitting and querying (``fit_s``, ``query_s``) differ between machines and runs,
so they go to :data:`TIMINGS` only, which a published folder does not track.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from harness.atomic import replacing

CSV_FLOAT = "%.10g"
#: the host-dependent file of a report: median fit and query seconds
TIMINGS = "predictor-timings.csv"
HOST_COLUMNS = ("fit_s", "query_s")


def _mean_std(mean: float, std: float) -> str:
    if not np.isfinite(mean):
        return "undefined"
    return f"{mean:.3f} ± {std:.3f}" if np.isfinite(std) else f"{mean:.3f}"


def _seconds(value: float) -> str:
    if value == 0:
        return "0"
    return f"{value:.3g}" if value < 1000 else f"{value:,.0f}"


def write_predictor_report(
    folder: Path, trials: pd.DataFrame, summary: pd.DataFrame, header: list[str]
) -> list[Path]:
    """``report.md``, ``summary.csv``, ``trials.csv`` and the curves figure in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    sizes = sorted(summary["train_size"].unique())
    lines = [*header, ""]
    for statistic, title in (("rho", "Spearman ρ"), ("tau", "Kendall τ")):
        lines += [f"## {title} against training-set size (mean ± std over trials)", ""]
        lines += ["| predictor | " + " | ".join(f"n = {n:,}" for n in sizes) + " |"]
        lines += ["|---|" + "---|" * len(sizes)]
        for name, mine in summary.groupby("predictor", sort=False):
            by_size = mine.set_index("train_size")
            cells = [
                _mean_std(by_size.loc[n, statistic], by_size.loc[n, f"{statistic}_std"])
                if n in by_size.index
                else ""
                for n in sizes
            ]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += [
        "## Simulated costs",
        "",
        "Seconds, from the tables, of the full trainings a training set needs and of what "
        "one prediction reads (a proxy's score, a partial training). The host seconds of "
        f"fitting and querying are in `{TIMINGS}`: they depend on the machine.",
        "",
        "| predictor | " + " | ".join(f"n = {n:,}" for n in sizes) + " | query (s / arch) |",
        "|---|" + "---|" * (len(sizes) + 1),
    ]
    for name, mine in summary.groupby("predictor", sort=False):
        by_size = mine.set_index("train_size")
        cells = [
            _seconds(by_size.loc[n, "train_cost_s"]) if n in by_size.index else "" for n in sizes
        ]
        query = _seconds(float(mine["query_cost_s"].mean()))
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {query} |")
    undefined = summary[summary["undefined"] > 0]
    if len(undefined):
        lines += [
            "",
            "Undefined correlations (a constant prediction ranks nothing; left out of the "
            "means): "
            + "; ".join(
                f"{r.predictor} at n = {r.train_size}: {r.undefined} of {r.trials} trials"
                for r in undefined.itertuples()
            )
            + ".",
        ]
    report = folder / "report.md"
    with replacing(report, suffix=".md") as temporary:
        temporary.write_text("\n".join(lines).rstrip() + "\n")
    written = [report]
    timings = summary[["predictor", "train_size", *HOST_COLUMNS]]
    for name, frame in (
        ("summary.csv", summary.drop(columns=list(HOST_COLUMNS))),
        ("trials.csv", trials.drop(columns=list(HOST_COLUMNS))),
        (TIMINGS, timings),
    ):
        path = folder / name
        with replacing(path, suffix=".csv") as temporary:
            frame.to_csv(temporary, index=False, float_format=CSV_FLOAT)
        written.append(path)
    return [*written, *_curves_figure(summary, folder / "curves")]


def _curves_figure(summary: pd.DataFrame, stem: Path) -> list[Path]:
    """Mean ρ and τ against training-set size, one line per predictor."""
    from harness.report.estimates import EXTRA_COLOURS
    from harness.report.plots import COLOURS, LINES, MARKERS, _figure, save

    width = 10.0
    figure = _figure(width, 3.8, left=0.07, right=1 - 2.3 / width, bottom=0.13, top=0.92)
    axes = figure.subplots(1, 2, squeeze=False)[0]
    palette = (*COLOURS, *EXTRA_COLOURS)
    trained = summary[summary["kind"].notna()]
    untrained = set(trained.groupby("predictor")["train_cost_s"].max().loc[lambda s: s == 0].index)
    for ax, (statistic, title) in zip(
        axes, (("rho", "Spearman ρ"), ("tau", "Kendall τ")), strict=True
    ):
        for index, (name, mine) in enumerate(summary.groupby("predictor", sort=False)):
            ax.plot(
                mine["train_size"],
                mine[statistic],
                color=palette[index % len(palette)],
                linestyle="--" if name in untrained else LINES[index % len(LINES)],
                marker=MARKERS[index % len(MARKERS)],
                markersize=3,
                linewidth=1,
                label=name,
            )
        ax.set_xscale("log")
        ax.set_xlabel("training-set size (log)")
        ax.set_ylabel(f"{title} on the test set")
        ax.grid(True, linewidth=0.3)
    handles, names = axes[-1].get_legend_handles_labels()
    figure.legend(handles, names, loc="center right", fontsize=7, frameon=False)
    return save(figure, stem)

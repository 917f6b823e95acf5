"""The report of a predict spec: ρ and τ against training-set size, with fit and query
costs, as Markdown, CSV and a figure.

``trials.csv`` holds every (trial, predictor, training-set size) row the protocol made
(:mod:`harness.predictors.protocol`); ``summary.csv`` and ``report.md`` their mean and
standard deviation over trials; ``curves.png``/``curves.svg`` the mean ρ and τ against
training-set size (log scale), one line per predictor, dashed for those that need no
training set. A spec without a training set (``train_sizes = [0]``) gets one table of ρ,
τ and query cost and a bar chart instead. These are a function of the spec and the pinned
files alone. The host
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
    untrained = sizes == [0]
    lines = [*header, "", *(_untrained_lines(summary) if untrained else _by_size_lines(summary))]
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
    figure = _bars_figure if untrained else _curves_figure
    return [*written, *figure(summary, folder / "curves")]


def _untrained_lines(summary: pd.DataFrame) -> list[str]:
    """ρ, τ and query cost per predictor, for a spec without a training set."""
    trials = int(summary["trials"].max())
    over = f" (mean ± std over {trials} trials)" if trials > 1 else f" ({trials} trial)"
    lines = [
        f"## Spearman ρ and Kendall τ on the test set{over}",
        "",
        "No predictor here needs a training set. Query: simulated seconds, from the table, "
        "of what one prediction reads (a proxy's score, a partial training). The host "
        f"seconds of querying are in `{TIMINGS}`: they depend on the machine.",
        "",
        "| predictor | ρ | τ | query (s / arch) |",
        "|---|---|---|---|",
    ]
    for row in summary.itertuples():
        lines.append(
            f"| {row.predictor} | {_mean_std(row.rho, row.rho_std)} | "
            f"{_mean_std(row.tau, row.tau_std)} | {_seconds(row.query_cost_s)} |"
        )
    return [*lines, *_undefined_lines(summary)]


def _by_size_lines(summary: pd.DataFrame) -> list[str]:
    """ρ, τ and simulated costs against training-set size."""
    sizes = sorted(summary["train_size"].unique())
    lines = []
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
    return [*lines, *_undefined_lines(summary)]


def _undefined_lines(summary: pd.DataFrame) -> list[str]:
    undefined = summary[summary["undefined"] > 0]
    if not len(undefined):
        return []
    return [
        "",
        "Undefined correlations (a constant prediction ranks nothing; left out of the "
        "means): "
        + "; ".join(
            f"{r.predictor} at n = {r.train_size}: {r.undefined} of {r.trials} trials"
            for r in undefined.itertuples()
        )
        + ".",
    ]


def _bars_figure(summary: pd.DataFrame, stem: Path) -> list[Path]:
    """Mean ρ and τ per predictor as horizontal bars (no training-set axis to plot on)."""
    from harness.report.plots import COLOURS, _figure, save

    height = 1.2 + 0.28 * len(summary)
    figure = _figure(7.5, height, left=0.3, right=0.97, bottom=0.6 / height, top=1 - 0.35 / height)
    axes = figure.subplots(1, 2, squeeze=False, sharey=True)[0]
    rows = np.arange(len(summary))[::-1]
    for ax, (statistic, title), colour in zip(
        axes, (("rho", "Spearman ρ"), ("tau", "Kendall τ")), COLOURS, strict=False
    ):
        ax.barh(rows, summary[statistic].fillna(0.0), color=colour, height=0.7)
        ax.set_xlim(min(0.0, float(summary[statistic].min())), 1.0)
        ax.set_title(f"{title} on the test set", fontsize=8)
        ax.grid(True, axis="x", linewidth=0.3)
    axes[0].set_yticks(rows, list(summary["predictor"]), fontsize=7)
    return save(figure, stem)


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

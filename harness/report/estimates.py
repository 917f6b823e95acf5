"""How well estimators rank the ground truth: the report of an estimate spec.

An estimator is judged by how its scores order the architectures against the ground
truth (a table's seed-mean metric at its final epoch, :mod:`harness.estimation`): Kendall's
τ (τ-b), Spearman's ρ, and the precision of its top 1 % and 10 % (the share of the
estimator's top k % that is in the ground truth's top k %). Each is computed over every
scored cell, over one cell per isomorphism class (isomorphs share one trained value, so
every class counts once), and within the ground truth's top decile (where a search must
still tell cells apart), with a percentile bootstrap 95 % interval over cells.

An architecture's score is the mean of its finite scores over the init seeds; one the
estimator cannot score at all (NaN on every seed) ranks below every scored one, so a
proxy that fails on a cell is not flattered by leaving it out. With several init seeds
the report also gives the spread of ρ over single seeds.

Trainings read from the table (``[[reference]]``: a short or a full training, one seed)
are judged the same way, so the cost-against-quality figure puts every estimator and
every training on one axis of seconds per architecture.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from harness.atomic import replacing
from harness.evaluators.tabular import resolve_metric
from harness.seeding import stream_generator
from harness.table import Table

#: bootstrap resamples of cells for each interval (seeded: the same report every time)
RESAMPLES = 200
SUBSETS = ("all cells", "one per isomorphism class", "ground truth's top decile")
TOP = (0.01, 0.10)
CSV_FLOAT = "%.10g"


@dataclass(frozen=True)
class Judged:
    """One estimator (or reference training) on one input: its scores and their cost."""

    label: str
    input: str
    kind: str  # "estimator" or "training"
    scores: np.ndarray  # [n_arch, n_seed], NaN where not scored
    cost_s: float  # mean seconds per architecture (and seed)
    setup_s: float


def _ranked_scores(scores: np.ndarray) -> np.ndarray:
    """The seed mean of the finite scores; -inf where there is none (it ranks last)."""
    finite = np.isfinite(scores)
    total = np.where(finite, scores, 0.0).sum(axis=1)
    count = finite.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / count
    return np.where(count > 0, mean, -np.inf)


def _top_precision(score: np.ndarray, truth: np.ndarray, share: float) -> float:
    k = max(1, int(round(share * len(score))))
    # ties broken by position, the same for both orders
    mine = np.argsort(-score, kind="stable")[:k]
    best = np.argsort(-truth, kind="stable")[:k]
    return len(np.intersect1d(mine, best)) / k


def _statistics(score: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    from scipy import stats

    if len(score) < 3 or np.ptp(truth) == 0:
        return {"tau": np.nan, "rho": np.nan, **{f"top{int(100 * s)}": np.nan for s in TOP}}
    if np.all(score == score[0]):
        tau = rho = np.nan  # a constant estimator orders nothing
    else:
        tau = float(stats.kendalltau(score, truth).statistic)
        rho = float(stats.spearmanr(score, truth).statistic)
    return {
        "tau": tau,
        "rho": rho,
        **{f"top{int(100 * s)}": _top_precision(score, truth, s) for s in TOP},
    }


def subsets(truth: np.ndarray, classes: np.ndarray, scored: np.ndarray) -> dict[str, np.ndarray]:
    """The cells each statistic is computed over (indices into the architectures)."""
    cells = np.flatnonzero(scored)
    _, first = np.unique(classes[cells], return_index=True)
    one_per_class = np.sort(cells[first])
    cutoff = np.quantile(truth[cells], 0.9)
    return dict(zip(SUBSETS, (cells, one_per_class, cells[truth[cells] >= cutoff]), strict=True))


def quality(
    judged: Judged, truth: np.ndarray, classes: np.ndarray, scored: np.ndarray, seed: int
) -> list[dict[str, object]]:
    """τ, ρ and top-k precision of ``judged`` with bootstrap intervals, per subset."""
    score = _ranked_scores(judged.scores)
    rows = []
    for number, (subset, cells) in enumerate(subsets(truth, classes, scored).items()):
        point = _statistics(score[cells], truth[cells])
        rng = stream_generator(seed, "report", number)
        resampled = (cells[rng.integers(len(cells), size=len(cells))] for _ in range(RESAMPLES))
        draws = [_statistics(score[picked], truth[picked]) for picked in resampled]
        row: dict[str, object] = {
            "estimator": judged.label,
            "input": judged.input,
            "kind": judged.kind,
            "subset": subset,
            "cells": len(cells),
        }
        for name, value in point.items():
            samples = np.array([d[name] for d in draws], dtype=float)
            samples = samples[np.isfinite(samples)]
            low, high = np.quantile(samples, [0.025, 0.975]) if samples.size else (np.nan, np.nan)
            row.update({name: value, f"{name}_low": low, f"{name}_high": high})
        row["seconds_per_arch"] = judged.cost_s
        row["setup_s"] = judged.setup_s
        if judged.scores.shape[1] > 1 and subset == SUBSETS[0]:
            per_seed = [
                _statistics(_ranked_scores(judged.scores[cells, s : s + 1]), truth[cells])["rho"]
                for s in range(judged.scores.shape[1])
            ]
            row["rho_seed_min"], row["rho_seed_max"] = min(per_seed), max(per_seed)
        rows.append(row)
    return rows


def reference(table: Table, label: str, input_name: str, metric, seed, cost) -> Judged:
    """A training the table holds, judged as an estimator: one seed's value at the
    variable's last epoch, costing the seed-mean time of that training."""
    variable = table.variable(metric.dataset, metric.schedule, metric.split, metric.metric)
    slot = 0 if seed is None else variable.seeds.index(seed)
    values = np.where(variable.mask[:, slot, -1], variable.values[:, slot, -1], np.nan)
    seconds = resolve_metric(table, cost)
    return Judged(
        label=label,
        input=input_name,
        kind="training",
        scores=values.astype(np.float64)[:, None],
        cost_s=float(np.nanmean(seconds)),
        setup_s=0.0,
    )


def _cell(row: pd.Series, name: str, digits: int = 3) -> str:
    value = row[name]
    if not np.isfinite(value):
        return "undefined"
    return f"{value:.{digits}f} [{row[f'{name}_low']:.{digits}f}, {row[f'{name}_high']:.{digits}f}]"


def _seconds(value: float) -> str:
    return f"{value:.3g}" if value < 1000 else f"{value:,.0f}"


def write_estimate_report(
    folder: Path,
    frame: pd.DataFrame,
    header: list[str],
    published: dict[str, dict[str, float]],
    published_source: str,
) -> list[Path]:
    """``report.md``, ``quality.csv`` and the cost-against-quality figure in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = [*header, ""]
    for input_name in dict.fromkeys(frame["input"]):
        mine = frame[frame["input"] == input_name]
        lines += [f"## Input `{input_name}`", ""]
        lines += [
            "| estimator | ρ (all cells) | τ (all cells) | τ (one per class) | "
            "τ (top decile) | top-1 % | top-10 % | s / architecture |",
            "|---|---|---|---|---|---|---|---|",
        ]
        by_subset = {s: mine[mine["subset"] == s].set_index("estimator") for s in SUBSETS}
        for label in dict.fromkeys(mine["estimator"]):
            everything = by_subset[SUBSETS[0]].loc[label]
            shown = label if everything["kind"] == "estimator" else f"*{label}* (training)"
            lines.append(
                f"| {shown} | {_cell(everything, 'rho')} | {_cell(everything, 'tau')} | "
                f"{_cell(by_subset[SUBSETS[1]].loc[label], 'tau')} | "
                f"{_cell(by_subset[SUBSETS[2]].loc[label], 'tau')} | "
                f"{_cell(everything, 'top1', 2)} | {_cell(everything, 'top10', 2)} | "
                f"{_seconds(everything['seconds_per_arch'])} |"
            )
        lines.append("")
        spread = by_subset[SUBSETS[0]]
        if "rho_seed_min" in spread and spread["rho_seed_min"].notna().any():
            lines.append(
                "ρ of single init seeds (all cells), min–max: "
                + "; ".join(
                    f"{label} {row['rho_seed_min']:.3f}–{row['rho_seed_max']:.3f}"
                    for label, row in spread.iterrows()
                    if np.isfinite(row.get("rho_seed_min", np.nan))
                )
                + "."
            )
            lines.append("")
    if published:
        lines += _published_lines(frame, published, published_source)
    report = folder / "report.md"
    with replacing(report, suffix=".md") as temporary:
        temporary.write_text("\n".join(lines).rstrip() + "\n")
    table = folder / "quality.csv"
    with replacing(table, suffix=".csv") as temporary:
        frame.to_csv(temporary, index=False, float_format=CSV_FLOAT)
    return [report, table, *_cost_figure(frame, folder / "cost-quality")]


def _published_lines(
    frame: pd.DataFrame, published: dict[str, dict[str, float]], source: str
) -> list[str]:
    everything = frame[frame["subset"] == SUBSETS[0]].set_index(["estimator", "input"])
    lines = [
        "## Published values",
        "",
        f"Spearman ρ over all cells, ours (95 % bootstrap interval) beside {source}.",
        "",
        "| estimator | input | ours | published | Δ | published value inside our interval |",
        "|---|---|---|---|---|---|",
    ]
    for label, row in published.items():
        for input_name, value in row.items():
            ours = everything.loc[(label, input_name)]
            inside = ours["rho_low"] <= value <= ours["rho_high"]
            lines.append(
                f"| {label} | {input_name} | {_cell(ours, 'rho')} | {value:.3f} | "
                f"{ours['rho'] - value:+.3f} | {'yes' if inside else 'no'} |"
            )
    return [*lines, ""]


#: colours beyond the report's eight colour-blind-safe ones (Tol's muted scheme), so up to
#: twelve estimators keep distinct colours and no two share colour and marker
EXTRA_COLOURS = ("#882255", "#117733", "#332288", "#999933")


def _look(index: int, colours: tuple[str, ...], markers: tuple[str, ...]) -> dict[str, str]:
    palette = (*colours, *EXTRA_COLOURS)
    return {"color": palette[index % len(palette)], "marker": markers[index % len(markers)]}


def _cost_figure(frame: pd.DataFrame, stem: Path) -> list[Path]:
    """Each estimator and training a point: seconds per architecture against ρ."""
    from harness.report.plots import COLOURS, MARKERS, _figure, save

    everything = frame[frame["subset"] == SUBSETS[0]]
    inputs = list(dict.fromkeys(everything["input"]))
    width = 4.2 * len(inputs) + 2.0
    figure = _figure(
        width, 3.6, left=0.75 / width, right=1 - 1.9 / width, bottom=0.14, top=0.9, wspace=0.3
    )
    axes = figure.subplots(1, len(inputs), squeeze=False)[0]
    labels = list(dict.fromkeys(everything["estimator"]))
    for ax, input_name in zip(axes, inputs, strict=True):
        mine = everything[everything["input"] == input_name]
        for _, row in mine.iterrows():
            if not np.isfinite(row["rho"]):
                continue
            look = _look(labels.index(row["estimator"]), COLOURS, MARKERS)
            seconds = max(float(row["seconds_per_arch"]), 1e-6)
            ax.errorbar(
                seconds,
                row["rho"],
                yerr=[[row["rho"] - row["rho_low"]], [row["rho_high"] - row["rho"]]],
                color=look["color"],
                marker=look["marker"] if row["kind"] == "estimator" else "*",
                markersize=6 if row["kind"] == "estimator" else 10,
                linestyle="none",
                label=row["estimator"],
            )
        ax.set_xscale("log")
        ax.set_xlabel("seconds per architecture (log)")
        ax.set_ylabel("Spearman ρ with the ground truth")
        ax.set_title(f"input {input_name}")
        ax.grid(True, linewidth=0.3)
    handles, names = axes[-1].get_legend_handles_labels()
    figure.legend(handles, names, loc="center right", fontsize=7, frameon=False)
    return save(figure, stem)


def judge(spec, estimate: Table, truth_table: Table) -> pd.DataFrame:
    """Every estimator of ``spec`` on every input, and every reference training, against
    the ground truth: one row per (estimator, input, subset)."""
    space = spec.space
    classes = space.isomorphism_classes()
    seeds = len(spec.protocol.seeds)
    scored = np.zeros(space.num_archs, dtype=bool)
    scored[spec.archs()] = True
    setups = estimate.protocol.get("estimators", {})
    rows: list[dict[str, object]] = []
    for number, proxy_input in enumerate(spec.protocol.inputs):
        truth = resolve_metric(truth_table, spec.truth[proxy_input.name])
        judged = []
        for entry in spec.estimators:
            score = estimate.variable(proxy_input.name, "init", entry.name, "score")
            cost = estimate.variable(proxy_input.name, "init", entry.name, "cost_s")
            values = np.where(score.mask, score.values, np.nan)[:, :seeds, 0].astype(np.float64)
            seconds = np.where(cost.mask, cost.values, np.nan)[scored, :, 0]
            setup = setups.get(entry.name, {}).get("setup_s", {}).get(proxy_input.name, 0.0)
            judged.append(
                Judged(
                    entry.name,
                    proxy_input.name,
                    "estimator",
                    values,
                    float(np.nanmean(seconds)),
                    float(setup),
                )
            )
        for ref in spec.references:
            if ref.input == proxy_input.name:
                judged.append(
                    reference(truth_table, ref.label, ref.input, ref.metric, ref.seed, ref.cost)
                )
        for item in judged:
            rows += quality(item, truth, classes, scored & np.isfinite(truth), number)
    return pd.DataFrame(rows)


def header_lines(spec, estimate: Table, truth_table: Table) -> list[str]:
    """What was estimated, under which protocol, judged against what: the report's head."""
    from harness.estimators import estimator_class
    from harness.plugins import origin

    protocol = spec.protocol
    lines = [
        f"# {spec.title}",
        "",
        f"- spec `{spec.path.name}`, hash `{spec.spec_hash[:16]}`; space `{spec.space.name}`, "
        + (
            "every architecture"
            if spec.sample is None
            else f"a pinned sample of {spec.sample} architectures (seed {spec.sample_seed})"
        ),
        f"- estimate file `{estimate.path.name}`, sha256 `{estimate.sha256}`",
        f"- ground truth: table `{truth_table.path.name}`, sha256 `{truth_table.sha256}`; "
        + "; ".join(f"input `{k}`: `{v}` (seed mean)" for k, v in spec.truth.items()),
        f"- proxy protocol `{protocol.protocol_hash[:16]}`: network C={protocol.channels}, "
        f"N={protocol.cells_per_stage}; init seeds {list(protocol.seeds)}; "
        f"{protocol.threads} thread(s) on `{protocol.device}`",
    ]
    for proxy_input in protocol.inputs:
        what = (
            f"dataset `{proxy_input.dataset}` split `{proxy_input.split}`"
            if proxy_input.has_data
            else f"data-free, shape {list(proxy_input.shape or ())}, {proxy_input.classes} classes"
        )
        lines.append(f"- input `{proxy_input.name}`: {what}")
    lines += [
        "",
        "| estimator | kind | parameters | fixed settings | class | version | source sha256 |",
    ]
    lines.append("|---|---|---|---|---|---|---|")
    for entry in spec.estimators:
        cls = estimator_class(entry.kind)
        found = origin(cls)
        params = ", ".join(f"{k}={v}" for k, v in entry.params.items()) or "none"
        settings = ", ".join(f"{k}: {v}" for k, v in cls.settings.items()) or "none"
        lines.append(
            f"| {entry.name} | `{entry.kind}` | {params} | {settings} | `{found['class']}` | "
            f"{found['distribution']} {found['version']} | `{found['source_sha256'][:16]}` |"
        )
    lines += [
        "",
        "Each statistic is computed over every scored cell, over one cell per isomorphism "
        "class, and within the ground truth's top decile; intervals are percentile "
        f"bootstrap 95 % intervals over cells ({RESAMPLES} resamples, seeded), and cover the "
        "choice of cells, not of init seeds or of the ground truth's training seeds. A "
        "cell's score is the mean of its finite scores over init seeds; a cell with none "
        "ranks last. Seconds per architecture are the measured cost of one score (building "
        "the network and computing the estimator); trainings (in italics) cost the table's "
        "recorded training time. `quality.csv` holds every statistic (τ, ρ, top-1 %, "
        "top-10 %) over every subset, with its interval.",
        "",
    ]
    for note in spec.notes:
        lines.append(f"- {note}")
    return lines

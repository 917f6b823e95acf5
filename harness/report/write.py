"""A report's folder: ``report.md`` and the tables, statistics and figures it shows.

Written from the records alone (:mod:`harness.report.study`); no file holds a date, a
run id, a wall time or an absolute path, so reporting the same records again, here or on
another machine, gives the same bytes.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from harness.atomic import check_writable, staged_folder, write_text
from harness.errors import HarnessError
from harness.places import project_root
from harness.record import ExperimentRecord
from harness.report import REPORT, TABLE, anytime, audit, plots, stats
from harness.report.folders import results_folder
from harness.report.study import Study, build_study
from harness.report.tables import (
    CSV_FLOAT,
    detail_markdown,
    latex,
    main_markdown,
    number,
    p_text,
    ranks_markdown,
)
from harness.seeding import stream_scheme
from harness.version import __version__

#: the strategies' host time per evaluation: the one file whose numbers depend on the
#: machine that ran the experiment (re-made from the same records, it is identical too)
OVERHEAD = "strategy-overhead.csv"


def _csv(path: Path, frame: pd.DataFrame, float_format: str | None = CSV_FLOAT) -> Path:
    write_text(path, frame.to_csv(index=False, float_format=float_format, lineterminator="\n"))
    return path


def _records_lines(study: Study) -> list[str]:
    lines = [
        "| benchmark | spec sha256 | table | table sha256 | search signal | budget | seeds "
        "| methods |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for b in study.benchmarks:
        r, budget = b.resolved, b.resolved["budget"]
        limits = ", ".join(
            f"{k} {budget[k]:g}" for k in ("seconds", "evaluations", "epochs") if budget.get(k)
        )
        # the overrun rule, and the strategies with their own (the resolved spec names only those)
        own = [f"{s['name']}: {s['overrun']}" for s in r["strategies"] if "overrun" in s]
        limits += f"; overrun {budget['overrun']}" + (f" ({', '.join(own)})" if own else "")
        seeds = r["runs"]["seeds"]
        lines.append(
            f"| {b.name} | `{b.record.params['spec_hash'][:16]}` "
            f"| {b.record.table['benchmark_id']} | `{b.record.table['sha256'][:16]}` "
            f"| {r['search']['signal']} @ {r['search']['epoch']} ({r['search']['seed_policy']}) "
            f"| {limits} | {len(seeds)} ({seeds[0]}..{seeds[-1]}) | {', '.join(b.methods)} |"
        )
    return lines


def _pairing_lines(study: Study) -> list[str]:
    shared = all(
        len({tuple(runs["seed"]) for runs in b.record.runs.values()}) == 1 for b in study.benchmarks
    )
    if shared:
        text = (
            "Every method of a benchmark ran the same master seeds, and a run's random "
            "streams derive from its master seed alone, so seed *s* of one method shares "
            "its first draws with seed *s* of every other: the comparisons below are "
            "**paired by seed**, over blocks of (benchmark, seed)."
        )
    else:
        text = (
            "Methods of some benchmark ran different seeds: the paired tests below use "
            "only the (benchmark, seed) blocks every compared method ran."
        )
    return [text, ""]


def _friedman_lines(result: stats.Friedman | None, figure: str | None) -> list[str]:
    if result is None:
        return ["Friedman's test needs three or more methods that ran every benchmark.", ""]
    if np.isnan(result.statistic):
        return [
            f"Friedman's test over {result.blocks} blocks and {len(result.methods)} methods is "
            "undefined: every block ties every method, so nothing tells them apart.",
            "",
        ]
    lines = [
        f"Friedman test over {result.blocks} blocks and {len(result.methods)} methods "
        f"({result.dropped} incomplete blocks left out): χ² = {result.statistic:.2f}, "
        f"p {'' if result.p_value < 0.001 else '= '}{p_text(result.p_value)}. Nemenyi's "
        "critical difference at α = 0.05: "
        f"{result.critical_difference:.3f} (mean ranks further apart differ significantly).",
        "",
    ]
    if figure:
        lines += [f"![critical-difference diagram]({figure})", ""]
    names = result.methods
    lines += ["Nemenyi p-values:", "", "| | " + " | ".join(names) + " |"]
    lines.append("|---|" + "---|" * len(names))
    for a in names:
        cells = ["" if a == b else p_text(result.nemenyi.loc[a, b]) for b in names]
        lines.append(f"| {a} | " + " | ".join(cells) + " |")
    return lines + [""]


def _pairwise_lines(frame: pd.DataFrame) -> list[str]:
    lines = [
        "Pairwise Wilcoxon signed-rank tests (two-sided, zero differences dropped), Holm-"
        "corrected within each benchmark; r: matched-pairs rank-biserial correlation; "
        "P(a>b): share of seeds on which a beats b, ties counted half.",
        "",
        "| benchmark | a | b | seeds | mean a − b | r | P(a>b) | p | p (Holm) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in frame.itertuples():
        lines.append(
            f"| {row.benchmark} | {row.a} | {row.b} | {row.n} "
            f"| {number(row.mean_difference, 3, sign=True)} "
            f"| {number(row.rank_biserial, 3, sign=True)} "
            f"| {number(row.p_improvement, 3)} | {p_text(row.p_value)} | {p_text(row.p_holm)} |"
        )
    return lines + [""]


def _anytime_lines(study: Study, figures: dict[str, str], auc: pd.DataFrame) -> list[str]:
    lines: list[str] = []
    for b in study.benchmarks:
        q = anytime.quantity(b, study.target[b.name])
        if q is None:
            continue
        lines += [f"### {b.name}", "", f"Plotted: the {q.label}."]
        if q.column is None:
            lines.append(
                "This record holds no seed-mean values of its incumbents (a live run, or a "
                "record from before they were kept), so the plot shows what the run "
                "observed; selection makes it biased upward."
            )
        lines += ["", f"![anytime performance of {b.name}]({figures[b.name]})", ""]
        mine = auc[auc.benchmark == b.name]
        budgets = list(dict.fromkeys(mine["budget"]))
        unit = mine["unit"].iloc[0] if len(mine) else "s"
        lines += [
            "Anytime AUC (time-average of the plotted incumbent from a run's first completed "
            "evaluation to the budget; mean ± std over seeds):",
            "",
            "| method | " + " | ".join(f"≤ {x:g} {unit}" for x in budgets) + " |",
            "|---|" + "---|" * len(budgets),
        ]
        for method in b.methods:
            rows = mine[mine.method == method].set_index("budget")
            cells = [
                f"{number(rows.loc[x, 'mean'])} ± {number(rows.loc[x, 'std'])}" for x in budgets
            ]
            lines.append(f"| {method} | " + " | ".join(cells) + " |")
        lines.append("")
    return lines


def _bias_lines(bias: pd.DataFrame) -> list[str]:
    if bias.empty:
        return ["No record of this study holds its incumbents' seed means.", ""]
    lines = [
        "The final architecture's search signal as the run observed it against its mean "
        "over the table's seeds (positive: the search saw it better than it is):",
        "",
        "| benchmark | method | signal (seed policy) | observed | seed mean | bias ± std "
        "| share above |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in bias.itertuples():
        lines.append(
            f"| {row.benchmark} | {row.method} | {row.signal} ({row.seed_policy}) "
            f"| {number(row.observed_mean, 3)} | {number(row.seed_mean, 3)} "
            f"| {number(row.bias_mean, 3, sign=True)} ± {number(row.bias_std, 3)} "
            f"| {number(row.share_above, 3)} |"
        )
    return lines + [""]


def _cost_lines(study: Study) -> list[str]:
    """What each method's runs spent on the simulated clock (host-independent)."""
    lines = [
        "Per run, mean (min–max) over seeds. The strategies' own host time (their `ask` and "
        "`tell` calls, recorded apart from the simulated clock, which it never advances) is in "
        f"`{OVERHEAD}`: it depends on the machine that ran them.",
        "",
        "| benchmark | method | evaluations | distinct architectures | epochs trained "
        "| simulated s |",
        "|---|---|---|---|---|---|",
    ]

    def spread(values: pd.Series, digits: int) -> str:
        return (
            f"{number(values.mean(), digits)} ({number(values.min(), digits)}–"
            f"{number(values.max(), digits)})"
        )

    for b in study.benchmarks:
        for method in b.methods:
            runs = b.record.runs[method]
            lines.append(
                f"| {b.name} | {method} | {spread(runs['evaluations'], 1)} "
                f"| {spread(runs['distinct_archs'], 1)} | {spread(runs['epochs'], 0)} "
                f"| {spread(runs['simulated_seconds'], 0)} |"
            )
    return lines + [""]


def overhead_frame(study: Study) -> pd.DataFrame:
    """Per benchmark and method, the strategy's host time per evaluation (µs) over runs."""
    rows = []
    for b in study.benchmarks:
        for method in b.methods:
            runs = b.record.runs[method]
            micro = runs["strategy_wall_s"] / runs["evaluations"].clip(lower=1) * 1e6
            rows.append(
                {
                    "benchmark": b.name,
                    "method": method,
                    "runs": len(runs),
                    "median_us_per_evaluation": micro.median(),
                    "mean_us_per_evaluation": micro.mean(),
                    "max_us_per_evaluation": micro.max(),
                }
            )
    return pd.DataFrame(rows)


def _notes_lines(study: Study) -> list[str]:
    lines: list[str] = []
    for b in study.benchmarks:
        notes = list(b.resolved["experiment"]["notes"])
        notes += [f"(deviation) {text}" for text in b.resolved["deviations"]]
        notes += [f"(table) {k}: {v}" for k, v in sorted(b.record.table.get("notes", {}).items())]
        if notes:
            lines += [f"### {b.name}", ""] + [f"- {text}" for text in notes] + [""]
    return lines


def default_folder(records: list[ExperimentRecord], root: Path | None = None) -> Path:
    """``<root>/results/<experiment name>`` for one experiment (``root``: the working
    folder's project root, :mod:`harness.places`), or the folder its differences name
    (:func:`results_folder`); several experiments need ``--out``."""
    record = records[0]
    base = project_root(root) / "results" / record.resolved["experiment"]["name"]
    return results_folder(
        base,
        record.resolved["experiment"]["name"],
        record.params["spec_hash"],
        record.resolved.get("overrides") or {},
        record.params.get("evaluator", "tabular"),
    )[0]


#: the files a report folder holds: what an earlier report left there may be replaced
REPORT_FILE = re.compile(
    r"(report\.md|table\.(md|tex|csv)|(per-seed|ranks|pairwise|anytime-auc|selection-bias)\.csv"
    rf"|{re.escape(OVERHEAD)}|(cd-diagram|performance-profile|anytime-.+)\.(png|svg))"
)


def write_report(
    records: list[ExperimentRecord], out: Path, target: str | None = None
) -> list[Path]:
    """Write the report of ``records`` into the folder ``out``; returns the files written,
    ``report.md`` first. ``target`` is the target label ranked and tested (default: each
    benchmark's first).

    The folder is written whole or not at all (:func:`staged_folder`): an error or a kill
    leaves an earlier report as it was, never new figures beside old tables. Numerical
    warnings stay local: whatever ``numpy.seterr`` plugin code set, the report is the same.
    """
    check_writable(out / REPORT, "report file")
    with staged_folder(out, REPORT_FILE.fullmatch) as stage:
        try:
            with np.errstate(all="ignore"), warnings.catch_warnings():
                # a statistic undefined for these values (one seed, all ties) shows as "–"
                # in the report; numpy's and SciPy's warnings about it would only repeat that
                warnings.simplefilter("ignore", RuntimeWarning)  # SciPy's statistics' too
                written = _write_report(records, stage, target)
        except OSError as error:
            raise HarnessError(
                f"report folder {out}: cannot write {_final_name(error.filename)} "
                f"({error.strerror or error}); the folder was left as it was"
            ) from None
    return [out / path.name for path in written]


def _final_name(filename: str | None) -> str:
    """The report file a temporary file (``.NAME.tmp-...``) was to become."""
    name = Path(filename or "?").name
    return name[1:].split(".tmp-")[0] if ".tmp-" in name else name


def _write_report(records: list[ExperimentRecord], out: Path, target: str | None) -> list[Path]:
    study = build_study(records, target)
    summary = stats.summary(study)
    ranks = stats.average_ranks(study)
    friedman = stats.friedman(study)
    pairs = stats.pairwise(study)
    auc = anytime.auc_table(study)
    bias = anytime.selection_bias(study)
    items = audit.checklist(study)

    written: list[Path] = []
    figures: dict[str, str] = {}
    for b in study.benchmarks:
        files = plots.anytime_figure(study, b.name, out / f"anytime-{_slug(b.name)}")
        written += files
        if files:
            figures[b.name] = files[0].name
    cd = plots.cd_figure(friedman, study.methods, out / "cd-diagram") if friedman else []
    written += cd
    written += plots.profile_figure(study, out / "performance-profile")

    main = main_markdown(study, summary)
    write_text(out / TABLE, "\n".join(main).rstrip("\n") + "\n")
    write_text(out / "table.tex", latex(study, summary))
    written += [out / TABLE, out / "table.tex"]
    written.append(_csv(out / "table.csv", summary))
    per_seed = study.scores.drop(columns="score")  # the value, signed: nothing new
    written.append(_csv(out / "per-seed.csv", per_seed, float_format=None))
    written.append(_csv(out / "ranks.csv", ranks.reset_index(names="method")))
    written.append(_csv(out / "pairwise.csv", pairs))
    written.append(_csv(out / "anytime-auc.csv", auc))
    written.append(_csv(out / OVERHEAD, overhead_frame(study)))
    if not bias.empty:
        written.append(_csv(out / "selection-bias.csv", bias))

    title = (
        study.benchmarks[0].resolved["experiment"]["title"]
        if len(study.benchmarks) == 1
        else f"{len(study.benchmarks)} benchmarks: " + ", ".join(b.name for b in study.benchmarks)
    )
    lines = [
        f"# {title}",
        "",
        f"Generated by `harness report` (harness {__version__}) from the MLflow "
        "records alone. Files beside this one: `table.md`, `table.tex` (booktabs), "
        "`table.csv`, `per-seed.csv`, `ranks.csv`, `pairwise.csv`, `anytime-auc.csv`, "
        f"`{OVERHEAD}` and the figures (PNG and SVG).",
        "",
        "## Records",
        "",
        *_records_lines(study),
        "",
        "## Results",
        "",
        "Each cell: mean ± sample std over seeds of the target's seed mean for each run's "
        "final architecture (the best by the search signal); Δ = (ours − published) / "
        "published std. Mean rank: 1 = best, ranked within each seed, ties averaged.",
        "",
        *main,
        "### Spread, intervals and regret",
        "",
        "Regret: the table's optimum (stored with the table's sha256 when the experiment "
        "ran, so no method's numbers depend on which others ran) minus the value. 95% "
        f"intervals: BCa bootstrap of the mean, {stats.RESAMPLES:,} resamples, each cell "
        f"its own stream ({_bootstrap_scheme()} extended by the first 8 bytes of the "
        "sha256 of `benchmark/target/method`).",
        "",
        *detail_markdown(study, summary),
        "",
        "## Cost per run",
        "",
        *_cost_lines(study),
        "## Average ranks",
        "",
        "Mean rank of each method per benchmark on its ranked target "
        f"({', '.join(f'{k}: {v}' for k, v in study.target.items())}), seed-matched; `all`: "
        "the mean over benchmarks.",
        "",
        *ranks_markdown(ranks),
        "",
        "## Statistical tests",
        "",
        *_pairing_lines(study),
        *_friedman_lines(friedman, cd[0].name if cd else None),
        *_pairwise_lines(pairs),
        "## Anytime performance",
        "",
        "Median over seeds with the distribution-free 95% interval of the median; over "
        "evaluations, up to the shortest run of each method.",
        "",
        *_anytime_lines(study, figures, auc),
        "## Selection bias",
        "",
        *_bias_lines(bias),
        "## Performance profile",
        "",
        "Share of each method's runs, over all benchmarks and seeds, whose regret on the "
        "ranked target is at most τ.",
        "",
        "![performance profile](performance-profile.png)",
        "",
        "## Best-practice checklist (Lindauer & Hutter, JMLR 2020)",
        "",
        "| item | result | evidence |",
        "|---|---|---|",
        *[f"| {i.item} | {'pass' if i.passed else 'FAIL'} | {i.evidence} |" for i in items],
        "",
    ]
    notes = _notes_lines(study)
    if notes:
        lines += ["## Notes and known deviations", "", *notes]
    report = out / REPORT
    write_text(report, "\n".join(lines).rstrip("\n") + "\n")
    return [report, *written]


def _bootstrap_scheme() -> str:
    return stream_scheme(("report",)).replace("<master seed>", str(stats.BOOTSTRAP_SEED))


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in name)

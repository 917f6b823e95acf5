"""A report's folder: ``report.md`` and the tables, statistics and figures it shows.

Written from the records alone (:mod:`harness.report.study`); no file holds a date, a
run id, a wall time or an absolute path, so reporting the same records again, here or on
another machine, gives the same bytes.
"""

from __future__ import annotations

import re
import warnings
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from harness.atomic import check_writable, staged_folder, write_text
from harness.errors import HarnessError
from harness.places import project_root
from harness.record import ExperimentRecord
from harness.report import REPORT, TABLE, anytime, audit, plots, stats
from harness.report.cells import derived_cells, share_lines
from harness.report.folders import results_folder
from harness.report.study import Benchmark, Study, build_study
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
            f"| {b.record.table['benchmark_id']} | `{b.record.table['sha256'][:16]}`{_unpinned(b)} "
            f"| {r['search']['signal']} @ {r['search']['epoch']} ({r['search']['seed_policy']}) "
            f"| {limits} | {len(seeds)} ({seeds[0]}..{seeds[-1]}) | {', '.join(b.methods)} |"
        )
    unpinned = [b.name for b in study.benchmarks if _unpinned(b)]
    if unpinned:
        lines += [
            "",
            f"**UNPINNED**: the spec of {', '.join(unpinned)} pins no table sha256, so a re-run "
            "may read other bytes than these results came from; pin it with `sha256` in `[table]`.",
        ]
    return lines


def _unpinned(benchmark: Benchmark) -> str:
    """The mark of a record whose spec pinned no table sha256 (the table it read may not be
    the one a re-run reads)."""
    return " **UNPINNED**" if benchmark.resolved["table"]["sha256"] is None else ""


def _pairing_lines(study: Study, pool: stats.Pool) -> list[str]:
    shared = all(
        len({tuple(runs["seed"]) for runs in b.record.runs.values()}) == 1 for b in study.benchmarks
    )
    pairing = (
        "Every method of a benchmark ran the same master seeds, and a run's random streams "
        "derive from its master seed alone, so seed *s* of one method shares its first draws "
        "with seed *s* of every other: within a benchmark, methods are compared **paired by "
        "seed**, the seeds as blocks."
        if shared
        else "Methods of some benchmark ran different seeds: the paired tests of a benchmark "
        "use only the seeds every compared method ran."
    )
    lines = [
        pairing,
        "",
        "What the inference covers: within a benchmark, the population of master seeds of "
        "that benchmark (its table, protocol and budget), not other benchmarks.",
    ]
    if len(study.benchmarks) > 1:
        lines[-1] += (
            " Across benchmarks, seeds of different benchmarks are not replicates of one "
            "another: the pooled tests take **benchmarks as blocks** (Demšar 2006), one value "
            "per method and benchmark (its mean over seeds on the ranked target), and cover "
            "benchmarks like these, a population that a handful of benchmarks samples thinly."
        )
        if pool.values is not None:
            blocks = len(pool.values)
            lines[-1] += (
                f" With {blocks} benchmarks a two-sided signed-rank test cannot go below "
                f"p = {stats.smallest_p(blocks):.3g}."
            )
    return lines + [""]


def _duplicate_lines(groups: dict[str, list[list[str]]], pool: stats.Pool) -> list[str]:
    lines = []
    for name, found in groups.items():
        for group in found:
            lines.append(
                f"- {name}: {', '.join(group[1:])} equal {group[0]} on every seed and every "
                f"target; tested as {group[0]}."
            )
    lines += [f"- {note}" for note in pool.notes]
    if not lines:
        return ["No two methods of a benchmark are equal on every seed, and no benchmark "
                "repeats another.", ""]  # fmt: skip
    return [
        "Evidence that repeats itself is counted once, so that it cannot inflate a test:",
        "",
        *lines,
        "",
    ]


def _friedman_lines(results: list[stats.Friedman], figure: str | None) -> list[str]:
    lines = [
        "Friedman's test (the omnibus: do the methods' ranks differ at all?), per family:",
        "",
        "| family | blocks | methods | χ² | p |",
        "|---|---|---|---|---|",
    ]
    for r in results:
        if r.undefined:
            chi, p = "undefined", f"undefined: {r.undefined}"
        else:
            chi, p = f"{r.statistic:.2f}", p_text(r.p_value)
        dropped = f", {r.dropped} incomplete left out" if r.dropped else ""
        lines.append(
            f"| {r.family} | {r.blocks} {r.unit}{dropped} | {len(r.methods)} | {chi} | {p} |"
        )
    lines.append("")
    if figure:
        lines += [
            f"![critical-difference diagram]({figure})",
            "",
            f"The diagram shows the mean ranks of the {results[-1].family} family; a bar joins "
            "methods whose Wilcoxon-Holm p is at least 0.05.",
            "",
        ]
    return lines


def _pairwise_lines(frame: pd.DataFrame) -> list[str]:
    families = frame.drop_duplicates("family")
    sizes = "; ".join(
        f"{row.family} ({row.blocks} as blocks): {row.family_size} tests"
        for row in families.itertuples()
    )
    lines = [
        "**Primary post-hoc procedure**: two-sided Wilcoxon signed-rank tests of every pair of "
        "methods, Holm-corrected within each family (Benavoli, Corani & Mangili, JMLR 2016). "
        f"The Holm families, as computed: {sizes or 'none'}. A pair with no nonzero "
        "difference has no test and stays out of its family.",
        "",
        "Zero differences are dropped and counted (zeros); p (Pratt) keeps them in the ranking, "
        "the check of how much dropping them matters (exact given the ranks up to "
        f"{stats.EXACT_LIMIT} nonzero differences, else normal). Test: exact, the exact null "
        f"distribution (at most {stats.EXACT_LIMIT} nonzero differences, none tied); normal, "
        "the tie-corrected normal approximation. Effect sizes, both over the nonzero differences: "
        "r, the matched-pairs rank-biserial correlation (weighs differences by the rank of "
        "their size); P(a>b), the share in a's favour (counts them). They can point opposite "
        "ways when a wins more often by smaller margins.",
        "",
        "| family | a | b | blocks | zeros | mean a − b | r | P(a>b) | test | p | p (Pratt) "
        "| p (Holm) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in frame.itertuples():
        lines.append(
            f"| {row.family} | {row.a} | {row.b} | {row.n} | {row.zeros} "
            f"| {number(row.mean_difference, 3, sign=True)} "
            f"| {number(row.rank_biserial, 3, sign=True)} "
            f"| {number(row.p_improvement, 3)} | {row.test} | {p_text(row.p_value)} "
            f"| {p_text(row.p_pratt)} | {p_text(row.p_holm)} |"
        )
    return lines + [""]


def _reproduction_lines(frame: pd.DataFrame) -> list[str]:
    if frame.empty:
        return ["No published numbers to test.", ""]
    counts = frame["verdict"].str.split(":").str[0].value_counts()
    lines = [
        "Whether our runs reproduce each published mean is decided by tests, not by Δ: "
        "Welch's two-sample t-test against the published mean, std and n (H0: equal "
        "means), and Schuirmann's two one-sided tests (TOST, H0: the means differ by at "
        f"least the margin, ±{stats.EQUIVALENCE_MARGIN:g} published σ). Reproduced: TOST "
        "shows equivalence at α = 0.05; different: not equivalent and Welch rejects "
        "equal means; inconclusive: neither.",
        "",
        "Verdicts: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) + ".",
        "",
        "| benchmark | target | method | ours (n) | published (n) | margin | Welch p "
        "| TOST p | verdict |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in frame.itertuples():
        n_pub = "?" if np.isnan(row.published_n) else f"{row.published_n:.0f}"
        lines.append(
            f"| {row.benchmark} | {row.target} | {row.method} "
            f"| {number(row.mean)} ± {number(row.std)} ({row.n}) "
            f"| {number(row.published_mean)} ± {number(row.published_std)} ({n_pub}) "
            f"| ± {number(row.margin, 3)} | {p_text(row.welch_p)} | {p_text(row.tost_p)} "
            f"| {row.verdict} |"
        )
    return lines + [""]


def _protocol_lines(study: Study) -> list[str]:
    """Per benchmark, what answered an evaluation and how: from the parent run's params."""
    lines = [
        "| benchmark | evaluator | evaluator class | distribution | source sha256 "
        "| seed policy | cost | ranked target |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for b in study.benchmarks:
        params, search = b.record.params, b.resolved["search"]
        label = study.target[b.name]
        seed = f" (seed {search['seed']})" if search["seed_policy"] == "fixed" else ""
        lines.append(
            f"| {b.name} | {params.get('evaluator', 'tabular')} "
            f"| `{params.get('evaluator.class', '?')}` "
            f"| {params.get('evaluator.distribution', '?')} "
            f"{params.get('evaluator.version', '?')} "
            f"| `{params.get('evaluator.source_sha256', '?')[:16]}` "
            f"| {search['seed_policy']}{seed} | {search.get('cost', 'table')} "
            f"| {label} ({b.roles[label] or 'no role'}) |"
        )
    return lines + [""]


def _methods_lines(study: Study) -> list[str]:
    """Each method as its record holds it: hyperparameters given in the spec and where its
    plugin class came from (benchmarks sharing all of it share one row)."""
    rows: dict[tuple[str, ...], list[str]] = {}
    for b in study.benchmarks:
        for strategy in b.resolved["strategies"]:
            params = b.record.child_params.get(strategy["name"], {})
            given = ", ".join(f"{k} = {v}" for k, v in sorted(strategy["params"].items()))
            key = (
                strategy["name"],
                strategy["kind"],
                given or "none (the class's defaults)",
                f"`{params.get('origin.class', '?')}`",
                f"{params.get('origin.distribution', '?')} {params.get('origin.version', '?')}",
                f"`{params.get('origin.source_sha256', '?')[:16]}`",
            )
            rows.setdefault(key, []).append(b.name)
    lines = [
        "Hyperparameters as the spec gives them (the rest are the class's defaults, pinned "
        "by its source sha256); the plugin's class, its distribution and version, and the "
        "sha256 of its source file (first 16 hex digits; in full in each strategy run's "
        "params).",
        "",
        "| method | benchmarks | kind | hyperparameters | class | distribution | source sha256 |",
        "|---|---|---|---|---|---|---|",
    ]
    every = len(study.benchmarks)
    for key, names in rows.items():
        where = "all" if len(names) == every and every > 1 else ", ".join(names)
        lines.append(f"| {key[0]} | {where} | " + " | ".join(key[1:]) + " |")
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
    ``report.md`` first. ``target`` is the target ranked and tested: a label, or
    ``role:validation`` / ``role:test`` (default: :func:`~harness.report.study.choose_targets`).

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


def _figures(
    study: Study, shown: stats.Friedman | None, pairs: pd.DataFrame, out: Path
) -> tuple[list[Path], dict[str, str], list[Path]]:
    """Every figure of a report: (files written, benchmark -> its anytime figure's file
    name, the critical-difference diagram's files, if ``shown`` is drawn)."""
    written: list[Path] = []
    figures: dict[str, str] = {}
    for b in study.benchmarks:
        files = plots.anytime_figure(study, b.name, out / f"anytime-{_slug(b.name)}")
        written += files
        if files:
            figures[b.name] = files[0].name
    cd = [] if shown is None else plots.cd_figure(shown, pairs, study.methods, out / "cd-diagram")
    written += cd
    written += plots.profile_figure(study, out / "performance-profile")
    return written, figures, cd


def _write_report(records: list[ExperimentRecord], out: Path, target: str | None) -> list[Path]:
    study = build_study(records, target)
    pool = stats.pool(study)
    friedman = stats.friedman(study, pool)
    pairs = stats.pairwise(study, pool)
    # the diagram of the widest family: the pooled one, or a single benchmark's
    shown = friedman[-1]
    drawable = len(shown.methods) >= 3 and shown.blocks >= 2
    # the figures are drawn in another process while this one computes the rest
    drawing = plots.Drawing(partial(_figures, study, shown if drawable else None, pairs, out))
    try:
        summary = stats.summary(study)
        groups = stats.identical_groups(study)
        ranks = stats.average_ranks(study, pool)
        reproduction = stats.reproduction(summary)
        auc = anytime.auc_table(study)
        bias = anytime.selection_bias(study)
        items = audit.checklist(study)
        written, figures, cd = drawing.result()
    finally:
        drawing.cancel()

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
    if not reproduction.empty:
        written.append(_csv(out / "reproduction.csv", reproduction))
    cells = derived_cells(study)
    if cells is not None:
        written.append(_csv(out / "derived-cells.csv", cells.frame))

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
        + ("`reproduction.csv`, " if not reproduction.empty else "")
        + ("`derived-cells.csv`, " if cells is not None else "")
        + f"`{OVERHEAD}` and the figures (PNG and SVG).",
        "",
        "## Records",
        "",
        *_records_lines(study),
        "",
        "How each benchmark answered an evaluation (from the parent run's params), and the "
        "target it ranks and tests, with its role: validation or test of the search's data.",
        "",
        *_protocol_lines(study),
        "## Methods",
        "",
        *_methods_lines(study),
        "## Results",
        "",
        "Each cell: mean ± sample std over seeds of the target's seed mean for each run's "
        "final architecture (the best by the search signal). Δ = (ours − published) / "
        "published std describes the gap; it is not a test (see Reproduction). Mean rank: "
        "1 = best, the methods ranked within each seed, ties averaged, then averaged over "
        "seeds.",
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
        *(["## Derived cells", "", *share_lines(study, cells)] if cells is not None else []),
        "## Average ranks",
        "",
        "Mean rank of each method per benchmark on its ranked target "
        f"({', '.join(f'{k}: {v}' for k, v in study.target.items())}), seed-matched"
        + (
            "."
            if len(study.benchmarks) == 1
            else "; `all`: the mean over the benchmarks that enter the pooled tests "
            "(– where none can be pooled)."
        ),
        "",
        *ranks_markdown(ranks),
        "",
        "## Statistical tests",
        "",
        *_pairing_lines(study, pool),
        "### Duplicated evidence",
        "",
        *_duplicate_lines(groups, pool),
        "### Omnibus",
        "",
        *_friedman_lines(friedman, cd[0].name if cd else None),
        "### Pairs",
        "",
        *_pairwise_lines(pairs),
        "## Reproduction",
        "",
        *_reproduction_lines(reproduction),
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

"""The ``harness`` command line, a thin shell over the Python API (:mod:`harness.api`).

Every user-fixable problem ends with one line on stderr and exit status 2; nothing is
half-written. Heavy imports (MLflow, torch) happen only in the commands that need them.
Progress from the library arrives through :mod:`logging` and is printed to stderr.
"""

from __future__ import annotations

import argparse
import atexit
import logging
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from harness.errors import HarnessError, TableError
from harness.executors import EXECUTORS, leave_no_threads, resolve_executor, stray_threads
from harness.importers import IMPORTERS
from harness.report import TABLE
from harness.version import __version__

EXIT_USAGE = 2
DESCRIPTION = (
    "A reproducibility-first benchmark harness for neural architecture search: run specs, "
    "record them to MLflow, report and re-run them. Spec reference: docs/specs.md."
)
SCHEDULER_HELP = (
    "run on the existing Dask cluster at this address, e.g. tcp://10.0.0.5:8786 "
    "(implies --executor dask; see docs/distributed.md)"
)
#: the most seeds ``--seeds`` may name (as many as a spec's ``{start, count}`` may)
MAX_SEEDS = 1_000_000
_ASCII_NUMBER = re.compile(r"[0-9]{1,19}")


def _seed_list(text: str) -> list[int]:
    """``0-9,20,30-31`` -> the seeds it names (ASCII digits only; at most
    :data:`MAX_SEEDS`, counted before any list is built)."""
    bounds: list[tuple[int, int]] = []
    for part in text.split(","):
        first, dash, last = (piece.strip() for piece in part.partition("-"))
        if not all(_ASCII_NUMBER.fullmatch(t) for t in ((first, last) if dash else (first,))):
            raise HarnessError(
                f"--seeds {text!r}: expected seeds and ranges like 0-9,20 (non-negative "
                "integers in ASCII digits)"
            )
        low, high = int(first), int(last) if dash else int(first)
        if high < low:
            raise HarnessError(f"--seeds {text!r}: the range {part.strip()} is empty")
        bounds.append((low, high))
    count = sum(high - low + 1 for low, high in bounds)
    if count > MAX_SEEDS:
        raise HarnessError(
            f"--seeds {text!r} names {count:,} seeds, more than {MAX_SEEDS:,}; run fewer"
        )
    return [seed for low, high in bounds for seed in range(low, high + 1)]


def _strategy_names(text: str) -> list[str]:
    """``REA,RS`` -> the names; an empty name is refused, not ignored."""
    names = [name.strip() for name in text.split(",")]
    if not all(names):
        raise HarnessError(
            f"--strategies {text!r}: expected names of the spec's strategies, e.g. REA,RS"
        )
    return names


def _budget_items(items: Sequence[str]) -> dict[str, float | int | str | None]:
    """``seconds=6000`` / ``evaluations=100`` / ``seconds=none`` -> a budget override, each
    item checked here so that an error names the flag, not the spec file."""
    from harness.config import nearest
    from harness.errors import ConfigError
    from harness.values import BUDGET_FIELDS

    budget: dict[str, float | int | str | None] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise HarnessError(f"--budget {item!r}: expected KEY=VALUE, e.g. evaluations=100")
        if key not in BUDGET_FIELDS:
            raise HarnessError(
                f"--budget {item!r}: {key!r} is not a budget key{nearest(key, BUDGET_FIELDS)}; "
                f"keys: {', '.join(BUDGET_FIELDS)}"
            )
        if value.lower() == "none":
            budget[key] = None
            continue
        if key == "overrun":
            parsed: float | int | str = value
        else:
            try:
                if not value.isascii():  # int() and float() take any script's digits
                    raise ValueError(value)
                parsed = int(value) if value.lstrip("-").isdigit() else float(value)
            except ValueError:
                raise HarnessError(f"--budget {item!r}: {value!r} is not a number") from None
        try:
            budget[key] = BUDGET_FIELDS[key].check(parsed)
        except ConfigError as error:
            raise HarnessError(f"--budget {item!r}: {error.message}") from None
    return budget


def _run(args: argparse.Namespace) -> int:
    from harness.api import run

    if args.jobs < 1:
        raise HarnessError(f"--jobs must be at least 1, got {args.jobs}")
    done = run(
        args.spec,
        seeds=None if args.seeds is None else _seed_list(args.seeds),
        strategies=None if args.strategies is None else _strategy_names(args.strategies),
        budget=_budget_items(args.budget) if args.budget else None,
        evaluator=args.evaluator,
        executor=args.executor,
        jobs=args.jobs,
        results=args.results,
        data_root=args.data_root,
        split_dir=args.split_dir,
        scheduler=args.scheduler,
    )
    report = done.files[0]
    print((report.parent / TABLE).read_text())
    print(
        f"{len(done.runs)} runs; MLflow experiment run {done.run_id} in {done.store}; "
        f"report: {_shown(report)} ({len(done.files)} files in {_shown(report.parent)})"
    )
    return 0


def _shown(path: Path) -> Path:
    """A path as the user reads it best: relative to the working folder when inside it."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        return path


def _import(args: argparse.Namespace) -> int:
    from harness.importers import build_table

    out = Path(args.out)
    source = Path(args.source) if args.source else None
    digest = build_table(args.benchmark, out, source, args.dataset)
    print(f"wrote {out} sha256 {digest}")
    return 0


def _info(args: argparse.Namespace) -> int:
    from harness.spaces import get_space
    from harness.table import Table, summarize

    table = Table.load(Path(args.table))
    try:
        space = get_space(table.space)
    except HarnessError as error:
        raise TableError(f"table {table.path}: {error}") from None
    if args.arch is None:
        print(summarize(table, space.strings()))
        return 0
    arch = space.index_of_string(args.arch)
    if len(table.archs) != space.num_archs or table.archs[arch] != args.arch:
        raise TableError(
            f"table {table.path} does not hold the {space.name} space's architectures in "
            "index order; rebuild it with `harness import` or `harness tabulate`"
        )
    representative = int(space.isomorphism_classes()[arch])
    print(f"architecture {arch}: {args.arch}")
    print(f"isomorphism class representative: {representative}")
    for key in table.variables():
        variable = table.variable(*key)
        values = ", ".join(
            f"{seed}={variable.values[arch, s, -1]:.4f}"
            if variable.mask[arch, s, -1]
            else f"{seed}=–"
            for s, seed in enumerate(variable.seeds)
        )
        print(f"  {'/'.join(key)} @ epoch {variable.epochs[-1]}: {values}")
    return 0


def _ls(args: argparse.Namespace) -> int:
    from harness.api import ls

    frame = ls(args.name)
    store = frame.attrs.get("store", "?")
    if frame.empty:
        print(f"no experiments recorded in the MLflow store {store}")
        return 0
    print(f"MLflow store: {store}")
    print(frame.to_string(index=False))
    return 0


def _report(args: argparse.Namespace) -> int:
    from harness.api import make_report

    written = make_report(args.experiments, args.out, args.target, newest=args.newest)
    print(f"report: {_shown(written[0])} ({len(written)} files in {_shown(written[0].parent)})")
    return 0


def _compare_tables(args: argparse.Namespace) -> int:
    from harness.errors import ConfigError
    from harness.report.fidelity import compare_tables, format_fidelity
    from harness.table import Table
    from harness.values import MetricRef

    refs = []
    for flag, text in (("--metric-a", args.metric_a), ("--metric-b", args.metric_b)):
        try:
            refs.append(MetricRef.parse(text))
        except ConfigError as error:
            raise ConfigError(error.message, flag) from None
    proxy, reference = Table.load(Path(args.a)), Table.load(Path(args.b))
    result = compare_tables(proxy, refs[0], reference, refs[1])
    print(format_fidelity(result, f"{args.a} {refs[0]}", f"{args.b} {refs[1]}"))
    return 0


def _rerun(args: argparse.Namespace) -> int:
    from harness.api import rerun

    done = rerun(
        args.record,
        args.seed,
        args.strategy,
        table=args.table,
        data_root=args.data_root,
        split_dir=args.split_dir,
    )
    for seed in done.seeds:
        label = f"{seed.strategy} seed {seed.seed}"
        for note in seed.notes:
            print(f"{label}: note: {note}")
        print(f"{label}: {_rerun_verdict(seed)}")
        if seed.difference is not None:
            print(_difference_table(seed.difference))
    return 0 if done.identical else 1


def _rerun_verdict(seed: Any) -> str:
    """One line: identical (with what the run found), or where it first differs."""
    found = seed.difference
    if found is None:
        targets = ", ".join(f"{k} {v:.2f}" for k, v in seed.targets.items())
        return (
            f"identical to the record ({seed.evaluations} evaluations, final architecture "
            f"{seed.final_arch}, {targets})"
        )
    if not found.columns:
        return (
            f"DIFFERENT at row {found.row}: {seed.evaluations} rows now, "
            f"{seed.recorded_evaluations} recorded"
        )
    word = "column" if len(found.columns) == 1 else "columns"
    first = found.columns[0]
    values = ""
    if found.now is not None and found.recorded is not None and first in found.now:
        values = f": now {found.now[first]!r}, recorded {found.recorded.get(first)!r}"
    return f"DIFFERENT at row {found.row}, {word} {', '.join(found.columns)}{values}"


def _difference_table(found: Any) -> str:
    """The first differing row, now and as recorded, one column per line (* marks a
    differing column)."""
    now, recorded = found.now or {}, found.recorded or {}
    columns = list(dict.fromkeys([*now, *recorded]))
    width = max(map(len, columns), default=0)
    lines = [f"  {'':{width}}   {'now':>20}   {'recorded':>20}"]
    for column in columns:
        mark = "*" if column in found.columns else " "
        left = repr(now[column]) if column in now else "-"
        right = repr(recorded[column]) if column in recorded else "-"
        lines.append(f"{mark} {column:{width}}   {left:>20}   {right:>20}")
    return "\n".join(lines)


def _tabulate(args: argparse.Namespace) -> int:
    from harness.tabulate import load_tabulate_spec, tabulate

    executor = _chunked_build_executor(args, "train")
    spec = load_tabulate_spec(Path(args.spec))
    digest = tabulate(spec, args.workers, args.max_chunks, executor, args.scheduler)
    if digest is None:
        print(f"partial build kept in {spec.out}.parts; run the same command again to continue")
    else:
        print(f"wrote {spec.out} sha256 {digest}")
    return 0


def _estimate(args: argparse.Namespace) -> int:
    from harness.api import estimate

    executor = _chunked_build_executor(args, "score")
    done = estimate(
        args.spec,
        workers=args.workers,
        executor=executor,
        scheduler=args.scheduler,
        max_chunks=args.max_chunks,
        out=args.out,
        results=args.results,
        data_root=args.data_root,
        split_dir=args.split_dir,
    )
    if done.sha256 is None:
        print(f"partial estimate kept in {done.path}.parts; run the same command again")
        return 0
    print(done.files[0].read_text())
    print(
        f"estimate {done.path} sha256 {done.sha256}; MLflow run {done.run_id} in {done.store}; "
        f"report: {done.files[0]} ({len(done.files)} files in {done.files[0].parent})"
    )
    return 0


def _predict(args: argparse.Namespace) -> int:
    from harness.api import predict

    done = predict(args.spec, trials=args.trials, results=args.results)
    print(done.files[0].read_text())
    print(
        f"MLflow run {done.run_id} in {done.store}; report: {done.files[0]} "
        f"({len(done.files)} files in {done.files[0].parent})"
    )
    return 0


def _verify(args: argparse.Namespace) -> int:
    from harness.table import Table
    from harness.verify import format_drift, verify

    table = Table.load(Path(args.table))
    data_root = Path(args.data_root) if args.data_root else None
    split_dir = Path(args.split_dir) if args.split_dir else None
    drifts = verify(table, args.sample, args.seed, data_root, split_dir)
    print(format_drift(drifts))
    return 0 if max(d.max_abs for d in drifts) == 0 else 1


class _StderrLines(logging.Handler):
    """The library's progress messages, one line each on the current stderr."""

    def emit(self, record: logging.LogRecord) -> None:
        print(record.getMessage(), file=sys.stderr)


class _Parser(argparse.ArgumentParser):
    """argparse, with a bad flag ending in one line like every other error."""

    def error(self, message: str) -> NoReturn:
        raise HarnessError(f"{message}; see `{self.prog} --help`")


def _chunked_build_executor(args: argparse.Namespace, verb: str) -> str:
    """The executor of a chunked build, once its flags are checked."""
    if args.workers is not None and args.workers < 1:
        raise HarnessError(f"--workers must be at least 1, got {args.workers}")
    if args.max_chunks is not None and args.max_chunks < 1:
        raise HarnessError(
            f"--max-chunks must be at least 1, got {args.max_chunks} (leave it out to {verb} all)"
        )
    return resolve_executor(args.executor, args.scheduler, default="processes")


def _chunked_build_arguments(command: argparse.ArgumentParser, verb: str) -> None:
    """The flags of a build cut into resumable chunks (``tabulate``, ``estimate``)."""
    command.add_argument(
        "--executor",
        choices=EXECUTORS,
        help="where chunks run: processes (the default), serial, or dask",
    )
    command.add_argument(
        "--workers", type=int, help="worker processes, local or Dask (default: the spec's)"
    )
    command.add_argument("--scheduler", metavar="ADDRESS", help=SCHEDULER_HELP)
    command.add_argument("--max-chunks", type=int, help=f"{verb} at most this many chunks now")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="harness", description=DESCRIPTION)
    parser.add_argument(
        "--version", action="version", version=f"harness {__version__}", help="print the version"
    )
    commands = parser.add_subparsers(
        dest="command",
        required=True,
        metavar="COMMAND",
        help="what to do; `harness COMMAND --help` describes each",
    )

    run = commands.add_parser("run", help="run an experiment spec, record it, write results")
    run.add_argument("spec", help="experiment spec (TOML), e.g. benchmarks/nb201/table5.toml")
    run.add_argument(
        "--executor",
        choices=EXECUTORS,
        help="where runs execute: serial, processes or dask (default: processes for "
        "tabular work of several chunks on a machine with several cores, else serial)",
    )
    run.add_argument(
        "--jobs", type=int, default=2, help="worker processes (processes, local Dask cluster)"
    )
    run.add_argument("--scheduler", metavar="ADDRESS", help=SCHEDULER_HELP)
    run.add_argument(
        "--results",
        help="report folder (default: the spec's [experiment] results for the spec as it is; "
        "with overrides, --evaluator live or an edited spec, a sibling folder named by what "
        "differs, e.g. results/NAME+seeds-0-9)",
    )
    run.add_argument(
        "--evaluator",
        metavar="KIND",
        help="replace the spec's [search] evaluator: tabular (look evaluations up in the "
        "table), live (train them under its protocol) or a plugin kind",
    )
    run.add_argument("--data-root", help="dataset folder for live runs (CIFAR, ImageNet16, ...)")
    run.add_argument("--split-dir", help="folder of NB201's split files, for live runs")
    run.add_argument("--seeds", help="override the spec's master seeds, e.g. 0-9 or 0,5,7-9")
    run.add_argument("--strategies", help="run only these strategies of the spec, e.g. REA,RS")
    run.add_argument(
        "--budget",
        action="append",
        metavar="KEY=VALUE",
        help="override a budget key (seconds, evaluations, epochs, overrun; VALUE none "
        "removes a limit); repeatable",
    )
    run.set_defaults(handler=_run)

    imp = commands.add_parser("import", help="build a benchmark table from published data")
    imp.add_argument(
        "benchmark",
        help="; ".join(f"{name}: {needs}" for name, needs in IMPORTERS.items())
        + "; or a plugin: an entry point in group harness.importers, or package.module:Class",
    )
    imp.add_argument("--source", help="folder of the published data files")
    imp.add_argument("--dataset", help="dataset to import (nbgraph)")
    imp.add_argument("--out", required=True, help="HDF5 table to write")
    imp.set_defaults(handler=_import)

    tab = commands.add_parser("tabulate", help="train every cell under a protocol into a table")
    tab.add_argument("spec", help="tabulate spec (TOML), e.g. benchmarks/digits/tabulate.toml")
    _chunked_build_arguments(tab, "train")
    tab.set_defaults(handler=_tabulate)

    est = commands.add_parser(
        "estimate", help="score a space's cells with estimators; judge them against a table"
    )
    est.add_argument("spec", help="estimate spec (TOML), e.g. benchmarks/zero-cost/digits.toml")
    _chunked_build_arguments(est, "score")
    est.add_argument(
        "--out", help="write the estimate file here instead of the spec's (not pinned)"
    )
    est.add_argument("--results", help="report folder (default: the spec's, or beside --out)")
    est.add_argument("--data-root", help="dataset folder (CIFAR, ImageNet16, ...)")
    est.add_argument("--split-dir", help="folder of NB201's split files")
    est.set_defaults(handler=_estimate)

    pre = commands.add_parser(
        "predict", help="fit performance predictors on table samples; judge them (NASLib)"
    )
    pre.add_argument("spec", help="predict spec (TOML), e.g. benchmarks/predictors/digits.toml")
    pre.add_argument("--trials", type=int, help="trials instead of the spec's (report elsewhere)")
    pre.add_argument("--results", help="report folder (default: the spec's)")
    pre.set_defaults(handler=_predict)

    ver = commands.add_parser("verify", help="retrain a sample of a table live, report drift")
    ver.add_argument("table", help="the benchmark table (HDF5) to check")
    ver.add_argument("--sample", type=int, required=True, help="how many cells to retrain")
    ver.add_argument("--seed", type=int, default=0, help="seed of the sample's choice")
    ver.add_argument("--data-root", help="folder of the dataset (CIFAR, ImageNet16, ...)")
    ver.add_argument("--split-dir", help="folder of NB201's split files")
    ver.set_defaults(handler=_verify)

    info = commands.add_parser("info", help="describe a benchmark table")
    info.add_argument("table", help="the benchmark table (HDF5) to describe")
    info.add_argument("--arch", help="print every value the table holds for this arch string")
    info.set_defaults(handler=_info)

    report = commands.add_parser(
        "report", help="tables, statistics and plots of recorded experiments, from the records"
    )
    report.add_argument(
        "experiments",
        nargs="+",
        metavar="EXPERIMENT",
        help="an experiment name (its finished record; see --newest), an MLflow run id, or "
        "a spec path (the record of that spec as it is: same hash, no overrides)",
    )
    report.add_argument(
        "--out",
        help="folder to write (default, for one experiment: where `harness run` writes it; "
        "results/<name> at the project root for a name or run id)",
    )
    report.add_argument(
        "--target",
        help="the report target to rank and test: a label, or role:validation or role:test "
        "(default: the first; for several experiments, one role for all)",
    )
    report.add_argument(
        "--newest",
        action="store_true",
        help="for an experiment name whose finished records differ (spec hash, evaluator, "
        "table), report the newest instead of refusing",
    )
    report.set_defaults(handler=_report)

    compare = commands.add_parser(
        "compare-tables",
        help="rank agreement of two tables of one space (Kendall τ, Spearman ρ, top-k)",
    )
    compare.add_argument("a", help="the proxy table (HDF5)")
    compare.add_argument("b", help="the reference table (HDF5), same space")
    compare.add_argument(
        "--metric-a", required=True, help="A's variable, e.g. digits/e4/valid/accuracy"
    )
    compare.add_argument(
        "--metric-b", required=True, help="B's variable, e.g. cifar10/hp200/ori-test/accuracy"
    )
    compare.set_defaults(handler=_compare_tables)

    rerun = commands.add_parser(
        "rerun", help="re-run one recorded seed and diff it with its record, row by row"
    )
    rerun.add_argument(
        "record",
        metavar="RECORD",
        help="a run id that `harness ls` prints, a strategy run's id, or an experiment name "
        "(its newest finished record)",
    )
    rerun.add_argument("--seed", type=int, required=True, help="the master seed to re-run")
    rerun.add_argument(
        "--strategy", help="only this strategy of the record (default: every strategy)"
    )
    rerun.add_argument("--table", help="table file, if it moved since the run (sha256 is checked)")
    rerun.add_argument("--data-root", help="dataset folder, to re-run a live run")
    rerun.add_argument("--split-dir", help="folder of NB201's split files, to re-run a live run")
    rerun.set_defaults(handler=_rerun)

    listing = commands.add_parser("ls", help="list recorded experiments and their run ids")
    listing.add_argument("name", nargs="?", help="only this experiment's records")
    listing.set_defaults(handler=_ls)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    library = logging.getLogger("harness")
    if not any(isinstance(h, _StderrLines) for h in library.handlers):
        library.addHandler(_StderrLines())
        library.setLevel(logging.INFO)
    try:
        args = build_parser().parse_args(argv)
        try:
            return args.handler(args)
        except SystemExit as exit:  # plugin code that called sys.exit where nothing caught it
            raise HarnessError(
                f"plugin code called sys.exit({exit.code!r}) while harness {args.command} ran; "
                "nothing was recorded: a plugin must raise an exception, not exit"
            ) from None
    except HarnessError as error:
        print(f"harness: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:  # output piped into a reader that stopped early, e.g. `head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print("harness: interrupted", file=sys.stderr)
        return 130


def command(argv: Sequence[str] | None = None) -> NoReturn:
    """``harness`` as a process: :func:`main`, then exit with its status, even when plugin
    code left a non-daemon thread running (Python would otherwise wait for it forever)."""
    code = main(argv)
    if stray_threads():
        atexit._run_exitfuncs()  # what a normal exit runs (MLflow's, logging's), then go
        leave_no_threads(code)
    sys.exit(code)


if __name__ == "__main__":
    command()

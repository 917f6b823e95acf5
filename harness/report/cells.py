"""What weight-sharing searches derived: the operations of their cells, epoch by epoch.

NB201's Table 5 shows DARTS and ENAS collapsing to cells of parameter-free operations
(skip connections, pooling, none). For every method whose record keeps search logs
(:data:`harness.record.SEARCH_LOG`), this counts each operation's share among the
decisions of the derived cells, of the final cell and after each epoch, so a report shows
whether and when a method collapses. ``derived-cells.csv`` lists the derived cell of every
seed at every epoch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from harness.record import SEARCH_LOG, load_search_logs
from harness.record_check import damaged
from harness.report.study import Study
from harness.spaces import get_space
from harness.spaces.base import SearchSpace

#: the points of a search the by-epoch table shows, as fractions of its epochs
MILESTONES = (("epoch 1", 0.0), ("25 %", 0.25), ("50 %", 0.5), ("75 %", 0.75), ("last", 1.0))
COLUMNS = ["benchmark", "method", "seed", "stage", "epoch", "arch_index", "arch"]


@dataclass(frozen=True)
class DerivedCells:
    """Every derived cell of the study's weight-sharing methods (``frame``: one row per
    benchmark, method, seed and epoch, ``stage`` ``epoch``, plus the ``final`` cell the
    search returned), and the option names of the space they come from."""

    frame: pd.DataFrame
    options: tuple[str, ...]
    parameter_free: frozenset[str]


def derived_cells(study: Study) -> DerivedCells | None:
    """The cells the study's weight-sharing methods derived, or None where no method of a
    space with named operations kept search logs."""
    rows: list[tuple[Any, ...]] = []
    space: SearchSpace | None = None
    for benchmark in study.benchmarks:
        candidate = get_space(benchmark.record.params.get("space", ""))
        if candidate.option_names is None:
            continue
        for method in benchmark.methods:
            params = benchmark.record.child_params[method]
            if not any(key.startswith("supernet.") for key in params):
                continue
            child = benchmark.record.children[method]
            logs = load_search_logs(child, benchmark.record.store or None)
            if logs is None:
                continue
            space = candidate
            for seed, log in sorted(logs.items(), key=lambda item: int(item[0])):
                for stage, epoch, arch in _cells(child, seed, log, candidate):
                    rows.append(
                        (
                            benchmark.name,
                            method,
                            int(seed),
                            stage,
                            epoch,
                            arch,
                            candidate.string_of_index(arch),
                        )
                    )
    if space is None:
        return None
    options = tuple(dict.fromkeys(name for names in space.option_names or () for name in names))
    return DerivedCells(pd.DataFrame(rows, columns=COLUMNS), options, space.parameter_free)


def _cells(child: str, seed: str, log: Any, space: SearchSpace) -> list[tuple[str, int, int]]:
    """(stage, epoch, arch index) of one seed's log, checked: a record is read back, and
    believed only once it has the shape a search writes."""
    try:
        epochs = [(int(row["epoch"]), space.check_index(row["arch"])) for row in log["epochs"]]
        final = space.check_index(log["arch"])
        int(seed)
    except Exception as error:  # noqa: BLE001 - any malformed content: the record is damaged
        raise damaged(
            child, SEARCH_LOG, f"seed {seed!r} holds no derived cells ({error})"
        ) from None
    last = epochs[-1][0] if epochs else 0
    return [("epoch", e, a) for e, a in epochs] + [("final", last, final)]


def option_shares(cells: DerivedCells, frame: pd.DataFrame, space: SearchSpace) -> dict[str, float]:
    """Each option's share of the decisions of the cells in ``frame``."""
    names = space.option_names or ()
    counts = dict.fromkeys(cells.options, 0)
    for arch in frame["arch_index"]:
        for k, choice in enumerate(space.decisions_of_index(int(arch))):
            counts[names[k][choice]] += 1
    total = sum(counts.values())
    return {name: count / total for name, count in counts.items()}


def share_lines(study: Study, cells: DerivedCells) -> list[str]:
    """The report's section: operation shares of the final cells, and the parameter-free
    share after the first epoch, at quarters of the search and at its end."""
    frame = cells.frame
    lines = [
        "Each weight-sharing search's derived cell (from its search log): the share of each "
        "operation among the cells' decisions, over all seeds; *parameter-free* counts "
        f"{', '.join(f'`{o}`' for o in cells.options if o in cells.parameter_free)}. "
        "`derived-cells.csv` lists the derived cell of every seed after every epoch.",
        "",
    ]
    free = [o for o in cells.options if o in cells.parameter_free]
    header = ["benchmark", "method", "seeds", *[f"`{o}`" for o in cells.options]]
    lines += [
        "| " + " | ".join([*header, "parameter-free"]) + " |",
        "|" + "---|" * (len(header) + 1),
    ]
    by_epoch = [
        "| " + " | ".join(["benchmark", "method", *(m for m, _ in MILESTONES), "final"]) + " |",
        "|" + "---|" * (len(MILESTONES) + 3),
    ]
    for (benchmark, method), group in frame.groupby(["benchmark", "method"], sort=False):
        space = get_space(_space_of(study, benchmark))
        final = group[group["stage"] == "final"]
        shares = option_shares(cells, final, space)
        lines.append(
            f"| {benchmark} | {method} | {final['seed'].nunique()} | "
            + " | ".join(f"{100 * shares[o]:.1f} %" for o in cells.options)
            + f" | {100 * sum(shares[o] for o in free):.1f} % |"
        )
        epochs = group[group["stage"] == "epoch"]
        last = int(epochs["epoch"].max()) if len(epochs) else 0
        row = []
        for _, fraction in MILESTONES:
            epoch = max(1, round(fraction * last))
            at = epochs[epochs["epoch"] == epoch]
            row.append(_free_share(cells, at, space, free, epoch))
        row.append(_free_share(cells, final, space, free, None))
        by_epoch.append(f"| {benchmark} | {method} | " + " | ".join(row) + " |")
    return [
        *lines,
        "",
        "The parameter-free share of the derived cells as the search went on (the epoch "
        "in brackets), and of the cell each search returned:",
        "",
        *by_epoch,
        "",
    ]


def _free_share(
    cells: DerivedCells, frame: pd.DataFrame, space: SearchSpace, free: list[str], epoch: int | None
) -> str:
    if frame.empty:
        return "–"
    shares = option_shares(cells, frame, space)
    value = f"{100 * sum(shares[o] for o in free):.1f} %"
    return value if epoch is None else f"{value} ({epoch})"


def _space_of(study: Study, benchmark: str) -> str:
    return next(b.record.params["space"] for b in study.benchmarks if b.name == benchmark)

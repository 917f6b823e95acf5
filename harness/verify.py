"""Retrain a sample of a table's cells live and report the drift against the table.

Each sampled cell is retrained as the table built it: its isomorphism class
representative, under the table's own protocol, for every protocol seed. Accuracy and
loss curves are compared epoch by epoch (times are measured, so they always differ and
are not compared). On the machine and thread count that built the table the drift must
be exactly zero; elsewhere it measures how far the hardware moves the numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness.errors import ConfigError
from harness.protocol import table_protocol
from harness.spaces import get_space
from harness.spaces.base import SearchSpace
from harness.table import Table
from harness.train import open_dataset, train_cell

COMPARED = ("loss", "accuracy")


@dataclass(frozen=True)
class Drift:
    """Largest absolute difference over seeds and epochs for one cell and variable."""

    arch: int
    trained_as: int
    variable: str
    max_abs: float


def sample_cells(space: SearchSpace, sample: int, seed: int) -> list[int]:
    """The cells ``verify`` retrains: ``sample`` distinct cells, sorted, chosen by ``seed``."""
    rng = np.random.Generator(np.random.PCG64(seed))
    return sorted(int(a) for a in rng.choice(space.num_archs, sample, replace=False))


def verify(
    table: Table,
    sample: int,
    seed: int = 0,
    data_root: Path | None = None,
    split_dir: Path | None = None,
) -> list[Drift]:
    """Drift per sampled cell and compared variable (sampled without replacement)."""
    protocol = table_protocol(table.protocol, table.path)
    space = get_space(table.space)
    if not 1 <= sample <= space.num_archs:
        raise ConfigError(f"must be in 1..{space.num_archs}, got {sample}", "sample")
    if seed < 0:
        raise ConfigError(f"must be non-negative, got {seed}", "seed")
    dataset = open_dataset(protocol, data_root, split_dir)
    classes = space.isomorphism_classes()
    drifts = []
    for arch in sample_cells(space, sample, seed):
        representative = int(classes[arch])
        runs = {s: train_cell(space, representative, protocol, dataset, s) for s in protocol.seeds}
        for split in ("train", *protocol.eval_splits):
            for metric in COMPARED:
                variable = table.variable(protocol.dataset, protocol.schedule, split, metric)
                stored = variable.values[arch].astype(np.float64)
                fresh = np.array(
                    [
                        np.float32(runs[int(label)].values[(split, metric)])
                        for label in variable.seeds
                    ],
                    dtype=np.float64,
                )
                drifts.append(
                    Drift(
                        arch,
                        representative,
                        f"{split}/{metric}",
                        float(np.abs(fresh - stored).max()),
                    )
                )
    return drifts


def format_drift(drifts: list[Drift]) -> str:
    """One line per cell: its largest drift per variable, then the overall maximum."""
    by_arch: dict[int, list[Drift]] = {}
    for drift in drifts:
        by_arch.setdefault(drift.arch, []).append(drift)
    names = [d.variable for d in next(iter(by_arch.values()))]
    lines = ["arch (trained as) | " + " | ".join(names)]
    for arch, rows in by_arch.items():
        lines.append(
            f"{arch} ({rows[0].trained_as}) | " + " | ".join(f"{d.max_abs:.3g}" for d in rows)
        )
    worst = max(d.max_abs for d in drifts)
    lines.append(f"max drift over {len(by_arch)} cells: {worst:.3g}")
    return "\n".join(lines)

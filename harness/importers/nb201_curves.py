"""Build the NB201 learning-curve table from extract E: 200 cells' per-epoch curves.

The NB201 table (:mod:`harness.importers.nb201`) keeps each schedule's final accuracy
only, so no learning-curve rule can run on it. Extract E (``shared/data/README.md``)
holds the 200-epoch cifar10-valid curves of NB201 cells 0-199: per-epoch train and
x-valid accuracy, each a mean over the cell's seeds. This importer puts them into a table
of the whole space (15,625 rows in the official index order, masked outside E's cells) so
that the rules read them as they read any table, priced by NATS-Bench's cifar10-valid
per-epoch time (extract C's cifar10 time / 2, as in the NB201 table).

E is checked before anything is written: its cells and arch strings against the space,
every curve against 0..100, and its final x-valid accuracy against the mean of extract
D's replicates, which the NB201 table holds as ``cifar10-valid/hp200/x-valid/accuracy``.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from harness.atomic import check_regular
from harness.errors import ConfigError, TableError
from harness.importers.base import Importer
from harness.importers.nb201 import (
    _COST_MODEL,
    _SOURCES,
    SPLITS,
    _align,
    _one_line,
    _read_c,
    _read_d,
    _Source,
)
from harness.spaces.nb201 import NB201Space
from harness.table import Variable, VariableKey, file_sha256, write_table
from harness.version import __version__

E = _Source(
    "E_masters-thesis_curves_arch0-199.csv",
    "SamuelMintal/Masters_Thesis @ 69e51d1, ___my_code/_clean_all_merged.csv",
    "Apache-2.0",
)
N_CELLS = 200  # E's cells: 0..199 of the official index
EPOCHS = 200
#: E's final x-valid accuracy equals D's replicate mean to this (float noise of the text)
FINAL_TOL = 1e-6
_COLUMNS = ("arch_i", "arch_str", "train_accs", "val_accs")
_DATASET, _SCHEDULE = "cifar10-valid", "hp200"
_SOURCES_USED = {"E": E, "C10": _SOURCES["C10"], "D": _SOURCES["D"]}


def _source_error(path: Path, problem: str) -> TableError:
    return TableError(
        f"NB201 curves source {path} {problem}; pass --source the folder of the public NB201 "
        "extracts (../shared/data/nb201 beside a harness checkout), unchanged (see "
        "shared/data/README.md) and import again"
    )


def _curve(path: Path, row: int, column: str, text: str) -> list[float]:
    """One JSON list of ``EPOCHS`` finite percentages."""
    try:
        values = json.loads(text)
    except ValueError as error:
        raise _source_error(path, f"row {row} {column} is not a JSON list ({error})") from error
    if (
        not isinstance(values, list)
        or len(values) != EPOCHS
        or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
    ):
        raise _source_error(path, f"row {row} {column} is not a list of {EPOCHS} numbers")
    if not all(0.0 <= v <= 100.0 for v in values):  # NaN fails this too
        raise _source_error(path, f"row {row} {column} has a value outside 0..100")
    return [float(v) for v in values]


def read_e(path: Path, archs: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """E's cells and their ``[N_CELLS, EPOCHS]`` train and x-valid accuracy curves, in cell
    order; every problem is a one-line TableError naming the file and field."""
    try:
        check_regular(path)  # a FIFO would block the open forever
        with open(path, newline="", encoding="ascii") as fh:
            reader = csv.DictReader(fh, strict=True)
            missing = [c for c in _COLUMNS if c not in (reader.fieldnames or ())]
            rows = list(reader) if not missing else []
    except FileNotFoundError as error:
        raise _source_error(path, "is missing") from error
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise _source_error(path, f"cannot be read ({_one_line(error)})") from error
    if missing:
        raise _source_error(path, f"lacks the columns {', '.join(missing)}")
    if len(rows) != N_CELLS:
        raise _source_error(path, f"has {len(rows)} rows, expected {N_CELLS}")
    cells = np.empty(N_CELLS, dtype=np.int64)
    train = np.empty((N_CELLS, EPOCHS))
    valid = np.empty((N_CELLS, EPOCHS))
    for number, row in enumerate(rows, start=1):
        if any(row.get(c) is None for c in _COLUMNS) or None in row:
            raise _source_error(path, f"row {number} does not have {len(reader.fieldnames)} fields")
        text = row["arch_i"]
        if not (text.isdigit() and int(text) < len(archs)):
            raise _source_error(path, f"row {number} arch_i {text!r} is not a cell index")
        cells[number - 1] = int(text)
        if row["arch_str"] != archs[int(text)]:
            raise _source_error(path, f"row {number} arch_str is not the NB201 space's cell {text}")
        train[number - 1] = _curve(path, number, "train_accs", row["train_accs"])
        valid[number - 1] = _curve(path, number, "val_accs", row["val_accs"])
    if sorted(cells.tolist()) != list(range(N_CELLS)):
        raise _source_error(path, f"arch_i does not list cells 0..{N_CELLS - 1} once each")
    order = np.argsort(cells)
    return cells[order], train[order], valid[order]


def _d_final(paths: dict[str, Path]) -> tuple[np.ndarray, np.ndarray]:
    """Per cell: C's cifar10-valid per-epoch time (cifar10's / 2) and the float64 mean of
    D's final x-valid replicates, aligned to cells as the NB201 importer aligns them."""
    c10 = _read_c(paths["C10"])
    d = _read_d(paths["D"])
    arch, _ = _align(d["cifar10__runtime"], c10[:, 2] / 2)
    mean = np.bincount(arch, weights=100.0 - d["cifar10__loss"]) / np.bincount(arch)
    return c10[:, 1] / 2, mean


def _curve_variable(
    curves: np.ndarray, cells: np.ndarray, n_arch: int, derivation: str
) -> Variable:
    values = np.full((n_arch, 1, EPOCHS), np.nan, dtype=np.float32)
    values[cells, 0, :] = curves.astype(np.float32)
    return Variable(
        values,
        np.isfinite(values),
        ("mean",),
        tuple(range(1, EPOCHS + 1)),
        "percent",
        E.name,
        derivation,
    )


def _time_variables(
    epoch_time: np.ndarray, cells: np.ndarray, n_arch: int
) -> dict[VariableKey, Variable]:
    per_epoch = np.full((n_arch, 1, 1), np.nan, dtype=np.float32)
    per_epoch[cells, 0, 0] = epoch_time[cells].astype(np.float32)
    total = np.full((n_arch, 1, 1), np.nan, dtype=np.float32)
    total[cells, 0, 0] = (EPOCHS * epoch_time[cells]).astype(np.float32)
    shape = (n_arch, 1, EPOCHS)
    source = _SOURCES["C10"].name
    how = "C's cifar10 per-epoch time / 2 (25k instead of 50k training images)"
    return {
        (_DATASET, _SCHEDULE, "train", "epoch_time_s"): Variable(
            np.broadcast_to(per_epoch, shape),
            np.broadcast_to(np.isfinite(per_epoch), shape),
            ("mean",),
            tuple(range(1, EPOCHS + 1)),
            "s",
            source,
            f"{how}; NATS-Bench's synthetic time, the same for every epoch and seed; given "
            "for E's cells only",
        ),
        (_DATASET, _SCHEDULE, "train", "total_time_s"): Variable(
            total,
            np.isfinite(total),
            ("mean",),
            (EPOCHS,),
            "s",
            source,
            f"{EPOCHS} x the per-epoch time, computed in float64 ({how}); given for E's cells only",
        ),
    }


_PROTOCOL = {
    "schedules": {
        _SCHEDULE: {
            "epochs": EPOCHS,
            "optimizer": "SGD",
            "nesterov": True,
            "momentum": 0.9,
            "learning_rate": 0.1,
            "lr_schedule": "cosine annealing to 0 over all epochs",
            "warmup_epochs": 0,
            "weight_decay": 5e-4,
            "batch_size": 256,
            "loss": "cross-entropy",
            "network": {"C": 16, "N": 5},
            "config": "AutoDL-Projects configs/nas-benchmark/hyper-opts/200E",
        }
    },
    "datasets": {_DATASET: SPLITS[_DATASET]},
    "split_files": "shared/data/nb201-splits (AutoDL-Projects @ f46486e)",
    "seeds": {
        _SCHEDULE: "E's curves are means over each cell's NATS-Bench replicates (2 or 3); "
        "the slot is labelled 'mean'. Their final epoch equals the mean of D's replicates"
    },
}
_NOTES = {
    "coverage": f"per-epoch curves of NB201 cells 0..{N_CELLS - 1} of the official index "
    "only (extract E), not a uniform sample of the space: every other cell is masked. "
    "cifar10-valid, hp200 (200 epochs), train and x-valid accuracy",
    "deviations": "no losses (so no SoTL / SoTL-E), no other dataset or schedule, no "
    "per-seed curves, no validation-pass times (NATS-Bench adds them to a query's cost)",
    "cross_checks": "E's arch strings == the NB201 space's cells; every value in 0..100; "
    f"E's epoch-{EPOCHS} x-valid accuracy == the mean of D's final replicates (the NB201 "
    f"table's cifar10-valid/hp200/x-valid/accuracy) within {FINAL_TOL:g}; D's cifar10-valid "
    "total time == C's cifar10 total / 2",
    "times": "epoch_time_s is NATS-Bench's synthetic per-epoch time of cifar10 (C) / 2, the "
    "same for every epoch, as in the NB201 table; total_time_s = 200 x epoch_time_s",
}


def _provenance(paths: dict[str, Path]) -> dict:
    return {
        "builder": "harness import nb201-curves (harness.importers.nb201_curves."
        "build_nb201_curves_table)",
        "harness_version": __version__,
        "sources": [
            {
                "name": source.name,
                "sha256": file_sha256(paths[key]),
                "size": paths[key].stat().st_size,
                "origin": source.origin,
                "licence": source.licence,
            }
            for key, source in sorted(_SOURCES_USED.items(), key=lambda item: item[1].name)
        ],
    }


def build_nb201_curves_table(source_dir: Path, out: Path) -> str:
    """Import E's curves (priced by C, checked against D) from ``source_dir`` into the
    table ``out``; return its sha256. A missing, unreadable or inconsistent source is a
    one-line TableError naming the file; nothing is written then."""
    paths = {key: Path(source_dir) / source.name for key, source in _SOURCES_USED.items()}
    archs = NB201Space().strings()
    cells, train, valid = read_e(paths["E"], archs)
    epoch_time, d_mean = _d_final(paths)
    far = np.abs(valid[:, -1] - d_mean[cells]) > FINAL_TOL
    if far.any():
        cell = int(cells[np.flatnonzero(far)[0]])
        raise TableError(
            f"NB201 extracts disagree: {E.name} val_accs of cell {cell} ends at "
            f"{valid[np.flatnonzero(far)[0], -1]:.6f}, but the mean of "
            f"{_SOURCES['D'].name}'s final replicates is {d_mean[cell]:.6f}; restore the "
            "original extracts (see shared/data/README.md) and import again"
        )
    n_arch = len(archs)
    variables = {
        (_DATASET, _SCHEDULE, "train", "accuracy"): _curve_variable(
            train, cells, n_arch, "E's train_accs: the mean over the cell's replicates"
        ),
        (_DATASET, _SCHEDULE, "x-valid", "accuracy"): _curve_variable(
            valid,
            cells,
            n_arch,
            "E's val_accs: the mean over the cell's replicates; epoch 200 equals the mean "
            f"of D's final replicates within {FINAL_TOL:g}",
        ),
    } | _time_variables(epoch_time, cells, n_arch)
    return write_table(
        out,
        benchmark_id="nb201-curves",
        space="nb201",
        archs=archs,
        variables=variables,
        properties={},
        protocol=_PROTOCOL,
        cost_model=_COST_MODEL,
        provenance=_provenance(paths),
        notes=_NOTES,
    )


class NB201CurvesImporter(Importer):
    """Extract E's 200 learning curves (with C and D); ``source`` is the extracts' folder."""

    def build(self, out: Path, source: Path | None, dataset: str | None) -> str:
        if source is None:
            raise ConfigError("the nb201-curves importer needs a source folder", "source")
        return build_nb201_curves_table(source, out)

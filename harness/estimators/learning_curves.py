"""Learning-curve rules: rank architectures from the first epochs of their training.

A rule reads a table's per-epoch curves of one training (one seed slot) up to an early
epoch ``E`` and scores every architecture at once; its cost per architecture is the
simulated seconds of that partial training (the table's ``train/epoch_time_s`` summed
over epochs 1..E), the price a search would pay to learn the score.

- ``early_accuracy``: the validation accuracy after epoch ``E`` (NASLib's and NB201's
  low-fidelity baseline).
- ``sotl``: minus the sum of the training losses of epochs 1..E (Ru et al., "Speedy
  performance estimation", NeurIPS 2021, SoTL); the tables hold one loss per epoch (the
  epoch's mean over its mini-batches), so each epoch's term is that mean.
- ``sotle``: minus the training loss of epoch ``E`` alone (SoTL-E: the sum over the last
  epoch only, in the same per-epoch means).
- ``lc_extrapolation``: a least-squares fit of ``accuracy = a + b ln(epoch)`` to the
  validation accuracies of epochs 1..E, evaluated at the schedule's final epoch. It is
  the two-parameter logarithmic member of the curve families of Domhan et al. (IJCAI
  2015), chosen because it is defined from two points on and cannot diverge; with one
  epoch it is the early accuracy itself.

The validation curve is the table's split ``valid`` unless the caller names another
(NB201's tables call cifar10-valid's validation split ``x-valid``). A table that holds no
per-epoch curve of what a rule needs (the NB201 table keeps only each schedule's final
accuracy; the NB201 curves table, extract E, holds accuracies but no training loss) is
refused with a one-line :class:`~harness.errors.TableError` naming the variable, before
anything is scored.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from harness.errors import TableError
from harness.table import Table

#: rule kind -> the curves it reads (split, metric)
RULE_CURVES: dict[str, tuple[tuple[str, str], ...]] = {
    "early_accuracy": (("valid", "accuracy"),),
    "sotl": (("train", "loss"),),
    "sotle": (("train", "loss"),),
    "lc_extrapolation": (("valid", "accuracy"),),
}
#: the per-epoch training time that makes a rule's cost
EPOCH_TIME = ("train", "epoch_time_s")


@dataclass(frozen=True)
class Curves:
    """Per-epoch curves of one training of every architecture: ``values[(split, metric)]``
    is ``[archs, epochs]`` (NaN where the table has no value)."""

    dataset: str
    schedule: str
    seed: str
    epochs: tuple[int, ...]
    values: dict[tuple[str, str], NDArray[np.float64]]

    def upto(self, name: tuple[str, str], epoch: int) -> NDArray[np.float64]:
        """The curve ``name`` over epochs 1..``epoch``: ``[archs, epoch]``."""
        return self.values[name][:, : self.epochs.index(epoch) + 1]


def load_curves(
    table: Table,
    dataset: str,
    schedule: str,
    seed: str | None,
    rules: tuple[str, ...],
    valid_split: str = "valid",
) -> Curves:
    """The curves ``rules`` read, from ``table``'s ``dataset/schedule``, seed slot ``seed``
    (None: the first), the validation curve from split ``valid_split``; a table without
    them is a one-line TableError."""
    # what the rules read first, then the epoch times that price it: the error names the
    # curve a rule lacks, before any seed is looked up
    needed = [*dict.fromkeys(name for rule in rules for name in RULE_CURVES[rule]), EPOCH_TIME]

    def stored(name: tuple[str, str]) -> tuple[str, str]:
        return (valid_split, name[1]) if name[0] == "valid" else name

    for name in needed:
        split, metric = stored(name)
        ref = f"{dataset}/{schedule}/{split}/{metric}"
        if (dataset, schedule, split, metric) not in table.variables():
            raise TableError(
                f"{table.path}: a learning-curve rule needs the per-epoch curve {ref}, which "
                "this table does not hold; use a table that holds it (tabular/nb201-digits.h5 "
                "holds training losses and validation accuracies) or drop the rule"
            )
    values: dict[tuple[str, str], NDArray[np.float64]] = {}
    epochs: tuple[int, ...] | None = None
    for name in needed:
        split, metric = stored(name)
        ref = f"{dataset}/{schedule}/{split}/{metric}"
        variable = table.variable(dataset, schedule, split, metric)
        if len(variable.epochs) < 2 or variable.epochs[0] != 1:
            raise TableError(
                f"{table.path}: {ref} holds epochs {', '.join(map(str, variable.epochs))} only, "
                "not a learning curve from epoch 1; a learning-curve rule needs one"
            )
        if epochs is not None and variable.epochs != epochs:
            raise TableError(f"{table.path}: {ref}'s epochs differ from the other curves'")
        epochs = variable.epochs
        slot = 0 if seed is None else _slot(table, ref, variable.seeds, seed)
        array = np.where(variable.mask[:, slot, :], variable.values[:, slot, :], np.nan)
        values[name] = array.astype(np.float64)
    assert epochs is not None
    used = seed if seed is not None else table.variable(dataset, schedule, *EPOCH_TIME).seeds[0]
    return Curves(dataset, schedule, used, epochs, values)


def _slot(table: Table, ref: str, seeds: tuple[str, ...], seed: str) -> int:
    if seed not in seeds:
        raise TableError(f"{table.path}: {ref} has no seed {seed!r}; it has {', '.join(seeds)}")
    return seeds.index(seed)


def check_epoch(curves: Curves, rule: str, epoch: int) -> None:
    """A rule's epoch must be one of the curves' epochs."""
    if epoch not in curves.epochs:
        raise TableError(
            f"learning-curve rule {rule!r} reads epoch {epoch}; the curves of "
            f"{curves.dataset}/{curves.schedule} hold epochs "
            f"{curves.epochs[0]}..{curves.epochs[-1]}"
        )


def rule_scores(curves: Curves, rule: str, epoch: int) -> NDArray[np.float64]:
    """Every architecture's score under ``rule`` after ``epoch`` epochs (higher predicts
    better; NaN where a curve value is missing)."""
    check_epoch(curves, rule, epoch)
    if rule == "early_accuracy":
        return curves.upto(("valid", "accuracy"), epoch)[:, -1].copy()
    if rule == "sotl":
        return -curves.upto(("train", "loss"), epoch).sum(axis=1)
    if rule == "sotle":
        return -curves.upto(("train", "loss"), epoch)[:, -1].copy()
    if rule == "lc_extrapolation":
        accuracy = curves.upto(("valid", "accuracy"), epoch)
        if epoch == curves.epochs[0]:
            return accuracy[:, -1].copy()
        t = np.log(np.asarray(curves.epochs[: accuracy.shape[1]], dtype=np.float64))
        centred = t - t.mean()
        slope = (accuracy - accuracy.mean(axis=1, keepdims=True)) @ centred / (centred @ centred)
        intercept = accuracy.mean(axis=1) - slope * t.mean()
        return intercept + slope * np.log(curves.epochs[-1])
    raise KeyError(rule)


def rule_cost(curves: Curves, epoch: int) -> NDArray[np.float64]:
    """Simulated seconds per architecture of training it to ``epoch``."""
    return curves.upto(EPOCH_TIME, epoch).sum(axis=1)

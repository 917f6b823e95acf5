"""Scores a search may ask for, read from a pinned estimate file (``[estimate]`` of an
experiment spec).

The file (written by ``harness estimate``) must be of the experiment's space and match
the spec's sha256; a file of another space or sha256 is refused in one line before any
run. The score of an architecture is its variable's seed-mean score and its cost the
mean measured seconds of that score (``cost_s`` beside it), which the simulator charges
like a training. A cell the file does not cover (an estimate of a pinned sample) is
answered ``scored=False`` at no cost: nothing was measured for it, and a strategy
draws another, so its draws are uniform over the sample.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness.config import Field, Problems, validate
from harness.errors import ConfigError, TableError
from harness.table import Table
from harness.values import MetricRef, Scored

ESTIMATE_FIELDS = {
    "file": Field(str, help="the estimate file, relative to the spec"),
    "sha256": Field(str, help="pin of that file"),
    "score": Field(str, help="the score variable: input/init/estimator/score"),
}


@dataclass(frozen=True)
class EstimateRef:
    """An ``[estimate]`` section: which pinned file and variable answer score requests."""

    path: Path
    sha256: str
    score: MetricRef

    @classmethod
    def parse(cls, raw: Any, base: Path) -> EstimateRef:
        """Validate the section, every problem at once; ``file`` is relative to ``base``
        (the spec's folder)."""
        given = validate(raw, ESTIMATE_FIELDS)
        sha = given["sha256"]
        problems = Problems()
        if not (len(sha) == 64 and all(c in "0123456789abcdef" for c in sha)):
            problems.add(ConfigError(f"must be 64 lowercase hex digits, got {sha!r}", "sha256"))
        with problems.check("score"):
            score = MetricRef.parse(given["score"])
        problems.raise_any()
        return cls((base / given["file"]).resolve(), sha, score)

    def resolved(self) -> dict[str, str]:
        """What the spec hash pins (the path is where it lies, not what it is)."""
        return {"sha256": self.sha256, "score": str(self.score)}


class PinnedScores:
    """Every architecture's score and cost from a pinned estimate file."""

    def __init__(self, ref: EstimateRef, space: str) -> None:
        table = Table.load(ref.path, expected_sha256=ref.sha256)
        if table.space != space:
            raise TableError(
                f"{ref.path} holds estimates of space {table.space!r}, but the experiment "
                f"searches {space!r}; name an estimate file of {space!r} in [estimate]"
            )
        cost = MetricRef(ref.score.dataset, ref.score.schedule, ref.score.split, "cost_s")
        for each in (ref.score, cost):
            if _key(each) not in set(table.variables()):
                raise TableError(
                    f"{ref.path} has no variable {each}; it was made by another estimate spec"
                )
        score_var = table.variable(*_key(ref.score))
        cost_var = table.variable(*_key(cost))
        self.ref, self.sha256 = ref, table.sha256
        self.values = _mean(score_var.values, score_var.mask)
        self.costs = _mean(cost_var.values, cost_var.mask)
        #: architectures the file covers (a measured cost)
        self.covered = np.isfinite(self.costs)

    def score(self, arch: int) -> Scored:
        """The answer to a request for ``arch``."""
        if not self.covered[arch]:
            return Scored(arch, float("nan"), 0.0, scored=False)
        return Scored(arch, float(self.values[arch]), float(self.costs[arch]))


def _key(ref: MetricRef) -> tuple[str, str, str, str]:
    return (ref.dataset, ref.schedule, ref.split, ref.metric)


def _mean(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The mean over seed slots of the finite values at the file's one epoch (NaN if none)."""
    kept = np.where(mask, values, np.nan)[:, :, -1].astype(np.float64)
    counts = np.isfinite(kept).sum(axis=1)
    totals = np.nansum(kept, axis=1)
    return np.where(counts > 0, totals / np.maximum(counts, 1), np.nan)

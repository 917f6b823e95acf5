"""Which folder a record's report goes to when none is named.

A spec's ``[experiment] results`` folder holds its published result: only that spec, as
it is, writes there. Everything else goes to a sibling named by what differs. Kept apart
from :mod:`.write` so that a run can choose its folder, and refuse a bad one, before
MLflow is imported.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from harness.report import REPORT

#: the longest folder name :func:`results_folder` spells out; longer ones name a hash
MAX_FOLDER_NAME = 120
_RECORD_ROW = re.compile(r"^\| (?P<name>[^|]+?) \| `(?P<hash>[0-9a-f]{16})` \|", re.MULTILINE)


def published_spec_hashes(folder: Path) -> dict[str, str] | None:
    """The spec sha256 prefixes (16 hex digits) that the report in ``folder`` was made
    from, by experiment name (its Records table); None where the folder holds no report."""
    try:
        text = (folder / REPORT).read_text(encoding="utf-8", errors="replace")
    except (FileNotFoundError, NotADirectoryError):
        return None
    return {m["name"].strip(): m["hash"] for m in _RECORD_ROW.finditer(text)}


def _token(value: object) -> str:
    """A value as a piece of a folder name: letters, digits and dots, ``_`` for the rest."""
    if value is None or isinstance(value, bool):
        text = str(value).lower()
    else:
        text = f"{value:g}" if isinstance(value, float) else str(value)
    return re.sub(r"[^A-Za-z0-9.]+", "_", text).strip("_")


def _seeds_token(seeds: object) -> str:
    if isinstance(seeds, dict):
        start, count = int(seeds["start"]), int(seeds["count"])
        return f"{start}-{start + count - 1}"
    runs: list[list[int]] = []
    for seed in seeds:  # type: ignore[attr-defined]
        if runs and seed == runs[-1][-1] + 1:
            runs[-1].append(seed)
        else:
            runs.append([seed])
    return "_".join(f"{r[0]}-{r[-1]}" if len(r) > 1 else str(r[0]) for r in runs)


def results_folder(
    base: Path,
    name: str,
    spec_hash: str,
    overrides: dict[str, Any],
    evaluator: str = "tabular",
) -> tuple[Path, list[str]]:
    """Where a record's report goes when no folder is named, and why it is not ``base``.

    ``base`` (the spec's ``[experiment] results``) is written only by the spec as it is:
    no overrides, the tabular evaluator, and a spec hash equal to the one the report
    already in ``base`` was made from (or no report there yet). Anything else goes to a
    sibling named by what differs, e.g. ``digits-compare+seeds-0-19+strategies-REA-RS+
    budget-seconds-30``, ``...+live`` or, for a spec edited since the report in that
    folder was made, ``...+spec-<its sha256's first 12 digits>``; a name over 120
    characters becomes ``<base>+overrides-<sha256's first 12>``. Returns the folder and
    the reasons.
    """
    parts, reasons = [], []
    if "seeds" in overrides:
        parts.append(f"seeds-{_seeds_token(overrides['seeds'])}")
    if "strategies" in overrides:
        parts.append("strategies-" + "-".join(_token(n) for n in overrides["strategies"]))
    if "budget" in overrides:
        budget = overrides["budget"]
        parts.append("budget-" + "-".join(f"{_token(k)}-{_token(budget[k])}" for k in budget))
    if parts:
        reasons.append("overrides " + ", ".join(f"--{k}" for k in overrides))
    if evaluator != "tabular":
        parts.append(_token(evaluator))
        reasons.append(f"the {evaluator} evaluator")
    folder = base.name + "".join(f"+{part}" for part in parts)
    if len(folder) > MAX_FOLDER_NAME:
        folder = f"{base.name}+overrides-{spec_hash[:12]}"
        if evaluator != "tabular":
            folder += f"+{_token(evaluator)}"
    # a folder whose report another spec made is not replaced either
    published = published_spec_hashes(base.with_name(folder))
    if published is not None and published.get(name) != spec_hash[:16]:
        reasons.append(
            f"a spec whose sha256 ({spec_hash[:12]}) differs from the one "
            f"{base.with_name(folder) / REPORT} was made from "
            f"({published.get(name, 'none')[:12]})"
        )
        folder += f"+spec-{spec_hash[:12]}"
    return base.with_name(folder), reasons

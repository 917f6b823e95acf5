"""Proxy fidelity: how well one table's ranking of a search space predicts another's.

A cheap table (cells trained for minutes on a small dataset) is a proxy for an expensive
one only as far as it ranks the cells alike. Rank agreement is Kendall's τ-b and
Spearman's ρ (SciPy), over every cell, over one cell per isomorphism class when the space
has them (a table trained once per class copies its values to every member), and within
the reference's top decile (where a search spends its time); top-k overlap and the
proxy's percentile of the reference's best cells say whether the proxy finds them.
Higher values rank first.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from harness.errors import TableError
from harness.evaluators.tabular import resolve_metric
from harness.spaces import get_space
from harness.table import Table
from harness.values import MetricRef

TOP_K = (10, 100)


@dataclass(frozen=True)
class Agreement:
    """Rank agreement between a proxy's values and a reference's, on some cells."""

    cells: str
    n: int
    kendall_tau: float
    spearman_rho: float


@dataclass(frozen=True)
class Fidelity:
    """Agreement on several cell sets, top-k overlap and where the reference's best land."""

    agreements: list[Agreement]
    top_k_overlap: dict[int, float]  # share of the reference's top k in the proxy's top k
    top_k_percentile: dict[int, float]  # median percentile on the proxy of the reference's top k


def _agreement(cells: str, proxy: np.ndarray, reference: np.ndarray) -> Agreement:
    return Agreement(
        cells,
        len(proxy),
        float(stats.kendalltau(proxy, reference).statistic),
        float(stats.spearmanr(proxy, reference).statistic),
    )


def fidelity(
    proxy: np.ndarray,
    reference: np.ndarray,
    classes: np.ndarray | None = None,
    top_k: tuple[int, ...] = TOP_K,
    names: tuple[str, str] = ("the proxy", "the reference"),
) -> Fidelity:
    """Compare two tables' values of the same cells (``classes``: each cell's isomorphism
    class representative, if the space has them; ``names``: the two, for errors).

    Fewer than two cells with both values, or values all equal on either side, rank
    nothing: that is an error, not a τ of nan beside a top-k overlap of ties."""
    both = np.isfinite(proxy) & np.isfinite(reference)
    if both.sum() < 2:
        raise TableError(
            f"{int(both.sum())} cells hold both {names[0]} ({int(np.isfinite(proxy).sum())} "
            f"cells hold it) and {names[1]} ({int(np.isfinite(reference).sum())}); a ranking "
            "needs two: compare variables that hold values"
        )
    for name, values in zip(names, (proxy[both], reference[both]), strict=True):
        if values.min() == values.max():
            raise TableError(
                f"{name} is {values[0]:g} on all {len(values)} cells compared: equal values "
                "rank nothing; compare a variable that tells cells apart"
            )
    agreements = [_agreement("all cells", proxy[both], reference[both])]
    if classes is not None:
        unique = both & (classes == np.arange(len(classes)))
        agreements.append(_agreement("one per isomorphism class", proxy[unique], reference[unique]))
    p, r = proxy[both], reference[both]
    decile = r >= np.quantile(r, 0.9)
    if decile.sum() > 2 and np.ptp(p[decile]) > 0 and np.ptp(r[decile]) > 0:
        # a rank correlation needs a few cells, and values that differ
        agreements.append(_agreement("reference's top decile", p[decile], r[decile]))
    percentile = 100 * stats.rankdata(p) / len(p)
    order_p, order_r = np.argsort(-p, kind="stable"), np.argsort(-r, kind="stable")
    overlap = {k: len(set(order_p[:k]) & set(order_r[:k])) / k for k in top_k if k <= len(p)}
    where = {k: float(np.median(percentile[order_r[:k]])) for k in top_k if k <= len(p)}
    return Fidelity(agreements, overlap, where)


def compare_tables(
    proxy: Table, proxy_ref: MetricRef, reference: Table, reference_ref: MetricRef
) -> Fidelity:
    """:func:`fidelity` of two tables of the same space, each variable's seed mean at its
    last epoch."""
    if proxy.space != reference.space or list(proxy.archs) != list(reference.archs):
        raise TableError(
            f"{proxy.path} ({proxy.space}) and {reference.path} ({reference.space}) do not "
            "hold the same architectures in the same order; compare tables of one space"
        )
    classes = np.asarray(get_space(proxy.space).isomorphism_classes())
    return fidelity(
        resolve_metric(proxy, proxy_ref).astype(np.float64),
        resolve_metric(reference, reference_ref).astype(np.float64),
        None if (classes == np.arange(len(classes))).all() else classes,
        names=(f"{proxy.path} {proxy_ref}", f"{reference.path} {reference_ref}"),
    )


def format_fidelity(result: Fidelity, proxy: str, reference: str) -> str:
    """The comparison as text lines, fixed precision."""
    lines = [f"proxy: {proxy}", f"reference: {reference}", ""]
    lines.append(f"{'cells':<28} {'n':>7} {'Kendall τ':>10} {'Spearman ρ':>11}")
    for a in result.agreements:
        lines.append(f"{a.cells:<28} {a.n:>7} {a.kendall_tau:>10.3f} {a.spearman_rho:>11.3f}")
    lines.append("")
    for k, share in result.top_k_overlap.items():
        lines.append(
            f"reference's top {k}: {share:.0%} also in the proxy's top {k}; median "
            f"percentile on the proxy {result.top_k_percentile[k]:.1f}"
        )
    return "\n".join(lines)

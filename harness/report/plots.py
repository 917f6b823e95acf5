"""Figures of a report (PNG and SVG): anytime curves, the critical-difference diagram and
the performance profile.

Files are deterministic: figures are built without pyplot's global state, the SVG ids
come from a fixed ``svg.hashsalt``, and neither format carries a date or the software
version. With the pinned matplotlib (and its bundled DejaVu fonts) the bytes depend only
on the records; another matplotlib or FreeType version may render pixels differently.
"""

from __future__ import annotations

import multiprocessing
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any, Generic, TypeVar

import numpy as np
import pandas as pd

from harness.atomic import replacing
from harness.errors import HarnessError
from harness.report import anytime
from harness.report.stats import Friedman
from harness.report.study import Study

#: the first eight methods take Okabe & Ito's colour-blind-safe palette; later ones take
#: Paul Tol's muted palette, then hues spaced by the golden angle, so no two methods of a
#: study share a colour; line style and marker repeat every eight, so a printed grey-scale
#: copy still tells eight neighbours apart
COLOURS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442")
MORE_COLOURS = ("#332288", "#882255", "#117733", "#999933", "#44AA99", "#AA4499", "#88CCEE",
                "#DDCC77", "#CC6677", "#661100")  # fmt: skip
LINES = ("-", "--", "-.", ":", (0, (5, 1)), (0, (3, 1, 1, 1)), (0, (1, 1)), (0, (5, 5)))
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
#: SVG text stays text (DejaVu Sans named), smaller and quicker than glyph outlines
RC = {"svg.hashsalt": "harness-report", "svg.fonttype": "none", "font.size": 9}

T = TypeVar("T")


class Drawing(Generic[T]):
    """``draw()`` run in a forked process while this one goes on (a report's figures take
    as long as its statistics, and a machine has more than one core); :meth:`result` waits
    for it and gives its return value, or raises its error here.

    The fork inherits everything the figures are drawn from, so its files are the bytes
    this process would write. Where ``fork`` is not the platform's way to start a process
    (macOS, Windows: libraries there are not fork-safe), or this process may not have
    children (a daemonic worker), ``draw`` runs here, at once."""

    def __init__(self, draw: Callable[[], T]) -> None:
        self._process: Any = None
        self._done: tuple[bool, Any] | None = None
        if multiprocessing.get_start_method() == "fork" and not _daemonic():
            context = multiprocessing.get_context("fork")
            self._receive, send = context.Pipe(duplex=False)
            self._process = context.Process(target=_drawn, args=(draw, send), daemon=True)
            self._process.start()
            send.close()
        else:
            self._done = (True, draw())

    def result(self) -> T:
        """The drawing's return value, once it is done; its exception, if it raised."""
        if self._done is None:
            try:
                self._done = self._receive.recv()
            except EOFError:
                died = "the process drawing the report's figures ended without an answer"
                self._done = (False, HarnessError(f"{died}; the report was not written"))
            finally:
                self._receive.close()
                self._process.join()
        ok, value = self._done
        if not ok:
            raise value
        return value

    def cancel(self) -> None:
        """End the drawing if it still runs (this process is failing)."""
        if self._process is not None and self._process.is_alive():
            self._process.terminate()
            self._process.join()


def _daemonic() -> bool:
    return bool(multiprocessing.current_process().daemon)


def _drawn(draw: Callable[[], Any], send: Any) -> None:
    """The forked process: send ``(True, value)`` or ``(False, error)`` back."""
    try:
        outcome = (True, draw())
    except BaseException as error:  # noqa: BLE001 - every error goes back to the parent
        outcome = (False, error)
    try:
        send.send(outcome)
    except (pickle.PicklingError, TypeError, AttributeError):
        send.send((False, RuntimeError(f"{type(outcome[1]).__name__}: {outcome[1]}")))
    send.close()


def colour(index: int) -> str:
    """The ``index``-th method's colour: distinct from every other index's."""
    palette = COLOURS + MORE_COLOURS
    if index < len(palette):
        return palette[index]
    import colorsys

    hue = ((index - len(palette)) * 0.381966) % 1.0  # the golden angle, as a turn's fraction
    lightness = (0.35, 0.5, 0.65)[(index - len(palette)) % 3]
    red, green, blue = colorsys.hls_to_rgb(hue, lightness, 0.75)
    return "#{:02X}{:02X}{:02X}".format(*(round(255 * c) for c in (red, green, blue)))


def style(index: int) -> dict[str, Any]:
    """Colour, line style and marker of the ``index``-th method of a study."""
    return {
        "color": colour(index),
        "linestyle": LINES[index % len(LINES)],
        "marker": MARKERS[index % len(MARKERS)],
        "markersize": 4,
    }


def save(figure: Any, stem: Path) -> list[Path]:
    """Write ``stem.png`` and ``stem.svg``, each whole or not at all."""
    import matplotlib

    written = []
    with matplotlib.rc_context(RC):
        for suffix, metadata in ((".png", {"Software": None}), (".svg", {"Date": None})):
            path = stem.with_suffix(suffix)
            with replacing(path, suffix=suffix) as temporary:
                figure.savefig(temporary, format=suffix[1:], metadata=metadata)
            written.append(path)
    return written


def _figure(width: float, height: float, **margins: float) -> Any:
    """A figure with fixed margins (fractions of its size): an automatic layout measures
    every text's extent, the larger part of a report's drawing time."""
    import matplotlib

    with matplotlib.rc_context(RC):
        from matplotlib.figure import Figure

        figure = Figure(figsize=(width, height), dpi=120)
        figure.subplots_adjust(**margins)
        return figure


def anytime_figure(study: Study, name: str, stem: Path) -> list[Path]:
    """One benchmark's incumbent over simulated seconds and over evaluations: median over
    seeds with its 95% interval."""
    b = next(x for x in study.benchmarks if x.name == name)
    q = anytime.quantity(b, study.target[name])
    if q is None:
        return []
    steps = {method: anytime.run_steps(b, method, q) for method in b.methods}
    timed = anytime.timed(b)
    figure = _figure(
        10.0 if timed else 5.4, 4.4, left=0.08 if timed else 0.14, right=0.98, bottom=0.12,
        top=0.85, wspace=0.22,
    )  # fmt: skip
    time_axes, eval_axes = figure.subplots(1, 2) if timed else (None, figure.subplots())
    if time_axes is not None:
        grid, log_axis = anytime.time_grid(b, steps)
    band = 0.15 if len(steps) <= 4 else 0.07  # eight overlapping bands must not hide lines
    for method, runs in steps.items():
        look = style(study.methods.index(method))
        label = f"{method} (n={len(runs)})"
        if time_axes is not None:
            median, low, high = anytime.median_band(anytime.on_grid(runs, grid))
            time_axes.plot(grid, median, label=label, markevery=anytime.GRID_POINTS // 8, **look)
            time_axes.fill_between(grid, low, high, color=look["color"], alpha=band, linewidth=0)
        rows = anytime.by_evaluation(runs)
        x = np.arange(1, rows.shape[1] + 1)
        median, low, high = anytime.median_band(rows)
        eval_axes.plot(x, median, label=label, markevery=max(len(x) // 8, 1), **look)
        eval_axes.fill_between(x, low, high, color=look["color"], alpha=band, linewidth=0)
    if time_axes is not None:
        if log_axis:
            time_axes.set_xscale("log")
        time_axes.set_xlabel("simulated seconds" + (" (log scale)" if log_axis else ""))
    eval_axes.set_xlabel("completed evaluations (up to the shortest run)")
    for axes in (time_axes, eval_axes):
        if axes is not None:
            axes.set_ylabel(q.axis)
            axes.grid(alpha=0.3)
    eval_axes.legend(fontsize=8)
    figure.suptitle(
        f"{b.resolved['experiment']['title']}\n{q.label}: median over seeds, 95% interval "
        "of the median",
        fontsize=9,
    )
    return save(figure, stem)


def cd_figure(result: Friedman, pairs: pd.DataFrame, methods: list[str], stem: Path) -> list[Path]:
    """Critical-difference diagram of one Friedman family (scikit-posthocs draws it): mean
    ranks, and a bar joining methods that the primary procedure (Wilcoxon signed-rank,
    Holm within the family: ``pairs``) does not tell apart at α = 0.05.

    ``methods`` orders the study's styles. Methods enter the diagram as integer labels:
    scikit-posthocs walks sets of labels, whose order for strings changes with Python's
    per-process hash seed and would change the SVG's bytes.
    """
    import scikit_posthocs

    height = 1.0 + 0.3 * len(result.methods)
    # names stand left and right of the rank axis, outside it
    figure = _figure(6.4, height, left=0.25, right=0.75, bottom=0.05, top=1 - 0.5 / height)
    axes = figure.subplots()
    ranks = pd.Series(result.mean_ranks.to_numpy(), index=range(len(result.methods)))
    where = {m: i for i, m in enumerate(result.methods)}
    significance = pd.DataFrame(1.0, index=ranks.index, columns=ranks.index)
    for row in pairs[pairs.family == result.family].itertuples():
        if row.a in where and row.b in where and not np.isnan(row.p_holm):
            significance.loc[where[row.a], where[row.b]] = row.p_holm
            significance.loc[where[row.b], where[row.a]] = row.p_holm
    drawn = scikit_posthocs.critical_difference_diagram(
        ranks,
        significance,
        ax=axes,
        label_fmt_left="{label}",
        label_fmt_right="{label}",
        color_palette={i: style(methods.index(m))["color"] for i, m in enumerate(result.methods)},
    )
    for text in drawn["labels"]:
        index = int(text.get_text())
        name, rank = result.methods[index], ranks[index]
        left = text.get_horizontalalignment() == "right"
        text.set_text(f"{name} ({rank:.2f})" if left else f"({rank:.2f}) {name}")
    p_value = "undefined" if result.undefined else f"{result.p_value:.3g}"
    axes.set_title(
        f"mean rank (1 = best) over {result.blocks} {result.unit}; Friedman p = {p_value}; "
        "bars: Wilcoxon-Holm p ≥ 0.05",
        fontsize=8,
    )
    return save(figure, stem)


def profile_figure(study: Study, stem: Path) -> list[Path]:
    """Performance profile: the share of a method's runs, over every benchmark and seed,
    whose regret to the table's optimum is at most τ (on each benchmark's ranked target)."""
    primary = study.primary()
    figure = _figure(6.4, 4.0, left=0.11, right=0.97, bottom=0.12, top=0.97)
    axes = figure.subplots()
    for i, method in enumerate(study.methods):
        regret = np.sort(primary[primary.method == method]["regret"].to_numpy())
        look = style(i)
        axes.ecdf(
            regret,
            label=f"{method} (n={len(regret)})",
            color=look["color"],
            linestyle=look["linestyle"],
        )
    axes.set_xscale("symlog", linthresh=0.01)
    axes.set_xlabel("τ: regret to the table's optimum (ranked target; symlog scale)")
    axes.set_ylabel("share of runs with regret ≤ τ")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    return save(figure, stem)

"""Where chunks of independent work run: in this process, in worker processes, or on Dask.

Both ``harness run`` (chunks of (strategy, seed) runs) and ``harness tabulate`` (chunks of
trainings) hand their work here. Every chunk is a pure function of its input, so the
executor and the worker count never change a result; the caller gets each finished chunk
through ``on_done`` as soon as it completes (in any order) and keeps whatever it needs to
resume, then orders the results itself.

Each worker first runs ``initializer(*initargs)`` once (loading a table, a dataset), so
a chunk does not pay for it again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any, TypeVar

from harness.errors import ConfigError

EXECUTORS = ("serial", "processes")

Chunk = TypeVar("Chunk")
Result = TypeVar("Result")


def run_chunks(
    function: Callable[[Chunk], Result],
    chunks: Sequence[tuple[int, Chunk]],
    on_done: Callable[[int, Result], None],
    *,
    executor: str = "serial",
    workers: int = 1,
    initializer: Callable[..., None] | None = None,
    initargs: tuple[Any, ...] = (),
) -> None:
    """Run ``function`` on every ``(index, chunk)``; call ``on_done(index, result)`` as each
    finishes. Serial work runs in order; worker processes in completion order."""
    if executor not in EXECUTORS:
        raise ConfigError(f"must be one of {', '.join(EXECUTORS)}, got {executor!r}", "executor")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ConfigError(f"must be a positive integer, got {workers!r}", "workers")
    if not chunks:
        return
    if executor == "serial" or workers == 1:
        if initializer is not None:
            initializer(*initargs)
        for index, chunk in chunks:
            on_done(index, function(chunk))
        return
    with ProcessPoolExecutor(
        max_workers=min(workers, len(chunks)), initializer=initializer, initargs=initargs
    ) as pool:
        futures = {pool.submit(function, chunk): index for index, chunk in chunks}
        for future in as_completed(futures):
            on_done(futures[future], future.result())

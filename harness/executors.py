"""Where chunks of independent work run: in this process, in worker processes, or on Dask.

Both ``harness run`` (chunks of (strategy, seed) runs) and ``harness tabulate`` (chunks of
trainings) hand their work here. Every chunk is a pure function of its input, so the
executor and the worker count never change a result; the caller gets each finished chunk
through ``on_done`` as soon as it completes (in any order) and keeps whatever it needs to
resume, then orders the results itself. Results always come back to the calling process,
so Dask workers need no shared file system for what they produce.

Each worker first runs ``initializer(*initargs)`` once (loading a table, a dataset), so
a chunk does not pay for it again. On Dask that happens inside the task, once per worker
process and call (a worker that died and was restarted runs it again), after checking
the worker's ``fingerprint()`` (the harness source's sha256) against the caller's, so a
cluster never mixes code.

The ``dask`` executor either starts a :class:`distributed.LocalCluster` (one single-thread
worker process per ``workers``, no dashboard, every socket on 127.0.0.1) and closes it
however the call ends, or, given a ``scheduler`` address, uses that cluster's workers. The scheduler
reschedules the chunk of a worker that dies, and a chunk that raises is retried
``RETRIES`` times; Dask is imported only for this executor.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing.util
import os
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager, suppress
from typing import Any, TypeVar

from harness.errors import ConfigError, HarnessError

log = logging.getLogger(__name__)

EXECUTORS = ("serial", "processes", "dask")
#: Linux prctl option: the signal a process receives when the thread that forked it ends
PR_SET_PDEATHSIG = 1
#: how often Dask runs a chunk again after it raised (a dead worker's chunk is rescheduled
#: by the scheduler regardless, up to its ``allowed-failures``)
RETRIES = 2
#: seconds to wait for an existing Dask scheduler to answer
CONNECT_TIMEOUT_S = 15
INSTALL_DASK = 'pip install "harness[dask]"'
#: Dask's nanny starts workers with MALLOC_TRIM_THRESHOLD_=65536, which makes training about
#: 40% slower here; the local cluster's workers keep glibc's default (docs/distributed.md)
LOCAL_CLUSTER_CONFIG = {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}

Chunk = TypeVar("Chunk")
Result = TypeVar("Result")
#: what a Dask worker sets up before its first chunk: initializer, its arguments, and the
#: fingerprint function with the caller's value
_Setup = tuple[Callable[..., None] | None, tuple[Any, ...], tuple[Callable[[], str], str] | None]


def resolve_executor(executor: str | None, scheduler: str | None, default: str = "serial") -> str:
    """The executor to use (``scheduler`` implies Dask); refuses a conflict, or Dask when it
    is not installed, before any work starts."""
    if scheduler is not None and not scheduler.strip():
        raise HarnessError("--scheduler needs an address, e.g. tcp://10.0.0.5:8786")
    if executor is None:
        executor = "dask" if scheduler is not None else default
    if executor not in EXECUTORS:
        raise ConfigError(f"must be one of {', '.join(EXECUTORS)}, got {executor!r}", "executor")
    if scheduler is not None and executor != "dask":
        raise HarnessError(
            f"--scheduler runs the work on a Dask cluster: use --executor dask (or leave "
            f"--executor out), not --executor {executor}"
        )
    if executor == "dask":
        try:
            import distributed  # noqa: F401
        except ImportError:
            raise HarnessError(
                f"--executor dask needs Dask's distributed scheduler, which is not installed: "
                f"{INSTALL_DASK}"
            ) from None
    return executor


def run_chunks(
    function: Callable[[Chunk], Result],
    chunks: Sequence[tuple[int, Chunk]],
    on_done: Callable[[int, Result], None],
    *,
    executor: str = "serial",
    workers: int = 1,
    initializer: Callable[..., None] | None = None,
    initargs: tuple[Any, ...] = (),
    scheduler: str | None = None,
    fingerprint: Callable[[], str] | None = None,
    meanwhile: Callable[[], None] | None = None,
) -> None:
    """Run ``function`` on every ``(index, chunk)``; call ``on_done(index, result)`` as each
    finishes. Serial work runs in order; worker processes and Dask in completion order.

    ``meanwhile`` runs in this process once the chunks are handed to the workers (before
    any chunk, for serial work): a check that takes seconds overlaps the work, and an
    error it raises stops the work.

    ``workers`` sizes the process pool or the local Dask cluster; with a ``scheduler``
    address (executor ``dask``) the cluster's own workers run the chunks. Dask runs
    ``function`` on other processes or machines: it must be importable there, and each
    Dask worker's ``fingerprint()`` must equal this process's.
    """
    executor = resolve_executor(executor, scheduler)
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ConfigError(f"must be a positive integer, got {workers!r}", "workers")
    if not chunks:
        return
    if executor == "serial" or (executor == "processes" and workers == 1):
        if meanwhile is not None:
            meanwhile()
        if initializer is not None:
            initializer(*initargs)
        for index, chunk in chunks:
            on_done(index, function(chunk))
        return
    if executor == "dask":
        expected = None if fingerprint is None else (fingerprint, fingerprint())
        setup = (initializer, initargs, expected)
        _run_on_dask(function, chunks, on_done, workers, setup, scheduler, meanwhile)
        return
    with ProcessPoolExecutor(
        max_workers=min(workers, len(chunks)),
        initializer=_start_worker,
        initargs=(os.getpid(), initializer, initargs),
    ) as pool:
        futures = {pool.submit(function, chunk): index for index, chunk in chunks}
        try:
            if meanwhile is not None:
                meanwhile()
            broken = False
            for future in as_completed(futures):  # keep every chunk that finished
                try:
                    result = future.result()
                except BrokenProcessPool:
                    broken = True
                    continue
                on_done(futures[future], result)
            if broken:
                raise HarnessError(
                    "a worker process died (killed, out of memory, or ended by plugin code "
                    "such as os._exit); what finished is kept, and the same command resumes "
                    "the rest if the cause is gone: one that dies again at the same point "
                    "is a strategy ending its process, which only a fixed strategy cures"
                )
        finally:  # an error or Ctrl-C: queued chunks are not started for nobody
            for future in futures:
                future.cancel()


#: how often a worker process checks that the process that started it is still there
PARENT_POLL_S = 0.5


def _start_worker(
    parent: int, initializer: Callable[..., None] | None, initargs: tuple[Any, ...]
) -> None:
    """A pool worker's set-up: it ends itself once ``parent`` is gone (``kill -9`` of
    ``harness`` leaves no worker computing for nobody), then runs ``initializer``."""
    _exit_with_parent(parent)
    # runs as the worker exits, before Python would wait for every non-daemon thread
    multiprocessing.util.Finalize(None, leave_no_threads, exitpriority=-100)
    if initializer is not None:
        initializer(*initargs)


def stray_threads() -> list[threading.Thread]:
    """Threads that would keep this process alive once its work is done: non-daemon
    threads other than the main one (left by plugin code)."""
    main = threading.main_thread()
    return [t for t in threading.enumerate() if t is not main and not t.daemon and t.is_alive()]


def leave_no_threads(code: int = 0) -> None:
    """End this process now with ``code`` if plugin code left a non-daemon thread that
    would keep it alive (the work is done and its results are sent); else return."""
    strays = stray_threads()
    if not strays:
        return
    log.debug("harness: ending the process despite thread(s) %s", [t.name for t in strays])
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


def _exit_with_parent(parent: int) -> None:
    """End this process as soon as its parent ``parent`` exits: at once through Linux's
    parent-death signal where there is one, else (and as well) by a watchdog thread that
    polls the parent's id every :data:`PARENT_POLL_S` seconds."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):  # no prctl here: the watchdog alone
            pass
    if os.getppid() != parent:  # the parent died before the signal was armed
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_POLL_S)
        os._exit(1)

    threading.Thread(target=watch, name="harness-parent-watchdog", daemon=True).start()


def _check_scheduler(scheduler: str) -> None:
    """Refuse an address where no Dask scheduler answers within :data:`CONNECT_TIMEOUT_S`:
    Dask's ``Client`` waits forever for a server that accepts the connection but speaks
    another protocol (an HTTP server, say)."""
    import asyncio

    from distributed.comm import connect

    async def identity() -> Any:
        limit = CONNECT_TIMEOUT_S
        comm = await asyncio.wait_for(connect(scheduler, timeout=limit), limit)
        try:
            await asyncio.wait_for(comm.write({"op": "identity", "reply": True}), limit)
            return await asyncio.wait_for(comm.read(), limit)
        finally:
            comm.abort()

    try:
        reply = asyncio.run(identity())
    except Exception as error:  # noqa: BLE001 - any failure to talk to it says the same
        text = " ".join(str(error).split())[:200]
        raise HarnessError(
            f"--scheduler {scheduler}: no Dask scheduler answered within {CONNECT_TIMEOUT_S} s "
            f"({type(error).__name__}{': ' + text if text else ''}); start one with "
            "`dask scheduler` or check the address"
        ) from None
    if not isinstance(reply, dict) or reply.get("type") != "Scheduler":
        raise HarnessError(
            f"--scheduler {scheduler}: the server there is not a Dask scheduler (it answered "
            f"{str(reply)[:80]!r}); check the address"
        )


@contextmanager
def _dask_client(workers: int, scheduler: str | None) -> Iterator[Any]:
    """A client of the cluster at ``scheduler``, or of a loopback cluster started here;
    whatever happens in the block, the client and a cluster started here are closed."""
    import dask
    from distributed import Client, LocalCluster

    if scheduler is not None:
        _check_scheduler(scheduler)
        try:
            client = Client(scheduler, timeout=CONNECT_TIMEOUT_S)
        except (OSError, TimeoutError, ValueError) as error:
            text = str(error).strip()
            reason = text.splitlines()[0] if text else type(error).__name__
            raise HarnessError(
                f"--scheduler {scheduler}: cannot reach a Dask scheduler ({reason}); start one "
                "with `dask scheduler` or check the address"
            ) from None
        with client:
            count = len(client.scheduler_info()["workers"])
            log.info(
                "harness: Dask scheduler %s with %d worker(s)%s",
                scheduler,
                count,
                "" if count else "; waiting for workers to join",
            )
            yield client
        return
    with (
        dask.config.set(LOCAL_CLUSTER_CONFIG),
        LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
            scheduler_kwargs={"dashboard": False},
            silence_logs=logging.CRITICAL,
            preload=[__name__],  # each worker runs dask_setup below as it starts
        ) as cluster,
        Client(cluster) as client,
    ):
        log.info("harness: local Dask cluster with %d worker(s)", workers)
        try:
            yield client
        except BaseException:  # an error or Ctrl-C: no chunk's end is awaited any more
            _stop_workers(cluster)
            raise


#: seconds a local worker is given to stop once the call is over before it is killed
STOP_WORKER_S = 1.0


def _stop_workers(cluster: Any) -> None:
    """Stop a local cluster's workers at once. The cluster's own close waits up to 4 s for
    each worker's running chunk, longer on a busy machine, though nobody wants the result;
    the cluster's close then finds them stopped. Best effort: if this fails, that close
    still runs."""
    import asyncio

    async def close_all() -> None:
        nannies = list(cluster.workers.values())
        await asyncio.gather(
            *(nanny.close(timeout=STOP_WORKER_S) for nanny in nannies), return_exceptions=True
        )

    with suppress(Exception):
        cluster.sync(close_all)


def dask_setup(worker: Any) -> None:
    """Run by each worker of a local cluster this process starts, as it starts (Dask's
    preload hook). Ctrl-C at a terminal signals the whole process group, but only this
    process decides how the command ends: it cancels what is left and closes the cluster.
    A worker that took the signal itself would die mid-chunk with a traceback on the
    command's stderr."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _run_on_dask(
    function: Callable[[Chunk], Result],
    chunks: Sequence[tuple[int, Chunk]],
    on_done: Callable[[int, Result], None],
    workers: int,
    setup: _Setup,
    scheduler: str | None,
    meanwhile: Callable[[], None] | None,
) -> None:
    from distributed import KilledWorker
    from distributed import as_completed as dask_completed

    call = uuid.uuid4().hex
    with _dask_client(min(workers, len(chunks)), scheduler) as client:
        futures = {
            client.submit(
                _dask_task,
                function,
                chunk,
                setup,
                call,
                key=f"harness-chunk-{index:05d}-{call}",
                retries=RETRIES,
                pure=False,
            ): index
            for index, chunk in chunks
        }
        try:
            if meanwhile is not None:
                meanwhile()
            for future in dask_completed(futures):
                try:
                    result = future.result()
                except KilledWorker:
                    raise HarnessError(
                        f"chunk {futures[future]}: the Dask workers that ran it died, as many "
                        "times as distributed.scheduler.allowed-failures allows; check the "
                        "workers' memory and logs, then run the command again"
                    ) from None
                future.release()
                on_done(futures[future], result)
        finally:  # an error or Ctrl-C: no chunk keeps running for nobody
            pending = [f for f in futures if not f.done()]
            if pending:
                client.cancel(pending)


_worker_lock = threading.Lock()
_worker_call: str | None = None


def _dask_task(
    function: Callable[[Chunk], Result], chunk: Chunk, setup: _Setup, call: str
) -> Result:
    """One chunk on a Dask worker. The worker's first chunk of ``call`` checks its
    fingerprint and runs the initializer; later chunks of the call reuse that state.

    The initializer's state is one per process, so a worker process runs one chunk at a
    time even if it was given several threads (or two commands share the cluster).
    """
    global _worker_call
    initializer, initargs, expected = setup
    with _worker_lock:
        if _worker_call != call:
            if expected is not None:
                fingerprint, caller = expected
                here = fingerprint()
                if here != caller:
                    raise HarnessError(
                        f"a Dask worker runs other code than this process (fingerprint "
                        f"{here[:12]} there, {caller[:12]} here): run the same harness commit "
                        "and files on every worker"
                    )
            if initializer is not None:
                initializer(*initargs)
            _worker_call = call
        return function(chunk)

"""The probe: a table this machine has not parsed before is parsed in a child process
first, since the HDF5 library itself can crash or hang on a corrupt file; success is
remembered per file and per reading code."""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py

from harness.atomic import write_text
from harness.errors import HarnessError, TableError
from harness.table_format import REBUILD, one_line, quoted

log = logging.getLogger(__name__)

# The probe: a child process that parses a table first (see `probe`).
_PROBE_TIMEOUT_S = 30.0  # plus a second per MiB of file
PROBE_REFUSED = 3  # its exit status for a table it refuses, the reason on stdout
_PROBE_CODE = (
    "import sys; root = sys.argv[1]; root in sys.path or sys.path.insert(0, root); "
    "from harness.table import _probe_main; _probe_main()"
)
_PACKAGE_ROOT = Path(__file__).resolve().parents[1]
#: one BLAS thread (the probe does no linear algebra, and a thread per core takes time to
#: start on a large machine), and UTF-8 output whatever characters a path holds
_PROBE_ENV = {
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "PYTHONIOENCODING": "utf-8:backslashreplace",
}
_VERIFIED: set[str] = set()  # sha256s probed by this process


def probe(image: bytes, path: Path, sha256: str) -> None:
    """Parse ``image`` in a child process first, unless this machine has done so before.

    A segfault in the HDF5 library cannot be caught in the process it happens in; in a
    child it becomes a TableError. A pinned sha256 does not skip this: anyone can pin the
    hash of a hostile file in their own spec. Success is remembered per sha256 (and this
    module's code and HDF5 version) in the user's cache folder, so a table is probed once.
    """
    if sha256 in _VERIFIED:
        return
    marker = _marker(sha256)
    if marker is not None and os.path.isfile(marker):
        _VERIFIED.add(sha256)
        return
    started = time.perf_counter()
    timeout = _PROBE_TIMEOUT_S + len(image) / 2**20
    try:
        done = subprocess.run(
            [sys.executable, "-P", "-c", _PROBE_CODE, str(_PACKAGE_ROOT), str(path)],
            input=image,
            capture_output=True,
            timeout=timeout,
            env={**os.environ, **_PROBE_ENV},
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise TableError(
            f"table {path} is corrupt: reading it did not finish within {timeout:.0f} s; {REBUILD}"
        ) from None
    except OSError as error:
        raise TableError(
            f"table {path} could not be checked: starting {sys.executable} failed "
            f"({one_line(error)}); run harness with a working Python interpreter"
        ) from error
    if done.returncode == -signal.SIGINT:
        raise KeyboardInterrupt
    if done.returncode < 0:
        raise TableError(
            f"table {path} is corrupt: the HDF5 library crashed reading it (signal "
            f"{-done.returncode}, {_signal_name(-done.returncode)}); {REBUILD}"
        )
    if done.returncode == PROBE_REFUSED:
        raise TableError(_last_line(done.stdout))
    if done.returncode != 0:
        raise TableError(
            f"table {path} could not be checked: the checking process failed with exit "
            f"status {done.returncode} ({quoted(_last_line(done.stderr))}); {REBUILD}"
        )
    _VERIFIED.add(sha256)
    log.debug("table %s parsed in a child process in %.2f s", path, time.perf_counter() - started)
    if marker is not None:
        try:
            write_text(marker, f"parsed by h5py {h5py.version.version}\n")
        except (OSError, HarnessError) as error:  # a read-only cache: probe each time
            log.debug("cannot remember that table %s was parsed (%s)", path, error)


def _marker(sha256: str) -> Path | None:
    """The cache file that says this machine has parsed the table ``sha256`` safely."""
    root = os.environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(root):
        root = os.path.expanduser(os.path.join("~", ".cache"))
    if not os.path.isabs(root):
        return None
    return Path(root, "harness", "verified-tables", _probe_context(), sha256)


#: the code a probe's verdict depends on: the reader, the value types it builds, the probe
_READING_CODE = ("table.py", "table_format.py", "table_probe.py")


@functools.cache
def _probe_context() -> str:
    """What a probe's verdict depends on besides the bytes: the reading code and the HDF5
    build."""
    digest = hashlib.sha256()
    for name in _READING_CODE:
        digest.update(Path(__file__).with_name(name).read_bytes())
    digest.update(f"h5py {h5py.version.version} HDF5 {h5py.version.hdf5_version}".encode())
    return digest.hexdigest()[:16]


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return "unknown signal"


def _last_line(text: bytes) -> str:
    lines = text.decode(errors="replace").strip().splitlines()
    return lines[-1] if lines else "no message"

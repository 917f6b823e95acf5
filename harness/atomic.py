"""Files that appear whole or not at all.

Every file harness writes (tables, result files, plots, build chunks, manifests) is
written to a temporary path beside its destination and renamed over it only once
complete, so an error or a kill never leaves a half-written file behind. A temporary
file names the process that writes it; one left behind by a process that was killed is
removed the next time anything is written to the same destination.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from harness.errors import HarnessError


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _remove_leftovers(path: Path) -> None:
    """Temporary files of ``path`` whose writer is gone (killed before it could rename)."""
    for stale in path.parent.glob(f".{path.name}.tmp-*"):
        pid = stale.name.removeprefix(f".{path.name}.tmp-").split("-")[0]
        if pid.isdigit() and not _alive(int(pid)):
            stale.unlink(missing_ok=True)


def check_writable(path: Path, what: str) -> None:
    """Refuse, before any work is done, a destination that cannot become a file: a
    folder, a path through a symlink loop, or one under a folder nothing can be created
    in (tried with a temporary file, since permission bits do not tell root the truth)."""
    if str(path) == "":
        raise HarnessError(f"{what}: an empty path; name a file")
    try:
        if path.is_dir():
            raise HarnessError(f"{what} {path} is a folder; name a file inside it")
        folder = path.parent
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise HarnessError(
            f"{what} {path}: cannot write there ({error.strerror}); choose another path"
        ) from None


@contextmanager
def replacing(path: Path, suffix: str = "") -> Iterator[Path]:
    """A temporary path beside ``path``; it replaces ``path`` only if the block succeeds.

    ``suffix`` keeps the extension that some writers insist on (``.npz``, ``.png``).
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise HarnessError(f"cannot create the folder of {path} ({error.strerror})") from None
    _remove_leftovers(path)
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}-{secrets.token_hex(6)}{suffix}")
    try:
        yield temporary
        os.replace(temporary, path)
    except IsADirectoryError:
        raise HarnessError(f"{path} is a folder; name a file") from None
    finally:
        temporary.unlink(missing_ok=True)


def write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with replacing(path) as temporary:
        temporary.write_text(text)

"""Files that appear whole or not at all.

Every file harness writes (tables, result files, plots, build chunks, manifests) is
written to a temporary path beside its destination and renamed over it only once
complete, so an error or a kill never leaves a half-written file behind. A temporary
file names the process that writes it; one left behind by a process that was killed is
removed the next time anything is written to the same destination.

Only a regular file is ever replaced: a destination that exists as anything else (a
device node, a FIFO, a socket, a folder) is refused with one line, so ``--out /dev/full``
never destroys the node. Inputs are read the same careful way (:func:`read_regular`): a
FIFO or a device in place of a file is refused unread instead of blocking forever.
"""

from __future__ import annotations

import errno
import os
import secrets
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator
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


def _kind(mode: int) -> str:
    """What a non-regular file is, in words."""
    kinds = (
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISSOCK, "a socket"),
    )
    return next((name for test, name in kinds if test(mode)), "not a regular file")


def not_regular(path: Path | str, mode: int) -> OSError:
    """The error for ``path`` that exists but is not a regular file (``IsADirectoryError``
    for a folder), with a one-line ``strerror``."""
    kind = _kind(mode)
    if stat.S_ISDIR(mode):
        return IsADirectoryError(errno.EISDIR, "is a folder, not a file", str(path))
    return OSError(errno.EINVAL, f"is {kind}, not a regular file", str(path))


def check_output(path: Path, what: str = "output") -> None:
    """Refuse an existing ``path`` that is not a regular file: a device node, FIFO or
    socket would be replaced by the rename (or block a writer); a folder is no file."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:  # absent, or a symlink to nothing: the rename makes it
        return
    except OSError as error:
        raise HarnessError(
            f"{what} {path}: cannot write there ({error.strerror}); choose another path"
        ) from None
    if stat.S_ISDIR(mode):
        raise HarnessError(f"{what} {path} is a folder; name a file inside it")
    if not stat.S_ISREG(mode):
        raise HarnessError(
            f"{what} {path} is {_kind(mode)}, not a regular file; harness replaces only "
            "regular files: remove it or choose another path"
        )


def read_regular(path: Path | str, limit: int | None = None) -> bytes:
    """The bytes of the regular file ``path``; anything else raises :class:`OSError`
    (``IsADirectoryError`` for a folder) without blocking: a FIFO or a device is refused
    unread. With ``limit``, at most ``limit + 1`` bytes are read (the caller sees that the
    file is larger)."""
    nonblocking = getattr(os, "O_NONBLOCK", 0)  # opening a FIFO blocks without it
    descriptor = os.open(path, os.O_RDONLY | nonblocking | getattr(os, "O_CLOEXEC", 0))
    try:
        mode = os.fstat(descriptor).st_mode
        if not stat.S_ISREG(mode):
            raise not_regular(path, mode)
        if nonblocking:
            os.set_blocking(descriptor, True)
        with os.fdopen(descriptor, "rb", closefd=False) as file:
            return file.read() if limit is None else file.read(limit + 1)
    finally:
        os.close(descriptor)


def check_regular(path: Path | str) -> None:
    """Raise :class:`OSError` unless ``path`` is a regular file (``FileNotFoundError`` if
    it is missing): for readers that open the path themselves, so none blocks on a FIFO."""
    mode = os.stat(path).st_mode
    if not stat.S_ISREG(mode):
        raise not_regular(path, mode)


def check_writable(path: Path, what: str) -> None:
    """Refuse, before any work is done, a destination that cannot become a file: a
    folder, a path through a symlink loop, or one under a folder nothing can be created
    in (tried with a temporary file, since permission bits do not tell root the truth)."""
    if str(path) == "":
        raise HarnessError(f"{what}: an empty path; name a file")
    try:
        check_output(path, what)
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
    check_output(path)
    _remove_leftovers(path)
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}-{secrets.token_hex(6)}{suffix}")
    try:
        yield temporary
        check_output(path)  # still no device or FIFO there: the rename never replaces one
        os.replace(temporary, path)
    except IsADirectoryError:
        raise HarnessError(f"{path} is a folder; name a file") from None
    finally:
        temporary.unlink(missing_ok=True)


def write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with replacing(path) as temporary:
        temporary.write_text(text)


@contextmanager
def staged_folder(folder: Path, owned: Callable[[str], bool]) -> Iterator[Path]:
    """A new folder beside ``folder`` to write into; only if the block succeeds does it
    become ``folder``, so a reader never finds a mix of two writings or half of one.

    ``folder`` is replaced whole when it is absent or holds only files ``owned`` names
    (what an earlier writing put there); a folder holding anything else (``--out .``) keeps
    it: the new files are renamed in one by one and the owned files not written again
    removed. A stage left behind by a killed process is removed the next time.
    """
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        for stale in folder.parent.glob(f".{folder.name}.stage-*"):
            pid = stale.name.removeprefix(f".{folder.name}.stage-").split("-")[0]
            if pid.isdigit() and not _alive(int(pid)):
                shutil.rmtree(stale, ignore_errors=True)
        stage = Path(
            tempfile.mkdtemp(prefix=f".{folder.name}.stage-{os.getpid()}-", dir=folder.parent)
        )
    except OSError as error:
        raise HarnessError(
            f"cannot write the folder {folder} ({error.strerror}); choose another"
        ) from None
    try:
        yield stage
        try:
            _publish(stage, folder, owned)
        except OSError as error:
            raise HarnessError(
                f"cannot write the folder {folder} ({error.strerror}); its files were left "
                "as they were"
            ) from None
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _publish(stage: Path, folder: Path, owned: Callable[[str], bool]) -> None:
    if not folder.exists() and not folder.is_symlink():
        os.rename(stage, folder)
        return
    entries = list(os.scandir(folder)) if folder.is_dir() else None
    if entries is None:
        raise NotADirectoryError(errno.ENOTDIR, "not a folder", str(folder))
    here = Path.cwd().resolve()
    if (
        not folder.is_symlink()
        and folder.resolve() not in (here, *here.parents)  # the working folder stays put
        and all(e.is_file(follow_symlinks=False) and owned(e.name) for e in entries)
    ):
        old = folder.with_name(f".{folder.name}.stage-{os.getpid()}-old-{secrets.token_hex(6)}")
        os.rename(folder, old)
        try:
            os.rename(stage, folder)
        except OSError:
            os.rename(old, folder)
            raise
        shutil.rmtree(old, ignore_errors=True)
        return
    written = set(os.listdir(stage))
    for name in sorted(written):
        check_output(folder / name)
        os.replace(stage / name, folder / name)
    for entry in entries:
        if entry.name not in written and entry.is_file(follow_symlinks=False) and owned(entry.name):
            os.unlink(entry.path)

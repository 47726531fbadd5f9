"""Crash-safe file writes and an inter-process lock (no Qt, no torch)."""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

from kiosk.errors import GalleryError


def describe_os_error(exc: OSError, what: str) -> str:
    if exc.errno == errno.ENOSPC:
        return f"the disk is full while writing {what}; free some space and try again"
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"no permission to write {what} ({exc.strerror})"
    return f"cannot write {what}: {exc.strerror or exc}"


def fsync_dir(path: Path) -> None:
    """Make a rename inside ``path`` durable (a no-op where directories cannot be opened)."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def shared_file_mode(path: Path) -> int:
    """The mode a file the user asked for should get: what ``path`` has if it exists,
    else what the user's umask gives a new file (``mkstemp`` alone makes it 0600)."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except OSError:
        pass
    umask = 0o022
    try:  # /proc, not os.umask(): setting the umask to read it races other threads
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                umask = int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o666 & ~umask


def atomic_write(
    path: Path, write: Callable[[IO[bytes]], None], *, mode: int | None = None
) -> None:
    """Write ``path`` through ``write(fh)`` into a temp file, fsync, then rename over it.

    Readers see the old file or the new one, never half of one; on any error the
    temp file is removed and :class:`GalleryError` explains (disk full included).
    The file is private (0600) unless ``mode`` says otherwise.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as fh:
            if mode is not None:
                os.fchmod(fh.fileno(), mode)
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise GalleryError(describe_os_error(exc, str(path))) from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def atomic_write_bytes(path: Path, data: bytes, *, mode: int | None = None) -> None:
    def write(fh: IO[bytes]) -> None:
        fh.write(data)

    atomic_write(path, write, mode=mode)


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive advisory lock on ``path`` (created if needed) for the block.

    Serialises gallery writers across processes (the kiosk and a ``kiosk enroll`` run
    at the same time). Where ``fcntl`` does not exist (Windows) it only serialises
    nothing; the atomic renames still keep every file whole.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    with path.open("a+b") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

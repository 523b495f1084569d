"""A full disk (or an exhausted quota), told apart from every other I/O failure.

A full disk is not a bug and not a broken pipeline: the user frees space and runs again.
It must never show a traceback, and a run must stop on it before paying for more (see
``docs/running.md``). Every layer that writes (the store's SQLite tables, its files, the
outputs, the lockfile) turns such a failure into :class:`DiskFull`, naming the path it was
writing and the mount that is full.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from runner.errors import ShotgraphError, display_path

FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
_SQLITE_FULL = 13  # SQLITE_FULL: "database or disk is full"


class DiskFull(ShotgraphError):
    """Writing ``path`` failed because its disk (or the user's quota there) is full."""

    def __init__(self, path: Path | str | None, why: str = "No space left on device") -> None:
        where = Path(path) if path else None
        self.path = where
        self.why = why
        if where is None:
            message = f"a disk is full ({why})"
        else:
            mount = mount_point(where)
            free = free_bytes(mount)
            left = f", {free / 1e6:.1f} MB free" if free is not None else ""
            message = (
                f"the disk mounted at {mount} is full ({why}{left}) while writing "
                f"{display_path(where)}"
            )
        super().__init__(
            message,
            hint="free space on that disk (`shotgraph cache gc` removes what no lockfile "
            "needs) and run again; jobs already submitted are journaled and collected by the "
            "next run, not paid for again",
        )


def is_full(exc: BaseException) -> bool:
    """Whether ``exc`` itself says the disk is full (ENOSPC, EDQUOT or SQLite's FULL)."""
    if isinstance(exc, DiskFull):
        return True
    if isinstance(exc, OSError) and exc.errno in FULL_ERRNOS:
        return True
    code = getattr(exc, "sqlite_errorcode", None)
    return isinstance(code, int) and code & 0xFF == _SQLITE_FULL


def find_full(exc: BaseException | None) -> BaseException | None:
    """The first exception in ``exc``'s chain (causes and contexts) that is a full disk."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if is_full(exc):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def disk_full(exc: BaseException | None, path: Path | str | None = None) -> DiskFull | None:
    """A :class:`DiskFull` for ``exc`` when its chain holds a full disk, else None. The path
    is the one the failing call names, else ``path``."""
    found = find_full(exc)
    if found is None:
        return None
    if isinstance(found, DiskFull):
        return found
    named = getattr(found, "filename", None) if isinstance(found, OSError) else None
    why = found.strerror if isinstance(found, OSError) and found.strerror else str(found)
    return DiskFull(named or path, why or "No space left on device")


def mount_point(path: Path) -> Path:
    """The mount point holding ``path`` (which may not exist yet)."""
    current = Path(os.path.abspath(path))
    while not current.exists() and current != current.parent:
        current = current.parent
    while not os.path.ismount(current) and current != current.parent:
        current = current.parent
    return current


def free_bytes(path: Path) -> int | None:
    """Bytes an unprivileged writer may still use under ``path``; None if unknown."""
    try:
        st = os.statvfs(path)
    except OSError:
        return None
    return st.f_bavail * st.f_frsize

"""A little disk space held back for the journal, released when the disk fills up.

When the disk fills while jobs are being submitted, the write that turns a "submitting"
journal entry into a "submitted" one (fal's request id, already paid for) may be refused,
and the next run would submit that job again. So a run keeps a small file in the store;
the first write refused for lack of space deletes it, and the journal writes a run makes
while it stops (and the ones a retry of the refused write needs) use that space. The next
run with space to spare puts it back.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
from pathlib import Path

RESERVE_NAME = "reserve"
# Each journal transition is a few SQLite pages in the WAL; this covers hundreds of them.
RESERVE_BYTES = 1 << 20
_CHUNK = 1 << 16


class Reserve:
    """The reserve file at ``path``."""

    def __init__(self, path: Path, size: int = RESERVE_BYTES) -> None:
        self.path = path
        self.size = size

    def keep(self) -> OSError | None:
        """Make sure the reserve exists at its full size (blocks allocated, not a sparse
        file); the error when it cannot be made (no room for it), else None."""
        try:
            if self.path.stat().st_size == self.size:
                return None
        except OSError:
            pass
        temp = self.path.with_name(f".{self.path.name}.{secrets.token_hex(4)}.part")
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            try:
                _allocate(fd, self.size)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(temp, self.path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                temp.unlink()
            return exc
        return None

    def release(self) -> bool:
        """Delete the reserve to free its space; True when there was one."""
        try:
            self.path.unlink()
        except FileNotFoundError:
            return False
        except OSError:
            return False
        return True


def _allocate(fd: int, size: int) -> None:
    if hasattr(os, "posix_fallocate"):
        try:
            os.posix_fallocate(fd, 0, size)
            return
        except OSError as exc:
            if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL):  # no fallocate here
                raise
    zeros = bytes(_CHUNK)
    left = size
    while left > 0:
        left -= os.write(fd, zeros[: min(_CHUNK, left)])

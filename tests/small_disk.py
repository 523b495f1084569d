"""A small tmpfs to fill up: the disk-full tests. Mounting needs root (CI runs as root);
elsewhere those tests are skipped, saying why."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

BALLAST = "ballast"


@contextmanager
def small_disk(where: Path, size: str = "24m") -> Iterator[Path]:
    """A tmpfs of ``size`` mounted at ``where`` for the duration."""
    if os.geteuid() != 0:
        pytest.skip("the disk-full tests mount a small tmpfs, which needs root")
    where.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs at {where}: {mounted.stderr.strip()}")
    try:
        yield where
    finally:
        # Lazy: a file still open somewhere (a test's failure) must not leave it mounted.
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


def free(disk: Path) -> int:
    st = os.statvfs(disk)
    return st.f_bavail * st.f_frsize


def fill(disk: Path, leave: int = 0) -> None:
    """Fill ``disk`` until ``leave`` bytes are free (or none, when ``leave`` is 0)."""
    with open(disk / BALLAST, "ab") as ballast:
        chunk = bytes(1 << 16)
        while (room := free(disk) - leave) > 0:
            try:
                ballast.write(chunk[:room])
                ballast.flush()
            except OSError:
                break


def unfill(disk: Path) -> None:
    (disk / BALLAST).unlink(missing_ok=True)

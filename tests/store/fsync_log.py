"""Every fsync and fdatasync a test's process makes, told by what it synced: how the store
tests check that a write is durable before anyone hears of it."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

import pytest


def logged_syncs(monkeypatch: pytest.MonkeyPatch, name: Callable[[str], str | None]) -> list[str]:
    """The list each sync is appended to from now on, as ``name`` of the synced path says
    (None: not logged); tests append their own steps to it. Skips where the path of a file
    descriptor cannot be read (/proc/self/fd)."""
    if not sys.platform.startswith("linux"):
        pytest.skip("reads /proc/self/fd")
    seen: list[str] = []

    def logged(sync: Callable[[int], None]) -> Callable[[int], None]:
        def call(fd: int) -> None:
            sync(fd)
            said = name(os.readlink(f"/proc/self/fd/{fd}"))
            if said is not None:
                seen.append(said)

        return call

    # The log of a database is synced with fdatasync (as SQLite does), a directory with fsync.
    monkeypatch.setattr(os, "fsync", logged(os.fsync))
    monkeypatch.setattr(os, "fdatasync", logged(os.fdatasync))
    return seen

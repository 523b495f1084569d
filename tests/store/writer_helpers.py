"""How the store's tests watch its writer: every fsync and fdatasync, told by what it
synced (a write is durable before anyone hears of it), writes queued as one group, and
the releases of claims; and what a generation holds when it keeps its download: a claim,
and the download in staging."""

from __future__ import annotations

import asyncio
import hashlib
import os
import sys
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import pytest

from runner.store import Owner, Store, StoredFile, TieredStore
from runner.store.writer import off_loop

T = TypeVar("T")


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


async def together(work: Callable[[], Awaitable[T]]) -> T:
    """The writes of ``work()`` queued while the writer is held busy: they form one group.
    ``work`` is called only then (``asyncio.gather`` would start its writes at once)."""
    entered, gate = threading.Event(), threading.Event()

    def block() -> None:
        entered.set()
        gate.wait()

    blocked = asyncio.ensure_future(off_loop(block, sync=False))
    await asyncio.to_thread(entered.wait)
    task = asyncio.ensure_future(work())
    await asyncio.sleep(0)  # one turn of the loop: its writes are queued
    gate.set()
    await asyncio.gather(blocked, return_exceptions=True)  # in the group: fails with it
    return await task


async def claimed(store: Store, key: str = "k1") -> tuple[Owner, TieredStore]:
    """A run's claim on ``key`` (its first look finds it free), and the store it looks
    through."""
    owner = Owner.current("run-1")
    tiered = TieredStore(store)
    assert (await tiered.first_look(key, "local", owner)).claimed
    return owner, tiered


def staged_download(store: Store, data: bytes, name: str = "clip.part") -> tuple[Path, StoredFile]:
    """A download as the runner leaves it in staging, and its hash."""
    path = store.tmp_dir() / name
    path.write_bytes(data)
    return path, StoredFile(hashlib.sha256(data).hexdigest(), len(data))


def logging_releases(monkeypatch: pytest.MonkeyPatch, store: Store, log: list[str]) -> None:
    """Append "release" to ``log`` at each release of a claim in ``store``."""
    release = store.release

    def logged_release(key: str, holder: Owner | None = None) -> bool:
        log.append("release")
        return release(key, holder)

    monkeypatch.setattr(store, "release", logged_release)

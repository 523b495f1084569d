"""gc against a run landing the same content at the same moment: a file gc found old and
unreferenced, landed again by a run (which then records a result naming it), is never
removed from under that run, whichever of the two moves first. The interleavings are
forced by doing the run's landing inside gc's own steps."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from runner.store import Store, StoredFile
from runner.store.maintenance import gc_store
from tests.store.test_store import put_bytes

DATA = b"an old clip no lockfile names any more"


def aged(store: Store, stored: StoredFile) -> Path:
    """The stored file, made older than gc's grace period."""
    path = store.file_path(stored.sha256)
    old = time.time() - 10 * 24 * 3600
    os.utime(path, (old, old))
    return path


def once_around(
    monkeypatch: pytest.MonkeyPatch, name: str, before: Callable[[], Any] | None = None,
    after: Callable[[], Any] | None = None,
) -> None:  # fmt: skip
    """Run ``before``/``after`` around the next call of ``os.<name>`` (that call only)."""
    real = getattr(os, name)
    calls = {"n": 0}

    def call(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] > 1:
            return real(*args, **kwargs)
        if before is not None:
            before()
        done = real(*args, **kwargs)
        if after is not None:
            after()
        return done

    monkeypatch.setattr(os, name, call)


def test_a_file_landed_again_just_before_gc_removes_it_is_kept(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = aged(store, put_bytes(store, DATA))
    # The run lands the same content between gc's look and its removal: it touches the
    # file, finds it there, drops its own copy and will record a result naming it.
    once_around(monkeypatch, "rename", before=lambda: put_bytes(store, DATA, "again.bin"))
    report = gc_store(store, set())
    monkeypatch.undo()
    assert report.files_removed == 0 and report.files_in_grace == 1
    assert path.read_bytes() == DATA
    assert not [p for p in store.files.tmp.iterdir() if p.name.startswith(".gc-")]


def test_a_file_landed_again_just_after_gc_moved_it_aside_is_the_runs_own(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    stored = put_bytes(store, DATA)
    path = aged(store, stored)
    # The run comes once gc has moved the file aside: it finds none and lands its own copy.
    once_around(monkeypatch, "rename", after=lambda: put_bytes(store, DATA, "again.bin"))
    report = gc_store(store, set())
    monkeypatch.undo()
    assert report.files_removed == 1  # the old file went; the run's copy is there
    assert path.read_bytes() == DATA and store.verify_file(stored.sha256)


def test_a_landing_that_finds_the_file_gone_at_its_touch_lands_its_own(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    stored = put_bytes(store, DATA)
    path = store.file_path(stored.sha256)
    # A gc removes the file between the landing's look (there) and its touch (gone).
    once_around(monkeypatch, "utime", before=lambda: path.unlink())
    again = put_bytes(store, DATA, "again.bin")
    monkeypatch.undo()
    assert again == stored and path.read_bytes() == DATA

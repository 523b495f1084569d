"""Review of the duplicate downloads unlinked off the writer's thread (r13c): a copy of
content already stored is renamed aside into ``tmp/.discard-<staging>/`` and unlinked by a
thread of the BlobStore's own. What a killed process leaves aside must go as its staging
directory does, not pile up."""

from __future__ import annotations

import hashlib
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from runner.store import Store, StoredFile, blobs
from runner.store.maintenance import gc_store

ROOT = Path(__file__).resolve().parents[2]


def _killed_with_a_copy_aside(root: Path) -> None:
    """A process that stored a download, then a copy of the same content, and was killed
    (SIGKILL) before its remover thread unlinked the copy."""
    script = textwrap.dedent(
        f"""
        import hashlib, os, signal, sys
        from pathlib import Path
        sys.path.insert(0, {str(ROOT)!r})
        from runner.store import Store, StoredFile
        from runner.store import blobs
        blobs._unlink = lambda path: None  # the kill lands before the unlink
        store = Store.open(Path({str(root)!r}))
        data = b"fetched video"
        hashed = StoredFile(hashlib.sha256(data).hexdigest(), len(data))
        for name in ("first.part", "again.part"):
            staged = store.tmp_dir() / name
            staged.write_bytes(data)
            store.adopt_file(staged, hashed)
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr


def test_a_killed_process_copies_aside_go_with_its_staging(tmp_path: Path) -> None:
    root = tmp_path / "store"
    Store.open(root).close()
    _killed_with_a_copy_aside(root)
    left = sorted(p.name for p in (root / "tmp").iterdir())
    assert [name[: len(".discard-")] for name in left if name.startswith(".")] == [".discard-"]
    with Store.open(root) as store:
        # The next run's sweep (executor) removes the dead process's staging directory: the
        # copy it set aside, a whole video, goes with it, and so does the directory.
        assert store.sweep_staging() == 1
        assert list((root / "tmp").iterdir()) == []


def test_gc_leaves_no_aside_directory_of_a_dead_process(tmp_path: Path) -> None:
    root = tmp_path / "store"
    Store.open(root).close()
    for _ in range(3):  # each killed run left one directory: they must not pile up
        _killed_with_a_copy_aside(root)
    with Store.open(root) as store:
        gc_store(store, set())
        assert list((root / "tmp").iterdir()) == []


def test_an_aside_directory_whose_staging_is_gone_is_swept(tmp_path: Path) -> None:
    # A build before this fix swept the dead staging directory and left its aside.
    root = tmp_path / "store"
    Store.open(root).close()
    _killed_with_a_copy_aside(root)
    for staging in (root / "tmp").glob("run-*"):
        shutil.rmtree(staging)
    with Store.open(root) as store:
        live = store.tmp_dir()  # a live process's own staging is never touched
        assert store.sweep_staging() == 0
        assert list((root / "tmp").iterdir()) == [live]


def test_a_copy_of_stored_content_is_recorded_only_once_its_rename_is_durable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another process (or a thread fetching from a bucket) renamed the same content into
    # place a moment ago and has not yet synced the directory: the copy is dropped and the
    # caller records its result against that file. Until the rename is durable, a power
    # cut could keep the result (synced) and its claim's release, and lose the file: the
    # next run renders it again. The shard is synced before the copy counts as stored.
    with Store.open(tmp_path / "store") as store:
        data = b"fetched video"
        hashed = StoredFile(hashlib.sha256(data).hexdigest(), len(data))
        first = store.tmp_dir() / "first.part"
        first.write_bytes(data)
        store.adopt_file(first, hashed)
        synced: list[Path] = []
        monkeypatch.setattr(blobs, "fsync_dir", synced.append)
        again = store.tmp_dir() / "again.part"
        again.write_bytes(data)
        assert store.adopt_file(again, hashed) == hashed and not again.exists()
        assert synced == [store.file_path(hashed.sha256).parent]


def test_threads_staging_at_once_share_one_staging_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Pool threads (bucket fetches, media steps) may stage first, two at once: each made its
    # own directory, and one was left locked and never cleaned up.
    made = blobs.tempfile.mkdtemp
    inside, second = threading.Event(), threading.Event()

    def mkdtemp(**kwargs: Any) -> str:
        if inside.is_set():
            second.set()
        inside.set()
        second.wait(0.3)  # a second thread that can come in, does within this
        return made(**kwargs)

    with Store.open(tmp_path / "store") as store:
        monkeypatch.setattr(blobs.tempfile, "mkdtemp", mkdtemp)
        with ThreadPoolExecutor(2) as pool:
            found = set(pool.map(lambda _: store.tmp_dir(), range(2)))
        assert len(found) == 1
        assert not second.is_set()  # the second waited for the first, outside
        assert len([p for p in (tmp_path / "store" / "tmp").iterdir() if p.is_dir()]) == 1

"""A file landed on the store's writer thread has its directory synced at the end of the
writer's group, once for the group, beside the logs: still before its caller hears back,
before the release of its claim, and before a duplicate copy is dropped. A power cut at any
point leaves the result with its file, or the journal entry that re-attaches to the job."""

from __future__ import annotations

import asyncio
import errno
import hashlib
import os
import threading
from pathlib import Path

import pytest

from runner.store import Owner, Store, StoreError, TieredStore
from runner.store import blobs as blobs_module
from runner.store.grouping import grouped_commits
from runner.store.journal import body_digest
from runner.store.writer import off_loop
from tests.record_helpers import record
from tests.store.writer_helpers import (
    claimed,
    logged_syncs,
    logging_releases,
    staged_download,
    together,
)

BODY = {"prompt": "a lighthouse"}


@pytest.fixture
def log(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every fsync, by what it synced: "dir <path>" for a directory, "log <table>" for a
    database's log (tests append their own steps)."""

    def name(path: str) -> str | None:
        if os.path.isdir(path):
            return f"dir {path}"
        return "log " + os.path.basename(os.path.dirname(path)) if path.endswith("-wal") else None

    return logged_syncs(monkeypatch, name)


async def _keep(
    store: Store, data: bytes, key: str, log: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A claim on ``key``, then its download kept in one trip, its release logged."""
    owner, tiered = await claimed(store, key)
    logging_releases(monkeypatch, store, log)
    staged, stored = staged_download(store, data)
    log.clear()
    await tiered.keep_result(staged, record(key, stored), owner)
    log.append("answered")


async def test_a_landed_file_is_durable_before_its_release_and_its_answer(
    store: Store, log: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    await _keep(store, b"a clip", "k1", log, monkeypatch)
    shard = str(store.file_path(hashlib.sha256(b"a clip").hexdigest()).parent)
    files = str(store.file_path("0" * 64).parent.parent)
    # The new shard in files/, the rename in the shard, the result: all synced before the
    # claim is released, and that before the caller hears back.
    assert sorted(log[:3]) == sorted([f"dir {files}", f"dir {shard}", "log results"])
    assert log[3:] == ["release", "answered"]
    assert store.get_result("k1") is not None and store.journal("k1") is None


async def test_a_copy_of_stored_content_is_dropped_once_its_directory_is_synced(
    store: Store, log: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another process landed the same content a moment ago: its rename may not be durable
    # yet. The copy is dropped, and the claim released, only after the shard's sync.
    first, stored = staged_download(store, b"a clip", "first.part")
    store.adopt_file(first, stored)
    discard = blobs_module.BlobStore._discard

    def logged_discard(self: blobs_module.BlobStore, staged: Path) -> None:
        log.append("discard")
        discard(self, staged)

    monkeypatch.setattr(blobs_module.BlobStore, "_discard", logged_discard)
    await _keep(store, b"a clip", "k1", log, monkeypatch)
    shard = str(store.file_path(stored.sha256).parent)
    assert sorted(log[:2]) == sorted([f"dir {shard}", "log results"])
    assert log[2:] == ["discard", "release", "answered"]


async def test_files_landed_in_one_group_sync_their_directory_once(
    store: Store, log: list[str]
) -> None:
    # Two downloads of different content in the same shard, recorded in one group.
    clips = _same_shard(2)
    staged = [staged_download(store, data, f"{n}.part") for n, data in enumerate(clips)]
    owner = Owner.current("run-1")
    assert await off_loop(store.claim, "k", owner, sync=False) is None
    log.clear()
    # The three writes queued up as one group.
    await together(
        lambda: asyncio.gather(
            off_loop(store.begin_submit, "k", owner, "fal-ai/x", BODY, body_digest(BODY)),
            *(off_loop(store.adopt_file, path, stored) for path, stored in staged),
        )
    )
    shard = str(store.file_path(staged[0][1].sha256).parent)
    files = str(Path(shard).parent)
    assert sorted(log) == sorted([f"dir {files}", f"dir {shard}", "log journal"])


async def test_a_file_landed_outside_the_writer_is_synced_before_its_call_returns(
    store: Store, log: list[str]
) -> None:
    # A pool thread (a media step, a bucket fetch) has no group to join: it syncs at once.
    staged, stored = staged_download(store, b"a still")
    log.clear()
    await asyncio.to_thread(store.adopt_file, staged, stored)
    assert f"dir {store.file_path(stored.sha256).parent}" in log


async def test_no_release_when_the_directory_sync_fails(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    owner, tiered = await claimed(store)
    staged, stored = staged_download(store, b"a clip")
    # The shard there already (a new one's entry is synced at once): the group's sync fails.
    store.file_path(stored.sha256).parent.mkdir(parents=True)

    def failing(path: Path) -> None:
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(blobs_module, "fsync_dir", failing)
    with pytest.raises(StoreError, match="cannot sync"):
        await tiered.keep_result(staged, record("k1", stored), owner)
    entry = store.journal("k1")  # the claim stays: the next run re-attaches to the job
    assert entry is not None and entry.owner == owner


async def test_a_result_whose_file_was_lost_is_reattached_not_rendered_again(
    store: Store,
) -> None:
    # A power cut after another process's sync took our result row to disk, before our
    # group synced the file's directory: the row is there, the file is not, the claim
    # (released only after both syncs) holds the job's request id.
    owner = Owner.current("run-1")
    assert store.claim("k1", owner) is None
    store.begin_submit("k1", owner, "fal-ai/x", BODY, body_digest(BODY))
    store.record_submission("k1", owner, "fal-ai/x", {"request_id": "req-1"})
    staged, stored = staged_download(store, b"a clip")
    store.adopt_file(staged, stored)
    store.put_result(record("k1", stored))
    os.chmod(store.file_path(stored.sha256), 0o644)
    os.unlink(store.file_path(stored.sha256))
    assert store.get_result("k1") is None
    assert store.results_for(["k1"], "local") == {}
    assert store.usable_results(["k1"], "local") == set()
    look = await TieredStore(store).first_look("k1", "local", Owner.current("run-2"))
    assert look.result is None and look.entry is not None
    assert look.entry.handle == {"request_id": "req-1"}


def _same_shard(count: int) -> list[bytes]:
    """``count`` different contents whose hashes start alike (one shard directory)."""
    by_shard: dict[str, list[bytes]] = {}
    n = 0
    while True:
        data = f"clip {n}".encode()
        found = by_shard.setdefault(hashlib.sha256(data).hexdigest()[:2], [])
        found.append(data)
        if len(found) == count:
            return found
        n += 1


def test_a_new_shard_is_durable_before_another_thread_lands_a_file_in_it(
    store: Store, log: list[str]
) -> None:
    # The writer's group makes a new shard for its download; before the group's end, a
    # thread of its own (a media step, a bucket fetch) lands other content in that shard,
    # sees it there, syncs only the shard and is answered. Its file must survive a power
    # cut from then on: the shard's own entry in files/ must be durable by then.
    first, second = (
        staged_download(store, data, f"{n}.part") for n, data in enumerate(_same_shard(2))
    )
    files = str(store.file_path(first[1].sha256).parent.parent)
    log.clear()
    with grouped_commits():
        store.adopt_file(*first)
        landing = threading.Thread(target=store.adopt_file, args=second)
        landing.start()
        landing.join()
        assert store.has_file(second[1].sha256, second[1].size)
        synced_when_answered = list(log)
    assert f"dir {files}" in synced_when_answered

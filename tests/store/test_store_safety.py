"""The store under stress: the journal's "submitting" state, the space held in reserve, a
full disk (a small tmpfs), and reading a store that cannot be written."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import time
from dataclasses import replace
from pathlib import Path

import pytest

from runner import cli
from runner.errors import DiskFull
from runner.store import (
    JournalConflict,
    Owner,
    Store,
    StoreError,
    UploadRecord,
    gc_store,
    store_info,
)
from runner.store.journal import body_digest
from runner.store.reserve import RESERVE_BYTES
from tests.small_disk import fill, small_disk, unfill
from tests.store.test_store import put_bytes, result

BODY = {"prompt": "a wet street", "image_url": "https://cdn.example/a.png", "seed": 7}
ENDPOINT = "fal-ai/ltx-video-13b-distilled/image-to-video"


def dead_owner(run_id: str = "dead") -> Owner:
    return replace(Owner.current(run_id), pid=2**22 + 4321)


# -- the journal's submitting state ----------------------------------------------------


def test_the_exact_body_is_journaled_before_the_post_and_kept_after(tmp_path: Path) -> None:
    me = Owner.current("run-a")
    with Store.open(tmp_path / "s") as store:
        assert store.claim("k", me) is None
        before = time.time()
        entry = store.begin_submit("k", me, ENDPOINT, BODY, body_digest(BODY))
        assert entry.state == "submitting" and entry.may_have_been_sent
        assert entry.body == BODY and entry.body_sha256 == body_digest(BODY)
        assert len(entry.attempts) == 1 and entry.attempts[0] >= before
        store.record_submission("k", me, ENDPOINT, {"request_id": "r-1"})
    with Store.open(tmp_path / "s") as store:  # durable, and what reconciliation needs
        done = store.journal("k")
        assert done is not None and done.state == "submitted"
        assert done.handle == {"request_id": "r-1"} and done.endpoint == ENDPOINT
        assert done.body == BODY and done.body_sha256 == body_digest(BODY)
        assert done.attempts == entry.attempts


def test_a_taken_over_submit_sends_the_same_body_and_counts_its_attempts(store: Store) -> None:
    dead, me = dead_owner(), Owner.current("survivor")
    assert store.claim("k", dead) is None
    first = store.begin_submit("k", dead, ENDPOINT, BODY, body_digest(BODY))
    assert store.take_over("k", first, me)
    taken = store.journal("k")
    assert taken is not None and taken.owner == me and taken.body == BODY
    again = store.begin_submit("k", me, ENDPOINT, BODY, body_digest(BODY))
    assert len(again.attempts) == 2 and again.attempts[0] == first.attempts[0]
    other = {**BODY, "seed": 8}
    assert len(store.begin_submit("k", me, ENDPOINT, other, body_digest(other)).attempts) == 1


def test_begin_submit_refuses_a_key_another_run_holds(store: Store) -> None:
    me, rival = Owner.current("run-a"), Owner.current("run-b")
    assert store.claim("k", me) is None
    stale = store.journal("k")
    assert stale is not None and store.take_over("k", stale, rival)
    with pytest.raises(JournalConflict, match="run-b"):
        store.begin_submit("k", me, ENDPOINT, BODY, body_digest(BODY))
    held = store.journal("k")
    assert held is not None and held.owner == rival and held.state == "claimed"


def test_body_digest_is_canonical() -> None:
    reordered = dict(reversed(list(BODY.items())))
    assert body_digest(reordered) == body_digest(BODY)
    assert body_digest({**BODY, "seed": 8}) != body_digest(BODY)


def test_gc_keeps_an_entry_caught_mid_submit_and_drops_a_dead_bare_claim(store: Store) -> None:
    dead = dead_owner()
    assert store.claim("mid-submit", dead) is None
    store.begin_submit("mid-submit", dead, ENDPOINT, BODY, body_digest(BODY))
    assert store.claim("bare", dead) is None
    report = gc_store(store, set(), grace=0)
    assert (report.journal_removed, report.journal_kept) == (1, 1)
    assert [key for key, _ in store.in_flight()] == ["mid-submit"]
    assert store_info(store).submitted == 1


# -- uploads ---------------------------------------------------------------------------


def test_a_dead_upload_url_is_forgotten_unless_renewed_meanwhile(store: Store) -> None:
    sha = hashlib.sha256(b"keyframe").hexdigest()
    store.put_upload(UploadRecord("fal", sha, "https://cdn/old.png", time.time() + 9e5))
    assert store.forget_upload("fal", sha, "https://cdn/other.png") is False
    assert store.get_upload("fal", sha) is not None
    assert store.forget_upload("fal", sha, "https://cdn/old.png") is True
    assert store.get_upload("fal", sha) is None


# -- the reserve -----------------------------------------------------------------------


def test_the_reserve_is_kept_and_released(store: Store) -> None:
    assert store.reserve.keep() is None
    assert store.reserve.path.stat().st_size == RESERVE_BYTES
    assert store.reserve.path.stat().st_blocks * 512 >= RESERVE_BYTES  # allocated, not sparse
    assert store.reserve.release() and not store.reserve.path.exists()
    assert store.reserve.release() is False


# -- a full disk -----------------------------------------------------------------------


def test_a_full_disk_is_named_not_reported_as_a_damaged_store(tmp_path: Path) -> None:
    with small_disk(tmp_path / "disk", "4m") as disk, Store.open(disk / "store") as store:
        assert store.reserve.keep() is None
        fill(disk)
        assert store.reserve.keep() is None  # already there: nothing to allocate
        with pytest.raises(DiskFull) as caught:
            store.claim("before-the-reserve", Owner.current("r"))
        assert f"the disk mounted at {disk} is full" in caught.value.message
        assert "run again" in (caught.value.hint or "")
        # The reserve gives the journal room again, and cannot be re-made on a full disk.
        assert store.reserve.release()
        store.claim("after-the-reserve", Owner.current("r"))
        fill(disk)
        assert isinstance(store.reserve.keep(), OSError)


def test_verify_and_info_read_a_store_on_a_disk_with_no_space_left(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with small_disk(tmp_path / "disk", "4m") as disk:
        root = disk / "store"
        with Store.open(root) as store:
            output = put_bytes(store, os.urandom(50_000))
            store.put_result(result("k", output))
        fill(disk)
        with pytest.raises(DiskFull):  # opening for writing needs room...
            Store.open(root).close()
        capsys.readouterr()
        assert cli.run(["cache", "verify", "--cache-dir", str(root)]) == 0  # ...looking does not
        out = capsys.readouterr().out
        assert "checked 1 files" in out and out.rstrip().endswith("ok")
        assert cli.run(["cache", "info", "--cache-dir", str(root), "--json"]) == 0
        assert '"results": 1' in capsys.readouterr().out
        # A full disk is never a traceback: exit 1 and the mount named.
        assert cli.run(["cache", "gc", "--all", "--cache-dir", str(root)]) == 1
        assert f"the disk mounted at {disk} is full" in capsys.readouterr().err
        unfill(disk)


def test_a_read_only_store_refuses_to_write(store: Store) -> None:
    with Store.open(store.root, read_only=True) as looking, pytest.raises(StoreError):
        looking.claim("k", Owner.current("r"))


def test_a_look_at_a_read_only_copy_never_misses_what_its_wal_holds(tmp_path: Path) -> None:
    # A store copied while a run held it open (its WAL, not its shared memory) onto a
    # read-only disk: a look cannot read the WAL without making the shared memory, and the
    # database file alone lacks the result. Saying "not cached" would be a wrong answer.
    with small_disk(tmp_path / "disk", "8m") as disk:
        with Store.open(tmp_path / "store") as store:
            store.put_result(result("k", put_bytes(store, b"a clip")))
            assert any((tmp_path / "store" / "records").glob("*/cache.db-wal"))
            shutil.copytree(store.root, disk / "store", ignore=shutil.ignore_patterns("*-shm"))
        remounted = subprocess.run(["mount", "-o", "remount,ro", str(disk)], capture_output=True)
        if remounted.returncode != 0:
            pytest.skip(f"cannot make {disk} read-only: {remounted.stderr.decode().strip()}")
        try:
            with Store.open(disk / "store", read_only=True) as looking:
                found = looking.get_result("k")
        except StoreError as exc:  # cannot be read as it is: said, not guessed
            assert "not yet in the database" in exc.message
            assert "read-only" in str(exc.hint) and "move" not in str(exc.hint)  # not damaged
        else:
            assert found is not None and found.key == "k"
        with pytest.raises(StoreError) as opened:  # and no writable open there either
            Store.open(disk / "store").close()
        assert "read-only" in str(opened.value.hint) and "move" not in str(opened.value.hint)

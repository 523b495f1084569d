"""The store: content-addressed files, records, the job journal, crashes and two processes."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from runner.store import (
    JournalConflict,
    Owner,
    ResultRecord,
    Store,
    StoredFile,
    StoreError,
    UploadRecord,
    gc_store,
    resolve_store_root,
    store_info,
    verify_store,
)
from runner.store import hashcache as hashcache_module
from runner.store.blobs import hash_path
from runner.store.owner import proc_stat
from tests.record_helpers import record

WORKER = Path(__file__).with_name("store_worker.py")
LINUX = sys.platform.startswith("linux")
OLD = time.time() - 86_400  # a day ago: past gc's grace and hash_file's racy window


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def put_bytes(store: Store, data: bytes, name: str = "src.bin") -> StoredFile:
    src = store.root.parent / name
    src.write_bytes(data)
    return store.put_file(src)


def result(key: str, output: StoredFile, **changes: object) -> ResultRecord:
    return record(
        key,
        output,
        **{
            "node": "intro",
            "kind": "i2v",
            "endpoint": "fal-ai/ltx-video-13b-distilled/image-to-video",
            "request_id": "req-1",
            "seed": 7,
            "result_url": "https://example.invalid/out.mp4",
            "extra": {"seed": 7, "timings": {"inference": 1.5}},
        }
        | changes,
    )


def age(path: Path, when: float = OLD) -> None:
    os.utime(path, (when, when))


def spawn(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(WORKER), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_ready(proc: subprocess.Popen[str]) -> None:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.strip() == "ready", (line, proc.stderr.read() if proc.stderr else "")


# -- files -----------------------------------------------------------------------------


def test_put_file_stores_by_content_read_only(store: Store) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)  # more than one copy chunk
    stored = put_bytes(store, data)
    assert stored == StoredFile(sha(data), len(data))
    path = store.file_path(stored.sha256)
    assert path == store.root / "files" / stored.sha256[:2] / stored.sha256
    assert path.read_bytes() == data
    assert stat.S_IMODE(path.stat().st_mode) == 0o444
    assert store.has_file(stored.sha256) and store.has_file(stored.sha256, len(data))
    assert not store.has_file(stored.sha256, len(data) + 1)
    assert store.verify_file(stored.sha256)
    assert list(store.tmp_dir().iterdir()) == []


def test_put_file_is_idempotent(store: Store) -> None:
    first = put_bytes(store, b"same bytes", "a.bin")
    age(store.file_path(first.sha256))
    second = put_bytes(store, b"same bytes", "b.bin")
    assert first == second
    assert sum(1 for _ in store.files.entries()) == 1
    # The existing copy is touched, so a concurrent gc's grace period covers it.
    assert store.file_path(first.sha256).stat().st_mtime > OLD + 3600
    assert list(store.tmp_dir().iterdir()) == []


def test_put_file_move_consumes_the_source(store: Store) -> None:
    staged = store.tmp_dir() / "download.part"
    staged.write_bytes(b"rendered video")
    stored = store.put_file(staged, move=True, expected_sha256=sha(b"rendered video"))
    assert not staged.exists()
    assert store.file_path(stored.sha256).read_bytes() == b"rendered video"
    staged.write_bytes(b"rendered video")  # already stored: the source still goes away
    assert store.put_file(staged, move=True) == stored
    assert not staged.exists()


def test_expected_hash_mismatch_stores_nothing(store: Store) -> None:
    src = store.tmp_dir() / "download.part"
    src.write_bytes(b"truncated")
    with pytest.raises(StoreError, match="does not match the expected"):
        store.put_file(src, expected_sha256=sha(b"the real thing"))
    with pytest.raises(StoreError, match="does not match the expected"):
        store.put_file(src, move=True, expected_sha256=sha(b"the real thing"))
    assert src.exists()  # a failed move leaves the source for the caller to inspect
    assert list(store.files.entries()) == []
    assert [p.name for p in store.tmp_dir().iterdir()] == ["download.part"]


def test_put_file_of_a_missing_source_is_a_store_error(store: Store, tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="cannot store"):
        store.put_file(tmp_path / "nope.bin")
    with pytest.raises(StoreError, match="cannot store"):
        store.put_file(tmp_path / "nope.bin", move=True)
    assert list(store.tmp_dir().iterdir()) == []


def test_file_path_accepts_only_hashes(store: Store) -> None:
    for bad in ("../../etc/passwd", "ab", "A" * 64, "g" * 64):
        with pytest.raises(StoreError):
            store.file_path(bad)
    with pytest.raises(StoreError):
        store.has_file("../" * 3 + "x" * 55)


def test_adopt_renames_a_hashed_download_into_place(store: Store) -> None:
    staged = store.tmp_dir() / "download.part"
    staged.write_bytes(b"fetched video")
    hashed = StoredFile(sha(b"fetched video"), 13)
    assert store.adopt_file(staged, hashed) == hashed
    assert not staged.exists() and store.file_path(hashed.sha256).read_bytes() == b"fetched video"
    again = store.tmp_dir() / "download-again.part"  # the same content fetched twice
    again.write_bytes(b"fetched video")
    assert store.adopt_file(again, hashed) == hashed and not again.exists()


def test_a_copy_of_stored_content_is_unlinked_off_the_writers_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Unlinking a just-fsynced file waits on the filesystem's journal: the thread landing
    # files (the store's writer) only renames the copy aside; another thread unlinks it.
    unlinked: list[tuple[str, str]] = []
    unlink = os.unlink

    def logged(path: str | os.PathLike[str], *args: object, **kwargs: object) -> None:
        unlinked.append((Path(path).parent.name, threading.current_thread().name))
        unlink(path, *args, **kwargs)  # type: ignore[arg-type]

    with Store.open(tmp_path / "store") as store:
        hashed = StoredFile(sha(b"fetched video"), 13)
        for name in ("first.part", "again.part"):
            staged = store.tmp_dir() / name
            staged.write_bytes(b"fetched video")
            monkeypatch.setattr(os, "unlink", logged)
            assert store.adopt_file(staged, hashed) == hashed and not staged.exists()
    monkeypatch.undo()
    assert [thread for _, thread in unlinked] == ["shotgraph-discard_0"]
    assert unlinked[0][0].startswith(".discard-")
    assert sorted(os.listdir(tmp_path / "store" / "tmp")) == []  # the aside went on close


# -- records ---------------------------------------------------------------------------


def test_result_round_trip_and_reopen(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s") as store:
        output = put_bytes(store, b"video")
        record = result("k1", output)
        assert store.get_result("k1") is None
        store.put_result(record)
        assert store.get_result("k1") == record
    with Store.open(tmp_path / "s") as store:
        assert store.get_result("k1") == record
        media = result("k2", output, endpoint=None, request_id=None, seed=None, cost_usd=None)
        store.put_result(media)
        assert store.get_result("k2") == media


def test_records_are_versioned_json(store: Store) -> None:
    output = put_bytes(store, b"video")
    store.put_result(result("k", output))
    raw = store._results.get("k")
    assert raw is not None and raw["v"] == 1 and raw["output"] == output.as_dict()
    json.dumps(raw)  # plain JSON all the way down
    store._results.set("k", {**raw, "v": 99})
    assert store.get_result("k") is None  # another schema: a miss, never a crash
    store._results.set("k", {"v": 1, "key": "k"})
    assert store.get_result("k") is None


def test_a_result_needs_its_file(store: Store) -> None:
    missing = StoredFile(sha(b"never stored"), 12)
    with pytest.raises(StoreError, match="not in the store"):
        store.put_result(result("k", missing))
    output = put_bytes(store, b"video")
    store.put_result(result("k", output))
    store.file_path(output.sha256).unlink()
    assert store.get_result("k") is None
    assert store.get_result("k", check_file=False) is not None


def test_uploads_expire_with_a_margin(store: Store) -> None:
    digest = sha(b"keyframe")
    now = time.time()
    store.put_upload(UploadRecord("fal", digest, "https://v3.fal.media/a.png", now + 7200))
    assert store.get_upload("fal", digest) is not None
    assert store.get_upload("local", digest) is None  # backends never share
    assert store.get_upload("fal", digest, margin=3 * 3600) is None
    store.put_upload(UploadRecord("fal", digest, "https://v3.fal.media/a.png", now + 60))
    assert store.get_upload("fal", digest) is None
    store.put_upload(UploadRecord("local", digest, "http://127.0.0.1/f", None))
    assert store.get_upload("local", digest) == UploadRecord(
        "local", digest, "http://127.0.0.1/f", None
    )


def test_a_render_serves_only_its_backend_a_media_step_serves_any(store: Store) -> None:
    out = put_bytes(store, b"clip")
    store.put_result(result("k-render", out))  # rendered on the local backend
    store.put_result(result("k-frame", out, kind="frame", endpoint=None, request_id=None))
    assert store.result_for("k-render", "local") is not None
    assert store.result_for("k-render", "fal") is None  # an animatic is not a fal render
    assert store.result_for("k-frame", "fal") is not None  # the same frame either way
    assert store.result_for("k-missing", "local") is None


def test_many_results_in_one_query_answer_as_one_by_one(store: Store) -> None:
    out = put_bytes(store, b"clip")
    gone = put_bytes(store, b"deleted clip")
    store.put_result(result("k-render", out))
    store.put_result(result("k-frame", out, kind="frame", endpoint=None, request_id=None))
    store.put_result(result("k-gone", gone))
    store.file_path(gone.sha256).unlink()
    keys = ["k-render", "k-frame", "k-gone", "k-missing", "k-render"]
    for backend in ("local", "fal"):
        one_by_one = {k: store.result_for(k, backend) for k in keys}
        assert store.results_for(keys, backend) == {
            k: r for k, r in one_by_one.items() if r is not None
        }
    assert set(store.results_for(keys, "local")) == {"k-render", "k-frame"}


# -- journal ---------------------------------------------------------------------------


def test_claim_submit_release(store: Store) -> None:
    me = Owner.current("run-a")
    other = replace(me, run_id="run-b")
    assert store.claim("k", me) is None
    held = store.claim("k", other)
    assert held is not None and held.state == "claimed" and held.owner == me
    handle = {"endpoint_id": "fal-ai/ltx-video", "request_id": "r-1", "status_url": "u"}
    store.record_submission("k", me, "fal-ai/ltx-video", handle)
    entry = store.journal("k")
    assert entry is not None and entry.state == "submitted"
    assert entry.endpoint == "fal-ai/ltx-video" and entry.handle == handle
    assert store.in_flight() == [("k", entry)]
    assert store.release("k", other) is False  # not theirs to release
    assert store.journal("k") == entry
    assert store.release("k", me) is True
    assert store.journal("k") is None and store.in_flight() == []
    assert store.claim("k", other) is None


def test_submission_is_durable_across_reopen(tmp_path: Path) -> None:
    me = Owner.current("run-a")
    with Store.open(tmp_path / "s") as store:
        assert store.claim("k", me) is None
        store.record_submission("k", me, "ep", {"request_id": "r-1"})
    with Store.open(tmp_path / "s") as store:
        entry = store.journal("k")
        assert entry is not None and entry.owner == me and entry.handle == {"request_id": "r-1"}


def test_record_submission_refuses_a_key_taken_over(store: Store) -> None:
    me = Owner.current("run-a")
    rival = replace(me, run_id="run-b")
    assert store.claim("k", me) is None
    stale = store.journal("k")
    assert stale is not None and store.take_over("k", stale, rival)
    with pytest.raises(JournalConflict, match="run-b"):
        store.record_submission("k", me, "ep", {"request_id": "r-1"})
    entry = store.journal("k")
    assert entry is not None and entry.owner == rival and entry.state == "claimed"


def test_take_over_is_compare_and_swap(store: Store) -> None:
    dead = replace(Owner.current("run-dead"), pid=2**22 + 12345)
    first = replace(dead, run_id="survivor-1")
    second = replace(dead, run_id="survivor-2")
    assert store.claim("k", dead) is None
    store.record_submission("k", dead, "ep", {"request_id": "r-1"})
    stale = store.journal("k")
    assert stale is not None
    assert store.take_over("k", stale, first) is True
    assert store.take_over("k", stale, second) is False  # first got there
    entry = store.journal("k")
    assert entry is not None and entry.owner == first
    assert entry.state == "submitted" and entry.handle == {"request_id": "r-1"}
    store.release("k")
    assert store.take_over("k", entry, second) is False  # nothing left to take


def test_unreadable_journal_entry_stops_rather_than_guesses(store: Store) -> None:
    store._journal.table.set("k", {"v": 99, "state": "submitted"})
    with pytest.raises(StoreError, match="cannot be read"):
        store.claim("k", Owner.current("r"))
    store._journal.table._cache.set("k-odd", "[1, 2]")  # not even an object
    with pytest.raises(StoreError, match="cannot be read"):
        store.journal("k-odd")
    assert store.journal("k-absent") is None


# -- owners ----------------------------------------------------------------------------


def test_owner_alive_for_this_process(store: Store) -> None:
    me = Owner.current("r")
    assert me.pid == os.getpid() and me.host == socket.gethostname()
    assert store.owner_alive(me)
    assert Owner.from_dict(json.loads(json.dumps(me.as_dict()))) == me


def test_owner_dead_after_exit(store: Store) -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()  # reaped: the pid is free
    owner = replace(Owner.current("r"), pid=proc.pid)
    assert not store.owner_alive(owner)


@pytest.mark.skipif(not LINUX, reason="zombies are read from /proc")
def test_owner_dead_as_a_zombie(store: Store) -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)  # exited, not reaped: a zombie
    assert (info := proc_stat(proc.pid)) is not None and info.state == "Z"
    try:
        assert not store.owner_alive(replace(Owner.current("r"), pid=proc.pid))
    finally:
        proc.wait()


@pytest.mark.skipif(not LINUX, reason="start times come from /proc")
def test_owner_with_a_reused_pid_is_dead(store: Store) -> None:
    me = Owner.current("r")
    assert me.start_ticks is not None
    # Our pid, but a different start time: a new process that inherited a dead owner's pid.
    assert not store.owner_alive(replace(me, start_ticks=me.start_ticks - 1))
    assert not store.owner_alive(replace(me, boot_id="another-boot"))


def test_owner_on_another_host_is_alive_while_its_heartbeat_is_fresh(store: Store) -> None:
    far = replace(Owner.current("r"), host="render-box-2", pid=2**22 + 1)
    assert not store.owner_alive(far)  # its pid means nothing here; no heartbeat yet
    store.beat(far)
    assert store.owner_alive(far)
    store.end_run(far)
    assert not store.owner_alive(far)
    assert not store.owner_alive(replace(Owner.current("r"), pid=0))


# -- input hashing ---------------------------------------------------------------------


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The files actually read to hash them (a remembered hash reads nothing)."""
    read: list[Path] = []

    def counting(path: Path) -> StoredFile:
        read.append(path)
        return hash_path(path)

    monkeypatch.setattr(hashcache_module, "hash_path", counting)
    return read


def test_hash_file_is_remembered_until_the_file_changes(
    store: Store, tmp_path: Path, calls: list[Path]
) -> None:
    src = tmp_path / "key.png"
    src.write_bytes(b"frame one")
    age(src)
    assert store.known_hash(src) is None  # not hashed yet: a look hashes nothing
    assert store.hash_file(src) == StoredFile(sha(b"frame one"), 9)
    (tmp_path / "alias.png").symlink_to(src)  # another spelling of the same file
    assert store.hash_file(tmp_path / "alias.png") == StoredFile(sha(b"frame one"), 9)
    assert len(calls) == 1
    with Store.open(store.root) as again:  # persistent, not only memoised
        assert again.hash_file(src).sha256 == sha(b"frame one")
    with Store.open(store.root, read_only=True) as looking:
        assert looking.known_hash(src) == StoredFile(sha(b"frame one"), 9)
    assert len(calls) == 1

    src.write_bytes(b"frame two")  # same size; mtime put back: ctime still moves
    age(src)
    assert store.known_hash(src) is None
    assert store.hash_file(src) == StoredFile(sha(b"frame two"), 9)
    assert len(calls) == 2

    src.unlink()
    src.write_bytes(b"frame three")  # new inode
    age(src)
    assert store.hash_file(src).sha256 == sha(b"frame three")
    assert len(calls) == 3


def test_hash_file_does_not_remember_a_racy_file(
    store: Store, tmp_path: Path, calls: list[Path]
) -> None:
    src = tmp_path / "fresh.png"
    src.write_bytes(b"just written")
    store.hash_file(src)
    store.hash_file(src)
    assert len(calls) == 2  # modified just now: a same-tick rewrite would be invisible


def test_hash_file_of_a_missing_file(store: Store, tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="cannot read"):
        store.hash_file(tmp_path / "missing.png")


# -- verify and gc ---------------------------------------------------------------------


def test_verify_finds_a_flipped_byte_and_repairs(store: Store) -> None:
    good = put_bytes(store, b"good video", "g.bin")
    bad = put_bytes(store, b"soon corrupt", "b.bin")
    store.put_result(result("good", good))
    store.put_result(result("bad", bad))
    path = store.file_path(bad.sha256)
    path.chmod(0o644)
    data = bytearray(path.read_bytes())
    data[3] ^= 0x01
    path.write_bytes(bytes(data))
    assert not store.verify_file(bad.sha256)

    report = verify_store(store)
    assert report.corrupt == [bad.sha256] and report.missing == ["bad"]
    assert not report.ok and path.exists()

    repaired = verify_store(store, repair=True)
    assert repaired.ok and repaired.files_removed == 1 and repaired.records_removed == 1
    assert not path.exists() and store.get_result("bad", check_file=False) is None
    assert store.get_result("good") is not None
    assert verify_store(store).clean


def test_gc_keeps_what_lockfiles_need(store: Store) -> None:
    kept = put_bytes(store, b"kept", "1.bin")
    dropped = put_bytes(store, b"dropped", "2.bin")
    shared = put_bytes(store, b"shared", "3.bin")
    orphan = put_bytes(store, b"orphan", "4.bin")
    store.put_result(result("keep-me", kept, recorded_at=OLD))
    store.put_result(result("drop-me", dropped, recorded_at=OLD))
    store.put_result(result("keep-shared", shared, recorded_at=OLD))
    store.put_result(result("drop-shared", shared, recorded_at=OLD))
    for stored in (kept, dropped, shared, orphan):
        age(store.file_path(stored.sha256))
    keep = {"keep-me", "keep-shared"}

    dry = gc_store(store, keep, dry_run=True)
    assert (dry.results_removed, dry.files_removed) == (2, 2)
    assert store.get_result("drop-me") is not None and store.has_file(orphan.sha256)

    report = gc_store(store, keep)
    assert report.results_removed == 2 and report.results_kept == 2
    assert report.files_removed == 2 and report.bytes_freed == len(b"dropped") + len(b"orphan")
    assert store.get_result("keep-me") is not None and store.get_result("keep-shared")
    assert store.get_result("drop-me", check_file=False) is None
    assert not store.has_file(dropped.sha256) and not store.has_file(orphan.sha256)
    assert verify_store(store).clean


def test_gc_spares_recent_work(store: Store) -> None:
    fresh = put_bytes(store, b"fresh", "1.bin")
    store.put_result(result("just-recorded", fresh))
    loose = put_bytes(store, b"landed, record not yet written", "2.bin")
    report = gc_store(store, set())
    assert report.results_removed == 0 and report.files_removed == 0
    assert store.get_result("just-recorded") is not None and store.has_file(loose.sha256)
    report = gc_store(store, set(), grace=0)
    assert report.results_removed == 1 and report.files_removed == 2


def test_gc_never_drops_money_in_flight(store: Store) -> None:
    me = Owner.current("alive")
    dead = replace(me, run_id="dead", pid=2**22 + 999)
    far = replace(me, run_id="elsewhere", host="render-box-2")
    assert store.claim("alive-claim", me) is None
    assert store.claim("dead-submitted", dead) is None
    store.record_submission("dead-submitted", dead, "ep", {"request_id": "r-1"})
    assert store.claim("dead-claim", dead) is None
    assert store.claim("remote-claim", far) is None
    store.beat(far)  # a run on another host is alive while its heartbeat is fresh
    gone = replace(far, run_id="gone-elsewhere")
    assert store.claim("gone-remote-claim", gone) is None  # no heartbeat: that run is over

    report = gc_store(store, set(), grace=0)
    assert report.journal_removed == 2 and report.journal_kept == 3
    assert sorted(key for key, _ in store.in_flight()) == [
        "alive-claim",
        "dead-submitted",
        "remote-claim",
    ]


def test_gc_removes_expired_uploads_stale_temps_and_gone_inputs(
    store: Store, tmp_path: Path
) -> None:
    now = time.time()
    store.put_upload(UploadRecord("fal", sha(b"a"), "https://x/a", now - 10))
    store.put_upload(UploadRecord("fal", sha(b"b"), "https://x/b", now + 600))
    store.put_upload(UploadRecord("fal", sha(b"c"), "https://x/c", None))
    stale = store.root / "tmp" / "put-crashed.part"  # outside any run's staging: by age
    stale.write_bytes(b"half")
    age(stale)
    active = store.tmp_dir() / "download-now.part"  # a live run's staging: never, however old
    active.write_bytes(b"in progress")
    age(active)
    gone = tmp_path / "deleted-input.png"
    gone.write_bytes(b"x")
    age(gone)
    store.hash_file(gone)
    gone.unlink()

    report = gc_store(store, set())
    assert report.uploads_removed == 1 and report.tmp_removed == 1 and report.hashes_removed == 1
    assert store.get_upload("fal", sha(b"b"), margin=0) is not None
    assert store.get_upload("fal", sha(b"c")) is not None
    assert not stale.exists() and active.exists()


def test_info_counts(store: Store) -> None:
    output = put_bytes(store, b"12345")
    store.put_result(result("k", output))
    assert store.claim("j", Owner.current("r")) is None
    info = store_info(store)
    assert (info.files, info.file_bytes, info.results, info.journal) == (1, 5, 1, 1)
    assert info.submitted == 0 and info.disk_bytes > 5


# -- opening, location -----------------------------------------------------------------


def test_open_refuses_a_directory_that_is_not_a_store(tmp_path: Path) -> None:
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "notes.txt").write_text("mine")
    with pytest.raises(StoreError, match="not a shotgraph store"):
        Store.open(tmp_path / "home")
    # What an interrupted creation leaves behind is fine.
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / ".store.json.abc123.part").write_text("")
    Store.open(tmp_path / "half").close()
    assert (tmp_path / "half" / ".gitignore").read_text().strip().endswith("*")


def test_a_store_another_run_makes_meanwhile_is_opened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two runs create one store at once: the other run writes the marker and the store's
    folders between this one's look for the marker and its look at the directory."""
    root = tmp_path / "s"
    listing = Path.iterdir

    def other_run_first(path: Path) -> Iterator[Path]:
        if path == root and not (root / "store.json").exists():
            (root / "store.json").write_text('{"format": "shotgraph-store", "version": 1}\n')
            (root / "files").mkdir()
        return listing(path)

    monkeypatch.setattr(Path, "iterdir", other_run_first)
    Store.open(root).close()
    assert (root / "records").is_dir()


def test_open_refuses_a_newer_format(tmp_path: Path) -> None:
    Store.open(tmp_path / "s").close()
    (tmp_path / "s" / "store.json").write_text('{"format": "shotgraph-store", "version": 2}')
    with pytest.raises(StoreError, match="format 2"):
        Store.open(tmp_path / "s")


def test_resolve_store_root(tmp_path: Path) -> None:
    env = {"SHOTGRAPH_CACHE_DIR": str(tmp_path / "from-env")}
    assert resolve_store_root(tmp_path, tmp_path / "opt", env) == tmp_path / "opt"
    assert resolve_store_root(tmp_path, None, env) == tmp_path / "from-env"
    assert resolve_store_root(tmp_path, None, {}) == tmp_path / ".shotgraph"
    assert resolve_store_root(tmp_path, None, {"SHOTGRAPH_CACHE_DIR": ""}) == (
        tmp_path / ".shotgraph"
    )


# -- scale -----------------------------------------------------------------------------


def test_get_result_work_does_not_grow_with_the_store(store: Store) -> None:
    """A lookup is the same few statements, each through an index, at 1 result or 2,000:
    nothing scans the table. (Its time: benchmarks/unit_speeds.py.)"""
    output = put_bytes(store, b"video")
    connection = store._results._cache._con
    statements: list[str] = []

    def lookups(count: int) -> list[str]:
        with store._results.transact():
            for i in range(count):
                store.put_result(result(f"{i:064x}", output))
        statements.clear()
        connection.set_trace_callback(statements.append)
        try:
            assert store.get_result(f"{count - 1:064x}") is not None
        finally:
            connection.set_trace_callback(None)
        return list(statements)

    def shape(sql: str) -> str:  # the statement without its values (keys, times)
        return re.sub(r"'[^']*'|\d+(\.\d+)?", "?", sql)

    small = lookups(1)
    assert [shape(s) for s in lookups(2000)] == [shape(s) for s in small]
    plans = [
        " ".join(str(row) for row in connection.execute(f"EXPLAIN QUERY PLAN {s}").fetchall())
        for s in small
        if s.lstrip().upper().startswith("SELECT") and "FROM Cache" in s
    ]
    assert plans and all("USING INDEX" in plan and "SCAN" not in plan for plan in plans)


# -- crashes and concurrency -----------------------------------------------------------


def _partial_bytes(staging: Path) -> bool:
    """Whether a partial temp file under ``staging`` holds bytes. The writer makes and
    renames its own temporary entries there meanwhile: one gone between the listing and
    the look is not there yet, as far as this question goes."""
    try:
        return any(p.stat().st_size > 0 for p in staging.rglob("*.part"))
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs a FIFO")
def test_kill_during_put_file_leaves_nothing_corrupt(tmp_path: Path) -> None:
    root = tmp_path / "store"
    Store.open(root).close()
    fifo = tmp_path / "slow-source"
    os.mkfifo(fifo)
    proc = spawn("put", str(root), str(fifo))
    wait_ready(proc)
    # Read-write: opening never waits for the reader, and the worker reading it sees the
    # bytes written so far, then waits for more.
    writer = os.open(fifo, os.O_RDWR)
    try:
        os.write(writer, b"x" * 65536)
        # Until the copy is demonstrably half-way: a partial temp file holds bytes. (Nothing
        # in the worker can say so: it is inside put_file, waiting on the FIFO.)
        deadline = time.monotonic() + 30
        while not _partial_bytes(root / "tmp"):
            assert time.monotonic() < deadline
            time.sleep(0.005)
        with Store.open(root) as other:  # a live writer's staging is never swept
            assert other.sweep_staging() == 0
            assert list((root / "tmp").rglob("*.part"))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        os.close(writer)
        if proc.poll() is None:  # the test failed first: no worker is left blocked on the FIFO
            proc.kill()
            proc.wait()
    with Store.open(root) as store:
        assert list(store.files.entries()) == []
        assert verify_store(store).clean
        # The dead worker's staging directory goes, whatever its age: its lock is free.
        assert gc_store(store, set()).staging_removed == 1
        assert list((root / "tmp").iterdir()) == []


@pytest.mark.parametrize("delay", [0.0, 0.03, 0.2])
def test_kill_at_any_moment_leaves_the_store_consistent(tmp_path: Path, delay: float) -> None:
    root = tmp_path / "store"
    Store.open(root).close()
    proc = spawn("churn", str(root))
    wait_ready(proc)
    assert proc.stdout is not None
    for _ in range(3):  # the worker says each job it has recorded
        assert proc.stdout.readline().startswith("recorded "), proc.stderr
    with Store.open(root) as watcher:  # a second process's view, while the worker writes
        assert watcher.counts()["results"] >= 3
    time.sleep(delay)  # the kill lands at some moment of the next jobs' writes
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with Store.open(root) as store:
        report = verify_store(store)
        assert report.clean, report
        results = list(store.results())
        assert len(results) >= 3
        for key, record in results:
            assert record is not None and store.get_result(key) == record
        # At most the one job it was working on is left in the journal.
        assert len(store.in_flight()) <= 1


def test_two_processes_share_a_store(tmp_path: Path) -> None:
    """Two runs (processes) over the same keys at once, each through the run's generation
    protocol (runner.run.generation) with an in-memory fal of its own: every key is
    submitted by exactly one of them, and the other receives its result."""
    root = tmp_path / "store"
    Store.open(root).close()
    count = 60
    procs = [
        spawn("hammer", str(root), "a", str(count), "in-order"),
        spawn("hammer", str(root), "b", str(count), "shuffle"),
    ]
    for proc in procs:
        wait_ready(proc)
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    for proc in procs:  # each holds its submits until both have one to make
        assert proc.stdout is not None and proc.stdin is not None
        line = proc.stdout.readline()
        assert line.strip() == "submitting", (line, proc.stderr.read() if proc.stderr else "")
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("both\n")
        proc.stdin.flush()
    outcomes = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        outcomes.append(json.loads(out.strip().splitlines()[-1]))
    won_a, won_b = (set(o["won"]) for o in outcomes)
    assert not won_a & won_b and len(won_a | won_b) == count, "each claim has one winner"
    a, b = (set(o["submitted"]) for o in outcomes)
    keys = {f"key-{i:04d}" for i in range(count)}
    assert not a & b, "a key was submitted twice"
    assert a | b == keys
    assert a and b, "both processes should have won some keys"
    for mine, theirs in ((outcomes[0], b), (outcomes[1], a)):
        assert set(mine["received"]) == theirs  # what it did not submit, it received
    with Store.open(root) as store:
        for key in sorted(keys):
            record = store.get_result(key)
            assert record is not None
            assert record.request_id is not None and record.request_id.split("-")[0] in "ab"
            submitter = "a" if key in a else "b"
            assert record.request_id.startswith(f"{submitter}-")
            data = store.file_path(record.output.sha256).read_bytes()
            assert data.startswith(f"output of {key}\n".encode())
        in_flight = store.in_flight()
        assert {key for key, _ in in_flight} == won_a | won_b  # the phase-1 claims, no others
        assert all(entry.state == "claimed" for _, entry in in_flight)
        assert verify_store(store).clean
        assert store_info(store).results == count

"""The local store as the near cache of a shared one (through the seam, a directory
remote): results found many at once, files fetched only when needed and verified by hash,
a tampered object never delivered, the format marker, a server without conditional writes."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from runner.store import (
    Owner,
    RemoteStore,
    ResultRecord,
    Store,
    StoreError,
    TieredStore,
    UploadRecord,
)
from runner.store.dir_remote import DirRemote
from runner.store.remote_store import MARKER, file_name, result_name
from runner.store.tiered import Look
from tests.record_helpers import record


@pytest.fixture
def machines(tmp_path: Path) -> Iterator[tuple[TieredStore, TieredStore]]:
    """Two machines with local stores of their own and one bucket."""
    with Store.open(tmp_path / "a") as a, Store.open(tmp_path / "b") as b:
        yield (
            TieredStore(a, RemoteStore(DirRemote(tmp_path / "bucket"))),
            TieredStore(b, RemoteStore(DirRemote(tmp_path / "bucket"))),
        )


def render(store: TieredStore, key: str, data: bytes) -> ResultRecord:
    src = store.local.root.parent / f"{key[:8]}.bin"
    src.write_bytes(data)
    stored = store.local.put_file(src)
    return record(key, stored, node=f"n{key[:4]}", endpoint="ep", request_id=f"req-{key[:4]}")


KEYS = [f"{i:02x}" * 32 for i in range(12)]


async def test_another_machine_finds_every_result_and_fetches_only_what_it_needs(
    machines: tuple[TieredStore, TieredStore],
) -> None:
    a, b = machines
    for i, key in enumerate(KEYS):
        await a.put_result(render(a, key, f"clip {i}".encode()))
    found, unshared = await b.find_results(KEYS, "local")
    assert set(found) == set(KEYS) and unshared == []
    assert not any(b.local.has_file(r.output.sha256) for r in found.values())  # lazily
    assert await b.fetch_files([found[KEYS[0]]]) == set()
    assert b.local.verify_file(found[KEYS[0]].output.sha256)
    # The bucket is remembered: a second look needs no request.
    assert b.known_result(KEYS[5], "local") == found[KEYS[5]]
    assert (await b.find_results(KEYS, "fal"))[0] == {}  # a render serves its own backend


async def test_a_tampered_object_is_never_delivered_and_is_made_again(
    machines: tuple[TieredStore, TieredStore], tmp_path: Path
) -> None:
    a, b = machines
    warnings: list[str] = []
    b.warn = warnings.append
    record = render(a, KEYS[0], b"the true bytes")
    await a.put_result(record)
    tampered = tmp_path / "bucket" / file_name(record.output.sha256)
    tampered.write_bytes(b"the true bytes, but not quite")
    assert await b.result_for(KEYS[0], "local") is None
    assert not b.local.has_file(record.output.sha256)
    assert len(warnings) == 1 and "tampered" in warnings[0] and record.node in warnings[0]
    # Gone from the bucket, record and file, so a render of the same bytes lands again.
    assert not tampered.exists() and not (tmp_path / "bucket" / result_name(KEYS[0])).exists()
    await b.put_result(render(b, KEYS[0], b"the true bytes"))
    assert hashlib.sha256(tampered.read_bytes()).hexdigest() == record.output.sha256


async def test_results_only_here_are_published_and_then_known(
    machines: tuple[TieredStore, TieredStore],
) -> None:
    a, b = machines
    record = render(a, KEYS[1], b"made before the bucket")
    a.local.put_result(record)
    _, unshared = await a.find_results([KEYS[1]], "local")
    assert unshared == [record]
    await a.publish(unshared)
    assert (await a.find_results([KEYS[1]], "local"))[1] == []
    assert (await b.result_for(KEYS[1], "local")) == record


async def test_a_prefix_holding_something_else_or_a_newer_layout_is_refused(
    tmp_path: Path,
) -> None:
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / MARKER).write_text('{"format": "something-else"}')
    with pytest.raises(StoreError, match="not a shotgraph store"):
        await RemoteStore(DirRemote(tmp_path / "other")).open()
    (tmp_path / "newer").mkdir()
    (tmp_path / "newer" / MARKER).write_text('{"format": "shotgraph-remote-store", "version": 9}')
    with pytest.raises(StoreError, match="format 9"):
        await RemoteStore(DirRemote(tmp_path / "newer")).open()


class IgnoresConditions(DirRemote):
    """A server that accepts If-None-Match and writes anyway."""

    async def put_if_absent(self, name: str, data: bytes | Path) -> str | None:
        return await self.put(name, data)


async def test_a_server_without_conditional_writes_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="ignores If-None-Match"):
        await RemoteStore(IgnoresConditions(tmp_path / "bucket")).open()


async def test_a_record_under_the_wrong_name_is_not_a_result(
    machines: tuple[TieredStore, TieredStore], tmp_path: Path
) -> None:
    a, b = machines
    await a.put_result(render(a, KEYS[2], b"x"))
    moved = (tmp_path / "bucket" / result_name(KEYS[2])).read_bytes()
    (tmp_path / "bucket" / result_name(KEYS[3])).write_bytes(moved)
    assert await b.result_for(KEYS[3], "local") is None


async def test_a_forgotten_upload_goes_from_the_bucket_only_if_it_is_that_url(
    machines: tuple[TieredStore, TieredStore],
) -> None:
    a, b = machines
    sha = hashlib.sha256(b"an input").hexdigest()
    await a.put_upload(UploadRecord("fal", sha, "https://cdn/new.png", None))
    assert await b.forget_upload("fal", sha, "https://cdn/old.png") is False
    assert a.remote is not None and await a.remote.get_upload("fal", sha) is not None
    assert await b.forget_upload("fal", sha, "https://cdn/new.png") is False  # not known here
    assert await a.remote.get_upload("fal", sha) is None


@pytest.mark.parametrize("shared", [False, True], ids=["local", "shared"])
async def test_a_first_look_finds_the_result_else_the_holder_else_claims(
    machines: tuple[TieredStore, TieredStore], shared: bool
) -> None:
    """Locally one trip to the writer thread, with a bucket a call at a time: the same
    answers either way."""
    a, b = machines
    if not shared:
        a = b = TieredStore(a.local)  # one local store, two runs
    mine, theirs = Owner.current("run-a"), Owner.current("run-b")
    first = await a.first_look(KEYS[0], "local", mine)
    assert first == Look(claimed=True)
    assert (await a.journal(KEYS[0])) is not None
    seen = await b.first_look(KEYS[0], "local", theirs)
    assert seen.entry is not None and seen.entry.owner == mine and not seen.claimed
    done = render(a, KEYS[0], b"clip")
    await a.put_result(done)
    await a.release(KEYS[0], mine)
    assert (await b.first_look(KEYS[0], "local", theirs)).result == done

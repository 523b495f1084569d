"""Looking after a shared store: what it holds, whether it is intact, what no lockfile needs.

The same rules as :mod:`runner.store.maintenance`, over a bucket: gc spares anything younger
than the grace period, never touches a live claim, and never drops the entry of a job that
may still be at fal with no result recorded. Listings are paged (1,000 names a request)
and objects read many at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from runner.store.journal import JournalEntry
from runner.store.maintenance import VerifyReport
from runner.store.remote import ObjectInfo, RemoteError, each
from runner.store.remote_store import RemoteStore, decode, file_name
from runner.store.rows import ResultRecord, Row, UploadRecord, read_row
from runner.store.store import GC_GRACE

T = TypeVar("T")
WIDTH = 16


@dataclass
class RemoteInfo:
    """What a shared store holds. Sizes in bytes."""

    url: str
    files: int = 0
    file_bytes: int = 0
    results: int = 0
    uploads: int = 0
    journal: int = 0  # entries, tombstones aside
    released: int = 0
    runs: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class RemoteGcReport:
    dry_run: bool = False
    results_removed: int = 0
    results_kept: int = 0
    files_removed: int = 0
    files_kept: int = 0
    bytes_freed: int = 0
    uploads_removed: int = 0
    journal_removed: int = 0
    journal_kept: int = 0
    runs_removed: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


async def _listing(store: RemoteStore, prefix: str) -> list[ObjectInfo]:
    return [info async for info in store.remote.list(prefix)]


async def _each(items: list[Any], call: Callable[[Any], Awaitable[T]]) -> list[T]:
    return await each(items, call, WIDTH)


def _key(info: ObjectInfo, prefix: str) -> str:
    return info.name.removeprefix(prefix).removesuffix(".json")


async def remote_info(store: RemoteStore) -> RemoteInfo:
    await store.open()
    info = RemoteInfo(store.url)
    for item in await _listing(store, ""):
        top = item.name.split("/", 1)[0]
        if top == "files":
            info.files += 1
            info.file_bytes += item.size
        elif top in ("results", "uploads", "runs"):
            setattr(info, top, getattr(info, top) + 1)
    for _, entry in await _journal(store):
        if entry is None:
            info.released += 1
        else:
            info.journal += 1
    return info


async def _journal(store: RemoteStore) -> list[tuple[str, JournalEntry | None]]:
    keys = [_key(item, "journal/") for item in await _listing(store, "journal/")]
    entries = await _each(keys, store.journal.get)
    return list(zip(keys, entries, strict=True))


async def _results(store: RemoteStore) -> list[tuple[ObjectInfo, ResultRecord | None]]:
    listed = await _listing(store, "results/")
    return list(zip(listed, await _each(listed, partial(_row, store, ResultRecord)), strict=True))


async def _row(store: RemoteStore, kind: type[Row], item: ObjectInfo) -> Row | None:
    """The record in object ``item``; None when gone or unreadable."""
    found = await store.remote.get(item.name)
    return read_row(kind, decode(found.data) if found is not None else None)


async def verify_remote(store: RemoteStore, staging: Path, *, repair: bool = False) -> VerifyReport:
    """Download and rehash every file; check every result's file is there and intact."""
    await store.open()
    report = VerifyReport(repaired=repair)
    files = await _listing(store, "files/")

    async def check(item: ObjectInfo) -> bool:
        temp = staging / f"verify.{uuid.uuid4().hex}"
        try:
            if await store.remote.download(item.name, temp) is None:
                return True  # removed meanwhile
            digest = await asyncio.to_thread(_sha256, temp)
        finally:
            temp.unlink(missing_ok=True)
        report.files_checked += 1
        report.bytes_checked += item.size
        return digest == item.name.rsplit("/", 1)[-1]

    intact = await _each(files, check)
    bad = {item.name for item, ok in zip(files, intact, strict=True) if not ok}
    present = {item.name for item in files} - bad
    report.corrupt = sorted(name.rsplit("/", 1)[-1] for name in bad)
    for item, record in await _results(store):
        key = _key(item, "results/")
        if record is None:
            report.unreadable.append(key)
        elif file_name(record.output.sha256) not in present:
            report.missing.append(key)
        else:
            continue
        if repair:
            await store.remote.delete(item.name)
            report.records_removed += 1
    if repair:
        await _each(sorted(bad), store.remote.delete)
        report.files_removed = len(bad)
    return report


async def gc_remote(
    store: RemoteStore,
    keep_keys: set[str],
    *,
    dry_run: bool = False,
    grace: float = GC_GRACE,
) -> RemoteGcReport:
    """Remove results no lockfile keeps, files no kept result names, expired uploads,
    tombstones and dead bare claims older than the grace period, old heartbeats."""
    await store.open()
    report = RemoteGcReport(dry_run=dry_run)
    now = time.time()  # against an hour's grace, the machines' clocks agree well enough
    recent = now - grace
    referenced: set[str] = set()
    recorded: set[str] = set()
    doomed: list[str] = []
    for item, record in await _results(store):
        key = _key(item, "results/")
        if key in keep_keys or item.modified > recent:
            report.results_kept += 1
            if record is not None:
                referenced.add(record.output.sha256)
                recorded.add(key)
            continue
        report.results_removed += 1
        doomed.append(item.name)
    await _remove(store, doomed, dry_run)  # the records before the files they name
    doomed = []
    for item in await _listing(store, "files/"):
        if item.name.rsplit("/", 1)[-1] in referenced or item.modified > recent:
            report.files_kept += 1
            continue
        report.files_removed += 1
        report.bytes_freed += item.size
        doomed.append(item.name)
    uploads = await _listing(store, "uploads/")
    read = await _each(uploads, partial(_row, store, UploadRecord))
    for item, upload in zip(uploads, read, strict=True):
        if upload is None or not upload.usable(now, 0.0):
            report.uploads_removed += 1
            doomed.append(item.name)
    await _remove(store, doomed, dry_run)
    await _gc_journal(store, report, recorded, recent)
    runs = [item.name for item in await _listing(store, "runs/") if item.modified < recent]
    report.runs_removed = len(runs)
    await _remove(store, runs, dry_run)
    return report


async def _remove(store: RemoteStore, names: list[str], dry_run: bool) -> None:
    """Delete ``names``, many at once (gc of a big bucket is thousands of requests)."""
    if not dry_run:
        await _each(names, store.remote.delete)


async def _gc_journal(
    store: RemoteStore, report: RemoteGcReport, recorded: set[str], recent: float
) -> None:
    """Tombstones past the grace go; a dead run's bare claim (nothing was sent) and a dead
    run's submitted job whose result is recorded (it was collected) become tombstones.
    Everything else may be money at fal, or a live run's: kept."""
    for item in await _listing(store, "journal/"):
        key = _key(item, "journal/")
        # One read: the entry, or (None and an ETag) a tombstone, or nothing at all.
        entry, etag = await store.journal.read(key)
        if entry is None and etag is not None:
            if item.modified < recent:
                report.journal_removed += 1
                if not report.dry_run:
                    with contextlib.suppress(RemoteError):
                        # Only if still the very tombstone we listed.
                        now = await store.remote.head(item.name)
                        if now is not None and now.etag == item.etag:
                            await store.remote.delete(item.name)
            continue
        if entry is None:
            continue
        done = entry.state == "claimed" or (entry.state == "submitted" and key in recorded)
        dead = done and not await store.journal.owner_alive(entry.owner)
        if dead and (report.dry_run or await store.journal.drop_if_unchanged(key, entry)):
            report.journal_removed += 1
            continue
        report.journal_kept += 1


def _sha256(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()

"""Looking after a store: what it holds (:func:`store_info`), whether it is intact
(:func:`verify_store`), and removing what no lockfile needs (:func:`gc_store`).

gc never removes a journal entry for a submitted job or one whose owner may be alive: those
stand for money in flight. It spares anything younger than a grace period, because another
run may be between landing a file and recording it, or between recording results and
writing the lockfile that would keep them.
"""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from runner.store.blobs import fsync_dir, hash_path
from runner.store.store import GC_GRACE, Store


@dataclass(frozen=True)
class StoreInfo:
    """What a store holds. Sizes in bytes."""

    root: str
    files: int
    file_bytes: int
    results: int
    uploads: int
    journal: int
    submitted: int
    hashes: int
    tmp_files: int
    disk_bytes: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class VerifyReport:
    """Files rehashed, what was wrong, and (with repair) what was removed.

    ``corrupt``: stored files whose content does not match their name (or whose name is not
    a hash). ``missing``: result keys whose output file is absent (and not in a shared store
    this one is the near cache of) or corrupt.
    ``unreadable``: result keys whose record cannot be read.
    """

    files_checked: int = 0
    bytes_checked: int = 0
    corrupt: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)
    repaired: bool = False
    files_removed: int = 0
    records_removed: int = 0

    @property
    def clean(self) -> bool:
        return not (self.corrupt or self.missing or self.unreadable)

    @property
    def ok(self) -> bool:
        """Nothing wrong, or everything wrong was removed."""
        return self.clean or self.repaired

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "clean": self.clean, "ok": self.ok}


@dataclass
class GcReport:
    """What gc removed (or, with ``dry_run``, would remove)."""

    dry_run: bool = False
    results_removed: int = 0
    results_kept: int = 0
    # Of those kept, the ones no lockfile names, spared only for being younger than the grace
    # period (and the files only they use): a gc that removes nothing says so.
    results_in_grace: int = 0
    files_removed: int = 0
    files_kept: int = 0
    files_in_grace: int = 0
    bytes_in_grace: int = 0
    bytes_freed: int = 0
    uploads_removed: int = 0
    journal_removed: int = 0
    journal_kept: int = 0
    hashes_removed: int = 0
    tmp_removed: int = 0
    staging_removed: int = 0  # directories of runs that died (their lock is free)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def store_info(store: Store) -> StoreInfo:
    files = file_bytes = 0
    for _, path in store.files.entries():
        try:
            file_bytes += path.stat().st_size
        except OSError:
            continue
        files += 1
    counts = store.counts()
    return StoreInfo(
        root=str(store.root),
        files=files,
        file_bytes=file_bytes,
        results=counts["results"],
        uploads=counts["uploads"],
        journal=counts["journal"],
        submitted=sum(1 for _, entry in store.in_flight() if entry.may_have_been_sent),
        hashes=counts["hashes"],
        tmp_files=sum(1 for _ in store.files.temps()),
        disk_bytes=tree_size(store.root),
    )


def verify_store(store: Store, *, repair: bool = False) -> VerifyReport:
    report = VerifyReport(repaired=repair)
    bad: set[str] = set()
    for name, path in store.files.entries():
        report.files_checked += 1
        try:
            actual = hash_path(path)
        except OSError:
            continue  # removed meanwhile
        report.bytes_checked += actual.size
        if actual.sha256 != name:
            report.corrupt.append(name)
            bad.add(name)
            if repair:
                path.unlink(missing_ok=True)
                report.files_removed += 1
    # A result kept from a shared store may have its file only there (fetched when needed).
    shared = store.shared_keys()
    for key, record in list(store.results()):
        if record is None:
            report.unreadable.append(key)
        elif record.output.sha256 in bad or not (
            store.has_file(record.output.sha256, record.output.size) or key in shared
        ):
            report.missing.append(key)
        else:
            continue
        if repair and store.delete_result(key):
            report.records_removed += 1
    return report


def gc_store(
    store: Store, keep_keys: set[str], *, dry_run: bool = False, grace: float = GC_GRACE
) -> GcReport:
    """Remove results whose keys are not in ``keep_keys``, files no kept result names,
    expired uploads, dead claims, forgotten inputs and stale temporary files. What other parts
    keep under the root (the local backend's state, run logs) is theirs to prune."""
    report = GcReport(dry_run=dry_run)
    now = time.time()
    recent = now - grace
    referenced: set[str] = set()
    for key, record in list(store.results()):
        if key in keep_keys or (record is not None and record.recorded_at > recent):
            report.results_kept += 1
            report.results_in_grace += key not in keep_keys
            if record is not None:
                referenced.add(record.output.sha256)
            continue
        report.results_removed += 1
        if not dry_run:
            store.delete_result(key)

    for name, path in list(store.files.entries()):
        try:
            st = path.stat()
        except OSError:
            continue
        if name in referenced:
            report.files_kept += 1
            continue
        # Recent, or landed again while gc looked (then it is recent too): spared.
        if st.st_mtime > recent or not (dry_run or _remove_unless_touched(store, path, recent)):
            report.files_kept += 1
            report.files_in_grace += 1
            report.bytes_in_grace += st.st_size
            continue
        report.files_removed += 1
        report.bytes_freed += st.st_size

    for key, upload in list(store.uploads()):
        if upload is None or not upload.usable(now, 0.0):
            report.uploads_removed += 1
            if not dry_run:
                store.delete_upload(key)

    for key, entry in store.in_flight():
        # A claim whose owner is dead sent nothing (the body is journaled before the POST);
        # a submitting or submitted entry may be money at fal.
        dead_claim = entry.state == "claimed" and not store.owner_alive(entry.owner)
        if dead_claim and (dry_run or store.drop_stale_entry(key, entry)):
            report.journal_removed += 1
            continue
        report.journal_kept += 1

    report.hashes_removed = store.forget_missing_inputs(dry_run=dry_run)
    report.staging_removed = store.sweep_staging(dry_run=dry_run)
    for path in list(store.files.stale_temps(older_than=grace)):
        report.tmp_removed += 1
        if not dry_run:
            path.unlink(missing_ok=True)
    return report


def _remove_unless_touched(store: Store, path: Path, recent: float) -> bool:
    """Remove the stored file ``path``, unless a run landed the same content since gc
    looked at it (its mtime is then after ``recent``: see BlobStore._land, which touches
    the file it finds, and lands its own copy if the file is gone). The file is renamed
    aside first, then looked at again: a landing that touched it before the rename is
    seen, and the file put back; one after finds it gone and lands its own. False when
    kept."""
    aside = store.files.tmp / f".gc-{os.getpid()}-{uuid.uuid4().hex}"
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return True  # removed by another gc meanwhile
    if os.stat(aside).st_mtime <= recent:
        os.unlink(aside)
        return True
    # Put back (over a copy a run may have landed meanwhile: the same bytes), durably.
    os.replace(aside, path)
    fsync_dir(path.parent)
    return False


def tree_size(root: Path) -> int:
    """Bytes in the files under ``root`` (0 when it does not exist)."""
    total = 0
    for directory, _, names in os.walk(root):
        for name in names:
            try:
                total += os.lstat(os.path.join(directory, name)).st_size
            except OSError:
                continue
    return total

"""Content hashes of input files, remembered by their stat so big inputs are hashed once.

An entry is trusted while the file's (size, mtime_ns, ctime_ns, inode, device) are unchanged.
ctime is there because it changes on every write even when a tool restores the mtime. Like
git's "racily clean" rule, a file modified within the last few seconds is not remembered: a
second write inside the same timestamp tick would leave its stat unchanged.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

from runner.errors import DiskFull
from runner.store.blobs import hash_path
from runner.store.rows import SCHEMA, RecordError, StoredFile, check_version, req_int
from runner.store.table import StoreError, Table

# Seconds: coarser than any filesystem's timestamp granularity (FAT: 2 s).
RACY_WINDOW = 3.0

Fingerprint = tuple[int, int, int, int, int]


def fingerprint(st: os.stat_result) -> Fingerprint:
    return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev)


class HashCache:
    """``hash_file`` with a persistent stat cache plus an in-process memo over it."""

    def __init__(self, table: Table) -> None:
        self.table = table
        self._memo: dict[str, tuple[Fingerprint, StoredFile]] = {}

    def known(self, path: Path) -> StoredFile | None:
        """The hash of ``path`` if it is remembered for the file as it is now; nothing is
        read but the file's stat, nothing written (a read-only store answers too)."""
        return self._known(path)[2]

    def _known(self, path: Path) -> tuple[str, os.stat_result, StoredFile | None]:
        resolved = str(path.resolve())
        try:
            st = os.stat(resolved)
        except OSError as exc:
            raise StoreError(f"cannot read {path}: {exc.strerror or exc}") from exc
        stamp = fingerprint(st)
        memo = self._memo.get(resolved)
        if memo is not None and memo[0] == stamp:
            return resolved, st, memo[1]
        known = self._lookup(resolved)
        if known is not None and known[0] == stamp:
            self._memo[resolved] = known
            return resolved, st, known[1]
        return resolved, st, None

    def hash_file(self, path: Path) -> StoredFile:
        resolved, st, known = self._known(path)
        if known is not None:
            return known
        stamp = fingerprint(st)
        try:
            stored = hash_path(Path(resolved))
            after = fingerprint(os.stat(resolved))
        except OSError as exc:
            raise StoreError(f"cannot read {path}: {exc.strerror or exc}") from exc
        # Remember only a hash of a file that held still while we read it and is not racy.
        if after == stamp and st.st_mtime_ns < (time.time() - RACY_WINDOW) * 1e9:
            self._memo[resolved] = (stamp, stored)
            # Only a cache: on a full disk the hash is still right, just not remembered.
            with contextlib.suppress(DiskFull):
                self.table.set(resolved, _entry(stamp, stored))
        return stored

    def _lookup(self, resolved: str) -> tuple[Fingerprint, StoredFile] | None:
        data = self.table.get(resolved)
        if data is None:
            return None
        try:
            check_version(data)
            stamp = (
                req_int(data, "size"),
                req_int(data, "mtime_ns"),
                req_int(data, "ctime_ns"),
                req_int(data, "ino"),
                req_int(data, "dev"),
            )
            return stamp, StoredFile.from_dict(data)
        except RecordError:
            return None

    def forget_missing(self, *, dry_run: bool = False) -> int:
        """Drop entries for paths that no longer exist; how many."""
        dropped = 0
        for key in list(self.table):
            if not os.path.exists(key):
                dropped += 1
                if not dry_run:
                    self.table.delete(key)
                self._memo.pop(key, None)
        return dropped


def _entry(stamp: Fingerprint, stored: StoredFile) -> dict[str, object]:
    size, mtime_ns, ctime_ns, ino, dev = stamp
    return {
        "v": SCHEMA,
        "sha256": stored.sha256,
        "size": size,
        "mtime_ns": mtime_ns,
        "ctime_ns": ctime_ns,
        "ino": ino,
        "dev": dev,
    }

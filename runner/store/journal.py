"""The job journal: who is about to submit, or has submitted, the job for a cache key.

This is what makes "never pay twice" hold across crashes and concurrent runs. A runner
claims a key before submitting (an atomic insert: one winner), records the job's handle the
moment fal accepts it (durable before the call returns), and releases the key once the
result is recorded. A restarted run finds "submitted" entries and re-attaches to the job;
an entry whose owner died is taken over by compare-and-swap, so two survivors cannot both
take it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from runner.store.owner import Owner
from runner.store.rows import (
    SCHEMA,
    RecordError,
    check_version,
    opt_mapping,
    opt_str,
    req_float,
    req_str,
)
from runner.store.table import StoreError, Table

State = Literal["claimed", "submitted"]


@dataclass(frozen=True)
class JournalEntry:
    """A claim on a key (nothing sent yet) or a submitted job (``endpoint`` and ``handle``,
    the :meth:`runner.fal.status.JobHandle.as_dict` of the job, are set)."""

    state: State
    owner: Owner
    endpoint: str | None = None
    handle: Mapping[str, Any] | None = None
    at: float = field(default_factory=time.time)

    def as_dict(self) -> dict[str, Any]:
        return {
            "v": SCHEMA,
            "state": self.state,
            "owner": self.owner.as_dict(),
            "endpoint": self.endpoint,
            "handle": None if self.handle is None else dict(self.handle),
            "at": self.at,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> JournalEntry:
        check_version(data)
        state = req_str(data, "state")
        if state not in ("claimed", "submitted"):
            raise RecordError(f"state: {state!r}")
        owner = opt_mapping(data, "owner")
        if owner is None:
            raise RecordError("owner: missing")
        return cls(
            state="claimed" if state == "claimed" else "submitted",
            owner=Owner.from_dict(owner),
            endpoint=opt_str(data, "endpoint"),
            handle=opt_mapping(data, "handle"),
            at=req_float(data, "at"),
        )


class JournalConflict(StoreError):
    """Our entry for a key was taken over by another run (it judged us dead)."""

    def __init__(self, key: str, entry: JournalEntry) -> None:
        super().__init__(
            f"the job for cache key {key[:12]}… is now held by {entry.owner.describe()}",
            hint="two runs share this store and one judged the other dead; "
            "check for duplicate jobs on fal",
        )
        self.key = key
        self.entry = entry


class Journal:
    """Journal operations over one durable :class:`Table`; each write is one transaction."""

    def __init__(self, table: Table) -> None:
        self.table = table

    def get(self, key: str) -> JournalEntry | None:
        try:
            raw = self.table.get_strict(key)
        except ValueError as exc:
            raise _unreadable(key, str(exc)) from exc
        return self._decode(key, raw)

    def claim(self, key: str, owner: Owner) -> JournalEntry | None:
        """Claim ``key``: None when we now hold it, else the entry someone else holds."""
        with self.table.transact():
            if self.table.add(key, JournalEntry("claimed", owner).as_dict()):
                return None
            # Same transaction: the entry cannot vanish between the failed add and this read.
            return self.get(key)

    def record_submission(
        self, key: str, owner: Owner, endpoint: str, handle: Mapping[str, Any]
    ) -> None:
        """Turn our claim into a submitted job. Durable when this returns.

        Recorded even if our claim has vanished (the job exists either way); refused only
        when another run holds the key, since overwriting would lose its handle.
        """
        entry = JournalEntry("submitted", owner, endpoint, dict(handle))
        with self.table.transact():
            current = self.get(key)
            if current is not None and current.owner != owner:
                raise JournalConflict(key, current)
            self.table.set(key, entry.as_dict())

    def take_over(self, key: str, stale: JournalEntry, owner: Owner) -> bool:
        """Replace ``stale`` (whose owner is dead) by the same entry owned by ``owner``; False
        when the entry changed meanwhile (someone else took it, or it was released)."""
        with self.table.transact():
            if not self._unchanged(key, stale):
                return False
            fresh = JournalEntry(stale.state, owner, stale.endpoint, stale.handle)
            self.table.set(key, fresh.as_dict())
            return True

    def release(self, key: str, owner: Owner | None = None) -> bool:
        """Drop the entry (only if ``owner`` holds it, when given); True when one was dropped."""
        if owner is None:
            return self.table.delete(key)
        with self.table.transact():
            current = self.get(key)
            if current is None or current.owner != owner:
                return False
            return self.table.delete(key)

    def drop_if_unchanged(self, key: str, stale: JournalEntry) -> bool:
        """Delete the entry only if it is still exactly ``stale`` (gc of dead claims)."""
        with self.table.transact():
            return self._unchanged(key, stale) and self.table.delete(key)

    def entries(self) -> list[tuple[str, JournalEntry]]:
        found: list[tuple[str, JournalEntry]] = []
        for key in self.table:
            entry = self.get(key)
            if entry is not None:
                found.append((key, entry))
        return found

    def _unchanged(self, key: str, stale: JournalEntry) -> bool:
        """The entry is still exactly ``stale`` (every field, the time included)."""
        raw = self.table.get(key)
        try:
            return raw is not None and JournalEntry.from_dict(raw) == stale
        except RecordError:
            return False

    def _decode(self, key: str, raw: dict[str, Any] | None) -> JournalEntry | None:
        if raw is None:
            return None
        try:
            return JournalEntry.from_dict(raw)
        except RecordError as exc:
            raise _unreadable(key, str(exc)) from exc


def _unreadable(key: str, why: str) -> StoreError:
    # Never guess about an entry that may stand for a paid job: stop and say so.
    return StoreError(
        f"the journal entry for cache key {key[:12]}… cannot be read ({why})",
        hint="it may come from another shotgraph version; finish or cancel that run first",
    )

"""The job journal: who is about to submit, or has submitted, the job for a cache key.

This is what makes "never pay twice" hold across crashes and concurrent runs. An entry goes
through three states, each one durable before the next step is taken:

- ``claimed``: a run holds the key (an atomic insert: one winner). Nothing has been sent.
  The slow work before a submit (uploading inputs, building the body) happens now.
- ``submitting``: the exact body is about to be POSTed, with its sha256, the endpoint and
  the time of each attempt. Written before the POST, so a run that dies during it leaves
  what the next run needs: the *identical* body to send again (never one rebuilt with new
  upload URLs), and what a reconciliation against fal's request listing needs to find the
  job if fal did receive it (endpoint, body hash, when).
- ``submitted``: fal accepted it; ``handle`` holds the job's URLs. A restarted run
  re-attaches to it instead of submitting again.

The key is released once the result is recorded. An entry whose owner died is taken over
by compare-and-swap, so two survivors cannot both take it.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
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

State = Literal["claimed", "submitting", "submitted"]
STATES: tuple[State, ...] = ("claimed", "submitting", "submitted")


@dataclass(frozen=True)
class JournalEntry:
    """One key's entry (see the module docstring for the states).

    ``body`` is the exact request body sent (URLs and all), ``body_sha256`` the sha256 of
    its canonical JSON (:func:`body_digest`), ``attempts`` the Unix times at which it was
    POSTed (more than one when a run that died mid-submit was taken over). ``handle`` is
    the :meth:`runner.fal.status.JobHandle.as_dict` of the accepted job. ``at`` is when the
    entry was last written.
    """

    state: State
    owner: Owner
    endpoint: str | None = None
    handle: Mapping[str, Any] | None = None
    at: float = field(default_factory=time.time)
    body: Mapping[str, Any] | None = None
    body_sha256: str | None = None
    attempts: tuple[float, ...] = ()

    @property
    def may_have_been_sent(self) -> bool:
        """Whether fal may have received this job (so submitting it again may pay twice)."""
        return self.state != "claimed"

    def as_dict(self) -> dict[str, Any]:
        return {
            "v": SCHEMA,
            "state": self.state,
            "owner": self.owner.as_dict(),
            "endpoint": self.endpoint,
            "handle": None if self.handle is None else dict(self.handle),
            "at": self.at,
            "body": None if self.body is None else dict(self.body),
            "body_sha256": self.body_sha256,
            "attempts": list(self.attempts),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> JournalEntry:
        check_version(data)
        state = req_str(data, "state")
        known = {name: name for name in STATES}
        if state not in known:
            raise RecordError(f"state: {state!r}")
        owner = opt_mapping(data, "owner")
        if owner is None:
            raise RecordError("owner: missing")
        attempts = data.get("attempts") or []
        if not isinstance(attempts, list) or not all(
            isinstance(t, int | float) and not isinstance(t, bool) for t in attempts
        ):
            raise RecordError(f"attempts: expected a list of times, got {attempts!r}")
        entry = cls(
            state=known[state],
            owner=Owner.from_dict(owner),
            endpoint=opt_str(data, "endpoint"),
            handle=opt_mapping(data, "handle"),
            at=req_float(data, "at"),
            body=opt_mapping(data, "body"),
            body_sha256=opt_str(data, "body_sha256"),
            attempts=tuple(float(t) for t in attempts),
        )
        if entry.state == "submitting" and (entry.body is None or entry.endpoint is None):
            raise RecordError("a submitting entry needs its endpoint and body")
        return entry


def body_digest(body: Mapping[str, Any]) -> str:
    """The sha256 of ``body`` as canonical JSON (sorted keys, no spaces, UTF-8): the same
    for the same request however its keys were ordered, so a reconciliation can match it
    against the inputs fal lists for its requests."""
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


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


def submitting_entry(
    key: str,
    current: JournalEntry | None,
    owner: Owner,
    endpoint: str,
    body: Mapping[str, Any],
    digest: str,
) -> JournalEntry:
    """The "submitting" entry that replaces ``current`` (the local and the bucket journal
    both write this one). JournalConflict when another run holds the key; an earlier
    attempt at the same body (a taken-over submit) is kept in ``attempts``."""
    if current is not None and current.owner != owner:
        raise JournalConflict(key, current)
    earlier = current.attempts if current and current.body_sha256 == digest else ()
    return JournalEntry(
        "submitting",
        owner,
        endpoint,
        body=dict(body),
        body_sha256=digest,
        attempts=(*earlier, time.time()),
    )


def submitted_entry(
    key: str,
    current: JournalEntry | None,
    owner: Owner,
    endpoint: str,
    handle: Mapping[str, Any],
) -> JournalEntry:
    """The "submitted" entry that replaces ``current``: made even if ours vanished (the
    job exists either way), keeping the body, its hash and the attempts for
    reconciliation. JournalConflict when another run holds the key."""
    if current is not None and current.owner != owner:
        raise JournalConflict(key, current)
    base = current if current is not None else JournalEntry("claimed", owner)
    return replace(base, state="submitted", endpoint=endpoint, handle=dict(handle), at=time.time())


class Journal:
    """Journal operations over one durable :class:`Table`; each write is one transaction.

    The usual writes of a run on its own entry (submit, submission, release) are one
    conditional statement, matched on the entry's owner and state; anything else (a
    taken-over entry, another run's, none) goes the long way, read and decided here."""

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
        claim = JournalEntry("claimed", owner).as_dict()
        if self.table.add(key, claim):  # one atomic insert: the usual case, a free key
            return None
        with self.table.transact():
            if self.table.add(key, claim):  # released since
                return None
            # Same transaction: the entry cannot vanish between the failed add and this read.
            return self.get(key)

    def begin_submit(
        self, key: str, owner: Owner, endpoint: str, body: Mapping[str, Any], digest: str
    ) -> JournalEntry:
        """Record that ``body`` is about to be POSTed to ``endpoint``, now. Durable when
        this returns; call it last before the POST, with nothing slow in between.

        Refused (JournalConflict) when another run holds the key: it is that run's job.
        An earlier attempt at the same body (a taken-over submit) is kept in ``attempts``.
        """
        # The usual case, our claim with nothing tried yet, in one statement: the entry
        # submitting_entry makes of it (no earlier attempt to keep).
        fresh = JournalEntry(
            "submitting",
            owner,
            endpoint,
            body=dict(body),
            body_sha256=digest,
            attempts=(time.time(),),
        )
        mine = {"owner": owner.as_dict(), "state": "claimed", "body_sha256": None}
        if self.table.replace_if(key, fresh.as_dict(), mine):
            return fresh
        with self.table.transact():
            entry = submitting_entry(key, self.get(key), owner, endpoint, body, digest)
            self.table.set(key, entry.as_dict())
        return entry

    def record_submission(
        self, key: str, owner: Owner, endpoint: str, handle: Mapping[str, Any]
    ) -> None:
        """Turn our entry into a submitted job. Durable when this returns.

        Recorded even if our entry has vanished (the job exists either way); refused only
        when another run holds the key, since overwriting would lose its handle. The body,
        its hash and the attempts stay, for reconciliation.
        """
        # The usual case, our entry, in one statement: what submitted_entry makes of it.
        patch = {"state": "submitted", "endpoint": endpoint, "handle": dict(handle)}
        if self.table.patch_if(key, {**patch, "at": time.time()}, {"owner": owner.as_dict()}):
            return
        with self.table.transact():
            entry = submitted_entry(key, self.get(key), owner, endpoint, handle)
            self.table.set(key, entry.as_dict())

    def take_over(self, key: str, stale: JournalEntry, owner: Owner) -> bool:
        """Replace ``stale`` (whose owner is dead) by the same entry owned by ``owner``; False
        when the entry changed meanwhile (someone else took it, or it was released)."""
        with self.table.transact():
            if not self._unchanged(key, stale):
                return False
            fresh = replace(stale, owner=owner, at=time.time())
            self.table.set(key, fresh.as_dict())
            return True

    def release(self, key: str, owner: Owner | None = None) -> bool:
        """Drop the entry (only if ``owner`` holds it, when given); True when one was dropped."""
        if owner is None:
            return self.table.delete(key)
        if self.table.delete_if(key, {"owner": owner.as_dict()}):  # ours: one statement
            return True
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

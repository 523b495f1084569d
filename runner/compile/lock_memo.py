"""The lockfile a no-op run need not build again.

After a run writes its lockfile (or finds it already right), a note beside the compile memo
says what that lock was made from (the memo, every node's result, the outputs) and what the
file held (its stat and hash). A later run from the same memo, with every node's result the
same, whose lockfile still is that very file, would build the same lock and find it
unchanged: it skips building and comparing it, and says "unchanged" as it would have. The
lock is still only ever rewritten when it changes. Any doubt (a result without a memo, a
node without a result, the file touched, a note unreadable): the full comparison.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runner.compile.memo import code_signature
from runner.store.hashcache import RACY_WINDOW, fingerprint
from runner.store.memos import read_note, write_note

if TYPE_CHECKING:
    from runner.compile.check import CheckResult
    from runner.store import ResultRecord


@dataclass(frozen=True)
class LockSeal:
    """What the lock of one run is made from; whether the lockfile is known to hold it."""

    store: Path
    note: str
    made_from: str
    lock_file: Path

    def holds(self) -> bool:
        """Whether the lockfile is the one a run of the very same inputs left, untouched.
        One the note found written moments ago, and that has settled since, is noted again
        (from then on, its stat tells it)."""
        note = read_note(self.store, self.note)
        if note is None or note.get("made_from") != self.made_from:
            return False
        if not _describes(note, self.lock_file):
            return False
        if note.get("settled") is not True:
            with contextlib.suppress(OSError):
                now = list(fingerprint(os.stat(self.lock_file)))
                # The file just found right, by its stat: not one written since (re-read,
                # a rewrite would be noted as made from these inputs).
                if now == note.get("stat") and _settled(now):
                    write_note(self.store, self.note, dict(note) | {"settled": True})
        return True

    def keep(self, expected: bytes | None = None) -> None:
        """Remember the lockfile as it is now (just written, or found right) for these inputs;
        with ``expected``, only if it holds exactly those bytes (not a rewrite since)."""
        state = _file_state(self.lock_file)
        if state is None:
            return
        if expected is not None and state["sha256"] != hashlib.sha256(expected).hexdigest():
            return
        settled = {"settled": _settled(state["stat"])}
        write_note(self.store, self.note, {"made_from": self.made_from} | state | settled)


def lock_known_good(store: Path, lock_file: Path) -> bool:
    """Whether ``lock_file`` is, untouched, one this very code wrote or found right (so it
    reads without an error): what a plan need not parse unless a node's reason needs it."""
    note = read_note(store, _note_name(lock_file))
    return note is not None and _describes(note, lock_file)


def _describes(note: Mapping[str, Any], lock_file: Path) -> bool:
    """Whether ``note`` holds the lockfile's stat and hash as it is now, read by this code.
    A lockfile the note found settled is told by its stat alone (a lock of 5,000 nodes is
    8 MB to read and hash), as the store's hash cache tells a file (``hashcache``)."""
    if note.get("settled") is True and note.get("code") == code_signature():
        try:
            now = list(fingerprint(os.stat(lock_file)))
        except OSError:
            return False
        if now == note.get("stat"):
            return True
    state = _file_state(lock_file)
    return state is not None and all(note.get(k) == v for k, v in state.items())


def _settled(stat: list[int]) -> bool:
    """Whether a file of this fingerprint was last written (its mtime and ctime) longer
    than ``RACY_WINDOW`` ago: any later write then shows in its ctime (git's "racily
    clean": one within the same clock tick as the stat could not)."""
    _, mtime_ns, ctime_ns, _, _ = stat
    return max(mtime_ns, ctime_ns) < (time.time() - RACY_WINDOW) * 1e9


def _file_state(lock_file: Path) -> dict[str, Any] | None:
    """The lockfile's stat and hash, and the code that reads it; None when unreadable."""
    try:
        with open(lock_file, "rb") as handle:
            before = fingerprint(os.fstat(handle.fileno()))
            digest = hashlib.sha256(handle.read()).hexdigest()
            after = fingerprint(os.fstat(handle.fileno()))
    except OSError:
        return None
    if before != after:
        return None  # written while read
    return {"stat": list(before), "sha256": digest, "code": code_signature()}


def _note_name(lock_file: Path) -> str:
    return f"{hashlib.sha256(str(lock_file).encode()).hexdigest()[:32]}.lock"


def lock_seal(
    result: CheckResult, records: Mapping[str, ResultRecord], lock_file: Path, store: Path
) -> LockSeal | None:
    """The seal of the lock a run builds from ``result`` and ``records``; None when it
    cannot be told from them alone (no memo behind the result, a node without a result,
    whose entry the previous lock would give)."""
    compiled = result.compiled
    if result.memo_id is None or compiled is None:
        return None
    if records.keys() != compiled.steps.keys():
        return None
    digest = hashlib.sha256(f"{result.memo_id}\0{lock_file}\0".encode())
    digest.update(repr(sorted((name, str(path)) for name, path in result.outputs.items())).encode())
    # Every field the store keeps of each result (a dataclass's repr costs ten times more).
    results = (f"\0{name}\0{records[name].as_dict()!r}" for name in compiled.steps)
    digest.update("".join(results).encode())
    return LockSeal(store, _note_name(lock_file), digest.hexdigest(), lock_file)


# Where a lock's entries start, as ``Lock.render`` writes it: the head's keys before, then
# one line per entry, each starting with its name at this indent (JSON strings hold no
# newline, so no other line can).
_NODES = b'\n  "nodes": {'
_ENTRY = "\n    "


def entries_of(lock_file: Path, names: Collection[str]) -> str | None:
    """The text of a lockfile :func:`lock_known_good` vouches for, with only the entries of
    ``names``: parsing every entry (or even the whole JSON) is most of reading a big lock,
    and a plan needs those of the nodes that are not cached. Each entry is found by its
    line: a sealed lock is ``Lock.render``'s text (``write_lock`` wrote it, or found the
    file equal to it byte for byte). None when one is not found, or on any other trouble
    (the caller reads it whole)."""
    try:
        data = lock_file.read_bytes()  # bytes: decoding 8 MB to find four lines is waste
        start = data.index(_NODES) + len(_NODES)
        document = json.loads(data[:start] + b"}}")
        at = start
        for name in sorted(names):  # the order of the entries: one pass over the file
            needle = f"{_ENTRY}{json.dumps(name, ensure_ascii=False)}: ".encode()
            found = data.find(needle, at)
            if found < 0:
                found = data.index(needle, start)  # not in that order after all
            at = found + len(needle)
            document["nodes"][name] = json.loads(data[at : data.index(b"\n", at)])
        return json.dumps(document)
    except (OSError, ValueError, KeyError, TypeError):
        return None

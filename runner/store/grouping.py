"""Group commit on one thread (the store's writer, see :mod:`runner.store.writer`): the
durable tables written inside a group, and the directories whose renames it made, are
synced once each at its end, side by side, before anyone acts on what it wrote.

Inside a group, a durable table's writes that follow one another also share one SQLite
transaction (:meth:`Group.hold`): a burst of queued writes commits once, not once a
write, since each commit rewrites the pages every write touches (the row's, its index's,
the counters diskcache keeps). A group holds one such transaction at a time (a write to
another table commits the one held first: no lock is ever waited for while another is
held), and the writer commits before it waits for more writes
(:meth:`Group.commit_held`), so no other process waits on a lock held while idle."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Protocol

_group = threading.local()
# Syncs a group's second and later logs and directories beside the first (see sync_logs);
# its threads start on first use and only wait on the disk.
_SYNCER = ThreadPoolExecutor(4, thread_name_prefix="shotgraph-sync")


class Log(Protocol):
    """A durable table's write-ahead log, as a group syncs it."""

    def sync_log(self) -> None: ...


class Group:
    """What :func:`grouped_commits` yields: ``sync`` may be set until the group ends.

    ``logs``, the durable tables written in the group; ``dirs``, each directory a rename
    of the group must be made durable in: how to sync it, and what to do once it is (see
    :func:`sync_dir_later`); ``held``, the one transaction open on this thread's
    connections, if any: whose it is (a table) and how to end it (True: commit; False:
    roll back)."""

    def __init__(self, sync: bool) -> None:
        self.sync = sync
        self.logs: dict[Log, None] = {}
        self.dirs: dict[Path, tuple[Callable[[], None], list[Callable[[], None]]]] = {}
        self.held: tuple[object, Callable[[bool], None]] | None = None
        # A commit of held writes that failed before the group's end: their callers have
        # not heard back yet, and must not hear success.
        self.failure: BaseException | None = None

    def holds(self, owner: object) -> bool:
        """Whether the transaction open now is ``owner``'s."""
        return self.held is not None and self.held[0] is owner

    def hold(self, owner: object, end: Callable[[bool], None]) -> None:
        """``owner`` (a table) has opened a transaction for the group's next writes (any
        other's is committed first: see :meth:`commit_held`): ``end`` commits it (True)
        or rolls it back (False), at the latest with the group."""
        self.held = (owner, end)

    def commit_held(self) -> None:
        """Commit the transaction open now, if any (the next write opens its table's
        again). A failure is raised, and fails the group: its writes are not all saved."""
        self._end_held(True)

    def _end_held(self, commit: bool) -> None:
        if self.held is None:
            return
        (_, end), self.held = self.held, None
        try:
            end(commit)
        except BaseException as exc:
            self.failure = self.failure or exc
            raise


def current() -> Group | None:
    """The group open on this thread, if any."""
    group: Group | None = getattr(_group, "open", None)
    return group


@contextmanager
def grouped_commits(*, sync: bool = True) -> Iterator[Group]:
    """Group commit, on this thread: inside, a durable table's commits are not fsynced one
    by one; at the end each durable table written to gets one fsync of its write-ahead
    log, which makes every commit of the group durable at once (SQLite appends commits to
    the log in order, so syncing the file syncs them all). Without ``sync`` (as the
    yielded :class:`Group` says at the end), none: the commits reach the disk with a
    later sync of that log, or SQLite's next checkpoint (which syncs the log first).
    The directories of files landed inside (:func:`sync_dir_later`) are synced at the end
    in any case, with the logs. Nothing written inside may be acted on by anyone until
    this returns: it is the store's writer thread that groups, and it answers the
    callers only after the sync."""
    if current() is not None:
        raise RuntimeError("grouped_commits does not nest")
    group = Group(sync)
    _group.open = group
    try:
        try:
            yield group
        except BaseException:
            with suppress(Exception):  # the failure raised is the body's
                group._end_held(False)
            raise
        group.commit_held()  # before the syncs, which make the commits durable
        if group.failure is not None:  # an earlier commit lost writes (raised to a caller)
            raise group.failure
    finally:
        _group.open = None
        if group.sync or group.dirs:
            dirs = list(group.dirs.values())
            sync_logs(list(group.logs) if group.sync else [], [sync for sync, _ in dirs])
            for _, thens in dirs:  # only once every sync succeeded
                for then in thens:
                    then()


def sync_dir_later(
    directory: Path, sync: Callable[[], None], then: Callable[[], None] | None = None
) -> bool:
    """Inside a group on this thread: ``directory`` (where a file was just renamed in) is
    synced by ``sync`` at the group's end, once however many files landed in it, beside
    the logs and before any caller hears back; then ``then`` runs. True. Outside a group:
    False, and the caller syncs it now."""
    group = current()
    if group is None:
        return False
    _, thens = group.dirs.setdefault(directory, (sync, []))
    if then is not None:
        thens.append(then)
    return True


def sync_logs(logs: list[Log], also: Sequence[Callable[[], None]] = ()) -> None:
    """Sync each log, and make the ``also`` syncs (directories), at once: the others on
    threads of their own while this one makes the first (two syncs cost about one and a
    half: 5.1 against 8.1 ms, measured here at load 14). Every one is made, or tried,
    before a failure is raised."""
    calls: list[Callable[[], None]] = [log.sync_log for log in logs]
    calls += also
    here, others = calls[:1], list[Future[None]]()
    for call in calls[1:]:
        try:
            others.append(_SYNCER.submit(call))
        except RuntimeError:  # the interpreter is exiting (no new threads): here, in turn
            here.append(call)
    failure: BaseException | None = None
    for call in here:
        try:
            call()
        except BaseException as exc:
            failure = failure or exc
    for other in others:
        try:
            other.result()
        except BaseException as exc:
            failure = failure or exc
    if failure is not None:
        raise failure

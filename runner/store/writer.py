"""The store's writer thread: where a run's local store writes go, so that a journal write's
fsync never holds the event loop while it reads the other jobs' answers.

The thread commits in groups: the writes queued while it was busy run one after the other
(in one transaction per database while they follow each other), then one fsync per
database written makes them all durable, and only then is any of their callers answered
(see :func:`runner.store.grouping.grouped_commits`). Sixteen jobs recording at once pay
for a few fsyncs, not sixty."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import queue
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

from runner.store.grouping import current, grouped_commits

T = TypeVar("T")
# A write, the loop future its caller awaits, whether it must be fsynced before the answer,
# and a write to make once it is durable (see off_loop's ``then``).
_Item = tuple[Callable[[], Any], "asyncio.Future[Any]", bool, Callable[[], Any] | None]
_Answer = tuple["asyncio.Future[Any]", bool, Any]
# Writes one group takes at most, so that a steady stream cannot hold answers back long.
GROUP_LIMIT = 64
# How long a group that must sync may wait for the writes of other steps (seconds): a few
# syncs' time on a busy disk, nothing beside a fal job's seconds. It waits only while
# writes come this much faster than that (see _Writer._patience): at two to a wait, a
# thousand quick nodes sync 0.6-0.7 times a node instead of 0.9-1.1 (runner_overhead,
# paired runs), and a run of fal's jobs, writing a few times a second, never waits.
GROUP_WAIT = 0.020
_WRITES_PER_WAIT = 2
# The weight of the newest gap between two writes in their running mean.
_GAP_WEIGHT = 0.1


class _Writer:
    """One thread running the store's writes in order.

    One thread, because several would contend for SQLite's write lock, and SQLite's busy
    handler backs off by sleeping (up to 100 ms at a time).
    """

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[_Item]
        self._queue = queue.SimpleQueue()
        self._started = False
        self._lock = threading.Lock()
        self._busy = threading.Lock()  # held while a write runs
        self._steps = 0  # steps under way that will write (see expect_writes)
        self._last = 0.0  # when the last write was queued
        self._gap = GROUP_WAIT  # running mean of the time between two writes
        self._quiet = False  # whether the last write came GROUP_WAIT or more after the one before

    def submit(
        self,
        call: Callable[[], T],
        future: asyncio.Future[T],
        *,
        sync: bool,
        then: Callable[[], Any] | None = None,
    ) -> None:
        """Queue ``call`` (and ``then``, once it is durable); ``future`` (of the running
        loop) gets the outcome of ``call``, or the failure of ``then``."""
        now = time.monotonic()
        self._quiet = now - self._last >= GROUP_WAIT
        gap = min(now - self._last, GROUP_WAIT)
        self._gap, self._last = self._gap + _GAP_WEIGHT * (gap - self._gap), now
        self._queue.put((call, future, sync, then))
        if self._started:  # set once, under the lock: no lock needed to see it set
            return
        with self._lock:
            if not self._started:
                # A daemon: every write is awaited by the step that asked for it, so none
                # is pending when the run ends.
                threading.Thread(target=self._run, name="shotgraph-store", daemon=True).start()
                self._started = True

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            with self._busy:
                self._run_group(first)

    def _run_group(self, first: _Item) -> None:
        """Run ``first`` and the writes queued behind it in order under one group commit,
        then answer them all: no caller hears of its write before the sync that makes it
        durable (the journal's rule: on disk before the POST, before anyone waits on the
        job). A group of writes that need no sync of their own has none: the next sync of
        their database, or SQLite's next checkpoint, takes them to disk.

        Writes that arrive while the group runs join it (up to ``GROUP_LIMIT``): they
        would otherwise wait for its sync, then pay for one of their own. And while other
        steps are under way (:func:`expect_writes`), a group that must sync waits up to
        ``GROUP_WAIT`` from its first such write for theirs: a classic group commit, one
        sync for a few steps' writes instead of one each (a step alone never waits)."""
        group = [first]
        done: list[_Answer] = []
        deadline: float | None = None
        try:
            with grouped_commits(sync=False) as commits:
                while len(done) < len(group):
                    call, future, sync, _ = group[len(done)]
                    if sync and deadline is None:
                        commits.sync = True
                        deadline = self._patience()
                    try:
                        done.append((future, True, call()))
                    except BaseException as exc:  # handed to the awaiting step
                        done.append((future, False, exc))
                    if len(done) == len(group) and len(group) < GROUP_LIMIT:
                        more = self._next(deadline)
                        if more is not None:
                            group.append(more)
        except BaseException as exc:  # the sync failed: none of the group is durable
            done = [(future, False, exc) for future, _, _ in done]
        else:
            done = _then(group, done)
        # One wake-up of each waiting loop for the whole group, not one per write.
        by_loop: dict[asyncio.AbstractEventLoop, list[_Answer]] = {}
        for answer in done:
            by_loop.setdefault(answer[0].get_loop(), []).append(answer)
        for loop, answers in by_loop.items():
            with contextlib.suppress(RuntimeError):  # a loop closed meanwhile: nobody waits
                loop.call_soon_threadsafe(_answer, answers)

    def _patience(self) -> float | None:
        """Until when a group that must sync waits for more writes: None (not at all)
        unless other steps are under way and their writes come a few to ``GROUP_WAIT``
        (a step alone, or writes seconds apart as fal's jobs end, never wait). Nor does a
        write after a quiet moment: the mean still remembers a burst (a run's first
        submits), but nobody is writing now."""
        if self._steps < 2 or self._quiet or self._gap * _WRITES_PER_WAIT > GROUP_WAIT:
            return None
        return time.monotonic() + GROUP_WAIT

    def _next(self, deadline: float | None) -> _Item | None:
        """The next queued write; waiting for one until ``deadline``, if given, but not
        longer than two usual gaps between writes: past that, none is coming soon."""
        with contextlib.suppress(queue.Empty):
            return self._queue.get_nowait()
        if deadline is None:
            return None
        left = min(deadline - time.monotonic(), 2 * self._gap)
        if left <= 0:
            return None
        # Waiting: commit what is written so far first (not synced: that is for the
        # group's end), so that no other process waits on our transaction meanwhile.
        group = current()
        if group is not None:
            group.commit_held()
        try:
            return self._queue.get(timeout=left)
        except queue.Empty:
            return None

    @contextlib.contextmanager
    def expecting(self) -> Iterator[None]:
        with self._lock:
            self._steps += 1
        try:
            yield
        finally:
            with self._lock:
                self._steps -= 1

    def hold(self, timeout: float) -> bool:
        """Wait (up to ``timeout``) for a write under way to finish, and start no other
        (for a process about to exit at once); False if one is still running."""
        return self._busy.acquire(timeout=timeout)


def _then(group: list[_Item], done: list[_Answer]) -> list[_Answer]:
    """After the group's sync: the ``then`` writes of its calls that succeeded, in order,
    unsynced (each is safe to lose in a power cut once its call is durable: a release
    after its result). A failure of one becomes its caller's answer."""
    if all(item[3] is None for item in group):
        return done
    answers: list[_Answer] = []
    try:
        with grouped_commits(sync=False):
            for (_, _, _, then), answer in zip(group, done, strict=True):
                future, ok, _ = answer
                if ok and then is not None:
                    try:
                        then()
                    except BaseException as exc:  # handed to the awaiting step
                        answer = (future, False, exc)
                answers.append(answer)
    except BaseException as exc:  # their commit failed: no ``then`` is written
        return [
            (future, False, exc) if ok and then is not None else (future, ok, outcome)
            for (_, _, _, then), (future, ok, outcome) in zip(group, done, strict=True)
        ]
    return answers


def _answer(answers: list[_Answer]) -> None:
    for future, ok, outcome in answers:
        if future.done():
            continue
        if ok:
            future.set_result(outcome)
        else:
            future.set_exception(outcome)


_WRITER = _Writer()


def expect_writes() -> contextlib.AbstractContextManager[None]:
    """Around a step that will write to the store (a generation): while more than one is
    under way, a group commit waits a moment for the others' writes (see ``GROUP_WAIT``)."""
    return _WRITER.expecting()


def hold_writes(timeout: float) -> bool:
    """Let the store write under way finish, and start no other: see :meth:`_Writer.hold`."""
    return _WRITER.hold(timeout)


async def off_loop(
    call: Callable[..., T], *args: Any, sync: bool = True, then: Callable[[], Any] | None = None
) -> T:
    """``call(*args)`` on the store's writer thread: a journal write fsyncs, and meanwhile
    the event loop must go on reading the other jobs' answers. A cancellation waits for the
    write to finish, so the task unwinds with the entry in a known state.

    ``sync=False`` for a write that may be lost in a power cut without harm (a claim, with
    nothing sent yet; a release, after the result is durable): it is committed (other
    processes see it at once) but not fsynced on its own.

    ``then``, a write made only once ``call``'s is durable (after its group's sync), in the
    same trip: a result's release. Unsynced (see ``sync=False``); if it fails, so does the
    trip (``call``'s write stays, durable)."""
    future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
    _WRITER.submit(functools.partial(call, *args), future, sync=sync, then=then)
    return await settled(future)


async def settled(work: Awaitable[T]) -> T:
    """Await ``work`` to its end even if we are cancelled meanwhile (then re-raise): a
    journal write cut off half-way would leave an entry whose state nobody knows."""
    task = asyncio.ensure_future(work)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        await asyncio.wait([task])
        raise

"""The store's writer thread: where a run's local store writes go, so that a journal write's
fsync never holds the event loop while it reads the other jobs' answers.

The thread commits in groups: the writes queued while it was busy run one after the other,
then one fsync per database written makes them all durable, and only then is any of their
callers answered (see :func:`runner.store.table.grouped_commits`). Sixteen jobs recording
at once pay for a few fsyncs, not sixty."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import queue
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from runner.store.table import grouped_commits

T = TypeVar("T")
# A write, the loop future its caller awaits, and whether it must be fsynced before the answer.
_Item = tuple[Callable[[], Any], "asyncio.Future[Any]", bool]


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

    def submit(self, call: Callable[[], T], future: asyncio.Future[T], *, sync: bool) -> None:
        """Queue ``call``; ``future`` (of the running loop) gets its outcome."""
        self._queue.put((call, future, sync))
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
            group = [self._queue.get()]
            while True:  # and every write queued meanwhile: one group, one fsync
                try:
                    group.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            with self._busy:
                self._run_group(group)

    @staticmethod
    def _run_group(group: list[_Item]) -> None:
        """Run the group's writes in order under one group commit, then answer them all:
        no caller hears of its write before the sync that makes it durable (the journal's
        rule: on disk before the POST, before anyone waits on the job). A group of writes
        that need no sync of their own has none: the next sync of their database, or
        SQLite's next checkpoint, takes them to disk."""
        done: list[tuple[asyncio.Future[Any], bool, Any]] = []
        try:
            with grouped_commits(sync=any(sync for _, _, sync in group)):
                for call, future, _ in group:
                    try:
                        done.append((future, True, call()))
                    except BaseException as exc:  # handed to the awaiting step
                        done.append((future, False, exc))
        except BaseException as exc:  # the sync failed: none of the group is durable
            done = [(future, False, exc) for future, _, _ in done]
        # One wake-up of each waiting loop for the whole group, not one per write.
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], bool, Any]]]
        by_loop = {}
        for answer in done:
            by_loop.setdefault(answer[0].get_loop(), []).append(answer)
        for loop, answers in by_loop.items():
            with contextlib.suppress(RuntimeError):  # a loop closed meanwhile: nobody waits
                loop.call_soon_threadsafe(_answer, answers)

    def hold(self, timeout: float) -> bool:
        """Wait (up to ``timeout``) for a write under way to finish, and start no other
        (for a process about to exit at once); False if one is still running."""
        return self._busy.acquire(timeout=timeout)


def _answer(answers: list[tuple[asyncio.Future[Any], bool, Any]]) -> None:
    for future, ok, outcome in answers:
        if future.done():
            continue
        if ok:
            future.set_result(outcome)
        else:
            future.set_exception(outcome)


_WRITER = _Writer()


def hold_writes(timeout: float) -> bool:
    """Let the store write under way finish, and start no other: see :meth:`_Writer.hold`."""
    return _WRITER.hold(timeout)


async def off_loop(call: Callable[..., T], *args: Any, sync: bool = True) -> T:
    """``call(*args)`` on the store's writer thread: a journal write fsyncs, and meanwhile
    the event loop must go on reading the other jobs' answers. A cancellation waits for the
    write to finish, so the task unwinds with the entry in a known state.

    ``sync=False`` for a write that may be lost in a power cut without harm (a claim, with
    nothing sent yet; a release, after the result is durable): it is committed (other
    processes see it at once) but not fsynced on its own."""
    future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
    _WRITER.submit(functools.partial(call, *args), future, sync=sync)
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

"""The store's work off the event loop: writes on one thread, in order; reads in threads.

Every write a run makes (a journal entry fsynced, a result recorded, a heartbeat) goes
through :func:`off_loop`, to one thread: several would contend for SQLite's write lock,
and SQLite's busy handler backs off by sleeping (up to 100 ms at a time). Reads
(:func:`read`) go to the default thread pool: they never wait on a writer (WAL), but a
read that waits for the GIL at each step of SQLite's work can still take milliseconds
while another thread is busy, and the loop meanwhile serves every other job.

That includes the journal's record of a job fal accepted, whose commit bounds the window in
which a kill pays twice (:mod:`runner.run.submission` says what it costs).
"""

from __future__ import annotations

import asyncio
import functools
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

T = TypeVar("T")


class _Writer:
    """One thread running the store's writes in order."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]]]
        self._queue = queue.SimpleQueue()
        self._started = False
        self._lock = threading.Lock()

    def submit(self, call: Callable[[], T]) -> Future[T]:
        future: Future[T] = Future()
        self._queue.put((call, future))
        with self._lock:
            if not self._started:
                # A daemon: every write is awaited by the step that asked for it, so none
                # is pending when the run ends.
                threading.Thread(target=self._run, name="shotgraph-store", daemon=True).start()
                self._started = True
        return future

    def _run(self) -> None:
        while True:
            call, future = self._queue.get()
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(call())
            except BaseException as exc:  # handed to the awaiting step, whatever it is
                future.set_exception(exc)


_WRITER = _Writer()


async def off_loop(call: Callable[..., T], *args: Any) -> T:
    """``call(*args)`` on the store's writer thread: a journal write fsyncs, and meanwhile
    the event loop must go on reading the other jobs' answers. A cancellation waits for the
    write to finish, so the task unwinds with the entry in a known state."""
    work = asyncio.wrap_future(_WRITER.submit(functools.partial(call, *args)))
    try:
        return await asyncio.shield(work)
    except asyncio.CancelledError:
        await asyncio.wait([work])
        raise


async def read(call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``call(*args, **kwargs)`` (a store read, a hash, a copy) in a thread of the default
    pool."""
    return await asyncio.to_thread(call, *args, **kwargs)

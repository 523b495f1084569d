"""Reporters on a thread of their own, so that one slow to take an event never holds up
the event loop: a terminal over a slow link, a pipe nobody reads (``shotgraph run | less``
fills the pipe and then every write waits), a run log on a disk busy writing back. A loop
held up that way stops reading fal's answers and stops the run's heartbeat, which other
runs sharing the store would take for a dead run."""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading

from runner.run.events import Event, Fanout


class ReportThread:
    """Hands events, in order, to a :class:`Fanout` (which never raises) on one thread.

    Events emitted on the event loop go over together, once per turn of the loop: waking
    the thread for each of them cost more than reporting them."""

    def __init__(self, reporter: Fanout) -> None:
        self.reporter = reporter
        self._queue: queue.SimpleQueue[list[Event] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._batch: list[Event] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def handle(self, event: Event) -> None:
        if self._thread is None:
            # A daemon: close() waits for it; a process killed meanwhile loses only lines.
            self._thread = threading.Thread(
                target=self._deliver, name="shotgraph-reporters", daemon=True
            )
            self._thread.start()
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # another thread: after what the loop emitted before it
            self._from_elsewhere(event)
            return
        self._loop = loop
        if self._batch is not None:
            self._batch.append(event)
            return
        self._batch = [event]
        loop.call_soon(self._hand_over)

    def _from_elsewhere(self, event: Event) -> None:
        if self._loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop is closed: at once
                self._loop.call_soon_threadsafe(self.handle, event)
                return
        self._queue.put([event])

    def _hand_over(self) -> None:
        batch, self._batch = self._batch, None
        if batch:
            self._queue.put(batch)

    def _deliver(self) -> None:
        while (batch := self._queue.get()) is not None:
            for event in batch:
                self.reporter.handle(event)

    async def close(self) -> None:
        """Wait, off the loop, until every event has been handed over; end the thread."""
        self._hand_over()
        self._loop = None
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._queue.put(None)
        await asyncio.to_thread(thread.join)

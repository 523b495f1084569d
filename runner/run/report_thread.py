"""Reporters on a thread of their own, so that one slow to take an event never holds up
the event loop: a terminal over a slow link, a pipe nobody reads (``shotgraph run | less``
fills the pipe and then every write waits), a run log on a disk busy writing back. A loop
held up that way stops reading fal's answers and stops the run's heartbeat, which other
runs sharing the store would take for a dead run."""

from __future__ import annotations

import asyncio
import queue
import threading

from runner.run.events import Event, Fanout


class ReportThread:
    """Hands events, in order, to a :class:`Fanout` (which never raises) on one thread."""

    def __init__(self, reporter: Fanout) -> None:
        self.reporter = reporter
        self._queue: queue.SimpleQueue[Event | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def handle(self, event: Event) -> None:
        if self._thread is None:
            # A daemon: close() waits for it; a process killed meanwhile loses only lines.
            self._thread = threading.Thread(
                target=self._deliver, name="shotgraph-reporters", daemon=True
            )
            self._thread.start()
        self._queue.put(event)

    def _deliver(self) -> None:
        while (event := self._queue.get()) is not None:
            self.reporter.handle(event)

    async def close(self) -> None:
        """Wait, off the loop, until every event has been handed over; end the thread."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._queue.put(None)
        await asyncio.to_thread(thread.join)

"""Reporters on their own thread (runner.run.report_thread): every event arrives, in the
order it was emitted, whether it came from the event loop (handed over once per turn of
the loop) or from another thread."""

from __future__ import annotations

import asyncio
import threading

from runner.run.events import Event, Fanout, Notice
from runner.run.report_thread import ReportThread


class Collect:
    def __init__(self) -> None:
        self.seen: list[str] = []
        self.threads: set[str] = set()

    def handle(self, event: Event) -> None:
        assert isinstance(event, Notice)
        self.seen.append(event.message)
        self.threads.add(threading.current_thread().name)


async def test_events_arrive_in_order_on_the_reporters_thread() -> None:
    collect = Collect()
    reports = ReportThread(Fanout(collect))
    for i in range(5):
        reports.handle(Notice(message=f"a{i}"))  # one turn of the loop: one hand-over
    await asyncio.sleep(0)
    reports.handle(Notice(message="b"))
    await asyncio.to_thread(reports.handle, Notice(message="from a thread"))
    reports.handle(Notice(message="c"))
    await reports.close()  # nothing emitted before it is lost, the last batch included
    assert collect.seen == ["a0", "a1", "a2", "a3", "a4", "b", "from a thread", "c"]
    assert collect.threads == {"shotgraph-reporters"}

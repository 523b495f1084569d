"""Signals during a run: SIGINT and SIGTERM (how a terminal and CI cancel) stop it cleanly;
a second signal exits at once.

At the first signal the run says so at once (a :class:`~runner.run.events.Notice` naming
the jobs queued and running at fal), submits nothing more, and cancels its node tasks: each
cancels its job if it is still queued at fal (it has not started, so it costs nothing) and
leaves a running one journaled for the next run. :class:`Interruption` keeps what that needs:
the state of every job this run holds at fal, and afterwards which were cancelled and which
are still running.

A CI runner cancelling a job signals the step's shell, which does not pass the signal on
to the command it waits for; when the runner then kills that shell, :func:`signals_handled`
takes the parent's death for a SIGTERM, so the run still stops cleanly.

A second signal does not wait for that tidying: :func:`exit_at_once` lets a journal write
under way finish (none starts after it), then ends the process with 128 + the signal's
number. The journal is then as a ``kill -9`` leaves it, which the next run re-attaches from
without paying twice.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, NoReturn

from runner.compile.steps import Step
from runner.errors import ShotgraphError, signal_exit
from runner.run.events import (
    Event,
    NodeDone,
    NodeFailed,
    NodeQueued,
    NodeRunning,
    NodeSkipped,
    NodeSubmitted,
    Notice,
)
from runner.run.outcome import RunResult
from runner.store import Owner, TieredStore
from runner.store.writer import hold_writes

SIGNALS = (signal.SIGINT, signal.SIGTERM)
# How long a second signal waits for a journal write under way (an fsync) to finish.
WRITE_GRACE = 1.0
# How often a run checks that its parent process still lives (seconds).
PARENT_POLL = 0.5


class Interruption:
    """Which of a run's jobs are at fal and in what state; the first signal's stop."""

    def __init__(self, result: RunResult, emit: Callable[[Event], None]) -> None:
        self.result = result
        self.emit = emit
        self.at_fal: dict[str, str] = {}  # node -> "submitted" | "queued" | "running"
        self.held: set[str] = set()  # every node whose job this run submitted or re-attached
        self._work: asyncio.Future[Any] | None = None

    def observe(self, event: Event) -> None:
        """Follow a job's state from the run's events."""
        node = getattr(event, "node", None)
        if node is None:
            return
        if isinstance(event, NodeSubmitted):
            self.held.add(node)
            self.at_fal[node] = "submitted"
        elif isinstance(event, NodeQueued) and node in self.at_fal:
            self.at_fal[node] = "queued"
        elif isinstance(event, NodeRunning) and node in self.at_fal:
            self.at_fal[node] = "running"
        elif isinstance(event, NodeDone | NodeFailed | NodeSkipped):
            self.at_fal.pop(node, None)

    def watch(self, work: asyncio.Future[Any]) -> None:
        """The future whose cancellation stops the run's node tasks."""
        self._work = work
        if self.result.interrupted:
            work.cancel()

    def stop(self, signum: int) -> None:
        """The first signal: say what happens now, then cancel the node tasks."""
        if self.result.interrupted:
            return
        self.result.interrupted = True
        self.result.signal = signum
        queued = sorted(n for n, state in self.at_fal.items() if state != "running")
        running = sorted(n for n, state in self.at_fal.items() if state == "running")
        parts = ["nothing more is submitted"]
        if queued:
            parts.append(f"cancelling {len(queued)} job(s) queued at fal ({_names(queued)})")
        if running:
            parts.append(
                f"{len(running)} running job(s) stay journaled for the next run ({_names(running)})"
            )
        name = signal.Signals(signum).name
        self.emit(
            Notice(message=f"{name}: stopping: {'; '.join(parts)}. A second signal exits at once.")
        )
        if self._work is not None:
            self._work.cancel()

    async def settle(
        self, pending: list[str], steps: Mapping[str, Step], store: TieredStore, owner: Owner
    ) -> None:
        """After the node tasks unwound: what is still running at fal (journaled by this
        run, collected by the next) and what was cancelled there before it ran."""

        async def at_fal(name: str) -> bool:
            try:
                entry = await store.journal(steps[name].key)
            except ShotgraphError:  # the summary says what is wrong with the store
                return False
            return entry is not None and entry.state == "submitted" and entry.owner == owner

        result = self.result
        # One journal read per node, many at once (a shared store's are round trips).
        held = await store.each(pending, at_fal)
        result.in_flight = [name for name, yes in zip(pending, held, strict=True) if yes]
        result.cancelled = [
            name
            for name in pending
            if name in self.held
            and name not in result.in_flight
            and name not in result.records
            and name not in result.failed
        ]


def _names(names: list[str]) -> str:
    return ", ".join(names[:6]) + (f" and {len(names) - 6} more" if len(names) > 6 else "")


@contextmanager
def signals_handled(first: Callable[[int], None], second: Callable[[int], None]) -> Iterator[None]:
    """SIGINT and SIGTERM call ``first`` once, then ``second``, on the running loop (so they
    are handled between two steps of the run, never in the middle of one). Also installed
    when the signal was ignored: a shell starts background commands with SIGINT ignored.

    The parent's death counts as a SIGTERM: a CI runner that kills the step's shell leaves
    its command orphaned (reparented, so ``getppid`` changes). Polled rather than asked of
    the kernel (PR_SET_PDEATHSIG fires when the *thread* that started this process ends,
    which in a multi-threaded parent such as a CI runner happens at any time)."""
    loop = asyncio.get_running_loop()
    count = 0

    def handle(signum: int) -> None:
        nonlocal count
        count += 1
        (first if count == 1 else second)(signum)

    installed = []
    for signum in SIGNALS:
        try:
            loop.add_signal_handler(signum, handle, signum)
        except (ValueError, RuntimeError):  # not the main thread: the caller handles signals
            continue
        installed.append(signum)
    parent = os.getppid()
    timer: asyncio.TimerHandle | None = None

    def watch() -> None:
        nonlocal timer
        if os.getppid() != parent:
            handle(signal.SIGTERM)
        else:
            timer = loop.call_later(PARENT_POLL, watch)

    timer = loop.call_later(PARENT_POLL, watch)
    try:
        yield
    finally:
        if timer is not None:
            timer.cancel()
        for signum in installed:
            loop.remove_signal_handler(signum)


def exit_at_once(signum: int) -> NoReturn:
    """End the process now, as the signal asks, once a journal write under way is done."""
    hold_writes(WRITE_GRACE)
    os._exit(signal_exit(signum))

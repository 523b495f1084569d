"""Nothing blocks the event loop: the demo pipeline rendered by the local backend (its
emulator started in this process, as `run --backend local` does) under asyncio's debug
mode, failing on any callback that runs 50 ms or more, on the run's loop or the emulator's.

What this found, and what moved off the loops: the store's reads and writes, delivery's
hash and copy, building the HTTP client (TLS certificates), imports of the backend, the
emulator's start (a flag polled with time.sleep), its stores opened and its pool joined on
its own loop, and a render worker spawned there at the first render.

A loaded machine stretches every callback: the OS leaves the loop's thread waiting for a
core, or leaves the thread that holds the GIL waiting for one while the loop waits for the
GIL. Neither is the code blocking, so a callback's time is counted without the time the
process's threads spent runnable but not running (Linux's schedstat), then held against the
same 50 ms. A callback that sleeps, does I/O or computes is still counted in full."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runner.compile.check import check_pipeline
from runner.run.backends import open_backend
from runner.run.executor import Executor
from runner.run.outcome import RunOptions, RunResult
from runner.store import Store
from runner.ui.reporters import reporters_for
from tests.run_helpers import ROOT

SLOW = 0.05  # seconds: a callback this long is a loop that stopped serving everyone else


class _DebugLoops(asyncio.DefaultEventLoopPolicy):
    """Every new loop (the run's, the emulator's in its thread) in debug mode, warning of
    each callback that takes ``SLOW`` or more."""

    def new_event_loop(self) -> asyncio.AbstractEventLoop:
        loop = super().new_event_loop()
        loop.set_debug(True)
        loop.slow_callback_duration = SLOW
        return loop


def _waiting_for_a_core() -> float:
    """Seconds the process's threads have spent so far runnable but not running."""
    total = 0
    for task in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{task}/schedstat", "rb") as stat:
                total += int(stat.read().split()[1])
        except (OSError, IndexError, ValueError):
            continue  # a thread that ended meanwhile
    return total / 1e9


class _Starved(threading.local):
    """The time the last callback run on this thread was starved of a core."""

    seconds = 0.0


_STARVED = _Starved()
_run_handle = asyncio.events.Handle._run


def _run_accounted(handle: Any) -> None:
    before = _waiting_for_a_core()
    try:
        _run_handle(handle)
    finally:
        _STARVED.seconds = _waiting_for_a_core() - before


class _SlowCallbacks(logging.Handler):
    """asyncio's "Executing <Handle ...> took 0.123 seconds" warnings, with their thread,
    when the callback took ``SLOW`` or more not counting the time it was starved of a core
    (asyncio logs right after the callback, on its thread: ``_STARVED`` is that callback's)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.found: list[str] = []
        self.starved: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if not (message.startswith("Executing ") and " took " in message):
            return
        took = float(message.rsplit(" took ", 1)[1].split()[0])
        starved = _STARVED.seconds
        line = f"{record.threadName}: {message} (starved of a core {starved:.3f} s)"
        (self.found if took - starved >= SLOW else self.starved).append(line)


@pytest.fixture
def slow_callbacks(monkeypatch: pytest.MonkeyPatch) -> Iterator[_SlowCallbacks]:
    handler = _SlowCallbacks()
    logger = logging.getLogger("asyncio")
    logger.addHandler(handler)
    monkeypatch.setattr(asyncio.events.Handle, "_run", _run_accounted)
    asyncio.set_event_loop_policy(_DebugLoops())
    try:
        yield handler
    finally:
        asyncio.set_event_loop_policy(None)
        logger.removeHandler(handler)


def test_no_callback_blocks_a_loop_during_a_demo_run(
    tmp_path: Path, slow_callbacks: _SlowCallbacks, capsys: pytest.CaptureFixture[str]
) -> None:
    project = tmp_path / "demo"
    shutil.copytree(ROOT / "pipelines", project)
    (project / ".git").mkdir()
    checked = check_pipeline(project / "demo.yaml", backend="local")
    steps = checked.require().steps
    with Store.open(tmp_path / "store") as store:

        def once() -> RunResult:
            reporter, log = reporters_for(store.root, "demo", plain=True)  # as `run` has them
            executor = Executor(
                steps,
                store,
                lambda: open_backend("local", store.root),
                reporter,
                RunOptions(backend="local"),
                outputs=checked.outputs,
            )
            try:
                return asyncio.run(executor.run())
            finally:
                log.close()

        first = once()
        assert first.ok and len(first.rendered) == len(steps), first.failed
        again = once()  # everything cached: found, delivered (already there), reported
        assert again.ok and again.cached == set(steps)
    assert (project / "renders" / "rainy-night.mp4").stat().st_size > 0
    assert "Executing" not in capsys.readouterr().err
    assert slow_callbacks.found == [], "\n".join(slow_callbacks.found)


def test_the_check_sees_a_blocking_callback(slow_callbacks: _SlowCallbacks) -> None:
    """The test above can fail: a callback that sleeps is reported, with its thread."""

    async def block() -> None:
        time.sleep(SLOW * 1.5)

    asyncio.run(block())
    assert len(slow_callbacks.found) == 1 and "MainThread: Executing" in slow_callbacks.found[0]


def test_a_callback_that_computes_is_blocking_too(slow_callbacks: _SlowCallbacks) -> None:
    """Time on a core counts in full, however loaded the machine: only waiting for one is
    forgiven."""

    async def compute() -> None:
        spent = time.thread_time()
        while time.thread_time() - spent < SLOW * 1.5:
            pass

    asyncio.run(compute())
    assert len(slow_callbacks.found) == 1, slow_callbacks.starved

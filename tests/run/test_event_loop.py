"""Nothing blocks the event loop: the demo pipeline rendered by the local backend (its
emulator started in this process, as `run --backend local` does) under asyncio's debug
mode, failing on any callback that runs 50 ms or more, on the run's loop or the emulator's.

What this found, and what moved off the loops: the store's reads and writes, delivery's
hash and copy, building the HTTP client (TLS certificates), imports of the backend, the
emulator's start (a flag polled with time.sleep), its stores opened and its pool joined on
its own loop, and a render worker spawned there at the first render.

A loaded machine stretches every callback: the OS leaves the loop's thread waiting for a
core, or leaves the thread that holds the GIL waiting for one while the loop waits for the
GIL, or (a busy host) stalls the whole machine. None of that is the code blocking, so a
callback's time is held against the same 50 ms without the larger of: the time the
process's threads spent runnable but not running (Linux's schedstat), and the time a
canary process (no GIL shared) could not run either. A callback that sleeps, does I/O or
computes is still counted in full."""

from __future__ import annotations

import asyncio
import ctypes
import gc
import logging
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from runner.compile.check import check_pipeline
from runner.run.backends import LocalOptions, open_backend
from runner.run.executor import Executor
from runner.run.outcome import RunOptions, RunResult
from runner.store import Store
from runner.ui.reporters import reporters_for
from tests.run_helpers import DRAWN_SMALL, ROOT

SLOW = 0.05  # seconds: a callback this long is a loop that stopped serving everyone else
# The emulator's test aid: animatics drawn at a quarter of their size (then scaled up to it).
# The test judges the loops, never a picture, and the renders run in the emulator's worker
# processes: 9.3 -> 5.5 s of the test's wall, 14.9 -> 8.7 s of CPU, while every other worker
# waits for it.
LOCAL_DRAWN_SMALL = LocalOptions(render_scale=DRAWN_SMALL)


class _DebugLoops(asyncio.DefaultEventLoopPolicy):
    """Every new loop (the run's, the emulator's in its thread) in debug mode, warning of
    each callback that takes ``SLOW`` or more."""

    def new_event_loop(self) -> asyncio.AbstractEventLoop:
        loop = super().new_event_loop()
        loop.set_debug(True)
        loop.slow_callback_duration = SLOW
        return loop


# The accounting runs inside the callback asyncio times, so it must not add to it: every
# syscall made through Python hands the GIL over, and getting it back can take 5 ms while
# another thread is busy. libc called through PyDLL keeps the GIL; each thread's schedstat
# stays open and is read again from offset 0.
_LIBC = ctypes.PyDLL(None, use_errno=True)
_LIBC.pread.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_long]
_LIBC.pread.restype = ctypes.c_ssize_t
_SCHEDSTAT: dict[int, int] = {}  # native thread id -> an open /proc/self/task/<id>/schedstat
_BUFFER = ctypes.create_string_buffer(128)


def _threads() -> dict[int, tuple[int, int]]:
    """Per Python thread: nanoseconds on a core, and runnable but waiting for one."""
    found: dict[int, tuple[int, int]] = {}
    for thread in threading.enumerate():
        tid = thread.native_id
        if tid is None:
            continue
        if tid not in _SCHEDSTAT:
            try:
                _SCHEDSTAT[tid] = os.open(f"/proc/self/task/{tid}/schedstat", os.O_RDONLY)
            except OSError:
                continue  # ended meanwhile
        size = _LIBC.pread(_SCHEDSTAT[tid], _BUFFER, 127, 0)
        if size <= 0:
            continue
        ran, waited = _BUFFER.raw[:size].split()[:2]
        found[tid] = (int(ran), int(waited))
    return found


class _Last(threading.local):
    """What the process's threads did during the last callback run on this thread."""

    starved = 0.0  # the longest any of its threads waited for a core, in seconds
    ran = 0.0  # the time the callback's own thread spent on a core, in seconds
    threads: tuple[str, ...] = ()


_LAST = _Last()
_run_handle = asyncio.events.Handle._run


def _run_accounted(handle: Any) -> None:
    before = _threads()
    try:
        _run_handle(handle)
    finally:
        after = _threads()
        names = {thread.native_id: thread.name for thread in threading.enumerate()}
        spent = {
            names.get(tid, str(tid)): (
                ran - before.get(tid, (0, 0))[0],
                waited - before.get(tid, (0, 0))[1],
            )
            for tid, (ran, waited) in after.items()
        }
        # The longest any one thread waited: the loop's own wait, or that of the thread holding
        # the GIL the loop wanted; several threads waiting at once are not added up.
        _LAST.starved = max((waited for _, waited in spent.values()), default=0) / 1e9
        own = threading.current_thread().native_id
        if own is not None and own in after:
            _LAST.ran = (after[own][0] - before.get(own, (0, 0))[0]) / 1e9
        _LAST.threads = tuple(
            f"{name} ran {ran / 1e6:.0f} ms, waited {waited / 1e6:.0f} ms"
            for name, (ran, waited) in spent.items()
            if ran + waited >= 5_000_000
        )


# Sleeps 2 ms at a time and prints each interval it overslept by 10 ms or more: when the
# machine could not run it. CLOCK_MONOTONIC is the same clock in every process.
_CANARY = """
import sys, time
while True:
    began = time.monotonic()
    time.sleep(0.002)
    ended = time.monotonic()
    if ended - began >= 0.012:
        print(began, ended, flush=True)
"""


@dataclass(frozen=True)
class _Callback:
    line: str
    took: float
    ended: float
    starved: float
    ran: float


class _SlowCallbacks(logging.Handler):
    """asyncio's "Executing <Handle ...> took 0.123 seconds" warnings, with their thread
    and what the machine did meanwhile (asyncio logs right after the callback, on its
    thread: ``_LAST`` is that callback's)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.slow: list[_Callback] = []
        self.stalls: list[tuple[float, float]] = []  # the canary's, once stopped
        self.canary = subprocess.Popen(
            [sys.executable, "-c", _CANARY], stdout=subprocess.PIPE, text=True
        )

    def stop(self) -> None:
        """Stop the canary and take the stalls it saw."""
        if self.canary.returncode is None:
            self.canary.terminate()
            out, _ = self.canary.communicate()
            for line in out.splitlines():
                began, ended = line.split()
                self.stalls.append((float(began), float(ended)))

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.startswith("Executing ") and " took " in message:
            took = float(message.rsplit(" took ", 1)[1].split()[0])
            threads = "; ".join(_LAST.threads)
            line = f"{record.threadName}: {message} (threads that ran or waited: {threads})"
            callback = _Callback(line, took, time.monotonic(), _LAST.starved, _LAST.ran)
            self.slow.append(callback)

    def blocking(self) -> list[str]:
        """The slow callbacks that blocked ``SLOW`` or more of their own."""
        self.stop()
        found = []
        for callback in self.slow:
            began = callback.ended - callback.took
            stalled = sum(
                max(0.0, min(end, callback.ended) - max(start, began)) for start, end in self.stalls
            )
            # Waiting is forgiven, never the callback's own time on a core: a machine that
            # stalled the canary meanwhile does not excuse a callback that computed.
            excused = min(max(callback.starved, stalled), max(0.0, callback.took - callback.ran))
            if callback.took - excused >= SLOW:
                found.append(
                    f"{callback.line}, on a core {callback.ran:.3f} s, waiting for a core "
                    f"{callback.starved:.3f} s, the machine stalled {stalled:.3f} s"
                )
        return found


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
        handler.stop()
        asyncio.set_event_loop_policy(None)
        logger.removeHandler(handler)


@pytest.mark.alone
def test_no_callback_blocks_a_loop_during_a_demo_run(
    tmp_path: Path, slow_callbacks: _SlowCallbacks
) -> None:
    blocking = _demo_run(tmp_path / "first", slow_callbacks)
    if blocking:
        # A blocking call of ours blocks again on the next run; a lone spike (the machine
        # paging, another process's I/O) does not. So a second measurement decides.
        logger = logging.getLogger("asyncio")
        logger.removeHandler(slow_callbacks)
        again = _SlowCallbacks()
        logger.addHandler(again)
        try:
            blocking_again = _demo_run(tmp_path / "again", again)
        finally:
            again.stop()
            logger.removeHandler(again)
        assert blocking_again == [], "\n".join(["first run:", *blocking, "again:", *blocking_again])


def _demo_run(tmp_path: Path, slow_callbacks: _SlowCallbacks) -> list[str]:
    """The demo rendered, then run again all cached; the callbacks that blocked."""
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
                lambda: open_backend("local", store.root, local=LOCAL_DRAWN_SMALL),
                reporter,
                RunOptions(backend="local"),
                outputs=checked.outputs,
            )
            try:
                return asyncio.run(executor.run())
            finally:
                log.close()

        # The objects of the whole test session so far, out of the collector's sight, as in
        # a fresh `shotgraph run`: a full collection of that heap pauses whichever callback
        # triggers it (tens of ms late in the suite), which is no blocking call of ours.
        gc.collect()
        gc.freeze()
        try:
            first = once()
            assert first.ok and len(first.rendered) == len(steps), first.failed
            again = once()  # everything cached: found, delivered (already there), reported
            assert again.ok and again.cached == set(steps)
        finally:
            gc.unfreeze()
    assert (project / "renders" / "rainy-night.mp4").stat().st_size > 0
    return slow_callbacks.blocking()


def test_the_check_sees_a_blocking_callback(slow_callbacks: _SlowCallbacks) -> None:
    """The test above can fail: a callback that sleeps is reported, with its thread."""

    async def block() -> None:
        time.sleep(SLOW * 4)

    asyncio.run(block())
    # (On a machine loaded enough, asyncio.run's own teardown can stall too: not this test's
    # subject, so only the callbacks of the coroutine are counted.)
    blocking = [line for line in slow_callbacks.blocking() if "block()" in line]
    assert len(blocking) == 1 and blocking[0].startswith("MainThread: Executing")


def test_a_callback_that_computes_is_blocking_too(slow_callbacks: _SlowCallbacks) -> None:
    """Time on a core counts in full, however loaded the machine: only waiting for one
    (or a stalled machine) is forgiven."""

    async def compute() -> None:
        spent = time.thread_time()
        while time.thread_time() - spent < SLOW * 3:
            pass

    asyncio.run(compute())
    assert len([line for line in slow_callbacks.blocking() if "compute()" in line]) == 1

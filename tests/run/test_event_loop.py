"""Nothing blocks the event loop: the demo pipeline rendered by the local backend (its
emulator started in this process, as `run --backend local` does) under asyncio's debug
mode, failing on any callback that runs 50 ms or more, on the run's loop or the emulator's.

What this found, and what moved off the loops: the store's reads and writes, delivery's
hash and copy, building the HTTP client (TLS certificates), imports of the backend, the
emulator's start (a flag polled with time.sleep), its stores opened and its pool joined on
its own loop, and a render worker spawned there at the first render."""

from __future__ import annotations

import asyncio
import logging
import shutil
from collections.abc import Iterator
from pathlib import Path

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


class _SlowCallbacks(logging.Handler):
    """asyncio's "Executing <Handle ...> took 0.123 seconds" warnings, with their thread."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.found: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.startswith("Executing ") and " took " in message:
            self.found.append(f"{record.threadName}: {message}")


@pytest.fixture
def slow_callbacks() -> Iterator[_SlowCallbacks]:
    handler = _SlowCallbacks()
    logger = logging.getLogger("asyncio")
    logger.addHandler(handler)
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
    import time

    async def block() -> None:
        time.sleep(SLOW * 1.5)

    asyncio.run(block())
    assert len(slow_callbacks.found) == 1 and "MainThread: Executing" in slow_callbacks.found[0]

"""The render worker pool: separate processes, so CPU-bound renders never block the loop.

Workers are spawned (never forked: the emulator runs threads, and forking a threaded process
can deadlock), and each one exits as soon as its parent dies. Without that, a parent killed
with SIGKILL would leave its workers behind forever: they hold both ends of the pool's queue
pipe, so they never see it close.

Spawning re-imports the main module in each worker, so a script that starts an emulator
needs the usual ``if __name__ == "__main__":`` guard (the ``shotgraph`` command, ``python -m``
and pytest need nothing).
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import signal
import threading
from collections.abc import Callable
from concurrent.futures import Executor, ProcessPoolExecutor
from multiprocessing.context import SpawnContext, SpawnProcess
from typing import Any

# Signals a worker never acts on: the parent decides what an interrupt means (it cancels its
# jobs) and stops its workers itself, or they exit with it.
_PARENTS_SIGNALS = {signal.SIGINT, signal.SIGTERM}


class _QuietProcess(SpawnProcess):
    """A spawned worker that starts with SIGINT and SIGTERM blocked. Ctrl-C reaches every
    process of the terminal's group, and a worker still importing its modules (before any
    initializer could ignore the signal) would die of it with a ``KeyboardInterrupt``
    traceback; a blocked signal stays pending instead, and the initializer ignores it."""

    @staticmethod
    def _Popen(process_obj: Any) -> Any:
        # The mask of the spawning thread is inherited through fork and exec.
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, _PARENTS_SIGNALS)
        try:
            return SpawnProcess._Popen(process_obj)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)


class _QuietSpawnContext(SpawnContext):
    Process = _QuietProcess


# A test aid: a pool that an emulator started in this process without one of its own borrows
# instead of spawning its own (a test session's, so that each in-process `run --backend
# local` does not pay two interpreters' imports). Never set by shotgraph itself. Lent as
# the way to get it, so that a session whose tests start no emulator spawns no pool.
_lent: Callable[[], Executor] | None = None


def lend(pool: Callable[[], Executor] | None) -> None:
    """Emulators started from now on without a pool use the one ``pool()`` gives (None:
    their own again); they leave it running when they stop."""
    global _lent
    _lent = pool


def lent() -> Executor | None:
    """The pool :func:`lend` offers, if any."""
    return _lent() if _lent is not None else None


def render_pool(workers: int) -> ProcessPoolExecutor:
    """A pool of ``workers`` render processes that die with their parent and never act on
    SIGINT or SIGTERM, all started now: the pool would start one at a render's submission,
    on the emulator's event loop (a spawn is a fork and an exec of a large process: tens of
    milliseconds)."""
    pool = ProcessPoolExecutor(
        workers, mp_context=_QuietSpawnContext(), initializer=_exit_with_parent
    )
    for _ in range(workers):
        # Each submission finds no idle worker and starts one; each then imports the
        # renderer, so that the first job does not pay for it.
        pool.submit(warm_up)
    return pool


def warm_up() -> None:
    """Import the renderer in a fresh worker, so the first job does not pay for it."""
    import runner.emulator.animatic  # noqa: F401


def _exit_with_parent() -> None:
    # Ctrl-C reaches every process of the terminal's group: the parent decides what an
    # interrupt means (it cancels its jobs); a worker must not die mid-render over it.
    for signum in _PARENTS_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _PARENTS_SIGNALS)
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        # The sentinel becomes readable when the parent process ends, however it ends.
        multiprocessing.connection.wait([parent.sentinel])
        os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()

"""Every obstore request is over before its event loop closes, so none ends in an abort.

Why: obstore runs a request on its own (tokio) threads, and when the request ends (done,
failed or cancelled) that thread takes the GIL to hand the outcome to asyncio. If the
interpreter is finalising by then, CPython (3.11 to 3.13) ends the thread with
``pthread_exit``, whose forced unwind cannot cross Rust's frames: the process aborts
(SIGABRT) after it printed everything, instead of exiting with its code. Cancelling a
request from Python only asks the Rust side to stop, and nothing tells Python when it has.

So a request is never cancelled from here: a caller that is cancelled leaves its request to
end on its own (the client's retry timeout bounds it; the outcome is dropped), and a loop
that sent requests is held open until they have ended. A keeper task, started with the
first request on a loop, waits for ever; ``asyncio.run`` cancels it with every other task
when its coroutine is over, and it then waits for the requests still under way (also those
the other tasks start while they wind up), at most :data:`DRAIN_SECONDS`. Requests still
going after that are cancelled.

That leaves the tail of every hand-over: the Rust thread queues the outcome on the loop
and may still need the GIL back for a moment after the loop has taken it. No Python object
tells when that moment is over, and it is not rare (a reduced failing run under load still
aborted in a third of its exits with the drain alone), so a process that sent any request
is :func:`unsettled`: the command line exits without finalising the interpreter
(``runner.cli.exit_with``), its output flushed, its files closed by then and its exit code
kept. The drain is what lets the loop close cleanly: no request is cut off half-way by a
cancellation and no outcome is reported lost.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable
from functools import partial
from typing import Any, TypeVar

T = TypeVar("T")

# How long a finished loop waits for the requests still under way. A request against a
# store that is gone ends when its retries do (S3Remote's retry_seconds); this bounds the
# wait when they were given longer.
DRAIN_SECONDS = 5.0

_pending: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, set[asyncio.Future[Any]]] = (
    weakref.WeakKeyDictionary()
)
_keepers: set[asyncio.Task[None]] = set()
_sent = False


async def settled(request: Awaitable[T]) -> T:
    """``await request`` (an obstore call); when the caller is cancelled, the request is
    left to end by itself and its loop waits for it before it closes."""
    global _sent
    _sent = True
    loop = asyncio.get_running_loop()
    future = asyncio.ensure_future(request)
    pending = _pending.get(loop)
    if pending is None:
        pending = _pending[loop] = set()
        keeper = loop.create_task(_keep_open(loop, pending), name="shotgraph: obstore requests")
        _keepers.add(keeper)  # the loop holds its tasks weakly
        keeper.add_done_callback(_keepers.discard)
    pending.add(future)
    future.add_done_callback(partial(_ended, pending))
    return await asyncio.shield(future)


def unsettled() -> bool:
    """Whether obstore's threads may still take the GIL: the interpreter must then not be
    finalised (see the module docstring)."""
    return _sent


def _ended(pending: set[asyncio.Future[Any]], future: asyncio.Future[Any]) -> None:
    pending.discard(future)
    if not future.cancelled():
        future.exception()  # taken: the outcome of a cancelled caller is not logged as lost


async def _keep_open(loop: asyncio.AbstractEventLoop, pending: set[asyncio.Future[Any]]) -> None:
    try:
        await loop.create_future()  # until the loop's runner cancels its tasks
    except asyncio.CancelledError:
        await _drain(pending)
        del _pending[loop]  # a request after this (none is expected) starts a new keeper
        raise


async def _drain(pending: set[asyncio.Future[Any]]) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DRAIN_SECONDS
    while pending and loop.time() < deadline:
        await asyncio.wait(set(pending), timeout=deadline - loop.time())
    for future in list(pending):
        future.cancel()

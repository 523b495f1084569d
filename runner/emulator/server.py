"""Running the emulator: in a background thread (tests, the runner) or in the foreground (CLI).

The listening socket is bound before uvicorn starts, so the port is known at once (port 0
picks a free one) and a client that connects during startup waits in the backlog instead
of being refused. Whoever starts it waits on a future uvicorn's startup resolves, so async
code (the local backend) awaits the start instead of spinning on a flag.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future
from types import TracebackType
from typing import Any, TypeVar

import uvicorn

from runner.emulator.app import EmulatorApp, create_app
from runner.emulator.config import EmulatorConfig
from runner.emulator.core import Emulator
from runner.emulator.faults import FaultPlan

T = TypeVar("T")

_START_TIMEOUT = 30.0
_TICK = 0.1  # seconds between uvicorn's ticks, as in its own main loop
_DRAIN_POLL = 0.005  # seconds between looks at the connections left, stopping


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio disables Nagle (TCP_NODELAY) only on sockets that say
    # they are TCP; without it every answer written in two parts waits ~40 ms for an ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.setblocking(False)
    return sock


class _Uvicorn(uvicorn.Server):
    """uvicorn's server, resolving ``ready`` once its startup is over: serving, or failed
    (uvicorn has no event for it, only a flag); told to exit, it stops at once.

    uvicorn looks at ``should_exit`` every 0.1 s and, stopping, gives the connections it
    closed a fixed 0.1 s to go: a test suite that starts and stops hundreds of emulators
    spends most of each stop waiting. Here :meth:`exit` wakes the main loop, and the
    shutdown waits for the connections themselves, as briefly as they take.
    """

    def __init__(self, config: uvicorn.Config, ready: Future[None]) -> None:
        super().__init__(config)
        self.ready = ready
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        try:
            await super().startup(sockets)
        finally:
            _resolve(self.ready)

    def exit(self) -> None:
        """From any thread: stop serving now (uvicorn's ``should_exit``, and its loop woken)."""
        self.should_exit = True
        if self._loop is not None and self._wake is not None:
            with contextlib.suppress(RuntimeError):  # its loop has ended already
                self._loop.call_soon_threadsafe(self._wake.set)

    async def main_loop(self) -> None:
        # uvicorn's loop (its tick keeps the Date header fresh), sleeping until woken.
        assert self._wake is not None
        counter = 0
        while not await self.on_tick(counter):
            counter = (counter + 1) % 864000
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), _TICK)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        # uvicorn's shutdown, waiting for the connections it closes instead of 0.1 s first.
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        state = self.server_state
        for connection in list(state.connections):
            connection.shutdown()  # an idle one closes now, a busy one after its response
        try:
            await asyncio.wait_for(self._drained(), self.config.timeout_graceful_shutdown)
        except TimeoutError:
            for task in state.tasks:
                task.cancel(msg="Task cancelled, timeout graceful shutdown exceeded")
        if not self.force_exit:
            await self.lifespan.shutdown()

    async def _drained(self) -> None:
        state = self.server_state
        await asyncio.sleep(0)  # closed transports report their loss on the next iteration
        while (state.connections or state.tasks) and not self.force_exit:
            await asyncio.sleep(_DRAIN_POLL)  # uvicorn says nothing when the last one goes
        for server in self.servers:
            await server.wait_closed()


def _resolve(ready: Future[None]) -> None:
    if not ready.done():
        ready.set_result(None)


def _uvicorn(app: Any, config: EmulatorConfig, ready: Future[None]) -> _Uvicorn:
    return _Uvicorn(
        uvicorn.Config(
            app,
            lifespan="on",
            log_level="warning",
            access_log=False,
            # The drop-connection fault needs uvicorn's own send callable, unwrapped.
            proxy_headers=False,
            ssl_certfile=str(config.tls_cert) if config.tls_cert else None,
            ssl_keyfile=str(config.tls_key) if config.tls_key else None,
            timeout_graceful_shutdown=2,
            # Longer than uvicorn's 5 s, like fal's own front: a busy client reusing an idle
            # connection should rarely race the server closing it.
            timeout_keep_alive=60,
        ),
        ready,
    )


def _url(config: EmulatorConfig, sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"{config.scheme}://{shown}:{port}"


def _listen(app: EmulatorApp, config: EmulatorConfig) -> tuple[list[socket.socket], str, str]:
    """The bound sockets (the queue's, then the run host's when ``config`` has one), the
    URL of each ("" without a run host); ``app`` is told which port is the run host's."""
    sockets = [_bind(config.host, config.port)]
    if config.run_port is None:
        return sockets, _url(config, sockets[0]), ""
    sockets.append(_bind(config.host, config.run_port))
    app.run_ports = {sockets[1].getsockname()[1]}
    return sockets, _url(config, sockets[0]), _url(config, sockets[1])


class EmulatorServer:
    """The emulator on loopback in a background thread; a context manager.

    >>> with EmulatorServer(EmulatorConfig(latency=0.1)) as server:  # doctest: +SKIP
    ...     httpx.post(f"{server.url}/fal-ai/ltx-video-13b-distilled", ...)
    """

    def __init__(self, config: EmulatorConfig | None = None, executor: Executor | None = None):
        self.config = config or EmulatorConfig()
        self._app = create_app(self.config, executor)
        self._server: _Uvicorn | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sockets: list[socket.socket] = []
        self.url = ""
        #: fal.run's synchronous host ("" when ``config.run_port`` is None).
        self.run_url = ""

    @property
    def emulator(self) -> Emulator:
        return self._app.emulator

    def start(self) -> EmulatorServer:
        """Bind, start serving and return once requests are answered."""
        ready = self._launch()
        with contextlib.suppress(TimeoutError):  # not started in time: said below
            ready.result(timeout=_START_TIMEOUT)
        return self._started()

    async def start_async(self) -> EmulatorServer:
        """:meth:`start` for async code: the wait for the server is awaited, and stopping
        one that failed to start runs in a thread."""
        ready = self._launch()
        with contextlib.suppress(TimeoutError):  # not started in time: said below
            await asyncio.wait_for(asyncio.wrap_future(ready), _START_TIMEOUT)
        if self._server is not None and not self._server.started:
            await asyncio.to_thread(self.stop)
        return self._started()

    async def stop_async(self) -> None:
        """:meth:`stop` for async code: waiting for the server's thread to end is not done
        on the caller's event loop."""
        await asyncio.to_thread(self.stop)

    def _launch(self) -> Future[None]:
        self._sockets, self.url, self.run_url = _listen(self._app, self.config)
        ready: Future[None] = Future()
        self._server = _uvicorn(self._app, self.config, ready)
        self._thread = threading.Thread(target=self._run, name="shotgraph-emulator", daemon=True)
        self._thread.start()
        return ready

    def _started(self) -> EmulatorServer:
        if self._server is None or not self._server.started:
            self.stop()
            raise RuntimeError("the fal emulator did not start; see the log above")
        return self

    def _run(self) -> None:
        assert self._server is not None and self._sockets
        server, sockets = self._server, self._sockets

        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            await server.serve(sockets=sockets)

        try:
            # Loaded here, not on the server's event loop (uvicorn would load it there).
            server.config.load()
            asyncio.run(main())
        finally:
            _resolve(server.ready)  # it failed before its startup ended: stop waiting

    def _call(self, function: Callable[[], T]) -> T:
        """Run ``function`` on the server's event loop (the emulator is not thread-safe)."""
        if self._loop is None:
            raise RuntimeError("the emulator is not running")

        async def call() -> T:
            return function()

        return asyncio.run_coroutine_threadsafe(call(), self._loop).result(timeout=10)

    def stats(self) -> dict[str, Any]:
        """What ``GET /_emulator/stats`` answers."""
        return self._call(self.emulator.stats)

    def set_faults(self, plan: FaultPlan | list[dict[str, Any]]) -> None:
        """Replace the fault plan in force."""
        rules = plan if isinstance(plan, FaultPlan) else FaultPlan.from_json(plan)

        def install() -> None:
            self.emulator.faults = rules

        self._call(install)

    def set_pace(self, latency: float, concurrency: int) -> None:
        """Change the latency and concurrency of jobs that start from now on (a test slows
        the queue down to catch jobs waiting in it, then lets the rest through)."""

        def pace() -> None:
            assert self.emulator.scheduler is not None
            self.emulator.scheduler.set_pace(latency, concurrency)

        self._call(pace)

    def stop(self) -> None:
        """Stop serving; open status streams end, jobs in flight stay journaled."""
        if self._server is None:
            return
        if self._loop is not None and self._thread is not None and self._thread.is_alive():
            # End the SSE streams first: uvicorn waits for open responses before it stops.
            def closing() -> None:
                self.emulator.closing.set()
                if self.emulator.scheduler is not None:
                    self.emulator.scheduler.changed.notify()

            self._loop.call_soon_threadsafe(closing)
        self._server.exit()
        if self._thread is not None:
            self._thread.join(timeout=30)
        for sock in self._sockets:
            sock.close()
        self._server = None

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def serve(config: EmulatorConfig, on_ready: Callable[[str, str], None] | None = None) -> None:
    """Serve in the foreground until SIGINT or SIGTERM; ``on_ready`` gets the URL and the
    run host's URL ("" without one) first."""
    app = create_app(config)
    sockets, url, run_url = _listen(app, config)
    if on_ready is not None:
        on_ready(url, run_url)
    _uvicorn(app, config, Future()).run(sockets=sockets)

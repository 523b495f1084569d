"""The ASGI application: the route table, the control routes and the lifespan."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from concurrent.futures import Executor

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from runner.emulator import protocol, routes_files, routes_platform, routes_queue, routes_run
from runner.emulator.config import EmulatorConfig
from runner.emulator.core import Emulator
from runner.emulator.faults import FaultPlan, FaultSpecError


async def stats(request: Request) -> Response:
    """Submission counts (per request fingerprint and in total), jobs per state, the peak
    number of jobs in progress, requests per route and faults fired."""
    emulator: Emulator = request.app.state.emulator
    return JSONResponse(emulator.stats())


async def faults(request: Request) -> Response:
    """GET the fault plan in force (with how often each rule fired); POST a new plan."""
    emulator: Emulator = request.app.state.emulator
    if request.method == "POST":
        try:
            emulator.faults = FaultPlan.from_json(await request.json())
        except (ValueError, FaultSpecError) as exc:
            return protocol.detail(400, str(exc))
    return JSONResponse({"faults": emulator.faults.as_json()})


async def storage_failure(request: Request, exc: Exception) -> Response:
    """The emulator's own disk failed (full, say) while serving a request: fal's internal
    error, as JSON, instead of a traceback in the log of the run that started it."""
    why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return JSONResponse(
        {"detail": f"emulator storage error: {why}", "error_type": "internal_error"},
        status_code=500,
        headers={"X-Fal-Error-Type": "internal_error"},
    )


class EmulatorApp:
    """The emulator as an ASGI app; :attr:`emulator` is its state (started by the lifespan).

    ``executor`` runs the renders; a process pool of ``config.render_workers`` is made when
    none is given. Requests that arrive on one of :attr:`run_ports` are fal.run's
    (synchronous); the others the queue's, storage's and the platform API's.
    """

    def __init__(self, config: EmulatorConfig, executor: Executor | None = None) -> None:
        self.emulator = emulator = Emulator(config, executor)

        @contextlib.asynccontextmanager
        async def lifespan(app: Starlette) -> AsyncIterator[None]:
            await emulator.start()
            try:
                yield
            finally:
                await emulator.close()

        part = "/files/{file_id}/{name}/multipart/{upload_id}"
        routes = [
            Route("/_emulator/stats", stats, methods=["GET"]),
            Route("/_emulator/faults", faults, methods=["GET", "POST"]),
            Route("/storage/auth/token", routes_files.token, methods=["POST"]),
            Route("/storage/upload/initiate", routes_files.initiate, methods=["POST"]),
            Route("/storage/upload/initiate-multipart", routes_files.initiate, methods=["POST"]),
            Route("/files/upload", routes_files.upload, methods=["POST"]),
            Route("/files/upload/multipart", routes_files.start_multipart, methods=["POST"]),
            Route(part + "/complete", routes_files.complete_multipart, methods=["POST"]),
            Route(part + "/{part}", routes_files.upload_part, methods=["PUT"]),
            Route(part, routes_files.put_upload, methods=["PUT"]),
            Route("/files/{file_id}/{name}", routes_files.serve, methods=["GET", "HEAD"]),
            Route(
                "/v1/models/requests/by-endpoint",
                routes_platform.requests_by_endpoint,
                methods=["GET"],
            ),
            Route("/{path:path}", routes_queue.queue_route, methods=["GET", "POST", "PUT"]),
        ]
        self._app = Starlette(
            routes=routes, lifespan=lifespan, exception_handlers={OSError: storage_failure}
        )
        self._app.state.emulator = emulator
        self._run_app = Starlette(
            routes=[Route("/{path:path}", routes_run.run_route, methods=["POST"])],
            exception_handlers={OSError: storage_failure},
        )
        self._run_app.state.emulator = emulator
        self.run_ports: set[int] = set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            # DropConnection needs the server's own send, before any middleware wraps it.
            scope[protocol.RAW_SEND] = send
            server = scope.get("server")
            # POSTs to the run host are fal.run calls; anything else there (the files its
            # answers point to) is served as on the main origin.
            if server is not None and server[1] in self.run_ports and scope["method"] == "POST":
                await self._run_app(scope, receive, send)
                return
        await self._app(scope, receive, send)


def create_app(config: EmulatorConfig, executor: Executor | None = None) -> EmulatorApp:
    """The emulator's ASGI app for ``config``."""
    return EmulatorApp(config, executor)

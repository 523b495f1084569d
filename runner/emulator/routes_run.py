"""fal's synchronous host (``https://fal.run``): ``POST /{owner}/{alias}[/{path}]`` blocks
until the model has run and answers with its output, not with a queue receipt.

The clients choose the host, not the server: fal-client's ``run()`` and ``stream()`` post to
``https://{FAL_RUN_HOST}/…`` (default ``fal.run``), its queue calls to
``https://{FAL_QUEUE_RUN_HOST}/…`` (default ``queue.{FAL_RUN_HOST}``); fal-js's ``fal.run``
builds ``https://fal.run/{id}`` and its queue calls ``https://queue.fal.run/…``. So the
emulator serves the run host on a port of its own (``run_url``), and the clients are
pointed at each (docs/emulator.md says how). A call here is a job like any other (counted,
and validated by the app as it runs); fal does not retry synchronous calls, and neither
does anything here.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from runner.emulator import protocol
from runner.emulator.core import Emulator
from runner.emulator.jobs import COMPLETED, Job
from runner.emulator.routes_queue import accept, outcome


async def run_route(request: Request) -> Response:
    emulator: Emulator = request.app.state.emulator
    segments = [part for part in request.path_params["path"].split("/") if part]
    if request.method != "POST" or len(segments) < 2:
        return protocol.detail(404, "Not Found")
    accepted = await accept(emulator, request, "/".join(segments), "run")
    if not isinstance(accepted, Job):
        return accepted
    job = accepted
    while True:
        # Take the wake-up before reading the state: a change after the read wakes us.
        wake = emulator.queue.changed.event
        if job.state == COMPLETED:
            return outcome(request, job)
        if emulator.closing.is_set():
            return protocol.detail(503, "The emulator is shutting down")
        await wake.wait()

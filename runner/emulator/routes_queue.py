"""The queue routes: submit, status, status stream, result and cancel.

One catch-all route takes every model path, because endpoint ids have a variable number of
segments: ``POST /{owner}/{alias}[/{path}]`` submits, and ``.../requests/{id}[/status
[/stream] | /cancel]`` polls, with or without the endpoint's subpath (fal's own URLs drop it).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from runner.emulator import protocol
from runner.emulator.core import Emulator
from runner.emulator.jobs import COMPLETED, Job, fingerprint
from runner.ltx.registry import registry
from runner.ltx.schema import input_schema


async def queue_route(request: Request) -> Response:
    emulator: Emulator = request.app.state.emulator
    segments = [part for part in request.path_params["path"].split("/") if part]
    for i in range(2, len(segments) - 1):
        if segments[i] == "requests":
            return await _poll(emulator, request, "/".join(segments[:i]), segments[i + 1 :])
    if request.method == "POST" and len(segments) >= 2:
        return await submit(emulator, request, "/".join(segments))
    return protocol.detail(404, "Not Found")


async def _poll(emulator: Emulator, request: Request, app: str, rest: list[str]) -> Response:
    request_id, tail = rest[0], "/".join(rest[1:])
    routes = {
        ("GET", "status"): ("status", status),
        ("GET", "status/stream"): ("stream", stream),
        ("GET", ""): ("result", result),
        ("PUT", "cancel"): ("cancel", cancel),
    }
    found = routes.get((request.method, tail))
    if found is None:
        known = {path for _, path in routes}
        return protocol.detail(405 if tail in known else 404, "Not Found")
    route, handler = found
    job = emulator.queue.get(request_id)
    # A job answers under its owner/alias (fal's form) and under its full endpoint id.
    if job is not None and app not in (protocol.app_path(job.endpoint), job.endpoint):
        job = None
    imposed = await emulator.intercept(
        route, job.endpoint if job else None, job.prompt if job else None
    )
    if imposed is not None:
        return imposed
    denied = protocol.unauthorized(request, emulator.config)
    if denied is not None:
        return denied
    if job is None:
        if route == "cancel":
            return JSONResponse({"status": "NOT_FOUND"}, status_code=404)
        return protocol.detail(404, f"Request {request_id} not found")
    return await handler(emulator, request, job)


async def submit(emulator: Emulator, request: Request, endpoint_id: str) -> Response:
    accepted = await accept(emulator, request, endpoint_id, "submit")
    if not isinstance(accepted, Job):
        return accepted
    job = accepted
    position = emulator.queue.position(job) or 0
    lost = emulator.faults.take_answer_fault(endpoint_id, job.prompt)
    if lost is not None:
        emulator.faults_fired[lost.kind] += 1
        # Held until the time is up or the emulator stops, whichever comes first.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(emulator.closing.wait(), lost.seconds)
        return protocol.DropConnection()
    payload = {
        "request_id": job.id,
        **protocol.queue_urls(protocol.origin(request), job),
        "status": "IN_QUEUE",
        "queue_position": position,
    }
    return JSONResponse(payload, headers=protocol.request_id_headers(job))


async def accept(
    emulator: Emulator, request: Request, endpoint_id: str, route: str
) -> Job | Response:
    """Queue the job a request asks for (the queue's submit, or fal.run's call), or the
    response that refuses it: a fault, no key, an unknown app, a body that is not JSON."""
    raw = await request.body()
    error: ValueError | None = None
    try:
        body: Any = json.loads(raw or b"{}")
    except ValueError as exc:
        body, error = None, exc
    prompt = body.get("prompt") if isinstance(body, dict) else None
    imposed = await emulator.intercept(
        route, endpoint_id, prompt if isinstance(prompt, str) else None
    )
    if imposed is not None:
        return imposed
    denied = protocol.unauthorized(request, emulator.config)
    if denied is not None:
        return denied
    if registry().endpoint_by_id(endpoint_id) is None:
        return protocol.detail(404, f"Application '{endpoint_id}' not found")
    if error is not None:
        item = {"type": "json_invalid", "loc": ["body", 0], "msg": "JSON decode error", "input": {}}
        return JSONResponse({"detail": [{**item, "ctx": {"error": str(error)}}]}, status_code=422)
    if not isinstance(body, dict) or emulator.config.validate_on_submit:
        problems = input_schema(endpoint_id).check(body)
        if problems:
            return JSONResponse({"detail": problems}, status_code=422)
    fault = emulator.faults.take_job_fault(endpoint_id, prompt if isinstance(prompt, str) else None)
    if fault is not None:
        emulator.faults_fired[fault.kind] += 1
    job = Job(
        id=str(uuid.uuid4()),
        endpoint=endpoint_id,
        body=body,
        seq=emulator.queue.next_seq(),
        fingerprint=fingerprint(endpoint_id, body),
        submitted_at=time.time(),
        fault=fault.as_json() if fault is not None else None,
        output_ttl=lifecycle_ttl(request),
        node=protocol.node_name(request),
    )
    await emulator.queue.submit(job)
    return job


async def status(emulator: Emulator, request: Request, job: Job) -> Response:
    body = protocol.status_body(
        job,
        protocol.origin(request),
        emulator.queue.position(job),
        protocol.flag(request.query_params.get("logs")),
    )
    code = 200 if job.state == COMPLETED else 202
    return JSONResponse(body, status_code=code, headers=protocol.request_id_headers(job))


async def stream(emulator: Emulator, request: Request, job: Job) -> Response:
    base = protocol.origin(request)
    with_logs = protocol.flag(request.query_params.get("logs"))
    interval = emulator.config.ping_interval

    async def events() -> AsyncIterator[str]:
        sent: tuple[Any, ...] | None = None
        logged = 0  # log entries already sent on this stream
        while True:
            # Take the wake-up before reading the state: a change after the read wakes us.
            wake = emulator.queue.changed.event
            position = emulator.queue.position(job)
            seen = (job.state, position, len(job.logs) if with_logs else 0)
            if seen != sent:
                body = protocol.status_body(job, base, position, with_logs)
                if with_logs:
                    # Each event carries only the entries the stream has not sent yet:
                    # fal-js appends every event's logs to what it has (queue.ts,
                    # subscribeToStatus), so a whole list each time shows lines twice.
                    body["logs"] = job.logs[logged:]
                    logged = len(job.logs)
                yield f"data: {json.dumps(body)}\n\n"
                sent = seen
            if job.state == COMPLETED or emulator.closing.is_set():
                return
            try:
                await asyncio.wait_for(wake.wait(), interval)
            except TimeoutError:
                yield ": ping\n\n"

    headers = {"Cache-Control": "no-cache", **protocol.request_id_headers(job)}
    return StreamingResponse(events(), media_type="text/event-stream", headers=headers)


async def result(emulator: Emulator, request: Request, job: Job) -> Response:
    headers = protocol.request_id_headers(job)
    if job.state != COMPLETED:
        return protocol.detail(400, "Request is still in progress", headers)
    if emulator.result_expired(job):
        return protocol.detail(404, f"Result of request {job.id} has expired", headers)
    return outcome(request, job)


def outcome(request: Request, job: Job) -> Response:
    """What a completed ``job`` answers (the queue's result, fal.run's call): its output,
    with its file URLs on the request's origin, or its error."""
    headers = protocol.request_id_headers(job)
    if job.error is not None:
        headers.update(job.error.headers)
        return JSONResponse(job.error.body, status_code=job.error.status, headers=headers)
    body = protocol.with_origin(job.result, protocol.origin(request))
    return JSONResponse(body, headers=headers)


async def cancel(emulator: Emulator, request: Request, job: Job) -> Response:
    outcome = emulator.queue.cancel(job)
    code = 400 if outcome == "ALREADY_COMPLETED" else 202
    return JSONResponse(
        {"status": outcome}, status_code=code, headers=protocol.request_id_headers(job)
    )


def lifecycle_ttl(request: Request) -> float | None:
    """``expiration_duration_seconds`` of fal's object lifecycle header, if sent."""
    for name in ("x-fal-object-lifecycle-preference", "x-fal-object-lifecycle"):
        value = request.headers.get(name)
        if not value:
            continue
        try:
            seconds = json.loads(value).get("expiration_duration_seconds")
        except (ValueError, AttributeError):
            continue
        if isinstance(seconds, int | float) and not isinstance(seconds, bool) and seconds > 0:
            return float(seconds)
    return None

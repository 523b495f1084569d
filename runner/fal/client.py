"""shotgraph's async client for fal's queue API (and, pointed at it, the local emulator).

::

    async with FalClient.from_env() as fal:
        job = await fal.submit("fal-ai/ltx-video-13b-distilled", {"prompt": "…"})
        journal(job.as_dict())                    # before waiting: never pay twice
        await fal.wait(job, on_update=progress)   # SSE stream, polling as a fallback
        output = await fal.result(job)
        await fal.download(output["video"]["url"], Path("out.mp4"))

The network is an injected ``httpx.AsyncBaseTransport`` (``httpx.MockTransport`` in tests).
The API key goes only to the configured queue, REST and platform API origins, never to a
media host.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote
from urllib.request import getproxies

import httpx

from runner import __version__
from runner.fal.config import FalConfig, same_origin
from runner.fal.credentials import Credentials, Redactor, load_credentials
from runner.fal.download import Downloaded, download
from runner.fal.endpoint import EndpointId, request_url, submit_url
from runner.fal.errors import FalError, FalProtocolError
from runner.fal.listing import ListedRequest, list_requests
from runner.fal.retry import REQUEST_TIMEOUT_HEADER
from runner.fal.session import Call, Client, Session
from runner.fal.status import CancelOutcome, JobHandle, JobStatus, cancel_outcome, parse_status
from runner.fal.storage import Storage, UploadedFile
from runner.fal.waiting import UpdateCallback, Waiter
from runner.fal.wire import LeanTransport

#: fal may reroute a queued request to an "equivalent" endpoint after five failed retries
#: (https://docs.fal.ai/model-apis/model-endpoints/reliability, "Model Fallbacks"); a job
#: that silently ran on another model is not the render its lock promises. The docs name
#: the header without a value; "true" is what fal's other boolean headers take
#: (``x-fal-no-retry: 1|true|yes``).
DISABLE_FALLBACKS_HEADER = "x-fal-disable-fallbacks"


class FalClient:
    """The fal queue protocol: submit, wait, status, result, cancel, upload, download.

    ``credentials=None`` sends no key (the local emulator needs none). Use it as an async
    context manager, or call :meth:`aclose`.
    """

    def __init__(
        self,
        config: FalConfig | None = None,
        credentials: Credentials | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.config = config or FalConfig()
        self._credentials = credentials
        self._redact = Redactor(*([credentials.secret] if credentials else []))
        self._auth = credentials.auth() if credentials else None
        if transport is None and not {"http", "https", "all"} & getproxies().keys():
            # Not with a proxy in the environment: httpx applies it only to its own transport.
            transport = LeanTransport(max_connections=self.config.max_connections)
        self._http = Client(
            transport=transport,
            timeout=self.config.request_timeout(),
            limits=httpx.Limits(max_connections=self.config.max_connections),
            headers={"User-Agent": f"shotgraph/{__version__}", "Accept": "application/json"},
        )
        self._session = Session(self._http, self.config.retry, self._redact)
        self._waiter = Waiter(self._session, self.config, self._auth_for, self._poll)
        self._storage = Storage(
            self._session, self.config, self._auth_for(self.config.rest_url), self._redact
        )

    @classmethod
    def from_env(
        cls,
        env: Mapping[str, str] | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        require_key: bool = True,
        **options: Any,
    ) -> FalClient:
        """A client configured from the environment (see :class:`FalConfig`).

        With ``require_key`` (the ``fal`` backend) a missing key is a
        :class:`~runner.fal.errors.FalKeyMissing`; without it (the emulator) a key is sent
        only if one is set.
        """
        env = os.environ if env is None else env
        config = FalConfig.from_env(env, **options)
        has_key = env.get("FAL_KEY") or env.get("FAL_KEY_ID") or env.get("FAL_KEY_SECRET")
        credentials = load_credentials(env) if require_key or has_key else None
        return cls(config, credentials, transport=transport)

    async def __aenter__(self) -> FalClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    def __repr__(self) -> str:
        key = f"key from {self._credentials.source}" if self._credentials else "no key"
        return f"FalClient(queue={self.config.queue_url!r}, rest={self.config.rest_url!r}, {key})"

    # -- the queue ---------------------------------------------------------------------

    async def submit(
        self,
        endpoint_id: str,
        body: Mapping[str, Any],
        *,
        start_timeout: float | None = None,
        priority: Literal["normal", "low"] | None = None,
        webhook_url: str | None = None,
        node: str | None = None,
    ) -> JobHandle:
        """Queue a job. Journal the handle before waiting on it.

        Every submit carries ``x-fal-disable-fallbacks``: the job runs on ``endpoint_id``
        or fails, never on a substitute fal picks.

        ``node`` is the pipeline node the job renders. It is sent only where the config
        names a header for it (the local backend tells its emulator, which writes it on the
        animatic); fal never sees it, and it is part of neither the body nor any key.

        ``start_timeout`` (seconds, > 1) is fal's start deadline (``X-Fal-Request-Timeout``):
        a job not started by then fails with a 504 that is never retried. Retries of the
        submit itself are limited (see :mod:`runner.fal.retry`) so a job is never queued twice.
        """
        endpoint = EndpointId.parse(endpoint_id)
        headers: dict[str, str] = {DISABLE_FALLBACKS_HEADER: "true"}
        if start_timeout is not None:
            if start_timeout <= 1:
                raise ValueError("start_timeout must be more than 1 second")
            headers[REQUEST_TIMEOUT_HEADER] = str(float(start_timeout))
        if priority is not None:
            headers["X-Fal-Queue-Priority"] = priority
        try:
            # Serialised here so a NaN or an object JSON cannot hold (YAML has .nan) is a
            # clear error rather than a ValueError from inside httpx.
            content = json.dumps(body, allow_nan=False, ensure_ascii=False, separators=(",", ":"))
        except (TypeError, ValueError) as exc:
            raise FalError(
                f"the request body for {endpoint} cannot be sent as JSON: {exc}",
                hint="request parameters must be strings, numbers, booleans, lists or maps "
                "(no NaN or infinity)",
            ) from None
        headers["Content-Type"] = "application/json"
        if node is not None and self.config.node_header is not None:
            headers[self.config.node_header] = quote(node, safe="")
        url = submit_url(self.config.queue_url, endpoint)
        response = await self._session.send(
            Call(
                "POST",
                url,
                "submit",
                str(endpoint),
                mode="submit",
                auth=self._auth_for(url),
                body=content.encode(),
                headers=headers,
                params={"fal_webhook": webhook_url} if webhook_url else None,
            )
        )
        try:
            data = _json(response, f"submit of {endpoint}")
        except FalProtocolError:
            data = {}
        # The job exists once fal answered 2xx: salvage its id from the header if the body
        # is unreadable, or it could not be re-attached and would be paid for again.
        request_id = data.get("request_id") or response.headers.get("x-fal-request-id")
        if not isinstance(request_id, str) or not request_id:
            raise FalProtocolError(
                f"fal's answer to the submit of {endpoint} has no request_id",
                hint="the job may have been queued; check https://fal.ai/dashboard/requests",
            )
        built = self.handle(endpoint_id, request_id)
        return JobHandle(
            endpoint_id=str(endpoint),
            request_id=request_id,
            response_url=self._returned(data, "response_url", built.response_url),
            status_url=self._returned(data, "status_url", built.status_url),
            cancel_url=self._returned(data, "cancel_url", built.cancel_url),
        )

    def handle(self, endpoint_id: str, request_id: str) -> JobHandle:
        """The handle of a known request (to re-attach after a crash), from owner/alias."""
        endpoint = EndpointId.parse(endpoint_id)
        base = request_url(self.config.queue_url, endpoint, request_id)
        return JobHandle(str(endpoint), request_id, base, f"{base}/status", f"{base}/cancel")

    async def status(self, handle: JobHandle, *, logs: bool = False) -> JobStatus:
        """One status report (``GET status_url?logs=1|0``); retried like any read."""
        return await self._poll(handle, logs)

    async def wait(
        self, handle: JobHandle, on_update: UpdateCallback | None = None, *, logs: bool = True
    ) -> JobStatus:
        """Wait until the job is done; every new status goes to ``on_update``.

        Returns the final (COMPLETED) status; raises
        :class:`~runner.fal.errors.FalJobFailed` with fal's message if it completed with
        an error. See :mod:`runner.fal.waiting` for stream and polling.
        """
        return await self._waiter.wait(handle, on_update, logs=logs)

    async def result(self, handle: JobHandle) -> dict[str, Any]:
        """The job's output (``GET response_url``). Fetch it promptly: fal keeps large
        results only minutes (:class:`~runner.fal.errors.FalResultExpired` after)."""
        response = await self._session.send(self._call("GET", handle.response_url, handle))
        return _json(response, f"result of request {handle.request_id}")

    async def cancel(self, handle: JobHandle) -> CancelOutcome:
        """Ask fal to cancel the job; never retried. Returns fal's outcome.

        A queued job is removed; a running one is asked to stop (the app decides).
        """
        call = self._call("PUT", handle.cancel_url, handle, operation="cancel", mode="never")
        # fal answers "already completed" and "not found" with error codes but a body naming
        # the outcome: those are answers, not failures.
        call = replace(call, accept=frozenset({400, 404, 409}))
        response = await self._session.send(call)
        try:
            data = response.json()
        except (ValueError, UnicodeDecodeError):
            data = None
        outcome = cancel_outcome(data, response.is_success)
        if outcome is None:
            raise self._session.error(call, response)
        return outcome

    def list_requests(
        self, endpoint_id: str, since: float, *, payloads: bool = True
    ) -> AsyncIterator[ListedRequest]:
        """fal's listing of the requests sent to ``endpoint_id`` since ``since`` (Unix
        seconds), with their input payloads: see :mod:`runner.fal.listing`."""
        url = self.config.api_url
        return list_requests(
            self._session, url, self._auth_for(url), endpoint_id, since, payloads=payloads
        )

    # -- files -------------------------------------------------------------------------

    async def upload(
        self,
        path: Path,
        content_type: str | None = None,
        *,
        file_name: str | None = None,
        lifetime: int | None = None,
    ) -> UploadedFile:
        """Upload a file to fal's CDN, streamed from disk (multipart when large)."""
        return await self._storage.upload(
            path, content_type, file_name=file_name, lifetime=lifetime
        )

    async def download(
        self,
        url: str,
        dest: Path,
        *,
        expected_size: int | None = None,
        expected_sha256: str | None = None,
    ) -> Downloaded:
        """Stream ``url`` to ``dest`` atomically; returns ``(sha256, size)``."""
        return await download(
            self._session,
            self.config,
            url,
            dest,
            auth=self._auth_for(url),
            expected_size=expected_size,
            expected_sha256=expected_sha256,
        )

    # -- internals ---------------------------------------------------------------------

    def _auth_for(self, url: str) -> httpx.Auth | None:
        """The key for fal's own API hosts only: output and CDN URLs are public."""
        if self._auth is None:
            return None
        home = (self.config.queue_url, self.config.rest_url, self.config.api_url)
        return self._auth if any(same_origin(url, h) for h in home) else None

    def _returned(self, data: Mapping[str, Any], name: str, built: str) -> str:
        # The docs say to use the URLs fal returns; one pointing elsewhere than the queue we
        # talk to would get our key, so it is ignored in favour of the built one.
        url = data.get(name)
        if isinstance(url, str) and url and same_origin(url, self.config.queue_url):
            return url.rstrip("/")
        return built

    def _call(
        self,
        method: str,
        url: str,
        handle: JobHandle,
        *,
        operation: Literal["status", "result", "cancel"] = "result",
        mode: Literal["idempotent", "never"] = "idempotent",
        params: Mapping[str, str] | None = None,
    ) -> Call:
        return Call(
            method,
            url,
            operation,
            f"request {handle.request_id}",
            mode=mode,
            auth=self._auth_for(url),
            params=params,
            request_id=handle.request_id,
        )

    async def _poll(self, handle: JobHandle, logs: bool) -> JobStatus:
        call = self._call(
            "GET", handle.status_url, handle, operation="status", params={"logs": str(int(logs))}
        )
        response = await self._session.send(call)
        return parse_status(_json(response, f"status of request {handle.request_id}"))


def _json(response: httpx.Response, what: str) -> dict[str, Any]:
    try:
        data = response.json()
    except (ValueError, UnicodeDecodeError):
        data = None
    if not isinstance(data, dict):
        raise FalProtocolError(f"fal's answer to the {what} is not a JSON object")
    return data

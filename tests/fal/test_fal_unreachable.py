"""A host that does not resolve or refuses connections is reported in about a second (with the
settings that choose the host), not after ten retries; other transport errors keep fal's
client's full retries."""

from __future__ import annotations

import socket

import httpx
import pytest
from fal_fakes import MARKER_KEY, Sleeps

from runner.fal import Credentials, FalClient, FalConfig, FalUnavailable, RetryPolicy, Secret
from runner.fal.retry import unreachable
from tests.helpers import refused_port


def client(
    url: str, sleeps: Sleeps, transport: httpx.AsyncBaseTransport | None = None
) -> FalClient:
    policy = RetryPolicy(sleep=sleeps, uniform=lambda a, b: 1.0)
    config = FalConfig(queue_url=url, rest_url=url, retry=policy)
    return FalClient(config, Credentials(Secret(MARKER_KEY)), transport=transport)


async def test_a_refused_connection_is_reported_within_a_second_of_backoff() -> None:
    sleeps = Sleeps()
    with refused_port() as port:
        async with client(f"http://127.0.0.1:{port}", sleeps) as fal:
            with pytest.raises(FalUnavailable) as info:
                await fal.submit("fal-ai/ltx-video", {"prompt": "x"})
    error = info.value
    assert f"cannot connect to 127.0.0.1:{port}: the host refused the connection" in error.message
    assert "SHOTGRAPH_FAL_QUEUE_URL" in (error.hint or "")
    assert "FAL_QUEUE_RUN_HOST" in (error.hint or "")
    assert sum(sleeps.delays) <= 1.0 and len(sleeps.delays) < 5, sleeps.delays
    assert MARKER_KEY.split(":")[1] not in error.message + (error.hint or "")


async def test_a_host_name_that_does_not_resolve_is_reported_within_a_second() -> None:
    def no_dns(request: httpx.Request) -> httpx.Response:
        try:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        except socket.gaierror as exc:
            raise httpx.ConnectError(str(exc), request=request) from exc

    sleeps = Sleeps()
    transport = httpx.MockTransport(no_dns)
    async with client("https://queue.fal.run", sleeps, transport) as fal:
        with pytest.raises(FalUnavailable) as info:
            await fal.submit("fal-ai/ltx-video", {"prompt": "x"})
    assert "cannot connect to queue.fal.run: the host name does not resolve" in info.value.message
    assert sum(sleeps.delays) <= 1.0 and 1 <= len(sleeps.delays) < 5, sleeps.delays


async def test_other_connect_failures_keep_fal_clients_ten_attempts() -> None:
    attempts: list[int] = []

    def reset(request: httpx.Request) -> httpx.Response:
        attempts.append(1)
        raise httpx.ConnectError("[Errno 104] Connection reset by peer", request=request)

    sleeps = Sleeps()
    async with client("https://queue.fal.run", sleeps, httpx.MockTransport(reset)) as fal:
        with pytest.raises(FalUnavailable):
            await fal.status(fal.handle("fal-ai/ltx-video", "req-1"))
    assert len(attempts) == 10 and len(sleeps.delays) == 9


def test_unreachable_reads_the_cause_chain() -> None:
    try:
        try:
            raise ConnectionRefusedError(111, "Connect call failed")
        except OSError as inner:
            raise OSError("All connection attempts failed") from inner
    except OSError as outer:
        assert unreachable(outer) == "the host refused the connection"
    assert unreachable(httpx.ReadTimeout("slow")) is None

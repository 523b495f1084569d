"""Fixtures for the fal client tests (helpers live in ``fal_fakes``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from fal_fakes import EMULATOR_KEY, MARKER_KEY, QUEUE, REST, Handler, Recorder, Sleeps

from runner.fal import Credentials, FalClient, FalConfig, RetryPolicy, Secret


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
async def make_client(sleeps: Sleeps) -> AsyncIterator[Callable[..., tuple[FalClient, Recorder]]]:
    """``make(handler, key=..., **config)``: a client over a mock transport, and its recorder."""
    clients: list[FalClient] = []

    def make(
        handler: Handler, *, key: str | None = MARKER_KEY, **options: Any
    ) -> tuple[FalClient, Recorder]:
        recorder = Recorder(handler)
        policy = RetryPolicy(sleep=sleeps, uniform=lambda a, b: 1.0)
        config = FalConfig(
            queue_url=QUEUE, rest_url=REST, retry=options.pop("retry", policy), **options
        )
        credentials = Credentials(Secret(key)) if key else None
        client = FalClient(config, credentials, transport=httpx.MockTransport(recorder))
        clients.append(client)
        return client, recorder

    yield make
    for client in clients:
        await client.aclose()


# -- the real emulator on loopback (integration tests) ---------------------------------------


@pytest.fixture
async def local_client(
    sleeps: Sleeps,
) -> AsyncIterator[Callable[..., FalClient]]:
    """``make(server, **config)``: the real client pointed at an emulator, as ``--backend local``.

    Retry sleeps are recorded and shortened to at most 10 ms, so Retry-After is checked
    without being waited out.
    """
    clients: list[FalClient] = []

    async def short_sleep(seconds: float) -> None:
        await sleeps(seconds)
        await asyncio.sleep(min(seconds, 0.01))

    def make(server: Any, *, key: str = EMULATOR_KEY, **options: Any) -> FalClient:
        env = {
            "SHOTGRAPH_FAL_QUEUE_URL": server.url,
            "SHOTGRAPH_FAL_REST_URL": server.url,
            "SHOTGRAPH_FAL_API_URL": f"{server.url}/v1",
        }
        options.setdefault("retry", RetryPolicy(sleep=short_sleep))
        client = FalClient.from_env({**env, "FAL_KEY": key}, **options)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()

"""A submit names its pipeline node only where the config says how: to the local emulator,
in a header, never in the body; fal's own backend never sends it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fal_fakes import Recorder, json_response, submitted

from runner.emulator.protocol import NODE_HEADER as EMULATOR_READS
from runner.fal import FalClient
from runner.run import backends

MakeClient = Callable[..., tuple[FalClient, Recorder]]
ENDPOINT = "fal-ai/ltx-video-13b-distilled/image-to-video"
BODY = {"prompt": "a cat", "seed": 7, "image_url": "https://cdn.test/k.png"}


def answer(request: httpx.Request) -> httpx.Response:
    return json_response(200, submitted())


async def test_a_client_without_a_node_header_never_names_the_node(
    make_client: MakeClient,
) -> None:
    client, rec = make_client(answer)
    await client.submit(ENDPOINT, BODY, node="intro_more")
    await client.submit(ENDPOINT, BODY)
    with_node, without = rec.seen
    assert with_node.body == without.body  # not in the body either
    assert with_node.headers == without.headers
    assert not any("intro_more" in value for value in with_node.headers.values())


async def test_the_local_backends_header_carries_the_name_and_nothing_else(
    make_client: MakeClient,
) -> None:
    client, rec = make_client(answer, node_header=backends.NODE_HEADER)
    await client.submit(ENDPOINT, BODY, node="intro_more")
    await client.submit(ENDPOINT, BODY, node="ünïcode name")
    await client.submit(ENDPOINT, BODY)
    named, encoded, unnamed = rec.seen
    assert named.headers[backends.NODE_HEADER] == "intro_more"
    assert encoded.headers[backends.NODE_HEADER] == "%C3%BCn%C3%AFcode%20name"
    assert backends.NODE_HEADER not in unnamed.headers
    assert named.body == encoded.body == unnamed.body
    assert named.json() == BODY
    # the backend and the emulator spell the header alike
    assert backends.NODE_HEADER == EMULATOR_READS


async def test_the_fal_backend_never_sends_the_node_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorder = Recorder(answer)
    real = FalClient.from_env.__func__  # type: ignore[attr-defined]

    def from_env(cls: type[FalClient], *args: Any, **options: Any) -> FalClient:
        # the fal backend's own client, its network a mock
        client: FalClient = real(cls, *args, transport=httpx.MockTransport(recorder), **options)
        return client

    monkeypatch.setattr(FalClient, "from_env", classmethod(from_env))
    env = {"FAL_KEY": "key-id:key-secret"}
    async with backends.open_backend(backends.FAL, tmp_path, env=env) as client:
        assert client.config.node_header is None
        await client.submit(ENDPOINT, BODY, node="intro_more")
    (seen,) = recorder.seen
    assert str(seen.url).startswith("https://queue.fal.run/")
    assert backends.NODE_HEADER not in seen.headers
    assert not any("intro_more" in value for value in seen.headers.values())
    assert b"intro_more" not in seen.body

"""The client's connections on asyncio streams (runner.fal.network): the same requests,
timeouts, refusals and TLS as through httpx's default backend, over real loopback sockets."""

from __future__ import annotations

import asyncio
import hashlib
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import httpcore
import httpx
import pytest
import trustme

from runner.fal import FalClient, FalConfig
from runner.fal.network import AsyncioBackend, use_asyncio
from runner.fal.retry import unreachable

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@asynccontextmanager
async def serving(handler: Handler, tls: ssl.SSLContext | None = None) -> AsyncIterator[int]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0, ssl=tls)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


async def answer_ok(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A keep-alive server: every request gets the same small JSON answer."""
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            if not head:
                return
            body = b'{"status":"COMPLETED"}'
            writer.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                + f"content-length: {len(body)}\r\n\r\n".encode()
                + body
            )
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        writer.close()


def lean_client(**kwargs: object) -> httpx.AsyncClient:
    client = httpx.AsyncClient(**kwargs)  # type: ignore[arg-type]
    assert use_asyncio(client)
    return client


def test_the_fal_client_uses_the_asyncio_backend() -> None:
    # Without it the runner spends a third more CPU per request: this must not go quietly.
    fal = FalClient(FalConfig())
    pool = fal._http._transport._pool  # type: ignore[attr-defined]
    assert isinstance(pool._network_backend, AsyncioBackend)


def test_an_injected_transport_is_left_alone() -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(200))
    fal = FalClient(FalConfig(), transport=transport)
    assert fal._http._transport is transport  # type: ignore[attr-defined]


async def test_requests_share_one_kept_alive_connection() -> None:
    connections = 0

    async def counting(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await answer_ok(reader, writer)

    async with serving(counting) as port, lean_client() as client:
        for _ in range(5):
            response = await client.get(f"http://127.0.0.1:{port}/status")
            assert response.json() == {"status": "COMPLETED"}
    assert connections == 1


async def test_a_silent_server_is_a_read_timeout() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        await asyncio.sleep(5)

    async with serving(silent) as port, lean_client(timeout=0.2) as client:
        with pytest.raises(httpx.ReadTimeout):
            await client.get(f"http://127.0.0.1:{port}/status")


async def test_a_refused_connection_keeps_its_cause() -> None:
    async with serving(answer_ok) as port:
        pass  # closed: nothing listens on the port now
    async with lean_client() as client:
        with pytest.raises(httpx.ConnectError) as info:
            await client.get(f"http://127.0.0.1:{port}/status")
    assert unreachable(info.value) == "the host refused the connection"


async def test_an_unknown_host_name_keeps_its_cause() -> None:
    backend = AsyncioBackend()
    with pytest.raises(httpcore.ConnectError) as info:
        await backend.connect_tcp("no-such-host.invalid", 443, timeout=5)
    assert unreachable(info.value) == "the host name does not resolve (DNS)"


async def test_tls_is_verified_against_the_trusted_authority() -> None:
    ca = trustme.CA()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server)
    trusting = ssl.create_default_context()
    ca.configure_trust(trusting)
    async with serving(answer_ok, tls=server) as port:
        async with lean_client(verify=trusting) as client:
            response = await client.get(f"https://127.0.0.1:{port}/status")
            assert response.json() == {"status": "COMPLETED"}
        async with lean_client() as untrusting:  # the system's authorities only
            with pytest.raises(httpx.ConnectError):
                await untrusting.get(f"https://127.0.0.1:{port}/status")


async def test_a_body_in_small_pieces_arrives_whole_and_in_order() -> None:
    # Small writes are held and sent together (one system call per request, not three);
    # a body of many of them must still arrive whole, in order, with backpressure.
    async def digesting(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length")
        )
        body = await reader.readexactly(length)
        answer = hashlib.sha256(body).hexdigest().encode()
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 64\r\n\r\n" + answer)
        await writer.drain()
        writer.close()

    pieces = [bytes([i % 251]) * (1000 + i) for i in range(300)]  # ~480 KB in all

    async def body() -> AsyncIterator[bytes]:
        for piece in pieces:
            yield piece

    size = sum(len(p) for p in pieces)
    async with serving(digesting) as port, lean_client() as client:
        response = await client.post(
            f"http://127.0.0.1:{port}/upload",
            content=body(),
            headers={"content-length": str(size)},
        )
    assert response.text == hashlib.sha256(b"".join(pieces)).hexdigest()

"""Loopback HTTP servers for the transport's tests (tests/fal/test_fal_wire.py,
test_fal_framing.py): each handler plays one kind of server, kind or hostile."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import httpx

from runner.fal.wire import LeanTransport

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


def lean_client(
    timeout: float = 5.0, verify: ssl.SSLContext | None = None, max_connections: int = 256
) -> httpx.AsyncClient:
    transport = LeanTransport(max_connections=max_connections, ssl_context=verify)
    return httpx.AsyncClient(transport=transport, timeout=timeout)


def answering(*answers: bytes, close: bool = False) -> Handler:
    """A server that answers each request on a connection with the next of ``answers``
    (written as given), then closes if ``close``."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            for answer in answers:
                await reader.readuntil(b"\r\n\r\n")
                writer.write(answer)
                await writer.drain()
            if close:
                writer.close()
            else:
                await reader.read()  # until the client hangs up
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    return handler


def free_slots(transport: LeanTransport) -> int:
    return transport._free._value  # type: ignore[attr-defined]


class Counted:
    """``handler``, counting the connections it is given."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0

    async def __call__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        await self.handler(reader, writer)

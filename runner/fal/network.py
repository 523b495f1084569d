"""httpcore's sockets on plain asyncio streams, for the client's connection pool.

httpcore reaches the network through anyio by default, which wraps every read and write
in a cancel scope and a deadline of its own and looks up socket attributes through layers
of typed-attribute providers: about a third of the CPU the runner spends per request on
loopback (see ``benchmarks/runner_overhead.py``). The same reads and writes on asyncio's
streams, with ``asyncio.timeout`` for the deadlines, do the same work for less.

Errors are httpcore's own (``ConnectError``, ``ReadTimeout``, …), raised from the
``OSError`` behind them, so httpx maps them as it always did and
:func:`runner.fal.retry.unreachable` still finds the refused connection or the unresolved
name in the chain. TLS goes through ``StreamWriter.start_tls`` with httpx's own SSL context.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx
from httpcore._backends.base import SOCKET_OPTION, AsyncNetworkBackend, AsyncNetworkStream
from httpcore._utils import is_socket_readable

# What a connection buffers before it stops reading from the socket.
BUFFER = 1 << 18
# Writes up to this size are held to go out with the next (see _Stream).
HOLD = 1 << 16


class _Stream(AsyncNetworkStream):
    """One connection. httpcore writes a request as several pieces (head, body, end);
    small ones are held until the task yields or reads the answer, then sent in one
    system call instead of three."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._held: list[bytes] = []
        self._held_size = 0

    def _flush(self) -> None:
        if self._held:
            data = b"".join(self._held)
            self._held.clear()
            self._held_size = 0
            if not self._writer.is_closing():
                self._writer.write(data)

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        self._flush()
        try:
            async with asyncio.timeout(timeout):
                return await self._reader.read(max_bytes)
        except TimeoutError:
            raise httpcore.ReadTimeout("timed out reading") from None
        except OSError as exc:
            raise httpcore.ReadError(str(exc) or type(exc).__name__) from exc

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        if self._held_size + len(buffer) <= HOLD:
            if not self._held:
                asyncio.get_running_loop().call_soon(self._flush)
            self._held.append(buffer)
            self._held_size += len(buffer)
            return
        self._flush()
        try:
            async with asyncio.timeout(timeout):
                self._writer.write(buffer)
                await self._writer.drain()
        except TimeoutError:
            raise httpcore.WriteTimeout("timed out writing") from None
        except OSError as exc:
            raise httpcore.WriteError(str(exc) or type(exc).__name__) from exc

    async def aclose(self) -> None:
        self._flush()
        self._writer.close()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> AsyncNetworkStream:
        self._flush()
        try:
            async with asyncio.timeout(timeout):
                await self._writer.start_tls(ssl_context, server_hostname=server_hostname)
        except TimeoutError:
            self._writer.close()
            raise httpcore.ConnectTimeout("timed out in the TLS handshake") from None
        except OSError as exc:  # ssl.SSLError is one
            self._writer.close()
            raise httpcore.ConnectError(str(exc) or type(exc).__name__) from exc
        return self

    def get_extra_info(self, info: str) -> Any:
        writer = self._writer
        if info == "ssl_object":
            return writer.get_extra_info("ssl_object")
        if info == "client_addr":
            return writer.get_extra_info("sockname")
        if info == "server_addr":
            return writer.get_extra_info("peername")
        if info == "socket":
            return writer.get_extra_info("socket")
        if info == "is_readable":
            # An idle pooled connection the server has closed reads as "readable" (EOF).
            return is_socket_readable(writer.get_extra_info("socket"))
        return None


class AsyncioBackend(AsyncNetworkBackend):
    """TCP connections as asyncio streams (see the module docstring)."""

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[SOCKET_OPTION] | None = None,
    ) -> AsyncNetworkStream:
        try:
            async with asyncio.timeout(timeout):
                sock = await _connect(host, port, local_address, socket_options or ())
                reader, writer = await asyncio.open_connection(sock=sock, limit=BUFFER)
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"timed out connecting to {host}:{port}") from None
        except OSError as exc:  # socket.gaierror too: the chain says what failed
            raise httpcore.ConnectError(str(exc) or type(exc).__name__) from exc
        return _Stream(reader, writer)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


async def _connect(
    host: str, port: int, local_address: str | None, options: Iterable[SOCKET_OPTION]
) -> socket.socket:
    """A connected socket to the first of ``host``'s addresses that answers. When none
    does, the last address's error is the cause: a refusal stays a refusal (asyncio's own
    loop would merge different errors into one plain OSError)."""
    loop = asyncio.get_running_loop()
    addresses = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    last: OSError | None = None
    for family, kind, proto, _, address in addresses:
        sock = socket.socket(family, kind, proto)
        try:
            sock.setblocking(False)
            if family in (socket.AF_INET, socket.AF_INET6):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for option in options:
                sock.setsockopt(*option)
            if local_address is not None:
                sock.bind((local_address, 0))
            await loop.sock_connect(sock, address)
            return sock
        except OSError as exc:
            sock.close()
            last = exc
        except BaseException:
            sock.close()
            raise
    if last is None:
        raise OSError(f"{host} has no address")
    if len(addresses) == 1:
        raise last
    raise OSError(f"all connection attempts to {host}:{port} failed") from last


def use_asyncio(client: httpx.AsyncClient) -> bool:
    """Put ``client``'s own connection pool on :class:`AsyncioBackend`; False (and the
    client unchanged) when this httpx keeps its pool elsewhere. The client is made by httpx
    as usual, so its environment's proxies and certificates still apply."""
    transport = getattr(client, "_transport", None)
    pool = getattr(transport, "_pool", None)
    if type(pool) is not httpcore.AsyncConnectionPool or not hasattr(pool, "_network_backend"):
        return False
    pool._network_backend = AsyncioBackend()
    return True

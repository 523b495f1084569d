"""One HTTP connection of :mod:`runner.fal.wire`: a socket as an asyncio protocol.

asyncio's streams put a reader, a writer and a protocol between the socket and the caller,
and every read with a deadline costs a timer armed and cancelled. Here the protocol keeps
what arrives in one buffer; a read returns at once when the buffer holds what it asks for
and arms a timer only when it must wait. Reading stops while the buffer holds more than
``BUFFER`` bytes; writing waits while the socket's send buffer is full.

:func:`connect` opens the socket (the first address that answers, its error kept as the
cause). Reads and writes raise httpx's errors (``ReadTimeout``, ``ReadError``, ``WriteTimeout``,
``WriteError``, ``RemoteProtocolError``), from the ``OSError`` behind them.
"""

from __future__ import annotations

import asyncio
import select
import socket
from collections.abc import Callable

import httpx

# What a connection buffers before it stops reading from the socket, and the longest line
# read_until takes unless told less (a response head is held to less: runner.fal.framing).
BUFFER = 1 << 18


class Connection(asyncio.Protocol):
    """A socket's bytes in, bytes out; ``release`` is called once when it closes."""

    def __init__(self, release: Callable[[], None]) -> None:
        self._loop = asyncio.get_running_loop()
        self._release: Callable[[], None] | None = release
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._eof = False
        self._lost: Exception | None = None  # why the connection broke, if it did
        self._reading_paused = False
        self._writing_paused = False
        self._waiter: asyncio.Future[None] | None = None
        self._drained: asyncio.Future[None] | None = None
        self.idle_since = 0.0

    # -- the protocol ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if len(self._buffer) > BUFFER and not self._reading_paused and self._transport:
            self._transport.pause_reading()
            self._reading_paused = True
        self._wake()

    def eof_received(self) -> bool:
        self._eof = True
        self._wake()
        return False  # close: nothing more is sent on a connection the server ended

    def connection_lost(self, exc: Exception | None) -> None:
        self._eof = True
        self._lost = exc
        self._wake()
        drained, self._drained = self._drained, None
        if drained is not None and not drained.done():
            drained.set_result(None)
        self.close()

    def pause_writing(self) -> None:
        self._writing_paused = True

    def resume_writing(self) -> None:
        self._writing_paused = False
        drained, self._drained = self._drained, None
        if drained is not None and not drained.done():
            drained.set_result(None)

    def _wake(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- for the transport -------------------------------------------------------------

    def reusable(self, now: float, keepalive: float) -> bool:
        """Idle not too long, not ended by the peer, and nothing unasked in it (a server's
        408 before it closes): only then may it carry another request."""
        return (
            now - self.idle_since < keepalive
            and not self._eof
            and not self._buffer
            and self._transport is not None
            and not self._transport.is_closing()
        )

    def unread(self) -> bool:
        """Whether the socket has something the loop has not read yet: on an idle connection,
        the server's close (or junk). One poll of this socket, as httpcore's pool does for
        the connection it hands out; the loop may not have looked since the bytes came."""
        sock = self._transport.get_extra_info("socket") if self._transport else None
        if sock is None:
            return False
        poller = select.poll()
        poller.register(sock.fileno(), select.POLLIN)
        return bool(poller.poll(0))

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
        release, self._release = self._release, None
        if release is not None:
            release()

    def write(self, data: bytes) -> None:
        if self._transport is None or self._transport.is_closing():
            raise httpx.WriteError(self._why("the connection is closed"))
        self._transport.write(data)

    async def drain(self, timeout: float | None) -> None:
        """Wait, up to ``timeout``, while the socket's send buffer is full."""
        if self._writing_paused and self._lost is None and not self._eof:
            drained = self._drained = self._loop.create_future()
            timer = None
            if timeout is not None:
                timer = self._loop.call_later(timeout, _expire, drained, httpx.WriteTimeout)
            try:
                await drained
            finally:
                if timer is not None:
                    timer.cancel()
        if self._lost is not None:
            raise httpx.WriteError(self._why("the connection broke")) from self._lost

    async def read_until(
        self, separator: bytes, timeout: float | None, what: str, limit: int = BUFFER
    ) -> bytes:
        """Bytes up to and including ``separator``, at most ``limit`` of them."""
        start = 0
        while True:
            found = self._buffer.find(separator, start)
            end = found + len(separator) if found >= 0 else len(self._buffer)
            if end > limit:
                raise httpx.RemoteProtocolError(f"{what}: longer than {limit} bytes")
            if found >= 0:
                return self._take(end)
            start = max(0, len(self._buffer) - len(separator) + 1)
            await self._more(timeout, what)

    async def read(self, most: int, timeout: float | None) -> bytes:
        """Up to ``most`` bytes; ``b""`` once the server has ended the connection."""
        while not self._buffer:
            if self._eof:
                self._raise_if_lost()
                return b""
            await self._wait(timeout)
        return self._take(min(most, len(self._buffer)))

    async def read_exactly(self, size: int, timeout: float | None, what: str) -> bytes:
        while len(self._buffer) < size:
            await self._more(timeout, what)
        return self._take(size)

    def _take(self, size: int) -> bytes:
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        if self._reading_paused and len(self._buffer) <= BUFFER and self._transport:
            self._reading_paused = False
            self._transport.resume_reading()
        return data

    async def _more(self, timeout: float | None, what: str) -> None:
        """Wait for more bytes; the end of the connection here is an incomplete message."""
        if self._eof:
            self._raise_if_lost()
            if not self._buffer and what == "a response":
                raise httpx.RemoteProtocolError("Server disconnected without sending a response.")
            raise httpx.RemoteProtocolError(
                f"peer closed connection without sending complete {what}"
            )
        await self._wait(timeout)

    async def _wait(self, timeout: float | None) -> None:
        if self._reading_paused and self._transport:  # the caller wants more: read on
            self._reading_paused = False
            self._transport.resume_reading()
        waiter = self._waiter = self._loop.create_future()
        if timeout is None:
            await waiter
            return
        timer = self._loop.call_later(timeout, _expire, waiter, httpx.ReadTimeout)
        try:
            await waiter
        finally:
            timer.cancel()

    def _raise_if_lost(self) -> None:
        if self._lost is not None:
            raise httpx.ReadError(self._why("")) from self._lost

    def _why(self, default: str) -> str:
        if self._lost is not None:
            return str(self._lost) or type(self._lost).__name__
        return default


def _expire(waiter: asyncio.Future[None], timeout: type[httpx.TimeoutException]) -> None:
    if not waiter.done():
        what = "reading" if timeout is httpx.ReadTimeout else "writing"
        waiter.set_exception(timeout(f"timed out {what}"))


async def connect(host: str, port: int) -> socket.socket:
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
                # Nagle would hold a request written in two parts (an upload) for an ACK.
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
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

"""The fal client's HTTP/1.1 transport: kept-alive connections on asyncio.

httpx's default transport (httpcore's connection pool, h11's state machine, anyio) cost the
runner about a millisecond of CPU per request on loopback, a third of it choosing a
connection: the pool polls every idle connection's socket each time it hands one out. fal's
queue API needs little of that machinery: HTTP/1.1 requests with small JSON bodies, an
event stream, downloads and streamed uploads. This transport keeps each origin's idle
connections in a stack and takes the newest one not closed (one poll of that socket alone,
so a close the loop has not read yet is seen: a submit on a connection the server already
closed would fail after its write and count as maybe sent), writes a request's head and
body in one system call (a method or header h11 would refuse is refused before it), and
reads each response through :mod:`runner.fal.framing` on a :mod:`runner.fal.connection`.

It plugs in under ``httpx.AsyncClient`` (``transport=``), so the client's retries, errors,
redirects and decoding are httpx's as before. Errors are httpx's own (``ConnectError``,
``ReadTimeout``, ``RemoteProtocolError``, …), raised from the ``OSError`` behind them, so
:func:`runner.fal.retry.unreachable` still finds a refused connection or an unresolved name
in the chain. TLS uses httpx's own SSL context (``SSL_CERT_FILE`` and ``SSL_CERT_DIR``
honoured; verification always on). Connections beyond ``max_connections`` wait for one to
close (``PoolTimeout``); one freed while a request waits is closed rather than kept idle.
"""

from __future__ import annotations

import asyncio
import re
import ssl
import time
from functools import partial

import httpx

from runner.fal.connection import Connection, connect
from runner.fal.framing import Body, framing, read_head
from runner.fal.retry import NotSent

# Seconds an idle connection is kept for reuse (httpx's default keep-alive expiry).
KEEPALIVE = 5.0
_PORTS = {b"http": 80, b"https": 443}
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # RFC 9110 5.6.2
_NOT_IN_VALUE = re.compile(rb"[\x00\r\n]")

Origin = tuple[bytes, str, int]


class LeanTransport(httpx.AsyncBaseTransport):
    """HTTP/1.1 over asyncio protocols for :class:`httpx.AsyncClient` (module docstring)."""

    def __init__(
        self, *, max_connections: int = 256, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        self._idle: dict[Origin, list[Connection]] = {}
        self._free = asyncio.Semaphore(max(1, max_connections))
        self._ssl = ssl_context
        self._closed = False
        self._waiting = 0  # requests waiting for a free slot

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        scheme = url.raw_scheme
        if scheme not in _PORTS:
            raise httpx.UnsupportedProtocol(f"the URL scheme {scheme.decode()!r} is not supported")
        origin = (scheme, url.raw_host.decode("ascii"), url.port or _PORTS[scheme])
        timeouts: dict[str, float | None] = request.extensions.get("timeout", {})
        connection = self._reuse(origin) or await self._open(origin, timeouts)
        try:
            close = await _send(connection, request, timeouts.get("write"))
            status, reason, version, headers = await read_head(connection, timeouts.get("read"))
            length, keep = framing(request.method, status, version, headers)
        except BaseException:
            connection.close()
            raise
        keep = keep and not close
        release = partial(self.release, origin)
        body = Body(connection, length, keep, timeouts.get("read"), release)
        return httpx.Response(
            status,
            headers=headers,
            stream=body,
            extensions={"http_version": version, "reason_phrase": reason},
        )

    async def aclose(self) -> None:
        self._closed = True
        for stack in self._idle.values():
            for connection in stack:
                connection.close()
        self._idle.clear()

    def _reuse(self, origin: Origin) -> Connection | None:
        stack = self._idle.get(origin)
        if not stack:
            return None
        now = time.monotonic()
        found = None
        while stack:
            connection = stack.pop()
            if connection.reusable(now, KEEPALIVE) and not connection.unread():
                found = connection
                break
            connection.close()
        while stack and not stack[0].reusable(now, KEEPALIVE):  # the oldest, idle too long
            stack.pop(0).close()
        return found

    def release(self, origin: Origin, connection: Connection) -> None:
        """Put a connection whose response was read whole back for the next request."""
        connection.idle_since = time.monotonic()
        # Kept idle while a request waits for a slot, it would hold that slot until it
        # expired unseen (a request for another origin cannot use it).
        if (
            self._closed
            or self._waiting
            or not connection.reusable(connection.idle_since, KEEPALIVE)
        ):
            connection.close()
            return
        self._idle.setdefault(origin, []).append(connection)

    async def _open(self, origin: Origin, timeouts: dict[str, float | None]) -> Connection:
        if self._free.locked():
            self._evict()
        self._waiting += 1
        try:
            async with asyncio.timeout(timeouts.get("pool")):
                await self._free.acquire()
        except TimeoutError:
            raise httpx.PoolTimeout("timed out waiting for a free connection") from None
        finally:
            self._waiting -= 1
        scheme, host, port = origin
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeouts.get("connect")):
                sock = await connect(host, port)
                tls = self._tls() if scheme == b"https" else None
                try:
                    _, connection = await loop.create_connection(
                        lambda: Connection(self._free.release),
                        sock=sock,
                        ssl=tls,
                        server_hostname=host if tls else None,
                    )
                except BaseException:
                    sock.close()
                    raise
        except BaseException as exc:
            self._free.release()
            if isinstance(exc, TimeoutError):
                raise httpx.ConnectTimeout(f"timed out connecting to {host}:{port}") from None
            if isinstance(exc, OSError):  # ssl.SSLError and socket.gaierror are ones
                raise httpx.ConnectError(str(exc) or type(exc).__name__) from exc
            raise
        return connection

    def _evict(self) -> None:
        """Close the longest-idle connection: every slot is taken, some by idle ones."""
        oldest: list[Connection] | None = None
        for stack in self._idle.values():
            if stack and (oldest is None or stack[0].idle_since < oldest[0].idle_since):
                oldest = stack
        if oldest is not None:
            oldest.pop(0).close()

    def _tls(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = httpx.create_ssl_context(trust_env=True)
        return self._ssl


async def _send(connection: Connection, request: httpx.Request, timeout: float | None) -> bool:
    """Write ``request``; whether it asked for the connection to close after it."""
    method = request.method.encode("ascii", "replace")
    if not _TOKEN.fullmatch(method):
        raise NotSent(f"not an HTTP method: {method[:20]!r}")
    lines = [b"%s %s HTTP/1.1" % (method, request.url.raw_path)]
    chunked = close = False
    declared: int | None = None
    for name, value in request.headers.raw:
        # As h11 refuses them: a name that is not a token, a value with CR, LF or NUL (one
        # could add headers of its own). The value is never shown: it may be the key.
        if not _TOKEN.fullmatch(name) or _NOT_IN_VALUE.search(value):
            raise NotSent(
                f"header {name[:40].decode(errors='replace')!r}: a character HTTP forbids"
            )
        lines.append(name + b": " + value)
        lowered = name.lower()
        if lowered == b"transfer-encoding":
            chunked = chunked or b"chunked" in value.lower()
        elif lowered == b"connection":
            close = close or b"close" in value.lower()
        elif lowered == b"content-length" and value.isdigit():
            declared = int(value)
    lines.append(b"\r\n")
    head = b"\r\n".join(lines)
    try:
        content: bytes | None = request.content
    except httpx.RequestNotRead:
        content = None
    if content is not None:
        connection.write(head + content)
    else:
        connection.write(head)
        sent = 0
        async for piece in request.stream:  # type: ignore[union-attr]
            if not piece:
                continue
            sent += len(piece)
            if chunked:
                connection.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            elif declared is not None and sent > declared:
                # The server would read the rest as a request of its own (h11 refuses too).
                raise httpx.LocalProtocolError("the request body is longer than its Content-Length")
            else:
                connection.write(piece)
            await connection.drain(timeout)
        if chunked:
            connection.write(b"0\r\n\r\n")
        elif declared is not None and sent < declared:
            raise httpx.LocalProtocolError("the request body is shorter than its Content-Length")
    await connection.drain(timeout)
    return close

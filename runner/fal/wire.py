"""The fal client's HTTP/1.1 transport: kept-alive connections on asyncio.

httpx's default transport (httpcore's connection pool, h11's state machine, anyio) cost the
runner about a millisecond of CPU per request on loopback, a third of it choosing a
connection: the pool polls every idle connection's socket each time it hands one out. fal's
queue API needs little of that machinery: HTTP/1.1 requests with small JSON bodies, an
event stream, downloads and streamed uploads. This transport keeps each origin's idle
connections in a stack and takes the newest one not closed (one poll of that socket alone,
so a close the loop has not read yet is seen: a submit on a connection the server already
closed would fail after its write and count as maybe sent), writes a request's head and
body in one system call, and reads through :mod:`runner.fal.connection`.

It plugs in under ``httpx.AsyncClient`` (``transport=``), so the client's retries, errors,
redirects and decoding are httpx's as before. Errors are httpx's own (``ConnectError``,
``ReadTimeout``, ``RemoteProtocolError``, …), raised from the ``OSError`` behind them, so
:func:`runner.fal.retry.unreachable` still finds a refused connection or an unresolved name
in the chain. TLS uses httpx's own SSL context (``SSL_CERT_FILE`` and ``SSL_CERT_DIR``
honoured). Connections beyond ``max_connections`` wait for one to close (``PoolTimeout``).
"""

from __future__ import annotations

import asyncio
import re
import socket
import ssl
import time
from collections.abc import AsyncIterator, Iterable

import httpx

from runner.fal.connection import Connection

# The most a body read hands over at once.
CHUNK = 1 << 16
# Seconds an idle connection is kept for reuse (httpx's default keep-alive expiry).
KEEPALIVE = 5.0
_PORTS = {b"http": 80, b"https": 443}
_NO_BODY = frozenset({204, 304})
# A response head's bounds (the standard library's http.client allows 100 headers); the
# trailers of a chunked body share them.
MAX_HEAD = 1 << 16
MAX_HEADERS = 100
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # RFC 9110 5.6.2
_NOT_IN_VALUE = re.compile(rb"[\x00\r\n]")
_HEX_DIGITS = b"0123456789abcdefABCDEF"

Origin = tuple[bytes, str, int]


class LeanTransport(httpx.AsyncBaseTransport):
    """HTTP/1.1 over asyncio streams for :class:`httpx.AsyncClient` (module docstring)."""

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
            status, reason, version, headers = await _head(connection, timeouts.get("read"))
            length, keep = _framing(request.method, status, version, headers)
        except BaseException:
            connection.close()
            raise
        keep = keep and not close
        body = _Body(self, origin, connection, length, keep, timeouts.get("read"))
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
        raise httpx.LocalProtocolError(f"not an HTTP method: {method[:20]!r}")
    lines = [b"%s %s HTTP/1.1" % (method, request.url.raw_path)]
    chunked = close = False
    for name, value in request.headers.raw:
        # As h11 refuses them: a name that is not a token, a value with CR, LF or NUL (one
        # could add headers of its own). The value is never shown: it may be the key.
        if not _TOKEN.fullmatch(name) or _NOT_IN_VALUE.search(value):
            raise httpx.LocalProtocolError(
                f"header {name[:40].decode(errors='replace')!r}: a character HTTP forbids"
            )
        lines.append(name + b": " + value)
        lowered = name.lower()
        if lowered == b"transfer-encoding":
            chunked = chunked or b"chunked" in value.lower()
        elif lowered == b"connection":
            close = close or b"close" in value.lower()
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
        async for piece in request.stream:  # type: ignore[union-attr]
            if piece:
                connection.write(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
                await connection.drain(timeout)
        if chunked:
            connection.write(b"0\r\n\r\n")
    await connection.drain(timeout)
    return close


async def _head(
    connection: Connection, timeout: float | None
) -> tuple[int, bytes, bytes, list[tuple[bytes, bytes]]]:
    """The response's status, reason, HTTP version and headers (interim 1xx skipped)."""
    while True:
        data = await connection.read_until(b"\r\n\r\n", timeout, "a response", MAX_HEAD)
        lines = data[:-4].split(b"\r\n")
        if len(lines) > MAX_HEADERS + 1:
            raise httpx.RemoteProtocolError(f"a response head with more than {MAX_HEADERS} headers")
        version, _, rest = lines[0].partition(b" ")
        code, _, reason = rest.partition(b" ")
        if not version.startswith(b"HTTP/1.") or not code.isdigit() or len(code) != 3:
            raise httpx.RemoteProtocolError(f"not an HTTP/1.1 response: {lines[0][:80]!r}")
        status = int(code)
        headers: list[tuple[bytes, bytes]] = []
        for line in lines[1:]:
            name, colon, value = line.partition(b":")
            if not colon or not name or name != name.strip():
                raise httpx.RemoteProtocolError(f"malformed response header: {line[:80]!r}")
            headers.append((name, value.strip(b" \t")))
        if not 100 <= status < 200 or status == 101:
            return status, reason, version, headers


def _framing(
    method: str, status: int, version: bytes, headers: Iterable[tuple[bytes, bytes]]
) -> tuple[int | None, bool]:
    """The body's length (-1: chunked, None: until the connection closes) and whether the
    connection can carry another request after it."""
    length: int | None = None
    chunked = False
    keep = version == b"HTTP/1.1"
    for name, value in headers:
        lowered = name.lower()
        if lowered == b"content-length":
            if not value.isdigit() or (length is not None and length != int(value)):
                raise httpx.RemoteProtocolError(f"bad Content-Length: {value[:40]!r}")
            length = int(value)
        elif lowered == b"transfer-encoding":
            # Only "chunked" alone, as h11 (httpx's own transport) takes it.
            if chunked or value.strip(b" \t").lower() != b"chunked":
                raise httpx.RemoteProtocolError(f"unsupported Transfer-Encoding: {value[:40]!r}")
            chunked = True
        elif lowered == b"connection" and b"close" in value.lower():
            keep = False
    if method == "HEAD" or status in _NO_BODY or status < 200:
        return 0, keep
    if chunked:
        # With a Content-Length too, chunked wins (RFC 9112 6.3); the server's framing is
        # in doubt, so nothing more is read on this connection.
        return -1, keep and length is None
    if length is None:
        return None, False
    return length, keep


class _Body(httpx.AsyncByteStream):
    """A response body as it arrives; its connection goes back to the pool once it is read
    whole, and is closed if it is not."""

    def __init__(
        self,
        transport: LeanTransport,
        origin: Origin,
        connection: Connection,
        length: int | None,
        keep: bool,
        timeout: float | None,
    ) -> None:
        self._transport = transport
        self._origin = origin
        self._connection: Connection | None = connection
        self._length = length
        self._keep = keep
        self._timeout = timeout
        self._whole = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        connection = self._connection
        if connection is None:
            raise httpx.StreamClosed()
        try:
            async for piece in self._pieces(connection):
                yield piece
        except BaseException:
            # An error, a timeout or a cancellation mid-body: the connection is closed (its
            # slot freed) now, whether or not anyone closes the response after.
            connection.close()
            raise
        self._whole = True

    async def _pieces(self, connection: Connection) -> AsyncIterator[bytes]:
        timeout, what = self._timeout, "message body"
        if self._length is None:  # until the server closes
            while chunk := await connection.read(CHUNK, timeout, what):
                yield chunk
        elif self._length >= 0:
            left = self._length
            while left:
                chunk = await connection.read(min(left, CHUNK), timeout, what)
                if not chunk:
                    raise httpx.RemoteProtocolError(
                        "peer closed connection without sending complete message body: "
                        f"received {self._length - left} bytes, expected {self._length}"
                    )
                left -= len(chunk)
                yield chunk
        else:
            async for chunk in _chunks(connection, timeout):
                yield chunk

    async def aclose(self) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        if self._whole and self._keep:
            self._transport.release(self._origin, connection)
        else:
            connection.close()


async def _chunks(connection: Connection, timeout: float | None) -> AsyncIterator[bytes]:
    """A chunked body's pieces, up to its last chunk and trailers. A chunk is handed over
    in pieces of at most :data:`CHUNK` as it arrives: its size line is the server's word,
    and a line claiming gigabytes must not make us hold them."""
    what = "chunked body"
    while True:
        line = await connection.read_until(b"\r\n", timeout, what, MAX_HEAD)
        size_text = line[:-2].split(b";", 1)[0].strip(b" \t")
        # Plain hex digits only: int() would also take a sign, "0x" and underscores.
        if not 0 < len(size_text) <= 16 or size_text.strip(_HEX_DIGITS):
            raise httpx.RemoteProtocolError(f"bad chunk size: {size_text[:40]!r}")
        left = int(size_text, 16)
        if left == 0:
            await _trailers(connection, timeout)
            return
        while left:
            piece = await connection.read(min(left, CHUNK), timeout, what)
            if not piece:
                raise httpx.RemoteProtocolError(
                    f"peer closed connection without sending complete {what}"
                )
            left -= len(piece)
            yield piece
        if await connection.read_exactly(2, timeout, what) != b"\r\n":
            raise httpx.RemoteProtocolError("a chunk does not end with CRLF")


async def _trailers(connection: Connection, timeout: float | None) -> None:
    """Read past a chunked body's trailers (not used), within a head's bounds."""
    for _ in range(MAX_HEADERS + 1):
        if await connection.read_until(b"\r\n", timeout, "trailers", MAX_HEAD) == b"\r\n":
            return
    raise httpx.RemoteProtocolError(f"trailers with more than {MAX_HEADERS} fields")


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

"""Reading an HTTP/1.1 response for :mod:`runner.fal.wire`: its head, how its body is
framed, and the body as it arrives.

Every size here is the server's word, so each is bounded before it is believed: a head or a
trailer block is at most :data:`MAX_HEAD` bytes and :data:`MAX_HEADERS` fields, at most
:data:`MAX_INTERIM` 1xx heads come before the final one, a Content-Length has at most 18
digits, a body or a chunk reaches the caller in pieces of at most :data:`CHUNK` as they
arrive, and only ``Transfer-Encoding: chunked`` alone is taken (as h11 takes it).

A connection is kept for another request only when its response was read whole, framed one
way, and nothing follows it; a response not read whole (an error, a timeout, a
cancellation) closes its connection at once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable

import httpx

from runner.fal.connection import Connection

# The most a body read hands over at once.
CHUNK = 1 << 16
# A response head's bounds (the standard library's http.client allows 100 headers); the
# trailers of a chunked body share them.
MAX_HEAD = 1 << 16
MAX_HEADERS = 100
# Interim (1xx) answers taken before the final one: 100 Continue, 103 Early Hints.
MAX_INTERIM = 10
_NO_BODY = frozenset({204, 304})
_HEX_DIGITS = b"0123456789abcdefABCDEF"


async def read_head(
    connection: Connection, timeout: float | None
) -> tuple[int, bytes, bytes, list[tuple[bytes, bytes]]]:
    """The response's status, reason, HTTP version and headers (interim 1xx skipped)."""
    for _ in range(MAX_INTERIM + 1):
        data = await connection.read_until(b"\r\n\r\n", timeout, "a response", MAX_HEAD)
        lines = data[:-4].split(b"\r\n")
        if len(lines) > MAX_HEADERS + 1:
            raise httpx.RemoteProtocolError(f"a response head with more than {MAX_HEADERS} headers")
        version, _, rest = lines[0].partition(b" ")
        code, _, reason = rest.partition(b" ")
        if not version.startswith(b"HTTP/1.") or not code.isdigit() or len(code) != 3:
            # What the server sent is not shown: one that echoes the request would put a
            # signed URL or the key in the message.
            raise httpx.RemoteProtocolError(
                f"not an HTTP/1.1 response (a status line of {len(lines[0])} bytes)"
            )
        status = int(code)
        headers: list[tuple[bytes, bytes]] = []
        for number, line in enumerate(lines[1:], 2):
            name, colon, value = line.partition(b":")
            if not colon or not name or name != name.strip():
                raise httpx.RemoteProtocolError(
                    f"malformed response header (line {number} of the head, {len(line)} bytes)"
                )
            headers.append((name, value.strip(b" \t")))
        if not 100 <= status < 200 or status == 101:
            return status, reason, version, headers
    raise httpx.RemoteProtocolError(f"more than {MAX_INTERIM} interim (1xx) answers")


def framing(
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
            # Digits only, and few enough for int() (which refuses more than 4,300 with a
            # ValueError) and for any file: 18 are an exabyte.
            if not value.isdigit() or len(value) > 18 or length not in (None, int(value)):
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


class Body(httpx.AsyncByteStream):
    """A response body as it arrives; its connection goes back to the pool once it is read
    whole, and is closed if it is not."""

    def __init__(
        self,
        connection: Connection,
        length: int | None,
        keep: bool,
        timeout: float | None,
        release: Callable[[Connection], None],
    ) -> None:
        self._connection: Connection | None = connection
        self._length = length
        self._keep = keep
        self._timeout = timeout
        self._release = release
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
        timeout = self._timeout
        if self._length is None:  # until the server closes
            while chunk := await connection.read(CHUNK, timeout):
                yield chunk
        elif self._length >= 0:
            left = self._length
            while left:
                chunk = await connection.read(min(left, CHUNK), timeout)
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
            self._release(connection)
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
            piece = await connection.read(min(left, CHUNK), timeout)
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
